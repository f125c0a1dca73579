//! The mail plugin through a relay that requires STARTTLS and AUTH, as a
//! real submission server does: aiosmtpd on loopback (see
//! `plugin_support/smtp_tls_auth.py`) with a certificate for `localhost`
//! made by `openssl` at test time and trusted only through the grant's
//! `ca_file`; the password comes from an `env:` reference.
//! - the right credentials: the message arrives, over TLS, as that user;
//! - wrong credentials: a non-retryable error naming the relay and the
//!   user, never containing a password;
//! - without `ca_file` the self-signed certificate is not trusted.

#[path = "plugin_support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde_json::json;
use vakt::engine::CallOutcome;
use vakt::plugin::{PluginConfig, PluginHost, SecretRef, SmtpGrant, SmtpTls};

const USER: &str = "vakt";
const PASSWORD: &str = "s3cret-Smtp-pw";
const WRONG: &str = "wrong-Smtp-pw";

/// A self-signed certificate for `localhost` and 127.0.0.1: (cert, key).
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // An end-entity certificate: webpki refuses a CA as a server's.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "this test needs `openssl` on PATH to make a certificate \
                 (Debian: `apt-get install openssl`): {e}"
            )
        });
    assert!(
        out.status.success(),
        "openssl could not make a certificate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// aiosmtpd requiring STARTTLS and AUTH as [`USER`]/[`PASSWORD`]; killed on
/// drop.
struct TlsRelay {
    port: u16,
    inbox: PathBuf,
    child: Child,
}

impl TlsRelay {
    fn start(dir: &Path, cert: &Path, key: &Path) -> TlsRelay {
        let python = support::python_with_aiosmtpd();
        let port = support::free_port();
        let inbox = dir.join("inbox");
        std::fs::create_dir(&inbox).unwrap();
        // The password goes in a file, not on the command line.
        let password = dir.join("relay-password");
        std::fs::write(&password, PASSWORD).unwrap();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugin_support/smtp_tls_auth.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(port.to_string())
            .arg(&inbox)
            .args([cert, key])
            .arg(USER)
            .arg(&password)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the TLS SMTP relay");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the TLS SMTP relay did not start");
        TlsRelay { port, inbox, child }
    }

    /// The envelope of message `n` (with `tls` and `login`), waiting for it.
    fn envelope(&self, n: u32) -> serde_json::Value {
        let path = self.inbox.join(format!("{n:04}.eml"));
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !path.exists() {
            assert!(std::time::Instant::now() < until, "no message {n} arrived");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let json = std::fs::read(self.inbox.join(format!("{n:04}.json"))).unwrap();
        serde_json::from_slice(&json).unwrap()
    }

    fn messages(&self) -> usize {
        std::fs::read_dir(&self.inbox)
            .unwrap()
            .filter(|e| {
                let e = e.as_ref().unwrap();
                e.path().extension().is_some_and(|x| x == "eml")
            })
            .count()
    }
}

impl Drop for TlsRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mail_plugin(name: &str, port: u16, password_var: &str, ca_file: Option<&Path>) -> PluginConfig {
    let mut mail = PluginConfig::new(name, support::wasm("mail"));
    mail.smtp = Some(SmtpGrant {
        host: "localhost".into(),
        port: Some(port),
        tls: SmtpTls::Starttls,
        username: Some(USER.into()),
        password: Some(SecretRef::Env(password_var.into())),
        ca_file: ca_file.map(Path::to_path_buf),
    });
    mail.settings
        .insert("from".into(), "vakt@kommun.example".into());
    mail
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_through_a_starttls_relay_with_auth() {
    vakt::plugin::init();
    // SAFETY: set before any thread of this test binary reads the
    // environment; the names are used by this test only.
    unsafe {
        std::env::set_var("VAKT_TLS_TEST_SMTP_PASSWORD", PASSWORD);
        std::env::set_var("VAKT_TLS_TEST_SMTP_WRONG", WRONG);
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let relay = TlsRelay::start(dir.path(), &cert, &key);
    let host = Arc::new(
        PluginHost::start(
            support::host_config(dir.path()),
            vec![
                mail_plugin(
                    "mail",
                    relay.port,
                    "VAKT_TLS_TEST_SMTP_PASSWORD",
                    Some(&cert),
                ),
                mail_plugin("wrong", relay.port, "VAKT_TLS_TEST_SMTP_WRONG", Some(&cert)),
                mail_plugin("untrusted", relay.port, "VAKT_TLS_TEST_SMTP_PASSWORD", None),
            ],
        )
        .await
        .unwrap(),
    );
    let send = |name: &'static str| {
        let host = host.clone();
        async move {
            host.call_named(
                name,
                support::call(
                    "mail",
                    "send",
                    json!({"to": ["it@kommun.example"], "subject": "TLS", "body": "hej"}),
                ),
            )
            .await
        }
    };

    // The right credentials: the message arrives, over TLS, as the user.
    let out = send("mail").await;
    let CallOutcome::Ok(sent) = &out else {
        panic!("mail.send through the TLS relay failed: {out:?}")
    };
    let response = sent["response"].as_str().unwrap();
    assert!(response.contains("queued as VAKTTLS0001"), "{response}");
    let envelope = relay.envelope(1);
    assert_eq!(envelope["mail_from"], "vakt@kommun.example");
    assert_eq!(envelope["rcpt_tos"], json!(["it@kommun.example"]));
    assert_eq!(envelope["tls"], true);
    assert_eq!(envelope["login"], USER);

    // Wrong credentials: refused, not retryable, the relay and user named,
    // no password in the text.
    let (message, retryable) = support::err_text(&send("wrong").await);
    eprintln!("wrong credentials: {message}");
    let relay_name = format!("relay localhost:{}", relay.port);
    assert!(message.contains(&relay_name), "{message}");
    assert!(
        message.contains("did not accept the credentials of user `vakt`"),
        "{message}"
    );
    assert!(!retryable, "wrong credentials are not retryable: {message}");
    assert!(
        !message.contains(WRONG) && !message.contains(PASSWORD),
        "{message}"
    );
    assert!(
        std::fs::read_to_string(relay.inbox.join("auth_failures")).is_ok_and(|s| !s.is_empty()),
        "the relay saw no failed login"
    );

    // Without `ca_file` the self-signed certificate is not trusted, and the
    // password is never sent.
    let (message, _) = support::err_text(&send("untrusted").await);
    eprintln!("without ca_file: {message}");
    assert!(message.contains(&relay_name), "{message}");
    assert!(!message.contains(PASSWORD), "{message}");
    assert_eq!(relay.messages(), 1, "only the first message arrived");
}
