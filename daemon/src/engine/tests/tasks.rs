//! Human tasks on virtual time: who may decide, quorum, reminders,
//! escalation, defaults, delegation, send-back loops, deadlines.

use serde_json::json;

use super::{H, T0, check_replay, decide, sim};
use crate::engine::model::{Event, NotifyReason, Rejection};
use crate::engine::state::Status;

const APPROVAL: &str = r#"
id: w
steps:
  - id: ok
    approval:
      title: "Godkänn"
      assignees: [a@k.se, b@k.se, c@k.se]
      options: [approve, {id: reject, require_comment: true}]
      quorum: QUORUM
      no_self_approval: true
  - id: done
    succeed: "{{ steps.ok.output.decision }}"
"#;

#[test]
fn approval_checks_who_may_decide_and_how() {
    let mut s = sim(&APPROVAL.replace("QUORUM", "any"));
    let id = s.start("w", json!({}), "a@k.se").unwrap();
    assert_eq!(s.notices.len(), 1);
    assert_eq!(s.notices[0].to, vec!["a@k.se", "b@k.se", "c@k.se"]);
    assert_eq!(
        decide(&mut s, &id, "x@k.se", "approve"),
        Err(Rejection::NotAssignee("x@k.se".into()))
    );
    assert_eq!(
        decide(&mut s, &id, "a@k.se", "approve"),
        Err(Rejection::SelfApproval)
    );
    assert!(matches!(
        decide(&mut s, &id, "b@k.se", "maybe"),
        Err(Rejection::UnknownOption { .. })
    ));
    assert_eq!(
        decide(&mut s, &id, "b@k.se", "reject"),
        Err(Rejection::CommentRequired)
    );
    assert_eq!(
        s.instance(&id).seq,
        s.histories[&id].len() as u64,
        "rejections record nothing"
    );
    decide(&mut s, &id, "B@k.se", "approve").unwrap();
    let i = s.instance(&id);
    assert_eq!(i.status, Status::Completed);
    assert_eq!(i.output.as_ref().unwrap()["message"], "approve");
    check_replay(&s);
}

#[test]
fn quorum_two_of_three_and_all() {
    let mut s = sim(&APPROVAL.replace("QUORUM", "2"));
    let id = s.start("w", json!({}), "z@k.se").unwrap();
    decide(&mut s, &id, "a@k.se", "approve").unwrap();
    assert_eq!(s.instance(&id).status, Status::Waiting);
    assert_eq!(
        decide(&mut s, &id, "a@k.se", "approve"),
        Err(Rejection::AlreadyDecided("a@k.se".into()))
    );
    decide(&mut s, &id, "c@k.se", "approve").unwrap();
    assert_eq!(s.instance(&id).status, Status::Completed);

    let mut s = sim(&APPROVAL.replace("QUORUM", "all"));
    let id = s.start("w", json!({}), "z@k.se").unwrap();
    decide(&mut s, &id, "a@k.se", "approve").unwrap();
    let task = s.open_tasks(&id)[0];
    s.event(
        &id,
        Event::Decide {
            task,
            by: "b@k.se".into(),
            roles: vec![],
            option: "reject".into(),
            comment: Some("nej".into()),
        },
    )
    .unwrap();
    // `all` can no longer be reached: most votes, ties to the last listed.
    let i = s.instance(&id);
    assert_eq!(i.output.as_ref().unwrap()["message"], "reject");
    check_replay(&s);
}

#[test]
fn reminders_escalation_ladder_and_default_decision() {
    let mut s = sim(r#"
id: w
steps:
  - id: ack
    approval:
      title: "Kvittera"
      assignees: [officer@k.se]
      options: [acknowledge, decline]
      reminders: {every: 30m, max: 3}
      escalation:
        - {after: 1h, to: [deputy@k.se]}
        - {after: 2h, to: ["role:ciso"]}
      deadline: 4h
      default: decline
"#);
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    s.advance(5 * H);
    let i = s.instance(&id);
    assert_eq!(i.status, Status::Completed);
    let reasons: Vec<(i64, NotifyReason, Vec<String>)> = s
        .notices
        .iter()
        .map(|n| ((n.at - T0) / 60_000, n.reason, n.to.clone()))
        .collect();
    assert_eq!(reasons[0].1, NotifyReason::Opened);
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.1 == NotifyReason::Reminder)
            .count(),
        2,
        "the 60-minute reminder goes with the escalation: {reasons:?}"
    );
    let esc: Vec<_> = reasons
        .iter()
        .filter(|r| r.1 == NotifyReason::Escalation)
        .collect();
    assert_eq!(esc[0].0, 60);
    assert_eq!(esc[0].2, vec!["officer@k.se", "deputy@k.se"]);
    assert_eq!(esc[1].2, vec!["officer@k.se", "deputy@k.se", "role:ciso"]);
    let task = &i.tasks[&s.instance(&id).tasks.keys().next().copied().unwrap()];
    assert_eq!(task.outcome.as_deref(), Some("decline"));
    check_replay(&s);
}

