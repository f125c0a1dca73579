//! `vakt serve`: reads and checks the config, sets up logging, runs the
//! daemon on a multi-threaded tokio runtime until SIGTERM/SIGINT.
//!
//! Exit codes: 0 after a clean shutdown, 1 when the daemon failed while
//! running (store, listener, plugins), 2 for an invalid config.

use std::path::Path;
use std::process::ExitCode;

use crate::serve::config::{Config, LogFormat};

pub fn serve(config_file: Option<&Path>, log_format: Option<&str>) -> ExitCode {
    let mut config = match Config::load(config_file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vakt serve: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(f) = log_format {
        config.log_format = if f == "json" {
            LogFormat::Json
        } else {
            LogFormat::Text
        };
    }
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vakt")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vakt serve: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::serve::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "vakt stopped with an error");
            eprintln!("vakt serve: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
