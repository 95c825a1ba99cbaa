//! The connection storm: N binary clients connect at once (no pacing, no limit on connects in
//! flight) and each joins one room; how long until the last is in, and how many never got in.
//!
//! Each client connects, writes its preamble, hello and join in one go right after its
//! non-blocking connect (as a client of its own does), and reads until its
//! `Joined`. A client the server greeted as a person on `nc` (its preamble reached the server
//! after the detection wait: the first byte it reads is not the 0 every frame's length prefix
//! starts with) does what natter's session does: it closes and connects again at once (three
//! times in a row, then after natter's reconnect backoff). Those retries are counted; a client
//! not in the room by the deadline is *stranded*.

use crate::Target;
use crate::wire::{BenchWireError, Codec, Received};
use hdrhistogram::Histogram;
use natter_core::RoomName;
use natter_core::wire::FrameDecoder;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// What one storm is.
#[derive(Debug, Clone)]
pub struct StormSpec {
    /// natter-server's address.
    pub addr: SocketAddr,
    /// Clients.
    pub clients: u32,
    /// Longest the storm may take; a client not in by then is stranded.
    pub timeout: Duration,
}

/// What a storm did.
#[derive(Debug)]
pub struct StormResult {
    /// Clients in the room.
    pub joined: u32,
    /// Clients not in the room by the deadline.
    pub stranded: u32,
    /// Connections the server greeted as a person (each retried at once).
    pub greeted_as_text: u32,
    /// From the first connect to the last `Joined`.
    pub all_joined: Option<Duration>,
    /// Per client: first connect to its `Joined`, nanoseconds.
    pub join_time: Histogram<u64>,
    /// The first few reasons clients failed, for the log.
    pub errors: Vec<String>,
}

/// Open joined clients: dropping them closes them.
pub struct Crowd {
    /// The drain tasks, one per client still connected.
    pub tasks: JoinSet<()>,
}

/// How one client's attempt ended.
enum Attempt {
    Joined(TcpStream),
    /// The server greeted us as a person: connect again.
    Text,
}

/// Runs a storm (inside a `LocalSet`, on the caller's thread): every client connects at once.
/// Returns the figures, and the joined clients (kept open until dropped, so the caller can
/// measure the server holding them).
pub async fn run(spec: StormSpec) -> Result<(StormResult, Crowd), BenchWireError> {
    let codec = Codec::new(Target::Natter, "#storm", false)?;
    let room: RoomName = codec.room().clone();
    let mut hellos = Vec::with_capacity(spec.clients as usize);
    for i in 0..spec.clients {
        hellos.push(codec.handshake(i, &room)?);
    }
    let started = Instant::now();
    let deadline = started + spec.timeout;
    let mut set = JoinSet::new();
    for (index, hello) in hellos.into_iter().enumerate() {
        let codec = codec.clone();
        set.spawn_local(async move {
            let mut text = 0u32;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, attempt(spec.addr, &hello, &codec)).await {
                    Ok(Ok(Attempt::Joined(s))) => return (Ok((s, started.elapsed())), text),
                    Ok(Ok(Attempt::Text)) => {
                        text += 1;
                        tokio::time::sleep(retry_wait(index, text)).await;
                    }
                    Ok(Err(e)) => return (Err(e), text),
                    Err(_) => return (Err("not in the room by the deadline".into()), text),
                }
            }
        });
    }
    let mut join_time =
        // Bounded (1 µs to 10 min), so no recording is clamped to an auto-resizing one's
        // current (tiny) range.
        Histogram::<u64>::new_with_bounds(1_000, 600_000_000_000, 3)
            .map_err(|e| BenchWireError::Invalid(format!("histogram: {e}")))?;
    let mut result = StormResult {
        joined: 0,
        stranded: 0,
        greeted_as_text: 0,
        all_joined: None,
        join_time: join_time.clone(),
        errors: Vec::new(),
    };
    let mut last = Duration::ZERO;
    let mut tasks = JoinSet::new();
    while let Some(done) = set.join_next().await {
        let (outcome, text) = match done {
            Ok(o) => o,
            Err(e) => (Err(e.to_string()), 0),
        };
        result.greeted_as_text += text;
        match outcome {
            Ok((mut s, took)) => {
                result.joined += 1;
                last = last.max(took);
                join_time.saturating_record(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
                // Read and drop what the room still says, so nothing piles up in the server.
                tasks.spawn_local(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                });
            }
            Err(e) => {
                result.stranded += 1;
                if result.errors.len() < 5 {
                    result.errors.push(e);
                }
            }
        }
    }
    result.join_time = join_time;
    result.all_joined = (result.stranded == 0).then_some(last);
    Ok((result, Crowd { tasks }))
}

