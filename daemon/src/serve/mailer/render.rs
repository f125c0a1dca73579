//! The pieces a task mail is made of, rendered as text and as HTML, and the
//! small text helpers the mails share.

use std::fmt::Write as _;

use super::super::pages::escape;
use crate::engine::model::NotifyReason;

/// A piece of a mail, rendered as text and as HTML.
pub(super) enum Block {
    Text(String),
    Title(String),
    Facts(Vec<(&'static str, String)>),
    Links(Vec<(String, String)>),
}

impl Block {
    pub(super) fn render(&self, text: &mut String, html: &mut String) {
        let _ = match self {
            Block::Text(t) => {
                let _ = write!(text, "{t}\n\n");
                write!(html, "<p style=\"white-space:pre-wrap\">{}</p>", escape(t))
            }
            Block::Title(t) => {
                let _ = write!(text, "    {t}\n\n");
                write!(html, "<h2>{}</h2>", escape(t))
            }
            Block::Facts(facts) => {
                html.push_str("<table>");
                for (k, v) in facts {
                    let _ = writeln!(text, "{:<11} {v}", format!("{k}:"));
                    let _ = write!(
                        html,
                        "<tr><th align=\"left\">{k}</th><td>{}</td></tr>",
                        escape(v)
                    );
                }
                text.push('\n');
                write!(html, "</table>")
            }
            Block::Links(links) => {
                text.push_str("Decide:\n");
                html.push_str("<p>Decide:</p><ul>");
                for (label, url) in links {
                    let _ = writeln!(text, "  {label}: {url}");
                    let _ = write!(
                        html,
                        "<li><a href=\"{}\">{}</a></li>",
                        escape(url),
                        escape(label)
                    );
                }
                text.push('\n');
                write!(html, "</ul>")
            }
        };
    }
}

/// The reason as a word: in idempotency keys, logs and metric labels.
/// A whole mail body from its blocks: plain text with the signature, and
/// an HTML document.
pub(super) fn body(blocks: &[Block]) -> (String, String) {
    let (mut text, mut html) = (String::new(), String::new());
    for b in blocks {
        b.render(&mut text, &mut html);
        html.push('\n');
    }
    text.push_str("-- \nvakt\n");
    (
        text,
        format!("<!doctype html><html><body>\n{html}</body></html>"),
    )
}

pub(super) fn reason_word(reason: NotifyReason) -> &'static str {
    match reason {
        NotifyReason::Opened => "opened",
        NotifyReason::Reminder => "reminder",
        NotifyReason::Escalation => "escalation",
        NotifyReason::Delegated => "delegated",
    }
}

pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(super) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}
