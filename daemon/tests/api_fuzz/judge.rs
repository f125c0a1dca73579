//! The properties every answer keeps, and what the router does with a method
//! and a raw path (the oracle they are judged by).

use axum::http::{Method, StatusCode, header};
use serde_json::Value;

use crate::model::{Auth, MAX_DEPTH, Req, Who};
use crate::setup::{Fixture, Resp};

/// Whether an answer has the API's error shape: a JSON object
/// `{"error": {"code": …, "message": …}}` with a non-empty message.
pub(crate) fn error_shape(r: &Resp) -> Result<(), String> {
    if !r.content_type().starts_with("application/json") {
        return Err(format!("content-type is `{}`", r.content_type()));
    }
    let v: Value =
        serde_json::from_slice(&r.body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let code = v.pointer("/error/code").and_then(Value::as_str);
    let message = v.pointer("/error/message").and_then(Value::as_str);
    match (code, message) {
        (Some(c), Some(m)) if !c.is_empty() && !m.trim().is_empty() => Ok(()),
        _ => Err("the body is not {\"error\": {\"code\", \"message\"}}".into()),
    }
}

// ---------------------------------------------------------------------------
// The routes, as the router declares them.

/// `(template, method, needs a token)`.
pub(crate) const ROUTES: &[(&str, &str, bool)] = &[
    ("/healthz", "GET", false),
    ("/metrics", "GET", false),
    ("/api/v1/workflows", "GET", true),
    ("/api/v1/workflows/{workflow}/instances", "POST", true),
    ("/api/v1/instances", "GET", true),
    ("/api/v1/instances/{id}", "GET", true),
    ("/api/v1/instances/{id}/history", "GET", true),
    ("/api/v1/instances/{id}/report", "GET", true),
    ("/api/v1/instances/{id}/signals/{name}", "POST", true),
    ("/api/v1/instances/{id}/cancel", "POST", true),
    ("/api/v1/tasks", "GET", true),
    ("/api/v1/tasks/{id}/decision", "POST", true),
    ("/t/{token}", "GET", false),
    ("/t/{token}", "POST", false),
];

/// What the router does with a method and a raw path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Match {
    /// A route: its template and whether it needs a token.
    Route(&'static str, bool),
    /// The path is a route's, the method is not.
    WrongMethod(&'static str),
    /// No route: the fallback.
    None,
}

fn template_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    let t_len = t.len();
    t.len() == p.len()
        && t.iter().zip(&p).enumerate().all(|(i, (t, p))| {
            // matchit lets a parameter be empty between slashes, not at the end.
            if t.starts_with('{') {
                i + 1 < t_len || !p.is_empty()
            } else {
                t == p
            }
        })
}

pub(crate) fn classify(method: &Method, path: &str) -> Match {
    let mut path_only = None;
    for (template, m, auth) in ROUTES {
        if template_matches(template, path) {
            if method.as_str() == *m {
                return Match::Route(template, *auth);
            }
            path_only = Some(*template);
        }
    }
    path_only.map_or(Match::None, Match::WrongMethod)
}

/// Whether an answer keeps the properties.
pub(crate) fn judge(req: &Req, fx: &Fixture, path: &str, r: &Resp) -> Result<(), String> {
    let m = classify(&req.method, path);
    let (_, valid_token) = req.auth.value(fx);
    if r.status.is_server_error() {
        return Err(format!("answered {} (a server error)", r.status));
    }
    // 401 iff a token is needed and this one is missing or invalid.
    let expect_401 = matches!(m, Match::Route(_, true)) && !valid_token;
    if expect_401 != (r.status == StatusCode::UNAUTHORIZED) {
        return Err(format!(
            "answered {}; expected {} (route {m:?}, token valid: {valid_token})",
            r.status,
            if expect_401 {
                "401"
            } else {
                "anything but 401"
            }
        ));
    }
    if r.status == StatusCode::UNAUTHORIZED && r.headers.get(header::WWW_AUTHENTICATE).is_none() {
        return Err("a 401 without WWW-Authenticate".into());
    }
    // Every authenticated POST reads a JSON body: one nested too deep is
    // refused with 400, unless an approver's role check refuses first (403).
    if let Some(depth) = req.body.nesting()
        && depth > MAX_DEPTH
        && valid_token
        && req.method == Method::POST
        && let Match::Route(template, true) = m
    {
        let approver = matches!(req.auth, Auth::Token(Who::Anna | Who::Eve, _));
        let role_first = approver && template != "/api/v1/tasks/{id}/decision";
        if r.status != StatusCode::BAD_REQUEST && !(role_first && r.status == StatusCode::FORBIDDEN)
        {
            return Err(format!(
                "a body nested {depth} deep answered {}, not 400",
                r.status
            ));
        }
    }
    if matches!(m, Match::Route("/t/{token}", _)) {
        if !r.content_type().starts_with("text/html") {
            return Err(format!(
                "a link page answered `{}`, not HTML",
                r.content_type()
            ));
        }
        if !req.link_valid() && !r.status.is_client_error() {
            return Err(format!("a garbage link answered {}, not 4xx", r.status));
        }
        return Ok(());
    }
    if r.status.is_success() {
        if path.starts_with("/api/v1/") && serde_json::from_slice::<Value>(&r.body).is_err() {
            return Err("a 2xx API answer that is not JSON".into());
        }
        return Ok(());
    }
    error_shape(r).map_err(|why| format!("{} without the error shape: {why}", r.status))
}
