//! The pages behind signed links: `GET /t/{token}` and `POST /t/{token}`.
//!
//! GET decides nothing (mail scanners and link previews open links): it
//! checks the token and the task and shows a confirmation page with the
//! chosen option, an optional (or required) comment and one button. The
//! button POSTs the form to the same address; the POST checks everything
//! again, then delivers [`Event::Decide`] as the link's assignee, with the
//! roles the config gives that address. Only after the engine accepted the
//! decision is the link marked used (`links` namespace of the store): a crash
//! between the two leaves a link whose second use the engine refuses anyway
//! (the person has voted).
//!
//! Every failure is a page with a clear sentence, the right status, and no
//! change: a damaged or forged link 400, an expired or used one 410, an
//! unknown instance or task 404, a closed task or a refused decision 409
//! (with the engine's reason), a missing comment 422 (the form again).
//!
//! Pages are self-contained (inline CSS, no scripts, no external assets),
//! `noindex`, `no-store`, `no-referrer` (the token is in the address), and
//! every value is HTML-escaped.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::Shared;
use super::links::{LinkClaim, LinkError, marker};
use crate::engine::model::rfc3339;
use crate::engine::{Event, Rejection};
use crate::runtime::RuntimeError;

/// The longest comment a page accepts, in characters.
const MAX_COMMENT: usize = 10_000;

/// The signed-link routes.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/t/{token}", get(show).post(decide))
}

/// Why a link page cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Link(LinkError),
    Used,
    NotFound(String),
    Rejected(Rejection),
    BadForm(String),
    Unavailable,
    Internal,
}

impl Failure {
    /// The status, the `result` label of `vakt_link_decisions_total`, and the heading.
    fn kind(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Failure::Link(LinkError::Expired) => (S::GONE, "expired", "This link has expired"),
            Failure::Link(_) => (S::BAD_REQUEST, "invalid", "This link is not valid"),
            Failure::Used => (S::GONE, "used", "This link was already used"),
            Failure::NotFound(_) => (S::NOT_FOUND, "not_found", "Not found"),
            Failure::Rejected(Rejection::CommentRequired) => {
                (S::UNPROCESSABLE_ENTITY, "rejected", "A comment is needed")
            }
            Failure::Rejected(_) => (S::CONFLICT, "rejected", "The decision cannot be made"),
            Failure::BadForm(_) => (S::BAD_REQUEST, "bad_form", "The form could not be read"),
            Failure::Unavailable => (S::SERVICE_UNAVAILABLE, "error", "Try again in a moment"),
            Failure::Internal => (S::INTERNAL_SERVER_ERROR, "error", "Something went wrong"),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.kind().0
    }

    /// The `result` label of `vakt_link_decisions_total`.
    pub fn metric(&self) -> &'static str {
        self.kind().1
    }

    fn message(&self) -> String {
        let why = match self {
            Failure::Link(e) => capital(&e.to_string()),
            Failure::Used => "This link was already used to record a decision; each link works once".into(),
            Failure::NotFound(what) | Failure::BadForm(what) => what.clone(),
            Failure::Rejected(r) => capital(&r.to_string()),
            Failure::Unavailable => "The service is restarting; open the link again in a minute".into(),
            Failure::Internal => "The decision could not be checked or recorded; try again later or tell your IT department".into(),
        };
        format!("{}. Nothing was changed.", why.trim_end_matches('.'))
    }

    /// The failure as a page.
    pub fn page(&self) -> Response {
        let body = format!("<p role=\"alert\">{}</p>", escape(&self.message()));
        page(self.status(), self.kind().2, &body)
    }
}

impl From<RuntimeError> for Failure {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::NotFound(_) => {
                Failure::NotFound("This workflow instance does not exist (any more)".into())
            }
            RuntimeError::Rejected(r) => Failure::Rejected(r),
            RuntimeError::ShuttingDown => Failure::Unavailable,
            other => {
                tracing::error!(error = %other, "signed link: cannot read or decide");
                Failure::Internal
            }
        }
    }
}

