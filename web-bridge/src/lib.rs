//! natter-bridge: relays each browser's WebSocket onto its own TCP connection to natter-server,
//! and serves the page (static files) on the same port.
//!
//! - this file: configuration, the accept loop, connection caps and graceful shutdown;
//! - `http`: the HTTP side on hyper: request limits, routing, the page's files (tower-http);
//! - `upgrade`: the WebSocket handshake on `/ws` (tungstenite's checks, the Origin/Host rules);
//! - `relay`: the frame relay of an open WebSocket (to natter-server over TCP, or TLS);
//! - `metrics`: what the bridge counts, and its readiness (`--metrics-listen`, served by
//!   `natter_ops`).
//!
//! The bridge speaks no chat protocol: it adds and strips the length prefix of natter frames
//! (`natter_core::wire`) and enforces the frame size limit. The little it reads and writes
//! itself (the server's first message when it named the browser, to tell a refusal of its
//! secret; the server's probe of a page that was left, and the quit for one left for good) is
//! decided by `natter_core::bridge` and carried out by `relay`.
//!
//! # What a browser sees
//! `GET /ws` (WebSocket): one binary message per natter frame payload, both ways. The Origin
//! must be the bridge's own, `http://` + the request's Host (`https://` + Host when the bridge
//! serves TLS, [`BridgeConfig::tls`]) (with a Host that is an IP literal, `localhost` or one
//! of [`BridgeConfig::allowed_hosts`]: a guard against DNS rebinding), or one of
//! [`BridgeConfig::allowed_origins`]; other requests get HTTP 403. A request without Origin (not
//! a browser) is accepted unless [`BridgeConfig::allow_missing_origin`] is off. A connection over
//! [`BridgeConfig::max_connections`] or [`BridgeConfig::max_connections_per_ip`] gets HTTP 503 at
//! once. The bridge closes with:
//!
//! | code | when |
//! |------|------|
//! | 1000 | the server closed the connection (after its `Bye`, if it sent one) |
//! | 1001 | the bridge is shutting down |
//! | 1002 | WebSocket protocol error |
//! | 1003 | a text message (binary only) |
//! | 1009 | a message over `limits::MAX_FRAME` |
//! | 1011 | the server connection failed, or the server sent an oversize frame |
//! | 1013 | the server cannot be reached, its TLS certificate is not trusted, or it refused the bridge's secret (try again later) |
//!
//! With several server addresses (the nodes of a natter cluster, [`BridgeConfig::servers`]) a
//! new WebSocket is relayed to the address that last accepted a connection, or the next that
//! accepts; 1013 means none did. A server connection that drops closes the WebSocket as above:
//! the page reconnects (and resumes) through a new one, which reaches a node that is up.
//!
//! Any other path is a file from [`BridgeConfig::www_dir`] (`/` is `index.html`), precompressed
//! when `cargo xtask web` left a `.br` or `.gz` beside it (see `http`).
#![warn(missing_docs)]

mod faults;
mod forwarded;
mod http;
mod metrics;
mod relay;
mod upgrade;

use faults::{Fault, Faults};
use metrics::{Metrics, Refused, ServerHealth};
use natter_ops::Endpoint;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tower_http::services::ServeDir;
use tracing::{Instrument, debug, info, info_span, warn};

/// Everything the bridge needs to run. [`BridgeConfig::default`] has the production defaults.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Where browsers connect (page and `/ws`). Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The natter-server to relay to. Default `127.0.0.1:8000`.
    pub server: SocketAddr,
    /// Other nodes of the same natter cluster, tried in order after `server` (see
    /// [`BridgeConfig::servers`]). Default none.
    pub more_servers: Vec<SocketAddr>,
    /// Serve the page over https and the WebSocket as wss with this certificate and key (PEM;
    /// reread by [`Bridge::reload_certificates`]). None: plain http.
    pub tls: Option<TlsFiles>,
    /// Reach natter-server's TLS listener, verifying its certificate. None: plain TCP.
    pub server_tls: Option<ServerTls>,
    /// Static files to serve (the page built by `cargo xtask web`). Default `target/www`; the
    /// `natter-bridge` binary defaults to `www` in the target directory it was built into.
    pub www_dir: PathBuf,
    /// Origins allowed besides the bridge's own (`http://` + the request's Host header), exactly
    /// as browsers send them, e.g. `https://chat.example.org`.
    pub allowed_origins: Vec<String>,
    /// Host names the bridge is served under, besides IP literals and `localhost` (without a
    /// port, e.g. `chat.example.org`). A WebSocket whose Origin is the bridge's own
    /// (`http://` + Host) is accepted only under one of these: a hostile page can match its own
    /// origin to any Host by rebinding its DNS name to the bridge's address, but cannot use
    /// these names. Origins in [`BridgeConfig::allowed_origins`] need no entry here.
    pub allowed_hosts: Vec<String>,
    /// Accept WebSocket requests without an Origin header (non-browser programs). Default true:
    /// browsers always send one, and a program could send any value, so refusing adds nothing.
    pub allow_missing_origin: bool,
    /// Connections (HTTP and WebSocket) at once. Past this, new ones get a 503 at once.
    pub max_connections: usize,
    /// Connections at once from one IP address. Past this, new ones get a 503 at once.
    pub max_connections_per_ip: usize,
    /// With `tls`: TLS handshakes one address may start per 10 s (a full handshake costs far
    /// more CPU than a plain connect). Past it a connection is closed before its handshake.
    /// Four times natter-server's connect rate: a page load is several connections.
    pub max_tls_handshakes_per_ip: u32,
    /// The handshake budget, counted from the connection's accept: the request head must have
    /// arrived by then, and for a WebSocket the 101 must be out too (one budget, not one per
    /// step). A page request then has until [`PAGE_TIMEOUT`] in all.
    pub handshake_timeout: Duration,
    /// Time to connect to the server.
    pub connect_timeout: Duration,
    /// A WebSocket ping is sent this often.
    pub ping_interval: Duration,
    /// A browser silent (not even a pong) for `ping_interval + ping_timeout` is dropped (checked
    /// every half of the shorter of the two, so at most that much later).
    pub ping_timeout: Duration,
    /// A browser that does not take a message within this time is dropped.
    pub write_timeout: Duration,
    /// On shutdown, how long connections get to close (WebSockets) or finish (a page file being
    /// sent) before they are cut.
    pub shutdown_grace: Duration,
    /// Where to serve `/metrics`, `/healthz` and `/readyz` (none by default).
    pub metrics_listen: Option<SocketAddr>,
    /// The bridge secret natter-server was given: with it the bridge names each browser's
    /// address (`Forwarded`), so the server's per-address limits count browsers, not the
    /// bridge. Without it browsers all count as the bridge's own address. Replaced while
    /// running through [`Bridge::server_secret`].
    pub server_secret: Option<String>,
    /// Proxies in front of the bridge (HAProxy `send-proxy`, nginx `stream` with
    /// `proxy_protocol on`, stunnel): a connection from one of these addresses may start with a
    /// PROXY protocol header (v1 or v2) naming the browser, which the caps then count and the
    /// server is told of (`Forwarded`). An HTTP reverse proxy (nginx `proxy_pass`) names it in
    /// `X-Forwarded-For` instead: on a connection from one of these (without a PROXY header, or
    /// with one naming another of these) the rightmost address of that header that is not one
    /// of these is the browser, counted by the caps once the request head is read. From any
    /// other address neither is read (a request starting with a PROXY header is a bad request,
    /// an `X-Forwarded-For` is ignored). Default none.
    pub trusted_proxies: Vec<IpAddr>,
}

