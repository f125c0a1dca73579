//! The runtime: drives instances with tokio. Persist, then act.
//!
//! ```text
//!  API / timers / connector answers
//!        │ Cmd (routed by instance id)
//!        ▼
//!  shard workers (one per core) ── engine::handle ──► Commit ──► committer
//!                                                               │ one batch, one flush
//!                                                               ▼
//!                        replies to callers, connector calls, outbox, timer wake-up
//! ```
//!
//! - No task per instance and none per timer: a fixed set of shard workers
//!   runs transitions; one committer groups every commit that arrives while a
//!   flush is in progress into the next batch (group commit); one timer
//!   service scans the stored timer index; one outbox dispatcher performs
//!   notifications (grouped by instance) and child starts.
//! - Nothing is acknowledged or performed before its records are flushed.
//! - Waiting instances are not held in memory: a shard keeps an instance
//!   only while its commit is in flight.
//! - On open, in-flight connector calls are re-issued (same idempotency key),
//!   due timers fire, the outbox is drained; open tasks simply stay open.

mod committer;
mod shard;
mod timers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

pub use crate::engine::Status;
use crate::engine::model::NotifyReason;
use crate::engine::{CallOutcome, Event, Instance, Record, Rejection, Ts};
use crate::store::{Definitions, Instances, SledStore, StoreError};
use crate::workflow::Plan;
pub use committer::Notice;

/// Time, injected: the system clock in the daemon, a manual one in tests.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Ts;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Ts {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A connector call as the runtime hands it to the plugin host.
#[derive(Debug, Clone)]
pub struct ConnectorCall {
    pub instance: String,
    pub role: String,
    pub action: String,
    pub args: Value,
    pub idempotency_key: String,
    pub attempt: u32,
    pub deadline: Option<Ts>,
}

pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Reaches the outside world (the plugin host implements it).
pub trait Connector: Send + Sync + 'static {
    fn call(&self, call: ConnectorCall) -> BoxFuture<CallOutcome>;
}

/// Mails assignees about tasks (the daemon's mailer implements it).
pub trait Notifier: Send + Sync + 'static {
    fn notify(
        &self,
        instance: &Instance,
        task: u32,
        to: &[String],
        reason: NotifyReason,
    ) -> BoxFuture<Result<(), String>>;

    /// The notices of one instance read together ([`Notice`]), e.g. as one
    /// digest per person; an error retries them all. Default: `notify` each.
    fn notify_many(&self, inst: &Instance, notices: &[Notice]) -> BoxFuture<Result<(), String>> {
        committer::notify_each(self, inst, notices)
    }
}

/// Sees every transition before it is committed (the daemon's metrics).
/// Called on a shard worker: it must be quick and must not block.
pub trait Observer: Send + Sync + 'static {
    /// `entered`: when each thread entered the step it was on before the
    /// transition; `records`: what the transition recorded, at `now`.
    fn transition(&self, workflow: &str, entered: &[(u32, Ts)], records: &[Record], now: Ts);
}

/// A notifier that only logs, for tests and tools.
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn notify(
        &self,
        instance: &Instance,
        task: u32,
        to: &[String],
        reason: NotifyReason,
    ) -> BoxFuture<Result<(), String>> {
        tracing::info!(instance = %instance.id, task, recipients = to.len(), ?reason, "task notification");
        Box::pin(async { Ok(()) })
    }
}

/// Errors the runtime gives callers.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("no workflow `{0}` is loaded")]
    UnknownWorkflow(String),
    #[error("workflow `{0}` cannot be started this way")]
    NotStartable(String),
    #[error("invalid input: {}", .0.join("; "))]
    Input(Vec<String>),
    #[error("no instance `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the runtime is shutting down")]
    ShuttingDown,
}

/// Runtime settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub shards: usize,
    /// Connector calls in flight at once.
    pub max_calls: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            shards: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(1, 16),
            max_calls: 256,
        }
    }
}

/// The loaded plans: by definition hash, and the current one per workflow id.
#[derive(Default)]
pub struct Plans {
    by_hash: HashMap<String, Arc<Plan>>,
    current: HashMap<String, String>,
}

impl Plans {
    pub fn insert(&mut self, plan: Arc<Plan>) {
        self.current.insert(plan.id.clone(), plan.hash.clone());
        self.by_hash.insert(plan.hash.clone(), plan);
    }

    pub fn current(&self, workflow: &str) -> Option<Arc<Plan>> {
        self.current
            .get(workflow)
            .and_then(|h| self.by_hash.get(h))
            .cloned()
    }

    pub fn by_hash(&self, hash: &str) -> Option<Arc<Plan>> {
        self.by_hash.get(hash).cloned()
    }

    /// Takes a workflow out of new starts (its file was removed); running
    /// instances keep their plan.
    pub fn retire(&mut self, workflow: &str) -> bool {
        self.current.remove(workflow).is_some()
    }

