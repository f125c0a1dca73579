//! For `tests/connector_redmine.rs`: a real Redmine on loopback (started
//! with `scripts/servers/redmine.sh start`), the redmine plugin's component
//! (built with `plugins/build.sh vakt-plugin-redmine`), its config, Redmine's
//! REST API read directly, and a fake Redmine that answers what the real one
//! will not (429, 503, malformed JSON).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use vakt::engine::CallOutcome;
use vakt::plugin::{Credential, HttpGrant, Origin, PluginConfig, SecretRef};
use vakt::runtime::ConnectorCall;

/// The environment variables the grants read the API keys from.
pub const KEY_VAR: &str = "VAKT_TEST_REDMINE_KEY";
pub const WRONG_KEY_VAR: &str = "VAKT_TEST_REDMINE_WRONG_KEY";

/// The wrong key a grant may send.
pub const WRONG_KEY: &str = "0000000000000000000000000000000000000000";

/// Sets [`KEY_VAR`] (to `key`) and [`WRONG_KEY_VAR`] for the grants.
pub fn set_keys(key: Option<&str>) {
    // SAFETY: set before a host that reads them starts; the names are used
    // by this test binary only and always get the same values (the one
    // Redmine's key, the one wrong key), so a concurrent reader sees either
    // nothing or the final value.
    unsafe {
        if let Some(key) = key {
            std::env::set_var(KEY_VAR, key);
        }
        std::env::set_var(WRONG_KEY_VAR, WRONG_KEY);
    }
}

/// The Redmine `scripts/servers/redmine.sh start` set up.
#[derive(Clone, Debug)]
pub struct Redmine {
    pub url: String,
    pub key: String,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `None`, with a message, when `VAKT_SKIP_SERVERS=1`; otherwise the running
/// Redmine, started once per test binary. A failure to start panics: it is
/// a test failure, not a skip.
pub fn redmine() -> Option<Redmine> {
    static SERVER: OnceLock<Option<Redmine>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if std::env::var("VAKT_SKIP_SERVERS").as_deref() == Ok("1") {
                eprintln!(
                    "VAKT_SKIP_SERVERS=1: skipping the tests against a real Redmine \
                     (scripts/servers/redmine.sh)"
                );
                return None;
            }
            let script = repo_root().join("scripts/servers/redmine.sh");
            let out = Command::new("bash")
                .arg(&script)
                .arg("start")
                .current_dir(repo_root())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "`{} start` failed ({}); install Redmine with `{} install` (as root), or set \
                 VAKT_SKIP_SERVERS=1 to skip these tests.\n{}{}",
                script.display(),
                out.status,
                script.display(),
                stdout,
                String::from_utf8_lossy(&out.stderr)
            );
            let value = |name: &str| {
                stdout
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}=")))
                    .unwrap_or_else(|| panic!("`redmine.sh start` printed no {name}: {stdout}"))
                    .trim()
                    .to_string()
            };
            Some(Redmine {
                url: value("REDMINE_URL"),
                key: value("REDMINE_KEY"),
            })
        })
        .clone()
}

/// The redmine plugin's component, built (or found up to date) once.
pub fn wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let script = repo_root().join("plugins/build.sh");
            let out = Command::new("bash")
                .arg(&script)
                .arg("vakt-plugin-redmine")
                .current_dir(repo_root())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "`plugins/build.sh vakt-plugin-redmine` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let file = PathBuf::from(dir).join("vakt_plugin_redmine.wasm");
            assert!(file.exists(), "no {}", file.display());
            file
        })
        .clone()
}

/// `<target>/test-plugin-cache/connector_redmine`: compiled components,
/// kept between runs (the host creates it private, 0700).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("test-plugin-cache")
        .join("connector_redmine")
}

/// The plugin as `name`, granted `url` (loopback, so `private_network`)
/// with the API key from `key_var`, and `settings`.
pub fn plugin(name: &str, url: &str, key_var: &str, settings: &[(&str, &str)]) -> PluginConfig {
    let mut p = PluginConfig::new(name, wasm());
    p.http = vec![HttpGrant {
        origin: Origin::parse(url).unwrap(),
        private_network: true,
        credential: Some(Credential::ApiKey {
            header: "X-Redmine-API-Key".into(),
            value: SecretRef::Env(key_var.into()),
        }),
    }];
    p.settings.insert("base_url".into(), url.into());
    for (k, v) in settings {
        p.settings.insert((*k).into(), (*v).into());
    }
    p
}

/// A call with its own idempotency key.
pub fn call(action: &str, args: Value, key: &str) -> ConnectorCall {
    ConnectorCall {
        instance: key.split('/').next().unwrap_or("inst").into(),
        role: "ticketing".into(),
        action: action.into(),
        args,
        idempotency_key: key.into(),
        attempt: 1,
        deadline: None,
    }
}

/// An idempotency key no earlier run used (the Redmine instance persists).
pub fn fresh_key(step: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test-{nanos:x}/{step}/0/1")
}

pub fn ok(outcome: CallOutcome) -> Value {
    match outcome {
        CallOutcome::Ok(v) => v,
        CallOutcome::Err { message, .. } => panic!("expected success, got: {message}"),
    }
}

/// `(message, retryable, retry_after)` of a failed call, printed (with
/// `--nocapture`) as the failure mode `what` and the error it produced.
pub fn err(what: &str, outcome: CallOutcome) -> (String, bool, Option<u64>) {
    match outcome {
        CallOutcome::Err {
            message,
            retryable,
            retry_after,
        } => {
            eprintln!(
                "failure mode `{what}`: retryable={retryable} retry_after={retry_after:?}: {message}"
            );
            (message, retryable, retry_after)
        }
        CallOutcome::Ok(v) => panic!("expected an error, got {v}"),
    }
}

impl Redmine {
    /// `GET {url}{path}` with the admin key, straight from Redmine.
    pub async fn get(&self, path: &str) -> Value {
        let resp = reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .header("X-Redmine-API-Key", &self.key)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    /// The issue with its journals, as Redmine's REST API shows it.
    pub async fn issue(&self, id: &str) -> Value {
        self.get(&format!("/issues/{id}.json?include=journals"))
            .await
            .get("issue")
            .cloned()
            .unwrap()
    }
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fake Redmine on 127.0.0.1 that answers by path: `/issues/1.json` 429
/// with `Retry-After: 7`, `/issues/2.json` 200 with HTML, `/issues/3.json`
/// 503, `/issues/4.json` JSON of the wrong shape, `/issues/5.json` 422 with
/// Redmine's `errors`; anything else 404. Runs until the process ends.
pub fn fake_redmine() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream));
        }
    });
    port
}

fn answer(mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or("/");
    let (status, extra, body) = match path {
        "/issues/1.json" => ("429 Too Many Requests", "Retry-After: 7\r\n", ""),
        "/issues/2.json" => ("200 OK", "", "<html><body>Maintenance</body></html>"),
        "/issues/3.json" => ("503 Service Unavailable", "", "down for upgrade"),
        "/issues/4.json" => ("200 OK", "", r#"{"issue":{"id":"four"}}"#),
        "/issues/5.json" => (
            "422 Unprocessable Entity",
            "",
            r#"{"errors":["Status is invalid"]}"#,
        ),
        _ => ("404 Not Found", "", ""),
    };
    let _ = stream.write_all(
        format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
}
