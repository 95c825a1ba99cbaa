//! Direct messages between nodes against a real nats-server (started by the test on a free
//! port, stopped by its pid): the node holding the recipient's nick gets the message with
//! whether it is a notice, the client-only tags it was sent with and whether its sender is
//! signed in; the sender's node gets the answer.

mod common;

use common::*;
use natter_cluster::test_server::NatsServer;
use natter_cluster::{ClusterIn, Node};
use natter_core::hub::ClusterOut;
use natter_core::wire::DirectMsg;
use natter_core::{Millis, MsgId, Text};
use std::sync::Arc;

async fn claim(node: &mut Node, id: u64, who: &str) {
    node.send(ClusterOut::Claim {
        id,
        nick: nick(who),
    });
    let granted = next(node, "a claim's answer", |got| match got {
        ClusterIn::Claimed { id: i, granted } if i == id => Some(granted),
        _ => None,
    })
    .await;
    assert!(granted, "{who}");
}

fn dm(id: u64, words: &str) -> DirectMsg {
    DirectMsg {
        from: nick("alice"),
        to: nick("carol"),
        id: MsgId(id),
        at: Millis(1_700_000_000_000),
        text: Text::new(words).unwrap(),
    }
}

/// The next direct message `node` is asked to deliver: (message, notice, tags, signed in).
async fn asked(node: &mut Node) -> (u64, DirectMsg, bool, Option<Arc<str>>, bool) {
    next(node, "a direct message", |got| match got {
        ClusterIn::RemoteDirect {
            token,
            dm,
            notice,
            tags,
            signed_in,
        } => Some((token, dm, notice, tags, signed_in)),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_crosses_with_its_tags_and_whether_its_sender_is_signed_in() {
    let nats = NatsServer::start();
    let (mut a, mut b) = (node(&nats).await, node(&nats).await);
    claim(&mut b, 1, "carol").await;
    let tags: Arc<str> = Arc::from("+draft/reply=abc;+example.com/x=a\\sb");
    a.send(ClusterOut::Direct {
        id: 7,
        dm: dm(1, "hi"),
        notice: false,
        tags: Some(tags.clone()),
        signed_in: true,
    });
    let (token, got, notice, got_tags, signed_in) = asked(&mut b).await;
    assert_eq!(got, dm(1, "hi"));
    assert!(!notice);
    assert_eq!(got_tags, Some(tags));
    assert!(signed_in);
    b.send(ClusterOut::Delivered {
        token,
        result: Ok(()),
    });
    let done = next(&mut a, "the answer", |got| match got {
        ClusterIn::DirectDone { id: 7, result } => Some(result),
        _ => None,
    })
    .await;
    assert_eq!(done, Ok(()));
    // A guest's notice, with no tags: none of them.
    a.send(ClusterOut::Direct {
        id: 8,
        dm: dm(2, "psst"),
        notice: true,
        tags: None,
        signed_in: false,
    });
    let (_, got, notice, got_tags, signed_in) = asked(&mut b).await;
    assert_eq!(got, dm(2, "psst"));
    assert!(notice);
    assert_eq!(got_tags, None);
    assert!(!signed_in);
}
