//! `vakt test`: scenario tests of workflows on virtual time.
//!
//! A scenario file (`*.test.yaml`) names one workflow and holds scenarios:
//! an input, scripted connector answers, events at virtual times (decisions,
//! delegations, signals, a cancel, mid-run expectations) and expectations on
//! the end state (status, path, output, calls, notifications, tasks, clocks).
//! Each scenario runs the real engine transitions on [`crate::engine::sim`],
//! so "nobody acknowledges for five hours" or "the manager never answers in
//! two weeks" takes milliseconds.
//!
//! - [`format`]: the file's serde types (`deny_unknown_fields`, locations).
//! - [`load`]: parse and check against the workflow, collecting every error
//!   as `file:line:column: message`; `check` holds the checks.
//! - [`run`]: one scenario on the simulator; `expect` and `effects` check
//!   the expectations.
//! - [`report`]: `cargo test`-like output.
//!
//! The format is documented for administrators in `docs/testing-workflows.md`.

mod check;
mod effects;
pub mod events;
mod expect;
pub mod format;
pub mod load;
pub mod report;
pub mod run;
mod tasks;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::workflow::{self, Plan, diag};

pub use expect::Failure;

/// `vakt test PATH...`: exit code 0 when every scenario passes, 1 when one
/// fails, 2 on a usage error or an unreadable or invalid file.
pub fn main(paths: &[PathBuf]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    ExitCode::from(run_paths(paths, &mut out, &mut err))
}

/// Whether a file is a scenario file (`*.test.yaml`, `*.test.yml`, not hidden).
pub fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.') && (name.ends_with(".test.yaml") || name.ends_with(".test.yml"))
}

/// Finds, loads, runs and reports; returns the exit code.
pub fn run_paths(paths: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    for p in paths {
        if !p.exists() {
            let _ = writeln!(err, "vakt test: {}: no such file or directory", p.display());
            return 2;
        }
    }
    let (tests, workflows) = match discover(paths) {
        Ok(x) => x,
        Err(e) => {
            let _ = writeln!(err, "vakt test: {e}");
            return 2;
        }
    };
    if tests.is_empty() {
        let _ = writeln!(
            err,
            "vakt test: no scenario files (*.test.yaml) under the given paths"
        );
        return 2;
    }
    let mut invalid = 0;
    let loaded = workflow::load_set(&workflows);
    let mut plans: HashMap<String, Arc<Plan>> = HashMap::new();
    for l in &loaded {
        match &l.result {
            Ok(p) => {
                plans.entry(p.id.clone()).or_insert_with(|| p.clone());
            }
            Err(_) => {
                invalid += 1;
                let _ = out.write_all(l.render_errors().as_bytes());
            }
        }
    }
    let mut suites = Vec::new();
    for t in &tests {
        let shown = t.display().to_string();
        match std::fs::read_to_string(t) {
            Err(e) => {
                invalid += 1;
                let _ = writeln!(out, "{shown}:0:0: cannot read the file: {e}");
            }
            Ok(source) => match load::load(&shown, &source, &plans) {
                Ok(s) => suites.push(s),
                Err(d) => {
                    invalid += 1;
                    let _ = out.write_all(diag::render(&shown, &source, &d).as_bytes());
                }
            },
        }
    }
    if invalid > 0 {
        let _ = writeln!(
            err,
            "vakt test: {invalid} invalid file(s); no scenario was run"
        );
        return 2;
    }
    let count: usize = suites.iter().map(|s| s.scenarios.len()).sum();
    let _ = writeln!(
        out,
        "\nrunning {count} scenario(s) from {} file(s)\n",
        suites.len()
    );
    let started = Instant::now();
    let mut results = Vec::new();
    for s in &suites {
        for sc in &s.scenarios {
            let outcome = run::run(sc, &s.workflow, &plans);
            report::line(out, &s.path, &sc.name, &outcome);
            results.push(report::Result {
                file: s.path.clone(),
                name: sc.name.clone(),
                outcome,
            });
        }
    }
    report::summary(out, &results, started.elapsed());
    if results.iter().all(|r| r.outcome.passed()) {
        0
    } else {
        1
    }
}

/// Scenario files under the paths, and the workflow files to load with
/// them: those under the paths and, for a scenario file whose workflow is
/// not among them, the file defining it next to the scenario file or in the
/// directory above (`workflows/tests/x.test.yaml` finds `workflows/x.yaml`).
fn discover(paths: &[PathBuf]) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut tests = Vec::new();
    let mut roots = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk_tests(p, &mut tests)?;
            roots.push(p.clone());
        } else if is_test_file(p) {
            tests.push(p.clone());
        } else {
            roots.push(p.clone());
        }
    }
    let mut workflows = workflow::expand_paths(&roots)?;
    let id_of = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| workflow::lower::parse(&s).ok())
            .map(|f| f.id.value)
    };
    let mut known: BTreeSet<String> = workflows.iter().filter_map(|w| id_of(w)).collect();
    for t in &tests {
        let Some(wanted) = std::fs::read_to_string(t)
            .ok()
            .and_then(|s| load::parse(&s).ok())
            .map(|f| f.workflow.value)
        else {
            continue;
        };
        if known.contains(&wanted) {
            continue;
        }
        let dir = t
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        for d in [Some(dir), dir.parent()].into_iter().flatten() {
            let d = if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            };
            let Ok(entries) = std::fs::read_dir(d) else {
                continue;
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && workflow::is_workflow_file(f))
                .collect();
            found.sort();
            if let Some(f) = found
                .into_iter()
                .find(|f| id_of(f).as_ref() == Some(&wanted))
            {
                workflows.push(f);
                known.insert(wanted);
                break;
            }
        }
    }
    let mut seen = BTreeSet::new();
    workflows.retain(|w| seen.insert(std::fs::canonicalize(w).unwrap_or_else(|_| w.clone())));
    let mut seen = BTreeSet::new();
    tests.retain(|t| seen.insert(std::fs::canonicalize(t).unwrap_or_else(|_| t.clone())));
    Ok((tests, workflows))
}

fn walk_tests(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if p.is_dir() && !hidden {
            walk_tests(&p, out)?;
        } else if p.is_file() && is_test_file(&p) {
            out.push(p);
        }
    }
    Ok(())
}
