//! The MIME message: RFC 5322 headers with RFC 2047 encoded-words for
//! non-ASCII text, `multipart/alternative` (text, then HTML) when there is
//! HTML and `text/plain` otherwise, bodies in UTF-8 with quoted-printable or
//! base64 as needed, CRLF line ends and no line longer than 998 octets.
//! Built with `mail-builder`, which does no I/O.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use sha2::{Digest, Sha256};

use crate::address::Mailbox;

pub struct Parts<'a> {
    pub from: &'a Mailbox,
    pub to: &'a [Mailbox],
    pub cc: &'a [Mailbox],
    pub reply_to: Option<&'a Mailbox>,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: Option<&'a str>,
    /// With its angle brackets, as returned by [`message_id`].
    pub message_id: &'a str,
    pub date_unix: i64,
}

/// `<vakt.{32 hex}@{domain}>`: the same for every attempt with the same
/// idempotency key, unique across keys, at the sender's domain.
pub fn message_id(idempotency_key: &str, domain: &str) -> String {
    let digest = Sha256::digest(idempotency_key.as_bytes());
    format!("<vakt.{}@{}>", hex::encode(&digest[..16]), domain)
}

/// The message as bytes, ready for the relay.
pub fn build(parts: &Parts<'_>) -> Vec<u8> {
    let mut builder = MessageBuilder::new()
        .from(address(parts.from))
        .message_id(MessageId::new(
            parts
                .message_id
                .trim_start_matches('<')
                .trim_end_matches('>'),
        ))
        .date(parts.date_unix)
        .subject(one_line(parts.subject))
        .header("MIME-Version", Raw::new("1.0"))
        .header("Auto-Submitted", Raw::new("auto-generated"))
        // Asks Exchange not to send out-of-office and similar replies.
        .header("X-Auto-Response-Suppress", Raw::new("All"));
    if !parts.to.is_empty() {
        builder = builder.to(list(parts.to));
    }
    if !parts.cc.is_empty() {
        builder = builder.cc(list(parts.cc));
    }
    if let Some(reply_to) = parts.reply_to {
        builder = builder.reply_to(address(reply_to));
    }
    builder = builder.text_body(crlf(parts.text));
    if let Some(html) = parts.html {
        builder = builder.html_body(crlf(html));
    }
    let mut bytes = builder.write_to_vec().unwrap_or_default();
    // A message ends with a line break (SMTP's DATA needs one before the
    // final dot; a 7bit body is written as it is).
    if !bytes.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes
}

fn address(mailbox: &Mailbox) -> Address<'static> {
    Address::new_address(mailbox.name.clone(), mailbox.address.clone())
}

fn list(mailboxes: &[Mailbox]) -> Address<'static> {
    Address::new_list(mailboxes.iter().map(address).collect())
}

/// Text in canonical form (RFC 2045): every line break is CRLF, whatever
/// the body is encoded with.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}

