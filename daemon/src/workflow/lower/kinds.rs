//! Each kind of step lowered into its [`NodeKind`]: `call` (checked against
//! the connector catalogue, arguments included), `wait`, `if`, `switch`,
//! `parallel`, `foreach`, `workflow`, `set`, `fail` and `succeed`
//! (`approval` has a module of its own).

use super::super::authored::{StepDef, WaitDef};
use super::super::connectors;
use super::super::plan::{self, NodeKind};
use super::super::span::{Loc, Sp};
use super::steps::closest;
use super::{Lowerer, NodeId, Scope, is_identifier};

impl Lowerer {
    pub(super) fn lower_kind(
        &mut self,
        s: &StepDef,
        id: NodeId,
        next: Option<NodeId>,
        scope: &Scope,
        thread: NodeId,
        what: &str,
    ) -> Option<NodeKind> {
        if let Some(call) = &s.call {
            return self.lower_call(call, s.with.as_ref(), scope, what);
        }
        if let Some(a) = &s.approval {
            return self
                .lower_approval(a, id, scope, what)
                .map(|a| NodeKind::Approval(Box::new(a)));
        }
        if let Some(w) = &s.wait {
            return self.lower_wait(w, scope, what).map(NodeKind::Wait);
        }
        if let Some(cond) = &s.if_ {
            let cond = self.expression(cond, scope, &format!("{what} `if`"));
            let then = match &s.then {
                Some(b) => {
                    if b.value.is_empty() {
                        self.error(b.loc, format!("{what}: `then` has no steps"));
                    }
                    self.lower_seq(&b.value, next, scope, thread)
                }
                None => {
                    self.error(
                        s.if_.as_ref().map(|i| i.loc).unwrap_or(s.id.loc),
                        format!("{what}: an `if` needs `then` steps"),
                    );
                    next
                }
            };
            let otherwise = match &s.else_ {
                Some(b) => self.lower_seq(&b.value, next, scope, thread),
                None => next,
            };
            return Some(NodeKind::If {
                cond: cond?,
                then,
                otherwise,
            });
        }
        if let Some(on) = &s.switch {
            let on = self.expression(on, scope, &format!("{what} `switch`"));
            let mut cases = Vec::new();
            match &s.cases {
                Some(c) if !c.value.is_empty() => {
                    for (value, block) in &c.value {
                        cases.push((
                            value.clone(),
                            self.lower_seq(&block.value, next, scope, thread),
                        ));
                    }
                }
                other => {
                    let loc = other.as_ref().map(|c| c.loc).unwrap_or(s.id.loc);
                    self.error(loc, format!("{what}: a `switch` needs `cases`"));
                }
            }
            let default = match &s.default {
                Some(b) => self.lower_seq(&b.value, next, scope, thread),
                None => next,
            };
            return Some(NodeKind::Switch {
                on: on?,
                cases,
                default,
            });
        }
        if let Some(branches) = &s.parallel {
            if branches.value.len() < 2 {
                self.error(self.src.key_of(branches.loc, "parallel"), format!("{what}: `parallel` needs at least two branches; for one, write its steps in the flow"));
            }
            let mut out = Vec::new();
            for (name, block) in &branches.value {
                let entry = self.lower_block(
                    &block.value,
                    None,
                    scope,
                    block.loc,
                    &format!("parallel branch `{name}`"),
                );
                out.push((name.clone(), entry));
            }
            return Some(NodeKind::Parallel { branches: out });
        }
        if let Some(items) = &s.foreach {
            let items = self.expression(items, scope, &format!("{what} `foreach`"));
            let var = s
                .as_
                .as_ref()
                .map(|a| a.value.clone())
                .unwrap_or_else(|| "item".into());
            if let Some(a) = &s.as_
                && (!is_identifier(&a.value)
                    || a.value == "index"
                    || super::super::template::ROOT_VARIABLES.contains(&a.value.as_str()))
            {
                self.error(a.loc, format!("{what}: `as: {}` must be a name of letters, digits and `_`, and not `index` (the item's position) or one of {}", a.value, super::super::template::ROOT_VARIABLES.join(", ")));
            }
            let concurrency = s.concurrency.as_ref().map(|c| c.value).unwrap_or(1);
            if !(1..=1000).contains(&concurrency) {
                let loc = s.concurrency.as_ref().map(|c| c.loc).unwrap_or(s.id.loc);
                self.error(
                    loc,
                    format!("{what}: `concurrency` must be between 1 and 1000"),
                );
            }
            let body = match &s.steps {
                Some(b) => self.lower_block(
                    &b.value,
                    None,
                    &scope.with(&var).with("index"),
                    b.loc,
                    &format!("{what} `steps`"),
                ),
                None => {
                    self.error(
                        s.foreach.as_ref().map(|f| f.loc).unwrap_or(s.id.loc),
                        format!("{what}: a `foreach` needs `steps` to run for each item"),
                    );
                    None
                }
            };
            return Some(NodeKind::Foreach {
                items: items?,
                var,
                concurrency,
                body,
            });
        }
        if let Some(wf) = &s.workflow {
            self.sub_workflows.insert(wf.value.clone());
            let input = match &s.input {
                Some(i) => self.value_map(i, scope, &format!("{what} input")),
                None => plan::ValueTpl::Literal(serde_json::json!({})),
            };
            return Some(NodeKind::Workflow {
                id: wf.value.clone(),
                input,
            });
        }
        if let Some(set) = &s.set {
            let mut vars = Vec::new();
            for (k, v) in &set.value {
                if !is_identifier(k) {
                    self.error(v.loc, format!("{what}: variable name `{k}` is not valid: use lower-case letters, digits and `_` (it is read as `vars.{k}`)"));
                }
                vars.push((
                    k.clone(),
                    self.value_tpl(v, scope, &format!("{what} `set.{k}`")),
                ));
            }
            if vars.is_empty() {
                self.error(set.loc, format!("{what}: `set` has no variables"));
            }
            return Some(NodeKind::Set { vars });
        }
        if let Some(msg) = &s.fail {
            return self
                .template(msg, scope, &format!("{what} `fail`"))
                .map(|message| NodeKind::Fail { message });
        }
        if let Some(msg) = &s.succeed {
            let message = self.template(msg, scope, &format!("{what} `succeed`"));
            return message.map(|m| NodeKind::Succeed { message: Some(m) });
        }
        None
    }

