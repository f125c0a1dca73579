//! vakt's `ticketing` connector for Request Tracker 5, over its REST2 API
//! (`{base_url}/REST/2.0`).
//!
//! **Grant.** The plugin never sees the token: the host adds it to every
//! request to the granted origin. RT wants `Authorization: token <TOKEN>`
//! (an auth token made under a user's *Settings → Auth Tokens*): a bearer
//! credential with the scheme `token`:
//!
//! ```toml
//! [[plugins.rt.http]]
//! origin = "https://rt.kommun.se"
//! credential = { kind = "bearer", scheme = "token", token = "env:RT_TOKEN" }
//! ```
//!
//! **Settings**: see [`config`] (`base_url` required; `queue`,
//! `idempotency_field`, `priority_map`).
//!
//! **Operations.**
//! - `create`: `Queue` from the step's `queue` or the `queue` setting,
//!   `Subject`, `Content` (the body, plain text), `Priority` (a number, or a
//!   name from `priority_map`), `Requestor`, `Owner` (the assignee), and the
//!   step's `fields` as custom fields (each must be applied to the queue:
//!   RT would drop an unknown one silently, so the plugin refuses it).
//! - `comment`: a private comment (`/comment`) or, with `private: false`, a
//!   reply to the requestors (`/correspond`).
//! - `update-status`: `Status` (RT's lifecycle names, such as `open`,
//!   `stalled`, `resolved`); a status RT refuses is a permanent error; an
//!   optional comment is added as a private comment after the change.
//! - `close`: status `resolved`, then the comment and the resolution (as
//!   `Resolution: …`) as one private comment.
//! - `get`, and the answer of every operation: id, web URL, subject,
//!   status, and the texts of its comments and replies, oldest first.
//!
//! **Idempotent create.** Before creating, the plugin searches with
//! TicketSQL for a ticket whose custom field `idempotency_field` (default
//! `vakt-key`) holds the call's idempotency key and returns it if found.
//! Otherwise it creates the ticket with the key in that field. When the
//! queue does not have that custom field, the plugin instead appends a tag
//! `[vakt:<first 12 hex digits of the key's SHA-256>]` to the subject, and
//! the same search finds the tag (`CF.{vakt-key} = '…' OR Subject LIKE
//! '[vakt:…]'`). Create the ticket custom field (`Freeform`, one value) and
//! apply it to the queues vakt opens tickets in to keep subjects clean.
//!
//! **Errors.** Refused connections, timeouts and 5xx are retryable; 429
//! carries `Retry-After`; 401/403 are permanent and name the grant to fix;
//! a missing ticket or queue is permanent and named; an answer that is not
//! the JSON expected is a permanent error quoting its start.

pub mod api;
pub mod config;
pub mod rt;

use vakt_plugin_sdk::prelude::*;
use vakt_plugin_sdk::settings;
use vakt_plugin_sdk::ticketing::{NewTicket, Ticket};

use crate::api::Rt;
use crate::config::{Config, SETTINGS};
use crate::rt::RawTicket;

pub struct RequestTracker;

impl Plugin for RequestTracker {
    fn new() -> Self {
        RequestTracker
    }

    fn manifest() -> Manifest {
        SETTINGS
            .iter()
            .fold(
                Manifest::builder("request-tracker", env!("CARGO_PKG_VERSION")).http(),
                |m, s| m.setting(*s),
            )
            .build()
    }
}

fn config() -> Result<Config, PluginError> {
    Config::from_settings(settings::get)
}

/// The ticket as the connector answers it, comments read from RT; `raw`
/// when the ticket was just read.
fn full_ticket(
    rt: &Rt<'_>,
    config: &Config,
    id: &str,
    raw: Option<RawTicket>,
) -> Result<Ticket, PluginError> {
    let raw = match raw {
        Some(raw) => raw,
        None => rt.ticket(id)?,
    };
    let comments = rt.comments(id)?;
    Ok(Ticket {
        id: id.to_owned(),
        url: Some(config.ticket_url(id)),
        subject: raw.subject,
        status: raw.status,
        comments,
    })
}

/// Sets the status and checks that RT took it (it answers 200 with a
/// message when it refuses one); returns the ticket as it is now.
fn set_status(rt: &Rt<'_>, id: &str, status: &str) -> Result<RawTicket, PluginError> {
    let status = status.trim();
    if status.is_empty() {
        return Err(PluginError::permanent("the status to set is empty"));
    }
    let messages = rt.set_status(id, status)?;
    let now = rt.ticket(id)?;
    if now.status.eq_ignore_ascii_case(status) {
        return Ok(now);
    }
    Err(PluginError::permanent(format_args!(
        "Request Tracker did not set ticket {id} to `{status}` (it is `{}`): {}",
        now.status,
        if messages.is_empty() {
            "no reason given".to_owned()
        } else {
            messages.join("; ")
        }
    )))
}

