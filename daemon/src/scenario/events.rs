//! The events of a scenario: checked (exactly one kind each, known steps,
//! options and signals, in time order) and placed on the virtual clock,
//! `at` being a duration after the start or an instant.

use super::check::Checker;
use super::format::{self, EventDef, Expect};
use crate::engine::model::{Ts, parse_instant};
use crate::workflow::duration::Duration;
use crate::workflow::span::{Loc, Sp};

#[derive(Debug)]
pub struct Event {
    pub at: Ts,
    pub loc: Loc,
    pub kind: EventKind,
    pub refused: Option<String>,
}

#[derive(Debug)]
pub enum EventKind {
    Decide(format::Decide),
    Delegate(format::Delegate),
    Signal(format::Signal),
    Cancel(format::Cancel),
    Expect(Box<Sp<Expect>>),
}

pub fn check(
    ck: &mut Checker,
    list: Vec<Sp<EventDef>>,
    start: Ts,
    start_known: bool,
) -> Vec<Event> {
    let mut out = Vec::new();
    let mut last: Option<(Ts, Loc)> = None;
    for ev in list {
        let loc = ev.loc;
        let e = ev.value;
        let at = time(ck, &e.at, start, start_known);
        if let (Some(t), Some((prev, prev_loc))) = (at, last)
            && t < prev
        {
            ck.error(
                e.at.loc,
                format!(
                    "`{}` is earlier than the event before it (line {}): list events in time order",
                    e.at.value, prev_loc.line
                ),
            );
        }
        if let Some(t) = at {
            last = Some((t, e.at.loc));
        }
        let mut kinds = Vec::new();
        if let Some(d) = e.decide {
            ck.decide(&d);
            kinds.push(("decide", EventKind::Decide(d.value)));
        }
        if let Some(d) = e.delegate {
            ck.delegate(&d);
            kinds.push(("delegate", EventKind::Delegate(d.value)));
        }
        if let Some(s) = e.signal {
            ck.signal(&s.value.name);
            kinds.push(("signal", EventKind::Signal(s.value)));
        }
        if let Some(c) = e.cancel {
            kinds.push(("cancel", EventKind::Cancel(c.value)));
        }
        if let Some(x) = e.expect {
            ck.expect(&x);
            kinds.push(("expect", EventKind::Expect(Box::new(x))));
        }
        if kinds.len() != 1 {
            let what = if kinds.is_empty() {
                "nothing happens".to_owned()
            } else {
                format!(
                    "it has {}",
                    kinds
                        .iter()
                        .map(|(k, _)| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                )
            };
            ck.error(loc, format!("an event needs exactly one of `decide`, `delegate`, `signal`, `cancel` or `expect`: {what}; split it into one event each"));
            continue;
        }
        let (name, kind) = kinds.pop().expect("one kind");
        if let Some(r) = &e.refused
            && name == "expect"
        {
            ck.error(
                r.loc,
                "`refused` goes with `decide`, `delegate`, `signal` or `cancel`, not with `expect`",
            );
        }
        out.push(Event {
            at: at.unwrap_or(start),
            loc,
            kind,
            refused: e.refused.map(|r| r.value),
        });
    }
    out
}

fn time(ck: &mut Checker, at: &Sp<String>, start: Ts, start_known: bool) -> Option<Ts> {
    if let Ok(d) = Duration::parse(&at.value) {
        return Some(start + d.as_millis() as i64);
    }
    match parse_instant(&at.value) {
        Some(t) if start_known && t < start => {
            ck.error(at.loc, format!("`{}` is before the scenario's start: give a later instant, or a duration after the start such as `30m`", at.value));
            None
        }
        Some(t) => Some(t),
        None => {
            ck.error(at.loc, format!("`{}` is neither a duration after the start (`30m`, `2d 4h`) nor an instant (`2026-03-02T10:00:00+01:00`)", at.value));
            None
        }
    }
}
