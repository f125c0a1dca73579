//! Shared by `tests/connector_request_tracker.rs`: the Request Tracker
//! server (started by `scripts/servers/request-tracker.sh start`), the
//! request-tracker component (built by `plugins/build.sh` on first use),
//! the plugin configs with their grants, REST2 read-backs with reqwest, and
//! a tiny HTTP server that answers what RT rarely does (429, 503, HTML).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use vakt::plugin::{
    Credential, HostConfig, HttpGrant, Origin, PluginConfig, PluginHost, SecretRef,
};

/// The env var holding the good credential (`token <TOKEN>`).
pub const GOOD_ENV: &str = "VAKT_TEST_RT_AUTHORIZATION";
/// The env var holding a credential RT refuses.
pub const BAD_ENV: &str = "VAKT_TEST_RT_AUTHORIZATION_WRONG";

/// A running RT: its web root and root's auth token.
pub struct Server {
    pub url: String,
    pub token: String,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The server, started once per test process; `None` only when
/// `VAKT_SKIP_SERVERS=1`. Also sets the credential env vars, once, before
/// any plugin host exists (nothing else reads the environment then).
pub fn server() -> Option<&'static Server> {
    static SERVER: OnceLock<Option<Server>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if std::env::var("VAKT_SKIP_SERVERS").as_deref() == Ok("1") {
                eprintln!(
                    "VAKT_SKIP_SERVERS=1: skipping the Request Tracker tests \
                     (they need scripts/servers/request-tracker.sh start)"
                );
                return None;
            }
            let script = repo_root().join("scripts/servers/request-tracker.sh");
            let out = Command::new("bash")
                .arg(&script)
                .arg("start")
                .current_dir(repo_root())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{} start failed ({}); is request-tracker5 installed (`{} install`, as root)? \
                 Set VAKT_SKIP_SERVERS=1 to skip.\nstdout:\n{stdout}\nstderr:\n{}",
                script.display(),
                out.status,
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let line = |name: &str| {
                stdout
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}=")))
                    .unwrap_or_else(|| panic!("no {name}= line in: {stdout}"))
                    .trim()
                    .to_string()
            };
            let server = Server {
                url: line("RT_URL"),
                token: line("RT_TOKEN"),
            };
            // SAFETY: set once, inside this OnceLock, which every test
            // passes before it starts a plugin host or any other thread of
            // ours reads the environment.
            unsafe {
                std::env::set_var(GOOD_ENV, &server.token);
                std::env::set_var(BAD_ENV, "1-99-0123456789abcdef0123456789abcdef");
            }
            Some(server)
        })
        .as_ref()
}

/// The request-tracker component, built with `plugins/build.sh` once per
/// test process (a no-op when it is up to date).
pub fn wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let script = repo_root().join("plugins/build.sh");
            let out = Command::new("bash")
                .arg(&script)
                .arg("vakt-plugin-request-tracker")
                .current_dir(repo_root())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "plugins/build.sh vakt-plugin-request-tracker failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
            PathBuf::from(dir).join("vakt_plugin_request_tracker.wasm")
        })
        .clone()
}

/// A host config whose compile cache is shared by every test of the
/// process and already holds the component. Compiling it takes ~10 s in a
/// debug build, and a host compiles it once per plugin, so the cache is
/// warmed first by a host of one plugin, and it is kept between runs in
/// `${VAKT_SERVERS_DIR:-target/test-servers}/rt-plugin-cache` (created
/// 0700 by the host; keyed by the component's hash and wasmtime's).
pub fn host_config() -> HostConfig {
    static WARM: OnceLock<PathBuf> = OnceLock::new();
    let dir = WARM.get_or_init(|| {
        let servers = std::env::var_os("VAKT_SERVERS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/test-servers"));
        let servers = if servers.is_absolute() {
            servers
        } else {
            repo_root().join(servers)
        };
        std::fs::create_dir_all(&servers).unwrap();
        let dir = servers.join("rt-plugin-cache");
        let config = HostConfig {
            cache_dir: dir.clone(),
            concurrency: 16,
        };
        let plugin = plugin("warm", "http://127.0.0.1:9", None);
        // A thread of its own: the caller may be inside a tokio runtime.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(PluginHost::start(config, vec![plugin]))
                .map(drop)
                .unwrap_or_else(|e| panic!("loading the request-tracker plugin: {e}"));
        })
        .join()
        .unwrap();
        dir
    });
    HostConfig {
        cache_dir: dir.clone(),
        concurrency: 16,
    }
}

