//! A virtual-time driver for the engine: instances, timers, connector
//! answers and notifications, all in memory, with time that jumps.
//!
//! It runs the same transitions the daemon runs; only persistence and IO are
//! replaced. Unit tests and `vakt test` scenarios use it: a year of virtual
//! time is a few heap pops.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::model::{Action, CallOutcome, Event, NotifyReason, Record, Rejection, Ts};
use super::state::Instance;
use super::{Transition, handle, input, start};
use crate::workflow::plan::Plan;

/// A connector call as the simulated connector sees it.
#[derive(Debug, Clone)]
pub struct CallSeen {
    pub instance: String,
    pub role: String,
    pub action: String,
    pub args: Value,
    pub attempt: u32,
    pub idempotency_key: String,
    pub at: Ts,
}

/// A notification the daemon would mail.
#[derive(Debug, Clone)]
pub struct Notice {
    pub instance: String,
    pub task: u32,
    pub to: Vec<String>,
    pub reason: NotifyReason,
    pub at: Ts,
}

type Connector = Box<dyn FnMut(&CallSeen) -> CallOutcome>;

pub struct Sim {
    pub plans: HashMap<String, Arc<Plan>>,
    pub instances: BTreeMap<String, Instance>,
    pub histories: BTreeMap<String, Vec<(Record, Ts)>>,
    pub calls: Vec<CallSeen>,
    pub notices: Vec<Notice>,
    pub now: Ts,
    timers: BinaryHeap<Reverse<(Ts, String, u32)>>,
    connector: Connector,
    next_instance: u32,
}

impl Sim {
    pub fn new(plans: impl IntoIterator<Item = Arc<Plan>>, now: Ts) -> Self {
        Sim {
            plans: plans.into_iter().map(|p| (p.id.clone(), p)).collect(),
            instances: BTreeMap::new(),
            histories: BTreeMap::new(),
            calls: Vec::new(),
            notices: Vec::new(),
            now,
            timers: BinaryHeap::new(),
            connector: Box::new(|_| CallOutcome::Ok(Value::Object(Default::default()))),
            next_instance: 1,
        }
    }

    /// Sets how connector calls are answered.
    pub fn connector(&mut self, f: impl FnMut(&CallSeen) -> CallOutcome + 'static) {
        self.connector = Box::new(f);
    }

    /// Starts an instance; returns its id, or the input's problems.
    pub fn start(&mut self, workflow: &str, input: Value, by: &str) -> Result<String, Vec<String>> {
        self.start_child(workflow, input, by, None, None)
    }

    fn start_child(
        &mut self,
        workflow: &str,
        input: Value,
        by: &str,
        parent: Option<String>,
        id: Option<String>,
    ) -> Result<String, Vec<String>> {
        let plan = self
            .plans
            .get(workflow)
            .cloned()
            .ok_or_else(|| vec![format!("no workflow `{workflow}`")])?;
        let input = input::check(&plan, &input)?;
        let id = id.unwrap_or_else(|| {
            let id = format!("i{}", self.next_instance);
            self.next_instance += 1;
            id
        });
        let mut st = Instance {
            id: id.clone(),
            ..Default::default()
        };
        let tr = start(&plan, &mut st, input, by, parent, self.now);
        self.instances.insert(id.clone(), st);
        self.absorb(&id, tr);
        Ok(id)
    }

    /// Delivers an event to an instance.
    pub fn event(&mut self, id: &str, event: Event) -> Result<(), Rejection> {
        let Some(mut st) = self.instances.remove(id) else {
            return Err(Rejection::Finished);
        };
        let plan = self.plans[&st.workflow].clone();
        let result = handle(&plan, &mut st, event, self.now);
        self.instances.insert(id.to_owned(), st);
        let tr = result?;
        self.absorb(id, tr);
        Ok(())
    }

    /// Records a transition and performs its actions (at virtual time).
    fn absorb(&mut self, id: &str, tr: Transition) {
        let h = self.histories.entry(id.to_owned()).or_default();
        h.extend(tr.records.into_iter().map(|r| (r, self.now)));
        for action in tr.actions {
            match action {
                Action::Timer { timer, due } => {
                    self.timers.push(Reverse((due, id.to_owned(), timer)))
                }
                Action::Call {
                    call,
                    role,
                    action,
                    args,
                    idempotency_key,
                    attempt,
                    ..
                } => {
                    let seen = CallSeen {
                        instance: id.to_owned(),
                        role,
                        action,
                        args,
                        attempt,
                        idempotency_key,
                        at: self.now,
                    };
                    let outcome = (self.connector)(&seen);
                    self.calls.push(seen);
                    let _ = self.event(id, Event::CallAnswered { call, outcome });
                }
                Action::Notify { task, to, reason } => self.notices.push(Notice {
                    instance: id.to_owned(),
                    task,
                    to,
                    reason,
                    at: self.now,
                }),
                Action::StartChild {
                    child,
                    workflow,
                    input,
                } => {
                    let by = self
                        .instances
                        .get(id)
                        .map(|i| i.started_by.clone())
                        .unwrap_or_default();
                    if let Err(problems) = self.start_child(
                        &workflow,
                        input,
                        &by,
                        Some(id.to_owned()),
                        Some(child.clone()),
                    ) {
                        let error = super::StepError::new("child", problems.join("; "));
                        let _ = self.event(
                            id,
                            Event::ChildFinished {
                                child,
                                result: Err(error),
                            },
                        );
                    }
                }
                Action::Finished { parent, result } => {
                    let _ = self.event(
                        &parent,
                        Event::ChildFinished {
                            child: id.to_owned(),
                            result,
                        },
                    );
                }
            }
        }
    }

    /// Moves virtual time to `to`, firing every timer due on the way, in order.
    pub fn advance_to(&mut self, to: Ts) {
        while let Some(Reverse((due, _, _))) = self.timers.peek() {
            if *due > to {
                break;
            }
            let Some(Reverse((due, id, timer))) = self.timers.pop() else {
                break;
            };
            self.now = self.now.max(due);
            if self
                .instances
                .get(&id)
                .is_some_and(|i| i.timers.contains_key(&timer))
            {
                let _ = self.event(&id, Event::TimerFired { timer });
            }
        }
        self.now = self.now.max(to);
    }

    /// Moves virtual time forward by `ms`.
    pub fn advance(&mut self, ms: i64) {
        self.advance_to(self.now + ms);
    }

    /// Runs until no timer is left (bounded by `limit`).
    pub fn run_until_idle(&mut self, limit: Ts) {
        while let Some(Reverse((due, _, _))) = self.timers.peek() {
            if *due > limit {
                break;
            }
            let due = *due;
            self.advance_to(due);
        }
    }

    pub fn instance(&self, id: &str) -> &Instance {
        &self.instances[id]
    }

    /// The open task ids of an instance.
    pub fn open_tasks(&self, id: &str) -> Vec<u32> {
        self.instances[id]
            .tasks
            .iter()
            .filter(|(_, t)| t.open)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Replays an instance's history and checks it gives the same state.
    ///
    /// The records go through JSON first, as the store keeps them, so a
    /// record that would not survive being stored fails the check too.
    pub fn replay_matches(&self, id: &str) -> bool {
        let stored: Vec<(Record, Ts)> = self.histories[id]
            .iter()
            .map(|(r, t)| {
                let json = serde_json::to_vec(r).expect("records serialize");
                (
                    serde_json::from_slice(&json).expect("records deserialize"),
                    *t,
                )
            })
            .collect();
        let replayed = super::replay(id, stored.iter().map(|(r, t)| (r, *t)));
        replayed == self.instances[id]
    }
}
