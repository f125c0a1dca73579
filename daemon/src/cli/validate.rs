//! `vakt validate` and `vakt graph`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use crate::workflow;

/// Validates every file under `paths`; prints every error of every file.
pub fn validate(paths: &[PathBuf], quiet: bool) -> ExitCode {
    for p in paths {
        if !p.exists() {
            eprintln!("vakt validate: {}: no such file or directory", p.display());
            return ExitCode::from(2);
        }
    }
    let files = match workflow::expand_paths(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("vakt validate: {e}");
            return ExitCode::from(2);
        }
    };
    if files.is_empty() {
        eprintln!("vakt validate: no workflow files (*.yaml, *.yml) under the given paths");
        return ExitCode::from(2);
    }
    let started = Instant::now();
    let loaded = workflow::load_set(&files);
    let elapsed = started.elapsed();
    let mut out = std::io::stdout().lock();
    let mut bad_files = 0;
    let mut errors = 0;
    for l in &loaded {
        if let Err(d) = &l.result {
            bad_files += 1;
            errors += d.len();
            let _ = out.write_all(l.render_errors().as_bytes());
        }
    }
    let summary = if bad_files == 0 {
        format!(
            "{} workflow file(s) valid ({:.1} ms)",
            loaded.len(),
            elapsed.as_secs_f64() * 1000.0
        )
    } else {
        format!(
            "{errors} error(s) in {bad_files} of {} workflow file(s)",
            loaded.len()
        )
    };
    if !quiet || bad_files > 0 {
        eprintln!("{summary}");
    }
    if bad_files == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Prints the Mermaid flowchart of one workflow.
pub fn graph(file: &Path) -> ExitCode {
    if !file.is_file() {
        eprintln!("vakt graph: {}: no such file", file.display());
        return ExitCode::from(2);
    }
    let loaded = workflow::load_file(file);
    match &loaded.result {
        Ok(plan) => {
            print!("{}", workflow::mermaid::render(plan));
            ExitCode::SUCCESS
        }
        Err(_) => {
            print!("{}", loaded.render_errors());
            ExitCode::from(1)
        }
    }
}
