//! HTTP API v1 (axum): JSON in and out, one error shape, bearer tokens.
//!
//! Routes (design.md is the contract):
//!
//! | route | who |
//! |---|---|
//! | `GET /healthz`, `GET /metrics` | anyone (no personal data) |
//! | `GET /api/v1/workflows` | any token |
//! | `POST /api/v1/workflows/{workflow}/instances` | operator, admin |
//! | `GET /api/v1/instances[/{id}[/history]]` | operator, admin |
//! | `POST /api/v1/instances/{id}/signals/{name}`, `…/cancel` | operator, admin |
//! | `GET /api/v1/instances/{id}/report?format=json\|csv\|html` | operator, admin |
//! | `GET /api/v1/tasks` | any token; an approver sees only tasks assigned to them |
//! | `POST /api/v1/tasks/{id}/decision` | an assignee of the task (any role) |
//! | `GET/POST /t/{token}` | the signed link is the credential (see `pages`) |
//!
//! Errors are `{"error": {"code", "message"}}` with a stable `code`. Request
//! bodies are limited (`max_body_bytes`); a larger one gets 413.

mod instances;
mod ops;
mod report;
mod tasks;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::Shared;
use super::tokens::{ApiRole, Principal};
use crate::engine::Rejection;
use crate::runtime::RuntimeError;

/// The whole HTTP service: API, operations endpoints and link pages.
pub fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/workflows", get(ops::workflows))
        .route(
            "/api/v1/workflows/{workflow}/instances",
            post(instances::start),
        )
        .route("/api/v1/instances", get(instances::list))
        .route("/api/v1/instances/{id}", get(instances::show))
        .route("/api/v1/instances/{id}/history", get(instances::history))
        .route("/api/v1/instances/{id}/report", get(report::report))
        .route(
            "/api/v1/instances/{id}/signals/{name}",
            post(instances::signal),
        )
        .route("/api/v1/instances/{id}/cancel", post(instances::cancel))
        .route("/api/v1/tasks", get(tasks::list))
        .route("/api/v1/tasks/{id}/decision", post(tasks::decide))
        .merge(super::pages::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this method is not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            observe,
        ))
        .with_state(shared)
}

/// Counts requests by route and status; logs them at debug level (no
/// bodies, no query strings: they may hold personal data).
async fn observe(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let is_page = req.uri().path().starts_with("/t/");
    let started = Instant::now();
    let mut resp = reshape(next.run(req).await, is_page).await;
    let status = resp.status();
    s.metrics.inc(
        "vakt_http_requests_total",
        &[
            ("route", &route),
            ("method", method.as_str()),
            ("status", status.as_str()),
        ],
    );
    tracing::debug!(%method, %route, status = status.as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    resp.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// Errors made by the framework itself (a method not allowed, a query
/// string or path segment that does not parse) come as plain text or empty:
/// give them the API's JSON error shape, or an HTML page under `/t/`.
async fn reshape(resp: Response, is_page: bool) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype.starts_with("application/json") || ctype.starts_with("text/html") {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    let text = match axum::body::to_bytes(resp.into_body(), 64 * 1024).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).into_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned(),
    };
    let text = match &allow {
        Some(a) if status == StatusCode::METHOD_NOT_ALLOWED => {
            format!(
                "method not allowed here; allowed: {}",
                a.to_str().unwrap_or("")
            )
        }
        _ => text,
    };
    let mut out = if is_page {
        super::pages::page(
            status,
            "This link is not valid",
            &format!("<p role=\"alert\">{}</p>", super::pages::escape(&text)),
        )
    } else {
        let code = match status {
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            s if s.is_server_error() => "internal",
            _ => "bad_request",
        };
        ApiError::new(status, code, text).into_response()
    };
    if let Some(a) = allow {
        out.headers_mut().insert(header::ALLOW, a);
    }
    out
}

/// How deep a request's JSON may nest. Stored records wrap it a few levels
/// deeper, and must stay readable within serde_json's limit (128).
const MAX_DEPTH: usize = 64;

