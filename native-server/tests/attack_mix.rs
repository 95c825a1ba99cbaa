//! Issue 8, the attack mix: one real in-process server on 127.0.0.1 while 20 well-behaved binary
//! clients chat in `#legit` and measure send→receive latency and loss, and attackers try their
//! worst at the same time. Asserts: no legit message lost or duplicated, their p99 within
//! [`P99_BOUND`], this process's RSS growth (it hosts the server) within [`RSS_GROWTH_BOUND_KIB`],
//! and every attacker got the documented answer (error frame/line, `Bye`, close).
//!
//! Scaled down to keep the test short: slowloris sends a byte per 100 ms (not per second) against
//! a hello timeout of 6 s (default 10 s), with a detection wait of 2.5 s (default 400 ms) so that
//! no well-behaved binary client, delayed by the load, is greeted as a person; the 500
//! connections from one address come through a trusted proxy connection naming one forwarded
//! address (the per-address limits apply to it, while the test's own loopback clients stay
//! exempt). Alone in its test binary so the RSS it
//! measures is this test's only.

mod attack_support;
mod support;

use attack_support::*;
use natter_core::Millis;
use natter_core::wire::{
    ClientMsg, ErrorKind, EventKind, FrameDecoder, MAGIC, PROTOCOL_VERSION, RoomEvent, ServerMsg,
    decode_payload, encode_frame, encode_payload,
};
use natter_server::{ServerConfig, start};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use support::{nick, room, text};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Barrier;
use tokio::time::{Instant, sleep, timeout};

const LEGIT: usize = 20;
const MSGS: usize = 20;
/// Between one legit client's messages: under the flood rate (5/s), so none is refused.
const PACE: Duration = Duration::from_millis(250);
/// Legit p99 send→receive latency bound: generous for a loaded 2-core CI machine that also runs
/// every attacker and client in this process.
const P99_BOUND: Duration = Duration::from_millis(500);
/// What the whole mix may add to this process's RSS. Each connection's queues are bounded by
/// the hub; 500+ attacker sockets and their buffers are the bulk. Measured: about +9 MiB.
const RSS_GROWTH_BOUND_KIB: u64 = 32 * 1024;
/// The whole test's time budget.
const BUDGET: Duration = Duration::from_secs(50);
const HELLO_TIMEOUT: Millis = Millis(6000);
/// Long enough that a binary client of this process whose preamble the load holds back is still
/// taken as binary (at the default 400 ms, legit clients were greeted as people on a loaded
/// machine), and well before [`HELLO_TIMEOUT`]: while the attackers' input fills the server's
/// queue the wait is put off (`Hub::input_waiting`), and this process's connections, from a
/// trusted proxy's address, are closed at the hello timeout if still silent, not greeted (so
/// `never_send` got nothing at 3 s against 4 s).
const DETECT_WAIT: Millis = Millis(2500);
/// The forwarded address the 500 connections claim.
const ONE_ADDRESS: &str = "198.51.100.7";
const SAME_ADDRESS_CONNS: usize = 500;

// ---------------------------------------------------------------------------------------------
// Well-behaved clients

struct Stats {
    who: usize,
    latencies: Vec<Duration>,
    missing: Vec<(usize, usize)>,
    duplicates: Vec<(usize, usize)>,
    unexpected: Vec<String>,
}

