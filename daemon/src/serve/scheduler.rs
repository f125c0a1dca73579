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
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::store::Instances;

    fn ts(s: &str) -> Ts {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn cron(s: &str) -> Cron {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .build()
            .parse(s)
            .unwrap()
    }

    fn oslo() -> Tz {
        "Europe/Oslo".parse().unwrap()
    }

    /// Every fire in `(last, now]`, walking forward (the reference for `due`).
    fn forward(c: &Cron, tz: Tz, last: Ts, now: Ts) -> Vec<Ts> {
        let mut out = Vec::new();
        let mut at = last;
        while let Some(n) = next_after(c, tz, at).filter(|n| *n <= now) {
            out.push(n);
            at = n;
        }
        out
    }

    #[test]
    fn catch_up_policies() {
        let c = cron("0 7 * * *");
        let last = ts("2026-01-10T07:00:00+01:00");
        let (d11, d12, d13) = (
            ts("2026-01-11T07:00:00+01:00"),
            ts("2026-01-12T07:00:00+01:00"),
            ts("2026-01-13T07:00:00+01:00"),
        );
        // The newest is on time (30 s ago), two were missed.
        let now = d13 + 30_000;
        let d = due(&c, oslo(), CatchUp::None, last, now);
        assert_eq!((d.fire, d.skipped, d.newest), (vec![d13], 2, Some(d13)));
        let d = due(&c, oslo(), CatchUp::Latest, last, now);
        assert_eq!((d.fire, d.skipped), (vec![d13], 2));
        let d = due(&c, oslo(), CatchUp::All, last, now);
        assert_eq!((d.fire, d.skipped), (vec![d11, d12, d13], 0));
        // All three missed (two hours late).
        let now = d13 + 7_200_000;
        let d = due(&c, oslo(), CatchUp::None, last, now);
        assert_eq!((d.fire, d.skipped, d.newest), (vec![], 3, Some(d13)));
        let d = due(&c, oslo(), CatchUp::Latest, last, now);
        assert_eq!(d.fire, vec![d13]);
        // Nothing due: before the next time, or the last fire is the newest.
        let d = due(&c, oslo(), CatchUp::All, d13, d13 + 3_600_000);
        assert_eq!(d, Due::default());
        assert_eq!(
            next_after(&c, oslo(), d13),
            Some(ts("2026-01-14T07:00:00+01:00"))
        );
    }

    #[test]
    fn catch_up_all_is_capped_at_the_newest() {
        let c = cron("* * * * *");
        let now = ts("2026-02-01T12:00:30Z");
        let d = due(&c, oslo(), CatchUp::All, now - 86_400_000, now);
        assert!(d.capped);
        assert_eq!(d.fire.len(), MAX_CATCH_UP);
        assert_eq!(d.fire.last(), Some(&ts("2026-02-01T12:00:00Z")));
        assert_eq!(d.fire[0], ts("2026-02-01T10:21:00Z"));
        let d = due(&c, oslo(), CatchUp::None, now - 86_400_000, now);
        assert_eq!((d.fire.len(), d.capped), (1, true));
    }

    #[test]
    fn a_daily_time_fires_once_on_both_dst_change_days_in_oslo() {
        let c = cron("30 2 * * *");
        // Spring forward, 2026-03-29: 02:30 does not exist; it runs at
        // 03:00 CEST, the first instant after the gap.
        let spring = forward(
            &c,
            oslo(),
            ts("2026-03-28T12:00:00Z"),
            ts("2026-03-30T12:00:00Z"),
        );
        assert_eq!(
            spring,
            vec![
                ts("2026-03-29T03:00:00+02:00"),
                ts("2026-03-30T02:30:00+02:00")
            ]
        );
        // Fall back, 2026-10-25: 02:30 happens twice; it runs at the first.
        let fall = forward(
            &c,
            oslo(),
            ts("2026-10-24T12:00:00Z"),
            ts("2026-10-26T12:00:00Z"),
        );
        assert_eq!(
            fall,
            vec![
                ts("2026-10-25T02:30:00+02:00"),
                ts("2026-10-26T02:30:00+01:00")
            ]
        );
        // Catching up over the change day gives the same times, once each.
        for (last, now, want) in [
            ("2026-03-28T12:00:00Z", "2026-03-30T12:00:00Z", &spring),
            ("2026-10-24T12:00:00Z", "2026-10-26T12:00:00Z", &fall),
        ] {
            assert_eq!(&due(&c, oslo(), CatchUp::All, ts(last), ts(now)).fire, want);
        }
        // Right after the fall-back's first 02:30, the repeated hour does not
        // make it due again.
        let first = ts("2026-10-25T02:30:00+02:00");
        let d = due(
            &c,
            oslo(),
            CatchUp::All,
            first,
            ts("2026-10-25T02:45:00+01:00"),
        );
        assert_eq!(d, Due::default());
    }

    #[test]
    fn walking_back_agrees_with_walking_forward_across_dst() {
        for pattern in [
            "30 2 * * *",
            "0 2 * * *",
            "0 3 * * *",
            "*/20 * * * *",
            "0 * * * 0",
        ] {
            let c = cron(pattern);
            for (last, now) in [
                ("2026-03-28T20:00:00Z", "2026-03-29T06:00:00Z"),
                ("2026-10-24T20:00:00Z", "2026-10-25T06:00:00Z"),
            ] {
                let (last, now) = (ts(last), ts(now));
                let back = due(&c, oslo(), CatchUp::All, last, now).fire;
                assert_eq!(back, forward(&c, oslo(), last, now), "{pattern}");
                let mut sorted = back.clone();
                sorted.dedup();
                assert_eq!(sorted, back, "{pattern}: a time fired twice");
            }
        }
    }

    #[test]
    fn fire_keys_are_utc_to_the_second() {
        assert_eq!(
            fire_key("recert", "cron[0]", ts("2026-01-15T07:00:00+01:00")),
            "cron/recert/cron[0]/2026-01-15T06:00:00Z"
        );
    }

    const RECERT: &str = r#"
id: recert
input:
  reason: {type: text}
triggers:
  cron:
    - schedule: "0 7 * * *"
      timezone: Europe/Oslo
      catch_up: latest
      input: {reason: annual}
steps:
  - id: ok
    approval: {title: "Godkänn", assignees: [boss@kommun.se]}
"#;

    fn open(dir: &std::path::Path, clock: Arc<testkit::Manual>) -> Runtime {
        let rt = testkit::with_clock(dir, clock);
        let plan = crate::workflow::load_source("recert.yaml", RECERT.to_owned())
            .result
            .unwrap();
        rt.install(plan, RECERT).unwrap();
        rt
    }

    fn started(rt: &Runtime) -> Vec<String> {
        rt.store().ids_by_workflow("recert", None, 100).unwrap()
    }

    #[tokio::test]
    async fn a_due_trigger_fires_exactly_once_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let clock = testkit::Manual::at(ts("2026-01-15T06:59:00+01:00"));
        let metrics = Arc::new(Metrics::new());
        let rt = open(dir.path(), clock.clone());
        let s = Scheduler::new(rt.clone(), metrics.clone());
        // First seen: nothing fires for the past; the next time is 07:00.
        assert_eq!(s.tick().await, Some(ts("2026-01-15T07:00:00+01:00")));
        assert!(started(&rt).is_empty());
        clock
            .0
            .store(ts("2026-01-15T07:00:05+01:00"), Ordering::SeqCst);
        assert_eq!(s.tick().await, Some(ts("2026-01-16T07:00:00+01:00")));
        assert_eq!(s.tick().await, Some(ts("2026-01-16T07:00:00+01:00")));
        let ids = started(&rt);
        assert_eq!(ids.len(), 1);
        let i = rt.instance(&ids[0]).unwrap().unwrap();
        assert_eq!(i.started_by, "cron:cron[0]");
        assert_eq!(i.input["reason"], "annual");
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(
            out.contains("vakt_cron_fires_total{workflow=\"recert\",result=\"started\"} 1"),
            "{out}"
        );

        // A crash after the start was durable but before the last fire was
        // written: the restarted scheduler fires 07:00 again, with the same
        // key, and gets the same instance.
        let before = TriggerState {
            last: ts("2026-01-15T06:59:00+01:00"),
            schedule: "0 7 * * *".into(),
            timezone: "Europe/Oslo".into(),
        };
        rt.store()
            .service_put(
                NAMESPACE,
                b"recert/cron[0]",
                &serde_json::to_vec(&before).unwrap(),
            )
            .await
            .unwrap();
        rt.shutdown().await;
        drop((s, rt));
        let rt = open(dir.path(), clock.clone());
        let s = Scheduler::new(rt.clone(), metrics.clone());
        s.tick().await;
        assert_eq!(started(&rt), ids);
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(out.contains("result=\"started\"} 2"), "fired again: {out}");
        // Restarted again with the last fire written: nothing to do.
        let s = Scheduler::new(rt.clone(), metrics.clone());
        s.tick().await;
        assert_eq!(started(&rt), ids);

        // Down for three mornings, `catch_up: latest`: one run, for the 18th.
        clock
            .0
            .store(ts("2026-01-18T09:00:00+01:00"), Ordering::SeqCst);
        s.tick().await;
        s.tick().await;
        let now = started(&rt);
        assert_eq!(now.len(), 2);
        let state: TriggerState = serde_json::from_slice(
            &rt.store()
                .service_get(NAMESPACE, b"recert/cron[0]")
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(state.last, ts("2026-01-18T07:00:00+01:00"));

        // Retired: its state is dropped, so coming back it is new.
        rt.retire("recert");
        assert_eq!(s.tick().await, None);
        assert!(rt.store().service_scan(NAMESPACE).unwrap().is_empty());
        rt.shutdown().await;
    }
}

