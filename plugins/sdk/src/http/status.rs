//! Mapping HTTP statuses and `wasi:http` transport errors to
//! [`PluginError`], with `retryable` set right.
//!
//! | what | retryable |
//! | --- | --- |
//! | 5xx, 408, timeouts, refused or reset connections, DNS timeouts | yes |
//! | 429 (and 503) with `Retry-After` | yes, with `retry-after-secs` |
//! | 401, 403 | no: the message names the credential to fix |
//! | other 4xx, a denied origin, a prohibited address, TLS certificate errors | no |

use wasip2::http::types::ErrorCode;

use crate::PluginError;

/// What a failed request was, for messages.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub method: &'a str,
    /// The URL without its query.
    pub url: &'a str,
    /// `scheme://host[:port]`.
    pub origin: &'a str,
}

/// `None` for 1xx–3xx; otherwise the error for `status`. `retry_after` is the
/// `Retry-After` header, `now_secs` the current Unix time (for HTTP-dates),
/// `body` the start of the response body (shown, shortened, in the message).
pub fn status_error(
    target: Target<'_>,
    status: u16,
    retry_after: Option<&str>,
    now_secs: u64,
    body: &[u8],
) -> Option<PluginError> {
    if status < 400 {
        return None;
    }
    let Target {
        method,
        url,
        origin,
    } = target;
    let reason = reason(status);
    let detail = snippet(body);
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    };
    let wait = retry_after.and_then(|v| parse_retry_after(v, now_secs));
    let error = match status {
        401 | 403 => PluginError::permanent(format_args!(
            "{method} {url} answered {status} {reason}{detail}. The credential the daemon \
             injects for {origin} is missing, wrong or lacks the rights for this call: check \
             the credential bound to {origin} in this plugin's grant in the daemon config"
        )),
        429 => {
            let mut e = PluginError::retryable(format_args!(
                "{method} {url} answered 429 Too Many Requests{detail}"
            ));
            e.retry_after_secs = wait;
            e
        }
        408 | 500..=599 => {
            let mut e = PluginError::retryable(format_args!(
                "{method} {url} answered {status} {reason}{detail}"
            ));
            e.retry_after_secs = wait;
            e
        }
        _ => PluginError::permanent(format_args!(
            "{method} {url} answered {status} {reason}{detail}"
        )),
    };
    Some(error)
}

/// The error for a request that got no HTTP answer.
pub fn transport_error(target: Target<'_>, code: &ErrorCode) -> PluginError {
    let Target {
        method,
        url,
        origin,
    } = target;
    let at = format!("{method} {url}");
    use ErrorCode as E;
    match code {
        E::HttpRequestDenied => PluginError::permanent(format_args!(
            "{at}: the daemon refused the request because {origin} is not granted to this \
             plugin: add the origin to the plugin's http grant in the daemon config"
        )),
        E::DestinationIpProhibited | E::DestinationIpUnroutable => {
            PluginError::permanent(format_args!(
                "{at}: the daemon refused to connect to the address {origin} resolves to \
             (loopback, link-local or private): grant that origin explicitly if it is meant"
            ))
        }
        E::DnsTimeout => PluginError::retryable(format_args!("{at}: DNS lookup timed out")),
        E::DnsError(p) => PluginError::retryable(format_args!(
            "{at}: DNS lookup failed ({})",
            p.rcode.as_deref().unwrap_or("no answer")
        )),
        E::DestinationNotFound => PluginError::permanent(format_args!(
            "{at}: the host of {origin} does not exist; check the URL in the plugin's settings"
        )),
        E::DestinationUnavailable => {
            PluginError::retryable(format_args!("{at}: {origin} is unavailable"))
        }
        E::ConnectionRefused => {
            PluginError::retryable(format_args!("{at}: connection refused by {origin}"))
        }
        E::ConnectionTerminated => {
            PluginError::retryable(format_args!("{at}: {origin} closed the connection"))
        }
        E::ConnectionTimeout => {
            PluginError::retryable(format_args!("{at}: connecting to {origin} timed out"))
        }
        E::ConnectionReadTimeout | E::HttpResponseTimeout => {
            PluginError::retryable(format_args!("{at}: {origin} did not answer in time"))
        }
        E::ConnectionWriteTimeout => {
            PluginError::retryable(format_args!("{at}: sending to {origin} timed out"))
        }
        E::ConnectionLimitReached => {
            PluginError::retryable(format_args!("{at}: too many connections to {origin}"))
        }
        E::HttpResponseIncomplete => {
            PluginError::retryable(format_args!("{at}: {origin} sent an incomplete response"))
        }
        E::TlsCertificateError => PluginError::permanent(format_args!(
            "{at}: the TLS certificate of {origin} was not accepted"
        )),
        E::TlsProtocolError => {
            PluginError::permanent(format_args!("{at}: TLS handshake with {origin} failed"))
        }
        E::TlsAlertReceived(p) => PluginError::permanent(format_args!(
            "{at}: {origin} ended TLS with an alert ({})",
            p.alert_message.as_deref().unwrap_or("no message")
        )),
        E::HttpResponseBodySize(limit) => PluginError::permanent(format_args!(
            "{at}: the response from {origin} is larger than the daemon allows{}",
            limit.map(|l| format!(" ({l} bytes)")).unwrap_or_default()
        )),
        E::InternalError(m) => PluginError::retryable(format_args!(
            "{at}: {}",
            m.as_deref()
                .unwrap_or("internal error in the daemon's HTTP client")
        )),
        other => PluginError::permanent(format_args!("{at}: {other:?}")),
    }
}

