//! One browser's WebSocket relayed onto its own TCP connection to natter-server.
//!
//! The handshake checks the Origin; then the bridge connects to the server, writes
//! [`wire::bridge_preamble`] with the browser's address, and moves whole frames both ways: each
//! binary WebSocket message from the browser is one bare payload and becomes one length-prefixed
//! frame ([`wire::frame_payload`]); what the server sends is passed on in batches, each binary
//! message the longest run of whole frames one read completed ([`wire::whole_frames_len`]),
//! prefixes included and byte for byte, so a hub cycle's many frames cost one WebSocket message.
//! It never decodes chat messages. Both directions forward directly (a write finishes before the
//! next read), so neither side can make the bridge buffer more than one frame and one read.

use crate::Shared;
use crate::http::Rewind;
use bytes::{BufMut, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use natter_core::limits::MAX_FRAME;
use natter_core::wire::{self, LEN_PREFIX};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::time::{Instant, interval_at, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, info, warn};

type Ws = WebSocketStream<Rewind<TcpStream>>;

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
enum End {
    /// The browser sent a close frame (answered by tungstenite).
    BrowserClosed,
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
    /// The server closed its side.
    ServerClosed,
    /// Reading from or writing to the server failed, or it sent an oversize frame.
    ServerFailed,
    /// The bridge is shutting down.
    Shutdown,
}

impl End {
    /// The close frame to send, if the WebSocket is still worth talking to.
    fn close_frame(self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            End::BrowserClosed | End::BrowserGone | End::BrowserIdle | End::BrowserTooSlow => {
                return None;
            }
            End::BrowserProtocol => (CloseCode::Protocol, "websocket protocol error"),
            End::TooBig => (CloseCode::Size, "message over the natter frame limit"),
            End::NotBinary => (CloseCode::Unsupported, "binary messages only"),
            End::ServerUnavailable => (CloseCode::Again, "chat server unavailable"),
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

/// Which WebSocket requests the handshake accepts, from the bridge's configuration.
pub(crate) struct OriginPolicy<'a> {
    /// Origins accepted whatever the Host ([`crate::BridgeConfig::allowed_origins`]).
    pub(crate) extra_origins: &'a [String],
    /// Host names the bridge's own origin may use besides IP literals and `localhost`
    /// ([`crate::BridgeConfig::allowed_hosts`]).
    pub(crate) hosts: &'a [String],
    /// Accept a request without an Origin header.
    pub(crate) allow_missing: bool,
}

/// Why a WebSocket request was refused (HTTP 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The Origin is neither the bridge's own (`http://` + Host) nor an allowed one; or there is
    /// none and one is required.
    Origin,
    /// The Origin is `http://` + Host, but the Host is a name the bridge was not told it serves.
    /// A page whose DNS name was rebound to the bridge's address looks exactly like this.
    Host,
}

impl Refusal {
    /// The body of the 403 response.
    fn body(self) -> &'static str {
        match self {
            Refusal::Origin => "origin not allowed\n",
            Refusal::Host => "host not allowed: start natter-bridge with --allow-host NAME\n",
        }
    }
}

impl OriginPolicy<'_> {
    /// Checks a request's Origin and Host headers.
    ///
    /// A browser sets Origin and the page cannot change it, so an allowed extra origin is
    /// trusted as it is. The bridge's own origin is `http://` + Host, which a hostile page can
    /// match too by rebinding its own DNS name to the bridge's address; so it counts only when the
    /// Host is one the bridge knows it serves: an IP literal, `localhost`, or an allowed host.
    /// A missing Origin (not a browser) is decided by `allow_missing`: non-browser programs
    /// could forge any value, so refusing a missing one adds no protection against cross-site use.
    pub(crate) fn check(&self, origin: Option<&str>, host: Option<&str>) -> Result<(), Refusal> {
        let Some(origin) = origin else {
            return if self.allow_missing {
                Ok(())
            } else {
                Err(Refusal::Origin)
            };
        };
        if self
            .extra_origins
            .iter()
            .any(|e| e.eq_ignore_ascii_case(origin))
        {
            return Ok(());
        }
        let Some(host) = host.filter(|h| is_own_origin(origin, h)) else {
            return Err(Refusal::Origin);
        };
        if host_is_known(host, self.hosts) {
            Ok(())
        } else {
            Err(Refusal::Host)
        }
    }
}

/// Is `origin` exactly `http://` + `host` (ASCII case aside)?
fn is_own_origin(origin: &str, host: &str) -> bool {
    const SCHEME: &str = "http://";
    origin.len() == SCHEME.len() + host.len()
        && origin.is_char_boundary(SCHEME.len())
        && origin[..SCHEME.len()].eq_ignore_ascii_case(SCHEME)
        && origin[SCHEME.len()..].eq_ignore_ascii_case(host)
}

