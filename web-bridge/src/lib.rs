//! natter-bridge: relays each browser's WebSocket onto its own TCP connection to natter-server,
//! and serves the page (static files) on the same port.
//!
//! - this file: configuration, the accept loop, connection caps and graceful shutdown;
//! - `http`: reading and routing a request head, static files;
//! - `relay`: the WebSocket handshake (Origin check) and the frame relay.
//!
//! The bridge speaks no chat protocol: it adds and strips the length prefix of natter frames
//! (`natter_core::wire`) and enforces the frame size limit, nothing more.
//!
//! # What a browser sees
//! `GET /ws` (WebSocket): one binary message per natter frame payload, both ways. The Origin
//! must be `http://` + the request's Host (with a Host that is an IP literal, `localhost` or one
//! of [`BridgeConfig::allowed_hosts`]: a guard against DNS rebinding), or one of
//! [`BridgeConfig::allowed_origins`]; other requests get HTTP 403. A request without Origin (not a browser) is accepted unless
//! [`BridgeConfig::allow_missing_origin`] is off. The bridge closes with:
//!
//! | code | when |
//! |------|------|
//! | 1000 | the server closed the connection (after its `Bye`, if it sent one) |
//! | 1001 | the bridge is shutting down |
//! | 1002 | WebSocket protocol error |
//! | 1003 | a text message (binary only) |
//! | 1009 | a message over `limits::MAX_FRAME` |
//! | 1011 | the server connection failed, or the server sent an oversize frame |
//! | 1013 | the server cannot be reached (try again later) |
//!
//! Any other path is a static file from [`BridgeConfig::www_dir`] (`/` is `index.html`).
#![warn(missing_docs)]

mod http;
mod relay;

use bytes::BytesMut;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{Instrument, debug, info, info_span, warn};

/// Everything the bridge needs to run. [`BridgeConfig::default`] has the production defaults.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Where browsers connect (page and `/ws`). Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The natter-server to relay to. Default `127.0.0.1:8000`.
    pub server: SocketAddr,
    /// Static files to serve (the page built by `cargo xtask web`). Default `target/www`.
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
    /// Connections (HTTP and WebSocket) at once. Past this, new ones wait in the listen backlog.
    pub max_connections: usize,
    /// Connections at once from one IP address. Past this, new ones get a 503.
    pub max_connections_per_ip: usize,
    /// Time to send a whole request head and complete the WebSocket handshake.
    pub handshake_timeout: Duration,
    /// Time to connect to the server.
    pub connect_timeout: Duration,
    /// A WebSocket ping is sent this often.
    pub ping_interval: Duration,
    /// A browser silent (not even a pong) for `ping_interval + ping_timeout` is dropped.
    pub ping_timeout: Duration,
    /// A browser that does not take a message within this time is dropped.
    pub write_timeout: Duration,
    /// On shutdown, how long connections get to close before they are cut.
    pub shutdown_grace: Duration,
}

impl Default for BridgeConfig {
    fn default() -> BridgeConfig {
        BridgeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            server: SocketAddr::from(([127, 0, 0, 1], 8000)),
            www_dir: PathBuf::from("target/www"),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            allow_missing_origin: true,
            max_connections: 4096,
            max_connections_per_ip: natter_core::limits::MAX_CONNECTIONS_PER_IP,
            handshake_timeout: Duration::from_millis(natter_core::limits::HELLO_TIMEOUT.0),
            connect_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_millis(natter_core::limits::PING_AFTER.0),
            ping_timeout: Duration::from_millis(natter_core::limits::PING_TIMEOUT.0),
            write_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

impl BridgeConfig {
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
    /// The accept loop ended abnormally (a bug).
    #[error("bridge task failed: {0}")]
    Task(String),
}

/// A running bridge. Dropping it also stops it (without waiting); [`Bridge::shutdown`] waits.
#[derive(Debug)]
pub struct Bridge {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Bridge {
    /// The address it listens on (with the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, closes every WebSocket with 1001 (going away) and waits for connections
    /// to end, at most [`BridgeConfig::shutdown_grace`] (then the rest are cut).
    pub async fn shutdown(self) -> Result<(), BridgeError> {
        let _ = self.stop.send(true);
        self.task
            .await
            .map_err(|e| BridgeError::Task(e.to_string()))
    }
}

/// Binds and starts the bridge; returns at once.
pub async fn start(config: BridgeConfig) -> Result<Bridge, BridgeError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| BridgeError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| BridgeError::Bind {
        addr: config.listen,
        source,
    })?;
    info!(listen = %local_addr, server = %config.server, www = %config.www_dir.display(), "bridge listening");
    let (stop, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        config,
        per_ip: Mutex::new(HashMap::new()),
    });
    let task = tokio::spawn(accept_loop(listener, shared, stop_rx));
    Ok(Bridge {
        local_addr,
        stop,
        task,
    })
}

