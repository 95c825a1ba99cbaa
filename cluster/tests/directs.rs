//! Direct messages between nodes against a real nats-server (started by the test on a free
//! port, stopped by its pid): the node holding the recipient's nick gets the message with
//! whether it is a notice, the client-only tags it was sent with and whether its sender is
//! signed in; the sender's node gets the answer.

mod common;

use common::*;
use natter_cluster::test_server::NatsServer;
use natter_cluster::{ClusterIn, Node};
use natter_core::hub::ClusterOut;
use natter_core::persist::HeldDirect;
use natter_core::wire::DirectMsg;
use natter_core::{Millis, MsgId, Text};
use std::sync::Arc;
use std::time::Duration;

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

fn kept(id: u64, words: &str) -> HeldDirect {
    HeldDirect {
        msg: dm(id, words),
        notice: false,
    }
}

/// Keeps `h` for carol through `node` (hub number `id`), under `[accounts] kept_bytes`'s
/// default: its answer.
async fn hold(node: &mut Node, id: u64, h: HeldDirect) -> Result<(), String> {
    hold_within(node, id, h, natter_core::limits::MAX_HELD_DIRECT_BYTES).await
}

/// Keeps `h` for carol through `node` (hub number `id`) with the cluster keeping at most
/// `kept_bytes` for all accounts: its answer.
async fn hold_within(
    node: &mut Node,
    id: u64,
    h: HeldDirect,
    kept_bytes: usize,
) -> Result<(), String> {
    node.send(ClusterOut::Hold {
        id,
        account: nick("carol"),
        held: h,
        kept_bytes,
    });
    next(node, "a hold's answer", |got| match got {
        ClusterIn::DirectDone { id: i, result } if i == id => Some(result),
        _ => None,
    })
    .await
}

