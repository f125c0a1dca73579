//! Loading a plugin: compile (or take from the cache), link, read the
//! manifest once, and intersect what it asks for with what the config grants.
//!
//! The result is a [`Plugin`]: an `InstancePre` of the world it implements
//! (every call instantiates a fresh store from it) and its [`Caps`], the only
//! capabilities its stores will ever see.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Engine, Store};

use super::bindings::{self, Manifest};
use super::cache::{Cache, Source};
use super::config::{PluginConfig, SecretRef, SmtpGrant};
use super::http::Egress;
use super::http::policy::HttpPolicy;
use super::state::State;
use super::{PluginError, invoke};
use crate::workflow::connectors;

/// What a plugin's stores may use: its grants, cut down to its manifest.
#[derive(Debug)]
pub struct Caps {
    pub name: String,
    pub settings: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, SecretRef>,
    pub smtp: Option<SmtpGrant>,
    pub http: Arc<HttpPolicy>,
    /// Files it may read by name (`files` interface), and the size cap.
    pub files: BTreeMap<String, PathBuf>,
    pub max_file_bytes: u64,
    pub memory_bytes: usize,
    pub cpu: Duration,
    pub wall: Duration,
}

/// The world a plugin implements, ready to instantiate.
pub enum Exports {
    Mail(bindings::mail::MailPluginPre<State>),
    Ticketing(bindings::ticketing::TicketingPluginPre<State>),
    Identity(bindings::identity::IdentityPluginPre<State>),
    Generic(bindings::generic::GenericPluginPre<State>),
}

/// A loaded plugin.
pub struct Plugin {
    pub name: String,
    pub role: Option<String>,
    pub manifest: Manifest,
    pub caps: Arc<Caps>,
    pub exports: Exports,
    pub source: Source,
}

/// The linker every plugin is instantiated with: all of WASI p2 (with the
/// denying context of `state.rs`), `wasi:http`, and the vakt imports.
pub fn linker(engine: &Engine) -> Result<Linker<State>, PluginError> {
    let mut linker = Linker::<State>::new(engine);
    let e = |e: wasmtime::Error| PluginError::Engine(format!("{e:#}"));
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(e)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(e)?;
    bindings::host::Host_::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s).map_err(e)?;
    Ok(linker)
}

/// Compiles or loads `config.wasm` (CPU-bound: run it off the async threads).
pub fn compile(
    engine: &Engine,
    cache: &Cache,
    config: &PluginConfig,
) -> Result<(Component, Source), PluginError> {
    let wasm = std::fs::read(&config.wasm).map_err(|source| PluginError::Read {
        plugin: config.name.clone(),
        path: config.wasm.clone(),
        source,
    })?;
    cache.component(engine, &config.name, &config.wasm, &wasm)
}

/// Links a compiled component, reads its manifest and checks its grants.
pub async fn prepare(
    engine: &Engine,
    linker: &Linker<State>,
    egress: &Arc<Egress>,
    config: &PluginConfig,
    component: Component,
    source: Source,
) -> Result<Plugin, PluginError> {
    let name = config.name.as_str();
    let invalid = |message: String| PluginError::Invalid {
        plugin: name.to_string(),
        path: config.wasm.clone(),
        message,
    };
    let pre: InstancePre<State> = linker
        .instantiate_pre(&component)
        .map_err(|e| invalid(format!("{e:#}")))?;
    let manifest = read_manifest(engine, egress, config, &pre).await?;
    let caps = grant(config, &manifest)?;
    let role = config.role.as_deref().unwrap_or(&manifest.role);
    let exports = world(role, &manifest.role, pre).map_err(invalid)?;
    Ok(Plugin {
        name: name.to_string(),
        role: config.role.clone(),
        manifest,
        caps: Arc::new(caps),
        exports,
        source,
    })
}

async fn read_manifest(
    engine: &Engine,
    egress: &Arc<Egress>,
    config: &PluginConfig,
    pre: &InstancePre<State>,
) -> Result<Manifest, PluginError> {
    // The manifest may depend on the plugin's (non-secret) settings, such as
    // which granted file names it reads; nothing else is given.
    let nothing = Arc::new(Caps {
        name: config.name.clone(),
        settings: config.settings.clone(),
        secrets: BTreeMap::new(),
        smtp: None,
        http: Arc::new(HttpPolicy {
            plugin: config.name.clone(),
            grants: Vec::new(),
            max_body: 0,
        }),
        files: BTreeMap::new(),
        max_file_bytes: 0,
        memory_bytes: config.memory_limit_mib as usize * 1024 * 1024,
        cpu: config.cpu_timeout,
        wall: config.wall_timeout,
    });
    let deadline = Instant::now() + config.wall_timeout;
    let mut store: Store<State> =
        invoke::store(engine, nothing, egress.clone(), "(load)", deadline);
    let host_pre =
        bindings::host::Host_Pre::new(pre.clone()).map_err(|e| PluginError::Invalid {
            plugin: config.name.clone(),
            path: config.wasm.clone(),
            message: format!("it does not export `vakt:plugin/plugin`: {e:#}"),
        })?;
    let call = async {
        let instance = host_pre.instantiate_async(&mut store).await?;
        instance
            .vakt_plugin_plugin()
            .call_manifest(&mut store)
            .await
    };
    match tokio::time::timeout(config.wall_timeout, call).await {
        Ok(Ok(m)) => Ok(m),
        Ok(Err(e)) => Err(PluginError::config(
            &config.name,
            format!(
                "reading its manifest failed: {}",
                invoke::describe_trap(&config.name, &e, &store)
            ),
        )),
        Err(_) => Err(PluginError::config(
            &config.name,
            "reading its manifest took longer than its wall timeout",
        )),
    }
}

