//! The file directory identity connector (`plugins/directory-file`) through
//! the plugin host, on CSV files in a temporary directory granted by name
//! (`files = { users = …, groups = …, memberships = … }`):
//!
//! - listing users and groups (with members and their managers' e-mail
//!   addresses), the `userName`/`id`/`displayName` filters, `get_manager`;
//!   changes refused, not retryable, as a read-only directory;
//! - a `;`-separated export with a byte-order mark, under renamed grants;
//! - a granted file that is missing, a file over `max_file_bytes`, and a
//!   bad CSV fail the call with an error naming the grant or the line;
//! - a plugin whose manifest asks for a file the config does not grant is
//!   refused at load.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};
use vakt::engine::CallOutcome;
use vakt::plugin::{HostConfig, PluginConfig, PluginHost};
use vakt::runtime::ConnectorCall;

const USERS: &str = "\
id,user_name,email,display_name,manager,active
u1,rektor,rektor@skole.no,Rita Rektor,,
u2,ola,ola@skole.no,Ola Nordmann,rektor@skole.no,true
u3,kari,kari@skole.no,\"Nordmann, Kari\",u2,false
";
const GROUPS: &str = "id,name\ng1,tilgang-lonn\ng2,laerere\n";
const MEMBERSHIPS: &str = "group,user\ng1,u2\ng1,u3\ng2,u1\n";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The plugin's component, built by `plugins/build.sh
/// vakt-plugin-directory-file` (a no-op when it is up to date).
fn wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = Command::new("bash")
                .arg(repo_root().join("plugins/build.sh"))
                .arg("vakt-plugin-directory-file")
                .current_dir(repo_root())
                .output()
                .expect("run plugins/build.sh");
            assert!(
                out.status.success(),
                "plugins/build.sh vakt-plugin-directory-file failed (needs the \
                 wasm32-wasip2 target):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            PathBuf::from(dir).join("vakt_plugin_directory_file.wasm")
        })
        .clone()
}

/// Plugin `name` bound to `identity`, granted `files` (name → path).
fn plugin(name: &str, files: &[(&str, &Path)]) -> PluginConfig {
    let mut p = PluginConfig::new(name, wasm()).bound_to("identity");
    for (n, path) in files {
        p.files.insert((*n).to_owned(), path.to_path_buf());
    }
    p
}

/// Writes the three tables into `dir` and grants them under their names.
fn standard(dir: &Path, name: &str) -> PluginConfig {
    let mut grants = Vec::new();
    for (file, text) in [
        ("users", USERS),
        ("groups", GROUPS),
        ("memberships", MEMBERSHIPS),
    ] {
        let path = dir.join(format!("{name}-{file}.csv"));
        std::fs::write(&path, text).unwrap();
        grants.push((file, path));
    }
    let grants: Vec<(&str, &Path)> = grants.iter().map(|(n, p)| (*n, p.as_path())).collect();
    plugin(name, &grants)
}

async fn start(plugins: Vec<PluginConfig>) -> Result<PluginHost, String> {
    vakt::plugin::init();
    // One cache for every test and run: the component compiles once.
    let config = HostConfig {
        cache_dir: Path::new(env!("CARGO_TARGET_TMPDIR")).join("directory-file-plugin-cache"),
        concurrency: 4,
    };
    PluginHost::start(config, plugins)
        .await
        .map_err(|e| e.to_string())
}

fn call(action: &str, args: Value) -> ConnectorCall {
    ConnectorCall {
        instance: "inst-dir".into(),
        role: "identity".into(),
        action: action.into(),
        args,
        idempotency_key: format!("inst-dir/{action}/0/1"),
        attempt: 1,
        deadline: None,
    }
}

async fn ok(host: &PluginHost, name: &str, action: &str, args: Value) -> Value {
    match host.call_named(name, call(action, args.clone())).await {
        CallOutcome::Ok(v) => v,
        CallOutcome::Err { message, .. } => panic!("{name}.{action}({args}) failed: {message}"),
    }
}

