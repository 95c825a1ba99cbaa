//! One browser's WebSocket relayed onto its own TCP connection to natter-server.
//!
//! Once the handshake (`upgrade`) has opened the WebSocket, the bridge connects to the server
//! (over TLS with [`crate::BridgeConfig::server_tls`], whose certificate must verify: else the
//! browser gets 1013), writes [`wire::bridge_preamble`] with the browser's address, and moves whole frames both ways:
//! each binary WebSocket message from the browser is one bare payload and becomes one
//! length-prefixed frame ([`wire::frame_payload`]); what the server sends is passed on in batches,
//! each binary message the longest run of whole frames one read completed
//! ([`wire::whole_frames_len`]), prefixes included and byte for byte, so a hub cycle's many frames
//! cost one WebSocket message. What it reads or writes of the chat protocol itself (the server's
//! first message, after a `Forwarded`: an `Error { BridgeSecret }` there is the bridge's to log,
//! not the browser's; the server's probe of a page that was left, and the quit for one left for
//! good) is core's to say ([`natter_core::bridge`]): this file only carries it out.
//! Both directions forward directly (a write finishes before the next read), so neither side can
//! make the bridge buffer more than one frame and one read. Each batch adds its bytes and the time the bridge held it to the metrics
//! (atomics, no locks).

use crate::metrics::{Direction, Verdict};
use crate::upgrade::Rewind;
use crate::{Shared, Stream};
use bytes::{BufMut, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use natter_core::bridge;
use natter_core::limits::{LEFT_PAGE_GRACE, MAX_FRAME};
use natter_core::wire::{self, LEN_PREFIX};
use natter_tls::client::TlsStream;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::watch;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, info};

type Ws = WebSocketStream<Rewind<Stream>>;

/// The write side of the server connection.
type ServerTx = Box<dyn AsyncWrite + Unpin + Send>;

/// The read side of the server connection. Over plain TCP it waits for readiness with no
/// buffer held (an idle relay keeps none); over TLS, rustls holds its buffers anyway.
enum ServerRx {
    Plain(OwnedReadHalf),
    Tls(ReadHalf<TlsStream<TcpStream>>),
}

impl ServerRx {
    /// Waits for what the server sends and appends at most [`READ_CHUNK`] of it to `buf`;
    /// false at end of stream. Cancel-safe: nothing read is lost if the wait is dropped.
    async fn read_into(&mut self, buf: &mut BytesMut) -> std::io::Result<bool> {
        match self {
            ServerRx::Plain(tcp) => loop {
                tcp.readable().await?;
                match read_some(tcp, buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    r => return r,
                }
            },
            ServerRx::Tls(tls) => {
                buf.reserve(READ_CHUNK);
                let n = tls.read_buf(&mut (&mut *buf).limit(READ_CHUNK)).await?;
                Ok(n > 0)
            }
        }
    }
}

/// Bytes of browser messages gathered into one write to the server, at most.
const BROWSER_BATCH: usize = 16 * 1024;

/// Bytes read from the server at once (the buffer then holds at most one partial frame plus this).
const READ_CHUNK: usize = 64 * 1024;

/// The largest batch the bridge sends as one WebSocket message: a read's worth of frames plus
/// the rest of a frame the previous read left partial.
pub(crate) const MAX_BATCH: usize = READ_CHUNK + LEN_PREFIX + MAX_FRAME;

/// tungstenite's cap on its write buffer. It refuses (does not queue) a message whose frame would
/// take the buffer past this, so it must hold the largest batch and its header plus the small
/// control frames (pongs, a close) that can be queued ahead of it.
pub(crate) const WS_MAX_WRITE_BUFFER: usize = MAX_BATCH + 16 * 1024;

/// How long the bridge tries to get its close frame out.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// After closing, how long the bridge reads and discards what the browser still sends, so its
/// close frame is not lost to a TCP reset (unread data at close makes the kernel send RST).
const LINGER: Duration = Duration::from_secs(1);

