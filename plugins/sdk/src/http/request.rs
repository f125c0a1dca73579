//! [`RequestBuilder`]: one request being built (URL, query, headers, body)
//! and sent through the host, with its timeout bounded by the call's deadline.

use std::time::Duration;

use serde::Serialize;

use super::{Client, Method, Response, Url, now_ms, set_header, transport};
use crate::PluginError;

/// One request being built; [`RequestBuilder::send`] sends it.
#[derive(Debug)]
pub struct RequestBuilder<'c> {
    pub(super) client: &'c Client,
    pub(super) method: Method,
    pub(super) url: Result<Url, PluginError>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Option<Vec<u8>>,
}

impl RequestBuilder<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        set_header(&mut self.headers, name, value);
        self
    }

    /// Appends `key=value` to the query string, percent-encoded.
    pub fn query(mut self, key: &str, value: &str) -> Self {
        if let Ok(url) = &mut self.url {
            url.append_query(key, value);
        }
        self
    }

    /// A raw body with its content type.
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        set_header(&mut self.headers, "content-type", content_type);
        self.body = Some(body.into());
        self
    }

    /// A JSON body (`content-type: application/json`).
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<Self, PluginError> {
        let body = serde_json::to_vec(value).map_err(|e| {
            PluginError::permanent(format_args!("cannot encode the request body as JSON: {e}"))
        })?;
        Ok(self.body("application/json", body))
    }

    /// Sends the request. Fails only if no HTTP answer came back; check the
    /// status with [`Response::error_for_status`].
    pub fn send(self) -> Result<Response, PluginError> {
        let url = self.url?;
        let timeout = effective_timeout(self.client.timeout, self.client.deadline_ms, now_ms())
            .map_err(|()| {
                PluginError::retryable(format_args!(
                    "{} {}: the step's deadline passed before the request was sent",
                    self.method.as_str(),
                    url.display_without_query()
                ))
            })?;
        let raw = transport::send(&transport::Outgoing {
            method: self.method,
            url: &url,
            headers: &self.headers,
            body: self.body.as_deref(),
            timeout,
            max_response_bytes: self.client.max_response_bytes,
        })?;
        Ok(Response {
            method: self.method,
            url,
            status: raw.status,
            headers: raw.headers,
            body: raw.body,
        })
    }
}

/// The timeout for a request: the client's, bounded by what is left before
/// the deadline (`0` = none). `Err` when the deadline has passed.
fn effective_timeout(
    timeout: Option<Duration>,
    deadline_ms: u64,
    now_ms: u64,
) -> Result<Option<Duration>, ()> {
    if deadline_ms == 0 {
        return Ok(timeout);
    }
    let left = deadline_ms
        .checked_sub(now_ms)
        .filter(|&l| l > 0)
        .ok_or(())?;
    let left = Duration::from_millis(left);
    Ok(Some(timeout.map_or(left, |t| t.min(left))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_bound_timeouts() {
        assert_eq!(effective_timeout(None, 0, 1000), Ok(None));
        assert_eq!(
            effective_timeout(None, 5000, 1000),
            Ok(Some(Duration::from_secs(4)))
        );
        assert_eq!(
            effective_timeout(Some(Duration::from_secs(1)), 5000, 1000),
            Ok(Some(Duration::from_secs(1)))
        );
        assert_eq!(effective_timeout(None, 1000, 1000), Err(()));
        assert_eq!(effective_timeout(None, 1000, 2000), Err(()));
    }

    #[test]
    fn builders_resolve_urls_and_headers() {
        let c = Client::new()
            .base_url("https://h/api/")
            .unwrap()
            .header("X-Trace", "1");
        let r = c.get("users").query("q", "å").header("x-trace", "2");
        let url = r.url.as_ref().unwrap();
        assert_eq!(url.path_and_query, "/api/users?q=%C3%A5");
        assert_eq!(
            r.headers,
            vec![
                ("accept".to_owned(), "application/json".to_owned()),
                ("x-trace".to_owned(), "2".to_owned())
            ]
        );
        let r = c.post("x").json(&serde_json::json!({"a": 1})).unwrap();
        assert_eq!(r.body.as_deref(), Some(&br#"{"a":1}"#[..]));
        assert!(
            r.headers
                .contains(&("content-type".to_owned(), "application/json".to_owned()))
        );
    }
}
