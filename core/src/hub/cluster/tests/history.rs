//! History and search beyond the ring in a cluster: a node's hub asks the shell (`poll_query`)
//! as it asks a store, and the shell answers from the room's log (history pages) or from the
//! node's index of the followed rooms' logs (searches). The fake index here is every chat line
//! of the rooms the node follows, matched word by word, newest first.

use super::*;
use crate::persist::SearchQuery;
use crate::wire::EventKind;

impl Net {
    /// What natter-cluster's index answers node `i`: the chat lines of the rooms it follows
    /// holding every word (case aside), newest first.
    pub(super) fn search(&self, i: usize, q: &SearchQuery) -> Vec<RoomEvent> {
        let words: Vec<String> = q.words.split_whitespace().map(str::to_lowercase).collect();
        let mut hits: Vec<RoomEvent> = self
            .log
            .iter()
            .filter(|(r, _)| self.nodes[i].following.contains(*r))
            .filter(|(r, _)| q.rooms.is_empty() || q.rooms.contains(*r))
            .flat_map(|(_, events)| events.iter())
            .filter(|e| match &e.kind {
                EventKind::Say { text, .. } | EventKind::Act { text, .. } => {
                    let t = text.as_str().to_lowercase();
                    words.iter().all(|w| t.contains(w.as_str()))
                }
                _ => false,
            })
            .cloned()
            .collect();
        hits.sort_by(|a, b| b.at.cmp(&a.at).then(b.seq.cmp(&a.seq)));
        hits.truncate(q.limit);
        hits
    }
}

/// The texts and seqs of the search hits in `msgs`, and the count its end gave.
fn found(msgs: &[ServerMsg]) -> (Vec<(u64, String)>, Option<u32>) {
    let mut hits = Vec::new();
    let mut count = None;
    for m in msgs {
        match m {
            ServerMsg::Found(e) => {
                if let EventKind::Say { text, .. } = &e.kind {
                    hits.push((e.seq.0, text.as_str().to_owned()));
                }
            }
            ServerMsg::FoundEnd { count: n } => count = Some(*n),
            _ => {}
        }
    }
    (hits, count)
}

/// Alice on node 0 in #r says 8 lines, the second of them "the needle is here"; bob
/// then comes on node 1 (which did not follow #r before) and joins. Rings hold 4 events.
fn a_long_room() -> (Net, ConnId, ConnId) {
    let mut net = Net::with_history(2, 4);
    let a = net.hello(0, "alice");
    net.pump();
    net.welcomed(0, a);
    net.send(0, a, &ClientMsg::Join { room: room("#r") });
    for n in 1..=8u64 {
        let words = if n == 2 {
            "the needle is here".to_owned()
        } else {
            format!("line {n}")
        };
        net.send(0, a, &say(n, &words));
    }
    net.recv(0, a);
    assert!(net.nodes[1].following.is_empty());
    let b = net.hello(1, "bob");
    net.pump();
    net.welcomed(1, b);
    net.send(1, b, &ClientMsg::Join { room: room("#r") });
    net.recv(1, b);
    (net, a, b)
}

#[test]
fn a_line_older_than_the_ring_is_found_on_every_node_through_the_index() {
    let (mut net, a, b) = a_long_room();
    // Alice's join is seq 1, her lines 2..=9, bob's join 10: the needle (seq 3) is out of
    // both rings (4 events: 7..=10).
    let search = |room: Option<&str>, words: &str| ClientMsg::Search {
        room: room.map(crate::test_support::room),
        words: text(words),
    };
    net.send(1, b, &search(Some("#r"), "NEEDLE here"));
    assert_eq!(
        found(&net.recv(1, b)),
        (vec![(3, "the needle is here".to_owned())], Some(1)),
        "bob's node started following #r after the line"
    );
    // In every room the user is in; and on the node that published it.
    net.send(0, a, &search(None, "needle"));
    let got = net.recv(0, a);
    assert_eq!(
        found(&got).0,
        vec![(3, "the needle is here".into())],
        "{got:?}"
    );
    // Newest first, every word required.
    net.send(1, b, &search(None, "line"));
    let (hits, count) = found(&net.recv(1, b));
    assert_eq!(count, Some(7));
    assert_eq!(hits.first().map(|h| h.0), Some(9));
    assert_eq!(hits.last().map(|h| h.0), Some(2));
    net.send(1, b, &search(None, "needle absent"));
    assert_eq!(found(&net.recv(1, b)), (vec![], Some(0)));
}

#[test]
fn a_search_in_a_room_the_user_is_not_in_is_refused_and_asks_nothing() {
    let (mut net, _a, b) = a_long_room();
    net.send(
        1,
        b,
        &ClientMsg::Search {
            room: Some(room("#elsewhere")),
            words: text("needle"),
        },
    );
    let got = net.recv(1, b);
    assert!(
        matches!(
            got.as_slice(),
            [ServerMsg::Error {
                kind: crate::wire::ErrorKind::NotInRoom,
                ..
            }]
        ),
        "{got:?}"
    );
}

#[test]
fn scrollback_pages_back_through_the_log_to_the_rooms_first_event() {
    let (mut net, _a, b) = a_long_room();
    let mut seen: Vec<u64> = Vec::new();
    let mut before = Seq(0);
    for _ in 0..10 {
        let older = ClientMsg::Older {
            room: room("#r"),
            before,
            limit: 5,
        };
        net.send(1, b, &older);
        let got = net.recv(1, b);
        let page: Vec<u64> = got
            .iter()
            .filter_map(|m| match m {
                ServerMsg::Past(e) => Some(e.seq.0),
                _ => None,
            })
            .collect();
        let at_start = got.iter().find_map(|m| match m {
            ServerMsg::PastEnd { at_start, .. } => Some(*at_start),
            _ => None,
        });
        assert!(at_start.is_some(), "every page ends: {got:?}");
        seen.splice(0..0, page.iter().copied());
        if at_start == Some(true) {
            break;
        }
        before = Seq(0);
    }
    // Bob's replay held the ring's 4 newest (7..=10); scrollback gave everything before.
    assert_eq!(seen, (1..=6).collect::<Vec<_>>());
}

#[test]
fn irc_chathistory_reads_lines_older_than_the_ring_from_the_log() {
    let (mut net, _a, _b) = a_long_room();
    let now = net.now;
    let c = net.nodes[1]
        .hub
        .accept_on(crate::hub::Door::Irc, LOCAL, now)
        .unwrap();
    let hello = "CAP LS 302\r\nNICK hist\r\nUSER u 0 * :U\r\n\
        CAP REQ :draft/chathistory batch server-time message-tags\r\nCAP END\r\n";
    net.nodes[1].hub.handle_bytes(c, hello.as_bytes(), now);
    net.pump();
    net.nodes[1].hub.handle_bytes(c, b"JOIN #r\r\n", now);
    net.pump();
    let before = raw_text(&net, 1, c).len();
    net.nodes[1]
        .hub
        .handle_bytes(c, b"CHATHISTORY LATEST #r * 20\r\n", now);
    net.pump();
    let answer = raw_text(&net, 1, c)[before..].to_owned();
    let said: Vec<&str> = answer
        .lines()
        .filter_map(|l| l.split_once(" PRIVMSG #r :").map(|(_, t)| t))
        .collect();
    // Every line of the room, the needle (seq 3) long out of the ring of 4 included.
    let mut want = vec!["line 1", "the needle is here"];
    let rest: Vec<String> = (3..=8).map(|n| format!("line {n}")).collect();
    want.extend(rest.iter().map(String::as_str));
    assert_eq!(said, want, "{answer}");
}
