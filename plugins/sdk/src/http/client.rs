//! [`Client`]: the settings shared by requests (base URL, default headers,
//! timeout, deadline, response size cap), and the entry points that start a
//! [`RequestBuilder`].

use std::time::Duration;

use super::{DEFAULT_MAX_RESPONSE_BYTES, Method, RequestBuilder, Url, set_header};
use crate::{CallContext, PluginError};

/// Settings shared by requests: a base URL, default headers, a deadline.
#[derive(Clone, Debug)]
pub struct Client {
    pub(super) base: Option<Url>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) timeout: Option<Duration>,
    pub(super) deadline_ms: u64,
    pub(super) max_response_bytes: usize,
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