/// The bridge's own certificate and key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// How the bridge reaches natter-server over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// Whom to trust: the system's roots or a private CA.
    pub trust: natter_tls::Trust,
    /// The name the server's certificate must carry (a DNS name or an IP address).
    pub name: String,
}

/// A connection's stream on either side: a TCP socket, or TLS over one.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub(crate) type Stream = Box<dyn Io>;

/// Time for a whole page request (head, file and answer), from the accept.
pub const PAGE_TIMEOUT: Duration = http::PAGE_TIMEOUT;

impl Default for BridgeConfig {
    fn default() -> BridgeConfig {
        BridgeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            server: SocketAddr::from(([127, 0, 0, 1], 8000)),
            more_servers: Vec::new(),
            tls: None,
            server_tls: None,
            www_dir: PathBuf::from("target/www"),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            allow_missing_origin: true,
            max_connections: 4096,
            max_connections_per_ip: natter_core::limits::MAX_CONNECTIONS_PER_IP,
            max_tls_handshakes_per_ip: 4 * natter_core::limits::MAX_CONNECTS_PER_WINDOW,
            handshake_timeout: Duration::from_millis(natter_core::limits::HELLO_TIMEOUT.0),
            connect_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_millis(natter_core::limits::PING_AFTER.0),
            ping_timeout: Duration::from_millis(natter_core::limits::PING_TIMEOUT.0),
            write_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(3),
            metrics_listen: None,
            server_secret: None,
            trusted_proxies: Vec::new(),
        }
    }
}

impl BridgeConfig {
    /// Every server address, `server` first: the nodes of one cluster. Each new WebSocket is
    /// relayed to the address that last worked, or the next one that accepts a connection.
    /// A browser whose server connection drops is closed (its page reconnects and resumes),
    /// and its next WebSocket goes to an address that works.
    pub fn servers(&self) -> Vec<SocketAddr> {
        let mut all = vec![self.server];
        all.extend(self.more_servers.iter().filter(|a| **a != self.server));
        all
    }

    /// For tests: listen on `127.0.0.1:0`, relay to `server`, serve `www_dir`, with caps large
    /// enough for many local clients and short timeouts.
    pub fn local_test(server: SocketAddr, www_dir: PathBuf) -> BridgeConfig {
        BridgeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            server,
            www_dir,
            max_connections: 512,
            max_connections_per_ip: 256,
            handshake_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(2),
            server_secret: Some(natter_core::hub::TEST_BRIDGE_SECRET.to_owned()),
            ..BridgeConfig::default()
        }
    }
}

