//! Credentials the host adds to requests to the origin they are bound to.
//!
//! The plugin never sees them: the header is added after the plugin's
//! request has left the sandbox, marked sensitive (so `Debug` output hides
//! it) and never logged. Secret values are read from their `env:`/`file:`
//! reference at use, so a rotated file is picked up without a restart.
//! OAuth 2.0 client-credentials tokens are cached until a minute before
//! they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue};

use crate::plugin::config::Credential;

/// A failure to obtain a credential; `retryable` when the token endpoint
/// might answer later.
#[derive(Debug)]
pub struct CredentialError {
    pub message: String,
    pub retryable: bool,
}

fn fatal(message: String) -> CredentialError {
    CredentialError {
        message,
        retryable: false,
    }
}

/// Token cache for OAuth 2.0 client credentials.
#[derive(Default)]
pub struct Credentials {
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl Credentials {
    /// The header to add for `credential`.
    pub async fn header(
        &self,
        client: &reqwest::Client,
        credential: &Credential,
    ) -> Result<(HeaderName, HeaderValue), CredentialError> {
        let (name, value) = match credential {
            Credential::Bearer { token, scheme } => (
                http::header::AUTHORIZATION,
                format!(
                    "{} {}",
                    scheme.as_deref().unwrap_or("Bearer"),
                    token.read().map_err(fatal)?
                ),
            ),
            Credential::Basic { username, password } => {
                let password = password.read().map_err(fatal)?;
                (
                    http::header::AUTHORIZATION,
                    format!("Basic {}", base64(&format!("{username}:{password}"))),
                )
            }
            Credential::ApiKey { header, value } => (
                HeaderName::try_from(header.as_str())
                    .map_err(|_| fatal(format!("`{header}` is not a header name")))?,
                value.read().map_err(fatal)?,
            ),
            Credential::Oauth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
            } => {
                let key = format!(
                    "{token_url}\n{client_id}\n{}",
                    scope.as_deref().unwrap_or("")
                );
                let cached = self.tokens.lock().unwrap().get(&key).cloned();
                let token = match cached {
                    Some((token, until)) if Instant::now() < until => token,
                    _ => {
                        let secret = client_secret.read().map_err(fatal)?;
                        let (token, ttl) =
                            fetch_token(client, token_url, client_id, &secret, scope.as_deref())
                                .await?;
                        let until = Instant::now() + ttl.saturating_sub(Duration::from_secs(60));
                        self.tokens
                            .lock()
                            .unwrap()
                            .insert(key, (token.clone(), until));
                        token
                    }
                };
                (http::header::AUTHORIZATION, format!("Bearer {token}"))
            }
        };
        let mut value = HeaderValue::try_from(value).map_err(|_| {
            fatal(format!(
                "the credential for header `{name}` is not a valid header value"
            ))
        })?;
        value.set_sensitive(true);
        Ok((name, value))
    }
}

async fn fetch_token(
    client: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    secret: &str,
    scope: Option<&str>,
) -> Result<(String, Duration), CredentialError> {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let response = client
        .post(token_url)
        .form(&form)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| CredentialError {
            message: format!("OAuth token endpoint {token_url}: {}", e.without_url()),
            retryable: true,
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(CredentialError {
            message: format!("OAuth token endpoint {token_url} answered {status}"),
            retryable: status.is_server_error() || status.as_u16() == 429,
        });
    }
    #[derive(serde::Deserialize)]
    struct Token {
        access_token: String,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let token: Token = response.json().await.map_err(|e| CredentialError {
        message: format!(
            "OAuth token endpoint {token_url}: unreadable answer: {}",
            e.without_url()
        ),
        retryable: true,
    })?;
    Ok((
        token.access_token,
        Duration::from_secs(token.expires_in.unwrap_or(300)),
    ))
}

/// Standard base64 with padding (for `Basic`).
fn base64(input: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = input.as_bytes();
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = match chunk.len() {
            3 => (chunk[0] as u32) << 16 | (chunk[1] as u32) << 8 | chunk[2] as u32,
            2 => (chunk[0] as u32) << 16 | (chunk[1] as u32) << 8,
            _ => (chunk[0] as u32) << 16,
        };
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::base64(""), "");
        assert_eq!(super::base64("f"), "Zg==");
        assert_eq!(super::base64("fo"), "Zm8=");
        assert_eq!(super::base64("foo"), "Zm9v");
        assert_eq!(
            super::base64("Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
