//! Expectations on what a run did to the outside world and to people:
//! connector calls, notifications to assignees, tasks, and statutory clocks.
//! Counts default to "at least one"; a failure lists what did happen.

use super::expect::{Failure, View, matches, mentions, reason_word};
use super::format::Expect;
use super::run::{offset, short};
use crate::engine::model::Record;

/// At most this many actual items are listed in a failure.
const SHOWN: usize = 6;

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn wanted(count: Option<u32>, one: &str, many: &str) -> String {
    match count {
        Some(n) => plural(n as usize, one, many),
        None => format!("at least one {one}"),
    }
}

fn listed(items: Vec<String>) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    let more = items.len().saturating_sub(SHOWN);
    let mut s = items.into_iter().take(SHOWN).collect::<Vec<_>>().join("; ");
    if more > 0 {
        s.push_str(&format!("; and {more} more"));
    }
    s
}

fn count_ok(count: Option<u32>, got: usize) -> bool {
    match count {
        Some(n) => got == n as usize,
        None => got > 0,
    }
}

pub fn calls(v: &View, x: &Expect, f: &mut Vec<Failure>) {
    for c in &x.calls {
        let c = &c.value;
        let key = &c.call.value;
        let of_action: Vec<_> = v
            .sim
            .calls
            .iter()
            .filter(|s| format!("{}.{}", s.role, s.action) == *key)
            .collect();
        let selected = of_action
            .iter()
            .filter(|s| c.with.as_ref().is_none_or(|w| matches(&w.value, &s.args)))
            .filter(|s| c.text.as_ref().is_none_or(|t| mentions(&s.args, &t.value)))
            .count();
        let count = c.count.as_ref().map(|n| n.value);
        if count_ok(count, selected) {
            continue;
        }
        let mut which = String::new();
        if let Some(w) = &c.with {
            which.push_str(&format!(" with {}", short(&w.value)));
        }
        if let Some(t) = &c.text {
            which.push_str(&format!(" mentioning `{}`", t.value));
        }
        let seen = of_action
            .iter()
            .map(|s| {
                format!(
                    "{} attempt {} {}",
                    offset(s.at - v.start),
                    s.attempt,
                    short(&s.args)
                )
            })
            .collect();
        let loc = c.count.as_ref().map(|n| n.loc).unwrap_or(c.call.loc);
        f.push(Failure::new(
            loc,
            format!("expect.calls: expected {} of `{key}`{which}, got {selected}; the calls of `{key}`: {}", wanted(count, "call", "calls"), listed(seen)),
        ));
    }
}

pub fn notifications(v: &View, x: &Expect, f: &mut Vec<Failure>) {
    for n in &x.notifications {
        let n = &n.value;
        let step = n.step.as_ref().map(|s| s.value.as_str());
        let of_step: Vec<_> = v
            .sim
            .notices
            .iter()
            .filter(|m| step.is_none_or(|s| v.step_of_task(&m.instance, m.task) == Some(s)))
            .collect();
        let selected = of_step
            .iter()
            .filter(|m| {
                n.reason
                    .as_ref()
                    .is_none_or(|r| reason_word(m.reason) == r.value)
            })
            .filter(|m| {
                n.to.as_ref()
                    .is_none_or(|t| m.to.iter().any(|a| a.eq_ignore_ascii_case(t.value.trim())))
            })
            .count();
        let count = n.count.as_ref().map(|c| c.value);
        if count_ok(count, selected) {
            continue;
        }
        let mut which = String::new();
        if let Some(r) = &n.reason {
            which.push_str(&format!(" `{}`", r.value));
        }
        let mut noun = "notification".to_owned();
        if let Some(s) = step {
            noun = format!("notification of step `{s}`");
        }
        if let Some(t) = &n.to {
            which = format!("{which} {noun} to {}", t.value);
        } else {
            which = format!("{which} {noun}");
        }
        // Of the reason asked for, when there are any: the others are noise.
        let same_reason: Vec<_> = of_step
            .iter()
            .filter(|m| {
                n.reason
                    .as_ref()
                    .is_some_and(|r| reason_word(m.reason) == r.value)
            })
            .collect();
        let shown = if same_reason.is_empty() {
            of_step.iter().collect()
        } else {
            same_reason
        };
        let seen = shown
            .iter()
            .map(|m| {
                let s = v.step_of_task(&m.instance, m.task).unwrap_or("?");
                format!(
                    "{} {} `{s}` to {}",
                    offset(m.at - v.start),
                    reason_word(m.reason),
                    m.to.join(", ")
                )
            })
            .collect();
        let loc = n
            .count
            .as_ref()
            .map(|c| c.loc)
            .or(n.to.as_ref().map(|t| t.loc))
            .or(n.reason.as_ref().map(|r| r.loc))
            .or(n.step.as_ref().map(|s| s.loc))
            .unwrap_or_default();
        let exp = match count {
            Some(c) => format!("{c} ×{which}"),
            None => format!("at least one{which}"),
        };
        f.push(Failure::new(
            loc,
            format!(
                "expect.notifications: expected {exp}, got {selected}; sent: {}",
                listed(seen)
            ),
        ));
    }
}

