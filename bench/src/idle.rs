//! The idle workload: N connections joined in rooms of `room_size`, then left idle, to measure
//! what the server holds per connection and how long connecting them all takes.
//!
//! Each connection says hello and joins (natter) or waits for its greeting (baseline), then a
//! small task reads and drops whatever the server still sends (other members' joins), so no
//! bytes pile up in the server on our account.

use crate::Target;
use crate::wire::{Codec, Received};
use futures_util::{SinkExt, StreamExt};
use natter_core::RoomName;
use natter_core::wire::FrameDecoder;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Connects in flight at once (the listen backlog is finite; a dropped SYN costs a second).
const IN_FLIGHT: usize = 128;

/// Connections per loopback source address: past this many the workload connects from
/// 127.0.0.2, 127.0.0.3, ... as well (loopback answers all of 127/8).
///
/// Below half the kernel's ephemeral ports (32768–60999 by default, 28,232): `connect` takes
/// ports of one parity first, and once those are all in use towards the server's port it
/// scans all of them on every connect before it tries the other half. That made each connect
/// cost 1–3.5 ms instead of 25 µs past ~14,100 connections from one address (worst 98 ms),
/// and with [`IN_FLIGHT`] connects on the generator's one core, a connection's hello then
/// went out after the server's 400 ms detection wait: the server greeted it as a text user
/// (issue 22; bench/README.md, "The text greetings at ~14,100 connections").
const PER_SOURCE: u32 = 12_000;

/// Per connection: connect, hello and join.
const PER_CONN_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the idle workload failed.
#[derive(Debug, Error)]
pub enum IdleError {
    /// A connection could not be set up.
    #[error("connection {index}: {detail}")]
    Conn {
        /// Which one.
        index: u32,
        /// Why.
        detail: String,
    },
    /// Building messages failed (a bench bug).
    #[error(transparent)]
    Wire(#[from] crate::wire::BenchWireError),
}

/// Open, joined connections; dropping them (and their drain tasks' `JoinSet`) closes them.
pub struct Idle {
    /// The drain tasks, one per connection.
    pub tasks: JoinSet<()>,
    /// How long connecting and joining all took.
    pub connect_time: Duration,
}

/// Opens `n` connections to `addr` in rooms of `room_size` members.
pub async fn open(
    target: Target,
    addr: SocketAddr,
    n: u32,
    room_size: u32,
) -> Result<Idle, IdleError> {
    let codec = Codec::new(target, "#idle", false)?;
    let limit = Arc::new(Semaphore::new(IN_FLIGHT));
    let started = Instant::now();
    let mut setting_up = JoinSet::new();
    for index in 0..n {
        let room = RoomName::new(&format!("#idle{}", index / room_size.max(1))).map_err(|e| {
            IdleError::Conn {
                index,
                detail: e.to_string(),
            }
        })?;
        let hello = codec.handshake(index, &room)?;
        let codec = codec.clone();
        let limit = limit.clone();
        setting_up.spawn(async move {
            // The semaphore is never closed.
            let _permit = limit.acquire_owned().await.ok();
            let r = timeout(
                PER_CONN_TIMEOUT,
                join(&codec, source(addr, index), addr, &hello, &room),
            )
            .await;
            match r {
                Ok(Ok(s)) => Ok(s),
                Ok(Err(detail)) => Err(IdleError::Conn { index, detail }),
                Err(_) => Err(IdleError::Conn {
                    index,
                    detail: "timed out".into(),
                }),
            }
        });
    }
    let mut streams = Vec::with_capacity(n as usize);
    while let Some(r) = setting_up.join_next().await {
        match r {
            Ok(Ok(s)) => streams.push(s),
            Ok(Err(e)) => return Err(e),
            Err(e) => {
                return Err(IdleError::Conn {
                    index: u32::MAX,
                    detail: e.to_string(),
                });
            }
        }
    }
    let connect_time = started.elapsed();
    let mut tasks = JoinSet::new();
    for s in streams {
        tasks.spawn(async move {
            match s {
                Held::Tcp(mut s) => {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                }
                // Reading also answers the bridge's pings.
                Held::Ws(mut ws) => while let Some(Ok(_)) = ws.next().await {},
            }
        });
    }
    Ok(Idle {
        tasks,
        connect_time,
    })
}

/// The local address connection `index` to `server` comes from: any (the kernel's choice) for
/// the first [`PER_SOURCE`], then 127.0.0.2 and up when the server is on loopback.
fn source(server: SocketAddr, index: u32) -> Option<SocketAddr> {
    let k = index / PER_SOURCE;
    match server.ip() {
        std::net::IpAddr::V4(ip) if ip.is_loopback() && k > 0 => {
            let last = u8::try_from(1 + k).ok()?;
            Some(SocketAddr::from(([127, 0, 0, last], 0)))
        }
        _ => None,
    }
}

/// A connection held open: to the server, or a WebSocket to the bridge.
enum Held {
    Tcp(TcpStream),
    Ws(Box<WebSocketStream<TcpStream>>),
}

/// Connects (from `from`, if given) and waits until the connection is in `room`.
async fn join(
    codec: &Codec,
    from: Option<SocketAddr>,
    addr: SocketAddr,
    hello: &[bytes::Bytes],
    room: &RoomName,
) -> Result<Held, String> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match join_once(codec, from, addr, hello, room).await {
            Err(e) if e == TEXT_GREETED && attempt < 5 => continue,
            r => return r,
        }
    }
}