    /// The current plan of every startable workflow.
    pub fn all_current(&self) -> Vec<Arc<Plan>> {
        self.current
            .values()
            .filter_map(|h| self.by_hash.get(h).cloned())
            .collect()
    }
}

pub(crate) enum Cmd {
    Start {
        id: String,
        plan: Arc<Plan>,
        input: Value,
        by: String,
        parent: Option<String>,
        key: Option<String>,
        reply: Option<oneshot::Sender<Result<String, RuntimeError>>>,
    },
    Event {
        id: String,
        event: Event,
        reply: Option<oneshot::Sender<Result<(), RuntimeError>>>,
    },
    /// A commit of this instance up to `seq` is durable.
    Flushed { id: String, seq: u64 },
    /// A commit failed: forget the in-memory state, reload from disk.
    Discard { id: String },
}

pub(crate) struct Inner {
    pub store: SledStore,
    pub plans: RwLock<Plans>,
    pub connector: Arc<dyn Connector>,
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    pub shards: Vec<mpsc::UnboundedSender<Cmd>>,
    pub committer: mpsc::UnboundedSender<committer::Pending>,
    pub timer_wake: Notify,
    pub outbox_wake: Notify,
    pub calls: Semaphore,
    pub pending_keys: Mutex<HashMap<String, String>>,
    /// Turns true when the runtime shuts down.
    pub stop: tokio::sync::watch::Receiver<bool>,
    /// Who waits for which instance to finish.
    pub finals: Mutex<HashMap<String, Vec<oneshot::Sender<crate::engine::Status>>>>,
    /// Held by the committer from applying a batch until its flush returns,
    /// and by readers that must see only durable data (the outbox).
    pub commit_gate: tokio::sync::Mutex<()>,
    pub observer: Option<Arc<dyn Observer>>,
}

/// Resolves when the runtime is told to stop.
pub(crate) async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

impl Inner {
    /// An instance reached a final status (durably).
    pub fn finished(&self, id: &str, status: crate::engine::Status) {
        if let Some(waiters) = self.finals.lock().expect("finals lock").remove(id) {
            for w in waiters {
                let _ = w.send(status);
            }
        }
    }

    pub fn shard_of(&self, id: &str) -> &mpsc::UnboundedSender<Cmd> {
        let h = id.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
        &self.shards[(h % self.shards.len() as u64) as usize]
    }

    pub fn send(&self, id: &str, cmd: Cmd) {
        let _ = self.shard_of(id).send(cmd);
    }

    /// The plan an instance is pinned to: loaded, or rebuilt from the stored definition.
    pub fn plan_for(&self, hash: &str) -> Result<Arc<Plan>, RuntimeError> {
        if let Some(p) = self.plans.read().expect("plans lock").by_hash(hash) {
            return Ok(p);
        }
        let source = self
            .store
            .definition(hash)?
            .ok_or_else(|| StoreError::corrupt(format!("definition {hash}"), "missing"))?;
        let loaded = crate::workflow::load_source(format!("<stored {hash}>"), source);
        let plan = loaded
            .result
            .map_err(|d| StoreError::corrupt(format!("definition {hash}"), format!("{d:?}")))?;
        self.plans
            .write()
            .expect("plans lock")
            .by_hash
            .insert(hash.to_owned(), plan.clone());
        Ok(plan)
    }
}

