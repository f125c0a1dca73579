//! One store per call, and what a failed call's trap means.
//!
//! Limits on a store:
//! - memory: the limiter (`state.rs`) refuses growth past the plugin's limit
//!   and the refusal traps;
//! - CPU: the engine's epoch advances every [`TICK`]; when it passes the
//!   store's deadline while wasm runs, the callback below counts a tick,
//!   yields to the async executor (so a spinning plugin cannot starve other
//!   calls on the same worker thread) and traps once the plugin's CPU budget
//!   in ticks is spent. Time spent waiting on host I/O is not counted;
//! - wall clock: the caller wraps the whole call in `tokio::time::timeout`.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use super::engine::TICK;
use super::http::Egress;
use super::load::Caps;
use super::state::State;

/// A fresh store for one call of the plugin described by `caps`.
pub fn store(
    engine: &Engine,
    caps: Arc<Caps>,
    egress: Arc<Egress>,
    instance: &str,
    deadline: Instant,
) -> Store<State> {
    let budget = (caps.cpu.as_millis() / TICK.as_millis()).max(1) as u64;
    let mut store = Store::new(engine, State::new(caps, egress, instance, deadline));
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut cx| {
        let s = cx.data_mut();
        s.cpu_ticks += 1;
        if s.cpu_ticks >= budget {
            s.cpu_exceeded = true;
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store
}

/// A clear sentence for a call that failed with a wasmtime error: the memory
/// limit, the CPU limit, a panic (its message from stderr), or another trap.
pub fn describe_trap(plugin: &str, error: &wasmtime::Error, store: &Store<State>) -> String {
    let state = store.data();
    if state.limiter.memory_exceeded {
        return format!(
            "plugin `{plugin}` exceeded its {} memory limit",
            mib(state.caps.memory_bytes)
        );
    }
    if state.cpu_exceeded || matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return format!(
            "plugin `{plugin}` ran longer than {} of CPU and was stopped",
            seconds(state.caps.cpu)
        );
    }
    let stderr = state.stderr.text();
    if let Some(at) = stderr.find("panicked at") {
        let panic: String = stderr[at..]
            .lines()
            .take(2)
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        return format!("plugin `{plugin}` panicked: {panic}");
    }
    let mut text = match error.downcast_ref::<Trap>() {
        Some(trap) => format!("plugin `{plugin}` trapped: {trap}"),
        None => format!("plugin `{plugin}` failed: {}", root(error)),
    };
    if !stderr.is_empty() {
        let first: String = stderr
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(300)
            .collect();
        text.push_str(&format!(" (stderr: {first})"));
    }
    text
}

fn root(error: &wasmtime::Error) -> String {
    let s = format!("{error:#}");
    s.lines().next().unwrap_or("").to_string()
}

fn mib(bytes: usize) -> String {
    if bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{bytes} byte")
    }
}

fn seconds(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
