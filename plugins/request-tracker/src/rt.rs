//! RT 5 REST2 in plain Rust: the JSON it answers with (read leniently: ids
//! come as text or numbers), the JSON we send, TicketSQL quoting, and the
//! idempotency tag. No host calls, so everything here is unit-tested
//! natively.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use vakt_plugin_sdk::PluginError;
use vakt_plugin_sdk::ticketing::NewTicket;

use crate::config::Config;

/// A ticket number from a workflow: `42`, `#42` or `RT-42` (any case).
/// Anything else is refused before it could reach a URL.
pub fn ticket_id(id: &str) -> Result<String, PluginError> {
    let t = id.trim();
    let t = t.strip_prefix('#').unwrap_or(t);
    let t = if t.len() > 3 && t[..3].eq_ignore_ascii_case("rt-") {
        &t[3..]
    } else {
        t
    };
    if !t.is_empty() && t.len() <= 18 && t.bytes().all(|b| b.is_ascii_digit()) {
        let n = t.trim_start_matches('0');
        Ok(if n.is_empty() { "0" } else { n }.to_owned())
    } else {
        Err(PluginError::permanent(format_args!(
            "`{id}` is not a Request Tracker ticket number (expected digits, such as 42)"
        )))
    }
}

/// `text` as a single-quoted TicketSQL string (RT unescapes `\x` to `x`).
pub fn tsql_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The tag appended to the subject when the queue lacks the idempotency
/// custom field: `[vakt:` and the first 12 hex digits of the key's SHA-256.
pub fn key_tag(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("[vakt:{hex}]")
}

/// The TicketSQL that finds the ticket an earlier attempt opened: by the
/// custom field, or by the subject tag (a query naming a custom field that
/// does not exist simply matches nothing, so one query covers both ways).
pub fn find_by_key_query(field: &str, key: &str) -> String {
    format!(
        "CF.{{{field}}} = {} OR Subject LIKE {}",
        tsql_quote(key),
        tsql_quote(&key_tag(key))
    )
}

/// The body of `POST /ticket`. `with_field` says whether the queue has the
/// idempotency custom field; without it the subject carries the key's tag.
/// `queue_fields` are the names of the queue's ticket custom fields: a
/// `fields` entry naming another is refused (RT would drop it silently).
pub fn create_body(
    config: &Config,
    ticket: &NewTicket,
    queue: &str,
    key: &str,
    with_field: bool,
    queue_fields: &[String],
) -> Result<Value, PluginError> {
    let mut custom = Map::new();
    let mut unknown = Vec::new();
    for (name, value) in &ticket.fields {
        if name == &config.idempotency_field {
            continue;
        }
        if queue_fields.iter().any(|f| f == name) {
            custom.insert(name.clone(), Value::String(value.clone()));
        } else {
            unknown.push(name.as_str());
        }
    }
    if !unknown.is_empty() {
        let have = if queue_fields.is_empty() {
            "none".to_owned()
        } else {
            queue_fields.join(", ")
        };
        return Err(PluginError::permanent(format_args!(
            "the custom field(s) {} are not applied to RT queue `{queue}` (it has: {have}); \
             fix `fields` in the workflow or apply the fields to the queue in RT",
            unknown
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let subject = if with_field {
        custom.insert(
            config.idempotency_field.clone(),
            Value::String(key.to_owned()),
        );
        ticket.subject.clone()
    } else {
        format!("{} {}", ticket.subject.trim_end(), key_tag(key))
    };

    let mut body = json!({
        "Queue": queue,
        "Subject": subject,
        "Content": ticket.body,
        "ContentType": "text/plain",
    });
    let obj = body.as_object_mut().expect("an object");
    if let Some(p) = config.priority(ticket.priority.as_deref())? {
        obj.insert("Priority".into(), json!(p));
    }
    if let Some(r) = non_empty(&ticket.requester) {
        obj.insert("Requestor".into(), json!(r));
    }
    if let Some(a) = non_empty(&ticket.assignee) {
        obj.insert("Owner".into(), json!(a));
    }
    if !custom.is_empty() {
        obj.insert("CustomFields".into(), Value::Object(custom));
    }
    Ok(body)
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// An id as RT writes it: `"7"` or `7`.
pub fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `GET /ticket/{id}`, the parts we read.
#[derive(Debug, Deserialize)]
pub struct RawTicket {
    #[serde(default)]
    pub id: Value,
    #[serde(rename = "Subject", default)]
    pub subject: String,
    #[serde(rename = "Status", default)]
    pub status: String,
    /// `{"id": "root", "type": "user", …}`.
    #[serde(rename = "Owner", default)]
    pub owner: Value,
}

impl RawTicket {
    /// The owner's user name, if RT said.
    pub fn owner(&self) -> Option<&str> {
        self.owner.get("id").and_then(Value::as_str)
    }
}

/// `GET /queue/{name}`, the parts we read.
#[derive(Debug, Deserialize)]
pub struct RawQueue {
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "TicketCustomFields", default)]
    pub ticket_custom_fields: Vec<RawRef>,
}

/// A reference to another record (`{id, type, _url, name?}`).
#[derive(Debug, Deserialize)]
pub struct RawRef {
    #[serde(default)]
    pub id: Value,
    #[serde(default)]
    pub name: Option<String>,
}

/// One page of a collection (`/tickets`, `/ticket/{id}/history`, …).
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    /// Present when there is a next page.
    #[serde(default)]
    pub next_page: Option<String>,
}

/// A transaction of a ticket's history.
#[derive(Debug, Deserialize)]
pub struct RawTransaction {
    #[serde(default)]
    pub id: Value,
    #[serde(rename = "Type", default)]
    pub kind: String,
}

/// An attachment (a MIME part of a transaction), with its content as text.
#[derive(Debug, Deserialize)]
pub struct RawAttachment {
    #[serde(rename = "TransactionId", default)]
    pub transaction: Value,
    #[serde(rename = "ContentType", default)]
    pub content_type: String,
    #[serde(rename = "Content", default)]
    pub content: Value,
}

/// The texts of the ticket's comments and replies, oldest first: for each
/// `Comment` or `Correspond` transaction its first `text/plain` part, or
/// its first `text/html` part if it has no plain one.
pub fn comments(history: &[RawTransaction], attachments: &[RawAttachment]) -> Vec<String> {
    let mut out = Vec::new();
    for txn in history {
        if txn.kind != "Comment" && txn.kind != "Correspond" {
            continue;
        }
        let Some(id) = id_text(&txn.id) else { continue };
        let parts: Vec<&RawAttachment> = attachments
            .iter()
            .filter(|a| id_text(&a.transaction).as_deref() == Some(id.as_str()))
            .collect();
        let text_of = |mime: &str| {
            parts.iter().find_map(|a| {
                let ct = a.content_type.to_ascii_lowercase();
                match &a.content {
                    Value::String(s) if ct.starts_with(mime) && !s.trim().is_empty() => {
                        Some(s.trim_end().to_owned())
                    }
                    _ => None,
                }
            })
        };
        if let Some(text) = text_of("text/plain").or_else(|| text_of("text/html")) {
            out.push(text);
        }
    }
    out
}

/// RT answers a `PUT` with a list of messages, also when a change was
/// refused (`Status 'x' isn't a valid status for this ticket.`).
pub fn messages(body: &Value) -> Vec<String> {
    match body {
        Value::Array(items) => items
            .iter()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect(),
        Value::Object(o) => o
            .get("message")
            .and_then(Value::as_str)
            .map(|m| vec![m.to_owned()])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
#[path = "rt_tests.rs"]
mod tests;
