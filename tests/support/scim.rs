//! The SCIM 2.0 server of the `serve_recertification` tests, on loopback:
//! scim2-server started by `scripts/servers/scim.sh start` (idempotent;
//! prints `SCIM_ROOT=`, `SCIM_TOKEN=`) and seeded by `scim.sh seed N_USERS
//! N_GROUPS`, which makes a fresh tenant (`/<tenant>/v2`) with users,
//! enterprise `manager` references and groups `tilgang-001…`, and writes
//! every id to the JSON file it names (`SCIM_SEED_JSON=`).
//!
//! Also: the `[plugins.NAME]` section that binds the SCIM plugin to the
//! `identity` role of a prepared [`Daemon`] (the bearer token in a file of
//! the test's directory, read through `file:`: the harness strips `VAKT_*`
//! variables), group members read back over the server's REST API (never
//! through the plugin), `vakt validate` on a file, and a small CSV reader
//! for reports.
//!
//! Included by the tests that use it with `#[path = "support/scim.rs"]`.

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use vakt_tests::support::Daemon;
use vakt_tests::support::http;
use vakt_tests::support::repo_root;
use vakt_tests::support::servers::{plugin_wasm, skipped};

/// The running server: `http://127.0.0.1:PORT` and its bearer token.
#[derive(Clone, Debug)]
pub struct ScimServer {
    pub root: String,
    pub token: String,
}

/// One seeded user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub user_name: String,
    pub email: String,
    /// The manager's SCIM id.
    pub manager: Option<String>,
}

/// One seeded group.
#[derive(Clone, Debug)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub members: Vec<String>,
}

/// A fresh tenant, as `seed.py` made it.
#[derive(Clone, Debug)]
pub struct Seed {
    /// The tenant's SCIM base URL (`http://127.0.0.1:PORT/TENANT/v2`).
    pub url: String,
    pub token: String,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

/// Runs `scripts/servers/scim.sh ARGS`; returns its `KEY=VALUE` lines.
fn run_script(args: &[&str]) -> HashMap<String, String> {
    let path = repo_root().join("scripts/servers/scim.sh");
    let out = Command::new("bash")
        .arg(&path)
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "`scim.sh {}` failed ({}); install the server with `{} install`, or set \
         VAKT_SKIP_SERVERS=1 to skip these tests.\n{}{}",
        args.join(" "),
        out.status,
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

impl ScimServer {
    /// Starts (installs) the server; `None` when `VAKT_SKIP_SERVERS=1`.
    pub fn start() -> Option<ScimServer> {
        if skipped("the test against a real SCIM server (scripts/servers/scim.sh)") {
            return None;
        }
        let env = run_script(&["start"]);
        Some(ScimServer {
            root: env["SCIM_ROOT"].clone(),
            token: env["SCIM_TOKEN"].clone(),
        })
    }

    /// A fresh tenant with `users` users and `groups` groups, each user in
    /// `per_user` consecutive groups.
    pub fn seed(&self, users: usize, groups: usize, per_user: usize) -> Seed {
        let args = [users, groups, per_user].map(|n| n.to_string());
        let env = run_script(&["seed", &args[0], &args[1], &args[2]]);
        let file = &env["SCIM_SEED_JSON"];
        let v: Value =
            serde_json::from_slice(&std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}")))
                .unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
        let s = |x: &Value| x.as_str().unwrap_or_default().to_owned();
        let users = v["users"]
            .as_array()
            .expect("seed users")
            .iter()
            .map(|u| User {
                id: s(&u["id"]),
                user_name: s(&u["userName"]),
                email: s(&u["email"]),
                manager: u["manager"].as_str().map(str::to_owned),
            })
            .collect();
        let groups = v["groups"]
            .as_array()
            .expect("seed groups")
            .iter()
            .map(|g| Group {
                id: s(&g["id"]),
                name: s(&g["displayName"]),
                members: g["members"]
                    .as_array()
                    .expect("group members")
                    .iter()
                    .map(s)
                    .collect(),
            })
            .collect();
        assert_eq!(env["SCIM_URL"], s(&v["url"]), "the tenant's URL");
        Seed {
            url: s(&v["url"]),
            token: self.token.clone(),
            users,
            groups,
        }
    }
}

impl Seed {
    pub fn user(&self, id: &str) -> &User {
        self.users
            .iter()
            .find(|u| u.id == id)
            .unwrap_or_else(|| panic!("no seeded user {id}"))
    }

    /// `http://127.0.0.1:PORT`: the origin to grant.
    pub fn origin(&self) -> String {
        let u = reqwest::Url::parse(&self.url).expect("the tenant's URL");
        u.origin().ascii_serialization()
    }

    /// The member ids of group `id`, read from the server now.
    pub fn members_now(&self, id: &str) -> BTreeSet<String> {
        let r = http::get(format!("{}/Groups/{id}", self.url))
            .bearer(&self.token)
            .header("accept", "application/scim+json")
            .send();
        assert_eq!(r.status, 200, "{r:?}");
        r.json()["members"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|m| m["value"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Appends the SCIM plugin's section to a prepared daemon's `vakt.toml`,
/// bound to `identity`, granted the tenant's origin with its bearer token
/// (from a file of the test's directory).
pub fn bind_identity(d: &Daemon, name: &str, seed: &Seed) {
    let secret_file = d.root.join(format!("{name}.secret"));
    std::fs::write(&secret_file, format!("{}\n", seed.token)).unwrap();
    let section = format!(
        "\n[plugins.{name}]\nwasm = {:?}\nrole = \"identity\"\nsettings = {{ base_url = {:?} }}\n\n\
         [[plugins.{name}.http]]\norigin = {:?}\nprivate_network = true\n\
         credential = {{ kind = \"bearer\", token = \"file:{}\" }}\n",
        plugin_wasm("vakt_plugin_scim.wasm").display().to_string(),
        seed.url,
        seed.origin(),
        secret_file.display(),
    );
    let mut toml = std::fs::read_to_string(&d.config_file).unwrap();
    toml.push_str(&section);
    std::fs::write(&d.config_file, toml).unwrap();
}

/// `text` with every `(from, to)` replaced; panics when `from` does not
/// occur exactly once (the workflow file changed under the test).
pub fn substitute(text: &str, subs: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (from, to) in subs {
        let n = out.matches(from).count();
        assert_eq!(n, 1, "`{from}` occurs {n} times in the workflow, not once");
        out = out.replace(from, to);
    }
    out
}

/// `vakt validate FILE`; panics with its output when the file is invalid.
pub fn validate(file: &Path) {
    let mut cmd = Command::new(vakt_tests::vakt_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("VAKT_") {
            cmd.env_remove(&k);
        }
    }
    let out = cmd.arg("validate").arg(file).output().expect("run vakt");
    assert!(
        out.status.success(),
        "`vakt validate {}` refused the test's copy ({}):\n{}{}",
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// RFC 4180 CSV: records of fields (quoted fields may hold commas, quotes
/// doubled, and line breaks). A trailing empty line is no record.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// A JSON value as a report cell shows it: strings bare, null empty.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
