//! Plugin host figures (not assertions): `cargo bench -p vakt --bench plugins`.
//!
//! - start: every plugin of `plugins/build.sh` loaded into a fresh host, first compiling
//!   (empty cache), then from the on-disk cache (what a daemon restart does);
//! - per call: the noop plugin called 10,000 times through the connector
//!   path (argument conversion, a fresh store, instantiation from the
//!   `InstancePre`, the call, result conversion), p50/p99/max.
//!
//! Targets on 2 cores: ≤ 50 µs p50 per call, ≤ 100 ms start with the cache.

#[path = "../tests/plugin_support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use vakt::engine::CallOutcome;
use vakt::plugin::{
    HostConfig, HttpGrant, Origin, PluginConfig, PluginHost, SecretRef, SmtpGrant, SmtpTls,
};
use vakt::runtime::ConnectorCall;

const CALLS: usize = 10_000;

/// Every plugin `plugins/build.sh` builds, with the grants it needs to load
/// (nothing is contacted at load). noop serves `ticketing`.
fn configs(secret: &std::path::Path) -> Vec<PluginConfig> {
    let web = HttpGrant {
        origin: Origin::parse("https://example.com").unwrap(),
        private_network: false,
        credential: None,
    };
    let relay = SmtpGrant {
        host: "127.0.0.1".into(),
        port: Some(25),
        tls: SmtpTls::None,
        username: None,
        password: None,
        ca_file: None,
    };
    support::PLUGINS
        .iter()
        .map(|(name, _)| {
            let mut c = PluginConfig::new(name, support::wasm(name));
            match *name {
                "noop" => c = c.bound_to("ticketing"),
                "mail" => c.smtp = Some(relay.clone()),
                "greedy" => {
                    c.http = vec![web.clone()];
                    c.smtp = Some(relay.clone());
                    c.secrets.insert(
                        "admin-password".into(),
                        SecretRef::File(secret.to_path_buf()),
                    );
                }
                "forbidden-http" | "metadata-http" | "loopback-http" | "bigbody" => {
                    c.http = vec![web.clone()]
                }
                _ => {}
            }
            c
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    vakt::plugin::init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host_config = HostConfig {
        cache_dir: dir.path().join("plugin-cache"),
        concurrency: 64,
    };
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "x").unwrap();
    let configs = || configs(&secret);
    let n = configs().len();

    let t = Instant::now();
    let host = rt
        .block_on(PluginHost::start(host_config.clone(), configs()))
        .expect("load the plugins");
    println!(
        "start, compiling {n} plugins: {:.0} ms (pooling allocator: {})",
        t.elapsed().as_secs_f64() * 1e3,
        host.pooling()
    );
    drop(host);

    let mut starts = Vec::new();
    let mut host = None;
    for _ in 0..5 {
        let t = Instant::now();
        let h = rt
            .block_on(PluginHost::start(host_config.clone(), configs()))
            .expect("load the plugins");
        starts.push(t.elapsed());
        assert!(h.loaded().iter().all(|(_, cached)| *cached));
        host = Some(h);
    }
    starts.sort();
    println!(
        "start with {n} cached plugins: median {:.1} ms, best {:.1} ms (5 starts; engine, cache check, \
         deserialize, link, manifest)",
        percentile(&starts, 0.5).as_secs_f64() * 1e3,
        starts[0].as_secs_f64() * 1e3
    );

    let host = host.unwrap();
    let call = || ConnectorCall {
        instance: "bench".into(),
        role: "ticketing".into(),
        action: "get".into(),
        args: json!({"ticket": "1"}),
        idempotency_key: "bench/step/0/1".into(),
        attempt: 1,
        deadline: None,
    };
    let mut times = Vec::with_capacity(CALLS);
    rt.block_on(async {
        for _ in 0..1000 {
            host.call_named("noop", call()).await;
        }
        for _ in 0..CALLS {
            let t = Instant::now();
            let out = host.call_named("noop", call()).await;
            times.push(t.elapsed());
            assert!(matches!(out, CallOutcome::Ok(_)), "{out:?}");
        }
    });
    times.sort();
    println!(
        "noop call ({CALLS} calls, fresh store + instantiate + call): p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
        times.last().unwrap().as_secs_f64() * 1e6,
    );
}
