//! End to end: the cron scheduler across kills, and hot reload of workflow
//! files, in a real `vakt serve`.
//!
//! - Cron: a trigger `* * * * *` (UTC, `catch_up: all`) on a workflow with
//!   no people. The daemon runs into a minute boundary; right after that
//!   fire it is killed with SIGKILL and restarted at once, then stopped with
//!   SIGTERM and started again; then it is killed just before the next
//!   boundary and restarted just after it, so that due time passes while it
//!   is down. Each due time must give exactly one instance (`started_by` =
//!   `cron:cron[0]`, the trigger's input), the one missed while down
//!   included. Takes up to about 2 minutes 10 seconds: it waits for real
//!   minutes.
//! - Hot reload: an instance started on version 1 (waiting for a signal)
//!   finishes on version 1 after the file changed to version 2, which new
//!   starts use; an invalid edit is listed with `file:line:column` errors
//!   while version 2 stays active; a removed file takes no new starts
//!   (404) while its running instance finishes; a restored file is active
//!   again.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use vakt_tests::support::{Daemon, DaemonBuilder, now_ms, poll, sha256_hex};

const OPS: &str = "ops@kommun.example";

const EVERY_MINUTE: &str = r#"id: every-minute
title: Every minute
triggers:
  api: false
  cron:
    - schedule: "* * * * *"
      timezone: UTC
      catch_up: all
      input: {label: from-cron}
input:
  label: {type: string}
steps:
  - id: note
    set: {seen: "{{ input.label }}"}
output:
  label: "{{ vars.seen }}"
"#;

/// Milliseconds of an RFC 3339 instant.
fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("`{rfc3339}`: {e}"))
        .timestamp_millis()
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The first whole minute at or after `t`.
fn minute_at_or_after(t: i64) -> i64 {
    (t + 59_999).div_euclid(60_000) * 60_000
}

/// Sleeps until the system clock reads `t` (scheduling the test, not an
/// assertion on timing).
fn sleep_until(t: i64) {
    let now = now_ms();
    if t > now {
        std::thread::sleep(Duration::from_millis((t - now) as u64));
    }
}

/// The cron workflow's instances by the due minute they were started for
/// (their start time, floored to the minute: a fire is started at its due
/// time, or at the restart that catches it up, within the minute).
fn instances_by_minute(d: &Daemon, token: &str) -> BTreeMap<i64, Vec<Value>> {
    let v = d
        .get("/api/v1/instances?workflow=every-minute&limit=1000")
        .bearer(token)
        .send()
        .expect(200)
        .json();
    let mut by: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for i in v["instances"].as_array().unwrap() {
        let at = ms(i["started_at"].as_str().unwrap());
        by.entry(at.div_euclid(60_000) * 60_000)
            .or_default()
            .push(i.clone());
    }
    by
}

