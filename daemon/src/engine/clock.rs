//! Statutory clocks: started at the instance's start from an anchor in the
//! data (the moment of discovery, not the moment the workflow started),
//! warned before the deadline, breached when it passes, met when the step
//! that satisfies them completes.

use serde_json::json;

use super::exec::{instant_of, set_timer};
use super::model::{Record, StepError, ThreadKind, TimerPurpose, rfc3339};
use super::{Cx, context};
use crate::workflow::plan::NodeId;

/// Starts every clock whose `when` holds.
pub fn start_all(cx: &mut Cx) {
    for c in &cx.plan.clocks {
        if let Some(when) = &c.when {
            match context::truthy(cx, None, when) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    cx.emit(Record::Failed {
                        error: StepError::new(
                            "expression",
                            format!("clock `{}` when: {e}", c.name),
                        ),
                    });
                    return;
                }
            }
        }
        let anchor = match context::eval(cx, None, &c.anchor).map(|v| instant_of(&v)) {
            Ok(Some(a)) => a,
            Ok(None) => {
                cx.emit(Record::Failed {
                    error: StepError::new(
                        "input",
                        format!(
                            "clock `{}`: its anchor `{}` is not an instant",
                            c.name,
                            c.anchor.source()
                        ),
                    ),
                });
                return;
            }
            Err(e) => {
                cx.emit(Record::Failed {
                    error: StepError::new("expression", format!("clock `{}` anchor: {e}", c.name)),
                });
                return;
            }
        };
        let due = anchor + c.duration.as_millis() as i64;
        cx.emit(Record::ClockStarted {
            clock: c.name.clone(),
            anchor,
            due,
        });
        for w in &c.warn_before {
            set_timer(
                cx,
                due - w.as_millis() as i64,
                TimerPurpose::ClockWarning {
                    clock: c.name.clone(),
                    before_secs: w.as_secs(),
                },
            );
        }
        set_timer(
            cx,
            due,
            TimerPurpose::ClockDue {
                clock: c.name.clone(),
            },
        );
    }
}

fn running(cx: &Cx, clock: &str) -> bool {
    cx.st
        .clocks
        .get(clock)
        .is_some_and(|c| c.met_at.is_none() && !c.breached)
}

pub fn warn(cx: &mut Cx, clock: &str, before_secs: u64) {
    if !running(cx, clock) {
        return;
    }
    cx.emit(Record::ClockWarned {
        clock: clock.to_owned(),
        before_secs,
    });
    let handler = cx
        .plan
        .clocks
        .iter()
        .find(|c| c.name == clock)
        .and_then(|c| c.on_warning);
    spawn_handler(cx, clock, handler, Some(before_secs));
}

pub fn breach(cx: &mut Cx, clock: &str) {
    if !running(cx, clock) {
        return;
    }
    cx.emit(Record::ClockBreached {
        clock: clock.to_owned(),
    });
    let handler = cx
        .plan
        .clocks
        .iter()
        .find(|c| c.name == clock)
        .and_then(|c| c.on_breach);
    spawn_handler(cx, clock, handler, None);
}

fn spawn_handler(cx: &mut Cx, clock: &str, entry: Option<NodeId>, before_secs: Option<u64>) {
    let Some(entry) = entry else { return };
    let Some(def) = cx.plan.clocks.iter().find(|c| c.name == clock) else {
        return;
    };
    let Some(state) = cx.st.clocks.get(clock) else {
        return;
    };
    let mut locals = serde_json::Map::new();
    locals.insert(
        "clock".into(),
        json!({
            "name": clock,
            "title": def.title,
            "due": rfc3339(state.due),
            "anchor": rfc3339(state.anchor),
            "before_secs": before_secs,
            "breached": state.breached,
        }),
    );
    let thread = cx.st.peek_id();
    cx.emit(Record::ThreadStarted {
        thread,
        parent: None,
        kind: ThreadKind::ClockHandler {
            clock: clock.to_owned(),
        },
        node: entry,
        locals,
        own_layer: false,
    });
}

/// A step completed: the clocks it meets stop, and their timers go.
pub fn step_completed(cx: &mut Cx, node: NodeId) {
    let met: Vec<String> = cx
        .plan
        .clocks
        .iter()
        .filter(|c| c.stopped_by == Some(node))
        .map(|c| c.name.clone())
        .filter(|name| cx.st.clocks.get(name).is_some_and(|c| c.met_at.is_none()))
        .collect();
    for clock in met {
        cx.emit(Record::ClockMet {
            clock: clock.clone(),
            at: cx.now,
        });
        super::exec::cancel_timers(cx, |p| match p {
            TimerPurpose::ClockWarning { clock: c, .. } | TimerPurpose::ClockDue { clock: c } => {
                *c == clock
            }
            _ => false,
        });
    }
}
