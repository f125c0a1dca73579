//! Writing the workflow AST as YAML. Pieces are normalised so that the
//! text is always valid: jumps are clamped to existing siblings and
//! conflicting options dropped. Calls and approvals are written in
//! [`yaml_leaves`](crate::yaml_leaves).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::ast::*;
use crate::{Bug, Mode};

/// Names visible to templates where a value is written.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    pub(crate) item: Option<&'static str>,
    error: bool,
    clock: bool,
}

/// What the whole file defines, learnt by a first pass.
#[derive(Debug, Default)]
struct Names {
    steps: Vec<String>,
    /// Steps a clock may be stopped by: not `if` or `switch`, which complete
    /// as soon as their condition is evaluated.
    stoppers: Vec<String>,
    vars: BTreeSet<u8>,
}

pub(crate) struct Writer {
    pub(crate) mode: Mode,
    known: Names,
    seen: Names,
    out: String,
}

/// A JSON string is a YAML double-quoted scalar.
pub(crate) fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

pub(crate) fn list(items: &[&str]) -> String {
    let v: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", v.join(", "))
}

pub(crate) fn pick<T: Copy>(list: &[T], i: u8) -> T {
    list[i as usize % list.len()]
}

fn terminal(b: &Block) -> bool {
    b.end.is_some()
}

/// Renders a workflow to YAML; `None` pieces are normalised so that the text
/// is always valid (jumps clamped to existing siblings, conflicting options
/// dropped).
pub(crate) fn render(wf: &Wf, mode: Mode) -> String {
    let mut w = Writer {
        mode,
        known: Names::default(),
        seen: Names::default(),
        out: String::new(),
    };
    w.workflow(wf);
    w.known = std::mem::take(&mut w.seen);
    w.out.clear();
    w.workflow(wf);
    w.out
}

impl Writer {
    pub(crate) fn line(&mut self, indent: usize, text: &str) {
        let _ = writeln!(self.out, "{:indent$}{text}", "");
    }

    fn workflow(&mut self, wf: &Wf) {
        self.out.push_str("id: w\n");
        self.out.push_str(INPUT);
        if !wf.clocks.is_empty() {
            self.line(0, "clocks:");
            for (i, c) in wf.clocks.iter().enumerate() {
                self.clock(i, c);
            }
        }
        self.line(0, "steps:");
        self.block(&wf.main, "s", 2, &Scope::default());
        if let Some(v) = wf.output {
            let v = self.val(v, &Scope::default());
            self.line(0, "output:");
            self.line(2, &format!("result: {v}"));
        }
    }

    fn clock(&mut self, i: usize, c: &ClockDef) {
        self.line(2, &format!("c{i}:"));
        let anchor = if c.on_reported {
            "input.reported_at"
        } else {
            "input.discovered_at"
        };
        self.line(4, &format!("anchor: {}", q(anchor)));
        self.line(
            4,
            &format!("duration: {}", pick(CLOCK_DURATIONS, c.duration)),
        );
        if let Some(cond) = c.when {
            let cond = self.cond(cond);
            self.line(4, &format!("when: {}", q(&cond)));
        }
        let mut warn: Vec<&str> = c.warn.iter().map(|w| pick(CLOCK_WARNINGS, *w)).collect();
        warn.sort();
        warn.dedup();
        if c.on_warning.is_some() && warn.is_empty() {
            warn.push(CLOCK_WARNINGS[0]);
        }
        if !warn.is_empty() {
            self.line(4, &format!("warn_before: [{}]", warn.join(", ")));
        }
        if let Some(s) = c.stopped_by
            && !self.known.stoppers.is_empty()
        {
            let target = self.known.stoppers[s as usize % self.known.stoppers.len()].clone();
            self.line(4, &format!("stopped_by: {target}"));
        }
        let scope = Scope {
            clock: true,
            ..Scope::default()
        };
        if let Some(b) = &c.on_warning {
            self.line(4, "on_warning:");
            self.block(b, &format!("w{i}"), 6, &scope);
        }
        if let Some(b) = &c.on_breach {
            self.line(4, "on_breach:");
            self.block(b, &format!("b{i}"), 6, &scope);
        }
    }

