//! Digest mail: one mail per person for the notices of one instance that
//! the runtime's outbox read together (`Notifier::notify_many`).
//!
//! A campaign opens many tasks in one transition (access recertification:
//! one per group membership); a manager with forty memberships should get
//! one mail, not forty. The notices are resolved to addresses (as for a
//! single mail) and grouped by address; a task named twice for the same
//! address (opened, then reminded, before the outbox ran) is listed once,
//! with its latest notice.
//!
//! - An address with one task gets exactly the single mail (same text, same
//!   key `notify/…`).
//! - An address with several gets a digest: the subject `N decisions
//!   needed: <workflow title>` (prefixed `Reminder:`, `Escalated:` or
//!   `Delegated to you:` when every notice has that reason), the instance's
//!   facts once, then every task (title, description shortened, due, the
//!   escalation or delegation note) with its own signed links per option,
//!   or word that this person already decided (then no links). The links
//!   expire as in a single mail. Text and HTML, like a single mail.
//! - More than [`DIGEST_MAX`] tasks are split over several mails, each
//!   complete (facts, links, the note on links) and marked `part k of m`.
//!
//! Idempotency: a digest's key is `digest/{instance}/{hash}/{address}`,
//! where `hash` is the sha256 of the sorted set of `task/reason/n` it lists
//! (`n` as in a single mail's key, from the stored state), so a retry of the
//! same group reuses its keys, and keys this process already sent are
//! skipped (the mailer's memory of sent keys).

use std::collections::{BTreeMap, HashMap};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::render::{Block, clip, one_line, reason_word};
use super::{Mail, Mailer, due_fact, facts, links_note, note_in, notice_n};
use crate::engine::model::NotifyReason;
use crate::engine::{Instance, Ts};
use crate::runtime::{ConnectorCall, Notice};
use crate::store::Instances;
use crate::store::chain::Entry;
use crate::workflow::Plan;

/// The most tasks listed in one mail; more are split over several mails.
pub const DIGEST_MAX: usize = 200;
/// A task's description in a digest is cut to this many characters.
const DESCRIPTION_MAX: usize = 300;

/// What every mail about one group of notices shares.
struct Scene<'a> {
    instance: &'a Instance,
    plan: &'a Plan,
    /// The instance's history when a note is needed (escalation,
    /// delegation), else empty.
    history: &'a [Entry],
    now: Ts,
}

impl Mailer {
    /// The mails of an instance's notices read together, each with its
    /// reason's metric label (`mixed` for a digest of several reasons): per
    /// address, the single mail for one task, digests for several. Empty
    /// when there is nothing to say (the tasks closed, the instance ended).
    pub fn digest_calls(
        &self,
        instance: &Instance,
        notices: &[Notice],
    ) -> Result<Vec<(ConnectorCall, &'static str)>, String> {
        let open = |task: &u32| instance.tasks.get(task).is_some_and(|t| t.open);
        let notices: Vec<_> = notices.iter().filter(|(t, ..)| open(t)).collect();
        if notices.is_empty() || instance.status.is_final() {
            return Ok(Vec::new());
        }
        let plan = self.plan(&instance.hash)?;
        let noted =
            |r: &NotifyReason| matches!(r, NotifyReason::Escalation | NotifyReason::Delegated);
        let history = match notices.iter().any(|(_, _, r)| noted(r)) {
            true => self.store.history(&instance.id).unwrap_or_default(),
            false => Vec::new(),
        };
        // Per address, in the order first met: its tasks, each with its latest notice.
        let mut order: Vec<String> = Vec::new();
        let mut per: HashMap<String, BTreeMap<u32, NotifyReason>> = HashMap::new();
        let mut resolved: HashMap<&[String], Vec<String>> = HashMap::new();
        for (task, to, reason) in notices {
            let addresses = resolved
                .entry(to.as_slice())
                .or_insert_with(|| self.recipients(to));
            for address in addresses.iter() {
                let tasks = per.entry(address.clone()).or_insert_with(|| {
                    order.push(address.clone());
                    BTreeMap::new()
                });
                tasks.insert(*task, *reason);
            }
        }
        let now = self.clock.now();
        let scene = Scene {
            instance,
            plan: &plan,
            history: &history,
            now,
        };
        let mut calls = Vec::new();
        for address in order {
            let items: Vec<(u32, NotifyReason)> = per
                .remove(&address)
                .unwrap_or_default()
                .into_iter()
                .collect();
            if let [(task, reason)] = items[..] {
                let note = note_in(&history, task, reason);
                let call = self.single(
                    instance,
                    &plan,
                    (task, reason),
                    note.as_deref(),
                    now,
                    address,
                );
                calls.push((call, reason_word(reason)));
                continue;
            }
            let parts = items.len().div_ceil(DIGEST_MAX);
            for (k, chunk) in items.chunks(DIGEST_MAX).enumerate() {
                let part = (parts > 1).then_some((k + 1, parts));
                calls.push(self.digest(&scene, chunk, &address, part));
            }
        }
        Ok(calls)
    }

