//! natter's operations side, shared by its binaries (natter-bridge today; natter-server can take
//! the same pieces): how a process shows that it is healthy without anyone reading its logs.
//!
//! - [`endpoint`]: `--metrics-listen ADDR` serves OpenMetrics text at `/metrics` (a
//!   [`prometheus_client`] registry), `/healthz` (the process answers) and `/readyz` (a check the
//!   binary supplies), over hyper, with its own small limits;
//! - [`histogram`]: a latency histogram of atomics, for hot paths where prometheus-client's own
//!   histogram (a mutex per observation) would cost too much;
//! - [`logging`]: `--log-format text|json` for tracing;
//! - [`args`]: flags and environment variables parsed by clap, a bad value from a variable said
//!   with the variable's name;
//! - [`mod@listen`]: the doors' listening sockets, with a backlog for connection storms;
//! - [`files`]: the open-file limit raised to what the hard limit allows, at start;
//! - [`prompt`]: a password asked on the terminal without echo (the `prompt` feature), for
//!   `natter --login` and `natter-server account add|passwd`;
//! - [`error_words`]: an error that stops a binary, in one line (the `natter` CLI's too).
//!
//! The metrics endpoint, the histogram, the listeners and the open-file limit are the
//! `service` feature (on by default); the `natter` CLI goes without it, and without hyper.
#![warn(missing_docs)]
// The list above links modules that only the `service` and `prompt` features build: without
// them (`cargo doc -p natter-ops`, which leaves `prompt` off; the CLI's build, without
// `service`) those links have nowhere to go, and `cargo doc` with `-D warnings` failed.
#![cfg_attr(
    not(all(feature = "service", feature = "prompt")),
    allow(rustdoc::broken_intra_doc_links)
)]

pub mod args;
#[cfg(feature = "service")]
pub mod endpoint;
#[cfg(feature = "service")]
pub mod files;
#[cfg(feature = "service")]
pub mod histogram;
#[cfg(feature = "service")]
pub mod listen;
pub mod logging;
#[cfg(feature = "prompt")]
pub mod prompt;

#[cfg(feature = "service")]
pub use endpoint::{Endpoint, ReadyCheck};
#[cfg(feature = "service")]
pub use files::{OpenFiles, raise_open_files};
#[cfg(feature = "service")]
pub use histogram::AtomicHistogram;
#[cfg(feature = "service")]
pub use listen::{Bound, bind, listen};
pub use logging::LogFormat;

/// An error that stops a binary, in one line for the operator: its message, then each cause
/// its message does not already say, after `": "`. natter's errors word their cause into their
/// own message (`cannot listen on ADDR: Address already in use`), which anyhow's report for
/// `main` would say a second time under "Caused by", and follow with a backtrace when
/// `RUST_BACKTRACE` is set; neither helps someone starting a server.
pub fn error_words(e: &(dyn std::error::Error + 'static)) -> String {
    let mut words = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !words.contains(&said) {
            words.push_str(": ");
            words.push_str(&said);
        }
        cause = c.source();
    }
    words
}

/// Why the operations side could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The metrics address could not be bound.
    #[error("cannot listen for metrics on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A global log subscriber was already installed.
    #[error("logging is already set up: {0}")]
    Logging(String),
    /// A secret file could not be read.
    #[error("cannot read the secret file {path}: {source}")]
    SecretFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The environment variable that holds the bridge secret for natter-server and natter-bridge.
pub const BRIDGE_SECRET_ENV: &str = "NATTER_BRIDGE_SECRET";

/// The bridge secret shared by natter-server and natter-bridge: the contents of `file` if given,
/// else [`BRIDGE_SECRET_ENV`], trimmed; `None` if neither has one. A secret is never taken from
/// the command line, where other users can read it.
pub fn bridge_secret(file: Option<&std::path::Path>) -> Result<Option<String>, OpsError> {
    secret(file, BRIDGE_SECRET_ENV)
}

/// A secret (a password, a token): the contents of `file` if given, else the environment
/// variable `env`, trimmed; `None` if neither has one. Never from the command line, where other
/// users can read it (`ps`), and where it stays in the shell's history.
pub fn secret(file: Option<&std::path::Path>, env: &str) -> Result<Option<String>, OpsError> {
    let secret = match file {
        Some(f) => Some(
            std::fs::read_to_string(f).map_err(|source| OpsError::SecretFile {
                path: f.to_path_buf(),
                source,
            })?,
        ),
        None => std::env::var(env).ok(),
    };
    Ok(secret
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_words_say_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let bind = OpsError::Bind {
            addr: "127.0.0.1:9100".parse().unwrap(),
            source: io,
        };
        assert_eq!(
            error_words(&bind),
            "cannot listen for metrics on 127.0.0.1:9100: Address already in use"
        );
        let e = anyhow::Error::new(bind).context("metrics");
        assert_eq!(
            error_words(e.as_ref()),
            "metrics: cannot listen for metrics on 127.0.0.1:9100: Address already in use"
        );
    }
}
