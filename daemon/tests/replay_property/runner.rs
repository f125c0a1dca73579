//! Running a case on the virtual-time simulator, delivering each due timer
//! as an event of its own and checking the properties after every event.

use std::collections::BTreeMap;
use std::sync::Arc;

use vakt::engine::model::{Event, Record};
use vakt::engine::sim::Sim;
use vakt::engine::state::Instance;
use vakt::workflow::{self, plan::Plan};

use crate::checks::check_instance;
use crate::events::{ADVANCES, Case, Ev, STARTERS, connector, realize};
use crate::yaml::pick;
use crate::{H, MIN, Mode, T0};

/// Everything a run produced, for the determinism check.
#[derive(Debug, PartialEq)]
pub(crate) struct Outcome {
    histories: BTreeMap<String, Vec<(Record, i64)>>,
    instances: BTreeMap<String, Instance>,
    pub(crate) results: Vec<String>,
    calls: Vec<String>,
    notices: Vec<String>,
}

pub(crate) fn load(yaml: &str) -> Result<Arc<Plan>, String> {
    let loaded = workflow::load_source("generated.yaml", yaml.to_owned());
    match &loaded.result {
        Ok(p) => Ok(p.clone()),
        Err(_) => Err(format!(
            "the generator wrote an invalid workflow:\n{}\n{yaml}",
            loaded.render_errors()
        )),
    }
}

/// More timers firing at one instant than any workflow needs: an instance
/// that never pauses fails the test instead of hanging it.
const TIMERS_AT_ONE_INSTANT: usize = 100;
/// A case that loops on through virtual time (an approval sent back every
/// few hours by its default, say) is legitimate but, replayed after every
/// event, slow: it stops after this many fired timers or records.
const TIMER_BUDGET: usize = 3_000;
const MAX_RECORDS: usize = 3_000;

type Snapshot = BTreeMap<String, (usize, Instance)>;

/// Runs a case on the simulator, checking the properties after every event.
struct Runner {
    sim: Sim,
    mode: Mode,
    check: bool,
    results: Vec<String>,
    budget: usize,
    /// Each instance as last checked, with its history's length: an instance
    /// that is still the same need not be replayed again.
    checked: Snapshot,
    /// Set when the case has run long enough (see [`MAX_RECORDS`]).
    stopped: bool,
}

impl Runner {
    fn snapshot(&self) -> Snapshot {
        self.sim
            .instances
            .iter()
            .map(|(id, i)| (id.clone(), (self.sim.histories[id].len(), i.clone())))
            .collect()
    }

    /// Notes what an event did and checks the properties; `unchanged`: the
    /// state before an event that must have recorded nothing.
    fn after(&mut self, result: String, unchanged: Option<Snapshot>) -> Result<(), String> {
        self.results.push(result);
        if !self.check {
            return Ok(());
        }
        let mut verdict = Ok(());
        for (id, (len, inst)) in unchanged.iter().flatten() {
            if self.sim.histories[id].len() != *len || self.sim.instances[id] != *inst {
                verdict = Err(format!(
                    "{id} changed, but the event was rejected or a duplicate delivery"
                ));
            }
        }
        verdict
            .and_then(|()| self.check_changed())
            .map_err(|e| self.failure(&e))
    }

    fn check_changed(&mut self) -> Result<(), String> {
        for (id, inst) in &self.sim.instances {
            let len = self.sim.histories[id].len();
            if self
                .checked
                .get(id)
                .is_some_and(|(l, i)| *l == len && i == inst)
            {
                continue;
            }
            let plan = &self.sim.plans[&inst.workflow];
            check_instance(&self.sim, id, inst, plan, self.mode)
                .map_err(|e| format!("instance {id}: {e}"))?;
            self.checked.insert(id.clone(), (len, inst.clone()));
        }
        Ok(())
    }

    fn failure(&self, e: &str) -> String {
        let n = self.results.len();
        let shown: Vec<&str> = if n > 120 {
            let mut v: Vec<&str> = self.results[..40].iter().map(String::as_str).collect();
            v.push("...");
            v.extend(self.results[n - 80..].iter().map(String::as_str));
            v
        } else {
            self.results.iter().map(String::as_str).collect()
        };
        format!(
            "after event {}: {e}\n--- events:\n{}",
            n.saturating_sub(1),
            shown.join("\n")
        )
    }

