//! Messages the SMTP sink received, parsed with mail-parser (bodies may be
//! quoted-printable or base64; subjects encoded words), and the signed
//! `/t/` links in them.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use vakt::serve::links::LinkClaim;

/// One received message.
#[derive(Debug, Clone)]
pub struct Mail {
    /// `NNNN.eml` in the sink's directory.
    pub file: PathBuf,
    /// The envelope's recipients (RCPT TO), lower case.
    pub rcpt: Vec<String>,
    /// The `To:` addresses, lower case.
    pub to: Vec<String>,
    pub subject: String,
    pub message_id: String,
    /// The text body, decoded.
    pub text: String,
    /// The HTML body, decoded, if there is one.
    pub html: Option<String>,
}

/// A signed decision link found in a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The option's label as the mail shows it.
    pub label: String,
    /// `http://127.0.0.1:PORT/t/<token>`.
    pub url: String,
    pub token: String,
}

impl Link {
    /// The claim in the token's payload, decoded without checking the MAC
    /// (the daemon checks it; the test only wants to know what it names).
    pub fn claim(&self) -> LinkClaim {
        let (payload, _mac) = self
            .token
            .split_once('.')
            .unwrap_or_else(|| panic!("a link token is `payload.mac`: {}", self.token));
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap_or_else(|e| panic!("link payload is not base64url ({e}): {}", self.token));
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("link payload is not a claim ({e}): {}", self.token))
    }

    /// The same link with its address on another base (the daemon came back
    /// on another port).
    pub fn on(&self, base: &str) -> String {
        format!("{}/t/{}", base.trim_end_matches('/'), self.token)
    }
}

impl Mail {
    /// Parses `NNNN.eml` and its envelope `NNNN.json` (written by the sink).
    pub fn read(file: &Path) -> Mail {
        let raw = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let msg = mail_parser::MessageParser::default()
            .parse(&raw)
            .unwrap_or_else(|| panic!("{} is not a message", file.display()));
        let to = msg
            .to()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.address())
                    .map(str::to_lowercase)
                    .collect()
            })
            .unwrap_or_default();
        let rcpt = std::fs::read(file.with_extension("json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["rcpt_tos"].as_array().cloned())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .map(str::to_lowercase)
                    .collect()
            })
            .unwrap_or_default();
        Mail {
            file: file.to_path_buf(),
            rcpt,
            to,
            subject: msg.subject().unwrap_or_default().to_owned(),
            message_id: msg.message_id().unwrap_or_default().to_owned(),
            text: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            html: msg.body_html(0).map(|t| t.into_owned()),
        }
    }

    /// Whether the message went to `address` (envelope or `To:`).
    pub fn is_for(&self, address: &str) -> bool {
        let a = address.to_lowercase();
        self.rcpt.contains(&a) || self.to.contains(&a)
    }

    /// The signed links of the text body, in order: lines
    /// `  <label>: http://…/t/<token>`.
    pub fn links(&self) -> Vec<Link> {
        let mut out = Vec::new();
        for line in self.text.lines() {
            let Some(start) = line.find("http://").or_else(|| line.find("https://")) else {
                continue;
            };
            let url = line[start..].trim();
            let Some(t) = url.find("/t/") else { continue };
            let token = &url[t + 3..];
            if token.is_empty()
                || !token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                continue;
            }
            out.push(Link {
                label: line[..start].trim().trim_end_matches(':').trim().to_owned(),
                url: url.to_owned(),
                token: token.to_owned(),
            });
        }
        out
    }

    /// The link whose claim names option `option`; panics listing the links.
    pub fn link_for(&self, option: &str) -> Link {
        let links = self.links();
        links
            .iter()
            .find(|l| l.claim().option == option)
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "no link for option `{option}` in {} (links: {links:#?})\n{}",
                    self.file.display(),
                    self.text
                )
            })
    }
}
