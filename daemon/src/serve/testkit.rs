//! A runtime over a temporary store with a manual clock, for the serve tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::engine::{CallOutcome, Ts};
use crate::runtime::{
    BoxFuture, Clock, Connector, ConnectorCall, LogNotifier, Plans, Runtime, RuntimeConfig,
};
use crate::store::{SledStore, StoreConfig};

/// A clock that moves only when told.
pub struct Manual(pub AtomicI64);

impl Manual {
    pub fn at(now: Ts) -> Arc<Manual> {
        Arc::new(Manual(AtomicI64::new(now)))
    }
}

impl Clock for Manual {
    fn now(&self) -> Ts {
        self.0.load(Ordering::SeqCst)
    }
}

/// Answers every call with `{}`.
struct NoCalls;

impl Connector for NoCalls {
    fn call(&self, _: ConnectorCall) -> BoxFuture<CallOutcome> {
        Box::pin(async { CallOutcome::Ok(serde_json::json!({})) })
    }
}

pub fn with_clock(dir: &std::path::Path, clock: Arc<Manual>) -> Runtime {
    let store = SledStore::open(dir, &StoreConfig::default()).unwrap();
    let config = RuntimeConfig {
        shards: 1,
        max_calls: 4,
    };
    let (connector, notifier) = (Arc::new(NoCalls), Arc::new(LogNotifier));
    Runtime::open(store, Plans::default(), connector, notifier, clock, config).unwrap()
}

pub fn runtime(dir: &std::path::Path, now: Ts) -> (Runtime, Arc<Manual>) {
    let clock = Manual::at(now);
    (with_clock(dir, clock.clone()), clock)
}
