//! [`Response`]: an HTTP answer, whatever its status, with its body as
//! bytes, text or JSON and the mapping of 4xx/5xx to a [`PluginError`].

use serde::de::DeserializeOwned;

use super::status::{self, Target};
use super::{Method, Url, now_ms};
use crate::PluginError;

/// An HTTP answer, whatever its status.
#[derive(Clone, Debug)]
pub struct Response {
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) status: u16,
    pub(super) headers: Vec<(String, Vec<u8>)>,
    pub(super) body: Vec<u8>,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of a header (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, PluginError> {
        std::str::from_utf8(&self.body).map_err(|_| {
            PluginError::permanent(format_args!(
                "{} {} answered {} with a body that is not UTF-8 text",
                self.method.as_str(),
                self.url.display_without_query(),
                self.status
            ))
        })
    }

    /// The body parsed as JSON into `T`; a clear, non-retryable error if it
    /// is not the JSON expected.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        parse_json(
            &self.body,
            self.method.as_str(),
            &self.url.display_without_query(),
            self.status,
        )
    }

    /// `Ok(self)` for 1xx–3xx; the mapped error for 4xx and 5xx.
    pub fn error_for_status(self) -> Result<Self, PluginError> {
        let url = self.url.display_without_query();
        let origin = self.url.origin();
        let target = Target {
            method: self.method.as_str(),
            url: &url,
            origin: &origin,
        };
        match status::status_error(
            target,
            self.status,
            self.header("retry-after"),
            now_ms() / 1000,
            &self.body,
        ) {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }
}

fn parse_json<T: DeserializeOwned>(
    body: &[u8],
    method: &str,
    url: &str,
    status: u16,
) -> Result<T, PluginError> {
    serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_data() {
            "is not the JSON expected"
        } else {
            "is not valid JSON"
        };
        PluginError::permanent(format_args!(
            "{method} {url} answered {status} with a body that {what} ({e}); it starts: {}",
            status::snippet(body)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_json_is_a_clear_permanent_error() {
        #[derive(serde::Deserialize, Debug)]
        struct Issue {
            #[allow(dead_code)]
            id: u64,
        }
        let e = parse_json::<Issue>(b"<html>oops</html>", "GET", "https://h/x", 200).unwrap_err();
        assert!(!e.retryable);
        assert!(e.message.contains("is not valid JSON"), "{}", e.message);
        assert!(e.message.contains("<html>oops</html>"), "{}", e.message);
        let e = parse_json::<Issue>(br#"{"id":"x"}"#, "GET", "https://h/x", 200).unwrap_err();
        assert!(
            e.message.contains("is not the JSON expected"),
            "{}",
            e.message
        );
        assert_eq!(
            parse_json::<Issue>(br#"{"id":7}"#, "GET", "u", 200)
                .unwrap()
                .id,
            7
        );
    }
}
