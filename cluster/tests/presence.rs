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
            ..
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
        rooms: Vec::new(),
        irc: None,
        offline: false,
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
        rooms: Vec::new(),
        irc: None,
        offline: false,
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

/// Whether `node` is granted `who` (a claim: refused while a live node holds it).
async fn claim(node: &mut Node, id: u64, who: &str) -> bool {
    node.send(ClusterOut::Claim {
        id,
        nick: nick(who),
    });
    next(node, "a claim's answer", |got| match got {
        ClusterIn::Claimed { id: i, granted } if i == id => Some(granted),
        ClusterIn::ClaimFailed { id: i, why } if i == id => {
            panic!("claim {id} of {who} failed: {why}")
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_nodes_users_are_forgotten_with_their_nicks_but_not_what_another_node_took() {
    let nats = NatsServer::start();
    let (mut a, mut b) = (node(&nats).await, node(&nats).await);
    let user = |n: &str| Presence {
        nick: nick(n),
        account: None,
        away: None,
        rooms: Vec::new(),
        irc: None,
        offline: false,
    };
    let mut c = node(&nats).await;
    // a holds bob and carol; b then took carol over (her session moved there).
    for (id, who) in [(1, "bob"), (2, "carol")] {
        assert!(claim(&mut a, id, who).await);
        tell(&a, nick(who), Some(user(who)));
    }
    // a's records are written (in order) before b's of carol.
    next(&mut c, "carol's record by a", |got| match got {
        ClusterIn::Presence { nick, node, .. } if nick.folded() == "carol" && node == a.id() => {
            Some(())
        }
        _ => None,
    })
    .await;
    b.send(ClusterOut::TakeOver {
        id: 3,
        nick: nick("carol"),
    });
    let granted = next(&mut b, "the take-over", |got| match got {
        ClusterIn::TakenOver { id: 3, granted, .. } => Some(granted),
        _ => None,
    })
    .await;
    assert!(granted);
    tell(&b, nick("carol"), Some(user("carol")));
    next(&mut c, "carol's record by b", |got| match got {
        ClusterIn::Presence { nick, node, .. } if nick.folded() == "carol" && node == b.id() => {
            Some(())
        }
        _ => None,
    })
    .await;

    // b's hub takes a for gone (as if its lease ran out) and asks to forget its users.
    b.send(ClusterOut::Forget {
        node: a.id().to_owned(),
        nicks: vec![nick("bob"), nick("carol")],
    });
    assert_eq!(heard(&mut c, "bob").await.0, None, "bob's record removed");
    // Bob's nick is free (a, alive, would keep it from a claim otherwise); carol's is b's.
    assert!(claim(&mut c, 4, "bob").await, "bob's nick is free");
    assert!(!claim(&mut c, 5, "carol").await, "carol's nick is b's");
    // A node starting now hears carol's record, by b, and none of bob.
    let mut d = node(&nats).await;
    tell(&c, nick("zed"), Some(user("zed")));
    let seen = std::cell::RefCell::new(Vec::new());
    next(&mut d, "zed's record", |got| match got {
        ClusterIn::Presence {
            nick,
            presence: Some(_),
            node,
            ..
        } => {
            let last = nick.folded() == "zed";
            seen.borrow_mut().push((nick.folded(), node));
            last.then_some(())
        }
        _ => None,
    })
    .await;
    assert_eq!(
        seen.into_inner(),
        [
            ("carol".to_owned(), b.id().to_owned()),
            ("zed".to_owned(), c.id().to_owned())
        ]
    );
}

/// Whether the next record of `who` (folded) that `node` hears is its own.
async fn mine(node: &mut Node, who: &str) -> bool {
    next(node, "a user's record", |got| match got {
        ClusterIn::Presence {
            nick,
            presence: Some(_),
            mine,
            ..
        } if nick.folded() == who => Some(mine),
        _ => None,
    })
    .await
}

/// Whether `node` reads `who` as held by another node ([`ClusterOut::Holder`]).
async fn elsewhere(node: &mut Node, id: u64, who: &str) -> bool {
    node.send(ClusterOut::Holder {
        id,
        nick: nick(who),
    });
    next(node, "the holder's answer", |got| match got {
        ClusterIn::Holder { id: i, elsewhere } if i == id => Some(elsewhere),
        _ => None,
    })
    .await
}

/// A record says whether the node hearing it wrote it, and the holder of a nick is read from
/// its owner entry: what a node whose account's user was taken over by a sign-in on another
/// node (a user in no room, whose rooms' `Join`s cannot tell it) learns it by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_hears_whether_a_record_is_its_own_and_reads_who_holds_a_nick() {
    let nats = NatsServer::start();
    let (mut a, mut b) = (node(&nats).await, node(&nats).await);
    assert!(claim(&mut a, 1, "alice").await);
    assert!(!elsewhere(&mut a, 2, "alice").await, "a holds alice");
    assert!(elsewhere(&mut b, 3, "alice").await, "b does not");
    assert!(!elsewhere(&mut b, 4, "nobody").await, "nobody holds it");
    // b takes alice over (a sign-in of her account there) and tells its record.
    b.send(ClusterOut::TakeOver {
        id: 5,
        nick: nick("alice"),
    });
    let granted = next(&mut b, "the take-over", |got| match got {
        ClusterIn::TakenOver { id: 5, granted, .. } => Some(granted),
        _ => None,
    })
    .await;
    assert!(granted);
    let mut alice = bob(None);
    alice.nick = nick("alice");
    alice.account = Some(nick("alice"));
    tell(&b, nick("alice"), Some(alice));
    assert!(
        !mine(&mut a, "alice").await,
        "a took b's record for its own"
    );
    assert!(
        mine(&mut b, "alice").await,
        "b took its record for another node's"
    );
    assert!(
        elsewhere(&mut a, 6, "alice").await,
        "a still reads alice as its own"
    );
    assert!(!elsewhere(&mut b, 7, "alice").await);
}
