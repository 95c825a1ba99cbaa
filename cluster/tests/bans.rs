//! Server-wide bans in the cluster's KV bucket against a real nats-server (started by each test
//! on a free port, stopped by its pid): bans of two nodes at once all land, every node hears
//! every ban and lift, each node's changes are answered in order, and a node starting reads
//! the bans in force (not the lifted ones).

mod common;

use common::*;
use natter_cluster::test_server::NatsServer;
use natter_cluster::{ClusterIn, Node};
use natter_core::hub::{ClusterOut, mask_key};
use natter_core::moderation::{Entry, Mask};
use std::collections::BTreeMap;

fn mask(s: &str) -> Mask {
    Mask::parse(s).unwrap()
}

fn ban(m: &str, by: &str) -> ClusterOut {
    ClusterOut::ServerBan {
        mask: mask(m),
        ban: Some(Entry {
            mask: mask(m),
            until: None,
            by: nick(by),
            reason: None,
            at: natter_core::Millis(1_700_000_000_000),
        }),
    }
}

/// What `node` hears until it has heard every mask in `want` as said there (`true`: banned)
/// and at least `answered` answers to its own changes: those answers. (A node's answers and
/// what its watch of the bucket hears come by separate ways: another node's change made after
/// one of this node's may be heard before that one is answered.)
async fn hear(node: &mut Node, want: &[(&str, bool)], answered: usize) -> Vec<u64> {
    let mut now: BTreeMap<String, bool> = BTreeMap::new();
    let mut answers = Vec::new();
    let done = |now: &BTreeMap<String, bool>, answers: &Vec<u64>| {
        answers.len() >= answered
            && want
                .iter()
                .all(|(m, banned)| now.get(&mask_key(&mask(m))) == Some(banned))
    };
    tokio::time::timeout(WAIT, async {
        while !done(&now, &answers) {
            match node.next().await.expect("the node runs") {
                ClusterIn::ServerBan { mask, ban, .. } => {
                    now.insert(mask_key(&mask), ban.is_some());
                }
                ClusterIn::ServerBanWritten { revision, .. } => {
                    answers.push(revision.expect("written"));
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not heard in time: {now:?}, answers {answers:?}"));
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bans_of_two_nodes_land_every_node_hears_them_and_a_new_node_reads_those_in_force() {
    let nats = NatsServer::start();
    let (mut a, mut b) = (node(&nats).await, node(&nats).await);
    const EACH: usize = 10;
    for i in 0..EACH {
        a.send(ban(&format!("nick:a{i}"), "alice"));
        b.send(ban(&format!("nick:b{i}"), "dave"));
    }
    a.send(ban("203.0.113.0/24", "alice"));
    // b lifts a ban a set, by the same mask in another case.
    let all: Vec<String> = (0..EACH)
        .flat_map(|i| [format!("nick:a{i}"), format!("nick:b{i}")])
        .collect();
    let mut want: Vec<(&str, bool)> = all.iter().map(|m| (m.as_str(), true)).collect();
    want.push(("203.0.113.0/24", true));
    hear(&mut b, &want, 0).await;
    b.send(ClusterOut::ServerBan {
        mask: mask("nick:A3"),
        ban: None,
    });
    let answers = hear(&mut a, &[("nick:a3", false)], EACH + 1).await;
    assert_eq!(answers.len(), EACH + 1, "each of a's changes answered once");
    assert!(
        answers.windows(2).all(|w| w[0] < w[1]),
        "in order, none twice: {answers:?}"
    );
    // A node starting now reads the bans in force, not the lifted one.
    let mut c = node(&nats).await;
    let mut kept: Vec<String> = c
        .take_server_bans()
        .into_iter()
        .map(|(b, _)| b.mask.to_string())
        .collect();
    kept.sort();
    let mut expected: Vec<String> = all.iter().filter(|m| *m != "nick:a3").cloned().collect();
    expected.push("203.0.113.0/24".into());
    expected.sort();
    assert_eq!(kept, expected);
    assert!(c.take_server_bans().is_empty(), "handed over once");
    // A ban set again after its lift is news to every node, the new one too.
    a.send(ban("nick:a3", "alice"));
    hear(&mut c, &[("nick:a3", true)], 0).await;
}

/// The revision of the next news of `m` that `node` hears, and whether it is a ban.
async fn news_of(node: &mut Node, m: &str) -> (u64, bool) {
    let key = mask_key(&mask(m));
    next(node, "a ban's news", |got| match got {
        ClusterIn::ServerBan {
            mask,
            ban,
            revision,
        } if mask_key(&mask) == key => Some((revision, ban.is_some())),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_that_ran_out_is_removed_once_and_one_set_again_meanwhile_stays() {
    let nats = NatsServer::start();
    let (a, mut b) = (node(&nats).await, node(&nats).await);
    a.send(ban("nick:Mallory", "alice"));
    let (revision, banned) = news_of(&mut b, "nick:mallory").await;
    assert!(banned);
    // Both nodes see it run out and ask to remove it at that revision: it is removed, and
    // every node hears it lifted.
    let expire = || ClusterOut::ExpireServerBan {
        mask: mask("nick:mallory"),
        revision,
    };
    a.send(expire());
    b.send(expire());
    let (removed_at, banned) = news_of(&mut b, "nick:mallory").await;
    assert!(!banned);
    assert!(removed_at > revision);
    // A node starting now reads no ban; a later ban is news, and a stale removal (at the
    // first revision) leaves it.
    let mut c = node(&nats).await;
    assert!(c.take_server_bans().is_empty(), "nothing kept");
    a.send(ban("nick:mallory", "alice"));
    let (again, banned) = news_of(&mut c, "nick:mallory").await;
    assert!(banned && again > removed_at);
    b.send(expire());
    b.send(ClusterOut::ExpireServerBan {
        mask: mask("nick:mallory"),
        revision: removed_at,
    });
    // b's removals are done aside, each at once: half a second is plenty for both.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut d = node(&nats).await;
    let kept: Vec<String> = d
        .take_server_bans()
        .into_iter()
        .map(|(b, _)| b.mask.to_string())
        .collect();
    assert_eq!(kept, ["nick:mallory"]);
    // Exactly one removal was heard by c: none since the ban set again.
    let heard_more = tokio::time::timeout(std::time::Duration::from_millis(300), async {
        news_of(&mut c, "nick:mallory").await
    })
    .await;
    assert!(heard_more.is_err(), "{heard_more:?}");
}
