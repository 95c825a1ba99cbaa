//! Server admins' walls across nodes against a real nats-server (started by the test on a free
//! port, stopped by its pid): a `/wall` or `WALLOPS` said on one node is handed to every other
//! node's hub, not back to its own (whose users have it already).

mod common;

use common::*;
use natter_cluster::test_server::NatsServer;
use natter_cluster::{ClusterIn, Node};
use natter_core::hub::ClusterOut;
use natter_core::{Nick, Text};

fn wall(from: &str, text: &str, ops: bool) -> ClusterOut {
    ClusterOut::Wall {
        from: nick(from),
        text: Text::new(text).unwrap(),
        ops,
    }
}

/// The next wall `node` hears.
async fn heard(node: &mut Node) -> (Nick, String, bool) {
    next(node, "an admin's wall", |got| match got {
        ClusterIn::Wall { from, text, ops } => Some((from, text.as_str().to_owned(), ops)),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_said_on_one_node_reaches_every_other_node_once_and_not_its_own() {
    let nats = NatsServer::start();
    let (mut a, mut b, mut c) = (node(&nats).await, node(&nats).await, node(&nats).await);
    a.send(wall("alice", "maintenance at noon", false));
    for n in [&mut b, &mut c] {
        assert_eq!(
            heard(n).await,
            (nick("alice"), "maintenance at noon".to_owned(), false)
        );
    }
    // b's WALLOPS after it: a hears that one first (its own wall never came back to it), and
    // c hears it once, after alice's.
    b.send(wall("bob", "ops, look at #k", true));
    let want = (nick("bob"), "ops, look at #k".to_owned(), true);
    assert_eq!(heard(&mut a).await, want);
    assert_eq!(heard(&mut c).await, want);
    // Nothing more: each wall crossed once.
    a.send(wall("alice", "last", false));
    assert_eq!(heard(&mut c).await.1, "last");
    assert_eq!(heard(&mut b).await.1, "last");
}
