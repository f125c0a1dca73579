//! Phase two: each step lowered into its [`Node`], in its flow.
//!
//! A block (a list of steps) is lowered with its continuation: the node that
//! runs after its last step (`None`: the end of the thread). Branches inherit
//! the continuation of their step; parallel branches, foreach bodies and clock
//! handlers start threads of their own.

use super::super::authored::{self, Handler, StepDef};
use super::super::plan::{self, Jump, Node, NodeKind};
use super::super::span::{Loc, Sp};
use super::{Lowerer, NodeId, PendingJump, Scope};

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
    pub(super) fn lower_seq(
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

        let when = s
            .when
            .as_ref()
            .and_then(|w| self.expression(w, scope, &format!("{what} `when`")));

        if let Some(goto) = &s.goto {
            if let Some(target) = self.jump_target(goto, id, &what, "goto") {
                next = Some(target);
            }
            if matches!(kinds.first(), Some(&"fail") | Some(&"succeed")) {
                self.error(
                    goto.loc,
                    format!("{what} ends the instance, so `goto` has no effect: remove it"),
                );
            }
        }

        let kind = match kinds.as_slice() {
            [] => {
                self.error(
                    s.id.loc,
                    format!(
                        "{what} does nothing: give it one of {}",
                        authored::STEP_KINDS.join(", ")
                    ),
                );
                None
            }
            [_] => self.lower_kind(s, id, next, scope, thread, &what),
            [first, second, ..] => {
                let at = kind_loc(s, second).map_or(s.id.loc, |l| self.src.key_of(l, second));
                self.error(at, format!("{what} has both `{first}` and `{second}`: a step does one thing; split it into two steps"));
                None
            }
        };

        let retry = s.retry.as_ref().map(|r| self.lower_retry(r, &what));
        if let (Some(r), Some(k)) = (&s.retry, &kind)
            && !matches!(k, NodeKind::Call { .. })
        {
            let hint = if matches!(k, NodeKind::Approval(_)) {
                ": a person decides once; use `reminders` or `escalation` to chase them"
            } else {
                ": remove it"
            };
            self.error(
                self.src.key_of(r.loc, "retry"),
                format!(
                    "{what}: `retry` applies only to `call` steps, not to `{}`{hint}",
                    k.name()
                ),
            );
        }
        if let (Some(t), Some(k)) = (&s.timeout, &kind) {
            let fits = matches!(
                k,
                NodeKind::Call { .. }
                    | NodeKind::Workflow { .. }
                    | NodeKind::Wait(plan::Wait::Signal(_))
            );
            if !fits {
                let hint = if matches!(k, NodeKind::Approval(_)) {
                    ": use the approval's `deadline`"
                } else {
                    ""
                };
                self.error(t.loc, format!("{what}: `timeout` applies to `call`, `workflow` and `wait` for a signal, not to `{}`{hint}", k.name()));
            }
            if t.value.is_zero() {
                self.error(
                    t.loc,
                    format!("{what}: a timeout of 0s would always expire"),
                );
            }
        }
        let handler_scope = scope.with("error");
        let on_error = s
            .on_error
            .as_ref()
            .map(|h| self.lower_handler(h, id, next, &handler_scope, thread, &what, "on_error"));
        let on_timeout = s
            .on_timeout
            .as_ref()
            .map(|h| self.lower_handler(h, id, next, &handler_scope, thread, &what, "on_timeout"));
        if let (Some(h), Some(k)) = (&s.on_timeout, &kind) {
            let why = match k {
                NodeKind::Approval(a) if a.deadline.is_none() => Some(
                    "the approval has no `deadline`, so it never times out: add a `deadline`, or remove `on_timeout`",
                ),
                NodeKind::Approval(a) if a.default.is_some() => Some(
                    "at the deadline the `default` decision applies, so the approval never times out: remove `default` or `on_timeout`",
                ),
                NodeKind::Approval(_) => None,
                NodeKind::Call { .. }
                | NodeKind::Workflow { .. }
                | NodeKind::Wait(plan::Wait::Signal(_))
                    if s.timeout.is_none() =>
                {
                    Some(
                        "the step has no `timeout`, so `on_timeout` never runs: add a `timeout`, such as `timeout: 10m`, or use `on_error`",
                    )
                }
                NodeKind::Call { .. }
                | NodeKind::Workflow { .. }
                | NodeKind::Wait(plan::Wait::Signal(_)) => None,
                _ => {
                    Some("this kind of step cannot time out, so `on_timeout` never runs: remove it")
                }
            };
            if let Some(why) = why {
                self.error(
                    self.src.key_of(h.loc, "on_timeout"),
                    format!("{what}: {why}"),
                );
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
            (
                "concurrency",
                s.concurrency.as_ref().map(|v| v.loc),
                "foreach",
            ),
            ("steps", s.steps.as_ref().map(|v| v.loc), "foreach"),
            ("input", s.input.as_ref().map(|v| v.loc), "workflow"),
        ];
        for (field, loc, belongs) in owned {
            if let Some(loc) = loc
                && let Some(kind) = kind
                && kind != belongs
            {
                let article = if belongs == "if" { "an" } else { "a" };
                self.error(self.src.key_of(loc, field), format!("{what}: `{field}` belongs to {article} `{belongs}` step, but this is a `{kind}` step: remove `{field}`, or move its content into a step of its own"));
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
                Some(Jump {
                    to: self.lower_seq(steps, next, scope, thread),
                })
            }
        }
    }

    /// Resolves a jump by step id; the thread check waits for `graph`.
    pub(super) fn jump_target(
        &mut self,
        name: &Sp<String>,
        from: NodeId,
        what: &str,
        field: &'static str,
    ) -> Option<NodeId> {
        match self.by_id.get(&name.value) {
            Some(target) => {
                self.pending.push(PendingJump {
                    from,
                    target: *target,
                    loc: name.loc,
                    what: field,
                });
                Some(*target)
            }
            None => {
                let hint = closest(&name.value, self.by_id.keys())
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                self.error(
                    name.loc,
                    format!(
                        "{what}: `{field}` names step `{}`, which does not exist{hint}",
                        name.value
                    ),
                );
                None
            }
        }
    }

    fn lower_retry(&mut self, r: &Sp<authored::RetryDef>, what: &str) -> plan::Retry {
        let d = plan::Retry::default();
        let attempts = r.attempts.as_ref().map(|a| a.value).unwrap_or(d.attempts);
        if attempts == 0 || attempts > 100 {
            let loc = r.attempts.as_ref().map(|a| a.loc).unwrap_or(r.loc);
            self.error(
                loc,
                format!("{what}: `attempts` must be between 1 and 100 (the first attempt counts)"),
            );
        }
        let backoff = r.backoff.as_ref().map(|b| b.value).unwrap_or(d.backoff);
        let max_backoff = r
            .max_backoff
            .as_ref()
            .map(|b| b.value)
            .unwrap_or(d.max_backoff.max(backoff));
        if max_backoff < backoff {
            let loc = r.max_backoff.as_ref().map(|b| b.loc).unwrap_or(r.loc);
            self.error(
                loc,
                format!("{what}: `max_backoff` {max_backoff} is shorter than `backoff` {backoff}"),
            );
        }
        plan::Retry {
            attempts,
            backoff,
            max_backoff,
        }
    }
}

