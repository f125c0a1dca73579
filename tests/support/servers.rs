//! The real ticket systems of the `serve_ticketing` tests, on loopback:
//! Redmine (`scripts/servers/redmine.sh start`) and Request Tracker 5
//! (`scripts/servers/request-tracker.sh start`). Each script is idempotent
//! and prints the connection info (`REDMINE_URL=…`, `REDMINE_KEY=…`;
//! `RT_URL=…`, `RT_TOKEN=…`). `VAKT_SKIP_SERVERS=1` skips, saying so;
//! otherwise a server that does not start fails the test.
//!
//! Also: the `[plugins.NAME]` section that binds a ticketing plugin to the
//! `ticketing` role of a [`Daemon`] (its credential in a file of the test's
//! directory, read through `file:`), and the servers' REST APIs read
//! directly (never through the plugin) with the harness' blocking client.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

use super::daemon::{Daemon, mail_plugin_wasm};
use super::http::{self, Req};
use super::repo_root;

/// Whether `VAKT_SKIP_SERVERS=1` asks to skip the tests against real
/// servers; prints why when it does.
pub fn skipped(what: &str) -> bool {
    let skip = std::env::var("VAKT_SKIP_SERVERS").as_deref() == Ok("1");
    if skip {
        eprintln!("VAKT_SKIP_SERVERS=1: skipping {what}");
    }
    skip
}

/// Runs `scripts/servers/<script> start`; returns the `NAME=value` lines.
fn start_server(script: &str, names: &[&str]) -> Vec<String> {
    let path = repo_root().join("scripts/servers").join(script);
    let out = Command::new("bash")
        .arg(&path)
        .arg("start")
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "`{} start` failed ({}); install the server with `{} install` (as root), or set \
         VAKT_SKIP_SERVERS=1 to skip these tests.\n{stdout}{}",
        path.display(),
        out.status,
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    names
        .iter()
        .map(|name| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("`{script} start` printed no {name}: {stdout}"))
                .trim()
                .to_owned()
        })
        .collect()
}

/// A component built by `plugins/build.sh` next to the mail plugin's.
pub fn plugin_wasm(file: &str) -> PathBuf {
    let wasm = mail_plugin_wasm()
        .parent()
        .expect("the release directory")
        .join(file);
    assert!(
        wasm.exists(),
        "{} is missing: build the plugins with `./plugins/build.sh`",
        wasm.display()
    );
    wasm
}

/// Appends a ticketing plugin's section to a prepared daemon's `vakt.toml`
/// (before its start): `wasm`, `role = "ticketing"`, `settings`, and one
/// HTTP grant for `origin` on loopback whose credential (`credential`, an
/// inline TOML table with `SECRET` where the secret reference goes) reads
/// `secret` from a file of the test's directory.
pub fn bind_ticketing(
    d: &Daemon,
    name: &str,
    wasm: &str,
    settings: &[(&str, &str)],
    origin: &str,
    credential: &str,
    secret: &str,
) {
    let secret_file = d.root.join(format!("{name}.secret"));
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let settings: Vec<String> = settings
        .iter()
        .map(|(k, v)| format!("{k} = {v:?}"))
        .collect();
    let reference = format!("\"file:{}\"", secret_file.display());
    let section = format!(
        "\n[plugins.{name}]\nwasm = {:?}\nrole = \"ticketing\"\nsettings = {{ {} }}\n\n\
         [[plugins.{name}.http]]\norigin = {origin:?}\nprivate_network = true\n\
         credential = {}\n",
        plugin_wasm(wasm).display().to_string(),
        settings.join(", "),
        credential.replace("SECRET", &reference),
    );
    let mut toml = std::fs::read_to_string(&d.config_file).unwrap();
    toml.push_str(&section);
    std::fs::write(&d.config_file, toml).unwrap();
}

/// A GET answered with 200 and JSON; panics showing the response otherwise.
fn get_json(req: Req) -> Value {
    let r = req.send();
    assert_eq!(r.status, 200, "{r:?}");
    r.json()
}

/// `base` + `path` with `params` URL-encoded.
fn url(base: &str, path: &str, params: &[(&str, &str)]) -> String {
    reqwest::Url::parse_with_params(&format!("{base}{path}"), params)
        .expect("a valid URL")
        .to_string()
}

/// The Redmine of `scripts/servers/redmine.sh` (project `sakerhet`, the
/// issue custom field `vakt-key`, the admin's API key).
#[derive(Clone, Debug)]
pub struct Redmine {
    pub url: String,
    pub key: String,
}

impl Redmine {
    /// Started once per test binary; `None` when skipped.
    pub fn start() -> Option<Redmine> {
        static SERVER: OnceLock<Option<Redmine>> = OnceLock::new();
        SERVER
            .get_or_init(|| {
                if skipped("the test against a real Redmine (scripts/servers/redmine.sh)") {
                    return None;
                }
                let v = start_server("redmine.sh", &["REDMINE_URL", "REDMINE_KEY"]);
                Some(Redmine {
                    url: v[0].clone(),
                    key: v[1].clone(),
                })
            })
            .clone()
    }

    /// `GET <url><path>?<params>` as the admin, JSON.
    pub fn get(&self, path: &str, params: &[(&str, &str)]) -> Value {
        get_json(http::get(url(&self.url, path, params)).header("X-Redmine-API-Key", &self.key))
    }

