//! The plugin host: the engine, the shared HTTP client, and the loaded
//! plugins by name and by role.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;
use wasmtime::Engine;

use super::PluginError;
use super::cache::{Cache, Source};
use super::config::{Credential, PluginConfig};
use super::engine::{self, Ticker};
use super::http::Egress;
use super::load::{self, Plugin};

/// Host-wide settings.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The daemon's private directory of compiled plugins (created 0700).
    pub cache_dir: PathBuf,
    /// Plugin calls that may run at once; sizes the instance pool. Calls
    /// beyond it wait for a slot.
    pub concurrency: u32,
}

impl HostConfig {
    /// The cache under the daemon's data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> HostConfig {
        HostConfig {
            cache_dir: data_dir.into().join("plugin-cache"),
            concurrency: 256,
        }
    }
}

/// Loaded plugins, ready to be called.
pub struct PluginHost {
    pub(crate) engine: Engine,
    pub(crate) egress: Arc<Egress>,
    pub(crate) plugins: HashMap<String, Arc<Plugin>>,
    pub(crate) roles: HashMap<String, Arc<Plugin>>,
    pub(crate) slots: Semaphore,
    pooling: bool,
    _ticker: Ticker,
}

impl PluginHost {
    /// Builds the engine, then loads every plugin: compiled in parallel on
    /// blocking threads (or taken from the cache), linked, manifest read,
    /// grants checked. Every plugin's errors are collected before failing.
    pub async fn start(
        config: HostConfig,
        plugins: Vec<PluginConfig>,
    ) -> Result<PluginHost, PluginError> {
        let max_memory = plugins
            .iter()
            .map(|p| p.memory_limit_mib as usize * 1024 * 1024)
            .max()
            .unwrap_or(64 << 20);
        let (engine, pooling) = engine::build(config.concurrency, max_memory)?;
        let ticker = Ticker::start(&engine);
        let cache = Arc::new(Cache::open(&config.cache_dir, &engine)?);
        let egress = Arc::new(Egress::new(private_hosts(&plugins)).map_err(PluginError::Engine)?);
        let linker = load::linker(&engine)?;

        let mut errors = Vec::new();
        let mut seen_roles = HashSet::new();
        let mut seen_names = HashSet::new();
        for p in &plugins {
            if p.name.is_empty() {
                errors.push(PluginError::config(
                    "(unnamed)",
                    "every plugin needs a name",
                ));
            }
            if !seen_names.insert(p.name.clone()) {
                errors.push(PluginError::config(&p.name, "two plugins have this name"));
            }
            if let Some(role) = &p.role
                && !seen_roles.insert(role.clone())
            {
                errors.push(PluginError::config(
                    &p.name,
                    format!("role `{role}` is bound to more than one plugin"),
                ));
            }
        }
        PluginError::collect(errors)?;

        let compiles: Vec<_> = plugins
            .iter()
            .map(|p| {
                let (engine, cache, p) = (engine.clone(), cache.clone(), p.clone());
                tokio::task::spawn_blocking(move || {
                    let t = Instant::now();
                    load::compile(&engine, &cache, &p).map(|c| (c, t.elapsed()))
                })
            })
            .collect();
        let mut loaded = HashMap::new();
        let mut roles = HashMap::new();
        let mut errors = Vec::new();
        for (config, job) in plugins.iter().zip(compiles) {
            let compiled = job
                .await
                .map_err(|e| {
                    PluginError::config(&config.name, format!("compilation panicked: {e}"))
                })
                .and_then(|r| r);
            let prepared = match compiled {
                Ok(((component, source), took)) => {
                    let t = Instant::now();
                    load::prepare(&engine, &linker, &egress, config, component, source)
                        .await
                        .map(|p| (p, took + t.elapsed()))
                }
                Err(e) => Err(e),
            };
            match prepared {
                Ok((plugin, took)) => {
                    tracing::info!(
                        plugin = %plugin.name,
                        role = plugin.role.as_deref().unwrap_or("(none)"),
                        version = %plugin.manifest.version,
                        cached = plugin.source == Source::Cached,
                        http = plugin.caps.http.grants.len(),
                        smtp = plugin.caps.smtp.is_some(),
                        ms = took.as_millis() as u64,
                        "plugin loaded"
                    );
                    let plugin = Arc::new(plugin);
                    if let Some(role) = &plugin.role {
                        roles.insert(role.clone(), plugin.clone());
                    }
                    loaded.insert(plugin.name.clone(), plugin);
                }
                Err(e) => errors.push(e),
            }
        }
        PluginError::collect(errors)?;
        Ok(PluginHost {
            engine,
            egress,
            plugins: loaded,
            roles,
            slots: Semaphore::new(config.concurrency.max(1) as usize),
            pooling,
            _ticker: ticker,
        })
    }

    /// Whether the pooling allocator is in use (else on-demand allocation).
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// Names of the loaded plugins, and whether each came from the cache.
    pub fn loaded(&self) -> Vec<(String, bool)> {
        let mut v: Vec<_> = self
            .plugins
            .values()
            .map(|p| (p.name.clone(), p.source == Source::Cached))
            .collect();
        v.sort();
        v
    }
}

/// Names allowed to resolve to private addresses in the shared client:
/// origins granted with `private_network`, and OAuth token endpoints (the
/// operator wrote those URLs; a plugin cannot change them).
fn private_hosts(plugins: &[PluginConfig]) -> HashSet<String> {
    let mut hosts = HashSet::new();
    for g in plugins.iter().flat_map(|p| &p.http) {
        if g.private_network {
            hosts.insert(g.origin.host.clone());
        }
        if let Some(Credential::Oauth2ClientCredentials { token_url, .. }) = &g.credential
            && let Ok(u) = reqwest::Url::parse(token_url)
            && let Some(h) = u.host_str()
        {
            hosts.insert(h.trim_matches(['[', ']']).to_ascii_lowercase());
        }
    }
    hosts
}
