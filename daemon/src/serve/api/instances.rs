//! Instances: start, list, show, history, signal, cancel.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::tasks::task_view;
use super::{ApiError, Caller, json_body, time};
use crate::engine::state::Waiting;
use crate::engine::{Event, Instance, Status};
use crate::serve::Shared;
use crate::serve::tokens::ApiRole;
use crate::store::Instances;

const RUNS: &[ApiRole] = &[ApiRole::Admin, ApiRole::Operator];

/// `POST /api/v1/workflows/{workflow}/instances`: body = the input.
pub async fn start(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    Path(workflow): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(RUNS, "starting an instance")?;
    let input = json_body(body, json!({}))?;
    let Some(plan) = s.runtime.current(&workflow) else {
        let known = s.loader.workflows();
        let hint = match known.iter().find(|w| w.id == workflow) {
            Some(w) if !w.errors.is_empty() => {
                format!(
                    "workflow `{workflow}` has errors and no valid version; see GET /api/v1/workflows"
                )
            }
            Some(_) => format!("workflow `{workflow}` was removed"),
            None => format!("no workflow `{workflow}` is loaded"),
        };
        return Err(ApiError::not_found(hint));
    };
    if !plan.triggers.api {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_startable",
            format!(
                "workflow `{workflow}` has no `api` trigger; it cannot be started by a request"
            ),
        ));
    }
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v
                .to_str()
                .ok()
                .filter(|k| {
                    !k.is_empty() && k.len() <= 200 && k.chars().all(|c| c.is_ascii_graphic())
                })
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Idempotency-Key must be 1 to 200 visible ASCII characters",
                    )
                })?;
            Some(format!("api/{workflow}/{k}"))
        }
    };
    if let Some(k) = &key
        && let Some(id) = s.runtime.store().instance_by_start_key(k)?
    {
        let status = s
            .runtime
            .instance(&id)?
            .map(|i| i.status.as_str())
            .unwrap_or("running");
        let mut resp = (
            StatusCode::OK,
            Json(json!({"id": id, "workflow": workflow, "status": status})),
        )
            .into_response();
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(resp);
    }
    let id = s
        .runtime
        .start(&workflow, input, &caller.0.address, key)
        .await?;
    tracing::info!(instance = %id, workflow = %workflow, "instance started by request");
    let mut resp = (
        StatusCode::CREATED,
        Json(json!({"id": id, "workflow": workflow, "status": "running"})),
    )
        .into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/instances/{id}")) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub struct ListQuery {
    workflow: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/instances?workflow=&status=&limit=`
pub async fn list(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(RUNS, "listing instances")?;
    if let Some(st) = &q.status
        && !["running", "waiting", "completed", "failed", "cancelled"].contains(&st.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "status `{st}` is not one of running, waiting, completed, failed, cancelled"
        )));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let store = s.runtime.store();
    let rows = store.list_instances(q.workflow.as_deref(), q.status.as_deref(), limit)?;
    let mut out = Vec::with_capacity(rows.len());
    for (_, _, id) in rows {
        if let Some(i) = super::readable(&s, &id) {
            out.push(json!({
                "id": i.id,
                "workflow": i.workflow,
                "status": i.status.as_str(),
                "started_at": time(Some(i.started_at)),
                "started_by": i.started_by,
                "updated_at": time(Some(i.updated_at)),
            }));
        }
    }
    Ok(Json(json!({ "instances": out })))
}

/// `GET /api/v1/instances/{id}`
pub async fn show(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(RUNS, "reading an instance")?;
    let i = load(&s, &id)?;
    Ok(Json(instance_view(&s, &i)))
}

fn load(s: &Shared, id: &str) -> Result<Instance, ApiError> {
    s.runtime
        .instance(id)?
        .ok_or_else(|| ApiError::not_found(format!("no instance `{id}`")))
}

/// Refuses (409) an event for an instance that has finished.
fn unfinished(s: &Shared, id: &str) -> Result<(), ApiError> {
    let i = load(s, id)?;
    if i.status.is_final() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "finished",
            format!(
                "instance `{id}` has already finished ({})",
                i.status.as_str()
            ),
        ));
    }
    Ok(())
}

fn instance_view(s: &Shared, i: &Instance) -> Value {
    let plan = s.runtime.plan_for(&i.hash).ok();
    let tasks: Vec<Value> = i
        .tasks
        .iter()
        .map(|(n, t)| task_view(plan.as_deref(), i, *n, t))
        .collect();
    let clocks: Map<String, Value> = i
        .clocks
        .iter()
        .map(|(name, c)| {
            (
                name.clone(),
                json!({
                    "anchor": time(Some(c.anchor)),
                    "due": time(Some(c.due)),
                    "breached": c.breached,
                    "met_at": time(c.met_at),
                }),
            )
        })
        .collect();
    let waiting: Vec<String> = i
        .threads
        .values()
        .filter_map(|t| match &t.waiting {
            Waiting::Ready | Waiting::Join => None,
            Waiting::Call { call } => Some(match i.calls.get(call) {
                Some(c) => format!("connector {}.{} (attempt {})", c.role, c.action, c.attempt),
                None => "a connector call".into(),
            }),
            Waiting::Timer { timer } => Some(match i.timers.get(timer) {
                Some(tm) => format!("a timer due {}", crate::engine::model::rfc3339(tm.due)),
                None => "a timer".into(),
            }),
            Waiting::Task { task } => Some(format!("task {}:{task}", i.id)),
            Waiting::Signal { name } => Some(format!("signal `{name}`")),
            Waiting::Child { child } => Some(format!("sub-workflow instance {child}")),
        })
        .collect();
    json!({
        "id": i.id,
        "workflow": i.workflow,
        "hash": i.hash,
        "status": i.status.as_str(),
        "input": i.input,
        "started_at": time(Some(i.started_at)),
        "started_by": i.started_by,
        "updated_at": time(Some(i.updated_at)),
        "parent": i.parent,
        "output": i.output,
        "error": i.error,
        "tasks": tasks,
        "clocks": clocks,
        "waiting": waiting,
    })
}

/// `GET /api/v1/instances/{id}/history`: the hash-chained records, verified.
pub async fn history(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(RUNS, "reading a history")?;
    let entries = s.runtime.store().history(&id)?;
    if entries.is_empty() {
        return Err(ApiError::not_found(format!("no instance `{id}`")));
    }
    let verified = crate::store::chain::verify(&entries).is_ok();
    if !verified {
        tracing::error!(instance = %id, "history chain does not verify");
    }
    let history: Vec<Value> = entries
        .iter()
        .map(|e| {
            let record = serde_json::to_value(&e.record).unwrap_or(Value::Null);
            json!({
                "seq": e.seq,
                "at": time(Some(e.at)),
                "type": record.get("type").cloned().unwrap_or(Value::Null),
                "record": record,
                "hash": hex::encode(e.hash),
            })
        })
        .collect();
    Ok(Json(json!({ "history": history, "verified": verified })))
}

/// `POST /api/v1/instances/{id}/signals/{name}`: body = the signal's data.
pub async fn signal(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(RUNS, "signalling an instance")?;
    if name.is_empty()
        || name.len() > 100
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(ApiError::bad_request(
            "a signal name has letters, digits, `_`, `-` and `.`",
        ));
    }
    let data = json_body(body, Value::Null)?;
    unfinished(&s, &id)?;
    s.runtime
        .event(
            &id,
            Event::Signal {
                name: name.clone(),
                data,
            },
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "signal": name})),
    ))
}

#[derive(Deserialize, Default)]
struct CancelBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/instances/{id}/cancel`: body `{"reason": …}` (optional).
pub async fn cancel(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(RUNS, "cancelling an instance")?;
    let body: CancelBody = serde_json::from_value(json_body(body, json!({}))?)
        .map_err(|e| ApiError::bad_request(format!("cancel body: {e}")))?;
    unfinished(&s, &id)?;
    let reason = body
        .reason
        .unwrap_or_else(|| "cancelled through the API".into());
    s.runtime
        .event(
            &id,
            Event::Cancel {
                by: caller.0.address.clone(),
                reason,
            },
        )
        .await?;
    let status = s
        .runtime
        .instance(&id)?
        .map(|i| i.status)
        .unwrap_or(Status::Cancelled);
    tracing::info!(instance = %id, "instance cancelled by request");
    Ok(Json(json!({"id": id, "status": status.as_str()})))
}