    /// An issue with its journals.
    pub fn issue(&self, id: &str) -> Value {
        self.get(&format!("/issues/{id}.json"), &[("include", "journals")])["issue"].clone()
    }

    /// The id of the issue custom field `name`.
    pub fn custom_field_id(&self, name: &str) -> u64 {
        let fields = self.get("/custom_fields.json", &[]);
        fields["custom_fields"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["name"] == name))
            .and_then(|f| f["id"].as_u64())
            .unwrap_or_else(|| panic!("no custom field `{name}` in Redmine: {fields}"))
    }

    /// Issues of any status whose custom field `field` is `value`.
    pub fn issues_with(&self, field: &str, value: &str) -> Vec<Value> {
        let cf = format!("cf_{}", self.custom_field_id(field));
        let v = self.get(
            "/issues.json",
            &[("status_id", "*"), (cf.as_str(), value), ("limit", "100")],
        );
        v["issues"].as_array().cloned().unwrap_or_default()
    }

    /// Issues of any status in `project` whose subject contains `text`.
    pub fn issues_titled(&self, project: &str, text: &str) -> Vec<Value> {
        let subject = format!("~{text}");
        let v = self.get(
            "/issues.json",
            &[
                ("status_id", "*"),
                ("project_id", project),
                ("subject", subject.as_str()),
                ("limit", "100"),
            ],
        );
        v["issues"].as_array().cloned().unwrap_or_default()
    }
}

/// The Request Tracker of `scripts/servers/request-tracker.sh` (queues
/// `General`, `vakt`, `vakt-nocf`; root's auth token).
#[derive(Clone, Debug)]
pub struct Rt {
    pub url: String,
    pub token: String,
}

impl Rt {
    /// Started once per test binary; `None` when skipped.
    pub fn start() -> Option<Rt> {
        static SERVER: OnceLock<Option<Rt>> = OnceLock::new();
        SERVER
            .get_or_init(|| {
                if skipped(
                    "the test against a real Request Tracker \
                     (scripts/servers/request-tracker.sh)",
                ) {
                    return None;
                }
                let v = start_server("request-tracker.sh", &["RT_URL", "RT_TOKEN"]);
                Some(Rt {
                    url: v[0].clone(),
                    token: v[1].clone(),
                })
            })
            .clone()
    }

    fn auth(&self, req: Req) -> Req {
        req.header("authorization", &format!("token {}", self.token))
    }

    /// `GET <url>/REST/2.0/<path>?<params>` as root, JSON.
    pub fn get(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let u = url(&self.url, &format!("/REST/2.0/{path}"), params);
        get_json(self.auth(http::get(u)))
    }

    /// Makes queue `name` if RT does not have it (as root, through REST2);
    /// safe when another process makes it at the same time.
    pub fn ensure_queue(&self, name: &str) {
        let queue = format!("{}/REST/2.0/queue/{name}", self.url);
        if self.auth(http::get(&queue)).send().status == 200 {
            return;
        }
        let made = self
            .auth(http::post(format!("{}/REST/2.0/queue", self.url)))
            .json(&json!({"Name": name, "Description": "vakt tests: incident-escalation"}))
            .send();
        let now = self.auth(http::get(&queue)).send();
        assert_eq!(
            now.status, 200,
            "RT has no queue `{name}` after creating it: {made:?}; then {now:?}"
        );
    }

    /// Tickets matching the TicketSQL `query`: `(id, subject)`.
    pub fn search(&self, query: &str) -> Vec<(String, String)> {
        let v = self.get(
            "tickets",
            &[("query", query), ("fields", "Subject"), ("per_page", "100")],
        );
        v["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|t| {
                (
                    t["id"].as_str().unwrap_or_default().to_owned(),
                    t["Subject"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// A ticket's transactions: `(type, text of its text/plain parts)`.
    pub fn history(&self, id: &str) -> Vec<(String, String)> {
        let txns = self.get(
            &format!("ticket/{id}/history"),
            &[("fields", "Type"), ("per_page", "100")],
        );
        let parts = self.get(
            &format!("ticket/{id}/attachments"),
            &[
                ("fields", "TransactionId,ContentType,Content"),
                ("per_page", "100"),
            ],
        );
        let parts = parts["items"].as_array().cloned().unwrap_or_default();
        txns["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|t| {
                let tid = t["id"].as_str().unwrap_or_default();
                let text: Vec<String> = parts
                    .iter()
                    .filter(|a| a["TransactionId"].as_str() == Some(tid))
                    .filter(|a| {
                        a["ContentType"]
                            .as_str()
                            .is_some_and(|c| c.starts_with("text/plain"))
                    })
                    .filter_map(|a| a["Content"].as_str().map(str::to_owned))
                    .collect();
                (
                    t["Type"].as_str().unwrap_or_default().to_owned(),
                    text.join("\n"),
                )
            })
            .collect()
    }
}

/// The subject tag the request-tracker plugin adds when the queue has no
/// `vakt-key` custom field: `[vakt:<first 6 bytes of sha256(key), hex>]`.
pub fn rt_key_tag(key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!("[vakt:{}]", hex::encode(&digest[..6]))
}
