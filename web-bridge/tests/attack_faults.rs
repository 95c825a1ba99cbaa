//! Issue 8, faults: the bridge process killed with SIGKILL under connected browsers (they
//! reconnect through a restarted bridge and resume: nothing lost, nothing twice); the server's
//! connection cut in the middle of a frame (the client reconnects and resumes, no panic); a member
//! whose queue fills up (a gap marker, then the refill from history brings back every message).
//!
//! Browsers are core's `Session` with `Transport::Messages` over tokio-tungstenite, as the page
//! runs it; the CLI's side is the same `Session` with `Transport::Stream` over TCP.

mod common;

use common::user::User;
use common::within;
use natter_core::Millis;
use natter_core::session::{ConnState, Event, Transport};
use natter_core::wire::EventKind;
use natter_server::ServerConfig;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The longest one `run_until` waits (reconnect backoff included).
const RUN: Duration = Duration::from_secs(20);

fn said(ev: &Event, text: &str) -> bool {
    matches!(ev, Event::Room(r) if matches!(&r.kind, EventKind::Say { text: t, .. } if t.as_str() == text))
}

fn joined(ev: &Event) -> bool {
    matches!(ev, Event::Joined { .. })
}

fn resumed(ev: &Event) -> bool {
    matches!(ev, Event::Welcome { resumed: true, .. })
}

fn reconnecting(ev: &Event) -> bool {
    matches!(ev, Event::State(ConnState::Reconnecting { .. }))
}

/// Asserts every text in `want` arrived exactly once (failures name texts by their first 24
/// characters, and list the gap markers seen).
fn exactly_once(u: &User, want: &[String]) {
    let counts = u.said_counts();
    let short = |t: &String| t.chars().take(24).collect::<String>();
    let missing: Vec<String> = want
        .iter()
        .filter(|t| !counts.contains_key(*t))
        .map(short)
        .collect();
    let doubled: Vec<String> = want
        .iter()
        .filter(|t| counts.get(*t).is_some_and(|&n| n > 1))
        .map(short)
        .collect();
    let gaps: Vec<&Event> = u
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Gap { .. } | Event::Welcome { .. } | Event::Error { .. }
            )
        })
        .collect();
    assert!(
        missing.is_empty() && doubled.is_empty(),
        "{}: missing {missing:?}, doubled {doubled:?}; gaps, welcomes, errors: {gaps:?}",
        u.name
    );
}

// ---------------------------------------------------------------------------------------------
// The bridge as a process

/// A `natter-bridge` process; killed when dropped.
struct BridgeProc {
    child: Child,
    addr: SocketAddr,
}

