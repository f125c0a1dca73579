//! The workflow language: authored YAML → validated → lowered [`Plan`].
//!
//! - [`authored`]: serde types that mirror the YAML, with locations.
//! - [`lower`]: checks meaning, collects every error, builds the plan.
//! - [`plan`]: the immutable graph the engine runs.
//! - [`template`]: MiniJinja templates and expressions, compiled at load.
//! - [`connectors`]: the roles and actions a workflow may call.
//! - [`schema`] and [`mermaid`]: the JSON Schema and graph views for tools.
//!
//! Invariant: nothing outside this module parses workflow text; the engine
//! sees only [`Plan`].

pub mod authored;
pub mod connectors;
pub mod diag;
pub mod duration;
pub mod lower;
pub mod mermaid;
pub mod plan;
pub mod schema;
pub mod span;
pub mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use diag::Diagnostic;
pub use duration::Duration;
pub use plan::Plan;
pub use span::Loc;

/// The result of loading one file.
#[derive(Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub source: String,
    pub result: Result<Arc<Plan>, Vec<Diagnostic>>,
}

impl Loaded {
    /// The file's diagnostics rendered as `path:line:column: message` + snippet.
    pub fn render_errors(&self) -> String {
        match &self.result {
            Ok(_) => String::new(),
            Err(d) => diag::render(&self.path.display().to_string(), &self.source, d),
        }
    }
}

/// Loads one file from text.
pub fn load_source(path: impl Into<PathBuf>, source: String) -> Loaded {
    let result = lower::lower(&source).map(Arc::new);
    Loaded {
        path: path.into(),
        source,
        result,
    }
}

/// Loads one file from disk.
pub fn load_file(path: &Path) -> Loaded {
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(source) => load_source(path, source),
            Err(e) => Loaded {
                path: path.to_owned(),
                source: String::new(),
                result: Err(vec![Diagnostic::new(
                    Loc::new(1, 1),
                    format!(
                        "the file is not UTF-8 text (invalid byte at offset {}): save it as UTF-8",
                        e.utf8_error().valid_up_to()
                    ),
                )]),
            },
        },
        Err(e) => Loaded {
            path: path.to_owned(),
            source: String::new(),
            result: Err(vec![Diagnostic::new(
                Loc::UNKNOWN,
                format!("cannot read the file: {e}"),
            )]),
        },
    }
}

/// Whether a file in a workflow directory is a workflow (not a scenario
/// file `*.test.yaml`, not hidden).
pub fn is_workflow_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.')
        && (name.ends_with(".yaml") || name.ends_with(".yml"))
        && !name.ends_with(".test.yaml")
        && !name.ends_with(".test.yml")
}

/// Expands files and directories (recursively) into workflow files, sorted.
pub fn expand_paths(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    // A file named twice (`vakt validate a.yaml a.yaml`, or a file and its
    // directory) is one file.
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if !p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
            {
                walk(&p, out)?;
            }
        } else if is_workflow_file(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Loads a set of files and checks what spans files: unique workflow ids and
/// sub-workflows that exist.
pub fn load_set(files: &[PathBuf]) -> Vec<Loaded> {
    // Files are independent until the cross-file checks: load them on every core.
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(files.len().max(1));
    let chunk = files.len().div_ceil(workers.max(1)).max(1);
    let mut loaded: Vec<Loaded> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|p| load_file(p)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("loading a workflow file does not panic"))
            .collect()
    });
    check_set(&mut loaded);
    loaded
}

/// Cross-file checks, turning a good file bad when its references fail.
pub fn check_set(loaded: &mut [Loaded]) {
    let mut first: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut problems: Vec<(usize, Diagnostic)> = Vec::new();
    for (i, l) in loaded.iter().enumerate() {
        if let Ok(plan) = &l.result {
            if let Some(prev) = first.get(&plan.id) {
                problems.push((
                    i,
                    Diagnostic::new(
                        id_loc(&l.source),
                        format!(
                            "workflow id `{}` is already used by {}: ids must be unique",
                            plan.id,
                            prev.display()
                        ),
                    ),
                ));
            } else {
                first.insert(plan.id.clone(), l.path.clone());
            }
        }
    }
    let all_ids: Vec<String> = loaded
        .iter()
        .filter_map(|l| match &l.result {
            Ok(plan) => Some(plan.id.clone()),
            // An invalid file may still define the id others refer to.
            Err(_) => lower::parse(&l.source).ok().map(|f| f.id.value),
        })
        .collect();
    for (i, l) in loaded.iter().enumerate() {
        if let Ok(plan) = &l.result {
            if plan.sub_workflows.is_empty() {
                continue;
            }
            let locs = lower::sub_workflow_locs(&l.source);
            for node in &plan.nodes {
                if let plan::NodeKind::Workflow { id, .. } = &node.kind {
                    let at = locs.get(&node.step).copied().unwrap_or(node.loc);
                    if id == &plan.id {
                        problems.push((i, Diagnostic::new(at, format!("step `{}` runs its own workflow `{id}`: a workflow cannot run itself; to repeat steps, use `goto` with a `wait` in the loop", node.step))));
                    } else if !all_ids.contains(id) {
                        let hint = lower::closest(id, all_ids.iter())
                            .map(|c| format!(" (did you mean `{c}`?)"))
                            .unwrap_or_default();
                        problems.push((i, Diagnostic::new(at, format!("step `{}` runs workflow `{id}`, which is not among the files loaded{hint}: check the id, or validate this file together with the one that defines it (such as `vakt validate workflows/`)", node.step))));
                    }
                }
            }
        }
    }
    for (i, d) in problems {
        match &mut loaded[i].result {
            Ok(_) => loaded[i].result = Err(vec![d]),
            Err(ds) => ds.push(d),
        }
    }
}

/// The location of the `id:` key's value, for cross-file errors.
fn id_loc(source: &str) -> Loc {
    lower::parse(source)
        .map(|f| f.id.loc)
        .unwrap_or(Loc::new(1, 1))
}
