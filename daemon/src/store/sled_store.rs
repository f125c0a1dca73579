//! The sled implementation of the store traits.
//!
//! One tree, one atomic batch per group commit, one `flush_async` per group.
//! sled's background flush runs every 500 ms; we never rely on it: a commit
//! returns only after its own flush.

use std::collections::BTreeSet;
use std::path::Path;

use super::chain::Entry;
use super::keys;
use super::{
    Commit, Definitions, IndexState, Instances, OutboxItem, Result, SCHEMA_VERSION, StoreError,
    Stored, Tasks, Timers,
};
use crate::engine::Ts;

/// Store settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_bytes: 64 << 20,
        }
    }
}

/// The sled-backed store.
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, checking the format version.
    pub fn open(dir: &Path, config: &StoreConfig) -> Result<Self> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(config.cache_bytes)
            .mode(sled::Mode::HighThroughput)
            .open()?;
        let tree = db.open_tree("vakt")?;
        let store = SledStore { db, tree };
        match store.tree.get(keys::meta("schema_version"))? {
            None => {
                store
                    .tree
                    .insert(keys::meta("schema_version"), &SCHEMA_VERSION.to_be_bytes())?;
                store.db.flush()?;
            }
            Some(v) => {
                let found = v.as_ref().try_into().map(u32::from_be_bytes).unwrap_or(0);
                if found != SCHEMA_VERSION {
                    return Err(StoreError::Version {
                        found,
                        expected: SCHEMA_VERSION,
                        hint: "run the vakt version that wrote it, or migrate the directory",
                    });
                }
            }
        }
        Ok(store)
    }

    /// Makes everything written so far durable.
    pub async fn flush(&self) -> Result<()> {
        self.tree.flush_async().await?;
        Ok(())
    }

    /// Reads a value of the daemon's own state (`namespace`/`name`).
    pub fn service_get(&self, namespace: &str, name: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree
            .get(keys::service(namespace, name))?
            .map(|v| v.to_vec()))
    }

    /// Writes a value of the daemon's own state and makes it durable.
    pub async fn service_put(&self, namespace: &str, name: &[u8], value: &[u8]) -> Result<()> {
        self.tree.insert(keys::service(namespace, name), value)?;
        self.tree.flush_async().await?;
        Ok(())
    }

    /// Writes a value only if the name is new, durably; false if it existed
    /// (single-use markers: a signed link that was used).
    pub async fn service_claim(&self, namespace: &str, name: &[u8], value: &[u8]) -> Result<bool> {
        let won = self
            .tree
            .compare_and_swap(keys::service(namespace, name), None::<&[u8]>, Some(value))?
            .is_ok();
        if won {
            self.tree.flush_async().await?;
        }
        Ok(won)
    }

    /// Every `(name, value)` of a namespace, in name order.
    pub fn service_scan(&self, namespace: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let prefix = keys::service_prefix(namespace);
        self.tree
            .scan_prefix(&prefix)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k[prefix.len()..].to_vec(), v.to_vec()))
            })
            .collect()
    }

    /// Removes names of a namespace (durably).
    pub async fn service_remove(&self, namespace: &str, names: &[Vec<u8>]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for n in names {
            batch.remove(keys::service(namespace, n));
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush_async().await?;
        Ok(())
    }

    /// Instances by workflow and status, `(workflow, status, id)`, at most
    /// `limit`, from the index (no snapshot is read). `None` matches all.
    pub fn list_instances(
        &self,
        workflow: Option<&str>,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String, String)>> {
        let prefix = match workflow {
            Some(w) => keys::by_workflow_prefix(w, status),
            None => vec![keys::BY_WORKFLOW],
        };
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(prefix) {
            let (k, _) = kv?;
            if let Some(t) = keys::parse_by_workflow_full(&k)
                && status.is_none_or(|s| s == t.1)
            {
                out.push(t);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Instances counted by `(workflow, status)`; for metrics.
    pub fn count_instances(&self) -> Result<std::collections::BTreeMap<(String, String), u64>> {
        let mut out = std::collections::BTreeMap::new();
        for kv in self.tree.scan_prefix([keys::BY_WORKFLOW]) {
            let (k, _) = kv?;
            if let Some((w, s, _)) = keys::parse_by_workflow_full(&k) {
                *out.entry((w, s)).or_insert(0) += 1;
            }
        }
        Ok(out)
    }

    /// Pending timers and open task assignments; for metrics.
    pub fn count_timers_and_tasks(&self) -> Result<(u64, u64)> {
        let timers = self.tree.scan_prefix([keys::TIMER]).keys().count() as u64;
        let tasks = self.tree.scan_prefix([keys::TASK]).keys().count() as u64;
        Ok((timers, tasks))
    }

    /// Every open task assignment, `(assignee, instance, task)`.
    pub fn all_open_tasks(&self, limit: usize) -> Result<Vec<(String, String, u32)>> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix([keys::TASK]).take(limit) {
            let (k, _) = kv?;
            out.extend(keys::parse_task(&k));
        }
        Ok(out)
    }

    /// Purges a finished instance's payloads (see [`super::purge`]) in its
    /// snapshot and every history entry, atomically and durably. Returns
    /// false when there was nothing to purge (unknown, or not finished).
    pub async fn purge_payloads(&self, id: &str) -> Result<bool> {
        let Some(raw) = self.tree.get(keys::instance(id))? else {
            return Ok(false);
        };
        let mut snapshot: serde_json::Value = serde_json::from_slice(&raw)
            .map_err(|e| StoreError::corrupt(format!("instance {id}"), e))?;
        let status = snapshot["instance"]["status"].as_str().unwrap_or("");
        if !matches!(status, "completed" | "failed" | "cancelled") {
            return Ok(false);
        }
        let mut batch = sled::Batch::default();
        if super::purge::redact(&mut snapshot["instance"]) {
            batch.insert(
                keys::instance(id),
                serde_json::to_vec(&snapshot).expect("json serializes"),
            );
        }
        for kv in self.tree.scan_prefix(keys::history_prefix(id)) {
            let (k, v) = kv?;
            let mut entry: Entry = serde_json::from_slice(&v)
                .map_err(|e| StoreError::corrupt(format!("history of {id}"), e))?;
            let mut record = serde_json::to_value(&entry.record).expect("records serialize");
            let original = super::chain::content_hash(
                &serde_json::to_vec(&entry.record).expect("records serialize"),
            );
            if super::purge::redact(&mut record) {
                entry.record = serde_json::from_value(record)
                    .map_err(|e| StoreError::corrupt(format!("purging history of {id}"), e))?;
                entry.purged.get_or_insert(original);
                batch.insert(k, serde_json::to_vec(&entry).expect("entries serialize"));
            }
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush_async().await?;
        Ok(true)
    }

    /// Bytes on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
    }

    fn build_batch(&self, commits: &[Commit]) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for c in commits {
            let id = c.id.as_str();
            let mut last_seq = 0;
            for (seq, bytes) in &c.entries {
                batch.insert(keys::history(id, *seq), bytes.as_slice());
                last_seq = *seq;
            }
            batch.insert(keys::instance(id), c.snapshot.as_slice());
            index_diff(&mut batch, id, c.before.as_ref(), &c.after);
            for (i, action) in c.outbox.iter().enumerate() {
                let key = last_seq * 64 + i as u64;
                let item = OutboxItem {
                    instance: id.to_owned(),
                    key,
                    action: serde_json::to_value(action).expect("actions serialize"),
                };
                batch.insert(
                    keys::outbox(id, key),
                    serde_json::to_vec(&item).expect("outbox serializes"),
                );
            }
            if let Some(k) = &c.start_key {
                batch.insert(keys::start_key(k), id.as_bytes());
            }
        }
        batch
    }
}

/// Updates the timer, task, call and workflow/status indexes by diff.
fn index_diff(batch: &mut sled::Batch, id: &str, before: Option<&IndexState>, after: &IndexState) {
    let empty = IndexState::default();
    let b = before.unwrap_or(&empty);
    let (t0, t1): (BTreeSet<_>, BTreeSet<_>) =
        (b.timers.iter().collect(), after.timers.iter().collect());
    for (due, t) in t0.difference(&t1) {
        batch.remove(keys::timer(*due, id, *t));
    }
    for (due, t) in t1.difference(&t0) {
        batch.insert(keys::timer(*due, id, *t), &[]);
    }
    let (a0, a1): (BTreeSet<_>, BTreeSet<_>) =
        (b.tasks.iter().collect(), after.tasks.iter().collect());
    for (who, t) in a0.difference(&a1) {
        batch.remove(keys::task(who, id, *t));
    }
    for (who, t) in a1.difference(&a0) {
        batch.insert(keys::task(who, id, *t), &[]);
    }
    if b.has_calls && !after.has_calls {
        batch.remove(keys::calls(id));
    } else if !b.has_calls && after.has_calls {
        batch.insert(keys::calls(id), &[]);
    }
    let moved = before.is_none_or(|b| b.status != after.status || b.workflow != after.workflow);
    if moved {
        if let Some(b) = before {
            batch.remove(keys::by_workflow(&b.workflow, b.status, id));
        }
        batch.insert(keys::by_workflow(&after.workflow, after.status, id), &[]);
    }
}

impl Definitions for SledStore {
    fn put_definition(&self, hash: &str, source: &str) -> Result<()> {
        self.tree
            .insert(keys::definition(hash), source.as_bytes())?;
        Ok(())
    }

    fn definition(&self, hash: &str) -> Result<Option<String>> {
        match self.tree.get(keys::definition(hash))? {
            None => Ok(None),
            Some(v) => String::from_utf8(v.to_vec())
                .map(Some)
                .map_err(|e| StoreError::corrupt(format!("definition {hash}"), e)),
        }
    }
}

impl Instances for SledStore {
    fn load(&self, id: &str) -> Result<Option<Stored>> {
        match self.tree.get(keys::instance(id))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::corrupt(format!("instance {id}"), e)),
        }
    }

    fn history(&self, id: &str) -> Result<Vec<Entry>> {
        self.tree
            .scan_prefix(keys::history_prefix(id))
            .map(|kv| {
                let (_, v) = kv?;
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::corrupt(format!("history of {id}"), e))
            })
            .collect()
    }

    fn instance_by_start_key(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .tree
            .get(keys::start_key(key))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn ids_by_workflow(
        &self,
        workflow: &str,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for kv in self
            .tree
            .scan_prefix(keys::by_workflow_prefix(workflow, status))
            .take(limit)
        {
            let (k, _) = kv?;
            out.extend(keys::parse_by_workflow(&k));
        }
        Ok(out)
    }

    fn all_ids(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix([keys::INSTANCE]) {
            let (k, _) = kv?;
            out.push(String::from_utf8_lossy(&k[1..]).into_owned());
        }
        Ok(out)
    }

    async fn commit(&self, commits: &[Commit]) -> Result<()> {
        let batch = self.build_batch(commits);
        self.tree.apply_batch(batch)?;
        self.tree.flush_async().await?;
        Ok(())
    }

    fn ids_with_calls(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix([keys::CALLS]) {
            let (k, _) = kv?;
            out.push(String::from_utf8_lossy(&k[1..]).into_owned());
        }
        Ok(out)
    }
}

