//! The HTTP side of the client verbs: one request, one JSON answer, and
//! every way that can fail turned into a [`Failure`] a person can act on.
//!
//! The token goes only into the `Authorization` header (marked sensitive);
//! no message, not even a transport error, carries it.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::render::cut;

/// How long one request may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a verb failed: the message (printed after `error: `), an optional
/// hint, and the exit code (1: the daemon said no or was not there;
/// 2: the command was wrong).
#[derive(Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
            hint: None,
        }
    }

    /// The work failed (exit 1).
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
            hint: None,
        }
    }

    /// What goes to stderr.
    pub fn render(&self) -> String {
        let mut s = format!("error: {}\n", self.message);
        if let Some(h) = &self.hint {
            s.push_str(&format!("hint: {h}\n"));
        }
        s
    }
}

/// A connection to one daemon.
pub struct Api {
    base: Url,
    /// As given, for messages.
    shown: String,
    token: Option<HeaderValue>,
    http: reqwest::Client,
}

impl Api {
    /// Checks the URL and the token (without showing it) and builds the
    /// HTTP client.
    pub fn new(url: &str, token: Option<&str>) -> Result<Api, Failure> {
        let base = Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                Failure::usage(format!(
                    "--url: `{url}` is not an http(s) URL (write http://127.0.0.1:7700)"
                ))
            })?;
        let token = match token.map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                    Failure::usage("the token holds characters a header cannot carry (check VAKT_TOKEN or --token)")
                })?;
                v.set_sensitive(true);
                Some(v)
            }
        };
        crate::plugin::init();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .user_agent(concat!("vakt/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::failed(format!("cannot set up HTTP: {e}")))?;
        Ok(Api {
            shown: url.trim_end_matches('/').to_owned(),
            base,
            token,
            http,
        })
    }

    /// `GET /api/v1/<path…>?<query>` (empty query values are left out).
    pub async fn get(&self, path: &[&str], query: &[(&str, &str)]) -> Result<Value, Failure> {
        self.send(Method::GET, path, query, None, None).await
    }

    /// `POST /api/v1/<path…>` with a JSON body and an optional header.
    pub async fn post(
        &self,
        path: &[&str],
        body: &Value,
        header: Option<(&'static str, &str)>,
    ) -> Result<Value, Failure> {
        self.send(Method::POST, path, &[], Some(body), header).await
    }

    /// The URL of an API path; each part is one percent-encoded segment.
    pub fn url(&self, path: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(["api", "v1"]).extend(path);
        }
        let query: Vec<_> = query.iter().filter(|(_, v)| !v.is_empty()).collect();
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
        header: Option<(&'static str, &str)>,
    ) -> Result<Value, Failure> {
        let mut req = self.http.request(method, self.url(path, query));
        if let Some(t) = &self.token {
            req = req.header(reqwest::header::AUTHORIZATION, t.clone());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some((name, value)) = header {
            let value = HeaderValue::from_str(value).map_err(|_| {
                Failure::usage(format!("{name}: not a value an HTTP header can carry"))
            })?;
            req = req.header(HeaderName::from_static(name), value);
        }
        let resp = req.send().await.map_err(|e| self.transport(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.transport(&e))?;
        if !status.is_success() {
            return Err(self.refusal(status, &bytes));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            Failure::failed(format!(
                "{} answered HTTP {status} with something that is not JSON ({e}); is VAKT_URL the vakt API?",
                self.shown
            ))
        })
    }

    /// A request that got no answer.
    fn transport(&self, e: &reqwest::Error) -> Failure {
        if e.is_timeout() {
            return Failure::failed(format!(
                "vakt at {} did not answer within {} s",
                self.shown,
                TIMEOUT.as_secs()
            ));
        }
        // The innermost cause says what happened ("Connection refused").
        let mut cause: &dyn std::error::Error = e;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        Failure::failed(format!(
            "cannot reach vakt at {}: {cause} (is vakt serve running? set VAKT_URL)",
            self.shown
        ))
    }

    /// An answer that is not a success: the API's `{"error": …}` when
    /// there is one, else the start of the body.
    fn refusal(&self, status: StatusCode, body: &[u8]) -> Failure {
        let parsed: Option<(String, String)> =
            serde_json::from_slice::<Value>(body).ok().and_then(|v| {
                let e = v.get("error")?;
                let message = e.get("message")?.as_str()?.to_owned();
                let code = e.get("code").and_then(Value::as_str).unwrap_or("error");
                Some((message, code.to_owned()))
            });
        let message = match parsed {
            Some((message, code)) => format!(
                "{} ({}, HTTP {})",
                cut(&message, 2000),
                cut(&code, 100),
                status.as_u16()
            ),
            None => {
                let text = String::from_utf8_lossy(body);
                let text = cut(text.trim(), 200);
                if text.is_empty() {
                    format!("{} answered HTTP {status}", self.shown)
                } else {
                    format!("{} answered HTTP {status}: {text}", self.shown)
                }
            }
        };
        let hint = match status {
            StatusCode::UNAUTHORIZED if self.token.is_none() => Some(
                "no token was given: set VAKT_TOKEN (or pass --token); an admin creates one with `vakt token create --principal ADDRESS --role operator`".into(),
            ),
            StatusCode::UNAUTHORIZED => Some(
                "the token was refused: it may be mistyped or revoked (`vakt token list` on the daemon's machine)".into(),
            ),
            _ => None,
        };
        Failure {
            code: 1,
            message,
            hint,
        }
    }
}
