//! The workflow loader: loads the workflow directory into the runtime and
//! reloads what changes, without a restart.
//!
//! Every `*.yaml`/`*.yml` under the directory (recursively; not scenario
//! files `*.test.yaml`, not hidden ones: [`workflow::expand_paths`]) is
//! lowered alone, then the set is checked together (unique ids,
//! sub-workflows that exist). Per file:
//!
//! - valid and changed (content hash): `Runtime::install`; new instances use
//!   it, running ones stay pinned to the hash they started with;
//! - invalid: the previously active version (if any) stays active; every
//!   diagnostic is logged as `file:line:column: message` and kept for
//!   `GET /api/v1/workflows`;
//! - removed, or its id changed: the old id is retired (no new starts;
//!   running instances go on) unless another file now provides it.
//!
//! An id belongs to the file that provides it: a second file declaring it is
//! an error, whichever sorts first, until the first lets go of it. An
//! unreadable file is an invalid one (its last version stays active).
//!
//! Watching is polling (no inotify): each file's modification time and size
//! are compared, then its content hash, so a touch reloads nothing. A file
//! read while it changes is read again; one modified within the last second
//! is checked again at the next poll (a same-size edit within the clock's
//! granularity would otherwise be missed); a burst of edits is left to
//! settle before the directory is scanned.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::metrics::Metrics;
use super::scheduler::rfc3339_utc;
use crate::engine::Ts;
use crate::runtime::Runtime;
use crate::workflow::{self, Diagnostic, Loaded, Loc, Plan};

const RELOADS: &str = "vakt_workflow_reloads_total";

/// A file's modification time and size: a cheap "may have changed".
type Stamp = (SystemTime, u64);

mod info;

use info::info;
pub use info::{CronInfo, ScanSummary, TriggerInfo, WorkflowInfo, WorkflowStatus};

/// What the loader knows of one file.
struct FileState {
    /// `None`: check the content again at the next scan.
    stamp: Option<Stamp>,
    /// sha256 of the bytes last read, or the read error.
    content: String,
    source: String,
    /// The file alone, lowered (the set is checked again at each scan).
    lowered: Result<Arc<Plan>, Vec<Diagnostic>>,
    /// The id and title the latest version declares, as far as it parses.
    declared: (String, String),
    /// The version this file provides to the runtime: its last valid one.
    owned: Option<Arc<Plan>>,
    errors: Vec<String>,
    read_at: Ts,
}

struct Retired {
    file: String,
    plan: Arc<Plan>,
    at: Ts,
}

#[derive(Default)]
struct State {
    files: BTreeMap<PathBuf, FileState>,
    retired: BTreeMap<String, Retired>,
    dir_error: Option<String>,
}

/// Loads the workflow directory and keeps the runtime's plans in step with it.
pub struct Loader {
    dir: PathBuf,
    runtime: Runtime,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
}

impl Loader {
    pub fn new(dir: PathBuf, runtime: Runtime, metrics: Arc<Metrics>) -> Loader {
        metrics.describe(
            RELOADS,
            "counter",
            "Workflow file loads by result (loaded, invalid, removed).",
        );
        Loader {
            dir,
            runtime,
            metrics,
            state: Mutex::new(State::default()),
        }
    }

