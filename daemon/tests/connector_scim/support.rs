//! For `tests/connector_scim.rs`: the SCIM server (`scripts/servers/scim.sh`,
//! scim2-server on 127.0.0.1), seeded tenants, the plugin component, plugin
//! configs with an HTTP grant, direct reads of the server, and a recording
//! proxy that can change a group behind the plugin's back.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use serde::Deserialize;
use serde_json::Value;
use vakt::plugin::{Credential, HttpGrant, Origin, PluginConfig, SecretRef};

/// The environment variable the grants read the bearer token from.
pub const TOKEN_ENV: &str = "VAKT_TEST_SCIM_TOKEN";
/// One that holds a token the server refuses.
pub const WRONG_TOKEN_ENV: &str = "VAKT_TEST_SCIM_WRONG_TOKEN";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `$VAKT_SERVERS_DIR/scim` (default `target/test-servers/scim`), the
/// script's own directory.
pub fn servers_dir() -> PathBuf {
    let base = std::env::var_os("VAKT_SERVERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/test-servers"));
    let base = if base.is_absolute() {
        base
    } else {
        repo_root().join(base)
    };
    base.join("scim")
}

fn script() -> PathBuf {
    repo_root().join("scripts/servers/scim.sh")
}

/// `KEY=VALUE` lines of a `scim.sh` command; panics with its stderr.
fn run_script(args: &[&str]) -> HashMap<String, String> {
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/servers/scim.sh: {e}"));
    assert!(
        out.status.success(),
        "scripts/servers/scim.sh {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "scim.sh {} took {:.1}s{}",
        args.join(" "),
        started.elapsed().as_secs_f32(),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(|l| format!("\n  {l}"))
            .collect::<String>()
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// True (after saying so) when the servers are to be skipped.
pub fn skip() -> bool {
    if std::env::var("VAKT_SKIP_SERVERS").as_deref() == Ok("1") {
        eprintln!(
            "VAKT_SKIP_SERVERS=1: skipping the SCIM connector test (it needs \
             scripts/servers/scim.sh start)"
        );
        return true;
    }
    false
}

pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub root: String,
    pub token: String,
}

/// The server, started (and installed) once per test binary; the token is
/// put into [`TOKEN_ENV`] for the grants.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let env = run_script(&["start"]);
        let server = Server {
            root: env["SCIM_ROOT"].clone(),
            token: env["SCIM_TOKEN"].clone(),
        };
        // SAFETY: set while no other thread of this binary reads the
        // environment (under the OnceLock, before any plugin host exists);
        // the names are used by this test only.
        unsafe {
            std::env::set_var(TOKEN_ENV, &server.token);
            std::env::set_var(WRONG_TOKEN_ENV, "not-the-token");
        }
        server
    })
}

#[derive(Debug, Deserialize)]
pub struct SeedUser {
    pub id: String,
    #[serde(rename = "userName")]
    pub user_name: String,
    pub email: String,
    pub manager: Option<String>,
    pub active: bool,
}

#[derive(Debug, Deserialize)]
pub struct SeedGroup {
    pub id: String,
    #[serde(rename = "displayName")]
    pub name: String,
    pub members: Vec<String>,
}

/// A fresh tenant of the server, seeded by `scim.sh seed`.
#[derive(Debug, Deserialize)]
pub struct Seed {
    /// The tenant's SCIM base URL (`http://127.0.0.1:PORT/TENANT/v2`).
    pub url: String,
    pub users: Vec<SeedUser>,
    pub groups: Vec<SeedGroup>,
}

impl Seed {
    pub fn user(&self, id: &str) -> &SeedUser {
        self.users.iter().find(|u| u.id == id).unwrap()
    }
}

pub fn seed(users: usize, groups: usize, per_user: usize) -> Seed {
    server();
    let env = run_script(&[
        "seed",
        &users.to_string(),
        &groups.to_string(),
        &per_user.to_string(),
    ]);
    let text = std::fs::read_to_string(&env["SCIM_SEED_JSON"]).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The SCIM plugin's component, built by `plugins/build.sh vakt-plugin-scim`
/// (a no-op when it is up to date).
pub fn wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = Command::new("bash")
                .arg(repo_root().join("plugins/build.sh"))
                .arg("vakt-plugin-scim")
                .current_dir(repo_root())
                .output()
                .expect("run plugins/build.sh");
            assert!(
                out.status.success(),
                "plugins/build.sh vakt-plugin-scim failed (needs the wasm32-wasip2 \
                 target):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            PathBuf::from(dir).join("vakt_plugin_scim.wasm")
        })
        .clone()
}

