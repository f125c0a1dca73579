//! Calls, retries, handlers, waits, signals, branches, parallel, foreach,
//! sub-workflows, clocks, cancel and input checks on virtual time.

use serde_json::{Value, json};

use super::{H, T0, check_replay, plan, sim};
use crate::engine::model::{CallOutcome, Event, Rejection};
use crate::engine::sim::Sim;
use crate::engine::state::Status;

#[test]
fn calls_run_in_order_with_stable_idempotency_keys() {
    let mut s = sim(r#"
id: w
steps:
  - id: a
    call: ticketing.create
    with: {subject: "S", body: "B"}
  - id: b
    call: ticketing.comment
    with: {ticket: "{{ steps.a.output.id }}", body: "c"}
"#);
    s.connector(|c| CallOutcome::Ok(json!({"id": format!("T-{}", c.action)})));
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    let i = s.instance(&id);
    assert_eq!(i.status, Status::Completed);
    assert_eq!(s.calls.len(), 2);
    assert_eq!(s.calls[1].args["ticket"], "T-create");
    assert_eq!(s.calls[0].idempotency_key, "i1/a/-/1");
    check_replay(&s);
}

#[test]
fn retries_back_off_deterministically_then_succeed() {
    let yaml = r#"
id: w
steps:
  - id: a
    call: mail.send
    with: {to: "x@k.se", subject: "s", body: "b"}
    retry: {attempts: 4, backoff: 10s, max_backoff: 1m}
"#;
    let run = || {
        let mut s = sim(yaml);
        let mut n = 0;
        s.connector(move |_| {
            n += 1;
            if n < 3 {
                CallOutcome::Err {
                    message: "503".into(),
                    retryable: true,
                    retry_after: None,
                }
            } else {
                CallOutcome::Ok(json!({"message_id": "m"}))
            }
        });
        let id = s.start("w", json!({}), "u@k.se").unwrap();
        assert_eq!(
            s.instance(&id).status,
            Status::Waiting,
            "waits for the retry timer"
        );
        s.advance(10 * 60_000);
        assert_eq!(s.instance(&id).status, Status::Completed);
        check_replay(&s);
        s.calls
            .iter()
            .map(|c| (c.at, c.attempt, c.idempotency_key.clone()))
            .collect::<Vec<_>>()
    };
    let a = run();
    assert_eq!(a, run(), "the retry schedule is the same on every run");
    assert_eq!(a.len(), 3);
    assert!(
        a.iter().all(|c| c.2 == a[0].2),
        "one idempotency key for all attempts"
    );
    let d1 = a[1].0 - a[0].0;
    let d2 = a[2].0 - a[1].0;
    assert!((5_000..=10_000).contains(&d1), "first backoff {d1}");
    assert!((10_000..=20_000).contains(&d2), "second backoff {d2}");
}

#[test]
fn exhausted_retries_run_the_error_handler_and_go_on() {
    let mut s = sim(r#"
id: w
steps:
  - id: a
    call: ticketing.create
    with: {subject: "s", body: "b"}
    retry: {attempts: 2, backoff: 1s}
    on_error:
      - id: note
        set: {failure: "{{ error.message }}"}
  - id: b
    succeed: "done {{ vars.failure }}"
"#);
    s.connector(|_| CallOutcome::Err {
        message: "down".into(),
        retryable: true,
        retry_after: None,
    });
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    s.advance(H);
    let i = s.instance(&id);
    assert_eq!(i.status, Status::Completed, "{:?}", i.error);
    assert!(
        i.output.as_ref().unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("down (gave up after 2 attempts)")
    );
    check_replay(&s);
}

#[test]
fn a_non_retryable_error_fails_the_instance_naming_the_step() {
    let mut s =
        sim("id: w\nsteps:\n  - id: a\n    call: identity.list_users\n    retry: {attempts: 5}\n");
    s.connector(|_| CallOutcome::Err {
        message: "401 unauthorised".into(),
        retryable: false,
        retry_after: None,
    });
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    let i = s.instance(&id);
    assert_eq!(i.status, Status::Failed);
    assert_eq!(s.calls.len(), 1);
    assert!(i.error.as_ref().unwrap().message.contains("step `a`: 401"));
}

#[test]
fn output_is_rendered_when_the_flow_runs_off_its_end() {
    let mut s = sim("id: w
steps:
  - id: a
    set: {x: 1}
output:
  x: \"{{ steps.a.output.x }}\"
");
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    assert_eq!(s.instance(&id).output.as_ref().unwrap()["x"], 1);
}

#[test]
fn error_handlers_see_the_failed_step() {
    let mut s = sim("id: w
steps:
  - id: a
    call: identity.list_users
    on_error:
      - id: h
        succeed: \"{{ error.step }}: {{ error.kind }}\"
");
    s.connector(|_| CallOutcome::Err {
        message: "x".into(),
        retryable: false,
        retry_after: None,
    });
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    assert_eq!(
        s.instance(&id).output.as_ref().unwrap()["message"],
        "a: connector"
    );
}

#[test]
fn waits_for_a_duration_an_instant_and_a_signal() {
    let mut s = sim(r#"
id: w
input:
  at: {type: datetime}
steps:
  - id: pause
    wait: 2h
  - id: until
    wait: {until: input.at}
  - id: sig
    wait: {signal: dpa-notified}
    timeout: 72h
  - id: done
    succeed: "{{ steps.sig.output.ref }}"
"#);
    let id = s
        .start("w", json!({"at": "2026-01-01T05:00:00Z"}), "u@k.se")
        .unwrap();
    s.advance(H);
    assert_eq!(s.instance(&id).outputs[&0].get("pause"), None);
    s.advance(4 * H);
    assert_eq!(s.instance(&id).outputs[&0]["until"].status, "completed");
    s.event(
        &id,
        Event::Signal {
            name: "dpa-notified".into(),
            data: json!({"ref": "IMY-1"}),
        },
    )
    .unwrap();
    assert_eq!(s.instance(&id).output.as_ref().unwrap()["message"], "IMY-1");
    check_replay(&s);
}

#[test]
fn a_signal_sent_early_is_kept_and_a_missing_one_times_out() {
    let y = "id: w\nsteps:\n  - id: p\n    wait: 1h\n  - id: s\n    wait: {signal: go}\n    timeout: 1h\n";
    let mut s = sim(y);
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    s.event(
        &id,
        Event::Signal {
            name: "go".into(),
            data: json!(1),
        },
    )
    .unwrap();
    s.advance(H);
    assert_eq!(s.instance(&id).status, Status::Completed);
    let mut s = sim(y);
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    s.advance(3 * H);
    let i = s.instance(&id);
    assert_eq!(i.status, Status::Failed);
    assert_eq!(i.error.as_ref().unwrap().kind, "timeout");
}

#[test]
fn branches_follow_conditions() {
    let y = r#"
id: w
input:
  kind: {type: string}
steps:
  - id: pd
    if: input.kind == "personal_data"
    then:
      - id: imy
        set: {route: imy}
    else:
      - id: support
        set: {route: support}
  - id: sw
    switch: input.kind
    cases:
      personal_data:
        - id: c1
          set: {case: pd}
    default:
      - id: c2
        set: {case: other}
  - id: done
    succeed: "{{ vars.route }}/{{ vars.case }}"
"#;
    let mut s = sim(y);
    let a = s
        .start("w", json!({"kind": "personal_data"}), "u@k.se")
        .unwrap();
    let b = s.start("w", json!({"kind": "network"}), "u@k.se").unwrap();
    assert_eq!(s.instance(&a).output.as_ref().unwrap()["message"], "imy/pd");
    assert_eq!(
        s.instance(&b).output.as_ref().unwrap()["message"],
        "support/other"
    );
    check_replay(&s);
}

#[test]
fn parallel_branches_join() {
    let mut s = sim(r#"
id: w
steps:
  - id: both
    parallel:
      fast:
        - id: f
          set: {f: 1}
      slow:
        - id: s1
          wait: 2h
        - id: s2
          set: {s: 2}
  - id: done
    succeed: "{{ steps.both.output.slow.s }}"
"#);
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    assert_eq!(s.instance(&id).status, Status::Waiting);
    s.advance(2 * H);
    assert_eq!(s.instance(&id).output.as_ref().unwrap()["message"], "2");
    check_replay(&s);
}

#[test]
fn foreach_respects_its_concurrency_and_keeps_order() {
    let mut s = sim(r#"
id: w
input:
  users: {type: list}
steps:
  - id: each
    foreach: input.users
    as: user
    concurrency: 2
    steps:
      - id: w1
        wait: 1h
      - id: res
        set: {last: "{{ user }}"}
  - id: done
    succeed: "{{ steps.each.output | map(attribute='last') | join(',') }}"
"#);
    let id = s
        .start("w", json!({"users": ["a", "b", "c", "d", "e"]}), "u@k.se")
        .unwrap();
    let running = |s: &Sim| s.instance(&id).threads.len();
    assert_eq!(running(&s), 3, "the foreach thread and two iterations");
    s.advance(H);
    assert_eq!(running(&s), 3);
    s.advance(2 * H);
    assert_eq!(
        s.instance(&id).output.as_ref().unwrap()["message"],
        "a,b,c,d,e"
    );
    check_replay(&s);
}

#[test]
fn sub_workflows_run_to_completion() {
    let child = plan(
        "id: child\ninput:\n  n: {type: integer}\nsteps:\n  - id: w\n    wait: 1h\noutput:\n  twice: \"{{ input.n * 2 }}\"\n",
    );
    let parent = plan(
        "id: parent\nsteps:\n  - id: c\n    workflow: child\n    input: {n: 21}\n  - id: done\n    succeed: \"{{ steps.c.output.twice }}\"\n",
    );
    let mut s = Sim::new([child, parent], T0);
    let id = s.start("parent", json!({}), "u@k.se").unwrap();
    s.advance(2 * H);
    assert_eq!(s.instance(&id).output.as_ref().unwrap()["message"], "42");
    check_replay(&s);
}

#[test]
fn clocks_warn_breach_and_are_met() {
    let y = r#"
id: w
input:
  discovered_at: {type: datetime}
clocks:
  dpa:
    anchor: input.discovered_at
    duration: 72h
    warn_before: [24h]
    stopped_by: report
    on_warning:
      - id: warnmail
        call: mail.send
        with: {to: dpo@k.se, subject: "{{ clock.title }} due {{ clock.due }}", body: b}
    on_breach:
      - id: breachmail
        call: mail.send
        with: {to: ciso@k.se, subject: "breached", body: b}
steps:
  - id: work
    wait: WAIT
  - id: report
    set: {reported: true}
"#;
    // Discovered 10 hours before the start: the clock runs from discovery.
    let discovered = "2025-12-31T14:00:00Z";
    let mut s = sim(&y.replace("WAIT", "50h"));
    let id = s
        .start("w", json!({"discovered_at": discovered}), "u@k.se")
        .unwrap();
    assert_eq!(s.instance(&id).clocks["dpa"].due, T0 + 62 * H);
    s.advance(100 * H);
    assert_eq!(
        s.calls.len(),
        1,
        "warned at 38h, met at 50h, never breached"
    );
    assert_eq!(s.calls[0].args["subject"], "dpa due 2026-01-03T14:00:00Z");
    let mut s = sim(&y.replace("WAIT", "70h"));
    let id = s
        .start("w", json!({"discovered_at": discovered}), "u@k.se")
        .unwrap();
    s.advance(100 * H);
    let subjects: Vec<&Value> = s.calls.iter().map(|c| &c.args["subject"]).collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(s.instance(&id).clocks["dpa"].breached);
    assert_eq!(s.instance(&id).status, Status::Completed);
    check_replay(&s);
}

#[test]
fn cancel_closes_everything() {
    let mut s = sim(
        "id: w\nsteps:\n  - id: a\n    approval: {title: t, assignees: [a@k.se], deadline: 1d}\n",
    );
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    let task = s.open_tasks(&id)[0];
    s.event(
        &id,
        Event::Cancel {
            by: "admin@k.se".into(),
            reason: "test".into(),
        },
    )
    .unwrap();
    let i = s.instance(&id);
    assert_eq!(i.status, Status::Cancelled);
    assert!(i.timers.is_empty() && i.tasks.values().all(|t| !t.open));
    let late = Event::Decide {
        task,
        by: "a@k.se".into(),
        roles: vec![],
        option: "approve".into(),
        comment: None,
    };
    assert_eq!(s.event(&id, late), Err(Rejection::Finished));
}

#[test]
fn a_year_of_virtual_time_runs_in_milliseconds() {
    let mut s = sim("id: w\nsteps:\n  - id: a\n    wait: 365d\n  - id: b\n    wait: 1d\n");
    let started = std::time::Instant::now();
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    s.advance(400 * 24 * H);
    assert_eq!(s.instance(&id).status, Status::Completed);
    assert!(started.elapsed().as_secs() < 5);
}

#[test]
fn start_input_is_checked_with_every_problem() {
    let p = plan(
        "id: w\ninput:\n  a: {type: datetime}\n  b: {type: integer, default: 3}\n  c: {type: string, enum: [x, y]}\nsteps:\n  - id: s\n    wait: 1h\n",
    );
    let errs =
        crate::engine::input::check(&p, &json!({"a": "yesterday", "c": "z", "d": 1})).unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:?}");
    let ok =
        crate::engine::input::check(&p, &json!({"a": "2026-01-01T00:00:00Z", "c": "x"})).unwrap();
    assert_eq!(ok["b"], 3);
}
