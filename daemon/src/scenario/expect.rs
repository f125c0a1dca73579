//! Checking expectations against a run: each failed expectation becomes a
//! [`Failure`] at the expectation's `line:column`, saying what was expected,
//! what happened instead, and enough of the run to see why.

use serde_json::Value;

use super::format::Expect;
use super::run::{offset, short};
use crate::engine::model::{NotifyReason, Record, Ts};
use crate::engine::sim::Sim;
use crate::engine::state::{Instance, Waiting};
use crate::workflow::span::{Loc, Sp};

/// One expectation that did not hold (or an event that could not happen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub loc: Loc,
    pub message: String,
}

impl Failure {
    pub fn new(loc: Loc, message: impl Into<String>) -> Self {
        Failure {
            loc,
            message: message.into(),
        }
    }
}

/// The run as the expectations see it.
pub struct View<'a> {
    pub sim: &'a Sim,
    /// The instance the scenario started.
    pub root: &'a str,
    pub start: Ts,
}

impl View<'_> {
    pub(super) fn inst(&self) -> &Instance {
        self.sim.instance(self.root)
    }

    pub(super) fn history(&self) -> &[(Record, Ts)] {
        self.sim
            .histories
            .get(self.root)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub(super) fn step_of_task(&self, instance: &str, task: u32) -> Option<&str> {
        let inst = self.sim.instances.get(instance)?;
        let plan = self.sim.plans.get(&inst.workflow)?;
        inst.tasks
            .get(&task)
            .map(|t| plan.node(t.node).step.as_str())
    }
}

/// Whether `actual` contains everything `expected` gives (maps: the keys
/// given; lists: the same length, item by item; numbers: by value).
pub fn matches(expected: &Value, actual: &Value) -> bool {
    let mut out = Vec::new();
    diff(expected, actual, "", &mut out);
    out.is_empty()
}

/// The places where `actual` does not contain `expected`, one line each.
pub fn diff(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    let at = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) => diff(ev, av, &at(k), out),
                    None if ev.is_null() => {}
                    None => out.push(format!(
                        "`{}`: expected {}, but it is not there",
                        at(k),
                        short(ev)
                    )),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                diff(ev, av, &format!("{path}[{i}]"), out);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        (e, a) if e == a => {}
        (e, a) => out.push(format!(
            "`{}`: expected {}, got {}",
            if path.is_empty() { "(the value)" } else { path },
            short(e),
            short(a)
        )),
    }
}

/// Whether some text in a value contains `needle`.
pub(super) fn mentions(v: &Value, needle: &str) -> bool {
    match v {
        Value::String(s) => s.contains(needle),
        Value::Array(a) => a.iter().any(|x| mentions(x, needle)),
        Value::Object(m) => m.values().any(|x| mentions(x, needle)),
        _ => false,
    }
}

/// What the instance waits on, in words.
pub fn waiting_on(sim: &Sim, root: &str) -> String {
    let inst = sim.instance(root);
    let plan = &sim.plans[&inst.workflow];
    let mut parts = Vec::new();
    for t in inst.threads.values() {
        match &t.waiting {
            Waiting::Task { task } => {
                if let Some(x) = inst.tasks.get(task) {
                    parts.push(format!(
                        "the task of step `{}` (assigned to {})",
                        plan.node(x.node).step,
                        x.assignees.join(", ")
                    ));
                }
            }
            Waiting::Signal { name } => parts.push(format!("signal `{name}`")),
            Waiting::Timer { timer } => {
                if let Some(x) = inst.timers.get(timer) {
                    parts.push(format!(
                        "a timer of step `{}` due at {}",
                        plan.node(t.node).step,
                        offset(x.due - inst.started_at)
                    ));
                }
            }
            Waiting::Call { .. } => {
                parts.push(format!("a call of step `{}`", plan.node(t.node).step))
            }
            Waiting::Child { child } => parts.push(format!("sub-workflow {child}")),
            Waiting::Ready | Waiting::Join => {}
        }
    }
    if parts.is_empty() {
        "it waits on nothing".to_owned()
    } else {
        format!("it waits on {}", parts.join(", "))
    }
}

