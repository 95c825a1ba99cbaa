//! Several events per NATS message (`batch.rs`, `node.rs`'s `Outbox`) against a real
//! nats-server (started by each test on a free port, stopped by its pid): two nodes saying
//! lines into one room at once, each with one batch on its way and its refused batches sent
//! again after the other's, keep one order with contiguous room seqs, every line once and
//! acknowledged on its own node; and history, search and a node started later read the room
//! across batches by room seq.

mod common;

use common::*;
use natter_cluster::test_server::NatsServer;
use natter_cluster::{ClusterConfig, ClusterIn, Node};
use natter_core::hub::ClusterOut;
use natter_core::persist::{Answer, HistoryQuery, Query, SearchQuery};
use natter_core::wire::{EventKind, RoomEvent};
use natter_core::{Millis, MsgId, Nick, RoomName, Seq, Text};
use std::collections::HashMap;
use std::time::Duration;

/// Lines each node says.
const LINES: u64 = 300;

async fn node(nats: &NatsServer, recent: usize) -> Node {
    let mut cfg = ClusterConfig::new(vec![nats.url()]);
    cfg.recent = recent;
    // A loaded machine and a debug build: no line may be given up.
    cfg.ack_timeout = Duration::from_secs(15);
    Node::start(cfg).await.expect("a node joins")
}

fn line(r: &RoomName, who: &str, id: u64) -> RoomEvent {
    RoomEvent {
        room: r.clone(),
        seq: Seq(0),
        at: Millis(id),
        from: Nick::new(who).unwrap(),
        kind: EventKind::Say {
            id: MsgId(id),
            text: Text::new(&format!("{who}{id}")).unwrap(),
        },
    }
}

fn text(e: &RoomEvent) -> String {
    match &e.kind {
        EventKind::Say { text, .. } => text.as_str().to_owned(),
        other => panic!("not a line: {other:?}"),
    }
}

