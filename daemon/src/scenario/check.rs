//! Checking what a scenario names against the workflow under test: step ids,
//! options, signals, clocks, connector actions, status and reason words.
//! Every problem becomes a [`Diagnostic`] at the value that is wrong.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::format::{self, Expect};
use crate::workflow::connectors;
use crate::workflow::diag::Diagnostic;
use crate::workflow::lower::closest;
use crate::workflow::plan::{Approval, Assignee, Node, NodeKind, Plan, Wait};
use crate::workflow::span::{Loc, Sp};

pub const STATUSES: &[&str] = &["running", "waiting", "completed", "failed", "cancelled"];
pub const STEP_STATUSES: &[&str] = &["completed", "failed", "skipped"];
pub const REASONS: &[&str] = &["opened", "reminder", "escalation", "delegated"];

pub struct Checker<'a> {
    /// The workflow under test.
    pub plan: &'a Plan,
    /// It and the sub-workflows it runs, transitively.
    pub all: Vec<&'a Plan>,
    pub diags: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    pub fn new(plan: &'a Plan, plans: &'a HashMap<String, Arc<Plan>>) -> Self {
        let mut all: Vec<&Plan> = vec![plan];
        let mut i = 0;
        while i < all.len() {
            for sub in &all[i].sub_workflows {
                if let Some(p) = plans.get(sub)
                    && !all.iter().any(|x| x.id == p.id)
                {
                    all.push(p);
                }
            }
            i += 1;
        }
        Checker {
            plan,
            all,
            diags: Vec::new(),
        }
    }

    pub fn error(&mut self, loc: Loc, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(loc, message));
    }

    pub fn assigned_roles(&self) -> (BTreeSet<String>, bool) {
        roles_of(&self.all)
    }

    /// A step of the workflow under test (not of its sub-workflows).
    fn step(&mut self, s: &Sp<String>, what: &str) -> Option<&'a Node> {
        let plan = self.plan;
        if let Some(n) = plan.nodes.iter().find(|n| n.step == s.value) {
            return Some(n);
        }
        let hint = closest(&s.value, plan.nodes.iter().map(|n| n.step.as_str()))
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        self.error(
            s.loc,
            format!(
                "{what}: workflow `{}` has no step `{}`{hint}",
                plan.id, s.value
            ),
        );
        None
    }

    /// An approval step, in the workflow or (for decisions) its sub-workflows.
    fn approval(&mut self, s: &Sp<String>, what: &str, subs: bool) -> Option<&'a Approval> {
        let plans: Vec<&'a Plan> = if subs {
            self.all.clone()
        } else {
            vec![self.plan]
        };
        let found = plans
            .iter()
            .flat_map(|p| p.nodes.iter())
            .find(|n| n.step == s.value);
        let node = match found {
            Some(n) => n,
            None => {
                let names = plans
                    .iter()
                    .flat_map(|p| p.nodes.iter())
                    .filter(|n| matches!(n.kind, NodeKind::Approval(_)))
                    .map(|n| n.step.as_str());
                let hint = closest(&s.value, names)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                self.error(
                    s.loc,
                    format!(
                        "{what}: workflow `{}` has no step `{}`{hint}",
                        self.plan.id, s.value
                    ),
                );
                return None;
            }
        };
        match &node.kind {
            NodeKind::Approval(a) => Some(a),
            other => {
                self.error(s.loc, format!("{what}: step `{}` is a `{}` step, not an approval: only approvals have tasks", s.value, other.name()));
                None
            }
        }
    }

    fn option(&mut self, a: &Approval, step: &str, o: &Sp<String>, what: &str) {
        if a.options.iter().any(|x| x.id == o.value) {
            return;
        }
        let ids: Vec<&str> = a.options.iter().map(|x| x.id.as_str()).collect();
        let hint = closest(&o.value, ids.iter())
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        self.error(
            o.loc,
            format!(
                "{what}: `{}` is not an option of step `{step}`{hint}: its options are {}",
                o.value,
                ids.join(", ")
            ),
        );
    }

    /// `role.action` of a connector answer or expectation.
    pub fn call_key(&mut self, key: &str, loc: Loc) {
        let Some((role, action)) = key.split_once('.') else {
            self.error(loc, format!("`{key}` is not a connector action: write `role.action`, such as `mail.send` or `ticketing.create`"));
            return;
        };
        let Some(r) = connectors::role(role) else {
            let hint = closest(role, connectors::ROLES.iter().map(|r| r.name))
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            self.error(
                loc,
                format!(
                    "`{key}`: unknown connector role `{role}`{hint}: the roles are {}",
                    connectors::role_names()
                ),
            );
            return;
        };
        if r.action(action).is_none() {
            let hint = closest(action, r.actions.iter().map(|a| a.name))
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            self.error(
                loc,
                format!(
                    "`{key}`: role `{role}` has no action `{action}`{hint}: its actions are {}",
                    r.action_names()
                ),
            );
            return;
        }
        let called: BTreeSet<String> = self
            .all
            .iter()
            .flat_map(|p| p.nodes.iter())
            .filter_map(|n| match &n.kind {
                NodeKind::Call { role, action, .. } => Some(format!("{role}.{action}")),
                _ => None,
            })
            .collect();
        if !called.contains(key) {
            let list = called.into_iter().collect::<Vec<_>>().join(", ");
            self.error(
                loc,
                format!(
                    "workflow `{}` never calls `{key}` (it calls: {list})",
                    self.plan.id
                ),
            );
        }
    }

    pub fn decide(&mut self, d: &Sp<format::Decide>) {
        let d = &d.value;
        if let Some(a) = self.approval(&d.step, "decide", true) {
            self.option(a, &d.step.value, &d.option, "decide");
        }
        if let Some(by) = &d.by {
            self.address(by, "decide: `by`");
        }
    }

    pub fn delegate(&mut self, d: &Sp<format::Delegate>) {
        self.approval(&d.value.step, "delegate", true);
        self.address(&d.value.to, "delegate: `to`");
        if let Some(by) = &d.value.by {
            self.address(by, "delegate: `by`");
        }
    }

    fn address(&mut self, a: &Sp<String>, what: &str) {
        if !a.value.contains('@') || a.value.trim().contains(char::is_whitespace) {
            self.error(
                a.loc,
                format!(
                    "{what}: `{}` is not an address such as `anna@kommun.se`",
                    a.value
                ),
            );
        }
    }

    pub fn signal(&mut self, name: &Sp<String>) {
        let waits: BTreeSet<&str> = self
            .all
            .iter()
            .flat_map(|p| p.nodes.iter())
            .filter_map(|n| match &n.kind {
                NodeKind::Wait(Wait::Signal(s)) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        if !waits.contains(name.value.as_str()) {
            let list = if waits.is_empty() {
                "it waits for none".to_owned()
            } else {
                format!(
                    "it waits for: {}",
                    waits.into_iter().collect::<Vec<_>>().join(", ")
                )
            };
            self.error(
                name.loc,
                format!(
                    "signal: workflow `{}` never waits for signal `{}` ({list})",
                    self.plan.id, name.value
                ),
            );
        }
    }

    fn word(&mut self, w: &Sp<String>, allowed: &[&str], what: &str) {
        if !allowed.contains(&w.value.as_str()) {
            self.error(
                w.loc,
                format!("{what}: `{}` is not one of {}", w.value, allowed.join(", ")),
            );
        }
    }

    pub fn expect(&mut self, e: &Sp<Expect>) {
        let e = &e.value;
        if let Some(s) = &e.status {
            self.word(s, STATUSES, "expect.status");
        }
        for (list, what) in [(&e.path, "expect.path"), (&e.not_path, "expect.not_path")] {
            for s in list.iter().flat_map(|l| l.value.iter()) {
                self.step(s, what);
            }
        }
        for s in e.tasks_opened.iter().flat_map(|l| l.value.iter()) {
            self.approval(s, "expect.tasks_opened", false);
        }
        for (id, x) in &e.steps {
            self.step(&Sp::new(id.clone(), x.loc), "expect.steps");
            if let Some(s) = &x.value.status {
                self.word(s, STEP_STATUSES, "expect.steps.status");
            }
        }
        for c in &e.calls {
            self.call_key(&c.value.call.value, c.value.call.loc);
            if let Some(w) = &c.value.with
                && !w.value.is_object()
            {
                self.error(
                    w.loc,
                    format!(
                        "expect.calls: `with` must be a map of argument values; found {}",
                        json_kind(&w.value)
                    ),
                );
            }
        }
        for n in &e.notifications {
            if let Some(s) = &n.value.step {
                self.approval(s, "expect.notifications", false);
            }
            if let Some(r) = &n.value.reason {
                self.word(r, REASONS, "expect.notifications.reason");
            }
        }
        for t in &e.tasks {
            if let Some(a) = self.approval(&t.value.step, "expect.tasks", false)
                && let Some(o) = &t.value.outcome
            {
                self.option(a, &t.value.step.value, o, "expect.tasks.outcome");
            }
        }
        for (name, c) in &e.clocks {
            if !self.plan.clocks.iter().any(|k| k.name == *name) {
                let names: Vec<&str> = self.plan.clocks.iter().map(|k| k.name.as_str()).collect();
                let list = if names.is_empty() {
                    "it has none".to_owned()
                } else {
                    format!("its clocks: {}", names.join(", "))
                };
                self.error(
                    c.loc,
                    format!(
                        "expect.clocks: workflow `{}` has no clock `{name}` ({list})",
                        self.plan.id
                    ),
                );
            }
        }
    }
}

/// A JSON value's kind, in words.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// The approval steps of the plans, for `roles` checks: (static role names,
/// whether some assignee is a template that could name another role).
pub fn roles_of(plans: &[&Plan]) -> (BTreeSet<String>, bool) {
    let mut roles = BTreeSet::new();
    let mut templated = false;
    for plan in plans {
        for n in &plan.nodes {
            if let NodeKind::Approval(a) = &n.kind {
                for x in a
                    .assignees
                    .iter()
                    .chain(a.escalation.iter().flat_map(|r| r.to.iter()))
                {
                    match x {
                        Assignee::Role(r) => {
                            roles.insert(r.clone());
                        }
                        Assignee::Template(t) => templated |= t.source().contains("role:"),
                        Assignee::Address(_) => {}
                    }
                }
            }
        }
    }
    (roles, templated)
}
