//! Cron triggers: starts instances on their schedules, once per due time.
//!
//! Every cron trigger of every current plan is known by `(workflow id,
//! trigger name)`, and the store keeps its last fire (namespace `cron`, name
//! `<workflow>/<trigger>`, JSON [`TriggerState`]). A trigger seen for the
//! first time, or whose schedule or time zone changed, records "now": it
//! never fires for the past. A trigger that disappears from the current plans
//! while the daemon runs (its file removed, its workflow renamed) has its
//! state removed, so it is new if it comes back.
//!
//! Due times are computed with croner in the trigger's time zone, after the
//! last fire and up to now. A time that falls in the spring-forward gap runs
//! at the first instant after the gap (`30 2 * * *` runs at 03:00 on the
//! last Sunday of March in Europe/Oslo); a time the fall-back repeats runs
//! once, at the first of its two instants. A due time older than [`GRACE_MS`]
//! was missed (the daemon was down or busy) and the trigger's catch-up policy
//! decides: `none` skips it, `latest` runs the newest due time only, `all`
//! runs each (at most [`MAX_CATCH_UP`], the newest ones, with a warning).
//!
//! A fire is exactly-once: the start carries the idempotency key
//! `cron/<workflow>/<trigger>/<fire time, RFC 3339 UTC>`, and the last fire
//! is written only after the start is durable. A crash between the two fires
//! the same due time again at the next start, with the same key, which gives
//! back the same instance. A start the runtime refuses (invalid input) is
//! logged and counted and the due time is still marked done, so a broken
//! trigger does not loop.
//!
//! "Now" is the runtime's clock ([`Runtime::now`]); the waits between passes
//! are real time (tokio), at most [`MAX_SLEEP`], so reloaded workflows are
//! picked up. Tests with a manual clock drive [`Scheduler::tick`] directly.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeZone as _, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::metrics::Metrics;
use crate::engine::Ts;
use crate::runtime::{Runtime, RuntimeError};
use crate::workflow::authored::CatchUp;
use crate::workflow::plan::CronTrigger;

/// The store namespace of the triggers' last fires.
pub const NAMESPACE: &str = "cron";
/// A due time older than this (ms) was missed; its catch-up policy applies.
pub const GRACE_MS: Ts = 60_000;
/// The most runs one trigger catches up at once (`catch_up: all`).
pub const MAX_CATCH_UP: usize = 100;
/// The longest wait between passes, so reloaded workflows are picked up.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);
/// The wait before retrying a trigger whose state could not be read or written.
const RETRY_MS: Ts = 5_000;

const FIRES: &str = "vakt_cron_fires_total";

/// What the store keeps per trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerState {
    /// The newest due time handled (fired or skipped), or when the trigger
    /// was first seen; ms since the epoch.
    pub last: Ts,
    /// The schedule and time zone `last` was computed with; when they change
    /// the trigger starts afresh.
    pub schedule: String,
    pub timezone: String,
}

/// What one trigger should do at `now`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Due {
    /// The due times to fire, oldest first (ms since the epoch).
    pub fire: Vec<Ts>,
    /// Due times the catch-up policy skips (counted up to the cap).
    pub skipped: usize,
    /// More than [`MAX_CATCH_UP`] times were due; only the newest are counted.
    pub capped: bool,
    /// The newest due time: the trigger's last fire once this is done.
    pub newest: Option<Ts>,
}

/// The instant `ts` (whole seconds) in `tz`.
fn local(tz: Tz, ts: Ts) -> Option<DateTime<Tz>> {
    tz.timestamp_opt(ts.div_euclid(1000), 0).single()
}

/// The first fire time strictly after `after`.
pub fn next_after(cron: &Cron, tz: Tz, after: Ts) -> Option<Ts> {
    let t = cron.find_next_occurrence(&local(tz, after)?, false).ok()?;
    Some(t.timestamp_millis())
}