async fn legit_hello(addr: SocketAddr, i: usize) -> (TcpStream, FrameDecoder) {
    let mut s = timeout(Duration::from_secs(10), TcpStream::connect(addr))
        .await
        .expect("legit connect timed out")
        .expect("legit connect");
    let mut out = MAGIC.to_vec();
    for m in [
        ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: nick(&format!("legit{i}")),
            resume: None,
        },
        ClientMsg::Join {
            room: room("#legit"),
        },
    ] {
        out.extend_from_slice(&encode_frame(&m).unwrap());
    }
    s.write_all(&out).await.unwrap();
    let mut dec = FrameDecoder::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    loop {
        while let Some(p) = dec.next_frame().expect("legit: frame") {
            if let ServerMsg::Joined { .. } = decode_payload(&p).expect("legit: decodes") {
                return (s, dec);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let n = timeout(left, s.read(&mut buf))
            .await
            .expect("legit{i}: no Joined within 10 s")
            .unwrap();
        assert!(n > 0, "legit{i}: closed before Joined");
        dec.extend(&buf[..n]);
    }
}

async fn legit_send(mut w: OwnedWriteHalf, i: usize, t0: std::time::Instant) {
    for k in 0..MSGS {
        let msg = ClientMsg::Say {
            room: room("#legit"),
            id: natter_core::MsgId(k as u64 + 1),
            text: text(&format!("L {i} {k} {}", t0.elapsed().as_micros())),
        };
        timeout(
            Duration::from_secs(10),
            w.write_all(&encode_frame(&msg).unwrap()),
        )
        .await
        .expect("legit write timed out")
        .expect("legit write");
        sleep(PACE).await;
    }
    // Keep the write half (and so the connection) open until the reader is done.
    sleep(Duration::from_secs(60)).await;
}

async fn legit_read(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut dec: FrameDecoder,
    who: usize,
    t0: std::time::Instant,
    deadline: Instant,
) -> Stats {
    let mut seen = HashSet::new();
    let mut st = Stats {
        who,
        latencies: Vec::new(),
        missing: Vec::new(),
        duplicates: Vec::new(),
        unexpected: Vec::new(),
    };
    let mut buf = [0u8; 16 * 1024];
    'reading: while seen.len() < LEGIT * MSGS {
        while let Some(p) = match dec.next_frame() {
            Ok(p) => p,
            Err(e) => {
                st.unexpected.push(format!("bad frame {e}"));
                break 'reading;
            }
        } {
            match decode_payload::<ServerMsg>(&p) {
                Ok(ServerMsg::Event(RoomEvent {
                    kind: EventKind::Say { text, .. },
                    room,
                    ..
                })) if room.as_str() == "#legit" => {
                    let f: Vec<&str> = text.as_str().split(' ').collect();
                    let (Some(i), Some(k), Some(us)) = (
                        f.get(1).and_then(|v| v.parse::<usize>().ok()),
                        f.get(2).and_then(|v| v.parse::<usize>().ok()),
                        f.get(3).and_then(|v| v.parse::<u128>().ok()),
                    ) else {
                        st.unexpected.push(format!("foreign say in #legit: {text}"));
                        continue;
                    };
                    if !seen.insert((i, k)) {
                        st.duplicates.push((i, k));
                    }
                    let now = t0.elapsed().as_micros();
                    st.latencies.push(Duration::from_micros(
                        u64::try_from(now.saturating_sub(us)).unwrap_or(u64::MAX),
                    ));
                }
                Ok(
                    m @ (ServerMsg::Gap { .. } | ServerMsg::Error { .. } | ServerMsg::Bye { .. }),
                ) => st.unexpected.push(format!("{m:?}")),
                Ok(_) => {}
                Err(e) => st.unexpected.push(format!("undecodable: {e}")),
            }
        }
        if seen.len() == LEGIT * MSGS {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, r.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0)) | Ok(Err(_)) => {
                st.unexpected.push("closed".into());
                break;
            }
            Ok(Ok(n)) => dec.extend(&buf[..n]),
        }
    }
    for i in 0..LEGIT {
        for k in 0..MSGS {
            if !seen.contains(&(i, k)) {
                st.missing.push((i, k));
            }
        }
    }
    st
}

// ---------------------------------------------------------------------------------------------
// Attackers. Each returns a one-line summary, or what went wrong.

type Outcome = Result<String, String>;

fn ends_with_bye(msgs: &[ServerMsg], kind: ErrorKind) -> Result<(), String> {
    let err = msgs
        .iter()
        .any(|m| matches!(m, ServerMsg::Error { kind: k, .. } if *k == kind));
    let bye = matches!(msgs.last(), Some(ServerMsg::Bye { .. }));
    if err && bye {
        Ok(())
    } else {
        Err(format!(
            "wanted Error {{ {kind:?} }} then Bye, got {msgs:?}"
        ))
    }
}

/// Reads until the server closes `c` (10 s at most) and checks its last frames were
/// `Error{kind}` then `Bye`; the frames it got. `what` names the case in a complaint.
async fn closed_with(c: &mut Raw, kind: ErrorKind, what: &str) -> Result<Vec<ServerMsg>, String> {
    if c.read_for(Duration::from_secs(10)).await != End::Closed {
        return Err(format!("{what}: still open"));
    }
    let msgs = c.frames()?;
    ends_with_bye(&msgs, kind).map_err(|e| format!("{what}: {e}"))?;
    Ok(msgs)
}

