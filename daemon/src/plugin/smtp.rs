//! The host `smtp` interface: a plugin hands over an envelope and a finished
//! RFC 5322 message; the host sends it to the relay granted to that plugin,
//! and to no other server.
//!
//! One connection per message (mail volumes are small, and a fresh
//! connection picks up a rotated password). The relay's answer decides
//! retries: a 4xx or a lost connection can be retried, a 5xx cannot.

use std::time::{Duration, Instant};

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::bindings::WitError;
use super::config::{SmtpGrant, SmtpTls};

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
    let builder = match grant.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&grant.host),
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&grant.host)
            .map_err(|e| fail(format!("relay {}: {e}", grant.host), false))?,
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&grant.host)
            .map_err(|e| fail(format!("relay {}: {e}", grant.host), false))?,
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    let mut builder = builder
        .port(port)
        .timeout(Some(remaining.min(Duration::from_secs(60))));
    if let Some(user) = &grant.username {
        let password = match &grant.password {
            Some(r) => r
                .read()
                .map_err(|e| fail(format!("SMTP password: {e}"), false))?,
            None => String::new(),
        };
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
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
            tracing::warn!(
                target: "vakt::audit",
                plugin,
                instance,
                relay = %format_args!("{}:{port}", grant.host),
                recipients = to.len(),
                duration_ms = ms,
                error = %e,
                "plugin smtp send failed"
            );
            let retryable = !e.is_permanent() && !e.is_client();
            Err(fail(
                format!("relay {}:{port} refused the message: {e}", grant.host),
                retryable,
            ))
        }
    }
}