    /// Reads what changed in the directory and brings the runtime in step.
    pub fn scan(&self) -> ScanSummary {
        let mut guard = self.state.lock().expect("loader lock");
        let st = &mut *guard;
        let now = self.runtime.now();
        let mut summary = ScanSummary::default();
        let paths = match self.list(st) {
            Ok(p) => p,
            Err(e) => {
                summary.error = Some(e);
                return summary;
            }
        };
        summary.files = paths.len();
        let mut changed = false;
        for path in &paths {
            let f = st.files.get(path);
            if f.is_some_and(|f| f.stamp.is_some() && f.stamp == stamp(path)) {
                continue;
            }
            let (bytes, stamp) = read_settled(path);
            let content = match &bytes {
                Ok(b) => hex::encode(Sha256::digest(b)),
                Err(e) => format!("unreadable: {e}"),
            };
            if let Some(f) = st.files.get_mut(path)
                && f.content == content
            {
                f.stamp = stamp; // touched, not changed
                continue;
            }
            changed = true;
            let mut new = read_file(path, bytes, content, stamp, now);
            if let Some(old) = st.files.remove(path) {
                (new.owned, new.errors) = (old.owned, old.errors);
            }
            st.files.insert(path.clone(), new);
        }
        let gone: Vec<PathBuf> = st
            .files
            .keys()
            .filter(|p| paths.binary_search(p).is_err())
            .cloned()
            .collect();
        if changed || !gone.is_empty() {
            self.apply(st, &gone, now, &mut summary);
        }
        summary
    }

    /// Checks the set, installs, records errors, retires.
    fn apply(&self, st: &mut State, gone: &[PathBuf], now: Ts, summary: &mut ScanSummary) {
        // A file keeping the id it provides goes first, so a newcomer
        // declaring the same id is the one found a duplicate.
        let keeps = |f: &FileState| match (&f.lowered, &f.owned) {
            (Ok(p), Some(o)) => p.id == o.id,
            (Err(_), owned) => owned.is_some(),
            _ => false,
        };
        let mut order: Vec<&PathBuf> = st.files.keys().filter(|p| !gone.contains(p)).collect();
        order.sort_by_key(|p| !keeps(&st.files[*p]));
        let mut loaded: Vec<Loaded> = order
            .iter()
            .map(|p| Loaded {
                path: (*p).clone(),
                source: st.files[*p].source.clone(),
                result: st.files[*p].lowered.clone(),
            })
            .collect();
        workflow::check_set(&mut loaded);
        // An invalid file still holds the id of its active version.
        let mut claimed: HashMap<String, PathBuf> = HashMap::new();
        for l in &loaded {
            let f = &st.files[&l.path];
            if let (true, Some(o)) = (keeps(f), &f.owned) {
                claimed.insert(o.id.clone(), l.path.clone());
            }
        }
        for l in &mut loaded {
            if let Ok(p) = &l.result {
                match claimed.get(&p.id) {
                    Some(other) if *other != l.path => {
                        let at =
                            workflow::lower::parse(&l.source).map_or(Loc::new(1, 1), |f| f.id.loc);
                        let message = format!(
                            "workflow id `{}` is already used by {}: ids must be unique",
                            p.id,
                            other.display()
                        );
                        l.result = Err(vec![Diagnostic::new(at, message)]);
                    }
                    _ => {
                        claimed.insert(p.id.clone(), l.path.clone());
                    }
                }
            }
        }
        let mut let_go: Vec<(Arc<Plan>, String)> = Vec::new();
        for l in loaded {
            let file = l.path.display().to_string();
            let f = st.files.get_mut(&l.path).expect("listed file");
            let mut errors = match &l.result {
                Ok(_) => Vec::new(),
                Err(d) => render(&file, d),
            };
            if let Ok(plan) = &l.result {
                let current = self.runtime.current(&plan.id);
                let same = |p: &Option<Arc<Plan>>| p.as_ref().is_some_and(|p| p.hash == plan.hash);
                if !(same(&f.owned) && same(&current)) {
                    match self.runtime.install(plan.clone(), &l.source) {
                        Ok(()) => {
                            tracing::info!(id = %plan.id, file, hash = &plan.hash[..12], "workflow loaded");
                            self.metrics.inc(RELOADS, &[("result", "loaded")]);
                            summary.loaded.push(plan.id.clone());
                            st.retired.remove(&plan.id);
                            if let Some(old) = f.owned.replace(plan.clone())
                                && old.id != plan.id
                            {
                                let_go.push((old, file.clone()));
                            }
                        }
                        Err(e) => {
                            errors = vec![format!("{file}: cannot store the workflow: {e}")];
                            (f.stamp, f.content) = (None, String::new()); // retry
                        }
                    }
                } else if !f.errors.is_empty() {
                    tracing::info!(id = %plan.id, file, "workflow file valid again; its active version is unchanged");
                }
            }
            if errors != f.errors {
                if !errors.is_empty() {
                    for e in &errors {
                        tracing::warn!("{e}");
                    }
                    let active = f.owned.as_ref().map(|o| &o.hash[..12]);
                    tracing::warn!(
                        file,
                        errors = errors.len(),
                        active,
                        "workflow file invalid; the previous version, if any, stays active"
                    );
                    self.metrics.inc(RELOADS, &[("result", "invalid")]);
                    summary.invalid.push(file);
                }
                f.errors = errors;
            }
        }
        for path in gone {
            if let Some(f) = st.files.remove(path)
                && let Some(o) = f.owned
            {
                let_go.push((o, path.display().to_string()));
            }
        }
        for (plan, file) in let_go {
            let provided = st
                .files
                .values()
                .any(|f| f.owned.as_ref().is_some_and(|o| o.id == plan.id));
            if !provided {
                self.runtime.retire(&plan.id);
                tracing::info!(id = %plan.id, file, "workflow removed: no new starts; running instances go on");
                self.metrics.inc(RELOADS, &[("result", "removed")]);
                summary.removed.push(plan.id.clone());
                st.retired.insert(
                    plan.id.clone(),
                    Retired {
                        file,
                        plan,
                        at: now,
                    },
                );
            }
        }
    }

