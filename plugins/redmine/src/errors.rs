//! Redmine's HTTP answers mapped to [`PluginError`]s that say what to fix.
//!
//! | answer | retryable | the message |
//! | --- | --- | --- |
//! | 401, 403 | no | names the `[[plugins.NAME.http]]` grant's `credential` |
//! | 404 | no | names the issue (or the path, for anything else) |
//! | 422 | no | Redmine's `errors` list |
//! | 429 | yes | `retry-after-secs` from `Retry-After` |
//! | 408, 5xx | yes | the status (and `Retry-After` when sent) |
//! | other 4xx | no | the status and the start of the body |
//!
//! Connection failures (refused, timed out) never reach this module: the
//! SDK's HTTP client already maps them to retryable errors.

use vakt_plugin_sdk::PluginError;
use vakt_plugin_sdk::http::status::parse_retry_after;

/// What a request was for, in messages.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `GET /issues/7.json`: method and path, never the query.
    pub at: &'a str,
    /// `scheme://host[:port]` of Redmine.
    pub origin: &'a str,
    /// The issue the request is about, if any (for a 404).
    pub issue: Option<&'a str>,
}

/// `None` for 1xx–3xx; the error for anything else.
pub fn status_error(
    req: Request<'_>,
    status: u16,
    retry_after: Option<&str>,
    now_secs: u64,
    body: &[u8],
) -> Option<PluginError> {
    if status < 400 {
        return None;
    }
    let Request { at, origin, issue } = req;
    let wait = retry_after.and_then(|v| parse_retry_after(v, now_secs));
    let detail = match snippet(body) {
        s if s.is_empty() => String::new(),
        s => format!(": {s}"),
    };
    let error = match status {
        401 | 403 => {
            let why = if status == 401 {
                "401 Unauthorized: the API key is missing or wrong, or the REST API is \
                 off in Redmine (Administration → Settings → API)"
            } else {
                "403 Forbidden: the API key's user lacks the permission for this (a role \
                 in the project, or administrator rights)"
            };
            PluginError::permanent(format_args!(
                "Redmine at {origin} answered {at} with {why}. The daemon injects the key: \
                 fix the `credential = {{ kind = \"api_key\", header = \"X-Redmine-API-Key\", \
                 value = \"env:…\" }}` of the `[[plugins.NAME.http]]` grant for {origin} \
                 (NAME is this plugin's section in the daemon config)"
            ))
        }
        404 => match issue {
            Some(id) => PluginError::permanent(format_args!(
                "Redmine at {origin} has no issue #{id}, or its API user may not see it \
                 ({at} answered 404 Not Found)"
            )),
            None => PluginError::permanent(format_args!(
                "Redmine at {origin} answered {at} with 404 Not Found: check the setting \
                 `base_url` and the project"
            )),
        },
        422 => PluginError::permanent(format_args!(
            "Redmine at {origin} refused {at} (422 Unprocessable Entity): {}",
            validation_errors(body)
        )),
        429 => {
            let mut e = PluginError::retryable(format_args!(
                "Redmine at {origin} answered {at} with 429 Too Many Requests{detail}"
            ));
            e.retry_after_secs = wait;
            e
        }
        408 | 500..=599 => {
            let mut e = PluginError::retryable(format_args!(
                "Redmine at {origin} answered {at} with {status}{}{detail}",
                reason(status)
            ));
            e.retry_after_secs = wait;
            e
        }
        _ => PluginError::permanent(format_args!(
            "Redmine at {origin} answered {at} with {status}{detail}"
        )),
    };
    Some(error)
}

/// The reason phrase of the statuses worth retrying, with a leading space.
fn reason(status: u16) -> &'static str {
    match status {
        408 => " Request Timeout",
        500 => " Internal Server Error",
        502 => " Bad Gateway",
        503 => " Service Unavailable",
        504 => " Gateway Timeout",
        _ => "",
    }
}

/// Redmine's `{"errors": ["Subject cannot be blank", …]}` as one line, or
/// the start of the body when it is something else.
pub fn validation_errors(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<serde_json::Value>,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => match snippet(body) {
            s if s.is_empty() => "no reason given".to_owned(),
            s => s,
        },
    }
}

/// The start of a body on one line, for messages (at most 200 characters).
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > 200 {
        out = out.chars().take(200).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: &str = "http://127.0.0.1:3300";

    fn req(issue: Option<&str>) -> Request<'_> {
        Request {
            at: "PUT /issues/7.json",
            origin: O,
            issue,
        }
    }

    #[test]
    fn success_is_no_error() {
        for s in [200, 201, 204, 302] {
            assert!(status_error(req(None), s, None, 0, b"").is_none(), "{s}");
        }
    }

    #[test]
    fn refused_credentials_name_the_grant() {
        for s in [401, 403] {
            let e = status_error(req(None), s, None, 0, b"").unwrap();
            assert!(!e.retryable, "{s}");
            assert!(e.message.contains("[[plugins.NAME.http]]"), "{}", e.message);
            assert!(e.message.contains("credential"), "{}", e.message);
            assert!(e.message.contains("X-Redmine-API-Key"), "{}", e.message);
            assert!(e.message.contains(O), "{}", e.message);
        }
    }

    #[test]
    fn not_found_names_the_issue() {
        let e = status_error(req(Some("7")), 404, None, 0, b"").unwrap();
        assert!(!e.retryable);
        assert!(e.message.contains("no issue #7"), "{}", e.message);
        let e = status_error(req(None), 404, None, 0, b"").unwrap();
        assert!(e.message.contains("base_url"), "{}", e.message);
    }

    #[test]
    fn validation_errors_are_listed() {
        let body = br#"{"errors":["Subject cannot be blank","Tracker cannot be blank"]}"#;
        let e = status_error(req(None), 422, None, 0, body).unwrap();
        assert!(!e.retryable);
        assert!(
            e.message
                .ends_with("Subject cannot be blank; Tracker cannot be blank"),
            "{}",
            e.message
        );
        assert_eq!(validation_errors(b"<html>"), "<html>");
        assert_eq!(validation_errors(b""), "no reason given");
        assert_eq!(validation_errors(br#"{"errors":[]}"#), r#"{"errors":[]}"#);
        assert_eq!(snippet(b"a\r\n  b"), "a b");
        assert_eq!(snippet("x".repeat(300).as_bytes()).chars().count(), 201);
    }

    #[test]
    fn overload_and_server_errors_are_retryable() {
        let e = status_error(req(None), 429, Some("17"), 0, b"").unwrap();
        assert!(e.retryable);
        assert_eq!(e.retry_after_secs, Some(17));
        let e = status_error(
            req(None),
            429,
            Some("Thu, 01 Jan 1970 00:01:40 GMT"),
            40,
            b"",
        )
        .unwrap();
        assert_eq!(e.retry_after_secs, Some(60));
        let e = status_error(req(None), 429, None, 0, b"").unwrap();
        assert_eq!(e.retry_after_secs, None);
        for s in [408, 500, 502, 503, 504] {
            let e = status_error(req(None), s, None, 0, b"oops").unwrap();
            assert!(e.retryable, "{s}");
            assert!(e.message.contains("oops"), "{}", e.message);
        }
        let e = status_error(req(None), 503, Some("5"), 0, b"").unwrap();
        assert_eq!(e.retry_after_secs, Some(5));
    }

    #[test]
    fn other_client_errors_are_permanent() {
        for s in [400, 405, 409, 413] {
            assert!(!status_error(req(None), s, None, 0, b"").unwrap().retryable);
        }
    }
}
