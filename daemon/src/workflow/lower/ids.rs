//! Phase one: every step gets a [`NodeId`] before any is lowered, so that a
//! jump can point at a step written further down. Duplicate and malformed
//! step ids are found here, and the names `set` steps define.

use std::collections::HashMap;

use super::super::authored::{Handler, StepDef, WorkflowFile};
use super::super::span::Sp;
use super::{Lowerer, NodeId, is_identifier};

/// Walks every step of the file in a fixed order and numbers it.
pub(super) fn assign(l: &mut Lowerer, file: &WorkflowFile) {
    let mut seen: HashMap<String, super::Loc> = HashMap::new();
    let mut walk = Walk { l, seen: &mut seen };
    walk.block(&file.steps.value);
    for clock in file.clocks.values() {
        walk.block(&clock.value.on_warning);
        walk.block(&clock.value.on_breach);
    }
}

struct Walk<'a> {
    l: &'a mut Lowerer,
    seen: &'a mut HashMap<String, super::Loc>,
}

impl Walk<'_> {
    fn block(&mut self, steps: &[Sp<StepDef>]) {
        for step in steps {
            self.step(step);
        }
    }

    fn step(&mut self, step: &Sp<StepDef>) {
        let id = NodeId(self.l.next_alloc);
        self.l.next_alloc += 1;
        self.l.nodes.push(None);
        self.l.ptrs.insert(std::ptr::from_ref(&step.value), id);
        let s = &step.value;
        let name = &s.id.value;
        if !is_identifier(name) {
            let hint = name.replace('-', "_").to_lowercase();
            self.l.error(
                s.id.loc,
                format!("step id `{name}` is not valid: use lower-case letters, digits and `_`, starting with a letter, such as `{hint}` (templates read it as `steps.{hint}`)"),
            );
        }
        match self.seen.get(name) {
            Some(first) => {
                let first = *first;
                self.l.error(
                    s.id.loc,
                    format!("duplicate step id `{name}`: it is already used at line {}; step ids must be unique in the file", first.line),
                );
            }
            None => {
                self.seen.insert(name.clone(), s.id.loc);
                self.l.by_id.insert(name.clone(), id);
            }
        }
        if let Some(set) = &s.set {
            for key in set.value.keys() {
                self.l.var_names.insert(key.clone());
            }
        }
        for block in [&s.then, &s.else_, &s.default, &s.steps]
            .into_iter()
            .flatten()
        {
            self.block(&block.value);
        }
        if let Some(cases) = &s.cases {
            for case in cases.value.values() {
                self.block(&case.value);
            }
        }
        if let Some(branches) = &s.parallel {
            for b in branches.value.values() {
                self.block(&b.value);
            }
        }
        for handler in [&s.on_error, &s.on_timeout].into_iter().flatten() {
            if let Handler::Steps(steps) = &handler.value {
                self.block(steps);
            }
        }
    }
}
