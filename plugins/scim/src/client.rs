//! Requests and replies, the [`Transport`] that sends them (the host's
//! `wasi:http` in the component, a fake in unit tests), and the mapping of
//! an unwanted status to a [`PluginError`] that says what to fix:
//!
//! | status | error |
//! | --- | --- |
//! | 401, 403 | permanent; names the `[[plugins.NAME.http]]` credential for the origin |
//! | 404 | permanent; names the resource (and `base_url` for an endpoint) |
//! | 429, 5xx, 408 | retryable, with `Retry-After` (the SDK's mapping) |
//! | other 4xx | permanent, with the server's `detail` |
//!
//! A request that got no answer (refused, timed out) is mapped by the SDK:
//! retryable.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::Value;
use vakt_plugin_sdk::PluginError;
use vakt_plugin_sdk::http::status::{Target, status_error};
use vakt_plugin_sdk::http::{Method, Url};

/// One request, relative to the `base_url` setting.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub method: Method,
    /// `Users`, `Groups/{id}`: joined to the base URL.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// `If-Match`: the version the change is based on.
    pub if_match: Option<String>,
    pub body: Option<Value>,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Request {
        Request {
            method: Method::Get,
            path: path.into(),
            query: Vec::new(),
            if_match: None,
            body: None,
        }
    }

    pub fn patch(path: impl Into<String>, if_match: Option<&str>, body: Value) -> Request {
        Request {
            method: Method::Patch,
            path: path.into(),
            query: Vec::new(),
            if_match: if_match.map(str::to_owned),
            body: Some(body),
        }
    }

    pub fn query(mut self, key: &str, value: impl ToString) -> Request {
        self.query.push((key.to_owned(), value.to_string()));
        self
    }
}

/// An HTTP answer, whatever its status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub etag: Option<String>,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

/// Sends requests to the SCIM service.
pub trait Transport {
    /// `Err` only when no HTTP answer came back.
    fn send(&mut self, request: &Request) -> Result<Reply, PluginError>;

    /// A warning for the daemon's log.
    fn warn(&mut self, message: &str) {
        let _ = message;
    }
}

/// Where requests go, for messages: the base URL and its origin.
#[derive(Clone, Debug)]
pub struct Base {
    url: Url,
}

impl Base {
    pub fn parse(text: &str) -> Result<Base, PluginError> {
        let url = Url::parse(text).map_err(|e| e.context("the setting `base_url`"))?;
        if url.path_and_query.contains('?') {
            return Err(PluginError::permanent(
                "the setting `base_url` must not have a query: give the SCIM base URL, \
                 such as https://idp.kommune.no/scim/v2",
            ));
        }
        Ok(Base { url })
    }

    /// The base URL as configured (normalised by the SDK).
    pub fn as_str(&self) -> String {
        self.url.display_without_query()
    }

    pub fn origin(&self) -> String {
        self.url.origin()
    }

    /// The URL of a request, without its query.
    pub fn display(&self, request: &Request) -> String {
        self.url
            .join(&request.path)
            .map(|u| u.display_without_query())
            .unwrap_or_else(|_| format!("{}/{}", self.as_str(), request.path))
    }

    /// `Ok` for 1xx–3xx; otherwise the error for the status. `what` names
    /// the resource for a 404 (`the SCIM user \`42\``).
    pub fn check(&self, request: &Request, reply: &Reply, what: &str) -> Result<(), PluginError> {
        if reply.status < 400 {
            return Ok(());
        }
        let method = request.method.as_str();
        let url = self.display(request);
        let origin = self.origin();
        let detail = detail(&reply.body);
        let status = reply.status;
        Err(match status {
            401 | 403 => PluginError::permanent(format_args!(
                "{method} {url} answered {status} {}{detail}: the SCIM server refused the \
                 credential the daemon sends for {origin}. Check the `credential` of the \
                 `[[plugins.NAME.http]]` grant with origin = \"{origin}\" in the daemon config \
                 (for a bearer token: credential = {{ kind = \"bearer\", token = \"env:…\" }}) \
                 and that the token may read and change Users and Groups",
                if status == 401 {
                    "Unauthorized"
                } else {
                    "Forbidden"
                }
            )),
            404 => PluginError::permanent(format_args!(
                "{what} was not found: {method} {url} answered 404 Not Found{detail}. \
                 Check the id, and `base_url` ({}) in this plugin's settings",
                self.as_str()
            )),
            _ => status_error(
                Target {
                    method,
                    url: &url,
                    origin: &origin,
                },
                status,
                reply.retry_after.as_deref(),
                now_secs(),
                detail.trim_start_matches(": ").as_bytes(),
            )
            .unwrap_or_else(|| PluginError::permanent(format_args!("{method} {url}: {status}"))),
        })
    }

