//! Where a plugin's HTTP requests may go.
//!
//! Two checks, both needed:
//! - per request, before anything is sent: the origin (scheme, host, port)
//!   must be granted to the plugin, and every address its host resolves to
//!   must be public, unless the grant says `private_network = true`. This
//!   gives the plugin and the operator a precise error.
//! - per connection, in the shared client's resolver ([`GuardedResolver`]):
//!   names resolve to public addresses only, except names that some grant
//!   (or a proxy, or an OAuth token endpoint in the config) allows to be
//!   private. A name that changes its answer between the two lookups (DNS
//!   rebinding) still cannot reach loopback, link-local (169.254.169.254,
//!   the cloud metadata service) or a private range.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::plugin::config::{HttpGrant, Origin};

/// A plugin's HTTP grants, intersected with its manifest.
#[derive(Debug)]
pub struct HttpPolicy {
    pub plugin: String,
    pub grants: Vec<HttpGrant>,
    pub max_body: u64,
}

impl HttpPolicy {
    pub fn grant(&self, origin: &Origin) -> Option<&HttpGrant> {
        self.grants.iter().find(|g| &g.origin == origin)
    }
}

/// Why an address is not public, or `None` if it is.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_v4(v4);
            }
            let s = v6.segments();
            if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_loopback() {
                Some("loopback")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if s[0] & 0xffc0 == 0xfec0 {
                Some("site-local")
            } else if s[0] & 0xff00 == 0xff00 {
                Some("multicast")
            } else if s[0] == 0x64 && s[1] == 0xff9b {
                // NAT64: judge the embedded IPv4 address.
                let o = v6.octets();
                non_public_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
            } else if s[0] == 0x2001 && s[1] == 0x0db8 {
                Some("documentation")
            } else {
                None
            }
        }
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if o[0] == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_private() {
        Some("private")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared (carrier-grade NAT)")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("reserved")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("benchmarking")
    } else if ip.is_documentation() {
        Some("documentation")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if o[0] >= 240 {
        Some("reserved")
    } else {
        None
    }
}

/// Kinds never connected to, whatever the grant says.
fn never(kind: &str) -> bool {
    matches!(kind, "unspecified" | "multicast")
}

/// Checks every address `origin` resolves to against its grant. The error
/// says what was refused and how to allow it.
pub async fn check_addresses(origin: &Origin, grant: &HttpGrant) -> Result<(), Refusal> {
    let addrs: Vec<IpAddr> = match origin.host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((origin.host.as_str(), origin.port))
            .await
            .map_err(|e| Refusal::Dns(format!("cannot resolve {}: {e}", origin.host)))?
            .map(|a| a.ip())
            .collect(),
    };
    if addrs.is_empty() {
        return Err(Refusal::Dns(format!("{} has no addresses", origin.host)));
    }
    for ip in addrs {
        if let Some(kind) = non_public(ip) {
            if never(kind) {
                return Err(Refusal::Denied(format!(
                    "{origin} resolves to {ip} ({kind}), which is never allowed"
                )));
            }
            if !grant.private_network {
                return Err(Refusal::Denied(format!(
                    "{origin} resolves to {ip}, a {kind} address; \
                     set `private_network = true` on that origin's grant to allow it"
                )));
            }
        }
    }
    Ok(())
}

/// Why a request was not sent.
#[derive(Debug)]
pub enum Refusal {
    /// Policy: the plugin may not go there.
    Denied(String),
    /// The name did not resolve (may be transient).
    Dns(String),
}

/// The shared client's resolver: public addresses only, except for names
/// allowed to be private.
pub struct GuardedResolver {
    pub private_ok: Arc<HashSet<String>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let private_ok = self.private_ok.contains(&host);
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = all
                .into_iter()
                .filter(|a| match non_public(a.ip()) {
                    None => true,
                    Some(kind) => private_ok && !never(kind),
                })
                .collect();
            if kept.is_empty() {
                return Err(format!("{host} resolves to no address this plugin may reach").into());
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Hosts of proxies configured in the environment: the client must be able
/// to reach them even on a private address.
pub fn proxy_hosts() -> Vec<String> {
    [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .filter_map(|v| std::env::var(v).ok())
    .filter_map(|u| {
        let u = if u.contains("://") {
            u
        } else {
            format!("http://{u}")
        };
        reqwest::Url::parse(&u).ok()?.host_str().map(str::to_string)
    })
    .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse::<std::net::Ipv6Addr>().unwrap())
    }

    #[test]
    fn classifies_addresses() {
        let k = |s: &str| non_public(s.parse().unwrap());
        assert_eq!(k("127.0.0.1"), Some("loopback"));
        assert_eq!(k("169.254.169.254"), Some("link-local"));
        assert_eq!(k("10.1.2.3"), Some("private"));
        assert_eq!(k("172.16.0.1"), Some("private"));
        assert_eq!(k("192.168.1.1"), Some("private"));
        assert_eq!(k("100.64.0.1"), Some("shared (carrier-grade NAT)"));
        assert_eq!(k("0.0.0.0"), Some("unspecified"));
        assert_eq!(k("93.184.215.14"), None);
        assert_eq!(non_public(v6("::1")), Some("loopback"));
        assert_eq!(non_public(v6("fe80::1")), Some("link-local"));
        assert_eq!(non_public(v6("fd00::1")), Some("private (unique local)"));
        assert_eq!(non_public(v6("::ffff:169.254.169.254")), Some("link-local"));
        assert_eq!(non_public(v6("64:ff9b::a9fe:a9fe")), Some("link-local"));
        assert_eq!(non_public(v6("2a00:1450::1")), None);
    }
}
