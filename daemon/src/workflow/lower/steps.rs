//! Phase two: each step lowered into its [`Node`], in its flow.
//!
//! A block (a list of steps) is lowered with its continuation: the node that
//! runs after its last step (`None`: the end of the thread). Branches inherit
//! the continuation of their step; parallel branches, foreach bodies and clock
//! handlers start threads of their own.

use super::super::authored::{self, Handler, OptionDef, StepDef, WaitDef};
use super::super::connectors;
use super::super::duration::Duration;
use super::super::plan::{self, Jump, Node, NodeKind};
use super::super::span::{Loc, Sp};
use super::{Lowerer, NodeId, PendingJump, Scope, is_identifier};

impl Lowerer {
    /// Lowers a block that starts a thread of its own.
    pub(super) fn lower_block(
        &mut self,
        steps: &[Sp<StepDef>],
        cont: Option<NodeId>,
        scope: &Scope,
        loc: Loc,
        what: &str,
    ) -> Option<NodeId> {
        if steps.is_empty() {
            self.error(loc, format!("`{what}` has no steps: add at least one"));
            return None;
        }
        let thread = self.ptrs[&std::ptr::from_ref(&steps[0].value)];
        self.lower_seq(steps, cont, scope, thread)
    }

    /// Lowers a block inside `thread`; returns its entry (or `cont` when empty).
    fn lower_seq(
        &mut self,
        steps: &[Sp<StepDef>],
        cont: Option<NodeId>,
        scope: &Scope,
        thread: NodeId,
    ) -> Option<NodeId> {
        let ids: Vec<NodeId> = steps
            .iter()
            .map(|s| self.ptrs[&std::ptr::from_ref(&s.value)])
            .collect();
        for (i, step) in steps.iter().enumerate() {
            let next = ids.get(i + 1).copied().or(cont);
            self.lower_step(step, ids[i], next, scope, thread);
        }
        ids.first().copied().or(cont)
    }

    fn lower_step(
        &mut self,
        step: &Sp<StepDef>,
        id: NodeId,
        mut next: Option<NodeId>,
        scope: &Scope,
        thread: NodeId,
    ) {
        let s = &step.value;
        let sid = s.id.value.clone();
        let what = format!("step `{sid}`");
        let kinds = s.kinds();
        self.check_stray_fields(s, &what, kinds.first().copied());

        let when = s.when.as_ref().and_then(|w| self.expression(w, scope, &format!("{what} `when`")));

        if let Some(goto) = &s.goto {
            if let Some(target) = self.jump_target(goto, id, &what, "goto") {
                next = Some(target);
            }
            if matches!(kinds.first(), Some(&"fail") | Some(&"succeed")) {
                self.error(goto.loc, format!("{what} ends the instance, so `goto` has no effect: remove it"));
            }
        }

        let kind = match kinds.as_slice() {
            [] => {
                self.error(step.loc, format!("{what} does nothing: give it one of {}", authored::STEP_KINDS.join(", ")));
                None
            }
            [_] => self.lower_kind(s, id, next, scope, thread, &what),
            [first, second, ..] => {
                self.error(step.loc, format!("{what} has both `{first}` and `{second}`: a step does one thing, split it into two steps"));
                None
            }
        };

        let retry = s.retry.as_ref().map(|r| self.lower_retry(r, &what));
        if let (Some(r), Some(k)) = (&s.retry, &kind)
            && !matches!(k, NodeKind::Call { .. })
        {
            self.error(r.loc, format!("{what}: `retry` applies only to `call` steps, not to `{}`", k.name()));
        }
        if let (Some(t), Some(k)) = (&s.timeout, &kind) {
            let fits = matches!(
                k,
                NodeKind::Call { .. } | NodeKind::Workflow { .. } | NodeKind::Wait(plan::Wait::Signal(_))
            );
            if !fits {
                let hint = if matches!(k, NodeKind::Approval(_)) { ": use the approval's `deadline`" } else { "" };
                self.error(t.loc, format!("{what}: `timeout` applies to `call`, `workflow` and `wait` for a signal, not to `{}`{hint}", k.name()));
            }
            if t.value.is_zero() {
                self.error(t.loc, format!("{what}: a timeout of 0s would always expire"));
            }
        }
        let handler_scope = scope.with("error");
        let on_error = s.on_error.as_ref().map(|h| self.lower_handler(h, id, next, &handler_scope, thread, &what, "on_error"));
        let on_timeout = s.on_timeout.as_ref().map(|h| self.lower_handler(h, id, next, &handler_scope, thread, &what, "on_timeout"));
        if let (Some(h), Some(k)) = (&s.on_timeout, &kind) {
            let can_time_out = s.timeout.is_some()
                || matches!(k, NodeKind::Approval(a) if a.deadline.is_some() && a.default.is_none());
            if !can_time_out {
                self.error(h.loc, format!("{what} cannot time out (no `timeout`, or an approval without a `deadline` or with a `default`), so `on_timeout` never runs"));
            }
        }

        let Some(kind) = kind else { return };
        let next = match kind {
            NodeKind::Fail { .. } | NodeKind::Succeed { .. } => None,
            _ => next,
        };
        self.nodes[id.index()] = Some(Node {
            step: sid,
            name: s.name.as_ref().map(|n| n.value.clone()),
            loc: s.id.loc,
            thread,
            when,
            kind,
            next,
            retry,
            timeout: s.timeout.as_ref().map(|t| t.value),
            on_error: on_error.flatten(),
            on_timeout: on_timeout.flatten(),
        });
    }

