//! Running one scenario on virtual time with [`Sim`]: start the instance,
//! answer connector calls from the script, deliver the events at their
//! times (timers due by then fire first), run on until nothing is left to
//! happen, and check the expectations.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};

use super::expect::{self, Failure, View, matches};
use super::format;
use super::load::{EventKind, Rule, Scenario};
use super::report::timeline;
use crate::engine::model::{CallOutcome, Event, Record, Rejection, Ts};
use crate::engine::sim::Sim;
use crate::workflow::plan::Plan;

/// How far a run goes on after the last event when `run_for` is not given.
const HORIZON_MS: i64 = 366 * 86_400_000;

/// What a scenario run found.
#[derive(Debug)]
pub struct Outcome {
    pub failures: Vec<Failure>,
    /// What happened, one line per notable record, for failure reports.
    pub timeline: Vec<String>,
    /// Virtual milliseconds from the start to the end of the run.
    pub virtual_ms: i64,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Why an event could not be delivered.
enum Problem {
    /// The engine refused it (a rejection).
    Refused(String),
    /// The scenario does not fit the run (no such open task, for one).
    Misfit(String),
}

/// Runs one scenario of a checked file.
pub fn run(sc: &Scenario, workflow: &str, plans: &HashMap<String, Arc<Plan>>) -> Outcome {
    let mut sim = Sim::new(plans.values().cloned(), sc.start);
    sim.connector(script(sc.connectors.clone()));
    let mut failures = Vec::new();
    let root = match sim.start(workflow, sc.input.clone(), &sc.started_by) {
        Ok(id) => id,
        Err(problems) => {
            let msg = format!("the instance could not start: {}", problems.join("; "));
            return Outcome { failures: vec![Failure::new(sc.loc, msg)], timeline: Vec::new(), virtual_ms: 0 };
        }
    };
    let mut stopped = false;
    for ev in &sc.events {
        sim.advance_to(ev.at);
        let at = offset(ev.at - sc.start);
        let result = match &ev.kind {
            EventKind::Expect(x) => {
                let view = View { sim: &sim, root: &root, start: sc.start };
                for mut f in expect::check(&view, x) {
                    f.message = format!("at {at}: {}", f.message);
                    failures.push(f);
                }
                continue;
            }
            EventKind::Decide(d) => decide(&mut sim, &root, d, &sc.roles),
            EventKind::Delegate(d) => delegate(&mut sim, &root, d, &sc.roles),
            EventKind::Signal(s) => sim
                .event(&root, Event::Signal { name: s.name.value.clone(), data: s.data.clone().unwrap_or(json!({})) })
                .map_err(|r| refused(&sim, &root, r)),
            EventKind::Cancel(c) => {
                let by = c.by.clone().unwrap_or_else(|| sc.started_by.clone());
                let reason = c.reason.clone().unwrap_or_else(|| "cancelled by the scenario".to_owned());
                sim.event(&root, Event::Cancel { by, reason }).map_err(|r| refused(&sim, &root, r))
            }
        };
        let what = describe(&ev.kind);
        match (result, &ev.refused) {
            (Ok(()), None) => {}
            (Ok(()), Some(text)) => failures.push(Failure::new(ev.loc, format!("at {at}: {what}: expected it to be refused (`{text}`), but it was accepted"))),
            (Err(Problem::Refused(msg)), Some(text)) if msg.contains(text.as_str()) => {}
            (Err(Problem::Refused(msg)), Some(text)) => {
                failures.push(Failure::new(ev.loc, format!("at {at}: {what}: refused, but not for the reason expected: expected `{text}`, got `{msg}`")));
            }
            (Err(Problem::Refused(msg) | Problem::Misfit(msg)), _) => {
                failures.push(Failure::new(ev.loc, format!("at {at}: {what}: {msg}; the scenario stopped here")));
                stopped = true;
                break;
            }
        }
    }
    if !stopped {
        match sc.run_for {
            Some(d) => sim.advance_to(sc.start + d),
            None => {
                let limit = sim.now + HORIZON_MS;
                run_until_idle(&mut sim, limit);
            }
        }
        if let Some(x) = &sc.expect {
            let view = View { sim: &sim, root: &root, start: sc.start };
            failures.extend(expect::check(&view, x));
        }
    }
    let end = sim.histories[&root]
        .iter()
        .find(|(r, _)| matches!(r, Record::Completed { .. } | Record::Failed { .. } | Record::Cancelled { .. }))
        .map_or(sim.now, |(_, at)| *at);
    Outcome { failures, timeline: timeline(&sim, &root, sc.start), virtual_ms: end - sc.start }
}

/// Fires the timers of unfinished instances in order until none is left
/// before `limit` (timers of finished instances are left alone).
fn run_until_idle(sim: &mut Sim, limit: Ts) {
    loop {
        let next = sim.instances.values().filter(|i| !i.status.is_final()).flat_map(|i| i.timers.values().map(|t| t.due)).min();
        match next {
            Some(due) if due <= limit => sim.advance_to(due.max(sim.now)),
            _ => break,
        }
    }
}

/// `+1d2h30m` for an offset from the start.
pub fn offset(ms: Ts) -> String {
    let d = crate::workflow::duration::Duration::from_secs((ms.max(0) / 1000) as u64);
    let frac = ms.rem_euclid(1000);
    if frac != 0 && ms < 60_000 { format!("+{}.{frac:03}s", ms / 1000) } else { format!("+{d}") }
}

fn describe(kind: &EventKind) -> String {
    match kind {
        EventKind::Decide(d) => format!("decide `{}` on step `{}`", d.option.value, d.step.value),
        EventKind::Delegate(d) => format!("delegate step `{}` to {}", d.step.value, d.to.value),
        EventKind::Signal(s) => format!("signal `{}`", s.name.value),
        EventKind::Cancel(_) => "cancel".to_owned(),
        EventKind::Expect(_) => "expect".to_owned(),
    }
}

/// Answers connector calls from the scenario's script; unscripted calls and
/// calls no answer's `when` matches get `{}`.
fn script(scripts: BTreeMap<String, Vec<Rule>>) -> impl FnMut(&crate::engine::sim::CallSeen) -> CallOutcome + 'static {
    let mut failed: HashMap<(String, usize), u32> = HashMap::new();
    move |call| {
        let key = format!("{}.{}", call.role, call.action);
        let Some(rules) = scripts.get(&key) else { return CallOutcome::Ok(json!({})) };
        for (i, r) in rules.iter().enumerate() {
            if r.when.as_ref().is_some_and(|w| !matches(w, &call.args)) {
                continue;
            }
            if let Some(f) = &r.fail {
                let n = failed.entry((key.clone(), i)).or_default();
                if f.times.is_none_or(|t| *n < t) {
                    *n += 1;
                    return CallOutcome::Err { message: f.message.clone(), retryable: f.retryable, retry_after: f.retry_after };
                }
            }
            return CallOutcome::Ok(r.output.clone());
        }
        CallOutcome::Ok(json!({}))
    }
}

