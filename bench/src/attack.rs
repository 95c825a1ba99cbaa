//! The attack mix as a load of its own, for `natter-bench attackers` (a separate process, pinned
//! away from the server): floods over the flood limit (binary and text), slowloris (partial
//! frames and partial lines, a byte a second), many connections claiming one address (through
//! the bridge preamble, so the per-address limits apply), frames over the size limit, history
//! and ping spam, members that never read, and connection churn. Every attacker loops until the
//! deadline, reconnecting when the server closes it; each operation has its own timeout.
//!
//! [`attackers`] returns what the attackers did ([`AttackCounts`]), so a run can show the
//! attack was on (and the server answered as documented: closes, refusals).

use natter_core::wire::{
    ClientMsg, FrameDecoder, MAGIC, PROTOCOL_VERSION, ServerMsg, bridge_preamble, decode_payload,
    encode_frame,
};
use natter_core::{MsgId, Nick, RoomName, Seq, Text};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

/// The room the well-behaved clients talk in (slow readers and spammers join it).
pub const LEGIT_ROOM: &str = "#legit";

/// The room flooders flood.
const FLOOD_ROOM: &str = "#flood";

/// The forwarded address the same-address attackers claim (TEST-NET-2).
const ONE_ADDRESS: &str = "198.51.100.7";

/// Longest one connect, write or wait for an answer may take.
const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// Slowloris: between two bytes.
const DRIP: Duration = Duration::from_secs(1);

/// How many attackers of each kind (each its own task, most with one connection at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::Args)]
pub struct Mix {
    /// Binary clients writing says to a room as fast as the socket takes them.
    #[arg(long, default_value_t = 4)]
    pub floods: u32,
    /// `nc`-style clients writing lines as fast as the socket takes them.
    #[arg(long, default_value_t = 2)]
    pub text_floods: u32,
    /// Connections dripping a frame header or a line, a byte a second.
    #[arg(long, default_value_t = 200)]
    pub slowloris: u32,
    /// Tasks connecting over and over as one forwarded address.
    #[arg(long, default_value_t = 4)]
    pub same_address: u32,
    /// Tasks sending frames over the size limit (and malformed ones), over and over.
    #[arg(long, default_value_t = 2)]
    pub huge_frames: u32,
    /// Members of the legit room asking for its history and pinging as fast as they can.
    #[arg(long, default_value_t = 2)]
    pub spammers: u32,
    /// Members of the legit room that never read.
    #[arg(long, default_value_t = 4)]
    pub slow_readers: u32,
    /// Tasks connecting and dropping at once, over and over.
    #[arg(long, default_value_t = 2)]
    pub churners: u32,
}

impl Mix {
    /// The command-line flags that give this mix (for the attackers' process).
    pub fn to_args(&self) -> Vec<String> {
        [
            ("--floods", self.floods),
            ("--text-floods", self.text_floods),
            ("--slowloris", self.slowloris),
            ("--same-address", self.same_address),
            ("--huge-frames", self.huge_frames),
            ("--spammers", self.spammers),
            ("--slow-readers", self.slow_readers),
            ("--churners", self.churners),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_owned(), v.to_string()])
        .collect()
    }

    /// Each kind once, for a quick check.
    pub fn one_each() -> Mix {
        Mix {
            floods: 1,
            text_floods: 1,
            slowloris: 2,
            same_address: 1,
            huge_frames: 1,
            spammers: 1,
            slow_readers: 1,
            churners: 1,
        }
    }
}

/// What the attackers did (printed by `natter-bench attackers` as one JSON line).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackCounts {
    /// Connections opened.
    pub connects: u64,
    /// Connections the server closed (or reset) while an attacker was on it.
    pub closed_by_server: u64,
    /// Bytes written.
    pub bytes_sent: u64,
    /// Bytes read (by the attackers that read).
    pub bytes_received: u64,
    /// Same-address connections that got a welcome.
    pub same_address_admitted: u64,
    /// Same-address connections refused (closed before a welcome).
    pub same_address_refused: u64,
    /// Operations that timed out.
    pub timeouts: u64,
}

