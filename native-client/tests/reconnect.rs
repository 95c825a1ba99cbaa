//! Reconnecting: the server goes away and a new one comes up on the same port while a client
//! is open. The client reconnects by itself, says plainly that its session was not resumed (the
//! new server has no state), rejoins, and delivers what was typed during the outage once.

mod support;

use support::{Client, server, server_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reconnects_to_a_restarted_server_and_keeps_chatting() {
    let (first, addr) = server().await;
    let mut alice = Client::start("alice", addr, &[]);
    alice.expect("[#lobby] -- alice joined #lobby").await;
    alice.send("before").await;
    alice.expect("[#lobby] <alice> before").await;

    first.shutdown().await.expect("first server shuts down");
    alice
        .expect_where("a reconnect notice", |l| {
            l.starts_with("-- connection lost; reconnecting")
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
