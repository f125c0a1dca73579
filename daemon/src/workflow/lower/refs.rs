//! What templates read: every reference checked against what exists.
//!
//! `input.<field>` must be declared, `steps.<id>` must be a step, `clocks.<name>`
//! a clock, `vars.<name>` set by some `set` step; other roots must be in scope
//! (`item` inside a `foreach`, `error` inside a handler, `clock` inside a clock
//! handler).

use std::collections::BTreeSet;

use super::super::span::Loc;
use super::super::template::ROOT_VARIABLES;
use super::steps::closest;
use super::{Lowerer, Scope};

impl Lowerer {
    pub(super) fn check_refs(&mut self, refs: &BTreeSet<String>, scope: &Scope, loc: Loc, what: &str) {
        // `undeclared_variables(true)` lists `input.a` and may also list `input`;
        // check each dotted path once, by its first two segments.
        for path in refs {
            let mut parts = path.split('.');
            let root = parts.next().unwrap_or_default();
            let second = parts.next();
            match root {
                "input" => {
                    if let Some(field) = second
                        && !self.input_fields.contains_key(field)
                    {
                        let hint = closest(field, self.input_fields.keys())
                            .map(|c| format!(" (did you mean `input.{c}`?)"))
                            .unwrap_or_else(|| " : declare it under `input`".to_owned());
                        self.error(loc, format!("{what}: `input.{field}` is not a field of this workflow's input{hint}").replace(" :", ":"));
                    }
                }
                "steps" => {
                    if let Some(step) = second
                        && !self.by_id.contains_key(step)
                    {
                        let hint = closest(step, self.by_id.keys())
                            .map(|c| format!(" (did you mean `steps.{c}`?)"))
                            .unwrap_or_default();
                        self.error(loc, format!("{what}: `steps.{step}` names a step that does not exist{hint}"));
                    }
                }
                "clocks" => {
                    if let Some(clock) = second
                        && !self.clock_names.contains(clock)
                    {
                        self.error(loc, format!("{what}: `clocks.{clock}` names a clock that is not declared under `clocks`"));
                    }
                }
                "vars" => {
                    if let Some(var) = second
                        && !self.var_names.contains(var)
                    {
                        self.error(loc, format!("{what}: `vars.{var}` is never set: no `set` step defines it"));
                    }
                }
                r if ROOT_VARIABLES.contains(&r) => {}
                r if scope.locals.iter().any(|l| l == r) => {}
                r => {
                    let mut known: Vec<&str> = ROOT_VARIABLES.to_vec();
                    known.extend(scope.locals.iter().map(String::as_str));
                    self.error(loc, format!("{what}: unknown variable `{r}`: templates can read {}", known.join(", ")));
                }
            }
        }
    }
}
