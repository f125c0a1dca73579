//! Running one scenario on virtual time with [`Sim`]: start the instance,
//! answer connector calls from the script, deliver the events at their
//! times (timers due by then fire first), run on until nothing is left to
//! happen, and check the expectations.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};

use super::events::EventKind;
use super::expect::{self, Failure, View, matches};
use super::load::{Rule, Scenario};
use super::report::timeline;
use super::tasks::{Problem, decide, delegate, refused};
use crate::engine::model::{CallOutcome, Event, Record, Ts};
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

/// Runs one scenario of a checked file.
pub fn run(sc: &Scenario, workflow: &str, plans: &HashMap<String, Arc<Plan>>) -> Outcome {
    let mut sim = Sim::new(plans.values().cloned(), sc.start);
    sim.connector(script(sc.connectors.clone()));
    let mut failures = Vec::new();
    let root = match sim.start(workflow, sc.input.clone(), &sc.started_by) {
        Ok(id) => id,
        Err(problems) => {
            let msg = format!("the instance could not start: {}", problems.join("; "));
            return Outcome {
                failures: vec![Failure::new(sc.loc, msg)],
                timeline: Vec::new(),
                virtual_ms: 0,
            };
        }
    };
    let mut stopped = false;
    for ev in &sc.events {
        sim.advance_to(ev.at);
        let at = offset(ev.at - sc.start);
        let result = match &ev.kind {
            EventKind::Expect(x) => {
                let view = View {
                    sim: &sim,
                    root: &root,
                    start: sc.start,
                };
                for mut f in expect::check(&view, x) {
                    f.message = format!("at {at}: {}", f.message);
                    failures.push(f);
                }
                continue;
            }
            EventKind::Decide(d) => decide(&mut sim, &root, d, &sc.roles),
            EventKind::Delegate(d) => delegate(&mut sim, &root, d, &sc.roles),
            EventKind::Signal(s) => sim
                .event(
                    &root,
                    Event::Signal {
                        name: s.name.value.clone(),
                        data: s.data.clone().unwrap_or(json!({})),
                    },
                )
                .map_err(|r| refused(&sim, &root, r)),
            EventKind::Cancel(c) => {
                let by = c.by.clone().unwrap_or_else(|| sc.started_by.clone());
                let reason = c
                    .reason
                    .clone()
                    .unwrap_or_else(|| "cancelled by the scenario".to_owned());
                sim.event(&root, Event::Cancel { by, reason })
                    .map_err(|r| refused(&sim, &root, r))
            }
        };
        let what = describe(&ev.kind);
        match (result, &ev.refused) {
            (Ok(()), None) => {}
            (Ok(()), Some(text)) => failures.push(Failure::new(
                ev.loc,
                format!(
                    "at {at}: {what}: expected it to be refused (`{text}`), but it was accepted"
                ),
            )),
            (Err(Problem::Refused(msg)), Some(text)) if msg.contains(text.as_str()) => {}
            (Err(Problem::Refused(msg)), Some(text)) => {
                failures.push(Failure::new(ev.loc, format!("at {at}: {what}: refused, but not for the reason expected: expected `{text}`, got `{msg}`")));
            }
            (Err(Problem::Refused(msg) | Problem::Misfit(msg)), _) => {
                failures.push(Failure::new(
                    ev.loc,
                    format!("at {at}: {what}: {msg}; the scenario stopped here"),
                ));
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
            let view = View {
                sim: &sim,
                root: &root,
                start: sc.start,
            };
            failures.extend(expect::check(&view, x));
        }
    }
    let end = sim.histories[&root]
        .iter()
        .find(|(r, _)| {
            matches!(
                r,
                Record::Completed { .. } | Record::Failed { .. } | Record::Cancelled { .. }
            )
        })
        .map_or(sim.now, |(_, at)| *at);
    Outcome {
        failures,
        timeline: timeline(&sim, &root, sc.start),
        virtual_ms: end - sc.start,
    }
}

/// Fires the timers of unfinished instances in order until none is left
/// before `limit` (timers of finished instances are left alone).
fn run_until_idle(sim: &mut Sim, limit: Ts) {
    loop {
        let next = sim
            .instances
            .values()
            .filter(|i| !i.status.is_final())
            .flat_map(|i| i.timers.values().map(|t| t.due))
            .min();
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
    if frac != 0 && ms < 60_000 {
        format!("+{}.{frac:03}s", ms / 1000)
    } else {
        format!("+{d}")
    }
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
fn script(
    scripts: BTreeMap<String, Vec<Rule>>,
) -> impl FnMut(&crate::engine::sim::CallSeen) -> CallOutcome + 'static {
    let mut failed: HashMap<(String, usize), u32> = HashMap::new();
    move |call| {
        let key = format!("{}.{}", call.role, call.action);
        let Some(rules) = scripts.get(&key) else {
            return CallOutcome::Ok(json!({}));
        };
        for (i, r) in rules.iter().enumerate() {
            if r.when.as_ref().is_some_and(|w| !matches(w, &call.args)) {
                continue;
            }
            if let Some(f) = &r.fail {
                let n = failed.entry((key.clone(), i)).or_default();
                if f.times.is_none_or(|t| *n < t) {
                    *n += 1;
                    return CallOutcome::Err {
                        message: f.message.clone(),
                        retryable: f.retryable,
                        retry_after: f.retry_after,
                    };
                }
            }
            return CallOutcome::Ok(r.output.clone());
        }
        CallOutcome::Ok(json!({}))
    }
}

/// The instance's output as shown in messages.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}