/// The open tasks of a step, in every instance of the run: (instance, task, title, assignees).
fn open_tasks(sim: &Sim, step: &str, title: Option<&str>) -> Vec<(String, u32, String, Vec<String>)> {
    let mut out = Vec::new();
    for (iid, inst) in &sim.instances {
        let Some(plan) = sim.plans.get(&inst.workflow) else { continue };
        for (tid, t) in &inst.tasks {
            if t.open && plan.node(t.node).step == step && title.is_none_or(|x| t.title.contains(x)) {
                out.push((iid.clone(), *tid, t.title.clone(), t.assignees.clone()));
            }
        }
    }
    out
}

/// Who decides, with the roles they hold in the scenario.
fn decider(by: Option<&str>, assignees: &[String], roles: &BTreeMap<String, Vec<String>>, step: &str) -> Result<(String, Vec<String>), Problem> {
    let by = match by {
        Some(b) => b.trim().to_lowercase(),
        None => match assignees.first() {
            Some(a) => match a.strip_prefix("role:") {
                Some(r) => roles.get(r).and_then(|h| h.first()).cloned().ok_or_else(|| {
                    Problem::Misfit(format!("the task of step `{step}` is assigned to `{a}`, and the scenario does not say who holds that role: add `by:`, or list the role's holders under `roles:` (such as `roles: {{{r}: [anna@kommun.se]}}`)"))
                })?,
                None => a.clone(),
            },
            None => return Err(Problem::Misfit(format!("the task of step `{step}` has no assignees"))),
        },
    };
    let held = roles.iter().filter(|(_, h)| h.contains(&by)).map(|(r, _)| r.clone()).collect();
    Ok((by, held))
}

