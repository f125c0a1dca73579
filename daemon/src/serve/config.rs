//! The daemon's configuration: `vakt.toml` plus `VAKT_*` environment
//! variables, read with the `config` crate, then checked as a whole.
//!
//! Every field has an embedded default, so `vakt serve` starts with no file
//! at all: data in `./data`, the API on `127.0.0.1:7700`, workflows from
//! `./workflows`, mail written as `.eml` files into `./data/outbox`.
//! Environment variables override the file: `VAKT_DATA_DIR`, `VAKT_LISTEN`,
//! `VAKT_WORKFLOWS`, …; nested fields use a double underscore
//! (`VAKT_MAIL__FROM`). Every field is documented in `docs/configuration.md`.
//!
//! An invalid config is refused at start with every problem listed, each
//! naming the field (`mail.link_ttl: …`) and what to do.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::plugin::config::PluginConfig;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the store, the link key, the tokens and the plugin cache live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The API's address. Keep it on loopback behind a reverse proxy with TLS.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The directory of workflow files (`*.yaml`), watched for changes.
    #[serde(default = "default_workflows")]
    pub workflows: PathBuf,
    /// The address people reach the daemon at, used in mailed links
    /// (`https://vakt.kommun.se`). Default: `http://` + `listen`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// `text` (default) or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// A tracing filter (`info`, `vakt=debug`); `RUST_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// How often the workflow directory is checked for changes.
    #[serde(default = "default_reload", deserialize_with = "de_duration")]
    pub reload_interval: Duration,
    /// Finished instances' payloads (inputs, outputs, comments) are purged
    /// this long after they finished; the audit skeleton stays. `0s`: never.
    #[serde(default = "default_retention", deserialize_with = "de_duration")]
    pub retention: Duration,
    /// Shard workers; default: the number of cores.
    #[serde(default)]
    pub shards: Option<usize>,
    /// sled's page cache, in MiB.
    #[serde(default = "default_cache_mib")]
    pub store_cache_mib: u64,
    /// Largest request body the API accepts, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Connector calls in flight at once.
    #[serde(default = "default_max_calls")]
    pub max_calls: usize,
    /// Approval mail and signed links.
    #[serde(default)]
    pub mail: MailConfig,
    /// Workflow roles (`role:dpo` in a workflow) and the addresses holding them.
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<String>>,
    /// Plugins and their grants, by name (see `plugin::config`).
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginConfig>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Approval mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// The sender of approval mail when it goes to the `.eml` outbox. (A
    /// plugin bound to `mail` uses its own `from` setting.)
    #[serde(default = "default_from")]
    pub from: String,
    /// Where mail goes as `.eml` files when no plugin is bound to the `mail`
    /// role. Default: `<data_dir>/outbox`.
    #[serde(default)]
    pub outbox_dir: Option<PathBuf>,
    /// How long a signed link in an approval mail stays valid (it also ends
    /// when the task closes).
    #[serde(default = "default_link_ttl", deserialize_with = "de_duration")]
    pub link_ttl: Duration,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            from: default_from(),
            outbox_dir: None,
            link_ttl: default_link_ttl(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_listen() -> String {
    "127.0.0.1:7700".into()
}
fn default_workflows() -> PathBuf {
    PathBuf::from("workflows")
}
fn default_log_level() -> String {
    "info".into()
}
fn default_reload() -> Duration {
    Duration::from_secs(2)
}
fn default_retention() -> Duration {
    Duration::from_secs(365 * 86_400)
}
fn default_cache_mib() -> u64 {
    64
}
fn default_max_body() -> usize {
    1 << 20
}
fn default_max_calls() -> usize {
    256
}
fn default_from() -> String {
    "vakt@localhost".into()
}
fn default_link_ttl() -> Duration {
    Duration::from_secs(14 * 86_400)
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    if let Some(ms) = text.trim().strip_suffix("ms")
        && let Ok(n) = ms.trim().parse::<u64>()
    {
        return Ok(Duration::from_millis(n));
    }
    crate::workflow::duration::Duration::parse(&text)
        .map(|d| Duration::from_millis(d.as_millis()))
        .map_err(|e| serde::de::Error::custom(format!("`{text}`: {e}")))
}

/// Why the config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config: {0}")]
    Read(String),
    #[error("the config is invalid:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
}

