//! The one wasmtime `Engine` and the epoch ticker that bounds CPU.
//!
//! - Component model, async (guests run on fibers so a host call can await
//!   I/O), epoch interruption (a counter the ticker thread bumps every
//!   [`TICK`]; each store has a deadline in ticks, see `invoke.rs`).
//! - The pooling allocator, sized to the number of calls that may run at
//!   once: instantiation is then a few microseconds (slots are reused, memory
//!   is reset copy-on-write). The pool reserves address space up front (some
//!   gigabytes of it per memory slot, as guard regions); where that cannot be
//!   reserved (a `ulimit -v`, a 32-bit host) the engine falls back to on-demand
//!   allocation and says so in the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::PluginError;

/// One epoch tick: the granularity of CPU limits and of cooperative yields.
pub const TICK: Duration = Duration::from_millis(10);

/// Builds the engine. `concurrency` is how many plugin calls may run at
/// once; `max_memory_bytes` the largest memory limit of any plugin.
pub fn build(concurrency: u32, max_memory_bytes: usize) -> Result<(Engine, bool), PluginError> {
    let concurrency = concurrency.max(1);
    let mut pool = PoolingAllocationConfig::new();
    // A Rust wasm32-wasip2 component is a handful of core instances (the
    // program and wit-component's shims) with one memory and a few tables.
    pool.total_component_instances(concurrency)
        .total_core_instances(concurrency * 8)
        .max_core_instances_per_component(16)
        .total_memories(concurrency * 2)
        .max_memories_per_component(2)
        .total_tables(concurrency * 4)
        .max_tables_per_component(4)
        .total_stacks(concurrency)
        .max_memory_size(max_memory_bytes)
        .max_unused_warm_slots(concurrency.min(64));
    match Engine::new(&config(Some(pool))) {
        Ok(engine) => Ok((engine, true)),
        Err(e) => {
            tracing::warn!(
                error = %e,
                concurrency,
                "cannot reserve address space for the pooling allocator; \
                 plugins are instantiated on demand (slower, same limits)"
            );
            let engine =
                Engine::new(&config(None)).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
            Ok((engine, false))
        }
    }
}

fn config(pool: Option<PoolingAllocationConfig>) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    // Deterministic code for the cache key: no host-specific tuning flags
    // beyond what `precompile_compatibility_hash` covers.
    if let Some(pool) = pool {
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}

/// Bumps the engine's epoch every [`TICK`] on its own thread until dropped.
pub struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    pub fn start(engine: &Engine) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("vakt-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .expect("spawn the epoch ticker thread");
        Ticker { stop }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
