//! Issue 8, a person on `nc` who stops reading while a room is busy: the server skips what does
//! not fit their queue and, once they read again, says how many messages they missed (or closes
//! them as too slow); every message is accounted for, in order, and the sender is not slowed.

mod attack_support;

use attack_support::{End, Raw};
use natter_core::Millis;
use natter_core::wire::{ClientMsg, EventKind, RoomEvent, ServerMsg};
use natter_server::{ServerConfig, start};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;
use tokio::time::{Instant, timeout};

mod support;
use support::{BinClient, room, text};

/// Enough that the kernel's socket buffers (several MiB on loopback) cannot hide the backlog.
const N: usize = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_user_who_stops_reading_is_told_what_was_missed() {
    let mut config = ServerConfig::local_test_patient();
    config.hub.outbound_max_bytes = 16 * 1024;
    config.hub.outbound_max_msgs = 64;
    config.hub.flood_burst = 10 * N as u32;
    config.hub.flood_refill = Millis(1);
    let server = start(config).await.unwrap();
    let addr = server.local_addrs()[0];

    // The reader: a small receive buffer so the backlog stays in the server's queue.
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = timeout(Duration::from_secs(10), sock.connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut nc = Raw {
        stream,
        got: Vec::new(),
        total: 0,
    };
    nc.write(b"/join #busy\n").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    nc.read_until(deadline, |b| {
        String::from_utf8_lossy(b).contains("you are in #busy")
    })
    .await;
    assert!(nc.text().contains("you are in #busy"), "{:?}", nc.text());

    let (mut sender, _) = BinClient::hello(addr, "sender", None).await;
    sender.join("#busy").await;
    let body = "z".repeat(1990);
    let started = Instant::now();
    // At most a few unechoed at a time: the sender reads its echoes and keeps up, so any gap
    // is the silent reader's alone.
    let (mut sent, mut echoed) = (0usize, 0usize);
    while echoed < N {
        while sent < N && sent - echoed < 8 {
            let id = sender.id();
            sender
                .send(&ClientMsg::Say {
                    room: room("#busy"),
                    id,
                    text: text(&format!("{sent:04} {body}")),
                })
                .await;
            sent += 1;
        }
        match sender.next_msg(Duration::from_secs(20)).await {
            support::Got::Msg(ServerMsg::Event(RoomEvent {
                kind: EventKind::Say { .. },
                ..
            })) => echoed += 1,
            support::Got::Msg(m @ (ServerMsg::Gap { .. } | ServerMsg::Error { .. })) => {
                panic!("the sender suffered: {m:?}")
            }
            support::Got::Msg(_) => {}
            other => panic!("sender: {other:?} after {echoed} echoes"),
        }
    }
    let send_time = started.elapsed();

    // Now read everything, line by line (several MiB: counted, not kept). The receive buffer
    // grows first: drained through a 4 KiB window, the megabytes waiting in the server's send
    // buffer could stall on TCP's zero-window probes, whose waits double up to two minutes
    // (one full run took 296 s here).
    socket2::SockRef::from(&nc.stream)
        .set_recv_buffer_size(4 << 20)
        .unwrap();
    let (mut said, mut missed, mut errors, mut esc) = (Vec::new(), Vec::new(), Vec::new(), false);
    let mut line = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut closed = false;
    let read_deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < read_deadline,
            "still reading after 60 s: {} lines so far",
            said.len()
        );
        let n = match timeout(Duration::from_secs(3), nc.stream.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => n,
        };
        for &b in &buf[..n] {
            esc |= b == 0x1b;
            if b != b'\n' {
                assert!(line.len() < 8192, "a line without end");
                line.push(b);
                continue;
            }
            let l = String::from_utf8_lossy(&line).trim_end().to_owned();
            line.clear();
            if let Some(rest) = l.strip_prefix("<sender> ") {
                said.push(rest[..4].parse::<usize>().expect("a number"));
            } else if let Some(i) = l.find("missed here (#busy #") {
                // "-- N messages missed here (#busy #first..#last)"
                let range = l[i + "missed here (#busy #".len()..].trim_end_matches(')');
                let (a, b) = range.split_once("..#").expect("a range");
                missed.push((a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap()));
            } else if l.starts_with("ERROR:") {
                errors.push(l);
            }
        }
    }
    let end = if closed { End::Closed } else { End::Open };
    let missed_count: u64 = missed.iter().map(|(a, b)| b - a + 1).sum();
    eprintln!(
        "sent {N} in {send_time:.1?}; the silent reader then got {} lines, {missed_count} missed in {} markers, end {end:?}",
        said.len(),
        missed.len()
    );
    assert!(
        said.windows(2).all(|w| w[0] < w[1]),
        "out of order or doubled: {said:?}"
    );
    if end == End::Closed {
        assert!(!errors.is_empty(), "closed without a word");
    } else {
        assert!(
            !missed.is_empty(),
            "no gap marker though the queue overflowed"
        );
        assert_eq!(
            said.len() as u64 + missed_count,
            N as u64,
            "every message is either shown or counted as missed"
        );
    }
    assert!(!esc && !nc.has_esc(), "a raw ESC reached the text user");
    timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("shutdown in time")
        .expect("shutdown");
}
