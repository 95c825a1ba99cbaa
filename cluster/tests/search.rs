//! Search and history beyond the ring against a real nats-server (started by each test on a
//! free port, stopped by its pid): a node answers a search from its index of the rooms it
//! follows, whole logs included, and so does a node that starts after the lines were stored;
//! what a person types is taken literally; a page of history reads the log. And a chat line
//! published by two nodes (a late copy) is stored once (its `Nats-Msg-Id`, when the nodes give
//! lines one).

mod common;

use common::*;
use natter_cluster::test_server::NatsServer;
use natter_cluster::{ClusterConfig, ClusterIn, Node};
use natter_core::hub::ClusterOut;
use natter_core::persist::{Answer, HistoryQuery, Query, SearchQuery};
use natter_core::wire::{EventKind, RoomEvent};
use natter_core::{Millis, MsgId, Nick, RoomName, Seq, Text};
use std::time::Duration;

async fn node(nats: &NatsServer) -> Node {
    let mut cfg = ClusterConfig::new(vec![nats.url()]);
    // A small window of recent events: most of the log is read for the roster only.
    cfg.recent = 3;
    Node::start(cfg).await.expect("a node joins")
}

fn line(r: &RoomName, id: u64, at: u64, text: &str) -> RoomEvent {
    RoomEvent {
        room: r.clone(),
        seq: Seq(0),
        at: Millis(at),
        from: Nick::new("alice").unwrap(),
        kind: EventKind::Say {
            id: MsgId(id),
            text: Text::new(text).unwrap(),
        },
    }
}

/// The time now, as events carry it (lines are said in order: newest first is by time).
fn now_millis() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as u64)
}

/// Publishes `texts` into `r` from `node` (following it), one at a time, each once it is back
/// from the log (stored); returns their seqs.
async fn say_all(node: &mut Node, r: &RoomName, texts: &[&str]) -> Vec<u64> {
    node.send(ClusterOut::Follow(r.clone()));
    let mut seqs = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let id = i as u64 + 1;
        node.send(ClusterOut::Publish {
            id,
            event: line(r, id, now_millis(), t),
        });
        let seq = next(node, "a publish back from the log", |got| match got {
            ClusterIn::Remote {
                event,
                origin: Some(o),
                ..
            } if o == id => Some(event.seq.0),
            ClusterIn::Failed { why, .. } => panic!("not stored: {why}"),
            _ => None,
        })
        .await;
        seqs.push(seq);
    }
    seqs
}

/// The seqs and texts of a search's hits.
async fn search(node: &mut Node, id: u64, r: Option<&RoomName>, words: &str) -> Vec<(u64, String)> {
    let q = Query::Search(SearchQuery {
        words: words.to_owned(),
        rooms: r.cloned().into_iter().collect(),
        limit: 50,
    });
    match ask(node, id, q).await {
        Answer::Search(Ok(hits)) => hits
            .into_iter()
            .map(|e| match e.kind {
                EventKind::Say { text, .. } => (e.seq.0, text.as_str().to_owned()),
                other => panic!("a hit that is no line: {other:?}"),
            })
            .collect(),
        other => panic!("no search hits: {other:?}"),
    }
}