/// A runtime over a temporary store with a manual clock, for the serve tests.
#[cfg(test)]
pub(crate) mod testkit {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use crate::engine::{CallOutcome, Ts};
    use crate::runtime::{
        BoxFuture, Clock, Connector, ConnectorCall, LogNotifier, Plans, Runtime, RuntimeConfig,
    };
    use crate::store::{SledStore, StoreConfig};

    /// A clock that moves only when told.
    pub struct Manual(pub AtomicI64);

    impl Manual {
        pub fn at(now: Ts) -> Arc<Manual> {
            Arc::new(Manual(AtomicI64::new(now)))
        }
    }

    impl Clock for Manual {
        fn now(&self) -> Ts {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// Answers every call with `{}`.
    struct NoCalls;

    impl Connector for NoCalls {
        fn call(&self, _: ConnectorCall) -> BoxFuture<CallOutcome> {
            Box::pin(async { CallOutcome::Ok(serde_json::json!({})) })
        }
    }

    pub fn with_clock(dir: &std::path::Path, clock: Arc<Manual>) -> Runtime {
        let store = SledStore::open(dir, &StoreConfig::default()).unwrap();
        let config = RuntimeConfig {
            shards: 1,
            max_calls: 4,
        };
        let (connector, notifier) = (Arc::new(NoCalls), Arc::new(LogNotifier));
        Runtime::open(store, Plans::default(), connector, notifier, clock, config).unwrap()
    }

    pub fn runtime(dir: &std::path::Path, now: Ts) -> (Runtime, Arc<Manual>) {
        let clock = Manual::at(now);
        (with_clock(dir, clock.clone()), clock)
    }
}
