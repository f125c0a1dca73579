//! What templates read: every reference checked against what exists.
//!
//! `input.<field>` must be declared, `steps.<id>` must be a step, `clocks.<name>`
//! a clock, `vars.<name>` set by some `set` step; other roots must be in scope
//! (`item` inside a `foreach`, `error` inside a handler, `clock` inside a clock
//! handler). Each problem points at the reference itself, inside the text.

use std::collections::BTreeSet;

use super::super::span::Sp;
use super::super::template::ROOT_VARIABLES;
use super::steps::closest;
use super::{Lowerer, Scope};

impl Lowerer {
    /// Checks the references of a template (`is_expression` false) or an
    /// expression written as `text`.
    pub(super) fn check_refs(
        &mut self,
        refs: &BTreeSet<String>,
        scope: &Scope,
        text: &Sp<String>,
        is_expression: bool,
        what: &str,
    ) {
        // `undeclared_variables(true)` lists `input.a` and may also list `input`;
        // check each dotted path once, by its first two segments.
        for path in refs {
            let mut parts = path.split('.');
            let root = parts.next().unwrap_or_default();
            let second = parts.next();
            let token = match second {
                Some(s) => format!("{root}.{s}"),
                None => root.to_owned(),
            };
            let problem = match (root, second) {
                ("input", Some(field)) if !self.input_fields.contains_key(field) => {
                    let hint = closest(field, self.input_fields.keys())
                        .map(|c| format!(" (did you mean `input.{c}`?)"))
                        .unwrap_or_else(|| ": declare it under `input`".to_owned());
                    Some(format!(
                        "`input.{field}` is not a field of this workflow's input{hint}"
                    ))
                }
                ("steps", Some(step)) if !self.by_id.contains_key(step) => {
                    let hint = closest(step, self.by_id.keys())
                        .map(|c| format!(" (did you mean `steps.{c}`?)"))
                        .unwrap_or_default();
                    Some(format!(
                        "`steps.{step}` names a step that does not exist{hint}"
                    ))
                }
                ("clocks", Some(clock)) if !self.clock_names.contains(clock) => {
                    let hint = match closest(clock, self.clock_names.iter()) {
                        Some(c) => format!(" (did you mean `clocks.{c}`?)"),
                        None if self.clock_names.is_empty() => {
                            ": this workflow has no clocks".to_owned()
                        }
                        None => format!(
                            ": the clocks are {}",
                            self.clock_names
                                .iter()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    Some(format!(
                        "`clocks.{clock}` names a clock that is not declared under `clocks`{hint}"
                    ))
                }
                ("vars", Some(var)) if !self.var_names.contains(var) => {
                    let hint = closest(var, self.var_names.iter())
                        .map(|c| format!(" (did you mean `vars.{c}`?)"))
                        .unwrap_or_default();
                    Some(format!(
                        "`vars.{var}` is never set{hint}: no `set` step defines it"
                    ))
                }
                (r, _) if ROOT_VARIABLES.contains(&r) || scope.locals.iter().any(|l| l == r) => {
                    None
                }
                (r, _) => Some(unknown_root(r, scope)),
            };
            if let Some(message) = problem {
                let at = self.token_loc(text, &token, is_expression);
                self.error(at, format!("{what}: {message}"));
            }
        }
    }
}

/// A name that is no data root here; names that are roots elsewhere get a
/// hint about where they can be read.
fn unknown_root(name: &str, scope: &Scope) -> String {
    let where_ = match name {
        "item" => Some(
            "inside the `steps` of a `foreach` (under the name given by `as`, `item` by default)",
        ),
        "error" => Some("inside the steps of an `on_error` or `on_timeout` handler"),
        "clock" => Some("inside a clock's `on_warning` and `on_breach` steps"),
        _ => None,
    };
    let mut known: Vec<&str> = ROOT_VARIABLES.to_vec();
    known.extend(scope.locals.iter().map(String::as_str));
    match where_ {
        Some(w) => format!(
            "`{name}` cannot be read here: it exists only {w}; here templates can read {}",
            known.join(", ")
        ),
        None => format!(
            "unknown variable `{name}`: templates can read {}",
            known.join(", ")
        ),
    }
}