/// Seqs of `node`'s search hits for `words` in `r`, once it has them (the node that reads a
/// log it just followed indexes it as it reads: a few rounds at most).
async fn found_when_read(node: &mut Node, r: &RoomName, words: &str, want: &[u64]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut id = 1_000;
    loop {
        id += 1;
        let got: Vec<u64> = search(node, id, Some(r), words)
            .await
            .into_iter()
            .map(|h| h.0)
            .collect();
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{words:?}: {got:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_older_than_the_recent_window_is_found_on_a_node_that_started_after_it() {
    let nats = NatsServer::start();
    let mut a = node(&nats).await;
    let r = room("#hist");
    let mut texts: Vec<String> = (1..=30).map(|n| format!("line number {n}")).collect();
    texts[1] = "the rare needle, with \"quotes\" and NEAR(x y) -minus *star".into();
    texts[20] = "another needle later".into();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let seqs = say_all(&mut a, &r, &refs).await;
    assert_eq!(seqs, (1..=30).collect::<Vec<_>>());
    // The node that published them: newest first, every word, taken literally.
    assert_eq!(
        search(&mut a, 1, Some(&r), "needle").await,
        vec![
            (21, "another needle later".to_owned()),
            (2, texts[1].clone())
        ]
    );
    assert_eq!(search(&mut a, 2, None, "NEAR(x \"quotes\"").await.len(), 1);
    assert_eq!(search(&mut a, 3, Some(&r), "*star -minus").await.len(), 1);
    assert!(
        search(&mut a, 4, Some(&r), "needle absent")
            .await
            .is_empty()
    );
    assert!(
        search(&mut a, 5, Some(&room("#none")), "needle")
            .await
            .is_empty()
    );
    assert_eq!(search(&mut a, 6, Some(&r), "number").await.len(), 28);

    // A node that starts now and follows the room finds the old line too (its window of
    // recent events is 3).
    let mut b = node(&nats).await;
    b.send(ClusterOut::Follow(r.clone()));
    found_when_read(&mut b, &r, "rare needle", &[2]).await;
    // Following again (after letting go) reads the log again: nothing is indexed twice, and
    // what comes after is indexed (a batch holding a line twice would fail, losing it).
    b.send(ClusterOut::Unfollow(r.clone()));
    b.send(ClusterOut::Follow(r.clone()));
    let more = say_all(&mut a, &r, &["needle newest"]).await;
    assert_eq!(more, vec![31]);
    found_when_read(&mut b, &r, "needle", &[31, 21, 2]).await;

    // A page of history beyond the window reads the log.
    let page = ask(
        &mut b,
        7,
        Query::History(HistoryQuery {
            room: r.clone(),
            before: Seq(5),
            limit: 10,
        }),
    )
    .await;
    match page {
        Answer::History(Ok(p)) => {
            assert!(p.at_start);
            let got: Vec<u64> = p.events.iter().map(|e| e.seq.0).collect();
            assert_eq!(got, vec![1, 2, 3, 4]);
        }
        other => panic!("no page: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_just_read_back_is_found_at_once() {
    let nats = NatsServer::start();
    let mut a = node(&nats).await;
    let r = room("#fresh");
    for n in 1..=5u64 {
        let word = format!("fresh{n}");
        let seqs = say_all(&mut a, &r, &[word.as_str()]).await;
        // The hub heard it: a search asked now finds it, with no retry.
        assert_eq!(
            search(&mut a, n, Some(&r), &word).await.len(),
            1,
            "{seqs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_published_again_by_another_node_is_stored_once() {
    let nats = NatsServer::start();
    let mut cfg = ClusterConfig::new(vec![nats.url()]);
    cfg.line_ids = true;
    let mut a = Node::start(cfg.clone()).await.expect("a node joins");
    cfg.ack_timeout = Duration::from_millis(800);
    let mut b = Node::start(cfg).await.expect("a node joins");
    let r = room("#twice");
    assert_eq!(say_all(&mut a, &r, &["only once"]).await, vec![1]);
    // Node b sends the same line (alice's, same id and text), stamped later: JetStream drops
    // it, so b never reads it back and refuses it in the end.
    b.send(ClusterOut::Follow(r.clone()));
    b.send(ClusterOut::Publish {
        id: 9,
        event: line(&r, 1, now_millis() + 5_000, "only once"),
    });
    next(&mut b, "the copy refused", |got| match got {
        ClusterIn::Failed { id: 9, .. } => Some(()),
        ClusterIn::Remote { event, .. } if event.seq.0 > 1 => {
            panic!("the copy was stored: {event:?}")
        }
        _ => None,
    })
    .await;
    // Another line (another id) is stored, right after the first.
    b.send(ClusterOut::Publish {
        id: 10,
        event: line(&r, 2, now_millis(), "only once"),
    });
    let seq = next(&mut b, "the next line back", |got| match got {
        ClusterIn::Remote {
            event,
            origin: Some(10),
            ..
        } => Some(event.seq.0),
        ClusterIn::Failed { why, .. } => panic!("not stored: {why}"),
        _ => None,
    })
    .await;
    assert_eq!(seq, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_over_rooms_gives_the_newest_lines_of_them_all_by_time() {
    let nats = NatsServer::start();
    let mut a = node(&nats).await;
    let (x, y) = (room("#x"), room("#y"));
    a.send(ClusterOut::Follow(x.clone()));
    a.send(ClusterOut::Follow(y.clone()));
    // 90 lines: #x says more at first, #y more later, their times interleaved (each line's
    // time is given: 1,000 + its number).
    let mut said: Vec<(u64, String, u64)> = Vec::new();
    for n in 1..=90u64 {
        let r = if (n < 45 && n % 3 != 0) || (n >= 45 && n % 3 == 0) {
            &x
        } else {
            &y
        };
        a.send(ClusterOut::Publish {
            id: n,
            event: line(r, n, 1_000 + n, &format!("merged line {n}")),
        });
        let seq = next(&mut a, "a publish back from the log", |got| match got {
            ClusterIn::Remote {
                event,
                origin: Some(o),
                ..
            } if o == n => Some(event.seq.0),
            ClusterIn::Failed { why, .. } => panic!("not stored: {why}"),
            _ => None,
        })
        .await;
        said.push((1_000 + n, r.to_string(), seq));
    }
    // The 50 newest of both rooms, newest first, each with its room and seq.
    let want: Vec<(u64, String, u64)> = said.iter().rev().take(50).cloned().collect();
    for rooms in [vec![], vec![x.clone(), y.clone()]] {
        let q = Query::Search(SearchQuery {
            words: "merged line".into(),
            rooms,
            limit: 50,
        });
        let got: Vec<(u64, String, u64)> = match ask(&mut a, 1, q).await {
            Answer::Search(Ok(hits)) => hits
                .into_iter()
                .map(|e| (e.at.0, e.room.to_string(), e.seq.0))
                .collect(),
            other => panic!("no search hits: {other:?}"),
        };
        assert_eq!(got, want);
    }
    // One room: its newest.
    let only_y: Vec<u64> = search(&mut a, 2, Some(&y), "merged")
        .await
        .into_iter()
        .map(|h| h.0)
        .collect();
    let want_y: Vec<u64> = said
        .iter()
        .rev()
        .filter(|s| s.1 == "#y")
        .take(50)
        .map(|s| s.2)
        .collect();
    assert_eq!(only_y, want_y);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_is_indexed_once_searched_its_first_search_reading_its_log() {
    let nats = NatsServer::start();
    let mut a = node(&nats).await;
    let mut b = node(&nats).await;
    let (r, other) = (room("#lazy"), room("#other"));
    b.send(ClusterOut::Follow(r.clone()));
    b.send(ClusterOut::Follow(other.clone()));
    a.send(ClusterOut::Follow(r.clone()));
    // 300 lines said at once: stored in batches of up to 64.
    for n in 1..=300u64 {
        a.send(ClusterOut::Publish {
            id: n,
            event: line(&r, n, 1_000 + n, &format!("lazy line w{n}")),
        });
    }
    let mut back = 0;
    while back < 300 {
        next(&mut a, "a publish back from the log", |got| match got {
            ClusterIn::Remote {
                origin: Some(_), ..
            } => Some(()),
            ClusterIn::Failed { why, .. } => panic!("not stored: {why}"),
            _ => None,
        })
        .await;
        back += 1;
    }
    next(&mut b, "the last line read on b", |got| match got {
        ClusterIn::Remote { event, .. } if event.seq.0 == 300 => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(say_all(&mut b, &other, &["elsewhere lazy"]).await, vec![1]);
    // Nobody searched: neither node indexed a line.
    assert!(a.search_index().is_empty(), "{:?}", a.search_index());
    assert!(b.search_index().is_empty(), "{:?}", b.search_index());

    // The first search reads the room's log: the first line and the last, across batches.
    assert_eq!(
        search(&mut b, 1, Some(&r), "w1").await,
        vec![(1, "lazy line w1".to_owned())]
    );
    assert_eq!(b.search_index(), vec![(r.clone(), 300)]);
    assert_eq!(search(&mut b, 2, Some(&r), "w300").await.len(), 1);
    let newest: Vec<u64> = search(&mut b, 3, Some(&r), "lazy")
        .await
        .into_iter()
        .map(|h| h.0)
        .collect();
    assert_eq!(newest, (251..=300).rev().collect::<Vec<_>>());
    // The other room is still not indexed; a never searched at all.
    assert_eq!(b.search_index(), vec![(r.clone(), 300)]);
    assert!(a.search_index().is_empty());

    // Later lines are indexed as the room's reader reads them: found at once.
    assert_eq!(
        say_all(&mut b, &r, &["said after the search"]).await,
        vec![301]
    );
    assert_eq!(
        search(&mut b, 4, Some(&r), "after").await,
        vec![(301, "said after the search".to_owned())]
    );
    assert_eq!(b.search_index(), vec![(r.clone(), 301)]);

    // A search naming no room catches up every room the node knows.
    assert_eq!(search(&mut b, 5, None, "elsewhere").await.len(), 1);
    assert_eq!(b.search_index(), vec![(r.clone(), 301), (other.clone(), 1)]);

    // A room no longer followed is caught up from where its index stands at the next search.
    b.send(ClusterOut::Unfollow(r.clone()));
    assert_eq!(say_all(&mut a, &r, &["while b was away"]).await, vec![302]);
    assert_eq!(
        search(&mut b, 6, Some(&r), "away").await,
        vec![(302, "while b was away".to_owned())]
    );
    assert_eq!(b.search_index(), vec![(r.clone(), 302), (other, 1)]);
}

/// The first search of a long room (lines said before anyone searched it) against the next:
/// a measurement, not a check (`cargo test --release -p natter-cluster --test search --
/// --ignored --nocapture`; bench/README.md, "Eighth session"). `NATTER_LAZY_LINES` lines
/// (100,000 by default), at most `NATTER_LAZY_WINDOW` on their way at once (1,000 by default:
/// batches of 64; 1: a batch per line, a quiet room's log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: slow"]
async fn first_search_of_a_long_room() {
    let lines: u64 = std::env::var("NATTER_LAZY_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let window: u64 = std::env::var("NATTER_LAZY_WINDOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let nats = NatsServer::start();
    let mut a = node(&nats).await;
    let r = room("#long");
    a.send(ClusterOut::Follow(r.clone()));
    let started = std::time::Instant::now();
    let (mut sent, mut back) = (0u64, 0u64);
    while back < lines {
        while sent < lines && sent - back < window {
            sent += 1;
            a.send(ClusterOut::Publish {
                id: sent,
                event: line(
                    &r,
                    sent,
                    now_millis(),
                    &format!("a long room's line {sent} w{sent}"),
                ),
            });
        }
        next(&mut a, "a publish back from the log", |got| match got {
            ClusterIn::Remote {
                origin: Some(_), ..
            } => Some(()),
            ClusterIn::Failed { why, .. } => panic!("not stored: {why}"),
            _ => None,
        })
        .await;
        back += 1;
    }
    println!("{lines} lines stored in {:?}", started.elapsed());
    assert!(a.search_index().is_empty());
    let timed = async |node: &mut Node, id: u64, words: &str| {
        let t = std::time::Instant::now();
        let hits = search(node, id, Some(&r), words).await;
        (t.elapsed(), hits.len())
    };
    let (first, n) = timed(&mut a, 1, "w1").await;
    assert_eq!(n, 1);
    println!("first search, the node that said them: {first:?}");
    let (second, n) = timed(&mut a, 2, &format!("w{lines}")).await;
    assert_eq!(n, 1);
    println!("second search: {second:?}");
    let (third, n) = timed(&mut a, 3, "long room").await;
    assert_eq!(n, 50);
    println!("a search with 50 hits: {third:?}");
    assert_eq!(a.search_index(), vec![(r.clone(), lines)]);
}