/// The candidate nearest to `name` by edit distance, if close enough.
pub(crate) fn closest<S: AsRef<str>>(
    name: &str,
    candidates: impl IntoIterator<Item = S>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| {
            let c = c.as_ref();
            (edit_distance(name, c), c.to_owned())
        })
        .filter(|(d, c)| *d > 0 && *d <= 2.max(c.len() / 4))
        .min()
        .map(|(_, c)| c)
}

/// Where the value of one of a step's kind fields is written.
fn kind_loc(s: &StepDef, kind: &str) -> Option<Loc> {
    match kind {
        "call" => s.call.as_ref().map(|v| v.loc),
        "approval" => s.approval.as_ref().map(|v| v.loc),
        "wait" => s.wait.as_ref().map(|v| v.loc),
        "if" => s.if_.as_ref().map(|v| v.loc),
        "switch" => s.switch.as_ref().map(|v| v.loc),
        "parallel" => s.parallel.as_ref().map(|v| v.loc),
        "foreach" => s.foreach.as_ref().map(|v| v.loc),
        "workflow" => s.workflow.as_ref().map(|v| v.loc),
        "set" => s.set.as_ref().map(|v| v.loc),
        "fail" => s.fail.as_ref().map(|v| v.loc),
        "succeed" => s.succeed.as_ref().map(|v| v.loc),
        _ => None,
    }
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
