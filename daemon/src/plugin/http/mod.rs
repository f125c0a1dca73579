//! Outgoing HTTP for plugins: `wasi:http` on the guest side, one shared
//! reqwest client on the host side.
//!
//! wasmtime-wasi-http parses the guest's request and hands it to
//! [`HttpHooks::send_request`]; we do the rest:
//! 1. the origin must be granted and its addresses allowed (`policy.rs`);
//! 2. the host's credential for that origin is added (`credentials.rs`);
//! 3. the request goes out through the shared client (rustls, proxies from
//!    the environment, connection pooling), which does not follow redirects:
//!    we follow them here, at most [`MAX_REDIRECTS`], and every hop is checked
//!    again as in 1 (credentials are those of the hop's origin; the plugin's
//!    own `Authorization` and `Cookie` headers are dropped when the origin
//!    changes);
//! 4. the response body is read up to the plugin's cap, or refused;
//! 5. every request is logged on target `vakt::audit`: plugin, instance,
//!    method, origin, status, duration. Never a header value or a body.
//!
//! A refusal is returned to the guest as `http-request-denied` (origin not
//! granted), `destination-ip-prohibited` (address not allowed) or the
//! matching size error, and remembered in the call's [`Violations`], so
//! the step's error says what the host refused even if the plugin's own
//! message does not.

mod credentials;
pub mod policy;

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use self::credentials::Credentials;
use self::policy::{GuardedResolver, HttpPolicy, Refusal, check_addresses};
use super::config::Origin;

/// Redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// What the host refused during one call, for the step's error.
pub type Violations = Arc<Mutex<Vec<String>>>;

/// The shared HTTP client and the credential cache: one per plugin host.
pub struct Egress {
    client: reqwest::Client,
    credentials: Credentials,
}

impl Egress {
    /// `private_ok`: names the resolver lets resolve to non-public addresses
    /// (origins granted with `private_network`, OAuth token endpoints).
    pub fn new(mut private_ok: HashSet<String>) -> Result<Egress, String> {
        private_ok.extend(policy::proxy_hosts());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver {
                private_ok: Arc::new(private_ok),
            }))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("vakt/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Egress {
            client,
            credentials: Credentials::default(),
        })
    }
}

