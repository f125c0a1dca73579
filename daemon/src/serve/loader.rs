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

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::metrics::Metrics;
use super::scheduler::rfc3339_utc;
use crate::engine::Ts;
use crate::runtime::Runtime;
use crate::workflow::{self, Diagnostic, Loaded, Loc, Plan};

const RELOADS: &str = "vakt_workflow_reloads_total";

/// A file's modification time and size: a cheap "may have changed".
type Stamp = (SystemTime, u64);

/// What one scan did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ScanSummary {
    /// Workflow files found.
    pub files: usize,
    /// Workflow ids installed (new or changed).
    pub loaded: Vec<String>,
    /// Files that became invalid or whose errors changed.
    pub invalid: Vec<String>,
    /// Workflow ids retired.
    pub removed: Vec<String>,
    /// The directory could not be listed; nothing was changed.
    pub error: Option<String>,
}

/// A workflow's state, for `GET /api/v1/workflows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowStatus {
    /// Its file's latest version is active.
    Active,
    /// Its file's latest version is invalid; an older one may be active.
    Invalid,
    /// Its file is gone (or now declares another id): no new starts.
    Removed,
}

impl WorkflowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Active => "active",
            WorkflowStatus::Invalid => "invalid",
            WorkflowStatus::Removed => "removed",
        }
    }
}

impl PartialEq<&str> for WorkflowStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One workflow (or invalid file), as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowInfo {
    /// The id (from the file name when the file cannot be parsed).
    pub id: String,
    pub title: String,
    pub file: String,
    pub status: WorkflowStatus,
    /// The hash new starts use (the last one, when removed); none if no
    /// version of the file was ever valid.
    pub hash: Option<String>,
    /// Set when the file is invalid and an older version is still active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_hash: Option<String>,
    /// `file:line:column: message`, for the file's latest version.
    pub errors: Vec<String>,
    /// When the file's latest version was read (RFC 3339 UTC); for a removed
    /// workflow, when it was retired.
    pub loaded_at: String,
    pub triggers: TriggerInfo,
}

/// How a workflow can be started.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TriggerInfo {
    pub api: bool,
    pub cron: Vec<CronInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CronInfo {
    pub name: String,
    pub schedule: String,
    pub timezone: String,
}

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