/// Why the bridge could not start or stop cleanly.
#[derive(Debug, Error)]
pub enum BridgeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate, key or CA file could not be used.
    #[error(transparent)]
    Tls(#[from] natter_tls::TlsError),
    /// The metrics endpoint could not start.
    #[error(transparent)]
    Metrics(#[from] natter_ops::OpsError),
    /// The accept loop ended abnormally (a bug).
    #[error("bridge task failed: {0}")]
    Task(String),
    /// A `--server` address that does not read, or a host name that does not resolve.
    #[error("--server {addr}: {reason}")]
    ServerAddress {
        /// As given.
        addr: String,
        /// Why.
        reason: String,
    },
}

/// natter-server's addresses as an operator types them (`--server`): `IP:PORT`,
/// `[IPv6]:PORT` or `HOST:PORT`, in order, a host name resolved now to each of its addresses
/// in the resolver's order (`localhost:8000` to `[::1]:8000` and `127.0.0.1:8000`: the relay
/// passes over one that refuses). Also the host name of the first, when it is a name (the name
/// a TLS server's certificate is checked for by default).
pub fn resolve_servers(items: &[String]) -> Result<(Vec<SocketAddr>, Option<String>), BridgeError> {
    use std::net::ToSocketAddrs;
    let mut out: Vec<SocketAddr> = Vec::new();
    let mut first_name = None;
    for (i, item) in items.iter().enumerate() {
        let item = item.trim();
        let bad = |reason: String| BridgeError::ServerAddress {
            addr: item.to_owned(),
            reason,
        };
        if let Ok(addr) = item.parse::<SocketAddr>() {
            if !out.contains(&addr) {
                out.push(addr);
            }
            continue;
        }
        let host = match item.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => host,
            _ => return Err(bad("expected HOST:PORT, e.g. 127.0.0.1:8000".to_owned())),
        };
        let addrs: Vec<SocketAddr> = item
            .to_socket_addrs()
            .map_err(|e| bad(format!("unknown host ({e})")))?
            .collect();
        if addrs.is_empty() {
            return Err(bad("the name has no address".to_owned()));
        }
        for a in addrs {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        if i == 0 {
            first_name = Some(host.to_owned());
        }
    }
    if out.is_empty() {
        return Err(BridgeError::ServerAddress {
            addr: String::new(),
            reason: "no address given".to_owned(),
        });
    }
    Ok((out, first_name))
}

/// A running bridge. Dropping it also stops it (without waiting); [`Bridge::shutdown`] waits.
#[derive(Debug)]
pub struct Bridge {
    local_addr: SocketAddr,
    tls: Option<Arc<natter_tls::ServerTls>>,
    secret: ServerSecret,
    /// Turned true to stop. Its version is also bumped at each sweep ([`sweep`]), so it is
    /// shared with that task, which holds it weakly: dropping the bridge still closes it.
    stop: Arc<watch::Sender<bool>>,
    task: JoinHandle<()>,
    metrics: Option<Endpoint>,
}

impl Bridge {
    /// The address it listens on (with the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether the page is served over https (and the WebSocket as wss).
    pub fn is_https(&self) -> bool {
        self.tls.is_some()
    }

    /// Reads the bridge's certificate and key again (e.g. on SIGHUP): new connections get the
    /// new certificate, open ones keep theirs. On an error the one in use stays. `Ok` without
    /// TLS.
    pub fn reload_certificates(&self) -> Result<(), BridgeError> {
        self.certificates().reload()
    }

    /// A handle that reloads the certificate like [`Bridge::reload_certificates`], for a task
    /// of its own (a signal handler).
    pub fn certificates(&self) -> Certificates {
        Certificates(self.tls.clone())
    }

    /// The bridge secret new relays present to the server, to be replaced (e.g. on SIGHUP,
    /// after the server's was rotated): relays open now keep their connection.
    pub fn server_secret(&self) -> ServerSecret {
        self.secret.clone()
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(Endpoint::local_addr)
    }

    /// Stops accepting, closes every WebSocket with 1001 (going away) and waits for connections
    /// to end, at most [`BridgeConfig::shutdown_grace`] (then the rest are cut): a page file
    /// being sent goes on until it is out; a connection with nothing to finish (a TLS handshake,
    /// a request head or a trusted proxy's PROXY header not in yet) is closed at once.
    /// `/readyz` says not ready from the start of this; the metrics endpoint stops last.
    pub async fn shutdown(self) -> Result<(), BridgeError> {
        let _ = self.stop.send(true);
        let done = self
            .task
            .await
            .map_err(|e| BridgeError::Task(e.to_string()));
        if let Some(m) = self.metrics {
            m.shutdown().await;
        }
        done
    }
}

/// The bridge's certificate, to be reloaded: see [`Bridge::certificates`].
#[derive(Debug, Clone)]
pub struct Certificates(Option<Arc<natter_tls::ServerTls>>);

impl Certificates {
    /// Whether the bridge serves TLS (`--tls-cert`): there is a certificate to reload.
    pub fn any(&self) -> bool {
        self.0.is_some()
    }

    /// See [`Bridge::reload_certificates`].
    pub fn reload(&self) -> Result<(), BridgeError> {
        let Some(tls) = &self.0 else {
            return Ok(());
        };
        tls.reload()?;
        info!(cert = %tls.cert_path().display(), "TLS certificate reloaded");
        Ok(())
    }
}

/// The bridge secret new relays present to natter-server ([`BridgeConfig::server_secret`]),
/// replaceable while the bridge runs: see [`Bridge::server_secret`].
#[derive(Debug, Clone)]
pub struct ServerSecret(Arc<std::sync::RwLock<Option<Arc<str>>>>);

impl ServerSecret {
    fn new(secret: Option<&str>) -> ServerSecret {
        ServerSecret(Arc::new(std::sync::RwLock::new(secret.map(Arc::from))))
    }

    /// The secret in use, if any.
    pub(crate) fn get(&self) -> Option<Arc<str>> {
        // A poisoned lock only means a writer panicked mid-assignment of a pointer; the value
        // is still whole.
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the secret for the relays that start from now on; whether it changed.
    pub fn set(&self, secret: Option<&str>) -> bool {
        let mut held = self.0.write().unwrap_or_else(|p| p.into_inner());
        if held.as_deref() == secret {
            return false;
        }
        *held = secret.map(Arc::from);
        true
    }
}

/// The server side's TLS, ready to connect.
#[derive(Clone)]
pub(crate) struct ServerConnector {
    pub(crate) connector: natter_tls::TlsConnector,
    pub(crate) name: natter_tls::rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for ServerConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConnector")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Binds and starts the bridge; returns at once.
pub async fn start(config: BridgeConfig) -> Result<Bridge, BridgeError> {
    let tls = match &config.tls {
        Some(files) => Some(Arc::new(natter_tls::ServerTls::load(
            &files.cert,
            &files.key,
        )?)),
        None => None,
    };
    let server_tls = match &config.server_tls {
        Some(st) => Some(ServerConnector {
            connector: natter_tls::connector(&st.trust)?,
            name: natter_tls::server_name(&st.name)?,
        }),
        None => None,
    };
    let listener = natter_ops::listen(config.listen).map_err(|source| BridgeError::Bind {
        addr: config.listen,
        source,
    })?;
    let local_addr = listener.local_addr().map_err(|source| BridgeError::Bind {
        addr: config.listen,
        source,
    })?;
    let (stop, stop_rx) = watch::channel(false);
    let stale = stale_precompressed(&config.www_dir);
    if let Some(file) = &stale {
        warn!(
            file = %file.display(),
            "a .br/.gz file is older than the file it compresses; serving uncompressed files only \
             (rebuild the page with `cargo xtask web`)"
        );
    }
    let shared = Arc::new(Shared {
        pages: http::serve_dir(&config.www_dir, stale.is_none()),
        metrics: Metrics::new(),
        server_health: Arc::new(ServerHealth::new()),
        per_ip: Mutex::new(HashMap::new()),
        handshakes: Mutex::new(natter_core::hub::ConnectRate::new(
            config.max_tls_handshakes_per_ip,
            natter_core::limits::CONNECT_WINDOW,
        )),
        started: std::time::Instant::now(),
        tls: tls.clone(),
        server_tls,
        server_at: AtomicUsize::new(0),
        secret: ServerSecret::new(config.server_secret.as_deref()),
        at_cap_said: AtomicU64::new(0),
        faults: Mutex::new(Faults::default()),
        config,
    });
    let metrics = match shared.config.metrics_listen {
        Some(addr) => {
            let ready = shared.server_health.check(
                shared.config.servers(),
                shared.server_tls.clone(),
                stop_rx.clone(),
            );
            Some(Endpoint::start(addr, shared.metrics.registry(), ready).await?)
        }
        None => None,
    };
    info!(
        listen = %local_addr,
        https = tls.is_some(),
        server = ?shared.config.servers(),
        server_tls = shared.server_tls.is_some(),
        www = %shared.config.www_dir.display(),
        metrics = %metrics
            .as_ref()
            .map_or_else(|| "none".to_owned(), |m| m.local_addr().to_string()),
        "bridge listening"
    );
    let stop = Arc::new(stop);
    tokio::spawn(sweep(Arc::downgrade(&stop), sweep_every(&shared.config)));
    let secret = shared.secret.clone();
    let task = tokio::spawn(accept_loop(listener, shared, stop_rx));
    Ok(Bridge {
        local_addr,
        tls,
        secret,
        stop,
        task,
        metrics,
    })
}

/// Most directory entries looked at for stale precompressed files (the page has a handful).
const MAX_PAGE_ENTRIES: usize = 10_000;

/// The first `.br` or `.gz` file under `root` that is older than the file it compresses, if any:
/// serving it would send an old version of that file. A missing directory has none. Called once
/// at start (plain `std::fs`: a handful of entries).
fn stale_precompressed(root: &std::path::Path) -> Option<PathBuf> {
    let mut dirs = vec![root.to_path_buf()];
    let mut seen = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            seen += 1;
            if seen > MAX_PAGE_ENTRIES {
                return None;
            }
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                dirs.push(path);
                continue;
            }
            let ext = path.extension().and_then(|e| e.to_str());
            if !matches!(ext, Some("br" | "gz")) {
                continue;
            }
            let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified());
            if let (Ok(variant), Ok(original)) =
                (modified(&path), modified(&path.with_extension("")))
                && variant < original
            {
                return Some(path);
            }
        }
    }
    None
}