/// `0x00` (binary) followed by random bytes: a bad preamble, answered with a protocol error.
async fn garbage_binary(addr: SocketAddr) -> Outcome {
    let mut c = Raw::connect(addr).await?;
    let mut g = Bytes64(0x9e37_79b9_7f4a_7c15).fill(2000);
    g[0] = 0;
    g[1] = b'X'; // not the preamble's second byte
    c.write(&g).await?;
    closed_with(&mut c, ErrorKind::Protocol, "random bytes").await?;
    Ok("random bytes after 0x00: Error{Protocol}, Bye, closed".into())
}

/// Random non-UTF-8 bytes as text lines: taken as a person typing, replaced, never crashes.
async fn garbage_text(addr: SocketAddr) -> Outcome {
    let mut c = Raw::connect(addr).await?;
    let mut rng = Bytes64(7);
    for _ in 0..8 {
        // No newline (one line per write, within the flood burst) and no 0xFF: that is telnet's
        // IAC, and IAC SB would swallow everything up to IAC SE, the /who below included.
        let mut g: Vec<u8> = rng
            .fill(1500)
            .into_iter()
            .map(|b| {
                if matches!(b, b'\n' | b'\r' | 0xff) {
                    b'x'
                } else {
                    b
                }
            })
            .collect();
        g[0] = b'g'; // text mode on the first byte
        g.push(b'\n');
        c.write(&g).await?;
    }
    c.write(b"/who\n").await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    c.read_until(deadline, |b| {
        String::from_utf8_lossy(b).contains("-- #lobby (")
    })
    .await;
    if !c.text().contains("-- #lobby (") {
        return Err(format!("no answer to /who after garbage: {:?}", c.text()));
    }
    if c.has_esc() {
        return Err("received a raw ESC".into());
    }
    Ok("random bytes as text: lines said with U+FFFD, still served".into())
}

/// A valid hello, then a 4 GiB length prefix.
async fn huge_prefix(addr: SocketAddr) -> Outcome {
    let mut c = Raw::connect(addr).await?;
    let hello = encode_payload(&ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        nick: nick("huge"),
        resume: None,
    })
    .unwrap();
    c.write(&binary(&[&hello])).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    c.read_until(deadline, |b| !b.is_empty()).await;
    c.write(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).await?;
    let msgs = closed_with(&mut c, ErrorKind::Protocol, "4 GiB prefix").await?;
    if !matches!(msgs.first(), Some(ServerMsg::Welcome { .. })) {
        return Err(format!("no welcome: {msgs:?}"));
    }
    Ok("4 GiB length prefix: Error{Protocol}, Bye, closed, nothing buffered".into())
}

/// 1 MiB without a newline: cut at MAX_LINE_BYTES and told; the connection goes on.
async fn endless_line(addr: SocketAddr) -> Outcome {
    let mut c = Raw::connect(addr).await?;
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..16 {
        c.write(&chunk).await?;
    }
    c.write(b"\n/who\n").await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    c.read_until(deadline, |b| {
        String::from_utf8_lossy(b).contains("-- #lobby (")
    })
    .await;
    let t = c.text();
    if !t.contains("ERROR:") || !t.contains("-- #lobby (") {
        return Err(format!("wanted an ERROR line and a /who answer: {t:?}"));
    }
    Ok("1 MiB line: cut at 2048 bytes, ERROR line, still served".into())
}

