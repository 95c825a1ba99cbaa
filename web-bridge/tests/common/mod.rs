//! Test helpers: a fake natter-server (a TCP listener that hands over its connections), a
//! browser-like WebSocket client, a whole chat client driving core's `Session` ([`user`]), and
//! timeouts for every await.
#![allow(dead_code)] // each test file uses a different part

pub mod user;

use futures_util::{SinkExt, StreamExt};
use natter_bridge::{Bridge, BridgeConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound for any single step of a test.
pub const STEP: Duration = Duration::from_secs(5);

pub type Browser = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Awaits `f` for at most [`STEP`], panicking with `what` if it takes longer.
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(STEP, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// A fake natter-server: accepts connections on 127.0.0.1:0 and hands them to the test.
pub struct FakeServer {
    pub addr: SocketAddr,
    pub conns: mpsc::Receiver<TcpStream>,
    task: JoinHandle<()>,
}

impl FakeServer {
    pub async fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, conns) = mpsc::channel(256);
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                if tx.send(s).await.is_err() {
                    break;
                }
            }
        });
        FakeServer { addr, conns, task }
    }

    /// The next connection the bridge opened, with the preamble already read and checked.
    pub async fn accept_checked(&mut self) -> TcpStream {
        let mut s = within("bridge connects to the server", self.conns.recv())
            .await
            .expect("fake server running");
        let want =
            natter_core::wire::bridge_preamble("127.0.0.1", natter_core::hub::TEST_BRIDGE_SECRET);
        let mut got = vec![0u8; want.len()];
        within("preamble", s.read_exact(&mut got)).await.unwrap();
        assert_eq!(got, want, "preamble: MAGIC + Forwarded{{peer: 127.0.0.1}}");
        s
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A bridge on 127.0.0.1:0 in front of `server`, serving `www`.
pub async fn bridge_with(config: BridgeConfig) -> Bridge {
    natter_bridge::start(config).await.expect("bridge starts")
}

pub async fn bridge(server: SocketAddr) -> Bridge {
    bridge_with(BridgeConfig::local_test(
        server,
        PathBuf::from("/nonexistent"),
    ))
    .await
}

/// Opens `/ws` with the given Origin (`None`: no Origin header).
pub async fn connect_origin(bridge: SocketAddr, origin: Option<&str>) -> Result<Browser, WsError> {
    connect_as(bridge, None, origin).await
}

/// Opens `/ws` on `bridge` with the given Host header (default: the bridge's address, as the
/// URL says) and Origin, as a page loaded under another name would.
pub async fn connect_as(
    bridge: SocketAddr,
    host: Option<&str>,
    origin: Option<&str>,
) -> Result<Browser, WsError> {
    let mut req = format!("ws://{bridge}/ws").into_client_request().unwrap();
    for (name, value) in [("host", host), ("origin", origin)] {
        if let Some(v) = value {
            req.headers_mut()
                .insert(name, HeaderValue::from_str(v).unwrap());
        }
    }
    within("websocket handshake", tokio_tungstenite::connect_async(req))
        .await
        .map(|(ws, _)| ws)
}

/// Opens `/ws` as a page served by the bridge would (Origin = the bridge's own).
pub async fn connect(bridge: SocketAddr) -> Browser {
    connect_origin(bridge, Some(&format!("http://{bridge}")))
        .await
        .expect("websocket handshake succeeds")
}

/// The next data or close message (pings and pongs skipped).
pub async fn next_msg(ws: &mut Browser) -> Option<Message> {
    loop {
        match within("next websocket message", ws.next()).await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(m)) => return Some(m),
            Some(Err(_)) | None => return None,
        }
    }
}

/// Waits for the bridge's close frame and returns its code.
pub async fn close_code(ws: &mut Browser) -> CloseCode {
    match next_msg(ws).await {
        Some(Message::Close(Some(f))) => f.code,
        Some(Message::Close(None)) => panic!("close without a code"),
        Some(other) => panic!("expected a close, got {other:?}"),
        None => panic!("connection ended without a close frame"),
    }
}

pub async fn send_bin(ws: &mut Browser, payload: &[u8]) {
    within("send", ws.send(Message::Binary(payload.to_vec().into())))
        .await
        .expect("send");
}

/// Reads exactly `n` bytes from the fake server's side.
pub async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    within("server reads", s.read_exact(&mut buf))
        .await
        .unwrap();
    buf
}

/// True when the stream reaches EOF (or fails) within [`STEP`] without sending more data.
pub async fn sees_eof(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    matches!(
        within("server sees EOF", s.read(&mut b)).await,
        Ok(0) | Err(_)
    )
}

pub async fn write_all(s: &mut TcpStream, bytes: &[u8]) {
    within("server writes", s.write_all(bytes)).await.unwrap();
}

/// An address that refuses connections: a port bound and kept (not listening) by the returned
/// socket, so no other test's listener can take it while this one counts on it being dead (a
/// port found free and let go could be).
pub fn refusing_addr() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind a free port");
    let addr = socket.local_addr().expect("its address");
    (socket, addr)
}
