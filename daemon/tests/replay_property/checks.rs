//! The properties checked after every event: (a) the history replays into
//! the live state, (d) the invariants hold; and (b), per case, a second run
//! gives the same outcome.

use std::collections::{BTreeMap, BTreeSet};

use vakt::engine::Status;
use vakt::engine::model::{Record, TimerPurpose};
use vakt::engine::sim::Sim;
use vakt::engine::state::{Instance, Waiting};
use vakt::workflow::plan::Plan;

use crate::events::Case;
use crate::runner::{load, run};
use crate::yaml::render;
use crate::{Bug, Mode};

pub(crate) fn check_instance(
    sim: &Sim,
    id: &str,
    inst: &Instance,
    plan: &Plan,
    mode: Mode,
) -> Result<(), String> {
    let history = &sim.histories[id];
    // (a) The stored history folds back into exactly the live state.
    if !sim.replay_matches(id) {
        let replayed = vakt::engine::replay(id, history.iter().map(|(r, t)| (r, *t)));
        return Err(format!(
            "replay differs:\n live: {inst:?}\n replayed: {replayed:?}"
        ));
    }
    // (d) The invariants.
    if inst.seq != history.len() as u64 {
        return Err(format!("seq {} but {} records", inst.seq, history.len()));
    }
    let mut ids = BTreeSet::new();
    let mut timer_ids = BTreeSet::new();
    let mut keys: BTreeMap<u32, (u32, String)> = BTreeMap::new();
    for (n, (r, _)) in history.iter().enumerate() {
        let fresh = match r {
            Record::TimerSet { timer, .. } => {
                if !timer_ids.insert(*timer) {
                    return Err(format!("timer id {timer} set twice"));
                }
                Some(*timer)
            }
            Record::ThreadStarted { thread, .. } => Some(*thread),
            Record::TaskOpened { task, .. } => Some(*task),
            Record::CallRequested {
                call,
                thread,
                attempt,
                idempotency_key,
                ..
            } => {
                // Every attempt of one visit of a step shares the key.
                if !mode.avoids(Bug::B3IdempotencyKeyChangesBetweenAttempts)
                    && *attempt > 1
                    && let Some((prev, key)) = keys.get(thread)
                    && (*prev + 1 != *attempt || key != idempotency_key)
                {
                    return Err(format!(
                        "attempt {attempt} of thread {thread} has key {idempotency_key}, attempt {prev} had {key}"
                    ));
                }
                keys.insert(*thread, (*attempt, idempotency_key.clone()));
                Some(*call)
            }
            _ => None,
        };
        if let Some(x) = fresh
            && !ids.insert(x)
        {
            return Err(format!("id {x} used twice (record {n}: {r:?})"));
        }
        let is_final = matches!(
            r,
            Record::Completed { .. } | Record::Failed { .. } | Record::Cancelled { .. }
        );
        if is_final && n + 1 != history.len() {
            return Err(format!(
                "record {n} ends the instance, but {} records follow it: {:?}",
                history.len() - n - 1,
                history[n + 1].0
            ));
        }
    }
    if inst.status.is_final() {
        if !inst.threads.is_empty() || !inst.calls.is_empty() || !inst.timers.is_empty() {
            return Err(format!(
                "finished ({:?}) with threads {:?}, calls {:?}, timers {:?}",
                inst.status, inst.threads, inst.calls, inst.timers
            ));
        }
        if let Some((t, _)) = inst.tasks.iter().find(|(_, t)| t.open) {
            return Err(format!("finished with task {t} open"));
        }
        return Ok(());
    }
    check_running(inst, plan)
}

/// A running instance is at rest and consistent: every thread waits on
/// something that exists, and everything that exists serves a thread.
fn check_running(inst: &Instance, plan: &Plan) -> Result<(), String> {
    if inst.status != Status::Waiting && inst.status != Status::Running {
        return Err(format!("status {:?}", inst.status));
    }
    for (tid, t) in &inst.threads {
        let ok = match &t.waiting {
            Waiting::Ready => false,
            Waiting::Timer { timer } => inst.timers.contains_key(timer),
            Waiting::Task { task } => inst
                .tasks
                .get(task)
                .is_some_and(|x| x.open && x.thread == *tid),
            Waiting::Signal { name } => !inst.signals.contains_key(name),
            Waiting::Join => t.join.is_some(),
            Waiting::Call { call } => inst.calls.contains_key(call),
            Waiting::Child { .. } => true,
        };
        if !ok {
            return Err(format!(
                "thread {tid} waits on {:?}, which is not there (or is ready but was not run)",
                t.waiting
            ));
        }
    }
    for (k, task) in inst.tasks.iter().filter(|(_, t)| t.open) {
        let waiting = inst
            .threads
            .get(&task.thread)
            .is_some_and(|t| t.waiting == Waiting::Task { task: *k });
        if !waiting {
            return Err(format!(
                "task {k} is open, but thread {} no longer waits on it",
                task.thread
            ));
        }
        let distinct: BTreeSet<&String> = task.assignees.iter().collect();
        if distinct.len() != task.assignees.len() {
            return Err(format!(
                "task {k} lists an assignee twice: {:?}",
                task.assignees
            ));
        }
    }
    for (k, timer) in &inst.timers {
        let thread_waits = |thread: &u32| {
            inst.threads
                .get(thread)
                .is_some_and(|t| t.waiting == Waiting::Timer { timer: *k })
        };
        let task_open = |task: &u32| inst.tasks.get(task).is_some_and(|t| t.open);
        let clock_runs = |clock: &String| {
            inst.clocks
                .get(clock)
                .is_some_and(|c| c.met_at.is_none() && !c.breached)
        };
        let ok = match &timer.purpose {
            TimerPurpose::Wait { thread } | TimerPurpose::Retry { thread } => thread_waits(thread),
            TimerPurpose::Timeout { thread } => inst.threads.get(thread).is_some_and(|t| {
                plan.node(t.node).timeout.is_some()
                    && matches!(
                        t.waiting,
                        Waiting::Call { .. }
                            | Waiting::Signal { .. }
                            | Waiting::Timer { .. }
                            | Waiting::Child { .. }
                    )
            }),
            TimerPurpose::Reminder { task, .. }
            | TimerPurpose::Escalation { task, .. }
            | TimerPurpose::Deadline { task } => task_open(task),
            TimerPurpose::ClockWarning { clock, .. } | TimerPurpose::ClockDue { clock } => {
                clock_runs(clock)
            }
        };
        if !ok {
            return Err(format!(
                "timer {k} ({:?}) serves nothing that is still there",
                timer.purpose
            ));
        }
    }
    Ok(())
}

/// Runs a case twice, checking every property; the error explains the failure.
pub(crate) fn check_case(case: &Case, mode: Mode) -> Result<(), String> {
    let yaml = render(&case.wf, mode);
    let plan = load(&yaml)?;
    let first = run(case, &plan, mode, true).map_err(|e| format!("{e}\n--- workflow:\n{yaml}"))?;
    // (b) The same workflow and events give the same histories.
    let second = run(case, &plan, mode, false)?;
    if first != second {
        return Err(format!(
            "a second run of the same case differs\n--- workflow:\n{yaml}--- events:\n{}",
            first.results.join("\n")
        ));
    }
    Ok(())
}
