//! Issue 8, the bridge under attack: oversize WebSocket frames (a 2^40-byte header and a real
//! 1 MiB message), floods of continuation frames, a wrong Origin, upgrade requests that are not
//! proper handshakes, and 2,000 half-sent handshakes held open at once (the handshake timeout
//! bounds them) while a real browser still gets through and chats.
//!
//! Raw frames are written by hand (client frames masked with an all-zero key, which leaves the
//! payload as is) so nothing on the attacker's side limits what is sent.

mod common;

use common::*;
use futures_util::SinkExt;
use natter_bridge::BridgeConfig;
use natter_core::wire::{ClientMsg, PROTOCOL_VERSION, ServerMsg, decode_payload, encode_payload};
use natter_server::ServerConfig;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

const OPCODE_CONT: u8 = 0x0;
const OPCODE_BINARY: u8 = 0x2;

/// A masked client frame header for `len` payload bytes (mask key 0).
fn frame_header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut h = vec![(u8::from(fin) << 7) | opcode];
    if len < 126 {
        h.push(0x80 | len as u8);
    } else if len <= u64::from(u16::MAX) {
        h.push(0x80 | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(0x80 | 127);
        h.extend_from_slice(&len.to_be_bytes());
    }
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = frame_header(fin, opcode, payload.len() as u64);
    f.extend_from_slice(payload);
    f
}

fn upgrade_request(bridge: SocketAddr, origin: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {bridge}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Origin: {origin}\r\n\r\n"
    )
}