    /// Moves virtual time to `to`, delivering each due timer as an event of
    /// its own in the simulator's order (due, instance, timer).
    fn advance(&mut self, to: i64) -> Result<(), String> {
        let mut at_this_instant = (self.sim.now, 0);
        loop {
            let next = self
                .sim
                .instances
                .iter()
                .flat_map(|(id, i)| i.timers.iter().map(move |(t, x)| (x.due, id, *t)))
                .min()
                .filter(|(due, ..)| *due <= to)
                .map(|(due, id, t)| (due, id.clone(), t));
            let Some((due, id, timer)) = next else { break };
            self.sim.now = self.sim.now.max(due);
            if at_this_instant.0 == self.sim.now {
                at_this_instant.1 += 1;
            } else {
                at_this_instant = (self.sim.now, 1);
            }
            if at_this_instant.1 > TIMERS_AT_ONE_INSTANT {
                let at = (self.sim.now - T0) / MIN;
                return Err(self.failure(&format!(
                    "an instance never pauses: {TIMERS_AT_ONE_INSTANT} timers fired at +{at}m"
                )));
            }
            let longest = self.sim.histories.values().map(Vec::len).max().unwrap_or(0);
            if self.budget == 0 || longest > MAX_RECORDS {
                self.stopped = true;
                return self.after("(stopped: long enough)".to_owned(), None);
            }
            self.budget -= 1;
            let result = match self.sim.event(&id, Event::TimerFired { timer }) {
                Ok(()) => format!("+{}m {id} timer {timer} fired", (self.sim.now - T0) / MIN),
                Err(e) => {
                    return Err(
                        self.failure(&format!("due timer {timer} of {id} was refused: {e}"))
                    );
                }
            };
            self.after(result, None)?;
        }
        self.sim.now = self.sim.now.max(to);
        Ok(())
    }

    fn event(&mut self, ev: &Ev) -> Result<(), String> {
        match ev {
            Ev::Advance(k) => {
                let to = self.sim.now + ADVANCES.get(*k as usize).copied().unwrap_or(30 * 24 * H);
                self.advance(to)?;
                if self.stopped {
                    return Ok(());
                }
                self.after(format!("+{}m (advanced)", (self.sim.now - T0) / MIN), None)
            }
            Ev::Start(s) => match self
                .sim
                .start("w", s.input(self.mode), pick(STARTERS, s.by))
            {
                Ok(id) => self.after(format!("started {id}"), None),
                Err(e) => Err(self.failure(&format!("a valid input was refused: {e:?}"))),
            },
            other => match realize(&self.sim, other, self.mode) {
                None => self.after("(no target)".to_owned(), None),
                Some((id, event, no_op)) => {
                    let before = self.snapshot();
                    let text = format!("{id} {}", serde_json::to_string(&event).unwrap());
                    match self.sim.event(&id, event) {
                        Ok(()) => self.after(format!("{text} → ok"), no_op.then_some(before)),
                        Err(e) => self.after(format!("{text} → rejected: {e}"), Some(before)),
                    }
                }
            },
        }
    }
}

/// Runs a case; with `check`, checks the properties after every event.
pub(crate) fn run(
    case: &Case,
    plan: &Arc<Plan>,
    mode: Mode,
    check: bool,
) -> Result<Outcome, String> {
    let mut sim = Sim::new([plan.clone()], T0);
    sim.connector(connector(case.connector.clone()));
    let mut r = Runner {
        sim,
        mode,
        check,
        results: Vec::new(),
        budget: TIMER_BUDGET,
        checked: Snapshot::new(),
        stopped: false,
    };
    let starts = case.starts.iter().map(|s| Ev::Start(s.clone()));
    let finale = Ev::Advance(u8::MAX); // a month: everything that can fire does
    for ev in starts.chain(case.events.iter().cloned()).chain([finale]) {
        if r.stopped {
            break;
        }
        r.event(&ev)?;
    }
    Ok(Outcome {
        histories: r.sim.histories.clone(),
        instances: r.sim.instances.clone(),
        results: r.results,
        calls: r.sim.calls.iter().map(|c| format!("{c:?}")).collect(),
        notices: r.sim.notices.iter().map(|n| format!("{n:?}")).collect(),
    })
}