    /// Fields that belong to another kind than the step's.
    fn check_stray_fields(&mut self, s: &StepDef, what: &str, kind: Option<&str>) {
        let owned: [(&str, Option<Loc>, &str); 9] = [
            ("with", s.with.as_ref().map(|v| v.loc), "call"),
            ("then", s.then.as_ref().map(|v| v.loc), "if"),
            ("else", s.else_.as_ref().map(|v| v.loc), "if"),
            ("cases", s.cases.as_ref().map(|v| v.loc), "switch"),
            ("default", s.default.as_ref().map(|v| v.loc), "switch"),
            ("as", s.as_.as_ref().map(|v| v.loc), "foreach"),
            ("concurrency", s.concurrency.as_ref().map(|v| v.loc), "foreach"),
            ("steps", s.steps.as_ref().map(|v| v.loc), "foreach"),
            ("input", s.input.as_ref().map(|v| v.loc), "workflow"),
        ];
        for (field, loc, belongs) in owned {
            if let Some(loc) = loc
                && kind.is_some_and(|k| k != belongs)
            {
                self.error(loc, format!("{what}: `{field}` belongs to a `{belongs}` step, and this is a `{}` step", kind.unwrap_or("?")));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn lower_handler(
        &mut self,
        h: &Sp<Handler>,
        from: NodeId,
        next: Option<NodeId>,
        scope: &Scope,
        thread: NodeId,
        what: &str,
        field: &'static str,
    ) -> Option<Jump> {
        match &h.value {
            Handler::Goto(name) => {
                let target = self.jump_target(&Sp::new(name.clone(), h.loc), from, what, field)?;
                Some(Jump { to: Some(target) })
            }
            Handler::Steps(steps) => {
                if steps.is_empty() {
                    self.error(h.loc, format!("{what}: `{field}` is an empty list: name a step to go to, or list steps to run"));
                    return None;
                }
                Some(Jump { to: self.lower_seq(steps, next, scope, thread) })
            }
        }
    }

    /// Resolves a jump by step id; the thread check waits for `graph`.
    fn jump_target(&mut self, name: &Sp<String>, from: NodeId, what: &str, field: &'static str) -> Option<NodeId> {
        match self.by_id.get(&name.value) {
            Some(target) => {
                self.pending.push(PendingJump { from, target: *target, loc: name.loc, what: field });
                Some(*target)
            }
            None => {
                let hint = closest(&name.value, self.by_id.keys())
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                self.error(name.loc, format!("{what}: `{field}` names step `{}`, which does not exist{hint}", name.value));
                None
            }
        }
    }

    fn lower_retry(&mut self, r: &Sp<authored::RetryDef>, what: &str) -> plan::Retry {
        let d = plan::Retry::default();
        let attempts = r.attempts.as_ref().map(|a| a.value).unwrap_or(d.attempts);
        if attempts == 0 || attempts > 100 {
            let loc = r.attempts.as_ref().map(|a| a.loc).unwrap_or(r.loc);
            self.error(loc, format!("{what}: `attempts` must be between 1 and 100 (the first attempt counts)"));
        }
        let backoff = r.backoff.as_ref().map(|b| b.value).unwrap_or(d.backoff);
        let max_backoff = r.max_backoff.as_ref().map(|b| b.value).unwrap_or(d.max_backoff.max(backoff));
        if max_backoff < backoff {
            let loc = r.max_backoff.as_ref().map(|b| b.loc).unwrap_or(r.loc);
            self.error(loc, format!("{what}: `max_backoff` {max_backoff} is shorter than `backoff` {backoff}"));
        }
        plan::Retry { attempts, backoff, max_backoff }
    }

    fn lower_kind(
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
            return self.lower_approval(a, id, scope, what).map(|a| NodeKind::Approval(Box::new(a)));
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
                    self.error(s.if_.as_ref().map(|i| i.loc).unwrap_or(s.id.loc), format!("{what}: an `if` needs `then` steps"));
                    next
                }
            };
            let otherwise = match &s.else_ {
                Some(b) => self.lower_seq(&b.value, next, scope, thread),
                None => next,
            };
            return Some(NodeKind::If { cond: cond?, then, otherwise });
        }
        if let Some(on) = &s.switch {
            let on = self.expression(on, scope, &format!("{what} `switch`"));
            let mut cases = Vec::new();
            match &s.cases {
                Some(c) if !c.value.is_empty() => {
                    for (value, block) in &c.value {
                        cases.push((value.clone(), self.lower_seq(&block.value, next, scope, thread)));
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
            return Some(NodeKind::Switch { on: on?, cases, default });
        }
        if let Some(branches) = &s.parallel {
            if branches.value.len() < 2 {
                self.error(branches.loc, format!("{what}: `parallel` needs at least two branches"));
            }
            let mut out = Vec::new();
            for (name, block) in &branches.value {
                let entry = self.lower_block(&block.value, None, scope, block.loc, &format!("parallel branch `{name}`"));
                out.push((name.clone(), entry));
            }
            return Some(NodeKind::Parallel { branches: out });
        }
        if let Some(items) = &s.foreach {
            let items = self.expression(items, scope, &format!("{what} `foreach`"));
            let var = s.as_.as_ref().map(|a| a.value.clone()).unwrap_or_else(|| "item".into());
            if let Some(a) = &s.as_
                && (!is_identifier(&a.value) || super::super::template::ROOT_VARIABLES.contains(&a.value.as_str()))
            {
                self.error(a.loc, format!("{what}: `as: {}` must be a name of letters, digits and `_`, and not one of {}", a.value, super::super::template::ROOT_VARIABLES.join(", ")));
            }
            let concurrency = s.concurrency.as_ref().map(|c| c.value).unwrap_or(1);
            if !(1..=1000).contains(&concurrency) {
                let loc = s.concurrency.as_ref().map(|c| c.loc).unwrap_or(s.id.loc);
                self.error(loc, format!("{what}: `concurrency` must be between 1 and 1000"));
            }
            let body = match &s.steps {
                Some(b) => self.lower_block(&b.value, None, &scope.with(&var), b.loc, &format!("{what} `steps`")),
                None => {
                    self.error(s.foreach.as_ref().map(|f| f.loc).unwrap_or(s.id.loc), format!("{what}: a `foreach` needs `steps` to run for each item"));
                    None
                }
            };
            return Some(NodeKind::Foreach { items: items?, var, concurrency, body });
        }
        if let Some(wf) = &s.workflow {
            self.sub_workflows.insert(wf.value.clone());
            let input = match &s.input {
                Some(i) => self.value_map(i, scope, &format!("{what} input")),
                None => plan::ValueTpl::Literal(serde_json::json!({})),
            };
            return Some(NodeKind::Workflow { id: wf.value.clone(), input });
        }
        if let Some(set) = &s.set {
            let mut vars = Vec::new();
            for (k, v) in &set.value {
                if !is_identifier(k) {
                    self.error(v.loc, format!("{what}: variable name `{k}` is not valid: use lower-case letters, digits and `_` (it is read as `vars.{k}`)"));
                }
                vars.push((k.clone(), self.value_tpl(v, scope, &format!("{what} `set.{k}`"))));
            }
            if vars.is_empty() {
                self.error(set.loc, format!("{what}: `set` has no variables"));
            }
            return Some(NodeKind::Set { vars });
        }
        if let Some(msg) = &s.fail {
            return self.template(msg, scope, &format!("{what} `fail`")).map(|message| NodeKind::Fail { message });
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
            self.error(call.loc, format!("{what}: `call: {}` must name a role and an action, such as `ticketing.create`", call.value));
            return None;
        };
        let Some(role) = connectors::role(role_name) else {
            self.error(call.loc, format!("{what}: unknown connector role `{role_name}`: the roles are {}", connectors::role_names()));
            return None;
        };
        let Some(action) = role.action(action_name) else {
            self.error(call.loc, format!("{what}: role `{role_name}` has no action `{action_name}`: its actions are {}", role.action_names()));
            return None;
        };
        self.roles.insert(role.name.to_owned());
        let empty = indexmap::IndexMap::new();
        let args = with.map(|w| &w.value).unwrap_or(&empty);
        let loc = with.map(|w| w.loc).unwrap_or(call.loc);
        for req in action.required {
            if !args.contains_key(*req) {
                self.error(loc, format!("{what}: `{}` needs the argument `{req}` under `with`", call.value));
            }
        }
        for (k, v) in args {
            if !action.required.contains(&k.as_str()) && !action.optional.contains(&k.as_str()) {
                let all: Vec<&str> = action.required.iter().chain(action.optional).copied().collect();
                self.error(v.loc, format!("{what}: `{}` takes no argument `{k}`: its arguments are {}", call.value, all.join(", ")));
            }
        }
        let args = plan::ValueTpl::Map(
            args.iter()
                .map(|(k, v)| (k.clone(), self.value_tpl(v, scope, &format!("{what} argument `{k}`"))))
                .collect(),
        );
        Some(NodeKind::Call { role: role.name.to_owned(), action: action.name.to_owned(), args })
    }

    fn lower_wait(&mut self, w: &Sp<WaitDef>, scope: &Scope, what: &str) -> Option<plan::Wait> {
        let wait = match &w.value {
            WaitDef::For(d) => plan::Wait::For(*d),
            WaitDef::Spec(spec) => {
                let given = [spec.for_.is_some(), spec.until.is_some(), spec.signal.is_some()];
                if given.iter().filter(|g| **g).count() != 1 {
                    self.error(w.loc, format!("{what}: `wait` takes exactly one of `for`, `until` and `signal`"));
                    return None;
                }
                if let Some(d) = &spec.for_ {
                    plan::Wait::For(d.value)
                } else if let Some(u) = &spec.until {
                    plan::Wait::Until(self.expression(u, scope, &format!("{what} `until`"))?)
                } else {
                    let name = spec.signal.as_ref()?;
                    let ok = !name.value.is_empty()
                        && name.value.len() <= 64
                        && name.value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
                    if !ok {
                        self.error(name.loc, format!("{what}: signal name `{}` must be lower-case letters, digits, `-` and `_` (it is part of a URL)", name.value));
                    }
                    plan::Wait::Signal(name.value.clone())
                }
            }
        };
        Some(wait)
    }

    fn lower_approval(&mut self, a: &Sp<authored::ApprovalDef>, id: NodeId, scope: &Scope, what: &str) -> Option<plan::Approval> {
        let d = &a.value;
        let title = self.template(&d.title, scope, &format!("{what} title"));
        let description = d.description.as_ref().and_then(|t| self.template(t, scope, &format!("{what} description")));
        if d.assignees.is_empty() {
            self.error(a.loc, format!("{what}: the approval has no `assignees`: add addresses, `role:` names or a template such as `{{{{ item.manager }}}}`"));
        }
        let assignees: Vec<plan::Assignee> = d.assignees.iter().filter_map(|x| self.assignee(x, scope, what)).collect();

        let mut options: Vec<plan::DecisionOption> = Vec::new();
        let defaults = [
            OptionDef::Id("approve".into()),
            OptionDef::Id("reject".into()),
        ];
        let authored: Vec<(Loc, &OptionDef)> = if d.options.is_empty() {
            defaults.iter().map(|o| (a.loc, o)).collect()
        } else {
            d.options.iter().map(|o| (o.loc, &o.value)).collect()
        };
        for (loc, o) in authored {
            let (oid, label, goto, require_comment) = match o {
                OptionDef::Id(s) => (Sp::new(s.clone(), loc), None, None, None),
                OptionDef::Full(spec) => (
                    spec.id.clone(),
                    spec.label.as_ref().map(|l| l.value.clone()),
                    spec.goto.as_ref(),
                    spec.require_comment.as_ref().map(|r| r.value),
                ),
            };
            if !is_identifier(&oid.value) {
                self.error(oid.loc, format!("{what}: option `{}` must be lower-case letters, digits and `_`, such as `approve` or `send_back`", oid.value));
            }
            if options.iter().any(|o| o.id == oid.value) {
                self.error(oid.loc, format!("{what}: option `{}` is listed twice", oid.value));
                continue;
            }
            let goto = goto.and_then(|g| self.jump_target(g, id, what, "goto")).map(|t| Jump { to: Some(t) });
            options.push(plan::DecisionOption {
                label: label.unwrap_or_else(|| humanize(&oid.value)),
                id: oid.value,
                goto,
                require_comment: require_comment.unwrap_or(false),
            });
        }
        let quorum = match d.quorum.as_ref().map(|q| (q.value, q.loc)) {
            None | Some((authored::Quorum::Word(authored::QuorumWord::Any), _)) => plan::Quorum::Any,
            Some((authored::Quorum::Word(authored::QuorumWord::All), _)) => plan::Quorum::All,
            Some((authored::Quorum::Count(n), loc)) => {
                let all_static = assignees.iter().all(|x| matches!(x, plan::Assignee::Address(_)));
                if n == 0 {
                    self.error(loc, format!("{what}: a quorum of 0 would decide without anyone: use at least 1"));
                } else if all_static && n as usize > assignees.len() && !assignees.is_empty() {
                    self.error(loc, format!("{what}: quorum {n} is larger than the {} assignee(s), so the task could never be decided", assignees.len()));
                }
                plan::Quorum::Count(n)
            }
        };

        let deadline = d.deadline.as_ref().and_then(|dl| self.deadline(dl, scope, what));
        let default = match &d.default {
            Some(def) => {
                if deadline.is_none() {
                    self.error(def.loc, format!("{what}: a `default` decision needs a `deadline` to apply at"));
                }
                match options.iter().position(|o| o.id == def.value) {
                    Some(i) => Some(i),
                    None => {
                        let ids: Vec<&str> = options.iter().map(|o| o.id.as_str()).collect();
                        self.error(def.loc, format!("{what}: the default decision `{}` is not one of the options ({})", def.value, ids.join(", ")));
                        None
                    }
                }
            }
            None => None,
        };

        let reminders = match &d.reminders {
            Some(r) => {
                let max = r.value.max.as_ref().map(|m| m.value).unwrap_or(10);
                if let Some(every) = &r.value.every
                    && every.value < Duration::from_secs(300)
                {
                    self.error(every.loc, format!("{what}: reminders more often than every 5m would flood the assignees' mailboxes"));
                }
                if !r.value.before_deadline.is_empty() && deadline.is_none() {
                    self.error(r.loc, format!("{what}: `before_deadline` reminders need a `deadline`"));
                }
                if let Some(plan::Deadline::After(dl)) = &deadline {
                    for x in &r.value.after {
                        if x.value >= *dl {
                            self.error(x.loc, format!("{what}: a reminder {} after opening comes after the deadline ({dl})", x.value));
                        }
                    }
                }
                let mut after: Vec<Duration> = r.value.after.iter().map(|x| x.value).collect();
                after.sort();
                plan::Reminders {
                    every: r.value.every.as_ref().map(|e| e.value),
                    max,
                    after,
                    before_deadline: r.value.before_deadline.iter().map(|x| x.value).collect(),
                }
            }
            None => plan::Reminders::default(),
        };

        let mut escalation = Vec::new();
        let mut last: Option<Duration> = None;
        for rung in &d.escalation {
            let r = &rung.value;
            if let Some(prev) = last
                && r.after.value <= prev
            {
                self.error(r.after.loc, format!("{what}: escalation rungs must come in order of time: {} is not after {prev}", r.after.value));
            }
            if let Some(plan::Deadline::After(dl)) = &deadline
                && r.after.value >= *dl
            {
                self.error(r.after.loc, format!("{what}: escalation after {} comes after the deadline ({dl}) and would never happen", r.after.value));
            }
            last = Some(r.after.value);
            if r.to.is_empty() {
                self.error(rung.loc, format!("{what}: an escalation rung needs `to`: whom to escalate to"));
            }
            let to = r.to.iter().filter_map(|x| self.assignee(x, scope, what)).collect();
            let note = r.note.as_ref().and_then(|n| self.template(n, scope, &format!("{what} escalation note")));
            escalation.push(plan::Escalation { after: r.after.value, to, replace: r.replace.as_ref().is_some_and(|x| x.value), note });
        }

        Some(plan::Approval {
            title: title?,
            description,
            assignees,
            options,
            quorum,
            require_comment: d.require_comment.as_ref().is_some_and(|r| r.value),
            no_self_approval: d.no_self_approval.as_ref().is_some_and(|r| r.value),
            allow_delegation: d.allow_delegation.as_ref().is_none_or(|r| r.value),
            reminders,
            escalation,
            deadline,
            default,
        })
    }

    fn deadline(&mut self, dl: &Sp<String>, scope: &Scope, what: &str) -> Option<plan::Deadline> {
        let text = dl.value.trim();
        if text.starts_with(|c: char| c.is_ascii_digit()) {
            match Duration::parse(text) {
                Ok(d) if d.is_zero() => {
                    self.error(dl.loc, format!("{what}: a deadline of 0s has always passed"));
                    None
                }
                Ok(d) => Some(plan::Deadline::After(d)),
                Err(e) => {
                    self.error(dl.loc, format!("{what}: bad deadline: {e}"));
                    None
                }
            }
        } else {
            self.expression(dl, scope, &format!("{what} deadline")).map(plan::Deadline::At)
        }
    }

    fn assignee(&mut self, x: &Sp<String>, scope: &Scope, what: &str) -> Option<plan::Assignee> {
        let v = x.value.trim();
        if v.contains("{{") {
            return self.template(x, scope, &format!("{what} assignee")).map(plan::Assignee::Template);
        }
        if let Some(role) = v.strip_prefix("role:") {
            let role = role.trim();
            if role.is_empty() || !role.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                self.error(x.loc, format!("{what}: `{v}` must name a role from the daemon's config, such as `role:dpo`"));
                return None;
            }
            return Some(plan::Assignee::Role(role.to_owned()));
        }
        if super::check_type(authored::FieldType::Email, &serde_json::Value::String(v.to_owned())).is_err() {
            self.error(x.loc, format!("{what}: assignee `{v}` is not an e-mail address, a `role:` name or a template"));
            return None;
        }
        Some(plan::Assignee::Address(v.to_lowercase()))
    }
}

/// `send_back` → `Send back`.
fn humanize(id: &str) -> String {
    let s = id.replace('_', " ");
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => s,
    }
}

/// The candidate nearest to `name` by edit distance, if close enough.
pub(super) fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
