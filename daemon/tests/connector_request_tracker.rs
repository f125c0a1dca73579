//! The request-tracker connector (plugins/request-tracker/) through the
//! plugin host against a real Request Tracker 5 from Debian, started on
//! loopback by `scripts/servers/request-tracker.sh start` (install it first
//! with `… install`; `VAKT_SKIP_SERVERS=1` skips the tests that need it):
//! - create → get; a repeated create with the same idempotency key returns
//!   the same ticket, with the key in the `vakt-key` custom field or, in a
//!   queue without that field, as a tag in the subject;
//! - a comment and a reply are read back from RT's REST2 history directly;
//! - update_status and close are read back; a status RT refuses fails;
//! - a wrong token, an unreachable origin, a missing ticket, a 429, a 503
//!   and answers that are not the JSON expected fail as they should.

#[path = "rt_support/mod.rs"]
mod rt;
#[path = "plugin_support/mod.rs"]
mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use support::err_text;
use vakt::engine::CallOutcome;
use vakt::plugin::{PluginConfig, PluginHost};
use vakt::runtime::ConnectorCall;

/// A host with the plugins these tests call by name: `rt` (the good
/// token), `rt-wrong` (a token RT refuses), `rt-down` (a port nothing
/// listens on) and, when given, `rt-troubled` (see [`rt::troubled_rt`]).
async fn host(server: Option<&rt::Server>, troubled: Option<u16>) -> Arc<PluginHost> {
    vakt::plugin::init();
    let mut plugins: Vec<PluginConfig> = Vec::new();
    if let Some(s) = server {
        plugins.push(rt::plugin("rt", &s.url, Some(rt::GOOD_ENV)).bound_to("ticketing"));
        plugins.push(rt::plugin("rt-wrong", &s.url, Some(rt::BAD_ENV)));
    }
    let down = format!("http://127.0.0.1:{}", support::free_port());
    plugins.push(rt::plugin("rt-down", &down, None));
    if let Some(port) = troubled {
        plugins.push(rt::plugin(
            "rt-troubled",
            &format!("http://127.0.0.1:{port}"),
            None,
        ));
    }
    let host = PluginHost::start(rt::host_config(), plugins).await.unwrap();
    Arc::new(host)
}

fn call(action: &str, key: &str, args: Value) -> ConnectorCall {
    ConnectorCall {
        instance: "inst-rt".into(),
        role: "ticketing".into(),
        action: action.into(),
        args,
        idempotency_key: format!("{}/{key}/0/1", rt::run_id()),
        attempt: 1,
        deadline: None,
    }
}