pub fn tasks(v: &View, x: &Expect, f: &mut Vec<Failure>) {
    let inst = v.inst();
    for t in &x.tasks {
        let t = &t.value;
        let step = &t.step.value;
        let of_step: Vec<(u32, &crate::engine::state::Task)> = inst
            .tasks
            .iter()
            .filter(|(id, k)| {
                v.step_of_task(v.root, **id) == Some(step.as_str())
                    && t.title.as_ref().is_none_or(|x| k.title.contains(&x.value))
            })
            .map(|(id, k)| (*id, k))
            .collect();
        let which = match &t.title {
            Some(x) => format!("step `{step}` with `{}` in its title", x.value),
            None => format!("step `{step}`"),
        };
        if let Some(c) = &t.count
            && of_step.len() != c.value as usize
        {
            f.push(Failure::new(
                c.loc,
                format!(
                    "expect.tasks: expected {} of {which}, got {}",
                    plural(c.value as usize, "task", "tasks"),
                    of_step.len()
                ),
            ));
        }
        let Some((id, task)) = of_step.last() else {
            if t.count.is_none() {
                f.push(Failure::new(
                    t.step.loc,
                    format!("expect.tasks: no task of {which} was opened"),
                ));
            }
            continue;
        };
        let closed = v.history().iter().find_map(|(r, _)| match r {
            Record::TaskClosed {
                task: k,
                by_default,
                ..
            } if k == id => Some(*by_default),
            _ => None,
        });
        let decided_by = task
            .outcome
            .as_ref()
            .and_then(|o| task.votes.iter().rev().find(|x| x.option == *o))
            .map(|x| x.by.clone());
        if let Some(o) = &t.open
            && o.value != task.open
        {
            let now = if task.open { "still open" } else { "closed" };
            f.push(Failure::new(
                o.loc,
                format!(
                    "expect.tasks: expected the task of {which} to be {}, it is {now}",
                    if o.value { "open" } else { "closed" }
                ),
            ));
        }
        if let Some(o) = &t.outcome
            && task.outcome.as_deref() != Some(o.value.as_str())
        {
            let got = match (&task.outcome, task.open) {
                (Some(x), _) => format!("`{x}`"),
                (None, true) => "nothing yet: it is still open".to_owned(),
                (None, false) => "no decision: it closed at its deadline".to_owned(),
            };
            f.push(Failure::new(
                o.loc,
                format!(
                    "expect.tasks: expected the task of {which} decided `{}`, got {got}",
                    o.value
                ),
            ));
        }
        if let Some(b) = &t.by_default
            && closed.unwrap_or(false) != b.value
        {
            let got = match closed {
                Some(true) => "it was decided by default at its deadline".to_owned(),
                Some(false) => format!(
                    "it was decided by {}",
                    decided_by.clone().unwrap_or_else(|| "nobody".into())
                ),
                None => "it is still open".to_owned(),
            };
            f.push(Failure::new(
                b.loc,
                format!(
                    "expect.tasks: expected the task of {which} {}decided by default; {got}",
                    if b.value { "" } else { "not " }
                ),
            ));
        }
        if let Some(d) = &t.decided_by
            && !decided_by
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(d.value.trim()))
        {
            let got = decided_by.clone().unwrap_or_else(|| {
                if closed == Some(true) {
                    "the default at its deadline".into()
                } else {
                    "nobody".into()
                }
            });
            f.push(Failure::new(
                d.loc,
                format!(
                    "expect.tasks: expected the task of {which} decided by {}, got {got}",
                    d.value
                ),
            ));
        }
        for a in t.assignees.iter().flat_map(|l| l.value.iter()) {
            if !task
                .assignees
                .iter()
                .any(|x| x.eq_ignore_ascii_case(a.value.trim()))
            {
                f.push(Failure::new(a.loc, format!("expect.tasks: `{}` is not an assignee of the task of {which}; its assignees: {}", a.value, task.assignees.join(", "))));
            }
        }
    }
}