fn pick(sim: &Sim, root: &str, step: &str, title: Option<&str>, all: bool) -> Result<Vec<(String, u32, String, Vec<String>)>, Problem> {
    let tasks = open_tasks(sim, step, title);
    if tasks.is_empty() {
        return Err(Problem::Misfit(no_open_task(sim, root, step, title)));
    }
    if tasks.len() > 1 && !all {
        let titles: Vec<String> = tasks.iter().take(5).map(|t| format!("\"{}\"", t.2)).collect();
        return Err(Problem::Misfit(format!(
            "{} tasks of step `{step}` are open ({}{}): pick one with `title:` (text its title contains), or decide them all with `all: true`",
            tasks.len(),
            titles.join(", "),
            if tasks.len() > 5 { ", …" } else { "" }
        )));
    }
    Ok(tasks)
}

fn decide(sim: &mut Sim, root: &str, d: &format::Decide, roles: &BTreeMap<String, Vec<String>>) -> Result<(), Problem> {
    let tasks = pick(sim, root, &d.step.value, d.title.as_ref().map(|t| t.value.as_str()), d.all)?;
    for (iid, task, _, assignees) in tasks {
        let (by, held) = decider(d.by.as_ref().map(|b| b.value.as_str()), &assignees, roles, &d.step.value)?;
        let event = Event::Decide { task, by: by.clone(), roles: held.clone(), option: d.option.value.clone(), comment: d.comment.clone() };
        sim.event(&iid, event).map_err(|r| rejection(sim, &iid, r, &by, &held, &assignees))?;
    }
    Ok(())
}

fn delegate(sim: &mut Sim, root: &str, d: &format::Delegate, roles: &BTreeMap<String, Vec<String>>) -> Result<(), Problem> {
    let tasks = pick(sim, root, &d.step.value, d.title.as_ref().map(|t| t.value.as_str()), false)?;
    let (iid, task, _, assignees) = tasks.into_iter().next().expect("one task");
    let (by, held) = decider(d.by.as_ref().map(|b| b.value.as_str()), &assignees, roles, &d.step.value)?;
    let note = d.note.clone().unwrap_or_default();
    let event = Event::Delegate { task, by: by.clone(), roles: held.clone(), to: d.to.value.clone(), note };
    sim.event(&iid, event).map_err(|r| rejection(sim, &iid, r, &by, &held, &assignees))
}

fn rejection(sim: &Sim, id: &str, r: Rejection, by: &str, held: &[String], assignees: &[String]) -> Problem {
    match r {
        Rejection::NotAssignee(_) => {
            let roles = if held.is_empty() { "no role".to_owned() } else { format!("roles {}", held.join(", ")) };
            Problem::Refused(format!("refused: {r} (its assignees: {}; {by} holds {roles} under `roles:`)", assignees.join(", ")))
        }
        Rejection::CommentRequired => Problem::Refused(format!("refused: {r}: add `comment:`")),
        other => refused(sim, id, other),
    }
}

fn refused(sim: &Sim, id: &str, r: Rejection) -> Problem {
    match r {
        Rejection::Finished => Problem::Misfit(format!("refused: the instance had already {}", sim.instance(id).status.as_str())),
        other => Problem::Refused(format!("refused: {other}")),
    }
}

/// Why no task of `step` is open: finished, closed earlier, or not reached.
fn no_open_task(sim: &Sim, root: &str, step: &str, title: Option<&str>) -> String {
    let inst = sim.instance(root);
    let which = match title {
        Some(t) => format!("of step `{step}` with `{t}` in its title"),
        None => format!("of step `{step}`"),
    };
    if inst.status.is_final() {
        return format!("no open task {which}: the instance had already {}", inst.status.as_str());
    }
    let plan = &sim.plans[&inst.workflow];
    let closed = sim.histories[root].iter().rev().find_map(|(r, at)| match r {
        Record::TaskClosed { task, outcome, by_default } if inst.tasks.get(task).is_some_and(|t| plan.node(t.node).step == step) => {
            Some((*at, outcome.clone(), *by_default))
        }
        _ => None,
    });
    if let Some((at, outcome, by_default)) = closed {
        let how = match (outcome, by_default) {
            (Some(o), true) => format!("with `{o}` by default at its deadline"),
            (Some(o), false) => format!("with `{o}`"),
            (None, _) => "without a decision at its deadline".to_owned(),
        };
        return format!("no open task {which}: it was closed {how} at {}", offset(at - inst.started_at));
    }
    format!("no open task {which}: the step has not been reached; {}", expect::waiting_on(sim, root))
}

/// The instance's output as shown in messages.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 { format!("{}…", s.chars().take(160).collect::<String>()) } else { s }
}
