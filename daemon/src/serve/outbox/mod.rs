//! The `mail` role when no plugin is bound to it: every `send` becomes one
//! RFC 5322 message, a `.eml` file in the outbox directory
//! (`mail.outbox_dir`, default `<data_dir>/outbox`, made 0700).
//!
//! Useful for trying vakt without a relay, and for tests: a file per mail,
//! named `<YYYYmmddTHHMMSS>-<first 16 hex of sha256(idempotency key)>.eml`,
//! written to a temporary file, flushed and renamed (a reader never sees half
//! a message). Calls are idempotent: a second call with the same key finds
//! the file by its suffix and answers as the first did, writing nothing.
//!
//! The message: `From` is `mail.from` (with the call's `from_name`), `To`,
//! `Cc`, `Reply-To`, a `Subject` as RFC 2047 encoded words when it is not
//! ASCII, a `Message-ID` derived from the key exactly as the mail plugin
//! derives it, `X-Vakt-Idempotency-Key`, and a UTF-8 body in
//! 8bit UTF-8, or quoted-printable when a line is too long for 8bit
//! (multipart/alternative with `html`). Bcc recipients are
//! not written anywhere (a file has no envelope); their count is logged.
//! A line break in a header value is refused (header injection).
//!
//! The answer is the mail plugin's: `{"message_id": …, "response": …}`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::engine::CallOutcome;
use crate::runtime::{BoxFuture, Connector, ConnectorCall};

/// Writes mail as `.eml` files.
#[derive(Clone)]
pub struct EmlOutbox {
    dir: PathBuf,
    from: String,
    /// One send at a time: the look-up by key and the write are one step.
    lock: Arc<Mutex<()>>,
}

/// A call that can never succeed (the workflow or the config is wrong).
struct Refused(String);