impl Config {
    /// Reads `file` (when given it must exist; when not, `./vakt.toml` is
    /// read if present) and the `VAKT_*` environment, then checks the result.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// [`Config::load`] with the environment given (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut builder = config::Config::builder();
        match file {
            Some(f) => {
                if !f.is_file() {
                    return Err(ConfigError::Read(format!(
                        "{}: no such file (give an existing vakt.toml, or none for the defaults)",
                        f.display()
                    )));
                }
                builder = builder.add_source(
                    config::File::from(f.to_path_buf()).format(config::FileFormat::Toml),
                );
            }
            None => {
                builder = builder.add_source(
                    config::File::with_name("vakt.toml")
                        .format(config::FileFormat::Toml)
                        .required(false),
                );
            }
        }
        let mut vars = config::Map::new();
        for (k, v) in env {
            let Some(field) = k.strip_prefix("VAKT_") else {
                continue;
            };
            let top = field.split("__").next().unwrap_or("").to_ascii_lowercase();
            if FIELDS.contains(&top.as_str()) {
                vars.insert(k, v);
            } else if !CLIENT_VARS.contains(&k.as_str()) {
                // Another tool's variable (VAKT_BIN, …): not ours to refuse.
                eprintln!("vakt: ignoring {k}: not a config field (see docs/configuration.md)");
            }
        }
        builder = builder.add_source(
            config::Environment::with_prefix("VAKT")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .source(Some(vars)),
        );
        let raw = builder
            .build()
            .map_err(|e| ConfigError::Read(e.to_string()))?;
        let mut cfg: Config = raw
            .try_deserialize()
            .map_err(|e| ConfigError::Invalid(vec![explain(e)]))?;
        for (name, p) in cfg.plugins.iter_mut() {
            p.name = name.clone();
        }
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks what serde cannot: addresses, URLs, paths, ranges, roles.
    pub fn check(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.listen_addr().is_err() {
            problems.push(format!(
                "listen: `{}` is not an address and port (write `127.0.0.1:7700`)",
                self.listen
            ));
        }
        if let Some(u) = &self.public_url {
            match url::Url::parse(u) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                _ => problems.push(format!(
                    "public_url: `{u}` is not an http(s) URL (write `https://vakt.kommun.se`)"
                )),
            }
        }
        if self.data_dir.as_os_str().is_empty() {
            problems.push("data_dir: must not be empty".into());
        }
        if self.workflows.as_os_str().is_empty() {
            problems.push("workflows: must not be empty".into());
        }
        if self.reload_interval < Duration::from_millis(100) {
            problems.push("reload_interval: at least 100ms".into());
        }
        if self.shards == Some(0) {
            problems.push("shards: at least 1".into());
        }
        if self.store_cache_mib < 8 {
            problems.push("store_cache_mib: at least 8".into());
        }
        if self.max_body_bytes < 1024 {
            problems.push("max_body_bytes: at least 1024".into());
        }
        if self.max_calls == 0 {
            problems.push("max_calls: at least 1".into());
        }
        if self.mail.link_ttl < Duration::from_secs(60) {
            problems.push("mail.link_ttl: at least 1m".into());
        }
        if !looks_like_address(&self.mail.from) {
            problems.push(format!(
                "mail.from: `{}` is not a mail address",
                self.mail.from
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            problems.push(format!(
                "log_level: `{}` is not a log filter (write `info` or `vakt=debug,info`)",
                self.log_level
            ));
        }
        for (role, people) in &self.roles {
            if !role
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                problems.push(format!(
                    "roles.{role}: a role name has letters, digits, `_` and `-`"
                ));
            }
            if people.is_empty() {
                problems.push(format!(
                    "roles.{role}: nobody holds this role; list at least one address"
                ));
            }
            for p in people {
                if !looks_like_address(p) {
                    problems.push(format!("roles.{role}: `{p}` is not a mail address"));
                }
            }
        }
        let mut bound: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, p) in &self.plugins {
            if let Some(role) = &p.role {
                if crate::workflow::connectors::role(role).is_none() {
                    problems.push(format!(
                        "plugins.{name}.role: `{role}` is not a connector role; the roles are {}",
                        crate::workflow::connectors::role_names()
                    ));
                }
                if let Some(other) = bound.insert(role, name) {
                    problems.push(format!(
                        "plugins.{name}.role: `{role}` is already bound to plugin `{other}`; one plugin per role"
                    ));
                }
            }
            if !p.wasm.is_file() {
                problems.push(format!(
                    "plugins.{name}.wasm: `{}` is not a file (build the plugins with plugins/build.sh)",
                    p.wasm.display()
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, std::net::AddrParseError> {
        self.listen.parse()
    }

    /// The base of mailed links, without a trailing slash.
    pub fn public_base(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        }
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.mail
            .outbox_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("outbox"))
    }

    /// The workflow roles an address holds.
    pub fn roles_of(&self, address: &str) -> Vec<String> {
        self.roles
            .iter()
            .filter(|(_, people)| people.iter().any(|p| p.eq_ignore_ascii_case(address)))
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// The addresses an assignee stands for (`role:dpo` → its holders).
    pub fn resolve(&self, assignee: &str) -> Vec<String> {
        match assignee.strip_prefix("role:") {
            Some(r) => self.roles.get(r).cloned().unwrap_or_default(),
            None => vec![assignee.to_owned()],
        }
    }
}

/// The top-level fields, for telling config variables from others.
const FIELDS: &[&str] = &[
    "data_dir",
    "listen",
    "workflows",
    "public_url",
    "log_format",
    "log_level",
    "reload_interval",
    "retention",
    "shards",
    "store_cache_mib",
    "max_body_bytes",
    "max_calls",
    "mail",
    "roles",
    "plugins",
];

/// Variables the CLI client reads; not config fields.
const CLIENT_VARS: &[&str] = &["VAKT_URL", "VAKT_TOKEN", "VAKT_TEST_PYTHON"];

fn looks_like_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty() && !domain.is_empty() && !s.chars().any(|c| c.is_whitespace())
}

/// Makes a `config` error name the field in our `field: problem` style.
fn explain(e: config::ConfigError) -> String {
    let text = e.to_string();
    // The config crate says "… for key `mail.link_ttl`" or "unknown field …".
    if let Some(start) = text.find("for key `") {
        let rest = &text[start + 9..];
        if let Some(end) = rest.find('`') {
            let key = &rest[..end];
            let what = text[..start].trim_end();
            return format!("{key}: {what}");
        }
    }
    if text.contains("unknown field") {
        return format!("{text} (see docs/configuration.md for every field)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("vakt.toml");
        std::fs::write(&f, toml).unwrap();
        Config::load_from(
            Some(&f),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:7700");
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert_eq!(c.outbox_dir(), PathBuf::from("data/outbox"));
        assert_eq!(c.mail.link_ttl, Duration::from_secs(14 * 86_400));
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = load(
            "listen = \"127.0.0.1:1\"\n[mail]\nfrom = \"a@b.se\"\n",
            &[
                ("VAKT_LISTEN", "127.0.0.1:9999"),
                ("VAKT_DATA_DIR", "/tmp/x"),
                ("VAKT_MAIL__FROM", "vakt@kommun.se"),
                ("VAKT_URL", "http://ignored"),
                ("VAKT_BIN", "/not/a/field"),
                ("VAKT_RELOAD_INTERVAL", "200ms"),
            ],
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.mail.from, "vakt@kommun.se");
        assert_eq!(c.reload_interval, Duration::from_millis(200));
    }

    #[test]
    fn errors_name_the_field() {
        let e = load("listen = \"nowhere\"\n[mail]\nlink_ttl = \"10s\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen: `nowhere`"), "{e}");
        assert!(e.contains("mail.link_ttl: at least 1m"), "{e}");
        let e = load("[mail]\nlink_ttl = \"soon\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("link_ttl"), "{e}");
        let e = load("lisen = \"x\"\n", &[]).unwrap_err().to_string();
        assert!(e.contains("lisen"), "{e}");
        let e = load("[roles]\ndpo = [\"not an address\"]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("roles.dpo: `not an address`"), "{e}");
        let e = load(
            "[plugins.x]\nwasm = \"/nonexistent.wasm\"\nrole = \"fax\"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("plugins.x.role: `fax`"), "{e}");
        assert!(e.contains("plugins.x.wasm"), "{e}");
    }

    #[test]
    fn a_missing_named_file_is_an_error() {
        let e = Config::load_from(Some(Path::new("/nonexistent/vakt.toml")), [])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such file"), "{e}");
    }

    #[test]
    fn the_example_config_is_valid_but_for_its_plugin_paths() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vakt.example.toml");
        let e = Config::load_from(Some(&path), []).unwrap_err();
        match e {
            ConfigError::Invalid(problems) => {
                assert!(
                    problems
                        .iter()
                        .all(|p| p.starts_with("plugins.") && p.contains(".wasm:")),
                    "{problems:?}"
                );
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn roles_resolve() {
        let c = load(
            "[roles]\ndpo = [\"Dpo@kommun.se\", \"deputy@kommun.se\"]\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.roles_of("dpo@kommun.se"), vec!["dpo".to_string()]);
        assert_eq!(c.resolve("role:dpo").len(), 2);
        assert_eq!(c.resolve("x@y.se"), vec!["x@y.se".to_string()]);
        assert!(c.resolve("role:none").is_empty());
    }
}
