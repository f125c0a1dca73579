//! The harness of the end-to-end tests of `vakt serve` (`tests/serve_*.rs`).
//!
//! - [`daemon`]: a real `vakt serve` process on a temporary directory (config,
//!   data, workflows), on port 0; tokens through `vakt token create`;
//!   `kill -9`, SIGTERM and restarts on the same data directory. Its stderr
//!   goes to a file whose tail is printed when a test fails.
//! - [`http`]: a small blocking facade over reqwest (no proxy, no pooled
//!   connections, so a restarted daemon never meets a stale connection).
//! - [`smtp`]: the aiosmtpd sink of the daemon's plugin tests on loopback.
//! - [`mail`]: received messages parsed with mail-parser, signed links found.
//! - [`proxy`]: an HTTP proxy in front of a server that can lose answers.
//! - [`servers`]: the real ticket systems (Redmine, Request Tracker) on
//!   loopback, a ticketing plugin bound in a daemon's config, their REST APIs.
//! - [`poll()`]: waiting on a condition with a deadline (never a bare sleep
//!   as an assertion).

pub mod daemon;
pub mod http;
pub mod mail;
pub mod proxy;
pub mod servers;
pub mod smtp;

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use daemon::{Daemon, DaemonBuilder};
pub use http::{Req, Resp};
pub use mail::{Link, Mail};
pub use smtp::Smtp;

/// The workspace root (where `workflows/`, `plugins/` and `daemon/` are).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// Calls `check` until it gives `Ok`, every 50 ms, for at most `timeout`;
/// then panics naming `what` and the last `Err` (what was seen instead).
pub fn poll<T>(
    what: impl Display,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let started = Instant::now();
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) => {
                if started.elapsed() > timeout {
                    panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Milliseconds since the Unix epoch, by the system clock (the daemon's too).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as i64
}

/// sha256 of `bytes`, lower-case hex: a workflow version's hash.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A small deterministic generator, so a failing run can be repeated.
pub struct Lcg(pub u64);

impl Lcg {
    /// A number in `0..below`.
    pub fn below(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below.max(1)
    }
}
