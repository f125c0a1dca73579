//! End to end: `kill -9` of a real `vakt serve` under load over HTTP.
//!
//! Eight clients start instances of a small workflow as fast as the daemon
//! answers, each start with its own `Idempotency-Key`; a start that got no
//! answer (the daemon died under it) is sent again with the same key until
//! it is answered. Every instance waits a second, sends a mail through the
//! real mail plugin to a real SMTP server, then opens an approval task
//! whose assignee is mailed a signed link. Meanwhile the daemon is killed
//! with SIGKILL at random moments and restarted on the same data directory,
//! five times.
//!
//! After the last restart:
//! - every start acknowledged (201, or 200 for a repeated key) exists, each
//!   key gave one instance (a repeat never gave another id), and there are
//!   no other instances;
//! - every instance reaches its task and every task's assignee got at
//!   least one approval mail: none is lost. A mail sent twice (the daemon
//!   died after the relay took it but before the fact was recorded) is
//!   allowed by the at-least-once contract; duplicates are counted and
//!   printed, as are duplicated `mail.send` step mails, and every copy
//!   carries the Message-ID of the first;
//! - every task is decided through the API and every instance completes,
//!   its history verifying.
//!
//! The seed of the kill moments is `VAKT_SERVE_CRASH_SEED` (printed).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use vakt_tests::support::{DaemonBuilder, Lcg, Smtp, http, poll};

const CLIENTS: u64 = 8;
const KILLS: u64 = 5;
/// New keys each client may start per round (the run before a kill): every
/// kill lands on fresh starts as well as on older instances mid-way.
const KEYS_PER_ROUND: u64 = 8;
const APPROVER: &str = "approver@kommun.example";
const LOG_MAILBOX: &str = "log@kommun.example";
const WORKFLOW: &str = "crash-approval";

const DEFINITION: &str = r#"id: crash-approval
title: Crash test approval
input:
  n: {type: integer}
steps:
  - id: pause
    wait: 1s
  - id: tell
    call: mail.send
    with:
      to: ["log@kommun.example"]
      subject: "Started {{ input.n }}"
      body: "Instance {{ instance.id }} waits for an approval."
    retry: {attempts: 20, backoff: 1s}
  - id: approve
    approval:
      title: "Approve request {{ input.n }}"
      assignees: ["approver@kommun.example"]
output:
  decision: "{{ steps.approve.output.decision }}"
"#;

/// What the clients saw.
#[derive(Default)]
struct Seen {
    /// Key → the instance id it was acknowledged with.
    acked: BTreeMap<String, String>,
    /// Answers that were neither 200 nor 201 (and not 503).
    unexpected: Vec<String>,
}

