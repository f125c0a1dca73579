//! The plugin host: connectors as sandboxed WebAssembly components.
//!
//! vakt reaches the outside world only through plugins (wasm32-wasip2
//! components implementing `vakt:plugin@0.1.0`, see `plugins/wit/`). This
//! module loads them and calls them for the runtime.
//!
//! - [`config`]: what the daemon's config grants each plugin ([`PluginConfig`]).
//! - `engine.rs`: the one `Engine` (component model, async, epoch
//!   interruption, pooling allocator) and the epoch ticker thread.
//! - `cache.rs`: compiled components on disk, keyed by content and engine.
//! - `load.rs`: link, read the manifest, intersect it with the grants.
//! - `state.rs`: a call's store (WASI with nothing in it, limits) and the
//!   host side of `log`, `settings`, `secrets`, `smtp`.
//! - `http/`: `wasi:http` through one shared reqwest client, with origin and
//!   address checks, credentials, redirects, size caps and an audit log.
//! - `smtp.rs`: the `smtp` interface over lettre.
//! - `files.rs`: the `files` interface: granted files by name, size-capped.
//! - `invoke.rs`: a fresh store per call, CPU accounting, trap messages.
//! - `connector.rs` and `convert.rs`: [`PluginConnector`], the runtime's
//!   `Connector`, mapping role/action/JSON to typed WIT calls and back.
//!
//! **Invariants.** A plugin has no filesystem, environment, arguments,
//! stdin or sockets (the host reads a granted file for it, by name); it
//! reaches HTTP origins, an SMTP relay and files only by grant, and only if
//! its manifest asked. Every call gets a fresh store: nothing
//! survives from one call to the next. Secret values are never logged and
//! never handed to a plugin unless granted by name. A plugin that traps,
//! loops or exhausts its memory fails its call; the daemon goes on.
//!
//! **Start-up.** Call [`init`] once before anything builds a TLS client.

mod bindings;
mod cache;
pub mod config;
mod connector;
mod convert;
mod engine;
mod error;
mod files;
mod host;
mod http;
mod invoke;
mod load;
mod smtp;
mod state;

pub use config::{Credential, HttpGrant, Origin, PluginConfig, SecretRef, SmtpGrant, SmtpTls};
pub use connector::PluginConnector;
pub use error::PluginError;
pub use host::{HostConfig, PluginHost};

/// Process-wide set-up for the plugin host; call once at start, before any
/// TLS client (reqwest, lettre) is built. Idempotent.
///
/// **rustls and its crypto provider.** rustls needs one process-wide crypto
/// provider when a client does not name its own; with two compiled in
/// (ring and aws-lc-rs), `ClientConfig::builder()` panics. vakt compiles in
/// exactly one, ring: wasmtime-wasi-http is built without
/// `default-send-request` (we send through reqwest, so it brings no TLS),
/// reqwest with `rustls-no-provider`, lettre with `ring`. `cargo tree -i
/// aws-lc-rs` must stay empty. Installing ring as the default here makes
/// every rustls client in the process use it, whoever builds it.
pub fn init() {
    // Err means a provider is installed already (a second call, or a test
    // harness that did it): nothing to do.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