/// Slowloris: the preamble and a frame header one byte per 100 ms, never a whole hello.
async fn slowloris(addr: SocketAddr) -> Outcome {
    let c = Raw::connect(addr).await?;
    let started = Instant::now();
    let (mut r, mut w) = c.stream.into_split();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match timeout(Duration::from_secs(10), r.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Err(_) => return (got, false),
            }
        }
    });
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&200u32.to_be_bytes());
    bytes.extend(std::iter::repeat_n(0u8, 200));
    for b in bytes {
        if reader.is_finished() || w.write_all(&[b]).await.is_err() {
            break;
        }
        sleep(Duration::from_millis(100)).await;
    }
    let (got, closed) = timeout(Duration::from_secs(15), reader)
        .await
        .map_err(|_| "reader hung".to_owned())?
        .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    if !closed {
        return Err("never closed".into());
    }
    let raw = Raw {
        stream: TcpStream::connect(addr).await.map_err(|e| e.to_string())?,
        got,
        total: 0,
    };
    ends_with_bye(&raw.frames()?, ErrorKind::Timeout)?;
    let limit = Duration::from_millis(HELLO_TIMEOUT.0) + Duration::from_secs(3);
    if took > limit {
        return Err(format!("closed only after {took:?}"));
    }
    Ok(format!(
        "slowloris (1 byte/100 ms): Error{{Timeout}}, Bye, closed after {took:.1?}"
    ))
}

/// Connects and sends nothing: after the detection wait it is greeted as a person on `nc`.
async fn never_send(addr: SocketAddr) -> Outcome {
    let mut c = Raw::connect(addr).await?;
    // The wait counts from the server's accept, which the attack's hundreds of connects at
    // once delay on a loaded machine: 10 s for that, on top of the wait itself.
    let deadline = Instant::now() + Duration::from_secs(10) + Duration::from_millis(DETECT_WAIT.0);
    c.read_until(deadline, |b| b.ends_with(b"\r\n")).await;
    if !c.text().starts_with("Welcome to natter, ") {
        return Err(format!("no text welcome: {:?}", c.text()));
    }
    Ok("silent connection: text welcome, costs one guest slot".into())
}

/// Joins `#legit` and never reads while the room talks; afterwards what it got is in seq order
/// with every missing seq covered by a gap marker.
async fn never_read(addr: SocketAddr, i: usize, quiet_until: Instant) -> Outcome {
    let mut c = Raw::connect(addr).await?;
    let hello = encode_payload(&ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        nick: nick(&format!("deaf{i}")),
        resume: None,
    })
    .unwrap();
    let join = encode_payload(&ClientMsg::Join {
        room: room("#legit"),
    })
    .unwrap();
    c.write(&binary(&[&hello, &join])).await?;
    tokio::time::sleep_until(quiet_until).await;
    c.read_for(Duration::from_secs(3)).await;
    let mut next: Option<u64> = None;
    let mut says = 0;
    for m in c.frames()? {
        match m {
            ServerMsg::Joined { seq, .. } => next = Some(seq.0 + 1),
            ServerMsg::Event(e) if e.room.as_str() == "#legit" => {
                let Some(n) = next else { continue };
                if e.seq.0 < n {
                    continue; // history replayed on join
                }
                if e.seq.0 != n {
                    return Err(format!("seq {} after {}, no gap marker", e.seq.0, n - 1));
                }
                says += usize::from(matches!(e.kind, EventKind::Say { .. }));
                next = Some(n + 1);
            }
            ServerMsg::Gap { last, .. } => next = Some(last.0 + 1),
            _ => {}
        }
    }
    Ok(format!(
        "never-reader {i}: {says} says in order, gaps marked"
    ))
}

