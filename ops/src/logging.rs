//! Log output for natter's binaries: human-readable lines (the default) or one JSON object per
//! line for log shippers (`--log-format json`). `RUST_LOG` filters both.

use crate::OpsError;
use tracing_subscriber::EnvFilter;

/// How log lines are written (to stdout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per event: `timestamp`, `level`, `target`, `message` and the event's
    /// fields at the top level, and the innermost span's fields under `span` (e.g. a connection's
    /// `id`).
    Json,
}

/// Installs the global subscriber: `RUST_LOG` if set, else `default_filter` (e.g. `"info"`).
pub fn init(format: LogFormat, default_filter: &str) -> Result<(), OpsError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // A log nobody reads any more (its pipe closed) must not stop the process: by default a
    // failed log write is reported with `eprintln!`, which panics on that same pipe.
    // Logs go to stderr: a binary's stdout is for what it tells its user (where it listens).
    // Colours only on a terminal: a log read by a program (a test, a shipper) gets plain text.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    result.map_err(|e| OpsError::Logging(e.to_string()))
}