impl EmlOutbox {
    /// `dir` is made (0700) at the first send; `from` is `mail.from`.
    pub fn new(dir: PathBuf, from: String) -> Self {
        EmlOutbox {
            dir,
            from,
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// The outbox of a config: `mail.outbox_dir` and `mail.from`.
    pub fn from_config(config: &super::Config) -> Self {
        Self::new(config.outbox_dir(), config.mail.from.clone())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Performs one call (blocking IO).
    pub fn send(&self, call: &ConnectorCall) -> CallOutcome {
        let refuse = |message: String| CallOutcome::Err {
            message,
            retryable: false,
            retry_after: None,
        };
        if call.role != "mail" {
            return refuse(format!(
                "the .eml outbox serves only the `mail` role, not `{}`; bind a plugin to `{}` in vakt.toml",
                call.role, call.role
            ));
        }
        if call.action != "send" {
            return refuse(format!(
                "the `mail` role has no action `{}`; its only action is `send`",
                call.action
            ));
        }
        let digest = hex::encode(Sha256::digest(call.idempotency_key.as_bytes()));
        let message_id = format!("<vakt.{}@{}>", &digest[..32], domain(&self.from));
        let bytes = match self.message(call, &message_id) {
            Ok(b) => b,
            Err(Refused(m)) => return refuse(m),
        };
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        match self.write(&digest[..16], &bytes) {
            Ok(path) => CallOutcome::Ok(json!({
                "message_id": message_id,
                "response": format!("written to {}", path.display()),
            })),
            Err((path, e)) => CallOutcome::Err {
                message: format!("cannot write the mail to {}: {e}", path.display()),
                retryable: true,
                retry_after: None,
            },
        }
    }

    /// The file for this key: the one already there, or a new one.
    fn write(&self, hash: &str, bytes: &[u8]) -> Result<PathBuf, (PathBuf, std::io::Error)> {
        let dir = &self.dir;
        let at = |p: &Path| {
            let p = p.to_path_buf();
            move |e| (p, e)
        };
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir).map_err(at(dir))?;
        let suffix = format!("-{hash}.eml");
        for entry in std::fs::read_dir(dir).map_err(at(dir))? {
            let name = entry.map_err(at(dir))?.file_name();
            if name.to_string_lossy().ends_with(&suffix) {
                return Ok(dir.join(name));
            }
        }
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
        let path = dir.join(format!("{stamp}{suffix}"));
        let tmp = dir.join(format!(".{hash}.tmp"));
        {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            let mut f = o.open(&tmp).map_err(at(&tmp))?;
            f.write_all(bytes).map_err(at(&tmp))?;
            f.sync_all().map_err(at(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(at(&path))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(at(dir))?;
        Ok(path)
    }

    fn message(&self, call: &ConnectorCall, message_id: &str) -> Result<Vec<u8>, Refused> {
        let Value::Object(args) = &call.args else {
            return Err(Refused("the arguments of `mail.send` must be a map".into()));
        };
        let to = list(args, "to")?;
        if to.is_empty() {
            return Err(Refused("argument `to` needs at least one address".into()));
        }
        let cc = list(args, "cc")?;
        let bcc = list(args, "bcc")?;
        let reply_to = text(args, "reply_to")?.filter(|r| !r.trim().is_empty());
        let from_name = text(args, "from_name")?.filter(|n| !n.trim().is_empty());
        let subject = text(args, "subject")?
            .ok_or_else(|| Refused("argument `subject` is required".into()))?;
        let body =
            text(args, "body")?.ok_or_else(|| Refused("argument `body` is required".into()))?;
        let html = text(args, "html")?;
        let subject = subject.trim();
        header_safe("subject", subject)?;
        header_safe("idempotency key", &call.idempotency_key)?;
        for (field, list) in [("to", &to), ("cc", &cc), ("bcc", &bcc)] {
            for a in list.iter() {
                check_address(field, a)?;
            }
        }
        if let Some(r) = &reply_to {
            check_address("reply_to", r)?;
        }
        let (name, address) = split_mailbox(&self.from);
        let from = match from_name.as_deref().or(name) {
            Some(n) => {
                header_safe("from_name", n)?;
                format!("{} <{address}>", phrase(n))
            }
            None => address.to_owned(),
        };
        if !bcc.is_empty() {
            tracing::info!(instance = %call.instance, bcc = bcc.len(), "bcc recipients are not written to .eml files");
        }

        let mut m = String::new();
        let mut h = |name: &str, value: &str| {
            let _ = write!(m, "{name}: {value}\r\n");
        };
        h("From", &from);
        h("To", &mailboxes(&to));
        if !cc.is_empty() {
            h("Cc", &mailboxes(&cc));
        }
        if let Some(r) = &reply_to {
            h("Reply-To", &mailboxes(std::slice::from_ref(r)));
        }
        h("Subject", &encode_words(subject));
        h("Date", &chrono::Utc::now().to_rfc2822());
        h("Message-ID", message_id);
        h("MIME-Version", "1.0");
        h("Auto-Submitted", "auto-generated");
        h("X-Auto-Response-Suppress", "All");
        h(
            "X-Vakt-Idempotency-Key",
            &encode_words(&call.idempotency_key),
        );
        // 8bit UTF-8 when every line fits (RFC 5322's 998 octets): the
        // .eml stays readable, links whole; quoted-printable otherwise.
        let part = |ctype: &str, text: &str| {
            let text = text.replace("\r\n", "\n").replace('\r', "\n");
            let (cte, body) = if text.split('\n').all(|l| l.len() <= 998) {
                ("8bit", text.replace('\n', "\r\n"))
            } else {
                ("quoted-printable", quoted_printable(&text))
            };
            format!(
                "Content-Type: {ctype}; charset=utf-8\r\nContent-Transfer-Encoding: {cte}\r\n\r\n{body}\r\n"
            )
        };
        match html {
            None => m.push_str(&part("text/plain", &body)),
            Some(html) => {
                let boundary = format!("vakt-{}", &message_id[6..22]);
                let _ = write!(
                    m,
                    "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
                     --{boundary}\r\n{}--{boundary}\r\n{}--{boundary}--\r\n",
                    part("text/plain", &body),
                    part("text/html", &html),
                );
            }
        }
        Ok(m.into_bytes())
    }
}

impl Connector for EmlOutbox {
    fn call(&self, call: ConnectorCall) -> BoxFuture<CallOutcome> {
        let me = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || me.send(&call))
                .await
                .unwrap_or_else(|e| CallOutcome::Err {
                    message: format!("the .eml outbox failed: {e}"),
                    retryable: true,
                    retry_after: None,
                })
        })
    }
}

fn text(args: &Map<String, Value>, name: &str) -> Result<Option<String>, Refused> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
        Some(_) => Err(Refused(format!("argument `{name}` must be text"))),
    }
}

