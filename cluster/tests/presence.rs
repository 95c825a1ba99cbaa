//! Users' records in the cluster's KV bucket against a real nats-server (started by each test
//! on a free port, stopped by its pid): a record one node writes reaches every node with the
//! node's id, a node started later hears it too, and a removal by a node that does not hold
//! the record leaves it be.

mod common;

use common::*;
use natter_cluster::test_server::NatsServer;
use natter_cluster::{ClusterIn, Node};
use natter_core::hub::{ClusterOut, Presence};
use natter_core::{Nick, Text};

/// The next record of `who` (folded) that `node` hears: the user (if any) and its node.
async fn heard(node: &mut Node, who: &str) -> (Option<Presence>, String) {
    next(node, "a user's record", |got| match got {
        ClusterIn::Presence {
            nick,
            presence,
            node,
        } if nick.folded() == who => Some((presence, node)),
        _ => None,
    })
    .await
}

fn bob(away: Option<&str>) -> Presence {
    Presence {
        nick: nick("Bob"),
        account: None,
        away: away.and_then(|a| Text::new(a).ok()),
    }
}

fn tell(node: &Node, nick: Nick, presence: Option<Presence>) {
    node.send(ClusterOut::Presence { nick, presence });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_reaches_every_node_and_only_its_node_removes_it() {
    let nats = NatsServer::start();
    let (a, mut b) = (node(&nats).await, node(&nats).await);
    tell(&a, nick("Bob"), Some(bob(None)));
    assert_eq!(
        heard(&mut b, "bob").await,
        (Some(bob(None)), a.id().to_owned())
    );
    tell(&a, nick("Bob"), Some(bob(Some("lunch"))));
    assert_eq!(heard(&mut b, "bob").await.0, Some(bob(Some("lunch"))));
    // A node started now hears the record as it is.
    let mut c = node(&nats).await;
    assert_eq!(
        heard(&mut c, "bob").await,
        (Some(bob(Some("lunch"))), a.id().to_owned())
    );
    // b does not hold bob: its removal leaves a's record (b's asks are done in order, so
    // what c hears of bob before b's record of dave shows it); a's removal removes it.
    tell(&b, nick("bob"), None);
    let dave = Presence {
        nick: nick("dave"),
        account: None,
        away: None,
    };
    tell(&b, nick("dave"), Some(dave));
    let bob_before_dave = next(&mut c, "dave's record", |got| match got {
        ClusterIn::Presence { nick, .. } if nick.folded() == "dave" => Some(false),
        ClusterIn::Presence { nick, .. } if nick.folded() == "bob" => Some(true),
        _ => None,
    })
    .await;
    assert!(!bob_before_dave, "b removed a's record of bob");
    tell(&a, nick("bob"), None);
    assert_eq!(heard(&mut c, "bob").await.0, None, "removed by its node");
}
