//! The runtime's [`Notifier`]: approval mail with signed links.
//!
//! For a notification (task opened, reminder, escalation, delegation) the
//! mailer resolves the recipients (addresses, and `role:NAME` through the
//! config's `roles`), then sends each address one mail through the `mail`
//! role of the connector (a plugin, or the `.eml` outbox). The mail says why
//! it came, shows the task, the workflow, the instance, who started it, the
//! due time and the instance's clocks, and holds one signed link per option:
//! `{base_url}/t/{token}`, bound to the task, the address and the option.
//! Opening a link shows a confirmation page; it decides nothing.
//!
//! At least once: the runtime's outbox retries a notification that returned
//! an error. Each mail's idempotency key is
//! `notify/{instance}/{task}/{reason}/{n}/{address}`, where `n` comes from
//! the task's stored state (0 for opening, the reminder count, the time of
//! the last notice, the instance's sequence for a delegation), so a retry
//! reuses the keys of the first attempt, and addresses already served by
//! this process are skipped. If a later notice changed that state before a
//! retry, the retry carries the newer state: the person still hears of it.
//! A connector's permanent refusal (a bad address) is logged and counted,
//! not retried for ever.
//!
//! Digests: the runtime's outbox hands over the notices of one instance it
//! read together (`notify_many`, in [`digest`]). An address with one task
//! among them gets the mail above; an address with several gets one digest
//! that lists every task with its own links.
//!
//! Personal data stays out of info logs: instance, task, reason and counts.

mod digest;
mod render;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::Config;
use super::links::{LinkClaim, LinkKey};
use super::metrics::Metrics;
use crate::engine::model::{NotifyReason, Record, rfc3339};
use crate::engine::{CallOutcome, Instance, Ts};
use crate::runtime::{BoxFuture, Clock, Connector, ConnectorCall, Notice, Notifier, SystemClock};
use crate::store::chain::Entry;
use crate::store::{Definitions, Instances, SledStore};
use crate::workflow::Plan;
use crate::workflow::plan::NodeKind;
use render::{Block, clip, one_line, reason_word};

/// Keys remembered as sent, so a retry does not mail them again.
const REMEMBER: usize = 4096;

/// Mails assignees.
pub struct Mailer {
    config: Arc<Config>,
    store: SledStore,
    connector: Arc<dyn Connector>,
    links: Arc<LinkKey>,
    metrics: Arc<Metrics>,
    base_url: String,
    clock: Arc<dyn Clock>,
    plans: Mutex<HashMap<String, Arc<Plan>>>,
    sent: Arc<Mutex<HashSet<String>>>,
}

