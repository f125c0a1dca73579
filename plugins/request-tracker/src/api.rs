//! The REST2 calls, through the SDK's HTTP client (the host injects the
//! `Authorization: token …` credential of the grant).
//!
//! Errors keep the SDK's mapping (5xx, timeouts and refused connections
//! retryable; 429 with `Retry-After`; 401/403 naming the grant) and add
//! RT's own cases: a 404 names the ticket or queue, a refused status
//! change (RT answers 200 with a message) is a permanent error.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use vakt_plugin_sdk::http::url::encode_component;
use vakt_plugin_sdk::prelude::*;

use crate::config::Config;
use crate::rt::{self, Page, RawAttachment, RawQueue, RawTicket, RawTransaction};

/// One request's timeout (the call's deadline bounds it further).
const TIMEOUT: Duration = Duration::from_secs(20);
/// Items per page of a collection (RT's maximum).
const PER_PAGE: &str = "100";
/// Pages read of one collection, at most (10,000 items).
const MAX_PAGES: u32 = 100;

/// A client for one RT, for one call.
pub struct Rt<'c> {
    config: &'c Config,
    client: Client,
}

impl<'c> Rt<'c> {
    pub fn new(config: &'c Config, ctx: &CallContext) -> Result<Rt<'c>, PluginError> {
        let client = Client::new()
            .base_url(&config.rest_root())?
            .timeout(TIMEOUT)
            .deadline(ctx);
        Ok(Rt { config, client })
    }

    fn missing_ticket(&self, id: &str) -> PluginError {
        PluginError::permanent(format_args!(
            "ticket {id} does not exist in Request Tracker at {} (or the token's user may not \
             see it): check the ticket number the workflow passes",
            self.config.base_url
        ))
    }

    /// `Ok` for 1xx–3xx; `not_found` for a 404; the SDK's error otherwise.
    fn check(
        response: Response,
        not_found: impl FnOnce() -> PluginError,
    ) -> Result<Response, PluginError> {
        if response.status() == 404 {
            return Err(not_found());
        }
        response.error_for_status()
    }

    /// The queue by name or number, with its ticket custom fields.
    pub fn queue(&self, name: &str) -> Result<RawQueue, PluginError> {
        let response = self
            .client
            .get(&format!("queue/{}", encode_component(name)))
            .send()?;
        Self::check(response, || {
            PluginError::permanent(format_args!(
                "queue `{name}` does not exist in Request Tracker at {} (or the token's user \
                 may not see it): fix `queue` in the workflow or the plugin's `queue` setting",
                self.config.base_url
            ))
        })?
        .json()
    }

    /// The oldest ticket an earlier attempt with `key` opened, if any.
    pub fn find_by_key(&self, key: &str) -> Result<Option<String>, PluginError> {
        let query = rt::find_by_key_query(&self.config.idempotency_field, key);
        let page: Page<rt::RawRef> = self
            .client
            .get("tickets")
            .query("query", &query)
            .query("orderby", "id")
            .query("order", "ASC")
            .query("per_page", "1")
            .send()?
            .error_for_status()?
            .json()?;
        Ok(page.items.first().and_then(|t| rt::id_text(&t.id)))
    }

    /// Opens a ticket; returns its number.
    pub fn create(&self, body: &Value) -> Result<String, PluginError> {
        let created: Value = self
            .client
            .post("ticket")
            .json(body)?
            .send()?
            .error_for_status()?
            .json()?;
        created.get("id").and_then(rt::id_text).ok_or_else(|| {
            PluginError::permanent(format_args!(
                "Request Tracker at {} accepted the new ticket but answered without its id: {}",
                self.config.base_url,
                rt::messages(&created).join("; ")
            ))
        })
    }

    pub fn ticket(&self, id: &str) -> Result<RawTicket, PluginError> {
        let response = self.client.get(&format!("ticket/{id}")).send()?;
        Self::check(response, || self.missing_ticket(id))?.json()
    }

    /// Every page of a ticket's collection (`history`, `attachments`).
    fn all<T: DeserializeOwned>(
        &self,
        id: &str,
        what: &str,
        fields: &str,
    ) -> Result<Vec<T>, PluginError> {
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let response = self
                .client
                .get(&format!("ticket/{id}/{what}"))
                .query("fields", fields)
                .query("per_page", PER_PAGE)
                .query("page", &page.to_string())
                .send()?;
            let page: Page<T> = Self::check(response, || self.missing_ticket(id))?.json()?;
            let done = page.next_page.is_none() || page.items.is_empty();
            all.extend(page.items);
            if done {
                return Ok(all);
            }
        }
        vakt_plugin_sdk::warn!("ticket {id}: read the first {MAX_PAGES} pages of its {what} only");
        Ok(all)
    }

    /// The ticket's comments and replies, oldest first.
    pub fn comments(&self, id: &str) -> Result<Vec<String>, PluginError> {
        let history: Vec<RawTransaction> = self.all(id, "history", "Type")?;
        if !history
            .iter()
            .any(|t| t.kind == "Comment" || t.kind == "Correspond")
        {
            return Ok(Vec::new());
        }
        let attachments: Vec<RawAttachment> =
            self.all(id, "attachments", "TransactionId,ContentType,Content")?;
        Ok(rt::comments(&history, &attachments))
    }

    /// A private comment (`/comment`) or a reply to the requestors
    /// (`/correspond`).
    pub fn post_message(&self, id: &str, text: &str, private: bool) -> Result<(), PluginError> {
        let path = if private { "comment" } else { "correspond" };
        let response = self
            .client
            .post(&format!("ticket/{id}/{path}"))
            .json(&json!({"Content": text, "ContentType": "text/plain"}))?
            .send()?;
        if response.status() == 400 {
            // RT answers 400 "Message could not be recorded" for a ticket
            // that does not exist: say which it is.
            self.ticket(id)?;
        }
        Self::check(response, || self.missing_ticket(id))?;
        Ok(())
    }

    /// Sets the status; RT's messages (it answers 200 also when it refused).
    pub fn set_status(&self, id: &str, status: &str) -> Result<Vec<String>, PluginError> {
        let response = self
            .client
            .put(&format!("ticket/{id}"))
            .json(&json!({ "Status": status }))?
            .send()?;
        let body: Value = Self::check(response, || self.missing_ticket(id))?.json()?;
        Ok(rt::messages(&body))
    }
}
