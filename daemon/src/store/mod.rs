//! Durable state: definitions, instances, hash-chained histories, and the
//! indexes the daemon scans (timers by due time, open tasks by assignee,
//! instances by workflow and status), behind narrow traits.
//!
//! - [`keys`] owns the key layout (and tests its ordering).
//! - [`chain`] links and verifies history entries.
//! - [`sled_store`] implements the traits on sled 0.34, with group commit:
//!   many instances' writes go into one atomic batch and one awaited flush,
//!   and nothing is acknowledged or performed before that flush returns.
//!
//! Invariant: only this module knows sled and the byte layout.

pub mod chain;
pub mod keys;
pub mod purge;
pub mod sled_store;

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::engine::{Action, Instance, Ts};
pub use chain::{ChainError, Entry};
pub use sled_store::{SledStore, StoreConfig};

/// The on-disk format version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0} (check the data directory's disk space and permissions)")]
    Sled(#[from] sled::Error),
    #[error("stored data is unreadable at {what}: {detail}")]
    Corrupt { what: String, detail: String },
    #[error(
        "the data directory has format version {found}, this vakt reads version {expected}: {hint}"
    )]
    Version {
        found: u32,
        expected: u32,
        hint: &'static str,
    },
}

impl StoreError {
    pub fn corrupt(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        StoreError::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// An instance as stored: its state and the hash its history ends with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub instance: Instance,
    #[serde(with = "hex_hash")]
    pub last_hash: [u8; 32],
}

impl Stored {
    pub fn new(id: &str) -> Self {
        Stored {
            instance: Instance {
                id: id.to_owned(),
                ..Default::default()
            },
            last_hash: chain::GENESIS,
        }
    }
}

/// An action kept until it has been performed (mail, child starts, parent
/// notifications): written with the records that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub instance: String,
    pub key: u64,
    pub action: serde_json::Value,
}

/// What the indexes hold of an instance: enough to update them by diff.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexState {
    pub workflow: String,
    pub status: &'static str,
    pub timers: Vec<(Ts, u32)>,
    /// Open tasks, by assignee.
    pub tasks: Vec<(String, u32)>,
    pub has_calls: bool,
}

impl IndexState {
    pub fn of(i: &Instance) -> Self {
        IndexState {
            workflow: i.workflow.clone(),
            status: i.status.as_str(),
            timers: i.timers.iter().map(|(id, t)| (t.due, *id)).collect(),
            tasks: i
                .tasks
                .iter()
                .filter(|(_, t)| t.open)
                .flat_map(|(id, t)| t.assignees.iter().map(move |a| (a.clone(), *id)))
                .collect(),
            has_calls: !i.calls.is_empty(),
        }
    }
}

/// What one instance's transition writes, atomically with the others of its group.
#[derive(Debug, Clone)]
pub struct Commit {
    pub id: String,
    /// The indexes before the transition (`None`: a new instance).
    pub before: Option<IndexState>,
    pub after: IndexState,
    /// The serialized [`Stored`] after the transition.
    pub snapshot: Vec<u8>,
    /// The new history entries, linked and serialized: `(seq, bytes)` (see
    /// [`chain::link_bytes`]).
    pub entries: Vec<(u64, Vec<u8>)>,
    /// Actions to keep in the outbox until performed.
    pub outbox: Vec<Action>,
    /// An `Idempotency-Key` to map to this instance.
    pub start_key: Option<String>,
}

/// Workflow definitions by content hash.
pub trait Definitions {
    fn put_definition(&self, hash: &str, source: &str) -> Result<()>;
    fn definition(&self, hash: &str) -> Result<Option<String>>;
}

/// Instances and their histories.
pub trait Instances {
    fn load(&self, id: &str) -> Result<Option<Stored>>;
    fn history(&self, id: &str) -> Result<Vec<Entry>>;
    fn instance_by_start_key(&self, key: &str) -> Result<Option<String>>;
    fn ids_by_workflow(
        &self,
        workflow: &str,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>>;
    fn all_ids(&self) -> Result<Vec<String>>;
    /// Writes a group of commits atomically and makes them durable.
    fn commit(&self, commits: &[Commit]) -> impl Future<Output = Result<()>> + Send;
    /// Instances with connector calls in flight (to re-issue after a crash).
    fn ids_with_calls(&self) -> Result<Vec<String>>;
}

/// Timers by due time.
pub trait Timers {
    /// Timers due at or before `until`, earliest first.
    fn due_timers(&self, until: Ts, limit: usize) -> Result<Vec<(Ts, String, u32)>>;
    /// The earliest timer, if any.
    fn next_timer(&self) -> Result<Option<Ts>>;
}

/// Open tasks by assignee, and the outbox.
pub trait Tasks {
    fn open_tasks_of(&self, assignee: &str) -> Result<Vec<(String, u32)>>;
    fn outbox(&self, limit: usize) -> Result<Vec<OutboxItem>>;
    fn outbox_done(&self, items: &[OutboxItem]) -> Result<()>;
}

mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s)
            .map_err(serde::de::Error::custom)?
            .try_into()
            .map_err(|_| serde::de::Error::custom("a hash is 32 bytes"))
    }
}
