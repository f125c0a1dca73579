//! Errors of the plugin host.
//!
//! Load errors stop the daemon at start and say what to change in the config;
//! every plugin is checked and every error collected before giving up. Call
//! errors never reach here: they become a `CallOutcome::Err` whose
//! `retryable` says whether trying again could help (see `connector.rs`).

use std::path::PathBuf;

/// Why the plugin host could not start or load a plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin `{plugin}` asks for {capability}, which the config does not grant; {fix}")]
    NotGranted {
        plugin: String,
        capability: String,
        fix: String,
    },
    #[error("plugin `{plugin}`: {message}")]
    Config { plugin: String, message: String },
    #[error("plugin `{plugin}`: cannot read `{}`: {source}", path.display())]
    Read {
        plugin: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plugin `{plugin}`: `{}` is not a usable component: {message}", path.display())]
    Invalid {
        plugin: String,
        path: PathBuf,
        message: String,
    },
    #[error("plugin cache `{}`: {message}", path.display())]
    Cache { path: PathBuf, message: String },
    #[error("the plugin engine could not start: {0}")]
    Engine(String),
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<PluginError>),
}

impl PluginError {
    /// Folds collected errors into one (or none).
    pub fn collect(mut errors: Vec<PluginError>) -> Result<(), PluginError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(PluginError::Many(errors)),
        }
    }

    pub(crate) fn config(plugin: &str, message: impl Into<String>) -> Self {
        PluginError::Config {
            plugin: plugin.to_string(),
            message: message.into(),
        }
    }
}