/// What `join_tcp` says when natter-server greeted the connection as a text user: a busy
/// server may not read a new connection's first bytes within its wait (issue 22's connection
/// storms); the connection is made again.
const TEXT_GREETED: &str = "greeted as a text user";

/// One attempt of [`join`].
async fn join_once(
    codec: &Codec,
    from: Option<SocketAddr>,
    addr: SocketAddr,
    hello: &[bytes::Bytes],
    room: &RoomName,
) -> Result<Held, String> {
    let s = match from {
        None => TcpStream::connect(addr).await,
        Some(from) => {
            async {
                let sock = tokio::net::TcpSocket::new_v4()?;
                sock.bind(from)?;
                sock.connect(addr).await
            }
            .await
        }
    }
    .map_err(|e| e.to_string())?;
    if codec.target() == Target::Bridge {
        return join_ws(s, addr, hello, room).await.map(Held::Ws);
    }
    join_tcp(codec, s, hello, room).await.map(Held::Tcp)
}

/// Says hello and joins over a WebSocket to the bridge (one message per payload; what comes
/// back is batches of whole frames), as a browser does.
async fn join_ws(
    s: TcpStream,
    addr: SocketAddr,
    hello: &[bytes::Bytes],
    room: &RoomName,
) -> Result<Box<WebSocketStream<TcpStream>>, String> {
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let url = format!("ws://{addr}/ws");
    let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), s)
        .await
        .map_err(|e| e.to_string())?;
    for b in hello {
        ws.send(Message::Binary(b.clone()))
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut d = FrameDecoder::new();
    loop {
        let msg = match ws.next().await {
            None => return Err("bridge closed the connection".into()),
            Some(m) => m.map_err(|e| e.to_string())?,
        };
        let Message::Binary(batch) = msg else {
            continue;
        };
        d.extend(&batch);
        while let Some(p) = d.next_frame().map_err(|e| e.to_string())? {
            if joined(&p, room) {
                return Ok(Box::new(ws));
            }
        }
    }
}

/// Says hello and joins over plain TCP (natter) or waits for the greeting (baseline).
async fn join_tcp(
    codec: &Codec,
    mut s: TcpStream,
    hello: &[bytes::Bytes],
    room: &RoomName,
) -> Result<TcpStream, String> {
    for b in hello {
        s.write_all(b).await.map_err(|e| e.to_string())?;
    }
    let mut d = FrameDecoder::new();
    let mut buf = [0u8; 4096];
    let mut first = true;
    loop {
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("server closed the connection".into());
        }
        if codec.target() != Target::Baseline && first && buf[0] != 0 {
            // Words, not a frame (a frame's length prefix starts with 0).
            return Err(TEXT_GREETED.into());
        }
        first = false;
        d.extend(&buf[..n]);
        while let Some(p) = d.next_frame().map_err(|e| e.to_string())? {
            match codec.classify(&p) {
                Received::Ready if codec.target() == Target::Baseline => return Ok(s),
                Received::Failed(why) => return Err(why),
                _ => {}
            }
            if codec.target() != Target::Baseline && joined(&p, room) {
                return Ok(s);
            }
        }
    }
}

fn joined(payload: &[u8], room: &RoomName) -> bool {
    matches!(
        natter_core::wire::decode_payload::<natter_core::wire::ServerMsg>(payload),
        Ok(natter_core::wire::ServerMsg::Joined { room: r, .. }) if &r == room
    )
}
