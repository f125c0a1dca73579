//! The Redmine ticketing plugin through the plugin host, against a real
//! Redmine (Debian's package, SQLite, thin on loopback), started by
//! `scripts/servers/redmine.sh start` (installed by
//! `scripts/servers/redmine.sh install`). `VAKT_SKIP_SERVERS=1` skips the
//! tests that need it, saying so; otherwise a server that does not start
//! fails them.
//!
//! - create → get; a repeated create with the same idempotency key returns
//!   the same issue (by the `vakt-key` custom field, and by the description
//!   marker when the field is not there); priority, custom fields and
//!   assignee read back from Redmine's REST API;
//! - comment (public and private) → the journal read back directly;
//!   update_status; close → Redmine's closed status;
//! - failures: a wrong API key (not retryable, names the grant), an origin
//!   with nothing listening (retryable), a missing issue (not retryable),
//!   a status Redmine does not have, a 422, and from a fake Redmine a 429
//!   with `Retry-After`, a 503 and malformed JSON.

#[path = "redmine_support/mod.rs"]
mod support;

use std::sync::Arc;

use serde_json::json;
use support::{KEY_VAR, Redmine, WRONG_KEY_VAR, call, err, fresh_key, ok, plugin};
use vakt::plugin::{HostConfig, PluginConfig, PluginHost};

/// The host with the plugin as `redmine` (idempotency by custom field),
/// `redmine-marker` (by description marker), and `redmine-wrong-key`.
async fn host(r: &Redmine) -> Arc<PluginHost> {
    support::set_keys(Some(&r.key));
    let project = [("project", "sakerhet")];
    let configs = vec![
        plugin("redmine", &r.url, KEY_VAR, &project).bound_to("ticketing"),
        plugin(
            "redmine-marker",
            &r.url,
            KEY_VAR,
            &[
                ("project", "sakerhet"),
                ("idempotency_field", "no-such-field"),
            ],
        ),
        plugin("redmine-wrong-key", &r.url, WRONG_KEY_VAR, &project),
    ];
    start(configs).await
}