/// `a, b ×3, c`: a list with repeats folded.
fn folded<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out: Vec<(String, usize)> = Vec::new();
    for i in items {
        match out.last_mut() {
            Some((last, n)) if last == i => *n += 1,
            _ => out.push((i.to_owned(), 1)),
        }
    }
    if out.is_empty() {
        return "none".to_owned();
    }
    out.into_iter()
        .map(|(s, n)| if n > 1 { format!("{s} ×{n}") } else { s })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks an in-order subsequence; returns the failure message of the first miss.
fn subsequence(expected: &[Sp<String>], actual: &[&str], what: &str) -> Option<(Loc, String)> {
    let mut i = 0;
    let mut prev: Option<&str> = None;
    for s in expected {
        match actual[i..].iter().position(|a| *a == s.value) {
            Some(k) => {
                i += k + 1;
                prev = Some(&s.value);
            }
            None => {
                let why = match prev {
                    Some(p) if actual.contains(&s.value.as_str()) => {
                        format!("`{}` {what}, but not after `{p}`", s.value)
                    }
                    _ => format!("`{}` never {what}", s.value),
                };
                return Some((
                    s.loc,
                    format!(
                        "{why}; {what}, in order: {}",
                        folded(actual.iter().copied())
                    ),
                ));
            }
        }
    }
    None
}

