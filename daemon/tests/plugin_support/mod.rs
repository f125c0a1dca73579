//! Shared by `tests/plugins.rs` and `benches/plugins.rs`: where the plugin
//! components are, building them when they are missing, and small servers
//! on loopback (SMTP through aiosmtpd, an HTTP server that serves a huge
//! body or a redirect).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use vakt::engine::CallOutcome;
use vakt::plugin::{HostConfig, HttpGrant, Origin, PluginConfig};
use vakt::runtime::ConnectorCall;

// ---- Fixtures of tests/plugins.rs ----

pub fn host_config(dir: &std::path::Path) -> HostConfig {
    HostConfig {
        cache_dir: dir.join("plugin-cache"),
        concurrency: 32,
    }
}

pub fn call(role: &str, action: &str, args: Value) -> ConnectorCall {
    ConnectorCall {
        instance: "inst-1".into(),
        role: role.into(),
        action: action.into(),
        args,
        idempotency_key: "inst-1/notify/0/1".into(),
        attempt: 1,
        deadline: None,
    }
}

pub fn grant(origin: &str, private_network: bool) -> HttpGrant {
    HttpGrant {
        origin: Origin::parse(origin).unwrap(),
        private_network,
        credential: None,
    }
}

pub fn err_text(outcome: &CallOutcome) -> (String, bool) {
    match outcome {
        CallOutcome::Err {
            message, retryable, ..
        } => (message.clone(), *retryable),
        CallOutcome::Ok(v) => panic!("expected an error, got {v}"),
    }
}

/// Every hostile plugin with the grants that make its case, plus noop.
pub fn hostile_configs(http_port: u16) -> Vec<PluginConfig> {
    let local = format!("http://127.0.0.1:{http_port}");
    let mut v = vec![PluginConfig::new("noop", wasm("noop")).bound_to("ticketing")];

    let mut spin = PluginConfig::new("spin", wasm("spin"));
    spin.cpu_timeout = Duration::from_millis(500);
    v.push(spin);

    let mut membomb = PluginConfig::new("membomb", wasm("membomb"));
    membomb.memory_limit_mib = 16;
    v.push(membomb);

    v.push(PluginConfig::new("panics", wasm("panics")));

    let mut forbidden = PluginConfig::new("forbidden-http", wasm("forbidden-http"));
    forbidden.http = vec![grant("https://example.com", false)];
    v.push(forbidden);

    // Granted, but 169.254.169.254 is link-local: refused without `private_network`.
    let mut metadata = PluginConfig::new("metadata-http", wasm("metadata-http"));
    metadata.http = vec![grant("http://169.254.169.254", false)];
    v.push(metadata);

    let mut loopback = PluginConfig::new("loopback-http", wasm("loopback-http"));
    loopback.http = vec![grant(&local, false)];
    loopback
        .settings
        .insert("port".into(), http_port.to_string());
    v.push(loopback);

    // The control: the same plugin, the origin granted explicitly.
    let mut allowed = PluginConfig::new("loopback-granted", wasm("loopback-http"));
    allowed.http = vec![grant(&local, true)];
    allowed
        .settings
        .insert("port".into(), http_port.to_string());
    v.push(allowed);

    for (name, path) in [
        ("bigbody", "/big"),
        ("bigbody-length", "/big-length"),
        ("redirect", "/to-metadata"),
    ] {
        let mut big = PluginConfig::new(name, wasm("bigbody"));
        big.http = vec![grant(&local, true)];
        big.max_response_bytes = 1 << 20;
        big.settings.insert("url".into(), format!("{local}{path}"));
        v.push(big);
    }
    v
}

/// Every component `plugins/build.sh` produces, by short name.
pub const PLUGINS: &[(&str, &str)] = &[
    ("mail", "vakt_plugin_mail"),
    ("noop", "vakt_test_plugin_noop"),
    ("spin", "vakt_test_plugin_spin"),
    ("membomb", "vakt_test_plugin_membomb"),
    ("forbidden-http", "vakt_test_plugin_forbidden_http"),
    ("metadata-http", "vakt_test_plugin_metadata_http"),
    ("loopback-http", "vakt_test_plugin_loopback_http"),
    ("bigbody", "vakt_test_plugin_bigbody"),
    ("panics", "vakt_test_plugin_panics"),
    ("greedy", "vakt_test_plugin_greedy"),
];

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `target/wasm32-wasip2/release` of the workspace.
pub fn wasm_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("wasm32-wasip2").join("release")
}

