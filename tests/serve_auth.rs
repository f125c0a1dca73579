//! End to end: who may do what through the HTTP API of a real `vakt serve`,
//! and how requests are refused.
//!
//! - Without a token, with a malformed or unknown one, with a revoked one:
//!   401 with the error shape `{"error": {"code", "message"}}` and a
//!   `WWW-Authenticate` challenge; `/healthz` stays open.
//! - Two approvers with one task each: each lists only their own task; one
//!   deciding the other's gets 403 and nothing changes (nor does an
//!   operator who is not an assignee); an approver may not start, read,
//!   signal or cancel instances (403); the owner decides and the instance
//!   completes with the principal recorded.
//! - Starts: an `Idempotency-Key` repeated (one after the other, and eight
//!   at once) gives one instance; malformed JSON 400; a body over
//!   `max_body_bytes` 413; invalid input 422 naming the field; an unknown
//!   workflow 404; a workflow without the `api` trigger 409.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use vakt_tests::support::{Daemon, DaemonBuilder, Resp, http, poll};

const OPS: &str = "ops@kommun.example";
const ANNA: &str = "anna@kommun.example";
const BERT: &str = "bert@kommun.example";
const WAIT: Duration = Duration::from_secs(20);

const SIGN_OFF: &str = r#"id: sign-off
title: Sign-off
input:
  approver: {type: email}
  note: {type: string, required: false}
steps:
  - id: sign
    approval:
      title: "Sign-off by {{ input.approver }}"
      assignees: ["{{ input.approver }}"]
output:
  decision: "{{ steps.sign.output.decision }}"
  by: "{{ steps.sign.output.decided_by }}"
"#;

const NIGHTLY: &str = r#"id: nightly
triggers:
  api: false
  cron:
    - {schedule: "0 3 * * *", timezone: UTC}
steps:
  - id: nothing
    set: {done: true}
"#;

fn daemon(name: &str) -> Daemon {
    DaemonBuilder::new(name)
        .config("max_body_bytes = 4096")
        .workflow("sign-off.yaml", SIGN_OFF)
        .workflow("nightly.yaml", NIGHTLY)
        .prepare()
}

fn start_path() -> String {
    "/api/v1/workflows/sign-off/instances".into()
}

/// 401 with the error shape and a Bearer challenge.
#[track_caller]
fn unauthorized(r: &Resp) {
    r.expect_error(401, "unauthorized");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer")),
        "no Bearer challenge: {r:?} {:?}",
        r.headers
    );
}