/// The room's events `node` hands over until it has `n`, with their origins.
async fn read(node: &mut Node, n: usize) -> Vec<(RoomEvent, Option<u64>)> {
    let mut got = Vec::new();
    while got.len() < n {
        let e = next(node, "the room's events", |c| match c {
            ClusterIn::Remote { event, origin, .. } => Some((event, origin)),
            ClusterIn::Failed { why, .. } => panic!("not stored: {why}"),
            _ => None,
        })
        .await;
        got.push(e);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_saying_lines_into_one_room_at_once_keep_one_order_each_line_once() {
    let nats = NatsServer::start();
    let r = room("#busy");
    // Every line is recent: a node whose follow is done after the other's first batches are
    // stored (the follows race too) still hands over the room from its first seq.
    let all = 2 * LINES as usize;
    let (mut a, mut b) = (node(&nats, all).await, node(&nats, all).await);
    for n in [&a, &b] {
        n.send(ClusterOut::Follow(r.clone()));
    }
    // Both nodes at once, without waiting: their batches race for each place in the log.
    for id in 1..=LINES {
        a.send(ClusterOut::Publish {
            id,
            event: line(&r, "alice", id),
        });
        b.send(ClusterOut::Publish {
            id,
            event: line(&r, "bob", id),
        });
    }
    let total = 2 * LINES as usize;
    let (on_a, on_b) = tokio::join!(read(&mut a, total), read(&mut b, total));
    // One order on both nodes, room seqs 1, 2, 3... with no hole.
    let order = |got: &[(RoomEvent, Option<u64>)]| -> Vec<(u64, String)> {
        got.iter().map(|(e, _)| (e.seq.0, text(e))).collect()
    };
    assert_eq!(order(&on_a), order(&on_b));
    for (i, (e, _)) in on_a.iter().enumerate() {
        assert_eq!(e.seq, Seq(i as u64 + 1), "contiguous seqs");
    }
    // Every line once, each node's in the order it said them, acknowledged on its own node
    // only (its hub's number back) and on no other.
    for (who, got, other) in [("alice", &on_a, &on_b), ("bob", &on_b, &on_a)] {
        let mine: Vec<(String, Option<u64>)> = got
            .iter()
            .filter(|(e, _)| e.from.as_str() == who)
            .map(|(e, o)| (text(e), *o))
            .collect();
        let said: Vec<(String, Option<u64>)> = (1..=LINES)
            .map(|id| (format!("{who}{id}"), Some(id)))
            .collect();
        assert_eq!(mine, said, "{who}'s lines");
        assert!(
            other
                .iter()
                .filter(|(e, _)| e.from.as_str() == who)
                .all(|(_, o)| o.is_none())
        );
    }
    // Fewer messages in the log than events: batches.
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let mut stream = js
        .get_stream(natter_cluster::room_stream("natter", &r))
        .await
        .unwrap();
    let stored = stream.info().await.unwrap().state.messages;
    assert!(
        stored < total as u64,
        "{stored} messages for {total} events"
    );

    // History by room seq, across batches: a page in the middle, and the first one.
    let by_seq: HashMap<u64, String> = order(&on_a).into_iter().collect();
    let page = |before: u64, limit: usize| {
        Query::History(HistoryQuery {
            room: r.clone(),
            before: Seq(before),
            limit,
        })
    };
    let Answer::History(Ok(mid)) = ask(&mut a, 1, page(400, 120)).await else {
        panic!("no page");
    };
    let seqs: Vec<u64> = mid.events.iter().map(|e| e.seq.0).collect();
    assert_eq!(seqs, (280..400).collect::<Vec<_>>());
    assert!(mid.events.iter().all(|e| by_seq[&e.seq.0] == text(e)));
    assert!(!mid.at_start);
    let Answer::History(Ok(start)) = ask(&mut b, 2, page(10, 50)).await else {
        panic!("no page");
    };
    let seqs: Vec<u64> = start.events.iter().map(|e| e.seq.0).collect();
    assert_eq!(seqs, (1..10).collect::<Vec<_>>());
    assert!(start.at_start);
    let Answer::History(Ok(end)) = ask(&mut b, 3, page(u64::MAX, 5)).await else {
        panic!("no page");
    };
    let seqs: Vec<u64> = end.events.iter().map(|e| e.seq.0).collect();
    assert_eq!(seqs, (596..=600).collect::<Vec<_>>());

    // Search: a line found with its room seq.
    let Answer::Search(Ok(hits)) = ask(
        &mut a,
        4,
        Query::Search(SearchQuery {
            words: "bob150".into(),
            rooms: vec![r.clone()],
            limit: 10,
        }),
    )
    .await
    else {
        panic!("no search");
    };
    assert_eq!(hits.len(), 1);
    assert_eq!(by_seq[&hits[0].seq.0], "bob150");

    // A node started now reads the room by room seq too: the last 3 as recent events, the
    // next line after them.
    let mut c = node(&nats, 3).await;
    c.send(ClusterOut::Follow(r.clone()));
    let recent = read(&mut c, 3).await;
    let seqs: Vec<u64> = recent.iter().map(|(e, _)| e.seq.0).collect();
    assert_eq!(seqs, vec![598, 599, 600]);
    c.send(ClusterOut::Publish {
        id: 1,
        event: line(&r, "carol", 1),
    });
    let (e, origin) = read(&mut c, 1).await.remove(0);
    assert_eq!(
        (e.seq, text(&e), origin),
        (Seq(601), "carol1".into(), Some(1))
    );
    let (e, origin) = read(&mut a, 1).await.remove(0);
    assert_eq!((e.seq, text(&e), origin), (Seq(601), "carol1".into(), None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_let_go_right_after_its_events_still_stores_them_in_order() {
    let nats = NatsServer::start();
    let r = room("#leaving");
    let (mut a, mut b) = (node(&nats, 100).await, node(&nats, 100).await);
    b.send(ClusterOut::Follow(r.clone()));
    a.send(ClusterOut::Follow(r.clone()));
    // The last member's lines and its part, then the room is let go at once: most of the
    // events still wait behind the batch on its way.
    for id in 1..=50 {
        a.send(ClusterOut::Publish {
            id,
            event: line(&r, "alice", id),
        });
    }
    a.send(ClusterOut::Unfollow(r.clone()));
    // Followed again at once, and a line said: it comes after the 50.
    a.send(ClusterOut::Follow(r.clone()));
    a.send(ClusterOut::Publish {
        id: 51,
        event: line(&r, "alice", 51),
    });
    let on_b = read(&mut b, 51).await;
    let texts: Vec<(u64, String)> = on_b.iter().map(|(e, _)| (e.seq.0, text(e))).collect();
    let want: Vec<(u64, String)> = (1..=51).map(|i| (i, format!("alice{i}"))).collect();
    assert_eq!(texts, want);
    // Node a, following again, acknowledges the last line (read back with its room seq).
    let origin = next(&mut a, "the last line back", |c| match c {
        ClusterIn::Remote { event, origin, .. } if event.seq == Seq(51) => Some(origin),
        ClusterIn::Failed { why, .. } => panic!("not stored: {why}"),
        _ => None,
    })
    .await;
    assert_eq!(origin, Some(51));
}
