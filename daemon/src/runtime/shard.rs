//! A shard worker: runs transitions for the instances routed to it.
//!
//! It keeps an instance in memory only while a commit of it is in flight, so
//! that the next event on that instance sees the newest state before it is
//! on disk; once the commit is flushed the instance is dropped.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::committer::{Pending, Reply};
use super::{Cmd, Inner, RuntimeError};
use crate::engine::{self, Action, Transition};
use crate::store::{Commit, IndexState, Instances, Stored};

pub async fn run(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Cmd>) {
    let mut cache: HashMap<String, Stored> = HashMap::new();
    let stop = super::stopped(inner.stop.clone());
    tokio::pin!(stop);
    loop {
        let cmd = tokio::select! {
            biased;
            c = rx.recv() => match c { Some(c) => c, None => break },
            _ = &mut stop => break,
        };
        match cmd {
            Cmd::Flushed { id, seq } => {
                if cache.get(&id).is_some_and(|s| s.instance.seq == seq) {
                    cache.remove(&id);
                }
            }
            Cmd::Start {
                id,
                plan,
                input,
                by,
                parent,
                key,
                reply,
            } => {
                match cache
                    .contains_key(&id)
                    .then_some(true)
                    .map(Ok)
                    .unwrap_or_else(|| inner.store.load(&id).map(|s| s.is_some()))
                {
                    Ok(true) => {
                        // A child started again after a crash: it exists.
                        if let Some(r) = reply {
                            let _ = r.send(Ok(id));
                        }
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        if let Some(r) = reply {
                            let _ = r.send(Err(e.into()));
                        }
                        continue;
                    }
                }
                let mut stored = Stored::new(&id);
                let tr = engine::start(
                    &plan,
                    &mut stored.instance,
                    input,
                    &by,
                    parent,
                    inner.clock.now(),
                );
                if let Some(o) = &inner.observer {
                    o.transition(&plan.id, &[], &tr.records, stored.instance.updated_at);
                }
                submit(
                    &inner,
                    &mut cache,
                    stored,
                    None,
                    tr,
                    key,
                    Reply::Start(reply, id),
                );
            }
            Cmd::Event { id, event, reply } => {
                let from_cache = cache.remove(&id);
                let was_cached = from_cache.is_some();
                let stored = match from_cache {
                    Some(s) => Some(s),
                    None => match inner.store.load(&id) {
                        Ok(s) => s,
                        Err(e) => {
                            if let Some(r) = reply {
                                let _ = r.send(Err(e.into()));
                            }
                            continue;
                        }
                    },
                };
                let Some(mut stored) = stored else {
                    if let Some(r) = reply {
                        let _ = r.send(Err(RuntimeError::NotFound(id)));
                    }
                    continue;
                };
                let plan = match inner.plan_for(&stored.instance.hash) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(instance = %id, error = %e, "cannot load the instance's workflow definition");
                        if let Some(r) = reply {
                            let _ = r.send(Err(e));
                        }
                        continue;
                    }
                };
                let before = IndexState::of(&stored.instance);
                let entered: Vec<(u32, crate::engine::Ts)> = match inner.observer {
                    Some(_) => stored
                        .instance
                        .threads
                        .iter()
                        .map(|(t, th)| (*t, th.entered_at))
                        .collect(),
                    None => Vec::new(),
                };
                // A rejected or empty transition leaves the instance as it was
                // (the engine validates an event before it records anything).
                match engine::handle(&plan, &mut stored.instance, event, inner.clock.now()) {
                    Err(rejection) => {
                        if was_cached {
                            cache.insert(id, stored);
                        }
                        if let Some(r) = reply {
                            let _ = r.send(Err(rejection.into()));
                        }
                    }
                    Ok(tr) if tr.records.is_empty() => {
                        if was_cached {
                            cache.insert(id, stored);
                        }
                        if let Some(r) = reply {
                            let _ = r.send(Ok(()));
                        }
                    }
                    Ok(tr) => {
                        if let Some(o) = &inner.observer {
                            o.transition(
                                &stored.instance.workflow,
                                &entered,
                                &tr.records,
                                stored.instance.updated_at,
                            );
                        }
                        submit(
                            &inner,
                            &mut cache,
                            stored,
                            Some(before),
                            tr,
                            None,
                            Reply::Event(reply),
                        )
                    }
                }
            }
            Cmd::Discard { id } => {
                cache.remove(&id);
            }
        }
    }
}

fn submit(
    inner: &Inner,
    cache: &mut HashMap<String, Stored>,
    mut stored: Stored,
    before: Option<IndexState>,
    tr: Transition,
    key: Option<String>,
    reply: Reply,
) {
    let id = stored.instance.id.clone();
    let first = stored.instance.seq - tr.records.len() as u64 + 1;
    let now = stored.instance.updated_at;
    let mut entries = Vec::with_capacity(tr.records.len());
    for (i, r) in tr.records.iter().enumerate() {
        let seq = first + i as u64;
        let (hash, bytes) = crate::store::chain::link_bytes(stored.last_hash, seq, now, r);
        stored.last_hash = hash;
        entries.push((seq, bytes));
    }
    let (outbox, immediate): (Vec<Action>, Vec<Action>) = tr.actions.into_iter().partition(|a| {
        matches!(
            a,
            Action::Notify { .. } | Action::StartChild { .. } | Action::Finished { .. }
        )
    });
    let commit = Commit {
        id: id.clone(),
        before,
        after: IndexState::of(&stored.instance),
        snapshot: serde_json::to_vec(&stored).expect("snapshots serialize"),
        entries,
        outbox,
        start_key: key,
    };
    let seq = stored.instance.seq;
    let status = stored.instance.status;
    cache.insert(id.clone(), stored);
    let _ = inner.committer.send(Pending {
        commit,
        actions: immediate,
        reply,
        id,
        seq,
        status,
    });
}