/// Is a Host header's name (its port aside) one no one else can point at the bridge: an IPv4 or
/// bracketed IPv6 literal, `localhost`, or one of `allowed`?
fn host_is_known(host: &str, allowed: &[String]) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// Runs the WebSocket handshake and then relays until either side ends or the bridge shuts down.
pub(crate) async fn serve(
    stream: Rewind<TcpStream>,
    peer: SocketAddr,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = &shared.config;
    let policy = OriginPolicy {
        extra_origins: &config.allowed_origins,
        hosts: &config.allowed_hosts,
        allow_missing: config.allow_missing_origin,
    };
    // The signature is tungstenite's (`Callback`); its error type is not ours to shrink.
    #[allow(clippy::result_large_err)]
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let (origin, host) = (header("origin"), header("host"));
        match policy.check(origin, host) {
            Ok(()) => Ok(resp),
            Err(refusal) => {
                let origin = origin.unwrap_or("(none)");
                let host = host.unwrap_or("(none)");
                match refusal {
                    Refusal::Origin => {
                        info!(%peer, origin, "websocket refused: origin not allowed");
                    }
                    Refusal::Host => warn!(
                        %peer, origin, host,
                        "websocket refused: host not allowed (a DNS-rebinding guard); \
                         if the bridge is served under this name, start it with --allow-host"
                    ),
                }
                let mut response = ErrorResponse::new(Some(refusal.body().to_owned()));
                *response.status_mut() = StatusCode::FORBIDDEN;
                response
                    .headers_mut()
                    .insert("connection", HeaderValue::from_static("close"));
                Err(response)
            }
        }
    };
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(crate::ws_config()));
    let ws = tokio::select! {
        r = timeout(config.handshake_timeout, handshake) => match r {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "websocket handshake failed");
                return;
            }
            Err(_) => {
                debug!(%peer, "websocket handshake timed out");
                return;
            }
        },
        _ = shutdown.wait_for(|stop| *stop) => return,
    };
    info!(%peer, "browser connected");

    let (end, ws) = relay(ws, peer, shared, &mut shutdown).await;
    info!(%peer, reason = ?end, "browser disconnected");
    finish(ws, end.close_frame()).await;
}

/// Connects to the server and relays. Returns the WebSocket so the caller can close it.
async fn relay(
    ws: Ws,
    peer: SocketAddr,
    shared: &Shared,
    shutdown: &mut watch::Receiver<bool>,
) -> (End, Ws) {
    let config = &shared.config;
    let connect = async {
        let mut tcp = timeout(config.connect_timeout, TcpStream::connect(config.server))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        tcp.set_nodelay(true)?;
        tcp.write_all(&wire::bridge_preamble(
            &peer.ip().to_canonical().to_string(),
        ))
        .await?;
        Ok::<_, std::io::Error>(tcp)
    };
    let tcp = tokio::select! {
        r = connect => match r {
            Ok(tcp) => tcp,
            Err(e) => {
                info!(%peer, server = %config.server, error = %e, "chat server unavailable");
                return (End::ServerUnavailable, ws);
            }
        },
        _ = shutdown.wait_for(|stop| *stop) => return (End::Shutdown, ws),
    };
    let (mut tcp_rx, mut tcp_tx) = tcp.into_split();
    let (mut ws_tx, mut ws_rx) = ws.split();
    let idle = config.ping_interval + config.ping_timeout;
    let end = tokio::select! {
        e = browser_to_server(&mut ws_rx, &mut tcp_tx, idle) => e,
        e = server_to_browser(&mut tcp_rx, &mut ws_tx, config.ping_interval, config.write_timeout) => e,
        _ = shutdown.wait_for(|stop| *stop) => End::Shutdown,
    };
    // The server sees EOF and keeps the user's session for a resume.
    let _ = timeout(CLOSE_WRITE_TIMEOUT, tcp_tx.shutdown()).await;
    // Cannot fail: both halves come from the `split` above.
    let ws = ws_rx
        .reunite(ws_tx)
        .expect("halves of the same WebSocket reunite");
    (end, ws)
}

async fn browser_to_server(
    ws: &mut SplitStream<Ws>,
    tcp: &mut OwnedWriteHalf,
    idle: Duration,
) -> End {
    // Frames on their way to the server; emptied (and freed) after each write.
    let mut batch = BytesMut::new();
    loop {
        let mut item = match timeout(idle, ws.next()).await {
            Err(_) => return End::BrowserIdle,
            Ok(item) => item,
        };
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
            if tcp.write_all(&batch).await.is_err() {
                return End::ServerFailed;
            }
            batch = BytesMut::new();
        }
        if let Some(end) = end {
            return end;
        }
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
                WsError::Protocol(_) => End::BrowserProtocol,
                _ => End::BrowserGone,
            });
        }
        Some(Ok(m)) => m,
    };
    match msg {
        Message::Binary(payload) => wire::put_frame(batch, &payload).map_err(|_| End::TooBig),
        Message::Text(_) => Err(End::NotBinary),
        Message::Close(_) => Err(End::BrowserClosed),
        // Pings are answered by tungstenite; any of these shows the browser is alive.
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(()),
    }
}

