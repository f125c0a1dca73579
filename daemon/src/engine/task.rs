//! Human tasks: an approval step opens a task, people vote, a quorum closes
//! it, and timers remind, escalate and apply the default at the deadline.
//!
//! Quorum: `any` closes on the first vote; `all` needs every assignee entry to
//! vote alike; `N` needs N alike. When no option can reach the quorum any
//! more, the task closes with the option that has most votes, ties going to
//! the option listed last (by convention the most cautious: approve, send
//! back, reject).

use serde_json::{Value, json};

use super::exec::{cancel_timers, complete_step, set_timer, timeout_step};
use super::model::{Record, Rejection, StepError, TimerPurpose, Vote, rfc3339};
use super::state::{Instance, Task};
use super::{Cx, context};
use crate::workflow::plan::{
    Approval, Assignee, Deadline, DecisionOption, NodeId, NodeKind, Plan, Quorum,
};

fn approval<'p>(cx: &Cx<'p>, node: NodeId) -> Option<&'p Approval> {
    match &cx.plan.node(node).kind {
        NodeKind::Approval(a) => Some(a),
        _ => None,
    }
}

/// Resolves assignees: addresses, `role:` names, templates (which may give
/// several addresses separated by commas).
fn resolve(cx: &Cx, thread: u32, list: &[Assignee]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for a in list {
        match a {
            Assignee::Address(s) => out.push(s.clone()),
            Assignee::Role(r) => out.push(format!("role:{r}")),
            Assignee::Template(t) => {
                let text = context::render(cx, Some(thread), t)?;
                for part in text
                    .split([',', ';', '\n'])
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                {
                    let ok = part.starts_with("role:")
                        || (part.contains('@') && !part.contains(char::is_whitespace));
                    if !ok {
                        return Err(format!(
                            "assignee `{}` gave `{part}`, which is not an address or a `role:` name",
                            t.source()
                        ));
                    }
                    out.push(part.to_lowercase());
                }
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|a| seen.insert(a.clone()));
    Ok(out)
}

pub fn open(cx: &mut Cx, thread: u32, node: NodeId, a: &Approval) {
    let title = context::render(cx, Some(thread), &a.title);
    let description = a
        .description
        .as_ref()
        .map(|d| context::render(cx, Some(thread), d))
        .transpose();
    let assignees = resolve(cx, thread, &a.assignees);
    let due = match &a.deadline {
        None => Ok(None),
        Some(Deadline::After(d)) => Ok(Some(cx.now + d.as_millis() as i64)),
        Some(Deadline::At(e)) => context::eval(cx, Some(thread), e).and_then(|v| {
            super::exec::instant_of(&v)
                .map(Some)
                .ok_or_else(|| "the deadline is not an instant".to_owned())
        }),
    };
    let (title, description, assignees, due) = match (title, description, assignees, due) {
        (Ok(t), Ok(d), Ok(a), Ok(due)) => (t, d.unwrap_or_default(), a, due),
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
            return super::exec::fail_step(cx, thread, StepError::new("task", e));
        }
    };
    if assignees.is_empty() {
        return super::exec::fail_step(
            cx,
            thread,
            StepError::new(
                "task",
                "the task has no assignees (the assignee templates gave nothing)",
            ),
        );
    }
    let task = cx.st.peek_id();
    cx.emit(Record::TaskOpened {
        task,
        thread,
        node,
        title,
        description,
        assignees,
        due,
    });
    let now = cx.now;
    let r = &a.reminders;
    for after in &r.after {
        let due = now + after.as_millis() as i64;
        set_timer(
            cx,
            due,
            TimerPurpose::Reminder {
                task,
                periodic: false,
            },
        );
    }
    if let Some(every) = r.every
        && r.max > 0
    {
        let due = now + every.as_millis() as i64;
        set_timer(
            cx,
            due,
            TimerPurpose::Reminder {
                task,
                periodic: true,
            },
        );
    }
    if let Some(due) = due {
        for b in &r.before_deadline {
            let at = due - b.as_millis() as i64;
            if at > now {
                set_timer(
                    cx,
                    at,
                    TimerPurpose::Reminder {
                        task,
                        periodic: false,
                    },
                );
            }
        }
    }
    for (i, rung) in a.escalation.iter().enumerate() {
        set_timer(
            cx,
            now + rung.after.as_millis() as i64,
            TimerPurpose::Escalation {
                task,
                rung: i as u32,
            },
        );
    }
    // A deadline that has already passed when the task opens (a statutory
    // clock run out, a send-back after the date) neither applies the default
    // nor times out: the task stays open, overdue, for a person. Otherwise a
    // default that sends the flow back would reopen and re-decide the task
    // at the same instant forever.
    if let Some(due) = due
        && due > now
    {
        set_timer(cx, due, TimerPurpose::Deadline { task });
    }
}

/// Closes a task undecided and stops its timers.
fn abandon(cx: &mut Cx, task: u32) {
    shut(cx, task, None, false);
}

/// Closes a task with its outcome (or none) and stops its timers.
fn shut(cx: &mut Cx, task: u32, outcome: Option<String>, by_default: bool) {
    cx.emit(Record::TaskClosed {
        task,
        outcome,
        by_default,
    });
    cancel_timers(
        cx,
        |p| matches!(p, TimerPurpose::Reminder { task: x, .. } | TimerPurpose::Escalation { task: x, .. } | TimerPurpose::Deadline { task: x } if *x == task),
    );
}

/// The open task and its approval, or why an event about it is refused.
fn open_task<'p>(cx: &Cx<'p>, task: u32) -> Result<(Task, &'p Approval), Rejection> {
    let t = cx
        .st
        .tasks
        .get(&task)
        .filter(|t| t.open)
        .ok_or(Rejection::TaskNotOpen(task))?
        .clone();
    let a = approval(cx, t.node).ok_or(Rejection::TaskNotOpen(task))?;
    Ok((t, a))
}