/// The ids of the tasks a token lists.
fn task_ids(d: &Daemon, token: &str) -> BTreeSet<String> {
    let v = d
        .get("/api/v1/tasks")
        .bearer(token)
        .send()
        .expect(200)
        .json();
    v["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("no tasks list: {v}"))
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The open task of an instance, once it is waiting on it.
fn open_task(d: &Daemon, token: &str, id: &str) -> String {
    let inst = d.wait_status(token, id, "waiting", WAIT);
    let tasks = inst["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{inst:#}");
    assert_eq!(tasks[0]["status"], "open");
    tasks[0]["id"].as_str().unwrap().to_owned()
}

#[test]
fn requests_without_a_valid_token_get_401() {
    let mut d = daemon("auth-401");
    let ops = d.token(OPS, "operator");
    d.start();

    d.get("/healthz").send().expect(200);
    let routes = [
        ("GET", "/api/v1/workflows".to_owned()),
        ("GET", "/api/v1/tasks".to_owned()),
        ("GET", "/api/v1/instances".to_owned()),
        ("POST", start_path()),
        ("POST", "/api/v1/tasks/abc:1/decision".to_owned()),
        ("POST", "/api/v1/instances/abc/cancel".to_owned()),
    ];
    let mut forged = ops.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let bad_headers = [
        None,
        Some("Bearer nonsense".to_owned()),
        Some(format!("Bearer {forged}")),
        Some("Bearer vakt_00000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned()),
        Some(format!("Basic {ops}")),
        Some(ops.clone()),
        Some("Bearer ".to_owned()),
    ];
    for (method, path) in &routes {
        for h in &bad_headers {
            let mut req = if *method == "GET" {
                d.get(path)
            } else {
                d.post(path).json(&json!({"approver": ANNA}))
            };
            if let Some(h) = h {
                req = req.header("authorization", h);
            }
            let r = req.send();
            assert_eq!(r.status, 401, "{method} {path} with {h:?}: {r:?}");
            unauthorized(&r);
        }
    }
    // Nothing was started by all that.
    let v = d
        .get("/api/v1/instances")
        .bearer(&ops)
        .send()
        .expect(200)
        .json();
    assert_eq!(v["instances"], json!([]), "{v}");

    // A token made while the daemon runs counts within about a second; a
    // revoked one stops counting.
    let late = d.token("late@kommun.example", "operator");
    d.get("/api/v1/instances").bearer(&late).send().expect(200);
    let id = &late["vakt_".len().."vakt_".len() + 8];
    let out = d.cli_on_data_dir(&["token", "revoke", id]);
    assert!(out.status.success(), "{out:?}");
    poll("the revoked token refused", WAIT, || {
        let r = d.get("/api/v1/instances").bearer(&late).send();
        if r.status == 401 {
            unauthorized(&r);
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    });
    d.get("/api/v1/instances").bearer(&ops).send().expect(200);
}

#[test]
fn approvers_see_and_decide_only_their_own_tasks() {
    let mut d = daemon("auth-approvers");
    let ops = d.token(OPS, "operator");
    let anna = d.token(ANNA, "approver");
    let bert = d.token(BERT, "approver");
    d.start();

    let a = d.start_instance(&ops, "sign-off", &json!({"approver": ANNA}));
    let b = d.start_instance(&ops, "sign-off", &json!({"approver": BERT}));
    let task_a = open_task(&d, &ops, &a);
    let task_b = open_task(&d, &ops, &b);

    // Each approver lists only their own task; the operator sees both.
    assert_eq!(task_ids(&d, &anna), BTreeSet::from([task_a.clone()]));
    assert_eq!(task_ids(&d, &bert), BTreeSet::from([task_b.clone()]));
    let all = task_ids(&d, &ops);
    assert!(all.contains(&task_a) && all.contains(&task_b), "{all:?}");

    // Deciding someone else's task: 403, nothing changes.
    let history_b = d.history(&ops, &b);
    let decide = |token: &str, task: &str, body: Value| {
        d.post(&format!("/api/v1/tasks/{task}/decision"))
            .bearer(token)
            .json(&body)
            .send()
    };
    decide(
        &anna,
        &task_b,
        json!({"decision": "approve", "comment": "not mine"}),
    )
    .expect_error(403, "forbidden");
    // An operator is no assignee either.
    decide(&ops, &task_b, json!({"decision": "approve"})).expect_error(403, "forbidden");
    assert_eq!(
        d.history(&ops, &b),
        history_b,
        "a refused decision changed B"
    );
    let inst_b = d.instance(&ops, &b);
    assert_eq!(inst_b["status"], "waiting");
    assert_eq!(inst_b["tasks"][0]["status"], "open");
    assert_eq!(inst_b["tasks"][0]["votes"], json!([]));

    // An approver may not start, read, signal or cancel instances.
    d.post(&start_path())
        .bearer(&anna)
        .json(&json!({"approver": ANNA}))
        .send()
        .expect_error(403, "forbidden");
    d.get(&format!("/api/v1/instances/{b}"))
        .bearer(&anna)
        .send()
        .expect_error(403, "forbidden");
    d.get("/api/v1/instances")
        .bearer(&anna)
        .send()
        .expect_error(403, "forbidden");
    d.post(&format!("/api/v1/instances/{a}/signals/go"))
        .bearer(&anna)
        .send()
        .expect_error(403, "forbidden");
    d.post(&format!("/api/v1/instances/{a}/cancel"))
        .bearer(&anna)
        .send()
        .expect_error(403, "forbidden");
    let v = d
        .get("/api/v1/instances")
        .bearer(&ops)
        .send()
        .expect(200)
        .json();
    assert_eq!(
        v["instances"].as_array().unwrap().len(),
        2,
        "the refused start started nothing: {v:#}"
    );
    assert_eq!(d.instance(&ops, &a)["status"], "waiting");

    // Refused decisions by the owner: an unknown option, a malformed body.
    decide(&anna, &task_a, json!({"decision": "maybe"})).expect_error(422, "invalid_decision");
    d.post(&format!("/api/v1/tasks/{task_a}/decision"))
        .bearer(&anna)
        .raw(b"{\"decision\": ".to_vec(), "application/json")
        .send()
        .expect_error(400, "bad_request");
    decide(&anna, &task_a, json!({"choice": "approve"})).expect_error(400, "bad_request");
    decide(&anna, "not-a-task", json!({"decision": "approve"})).expect_error(400, "bad_request");
    decide(&anna, &format!("{b}:999"), json!({"decision": "approve"}))
        .expect_error(404, "not_found");

    // The owner decides: the instance completes, the principal recorded.
    decide(
        &anna,
        &task_a,
        json!({"decision": "approve", "comment": "ok"}),
    )
    .expect(200);
    let done = d.wait_status(&ops, &a, "completed", WAIT);
    assert_eq!(done["output"], json!({"decision": "approve", "by": ANNA}));
    let votes: Vec<Value> = d
        .history(&ops, &a)
        .into_iter()
        .filter(|e| e["type"] == "task_voted")
        .collect();
    assert_eq!(votes.len(), 1);
    assert_eq!(votes[0]["record"]["vote"]["by"], ANNA);
    assert_eq!(votes[0]["record"]["vote"]["comment"], "ok");
    // Deciding again: the task is closed.
    let again = decide(&anna, &task_a, json!({"decision": "reject"}));
    assert_eq!(again.status, 409, "{again:?}");
    assert!(task_ids(&d, &anna).is_empty());
    assert_eq!(task_ids(&d, &bert), BTreeSet::from([task_b.clone()]));
    assert_eq!(d.instance(&ops, &b)["status"], "waiting");
}

#[test]
fn starts_are_idempotent_by_key_and_bad_requests_are_refused() {
    let mut d = daemon("auth-starts");
    let ops = d.token(OPS, "operator");
    let admin = d.token("admin@kommun.example", "admin");
    d.start();
    let start = |token: &str, key: Option<&str>, body: &Value| {
        let mut r = d.post(&start_path()).bearer(token).json(body);
        if let Some(k) = key {
            r = r.header("idempotency-key", k);
        }
        r.send()
    };
    let input = json!({"approver": ANNA, "note": "first"});

    // The same key again: the same instance, whatever the body says.
    let first = start(&ops, Some("order-4711"), &input).expect(201);
    let id = first.json()["id"].as_str().unwrap().to_owned();
    for body in [&input, &json!({"approver": BERT})] {
        let again = start(&ops, Some("order-4711"), body);
        assert!(
            again.status == 200 || again.status == 201,
            "a repeat: {again:?}"
        );
        assert_eq!(again.json()["id"], id.as_str(), "{again:?}");
    }
    // An admin repeating it too (keys are per workflow, not per caller).
    let again = start(&admin, Some("order-4711"), &input);
    assert_eq!(again.json()["id"], id.as_str(), "{again:?}");
    let other = start(&ops, Some("order-4712"), &input).expect(201);
    assert_ne!(other.json()["id"], id.as_str());
    let no_key = start(&ops, None, &input).expect(201);
    assert_ne!(no_key.json()["id"], id.as_str());

    // Eight clients with one new key at the same moment: one instance.
    let ids: BTreeSet<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let r = start(&ops, Some("burst-1"), &input);
                    assert!(r.status == 200 || r.status == 201, "{r:?}");
                    r.json()["id"].as_str().unwrap().to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(ids.len(), 1, "one key, several instances: {ids:?}");
    let listed = d
        .get("/api/v1/instances?workflow=sign-off")
        .bearer(&ops)
        .send()
        .expect(200)
        .json();
    assert_eq!(
        listed["instances"].as_array().unwrap().len(),
        4,
        "order-4711, order-4712, no key, burst-1: {listed:#}"
    );

    // A bad key: 400.
    start(&ops, Some(&"k".repeat(201)), &input).expect_error(400, "bad_request");

    // Malformed JSON: 400.
    let msg = d
        .post(&start_path())
        .bearer(&ops)
        .raw(
            b"{\"approver\": \"anna@kommun.example\",}".to_vec(),
            "application/json",
        )
        .send()
        .expect_error(400, "bad_request");
    assert!(msg.contains("JSON"), "{msg}");

    // Larger than max_body_bytes (4096): 413.
    let big = json!({"approver": ANNA, "note": "x".repeat(8192)});
    d.post(&start_path())
        .bearer(&ops)
        .json(&big)
        .send()
        .expect_error(413, "payload_too_large");

    // Invalid input: 422 naming the field.
    for (body, field) in [
        (json!({"approver": "not an address"}), "`approver`"),
        (json!({}), "`approver`"),
        (json!({"approver": ANNA, "colour": "red"}), "`colour`"),
        (json!({"approver": ANNA, "note": 42}), "`note`"),
    ] {
        let r = start(&ops, None, &body);
        let msg = r.expect_error(422, "invalid_input");
        assert!(msg.contains(field), "{field} not named: {r:?}");
        let problems = r.json()["error"]["details"]["problems"].clone();
        assert!(
            problems
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p.as_str().unwrap().contains(field))),
            "{r:?}"
        );
    }
    let r = start(&ops, None, &json!(["approver"]));
    assert_eq!(r.status, 422, "{r:?}");

    // An unknown workflow: 404; one without the api trigger: 409.
    d.post("/api/v1/workflows/no-such-flow/instances")
        .bearer(&ops)
        .json(&json!({}))
        .send()
        .expect_error(404, "not_found");
    d.post("/api/v1/workflows/nightly/instances")
        .bearer(&ops)
        .json(&json!({}))
        .send()
        .expect_error(409, "not_startable");
    // An unknown route: 404 with the same shape.
    http::get(d.url("/api/v1/nothing-here"))
        .bearer(&ops)
        .send()
        .expect_error(404, "not_found");

    let listed = d
        .get("/api/v1/instances?workflow=sign-off")
        .bearer(&ops)
        .send()
        .expect(200)
        .json();
    assert_eq!(
        listed["instances"].as_array().unwrap().len(),
        4,
        "refused starts started nothing: {listed:#}"
    );
}