/// How a relayed connection ended; decides the close frame the browser gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The browser sent a close frame (answered by tungstenite).
    BrowserClosed,
    /// The browser's page was left (closed, reloaded, or navigated away): its close frame's
    /// code is [`LEFT_THE_PAGE`]. The bridge quits for it unless a reload resumes its session
    /// first (see [`left_the_page`]).
    BrowserLeft,
    /// The browser's connection failed or ended without a close frame.
    BrowserGone,
    /// Nothing (not even a pong) from the browser for ping interval + ping timeout.
    BrowserIdle,
    /// The browser did not take our bytes within the write timeout.
    BrowserTooSlow,
    /// A WebSocket protocol violation by the browser.
    BrowserProtocol,
    /// A message over [`MAX_FRAME`].
    TooBig,
    /// A text message (natter's browser protocol is binary only).
    NotBinary,
    /// The server could not be reached.
    ServerUnavailable,
    /// The server's TLS certificate did not verify.
    ServerUntrusted,
    /// The server refused the bridge's secret (`ErrorKind::BridgeSecret`): the bridge was
    /// given another secret than the server's, or the server has none.
    SecretRefused,
    /// The server closed its side.
    ServerClosed,
    /// Reading from or writing to the server failed, or it sent an oversize frame.
    ServerFailed,
    /// The bridge is shutting down.
    Shutdown,
}

impl End {
    /// Every way a relay ends, in declaration order (so `end as usize` indexes it).
    pub(crate) const ALL: [End; 14] = [
        End::BrowserClosed,
        End::BrowserLeft,
        End::BrowserGone,
        End::BrowserIdle,
        End::BrowserTooSlow,
        End::BrowserProtocol,
        End::TooBig,
        End::NotBinary,
        End::ServerUnavailable,
        End::ServerUntrusted,
        End::SecretRefused,
        End::ServerClosed,
        End::ServerFailed,
        End::Shutdown,
    ];

    /// Its name in the metrics (`reason` label).
    pub(crate) fn label(self) -> &'static str {
        match self {
            End::BrowserClosed => "browser_closed",
            End::BrowserLeft => "browser_left",
            End::BrowserGone => "browser_gone",
            End::BrowserIdle => "browser_idle",
            End::BrowserTooSlow => "browser_too_slow",
            End::BrowserProtocol => "browser_protocol_error",
            End::TooBig => "too_big",
            End::NotBinary => "not_binary",
            End::ServerUnavailable => "server_unavailable",
            End::ServerUntrusted => "server_untrusted",
            End::SecretRefused => "secret_refused",
            End::ServerClosed => "server_closed",
            End::ServerFailed => "server_failed",
            End::Shutdown => "shutdown",
        }
    }

    /// The close frame to send, if the WebSocket is still worth talking to.
    fn close_frame(self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            End::BrowserClosed
            | End::BrowserLeft
            | End::BrowserGone
            | End::BrowserIdle
            | End::BrowserTooSlow => {
                return None;
            }
            End::BrowserProtocol => (CloseCode::Protocol, "websocket protocol error"),
            End::TooBig => (CloseCode::Size, "message over the natter frame limit"),
            End::NotBinary => (CloseCode::Unsupported, "binary messages only"),
            End::ServerUnavailable => (CloseCode::Again, "chat server unavailable"),
            End::ServerUntrusted => (CloseCode::Again, "chat server certificate not trusted"),
            End::SecretRefused => (CloseCode::Again, "chat server refused this bridge's secret"),
            End::ServerClosed => (CloseCode::Normal, "chat server closed the connection"),
            End::ServerFailed => (CloseCode::Error, "chat server connection failed"),
            End::Shutdown => (CloseCode::Away, "bridge shutting down"),
        };
        Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })
    }
}