    fn lower_call(
        &mut self,
        call: &Sp<String>,
        with: Option<&Sp<indexmap::IndexMap<String, Sp<serde_json::Value>>>>,
        scope: &Scope,
        what: &str,
    ) -> Option<NodeKind> {
        let Some((role_name, action_name)) = call.value.split_once('.') else {
            self.error(
                call.loc,
                format!(
                    "{what}: `call: {}` must name a role and an action, such as `ticketing.create`",
                    call.value
                ),
            );
            return None;
        };
        let Some(role) = connectors::role(role_name) else {
            let hint = closest(role_name, connectors::ROLES.iter().map(|r| r.name))
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            self.error(
                call.loc,
                format!(
                    "{what}: unknown connector role `{role_name}`{hint}: the roles are {}",
                    connectors::role_names()
                ),
            );
            return None;
        };
        let Some(action) = role.action(action_name) else {
            let hint = closest(action_name, role.actions.iter().map(|a| a.name))
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            let at =
                self.src
                    .point_in(call.loc, &call.value, role_name.len() + 1, call.value.len());
            self.error(at, format!("{what}: role `{role_name}` has no action `{action_name}`{hint}: its actions are {}", role.action_names()));
            return None;
        };
        self.roles.insert(role.name.to_owned());
        let empty = indexmap::IndexMap::new();
        let args = with.map(|w| &w.value).unwrap_or(&empty);
        let loc = with.map_or(call.loc, |w| self.src.key_of(w.loc, "with"));
        let missing: Vec<String> = action
            .required
            .iter()
            .filter(|r| !args.contains_key(**r))
            .map(|r| format!("`{r}`"))
            .collect();
        if !missing.is_empty() {
            let (noun, list) = match missing.as_slice() {
                [one] => ("argument", one.clone()),
                [rest @ .., last] => ("arguments", format!("{} and {last}", rest.join(", "))),
                [] => unreachable!(),
            };
            let fix = if with.is_some() {
                "add them under `with`"
            } else {
                "add a `with:` map with them"
            };
            let fix = if missing.len() == 1 {
                fix.replace("them", "it")
            } else {
                fix.to_owned()
            };
            self.error(
                loc,
                format!("{what}: `{}` needs the {noun} {list}: {fix}", call.value),
            );
        }
        for (k, v) in args {
            if !action.required.contains(&k.as_str()) && !action.optional.contains(&k.as_str()) {
                let all: Vec<&str> = action
                    .required
                    .iter()
                    .chain(action.optional)
                    .copied()
                    .collect();
                let hint = closest(k, all.iter())
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                self.error(
                    self.src.key_of(v.loc, k),
                    format!(
                        "{what}: `{}` takes no argument `{k}`{hint}: its arguments are {}",
                        call.value,
                        all.join(", ")
                    ),
                );
            }
        }
        let args = plan::ValueTpl::Map(
            args.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        self.value_tpl(v, scope, &format!("{what} argument `{k}`")),
                    )
                })
                .collect(),
        );
        Some(NodeKind::Call {
            role: role.name.to_owned(),
            action: action.name.to_owned(),
            args,
        })
    }

    fn lower_wait(&mut self, w: &Sp<WaitDef>, scope: &Scope, what: &str) -> Option<plan::Wait> {
        let wait = match &w.value {
            WaitDef::For(d) => plan::Wait::For(*d),
            WaitDef::Spec(spec) => {
                let given: Vec<(&str, Loc)> = [
                    ("for", spec.for_.as_ref().map(|x| x.loc)),
                    ("until", spec.until.as_ref().map(|x| x.loc)),
                    ("signal", spec.signal.as_ref().map(|x| x.loc)),
                ]
                .into_iter()
                .filter_map(|(k, l)| l.map(|l| (k, l)))
                .collect();
                match given.as_slice() {
                    [] => {
                        self.error(
                            self.src.key_of(w.loc, "wait"),
                            format!("{what}: `wait` needs one of `for`, `until` and `signal`"),
                        );
                        return None;
                    }
                    [(first, _), (second, loc), ..] => {
                        let at = self.src.key_of(*loc, second);
                        self.error(at, format!("{what}: `wait` has both `{first}` and `{second}`: give exactly one of `for`, `until` and `signal` (to wait for a signal at most some time, use `signal` with `timeout`)"));
                        return None;
                    }
                    [_] => {}
                }
                if let Some(d) = &spec.for_ {
                    plan::Wait::For(d.value)
                } else if let Some(u) = &spec.until {
                    plan::Wait::Until(self.expression(u, scope, &format!("{what} `until`"))?)
                } else {
                    let name = spec.signal.as_ref()?;
                    let ok = !name.value.is_empty()
                        && name.value.len() <= 64
                        && name.value.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                        });
                    if !ok {
                        self.error(name.loc, format!("{what}: signal name `{}` must be lower-case letters, digits, `-` and `_` (it is part of a URL)", name.value));
                    }
                    plan::Wait::Signal(name.value.clone())
                }
            }
        };
        Some(wait)
    }
}
