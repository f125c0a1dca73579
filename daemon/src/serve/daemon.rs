//! Wires the daemon together and runs it until SIGTERM or SIGINT.
//!
//! Start order: data directory → store → link key and tokens → plugin host
//! → listener (bound first, so the mailed links carry the real address) →
//! runtime (which recovers: re-issues interrupted calls, fires due timers,
//! drains the outbox) → workflows → scheduler → API.
//!
//! Shutdown order: stop accepting requests and let in-flight ones finish →
//! stop the loader and the scheduler → the runtime finishes what its shards
//! hold, flushes, and parks in-flight connector calls (their records say
//! they were requested; they are re-issued at the next start) → exit 0.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use super::config::Config;
use super::connectors::Router;
use super::links::LinkKey;
use super::loader::Loader;
use super::mailer::Mailer;
use super::metrics::{Metrics, describe_all};
use super::outbox::EmlOutbox;
use super::tokens::Tokens;
use super::{Shared, api, retention, scheduler};
use crate::plugin::{HostConfig, PluginConnector, PluginHost};
use crate::runtime::{Connector, Plans, Runtime, RuntimeConfig, SystemClock};
use crate::store::{SledStore, StoreConfig};

/// Runs the daemon with a checked config; returns when it has shut down.
pub async fn run(config: Config) -> Result<()> {
    crate::plugin::init();
    let config = Arc::new(config);
    private_dir(&config.data_dir)?;
    let store = SledStore::open(
        &config.data_dir.join("store"),
        &StoreConfig {
            cache_bytes: config.store_cache_mib << 20,
        },
    )
    .with_context(|| {
        format!(
            "cannot open the store in {} (is another vakt running on this data directory?)",
            config.data_dir.join("store").display()
        )
    })?;
    let metrics = Arc::new(Metrics::new());
    describe_all(&metrics);
    let links = Arc::new(LinkKey::open(&config.data_dir).map_err(anyhow::Error::msg)?);
    let tokens = Arc::new(Tokens::open(&config.data_dir).map_err(anyhow::Error::msg)?);

    let plugin_configs: Vec<_> = config.plugins.values().cloned().collect();
    let bound: Vec<String> = plugin_configs
        .iter()
        .filter_map(|p| p.role.clone())
        .collect();
    let plugins: Option<Arc<dyn Connector>> = if plugin_configs.is_empty() {
        None
    } else {
        let concurrency = config.max_calls.clamp(1, 1000) as u32;
        let host_config = HostConfig {
            concurrency,
            ..HostConfig::new(&config.data_dir)
        };
        let host = PluginHost::start(host_config, plugin_configs)
            .await
            .context("cannot load the plugins")?;
        Some(Arc::new(PluginConnector::new(Arc::new(host))))
    };
    let mail_fallback: Option<Arc<dyn Connector>> = if bound.iter().any(|r| r == "mail") {
        None
    } else {
        let dir = config.outbox_dir();
        tracing::info!(dir = %dir.display(), "no plugin is bound to `mail`: mail is written as .eml files");
        Some(Arc::new(EmlOutbox::new(dir, config.mail.from.clone())))
    };
    let connector: Arc<dyn Connector> =
        Arc::new(Router::new(plugins, bound, mail_fallback, metrics.clone()));

    let listen = config.listen_addr().context("listen")?;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} (is the port in use? set `listen` or VAKT_LISTEN)")
    })?;
    let bound_addr = listener.local_addr()?;
    let base_url = config.public_base(bound_addr);

    let notifier = Arc::new(Mailer::new(
        config.clone(),
        store.clone(),
        connector.clone(),
        links.clone(),
        metrics.clone(),
        base_url.clone(),
    ));
    let runtime = Runtime::open_observed(
        store,
        Plans::default(),
        connector,
        notifier,
        Arc::new(SystemClock),
        RuntimeConfig {
            shards: config
                .shards
                .unwrap_or_else(|| RuntimeConfig::default().shards),
            max_calls: config.max_calls,
        },
        Some(metrics.clone()),
    )
    .context("cannot start the runtime")?;

    let loader = Arc::new(Loader::new(
        config.workflows.clone(),
        runtime.clone(),
        metrics.clone(),
    ));
    let summary = loader.scan();
    tracing::info!(?summary, dir = %config.workflows.display(), "workflows loaded");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut services = vec![
        tokio::spawn(
            loader
                .clone()
                .watch(config.reload_interval, stop_rx.clone()),
        ),
        tokio::spawn(scheduler::run(
            runtime.clone(),
            metrics.clone(),
            stop_rx.clone(),
        )),
    ];
    services.push(tokio::spawn(retention::run(
        runtime.clone(),
        config.retention,
        metrics.clone(),
        stop_rx.clone(),
    )));

    let shared = Arc::new(Shared {
        config: config.clone(),
        runtime: runtime.clone(),
        loader,
        tokens,
        links,
        metrics,
        base_url: base_url.clone(),
    });
    let app = api::router(shared);
    // A line a person (or a test harness) can read, whatever the log format.
    println!("vakt: listening on {base_url} (bound to {bound_addr})");
    tracing::info!(%bound_addr, data_dir = %config.data_dir.display(), "vakt is serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the HTTP server failed")?;

    tracing::info!("shutting down: requests drained, stopping services");
    let _ = stop_tx.send(true);
    for s in services {
        let _ = s.await;
    }
    runtime.shutdown().await;
    tracing::info!("vakt stopped cleanly");
    Ok(())
}

/// Resolves at the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}

/// Creates the data directory, readable only by the daemon's user.
fn private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make the data directory {} private", dir.display()))?;
    }
    Ok(())
}
