//! What the daemon's config grants each plugin.
//!
//! A plugin gets nothing it was not granted here, and of what was granted
//! only what its manifest asks for (see `load.rs`). An empty grant denies.
//! Secret values never appear in the config itself: they are references,
//! `env:NAME` or `file:/path`, read when needed and never logged.
//!
//! ```toml
//! [plugins.redmine]
//! wasm = "/usr/lib/vakt/plugins/redmine.wasm"
//! role = "ticketing"
//! memory_limit_mib = 64
//! cpu_timeout = "5s"
//! wall_timeout = "30s"
//! settings = { project = "it-service" }
//!
//! [[plugins.redmine.http]]
//! origin = "https://redmine.kommun.se"
//! private_network = true          # it resolves to 10.x: allowed explicitly
//! credential = { kind = "api_key", header = "X-Redmine-API-Key", value = "env:REDMINE_KEY" }
//!
//! [plugins.mail]
//! wasm = "/usr/lib/vakt/plugins/mail.wasm"
//! role = "mail"
//! settings = { from = "vakt@kommun.se" }
//! smtp = { host = "relay.kommun.se", port = 587, tls = "starttls", username = "vakt", password = "file:/etc/vakt/smtp.pass" }
//! # A relay whose certificate is signed by an internal CA:
//! # smtp = { …, ca_file = "/etc/vakt/internal-ca.pem" }
//!
//! [plugins.directory]
//! wasm = "/usr/lib/vakt/plugins/directory-file.wasm"
//! role = "identity"
//! # Files it may read by name; the host reads them at call time.
//! files = { users = "/srv/export/users.csv", groups = "/srv/export/groups.csv" }
//! max_file_bytes = 52428800       # the default, 50 MiB
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// One plugin and its grants.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The plugin's name in logs and errors; the key of its config section.
    #[serde(default)]
    pub name: String,
    /// The component file (wasm32-wasip2).
    pub wasm: PathBuf,
    /// The connector role it serves: `mail`, `ticketing` or `identity`;
    /// one plugin per role. A plugin without a role is loaded but only
    /// callable by name (tools, tests).
    #[serde(default)]
    pub role: Option<String>,
    /// Outgoing HTTP, one entry per origin. Empty: no HTTP at all.
    #[serde(default)]
    pub http: Vec<HttpGrant>,
    /// The SMTP relay it may send through. None: no mail.
    #[serde(default)]
    pub smtp: Option<SmtpGrant>,
    /// Secrets it may read by name through the `secrets` interface.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRef>,
    /// Non-secret settings (a base URL, a project id, a sender address).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Linear memory limit, in MiB.
    #[serde(default = "default_memory_mib")]
    pub memory_limit_mib: u32,
    /// CPU time one call may use (wasm running, not waiting on I/O).
    #[serde(default = "default_cpu", deserialize_with = "de_duration")]
    pub cpu_timeout: Duration,
    /// Wall-clock time one call may take, waiting included.
    #[serde(default = "default_wall", deserialize_with = "de_duration")]
    pub wall_timeout: Duration,
    /// Largest HTTP response body the plugin may receive, in bytes.
    #[serde(default = "default_max_body")]
    pub max_response_bytes: u64,
    /// Files it may read by name through the `files` interface: name →
    /// absolute path. The host reads the file when the plugin asks, never
    /// any other path; the plugin has no filesystem.
    #[serde(default)]
    pub files: BTreeMap<String, PathBuf>,
    /// Largest granted file the plugin may read, in bytes.
    #[serde(default = "default_max_file")]
    pub max_file_bytes: u64,
}

fn default_memory_mib() -> u32 {
    64
}
fn default_cpu() -> Duration {
    Duration::from_secs(5)
}
fn default_wall() -> Duration {
    Duration::from_secs(30)
}
fn default_max_body() -> u64 {
    10 * 1024 * 1024
}
fn default_max_file() -> u64 {
    50 * 1024 * 1024
}

impl PluginConfig {
    /// A plugin with no role, no grants and the default limits.
    pub fn new(name: &str, wasm: impl Into<PathBuf>) -> Self {
        PluginConfig {
            name: name.to_string(),
            wasm: wasm.into(),
            role: None,
            http: Vec::new(),
            smtp: None,
            secrets: BTreeMap::new(),
            settings: BTreeMap::new(),
            memory_limit_mib: default_memory_mib(),
            cpu_timeout: default_cpu(),
            wall_timeout: default_wall(),
            max_response_bytes: default_max_body(),
            files: BTreeMap::new(),
            max_file_bytes: default_max_file(),
        }
    }

    /// Binds the plugin to a connector role.
    pub fn bound_to(mut self, role: &str) -> Self {
        self.role = Some(role.to_string());
        self
    }
}

/// An origin a plugin may reach over HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGrant {
    /// `scheme://host[:port]`; no path.
    pub origin: Origin,
    /// Allow addresses that are not public (loopback, private ranges,
    /// link-local) for this origin. Off by default, so a name that resolves
    /// to an internal address (or the cloud metadata service) is refused.
    #[serde(default)]
    pub private_network: bool,
    /// Credentials the host adds to every request to this origin.
    #[serde(default)]
    pub credential: Option<Credential>,
}