/// The due times after `last` up to `now`, and which of them to fire under
/// `catch_up`. Pure: the scheduler's whole policy, testable without tokio.
pub fn due(cron: &Cron, tz: Tz, catch_up: CatchUp, last: Ts, now: Ts) -> Due {
    // Walk back from now: cheap even after a long downtime of a frequent
    // schedule, since at most MAX_CATCH_UP + 1 times are looked at.
    let mut times = Vec::new(); // newest first
    if let Some(mut cursor) = local(tz, now) {
        let mut inclusive = true;
        while times.len() <= MAX_CATCH_UP {
            let Ok(t) = cron.find_previous_occurrence(&cursor, inclusive) else {
                break;
            };
            let ms = t.timestamp_millis();
            if ms <= last {
                break;
            }
            times.push(ms);
            cursor = t;
            inclusive = false;
        }
    }
    let capped = times.len() > MAX_CATCH_UP;
    times.truncate(MAX_CATCH_UP);
    let mut fire: Vec<Ts> = match catch_up {
        CatchUp::None => times
            .iter()
            .copied()
            .filter(|t| now - t <= GRACE_MS)
            .collect(),
        CatchUp::Latest => times.first().copied().into_iter().collect(),
        CatchUp::All => times.clone(),
    };
    fire.reverse();
    Due {
        skipped: times.len() - fire.len(),
        capped,
        newest: times.first().copied(),
        fire,
    }
}

/// An instant as RFC 3339 UTC, to the second (the idempotency key's form).
pub fn rfc3339_utc(ts: Ts) -> String {
    DateTime::<Utc>::from_timestamp_millis(ts)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| ts.to_string())
}

fn rfc3339_local(tz: Tz, ts: Ts) -> String {
    local(tz, ts)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| ts.to_string())
}

/// The idempotency key of one fire.
pub fn fire_key(workflow: &str, trigger: &str, at: Ts) -> String {
    format!("cron/{workflow}/{trigger}/{}", rfc3339_utc(at))
}

/// The runtime is shutting down: end the pass.
struct Stopped;

/// Fires the cron triggers of the current plans.
pub struct Scheduler {
    runtime: Runtime,
    metrics: Arc<Metrics>,
    /// The triggers seen in the previous pass (store names).
    seen: Mutex<BTreeSet<String>>,
}

