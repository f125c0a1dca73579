//! The runtime over a real sled store: instances run to completion, every
//! history chain verifies, state survives reopening, decisions and timers
//! drive waiting instances, and recovery re-issues interrupted calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::json;
use vakt::engine::{CallOutcome, Event, Status};
use vakt::runtime::{
    BoxFuture, Connector, ConnectorCall, LogNotifier, Plans, Runtime, RuntimeConfig, SystemClock,
};
use vakt::store::{Instances, SledStore, StoreConfig, Tasks, chain};
use vakt::workflow;

const THREE_STEPS: &str = r#"
id: three
steps:
  - id: a
    call: ticketing.create
    with: {subject: "s", body: "b"}
  - id: b
    call: ticketing.comment
    with: {ticket: "{{ steps.a.output.id }}", body: "c"}
  - id: c
    call: ticketing.close
    with: {ticket: "{{ steps.a.output.id }}"}
"#;

const APPROVAL: &str = r#"
id: approve
steps:
  - id: ok
    approval: {title: "Godkänn", assignees: [boss@kommun.se]}
  - id: pause
    wait: 1s
"#;

struct Instant {
    calls: AtomicU32,
}

impl Connector for Instant {
    fn call(&self, call: ConnectorCall) -> BoxFuture<CallOutcome> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(
            async move { CallOutcome::Ok(json!({"id": format!("T-{}", call.idempotency_key)})) },
        )
    }
}

fn plans() -> (Plans, Vec<(Arc<workflow::Plan>, &'static str)>) {
    let mut plans = Plans::default();
    let mut sources = Vec::new();
    for src in [THREE_STEPS, APPROVAL] {
        let p = workflow::load_source("t.yaml", src.to_owned())
            .result
            .unwrap();
        plans.insert(p.clone());
        sources.push((p, src));
    }
    (plans, sources)
}

async fn open(dir: &std::path::Path, connector: Arc<dyn Connector>) -> Runtime {
    let store = SledStore::open(dir, &StoreConfig::default()).unwrap();
    let (plans, sources) = plans();
    let rt = Runtime::open(
        store,
        plans,
        connector,
        Arc::new(LogNotifier),
        Arc::new(SystemClock),
        RuntimeConfig::default(),
    )
    .unwrap();
    for (p, src) in sources {
        rt.install(p, src).unwrap();
    }
    rt
}

async fn wait_for(rt: &Runtime, id: &str, status: Status) {
    for _ in 0..500 {
        if rt.instance(id).unwrap().is_some_and(|i| i.status == status) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{id} did not reach {status:?}: {:?}",
        rt.instance(id).unwrap().map(|i| i.status)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_instances_complete_with_verified_chains() {
    let dir = tempfile::tempdir().unwrap();
    let connector = Arc::new(Instant {
        calls: AtomicU32::new(0),
    });
    let rt = open(dir.path(), connector.clone()).await;
    let mut handles = Vec::new();
    for n in 0..200 {
        let rt = rt.clone();
        handles.push(tokio::spawn(async move {
            rt.start("three", json!({}), "ops@kommun.se", Some(format!("k{n}")))
                .await
                .unwrap()
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.push(h.await.unwrap());
    }
    // A repeated start with the same key returns the same instance.
    assert_eq!(
        rt.start("three", json!({}), "ops@kommun.se", Some("k7".into()))
            .await
            .unwrap(),
        ids[7]
    );
    for id in &ids {
        wait_for(&rt, id, Status::Completed).await;
        let h = rt.store().history(id).unwrap();
        let (n, _) = chain::verify(&h).unwrap();
        assert_eq!(n, rt.instance(id).unwrap().unwrap().seq);
    }
    assert_eq!(connector.calls.load(Ordering::SeqCst), 600);
    assert_eq!(
        rt.store()
            .ids_by_workflow("three", Some("completed"), 1000)
            .unwrap()
            .len(),
        200
    );
    assert!(rt.store().ids_with_calls().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_instance_survives_reopening_and_is_decided() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let rt = open(
            dir.path(),
            Arc::new(Instant {
                calls: AtomicU32::new(0),
            }),
        )
        .await;
        let id = rt
            .start("approve", json!({}), "teacher@skola.se", None)
            .await
            .unwrap();
        wait_for(&rt, &id, Status::Waiting).await;
        assert_eq!(rt.store().open_tasks_of("boss@kommun.se").unwrap().len(), 1);
        rt.shutdown().await;
        id
    };
    let rt = open(
        dir.path(),
        Arc::new(Instant {
            calls: AtomicU32::new(0),
        }),
    )
    .await;
    let i = rt.instance(&id).unwrap().unwrap();
    assert_eq!(i.status, Status::Waiting);
    let task = *i.tasks.keys().next().unwrap();
    let wrong = rt
        .event(
            &id,
            Event::Decide {
                task,
                by: "x@kommun.se".into(),
                roles: vec![],
                option: "approve".into(),
                comment: None,
            },
        )
        .await;
    assert!(wrong.is_err());
    rt.event(
        &id,
        Event::Decide {
            task,
            by: "boss@kommun.se".into(),
            roles: vec![],
            option: "approve".into(),
            comment: None,
        },
    )
    .await
    .unwrap();
    assert!(
        rt.store()
            .open_tasks_of("boss@kommun.se")
            .unwrap()
            .is_empty()
    );
    // The one-second wait is served by the timer service.
    wait_for(&rt, &id, Status::Completed).await;
    chain::verify(&rt.store().history(&id).unwrap()).unwrap();
}
