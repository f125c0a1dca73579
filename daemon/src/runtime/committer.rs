//! Group commit, and what happens after: replies, connector calls, the
//! outbox, and recovery at open.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Cmd, ConnectorCall, Inner, RuntimeError};
use crate::engine::{Action, CallOutcome, Event, model::NotifyReason};
use crate::store::{Commit, Instances, OutboxItem, Tasks};

/// The most commits in one batch.
const MAX_GROUP: usize = 4096;

pub enum Reply {
    Start(
        Option<oneshot::Sender<Result<String, RuntimeError>>>,
        String,
    ),
    Event(Option<oneshot::Sender<Result<(), RuntimeError>>>),
}

impl Reply {
    /// Tells the caller how its commit went (a start gets its id).
    fn answer(self, result: Result<(), RuntimeError>) {
        match self {
            Reply::Start(Some(tx), id) => {
                let _ = tx.send(result.map(|()| id));
            }
            Reply::Event(Some(tx)) => {
                let _ = tx.send(result);
            }
            _ => {}
        }
    }
}

pub struct Pending {
    pub commit: Commit,
    pub actions: Vec<Action>,
    pub reply: Reply,
    pub id: String,
    pub seq: u64,
    /// The instance's status after this commit.
    pub status: crate::engine::Status,
}

/// Writes everything that arrived while the previous flush ran as one batch
/// with one flush; then acknowledges and acts.
pub async fn run(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let stop = super::stopped(inner.stop.clone());
    tokio::pin!(stop);
    loop {
        // Shards stop first; what they already handed over is still written.
        let first = tokio::select! {
            biased;
            p = rx.recv() => match p { Some(p) => p, None => break },
            _ = &mut stop => match rx.try_recv() { Ok(p) => p, Err(_) => break },
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        let mut commits = Vec::with_capacity(group.len());
        let mut metas = Vec::with_capacity(group.len());
        for p in group {
            commits.push(p.commit);
            metas.push((p.actions, p.reply, p.id, p.seq, p.status));
        }
        // Hold the gate from apply to flush: the outbox reads only what is
        // durable (a batch is readable as soon as it is applied).
        let result = {
            let _gate = inner.commit_gate.lock().await;
            inner.store.commit(&commits).await
        };
        let had_outbox = commits.iter().any(|c| !c.outbox.is_empty());
        for c in &commits {
            if let Some(k) = &c.start_key {
                inner.pending_keys.lock().expect("keys lock").remove(k);
            }
        }
        drop(commits);
        match result {
            Ok(()) => {
                for (actions, reply, id, seq, status) in metas {
                    inner.send(
                        &id,
                        Cmd::Flushed {
                            id: id.clone(),
                            seq,
                        },
                    );
                    reply.answer(Ok(()));
                    for a in actions {
                        perform(&inner, &id, a);
                    }
                    if status.is_final() {
                        inner.finished(&id, status);
                    }
                }
                if had_outbox {
                    inner.outbox_wake.notify_one();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, commits = metas.len(), "commit failed; nothing of it was acknowledged");
                let msg = e.to_string();
                for (_, reply, id, _, _) in metas {
                    inner.send(&id, Cmd::Discard { id: id.clone() });
                    reply.answer(Err(RuntimeError::Store(crate::store::StoreError::corrupt(
                        "commit", &msg,
                    ))));
                }
            }
        }
    }
}

/// Performs an immediate action (its records are durable).
pub fn perform(inner: &Arc<Inner>, id: &str, action: Action) {
    match action {
        Action::Timer { .. } => inner.timer_wake.notify_one(),
        Action::Call {
            call,
            role,
            action,
            args,
            idempotency_key,
            attempt,
            deadline,
        } => {
            let inner = inner.clone();
            let req = ConnectorCall {
                instance: id.to_owned(),
                role,
                action,
                args,
                idempotency_key,
                attempt,
                deadline,
            };
            tokio::spawn(async move {
                let _permit = inner.calls.acquire().await;
                let instance = req.instance.clone();
                let wait = req.deadline.map(|d| (d - inner.clock.now()).max(0) as u64);
                let fut = inner.connector.call(req);
                let outcome = match wait {
                    Some(ms) => {
                        match tokio::time::timeout(std::time::Duration::from_millis(ms), fut).await
                        {
                            Ok(o) => o,
                            // The step's timeout timer decides; this answer is moot.
                            Err(_) => CallOutcome::Err {
                                message: "timed out".into(),
                                retryable: false,
                                retry_after: None,
                            },
                        }
                    }
                    None => fut.await,
                };
                inner.send(
                    &instance.clone(),
                    Cmd::Event {
                        id: instance,
                        event: Event::CallAnswered { call, outcome },
                        reply: None,
                    },
                );
            });
        }
        other => tracing::warn!(instance = %id, ?other, "unexpected immediate action"),
    }
}

/// A task's notification: task, whom (addresses, `role:NAME`), why. See
/// [`super::Notifier::notify_many`] and [`outbox`].
pub type Notice = (u32, Vec<String>, NotifyReason);

/// The default `notify_many`: `notify` for each, in order; the first error.
pub(super) fn notify_each<N: super::Notifier + ?Sized>(
    notifier: &N,
    instance: &crate::engine::Instance,
    notices: &[Notice],
) -> super::BoxFuture<Result<(), String>> {
    let each: Vec<_> = notices
        .iter()
        .map(|(task, to, reason)| notifier.notify(instance, *task, to, *reason))
        .collect();
    Box::pin(async move {
        let mut result = Ok(());
        for f in each {
            result = result.and(f.await);
        }
        result
    })
}

/// Items read from the outbox at once, and at most (one instance's notices).
const OUTBOX_BATCH: usize = 256;
const OUTBOX_MAX_READ: usize = 16_384;

/// Performs the outbox: notifications, child starts, parent notifications.
/// An item is removed only after it was performed: at least once. An
/// instance's notices read together are one `notify_many` (one digest mail
/// per person), removed when it succeeds; a failure retries them all.
pub async fn outbox(inner: Arc<Inner>) {
    let stop = super::stopped(inner.stop.clone());
    tokio::pin!(stop);
    loop {
        if *inner.stop.borrow() {
            break;
        }
        let items = match read_outbox(&inner).await {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                Vec::new()
            }
        };
        if items.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                _ = inner.outbox_wake.notified() => {}
                _ = &mut stop => break,
            }
            continue;
        }
        let mut done: Vec<OutboxItem> = Vec::new();
        let mut failed = false;
        // Keys sort by instance, then sequence: an instance's items are adjacent.
        for run in items.chunk_by(|a, b| a.instance == b.instance) {
            let mut notices: Vec<Notice> = Vec::new();
            let mut noticed: Vec<OutboxItem> = Vec::new();
            for item in run {
                match parse(item) {
                    None => done.push(item.clone()),
                    Some(Action::Notify { task, to, reason }) => {
                        notices.push((task, to, reason));
                        noticed.push(item.clone());
                    }
                    Some(action) => {
                        if perform_outbox(&inner, item, action).await {
                            done.push(item.clone());
                        } else {
                            failed = true;
                        }
                    }
                }
            }
            if !notices.is_empty() {
                if perform_notices(&inner, &run[0].instance, &notices).await {
                    done.extend(noticed);
                } else {
                    failed = true;
                }
            }
        }
        if let Err(e) = inner.store.outbox_done(&done) {
            tracing::error!(error = %e, "cannot clear performed outbox items");
        }
        if failed {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                _ = inner.outbox_wake.notified() => {}
                _ = &mut stop => break,
            }
        }
    }
}