async fn err(host: &PluginHost, name: &str, action: &str, args: Value) -> (String, bool) {
    match host.call_named(name, call(action, args)).await {
        CallOutcome::Err {
            message, retryable, ..
        } => (message, retryable),
        CallOutcome::Ok(v) => panic!("{name}.{action}: expected an error, got {v}"),
    }
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_managers_and_read_only_changes() {
    let dir = tempfile::tempdir().unwrap();
    let host = start(vec![standard(dir.path(), "dir")]).await.unwrap();

    let users = ok(&host, "dir", "list_users", json!({})).await;
    assert_eq!(ids(&users["users"]), vec!["u1", "u2", "u3"]);
    let kari = &users["users"][2];
    assert_eq!(kari["user_name"], "kari");
    assert_eq!(kari["display_name"], "Nordmann, Kari");
    assert_eq!(kari["manager"], "ola@skole.no");
    assert_eq!(kari["active"], false);
    assert_eq!(users["users"][1]["manager"], "rektor@skole.no");

    let one = ok(
        &host,
        "dir",
        "list_users",
        json!({"filter": "userName eq \"OLA\""}),
    )
    .await;
    assert_eq!(ids(&one["users"]), vec!["u2"]);
    let one = ok(
        &host,
        "dir",
        "list_users",
        json!({"filter": "id eq \"u3\""}),
    )
    .await;
    assert_eq!(ids(&one["users"]), vec!["u3"]);
    let (m, retryable) = err(
        &host,
        "dir",
        "list_users",
        json!({"filter": "title eq \"x\""}),
    )
    .await;
    assert!(!retryable);
    assert!(
        m.contains("not supported") && m.contains("userName eq"),
        "{m}"
    );

    // The recertification workflow's default `group_filter`.
    let groups = ok(
        &host,
        "dir",
        "list_groups",
        json!({"filter": "displayName sw \"tilgang-\"", "include_members": true}),
    )
    .await;
    assert_eq!(ids(&groups["groups"]), vec!["g1"]);
    let members = &groups["groups"][0]["members"];
    assert_eq!(ids(members), vec!["u2", "u3"]);
    assert_eq!(members[0]["manager"], "rektor@skole.no");
    assert_eq!(members[1]["manager"], "ola@skole.no");
    let by_id = ok(
        &host,
        "dir",
        "list_groups",
        json!({"filter": "id eq \"g2\""}),
    )
    .await;
    assert_eq!(ids(&by_id["groups"][0]["members"]), vec!["u1"]);
    let all = ok(
        &host,
        "dir",
        "list_groups",
        json!({"include_members": false}),
    )
    .await;
    assert_eq!(ids(&all["groups"]), vec!["g1", "g2"]);

    let m = ok(&host, "dir", "get_manager", json!({"user": "u3"})).await;
    assert_eq!(m["manager"]["id"], "u2");
    assert_eq!(m["manager"]["email"], "ola@skole.no");
    let m = ok(&host, "dir", "get_manager", json!({"user": "rektor"})).await;
    assert_eq!(m["manager"], Value::Null);

    let (m, retryable) = err(
        &host,
        "dir",
        "remove_member",
        json!({"group": "g1", "user": "u3"}),
    )
    .await;
    assert!(!retryable);
    assert!(
        m.contains("read-only") && m.contains("source system"),
        "{m}"
    );
    let (m, retryable) = err(&host, "dir", "disable_user", json!({"user": "u3"})).await;
    assert!(!retryable);
    assert!(m.contains("read-only"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semicolon_export_with_a_bom_under_renamed_grants() {
    let dir = tempfile::tempdir().unwrap();
    let write = |file: &str, text: &str| {
        let path = dir.path().join(file);
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(text.replace("\n", "\r\n").as_bytes());
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let users = write(
        "elever.csv",
        "id;user_name;email;display_name;manager\ne1;åse;åse@skole.no;\"Ås; Åse\";\ne2;øyvind;;Øyvind;åse@skole.no\n",
    );
    let groups = write("grupper.csv", "id;name\ng1;tilgang-elev\n");
    let members = write("medlemmer.csv", "group;user\ng1;e2\n");
    let mut p = plugin(
        "skole",
        &[
            ("elever", &users),
            ("grupper", &groups),
            ("medlemmer", &members),
        ],
    );
    for (s, v) in [
        ("users", "elever"),
        ("groups", "grupper"),
        ("memberships", "medlemmer"),
    ] {
        p.settings.insert(s.into(), v.into());
    }
    let host = start(vec![p]).await.unwrap();

    let out = ok(&host, "skole", "list_users", json!({})).await;
    assert_eq!(out["users"][0]["display_name"], "Ås; Åse");
    assert_eq!(out["users"][1]["manager"], "åse@skole.no");
    let out = ok(
        &host,
        "skole",
        "list_groups",
        json!({"include_members": true}),
    )
    .await;
    assert_eq!(out["groups"][0]["name"], "tilgang-elev");
    assert_eq!(out["groups"][0]["members"][0]["user_name"], "øyvind");
    assert_eq!(out["groups"][0]["members"][0]["manager"], "åse@skole.no");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_oversized_and_bad_files_fail_the_call_naming_the_grant() {
    let dir = tempfile::tempdir().unwrap();
    let mut missing = standard(dir.path(), "missing");
    let gone = dir.path().join("gone.csv");
    missing.files.insert("users".into(), gone.clone());

    let mut capped = standard(dir.path(), "capped");
    capped.max_file_bytes = 64;

    let mut bad = standard(dir.path(), "bad");
    let dup = dir.path().join("dup.csv");
    std::fs::write(&dup, format!("{USERS}u2,per,per@skole.no,Per,,\n")).unwrap();
    bad.files.insert("users".into(), dup);

    // One plugin per role: these three are called by name only.
    for p in [&mut missing, &mut capped, &mut bad] {
        p.role = None;
    }
    let host = start(vec![missing, capped, bad]).await.unwrap();

    let (m, _) = err(&host, "missing", "list_users", json!({})).await;
    assert!(
        m.contains("file `users` granted to plugin `missing`"),
        "{m}"
    );
    assert!(m.contains(&gone.display().to_string()), "{m}");

    let (m, retryable) = err(&host, "capped", "get_manager", json!({"user": "u3"})).await;
    assert!(!retryable);
    assert!(m.contains("file `users` granted to plugin `capped`"), "{m}");
    assert!(
        m.contains("over its cap of 64 bytes") && m.contains("max_file_bytes"),
        "{m}"
    );

    let (m, retryable) = err(&host, "bad", "list_users", json!({})).await;
    assert!(!retryable);
    assert!(
        m.contains("file `users`, line 5, column 1 (`id`): duplicate id `u2` (first on line 3)"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_not_granted_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = standard(dir.path(), "partial");
    p.files.remove("memberships");
    let e = match start(vec![p]).await {
        Ok(_) => panic!("a plugin asking for an ungranted file was loaded"),
        Err(e) => e,
    };
    assert!(e.contains("plugin `partial`"), "{e}");
    assert!(e.contains("file `memberships`"), "{e}");
    assert!(e.contains("does not grant"), "{e}");
}