    /// The body as JSON of type `T`; a clear, permanent error otherwise.
    pub fn json<T: DeserializeOwned>(
        &self,
        request: &Request,
        reply: &Reply,
    ) -> Result<T, PluginError> {
        serde_json::from_slice(&reply.body).map_err(|e| {
            let what = if e.is_data() {
                "is not the SCIM resource expected"
            } else {
                "is not valid JSON"
            };
            PluginError::permanent(format_args!(
                "{} {} answered {} with a body that {what} ({e}); it starts: {}",
                request.method.as_str(),
                self.display(request),
                reply.status,
                snippet(&reply.body)
            ))
        })
    }
}

/// `: <detail>` from a SCIM error body (RFC 7644 §3.12), else the start of
/// the body; empty for an empty body.
fn detail(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let text = match parsed
        .as_ref()
        .and_then(|v| v.get("detail"))
        .and_then(Value::as_str)
    {
        Some(d) => {
            let kind = parsed
                .as_ref()
                .and_then(|v| v.get("scimType"))
                .and_then(Value::as_str);
            match kind {
                Some(k) => format!("{d} (scimType {k})"),
                None => d.to_owned(),
            }
        }
        None => snippet(body),
    };
    if text.is_empty() {
        text
    } else {
        format!(": {text}")
    }
}

/// The start of a body, on one line, at most 200 characters.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(800)]);
    let line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if line.chars().count() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else {
        line
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.as_bytes().to_vec(),
            ..Reply::default()
        }
    }

    #[test]
    fn statuses_map_to_errors_that_say_what_to_fix() {
        let base = Base::parse("http://127.0.0.1:8700/t1/v2").unwrap();
        let req = Request::get("Users/42").query("attributes", "id");
        assert_eq!(base.display(&req), "http://127.0.0.1:8700/t1/v2/Users/42");
        assert!(base.check(&req, &reply(200, ""), "x").is_ok());

        let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401","detail":"bad token"}"#;
        let e = base.check(&req, &reply(401, body), "x").unwrap_err();
        assert!(!e.retryable);
        assert!(e.message.contains("[[plugins.NAME.http]]"), "{}", e.message);
        assert!(
            e.message.contains("origin = \"http://127.0.0.1:8700\""),
            "{}",
            e.message
        );
        assert!(e.message.contains("bad token"), "{}", e.message);
        assert!(
            !base
                .check(&req, &reply(403, ""), "x")
                .unwrap_err()
                .retryable
        );

        let e = base
            .check(
                &req,
                &reply(404, "{\"detail\":\"User '42' not found\"}"),
                "the SCIM user `42`",
            )
            .unwrap_err();
        assert!(!e.retryable);
        assert!(
            e.message.starts_with("the SCIM user `42` was not found"),
            "{}",
            e.message
        );
        assert!(e.message.contains("`base_url`"), "{}", e.message);

        let mut slow = reply(429, "");
        slow.retry_after = Some("7".into());
        let e = base.check(&req, &slow, "x").unwrap_err();
        assert!(e.retryable);
        assert_eq!(e.retry_after_secs, Some(7));
        for s in [500, 502, 503, 504] {
            assert!(
                base.check(&req, &reply(s, "oops"), "x")
                    .unwrap_err()
                    .retryable,
                "{s}"
            );
        }
        let e = base
            .check(
                &req,
                &reply(
                    400,
                    r#"{"detail":"invalid syntax","scimType":"invalidFilter"}"#,
                ),
                "x",
            )
            .unwrap_err();
        assert!(!e.retryable);
        assert!(
            e.message
                .contains("invalid syntax (scimType invalidFilter)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn bodies_that_are_not_json_are_clear_errors() {
        let base = Base::parse("https://idp.example/scim/v2/").unwrap();
        let req = Request::get("Users");
        let e = base
            .json::<Value>(&req, &reply(200, "<html>proxy login</html>"))
            .unwrap_err();
        assert!(!e.retryable);
        assert!(e.message.contains("is not valid JSON"), "{}", e.message);
        assert!(
            e.message.contains("<html>proxy login</html>"),
            "{}",
            e.message
        );
        assert!(Base::parse("idp.example").is_err());
        assert!(Base::parse("https://idp.example/scim?x=1").is_err());
    }
}
