//! Reporting, in the manner of `cargo test`: one line per scenario as it
//! finishes, then each failure with its `file:line:column` messages and a
//! timeline of the run, then the summary line `N passed, N failed`.

use std::io::Write;
use std::time::Duration as Elapsed;

use super::run::{Outcome, offset};
use crate::engine::model::{CallOutcome, Record, Ts, rfc3339};
use crate::engine::sim::Sim;

/// At most this many timeline lines are printed for a failed scenario.
const TIMELINE_LINES: usize = 120;

/// One scenario's result, for the summary.
pub struct Result {
    pub file: String,
    pub name: String,
    pub outcome: Outcome,
}

/// The line printed when a scenario finishes.
pub fn line(out: &mut dyn Write, file: &str, name: &str, outcome: &Outcome) {
    let verdict = if outcome.passed() { "ok" } else { "FAILED" };
    let _ = writeln!(out, "test {file} :: {name} ... {verdict}");
}

/// The failures, the timing and the summary line.
pub fn summary(out: &mut dyn Write, results: &[Result], elapsed: Elapsed) {
    let failed: Vec<&Result> = results.iter().filter(|r| !r.outcome.passed()).collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "\nfailures:");
        for r in &failed {
            let _ = writeln!(out, "\n---- {} :: {} ----", r.file, r.name);
            for f in &r.outcome.failures {
                let _ = writeln!(
                    out,
                    "{}:{}:{}: {}",
                    r.file, f.loc.line, f.loc.column, f.message
                );
            }
            if !r.outcome.timeline.is_empty() {
                let _ = writeln!(out, "timeline (virtual time after the start):");
                for l in r.outcome.timeline.iter().take(TIMELINE_LINES) {
                    let _ = writeln!(out, "  {l}");
                }
                if r.outcome.timeline.len() > TIMELINE_LINES {
                    let _ = writeln!(
                        out,
                        "  … and {} more",
                        r.outcome.timeline.len() - TIMELINE_LINES
                    );
                }
            }
        }
        let _ = writeln!(out, "\nfailures:");
        for r in &failed {
            let _ = writeln!(out, "    {} :: {}", r.file, r.name);
        }
    }
    let virtual_ms: i64 = results.iter().map(|r| r.outcome.virtual_ms).sum();
    let virt = crate::workflow::duration::Duration::from_secs((virtual_ms / 1000) as u64);
    let _ = writeln!(
        out,
        "\n{} scenario(s) in {:.1} ms ({virt} of virtual time)",
        results.len(),
        elapsed.as_secs_f64() * 1000.0
    );
    let _ = writeln!(
        out,
        "{} passed, {} failed",
        results.len() - failed.len(),
        failed.len()
    );
}

/// What happened in a run, one line per notable record, in time order.
pub fn timeline(sim: &Sim, root: &str, start: Ts) -> Vec<String> {
    let mut lines: Vec<(Ts, String)> = Vec::new();
    for (id, history) in &sim.histories {
        let Some(inst) = sim.instances.get(id) else {
            continue;
        };
        let Some(plan) = sim.plans.get(&inst.workflow) else {
            continue;
        };
        let who = if id == root {
            String::new()
        } else {
            format!("[{id} {}] ", inst.workflow)
        };
        let step_of = |task: &u32| {
            inst.tasks
                .get(task)
                .map(|t| plan.node(t.node).step.clone())
                .unwrap_or_default()
        };
        for (r, at) in history {
            let text = match r {
                Record::Started {
                    workflow,
                    started_by,
                    ..
                } => format!("started `{workflow}` by {started_by}"),
                Record::ClockStarted { clock, due, .. } => format!(
                    "clock `{clock}` started, due {} ({})",
                    rfc3339(*due),
                    offset(due - start)
                ),
                Record::ClockWarned { clock, before_secs } => {
                    format!(
                        "clock `{clock}` warned, {} before its deadline",
                        crate::workflow::duration::Duration::from_secs(*before_secs)
                    )
                }
                Record::ClockBreached { clock } => format!("clock `{clock}` BREACHED"),
                Record::ClockMet { clock, .. } => format!("clock `{clock}` met"),
                Record::StepCompleted { step, .. } => format!("step `{step}` completed"),
                Record::StepSkipped { step, .. } => {
                    format!("step `{step}` skipped (`when` was false)")
                }
                Record::StepFailed {
                    step,
                    error,
                    handled,
                    ..
                } => {
                    format!(
                        "step `{step}` failed: {}{}",
                        error.message,
                        if *handled { " (handled)" } else { "" }
                    )
                }
                Record::CallRequested {
                    role,
                    action,
                    attempt,
                    ..
                } => format!("call {role}.{action} (attempt {attempt})"),
                Record::CallAnswered {
                    outcome:
                        CallOutcome::Err {
                            message, retryable, ..
                        },
                    ..
                } => {
                    format!(
                        "  answered with an error: {message}{}",
                        if *retryable { " (retryable)" } else { "" }
                    )
                }
                Record::TaskOpened {
                    task,
                    title,
                    assignees,
                    ..
                } => {
                    format!(
                        "task of `{}` opened for {}: \"{}\"",
                        step_of(task),
                        assignees.join(", "),
                        cut(title, 70)
                    )
                }
                Record::TaskReminded { task, to, .. } if !to.is_empty() => {
                    format!("reminder for `{}` to {}", step_of(task), to.join(", "))
                }
                Record::TaskEscalated {
                    task, assignees, ..
                } => format!(
                    "task of `{}` escalated, now for {}",
                    step_of(task),
                    assignees.join(", ")
                ),
                Record::TaskDelegated { task, from, to, .. } => {
                    format!("task of `{}` delegated by {from} to {to}", step_of(task))
                }
                Record::TaskVoted { task, vote } => format!(
                    "{} decided `{}` on `{}`",
                    vote.by,
                    vote.option,
                    step_of(task)
                ),
                Record::TaskClosed {
                    task,
                    outcome,
                    by_default,
                } => match (outcome, by_default) {
                    (Some(o), true) => format!(
                        "task of `{}` closed with `{o}` BY DEFAULT at its deadline",
                        step_of(task)
                    ),
                    (Some(o), false) => format!("task of `{}` closed with `{o}`", step_of(task)),
                    (None, _) => format!(
                        "task of `{}` closed UNDECIDED at its deadline",
                        step_of(task)
                    ),
                },
                Record::SignalReceived { name, .. } => format!("signal `{name}` received"),
                Record::ChildStarted {
                    child, workflow, ..
                } => format!("sub-workflow `{workflow}` started as {child}"),
                Record::Completed { output } => format!(
                    "COMPLETED{}",
                    output
                        .get("message")
                        .and_then(|m| m.as_str())
                        .map(|m| format!(": {}", cut(m, 100)))
                        .unwrap_or_default()
                ),
                Record::Failed { error } => format!("FAILED: {}", error.message),
                Record::Cancelled { by, reason } => format!("CANCELLED by {by}: {reason}"),
                _ => continue,
            };
            lines.push((*at, format!("{who}{text}")));
        }
    }
    lines.sort_by_key(|(at, _)| *at);
    lines
        .into_iter()
        .map(|(at, t)| format!("{:>10}  {t}", offset(at - start)))
        .collect()
}

fn cut(s: &str, n: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() > n {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    } else {
        one_line
    }
}