async fn spawn_bridge(listen: SocketAddr, server: SocketAddr) -> BridgeProc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter-bridge"))
        .args([
            "--listen",
            &listen.to_string(),
            "--server",
            &server.to_string(),
        ])
        .args(["--www", "/nonexistent"])
        .env("RUST_LOG", "warn")
        .env("NATTER_BRIDGE_SECRET", natter_core::hub::TEST_BRIDGE_SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("natter-bridge starts");
    // Skip any other output (a bounded number of lines) until the address line.
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    for _ in 0..100 {
        let line = within("the bridge says where it listens", lines.next_line())
            .await
            .expect("reads stdout")
            .expect("the bridge printed its address before ending");
        if let Some(addr) = line
            .strip_prefix("natter-bridge: open http://")
            .and_then(|r| r.strip_suffix('/'))
            .and_then(|a| a.parse().ok())
        {
            // Keep draining stdout so the bridge never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return BridgeProc { child, addr };
        }
    }
    panic!("the bridge never printed its address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_bridge_browsers_resume_through_a_restarted_one() {
    let server = natter_server::start(ServerConfig::local_test())
        .await
        .unwrap();
    let saddr = server.local_addrs()[0];
    let mut bridge = spawn_bridge("127.0.0.1:0".parse().unwrap(), saddr).await;
    let baddr = bridge.addr;

    let mut alice = User::new("alice", baddr, Transport::Messages, 1);
    let mut bob = User::new("bob", baddr, Transport::Messages, 2);
    let mut carol = User::new("carol", saddr, Transport::Stream, 3);
    for u in [&mut alice, &mut bob, &mut carol] {
        u.run_until("joins #lobby", RUN, joined).await;
    }
    alice.say("before the crash").await;
    bob.run_until("bob hears alice", RUN, |e| said(e, "before the crash"))
        .await;
    carol
        .run_until("carol hears alice", RUN, |e| said(e, "before the crash"))
        .await;

    // SIGKILL: no close frames, no goodbyes; the server just sees the bridge's sockets end.
    bridge.child.start_kill().expect("kill -9");
    within("the bridge dies", bridge.child.wait())
        .await
        .unwrap();
    alice.run_until("alice notices", RUN, reconnecting).await;
    bob.run_until("bob notices", RUN, reconnecting).await;

    // Meanwhile the room goes on, and alice types while offline.
    let missed: Vec<String> = (1..=5)
        .map(|i| format!("while the bridge was down {i}"))
        .collect();
    for t in &missed {
        carol.say(t).await;
    }
    for t in &missed {
        carol
            .run_until("carol's own echo", RUN, |e| said(e, t))
            .await;
    }
    alice.say("typed offline").await;

    let _bridge2 = spawn_bridge(baddr, saddr).await;
    alice.run_until("alice resumes", RUN, resumed).await;
    bob.run_until("bob resumes", RUN, resumed).await;
    for t in &missed {
        alice
            .run_until("alice gets what she missed", RUN, |e| said(e, t))
            .await;
        bob.run_until("bob gets what he missed", RUN, |e| said(e, t))
            .await;
    }
    bob.run_until("bob gets the offline line", RUN, |e| {
        said(e, "typed offline")
    })
    .await;
    alice
        .run_until("alice's offline line is acknowledged", RUN, |e| {
            said(e, "typed offline")
        })
        .await;
    carol
        .run_until("carol gets the offline line", RUN, |e| {
            said(e, "typed offline")
        })
        .await;
    // Let anything doubled arrive before counting.
    bob.say("last").await;
    for u in [&mut alice, &mut bob, &mut carol] {
        u.run_until("the last line", RUN, |e| said(e, "last")).await;
    }
    let mut all = missed.clone();
    all.extend([
        "before the crash".into(),
        "typed offline".into(),
        "last".into(),
    ]);
    for u in [&alice, &bob, &carol] {
        exactly_once(u, &all);
    }
    // Nobody saw a quit or a second join for the resumed users.
    for u in [&alice, &bob, &carol] {
        let churn = u
            .events
            .iter()
            .filter(|e| matches!(e, Event::Room(r) if matches!(r.kind, EventKind::Quit { .. } | EventKind::Part { .. })))
            .count();
        assert_eq!(churn, 0, "{}: saw quits/parts: {:#?}", u.name, u.events);
    }
    within("server shutdown", server.shutdown()).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy that can cut the server-to-client direction in the middle of a frame.

/// Relays to `server`; when `cut` is set, the next server-to-client frame is passed on only
/// up to its header and one payload byte, then both sockets are closed (and `cut` cleared).
async fn cutting_proxy(
    server: SocketAddr,
    cut: Arc<AtomicBool>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((client, _)) = l.accept().await {
            let cut = cut.clone();
            conns.spawn(async move {
                let Ok(upstream) = TcpStream::connect(server).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut ur, mut uw) = upstream.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut uw).await;
                });
                // Frame tracking: header bytes seen of the current frame, payload bytes left.
                let (mut hdr, mut hdr_len, mut left) = ([0u8; 4], 0usize, 0usize);
                let mut buf = vec![0u8; 16 * 1024];
                'relay: loop {
                    let n = match ur.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    for i in 0..n {
                        let b = buf[i];
                        if left == 0 {
                            hdr[hdr_len] = b;
                            hdr_len += 1;
                            if hdr_len == 4 {
                                left = u32::from_be_bytes(hdr) as usize;
                                hdr_len = 0;
                            }
                        } else {
                            left -= 1;
                            if left > 0 && cut.swap(false, Ordering::SeqCst) {
                                let _ = cw.write_all(&buf[..=i]).await;
                                let _ = cw.shutdown().await;
                                break 'relay;
                            }
                        }
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_mid_frame_reconnects_and_resumes() {
    let server = natter_server::start(ServerConfig::local_test())
        .await
        .unwrap();
    let saddr = server.local_addrs()[0];
    let cut = Arc::new(AtomicBool::new(false));
    let (paddr, proxy) = cutting_proxy(saddr, cut.clone()).await;

    let mut dave = User::new("dave", paddr, Transport::Stream, 4);
    let mut erin = User::new("erin", saddr, Transport::Stream, 5);
    dave.run_until("dave joins", RUN, joined).await;
    erin.run_until("erin joins", RUN, joined).await;

    cut.store(true, Ordering::SeqCst);
    let long = format!("cut me in half {}", "x".repeat(1500));
    erin.say(&long).await;
    erin.run_until("erin's echo", RUN, |e| said(e, &long)).await;
    // dave gets the header and one byte of that frame, then EOF.
    dave.run_until("dave loses the connection", RUN, reconnecting)
        .await;
    assert!(!cut.load(Ordering::SeqCst), "the proxy never cut");
    assert!(
        !dave.events.iter().any(|e| said(e, &long)),
        "a cut frame was delivered"
    );
    dave.run_until("dave resumes", RUN, resumed).await;
    dave.run_until("dave gets the cut message", RUN, |e| said(e, &long))
        .await;
    erin.say("after the cut").await;
    dave.run_until("dave keeps chatting", RUN, |e| said(e, "after the cut"))
        .await;
    exactly_once(&dave, &[long, "after the cut".into()]);
    proxy.abort();
    within("server shutdown", server.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_gets_a_gap_marker_then_the_history_refill() {
    // More than the kernel can hold for a reader that stopped: on loopback the server's send
    // buffer grows to megabytes (tcp_wmem's maximum, 4 MiB here), so what overflows the
    // server's own queue must not fit there either, or the test only passes when the hub
    // happens to outrun its writer.
    const N: usize = 3_000;
    let mut config = ServerConfig::local_test();
    // A small outbound queue so a member that stops reading hits it quickly.
    config.hub.outbound_max_bytes = 16 * 1024;
    config.hub.outbound_max_msgs = 64;
    // The history holds all N, so the refill can bring back everything skipped.
    config.hub.history_len = N + 100;
    config.hub.history_budget_bytes = 64 << 20;
    // The sender is allowed to go fast: this test is about the receiving side.
    config.hub.flood_burst = 10 * N as u32;
    config.hub.flood_refill = Millis(1);
    let server = natter_server::start(config).await.unwrap();
    let saddr = server.local_addrs()[0];

    let mut slow = User::new("slow", saddr, Transport::Stream, 6);
    slow.small_rcvbuf = true;
    let mut fast = User::new("fast", saddr, Transport::Stream, 7);
    slow.run_until("slow joins", RUN, joined).await;
    fast.run_until("fast joins", RUN, joined).await;
    fast.session
        .set_flood_limits(10 * N as u32, Millis(0), fast.now());

    slow.paused = true;
    let texts: Vec<String> = (0..N)
        .map(|i| format!("{i:04} {}", "z".repeat(1900)))
        .collect();
    // In waves: a session keeps at most SESSION_MAX_PENDING messages unacknowledged.
    for wave in texts.chunks(200) {
        for t in wave {
            fast.say(t).await;
        }
        let last = wave.last().unwrap().clone();
        fast.run_until("a wave echoed", RUN, |e| said(e, &last))
            .await;
    }

    slow.paused = false;
    slow.run_until("slow gets a gap marker", RUN, |e| {
        matches!(e, Event::Gap { .. })
    })
    .await;
    // Live traffic, the refills of both gaps: whatever order, until every text is there.
    let deadline = Instant::now() + RUN;
    while Instant::now() < deadline && {
        let counts = slow.said_counts();
        texts.iter().any(|t| !counts.contains_key(t))
    } {
        slow.run(Duration::from_millis(200), |_| false).await;
    }
    // Anything delivered twice would come now.
    slow.run(Duration::from_millis(500), |_| false).await;
    // The history still holds all N: after the refill every one is there once.
    exactly_once(&slow, &texts);
    // And in order, by seq.
    let seqs: Vec<u64> = slow
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Room(r) => Some(r.seq.0),
            _ => None,
        })
        .collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), seqs.len(), "a seq twice: {seqs:?}");
    within("server shutdown", server.shutdown()).await.unwrap();
}
