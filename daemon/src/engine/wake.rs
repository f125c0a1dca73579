//! Events from outside that wake a thread: a fired timer, a signal, a
//! finished sub-workflow.

use serde_json::{Value, json};

use super::call::request_call;
use super::exec::{cancel_timers, complete_step, fail_step, timeout_step};
use super::model::{CallOutcome, Record, StepError, TimerPurpose};
use super::state::Waiting;
use super::{Cx, clock, task};

pub fn timer_fired(cx: &mut Cx, timer: u32) {
    let Some(t) = cx.st.timers.get(&timer).cloned() else {
        return;
    }; // cancelled meanwhile
    cx.emit(Record::TimerFired { timer });
    match t.purpose {
        TimerPurpose::Wait { thread } => complete_step(
            cx,
            thread,
            json!({"waited_until": super::model::rfc3339(t.due)}),
            None,
        ),
        TimerPurpose::Retry { thread } => {
            let attempt = cx.st.threads.get(&thread).map(|t| t.attempt).unwrap_or(1) + 1;
            request_call(cx, thread, attempt);
        }
        TimerPurpose::Timeout { thread } => {
            let Some(th) = cx.st.threads.get(&thread).cloned() else {
                return;
            };
            match th.waiting {
                Waiting::Call { call } => cx.emit(Record::CallAnswered {
                    call,
                    outcome: CallOutcome::Err {
                        message: "timed out".into(),
                        retryable: false,
                        retry_after: None,
                    },
                }),
                Waiting::Timer { timer } => cx.emit(Record::TimerCancelled { timer }),
                _ => {}
            }
            let d = cx.plan.node(th.node).timeout.unwrap_or_default();
            timeout_step(cx, thread, format!("no answer within {d}"));
        }
        TimerPurpose::Reminder { task, periodic } => task::remind(cx, task, periodic),
        TimerPurpose::Escalation { task, rung } => task::escalate(cx, task, rung),
        TimerPurpose::Deadline { task } => task::deadline(cx, task),
        TimerPurpose::ClockWarning { clock, before_secs } => clock::warn(cx, &clock, before_secs),
        TimerPurpose::ClockDue { clock } => clock::breach(cx, &clock),
    }
}

pub fn signal(cx: &mut Cx, name: String, data: Value) {
    cx.emit(Record::SignalReceived {
        name: name.clone(),
        data: data.clone(),
    });
    let waiting = cx
        .st
        .threads
        .iter()
        .find(|(_, t)| t.waiting == Waiting::Signal { name: name.clone() })
        .map(|(id, _)| *id);
    if let Some(thread) = waiting {
        cx.emit(Record::SignalConsumed { name, thread });
        cancel_timers(cx, |p| *p == TimerPurpose::Timeout { thread });
        complete_step(cx, thread, data, None);
    }
}

pub fn child_finished(cx: &mut Cx, child: &str, result: Result<Value, StepError>) {
    let waiting = cx
        .st
        .threads
        .iter()
        .find(|(_, t)| {
            t.waiting
                == Waiting::Child {
                    child: child.to_owned(),
                }
        })
        .map(|(id, _)| *id);
    let Some(thread) = waiting else { return };
    cancel_timers(cx, |p| *p == TimerPurpose::Timeout { thread });
    match result {
        Ok(v) => complete_step(cx, thread, v, None),
        Err(e) => fail_step(
            cx,
            thread,
            StepError::new("child", format!("sub-workflow failed: {}", e.message)),
        ),
    }
}