async fn ok(host: &PluginHost, plugin: &str, call: ConnectorCall) -> Value {
    let what = format!("{plugin} {}", call.action);
    match host.call_named(plugin, call).await {
        CallOutcome::Ok(v) => v,
        other => panic!("{what} failed: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_and_idempotent_create() {
    let Some(server) = rt::server() else { return };
    let host = host(Some(server), None).await;

    let args = json!({
        "subject": "Diskutrymme slut på filserver 3",
        "body": "Disken är full.\nÅtgärda före fredag.",
        "priority": "high",
        "requester": "asa.oberg@kommun.example",
        "assignee": "root",
        "fields": {"Severity": "Hög"},
    });
    let first = ok(&host, "rt", call("create", "open", args.clone())).await;
    let id = first["id"].as_str().unwrap().to_string();
    assert_eq!(first["subject"], "Diskutrymme slut på filserver 3");
    assert_eq!(first["status"], "new");
    assert_eq!(
        first["url"],
        format!("{}/Ticket/Display.html?id={id}", server.url)
    );

    let got = ok(&host, "rt", call("get", "read", json!({ "ticket": id }))).await;
    assert_eq!(got["id"], id);
    assert_eq!(got["subject"], "Diskutrymme slut på filserver 3");
    assert_eq!(got["comments"], json!([]));

    // Straight from RT: the queue, the priority, the requestor, the key.
    let t = rt::rest_get(server, &format!("ticket/{id}")).await;
    assert_eq!(t["Priority"], "80");
    assert_eq!(t["Requestor"][0]["id"], "asa.oberg@kommun.example");
    assert_eq!(t["Owner"]["id"], "root");
    let queue = rt::rest_get(
        server,
        &format!("queue/{}", t["Queue"]["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(queue["Name"], "vakt");
    let field = |name: &str| {
        t["CustomFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|cf| cf["name"] == name)
            .map(|cf| cf["values"].clone())
    };
    assert_eq!(
        field("vakt-key"),
        Some(json!([format!("{}/open/0/1", rt::run_id())]))
    );
    assert_eq!(field("Severity"), Some(json!(["Hög"])));

    // The same key again (a retried step): the same ticket, no second one.
    let mut again = args.clone();
    again["subject"] = json!("a retry must not open another ticket");
    let second = ok(&host, "rt", call("create", "open", again)).await;
    assert_eq!(second["id"], id);
    assert_eq!(second["subject"], "Diskutrymme slut på filserver 3");

    // A queue without the custom field: the key goes into the subject.
    let nocf = json!({"subject": "Utan nyckelfält", "body": "b", "queue": "vakt-nocf"});
    let a = ok(&host, "rt", call("create", "nocf", nocf.clone())).await;
    let subject = a["subject"].as_str().unwrap();
    assert!(subject.starts_with("Utan nyckelfält [vakt:"), "{subject}");
    let b = ok(&host, "rt", call("create", "nocf", nocf)).await;
    assert_eq!(a["id"], b["id"]);
    assert_ne!(a["id"], json!(id));

    // A custom field the queue does not have is refused, not dropped.
    let bad = json!({"subject": "s", "body": "b", "fields": {"Department": "IT"}});
    let (message, retryable) =
        err_text(&host.call_named("rt", call("create", "fields", bad)).await);
    assert!(!retryable, "{message}");
    assert!(message.contains("`Department`"), "{message}");
    assert!(message.contains("queue `vakt`"), "{message}");

    // A queue that does not exist is named.
    let bad = json!({"subject": "s", "body": "b", "queue": "no-such-queue"});
    let (message, retryable) = err_text(&host.call_named("rt", call("create", "noq", bad)).await);
    assert!(!retryable, "{message}");
    assert!(
        message.contains("queue `no-such-queue` does not exist"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_and_replies_are_in_the_history() {
    let Some(server) = rt::server() else { return };
    let host = host(Some(server), None).await;
    let t = ok(
        &host,
        "rt",
        call(
            "create",
            "c",
            json!({"subject": "Kommentarer", "body": "Start."}),
        ),
    )
    .await;
    let id = t["id"].as_str().unwrap().to_string();

    let private = "Intern anteckning: väntar på leverantören.";
    let public = "Hej! Vi har tagit emot ärendet — åäö ÅÄÖ.";
    ok(
        &host,
        "rt",
        call(
            "comment",
            "c1",
            json!({"ticket": id, "body": private, "private": true}),
        ),
    )
    .await;
    let after = ok(
        &host,
        "rt",
        call(
            "comment",
            "c2",
            json!({"ticket": id, "body": public, "private": false}),
        ),
    )
    .await;
    assert_eq!(after["comments"], json!([private, public]));

    let history = rt::history(server, &id).await;
    let kinds: Vec<&str> = history.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"Create"), "{history:?}");
    assert!(
        history.contains(&("Comment".to_string(), private.to_string())),
        "{history:?}"
    );
    assert!(
        history.contains(&("Correspond".to_string(), public.to_string())),
        "{history:?}"
    );
    let comment_at = kinds.iter().position(|k| *k == "Comment").unwrap();
    let reply_at = kinds.iter().position(|k| *k == "Correspond").unwrap();
    assert!(comment_at < reply_at, "{history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_status_and_close_are_read_back() {
    let Some(server) = rt::server() else { return };
    let host = host(Some(server), None).await;
    let t = ok(
        &host,
        "rt",
        call("create", "s", json!({"subject": "Status", "body": "b"})),
    )
    .await;
    let id = t["id"].as_str().unwrap().to_string();
    let status = |v: Value| v["Status"].as_str().unwrap().to_string();

    let u = ok(
        &host,
        "rt",
        call(
            "update_status",
            "s1",
            json!({"ticket": id, "status": "open", "comment": "Påbörjat."}),
        ),
    )
    .await;
    assert_eq!(u["status"], "open");
    assert_eq!(u["comments"], json!(["Påbörjat."]));
    assert_eq!(
        status(rt::rest_get(server, &format!("ticket/{id}")).await),
        "open"
    );
    let history = rt::history(server, &id).await;
    assert!(
        history.contains(&("Comment".to_string(), "Påbörjat.".to_string())),
        "{history:?}"
    );

    // RT answers 200 with a message for a status its lifecycle lacks.
    let (message, retryable) = err_text(
        &host
            .call_named(
                "rt",
                call(
                    "update_status",
                    "s2",
                    json!({"ticket": id, "status": "on-fire", "comment": "x"}),
                ),
            )
            .await,
    );
    assert!(!retryable, "{message}");
    assert!(message.contains("did not set ticket"), "{message}");
    assert!(message.contains("isn't a valid status"), "{message}");
    let after = rt::history(server, &id).await;
    assert!(
        !after.iter().any(|(_, v)| v == "x"),
        "no comment after a refused status: {after:?}"
    );

    let c = ok(
        &host,
        "rt",
        call(
            "close",
            "s3",
            json!({"ticket": format!("#{id}"), "comment": "Klart.", "resolution": "disk utökad"}),
        ),
    )
    .await;
    assert_eq!(c["status"], "resolved");
    assert_eq!(
        status(rt::rest_get(server, &format!("ticket/{id}")).await),
        "resolved"
    );
    let history = rt::history(server, &id).await;
    assert!(
        history.contains(&(
            "Comment".to_string(),
            "Klart.\n\nResolution: disk utökad".to_string()
        )),
        "{history:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_classified() {
    let server = rt::server();
    let troubled = rt::troubled_rt();
    let host = host(server, Some(troubled)).await;
    let get = |ticket: &str| call("get", "g", json!({ "ticket": ticket }));

    if server.is_some() {
        // A token RT refuses: permanent, naming the grant to fix.
        let (message, retryable) = err_text(&host.call_named("rt-wrong", get("1")).await);
        assert!(!retryable, "{message}");
        assert!(message.contains("401"), "{message}");
        assert!(message.contains("grant"), "{message}");

        // A ticket that does not exist: permanent, naming it.
        let (message, retryable) = err_text(&host.call_named("rt", get("987654")).await);
        assert!(!retryable, "{message}");
        assert!(
            message.contains("ticket 987654 does not exist"),
            "{message}"
        );
        let (message, retryable) = err_text(
            &host
                .call_named(
                    "rt",
                    call("comment", "g", json!({"ticket": "987654", "body": "x"})),
                )
                .await,
        );
        assert!(!retryable, "{message}");
        assert!(
            message.contains("ticket 987654 does not exist"),
            "{message}"
        );
    }

    // Nothing listens: retryable.
    let (message, retryable) = err_text(&host.call_named("rt-down", get("1")).await);
    assert!(retryable, "{message}");
    assert!(message.contains("connection refused"), "{message}");

    // Not a ticket number: permanent, before any request.
    let (message, retryable) = err_text(&host.call_named("rt-down", get("../queue/1")).await);
    assert!(!retryable, "{message}");
    assert!(
        message.contains("not a Request Tracker ticket number"),
        "{message}"
    );

    // 429 with Retry-After, 503, an HTML page, JSON of the wrong shape.
    let out = host.call_named("rt-troubled", get("1")).await;
    let CallOutcome::Err {
        message,
        retryable,
        retry_after,
    } = out
    else {
        panic!("{out:?}")
    };
    assert!(retryable, "{message}");
    assert_eq!(retry_after, Some(7), "{message}");
    let (message, retryable) = err_text(&host.call_named("rt-troubled", get("2")).await);
    assert!(retryable, "{message}");
    assert!(message.contains("503"), "{message}");
    let (message, retryable) = err_text(&host.call_named("rt-troubled", get("3")).await);
    assert!(!retryable, "{message}");
    assert!(message.contains("is not valid JSON"), "{message}");
    let (message, retryable) = err_text(&host.call_named("rt-troubled", get("4")).await);
    assert!(!retryable, "{message}");
    assert!(message.contains("is not the JSON expected"), "{message}");
}