/// 300 large says at once: the burst and the queue are served in order, the rest refused with
/// `Error{Flood, id}`; every id gets exactly one answer.
async fn flood(addr: SocketAddr) -> Outcome {
    const N: u64 = 300;
    let mut c = Raw::connect(addr).await?;
    let hello = encode_payload(&ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        nick: nick("flooder"),
        resume: None,
    })
    .unwrap();
    let join = encode_payload(&ClientMsg::Join {
        room: room("#flood"),
    })
    .unwrap();
    c.write(&binary(&[&hello, &join])).await?;
    let body = "f".repeat(1900);
    let mut all = Vec::new();
    for id in 1..=N {
        all.extend_from_slice(
            &encode_frame(&ClientMsg::Say {
                room: room("#flood"),
                id: natter_core::MsgId(id),
                text: text(&format!("{id} {body}")),
            })
            .unwrap(),
        );
    }
    c.write(&all).await?;
    let answered = |b: &[u8]| -> usize {
        let mut d = FrameDecoder::new();
        d.extend(b);
        let mut n = 0;
        while let Ok(Some(p)) = d.next_frame() {
            n += usize::from(matches!(
                decode_payload::<ServerMsg>(&p),
                Ok(ServerMsg::Event(RoomEvent {
                    kind: EventKind::Say { .. },
                    ..
                }) | ServerMsg::Error { .. })
            ));
        }
        n
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    c.read_until(deadline, |b| answered(b) >= N as usize).await;
    let mut answers: BTreeMap<u64, usize> = BTreeMap::new();
    let (mut ok, mut refused) = (0, 0);
    for m in c.frames()? {
        match m {
            ServerMsg::Event(RoomEvent {
                kind: EventKind::Say { id, .. },
                ..
            }) => {
                ok += 1;
                *answers.entry(id.0).or_default() += 1;
            }
            ServerMsg::Error {
                kind: ErrorKind::Flood,
                re: natter_core::wire::Re::Msg(id),
                ..
            } => {
                refused += 1;
                *answers.entry(id.0).or_default() += 1;
            }
            m @ (ServerMsg::Error { .. } | ServerMsg::Bye { .. }) => {
                return Err(format!("unexpected {m:?}"));
            }
            _ => {}
        }
    }
    if answers.len() != N as usize || answers.values().any(|&n| n != 1) || refused == 0 {
        return Err(format!(
            "{ok} said + {refused} refused, {} ids answered (want {N}, each once)",
            answers.len()
        ));
    }
    Ok(format!(
        "flood of {N}: {ok} said in order, {refused} refused with Error{{Flood, id}}"
    ))
}

/// 500 connections claiming one forwarded address: the per-address limits admit a few, the rest
/// get `Error{Full}`, `Bye` and a close.
async fn same_address(addr: SocketAddr) -> Outcome {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..SAME_ADDRESS_CONNS {
        tasks.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            let (end, c) =
                hello_via_bridge(addr, ONE_ADDRESS, &format!("same{i}"), deadline).await?;
            let msgs = c.frames()?;
            match (end, msgs.first()) {
                (End::Open, Some(ServerMsg::Welcome { .. })) => Ok::<_, String>((true, c)),
                (End::Closed, _) => {
                    ends_with_bye(&msgs, ErrorKind::Full)?;
                    Ok((false, c))
                }
                _ => Err(format!("same{i}: neither welcomed nor refused: {msgs:?}")),
            }
        });
    }
    let (mut admitted, mut refused, mut keep) = (0, 0, Vec::new());
    while let Some(r) = tasks.join_next().await {
        let (welcomed, c) = r.map_err(|e| e.to_string())??;
        if welcomed {
            admitted += 1;
            keep.push(c);
        } else {
            refused += 1;
        }
    }
    let cap = natter_core::limits::MAX_CONNECTIONS_PER_IP
        .min(natter_core::limits::MAX_CONNECTS_PER_WINDOW as usize);
    if admitted == 0 || admitted > cap || admitted + refused != SAME_ADDRESS_CONNS {
        return Err(format!(
            "{admitted} admitted, {refused} refused (cap {cap})"
        ));
    }
    Ok(format!(
        "{SAME_ADDRESS_CONNS} from {ONE_ADDRESS}: {admitted} admitted, {refused} got Error{{Full}}, Bye, close"
    ))
}

/// Connects and drops at once, 300 times (every other one after half a preamble).
async fn churn(addr: SocketAddr) -> Outcome {
    for i in 0..300 {
        let mut c = Raw::connect(addr).await?;
        if i % 2 == 1 {
            let _ = c.write(&MAGIC[..2]).await;
        }
        drop(c);
    }
    let mut c = Raw::connect(addr).await?;
    c.write(b"/rooms\n").await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    c.read_until(deadline, |b| String::from_utf8_lossy(b).contains("#lobby"))
        .await;
    if !c.text().contains("#lobby") {
        return Err(format!("not served after churn: {:?}", c.text()));
    }
    Ok("300 connect/disconnect: server still serves".into())
}