/// Whether `by` (holding workflow `roles`) is an assignee of the task:
/// the address itself (any case) or a `role:` entry it holds.
pub fn is_assignee(assignees: &[String], by: &str, roles: &[String]) -> bool {
    assignees.iter().any(|a| {
        a.eq_ignore_ascii_case(by)
            || a.strip_prefix("role:")
                .is_some_and(|r| roles.iter().any(|x| x == r))
    })
}

/// The checks a decision must pass, the comment aside: the instance runs,
/// the task is open, `by` is an assignee and may approve, the option exists,
/// `by` has not voted. `decide` uses it; so do the link pages and the API,
/// to refuse before asking a person to confirm. Returns the approval and
/// the option.
pub fn check_decision<'p>(
    plan: &'p Plan,
    st: &Instance,
    task: u32,
    by: &str,
    roles: &[String],
    option: &str,
) -> Result<(&'p Approval, &'p DecisionOption), Rejection> {
    if st.status.is_final() {
        return Err(Rejection::Finished);
    }
    let t = st
        .tasks
        .get(&task)
        .filter(|t| t.open)
        .ok_or(Rejection::TaskNotOpen(task))?;
    let NodeKind::Approval(a) = &plan.node(t.node).kind else {
        return Err(Rejection::TaskNotOpen(task));
    };
    if !is_assignee(&t.assignees, by, roles) {
        return Err(Rejection::NotAssignee(by.to_owned()));
    }
    if a.no_self_approval && by.eq_ignore_ascii_case(&st.started_by) {
        return Err(Rejection::SelfApproval);
    }
    let Some(opt) = a.options.iter().find(|o| o.id == option) else {
        return Err(Rejection::UnknownOption {
            option: option.to_owned(),
            options: a
                .options
                .iter()
                .map(|o| o.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    if t.votes.iter().any(|v| v.by.eq_ignore_ascii_case(by)) {
        return Err(Rejection::AlreadyDecided(by.to_owned()));
    }
    Ok((a, opt))
}

pub fn decide(
    cx: &mut Cx,
    task: u32,
    by: &str,
    roles: &[String],
    option: &str,
    comment: Option<String>,
) -> Result<(), Rejection> {
    let (a, opt) = check_decision(cx.plan, cx.st, task, by, roles, option)?;
    let comment = comment.filter(|c| !c.trim().is_empty());
    if (a.require_comment || opt.require_comment) && comment.is_none() {
        return Err(Rejection::CommentRequired);
    }
    cx.emit(Record::TaskVoted {
        task,
        vote: Vote {
            by: by.to_lowercase(),
            option: option.to_owned(),
            comment,
            at: cx.now,
        },
    });
    if let Some(outcome) = tally(cx, task) {
        close(cx, task, outcome, false);
    }
    Ok(())
}

/// The outcome, once the votes settle it.
fn tally(cx: &Cx, task: u32) -> Option<String> {
    let t = cx.st.tasks.get(&task)?;
    let a = approval(cx, t.node)?;
    let entries = t.assignees.len() as u32;
    let needed = match a.quorum {
        Quorum::Any => 1,
        Quorum::All => entries.max(1),
        Quorum::Count(n) => n,
    };
    let count = |o: &str| t.votes.iter().filter(|v| v.option == o).count() as u32;
    if let Some(o) = a.options.iter().find(|o| count(&o.id) >= needed) {
        return Some(o.id.clone());
    }
    // A `role:` entry may be held by any number of people: while one is on
    // the task, more votes can always come.
    let remaining = if t.assignees.iter().any(|a| a.starts_with("role:")) {
        u32::MAX / 2
    } else {
        entries.saturating_sub(t.votes.len() as u32)
    };
    let best = a.options.iter().map(|o| count(&o.id)).max().unwrap_or(0);
    if best + remaining < needed {
        // No option can reach the quorum: most votes, ties to the last listed.
        let winner = a
            .options
            .iter()
            .max_by_key(|o| count(&o.id))
            .map(|o| o.id.clone());
        return winner;
    }
    None
}

fn close(cx: &mut Cx, task: u32, outcome: String, by_default: bool) {
    let Some(t) = cx.st.tasks.get(&task).cloned() else {
        return;
    };
    shut(cx, task, Some(outcome.clone()), by_default);
    let Some(a) = approval(cx, t.node) else {
        return;
    };
    let deciding: Vec<&Vote> = t.votes.iter().filter(|v| v.option == outcome).collect();
    let last = deciding.last();
    let output = json!({
        "decision": outcome,
        "by_default": by_default,
        "comment": last.and_then(|v| v.comment.clone()),
        "decided_by": if by_default { Value::String("vakt (default decision at the deadline)".into()) } else { json!(last.map(|v| v.by.clone())) },
        "decided_at": rfc3339(cx.now),
        "decisions": t.votes,
        "task": task,
    });
    let goto = a
        .options
        .iter()
        .find(|o| o.id == outcome)
        .and_then(|o| o.goto)
        .map(|j| j.to);
    complete_step(cx, t.thread, output, goto);
}

pub fn delegate(
    cx: &mut Cx,
    task: u32,
    by: &str,
    roles: &[String],
    to: &str,
    note: &str,
) -> Result<(), Rejection> {
    let (t, a) = open_task(cx, task)?;
    if !a.allow_delegation {
        return Err(Rejection::NoDelegation);
    }
    if !is_assignee(&t.assignees, by, roles) {
        return Err(Rejection::NotAssignee(by.to_owned()));
    }
    let to = to.trim().to_lowercase();
    if !to.contains('@') || to.contains(char::is_whitespace) {
        return Err(Rejection::BadAssignee(to));
    }
    let from = t
        .assignees
        .iter()
        .find(|a| a.eq_ignore_ascii_case(by))
        .cloned()
        .unwrap_or_else(|| by.to_lowercase());
    cx.emit(Record::TaskDelegated {
        task,
        from,
        to,
        note: note.to_owned(),
    });
    Ok(())
}

pub fn remind(cx: &mut Cx, task: u32, periodic: bool) {
    let Some(t) = cx.st.tasks.get(&task).filter(|t| t.open).cloned() else {
        return;
    };
    let Some(a) = approval(cx, t.node) else {
        return;
    };
    // One mail per moment: a reminder that falls due together with another
    // reminder or an escalation of the same task is recorded but not sent.
    let escalating_now = cx.st.timers.values().any(|x| {
        x.due == cx.now
            && matches!(x.purpose, TimerPurpose::Escalation { task: e, .. } if e == task)
    });
    let undecided: Vec<String> = if escalating_now || t.last_notice_at == Some(cx.now) {
        Vec::new()
    } else {
        t.assignees
            .iter()
            .filter(|x| !t.votes.iter().any(|v| v.by == **x))
            .cloned()
            .collect()
    };
    cx.emit(Record::TaskReminded {
        task,
        to: undecided,
        periodic,
    });
    // The periodic reminder re-arms itself until `max` of them, or the deadline.
    if periodic && let Some(every) = a.reminders.every {
        let next = cx.now + every.as_millis() as i64;
        let before_due = t.due.is_none_or(|d| next < d);
        if t.periodic_reminders + 1 < a.reminders.max && before_due {
            set_timer(
                cx,
                next,
                TimerPurpose::Reminder {
                    task,
                    periodic: true,
                },
            );
        }
    }
}

pub fn escalate(cx: &mut Cx, task: u32, rung: u32) {
    let Some(t) = cx.st.tasks.get(&task).filter(|t| t.open).cloned() else {
        return;
    };
    let Some(a) = approval(cx, t.node) else {
        return;
    };
    let Some(r) = a.escalation.get(rung as usize) else {
        return;
    };
    let added = match resolve(cx, t.thread, &r.to) {
        Ok(x) => x,
        Err(e) => {
            // The task cannot go on without its ladder: close it, then fail
            // the step (its handler, or the instance).
            abandon(cx, task);
            return super::exec::fail_step(
                cx,
                t.thread,
                StepError::new("task", format!("escalation: {e}")),
            );
        }
    };
    let note = r
        .note
        .as_ref()
        .and_then(|n| context::render(cx, Some(t.thread), n).ok());
    let mut assignees = if r.replace {
        Vec::new()
    } else {
        t.assignees.clone()
    };
    for x in &added {
        if !assignees.contains(x) {
            assignees.push(x.clone());
        }
    }
    cx.emit(Record::TaskEscalated {
        task,
        rung,
        assignees: assignees.clone(),
        note,
    });
    // Everyone on the task hears of the escalation: the new assignees that
    // it is theirs now, the old ones that it has gone up.
    cx.push_action(super::Action::Notify {
        task,
        to: assignees,
        reason: super::model::NotifyReason::Escalation,
    });
}

pub fn deadline(cx: &mut Cx, task: u32) {
    let Some(t) = cx.st.tasks.get(&task).filter(|t| t.open).cloned() else {
        return;
    };
    let Some(a) = approval(cx, t.node) else {
        return;
    };
    match a.default {
        Some(i) => close(cx, task, a.options[i].id.clone(), true),
        None => {
            abandon(cx, task);
            timeout_step(
                cx,
                t.thread,
                format!("task `{}` was not decided by its deadline", t.title),
            );
        }
    }
}