/// How long client `index` waits before connecting again after its `n`th text greeting: nothing
/// for the first [`QUICK_RECONNECTS`](natter_core::limits::QUICK_RECONNECTS), then natter's reconnect backoff (`RECONNECT_MIN` doubling up
/// to `RECONNECT_MAX`, in its upper half by a per-client jitter), as the natter client does.
fn retry_wait(index: usize, n: u32) -> Duration {
    use natter_core::limits::{QUICK_RECONNECTS, RECONNECT_MAX, RECONNECT_MIN};
    if n <= QUICK_RECONNECTS {
        return Duration::ZERO;
    }
    let exp = (n - QUICK_RECONNECTS - 1).min(16);
    let base = RECONNECT_MIN
        .0
        .saturating_mul(1 << exp)
        .min(RECONNECT_MAX.0);
    let half = base / 2;
    // A fixed spread per client and attempt (no RNG needed): clients do not come back together.
    let spread = (index as u64)
        .wrapping_mul(2_654_435_761)
        .wrapping_add(u64::from(n) * 40_503)
        % (base - half + 1);
    Duration::from_millis(half + spread)
}

/// Connects and writes `hello` as a client of its own does: its first bytes right after its
/// connect. Awaiting each connect first (`TcpStream::connect`), a client's write waited until
/// the generator's one thread came round to it again, behind thousands of other connects: the
/// early clients' preambles reached the server hundreds of milliseconds after it accepted them,
/// and the storm counted the generator's lateness as clients greeted as text (until issue 22's
/// QA). On loopback the handshake is over when the non-blocking connect returns; elsewhere the
/// write finds the socket still connecting and the rest waits for it.
async fn connect_and_say(addr: SocketAddr, hello: &[bytes::Bytes]) -> Result<TcpStream, String> {
    use socket2::{Domain, Socket, Type};
    use std::io::Write;
    /// Linux's `EINPROGRESS`: a non-blocking connect under way (`io::ErrorKind::InProgress` is
    /// not stable).
    const EINPROGRESS: i32 = 115;
    let all = hello.concat();
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .map_err(|e| format!("connect: {e}"))?;
    sock.set_nonblocking(true)
        .map_err(|e| format!("connect: {e}"))?;
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e)
            if e.raw_os_error() == Some(EINPROGRESS)
                || e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(format!("connect: {e}")),
    }
    let mut sent = 0;
    while sent < all.len() {
        match (&sock).write(&all[sent..]) {
            Ok(n) if n > 0 => sent += n,
            // Still connecting (or refused: the write below says so).
            _ => break,
        }
    }
    let mut s = TcpStream::from_std(sock.into()).map_err(|e| format!("connect: {e}"))?;
    if sent < all.len() {
        s.write_all(&all[sent..])
            .await
            .map_err(|e| format!("write: {e}"))?;
    }
    Ok(s)
}

/// One connection: connect, say everything, read until `Joined` (or a text greeting).
async fn attempt(
    addr: SocketAddr,
    hello: &[bytes::Bytes],
    codec: &Codec,
) -> Result<Attempt, String> {
    let mut s = connect_and_say(addr, hello).await?;
    let mut d = FrameDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut first = true;
    loop {
        let n = s.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        if first && buf[0] != 0 {
            return Ok(Attempt::Text);
        }
        first = false;
        d.extend(&buf[..n]);
        while let Some(p) = d.next_frame().map_err(|e| e.to_string())? {
            match codec.classify(&p) {
                Received::Ready => return Ok(Attempt::Joined(s)),
                Received::Failed(why) => return Err(why),
                _ => {}
            }
        }
    }
}
