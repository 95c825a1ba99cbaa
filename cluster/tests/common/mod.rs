//! What the natter-cluster tests against a real nats-server share: a node on it, names, and
//! waiting for the node's next input of a kind.
#![allow(dead_code)] // each test file uses its own part of this

use natter_cluster::test_server::NatsServer;
use natter_cluster::{ClusterConfig, ClusterIn, Node};
use natter_core::persist::{Answer, Query, QueryId};
use natter_core::{Nick, RoomName};
use std::time::Duration;

/// How long anything in these tests may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// A node of the cluster on `nats`, configured as by default.
pub async fn node(nats: &NatsServer) -> Node {
    Node::start(ClusterConfig::new(vec![nats.url()]))
        .await
        .expect("a node joins")
}

pub fn nick(s: &str) -> Nick {
    Nick::new(s).unwrap()
}

pub fn room(s: &str) -> RoomName {
    RoomName::new(s).unwrap()
}

/// The next thing from `node` that `pick` takes, within [`WAIT`].
pub async fn next<T>(node: &mut Node, what: &str, pick: impl Fn(ClusterIn) -> Option<T>) -> T {
    let find = async {
        loop {
            let got = node.next().await.expect("the node runs");
            if let Some(t) = pick(got) {
                return t;
            }
        }
    };
    tokio::time::timeout(WAIT, find)
        .await
        .unwrap_or_else(|_| panic!("no {what} in time"))
}

/// Asks `node` query `q` and waits for its answer.
pub async fn ask(node: &mut Node, id: u64, q: Query) -> Answer {
    node.query(QueryId(id), q);
    next(node, "an answer", |got| match got {
        ClusterIn::Answer { id: got, answer } if got == QueryId(id) => Some(answer),
        _ => None,
    })
    .await
}