/// Whether JSON text nests deeper than `max` (strings are skipped).
fn too_deep(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// An API error: status, stable code, message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error answering a request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the daemon's log has the details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(d) = self.details {
            error["details"] = d;
        }
        let mut resp = (self.status, axum::Json(json!({ "error": error }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vakt\""),
            );
        }
        resp
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::UnknownWorkflow(_) => ApiError::not_found(e.to_string()),
            RuntimeError::NotStartable(_) => {
                ApiError::new(StatusCode::CONFLICT, "not_startable", e.to_string())
            }
            RuntimeError::Input(problems) => {
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_input",
                    format!("invalid input: {}", problems.join("; ")),
                );
                err.details = Some(json!({ "problems": problems }));
                err
            }
            RuntimeError::NotFound(_) => ApiError::not_found(e.to_string()),
            RuntimeError::Rejected(r) => r.into(),
            RuntimeError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the daemon is shutting down; retry shortly",
            ),
            RuntimeError::Store(e) => ApiError::internal(e),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        let (status, code) = match &r {
            Rejection::Finished => (StatusCode::CONFLICT, "finished"),
            Rejection::TaskNotOpen(_) => (StatusCode::CONFLICT, "task_closed"),
            Rejection::AlreadyDecided(_) => (StatusCode::CONFLICT, "already_decided"),
            Rejection::NotAssignee(_) | Rejection::SelfApproval => {
                (StatusCode::FORBIDDEN, "forbidden")
            }
            Rejection::UnknownOption { .. } | Rejection::CommentRequired => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_decision")
            }
            Rejection::NoDelegation | Rejection::BadAssignee(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request")
            }
        };
        ApiError::new(status, code, r.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

/// The authenticated caller.
pub struct Caller(pub Principal);

impl Caller {
    /// Refuses unless the caller holds one of `roles`.
    pub fn require(&self, roles: &[ApiRole], what: &str) -> Result<(), ApiError> {
        if roles.iter().any(|r| self.0.has(*r)) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{what} needs the {} role; this token has {}",
                roles
                    .iter()
                    .map(|r| format!("{r:?}").to_lowercase())
                    .collect::<Vec<_>>()
                    .join(" or "),
                self.0
                    .roles
                    .iter()
                    .map(|r| format!("{r:?}").to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// Operators and admins see everything; approvers their own tasks.
    pub fn sees_all(&self) -> bool {
        self.0.has(ApiRole::Admin) || self.0.has(ApiRole::Operator)
    }
}

impl FromRequestParts<Arc<Shared>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<Shared>) -> Result<Self, ApiError> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(unauthorized(
                "this request needs `Authorization: Bearer <token>`; create a token with `vakt token create`",
            ));
        };
        let bearer = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let Some(bearer) = bearer else {
            return Err(unauthorized(
                "the Authorization header must be `Bearer <token>`",
            ));
        };
        match s.tokens.authenticate(bearer) {
            Some(p) => Ok(Caller(p)),
            None => Err(unauthorized(
                "the token is not valid (revoked, mistyped, or from another installation)",
            )),
        }
    }
}

/// Parses a JSON body; an empty body is `default`.
pub fn json_body(body: Result<Bytes, BytesRejection>, default: Value) -> Result<Value, ApiError> {
    let bytes = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than the daemon accepts (max_body_bytes)",
            )
        } else {
            ApiError::bad_request(format!("cannot read the request body: {r}"))
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(default);
    }
    if too_deep(&bytes, MAX_DEPTH) {
        return Err(ApiError::bad_request(format!(
            "the request body nests deeper than {MAX_DEPTH} levels"
        )));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not valid JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// An instance for a listing: one that cannot be read is named in the log
/// and left out, so it does not take the whole list down.
pub fn readable(s: &Shared, id: &str) -> Option<crate::engine::Instance> {
    match s.runtime.instance(id) {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(instance = %id, error = %e, "instance unreadable; left out of a listing");
            None
        }
    }
}

/// Milliseconds as RFC 3339, `null` for none.
pub fn time(ts: Option<i64>) -> Value {
    match ts {
        Some(t) => Value::String(crate::engine::model::rfc3339(t)),
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nesting_is_measured_outside_strings() {
        assert!(!super::too_deep(br#"{"a": [[1]], "b": "[[[[[[["}"#, 3));
        assert!(super::too_deep(br#"{"a": [[[1]]]}"#, 3));
        assert!(!super::too_deep(br#"{"a": "\"[[[[", "b": [1]}"#, 2));
    }
}
