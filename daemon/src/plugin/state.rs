//! What one call's `Store` holds, and the host side of the plugin imports.
//!
//! A store lives for one connector call: fresh WASI state with nothing in it
//! (no preopened directories, no environment, no arguments, stdin closed,
//! stdout discarded, the start of stderr kept for a panic message; sockets
//! and name lookups denied), the `wasi:http` hooks bound to the plugin's
//! policy, and the limiter that enforces the memory limit.
//!
//! **Redaction.** Whatever a plugin says goes through [`State::redact`]
//! before it is logged or returned: every secret value granted to the
//! plugin (its `secrets`, its SMTP password, the HTTP credentials the host
//! injects for it) is replaced by `[redacted]`. The values are read once per
//! store, on first use.

use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::WitError;
use super::bindings::host::vakt::plugin::{log, secrets, settings, smtp, types};
use super::config::{Credential, SecretRef};
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
    redactor: OnceLock<Redactor>,
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
            redactor: OnceLock::new(),
        }
    }

    /// `text` with every secret value granted to this plugin replaced by
    /// `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        self.redactor
            .get_or_init(|| Redactor::for_caps(&self.caps))
            .redact(text)
    }
}

/// The secret values one plugin was granted, longest first.
#[derive(Default)]
pub struct Redactor {
    values: Vec<String>,
}

/// What replaces a secret value.
pub const REDACTED: &str = "[redacted]";

impl Redactor {
    /// The values of `caps`' secrets, SMTP password and HTTP credentials;
    /// one that cannot be read now is skipped (it cannot be in any text
    /// either, unless it appears later: it is read again by the next store).
    pub fn for_caps(caps: &Caps) -> Redactor {
        let mut refs: Vec<&SecretRef> = caps.secrets.values().collect();
        if let Some(p) = caps.smtp.as_ref().and_then(|s| s.password.as_ref()) {
            refs.push(p);
        }
        for g in &caps.http.grants {
            refs.extend(g.credential.as_ref().map(|c| match c {
                Credential::Bearer { token, .. } => token,
                Credential::Basic { password, .. } => password,
                Credential::ApiKey { value, .. } => value,
                Credential::Oauth2ClientCredentials { client_secret, .. } => client_secret,
            }));
        }
        Redactor::new(refs.into_iter().filter_map(|r| r.read().ok()))
    }

    /// Redacts `values` (empty ones are ignored).
    pub fn new(values: impl IntoIterator<Item = String>) -> Redactor {
        let mut values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        // Longest first, so a secret containing another is replaced whole.
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Redactor { values }
    }

    /// `text` with every occurrence of every value replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        out
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
        // Redact before cutting, so a cut cannot leave part of a secret.
        let mut message = self.redact(&message);
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
            message: self.redact(&format!("secret `{name}`: {e}")),
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
        .map_err(|e| WitError {
            message: self.redact(&e.message),
            ..e
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_granted_secret_value_is_redacted() {
        let r = Redactor::new(["hunter2".to_string(), "hunter2-long".into(), String::new()]);
        assert_eq!(
            r.redact("pw hunter2-long, again hunter2 and hunter2."),
            "pw [redacted], again [redacted] and [redacted]."
        );
        assert_eq!(r.redact("nothing here"), "nothing here");
        assert_eq!(Redactor::default().redact("hunter2"), "hunter2");
    }

    #[test]
    fn a_store_redacts_its_plugins_secrets_smtp_password_and_credentials() {
        use std::collections::BTreeMap;
        use std::time::Duration;

        use super::super::config::{HttpGrant, Origin, SmtpGrant, SmtpTls};
        use super::super::http::policy::HttpPolicy;

        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, value: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("{value}\n")).unwrap();
            SecretRef::File(path)
        };
        let mut secrets = BTreeMap::new();
        secrets.insert("api".to_string(), file("api", "api-VALUE-1"));
        let caps = Caps {
            name: "p".into(),
            settings: BTreeMap::new(),
            secrets,
            smtp: Some(SmtpGrant {
                host: "relay.example".into(),
                port: None,
                tls: SmtpTls::Starttls,
                username: Some("vakt".into()),
                password: Some(file("smtp", "smtp-PASS-2")),
                ca_file: None,
            }),
            http: Arc::new(HttpPolicy {
                plugin: "p".into(),
                grants: vec![HttpGrant {
                    origin: Origin::parse("https://x.example").unwrap(),
                    private_network: false,
                    credential: Some(Credential::Bearer {
                        token: file("token", "bearer-TOKEN-3"),
                        scheme: None,
                    }),
                }],
                max_body: 0,
            }),
            files: BTreeMap::new(),
            max_file_bytes: 0,
            memory_bytes: 1 << 20,
            cpu: Duration::from_secs(1),
            wall: Duration::from_secs(1),
        };
        let r = Redactor::for_caps(&caps);
        let said = "api-VALUE-1 / smtp-PASS-2 / bearer-TOKEN-3 / vakt";
        assert_eq!(
            r.redact(said),
            "[redacted] / [redacted] / [redacted] / vakt"
        );

        // Through the `log` import: what reaches the subscriber is redacted.
        super::super::init();
        let egress = Arc::new(Egress::new(Default::default()).unwrap());
        let mut state = State::new(Arc::new(caps), egress, "inst", Instant::now());
        let seen = Capture::default();
        tracing::subscriber::with_default(seen.clone(), || {
            log::Host::log(&mut state, log::Level::Warn, format!("said {said}")).unwrap()
        });
        let seen = seen.0.lock().unwrap().clone();
        assert!(
            seen.contains("said [redacted] / [redacted] / [redacted] / vakt"),
            "{seen}"
        );
        assert!(!seen.contains("VALUE") && !seen.contains("PASS") && !seen.contains("TOKEN"));
    }

    /// A subscriber that keeps the fields of every event as text.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<String>>);

    impl tracing::field::Visit for Capture {
        fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
            let line = format!("{}={v:?}\n", f.name());
            self.0.lock().unwrap().push_str(&line);
        }
    }

    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            event.record(&mut self.clone());
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
}
