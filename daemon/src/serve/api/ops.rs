//! Operations endpoints: health, metrics, the loaded workflows.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ApiError, Caller};
use crate::serve::Shared;
use crate::serve::metrics::{gauge, gauge_header};

/// `GET /healthz`: 200 while the store answers.
pub async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    match s.runtime.store().size_on_disk() {
        Ok(_) => (StatusCode::OK, Json(json!({"status": "ok"}))).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: the store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(s): State<Arc<Shared>>) -> Result<Response, ApiError> {
    let store = s.runtime.store().clone();
    // Counting index keys reads the store: off the async workers.
    let counted = tokio::task::spawn_blocking(move || {
        let by = store.count_instances()?;
        let (timers, tasks) = store.count_timers_and_tasks()?;
        let disk = store.size_on_disk()?;
        Ok::<_, crate::store::StoreError>((by, timers, tasks, disk))
    })
    .await
    .map_err(ApiError::internal)??;
    let (by, timers, tasks, disk) = counted;
    let mut out = String::with_capacity(4096);
    gauge_header(
        &mut out,
        "vakt_instances",
        "Instances by workflow and status.",
    );
    for ((w, st), n) in &by {
        gauge(
            &mut out,
            "vakt_instances",
            &[("workflow", w), ("status", st)],
            *n as f64,
        );
    }
    gauge_header(
        &mut out,
        "vakt_timers_pending",
        "Stored timers not yet fired.",
    );
    gauge(&mut out, "vakt_timers_pending", &[], timers as f64);
    gauge_header(
        &mut out,
        "vakt_tasks_open",
        "Open task assignments (a task with two assignees counts twice).",
    );
    gauge(&mut out, "vakt_tasks_open", &[], tasks as f64);
    gauge_header(
        &mut out,
        "vakt_store_disk_bytes",
        "The store's size on disk.",
    );
    gauge(&mut out, "vakt_store_disk_bytes", &[], disk as f64);
    let workflows = s.loader.workflows();
    gauge_header(
        &mut out,
        "vakt_workflows",
        "Workflow files by status (active, invalid, removed).",
    );
    for st in ["active", "invalid", "removed"] {
        let n = workflows.iter().filter(|w| w.status == st).count();
        gauge(&mut out, "vakt_workflows", &[("status", st)], n as f64);
    }
    s.metrics.render(&mut out);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

/// `GET /api/v1/workflows`: every workflow file, with its errors if any.
pub async fn workflows(State(s): State<Arc<Shared>>, _caller: Caller) -> Json<Value> {
    Json(json!({ "workflows": s.loader.workflows() }))
}