/// What a confirmation page shows.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub title: String,
    pub description: String,
    pub workflow: String,
    pub instance: String,
    pub assignee: String,
    pub option: String,
    pub due: Option<i64>,
    pub comment_required: bool,
}

#[derive(Deserialize)]
struct DecisionForm {
    #[serde(default)]
    comment: Option<String>,
}

/// Checks a token and the task it names; reads, never writes.
fn check(s: &Shared, token: &str) -> Result<(LinkClaim, View), Failure> {
    let claim = s
        .links
        .verify(token, s.runtime.now())
        .map_err(Failure::Link)?;
    let store = s.runtime.store();
    match store.service_get("links", &marker(token)) {
        Ok(None) => {}
        Ok(Some(_)) => return Err(Failure::Used),
        Err(e) => return Err(RuntimeError::from(e).into()),
    }
    let instance = s
        .runtime
        .instance(&claim.instance)?
        .ok_or_else(|| RuntimeError::NotFound(claim.instance.clone()))?;
    let plan = s.runtime.plan_for(&instance.hash)?;
    let task = instance
        .tasks
        .get(&claim.task)
        .ok_or_else(|| Failure::NotFound("This task does not exist".into()))?;
    let roles = s.config.roles_of(&claim.assignee);
    let (a, opt) = crate::engine::check_decision(
        &plan,
        &instance,
        claim.task,
        &claim.assignee,
        &roles,
        &claim.option,
    )
    .map_err(Failure::Rejected)?;
    let view = View {
        title: task.title.clone(),
        description: task.description.clone(),
        workflow: plan.title.clone(),
        instance: instance.id.clone(),
        assignee: claim.assignee.clone(),
        option: opt.label.clone(),
        due: task.due,
        comment_required: a.require_comment || opt.require_comment,
    };
    Ok((claim, view))
}

async fn show(State(s): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    match check(&s, &token) {
        Ok((_, view)) => page(
            StatusCode::OK,
            "Confirm your decision",
            &confirm(&view, None),
        ),
        Err(f) => f.page(),
    }
}