/// [`AttackCounts`] while the attackers run.
#[derive(Debug, Default)]
struct Counters {
    connects: AtomicU64,
    closed_by_server: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    same_address_admitted: AtomicU64,
    same_address_refused: AtomicU64,
    timeouts: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> AttackCounts {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AttackCounts {
            connects: l(&self.connects),
            closed_by_server: l(&self.closed_by_server),
            bytes_sent: l(&self.bytes_sent),
            bytes_received: l(&self.bytes_received),
            same_address_admitted: l(&self.same_address_admitted),
            same_address_refused: l(&self.same_address_refused),
            timeouts: l(&self.timeouts),
        }
    }
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

type Counts = Arc<Counters>;

/// Runs `mix` against `addr` until `run_for` has passed; what the attackers did.
pub async fn attackers(addr: SocketAddr, mix: Mix, run_for: Duration) -> AttackCounts {
    let end = Instant::now() + run_for;
    let counts: Counts = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let kinds: [(u32, Kind); 8] = [
        (mix.floods, Kind::Flood),
        (mix.text_floods, Kind::TextFlood),
        (mix.slowloris, Kind::Slowloris),
        (mix.same_address, Kind::SameAddress),
        (mix.huge_frames, Kind::HugeFrames),
        (mix.spammers, Kind::Spam),
        (mix.slow_readers, Kind::SlowReader),
        (mix.churners, Kind::Churn),
    ];
    for (n, kind) in kinds {
        for i in 0..n {
            let counts = counts.clone();
            tasks.spawn(async move {
                // Spread the starts over the first half second.
                sleep(Duration::from_millis(u64::from(i % 50) * 10)).await;
                while Instant::now() < end {
                    let r = timeout(
                        end.saturating_duration_since(Instant::now()),
                        kind.once(addr, i, end, &counts),
                    )
                    .await;
                    if let Ok(Err(_)) = r {
                        // Connect refused or the like: do not spin.
                        sleep(Duration::from_millis(50)).await;
                    }
                }
            });
        }
    }
    while tasks.join_next().await.is_some() {}
    counts.snapshot()
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Flood,
    TextFlood,
    Slowloris,
    SameAddress,
    HugeFrames,
    Spam,
    SlowReader,
    Churn,
}

/// One attacker's socket: counts what it writes and reads.
struct Sock {
    s: TcpStream,
    counts: Counts,
    /// The first bytes received (up to 64 KiB).
    got: Vec<u8>,
}

impl Sock {
    async fn connect(addr: SocketAddr, counts: &Counts) -> std::io::Result<Sock> {
        let s = timeout(OP_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)??;
        add(&counts.connects, 1);
        Ok(Sock {
            s,
            counts: counts.clone(),
            got: Vec::new(),
        })
    }

    async fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        match timeout(OP_TIMEOUT, self.s.write_all(b)).await {
            Ok(Ok(())) => {
                add(&self.counts.bytes_sent, b.len() as u64);
                Ok(())
            }
            Ok(Err(e)) => {
                add(&self.counts.closed_by_server, 1);
                Err(e)
            }
            Err(_) => {
                add(&self.counts.timeouts, 1);
                Err(std::io::ErrorKind::TimedOut.into())
            }
        }
    }

    /// Reads until the server closes, `done(bytes so far)`, or `wait`; true if it closed.
    async fn read_until(&mut self, wait: Duration, done: impl Fn(&[u8]) -> bool) -> bool {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 16 * 1024];
        loop {
            if done(&self.got) {
                return false;
            }
            match timeout(
                deadline.saturating_duration_since(Instant::now()),
                self.s.read(&mut buf),
            )
            .await
            {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => {
                    add(&self.counts.closed_by_server, 1);
                    return true;
                }
                Ok(Ok(n)) => {
                    add(&self.counts.bytes_received, n as u64);
                    let keep = n.min((64 * 1024usize).saturating_sub(self.got.len()));
                    self.got.extend_from_slice(&buf[..keep]);
                }
            }
        }
    }
}

/// Whether the first frame in `got` is a welcome (`Some(true)`) or something else, once a whole
/// frame is there.
fn welcomed(got: &[u8]) -> Option<bool> {
    let mut d = FrameDecoder::new();
    d.extend(got);
    match d.next_frame() {
        Ok(Some(p)) => Some(matches!(
            decode_payload::<ServerMsg>(&p),
            Ok(ServerMsg::Welcome { .. })
        )),
        Ok(None) => None,
        Err(_) => Some(false),
    }
}

/// Reads and drops everything until the server closes (counted) or `end`.
async fn discard(mut r: tokio::net::tcp::OwnedReadHalf, counts: Counts, end: Instant) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match timeout(
            end.saturating_duration_since(Instant::now()),
            r.read(&mut buf),
        )
        .await
        {
            Err(_) => return,
            Ok(Ok(0)) | Ok(Err(_)) => {
                add(&counts.closed_by_server, 1);
                return;
            }
            Ok(Ok(n)) => add(&counts.bytes_received, n as u64),
        }
    }
}

fn nick(s: &str) -> Nick {
    Nick::new(s).expect("attacker nicks are short ASCII")
}

fn room(s: &str) -> RoomName {
    RoomName::new(s).expect("attacker rooms are valid")
}

fn frame(m: &ClientMsg) -> Vec<u8> {
    encode_frame(m)
        .expect("attacker messages are within the frame limit")
        .to_vec()
}

/// The preamble, a hello as `name`, and a join of `to`.
fn hello_join(name: &str, to: &str) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.extend(frame(&ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        nick: nick(name),
        resume: None,
    }));
    v.extend(frame(&ClientMsg::Join { room: room(to) }));
    v
}

/// A different nick per connection (a nick is held for a while after a drop).
fn fresh(prefix: &str, i: u32) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{i}x{}",
        N.fetch_add(1, Ordering::Relaxed) % 1_000_000
    )
}