#[test]
fn periodic_reminders_are_counted_apart_from_fixed_ones() {
    let mut s = sim(r#"
id: w
steps:
  - id: a
    approval:
      title: t
      assignees: [a@k.se]
      reminders: {every: 3d, max: 4, before_deadline: [1d]}
      deadline: 14d
"#);
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    s.advance(15 * 24 * H);
    let days: Vec<i64> = s
        .notices
        .iter()
        .filter(|n| n.reason == NotifyReason::Reminder)
        .map(|n| (n.at - T0) / (24 * H))
        .collect();
    assert_eq!(
        days,
        vec![3, 6, 9, 12, 13],
        "four periodic reminders and one a day before the deadline"
    );
    assert_eq!(
        s.instance(&id).status,
        Status::Failed,
        "no default: the deadline times the task out"
    );
}

#[test]
fn notices_falling_due_together_are_sent_once() {
    let mut s = sim(r#"
id: w
steps:
  - id: a
    approval:
      title: t
      assignees: [a@k.se]
      reminders: {every: 4d, before_deadline: [2d], max: 3}
      escalation: [{after: 8d, to: [b@k.se]}]
      deadline: 14d
"#);
    s.start("w", json!({}), "u@k.se").unwrap();
    s.advance(15 * 24 * H);
    let days: Vec<(i64, NotifyReason)> = s
        .notices
        .iter()
        .map(|n| ((n.at - T0) / (24 * H), n.reason))
        .collect();
    assert_eq!(
        days,
        vec![
            (0, NotifyReason::Opened),
            (4, NotifyReason::Reminder),
            (8, NotifyReason::Escalation),
            (12, NotifyReason::Reminder)
        ],
        "the day-8 reminder goes with the escalation, the day-12 ones are one mail"
    );
}

#[test]
fn a_numeric_quorum_over_a_role_waits_for_enough_members() {
    let mut s = sim(
        "id: w\nsteps:\n  - id: a\n    approval: {title: t, assignees: [\"role:board\"], quorum: 2}\n",
    );
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    let task = s.open_tasks(&id)[0];
    let vote = |by: &str| Event::Decide {
        task,
        by: by.into(),
        roles: vec!["board".into()],
        option: "approve".into(),
        comment: None,
    };
    s.event(&id, vote("a@k.se")).unwrap();
    assert_eq!(s.instance(&id).status, Status::Waiting, "one of two");
    s.event(&id, vote("b@k.se")).unwrap();
    assert_eq!(s.instance(&id).status, Status::Completed);
}

#[test]
fn a_role_member_may_decide() {
    let mut s =
        sim("id: w\nsteps:\n  - id: a\n    approval: {title: t, assignees: [\"role:dpo\"]}\n");
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    let task = s.open_tasks(&id)[0];
    assert!(
        s.event(
            &id,
            Event::Decide {
                task,
                by: "p@k.se".into(),
                roles: vec!["it".into()],
                option: "approve".into(),
                comment: None
            }
        )
        .is_err()
    );
    s.event(
        &id,
        Event::Decide {
            task,
            by: "p@k.se".into(),
            roles: vec!["dpo".into()],
            option: "approve".into(),
            comment: None,
        },
    )
    .unwrap();
    assert_eq!(s.instance(&id).status, Status::Completed);
}

#[test]
fn delegation_hands_the_task_over() {
    let mut s = sim("id: w\nsteps:\n  - id: a\n    approval: {title: t, assignees: [a@k.se]}\n");
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    let task = s.open_tasks(&id)[0];
    s.event(
        &id,
        Event::Delegate {
            task,
            by: "a@k.se".into(),
            roles: vec![],
            to: "b@k.se".into(),
            note: "semester".into(),
        },
    )
    .unwrap();
    assert!(decide(&mut s, &id, "a@k.se", "approve").is_err());
    decide(&mut s, &id, "b@k.se", "approve").unwrap();
    assert_eq!(s.instance(&id).status, Status::Completed);
    check_replay(&s);
}

#[test]
fn send_back_loops_to_an_earlier_step_with_a_new_key() {
    let mut s = sim(r#"
id: w
steps:
  - id: draft
    call: ticketing.create
    with: {subject: s, body: b}
  - id: review
    approval:
      title: t
      assignees: [r@k.se]
      options: [approve, {id: send_back, goto: draft}]
"#);
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    decide(&mut s, &id, "r@k.se", "send_back").unwrap();
    decide(&mut s, &id, "r@k.se", "approve").unwrap();
    assert_eq!(s.instance(&id).status, Status::Completed);
    assert_eq!(s.calls.len(), 2);
    assert_ne!(s.calls[0].idempotency_key, s.calls[1].idempotency_key);
    check_replay(&s);
}

#[test]
fn deadline_without_default_runs_on_timeout() {
    let mut s = sim(r#"
id: w
steps:
  - id: a
    approval: {title: t, assignees: [a@k.se], deadline: 2h}
    on_timeout: late
  - id: ok
    succeed: "in time"
  - id: late
    fail: "nobody decided"
"#);
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    s.advance(3 * H);
    let i = s.instance(&id);
    assert_eq!(i.status, Status::Failed);
    assert_eq!(i.error.as_ref().unwrap().message, "nobody decided");
}
