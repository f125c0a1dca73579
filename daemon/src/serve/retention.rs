//! Retention: finished instances' payloads are purged after a period.
//!
//! Once an hour (and a minute after start) the finished instances are
//! scanned; an instance that finished longer ago than its workflow's
//! `retention` (or the config's `retention`) has its payloads purged (see
//! `store::purge`), and a marker in the store's `purged` namespace keeps it
//! from being read again. A retention of `0s` disables purging. The same
//! pass forgets the single-use markers of signed links a day after the links
//! expired.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::metrics::Metrics;
use crate::runtime::Runtime;

const NAMESPACE: &str = "purged";

/// Runs until `stop`.
pub async fn run(
    runtime: Runtime,
    retention: Duration,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    metrics.describe(
        "vakt_instances_purged_total",
        "counter",
        "Finished instances whose payloads were purged after the retention period.",
    );
    let mut wait = Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        wait = Duration::from_secs(3600);
        match sweep(&runtime, retention, &mut stop).await {
            Ok(0) => {}
            Ok(n) => {
                metrics.add("vakt_instances_purged_total", &[], n);
                tracing::info!(purged = n, "retention: finished instances' payloads purged");
            }
            Err(e) => tracing::error!(error = %e, "retention sweep failed; retrying in an hour"),
        }
    }
}

/// One pass; returns how many instances were purged.
pub async fn sweep(
    runtime: &Runtime,
    retention: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Result<u64, crate::store::StoreError> {
    let store = runtime.store();
    let now = runtime.now();
    let mut purged = 0;
    for status in ["completed", "failed", "cancelled"] {
        for (_, _, id) in store.list_instances(None, Some(status), usize::MAX)? {
            if *stop.borrow() {
                return Ok(purged);
            }
            if store.service_get(NAMESPACE, id.as_bytes())?.is_some() {
                continue;
            }
            let Some(i) = runtime.instance(&id).ok().flatten() else {
                continue;
            };
            let keep = runtime
                .plan_for(&i.hash)
                .ok()
                .and_then(|p| p.retention)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(retention.as_millis() as i64);
            if keep == 0 || i.updated_at.saturating_add(keep) > now {
                continue;
            }
            if store.purge_payloads(&id).await? {
                store
                    .service_put(NAMESPACE, id.as_bytes(), &now.to_be_bytes())
                    .await?;
                purged += 1;
            }
            tokio::task::yield_now().await;
        }
    }
    forget_dead_links(runtime, now).await?;
    Ok(purged)
}

/// Single-use markers of signed links are needed only until the link
/// expires; a day later they go.
async fn forget_dead_links(runtime: &Runtime, now: i64) -> Result<(), crate::store::StoreError> {
    let store = runtime.store();
    let dead: Vec<Vec<u8>> = store
        .service_scan("links")?
        .into_iter()
        .filter(|(_, v)| {
            serde_json::from_slice::<serde_json::Value>(v)
                .ok()
                .and_then(|j| j.get("expires").and_then(|e| e.as_i64()))
                .is_some_and(|exp| exp.saturating_add(86_400_000) < now)
        })
        .map(|(k, _)| k)
        .collect();
    if !dead.is_empty() {
        store.service_remove("links", &dead).await?;
    }
    Ok(())
}