    /// The workflow files, sorted; an unlistable directory is logged once.
    fn list(&self, st: &mut State) -> Result<Vec<PathBuf>, String> {
        let listed = if self.dir.is_dir() {
            workflow::expand_paths(std::slice::from_ref(&self.dir)).map_err(|e| e.to_string())
        } else {
            Err("not a directory".to_owned())
        };
        let error = listed.as_ref().err().map(|e| {
            format!(
                "workflow directory {}: {e}; the loaded workflows stay as they are",
                self.dir.display()
            )
        });
        if error.is_some() && error != st.dir_error {
            tracing::warn!("{}", error.as_deref().unwrap_or_default());
        }
        st.dir_error = error.clone();
        let mut paths = listed.map_err(|_| error.unwrap_or_default())?;
        paths.sort();
        Ok(paths)
    }

    /// The workflow files and their stamps (`None`: no listing).
    fn look(&self) -> Option<Vec<(PathBuf, Option<Stamp>)>> {
        let paths = self
            .list(&mut self.state.lock().expect("loader lock"))
            .ok()?;
        Some(
            paths
                .into_iter()
                .map(|p| (stamp(&p), p))
                .map(|(s, p)| (p, s))
                .collect(),
        )
    }

    /// Whether a scan could find anything new in what [`Loader::look`] saw.
    fn differs(&self, look: &[(PathBuf, Option<Stamp>)]) -> bool {
        let st = self.state.lock().expect("loader lock");
        look.len() != st.files.len()
            || look.iter().any(|(p, s)| {
                st.files
                    .get(p)
                    .is_none_or(|f| f.stamp.is_none() || f.stamp != *s)
            })
    }

