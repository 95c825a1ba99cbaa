//! natter's operations side, shared by its binaries (natter-bridge today; natter-server can take
//! the same pieces): how a process shows that it is healthy without anyone reading its logs.
//!
//! - [`endpoint`]: `--metrics-listen ADDR` serves OpenMetrics text at `/metrics` (a
//!   [`prometheus_client`] registry), `/healthz` (the process answers) and `/readyz` (a check the
//!   binary supplies), over hyper, with its own small limits;
//! - [`histogram`]: a latency histogram of atomics, for hot paths where prometheus-client's own
//!   histogram (a mutex per observation) would cost too much;
//! - [`logging`]: `--log-format text|json` for tracing.
#![warn(missing_docs)]

pub mod endpoint;
pub mod histogram;
pub mod logging;

pub use endpoint::{Endpoint, ReadyCheck};
pub use histogram::AtomicHistogram;
pub use logging::LogFormat;

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
}