/// Time to send one static file (the wasm is the big one; this allows a slow link).
const STATIC_TIMEOUT: Duration = Duration::from_secs(120);

/// State every connection task sees.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: BridgeConfig,
    /// Open connections per IP; entries are removed at zero, so it holds at most
    /// `max_connections` entries.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// tungstenite's settings: natter-sized instead of its 64 MiB defaults.
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(relay::WS_MAX_WRITE_BUFFER)
        .max_message_size(Some(relay::WS_MAX_MESSAGE))
        .max_frame_size(Some(relay::WS_MAX_MESSAGE))
}

/// One connection's place under the per-IP cap; gives it back on drop.
struct IpSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl IpSlot {
    fn take(shared: &Arc<Shared>, ip: IpAddr) -> Option<IpSlot> {
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

/// A stop request: `stop` turned true, or the [`Bridge`] was dropped.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
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
        let permit = tokio::select! {
            p = Arc::clone(&limit).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break, // closed: not done anywhere, but end cleanly if it were
            },
            _ = stopped(&mut stop) => break,
        };
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
        // Chat frames are small and latency-bound: without this, Nagle's algorithm against the
        // browser's delayed ACKs holds replies back ~40 ms (measured by natter-bench).
        if let Err(e) = tcp.set_nodelay(true) {
            debug!(%peer, error = %e, "could not set TCP_NODELAY");
        }
        // Counted as the server counts addresses: a v4 client on a dual-stack socket as its v4
        // address, an IPv6 client by its /64 (one line or VM owns all of it).
        let Some(slot) = IpSlot::take(&shared, natter_core::hub::address_key(peer.ip())) else {
            debug!(%peer, "refused: too many connections from this address");
            // Best effort without waiting: the 503 fits in the socket buffer of a new connection.
            let _ = tcp.try_write(&http::status_response(http::Status::Unavailable));
            continue;
        };
        let shared = Arc::clone(&shared);
        let stop = stop.clone();
        next_conn += 1;
        let span = info_span!("conn", id = next_conn);
        tasks.spawn(
            async move {
                serve_connection(tcp, peer, &shared, stop).await;
                drop(slot);
                drop(permit);
            }
            .instrument(span),
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

/// Reads the request head, then hands the connection to the page or the relay.
async fn serve_connection(
    mut tcp: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
) {
    let mut head = BytesMut::with_capacity(1024);
    let route = tokio::select! {
        r = timeout(shared.config.handshake_timeout, http::read_head(&mut tcp, &mut head)) => r,
        _ = stopped(&mut stop) => return,
    };
    let route = match route {
        Ok(Ok(route)) => route,
        Ok(Err(http::HeadError::Refuse(status))) => {
            debug!(%peer, ?status, "bad request");
            let _ = timeout(shared.config.write_timeout, http::respond(&mut tcp, status)).await;
            return;
        }
        Ok(Err(http::HeadError::Gone)) | Err(_) => return,
    };
    match route {
        http::Route::WebSocket => {
            let stream = http::Rewind::new(head.freeze(), tcp);
            relay::serve(stream, peer, shared, stop).await;
        }
        http::Route::Static { path, head_only } => {
            let served = timeout(
                STATIC_TIMEOUT,
                http::serve_static(&mut tcp, &shared.config.www_dir, &path, head_only),
            )
            .await;
            debug!(%peer, %path, ok = matches!(served, Ok(Ok(()))), "static file");
        }
        http::Route::Refuse(status) => {
            debug!(%peer, ?status, "refused request");
            let _ = timeout(shared.config.write_timeout, http::respond(&mut tcp, status)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(per_ip: usize) -> Arc<Shared> {
        Arc::new(Shared {
            config: BridgeConfig {
                max_connections_per_ip: per_ip,
                ..BridgeConfig::default()
            },
            per_ip: Mutex::new(HashMap::new()),
        })
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