fn show(by: &BTreeMap<i64, Vec<Value>>) -> String {
    by.iter()
        .map(|(m, is)| {
            let ids: Vec<&str> = is.iter().map(|i| i["id"].as_str().unwrap()).collect();
            format!("{}: {ids:?}", utc(*m))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Waits until the fire of `due` has made its instance; returns its id.
fn wait_for_fire(d: &Daemon, token: &str, due: i64) -> String {
    let timeout = Duration::from_millis((due - now_ms()).max(0) as u64 + 30_000);
    poll(format!("the fire of {}", utc(due)), timeout, || {
        let by = instances_by_minute(d, token);
        match by.get(&due) {
            Some(is) => Ok(is[0]["id"].as_str().unwrap().to_owned()),
            None => Err(show(&by)),
        }
    })
}

/// `(fire, instance)` of every "cron trigger fired" line of the log.
fn fires_logged(d: &Daemon) -> Vec<(String, String)> {
    let field = |line: &str, name: &str| {
        let start = line.find(&format!(" {name}="))? + name.len() + 2;
        let rest = &line[start..];
        let value = rest.split_whitespace().next()?;
        Some(value.trim_matches('"').to_owned())
    };
    d.log()
        .lines()
        .filter(|l| l.contains("cron trigger fired"))
        .filter_map(|l| Some((field(l, "fire")?, field(l, "instance")?)))
        .collect()
}

#[test]
fn a_cron_trigger_fires_once_per_due_time_across_kills() {
    let mut d = DaemonBuilder::new("cron")
        .workflow("every-minute.yaml", EVERY_MINUTE)
        .prepare();
    let ops = d.token(OPS, "operator");
    d.start();
    let ready = now_ms();
    // A trigger seen for the first time never fires for the past: the first
    // due time checked is one the daemon surely knew the trigger before.
    let first = minute_at_or_after(ready + 3_000);
    let second = first + 60_000;

    // The first due time fires; right after it, kill -9 and restart; then
    // a clean stop (exit 0) and start. Neither fires it again.
    let id1 = wait_for_fire(&d, &ops, first);
    d.kill9();
    d.restart();
    assert_eq!(d.sigterm().code(), Some(0), "{}", d.log_tail(20));
    d.restart();
    // Down across the second due time: killed just before it, back just
    // after it. The restart catches it up (in its first scheduler pass,
    // which would also re-fire the first due time, oldest first, had it
    // not been recorded).
    sleep_until(second - 4_000);
    let before_second = instances_by_minute(&d, &ops);
    d.kill9();
    sleep_until(second + 3_000);
    d.restart();
    let id2 = wait_for_fire(&d, &ops, second);
    let by = instances_by_minute(&d, &ops);
    let end = now_ms();

    let listing = show(&by);
    assert_eq!(
        by.get(&first).map(Vec::len),
        Some(1),
        "{} fired once: {listing}",
        utc(first)
    );
    assert_eq!(
        by.get(&second).map(Vec::len),
        Some(1),
        "{} (due while the daemon was down) fired once: {listing}",
        utc(second)
    );
    assert_eq!(by[&first][0]["id"], id1.as_str());
    assert_eq!(by[&second][0]["id"], id2.as_str());
    assert_eq!(
        before_second.get(&second),
        None,
        "{} fired early: {}",
        utc(second),
        show(&before_second)
    );
    for (minute, is) in &by {
        // Before `first`: at most the one boundary just after the start.
        if *minute < first {
            assert!(*minute >= ready - 60_000 && is.len() == 1, "{listing}");
        }
        // After `second`: only a boundary the run itself reached.
        if *minute > second {
            assert!(*minute <= end && is.len() == 1, "{listing}");
        }
    }
    for is in by.values() {
        for i in is {
            let id = i["id"].as_str().unwrap();
            assert_eq!(i["started_by"], "cron:cron[0]", "{i:#}");
            let inst = d.wait_status(&ops, id, "completed", Duration::from_secs(10));
            assert_eq!(inst["input"], json!({"label": "from-cron"}));
            assert_eq!(inst["output"], json!({"label": "from-cron"}));
        }
    }
    // The log: every fire names the instance of its due time; a due time
    // fired again after a kill (the last fire not yet stored) gave back the
    // same instance through its idempotency key.
    let fires = fires_logged(&d);
    let mut per_fire: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (fire, instance) in &fires {
        per_fire
            .entry(ms(fire).div_euclid(60_000) * 60_000)
            .or_default()
            .push(instance.clone());
    }
    for (minute, instances) in &per_fire {
        let listed = by
            .get(minute)
            .unwrap_or_else(|| panic!("{} logged as fired, not listed: {fires:?}", utc(*minute)));
        for i in instances {
            assert_eq!(listed[0]["id"], i.as_str(), "{fires:?}");
        }
    }
    assert!(
        per_fire.contains_key(&first) && per_fire.contains_key(&second),
        "{fires:?}"
    );
    println!(
        "cron test: fires logged {:?}; instances by due time: {listing}",
        per_fire
            .iter()
            .map(|(m, is)| format!("{} ×{}", utc(*m), is.len()))
            .collect::<Vec<_>>()
    );
    assert_eq!(d.sigterm().code(), Some(0));
}

const V1: &str = r#"id: reloadable
title: Reloadable, version 1
steps:
  - id: hold
    wait: {signal: go}
  - id: mark_v1
    set: {version: v1}
output:
  version: "{{ vars.version }}"
"#;

const V2: &str = r#"id: reloadable
title: Reloadable, version 2
steps:
  - id: hold
    wait: {signal: go}
  - id: mark_v2
    set: {version: v2, extra: true}
output:
  version: "{{ vars.version }}"
  extra: "{{ vars.extra }}"
"#;

/// Line 7, column 24: `input.nope` is not declared.
const BROKEN: &str = r#"id: reloadable
title: Reloadable, broken
steps:
  - id: hold
    wait: {signal: go}
  - id: mark_v3
    set: {version: "{{ input.nope }}"}
output:
  version: "{{ vars.version }}"
"#;

/// The `reloadable` entry of `GET /api/v1/workflows`.
fn listed(d: &Daemon, token: &str) -> Value {
    let v = d
        .get("/api/v1/workflows")
        .bearer(token)
        .send()
        .expect(200)
        .json();
    v["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == "reloadable")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits until the listing of `reloadable` satisfies `ok`.
fn wait_listed(d: &Daemon, token: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    poll(what, Duration::from_secs(20), || {
        let w = listed(d, token);
        if ok(&w) { Ok(w) } else { Err(format!("{w:#}")) }
    })
}

fn signal_go(d: &Daemon, token: &str, id: &str) {
    d.post(&format!("/api/v1/instances/{id}/signals/go"))
        .bearer(token)
        .json(&json!({"by": "test"}))
        .send()
        .expect(202);
}

fn steps_run(d: &Daemon, token: &str, id: &str) -> Vec<String> {
    d.history(token, id)
        .iter()
        .filter(|e| e["type"] == "step_completed")
        .map(|e| e["record"]["step"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn hot_reload_keeps_running_instances_on_their_version() {
    let mut d = DaemonBuilder::new("reload")
        // The shortest interval the duration syntax can say (`200ms` is
        // refused: durations have no `ms` unit).
        .config("reload_interval = \"1s\"")
        .workflow("reloadable.yaml", V1)
        .prepare();
    let ops = d.token(OPS, "operator");
    d.start();
    let (h1, h2) = (sha256_hex(V1.as_bytes()), sha256_hex(V2.as_bytes()));

    let w = listed(&d, &ops);
    assert_eq!(
        (w["status"].as_str(), w["hash"].as_str()),
        (Some("active"), Some(h1.as_str())),
        "{w:#}"
    );
    let old = d.start_instance(&ops, "reloadable", &json!({}));
    let inst = d.wait_status(&ops, &old, "waiting", Duration::from_secs(10));
    assert_eq!(inst["hash"], h1.as_str());

    // ---- Version 2: new starts use it; the old instance stays on version 1.
    d.write_workflow("reloadable.yaml", V2);
    let w = wait_listed(&d, &ops, "version 2 active", |w| {
        w["hash"] == h2.as_str() && w["status"] == "active"
    });
    assert_eq!(w["title"], "Reloadable, version 2");
    assert_eq!(w["errors"], json!([]));
    let new = d.start_instance(&ops, "reloadable", &json!({}));
    assert_eq!(
        d.wait_status(&ops, &new, "waiting", Duration::from_secs(10))["hash"],
        h2.as_str()
    );
    signal_go(&d, &ops, &old);
    let done = d.wait_status(&ops, &old, "completed", Duration::from_secs(10));
    assert_eq!(
        done["output"],
        json!({"version": "v1"}),
        "the old instance ran version 1"
    );
    assert_eq!(done["hash"], h1.as_str());
    assert_eq!(steps_run(&d, &ops, &old), ["hold", "mark_v1"]);
    signal_go(&d, &ops, &new);
    let done = d.wait_status(&ops, &new, "completed", Duration::from_secs(10));
    assert_eq!(done["output"], json!({"version": "v2", "extra": true}));
    assert_eq!(steps_run(&d, &ops, &new), ["hold", "mark_v2"]);
    // One on version 2 left waiting through the edits below.
    let waiting = d.start_instance(&ops, "reloadable", &json!({}));
    d.wait_status(&ops, &waiting, "waiting", Duration::from_secs(10));

    // ---- An invalid edit: listed with its errors; version 2 stays active.
    d.write_workflow("reloadable.yaml", BROKEN);
    let w = wait_listed(&d, &ops, "the broken version listed as invalid", |w| {
        w["status"] == "invalid"
    });
    let errors: Vec<&str> = w["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(!errors.is_empty(), "{w:#}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("reloadable.yaml:7:24: ") && e.contains("input.nope")),
        "an error as file:line:column naming the problem: {errors:#?}"
    );
    for e in &errors {
        let (file, rest) = e.split_once(".yaml:").expect("file:line:column");
        assert!(file.ends_with("reloadable"), "{e}");
        let mut parts = rest.splitn(3, ':');
        let line = parts.next().unwrap().parse::<u32>();
        let column = parts.next().unwrap().parse::<u32>();
        assert!(line.is_ok() && column.is_ok(), "not file:line:column: {e}");
    }
    assert_eq!(w["active_hash"], h2.as_str(), "{w:#}");
    assert!(
        d.log().contains("reloadable.yaml:7:24"),
        "the error is logged too\n{}",
        d.log_tail(20)
    );
    let during = d.start_instance(&ops, "reloadable", &json!({}));
    assert_eq!(
        d.wait_status(&ops, &during, "waiting", Duration::from_secs(10))["hash"],
        h2.as_str()
    );
    signal_go(&d, &ops, &during);
    let done = d.wait_status(&ops, &during, "completed", Duration::from_secs(10));
    assert_eq!(done["output"]["version"], "v2");

    // ---- Removed: no new starts; the running instance finishes.
    d.remove_workflow("reloadable.yaml");
    wait_listed(&d, &ops, "the workflow listed as removed", |w| {
        w["status"] == "removed"
    });
    let r = d
        .post("/api/v1/workflows/reloadable/instances")
        .bearer(&ops)
        .json(&json!({}))
        .send();
    let msg = r.expect_error(404, "not_found");
    assert!(msg.contains("removed"), "{r:?}");
    signal_go(&d, &ops, &waiting);
    let done = d.wait_status(&ops, &waiting, "completed", Duration::from_secs(10));
    assert_eq!(done["output"], json!({"version": "v2", "extra": true}));

    // ---- Restored (as version 1): active again.
    d.write_workflow("reloadable.yaml", V1);
    wait_listed(&d, &ops, "version 1 active again", |w| {
        w["status"] == "active" && w["hash"] == h1.as_str()
    });
    let back = d.start_instance(&ops, "reloadable", &json!({}));
    assert_eq!(
        d.wait_status(&ops, &back, "waiting", Duration::from_secs(10))["hash"],
        h1.as_str()
    );
    assert_eq!(d.sigterm().code(), Some(0));
}