/// State every connection task sees.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: BridgeConfig,
    /// The page directory's file service (`http::serve_dir`).
    pub(crate) pages: ServeDir,
    pub(crate) metrics: Metrics,
    pub(crate) server_health: Arc<ServerHealth>,
    /// Open connections per IP; entries are removed at zero, so it holds at most
    /// `max_connections` entries.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// TLS handshakes started per address in the last 10 s (with `tls` only; see
    /// [`BridgeConfig::max_tls_handshakes_per_ip`]).
    handshakes: Mutex<natter_core::hub::ConnectRate>,
    /// When the bridge started: `handshakes`' clock.
    started: std::time::Instant,
    /// The bridge's certificate, when it serves https.
    pub(crate) tls: Option<Arc<natter_tls::ServerTls>>,
    /// How to reach the server over TLS, if so.
    pub(crate) server_tls: Option<ServerConnector>,
    /// The index in [`BridgeConfig::servers`] of the address that last accepted a connection:
    /// where the next WebSocket's attempts start.
    pub(crate) server_at: AtomicUsize,
    /// The bridge secret new relays present (`config.server_secret` until replaced).
    pub(crate) secret: ServerSecret,
    /// When a cap's refusals were last said in the log (see [`Shared::said_at_cap`]).
    at_cap_said: AtomicU64,
    /// Peers' failed TLS handshakes and bad or late request heads, for their log lines (see
    /// [`Shared::peer_fault`]).
    faults: Mutex<Faults>,
}