/// One mail, ready for the connector.
#[derive(Debug, Clone)]
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mailer {
    pub fn new(
        config: Arc<Config>,
        store: SledStore,
        connector: Arc<dyn Connector>,
        links: Arc<LinkKey>,
        metrics: Arc<Metrics>,
        base_url: String,
    ) -> Self {
        let (sent, failed) = ("vakt_mail_sent_total", "vakt_mail_failed_total");
        metrics.describe(sent, "counter", "Task mails sent, by reason.");
        metrics.describe(
            failed,
            "counter",
            "Task mails the connector refused, by reason.",
        );
        Mailer {
            config,
            store,
            connector,
            links,
            metrics,
            base_url: base_url.trim_end_matches('/').to_owned(),
            clock: Arc::new(SystemClock),
            plans: Mutex::new(HashMap::new()),
            sent: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// Uses another clock for link expiry (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The plan an instance is pinned to, rebuilt from the stored definition.
    fn plan(&self, hash: &str) -> Result<Arc<Plan>, String> {
        if let Some(p) = self.plans.lock().expect("plans lock").get(hash) {
            return Ok(p.clone());
        }
        let source = self
            .store
            .definition(hash)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("definition {hash} is not in the store"))?;
        let plan = crate::workflow::load_source(format!("<stored {hash}>"), source)
            .result
            .map_err(|_| format!("definition {hash} no longer loads"))?;
        self.plans
            .lock()
            .expect("plans lock")
            .insert(hash.to_owned(), plan.clone());
        Ok(plan)
    }

    /// The addresses behind `to`, each once (case-insensitively), lowercased.
    pub fn recipients(&self, to: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for entry in to {
            let people = self.config.resolve(entry);
            if let Some(role) = entry.strip_prefix("role:")
                && people.is_empty()
            {
                tracing::warn!(
                    role,
                    "nobody holds role `{role}`: add addresses to `roles.{role}` in vakt.toml; its task mail is not sent"
                );
            }
            for p in people {
                let p = p.trim().to_lowercase();
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// The connector calls of one notification; empty when there is nothing
    /// to say (the task closed or the instance finished meanwhile).
    pub fn calls(
        &self,
        instance: &Instance,
        task: u32,
        to: &[String],
        reason: NotifyReason,
    ) -> Result<Vec<ConnectorCall>, String> {
        let Some(t) = instance.tasks.get(&task) else {
            return Ok(Vec::new());
        };
        if !t.open || instance.status.is_final() {
            return Ok(Vec::new());
        }
        let plan = self.plan(&instance.hash)?;
        let note = self.note(instance, task, reason);
        let now = self.clock.now();
        let recipients = self.recipients(to).into_iter();
        let mail = |a| self.single(instance, &plan, (task, reason), note.as_deref(), now, a);
        Ok(recipients.map(mail).collect())
    }

    /// One notice's mail to one address, as a connector call. Its key is
    /// `notify/{instance}/{task}/{reason}/{n}/{address}`.
    fn single(
        &self,
        instance: &Instance,
        plan: &Plan,
        (task, reason): (u32, NotifyReason),
        note: Option<&str>,
        now: Ts,
        address: String,
    ) -> ConnectorCall {
        let n = notice_n(instance, task, reason);
        let word = reason_word(reason);
        let m = self.compose(instance, plan, task, &address, reason, note, now);
        ConnectorCall {
            instance: instance.id.clone(),
            role: "mail".into(),
            action: "send".into(),
            idempotency_key: format!("notify/{}/{task}/{word}/{n}/{address}", instance.id),
            args: json!({"to": [address], "subject": m.subject, "body": m.text, "html": m.html}),
            attempt: 1,
            deadline: None,
        }
    }

    /// The note of the latest escalation, or who delegated and why.
    fn note(&self, instance: &Instance, task: u32, reason: NotifyReason) -> Option<String> {
        if !matches!(reason, NotifyReason::Escalation | NotifyReason::Delegated) {
            return None; // (do not read the history for nothing)
        }
        let history = self.store.history(&instance.id).ok()?;
        note_in(&history, task, reason)
    }

    /// The mail to one address.
    #[allow(clippy::too_many_arguments)]
    pub fn compose(
        &self,
        instance: &Instance,
        plan: &Plan,
        task: u32,
        address: &str,
        reason: NotifyReason,
        note: Option<&str>,
        now: Ts,
    ) -> Mail {
        let t = &instance.tasks[&task];
        let title = one_line(&t.title);
        let (subject, intro) = match reason {
            NotifyReason::Opened => ("Decision needed", "You are asked to decide on a task."),
            NotifyReason::Reminder => ("Reminder", "This task is still waiting for your decision."),
            NotifyReason::Escalation => (
                "Escalated",
                "This task was escalated: it is still waiting for a decision.",
            ),
            NotifyReason::Delegated => ("Delegated to you", "A task was delegated to you."),
        };
        let mut blocks = vec![Block::Text(intro.into())];
        blocks.extend(note.map(|n| Block::Text(n.into())));
        blocks.push(Block::Title(title.clone()));
        if !t.description.trim().is_empty() {
            blocks.push(Block::Text(t.description.trim_end().into()));
        }
        let mut facts = facts(instance, plan);
        if let Some(due) = t.due {
            facts.push(due_fact(due, now));
        }
        blocks.push(Block::Facts(facts));
        let expires = self.expires(now);
        let decide = self.decide(instance, plan, task, address, expires);
        let linked = matches!(decide, Some(Block::Links(_)));
        blocks.extend(decide);
        if linked {
            blocks.push(links_note(address, expires));
        }
        let (text, html) = render::body(&blocks);
        Mail {
            subject: format!("{subject}: {}", clip(&title, 150)),
            text,
            html,
        }
    }
    /// When links mailed now expire.
    fn expires(&self, now: Ts) -> Ts {
        now.saturating_add(self.config.mail.link_ttl.as_millis() as i64)
    }

    /// What `address` can do about a task: one signed link per option of an
    /// approval, or word that they already decided (then no links).
    fn decide(
        &self,
        instance: &Instance,
        plan: &Plan,
        task: u32,
        address: &str,
        expires: Ts,
    ) -> Option<Block> {
        let t = &instance.tasks[&task];
        let decided = t.votes.iter().find(|v| v.by.eq_ignore_ascii_case(address));
        match (decided, &plan.node(t.node).kind) {
            (Some(v), _) => Some(Block::Text(format!(
                "You have already decided: {}. Nothing more is needed from you.",
                v.option
            ))),
            (None, NodeKind::Approval(a)) => {
                let links = a.options.iter().map(|o| {
                    let claim = LinkClaim {
                        instance: instance.id.clone(),
                        task,
                        assignee: address.to_owned(),
                        option: o.id.clone(),
                        expires,
                        nonce: LinkClaim::nonce(),
                    };
                    let needs = a.require_comment || o.require_comment;
                    let label = format!(
                        "{}{}",
                        o.label,
                        if needs { " (needs a comment)" } else { "" }
                    );
                    (
                        label,
                        format!("{}/t/{}", self.base_url, self.links.sign(&claim)),
                    )
                });
                Some(Block::Links(links.collect()))
            }
            (None, _) => None,
        }
    }

    /// Sends prepared mails (each with its reason's metric label), skipping
    /// keys this process already sent. Returns (refused, a retryable error).
    fn deliver(
        &self,
        id: &str,
        calls: Vec<(ConnectorCall, &'static str)>,
    ) -> BoxFuture<(usize, Option<String>)> {
        let connector = self.connector.clone();
        let metrics = self.metrics.clone();
        let sent = self.sent.clone();
        let id = id.to_owned();
        Box::pin(async move {
            let (mut refused, mut retry) = (0, None);
            for (call, word) in calls {
                let key = call.idempotency_key.clone();
                if sent.lock().expect("sent lock").contains(&key) {
                    continue;
                }
                match connector.call(call).await {
                    CallOutcome::Ok(_) => {
                        metrics.inc("vakt_mail_sent_total", &[("reason", word)]);
                        let mut s = sent.lock().expect("sent lock");
                        if s.len() >= REMEMBER {
                            s.clear();
                        }
                        s.insert(key);
                    }
                    CallOutcome::Err {
                        message, retryable, ..
                    } => {
                        metrics.inc("vakt_mail_failed_total", &[("reason", word)]);
                        if retryable {
                            retry = Some(message);
                        } else {
                            refused += 1;
                            let why = "the mail connector refused a task mail; not retried";
                            tracing::warn!(instance = %id, reason = word, error = %message, "{why}");
                        }
                    }
                }
            }
            (refused, retry)
        })
    }
}

impl Notifier for Mailer {
    fn notify(
        &self,
        instance: &Instance,
        task: u32,
        to: &[String],
        reason: NotifyReason,
    ) -> BoxFuture<Result<(), String>> {
        let word = reason_word(reason);
        let id = instance.id.clone();
        let prepared = self.calls(instance, task, to, reason).map(|calls| {
            let total = calls.len();
            (
                total,
                self.deliver(&id, calls.into_iter().map(|c| (c, word)).collect()),
            )
        });
        Box::pin(async move {
            let (total, deliver) = prepared?;
            if total == 0 {
                tracing::debug!(instance = %id, task, reason = word, "nothing to mail");
                return Ok(());
            }
            let (refused, retry) = deliver.await;
            let retrying = retry.is_some();
            tracing::info!(instance = %id, task, reason = word, recipients = total, refused, retrying, "task mail");
            retry.map_or(Ok(()), |m| Err(format!("task mail: {m}")))
        })
    }

    fn notify_many(
        &self,
        instance: &Instance,
        notices: &[Notice],
    ) -> BoxFuture<Result<(), String>> {
        let id = instance.id.clone();
        let count = notices.len();
        let prepared = self.digest_calls(instance, notices).map(|calls| {
            let total = calls.len();
            (total, self.deliver(&id, calls))
        });
        Box::pin(async move {
            let (mails, deliver) = prepared?;
            if mails == 0 {
                tracing::debug!(instance = %id, notices = count, "nothing to mail");
                return Ok(());
            }
            let (refused, retry) = deliver.await;
            let retrying = retry.is_some();
            tracing::info!(instance = %id, notices = count, mails, refused, retrying, "task mail");
            retry.map_or(Ok(()), |m| Err(format!("task mail: {m}")))
        })
    }
}

/// The `n` of a notice's key, from the task's stored state, so that a retry
/// reuses it: 0 for opening, the reminder count, the time of the last
/// notice, the instance's sequence for a delegation.
fn notice_n(instance: &Instance, task: u32, reason: NotifyReason) -> i64 {
    let t = &instance.tasks[&task];
    match reason {
        NotifyReason::Opened => 0,
        NotifyReason::Reminder => i64::from(t.reminders_sent),
        NotifyReason::Escalation => t.last_notice_at.unwrap_or(t.opened_at),
        NotifyReason::Delegated => instance.seq as i64,
    }
}

/// What every mail about an instance says of it: workflow, instance, who
/// started it, and its clocks.
fn facts(instance: &Instance, plan: &Plan) -> Vec<(&'static str, String)> {
    let started = format!(
        "{} at {} (UTC)",
        instance.started_by,
        rfc3339(instance.started_at)
    );
    let mut facts = vec![
        ("Workflow", format!("{} ({})", plan.title, plan.id)),
        ("Instance", instance.id.clone()),
        ("Started by", started),
    ];
    for (name, c) in &instance.clocks {
        let state = match (c.met_at, c.breached) {
            (Some(at), _) => format!(", met at {}", rfc3339(at)),
            (None, true) => ", BREACHED".into(),
            (None, false) => String::new(),
        };
        let clock = plan.clocks.iter().find(|k| k.name == *name);
        let name = clock.map_or(name.as_str(), |k| k.title.as_str());
        facts.push((
            "Clock",
            format!("{name}: due {} (UTC){state}", rfc3339(c.due)),
        ));
    }
    facts
}

fn due_fact(due: Ts, now: Ts) -> (&'static str, String) {
    let late = if now > due { " (overdue)" } else { "" };
    ("Due", format!("{} (UTC){late}", rfc3339(due)))
}

/// What the links are and are not, under the links of a mail.
fn links_note(address: &str, expires: Ts) -> Block {
    Block::Text(format!(
        "Opening a link shows a confirmation page; it decides nothing until you confirm there. \
         The links are for {address} only, work once, and expire at {} (UTC).",
        rfc3339(expires)
    ))
}

/// The note of a notice, from the instance's history: the latest
/// escalation's, or who delegated the task and why.
fn note_in(history: &[Entry], task: u32, reason: NotifyReason) -> Option<String> {
    if !matches!(reason, NotifyReason::Escalation | NotifyReason::Delegated) {
        return None;
    }
    let note = history.iter().rev().find_map(|e| match &e.record {
        Record::TaskEscalated { task: t, note, .. } if *t == task => {
            Some(note.clone().unwrap_or_default()).filter(|_| reason == NotifyReason::Escalation)
        }
        Record::TaskDelegated {
            task: t,
            from,
            note,
            ..
        } if *t == task => {
            let note = format!("{from} delegated it to you. {note}");
            Some(note).filter(|_| reason == NotifyReason::Delegated)
        }
        _ => None,
    });
    note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests;