/// Relays an opened WebSocket (the 101 is out; `stream` replays what was read past the request
/// head) until either side ends or the bridge shuts down, then closes it.
pub(crate) async fn run(
    stream: Rewind<Stream>,
    peer: SocketAddr,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) {
    let ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(crate::ws_config())).await;
    info!(%peer, "browser connected");
    let metrics = &shared.metrics;
    metrics.sessions.inc();
    let (end, ws) = relay(ws, peer, shared, &mut shutdown).await;
    metrics.sessions.dec();
    metrics.ended(end);
    info!(%peer, reason = ?end, "browser disconnected");
    // Boxed: its drain buffer and timers would otherwise be part of every relay's task, idle
    // or not (issue 22: bridge memory per idle browser).
    Box::pin(finish(ws, end.close_frame())).await;
}

/// Connects to the server and relays. Returns the WebSocket so the caller can close it.
async fn relay(
    ws: Ws,
    peer: SocketAddr,
    shared: &Shared,
    shutdown: &mut watch::Receiver<bool>,
) -> (End, Ws) {
    let config = &shared.config;
    let secret = shared.secret.get();
    let forwarded = secret.is_some();
    let (mut tcp_rx, mut tcp_tx) = tokio::select! {
        // Boxed, given back once connected: a TLS client handshake's state is large, and would
        // otherwise stay in every relay's task for as long as the WebSocket is open (issue 22).
        r = Box::pin(connect_any(peer, shared, secret)) => match r {
            Ok(halves) => {
                shared.server_health.record(Verdict::Reached);
                halves
            }
            Err(end) => {
                shared.server_health.record(if end == End::ServerUntrusted {
                    Verdict::Untrusted
                } else {
                    Verdict::Unavailable
                });
                return (end, ws);
            }
        },
        _ = shutdown.wait_for(|stop| *stop) => return (End::Shutdown, ws),
    };
    let (mut ws_tx, mut ws_rx) = ws.split();
    // When the browser was last heard from, in milliseconds since `since`: set by the browser's
    // direction, read at each sweep (see `Sweep`).
    let since = Instant::now();
    let heard = AtomicU64::new(0);
    let sweep = Sweep {
        since,
        heard: &heard,
        ping_every: millis(config.ping_interval),
        idle: millis(config.ping_interval + config.ping_timeout),
    };
    let end = tokio::select! {
        e = browser_to_server(&mut ws_rx, &mut tcp_tx, &sweep, &shared.metrics.to_server) => e,
        e = server_to_browser(
            &mut tcp_rx,
            &mut ws_tx,
            shutdown,
            &sweep,
            config.write_timeout,
            &shared.metrics.to_browser,
            forwarded,
        ) => e,
    };
    if end == End::SecretRefused {
        shared.server_health.record(Verdict::SecretRefused);
    }
    if end == End::BrowserLeft {
        // The browser's close answered first (tungstenite queued the answer): the page is done.
        let _ = timeout(CLOSE_WRITE_TIMEOUT, ws_tx.flush()).await;
        left_the_page(&mut tcp_rx, &mut tcp_tx, shutdown, LEAVE_GRACE).await;
    }
    // The server sees EOF and keeps the user's session for a resume (unless it quit above).
    let _ = timeout(CLOSE_WRITE_TIMEOUT, tcp_tx.shutdown()).await;
    // Cannot fail: both halves come from the `split` above.
    let ws = ws_rx
        .reunite(ws_tx)
        .expect("halves of the same WebSocket reunite");
    (end, ws)
}

/// A relay's pings and its check for a silent browser, without timers of its own: the bridge's
/// one sweep ([`crate::sweep_every`]) bumps the stop channel's version every so often, and each
/// relay then sends its ping if one is due and ends if the browser has been silent too long.
/// Two timers per relay (an `Interval` for pings, a `Timeout` around every read) and a third
/// wait for the stop cost every idle browser 100–200 bytes (issue 22, bench/README.md).
struct Sweep<'a> {
    since: Instant,
    /// When the browser was last heard from (any message, a pong too): ms since `since`.
    heard: &'a AtomicU64,
    ping_every: u64,
    idle: u64,
}

