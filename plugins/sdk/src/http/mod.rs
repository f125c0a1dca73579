//! A small typed HTTP client over `wasi:http/outgoing-handler`.
//!
//! The host sends the request with its shared client, only to origins
//! granted to the plugin, and injects the credential bound to the origin, so
//! a plugin never handles tokens. Errors come back as [`PluginError`] with
//! `retryable` set right (see [`status`]).
//!
//! ```ignore
//! let api = Client::new()
//!     .base_url(&settings::require("base-url")?)?
//!     .deadline(ctx);
//! let issue: serde_json::Value = api
//!     .post("issues.json")
//!     .json(&serde_json::json!({"issue": {"subject": "Hej"}}))?
//!     .send()?
//!     .error_for_status()?
//!     .json()?;
//! ```

pub mod status;
pub mod url;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

use self::status::Target;
pub use self::url::Url;
use crate::{CallContext, PluginError};

/// Responses larger than this fail unless [`Client::max_response_bytes`]
/// says otherwise (the host has its own cap too).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// Settings shared by requests: a base URL, default headers, a deadline.
#[derive(Clone, Debug)]
pub struct Client {
    base: Option<Url>,
    headers: Vec<(String, String)>,
    timeout: Option<Duration>,
    deadline_ms: u64,
    max_response_bytes: usize,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    pub fn new() -> Self {
        Client {
            base: None,
            headers: vec![("accept".into(), "application/json".into())],
            timeout: None,
            deadline_ms: 0,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// Relative paths in requests are resolved against `url`
    /// (`https://h/api/` + `users` = `https://h/api/users`).
    pub fn base_url(mut self, url: &str) -> Result<Self, PluginError> {
        self.base = Some(Url::parse(url)?);
        Ok(self)
    }

    /// A header sent with every request (replaces one of the same name).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        set_header(&mut self.headers, name, value);
        self
    }

    /// A timeout for connecting, for the first byte and between bytes.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Fails requests that would start after the call's deadline, and bounds
    /// each request's timeouts by the time left.
    pub fn deadline(mut self, ctx: &CallContext) -> Self {
        self.deadline_ms = ctx.deadline_ms;
        self
    }

    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    pub fn request(&self, method: Method, url: &str) -> RequestBuilder<'_> {
        let url = match &self.base {
            Some(base) => base.join(url),
            None => Url::parse(url),
        };
        RequestBuilder {
            client: self,
            method,
            url,
            headers: self.headers.clone(),
            body: None,
        }
    }

    pub fn get(&self, url: &str) -> RequestBuilder<'_> {
        self.request(Method::Get, url)
    }
    pub fn post(&self, url: &str) -> RequestBuilder<'_> {
        self.request(Method::Post, url)
    }
    pub fn put(&self, url: &str) -> RequestBuilder<'_> {
        self.request(Method::Put, url)
    }
    pub fn patch(&self, url: &str) -> RequestBuilder<'_> {
        self.request(Method::Patch, url)
    }
    pub fn delete(&self, url: &str) -> RequestBuilder<'_> {
        self.request(Method::Delete, url)
    }
}

/// One request being built; [`RequestBuilder::send`] sends it.
#[derive(Debug)]
pub struct RequestBuilder<'c> {
    client: &'c Client,
    method: Method,
    url: Result<Url, PluginError>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
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

fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    let name = name.to_ascii_lowercase();
    headers.retain(|(n, _)| *n != name);
    headers.push((name, value.to_owned()));
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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An HTTP answer, whatever its status.
#[derive(Clone, Debug)]
pub struct Response {
    method: Method,
    url: Url,
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
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

/// The part that talks to the host (`wasi:http`).
mod transport {
    use std::time::Duration;

    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest,
        RequestOptions, Scheme,
    };
    use wasip2::io::streams::StreamError;

    use super::status::{Target, transport_error};
    use super::{Method, Url};
    use crate::PluginError;

