//! One daemon in process: the real router over a real sled store, runtime,
//! loader, tokens and link key, with the workflows and tokens the tests use,
//! and answers read whole.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use vakt::engine::{CallOutcome, Status};
use vakt::runtime::{
    BoxFuture, Connector, ConnectorCall, LogNotifier, Plans, Runtime, RuntimeConfig, SystemClock,
};
use vakt::serve::links::{LinkClaim, LinkKey};
use vakt::serve::loader::Loader;
use vakt::serve::metrics::{Metrics, describe_all};
use vakt::serve::tokens::{ApiRole, Tokens};
use vakt::serve::{Config, Shared, api};
use vakt::store::{Instances, SledStore, StoreConfig};

const OPS: &str = "ops@kommun.se";
const ADMIN: &str = "admin@kommun.se";
pub(crate) const ANNA: &str = "anna@kommun.se";
pub(crate) const EVE: &str = "eve@kommun.se";

/// An approval for Anna, then a signal wait. Inputs allow nested lists.
const FUZZ: &str = r#"id: fuzz
title: Fuzz
input:
  a: {type: list, required: false}
  note: {type: string, required: false}
steps:
  - id: ok
    approval:
      title: "Godkänn"
      assignees: [anna@kommun.se]
  - id: answer
    wait: {signal: go}
"#;

/// An approval for Eve.
const OTHER: &str = r#"id: other
title: Other
steps:
  - id: ok
    approval:
      title: "Eve decides"
      assignees: [eve@kommun.se]
  - id: answer
    wait: {signal: go}
"#;

/// Cron only: not startable through the API.
const NOAPI: &str = r#"id: noapi
triggers:
  api: false
  cron:
    - {schedule: "@yearly", timezone: Europe/Stockholm}
steps:
  - id: s
    wait: {signal: go}
"#;

const BROKEN: &str = "id: broken\nsteps: 5\n";

/// Answers every connector call with `{}`.
struct NoCalls;

impl Connector for NoCalls {
    fn call(&self, _: ConnectorCall) -> BoxFuture<CallOutcome> {
        Box::pin(async { CallOutcome::Ok(json!({})) })
    }
}

/// One daemon, in process.
pub(crate) struct Fixture {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) app: Router,
    pub(crate) shared: Arc<Shared>,
    pub(crate) operator: String,
    pub(crate) admin: String,
    pub(crate) anna: String,
    pub(crate) eve: String,
    pub(crate) revoked: String,
}

/// An answer, read whole.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Resp {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} answered a body that is not JSON ({e}): {}",
                self.status,
                show_body(&self.body)
            )
        })
    }

    pub(crate) fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

pub(crate) fn show_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.chars().count() > 400 {
        format!(
            "{}… ({} bytes)",
            text.chars().take(400).collect::<String>(),
            body.len()
        )
    } else {
        text.into_owned()
    }
}

/// A path or text cut to 300 characters for messages.
pub(crate) fn short(text: &str) -> String {
    if text.chars().count() > 300 {
        format!(
            "{}… ({} bytes)",
            text.chars().take(300).collect::<String>(),
            text.len()
        )
    } else {
        text.to_owned()
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

pub(crate) async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let flows = dir.path().join("workflows");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&flows).unwrap();
    write(&flows.join("fuzz.yaml"), FUZZ);
    write(&flows.join("other.yaml"), OTHER);
    write(&flows.join("noapi.yaml"), NOAPI);
    write(&flows.join("broken.yaml"), BROKEN);
    let toml = dir.path().join("vakt.toml");
    write(&toml, "");
    let config = Config::load_from(Some(&toml), std::iter::empty()).unwrap();

    let store = SledStore::open(&data.join("store"), &StoreConfig::default()).unwrap();
    let metrics = Arc::new(Metrics::new());
    describe_all(&metrics);
    let runtime = Runtime::open(
        store,
        Plans::default(),
        Arc::new(NoCalls),
        Arc::new(LogNotifier),
        Arc::new(SystemClock),
        RuntimeConfig {
            shards: 2,
            max_calls: 4,
        },
    )
    .unwrap();
    let loader = Arc::new(Loader::new(flows, runtime.clone(), metrics.clone()));
    let summary = loader.scan();
    for w in ["fuzz", "other", "noapi"] {
        assert!(
            runtime.current(w).is_some(),
            "workflow {w} is not loaded: {summary:?} {:?}",
            loader.workflows()
        );
    }

    let tokens = Arc::new(Tokens::open(&data).unwrap());
    let token = |who: &str, role: ApiRole| tokens.create(who, &[role], None).unwrap();
    let (_, operator) = token(OPS, ApiRole::Operator);
    let (_, admin) = token(ADMIN, ApiRole::Admin);
    let (_, anna) = token(ANNA, ApiRole::Approver);
    let (_, eve) = token(EVE, ApiRole::Approver);
    let (gone, revoked) = token("gone@kommun.se", ApiRole::Admin);
    assert!(tokens.revoke(&gone.id).unwrap());
    let links = Arc::new(LinkKey::open(&data).unwrap());

    let shared = Arc::new(Shared {
        config: Arc::new(config),
        runtime,
        loader,
        tokens,
        links,
        metrics,
        base_url: "http://127.0.0.1:7700".into(),
    });
    Fixture {
        app: api::router(shared.clone()),
        shared,
        _dir: dir,
        operator,
        admin,
        anna,
        eve,
        revoked,
    }
}