    /// Writes a list of steps with `- ` at `indent`; step ids are `<prefix>_<index>`.
    fn block(&mut self, b: &Block, prefix: &str, indent: usize, scope: &Scope) {
        let count = b.steps.len() + usize::from(b.end.is_some());
        let ids: Vec<String> = (0..count).map(|i| format!("{prefix}_{i}")).collect();
        for (i, s) in b.steps.iter().enumerate() {
            self.step(s, &ids, i, indent, scope);
        }
        if let Some(end) = b.end {
            let id = &ids[b.steps.len()];
            self.seen.steps.push(id.clone());
            self.seen.stoppers.push(id.clone());
            self.line(indent, &format!("- id: {id}"));
            match end {
                End::Fail => self.line(indent + 2, &format!("fail: {}", q("stopped at {{ now }}"))),
                End::Succeed => self.line(
                    indent + 2,
                    &format!("succeed: {}", q("done: {{ input.kind }}")),
                ),
            }
        }
    }

    fn step(&mut self, s: &Step, ids: &[String], i: usize, indent: usize, scope: &Scope) {
        let id = ids[i].clone();
        self.seen.steps.push(id.clone());
        if !matches!(s.kind, Kind::If { .. } | Kind::Switch { .. }) {
            self.seen.stoppers.push(id.clone());
        }
        self.line(indent, &format!("- id: {id}"));
        let ind = indent + 2;
        if let Some(c) = s.when {
            let c = self.cond(c);
            self.line(ind, &format!("when: {}", q(&c)));
        }
        match &s.kind {
            Kind::Call(c) => self.call(c, ids, i, ind, scope),
            Kind::Approval(a) => self.approval(a, ids, i, ind, scope),
            Kind::WaitFor(d) => self.line(ind, &format!("wait: {}", pick(WAITS, *d))),
            Kind::WaitUntil => self.line(ind, "wait: {until: \"input.due_at\"}"),
            Kind::WaitSignal {
                name,
                timeout,
                on_timeout,
            } => {
                self.line(ind, &format!("wait: {{signal: {}}}", pick(SIGNALS, *name)));
                if let Some(t) = timeout {
                    self.line(ind, &format!("timeout: {}", pick(SIGNAL_TIMEOUTS, *t)));
                    if let Some(h) = on_timeout {
                        self.handler("on_timeout", h, ids, i, ind, scope);
                    }
                }
            }
            Kind::If {
                cond,
                then,
                otherwise,
            } => {
                let c = self.cond(*cond);
                self.line(ind, &format!("if: {}", q(&c)));
                self.line(ind, "then:");
                self.block(then, &format!("{id}t"), ind + 2, scope);
                if let Some(e) = otherwise {
                    // Both ending the instance would leave the next step unreachable.
                    let e = if terminal(then) && terminal(e) {
                        &Block {
                            steps: e.steps.clone(),
                            end: None,
                        }
                    } else {
                        e
                    };
                    self.line(ind, "else:");
                    self.block(e, &format!("{id}e"), ind + 2, scope);
                }
            }
            Kind::Switch { cases, default } => {
                self.line(ind, &format!("switch: {}", q("input.kind")));
                self.line(ind, "cases:");
                let mut seen = BTreeSet::new();
                let mut all_terminal = true;
                for (k, (key, b)) in cases.iter().enumerate() {
                    let key = pick(KINDS, *key);
                    if !seen.insert(key) {
                        continue;
                    }
                    all_terminal &= terminal(b);
                    self.line(ind + 2, &format!("{key}:"));
                    self.block(b, &format!("{id}c{k}"), ind + 4, scope);
                }
                if let Some(d) = default {
                    let d = if all_terminal && terminal(d) {
                        &Block {
                            steps: d.steps.clone(),
                            end: None,
                        }
                    } else {
                        d
                    };
                    self.line(ind, "default:");
                    self.block(d, &format!("{id}d"), ind + 2, scope);
                }
            }
            Kind::Parallel(branches) => {
                self.line(ind, "parallel:");
                for (k, b) in branches.iter().enumerate() {
                    self.line(ind + 2, &format!("p{k}:"));
                    self.block(b, &format!("{id}p{k}"), ind + 4, scope);
                }
            }
            Kind::Foreach {
                concurrency,
                named,
                body,
            } => {
                self.line(ind, &format!("foreach: {}", q("input.items")));
                let var = if *named {
                    self.line(ind, "as: it");
                    "it"
                } else {
                    "item"
                };
                self.line(ind, &format!("concurrency: {concurrency}"));
                self.line(ind, "steps:");
                let inner = Scope {
                    item: Some(var),
                    ..scope.clone()
                };
                self.block(body, &format!("{id}b"), ind + 2, &inner);
            }
            Kind::Set(vars) => {
                self.line(ind, "set:");
                let mut seen = BTreeSet::new();
                for (name, v) in vars {
                    if !seen.insert(*name) {
                        continue;
                    }
                    self.seen.vars.insert(*name);
                    let v = self.val(*v, scope);
                    self.line(ind + 2, &format!("v{name}: {v}"));
                }
            }
        }
        if let Some(h) = &s.on_error {
            self.handler("on_error", h, ids, i, ind, scope);
        }
    }

