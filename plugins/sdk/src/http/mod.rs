//! A small typed HTTP client over `wasi:http/outgoing-handler`.
//!
//! The host sends the request with its shared client, only to origins
//! granted to the plugin, and injects the credential bound to the origin, so
//! a plugin never handles tokens. Errors come back as [`PluginError`](crate::PluginError) with
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

mod client;
mod request;
mod response;
pub mod status;
mod transport;
pub mod url;

use std::time::{SystemTime, UNIX_EPOCH};

pub use self::client::Client;
pub use self::request::RequestBuilder;
pub use self::response::Response;
pub use self::url::Url;

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

fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    let name = name.to_ascii_lowercase();
    headers.retain(|(n, _)| *n != name);
    headers.push((name, value.to_owned()));
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
