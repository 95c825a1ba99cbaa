//! The idle workload: N connections joined in rooms of `room_size`, then left idle, to measure
//! what the server holds per connection and how long connecting them all takes.
//!
//! Each connection says hello and joins (natter) or waits for its greeting (baseline), then a
//! small task reads and drops whatever the server still sends (other members' joins), so no
//! bytes pile up in the server on our account.

use crate::Target;
use crate::wire::{Codec, Received};
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

/// Connects in flight at once (the listen backlog is finite; a dropped SYN costs a second).
const IN_FLIGHT: usize = 128;

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
            let r = timeout(PER_CONN_TIMEOUT, join(&codec, addr, &hello, &room)).await;
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
    for mut s in streams {
        tasks.spawn(async move {
            let mut buf = [0u8; 1024];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        });
    }
    Ok(Idle {
        tasks,
        connect_time,
    })
}

/// Connects and waits until the connection is in `room`.
async fn join(
    codec: &Codec,
    addr: SocketAddr,
    hello: &[bytes::Bytes],
    room: &RoomName,
) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    for b in hello {
        s.write_all(b).await.map_err(|e| e.to_string())?;
    }
    let mut d = FrameDecoder::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("server closed the connection".into());
        }
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