/// The world implementation for the bound role: the role's own world, or
/// the generic one.
fn world(role: &str, manifest_role: &str, pre: InstancePre<State>) -> Result<Exports, String> {
    let typed = match role {
        "mail" => bindings::mail::MailPluginPre::new(pre.clone())
            .map(Exports::Mail)
            .ok(),
        "ticketing" => bindings::ticketing::TicketingPluginPre::new(pre.clone())
            .map(Exports::Ticketing)
            .ok(),
        "identity" => bindings::identity::IdentityPluginPre::new(pre.clone())
            .map(Exports::Identity)
            .ok(),
        _ => None,
    };
    if let Some(t) = typed {
        return Ok(t);
    }
    bindings::generic::GenericPluginPre::new(pre)
        .map(Exports::Generic)
        .map_err(|_| {
            format!(
                "its manifest says role `{manifest_role}`, but it exports neither \
                 `vakt:plugin/{role}` nor `vakt:plugin/generic`"
            )
        })
}

/// Intersects the manifest with the grants. Every refusal is collected.
pub fn grant(config: &PluginConfig, manifest: &Manifest) -> Result<Caps, PluginError> {
    let name = config.name.as_str();
    let section = format!("[plugins.{name}]");
    let mut errors = Vec::new();
    if let Some(role) = &config.role {
        if connectors::role(role).is_none() {
            errors.push(PluginError::config(
                name,
                format!(
                    "role `{role}` is not a connector role (one of: {})",
                    connectors::role_names()
                ),
            ));
        }
        if &manifest.role != role && manifest.role != "generic" {
            errors.push(PluginError::config(
                name,
                format!(
                    "it is a `{}` plugin but the config binds it to role `{role}`",
                    manifest.role
                ),
            ));
        }
    }
    let not_granted = |capability: String, fix: String| PluginError::NotGranted {
        plugin: name.to_string(),
        capability,
        fix,
    };
    let http = if manifest.http {
        if config.http.is_empty() {
            errors.push(not_granted(
                "`http` (outgoing HTTP)".into(),
                format!("grant the origins it may reach under [[plugins.{name}.http]]"),
            ));
        }
        config.http.clone()
    } else {
        Vec::new()
    };
    for g in &http {
        if let Some(c) = &g.credential {
            check_credential(name, &g.origin.to_string(), c, &mut errors);
        }
    }
    let smtp = if manifest.smtp {
        if config.smtp.is_none() {
            errors.push(not_granted(
                "`smtp` (the mail relay)".into(),
                format!(
                    "grant a relay with `smtp = {{ host = …, port = …, tls = … }}` in {section}"
                ),
            ));
        }
        config.smtp.clone()
    } else {
        None
    };
    if let Some(SmtpGrant {
        password: Some(p), ..
    }) = &smtp
        && let Err(e) = p.read()
    {
        errors.push(PluginError::config(name, format!("SMTP password: {e}")));
    }
    let mut secrets = BTreeMap::new();
    for s in &manifest.secrets {
        match config.secrets.get(s) {
            Some(r) => {
                if let Err(e) = r.read() {
                    errors.push(PluginError::config(name, format!("secret `{s}`: {e}")));
                }
                secrets.insert(s.clone(), r.clone());
            }
            None => errors.push(not_granted(
                format!("secret `{s}`"),
                format!(
                    "add `{s} = \"env:NAME\"` (or `file:/path`) under [plugins.{name}.secrets]"
                ),
            )),
        }
    }
    let mut files = BTreeMap::new();
    for f in &manifest.files {
        match config.files.get(f) {
            Some(path) if !path.is_absolute() => errors.push(PluginError::config(
                name,
                format!("file `{f}`: the path `{}` must be absolute", path.display()),
            )),
            Some(path) => {
                files.insert(f.clone(), path.clone());
            }
            None => errors.push(not_granted(
                format!("file `{f}`"),
                format!("add `{f} = \"/path/to/file\"` to `files = {{ … }}` in {section}"),
            )),
        }
    }
    let settings = manifest
        .settings
        .iter()
        .filter_map(|s| config.settings.get(s).map(|v| (s.clone(), v.clone())))
        .collect();
    PluginError::collect(errors)?;
    Ok(Caps {
        name: name.to_string(),
        settings,
        secrets,
        smtp,
        http: Arc::new(HttpPolicy {
            plugin: name.to_string(),
            grants: http,
            max_body: config.max_response_bytes,
        }),
        files,
        max_file_bytes: config.max_file_bytes,
        memory_bytes: config.memory_limit_mib as usize * 1024 * 1024,
        cpu: config.cpu_timeout,
        wall: config.wall_timeout,
    })
}

fn check_credential(
    plugin: &str,
    origin: &str,
    c: &super::config::Credential,
    errors: &mut Vec<PluginError>,
) {
    use super::config::Credential::*;
    let secret = match c {
        Bearer { token, .. } => token,
        Basic { password, .. } => password,
        ApiKey { value, .. } => value,
        Oauth2ClientCredentials { client_secret, .. } => client_secret,
    };
    if let Err(e) = secret.read() {
        errors.push(PluginError::config(
            plugin,
            format!("credential for {origin}: {e}"),
        ));
    }
}