/// Hand-made bincode with invalid UTF-8 in a nick and a room name.
async fn bad_utf8_binary(addr: SocketAddr) -> Outcome {
    // Checks the hand encoding against the real encoder first, so the bad ones differ only in
    // the string bytes.
    let version = u8::try_from(PROTOCOL_VERSION).expect("a one-byte varint");
    let good = [vec![0u8, version], bstr(b"okay"), vec![0]].concat();
    let real = encode_payload(&ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        nick: nick("okay"),
        resume: None,
    })
    .unwrap();
    if good != real[..] {
        return Err(format!("hand encoding {good:?} != {real:?}"));
    }
    let bad_nick = [vec![0u8, version], bstr(b"\xff\xfe\x1b[2J"), vec![0]].concat();
    let mut c = Raw::connect(addr).await?;
    c.write(&binary(&[&bad_nick])).await?;
    closed_with(&mut c, ErrorKind::Protocol, "bad nick").await?;

    let hello = encode_payload(&ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        nick: nick("utf8bad"),
        resume: None,
    })
    .unwrap();
    let bad_room = [vec![2u8], bstr(b"#\xc3\x28oom")].concat();
    let mut c = Raw::connect(addr).await?;
    c.write(&binary(&[&hello, &bad_room])).await?;
    let msgs = closed_with(&mut c, ErrorKind::Protocol, "bad room").await?;
    if !matches!(msgs.first(), Some(ServerMsg::Welcome { .. })) {
        return Err(format!("bad room: no welcome first: {msgs:?}"));
    }
    Ok("invalid UTF-8 nick / room (binary): Error{Protocol}, Bye, closed".into())
}

/// `/nick` and `/join` with bytes that are not UTF-8 (and an ESC): refused in words.
async fn bad_utf8_text(addr: SocketAddr) -> Outcome {
    let mut c = Raw::connect(addr).await?;
    // (Not 0xFF: that starts a telnet command, and IAC DONT would eat the ESC after it.)
    c.write(b"/nick \xc3\x28\xfe\x1b[2J\n/join #\xc3\x28\x1b]0;x\x07\n/who\n")
        .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    c.read_until(deadline, |b| {
        String::from_utf8_lossy(b).contains("-- #lobby (")
    })
    .await;
    let t = c.text();
    if t.matches("ERROR:").count() < 2 || !t.contains("-- #lobby (") {
        return Err(format!("wanted two ERROR lines and /who: {t:?}"));
    }
    if c.has_esc() {
        return Err(format!("an ERROR line echoed a raw ESC: {t:?}"));
    }
    Ok("invalid UTF-8 /nick and /join (text): ERROR lines, no ESC echoed, still in #lobby".into())
}

/// Terminal escapes and control characters in every kind of text, from text and binary users,
/// in `#lobby`. The observers check that no raw ESC reaches anyone.
async fn escapes(addr: SocketAddr) -> Outcome {
    let mut t = Raw::connect(addr).await?;
    let lines: &[&[u8]] = &[
        b"esc-say \x1b[2J\x1b]0;owned\x07 \x9b31m \x08\x7f \xe2\x80\xae rtl\n",
        b"/me esc-act \x1b[31mred\x1b[0m\n",
        b"/topic #lobby esc-topic \x1b[5m\n",
        b"/msg clieyes esc-dm \x1b[H\x1b[2J\n",
        b"/msg eyes esc-dm \x1b[H\x1b[2J\n",
        b"/part #lobby esc-part \x1b[8m\n",
        b"/join #lobby\n",
        b"/who\n",
    ];
    for l in lines {
        t.write(l).await?;
    }
    // Binary: a say whose text carries raw ESC bytes, bypassing `Text::new` in the sender.
    let hello = encode_payload(&ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        nick: nick("escbin"),
        resume: None,
    })
    .unwrap();
    let join = encode_payload(&ClientMsg::Join {
        room: room("#lobby"),
    })
    .unwrap();
    let say = [
        vec![4u8],
        bstr(b"#lobby"),
        vec![1],
        bstr(b"esc-bin \x1b[2J\x1b[?1049h\x1bP+q\x1b\\"),
    ]
    .concat();
    let mut b = Raw::connect(addr).await?;
    b.write(&binary(&[&hello, &join, &say])).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    b.read_until(deadline, |got| {
        String::from_utf8_lossy(got).contains("esc-bin")
    })
    .await;
    if !b.text().contains("esc-bin \u{FFFD}[2J") {
        return Err(format!("binary say not echoed cleaned: {:?}", b.text()));
    }
    t.read_until(deadline, |got| {
        String::from_utf8_lossy(got).contains("-- #lobby (")
    })
    .await;
    if t.has_esc() {
        return Err(format!("the sender got a raw ESC back: {:?}", t.text()));
    }
    Ok("ESC / C1 / bidi in says, actions, topics, DMs, part reasons: replaced by U+FFFD".into())
}