pub fn clocks(v: &View, x: &Expect, f: &mut Vec<Failure>) {
    let inst = v.inst();
    for (name, c) in &x.clocks {
        let c = &c.value;
        let state = inst.clocks.get(name);
        if let Some(s) = &c.started
            && s.value != state.is_some()
        {
            let why = if state.is_some() {
                "it started"
            } else {
                "it did not start (its `when` was false)"
            };
            f.push(Failure::new(
                s.loc,
                format!("expect.clocks.{name}.started: expected {}, {why}", s.value),
            ));
        }
        let Some(st) = state else {
            for loc in [
                c.met.as_ref().map(|x| x.loc),
                c.breached.as_ref().map(|x| x.loc),
                c.warned.as_ref().map(|x| x.loc),
            ]
            .into_iter()
            .flatten()
            {
                f.push(Failure::new(
                    loc,
                    format!("expect.clocks.{name}: the clock did not start (its `when` was false)"),
                ));
            }
            continue;
        };
        let due = offset(st.due - v.start);
        if let Some(m) = &c.met
            && m.value != st.met_at.is_some()
        {
            let got = match st.met_at {
                Some(at) => format!("it was met at {}", offset(at - v.start)),
                None if st.breached => format!("it was breached at {due}"),
                None => format!("it is still running (due at {due})"),
            };
            f.push(Failure::new(
                m.loc,
                format!("expect.clocks.{name}.met: expected {}, {got}", m.value),
            ));
        }
        if let Some(b) = &c.breached
            && b.value != st.breached
        {
            let got = match st.met_at {
                Some(at) => format!("it was met at {} (due at {due})", offset(at - v.start)),
                None if st.breached => format!("it was breached at {due}"),
                None => format!("it is still running (due at {due})"),
            };
            f.push(Failure::new(
                b.loc,
                format!("expect.clocks.{name}.breached: expected {}, {got}", b.value),
            ));
        }
        if let Some(w) = &c.warned
            && w.value as usize != st.warned.len()
        {
            let before: Vec<String> = st
                .warned
                .iter()
                .map(|s| crate::workflow::duration::Duration::from_secs(*s).to_string())
                .collect();
            let list = if before.is_empty() {
                String::new()
            } else {
                format!(" ({} before the deadline)", before.join(", "))
            };
            f.push(Failure::new(
                w.loc,
                format!(
                    "expect.clocks.{name}.warned: expected {}, got {}{list}",
                    plural(w.value as usize, "warning", "warnings"),
                    st.warned.len()
                ),
            ));
        }
    }
}