impl Sweep<'_> {
    fn now(&self) -> u64 {
        millis(self.since.elapsed())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn browser_to_server(
    ws: &mut SplitStream<Ws>,
    tcp: &mut ServerTx,
    sweep: &Sweep<'_>,
    metrics: &Direction,
) -> End {
    // Frames on their way to the server; emptied (and freed) after each write.
    let mut batch = BytesMut::new();
    loop {
        let mut item = ws.next().await;
        let held = Instant::now();
        sweep.heard.store(
            millis(held.saturating_duration_since(sweep.since)),
            Ordering::Relaxed,
        );
        // Every message the browser has already sent goes out in one write (a busy browser's
        // messages arrive several per read), up to a batch's worth.
        let end = loop {
            match forward_message(item, &mut batch) {
                Ok(()) => {}
                Err(end) => break Some(end),
            }
            if batch.len() >= BROWSER_BATCH {
                break None;
            }
            match ws.next().now_or_never() {
                Some(next) => item = next,
                None => break None,
            }
        };
        if !batch.is_empty() {
            // The flush sends a TLS record on its way (a no-op on TCP).
            if tcp.write_all(&batch).await.is_err() || tcp.flush().await.is_err() {
                return End::ServerFailed;
            }
            metrics.bytes.inc_by(batch.len() as u64);
            metrics.latency.observe(held.elapsed());
            batch = BytesMut::new();
        }
        if let Some(end) = end {
            return end;
        }
    }
}

/// How a write to the browser ended: out of time (`Err(())`) is a browser too slow; a write that
/// failed is a browser gone (its connection reset or closed under us), not a slow one: the
/// operator's `browser_too_slow` count and log line should mean readers that fall behind.
fn written(result: Result<Result<(), WsError>, ()>) -> Result<(), End> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::BrowserGone),
        Err(()) => Err(End::BrowserTooSlow),
    }
}

/// What one item from the browser's WebSocket means: a frame appended to `batch`, nothing
/// (control messages), or the end of the relay.
fn forward_message(
    item: Option<Result<Message, WsError>>,
    batch: &mut BytesMut,
) -> Result<(), End> {
    let msg = match item {
        None => return Err(End::BrowserGone),
        Some(Err(e)) => {
            return Err(match e {
                WsError::Capacity(_) => End::TooBig,
                WsError::Utf8(_) => End::NotBinary,
                // A browser whose tab or network went away: no close frame, no violation.
                WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::BrowserGone,
                WsError::Protocol(_) => End::BrowserProtocol,
                _ => End::BrowserGone,
            });
        }
        Some(Ok(m)) => m,
    };
    match msg {
        Message::Binary(payload) => wire::put_frame(batch, &payload).map_err(|_| End::TooBig),
        Message::Text(_) => Err(End::NotBinary),
        Message::Close(Some(frame)) if u16::from(frame.code) == LEFT_THE_PAGE => {
            Err(End::BrowserLeft)
        }
        Message::Close(_) => Err(End::BrowserClosed),
        // Pings are answered by tungstenite; any of these shows the browser is alive.
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(()),
    }
}