#[test]
fn kill_dash_nine_under_http_load_loses_no_start_and_no_approval_mail() {
    let began = Instant::now();
    let seed = std::env::var("VAKT_SERVE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_u64);
    let mut rng = Lcg(seed);
    let smtp = Smtp::start();
    let mut d = DaemonBuilder::new("serve-crash")
        .mail_through(&smtp)
        .workflow("crash-approval.yaml", DEFINITION)
        .prepare();
    let ops = d.token("ops@kommun.example", "operator");
    let approver = d.token(APPROVER, "approver");
    d.start();

    let seen = Arc::new(Mutex::new(Seen::default()));
    let no_new_keys = Arc::new(AtomicBool::new(false));
    let allowed = Arc::new(AtomicU64::new(KEYS_PER_ROUND));
    let transport_errors = Arc::new(AtomicU64::new(0));
    let replays = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let base = d.base_handle();
            let ops = ops.clone();
            let seen = seen.clone();
            let no_new_keys = no_new_keys.clone();
            let allowed = allowed.clone();
            let transport_errors = transport_errors.clone();
            let replays = replays.clone();
            std::thread::spawn(move || {
                for k in 1..=KEYS_PER_ROUND * (KILLS + 1) {
                    while k > allowed.load(Ordering::SeqCst) && !no_new_keys.load(Ordering::SeqCst)
                    {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    if no_new_keys.load(Ordering::SeqCst) {
                        break;
                    }
                    // Spread over the round, so kills land on starts too.
                    std::thread::sleep(Duration::from_millis(80));
                    let key = format!("client{c}-{k}");
                    let started = Instant::now();
                    loop {
                        assert!(
                            started.elapsed() < Duration::from_secs(60),
                            "start {key} got no answer for a minute"
                        );
                        let url = format!(
                            "{}/api/v1/workflows/{WORKFLOW}/instances",
                            base.read().unwrap()
                        );
                        let r = http::post(url)
                            .bearer(&ops)
                            .header("idempotency-key", &key)
                            .json(&json!({"n": c * 1000 + k}))
                            .try_send();
                        match r {
                            Ok(r) if r.status == 201 || r.status == 200 => {
                                if r.status == 200 {
                                    replays.fetch_add(1, Ordering::Relaxed);
                                }
                                let id = r.json()["id"].as_str().unwrap().to_owned();
                                let mut s = seen.lock().unwrap();
                                if let Some(prev) = s.acked.get(&key).cloned()
                                    && prev != id
                                {
                                    s.unexpected.push(format!(
                                        "{key} acknowledged as {prev} and then as {id}"
                                    ));
                                }
                                s.acked.insert(key, id);
                                break;
                            }
                            Ok(r) if r.status == 503 => {}
                            Ok(r) => {
                                seen.lock()
                                    .unwrap()
                                    .unexpected
                                    .push(format!("{key}: {r:?}"));
                                break;
                            }
                            Err(_) => {
                                transport_errors.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                }
            })
        })
        .collect();

    let mut acked_at_kill = Vec::new();
    for round in 1..=KILLS {
        std::thread::sleep(Duration::from_millis(100 + rng.below(1200)));
        d.kill9();
        acked_at_kill.push(seen.lock().unwrap().acked.len());
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        d.restart();
        allowed.store(KEYS_PER_ROUND * (round + 1), Ordering::SeqCst);
    }
    // The last round's starts are made; then no new keys (started ones are
    // still sent until they are answered).
    poll("the last round's starts", Duration::from_secs(60), || {
        let n = seen.lock().unwrap().acked.len() as u64;
        if n >= CLIENTS * KEYS_PER_ROUND * (KILLS + 1) {
            Ok(())
        } else {
            Err(format!("{n} acknowledged"))
        }
    });
    no_new_keys.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("a client thread panicked");
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        seen.unexpected.is_empty(),
        "unexpected answers: {:#?}",
        seen.unexpected
    );
    let acked = seen.acked;
    let n = acked.len();
    assert!(n > 0, "nothing was acknowledged");
    let ids: BTreeSet<&String> = acked.values().collect();
    assert_eq!(ids.len(), n, "two keys gave the same instance");

    // ---- Every acknowledged start exists; no other instance does.
    for (key, id) in &acked {
        let r = d
            .get(&format!("/api/v1/instances/{id}"))
            .bearer(&ops)
            .send();
        assert_eq!(r.status, 200, "start {key} was acknowledged as {id}: {r:?}");
    }
    let listed = d
        .get(&format!(
            "/api/v1/instances?workflow={WORKFLOW}&limit=10000"
        ))
        .bearer(&ops)
        .send()
        .expect(200)
        .json();
    let listed: BTreeSet<String> = listed["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let extra: Vec<_> = listed.iter().filter(|i| !ids.contains(i)).collect();
    assert!(
        extra.is_empty(),
        "instances no start was acknowledged for: {extra:?}"
    );

    // ---- Every instance reaches its task.
    let tasks: BTreeMap<String, String> =
        poll(format!("{n} open tasks"), Duration::from_secs(60), || {
            let v = d
                .get("/api/v1/tasks?limit=10000")
                .bearer(&approver)
                .send()
                .expect(200)
                .json();
            let tasks: BTreeMap<String, String> = v["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    (
                        t["instance"].as_str().unwrap().to_owned(),
                        t["id"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            if tasks.len() == n {
                Ok(tasks)
            } else {
                Err(format!("{} of {n}", tasks.len()))
            }
        });

    // ---- No approval mail is lost; duplicates are counted.
    let by_task = |mails: &[vakt_tests::support::Mail]| {
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for m in mails {
            let links = m.links();
            assert_eq!(links.len(), 2, "approve and reject: {}", m.text);
            let c = links[0].claim();
            assert_eq!(c.assignee, APPROVER);
            *count
                .entry(format!("{}:{}", c.instance, c.task))
                .or_default() += 1;
        }
        count
    };
    let approval_mails = poll(
        format!("an approval mail for each of {n} tasks"),
        Duration::from_secs(60),
        || {
            let mails: Vec<_> = smtp
                .mails()
                .into_iter()
                .filter(|m| m.is_for(APPROVER))
                .collect();
            let count = by_task(&mails);
            let missing: Vec<&String> =
                tasks.values().filter(|t| !count.contains_key(*t)).collect();
            if missing.is_empty() {
                Ok(count)
            } else {
                Err(format!(
                    "{} tasks without a mail, e.g. {:?}",
                    missing.len(),
                    &missing[..missing.len().min(5)]
                ))
            }
        },
    );
    let stray: Vec<_> = approval_mails
        .keys()
        .filter(|t| !tasks.values().any(|x| x == *t))
        .collect();
    assert!(
        stray.is_empty(),
        "approval mail for unknown tasks: {stray:?}"
    );
    let approval_duplicates: usize = approval_mails.values().map(|c| c - 1).sum();

    // The workflow's own mail step: at least once per instance.
    let step_mails = poll(
        format!("a step mail for each of {n} instances"),
        Duration::from_secs(30),
        || {
            let mut per: BTreeMap<String, usize> = BTreeMap::new();
            for m in smtp.mails().into_iter().filter(|m| m.is_for(LOG_MAILBOX)) {
                let id = m
                    .text
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                *per.entry(id).or_default() += 1;
            }
            let missing = ids.iter().filter(|i| !per.contains_key(i.as_str())).count();
            if missing == 0 {
                Ok(per)
            } else {
                Err(format!("{missing} instances without their step mail"))
            }
        },
    );
    let step_duplicates: usize = step_mails.values().map(|c| c - 1).sum();
    // A mail sent again carries the Message-ID of the first (it is derived
    // from the call's idempotency key), so a mail system can drop the copy.
    let mut message_ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in smtp.mails() {
        let what = if m.is_for(APPROVER) {
            let c = m.links()[0].claim();
            format!("approval mail of {}:{}", c.instance, c.task)
        } else {
            let id = m.text.split_whitespace().nth(1).unwrap_or_default();
            format!("step mail of {id}")
        };
        assert!(!m.message_id.is_empty(), "{what} has no Message-ID");
        message_ids.entry(what).or_default().insert(m.message_id);
    }
    let differing: Vec<_> = message_ids
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .collect();
    assert!(
        differing.is_empty(),
        "copies of one mail with different Message-IDs: {differing:#?}"
    );

    // ---- Every task decided through the API; every instance completes.
    let task_list: Vec<String> = tasks.values().cloned().collect();
    std::thread::scope(|s| {
        for chunk in task_list.chunks(task_list.len().div_ceil(8)) {
            let d = &d;
            let approver = &approver;
            s.spawn(move || {
                for t in chunk {
                    d.post(&format!("/api/v1/tasks/{t}/decision"))
                        .bearer(approver)
                        .json(&json!({"decision": "approve"}))
                        .send()
                        .expect(200);
                }
            });
        }
    });
    poll(
        format!("{n} instances completed"),
        Duration::from_secs(60),
        || {
            let v = d
                .get(&format!(
                    "/api/v1/instances?workflow={WORKFLOW}&status=completed&limit=10000"
                ))
                .bearer(&ops)
                .send()
                .expect(200)
                .json();
            let done = v["instances"].as_array().unwrap().len();
            if done == n {
                Ok(())
            } else {
                Err(format!("{done} of {n}"))
            }
        },
    );
    for id in &ids {
        let history = d.history(&ops, id);
        assert_eq!(history.last().unwrap()["type"], "completed", "{id}");
        let started = history.iter().filter(|e| e["type"] == "started").count();
        assert_eq!(started, 1, "{id} started twice");
    }
    assert_eq!(d.sigterm().code(), Some(0));

    println!(
        "serve crash test (seed {seed:#x}): {n} starts acknowledged ({} answered as repeats of a key), \
         {KILLS} kills (acknowledged by then: {acked_at_kill:?}), {} requests without an answer; \
         approval mails: {} for {n} tasks, none lost, {approval_duplicates} duplicates; \
         step mails: {} for {n} instances, {step_duplicates} duplicates; {:.1} s",
        replays.load(Ordering::Relaxed),
        transport_errors.load(Ordering::Relaxed),
        approval_mails.values().sum::<usize>(),
        step_mails.values().sum::<usize>(),
        began.elapsed().as_secs_f64()
    );
}
