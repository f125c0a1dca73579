//! Approval steps: the human task, lowered and checked.
//!
//! Assignees are addresses, `role:` names or templates; options default to
//! approve and reject; a quorum must be reachable by the listed assignees; a
//! `default` decision needs a `deadline` and must be one of the options;
//! reminders and escalation rungs must come before the deadline, in order.

use super::super::authored::{self, OptionDef};
use super::super::duration::Duration;
use super::super::plan::{self, Jump};
use super::super::span::{Loc, Sp};
use super::{Lowerer, NodeId, Scope, is_identifier};

impl Lowerer {
    pub(super) fn lower_approval(
        &mut self,
        a: &Sp<authored::ApprovalDef>,
        id: NodeId,
        scope: &Scope,
        what: &str,
    ) -> Option<plan::Approval> {
        let d = &a.value;
        let title = self.template(&d.title, scope, &format!("{what} `title`"));
        let description = d
            .description
            .as_ref()
            .and_then(|t| self.template(t, scope, &format!("{what} `description`")));
        if d.assignees.is_empty() {
            let at = self.src.owner_key(a.loc);
            self.error(at, format!("{what}: the approval has no `assignees`: add addresses, `role:` names or a template such as `{{{{ item.manager }}}}`"));
        }
        let assignees: Vec<plan::Assignee> = d
            .assignees
            .iter()
            .filter_map(|x| self.assignee(x, scope, what))
            .collect();

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
                self.error(
                    oid.loc,
                    format!("{what}: option `{}` is listed twice: remove one", oid.value),
                );
                continue;
            }
            let goto = goto
                .and_then(|g| self.jump_target(g, id, what, "goto"))
                .map(|t| Jump { to: Some(t) });
            options.push(plan::DecisionOption {
                label: label.unwrap_or_else(|| humanize(&oid.value)),
                id: oid.value,
                goto,
                require_comment: require_comment.unwrap_or(false),
            });
        }
        let quorum = match d.quorum.as_ref().map(|q| (q.value, q.loc)) {
            None | Some((authored::Quorum::Word(authored::QuorumWord::Any), _)) => {
                plan::Quorum::Any
            }
            Some((authored::Quorum::Word(authored::QuorumWord::All), _)) => plan::Quorum::All,
            Some((authored::Quorum::Count(n), loc)) => {
                let all_static = assignees
                    .iter()
                    .all(|x| matches!(x, plan::Assignee::Address(_)));
                if n == 0 {
                    self.error(
                        loc,
                        format!(
                            "{what}: a quorum of 0 would decide without anyone: use at least 1"
                        ),
                    );
                } else if all_static && n as usize > assignees.len() && !assignees.is_empty() {
                    let people = if assignees.len() == 1 {
                        "assignee".to_owned()
                    } else {
                        format!("{} assignees", assignees.len())
                    };
                    self.error(loc, format!("{what}: quorum {n} is larger than the {people} listed, so the task could never be decided: lower `quorum` or add assignees"));
                }
                plan::Quorum::Count(n)
            }
        };

        let deadline = d
            .deadline
            .as_ref()
            .and_then(|dl| self.deadline(dl, scope, what));
        let default = match &d.default {
            Some(def) => {
                if deadline.is_none() {
                    self.error(def.loc, format!("{what}: a `default` decision needs a `deadline` to apply at: add `deadline`, such as `deadline: 3d`, or remove `default`"));
                }
                match options.iter().position(|o| o.id == def.value) {
                    Some(i) => Some(i),
                    None => {
                        let ids: Vec<&str> = options.iter().map(|o| o.id.as_str()).collect();
                        let hint = super::steps::closest(&def.value, ids.iter())
                            .map(|c| format!(" (did you mean `{c}`?)"))
                            .unwrap_or_default();
                        self.error(def.loc, format!("{what}: the default decision `{}` is not one of the options{hint}: they are {}", def.value, ids.join(", ")));
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
                    self.error(
                        self.src.owner_key(r.loc),
                        format!("{what}: `before_deadline` reminders need a `deadline`"),
                    );
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
                self.error(
                    r.after.loc,
                    format!("{what}: an escalation rung needs `to`: whom to escalate to"),
                );
            }
            let to =
                r.to.iter()
                    .filter_map(|x| self.assignee(x, scope, what))
                    .collect();
            let note = r
                .note
                .as_ref()
                .and_then(|n| self.template(n, scope, &format!("{what} escalation `note`")));
            escalation.push(plan::Escalation {
                after: r.after.value,
                to,
                replace: r.replace.as_ref().is_some_and(|x| x.value),
                note,
            });
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
                    self.error(
                        dl.loc,
                        format!("{what}: a deadline of 0s has always passed"),
                    );
                    None
                }
                Ok(d) => Some(plan::Deadline::After(d)),
                Err(e) => {
                    self.error(dl.loc, format!("{what}: `deadline` is not a duration: {e}"));
                    None
                }
            }
        } else {
            self.expression(dl, scope, &format!("{what} `deadline`"))
                .map(plan::Deadline::At)
        }
    }

    fn assignee(&mut self, x: &Sp<String>, scope: &Scope, what: &str) -> Option<plan::Assignee> {
        let v = x.value.trim();
        if v.contains("{{") {
            return self
                .template(x, scope, &format!("{what} assignee"))
                .map(plan::Assignee::Template);
        }
        if let Some(role) = v.strip_prefix("role:") {
            let role = role.trim();
            if role.is_empty()
                || !role
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                self.error(x.loc, format!("{what}: `{v}` must name a role from the daemon's config, such as `role:dpo`"));
                return None;
            }
            return Some(plan::Assignee::Role(role.to_owned()));
        }
        if super::check_type(
            authored::FieldType::Email,
            &serde_json::Value::String(v.to_owned()),
        )
        .is_err()
        {
            self.error(x.loc, format!("{what}: assignee `{v}` is not an e-mail address, a `role:` name or a template: write `name@kommun.se`, `role:{v}` or `{{{{ … }}}}`"));
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
