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
//! Personal data stays out of info logs: instance, task, reason and counts.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::Config;
use super::links::{LinkClaim, LinkKey};
use super::metrics::Metrics;
use super::pages::escape;
use crate::engine::model::{NotifyReason, Record, rfc3339};
use crate::engine::{CallOutcome, Instance, Ts};
use crate::runtime::{BoxFuture, Clock, Connector, ConnectorCall, Notifier, SystemClock};
use crate::store::{Definitions, Instances, SledStore};
use crate::workflow::Plan;
use crate::workflow::plan::NodeKind;

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
        let n = match reason {
            NotifyReason::Opened => 0,
            NotifyReason::Reminder => i64::from(t.reminders_sent),
            NotifyReason::Escalation => t.last_notice_at.unwrap_or(t.opened_at),
            NotifyReason::Delegated => instance.seq as i64,
        };
        let word = reason_word(reason);
        let note = self.note(instance, task, reason);
        let now = self.clock.now();
        let mail = |address: String| {
            let m = self.compose(
                instance,
                &plan,
                task,
                &address,
                reason,
                note.as_deref(),
                now,
            );
            ConnectorCall {
                instance: instance.id.clone(),
                role: "mail".into(),
                action: "send".into(),
                idempotency_key: format!("notify/{}/{task}/{word}/{n}/{address}", instance.id),
                args: json!({"to": [address], "subject": m.subject, "body": m.text, "html": m.html}),
                attempt: 1,
                deadline: None,
            }
        };
        Ok(self.recipients(to).into_iter().map(mail).collect())
    }

    /// The note of the latest escalation, or who delegated and why.
    fn note(&self, instance: &Instance, task: u32, reason: NotifyReason) -> Option<String> {
        if !matches!(reason, NotifyReason::Escalation | NotifyReason::Delegated) {
            return None;
        }
        let history = self.store.history(&instance.id).ok()?;
        let note = history.iter().rev().find_map(|e| match &e.record {
            Record::TaskEscalated { task: t, note, .. } if *t == task => {
                Some(note.clone().unwrap_or_default())
                    .filter(|_| reason == NotifyReason::Escalation)
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
        if let Some(due) = t.due {
            let late = if now > due { " (overdue)" } else { "" };
            facts.push(("Due", format!("{} (UTC){late}", rfc3339(due))));
        }
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
        blocks.push(Block::Facts(facts));
        let decided = t.votes.iter().find(|v| v.by.eq_ignore_ascii_case(address));
        match (decided, &plan.node(t.node).kind) {
            (Some(v), _) => blocks.push(Block::Text(format!(
                "You have already decided: {}. Nothing more is needed from you.",
                v.option
            ))),
            (None, NodeKind::Approval(a)) => {
                let expires = now.saturating_add(self.config.mail.link_ttl.as_millis() as i64);
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
                blocks.push(Block::Links(links.collect()));
                blocks.push(Block::Text(format!(
                    "Opening a link shows a confirmation page; it decides nothing until you confirm there. \
                     The links are for {address} only, work once, and expire at {} (UTC).",
                    rfc3339(expires)
                )));
            }
            (None, _) => {}
        }
        let (mut text, mut html) = (String::new(), String::new());
        for b in &blocks {
            b.render(&mut text, &mut html);
        }
        text.push_str("-- \nvakt\n");
        Mail {
            subject: format!("{subject}: {}", clip(&title, 150)),
            text,
            html: format!("<!doctype html><html><body>{html}</body></html>"),
        }
    }
}

/// A piece of a mail, rendered as text and as HTML.
enum Block {
    Text(String),
    Title(String),
    Facts(Vec<(&'static str, String)>),
    Links(Vec<(String, String)>),
}

impl Block {
    fn render(&self, text: &mut String, html: &mut String) {
        let _ = match self {
            Block::Text(t) => {
                let _ = write!(text, "{t}\n\n");
                write!(html, "<p style=\"white-space:pre-wrap\">{}</p>", escape(t))
            }
            Block::Title(t) => {
                let _ = write!(text, "    {t}\n\n");
                write!(html, "<h2>{}</h2>", escape(t))
            }
            Block::Facts(facts) => {
                html.push_str("<table>");
                for (k, v) in facts {
                    let _ = writeln!(text, "{:<11} {v}", format!("{k}:"));
                    let _ = write!(
                        html,
                        "<tr><th align=\"left\">{k}</th><td>{}</td></tr>",
                        escape(v)
                    );
                }
                text.push('\n');
                write!(html, "</table>")
            }
            Block::Links(links) => {
                text.push_str("Decide:\n");
                html.push_str("<p>Decide:</p><ul>");
                for (label, url) in links {
                    let _ = writeln!(text, "  {label}: {url}");
                    let _ = write!(
                        html,
                        "<li><a href=\"{}\">{}</a></li>",
                        escape(url),
                        escape(label)
                    );
                }
                text.push('\n');
                write!(html, "</ul>")
            }
        };
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
        let prepared = self.calls(instance, task, to, reason);
        let connector = self.connector.clone();
        let metrics = self.metrics.clone();
        let sent = self.sent.clone();
        let id = instance.id.clone();
        let word = reason_word(reason);
        Box::pin(async move {
            let calls = prepared?;
            if calls.is_empty() {
                tracing::debug!(instance = %id, task, reason = word, "nothing to mail");
                return Ok(());
            }
            let (total, mut refused, mut retry) = (calls.len(), 0, None);
            for call in calls {
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
                            tracing::warn!(instance = %id, task, reason = word, error = %message, "{why}");
                        }
                    }
                }
            }
            let retrying = retry.is_some();
            tracing::info!(instance = %id, task, reason = word, recipients = total, refused, retrying, "task mail");
            retry.map_or(Ok(()), |m| Err(format!("task mail: {m}")))
        })
    }
}

fn reason_word(reason: NotifyReason) -> &'static str {
    match reason {
        NotifyReason::Opened => "opened",
        NotifyReason::Reminder => "reminder",
        NotifyReason::Escalation => "escalation",
        NotifyReason::Delegated => "delegated",
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