/// The `wasi:http` hooks of one call (one store).
pub struct HttpHooks {
    pub egress: Arc<Egress>,
    pub policy: Arc<HttpPolicy>,
    pub instance: Arc<str>,
    pub deadline: Instant,
    pub violations: Violations,
}

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        let flight = Flight {
            egress: self.egress.clone(),
            policy: self.policy.clone(),
            instance: self.instance.clone(),
            deadline: self.deadline,
            violations: self.violations.clone(),
        };
        Box::new(async move {
            let response = flight.send(request).await?;
            let done: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

/// One request on its way out (owned, as it runs on a spawned task).
struct Flight {
    egress: Arc<Egress>,
    policy: Arc<HttpPolicy>,
    instance: Arc<str>,
    deadline: Instant,
    violations: Violations,
}

impl Flight {
    fn deny(&self, method: &http::Method, what: String) -> HttpError {
        tracing::warn!(
            target: "vakt::audit",
            plugin = %self.policy.plugin,
            instance = %self.instance,
            method = %method,
            refused = %what,
            "plugin http request refused"
        );
        self.violations.lock().unwrap().push(what);
        HttpError::HttpRequestDenied
    }

    async fn send(
        &self,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let (parts, body) = request.into_parts();
        let mut method = parts.method;
        let cap = self.policy.max_body;
        let mut body: Bytes = match Limited::new(body, cap as usize).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                let what = format!("a request body larger than {} bytes", cap);
                self.deny(&method, what);
                return Err(HttpError::HttpRequestBodySize(Some(cap)));
            }
        };
        let mut url = reqwest::Url::parse(&parts.uri.to_string())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let mut headers = parts.headers;
        for h in [
            header::HOST,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
        ] {
            headers.remove(h);
        }

        for hop in 0..=MAX_REDIRECTS {
            let Some(origin) = Origin::of(&url) else {
                return Err(self.deny(&method, format!("`{}`: only http and https", url.scheme())));
            };
            let Some(grant) = self.policy.grant(&origin) else {
                let what = format!("{origin} is not granted to plugin `{}`", self.policy.plugin);
                return Err(self.deny(&method, what));
            };
            match check_addresses(&origin, grant).await {
                Ok(()) => {}
                Err(Refusal::Denied(what)) => {
                    self.deny(&method, what);
                    return Err(HttpError::DestinationIpProhibited);
                }
                Err(Refusal::Dns(what)) => {
                    tracing::warn!(plugin = %self.policy.plugin, instance = %self.instance, "{what}");
                    return Err(HttpError::DnsError {
                        rcode: Some(what),
                        info_code: None,
                    });
                }
            }
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(HttpError::ConnectionTimeout);
            }
            let mut rb = self
                .egress
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone())
                .body(body.clone())
                .timeout(remaining);
            if let Some(credential) = &grant.credential {
                match self
                    .egress
                    .credentials
                    .header(&self.egress.client, credential)
                    .await
                {
                    Ok((name, value)) => rb = rb.header(name, value),
                    Err(e) => {
                        tracing::warn!(
                            plugin = %self.policy.plugin,
                            instance = %self.instance,
                            origin = %origin,
                            "credential unavailable: {}",
                            e.message
                        );
                        if !e.retryable {
                            self.violations
                                .lock()
                                .unwrap()
                                .push(format!("no credential for {origin}: {}", e.message));
                        }
                        return Err(HttpError::InternalError(Some(format!(
                            "the host has no credential for {origin}"
                        ))));
                    }
                }
            }
            let started = Instant::now();
            let result = rb.send().await;
            let ms = started.elapsed().as_millis() as u64;
            let response = match result {
                Ok(r) => r,
                Err(e) => {
                    let mapped = map_error(&e);
                    tracing::info!(
                        target: "vakt::audit",
                        plugin = %self.policy.plugin,
                        instance = %self.instance,
                        method = %method,
                        origin = %origin,
                        error = %e.without_url(),
                        duration_ms = ms,
                        "plugin http request failed"
                    );
                    return Err(mapped);
                }
            };
            let status = response.status();
            tracing::info!(
                target: "vakt::audit",
                plugin = %self.policy.plugin,
                instance = %self.instance,
                method = %method,
                origin = %origin,
                status = status.as_u16(),
                duration_ms = ms,
                "plugin http request"
            );
            let location = response.headers().get(header::LOCATION).cloned();
            if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
                && let Some(location) = location
            {
                if hop == MAX_REDIRECTS {
                    let what =
                        format!("more than {MAX_REDIRECTS} redirects, the last from {origin}");
                    self.deny(&method, what);
                    return Err(HttpError::LoopDetected);
                }
                let next = location
                    .to_str()
                    .ok()
                    .and_then(|l| url.join(l).ok())
                    .ok_or(HttpError::HttpProtocolError)?;
                let code = status.as_u16();
                if code == 303 && method != http::Method::HEAD
                    || (code == 301 || code == 302) && method == http::Method::POST
                {
                    method = http::Method::GET;
                    body = Bytes::new();
                    headers.remove(header::CONTENT_TYPE);
                }
                if Origin::of(&next) != Some(origin) {
                    for h in [
                        header::AUTHORIZATION,
                        header::COOKIE,
                        header::PROXY_AUTHORIZATION,
                    ] {
                        headers.remove(h);
                    }
                }
                url = next;
                continue;
            }
            return self.read(response, &method, &origin).await;
        }
        unreachable!("the loop returns by the last hop")
    }

    /// Reads the body up to the cap and builds the guest's response.
    async fn read(
        &self,
        mut response: reqwest::Response,
        method: &http::Method,
        origin: &Origin,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let cap = self.policy.max_body;
        let too_big = |flight: &Flight| {
            let what = format!(
                "the response from {origin} is larger than the {} byte limit",
                cap
            );
            flight.deny(method, what);
            HttpError::HttpResponseBodySize(Some(cap))
        };
        if response.content_length().is_some_and(|n| n > cap) {
            return Err(too_big(self));
        }
        let mut builder = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            if name != header::TRANSFER_ENCODING && name != header::CONTENT_LENGTH {
                builder = builder.header(name, value);
            }
        }
        let mut buf = BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if (buf.len() + chunk.len()) as u64 > cap {
                        return Err(too_big(self));
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(map_error(&e)),
            }
        }
        let body = Full::new(buf.freeze())
            .map_err(|never: Infallible| match never {})
            .boxed_unsync();
        builder
            .body(body)
            .map_err(|e| HttpError::InternalError(Some(e.to_string())))
    }
}

fn map_error(e: &reqwest::Error) -> HttpError {
    if e.is_timeout() {
        HttpError::ConnectionTimeout
    } else if e.is_connect() {
        HttpError::ConnectionRefused
    } else if e.is_body() || e.is_decode() {
        HttpError::HttpResponseIncomplete
    } else {
        HttpError::HttpProtocolError
    }
}
