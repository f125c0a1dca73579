//! Retention over a real store: a finished instance's payloads are purged
//! after the period, the audit skeleton stays, the hash chain still
//! verifies, and running or recent instances are left alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::json;
use vakt::engine::{CallOutcome, Event, Ts};
use vakt::runtime::{
    BoxFuture, Clock, Connector, ConnectorCall, LogNotifier, Plans, Runtime, RuntimeConfig,
};
use vakt::store::{Instances, SledStore, StoreConfig, chain};
use vakt::workflow;

const FLOW: &str = r#"
id: personal
input:
  student: {type: string}
steps:
  - id: note
    set: {who: "{{ input.student }}"}
  - id: decide
    approval: {title: "Beslut om {{ input.student }}", assignees: [rektor@skola.se]}
  - id: done
    succeed: "{{ vars.who }} klar"
"#;

struct Manual(AtomicI64);
impl Clock for Manual {
    fn now(&self) -> Ts {
        self.0.load(Ordering::SeqCst)
    }
}

struct Never;
impl Connector for Never {
    fn call(&self, _c: ConnectorCall) -> BoxFuture<CallOutcome> {
        Box::pin(async { CallOutcome::Ok(json!({})) })
    }
}

#[tokio::test]
async fn finished_payloads_are_purged_and_the_chain_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), &StoreConfig::default()).unwrap();
    let plan = workflow::load_source("p.yaml", FLOW.to_owned())
        .result
        .unwrap();
    let mut plans = Plans::default();
    plans.insert(plan.clone());
    let clock = Arc::new(Manual(AtomicI64::new(1_700_000_000_000)));
    let rt = Runtime::open(
        store,
        plans,
        Arc::new(Never),
        Arc::new(LogNotifier),
        clock.clone(),
        RuntimeConfig::default(),
    )
    .unwrap();
    rt.install(plan, FLOW).unwrap();
    let done = rt
        .start(
            "personal",
            json!({"student": "Anna Andersson"}),
            "it@kommun.se",
            None,
        )
        .await
        .unwrap();
    rt.event(
        &done,
        Event::Decide {
            task: rt
                .instance(&done)
                .unwrap()
                .unwrap()
                .tasks
                .keys()
                .copied()
                .next()
                .unwrap(),
            by: "rektor@skola.se".into(),
            roles: vec![],
            option: "approve".into(),
            comment: Some("Anna får fortsätta".into()),
        },
    )
    .await
    .unwrap();
    rt.wait_final(&done).await.unwrap();
    let running = rt
        .start(
            "personal",
            json!({"student": "Bo Berg"}),
            "it@kommun.se",
            None,
        )
        .await
        .unwrap();

    let (_tx, mut stop) = tokio::sync::watch::channel(false);
    let year = Duration::from_secs(365 * 86_400);
    // Not yet: the period has not passed.
    assert_eq!(
        vakt::serve::retention::sweep(&rt, year, &mut stop)
            .await
            .unwrap(),
        0
    );
    clock.0.fetch_add(366 * 86_400_000, Ordering::SeqCst);
    assert_eq!(
        vakt::serve::retention::sweep(&rt, year, &mut stop)
            .await
            .unwrap(),
        1
    );
    // Purged once: a second pass does nothing.
    assert_eq!(
        vakt::serve::retention::sweep(&rt, year, &mut stop)
            .await
            .unwrap(),
        0
    );

    let history = rt.store().history(&done).unwrap();
    let text = serde_json::to_string(&history).unwrap();
    assert!(
        !text.contains("Anna"),
        "payload left in the history: {text}"
    );
    assert!(text.contains("rektor@skola.se"), "who decided stays");
    assert!(text.contains("approve"), "what was decided stays");
    chain::verify(&history).expect("the purged chain verifies");
    assert!(history.iter().any(|e| e.purged.is_some()));
    let snapshot = serde_json::to_string(&rt.instance(&done).unwrap().unwrap()).unwrap();
    assert!(
        !snapshot.contains("Anna"),
        "payload left in the snapshot: {snapshot}"
    );

    // The running instance keeps everything.
    let text = serde_json::to_string(&rt.store().history(&running).unwrap()).unwrap();
    assert!(text.contains("Bo Berg"));
    rt.shutdown().await;
}
