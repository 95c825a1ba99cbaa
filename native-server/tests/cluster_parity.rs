//! A cluster behaves as one node where its users can tell, against a real nats-server with
//! JetStream started by each test on a free port and stopped by its pid: a direct message to
//! an account with nothing connected on any node is kept for it and shown at its next sign-in
//! on any node, once.

mod support;

use natter_cluster::test_server::NatsServer as Nats;
use natter_core::MsgId;
use natter_core::wire::{ClientMsg, ServerMsg};
use natter_server::Server;
use std::net::SocketAddr;
use std::time::Duration;
use support::{BinClient, TextClient, nick, text};

/// A natter-server node in this process, in the cluster at `nats`.
async fn node(nats: &Nats) -> Server {
    support::cluster_node(nats.url()).await
}

fn addr(s: &Server) -> SocketAddr {
    s.local_addrs()[0]
}

/// An nc user on `at` signs in to `account`, tried again while that node has not heard of
/// the account yet (accounts reach other nodes through a watch, a moment later).
async fn nc_login(at: SocketAddr, account: &str, password: &str) -> TextClient {
    for _ in 0..10 {
        let (mut c, _) = TextClient::entered(at, "visitor").await;
        c.send(&format!("/login {account} {password}")).await;
        let got = c
            .expect(
                |l| l.contains("signed in as") || l.contains("error"),
                "an answer",
            )
            .await;
        if got.contains(&format!("you are signed in as {account}")) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("{account} did not sign in at {at}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_to_an_account_with_nothing_connected_waits_for_its_next_sign_in_on_any_node()
 {
    let nats = Nats::start();
    let (a, b) = (node(&nats).await, node(&nats).await);
    let (mut erin, _) = TextClient::entered(addr(&a), "erin").await;
    erin.send("/nick erin").await;
    erin.expect_has("you are now known as erin").await;
    erin.send("/register a long passphrase").await;
    erin.expect_has("you are signed in as erin").await;
    erin.send("/quit").await;
    erin.expect_closed().await;
    // A binary sender on the other node: its echo, then that the message waits, as on one
    // node (it was refused, "direct messages are not kept").
    let (mut bob, _) = BinClient::hello(addr(&b), "bob", None).await;
    for (id, words) in [(1, "lunch tomorrow?"), (2, "or friday")] {
        bob.send(&ClientMsg::Msg {
            to: nick("erin"),
            id: MsgId(id),
            text: text(words),
        })
        .await;
        let echo = bob
            .expect(
                |m| matches!(m, ServerMsg::Direct(_) | ServerMsg::Error { .. }),
                "the echo",
            )
            .await;
        assert!(
            matches!(&echo, ServerMsg::Direct(dm) if dm.text.as_str() == words),
            "{echo:?}"
        );
        bob.expect(
            |m| matches!(m, ServerMsg::Away { nick, away: Some(w) } if nick.as_str() == "erin" && w.as_str() == "not connected; your message waits for them"),
            "that it waits",
        )
        .await;
    }
    // The node the sender was on goes; the messages are the cluster's.
    drop(bob);
    b.shutdown().await.expect("the node stops");
    let mut there = nc_login(addr(&a), "erin", "a long passphrase").await;
    there.expect_has("*bob* lunch tomorrow?").await;
    there.expect_has("*bob* or friday").await;
    // Once: signed in again on a node started since, they are not there.
    let c = node(&nats).await;
    let mut again = nc_login(addr(&c), "erin", "a long passphrase").await;
    let rest = again.lines_for(Duration::from_millis(800)).await;
    assert!(
        !rest.iter().any(|l| l.contains("lunch tomorrow?")),
        "delivered once: {rest:?}"
    );
}