/// The component of plugin `short` (see [`PLUGINS`]); builds them all with
/// `plugins/build.sh` once if any is missing.
pub fn wasm(short: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let file = |s: &str| {
        let (_, crate_file) = PLUGINS
            .iter()
            .find(|(n, _)| *n == s)
            .unwrap_or_else(|| panic!("unknown test plugin `{s}`"));
        wasm_dir().join(format!("{crate_file}.wasm"))
    };
    BUILT.get_or_init(|| {
        if PLUGINS.iter().all(|(n, _)| file(n).exists()) {
            return;
        }
        let script = repo_root().join("plugins/build.sh");
        eprintln!("plugin components missing: running {}", script.display());
        let status = Command::new("bash")
            .arg(&script)
            .current_dir(repo_root())
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            status.success(),
            "plugins/build.sh failed ({status}); build the plugins with \
             `bash plugins/build.sh` (needs the wasm32-wasip2 target: \
             `rustup target add wasm32-wasip2`) and run the tests again"
        );
        for (n, _) in PLUGINS {
            assert!(
                file(n).exists(),
                "plugins/build.sh did not produce {}",
                file(n).display()
            );
        }
    });
    file(short)
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Python with aiosmtpd: `$VAKT_TEST_PYTHON`, Debian's, or the one on PATH.
pub fn python_with_aiosmtpd() -> String {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("VAKT_TEST_PYTHON") {
        candidates.push(p);
    }
    candidates.extend(["/usr/bin/python3".to_string(), "python3".to_string()]);
    for p in &candidates {
        let ok = Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return p.clone();
        }
    }
    panic!(
        "no python3 with aiosmtpd (tried {candidates:?}); install Debian's \
         `python3-aiosmtpd` or set VAKT_TEST_PYTHON"
    );
}

/// aiosmtpd on 127.0.0.1, writing each message to `dir`; killed on drop.
pub struct SmtpSink {
    pub port: u16,
    pub dir: PathBuf,
    python: String,
    child: Child,
}

impl SmtpSink {
    pub fn start(dir: &Path) -> SmtpSink {
        let python = python_with_aiosmtpd();
        let port = free_port();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugin_support/smtp_sink.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(port.to_string())
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        SmtpSink {
            port,
            dir: dir.to_path_buf(),
            python,
            child,
        }
    }

    /// The `n`th message received (1-based), waiting up to 10 s for it.
    pub fn message(&self, n: u32) -> PathBuf {
        let path = self.dir.join(format!("{n:04}.eml"));
        let until = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(Instant::now() < until, "no message {n} arrived");
            std::thread::sleep(Duration::from_millis(20));
        }
        path
    }

    /// The message parsed by Python's `email` package (see parse_mail.py).
    pub fn parsed(&self, n: u32) -> serde_json::Value {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugin_support/parse_mail.py");
        let out = Command::new(&self.python)
            .arg(script)
            .arg(self.message(n))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The envelope of message `n`: `{mail_from, rcpt_tos}`.
    pub fn envelope(&self, n: u32) -> serde_json::Value {
        self.message(n);
        let text = std::fs::read(self.dir.join(format!("{n:04}.json"))).unwrap();
        serde_json::from_slice(&text).unwrap()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Requests the test HTTP server's `/token` endpoint has answered.
pub static TOKEN_REQUESTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A tiny HTTP/1.1 server on 127.0.0.1 (one thread per connection):
/// `/big` streams 32 MiB without a length, `/big-length` announces 64 MiB,
/// `/to-metadata` redirects to the cloud metadata address, `/auth/*` answer
/// 200 only with the expected credential (bearer, basic, API key, OAuth
/// token), `/token` is an OAuth 2.0 token endpoint, anything else answers
/// `hello`. Runs until the process ends.
pub fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    port
}

fn serve(mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let answer = |ok: bool| {
        if ok {
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_string()
        } else {
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_string()
        }
    };
    let auth = header("authorization").unwrap_or_default();
    let _ = match path.as_str() {
        "/token" => {
            let len: usize = header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
            let mut body = vec![0u8; len];
            let _ = stream.read_exact(&mut body);
            let body = String::from_utf8_lossy(&body);
            let ok = body.contains("grant_type=client_credentials")
                && body.contains("client_id=vakt")
                && body.contains("client_secret=oauth-secret");
            let n = TOKEN_REQUESTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if ok {
                let json = format!("{{\"access_token\":\"tok-{n}\",\"token_type\":\"Bearer\",\"expires_in\":3600}}");
                stream.write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}", json.len())
                        .as_bytes(),
                )
            } else {
                stream.write_all(answer(false).as_bytes())
            }
        }
        "/auth/bearer" => stream.write_all(answer(auth == "Bearer s3cret").as_bytes()),
        "/auth/basic" => stream.write_all(answer(auth == "Basic dmFrdDpwdw==").as_bytes()),
        "/auth/oauth" => stream.write_all(answer(auth == "Bearer tok-1").as_bytes()),
        "/auth/apikey" => {
            stream.write_all(answer(header("x-api-key").as_deref() == Some("k-123")).as_bytes())
        }
        "/big" => {
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            );
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..512 {
                let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                frame.extend_from_slice(&chunk);
                frame.extend_from_slice(b"\r\n");
                if stream.write_all(&frame).is_err() {
                    return;
                }
            }
            stream.write_all(b"0\r\n\r\n")
        }
        "/big-length" => stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 67108864\r\nConnection: close\r\n\r\n",
        ),
        "/to-metadata" => stream.write_all(
            b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ),
        _ => stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        ),
    };
}
