//! `vakt serve`: the daemon an IT department runs on one VM.
//!
//! ```text
//!  config ─► store (sled) ─► runtime (shards, committer, timers, outbox)
//!                              ▲            │ connector calls, notifications
//!   loader (workflow dir) ─────┤            ▼
//!   scheduler (cron) ──────────┤      connectors: plugin host, or the .eml outbox for mail
//!   HTTP API (axum) ───────────┘      mailer: approval mail with signed links
//! ```
//!
//! - [`config`]: `vakt.toml` + `VAKT_*`, checked at start.
//! - [`loader`]: loads the workflow directory and reloads changed files.
//! - [`scheduler`]: cron triggers, with the last fire of each persisted.
//! - [`api`]: HTTP API v1, authentication ([`tokens`]) and the signed-link
//!   pages ([`pages`], keys in [`links`]).
//! - [`mailer`]: the runtime's `Notifier`: approval mail with links.
//! - [`outbox`]: the `mail` role when no plugin is bound: `.eml` files.
//! - [`connectors`]: routes a role to its plugin (or the outbox), timed.
//! - [`metrics`]: counters and histograms in Prometheus text.
//! - [`daemon`]: wires it all together, runs until SIGTERM/SIGINT.

pub mod api;
pub mod config;
pub mod connectors;
pub mod daemon;
pub mod links;
pub mod loader;
pub mod mailer;
pub mod metrics;
pub mod outbox;
pub mod pages;
pub mod retention;
pub mod scheduler;
#[cfg(test)]
pub(crate) mod testkit;
pub mod tokens;

use std::sync::Arc;

pub use config::Config;
pub use daemon::run;

use crate::runtime::Runtime;

/// What the API handlers and pages share.
pub struct Shared {
    pub config: Arc<Config>,
    pub runtime: Runtime,
    pub loader: Arc<loader::Loader>,
    pub tokens: Arc<tokens::Tokens>,
    pub links: Arc<links::LinkKey>,
    pub metrics: Arc<metrics::Metrics>,
    /// The base of links in mail and pages (`http://127.0.0.1:7700`).
    pub base_url: String,
}