impl Fixture {
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.shared.runtime
    }

    pub(crate) async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// A request with an optional bearer token and a body.
    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: impl Into<Body>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        self.send(req.body(body.into()).unwrap()).await
    }

    /// Starts an instance of `workflow` and waits for its task to open;
    /// returns the instance id and the task number.
    pub(crate) async fn waiting(&self, workflow: &str) -> (String, u32) {
        let id = self
            .runtime()
            .start(workflow, json!({}), OPS, None)
            .await
            .unwrap();
        for _ in 0..2_000 {
            if let Some(i) = self.runtime().instance(&id).unwrap()
                && let Some((n, _)) = i.tasks.iter().find(|(_, t)| t.open)
            {
                return (id, *n);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("instance {id} of {workflow} never opened its task");
    }

    /// Waits until instance `id` has `status`.
    pub(crate) async fn until(&self, id: &str, status: Status) {
        for _ in 0..2_000 {
            if self
                .runtime()
                .instance(id)
                .unwrap()
                .is_some_and(|i| i.status == status)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("instance {id} did not reach {status:?}");
    }

    /// Every stored instance reads through the API: its view and history
    /// answer 200, and the instance list (which leaves out, and logs, an
    /// instance it cannot read) shows them all; the task lists answer 200.
    pub(crate) async fn all_readable(&self) {
        let ids = self.runtime().store().all_ids().unwrap();
        let mut uris = vec![
            (
                "/api/v1/tasks?status=all&limit=10000".to_owned(),
                &self.operator,
            ),
            ("/api/v1/tasks?status=all".to_owned(), &self.anna),
        ];
        for id in &ids {
            uris.push((format!("/api/v1/instances/{id}"), &self.operator));
            uris.push((format!("/api/v1/instances/{id}/history"), &self.operator));
        }
        for (uri, token) in uris {
            let r = self.call(Method::GET, &uri, Some(token), "").await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "GET {uri}: {}",
                show_body(&r.body)
            );
        }
        let r = self
            .call(
                Method::GET,
                "/api/v1/instances?limit=10000",
                Some(&self.operator),
                "",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", show_body(&r.body));
        let listed = r.json()["instances"].as_array().unwrap().len();
        assert_eq!(
            listed,
            ids.len().min(10_000),
            "instances listed of those stored"
        );
    }

    pub(crate) fn history_len(&self, id: &str) -> usize {
        self.runtime().store().history(id).unwrap().len()
    }

    /// A signed link for `assignee` to decide `option` on a task.
    pub(crate) fn link(
        &self,
        instance: &str,
        task: u32,
        assignee: &str,
        option: &str,
        expires: i64,
    ) -> String {
        self.shared.links.sign(&LinkClaim {
            instance: instance.into(),
            task,
            assignee: assignee.into(),
            option: option.into(),
            expires,
            nonce: LinkClaim::nonce(),
        })
    }
}

pub(crate) fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
