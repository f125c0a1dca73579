//! A blocking HTTP client for the tests, over reqwest on one shared tokio
//! runtime (`block_on` may be called from many test threads at once).
//!
//! No proxy (a proxy from the environment must never see loopback test
//! traffic), no idle connections kept (after a `kill -9` a pooled connection
//! would be stale), a 30 s timeout per request.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("test-http")
            .build()
            .expect("a tokio runtime for the test client")
    })
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        // reqwest is built without a rustls provider: install vakt's (ring).
        vakt::plugin::init();
        reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client")
    })
}

/// A request being built.
#[derive(Debug, Clone)]
pub struct Req {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<(Vec<u8>, String)>,
}

/// `GET url`.
pub fn get(url: impl Into<String>) -> Req {
    Req::new(Method::GET, url)
}

/// `POST url`.
pub fn post(url: impl Into<String>) -> Req {
    Req::new(Method::POST, url)
}

impl Req {
    pub fn new(method: Method, url: impl Into<String>) -> Req {
        Req {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Req {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A JSON body.
    pub fn json(self, body: &Value) -> Req {
        self.raw(body.to_string().into_bytes(), "application/json")
    }

    /// Any body with its content type (malformed JSON, oversized bodies).
    pub fn raw(mut self, body: Vec<u8>, content_type: &str) -> Req {
        self.body = Some((body, content_type.to_owned()));
        self
    }

    /// An `application/x-www-form-urlencoded` body (what a page's form posts).
    pub fn form(self, fields: &[(&str, &str)]) -> Req {
        let mut body = String::new();
        for (k, v) in fields {
            if !body.is_empty() {
                body.push('&');
            }
            body.push_str(&urlencode(k));
            body.push('=');
            body.push_str(&urlencode(v));
        }
        self.raw(body.into_bytes(), "application/x-www-form-urlencoded")
    }

    /// Sends; `Err` only when no response came (refused, reset, timeout).
    pub fn try_send(&self) -> Result<Resp, String> {
        let mut rb = client().request(self.method.clone(), &self.url);
        for (k, v) in &self.headers {
            rb = rb.header(k, v);
        }
        if let Some((body, ctype)) = &self.body {
            rb = rb.header("content-type", ctype).body(body.clone());
        }
        let what = format!("{} {}", self.method, self.url);
        runtime().block_on(async move {
            let resp = rb.send().await.map_err(|e| format!("{what}: {e:#}"))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| format!("{what}: reading the body: {e:#}"))?;
            Ok(Resp {
                what,
                status,
                headers,
                text: String::from_utf8_lossy(&bytes).into_owned(),
            })
        })
    }

    /// Sends; panics when no response came.
    pub fn send(&self) -> Resp {
        self.try_send()
            .unwrap_or_else(|e| panic!("no response: {e}"))
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A response, read whole.
#[derive(Clone)]
pub struct Resp {
    /// `METHOD url`, for messages.
    pub what: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    /// The body as JSON; panics (showing it) when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{self:?} is not JSON: {e}"))
    }

    /// Asserts the status; returns the response for chaining.
    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(self.status, status, "unexpected status: {self:?}");
        self
    }

    /// Asserts an API error: the status and `{"error": {"code", "message"}}`
    /// with this code; returns the message.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "unexpected status: {self:?}");
        let v = self.json();
        let err = v
            .get("error")
            .unwrap_or_else(|| panic!("no `error` object: {self:?}"));
        assert_eq!(err["code"], code, "unexpected error code: {self:?}");
        let message = err["message"]
            .as_str()
            .unwrap_or_else(|| panic!("the error has no message: {self:?}"));
        assert!(!message.is_empty(), "empty error message: {self:?}");
        message.to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl fmt::Debug for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: String = self.text.chars().take(2000).collect();
        let more = if self.text.len() > text.len() {
            " …"
        } else {
            ""
        };
        write!(f, "{} → {}: {text}{more}", self.what, self.status)
    }
}