async fn decide(
    State(s): State<Arc<Shared>>,
    Path(token): Path<String>,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Response {
    let result = decide_inner(&s, &token, form).await;
    s.metrics.describe(
        "vakt_link_decisions_total",
        "counter",
        "Decisions posted through signed links, by result.",
    );
    let label = match &result {
        Ok(_) => "decided",
        Err((f, _)) => f.metric(),
    };
    s.metrics
        .inc("vakt_link_decisions_total", &[("result", label)]);
    match result {
        Ok(view) => {
            let body = format!(
                "<p role=\"status\">Your decision <strong>{}</strong> on <strong>{}</strong> was recorded. You can close this page.</p>",
                escape(&view.option),
                escape(&view.title)
            );
            page(StatusCode::OK, "Decision recorded", &body)
        }
        // A missing comment: the form again, with the reason.
        Err((f @ Failure::Rejected(Rejection::CommentRequired), Some(view))) => page(
            f.status(),
            "Confirm your decision",
            &confirm(&view, Some(&f.message())),
        ),
        Err((f, _)) => f.page(),
    }
}

async fn decide_inner(
    s: &Shared,
    token: &str,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Result<View, (Failure, Option<View>)> {
    let (claim, view) = check(s, token).map_err(|f| (f, None))?;
    let form = match form {
        Ok(Form(f)) => f,
        // A bare POST (`curl -X POST <link>`, a mail client's button) has no
        // form at all: it decides without a comment.
        Err(FormRejection::InvalidFormContentType(_)) => DecisionForm { comment: None },
        Err(e) => {
            return Err((
                Failure::BadForm(format!("The form was not sent as a web form ({e})")),
                None,
            ));
        }
    };
    let comment = form.comment.filter(|c| !c.trim().is_empty());
    if comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT)
    {
        return Err((
            Failure::BadForm(format!(
                "The comment is longer than {MAX_COMMENT} characters."
            )),
            None,
        ));
    }
    if view.comment_required && comment.is_none() {
        return Err((Failure::Rejected(Rejection::CommentRequired), Some(view)));
    }
    let event = Event::Decide {
        task: claim.task,
        by: claim.assignee.clone(),
        roles: s.config.roles_of(&claim.assignee),
        option: claim.option.clone(),
        comment,
    };
    if let Err(e) = s.runtime.event(&claim.instance, event).await {
        let f = Failure::from(e);
        let keep = matches!(f, Failure::Rejected(Rejection::CommentRequired)).then_some(view);
        return Err((f, keep));
    }
    let value = serde_json::json!({
        "instance": claim.instance,
        "task": claim.task,
        "expires": claim.expires,
        "used_at": s.runtime.now(),
    });
    if let Err(e) = s
        .runtime
        .store()
        .service_claim("links", &marker(token), value.to_string().as_bytes())
        .await
    {
        // The decision is recorded; a second use is refused by the engine.
        tracing::error!(instance = %claim.instance, task = claim.task, error = %e, "cannot mark a used link");
    }
    tracing::info!(instance = %claim.instance, task = claim.task, option = %claim.option, "decision through a signed link");
    Ok(view)
}

/// The confirmation form.
pub fn confirm(view: &View, error: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(e) = error {
        out.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape(e)
        ));
    }
    out.push_str(&format!(
        "<p>You are about to decide <strong>{}</strong> on:</p>\n<h2>{}</h2>\n",
        escape(&view.option),
        escape(&view.title)
    ));
    if !view.description.trim().is_empty() {
        out.push_str(&format!(
            "<p class=\"desc\">{}</p>\n",
            escape(&view.description)
        ));
    }
    out.push_str("<dl>\n");
    let mut row = |k: &str, v: &str| out.push_str(&format!("<dt>{k}</dt><dd>{}</dd>\n", escape(v)));
    row("Workflow", &view.workflow);
    row("Instance", &view.instance);
    row("Deciding as", &view.assignee);
    if let Some(due) = view.due {
        row("Due", &format!("{} (UTC)", rfc3339(due)));
    }
    out.push_str("</dl>\n<form method=\"post\">\n");
    let (label, req) = if view.comment_required {
        ("Comment (required)", " required aria-required=\"true\"")
    } else {
        ("Comment (optional)", "")
    };
    out.push_str(&format!(
        "<label for=\"comment\">{label}</label>\n<textarea id=\"comment\" name=\"comment\" rows=\"4\" maxlength=\"{MAX_COMMENT}\"{req}></textarea>\n\
         <button type=\"submit\">Confirm: {}</button>\n</form>\n\
         <p class=\"note\">Nothing has been decided yet. Your decision is recorded only when you press the button.</p>\n",
        escape(&view.option)
    ));
    out
}

/// A whole page, with the headers every link page carries.
pub fn page(status: StatusCode, heading: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n\
         <title>{h} · vakt</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <h1>{h}</h1>\n{body}</main>\n</body>\n</html>\n",
        h = escape(heading),
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    let mut set = |k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(header::CACHE_CONTROL, "no-store");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(
        header::HeaderName::from_static("x-robots-tag"),
        "noindex, nofollow",
    );
    r
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;line-height:1.5;\
color:#1a1a1a;background:#f6f6f4;margin:0}main{max-width:40rem;margin:2rem auto;padding:1.5rem;\
background:#fff;border:1px solid #ddd;border-radius:6px}h1{font-size:1.4rem;margin-top:0}\
h2{font-size:1.15rem}.desc{white-space:pre-wrap}dl{display:grid;grid-template-columns:auto 1fr;\
gap:.25rem 1rem}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}label{display:block;\
font-weight:600;margin-top:1rem}textarea{width:100%;box-sizing:border-box;font:inherit;\
padding:.5rem}button{margin-top:1rem;font:inherit;font-weight:600;padding:.6rem 1.2rem;\
background:#0b5394;color:#fff;border:0;border-radius:4px;cursor:pointer}\
button:focus-visible,textarea:focus-visible{outline:3px solid #f4b400;outline-offset:2px}\
.error{color:#a00000;font-weight:600}.note{color:#444;font-size:.95rem}";

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
