//! JSON arguments (as workflows write them, see `workflow/connectors.rs`) to
//! typed WIT values, and typed results back to the JSON outputs workflows
//! read (`docs/workflow-language.md` §11).
//!
//! Lenient where a template may have produced another JSON type: a number
//! where a string is expected becomes its text (`ticket: 42`), a single
//! address where a list is expected becomes a list of one.

use serde_json::{Map, Value, json};

use super::bindings::{identity as id, mail, ticketing as tk};

type Args = Map<String, Value>;

/// A missing or mistyped argument: the workflow is wrong, retrying won't help.
pub type ArgError = String;

pub fn text(args: &Args, name: &str) -> Result<String, ArgError> {
    opt_text(args, name)?.ok_or_else(|| format!("argument `{name}` is required"))
}

pub fn opt_text(args: &Args, name: &str) -> Result<Option<String>, ArgError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(format!(
            "argument `{name}` must be text, not {}",
            kind(other)
        )),
    }
}

pub fn list(args: &Args, name: &str) -> Result<Vec<String>, ArgError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(format!(
                    "argument `{name}` must be a list of text, but holds {}",
                    kind(other)
                )),
            })
            .collect(),
        Some(other) => Err(format!(
            "argument `{name}` must be a list, not {}",
            kind(other)
        )),
    }
}

pub fn flag(args: &Args, name: &str, default: bool) -> Result<bool, ArgError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" => Ok(true),
        Some(Value::String(s)) if s == "false" => Ok(false),
        Some(other) => Err(format!(
            "argument `{name}` must be true or false, not {}",
            kind(other)
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

// ---- mail ----

pub fn message(args: &Args) -> Result<mail::exports::vakt::plugin::mail::Message, ArgError> {
    let to = list(args, "to")?;
    if to.is_empty() {
        return Err("argument `to` needs at least one address".into());
    }
    Ok(mail::exports::vakt::plugin::mail::Message {
        to,
        cc: list(args, "cc")?,
        bcc: list(args, "bcc")?,
        reply_to: opt_text(args, "reply_to")?,
        from_name: opt_text(args, "from_name")?,
        subject: text(args, "subject")?,
        text: text(args, "body")?,
        html: opt_text(args, "html")?,
    })
}

pub fn sent(s: mail::exports::vakt::plugin::mail::Sent) -> Value {
    json!({ "message_id": s.message_id, "response": s.response })
}

// ---- ticketing ----

pub fn new_ticket(
    args: &Args,
) -> Result<tk::exports::vakt::plugin::ticketing::NewTicket, ArgError> {
    let fields = match args.get("fields") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
        Some(other) => {
            return Err(format!(
                "argument `fields` must be a map, not {}",
                kind(other)
            ));
        }
    };
    Ok(tk::exports::vakt::plugin::ticketing::NewTicket {
        subject: text(args, "subject")?,
        body: text(args, "body")?,
        queue: opt_text(args, "queue")?,
        priority: opt_text(args, "priority")?,
        requester: opt_text(args, "requester")?,
        assignee: opt_text(args, "assignee")?,
        fields,
    })
}

pub fn ticket(t: tk::exports::vakt::plugin::ticketing::Ticket) -> Value {
    json!({
        "id": t.id,
        "url": t.url,
        "subject": t.subject,
        "status": t.status,
        "comments": t.comments,
    })
}

// ---- identity ----

pub fn user(u: &id::exports::vakt::plugin::identity::User) -> Value {
    json!({
        "id": u.id,
        "user_name": u.user_name,
        "email": u.email,
        "display_name": u.display_name,
        "manager": u.manager,
        "active": u.active,
    })
}

pub fn group(g: &id::exports::vakt::plugin::identity::Group) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "members": g.members.iter().map(user).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Args {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn lenient_arguments() {
        let a = args(json!({"to": "a@x.se", "ticket": 42, "private": "true", "cc": ["b@x.se"]}));
        assert_eq!(list(&a, "to").unwrap(), vec!["a@x.se"]);
        assert_eq!(text(&a, "ticket").unwrap(), "42");
        assert!(flag(&a, "private", false).unwrap());
        assert_eq!(list(&a, "cc").unwrap(), vec!["b@x.se"]);
        assert!(list(&a, "bcc").unwrap().is_empty());
        assert_eq!(
            text(&a, "subject").unwrap_err(),
            "argument `subject` is required"
        );
    }

    #[test]
    fn mail_message_needs_a_recipient() {
        let a = args(json!({"to": [], "subject": "s", "body": "b"}));
        assert!(message(&a).is_err());
        let a = args(json!({"to": ["a@x.se"], "subject": "s", "body": "b", "html": "<p>b</p>"}));
        let m = message(&a).unwrap();
        assert_eq!(m.html.as_deref(), Some("<p>b</p>"));
    }
}
