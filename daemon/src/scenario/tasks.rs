//! Delivering decisions and delegations: finding the open task of a step
//! (by `title` when several are open, by who may decide it), choosing who
//! decides when `by` is not given, and saying precisely why an event could
//! not be delivered.

use std::collections::BTreeMap;

use super::expect;
use super::format;
use super::run::offset;
use crate::engine::model::{Event, Record, Rejection};
use crate::engine::sim::Sim;
use crate::workflow::span::Sp;

/// Why an event could not be delivered.
pub enum Problem {
    /// The engine refused it (a rejection).
    Refused(String),
    /// The scenario does not fit the run (no such open task, for one).
    Misfit(String),
}

/// An open task: (instance, task, title, assignees).
type Task = (String, u32, String, Vec<String>);

/// The open tasks of a step, in every instance of the run.
fn open_tasks(sim: &Sim, step: &str, title: Option<&str>) -> Vec<Task> {
    let mut out = Vec::new();
    for (iid, inst) in &sim.instances {
        let Some(plan) = sim.plans.get(&inst.workflow) else {
            continue;
        };
        for (tid, t) in &inst.tasks {
            if t.open && plan.node(t.node).step == step && title.is_none_or(|x| t.title.contains(x))
            {
                out.push((iid.clone(), *tid, t.title.clone(), t.assignees.clone()));
            }
        }
    }
    out
}

/// Who decides, with the roles they hold in the scenario.
fn decider(
    by: Option<&str>,
    assignees: &[String],
    roles: &BTreeMap<String, Vec<String>>,
    step: &str,
) -> Result<(String, Vec<String>), Problem> {
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
    let held = roles
        .iter()
        .filter(|(_, h)| h.contains(&by))
        .map(|(r, _)| r.clone())
        .collect();
    Ok((by, held))
}

/// The open tasks an event acts on. With `by`, only the tasks that person
/// may decide count (unless there are none: the engine then says why).
fn pick(
    sim: &Sim,
    root: &str,
    step: &str,
    title: Option<&str>,
    all: bool,
    by: Option<&(String, Vec<String>)>,
) -> Result<Vec<Task>, Problem> {
    let mut tasks = open_tasks(sim, step, title);
    if tasks.is_empty() {
        return Err(Problem::Misfit(no_open_task(sim, root, step, title)));
    }
    if let Some((by, held)) = by {
        let mine = |a: &String| {
            a == by
                || a.strip_prefix("role:")
                    .is_some_and(|r| held.iter().any(|h| h == r))
        };
        if tasks.iter().any(|t| t.3.iter().any(mine)) {
            tasks.retain(|t| t.3.iter().any(mine));
        }
    }
    if tasks.len() > 1 && !all {
        let titles: Vec<String> = tasks
            .iter()
            .take(5)
            .map(|t| format!("\"{}\"", t.2))
            .collect();
        return Err(Problem::Misfit(format!(
            "{} tasks of step `{step}` are open ({}{}): pick one with `title:` (text its title contains), or decide them all with `all: true`",
            tasks.len(),
            titles.join(", "),
            if tasks.len() > 5 { ", …" } else { "" }
        )));
    }
    Ok(tasks)
}

/// The person given as `by`, with the roles they hold.
fn given(
    by: Option<&Sp<String>>,
    roles: &BTreeMap<String, Vec<String>>,
    step: &str,
) -> Result<Option<(String, Vec<String>)>, Problem> {
    by.map(|b| decider(Some(&b.value), &[], roles, step))
        .transpose()
}

pub fn decide(
    sim: &mut Sim,
    root: &str,
    d: &format::Decide,
    roles: &BTreeMap<String, Vec<String>>,
) -> Result<(), Problem> {
    let by = given(d.by.as_ref(), roles, &d.step.value)?;
    let tasks = pick(
        sim,
        root,
        &d.step.value,
        d.title.as_ref().map(|t| t.value.as_str()),
        d.all,
        by.as_ref(),
    )?;
    for (iid, task, _, assignees) in tasks {
        let (by, held) = decider(
            d.by.as_ref().map(|b| b.value.as_str()),
            &assignees,
            roles,
            &d.step.value,
        )?;
        let event = Event::Decide {
            task,
            by: by.clone(),
            roles: held.clone(),
            option: d.option.value.clone(),
            comment: d.comment.clone(),
        };
        sim.event(&iid, event)
            .map_err(|r| rejection(sim, &iid, r, &by, &held, &assignees))?;
    }
    Ok(())
}

pub fn delegate(
    sim: &mut Sim,
    root: &str,
    d: &format::Delegate,
    roles: &BTreeMap<String, Vec<String>>,
) -> Result<(), Problem> {
    let by = given(d.by.as_ref(), roles, &d.step.value)?;
    let tasks = pick(
        sim,
        root,
        &d.step.value,
        d.title.as_ref().map(|t| t.value.as_str()),
        false,
        by.as_ref(),
    )?;
    let (iid, task, _, assignees) = tasks.into_iter().next().expect("one task");
    let (by, held) = decider(
        d.by.as_ref().map(|b| b.value.as_str()),
        &assignees,
        roles,
        &d.step.value,
    )?;
    let note = d.note.clone().unwrap_or_default();
    let event = Event::Delegate {
        task,
        by: by.clone(),
        roles: held.clone(),
        to: d.to.value.clone(),
        note,
    };
    sim.event(&iid, event)
        .map_err(|r| rejection(sim, &iid, r, &by, &held, &assignees))
}

fn rejection(
    sim: &Sim,
    id: &str,
    r: Rejection,
    by: &str,
    held: &[String],
    assignees: &[String],
) -> Problem {
    match r {
        Rejection::NotAssignee(_) => {
            let roles = if held.is_empty() {
                "no role".to_owned()
            } else {
                format!("roles {}", held.join(", "))
            };
            Problem::Refused(format!(
                "refused: {r} (its assignees: {}; {by} holds {roles} under `roles:`)",
                assignees.join(", ")
            ))
        }
        Rejection::CommentRequired => Problem::Refused(format!("refused: {r}: add `comment:`")),
        other => refused(sim, id, other),
    }
}

pub fn refused(sim: &Sim, id: &str, r: Rejection) -> Problem {
    match r {
        Rejection::Finished => Problem::Refused(format!(
            "refused: the instance has already finished ({})",
            sim.instance(id).status.as_str()
        )),
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
        return format!(
            "no open task {which}: the instance has already finished ({})",
            inst.status.as_str()
        );
    }
    let plan = &sim.plans[&inst.workflow];
    let closed = sim.histories[root]
        .iter()
        .rev()
        .find_map(|(r, at)| match r {
            Record::TaskClosed {
                task,
                outcome,
                by_default,
            } if inst
                .tasks
                .get(task)
                .is_some_and(|t| plan.node(t.node).step == step) =>
            {
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
        return format!(
            "no open task {which}: it was closed {how} at {}",
            offset(at - inst.started_at)
        );
    }
    format!(
        "no open task {which}: the step has not been reached; {}",
        expect::waiting_on(sim, root)
    )
}
