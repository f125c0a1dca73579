//! The daemon over HTTP: prints figures, asserts nothing.
//!
//! `cargo bench -p vakt --bench serve` starts a real `vakt serve` (the
//! release binary Cargo built for this bench) on a temporary data directory
//! and measures:
//! 1. durable starts per second through `POST /api/v1/workflows/…/instances`
//!    with 64 concurrent clients (each 201 is acknowledged after its flush),
//!    with p50/p99 latency;
//! 2. the daemon's RSS idle, and with N waiting instances (each waiting for
//!    a signal and holding a timer), N = `VAKT_BENCH_WAITING` (100,000);
//! 3. the same for a three-step workflow that completes at once (starts/s).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};

const WAITING: &str = r#"
id: waiting
input:
  n: {type: integer}
steps:
  - id: note
    set: {n: "{{ input.n }}"}
  - id: wait
    wait: {signal: go}
    timeout: 30d
  - id: done
    succeed: "ok"
"#;

const THREE: &str = r#"
id: three
input:
  n: {type: integer}
steps:
  - id: a
    set: {x: "{{ input.n }}"}
  - id: b
    set: {y: "{{ vars.x }}"}
  - id: c
    succeed: "{{ vars.y }}"
"#;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Daemon {
    child: Child,
    url: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_daemon(dir: &Path) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vakt"))
        .args(["serve"])
        .current_dir(dir)
        .env("VAKT_LISTEN", "127.0.0.1:0")
        .env("VAKT_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("vakt serve starts");
    let stdout = child.stdout.take().unwrap();
    let stdout = tokio::process::ChildStdout::from_std(stdout).unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("vakt printed its address");
        if let Some(rest) = line.strip_prefix("vakt: listening on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Daemon { child, url }
}

fn token(dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vakt"))
        .args([
            "token",
            "create",
            "--principal",
            "bench@kommun.se",
            "--role",
            "operator",
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .output()
        .expect("vakt token create runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Starts `n` instances of `workflow` with `clients` concurrent clients;
/// returns (seconds, sorted latencies).
async fn starts(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    workflow: &str,
    n: usize,
    clients: usize,
) -> (f64, Vec<Duration>) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, next) = (http.clone(), next.clone());
        let endpoint = format!("{url}/api/v1/workflows/{workflow}/instances");
        let auth = format!("Bearer {token}");
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break lat;
                }
                let t = Instant::now();
                let r = http
                    .post(&endpoint)
                    .header("authorization", &auth)
                    .json(&serde_json::json!({"n": i}))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(
                    r.status().as_u16(),
                    201,
                    "{}",
                    r.text().await.unwrap_or_default()
                );
                lat.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = t.elapsed().as_secs_f64();
    all.sort();
    (secs, all)
}

fn pct(v: &[Duration], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    vakt::plugin::init();
    let waiting: usize = std::env::var("VAKT_BENCH_WAITING")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(dir.path().join("workflows/waiting.yaml"), WAITING).unwrap();
    std::fs::write(dir.path().join("workflows/three.yaml"), THREE).unwrap();
    let token = token(dir.path());
    let daemon = start_daemon(dir.path()).await;
    let pid = daemon.child.id();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(pid);
    println!(
        "vakt serve over HTTP, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("  RSS idle: {:.1} MiB", idle as f64 / 1024.0);

    // Warm up, then the three-step workflow.
    let _ = starts(&http, &daemon.url, &token, "three", 500, 64).await;
    let n = 20_000;
    let (secs, lat) = starts(&http, &daemon.url, &token, "three", n, 64).await;
    println!(
        "  three-step instances, 64 clients: {:.0} starts/s ({n} in {secs:.1} s), latency p50 {:.2} ms, p99 {:.2} ms",
        n as f64 / secs,
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );

    let (secs, lat) = starts(&http, &daemon.url, &token, "waiting", waiting, 64).await;
    println!(
        "  waiting instances, 64 clients: {:.0} starts/s ({waiting} in {secs:.1} s), latency p50 {:.2} ms, p99 {:.2} ms",
        waiting as f64 / secs,
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let full = rss_kib(pid);
    println!(
        "  RSS with {waiting} waiting instances: {:.1} MiB ({:.2} MiB per 1,000 above idle)",
        full as f64 / 1024.0,
        (full.saturating_sub(idle)) as f64 / 1024.0 / (waiting as f64 / 1000.0)
    );
    let disk = dir_size(&dir.path().join("data/store"));
    println!("  store on disk: {:.0} MiB", disk as f64 / (1 << 20) as f64);
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = match e.metadata() {
                Ok(m) => m,
                Err(_) => continue,
            };
            total += if m.is_dir() {
                dir_size(&e.path())
            } else {
                m.len()
            };
        }
    }
    total
}
