//! The `vakt` command line.
//!
//! Exit codes follow one rule across verbs: 0 success, 1 the work found
//! problems (invalid workflows, failed scenarios), 2 the command itself was
//! wrong (usage errors, unreadable paths).

mod internal;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// vakt: durable compliance workflows for municipal and school IT.
#[derive(Debug, Parser)]
#[command(name = "vakt", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check workflow files (files or directories); print every error as
    /// `path:line:column: message`.
    Validate {
        /// Workflow files or directories (searched recursively for *.yaml).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print nothing but errors.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Run workflow scenario tests (*.test.yaml) on virtual time.
    Test {
        /// Scenario files or directories (searched recursively); workflows
        /// are loaded from the same paths.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of workflow files, for editors.
    Schema,
    /// Print a Mermaid flowchart of a workflow's steps.
    Graph {
        /// The workflow file.
        file: PathBuf,
    },
    /// Tools for vakt's own tests and benchmarks.
    #[command(hide = true, subcommand)]
    Internal(internal::Internal),
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { paths, quiet } => validate::validate(&paths, quiet),
        Command::Test { paths } => crate::scenario::main(&paths),
        Command::Schema => {
            println!("{}", crate::workflow::schema::json_schema());
            ExitCode::SUCCESS
        }
        Command::Graph { file } => validate::graph(&file),
        Command::Internal(cmd) => internal::run(cmd),
    }
}