/// `Retry-After` as seconds: delta-seconds, or an IMF-fixdate
/// (`Wed, 21 Oct 2015 07:28:00 GMT`) relative to `now_secs`.
pub fn parse_retry_after(value: &str, now_secs: u64) -> Option<u32> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.min(u64::from(u32::MAX)) as u32);
    }
    let at = parse_http_date(value)?;
    Some(at.saturating_sub(now_secs).min(u64::from(u32::MAX)) as u32)
}

/// Parses an IMF-fixdate into Unix seconds.
fn parse_http_date(value: &str) -> Option<u64> {
    // "Wed, 21 Oct 2015 07:28:00 GMT"
    let (_, rest) = value.split_once(", ")?;
    let mut parts = rest.split_whitespace();
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day as i64);
    u64::try_from(days)
        .ok()
        .map(|d| d * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// The start of a body, on one line, at most 200 characters.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(800)]);
    let one_line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if one_line.chars().count() > 200 {
        let cut: String = one_line.chars().take(200).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Target<'static> = Target {
        method: "POST",
        url: "https://rt.kommun.se/REST/2.0/ticket",
        origin: "https://rt.kommun.se",
    };

    #[test]
    fn success_and_redirects_are_not_errors() {
        for s in [200, 201, 204, 301, 304] {
            assert!(status_error(T, s, None, 0, b"").is_none());
        }
    }

    #[test]
    fn server_errors_are_retryable() {
        for s in [500, 502, 503, 504, 408] {
            let e = status_error(T, s, None, 0, b"").unwrap();
            assert!(e.retryable, "{s}");
            assert!(e.message.contains(&s.to_string()));
        }
        let e = status_error(T, 503, Some("120"), 0, b"").unwrap();
        assert_eq!(e.retry_after_secs, Some(120));
    }

    #[test]
    fn too_many_requests_carries_retry_after() {
        let e = status_error(T, 429, Some("30"), 0, b"").unwrap();
        assert!(e.retryable);
        assert_eq!(e.retry_after_secs, Some(30));
        let now = parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let e = status_error(T, 429, Some("Wed, 21 Oct 2015 07:29:00 GMT"), now, b"").unwrap();
        assert_eq!(e.retry_after_secs, Some(60));
        let e = status_error(T, 429, None, 0, b"").unwrap();
        assert!(e.retryable);
        assert_eq!(e.retry_after_secs, None);
    }

    #[test]
    fn refused_credentials_name_what_to_fix() {
        for s in [401, 403] {
            let e = status_error(T, s, None, 0, b"{\"error\":\"invalid token\"}").unwrap();
            assert!(!e.retryable);
            assert!(e.message.contains("credential"), "{}", e.message);
            assert!(
                e.message
                    .contains("https://rt.kommun.se in this plugin's grant"),
                "{}",
                e.message
            );
            assert!(e.message.contains("invalid token"), "{}", e.message);
        }
    }

    #[test]
    fn other_client_errors_are_permanent() {
        for s in [400, 404, 409, 422] {
            assert!(!status_error(T, s, None, 0, b"").unwrap().retryable, "{s}");
        }
    }

    #[test]
    fn transport_errors() {
        let retryable = [
            ErrorCode::ConnectionRefused,
            ErrorCode::ConnectionTimeout,
            ErrorCode::ConnectionReadTimeout,
            ErrorCode::HttpResponseTimeout,
            ErrorCode::ConnectionTerminated,
            ErrorCode::DnsTimeout,
            ErrorCode::HttpResponseIncomplete,
        ];
        for code in &retryable {
            assert!(transport_error(T, code).retryable, "{code:?}");
        }
        let permanent = [
            ErrorCode::HttpRequestDenied,
            ErrorCode::DestinationIpProhibited,
            ErrorCode::TlsCertificateError,
            ErrorCode::HttpResponseBodySize(Some(1024)),
            ErrorCode::HttpRequestUriInvalid,
        ];
        for code in &permanent {
            assert!(!transport_error(T, code).retryable, "{code:?}");
        }
        let e = transport_error(T, &ErrorCode::HttpRequestDenied);
        assert!(e.message.contains("not granted"), "{}", e.message);
    }

    #[test]
    fn http_dates() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480)
        );
        assert_eq!(parse_retry_after("garbage", 0), None);
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", 99),
            Some(0)
        );
    }

    #[test]
    fn snippets_are_short_and_on_one_line() {
        assert_eq!(snippet(b"a\r\n  b\tc"), "a b c");
        let long = "x".repeat(500);
        assert_eq!(snippet(long.as_bytes()).chars().count(), 201);
    }
}
