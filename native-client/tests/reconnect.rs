//! Reconnecting: the server goes away and a new one comes up on the same port while a client
//! is open. The client reconnects by itself, says plainly that its session was not resumed (the
//! new server has no state), rejoins, and delivers what was typed during the outage once.

mod support;

use support::{Client, server, server_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reconnects_to_a_restarted_server_and_keeps_chatting() {
    let (first, addr) = server().await;
    let mut alice = Client::start("alice", addr, &[]);
    alice.expect_containing("-- you are in #lobby ").await;
    alice.send("before").await;
    alice.expect("[#lobby] <alice> before").await;

    first.shutdown().await.expect("first server shuts down");
    alice
        .expect_where("a reconnect notice", |l| {
            l.starts_with("-- connection lost")
        })
        .await;
    alice.send("during the outage").await;

    let second = server_on(addr).await;
    alice.expect("-- connected as alice").await;
    let notice = alice
        .expect_where("a not-resumed notice", |l| {
            l.starts_with("-- ") && l.contains("could not resume")
        })
        .await;
    assert!(notice.contains("rejoining"), "{notice}");
    // Rejoined quietly (no `you are in` again): the join's own event says it, once.
    alice.expect("[#lobby] -- alice joined #lobby").await;

    let mut bob = Client::start("bob", addr, &[]);
    bob.expect("-- connected as bob").await;
    alice.send("after").await;
    bob.expect("[#lobby] <alice> after").await;
    alice.expect("[#lobby] <alice> after").await;
    // Everything bob saw of alice's (history on join, then live) holds the outage line once,
    // before "after".
    assert_eq!(
        bob.count("[#lobby] <alice> during the outage"),
        1,
        "{:#?}",
        bob.seen
    );
    assert_eq!(
        alice.count("[#lobby] <alice> during the outage"),
        1,
        "{:#?}",
        alice.seen
    );
    assert_eq!(alice.count("[#lobby] <alice> before"), 1);

    alice.close_stdin();
    bob.close_stdin();
    assert!(alice.exit_status().await.success());
    assert!(bob.exit_status().await.success());
    second.shutdown().await.expect("second server shuts down");
}

/// A TCP relay between a client and the server that can cut every connection through it and
/// turn new ones away for a while: a dropped network, with the server still up.
struct Relay {
    addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<u64>,
    refuse: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(to: std::net::SocketAddr) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("relay binds");
        let addr = listener.local_addr().expect("relay address");
        let (cut, cut_rx) = tokio::sync::watch::channel(0u64);
        let refuse = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let refusing = refuse.clone();
        let task = tokio::spawn(async move {
            // Dropped with the accept task, which aborts every relayed connection.
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                if refusing.load(Ordering::SeqCst) {
                    continue;
                }
                let mut cut_rx = cut_rx.clone();
                cut_rx.mark_unchanged();
                conns.spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Relay {
            addr,
            cut,
            refuse,
            task,
        }
    }

    /// Drops every connection and refuses new ones until [`Relay::heal`].
    fn break_down(&self) {
        self.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn heal(&self) {
        self.refuse
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resumes_without_losing_or_repeating_lines() {
    let (server, addr) = server().await;
    let relay = Relay::start(addr).await;
    let mut alice = Client::start("alice", relay.addr, &[]);
    alice.expect_containing("-- you are in #lobby ").await;
    let mut bob = Client::start("bob", addr, &[]);
    bob.expect_containing("-- you are in #lobby ").await;
    alice.expect("[#lobby] -- bob joined #lobby").await;

    relay.break_down();
    alice
        .expect_where("a reconnect notice", |l| {
            l.starts_with("-- connection lost")
        })
        .await;
    bob.send("while you were away").await;
    bob.expect("[#lobby] <bob> while you were away").await;
    alice.send("typed while cut off").await;

    relay.heal();
    alice
        .expect("-- reconnected as alice; picked up where you left off")
        .await;
    alice.expect("[#lobby] <bob> while you were away").await;
    bob.expect("[#lobby] <alice> typed while cut off").await;
    bob.send("welcome back").await;
    alice.expect("[#lobby] <bob> welcome back").await;
    bob.expect("[#lobby] <bob> welcome back").await;

    assert_eq!(
        alice.count("[#lobby] <bob> while you were away"),
        1,
        "{:#?}",
        alice.seen
    );
    assert_eq!(
        alice.count("[#lobby] <alice> typed while cut off"),
        1,
        "{:#?}",
        alice.seen
    );
    assert_eq!(
        bob.count("[#lobby] <alice> typed while cut off"),
        1,
        "{:#?}",
        bob.seen
    );
    // Resumed: nobody saw alice leave and come back.
    assert!(
        !bob.seen.iter().any(|l| l.contains("alice quit")),
        "{:#?}",
        bob.seen
    );

    alice.close_stdin();
    bob.close_stdin();
    assert!(alice.exit_status().await.success());
    assert!(bob.exit_status().await.success());
    drop(relay);
    server.shutdown().await.expect("server shuts down");
}

/// A script piping more lines than the Session keeps for a reconnect (256) while the
/// connection is down: line mode reads no further until it is back, so every line is
/// delivered once and it exits 0, instead of having the lines past 256 refused by the Session
/// ("256 messages are still waiting to be sent") and exiting 0 without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipe_longer_than_what_a_reconnect_keeps_is_delivered_whole() {
    const LINES: usize = 600;
    let (server, addr) = support::server_with(support::long_history).await;
    let relay = Relay::start(addr).await;
    let mut alice = Client::start("alice", relay.addr, &[]);
    alice.expect_containing("-- you are in #lobby ").await;

    relay.break_down();
    alice
        .expect_where("a reconnect notice", |l| {
            l.starts_with("-- connection lost")
        })
        .await;
    // ~10 KB: the pipe holds what line mode does not read yet.
    for i in 1..=LINES {
        alice.send(&format!("piped {i}")).await;
    }
    alice.close_stdin();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    relay.heal();
    let status = alice.exit_status().await;
    alice.drain().await;
    let refused: Vec<&String> = alice
        .seen
        .iter()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
    for i in 1..=LINES {
        assert_eq!(
            alice.count(&format!("[#lobby] <alice> piped {i}")),
            1,
            "line {i}: {:#?}",
            alice.seen
        );
    }
    assert!(status.success(), "{status:?}");
    drop(relay);
    server.shutdown().await.expect("server shuts down");
}

/// The same with the connection down for good: line mode gives up at the end of `--wait`
/// with status 1 (the lines it could not read were not sent), rather than wait for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipe_held_up_by_a_connection_down_for_good_exits_1_after_the_wait() {
    let (server, addr) = support::server_with(support::long_history).await;
    let relay = Relay::start(addr).await;
    let mut alice = Client::start("alice", relay.addr, &["--wait", "1"]);
    alice.expect_containing("-- you are in #lobby ").await;
    relay.break_down();
    for i in 1..=300 {
        alice.send(&format!("piped {i}")).await;
    }
    let status = alice.exit_status().await;
    assert_eq!(status.code(), Some(1), "{:#?}", alice.seen);
    drop(relay);
    server.shutdown().await.expect("server shuts down");
}

/// Several addresses: one nobody listens on is passed over at once for the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_refuses_is_passed_over_for_the_next() {
    let (_held, dead) = support::refusing_addr();
    let (server, addr) = server().await;
    let t0 = std::time::Instant::now();
    let mut alice = support::Client::start_with(
        "alice",
        &["--nick".into(), "alice".into(), format!("{dead},{addr}")],
    );
    alice.expect("-- connected as alice").await;
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(3),
        "no backoff before the second address: {:?}",
        t0.elapsed()
    );
    alice.send("hi").await;
    alice.expect("[#lobby] <alice> hi").await;
    alice.close_stdin();
    assert!(alice.exit_status().await.success());
    server.shutdown().await.expect("server shuts down");
}

/// Line mode says who is away once per change: the list when it joins, a change missed while
/// its connection was down (not the whole list again at the resume), someone coming back
/// meanwhile (with the next news), and someone away joining (after the join line).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_mode_says_who_is_away_once_per_change_across_resumes() {
    let (server, addr) = server().await;
    let relay = Relay::start(addr).await;
    let mut bob = Client::start("bob", addr, &[]);
    bob.expect_containing("-- you are in #lobby ").await;
    bob.send("/away at lunch").await;
    bob.expect("-- you are away: at lunch (/back when you are back)")
        .await;
    let mut alice = Client::start("alice", relay.addr, &[]);
    alice.expect_containing("-- you are in #lobby ").await;
    alice.expect("-- away here: bob (at lunch)").await;

    // A change while the connection is down: said once it is back, the list not again.
    relay.break_down();
    alice
        .expect_where("a reconnect notice", |l| {
            l.starts_with("-- connection lost")
        })
        .await;
    bob.send("/away gone fishing").await;
    bob.expect("-- you are away: gone fishing (/back when you are back)")
        .await;
    relay.heal();
    alice
        .expect("-- reconnected as alice; picked up where you left off")
        .await;
    alice.expect("-- bob is away: gone fishing").await;

    // Back while the connection is down: said with the next news.
    relay.break_down();
    alice
        .expect_where("a reconnect notice", |l| {
            l.starts_with("-- connection lost")
        })
        .await;
    bob.send("/back").await;
    bob.expect("-- you are back (no longer away)").await;
    relay.heal();
    alice
        .expect("-- reconnected as alice; picked up where you left off")
        .await;
    bob.send("hello again").await;
    let next = alice
        .expect_where("bob's return or line", |l| l.contains("bob"))
        .await;
    assert_eq!(next, "-- bob is back", "{:#?}", alice.seen);
    alice.expect("[#lobby] <bob> hello again").await;

    // Someone away joining a room: after the join line.
    alice.send("/join #den").await;
    alice.expect_containing("-- you are in #den ").await;
    let mut carol = Client::start("carol", addr, &["--room", "#side"]);
    carol.expect_containing("-- you are in #side ").await;
    carol.send("/away brb").await;
    carol
        .expect("-- you are away: brb (/back when you are back)")
        .await;
    carol.send("/join #den").await;
    alice.expect("[#den] -- carol joined #den").await;
    let next = alice.expect_where("the next line", |_| true).await;
    assert_eq!(next, "-- carol is away: brb");

    for (line, times) in [
        ("-- away here: bob (at lunch)", 1),
        ("-- bob is away: gone fishing", 1),
        ("-- bob is back", 1),
    ] {
        assert_eq!(alice.count(line), times, "{line}: {:#?}", alice.seen);
    }
    for c in [&mut alice, &mut bob, &mut carol] {
        c.close_stdin();
        assert!(c.exit_status().await.success());
    }
    drop(relay);
    server.shutdown().await.expect("server shuts down");
}
