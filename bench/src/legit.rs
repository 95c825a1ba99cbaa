//! Well-behaved clients for `natter-bench attack`: a few binary clients in one room, each saying
//! a line on a fixed pace (within the flood limit) and timing the server's echo of its own line.
//! Each sample keeps its send time, so the caller sorts samples into the windows it measured
//! (calm, attacked). Everything runs on the caller's thread: call [`Legit::connect`] and
//! [`Legit::run`] inside a `tokio::task::LocalSet`.

use crate::attack::LEGIT_ROOM;
use natter_core::wire::{
    ClientMsg, EventKind, FrameDecoder, MAGIC, PROTOCOL_VERSION, RoomEvent, ServerMsg,
    decode_payload, encode_frame,
};
use natter_core::{MsgId, Nick, RoomName, Text};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{MissedTickBehavior, timeout};

/// Longest a connect or a join may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Unexpected things kept for the report (the count goes on).
const MAX_NOTES: usize = 16;

/// Why the clients could not be set up.
#[derive(Debug, Error)]
pub enum LegitError {
    /// Connecting, the hello or the join failed.
    #[error("legit client {client}: {detail}")]
    Setup {
        /// Which client.
        client: u32,
        /// What went wrong.
        detail: String,
    },
}

/// One echo: when its line was sent (since the clients' start) and how long the echo took.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Send time, from [`Legit::started`].
    pub sent: Duration,
    /// Send to echo.
    pub latency: Duration,
}

/// What the clients saw.
#[derive(Debug, Default)]
pub struct LegitResult {
    /// One per echo received.
    pub samples: Vec<Sample>,
    /// Send times of lines never echoed.
    pub lost: Vec<Duration>,
    /// Errors, gap markers, closes: none should happen to a well-behaved client.
    pub unexpected: u64,
    /// The first few of them.
    pub notes: Vec<String>,
}

/// Connected, joined clients.
pub struct Legit {
    clients: Vec<(TcpStream, FrameDecoder, Nick)>,
    /// When the clients started (sample times count from here).
    pub started: Instant,
}

struct Shared {
    /// (client, id) -> send time, until echoed.
    pending: HashMap<(u32, u64), Instant>,
    result: LegitResult,
}

impl Shared {
    fn note(&mut self, what: String) {
        self.result.unexpected += 1;
        if self.result.notes.len() < MAX_NOTES {
            self.result.notes.push(what);
        }
    }
}

impl Legit {
    /// Connects `n` clients to `addr`, says hello and joins [`LEGIT_ROOM`] for each.
    pub async fn connect(addr: SocketAddr, n: u32) -> Result<Legit, LegitError> {
        let mut clients = Vec::new();
        for i in 0..n {
            let err = |detail: String| LegitError::Setup { client: i, detail };
            let mut s = timeout(SETUP_TIMEOUT, TcpStream::connect(addr))
                .await
                .map_err(|_| err("connect timed out".into()))?
                .map_err(|e| err(format!("connect: {e}")))?;
            s.set_nodelay(true).map_err(|e| err(e.to_string()))?;
            let mut out = MAGIC.to_vec();
            let want = Nick::new(&format!("legit{i}")).map_err(|e| err(e.to_string()))?;
            for m in [
                ClientMsg::Hello {
                    version: PROTOCOL_VERSION,
                    nick: want.clone(),
                    resume: None,
                },
                ClientMsg::Join { room: legit_room() },
            ] {
                out.extend_from_slice(&encode_frame(&m).map_err(|e| err(e.to_string()))?);
            }
            s.write_all(&out)
                .await
                .map_err(|e| err(format!("write: {e}")))?;
            let mut dec = FrameDecoder::new();
            let mut me = want;
            let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
            let mut buf = [0u8; 4096];
            'joined: loop {
                while let Some(p) = dec.next_frame().map_err(|e| err(e.to_string()))? {
                    match decode_payload(&p).map_err(|e| err(e.to_string()))? {
                        ServerMsg::Welcome { nick, .. } => me = nick,
                        ServerMsg::Joined { .. } => break 'joined,
                        m @ ServerMsg::Error { .. } => return Err(err(format!("{m:?}"))),
                        _ => {}
                    }
                }
                let n = timeout(
                    deadline.saturating_duration_since(tokio::time::Instant::now()),
                    s.read(&mut buf),
                )
                .await
                .map_err(|_| err("no Joined in time".into()))?
                .map_err(|e| err(format!("read: {e}")))?;
                if n == 0 {
                    return Err(err("closed before Joined".into()));
                }
                dec.extend(&buf[..n]);
            }
            clients.push((s, dec, me));
        }
        Ok(Legit {
            clients,
            started: Instant::now(),
        })
    }

    /// Each client says a line every `pace` (the clients spread over it) until `stop` resolves,
    /// then waits up to `drain` for the last echoes.
    pub async fn run(
        self,
        pace: Duration,
        stop: impl std::future::Future<Output = ()>,
        drain: Duration,
    ) -> LegitResult {
        let started = self.started;
        let n = self.clients.len() as u32;
        let shared = Rc::new(RefCell::new(Shared {
            pending: HashMap::new(),
            result: LegitResult::default(),
        }));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut writers = Vec::new();
        let mut readers = Vec::new();
        for (i, (s, dec, me)) in self.clients.into_iter().enumerate() {
            let i = i as u32;
            let (r, w) = s.into_split();
            let offset = pace.mul_f64(f64::from(i) / f64::from(n.max(1)));
            writers.push(tokio::task::spawn_local(write_loop(
                w,
                i,
                pace,
                offset,
                shared.clone(),
                stop_rx.clone(),
            )));
            readers.push(tokio::task::spawn_local(read_loop(
                r,
                dec,
                i,
                me,
                shared.clone(),
                started,
            )));
        }
        stop.await;
        let _ = stop_tx.send(true);
        // The write halves stay open until the readers are done: dropping one ends the
        // connection.
        let mut open = Vec::new();
        for w in writers {
            if let Ok(Some(w)) = w.await {
                open.push(w);
            }
        }
        // The last echoes.
        let deadline = Instant::now() + drain;
        while Instant::now() < deadline && !shared.borrow().pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for r in readers {
            r.abort();
        }
        drop(open);
        let mut sh = shared.borrow_mut();
        let lost: Vec<Duration> = sh
            .pending
            .values()
            .map(|t| t.saturating_duration_since(started))
            .collect();
        sh.result.lost = lost;
        std::mem::take(&mut sh.result)
    }
}