/// What `node` is handed for carol when asked (nothing within a second: none).
async fn take(node: &mut Node) -> Vec<(u64, HeldDirect)> {
    node.send(ClusterOut::TakeHeld {
        account: nick("carol"),
    });
    let got = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if let Some(ClusterIn::Held { account, held }) = node.next().await {
                assert_eq!(account, nick("carol"));
                return held;
            }
        }
    });
    got.await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_to_nobody_connected_is_kept_once_for_the_next_sign_in_anywhere() {
    let nats = NatsServer::start();
    let (mut a, mut b) = (node(&nats).await, node(&nats).await);
    // Nobody holds carol's nick: the sender's hub is told so (it keeps an account's).
    a.send(ClusterOut::Direct {
        id: 1,
        dm: dm(1, "hi"),
        notice: false,
        tags: None,
        signed_in: false,
    });
    let unheld = next(&mut a, "the answer", |got| match got {
        ClusterIn::DirectUnheld { id: 1, resuming } => Some(resuming),
        _ => None,
    })
    .await;
    assert!(!unheld);
    // The node holding the nick says so for an account with nothing connected there.
    claim(&mut b, 1, "carol").await;
    a.send(ClusterOut::Direct {
        id: 2,
        dm: dm(2, "hi"),
        notice: false,
        tags: None,
        signed_in: false,
    });
    let (token, ..) = asked(&mut b).await;
    b.send(ClusterOut::Unheld {
        token,
        resuming: true,
    });
    let unheld = next(&mut a, "the answer", |got| match got {
        ClusterIn::DirectUnheld { id: 2, resuming } => Some(resuming),
        _ => None,
    })
    .await;
    assert!(unheld);
    // Kept from both nodes, in order; read on either.
    assert_eq!(hold(&mut a, 3, kept(1, "one")).await, Ok(()));
    assert_eq!(hold(&mut b, 4, kept(2, "two")).await, Ok(()));
    let read = take(&mut a).await;
    assert_eq!(
        read.iter()
            .map(|(_, h)| h.msg.text.as_str())
            .collect::<Vec<_>>(),
        ["one", "two"]
    );
    // One more kept before the delivered ones are forgotten stays.
    assert_eq!(hold(&mut a, 5, kept(3, "three")).await, Ok(()));
    let upto = read.iter().map(|(n, _)| *n).max().unwrap();
    a.send(ClusterOut::HeldDelivered {
        account: nick("carol"),
        upto,
    });
    // Forgetting them twice (a second sign-in that read them too) forgets nothing more.
    b.send(ClusterOut::HeldDelivered {
        account: nick("carol"),
        upto,
    });
    // b holds carol's nick, so each message kept was also handed to it unasked (the nudge
    // after a keep): an answer read here may be one of those, older than the forgetting.
    let texts = |held: &[(u64, HeldDirect)]| {
        held.iter()
            .map(|(_, h)| h.msg.text.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    let mut left = Vec::new();
    for _ in 0..50 {
        left = texts(&take(&mut b).await);
        if left == ["three"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, ["three"]);
    // At most 100 are kept.
    for i in 0..99 {
        assert_eq!(hold(&mut a, 10 + i, kept(10 + i, "more")).await, Ok(()));
    }
    let full = hold(&mut b, 200, kept(200, "one too many")).await;
    assert!(
        full.as_ref()
            .is_err_and(|w| w.contains("100 messages wait")),
        "{full:?}"
    );
}

/// `[accounts] kept_bytes` bounds what the cluster keeps for all accounts together, whichever
/// node keeps it (one node's bound, cluster-wide): past it a message is refused in the words
/// one node uses, and once those kept are delivered there is room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_cluster_keeps_is_bounded_by_kept_bytes() {
    let nats = NatsServer::start();
    let (mut a, mut b) = (node(&nats).await, node(&nats).await);
    const BOUND: usize = 3_000;
    let words = "x".repeat(200);
    let mut kept = 0;
    let mut refused = None;
    for i in 0..30u64 {
        // Kept from both nodes: the bound is the bucket's, not a node's.
        let node = if i % 2 == 0 { &mut a } else { &mut b };
        match hold_within(node, i + 1, self::kept(i + 1, &words), BOUND).await {
            Ok(()) => kept += 1,
            Err(why) => {
                refused = Some(why);
                break;
            }
        }
    }
    let why = refused.expect("one refused before 30 of 200 bytes in 3,000");
    assert!(why.contains("keeps no more messages"), "{why}");
    // Each costs at least its text: at most 3,000 / 200 are kept; and not far fewer.
    assert!((5..BOUND / 200).contains(&kept), "{kept} kept");
    // Under the default bound the same message is kept (it is the bound that refused it).
    assert_eq!(hold(&mut a, 100, self::kept(100, &words)).await, Ok(()));
    let read = take(&mut b).await;
    assert_eq!(read.len(), kept + 1);
    let upto = read.iter().map(|(n, _)| *n).max().unwrap();
    b.send(ClusterOut::HeldDelivered {
        account: nick("carol"),
        upto,
    });
    // Delivered and forgotten: there is room again.
    let mut again = Err(String::new());
    for i in 0..50 {
        again = hold_within(&mut a, 200 + i, self::kept(200 + i, &words), BOUND).await;
        if again.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(again, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_kept_for_an_account_signed_in_meanwhile_reaches_its_node() {
    let nats = NatsServer::start();
    let (mut a, mut b) = (node(&nats).await, node(&nats).await);
    // carol signed in on b after a looked her up: a keeps it, and b is told.
    claim(&mut b, 1, "carol").await;
    assert_eq!(hold(&mut a, 1, kept(1, "late")).await, Ok(()));
    let held = next(&mut b, "the kept message", |got| match got {
        ClusterIn::Held { account, held } if account == nick("carol") => Some(held),
        _ => None,
    })
    .await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].1.msg.text.as_str(), "late");
}

/// A removed account's kept messages go with it, as one node's store drops them with the
/// account: whoever registers the name next must not be handed what was sent to the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_messages_kept_for_a_removed_account_go_with_it() {
    let nats = NatsServer::start();
    let (mut a, mut b) = (node(&nats).await, node(&nats).await);
    assert_eq!(
        hold(&mut a, 1, kept(1, "for the first carol")).await,
        Ok(())
    );
    assert_eq!(take(&mut b).await.len(), 1);
    a.send(ClusterOut::AccountWrite {
        account: nick("carol"),
        registered: None,
        write: natter_core::persist::Write::DropAccount(nick("carol")),
    });
    next(&mut a, "the removal written", |got| match got {
        ClusterIn::AccountWritten { account, .. } if account == "carol" => Some(()),
        _ => None,
    })
    .await;
    assert!(take(&mut b).await.is_empty(), "kept after the removal");
    // Kept for the next account of the name as for any.
    assert_eq!(hold(&mut b, 2, kept(2, "for the new carol")).await, Ok(()));
    let read = take(&mut a).await;
    assert_eq!(
        read.iter()
            .map(|(_, h)| h.msg.text.as_str())
            .collect::<Vec<_>>(),
        ["for the new carol"]
    );
}
