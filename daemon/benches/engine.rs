//! Engine and store benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p vakt --bench engine` (set `VAKT_BENCH_WAITING` to change
//! the 100,000 waiting instances). Measures, on a real sled directory:
//! 1. durable instances/s of a 3-step workflow with an instant connector, at
//!    1 and at 64 concurrent starts;
//! 2. p50/p99 latency of one durable transition (a signal to a waiting
//!    instance, acknowledged after its flush), at 1 and 64 concurrent;
//! 3. disk bytes and RSS with N waiting instances, each with an open task
//!    and a timer;
//! 4. the time to reopen that directory and be ready.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use vakt::engine::{CallOutcome, Event};
use vakt::runtime::{
    BoxFuture, Connector, ConnectorCall, LogNotifier, Plans, Runtime, RuntimeConfig, SystemClock,
};
use vakt::store::{Instances, SledStore, StoreConfig};
use vakt::workflow;

const THREE: &str = r#"
id: three
steps:
  - id: a
    call: ticketing.create
    with: {subject: "s", body: "b"}
  - id: b
    call: ticketing.comment
    with: {ticket: "{{ steps.a.output.id }}", body: "c"}
  - id: c
    call: ticketing.close
    with: {ticket: "{{ steps.a.output.id }}"}
"#;

const SIGNALS: &str = r#"
id: signals
steps:
  - id: s1
    wait: {signal: go}
  - id: s2
    wait: {signal: go}
  - id: s3
    wait: {signal: go}
"#;

const WAITING: &str = r#"
id: waiting
input:
  n: {type: integer}
steps:
  - id: review
    approval:
      title: "Granska {{ input.n }}"
      assignees: [manager@kommun.se]
      deadline: 30d
"#;

struct Instant0;

impl Connector for Instant0 {
    fn call(&self, call: ConnectorCall) -> BoxFuture<CallOutcome> {
        Box::pin(async move { CallOutcome::Ok(json!({"id": call.idempotency_key})) })
    }
}

async fn open(dir: &std::path::Path) -> (Runtime, Duration) {
    let t = Instant::now();
    let store = SledStore::open(dir, &StoreConfig::default()).unwrap();
    let mut plans = Plans::default();
    let mut srcs = Vec::new();
    for src in [THREE, SIGNALS, WAITING] {
        let p = workflow::load_source("b.yaml", src.to_owned())
            .result
            .unwrap();
        plans.insert(p.clone());
        srcs.push((p, src));
    }
    let rt = Runtime::open(
        store,
        plans,
        Arc::new(Instant0),
        Arc::new(LogNotifier),
        Arc::new(SystemClock),
        RuntimeConfig::default(),
    )
    .unwrap();
    let ready = t.elapsed();
    for (p, s) in srcs {
        rt.install(p, s).unwrap();
    }
    (rt, ready)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn completed(rt: &Runtime, workflow: &str, n: usize) {
    loop {
        if rt
            .store()
            .ids_by_workflow(workflow, Some("completed"), n + 1)
            .unwrap()
            .len()
            >= n
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn throughput(rt: &Runtime, n: usize, concurrency: usize, tag: &str) -> f64 {
    let before = rt
        .store()
        .ids_by_workflow("three", Some("completed"), usize::MAX)
        .unwrap()
        .len();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let t = Instant::now();
    let mut hs = Vec::with_capacity(n);
    for i in 0..n {
        let (rt, sem) = (rt.clone(), sem.clone());
        let key = format!("{tag}-{i}");
        hs.push(tokio::spawn(async move {
            let _p = sem.acquire_owned().await;
            let id = rt
                .start("three", json!({}), "bench@vakt.test", Some(key))
                .await
                .unwrap();
            // Hold the slot until this instance is done: `concurrency` instances in flight.
            rt.wait_final(&id).await.unwrap();
        }));
    }
    for h in hs {
        h.await.unwrap();
    }
    completed(rt, "three", before + n).await;
    n as f64 / t.elapsed().as_secs_f64()
}

async fn transition_latency(rt: &Runtime, concurrency: usize) -> (f64, f64, f64) {
    let mut ids = Vec::new();
    for _ in 0..concurrency {
        ids.push(
            rt.start("signals", json!({}), "bench@vakt.test", None)
                .await
                .unwrap(),
        );
    }
    let t = Instant::now();
    let mut hs = Vec::new();
    for id in ids {
        let rt = rt.clone();
        hs.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for _ in 0..3 {
                let t = Instant::now();
                rt.event(
                    &id,
                    Event::Signal {
                        name: "go".into(),
                        data: json!(null),
                    },
                )
                .await
                .unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for h in hs {
        all.extend(h.await.unwrap());
    }
    let secs = t.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    (p(0.5), p(0.99), all.len() as f64 / secs)
}

fn main() {
    let waiting: usize = std::env::var("VAKT_BENCH_WAITING")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (rt, _) = open(dir.path()).await;
        println!("vakt engine benchmark ({} cores)", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
        throughput(&rt, 200, 8, "warm").await;
        let one = throughput(&rt, 500, 1, "c1").await;
        println!("durable 3-step instances/s, 1 at a time:   {one:8.0}");
        let many = throughput(&rt, 20_000, 64, "c64").await;
        println!("durable 3-step instances/s, 64 at a time:  {many:8.0}");
        for c in [1, 64] {
            let (p50, p99, tps) = transition_latency(&rt, c).await;
            println!("durable transition latency, {c:2} concurrent: p50 {p50:.2} ms, p99 {p99:.2} ms ({tps:.0} transitions/s)");
        }
        rt.shutdown().await;
        drop(rt);

        let dir = tempfile::tempdir().unwrap();
        let (rt, _) = open(dir.path()).await;
        let rss0 = rss_mib();
        let t = Instant::now();
        // A fixed pool of 256 clients, so the benchmark's own tasks do not
        // weigh on the RSS measured.
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut hs = Vec::new();
        for _ in 0..256 {
            let (rt, next) = (rt.clone(), next.clone());
            hs.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= waiting {
                        break;
                    }
                    rt.start("waiting", json!({"n": n}), "bench@vakt.test", None).await.unwrap();
                }
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        let rss = rss_mib();
        let disk = rt.store().size_on_disk().unwrap() as f64 / (1024.0 * 1024.0);
        println!("{waiting} waiting instances (open task + timer each): started in {secs:.1} s ({:.0}/s)", waiting as f64 / secs);
        println!("  disk {disk:.0} MiB; RSS {rss:.0} MiB (was {rss0:.0} MiB before; sled cache 64 MiB)");
        rt.shutdown().await;
        drop(rt);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (rt, ready) = open(dir.path()).await;
        let open_tasks = rt.store().ids_by_workflow("waiting", Some("waiting"), usize::MAX).unwrap().len();
        println!("  reopened and ready in {:.0} ms ({open_tasks} waiting found; RSS now {:.0} MiB)", ready.as_secs_f64() * 1e3, rss_mib());
        rt.shutdown().await;
    });
}