    /// Polls the directory every `interval` and rescans when something
    /// changed, once a burst of edits has settled, until `stop` turns true.
    pub async fn watch(
        self: Arc<Self>,
        interval: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                changed = stop.changed() => if changed.is_err() { break },
            }
            if *stop.borrow() {
                break;
            }
            let me = self.clone();
            let scanned = tokio::task::spawn_blocking(move || {
                let mut seen = me.look()?;
                if !me.differs(&seen) {
                    return None;
                }
                // Settle: wait until two looks 100 ms apart agree (at most 2 s).
                for _ in 0..20 {
                    std::thread::sleep(Duration::from_millis(100));
                    let again = me.look()?;
                    if again == seen {
                        break;
                    }
                    seen = again;
                }
                Some(me.scan())
            });
            if let Ok(Some(s)) = scanned.await
                && (!s.loaded.is_empty() || !s.invalid.is_empty() || !s.removed.is_empty())
            {
                tracing::debug!(?s, "workflow directory rescanned");
            }
        }
    }

    /// Every workflow and invalid file, by id then file.
    pub fn workflows(&self) -> Vec<WorkflowInfo> {
        let st = self.state.lock().expect("loader lock");
        let mut out: Vec<WorkflowInfo> = Vec::new();
        for (path, f) in &st.files {
            let file = path.display().to_string();
            let invalid = !f.errors.is_empty();
            let status = if invalid {
                WorkflowStatus::Invalid
            } else {
                WorkflowStatus::Active
            };
            out.push(match &f.owned {
                Some(p) => WorkflowInfo {
                    active_hash: invalid.then(|| p.hash.clone()),
                    ..info(p, file, status, f.errors.clone(), f.read_at)
                },
                None => WorkflowInfo {
                    id: f.declared.0.clone(),
                    title: f.declared.1.clone(),
                    file,
                    status,
                    hash: None,
                    active_hash: None,
                    errors: f.errors.clone(),
                    loaded_at: rfc3339_utc(f.read_at),
                    triggers: TriggerInfo::default(),
                },
            });
        }
        for r in st.retired.values() {
            out.push(info(
                &r.plan,
                r.file.clone(),
                WorkflowStatus::Removed,
                Vec::new(),
                r.at,
            ));
        }
        out.sort_by(|a, b| (&a.id, &a.file).cmp(&(&b.id, &b.file)));
        out
    }
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Reads a file, again if it changed during the read. The stamp is `None`
/// when the file is not settled (modified within the last second, still
/// changing, or unreadable), so the next scan looks at its content again.
fn read_settled(path: &Path) -> (std::io::Result<Vec<u8>>, Option<Stamp>) {
    let mut attempt = 0;
    loop {
        let before = stamp(path);
        let bytes = std::fs::read(path);
        let after = stamp(path);
        let steady = before.is_some()
            && before == after
            && bytes
                .as_ref()
                .is_ok_and(|b| after.is_some_and(|a| a.1 == b.len() as u64));
        attempt += 1;
        if steady || attempt == 5 {
            let recent = after.is_none_or(|(m, _)| {
                SystemTime::now().duration_since(m).unwrap_or_default() < Duration::from_secs(1)
            });
            return (bytes, after.filter(|_| steady && !recent));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lowers a file's new content (alone; the set is checked afterwards).
fn read_file(
    path: &Path,
    bytes: std::io::Result<Vec<u8>>,
    content: String,
    stamp: Option<Stamp>,
    now: Ts,
) -> FileState {
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("workflow");
    let stem = stem.split('.').next().unwrap_or(stem).to_owned();
    let (source, lowered) = match bytes.map(String::from_utf8) {
        Ok(Ok(source)) => {
            let lowered = workflow::load_source(path, source.clone()).result;
            (source, lowered)
        }
        // Not UTF-8, or unreadable: the CLI's diagnostics.
        _ => {
            let l = workflow::load_file(path);
            (l.source, l.result)
        }
    };
    let declared = match &lowered {
        Ok(p) => (p.id.clone(), p.title.clone()),
        Err(_) => match workflow::lower::parse(&source) {
            Ok(f) => {
                let title = f.title.map_or_else(|| f.id.value.clone(), |t| t.value);
                (f.id.value, title)
            }
            Err(_) => (stem.clone(), stem),
        },
    };
    FileState {
        stamp,
        content,
        source,
        lowered,
        declared,
        owned: None,
        errors: Vec::new(),
        read_at: now,
    }
}

fn render(file: &str, diagnostics: &[Diagnostic]) -> Vec<String> {
    diagnostics
        .iter()
        .map(|d| format!("{file}:{}:{}: {}", d.loc.line, d.loc.column, d.message))
        .collect()
}

#[cfg(test)]
mod tests;