    pub(super) struct Outgoing<'a> {
        pub method: Method,
        pub url: &'a Url,
        pub headers: &'a [(String, String)],
        pub body: Option<&'a [u8]>,
        pub timeout: Option<Duration>,
        pub max_response_bytes: usize,
    }

    pub(super) struct Incoming {
        pub status: u16,
        pub headers: Vec<(String, Vec<u8>)>,
        pub body: Vec<u8>,
    }

    pub(super) fn send(req: &Outgoing<'_>) -> Result<Incoming, PluginError> {
        let url_text = req.url.display_without_query();
        let origin = req.url.origin();
        let target = Target {
            method: req.method.as_str(),
            url: &url_text,
            origin: &origin,
        };
        let at = format!("{} {}", req.method.as_str(), url_text);
        let failed = |code: &ErrorCode| transport_error(target, code);
        let bug = |what: &str| PluginError::permanent(format_args!("{at}: {what}"));

        let entries: Vec<(String, Vec<u8>)> = req
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
            .collect();
        let fields = Fields::from_list(&entries)
            .map_err(|e| bug(&format!("a request header was refused ({e:?}); headers that carry credentials are set by the daemon")))?;
        let request = OutgoingRequest::new(fields);
        request
            .set_method(&match req.method {
                Method::Get => WasiMethod::Get,
                Method::Post => WasiMethod::Post,
                Method::Put => WasiMethod::Put,
                Method::Patch => WasiMethod::Patch,
                Method::Delete => WasiMethod::Delete,
            })
            .map_err(|()| bug("invalid method"))?;
        let scheme = if req.url.scheme == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        };
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| bug("invalid scheme"))?;
        request
            .set_authority(Some(&req.url.authority))
            .map_err(|()| bug("invalid host"))?;
        request
            .set_path_with_query(Some(&req.url.path_and_query))
            .map_err(|()| bug("invalid path"))?;

        let options = req.timeout.map(|t| {
            let options = RequestOptions::new();
            let ns = Some(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
            // A host may not support a timeout; the call's deadline still holds.
            let _ = options.set_connect_timeout(ns);
            let _ = options.set_first_byte_timeout(ns);
            let _ = options.set_between_bytes_timeout(ns);
            options
        });

        let outgoing_body = request
            .body()
            .map_err(|()| bug("request body already taken"))?;
        let future = outgoing_handler::handle(request, options).map_err(|e| failed(&e))?;
        {
            let stream = outgoing_body
                .write()
                .map_err(|()| bug("request body stream already taken"))?;
            for chunk in req.body.unwrap_or_default().chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| match e {
                        StreamError::LastOperationFailed(e) => {
                            match wasip2::http::types::http_error_code(&e) {
                                Some(code) => failed(&code),
                                None => PluginError::retryable(format_args!(
                                    "{at}: sending the body failed: {}",
                                    e.to_debug_string()
                                )),
                            }
                        }
                        StreamError::Closed => PluginError::retryable(format_args!(
                            "{at}: the connection closed while sending the body"
                        )),
                    })?;
            }
            // The stream is a child of the body: drop it before finishing.
        }
        OutgoingBody::finish(outgoing_body, None).map_err(|e| failed(&e))?;

        let response = {
            let pollable = future.subscribe();
            pollable.block();
            match future.get() {
                Some(Ok(Ok(response))) => response,
                Some(Ok(Err(code))) => return Err(failed(&code)),
                Some(Err(())) | None => return Err(bug("the response was already taken")),
            }
        };
        let status = response.status();
        let headers = response.headers().entries();
        let incoming = response
            .consume()
            .map_err(|()| bug("response body already taken"))?;
        let body = read_body(&incoming, req.max_response_bytes, &at, &failed)?;
        let _trailers = IncomingBody::finish(incoming);
        Ok(Incoming {
            status,
            headers,
            body,
        })
    }

    fn read_body(
        incoming: &IncomingBody,
        max: usize,
        at: &str,
        failed: &dyn Fn(&ErrorCode) -> PluginError,
    ) -> Result<Vec<u8>, PluginError> {
        let stream = incoming.stream().map_err(|()| {
            PluginError::permanent(format_args!("{at}: response body stream already taken"))
        })?;
        let mut body = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    if body.len() + chunk.len() > max {
                        return Err(PluginError::permanent(format_args!(
                            "{at}: the response is larger than {max} bytes"
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(match wasip2::http::types::http_error_code(&e) {
                        Some(code) => failed(&code),
                        None => PluginError::retryable(format_args!(
                            "{at}: reading the response failed: {}",
                            e.to_debug_string()
                        )),
                    });
                }
            }
        }
        Ok(body)
    }
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