/// The first [`OUTBOX_BATCH`] durable items and the rest of the instance the
/// batch cuts through (up to [`OUTBOX_MAX_READ`]): one transition's notices
/// make one group, and a failing instance in front holds back no others.
async fn read_outbox(inner: &Arc<Inner>) -> Result<Vec<OutboxItem>, crate::store::StoreError> {
    let mut limit = OUTBOX_BATCH + 1;
    loop {
        let mut items = {
            let _gate = inner.commit_gate.lock().await;
            inner.store.outbox(limit)?
        };
        if items.len() <= OUTBOX_BATCH {
            return Ok(items);
        }
        let cut = &items[OUTBOX_BATCH - 1].instance;
        if let Some(end) = items[OUTBOX_BATCH..]
            .iter()
            .position(|i| &i.instance != cut)
        {
            items.truncate(OUTBOX_BATCH + end);
            return Ok(items);
        }
        if items.len() < limit || limit >= OUTBOX_MAX_READ {
            return Ok(items);
        }
        limit = (limit * 4).min(OUTBOX_MAX_READ);
    }
}

/// The action an outbox item holds; `None` when it cannot be read (it is
/// dropped, with an error in the log).
fn parse(item: &OutboxItem) -> Option<Action> {
    match serde_json::from_value::<OutboxAction>(item.action.clone()) {
        Ok(a) => Some(a.into()),
        Err(e) => {
            tracing::error!(instance = %item.instance, error = %e, "unreadable outbox item dropped");
            None
        }
    }
}