async fn server_to_browser(
    tcp: &mut OwnedReadHalf,
    ws: &mut SplitSink<Ws, Message>,
    ping_interval: Duration,
    write_timeout: Duration,
) -> End {
    // What the server sent and the browser has not been given: at most one partial frame plus
    // one read. Empty (no allocation) whenever the last read ended on a frame boundary.
    let mut buf = BytesMut::new();
    let mut ping = interval_at(Instant::now() + ping_interval, ping_interval);
    loop {
        tokio::select! {
            r = tcp.readable() => {
                if r.is_err() {
                    return End::ServerFailed;
                }
                match read_some(tcp, &mut buf) {
                    Ok(true) => {}
                    Ok(false) => return End::ServerClosed,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => return End::ServerFailed,
                }
                let whole = match wire::whole_frames_len(&buf) {
                    Ok(n) => n,
                    Err(e) => {
                        debug!(error = %e, "server sent a bad frame");
                        return End::ServerFailed;
                    }
                };
                if whole > 0 {
                    let batch = buf.split_to(whole).freeze();
                    // One deadline for the whole batch, and one message.
                    match timeout(write_timeout, ws.send(Message::Binary(batch))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) | Err(_) => return End::BrowserTooSlow,
                    }
                }
                if buf.is_empty() {
                    // An idle connection keeps no read buffer.
                    buf = BytesMut::new();
                }
            }
            _ = ping.tick() => {
                if !matches!(timeout(write_timeout, ws.send(Message::Ping(Default::default()))).await, Ok(Ok(()))) {
                    return End::BrowserTooSlow;
                }
            }
        }
    }
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

    fn policy<'a>(
        extras: &'a [String],
        hosts: &'a [String],
        allow_missing: bool,
    ) -> OriginPolicy<'a> {
        OriginPolicy {
            extra_origins: extras,
            hosts,
            allow_missing,
        }
    }

    #[test]
    fn origin_rules() {
        let p = policy(&[], &[], false);
        let host = Some("127.0.0.1:8080");
        assert_eq!(p.check(Some("http://127.0.0.1:8080"), host), Ok(()));
        assert_eq!(p.check(Some("HTTP://127.0.0.1:8080"), host), Ok(()));
        for bad in [
            "http://evil.example",
            "https://127.0.0.1:8080",
            "http://127.0.0.1:8081",
            "null",
        ] {
            assert_eq!(p.check(Some(bad), host), Err(Refusal::Origin), "{bad}");
        }
        assert_eq!(
            p.check(Some("http://127.0.0.1:8080"), None),
            Err(Refusal::Origin)
        );
        let extras = vec!["https://chat.example".to_owned()];
        let p = policy(&extras, &[], false);
        assert_eq!(p.check(Some("https://chat.example"), host), Ok(()));
        // An allowed extra origin does not depend on the Host.
        assert_eq!(
            p.check(Some("https://chat.example"), Some("evil.example")),
            Ok(())
        );
        assert_eq!(p.check(None, host), Err(Refusal::Origin));
        assert_eq!(policy(&[], &[], true).check(None, host), Ok(()));
    }

    #[test]
    fn own_origin_counts_only_under_a_known_host() {
        let hosts = vec!["chat.example.org".to_owned()];
        let p = policy(&[], &hosts, true);
        let own = |h: &str| p.check(Some(&format!("http://{h}")), Some(h));
        for known in [
            "127.0.0.1:8080",
            "10.0.0.5",
            "[::1]:8080",
            "[2001:db8::1]",
            "localhost:8080",
            "LocalHost",
            "chat.example.org:8080",
            "CHAT.example.org",
        ] {
            assert_eq!(own(known), Ok(()), "{known}");
        }
        // A name whose DNS its owner controls: the shape of a DNS-rebinding attack.
        for rebound in [
            "evil.example:8080",
            "evil.example",
            "chat.example.org.evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io:8080",
            "[::1",
            "[not-an-address]:8080",
            "127.0.0.1:",
        ] {
            assert_eq!(own(rebound), Err(Refusal::Host), "{rebound}");
        }
    }

    #[test]
    fn every_bridge_initiated_close_has_a_code_and_a_short_reason() {
        for end in [
            End::BrowserProtocol,
            End::TooBig,
            End::NotBinary,
            End::ServerUnavailable,
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
}