impl Scheduler {
    pub fn new(runtime: Runtime, metrics: Arc<Metrics>) -> Scheduler {
        metrics.describe(
            FIRES,
            "counter",
            "Cron trigger fires by workflow and result (started, failed, skipped).",
        );
        Scheduler {
            runtime,
            metrics,
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    /// One pass: fires every due time of every trigger; returns the earliest
    /// next fire (`None`: no cron triggers, or the runtime is stopping).
    pub async fn tick(&self) -> Option<Ts> {
        let now = self.runtime.now();
        let mut next: Option<Ts> = None;
        let mut present = BTreeSet::new();
        for plan in self.runtime.current_plans() {
            for t in &plan.triggers.cron {
                let name = format!("{}/{}", plan.id, t.name);
                present.insert(name.clone());
                match self.trigger(&plan.id, t, &name, now).await {
                    Ok(Some(n)) => next = Some(next.map_or(n, |m| m.min(n))),
                    Ok(None) => {}
                    Err(Stopped) => return None,
                }
            }
        }
        let gone: Vec<Vec<u8>> = {
            let mut seen = self.seen.lock().expect("seen lock");
            let gone = seen
                .difference(&present)
                .map(|n| n.as_bytes().to_vec())
                .collect();
            *seen = present;
            gone
        };
        if !gone.is_empty() {
            tracing::info!(
                triggers = gone.len(),
                "cron triggers no longer loaded; their state is dropped"
            );
            if let Err(e) = self.runtime.store().service_remove(NAMESPACE, &gone).await {
                tracing::warn!(error = %e, "cannot drop the state of removed cron triggers");
            }
        }
        next
    }

    /// Handles one trigger; returns its next fire.
    async fn trigger(
        &self,
        workflow: &str,
        t: &CronTrigger,
        name: &str,
        now: Ts,
    ) -> Result<Option<Ts>, Stopped> {
        let tz = t.timezone;
        let state = match self.runtime.store().service_get(NAMESPACE, name.as_bytes()) {
            Ok(v) => v.and_then(|v| serde_json::from_slice::<TriggerState>(&v).ok()),
            Err(e) => {
                tracing::error!(workflow, trigger = %t.name, error = %e, "cannot read a cron trigger's last fire");
                return Ok(Some(now + RETRY_MS));
            }
        };
        let last = match state {
            Some(s) if s.schedule == t.schedule && s.timezone == tz.name() => s.last,
            previous => {
                // New (or changed): nothing in the past is due.
                if !self.persist(workflow, t, name, now).await {
                    return Ok(Some(now + RETRY_MS));
                }
                let next = next_after(&t.cron, tz, now);
                tracing::info!(
                    workflow,
                    trigger = %t.name,
                    schedule = %t.schedule,
                    timezone = tz.name(),
                    changed = previous.is_some(),
                    next = next.map(|n| rfc3339_local(tz, n)).unwrap_or_default(),
                    "cron trigger scheduled"
                );
                return Ok(next);
            }
        };
        // The common case, nothing due: one forward search.
        let next = next_after(&t.cron, tz, last);
        if next.is_none_or(|n| n > now) {
            return Ok(next);
        }
        let due = due(&t.cron, tz, t.catch_up, last, now);
        if due.skipped > 0 || due.capped {
            let more = if due.capped { "more than " } else { "" };
            tracing::warn!(
                workflow,
                trigger = %t.name,
                catch_up = ?t.catch_up,
                fired = due.fire.len(),
                "missed cron runs: {more}{} due while the daemon was down or busy; {} skipped by the catch-up policy",
                due.fire.len() + due.skipped,
                due.skipped
            );
            if due.skipped > 0 {
                self.metrics.add(
                    FIRES,
                    &[("workflow", workflow), ("result", "skipped")],
                    due.skipped as u64,
                );
            }
        }
        let by = format!("cron:{}", t.name);
        for &at in &due.fire {
            let key = fire_key(workflow, &t.name, at);
            let fire = rfc3339_local(tz, at);
            match self
                .runtime
                .start(workflow, t.input.clone(), &by, Some(key))
                .await
            {
                Ok(id) => {
                    tracing::info!(workflow, trigger = %t.name, fire, instance = %id, "cron trigger fired");
                    self.metrics
                        .inc(FIRES, &[("workflow", workflow), ("result", "started")]);
                }
                Err(RuntimeError::ShuttingDown) => return Err(Stopped),
                // Gone between the listing and the start: the next pass drops it.
                Err(RuntimeError::UnknownWorkflow(_)) => return Ok(None),
                Err(e @ RuntimeError::Store(_)) => {
                    tracing::error!(workflow, trigger = %t.name, fire, error = %e, "cron start not stored; retrying");
                    return Ok(Some(now + RETRY_MS));
                }
                Err(e) => {
                    // Refused for good (input): mark it done so it does not loop.
                    tracing::warn!(workflow, trigger = %t.name, fire, error = %e, "cron trigger could not start an instance");
                    self.metrics
                        .inc(FIRES, &[("workflow", workflow), ("result", "failed")]);
                }
            }
            if !self.persist(workflow, t, name, at).await {
                return Ok(Some(now + RETRY_MS));
            }
        }
        let last = match due.newest {
            Some(newest) if due.fire.last() != Some(&newest) => {
                if !self.persist(workflow, t, name, newest).await {
                    return Ok(Some(now + RETRY_MS));
                }
                newest
            }
            Some(newest) => newest,
            None => last,
        };
        Ok(next_after(&t.cron, tz, last.max(now)))
    }

    /// Writes a trigger's last fire durably; false (logged) if it failed.
    async fn persist(&self, workflow: &str, t: &CronTrigger, name: &str, last: Ts) -> bool {
        let state = TriggerState {
            last,
            schedule: t.schedule.clone(),
            timezone: t.timezone.name().to_owned(),
        };
        let bytes = serde_json::to_vec(&state).expect("trigger state serializes");
        match self
            .runtime
            .store()
            .service_put(NAMESPACE, name.as_bytes(), &bytes)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(workflow, trigger = %t.name, error = %e, "cannot store a cron trigger's last fire");
                false
            }
        }
    }
}

/// Runs the scheduler until `stop` turns true (or its sender is gone).
pub async fn run(runtime: Runtime, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    let scheduler = Scheduler::new(runtime.clone(), metrics);
    loop {
        if *stop.borrow() {
            break;
        }
        let next = scheduler.tick().await;
        let wait = next
            .map(|n| Duration::from_millis((n - runtime.now()).max(0) as u64))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = stop.changed() => if changed.is_err() { break },
        }
    }
    tracing::debug!("cron scheduler stopped");
}

#[cfg(test)]
mod tests;