/// How often, at most, the log says that connections are refused at a cap: once tells the
/// operator which limit to raise; a line per refusal would flood the log in the very storm
/// that fills the cap (the metrics count each one). The line itself says "10 s".
pub(crate) const AT_CAP_SAID_EVERY: Duration = Duration::from_secs(10);

impl Shared {
    /// Counts a connection refused at the total or per-address cap (`why`) and says so in a
    /// `WARN` line, at most once per [`AT_CAP_SAID_EVERY`] for both caps together.
    pub(crate) fn refused_at_cap(&self, why: Refused, peer: SocketAddr) {
        self.metrics.refused(why);
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let every = AT_CAP_SAID_EVERY.as_millis() as u64;
        let last = self.at_cap_said.load(Ordering::Relaxed);
        // 0 is never: the first refusal is said however soon after the start it comes.
        if last != 0 && now.saturating_sub(last) < every {
            return;
        }
        if self
            .at_cap_said
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        match why {
            Refused::Capacity => warn!(
                %peer,
                max_connections = self.config.max_connections,
                "connections refused: the bridge is at its connection cap (--max-connections); \
                 they are answered 503 (said at most every 10 s, counted in \
                 natter_bridge_refused_total{{reason=\"capacity\"}})"
            ),
            _ => warn!(
                %peer,
                max_connections_per_ip = self.config.max_connections_per_ip,
                "connections refused: an address is at its cap (--max-connections-per-ip; \
                 behind a proxy, --trusted-proxy); they are answered 503 (said at most every \
                 10 s, counted in natter_bridge_refused_total{{reason=\"address_capacity\"}})"
            ),
        }
    }

    /// Counts a peer's `fault` (a failed TLS handshake, a request head that is bad or late, a
    /// WebSocket refused for its Origin or Host or not one) in the metrics and says it in the
    /// log: each one at `DEBUG`, and at `INFO` (`WARN` for a Host) at most once per
    /// [`faults::SAID_EVERY`] for each kind, with how many came since that kind's last line
    /// (this peer's `detail` as an example).
    pub(crate) fn peer_fault(&self, fault: Fault, peer: SocketAddr, detail: &str) {
        self.metrics.refused(match fault {
            Fault::TlsHandshake => Refused::TlsHandshake,
            Fault::Timeout => Refused::Timeout,
            Fault::BadRequest => Refused::BadRequest,
            Fault::Origin => Refused::Origin,
            Fault::Host => Refused::Host,
            Fault::NotAnUpgrade => Refused::Handshake,
            Fault::HandshakeRate => Refused::HandshakeRate,
        });
        debug!(%peer, detail, ?fault, "a peer's fault");
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let Some(count) = self
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .note(fault, now)
        else {
            return;
        };
        match fault {
            Fault::TlsHandshake => info!(
                %peer,
                error = detail,
                count,
                "TLS handshakes failed: {count} since the last such line (a client that does \
                 not trust the certificate, or speaks no TLS the bridge takes; said at most \
                 every 10 s, counted in natter_bridge_refused_total{{reason=\"tls_handshake\"}})"
            ),
            Fault::Timeout => info!(
                %peer,
                what = detail,
                count,
                "handshakes not done in time: {count} since the last such line (said at most \
                 every 10 s, counted in natter_bridge_refused_total{{reason=\"timeout\"}})"
            ),
            Fault::BadRequest => info!(
                %peer,
                error = detail,
                count,
                "bad request heads: {count} since the last such line (answered 400 or 431; said \
                 at most every 10 s, counted in natter_bridge_refused_total{{reason=\"bad_request\"}})"
            ),
            Fault::Origin => info!(
                %peer,
                origin = detail,
                count,
                "websocket refused: origin not allowed: {count} since the last such line \
                 (answered 403; a page served elsewhere needs --allow-origin; said at most every \
                 10 s, counted in natter_bridge_refused_total{{reason=\"origin\"}})"
            ),
            Fault::Host => warn!(
                %peer,
                host = detail,
                count,
                "websocket refused: host not allowed (a DNS-rebinding guard): {count} since the \
                 last such line (answered 403; if the bridge is served under this name, start it \
                 with --allow-host; said at most every 10 s, counted in \
                 natter_bridge_refused_total{{reason=\"host\"}})"
            ),
            Fault::NotAnUpgrade => info!(
                %peer,
                status = detail,
                count,
                "websocket refused: not a WebSocket handshake (no `Upgrade: websocket`): {count} \
                 since the last such line; a reverse proxy in front must pass the Upgrade and \
                 Connection headers (said at most every 10 s, counted in \
                 natter_bridge_refused_total{{reason=\"handshake\"}})"
            ),
            Fault::HandshakeRate => info!(
                %peer,
                reason = detail,
                count,
                "TLS handshakes refused: {count} since the last such line (an address over \
                 --max-tls-handshakes-per-ip, closed before its handshake; said at most every \
                 10 s, counted in natter_bridge_refused_total{{reason=\"handshake_rate\"}})"
            ),
        }
    }