/// Sends `request` and reads the response head (up to the blank line, or what came before the
/// connection ended).
async fn request_head(bridge: SocketAddr, request: &[u8]) -> (TcpStream, String) {
    let mut s = within("connect", TcpStream::connect(bridge)).await.unwrap();
    within("send request", s.write_all(request)).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match within("response head", s.read(&mut b)).await {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

/// A raw WebSocket after a proper handshake.
async fn raw_ws(bridge: SocketAddr) -> TcpStream {
    let req = upgrade_request(bridge, &format!("http://{bridge}"));
    let (s, head) = request_head(bridge, req.as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 101"), "handshake: {head:?}");
    s
}

/// Reads server frames until a close frame (its code) or the end of the connection (`None`).
/// Everything before is skipped; bounded by [`STEP`] and 1 MiB.
async fn close_code_raw(s: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::new();
    let deadline = Instant::now() + STEP;
    loop {
        // Parse what is there.
        let mut at = 0;
        while buf.len() >= at + 2 {
            let op = buf[at] & 0x0f;
            let (len, hdr) = match buf[at + 1] & 0x7f {
                126 if buf.len() >= at + 4 => {
                    (u16::from_be_bytes([buf[at + 2], buf[at + 3]]) as usize, 4)
                }
                127 if buf.len() >= at + 10 => {
                    let mut l = [0u8; 8];
                    l.copy_from_slice(&buf[at + 2..at + 10]);
                    (u64::from_be_bytes(l) as usize, 10)
                }
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if buf.len() < at + hdr + len {
                break;
            }
            if op == 0x8 {
                let p = &buf[at + hdr..at + hdr + len];
                return (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
            }
            at += hdr + len;
        }
        let mut chunk = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) if buf.len() < 1 << 20 => buf.extend_from_slice(&chunk[..n]),
            Ok(Ok(_)) => panic!("more than 1 MiB without a close"),
            Err(_) => panic!("no close within {STEP:?}"),
        }
    }
}

/// The bridge still relays for a well-behaved browser (through a fake server that echoes one
/// payload back). Connections the bridge opened for earlier (attacking) WebSockets are skipped.
async fn still_relays(bridge: SocketAddr, server: &mut FakeServer) {
    let mut ws = connect(bridge).await;
    send_bin(&mut ws, b"still alive").await;
    let want =
        natter_core::wire::bridge_preamble("127.0.0.1", natter_core::hub::TEST_BRIDGE_SECRET);
    let mut found = None;
    for _ in 0..16 {
        let mut s = within("bridge connects to the server", server.conns.recv())
            .await
            .expect("fake server running");
        let mut got = vec![0u8; want.len() + 4 + 11];
        if let Ok(Ok(_)) = timeout(STEP, s.read_exact(&mut got)).await {
            assert_eq!(&got[..want.len()], &want[..], "preamble");
            assert_eq!(&got[want.len() + 4..], b"still alive");
            found = Some(s);
            break;
        }
    }
    let mut s = found.expect("the well-behaved browser's connection reached the server");
    write_all(&mut s, &[0, 0, 0, 2, b'o', b'k']).await;
    match next_msg(&mut ws).await {
        Some(Message::Binary(b)) => assert_eq!(&b[..], &[0, 0, 0, 2, b'o', b'k']),
        other => panic!("expected the relayed answer, got {other:?}"),
    }
}

#[tokio::test]
async fn oversize_frames_are_closed_with_1009_without_buffering() {
    let mut server = FakeServer::start().await;
    let bridge = bridge(server.addr).await;
    let addr = bridge.local_addr();

    // A header announcing 2^40 bytes, and a few of them.
    let mut s = raw_ws(addr).await;
    let mut f = frame_header(true, OPCODE_BINARY, 1 << 40);
    f.extend_from_slice(&[7u8; 1000]);
    within("write", s.write_all(&f)).await.unwrap();
    assert_eq!(close_code_raw(&mut s).await, Some(1009), "2^40-byte header");

    // A real 1 MiB binary message from a WebSocket library.
    let mut ws = connect(addr).await;
    let _ = ws.send(Message::Binary(vec![1u8; 1 << 20].into())).await;
    assert_eq!(u16::from(close_code(&mut ws).await), 1009, "1 MiB message");

    // Nothing of either reached the server.
    while let Ok(mut c) = server.conns.try_recv() {
        let mut b = [0u8; 64];
        let n = timeout(Duration::from_millis(200), c.read(&mut b)).await;
        if let Ok(Ok(n)) = n {
            assert!(
                n <= natter_core::wire::bridge_preamble(
                    "127.0.0.1",
                    natter_core::hub::TEST_BRIDGE_SECRET
                )
                .len(),
                "relayed {n} bytes"
            );
        }
    }
    still_relays(addr, &mut server).await;
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test]
async fn continuation_floods_are_closed_with_1009() {
    let mut server = FakeServer::start().await;
    let bridge = bridge(server.addr).await;
    let addr = bridge.local_addr();

    // 1 KiB fragments that never finish: the message grows past the limit.
    let mut s = raw_ws(addr).await;
    let mut out = frame(false, OPCODE_BINARY, &[1u8; 1024]);
    for _ in 0..64 {
        out.extend(frame(false, OPCODE_CONT, &[2u8; 1024]));
    }
    let _ = within("write", s.write_all(&out)).await;
    assert_eq!(close_code_raw(&mut s).await, Some(1009), "1 KiB fragments");

    // 20,000 one-byte fragments: as many frames as a flood cares to send, same limit.
    let mut s = raw_ws(addr).await;
    let mut out = frame(false, OPCODE_BINARY, &[1u8]);
    for _ in 0..20_000 {
        out.extend(frame(false, OPCODE_CONT, &[2u8]));
    }
    let _ = within("write", s.write_all(&out)).await;
    assert_eq!(close_code_raw(&mut s).await, Some(1009), "1-byte fragments");

    still_relays(addr, &mut server).await;
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test]
async fn wrong_origin_and_broken_upgrades_are_refused() {
    let mut server = FakeServer::start().await;
    let bridge = bridge(server.addr).await;
    let addr = bridge.local_addr();

    let req = upgrade_request(addr, "http://evil.example");
    let (_, head) = request_head(addr, req.as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 403"), "wrong origin: {head:?}");

    // Garbage after the request line.
    let (_, head) = request_head(
        addr,
        b"GET /ws HTTP/1.1\r\n\x00\xff\xfe\x1b[2J garbage\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400"), "garbage header: {head:?}");
    // Not HTTP at all.
    let (_, head) = request_head(
        addr,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400"), "TLS hello: {head:?}");
    // GET /ws without Upgrade.
    let (_, head) = request_head(
        addr,
        format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 426"), "no upgrade: {head:?}");
    // Upgrade without a key or version: no WebSocket (refused or just closed), nothing relayed.
    let (mut s, head) = request_head(
        addr,
        format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert!(
        !head.starts_with("HTTP/1.1 101"),
        "upgraded without a key: {head:?}"
    );
    assert!(sees_eof(&mut s).await, "connection not closed");
    // An endless header: cut at the head limit.
    let mut huge = format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\nX-Junk: ").into_bytes();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let (_, head) = request_head(addr, &huge).await;
    assert!(head.starts_with("HTTP/1.1 431"), "huge head: {head:?}");

    assert!(
        server.conns.try_recv().is_err(),
        "a refused request reached the server"
    );
    still_relays(addr, &mut server).await;
    within("shutdown", bridge.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_half_handshakes_are_timed_out_and_a_browser_gets_through() {
    const ATTACKERS: usize = 2000;
    // Both ends of every attacker's socket live in this process (plus the server's): raise a
    // soft limit of 1024 to the hard limit.
    let want = 3 * ATTACKERS as u64;
    let got = rlimit::increase_nofile_limit(want).unwrap_or(0);
    assert!(
        got >= want,
        "needs {want} open files, the limit is {got} (raise `ulimit -n`)"
    );
    let server = natter_server::start(ServerConfig::local_test())
        .await
        .unwrap();
    let config = BridgeConfig {
        handshake_timeout: Duration::from_secs(1),
        // Per-address caps would turn most of them away at once; this is about the timeout.
        max_connections_per_ip: 4 * ATTACKERS,
        // The production default (4096), so every attacker is accepted and its time is the
        // bridge's doing, not the listen backlog's.
        max_connections: BridgeConfig::default().max_connections,
        ..BridgeConfig::local_test(server.local_addrs()[0], "/nonexistent".into())
    };
    let max_connections = config.max_connections;
    let bridge = bridge_with(config).await;
    let addr = bridge.local_addr();
    let started = Instant::now();

    let mut attackers = tokio::task::JoinSet::new();
    for i in 0..ATTACKERS {
        // In batches, so the listen backlog (1024) never overflows: an overflowing backlog
        // delays connections by the kernel's SYN-ACK retries, which is not the bridge's doing.
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        attackers.spawn(async move {
            let mut s = match timeout(Duration::from_secs(30), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(format!("attacker {i}: connect failed: {e}")),
                Err(_) => return Err(format!("attacker {i}: connect hung")),
            };
            let half = format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: web");
            let _ = s.write_all(half.as_bytes()).await;
            let t = Instant::now();
            let mut b = [0u8; 256];
            // The bridge must end it: EOF, a reset, or an error response then EOF.
            loop {
                match timeout(Duration::from_secs(30), s.read(&mut b)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return Ok(t.elapsed()),
                    Ok(Ok(_)) => {}
                    Err(_) => return Err(format!("attacker {i}: still open after 30 s")),
                }
            }
        });
    }
    // Let them pile up, then a browser comes along (retrying as a page's session would).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let browser_started = Instant::now();
    let mut ws = None;
    while ws.is_none() && browser_started.elapsed() < Duration::from_secs(20) {
        let req = format!("ws://{addr}/ws");
        match timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(req),
        )
        .await
        {
            Ok(Ok((w, _))) => ws = Some(w),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    let mut ws = ws.expect("a browser got through within 20 s");
    let hello = encode_payload(&ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        nick: natter_core::Nick::new("patient").unwrap(),
        resume: None,
    })
    .unwrap();
    send_bin(&mut ws, &hello).await;
    match next_msg(&mut ws).await {
        Some(Message::Binary(b)) => assert!(
            matches!(decode_batch(&b).first(), Some(ServerMsg::Welcome { .. })),
            "not a welcome"
        ),
        other => panic!("expected a welcome, got {other:?}"),
    }
    let browser_took = browser_started.elapsed();

    let mut held = Vec::new();
    let mut failures = Vec::new();
    while let Some(r) = timeout(Duration::from_secs(60), attackers.join_next())
        .await
        .expect("attackers finish")
    {
        match r.expect("attacker task") {
            Ok(d) => held.push(d),
            Err(e) => failures.push(e),
        }
    }
    let all_done = started.elapsed();
    held.sort_unstable();
    eprintln!(
        "{ATTACKERS} half handshakes ({max_connections} slots, 1 s timeout): all closed after \
         {all_done:.1?}, longest held {:.1?}; browser through in {browser_took:.1?}",
        held.last().copied().unwrap_or_default()
    );
    assert!(
        failures.is_empty(),
        "{} failures, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    // Each is cut by the handshake timeout, not left to hang (generous for a loaded machine).
    assert!(
        held.last().copied().unwrap_or_default() < Duration::from_secs(5),
        "an attacker was held {:?}",
        held.last()
    );
    let _ = ws.close(None).await;
    within("bridge shutdown", bridge.shutdown()).await.unwrap();
    within("server shutdown", server.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_browser_cannot_forge_its_forwarded_address() {
    let server = natter_server::start(ServerConfig::local_test())
        .await
        .unwrap();
    let bridge = bridge(server.local_addrs()[0]).await;
    let mut ws = connect(bridge.local_addr()).await;
    // The bridge already sent the real `Forwarded` first; a second one (the browser's) would let
    // it dodge the per-address limits, even with the secret (a browser cannot know it).
    let forged = encode_payload(&ClientMsg::Forwarded {
        peer: "203.0.113.99".into(),
        secret: natter_core::hub::TEST_BRIDGE_SECRET.into(),
    })
    .unwrap();
    send_bin(&mut ws, &forged).await;
    let mut got = Vec::new();
    loop {
        match next_msg(&mut ws).await {
            Some(Message::Binary(b)) => got.extend(decode_batch(&b)),
            Some(Message::Close(f)) => {
                assert_eq!(f.map(|f| u16::from(f.code)), Some(1000), "{got:?}");
                break;
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => panic!("ended without a close frame; got {got:?}"),
        }
    }
    assert!(
        matches!(
            got.as_slice(),
            [
                ServerMsg::Error {
                    kind: natter_core::wire::ErrorKind::Protocol,
                    ..
                },
                ServerMsg::Bye { .. }
            ]
        ),
        "wanted Error{{Protocol}} and Bye, got {got:?}"
    );
    within("bridge shutdown", bridge.shutdown()).await.unwrap();
    within("server shutdown", server.shutdown()).await.unwrap();
}

/// The server messages in one bridge -> browser message (a batch of whole frames).
fn decode_batch(batch: &[u8]) -> Vec<ServerMsg> {
    natter_core::wire::frame_payloads(batch)
        .map(|p| decode_payload::<ServerMsg>(p.expect("whole frames")).expect("decodes"))
        .collect()
}
