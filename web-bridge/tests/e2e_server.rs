//! End to end through the real natter-server: browsers (core's `Session` with
//! `Transport::Messages`, as the page runs it: [`common::user::User`]) chat through the bridge,
//! and reconnect after the server restarts.

mod common;

use common::user::User;
use common::*;
use natter_bridge::BridgeConfig;
use natter_core::session::{ConnState, Event, Transport};
use natter_core::wire::EventKind;
use natter_server::ServerConfig;

fn said(ev: &Event, from: &str, text: &str) -> bool {
    matches!(ev, Event::Room(r)
        if r.from.as_str() == from
            && matches!(&r.kind, EventKind::Say { text: t, .. } if t.as_str() == text))
}

fn room_join(ev: &Event, who: &str) -> bool {
    matches!(ev, Event::Room(r) if r.from.as_str() == who && r.kind == EventKind::Join)
}

fn joined(ev: &Event) -> bool {
    matches!(ev, Event::Joined { .. })
}

#[tokio::test]
async fn two_browsers_chat_through_the_real_server() {
    let server = natter_server::start(ServerConfig::local_test())
        .await
        .unwrap();
    let bridge = bridge_with(BridgeConfig::local_test(
        server.local_addrs()[0],
        "/nonexistent".into(),
    ))
    .await;
    let mut alice = User::new("alice", bridge.local_addr(), Transport::Messages, 1);
    let mut bob = User::new("bob", bridge.local_addr(), Transport::Messages, 2);
    alice.run_until_new("alice joins", STEP, joined).await;
    bob.run_until_new("bob joins", STEP, joined).await;

    alice.say("hello from the browser").await;
    bob.run_until_new("bob hears alice", STEP, |e| {
        said(e, "alice", "hello from the browser")
    })
    .await;
    bob.say("hi alice <script>").await;
    alice
        .run_until_new("alice hears bob", STEP, |e| {
            said(e, "bob", "hi alice <script>")
        })
        .await;
    // Her own line came back once, in order, before bob's answer.
    let own: Vec<_> = alice
        .events
        .iter()
        .filter(|e| said(e, "alice", "hello from the browser"))
        .collect();
    assert_eq!(own.len(), 1);

    within("bridge shutdown", bridge.shutdown()).await.unwrap();
    within("server shutdown", server.shutdown()).await.unwrap();
}

#[tokio::test]
async fn browsers_reconnect_when_the_server_comes_back() {
    let server = natter_server::start(ServerConfig::local_test())
        .await
        .unwrap();
    let server_addr = server.local_addrs()[0];
    let bridge = bridge_with(BridgeConfig::local_test(server_addr, "/nonexistent".into())).await;
    let mut alice = User::new("alice", bridge.local_addr(), Transport::Messages, 3);
    let mut bob = User::new("bob", bridge.local_addr(), Transport::Messages, 4);
    alice.run_until_new("alice joins", STEP, joined).await;
    bob.run_until_new("bob joins", STEP, joined).await;

    // Server gone: the bridge closes the WebSockets and the sessions start reconnecting.
    within("server shutdown", server.shutdown()).await.unwrap();
    let reconnecting = |e: &Event| matches!(e, Event::State(ConnState::Reconnecting { .. }));
    alice
        .run_until_new("alice notices", STEP, reconnecting)
        .await;
    bob.run_until_new("bob notices", STEP, reconnecting).await;
    // While it is down, attempts through the bridge fail cleanly and keep being retried.
    let attempts = |u: &User| {
        u.events
            .iter()
            .filter(|e| matches!(e, Event::State(ConnState::Reconnecting { .. })))
            .count()
    };
    let before = attempts(&alice);
    alice
        .run_until_new(
            "alice retries",
            STEP,
            |e| matches!(e, Event::State(ConnState::Reconnecting { attempt, .. }) if *attempt >= 2),
        )
        .await;
    assert!(attempts(&alice) > before);

    // Back on the same address: both get in again and talk.
    let mut config = ServerConfig::local_test();
    config.listen = vec![server_addr];
    let server = natter_server::start(config).await.unwrap();
    // (A fresh server cannot resume the sessions; they start anew and rejoin their rooms.)
    alice
        .run_until_new("alice rejoins", STEP, |e| room_join(e, "alice"))
        .await;
    bob.run_until_new("bob rejoins", STEP, |e| room_join(e, "bob"))
        .await;
    alice.say("back again").await;
    bob.run_until_new("bob hears alice", STEP, |e| said(e, "alice", "back again"))
        .await;

    within("bridge shutdown", bridge.shutdown()).await.unwrap();
    within("server shutdown", server.shutdown()).await.unwrap();
}
