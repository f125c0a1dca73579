//! The `vakt` command line.
//!
//! Exit codes follow one rule across verbs: 0 success, 1 the work found
//! problems (invalid workflows, failed scenarios), 2 the command itself was
//! wrong (usage errors, unreadable paths).

mod client;
mod internal;
mod serve;
mod token;
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
    /// Run the daemon: load workflows, serve the API, run instances.
    Serve {
        /// The config file (default: ./vakt.toml when present, else the
        /// embedded defaults); `VAKT_*` variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Log format: `text` or `json` (overrides the config's `log_format`).
        #[arg(long, value_parser = ["text", "json"])]
        log_format: Option<String>,
    },
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
    /// Manage API tokens (on the daemon's machine).
    #[command(subcommand)]
    Token(token::TokenCommand),
    #[command(flatten)]
    Client(client::ClientCommand),
    /// Tools for vakt's own tests and benchmarks.
    #[command(hide = true, subcommand)]
    Internal(internal::Internal),
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, log_format } => {
            serve::serve(config.as_deref(), log_format.as_deref())
        }
        Command::Validate { paths, quiet } => validate::validate(&paths, quiet),
        Command::Test { paths } => crate::scenario::main(&paths),
        Command::Schema => {
            println!("{}", crate::workflow::schema::json_schema());
            ExitCode::SUCCESS
        }
        Command::Graph { file } => validate::graph(&file),
        Command::Token(cmd) => token::run(cmd),
        Command::Client(cmd) => client::run(cmd),
        Command::Internal(cmd) => internal::run(cmd),
    }
}