/// The plugin named `name`, reaching `base_url` through a grant of its
/// origin (loopback: `private_network`) with a bearer token from `token_env`.
pub fn plugin(name: &str, base_url: &str, token_env: &str, page_size: u32) -> PluginConfig {
    let url = url::Url::parse(base_url).unwrap();
    let origin = format!("http://{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut p = PluginConfig::new(name, wasm());
    p.http = vec![HttpGrant {
        origin: Origin::parse(&origin).unwrap(),
        private_network: true,
        credential: Some(Credential::Bearer {
            token: SecretRef::Env(token_env.into()),
            scheme: None,
        }),
    }];
    p.settings.insert("base_url".into(), base_url.into());
    p.settings.insert("page_size".into(), page_size.to_string());
    p
}

/// A GET straight to the server (not through the plugin).
pub async fn read(url: &str) -> Value {
    let response = http()
        .get(url)
        .bearer_auth(&server().token)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// A PATCH straight to the server.
pub async fn patch(url: &str, body: Value) -> reqwest::StatusCode {
    http()
        .patch(url)
        .bearer_auth(&server().token)
        .header("content-type", "application/scim+json")
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A proxy on 127.0.0.1 in front of the server: records `METHOD path ->
/// status` per request; answers the first requests with `canned` raw
/// responses (a 429, a 503, a body that is not JSON) instead of forwarding
/// them; and runs `before_patch` (once) right before it forwards the first
/// PATCH, to change the resource behind the plugin's back.
pub struct Proxy {
    pub port: u16,
    pub log: Arc<Mutex<Vec<String>>>,
}

pub type Hook = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
struct ProxyState {
    upstream_port: u16,
    log: Arc<Mutex<Vec<String>>>,
    hook: Arc<Mutex<Option<Hook>>>,
    canned: Arc<Mutex<VecDeque<String>>>,
}

impl Proxy {
    pub fn start(upstream_port: u16, before_patch: Option<Hook>, canned: Vec<String>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = ProxyState {
            upstream_port,
            log: Arc::new(Mutex::new(Vec::new())),
            hook: Arc::new(Mutex::new(before_patch)),
            canned: Arc::new(Mutex::new(canned.into())),
        };
        let log = state.log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = state.clone();
                std::thread::spawn(move || forward(stream, &state));
            }
        });
        Proxy { port, log }
    }
}

/// A raw HTTP/1.1 response with a body.
pub fn canned(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// One request: read it whole (Content-Length or chunked); answer it with
/// the next canned response, or run the hook before the first PATCH, send it
/// upstream with a length and `Connection: close`, and copy the answer back.
fn forward(mut client: TcpStream, state: &ProxyState) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_owned());
    }
    let header = |name: &str| {
        head.iter().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let mut body = Vec::new();
    if let Some(len) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body).unwrap();
    } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let request_line = head[0].clone();
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("").to_owned();
    let canned = state.canned.lock().unwrap().pop_front();
    if let Some(answer) = canned {
        let status = answer.split_whitespace().nth(1).unwrap_or("?").to_owned();
        let entry = format!("{method} {path} -> {status} (canned)");
        state.log.lock().unwrap().push(entry);
        let _ = client.write_all(answer.as_bytes());
        return;
    }
    if method == "PATCH"
        && let Some(f) = state.hook.lock().unwrap().take()
    {
        f();
    }
    let mut upstream = TcpStream::connect(("127.0.0.1", state.upstream_port)).unwrap();
    let mut out = format!("{request_line}\r\n");
    for line in &head[1..] {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            out.push_str(&format!("{line}\r\n"));
        }
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    upstream.write_all(out.as_bytes()).unwrap();
    upstream.write_all(&body).unwrap();
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer).unwrap();
    let status = String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .unwrap_or("?")
        .to_owned();
    state
        .log
        .lock()
        .unwrap()
        .push(format!("{method} {path} -> {status}"));
    let _ = client.write_all(&answer);
}