fn legit_room() -> RoomName {
    RoomName::new(LEGIT_ROOM).expect("a valid room name")
}

async fn write_loop(
    mut w: tokio::net::tcp::OwnedWriteHalf,
    i: u32,
    pace: Duration,
    offset: Duration,
    shared: Rc<RefCell<Shared>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::net::tcp::OwnedWriteHalf> {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, pace);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let text = Text::new("a well-behaved line of chat, about as long as most").expect("valid");
    for id in 1u64.. {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return Some(w),
        }
        let Ok(bytes) = encode_frame(&ClientMsg::Say {
            room: legit_room(),
            id: MsgId(id),
            text: text.clone(),
        }) else {
            return Some(w);
        };
        shared.borrow_mut().pending.insert((i, id), Instant::now());
        if let Err(e) = w.write_all(&bytes).await {
            shared
                .borrow_mut()
                .note(format!("legit{i}: write failed: {e}"));
            return None;
        }
    }
    Some(w)
}

async fn read_loop(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut dec: FrameDecoder,
    i: u32,
    me: Nick,
    shared: Rc<RefCell<Shared>>,
    started: Instant,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        loop {
            let p = match dec.next_frame() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    shared
                        .borrow_mut()
                        .note(format!("legit{i}: bad frame: {e}"));
                    return;
                }
            };
            let now = Instant::now();
            match decode_payload::<ServerMsg>(&p) {
                Ok(ServerMsg::Event(RoomEvent {
                    kind: EventKind::Say { id, .. },
                    from,
                    ..
                })) if from == me => {
                    let mut sh = shared.borrow_mut();
                    let Some(sent) = sh.pending.remove(&(i, id.0)) else {
                        sh.note(format!("legit{i}: echo of {} not sent (or twice)", id.0));
                        continue;
                    };
                    sh.result.samples.push(Sample {
                        sent: sent.saturating_duration_since(started),
                        latency: now.saturating_duration_since(sent),
                    });
                }
                Ok(
                    m @ (ServerMsg::Gap { .. } | ServerMsg::Error { .. } | ServerMsg::Bye { .. }),
                ) => {
                    shared.borrow_mut().note(format!("legit{i}: {m:?}"));
                }
                Ok(_) => {}
                Err(e) => shared
                    .borrow_mut()
                    .note(format!("legit{i}: undecodable: {e}")),
            }
        }
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => {
                shared.borrow_mut().note(format!("legit{i}: closed"));
                return;
            }
            Ok(n) => dec.extend(&buf[..n]),
        }
    }
}