fn list(args: &Map<String, Value>, name: &str) -> Result<Vec<String>, Refused> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(Refused(format!(
                    "argument `{name}` must be a list of addresses"
                ))),
            })
            .collect(),
        Some(_) => Err(Refused(format!(
            "argument `{name}` must be a list of addresses"
        ))),
    }
}

fn header_safe(field: &str, value: &str) -> Result<(), Refused> {
    if value.contains(['\r', '\n', '\0']) {
        return Err(Refused(format!(
            "`{field}` contains a line break; refused (it could inject mail headers)"
        )));
    }
    Ok(())
}

fn check_address(field: &str, mailbox: &str) -> Result<(), Refused> {
    header_safe(field, mailbox)?;
    let (_, address) = split_mailbox(mailbox);
    let ok = address.contains('@')
        && !address.starts_with('@')
        && !address.ends_with('@')
        && !address.contains(|c: char| c.is_whitespace() || "<>,;\"".contains(c));
    if !ok {
        return Err(Refused(format!(
            "{field}: `{mailbox}` is not a mail address"
        )));
    }
    Ok(())
}

/// `Name <addr>` or `addr` → (name, addr).
fn split_mailbox(text: &str) -> (Option<&str>, &str) {
    let text = text.trim();
    match (text.rfind('<'), text.ends_with('>')) {
        (Some(open), true) => {
            let name = text[..open].trim().trim_matches('"').trim();
            (
                Some(name).filter(|n| !n.is_empty()),
                text[open + 1..text.len() - 1].trim(),
            )
        }
        _ => (None, text),
    }
}

fn domain(mailbox: &str) -> &str {
    split_mailbox(mailbox)
        .1
        .rsplit_once('@')
        .map_or("localhost", |(_, d)| d)
}

fn mailboxes(list: &[String]) -> String {
    list.iter()
        .map(|m| match split_mailbox(m) {
            (Some(n), a) => format!("{} <{a}>", phrase(n)),
            (None, a) => a.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",\r\n ")
}

/// A display name: a quoted string when ASCII, encoded words otherwise.
fn phrase(name: &str) -> String {
    if name.is_ascii() && !name.contains("=?") {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        encode_words(name)
    }
}

/// RFC 2047: ASCII text as it is; anything else as `=?utf-8?B?…?=` words of
/// at most 75 characters, split at character boundaries, folded.
fn encode_words(text: &str) -> String {
    if text.is_ascii() && !text.contains("=?") && text.len() <= 900 {
        return text.to_owned();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?utf-8?B?{}?=", B64.encode(&chunk)));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(format!("=?utf-8?B?{}?=", B64.encode(&chunk)));
    }
    words.join("\r\n ")
}

/// RFC 2045 quoted-printable of UTF-8 text with CRLF line breaks and soft
/// breaks keeping every line within 76 characters.
fn quoted_printable(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::new();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let mut width = 0;
        let bytes = line.as_bytes();
        for (j, &b) in bytes.iter().enumerate() {
            let last = j + 1 == bytes.len();
            let literal =
                ((b'!'..=b'~').contains(&b) && b != b'=') || ((b == b' ' || b == b'\t') && !last);
            let token = if literal {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            if width + token.len() > 75 {
                out.push_str("=\r\n");
                width = 0;
            }
            width += token.len();
            out.push_str(&token);
        }
    }
    out
}

#[cfg(test)]
mod tests;