    pub(crate) fn handler(
        &mut self,
        field: &str,
        h: &Handler,
        ids: &[String],
        i: usize,
        ind: usize,
        scope: &Scope,
    ) {
        match h {
            Handler::Forward(k) => {
                // Only forward: a backward jump could close a loop with no pause.
                if i + 1 < ids.len() {
                    let target = (i + 1 + *k as usize).min(ids.len() - 1);
                    self.line(ind, &format!("{field}: {}", ids[target]));
                }
            }
            Handler::Steps(b) => {
                self.line(ind, &format!("{field}:"));
                let suffix = if field == "on_error" { "x" } else { "y" };
                let inner = Scope {
                    error: true,
                    ..scope.clone()
                };
                self.block(b, &format!("{}{suffix}", ids[i]), ind + 2, &inner);
            }
        }
    }
}

impl Writer {
    fn cond(&mut self, c: Cond) -> String {
        match c {
            Cond::Flag => "input.flag".to_owned(),
            Cond::NotFlag => "not input.flag".to_owned(),
            Cond::KindIs(k) => format!("input.kind == {}", q(pick(KINDS, k))),
            Cond::HasItems => "input.items | length > 1".to_owned(),
            Cond::VarSet(v) if self.known.vars.contains(&v) => format!("vars.v{v} is defined"),
            Cond::StepDone(k) if !self.known.steps.is_empty() => {
                let s = &self.known.steps[k as usize % self.known.steps.len()];
                format!("steps.{s} is defined and steps.{s}.status == \"completed\"")
            }
            Cond::VarSet(_) | Cond::StepDone(_) => "input.flag".to_owned(),
        }
    }

    pub(crate) fn val(&mut self, v: Val, scope: &Scope) -> String {
        let text = match v {
            Val::Num => return "42".to_owned(),
            Val::Kind => "{{ input.kind }}".to_owned(),
            Val::Now => "at {{ now }}".to_owned(),
            Val::Instance => "{{ instance.id }}".to_owned(),
            Val::Item if scope.item.is_some() => {
                format!("{{{{ {} }}}}", scope.item.unwrap_or("item"))
            }
            Val::Error if scope.error => "failed: {{ error.message }}".to_owned(),
            Val::Clock if scope.clock => "{{ clock.title }} due {{ clock.due }}".to_owned(),
            Val::Var(n) if self.known.vars.contains(&n) => format!("v={{{{ vars.v{n} }}}}"),
            Val::StepOut(k) if !self.known.steps.is_empty() => {
                format!(
                    "ref {{{{ steps.{}.output.id }}}}",
                    self.known.steps[k as usize % self.known.steps.len()]
                )
            }
            Val::TimeBomb if !self.mode.avoids(Bug::B5TimeoutOutlivesItsStep) => {
                "u{{ 'x' if now <= instance.started_at else input.items[9] }}".to_owned()
            }
            _ => "text".to_owned(),
        };
        q(&text)
    }
}
