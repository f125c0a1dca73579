//! The engine core: a pure state machine over an instance's history.
//!
//! `(instance, event, now) → (records, actions)`. No tokio, no wasmtime, no
//! store and no wall clock in here: the runtime persists the records, then
//! performs the actions, and feeds back what happens as events. Replaying an
//! instance's records with [`state::Instance::apply`] rebuilds its state.
//!
//! - [`model`]: ids, records, events, actions.
//! - [`state`]: the instance and the fold.
//! - `exec`: running a thread's current step, kind by kind.
//! - `task`: human tasks (approvals): assignees, votes, quorum, reminders,
//!   escalation, deadlines.
//! - `clock`: statutory clocks.
//! - `context`: the data templates see.
//! - [`input`]: checking a start's input against the plan.
//! - [`sim`]: a virtual-time driver for tests and `vakt test`.

mod call;
mod clock;
mod context;
mod exec;
pub mod input;
pub mod model;
pub mod sim;
pub mod state;
mod task;
mod wake;

use crate::workflow::plan::Plan;

pub use model::{Action, CallOutcome, Event, Record, Rejection, StepError, Ts};
pub use state::{Instance, Status};
pub use task::{check_decision, is_assignee};

/// The most steps one transition may run before it yields: a bound on
/// data-driven work (a huge foreach), not on loops, which must pause.
const MAX_STEPS_PER_TRANSITION: usize = 1_000_000;

/// What one event did: the records to persist, then the actions to perform.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Transition {
    pub records: Vec<Record>,
    pub actions: Vec<Action>,
}

/// Starts an instance. The input must already have passed [`input::check`].
pub fn start(
    plan: &Plan,
    instance: &mut Instance,
    input: serde_json::Value,
    started_by: &str,
    parent: Option<String>,
    now: Ts,
) -> Transition {
    let mut cx = Cx::new(plan, instance, now);
    cx.emit(Record::Started {
        workflow: plan.id.clone(),
        hash: plan.hash.clone(),
        input,
        started_by: started_by.to_owned(),
        at: now,
        parent,
    });
    clock::start_all(&mut cx);
    if cx.st.status.is_final() {
        // A clock could not start (its anchor is missing): nothing runs.
        return cx.finish();
    }
    match plan.entry {
        Some(entry) => {
            let t = cx.st.peek_id();
            cx.emit(Record::ThreadStarted {
                thread: t,
                parent: None,
                kind: model::ThreadKind::Root,
                node: entry,
                locals: Default::default(),
                own_layer: false,
            });
        }
        None => cx.complete(None),
    }
    cx.run();
    cx.finish()
}

/// Applies an event to an instance.
pub fn handle(
    plan: &Plan,
    instance: &mut Instance,
    event: Event,
    now: Ts,
) -> Result<Transition, Rejection> {
    if instance.status.is_final() {
        return Err(Rejection::Finished);
    }
    let mut cx = Cx::new(plan, instance, now);
    match event {
        Event::CallAnswered { call, outcome } => call::call_answered(&mut cx, call, outcome),
        Event::TimerFired { timer } => wake::timer_fired(&mut cx, timer),
        Event::Decide {
            task,
            by,
            roles,
            option,
            comment,
        } => task::decide(&mut cx, task, &by, &roles, &option, comment)?,
        Event::Delegate {
            task,
            by,
            roles,
            to,
            note,
        } => task::delegate(&mut cx, task, &by, &roles, &to, &note)?,
        Event::Signal { name, data } => wake::signal(&mut cx, name, data),
        Event::ChildFinished { child, result } => wake::child_finished(&mut cx, &child, result),
        Event::Cancel { by, reason } => cx.emit(Record::Cancelled { by, reason }),
    }
    cx.run();
    Ok(cx.finish())
}

/// Rebuilds an instance from its history.
pub fn replay<'a>(id: &str, records: impl IntoIterator<Item = (&'a Record, Ts)>) -> Instance {
    let mut st = Instance {
        id: id.to_owned(),
        ..Default::default()
    };
    for (r, at) in records {
        st.apply(r, at);
    }
    st
}

/// One transition in progress.
pub(crate) struct Cx<'a> {
    pub plan: &'a Plan,
    pub st: &'a mut Instance,
    pub now: Ts,
    out: Transition,
    /// The template context last built: `(thread, records applied, value)`.
    /// Reused while no record has changed the state (a step renders its
    /// title, description, assignees and deadline from one context).
    pub(crate) context: std::cell::RefCell<Option<(Option<u32>, u64, minijinja::Value)>>,
}

impl<'a> Cx<'a> {
    fn new(plan: &'a Plan, st: &'a mut Instance, now: Ts) -> Self {
        Cx {
            plan,
            st,
            now,
            out: Transition::default(),
            context: std::cell::RefCell::new(None),
        }
    }