// ---------------------------------------------------------------------------------------------
// Observers of `#lobby`: a person on `nc` and the `natter` CLI in line mode.

/// A runtime of its own threads for one side of the test, shut down (without waiting) when
/// dropped, also when the test fails.
struct Side(Option<tokio::runtime::Runtime>);

impl Side {
    fn new(name: &str) -> Side {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("a runtime");
        Side(Some(rt))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("running until dropped").handle()
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_mix_leaves_legit_clients_whole() {
    // Both ends of ~600 attacker sockets at the peak live in this process.
    ensure_open_files(4096);
    let mut config = ServerConfig::local_test();
    config.hub.hello_timeout = HELLO_TIMEOUT;
    config.hub.text_detect_wait = DETECT_WAIT;
    // The server on threads of its own, as in its own process, and the well-behaved clients on
    // theirs: in one tokio scheduler the attackers' hundreds of client tasks (opening 800
    // sockets at once) queued ahead of the server's and the legit clients' work, and on a
    // loaded machine that queueing, not the server, made the legit p99 (552 ms, every slow
    // delivery in the attack's first second).
    let server_side = Side::new("server");
    let legit_side = Side::new("legit");
    let server = server_side
        .handle()
        .spawn(start(config))
        .await
        .expect("the server's start did not panic")
        .unwrap();
    let addr = server.local_addrs()[0];
    let rss_before = support::rss_kib();
    let test_deadline = Instant::now() + BUDGET;

    // Observers first, so they see everything said in #lobby.
    let mut eyes = Raw::connect(addr).await.unwrap();
    eyes.write(b"/nick eyes\n").await.unwrap();
    let home = tempfile_dir();
    let mut cli = tokio::process::Command::new(natter_cli())
        .args(["--lines", "--nick", "clieyes", "--room", "#lobby"])
        .arg(addr.to_string())
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", &home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("natter CLI starts");
    let cli_stdin = cli.stdin.take();
    let mut cli_out = cli.stdout.take().expect("piped stdout");
    // The CLI is in #lobby before anyone talks (else a /msg to it may come first and be refused).
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let joined = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&all).contains("you are in #lobby") {
        match tokio::time::timeout_at(joined, cli_out.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => all.extend_from_slice(&buf[..n]),
            other => panic!("the CLI never joined #lobby ({other:?}): {all:?}"),
        }
    }
    let cli_reader = tokio::spawn(async move {
        let mut all = all;
        let mut buf = buf;
        while let Ok(Ok(n)) = timeout(BUDGET, cli_out.read(&mut buf)).await {
            if n == 0 || all.len() > RAW_KEPT {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        all
    });

    // The well-behaved clients, all joined before anyone talks.
    let t0 = std::time::Instant::now();
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    let go = std::sync::Arc::new(Barrier::new(LEGIT + 1));
    for i in 0..LEGIT {
        let (s, dec) = legit_side
            .handle()
            .spawn(legit_hello(addr, i))
            .await
            .expect("legit hello did not panic");
        let (r, w) = s.into_split();
        readers.push(
            legit_side
                .handle()
                .spawn(legit_read(r, dec, i, t0, test_deadline)),
        );
        let go = go.clone();
        writers.push(legit_side.handle().spawn(async move {
            go.wait().await;
            legit_send(w, i, t0).await
        }));
    }
    let talk_time = PACE * MSGS as u32;
    let quiet_until = Instant::now() + talk_time + Duration::from_secs(2);
    let mut attacks: Vec<(&str, tokio::task::JoinHandle<Outcome>)> = vec![
        ("garbage_binary", tokio::spawn(garbage_binary(addr))),
        ("garbage_text", tokio::spawn(garbage_text(addr))),
        ("huge_prefix", tokio::spawn(huge_prefix(addr))),
        ("endless_line", tokio::spawn(endless_line(addr))),
        ("slowloris", tokio::spawn(slowloris(addr))),
        ("never_send", tokio::spawn(never_send(addr))),
        ("flood", tokio::spawn(flood(addr))),
        ("same_address", tokio::spawn(same_address(addr))),
        ("churn", tokio::spawn(churn(addr))),
        ("bad_utf8_binary", tokio::spawn(bad_utf8_binary(addr))),
        ("bad_utf8_text", tokio::spawn(bad_utf8_text(addr))),
        ("escapes", tokio::spawn(escapes(addr))),
    ];
    for i in 0..3 {
        attacks.push(("never_read", tokio::spawn(never_read(addr, i, quiet_until))));
    }
    go.wait().await;

    let mut failures = Vec::new();
    for (name, task) in attacks {
        let left = test_deadline.saturating_duration_since(Instant::now());
        match timeout(left, task).await {
            Ok(Ok(Ok(summary))) => eprintln!("attack {name} ({:.1?}): {summary}", t0.elapsed()),
            Ok(Ok(Err(e))) => failures.push(format!("{name}: {e}")),
            Ok(Err(e)) => failures.push(format!("{name}: panicked: {e}")),
            Err(_) => failures.push(format!("{name}: did not finish in time")),
        }
    }

    let mut latencies = Vec::new();
    for r in readers {
        let left = test_deadline.saturating_duration_since(Instant::now());
        let st = timeout(left, r)
            .await
            .expect("legit reader finishes")
            .expect("legit reader did not panic");
        if !st.missing.is_empty() || !st.duplicates.is_empty() || !st.unexpected.is_empty() {
            failures.push(format!(
                "legit{}: {} missing {:?}, duplicates {:?}, unexpected {:?}",
                st.who,
                st.missing.len(),
                &st.missing[..st.missing.len().min(5)],
                st.duplicates,
                st.unexpected
            ));
        }
        latencies.extend(st.latencies);
    }
    for w in writers {
        w.abort();
    }
    latencies.sort_unstable();
    let p50 = quantile(&latencies, 0.5);
    let p99 = quantile(&latencies, 0.99);
    let max = latencies.last().copied().unwrap_or_default();
    eprintln!("legit readers done at {:.1?}", t0.elapsed());
    let rss_after = support::rss_kib();
    let growth = rss_after.saturating_sub(rss_before);
    eprintln!(
        "attack mix: {} legit deliveries, p50 {p50:.1?}, p99 {p99:.1?}, max {max:.1?}; \
         RSS {rss_before} KiB -> {rss_after} KiB (+{growth} KiB)",
        latencies.len()
    );

    // The observers: saw the escapes (cleaned), never a raw ESC.
    eyes.write(b"/who\n").await.unwrap();
    eyes.read_for(Duration::from_secs(1)).await;
    drop(cli_stdin);
    let _ = cli.start_kill();
    let cli_bytes = timeout(Duration::from_secs(10), cli_reader)
        .await
        .expect("CLI output ends")
        .expect("CLI reader");
    let _ = timeout(Duration::from_secs(10), cli.wait()).await;
    let cli_text = String::from_utf8_lossy(&cli_bytes).into_owned();
    for (who, bytes, text) in [
        ("nc observer", &eyes.got, eyes.text()),
        ("CLI line mode", &cli_bytes, cli_text.clone()),
    ] {
        if bytes.contains(&0x1b) {
            failures.push(format!("{who} received a raw ESC: {text:?}"));
        }
        for marker in ["esc-say", "esc-act", "esc-topic", "esc-bin", "esc-dm"] {
            if !text.contains(marker) {
                failures.push(format!("{who} never saw {marker}: {text:?}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&home);
    eprintln!("observers done at {:.1?}", t0.elapsed());

    server_side
        .handle()
        .spawn(async move { timeout(Duration::from_secs(10), server.shutdown()).await })
        .await
        .expect("shutdown did not panic")
        .expect("shutdown in time")
        .expect("shutdown");

    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    assert_eq!(latencies.len(), LEGIT * LEGIT * MSGS, "deliveries");
    assert!(p99 <= P99_BOUND, "legit p99 {p99:?} > {P99_BOUND:?}");
    assert!(
        growth <= RSS_GROWTH_BOUND_KIB,
        "RSS grew {growth} KiB > {RSS_GROWTH_BOUND_KIB} KiB"
    );
}

/// A private, empty HOME for the CLI (so no user config file is read).
fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("natter-attack-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
