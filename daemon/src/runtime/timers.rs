//! The timer service: one task over the stored timer index.
//!
//! It fires every timer due at the clock's `now` (overdue ones first, after a
//! restart), then sleeps until the next due time, at most a second, or until
//! a new timer wakes it. A fired timer stays in the index until the instance's
//! commit removes it; the engine ignores a timer fired twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::{Cmd, Inner};
use crate::engine::Event;
use crate::store::Timers;

const BATCH: usize = 1024;

pub async fn run(inner: Arc<Inner>) {
    let mut in_flight: HashSet<(String, u32)> = HashSet::new();
    let stop = super::stopped(inner.stop.clone());
    tokio::pin!(stop);
    loop {
        let now = inner.clock.now();
        let due = match inner.store.due_timers(now, BATCH) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the timer index");
                Vec::new()
            }
        };
        let still: HashSet<(String, u32)> = due.iter().map(|(_, id, t)| (id.clone(), *t)).collect();
        in_flight.retain(|k| still.contains(k));
        for (_, id, timer) in due {
            if in_flight.insert((id.clone(), timer)) {
                inner.send(
                    &id,
                    Cmd::Event {
                        id: id.clone(),
                        event: Event::TimerFired { timer },
                        reply: None,
                    },
                );
            }
        }
        let wait = match inner.store.next_timer() {
            Ok(Some(next)) if next > now => {
                Duration::from_millis((next - now).clamp(1, 1000) as u64)
            }
            Ok(Some(_)) => Duration::from_millis(5),
            _ => Duration::from_secs(1),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = inner.timer_wake.notified() => {}
            _ = &mut stop => break,
        }
    }
}