/// Scheme, host and port: what a grant names and a request is checked against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub scheme: String,
    /// Lower case; IPv6 without brackets.
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parses `https://host`, `http://host:8080`, `http://[::1]:80`.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let url = reqwest::Url::parse(text).map_err(|e| format!("`{text}`: {e}"))?;
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "`{text}`: an origin has no path, query or fragment"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "`{text}`: put credentials in `credential`, not in the origin"
            ));
        }
        Origin::of(&url).ok_or_else(|| format!("`{text}`: scheme must be http or https"))
    }

    /// The origin of a URL, if it is http or https with a host.
    pub fn of(url: &reqwest::Url) -> Option<Origin> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let host = match url.host()? {
            url::Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        };
        Some(Origin {
            scheme: scheme.to_string(),
            host,
            port: url.port_or_known_default()?,
        })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Origin::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Credentials injected by the host; the plugin never sees them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum Credential {
    /// `Authorization: Bearer <token>`; `scheme` replaces `Bearer` for an
    /// API that wants another word (Request Tracker: `token`).
    Bearer {
        token: SecretRef,
        #[serde(default)]
        scheme: Option<String>,
    },
    /// `Authorization: Basic …`.
    Basic {
        username: String,
        password: SecretRef,
    },
    /// A header such as `X-Redmine-API-Key: <value>`.
    ApiKey { header: String, value: SecretRef },
    /// OAuth 2.0 client credentials: the host fetches a token from
    /// `token_url`, caches it until shortly before it expires, and sends it
    /// as a bearer token.
    Oauth2ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: SecretRef,
        #[serde(default)]
        scope: Option<String>,
    },
}

/// The relay a plugin may send mail through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpGrant {
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// A PEM file of extra root certificates to trust for this relay (an
    /// internal CA), on top of the system's. Read on every connection.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required), port 587.
    #[default]
    Starttls,
    /// TLS from the first byte, port 465.
    Tls,
    /// No TLS at all (a relay on the same host), port 25.
    None,
}

impl SmtpTls {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }
}

/// Where a secret's value is: `env:NAME` or `file:/path`. The `Debug` form
/// shows the reference, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
}

impl SecretRef {
    pub fn parse(text: &str) -> Result<SecretRef, String> {
        if let Some(name) = text.strip_prefix("env:") {
            if name.is_empty() {
                return Err("`env:` needs a variable name".into());
            }
            Ok(SecretRef::Env(name.to_string()))
        } else if let Some(path) = text.strip_prefix("file:") {
            if !path.starts_with('/') {
                return Err(format!("`file:{path}`: the path must be absolute"));
            }
            Ok(SecretRef::File(PathBuf::from(path)))
        } else {
            Err("a secret is `env:NAME` or `file:/path`, never the value itself".into())
        }
    }

    /// Reads the value (a file's trailing newline removed). The error names
    /// the reference, not the value.
    pub fn read(&self) -> Result<String, String> {
        match self {
            SecretRef::Env(name) => {
                std::env::var(name).map_err(|_| format!("environment variable `{name}` is not set"))
            }
            SecretRef::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| format!("cannot read `{}`: {e}", path.display())),
        }
    }
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "env:{n}"),
            SecretRef::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        SecretRef::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Parses `250ms`, `5s`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}`: expected a number and a unit (ms, s, m)"))?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("`{text}`: the unit is ms, s or m")),
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised() {
        let o = Origin::parse("HTTPS://Redmine.Kommun.SE").unwrap();
        assert_eq!(o.to_string(), "https://redmine.kommun.se:443");
        assert_eq!(
            Origin::parse("http://[::1]:8080").unwrap().to_string(),
            "http://[::1]:8080"
        );
        assert!(Origin::parse("https://x.se/api").is_err());
        assert!(Origin::parse("ftp://x.se").is_err());
        assert!(Origin::parse("https://u:p@x.se").is_err());
    }

    #[test]
    fn secrets_are_references() {
        assert_eq!(
            SecretRef::parse("env:TOKEN").unwrap(),
            SecretRef::Env("TOKEN".into())
        );
        assert!(SecretRef::parse("hunter2").is_err());
        assert!(SecretRef::parse("file:relative").is_err());
    }

    #[test]
    fn an_smtp_grant_may_name_a_ca_file() {
        let g: SmtpGrant = serde_json::from_str(
            r#"{"host": "relay.example", "tls": "starttls", "ca_file": "/etc/vakt/ca.pem"}"#,
        )
        .unwrap();
        assert_eq!(g.tls, SmtpTls::Starttls);
        assert_eq!(g.ca_file, Some(PathBuf::from("/etc/vakt/ca.pem")));
        let g: SmtpGrant = serde_json::from_str(r#"{"host": "relay.example"}"#).unwrap();
        assert_eq!(g.ca_file, None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("5").is_err());
    }
}