/// A header value on one line: control characters become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
    use vakt_plugin_sdk::CallContext;
    use vakt_plugin_sdk::mail::Message;

    use super::*;
    use crate::prepare;

    const NORDIC: &str = "Åsa Öberg, Ærø, Bjørn Ødegård: åäöæøå ÅÄÖÆØÅ";

    fn ctx(key: &str) -> CallContext {
        CallContext {
            instance_id: "inst-1".into(),
            step_id: "notify".into(),
            idempotency_key: key.into(),
            attempt: 1,
            deadline_ms: 0,
        }
    }

    fn message(html: Option<&str>) -> Message {
        Message {
            to: vec![
                "Åsa Öberg <asa@skola.kommun.se>".into(),
                "bjorn@kommune.no".into(),
            ],
            cc: vec!["chef@kommun.se".into()],
            bcc: vec!["arkiv@kommun.se".into(), "ASA@skola.kommun.se".into()],
            reply_to: Some("Servicedesk <servicedesk@kommun.se>".into()),
            from_name: Some("Kommunens IT – Åtkomst".into()),
            subject: format!("Behörighet upphör: {NORDIC}"),
            text: format!("Hej!\n\n{NORDIC}\n\nMed vänlig hälsning\nIT"),
            html: html.map(str::to_owned),
        }
    }

    fn from() -> Mailbox {
        Mailbox::parse("Vakt <vakt@kommun.se>").unwrap()
    }

    fn prepared(html: Option<&str>) -> crate::Prepared {
        prepare(
            &ctx("inst-1/notify//0"),
            &message(html),
            from(),
            1_764_000_000,
        )
        .unwrap()
    }

    fn assert_wire_format(bytes: &[u8]) {
        let text = std::str::from_utf8(bytes).expect("ASCII on the wire");
        assert!(text.is_ascii(), "8-bit data on the wire");
        for (i, line) in text.split("\r\n").enumerate() {
            assert!(
                !line.contains('\n') && !line.contains('\r'),
                "bare CR or LF on line {i}: {line:?}"
            );
            assert!(line.len() <= 998, "line {i} is {} octets", line.len());
        }
        assert!(text.ends_with("\r\n"));
    }

    #[test]
    fn text_only_is_text_plain_and_survives_nordic_letters() {
        let p = prepared(None);
        assert_wire_format(&p.bytes);
        let raw = String::from_utf8(p.bytes.clone()).unwrap();
        let msg = MessageParser::default().parse(&p.bytes).unwrap();
        assert_eq!(
            msg.subject(),
            Some(format!("Behörighet upphör: {NORDIC}").as_str())
        );
        assert!(
            raw.contains("Subject: =?utf-8?"),
            "subject not encoded-word: {raw}"
        );
        let ct = msg.content_type().unwrap();
        assert_eq!((ct.ctype(), ct.subtype()), ("text", Some("plain")));
        assert_eq!(ct.attribute("charset"), Some("utf-8"));
        let body = msg.body_text(0).unwrap();
        assert!(body.contains(NORDIC), "{body}");
        assert!(body.contains("Med vänlig hälsning\r\nIT"), "{body:?}");
        assert!(msg.body_html(0).is_none() || !raw.contains("text/html"));
    }

    #[test]
    fn html_makes_multipart_alternative_text_first() {
        let html = format!("<p>Hej!</p><p>{NORDIC}</p>");
        let p = prepared(Some(&html));
        assert_wire_format(&p.bytes);
        let msg = MessageParser::default().parse(&p.bytes).unwrap();
        let ct = msg.content_type().unwrap();
        assert_eq!(
            (ct.ctype(), ct.subtype()),
            ("multipart", Some("alternative"))
        );
        assert!(msg.body_text(0).unwrap().contains(NORDIC));
        assert!(msg.body_html(0).unwrap().contains(&html));
        let raw = String::from_utf8(p.bytes.clone()).unwrap();
        let text_at = raw.find("Content-Type: text/plain").unwrap();
        let html_at = raw.find("Content-Type: text/html").unwrap();
        assert!(text_at < html_at, "text must come before HTML");
    }

    #[test]
    fn headers_are_all_there_and_bcc_is_not() {
        let p = prepared(None);
        let raw = String::from_utf8(p.bytes.clone()).unwrap();
        let msg = MessageParser::default().parse(&p.bytes).unwrap();

        let from = msg.from().unwrap().first().unwrap();
        assert_eq!(from.address(), Some("vakt@kommun.se"));
        assert_eq!(from.name(), Some("Kommunens IT – Åtkomst"));
        let to: Vec<_> = msg
            .to()
            .unwrap()
            .iter()
            .map(|a| a.address().unwrap().to_owned())
            .collect();
        assert_eq!(to, ["asa@skola.kommun.se", "bjorn@kommune.no"]);
        assert_eq!(msg.to().unwrap().first().unwrap().name(), Some("Åsa Öberg"));
        let cc: Vec<_> = msg
            .cc()
            .unwrap()
            .iter()
            .map(|a| a.address().unwrap().to_owned())
            .collect();
        assert_eq!(cc, ["chef@kommun.se"]);
        assert!(msg.bcc().is_none());
        assert!(!raw.to_ascii_lowercase().contains("bcc:"));
        assert!(!raw.contains("arkiv@kommun.se"));
        let reply_to = msg.reply_to().unwrap().first().unwrap();
        assert_eq!(reply_to.address(), Some("servicedesk@kommun.se"));

        assert_eq!(
            msg.message_id(),
            Some(p.message_id.trim_matches(['<', '>']))
        );
        assert!(p.message_id.starts_with("<vakt.") && p.message_id.ends_with("@kommun.se>"));
        assert_eq!(msg.date().unwrap().to_timestamp(), 1_764_000_000);
        assert!(raw.contains("\r\nAuto-Submitted: auto-generated\r\n"));
        assert!(raw.contains("\r\nMIME-Version: 1.0\r\n"));
        assert_eq!(raw.matches("MIME-Version:").count(), 1);
        assert!(
            matches!(msg.header("Auto-Submitted"), Some(HeaderValue::Text(t)) if t == "auto-generated")
        );
    }

    #[test]
    fn the_envelope_has_every_recipient_once_and_the_sender() {
        let p = prepared(None);
        assert_eq!(p.envelope_from, "vakt@kommun.se");
        assert_eq!(
            p.envelope_to,
            [
                "asa@skola.kommun.se",
                "bjorn@kommune.no",
                "chef@kommun.se",
                "arkiv@kommun.se"
            ]
        );
    }

    #[test]
    fn message_id_is_stable_per_idempotency_key() {
        let a = prepare(&ctx("k/1"), &message(None), from(), 1).unwrap();
        let b = prepare(&ctx("k/1"), &message(None), from(), 99).unwrap();
        let c = prepare(&ctx("k/2"), &message(None), from(), 1).unwrap();
        assert_eq!(a.message_id, b.message_id);
        assert_ne!(a.message_id, c.message_id);
        assert_eq!(message_id("k/1", "kommun.se"), a.message_id);
    }

    #[test]
    fn long_lines_and_bare_newlines_stay_within_limits() {
        let mut m = message(Some(&format!("<p>{}</p>", "å".repeat(3000))));
        m.text = format!("{}\n{}\r\nend", "a".repeat(5000), "ø".repeat(2000));
        m.subject = "Ä".repeat(400);
        let p = prepare(&ctx("k"), &m, from(), 0).unwrap();
        assert_wire_format(&p.bytes);
        let msg = MessageParser::default().parse(&p.bytes).unwrap();
        assert_eq!(msg.subject(), Some("Ä".repeat(400).as_str()));
        let text = msg.body_text(0).unwrap();
        assert!(text.contains(&"a".repeat(5000)));
        assert!(text.contains(&"ø".repeat(2000)));
    }

    #[test]
    fn header_injection_is_neutralised() {
        let mut m = message(None);
        m.subject = "Hej\r\nBcc: evil@example.com".into();
        m.from_name = Some("IT\r\nX-Evil: 1".into());
        let p = prepare(&ctx("k"), &m, from(), 0).unwrap();
        let raw = String::from_utf8(p.bytes).unwrap();
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
        assert!(!raw.contains("\r\nX-Evil:"), "{raw}");
    }

    #[test]
    fn bad_input_is_a_permanent_error() {
        let mut m = message(None);
        m.to = vec!["not an address".into()];
        let e = prepare(&ctx("k"), &m, from(), 0).unwrap_err();
        assert!(!e.retryable);
        assert!(
            e.message.starts_with("to: `not an address`"),
            "{}",
            e.message
        );
        let mut m = message(None);
        m.to.clear();
        m.cc.clear();
        m.bcc.clear();
        let e = prepare(&ctx("k"), &m, from(), 0).unwrap_err();
        assert!(e.message.contains("no recipients"));
    }

    #[test]
    fn ascii_text_stays_readable() {
        let mut m = message(None);
        m.subject = "Access review".into();
        m.text = "Hello\nworld".into();
        let p = prepare(&ctx("k"), &m, from(), 0).unwrap();
        assert_wire_format(&p.bytes);
        let raw = String::from_utf8(p.bytes).unwrap();
        assert!(raw.contains("Subject: Access review\r\n"), "{raw}");
        assert!(raw.contains("Hello\r\nworld"), "{raw}");
    }
}