impl TicketingPlugin for RequestTracker {
    fn create(&mut self, ctx: &CallContext, ticket: NewTicket) -> Result<Ticket, PluginError> {
        let config = config()?;
        // A bad priority fails before any request.
        config.priority(ticket.priority.as_deref())?;
        let rt = Rt::new(&config, ctx)?;
        let key = ctx.idempotency_key.trim();
        if key.is_empty() {
            return Err(PluginError::permanent(
                "the call has no idempotency key; the daemon always sends one",
            ));
        }
        if let Some(id) = rt.find_by_key(key)? {
            vakt_plugin_sdk::info!("ticket {id} was opened by an earlier attempt; returning it");
            return full_ticket(&rt, &config, &id, None);
        }
        let queue_name = ticket
            .queue
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .unwrap_or(&config.queue)
            .to_owned();
        let queue = rt.queue(&queue_name)?;
        let fields: Vec<String> = queue
            .ticket_custom_fields
            .iter()
            .filter_map(|f| f.name.clone())
            .collect();
        let with_field = fields.contains(&config.idempotency_field);
        if !with_field {
            vakt_plugin_sdk::warn!(
                "queue `{}` has no ticket custom field `{}`: the idempotency key goes into \
                 the subject as {}",
                queue.name,
                config.idempotency_field,
                rt::key_tag(key)
            );
        }
        let body = rt::create_body(&config, &ticket, &queue_name, key, with_field, &fields)?;
        let id = rt.create(&body)?;
        vakt_plugin_sdk::info!("opened ticket {id} in queue `{queue_name}`");
        let raw = rt.ticket(&id)?;
        if let Some(wanted) = ticket
            .assignee
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            && raw.owner().is_none_or(|o| o == "Nobody")
        {
            vakt_plugin_sdk::warn!(
                "ticket {id}: Request Tracker did not make `{wanted}` its owner (no such user, \
                 or not allowed to own tickets in queue `{queue_name}`)"
            );
        }
        Ok(Ticket {
            url: Some(config.ticket_url(&id)),
            id,
            subject: raw.subject,
            status: raw.status,
            comments: Vec::new(),
        })
    }

    fn comment(
        &mut self,
        ctx: &CallContext,
        id: String,
        body: String,
        private: bool,
    ) -> Result<Ticket, PluginError> {
        let config = config()?;
        let id = rt::ticket_id(&id)?;
        let rt = Rt::new(&config, ctx)?;
        rt.post_message(&id, &body, private)?;
        full_ticket(&rt, &config, &id, None)
    }

    fn update_status(
        &mut self,
        ctx: &CallContext,
        id: String,
        status: String,
        comment: Option<String>,
    ) -> Result<Ticket, PluginError> {
        let config = config()?;
        let id = rt::ticket_id(&id)?;
        let rt = Rt::new(&config, ctx)?;
        let now = set_status(&rt, &id, &status)?;
        if let Some(text) = comment.filter(|c| !c.trim().is_empty()) {
            rt.post_message(&id, &text, true)?;
        }
        full_ticket(&rt, &config, &id, Some(now))
    }

    fn get(&mut self, ctx: &CallContext, id: String) -> Result<Ticket, PluginError> {
        let config = config()?;
        let id = rt::ticket_id(&id)?;
        let rt = Rt::new(&config, ctx)?;
        full_ticket(&rt, &config, &id, None)
    }

    fn close(
        &mut self,
        ctx: &CallContext,
        id: String,
        comment: Option<String>,
        resolution: Option<String>,
    ) -> Result<Ticket, PluginError> {
        let config = config()?;
        let id = rt::ticket_id(&id)?;
        let rt = Rt::new(&config, ctx)?;
        let now = set_status(&rt, &id, "resolved")?;
        if let Some(text) = closing_text(comment.as_deref(), resolution.as_deref()) {
            rt.post_message(&id, &text, true)?;
        }
        full_ticket(&rt, &config, &id, Some(now))
    }
}

/// The private comment `close` adds: the comment, then `Resolution: …`.
pub fn closing_text(comment: Option<&str>, resolution: Option<&str>) -> Option<String> {
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    let resolution = resolution.map(str::trim).filter(|r| !r.is_empty());
    match (comment, resolution) {
        (Some(c), Some(r)) => Some(format!("{c}\n\nResolution: {r}")),
        (Some(c), None) => Some(c.to_owned()),
        (None, Some(r)) => Some(format!("Resolution: {r}")),
        (None, None) => None,
    }
}

vakt_plugin_sdk::export_ticketing!(RequestTracker);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_asks_for_http_and_the_settings() {
        let m = RequestTracker::manifest();
        assert_eq!(m.name, "request-tracker");
        assert!(m.http);
        assert!(!m.smtp);
        assert!(m.secrets.is_empty());
        assert_eq!(m.settings, SETTINGS);
    }

    #[test]
    fn closing_texts() {
        assert_eq!(closing_text(None, None), None);
        assert_eq!(closing_text(Some(" "), Some("")), None);
        assert_eq!(closing_text(Some("Done."), None).unwrap(), "Done.");
        assert_eq!(
            closing_text(None, Some("fixed")).unwrap(),
            "Resolution: fixed"
        );
        assert_eq!(
            closing_text(Some("Done."), Some("fixed")).unwrap(),
            "Done.\n\nResolution: fixed"
        );
    }
}
