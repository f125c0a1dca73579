//! vakt's `ticketing` connector for Redmine, over its REST API
//! (`/issues.json`, `/issues/<id>.json?include=journals`,
//! `/issue_statuses.json`, `/enumerations/issue_priorities.json`,
//! `/custom_fields.json`).
//!
//! The daemon injects the API key: grant the origin with
//! `credential = { kind = "api_key", header = "X-Redmine-API-Key", value = "env:…" }`
//! (Redmine's REST API must be enabled in Administration → Settings → API).
//!
//! Settings:
//! - `base_url` (required): `https://redmine.kommun.se` or a sub-URI;
//! - `project`: the project identifier for tickets without a `queue`;
//! - `idempotency_field` (default `vakt-key`): the issue custom field that
//!   holds vakt's idempotency key. Make it a text field, "used as a filter",
//!   for all projects. Without it (or when the API user is not an
//!   administrator and cannot confirm it is a filter), the key is kept as a
//!   line `vakt-key: <key>` at the end of the description and found by a
//!   description search instead (see [`create`]);
//! - `closed_status` (default `Closed`): the status `close` sets;
//! - `priorities`: maps vakt's priority words to Redmine priority names or
//!   ids, `low=Low, normal=Normal, high=High, urgent=Immediate`; without it
//!   the word is looked up by name in Redmine's priorities;
//! - `tracker`: a tracker name for new issues (default: the project's first);
//! - `requester_field`: a custom field for the requester (default: a
//!   `Requester:` line in the description; Redmine's author is the API user);
//! - `resolution_field`: a custom field `close` sets to the resolution
//!   (default: a `Resolution:` line in the closing note).
//!
//! A ticket is the issue's id, `{base_url}/issues/{id}`, subject, status
//! name and its journal notes (comments), oldest first. An assignee is
//! looked up by login or e-mail address (administrators only); one that
//! does not exist or cannot be assigned is named in the description instead
//! of failing the call.
//!
//! Errors: see [`errors`]. Retried calls (attempt > 1) do not repeat a note
//! or a status change that the earlier attempt already made.

pub mod api;
pub mod create;
pub mod errors;
pub mod model;

use serde_json::{Map, Value, json};
use vakt_plugin_sdk::prelude::*;
use vakt_plugin_sdk::settings;
use vakt_plugin_sdk::ticketing::{NewTicket, Ticket};

use crate::api::Api;
use crate::model::{Issue, by_name, issue_number, names, to_ticket};

pub struct Redmine;

impl Plugin for Redmine {
    fn new() -> Self {
        Redmine
    }

    fn manifest() -> Manifest {
        Manifest::builder("redmine", env!("CARGO_PKG_VERSION"))
            .http()
            .setting("base_url")
            .setting("project")
            .setting("idempotency_field")
            .setting("closed_status")
            .setting("priorities")
            .setting("tracker")
            .setting("requester_field")
            .setting("resolution_field")
            .build()
    }
}

impl TicketingPlugin for Redmine {
    fn create(&mut self, ctx: &CallContext, ticket: NewTicket) -> Result<Ticket, PluginError> {
        create::create(ctx, ticket)
    }

    fn comment(
        &mut self,
        ctx: &CallContext,
        id: String,
        body: String,
        private: bool,
    ) -> Result<Ticket, PluginError> {
        let n = issue_number(&id)?;
        if body.trim().is_empty() {
            return Err(PluginError::permanent("the comment is empty"));
        }
        let api = Api::new(ctx)?;
        if ctx.attempt > 1 {
            let issue = api.issue(n)?;
            if has_note(&issue, &body) {
                return Ok(to_ticket(&issue, &api.base));
            }
        }
        api.update_issue(
            n,
            &json!({"issue": {"notes": body, "private_notes": private}}),
        )?;
        Ok(to_ticket(&api.issue(n)?, &api.base))
    }

    fn update_status(
        &mut self,
        ctx: &CallContext,
        id: String,
        status: String,
        comment: Option<String>,
    ) -> Result<Ticket, PluginError> {
        let n = issue_number(&id)?;
        let api = Api::new(ctx)?;
        transition(ctx, &api, n, &status, comment, Vec::new())
    }

    fn get(&mut self, ctx: &CallContext, id: String) -> Result<Ticket, PluginError> {
        let n = issue_number(&id)?;
        let api = Api::new(ctx)?;
        Ok(to_ticket(&api.issue(n)?, &api.base))
    }