/// A handle on the running runtime.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
    stop: Arc<tokio::sync::watch::Sender<bool>>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Runtime {
    /// Starts the runtime's tasks over an open store and recovers.
    pub fn open(
        store: SledStore,
        plans: Plans,
        connector: Arc<dyn Connector>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        config: RuntimeConfig,
    ) -> Result<Runtime, RuntimeError> {
        Self::open_observed(store, plans, connector, notifier, clock, config, None)
    }

    /// [`Runtime::open`] with an observer of every transition.
    pub fn open_observed(
        store: SledStore,
        plans: Plans,
        connector: Arc<dyn Connector>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        config: RuntimeConfig,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<Runtime, RuntimeError> {
        let (commit_tx, commit_rx) = mpsc::unbounded_channel();
        let mut shard_rx = Vec::new();
        let mut shards = Vec::new();
        for _ in 0..config.shards.max(1) {
            let (tx, rx) = mpsc::unbounded_channel();
            shards.push(tx);
            shard_rx.push(rx);
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let inner = Arc::new(Inner {
            store,
            plans: RwLock::new(plans),
            connector,
            notifier,
            clock,
            shards,
            committer: commit_tx,
            timer_wake: Notify::new(),
            outbox_wake: Notify::new(),
            calls: Semaphore::new(config.max_calls.max(1)),
            pending_keys: Mutex::new(HashMap::new()),
            stop: stop_rx,
            finals: Mutex::new(HashMap::new()),
            commit_gate: tokio::sync::Mutex::new(()),
            observer,
        });
        let mut tasks = Vec::new();
        for rx in shard_rx {
            tasks.push(tokio::spawn(shard::run(inner.clone(), rx)));
        }
        tasks.push(tokio::spawn(committer::run(inner.clone(), commit_rx)));
        tasks.push(tokio::spawn(timers::run(inner.clone())));
        tasks.push(tokio::spawn(committer::outbox(inner.clone())));
        committer::recover(&inner)?;
        Ok(Runtime {
            inner,
            stop: Arc::new(stop_tx),
            tasks: Arc::new(Mutex::new(tasks)),
        })
    }

    /// Stops the runtime: shards and services finish what they hold, the
    /// committer writes and flushes what it was given, then all tasks end.
    /// In-flight connector calls are abandoned; they are re-issued at the
    /// next open (their records say they were requested).
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        for t in tasks {
            let _ = t.await;
        }
        if let Err(e) = self.inner.store.flush().await {
            tracing::error!(error = %e, "final flush failed");
        }
    }

    pub fn store(&self) -> &SledStore {
        &self.inner.store
    }

    /// Makes a plan current for new starts, storing its definition.
    pub fn install(&self, plan: Arc<Plan>, source: &str) -> Result<(), RuntimeError> {
        self.inner.store.put_definition(&plan.hash, source)?;
        self.inner.plans.write().expect("plans lock").insert(plan);
        Ok(())
    }

    /// The current plan of a workflow (what new starts use).
    pub fn current(&self, workflow: &str) -> Option<Arc<Plan>> {
        self.inner
            .plans
            .read()
            .expect("plans lock")
            .current(workflow)
    }

    /// The current plan of every startable workflow.
    pub fn current_plans(&self) -> Vec<Arc<Plan>> {
        self.inner.plans.read().expect("plans lock").all_current()
    }

    /// Takes a workflow out of new starts; running instances go on.
    pub fn retire(&self, workflow: &str) -> bool {
        self.inner
            .plans
            .write()
            .expect("plans lock")
            .retire(workflow)
    }

    /// The plan a definition hash names: loaded, or rebuilt from the store.
    pub fn plan_for(&self, hash: &str) -> Result<Arc<Plan>, RuntimeError> {
        self.inner.plan_for(hash)
    }

    /// The clock the runtime runs on.
    pub fn now(&self) -> Ts {
        self.inner.clock.now()
    }

    /// Starts an instance; returns once its start is durable.
    pub async fn start(
        &self,
        workflow: &str,
        input: Value,
        by: &str,
        key: Option<String>,
    ) -> Result<String, RuntimeError> {
        let plan = self
            .inner
            .plans
            .read()
            .expect("plans lock")
            .current(workflow)
            .ok_or_else(|| RuntimeError::UnknownWorkflow(workflow.to_owned()))?;
        let input = crate::engine::input::check(&plan, &input).map_err(RuntimeError::Input)?;
        if let Some(k) = &key {
            if let Some(id) = self.inner.store.instance_by_start_key(k)? {
                return Ok(id);
            }
            if let Some(id) = self.inner.pending_keys.lock().expect("keys lock").get(k) {
                return Ok(id.clone());
            }
        }
        let id = uuid::Uuid::now_v7().simple().to_string();
        if let Some(k) = &key {
            self.inner
                .pending_keys
                .lock()
                .expect("keys lock")
                .insert(k.clone(), id.clone());
        }
        let (tx, rx) = oneshot::channel();
        self.inner.send(
            &id,
            Cmd::Start {
                id: id.clone(),
                plan,
                input,
                by: by.to_owned(),
                parent: None,
                key,
                reply: Some(tx),
            },
        );
        rx.await.map_err(|_| RuntimeError::ShuttingDown)?
    }

    /// Delivers an event; returns once its records are durable.
    pub async fn event(&self, id: &str, event: Event) -> Result<(), RuntimeError> {
        let (tx, rx) = oneshot::channel();
        self.inner.send(
            id,
            Cmd::Event {
                id: id.to_owned(),
                event,
                reply: Some(tx),
            },
        );
        rx.await.map_err(|_| RuntimeError::ShuttingDown)?
    }

    /// Waits until an instance has finished; returns its final status.
    pub async fn wait_final(&self, id: &str) -> Result<crate::engine::Status, RuntimeError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .finals
            .lock()
            .expect("finals lock")
            .entry(id.to_owned())
            .or_default()
            .push(tx);
        match self.inner.store.load(id)? {
            None => return Err(RuntimeError::NotFound(id.to_owned())),
            Some(s) if s.instance.status.is_final() => return Ok(s.instance.status),
            Some(_) => {}
        }
        rx.await.map_err(|_| RuntimeError::ShuttingDown)
    }

    /// Reads an instance's stored state.
    pub fn instance(&self, id: &str) -> Result<Option<Instance>, RuntimeError> {
        Ok(self.inner.store.load(id)?.map(|s| s.instance))
    }
}
