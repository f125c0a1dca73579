//! What one call's `Store` holds, and the host side of the plugin imports.
//!
//! A store lives for one connector call: fresh WASI state with nothing in it
//! (no preopened directories, no environment, no arguments, stdin closed,
//! stdout discarded, the start of stderr kept for a panic message; sockets
//! and name lookups denied), the `wasi:http` hooks bound to the plugin's
//! policy, and the limiter that enforces the memory limit.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::WitError;
use super::bindings::host::vakt::plugin::{log, secrets, settings, smtp, types};
use super::http::{Egress, HttpHooks, Violations};
use super::load::Caps;

/// How much of stderr is kept (a panic message fits).
const STDERR_KEEP: usize = 2048;
/// Longest log message taken from a plugin.
const LOG_MAX: usize = 4096;

/// The data of one call's store.
pub struct State {
    pub caps: Arc<Caps>,
    pub instance: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    http_ctx: WasiHttpCtx,
    hooks: HttpHooks,
    pub limiter: Limiter,
    pub stderr: StderrTail,
    pub deadline: Instant,
    pub cpu_ticks: u64,
    pub cpu_exceeded: bool,
    pub violations: Violations,
}

impl State {
    pub fn new(caps: Arc<Caps>, egress: Arc<Egress>, instance: &str, deadline: Instant) -> State {
        let instance: Arc<str> = Arc::from(instance);
        let stderr = StderrTail::default();
        let mut wasi = WasiCtx::builder();
        wasi.stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let violations = Violations::default();
        State {
            hooks: HttpHooks {
                egress,
                policy: caps.http.clone(),
                instance: instance.clone(),
                deadline,
                violations: violations.clone(),
            },
            limiter: Limiter::new(caps.memory_bytes),
            caps,
            instance,
            wasi: wasi.build(),
            table: ResourceTable::new(),
            http_ctx: WasiHttpCtx::new(),
            stderr,
            deadline,
            cpu_ticks: 0,
            cpu_exceeded: false,
            violations,
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// `StoreLimits` plus a note of whether the memory limit was hit, so the
/// trap can be reported as what it is.
pub struct Limiter {
    inner: StoreLimits,
    pub memory_exceeded: bool,
    limit: usize,
}

impl Limiter {
    fn new(memory_bytes: usize) -> Limiter {
        Limiter {
            inner: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .instances(64)
                .tables(64)
                .memories(8)
                .trap_on_grow_failure(true)
                .build(),
            memory_exceeded: false,
            limit: memory_bytes,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.memory_exceeded = true;
        }
        self.inner.memory_growing(current, desired, maximum)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }
    fn tables(&self) -> usize {
        self.inner.tables()
    }
    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// Keeps the first [`STDERR_KEEP`] bytes a plugin writes to stderr and
/// discards the rest (a plugin cannot fill the host's memory through it).
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<Vec<u8>>>);

impl StderrTail {
    /// What was kept, as text, trimmed.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .trim()
            .to_string()
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut kept = self.0.lock().unwrap();
        let room = STDERR_KEEP.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..buf.len().min(room)]);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

// ---- The vakt:plugin imports ----

impl types::Host for State {}

impl log::Host for State {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let mut message = message;
        if message.len() > LOG_MAX {
            let mut end = LOG_MAX;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        let plugin = self.caps.name.as_str();
        let instance = &*self.instance;
        match level {
            log::Level::Trace => tracing::trace!(plugin, instance, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, instance, "{message}"),
            log::Level::Info => tracing::info!(plugin, instance, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, instance, "{message}"),
            log::Level::Error => tracing::error!(plugin, instance, "{message}"),
        }
        Ok(())
    }
}

impl settings::Host for State {
    fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.caps.settings.get(&name).cloned())
    }
}

impl secrets::Host for State {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, WitError>> {
        let Some(reference) = self.caps.secrets.get(&name) else {
            let message = format!(
                "secret `{name}` is not granted to plugin `{}` (or not in its manifest)",
                self.caps.name
            );
            self.violations.lock().unwrap().push(message.clone());
            return Ok(Err(WitError {
                message,
                retryable: false,
                retry_after_secs: None,
            }));
        };
        Ok(reference.read().map_err(|e| WitError {
            message: format!("secret `{name}`: {e}"),
            retryable: false,
            retry_after_secs: None,
        }))
    }
}

impl smtp::Host for State {
    async fn send(
        &mut self,
        envelope: smtp::Envelope,
        message: Vec<u8>,
    ) -> Result<String, WitError> {
        let Some(grant) = self.caps.smtp.clone() else {
            let message = format!("SMTP is not granted to plugin `{}`", self.caps.name);
            self.violations.lock().unwrap().push(message.clone());
            return Err(WitError {
                message,
                retryable: false,
                retry_after_secs: None,
            });
        };
        super::smtp::send(
            &grant,
            &self.caps.name,
            &self.instance,
            &envelope.from,
            &envelope.to,
            &message,
            self.deadline,
        )
        .await
    }
}
