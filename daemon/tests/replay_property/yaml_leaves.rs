//! Writing the two kinds of step with the most options as YAML: calls of
//! connector actions (arguments, retry, timeout) and approvals (assignees,
//! options, quorum, deadline, default, reminders, escalation).

use std::collections::BTreeSet;

use crate::Bug;
use crate::ast::*;
use crate::yaml::{Scope, Writer, list, pick, q};

impl Writer {
    pub(crate) fn call(&mut self, c: &Call, ids: &[String], i: usize, ind: usize, scope: &Scope) {
        let all = actions();
        let (role, action) = all[c.action as usize % all.len()];
        self.line(ind, &format!("call: {role}.{}", action.name));
        let mut args: Vec<(&str, String)> = Vec::new();
        for (k, name) in action.required.iter().enumerate() {
            let v = if k == 0 {
                self.val(c.arg, scope)
            } else {
                q("x")
            };
            args.push((name, v));
        }
        if c.optional_arg
            && let Some(name) = action.optional.first()
        {
            let v = if args.is_empty() {
                self.val(c.arg, scope)
            } else {
                q("opt")
            };
            args.push((name, v));
        }
        if !args.is_empty() {
            self.line(ind, "with:");
            for (name, v) in args {
                self.line(ind + 2, &format!("{name}: {v}"));
            }
        }
        if let Some((attempts, backoff)) = c.retry {
            self.line(
                ind,
                &format!(
                    "retry: {{attempts: {attempts}, backoff: {}}}",
                    pick(BACKOFFS, backoff)
                ),
            );
        }
        if let Some(t) = c.timeout {
            self.line(ind, &format!("timeout: {}", pick(CALL_TIMEOUTS, t)));
            if let Some(h) = &c.on_timeout {
                self.handler("on_timeout", h, ids, i, ind, scope);
            }
        }
    }

    pub(crate) fn approval(
        &mut self,
        a: &Approval,
        ids: &[String],
        i: usize,
        ind: usize,
        scope: &Scope,
    ) {
        self.line(ind, "approval:");
        let ind2 = ind + 2;
        let title = match scope.item {
            Some(var) => format!("Item {{{{ {var} }}}} ({{{{ input.kind }}}})"),
            None => "Review {{ input.kind }}".to_owned(),
        };
        self.line(ind2, &format!("title: {}", q(&title)));
        let mut assignees: Vec<&str> = a.assignees.iter().map(|x| pick(ASSIGNEES, *x)).collect();
        let mut seen = BTreeSet::new();
        assignees.retain(|x| seen.insert(*x));
        self.line(ind2, &format!("assignees: {}", list(&assignees)));
        let mut option_ids: Vec<&str> = vec!["approve", "reject"];
        let mut jumps: Vec<bool> = vec![false, false];
        if let Some(opts) = &a.options {
            let mut seen = BTreeSet::new();
            let opts: Vec<&Opt> = opts.iter().filter(|o| seen.insert(o.id % 4)).collect();
            // At least one option must go on to the next step, or it could never run.
            let all_jump = opts.iter().all(|o| o.goto_back.is_some());
            option_ids.clear();
            jumps.clear();
            self.line(ind2, "options:");
            for (k, o) in opts.iter().enumerate() {
                let id = pick(OPTION_IDS, o.id);
                option_ids.push(id);
                let mut fields = vec![format!("id: {}", q(id))];
                let jump = o.goto_back.filter(|_| !(all_jump && k == 0));
                jumps.push(jump.is_some());
                if let Some(back) = jump {
                    fields.push(format!("goto: {}", ids[i.saturating_sub(back as usize)]));
                }
                if o.require_comment {
                    fields.push("require_comment: true".to_owned());
                }
                self.line(ind2 + 2, &format!("- {{{}}}", fields.join(", ")));
            }
        }
        let static_count = assignees
            .iter()
            .filter(|x| !x.contains("{{") && !x.starts_with("role:"))
            .count();
        match a.quorum {
            Quorum::Any => self.line(ind2, "quorum: any"),
            Quorum::All => self.line(ind2, "quorum: all"),
            Quorum::N(n) => {
                let mut n = u32::from(n).max(1);
                if static_count == assignees.len() {
                    n = n.min(assignees.len() as u32);
                }
                self.line(ind2, &format!("quorum: {n}"));
            }
        }
        if a.require_comment {
            self.line(ind2, "require_comment: true");
        }
        if a.no_self_approval {
            self.line(ind2, "no_self_approval: true");
        }
        if a.no_delegation {
            self.line(ind2, "allow_delegation: false");
        }
        let mut has_default = false;
        if let Some(d) = a.deadline {
            match d {
                Deadline::After(k) => self.line(ind2, &format!("deadline: {}", pick(DEADLINES, k))),
                Deadline::AtInput => self.line(ind2, &format!("deadline: {}", q("input.due_at"))),
            }
            let loops = |k: u8| matches!(d, Deadline::AtInput) && pick(&jumps, k);
            if let Some(k) = a
                .default
                .filter(|k| !(self.mode.avoids(Bug::B6DefaultAtPastDeadlineLoops) && loops(*k)))
            {
                has_default = true;
                self.line(ind2, &format!("default: {}", pick(&option_ids, k)));
            }
        }
        if let Some(r) = &a.reminders {
            let mut fields = Vec::new();
            if let Some(e) = r.every {
                fields.push(format!("every: {}", pick(REMIND_EVERY, e)));
            }
            if let Some(m) = r.max {
                fields.push(format!("max: {m}"));
            }
            let mut after: Vec<u8> = r
                .after
                .iter()
                .map(|x| x % REMIND_AFTER.len() as u8)
                .collect();
            after.sort();
            after.dedup();
            let after: Vec<&str> = after.iter().map(|x| pick(REMIND_AFTER, *x)).collect();
            if !after.is_empty() {
                fields.push(format!("after: [{}]", after.join(", ")));
            }
            if a.deadline.is_some() && !r.before_deadline.is_empty() {
                let before: Vec<&str> = r
                    .before_deadline
                    .iter()
                    .map(|x| pick(BEFORE_DEADLINE, *x))
                    .collect();
                fields.push(format!("before_deadline: [{}]", before.join(", ")));
            }
            if !fields.is_empty() {
                self.line(ind2, &format!("reminders: {{{}}}", fields.join(", ")));
            }
        }
        if !a.escalation.is_empty() {
            self.line(ind2, "escalation:");
            for (k, rung) in a.escalation.iter().enumerate() {
                let mut to: Vec<&str> = rung.to.iter().map(|x| pick(ESCALATE_TO, *x)).collect();
                if self.mode.avoids(Bug::B1EscalationFailureLeavesTaskOpen) {
                    to.retain(|x| !x.contains("input.backup"));
                    if to.is_empty() {
                        to.push(ESCALATE_TO[0]);
                    }
                }
                let mut seen = BTreeSet::new();
                to.retain(|x| seen.insert(*x));
                let mut fields = vec![
                    format!("after: {}", RUNG_AFTER[k]),
                    format!("to: {}", list(&to)),
                ];
                if rung.replace {
                    fields.push("replace: true".to_owned());
                }
                if rung.note {
                    fields.push(format!("note: {}", q("late: {{ input.kind }}")));
                }
                self.line(ind2 + 2, &format!("- {{{}}}", fields.join(", ")));
            }
        }
        if a.deadline.is_some()
            && !has_default
            && let Some(h) = &a.on_timeout
        {
            self.handler("on_timeout", h, ids, i, ind, scope);
        }
    }
}
