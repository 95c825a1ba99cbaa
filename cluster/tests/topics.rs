//! Rooms' topics in the cluster's KV bucket against a real nats-server (started by each test
//! on a free port, stopped by its pid): a topic one node tells reaches every node, one of an
//! earlier event never replaces a later one (whichever node writes last), and a node started
//! later hears each room's latest.

mod common;

use common::*;
use natter_cluster::test_server::NatsServer;
use natter_cluster::{ClusterIn, Node};
use natter_core::hub::{ClusterOut, RoomTopic};
use natter_core::{Millis, RoomName, Text};

fn topic(seq: u64, words: &str, by: &str) -> RoomTopic {
    RoomTopic {
        seq,
        topic: Text::new(words).ok(),
        by: nick(by),
        at: Millis(1_700_000_000_000 + seq),
    }
}

fn tell(node: &Node, r: &RoomName, t: RoomTopic) {
    node.send(ClusterOut::Topic {
        room: r.clone(),
        topic: t,
    });
}

/// The next topic of `r` `node` hears.
async fn heard(node: &mut Node, r: &RoomName) -> Option<RoomTopic> {
    next(node, "a room's topic", |got| match got {
        ClusterIn::Topic { room, topic } if room == *r => Some(topic),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_newest_topic_reaches_every_node_and_an_older_one_never_replaces_it() {
    let nats = NatsServer::start();
    let (mut a, mut b) = (node(&nats).await, node(&nats).await);
    let r = room("#r");
    tell(&a, &r, topic(5, "release on friday", "alice"));
    for n in [&mut a, &mut b] {
        assert_eq!(
            heard(n, &r).await,
            Some(topic(5, "release on friday", "alice"))
        );
    }
    // b's topic of an earlier event, written late: kept out. Then a later one from b.
    tell(&b, &r, topic(3, "stale", "bob"));
    tell(&b, &r, topic(7, "release on monday", "bob"));
    for n in [&mut a, &mut b] {
        assert_eq!(
            heard(n, &r).await,
            Some(topic(7, "release on monday", "bob"))
        );
    }
    // Another room's, and a node starting now hears each room's latest.
    let q = room("#q");
    tell(&a, &q, topic(2, "quiet", "alice"));
    assert_eq!(heard(&mut a, &q).await, Some(topic(2, "quiet", "alice")));
    let mut c = node(&nats).await;
    assert_eq!(
        heard(&mut c, &r).await,
        Some(topic(7, "release on monday", "bob"))
    );
    let mut d = node(&nats).await;
    assert_eq!(heard(&mut d, &q).await, Some(topic(2, "quiet", "alice")));
}
