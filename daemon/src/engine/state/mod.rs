//! The state of one instance: a fold over its history records.
//!
//! [`Instance::apply`] is the only function that changes an instance, and it
//! decides nothing: every decision was made when the record was produced.
//! So replaying the stored history always rebuilds the same state.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod parts;

pub use parts::{Call, ClockState, Join, Status, StepResult, Task, Thread, Timer, Waiting};

use super::model::{Record, StepError, ThreadKind, TimerPurpose, Ts};

/// One instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Instance {
    pub id: String,
    pub workflow: String,
    pub hash: String,
    pub status: Status,
    pub input: Value,
    pub started_by: String,
    pub started_at: Ts,
    pub parent: Option<String>,
    /// Timestamp of the newest record applied (the `now` of its transition).
    pub updated_at: Ts,
    pub vars: Map<String, Value>,
    /// Step results by output layer (0: the instance; others: foreach iterations).
    pub outputs: BTreeMap<u32, BTreeMap<String, StepResult>>,
    /// The parent layer of each layer other than 0.
    pub layer_parent: BTreeMap<u32, u32>,
    pub threads: BTreeMap<u32, Thread>,
    pub calls: BTreeMap<u32, Call>,
    pub timers: BTreeMap<u32, Timer>,
    pub tasks: BTreeMap<u32, Task>,
    pub clocks: BTreeMap<String, ClockState>,
    pub signals: BTreeMap<String, VecDeque<Value>>,
    /// How many times each step was entered, for idempotency keys.
    pub visits: BTreeMap<String, u32>,
    pub next_id: u32,
    pub output: Option<Value>,
    pub error: Option<StepError>,
    /// How many records have been applied.
    pub seq: u64,
}

impl Instance {
    /// A fresh id for a thread, call, timer or task.
    pub fn peek_id(&self) -> u32 {
        self.next_id
    }

    fn bump(&mut self, id: u32) {
        self.next_id = self.next_id.max(id + 1);
    }