/// The plugin `name` for RT at `base_url`, its origin granted with an
/// `Authorization: token …` credential read from `env`.
pub fn plugin(name: &str, base_url: &str, env: Option<&str>) -> PluginConfig {
    let mut p = PluginConfig::new(name, wasm());
    let origin = Origin::parse(base_url.trim_end_matches('/')).unwrap();
    p.http = vec![HttpGrant {
        origin,
        private_network: true,
        credential: env.map(|e| Credential::Bearer {
            token: SecretRef::Env(e.into()),
            scheme: Some("token".into()),
        }),
    }];
    p.settings.insert("base_url".into(), base_url.into());
    p.settings.insert("queue".into(), "vakt".into());
    p
}

/// A prefix unique to this test process, so keys never meet those of an
/// earlier run against the same (kept) database.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("run-{}-{nanos}", std::process::id())
    })
}

/// `GET {RT}/REST/2.0/{path}` as root, straight from RT (not through the
/// plugin), parsed as JSON.
pub async fn rest_get(server: &Server, path: &str) -> Value {
    let url = format!("{}/REST/2.0/{path}", server.url);
    let response = reqwest::Client::new()
        .get(&url)
        .header("Authorization", format!("token {}", server.token))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// A ticket's transactions, read straight from RT: `(type, text)` for each,
/// the text of its `text/plain` parts joined.
pub async fn history(server: &Server, id: &str) -> Vec<(String, String)> {
    let txns = rest_get(
        server,
        &format!("ticket/{id}/history?fields=Type&per_page=100"),
    )
    .await;
    let parts = rest_get(
        server,
        &format!("ticket/{id}/attachments?fields=TransactionId,ContentType,Content&per_page=100"),
    )
    .await;
    let parts = parts["items"].as_array().cloned().unwrap_or_default();
    txns["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let tid = t["id"].as_str().unwrap_or_default();
            let text: Vec<&str> = parts
                .iter()
                .filter(|a| a["TransactionId"].as_str() == Some(tid))
                .filter(|a| {
                    a["ContentType"]
                        .as_str()
                        .is_some_and(|c| c.starts_with("text/plain"))
                })
                .filter_map(|a| a["Content"].as_str())
                .collect();
            (t["Type"].as_str().unwrap().to_string(), text.join("\n"))
        })
        .collect()
}

/// An HTTP server on 127.0.0.1 that answers like an RT in trouble:
/// `/REST/2.0/ticket/1` 429 with `Retry-After: 7`, `/ticket/2` 503,
/// `/ticket/3` 200 with an HTML page, `/ticket/4` 200 with JSON of the
/// wrong shape; anything else 404. Runs until the process ends.
pub fn troubled_rt() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split_whitespace().nth(1).unwrap_or("/");
            let path = path.split('?').next().unwrap_or("/");
            let (status, extra, body) = match path {
                "/REST/2.0/ticket/1" => ("429 Too Many Requests", "Retry-After: 7\r\n", "{}"),
                "/REST/2.0/ticket/2" => ("503 Service Unavailable", "", "down for maintenance"),
                "/REST/2.0/ticket/3" => ("200 OK", "", "<html><body>Login</body></html>"),
                "/REST/2.0/ticket/4" => ("200 OK", "", r#"{"Subject": ["not", "text"]}"#),
                _ => ("404 Not Found", "", r#"{"message":"Not Found"}"#),
            };
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    port
}
