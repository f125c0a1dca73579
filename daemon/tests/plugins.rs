//! The plugin host against real components (built by `plugins/build.sh`
//! when missing) and real servers on loopback:
//! - the mail plugin sends through aiosmtpd; the received message is parsed
//!   with Python's `email` package and its headers and bodies asserted;
//! - hostile plugins (a loop, a memory bomb, requests to an origin not
//!   granted, to 169.254.169.254, to loopback, an enormous response, a
//!   redirect to the metadata address, a panic) each fail their call with a
//!   clear error while calls on the noop plugin keep completing;
//! - a manifest asking for more than the config grants is refused at load;
//! - compiled plugins come from the private cache on the next start, a
//!   corrupt cache file is recompiled, a cache others can read is refused.

#[path = "plugin_support/mod.rs"]
mod support;

use support::{call, err_text, grant, host_config, hostile_configs};

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vakt::engine::CallOutcome;
use vakt::plugin::{HostConfig, PluginConfig, PluginConnector, PluginHost, SmtpGrant, SmtpTls};
use vakt::runtime::Connector;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_plugin_sends_through_a_real_smtp_server() {
    vakt::plugin::init();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let smtp = support::SmtpSink::start(&inbox);

    let mut mail = PluginConfig::new("mail", support::wasm("mail")).bound_to("mail");
    mail.smtp = Some(SmtpGrant {
        host: "127.0.0.1".into(),
        port: Some(smtp.port),
        tls: SmtpTls::None,
        username: None,
        password: None,
        ca_file: None,
    });
    mail.settings
        .insert("from".into(), "vakt@kommun.example".into());
    let host = Arc::new(
        PluginHost::start(host_config(dir.path()), vec![mail])
            .await
            .unwrap(),
    );
    let connector: Arc<dyn Connector> = Arc::new(PluginConnector::new(host));

    let subject = "Åtgärd krävs: åäö ÅÄÖ æøå ÆØÅ";
    let text =
        "Hej Åsa!\n\nBehörigheten för Blåbär-tjänsten löper ut. Søknad om forlengelse: æøå ÆØÅ.\n";
    let html = "<p>Hej Åsa!</p><p>Behörigheten för <b>Blåbär</b>-tjänsten löper ut: æøå ÆØÅ.</p>";
    let out = connector
        .call(call(
            "mail",
            "send",
            json!({
                "to": ["Åsa Öberg <asa.oberg@kommun.example>"],
                "cc": ["it@kommun.example"],
                "bcc": ["arkiv@kommun.example"],
                "reply_to": "Kundtjänst Støtte <support@kommun.example>",
                "from_name": "Kommunens IT – Växjö",
                "subject": subject,
                "body": text,
                "html": html,
            }),
        ))
        .await;
    let CallOutcome::Ok(sent) = out else {
        panic!("mail.send failed: {out:?}")
    };
    let message_id = sent["message_id"].as_str().unwrap().to_string();
    let response = sent["response"].as_str().unwrap();
    assert!(response.starts_with("250"), "{response}");
    assert!(response.contains("queued as VAKT0001"), "{response}");

    let envelope = smtp.envelope(1);
    assert_eq!(envelope["mail_from"], "vakt@kommun.example");
    let mut rcpt: Vec<String> = serde_json::from_value(envelope["rcpt_tos"].clone()).unwrap();
    rcpt.sort();
    assert_eq!(
        rcpt,
        [
            "arkiv@kommun.example",
            "asa.oberg@kommun.example",
            "it@kommun.example"
        ]
    );

    let m = smtp.parsed(1);
    let h = &m["headers"];
    assert_eq!(h["Subject"], subject);
    assert_eq!(h["From"], "Kommunens IT – Växjö <vakt@kommun.example>");
    assert_eq!(h["To"], "Åsa Öberg <asa.oberg@kommun.example>");
    assert_eq!(h["Cc"], "it@kommun.example");
    assert!(
        h.get("Bcc").is_none(),
        "Bcc must not be in the message: {h}"
    );
    assert_eq!(h["Reply-To"], "Kundtjänst Støtte <support@kommun.example>");
    assert_eq!(h["Auto-Submitted"], "auto-generated");
    assert_eq!(h["MIME-Version"], "1.0");
    assert!(h.get("Date").is_some());
    let header_id = h["Message-ID"].as_str().unwrap();
    assert_eq!(
        header_id.trim_matches(['<', '>']),
        message_id.trim_matches(['<', '>'])
    );
    assert_eq!(m["content_type"], "multipart/alternative");
    assert_eq!(m["defects"], json!([]));
    let parts = m["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{parts:?}");
    let norm = |s: &Value| {
        s.as_str()
            .unwrap()
            .replace("\r\n", "\n")
            .trim_end()
            .to_string()
    };
    assert_eq!(parts[0]["content_type"], "text/plain");
    assert_eq!(parts[0]["charset"], "utf-8");
    assert_eq!(norm(&parts[0]["content"]), text.trim_end());
    assert_eq!(parts[1]["content_type"], "text/html");
    assert!(
        norm(&parts[1]["content"]).contains(html),
        "{}",
        parts[1]["content"]
    );

    // The same step visit sends the same Message-ID (idempotency).
    let again = connector
        .call(call(
            "mail",
            "send",
            json!({"to": ["a@kommun.example"], "subject": "x", "body": "y"}),
        ))
        .await;
    let CallOutcome::Ok(again) = again else {
        panic!("{again:?}")
    };
    assert_eq!(again["message_id"].as_str().unwrap(), message_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_fail_cleanly_while_others_go_on() {
    vakt::plugin::init();
    let dir = tempfile::tempdir().unwrap();
    let http_port = support::http_server();
    let host = Arc::new(
        PluginHost::start(host_config(dir.path()), hostile_configs(http_port))
            .await
            .unwrap(),
    );

    // The noop plugin answers through its role while the hostile ones run.
    let busy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let noop = {
        let (host, busy) = (host.clone(), busy.clone());
        tokio::spawn(async move {
            let (mut n, mut slowest) = (0u32, Duration::ZERO);
            while busy.load(std::sync::atomic::Ordering::Relaxed) || n < 10 {
                let t = Instant::now();
                let out = host
                    .call(call("ticketing", "get", json!({"ticket": n})))
                    .await;
                slowest = slowest.max(t.elapsed());
                let CallOutcome::Ok(v) = out else {
                    panic!("noop failed: {out:?}")
                };
                assert_eq!(v, json!({"ticket": n}));
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (n, slowest)
        })
    };

    let cases: [&'static str; 10] = [
        "spin",
        "membomb",
        "panics",
        "forbidden-http",
        "metadata-http",
        "loopback-http",
        "bigbody",
        "bigbody-length",
        "redirect",
        "loopback-granted",
    ];
    let started = Instant::now();
    let jobs: Vec<_> = cases
        .into_iter()
        .map(|name| {
            let host = host.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let out = host
                    .call_named(name, call("generic", "run", json!({})))
                    .await;
                (name, out, t.elapsed())
            })
        })
        .collect();
    let mut results = std::collections::HashMap::new();
    for j in jobs {
        let (name, out, took) = j.await.unwrap();
        eprintln!("{name} ({} ms): {out:?}", took.as_millis());
        results.insert(name, (out, took));
    }
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    let (noop_calls, slowest) = noop.await.unwrap();
    eprintln!(
        "noop: {noop_calls} calls during {} ms of hostile calls, slowest {} ms",
        started.elapsed().as_millis(),
        slowest.as_millis()
    );
    assert!(noop_calls >= 10);
    assert!(
        slowest < Duration::from_secs(2),
        "noop was starved: {slowest:?}"
    );

    let expect = |name: &str, needles: &[&str]| {
        let (message, retryable) = err_text(&results[name].0);
        for n in needles {
            assert!(message.contains(n), "{name}: `{message}` lacks `{n}`");
        }
        assert!(
            !retryable,
            "{name}: a refusal or a trap is not retryable: {message}"
        );
    };
    expect("spin", &["plugin `spin` ran longer than 500ms of CPU"]);
    assert!(
        results["spin"].1 < Duration::from_secs(4),
        "spin stopped late"
    );
    expect(
        "membomb",
        &["plugin `membomb` exceeded its 16 MiB memory limit"],
    );
    expect(
        "panics",
        &[
            "plugin `panics` panicked",
            "the panics test plugin panics on purpose",
        ],
    );
    expect(
        "forbidden-http",
        &["https://forbidden.invalid:443 is not granted to plugin `forbidden-http`"],
    );
    expect(
        "metadata-http",
        &[
            "http://169.254.169.254:80 resolves to 169.254.169.254, a link-local address",
            "private_network",
        ],
    );
    expect(
        "loopback-http",
        &[&format!(
            "http://127.0.0.1:{http_port} resolves to 127.0.0.1, a loopback address"
        )],
    );
    expect("bigbody", &["is larger than the 1048576 byte limit"]);
    expect("bigbody-length", &["is larger than the 1048576 byte limit"]);
    expect(
        "redirect",
        &["http://169.254.169.254:80 is not granted to plugin `redirect`"],
    );
    let CallOutcome::Ok(ok) = &results["loopback-granted"].0 else {
        panic!(
            "an explicitly granted loopback origin must work: {:?}",
            results["loopback-granted"].0
        )
    };
    assert_eq!(ok["status"], 200);

    // The host is still fine after all of it.
    let out = host
        .call(call("ticketing", "get", json!({"ticket": "after"})))
        .await;
    assert!(matches!(out, CallOutcome::Ok(_)), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_asking_for_more_than_granted_is_refused_at_load() {
    vakt::plugin::init();
    let dir = tempfile::tempdir().unwrap();
    let mut greedy = PluginConfig::new("greedy", support::wasm("greedy"));
    greedy.http = vec![grant("https://example.com", false)];
    let err = match PluginHost::start(host_config(dir.path()), vec![greedy]).await {
        Ok(_) => panic!("greedy must be refused"),
        Err(e) => e.to_string(),
    };
    eprintln!("{err}");
    assert!(err.contains("plugin `greedy` asks for `smtp`"), "{err}");
    assert!(
        err.contains("plugin `greedy` asks for secret `admin-password`"),
        "{err}"
    );
    assert!(!err.contains("asks for `http`"), "http was granted: {err}");

    // Nothing granted at all: every capability is named.
    let bare = PluginConfig::new("greedy", support::wasm("greedy"));
    let err = PluginHost::start(host_config(dir.path()), vec![bare])
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("plugin `greedy` asks for `http`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_plugins_are_cached_privately() {
    vakt::plugin::init();
    let dir = tempfile::tempdir().unwrap();
    let config = || vec![PluginConfig::new("noop", support::wasm("noop")).bound_to("ticketing")];
    let first = PluginHost::start(host_config(dir.path()), config())
        .await
        .unwrap();
    assert_eq!(first.loaded(), [("noop".to_string(), false)]);
    drop(first);

    let t = Instant::now();
    let second = PluginHost::start(host_config(dir.path()), config())
        .await
        .unwrap();
    eprintln!("start from the cache: {} ms", t.elapsed().as_millis());
    assert_eq!(second.loaded(), [("noop".to_string(), true)]);
    drop(second);

    use std::os::unix::fs::PermissionsExt;
    let cache = dir.path().join("plugin-cache");
    assert_eq!(
        std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // A corrupt file is recompiled, not trusted.
    for f in std::fs::read_dir(&cache).unwrap() {
        std::fs::write(f.unwrap().path(), b"not a compiled component").unwrap();
    }
    let third = PluginHost::start(host_config(dir.path()), config())
        .await
        .unwrap();
    assert_eq!(third.loaded(), [("noop".to_string(), false)]);
    let out = third
        .call(call("ticketing", "get", json!({"ticket": 1})))
        .await;
    assert!(matches!(out, CallOutcome::Ok(_)), "{out:?}");
    drop(third);

    // A cache directory others can enter is refused.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = PluginHost::start(host_config(dir.path()), config())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("chmod 700"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_routed_by_role() {
    vakt::plugin::init();
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::start(
        host_config(dir.path()),
        vec![PluginConfig::new("noop", support::wasm("noop")).bound_to("ticketing")],
    )
    .await
    .unwrap();
    let out = host.call(call("identity", "list_users", json!({}))).await;
    let (message, retryable) = err_text(&out);
    assert_eq!(
        message,
        "no plugin is bound to role `identity`; add one to the daemon config"
    );
    assert!(!retryable);
    let out = host
        .call(call(
            "ticketing",
            "close",
            json!({"ticket": 7, "comment": "klar"}),
        ))
        .await;
    assert_eq!(
        out,
        CallOutcome::Ok(json!({"ticket": 7, "comment": "klar"}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_address_space_for_the_pool_plugins_are_allocated_on_demand() {
    vakt::plugin::init();
    let dir = tempfile::tempdir().unwrap();
    // 40,000 concurrent calls would need ~320 TiB of reserved address space
    // for memory slots: more than a 47-bit user address space holds.
    let config = HostConfig {
        cache_dir: dir.path().join("plugin-cache"),
        concurrency: 40_000,
    };
    let noop = PluginConfig::new("noop", support::wasm("noop")).bound_to("ticketing");
    let host = PluginHost::start(config, vec![noop]).await.unwrap();
    assert!(!host.pooling(), "the pool cannot have been reserved");
    let out = host
        .call(call("ticketing", "get", json!({"ticket": 1})))
        .await;
    assert_eq!(out, CallOutcome::Ok(json!({"ticket": 1})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_injected_by_the_host() {
    use vakt::plugin::{Credential, SecretRef};
    vakt::plugin::init();
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        SecretRef::File(path)
    };
    let port = support::http_server();
    let local = format!("http://127.0.0.1:{port}");
    let plugin = |name: &str, path: &str, credential: Option<Credential>| {
        let mut p = PluginConfig::new(name, support::wasm("bigbody"));
        let mut g = grant(&local, true);
        g.credential = credential;
        p.http = vec![g];
        p.settings.insert("url".into(), format!("{local}{path}"));
        p
    };
    let configs = vec![
        plugin(
            "bearer",
            "/auth/bearer",
            Some(Credential::Bearer {
                token: secret("token", "s3cret"),
                scheme: None,
            }),
        ),
        plugin(
            "basic",
            "/auth/basic",
            Some(Credential::Basic {
                username: "vakt".into(),
                password: secret("pw", "pw"),
            }),
        ),
        plugin(
            "apikey",
            "/auth/apikey",
            Some(Credential::ApiKey {
                header: "X-Api-Key".into(),
                value: secret("key", "k-123"),
            }),
        ),
        plugin(
            "oauth",
            "/auth/oauth",
            Some(Credential::Oauth2ClientCredentials {
                token_url: format!("{local}/token"),
                client_id: "vakt".into(),
                client_secret: secret("client", "oauth-secret"),
                scope: Some("tickets".into()),
            }),
        ),
        plugin("none", "/auth/bearer", None),
    ];
    let host = PluginHost::start(host_config(dir.path()), configs)
        .await
        .unwrap();
    let run = |name: &'static str| host.call_named(name, call("generic", "run", json!({})));
    for name in ["bearer", "basic", "apikey", "oauth", "oauth"] {
        let out = run(name).await;
        assert_eq!(out, CallOutcome::Ok(json!({"bytes": 2})), "{name}");
    }
    // The token was fetched once and cached.
    assert_eq!(
        support::TOKEN_REQUESTS.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    // Without a credential the server refuses: the check above is real.
    let (message, _) = err_text(&run("none").await);
    assert!(message.contains("401"), "{message}");
}
