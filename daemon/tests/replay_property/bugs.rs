//! Engine bugs found by the properties, each reduced to a minimal case.
//! Each asserts the correct behaviour: it fails until the bug is fixed. Then
//! remove the `#[ignore]` and the bug from `Mode::AVOID_KNOWN_BUGS`.

use std::collections::BTreeSet;

use serde_json::json;
use vakt::engine::Status;
use vakt::engine::model::{CallOutcome, Event, Record, TimerPurpose};
use vakt::engine::sim::Sim;
use vakt::workflow;

use crate::runner::load;
use crate::{H, T0};

fn sim(yaml: &str) -> Sim {
    Sim::new([load(yaml).unwrap()], T0)
}

fn decide(s: &mut Sim, id: &str, task: u32, by: &str) -> Result<(), vakt::engine::Rejection> {
    s.event(
        id,
        Event::Decide {
            task,
            by: by.into(),
            roles: vec![],
            option: "approve".into(),
            comment: None,
        },
    )
}

#[test]
fn bug_b1_a_failed_escalation_leaves_its_task_open() {
    let mut s = sim(r#"
id: w
input:
  backup: {type: string}
steps:
  - id: review
    approval:
      title: t
      assignees: [a@k.se]
      escalation: [{after: 1h, to: ["{{ input.backup }}"]}]
    on_error:
      - id: pause
        wait: 1d
  - id: done
    succeed: ok
"#);
    let id = s.start("w", json!({"backup": "nobody"}), "u@k.se").unwrap();
    // At 1h the escalation's assignee renders `nobody`: `review` fails and
    // its handler starts `pause`. Today task 1 stays open (`task::escalate`
    // calls `fail_step` without closing the task or cancelling its timers).
    s.advance(2 * H);
    let task = *s.instance(&id).tasks.keys().next().unwrap();
    assert_eq!(
        s.open_tasks(&id),
        Vec::<u32>::new(),
        "the task of a failed step is still open"
    );
    // Today this is accepted and completes `pause` (a wait step) with the
    // decision as its output; the instance then completes.
    assert!(
        decide(&mut s, &id, task, "a@k.se").is_err(),
        "a decision on the failed step's task was accepted"
    );
    assert_eq!(s.instance(&id).status, Status::Waiting);
}

#[test]
fn bug_b2_a_failed_start_records_a_thread_after_failed() {
    let mut s = sim(
        "id: w\ninput:\n  at: {type: datetime, required: false}\nclocks:\n  c: {anchor: input.at, duration: 1d}\nsteps:\n  - id: a\n    wait: 1h\n",
    );
    // `clock::start_all` emits `failed` (the anchor is null) and returns, but
    // `engine::start` goes on to emit `thread_started` for the root.
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    let i = s.instance(&id);
    assert_eq!(i.status, Status::Failed);
    let last = &s.histories[&id].last().unwrap().0;
    assert!(
        matches!(last, Record::Failed { .. }),
        "a record follows `failed`: {last:?}"
    );
    assert!(
        i.threads.is_empty(),
        "a failed instance has threads: {:?}",
        i.threads
    );
}

#[test]
fn bug_b3_the_idempotency_key_changes_between_attempts() {
    let mut s = sim(r#"
id: w
input:
  users: {type: list}
steps:
  - id: each
    foreach: input.users
    concurrency: 2
    steps:
      - id: disable
        call: identity.disable_user
        with: {user: "{{ item }}"}
        retry: {attempts: 2, backoff: 1m}
"#);
    let mut n = 0;
    s.connector(move |_| {
        n += 1;
        if n == 1 {
            CallOutcome::Err {
                message: "503".into(),
                retryable: true,
                retry_after: None,
            }
        } else {
            CallOutcome::Ok(json!({}))
        }
    });
    s.start("w", json!({"users": ["x", "y"]}), "u@k.se")
        .unwrap();
    s.advance(H);
    let seen: Vec<(String, u32, String)> = s
        .calls
        .iter()
        .map(|c| {
            (
                c.args["user"].to_string(),
                c.attempt,
                c.idempotency_key.clone(),
            )
        })
        .collect();
    // The key ends in the step's visit count, which is counted per step for
    // the whole instance: iteration 1 entering `disable` between the two
    // attempts of iteration 0 bumps it, so the retry gets `i1/disable/0/2`.
    let first = &seen.iter().find(|c| c.0 == "\"x\"" && c.1 == 1).unwrap().2;
    let retry = &seen.iter().find(|c| c.0 == "\"x\"" && c.1 == 2).unwrap().2;
    assert_eq!(retry, first, "one call, two keys: {seen:?}");
}

#[test]
fn bug_b4_delegating_to_an_assignee_lists_them_twice() {
    let mut s = sim(
        "id: w\nsteps:\n  - id: a\n    approval: {title: t, assignees: [a@k.se, b@k.se, c@k.se], quorum: all}\n",
    );
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    let task = s.open_tasks(&id)[0];
    let handover = Event::Delegate {
        task,
        by: "a@k.se".into(),
        roles: vec![],
        to: "c@k.se".into(),
        note: "away".into(),
    };
    s.event(&id, handover).unwrap();
    // `TaskDelegated` replaces a with c, then `Vec::dedup` removes only
    // adjacent duplicates: [c, b, c].
    let assignees = s.instance(&id).tasks[&task].assignees.clone();
    let distinct: BTreeSet<&String> = assignees.iter().collect();
    assert_eq!(distinct.len(), assignees.len(), "{assignees:?}");
    // Everyone on the task approves, yet `all` wants three votes of two people.
    decide(&mut s, &id, task, "b@k.se").unwrap();
    decide(&mut s, &id, task, "c@k.se").unwrap();
    assert_eq!(
        s.instance(&id).status,
        Status::Completed,
        "the task can never be decided"
    );
}

#[test]
fn bug_b5_a_call_timeout_outlives_its_step() {
    let mut s = sim(r#"
id: w
input:
  items: {type: list}
steps:
  - id: lookup
    call: identity.get_manager
    with: {user: "u{{ 'x' if now <= instance.started_at else input.items[9] }}"}
    retry: {attempts: 3, backoff: 1m}
    timeout: 1h
    on_error:
      - id: pause
        wait: 1d
  - id: done
    succeed: ok
"#);
    s.connector(|_| CallOutcome::Err {
        message: "503".into(),
        retryable: true,
        retry_after: None,
    });
    // Attempt 1 renders; the retry, later, does not: `request_call`
    // fails the step without cancelling the `timeout` timer set at attempt 1.
    let id = s.start("w", json!({"items": []}), "u@k.se").unwrap();
    s.advance(2 * H);
    let i = s.instance(&id);
    // Today, at 1h the stale timeout fails `pause` ("no answer within 0s")
    // and with it the instance.
    assert_eq!(i.status, Status::Waiting, "{:?}", i.error);
    assert!(
        i.timers
            .values()
            .all(|t| !matches!(t.purpose, TimerPurpose::Timeout { .. })),
        "{:?}",
        i.timers
    );
}

#[test]
fn bug_b6_a_default_at_a_past_deadline_loops_without_pause() {
    let yaml = r#"
id: w
input:
  due: {type: datetime}
steps:
  - id: prepare
    set: {round: "{{ now }}"}
  - id: review
    approval:
      title: t
      assignees: [a@k.se]
      options: [approve, {id: send_back, goto: prepare}]
      deadline: input.due
      default: send_back
"#;
    // A fix in the validator (refusing this workflow) is a fix too.
    let Ok(plan) = workflow::load_source("t.yaml", yaml.to_owned()).result else {
        return;
    };
    let mut s = Sim::new([plan], T0);
    let id = s
        .start("w", json!({"due": "2025-12-31T00:00:00Z"}), "u@k.se")
        .unwrap();
    // The deadline has passed when the task opens, so its timer is due at
    // once; the default sends the flow back, which opens the task again with
    // the same deadline, and so on: `Sim::advance(0)` never returns and the
    // history grows by 9 records a round. Fire the due timers by hand.
    for _ in 0..20 {
        let due = s
            .instance(&id)
            .timers
            .iter()
            .find(|(_, t)| t.due <= s.now)
            .map(|(k, _)| *k);
        let Some(timer) = due else { return };
        s.event(&id, Event::TimerFired { timer }).unwrap();
    }
    panic!(
        "20 timers fired at one instant; {} records",
        s.histories[&id].len()
    );
}
