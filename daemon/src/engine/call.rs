//! Connector calls: requesting one (with its idempotency key and timeout),
//! and what an answer does (complete, retry with backoff, or fail).

use super::Cx;
use super::context;
use super::exec::{cancel_timers, complete_step, fail_step, set_timer};
use super::model::{CallOutcome, Record, StepError, TimerPurpose};
use crate::workflow::plan::NodeKind;

/// `instance/step/iteration-path/visit`: the same for every attempt of one
/// visit of a step, different for the next visit (a send-back loop).
fn idempotency_key(cx: &Cx, thread: u32, step: &str) -> String {
    let path = cx.st.iteration_path(thread);
    let visit = cx.st.threads.get(&thread).map(|t| t.visit).unwrap_or(1);
    format!("{}/{}/{}/{}", cx.st.id, step, path, visit)
}

pub(super) fn request_call(cx: &mut Cx, thread: u32, attempt: u32) {
    let node_id = cx.st.threads[&thread].node;
    let node = cx.plan.node(node_id);
    let NodeKind::Call { role, action, args } = &node.kind else {
        return;
    };
    let args = match context::value(cx, Some(thread), args) {
        Ok(a) => a,
        Err(e) => {
            return fail_step(
                cx,
                thread,
                StepError::new("template", format!("arguments of {role}.{action}: {e}")),
            );
        }
    };
    if attempt == 1
        && let Some(t) = node.timeout
    {
        set_timer(
            cx,
            cx.now + t.as_millis() as i64,
            TimerPurpose::Timeout { thread },
        );
    }
    let call = cx.st.peek_id();
    let idempotency_key = idempotency_key(cx, thread, &node.step);
    cx.emit(Record::CallRequested {
        thread,
        call,
        node: node_id,
        attempt,
        idempotency_key,
        role: role.clone(),
        action: action.clone(),
        args,
    });
}

pub fn call_answered(cx: &mut Cx, call: u32, outcome: CallOutcome) {
    let Some(c) = cx.st.calls.get(&call).cloned() else {
        return;
    }; // stale: timed out or answered
    cx.emit(Record::CallAnswered {
        call,
        outcome: outcome.clone(),
    });
    let thread = c.thread;
    match outcome {
        CallOutcome::Ok(output) => {
            cancel_timers(cx, |p| *p == TimerPurpose::Timeout { thread });
            complete_step(cx, thread, output, None);
        }
        CallOutcome::Err {
            message,
            retryable,
            retry_after,
        } => {
            let node = cx.plan.node(c.node);
            let attempts = node.retry.as_ref().map(|r| r.attempts).unwrap_or(1);
            if retryable && c.attempt < attempts {
                let retry = node.retry.clone().unwrap_or_default();
                let delay = super::backoff_ms(&cx.st.id, &node.step, c.attempt, &retry);
                let delay = delay.max(retry_after.unwrap_or(0) as i64 * 1000);
                set_timer(cx, cx.now + delay, TimerPurpose::Retry { thread });
            } else {
                cancel_timers(cx, |p| *p == TimerPurpose::Timeout { thread });
                let mut error = StepError::new("connector", message);
                error.retryable = retryable;
                if retryable {
                    error.message =
                        format!("{} (gave up after {} attempts)", error.message, c.attempt);
                }
                fail_step(cx, thread, error);
            }
        }
    }
}