impl Kind {
    /// One connection's worth of this attack.
    async fn once(
        self,
        addr: SocketAddr,
        i: u32,
        end: Instant,
        counts: &Counts,
    ) -> std::io::Result<()> {
        let mut c = Sock::connect(addr, counts).await?;
        match self {
            Kind::Flood => {
                c.write(&hello_join(&fresh("fl", i), FLOOD_ROOM)).await?;
                let body = "f".repeat(1900);
                let mut batch = Vec::new();
                for id in 1..=64u64 {
                    batch.extend(frame(&ClientMsg::Say {
                        room: room(FLOOD_ROOM),
                        id: MsgId(id),
                        text: Text::new(&format!("{id} {body}")).expect("valid text"),
                    }));
                }
                flood_with(c, &batch, end).await
            }
            Kind::TextFlood => {
                let mut lines = Vec::new();
                for _ in 0..256 {
                    lines.extend_from_slice(&[b'x'; 199]);
                    lines.push(b'\n');
                }
                flood_with(c, &lines, end).await
            }
            Kind::Slowloris => {
                // Binary: a frame header promising 200 bytes; text: a line that never ends.
                let drip: Vec<u8> = if i.is_multiple_of(2) {
                    let mut v = MAGIC.to_vec();
                    v.extend_from_slice(&200u32.to_be_bytes());
                    v.extend(std::iter::repeat_n(0u8, 200));
                    v
                } else {
                    b"slowloris never finishes this line ".repeat(100)
                };
                for b in drip {
                    if Instant::now() >= end {
                        break;
                    }
                    c.write(&[b]).await?;
                    // Reading only to notice the close (the welcome of a text one is kept).
                    if c.read_until(DRIP, |_| false).await {
                        break;
                    }
                }
                Ok(())
            }
            Kind::SameAddress => {
                let mut v =
                    bridge_preamble(ONE_ADDRESS, natter_core::hub::TEST_BRIDGE_SECRET).to_vec();
                v.extend(frame(&ClientMsg::Hello {
                    version: PROTOCOL_VERSION,
                    nick: nick(&fresh("sa", i)),
                    resume: None,
                }));
                c.write(&v).await?;
                c.read_until(OP_TIMEOUT, |b| welcomed(b).is_some()).await;
                // Refused: an error, a bye and the close.
                let n = match welcomed(&c.got) {
                    Some(true) => &counts.same_address_admitted,
                    _ => &counts.same_address_refused,
                };
                add(n, 1);
                Ok(())
            }
            Kind::HugeFrames => {
                let mut v = hello_join(&fresh("hu", i), FLOOD_ROOM);
                match counts.connects.load(Ordering::Relaxed) % 3 {
                    // A 4 GiB length prefix.
                    0 => v.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]),
                    // One byte over the frame limit, and the bytes.
                    1 => {
                        let n = natter_core::limits::MAX_FRAME + 1;
                        v.extend_from_slice(&(n as u32).to_be_bytes());
                        v.extend(std::iter::repeat_n(7u8, n));
                    }
                    // A whole frame of the largest size that does not decode.
                    _ => {
                        let n = natter_core::limits::MAX_FRAME;
                        v.extend_from_slice(&(n as u32).to_be_bytes());
                        v.extend(std::iter::repeat_n(0xeeu8, n));
                    }
                }
                c.write(&v).await?;
                c.read_until(OP_TIMEOUT, |_| false).await;
                Ok(())
            }
            Kind::Spam => {
                c.write(&hello_join(&fresh("sp", i), LEGIT_ROOM)).await?;
                let mut batch = Vec::new();
                for token in 0..64u64 {
                    batch.extend(frame(&ClientMsg::History {
                        room: room(LEGIT_ROOM),
                        after: Seq(0),
                    }));
                    batch.extend(frame(&ClientMsg::Ping { token }));
                }
                flood_with(c, &batch, end).await
            }
            Kind::SlowReader => {
                c.write(&hello_join(&fresh("sr", i), LEGIT_ROOM)).await?;
                // Never reads: the server skips it, then closes it as too slow, or the run ends.
                let left = end.saturating_duration_since(Instant::now());
                sleep(left).await;
                Ok(())
            }
            Kind::Churn => {
                if counts.connects.load(Ordering::Relaxed) % 2 == 1 {
                    let _ = c.s.write_all(&MAGIC[..2]).await;
                }
                drop(c);
                Ok(())
            }
        }
    }
}

/// Writes `batch` over and over until the server closes or `end`, reading (and dropping)
/// whatever comes back meanwhile.
async fn flood_with(c: Sock, batch: &[u8], end: Instant) -> std::io::Result<()> {
    let counts = c.counts.clone();
    let (r, mut w) = c.s.into_split();
    let reader = tokio::spawn(discard(r, counts.clone(), end));
    let result = loop {
        if Instant::now() >= end || reader.is_finished() {
            break Ok(());
        }
        match timeout(OP_TIMEOUT, w.write_all(batch)).await {
            Ok(Ok(())) => add(&counts.bytes_sent, batch.len() as u64),
            Ok(Err(e)) => {
                add(&counts.closed_by_server, 1);
                break Err(e);
            }
            Err(_) => {
                add(&counts.timeouts, 1);
                break Ok(());
            }
        }
    };
    reader.abort();
    result
}
