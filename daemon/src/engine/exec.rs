//! Running steps: what each kind does when a thread reaches it, and how
//! answers, timers and signals move threads on.

use serde_json::{Value, json};

use super::call::request_call;
use super::model::{Record, StepError, ThreadKind, TimerPurpose, Ts};
use super::{Cx, clock, context, task};
use crate::workflow::plan::{Jump, NodeId, NodeKind, Wait};

/// Runs the step a ready thread stands at.
pub fn run_step(cx: &mut Cx, thread: u32) {
    let node_id = cx.st.threads[&thread].node;
    let plan = cx.plan;
    let node = plan.node(node_id);
    let step = node.step.clone();

    if let Some(when) = &node.when {
        match context::truthy(cx, Some(thread), when) {
            Ok(true) => {}
            Ok(false) => {
                cx.emit(Record::StepSkipped {
                    thread,
                    node: node_id,
                    step,
                    next: node.next,
                });
                if node.next.is_none() {
                    end_thread(cx, thread);
                }
                return;
            }
            Err(e) => {
                cx.emit(Record::StepEntered {
                    thread,
                    node: node_id,
                    step,
                });
                return fail_step(
                    cx,
                    thread,
                    StepError::new("expression", format!("`when`: {e}")),
                );
            }
        }
    }
    cx.emit(Record::StepEntered {
        thread,
        node: node_id,
        step: step.clone(),
    });

    match &node.kind {
        NodeKind::Call { .. } => request_call(cx, thread, 1),
        NodeKind::Approval(a) => task::open(cx, thread, node_id, a),
        NodeKind::Wait(w) => match w {
            Wait::For(d) => set_timer(
                cx,
                cx.now + d.as_millis() as i64,
                TimerPurpose::Wait { thread },
            ),
            Wait::Until(expr) => {
                match context::eval(cx, Some(thread), expr).map(|v| instant_of(&v)) {
                    Ok(Some(due)) if due <= cx.now => complete_step(
                        cx,
                        thread,
                        json!({"waited_until": super::model::rfc3339(due)}),
                        None,
                    ),
                    Ok(Some(due)) => set_timer(cx, due, TimerPurpose::Wait { thread }),
                    Ok(None) => fail_step(
                        cx,
                        thread,
                        StepError::new(
                            "expression",
                            "`until` did not give an instant (RFC 3339 text)",
                        ),
                    ),
                    Err(e) => fail_step(
                        cx,
                        thread,
                        StepError::new("expression", format!("`until`: {e}")),
                    ),
                }
            }
            Wait::Signal(name) => {
                if let Some(data) = cx.st.signals.get(name).and_then(|q| q.front()).cloned() {
                    cx.emit(Record::SignalConsumed {
                        name: name.clone(),
                        thread,
                    });
                    complete_step(cx, thread, data, None);
                } else {
                    cx.emit(Record::WaitingForSignal {
                        thread,
                        name: name.clone(),
                    });
                    if let Some(t) = node.timeout {
                        set_timer(
                            cx,
                            cx.now + t.as_millis() as i64,
                            TimerPurpose::Timeout { thread },
                        );
                    }
                }
            }
        },
        NodeKind::If {
            cond,
            then,
            otherwise,
        } => match context::truthy(cx, Some(thread), cond) {
            Ok(b) => complete_step(
                cx,
                thread,
                Value::Bool(b),
                Some(if b { *then } else { *otherwise }),
            ),
            Err(e) => fail_step(
                cx,
                thread,
                StepError::new("expression", format!("`if`: {e}")),
            ),
        },
        NodeKind::Switch { on, cases, default } => match context::eval(cx, Some(thread), on) {
            Ok(v) => {
                let key = match &v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let target = cases
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, t)| *t)
                    .unwrap_or(*default);
                complete_step(cx, thread, Value::String(key), Some(target));
            }
            Err(e) => fail_step(
                cx,
                thread,
                StepError::new("expression", format!("`switch`: {e}")),
            ),
        },
        NodeKind::Parallel { branches } => {
            cx.emit(Record::JoinStarted {
                thread,
                items: Vec::new(),
            });
            for (name, entry) in branches {
                if let Some(entry) = entry {
                    let t = cx.st.peek_id();
                    cx.emit(Record::ThreadStarted {
                        thread: t,
                        parent: Some(thread),
                        kind: ThreadKind::Branch { name: name.clone() },
                        node: *entry,
                        locals: Default::default(),
                        own_layer: false,
                    });
                }
            }
            check_join(cx, thread);
        }
        NodeKind::Foreach { items, .. } => match context::eval(cx, Some(thread), items) {
            Ok(Value::Array(list)) => {
                cx.emit(Record::JoinStarted {
                    thread,
                    items: list,
                });
                check_join(cx, thread);
            }
            Ok(Value::Null) => complete_step(cx, thread, json!([]), None),
            Ok(other) => fail_step(
                cx,
                thread,
                StepError::new(
                    "expression",
                    format!("`foreach` needs a list, got {}", kind_of(&other)),
                ),
            ),
            Err(e) => fail_step(
                cx,
                thread,
                StepError::new("expression", format!("`foreach`: {e}")),
            ),
        },
        NodeKind::Workflow { id, input } => match context::value(cx, Some(thread), input) {
            Ok(input) => {
                let child = format!("{}.{}", cx.st.id, cx.st.peek_id());
                cx.emit(Record::ChildStarted {
                    thread,
                    child: child.clone(),
                    workflow: id.clone(),
                });
                cx.push_action(super::Action::StartChild {
                    child,
                    workflow: id.clone(),
                    input,
                });
                if let Some(t) = node.timeout {
                    set_timer(
                        cx,
                        cx.now + t.as_millis() as i64,
                        TimerPurpose::Timeout { thread },
                    );
                }
            }
            Err(e) => fail_step(
                cx,
                thread,
                StepError::new("template", format!("sub-workflow input: {e}")),
            ),
        },
        NodeKind::Set { vars } => {
            let mut out = serde_json::Map::new();
            for (k, v) in vars {
                match context::value(cx, Some(thread), v) {
                    Ok(v) => {
                        out.insert(k.clone(), v);
                    }
                    Err(e) => {
                        return fail_step(
                            cx,
                            thread,
                            StepError::new("template", format!("`set.{k}`: {e}")),
                        );
                    }
                }
            }
            cx.emit(Record::VarsSet { vars: out.clone() });
            complete_step(cx, thread, Value::Object(out), None);
        }
        NodeKind::Fail { message } => {
            let msg = context::render(cx, Some(thread), message)
                .unwrap_or_else(|e| format!("(message failed to render: {e})"));
            fail_instance(cx, thread, node_id, step, StepError::new("fail", msg));
        }
        NodeKind::Succeed { message } => {
            let msg = message.as_ref().map(|m| {
                context::render(cx, Some(thread), m)
                    .unwrap_or_else(|e| format!("(message failed to render: {e})"))
            });
            cx.emit(Record::StepCompleted {
                thread,
                node: node_id,
                step,
                output: json!({"message": msg}),
                next: None,
            });
            cx.complete(msg);
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// An instant from an expression's value: RFC 3339 text or milliseconds.
pub fn instant_of(v: &Value) -> Option<Ts> {
    match v {
        Value::String(s) => super::model::parse_instant(s),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

pub fn set_timer(cx: &mut Cx, due: Ts, purpose: TimerPurpose) {
    let timer = cx.st.peek_id();
    cx.emit(Record::TimerSet {
        timer,
        due,
        purpose,
    });
}

/// Cancels the timers matching `pred`.
pub fn cancel_timers(cx: &mut Cx, pred: impl Fn(&TimerPurpose) -> bool) {
    let ids: Vec<u32> = cx
        .st
        .timers
        .iter()
        .filter(|(_, t)| pred(&t.purpose))
        .map(|(id, _)| *id)
        .collect();
    for timer in ids {
        cx.emit(Record::TimerCancelled { timer });
    }
}

/// Completes the thread's current step; `next` overrides the node's `next`.
pub fn complete_step(cx: &mut Cx, thread: u32, output: Value, next: Option<Option<NodeId>>) {
    let Some(th) = cx.st.threads.get(&thread) else {
        return;
    };
    let node_id = th.node;
    cancel_step_timers(cx, thread);
    let node = cx.plan.node(node_id);
    let next = next.unwrap_or(node.next);
    let step = node.step.clone();
    cx.emit(Record::StepCompleted {
        thread,
        node: node_id,
        step: step.clone(),
        output,
        next,
    });
    clock::step_completed(cx, node_id);
    if next.is_none() && !cx.st.status.is_final() {
        end_thread(cx, thread);
    }
}

/// A step that ends takes its timers with it (a call's timeout, a pending
/// retry), so that none of them can reach the thread's next step.
fn cancel_step_timers(cx: &mut Cx, thread: u32) {
    cancel_timers(
        cx,
        |p| matches!(p, TimerPurpose::Timeout { thread: t } | TimerPurpose::Retry { thread: t } | TimerPurpose::Wait { thread: t } if *t == thread),
    );
}

fn handle_with(cx: &mut Cx, thread: u32, error: StepError, jump: Option<Jump>) {
    let Some(th) = cx.st.threads.get(&thread) else {
        return;
    };
    let node_id = th.node;
    cancel_step_timers(cx, thread);
    let step = cx.plan.node(node_id).step.clone();
    match jump {
        Some(j) => {
            cx.emit(Record::StepFailed {
                thread,
                node: node_id,
                step,
                error,
                handler: j.to,
                handled: true,
            });
            if j.to.is_none() {
                end_thread(cx, thread);
            }
        }
        None => {
            let mut error = error;
            error.message = format!("step `{step}`: {}", error.message);
            fail_instance(cx, thread, node_id, step, error);
        }
    }
}

/// Records an unhandled step failure and fails the instance with it.
fn fail_instance(cx: &mut Cx, thread: u32, node: NodeId, step: String, error: StepError) {
    cx.emit(Record::StepFailed {
        thread,
        node,
        step,
        error: error.clone(),
        handler: None,
        handled: false,
    });
    cx.emit(Record::Failed { error });
}

/// Fails the thread's current step: its `on_error` handler, or the instance.
pub fn fail_step(cx: &mut Cx, thread: u32, error: StepError) {
    let Some(th) = cx.st.threads.get(&thread) else {
        return;
    };
    let jump = cx.plan.node(th.node).on_error;
    handle_with(cx, thread, error, jump);
}

/// Times the step out: its `on_timeout` handler, else `on_error`, else the instance fails.
pub fn timeout_step(cx: &mut Cx, thread: u32, message: String) {
    let Some(th) = cx.st.threads.get(&thread) else {
        return;
    };
    let node = cx.plan.node(th.node);
    let jump = node.on_timeout.or(node.on_error);
    handle_with(cx, thread, StepError::new("timeout", message), jump);
}

/// A thread reached the end of its flow.
pub fn end_thread(cx: &mut Cx, thread: u32) {
    let Some(th) = cx.st.threads.get(&thread).cloned() else {
        return;
    };
    cx.emit(Record::ThreadEnded { thread });
    match th.parent {
        Some(parent) => check_join(cx, parent),
        // A top-level thread (the main flow or a clock handler): the instance
        // completes when none is left.
        None => {
            if cx.st.threads.is_empty() {
                cx.complete(None);
            }
        }
    }
}

/// Starts more foreach iterations, or completes the join when all are done.
fn check_join(cx: &mut Cx, thread: u32) {
    let Some(th) = cx.st.threads.get(&thread) else {
        return;
    };
    let Some(join) = th.join.clone() else { return };
    let node = cx.plan.node(th.node);
    if let NodeKind::Foreach {
        var,
        concurrency,
        body,
        ..
    } = &node.kind
    {
        let free = concurrency.saturating_sub(join.running) as usize;
        for (index, item) in join.items.iter().take(free) {
            let Some(body) = body else { break };
            let t = cx.st.peek_id();
            let mut locals = serde_json::Map::new();
            locals.insert(var.clone(), item.clone());
            locals.insert("index".into(), json!(index));
            cx.emit(Record::ThreadStarted {
                thread: t,
                parent: Some(thread),
                kind: ThreadKind::Iteration { index: *index },
                node: *body,
                locals,
                own_layer: true,
            });
        }
    }
    let Some(join) = cx.st.join_of(thread).cloned() else {
        return;
    };
    if join.running == 0 && join.items.is_empty() {
        let output = match &node.kind {
            NodeKind::Foreach { .. } => Value::Array(join.results.into_values().collect()),
            _ => Value::Object(join.branches.into_iter().collect()),
        };
        complete_step(cx, thread, output, None);
    }
}