    /// Whether `ip` is one of [`BridgeConfig::trusted_proxies`] (an IPv4 address on a
    /// dual-stack socket as itself).
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.config
            .trusted_proxies
            .iter()
            .any(|t| t.to_canonical() == ip)
    }

    /// Counts a TLS handshake from `ip` about to start (with `tls` only): `Err` (words for the
    /// log) past [`BridgeConfig::max_tls_handshakes_per_ip`] in 10 s.
    fn handshake_allowed(&self, ip: IpAddr) -> Result<(), String> {
        if self.tls.is_none() {
            return Ok(());
        }
        let now = natter_core::Millis(
            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        );
        self.handshakes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .attempt(ip, now)
    }
}

/// tungstenite's settings: natter-sized instead of its 64 MiB defaults.
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        // Allocated up front and kept for the WebSocket's life; each read takes at most this
        // much. A browser's messages are chat lines: 512 bytes hold a few at once, and an idle
        // browser keeps half a KiB less than with 1 KiB (issue 22).
        .read_buffer_size(512)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(relay::WS_MAX_WRITE_BUFFER)
        .max_message_size(Some(relay::WS_MAX_MESSAGE))
        .max_frame_size(Some(relay::WS_MAX_MESSAGE))
}

/// One connection's place under the per-IP cap; gives it back on drop.
pub(crate) struct IpSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl IpSlot {
    pub(crate) fn take(shared: &Arc<Shared>, ip: IpAddr) -> Option<IpSlot> {
        // A poisoned lock only means another task panicked mid-update of a counter; the map
        // is still usable.
        let mut map = shared.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        // Checked before inserting, so refused addresses leave no entry behind.
        if map.get(&ip).copied().unwrap_or(0) >= shared.config.max_connections_per_ip {
            return None;
        }
        *map.entry(ip).or_insert(0) += 1;
        Some(IpSlot {
            shared: Arc::clone(shared),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self.shared.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// How often every relay checks whether a ping is due and whether its browser has been silent
/// too long: half the shorter of the ping interval and the ping timeout, so a silent browser is
/// dropped at most that long after `ping_interval + ping_timeout`.
pub(crate) fn sweep_every(config: &BridgeConfig) -> Duration {
    (config.ping_interval.min(config.ping_timeout) / 2).max(Duration::from_millis(1))
}

/// The bridge's one timer for every relay's pings and silence check (`relay::Sweep`): bumps the
/// stop channel's version (its value unchanged) every `every`, until the bridge stops or is
/// dropped. One timer for all, instead of two in each relayed browser's task (issue 22).
async fn sweep(stop: std::sync::Weak<watch::Sender<bool>>, every: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(stop) = stop.upgrade() else {
            return;
        };
        if *stop.borrow() {
            return;
        }
        stop.send_modify(|_| {});
    }
}

/// A stop request: `stop` turned true, or the [`Bridge`] was dropped.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// One accepted connection, from its TLS handshake (if any) to the end of its WebSocket: what
/// every connection's task holds, for hours when it is a relayed browser. `slot`: its place
/// under the per-address cap; `None` for a trusted proxy's, whose request names the browser
/// that takes one (`http`).
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    accepted: tokio::time::Instant,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    slot: Option<IpSlot>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    // A TLS handshake has nothing to finish: on shutdown it is dropped at once, as a request
    // head still coming is (`http`), instead of holding the shutdown for the grace period.
    let opened = {
        let mut stopping = stop.clone();
        tokio::select! {
            o = Box::pin(open(tcp, peer, accepted, &shared)) => o,
            () = stopped(&mut stopping) => None,
        }
    };
    let Some((stream, plain_on_tls)) = opened else {
        return;
    };
    http::serve(stream, peer, accepted, shared, stop, plain_on_tls, slot).await;
    drop(permit);
}

/// The connection's stream, after its TLS handshake with [`BridgeConfig::tls`], and whether it
/// is plain HTTP on the HTTPS port; `None` when the handshake failed or was not done within
/// the handshake budget.
async fn open(
    tcp: TcpStream,
    peer: SocketAddr,
    accepted: tokio::time::Instant,
    shared: &Shared,
) -> Option<(Stream, bool)> {
    match &shared.tls {
        None => Some((Box::new(tcp), false)),
        // Plain HTTP on the HTTPS port (`http://` typed for `https://`): sent to its https
        // address rather than closed by a failed handshake (an empty response in the browser).
        Some(_) if first_byte_is_not_tls(&tcp, accepted, &shared.config).await => {
            Some((Box::new(tcp), true))
        }
        Some(tls) => {
            // The TLS handshake spends the same budget as the HTTP one after it.
            // Boxed: the handshake's state is large, and would otherwise stay in
            // the task for as long as the WebSocket is open (issue 22).
            let deadline = accepted + shared.config.handshake_timeout;
            match Box::pin(tokio::time::timeout_at(
                deadline,
                tls.acceptor().accept(tcp),
            ))
            .await
            {
                Ok(Ok(s)) => Some((Box::new(s), false)),
                Ok(Err(e)) => {
                    shared.peer_fault(Fault::TlsHandshake, peer, &e.to_string());
                    None
                }
                Err(_) => {
                    shared.peer_fault(Fault::Timeout, peer, "TLS handshake");
                    None
                }
            }
        }
    }
}

/// Whether the peer's first byte (left in the socket) shows it is not starting a TLS handshake
/// (whose first record is a handshake, type 0x16). A peer that sends nothing within the
/// handshake budget is left to the handshake's own timeout.
async fn first_byte_is_not_tls(
    tcp: &TcpStream,
    accepted: tokio::time::Instant,
    config: &BridgeConfig,
) -> bool {
    const TLS_HANDSHAKE_RECORD: u8 = 0x16;
    let mut first = [0u8; 1];
    let deadline = accepted + config.handshake_timeout;
    matches!(
        tokio::time::timeout_at(deadline, tcp.peek(&mut first)).await,
        Ok(Ok(1)) if first[0] != TLS_HANDSHAKE_RECORD
    )
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(shared.config.max_connections.max(1)));
    let mut tasks = JoinSet::new();
    // Numbers connections for the logs (every line of a connection carries `conn`).
    let mut next_conn: u64 = 0;
    // Connection tasks see a stop through their own receiver; a dropped `Bridge` closes the
    // channel, which `wait_for` also reports.
    loop {
        // Reap finished tasks so the set holds only live connections (plus the last one).
        while let Some(done) = tasks.try_join_next() {
            if let Err(e) = done {
                warn!(error = %e, "connection task failed");
            }
        }
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        shared.metrics.connections.inc();
        // Chat frames are small and latency-bound: without this, Nagle's algorithm against the
        // browser's delayed ACKs holds replies back ~40 ms (measured by natter-bench).
        if let Err(e) = tcp.set_nodelay(true) {
            debug!(%peer, error = %e, "could not set TCP_NODELAY");
        }
        // Over a cap, the connection is told so at once instead of waiting unseen in the
        // listen backlog.
        let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
            debug!(%peer, "refused: the bridge is at its connection cap");
            refuse_now(tcp, &shared, Refused::Capacity, peer);
            continue;
        };
        let accepted = tokio::time::Instant::now();
        next_conn += 1;
        let span = info_span!("conn", id = next_conn);
        if shared.trusts(peer.ip()) {
            // A proxy's connection: the browser its PROXY header names is what the caps count,
            // so the header is read (in the connection's own task) before they are applied.
            let (shared, stop) = (Arc::clone(&shared), stop.clone());
            tasks.spawn(
                async move {
                    // A header not in yet has nothing to finish: on shutdown the connection is
                    // closed at once (it held the shutdown for the whole grace period).
                    let header = {
                        let mut stopping = stop.clone();
                        tokio::select! {
                            p = proxied(tcp, peer, accepted, &shared) => p,
                            () = stopped(&mut stopping) => None,
                        }
                    };
                    let Some((tcp, peer)) = header else {
                        return;
                    };
                    if shared.trusts(peer.ip()) {
                        // No PROXY header (or one naming another trusted proxy): an HTTP
                        // reverse proxy, whose request's X-Forwarded-For names the browser
                        // the caps count, once its head is read (`http`).
                        connection(tcp, peer, accepted, shared, stop, None, permit).await;
                        return;
                    }
                    match admit(peer, &shared) {
                        Ok(slot) => {
                            connection(tcp, peer, accepted, shared, stop, Some(slot), permit).await;
                        }
                        Err(why) => refuse_now(tcp, &shared, why, peer),
                    }
                }
                .instrument(span),
            );
            continue;
        }
        let slot = match admit(peer, &shared) {
            Ok(slot) => slot,
            Err(why) => {
                refuse_now(tcp, &shared, why, peer);
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        let stop = stop.clone();
        tasks.spawn(
            connection(tcp, peer, accepted, shared, stop, Some(slot), permit).instrument(span),
        );
    }
    drop(listener);
    info!(connections = tasks.len(), "bridge stopping");
    let grace = shared.config.shutdown_grace;
    if timeout(grace, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        warn!(
            left = tasks.len(),
            "connections still open after the grace period; cutting them"
        );
        tasks.shutdown().await;
    }
    info!("bridge stopped");
}

/// The per-address caps for a connection from `peer` (the browser, a proxy's header read):
/// its slot, or why it is refused (then closed with [`refuse_now`]).
fn admit(peer: SocketAddr, shared: &Arc<Shared>) -> Result<IpSlot, Refused> {
    // Counted as the server counts addresses: a v4 client on a dual-stack socket as its v4
    // address, an IPv6 client by its /64 (one line or VM owns all of it).
    let Some(slot) = IpSlot::take(shared, natter_core::hub::address_key(peer.ip())) else {
        debug!(%peer, "refused: too many connections from this address");
        return Err(Refused::AddressCapacity);
    };
    if let Err(why) = shared.handshake_allowed(peer.ip()) {
        // Counted and said here (at most every 10 s): not again by `refuse_now`.
        shared.peer_fault(Fault::HandshakeRate, peer, &why);
        return Err(Refused::HandshakeRate);
    }
    Ok(slot)
}

/// A trusted proxy's connection: reads its PROXY header (v1 or v2, before any TLS, within the
/// handshake budget) and returns the connection with the browser's address it names (the
/// proxy's own, with the proxy's port, when it sent no header or a `LOCAL` one). A malformed
/// header, or none within the budget, closes the connection.
async fn proxied(
    mut tcp: TcpStream,
    peer: SocketAddr,
    accepted: tokio::time::Instant,
    shared: &Shared,
) -> Option<(TcpStream, SocketAddr)> {
    let deadline = accepted + shared.config.handshake_timeout;
    match tokio::time::timeout_at(deadline, read_proxy_header(&mut tcp)).await {
        Ok(Ok(client)) => {
            let peer = client.map_or(peer, |ip| SocketAddr::new(ip, peer.port()));
            Some((tcp, peer))
        }
        Ok(Err(e)) => {
            info!(%peer, error = %e, "bad PROXY header from a trusted proxy");
            shared.metrics.refused(Refused::BadRequest);
            None
        }
        Err(_) => {
            debug!(%peer, "PROXY header timed out");
            shared.metrics.refused(Refused::Timeout);
            None
        }
    }
}

/// Reads a PROXY header exactly, byte by byte (the TLS handshake or the HTTP request follows
/// it, and a header is short): the client it names, if any. A connection whose first byte
/// cannot start a header has none, and is left as it is.
async fn read_proxy_header(tcp: &mut TcpStream) -> std::io::Result<Option<IpAddr>> {
    use natter_core::proxy::{self, Parsed};
    use tokio::io::AsyncReadExt;
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    if proxy::parse(&first).map_err(std::io::Error::other)? == Parsed::NotProxy {
        return Ok(None);
    }
    let mut buf = Vec::with_capacity(proxy::MAX_HEADER);
    loop {
        buf.push(tcp.read_u8().await?);
        match proxy::parse(&buf).map_err(std::io::Error::other)? {
            Parsed::Partial => {}
            Parsed::Header { source, .. } => return Ok(source),
            Parsed::NotProxy => return Err(std::io::Error::other("not a PROXY header")),
        }
    }
}

/// Most bytes of a refused connection's request read (and dropped) before its 503 goes out.
const REFUSE_DRAIN: usize = 8 * 1024;

/// Answers a connection over a cap with 503 and closes it, without waiting for anything: what its
/// request already sent is read and dropped first (so closing sends a FIN the client can read the
/// answer before, not a reset), then the 503 goes into the empty socket buffer of the new
/// connection.
fn refuse_now(tcp: TcpStream, shared: &Shared, why: Refused, peer: SocketAddr) {
    match why {
        Refused::Capacity | Refused::AddressCapacity => shared.refused_at_cap(why, peer),
        // Counted (and said) by `admit`.
        Refused::HandshakeRate => {}
        _ => shared.metrics.refused(why),
    }
    if shared.tls.is_some() {
        // Before a TLS handshake there is no way to say 503: the connection is just closed.
        return;
    }
    let mut sink = [0u8; 2048];
    let mut drained = 0;
    while drained < REFUSE_DRAIN {
        match tcp.try_read(&mut sink) {
            Ok(n) if n > 0 => drained += n,
            _ => break,
        }
    }
    let _ = tcp.try_write(http::UNAVAILABLE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(per_ip: usize) -> Arc<Shared> {
        let config = BridgeConfig {
            max_connections_per_ip: per_ip,
            ..BridgeConfig::default()
        };
        Arc::new(Shared {
            pages: http::serve_dir(&config.www_dir, true),
            metrics: Metrics::new(),
            server_health: Arc::new(ServerHealth::new()),
            per_ip: Mutex::new(HashMap::new()),
            handshakes: Mutex::new(natter_core::hub::ConnectRate::new(
                config.max_tls_handshakes_per_ip,
                natter_core::limits::CONNECT_WINDOW,
            )),
            started: std::time::Instant::now(),
            tls: None,
            server_tls: None,
            server_at: AtomicUsize::new(0),
            secret: ServerSecret::new(None),
            at_cap_said: AtomicU64::new(0),
            faults: Mutex::new(Faults::default()),
            config,
        })
    }

    /// What an idle relayed browser costs in task state (its connection future; tungstenite's
    /// buffers, the sockets and the kernel aside): the handshakes, the connect to the server and
    /// the close are boxed, so only the relay's own state stays for the WebSocket's life.
    #[tokio::test]
    async fn connection_task_state_is_small() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (tcp, peer) = listener.accept().await.unwrap();
        let s = shared(1);
        let slot = IpSlot::take(&s, peer.ip()).unwrap();
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        let fut = connection(
            tcp,
            peer,
            tokio::time::Instant::now(),
            Arc::clone(&s),
            stop,
            Some(slot),
            permit,
        );
        let size = std::mem::size_of_val(&fut);
        eprintln!("connection future: {size} bytes");
        assert!(size <= 3000, "connection future is {size} bytes");
    }

    fn entries(s: &Shared) -> usize {
        s.per_ip.lock().unwrap().len()
    }

    #[test]
    fn per_ip_slots_are_counted_and_given_back() {
        let s = shared(2);
        let ip = IpAddr::from([203, 0, 113, 1]);
        let other = IpAddr::from([203, 0, 113, 2]);
        let a = IpSlot::take(&s, ip).expect("first");
        let b = IpSlot::take(&s, ip).expect("second");
        assert!(IpSlot::take(&s, ip).is_none(), "third refused");
        let c = IpSlot::take(&s, other).expect("another address has its own count");
        drop(a);
        let d = IpSlot::take(&s, ip).expect("a freed slot is reusable");
        drop((b, c, d));
        assert_eq!(
            entries(&s),
            0,
            "no entries left for addresses with no connections"
        );

        // An IPv6 /64 is one address: its many addresses share the cap.
        let v6 = |s: &str| natter_core::hub::address_key(s.parse().unwrap());
        let e = IpSlot::take(&s, v6("2001:db8::1")).expect("first of the /64");
        let f = IpSlot::take(&s, v6("2001:db8::ffff:2")).expect("second of the /64");
        assert!(
            IpSlot::take(&s, v6("2001:db8::3:0:0:3")).is_none(),
            "third of the /64"
        );
        let g = IpSlot::take(&s, v6("2001:db8:0:1::1")).expect("the next /64 has its own");
        drop((e, f, g));
        assert_eq!(entries(&s), 0);

        let none = shared(0);
        assert!(IpSlot::take(&none, ip).is_none());
        assert_eq!(entries(&none), 0, "refusals leave no entry");
    }
}
