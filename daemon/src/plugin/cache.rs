//! Compiled components cached on disk, so a restart does not recompile.
//!
//! Key: `sha256(wasm bytes)` and `sha256(Engine::precompile_compatibility_hash())`
//! (wasmtime version, target, compiler settings). A changed plugin or a new
//! wasmtime gets a new file; a file that fails to load is recompiled and
//! rewritten.
//!
//! **Why `unsafe` is sound here.** `Component::deserialize_file` maps the file
//! and runs the machine code in it, trusting it to be what wasmtime wrote: a
//! tampered file is arbitrary code in the daemon. So the files are only ever
//! read from the daemon's own private directory: created by us with mode
//! 0700, checked at start to be owned by our user and not reachable by group
//! or others (we refuse to start otherwise), files written 0600 to a temporary
//! name and renamed into place. Whoever can write there can already replace
//! the daemon's data and binary; nothing is loaded from any other path.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::PluginError;

/// The private directory of compiled plugins.
pub struct Cache {
    dir: PathBuf,
    engine_key: String,
}

/// How a component was obtained, for the start-up log and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cached,
    Compiled,
}

impl Cache {
    /// Opens (creating with 0700) `dir` and checks it is private to us.
    pub fn open(dir: &Path, engine: &Engine) -> Result<Cache, PluginError> {
        let err = |message: String| PluginError::Cache {
            path: dir.to_path_buf(),
            message,
        };
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| err(format!("cannot create it: {e}")))?;
        }
        let meta = fs::symlink_metadata(dir).map_err(|e| err(e.to_string()))?;
        if !meta.is_dir() {
            return Err(err("not a directory (symlinks are refused)".into()));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc_geteuid() };
        if meta.uid() != uid {
            return Err(err(format!(
                "owned by uid {}, not by the daemon (uid {uid}); remove it",
                meta.uid()
            )));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(err(format!(
                "mode {:o} lets others in; `chmod 700` it",
                meta.mode() & 0o777
            )));
        }
        let mut h = ShaHasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
        let engine_key = hex::encode(&h.0.finalize()[..8]);
        Ok(Cache {
            dir: dir.to_path_buf(),
            engine_key,
        })
    }

    /// The compiled form of `wasm`: from the cache when it loads, else
    /// compiled now and written back.
    pub fn component(
        &self,
        engine: &Engine,
        plugin: &str,
        wasm_path: &Path,
        wasm: &[u8],
    ) -> Result<(Component, Source), PluginError> {
        let key = hex::encode(Sha256::digest(wasm));
        let path = self.dir.join(format!("{key}-{}.cwasm", self.engine_key));
        if path.exists() {
            // SAFETY: see the module documentation: only files we wrote, in
            // our private directory, for this engine's compatibility hash.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, Source::Cached)),
                Err(e) => tracing::warn!(
                    plugin,
                    path = %path.display(),
                    error = %e,
                    "cached plugin does not load; recompiling"
                ),
            }
        }
        let invalid = |e: wasmtime::Error| PluginError::Invalid {
            plugin: plugin.to_string(),
            path: wasm_path.to_path_buf(),
            message: format!("{e:#}"),
        };
        let bytes = engine.precompile_component(wasm).map_err(invalid)?;
        if let Err(e) = self.write(&path, &bytes) {
            tracing::warn!(plugin, path = %path.display(), error = %e, "cannot cache the compiled plugin");
        }
        // SAFETY: `bytes` were produced by this engine just now.
        let component = unsafe { Component::deserialize(engine, &bytes) }.map_err(invalid)?;
        Ok((component, Source::Compiled))
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        // Unique per write: two compiles of one component (two config
        // sections naming the same file, or two processes) never share a
        // temp file; the rename makes whichever finishes last win, whole.
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    }
}

/// Feeds `Hash` output into sha256, so the key is stable across runs
/// (unlike `DefaultHasher`, which is not promised to be).
struct ShaHasher(Sha256);

impl std::hash::Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