    /// Applies one record at time `at`.
    pub fn apply(&mut self, record: &Record, at: Ts) {
        self.seq += 1;
        self.updated_at = at;
        match record {
            Record::Started {
                workflow,
                hash,
                input,
                started_by,
                at,
                parent,
            } => {
                self.workflow = workflow.clone();
                self.hash = hash.clone();
                self.input = input.clone();
                self.started_by = started_by.clone();
                self.started_at = *at;
                self.parent = parent.clone();
                self.status = Status::Running;
                self.outputs.insert(0, BTreeMap::new());
            }
            Record::ClockStarted { clock, anchor, due } => {
                self.clocks.insert(
                    clock.clone(),
                    ClockState {
                        anchor: *anchor,
                        due: *due,
                        warned: Vec::new(),
                        breached: false,
                        met_at: None,
                    },
                );
            }
            Record::ClockWarned { clock, before_secs } => {
                if let Some(c) = self.clocks.get_mut(clock) {
                    c.warned.push(*before_secs);
                }
            }
            Record::ClockBreached { clock } => {
                if let Some(c) = self.clocks.get_mut(clock) {
                    c.breached = true;
                }
            }
            Record::ClockMet { clock, at } => {
                if let Some(c) = self.clocks.get_mut(clock) {
                    c.met_at = Some(*at);
                }
            }
            Record::ThreadStarted {
                thread,
                parent,
                kind,
                node,
                locals,
                own_layer,
            } => {
                self.bump(*thread);
                let parent_layer = parent
                    .and_then(|p| self.threads.get(&p))
                    .map(|t| t.layer)
                    .unwrap_or(0);
                let layer = if *own_layer {
                    self.layer_parent.insert(*thread, parent_layer);
                    self.outputs.insert(*thread, BTreeMap::new());
                    *thread
                } else {
                    parent_layer
                };
                let mut all_locals = parent
                    .and_then(|p| self.threads.get(&p))
                    .map(|t| t.locals.clone())
                    .unwrap_or_default();
                all_locals.extend(locals.clone());
                if let Some(p) = parent.and_then(|p| self.threads.get_mut(&p))
                    && let Some(j) = &mut p.join
                {
                    j.running += 1;
                    if let ThreadKind::Iteration { index } = kind {
                        j.items.retain(|(i, _)| i != index);
                    }
                }
                self.threads.insert(
                    *thread,
                    Thread {
                        parent: *parent,
                        kind: kind.clone(),
                        node: *node,
                        locals: all_locals,
                        layer,
                        waiting: Waiting::Ready,
                        last: Value::Null,
                        attempt: 0,
                        visit: 0,
                        entered_at: at,
                        join: None,
                    },
                );
            }
            Record::StepEntered { thread, node, step } => {
                let key = self.visit_key(*thread, step);
                let visit = self.visits.entry(key).or_default();
                *visit += 1;
                let visit = *visit;
                if let Some(t) = self.threads.get_mut(thread) {
                    t.visit = visit;
                    t.entered_at = at;
                    t.node = *node;
                    t.waiting = Waiting::Ready;
                    t.attempt = 0;
                    t.join = None;
                }
            }
            Record::StepSkipped {
                thread, step, next, ..
            } => {
                self.store_output(*thread, step, "skipped", Value::Null);
                if let (Some(t), Some(n)) = (self.threads.get_mut(thread), next) {
                    t.node = *n;
                    t.waiting = Waiting::Ready;
                }
            }
            Record::JoinStarted { thread, items } => {
                if let Some(t) = self.threads.get_mut(thread) {
                    t.waiting = Waiting::Join;
                    t.join = Some(Join {
                        running: 0,
                        items: items
                            .iter()
                            .cloned()
                            .enumerate()
                            .map(|(i, v)| (i as u32, v))
                            .collect(),
                        results: BTreeMap::new(),
                        branches: BTreeMap::new(),
                    });
                }
            }
            Record::WaitingForSignal { thread, name } => {
                if let Some(t) = self.threads.get_mut(thread) {
                    t.waiting = Waiting::Signal { name: name.clone() };
                }
            }
            Record::StepCompleted {
                thread,
                step,
                output,
                next,
                ..
            } => {
                self.store_output(*thread, step, "completed", output.clone());
                if let Some(t) = self.threads.get_mut(thread) {
                    t.last = output.clone();
                    t.waiting = Waiting::Ready;
                    t.join = None;
                    if let Some(n) = next {
                        t.node = *n;
                    }
                }
            }
            Record::StepFailed {
                thread,
                step,
                error,
                handler,
                handled,
                ..
            } => {
                self.store_output(*thread, step, "failed", serde_json::json!({"error": error}));
                if let Some(t) = self.threads.get_mut(thread) {
                    t.waiting = Waiting::Ready;
                    t.join = None;
                    if *handled {
                        let mut e = serde_json::to_value(error).unwrap_or(Value::Null);
                        if let Value::Object(m) = &mut e {
                            m.insert("step".into(), Value::String(step.clone()));
                        }
                        t.locals.insert("error".into(), e);
                        if let Some(h) = handler {
                            t.node = *h;
                        }
                    }
                }
            }
            Record::VarsSet { vars } => {
                self.vars.extend(vars.clone());
            }
            Record::CallRequested {
                thread,
                call,
                node,
                attempt,
                idempotency_key,
                role,
                action,
                args,
            } => {
                self.bump(*call);
                self.calls.insert(
                    *call,
                    Call {
                        thread: *thread,
                        node: *node,
                        attempt: *attempt,
                        idempotency_key: idempotency_key.clone(),
                        role: role.clone(),
                        action: action.clone(),
                        args: args.clone(),
                    },
                );
                if let Some(t) = self.threads.get_mut(thread) {
                    t.waiting = Waiting::Call { call: *call };
                    t.attempt = *attempt;
                }
            }
            Record::CallAnswered { call, .. } => {
                // The thread moves on with the record that follows (completed,
                // failed, or a retry timer).
                self.calls.remove(call);
            }
            Record::TimerSet {
                timer,
                due,
                purpose,
            } => {
                self.bump(*timer);
                self.timers.insert(
                    *timer,
                    Timer {
                        due: *due,
                        purpose: purpose.clone(),
                    },
                );
                match purpose {
                    TimerPurpose::Wait { thread } | TimerPurpose::Retry { thread } => {
                        if let Some(t) = self.threads.get_mut(thread) {
                            t.waiting = Waiting::Timer { timer: *timer };
                        }
                    }
                    _ => {}
                }
            }
            Record::TimerFired { timer } | Record::TimerCancelled { timer } => {
                self.timers.remove(timer);
            }
            Record::TaskOpened {
                task,
                thread,
                node,
                title,
                description,
                assignees,
                due,
            } => {
                self.bump(*task);
                self.tasks.insert(
                    *task,
                    Task {
                        thread: *thread,
                        node: *node,
                        title: title.clone(),
                        description: description.clone(),
                        assignees: assignees.clone(),
                        due: *due,
                        opened_at: at,
                        votes: Vec::new(),
                        reminders_sent: 0,
                        periodic_reminders: 0,
                        last_notice_at: None,
                        open: true,
                        outcome: None,
                    },
                );
                if let Some(t) = self.threads.get_mut(thread) {
                    t.waiting = Waiting::Task { task: *task };
                }
            }
            Record::TaskReminded { task, periodic, to } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    if !to.is_empty() {
                        t.last_notice_at = Some(at);
                    }
                    t.reminders_sent += 1;
                    if *periodic {
                        t.periodic_reminders += 1;
                    }
                }
            }
            Record::TaskEscalated {
                task, assignees, ..
            } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.assignees = assignees.clone();
                    t.last_notice_at = Some(at);
                }
            }
            Record::TaskDelegated { task, from, to, .. } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    for a in &mut t.assignees {
                        if a == from {
                            *a = to.clone();
                        }
                    }
                    if !t.assignees.contains(to) {
                        t.assignees.push(to.clone());
                    }
                    let mut seen = std::collections::BTreeSet::new();
                    t.assignees.retain(|a| seen.insert(a.clone()));
                }
            }
            Record::TaskVoted { task, vote } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.votes.push(vote.clone());
                }
            }
            Record::TaskClosed { task, outcome, .. } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.open = false;
                    t.outcome = outcome.clone();
                }
            }
            Record::SignalReceived { name, data } => {
                self.signals
                    .entry(name.clone())
                    .or_default()
                    .push_back(data.clone());
            }
            Record::SignalConsumed { name, .. } => {
                if let Some(q) = self.signals.get_mut(name) {
                    q.pop_front();
                    if q.is_empty() {
                        self.signals.remove(name);
                    }
                }
            }
            Record::ChildStarted { thread, child, .. } => {
                self.next_id += 1;
                if let Some(t) = self.threads.get_mut(thread) {
                    t.waiting = Waiting::Child {
                        child: child.clone(),
                    };
                }
            }
            Record::ThreadEnded { thread } => {
                if let Some(t) = self.threads.remove(thread) {
                    if let Some(p) = t.parent.and_then(|p| self.threads.get_mut(&p))
                        && let Some(j) = &mut p.join
                    {
                        j.running = j.running.saturating_sub(1);
                        match &t.kind {
                            ThreadKind::Iteration { index } => {
                                j.results.insert(*index, t.last.clone());
                            }
                            ThreadKind::Branch { name } => {
                                j.branches.insert(name.clone(), t.last.clone());
                            }
                            _ => {}
                        }
                    }
                    if self.layer_parent.contains_key(thread) {
                        // A finished foreach iteration's outputs are folded into its result.
                        self.outputs.remove(thread);
                        self.layer_parent.remove(thread);
                    }
                }
            }
            Record::Completed { output } => {
                self.status = Status::Completed;
                self.output = Some(output.clone());
                self.finish();
            }
            Record::Failed { error } => {
                self.status = Status::Failed;
                self.error = Some(error.clone());
                self.finish();
            }
            Record::Cancelled { .. } => {
                self.status = Status::Cancelled;
                self.finish();
            }
        }
        if !self.status.is_final() {
            self.status = self.derive_status();
        }
    }

    /// The foreach iteration path of a thread: `-` outside any foreach,
    /// else the indices from the outermost in, such as `3.0`.
    pub fn iteration_path(&self, thread: u32) -> String {
        let mut path = Vec::new();
        let mut t = Some(thread);
        while let Some(id) = t {
            let Some(th) = self.threads.get(&id) else {
                break;
            };
            if let ThreadKind::Iteration { index } = th.kind {
                path.push(index.to_string());
            }
            t = th.parent;
        }
        if path.is_empty() {
            return "-".to_owned();
        }
        path.reverse();
        path.join(".")
    }

    /// The key visits of a step are counted under: the step in one iteration.
    pub fn visit_key(&self, thread: u32, step: &str) -> String {
        format!("{step}/{}", self.iteration_path(thread))
    }

    /// A parallel/foreach node begins waiting on its children.
    pub fn join_of(&self, thread: u32) -> Option<&Join> {
        self.threads.get(&thread).and_then(|t| t.join.as_ref())
    }

    fn store_output(&mut self, thread: u32, step: &str, status: &str, output: Value) {
        let layer = self.threads.get(&thread).map(|t| t.layer).unwrap_or(0);
        self.outputs.entry(layer).or_default().insert(
            step.to_owned(),
            StepResult {
                status: status.to_owned(),
                output,
            },
        );
    }

    fn finish(&mut self) {
        self.threads.clear();
        self.calls.clear();
        self.timers.clear();
        for t in self.tasks.values_mut() {
            t.open = false;
        }
    }

    fn derive_status(&self) -> Status {
        let busy = self.threads.values().any(|t| {
            matches!(
                t.waiting,
                Waiting::Ready | Waiting::Call { .. } | Waiting::Child { .. }
            )
        });
        if busy {
            Status::Running
        } else {
            Status::Waiting
        }
    }
}