/// Performs the notifications of one instance, loading it once.
async fn perform_notices(inner: &Arc<Inner>, id: &str, notices: &[Notice]) -> bool {
    let instance = match inner.store.load(id) {
        Ok(Some(s)) => s.instance,
        Ok(None) => return true,
        Err(_) => return false,
    };
    match inner.notifier.notify_many(&instance, notices).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(instance = %id, notices = notices.len(), error = %e, "notifications failed; will retry");
            false
        }
    }
}

async fn perform_outbox(inner: &Arc<Inner>, item: &OutboxItem, action: Action) -> bool {
    match action {
        Action::StartChild {
            child,
            workflow,
            input,
        } => {
            let plan = inner.plans.read().expect("plans lock").current(&workflow);
            // A child that cannot start fails the parent's step at once.
            let refuse = |message: String| {
                let error = crate::engine::StepError::new("child", message);
                let event = Event::ChildFinished {
                    child: child.clone(),
                    result: Err(error),
                };
                inner.send(
                    &item.instance,
                    Cmd::Event {
                        id: item.instance.clone(),
                        event,
                        reply: None,
                    },
                );
                true
            };
            let Some(plan) = plan else {
                return refuse(format!("no workflow `{workflow}` is loaded"));
            };
            let input = match crate::engine::input::check(&plan, &input) {
                Ok(i) => i,
                Err(problems) => {
                    return refuse(format!("input of `{workflow}`: {}", problems.join("; ")));
                }
            };
            let by = inner
                .store
                .load(&item.instance)
                .ok()
                .flatten()
                .map(|s| s.instance.started_by)
                .unwrap_or_default();
            let (tx, rx) = oneshot::channel();
            inner.send(
                &child,
                Cmd::Start {
                    id: child.clone(),
                    plan,
                    input,
                    by,
                    parent: Some(item.instance.clone()),
                    key: None,
                    reply: Some(tx),
                },
            );
            matches!(rx.await, Ok(Ok(_)))
        }
        Action::Finished { parent, result } => {
            let (tx, rx) = oneshot::channel();
            inner.send(
                &parent,
                Cmd::Event {
                    id: parent.clone(),
                    event: Event::ChildFinished {
                        child: item.instance.clone(),
                        result,
                    },
                    reply: Some(tx),
                },
            );
            !matches!(rx.await, Ok(Err(RuntimeError::Store(_))) | Err(_))
        }
        _ => true,
    }
}

/// The outbox's own view of an action (actions are written as JSON).
#[derive(serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
enum OutboxAction {
    Notify {
        task: u32,
        to: Vec<String>,
        reason: crate::engine::model::NotifyReason,
    },
    StartChild {
        child: String,
        workflow: String,
        input: serde_json::Value,
    },
    Finished {
        parent: String,
        result: Result<serde_json::Value, crate::engine::StepError>,
    },
}

impl From<OutboxAction> for Action {
    fn from(a: OutboxAction) -> Action {
        match a {
            OutboxAction::Notify { task, to, reason } => Action::Notify { task, to, reason },
            OutboxAction::StartChild {
                child,
                workflow,
                input,
            } => Action::StartChild {
                child,
                workflow,
                input,
            },
            OutboxAction::Finished { parent, result } => Action::Finished { parent, result },
        }
    }
}

/// At open: re-issue connector calls that were in flight at the crash (the
/// same idempotency keys). Timers and the outbox recover by themselves.
pub fn recover(inner: &Arc<Inner>) -> Result<(), RuntimeError> {
    let ids = inner.store.ids_with_calls()?;
    let mut reissued = 0;
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id.clone()) {
            continue;
        }
        // One unreadable instance must not keep the daemon from starting:
        // it is named in the log, and the others recover.
        let stored = match inner.store.load(&id) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(instance = %id, error = %e, "cannot recover this instance's calls");
                continue;
            }
        };
        for (call, c) in &stored.instance.calls {
            let deadline = stored
                .instance
                .timers
                .values()
                .find(|t| {
                    t.purpose == crate::engine::model::TimerPurpose::Timeout { thread: c.thread }
                })
                .map(|t| t.due);
            perform(
                inner,
                &id,
                Action::Call {
                    call: *call,
                    role: c.role.clone(),
                    action: c.action.clone(),
                    args: c.args.clone(),
                    idempotency_key: c.idempotency_key.clone(),
                    attempt: c.attempt,
                    deadline,
                },
            );
            reissued += 1;
        }
    }
    if reissued > 0 {
        tracing::info!(
            calls = reissued,
            "re-issued connector calls interrupted by the last stop"
        );
    }
    inner.outbox_wake.notify_one();
    inner.timer_wake.notify_one();
    Ok(())
}
