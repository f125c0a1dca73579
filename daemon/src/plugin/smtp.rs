//! The host `smtp` interface: a plugin hands over an envelope and a finished
//! RFC 5322 message; the host sends it to the relay granted to that plugin,
//! and to no other server.
//!
//! One connection per message (mail volumes are small, and a fresh
//! connection picks up a rotated password). The relay's answer decides
//! retries: a 4xx or a lost connection can be retried, a 5xx cannot.
//!
//! The password is the host's: the plugin never sees it, and it is cut out
//! of every error text (logged or returned) should a relay echo it.

use std::time::{Duration, Instant};

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::bindings::WitError;
use super::config::{SmtpGrant, SmtpTls};

/// TLS for `grant`'s relay: the system's roots plus those of its `ca_file`;
/// the certificate must name `grant.host`.
fn tls_parameters(grant: &SmtpGrant) -> Result<TlsParameters, String> {
    let relay = &grant.host;
    let mut tls = TlsParameters::builder(relay.clone());
    if let Some(path) = &grant.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            format!(
                "relay {relay}: cannot read `ca_file` {}: {e}",
                path.display()
            )
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            format!(
                "relay {relay}: `ca_file` {} is not PEM certificates: {e}",
                path.display()
            )
        })?;
        tls = tls.add_root_certificate(cert);
    }
    tls.build_rustls()
        .map_err(|e| format!("relay {relay}: TLS set-up failed: {e}"))
}

/// Sends one message through `grant`'s relay; returns the relay's reply.
pub async fn send(
    grant: &SmtpGrant,
    plugin: &str,
    instance: &str,
    from: &str,
    to: &[String],
    message: &[u8],
    deadline: Instant,
) -> Result<String, WitError> {
    let fail = |message: String, retryable: bool| WitError {
        message,
        retryable,
        retry_after_secs: None,
    };
    let from: Address = from
        .parse()
        .map_err(|e| fail(format!("sender `{from}` is not an address: {e}"), false))?;
    let mut rcpt = Vec::with_capacity(to.len());
    for r in to {
        rcpt.push(
            r.parse::<Address>()
                .map_err(|e| fail(format!("recipient `{r}` is not an address: {e}"), false))?,
        );
    }
    let envelope = Envelope::new(Some(from), rcpt)
        .map_err(|e| fail(format!("invalid envelope: {e}"), false))?;

    let port = grant.port.unwrap_or(grant.tls.default_port());
    let plain = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&grant.host);
    let builder = match grant.tls {
        SmtpTls::None => plain,
        SmtpTls::Tls => plain.tls(Tls::Wrapper(
            tls_parameters(grant).map_err(|m| fail(m, false))?,
        )),
        SmtpTls::Starttls => plain.tls(Tls::Required(
            tls_parameters(grant).map_err(|m| fail(m, false))?,
        )),
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    let mut builder = builder
        .port(port)
        .timeout(Some(remaining.min(Duration::from_secs(60))));
    let mut password = String::new();
    if let Some(user) = &grant.username {
        if let Some(r) = &grant.password {
            password = r
                .read()
                .map_err(|e| fail(format!("SMTP password: {e}"), false))?;
        }
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let redact = |text: String| {
        if password.is_empty() {
            text
        } else {
            text.replace(&password, super::state::REDACTED)
        }
    };
    let transport = builder.build();

    let started = Instant::now();
    let result = transport.send_raw(&envelope, message).await;
    let ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(response) => {
            let reply = format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            );
            tracing::info!(
                target: "vakt::audit",
                plugin,
                instance,
                relay = %format_args!("{}:{port}", grant.host),
                recipients = to.len(),
                bytes = message.len(),
                code = %response.code(),
                duration_ms = ms,
                "plugin smtp send"
            );
            Ok(reply)
        }
        Err(e) => {
            let error = redact(e.to_string());
            tracing::warn!(
                target: "vakt::audit",
                plugin,
                instance,
                relay = %format_args!("{}:{port}", grant.host),
                recipients = to.len(),
                duration_ms = ms,
                error = %error,
                "plugin smtp send failed"
            );
            let retryable = !e.is_permanent() && !e.is_client();
            let code = e.status().map(|c| c.to_string()).unwrap_or_default();
            let message = match (&grant.username, code.as_str()) {
                // 535: authentication credentials invalid; 534/538: the
                // mechanism or the connection is not good enough for them.
                (Some(user), "535" | "534" | "538") => format!(
                    "relay {}:{port} did not accept the credentials of user `{user}`: {error}",
                    grant.host
                ),
                _ => format!("relay {}:{port} refused the message: {error}", grant.host),
            };
            Err(fail(message, retryable))
        }
    }
}