    /// Applies a record, keeps it, and derives its actions.
    pub fn emit(&mut self, record: Record) {
        self.st.apply(&record, self.now);
        match &record {
            Record::CallRequested {
                call,
                role,
                action,
                args,
                idempotency_key,
                attempt,
                thread,
                ..
            } => {
                let deadline = self
                    .st
                    .timers
                    .values()
                    .find(|t| t.purpose == model::TimerPurpose::Timeout { thread: *thread })
                    .map(|t| t.due);
                self.out.actions.push(Action::Call {
                    call: *call,
                    role: role.clone(),
                    action: action.clone(),
                    args: args.clone(),
                    idempotency_key: idempotency_key.clone(),
                    attempt: *attempt,
                    deadline,
                });
            }
            Record::TimerSet { timer, due, .. } => self.out.actions.push(Action::Timer {
                timer: *timer,
                due: *due,
            }),
            Record::TaskOpened {
                task, assignees, ..
            } => self.out.actions.push(Action::Notify {
                task: *task,
                to: assignees.clone(),
                reason: model::NotifyReason::Opened,
            }),
            Record::TaskReminded { task, to, .. } if !to.is_empty() => {
                self.out.actions.push(Action::Notify {
                    task: *task,
                    to: to.clone(),
                    reason: model::NotifyReason::Reminder,
                })
            }
            Record::TaskDelegated { task, to, .. } => self.out.actions.push(Action::Notify {
                task: *task,
                to: vec![to.clone()],
                reason: model::NotifyReason::Delegated,
            }),
            Record::Completed { output } => {
                if let Some(parent) = self.st.parent.clone() {
                    self.out.actions.push(Action::Finished {
                        parent,
                        result: Ok(output.clone()),
                    });
                }
            }
            Record::Failed { error } => {
                if let Some(parent) = self.st.parent.clone() {
                    self.out.actions.push(Action::Finished {
                        parent,
                        result: Err(error.clone()),
                    });
                }
            }
            _ => {}
        }
        self.out.records.push(record);
    }

    pub fn push_action(&mut self, action: Action) {
        self.out.actions.push(action);
    }

    /// Runs ready threads until every thread waits or the instance ends.
    fn run(&mut self) {
        let mut budget = MAX_STEPS_PER_TRANSITION;
        while !self.st.status.is_final() && budget > 0 {
            let ready = self
                .st
                .threads
                .iter()
                .find(|(_, t)| t.waiting == state::Waiting::Ready)
                .map(|(id, _)| *id);
            let Some(thread) = ready else { break };
            exec::run_step(self, thread);
            budget -= 1;
        }
        if budget == 0 && !self.st.status.is_final() {
            self.emit(Record::Failed {
                error: StepError::new(
                    "limit",
                    "the instance ran a million steps without pausing; it was stopped",
                ),
            });
        }
    }

    /// Ends the instance as completed, rendering the workflow's output.
    pub fn complete(&mut self, message: Option<String>) {
        let mut output = match &self.plan.output {
            Some(o) => match context::value(self, None, o) {
                Ok(v) => v,
                Err(e) => {
                    self.emit(Record::Failed {
                        error: StepError::new("template", format!("workflow output: {e}")),
                    });
                    return;
                }
            },
            None => serde_json::Value::Object(Default::default()),
        };
        if let (Some(m), serde_json::Value::Object(map)) = (message, &mut output) {
            map.insert("message".into(), serde_json::Value::String(m));
        }
        self.emit(Record::Completed { output });
    }

    fn finish(self) -> Transition {
        self.out
    }
}

/// The wait before attempt `attempt + 1`: exponential from `backoff`, capped
/// at `max_backoff`, scaled by a jitter in [0.5, 1.0] derived from the
/// instance, the step and the attempt, so that a replay computes the same
/// schedule and retries of many instances do not fire together.
pub fn backoff_ms(
    instance: &str,
    step: &str,
    attempt: u32,
    retry: &crate::workflow::plan::Retry,
) -> i64 {
    use sha2::{Digest, Sha256};
    let base = retry.backoff.as_millis().max(1);
    let exp = base.saturating_mul(1u64 << (attempt.saturating_sub(1)).min(30));
    let capped = exp.min(retry.max_backoff.as_millis().max(base));
    let h = Sha256::digest(format!("{instance}/{step}/{attempt}").as_bytes());
    let frac = u16::from_be_bytes([h[0], h[1]]) as f64 / u16::MAX as f64;
    (capped as f64 * (0.5 + 0.5 * frac)) as i64
}
#[cfg(test)]
mod tests;