impl Timers for SledStore {
    fn due_timers(&self, until: Ts, limit: usize) -> Result<Vec<(Ts, String, u32)>> {
        let mut out = Vec::new();
        for kv in self
            .tree
            .range(vec![keys::TIMER]..keys::timers_after(until))
            .take(limit)
        {
            let (k, _) = kv?;
            out.extend(keys::parse_timer(&k));
        }
        Ok(out)
    }

    fn next_timer(&self) -> Result<Option<Ts>> {
        match self.tree.scan_prefix([keys::TIMER]).next() {
            Some(kv) => Ok(keys::parse_timer(&kv?.0).map(|t| t.0)),
            None => Ok(None),
        }
    }
}

impl Tasks for SledStore {
    fn open_tasks_of(&self, assignee: &str) -> Result<Vec<(String, u32)>> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(keys::tasks_of(assignee)) {
            let (k, _) = kv?;
            if let Some((_, id, task)) = keys::parse_task(&k) {
                out.push((id, task));
            }
        }
        Ok(out)
    }

    fn outbox(&self, limit: usize) -> Result<Vec<OutboxItem>> {
        self.tree
            .scan_prefix([keys::OUTBOX])
            .take(limit)
            .map(|kv| {
                let (_, v) = kv?;
                serde_json::from_slice(&v).map_err(|e| StoreError::corrupt("outbox", e))
            })
            .collect()
    }

    fn outbox_done(&self, items: &[OutboxItem]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for i in items {
            batch.remove(keys::outbox(&i.instance, i.key));
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}