    /// One digest to one address, as a connector call.
    fn digest(
        &self,
        scene: &Scene,
        items: &[(u32, NotifyReason)],
        address: &str,
        part: Option<(usize, usize)>,
    ) -> (ConnectorCall, &'static str) {
        let instance = scene.instance;
        let mut set: Vec<String> = items
            .iter()
            .map(|&(t, r)| format!("{t}/{}/{}", reason_word(r), notice_n(instance, t, r)))
            .collect();
        set.sort();
        let hash = hex::encode(Sha256::digest(set.join(",").as_bytes()));
        let m = self.compose_digest(scene, items, address, part);
        let call = ConnectorCall {
            instance: instance.id.clone(),
            role: "mail".into(),
            action: "send".into(),
            idempotency_key: format!("digest/{}/{}/{address}", instance.id, &hash[..32]),
            args: json!({"to": [address], "subject": m.subject, "body": m.text, "html": m.html}),
            attempt: 1,
            deadline: None,
        };
        (call, common(items).map_or("mixed", reason_word))
    }

    /// The digest's text and HTML.
    fn compose_digest(
        &self,
        scene: &Scene,
        items: &[(u32, NotifyReason)],
        address: &str,
        part: Option<(usize, usize)>,
    ) -> Mail {
        let Scene {
            instance,
            plan,
            history,
            now,
        } = *scene;
        let n = items.len();
        let reason = common(items);
        let (prefix, intro) = match reason {
            Some(NotifyReason::Opened) => ("", format!("You are asked to decide on {n} tasks.")),
            Some(NotifyReason::Reminder) => (
                "Reminder: ",
                format!("These {n} tasks are still waiting for your decision."),
            ),
            Some(NotifyReason::Escalation) => (
                "Escalated: ",
                format!("These {n} tasks were escalated: they are still waiting for a decision."),
            ),
            Some(NotifyReason::Delegated) => (
                "Delegated to you: ",
                format!("{n} tasks were delegated to you."),
            ),
            None => ("", format!("{n} tasks are waiting for your decision.")),
        };
        let mut blocks = vec![Block::Text(intro)];
        if let Some((k, of)) = part {
            blocks.push(Block::Text(format!(
                "This is mail {k} of {of} about this instance; each lists its own tasks with their own links."
            )));
        }
        blocks.push(Block::Facts(facts(instance, plan)));
        let expires = self.expires(now);
        let mut linked = false;
        for (i, &(task, why)) in items.iter().enumerate() {
            let t = &instance.tasks[&task];
            let title = clip(&one_line(&t.title), 150);
            blocks.push(Block::Title(format!("{}. {title}", i + 1)));
            let description = one_line(&t.description);
            if !description.is_empty() {
                blocks.push(Block::Text(clip(&description, DESCRIPTION_MAX)));
            }
            let mut about = Vec::new();
            if reason.is_none() {
                about.push(("Why", heading(why).to_owned()));
            }
            about.extend(t.due.map(|due| due_fact(due, now)));
            if !about.is_empty() {
                blocks.push(Block::Facts(about));
            }
            blocks.extend(note_in(history, task, why).map(Block::Text));
            let decide = self.decide(instance, plan, task, address, expires);
            linked |= matches!(decide, Some(Block::Links(_)));
            blocks.extend(decide);
        }
        if linked {
            blocks.push(links_note(address, expires));
        }
        let (text, html) = super::render::body(&blocks);
        let of = part.map_or(String::new(), |(k, m)| format!(" (part {k} of {m})"));
        let what = if n == 1 { "decision" } else { "decisions" };
        Mail {
            subject: format!(
                "{prefix}{n} {what} needed{of}: {}",
                clip(&one_line(&plan.title), 150)
            ),
            text,
            html,
        }
    }
}

/// The reason every item shares, if they share one.
fn common(items: &[(u32, NotifyReason)]) -> Option<NotifyReason> {
    let first = items.first()?.1;
    items.iter().all(|(_, r)| *r == first).then_some(first)
}

/// A notice's reason, as a digest shows it beside a task.
fn heading(reason: NotifyReason) -> &'static str {
    match reason {
        NotifyReason::Opened => "New task",
        NotifyReason::Reminder => "Reminder",
        NotifyReason::Escalation => "Escalated",
        NotifyReason::Delegated => "Delegated to you",
    }
}
