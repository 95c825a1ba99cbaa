//! natter-server: a tokio TCP shell around natter-core's [`Hub`](natter_core::hub::Hub).
//!
//! One task owns the hub (`hub_task`); per connection one task pumps bytes both ways (`conn`),
//! taking what the hub queued for it from its `outbox`; one accept loop per listening address
//! hands sockets over (`server`), each for its door: natter's own port, natter's port behind
//! TLS (`tls`: the handshake first, then the same inputs for the hub), or an IRC listener, plain
//! or behind TLS.
//! Every protocol decision (framing, limits, rooms, timeouts) is the hub's: this crate moves
//! bytes, keeps time and reports what the sockets did.
#![warn(missing_docs)]

mod clock;
mod conn;
mod hub_task;
mod metrics;
mod outbox;
mod server;
mod socket_cap;
mod store;
mod tls;

use natter_core::hub::Config;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

pub use natter_tls::TlsError;
pub use server::{Certificates, ReloadError, Server};

/// What a server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Addresses to listen on (port 0 picks a free port; see [`Server::local_addrs`]).
    pub listen: Vec<SocketAddr>,
    /// Addresses to listen on for IRC clients (none by default; see [`Server::irc_addrs`]).
    pub irc_listen: Vec<SocketAddr>,
    /// Addresses to listen on for TLS (natter's own port, both dialects, behind a handshake;
    /// none by default; see [`Server::tls_addrs`]). Needs [`ServerConfig::tls_certs`].
    pub tls_listen: Vec<SocketAddr>,
    /// Addresses to listen on for IRC over TLS (port 6697 by convention; none by default; see
    /// [`Server::irc_tls_addrs`]). Needs [`ServerConfig::tls_certs`], the same certificate as
    /// [`ServerConfig::tls_listen`].
    pub irc_tls_listen: Vec<SocketAddr>,
    /// The certificate and key the TLS listeners present (reloaded by
    /// [`Server::reload_certificates`]).
    pub tls_certs: Option<TlsCerts>,
    /// The hub's limits. `secret_seed` must come from the OS's random source in a real server.
    pub hub: Config,
    /// How long a graceful shutdown waits for the going-away notices to be written. A connection
    /// whose notice is written then has up to a second more for its peer to read it (its unread
    /// input is drained, so the close does not reset it); only what is still writing after both
    /// is warned of and dropped.
    pub shutdown_grace: Duration,
    /// Where rooms, history and resume sessions are kept; `None`: in memory only (ephemeral:
    /// everything is forgotten at exit).
    pub store: Option<natter_store::Config>,
    /// Where to serve `/metrics`, `/healthz` and `/readyz` (natter-ops' endpoint); `None`: no
    /// endpoint, and the hub task copies no counts (see [`Server::metrics_addr`]).
    pub metrics_listen: Option<SocketAddr>,
    /// Join a cluster through NATS JetStream (natter-cluster): rooms, their order and history
    /// and nicks are shared with the other nodes; the store is not used. `None`: one node.
    pub cluster: Option<natter_cluster::ClusterConfig>,
    /// The NATS credentials flags the server was given apart from `--cluster`'s address, for
    /// the command its unclaimed-admin warning says to run (the cluster's own are in
    /// [`natter_cluster::ClusterConfig::credentials`]). Default: none.
    pub nats_flags: NatsFlags,
}

/// What the `account` commands need besides `--cluster` to sign in to NATS as the server does
/// (natter-server's `--nats-user`, `--nats-password-file`, `--nats-token-file`, `--nats-creds`):
/// without them, the command the unclaimed-admin warning said to run was refused by NATS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsFlags {
    /// The flags with their values: a user name, a file's path, never a password or a token.
    pub args: Vec<String>,
    /// The environment variable the server read its NATS password or token from, which the
    /// command then reads too.
    pub variable: Option<&'static str>,
}

