//! Tests of the cron scheduler: due times, catch-up, DST, exactly-once fires.

use std::sync::atomic::Ordering;

use super::*;
use crate::serve::testkit;
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