/// Checks one `expect` block against the run.
pub fn check(v: &View, e: &Sp<Expect>) -> Vec<Failure> {
    let mut f = Vec::new();
    let x = &e.value;
    let inst = v.inst();
    let status = inst.status.as_str();
    let final_message = match (&inst.output, &inst.error) {
        (Some(o), _) => o.get("message").and_then(Value::as_str).map(str::to_owned),
        (_, Some(err)) => Some(err.message.clone()),
        _ => None,
    };
    if let Some(s) = &x.status
        && s.value != status
    {
        let why = match (&inst.error, inst.status.is_final()) {
            (Some(err), _) => format!(": {}", err.message),
            (None, false) => format!("; {}", waiting_on(v.sim, v.root)),
            (None, true) => final_message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default(),
        };
        f.push(Failure::new(
            s.loc,
            format!("expect.status: expected `{}`, got `{status}`{why}", s.value),
        ));
    }
    if let Some(m) = &x.message {
        match &final_message {
            Some(msg) if msg.contains(&m.value) => {}
            Some(msg) => f.push(Failure::new(m.loc, format!("expect.message: expected the message to contain `{}`, got `{msg}`", m.value))),
            None => f.push(Failure::new(m.loc, format!("expect.message: expected a message containing `{}`, but there is none (status `{status}`)", m.value))),
        }
    }
    let completed: Vec<&str> = v
        .history()
        .iter()
        .filter_map(|(r, _)| {
            if let Record::StepCompleted { step, .. } = r {
                Some(step.as_str())
            } else {
                None
            }
        })
        .collect();
    if let Some(p) = &x.path
        && let Some((loc, msg)) = subsequence(&p.value, &completed, "completed")
    {
        f.push(Failure::new(
            loc,
            format!("expect.path: {msg}{}", step_hint(v, &msg)),
        ));
    }
    for s in x.not_path.iter().flat_map(|l| l.value.iter()) {
        let entered = v
            .history()
            .iter()
            .find(|(r, _)| matches!(r, Record::StepEntered { step, .. } if *step == s.value));
        if let Some((_, at)) = entered {
            f.push(Failure::new(
                s.loc,
                format!(
                    "expect.not_path: step `{}` ran (at {}), but should not have",
                    s.value,
                    offset(at - v.start)
                ),
            ));
        }
    }
    if let Some(o) = &x.output {
        match &inst.output {
            Some(actual) => diff_into(&mut f, o, actual, "output", "expect.output"),
            None => f.push(Failure::new(
                o.loc,
                format!("expect.output: the instance has no output (status `{status}`)"),
            )),
        }
    }
    if let Some(vars) = &x.vars {
        diff_into(
            &mut f,
            vars,
            &Value::Object(inst.vars.clone()),
            "vars",
            "expect.vars",
        );
    }
    for (id, s) in &x.steps {
        let Some(r) = inst.outputs.get(&0).and_then(|o| o.get(id)) else {
            f.push(Failure::new(s.loc, format!("expect.steps: step `{id}` has no result: it has not run (steps inside a `foreach` keep theirs only in the foreach's output)")));
            continue;
        };
        if let Some(st) = &s.value.status
            && st.value != r.status
        {
            f.push(Failure::new(
                st.loc,
                format!(
                    "expect.steps.{id}.status: expected `{}`, got `{}`",
                    st.value, r.status
                ),
            ));
        }
        if let Some(o) = &s.value.output {
            diff_into(
                &mut f,
                o,
                &r.output,
                &format!("steps.{id}.output"),
                "expect.steps",
            );
        }
    }
    super::effects::calls(v, x, &mut f);
    super::effects::notifications(v, x, &mut f);
    super::effects::tasks(v, x, &mut f);
    let opened: Vec<&str> = v
        .history()
        .iter()
        .filter_map(|(r, _)| {
            if let Record::TaskOpened { task, .. } = r {
                v.step_of_task(v.root, *task)
            } else {
                None
            }
        })
        .collect();
    if let Some(t) = &x.tasks_opened
        && let Some((loc, msg)) = subsequence(&t.value, &opened, "opened a task")
    {
        f.push(Failure::new(loc, format!("expect.tasks_opened: {msg}")));
    }
    super::effects::clocks(v, x, &mut f);
    if let Some(d) = &x.finished_within {
        let end = v.history().iter().find(|(r, _)| {
            matches!(
                r,
                Record::Completed { .. } | Record::Failed { .. } | Record::Cancelled { .. }
            )
        });
        match end {
            Some((_, at)) if at - v.start <= d.value.as_millis() as i64 => {}
            Some((_, at)) => f.push(Failure::new(d.loc, format!("expect.finished_within: expected the instance to finish within {}, it finished at {}", d.value, offset(at - v.start)))),
            None => f.push(Failure::new(d.loc, format!("expect.finished_within: expected the instance to finish within {}, but it has not finished (status `{status}`)", d.value))),
        }
    }
    f.sort_by_key(|x| x.loc);
    f
}

fn diff_into(f: &mut Vec<Failure>, expected: &Sp<Value>, actual: &Value, root: &str, what: &str) {
    let mut lines = Vec::new();
    diff(&expected.value, actual, root, &mut lines);
    for l in lines {
        f.push(Failure::new(expected.loc, format!("{what}: {l}")));
    }
}

/// For a step that never completed: whether it failed, was skipped, or waits.
fn step_hint(v: &View, msg: &str) -> String {
    let Some(step) = msg.strip_prefix('`').and_then(|m| m.split('`').next()) else {
        return String::new();
    };
    for (r, at) in v.history().iter().rev() {
        match r {
            Record::StepFailed { step: s, error, .. } if s == step => {
                return format!(
                    " (`{step}` failed at {}: {})",
                    offset(at - v.start),
                    error.message
                );
            }
            Record::StepSkipped { step: s, .. } if s == step => {
                return format!(
                    " (`{step}` was skipped at {}: its `when` was false)",
                    offset(at - v.start)
                );
            }
            _ => {}
        }
    }
    String::new()
}

/// The reason word of a notification.
pub fn reason_word(r: NotifyReason) -> &'static str {
    match r {
        NotifyReason::Opened => "opened",
        NotifyReason::Reminder => "reminder",
        NotifyReason::Escalation => "escalation",
        NotifyReason::Delegated => "delegated",
    }
}
