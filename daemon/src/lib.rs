//! vakt: a durable workflow daemon for compliance routines in municipal and
//! school IT.
//!
//! A tour of the crate:
//! - [`workflow`]: the workflow language. YAML files are parsed into an
//!   authored form, checked (every error collected, with `file:line:column`)
//!   and lowered into an immutable [`workflow::Plan`], the only thing the
//!   engine sees.
//! - [`cli`]: the `vakt` command line; `main.rs` only calls [`cli::main`].
//!
//! See ARCHITECTURE.md at the repository root for the code map and its
//! invariants.

pub mod cli;
pub mod engine;
pub mod plugin;
pub mod runtime;
pub mod scenario;
pub mod serve;
pub mod store;
pub mod workflow;