    fn close(
        &mut self,
        ctx: &CallContext,
        id: String,
        comment: Option<String>,
        resolution: Option<String>,
    ) -> Result<Ticket, PluginError> {
        let n = issue_number(&id)?;
        let api = Api::new(ctx)?;
        let status = settings::get("closed_status").unwrap_or_else(|| "Closed".into());
        let resolution = resolution.filter(|r| !r.trim().is_empty());
        let mut custom = Vec::new();
        let mut note = comment.filter(|c| !c.trim().is_empty());
        if let Some(r) = resolution {
            let field = match settings::get("resolution_field") {
                Some(name) => resolution_field(&api, n, &name)?,
                None => None,
            };
            match field {
                Some(id) => custom.push(json!({"id": id, "value": r})),
                None => {
                    let line = format!("Resolution: {r}");
                    note = Some(match note {
                        Some(c) => format!("{}\n\n{line}", c.trim_end()),
                        None => line,
                    });
                }
            }
        }
        transition(ctx, &api, n, &status, note, custom)
    }
}

vakt_plugin_sdk::export_ticketing!(Redmine);

/// Moves issue `n` to the status named `status` (or with that id), with a
/// note and custom field values, and checks that Redmine did: a workflow
/// that does not allow the transition makes Redmine drop the status
/// silently.
fn transition(
    ctx: &CallContext,
    api: &Api,
    n: u64,
    status: &str,
    note: Option<String>,
    custom: Vec<Value>,
) -> Result<Ticket, PluginError> {
    let statuses = api.statuses()?;
    let target = status
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|id| statuses.iter().find(|s| s.id == id))
        .or_else(|| by_name(&statuses, status))
        .ok_or_else(|| {
            PluginError::permanent(format_args!(
                "Redmine has no issue status `{status}` (it has: {})",
                names(&statuses)
            ))
        })?
        .clone();
    let note = note.filter(|c| !c.trim().is_empty());
    let before = api.issue(n)?;
    let done = |i: &Issue| {
        i.status.id == target.id
            && match &note {
                None => true,
                // A retry, or the same call again: the note is there.
                Some(c) => ctx.attempt > 1 && has_note(i, c),
            }
    };
    if done(&before) && custom.is_empty() {
        return Ok(to_ticket(&before, &api.base));
    }
    let mut issue = Map::new();
    issue.insert("status_id".into(), json!(target.id));
    if let Some(c) = &note {
        issue.insert("notes".into(), json!(c));
    }
    if !custom.is_empty() {
        issue.insert("custom_fields".into(), Value::Array(custom));
    }
    api.update_issue(n, &json!({ "issue": issue }))?;
    let after = api.issue(n)?;
    if after.status.id != target.id {
        return Err(PluginError::permanent(format_args!(
            "Redmine kept issue #{n} in status `{}` instead of `{}`: the workflow of the \
             API user's role does not allow that transition for this tracker \
             (Administration → Workflow)",
            after.status.name, target.name
        )));
    }
    Ok(to_ticket(&after, &api.base))
}

/// Whether a journal entry of `issue` already has the note `text`.
fn has_note(issue: &Issue, text: &str) -> bool {
    let want = text.replace("\r\n", "\n");
    let want = want.trim();
    issue.journals.iter().any(|j| {
        j.notes
            .as_deref()
            .is_some_and(|n| n.replace("\r\n", "\n").trim() == want)
    })
}

/// The id of the custom field `name` for issue `n`, from the issue itself
/// (so it works for API users who may not list custom fields).
fn resolution_field(api: &Api, n: u64, name: &str) -> Result<Option<u64>, PluginError> {
    let issue = api.issue(n)?;
    let id = issue
        .custom_fields
        .iter()
        .find(|c| c.name.trim().eq_ignore_ascii_case(name.trim()))
        .map(|c| c.id);
    if id.is_none() {
        vakt_plugin_sdk::warn!(
            "issue #{n} has no custom field `{name}` (setting `resolution_field`): \
             the resolution goes into the closing note"
        );
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_asks_for_http_and_the_settings() {
        let m = Redmine::manifest();
        assert_eq!(m.name, "redmine");
        assert!(m.http && !m.smtp && m.secrets.is_empty());
        for s in ["base_url", "project", "idempotency_field", "closed_status"] {
            assert!(m.settings.iter().any(|x| x == s), "{s}");
        }
    }

    #[test]
    fn notes_compare_across_line_endings() {
        let issue: Issue = serde_json::from_str(
            r#"{"id":1,"status":{"id":1,"name":"New"},
                "journals":[{"id":1,"notes":"Hej\r\nigen "},{"id":2,"notes":null}]}"#,
        )
        .unwrap();
        assert!(has_note(&issue, "Hej\nigen"));
        assert!(!has_note(&issue, "Hej"));
    }
}
