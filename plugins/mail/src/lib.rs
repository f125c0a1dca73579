//! vakt's `mail` connector: builds a MIME message and sends it through the
//! host's `smtp` interface (the relay granted to this plugin).
//!
//! Settings: `from`, the sender, as `it@kommun.se` or
//! `Kommunens IT <it@kommun.se>`; a message's `from-name` overrides the name.
//!
//! The Message-ID is derived from the call's idempotency key, so every
//! attempt of one step visit sends the same id and a receiving system can
//! drop a duplicate. Bcc recipients are in the SMTP envelope only.

pub mod address;
pub mod mime;

use std::time::{SystemTime, UNIX_EPOCH};

use vakt_plugin_sdk::mail::{Message, Sent};
use vakt_plugin_sdk::prelude::*;
use vakt_plugin_sdk::{settings, smtp};

use crate::address::Mailbox;

pub struct Mail;

impl Plugin for Mail {
    fn new() -> Self {
        Mail
    }

    fn manifest() -> Manifest {
        Manifest::builder("mail", env!("CARGO_PKG_VERSION"))
            .smtp()
            .setting("from")
            .build()
    }
}

impl MailPlugin for Mail {
    fn send(&mut self, ctx: &CallContext, message: Message) -> Result<Sent, PluginError> {
        let from = Mailbox::parse(&settings::require("from")?)
            .map_err(|e| PluginError::permanent(format_args!("the setting `from`: {e}")))?;
        let prepared = prepare(ctx, &message, from, now_unix())?;
        let envelope = smtp::Envelope {
            from: prepared.envelope_from,
            to: prepared.envelope_to,
        };
        let response = smtp::send(&envelope, &prepared.bytes)?;
        vakt_plugin_sdk::info!(
            "sent {} to {} recipient(s)",
            prepared.message_id,
            envelope.to.len()
        );
        Ok(Sent {
            message_id: prepared.message_id,
            response,
        })
    }
}

vakt_plugin_sdk::export_mail!(Mail);

/// A message ready for the relay.
#[derive(Debug)]
pub struct Prepared {
    pub message_id: String,
    pub envelope_from: String,
    /// To, Cc and Bcc, each address once.
    pub envelope_to: Vec<String>,
    pub bytes: Vec<u8>,
}

/// Checks the message and builds it; pure (the time is an argument), so the
/// MIME output is unit-tested natively.
pub fn prepare(
    ctx: &CallContext,
    message: &Message,
    mut from: Mailbox,
    now_unix: i64,
) -> Result<Prepared, PluginError> {
    let bad = |what: String| PluginError::permanent(what);
    if let Some(name) = &message.from_name {
        from.name = Some(name.clone()).filter(|n| !n.trim().is_empty());
    }
    let parse_all = |field: &str, list: &[String]| -> Result<Vec<Mailbox>, PluginError> {
        list.iter()
            .map(|a| Mailbox::parse(a).map_err(|e| bad(format!("{field}: {e}"))))
            .collect()
    };
    let to = parse_all("to", &message.to)?;
    let cc = parse_all("cc", &message.cc)?;
    let bcc = parse_all("bcc", &message.bcc)?;
    let reply_to = message
        .reply_to
        .as_deref()
        .filter(|r| !r.trim().is_empty())
        .map(|r| Mailbox::parse(r).map_err(|e| bad(format!("reply-to: {e}"))))
        .transpose()?;
    if to.is_empty() && cc.is_empty() && bcc.is_empty() {
        return Err(bad(
            "the message has no recipients (to, cc and bcc are empty)".into(),
        ));
    }

    let mut envelope_to: Vec<String> = Vec::new();
    for mailbox in to.iter().chain(&cc).chain(&bcc) {
        if !envelope_to
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&mailbox.address))
        {
            envelope_to.push(mailbox.address.clone());
        }
    }

    let message_id = mime::message_id(&ctx.idempotency_key, from.domain());
    let bytes = mime::build(&mime::Parts {
        from: &from,
        to: &to,
        cc: &cc,
        reply_to: reply_to.as_ref(),
        subject: &message.subject,
        text: &message.text,
        html: message.html.as_deref(),
        message_id: &message_id,
        date_unix: now_unix,
    });
    Ok(Prepared {
        message_id,
        envelope_from: from.address,
        envelope_to,
        bytes,
    })
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
