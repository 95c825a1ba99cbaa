//! Clients that never read while 10,000 large messages flow (the issue asks for 5,000; twice that
//! makes the memory bound below sharp): each gets a gap marker (or is closed as too slow), a
//! reading member gets every message without a gap, and the server's memory stays bounded.
//! Alone in its test binary so the RSS it measures is this test's only.

mod support;

use natter_core::Millis;
use natter_core::wire::{ClientMsg, ErrorKind, EventKind, RoomEvent, ServerMsg};
use natter_server::{ServerConfig, start};
use std::time::Duration;
use support::*;
use tokio::time::timeout;

const N: usize = 10_000;
/// Near `MAX_TEXT_BYTES`, leaving room for the message number.
const TEXT_BYTES: usize = 1990;
const SLOW_READERS: usize = 4;
/// What the flood may add to this process's RSS. The hub bounds each connection's queue to
/// `OUTBOUND_HARD_MAX_BYTES` (320 KiB) and each room's history to `HISTORY_LEN` events (~0.5 MB
/// here); measured growth is about 4 MiB. A queue without a bound holds every message for the
/// silent readers (shared between them, encoded once): N × 2 KB = 20 MB, measured +20 MiB.
const RSS_BOUND_KIB: u64 = 10 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_that_never_read_do_not_hurt_anyone() {
    let mut config = ServerConfig::local_test_patient();
    // Flood control would pace one sender to 5 messages/s; this test is about the outbound side.
    config.hub.flood_burst = u32::try_from(N * 2).unwrap();
    config.hub.flood_refill = Millis(1);
    let server = start(config).await.unwrap();
    let addr = server.local_addrs()[0];

    let mut slow = Vec::new();
    for i in 0..SLOW_READERS {
        let (mut c, _) = BinClient::hello(addr, &format!("slow{i}"), None).await;
        c.join("#lobby").await;
        slow.push(c);
    }
    let (mut reader, _) = BinClient::hello(addr, "reader", None).await;
    reader.join("#lobby").await;
    let (mut sender, _) = BinClient::hello(addr, "sender", None).await;
    sender.join("#lobby").await;

    let body = "y".repeat(TEXT_BYTES);
    let rss_before = rss_kib();
    let started = std::time::Instant::now();

    // The reader counts every say, concurrently with the flood; a gap would mean it was
    // treated as slow. It tells the sender how far it got (below).
    let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader_got = read.clone();
    let reading = tokio::spawn(async move {
        let mut got = 0usize;
        while got < N {
            match reader.next_msg(Duration::from_secs(20)).await {
                Got::Msg(ServerMsg::Event(RoomEvent {
                    kind: EventKind::Say { .. },
                    ..
                })) => {
                    got += 1;
                    reader_got.store(got, std::sync::atomic::Ordering::Relaxed);
                }
                Got::Msg(m @ (ServerMsg::Gap { .. } | ServerMsg::Error { .. })) => {
                    panic!("reader: {m:?} after {got} messages")
                }
                Got::Msg(_) => {}
                other => panic!("reader: {other:?} after {got} messages"),
            }
        }
        got
    });
    // The sender keeps at most WINDOW messages unechoed, and at most WINDOW ahead of the
    // reader: as fast as the hub and a reading client go, so a reader that keeps up never
    // needs a gap (WINDOW messages are far below a connection's queue bound), and the ones
    // that never read must. Without the second bound a reader task descheduled on a loaded
    // machine fell ~400 messages behind while the echoes went on, and got a gap, rightly.
    const WINDOW: usize = 64;
    let echo = tokio::spawn(async move {
        let (mut sent, mut echoed) = (0usize, 0usize);
        while echoed < N {
            let ahead = |sent: usize| sent - read.load(std::sync::atomic::Ordering::Relaxed);
            while sent < N && sent - echoed < WINDOW && ahead(sent) < WINDOW {
                let id = sender.id();
                let frame = natter_core::wire::encode_frame(&ClientMsg::Say {
                    room: room("#lobby"),
                    id,
                    text: text(&format!("{sent} {body}")),
                })
                .unwrap();
                sender.send_raw(&frame).await;
                sent += 1;
            }
            if echoed == sent {
                // Everything echoed; waiting for the reader to catch up.
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            match sender.next_msg(Duration::from_secs(20)).await {
                Got::Msg(ServerMsg::Event(RoomEvent {
                    kind: EventKind::Say { .. },
                    ..
                })) => echoed += 1,
                Got::Msg(m @ (ServerMsg::Gap { .. } | ServerMsg::Error { .. })) => {
                    panic!("sender: {m:?} after {echoed} echoes")
                }
                Got::Msg(_) => {}
                other => panic!("sender: {other:?} after {echoed} echoes"),
            }
        }
        echoed
    });
    let got = timeout(Duration::from_secs(40), reading)
        .await
        .expect("reader timed out")
        .unwrap();
    assert_eq!(got, N);
    let echoed = timeout(Duration::from_secs(20), echo)
        .await
        .expect("sender timed out")
        .unwrap();
    assert_eq!(echoed, N);
    let flood_time = started.elapsed();
    let rss_after = rss_kib();
    eprintln!("flood of {N} took {flood_time:?}; RSS {rss_before} -> {rss_after} KiB");
    assert!(
        rss_after.saturating_sub(rss_before) < RSS_BOUND_KIB,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );

    // Now the silent clients read: each finds a gap marker, or was closed as too slow.
    for c in &mut slow {
        let mut gap_or_slow = false;
        let mut says = 0usize;
        loop {
            match c.next_msg(Duration::from_secs(5)).await {
                Got::Msg(ServerMsg::Gap { .. })
                | Got::Msg(ServerMsg::Error {
                    kind: ErrorKind::TooSlow,
                    ..
                }) => {
                    gap_or_slow = true;
                    break;
                }
                Got::Msg(ServerMsg::Event(RoomEvent {
                    kind: EventKind::Say { .. },
                    ..
                })) => says += 1,
                Got::Msg(_) => {}
                Got::Closed | Got::TimedOut => break,
            }
        }
        assert!(
            gap_or_slow,
            "{}: neither a gap nor a too-slow error after {says} messages",
            c.name
        );
        assert!(says < N, "{}: got everything, so it was not slow", c.name);
    }

    // And the room still works for others, promptly.
    let (mut late, _) = BinClient::hello(addr, "late", None).await;
    late.join("#lobby").await;
    let (mut late2, _) = BinClient::hello(addr, "late2", None).await;
    late2.join("#lobby").await;
    late.say("#lobby", "after the flood").await;
    late2
        .expect(
            |m| said(std::slice::from_ref(m)) == ["after the flood"],
            "chat goes on",
        )
        .await;
    timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("shutdown timed out")
        .expect("shutdown failed");
}