fn info(
    p: &Plan,
    file: String,
    status: WorkflowStatus,
    errors: Vec<String>,
    at: Ts,
) -> WorkflowInfo {
    WorkflowInfo {
        id: p.id.clone(),
        title: p.title.clone(),
        file,
        status,
        hash: Some(p.hash.clone()),
        active_hash: None,
        errors,
        loaded_at: rfc3339_utc(at),
        triggers: TriggerInfo {
            api: p.triggers.api,
            cron: p
                .triggers
                .cron
                .iter()
                .map(|c| CronInfo {
                    name: c.name.clone(),
                    schedule: c.schedule.clone(),
                    timezone: c.timezone.name().to_owned(),
                })
                .collect(),
        },
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
mod tests {
    use serde_json::json;

    use super::*;
    use crate::serve::scheduler::testkit;

    fn runtime(dir: &Path) -> Runtime {
        testkit::runtime(&dir.join("data"), 1_767_225_600_000).0
    }

    fn leave(title: &str, extra: &str) -> String {
        format!(
            "id: leave\ntitle: {title}\nsteps:\n  - id: ok\n    approval: {{title: \"A\", assignees: [boss@kommun.se]}}\n{extra}"
        )
    }

    fn sha(s: &str) -> String {
        hex::encode(Sha256::digest(s.as_bytes()))
    }

    fn reloads(m: &Metrics, result: &str) -> u64 {
        let mut out = String::new();
        m.render(&mut out);
        let line = format!("{RELOADS}{{result=\"{result}\"}} ");
        out.lines()
            .find_map(|l| l.strip_prefix(&line))
            .map_or(0, |n| n.parse().unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn versions_are_installed_kept_and_retired() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("workflows");
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join("leave.yaml");
        let name = file.display().to_string();
        let rt = runtime(tmp.path());
        let metrics = Arc::new(Metrics::new());
        let loader = Loader::new(dir.clone(), rt.clone(), metrics.clone());

        let v1 = leave("Leave", "");
        std::fs::write(&file, &v1).unwrap();
        assert_eq!(loader.scan().loaded, vec!["leave"]);
        assert_eq!(rt.current("leave").unwrap().hash, sha(&v1));
        let id = rt
            .start("leave", json!({}), "t@skola.se", None)
            .await
            .unwrap();

        // A new version: new starts use it, the running instance keeps v1.
        let v2 = leave("Leave v2", "");
        std::fs::write(&file, &v2).unwrap();
        assert_eq!(loader.scan().loaded, vec!["leave"]);
        assert_eq!(rt.current("leave").unwrap().hash, sha(&v2));
        assert_eq!(rt.instance(&id).unwrap().unwrap().hash, sha(&v1));

        // An invalid edit: v2 stays active, the errors are listed.
        std::fs::write(&file, leave("Leave v3", "  - id: ok\n    wait: 1h\n")).unwrap();
        let s = loader.scan();
        assert_eq!((s.loaded.len(), s.invalid), (0, vec![name.clone()]));
        assert_eq!(rt.current("leave").unwrap().hash, sha(&v2));
        let w = &loader.workflows()[0];
        assert_eq!(
            (w.status, w.title.as_str()),
            (WorkflowStatus::Invalid, "Leave v2")
        );
        assert_eq!(w.active_hash.as_deref(), Some(sha(&v2).as_str()));
        assert!(
            w.errors[0].starts_with(&format!("{name}:6:9: ")),
            "{:?}",
            w.errors
        );
        // Scanning again changes nothing and logs nothing again.
        assert!(loader.scan().invalid.is_empty());

        // Back to v2, then a touch: nothing is installed again.
        std::fs::write(&file, &v2).unwrap();
        let s = loader.scan();
        assert!(s.loaded.is_empty() && s.invalid.is_empty());
        assert_eq!(loader.workflows()[0].status, WorkflowStatus::Active);
        let f = std::fs::File::options().append(true).open(&file).unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(5))
            .unwrap();
        assert!(loader.scan().loaded.is_empty());
        assert_eq!(reloads(&metrics, "loaded"), 2);
        assert_eq!(reloads(&metrics, "invalid"), 1);

        // Removed: no new starts, the running instance goes on.
        std::fs::remove_file(&file).unwrap();
        assert_eq!(loader.scan().removed, vec!["leave"]);
        assert!(rt.current("leave").is_none());
        let w = &loader.workflows()[0];
        assert_eq!(
            (w.status, w.hash.clone()),
            (WorkflowStatus::Removed, Some(sha(&v2)))
        );
        assert_eq!(rt.instance(&id).unwrap().unwrap().hash, sha(&v1));
        assert_eq!(reloads(&metrics, "removed"), 1);
        rt.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ids_belong_to_the_file_that_has_them() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("workflows");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let rt = runtime(tmp.path());
        let loader = Arc::new(Loader::new(
            dir.clone(),
            rt.clone(),
            Arc::new(Metrics::new()),
        ));
        let status = |id: &str| {
            let ws = loader.workflows();
            let w = ws
                .iter()
                .find(|w| w.id == id)
                .unwrap_or_else(|| panic!("{id}: {ws:?}"));
            (w.status, w.file.rsplit('/').next().unwrap().to_owned())
        };
        std::fs::write(dir.join("sub/b.yaml"), leave("B", "")).unwrap();
        std::fs::write(dir.join("b.test.yaml"), "not: a workflow").unwrap();
        loader.scan();
        // A newcomer with the same id is the duplicate, though it sorts first.
        std::fs::write(dir.join("a.yaml"), leave("A", "")).unwrap();
        let s = loader.scan();
        assert_eq!((s.files, s.invalid.len()), (2, 1));
        assert_eq!(rt.current("leave").unwrap().title, "B");
        let ws = loader.workflows();
        assert!(ws[0].errors[0].contains("is already used by"), "{ws:?}");
        // B moves to another id: A gets `leave`, nothing is retired.
        std::fs::write(
            dir.join("sub/b.yaml"),
            leave("B", "").replace("id: leave", "id: other"),
        )
        .unwrap();
        let s = loader.scan();
        assert!(s.removed.is_empty() && s.invalid.is_empty(), "{s:?}");
        assert_eq!(rt.current("leave").unwrap().title, "A");
        assert_eq!(status("other"), (WorkflowStatus::Active, "b.yaml".into()));
        // An unparseable new file and an unreadable one are listed by name.
        std::fs::write(dir.join("broken.yaml"), "id: [").unwrap();
        std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("dangling.yaml")).unwrap();
        loader.scan();
        assert_eq!(
            status("broken"),
            (WorkflowStatus::Invalid, "broken.yaml".into())
        );
        let ws = loader.workflows();
        let dangling = ws.iter().find(|w| w.id == "dangling").unwrap();
        assert!(
            dangling.errors[0].contains("cannot read the file"),
            "{ws:?}"
        );
        assert!(dangling.hash.is_none());

        // Watching: a new file is picked up without a scan call.
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let watcher = tokio::spawn(loader.clone().watch(Duration::from_millis(50), stop));
        std::fs::write(
            dir.join("c.yaml"),
            leave("C", "").replace("id: leave", "id: third"),
        )
        .unwrap();
        for _ in 0..100 {
            if rt.current("third").is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(rt.current("third").is_some());
        stop_tx.send(true).unwrap();
        watcher.await.unwrap();
        rt.shutdown().await;
    }
}