/// Also the relay's sweep and its stop: `shutdown`'s version is bumped at each sweep, and its
/// value turns true when the bridge stops (a dropped bridge closes it).
async fn server_to_browser(
    tcp: &mut ServerRx,
    ws: &mut SplitSink<Ws, Message>,
    shutdown: &mut watch::Receiver<bool>,
    sweep: &Sweep<'_>,
    write_timeout: Duration,
    metrics: &Direction,
    forwarded: bool,
) -> End {
    // What the server sent and the browser has not been given: at most one partial frame plus
    // one read. Empty (no allocation) whenever the last read ended on a frame boundary.
    let mut buf = BytesMut::new();
    let mut next_ping = sweep.ping_every;
    // The server's first frame is looked at when the bridge named the browser with its
    // secret: a refusal of the secret is the bridge's to say, not the browser's.
    let mut first = forwarded;
    loop {
        tokio::select! {
            r = tcp.read_into(&mut buf) => {
                match r {
                    Ok(true) => {}
                    Ok(false) => return End::ServerClosed,
                    Err(_) => return End::ServerFailed,
                }
                let held = Instant::now();
                let whole = match wire::whole_frames_len(&buf) {
                    Ok(n) => n,
                    Err(e) => {
                        debug!(error = %e, "server sent a bad frame");
                        return End::ServerFailed;
                    }
                };
                if whole > 0 && std::mem::take(&mut first) && secret_refused(&buf[..whole]) {
                    return End::SecretRefused;
                }
                if whole > 0 {
                    let batch = buf.split_to(whole).freeze();
                    // One deadline for the whole batch, and one message. A stop is seen after
                    // it: a browser that does not read holds its relay until the write timeout
                    // or the shutdown grace, whichever is first, as it would get no close frame
                    // anyway (watching the stop here too would make every relay's task larger).
                    let sent = timeout_at(held + write_timeout, ws.send(Message::Binary(batch)));
                    if let Err(end) = written(sent.await.map_err(|_| ())) {
                        return end;
                    }
                    metrics.bytes.inc_by(whole as u64);
                    metrics.latency.observe(held.elapsed());
                }
                if buf.is_empty() {
                    // An idle connection keeps no read buffer.
                    buf = BytesMut::new();
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow_and_update() {
                    return End::Shutdown;
                }
                let now = sweep.now();
                if now.saturating_sub(sweep.heard.load(Ordering::Relaxed)) >= sweep.idle {
                    return End::BrowserIdle;
                }
                if now >= next_ping {
                    next_ping = now.saturating_add(sweep.ping_every);
                    let ping = ws.send(Message::Ping(Default::default()));
                    if let Err(end) = written(timeout(write_timeout, ping).await.map_err(|_| ())) {
                        return end;
                    }
                }
            }
        }
    }
}

/// The close code of a page's WebSocket closed because the page was left (core's
/// [`bridge::LEFT_THE_PAGE`]: www/static/app.js closes with it).
pub(crate) const LEFT_THE_PAGE: u16 = bridge::LEFT_THE_PAGE;

/// How long the bridge holds the server connection of a page that was left before it quits
/// for it (core's [`LEFT_PAGE_GRACE`], which says why).
pub(crate) const LEAVE_GRACE: Duration = Duration::from_millis(LEFT_PAGE_GRACE.0);

/// The page on the other end of this relay was left (the browser closed with
/// [`LEFT_THE_PAGE`]): a reload, or the tab closed for good. For `grace` the connection is held
/// with what the server sends read and dropped. A reload resumes the session on its new
/// connection within it: the server probes this one first ([`bridge::resumed_elsewhere`]), and
/// the bridge closes it unanswered, so the newcomer takes the session over at once. Otherwise
/// (no probe within the grace), the bridge sends [`bridge::quit_for_left_page`]: the page's
/// nick is free and its rooms see it go.
/// The server closing first, or the bridge stopping, ends the wait with no quit (the server
/// then keeps the session for its resume window, as after a dropped connection).
async fn left_the_page(
    tcp: &mut ServerRx,
    tx: &mut ServerTx,
    shutdown: &mut watch::Receiver<bool>,
    grace: Duration,
) {
    // At most one partial frame plus one read: whole frames are looked at and dropped.
    let mut buf = BytesMut::new();
    let until = Instant::now() + grace;
    loop {
        tokio::select! {
            r = tcp.read_into(&mut buf) => {
                if !matches!(r, Ok(true)) {
                    return;
                }
                let Ok(whole) = wire::whole_frames_len(&buf) else {
                    return;
                };
                let frames = buf.split_to(whole);
                if bridge::resumed_elsewhere(&frames) {
                    debug!("left page's session resumed elsewhere: letting it go");
                    return;
                }
            }
            () = tokio::time::sleep_until(until) => break,
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
    let quit = bridge::quit_for_left_page();
    if tx.write_all(&quit).await.is_err() || tx.flush().await.is_err() {
        return;
    }
    debug!("quit for a page that was left");
    // Its `Bye`, then the close: what comes meanwhile is dropped.
    let _ = timeout(CLOSE_WRITE_TIMEOUT, async {
        while let Ok(true) = tcp.read_into(&mut buf).await {
            buf.clear();
        }
    })
    .await;
}

/// Whether the first of `frames` (whole frames from the server, the first it sent) is its
/// refusal of the bridge's secret ([`bridge::secret_refusal`]), which is then logged with the
/// server's words.
fn secret_refused(frames: &[u8]) -> bool {
    let Some(detail) = bridge::secret_refusal(frames) else {
        return false;
    };
    tracing::warn!(
        server_said = %detail,
        "the chat server refused this bridge's secret: give natter-bridge the server's \
         (NATTER_BRIDGE_SECRET or --server-secret-file); until then no browser can chat"
    );
    true
}

/// Connects to the first of the server's addresses that accepts, starting at the one that
/// last did ([`crate::BridgeConfig::servers`]): each attempt within the connect timeout, the
/// preamble written. Which one worked is where the next WebSocket starts.
async fn connect_any(
    peer: SocketAddr,
    shared: &Shared,
    secret: Option<Arc<str>>,
) -> Result<(ServerRx, ServerTx), End> {
    let servers = shared.config.servers();
    let start = shared.server_at.load(Ordering::Relaxed);
    let mut end = End::ServerUnavailable;
    for i in 0..servers.len() {
        let at = (start + i) % servers.len();
        let server = servers[at];
        let attempt = timeout(
            shared.config.connect_timeout,
            connect_one(server, peer, shared, secret.as_deref()),
        )
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))
        .and_then(|r| r);
        match attempt {
            Ok(halves) => {
                if at != start {
                    info!(%server, "relaying to the next server address");
                    shared.server_at.store(at, Ordering::Relaxed);
                }
                return Ok(halves);
            }
            Err(e) if natter_tls::is_certificate_error(&e) => {
                let error = natter_tls::handshake_words(&e);
                tracing::warn!(%peer, %server, %error, "chat server's TLS certificate not trusted");
                end = End::ServerUntrusted;
            }
            Err(e) => info!(%peer, %server, error = %e, "chat server unavailable"),
        }
    }
    Err(end)
}

/// One connection to `server`, over TLS if so, with the preamble written.
async fn connect_one(
    server: SocketAddr,
    peer: SocketAddr,
    shared: &Shared,
    secret: Option<&str>,
) -> std::io::Result<(ServerRx, ServerTx)> {
    let tcp = TcpStream::connect(server).await?;
    tcp.set_nodelay(true)?;
    let (rx, mut tx): (ServerRx, ServerTx) = match &shared.server_tls {
        None => {
            let (rx, tx) = tcp.into_split();
            (ServerRx::Plain(rx), Box::new(tx))
        }
        Some(tls) => {
            let s = tls.connector.connect(tls.name.clone(), tcp).await?;
            let (rx, tx) = tokio::io::split(s);
            (ServerRx::Tls(rx), Box::new(tx))
        }
    };
    match secret {
        Some(secret) => {
            let peer = peer.ip().to_canonical().to_string();
            tx.write_all(&wire::bridge_preamble(&peer, secret)).await?;
        }
        None => tx.write_all(&wire::MAGIC).await?,
    }
    tx.flush().await?;
    Ok((rx, tx))
}

/// Reads at most [`READ_CHUNK`] of what the server sent onto the end of `buf` (not zeroed
/// first), once `readable` has fired; false at end of stream.
///
/// The read goes through `AsyncRead::poll_read`, not `try_read_buf`: tokio forgets the socket's
/// readiness after a short read there, so the next `readable` waits for new data instead of
/// costing an extra read that finds nothing (the usual case: a read seldom fills the chunk).
fn read_some(tcp: &mut OwnedReadHalf, buf: &mut BytesMut) -> std::io::Result<bool> {
    buf.reserve(READ_CHUNK);
    let read = tcp
        .read_buf(&mut (&mut *buf).limit(READ_CHUNK))
        .now_or_never();
    if buf.is_empty() {
        // Nothing came (a spurious wake-up): do not keep the space reserved for it.
        *buf = BytesMut::new();
    }
    match read {
        Some(read) => Ok(read? > 0),
        None => Err(std::io::ErrorKind::WouldBlock.into()),
    }
}

/// Sends the close frame (or flushes tungstenite's answer to the browser's), then half-closes
/// and discards what the browser still sends for a moment, so the close arrives intact.
async fn finish(mut ws: Ws, close: Option<CloseFrame>) {
    let _ = timeout(CLOSE_WRITE_TIMEOUT, async {
        match close {
            Some(frame) => ws.close(Some(frame)).await,
            None => ws.flush().await,
        }
    })
    .await;
    let raw = ws.get_mut();
    let _ = timeout(LINGER, async {
        let _ = raw.shutdown().await;
        let mut sink = [0u8; 4096];
        while let Ok(n) = raw.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// The largest WebSocket message or frame tungstenite accepts: the natter frame limit plus a
/// little slack, so a message just over [`MAX_FRAME`] is read whole and refused with 1009 by the
/// relay, while anything far bigger is refused by tungstenite from its header alone.
pub(crate) const WS_MAX_MESSAGE: usize = MAX_FRAME + 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::types::Text;
    use natter_core::wire::{ClientMsg, ServerMsg};

    #[test]
    fn every_bridge_initiated_close_has_a_code_and_a_short_reason() {
        for end in [
            End::BrowserProtocol,
            End::TooBig,
            End::NotBinary,
            End::ServerUnavailable,
            End::SecretRefused,
            End::ServerClosed,
            End::ServerFailed,
            End::Shutdown,
        ] {
            let frame = end.close_frame().expect("a close frame");
            assert!(frame.reason.len() <= 123, "{end:?}");
        }
        assert_eq!(End::TooBig.close_frame().unwrap().code, CloseCode::Size);
        assert_eq!(
            End::NotBinary.close_frame().unwrap().code,
            CloseCode::Unsupported
        );
        assert_eq!(End::BrowserClosed.close_frame(), None);
    }

    #[test]
    fn a_page_that_was_left_is_told_from_a_plain_close() {
        let mut batch = BytesMut::new();
        let close = |code: u16| {
            Some(Ok(Message::Close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: Utf8Bytes::from_static("bye"),
            }))))
        };
        assert_eq!(
            forward_message(close(LEFT_THE_PAGE), &mut batch),
            Err(End::BrowserLeft)
        );
        assert_eq!(
            forward_message(close(1000), &mut batch),
            Err(End::BrowserClosed)
        );
        assert_eq!(
            forward_message(Some(Ok(Message::Close(None))), &mut batch),
            Err(End::BrowserClosed)
        );
        assert_eq!(End::BrowserLeft.close_frame(), None);
    }

    /// A relay's server side over a real socket: what the bridge holds, and the server's end.
    async fn held_connection() -> (ServerRx, ServerTx, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bridge = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (rx, tx) = bridge.into_split();
        (ServerRx::Plain(rx), Box::new(tx), server)
    }

    /// Everything the bridge wrote until it closed, within a few seconds.
    async fn written_until_closed(server: &mut TcpStream) -> Vec<u8> {
        let mut got = Vec::new();
        timeout(Duration::from_secs(5), server.read_to_end(&mut got))
            .await
            .expect("the bridge closes in time")
            .expect("read what the bridge wrote");
        got
    }

    #[tokio::test]
    async fn a_page_left_for_good_is_quit_for_after_the_grace() {
        let (mut rx, mut tx, mut server) = held_connection().await;
        let (_stop, mut shutdown) = watch::channel(false);
        let started = Instant::now();
        let grace = Duration::from_millis(300);
        let hold = async {
            left_the_page(&mut rx, &mut tx, &mut shutdown, grace).await;
            tx.shutdown().await.ok();
        };
        // The server answers the quit with its close; a room event meanwhile is dropped.
        let serve = async {
            let event = wire::encode_frame(&ServerMsg::Pong { token: 1 }).unwrap();
            server.write_all(&event).await.unwrap();
            // A keepalive ping in the grace is not the probe of a resume: the quit still goes
            // (any ping let the connection go without a quit before the thirty-first session).
            let keepalive = wire::encode_frame(&ServerMsg::Ping { token: 2 }).unwrap();
            server.write_all(&keepalive).await.unwrap();
            let mut prefix = [0u8; LEN_PREFIX];
            server.read_exact(&mut prefix).await.unwrap();
            let n = u32::from_be_bytes(prefix) as usize;
            let mut payload = vec![0u8; n];
            server.read_exact(&mut payload).await.unwrap();
            server.shutdown().await.unwrap();
            wire::decode_payload::<ClientMsg>(&payload).unwrap()
        };
        let ((), quit) = tokio::join!(hold, serve);
        assert!(started.elapsed() >= grace, "not before the grace");
        assert_eq!(
            quit,
            ClientMsg::Quit {
                reason: Text::new("left the page").ok()
            }
        );
        assert!(written_until_closed(&mut server).await.is_empty());
    }

    #[tokio::test]
    async fn a_reloaded_page_lets_its_held_connection_go_at_the_servers_probe() {
        let (mut rx, mut tx, mut server) = held_connection().await;
        let (_stop, mut shutdown) = watch::channel(false);
        let started = Instant::now();
        // A keepalive first: not the probe, the connection is still held.
        let keepalive = wire::encode_frame(&ServerMsg::Ping { token: 8 }).unwrap();
        server.write_all(&keepalive).await.unwrap();
        let token = wire::PROBE_TOKEN | 9;
        let probe = wire::encode_frame(&ServerMsg::Ping { token }).unwrap();
        server.write_all(&probe).await.unwrap();
        left_the_page(&mut rx, &mut tx, &mut shutdown, Duration::from_secs(30)).await;
        tx.shutdown().await.ok();
        assert!(started.elapsed() < Duration::from_secs(5), "at the probe");
        assert!(
            written_until_closed(&mut server).await.is_empty(),
            "no quit: the reload took the session over"
        );
    }

    #[test]
    fn a_browser_that_went_away_is_gone_not_slow_nor_a_protocol_error() {
        // Found by the hostile-input pass: a browser closing its socket without a close frame
        // was counted and logged as `browser_protocol_error`, and a write failing on a reset
        // socket as `browser_too_slow`, so an operator could not tell attacks from closed tabs.
        let eof = forward_message(
            Some(Err(WsError::Protocol(
                ProtocolError::ResetWithoutClosingHandshake,
            ))),
            &mut BytesMut::new(),
        );
        assert_eq!(eof, Err(End::BrowserGone));
        let bad = forward_message(
            Some(Err(WsError::Protocol(ProtocolError::NonZeroReservedBits))),
            &mut BytesMut::new(),
        );
        assert_eq!(bad, Err(End::BrowserProtocol));
        assert_eq!(
            written(Ok(Err(WsError::ConnectionClosed))),
            Err(End::BrowserGone)
        );
        assert_eq!(
            written(Ok(Err(WsError::Io(
                std::io::ErrorKind::ConnectionReset.into()
            )))),
            Err(End::BrowserGone)
        );
        assert_eq!(written(Err(())), Err(End::BrowserTooSlow));
        assert_eq!(written(Ok(Ok(()))), Ok(()));
    }

    #[test]
    fn all_lists_every_end_at_its_own_index() {
        for (i, end) in End::ALL.iter().enumerate() {
            assert_eq!(*end as usize, i, "{end:?}");
        }
    }
}