/// A host for `configs`. Compiled components are cached in a private
/// directory under `target/` shared by the tests (and later runs): wasmtime
/// in a debug build takes a while to compile one. Hosts start one at a time,
/// so the first compiles and the others load its result.
async fn start(configs: Vec<PluginConfig>) -> Arc<PluginHost> {
    static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    vakt::plugin::init();
    let config = HostConfig {
        cache_dir: support::cache_dir(),
        concurrency: 8,
    };
    let _one_at_a_time = STARTING.lock().await;
    Arc::new(PluginHost::start(config, configs).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_is_opened_once_commented_moved_and_closed() {
    let Some(r) = support::redmine() else { return };
    let host = host(&r).await;
    let key = fresh_key("open-ticket");
    let subject = "Misstänkt intrång: åäö ÅÄÖ";
    let new = json!({
        "subject": subject,
        "body": "Larm från brandväggen.\nKontrollera loggarna.",
        "priority": "urgent",
        "requester": "asa.oberg@kommun.example",
        "assignee": "admin",
        "fields": {"Område": "Skola"},
    });

    let first = ok(host.call(call("create", new.clone(), &key)).await);
    let id = first["id"].as_str().unwrap().to_string();
    assert_eq!(first["subject"], subject);
    assert_eq!(first["status"], "New");
    assert_eq!(first["url"], format!("{}/issues/{id}", r.url));

    let got = ok(host.call(call("get", json!({"ticket": id}), &key)).await);
    assert_eq!(got["subject"], subject);
    assert_eq!(got["status"], "New");
    assert_eq!(got["comments"], json!([]));

    // The same step visit again (a retry): the same issue, not a second one.
    let mut again = call("create", new.clone(), &key);
    again.attempt = 2;
    let second = ok(host.call(again).await);
    assert_eq!(
        second["id"], first["id"],
        "a repeated create opened another issue"
    );
    let fields = r.get("/custom_fields.json").await;
    let field_id = fields["custom_fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "vakt-key")
        .map(|f| f["id"].as_u64().unwrap())
        .expect("the custom field vakt-key");
    let listed = r
        .get(&format!("/issues.json?status_id=*&cf_{field_id}={key}"))
        .await;
    let with_key = listed["issues"].as_array().unwrap();
    assert_eq!(with_key.len(), 1, "issues holding the key: {with_key:?}");

    let issue = r.issue(&id).await;
    assert_eq!(issue["project"]["name"], "Säkerhet");
    assert_eq!(issue["priority"]["name"], "Urgent");
    assert_eq!(issue["assigned_to"]["id"], 1, "{issue}");
    let field = |name: &str| {
        issue["custom_fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .map(|f| f["value"].clone())
    };
    assert_eq!(field("vakt-key"), Some(json!(key)));
    assert_eq!(field("Område"), Some(json!("Skola")));
    let description = issue["description"].as_str().unwrap();
    assert!(
        description.contains("Larm från brandväggen."),
        "{description}"
    );
    assert!(
        description.contains("Requester: asa.oberg@kommun.example"),
        "{description}"
    );
    assert!(!description.contains("vakt-key:"), "{description}");

    // Comments: the journal, read back from Redmine directly.
    let out = ok(host
        .call(call(
            "comment",
            json!({"ticket": id, "body": "Första kommentaren: loggarna säkrade."}),
            &fresh_key("comment"),
        ))
        .await);
    assert_eq!(
        out["comments"],
        json!(["Första kommentaren: loggarna säkrade."])
    );
    ok(host
        .call(call(
            "comment",
            json!({"ticket": id, "body": "Intern anteckning", "private": true}),
            &fresh_key("comment-private"),
        ))
        .await);
    let journals = r.issue(&id).await["journals"].clone();
    let journals = journals.as_array().unwrap();
    assert_eq!(journals.len(), 2, "{journals:?}");
    assert_eq!(
        journals[0]["notes"],
        "Första kommentaren: loggarna säkrade."
    );
    assert_eq!(journals[0]["private_notes"], false);
    assert_eq!(journals[1]["notes"], "Intern anteckning");
    assert_eq!(journals[1]["private_notes"], true);

    // A retried comment whose first attempt got through is not repeated.
    let mut retry = call(
        "comment",
        json!({"ticket": id, "body": "Intern anteckning", "private": true}),
        &fresh_key("comment-private"),
    );
    retry.attempt = 2;
    ok(host.call(retry).await);
    assert_eq!(r.issue(&id).await["journals"].as_array().unwrap().len(), 2);

    let moved = ok(host
        .call(call(
            "update_status",
            json!({"ticket": id, "status": "in progress", "comment": "Utreds."}),
            &fresh_key("status"),
        ))
        .await);
    assert_eq!(moved["status"], "In Progress");
    assert_eq!(r.issue(&id).await["status"]["name"], "In Progress");

    let closed = ok(host
        .call(call(
            "close",
            json!({"ticket": id, "comment": "Åtgärdat.", "resolution": "Falsklarm"}),
            &fresh_key("close"),
        ))
        .await);
    assert_eq!(closed["status"], "Closed");
    let issue = r.issue(&id).await;
    assert_eq!(issue["status"]["name"], "Closed");
    assert_eq!(issue["status"]["is_closed"], true);
    assert!(issue["closed_on"].is_string(), "{issue}");
    let last = issue["journals"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last["notes"].as_str().unwrap().replace("\r\n", "\n"),
        "Åtgärdat.\n\nResolution: Falsklarm"
    );
    assert_eq!(
        closed["comments"],
        json!([
            "Första kommentaren: loggarna säkrade.",
            "Intern anteckning",
            "Utreds.",
            "Åtgärdat.\n\nResolution: Falsklarm"
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_custom_field_the_key_is_kept_in_the_description() {
    let Some(r) = support::redmine() else { return };
    let host = host(&r).await;
    let key = fresh_key("open-marker");
    let new = json!({"subject": "Marker", "body": "Text", "queue": "sakerhet",
                     "requester": "nobody-here", "assignee": "kalle@kommun.example"});
    let first = ok(host
        .call_named("redmine-marker", call("create", new.clone(), &key))
        .await);
    let second = ok(host
        .call_named("redmine-marker", call("create", new, &key))
        .await);
    assert_eq!(first["id"], second["id"]);
    let issue = r.issue(first["id"].as_str().unwrap()).await;
    let description = issue["description"].as_str().unwrap();
    assert!(
        description.contains(&format!("vakt-key: {key}")),
        "{description}"
    );
    // kalle exists but is no member of the project: opened unassigned.
    assert!(
        description.contains("Assignee: kalle@kommun.example (could not be assigned in Redmine)"),
        "{description}"
    );
    assert!(issue.get("assigned_to").is_none(), "{issue}");
    assert!(
        description.contains("Requester: nobody-here"),
        "{description}"
    );

    // An assignee who does not exist at all: named in the description too.
    let other = ok(host
        .call(call(
            "create",
            json!({"subject": "Ingen", "body": "b", "assignee": "finns-inte"}),
            &fresh_key("nobody"),
        ))
        .await);
    let description = r.issue(other["id"].as_str().unwrap()).await["description"].clone();
    assert!(
        description
            .as_str()
            .unwrap()
            .contains("Assignee: finns-inte (no such Redmine user)"),
        "{description}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_and_not_retried() {
    let Some(r) = support::redmine() else { return };
    let host = host(&r).await;
    let key = fresh_key("refusals");

    let (message, retryable, _) = err(
        "wrong API key",
        host.call_named(
            "redmine-wrong-key",
            call("create", json!({"subject": "x", "body": "y"}), &key),
        )
        .await,
    );
    assert!(!retryable, "{message}");
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("[[plugins.NAME.http]]"), "{message}");
    assert!(message.contains("credential"), "{message}");
    assert!(message.contains("plugin `redmine-wrong-key`"), "{message}");
    assert!(
        !message.contains("000000000000"),
        "the key leaked: {message}"
    );

    let (message, retryable, _) = err(
        "missing issue (get)",
        host.call(call("get", json!({"ticket": 99999999}), &key))
            .await,
    );
    assert!(!retryable, "{message}");
    assert!(message.contains("no issue #99999999"), "{message}");

    let (message, retryable, _) = err(
        "missing issue (comment)",
        host.call(call(
            "comment",
            json!({"ticket": 99999999, "body": "x"}),
            &key,
        ))
        .await,
    );
    assert!(!retryable && message.contains("#99999999"), "{message}");

    let created = ok(host
        .call(call(
            "create",
            json!({"subject": "Status", "body": "b"}),
            &key,
        ))
        .await);
    let (message, retryable, _) = err(
        "unknown status",
        host.call(call(
            "update_status",
            json!({"ticket": created["id"], "status": "Parkerad"}),
            &key,
        ))
        .await,
    );
    assert!(!retryable, "{message}");
    assert!(message.contains("no issue status `Parkerad`"), "{message}");
    assert!(message.contains("In Progress"), "{message}");

    // Redmine's own validation: its `errors` list in the message.
    let (message, retryable, _) = err(
        "422 blank subject",
        host.call(call(
            "create",
            json!({"subject": "", "body": "b"}),
            &fresh_key("blank"),
        ))
        .await,
    );
    assert!(!retryable, "{message}");
    assert!(message.contains("Subject cannot be blank"), "{message}");

    let (message, retryable, _) = err(
        "unknown custom field",
        host.call(call(
            "create",
            json!({"subject": "s", "body": "b", "fields": {"Finns inte": "x"}}),
            &fresh_key("field"),
        ))
        .await,
    );
    assert!(!retryable, "{message}");
    assert!(
        message.contains("no issue custom field `Finns inte`"),
        "{message}"
    );
    assert!(message.contains("vakt-key"), "{message}");
}

/// Needs no Redmine: an origin with nothing listening, and a fake one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_are_retryable_and_garbage_is_not() {
    let down = format!("http://127.0.0.1:{}", support::dead_port());
    let fake = format!("http://127.0.0.1:{}", support::fake_redmine());
    // The fake ignores the key; the grant still needs a variable that is set.
    support::set_keys(None);
    let var = WRONG_KEY_VAR;
    let host = start(vec![
        plugin("down", &down, var, &[("project", "sakerhet")]),
        plugin("fake", &fake, var, &[]),
    ])
    .await;
    let key = fresh_key("outage");

    let (message, retryable, _) = err(
        "connection refused (create)",
        host.call_named(
            "down",
            call("create", json!({"subject": "s", "body": "b"}), &key),
        )
        .await,
    );
    assert!(retryable, "{message}");
    assert!(message.contains("connection refused"), "{message}");
    let (message, retryable, _) = err(
        "connection refused (get)",
        host.call_named("down", call("get", json!({"ticket": 1}), &key))
            .await,
    );
    assert!(retryable, "{message}");

    let get = |n: u32| host.call_named("fake", call("get", json!({"ticket": n}), &key));
    let (message, retryable, after) = err("429 Retry-After", get(1).await);
    assert!(retryable, "{message}");
    assert_eq!(after, Some(7), "{message}");
    assert!(message.contains("429"), "{message}");

    let (message, retryable, _) = err("HTML instead of JSON", get(2).await);
    assert!(!retryable, "{message}");
    assert!(message.contains("not valid JSON"), "{message}");
    assert!(message.contains("Maintenance"), "{message}");

    let (message, retryable, _) = err("503", get(3).await);
    assert!(retryable, "{message}");
    assert!(message.contains("503"), "{message}");

    let (message, retryable, _) = err("JSON of the wrong shape", get(4).await);
    assert!(!retryable, "{message}");
    assert!(message.contains("not the JSON expected"), "{message}");

    let (message, retryable, _) = err("422 from the fake", get(5).await);
    assert!(!retryable, "{message}");
    assert!(message.ends_with("Status is invalid"), "{message}");

    let (message, retryable, _) = err(
        "not an issue number",
        host.call_named("fake", call("get", json!({"ticket": "abc"}), &key))
            .await,
    );
    assert!(
        !retryable && message.contains("not a Redmine issue number"),
        "{message}"
    );
}