impl ServerConfig {
    /// Listens on 127.0.0.1 (a free port) with the default limits, a random seed, the test
    /// bridge secret ([`natter_core::hub::TEST_BRIDGE_SECRET`], which natter-bridge's own
    /// `local_test` uses) and the loopback address trusted as a proxy.
    pub fn local_test() -> ServerConfig {
        let hub = Config {
            // Tests only: a fixed seed if the OS has no randomness (it always has on Linux).
            secret_seed: random_seed().unwrap_or([0x5e; 32]),
            bridge_secret: natter_core::hub::BridgeSecret::new(
                natter_core::hub::TEST_BRIDGE_SECRET,
            )
            .ok(),
            trusted_proxies: vec![std::net::IpAddr::from([127, 0, 0, 1])],
            // Tests hash passwords cheaply; the code path is the same.
            accounts: natter_core::hub::AccountsConfig {
                hash_cost: natter_core::accounts::HashCost::TEST,
                ..Default::default()
            },
            ..Config::default()
        };
        ServerConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            irc_listen: Vec::new(),
            tls_listen: Vec::new(),
            irc_tls_listen: Vec::new(),
            tls_certs: None,
            hub,
            shutdown_grace: Duration::from_secs(2),
            store: None,
            metrics_listen: None,
            cluster: None,
            nats_flags: NatsFlags::default(),
        }
    }

    /// [`ServerConfig::local_test`] for tests that are not about telling the dialects apart:
    /// the detection wait is [`PATIENT_DETECT_WAIT`], not the default 400 ms, so a binary
    /// client whose preamble a loaded machine delays (a test's client task not scheduled for
    /// a while) is still taken as binary, not greeted as a person. A person on `nc` who says
    /// nothing is greeted that much later: tests of silent people keep
    /// [`ServerConfig::local_test`].
    pub fn local_test_patient() -> ServerConfig {
        let mut config = ServerConfig::local_test();
        config.hub.text_detect_wait = PATIENT_DETECT_WAIT;
        config
    }
}

/// The detection wait of [`ServerConfig::local_test_patient`] (and of the tests' config files
/// for the binary): longer than any stall of a test client on a loaded CI machine, within the
/// default hello timeout (10 s) that it may not exceed.
pub const PATIENT_DETECT_WAIT: natter_core::Millis = natter_core::Millis(5_000);

/// PEM files for the TLS listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsCerts {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// 32 bytes from the OS's random source, for [`Config::secret_seed`].
pub fn random_seed() -> Result<[u8; 32], ServerError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| ServerError::Randomness(e.to_string()))?;
    Ok(seed)
}

/// Why the server could not start or stop cleanly.
#[derive(Debug, Error)]
pub enum ServerError {
    /// No address to listen on.
    #[error("no address to listen on")]
    NoListenAddress,
    /// Binding a listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The address is in use: something listens on it, or another server bound it and is
    /// starting (opening its store).
    #[error(
        "cannot listen on {addr}: {source} (something listens there, or another natter-server is starting there)"
    )]
    InUse {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// TLS listeners (natter's or IRC's) without a certificate and key.
    #[error("--tls-listen and --irc-tls-listen need --tls-cert and --tls-key")]
    NoCertificate,
    /// The certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] natter_tls::TlsError),
    /// The store could not be opened (it names the path and why).
    #[error(transparent)]
    Store(#[from] natter_store::OpenError),
    /// The store could not be read at startup (damage that opening it did not reach).
    #[error("{} cannot be read: {source}", path.display())]
    Load {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: natter_store::ReadError,
    },
    /// The OS's random source failed (resume tokens would be guessable: refuse to run).
    #[error("no OS randomness: {0}")]
    Randomness(String),
    /// The metrics endpoint could not start.
    #[error(transparent)]
    Ops(#[from] natter_ops::OpsError),
    /// The cluster could not be joined (NATS unreachable, JetStream off).
    #[error(transparent)]
    Cluster(#[from] natter_cluster::ClusterError),
    /// A server task ended abnormally (a bug: it panicked).
    #[error("server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl ServerError {
    /// A listener's bind or listen on `addr` failed: [`ServerError::InUse`] if the address is
    /// in use, which says what may hold it.
    pub(crate) fn bind(addr: SocketAddr, source: std::io::Error) -> ServerError {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            ServerError::InUse { addr, source }
        } else {
            ServerError::Bind { addr, source }
        }
    }
}

/// Binds every address in `config.listen` (and the IRC, TLS and IRC-over-TLS ones: one in use,
/// or bound by another server still starting, fails the start at once), opens the store (or joins the cluster), and only then listens on
/// them: until the hub is ready a connection is refused rather than accepted and left
/// unanswered. Spawns the hub and accept tasks and returns.
pub async fn start(config: ServerConfig) -> Result<Server, ServerError> {
    server::start(config).await
}
