//! The hub driven in memory: binary clients that speak frames, text clients that speak lines,
//! and a fake clock. No sockets.

use super::*;
use crate::command::HELP_LINE;
use crate::limits::MAX_REFUSED_PENDING;
use crate::test_support::{nick, room, text};
use crate::types::Seq;
use crate::wire::{
    ClientMsg, ErrorKind, EventKind, FrameDecoder, Limits, MAGIC, PROTOCOL_VERSION, Re, Resume,
    RoomEvent, RoomInfo, ServerMsg, decode_payload, encode_frame,
};
use std::collections::{HashMap, HashSet};

const LOCAL: IpAddr = IpAddr::V4(core::net::Ipv4Addr::LOCALHOST);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn config() -> Config {
    Config {
        secret_seed: [7; 32],
        bridge_secret: Some(BridgeSecret::new(TEST_BRIDGE_SECRET).unwrap()),
        accounts: AccountsConfig {
            hash_cost: crate::accounts::HashCost::TEST,
            ..AccountsConfig::default()
        },
        ..Config::default()
    }
}

/// A hub, the bytes it sent per connection, and a clock.
struct T {
    hub: Hub,
    now: Millis,
    inbox: HashMap<ConnId, Vec<u8>>,
    decoders: HashMap<ConnId, FrameDecoder>,
    raw: Vec<Transmit>,
    /// Connections whose reader is stuck: their bytes are not reported written.
    stalled: HashSet<ConnId>,
    unwritten: HashMap<ConnId, usize>,
    events: Vec<HubEvent>,
    /// Batches of writes handed out (a durable hub only).
    batches: Vec<crate::persist::Batch>,
    /// Report every batch durable as soon as it is handed out.
    auto_commit: bool,
    /// Answer store reads at once from what `batches` wrote (a fake store); else they wait in
    /// `queries`.
    answer_queries: bool,
    queries: Vec<(crate::persist::QueryId, crate::persist::Query)>,
    /// Password work handed out and held back (with `hold_work`); else it runs at once.
    work: Vec<crate::accounts::Work>,
    hold_work: bool,
}

impl T {
    fn new() -> T {
        T::with(config())
    }

    fn with(cfg: Config) -> T {
        T {
            hub: Hub::new(cfg),
            now: Millis(1_000),
            inbox: HashMap::new(),
            decoders: HashMap::new(),
            raw: Vec::new(),
            stalled: HashSet::new(),
            unwritten: HashMap::new(),
            events: Vec::new(),
            batches: Vec::new(),
            auto_commit: true,
            answer_queries: true,
            queries: Vec::new(),
            work: Vec::new(),
            hold_work: false,
        }
    }

    fn pump(&mut self) {
        loop {
            self.pump_once();
            if let Some(w) = self.hub.poll_work() {
                if self.hold_work {
                    self.work.push(w);
                } else {
                    let done = w.run();
                    self.hub.handle_work(done, self.now);
                }
                continue;
            }
            if let Some((id, q)) = self.hub.poll_query() {
                if self.answer_queries {
                    let a = self.fake_answer(&q);
                    self.hub.handle_answer(id, a, self.now);
                } else {
                    self.queries.push((id, q));
                }
                continue;
            }
            let Some(b) = self.hub.poll_store() else {
                return;
            };
            let id = b.id;
            self.batches.push(b);
            if !self.auto_commit {
                return;
            }
            self.hub.handle_durable(id, self.now);
        }
    }

    /// What a store holding every event written so far would answer.
    fn fake_answer(&self, q: &crate::persist::Query) -> crate::persist::Answer {
        use crate::persist::{Answer, HistoryPage, Query, Write};
        let stored: Vec<&RoomEvent> = self
            .batches
            .iter()
            .flat_map(|b| b.writes.iter())
            .filter_map(|w| match w {
                Write::Event(ev) => Some(ev),
                _ => None,
            })
            .collect();
        match q {
            Query::History(h) => {
                let mut evs: Vec<RoomEvent> = stored
                    .iter()
                    .filter(|e| e.room == h.room && e.seq < h.before)
                    .map(|e| (*e).clone())
                    .collect();
                let at_start = evs.len() <= h.limit;
                evs.drain(..evs.len().saturating_sub(h.limit));
                Answer::History(Ok(HistoryPage {
                    events: evs,
                    at_start,
                }))
            }
            Query::Search(sq) => {
                let words: Vec<String> =
                    sq.words.split_whitespace().map(str::to_lowercase).collect();
                let mut hits: Vec<RoomEvent> = stored
                    .iter()
                    .filter(|e| sq.rooms.is_empty() || sq.rooms.contains(&e.room))
                    .filter(|e| match &e.kind {
                        EventKind::Say { text, .. } | EventKind::Act { text, .. } => {
                            let t = text.as_str().to_lowercase();
                            words.iter().all(|w| t.contains(w.as_str()))
                        }
                        _ => false,
                    })
                    .map(|e| (*e).clone())
                    .collect();
                hits.reverse();
                hits.truncate(sq.limit);
                Answer::Search(Ok(hits))
            }
        }
    }

    fn pump_once(&mut self) {
        while let Some(t) = self.hub.poll_transmit() {
            self.inbox
                .entry(t.conn)
                .or_default()
                .extend_from_slice(&t.concat());
            if self.stalled.contains(&t.conn) {
                *self.unwritten.entry(t.conn).or_default() += t.len();
            } else {
                self.hub.handle_written(t.conn, t.len(), self.now);
            }
            self.raw.push(t);
        }
        while let Some(e) = self.hub.poll_event() {
            self.events.push(e);
        }
    }

    /// Moves the clock on by `ms`, firing every deadline on the way in order.
    fn advance(&mut self, ms: u64) {
        let target = self.now + Millis(ms);
        for _ in 0..100_000 {
            match self.hub.poll_timeout() {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.hub.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = target;
        self.pump();
    }

    fn feed(&mut self, c: ConnId, bytes: &[u8]) {
        self.hub.handle_bytes(c, bytes, self.now);
        self.pump();
    }

    fn send(&mut self, c: ConnId, msg: &ClientMsg) {
        let f = encode_frame(msg).unwrap();
        self.feed(c, &f);
    }

    /// A new binary connection from `peer` that sends the magic and `Hello`: its id and what it
    /// got back.
    fn hello(
        &mut self,
        peer: IpAddr,
        want: &str,
        resume: Option<Resume>,
    ) -> (ConnId, Vec<ServerMsg>) {
        let c = self.hub.accept(peer, self.now).unwrap();
        self.feed(c, &MAGIC);
        self.send(
            c,
            &ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                nick: nick(want),
                resume,
            },
        );
        (c, self.recv(c))
    }

    /// A browser at `browser` through the bridge at `bridge` says `Hello`: what it got back.
    fn bridged(&mut self, bridge: IpAddr, browser: &str, want: &str) -> Vec<ServerMsg> {
        let c = self.hub.accept(bridge, self.now).unwrap();
        self.feed(
            c,
            &crate::wire::bridge_preamble(browser, TEST_BRIDGE_SECRET),
        );
        self.send(
            c,
            &ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                nick: nick(want),
                resume: None,
            },
        );
        self.recv(c)
    }

    /// A new binary connection resuming `token`'s session with `rooms` seen up to their seqs.
    fn resume(
        &mut self,
        want: &str,
        token: ResumeToken,
        rooms: Vec<(RoomName, Seq)>,
    ) -> (ConnId, Vec<ServerMsg>) {
        self.hello(LOCAL, want, Some(Resume { token, rooms }))
    }

    /// A binary client with the magic sent and `hello` said; the welcome is consumed.
    fn bin_from(&mut self, peer: IpAddr, want: &str) -> (ConnId, Nick, ResumeToken) {
        let (c, got) = self.hello(peer, want, None);
        match got.as_slice() {
            [
                ServerMsg::Welcome {
                    nick,
                    token,
                    resumed: false,
                    ..
                },
            ] => (c, nick.clone(), token.clone()),
            other => panic!("no welcome: {other:?}"),
        }
    }

    fn bin(&mut self, want: &str) -> ConnId {
        self.bin_from(LOCAL, want).0
    }

    /// Everything the hub sent to binary connection `c` since the last call.
    fn recv(&mut self, c: ConnId) -> Vec<ServerMsg> {
        let bytes = self.inbox.remove(&c).unwrap_or_default();
        let d = self.decoders.entry(c).or_default();
        d.extend(&bytes);
        let mut out = Vec::new();
        while let Some(p) = d.next_frame().unwrap() {
            out.push(decode_payload::<ServerMsg>(&p).unwrap());
        }
        out
    }

    /// A text client greeted (first line sent or silence), with its welcome lines consumed.
    fn txt(&mut self) -> (ConnId, String) {
        let c = self.hub.accept(LOCAL, self.now).unwrap();
        self.advance(self.hub.config().text_detect_wait.0);
        let lines = self.lines(c);
        assert!(lines[0].contains("Welcome"), "{lines:?}");
        let n = self.hub.nick(c).unwrap().to_string();
        (c, n)
    }

    fn line(&mut self, c: ConnId, s: &str) {
        self.feed(c, format!("{s}\r\n").as_bytes());
    }

    /// Lines the hub sent to text connection `c` since the last call.
    fn lines(&mut self, c: ConnId) -> Vec<String> {
        let bytes = self.inbox.remove(&c).unwrap_or_default();
        let s = String::from_utf8(bytes).unwrap();
        assert!(s.is_empty() || s.ends_with("\r\n"), "{s:?}");
        s.split_terminator("\r\n").map(str::to_owned).collect()
    }

    fn closed(&self, c: ConnId) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, HubEvent::Close { conn, .. } if *conn == c))
    }

    fn limit(&self, c: ConnId, which: Limit) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, HubEvent::LimitHit { conn, limit, .. } if *conn == c && *limit == which))
            .count()
    }

    fn join(&mut self, c: ConnId, r: &str) -> Vec<ServerMsg> {
        self.send(c, &ClientMsg::Join { room: room(r) });
        self.recv(c)
    }

    fn say(&mut self, c: ConnId, r: &str, id: u64, t: &str) {
        self.send(
            c,
            &ClientMsg::Say {
                room: room(r),
                id: MsgId(id),
                text: text(t),
            },
        );
    }
}

/// A binary client from `peer` that registers its nick as an account (and so is signed in).
fn signed_up(t: &mut T, peer: IpAddr, name: &str) -> ConnId {
    let (c, _, _) = t.bin_from(peer, name);
    t.send(
        c,
        &ClientMsg::Register {
            password: crate::types::Password("correct horse".into()),
            remember: false,
        },
    );
    let got = t.recv(c);
    assert!(
        got.iter().any(|m| matches!(m, ServerMsg::SignedIn { .. })),
        "{got:?}"
    );
    c
}

fn says(msgs: &[ServerMsg]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Event(RoomEvent {
                kind: EventKind::Say { text, .. },
                ..
            }) => Some(text.to_string()),
            _ => None,
        })
        .collect()
}

fn events(msgs: &[ServerMsg]) -> Vec<&RoomEvent> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Event(ev) => Some(ev),
            _ => None,
        })
        .collect()
}

fn errors(msgs: &[ServerMsg]) -> Vec<(ErrorKind, Re, String)> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Error { kind, re, detail } => Some((*kind, re.clone(), detail.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn text_welcome_autojoin_and_chat_without_echo() {
    let mut t = T::new();
    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.advance(500);
    let l = t.lines(c);
    let me = t.hub.nick(c).unwrap().to_string();
    assert!(me.starts_with("guest"));
    assert_eq!(l[0], format!("Welcome to natter, {me}! {HELP_LINE}"));
    // One line of an 80-column terminal, not a wall of every command (/help lists them).
    assert!(l[0].starts_with(&format!("Welcome to natter, {me}! Type to talk.")));
    assert!(l[0].len() <= 80 && l[0].contains("/help"), "{}", l[0]);
    assert_eq!(l[1], "-- you are in #lobby (nobody else is here yet)");
    assert!(t.hub.is_member(&nick(&me), &RoomName::lobby()));

    let b = t.hub.accept(LOCAL, t.now).unwrap();
    t.feed(b, b"\r\n");
    let bn = t.hub.nick(b).unwrap().to_string();
    let lb = t.lines(b);
    assert_eq!(lb[1], format!("-- you are in #lobby with: {me}"));
    // No recent messages: nothing was said yet, and the first user's join is no message
    // (the line above says who is here).
    assert_eq!(lb.len(), 2, "{lb:?}");
    assert_eq!(t.lines(c), vec![format!("-- {bn} joined #lobby")]);

    t.line(c, "hello there");
    assert_eq!(t.lines(b), vec![format!("<{me}> hello there")]);
    assert!(t.lines(c).is_empty(), "no echo for text senders");
    t.line(b, "/me waves");
    assert_eq!(t.lines(c), vec![format!("* {bn} waves")]);
    assert!(t.lines(b).is_empty());

    // A third joiner sees recent history (without anyone's join line of its own).
    let d = t.hub.accept(LOCAL, t.now).unwrap();
    t.advance(500);
    let ld = t.lines(d);
    assert!(ld[1].starts_with("-- you are in #lobby with: "), "{ld:?}");
    assert!(ld.contains(&format!("<{me}> hello there")), "{ld:?}");
    assert!(ld.contains(&format!("* {bn} waves")));

    t.line(d, "/quit bye all");
    assert!(t.closed(d));
    assert!(t.lines(c).last().unwrap().ends_with("quit (bye all)"));
}

#[test]
fn text_and_binary_in_one_room() {
    let mut t = T::new();
    let (tc, tn) = t.txt();
    let a = t.bin("alice");
    let got = t.join(a, "#lobby");
    match &got[0] {
        ServerMsg::Joined {
            room: r,
            members,
            seq,
            ..
        } => {
            assert_eq!(*r, RoomName::lobby());
            assert_eq!(members.len(), 2);
            assert_eq!(seq.0, 2, "tc's join is 1, alice's is 2");
        }
        other => panic!("{other:?}"),
    }
    // Replay ends with alice's own join event.
    let evs = events(&got);
    assert_eq!(evs.last().unwrap().kind, EventKind::Join);
    assert_eq!(evs.last().unwrap().from.as_str(), "alice");
    assert_eq!(t.lines(tc), vec!["-- alice joined #lobby".to_string()]);

    t.line(tc, "hi alice");
    let got = t.recv(a);
    assert_eq!(says(&got), vec!["hi alice"]);
    assert_eq!(events(&got)[0].from.as_str(), tn);

    t.say(a, "#lobby", 1, "hi person");
    assert_eq!(t.lines(tc), vec!["<alice> hi person".to_string()]);
    // The binary sender gets its own event back: that is the ack.
    assert_eq!(says(&t.recv(a)), vec!["hi person"]);
}

/// `ClientMsg::ClearTopic` (protocol 9) clears a topic for a member: everyone in the room
/// gets the topic event with none, a later joiner sees none. A non-member is refused, and
/// clearing a room with no topic tells the asker alone.
#[test]
fn a_member_clears_the_topic_and_everyone_sees_none() {
    let mut t = T::new();
    let a = t.bin("alice");
    let b = t.bin("bob");
    let outsider = t.bin("olga");
    t.join(a, "#rust");
    t.join(b, "#rust");
    t.send(
        a,
        &ClientMsg::Topic {
            room: room("#rust"),
            topic: Some(text("crabs")),
        },
    );
    t.recv(a);
    t.recv(b);
    let clear = ClientMsg::ClearTopic {
        room: room("#rust"),
    };
    t.send(outsider, &clear);
    let refused = errors(&t.recv(outsider));
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, ErrorKind::NotInRoom);
    assert!(t.recv(a).is_empty());

    t.send(b, &clear);
    for c in [a, b] {
        let e = t.recv(c);
        assert_eq!(events(&e).len(), 1, "{e:?}");
        assert_eq!(events(&e)[0].kind, EventKind::Topic { topic: None });
        assert_eq!(events(&e)[0].from, nick("bob"));
    }
    let c = t.bin("carol");
    match &t.join(c, "#rust")[0] {
        ServerMsg::Joined { topic, .. } => assert_eq!(*topic, None),
        other => panic!("{other:?}"),
    }
    t.recv(a);
    t.recv(b);
    // Nothing to clear: the asker is told there is no topic, nobody else hears of it.
    t.send(c, &clear);
    assert_eq!(
        t.recv(c),
        vec![ServerMsg::Topic {
            room: room("#rust"),
            topic: None
        }]
    );
    assert!(t.recv(a).is_empty() && t.recv(b).is_empty());
}

#[test]
fn join_part_who_rooms_topic() {
    let mut t = T::new();
    let a = t.bin("alice");
    let b = t.bin("bob");
    t.join(a, "#rust");
    t.join(b, "#rust");
    assert!(matches!(
        &t.recv(a)[..],
        [ServerMsg::Event(RoomEvent {
            kind: EventKind::Join,
            ..
        })]
    ));

    t.send(
        a,
        &ClientMsg::Who {
            room: room("#rust"),
        },
    );
    assert_eq!(
        t.recv(a),
        vec![ServerMsg::Members {
            room: room("#rust"),
            members: vec![nick("alice"), nick("bob")]
        }]
    );
    t.send(a, &ClientMsg::Rooms);
    assert_eq!(
        t.recv(a),
        vec![ServerMsg::Rooms {
            rooms: vec![RoomInfo {
                room: room("#rust"),
                members: 2
            }]
        }]
    );
    t.send(
        a,
        &ClientMsg::Topic {
            room: room("#rust"),
            topic: None,
        },
    );
    assert_eq!(
        t.recv(a),
        vec![ServerMsg::Topic {
            room: room("#rust"),
            topic: None
        }]
    );
    t.send(
        a,
        &ClientMsg::Topic {
            room: room("#rust"),
            topic: Some(text("crabs")),
        },
    );
    for c in [a, b] {
        let e = t.recv(c);
        assert_eq!(
            events(&e)[0].kind,
            EventKind::Topic {
                topic: Some(text("crabs"))
            }
        );
    }
    // A late joiner sees the topic.
    let c = t.bin("carol");
    match &t.join(c, "#rust")[0] {
        ServerMsg::Joined { topic, .. } => assert_eq!(*topic, Some(text("crabs"))),
        other => panic!("{other:?}"),
    }
    t.recv(a);
    t.recv(b);

    t.send(
        b,
        &ClientMsg::Part {
            room: room("#rust"),
            reason: Some(text("later")),
        },
    );
    assert_eq!(
        t.recv(b),
        vec![ServerMsg::Parted {
            room: room("#rust")
        }]
    );
    let e = t.recv(a);
    assert_eq!(
        events(&e)[0].kind,
        EventKind::Part {
            reason: Some(text("later"))
        }
    );
    assert_eq!(events(&e)[0].from.as_str(), "bob");

    // Not a member any more.
    t.say(b, "#rust", 1, "still here?");
    assert_eq!(errors(&t.recv(b))[0].0, ErrorKind::NotInRoom);
    assert!(t.recv(a).is_empty());

    // Empty rooms go away.
    t.send(
        a,
        &ClientMsg::Part {
            room: room("#rust"),
            reason: None,
        },
    );
    t.send(
        c,
        &ClientMsg::Part {
            room: room("#rust"),
            reason: None,
        },
    );
    assert_eq!(t.hub.rooms(), 0);
}

/// A nick change is an event in each of the user's rooms, so past `NICK_BURST` changes one waits
/// for its own token; refused changes (a taken nick) cost none, and nobody else hears a
/// refused one.
#[test]
fn nick_changes_past_their_burst_are_refused_with_the_wait() {
    use crate::limits::{NICK_BURST, NICK_REFILL};
    let mut t = T::new();
    let a = t.bin("alice");
    let b = t.bin("bob");
    t.join(a, "#x");
    t.join(b, "#x");
    t.recv(a);
    // A refusal costs no nick token.
    t.send(
        b,
        &ClientMsg::Nick {
            nick: nick("alice"),
        },
    );
    assert_eq!(errors(&t.recv(b))[0].0, ErrorKind::NickTaken);
    for k in 0..NICK_BURST {
        t.send(
            b,
            &ClientMsg::Nick {
                nick: nick(&format!("bob{k}")),
            },
        );
        assert!(errors(&t.recv(b)).is_empty());
    }
    assert_eq!(events(&t.recv(a)).len(), NICK_BURST as usize);
    t.send(b, &ClientMsg::Nick { nick: nick("fast") });
    let e = errors(&t.recv(b));
    assert_eq!(
        (e[0].0, &e[0].1),
        (ErrorKind::Flood, &Re::Nick(nick("fast")))
    );
    assert_eq!(
        e[0].2,
        format!(
            "you are changing nicks too fast: try again in {} s",
            NICK_REFILL.0 / 1000
        )
    );
    assert!(t.recv(a).is_empty(), "nobody hears a refused change");
    assert_eq!(
        t.limit(b, Limit::NickRate),
        1,
        "in the log, as other limits"
    );
    // And in the metrics' flood count (natter_flood_total{outcome="refused",kind="nick"});
    // until the thirty-third session only the log said it.
    assert_eq!(t.hub.stats().flood_nick_refused, 1);
    assert_eq!(
        t.hub.nick(b).unwrap().as_str(),
        format!("bob{}", NICK_BURST - 1)
    );
    // One more comes with each refill, no sooner.
    t.advance(NICK_REFILL.0 - 1_000);
    t.send(b, &ClientMsg::Nick { nick: nick("fast") });
    assert!(errors(&t.recv(b))[0].2.ends_with("try again in 1 s"));
    t.advance(1_000);
    t.send(b, &ClientMsg::Nick { nick: nick("fast") });
    let got = t.recv(b);
    assert!(errors(&got).is_empty(), "{got:?}");
    assert_eq!(
        got.last(),
        Some(&ServerMsg::YourNick { nick: nick("fast") })
    );
    t.send(
        b,
        &ClientMsg::Nick {
            nick: nick("faster"),
        },
    );
    assert_eq!(errors(&t.recv(b))[0].0, ErrorKind::Flood);
}

/// On nc the refusal is a line in words; a zero `nick_refill_ms` turns the limit off.
#[test]
fn nick_changes_on_nc_are_limited_and_the_limit_can_be_turned_off() {
    use crate::limits::NICK_BURST;
    let mut t = T::new();
    let (c, _) = t.txt();
    for k in 0..NICK_BURST {
        t.line(c, &format!("/nick nc{k}"));
    }
    t.lines(c);
    t.line(c, "/nick toofast");
    let l = t.lines(c);
    assert!(
        l.iter()
            .any(|l| l.ends_with("you are changing nicks too fast: try again in 10 s")),
        "{l:?}"
    );
    assert_eq!(
        t.hub.nick(c).unwrap().as_str(),
        format!("nc{}", NICK_BURST - 1)
    );

    let mut t = T::with(Config {
        nick_refill: Millis::ZERO,
        ..Config::default()
    });
    let (c, _) = t.txt();
    for k in 0..8 {
        t.line(c, &format!("/nick nc{k}"));
    }
    let l = t.lines(c);
    assert!(!l.iter().any(|l| l.contains("too fast")), "{l:?}");
    assert_eq!(t.hub.nick(c).unwrap().as_str(), "nc7");
}

#[test]
fn nick_clash_change_and_dm() {
    let mut t = T::new();
    let a = t.bin("alice");
    let (b, bn, _) = t.bin_from(LOCAL, "Alice");
    assert_eq!(
        bn.as_str(),
        "Alice_2",
        "taken case-insensitively; a free variant is given"
    );
    let (_, long, _) = t.bin_from(LOCAL, "abcdefghijklmnop");
    let (_, long2, _) = t.bin_from(LOCAL, "abcdefghijklmnop");
    assert_eq!(long.as_str(), "abcdefghijklmnop");
    assert_eq!(long2.as_str(), "abcdefghijklmn_2");

    t.join(a, "#x");
    t.join(b, "#x");
    t.recv(a);
    t.send(
        b,
        &ClientMsg::Nick {
            nick: nick("ALICE"),
        },
    );
    assert_eq!(errors(&t.recv(b))[0].0, ErrorKind::NickTaken);
    t.send(b, &ClientMsg::Nick { nick: nick("bob") });
    let got = t.recv(b);
    assert_eq!(events(&got)[0].kind, EventKind::Nick { new: nick("bob") });
    assert_eq!(got.last(), Some(&ServerMsg::YourNick { nick: nick("bob") }));
    assert_eq!(events(&t.recv(a))[0].from.as_str(), "Alice_2");
    // Asking for the nick one has is answered (the request gets its reply), and nobody else
    // hears of it.
    t.send(b, &ClientMsg::Nick { nick: nick("bob") });
    assert_eq!(t.recv(b), vec![ServerMsg::YourNick { nick: nick("bob") }]);
    assert!(t.recv(a).is_empty());

    // DM: to the recipient, and back to the sender as its ack.
    t.send(
        a,
        &ClientMsg::Msg {
            to: nick("BOB"),
            id: MsgId(5),
            text: text("psst"),
        },
    );
    let to_b = t.recv(b);
    let to_a = t.recv(a);
    assert_eq!(to_a, to_b);
    match &to_b[..] {
        [ServerMsg::Direct(dm)] => {
            assert_eq!(
                (dm.from.as_str(), dm.to.as_str(), dm.id),
                ("alice", "bob", MsgId(5))
            );
        }
        other => panic!("{other:?}"),
    }
    t.send(
        a,
        &ClientMsg::Msg {
            to: nick("nobody"),
            id: MsgId(6),
            text: text("hello?"),
        },
    );
    let e = errors(&t.recv(a));
    assert_eq!(
        (e[0].0, &e[0].1),
        (ErrorKind::NoSuchNick, &Re::Msg(MsgId(6)))
    );
    assert!(e[0].2.contains("nobody"));

    // Text users: /nick, /msg, and the error lines.
    let (tc, _) = t.txt();
    t.recv(a);
    t.recv(b);
    t.line(tc, "/nick bob");
    assert_eq!(
        t.lines(tc),
        vec!["ERROR: the nick bob is taken".to_string()]
    );
    t.line(tc, "/nick tom");
    assert_eq!(t.lines(tc), vec!["-- you are now known as tom".to_string()]);
    t.line(tc, "/nick tom");
    assert_eq!(
        t.lines(tc),
        vec!["-- you are already known as tom".to_string()]
    );
    t.line(tc, "/msg alice hi from nc");
    assert_eq!(t.lines(tc), vec!["-> *alice* hi from nc".to_string()]);
    match &t.recv(a)[..] {
        [ServerMsg::Direct(dm)] => assert_eq!(dm.from.as_str(), "tom"),
        other => panic!("{other:?}"),
    }
    t.line(tc, "/msg zed hi");
    assert_eq!(t.lines(tc), vec!["ERROR: nobody is called zed".to_string()]);
    // `/msg #room` (IRC's habit) says the line in that room, whichever one is current.
    t.join(a, "#side");
    t.line(tc, "/join #side");
    t.line(tc, "/join #other");
    t.lines(tc);
    t.recv(a);
    t.line(tc, "/msg #side hi from nc");
    assert_eq!(says(&t.recv(a)), vec!["hi from nc"]);
    t.line(tc, "/frob");
    assert!(t.lines(tc)[0].starts_with("ERROR: unknown command /frob"));
    // A typo says what to type instead.
    t.line(tc, "/jion #side");
    assert!(
        t.lines(tc)[0].starts_with("ERROR: unknown command /jion: did you mean /join?"),
        "a typo"
    );
    t.advance(5_000); // flood control's tokens back
    t.line(tc, "/help");
    let help = t.lines(tc);
    for (usage, _) in crate::command::HELP {
        assert!(help.iter().any(|l| l.contains(usage)), "{usage} missing");
    }
    // One command's help is that command's lines, not the whole list again.
    t.advance(5_000); // flood control's tokens back
    t.line(tc, "/help join");
    assert_eq!(
        t.lines(tc),
        vec![
            "--   /join #room [key]        join a room (created if new) and make it current;",
            "--                            several: /join #a #b",
        ]
    );
    t.line(tc, "/help register");
    assert_eq!(t.lines(tc).len(), 2);
    t.line(tc, "/help afk");
    assert_eq!(
        t.lines(tc),
        vec!["ERROR: there is no command /afk to help with; /help lists them all"]
    );
    t.line(tc, "/help away");
    assert_eq!(
        t.lines(tc),
        vec!["--   /away [text]             say you are away (others see it); alone: back"]
    );
    // Every line of the list fits an 80-column terminal: a long description goes on under
    // its column, a long usage (/ban's, /mode's) keeps its words after it.
    t.advance(5_000);
    t.line(tc, "/help");
    let help = t.lines(tc);
    for l in &help {
        assert!(
            l.chars().count() <= 80,
            "{} columns: {l}",
            l.chars().count()
        );
    }
    let ban = help
        .iter()
        .position(|l| l.contains("/ban [#room]"))
        .unwrap();
    assert_eq!(
        help[ban..ban + 2],
        [
            "--   /ban [#room] nick|mask [30m|2h|7d] [reason]  ban (masks: account:NAME,",
            "--                            nick:NAME, a.b.c.d/N)",
        ]
    );
}

/// natter's own clients and nc had no `/whois`, while IRC has WHOIS: the same facts, with only
/// the rooms the asker shares (an invite-only room the asker is not in stays unsaid), the
/// idle time of any kind of connection (since its sign-on when it said nothing, as WHOIS's
/// `317`), and `no such nick` for nobody.
#[test]
fn whois_tells_nc_and_binary_clients_who_someone_is() {
    let mut t = T::new();
    let (a, _) = t.txt();
    t.line(a, "/nick alice");
    t.line(a, "/join #hidden");
    t.line(a, "/mode +i");
    let (b, bob) = t.txt();
    t.lines(a);
    t.lines(b);
    t.line(b, "/whois Alice");
    assert_eq!(
        t.lines(b),
        [
            "-- alice is a guest (not signed in)",
            "-- alice shares #lobby with you",
            "-- alice is connected without TLS",
            "-- alice has been idle 0s",
        ]
    );
    t.line(a, "/away lunch");
    t.line(a, "/msg #lobby back soon");
    t.advance(65_000);
    t.lines(b);
    t.line(b, "/whois alice");
    let l = t.lines(b);
    assert!(l.contains(&"-- alice is away: lunch".to_owned()), "{l:?}");
    assert!(
        l.contains(&"-- alice has been idle 1m 5s".to_owned()),
        "{l:?}"
    );
    t.line(b, "/whois nobody");
    assert_eq!(t.lines(b), ["-- no such nick: nobody is called nobody"]);
    // Of ourselves: the rooms we are in, not "alice shares #lobby with you".
    t.lines(a);
    t.line(a, "/whois ALICE");
    let l = t.lines(a);
    assert!(
        l.contains(&"-- you are in #hidden, #lobby".to_owned())
            || l.contains(&"-- you are in #lobby, #hidden".to_owned()),
        "{l:?}"
    );
    assert!(!l.iter().any(|l| l.contains("shares")), "{l:?}");

    // A binary client asks with `Whois`; the answer names the rooms it shares.
    let c = t.bin("carol");
    t.join(c, "#lobby");
    t.send(
        c,
        &ClientMsg::Whois {
            nick: nick("alice"),
        },
    );
    let got = t.recv(c);
    let [
        ServerMsg::Whois {
            nick: asked,
            user: Some(u),
        },
    ] = got.as_slice()
    else {
        panic!("{got:?}");
    };
    assert_eq!(asked.as_str(), "alice");
    assert_eq!(
        u.rooms,
        [room("#lobby")],
        "not #hidden, which carol is not in"
    );
    assert_eq!(u.presence, crate::wire::Presence::Here);
    assert_eq!(u.away, Some(text("lunch")));
    assert!(!u.secure && u.account.is_none());
    t.send(c, &ClientMsg::Whois { nick: nick(&bob) });
    let got = t.recv(c);
    assert!(
        matches!(&got[..], [ServerMsg::Whois { user: Some(u), .. }] if u.rooms == [room("#lobby")] && u.idle == Some(Millis(65_000))),
        "bob said nothing: idle since he signed on, as WHOIS's 317 counts it: {got:?}"
    );
}

/// `printf 'hi\n/who\n/rooms' | ncat host 8000` (or `nc -N`, `nc -q 1`): the lines come with
/// the end of input at once. Every one is said or answered (the last one too, without its
/// newline), flood control pacing them as for anyone, and then the user quits and the
/// connection closes; before, the end of input dropped the connection and every answer.
#[test]
fn nc_input_that_ends_is_answered_and_then_quits() {
    let mut t = T::new();
    let (a, _) = t.txt();
    let c = t.hub.accept(LOCAL, t.now).unwrap();
    let mut typed = String::from("hello from a script\n/who\n");
    for i in 0..15 {
        typed.push_str(&format!("line {i}\n"));
    }
    typed.push_str("/rooms");
    t.feed(c, typed.as_bytes());
    assert!(
        t.hub.handle_eof(c, t.now),
        "goes on until it has been answered"
    );
    for _ in 0..10 {
        t.advance(1_000);
    }
    let lines = t.lines(c);
    assert!(lines[0].contains("Welcome"), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("-- #lobby (2):")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("-- rooms: ")),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("-- goodbye"),
        "{lines:?}"
    );
    assert!(t.closed(c));
    let seen = t.lines(a);
    assert_eq!(
        seen.iter().filter(|l| l.contains("> line ")).count(),
        15,
        "{seen:?}"
    );
    assert!(
        seen.last()
            .is_some_and(|l| l.ends_with("quit (Connection closed)")),
        "{seen:?}"
    );
    // Past flood control's queue, lines are refused as ever, but the quit never is: the
    // connection always comes to its end.
    let f = t.hub.accept(LOCAL, t.now).unwrap();
    t.feed(f, "flood\n".repeat(60).as_bytes());
    assert!(t.hub.handle_eof(f, t.now));
    for _ in 0..10 {
        t.advance(1_000);
    }
    let lines = t.lines(f);
    assert!(
        lines.iter().any(|l| l.contains("sending too fast")),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("-- goodbye"),
        "{lines:?}"
    );
    assert!(t.closed(f));
    // Someone who never typed a byte is left for the shell to close, as before.
    let silent = t.hub.accept(LOCAL, t.now).unwrap();
    assert!(!t.hub.handle_eof(silent, t.now));
    assert!(t.hub.has_conn(silent));
}

/// `/join #a #b` and `/join #c,#d` on nc join every room named, in order, as if typed one by
/// one: the last is the current room.
#[test]
fn text_join_of_several_rooms_joins_each_in_order() {
    let mut t = T::new();
    let (c, _) = t.txt();
    t.line(c, "/join #a #b");
    assert_eq!(
        t.lines(c),
        vec![
            "-- you are in #a (nobody else is here yet)".to_string(),
            "-- you are in #b (nobody else is here yet)".to_string()
        ]
    );
    t.line(c, "/join #c,#d");
    t.lines(c);
    t.line(c, "where am I");
    let (d, _) = t.txt();
    t.line(d, "/rooms");
    assert_eq!(
        t.lines(d),
        vec!["-- rooms: #a (1), #b (1), #c (1), #d (1), #lobby (2)".to_string()]
    );
    t.line(d, "/join #d");
    let joined = t.lines(d);
    assert!(
        joined[0].starts_with("-- you are in #d with: "),
        "{joined:?}"
    );
    let history = joined.join("\n");
    assert!(
        history.contains("where am I"),
        "said in #d, the last one joined: {joined:?}"
    );
}

#[test]
fn text_commands_join_part_who_rooms_topic() {
    let mut t = T::new();
    let (c, me) = t.txt();
    t.line(c, "/join #rust");
    assert_eq!(
        t.lines(c),
        vec!["-- you are in #rust (nobody else is here yet)".to_string()]
    );
    let (d, dn) = t.txt();
    assert_eq!(t.lines(c), vec![format!("[#lobby] -- {dn} joined #lobby")]);
    t.line(d, "/join rust");
    t.lines(d);
    assert_eq!(t.lines(c), vec![format!("-- {dn} joined #rust")]);
    t.line(d, "in rust");
    assert_eq!(t.lines(c), vec![format!("<{dn}> in rust")]);
    // Chat in a room other than the current one is prefixed.
    t.line(d, "/join #lobby");
    assert_eq!(
        t.lines(d),
        vec!["-- you are now talking in #lobby".to_string()]
    );
    t.line(d, "in lobby");
    assert_eq!(t.lines(c), vec![format!("[#lobby] <{dn}> in lobby")]);
    t.line(c, "/who");
    let who = t.lines(c);
    assert!(
        who[0].starts_with("-- #rust (2): ") && who[0].contains(&me),
        "{who:?}"
    );
    t.line(c, "/rooms");
    assert_eq!(
        t.lines(c),
        vec!["-- rooms: #lobby (2), #rust (2)".to_string()]
    );
    t.line(c, "/topic all about crabs");
    assert_eq!(
        t.lines(c),
        vec![format!("-- {me} set the topic of #rust: all about crabs")]
    );
    t.line(c, "/topic");
    assert_eq!(
        t.lines(c),
        vec!["-- topic of #rust: all about crabs".to_string()]
    );
    t.line(c, "/part");
    assert_eq!(
        t.lines(c),
        vec![
            "-- you left #rust".to_string(),
            "-- you are now talking in #lobby".to_string()
        ]
    );
    t.line(c, "/part #lobby");
    t.lines(c);
    t.line(c, "anyone?");
    assert_eq!(
        t.lines(c),
        vec!["ERROR: you are in no room: /join #room first".to_string()]
    );
    // A search in no room says so, not "no results" as if nothing matched.
    t.line(c, "/search hello");
    assert_eq!(
        t.lines(c),
        vec![
            "ERROR: you are in no room: /search finds lines of the rooms you are in; /join #room first"
                .to_string()
        ]
    );
}

/// nc's join replay of the last lines looks back a bounded number of events for them
/// ([`super::room::LINES_LOOKBACK`] a line), however long the ring: a room of comings and
/// goings decoded its whole ring on every join (and `history_len` is the admin's to raise).
#[test]
fn a_text_join_looks_back_a_bounded_number_of_events_for_its_lines() {
    let mut cfg = config();
    cfg.history_on_join = 2;
    cfg.history_len = 10_000;
    let mut t = T::with(cfg);
    let a = t.bin("alice");
    t.join(a, "#h");
    t.say(a, "#h", 1, "long ago");
    let joins = 2 * super::room::LINES_LOOKBACK;
    for _ in 0..joins {
        let g = t.hub.accept(LOCAL, t.now).unwrap();
        t.feed(g, b"\r\n");
        t.line(g, "/join #h");
        t.line(g, "/quit");
    }
    t.recv(a);
    let (c, _) = t.txt();
    t.line(c, "/join #h");
    let got = t.lines(c);
    assert!(!got.iter().any(|l| l.contains("long ago")), "{got:?}");
    assert!(
        !got.iter().any(|l| l.contains("recent messages")),
        "{got:?}"
    );
    // Within reach, it is found.
    t.say(a, "#h", 2, "just now");
    t.recv(a);
    let (d, _) = t.txt();
    t.line(d, "/join #h");
    let got = t.lines(d);
    assert!(got.iter().any(|l| l == "<alice> just now"), "{got:?}");
}

/// A person's first screen in a room is its conversation: nc's join replay has the last
/// `history_on_join` chat lines (says, actions, notices), not the comings and goings among the
/// last events, which in a busy lobby were most of them (found by the new-user walk-through).
/// What happens live is still shown.
#[test]
fn a_text_join_replays_the_last_lines_not_the_comings_and_goings() {
    let mut cfg = config();
    cfg.history_on_join = 3;
    let mut t = T::with(cfg);
    let a = t.bin("alice");
    t.join(a, "#h");
    t.send(
        a,
        &ClientMsg::Topic {
            room: room("#h"),
            topic: Some(text("plans")),
        },
    );
    for i in 1..=4 {
        t.say(a, "#h", i, &format!("m{i}"));
        // Guests come and go between the lines, more of them than the replay's count.
        for _ in 0..3 {
            let g = t.hub.accept(LOCAL, t.now).unwrap();
            t.feed(g, b"\r\n");
            t.line(g, "/join #h");
            t.line(g, "/quit");
        }
    }
    let (v, vn) = t.txt();
    t.line(v, "/join #h");
    t.line(v, "/me waves");
    t.line(v, "/nick vera");
    t.line(v, "/part #h");
    t.recv(a);
    let (c, _) = t.txt();
    t.line(c, "/join #h");
    let got = t.lines(c);
    let from = got
        .iter()
        .position(|l| l == "-- recent messages in #h:")
        .unwrap_or_else(|| panic!("{got:?}"));
    assert_eq!(
        got[from..],
        [
            "-- recent messages in #h:".to_owned(),
            "<alice> m3".to_owned(),
            "<alice> m4".to_owned(),
            format!("* {vn} waves"),
            "-- (end of recent messages)".to_owned(),
        ],
        "{got:?}"
    );
    // The topic is said by the join's own lines, as it is now.
    assert!(got[..from].iter().any(|l| l.contains("plans")), "{got:?}");
    // Live, a join still shows.
    let (g, gn) = t.txt();
    t.lines(c);
    t.line(g, "/join #h");
    assert_eq!(t.lines(c), vec![format!("-- {gn} joined #h")]);
    // A room where nothing was said yet replays nothing, not an empty "recent messages".
    t.join(a, "#quiet");
    t.lines(g);
    t.line(g, "/join #quiet");
    let got = t.lines(g);
    assert!(
        !got.iter().any(|l| l.contains("recent messages")),
        "{got:?}"
    );
    // `/history` there pages back from the join (not from the newest event, the join itself).
    t.line(g, "/history");
    let got = t.lines(g);
    assert!(
        got.iter().any(|l| l.ends_with("-- alice joined #quiet")),
        "{got:?}"
    );
    assert!(!got.iter().any(|l| l.contains(&gn)), "{got:?}");
}

#[test]
fn history_replay_on_join() {
    let mut cfg = config();
    cfg.history_on_join = 3;
    let mut t = T::with(cfg);
    let a = t.bin("alice");
    t.join(a, "#h");
    for i in 1..=5 {
        t.say(a, "#h", i, &format!("m{i}"));
    }
    t.recv(a);
    let b = t.bin("bob");
    let got = t.join(b, "#h");
    let ServerMsg::Joined { seq, .. } = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(seq.0, 7, "alice's join, five says, bob's join");
    let seqs: Vec<u64> = events(&got).iter().map(|e| e.seq.0).collect();
    assert_eq!(seqs, vec![5, 6, 7]);
    assert_eq!(says(&got), vec!["m4", "m5"]);
}

/// A join's replay is one piece of the joiner's transmit (a slice of a buffer of its own), not
/// a piece per event, and arrives whole and in order, for binary clients and people alike;
/// the members' copies of the join are one buffer shared by all (issue 22's idle memory: the
/// connect burst's transient allocations).
#[test]
fn a_joins_replay_is_one_piece_and_the_members_share_one_copy() {
    let mut cfg = config();
    cfg.flood_refill = Millis::ZERO;
    let mut t = T::with(cfg);
    let a = t.bin("alice");
    t.join(a, "#h");
    for i in 1..=20 {
        t.say(a, "#h", i, &format!("m{i}"));
    }
    t.recv(a);
    let (p, _) = t.txt();
    t.line(p, "/join #h");
    let lines = t.lines(p);
    for i in 1..=20 {
        assert!(
            lines.iter().any(|l| l.ends_with(&format!("m{i}"))),
            "m{i} replayed to a person: {lines:?}"
        );
    }
    let members: Vec<ConnId> = (0..3).map(|i| t.bin(&format!("m{i}"))).collect();
    for &m in &members {
        t.join(m, "#h");
        t.recv(m);
    }
    t.recv(a);
    t.raw.clear();
    let b = t.bin("bob");
    t.raw.clear();
    let got = t.join(b, "#h");
    let seqs: Vec<u64> = events(&got).iter().map(|e| e.seq.0).collect();
    assert_eq!(seqs, (1..=26).collect::<Vec<u64>>(), "{got:?}");
    assert_eq!(says(&got).len(), 20);
    let pieces: usize = t
        .raw
        .iter()
        .filter(|x| x.conn == b)
        .map(|x| x.data.len())
        .sum();
    assert!(pieces <= 3, "{pieces} pieces for a replay of 26 events");
    // The join as the members got it: the same bytes for every member (a slice of the cycle
    // buffer or one copy), not a copy each.
    let copies: Vec<*const u8> = t
        .raw
        .iter()
        .filter(|x| members.contains(&x.conn) || x.conn == a)
        .map(|x| x.data[0].as_ptr())
        .collect();
    assert_eq!(copies.len(), 4, "{:?}", t.raw);
    assert!(copies.iter().all(|p| *p == copies[0]), "{copies:?}");
}

#[test]
fn history_stays_within_the_server_wide_budget() {
    use crate::limits::HISTORY_MIN_KEPT;
    let mut cfg = config();
    cfg.flood_refill = Millis::ZERO;
    cfg.history_budget_bytes = 40_000;
    let mut t = T::with(cfg);
    let a = t.bin("alice");
    let text = "x".repeat(500);
    for r in 0..6 {
        let room = format!("#r{r}");
        t.join(a, &room);
        for i in 0..40 {
            t.say(a, &room, r * 100 + i + 1, &text);
        }
        t.recv(a);
    }
    // Each stored event costs about twice its ~540-byte frame; a room may keep its minimum
    // beyond the budget, nothing more.
    let worst = 40_000 + 6 * HISTORY_MIN_KEPT * 1_300;
    assert!(t.hub.history_bytes() <= worst, "{}", t.hub.history_bytes());
    assert!(
        t.hub.history_bytes() > 20_000,
        "history is kept up to the budget"
    );
    // The room written last still shows a join its minimum of context.
    let b = t.bin("bob");
    let got = t.join(b, "#r5");
    assert!(
        says(&got).len() >= HISTORY_MIN_KEPT - 1,
        "{}",
        says(&got).len()
    );
    // Leaving empties a room: its history goes, and the total with it.
    let before = t.hub.history_bytes();
    t.send(
        a,
        &ClientMsg::Part {
            room: room("#r0"),
            reason: None,
        },
    );
    t.recv(a);
    assert!(t.hub.history_bytes() < before);
}

#[test]
fn mode_detection_by_first_byte_and_silence() {
    let mut t = T::new();
    // A printable first byte: text at once, the line is processed after the welcome.
    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.feed(c, b"/nick zed\n");
    let l = t.lines(c);
    assert!(l[0].contains("Welcome"));
    assert!(
        l.contains(&"-- you are now known as zed".to_string()),
        "{l:?}"
    );
    assert_eq!(t.hub.kind(c), Some(ConnKind::Text));
    // 0x00: binary; nothing is sent until hello, even after the text wait.
    let b = t.hub.accept(LOCAL, t.now).unwrap();
    t.feed(b, &[0]);
    t.advance(1_000);
    assert_eq!(t.hub.kind(b), Some(ConnKind::Binary));
    assert!(!t.inbox.contains_key(&b));
    // Silence: text.
    let s = t.hub.accept(LOCAL, t.now).unwrap();
    t.advance(399);
    assert!(!t.inbox.contains_key(&s));
    t.advance(1);
    assert!(t.lines(s)[0].contains("Welcome"));
    // Magic and hello split at every byte boundary still work.
    let d = t.hub.accept(LOCAL, t.now).unwrap();
    let mut all = MAGIC.to_vec();
    all.extend_from_slice(
        &encode_frame(&ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: nick("split"),
            resume: None,
        })
        .unwrap(),
    );
    for byte in all {
        t.feed(d, &[byte]);
    }
    assert!(matches!(&t.recv(d)[..], [ServerMsg::Welcome { .. }]));
}

fn fatal(t: &mut T, c: ConnId) -> (ErrorKind, String) {
    let got = t.recv(c);
    assert!(t.closed(c), "{got:?}");
    assert!(matches!(got.last(), Some(ServerMsg::Bye { .. })), "{got:?}");
    let e = errors(&got);
    assert_eq!(e.len(), 1, "{got:?}");
    (e[0].0, e[0].2.clone())
}

#[test]
fn bad_magic_oversize_malformed_version_and_order() {
    let mut t = T::new();
    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.feed(c, b"\x00NTX");
    assert_eq!(fatal(&mut t, c).0, ErrorKind::Protocol);

    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.feed(c, &MAGIC);
    t.feed(c, &((crate::limits::MAX_FRAME as u32) + 1).to_be_bytes());
    let (k, d) = fatal(&mut t, c);
    assert_eq!(k, ErrorKind::Protocol);
    assert!(d.contains("limit"), "{d}");
    assert_eq!(t.limit(c, Limit::Frame), 1);

    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.feed(c, &MAGIC);
    t.feed(c, &[0, 0, 0, 3, 0xEE, 0xEE, 0xEE]);
    let (k, d) = fatal(&mut t, c);
    assert_eq!(k, ErrorKind::Protocol);
    assert!(d.contains("malformed"), "{d}");
    // Input after the close is ignored.
    t.feed(c, b"more");
    assert!(t.recv(c).is_empty());

    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.feed(c, &MAGIC);
    t.send(
        c,
        &ClientMsg::Hello {
            version: 99,
            nick: nick("future"),
            resume: None,
        },
    );
    let (k, d) = fatal(&mut t, c);
    assert_eq!(k, ErrorKind::Version);
    assert!(d.contains(&format!("{PROTOCOL_VERSION}, not 99")), "{d}");

    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.feed(c, &MAGIC);
    t.send(c, &ClientMsg::Rooms);
    assert_eq!(fatal(&mut t, c).0, ErrorKind::Protocol);
}

#[test]
fn hello_timeout() {
    let mut t = T::new();
    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.feed(c, &MAGIC[..2]);
    t.advance(9_999);
    assert!(!t.closed(c));
    t.advance(1);
    let (k, d) = fatal(&mut t, c);
    assert_eq!(k, ErrorKind::Timeout);
    assert!(d.contains("hello"));
    t.hub.handle_close(c, t.now);
    t.hub.handle_close(c, t.now); // twice: no-op
    assert_eq!(t.hub.connections(), 0);
    assert_eq!(t.hub.poll_timeout(), None, "nothing left to wake for");
}

#[test]
fn long_lines_non_utf8_and_crlf() {
    let mut t = T::new();
    let (c, me) = t.txt();
    let (d, _) = t.txt();
    t.lines(c);
    let mut long = vec![b'x'; crate::limits::MAX_LINE_BYTES + 100];
    long.extend_from_slice(b"\r\nok\r\n");
    t.feed(c, &long);
    let lc = t.lines(c);
    // Cut where a message ends, said once, and the cut line is said: not refused whole.
    assert_eq!(lc, ["ERROR: line too long (max 2000 bytes), cut"]);
    let x = "x".repeat(crate::limits::MAX_TEXT_BYTES);
    assert_eq!(
        t.lines(d),
        vec![format!("<{me}> {x}"), format!("<{me}> ok")]
    );
    assert_eq!(t.limit(c, Limit::Line), 1);
    // Over the message limit but within the reader's: cut the same way, at a character's
    // boundary (a 3-byte character straddles the limit here).
    let mut near = "y".repeat(crate::limits::MAX_TEXT_BYTES - 1);
    near.push_str("\u{20AC}tail");
    t.line(c, &near);
    assert_eq!(t.lines(c), ["ERROR: line too long (max 2000 bytes), cut"]);
    let y = "y".repeat(crate::limits::MAX_TEXT_BYTES - 1);
    assert_eq!(t.lines(d), vec![format!("<{me}> {y}")]);
    // A command's line too: /me is cut, and said.
    t.line(
        c,
        &format!("/me {}", "z".repeat(crate::limits::MAX_LINE_BYTES)),
    );
    assert_eq!(t.lines(c).len(), 1);
    let z = "z".repeat(crate::limits::MAX_TEXT_BYTES - 4);
    assert_eq!(t.lines(d), vec![format!("* {me} {z}")]);

    t.feed(c, b"caf\xe9 \xfe ok\n");
    let got = t.lines(d);
    assert_eq!(got, vec![format!("<{me}> caf\u{FFFD} \u{FFFD} ok")]);
    t.feed(c, b"lf only\nand crlf\r\n");
    assert_eq!(
        t.lines(d),
        vec![format!("<{me}> lf only"), format!("<{me}> and crlf")]
    );
    // A line split across reads.
    t.feed(c, b"hal");
    t.feed(c, b"f\r");
    assert!(t.lines(d).is_empty());
    t.feed(c, b"\n");
    assert_eq!(t.lines(d), vec![format!("<{me}> half")]);
}

/// A client that says its lines, quits and hangs up at once (the natter CLI at the end of its
/// input) quits, even when its `Quit` waits for a flood token as the socket closes: its nick is
/// free and the room hears it left now, not after the resume window, as if its line had dropped.
#[test]
fn a_quit_waiting_for_a_flood_token_when_the_peer_hangs_up_still_quits() {
    let mut cfg = config();
    cfg.flood_burst = 2;
    cfg.flood_refill = Millis(10_000);
    let mut t = T::with(cfg);
    let a = t.bin("alice");
    let b = t.bin("bob");
    t.join(b, "#f");
    t.join(a, "#f"); // one token used: 1 left
    t.recv(b);
    t.say(a, "#f", 1, "last words"); // the last token
    assert_eq!(says(&t.recv(b)), vec!["last words"]);
    t.send(
        a,
        &ClientMsg::Quit {
            reason: Some(text("done")),
        },
    );
    assert!(t.recv(b).is_empty(), "the quit waits for a token");
    t.hub.handle_close(a, t.now);
    t.pump();
    let got = t.recv(b);
    let ev = events(&got);
    assert_eq!(
        (ev[0].from.as_str(), &ev[0].kind),
        (
            "alice",
            &EventKind::Quit {
                reason: Some(text("done"))
            }
        ),
        "{got:?}"
    );
    assert_eq!(t.hub.detached(), 0, "nothing waits for a resume");
    let again = t.bin("alice");
    assert_eq!(
        t.hub.nick(again).unwrap().as_str(),
        "alice",
        "the nick is free"
    );
}

#[test]
fn flood_burst_then_delay_then_refusal() {
    let mut cfg = config();
    cfg.flood_burst = 3;
    cfg.flood_queue = 2;
    cfg.flood_refill = Millis(100);
    let mut t = T::with(cfg);
    let a = t.bin("alice");
    let b = t.bin("bob");
    t.join(b, "#f");
    t.join(a, "#f"); // one token used: 2 left
    t.recv(b);
    let mut all = Vec::new();
    for i in 1..=6 {
        all.extend_from_slice(
            &encode_frame(&ClientMsg::Say {
                room: room("#f"),
                id: MsgId(i),
                text: text(&format!("m{i}")),
            })
            .unwrap(),
        );
    }
    t.feed(a, &all);
    // Two go now, two wait, two are refused with their ids.
    assert_eq!(says(&t.recv(b)), vec!["m1", "m2"]);
    let got = t.recv(a);
    assert_eq!(says(&got), vec!["m1", "m2"]);
    let e = errors(&got);
    assert_eq!(
        e.iter().map(|e| (e.0, e.1.clone())).collect::<Vec<_>>(),
        vec![
            (ErrorKind::Flood, Re::Msg(MsgId(5))),
            (ErrorKind::Flood, Re::Msg(MsgId(6)))
        ]
    );
    assert!(e[0].2.contains("too fast"));
    assert_eq!(t.limit(a, Limit::Flood), 1, "logged once");
    assert!(t.hub.poll_timeout().unwrap() <= t.now + Millis(100));
    // With its queue full, the shell is told to leave alice's input in her socket a moment
    // (anything read would be refused); bob may send at once.
    let resume = t.hub.read_after(a).expect("a full queue pauses reading");
    assert_eq!(resume, t.now + crate::limits::FLOOD_READ_GAP);
    assert_eq!(t.hub.read_after(b), None);
    // A ping is metered like everything that gets an answer: with the queue full it is refused.
    t.send(a, &ClientMsg::Ping { token: 9 });
    assert_eq!(errors(&t.recv(a))[0].0, ErrorKind::Flood);
    // A refused scrollback request names its room, like other history requests.
    t.send(
        a,
        &ClientMsg::Older {
            room: room("#f"),
            before: Seq(0),
            limit: 5,
        },
    );
    let e = errors(&t.recv(a));
    assert_eq!(
        (e[0].0, e[0].1.clone()),
        (ErrorKind::Flood, Re::Room(room("#f")))
    );
    // A refused account request says so (version 14): a refusal naming nothing is not its
    // answer. (A client of 13 is sent `Conn`: `wire::encode_frame_for`.)
    t.send(
        a,
        &ClientMsg::SignIn {
            account: nick("alice"),
            proof: crate::wire::Proof::Password(crate::types::Password("pw".into())),
            remember: false,
        },
    );
    let e = errors(&t.recv(a));
    assert_eq!((e[0].0, e[0].1.clone()), (ErrorKind::Flood, Re::Account));
    t.advance(100);
    assert_eq!(says(&t.recv(b)), vec!["m3"]);
    // A place in the queue again: read on.
    assert_eq!(t.hub.read_after(a), None);
    t.advance(100);
    assert_eq!(says(&t.recv(b)), vec!["m4"]);
    t.advance(1_000);
    assert!(t.recv(b).is_empty());
    t.recv(a);
    // With tokens back, a ping is answered at once.
    t.send(a, &ClientMsg::Ping { token: 10 });
    assert_eq!(t.recv(a), vec![ServerMsg::Pong { token: 10 }]);
    // Text users are told in words.
    let (c, _) = t.txt();
    for i in 0..10 {
        t.line(c, &format!("spam {i}"));
    }
    let lc = t.lines(c);
    assert!(
        lc.iter()
            .any(|l| l.starts_with("ERROR: you are sending too fast")),
        "{lc:?}"
    );
}

#[test]
fn per_ip_limit_connect_rate_and_loopback() {
    let mut cfg = config();
    cfg.max_connections_per_ip = 2;
    cfg.max_connects_per_window = 3;
    let mut t = T::with(cfg);
    let far = ip("203.0.113.5");
    let c1 = t.hub.accept(far, t.now).unwrap();
    let c2 = t.hub.accept(far, t.now).unwrap();
    let c3 = t.hub.accept(far, t.now).unwrap();
    t.pump();
    assert_eq!(t.limit(c3, Limit::PerIp), 1);
    // Told in its own mode once known: text.
    t.feed(c3, b"hi\n");
    let l = t.lines(c3);
    assert_eq!(l.len(), 1);
    assert!(
        l[0].starts_with("ERROR: your address already has 2 connections"),
        "{l:?}"
    );
    assert!(t.closed(c3));
    t.hub.handle_close(c3, t.now);
    // Binary: Error{Full} then Bye.
    t.hub.handle_close(c2, t.now);
    let c4 = t.hub.accept(far, t.now).unwrap(); // the 4th connect in the window
    t.pump();
    t.feed(c4, &MAGIC);
    assert_eq!(fatal(&mut t, c4).0, ErrorKind::Full);
    assert_eq!(t.limit(c4, Limit::ConnectRate), 1);
    t.hub.handle_close(c4, t.now);
    // After the window, connects are fine again.
    t.advance(10_000);
    let (_, got) = t.hello(far, "late", None);
    assert!(matches!(&got[..], [ServerMsg::Welcome { .. }]));
    // Loopback is exempt.
    for _ in 0..10 {
        let c = t.hub.accept(LOCAL, t.now).unwrap();
        t.feed(c, b"x\n");
        assert!(!t.closed(c));
    }
    let _ = c1;
    // Total connections.
    let mut cfg = config();
    cfg.max_connections = 1;
    let mut t = T::with(cfg);
    t.bin("one");
    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.advance(500);
    assert_eq!(
        t.lines(c),
        vec!["ERROR: the server is full, try again later".to_string()]
    );
    // Far past the limits, accept refuses outright.
    let mut n = 0;
    while t.hub.accept(LOCAL, t.now).is_ok() {
        n += 1;
        assert!(n <= MAX_REFUSED_PENDING);
    }
    assert_eq!(t.hub.accept(LOCAL, t.now), Err(Refused::Overloaded));
}

#[test]
fn slow_consumer_gets_a_gap_and_others_are_unaffected() {
    let mut cfg = config();
    cfg.outbound_max_msgs = 10;
    cfg.flood_burst = 1000;
    let mut t = T::with(cfg);
    let a = t.bin("alice");
    let b = t.bin("bob");
    let s = t.bin("slow");
    for c in [a, b, s] {
        t.join(c, "#busy");
    }
    t.recv(a);
    t.recv(b);
    t.stalled.insert(s);
    let first_seq = 4; // three joins
    for i in 0..30 {
        t.say(a, "#busy", i + 1, &format!("m{i}"));
        assert!(t.hub.queued_msgs(s).unwrap() <= 10);
    }
    assert_eq!(says(&t.recv(b)).len(), 30, "others get everything");
    assert_eq!(t.hub.queued_msgs(b), Some(0));
    let got = t.recv(s);
    assert_eq!(got.len(), 10);
    assert_eq!(t.limit(s, Limit::Queue), 1);
    // The reader catches up: the gap marker covers exactly what it missed.
    let n = t.unwritten.remove(&s).unwrap();
    t.stalled.remove(&s);
    t.hub.handle_written(s, n, t.now);
    t.pump();
    assert_eq!(
        t.recv(s),
        vec![ServerMsg::Gap {
            room: room("#busy"),
            first: Seq(first_seq + 10),
            last: Seq(first_seq + 29)
        }]
    );
    t.say(a, "#busy", 31, "after");
    assert_eq!(says(&t.recv(s)), vec!["after"]);
    // It refills from history: as much as its queue takes, the rest as it drains (it asks once).
    t.send(
        s,
        &ClientMsg::History {
            room: room("#busy"),
            after: Seq(first_seq + 9),
        },
    );
    assert!(t.hub.queued_msgs(s).unwrap() <= 10);
    let got = t.recv(s);
    let seqs: Vec<u64> = events(&got).iter().map(|e| e.seq.0).collect();
    assert_eq!(
        seqs,
        ((first_seq + 10)..=(first_seq + 30)).collect::<Vec<_>>()
    );
    assert!(
        !got.iter().any(|m| matches!(m, ServerMsg::Gap { .. })),
        "{got:?}"
    );
}

/// A read's says go to every member together (`Hub::broadcast`): in order, and whatever else
/// the read brings its sender (here a refusal) comes after the events before it and before the
/// ones after it. (Debug builds also check that nothing is queued while events wait.)
#[test]
fn a_reads_says_are_delivered_together_in_order_with_what_else_it_brings() {
    let mut t = T::new();
    let a = t.bin("alice");
    let b = t.bin("bob");
    let c = t.txt().0;
    for m in [a, b] {
        t.join(m, "#r");
    }
    t.line(c, "/join #r");
    t.lines(c);
    t.recv(a);
    t.recv(b);
    let before = t.hub.stats().deliveries;
    let mut read = Vec::new();
    for (id, room_name, words) in [
        (1, "#r", "one"),
        (2, "#r", "two"),
        (3, "#elsewhere", "lost"),
        (4, "#r", "three"),
    ] {
        read.extend_from_slice(
            &encode_frame(&ClientMsg::Say {
                room: room(room_name),
                id: MsgId(id),
                text: text(words),
            })
            .unwrap(),
        );
    }
    read.extend_from_slice(&encode_frame(&ClientMsg::Ping { token: 9 }).unwrap());
    t.feed(a, &read);
    assert_eq!(says(&t.recv(b)), ["one", "two", "three"]);
    let lines = t.lines(c);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[2].ends_with("three"), "{lines:?}");
    let got = t.recv(a);
    let shape: Vec<String> = got
        .iter()
        .map(|m| match m {
            ServerMsg::Event(e) => format!("event {}", e.seq.0),
            ServerMsg::Error { kind, .. } => format!("{kind:?}"),
            ServerMsg::Pong { token } => format!("pong {token}"),
            other => format!("{other:?}"),
        })
        .collect();
    let seq = events(&got)[0].seq.0;
    assert_eq!(
        shape,
        [
            format!("event {seq}"),
            format!("event {}", seq + 1),
            "NotInRoom".to_owned(),
            format!("event {}", seq + 2),
            "pong 9".to_owned(),
        ]
    );
    assert_eq!(
        t.hub.stats().deliveries - before,
        9,
        "three events, three members"
    );
}

/// A read's says that do not all fit a member's queue go one by one, as they would have one
/// read each: the queue takes what fits, the rest is its gap, and the sender's own echo that
/// did not fit is acknowledged instead.
#[test]
fn a_reads_says_that_do_not_all_fit_fill_the_queue_and_the_rest_is_a_gap() {
    let mut cfg = config();
    cfg.outbound_max_msgs = 3;
    cfg.flood_burst = 1000;
    let mut t = T::with(cfg);
    let a = t.bin("alice");
    let s = t.bin("slow");
    for m in [a, s] {
        t.join(m, "#busy");
    }
    t.recv(a);
    t.recv(s);
    t.stalled.insert(s);
    t.stalled.insert(a);
    let read: Vec<u8> = (1..=5)
        .flat_map(|i| {
            encode_frame(&ClientMsg::Say {
                room: room("#busy"),
                id: MsgId(i),
                text: text(&format!("m{i}")),
            })
            .unwrap()
            .to_vec()
        })
        .collect();
    t.feed(a, &read);
    let got = t.recv(s);
    assert_eq!(says(&got), ["m1", "m2", "m3"]);
    let first = events(&got)[0].seq.0;
    let mine = t.recv(a);
    assert_eq!(says(&mine), ["m1", "m2", "m3"]);
    let acks: Vec<MsgId> = mine
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Ack { id } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(acks, [MsgId(4), MsgId(5)], "echoes that did not fit");
    for m in [s, a] {
        let n = t.unwritten.remove(&m).unwrap();
        t.stalled.remove(&m);
        t.hub.handle_written(m, n, t.now);
    }
    t.pump();
    assert_eq!(
        t.recv(s),
        [ServerMsg::Gap {
            room: room("#busy"),
            first: Seq(first + 3),
            last: Seq(first + 4),
        }]
    );
}

/// Delivery looks in a connection's rare part for gaps only when it owes some (`Conn::owes`):
/// a member that joined with history (so it holds a scroll cursor, kept outside the rare part)
/// owes nothing at first, and still has its overflow recorded and gets its gap marker.
#[test]
fn a_member_with_a_scroll_cursor_still_gets_its_gap() {
    let mut cfg = config();
    cfg.outbound_max_msgs = 10;
    cfg.flood_burst = 1000;
    let mut t = T::with(cfg);
    let a = t.bin("alice");
    t.join(a, "#busy");
    t.say(a, "#busy", 1, "before");
    let s = t.bin("slow");
    t.join(s, "#busy");
    t.recv(a);
    t.recv(s);
    let owes = |t: &T| t.hub.conns.get(&s).map(|c| c.owes());
    assert_eq!(owes(&t), Some(false), "a scroll cursor, nothing owed");
    t.stalled.insert(s);
    let before = t.hub.rooms.get(&room("#busy")).unwrap().last_seq.0;
    for i in 0..20 {
        t.say(a, "#busy", i + 2, &format!("m{i}"));
    }
    assert_eq!(t.recv(s).len(), 10);
    assert_eq!(owes(&t), Some(true));
    let n = t.unwritten.remove(&s).unwrap();
    t.stalled.remove(&s);
    t.hub.handle_written(s, n, t.now);
    t.pump();
    assert_eq!(
        t.recv(s),
        vec![ServerMsg::Gap {
            room: room("#busy"),
            first: Seq(before + 11),
            last: Seq(before + 20)
        }]
    );
    assert_eq!(owes(&t), Some(false));
    t.say(a, "#busy", 30, "after");
    assert_eq!(says(&t.recv(s)), vec!["after"]);
}

#[test]
fn the_outbound_total_is_bounded_and_the_slowest_give_way() {
    const FLOOR: usize = 64 * 1024 / 16;
    const TOTAL: usize = 12 * 1024;
    let mut cfg = config();
    cfg.outbound_max_msgs = 10_000;
    cfg.outbound_max_bytes = 64 * 1024;
    cfg.outbound_total_max_bytes = TOTAL;
    cfg.flood_burst = 1000;
    let mut t = T::with(cfg);
    let a = t.bin("alice");
    let b = t.bin("bob");
    let slow: Vec<ConnId> = ["slow1", "slow2", "slow3"].map(|n| t.bin(n)).into();
    for &c in [a, b].iter().chain(&slow) {
        t.join(c, "#busy");
    }
    for &c in [a, b].iter().chain(&slow) {
        t.recv(c);
    }
    t.stalled.extend(slow.iter().copied());
    let line = "x".repeat(100);
    let mut biggest_frame = 0;
    for i in 0..200 {
        t.say(a, "#busy", i + 1, &line);
        biggest_frame = biggest_frame.max(t.raw.iter().map(Transmit::len).max().unwrap_or(0));
        t.raw.clear();
        // Alone, each slow reader could queue all 200 (about 30 KiB); together they stay under
        // the total, plus what readers under the floor may still take.
        assert!(
            t.hub.queued_bytes_total() <= TOTAL + slow.len() * biggest_frame,
            "total {} after {i}",
            t.hub.queued_bytes_total()
        );
        for &s in &slow {
            assert!(
                t.hub.queued_bytes(s).unwrap() <= FLOOR.max(TOTAL / slow.len()) + biggest_frame
            );
        }
    }
    assert_eq!(
        says(&t.recv(b)).len(),
        200,
        "a reader that keeps up gets everything"
    );
    for &s in &slow {
        assert_eq!(t.limit(s, Limit::Queue), 1, "{s}");
        let got = says(&t.recv(s)).len();
        assert!((1..200).contains(&got), "{s} got {got}");
    }
    // One slow reader catches up: the gap marker follows, and it takes traffic again.
    let s = slow[0];
    let n = t.unwritten.remove(&s).unwrap();
    t.stalled.remove(&s);
    t.hub.handle_written(s, n, t.now);
    t.pump();
    let got = t.recv(s);
    assert!(matches!(got.as_slice(), [ServerMsg::Gap { .. }]), "{got:?}");
    t.say(a, "#busy", 201, "after");
    assert_eq!(says(&t.recv(s)), vec!["after"]);
    // Closing the others gives their backlog back: nothing is counted twice or left behind.
    for &s in &slow[1..] {
        t.hub.handle_close(s, t.now);
    }
    t.pump();
    assert_eq!(t.hub.queued_bytes_total(), 0);
}

#[test]
fn slow_text_consumer_never_exceeds_the_limit_and_hard_limit_closes() {
    let mut cfg = config();
    cfg.outbound_max_bytes = 2_000;
    cfg.flood_burst = 10_000;
    let mut t = T::with(cfg);
    let a = t.bin("alice");
    t.join(a, "#lobby");
    let (s, _) = t.txt();
    t.recv(a);
    t.stalled.insert(s);
    for i in 0..200 {
        t.say(a, "#lobby", i + 1, "some words to fill the queue up");
        assert!(t.hub.queued_bytes(s).unwrap() <= 2_000);
    }
    // Replies may go further, up to the hard limit; then it's closed.
    for _ in 0..10_000 {
        if t.closed(s) {
            break;
        }
        t.line(s, "/help");
    }
    assert!(t.closed(s));
    assert!(t.hub.queued_bytes(s).unwrap() <= 2_000 + 64 * 1024 + 100);
    assert!(String::from_utf8_lossy(&t.inbox[&s]).contains("ERROR: you are reading too slowly"));
    // Its room hears why it went, in the words IRC servers use.
    let quits: Vec<Option<String>> = events(&t.recv(a))
        .into_iter()
        .filter_map(|e| match &e.kind {
            EventKind::Quit { reason } => Some(reason.as_ref().map(|r| r.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(quits, [Some("SendQ exceeded".to_owned())]);
}

#[test]
fn resume_with_missed_messages_exactly_once() {
    let mut t = T::new();
    let (a, _, token) = t.bin_from(LOCAL, "alice");
    let b = t.bin("bob");
    t.join(a, "#r");
    t.join(a, "#q");
    t.join(b, "#r");
    t.say(b, "#r", 1, "before");
    let got = t.recv(a);
    let last_seen = events(&got).last().unwrap().seq;
    t.recv(b);
    // alice's socket dies; bob doesn't hear of it.
    t.hub.handle_close(a, t.now);
    t.pump();
    assert_eq!(t.hub.detached(), 1);
    t.say(b, "#r", 2, "while away 1");
    t.say(b, "#r", 3, "while away 2");
    assert_eq!(says(&t.recv(b)), vec!["while away 1", "while away 2"]);
    let (a2, got) = t.resume("whatever", token.clone(), vec![(room("#r"), last_seen)]);
    let ServerMsg::Welcome {
        version: PROTOCOL_VERSION,
        nick: welcomed,
        token: new_token,
        resumed: true,
        limits,
    } = &got[0]
    else {
        panic!("not a resumed welcome: {:?}", got[0]);
    };
    assert_eq!(welcomed, &nick("alice"));
    assert_eq!(*limits, Limits::default());
    assert_ne!(new_token, &token, "every welcome issues a new token");
    assert!(got.iter().any(
        |m| matches!(m, ServerMsg::Joined { room: r, seq, .. } if *r == room("#r") && seq.0 == 5)
    ));
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Joined { room: r, .. } if *r == room("#q")))
    );
    assert_eq!(says(&got), vec!["while away 1", "while away 2"]);
    assert!(t.recv(b).is_empty(), "no join/quit notices");
    assert_eq!(t.hub.detached(), 0);
    assert!(
        t.events
            .iter()
            .any(|e| matches!(e, HubEvent::Ready { conn, resumed: true, .. } if *conn == a2))
    );
    // Live again.
    t.say(b, "#r", 4, "welcome back");
    assert_eq!(says(&t.recv(a2)), vec!["welcome back"]);
}

#[test]
fn after_a_resume_older_from_0_pages_back_from_what_the_replay_showed() {
    // PROTOCOL.md: `Older { before: 0 }` is "below the oldest this connection was shown". A
    // resumed connection was shown the events after the seq it named; it got them again as
    // `Past` (and the room's newest), as if nothing had been shown.
    let mut t = T::new();
    let (a, _, token) = t.bin_from(LOCAL, "alice");
    let b = t.bin("bob");
    t.join(a, "#r");
    t.join(b, "#r");
    t.say(a, "#r", 1, "one");
    t.say(a, "#r", 2, "two");
    let last_seen = events(&t.recv(a)).last().unwrap().seq;
    t.recv(b);
    t.hub.handle_close(a, t.now);
    t.pump();
    t.say(b, "#r", 1, "while away 1");
    t.say(b, "#r", 2, "while away 2");
    t.recv(b);
    let (a2, got) = t.resume("alice", token, vec![(room("#r"), last_seen)]);
    assert_eq!(says(&got), vec!["while away 1", "while away 2"]);
    t.send(
        a2,
        &ClientMsg::Older {
            room: room("#r"),
            before: Seq(0),
            limit: 10,
        },
    );
    let got = t.recv(a2);
    let seqs: Vec<u64> = got
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Past(ev) => Some(ev.seq.0),
            _ => None,
        })
        .collect();
    assert!(
        !seqs.is_empty() && seqs.iter().all(|s| *s <= last_seen.0),
        "only what came before the replay: {got:?}"
    );
    assert_eq!(*seqs.last().unwrap(), last_seen.0);
}

#[test]
fn resume_after_the_ring_lost_some_gets_a_gap() {
    let mut cfg = config();
    cfg.history_len = 4;
    cfg.flood_burst = 100;
    let mut t = T::with(cfg);
    let (a, _, token) = t.bin_from(LOCAL, "alice");
    let b = t.bin("bob");
    t.join(a, "#r");
    t.join(b, "#r");
    let seen = events(&t.recv(a)).last().unwrap().seq; // 2
    t.hub.handle_close(a, t.now);
    for i in 1..=10 {
        t.say(b, "#r", i, &format!("m{i}")); // seqs 3..=12
    }
    let (_, got) = t.resume("alice", token, vec![(room("#r"), seen)]);
    let gap = got
        .iter()
        .position(|m| matches!(m, ServerMsg::Gap { .. }))
        .unwrap();
    assert_eq!(
        got[gap],
        ServerMsg::Gap {
            room: room("#r"),
            first: Seq(3),
            last: Seq(8)
        }
    );
    assert_eq!(says(&got[gap..]), vec!["m7", "m8", "m9", "m10"]);
}

#[test]
fn resume_with_a_bad_token_starts_fresh_and_grace_expiry_quits() {
    // No keepalive traffic in the way: bob's test client does not answer pings.
    let mut t = T::with(Config {
        ping_after: Millis(1_000_000),
        ..config()
    });
    let (a, _, token) = t.bin_from(LOCAL, "alice");
    let b = t.bin("bob");
    t.join(a, "#r");
    t.join(b, "#r");
    t.recv(b);
    let (_, got) = t.resume("alice", ResumeToken([1; 32]), vec![]);
    assert_eq!(errors(&got)[0].0, ErrorKind::ResumeFailed);
    assert!(
        matches!(&got[1], ServerMsg::Welcome { resumed: false, nick, .. } if nick.as_str() == "alice_2")
    );

    // alice drops; after the grace, the others hear she quit, and her token is dead.
    t.hub.handle_close(a, t.now);
    t.advance(RESUME_GRACE_MS - 1);
    assert!(t.recv(b).is_empty());
    t.advance(1);
    let got = t.recv(b);
    assert!(
        matches!(&events(&got)[0].kind, EventKind::Quit { .. }),
        "{got:?}"
    );
    assert_eq!(t.hub.detached(), 0);
    let (_, got) = t.resume("alice", token, vec![]);
    assert_eq!(errors(&got)[0].0, ErrorKind::ResumeFailed);
    assert!(
        matches!(&got[1], ServerMsg::Welcome { resumed: false, nick, .. } if nick.as_str() == "alice")
    );
}

const RESUME_GRACE_MS: u64 = crate::limits::RESUME_GRACE.0;

/// A resume read at or after the grace's end, before the shell fired the grace's timer (its
/// read came first): the session was taken back though its time was over. It is over: the
/// others hear the quit, and the newcomer starts afresh under the nick, as a moment later.
#[test]
fn a_resume_after_the_grace_ended_is_refused_though_its_timer_has_not_fired() {
    let mut t = T::with(Config {
        ping_after: Millis(1_000_000),
        ..config()
    });
    let (a, _, token) = t.bin_from(LOCAL, "alice");
    let b = t.bin("bob");
    t.join(a, "#r");
    t.join(b, "#r");
    t.recv(b);
    t.hub.handle_close(a, t.now);
    // The clock moves to the grace's end; no `handle_timeout` yet.
    t.now = Millis(t.now.0 + RESUME_GRACE_MS);
    let (_, got) = t.resume("alice", token, vec![(room("#r"), Seq(1))]);
    assert_eq!(errors(&got)[0].0, ErrorKind::ResumeFailed, "{got:?}");
    assert!(
        matches!(&got[1], ServerMsg::Welcome { resumed: false, nick, .. } if nick.as_str() == "alice"),
        "{got:?}"
    );
    assert!(!t.hub.is_member(&nick("alice"), &room("#r")));
    let got = t.recv(b);
    assert!(
        events(&got)
            .iter()
            .any(|e| e.from.as_str() == "alice" && matches!(e.kind, EventKind::Quit { .. })),
        "{got:?}"
    );
    assert_eq!(t.hub.detached(), 0);
    // A millisecond before the end, the same resume is taken back.
    let (a, _, token) = t.bin_from(LOCAL, "carol");
    t.join(a, "#r");
    t.hub.handle_close(a, t.now);
    t.now = Millis(t.now.0 + RESUME_GRACE_MS - 1);
    let (_, got) = t.resume("carol", token, vec![]);
    assert!(
        matches!(&got[0], ServerMsg::Welcome { resumed: true, .. }),
        "{got:?}"
    );
}

#[test]
fn resume_takes_over_a_connection_not_yet_known_dead() {
    let mut t = T::new();
    let (a, _, token) = t.bin_from(LOCAL, "alice");
    t.join(a, "#r");
    t.recv(a);
    let (a2, got) = t.resume("x", token, vec![(room("#r"), Seq(1))]);
    // The attached connection is probed first; the newcomer waits. The probe is marked as one,
    // for a bridge holding the connection of a page that was left (`bridge::resumed_elsewhere`).
    assert!(got.is_empty(), "{got:?}");
    assert!(matches!(
        t.recv(a)[..],
        [ServerMsg::Ping { token }] if token & crate::wire::PROBE_TOKEN != 0
    ));
    assert!(!t.closed(a));
    t.advance(crate::limits::TAKEOVER_PROBE.0);
    // No answer: the newcomer takes over and the old connection is told.
    assert!(t.closed(a));
    assert!(matches!(t.recv(a).last(), Some(ServerMsg::Bye { .. })));
    assert!(matches!(
        &t.recv(a2)[0],
        ServerMsg::Welcome { resumed: true, .. }
    ));
    t.hub.handle_close(a, t.now);
    assert_eq!(t.hub.nick(a2).unwrap().as_str(), "alice");
    assert!(t.hub.is_member(&nick("alice"), &room("#r")));
    assert_eq!(t.hub.detached(), 0);
}

#[test]
fn a_copied_token_cannot_take_a_live_session_and_an_old_one_opens_nothing() {
    let mut t = T::new();
    let (a, _, token) = t.bin_from(LOCAL, "alice");
    t.join(a, "#r");
    t.recv(a);
    // Someone presents alice's current token while alice is connected and alive.
    let (thief, got) = t.resume("mallory", token.clone(), vec![]);
    assert!(got.is_empty());
    let Some(ServerMsg::Ping { token: probe }) = t.recv(a).pop() else {
        panic!("no probe");
    };
    t.send(a, &ClientMsg::Pong { token: probe });
    let got = t.recv(thief);
    assert_eq!(errors(&got)[0].0, ErrorKind::ResumeFailed, "{got:?}");
    // The same words as a token that opens nothing: whoever holds a copy learns nothing of
    // whether its session is alive.
    assert_eq!(errors(&got)[0].2, super::resume::RESUME_REFUSED);
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Welcome { resumed: false, nick, .. } if nick.as_str() == "mallory")),
        "{got:?}"
    );
    assert!(!t.closed(a), "the owner keeps its session");
    assert_eq!(t.hub.nick(a).unwrap().as_str(), "alice");
    t.advance(crate::limits::TAKEOVER_PROBE.0 * 2);
    assert!(!t.closed(a));
    // alice reconnects for real (its socket died): the token rotates.
    t.hub.handle_close(a, t.now);
    let (a2, got) = t.resume("alice", token.clone(), vec![]);
    let Some(ServerMsg::Welcome {
        resumed: true,
        token: fresh,
        ..
    }) = got.first()
    else {
        panic!("{got:?}");
    };
    assert_ne!(fresh, &token);
    // Once alice's new connection has said anything, the old token opens nothing.
    t.send(a2, &ClientMsg::Ping { token: 1 });
    t.recv(a2);
    let (_, got) = t.resume("mallory2", token, vec![]);
    assert_eq!(errors(&got)[0].0, ErrorKind::ResumeFailed);
    assert_eq!(errors(&got)[0].2, super::resume::RESUME_REFUSED);
    assert!(!t.closed(a2));
    // And a token with the right id but another secret is refused the same way.
    let mut forged = fresh.clone();
    forged.0[31] ^= 1;
    let (_, got) = t.resume("mallory3", forged, vec![]);
    assert_eq!(errors(&got)[0].0, ErrorKind::ResumeFailed);
    assert_eq!(t.hub.nick(a2).unwrap().as_str(), "alice");
}

#[test]
fn bytes_on_their_way_from_a_dropped_connection_do_not_refuse_its_own_resume() {
    // A client says a line, drops its connection and resumes at once: its new connection's
    // hello can reach the hub before the old one's last line and its close. That line used to
    // count as the old connection answering the probe, and the client's own resume was refused
    // (a fresh session as alice_2).
    let mut t = T::new();
    let (a, _, token) = t.bin_from(LOCAL, "alice");
    let b = t.bin("bob");
    t.join(a, "#r");
    t.join(b, "#r");
    t.recv(a);
    t.recv(b);
    let (a2, got) = t.resume("alice", token.clone(), vec![]);
    assert!(got.is_empty(), "probing first: {got:?}");
    t.say(a, "#r", 1, "said before the drop");
    assert!(t.recv(a2).is_empty(), "still probing");
    t.hub.handle_close(a, t.now);
    t.pump();
    let got = t.recv(a2);
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Welcome { resumed: true, nick, .. } if nick.as_str() == "alice")),
        "{got:?}"
    );
    assert_eq!(says(&t.recv(b)), vec!["said before the drop"]);

    // A connection that goes on sending while probed, but never answers the probe's ping, is
    // alive: when the probe's time is up the newcomer is refused.
    let Some(ServerMsg::Welcome { token, .. }) = got
        .into_iter()
        .find(|m| matches!(m, ServerMsg::Welcome { .. }))
    else {
        unreachable!()
    };
    t.send(a2, &ClientMsg::Ping { token: 9 });
    t.recv(a2);
    let (thief, got) = t.resume("mallory", token, vec![]);
    assert!(got.is_empty(), "{got:?}");
    t.say(a2, "#r", 2, "still here");
    assert!(
        t.recv(thief).is_empty(),
        "decided when the probe's time is up"
    );
    t.advance(crate::limits::TAKEOVER_PROBE.0 + 1);
    let got = t.recv(thief);
    assert_eq!(errors(&got)[0].0, ErrorKind::ResumeFailed, "{got:?}");
    assert!(!t.closed(a2));
    assert_eq!(t.hub.nick(a2).unwrap().as_str(), "alice");
}

#[test]
fn ping_pong_and_ping_timeout() {
    let mut t = T::new();
    let (a, _, token) = t.bin_from(LOCAL, "alice");
    t.join(a, "#p");
    // One keepalive sweep for every connection, every half of the shorter of PING_AFTER (30 s)
    // and PING_TIMEOUT (15 s): a ping goes out 30–37.5 s after the peer was last heard, an
    // unanswered one ends it 15–22.5 s after it was sent.
    let every = 7_500;
    // Advances from deadline to deadline until `a` is sent something: the time that took.
    let until_sent = |t: &mut T, most: u64| -> (u64, Vec<ServerMsg>) {
        let start = t.now;
        while let Some(next) = t.hub.poll_timeout() {
            if next.0 > start.0 + most {
                break;
            }
            t.advance(next.0 - t.now.0);
            let got = t.recv(a);
            if !got.is_empty() {
                return (t.now.0 - start.0, got);
            }
        }
        panic!("nothing sent within {most} ms");
    };
    t.send(a, &ClientMsg::Ping { token: 77 });
    assert_eq!(t.recv(a), vec![ServerMsg::Pong { token: 77 }]);
    t.advance(29_999);
    assert!(t.recv(a).is_empty(), "no ping before 30 s of silence");
    let (waited, mut got) = until_sent(&mut t, 1 + every);
    assert!(waited <= 1 + every, "ping {waited} ms late");
    let Some(ServerMsg::Ping { token: pt }) = got.pop() else {
        panic!("no ping: {got:?}")
    };
    // A keepalive is not marked as a takeover probe (a bridge would take it for one).
    assert_eq!(pt & crate::wire::PROBE_TOKEN, 0, "{pt}");
    // An answer within the timeout keeps it, and the next ping waits for 30 s of silence again.
    t.advance(10_000);
    t.send(a, &ClientMsg::Pong { token: pt });
    t.advance(29_999);
    assert!(!t.closed(a));
    assert!(t.recv(a).is_empty(), "pinged again before 30 s of silence");
    let (_, mut got) = until_sent(&mut t, 1 + every);
    assert!(matches!(got.pop(), Some(ServerMsg::Ping { .. })), "{got:?}");
    // No answer: not dropped before PING_TIMEOUT, dropped within one sweep after it.
    t.advance(14_999);
    assert!(!t.closed(a), "dropped before the ping timeout");
    let (waited, got) = until_sent(&mut t, 1 + every);
    assert!(waited <= 1 + every);
    assert!(t.closed(a), "{got:?}");
    assert_eq!(errors(&got)[0].0, ErrorKind::Timeout, "{got:?}");
    // Detached, not gone: it can resume.
    t.hub.handle_close(a, t.now);
    assert_eq!(t.hub.detached(), 1);
    let (_, got) = t.resume("alice", token, vec![]);
    assert!(matches!(&got[0], ServerMsg::Welcome { resumed: true, .. }));
    // Text connections are never pinged.
    let (c, _) = t.txt();
    t.advance(200_000);
    assert!(!t.closed(c));
    assert!(t.lines(c).iter().all(|l| !l.contains("ping")));
}

#[test]
fn forwarded_only_with_the_bridge_secret() {
    let bridge = ip("10.0.0.2");
    let mut cfg = config();
    cfg.trusted_proxies = vec![bridge];
    cfg.max_connections_per_ip = 1;
    let mut t = T::with(cfg);
    // Through the bridge: counted against the browser's address.
    assert!(matches!(
        &t.bridged(bridge, "198.51.100.7", "web")[..],
        [ServerMsg::Welcome { .. }]
    ));
    // The bridge's own address isn't limited (it carries many people) ...
    let mut held = Vec::new();
    for _ in 0..40 {
        let h = t.hub.accept(bridge, t.now).unwrap();
        t.feed(h, &MAGIC);
        held.push(h);
    }
    t.pump();
    assert!(held.iter().all(|h| !t.closed(*h)));
    // ... a second browser from elsewhere gets in ...
    assert!(matches!(
        &t.bridged(bridge, "198.51.100.8", "web")[..],
        [ServerMsg::Welcome { .. }]
    ));
    // ... but a second one from the first browser's address does not.
    let e = t.hub.accept(bridge, t.now).unwrap();
    t.feed(
        e,
        &crate::wire::bridge_preamble("198.51.100.7", TEST_BRIDGE_SECRET),
    );
    assert_eq!(fatal(&mut t, e).0, ErrorKind::Full);
    // Without the bridge secret, from anywhere: refused, as a kind of its own (a bridge set
    // up with another secret said only "protocol error", and logged `ServerClosed`).
    for from in [bridge, ip("192.0.2.1")] {
        let f = t.hub.accept(from, t.now).unwrap();
        t.feed(
            f,
            &crate::wire::bridge_preamble("198.51.100.9", "not the secret, just a guess"),
        );
        let (k, d) = fatal(&mut t, f);
        assert_eq!(k, ErrorKind::BridgeSecret);
        assert!(d.contains("bridge secret is not this server's"), "{d}");
    }
    // A server configured with no secret takes no bridge at all.
    let mut open = T::with(Config {
        bridge_secret: None,
        ..config()
    });
    let f = open.hub.accept(bridge, open.now).unwrap();
    open.feed(
        f,
        &crate::wire::bridge_preamble("198.51.100.9", TEST_BRIDGE_SECRET),
    );
    let (k, d) = fatal(&mut open, f);
    assert_eq!(k, ErrorKind::BridgeSecret);
    assert!(d.contains("this server has no bridge secret"), "{d}");
    // With it, a bridge on any address names its browsers (here one not in trusted_proxies).
    let elsewhere = t.hub.accept(ip("192.0.2.77"), t.now).unwrap();
    t.feed(
        elsewhere,
        &crate::wire::bridge_preamble("198.51.100.12", TEST_BRIDGE_SECRET),
    );
    assert!(!t.closed(elsewhere));
    // Not first (even after only a ping): also an error.
    let p = t.hub.accept(bridge, t.now).unwrap();
    t.feed(p, &MAGIC);
    t.send(p, &ClientMsg::Ping { token: 1 });
    t.send(
        p,
        &ClientMsg::Forwarded {
            peer: "198.51.100.11".into(),
            secret: TEST_BRIDGE_SECRET.into(),
        },
    );
    let (k, d) = fatal(&mut t, p);
    assert_eq!(k, ErrorKind::Protocol);
    assert!(d.contains("forwarded is only accepted first"), "{d}");
    t.hub.handle_close(p, t.now);
    let (g, _) = t.hello(bridge, "g", None);
    t.send(
        g,
        &ClientMsg::Forwarded {
            peer: "198.51.100.10".into(),
            secret: TEST_BRIDGE_SECRET.into(),
        },
    );
    // Its words name what came too late (the `Forwarded`), not only the hello before it: a
    // bridge's author reads them to find what its bridge sent out of turn.
    let (k, d) = fatal(&mut t, g);
    assert_eq!(k, ErrorKind::Protocol);
    assert!(d.contains("forwarded is only accepted first"), "{d}");
}

#[test]
fn shutdown_tells_everyone() {
    let mut t = T::new();
    let a = t.bin("alice");
    let (c, _) = t.txt();
    let pending = t.hub.accept(LOCAL, t.now).unwrap();
    t.hub.shutdown(t.now);
    t.pump();
    assert_eq!(
        t.recv(a),
        vec![ServerMsg::Bye {
            reason: "server shutting down".into()
        }]
    );
    assert_eq!(t.lines(c), vec!["-- server shutting down".to_string()]);
    for x in [a, c, pending] {
        assert!(t.closed(x));
    }
    assert_eq!(t.hub.accept(LOCAL, t.now), Err(Refused::Overloaded));
    for x in [a, c, pending] {
        t.hub.handle_close(x, t.now);
    }
    assert_eq!(t.hub.connections(), 0);
}

/// nc and IRC users cannot resume, so a restart ends them for good, unlike natter's clients
/// (and accounts kept always-on): their rooms hear them quit before the server goes, and keep
/// it in history, so that whoever resumes after the restart, or joins later, reads that they
/// went. (They used to vanish without a word: a page resuming after a restart still counted
/// them among the room's people in its conversation, and read their later joins as doubles.)
#[test]
fn shutdown_quits_the_users_who_cannot_resume() {
    let mut t = T::new();
    let a = t.bin("alice");
    t.join(a, "#d");
    let (c, n) = t.txt();
    t.line(c, "/join #d");
    t.lines(c);
    let (k, kn) = t.txt();
    t.line(k, "/nick kept");
    t.line(k, "/register a long password");
    t.pump();
    t.line(k, "/join #d");
    t.lines(k);
    t.recv(a);
    t.hub.shutdown(t.now);
    t.pump();
    let got = t.recv(a);
    let quits: Vec<(String, String, Option<String>)> = got
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Event(RoomEvent {
                room,
                from,
                kind: EventKind::Quit { reason },
                ..
            }) => Some((
                room.to_string(),
                from.to_string(),
                reason.as_ref().map(|r| r.to_string()),
            )),
            _ => None,
        })
        .collect();
    let why = Some("server shutting down".to_string());
    // In the room alice shares with the nc user; the always-on account stays.
    assert_eq!(
        quits,
        [("#d".to_string(), n.clone(), why)],
        "{got:?} ({kn} registered as kept)"
    );
    assert!(matches!(got.last(), Some(ServerMsg::Bye { .. })), "{got:?}");
    // And in the rooms' history, for whoever resumes or joins after the restart.
    let d = t.hub.rooms.get(&room("#d")).expect("#d is there");
    assert!(
        d.events()
            .any(|e| matches!(&e.kind, EventKind::Quit { .. }) && e.from.as_str() == n),
        "no quit of {n} in #d's history"
    );
}

#[test]
fn resend_is_acked_not_delivered_twice() {
    let mut t = T::new();
    let a = t.bin("alice");
    let b = t.bin("bob");
    t.join(a, "#d");
    t.join(b, "#d");
    t.recv(a);
    t.say(a, "#d", 10, "once");
    t.say(a, "#d", 10, "once");
    t.say(a, "#d", 9, "older");
    assert_eq!(says(&t.recv(b)), vec!["once"]);
    let got = t.recv(a);
    assert_eq!(says(&got), vec!["once"]);
    assert_eq!(
        got[1..],
        [
            ServerMsg::Ack { id: MsgId(10) },
            ServerMsg::Ack { id: MsgId(9) }
        ]
    );
    t.send(
        a,
        &ClientMsg::Msg {
            to: nick("bob"),
            id: MsgId(10),
            text: text("dm"),
        },
    );
    assert!(t.recv(b).is_empty());
    assert_eq!(t.recv(a), vec![ServerMsg::Ack { id: MsgId(10) }]);
}

#[test]
fn a_first_message_with_id_0_is_delivered_and_its_resend_acknowledged() {
    // An outside client may count its ids from 0: its first message is not a resend.
    let mut t = T::new();
    let a = t.bin("alice");
    let b = t.bin("bob");
    t.join(a, "#d");
    t.join(b, "#d");
    t.recv(a);
    t.recv(b);
    t.say(a, "#d", 0, "first");
    t.say(a, "#d", 0, "first");
    t.say(a, "#d", 1, "second");
    t.say(a, "#d", 0, "first again");
    assert_eq!(says(&t.recv(b)), vec!["first", "second"]);
    let got = t.recv(a);
    assert_eq!(says(&got), vec!["first", "second"]);
    assert_eq!(
        got.iter()
            .filter(|m| matches!(m, ServerMsg::Ack { .. }))
            .collect::<Vec<_>>(),
        [
            &ServerMsg::Ack { id: MsgId(0) },
            &ServerMsg::Ack { id: MsgId(0) }
        ]
    );
}

#[test]
fn a_refused_message_resent_after_a_later_one_was_taken_is_refused_again() {
    let mut t = T::new();
    let (a, _, token) = t.bin_from(LOCAL, "alice");
    let b = t.bin("bob");
    t.join(a, "#d");
    t.join(b, "#d");
    t.recv(a);
    t.recv(b);
    // Refused (alice is not in #x), then a later one taken; her line drops before she reads.
    t.say(a, "#x", 1, "nowhere");
    t.say(a, "#d", 2, "taken");
    assert_eq!(says(&t.recv(b)), vec!["taken"]);
    t.hub.handle_close(a, t.now);
    t.pump();
    let (a, got) = t.resume("alice", token, vec![(room("#d"), Seq(0))]);
    assert!(
        matches!(got.first(), Some(ServerMsg::Welcome { resumed: true, .. })),
        "{got:?}"
    );
    t.recv(a);
    // Both resent: the refused one is refused again (not "had"), the taken one acknowledged.
    t.say(a, "#x", 1, "nowhere");
    t.say(a, "#d", 2, "taken");
    let got = t.recv(a);
    let refused: Vec<(ErrorKind, Re)> = errors(&got).into_iter().map(|(k, r, _)| (k, r)).collect();
    assert_eq!(
        refused,
        vec![(ErrorKind::NotInRoom, Re::Msg(MsgId(1)))],
        "{got:?}"
    );
    assert!(got.contains(&ServerMsg::Ack { id: MsgId(2) }), "{got:?}");
    assert!(!got.contains(&ServerMsg::Ack { id: MsgId(1) }), "{got:?}");
    assert!(t.recv(b).is_empty(), "nothing delivered twice");
}

#[test]
fn a_resend_past_a_full_flood_queue_is_answered_as_had_not_refused() {
    let mut cfg = config();
    cfg.flood_burst = 3;
    cfg.flood_queue = 2;
    cfg.flood_refill = Millis(100);
    let mut t = T::with(cfg);
    let (a, _, token) = t.bin_from(LOCAL, "alice");
    let b = t.bin("bob");
    t.join(a, "#d");
    t.join(b, "#d");
    t.say(a, "#d", 1, "taken");
    t.say(a, "#x", 2, "nowhere");
    t.hub.handle_close(a, t.now);
    t.pump();
    t.now = t.now + Millis(1_000);
    let (a, _) = t.resume("alice", token, vec![(room("#d"), Seq(0))]);
    t.recv(a);
    t.recv(b);
    // After the resume, the client sends its new lines and, with them, the two it never heard
    // answered: past what the flood queue holds (three run, two wait).
    let mut all = Vec::new();
    for (r, id, line) in [
        ("#d", 3, "m3"),
        ("#d", 4, "m4"),
        ("#d", 5, "m5"),
        ("#d", 6, "m6"),
        ("#d", 7, "m7"),
        ("#d", 1, "taken"),
        ("#x", 2, "nowhere"),
        ("#d", 8, "m8"),
    ] {
        all.extend_from_slice(
            &encode_frame(&ClientMsg::Say {
                room: room(r),
                id: MsgId(id),
                text: text(line),
            })
            .unwrap(),
        );
    }
    t.feed(a, &all);
    let got = t.recv(a);
    let refused: Vec<(ErrorKind, Re)> = errors(&got).into_iter().map(|(k, r, _)| (k, r)).collect();
    // The one taken is acknowledged, the one refused is refused again as it was; only a new
    // one is refused as a flood.
    assert!(got.contains(&ServerMsg::Ack { id: MsgId(1) }), "{got:?}");
    assert_eq!(
        refused,
        vec![
            (ErrorKind::NotInRoom, Re::Msg(MsgId(2))),
            (ErrorKind::Flood, Re::Msg(MsgId(8)))
        ],
        "{got:?}"
    );
    assert_eq!(
        says(&t.recv(b)),
        vec!["m3", "m4", "m5"],
        "nothing delivered twice"
    );
}

#[test]
fn a_broadcast_is_encoded_once() {
    let mut t = T::new();
    let cs: Vec<ConnId> = ["a", "b", "c", "d"].iter().map(|n| t.bin(n)).collect();
    for c in &cs {
        t.join(*c, "#e");
    }
    t.raw.clear();
    t.say(cs[0], "#e", 1, "shared");
    // Each member's transmit is the same bytes in the same buffer: encoded once, not copied per
    // member.
    assert_eq!(t.raw.len(), 4);
    let frame = t.raw[0].concat();
    let p = t.raw[0].data[0].as_ptr();
    assert!(
        t.raw
            .iter()
            .all(|x| x.data.len() == 1 && x.data[0].as_ptr() == p)
    );
    // The history keeps the frame as it was sent, and a replay sends those bytes (a copy: a
    // stored frame is bytes in the room's ring, so a replay does not make it a shared buffer).
    let stored = t
        .hub
        .rooms
        .get(&room("#e"))
        .unwrap()
        .last_n(1, Seq(u64::MAX));
    let stored = stored.last().unwrap().frame.to_vec();
    assert_eq!(&stored[..], &frame[..]);
    let late = t.bin("late");
    t.raw.clear();
    t.join(late, "#e");
    assert!(
        t.raw
            .iter()
            .flat_map(|x| &x.data)
            .any(|piece| piece.windows(frame.len()).any(|w| w == &frame[..])),
        "the replay holds the stored frame"
    );
}

#[test]
fn too_many_rooms() {
    let mut t = T::with(Config {
        flood_burst: 100,
        ..config()
    });
    let a = t.bin("alice");
    for i in 0..crate::limits::MAX_ROOMS_PER_USER {
        t.join(a, &format!("#r{i}"));
    }
    let e = errors(&t.join(a, "#onemore"));
    assert_eq!(e[0].0, ErrorKind::TooManyRooms);
    assert!(e[0].2.contains("20 rooms"));
}

/// Member and room lists stop at `MAX_MEMBERS_LISTED` and `MAX_ROOMS_LISTED`, so a reply fits
/// in one frame however big the room or the server.
#[test]
fn member_and_room_lists_stop_at_their_limits() {
    use crate::limits::{MAX_MEMBERS_LISTED, MAX_ROOMS_LISTED, MAX_ROOMS_PER_USER};
    let mut t = T::with(Config {
        flood_burst: 1_000,
        ..config()
    });
    let mut last = None;
    for i in 0..MAX_MEMBERS_LISTED + 5 {
        let c = t.bin(&format!("m{i}"));
        t.join(c, "#big");
        last = Some(c);
    }
    let c = last.expect("members joined");
    t.send(c, &ClientMsg::Who { room: room("#big") });
    let listed: Vec<usize> = t
        .recv(c)
        .into_iter()
        .filter_map(|m| match m {
            ServerMsg::Members { members, .. } => Some(members.len()),
            _ => None,
        })
        .collect();
    assert_eq!(listed, [MAX_MEMBERS_LISTED]);
    // A joiner is shown as many.
    let d = t.bin("latecomer");
    let joined: Vec<usize> = t
        .join(d, "#big")
        .into_iter()
        .filter_map(|m| match m {
            ServerMsg::Joined { members, .. } => Some(members.len()),
            _ => None,
        })
        .collect();
    assert_eq!(joined, [MAX_MEMBERS_LISTED]);
    // More rooms than a list shows.
    let mut made = 1;
    let mut u = 0;
    while made <= MAX_ROOMS_LISTED {
        let c = t.bin(&format!("r{u}"));
        for _ in 0..MAX_ROOMS_PER_USER {
            t.join(c, &format!("#room{made}"));
            made += 1;
        }
        u += 1;
    }
    t.send(d, &ClientMsg::Rooms);
    let rooms: Vec<usize> = t
        .recv(d)
        .into_iter()
        .filter_map(|m| match m {
            ServerMsg::Rooms { rooms } => Some(rooms.len()),
            _ => None,
        })
        .collect();
    assert_eq!(rooms, [MAX_ROOMS_LISTED]);
}

/// Every error kind the hub sends reaches people in words.
#[test]
fn every_error_carries_words() {
    let mut t = T::with(Config {
        flood_burst: 100,
        ..config()
    });
    let mut seen: Vec<(ErrorKind, String)> = Vec::new();
    let mut take = |got: Vec<ServerMsg>| {
        for (k, _, d) in errors(&got) {
            seen.push((k, d));
        }
    };
    let a = t.bin("alice");
    t.join(a, "#w");
    t.send(
        a,
        &ClientMsg::Nick {
            nick: nick("alice"),
        },
    );
    let b = t.bin("bob");
    t.send(
        b,
        &ClientMsg::Nick {
            nick: nick("alice"),
        },
    );
    take(t.recv(b));
    t.say(b, "#w", 1, "x");
    t.send(
        b,
        &ClientMsg::Msg {
            to: nick("zed"),
            id: MsgId(2),
            text: text("x"),
        },
    );
    take(t.recv(b));
    for i in 0..21 {
        t.send(
            b,
            &ClientMsg::Join {
                room: room(&format!("#x{i}")),
            },
        );
    }
    take(t.recv(b));
    for bytes in [
        &b"\x00NTQ"[..],
        &[0, b'N', b'T', b'R', 0xFF, 0xFF, 0xFF, 0xFF][..],
    ] {
        let c = t.hub.accept(LOCAL, t.now).unwrap();
        t.feed(c, bytes);
        take(t.recv(c));
    }
    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.feed(c, &MAGIC);
    t.send(
        c,
        &ClientMsg::Hello {
            version: PROTOCOL_VERSION + 1,
            nick: nick("v"),
            resume: None,
        },
    );
    take(t.recv(c));
    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.feed(c, &MAGIC);
    t.advance(20_000);
    take(t.recv(c));
    take(t.resume("r", ResumeToken([0; 32]), vec![]).1);
    let mut cfg = config();
    cfg.flood_burst = 0;
    cfg.flood_queue = 0;
    cfg.max_connections = 1;
    let mut t2 = T::with(cfg);
    let f = t2.bin("f");
    t2.send(f, &ClientMsg::Rooms);
    take(t2.recv(f));
    let full = t2.hub.accept(LOCAL, t2.now).unwrap();
    t2.feed(full, &MAGIC);
    take(t2.recv(full));
    let kinds: HashSet<String> = seen.iter().map(|(k, _)| format!("{k:?}")).collect();
    for k in [
        "NickTaken",
        "NotInRoom",
        "NoSuchNick",
        "TooManyRooms",
        "Protocol",
        "Version",
        "Timeout",
        "ResumeFailed",
        "Flood",
        "Full",
    ] {
        assert!(kinds.contains(k), "{k} not seen: {kinds:?}");
    }
    for (k, d) in &seen {
        assert!(d.len() >= 10 && d.contains(' '), "{k:?}: {d:?}");
    }
    // Text-only kinds (Invalid, BadCommand, LineTooLong) and TooSlow are in the text tests.
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// Whatever arrives, the hub neither panics nor holds more than its limits.
    #[test]
    fn arbitrary_bytes_never_break_the_hub(chunks in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 0..8), binary in proptest::prelude::any::<bool>()) {
        let mut t = T::new();
        let other = t.bin("other");
        t.join(other, "#lobby");
        let c = t.hub.accept(LOCAL, t.now).unwrap();
        if binary {
            t.feed(c, &MAGIC);
        }
        for ch in &chunks {
            t.feed(c, ch);
            t.advance(50);
        }
        t.advance(60_000);
        proptest::prop_assert!(t.hub.queued_bytes(other).unwrap_or(0) <= crate::limits::OUTBOUND_MAX_BYTES);
        t.hub.handle_close(c, t.now);
        t.hub.handle_close(other, t.now);
        proptest::prop_assert_eq!(t.hub.connections(), 0);
    }
}

#[test]
fn closing_a_text_socket_quits_but_a_binary_one_detaches_silently() {
    let mut t = T::new();
    let a = t.bin("alice");
    t.join(a, "#lobby");
    let (c, cn) = t.txt();
    let b = t.bin("bob");
    t.join(b, "#lobby");
    t.recv(a);
    t.hub.handle_close(c, t.now);
    t.pump();
    let got = t.recv(a);
    let ev = events(&got);
    assert_eq!(
        (ev[0].from.as_str(), &ev[0].kind),
        (
            cn.as_str(),
            &EventKind::Quit {
                reason: Some(text("Connection closed"))
            }
        )
    );
    assert!(!t.hub.is_member(&nick(&cn), &RoomName::lobby()));
    t.hub.handle_close(b, t.now);
    t.pump();
    assert!(t.recv(a).is_empty(), "no notice while bob may resume");
    assert!(t.hub.is_member(&nick("bob"), &RoomName::lobby()));
    // A DM to someone detached is refused in words, not lost silently.
    t.send(
        a,
        &ClientMsg::Msg {
            to: nick("bob"),
            id: MsgId(1),
            text: text("there?"),
        },
    );
    let e = errors(&t.recv(a));
    assert_eq!(e[0].0, ErrorKind::NoSuchNick);
    assert!(e[0].2.contains("reconnecting"));
}

/// A connection's slot is reused once it closes; its id is not: bytes, writes and questions
/// for the old id reach nothing, not the connection now in its slot, and ids still count up
/// and show in the order connections came.
#[test]
fn a_closed_connections_id_reaches_nothing_once_its_slot_is_reused() {
    let mut t = T::new();
    let a = t.bin("alice");
    t.join(a, "#lobby");
    let b = t.bin("bob");
    t.join(b, "#lobby");
    t.recv(a);
    assert_eq!((a.to_string(), b.to_string()), ("c1".into(), "c2".into()));
    t.send(a, &ClientMsg::Quit { reason: None });
    t.hub.handle_close(a, t.now);
    t.pump();
    t.recv(b);
    let c = t.bin("carol");
    assert_eq!(c.slot(), a.slot(), "the slot is reused");
    assert!(
        c != a && c > b,
        "the id is new and later: {c:?} {a:?} {b:?}"
    );
    assert_eq!(c.to_string(), "c3");
    t.join(c, "#lobby");
    t.recv(b);
    // The old id: its bytes are dropped, it has no backlog, nick or kind, and a write or a
    // close for it does not touch carol's.
    t.send(
        a,
        &ClientMsg::Say {
            room: room("#lobby"),
            id: MsgId(9),
            text: text("from the grave"),
        },
    );
    assert!(t.recv(b).is_empty() && t.recv(c).is_empty());
    assert_eq!(t.hub.queued_bytes(a), None);
    assert_eq!(t.hub.nick(a), None);
    assert_eq!(t.hub.kind(a), None);
    t.hub.handle_written(a, 1_000, t.now);
    t.hub.handle_close(a, t.now);
    t.pump();
    assert_eq!(t.hub.nick(c), Some(&nick("carol")));
    assert_eq!(t.hub.connections(), 2);
    // Carol is still in the room and gets its lines.
    t.say(b, "#lobby", 1, "hello carol");
    assert_eq!(says(&t.recv(c)), vec!["hello carol".to_string()]);
}

#[test]
fn history_request_gets_a_gap_for_what_is_gone() {
    let mut cfg = config();
    cfg.history_len = 3;
    let mut t = T::with(cfg);
    let a = t.bin("alice");
    t.join(a, "#h");
    for i in 1..=5 {
        t.say(a, "#h", i, &format!("m{i}"));
    }
    t.recv(a);
    t.send(
        a,
        &ClientMsg::History {
            room: room("#h"),
            after: Seq(1),
        },
    );
    let got = t.recv(a);
    assert_eq!(
        got[0],
        ServerMsg::Gap {
            room: room("#h"),
            first: Seq(2),
            last: Seq(3)
        }
    );
    assert_eq!(says(&got[1..]), vec!["m3", "m4", "m5"]);
    // Nothing after the latest: nothing sent. Not a member: an error.
    t.send(
        a,
        &ClientMsg::History {
            room: room("#h"),
            after: Seq(u64::MAX),
        },
    );
    assert!(t.recv(a).is_empty());
    t.send(
        a,
        &ClientMsg::History {
            room: room("#nope"),
            after: Seq(0),
        },
    );
    assert_eq!(errors(&t.recv(a))[0].0, ErrorKind::NotInRoom);
}

#[test]
fn a_dm_does_not_overfill_a_slow_reader() {
    let mut cfg = config();
    cfg.outbound_max_msgs = 3;
    let mut t = T::with(cfg);
    let a = t.bin("alice");
    let s = t.bin("slow");
    t.stalled.insert(s);
    for i in 1..=3 {
        t.send(
            a,
            &ClientMsg::Msg {
                to: nick("slow"),
                id: MsgId(i),
                text: text("hi"),
            },
        );
    }
    assert_eq!(t.hub.queued_msgs(s), Some(3));
    t.send(
        a,
        &ClientMsg::Msg {
            to: nick("slow"),
            id: MsgId(4),
            text: text("hi"),
        },
    );
    assert_eq!(t.hub.queued_msgs(s), Some(3));
    let got = t.recv(a);
    let e = errors(&got);
    assert_eq!(
        (e[0].0, &e[0].1),
        (ErrorKind::NoSuchNick, &Re::Msg(MsgId(4)))
    );
    assert!(e[0].2.contains("not reading"));
}

#[test]
fn the_ip_table_is_bounded_and_pruned() {
    let mut t = T::new();
    let n = crate::limits::MAX_TRACKED_IPS as u32;
    for i in 0..n {
        let peer = IpAddr::V4(core::net::Ipv4Addr::from(0x0A00_0000 + i));
        let c = t.hub.accept(peer, t.now).unwrap();
        t.hub.handle_close(c, t.now);
    }
    assert_eq!(t.hub.ips.len(), crate::limits::MAX_TRACKED_IPS);
    let c = t.hub.accept(ip("192.0.2.200"), t.now).unwrap();
    t.pump();
    assert_eq!(t.limit(c, Limit::IpTable), 1);
    t.hub.handle_close(c, t.now);
    t.advance(crate::limits::CONNECT_WINDOW.0);
    assert_eq!(t.hub.ips.len(), 0);
    assert_eq!(t.hub.poll_timeout(), None, "nothing left to wake for");
    let c = t.hub.accept(ip("192.0.2.200"), t.now).unwrap();
    t.feed(c, b"hi\n");
    assert!(!t.closed(c));
}

/// Text users hear every problem as an `ERROR:` line with words.
#[test]
fn text_errors_carry_words() {
    let mut t = T::new();
    let (c, _) = t.txt();
    let long = "y".repeat(crate::limits::MAX_LINE_BYTES + 1);
    for l in [
        "/nick 9x",
        "/frob",
        "/join #bad!",
        "/msg nobody hi",
        "/part #elsewhere",
        &long,
    ] {
        t.line(c, l);
    }
    let got = t.lines(c);
    // The long line: one notice that it was cut (and then it is said).
    assert_eq!(got.len(), 6, "{got:?}");
    for l in &got {
        let words = l.strip_prefix("ERROR: ").unwrap_or_else(|| panic!("{l:?}"));
        assert!(words.len() >= 10 && words.contains(' '), "{l:?}");
    }
}

#[test]
fn a_person_is_greeted_after_the_first_line_or_the_wait_not_the_first_byte() {
    let mut t = T::new();
    let (watcher, _) = t.txt();
    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.advance(100);
    t.feed(c, b"hel");
    assert!(t.lines(c).is_empty(), "not greeted on a partial line");
    assert!(!t.hub.is_member(&nick("x"), &room("#lobby")));
    t.advance(100);
    t.feed(c, b"lo all\r\n");
    let lc = t.lines(c);
    assert!(lc[0].starts_with("Welcome to natter"), "{lc:?}");
    let me = t.hub.nick(c).unwrap().clone();
    assert!(t.hub.is_member(&me, &room("#lobby")));
    let lw = t.lines(watcher);
    assert!(
        lw.iter().any(|l| l.ends_with(&format!("<{me}> hello all"))),
        "{lw:?}"
    );
    // A partial line when the wait runs out: greeted then, the line still counts when whole.
    let d = t.hub.accept(LOCAL, t.now).unwrap();
    t.feed(d, b"slow typ");
    t.advance(t.hub.config().text_detect_wait.0);
    assert!(t.lines(d)[0].starts_with("Welcome to natter"));
    t.feed(d, b"ist\n");
    let dn = t.hub.nick(d).unwrap().clone();
    let lw = t.lines(watcher);
    assert!(
        lw.iter()
            .any(|l| l.ends_with(&format!("<{dn}> slow typist"))),
        "{lw:?}"
    );
}

#[test]
fn an_http_request_to_the_chat_port_says_nothing_in_the_lobby() {
    // A web page can make its visitors' browsers POST to this port: nothing of it may be said.
    let mut t = T::new();
    let (watcher, _) = t.txt();
    for req in [
        &b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: text/plain\r\n\r\nspam spam\r\n"[..],
        b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let c = t.hub.accept(LOCAL, t.now).unwrap();
        t.feed(c, req);
        assert!(t.closed(c), "{req:?}");
        let lc = t.lines(c);
        assert_eq!(lc.len(), 1, "{lc:?}");
        assert!(lc[0].starts_with("ERROR:") && lc[0].contains("HTTP"), "{lc:?}");
        t.hub.handle_close(c, t.now);
    }
    t.advance(1_000);
    assert!(t.lines(watcher).is_empty(), "nothing said, nobody joined");
    assert_eq!(t.hub.users(), 1);
}

#[test]
fn a_tls_client_on_the_plain_port_says_nothing_in_the_lobby() {
    // `natter natters://host:8000` or `openssl s_client` pointed at the plain port: its
    // ClientHello was cut into lines of binary and said in #lobby by a new guest.
    let mut t = T::new();
    let (watcher, _) = t.txt();
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    hello.extend_from_slice(b"\x8f\x12 random\nbytes\r\n\x00more\n");
    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.feed(c, &hello);
    assert!(t.closed(c));
    let lc = t.lines(c);
    assert!(
        lc.len() == 1 && lc[0].starts_with("ERROR:") && lc[0].contains("TLS"),
        "{lc:?}"
    );
    t.hub.handle_close(c, t.now);
    t.advance(1_000);
    assert!(t.lines(watcher).is_empty(), "nothing said, nobody joined");
    assert_eq!(t.hub.users(), 1);
}

#[test]
fn a_binary_preamble_after_the_detection_wait_is_closed_to_retry() {
    let mut t = T::new();
    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.advance(t.hub.config().text_detect_wait.0 + 1);
    assert!(t.lines(c)[0].starts_with("Welcome"));
    t.feed(c, &MAGIC);
    assert!(t.closed(c));
    assert!(t.lines(c)[0].contains("reconnect"));
    t.hub.handle_close(c, t.now);
    // Its greeted guest quit; a fresh connection that sends the preamble at once is binary.
    assert_eq!(t.hub.users(), 0);
    let b = t.bin("late");
    assert_eq!(t.hub.kind(b), Some(ConnKind::Binary));
}

/// A busy server reads a client's preamble in time but hands it to the hub behind a storm of
/// others' input: while the shell says input waits, the detection wait does not greet anyone as
/// a person (until issue 22's QA a busy hub greeted binary clients whose bytes it held, and the
/// extra text sessions, their joins and quits, kept it busy: a storm of 5,000 never got in).
/// Once nothing waits, a silent connection is greeted; the hello timeout greets it at the latest.
#[test]
fn while_input_waits_the_detection_wait_greets_nobody() {
    let mut t = T::new();
    let wait = t.hub.config().text_detect_wait.0;
    let c = t.hub.accept(LOCAL, t.now).unwrap();
    let quiet = t.hub.accept(LOCAL, t.now).unwrap();
    t.hub.input_waiting(true);
    t.advance(wait + 100);
    assert!(t.lines(c).is_empty(), "not greeted while input waits");
    assert!(t.lines(quiet).is_empty());
    // Its preamble and hello were among that input: a binary client.
    let hello = ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        nick: nick("storm"),
        resume: None,
    };
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&encode_frame(&hello).unwrap());
    t.feed(c, &bytes);
    assert_eq!(t.hub.kind(c), Some(ConnKind::Binary));
    // Nothing waits any more: the silent one is a person on nc.
    t.hub.input_waiting(false);
    t.advance(DETECT_RECHECK.0);
    assert!(
        t.lines(quiet)[0].starts_with("Welcome"),
        "greeted once nothing waits"
    );
    // Input that never stops waiting delays a greeting until the hello timeout, no longer.
    let late = t.hub.accept(LOCAL, t.now).unwrap();
    t.hub.input_waiting(true);
    t.advance(t.hub.config().hello_timeout.0 - 1);
    assert!(t.lines(late).is_empty());
    t.advance(1);
    assert!(t.lines(late)[0].starts_with("Welcome"));
}

/// Connecting is joining, as on the classic lab chat servers: an nc user greeted because it sent
/// nothing is announced in #lobby, listed and counted at once, like one that typed. (A late
/// binary client's guest is therefore seen joining and quitting: an accepted cosmetic cost.)
#[test]
fn a_silent_nc_user_is_announced_listed_and_counted_at_once() {
    let mut t = T::new();
    let w = t.bin("watcher");
    t.join(w, "#lobby");
    t.recv(w);
    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.advance(t.hub.config().text_detect_wait.0);
    assert!(t.lines(c)[0].starts_with("Welcome"));
    let n = t.hub.nick(c).unwrap().to_string();
    let got = t.recv(w);
    let joins: Vec<String> = events(&got)
        .iter()
        .filter(|e| e.kind == EventKind::Join)
        .map(|e| e.from.to_string())
        .collect();
    assert_eq!(joins, vec![n.clone()], "{got:?}");
    t.send(
        w,
        &ClientMsg::Who {
            room: room("#lobby"),
        },
    );
    t.send(w, &ClientMsg::Rooms);
    let got = t.recv(w);
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Members { members, .. }
            if members.len() == 2 && members.iter().any(|m| m.as_str() == n))),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Rooms { rooms } if rooms[0].members == 2)),
        "{got:?}"
    );
    // Another nc user's /who right after its welcome lists it too.
    let (d, _) = t.txt();
    t.line(d, "/who");
    let l = t.lines(d);
    assert!(l.iter().any(|l| l.contains(&n)), "{l:?}");
}

#[test]
fn departed_users_and_new_rooms_are_counted_per_address() {
    // Review finding: cycles of connect, join a new room, drop, from a couple of addresses,
    // filled the room table and the detached table for everyone.
    let mut cfg = config();
    cfg.max_detached_per_ip = 3;
    cfg.max_room_creates_per_window = 4;
    cfg.max_connects_per_window = 1_000;
    let mut t = T::with(cfg);
    let attacker = ip("198.51.100.9");
    let mut refused = 0;
    for i in 0..10 {
        let (c, _, _) = t.bin_from(attacker, &format!("cyc{i}"));
        let got = t.join(c, &format!("#junk{i}"));
        if let Some((kind, re, detail)) = errors(&got).into_iter().next() {
            assert_eq!(
                (kind, re),
                (
                    ErrorKind::TooManyRooms,
                    Re::Room(room(&format!("#junk{i}")))
                )
            );
            assert!(detail.contains("created 4 rooms"), "{detail}");
            refused += 1;
        }
        t.hub.handle_close(c, t.now);
        t.pump();
    }
    assert_eq!(refused, 6, "4 rooms per window per address");
    assert_eq!(
        t.hub.detached(),
        3,
        "3 departed users wait per address; the rest quit"
    );
    // Another address is not affected by either count.
    let (c, _, _) = t.bin_from(ip("198.51.100.10"), "other");
    assert!(errors(&t.join(c, "#fresh")).is_empty());
    t.hub.handle_close(c, t.now);
    t.pump();
    assert_eq!(t.hub.detached(), 4);
    // After the window, the attacker's address may create rooms again.
    t.advance(t.hub.config().room_create_window.0);
    let (c, _, _) = t.bin_from(attacker, "back");
    assert!(errors(&t.join(c, "#later")).is_empty());
}

#[test]
fn at_most_max_detached_users_wait_for_a_resume() {
    // SECURITY.md: the total of departed users held for a resume is bounded by `MAX_DETACHED`,
    // whatever the per-address caps (loopback is exempt from them, so one address fills it).
    use crate::limits::MAX_DETACHED;
    let mut t = T::new();
    let watcher = t.bin("watcher");
    t.join(watcher, "#r");
    let mut first = None;
    for i in 0..MAX_DETACHED {
        let (c, _, token) = t.bin_from(LOCAL, &format!("u{i}"));
        first.get_or_insert(token);
        t.hub.handle_close(c, t.now);
        t.pump();
    }
    assert_eq!(t.hub.detached(), MAX_DETACHED);
    // One more: over the cap it quits at once instead of waiting, and its token is dead.
    let (c, _, token) = t.bin_from(LOCAL, "over");
    t.join(c, "#r");
    t.recv(watcher);
    t.hub.handle_close(c, t.now);
    t.pump();
    assert_eq!(t.hub.detached(), MAX_DETACHED, "the cap holds");
    let got = t.recv(watcher);
    let ev = events(&got);
    assert_eq!(
        (ev[0].from.as_str(), &ev[0].kind),
        (
            "over",
            &EventKind::Quit {
                reason: Some(text("Connection closed"))
            }
        ),
        "the user over the cap quit, seen at once"
    );
    let (_, got) = t.resume("over", token, vec![]);
    assert_eq!(errors(&got)[0].0, ErrorKind::ResumeFailed, "{got:?}");
    assert!(
        matches!(got.last(), Some(ServerMsg::Welcome { resumed: false, .. })),
        "{got:?}"
    );
    // A waiting user that resumes frees a place: the next departure waits again.
    let (back, got) = t.resume("u0", first.unwrap(), vec![]);
    assert!(
        matches!(got.as_slice(), [ServerMsg::Welcome { resumed: true, .. }]),
        "{got:?}"
    );
    assert_eq!(t.hub.detached(), MAX_DETACHED - 1);
    let late = t.bin("late");
    t.hub.handle_close(late, t.now);
    t.pump();
    assert_eq!(t.hub.detached(), MAX_DETACHED);
    assert_eq!(t.hub.nick(back), Some(&nick("u0")), "resumed as itself");
}

#[test]
fn rooms_held_only_by_departed_users_do_not_keep_others_out() {
    let mut cfg = config();
    cfg.max_rooms = 2;
    let mut t = T::with(cfg);
    let (a, _, token) = t.bin_from(LOCAL, "alice");
    t.join(a, "#kept");
    t.join(a, "#gone");
    let b = t.bin("bob");
    t.join(b, "#kept");
    // alice drops: #gone is held only by her, waiting for a resume; #kept has bob.
    t.hub.handle_close(a, t.now);
    t.pump();
    let c = t.bin("carol");
    let got = t.join(c, "#new");
    assert!(errors(&got).is_empty(), "{got:?}");
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Joined { room: r, .. } if *r == room("#new")))
    );
    assert!(!t.hub.is_member(&nick("alice"), &room("#gone")));
    assert!(t.hub.is_member(&nick("alice"), &room("#kept")));
    // The table is full of rooms with people in them: the next new room is refused.
    let got = t.join(c, "#another");
    assert_eq!(errors(&got)[0].0, ErrorKind::TooManyRooms);
    // alice resumes: she is told she is no longer in #gone, and is still in #kept.
    let (_, got) = t.resume(
        "alice",
        token,
        vec![(room("#kept"), Seq(1)), (room("#gone"), Seq(1))],
    );
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Parted { room: r } if *r == room("#gone"))),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Joined { room: r, .. } if *r == room("#kept")))
    );
}

#[test]
fn a_full_room_refuses_joins_by_name() {
    let mut cfg = config();
    cfg.max_room_members = 2;
    let mut t = T::with(cfg);
    let (a, b, c) = (t.bin("a"), t.bin("b"), t.bin("c"));
    t.join(a, "#small");
    t.join(b, "#small");
    let e = errors(&t.join(c, "#small"));
    assert_eq!(
        (e[0].0, &e[0].1),
        (ErrorKind::RoomFull, &Re::Room(room("#small")))
    );
    assert!(e[0].2.contains("full (2 members"), "{}", e[0].2);
    assert_eq!(t.limit(c, Limit::RoomMembers), 1);
    t.send(
        c,
        &ClientMsg::Part {
            room: room("#small"),
            reason: None,
        },
    );
    t.recv(c);
    // A place frees up: the join goes through.
    t.send(
        b,
        &ClientMsg::Part {
            room: room("#small"),
            reason: None,
        },
    );
    t.recv(b);
    assert!(errors(&t.join(c, "#small")).is_empty());
}

#[test]
fn a_trusted_proxy_names_its_clients_with_a_proxy_header() {
    let proxy = ip("10.0.0.2");
    let mut cfg = config();
    cfg.trusted_proxies = vec![proxy];
    cfg.max_connections_per_ip = 1;
    let mut t = T::with(cfg);
    let (watcher, _) = t.txt();
    // v1, then a person's line in the same read.
    let c = t.hub.accept(proxy, t.now).unwrap();
    t.feed(
        c,
        b"PROXY TCP4 192.0.2.50 10.0.0.2 40000 8000\r\nhi from behind\n",
    );
    let me = t.hub.nick(c).unwrap().clone();
    let lw = t.lines(watcher);
    assert!(
        lw.iter()
            .any(|l| l.ends_with(&format!("<{me}> hi from behind"))),
        "{lw:?}"
    );
    // The client's address is counted, not the proxy's: a second connection of 192.0.2.50 is
    // refused (limit 1), one of another client is not.
    let c2 = t.hub.accept(proxy, t.now).unwrap();
    t.feed(c2, b"PROXY TCP4 192.0.2.50 10.0.0.2 40001 8000\r\n");
    t.feed(c2, b"hello\n");
    assert!(t.closed(c2));
    assert!(
        t.lines(c2)
            .iter()
            .any(|l| l.contains("already has 1 connection open,"))
    );
    // v2, cut in two reads, then a binary client.
    let mut h = crate::proxy::V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[
        0x21, 0x11, 0, 12, 192, 0, 2, 51, 10, 0, 0, 2, 0x9c, 0x40, 0x1f, 0x40,
    ]);
    let c3 = t.hub.accept(proxy, t.now).unwrap();
    t.feed(c3, &h[..9]);
    t.feed(c3, &[&h[9..], &MAGIC[..]].concat());
    t.send(
        c3,
        &ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: nick("proxied"),
            resume: None,
        },
    );
    assert!(matches!(t.recv(c3)[0], ServerMsg::Welcome { .. }));
    // A proxy that sends no header: its connection is detected as usual.
    let c4 = t.hub.accept(proxy, t.now).unwrap();
    t.feed(c4, b"plain line\n");
    assert!(!t.closed(c4));
    // A bad header closes.
    let c5 = t.hub.accept(proxy, t.now).unwrap();
    t.feed(c5, b"PROXY TCP4 not-an-address 10.0.0.2 1 2\r\n");
    assert!(t.closed(c5));
}

#[test]
fn a_proxy_header_from_anyone_else_is_refused() {
    let mut t = T::new();
    let (watcher, _) = t.txt();
    let c = t.hub.accept(ip("203.0.113.5"), t.now).unwrap();
    t.feed(c, b"PROXY TCP4 192.0.2.1 10.0.0.2 1 2\r\nspoofed\n");
    assert!(t.closed(c));
    assert!(t.lines(c)[0].contains("trusted proxy"));
    let mut h = crate::proxy::V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[
        0x21, 0x11, 0, 12, 192, 0, 2, 51, 10, 0, 0, 2, 0x9c, 0x40, 0x1f, 0x40,
    ]);
    let c2 = t.hub.accept(ip("203.0.113.5"), t.now).unwrap();
    t.feed(c2, &h);
    assert!(t.closed(c2));
    t.advance(1_000);
    assert!(t.lines(watcher).is_empty());
}

/// A hub with a durable store that the test drives by hand.
mod durable {
    use super::*;
    use crate::persist::{BatchId, Loaded, LoadedRoom, SessionRecord, Write};

    fn durable_config() -> Config {
        Config {
            durable: true,
            ..config()
        }
    }

    fn said(t: &mut T, c: ConnId) -> Vec<String> {
        says(&t.recv(c))
    }

    /// A graceful stop quits an nc user (it cannot resume) in its rooms' stored history, but
    /// the store's record of who was in each room keeps it, so that its IRC-like return after
    /// the restart is not replayed what it saw, even in a big room where a quit is no event.
    #[test]
    fn a_stop_stores_the_quit_of_an_nc_user_and_keeps_its_presence() {
        let mut t = T::with(durable_config());
        let a = t.bin("alice");
        t.join(a, "#d");
        let (c, n) = t.txt();
        t.line(c, "/join #d");
        t.lines(c);
        t.recv(a);
        let first = t.batches.len();
        t.hub.shutdown(t.now);
        t.pump();
        let writes: Vec<Write> = t.batches[first..]
            .iter()
            .flat_map(|b| b.writes.clone())
            .collect();
        assert!(
            writes.iter().any(|w| matches!(w, Write::Event(ev)
                if ev.from.as_str() == n && matches!(ev.kind, EventKind::Quit { .. }))),
            "the quit is stored: {writes:?}"
        );
        let last_presence = writes.iter().rev().find_map(|w| match w {
            Write::Presence {
                room: r,
                nick,
                here,
            } if nick.as_str() == n && r.as_str() == "#d" => Some(*here),
            _ => None,
        });
        assert_eq!(last_presence, Some(true), "{writes:?}");
    }

    #[test]
    fn echo_and_delivery_wait_for_the_commit_and_nothing_else_does() {
        let mut t = T::with(durable_config());
        let a = t.bin("alice");
        let b = t.bin("bob");
        let c = t.bin("carol");
        t.join(a, "#d");
        t.join(b, "#d");
        t.recv(a);
        t.auto_commit = false;
        let first = t.batches.len();
        // carol pings before anyone writes: answered at once.
        t.send(c, &ClientMsg::Ping { token: 1 });
        assert_eq!(t.recv(c), vec![ServerMsg::Pong { token: 1 }]);
        t.say(a, "#d", 1, "durable hello");
        assert!(t.recv(a).is_empty(), "the echo waits");
        assert!(t.recv(b).is_empty(), "the delivery waits");
        let batch = t.batches[first..].last().unwrap().clone();
        assert!(matches!(&batch.writes[0], Write::Event(ev) if ev.seq == Seq(3)));
        assert!(
            batch.writes.iter().any(
                |w| matches!(w, Write::Session(SessionRecord { last_id, .. })
                    | Write::SessionLastId { last_id, .. } if *last_id == MsgId(1))
            ),
            "the sender's last id is stored with its message"
        );
        // A reply behind held output waits with it; one on another connection does not.
        t.send(a, &ClientMsg::Ping { token: 2 });
        assert!(t.recv(a).is_empty());
        t.send(c, &ClientMsg::Ping { token: 3 });
        assert_eq!(t.recv(c), vec![ServerMsg::Pong { token: 3 }]);
        t.hub.handle_durable(batch.id, t.now);
        t.pump();
        let got = t.recv(a);
        assert_eq!(says(&got), vec!["durable hello"]);
        assert_eq!(got.last(), Some(&ServerMsg::Pong { token: 2 }), "in order");
        assert_eq!(said(&mut t, b), vec!["durable hello"]);
    }

    #[test]
    fn a_connection_closed_behind_held_output_gets_it_first() {
        let mut t = T::with(durable_config());
        let a = t.bin("alice");
        t.join(a, "#d");
        t.recv(a);
        t.auto_commit = false;
        t.say(a, "#d", 1, "last words");
        // Then garbage: a protocol error closes the connection.
        t.feed(a, &[0xff, 0xff, 0xff, 0xff]);
        assert!(!t.closed(a), "the close waits for the held echo");
        let batch = t.batches.last().unwrap().id;
        t.hub.handle_durable(batch, t.now);
        t.pump();
        let got = t.recv(a);
        assert_eq!(says(&got), vec!["last words"]);
        assert_eq!(errors(&got)[0].0, ErrorKind::Protocol);
        assert!(t.closed(a));
    }

    #[test]
    fn batches_in_flight_are_released_in_order() {
        let mut t = T::with(durable_config());
        let a = t.bin("alice");
        let b = t.bin("bob");
        t.join(a, "#d");
        t.join(b, "#d");
        t.recv(a);
        t.recv(b);
        t.auto_commit = false;
        t.say(a, "#d", 1, "one");
        t.say(a, "#d", 2, "two");
        let ids: Vec<BatchId> = t.batches.iter().rev().take(2).map(|b| b.id).collect();
        let (second, first) = (ids[0], ids[1]);
        assert!(first < second);
        t.hub.handle_durable(first, t.now);
        t.pump();
        assert_eq!(said(&mut t, b), vec!["one"]);
        t.hub.handle_durable(second, t.now);
        t.pump();
        assert_eq!(said(&mut t, b), vec!["two"]);
    }

    #[test]
    fn a_failed_batch_is_refused_to_its_sender_and_seen_by_nobody() {
        let mut t = T::with(durable_config());
        let a = t.bin("alice");
        let b = t.bin("bob");
        t.join(a, "#d");
        t.join(b, "#d");
        t.recv(a);
        t.recv(b);
        t.auto_commit = false;
        t.say(a, "#d", 1, "lost to a full disk");
        let failed = t.batches.last().unwrap().id;
        t.hub
            .handle_store_failed(failed, "the server's disk is full", t.now);
        t.pump();
        t.auto_commit = true;
        t.pump();
        let got = t.recv(a);
        assert!(says(&got).is_empty(), "{got:?}");
        let e = errors(&got);
        assert_eq!(
            (e[0].0, &e[0].1),
            (ErrorKind::NotStored, &Re::Msg(MsgId(1)))
        );
        assert!(e[0].2.contains("disk is full"), "{}", e[0].2);
        assert!(t.recv(b).is_empty());
        // It is not in history either: a late joiner's replay does not have it.
        let c = t.bin("carol");
        let replay = t.join(c, "#d");
        assert!(!says(&replay).iter().any(|s| s.contains("lost")));
        // Space is back: the next message goes through.
        t.say(a, "#d", 2, "stored");
        assert_eq!(said(&mut t, b), vec!["stored"]);
    }

    /// A full disk fails every batch: the batch after the first failure goes at once (what it
    /// writes again is lost to a kill until stored), those after failures in a row wait
    /// longer each time, up to a cap, and a commit starts over.
    #[test]
    fn failures_in_a_row_space_out_the_batches_after_them() {
        use crate::limits::{STORE_RETRY_MAX, STORE_RETRY_MIN};
        let mut t = T::with(durable_config());
        let a = t.bin("alice");
        t.join(a, "#d");
        t.recv(a);
        t.auto_commit = false;
        // Alice's session record (her rooms) and presence: written again when a batch fails.
        t.send(a, &ClientMsg::Join { room: room("#e") });
        let fail_last = |t: &mut T| {
            let id = t.batches.last().unwrap().id;
            t.hub
                .handle_store_failed(id, "the server's disk is full", t.now);
            t.pump();
        };
        let n = t.batches.len();
        fail_last(&mut t);
        assert_eq!(t.batches.len(), n + 1, "at once after one failure");
        let mut wait = STORE_RETRY_MIN.0;
        for k in 0..8 {
            let n = t.batches.len();
            fail_last(&mut t);
            assert_eq!(
                t.batches.len(),
                n,
                "failure {} in a row: not at once",
                k + 2
            );
            assert!(
                t.hub
                    .poll_timeout()
                    .is_some_and(|at| at <= t.now + Millis(wait))
            );
            t.advance(wait - 1);
            assert_eq!(
                t.batches.len(),
                n,
                "failure {}: not before {wait} ms",
                k + 2
            );
            t.advance(1);
            assert_eq!(t.batches.len(), n + 1, "failure {}: after {wait} ms", k + 2);
            wait = (wait * 2).min(STORE_RETRY_MAX.0);
        }
        assert_eq!(wait, STORE_RETRY_MAX.0, "capped");
        // Stored at last: the next failure is retried at once again.
        let id = t.batches.last().unwrap().id;
        t.hub.handle_durable(id, t.now);
        t.pump();
        t.send(a, &ClientMsg::Join { room: room("#f") });
        let n = t.batches.len();
        fail_last(&mut t);
        assert_eq!(t.batches.len(), n + 1);
    }

    /// A store's hub with alice, bob and carol in `#d`, their replies read, and batches left
    /// for the test to report.
    fn three_in_d_held() -> (T, [ConnId; 3]) {
        let mut t = T::with(durable_config());
        let members = ["alice", "bob", "carol"].map(|n| t.bin(n));
        for x in members {
            t.join(x, "#d");
        }
        for x in members {
            t.recv(x);
        }
        t.auto_commit = false;
        (t, members)
    }

    #[test]
    fn a_batch_of_many_events_goes_out_as_one_run_or_not_at_all() {
        let (mut t, [a, b, c]) = three_in_d_held();
        // One round of input: several events, and a reply behind held output.
        let round = |t: &mut T, lines: &[(ConnId, u64, &str)], ping: Option<ConnId>| {
            for &(x, id, line) in lines {
                let f = encode_frame(&ClientMsg::Say {
                    room: room("#d"),
                    id: MsgId(id),
                    text: text(line),
                })
                .unwrap();
                t.hub.handle_bytes(x, &f, t.now);
            }
            if let Some(x) = ping {
                let f = encode_frame(&ClientMsg::Ping { token: 9 }).unwrap();
                t.hub.handle_bytes(x, &f, t.now);
            }
            t.pump();
            t.batches.last().unwrap().id
        };
        let first = round(
            &mut t,
            &[(a, 1, "one"), (a, 2, "two"), (b, 3, "three")],
            None,
        );
        let lost = round(&mut t, &[(a, 4, "lost"), (b, 5, "also lost")], Some(b));
        let last = round(&mut t, &[(b, 6, "four")], None);
        assert!(first < lost && lost < last);
        assert!(t.recv(c).is_empty(), "everything waits for its commit");
        t.raw.clear();
        t.hub.handle_durable(first, t.now);
        t.pump();
        assert_eq!(said(&mut t, c), vec!["one", "two", "three"]);
        let to_c: Vec<&Transmit> = t.raw.iter().filter(|x| x.conn == c).collect();
        assert_eq!(to_c.len(), 1);
        assert_eq!(to_c[0].data.len(), 1, "a batch's frames are one slice");
        assert_eq!(said(&mut t, a), vec!["one", "two", "three"]);
        assert_eq!(said(&mut t, b), vec!["one", "two", "three"]);
        // The second batch fails: its events are dropped, the reply behind them is not.
        t.hub
            .handle_store_failed(lost, "the server's disk is full", t.now);
        t.pump();
        assert!(t.recv(c).is_empty());
        let got = t.recv(b);
        assert!(says(&got).is_empty(), "{got:?}");
        assert!(got.contains(&ServerMsg::Pong { token: 9 }), "{got:?}");
        t.hub.handle_durable(last, t.now);
        t.pump();
        assert_eq!(said(&mut t, c), vec!["four"]);
        // The refusals came behind what was held for the last batch.
        let got = t.recv(a);
        assert_eq!(says(&got), vec!["four"]);
        let refused: Vec<Re> = errors(&got).into_iter().map(|e| e.1).collect();
        assert_eq!(refused, vec![Re::Msg(MsgId(4))]);
        // Bob's waits for the batch that writes it with his session: a later line of his is
        // stored (his last id is past it), so a restart must still refuse it when resent.
        assert!(errors(&t.recv(b)).is_empty());
        let rewrite = t.batches.last().unwrap();
        assert!(rewrite.id > last);
        assert!(
            rewrite.writes.iter().any(|w| matches!(w,
                Write::Session(s) if s.refused == [(MsgId(5), ErrorKind::NotStored)])),
            "{:?}",
            rewrite.writes
        );
        let rewrite = rewrite.id;
        t.hub.handle_durable(rewrite, t.now);
        t.pump();
        let refused: Vec<Re> = errors(&t.recv(b)).into_iter().map(|e| e.1).collect();
        assert_eq!(refused, vec![Re::Msg(MsgId(5))]);
    }

    /// With a store too, a read's says go to each member as one piece (`Hub::broadcast`),
    /// held for their batch: released as one slice, or dropped together with everything else
    /// of a batch that fails, while what the read brought after them (a pong) still goes.
    #[test]
    fn a_reads_says_are_held_as_one_run_and_a_failed_batch_drops_them_all() {
        let (mut t, [a, b, c]) = three_in_d_held();
        let read = |t: &mut T, words: &[(u64, &str)]| {
            let mut bytes = Vec::new();
            for &(id, w) in words {
                bytes.extend_from_slice(
                    &encode_frame(&ClientMsg::Say {
                        room: room("#d"),
                        id: MsgId(id),
                        text: text(w),
                    })
                    .unwrap(),
                );
            }
            bytes.extend_from_slice(&encode_frame(&ClientMsg::Ping { token: 7 }).unwrap());
            t.hub.handle_bytes(a, &bytes, t.now);
            t.pump();
            t.batches.last().unwrap().id
        };
        let before = t.hub.stats().deliveries;
        let kept = read(&mut t, &[(1, "one"), (2, "two"), (3, "three")]);
        assert_eq!(
            t.hub.stats().deliveries - before,
            9,
            "three events, three members"
        );
        assert!(t.recv(c).is_empty(), "held for the commit");
        t.raw.clear();
        t.hub.handle_durable(kept, t.now);
        t.pump();
        let to_c: Vec<&Transmit> = t.raw.iter().filter(|x| x.conn == c).collect();
        assert_eq!(to_c.len(), 1);
        assert_eq!(to_c[0].data.len(), 1, "the read's frames are one slice");
        assert_eq!(said(&mut t, c), vec!["one", "two", "three"]);
        let got = t.recv(a);
        assert_eq!(says(&got), vec!["one", "two", "three"]);
        assert_eq!(got.last(), Some(&ServerMsg::Pong { token: 7 }), "{got:?}");
        t.recv(b);
        let lost = read(&mut t, &[(4, "four"), (5, "five")]);
        t.hub
            .handle_store_failed(lost, "the server's disk is full", t.now);
        t.pump();
        assert!(t.recv(b).is_empty());
        assert!(t.recv(c).is_empty());
        let got = t.recv(a);
        assert!(says(&got).is_empty(), "{got:?}");
        assert!(got.contains(&ServerMsg::Pong { token: 7 }), "{got:?}");
        let refused: Vec<Re> = errors(&got).into_iter().map(|e| e.1).collect();
        assert_eq!(refused, vec![Re::Msg(MsgId(4)), Re::Msg(MsgId(5))]);
        // Neither is in history: a late joiner's replay ends with "three".
        t.auto_commit = true;
        t.pump();
        let d = t.bin("dave");
        let replay = t.join(d, "#d");
        assert_eq!(says(&replay).last().map(String::as_str), Some("three"));
    }

    /// The presence a failed batch wrote is written again with a later one, as it is then:
    /// the store's record of who is in each room (what a restart takes back) is not left
    /// with a join or part it never stored.
    #[test]
    fn presence_a_failed_batch_wrote_is_written_again_as_it_is_then() {
        let mut t = T::with(durable_config());
        let a = t.bin("alice");
        let b = t.bin("bob");
        t.auto_commit = false;
        let batch = |t: &mut T, c: ConnId, msg: ClientMsg| {
            t.send(c, &msg);
            t.batches.last().unwrap().id
        };
        let alice_in = batch(&mut t, a, ClientMsg::Join { room: room("#q") });
        let bob_in = batch(&mut t, b, ClientMsg::Join { room: room("#q") });
        let bob_out = batch(
            &mut t,
            b,
            ClientMsg::Part {
                room: room("#q"),
                reason: None,
            },
        );
        assert!(alice_in < bob_in && bob_in < bob_out);
        let presence = |b: &crate::persist::Batch| -> Vec<(String, String, bool)> {
            b.writes
                .iter()
                .filter_map(|w| match w {
                    &Write::Presence {
                        ref room,
                        ref nick,
                        here,
                    } => Some((room.as_str().to_owned(), nick.as_str().to_owned(), here)),
                    _ => None,
                })
                .collect()
        };
        for failed in [alice_in, bob_in] {
            t.hub
                .handle_store_failed(failed, "the server's disk is full", t.now);
        }
        t.hub.handle_durable(bob_out, t.now);
        // Two failures in a row: the next batch waits a moment.
        t.advance(crate::limits::STORE_RETRY_MIN.0);
        let again = t.batches.last().unwrap();
        assert!(again.id > bob_out);
        // Alice is still in #q; bob's join is written as what it is now: not there.
        assert_eq!(
            presence(again),
            [
                ("#q".to_owned(), "alice".to_owned(), true),
                ("#q".to_owned(), "bob".to_owned(), false)
            ]
        );
        // A batch stored in the end writes nothing again.
        let written = again.id;
        t.hub.handle_durable(written, t.now);
        t.pump();
        assert!(
            t.batches.last().unwrap().id == written
                || presence(t.batches.last().unwrap()).is_empty()
        );
    }

    /// A restarted hub's first batch starts the store's record of presence again; if it
    /// fails, a later batch starts it again, with whoever is in a room by then.
    #[test]
    fn a_failed_presence_reset_is_done_again_with_everyone_in_a_room() {
        let mut t = T::with(durable_config());
        t.hub.restore(crate::persist::Loaded::default(), t.now);
        t.auto_commit = false;
        t.pump();
        let first = t.batches.last().unwrap();
        assert_eq!(first.writes, [Write::PresenceReset]);
        let first = first.id;
        t.hub
            .handle_store_failed(first, "the server's disk is full", t.now);
        t.auto_commit = true;
        let a = t.bin("alice");
        t.join(a, "#r");
        let writes: Vec<&Write> = t
            .batches
            .iter()
            .filter(|b| b.id > first)
            .flat_map(|b| b.writes.iter())
            .filter(|w| matches!(w, Write::Presence { .. } | Write::PresenceReset))
            .collect();
        assert_eq!(
            writes,
            [
                &Write::PresenceReset,
                &Write::Presence {
                    room: room("#r"),
                    nick: nick("alice"),
                    here: true
                }
            ]
        );
    }

    #[test]
    fn history_from_the_ring_waits_for_the_commit_and_a_failed_line_is_never_shown() {
        let mut t = T::with(durable_config());
        let a = t.bin("alice");
        let c = t.bin("carol");
        t.join(a, "#d");
        t.join(c, "#d");
        t.say(a, "#d", 9, "stored");
        t.recv(a);
        let seen = events(&t.recv(c)).last().unwrap().seq;
        let ask = |t: &mut T| {
            t.send(
                c,
                &ClientMsg::History {
                    room: room("#d"),
                    after: seen,
                },
            );
            t.send(
                c,
                &ClientMsg::Older {
                    room: room("#d"),
                    before: Seq(0),
                    limit: 10,
                },
            );
        };
        // alice speaks; before the store commits, carol asks for what came after what she saw
        // and scrolls back (her own delivery waits for the commit): neither shows the line.
        t.auto_commit = false;
        t.say(a, "#d", 10, "in flight");
        let batch = t.batches.last().unwrap().id;
        ask(&mut t);
        assert!(says(&t.recv(c)).is_empty());
        t.hub.handle_durable(batch, t.now);
        t.pump();
        // Once stored: the delivery and the refill.
        let got = t.recv(c);
        assert_eq!(says(&got), vec!["in flight", "in flight"], "{got:?}");
        // A line whose batch fails is never shown, live, refilled or scrolled to.
        t.say(a, "#d", 11, "lost");
        let lost = t.batches.last().unwrap().id;
        ask(&mut t);
        t.hub
            .handle_store_failed(lost, "the server's disk is full", t.now);
        t.pump();
        let got = t.recv(c);
        assert!(
            !format!("{got:?}").contains("lost"),
            "a line that was not stored was shown: {got:?}"
        );
        assert_eq!(errors(&t.recv(a))[0].0, ErrorKind::NotStored);
    }

    /// A replay from the ring waits for the events in it still in flight even when nothing
    /// else the connection is sent does (`durable::replay_hold`): in a big room a join is no
    /// event, and a person on nc is not sent their own line, so one who rejoins at once has
    /// no held output that the replay of their line would queue behind.
    #[test]
    fn a_rejoin_in_a_big_room_does_not_replay_a_line_still_in_flight() {
        let mut t = T::with(Config {
            quiet_room_members: 2,
            ..durable_config()
        });
        let (u, _) = t.txt();
        let a = t.bin("alice");
        let b = t.bin("bob");
        t.join(a, "#big");
        t.join(b, "#big");
        t.line(u, "/join #big");
        t.pump();
        t.lines(u);
        t.recv(a);
        t.auto_commit = false;
        t.line(u, "in flight");
        let batch = t.batches.last().unwrap().id;
        t.line(u, "/part #big");
        t.line(u, "/join #big");
        t.pump();
        let got = t.lines(u);
        assert!(
            !got.iter().any(|l| l.contains("in flight")),
            "shown before it is stored: {got:?}"
        );
        t.hub.handle_durable(batch, t.now);
        t.auto_commit = true;
        t.pump();
        let got = t.lines(u);
        assert!(
            got.iter().any(|l| l.contains("in flight")),
            "replayed once stored: {got:?}"
        );
    }

    /// What a store holds after every batch `t`'s hub wrote so far, as a store would load it:
    /// every event and resume session (a restarted hub's [`Hub::restore`]).
    pub(super) fn stored(t: &T) -> Loaded {
        let mut rooms: HashMap<RoomName, LoadedRoom> = HashMap::new();
        let mut sessions = HashMap::new();
        let mut labels = HashMap::new();
        for w in t.batches.iter().flat_map(|b| b.writes.iter()) {
            match w {
                Write::KeyLabel { id, label, .. } => {
                    labels.insert(*id, label.clone());
                }
                Write::Event(ev) => {
                    let r = rooms.entry(ev.room.clone()).or_insert_with(|| LoadedRoom {
                        name: ev.room.clone(),
                        topic: None,
                        last_seq: Seq(0),
                        recent: Vec::new(),
                        present: Vec::new(),
                    });
                    r.last_seq = ev.seq;
                    r.recent.push(ev.clone());
                }
                Write::Session(s) => {
                    sessions.insert(s.token, s.clone());
                }
                Write::SessionLastId {
                    token,
                    last_id,
                    updated,
                } => {
                    if let Some(s) = sessions.get_mut(token) {
                        s.last_id = *last_id;
                        s.updated = *updated;
                    }
                }
                Write::EndSession(h) => {
                    sessions.remove(h);
                }
                _ => {}
            }
        }
        Loaded {
            rooms: rooms.into_values().collect(),
            sessions: sessions.into_values().collect(),
            accounts: Vec::new(),
            policies: Vec::new(),
            server_bans: Vec::new(),
            device_labels: labels.into_iter().collect(),
            away_notes: Vec::new(),
            known: Vec::new(),
        }
    }

    #[test]
    fn a_restarted_hub_resumes_sessions_and_history_from_what_was_stored() {
        let mut t = T::with(durable_config());
        let (a, _, token) = t.bin_from(LOCAL, "alice");
        let b = t.bin("bob");
        t.join(a, "#d");
        t.join(b, "#d");
        t.say(a, "#d", 1, "before the crash");
        t.say(b, "#d", 1, "seen by alice");
        let got = t.recv(a);
        let seen = events(&got).last().unwrap().seq;
        t.say(b, "#d", 2, "missed by alice");
        // What the store holds now: every event and session written, replayed as a store would.
        let loaded = stored(&t);
        assert_eq!(loaded.sessions.len(), 2);
        // kill -9, and a new hub from the store.
        let mut t = T::with(durable_config());
        t.hub.restore(loaded, t.now);
        assert!(t.hub.is_member(&nick("alice"), &room("#d")));
        // Its first batch starts the store's record of who is in each room again, with whom it
        // took back (who was there at the stop is its own to remember now).
        t.pump();
        let first = t.batches.first().expect("a first batch");
        assert_eq!(first.writes.first(), Some(&Write::PresenceReset));
        let mut back: Vec<(&str, &str, bool)> = first.writes[1..]
            .iter()
            .filter_map(|w| match w {
                Write::Presence { room, nick, here } => Some((room.as_str(), nick.as_str(), *here)),
                _ => None,
            })
            .collect();
        back.sort();
        assert_eq!(back, [("#d", "alice", true), ("#d", "bob", true)]);
        let (a2, got) = t.resume("alice", token, vec![(room("#d"), seen)]);
        assert!(
            matches!(&got[0], ServerMsg::Welcome { resumed: true, nick, .. } if nick.as_str() == "alice"),
            "{got:?}"
        );
        assert_eq!(
            says(&got),
            vec!["missed by alice"],
            "exactly what was missed, no gap"
        );
        assert!(!got.iter().any(|m| matches!(m, ServerMsg::Gap { .. })));
        // A message resent after the restart with an id already stored is acknowledged, not
        // delivered again; the next id goes on from the stored seq.
        t.say(a2, "#d", 1, "before the crash");
        assert_eq!(t.recv(a2), vec![ServerMsg::Ack { id: MsgId(1) }]);
        t.say(a2, "#d", 2, "after the restart");
        let ev = events(&t.recv(a2)).last().map(|e| e.seq);
        assert_eq!(ev, Some(Seq(seen.0 + 2)), "seqs go on where they were");
    }

    #[test]
    fn a_first_message_with_id_0_resent_after_a_restart_is_acknowledged_not_taken_again() {
        // Issue 16: after a restart acknowledged messages are never doubled. A client counting
        // its ids from 0 (PROTOCOL.md allows it) resends its first message after the server was
        // killed: `last_id` 0 cannot tell "took id 0" from "took nothing", and it was taken again.
        let mut t = T::with(durable_config());
        let (a, _, token) = t.bin_from(LOCAL, "alice");
        let (c, _, carol) = t.bin_from(LOCAL, "carol");
        let b = t.bin("bob");
        t.join(a, "#d");
        t.join(c, "#d");
        t.join(b, "#d");
        t.say(a, "#d", 0, "first");
        let got = t.recv(a);
        assert_eq!(says(&got), ["first"]);
        let seen = events(&got).last().unwrap().seq;
        t.recv(c);
        let loaded = stored(&t);
        // kill -9, and a new hub from the store.
        let mut t = T::with(durable_config());
        t.hub.restore(loaded, t.now);
        let b = t.bin("bob2");
        t.join(b, "#d");
        t.recv(b);
        let (a2, _) = t.resume("alice", token, vec![(room("#d"), seen)]);
        t.recv(a2);
        t.say(a2, "#d", 0, "first");
        assert_eq!(t.recv(a2), vec![ServerMsg::Ack { id: MsgId(0) }]);
        assert!(says(&t.recv(b)).is_empty(), "taken twice");
        // A session that had taken nothing still has its first message, id 0, taken.
        let (c2, _) = t.resume("carol", carol, vec![(room("#d"), seen)]);
        t.recv(c2);
        t.say(c2, "#d", 0, "carol's first");
        assert_eq!(says(&t.recv(b)), ["carol's first"]);
        // Written on by the restarted hub: a second restart knows it as well.
        let loaded = stored(&t);
        let alice = loaded
            .sessions
            .iter()
            .find(|s| s.nick.as_str() == "alice")
            .unwrap();
        assert!(alice.took_zero && alice.last_id == MsgId(0), "{alice:?}");
    }

    /// The seqs of `r`'s events written so far, in the order they were handed out.
    fn written_seqs(t: &T, r: &str) -> Vec<u64> {
        t.batches
            .iter()
            .flat_map(|b| b.writes.iter())
            .filter_map(|w| match w {
                Write::Event(ev) if ev.room == room(r) => Some(ev.seq.0),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_room_that_empties_and_is_joined_again_goes_on_with_its_seqs_and_topic() {
        let mut t = T::with(durable_config());
        let a = t.bin("alice");
        t.join(a, "#d");
        t.say(a, "#d", 1, "first");
        t.send(
            a,
            &ClientMsg::Topic {
                room: room("#d"),
                topic: Some(text("kept")),
            },
        );
        t.send(
            a,
            &ClientMsg::Part {
                room: room("#d"),
                reason: None,
            },
        );
        t.recv(a);
        // Nobody is in #d: joined again, its seqs go on from what the store holds (a restart
        // would start there too), never from 1 again, which the store refuses.
        let got = t.join(a, "#d");
        let seq = got.iter().find_map(|m| match m {
            ServerMsg::Joined { seq, topic, .. } => Some((*seq, topic.clone())),
            _ => None,
        });
        assert_eq!(seq, Some((Seq(5), Some(text("kept")))), "{got:?}");
        t.say(a, "#d", 2, "second");
        assert_eq!(says(&t.recv(a)), vec!["second"]);
        assert_eq!(written_seqs(&t, "#d"), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn a_stored_room_freed_from_a_full_table_goes_on_with_its_seqs_when_made_again() {
        let mut t = T::with(Config {
            max_rooms: 1,
            ..durable_config()
        });
        let a = t.bin("alice");
        let part = |t: &mut T, r: &str| {
            t.send(
                a,
                &ClientMsg::Part {
                    room: room(r),
                    reason: None,
                },
            );
            t.recv(a);
        };
        t.join(a, "#a");
        t.say(a, "#a", 1, "in a");
        part(&mut t, "#a");
        // The table (#a) is full: #a, empty, is freed for #b, then #b for #a.
        t.join(a, "#b");
        part(&mut t, "#b");
        assert!(!t.hub.rooms.contains_key(&room("#a")));
        let got = t.join(a, "#a");
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Joined { seq, .. } if *seq == Seq(4))),
            "{got:?}"
        );
        assert_eq!(written_seqs(&t, "#a"), vec![1, 2, 3, 4]);
    }
}

/// Scrollback, search and refills from before the in-memory ring.
mod past {
    use super::*;
    use crate::persist::Query;

    fn past(msgs: &[ServerMsg]) -> Vec<String> {
        msgs.iter()
            .filter_map(|m| match m {
                ServerMsg::Past(RoomEvent {
                    kind: EventKind::Say { text, .. },
                    ..
                }) => Some(text.to_string()),
                _ => None,
            })
            .collect()
    }

    fn small_ring(durable: bool) -> Config {
        Config {
            durable,
            history_len: 10,
            history_on_join: 3,
            flood_refill: Millis(0),
            ..config()
        }
    }

    #[test]
    fn without_a_store_scrollback_and_search_use_the_ring() {
        let mut t = T::with(small_ring(false));
        let a = t.bin("alice");
        t.join(a, "#p");
        for i in 1..=6 {
            t.say(a, "#p", i, &format!("line {i}"));
        }
        t.recv(a);
        // A person joins: 3 recent lines, then /history 2 shows the 2 before those.
        let (c, _) = t.txt();
        t.line(c, "/join #p");
        let joined = t.lines(c);
        assert!(
            joined.iter().any(|l| l.ends_with("<alice> line 6")),
            "{joined:?}"
        );
        assert!(!joined.iter().any(|l| l.ends_with("<alice> line 3")));
        t.line(c, "/history 2");
        let h = t.lines(c);
        assert_eq!(h.len(), 3, "{h:?}");
        assert!(
            h[0].ends_with("<alice> line 2") && h[0].starts_with("[#p "),
            "{h:?}"
        );
        assert!(h[1].ends_with("<alice> line 3"));
        assert_eq!(h[2], "-- (/history #p shows older lines)");
        t.line(c, "/history");
        let h = t.lines(c);
        assert!(h[0].ends_with("-- alice joined #p"), "{h:?}");
        assert!(h[1].ends_with("<alice> line 1"), "{h:?}");
        assert_eq!(h.last().unwrap(), "-- (the beginning of #p)");
        // Binary scrollback with an explicit seq, and search over the ring.
        t.send(
            a,
            &ClientMsg::Older {
                room: room("#p"),
                before: Seq(4),
                limit: 10,
            },
        );
        let got = t.recv(a);
        assert_eq!(past(&got), vec!["line 1", "line 2"]);
        assert!(matches!(
            got.last(),
            Some(ServerMsg::PastEnd { at_start: true, .. })
        ));
        t.line(c, "/search LINE 5");
        let s = t.lines(c);
        assert!(s[0].ends_with("<alice> line 5"), "{s:?}");
        assert_eq!(s.last().unwrap(), "-- 1 result");
    }

    #[test]
    fn without_a_store_search_finds_words_not_pieces_of_words() {
        // PROTOCOL.md: `Search` finds the lines "holding every word", as the store's index
        // reads words; a memory-only server found `hi` inside `this`.
        let mut t = T::with(small_ring(false));
        let a = t.bin("alice");
        t.join(a, "#p");
        t.say(a, "#p", 1, "this is thirty");
        t.say(a, "#p", 2, "hi all");
        t.recv(a);
        let found = |t: &mut T, words: &str| {
            t.send(
                a,
                &ClientMsg::Search {
                    room: None,
                    words: text(words),
                },
            );
            let got = t.recv(a);
            assert!(
                matches!(got.last(), Some(ServerMsg::FoundEnd { .. })),
                "{got:?}"
            );
            got.iter()
                .filter_map(|m| match m {
                    ServerMsg::Found(ev) => ev.kind.line().map(|(_, t)| t.as_str().to_owned()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(found(&mut t, "hi"), ["hi all"]);
        assert_eq!(found(&mut t, "thirt"), Vec::<String>::new());
        assert_eq!(found(&mut t, "THIRTY is"), ["this is thirty"]);
    }

    #[test]
    fn without_a_store_search_reads_only_the_searchers_rooms() {
        // A memory-only server searched every room's ring, then kept the newest
        // SEARCH_MAX_RESULTS hits, then dropped those of rooms the searcher is not in: newer
        // lines in other people's rooms crowded the searcher's own out (found by the
        // thirty-first session's attack pass), and every search read the whole server's history.
        let mut t = T::with(Config {
            history_len: 256,
            ..small_ring(false)
        });
        let a = t.bin("alice");
        let b = t.bin("bob");
        t.join(a, "#mine");
        t.say(a, "#mine", 1, "needle of alice");
        t.join(b, "#theirs");
        for i in 1..=u64::try_from(crate::limits::SEARCH_MAX_RESULTS).unwrap() + 5 {
            t.say(b, "#theirs", i, &format!("needle {i}"));
        }
        t.recv(a);
        t.send(
            a,
            &ClientMsg::Search {
                room: None,
                words: text("needle"),
            },
        );
        let got = t.recv(a);
        let found: Vec<String> = got
            .iter()
            .filter_map(|m| match m {
                ServerMsg::Found(ev) => ev.kind.line().map(|(_, t)| t.as_str().to_owned()),
                _ => None,
            })
            .collect();
        assert_eq!(found, ["needle of alice"], "{got:?}");
        assert!(
            matches!(got.last(), Some(ServerMsg::FoundEnd { count: 1 })),
            "{got:?}"
        );
    }

    #[test]
    fn a_search_cut_at_its_limit_says_older_matches_were_left_out() {
        // Issue 16: at most 50 results. The answer's count goes one past the hits sent when
        // there were more (the store or the rings are asked for 51), so every door can say
        // the results were cut; exactly 50 matches are not called cut.
        let max = crate::limits::SEARCH_MAX_RESULTS;
        for store in [false, true] {
            for (said, count) in [(max, max), (max + 5, max + 1)] {
                let mut t = T::with(Config {
                    history_len: 256,
                    ..small_ring(store)
                });
                let a = t.bin("alice");
                t.join(a, "#p");
                for i in 1..=u64::try_from(said).unwrap() {
                    t.say(a, "#p", i, &format!("needle {i}"));
                }
                t.recv(a);
                t.send(
                    a,
                    &ClientMsg::Search {
                        room: None,
                        words: text("needle"),
                    },
                );
                let got = t.recv(a);
                let hits = got
                    .iter()
                    .filter(|m| matches!(m, ServerMsg::Found(_)))
                    .count();
                assert_eq!(hits, max, "store {store}, {said} said");
                assert!(
                    matches!(got.last(), Some(ServerMsg::FoundEnd { count: c }) if *c as usize == count),
                    "store {store}, {said} said: {:?}",
                    got.last()
                );
            }
        }
    }

    #[test]
    fn without_a_store_a_ring_that_dropped_older_lines_does_not_call_its_start_the_beginning() {
        let mut t = T::with(small_ring(false));
        let a = t.bin("alice");
        t.join(a, "#p");
        for i in 1..=20 {
            t.say(a, "#p", i, &format!("line {i}"));
        }
        t.recv(a);
        let (c, _) = t.txt();
        t.line(c, "/join #p");
        t.lines(c);
        t.line(c, "/history 50");
        let h = t.lines(c);
        assert!(
            h[0].ends_with("<alice> line 12"),
            "the ring keeps 10: {h:?}"
        );
        assert_eq!(
            h.last().unwrap(),
            "-- (older lines of #p are no longer kept)"
        );
        // Asked again, with nothing left to show: still not the beginning (it said so, though
        // the room began long before what the ring keeps).
        t.line(c, "/history");
        assert_eq!(t.lines(c), ["-- (older lines of #p are no longer kept)"]);
        // The binary protocol is told nothing older is kept: its client sees the seqs.
        t.send(
            a,
            &ClientMsg::Older {
                room: room("#p"),
                before: Seq(16),
                limit: 50,
            },
        );
        let got = t.recv(a);
        assert_eq!(past(&got), vec!["line 12", "line 13", "line 14"]);
        assert!(matches!(
            got.last(),
            Some(ServerMsg::PastEnd { at_start: true, .. })
        ));
    }

    #[test]
    fn with_a_store_older_lines_and_search_come_from_it() {
        let mut t = T::with(small_ring(true));
        let a = t.bin("alice");
        let b = t.bin("bob");
        t.join(a, "#p");
        t.join(b, "#p");
        for i in 1..=30 {
            t.say(a, "#p", i, &format!("line {i}"));
        }
        t.recv(a);
        t.recv(b);
        // The ring keeps 10 events; line 5 is only in the store.
        t.answer_queries = false;
        t.send(
            b,
            &ClientMsg::Older {
                room: room("#p"),
                before: Seq(10),
                limit: 5,
            },
        );
        assert!(t.recv(b).is_empty(), "waits for the store");
        let (id, q) = t.queries.pop().unwrap();
        assert!(matches!(&q, Query::History(h) if h.before == Seq(10) && h.limit == 5));
        let a_ = t.fake_answer(&q);
        t.hub.handle_answer(id, a_, t.now);
        t.pump();
        let got = t.recv(b);
        assert_eq!(
            past(&got),
            vec!["line 3", "line 4", "line 5", "line 6", "line 7"]
        );
        assert!(matches!(
            got.last(),
            Some(ServerMsg::PastEnd {
                at_start: false,
                ..
            })
        ));
        t.answer_queries = true;
        // Search goes to the store; only rooms the asker is in are answered.
        t.join(a, "#secret");
        t.say(a, "#secret", 31, "line hidden");
        t.recv(a);
        t.send(
            b,
            &ClientMsg::Search {
                room: None,
                words: text("line"),
            },
        );
        let got = t.recv(b);
        let hits: Vec<&RoomEvent> = got
            .iter()
            .filter_map(|m| match m {
                ServerMsg::Found(ev) => Some(ev),
                _ => None,
            })
            .collect();
        assert!(
            !hits.is_empty() && hits.iter().all(|e| e.room == room("#p")),
            "{got:?}"
        );
        assert!(hits[0].seq > hits[1].seq, "newest first");
        assert!(
            matches!(got.last(), Some(ServerMsg::FoundEnd { count }) if *count as usize == hits.len())
        );
        // The store is asked for the asker's rooms by name, so a busy room it is not in cannot
        // fill the 50 results in place of its own rooms' lines.
        for i in 32..=100 {
            t.say(a, "#secret", i, &format!("line {i}"));
        }
        t.recv(a);
        t.answer_queries = false;
        t.send(
            b,
            &ClientMsg::Search {
                room: None,
                words: text("line"),
            },
        );
        let (id, q) = t.queries.pop().unwrap();
        assert!(
            matches!(&q, Query::Search(s) if s.rooms == vec![room("#p")]),
            "{q:?}"
        );
        let answer = t.fake_answer(&q);
        t.hub.handle_answer(id, answer, t.now);
        t.pump();
        let got = t.recv(b);
        let found = got
            .iter()
            .filter(|m| matches!(m, ServerMsg::Found(_)))
            .count();
        assert_eq!(found, 30, "every line of #p: {got:?}");
        t.answer_queries = true;
    }

    /// Scrollback that has reached a room's first line, asked again, says the beginning again:
    /// nothing is older than seq 1. With a store and a ring that no longer starts at seq 1 (a
    /// busy room, or any room after a restart), it said "/history #p shows older lines" with
    /// no line, however often asked, and the binary protocol got `at_start: false`.
    #[test]
    fn with_a_store_scrollback_at_the_first_line_stays_at_the_beginning() {
        let mut t = T::with(small_ring(true));
        let a = t.bin("alice");
        t.join(a, "#p");
        for i in 1..=30 {
            t.say(a, "#p", i, &format!("line {i}"));
        }
        t.recv(a);
        let (c, _) = t.txt();
        t.line(c, "/join #p");
        t.lines(c);
        t.line(c, "/history 200");
        let h = t.lines(c);
        assert!(h.iter().any(|l| l.ends_with("<alice> line 1")), "{h:?}");
        assert_eq!(h.last().unwrap(), "-- (the beginning of #p)");
        for _ in 0..2 {
            t.line(c, "/history");
            assert_eq!(t.lines(c), ["-- (the beginning of #p)"]);
        }
        // The binary protocol: before the room's first event there is nothing, and that is
        // its start.
        t.send(
            a,
            &ClientMsg::Older {
                room: room("#p"),
                before: Seq(1),
                limit: 50,
            },
        );
        let got = t.recv(a);
        assert!(past(&got).is_empty(), "{got:?}");
        assert!(
            matches!(got.last(), Some(ServerMsg::PastEnd { at_start: true, .. })),
            "{got:?}"
        );
    }

    /// `printf '/search words\n/quit\n' | nc host 8000`, or the same ended by the end of
    /// input (`nc -N`): the store's answers come before the goodbye. Before, the quit ran at
    /// once and the answers found the connection gone.
    #[test]
    fn a_quit_waits_for_the_answers_to_what_was_asked_before_it() {
        let mut t = T::with(small_ring(true));
        let a = t.bin("alice");
        t.join(a, "#p");
        for i in 1..=30 {
            t.say(a, "#p", i, &format!("line {i}"));
        }
        t.recv(a);
        for end in ["/quit", "end of input"] {
            let (c, nick) = t.txt();
            t.line(c, "/join #p");
            t.lines(c);
            t.answer_queries = false;
            if end == "/quit" {
                t.feed(c, b"/search line\r\n/history 25\r\n/quit\r\n/nick late\r\n");
            } else {
                t.feed(c, b"/search line\r\n/history 25");
                assert!(t.hub.handle_eof(c, t.now));
            }
            t.pump();
            let early = t.lines(c);
            assert!(early.is_empty(), "{end}: waits for the store: {early:?}");
            assert!(!t.closed(c), "{end}");
            // One read at a time: nc's answers come in the order asked.
            let mut asked = 0;
            while !t.queries.is_empty() {
                let queries = std::mem::take(&mut t.queries);
                assert_eq!(queries.len(), 1, "{end}: {queries:?}");
                for (id, q) in queries {
                    let answer = t.fake_answer(&q);
                    t.hub.handle_answer(id, answer, t.now);
                    asked += 1;
                }
                t.pump();
            }
            assert_eq!(asked, 2, "{end}");
            let lines = t.lines(c);
            assert!(
                lines.iter().filter(|l| l.contains("> line ")).count() > 5,
                "{end}: {lines:?}"
            );
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with("-- ") && l.ends_with(" results")),
                "{end}: {lines:?}"
            );
            assert_eq!(
                lines.last().map(String::as_str),
                Some("-- goodbye"),
                "{end}"
            );
            assert!(
                !lines.iter().any(|l| l.contains("late")),
                "{end}: nothing after the quit runs: {lines:?}"
            );
            assert!(t.closed(c), "{end}");
            let seen = t.recv(a);
            assert!(
                seen.iter().any(|m| matches!(m, ServerMsg::Event(ev)
                    if ev.from.as_str() == nick && matches!(ev.kind, EventKind::Quit { .. }))),
                "{end}: {seen:?}"
            );
            t.answer_queries = true;
        }
    }

    /// Several `/search` lines pasted at once into nc, mixed with `/history` (answered from
    /// the ring) and a chat line: the store answers its reads in any order (each on its own
    /// reader), but a person reads the answers in the order they asked. Before, the second
    /// search's results could come before the first's, and `/history` and the echo of the chat
    /// line before either.
    #[test]
    fn a_text_users_answers_come_in_the_order_asked_whatever_order_the_store_answers() {
        let mut t = T::with(small_ring(true));
        let a = t.bin("alice");
        t.join(a, "#p");
        for i in 1..=30 {
            let word = if i % 2 == 0 { "even" } else { "odd" };
            t.say(a, "#p", i, &format!("{word} line {i}"));
        }
        t.recv(a);
        let (c, _) = t.txt();
        t.line(c, "/join #p");
        t.lines(c);
        t.answer_queries = false;
        t.feed(
            c,
            b"/search even\r\n/history 2\r\n/search odd\r\nhello there\r\n/who\r\n/search nothing\r\n",
        );
        t.pump();
        let mut lines = t.lines(c);
        assert!(
            says(&t.recv(a)).is_empty(),
            "the chat line waits behind the searches asked before it"
        );
        // Answer the store's reads newest first, as a busy store may.
        for _ in 0..10 {
            let queries = std::mem::take(&mut t.queries);
            if queries.is_empty() {
                break;
            }
            for (id, q) in queries.into_iter().rev() {
                let answer = t.fake_answer(&q);
                t.hub.handle_answer(id, answer, t.now);
            }
            t.pump();
            lines.extend(t.lines(c));
        }
        t.answer_queries = true;
        // Each line by what it is; runs of one kind as one letter.
        let mut order = String::new();
        for l in &lines {
            let kind = if l.starts_with("-- (/history #p") {
                'H'
            } else if l.contains("> even line") {
                'E'
            } else if l.contains("> odd line") {
                'O'
            } else if l.starts_with("-- ") && l.contains(" result") {
                'R'
            } else if l.starts_with("-- #p ") && l.contains("alice") {
                'W'
            } else {
                continue;
            };
            if !order.ends_with(kind) || kind == 'R' {
                order.push(kind);
            }
        }
        // The even hits, their count; `/history 2` (lines 26 and 27, then its footer); the
        // odd hits, their count; `/who`; the last search's count.
        assert_eq!(order, "EREOHORWR", "{lines:#?}");
        assert_eq!(says(&t.recv(a)), vec!["hello there"]);
    }

    #[test]
    fn a_refill_after_a_gap_reads_what_the_ring_lost_from_the_store() {
        let mut t = T::with(small_ring(true));
        let a = t.bin("alice");
        let b = t.bin("bob");
        t.join(a, "#p");
        let seen = events(&t.join(b, "#p")).last().unwrap().seq;
        for i in 1..=25 {
            t.say(a, "#p", i, &format!("line {i}"));
        }
        t.recv(a);
        t.recv(b);
        // bob missed everything after `seen` (say its queue was skipped): it asks for it.
        t.send(
            b,
            &ClientMsg::History {
                room: room("#p"),
                after: seen,
            },
        );
        let got = t.recv(b);
        let lines = says(&got);
        assert_eq!(lines.len(), 25, "{got:?}");
        assert_eq!(lines[0], "line 1");
        assert_eq!(lines[24], "line 25");
        assert!(
            !got.iter().any(|m| matches!(m, ServerMsg::Gap { .. })),
            "{got:?}"
        );
    }

    #[test]
    fn a_resume_after_a_restart_gets_what_only_the_store_holds_exactly_once() {
        let mut t = T::with(small_ring(true));
        let (a, _, token) = t.bin_from(LOCAL, "alice");
        let b = t.bin("bob");
        t.join(a, "#p");
        t.join(b, "#p");
        let seen = events(&t.recv(a)).last().unwrap().seq;
        t.hub.handle_close(a, t.now);
        t.pump();
        for i in 1..=40 {
            t.say(b, "#p", i, &format!("while away {i}"));
        }
        t.answer_queries = false;
        let (a2, got) = t.resume("alice", token, vec![(room("#p"), seen)]);
        assert!(got.is_empty(), "the welcome waits for the store: {got:?}");
        let queries = core::mem::take(&mut t.queries);
        assert!(!queries.is_empty());
        for (id, q) in queries {
            let a_ = t.fake_answer(&q);
            t.hub.handle_answer(id, a_, t.now);
        }
        t.pump();
        let got = t.recv(a2);
        assert!(
            matches!(&got[0], ServerMsg::Welcome { resumed: true, .. }),
            "{got:?}"
        );
        let lines = says(&got);
        let want: Vec<String> = (1..=40).map(|i| format!("while away {i}")).collect();
        assert_eq!(lines, want);
        assert!(
            !got.iter().any(|m| matches!(m, ServerMsg::Gap { .. })),
            "{got:?}"
        );
    }
}

#[test]
fn a_welcome_lost_with_its_connection_leaves_the_token_before_it_good() {
    // The new token goes out in a welcome; the connection drops before the client reads it.
    let mut t = T::new();
    let (a, _, first) = t.bin_from(LOCAL, "alice");
    t.join(a, "#r");
    t.hub.handle_close(a, t.now);
    let (a2, got) = t.resume("alice", first.clone(), vec![]);
    assert!(matches!(&got[0], ServerMsg::Welcome { resumed: true, .. }));
    t.hub.handle_close(a2, t.now);
    // The client still holds only `first`: it resumes with it.
    let (a3, got) = t.resume("alice", first.clone(), vec![]);
    let Some(ServerMsg::Welcome {
        resumed: true,
        token: third,
        ..
    }) = got.first()
    else {
        panic!("{got:?}");
    };
    assert!(t.hub.is_member(&nick("alice"), &room("#r")));
    // It talks on the new connection: from then on only the newest token works.
    t.send(a3, &ClientMsg::Ping { token: 1 });
    t.recv(a3);
    t.hub.handle_close(a3, t.now);
    let (_, got) = t.resume("alice", first, vec![]);
    assert_eq!(errors(&got)[0].0, ErrorKind::ResumeFailed);
    let (_, got) = t.resume("alice", third.clone(), vec![]);
    assert!(
        matches!(&got[0], ServerMsg::Welcome { resumed: true, .. }),
        "{got:?}"
    );
}

// ---- operations: what the hub counts (hub/stats.rs) and a new config while running
// (hub/reconfig.rs) ----

#[test]
fn stats_count_what_the_hub_did() {
    let mut cfg = config();
    cfg.flood_burst = 2;
    cfg.flood_queue = 1;
    cfg.flood_refill = Millis(100);
    cfg.max_connections_per_ip = 1;
    let mut t = T::with(cfg);
    let (a, _, token) = t.bin_from(LOCAL, "alice");
    let b = t.bin("bob");
    let census = t.hub.census();
    assert_eq!(census.count(Some(ConnKind::Binary), ConnState::Ready), 2);
    assert_eq!(census.count(None, ConnState::Handshake), 0);
    t.join(a, "#s");
    t.join(b, "#s");
    t.recv(a);
    let before = t.hub.stats().clone();
    assert_eq!(before.messages(MsgKind::Join), 2);
    assert!(before.bytes_in > 0 && before.bytes_out > 0, "{before:?}");
    // A say to a room of two: two deliveries (binary senders get their own back).
    t.advance(1_000);
    t.say(a, "#s", 1, "hello");
    let s = t.hub.stats();
    assert_eq!(s.messages(MsgKind::Say), 1);
    assert_eq!(s.deliveries - before.deliveries, 2);
    assert!(s.bytes_in > before.bytes_in && s.bytes_out > before.bytes_out);
    // Flood: one waits, the next is refused.
    for i in 2..=5 {
        t.say(a, "#s", i, "more");
    }
    let s = t.hub.stats();
    assert_eq!((s.flood_delayed, s.flood_refused), (1, 2), "{s:?}");
    // A second connection from one far address is refused for it.
    let far = ip("203.0.113.9");
    t.hub.accept(far, t.now).unwrap();
    t.hub.accept(far, t.now).unwrap();
    assert_eq!(t.hub.stats().refusals(RefusedWhy::PerIp), 1);
    let census = t.hub.census();
    assert_eq!(census.count(None, ConnState::Handshake), 2, "{census:?}");
    // Resumes: a dead token fails, a good one works.
    t.advance(1_000);
    t.hub.handle_close(a, t.now);
    t.pump();
    t.resume("x", ResumeToken([1; 32]), vec![]);
    t.resume("alice", token, vec![]);
    let s = t.hub.stats();
    assert_eq!((s.resumes_ok, s.resumes_failed), (1, 1), "{s:?}");
    // A reader that stalls misses traffic and is told with a gap once it drains.
    let mut cfg = config();
    cfg.outbound_max_bytes = 600;
    cfg.outbound_max_msgs = 1_000;
    cfg.flood_refill = Millis(0);
    let mut t = T::with(cfg);
    let a = t.bin("alice");
    let b = t.bin("bob");
    t.join(a, "#g");
    t.join(b, "#g");
    t.stalled.insert(b);
    for i in 1..=40 {
        t.say(
            a,
            "#g",
            i,
            "a line long enough to fill a small backlog quickly",
        );
    }
    assert!(t.hub.census().largest_backlog > 0);
    t.stalled.remove(&b);
    let n = t.unwritten.remove(&b).unwrap_or(0);
    t.hub.handle_written(b, n, t.now);
    t.pump();
    assert!(t.hub.stats().gaps >= 1, "{:?}", t.hub.stats());
}

/// An address opening connections in a loop past its limit is refused every time, and told
/// every time, but the log hears of the first refusal of a limit and then of one per ten
/// seconds, with how many it did not hear of: the thirty-first session's attack pass wrote
/// 1,028 `WARN` lines (and as many accepts and closes at `INFO`) for one burst. The quiet ones
/// are marked for the shell ([`Hub::refusal_unsaid`]), which logs their accept and close at
/// `DEBUG`; the metrics count them all.
#[test]
fn refusals_at_admission_are_said_in_the_log_once_per_ten_seconds_with_a_count() {
    let mut cfg = config();
    cfg.max_connections_per_ip = 1;
    let mut t = T::with(cfg);
    let far = ip("203.0.113.5");
    let (_held, _) = t.hello(far, "one", None);
    let said = |t: &T| {
        t.events
            .iter()
            .filter_map(|e| match e {
                HubEvent::LimitHit {
                    limit: Limit::PerIp,
                    detail,
                    ..
                } => Some(detail.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let mut refused = Vec::new();
    for _ in 0..5 {
        let c = t.hub.accept(far, t.now).unwrap();
        t.pump();
        t.feed(c, b"hi\n");
        let l = t.lines(c);
        assert!(
            l.iter().any(|l| l.contains("connection open")),
            "every one is told: {l:?}"
        );
        assert!(t.closed(c));
        refused.push(c);
    }
    let first = said(&t);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(!first[0].contains("more refused"), "{first:?}");
    assert!(!t.hub.refusal_unsaid(refused[0]));
    assert!(refused[1..].iter().all(|&c| t.hub.refusal_unsaid(c)));
    for c in refused {
        t.hub.handle_close(c, t.now);
    }
    // Ten seconds on, the next is said with the four before it.
    t.advance(10_000);
    let c = t.hub.accept(far, t.now).unwrap();
    t.pump();
    let now_said = said(&t);
    assert_eq!(now_said.len(), 2, "{now_said:?}");
    assert!(
        now_said[1].ends_with("(4 more refused for this limit since the last such line)"),
        "{now_said:?}"
    );
    assert!(!t.hub.refusal_unsaid(c));
    assert_eq!(t.hub.stats().refusals(RefusedWhy::PerIp), 6);
}

#[test]
fn reconfigure_applies_to_new_work_and_keeps_open_connections() {
    let mut cfg = config();
    cfg.max_connections_per_ip = 2;
    let mut t = T::with(cfg);
    let far = ip("203.0.113.5");
    let (c1, _) = t.hello(far, "one", None);
    let (c2, _) = t.hello(far, "two", None);
    let mut next = t.hub.config().clone();
    next.max_connections_per_ip = 1;
    next.secret_seed = [0; 32]; // the hub's own: ignored
    let changes = t.hub.reconfigure(next).unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].to_string(), "max_connections_per_ip: 2 -> 1");
    assert_eq!(t.hub.config().secret_seed, [7; 32]);
    // Both stay open; a third is refused under the new limit.
    assert!(!t.closed(c1) && !t.closed(c2));
    let c3 = t.hub.accept(far, t.now).unwrap();
    t.pump();
    assert_eq!(t.limit(c3, Limit::PerIp), 1);
    // The same config again changes nothing.
    assert_eq!(t.hub.reconfigure(t.hub.config().clone()), Ok(vec![]));
    // Closing one of the two old ones does not let another in (two open, one allowed).
    t.hub.handle_close(c3, t.now);
    t.hub.handle_close(c1, t.now);
    let c4 = t.hub.accept(far, t.now).unwrap();
    t.pump();
    // Refused (the log heard of c3's refusal a moment ago: this one is counted, not said).
    assert!(t.hub.refusal_unsaid(c4));
    t.hub.handle_close(c4, t.now);
    t.hub.handle_close(c2, t.now);
    let (_, got) = t.hello(far, "five", None);
    assert!(matches!(&got[..], [ServerMsg::Welcome { .. }]), "{got:?}");
}

#[test]
fn reconfigure_refuses_bad_or_fixed_values_and_keeps_the_running_config() {
    let mut t = T::new();
    let mut bad = t.hub.config().clone();
    bad.max_connections = 7;
    bad.connect_window = Millis(0);
    let e = t.hub.reconfigure(bad).unwrap_err();
    assert!(e.to_string().contains("connect_window_ms = 0"), "{e}");
    assert_eq!(
        t.hub.config().max_connections,
        crate::limits::MAX_CONNECTIONS
    );
    let mut fixed = t.hub.config().clone();
    fixed.max_connections = 7;
    fixed.ipv6_wide_prefix = 40;
    let e = t.hub.reconfigure(fixed).unwrap_err();
    assert!(
        matches!(&e, ReconfigError::Fixed(c) if c.key == "ipv6_wide_prefix"),
        "{e}"
    );
    assert!(e.to_string().contains("restart"), "{e}");
    assert_eq!(
        t.hub.config().max_connections,
        crate::limits::MAX_CONNECTIONS
    );
}

mod accounts {
    use super::*;
    use crate::accounts::Work;
    use crate::types::{DeviceKey, Password};
    use crate::wire::Proof;

    const PW: &str = "correct horse";

    fn pw(s: &str) -> Password {
        Password(s.into())
    }

    fn sign_in(
        t: &mut T,
        c: ConnId,
        account: &str,
        proof: Proof,
        remember: bool,
    ) -> Vec<ServerMsg> {
        t.send(
            c,
            &ClientMsg::SignIn {
                account: nick(account),
                proof,
                remember,
            },
        );
        t.recv(c)
    }

    /// A binary client that registers its nick; its device key.
    fn registered(t: &mut T, name: &str) -> (ConnId, DeviceKey) {
        let c = t.bin(name);
        t.send(
            c,
            &ClientMsg::Register {
                password: pw(PW),
                remember: true,
            },
        );
        let got = t.recv(c);
        let key = got
            .iter()
            .find_map(|m| match m {
                ServerMsg::SignedIn { account, key, .. } if account.as_str() == name => key.clone(),
                _ => None,
            })
            .unwrap_or_else(|| panic!("not registered: {got:?}"));
        (c, key)
    }

    fn error_kinds(msgs: &[ServerMsg]) -> Vec<ErrorKind> {
        msgs.iter()
            .filter_map(|m| match m {
                ServerMsg::Error { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect()
    }

    fn signed_in(msgs: &[ServerMsg]) -> bool {
        msgs.iter().any(|m| matches!(m, ServerMsg::SignedIn { .. }))
    }

    fn error_detail(msgs: &[ServerMsg]) -> String {
        msgs.iter()
            .find_map(|m| match m {
                ServerMsg::Error { detail, .. } => Some(detail.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    #[test]
    fn an_nc_account_that_signs_in_again_is_given_only_what_came_after_it_left() {
        let mut t = T::new();
        let (a, _) = t.txt();
        t.line(a, "/nick alice");
        t.line(a, "/register correct horse");
        t.line(a, "/join #m");
        let b = t.bin("bob");
        t.join(b, "#m");
        t.say(b, "#m", 1, "read live");
        let l = t.lines(a);
        assert!(l.iter().any(|l| l.contains("<bob> read live")), "{l:?}");
        // alice's nc goes (it had no way to say what it read: it was shown it), by /quit.
        t.line(a, "/quit");
        t.hub.handle_close(a, t.now);
        t.pump();
        t.say(b, "#m", 2, "said while away");
        let (a2, _) = t.txt();
        t.say(b, "#m", 3, "and more");
        t.line(a2, "/login alice correct horse");
        let l = t.lines(a2);
        assert!(
            !l.iter().any(|l| l.contains("read live")),
            "shown again as missed: {l:?}"
        );
        // What she missed comes under the lines a join's recent messages come under.
        let at = |needle: &str| {
            l.iter()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no {needle:?} in {l:?}"))
        };
        let head = at("-- recent messages in #m:");
        let (first, last) = (at("said while away"), at("and more"));
        let foot = l
            .iter()
            .rposition(|l| l == "-- (end of recent messages)")
            .unwrap_or_else(|| panic!("no footer in {l:?}"));
        assert!(head < first && first < last && last < foot, "{l:?}");
    }

    #[test]
    fn nc_registers_logs_in_from_a_second_connection_and_both_hear_each_other() {
        let mut t = T::new();
        let (a1, _) = t.txt();
        t.line(a1, "/nick alice");
        t.lines(a1);
        t.line(a1, "/register correct horse");
        let l = t.lines(a1);
        assert!(l.iter().any(|l| l.contains("signed in as alice")), "{l:?}");
        // A guest cannot take the nick.
        let (g, _) = t.txt();
        t.line(g, "/nick alice");
        let l = t.lines(g);
        assert!(
            l.iter()
                .any(|l| l.starts_with("ERROR:") && l.contains("registered")),
            "{l:?}"
        );
        // Wrong password, then the right one.
        t.line(g, "/login alice wrong horse");
        let l = t.lines(g);
        assert!(
            l.iter()
                .any(|l| l.contains("wrong account name or password")),
            "{l:?}"
        );
        assert!(!l.iter().any(|l| l.contains("wrong horse")), "never echoed");
        t.line(g, "/login alice correct horse");
        let l = t.lines(g);
        assert!(l.iter().any(|l| l.contains("signed in as alice")), "{l:?}");
        assert_eq!(t.hub.nick(g).unwrap().as_str(), "alice");
        assert_eq!(t.hub.nick(a1).unwrap().as_str(), "alice");
        // A line from one connection reaches the other (and everyone else), not itself.
        let b = t.bin("bob");
        t.join(b, "#lobby");
        t.lines(a1);
        t.line(g, "from the second one");
        let l = t.lines(a1);
        assert!(
            l.iter().any(|l| l.contains("<alice> from the second one")),
            "{l:?}"
        );
        assert!(
            t.lines(g)
                .iter()
                .all(|l| !l.contains("from the second one"))
        );
        assert_eq!(says(&t.recv(b)), vec!["from the second one"]);
    }

    #[test]
    fn one_account_on_several_binary_connections_shares_rooms_and_dms() {
        let mut t = T::new();
        let (a1, key) = registered(&mut t, "alice");
        t.join(a1, "#x");
        let a2 = t.bin("laptop");
        let got = sign_in(&mut t, a2, "alice", Proof::Key(key), false);
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::YourNick { nick } if nick.as_str() == "alice")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Joined { room: r, .. } if r.as_str() == "#x")),
            "{got:?}"
        );
        // Joining on one joins on both.
        t.recv(a1);
        t.join(a2, "#y");
        assert!(
            t.recv(a1)
                .iter()
                .any(|m| matches!(m, ServerMsg::Joined { room: r, .. } if r.as_str() == "#y"))
        );
        // A message from one shows on the other.
        t.say(a2, "#x", 1, "sent from the laptop");
        assert_eq!(says(&t.recv(a1)), vec!["sent from the laptop"]);
        assert_eq!(says(&t.recv(a2)), vec!["sent from the laptop"], "its echo");
        // A DM reaches both.
        let b = t.bin("bob");
        t.send(
            b,
            &ClientMsg::Msg {
                to: nick("alice"),
                id: MsgId(1),
                text: text("psst"),
            },
        );
        for c in [a1, a2] {
            assert!(
                t.recv(c)
                    .iter()
                    .any(|m| matches!(m, ServerMsg::Direct(d) if d.text.as_str() == "psst")),
                "on {c}"
            );
        }
        // Parting on one parts on both; the account is still one member.
        t.send(
            a1,
            &ClientMsg::Part {
                room: room("#y"),
                reason: None,
            },
        );
        assert!(
            t.recv(a2)
                .iter()
                .any(|m| matches!(m, ServerMsg::Parted { room: r } if r.as_str() == "#y"))
        );
        assert!(!t.hub.is_member(&nick("alice"), &room("#y")));
    }

    #[test]
    fn a_guest_holding_the_nick_is_renamed_when_its_owner_signs_in() {
        let mut t = T::with(Config {
            accounts: AccountsConfig {
                always_on: false,
                ..config().accounts
            },
            ..config()
        });
        let (a, key) = registered(&mut t, "alice");
        t.send(a, &ClientMsg::Quit { reason: None });
        // Not always-on: the nick is free of users, but still registered.
        let g = t.bin("alice");
        assert_ne!(t.hub.nick(g).unwrap().as_str(), "alice", "another nick");
        // The operator adds an account for a nick a guest holds.
        let carol = t.bin("carol");
        t.hub.load_accounts(vec![crate::persist::LoadedAccount {
            record: crate::persist::AccountRecord {
                name: nick("carol"),
                hash: crate::accounts::hash_password(
                    &pw(PW),
                    &[1; 16],
                    crate::accounts::HashCost::TEST,
                )
                .unwrap(),
                created: Millis(0),
            },
            rooms: Vec::new(),
            read: Vec::new(),
            keys: Vec::new(),
            held: Vec::new(),
        }]);
        let owner = t.bin("owner");
        let got = sign_in(&mut t, owner, "carol", Proof::Password(pw(PW)), false);
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::SignedIn { .. })),
            "{got:?}"
        );
        let told = t.recv(carol);
        assert_eq!(error_kinds(&told), vec![ErrorKind::NickTaken], "{told:?}");
        assert!(error_detail(&told).contains("registered"), "{told:?}");
        let now = t.hub.nick(carol).unwrap().to_string();
        assert!(now.starts_with("guest"), "{now}");
        assert_eq!(t.hub.nick(owner).unwrap().as_str(), "carol");
        // The operator's list had no alice: her account, and her key, are gone.
        let again = t.bin("x");
        let got = sign_in(&mut t, again, "alice", Proof::Key(key), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed], "{got:?}");
        let got = t.join(again, "#y");
        assert!(!got.is_empty());
        t.send(
            again,
            &ClientMsg::Nick {
                nick: nick("alice"),
            },
        );
        assert!(
            t.recv(again)
                .iter()
                .any(|m| matches!(m, ServerMsg::YourNick { nick } if nick.as_str() == "alice")),
            "the nick is free again"
        );
    }

    /// An account the operator removes while a device of it is connected: the device is told
    /// it is a guest now (`NotSignedIn`, `re: Conn`), and stays, under the same nick.
    #[test]
    fn a_connected_device_of_an_account_the_operator_removes_is_told() {
        let mut t = T::new();
        let (a, _) = registered(&mut t, "alice");
        t.recv(a);
        t.hub.load_accounts(Vec::new());
        t.pump();
        let got = t.recv(a);
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::Error { kind: ErrorKind::NotSignedIn, re: Re::Conn, detail }
                if detail == super::super::accounts::ACCOUNT_REMOVED)),
            "{got:?}"
        );
        assert_eq!(t.hub.nick(a).unwrap().as_str(), "alice");
        let uid = t.hub.user_of(a).unwrap();
        assert_eq!(t.hub.account_of(uid), None);
    }

    /// An account named as an IRC service (`natter-server account add NickServ` took it, or a
    /// store made before that was refused): its holder would be sent what IRC clients send
    /// NickServ (`IDENTIFY` and a password). It is not loaded, nobody signs in to it, and a
    /// message to a service's nick reaches nobody whoever holds it.
    #[test]
    fn an_account_named_as_an_irc_service_is_not_loaded_and_its_nick_hears_nothing() {
        let mut t = T::new();
        let loaded = |name: &str| crate::persist::LoadedAccount {
            record: crate::persist::AccountRecord {
                name: nick(name),
                hash: crate::accounts::hash_password(
                    &pw(PW),
                    &[1; 16],
                    crate::accounts::HashCost::TEST,
                )
                .unwrap(),
                created: Millis(0),
            },
            rooms: vec![room("#lobby")],
            read: Vec::new(),
            keys: Vec::new(),
            held: Vec::new(),
        };
        t.hub
            .load_accounts(vec![loaded("NickServ"), loaded("carol")]);
        assert_eq!(t.hub.account_count(), 1, "carol only");
        assert!(
            !t.hub.is_member(&nick("NickServ"), &room("#lobby")),
            "not always-on in its rooms either"
        );
        let c = t.bin("x");
        let got = sign_in(&mut t, c, "NickServ", Proof::Password(pw(PW)), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed], "{got:?}");
        assert_ne!(t.hub.nick(c).map(|n| n.folded()), Some("nickserv".into()));
        // And what is sent to a service's nick goes nowhere, said as nc and IRC say it.
        let b = t.bin("bob");
        t.send(
            b,
            &ClientMsg::Msg {
                to: nick("NickServ"),
                id: MsgId(1),
                text: text("IDENTIFY bob hunter22hunter"),
            },
        );
        let got = t.recv(b);
        assert_eq!(error_kinds(&got), vec![ErrorKind::NoSuchNick], "{got:?}");
        assert!(error_detail(&got).contains("reserved"), "{got:?}");
        assert!(t.recv(c).iter().all(|m| !matches!(m, ServerMsg::Direct(_))));
    }

    /// `natter-server account remove` of an always-on account with nothing connected: its user
    /// stayed in its rooms with nobody behind it, holding the nick (`the nick carol is taken`)
    /// until the server restarted, though the account and its rooms were gone. It quits.
    #[test]
    fn an_account_removed_by_the_operator_with_nothing_connected_leaves_its_rooms() {
        let mut t = T::new();
        let (a, _) = registered(&mut t, "carol");
        t.join(a, "#m");
        t.send(a, &ClientMsg::Quit { reason: None });
        t.hub.handle_close(a, t.now);
        let b = t.bin("bob");
        t.join(b, "#m");
        t.recv(b);
        assert!(t.hub.is_member(&nick("carol"), &room("#m")), "always-on");
        // The operator's reload lists no carol.
        t.hub.load_accounts(Vec::new());
        t.pump();
        let got = t.recv(b);
        assert!(
            events(&got)
                .iter()
                .any(|e| e.from.as_str() == "carol" && matches!(e.kind, EventKind::Quit { .. })),
            "{got:?}"
        );
        assert!(!t.hub.is_member(&nick("carol"), &room("#m")));
        t.send(
            b,
            &ClientMsg::Nick {
                nick: nick("carol"),
            },
        );
        assert!(
            t.recv(b)
                .iter()
                .any(|m| matches!(m, ServerMsg::YourNick { nick } if nick.as_str() == "carol")),
            "the nick is free"
        );
    }

    /// A guest in a room its account is not in signs in: the room becomes the account's. nc
    /// was shown `you are in #qa` twice, the first before it was even the account (`you left
    /// #qa`, `you are in #qa`, `you are now known as alice`, ..., `you are in #qa`).
    #[test]
    fn a_guests_own_room_is_entered_once_when_it_signs_in() {
        let mut t = T::new();
        let (a, _) = registered(&mut t, "alice");
        t.join(a, "#m");
        t.send(a, &ClientMsg::Quit { reason: None });
        t.hub.handle_close(a, t.now);
        let (g, _) = t.txt();
        t.line(g, "/join #qa");
        t.lines(g);
        t.line(g, "/login alice correct horse");
        let l = t.lines(g);
        let at = |needle: &str| {
            l.iter()
                .position(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("no {needle:?} in {l:?}"))
        };
        assert_eq!(
            l.iter()
                .filter(|l| l.starts_with("-- you are in #qa"))
                .count(),
            1,
            "{l:?}"
        );
        assert!(
            at("-- you are signed in as alice") < at("-- you are in #qa"),
            "{l:?}"
        );
        assert!(at("-- you are in #m") < at("-- you are in #qa"), "{l:?}");
        assert!(t.hub.is_member(&nick("alice"), &room("#qa")));
        assert!(t.hub.is_member(&nick("alice"), &room("#m")));
    }

    /// `natter-server account passwd` revokes every device key of the account in the store;
    /// the running server learns of it at its reload, which lists the account with no keys.
    /// The hub replaced the account's list but kept the revoked keys in its table of keys, so
    /// a remembered device (or whoever copied its key) still signed in until a restart.
    #[test]
    fn device_keys_the_operator_revoked_stop_working_at_the_reload() {
        let mut t = T::new();
        let (a, key) = registered(&mut t, "alice");
        let (_, kept) = registered(&mut t, "bob");
        t.send(a, &ClientMsg::Quit { reason: None });
        t.hub.handle_close(a, t.now);
        let reloaded =
            |name: &str, keys: Vec<crate::persist::KeyRecord>| crate::persist::LoadedAccount {
                record: crate::persist::AccountRecord {
                    name: nick(name),
                    hash: crate::accounts::hash_password(
                        &pw("a new password"),
                        &[2; 16],
                        crate::accounts::HashCost::TEST,
                    )
                    .unwrap(),
                    created: Millis(0),
                },
                rooms: Vec::new(),
                read: Vec::new(),
                keys,
                held: Vec::new(),
            };
        // bob's key stays in the store (and so in the reload); alice's were revoked.
        let bobs = crate::persist::KeyRecord::of(&kept, Millis(0));
        t.hub.load_accounts(vec![
            reloaded("alice", Vec::new()),
            reloaded("bob", vec![bobs]),
        ]);
        let c = t.bin("x");
        let got = sign_in(&mut t, c, "alice", Proof::Key(key), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed], "{got:?}");
        let d = t.bin("y");
        let got = sign_in(&mut t, d, "bob", Proof::Key(kept), false);
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::SignedIn { .. })),
            "a key still listed still works: {got:?}"
        );
    }

    fn token_of(got: &[ServerMsg]) -> ResumeToken {
        got.iter()
            .find_map(|m| match m {
                ServerMsg::SignedIn { token, .. } => Some(token.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("not signed in: {got:?}"))
    }

    /// A connection that signs in, shows it has its token (a ping), and the token.
    fn device(t: &mut T, want: &str, account: &str) -> (ConnId, ResumeToken) {
        let c = t.bin(want);
        let got = sign_in(t, c, account, Proof::Password(pw(PW)), false);
        let token = token_of(&got);
        t.send(c, &ClientMsg::Ping { token: 1 });
        t.recv(c);
        (c, token)
    }

    fn resumed(got: &[ServerMsg]) -> bool {
        got.iter()
            .any(|m| matches!(m, ServerMsg::Welcome { resumed: true, .. }))
    }

    #[test]
    fn a_resume_token_opens_nothing_after_sign_out_or_a_password_change_elsewhere() {
        let mut t = T::new();
        let (a, _) = registered(&mut t, "alice");
        t.join(a, "#x");
        t.send(a, &ClientMsg::Ping { token: 1 });
        t.recv(a);
        // Signed out: the device's token is dead.
        let (p, tp) = device(&mut t, "p", "alice");
        t.send(p, &ClientMsg::SignOut);
        assert!(t.closed(p));
        let (_, got) = t.resume("x", tp, vec![]);
        assert_eq!(error_kinds(&got), vec![ErrorKind::ResumeFailed], "{got:?}");
        assert!(!resumed(&got), "{got:?}");
        // Two more devices: q drops (waiting for its resume), r stays connected.
        let (q, tq) = device(&mut t, "q", "alice");
        let (r, tr) = device(&mut t, "r", "alice");
        t.hub.handle_close(q, t.now);
        t.pump();
        // The password changes on a.
        t.send(
            a,
            &ClientMsg::ChangePassword {
                old: pw(PW),
                new: pw("battery staple"),
            },
        );
        assert!(t.recv(a).contains(&ServerMsg::PasswordChanged));
        // q's token, from before the change, opens nothing: a guest's fresh session.
        let (g, got) = t.resume("y", tq, vec![]);
        assert_eq!(error_kinds(&got), vec![ErrorKind::ResumeFailed], "{got:?}");
        assert!(!resumed(&got), "{got:?}");
        assert_ne!(t.hub.nick(g).map(|n| n.as_str()), Some("alice"));
        // r goes on as alice until it drops; then its token is dead too.
        t.say(a, "#x", 7, "still there?");
        assert!(
            t.recv(r).iter().any(|m| matches!(m, ServerMsg::Event(e)
                if matches!(&e.kind, EventKind::Say { text, .. } if text.as_str() == "still there?"))),
            "r is still alice's device"
        );
        t.hub.handle_close(r, t.now);
        t.pump();
        let (_, got) = t.resume("z", tr, vec![]);
        assert_eq!(error_kinds(&got), vec![ErrorKind::ResumeFailed], "{got:?}");
        // The device that changed the password keeps its session.
        assert!(!t.closed(a));
        assert!(t.hub.is_member(&nick("alice"), &room("#x")));
    }

    /// The Welcome's token in `got` (a resume's answer).
    fn welcomed_token(got: &[ServerMsg]) -> ResumeToken {
        got.iter()
            .find_map(|m| match m {
                ServerMsg::Welcome { token, .. } => Some(token.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no welcome: {got:?}"))
    }

    /// Away is the person's, on every door (README, Accounts). Found by the thirty-second
    /// session's acceptance audit: a device waiting for its resume while another device of
    /// the account went away (or came back) missed that `Away` (nothing is sent to a device
    /// with no connection), and its resume did not say it: the page or the TUI went on saying
    /// "you are back" while the account was away, or the reverse.
    #[test]
    fn a_resumed_device_hears_the_away_another_device_set_or_cleared_meanwhile() {
        let mut t = T::new();
        let (a, _) = registered(&mut t, "alice");
        let (p, tp) = device(&mut t, "p", "alice");
        t.hub.handle_close(p, t.now);
        t.pump();
        t.send(a, &ClientMsg::Away(Some(text("lunch"))));
        t.recv(a);
        let own = |got: &[ServerMsg]| -> Vec<Option<Text>> {
            got.iter()
                .filter_map(|m| match m {
                    ServerMsg::Away { nick, away } if nick.as_str() == "alice" => {
                        Some(away.clone())
                    }
                    _ => None,
                })
                .collect()
        };
        let (p, got) = t.resume("x", tp, vec![]);
        assert!(resumed(&got), "{got:?}");
        assert_eq!(own(&got), vec![Some(text("lunch"))], "{got:?}");
        let token = welcomed_token(&got);
        t.send(p, &ClientMsg::Ping { token: 1 });
        t.recv(p);
        // Back, set on the other device while this one waits again.
        t.hub.handle_close(p, t.now);
        t.pump();
        t.send(a, &ClientMsg::Away(None));
        t.recv(a);
        let (p, got) = t.resume("x", token, vec![]);
        assert!(resumed(&got), "{got:?}");
        assert_eq!(own(&got), vec![None], "{got:?}");
        // Nothing changed while it was gone, and it is not away: nothing said of it.
        let token = welcomed_token(&got);
        t.send(p, &ClientMsg::Ping { token: 2 });
        t.recv(p);
        t.hub.handle_close(p, t.now);
        t.pump();
        let (_, got) = t.resume("x", token, vec![]);
        assert!(resumed(&got), "{got:?}");
        assert!(own(&got).is_empty(), "{got:?}");
    }

    /// A resume that takes the session over from a connection that did not answer (it may be
    /// dead: what was sent there since may never have arrived) says the away as it is now,
    /// "back" included.
    #[test]
    fn a_resume_taking_over_a_dead_connection_says_the_away_as_it_is_now() {
        let mut t = T::new();
        let (a, _) = registered(&mut t, "alice");
        let (p, tp) = device(&mut t, "p", "alice");
        t.send(a, &ClientMsg::Away(Some(text("lunch"))));
        t.send(a, &ClientMsg::Away(None));
        t.recv(a);
        let lost = t.recv(p);
        assert_eq!(lost.len(), 2, "sent to the connection that died: {lost:?}");
        let (q, got) = t.resume("x", tp, vec![]);
        assert!(
            got.is_empty(),
            "the attached connection is probed first: {got:?}"
        );
        t.advance(crate::limits::TAKEOVER_PROBE.0);
        assert!(t.closed(p));
        let got = t.recv(q);
        assert!(resumed(&got), "{got:?}");
        assert!(
            got.contains(&ServerMsg::Away {
                nick: nick("alice"),
                away: None
            }),
            "{got:?}"
        );
    }

    /// The operator's `natter-server account passwd` (the reload brings a new hash) ends the
    /// account's sessions as a `/password` from one of its devices does, none excepted: an
    /// operator resets a password when the account is not its owner's any more, and a resume
    /// token (a lost laptop's, a copied one) kept it open whatever the password became.
    #[test]
    fn a_password_the_operator_set_ends_the_accounts_sessions_at_the_reload() {
        let mut t = T::new();
        // The store keeps the time of registration through a password change.
        let created = t.now;
        let (a, _) = registered(&mut t, "alice");
        t.join(a, "#x");
        let (q, tq) = device(&mut t, "q", "alice");
        let (r, tr) = device(&mut t, "r", "alice");
        t.hub.handle_close(q, t.now);
        t.pump();
        let reloaded = |hash| crate::persist::LoadedAccount {
            record: crate::persist::AccountRecord {
                name: nick("alice"),
                hash,
                created,
            },
            rooms: vec![room("#x")],
            read: Vec::new(),
            keys: Vec::new(),
            held: Vec::new(),
        };
        let new_hash = || {
            crate::accounts::hash_password(
                &pw("set by the operator"),
                &[2; 16],
                crate::accounts::HashCost::TEST,
            )
            .unwrap()
        };
        t.hub.load_accounts(vec![reloaded(new_hash())]);
        t.pump();
        let (_, got) = t.resume("y", tq, vec![]);
        assert_eq!(error_kinds(&got), vec![ErrorKind::ResumeFailed], "{got:?}");
        assert!(!resumed(&got), "{got:?}");
        // A connected device goes on until it drops; then its token is dead too.
        assert!(!t.closed(r));
        t.hub.handle_close(r, t.now);
        t.pump();
        let (_, got) = t.resume("z", tr, vec![]);
        assert_eq!(error_kinds(&got), vec![ErrorKind::ResumeFailed], "{got:?}");
        // A reload that changes nothing ends nothing.
        let s = t.bin("s");
        let got = sign_in(
            &mut t,
            s,
            "alice",
            Proof::Password(pw("set by the operator")),
            false,
        );
        let ts = token_of(&got);
        t.send(s, &ClientMsg::Ping { token: 1 });
        t.recv(s);
        t.hub.load_accounts(vec![reloaded(new_hash())]);
        t.hub.handle_close(s, t.now);
        t.pump();
        let (_, got) = t.resume("w", ts, vec![]);
        assert!(resumed(&got), "{got:?}");
        assert!(t.hub.is_member(&nick("alice"), &room("#x")));
    }

    /// The operator sets alice's password while the server runs; alice, still connected,
    /// joins #y before the reload. The store drops the server's writes of an account the
    /// operator changed until the server takes it up, so it never got #y; the account is the
    /// same registration, and the reload writes it whole as the hub holds it after taking it
    /// up (until the forty-first session's review it wrote the record alone: the join she was
    /// told of was gone after a restart).
    #[test]
    fn a_reload_that_reads_the_operators_password_writes_the_account_whole() {
        use crate::persist::{AccountRecord, LoadedAccount, Write};
        let mut t = T::with(Config {
            durable: true,
            ..config()
        });
        let created = t.now;
        let (a, _) = registered(&mut t, "alice");
        t.join(a, "#x");
        t.pump();
        // `account passwd alice`; then alice joins #y, which the store drops.
        t.join(a, "#y");
        t.pump();
        let hash = crate::accounts::hash_password(
            &pw("set by the operator"),
            &[2; 16],
            crate::accounts::HashCost::TEST,
        )
        .unwrap();
        let record = AccountRecord {
            name: nick("alice"),
            hash,
            created,
        };
        let before = t.batches.len();
        t.hub.load_accounts(vec![LoadedAccount {
            record: record.clone(),
            rooms: vec![room("#x")],
            read: Vec::new(),
            keys: Vec::new(),
            held: Vec::new(),
        }]);
        t.pump();
        let writes: Vec<&Write> = t.batches[before..]
            .iter()
            .flat_map(|b| b.writes.iter())
            .collect();
        let taken_up = writes
            .iter()
            .position(|w| **w == Write::Account(record.clone()))
            .expect("taken up with the new hash");
        let rooms = writes
            .iter()
            .position(|w| {
                matches!(w, Write::AccountRooms { account, rooms }
                    if *account == nick("alice") && rooms.contains(&room("#y")))
            })
            .unwrap_or_else(|| panic!("#y written again: {writes:?}"));
        assert!(taken_up < rooms, "{writes:?}");
    }

    /// The store names each account it knows by its folded name (`server_accounts` keys on
    /// it): a start that finds "Alice" held as she is writes nothing of her (until the
    /// forty-first session's review every start wrote back each account whose name has a
    /// capital letter, as if the operator had changed it).
    #[test]
    fn a_start_that_finds_an_account_held_as_it_is_writes_nothing_whatever_its_case() {
        use crate::persist::{AccountRecord, Loaded, LoadedAccount, Write};
        let mut t = T::with(Config {
            durable: true,
            ..config()
        });
        let hash = crate::accounts::hash_password(
            &pw("a long passphrase"),
            &[3; 16],
            crate::accounts::HashCost::TEST,
        )
        .unwrap();
        let record = AccountRecord {
            name: nick("Alice"),
            hash,
            created: Millis(500),
        };
        let known = AccountRecord {
            name: nick("alice"),
            ..record.clone()
        };
        t.hub.restore(
            Loaded {
                accounts: vec![LoadedAccount {
                    record,
                    rooms: Vec::new(),
                    read: Vec::new(),
                    keys: Vec::new(),
                    held: Vec::new(),
                }],
                known: vec![known],
                ..Default::default()
            },
            t.now,
        );
        t.pump();
        let written: Vec<&Write> = t
            .batches
            .iter()
            .flat_map(|b| b.writes.iter())
            .filter(|w| matches!(w, Write::Account(_)))
            .collect();
        assert!(written.is_empty(), "{written:?}");
        assert_eq!(t.hub.account_count(), 1);
    }

    /// A password the operator set while the server was stopped (`account passwd alice`, then
    /// the start): the start ends the account's resume sessions, as the reload does in a
    /// running server (until the forty-first session they resumed, signed in on the old
    /// password's proof), and takes the account up with its new hash. A start that finds the
    /// account as the server held it ends nothing.
    #[test]
    fn a_password_the_operator_set_while_the_server_was_down_ends_the_accounts_sessions() {
        use crate::persist::{Loaded, LoadedAccount, TokenHash, Write};
        let cfg = Config {
            durable: true,
            ..config()
        };
        let mut t = T::with(cfg.clone());
        let _a = registered(&mut t, "alice");
        let (q, tq) = device(&mut t, "q", "alice");
        t.hub.handle_close(q, t.now);
        t.pump();
        let sessions = super::durable::stored(&t).sessions;
        assert!(sessions.iter().any(|s| s.token == TokenHash::of(&tq)));
        let held = moderation::accounts_but(&t, &[]);
        let mut accounts = held.clone();
        accounts[0].record.hash = crate::accounts::hash_password(
            &pw("set by the operator"),
            &[2; 16],
            crate::accounts::HashCost::TEST,
        )
        .unwrap();
        let start = |known: &[LoadedAccount]| {
            let mut t2 = T::with(cfg.clone());
            t2.hub.restore(
                Loaded {
                    accounts: accounts.clone(),
                    sessions: sessions.clone(),
                    known: known.iter().map(|la| la.record.clone()).collect(),
                    ..Default::default()
                },
                t2.now,
            );
            t2.pump();
            t2
        };
        let mut t2 = start(&held);
        let (_, got) = t2.resume("y", tq.clone(), vec![]);
        assert_eq!(error_kinds(&got), vec![ErrorKind::ResumeFailed], "{got:?}");
        let taken_up = Write::Account(accounts[0].record.clone());
        assert!(
            t2.batches.iter().any(|b| b.writes.contains(&taken_up)),
            "taken up with the new hash"
        );
        // Held as it is: nothing ends.
        let mut t3 = start(&accounts);
        let (_, got) = t3.resume("y", tq, vec![]);
        assert!(resumed(&got), "{got:?}");
    }

    /// A registrant whose connection drops before its registration is stored: the store keeps
    /// it (as a kill at that moment would), and the guest waiting for its resume gives the
    /// name up, as to an owner signing in: a guest never holds a registered name. Its client
    /// checks the lost registration with a sign-in at its next welcome, which makes it the
    /// account's. Until the forty-third session the guest kept the name, and the next client
    /// signing in to the account evicted it (found by `store_properties`).
    #[test]
    fn a_registrant_cut_before_its_registration_is_stored_gives_the_name_up() {
        use crate::persist::Write;
        let mut t = T::with(Config {
            durable: true,
            ..config()
        });
        let (a, _, token) = t.bin_from(LOCAL, "alice");
        let b = t.bin("bob");
        t.join(a, "#r");
        t.join(b, "#r");
        t.recv(a);
        t.recv(b);
        t.auto_commit = false;
        t.send(
            a,
            &ClientMsg::Register {
                password: pw(PW),
                remember: false,
            },
        );
        let batch = t
            .batches
            .iter()
            .find(|b| b.writes.iter().any(|w| matches!(w, Write::Account(_))))
            .expect("the registration is written")
            .id;
        t.hub.handle_close(a, t.now);
        t.pump();
        assert_eq!(t.hub.detached(), 1, "waiting for its resume");
        t.hub.handle_durable(batch, t.now);
        t.auto_commit = true;
        t.pump();
        assert_eq!(t.hub.account_count(), 1, "the registration is kept");
        assert!(
            !t.hub.is_member(&nick("alice"), &room("#r")),
            "no guest called alice is left in #r"
        );
        let got = t.recv(b);
        let renamed = events(&got).into_iter().find_map(|e| match &e.kind {
            EventKind::Nick { new } if e.from.as_str() == "alice" => Some(new.clone()),
            _ => None,
        });
        let guest = renamed.unwrap_or_else(|| panic!("bob is not told: {got:?}"));
        assert_ne!(guest.folded(), "alice");
        // The resume finds the guest; its sign-in with the registration's password is alice.
        let (a2, got) = t.resume("alice", token, vec![(room("#r"), Seq(0))]);
        assert!(
            matches!(&got[0], ServerMsg::Welcome { nick, resumed: true, .. } if *nick == guest),
            "{got:?}"
        );
        let got = sign_in(&mut t, a2, "alice", Proof::Password(pw(PW)), false);
        assert!(signed_in(&got), "{got:?}");
        assert_eq!(t.hub.nick(a2).map(Nick::as_str), Some("alice"));
    }

    /// The operator adds `alice` with the tool while the server runs; before the SIGHUP that
    /// would load it, a guest named alice registers. The store keeps the operator's account
    /// and says it did not apply the registration (`handle_stale_accounts`, before the durable
    /// report): the registrant is told the name is taken, and is not signed in. Until the
    /// forty-second session it was told it was registered, and signed in to an account that
    /// existed nowhere but in the running server. A registration the store applies signs in
    /// once it is stored, not before.
    #[test]
    fn a_registration_the_store_refuses_for_the_operators_account_is_told_taken() {
        use crate::persist::Write;
        let mut t = T::with(Config {
            durable: true,
            ..config()
        });
        let a = t.bin("alice");
        t.recv(a);
        t.auto_commit = false;
        t.send(
            a,
            &ClientMsg::Register {
                password: pw(PW),
                remember: true,
            },
        );
        let batch = t
            .batches
            .iter()
            .find(|b| b.writes.iter().any(|w| matches!(w, Write::Account(_))))
            .expect("the registration is written")
            .id;
        t.hub.handle_stale_accounts(&[nick("Alice")], t.now);
        t.hub.handle_durable(batch, t.now);
        t.auto_commit = true;
        t.pump();
        let got = t.recv(a);
        assert!(!signed_in(&got), "not signed in: {got:?}");
        assert_eq!(error_kinds(&got), vec![ErrorKind::NickTaken], "{got:?}");
        assert!(error_detail(&got).contains("operator"), "{got:?}");
        assert_eq!(t.hub.account_count(), 0, "no account of the hub's own");
        assert!(
            !t.batches
                .iter()
                .flat_map(|b| b.writes.iter())
                .any(|w| matches!(w, Write::AddKey { .. })),
            "nothing written of the account that was not made"
        );
        // The next registration the store applies signs in once stored.
        let b = t.bin("bob");
        t.recv(b);
        t.auto_commit = false;
        t.send(
            b,
            &ClientMsg::Register {
                password: pw(PW),
                remember: false,
            },
        );
        assert!(!signed_in(&t.recv(b)), "not before it is stored");
        let batch = t.batches.last().expect("bob's registration").id;
        t.hub.handle_durable(batch, t.now);
        t.auto_commit = true;
        t.pump();
        assert!(signed_in(&t.recv(b)));
        assert_eq!(t.hub.account_count(), 1);
    }

    /// The operator's `account passwd alice` and SIGHUP while alice's own `/password` is on
    /// its way to the store: the reload leaves the account as the hub has it (the store's copy
    /// may be older than the hub's), the store refuses the hub's write (the operator's word
    /// stands) and says so, and the hub then wants its accounts read again: the operator's
    /// password is taken up without a second SIGHUP. Until the forty-second session the log
    /// asked for another SIGHUP, and until then the server went on with alice's password.
    #[test]
    fn a_reload_during_the_accounts_own_write_takes_the_operators_change_up_once_it_is_done() {
        use crate::persist::Write;
        let mut t = T::with(Config {
            durable: true,
            ..config()
        });
        let (a, _) = registered(&mut t, "alice");
        let mut operators = moderation::accounts_but(&t, &[]);
        operators[0].record.hash = crate::accounts::hash_password(
            &pw("set by the operator"),
            &[2; 16],
            crate::accounts::HashCost::TEST,
        )
        .unwrap();
        operators[0].keys.clear();
        t.recv(a);
        t.auto_commit = false;
        t.send(
            a,
            &ClientMsg::ChangePassword {
                old: pw(PW),
                new: pw("battery staple"),
            },
        );
        let change = t
            .batches
            .last()
            .filter(|b| b.writes.iter().any(|w| matches!(w, Write::Account(_))))
            .expect("the new hash is written")
            .id;
        t.hub.load_accounts(operators.clone());
        t.pump();
        assert!(!t.hub.poll_accounts_reload(), "nothing to read again yet");
        t.hub.handle_stale_accounts(&[nick("alice")], t.now);
        t.hub.handle_durable(change, t.now);
        t.pump();
        // Its answer, and then the truth.
        let got = t.recv(a);
        let at = |f: &dyn Fn(&ServerMsg) -> bool| got.iter().position(f);
        let changed = at(&|m| matches!(m, ServerMsg::PasswordChanged))
            .unwrap_or_else(|| panic!("not answered: {got:?}"));
        let refused = at(
            &|m| matches!(m, ServerMsg::Error { detail, .. } if detail.contains("was not kept")),
        )
        .unwrap_or_else(|| panic!("not told the change was not kept: {got:?}"));
        assert!(changed < refused, "{got:?}");
        assert!(t.hub.poll_accounts_reload(), "the accounts are read again");
        assert!(!t.hub.poll_accounts_reload(), "once");
        t.auto_commit = true;
        t.pump();
        // What the shell reads then: the operator's password.
        t.hub.load_accounts(operators);
        t.pump();
        let b = t.bin("alice2");
        let got = sign_in(
            &mut t,
            b,
            "alice",
            Proof::Password(pw("battery staple")),
            false,
        );
        assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed], "{got:?}");
        let c = t.bin("alice3");
        let got = sign_in(
            &mut t,
            c,
            "alice",
            Proof::Password(pw("set by the operator")),
            false,
        );
        assert!(signed_in(&got), "the operator's password signs in: {got:?}");
    }

    /// A reload of the accounts reads the store, which does not hold a registration whose
    /// batch failed and waits for its retry (a full disk for a while): the account is the
    /// hub's newer state, not one the operator removed. Its owner stays signed in, and the
    /// retry writes it. Until the fortieth session the reload forgot it, and signed its owner
    /// out of an account its client had been told was made.
    /// The disk is full when a guest registers: the batch holding the registration fails.
    /// The registrant is told at once that it was not registered, in words that say why, as a
    /// message's sender is (issue 16), and what it sent meanwhile goes on: its line is
    /// refused, not held. Until this review (forty-second session) it waited unanswered, and
    /// its chat waited with it, for as long as the disk stayed full.
    #[test]
    fn a_registration_whose_batch_fails_is_refused_at_once_and_its_chat_goes_on() {
        use crate::persist::Write;
        let mut t = T::with(Config {
            durable: true,
            ..config()
        });
        let a = t.bin("alice");
        let b = t.bin("bob");
        t.join(a, "#d");
        t.join(b, "#d");
        t.recv(a);
        t.recv(b);
        t.auto_commit = false;
        t.send(
            a,
            &ClientMsg::Register {
                password: pw(PW),
                remember: false,
            },
        );
        t.say(a, "#d", 1, "while registering");
        let failed = t
            .batches
            .iter()
            .find(|b| b.writes.iter().any(|w| matches!(w, Write::Account(_))))
            .expect("the registration is written")
            .id;
        // The disk stays full: every batch fails.
        let mut done = failed;
        t.hub
            .handle_store_failed(failed, "the server's disk is full", t.now);
        t.pump();
        for _ in 0..4 {
            let later: Vec<crate::persist::BatchId> = t
                .batches
                .iter()
                .map(|b| b.id)
                .filter(|id| *id > done)
                .collect();
            for id in later {
                t.hub
                    .handle_store_failed(id, "the server's disk is full", t.now);
                done = id;
            }
            t.advance(2_000);
        }
        let got = t.recv(a);
        assert!(!signed_in(&got), "{got:?}");
        let e = errors(&got);
        assert!(
            e.iter().any(|(k, re, d)| *k == ErrorKind::Unavailable
                && *re == Re::Nick(nick("alice"))
                && d.contains("disk is full")
                && d.contains("not registered")),
            "the registration is refused with its reason: {got:?}"
        );
        assert!(
            e.iter()
                .any(|(k, re, _)| *k == ErrorKind::NotStored && *re == Re::Msg(MsgId(1))),
            "its line is refused too, not held: {got:?}"
        );
        assert_eq!(t.hub.account_count(), 0, "no account was made");
        // What is written again is its drop (the store holds nothing of it), not the account.
        let retried: Vec<&Write> = t
            .batches
            .iter()
            .filter(|b| b.id > failed)
            .flat_map(|b| b.writes.iter())
            .collect();
        assert!(
            retried
                .iter()
                .any(|w| matches!(w, Write::DropAccount(n) if n.folded() == "alice")),
            "{retried:?}"
        );
        assert!(
            !retried.iter().any(|w| matches!(w, Write::Account(_))),
            "{retried:?}"
        );
        // Once the disk has room again, the name can be registered.
        t.auto_commit = true;
        t.pump();
        t.advance(2_000);
        t.recv(a);
        t.send(
            a,
            &ClientMsg::Register {
                password: pw(PW),
                remember: false,
            },
        );
        t.pump();
        assert!(signed_in(&t.recv(a)));
        assert_eq!(t.hub.account_count(), 1);
    }

    /// A `/password` whose batch is not stored yet when the operator's SIGHUP reads the
    /// accounts: the store still has the old hash, which is older than the hub's, not the
    /// operator's `account passwd`. The new password stays the one that signs in, and the
    /// owner's sessions do not end. Until the fortieth session the reload put the old hash
    /// back and ended every session of the account.
    #[test]
    fn a_password_change_not_yet_stored_is_not_undone_by_a_reload() {
        use crate::persist::Write;
        let mut t = T::with(Config {
            durable: true,
            ..config()
        });
        let (a, _) = registered(&mut t, "alice");
        let before = moderation::accounts_but(&t, &[]);
        t.recv(a);
        t.auto_commit = false;
        t.send(
            a,
            &ClientMsg::ChangePassword {
                old: pw(PW),
                new: pw("battery staple"),
            },
        );
        let change = t
            .batches
            .last()
            .filter(|b| b.writes.iter().any(|w| matches!(w, Write::Account(_))))
            .expect("the new hash is written")
            .id;
        t.hub.load_accounts(before.clone());
        t.pump();
        let got = t.recv(a);
        assert!(
            !error_kinds(&got).contains(&ErrorKind::NotSignedIn) && !t.closed(a),
            "alice's session goes on: {got:?}"
        );
        t.hub.handle_durable(change, t.now);
        t.auto_commit = true;
        t.pump();
        let b = t.bin("alice2");
        let got = sign_in(
            &mut t,
            b,
            "alice",
            Proof::Password(pw("battery staple")),
            false,
        );
        assert!(
            !error_kinds(&got).contains(&ErrorKind::SignInFailed),
            "the new password signs in: {got:?}"
        );
    }

    /// An account the operator added (`natter-server account add bob`, then SIGHUP; or alice
    /// removed and added again, whose old user is a guest now) whose name a guest holds: the
    /// guest is renamed to a guest nick, as when an owner signs in. A guest never keeps a
    /// registered nick: else, besides passing for the account, its session restored after a
    /// restart is made the account's user (`restored_account_user`), signed in without a
    /// password.
    #[test]
    fn a_guest_holding_the_name_of_an_account_the_operator_added_is_renamed_at_the_reload() {
        let mut t = T::new();
        let b = t.bin("bob");
        let c = t.bin("carol");
        t.join(b, "#x");
        t.join(c, "#x");
        t.recv(b);
        t.recv(c);
        let hash = crate::accounts::hash_password(
            &pw("the operator's"),
            &[3; 16],
            crate::accounts::HashCost::TEST,
        )
        .unwrap();
        t.hub.load_accounts(vec![crate::persist::LoadedAccount {
            record: crate::persist::AccountRecord {
                name: nick("bob"),
                hash,
                created: t.now,
            },
            rooms: Vec::new(),
            read: Vec::new(),
            keys: Vec::new(),
            held: Vec::new(),
        }]);
        t.pump();
        assert_eq!(t.hub.account_count(), 1);
        let got = t.recv(b);
        let renamed = got.iter().find_map(|m| match m {
            ServerMsg::YourNick { nick } => Some(nick.clone()),
            _ => None,
        });
        assert!(
            renamed.is_some_and(|n| n.folded() != "bob"),
            "the guest is renamed: {got:?}"
        );
        assert!(
            error_kinds(&got).contains(&ErrorKind::NickTaken),
            "and told why: {got:?}"
        );
        assert!(!t.hub.is_member(&nick("bob"), &room("#x")));
        // bob's owner signs in with nobody to rename.
        let o = t.bin("o");
        let got = sign_in(
            &mut t,
            o,
            "bob",
            Proof::Password(pw("the operator's")),
            false,
        );
        assert!(signed_in(&got), "{got:?}");
    }

    #[test]
    fn failures_are_throttled_with_growing_waits_and_a_success_clears_them() {
        let mut t = T::new();
        let (a, _) = registered(&mut t, "alice");
        t.send(a, &ClientMsg::Quit { reason: None });
        let c = t.bin("mallory");
        for _ in 0..3 {
            let got = sign_in(
                &mut t,
                c,
                "alice",
                Proof::Password(pw("not it at all")),
                false,
            );
            assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed]);
        }
        // The fourth failure earns a wait of a second; trying inside it is refused unchecked.
        sign_in(
            &mut t,
            c,
            "alice",
            Proof::Password(pw("not it at all")),
            false,
        );
        let got = sign_in(&mut t, c, "alice", Proof::Password(pw(PW)), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Throttled], "{got:?}");
        assert!(error_detail(&got).contains("try again in 1 s"), "{got:?}");
        t.advance(1_000);
        sign_in(
            &mut t,
            c,
            "alice",
            Proof::Password(pw("not it at all")),
            false,
        );
        let got = sign_in(&mut t, c, "alice", Proof::Password(pw(PW)), false);
        assert!(
            error_detail(&got).contains("try again in 2 s"),
            "doubled: {got:?}"
        );
        t.advance(2_000);
        let got = sign_in(&mut t, c, "alice", Proof::Password(pw(PW)), false);
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::SignedIn { .. })),
            "{got:?}"
        );
        // Cleared: a later failure starts counting again.
        let d = t.bin("dave");
        let got = sign_in(
            &mut t,
            d,
            "alice",
            Proof::Password(pw("not it at all")),
            false,
        );
        assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed]);
    }

    #[test]
    fn failures_from_one_address_are_throttled_across_accounts() {
        let mut t = T::with(Config {
            flood_burst: 100,
            ..config()
        });
        let (c, _, _) = t.bin_from(ip("203.0.113.9"), "mallory");
        for i in 0..10 {
            let got = sign_in(
                &mut t,
                c,
                &format!("user{i}"),
                Proof::Password(pw(PW)),
                false,
            );
            assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed]);
        }
        sign_in(&mut t, c, "user10", Proof::Password(pw(PW)), false);
        let got = sign_in(&mut t, c, "user11", Proof::Password(pw(PW)), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Throttled], "{got:?}");
        assert!(error_detail(&got).contains("address"), "{got:?}");
    }

    /// Someone guessing at alice's password keeps her account throttled with one wrong try per
    /// wait. Her remembered devices still get in: a device key is 32 random bytes nobody
    /// guesses (until the thirty-first session a throttled account refused its keys too, so a
    /// guesser anywhere kept its owner's pages out for good). Such a sign-in gives the guesser
    /// no fresh tries, and a wrong key meanwhile is refused as throttled.
    #[test]
    fn a_guesser_keeps_no_remembered_device_out_and_gains_no_tries_from_it() {
        let mut t = T::new();
        let (a, key) = registered(&mut t, "alice");
        t.send(a, &ClientMsg::Quit { reason: None });
        let (m, _, _) = t.bin_from(ip("203.0.113.9"), "mallory");
        for _ in 0..4 {
            sign_in(&mut t, m, "alice", Proof::Password(pw("a guess")), false);
        }
        let got = sign_in(&mut t, m, "alice", Proof::Password(pw(PW)), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Throttled], "{got:?}");
        let (w, _, _) = t.bin_from(ip("198.51.100.7"), "w");
        let wrong = DeviceKey([7; 32]);
        let got = sign_in(&mut t, w, "alice", Proof::Key(wrong), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Throttled], "{got:?}");
        let got = sign_in(&mut t, w, "alice", Proof::Key(key), false);
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::SignedIn { .. })),
            "the owner's remembered device gets in: {got:?}"
        );
        let got = sign_in(&mut t, m, "alice", Proof::Password(pw(PW)), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Throttled], "{got:?}");
    }

    /// An address's limit holds whoever has an account of their own: signing in to it clears
    /// the address's failures only when they were all that account's (its owner mistyping).
    /// Until the thirty-first session any success cleared them: ten guesses at others'
    /// passwords, a sign-in to one's own account, ten more, without end.
    #[test]
    fn a_sign_in_to_ones_own_account_does_not_clear_guesses_at_others() {
        let mut t = T::with(Config {
            flood_burst: 100,
            ..config()
        });
        let mallory = ip("203.0.113.9");
        let (m, _, _) = t.bin_from(mallory, "mallory");
        t.send(
            m,
            &ClientMsg::Register {
                password: pw(PW),
                remember: false,
            },
        );
        assert!(
            t.recv(m)
                .iter()
                .any(|x| matches!(x, ServerMsg::SignedIn { .. }))
        );
        let (g, _, _) = t.bin_from(mallory, "g");
        for i in 0..10 {
            let got = sign_in(
                &mut t,
                g,
                &format!("user{i}"),
                Proof::Password(pw(PW)),
                false,
            );
            assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed]);
        }
        let (e, _, _) = t.bin_from(mallory, "e");
        let got = sign_in(&mut t, e, "mallory", Proof::Password(pw(PW)), false);
        assert!(
            got.iter().any(|x| matches!(x, ServerMsg::SignedIn { .. })),
            "{got:?}"
        );
        sign_in(&mut t, g, "user10", Proof::Password(pw(PW)), false);
        let got = sign_in(&mut t, g, "user11", Proof::Password(pw(PW)), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Throttled], "{got:?}");
        assert!(error_detail(&got).contains("address"), "{got:?}");

        // The owner who mistyped: its sign-in clears its address's count.
        let home = ip("198.51.100.7");
        let (b, _, _) = t.bin_from(home, "b");
        for _ in 0..3 {
            let got = sign_in(
                &mut t,
                b,
                "mallory",
                Proof::Password(pw("typo typo")),
                false,
            );
            assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed]);
        }
        let got = sign_in(&mut t, b, "mallory", Proof::Password(pw(PW)), false);
        assert!(
            got.iter().any(|x| matches!(x, ServerMsg::SignedIn { .. })),
            "{got:?}"
        );
        let (h, _, _) = t.bin_from(home, "h");
        for i in 0..10 {
            let got = sign_in(
                &mut t,
                h,
                &format!("other{i}"),
                Proof::Password(pw(PW)),
                false,
            );
            assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed], "{i}");
        }
    }

    /// A lab behind one address: alice signed in from there before; ten neighbours mistype
    /// (or one guesses) and the address is throttled. Alice still signs in at once, held by her
    /// own account's throttle only; bob, never seen there, waits as everyone did before, but
    /// his remembered device gets in. Until the thirty-fourth session the whole lab waited up
    /// to 15 minutes.
    #[test]
    fn a_lab_behind_one_address_is_not_locked_out_by_its_neighbours_typos() {
        let mut t = T::with(Config {
            flood_burst: 100,
            ..config()
        });
        let lab = ip("203.0.113.9");
        let (a, _) = registered(&mut t, "alice");
        t.send(a, &ClientMsg::Quit { reason: None });
        let (b, bobs_key) = registered(&mut t, "bob");
        t.send(b, &ClientMsg::Quit { reason: None });
        let (c, _, _) = t.bin_from(lab, "c");
        let got = sign_in(&mut t, c, "alice", Proof::Password(pw(PW)), false);
        assert!(signed_in(&got), "{got:?}");
        t.send(c, &ClientMsg::Quit { reason: None });
        let (n, _, _) = t.bin_from(lab, "students");
        for i in 0..11 {
            let got = sign_in(
                &mut t,
                n,
                &format!("student{i}"),
                Proof::Password(pw("typo typo")),
                false,
            );
            assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed], "{i}");
        }
        let (x, _, _) = t.bin_from(lab, "x");
        let got = sign_in(&mut t, x, "bob", Proof::Password(pw(PW)), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Throttled], "{got:?}");
        assert!(error_detail(&got).contains("address"), "{got:?}");
        // Alice's typo is counted against her account only, and she is in at the next try.
        let (y, _, _) = t.bin_from(lab, "y");
        let got = sign_in(&mut t, y, "alice", Proof::Password(pw("typo")), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed], "{got:?}");
        let got = sign_in(&mut t, y, "alice", Proof::Password(pw(PW)), false);
        assert!(signed_in(&got), "at once: {got:?}");
        // The address still waits for everyone else.
        let got = sign_in(&mut t, x, "bob", Proof::Password(pw(PW)), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Throttled], "{got:?}");
        // A device key is no guess: bob's remembered device gets in through the address's
        // waits, and then bob's password is known there too.
        let got = sign_in(&mut t, x, "bob", Proof::Key(bobs_key), false);
        assert!(signed_in(&got), "{got:?}");
        t.send(x, &ClientMsg::Quit { reason: None });
        let (z, _, _) = t.bin_from(lab, "z");
        let got = sign_in(&mut t, z, "bob", Proof::Password(pw(PW)), false);
        assert!(signed_in(&got), "{got:?}");
    }

    /// A guesser behind an address where others signed in stays bounded: guesses at accounts
    /// not known there are held by the address's throttle as before, and guesses at a known
    /// account by that account's own throttle (3 free, then doubling waits), as a guesser's
    /// anywhere else are; they do not count against the address, nor do they free it.
    #[test]
    fn a_guesser_behind_a_known_address_is_held_per_account_and_per_address() {
        let mut t = T::with(Config {
            flood_burst: 100,
            ..config()
        });
        let lab = ip("203.0.113.9");
        let (a, _) = registered(&mut t, "alice");
        t.send(a, &ClientMsg::Quit { reason: None });
        let (c, _, _) = t.bin_from(lab, "c");
        assert!(signed_in(&sign_in(
            &mut t,
            c,
            "alice",
            Proof::Password(pw(PW)),
            false
        )));
        t.send(c, &ClientMsg::Quit { reason: None });
        let (g, _, _) = t.bin_from(lab, "g");
        // At the known account: three free, the fourth starts the account's waits.
        for _ in 0..4 {
            let got = sign_in(&mut t, g, "alice", Proof::Password(pw("guess")), false);
            assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed], "{got:?}");
        }
        let got = sign_in(&mut t, g, "alice", Proof::Password(pw("guess")), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Throttled], "{got:?}");
        assert!(error_detail(&got).contains("that account"), "{got:?}");
        assert!(error_detail(&got).contains("try again in 1 s"), "{got:?}");
        t.advance(1_000);
        sign_in(&mut t, g, "alice", Proof::Password(pw("guess")), false);
        let got = sign_in(&mut t, g, "alice", Proof::Password(pw(PW)), false);
        assert!(
            error_detail(&got).contains("try again in 2 s"),
            "doubled, for alice's password too: {got:?}"
        );
        // Those five did not count against the address: ten guesses at others are free, the
        // eleventh starts the address's waits, which hold every account not known there.
        for i in 0..11 {
            let got = sign_in(
                &mut t,
                g,
                &format!("user{i}"),
                Proof::Password(pw(PW)),
                false,
            );
            assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed], "{i}");
        }
        let got = sign_in(&mut t, g, "user11", Proof::Password(pw(PW)), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Throttled], "{got:?}");
        assert!(error_detail(&got).contains("address"), "{got:?}");
        // Alice's own sign-in there once her wait is over clears her count, not the address's.
        t.advance(2_000);
        let got = sign_in(&mut t, g, "alice", Proof::Password(pw(PW)), false);
        assert!(signed_in(&got), "{got:?}");
        let (h, _, _) = t.bin_from(lab, "h");
        let got = sign_in(&mut t, h, "user12", Proof::Password(pw(PW)), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed], "{got:?}");
        let got = sign_in(&mut t, h, "user13", Proof::Password(pw(PW)), false);
        assert!(
            error_detail(&got).contains("try again in 2 s"),
            "the address's count goes on: {got:?}"
        );
    }

    /// An address stays known for a while only, and an account removed forgets its addresses
    /// (whoever registers the name next proved nothing there).
    #[test]
    fn a_known_address_is_forgotten_after_a_while() {
        let mut t = T::with(Config {
            flood_burst: 100,
            ..config()
        });
        let lab = ip("203.0.113.9");
        let (a, _) = registered(&mut t, "alice");
        t.send(a, &ClientMsg::Quit { reason: None });
        let (c, _, _) = t.bin_from(lab, "c");
        assert!(signed_in(&sign_in(
            &mut t,
            c,
            "alice",
            Proof::Password(pw(PW)),
            false
        )));
        t.send(c, &ClientMsg::Quit { reason: None });
        t.advance(31 * 24 * 60 * 60 * 1000);
        let (g, _, _) = t.bin_from(lab, "g");
        for i in 0..11 {
            sign_in(
                &mut t,
                g,
                &format!("user{i}"),
                Proof::Password(pw(PW)),
                false,
            );
        }
        let got = sign_in(&mut t, g, "alice", Proof::Password(pw(PW)), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Throttled], "{got:?}");
        assert!(error_detail(&got).contains("address"), "{got:?}");
    }

    /// A password changed (its owner's answer to a stolen one) makes the addresses the old one
    /// was proved from strangers again, all but the changer's: else whoever signed in with the
    /// stolen password stayed spared its address's waits at the account for 30 days more, its
    /// guesses at the new one logged `known=true`, which the fail2ban filter leaves out.
    #[test]
    fn a_password_change_forgets_the_addresses_the_old_one_was_proved_from() {
        let mut t = T::with(Config {
            flood_burst: 100,
            ..config()
        });
        let home = ip("198.51.100.7");
        let den = ip("203.0.113.66");
        let (a, _) = registered(&mut t, "alice");
        t.send(a, &ClientMsg::Quit { reason: None });
        // The intruder signs in with the stolen password.
        let (i, _, _) = t.bin_from(den, "i");
        let got = sign_in(&mut t, i, "alice", Proof::Password(pw(PW)), false);
        assert!(signed_in(&got), "{got:?}");
        t.send(i, &ClientMsg::Quit { reason: None });
        // The owner changes it, from home.
        let (o, _, _) = t.bin_from(home, "o");
        let got = sign_in(&mut t, o, "alice", Proof::Password(pw(PW)), false);
        assert!(signed_in(&got), "{got:?}");
        t.send(
            o,
            &ClientMsg::ChangePassword {
                old: pw(PW),
                new: pw("battery staple"),
            },
        );
        let got = t.recv(o);
        assert!(got.contains(&ServerMsg::PasswordChanged), "{got:?}");
        // Both addresses in their waits (guesses at names known at neither).
        for (k, peer) in [den, home].into_iter().enumerate() {
            let (g, _, _) = t.bin_from(peer, &format!("g{k}"));
            for j in 0..11 {
                let name = format!("user{j}");
                sign_in(&mut t, g, &name, Proof::Password(pw(PW)), false);
            }
            t.send(g, &ClientMsg::Quit { reason: None });
        }
        // The intruder's den is held by its address's waits again.
        let (i, _, _) = t.bin_from(den, "i2");
        let got = sign_in(&mut t, i, "alice", Proof::Password(pw("guess")), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Throttled], "{got:?}");
        assert!(error_detail(&got).contains("address"), "{got:?}");
        // Home, where the change was made, is still known: the owner gets in there.
        let (h, _, _) = t.bin_from(home, "h");
        let got = sign_in(
            &mut t,
            h,
            "alice",
            Proof::Password(pw("battery staple")),
            false,
        );
        assert!(signed_in(&got), "{got:?}");
    }

    /// The operator's `natter-server account passwd`, read at the reload, makes every address
    /// the old password was proved from a stranger again: nobody proved the new one anywhere.
    #[test]
    fn a_password_the_operator_sets_forgets_every_known_address() {
        let mut t = T::with(Config {
            flood_burst: 100,
            ..config()
        });
        let den = ip("203.0.113.66");
        let (a, _) = registered(&mut t, "alice");
        t.send(a, &ClientMsg::Quit { reason: None });
        let (i, _, _) = t.bin_from(den, "i");
        let got = sign_in(&mut t, i, "alice", Proof::Password(pw(PW)), false);
        assert!(signed_in(&got), "{got:?}");
        t.send(i, &ClientMsg::Quit { reason: None });
        let hash = crate::accounts::hash_password(
            &pw("a new password"),
            &[2; 16],
            crate::accounts::HashCost::TEST,
        )
        .unwrap();
        t.hub.load_accounts(vec![crate::persist::LoadedAccount {
            record: crate::persist::AccountRecord {
                name: nick("alice"),
                hash,
                created: Millis(0),
            },
            rooms: Vec::new(),
            read: Vec::new(),
            keys: Vec::new(),
            held: Vec::new(),
        }]);
        let (g, _, _) = t.bin_from(den, "g");
        for j in 0..11 {
            let name = format!("user{j}");
            sign_in(&mut t, g, &name, Proof::Password(pw(PW)), false);
        }
        let got = sign_in(&mut t, g, "alice", Proof::Password(pw("guess")), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Throttled], "{got:?}");
        assert!(error_detail(&got).contains("address"), "{got:?}");
    }

    /// An account the operator removes forgets its known addresses: whoever registers the
    /// name next proved nothing anywhere, and the address the old owner used waits for it as
    /// for any account (SECURITY.md's claim, which no test held).
    #[test]
    fn a_removed_account_forgets_its_known_addresses() {
        let mut t = T::with(Config {
            flood_burst: 100,
            ..config()
        });
        let lab = ip("203.0.113.9");
        let (a, _) = registered(&mut t, "alice");
        t.send(a, &ClientMsg::Quit { reason: None });
        let (c, _, _) = t.bin_from(lab, "c");
        let got = sign_in(&mut t, c, "alice", Proof::Password(pw(PW)), false);
        assert!(signed_in(&got), "{got:?}");
        t.send(c, &ClientMsg::Quit { reason: None });
        t.hub.load_accounts(Vec::new());
        let (b, _) = registered(&mut t, "alice");
        t.send(b, &ClientMsg::Quit { reason: None });
        let (g, _, _) = t.bin_from(lab, "g");
        for j in 0..11 {
            let name = format!("user{j}");
            sign_in(&mut t, g, &name, Proof::Password(pw(PW)), false);
        }
        let got = sign_in(&mut t, g, "alice", Proof::Password(pw(PW)), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Throttled], "{got:?}");
        assert!(error_detail(&got).contains("address"), "{got:?}");
    }

    /// Throttling tells nothing either: wrong passwords for an account that does not exist
    /// are throttled exactly like those for one that does (else the fifth try's answer said
    /// which names are accounts).
    #[test]
    fn an_unknown_account_is_throttled_like_a_real_one() {
        let mut t = T::new();
        let (a, _) = registered(&mut t, "alice");
        t.send(a, &ClientMsg::Quit { reason: None });
        let mut answers = Vec::new();
        for name in ["alice", "nobody"] {
            let c = t.bin("x");
            let kinds: Vec<Vec<ErrorKind>> = (0..6)
                .map(|_| {
                    let got = sign_in(
                        &mut t,
                        c,
                        name,
                        Proof::Password(pw("not the password")),
                        false,
                    );
                    error_kinds(&got)
                })
                .collect();
            answers.push(kinds);
        }
        let failed = vec![ErrorKind::SignInFailed];
        let throttled = vec![ErrorKind::Throttled];
        assert_eq!(
            answers[0],
            [&failed, &failed, &failed, &failed, &throttled, &throttled].map(Clone::clone)
        );
        assert_eq!(answers[0], answers[1]);
    }

    #[test]
    fn an_unknown_account_costs_a_real_check_and_reads_like_a_wrong_password() {
        let mut t = T::new();
        let (a, _) = registered(&mut t, "alice");
        t.send(a, &ClientMsg::Quit { reason: None });
        t.hold_work = true;
        let mut answers = Vec::new();
        for name in ["alice", "nobody"] {
            let c = t.bin("x");
            sign_in(
                &mut t,
                c,
                name,
                Proof::Password(pw("not the password")),
                false,
            );
            let w = t.work.pop().expect("a check is queued either way");
            let Work::Verify { hash, .. } = &w else {
                panic!("{w:?}")
            };
            assert!(
                hash.0.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
                "{}",
                hash.0
            );
            let done = w.run();
            t.hub.handle_work(done, t.now);
            t.pump();
            answers.push(t.recv(c));
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(error_kinds(&answers[0]), vec![ErrorKind::SignInFailed]);
    }

    #[test]
    fn one_request_at_a_time_and_a_bounded_work_queue() {
        let mut t = T::new();
        t.hold_work = true;
        let c = t.bin("x");
        sign_in(&mut t, c, "alice", Proof::Password(pw(PW)), false);
        // A second request waits behind the first, unanswered and unqueued for now.
        let got = sign_in(&mut t, c, "alice", Proof::Password(pw(PW)), false);
        assert!(got.is_empty(), "{got:?}");
        assert_eq!(t.work.len(), 1);
        for i in 0..crate::limits::MAX_WORK_QUEUED - 1 {
            let d = t.bin(&format!("u{i}"));
            sign_in(&mut t, d, "alice", Proof::Password(pw(PW)), false);
        }
        assert_eq!(t.work.len(), crate::limits::MAX_WORK_QUEUED);
        let e = t.bin("late");
        let got = sign_in(&mut t, e, "alice", Proof::Password(pw(PW)), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Unavailable]);
        assert_eq!(
            t.work.len(),
            crate::limits::MAX_WORK_QUEUED,
            "nothing more queued"
        );
        // A connection that left before its answer came gets nothing, and nothing breaks.
        t.hub.handle_close(c, t.now);
        let w = t.work.remove(0);
        t.hub.handle_work(w.run(), t.now);
        t.pump();
    }

    #[test]
    fn what_is_sent_while_a_sign_in_is_checked_waits_for_the_answer() {
        let mut t = T::new();
        let (a, _) = registered(&mut t, "alice");
        t.send(a, &ClientMsg::Quit { reason: None });
        let w = t.bin("watcher");
        t.join(w, "#lab");
        t.recv(w);
        // Like `natter --login`: welcomed as a guest, the sign-in, then the rooms and a line
        // typed at once, all before the password is checked.
        t.hold_work = true;
        let c = t.bin("alice_");
        t.send(
            c,
            &ClientMsg::SignIn {
                account: nick("alice"),
                proof: Proof::Password(pw(PW)),
                remember: false,
            },
        );
        t.join(c, "#lab");
        t.say(c, "#lab", 1, "hello from alice");
        assert!(t.recv(w).is_empty(), "nothing happens before the answer");
        assert_eq!(t.work.len(), 1);
        let work = t.work.remove(0);
        t.hold_work = false;
        t.hub.handle_work(work.run(), t.now);
        t.pump();
        let got = t.recv(c);
        assert!(
            got.iter().any(
                |m| matches!(m, ServerMsg::SignedIn { account, .. } if account.as_str() == "alice")
            ),
            "{got:?}"
        );
        let seen = t.recv(w);
        let evs = events(&seen);
        assert!(
            evs.iter().all(|e| e.from.as_str() == "alice"),
            "only alice, never the guest: {evs:?}"
        );
        assert!(
            evs.iter().any(|e| matches!(e.kind, EventKind::Join)),
            "{evs:?}"
        );
        assert_eq!(says(&seen), vec!["hello from alice"]);
    }

    #[test]
    fn registration_rules() {
        let mut t = T::new();
        let g = t.bin("x");
        let guest = t.hub.nick(g).unwrap().clone();
        assert!(guest.as_str() == "x");
        t.send(
            g,
            &ClientMsg::Nick {
                nick: nick("guest4321"),
            },
        );
        t.recv(g);
        t.send(
            g,
            &ClientMsg::Register {
                password: pw(PW),
                remember: false,
            },
        );
        let got = t.recv(g);
        assert!(error_detail(&got).contains("guest nicks"), "{got:?}");
        t.send(g, &ClientMsg::Nick { nick: nick("zed") });
        t.recv(g);
        for (p, words) in [("short", "at least 8"), (&"x".repeat(300)[..], "at most")] {
            t.send(
                g,
                &ClientMsg::Register {
                    password: pw(p),
                    remember: false,
                },
            );
            let got = t.recv(g);
            assert_eq!(error_kinds(&got), vec![ErrorKind::Invalid]);
            assert!(error_detail(&got).contains(words), "{got:?}");
        }
        // Closed registration.
        let mut closed = T::with(Config {
            accounts: AccountsConfig {
                registration: Registration::Closed,
                ..config().accounts
            },
            ..config()
        });
        let c = closed.bin("zed");
        closed.send(
            c,
            &ClientMsg::Register {
                password: pw(PW),
                remember: false,
            },
        );
        assert_eq!(
            error_kinds(&closed.recv(c)),
            vec![ErrorKind::RegistrationClosed]
        );
        // A registration flood from one address.
        for i in 0..3 {
            let (c, _, _) = t.bin_from(ip("198.51.100.7"), &format!("reg{i}"));
            t.send(
                c,
                &ClientMsg::Register {
                    password: pw(PW),
                    remember: false,
                },
            );
            assert!(
                t.recv(c)
                    .iter()
                    .any(|m| matches!(m, ServerMsg::SignedIn { .. }))
            );
        }
        let (c, _, _) = t.bin_from(ip("198.51.100.7"), "reg3");
        t.send(
            c,
            &ClientMsg::Register {
                password: pw(PW),
                remember: false,
            },
        );
        assert_eq!(error_kinds(&t.recv(c)), vec![ErrorKind::Throttled]);
        assert_eq!(t.hub.account_count(), 3);
    }

    #[test]
    fn read_markers_are_shared_by_an_accounts_connections_and_only_move_forward() {
        let mut t = T::new();
        let (a1, key) = registered(&mut t, "alice");
        t.join(a1, "#x");
        let b = t.bin("bob");
        t.join(b, "#x");
        t.say(b, "#x", 1, "one");
        t.say(b, "#x", 2, "two");
        let a2 = t.bin("phone");
        sign_in(&mut t, a2, "alice", Proof::Key(key), false);
        t.recv(a1);
        t.send(
            a2,
            &ClientMsg::Read {
                room: room("#x"),
                seq: Seq(3),
            },
        );
        let marker = |m: &ServerMsg| matches!(m, ServerMsg::ReadUpTo { room: r, seq } if r.as_str() == "#x" && *seq == Seq(3));
        assert!(t.recv(a1).iter().any(marker));
        assert!(t.recv(a2).iter().any(marker));
        t.send(
            a1,
            &ClientMsg::Read {
                room: room("#x"),
                seq: Seq(2),
            },
        );
        assert!(
            t.recv(a1).is_empty() && t.recv(a2).is_empty(),
            "backwards: nothing"
        );
        // Past the room's end it is clamped to it.
        t.send(
            a1,
            &ClientMsg::Read {
                room: room("#x"),
                seq: Seq(99),
            },
        );
        let latest = t.recv(a2);
        assert!(
            latest
                .iter()
                .any(|m| matches!(m, ServerMsg::ReadUpTo { seq, .. } if *seq == Seq(4))),
            "{latest:?}"
        );
        // A guest's marker is its own client's business.
        t.recv(b);
        t.send(
            b,
            &ClientMsg::Read {
                room: room("#x"),
                seq: Seq(1),
            },
        );
        assert!(t.recv(b).is_empty());
    }

    #[test]
    fn an_always_on_account_stays_in_its_rooms_and_catches_up_from_its_marker() {
        let mut t = T::new();
        let (a, key) = registered(&mut t, "alice");
        t.join(a, "#x");
        // bob types (a person: no keepalive to answer while the clock runs on).
        let (b, _) = t.txt();
        t.line(b, "/join #x");
        t.line(b, "before");
        t.recv(a);
        t.send(
            a,
            &ClientMsg::Read {
                room: room("#x"),
                seq: Seq(3),
            },
        );
        t.hub.handle_close(a, t.now);
        t.advance(t.hub.config().resume_grace.0 + 1);
        assert!(t.hub.is_member(&nick("alice"), &room("#x")), "still in #x");
        t.lines(b);
        t.line(b, "while you were away");
        let back = t.bin("whoever");
        let got = sign_in(&mut t, back, "alice", Proof::Key(key), false);
        assert_eq!(says(&got), vec!["while you were away"], "{got:?}");
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::ReadUpTo { seq, .. } if *seq == Seq(3))),
            "{got:?}"
        );
        // Nobody saw alice quit.
        assert!(
            !t.lines(b)
                .iter()
                .any(|l| l.contains("alice") && l.contains("quit"))
        );
    }

    #[test]
    fn after_a_sign_in_older_from_0_pages_back_from_the_marker() {
        // The sign-in showed what came after the account's marker; `Older { before: 0 }`
        // ("below the oldest this connection was shown") gave those again as `Past`.
        let mut t = T::new();
        let (a, key) = registered(&mut t, "alice");
        t.join(a, "#x");
        let (b, _) = t.txt();
        t.line(b, "/join #x");
        t.line(b, "before");
        t.recv(a);
        t.send(
            a,
            &ClientMsg::Read {
                room: room("#x"),
                seq: Seq(3),
            },
        );
        t.hub.handle_close(a, t.now);
        t.advance(t.hub.config().resume_grace.0 + 1);
        t.lines(b);
        t.line(b, "while you were away");
        let back = t.bin("whoever");
        let got = sign_in(&mut t, back, "alice", Proof::Key(key), false);
        assert_eq!(says(&got), vec!["while you were away"], "{got:?}");
        t.send(
            back,
            &ClientMsg::Older {
                room: room("#x"),
                before: Seq(0),
                limit: 10,
            },
        );
        let got = t.recv(back);
        let seqs: Vec<u64> = got
            .iter()
            .filter_map(|m| match m {
                ServerMsg::Past(ev) => Some(ev.seq.0),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, vec![1, 2, 3], "up to the marker: {got:?}");
    }

    /// Found by the third accounts pass: signing in gave every connection a resume token, nc's
    /// and IRC's too, which cannot resume. An nc account whose connection dropped then waited
    /// out the resume window (counted as detached, its session written to the store and brought
    /// back by a restart): shown present, and a direct message to it kept "for the resume"
    /// with no word to the sender that it was away.
    #[test]
    fn an_nc_account_whose_connection_drops_is_away_at_once() {
        let mut t = T::new();
        let (a, _) = t.txt();
        t.line(a, "/nick alice");
        t.line(a, "/register correct horse");
        assert!(
            t.lines(a)
                .iter()
                .any(|l| l == "-- you are signed in as alice"),
            "signed in"
        );
        let (b, _) = t.txt();
        t.lines(b);
        t.hub.handle_close(a, t.now);
        t.pump();
        assert_eq!(t.hub.detached(), 0, "nothing waits for a resume");
        assert!(
            t.hub.is_member(&nick("alice"), &room("#lobby")),
            "always-on"
        );
        assert_eq!(
            t.lines(b),
            [format!("-- alice is away: {}", super::ops::KEPT_WORDS)]
        );
        t.line(b, "/msg alice are you there");
        assert_eq!(
            t.lines(b),
            [
                "-> *alice* are you there".to_owned(),
                format!("-- alice is away: {}", super::ops::KEPT_WORDS)
            ]
        );
    }

    /// A direct message to an always-on account with nothing connected is kept for it and
    /// delivered, with the time it was sent, when the account next signs in (on any device),
    /// once. The sender gets its echo and is told the message waits (as IRC's `301`).
    #[test]
    fn a_direct_message_to_an_account_with_nothing_connected_waits_for_its_next_sign_in() {
        let mut t = T::new();
        let (a, key) = registered(&mut t, "alice");
        t.join(a, "#x");
        t.hub.handle_close(a, t.now);
        let (b, bn) = t.txt();
        t.advance(t.hub.config().resume_grace.0 + 1);
        assert!(t.hub.is_member(&nick("alice"), &room("#x")), "still in #x");
        t.lines(b);
        let sent_at = t.now;
        t.line(b, "/msg alice are you there");
        let l = t.lines(b);
        assert_eq!(
            l,
            [
                "-> *alice* are you there".to_owned(),
                format!("-- alice is away: {}", super::ops::KEPT_WORDS)
            ],
            "no error: its echo, and the sender learns it waits"
        );
        // A binary client's direct notice: its echo, and no away answer (nothing answers a
        // notice).
        let c = t.bin("carol");
        t.advance(1_000);
        t.send(
            c,
            &ClientMsg::NoticeTo {
                to: nick("alice"),
                id: MsgId(1),
                text: text("psst"),
            },
        );
        let got = t.recv(c);
        assert!(
            matches!(&got[..], [ServerMsg::DirectNotice(dm)] if dm.text == text("psst")),
            "{got:?}"
        );
        // alice's remembered device signs in: both, oldest first, with their times.
        let d = t.bin("phone");
        let got = sign_in(&mut t, d, "alice", Proof::Key(key), false);
        let kept: Vec<(bool, String, String, Millis)> = got
            .iter()
            .filter_map(|m| match m {
                ServerMsg::Direct(dm) => {
                    Some((false, dm.from.to_string(), dm.text.to_string(), dm.at))
                }
                ServerMsg::DirectNotice(dm) => {
                    Some((true, dm.from.to_string(), dm.text.to_string(), dm.at))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            kept,
            [
                (false, bn, "are you there".to_owned(), sent_at),
                (
                    true,
                    "carol".to_owned(),
                    "psst".to_owned(),
                    Millis(sent_at.0 + 1_000)
                ),
            ],
            "{got:?}"
        );
        // Delivered once: the next sign-in gets none.
        let e = t.bin("laptop");
        let got = sign_in(&mut t, e, "alice", Proof::Password(pw(PW)), false);
        assert!(
            !got.iter()
                .any(|m| matches!(m, ServerMsg::Direct(_) | ServerMsg::DirectNotice(_))),
            "{got:?}"
        );
    }

    /// A direct message to an account whose one client dropped and may resume any moment (or
    /// never) is kept for it as well, instead of "reconnecting right now; try again": the
    /// resumed client gets it, with the time it was sent, after what its rooms had, once. The
    /// sender gets its echo alone (the account is not shown away while a device may come
    /// back). A guest's dropped client has nowhere to keep it: the sender is told to try again.
    #[test]
    fn a_direct_message_to_an_account_whose_client_is_reconnecting_comes_with_its_resume() {
        let mut t = T::new();
        let (a, _, _) = t.bin_from(LOCAL, "alice");
        t.send(
            a,
            &ClientMsg::Register {
                password: pw(PW),
                remember: false,
            },
        );
        let got = t.recv(a);
        let token = got
            .iter()
            .find_map(|m| match m {
                ServerMsg::SignedIn { token, .. } => Some(token.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("not registered: {got:?}"));
        t.join(a, "#x");
        let (g, _, _) = t.bin_from(LOCAL, "guest");
        t.hub.handle_close(a, t.now);
        t.hub.handle_close(g, t.now);
        t.pump();
        let (b, bn) = t.txt();
        let sent_at = t.now;
        t.line(b, "/msg alice are you there");
        assert_eq!(t.lines(b), ["-> *alice* are you there"]);
        t.line(b, "/msg guest are you there");
        let l = t.lines(b);
        assert!(
            l.iter()
                .any(|l| l.contains("guest is reconnecting right now")),
            "{l:?}"
        );
        t.advance(1_000);
        let (back, got) = t.resume("alice", token, vec![(room("#x"), Seq(1))]);
        let dms: Vec<(String, String, Millis)> = got
            .iter()
            .filter_map(|m| match m {
                ServerMsg::Direct(dm) => Some((dm.from.to_string(), dm.text.to_string(), dm.at)),
                _ => None,
            })
            .collect();
        assert_eq!(dms, [(bn, "are you there".to_owned(), sent_at)], "{got:?}");
        assert!(
            matches!(got.first(), Some(ServerMsg::Welcome { resumed: true, .. })),
            "{got:?}"
        );
        // Once: the client dropping and resuming again gets nothing more.
        let token = got
            .iter()
            .find_map(|m| match m {
                ServerMsg::Welcome { token, .. } => Some(token.clone()),
                _ => None,
            })
            .expect("a new token");
        t.hub.handle_close(back, t.now);
        t.pump();
        let (_, got) = t.resume("alice", token, vec![(room("#x"), Seq(1))]);
        assert!(
            !got.iter().any(|m| matches!(m, ServerMsg::Direct(_))),
            "{got:?}"
        );
    }

    /// An always-on account whose last device goes is shown away to its co-members, in the
    /// words its kept messages get (as ergo's always-on clients), and back when it signs in
    /// again; a joiner meanwhile sees it away in the member list (`AwayHere`). An away message
    /// of its own is left as it is: nobody is told anything then.
    #[test]
    fn an_account_with_nothing_connected_is_shown_away_and_back() {
        let mut t = T::new();
        let (a, key) = registered(&mut t, "alice");
        t.join(a, "#x");
        let b = t.bin("bob");
        t.join(b, "#x");
        t.recv(a);
        let kept = Some(text(super::ops::KEPT_WORDS));
        t.send(a, &ClientMsg::Quit { reason: None });
        assert!(t.hub.is_member(&nick("alice"), &room("#x")), "always-on");
        let got = t.recv(b);
        assert_eq!(
            got,
            [ServerMsg::Away {
                nick: nick("alice"),
                away: kept.clone()
            }]
        );
        let c = t.bin("carol");
        let got = t.join(c, "#x");
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::AwayHere { away, .. }
                if away.iter().any(|(n, w)| n.as_str() == "alice" && Some(w) == kept.as_ref()))),
            "{got:?}"
        );
        t.recv(b);
        let d = t.bin("phone");
        sign_in(&mut t, d, "alice", Proof::Key(key.clone()), false);
        for watcher in [b, c] {
            let got = t.recv(watcher);
            assert!(
                got.contains(&ServerMsg::Away {
                    nick: nick("alice"),
                    away: None
                }),
                "{got:?}"
            );
        }
        // Away of its own: kept through going and coming back, with no news.
        t.send(d, &ClientMsg::Away(Some(text("on holiday"))));
        t.recv(b);
        t.recv(c);
        t.send(d, &ClientMsg::Quit { reason: None });
        let e = t.bin("laptop");
        sign_in(&mut t, e, "alice", Proof::Key(key), false);
        for watcher in [b, c] {
            let got = t.recv(watcher);
            assert!(
                !got.iter().any(|m| matches!(m, ServerMsg::Away { .. })),
                "{got:?}"
            );
        }
    }

    /// At most [`crate::limits::MAX_HELD_DIRECTS`] messages wait for an account; one more is
    /// refused to its sender, in words, until the account has signed in and taken them.
    #[test]
    fn the_messages_kept_for_an_account_are_bounded() {
        let mut t = T::new();
        let (a, _) = registered(&mut t, "alice");
        t.send(a, &ClientMsg::Quit { reason: None });
        let c = t.bin("carol");
        let max = crate::limits::MAX_HELD_DIRECTS as u64;
        for i in 1..=max + 1 {
            t.advance(5_000); // flood control's tokens back
            t.send(
                c,
                &ClientMsg::Msg {
                    to: nick("alice"),
                    id: MsgId(i),
                    text: text("hello"),
                },
            );
            let got = t.recv(c);
            let refused = errors(&got);
            if i <= max {
                assert!(refused.is_empty(), "message {i}: {got:?}");
            } else {
                assert_eq!(refused.len(), 1, "{got:?}");
                assert_eq!(refused[0].1, Re::Msg(MsgId(i)));
                assert!(
                    refused[0].2.contains("try again once they are back"),
                    "{refused:?}"
                );
            }
        }
    }

    /// `[accounts] kept_bytes` bounds what is kept for all accounts together (messages to
    /// many offline accounts cannot grow the server's memory without bound), and 0 keeps
    /// nothing: the message is refused as before. A delivery frees its share.
    #[test]
    fn what_is_kept_for_all_accounts_together_is_bounded_and_can_be_turned_off() {
        let per = "hello".len() + crate::limits::HELD_DIRECT_OVERHEAD;
        for (budget, kept) in [(2 * per, 2), (0, 0)] {
            let mut cfg = config();
            cfg.accounts.kept_bytes = budget;
            let mut t = T::with(cfg);
            let (a, key_a) = registered(&mut t, "alice");
            t.send(a, &ClientMsg::Quit { reason: None });
            let (b, _) = registered(&mut t, "bert");
            t.send(b, &ClientMsg::Quit { reason: None });
            let c = t.bin("carol");
            let mut refused = Vec::new();
            for (i, to) in ["alice", "bert", "alice"].into_iter().enumerate() {
                t.advance(5_000);
                let id = MsgId(i as u64 + 1);
                t.send(
                    c,
                    &ClientMsg::Msg {
                        to: nick(to),
                        id,
                        text: text("hello"),
                    },
                );
                refused.extend(errors(&t.recv(c)));
            }
            assert_eq!(refused.len(), 3 - kept, "budget {budget}: {refused:?}");
            let words = if budget == 0 {
                "direct messages are not kept"
            } else {
                "keeps no more messages"
            };
            assert!(refused.iter().all(|e| e.2.contains(words)), "{refused:?}");
            if budget > 0 {
                // alice takes hers: its bytes are free again.
                let d = t.bin("phone");
                sign_in(&mut t, d, "alice", Proof::Key(key_a), false);
                t.send(d, &ClientMsg::Quit { reason: None });
                t.advance(5_000);
                t.send(
                    c,
                    &ClientMsg::Msg {
                        to: nick("alice"),
                        id: MsgId(9),
                        text: text("hello"),
                    },
                );
                assert!(errors(&t.recv(c)).is_empty());
            }
        }
    }

    /// With a store, a kept message is written (the account's whole list) before its echo goes
    /// out, comes back with the account after a restart, and is forgotten (an empty list
    /// written) once delivered.
    #[test]
    fn kept_direct_messages_are_stored_and_come_back_after_a_restart() {
        use crate::persist::{LoadedAccount, Write};
        let cfg = Config {
            durable: true,
            ..config()
        };
        let mut t = T::with(cfg.clone());
        let (a, _) = registered(&mut t, "alice");
        t.send(a, &ClientMsg::Quit { reason: None });
        let c = t.bin("carol");
        t.send(
            c,
            &ClientMsg::Msg {
                to: nick("alice"),
                id: MsgId(7),
                text: text("see you tomorrow"),
            },
        );
        t.recv(c);
        let writes: Vec<Write> = t.batches.iter().flat_map(|b| b.writes.clone()).collect();
        let held = writes
            .iter()
            .rev()
            .find_map(|w| match w {
                Write::HeldDirects { account, held } if account.as_str() == "alice" => {
                    Some(held.clone())
                }
                _ => None,
            })
            .expect("the kept message is written");
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].msg.text, text("see you tomorrow"));
        let record = writes
            .iter()
            .find_map(|w| match w {
                Write::Account(r) => Some(r.clone()),
                _ => None,
            })
            .expect("the account is written");
        // A new hub from what was stored.
        let mut t2 = T::with(cfg);
        t2.hub.restore(
            crate::persist::Loaded {
                rooms: Vec::new(),
                sessions: Vec::new(),
                accounts: vec![LoadedAccount {
                    record,
                    rooms: Vec::new(),
                    read: Vec::new(),
                    keys: Vec::new(),
                    held,
                }],
                policies: Vec::new(),
                server_bans: Vec::new(),
                device_labels: Vec::new(),
                away_notes: Vec::new(),
                known: Vec::new(),
            },
            t2.now,
        );
        let d = t2.bin("x");
        let got = sign_in(&mut t2, d, "alice", Proof::Password(pw(PW)), false);
        assert!(
            got.iter().any(
                |m| matches!(m, ServerMsg::Direct(dm) if dm.text == text("see you tomorrow") && dm.from.as_str() == "carol")
            ),
            "{got:?}"
        );
        let cleared = t2
            .batches
            .iter()
            .flat_map(|b| b.writes.iter())
            .any(|w| matches!(w, Write::HeldDirects { held, .. } if held.is_empty()));
        assert!(cleared, "delivered, the list is written empty");
    }

    /// A batch holding a kept message's list (`Write::HeldDirects`) fails (a full disk for a
    /// moment): the batch after it writes the account's list again as it is then, as for
    /// every other account write. Until the fortieth session's review it was not written
    /// again: the hub kept the message and the store did not, so a restart lost it (and a
    /// lost clear after delivery brought delivered messages back).
    #[test]
    fn a_failed_batch_of_kept_direct_messages_is_written_again() {
        use crate::persist::Write;
        let mut t = T::with(Config {
            durable: true,
            ..config()
        });
        let (a, _) = registered(&mut t, "alice");
        t.send(a, &ClientMsg::Quit { reason: None });
        let c = t.bin("carol");
        t.recv(c);
        t.auto_commit = false;
        let before = t.batches.len();
        t.send(
            c,
            &ClientMsg::Msg {
                to: nick("alice"),
                id: MsgId(7),
                text: text("see you tomorrow"),
            },
        );
        let held_in = |b: &crate::persist::Batch| {
            b.writes.iter().find_map(|w| match w {
                Write::HeldDirects { account, held } if account.as_str() == "alice" => {
                    Some(held.len())
                }
                _ => None,
            })
        };
        let failed = t.batches[before..]
            .iter()
            .find(|b| held_in(b).is_some())
            .expect("the kept message is written")
            .id;
        t.hub
            .handle_store_failed(failed, "the server's disk is full", t.now);
        let told = t.recv(c);
        t.auto_commit = true;
        t.pump();
        t.advance(10_000);
        let again = t
            .batches
            .iter()
            .filter(|b| b.id.0 > failed.0)
            .find_map(held_in);
        assert!(
            again.is_some(),
            "the list is written again as the hub has it; carol was told {told:?}"
        );
        let got = t.recv(c);
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Direct(dm) if dm.id == MsgId(7))),
            "carol's echo goes out once the list is stored: {got:?}"
        );
    }

    #[test]
    fn a_remembered_device_that_changes_the_password_gets_a_new_key_with_the_answer() {
        let mut t = T::new();
        let (a, old_key) = registered(&mut t, "alice");
        // A device signed in without "remember me": it gets no key.
        let p = t.bin("p");
        sign_in(&mut t, p, "alice", Proof::Password(pw(PW)), false);
        t.send(
            a,
            &ClientMsg::ChangePassword {
                old: pw(PW),
                new: pw("battery staple"),
            },
        );
        let got = t.recv(a);
        let at = |want: fn(&ServerMsg) -> bool| got.iter().position(want);
        let key = got
            .iter()
            .find_map(|m| match m {
                ServerMsg::SignedIn { key, .. } => key.clone(),
                _ => None,
            })
            .unwrap_or_else(|| panic!("a new key for the remembered device: {got:?}"));
        assert!(
            at(|m| matches!(m, ServerMsg::SignedIn { .. }))
                < at(|m| *m == ServerMsg::PasswordChanged),
            "the key comes before the answer: {got:?}"
        );
        assert_ne!(key, old_key);
        // The old key opens nothing; the new one does.
        let q = t.bin("q");
        let got = sign_in(&mut t, q, "alice", Proof::Key(old_key), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed], "revoked");
        let got = sign_in(&mut t, q, "alice", Proof::Key(key), false);
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::SignedIn { .. })),
            "{got:?}"
        );
        // A device that was not remembered changes it: no key for it.
        t.send(
            p,
            &ClientMsg::ChangePassword {
                old: pw("battery staple"),
                new: pw("staple battery horse"),
            },
        );
        let got = t.recv(p);
        assert!(got.contains(&ServerMsg::PasswordChanged), "{got:?}");
        assert!(
            !got.iter().any(|m| matches!(m, ServerMsg::SignedIn { .. })),
            "{got:?}"
        );
    }

    #[test]
    fn signing_out_revokes_the_key_and_a_password_change_revokes_every_key() {
        let mut t = T::new();
        let (a, key) = registered(&mut t, "alice");
        t.join(a, "#x");
        // A second remembered device.
        let p = t.bin("p");
        let got = sign_in(&mut t, p, "alice", Proof::Password(pw(PW)), true);
        let key2 = got
            .iter()
            .find_map(|m| match m {
                ServerMsg::SignedIn { key, .. } => key.clone(),
                _ => None,
            })
            .unwrap();
        t.send(p, &ClientMsg::SignOut);
        assert!(t.closed(p));
        let q = t.bin("q");
        let got = sign_in(&mut t, q, "alice", Proof::Key(key2), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed], "revoked");
        assert!(
            t.hub.is_member(&nick("alice"), &room("#x")),
            "the account stays"
        );
        // Password change: wrong old password fails, the right one revokes the first key.
        t.send(
            a,
            &ClientMsg::ChangePassword {
                old: pw("not the password"),
                new: pw("battery staple"),
            },
        );
        let got = t.recv(a);
        assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed]);
        // Said as what it is: the person is signed in, and typed no account name.
        assert_eq!(error_detail(&got), "the old password is wrong", "{got:?}");
        t.send(
            a,
            &ClientMsg::ChangePassword {
                old: pw(PW),
                new: pw("battery staple"),
            },
        );
        assert!(t.recv(a).contains(&ServerMsg::PasswordChanged));
        let r = t.bin("r");
        let got = sign_in(&mut t, r, "alice", Proof::Key(key), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed], "revoked");
        let got = sign_in(
            &mut t,
            r,
            "alice",
            Proof::Password(pw("battery staple")),
            false,
        );
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::SignedIn { .. })),
            "{got:?}"
        );
        // A guest cannot sign out or change a password.
        let g = t.bin("g");
        t.send(g, &ClientMsg::SignOut);
        assert_eq!(error_kinds(&t.recv(g)), vec![ErrorKind::NotSignedIn]);
        // A signed-in user's nick is its account's.
        t.send(
            r,
            &ClientMsg::Nick {
                nick: nick("other"),
            },
        );
        assert_eq!(error_kinds(&t.recv(r)), vec![ErrorKind::Invalid]);
    }

    /// A browser through the bridge (its address named by `Forwarded`) that says `Hello`.
    fn page(t: &mut T, browser: &str, want: &str) -> ConnId {
        let c = t.hub.accept(LOCAL, t.now).unwrap();
        t.feed(
            c,
            &crate::wire::bridge_preamble(browser, TEST_BRIDGE_SECRET),
        );
        t.send(
            c,
            &ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                nick: nick(want),
                resume: None,
            },
        );
        t.recv(c);
        c
    }

    fn key_in(got: &[ServerMsg]) -> DeviceKey {
        got.iter()
            .find_map(|m| match m {
                ServerMsg::SignedIn { key, .. } => key.clone(),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no key: {got:?}"))
    }

    fn devices_in(got: &[ServerMsg]) -> Vec<crate::wire::RememberedDevice> {
        got.iter()
            .find_map(|m| match m {
                ServerMsg::Devices { devices } => Some(devices.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no device list: {got:?}"))
    }

    /// `/devices` lists the account's remembered devices (when remembered, last used, door,
    /// address, which is this one); `/devices forget ID` revokes that device's key and signs
    /// the connected device out (told, then closed), and its key opens nothing after.
    #[test]
    fn remembered_devices_are_listed_and_a_forgotten_one_is_signed_out() {
        use crate::wire::{DeviceDoor, RememberedDevice};
        let mut t = T::new();
        let (a, key_a) = registered(&mut t, "alice");
        t.join(a, "#x");
        t.advance(20_000);
        let remembered_p = t.now;
        let p = page(&mut t, "198.51.100.7", "p");
        let key_p = key_in(&sign_in(&mut t, p, "alice", Proof::Password(pw(PW)), true));
        // Signed in without "remember": no key, not listed.
        let q = t.bin("q");
        sign_in(&mut t, q, "alice", Proof::Password(pw(PW)), false);
        t.recv(a);
        t.recv(p);

        t.send(a, &ClientMsg::Devices);
        let list = devices_in(&t.recv(a));
        assert_eq!(list.len(), 2, "{list:?}");
        assert_eq!(list[0].id, RememberedDevice::id_of(key_a.id()));
        assert!(list[0].this && !list[1].this, "{list:?}");
        let used = list[0].used.clone().expect("registering used it");
        assert_eq!(used.door, DeviceDoor::Client);
        assert_eq!(used.address, Some(LOCAL));
        assert_eq!(list[1].id, RememberedDevice::id_of(key_p.id()));
        assert_eq!(list[1].remembered, remembered_p);
        let used = list[1].used.clone().expect("remembered at its sign-in");
        assert_eq!(used.door, DeviceDoor::Page);
        assert_eq!(used.address, Some("198.51.100.7".parse().unwrap()));
        // The list never holds anything of a key's secret.
        let bytes = crate::wire::encode_frame(&ServerMsg::Devices {
            devices: list.clone(),
        })
        .unwrap();
        assert!(!bytes.windows(8).any(|w| w == &key_p.0[8..16]));

        // Forgetting one's own device is /logout's job; an id not the account's is refused.
        t.send(a, &ClientMsg::ForgetDevice { id: list[0].id });
        let got = t.recv(a);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Invalid]);
        assert!(error_detail(&got).contains("/logout"), "{got:?}");
        let unknown = list[0].id.wrapping_add(1).max(list[1].id.wrapping_add(1));
        t.send(a, &ClientMsg::ForgetDevice { id: unknown });
        let got = t.recv(a);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Invalid]);
        assert!(
            error_detail(&got).contains("no remembered device")
                && error_detail(&got).contains(&RememberedDevice::id_words(unknown)),
            "{got:?}"
        );

        // The page is forgotten from a: it is told and closed; a hears it done.
        t.send(a, &ClientMsg::ForgetDevice { id: list[1].id });
        let got = t.recv(a);
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::Done(w)
                if w.as_str().contains("forgotten and signed out"))),
            "{got:?}"
        );
        let told = t.recv(p);
        assert_eq!(error_kinds(&told), vec![ErrorKind::NotSignedIn], "{told:?}");
        assert!(error_detail(&told).contains("forgotten"), "{told:?}");
        assert!(
            matches!(told.last(), Some(ServerMsg::Bye { .. })),
            "{told:?}"
        );
        assert!(t.closed(p));
        // Its key opens nothing now; a's still does; the account stays in its rooms.
        let r = t.bin("r");
        let got = sign_in(&mut t, r, "alice", Proof::Key(key_p), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::SignInFailed], "{got:?}");
        t.send(a, &ClientMsg::Devices);
        let list = devices_in(&t.recv(a));
        assert_eq!(list.len(), 1, "{list:?}");
        assert!(t.hub.is_member(&nick("alice"), &room("#x")));
        assert!(!t.closed(q), "a device without a key is not touched");

        // A guest has no devices to list or forget.
        let g = t.bin("g");
        t.send(g, &ClientMsg::Devices);
        assert_eq!(error_kinds(&t.recv(g)), vec![ErrorKind::NotSignedIn]);
        t.send(g, &ClientMsg::ForgetDevice { id: list[0].id });
        assert_eq!(error_kinds(&t.recv(g)), vec![ErrorKind::NotSignedIn]);
    }

    /// A forgotten device waiting for its resume is signed out there and then: its token no
    /// longer resumes. A resume of a remembered device is its last use (time, door, address),
    /// written to the store with the key's id.
    #[test]
    fn a_forgotten_device_loses_its_resume_and_a_resume_is_a_use() {
        use crate::persist::Write;
        use crate::wire::RememberedDevice;
        let mut t = T::with(Config {
            durable: true,
            ..config()
        });
        let (a, _) = registered(&mut t, "alice");
        let q = t.bin("q");
        let got = sign_in(&mut t, q, "alice", Proof::Password(pw(PW)), true);
        let (key_q, token) = (key_in(&got), token_of(&got));
        t.send(q, &ClientMsg::Ping { token: 1 });
        t.recv(q);
        // q drops and comes back from elsewhere, later: that is its last use.
        t.hub.handle_close(q, t.now);
        t.pump();
        t.advance(20_000);
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        let (q2, got) = t.hello(
            peer,
            "q",
            Some(Resume {
                token,
                rooms: vec![],
            }),
        );
        assert!(resumed(&got), "{got:?}");
        t.send(a, &ClientMsg::Devices);
        let list = devices_in(&t.recv(a));
        let used = list[1].used.clone().unwrap();
        assert_eq!((used.at, used.address), (t.now, Some(peer)));
        let written = t.batches.iter().flat_map(|b| b.writes.iter()).any(|w| {
            matches!(w, Write::KeyUsed { id, used, .. } if *id == key_q.id() && used.address == Some(peer))
        });
        assert!(written, "the use is stored");
        // It drops again, and is forgotten while it waits for its resume.
        let token = welcomed_token(&got);
        t.send(q2, &ClientMsg::Ping { token: 2 });
        t.recv(q2);
        t.hub.handle_close(q2, t.now);
        t.pump();
        t.send(
            a,
            &ClientMsg::ForgetDevice {
                id: RememberedDevice::id_of(key_q.id()),
            },
        );
        let got = t.recv(a);
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Done(w) if w.as_str().contains("signed out"))),
            "{got:?}"
        );
        let revoked = t
            .batches
            .iter()
            .flat_map(|b| b.writes.iter())
            .any(|w| matches!(w, Write::RevokeKey { id } if *id == key_q.id()));
        assert!(revoked, "the revocation is stored");
        let (_, got) = t.resume("q", token, vec![]);
        assert_eq!(error_kinds(&got), vec![ErrorKind::ResumeFailed], "{got:?}");
        assert!(!resumed(&got), "{got:?}");
    }

    /// Found by the review of the thirty-third session: a session restored after a restart
    /// did not know which device key its device held (the session record kept none), so
    /// forgetting that device revoked its key but left its session to resume, signed in: the
    /// lost laptop came back in after any restart.
    #[test]
    fn a_device_forgotten_after_a_restart_loses_its_resume_too() {
        use crate::wire::RememberedDevice;
        let cfg = Config {
            durable: true,
            ..config()
        };
        let mut t = T::with(cfg.clone());
        registered(&mut t, "alice");
        let q = t.bin("q");
        let got = sign_in(&mut t, q, "alice", Proof::Password(pw(PW)), true);
        let (key_q, token) = (key_in(&got), token_of(&got));
        t.send(q, &ClientMsg::Ping { token: 1 });
        t.recv(q);
        // kill -9, and a new hub from the store; another device of alice's forgets q.
        let mut loaded = super::durable::stored(&t);
        let mut alice: Option<crate::persist::LoadedAccount> = None;
        for w in t.batches.iter().flat_map(|b| b.writes.iter()) {
            match (w, alice.as_mut()) {
                (crate::persist::Write::Account(record), None) => {
                    alice = Some(crate::persist::LoadedAccount {
                        record: record.clone(),
                        rooms: Vec::new(),
                        read: Vec::new(),
                        keys: Vec::new(),
                        held: Vec::new(),
                    });
                }
                (w, Some(a)) => {
                    a.apply(w);
                }
                _ => {}
            }
        }
        loaded.accounts = alice.into_iter().collect();
        let mut t = T::with(cfg);
        t.hub.restore(loaded, t.now);
        let a = t.bin("a");
        let got = sign_in(&mut t, a, "alice", Proof::Password(pw(PW)), false);
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::SignedIn { .. })),
            "{got:?}"
        );
        t.send(a, &ClientMsg::Devices);
        let list = devices_in(&t.recv(a));
        let q_id = RememberedDevice::id_of(key_q.id());
        assert!(list.iter().any(|d| d.id == q_id && !d.this), "{list:?}");
        t.send(a, &ClientMsg::ForgetDevice { id: q_id });
        let got = t.recv(a);
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Done(w) if w.as_str().contains("signed out"))),
            "{got:?}"
        );
        let (_, got) = t.resume("q", token, vec![]);
        assert_eq!(error_kinds(&got), vec![ErrorKind::ResumeFailed], "{got:?}");
        assert!(!resumed(&got), "{got:?}");
    }

    /// A device key is labelled as its connection said ([`ClientMsg::ThisDevice`]) before it
    /// was issued; every device of the account sees the labels and renames any device
    /// (`NameDevice`); the labels are stored and a restarted hub lists them; a password change
    /// gives the changing device a new key with its label; a client of 12 gets the list
    /// without labels, in version 12's bytes.
    #[test]
    fn remembered_devices_have_labels_every_device_sees_and_renames() {
        use crate::persist::Write;
        use crate::types::DeviceLabel;
        use crate::wire::{DeviceUse, RememberedDevice};
        let label = |s: &str| DeviceLabel::new(s).unwrap();
        let labels = |list: &[RememberedDevice]| -> Vec<Option<String>> {
            list.iter()
                .map(|d| d.label.as_ref().map(|l| l.as_str().to_owned()))
                .collect()
        };
        let cfg = Config {
            durable: true,
            ..config()
        };
        let mut t = T::with(cfg.clone());
        // Registered by a client that said no label (one of 12, say).
        let (a, key_a) = registered(&mut t, "alice");
        let p = page(&mut t, "198.51.100.7", "p");
        t.send(
            p,
            &ClientMsg::ThisDevice {
                label: label("Chromium on Linux"),
            },
        );
        assert!(t.recv(p).is_empty(), "not answered");
        let key_p = key_in(&sign_in(&mut t, p, "alice", Proof::Password(pw(PW)), true));
        t.recv(a);
        t.send(a, &ClientMsg::Devices);
        let list = devices_in(&t.recv(a));
        assert_eq!(labels(&list), [None, Some("Chromium on Linux".into())]);
        assert!(list[0].this && !list[1].this);

        // a names itself; a label said once a key is held renames nothing.
        let (id_a, id_p) = (
            RememberedDevice::id_of(key_a.id()),
            RememberedDevice::id_of(key_p.id()),
        );
        t.send(
            a,
            &ClientMsg::NameDevice {
                id: id_a,
                label: label("natter on laptop"),
            },
        );
        let got = t.recv(a);
        let words = format!(
            "device {} is called natter on laptop now",
            RememberedDevice::id_words(id_a)
        );
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Done(w) if w.as_str() == words)),
            "{got:?}"
        );
        t.send(
            p,
            &ClientMsg::ThisDevice {
                label: label("something else"),
            },
        );
        t.send(p, &ClientMsg::Devices);
        let list = devices_in(&t.recv(p));
        assert_eq!(
            labels(&list),
            [
                Some("natter on laptop".into()),
                Some("Chromium on Linux".into())
            ]
        );
        assert!(!list[0].this && list[1].this);
        // An id the account has not, and a guest, are refused; nothing is written for them.
        let unknown = id_a.wrapping_add(1).max(id_p.wrapping_add(1));
        t.send(
            a,
            &ClientMsg::NameDevice {
                id: unknown,
                label: label("x"),
            },
        );
        let got = t.recv(a);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Invalid]);
        assert!(
            error_detail(&got).contains("no remembered device"),
            "{got:?}"
        );
        let g = t.bin("g");
        t.send(
            g,
            &ClientMsg::NameDevice {
                id: id_a,
                label: label("mine now"),
            },
        );
        assert_eq!(error_kinds(&t.recv(g)), vec![ErrorKind::NotSignedIn]);
        t.pump();
        let written: Vec<(u64, String)> = t
            .batches
            .iter()
            .flat_map(|b| b.writes.iter())
            .filter_map(|w| match w {
                Write::KeyLabel { id, label, .. } => Some((*id, label.as_str().to_owned())),
                _ => None,
            })
            .collect();
        assert_eq!(
            written,
            [
                (key_p.id(), "Chromium on Linux".to_owned()),
                (key_a.id(), "natter on laptop".to_owned())
            ]
        );

        // A client of 12 signed in to the account: the same list, without the labels, in
        // version 12's bytes (it could not decode the field).
        let old = t.hub.accept(LOCAL, t.now).unwrap();
        t.feed(old, &MAGIC);
        t.send(
            old,
            &ClientMsg::Hello {
                version: 12,
                nick: nick("old"),
                resume: None,
            },
        );
        sign_in(&mut t, old, "alice", Proof::Password(pw(PW)), false);
        t.send(old, &ClientMsg::Devices);
        let bytes = t.inbox.remove(&old).unwrap_or_default();
        let mut d = crate::wire::FrameDecoder::default();
        d.extend(&bytes);
        type V12 = (u32, Vec<(u32, Millis, Option<DeviceUse>, bool)>);
        let p = d.next_frame().unwrap().expect("the list");
        let (index, devices): V12 = decode_payload(&p).unwrap();
        assert_eq!(index, 35);
        assert_eq!(
            devices.iter().map(|d| d.0).collect::<Vec<_>>(),
            [id_a, id_p]
        );

        // kill -9, and a new hub from the store: the labels come back with the keys.
        let mut loaded = super::durable::stored(&t);
        let mut alice: Option<crate::persist::LoadedAccount> = None;
        for w in t.batches.iter().flat_map(|b| b.writes.iter()) {
            match (w, alice.as_mut()) {
                (Write::Account(record), None) => {
                    alice = Some(crate::persist::LoadedAccount {
                        record: record.clone(),
                        rooms: Vec::new(),
                        read: Vec::new(),
                        keys: Vec::new(),
                        held: Vec::new(),
                    });
                }
                (w, Some(a)) => {
                    a.apply(w);
                }
                _ => {}
            }
        }
        loaded.accounts = alice.into_iter().collect();
        // A label of a key no account holds is not taken.
        loaded.device_labels.push((7, label("stale")));
        let mut t = T::with(cfg);
        t.hub.restore(loaded, t.now);
        let a = t.bin("a");
        let got = sign_in(&mut t, a, "alice", Proof::Key(key_a), false);
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::SignedIn { .. })),
            "{got:?}"
        );
        t.send(a, &ClientMsg::Devices);
        let list = devices_in(&t.recv(a));
        assert_eq!(
            labels(&list),
            [
                Some("natter on laptop".into()),
                Some("Chromium on Linux".into())
            ]
        );
        // A password change: a's new key keeps a's label (not a label a connection said).
        t.send(
            a,
            &ClientMsg::ThisDevice {
                label: label("said later"),
            },
        );
        t.send(
            a,
            &ClientMsg::ChangePassword {
                old: pw(PW),
                new: pw("battery staple"),
            },
        );
        let new_key = key_in(&t.recv(a));
        t.send(a, &ClientMsg::Devices);
        let list = devices_in(&t.recv(a));
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0].id, RememberedDevice::id_of(new_key.id()));
        assert_eq!(labels(&list), [Some("natter on laptop".into())]);
    }

    /// nc: `/devices` and `/devices forget ID` as typed, answered in `-- ` lines.
    #[test]
    fn nc_lists_and_forgets_remembered_devices() {
        use crate::wire::RememberedDevice;
        let mut t = T::new();
        let (a, key_a) = registered(&mut t, "alice");
        let (c, _) = t.txt();
        t.line(c, "/devices");
        let lines = t.lines(c);
        assert!(
            lines.iter().any(|l| l.contains("not signed in")),
            "{lines:?}"
        );
        t.line(c, &format!("/login alice {PW}"));
        t.pump();
        t.lines(c);
        t.line(c, "/devices");
        let lines = t.lines(c);
        let id = RememberedDevice::id_words(RememberedDevice::id_of(key_a.id()));
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("-- 1 remembered device")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("-- {id}: remembered "))
                    && l.contains("through the natter client from 127.0.0.1")),
            "{lines:?}"
        );
        t.line(c, "/devices forget zz");
        let lines = t.lines(c);
        assert!(
            lines.iter().any(|l| l.contains("/devices forget ID")),
            "{lines:?}"
        );
        // Named as typed (the label cleaned), and listed so; a bad id is refused in words.
        t.line(c, &format!("/devices name {id} old \u{202E}laptop"));
        let lines = t.lines(c);
        assert!(
            lines
                .iter()
                .any(|l| l == &format!("-- device {id} is called old \u{FFFD}laptop now")),
            "{lines:?}"
        );
        t.line(c, "/devices");
        let lines = t.lines(c);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("-- {id} \"old \u{FFFD}laptop\": remembered "))),
            "{lines:?}"
        );
        t.line(c, "/devices name zz laptop");
        let lines = t.lines(c);
        assert!(
            lines.iter().any(|l| l.contains("/devices name ID label")),
            "{lines:?}"
        );
        t.line(c, &format!("/devices forget {}", id.to_uppercase()));
        let lines = t.lines(c);
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("device {id} is forgotten and signed out"))),
            "{lines:?}"
        );
        assert!(t.closed(a));
        t.line(c, "/devices");
        let lines = t.lines(c);
        assert!(
            lines.iter().any(|l| l.contains("no remembered devices")),
            "{lines:?}"
        );
        t.line(c, "/help");
        let lines = t.lines(c);
        assert!(lines.iter().any(|l| l.contains("/devices")), "{lines:?}");
    }

    #[test]
    fn accounts_are_written_and_come_back_after_a_restart() {
        use crate::persist::{LoadedAccount, Write};
        let cfg = Config {
            durable: true,
            ..config()
        };
        let mut t = T::with(cfg.clone());
        let (a, _) = registered(&mut t, "alice");
        t.join(a, "#x");
        t.send(
            a,
            &ClientMsg::Read {
                room: room("#x"),
                seq: Seq(1),
            },
        );
        let writes: Vec<Write> = t.batches.iter().flat_map(|b| b.writes.clone()).collect();
        let record = writes
            .iter()
            .find_map(|w| match w {
                Write::Account(r) => Some(r.clone()),
                _ => None,
            })
            .expect("the account is written");
        assert!(record.hash.0.starts_with("$argon2id$"));
        let key = writes
            .iter()
            .find_map(|w| match w {
                Write::AddKey { key, .. } => Some(key.clone()),
                _ => None,
            })
            .expect("the key is written (as a hash)");
        let rooms = writes
            .iter()
            .rev()
            .find_map(|w| match w {
                Write::AccountRooms { rooms, .. } => Some(rooms.clone()),
                _ => None,
            })
            .expect("its rooms are written");
        assert!(rooms.contains(&room("#x")));
        assert!(
            writes
                .iter()
                .any(|w| matches!(w, Write::ReadMarker { seq, .. } if *seq == Seq(1)))
        );
        // A new hub from what was stored.
        let mut t2 = T::with(cfg);
        t2.hub.restore(
            crate::persist::Loaded {
                rooms: vec![crate::persist::LoadedRoom {
                    name: room("#x"),
                    topic: None,
                    last_seq: Seq(1),
                    recent: Vec::new(),
                    present: Vec::new(),
                }],
                sessions: Vec::new(),
                accounts: vec![LoadedAccount {
                    record,
                    rooms,
                    read: vec![(room("#x"), Seq(1))],
                    keys: vec![key],
                    held: Vec::new(),
                }],
                policies: Vec::new(),
                server_bans: Vec::new(),
                device_labels: Vec::new(),
                away_notes: Vec::new(),
                known: Vec::new(),
            },
            t2.now,
        );
        assert!(t2.hub.is_member(&nick("alice"), &room("#x")), "always-on");
        let c = t2.bin("alice");
        assert_ne!(t2.hub.nick(c).unwrap().as_str(), "alice");
        let got = sign_in(&mut t2, c, "alice", Proof::Password(pw(PW)), false);
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::SignedIn { .. })),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Joined { room: r, .. } if r.as_str() == "#x")),
            "{got:?}"
        );
    }

    /// A guest that signs in to an account that is there already (always on) leaves its rooms,
    /// and the account enters them in its place: a room the guest had its key for (`+k`), or
    /// an invitation to (`+i`), is entered too, as the guest was in it (the client keeps the
    /// room and its lines; until the thirty-eighth session the account's entry was refused,
    /// "needs its key", and the room was gone from the page that signed in where it stood).
    /// A ban of the account still keeps it out.
    #[test]
    fn a_guest_signing_in_keeps_its_keyed_and_invite_only_rooms() {
        let mut t = T::new();
        let (a, _) = registered(&mut t, "alice");
        // Gone, and always on: the account is there when gus signs in.
        t.send(a, &ClientMsg::Quit { reason: None });
        let (o, _) = t.txt();
        t.line(o, "/nick olga");
        t.line(o, "/register correct horse");
        t.line(o, "/join #secret");
        t.line(o, "/register #secret");
        t.line(o, "/mode +k sesame");
        t.line(o, "/join #vip");
        t.line(o, "/register #vip");
        t.line(o, "/mode +i");
        t.line(o, "/join #closed");
        t.line(o, "/register #closed");
        t.line(o, "/ban account:alice");
        let (g, _) = t.txt();
        t.line(g, "/nick gus");
        t.line(g, "/join #secret sesame");
        t.line(o, "/invite gus #vip");
        t.line(g, "/join #vip");
        t.line(g, "/join #closed");
        for r in ["#secret", "#vip", "#closed"] {
            assert!(
                t.hub.is_member(&nick("gus"), &room(r)),
                "gus in {r}: {:?}",
                t.lines(g)
            );
        }
        t.lines(g);
        t.line(g, "/login alice correct horse");
        let got = t.lines(g);
        assert!(
            got.iter().any(|l| l == "-- you are signed in as alice"),
            "{got:?}"
        );
        for r in ["#secret", "#vip"] {
            assert!(
                t.hub.is_member(&nick("alice"), &room(r)),
                "alice in {r}: {got:?}"
            );
        }
        assert!(
            !got.iter()
                .any(|l| l.contains("needs its key") || l.contains("invite-only")),
            "{got:?}"
        );
        assert!(
            !t.hub.is_member(&nick("alice"), &room("#closed")),
            "banned: {got:?}"
        );
        assert!(
            got.iter()
                .any(|l| l.contains("you are banned from #closed")),
            "{got:?}"
        );
    }

    // ---- operations: sign-ins counted for the metrics (hub/stats.rs) ----

    #[test]
    fn sign_ins_are_counted_ok_failed_and_throttled() {
        let mut t = T::new();
        let (a, _) = registered(&mut t, "alice");
        assert_eq!(t.hub.stats().sign_ins_ok, 1, "registering signs in");
        t.send(a, &ClientMsg::Quit { reason: None });
        let c = t.bin("mallory");
        for _ in 0..4 {
            sign_in(&mut t, c, "alice", Proof::Password(pw("wrong")), false);
        }
        let got = sign_in(&mut t, c, "alice", Proof::Password(pw(PW)), false);
        assert_eq!(error_kinds(&got), vec![ErrorKind::Throttled], "{got:?}");
        t.advance(1_000);
        sign_in(&mut t, c, "alice", Proof::Password(pw(PW)), false);
        let s = t.hub.stats();
        assert_eq!(
            (s.sign_ins_ok, s.sign_ins_failed, s.sign_ins_throttled),
            (2, 4, 1),
            "{s:?}"
        );
        assert_eq!(s.messages(MsgKind::Account), 7);
    }
}

mod moderation {
    use super::*;
    use crate::moderation::ModeChange;
    use crate::types::Password;
    use crate::wire::ModAction;

    fn cfg() -> Config {
        Config {
            flood_burst: 1000,
            // Nobody here answers pings while the clock runs on for hours.
            ping_after: Millis(24 * 3_600_000),
            ..config()
        }
    }

    fn account(t: &mut T, name: &str) -> ConnId {
        signed_up(t, LOCAL, name)
    }

    fn act(t: &mut T, c: ConnId, r: &str, action: ModAction) -> Vec<ServerMsg> {
        t.send(
            c,
            &ClientMsg::Moderate {
                room: room(r),
                action,
            },
        );
        t.recv(c)
    }

    fn kinds(msgs: &[ServerMsg]) -> Vec<ErrorKind> {
        msgs.iter()
            .filter_map(|m| match m {
                ServerMsg::Error { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect()
    }

    fn joined(msgs: &[ServerMsg], r: &str) -> bool {
        msgs.iter()
            .any(|m| matches!(m, ServerMsg::Joined { room: x, .. } if x.as_str() == r))
    }

    fn error_detail(msgs: &[ServerMsg]) -> String {
        msgs.iter()
            .find_map(|m| match m {
                ServerMsg::Error { detail, .. } => Some(detail.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    fn event(msgs: &[ServerMsg], f: impl Fn(&EventKind) -> bool) -> bool {
        msgs.iter()
            .any(|m| matches!(m, ServerMsg::Event(ev) if f(&ev.kind)))
    }

    /// alice registers #r and is its founder; bob (a guest from a real address) is in it.
    fn founded(t: &mut T) -> (ConnId, ConnId) {
        let a = account(t, "alice");
        t.join(a, "#r");
        let got = act(t, a, "#r", ModAction::Register);
        assert!(
            event(
                &got,
                |k| matches!(k, EventKind::Mode { change } if change.as_str() == "+r")
            ),
            "{got:?}"
        );
        assert!(got.iter().any(
            |m| matches!(m, ServerMsg::Policy { founder: Some(f), .. } if f.as_str() == "alice")
        ));
        let (b, _, _) = t.bin_from(ip("198.51.100.20"), "bob");
        assert!(joined(&t.join(b, "#r"), "#r"));
        t.recv(a);
        (a, b)
    }

    /// `/register #new` for a room nobody made yet, or one the sender is not in, says to join
    /// it first, as `/help register` does; joined, the same command registers it.
    #[test]
    fn registering_a_room_not_joined_says_to_join_it_first() {
        let mut t = T::with(cfg());
        let a = account(&mut t, "alice");
        let details = |got: &[ServerMsg]| -> Vec<String> {
            got.iter()
                .filter_map(|m| match m {
                    ServerMsg::Error { detail, .. } => Some(detail.clone()),
                    _ => None,
                })
                .collect()
        };
        let got = act(&mut t, a, "#new", ModAction::Register);
        assert_eq!(kinds(&got), vec![ErrorKind::NotInRoom]);
        assert_eq!(
            details(&got),
            vec!["there is no room #new: join it first (/join #new), then /register #new"]
        );
        let (b, _, _) = t.bin_from(ip("198.51.100.20"), "bob");
        t.join(b, "#other");
        let got = act(&mut t, a, "#other", ModAction::Register);
        assert_eq!(
            details(&got),
            vec!["you are not in #other: join it first (/join #other), then /register #other"]
        );
        // Other actions keep their plain words.
        let got = act(
            &mut t,
            a,
            "#nowhere",
            ModAction::Kick {
                nick: nick("bob"),
                reason: None,
            },
        );
        assert_eq!(details(&got), vec!["there is no room #nowhere"]);
        t.join(a, "#new");
        let got = act(&mut t, a, "#new", ModAction::Register);
        assert!(kinds(&got).is_empty(), "{got:?}");
    }

    /// A client built for version 5 is still served (welcomed as version 5); the one message
    /// that changed, the ban list, comes in version 5's form (no `at`).
    #[test]
    fn a_version_5_client_is_welcomed_and_gets_version_5s_ban_list() {
        use crate::moderation::v1;
        let mut t = T::with(cfg());
        let (_, b) = founded(&mut t);
        let c = t.hub.accept(LOCAL, t.now).unwrap();
        t.feed(c, &MAGIC);
        t.send(
            c,
            &ClientMsg::Hello {
                version: 5,
                nick: nick("carol"),
                resume: None,
            },
        );
        let got = t.recv(c);
        assert!(
            matches!(got.as_slice(), [ServerMsg::Welcome { version: 5, .. }]),
            "{got:?}"
        );
        t.send(
            c,
            &ClientMsg::Register {
                password: crate::types::Password("correct horse".into()),
                remember: false,
            },
        );
        assert!(
            t.recv(c)
                .iter()
                .any(|m| matches!(m, ServerMsg::SignedIn { .. }))
        );
        t.join(c, "#old");
        act(&mut t, c, "#old", ModAction::Register);
        t.join(b, "#old");
        act(
            &mut t,
            c,
            "#old",
            ModAction::Ban {
                target: "bob".into(),
                duration: None,
                reason: Text::new("spam").ok(),
            },
        );
        t.recv(b);
        t.send(
            c,
            &ClientMsg::Moderate {
                room: room("#old"),
                action: ModAction::Bans,
            },
        );
        let bytes = t.inbox.remove(&c).unwrap_or_default();
        let mut d = FrameDecoder::new();
        d.extend(&bytes);
        let mut lists = Vec::new();
        while let Some(p) = d.next_frame().unwrap() {
            type Old = (u32, RoomName, Vec<v1::Entry>, Vec<v1::Entry>);
            if let Ok((23, r, bans, mutes)) = decode_payload::<Old>(&p) {
                let bans: Vec<crate::moderation::Entry> =
                    bans.into_iter().map(Into::into).collect();
                lists.push((r, bans, mutes.len()));
            }
        }
        let [(r, bans, 0)] = lists.as_slice() else {
            panic!("one ban list in version 5's form: {lists:?}");
        };
        assert_eq!(r.as_str(), "#old");
        assert!(
            bans.iter().any(|e| e.by.as_str() == "carol"
                && e.reason.as_ref().is_some_and(|x| x.as_str() == "spam")),
            "{bans:?}"
        );
        // A version 4 client is refused.
        let old = t.hub.accept(LOCAL, t.now).unwrap();
        t.feed(old, &MAGIC);
        t.send(
            old,
            &ClientMsg::Hello {
                version: 4,
                nick: nick("dan"),
                resume: None,
            },
        );
        assert!(t.recv(old).iter().any(|m| matches!(
            m,
            ServerMsg::Error {
                kind: ErrorKind::Version,
                ..
            }
        )));
    }

    #[test]
    fn a_founder_kicks_and_bans_and_a_ban_survives_a_rename() {
        let mut t = T::with(cfg());
        let (a, b) = founded(&mut t);
        // A guest may not moderate.
        let got = act(
            &mut t,
            b,
            "#r",
            ModAction::Kick {
                nick: nick("alice"),
                reason: None,
            },
        );
        assert_eq!(kinds(&got), vec![ErrorKind::NotOperator]);
        // Registering was an action (the metrics count it); the refused kick was not.
        assert_eq!(t.hub.stats().moderation_room, 1);
        // Kick: bob sees it and leaves, and may come back.
        let reason = Text::new("spam").ok();
        act(
            &mut t,
            a,
            "#r",
            ModAction::Kick {
                nick: nick("bob"),
                reason,
            },
        );
        assert_eq!(t.hub.stats().moderation_room, 2);
        let got = t.recv(b);
        assert!(
            event(
                &got,
                |k| matches!(k, EventKind::Kick { target, .. } if target.as_str() == "bob")
            ),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Parted { room: r } if r.as_str() == "#r"))
        );
        assert!(!t.hub.is_member(&nick("bob"), &room("#r")));
        assert!(joined(&t.join(b, "#r"), "#r"));
        // Ban for an hour: bob leaves, cannot rejoin, not under another nick either.
        t.recv(a);
        act(
            &mut t,
            a,
            "#r",
            ModAction::Ban {
                target: "bob".into(),
                duration: Some(Millis(3_600_000)),
                reason: Text::new("flooding").ok(),
            },
        );
        assert!(!t.hub.is_member(&nick("bob"), &room("#r")));
        let got = t.join(b, "#r");
        assert_eq!(kinds(&got), vec![ErrorKind::Banned], "{got:?}");
        assert!(
            got.iter().any(
                |m| matches!(m, ServerMsg::Error { detail, .. } if detail.contains("flooding"))
            )
        );
        t.send(
            b,
            &ClientMsg::Nick {
                nick: nick("notbob"),
            },
        );
        t.recv(b);
        assert_eq!(
            kinds(&t.join(b, "#r")),
            vec![ErrorKind::Banned],
            "the address is banned too"
        );
        // The list shows it; it runs out with the clock.
        let list = act(&mut t, a, "#r", ModAction::Bans);
        assert!(
            list.iter()
                .any(|m| matches!(m, ServerMsg::BanList { bans, .. } if bans.len() == 2)),
            "{list:?}"
        );
        t.advance(3_600_001);
        assert!(joined(&t.join(b, "#r"), "#r"), "expired");
    }

    fn done(msgs: &[ServerMsg]) -> Vec<String> {
        msgs.iter()
            .filter_map(|m| match m {
                ServerMsg::Done(w) => Some(w.to_string()),
                _ => None,
            })
            .collect()
    }

    fn ban(target: &str) -> ModAction {
        ModAction::Ban {
            target: target.into(),
            duration: None,
            reason: None,
        }
    }

    fn ban_masks(t: &mut T, c: ConnId, r: &str) -> Vec<String> {
        act(t, c, r, ModAction::Bans)
            .iter()
            .find_map(|m| match m {
                ServerMsg::BanList { bans, .. } => {
                    Some(bans.iter().map(|b| b.mask.to_string()).collect())
                }
                _ => None,
            })
            .unwrap_or_default()
    }

    /// `/unban nick` undoes `/ban nick` of a guest: the address entry that ban added goes too
    /// while the guest is there to be known by its nick, as `/unmute nick` lifts its address's
    /// mute (until the thirty-seventh session only `nick:bob` was lifted, the room read "ban
    /// lifted", and bob was still refused as banned). A guest gone since is no nick's: the
    /// operator is told which address still holds, and how to lift it.
    #[test]
    fn an_unban_of_a_guests_nick_lifts_the_address_its_ban_added() {
        let mut t = T::with(cfg());
        let (a, b) = founded(&mut t);
        act(&mut t, a, "#r", ban("bob"));
        assert_eq!(ban_masks(&mut t, a, "#r"), ["nick:bob", "198.51.100.20/32"]);
        let got = act(
            &mut t,
            a,
            "#r",
            ModAction::Unban {
                target: "bob".into(),
            },
        );
        for lifted in ["-b nick:bob", "-b 198.51.100.20/32"] {
            assert!(
                event(
                    &got,
                    |k| matches!(k, EventKind::Mode { change } if change.as_str() == lifted)
                ),
                "{lifted}: {got:?}"
            );
        }
        assert!(ban_masks(&mut t, a, "#r").is_empty());
        assert!(joined(&t.join(b, "#r"), "#r"), "bob is let back in");
        // Banned again, bob goes: the nick's ban is lifted, and the operator told that the
        // address one still holds.
        act(&mut t, a, "#r", ban("bob"));
        t.send(b, &ClientMsg::Quit { reason: None });
        t.recv(a);
        let got = act(
            &mut t,
            a,
            "#r",
            ModAction::Unban {
                target: "bob".into(),
            },
        );
        let done: Vec<&str> = got
            .iter()
            .filter_map(|m| match m {
                ServerMsg::Done(words) => Some(words.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            done,
            [
                "198.51.100.20/32, banned with nick:bob, still holds: /unban 198.51.100.20/32 lifts it"
            ],
            "{got:?}"
        );
        assert_eq!(ban_masks(&mut t, a, "#r"), ["198.51.100.20/32"]);
    }

    /// `/unmute` of a guest's nick undoes `/mute` of it as `/unban` undoes `/ban`: typed as
    /// `nick:bob` too (IRC's `-q bob!*@*`), which lifted the nick's mute only and left bob
    /// muted by its address; and once bob has gone, the operator is told which address still
    /// holds (it was lifted in silence, and bob back from there was muted still).
    #[test]
    fn an_unmute_of_a_guests_nick_lifts_its_address_or_says_it_still_holds() {
        let mut t = T::with(cfg());
        let (a, b) = founded(&mut t);
        let mute = |t: &mut T| {
            act(
                t,
                a,
                "#r",
                ModAction::Mute {
                    target: "bob".into(),
                    duration: None,
                },
            );
        };
        let unmute = |t: &mut T, target: &str| {
            act(
                t,
                a,
                "#r",
                ModAction::Unmute {
                    target: target.into(),
                },
            )
        };
        let lifted = |got: &[ServerMsg]| -> Vec<String> {
            events(got)
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::Mode { change } => Some(change.as_str().to_owned()),
                    _ => None,
                })
                .collect()
        };
        mute(&mut t);
        let got = unmute(&mut t, "nick:bob");
        assert_eq!(
            lifted(&got),
            ["-q nick:bob", "-q 198.51.100.20/32"],
            "{got:?}"
        );
        // Gone, bob's address stays muted, and the operator is told so.
        mute(&mut t);
        t.send(b, &ClientMsg::Quit { reason: None });
        t.recv(a);
        let got = unmute(&mut t, "bob");
        assert_eq!(lifted(&got), ["-q nick:bob"], "{got:?}");
        assert_eq!(
            done(&got),
            [
                "198.51.100.20/32, muted with nick:bob, still holds: /unmute 198.51.100.20/32 lifts it"
            ],
            "{got:?}"
        );
    }

    /// The server's operator removed the founder's account (`natter-server account remove`: a
    /// reload without it): its connected user stays, a guest with the nick, and the room's
    /// settings still name the founder. An operator bans that guest as any guest, as it kicks
    /// it: the ban was refused as one of the founder (`nick:alice` read as the founder's
    /// nick, which no guest holds while the account exists), and the guest stayed.
    #[test]
    fn a_guest_left_with_a_removed_founders_nick_is_banned_as_any_guest() {
        let mut t = T::with(cfg());
        let a = signed_up(&mut t, ip("198.51.100.7"), "alice");
        t.join(a, "#r");
        act(&mut t, a, "#r", ModAction::Register);
        let carol = signed_up(&mut t, ip("203.0.113.7"), "carol");
        t.join(carol, "#r");
        act(&mut t, a, "#r", ModAction::Op(nick("carol")));
        let now = t.now;
        t.hub.handle_account_dropped("alice", now);
        t.pump();
        t.recv(a);
        t.recv(carol);
        assert!(t.hub.is_member(&nick("alice"), &room("#r")), "a guest now");
        let got = act(&mut t, carol, "#r", ban("alice"));
        assert!(kinds(&got).is_empty(), "{got:?}");
        assert_eq!(
            ban_masks(&mut t, carol, "#r"),
            ["nick:alice", "198.51.100.7/32"]
        );
        assert!(!t.hub.is_member(&nick("alice"), &room("#r")), "put out");
        // Typed as a mask, a mute of the nick holds it too.
        let got = act(
            &mut t,
            carol,
            "#r",
            ModAction::Mute {
                target: "nick:alice".into(),
                duration: None,
            },
        );
        assert!(kinds(&got).is_empty(), "{got:?}");
    }

    /// SECURITY.md: a ban of a guest holds its nick and its address. A guest on loopback
    /// (exempt from the per-address limits: every user on the server's machine, a bridge
    /// without the secret, a proxy without PROXY headers share it) is held by its nick only,
    /// and the operator is told so and why (until the thirty-second session nothing said it,
    /// and a new nick got round the ban unknown to the operator). An exempt address is nobody's
    /// (PROTOCOL.md), so a typed ban or mute of loopback, which would hold nobody, is refused
    /// (until then it was set, said and listed, and held nobody); with `exempt_loopback =
    /// false` loopback counts, and a guest there is banned by its address too.
    #[test]
    fn a_guest_on_loopback_is_banned_by_nick_and_a_loopback_mask_is_refused() {
        let mut t = T::with(cfg());
        let (a, _) = founded(&mut t);
        let (troll, _, _) = t.bin_from(LOCAL, "troll");
        assert!(joined(&t.join(troll, "#r"), "#r"));
        t.recv(a);
        let got = act(&mut t, a, "#r", ban("troll"));
        assert!(!t.hub.is_member(&nick("troll"), &room("#r")));
        assert!(
            done(&got).iter().any(|w| w.contains("nick only")
                && w.contains("127.0.0.1")
                && w.contains("loopback")),
            "{got:?}"
        );
        assert_eq!(ban_masks(&mut t, a, "#r"), vec!["nick:troll".to_owned()]);
        // A new nick gets it back in: what the operator was told.
        t.send(
            troll,
            &ClientMsg::Nick {
                nick: nick("troll2"),
            },
        );
        t.recv(troll);
        assert!(joined(&t.join(troll, "#r"), "#r"));
        // A ban or a mute of loopback would hold nobody: refused, saying why.
        t.recv(a);
        for (target, action) in [
            ("127.0.0.1", ban("127.0.0.1")),
            ("127.0.0.0/8", ban("127.0.0.0/8")),
            ("::1", ban("::1")),
            (
                "127.0.0.1",
                ModAction::Mute {
                    target: "127.0.0.1".into(),
                    duration: None,
                },
            ),
        ] {
            let got = act(&mut t, a, "#r", action);
            assert_eq!(kinds(&got), vec![ErrorKind::Invalid], "{target}: {got:?}");
            assert!(
                got.iter()
                    .any(|m| matches!(m, ServerMsg::Error { detail, .. }
                    if detail.contains("hold nobody") && detail.contains("loopback"))),
                "{target}: {got:?}"
            );
        }
        assert_eq!(ban_masks(&mut t, a, "#r"), vec!["nick:troll".to_owned()]);
        assert!(t.hub.is_member(&nick("troll2"), &room("#r")));
        // Where loopback counts, a guest there is its address too.
        let mut t = T::with(Config {
            exempt_loopback: false,
            ..cfg()
        });
        let (a, _) = founded(&mut t);
        let carol = signed_up(&mut t, ip("203.0.113.7"), "carol");
        t.join(carol, "#r");
        act(&mut t, a, "#r", ModAction::Op(nick("carol")));
        let (troll, _, _) = t.bin_from(LOCAL, "troll");
        t.join(troll, "#r");
        t.recv(carol);
        let got = act(&mut t, carol, "#r", ban("troll"));
        assert!(done(&got).is_empty(), "{got:?}");
        assert!(ban_masks(&mut t, carol, "#r").contains(&"127.0.0.1/32".to_owned()));
        t.send(
            troll,
            &ClientMsg::Nick {
                nick: nick("troll2"),
            },
        );
        t.recv(troll);
        assert_eq!(kinds(&t.join(troll, "#r")), vec![ErrorKind::Banned]);
    }

    /// A guest on the operator's own address (one school's or office's network) is banned by
    /// its nick, and the operator told so: until the thirty-second session the whole ban was
    /// refused ("not yourself: 203.0.113.7/32 holds you"), so a teacher could not ban a pupil
    /// in the same classroom at all.
    #[test]
    fn a_guest_on_the_operators_own_address_is_banned_by_nick() {
        let mut t = T::with(cfg());
        let (a, _) = founded(&mut t);
        let carol = signed_up(&mut t, ip("203.0.113.7"), "carol");
        t.join(carol, "#r");
        act(&mut t, a, "#r", ModAction::Op(nick("carol")));
        let (pupil, _, _) = t.bin_from(ip("203.0.113.7"), "pupil");
        assert!(joined(&t.join(pupil, "#r"), "#r"));
        t.recv(carol);
        let got = act(&mut t, carol, "#r", ban("pupil"));
        assert!(kinds(&got).is_empty(), "{got:?}");
        assert!(
            done(&got)
                .iter()
                .any(|w| w.contains("nick only") && w.contains("yours too")),
            "{got:?}"
        );
        assert!(!t.hub.is_member(&nick("pupil"), &room("#r")));
        assert!(t.hub.is_member(&nick("carol"), &room("#r")));
        assert!(ban_masks(&mut t, carol, "#r").contains(&"nick:pupil".to_owned()));
        // A guest elsewhere is still held by its address too.
        let (far, _, _) = t.bin_from(ip("192.0.2.99"), "far");
        t.join(far, "#r");
        t.recv(carol);
        let got = act(&mut t, carol, "#r", ban("far"));
        assert!(done(&got).is_empty(), "{got:?}");
        assert!(ban_masks(&mut t, carol, "#r").contains(&"192.0.2.99/32".to_owned()));
    }

    #[test]
    fn a_device_put_out_while_away_hears_who_and_why_when_it_resumes() {
        // README: a member put out is told who did it and why, on every door. A binary client
        // away (in its resume window) when it was kicked got only `Parted` on its resume.
        let mut t = T::with(cfg());
        let (a, _) = founded(&mut t);
        let (b, _, token) = t.bin_from(ip("198.51.100.21"), "carl");
        t.join(b, "#r");
        t.say(a, "#r", 1, "before");
        let seen = events(&t.recv(b)).last().unwrap().seq;
        t.hub.handle_close(b, t.now);
        t.pump();
        t.say(a, "#r", 2, "while carl is away");
        act(
            &mut t,
            a,
            "#r",
            ModAction::Kick {
                nick: nick("carl"),
                reason: Text::new("rude").ok(),
            },
        );
        t.say(a, "#r", 3, "after the kick");
        let (_, got) = t.resume("carl", token, vec![(room("#r"), seen)]);
        let kick = got.iter().position(|m| {
            matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Kick { target, reason }, from, .. })
                if target.as_str() == "carl" && from.as_str() == "alice"
                    && reason.as_ref().is_some_and(|r| r.as_str() == "rude"))
        });
        let parted = got
            .iter()
            .position(|m| matches!(m, ServerMsg::Parted { room: r } if r.as_str() == "#r"));
        assert!(
            kick.is_some() && parted.is_some() && kick < parted,
            "the kick, then Parted: {got:?}"
        );
        // What came before it (in order, no gap), and nothing of the room after it.
        assert_eq!(says(&got), vec!["while carl is away"], "{got:?}");
        assert!(
            !got.iter().any(|m| matches!(m, ServerMsg::Gap { .. })),
            "{got:?}"
        );

        // A room that nothing put it out of (one it never was in, here) is only `Parted`,
        // though the room has events after the seq named.
        let (d, _, token) = t.bin_from(ip("198.51.100.22"), "dina");
        t.hub.handle_close(d, t.now);
        t.pump();
        let (_, got) = t.resume("dina", token, vec![(room("#r"), seen)]);
        assert!(events(&got).is_empty(), "{got:?}");
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Parted { room: r } if r.as_str() == "#r")),
            "{got:?}"
        );
    }

    /// Whether `got` has `alice`'s kick of `carl` ("rude") before `Parted` from `#r`.
    fn kick_then_parted(got: &[ServerMsg]) -> bool {
        let kick = got.iter().position(|m| {
            matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Kick { target, reason }, from, .. })
                if target.as_str() == "carl" && from.as_str() == "alice"
                    && reason.as_ref().is_some_and(|r| r.as_str() == "rude"))
        });
        let parted = got
            .iter()
            .position(|m| matches!(m, ServerMsg::Parted { room: r } if r.as_str() == "#r"));
        kick.is_some() && parted.is_some() && kick < parted
    }

    fn kick_carl(t: &mut T, a: ConnId) {
        act(
            t,
            a,
            "#r",
            ModAction::Kick {
                nick: nick("carl"),
                reason: Text::new("rude").ok(),
            },
        );
    }

    #[test]
    fn a_device_kicked_on_a_dead_connection_hears_who_and_why_when_its_resume_takes_over() {
        // Found by the third accounts pass: a device was noted as put out only while it had no
        // connection. Kicked while its connection was open but dead (the `Kick` and `Parted`
        // sent there never arrived), its resume took the session over and got a bare `Parted`.
        let mut t = T::with(cfg());
        let (a, _) = founded(&mut t);
        let (b, _, token) = t.bin_from(ip("198.51.100.21"), "carl");
        t.join(b, "#r");
        t.say(a, "#r", 1, "before");
        let seen = events(&t.recv(b)).last().unwrap().seq;
        kick_carl(&mut t, a);
        t.say(a, "#r", 2, "after the kick");
        let lost = t.recv(b);
        assert!(kick_then_parted(&lost), "sent to the dead one: {lost:?}");
        let (b2, got) = t.resume("carl", token, vec![(room("#r"), seen)]);
        assert!(
            got.is_empty(),
            "the attached connection is probed first: {got:?}"
        );
        t.advance(crate::limits::TAKEOVER_PROBE.0);
        assert!(t.closed(b));
        let got = t.recv(b2);
        assert!(
            matches!(got.first(), Some(ServerMsg::Welcome { resumed: true, .. })),
            "{got:?}"
        );
        assert!(kick_then_parted(&got), "the kick, then Parted: {got:?}");
        assert!(says(&got).is_empty(), "nothing of the room after: {got:?}");
        // Taken: a later resume of the same device hears it no more.
        let Some(ServerMsg::Welcome { token, .. }) = got.first().cloned() else {
            unreachable!("matched above")
        };
        t.hub.handle_close(b2, t.now);
        t.pump();
        let (_, got) = t.resume("carl", token, vec![(room("#r"), seen)]);
        assert!(events(&got).is_empty(), "{got:?}");
    }

    #[test]
    fn a_device_put_out_hears_who_and_why_when_it_resumes_after_a_restart() {
        // Found by the third accounts pass: the rooms a device was put out of lived only in the
        // hub, not in its session record; after a restart its resume got a bare `Parted`.
        let cfg = Config {
            durable: true,
            ..cfg()
        };
        for away in [true, false] {
            let mut t = T::with(cfg.clone());
            let (a, _) = founded(&mut t);
            let (b, _, token) = t.bin_from(ip("198.51.100.21"), "carl");
            t.join(b, "#r");
            t.say(a, "#r", 1, "before");
            let seen = events(&t.recv(b)).last().unwrap().seq;
            if away {
                t.hub.handle_close(b, t.now);
                t.pump();
            }
            kick_carl(&mut t, a);
            t.say(a, "#r", 2, "after the kick");
            // kill -9, and a new hub from the store.
            let loaded = super::durable::stored(&t);
            let mut t = T::with(cfg.clone());
            t.hub.restore(loaded, t.now);
            let (_, got) = t.resume("carl", token, vec![(room("#r"), seen)]);
            assert!(
                matches!(got.first(), Some(ServerMsg::Welcome { resumed: true, .. })),
                "away {away}: {got:?}"
            );
            assert!(kick_then_parted(&got), "away {away}: {got:?}");
            assert!(says(&got).is_empty(), "away {away}: {got:?}");
        }
    }

    #[test]
    fn a_resume_naming_a_room_its_user_never_was_in_reads_nothing_of_it() {
        // Found by the hostile-input pass: the replay of what put a device out matched the
        // put-out event by nick only, and the client names the rooms. A guest who took the nick
        // of someone who had parted an invite-only room, resumed its own session naming that
        // room from seq 0, and read the room's history up to that part.
        let mut t = T::with(cfg());
        let (a, b) = founded(&mut t);
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mode(ModeChange::InviteOnly(true)),
        );
        t.say(a, "#r", 1, "the launch code is 1234");
        t.send(
            b,
            &ClientMsg::Part {
                room: room("#r"),
                reason: None,
            },
        );
        t.send(b, &ClientMsg::Quit { reason: None });
        t.pump();
        // Anyone may take the nick now: a guest's belongs to whoever holds it.
        let (x, got_nick, token) = t.bin_from(ip("203.0.113.66"), "bob");
        assert_eq!(got_nick.as_str(), "bob");
        assert!(!joined(&t.join(x, "#r"), "#r"), "invite-only keeps it out");
        t.hub.handle_close(x, t.now);
        t.pump();
        let (_, got) = t.resume("bob", token, vec![(room("#r"), Seq(0))]);
        assert!(
            events(&got).is_empty(),
            "nothing of a room it never was in: {got:?}"
        );
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Parted { room: r } if r.as_str() == "#r")),
            "{got:?}"
        );
    }

    #[test]
    fn an_account_ban_holds_every_device_and_later_sign_ins() {
        let mut t = T::with(cfg());
        let (a, _) = founded(&mut t);
        let c1 = account(&mut t, "carol");
        t.join(c1, "#r");
        let c2 = t.bin("carol2");
        t.send(
            c2,
            &ClientMsg::SignIn {
                account: nick("carol"),
                proof: crate::wire::Proof::Password(Password("correct horse".into())),
                remember: false,
            },
        );
        t.recv(c2);
        t.recv(c1);
        act(
            &mut t,
            a,
            "#r",
            ModAction::Ban {
                target: "carol".into(),
                duration: None,
                reason: None,
            },
        );
        for c in [c1, c2] {
            assert!(
                t.recv(c)
                    .iter()
                    .any(|m| matches!(m, ServerMsg::Parted { .. })),
                "{c}"
            );
        }
        let c3 = t.bin("again");
        t.send(
            c3,
            &ClientMsg::SignIn {
                account: nick("carol"),
                proof: crate::wire::Proof::Password(Password("correct horse".into())),
                remember: false,
            },
        );
        t.recv(c3);
        assert_eq!(kinds(&t.join(c3, "#r")), vec![ErrorKind::Banned]);
        // Unban by the mask the list shows.
        act(
            &mut t,
            a,
            "#r",
            ModAction::Unban {
                target: "account:carol".into(),
            },
        );
        assert!(joined(&t.join(c3, "#r"), "#r"));
    }

    #[test]
    fn operators_are_accounts_made_by_the_founder_and_cannot_touch_the_founder() {
        let mut t = T::with(cfg());
        let (a, b) = founded(&mut t);
        let o = account(&mut t, "olga");
        t.join(o, "#r");
        assert_eq!(
            kinds(&act(&mut t, a, "#r", ModAction::Op(nick("bob")))),
            vec![ErrorKind::Invalid],
            "a guest is no operator"
        );
        let got = act(&mut t, a, "#r", ModAction::Op(nick("olga")));
        assert!(event(
            &got,
            |k| matches!(k, EventKind::Mode { change } if change.as_str() == "+o olga")
        ));
        assert_eq!(
            kinds(&act(&mut t, o, "#r", ModAction::Op(nick("bob")))),
            vec![ErrorKind::NotOperator],
            "only the founder makes operators"
        );
        assert_eq!(
            kinds(&act(
                &mut t,
                o,
                "#r",
                ModAction::Kick {
                    nick: nick("alice"),
                    reason: None
                }
            )),
            vec![ErrorKind::NotOperator]
        );
        assert_eq!(
            kinds(&act(
                &mut t,
                o,
                "#r",
                ModAction::Ban {
                    target: "alice".into(),
                    duration: None,
                    reason: None
                }
            )),
            vec![ErrorKind::NotOperator]
        );
        act(
            &mut t,
            o,
            "#r",
            ModAction::Kick {
                nick: nick("bob"),
                reason: None,
            },
        );
        assert!(!t.hub.is_member(&nick("bob"), &room("#r")));
        let _ = b;
        // Registering needs an account, and a room registered already stays its founder's.
        let (g, _, _) = t.bin_from(ip("198.51.100.30"), "guesty");
        t.join(g, "#other");
        assert_eq!(
            kinds(&act(&mut t, g, "#other", ModAction::Register)),
            vec![ErrorKind::NotSignedIn]
        );
        assert_eq!(
            kinds(&act(&mut t, o, "#r", ModAction::Register)),
            vec![ErrorKind::Invalid]
        );
    }

    #[test]
    fn mutes_and_moderated_rooms_keep_speech_to_those_allowed() {
        let mut t = T::with(cfg());
        let (a, b) = founded(&mut t);
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mute {
                target: "bob".into(),
                duration: Some(Millis(60_000)),
            },
        );
        t.recv(b);
        t.say(b, "#r", 1, "can you hear me");
        let got = t.recv(b);
        assert_eq!(kinds(&got), vec![ErrorKind::Muted]);
        assert!(got.iter().any(|m| matches!(
            m,
            ServerMsg::Error {
                re: Re::Msg(MsgId(1)),
                ..
            }
        )));
        assert!(says(&t.recv(a)).is_empty(), "nobody heard it");
        t.advance(60_001);
        t.say(b, "#r", 2, "now you can");
        assert_eq!(says(&t.recv(a)), vec!["now you can"]);
        // +m: only operators and voiced members.
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mode(ModeChange::Moderated(true)),
        );
        t.recv(b);
        t.say(b, "#r", 3, "quiet room");
        assert_eq!(kinds(&t.recv(b)), vec![ErrorKind::Muted]);
        act(&mut t, a, "#r", ModAction::Voice(nick("bob")));
        t.recv(b);
        t.say(b, "#r", 4, "voiced");
        assert_eq!(says(&t.recv(a)), vec!["voiced"]);
        // +t: only operators set the topic.
        act(&mut t, a, "#r", ModAction::Mode(ModeChange::TopicOps(true)));
        t.recv(b);
        t.send(
            b,
            &ClientMsg::Topic {
                room: room("#r"),
                topic: Text::new("mine").ok(),
            },
        );
        assert_eq!(kinds(&t.recv(b)), vec![ErrorKind::NotOperator]);
    }

    #[test]
    fn joining_a_room_one_may_not_speak_in_says_so_at_once() {
        let mut t = T::with(cfg());
        let (a, b) = founded(&mut t);
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mode(ModeChange::Moderated(true)),
        );
        act(&mut t, a, "#r", ModAction::Voice(nick("bob")));
        t.recv(b);
        let muted_about_r = |got: &[ServerMsg]| {
            got.iter().find_map(|m| match m {
                ServerMsg::Error {
                    kind: ErrorKind::Muted,
                    re: Re::Room(r),
                    detail,
                } if r.as_str() == "#r" => Some(detail.clone()),
                _ => None,
            })
        };
        // A binary client without voice: told right after its join, as the room's words.
        let (c, _, _) = t.bin_from(ip("198.51.100.21"), "carol");
        let got = t.join(c, "#r");
        assert!(joined(&got, "#r"), "the join itself goes through: {got:?}");
        let why = muted_about_r(&got).unwrap_or_else(|| panic!("told: {got:?}"));
        assert!(
            why.contains("#r is moderated") && why.contains("not speak"),
            "{why}"
        );
        let at_joined = got
            .iter()
            .position(|m| matches!(m, ServerMsg::Joined { .. }));
        let at_told = got
            .iter()
            .position(|m| matches!(m, ServerMsg::Error { .. }));
        assert!(at_joined < at_told, "after the join: {got:?}");
        // A person on nc: a line.
        let (n, _) = t.txt();
        t.line(n, "/join #r");
        let lines = t.lines(n);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("-- #r is moderated") && l.contains("not speak")),
            "{lines:?}"
        );
        // Voiced, or an operator: nothing to say.
        for (who, why) in [(b, "bob is voiced"), (a, "the founder speaks")] {
            t.send(
                who,
                &ClientMsg::Part {
                    room: room("#r"),
                    reason: None,
                },
            );
            t.recv(who);
            let got = t.join(who, "#r");
            assert!(joined(&got, "#r"), "{got:?}");
            assert_eq!(muted_about_r(&got), None, "{why}");
        }
        // A room that is not moderated says nothing either.
        assert_eq!(muted_about_r(&t.join(c, "#elsewhere")), None);
    }

    /// An account signing in comes into its rooms: in one where it may not speak (moderated,
    /// no voice), the connection is told so with the room, as a join would tell it, not at its
    /// first line.
    #[test]
    fn signing_in_to_an_account_in_a_room_it_may_not_speak_in_says_so() {
        let mut t = T::with(cfg());
        let (a, _) = founded(&mut t);
        let d = account(&mut t, "dora");
        t.join(d, "#r");
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mode(ModeChange::Moderated(true)),
        );
        t.recv(d);
        t.send(d, &ClientMsg::Quit { reason: None });
        assert!(t.hub.is_member(&nick("dora"), &room("#r")), "always-on");
        let (p, _, _) = t.bin_from(ip("198.51.100.40"), "phone");
        t.send(
            p,
            &ClientMsg::SignIn {
                account: nick("dora"),
                proof: crate::wire::Proof::Password(crate::types::Password("correct horse".into())),
                remember: false,
            },
        );
        let got = t.recv(p);
        assert!(joined(&got, "#r"), "{got:?}");
        let told = got.iter().any(|m| {
            matches!(m, ServerMsg::Error { kind: ErrorKind::Muted, re: Re::Room(r), detail }
                if r.as_str() == "#r" && detail.contains("not speak"))
        });
        assert!(told, "{got:?}");
    }

    #[test]
    fn any_member_invites_to_a_room_that_is_not_invite_only_and_only_operators_to_one_that_is() {
        let mut t = T::with(cfg());
        // An unregistered room: nobody in charge, and a member's invitation still reaches.
        let (g, _, _) = t.bin_from(ip("198.51.100.40"), "gus");
        t.join(g, "#open");
        let (c, _, _) = t.bin_from(ip("198.51.100.41"), "cat");
        let before = t.hub.stats().moderation_room;
        assert_eq!(
            act(&mut t, g, "#open", ModAction::Invite(nick("cat"))),
            [ServerMsg::InviteSent {
                room: room("#open"),
                nick: nick("cat")
            }]
        );
        assert!(
            t.recv(c)
                .iter()
                .any(|m| matches!(m, ServerMsg::Invited { by, room: r } if by.as_str() == "gus" && r.as_str() == "#open"))
        );
        // Not an operator's act: no audit line.
        assert_eq!(t.hub.stats().moderation_room, before);
        // An invite-only room: an invitation lets in, which only operators give.
        let (a, b) = founded(&mut t);
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mode(ModeChange::InviteOnly(true)),
        );
        t.recv(b);
        assert_eq!(
            kinds(&act(&mut t, b, "#r", ModAction::Invite(nick("cat")))),
            vec![ErrorKind::NotOperator]
        );
        assert_eq!(kinds(&t.join(c, "#r")), vec![ErrorKind::InviteOnly]);
    }

    #[test]
    fn invite_only_keys_and_limits_gate_joins() {
        let mut t = T::with(cfg());
        let (a, b) = founded(&mut t);
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mode(ModeChange::InviteOnly(true)),
        );
        let (c, _, _) = t.bin_from(ip("198.51.100.40"), "cat");
        assert_eq!(kinds(&t.join(c, "#r")), vec![ErrorKind::InviteOnly]);
        let before = t.hub.stats().moderation_room;
        // The operator is told it is done (a version 8 client), the invited get `Invited`.
        assert_eq!(
            act(&mut t, a, "#r", ModAction::Invite(nick("cat"))),
            [ServerMsg::InviteSent {
                room: room("#r"),
                nick: nick("cat")
            }]
        );
        assert!(
            t.recv(c)
                .iter()
                .any(|m| matches!(m, ServerMsg::Invited { by, .. } if by.as_str() == "alice"))
        );
        // An invitation is a moderation action: an audit-log line (and counted as one).
        assert_eq!(t.hub.stats().moderation_room, before + 1);
        assert!(joined(&t.join(c, "#r"), "#r"));
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mode(ModeChange::InviteOnly(false)),
        );
        // +k: the key, shown to operators only.
        let got = act(
            &mut t,
            a,
            "#r",
            ModAction::Mode(ModeChange::Key(Text::new("sesame").ok())),
        );
        assert!(got.iter().any(|m| matches!(m, ServerMsg::Policy { modes, .. } if modes.key.as_ref().is_some_and(|k| k.as_str() == "sesame"))));
        let seen = t.recv(b);
        assert!(seen.iter().any(|m| matches!(m, ServerMsg::Policy { modes, .. } if modes.key.as_ref().is_some_and(|k| k.as_str() == "*"))), "{seen:?}");
        assert!(
            !seen.iter().any(|m| format!("{m:?}").contains("sesame")),
            "never to members"
        );
        let (d, _, _) = t.bin_from(ip("198.51.100.41"), "dan");
        let got = t.join(d, "#r");
        assert_eq!(kinds(&got), vec![ErrorKind::BadKey]);
        assert_eq!(error_detail(&got), "#r needs its key: /join #r KEY");
        t.send(
            d,
            &ClientMsg::JoinKey {
                room: room("#r"),
                key: text("wrong"),
            },
        );
        // A key that is not it is said so, not that the room needs one (dan gave one).
        let got = t.recv(d);
        assert_eq!(kinds(&got), vec![ErrorKind::BadKey]);
        assert_eq!(
            error_detail(&got),
            "that is not the key of #r: ask its operators for it (/join #r KEY)"
        );
        t.send(
            d,
            &ClientMsg::JoinKey {
                room: room("#r"),
                key: text("sesame"),
            },
        );
        assert!(joined(&t.recv(d), "#r"));
        // +l: at most this many.
        act(&mut t, a, "#r", ModAction::Mode(ModeChange::Key(None)));
        act(&mut t, a, "#r", ModAction::Mode(ModeChange::Limit(Some(4))));
        let (e, _, _) = t.bin_from(ip("198.51.100.42"), "eve");
        assert_eq!(kinds(&t.join(e, "#r")), vec![ErrorKind::RoomFull]);
    }

    /// An invitation is its user's, as on IRC: it follows a nick change, lapses when its user
    /// quits (whoever takes the nick next is not invited) and after `INVITE_LIFETIME` unused.
    #[test]
    fn an_invitation_lapses_when_its_user_quits_or_its_time_runs_out() {
        let mut t = T::with(cfg());
        let (a, _b) = founded(&mut t);
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mode(ModeChange::InviteOnly(true)),
        );
        // Invited, then quits: a later user of the same nick is not let in.
        let (c, _, _) = t.bin_from(ip("198.51.100.40"), "cat");
        act(&mut t, a, "#r", ModAction::Invite(nick("cat")));
        t.send(c, &ClientMsg::Quit { reason: None });
        t.hub.handle_close(c, t.now);
        t.pump();
        let (c2, n, _) = t.bin_from(ip("198.51.100.41"), "cat");
        assert_eq!(n.as_str(), "cat");
        assert_eq!(kinds(&t.join(c2, "#r")), vec![ErrorKind::InviteOnly]);
        // It follows its user through a nick change.
        act(&mut t, a, "#r", ModAction::Invite(nick("cat")));
        t.send(c2, &ClientMsg::Nick { nick: nick("kit") });
        t.recv(c2);
        assert!(joined(&t.join(c2, "#r"), "#r"));
        // Unused, it lapses after its lifetime.
        let (d, _, _) = t.bin_from(ip("198.51.100.42"), "dan");
        act(&mut t, a, "#r", ModAction::Invite(nick("dan")));
        t.advance(crate::limits::INVITE_LIFETIME.0 - 1);
        t.recv(d);
        let (e, _, _) = t.bin_from(ip("198.51.100.43"), "eve");
        act(&mut t, a, "#r", ModAction::Invite(nick("eve")));
        t.advance(1);
        assert_eq!(kinds(&t.join(d, "#r")), vec![ErrorKind::InviteOnly]);
        assert!(joined(&t.join(e, "#r"), "#r"), "a younger one still holds");
        // Lapsed invitations are dropped, not kept until the list is full.
        let invited = t.hub.rooms.get(&room("#r")).map(|r| r.invited.len());
        assert_eq!(invited, Some(0));
    }

    #[test]
    fn masks_durations_and_caps_are_checked() {
        let mut t = T::with(cfg());
        let (a, _) = founded(&mut t);
        let got = act(
            &mut t,
            a,
            "#r",
            ModAction::Ban {
                target: "10.0.0.0/2".into(),
                duration: None,
                reason: None,
            },
        );
        assert_eq!(kinds(&got), vec![ErrorKind::Invalid]);
        let got = act(
            &mut t,
            a,
            "#r",
            ModAction::Ban {
                target: "alice".into(),
                duration: None,
                reason: None,
            },
        );
        assert_eq!(kinds(&got), vec![ErrorKind::Invalid], "not yourself");
        for i in 0..crate::moderation::MAX_BANS_PER_ROOM {
            let got = act(
                &mut t,
                a,
                "#r",
                ModAction::Ban {
                    target: format!("nick:n{i}"),
                    duration: None,
                    reason: None,
                },
            );
            assert!(kinds(&got).is_empty(), "{i}: {got:?}");
        }
        let got = act(
            &mut t,
            a,
            "#r",
            ModAction::Ban {
                target: "nick:one_more".into(),
                duration: None,
                reason: None,
            },
        );
        assert_eq!(kinds(&got), vec![ErrorKind::Invalid]);
    }

    #[test]
    fn a_registered_room_outlives_its_members_and_its_settings_are_stored() {
        let cfg = Config {
            durable: true,
            ..cfg()
        };
        let mut t = T::with(cfg.clone());
        let (a, b) = founded(&mut t);
        act(
            &mut t,
            a,
            "#r",
            ModAction::Ban {
                target: "nick:mallory".into(),
                duration: None,
                reason: None,
            },
        );
        t.send(
            b,
            &ClientMsg::Part {
                room: room("#r"),
                reason: None,
            },
        );
        t.send(
            a,
            &ClientMsg::Part {
                room: room("#r"),
                reason: None,
            },
        );
        // Nobody is in it, and it is still there, registered.
        let got = act(&mut t, b, "#r", ModAction::Settings);
        assert!(
            got.iter().any(
                |m| matches!(m, ServerMsg::Policy { founder: Some(f), .. } if f.as_str() == "alice")
            ),
            "{got:?}"
        );
        let got = act(
            &mut t,
            b,
            "#r",
            ModAction::Kick {
                nick: nick("alice"),
                reason: None,
            },
        );
        assert_eq!(
            kinds(&got),
            vec![ErrorKind::NotInRoom],
            "acting needs being in it"
        );
        let policy = t
            .batches
            .iter()
            .flat_map(|b| b.writes.iter())
            .filter_map(|w| match w {
                crate::persist::Write::RoomPolicy { room: r, policy } if r.as_str() == "#r" => {
                    policy.clone()
                }
                _ => None,
            })
            .next_back()
            .expect("the settings are written");
        assert_eq!(policy.founder.as_ref().map(Nick::as_str), Some("alice"));
        assert_eq!(policy.bans.len(), 1);
        // After a restart the ban holds.
        let mut t2 = T::with(cfg);
        t2.hub.restore(
            crate::persist::Loaded {
                policies: vec![(room("#r"), policy)],
                ..Default::default()
            },
            t2.now,
        );
        let m = t2.bin("mallory");
        assert_eq!(kinds(&t2.join(m, "#r")), vec![ErrorKind::Banned]);
        let ok = t2.bin("someone");
        assert!(joined(&t2.join(ok, "#r"), "#r"));
    }

    /// An nc user put out of a room reads the kick (who, why) addressed to it, and where it
    /// talks now, not also "you left" (as if it had left of its own accord); back in and
    /// leaving by itself, it reads "you left" again.
    #[test]
    fn an_nc_user_put_out_reads_the_kick_once() {
        let mut t = T::with(cfg());
        let (a, _) = t.txt();
        t.line(a, "/nick alice");
        t.line(a, "/register correct horse");
        t.line(a, "/join #r");
        t.line(a, "/register #r");
        let (b, bob) = t.txt();
        t.line(b, "/join #r");
        t.lines(b);
        t.line(a, &format!("/kick {bob} too loud"));
        assert_eq!(
            t.lines(b),
            [
                "-- alice put you out of #r (too loud)".to_owned(),
                "-- you are now talking in #lobby".to_owned(),
            ]
        );
        t.line(b, "/join #r");
        t.lines(b);
        t.line(b, "/part #r");
        assert!(
            t.lines(b).contains(&"-- you left #r".to_owned()),
            "a leave of one's own"
        );
    }

    /// An always-on account put out of a room with nothing connected is told who did it and
    /// why when it signs in again, once: the room is no longer among those it comes back to,
    /// and until the thirty-seventh session nothing said why (a device that resumes hears the
    /// kick itself: `a_device_kicked_on_a_dead_connection_hears_who_and_why...`).
    #[test]
    fn an_account_put_out_while_away_is_told_at_its_next_sign_in() {
        let mut t = T::with(cfg());
        let (a, _) = t.txt();
        t.line(a, "/nick alice");
        t.line(a, "/register correct horse");
        t.line(a, "/join #r");
        t.line(a, "/register #r");
        let (b, _) = t.txt();
        t.line(b, "/nick bob");
        t.line(b, "/register correct horse");
        t.line(b, "/join #r");
        t.line(b, "/join #s");
        t.line(b, "/quit");
        assert!(t.hub.is_member(&nick("bob"), &room("#r")), "always-on");
        t.line(a, "/kick bob too loud");
        t.line(a, "/ban #r bob");
        assert!(!t.hub.is_member(&nick("bob"), &room("#r")));
        let (b2, _) = t.txt();
        t.line(b2, "/login bob correct horse");
        let got = t.lines(b2);
        assert_eq!(
            got.iter()
                .filter(|l| l.contains("while you were away"))
                .collect::<Vec<_>>(),
            ["-- while you were away, alice put you out of #r (too loud)"],
            "{got:#?}"
        );
        // Told once: a later sign-in hears it no more.
        let (b3, _) = t.txt();
        t.line(b3, "/login bob correct horse");
        assert!(
            !t.lines(b3)
                .iter()
                .any(|l| l.contains("while you were away")),
            "told once"
        );
        // A binary device is told as a `Done`.
        t.line(a, "/unban bob");
        t.line(b2, "/join #r");
        t.line(b2, "/quit");
        t.line(b3, "/quit");
        t.line(a, "/kick bob again");
        let c = t.bin("someone");
        t.send(
            c,
            &ClientMsg::SignIn {
                account: nick("bob"),
                proof: crate::wire::Proof::Password(Password("correct horse".into())),
                remember: false,
            },
        );
        let got = t.recv(c);
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::Done(w)
                if w.as_str() == "while you were away, alice put you out of #r (again)")),
            "{got:?}"
        );
    }

    /// The note kept for an always-on account put out while away is kept in the store
    /// (`Write::AwayNotes`): a hub restarted from what was stored tells it at the account's
    /// next sign-in, once, and writes it away. Until the fortieth session a restart lost it.
    #[test]
    fn an_account_put_out_while_away_is_told_after_a_restart() {
        use crate::persist::{Loaded, LoadedAccount, Write};
        let cfg = Config {
            durable: true,
            ..cfg()
        };
        let mut t = T::with(cfg.clone());
        let (a, _) = t.txt();
        t.line(a, "/nick alice");
        t.line(a, "/register correct horse");
        t.line(a, "/join #r");
        t.line(a, "/register #r");
        let (b, _) = t.txt();
        t.line(b, "/nick bob");
        t.line(b, "/register correct horse");
        t.line(b, "/join #r");
        t.line(b, "/join #s");
        t.line(b, "/quit");
        t.line(a, "/kick bob too loud");
        let words = "while you were away, alice put you out of #r (too loud)";
        let writes: Vec<Write> = t.batches.iter().flat_map(|b| b.writes.clone()).collect();
        let last_notes = |writes: &[Write], who: &str| {
            writes.iter().rev().find_map(|w| match w {
                Write::AwayNotes { account, notes } if account.as_str() == who => {
                    Some(notes.clone())
                }
                _ => None,
            })
        };
        let notes = last_notes(&writes, "bob").expect("the note is written");
        assert_eq!(notes, [(room("#r"), words.to_owned())]);
        assert_eq!(
            last_notes(&writes, "alice"),
            None,
            "alice was put out of nothing"
        );
        // What a store loads: the accounts with their rooms now, and the notes.
        let accounts = writes
            .iter()
            .filter_map(|w| match w {
                Write::Account(record) => Some(LoadedAccount {
                    record: record.clone(),
                    rooms: writes
                        .iter()
                        .rev()
                        .find_map(|w| match w {
                            Write::AccountRooms { account, rooms }
                                if account.folded() == record.name.folded() =>
                            {
                                Some(rooms.clone())
                            }
                            _ => None,
                        })
                        .unwrap_or_default(),
                    read: Vec::new(),
                    keys: Vec::new(),
                    held: Vec::new(),
                }),
                _ => None,
            })
            .collect();
        let mut t2 = T::with(cfg);
        t2.hub.restore(
            Loaded {
                rooms: super::durable::stored(&t).rooms,
                accounts,
                away_notes: vec![(nick("bob"), notes)],
                known: Vec::new(),
                ..Default::default()
            },
            t2.now,
        );
        t2.pump();
        assert!(t2.hub.is_member(&nick("bob"), &room("#s")), "always-on");
        let (b2, _) = t2.txt();
        t2.line(b2, "/login bob correct horse");
        let got = t2.lines(b2);
        assert_eq!(
            got.iter()
                .filter(|l| l.contains("while you were away"))
                .collect::<Vec<_>>(),
            [&format!("-- {words}")],
            "{got:#?}"
        );
        let writes: Vec<Write> = t2.batches.iter().flat_map(|b| b.writes.clone()).collect();
        assert_eq!(
            last_notes(&writes, "bob"),
            Some(Vec::new()),
            "told, it is written away"
        );
        let (b3, _) = t2.txt();
        t2.line(b3, "/login bob correct horse");
        assert!(
            !t2.lines(b3)
                .iter()
                .any(|l| l.contains("while you were away")),
            "told once"
        );
    }

    /// A batch holding an account's notes that fails is followed by one writing them again as
    /// they are then (`Hub::account_as_now`), so a full disk for a moment loses none.
    #[test]
    fn the_notes_of_a_failed_batch_are_written_again() {
        use crate::persist::Write;
        let mut t = T::with(Config {
            durable: true,
            ..cfg()
        });
        let (a, _) = t.txt();
        t.line(a, "/nick alice");
        t.line(a, "/register correct horse");
        t.line(a, "/join #r");
        t.line(a, "/register #r");
        let (b, _) = t.txt();
        t.line(b, "/nick bob");
        t.line(b, "/register correct horse");
        t.line(b, "/join #r");
        t.line(b, "/join #s");
        t.line(b, "/quit");
        t.auto_commit = false;
        t.line(a, "/kick bob too loud");
        let notes_in = |w: &Write| match w {
            Write::AwayNotes { account, notes } if account.as_str() == "bob" => Some(notes.clone()),
            _ => None,
        };
        let failed = t
            .batches
            .iter()
            .find(|b| b.writes.iter().any(|w| notes_in(w).is_some()))
            .expect("the note is written")
            .id;
        t.hub
            .handle_store_failed(failed, "the server's disk is full", t.now);
        t.auto_commit = true;
        t.pump();
        let again: Vec<_> = t
            .batches
            .iter()
            .filter(|b| b.id > failed)
            .flat_map(|b| b.writes.iter())
            .filter_map(notes_in)
            .collect();
        assert_eq!(
            again,
            [vec![(
                room("#r"),
                "while you were away, alice put you out of #r (too loud)".to_owned()
            )]],
            "written again as they are"
        );
        // Told at a sign-in (the words wait for the write), the empty list's batch fails too:
        // written again, empty.
        t.auto_commit = false;
        let seen = t.batches.len();
        let (b2, _) = t.txt();
        t.line(b2, "/login bob correct horse");
        let failed = t.batches[seen..]
            .iter()
            .find(|b| b.writes.iter().any(|w| notes_in(w) == Some(Vec::new())))
            .expect("the told note is written away")
            .id;
        t.hub
            .handle_store_failed(failed, "the server's disk is full", t.now);
        t.auto_commit = true;
        t.pump();
        let again: Vec<_> = t
            .batches
            .iter()
            .filter(|b| b.id > failed)
            .flat_map(|b| b.writes.iter())
            .filter_map(notes_in)
            .collect();
        assert_eq!(again, [Vec::new()], "written away again");
        assert!(
            t.lines(b2)
                .iter()
                .any(|l| l.contains("while you were away")),
            "told, once its batch is done with"
        );
    }

    /// An always-on account put out of its only room while away has no rooms left: a hub
    /// restarted from the store makes no user for it at start (an always-on account with no
    /// rooms has none), and its note, kept in the store, must still be told at its next
    /// sign-in. Until the fortieth session's review `restore_away_notes` found no user and
    /// wrote the note away unread: the commonest case (one room, kicked) lost it.
    #[test]
    fn an_account_put_out_of_its_only_room_while_away_is_told_after_a_restart() {
        use crate::persist::{Loaded, LoadedAccount, Write};
        let cfg = Config {
            durable: true,
            ..cfg()
        };
        let mut t = T::with(cfg.clone());
        let (a, _) = t.txt();
        t.line(a, "/nick alice");
        t.line(a, "/register correct horse");
        t.line(a, "/join #r");
        t.line(a, "/register #r");
        let (b, _) = t.txt();
        t.line(b, "/nick bob");
        t.line(b, "/register correct horse");
        t.line(b, "/join #r");
        t.line(b, "/part #lobby");
        t.line(b, "/quit");
        t.line(a, "/kick bob too loud");
        let words = "while you were away, alice put you out of #r (too loud)";
        let writes: Vec<Write> = t.batches.iter().flat_map(|b| b.writes.clone()).collect();
        let last_notes = |writes: &[Write], who: &str| {
            writes.iter().rev().find_map(|w| match w {
                Write::AwayNotes { account, notes } if account.as_str() == who => {
                    Some(notes.clone())
                }
                _ => None,
            })
        };
        let notes = last_notes(&writes, "bob").expect("the note is written");
        assert_eq!(notes, [(room("#r"), words.to_owned())]);
        let accounts = writes
            .iter()
            .filter_map(|w| match w {
                Write::Account(record) => Some(LoadedAccount {
                    record: record.clone(),
                    rooms: writes
                        .iter()
                        .rev()
                        .find_map(|w| match w {
                            Write::AccountRooms { account, rooms }
                                if account.folded() == record.name.folded() =>
                            {
                                Some(rooms.clone())
                            }
                            _ => None,
                        })
                        .unwrap_or_default(),
                    read: Vec::new(),
                    keys: Vec::new(),
                    held: Vec::new(),
                }),
                _ => None,
            })
            .collect::<Vec<_>>();
        assert!(
            accounts
                .iter()
                .any(|la| la.record.name.as_str() == "bob" && la.rooms.is_empty()),
            "bob is in no room now: {writes:?}"
        );
        let mut t2 = T::with(cfg);
        t2.hub.restore(
            Loaded {
                rooms: super::durable::stored(&t).rooms,
                accounts,
                away_notes: vec![(nick("bob"), notes)],
                known: Vec::new(),
                ..Default::default()
            },
            t2.now,
        );
        t2.pump();
        let writes: Vec<Write> = t2.batches.iter().flat_map(|b| b.writes.clone()).collect();
        assert_eq!(
            last_notes(&writes, "bob"),
            None,
            "not written away at start: {writes:?}"
        );
        let (b2, _) = t2.txt();
        t2.line(b2, "/login bob correct horse");
        let got = t2.lines(b2);
        assert_eq!(
            got.iter()
                .filter(|l| l.contains("while you were away"))
                .collect::<Vec<_>>(),
            [&format!("-- {words}")],
            "{got:#?}"
        );
        let writes: Vec<Write> = t2.batches.iter().flat_map(|b| b.writes.clone()).collect();
        assert_eq!(
            last_notes(&writes, "bob"),
            Some(Vec::new()),
            "told, it is written away"
        );
    }

    /// A kicked nc user read of its own kick in the third person (`alice put guest1 out of
    /// #a`), as the room's other members read it. Put out of two rooms, one it talks in and one
    /// it does not, by a kick and by a ban: each line is addressed to it, the others' are not,
    /// and it hears "you left" for neither.
    #[test]
    fn an_nc_user_put_out_of_several_rooms_is_addressed_each_time() {
        let mut t = T::with(cfg());
        let (a, _) = t.txt();
        t.line(a, "/nick alice");
        t.line(a, "/register correct horse");
        for r in ["#a", "#b"] {
            t.line(a, &format!("/join {r}"));
            t.line(a, &format!("/register {r}"));
        }
        let (c, _) = t.txt();
        t.line(c, "/nick carol");
        t.line(c, "/join #a");
        let (b, bob) = t.txt();
        t.line(b, "/join #a");
        t.line(b, "/join #b");
        t.lines(b);
        t.lines(c);
        t.lines(a);
        // Not the room it talks in (#b): named in front.
        t.line(a, &format!("/kick #a {bob} too loud"));
        assert_eq!(
            t.lines(b),
            ["[#a] -- alice put you out of #a (too loud)".to_owned()]
        );
        assert_eq!(
            t.lines(c),
            [format!("-- alice put {bob} out of #a (too loud)")]
        );
        let l = t.lines(a);
        assert!(
            l.contains(&format!("[#a] -- alice put {bob} out of #a (too loud)")),
            "{l:?}"
        );
        // The room it talks in, by a ban.
        t.line(a, &format!("/ban #b {bob} 1h spam"));
        let l = t.lines(b);
        assert!(
            l.contains(&"-- alice put you out of #b (spam)".to_owned()),
            "{l:?}"
        );
        assert!(
            l.contains(&"-- you are now talking in #lobby".to_owned()),
            "{l:?}"
        );
        assert!(
            !l.iter()
                .any(|l| l.contains("out of #b") && l.contains(bob.as_str())),
            "{l:?}"
        );
        assert!(!l.iter().any(|l| l.contains("you left")), "{l:?}");
        let l = t.lines(a);
        assert!(
            l.contains(&format!("-- alice put {bob} out of #b (spam)")),
            "{l:?}"
        );
    }

    /// nc's `/who` and join line did not mark operators, while IRC's NAMES and natter's
    /// member lists do: `~` the founder, `@` an operator, `+` voiced, as the lists mark them.
    #[test]
    fn nc_who_and_join_lines_mark_operators() {
        let mut t = T::with(cfg());
        let (a, _) = t.txt();
        t.line(a, "/nick alice");
        t.line(a, "/register correct horse");
        t.line(a, "/join #r");
        t.line(a, "/register #r");
        let (b, bob) = t.txt();
        t.line(b, "/join #r");
        let l = t.lines(b);
        assert!(
            l.contains(&"-- you are in #r with: ~alice".to_owned()),
            "{l:?}"
        );
        t.line(a, &format!("/voice {bob}"));
        t.lines(b);
        t.line(b, "/who");
        let l = t.lines(b);
        assert!(
            l.len() == 1
                && l[0].starts_with("-- #r (2): ")
                && l[0].contains("~alice")
                && l[0].contains(&format!("+{bob}")),
            "{l:?}"
        );
        // Nobody marked in a room without settings: as before.
        t.line(b, "/who #lobby");
        let l = t.lines(b);
        assert!(!l[0].contains('~') && !l[0].contains('+'), "{l:?}");
    }

    #[test]
    fn a_room_nobody_registered_says_how_it_gets_operators() {
        // A newcomer makes #den and tries to moderate it: "you are not an operator of #den"
        // told them nothing of why (nobody is) or what to do.
        let mut t = T::with(cfg());
        let (a, _) = t.txt();
        let (b, bob) = t.txt();
        t.line(a, "/join #den");
        t.line(b, "/join #den");
        t.lines(a);
        t.lines(b);
        let guest = "ERROR: #den is not registered, so it has no operators: sign in (/login, \
                     or /register PASSWORD for a new account), then /register #den to become \
                     its founder";
        for cmd in [
            format!("/kick {bob}"),
            "/mode +m".to_owned(),
            format!("/op {bob}"),
        ] {
            t.line(a, &cmd);
            assert_eq!(t.lines(a), [guest], "{cmd}");
        }
        // Registering it needs an account, and says how to get one.
        t.line(a, "/register #den");
        assert_eq!(
            t.lines(a),
            [
                "ERROR: a room is registered to an account: sign in (/login, or /register \
              PASSWORD for a new account) first"
            ]
        );
        t.line(a, "/nick alice");
        t.line(a, "/register correct horse");
        t.lines(a);
        t.lines(b);
        // The nick of an account says what the sign-in takes (`/login alice` alone is a
        // usage error).
        t.line(b, "/nick alice");
        assert_eq!(
            t.lines(b),
            ["ERROR: alice is a registered account: sign in with /login alice PASSWORD"]
        );
        t.line(a, &format!("/ban {bob}"));
        assert_eq!(
            t.lines(a),
            [
                "ERROR: #den is not registered, so it has no operators: /register #den to \
              become its founder"
            ]
        );
        // What it says works; after it the founder acts and others are told they are not
        // operators, as before.
        t.line(a, "/register #den");
        assert!(t.lines(a).iter().any(|l| l.contains("alice set #den +r")));
        t.lines(b);
        t.line(b, "/mode +m");
        t.lines(a);
        assert_eq!(t.lines(b), ["ERROR: you are not an operator of #den"]);
        // The lobby, which nobody but a server admin registers, is as it was.
        t.line(b, "/kick #lobby alice");
        assert_eq!(t.lines(b), ["ERROR: you are not an operator of #lobby"]);
    }

    #[test]
    fn nc_operators_type_the_commands() {
        let mut t = T::with(cfg());
        let (a, _) = t.txt();
        t.line(a, "/nick alice");
        t.line(a, "/register correct horse");
        t.line(a, "/join #r");
        t.line(a, "/register #r");
        let l = t.lines(a);
        assert!(l.iter().any(|l| l.contains("alice set #r +r")), "{l:?}");
        let (b, bob) = t.txt();
        t.line(b, "/join #r");
        t.line(a, "/kick #r nosuchnick");
        t.line(a, &format!("/ban {bob} 2h too loud"));
        let l = t.lines(a);
        assert!(
            l.iter()
                .any(|l| l.contains("ERROR: nobody is called nosuchnick")),
            "{l:?}"
        );
        assert!(
            l.iter()
                .any(|l| l.contains(&format!("alice put {bob} out of #r (too loud)"))),
            "{l:?}"
        );
        t.line(a, "/bans");
        let l = t.lines(a);
        assert!(
            l.iter()
                .any(|l| l.contains("banned from #r: nick:") && l.contains("too loud")),
            "{l:?}"
        );
        let (c, _) = t.txt();
        t.line(c, "/join #r");
        t.lines(c);
        t.lines(a);
        t.line(a, "/mode +m");
        // One line for a change, to everyone: the settings binary clients get after it are
        // not said again in words.
        let plus_m = "-- alice set #r +m (moderated: only operators and voiced members speak)";
        assert_eq!(t.lines(a), [plus_m]);
        assert_eq!(t.lines(c), [plus_m]);
        t.line(a, "/mode");
        let l = t.lines(a);
        assert!(
            l.iter()
                .any(|l| l.contains("#r is registered to alice; modes +m")),
            "{l:?}"
        );
        t.line(a, "/ban #r 10.0.0.0/99");
        let l = t.lines(a);
        assert!(l.iter().any(|l| l.starts_with("ERROR:")), "{l:?}");
        // An invitation says it went through (it used to say nothing at all).
        let (_, carol) = t.txt();
        t.lines(a);
        t.line(a, &format!("/invite {carol}"));
        assert_eq!(t.lines(a), [format!("-- you invited {carol} to #r")]);
    }

    /// Whoever comes into a registered room learns its settings at once (after `Joined`),
    /// its founder and operators included: the page marks them and offers an operator the
    /// member menu from the start. (They came only with the room's next change: a page that
    /// joined saw no founder and an operator who joined had no menu.) nc is not sent them.
    #[test]
    fn joining_a_registered_room_tells_its_settings() {
        let mut t = T::with(cfg());
        let (a, _) = founded(&mut t);
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mode(ModeChange::Key(Some(text("sesame")))),
        );
        let (c, _, _) = t.bin_from(ip("198.51.100.21"), "carol");
        t.send(
            c,
            &ClientMsg::JoinKey {
                room: room("#r"),
                key: text("sesame"),
            },
        );
        let got = t.recv(c);
        let at = |f: &dyn Fn(&ServerMsg) -> bool| got.iter().position(f);
        let joined_at = at(&|m| matches!(m, ServerMsg::Joined { .. })).expect("joined");
        let policy_at = at(&|m| {
            matches!(m, ServerMsg::Policy { founder: Some(f), modes, .. }
                if f.as_str() == "alice" && modes.key.as_ref().is_some_and(|k| k.as_str() == "*"))
        });
        assert!(policy_at.is_some_and(|p| p > joined_at), "{got:?}");
        // The founder's other device, joining as the account does, sees the key.
        let a2 = t.bin("alice2");
        t.send(
            a2,
            &ClientMsg::SignIn {
                account: nick("alice"),
                proof: crate::wire::Proof::Password(Password("correct horse".into())),
                remember: false,
            },
        );
        t.send(
            a,
            &ClientMsg::Part {
                room: room("#r"),
                reason: None,
            },
        );
        t.recv(a2);
        let got = t.join(a2, "#r");
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Policy { modes, .. }
                if modes.key.as_ref().is_some_and(|k| k.as_str() == "sesame"))),
            "{got:?}"
        );
        // An unregistered room has no settings to tell.
        let got = t.join(c, "#open");
        assert!(
            !got.iter().any(|m| matches!(m, ServerMsg::Policy { .. })),
            "{got:?}"
        );
        // nc gets no line for them.
        let (n, _) = t.txt();
        t.lines(n);
        t.line(n, "/join #r sesame");
        let l = t.lines(n);
        assert!(!l.iter().any(|l| l.contains("registered to")), "{l:?}");
    }

    /// The audit log's line for a ban or a mute says until when and why (it said only
    /// `+b nick:eve`: the reason reached the log only when the ban put someone out).
    #[test]
    fn the_audit_line_of_a_ban_says_until_when_and_why() {
        let mut t = T::with(Config {
            durable: true,
            ..cfg()
        });
        let (a, _) = founded(&mut t);
        act(
            &mut t,
            a,
            "#r",
            ModAction::Ban {
                target: "nick:eve".into(),
                duration: Some(Millis(3_600_000)),
                reason: Some(text("spam")),
            },
        );
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mute {
                target: "nick:zed".into(),
                duration: None,
            },
        );
        let audit: Vec<String> = t
            .batches
            .iter()
            .flat_map(|b| b.writes.iter())
            .filter_map(|w| match w {
                crate::persist::Write::Audit(r) => Some(r.action.clone()),
                _ => None,
            })
            .collect();
        let until = Millis(t.now.0 + 3_600_000).rfc3339();
        assert!(
            audit.contains(&format!("+b nick:eve until {until}: spam")),
            "{audit:?}"
        );
        assert!(audit.contains(&"+q nick:zed".to_owned()), "{audit:?}");
    }

    /// A member who may not speak in a room does not speak through its part reason either
    /// (as solanum and InspIRCd drop it): a muted spammer parted with its words and joined
    /// again, over and over. The part itself goes through, without the words.
    #[test]
    fn a_member_who_may_not_speak_parts_without_its_reason() {
        let mut t = T::with(cfg());
        let (a, b) = founded(&mut t);
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mute {
                target: "bob".into(),
                duration: None,
            },
        );
        t.recv(b);
        let part = |t: &mut T, words: &str| {
            t.send(
                b,
                &ClientMsg::Part {
                    room: room("#r"),
                    reason: Some(text(words)),
                },
            );
            t.recv(b);
            t.recv(a)
        };
        let got = part(&mut t, "BUY CHEAP STUFF");
        assert!(
            event(&got, |k| matches!(k, EventKind::Part { reason: None })),
            "{got:?}"
        );
        // Unmuted, its words go with it again.
        act(
            &mut t,
            a,
            "#r",
            ModAction::Unmute {
                target: "bob".into(),
            },
        );
        assert!(joined(&t.join(b, "#r"), "#r"));
        t.recv(a);
        let got = part(&mut t, "see you");
        assert!(
            event(
                &got,
                |k| matches!(k, EventKind::Part { reason: Some(r) } if r.as_str() == "see you")
            ),
            "{got:?}"
        );
    }

    /// A muted member, or one without a voice in a `+m` room, may not set the topic: it is
    /// words to the whole room (a muted troll rewrote it). Others still may, where `-t`.
    #[test]
    fn a_member_who_may_not_speak_may_not_set_the_topic() {
        let mut t = T::with(cfg());
        let (a, b) = founded(&mut t);
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mute {
                target: "bob".into(),
                duration: None,
            },
        );
        t.recv(b);
        let topic = |t: &mut T, c: ConnId, words: &str| {
            t.send(
                c,
                &ClientMsg::Topic {
                    room: room("#r"),
                    topic: Some(text(words)),
                },
            );
            t.recv(c)
        };
        let got = topic(&mut t, b, "bob was here");
        assert!(
            got.iter().any(
                |m| matches!(m, ServerMsg::Error { kind: ErrorKind::NotOperator, detail, .. }
                if detail == "you are muted in #r; you cannot set its topic")
            ),
            "{got:?}"
        );
        assert!(
            !t.recv(a).iter().any(|m| matches!(m, ServerMsg::Event(_))),
            "no topic event"
        );
        act(
            &mut t,
            a,
            "#r",
            ModAction::Unmute {
                target: "bob".into(),
            },
        );
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mode(ModeChange::Moderated(true)),
        );
        t.recv(b);
        let got = topic(&mut t, b, "bob again");
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::Error { kind: ErrorKind::NotOperator, detail, .. }
                if detail.starts_with("#r is moderated") && detail.ends_with("you cannot set its topic"))),
            "{got:?}"
        );
        act(&mut t, a, "#r", ModAction::Voice(nick("bob")));
        t.recv(b);
        let got = topic(&mut t, b, "voiced bob");
        assert!(
            event(
                &got,
                |k| matches!(k, EventKind::Topic { topic: Some(x) } if x.as_str() == "voiced bob")
            ),
            "{got:?}"
        );
    }

    /// A ban by mask never holds the founder, and one that would hold the operator setting
    /// it is refused: a network ban by an operator in the founder's network used to put the
    /// founder and the operator out and keep them out (only a server admin could undo it).
    #[test]
    fn a_network_ban_spares_the_founder_and_is_refused_when_it_holds_its_setter() {
        let mut t = T::with(cfg());
        let a = signed_up(&mut t, ip("198.51.100.5"), "alice");
        t.join(a, "#r");
        act(&mut t, a, "#r", ModAction::Register);
        let o = signed_up(&mut t, ip("198.51.100.6"), "oscar");
        t.join(o, "#r");
        act(&mut t, a, "#r", ModAction::Op(nick("oscar")));
        let (m, _, _) = t.bin_from(ip("198.51.100.7"), "mallory");
        let (far, _, _) = t.bin_from(ip("203.0.113.9"), "faraway");
        t.join(m, "#r");
        t.join(far, "#r");
        t.recv(a);
        let ban = |target: &str| ModAction::Ban {
            target: target.into(),
            duration: None,
            reason: None,
        };
        // oscar's own network: refused, nothing set.
        let got = act(&mut t, o, "#r", ban("198.51.100.0/24"));
        assert_eq!(kinds(&got), vec![ErrorKind::Invalid], "{got:?}");
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Error { detail, .. } if detail.contains("you"))),
            "{got:?}"
        );
        assert!(t.recv(a).is_empty(), "no event for a refused ban");
        let got = act(
            &mut t,
            o,
            "#r",
            ModAction::Mute {
                target: "198.51.100.0/25".into(),
                duration: None,
            },
        );
        assert_eq!(kinds(&got), vec![ErrorKind::Invalid], "{got:?}");
        // The founder's own network holds her: refused as well.
        let got = act(&mut t, a, "#r", ban("198.51.100.0/24"));
        assert_eq!(kinds(&got), vec![ErrorKind::Invalid], "{got:?}");
        let got = act(&mut t, a, "#r", ban("198.51.100.7/32"));
        assert!(
            event(
                &got,
                |k| matches!(k, EventKind::Kick { target, .. } if target.as_str() == "mallory")
            ),
            "{got:?}"
        );
        // An operator's ban that holds the founder's address is set, and leaves her be.
        t.recv(o);
        let got = act(&mut t, o, "#r", ban("198.51.100.4/31"));
        assert!(
            event(
                &got,
                |k| matches!(k, EventKind::Mode { change } if change.as_str() == "+b 198.51.100.4/31")
            ),
            "{got:?}"
        );
        assert!(
            !event(&got, |k| matches!(k, EventKind::Kick { .. })),
            "the founder stays: {got:?}"
        );
        t.send(
            a,
            &ClientMsg::Part {
                room: room("#r"),
                reason: None,
            },
        );
        t.recv(a);
        assert!(joined(&t.join(a, "#r"), "#r"), "the founder comes back");
        assert_eq!(kinds(&t.join(m, "#r")), vec![ErrorKind::Banned]);
    }

    /// A guest's voice goes when it quits: it was voiced by nick, and the nick it gave up
    /// spoke in a `+m` room for whoever took it next (kept in the store, across restarts).
    /// A part keeps it (the guest keeps its nick), and a signed-in member's voice is its
    /// account's and stays.
    #[test]
    fn a_guests_voice_goes_when_it_quits_and_an_accounts_stays() {
        let mut t = T::with(cfg());
        let (a, b) = founded(&mut t);
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mode(ModeChange::Moderated(true)),
        );
        act(&mut t, a, "#r", ModAction::Voice(nick("bob")));
        t.recv(b);
        // A part keeps it.
        t.send(
            b,
            &ClientMsg::Part {
                room: room("#r"),
                reason: None,
            },
        );
        t.recv(b);
        assert_eq!(voiced(&mut t, a), vec!["bob".to_owned()]);
        t.join(b, "#r");
        t.recv(a);
        t.say(b, "#r", 1, "still voiced");
        assert_eq!(says(&t.recv(a)), vec!["still voiced"]);
        // A quit lifts it: whoever takes the nick next is not voiced.
        t.send(b, &ClientMsg::Quit { reason: None });
        t.hub.handle_close(b, t.now);
        t.pump();
        t.recv(a);
        assert_eq!(voiced(&mut t, a), Vec::<String>::new());
        let (imp, got, _) = t.bin_from(ip("203.0.113.66"), "bob");
        assert_eq!(got.as_str(), "bob", "the nick is free");
        t.join(imp, "#r");
        t.recv(a);
        t.say(imp, "#r", 1, "i am bob now");
        assert_eq!(kinds(&t.recv(imp)), vec![ErrorKind::Muted]);
        assert!(says(&t.recv(a)).is_empty(), "nobody heard the impostor");
        // A signed-in member's voice outlives its quit.
        let c = signed_up(&mut t, ip("198.51.100.30"), "carol");
        t.join(c, "#r");
        act(&mut t, a, "#r", ModAction::Voice(nick("carol")));
        t.send(c, &ClientMsg::Quit { reason: None });
        t.hub.handle_close(c, t.now);
        t.pump();
        assert_eq!(voiced(&mut t, a), vec!["carol".to_owned()]);
    }

    /// The settings' voiced list, as `a` is told it.
    fn voiced(t: &mut T, a: ConnId) -> Vec<String> {
        act(t, a, "#r", ModAction::Settings)
            .iter()
            .find_map(|m| match m {
                ServerMsg::Policy { voiced, .. } => {
                    Some(voiced.iter().map(|v| v.to_string()).collect())
                }
                _ => None,
            })
            .unwrap_or_default()
    }

    /// A restart ends the sessions of guests it does not take back (nc users, a binary
    /// client that never resumes): their voices are lifted then, as their quits would have,
    /// and the store is told. A voiced account keeps its voice.
    #[test]
    fn a_restart_lifts_the_voices_of_guests_it_did_not_take_back() {
        use crate::persist::{LoadedAccount, Write};
        let cfg = Config {
            durable: true,
            ..cfg()
        };
        let mut t = T::with(cfg.clone());
        let (a, _b) = founded(&mut t);
        act(&mut t, a, "#r", ModAction::Voice(nick("bob")));
        let c = signed_up(&mut t, ip("198.51.100.30"), "carol");
        t.join(c, "#r");
        act(&mut t, a, "#r", ModAction::Voice(nick("carol")));
        act(
            &mut t,
            a,
            "#r",
            ModAction::Mode(ModeChange::Moderated(true)),
        );
        let writes: Vec<Write> = t.batches.iter().flat_map(|b| b.writes.clone()).collect();
        let policy = writes
            .iter()
            .rev()
            .find_map(|w| match w {
                Write::RoomPolicy { room: r, policy } if r.as_str() == "#r" => policy.clone(),
                _ => None,
            })
            .expect("the settings are written");
        assert_eq!(policy.voiced.len(), 2);
        let accounts = writes
            .iter()
            .filter_map(|w| match w {
                Write::Account(record) => Some(LoadedAccount {
                    record: record.clone(),
                    rooms: Vec::new(),
                    read: Vec::new(),
                    keys: Vec::new(),
                    held: Vec::new(),
                }),
                _ => None,
            })
            .collect();
        let mut t2 = T::with(cfg);
        t2.hub.restore(
            crate::persist::Loaded {
                accounts,
                policies: vec![(room("#r"), policy)],
                ..Default::default()
            },
            t2.now,
        );
        t2.pump();
        let stored = t2
            .batches
            .iter()
            .flat_map(|b| b.writes.iter())
            .find_map(|w| match w {
                Write::RoomPolicy { room: r, policy } if r.as_str() == "#r" => policy.clone(),
                _ => None,
            })
            .expect("the lifted voice is written");
        assert_eq!(stored.voiced, vec![nick("carol")]);
        let imp = t2.bin("bob");
        t2.join(imp, "#r");
        t2.say(imp, "#r", 1, "i am bob now");
        assert_eq!(kinds(&t2.recv(imp)), vec![ErrorKind::Muted]);
    }

    /// The accounts `t`'s hub registered (as the store would load them), but those named in
    /// `removed`: what the hub reads after the operator's `natter-server account remove`.
    pub(super) fn accounts_but(t: &T, removed: &[&str]) -> Vec<crate::persist::LoadedAccount> {
        use crate::persist::Write;
        t.batches
            .iter()
            .flat_map(|b| b.writes.iter())
            .filter_map(|w| match w {
                Write::Account(record)
                    if !removed
                        .iter()
                        .any(|r| nick(r).folded() == record.name.folded()) =>
                {
                    Some(crate::persist::LoadedAccount {
                        record: record.clone(),
                        rooms: Vec::new(),
                        read: Vec::new(),
                        keys: Vec::new(),
                        held: Vec::new(),
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// The last settings of `r` the hub wrote to its store.
    fn stored_policy(t: &T, r: &str) -> Option<crate::moderation::Policy> {
        use crate::persist::Write;
        t.batches
            .iter()
            .flat_map(|b| b.writes.iter())
            .rev()
            .find_map(|w| match w {
                Write::RoomPolicy { room: x, policy } if x.as_str() == r => Some(policy.clone()),
                _ => None,
            })
            .expect("settings written")
    }

    /// The founder and operators of `r` as `c` is told them (`/mode #r`).
    fn founder_and_ops(t: &mut T, c: ConnId, r: &str) -> (Option<String>, Vec<String>) {
        act(t, c, r, ModAction::Settings)
            .iter()
            .find_map(|m| match m {
                ServerMsg::Policy { founder, ops, .. } => Some((
                    founder.as_ref().map(|f| f.to_string()),
                    ops.iter().map(|o| o.to_string()).collect(),
                )),
                _ => None,
            })
            .expect("settings")
    }

    /// The newcomer `n`, registered under a removed account's name, is no founder or operator
    /// of `r`: it cannot make operators, lock the topic, register the room (it has
    /// operators), or put anyone out.
    fn no_rights(t: &mut T, n: ConnId, r: &str, founder: Option<&str>) {
        let (now, ops) = founder_and_ops(t, n, r);
        assert_eq!(now.as_deref(), founder, "{r}");
        assert!(!ops.contains(&"alice".to_owned()), "{r}: {ops:?}");
        let mut actions = vec![
            ModAction::Op(nick("alice")),
            ModAction::Mode(ModeChange::TopicOps(false)),
            ModAction::Kick {
                nick: nick("bob"),
                reason: None,
            },
        ];
        if founder.is_none() {
            actions.push(ModAction::Register);
        }
        for action in actions {
            let got = act(t, n, r, action.clone());
            assert_eq!(
                kinds(&got),
                vec![ErrorKind::NotOperator],
                "{action:?}: {got:?}"
            );
        }
        t.send(
            n,
            &ClientMsg::Topic {
                room: room(r),
                topic: Some(text("mine now")),
            },
        );
        let got = t.recv(n);
        assert_eq!(kinds(&got), vec![ErrorKind::NotOperator], "{got:?}");
    }

    /// The operator removes alice's account (`natter-server account remove`, then the reload
    /// of the accounts): #r, which she founded, has no founder now; her operator status and
    /// voice in #o are lifted; members are told and the store gets the settings. Whoever
    /// registers "alice" next has none of it. The rooms keep their modes, topic and bans, and
    /// their operators keep running them.
    #[test]
    fn a_removed_accounts_rooms_do_not_pass_to_whoever_registers_its_name_next() {
        let mut t = T::with(Config {
            durable: true,
            ..cfg()
        });
        let (a, b) = founded(&mut t);
        let c = signed_up(&mut t, ip("198.51.100.30"), "carol");
        t.join(c, "#r");
        act(&mut t, a, "#r", ModAction::Op(nick("carol")));
        act(&mut t, a, "#r", ModAction::Mode(ModeChange::TopicOps(true)));
        t.send(
            a,
            &ClientMsg::Topic {
                room: room("#r"),
                topic: Some(text("alice's room")),
            },
        );
        act(
            &mut t,
            c,
            "#r",
            ModAction::Ban {
                target: "198.18.0.0/16".into(),
                duration: None,
                reason: None,
            },
        );
        // carol founds #o, where alice is an operator and voiced.
        t.join(c, "#o");
        act(&mut t, c, "#o", ModAction::Register);
        act(&mut t, c, "#o", ModAction::Mode(ModeChange::TopicOps(true)));
        t.join(a, "#o");
        act(&mut t, c, "#o", ModAction::Op(nick("alice")));
        act(&mut t, c, "#o", ModAction::Voice(nick("alice")));
        for x in [a, b, c] {
            t.recv(x);
        }

        let accounts = accounts_but(&t, &["alice"]);
        assert_eq!(accounts.len(), 1, "carol stays");
        t.hub.load_accounts(accounts);
        t.pump();
        let removed = |got: &[ServerMsg], r: &str, change: &str| {
            got.iter().any(|m| {
                matches!(m, ServerMsg::Event(ev) if ev.room.as_str() == r
                    && ev.from.as_str() == "alice"
                    && matches!(&ev.kind, EventKind::Mode { change: x } if x.as_str() == change))
            })
        };
        let got = t.recv(b);
        assert!(
            removed(&got, "#r", crate::moderation::ACCOUNT_REMOVED_FOUNDER),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Policy { founder: None, ops, .. }
                if ops.iter().map(|o| o.as_str()).eq(["carol"]))),
            "members get the new settings: {got:?}"
        );
        let got = t.recv(c);
        assert!(
            removed(&got, "#o", crate::moderation::ACCOUNT_REMOVED),
            "{got:?}"
        );
        let r = stored_policy(&t, "#r").expect("#r keeps its settings");
        assert_eq!(r.founder, None);
        assert_eq!(r.ops, vec![nick("carol")]);
        assert!(r.modes.topic_ops, "modes stay");
        assert_eq!(r.bans.len(), 1, "bans stay");
        let o = stored_policy(&t, "#o").expect("#o keeps its settings");
        assert_eq!(o.founder, Some(nick("carol")));
        assert!(o.ops.is_empty() && o.voiced.is_empty(), "{o:?}");

        // alice's device goes; a newcomer registers the name.
        t.send(a, &ClientMsg::Quit { reason: None });
        t.hub.handle_close(a, t.now);
        t.pump();
        let n = signed_up(&mut t, ip("203.0.113.9"), "alice");
        t.join(n, "#r");
        t.join(n, "#o");
        no_rights(&mut t, n, "#r", None);
        no_rights(&mut t, n, "#o", Some("carol"));
        t.send(
            n,
            &ClientMsg::Moderate {
                room: room("#o"),
                action: ModAction::Mode(ModeChange::Moderated(true)),
            },
        );
        t.recv(n);
        // #r keeps its topic; carol, its operator, runs it and may register it.
        t.send(
            c,
            &ClientMsg::Topic {
                room: room("#r"),
                topic: Some(text("carol's now")),
            },
        );
        assert!(kinds(&t.recv(c)).is_empty());
        let got = act(&mut t, c, "#r", ModAction::Register);
        assert!(kinds(&got).is_empty(), "{got:?}");
        assert_eq!(founder_and_ops(&mut t, n, "#r").0.as_deref(), Some("carol"));
    }

    /// The operator removes alice's account and adds "alice" again before the server rereads
    /// its accounts (`account remove alice`, `account add alice`, then SIGHUP): the store's
    /// alice is another account, registered later. The old one's rights go as if the reload
    /// had come between the two, and its device is told it is a guest; a password set by the
    /// operator (`account passwd`: the same account, its time kept) leaves them.
    #[test]
    fn an_account_removed_and_added_again_between_two_reloads_keeps_no_rights() {
        let mut t = T::with(Config {
            durable: true,
            ..cfg()
        });
        let (a, b) = founded(&mut t);
        t.recv(b);
        let founder = |t: &T| stored_policy(t, "#r").and_then(|p| p.founder);

        // `account passwd alice`: the same account.
        let mut accounts = accounts_but(&t, &[]);
        for la in &mut accounts {
            la.record.hash = crate::accounts::PasswordHash("$argon2id$passwd".into());
        }
        t.hub.load_accounts(accounts);
        t.pump();
        assert_eq!(
            founder(&t),
            Some(nick("alice")),
            "a new password keeps the rights"
        );
        t.recv(a);
        t.recv(b);

        // `account remove alice`, `account add alice`: another account of the name.
        let mut accounts = accounts_but(&t, &[]);
        for la in &mut accounts {
            la.record.hash = crate::accounts::PasswordHash("$argon2id$newcomer".into());
            la.record.created = Millis(la.record.created.0 + 60_000);
        }
        t.hub.load_accounts(accounts);
        t.pump();
        assert_eq!(founder(&t), None, "the old account's rights are lifted");
        assert_eq!(t.hub.account_count(), 1, "the new account is there");
        let got = t.recv(a);
        assert!(
            kinds(&got).contains(&ErrorKind::NotSignedIn),
            "the old account's device is a guest now: {got:?}"
        );
        let got = t.recv(b);
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Policy { founder: None, .. })),
            "members hear #r has no founder: {got:?}"
        );
    }

    /// A room whose founder's account was removed keeps its settings when its last member
    /// leaves, store or not, as a registered room does: a ban set there still holds.
    #[test]
    fn a_room_whose_founder_was_removed_keeps_its_bans_when_emptied() {
        let mut t = T::with(cfg());
        let (a, b) = founded(&mut t);
        act(
            &mut t,
            a,
            "#r",
            ModAction::Ban {
                target: "nick:mallory".into(),
                duration: None,
                reason: None,
            },
        );
        t.hub.load_accounts(Vec::new());
        t.pump();
        for c in [a, b] {
            t.send(c, &ClientMsg::Quit { reason: None });
            t.hub.handle_close(c, t.now);
        }
        t.pump();
        let m = t.bin("mallory");
        let got = t.join(m, "#r");
        assert_eq!(kinds(&got), vec![ErrorKind::Banned], "{got:?}");
    }

    /// An account removed while the server was down (`natter-server account remove` on the
    /// stopped server's store): at the next start its rooms' founder and operator go, as the
    /// reload would have done, and the store is told.
    #[test]
    fn an_account_removed_while_the_server_was_down_loses_its_rooms_at_the_next_start() {
        let cfg = Config {
            durable: true,
            ..cfg()
        };
        let mut t = T::with(cfg.clone());
        let (a, _b) = founded(&mut t);
        let c = signed_up(&mut t, ip("198.51.100.30"), "carol");
        t.join(c, "#r");
        act(&mut t, a, "#r", ModAction::Op(nick("carol")));
        act(&mut t, a, "#r", ModAction::Mode(ModeChange::TopicOps(true)));
        t.join(c, "#o");
        act(&mut t, c, "#o", ModAction::Register);
        act(&mut t, c, "#o", ModAction::Mode(ModeChange::TopicOps(true)));
        t.join(a, "#o");
        act(&mut t, c, "#o", ModAction::Op(nick("alice")));
        let r = stored_policy(&t, "#r").unwrap();
        let o = stored_policy(&t, "#o").unwrap();
        let accounts = accounts_but(&t, &["alice"]);

        let mut t2 = T::with(cfg);
        t2.hub.restore(
            crate::persist::Loaded {
                accounts,
                policies: vec![(room("#r"), r), (room("#o"), o)],
                ..Default::default()
            },
            t2.now,
        );
        t2.pump();
        let r = stored_policy(&t2, "#r").expect("the lifted founder is written");
        assert_eq!(r.founder, None);
        assert_eq!(r.ops, vec![nick("carol")]);
        assert!(r.modes.topic_ops);
        let o = stored_policy(&t2, "#o").expect("the lifted operator is written");
        assert_eq!(o.founder, Some(nick("carol")));
        assert!(o.ops.is_empty());
        let n = signed_up(&mut t2, ip("203.0.113.9"), "alice");
        t2.join(n, "#r");
        t2.join(n, "#o");
        no_rights(&mut t2, n, "#r", None);
        no_rights(&mut t2, n, "#o", Some("carol"));
        // Nothing more at the restart after: carol is an account, and stays.
        let c2 = signed_up(&mut t2, ip("198.51.100.31"), "dave");
        t2.join(c2, "#r");
        assert_eq!(
            founder_and_ops(&mut t2, c2, "#r").1,
            vec!["carol".to_owned()]
        );
    }

    /// The operator removes alice's account and adds "alice" again while the server is
    /// stopped (`account remove alice`, `account add alice`, then the start): the store's alice
    /// is another account, registered later than the one the server last held
    /// (`Loaded::known`). The rooms name their founder, operators and voices by name; the
    /// start tells the two apart by the registration time: the old account's rights are lifted
    /// (the store written), and its resume session ends rather than come back as the new
    /// account's device. The new alice has none of it; she is taken up (written as read), and
    /// the start after, which finds her held as she is, lifts and writes nothing.
    #[test]
    fn an_account_removed_and_added_again_while_the_server_was_down_keeps_no_rights() {
        use crate::persist::{Loaded, Write};
        let cfg = Config {
            durable: true,
            ..cfg()
        };
        let mut t = T::with(cfg.clone());
        let (a, _b) = founded(&mut t);
        let c = signed_up(&mut t, ip("198.51.100.30"), "carol");
        t.join(c, "#r");
        act(&mut t, a, "#r", ModAction::Op(nick("carol")));
        act(&mut t, a, "#r", ModAction::Mode(ModeChange::TopicOps(true)));
        t.join(c, "#o");
        act(&mut t, c, "#o", ModAction::Register);
        act(&mut t, c, "#o", ModAction::Mode(ModeChange::TopicOps(true)));
        t.join(a, "#o");
        act(&mut t, c, "#o", ModAction::Op(nick("alice")));
        act(&mut t, c, "#o", ModAction::Voice(nick("alice")));
        let policies = vec![
            (room("#r"), stored_policy(&t, "#r").unwrap()),
            (room("#o"), stored_policy(&t, "#o").unwrap()),
        ];
        let held = accounts_but(&t, &[]);
        let mut accounts = held.clone();
        for la in &mut accounts {
            if la.record.name.as_str() == "alice" {
                // Another registration (a minute later); the same password, to sign in below.
                la.record.created = Millis(la.record.created.0 + 60_000);
            }
        }
        let sessions = super::durable::stored(&t).sessions;
        let old: Vec<_> = sessions
            .iter()
            .filter(|s| s.nick.as_str() == "alice")
            .map(|s| s.token)
            .collect();
        assert!(
            !old.is_empty(),
            "the old alice's device has a resume session"
        );
        let writes = |t: &T| -> Vec<Write> {
            t.batches
                .iter()
                .flat_map(|b| b.writes.iter().cloned())
                .collect()
        };

        let mut t2 = T::with(cfg.clone());
        t2.hub.restore(
            Loaded {
                accounts: accounts.clone(),
                policies,
                sessions,
                known: held.iter().map(|la| la.record.clone()).collect(),
                ..Default::default()
            },
            t2.now,
        );
        t2.pump();
        let r = stored_policy(&t2, "#r").expect("the lifted founder is written");
        assert_eq!(r.founder, None);
        let o = stored_policy(&t2, "#o").expect("the lifted operator is written");
        assert_eq!(o.founder, Some(nick("carol")));
        assert!(o.ops.is_empty() && o.voiced.is_empty(), "{o:?}");
        let w = writes(&t2);
        for token in &old {
            assert!(
                w.contains(&Write::EndSession(*token)),
                "the old account's session ends: {w:?}"
            );
        }
        let new = accounts
            .iter()
            .find(|la| la.record.name.as_str() == "alice")
            .unwrap()
            .record
            .clone();
        assert!(
            w.contains(&Write::Account(new.clone())),
            "the new alice is taken up as read"
        );
        assert!(
            !w.iter()
                .any(|x| matches!(x, Write::Account(r) if r.name.as_str() == "carol")),
            "carol, held as she is, is not written"
        );
        let n = t2.bin("newcomer");
        t2.send(
            n,
            &ClientMsg::SignIn {
                account: nick("alice"),
                proof: crate::wire::Proof::Password(Password("correct horse".into())),
                remember: false,
            },
        );
        let got = t2.recv(n);
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::SignedIn { .. })),
            "{got:?}"
        );
        t2.join(n, "#r");
        t2.join(n, "#o");
        no_rights(&mut t2, n, "#r", None);
        no_rights(&mut t2, n, "#o", Some("carol"));

        // The next start finds every account held as it is: nothing lifted, nothing taken up.
        let policies = vec![
            (room("#r"), stored_policy(&t2, "#r").unwrap()),
            (room("#o"), stored_policy(&t2, "#o").unwrap()),
        ];
        let mut t3 = T::with(cfg);
        t3.hub.restore(
            Loaded {
                known: accounts.iter().map(|la| la.record.clone()).collect(),
                accounts,
                policies,
                ..Default::default()
            },
            t3.now,
        );
        t3.pump();
        let w = writes(&t3);
        assert!(
            !w.iter()
                .any(|x| matches!(x, Write::RoomPolicy { .. } | Write::Account(_))),
            "{w:?}"
        );
    }

    /// The operator's `account passwd` (a new hash, read at the reload of the accounts) lifts
    /// none of the account's rooms' rights: it is the same account, not a removed one.
    #[test]
    fn a_password_set_by_the_operator_lifts_no_room_rights() {
        let mut t = T::with(Config {
            durable: true,
            ..cfg()
        });
        let (a, b) = founded(&mut t);
        let c = signed_up(&mut t, ip("198.51.100.30"), "carol");
        t.join(c, "#o");
        act(&mut t, c, "#o", ModAction::Register);
        t.join(a, "#o");
        act(&mut t, c, "#o", ModAction::Op(nick("alice")));
        act(&mut t, c, "#o", ModAction::Voice(nick("alice")));
        for x in [a, b, c] {
            t.recv(x);
        }
        let new_hash = accounts_but(&t, &["alice"])[0].record.hash.clone();
        let mut accounts = accounts_but(&t, &[]);
        for la in &mut accounts {
            if la.record.name.as_str() == "alice" {
                assert_ne!(la.record.hash, new_hash, "a new password");
                la.record.hash = new_hash.clone();
            }
        }
        t.hub.load_accounts(accounts);
        t.pump();
        let lifted = |got: &[ServerMsg]| {
            got.iter().any(|m| {
                matches!(m, ServerMsg::Event(ev) if matches!(&ev.kind,
                    EventKind::Mode { change } if change.as_str().starts_with("account removed")))
            })
        };
        let got = t.recv(b);
        assert!(!lifted(&got), "{got:?}");
        let got = t.recv(c);
        assert!(!lifted(&got), "{got:?}");
        assert_eq!(founder_and_ops(&mut t, b, "#r").0.as_deref(), Some("alice"));
        let o = stored_policy(&t, "#o").expect("#o's settings");
        assert_eq!(
            (o.ops, o.voiced),
            (vec![nick("alice")], vec![nick("alice")])
        );
    }
}

mod admins {
    use super::*;
    use crate::types::Password;
    use crate::wire::AdminAction;

    fn cfg() -> Config {
        Config {
            flood_burst: 1000,
            ping_after: Millis(24 * 3_600_000),
            accounts: AccountsConfig {
                admins: vec![nick("root")],
                ..config().accounts
            },
            ..config()
        }
    }

    fn account(t: &mut T, name: &str) -> ConnId {
        signed_up(t, LOCAL, name)
    }

    #[test]
    fn an_admin_name_nobody_registered_is_pointed_out_while_anyone_may_register() {
        let mut t = T::with(cfg());
        assert_eq!(t.hub.unclaimed_admins(), vec![nick("root")]);
        account(&mut t, "root");
        assert!(
            t.hub.unclaimed_admins().is_empty(),
            "root is an account now"
        );
        let closed = T::with(Config {
            accounts: AccountsConfig {
                registration: Registration::Closed,
                ..cfg().accounts
            },
            ..cfg()
        });
        assert!(
            closed.hub.unclaimed_admins().is_empty(),
            "only the operator makes accounts: nobody can claim it"
        );
    }

    /// An nc admin acting in a room it is not in hears what it did, in the members' words
    /// (it heard nothing: a kick or a mode change looked lost).
    #[test]
    fn an_nc_admin_hears_what_it_did_in_a_room_it_is_not_in() {
        let mut t = T::with(cfg());
        let (r, _) = t.txt();
        t.line(r, "/nick root");
        t.line(r, "/register correct horse");
        let (e, eve) = t.txt();
        t.line(e, "/join #far");
        let a = account(&mut t, "alice");
        t.join(a, "#far");
        t.lines(r);
        t.line(r, &format!("/kick #far {eve} go"));
        assert_eq!(t.lines(r), [format!("-- root put {eve} out of #far (go)")]);
        t.line(r, "/mode #far +m");
        assert_eq!(
            t.lines(r),
            ["-- root set #far +m (moderated: only operators and voiced members speak)"]
        );
        // A refusal is still an error, and a question still its answer alone.
        t.line(r, "/kick #far nobody");
        assert_eq!(t.lines(r), ["ERROR: nobody is called nobody"]);
        t.line(r, "/bans #far");
        assert!(!t.lines(r).iter().any(|l| l.contains("root set")));
    }

    /// A server ban is lifted as a room's is: nicks and accounts without regard to case, and
    /// the nick of a signed-in user it was set on lifts its account's ban (it took
    /// `/gunban nick:Mallory` exactly as listed, and `/gban eve` could not be undone by name).
    #[test]
    fn a_server_unban_takes_nicks_as_a_rooms_unban_does() {
        let mut t = T::with(cfg());
        let root = account(&mut t, "root");
        let admin = |t: &mut T, action: AdminAction| {
            t.send(root, &ClientMsg::Admin(action));
            t.recv(root)
        };
        let ban = |target: &str| AdminAction::Ban {
            target: target.into(),
            duration: None,
            reason: None,
        };
        let unban = |target: &str| AdminAction::Unban {
            target: target.into(),
        };
        let listed = |t: &mut T| -> Vec<String> {
            let got = admin(t, AdminAction::Bans);
            got.iter()
                .find_map(|m| match m {
                    ServerMsg::ServerBans { bans } => {
                        Some(bans.iter().map(|b| b.mask.to_string()).collect())
                    }
                    _ => None,
                })
                .expect("the list")
        };
        admin(&mut t, ban("nick:Mallory"));
        // The same nick again in other letters is the same ban, not a second one.
        admin(&mut t, ban("nick:MALLORY"));
        assert_eq!(listed(&mut t), ["nick:MALLORY"]);
        let got = admin(&mut t, unban("nick:mallory"));
        assert!(errors(&got).is_empty(), "{got:?}");
        assert!(listed(&mut t).is_empty());
        // A signed-in user banned by nick is banned by account; its nick lifts it.
        let e = signed_up(&mut t, ip("203.0.113.7"), "Eve");
        admin(&mut t, ban("eve"));
        assert!(t.recv(e).iter().any(|m| matches!(m, ServerMsg::Bye { .. })));
        assert_eq!(listed(&mut t), ["account:Eve"]);
        let got = admin(&mut t, unban("EVE"));
        assert!(errors(&got).is_empty(), "{got:?}");
        assert!(listed(&mut t).is_empty());
        let got = admin(&mut t, unban("eve"));
        assert_eq!(errors(&got).len(), 1, "nothing left to lift: {got:?}");
    }

    /// A present user banned from the server hears why once on each door and is closed: an
    /// `Error` and a `Bye` in the binary protocol (as before), one `ERROR:` line on nc (an
    /// error and a goodbye there said the same words twice).
    #[test]
    fn a_server_ban_of_a_present_user_says_why_once_and_closes() {
        let mut t = T::with(cfg());
        let root = account(&mut t, "root");
        let (m, _, _) = t.bin_from(ip("203.0.113.66"), "mallory");
        let (o, onick) = t.txt();
        for target in ["mallory".to_owned(), onick] {
            t.send(
                root,
                &ClientMsg::Admin(AdminAction::Ban {
                    target,
                    duration: None,
                    reason: Some(text("spam")),
                }),
            );
        }
        let got = t.recv(m);
        assert!(
            matches!(
                &got[..],
                [.., ServerMsg::Error { kind: ErrorKind::Banned, detail, .. }, ServerMsg::Bye { reason }]
                    if detail.contains("spam") && reason == detail
            ),
            "{got:?}"
        );
        assert!(t.closed(m));
        let lines = t.lines(o);
        let said: Vec<_> = lines.iter().filter(|l| l.contains("spam")).collect();
        assert_eq!(said.len(), 1, "{lines:?}");
        assert!(said[0].starts_with("ERROR: "), "{lines:?}");
        assert!(t.closed(o));
    }

    /// A killed always-on account quits its rooms (they see it go) and is out of them in the
    /// store too: a restart, or a `/close` of one of them meanwhile, used to find it still
    /// there and put it back in (the store kept the rooms it was in before the kill).
    #[test]
    fn a_killed_account_is_out_of_its_rooms_in_the_store_too() {
        use crate::persist::Write;
        let mut t = T::with(Config {
            durable: true,
            ..cfg()
        });
        let root = account(&mut t, "root");
        let v = account(&mut t, "victor");
        t.join(v, "#x");
        let stored = |t: &T| {
            t.batches
                .iter()
                .flat_map(|b| b.writes.iter())
                .rev()
                .find_map(|w| match w {
                    Write::AccountRooms { account, rooms } if account.as_str() == "victor" => {
                        Some(rooms.clone())
                    }
                    _ => None,
                })
                .expect("victor's rooms are written")
        };
        assert!(stored(&t).contains(&room("#x")));
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Kill {
                nick: nick("victor"),
                reason: None,
            }),
        );
        assert!(t.closed(v));
        assert!(!t.hub.is_member(&nick("victor"), &room("#x")));
        assert_eq!(stored(&t), Vec::<RoomName>::new());
    }

    /// A server ban's audit line says until when and why, as a room's does (it said only
    /// `server ban nick:eve`: `natter-server audit` never showed how long nor why).
    #[test]
    fn the_audit_line_of_a_server_ban_says_until_when_and_why() {
        let mut t = T::with(Config {
            durable: true,
            ..cfg()
        });
        let root = account(&mut t, "root");
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Ban {
                target: "nick:eve".into(),
                duration: Some(Millis(3_600_000)),
                reason: Some(text("spam")),
            }),
        );
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Ban {
                target: "nick:zed".into(),
                duration: None,
                reason: None,
            }),
        );
        let audit: Vec<String> = t
            .batches
            .iter()
            .flat_map(|b| b.writes.iter())
            .filter_map(|w| match w {
                crate::persist::Write::Audit(r) => Some(r.action.clone()),
                _ => None,
            })
            .collect();
        let until = Millis(t.now.0 + 3_600_000).rfc3339();
        assert!(
            audit.contains(&format!("server ban nick:eve until {until}: spam")),
            "{audit:?}"
        );
        assert!(
            audit.contains(&"server ban nick:zed".to_owned()),
            "{audit:?}"
        );
    }

    /// A server ban of an address holds nc users too: a text connection says hello without a
    /// nick, and the check built a stand-in nick `*`, which is no nick, so it found no ban and
    /// every nc user from a banned network was let in (binary ones were refused).
    #[test]
    fn a_server_ban_of_an_address_refuses_nc_at_hello() {
        let mut t = T::with(cfg());
        let root = account(&mut t, "root");
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Ban {
                target: "203.0.113.0/24".into(),
                duration: None,
                reason: Some(text("spam")),
            }),
        );
        let c = t.hub.accept(ip("203.0.113.9"), t.now).unwrap();
        t.advance(t.hub.config().text_detect_wait.0);
        let l = t.lines(c);
        assert!(
            l.iter()
                .any(|l| l.contains("banned from this server: spam")),
            "{l:?}"
        );
        assert!(!l.iter().any(|l| l.contains("Welcome")), "{l:?}");
        assert!(t.closed(c));
        // Another network is let in.
        let ok = t.hub.accept(ip("198.51.100.9"), t.now).unwrap();
        t.advance(t.hub.config().text_detect_wait.0);
        assert!(t.lines(ok).iter().any(|l| l.contains("Welcome")));
        assert!(!t.closed(ok));
    }

    /// An admin may not ban itself from the server: its account, or a network its connection
    /// is on (it was kept out at its next sign-in, with nobody to lift the ban when it was the
    /// only admin). Others' networks are banned as before.
    #[test]
    fn an_admin_may_not_ban_itself_from_the_server() {
        let mut t = T::with(cfg());
        let root = account(&mut t, "root");
        for target in ["account:root", "account:ROOT", "127.0.0.0/8", "127.0.0.1"] {
            t.send(
                root,
                &ClientMsg::Admin(AdminAction::Ban {
                    target: target.into(),
                    duration: None,
                    reason: None,
                }),
            );
            let got = t.recv(root);
            assert!(
                got.iter().any(|x| matches!(x, ServerMsg::Error { kind: ErrorKind::Invalid, detail, .. } if detail.starts_with("not yourself"))),
                "{target}: {got:?}"
            );
        }
        assert!(t.hub.server_bans.is_empty());
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Ban {
                target: "203.0.113.0/24".into(),
                duration: None,
                reason: None,
            }),
        );
        assert_eq!(t.hub.server_bans.len(), 1);
    }

    #[test]
    fn admins_kill_wall_and_ban_from_the_server_others_may_not() {
        let mut t = T::with(cfg());
        let root = account(&mut t, "root");
        let (m, _, _) = t.bin_from(ip("203.0.113.66"), "mallory");
        let (o, _) = t.txt();
        // Not an admin.
        t.send(m, &ClientMsg::Admin(AdminAction::Wall(text("hi all"))));
        assert!(t.recv(m).iter().any(|x| matches!(
            x,
            ServerMsg::Error {
                kind: ErrorKind::NotOperator,
                ..
            }
        )));
        // A wall reaches everyone, in each one's words.
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Wall(text("maintenance at noon"))),
        );
        assert!(t.recv(m).iter().any(
            |x| matches!(x, ServerMsg::Wall { text, .. } if text.as_str() == "maintenance at noon")
        ));
        assert!(
            t.lines(o)
                .iter()
                .any(|l| l == "-- [server] root: maintenance at noon")
        );
        // The metrics count the wall as the server's, not mallory's refused one.
        let s = t.hub.stats();
        assert_eq!((s.moderation_server, s.moderation_room), (1, 0), "{s:?}");
        // A server ban of a present guest: disconnected, and its address stays out.
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Ban {
                target: "mallory".into(),
                duration: Some(Millis(3_600_000)),
                reason: Some(text("spam")),
            }),
        );
        assert!(t.closed(m));
        let back = t.hub.accept(ip("203.0.113.66"), t.now).unwrap();
        t.feed(back, &MAGIC);
        t.send(
            back,
            &ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                nick: nick("innocent"),
                resume: None,
            },
        );
        let got = t.recv(back);
        assert!(got.iter().any(|x| matches!(x, ServerMsg::Error { kind: ErrorKind::Banned, detail, .. } if detail.contains("spam"))), "{got:?}");
        assert!(t.closed(back));
        t.send(root, &ClientMsg::Admin(AdminAction::Bans));
        assert!(
            t.recv(root)
                .iter()
                .any(|x| matches!(x, ServerMsg::ServerBans { bans } if bans.len() == 2))
        );
        // Kill: every connection of an account goes, and the always-on user quits.
        let v = account(&mut t, "victor");
        t.join(v, "#x");
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Kill {
                nick: nick("victor"),
                reason: None,
            }),
        );
        // Told who and why, as a goodbye: a kill is not a server ban (no `Banned` error).
        let got = t.recv(v);
        assert!(
            matches!(got.last(), Some(ServerMsg::Bye { reason }) if reason == "Killed (root)"),
            "{got:?}"
        );
        assert!(
            !got.iter().any(|x| matches!(x, ServerMsg::Error { .. })),
            "{got:?}"
        );
        assert!(t.closed(v));
        assert!(!t.hub.is_member(&nick("victor"), &room("#x")));
        // A banned account cannot sign in.
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Ban {
                target: "account:victor".into(),
                duration: None,
                reason: None,
            }),
        );
        let again = t.bin("someone");
        t.send(
            again,
            &ClientMsg::SignIn {
                account: nick("victor"),
                proof: crate::wire::Proof::Password(Password("correct horse".into())),
                remember: false,
            },
        );
        assert!(t.recv(again).iter().any(|x| matches!(
            x,
            ServerMsg::Error {
                kind: ErrorKind::Banned,
                ..
            }
        )));
        assert!(t.closed(again));
    }

    /// A server ban of someone absent, and an unban, are no room's event: an nc admin is told
    /// what was done (it heard nothing at all).
    #[test]
    fn an_nc_admin_hears_its_server_bans_and_unbans() {
        let mut t = T::with(cfg());
        let bin_root = account(&mut t, "root");
        let (root, _) = t.txt();
        t.line(root, "/login root correct horse");
        assert!(
            t.lines(root)
                .iter()
                .any(|l| l == "-- you are signed in as root")
        );
        t.recv(bin_root);
        t.line(root, "/gban 203.0.113.0/24 1h");
        assert_eq!(
            t.lines(root),
            ["-- 203.0.113.0/24 is banned from the server"]
        );
        t.line(root, "/gunban 203.0.113.0/24");
        assert_eq!(
            t.lines(root),
            ["-- 203.0.113.0/24 is no longer banned from the server"]
        );
        // The binary device of the same account hears nothing new: the answer is the acting
        // connection's (a binary one gets `Done`, see below).
        assert!(t.recv(bin_root).is_empty());
    }

    /// What a binary admin's action did where no room's event tells it comes as `Done`, in
    /// the words nc reads (version 10): a server ban and unban, a takeover and a close of a
    /// room it is not in, a kick there, a change that changes nothing. A client of version 9
    /// (which cannot decode it) hears nothing for them, as before.
    #[test]
    fn a_binary_admin_hears_what_its_actions_did_from_version_10_on() {
        use crate::moderation::ModeChange;
        use crate::wire::ModAction;
        let mut t = T::with(cfg());
        let alice = account(&mut t, "alice");
        t.join(alice, "#club");
        let eve = t.bin("eve");
        t.join(eve, "#club");
        let root = account(&mut t, "root");
        let done = |got: Vec<ServerMsg>| -> Vec<String> {
            got.into_iter()
                .filter_map(|m| match m {
                    ServerMsg::Done(w) => Some(w.to_string()),
                    _ => None,
                })
                .collect()
        };
        let admin = |t: &mut T, c, a| {
            t.send(c, &ClientMsg::Admin(a));
            t.recv(c)
        };
        let gban = AdminAction::Ban {
            target: "203.0.113.0/24".into(),
            duration: None,
            reason: None,
        };
        let gunban = AdminAction::Unban {
            target: "203.0.113.0/24".into(),
        };
        assert_eq!(
            done(admin(&mut t, root, gban.clone())),
            ["203.0.113.0/24 is banned from the server"]
        );
        assert_eq!(
            done(admin(&mut t, root, gunban.clone())),
            ["203.0.113.0/24 is no longer banned from the server"]
        );
        let takeover = AdminAction::TakeOver(room("#club"));
        assert_eq!(
            done(admin(&mut t, root, takeover.clone())),
            ["you took over #club: you are its founder"]
        );
        let kick = ModAction::Kick {
            nick: nick("eve"),
            reason: Some(text("spam")),
        };
        t.send(
            root,
            &ClientMsg::Moderate {
                room: room("#club"),
                action: kick,
            },
        );
        assert_eq!(done(t.recv(root)), ["root put eve out of #club (spam)"]);
        // Put out of a memory-only room as its last member: the room goes, after the admin
        // is told (it was gone before its events could be told).
        t.join(eve, "#solo");
        t.send(
            root,
            &ClientMsg::Moderate {
                room: room("#solo"),
                action: ModAction::Kick {
                    nick: nick("eve"),
                    reason: None,
                },
            },
        );
        assert_eq!(done(t.recv(root)), ["root put eve out of #solo"]);
        assert!(
            !t.hub.rooms.contains_key(&room("#solo")),
            "the empty room goes"
        );
        t.send(
            root,
            &ClientMsg::Moderate {
                room: room("#club"),
                action: ModAction::Mode(ModeChange::Moderated(false)),
            },
        );
        assert_eq!(done(t.recv(root)), ["-m changes nothing in #club"]);
        let close = AdminAction::Close {
            room: room("#club"),
            reason: None,
        };
        assert_eq!(
            done(admin(&mut t, root, close)),
            ["you closed #club: its 1 member left it"]
        );

        // A version-9 device of the same account: the same actions, no `Done`, nothing it
        // cannot decode.
        let old = t.hub.accept(LOCAL, t.now).unwrap();
        t.feed(old, &MAGIC);
        t.send(
            old,
            &ClientMsg::Hello {
                version: 9,
                nick: nick("root"),
                resume: None,
            },
        );
        t.send(
            old,
            &ClientMsg::SignIn {
                account: nick("root"),
                proof: crate::wire::Proof::Password(Password("correct horse".into())),
                remember: false,
            },
        );
        assert!(
            t.recv(old)
                .iter()
                .any(|m| matches!(m, ServerMsg::SignedIn { .. }))
        );
        t.recv(root);
        t.join(alice, "#club");
        for a in [gban, gunban, takeover] {
            assert_eq!(done(admin(&mut t, old, a)), Vec::<String>::new());
        }
    }

    /// An nc operator whose change changes nothing hears so (IRC servers say nothing, and
    /// programs need no answer): before, `/deop` of someone who is no operator was silence.
    #[test]
    fn an_nc_operators_change_that_changes_nothing_is_said() {
        let mut t = T::with(cfg());
        account(&mut t, "alice");
        let (a, _) = t.txt();
        t.line(a, "/login alice correct horse");
        t.line(a, "/join #r");
        t.line(a, "/register #r");
        let (b, bob) = t.txt();
        t.line(b, "/join #r");
        t.lines(a);
        for (cmd, want) in [
            (
                format!("/deop {bob}"),
                format!("-- {bob} is not an operator of #r"),
            ),
            (
                format!("/devoice {bob}"),
                format!("-- {bob} is not voiced in #r"),
            ),
            (
                format!("/voice {bob}"),
                format!("-- alice set #r +v {bob} ({bob} may speak while #r is moderated)"),
            ),
            (
                format!("/voice {bob}"),
                format!("-- {bob} is voiced in #r already"),
            ),
            (
                "/mode +m".to_owned(),
                "-- alice set #r +m (moderated: only operators and voiced members speak)"
                    .to_owned(),
            ),
            (
                "/mode +m".to_owned(),
                "-- +m changes nothing in #r".to_owned(),
            ),
            (
                "/mode -k".to_owned(),
                "-- -k changes nothing in #r".to_owned(),
            ),
        ] {
            t.line(a, &cmd);
            let got = t.lines(a);
            assert!(got.contains(&want), "{cmd}: {got:?}");
        }
        // bob heard +m once, and nothing of the changes that changed nothing.
        let heard = t.lines(b);
        let said = |w: &str| heard.iter().filter(|l| l.contains(w)).count();
        assert_eq!((said("alice set #r +m"), said("-k")), (1, 0), "{heard:?}");
        // A kick of someone a ban keeps out is not refused: bob, whom the ban put out, and
        // carol, never in #r (the words said "out of #r already", as if she had been).
        let (_c, carol) = t.txt();
        for who in [&bob, &carol] {
            t.line(a, &format!("/ban #r {who}"));
            t.lines(a);
            t.line(a, &format!("/kick {who} go away"));
            let got = t.lines(a);
            let want = format!("-- {who} is not in #r: a ban keeps them out");
            assert!(got.contains(&want), "{who}: {got:?}");
        }
    }

    /// A ban on a nick also keeps a user already connected under another nick from renaming
    /// to it: a server ban everywhere, a room's ban in that room.
    #[test]
    fn a_banned_nick_cannot_be_taken_by_a_rename() {
        use crate::wire::ModAction;
        let mut t = T::with(cfg());
        let root = account(&mut t, "root");
        let alice = account(&mut t, "alice");
        t.join(alice, "#club");
        t.send(
            alice,
            &ClientMsg::Moderate {
                room: room("#club"),
                action: ModAction::Register,
            },
        );
        let (g, _, _) = t.bin_from(ip("203.0.113.7"), "guesty");
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Ban {
                target: "nick:eve".into(),
                duration: Some(Millis(3_600_000)),
                reason: None,
            }),
        );
        t.recv(g);
        t.send(g, &ClientMsg::Nick { nick: nick("Eve") });
        let got = t.recv(g);
        assert!(
            errors(&got).iter().any(
                |(k, _, d)| *k == ErrorKind::NickTaken && d.contains("banned from this server")
            ),
            "{got:?}"
        );
        assert_eq!(t.hub.nick(g).map(|n| n.as_str()), Some("guesty"));
        // bob is banned from #club by nick; back as bob2, in the room, he cannot be bob again.
        let (b, _, _) = t.bin_from(ip("203.0.113.8"), "bob");
        t.join(b, "#club");
        t.send(
            alice,
            &ClientMsg::Moderate {
                room: room("#club"),
                action: ModAction::Ban {
                    target: "nick:bob".into(),
                    duration: None,
                    reason: None,
                },
            },
        );
        let (b2, _, _) = t.bin_from(ip("203.0.113.9"), "bob2");
        t.join(b2, "#club");
        t.send(b, &ClientMsg::Quit { reason: None });
        t.recv(b2);
        t.send(b2, &ClientMsg::Nick { nick: nick("bob") });
        let got = t.recv(b2);
        assert!(
            errors(&got)
                .iter()
                .any(|(k, _, d)| *k == ErrorKind::NickTaken && d.contains("banned from #club")),
            "{got:?}"
        );
        assert!(!t.hub.is_member(&nick("bob"), &room("#club")));
        // Out of the room, the nick is anyone's.
        t.send(
            b2,
            &ClientMsg::Part {
                room: room("#club"),
                reason: None,
            },
        );
        t.send(b2, &ClientMsg::Nick { nick: nick("bob") });
        assert!(
            t.recv(b2)
                .iter()
                .any(|m| matches!(m, ServerMsg::YourNick { nick } if nick.as_str() == "bob"))
        );
    }

    #[test]
    fn an_account_founds_a_bounded_number_of_rooms_and_a_closed_one_frees_its_place() {
        use crate::limits::{MAX_FOUNDED_PER_ACCOUNT, MAX_ROOM_CREATES_PER_WINDOW};
        use crate::wire::ModAction;
        let mut t = T::with(cfg());
        let alice = account(&mut t, "alice");
        let register = |t: &mut T, c: ConnId, r: &str| {
            t.join(c, r);
            t.send(
                c,
                &ClientMsg::Moderate {
                    room: room(r),
                    action: ModAction::Register,
                },
            );
            let got = t.recv(c);
            t.send(
                c,
                &ClientMsg::Part {
                    room: room(r),
                    reason: None,
                },
            );
            t.recv(c);
            got
        };
        for i in 0..MAX_FOUNDED_PER_ACCOUNT {
            if i > 0 && i % MAX_ROOM_CREATES_PER_WINDOW as usize == 0 {
                t.advance(crate::limits::ROOM_CREATE_WINDOW.0);
            }
            let got = register(&mut t, alice, &format!("#r{i}"));
            assert!(errors(&got).is_empty(), "{i}: {got:?}");
        }
        assert_eq!(t.hub.registered_rooms(), MAX_FOUNDED_PER_ACCOUNT);
        t.advance(crate::limits::ROOM_CREATE_WINDOW.0);
        let got = register(&mut t, alice, "#one-more");
        let refused = errors(&got);
        assert!(
            refused.iter().any(|(k, _, detail)| *k == ErrorKind::Invalid
                && detail.contains("you founded 20 rooms")),
            "{got:?}"
        );
        assert_eq!(t.hub.registered_rooms(), MAX_FOUNDED_PER_ACCOUNT);
        // Someone else may still register rooms, and an admin is not held to the cap.
        let bob = account(&mut t, "bob");
        assert!(errors(&register(&mut t, bob, "#bobs")).is_empty());
        let root = account(&mut t, "root");
        for i in 0..=MAX_FOUNDED_PER_ACCOUNT {
            if i > 0 && i % MAX_ROOM_CREATES_PER_WINDOW as usize == 0 {
                t.advance(crate::limits::ROOM_CREATE_WINDOW.0);
            }
            let got = register(&mut t, root, &format!("#root{i}"));
            assert!(errors(&got).is_empty(), "{i}: {got:?}");
        }
        // A room an admin closed is no longer alice's: she may found another.
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Close {
                room: room("#r0"),
                reason: None,
            }),
        );
        t.recv(root);
        t.advance(crate::limits::ROOM_CREATE_WINDOW.0);
        assert!(errors(&register(&mut t, alice, "#one-more")).is_empty());
    }

    /// An nc admin's `/takeover` and `/close` of a room it is not in say what they did: the
    /// room's event reaches only its members, and the admin heard nothing at all.
    #[test]
    fn nc_admins_hear_their_takeover_and_close_done() {
        let mut t = T::with(cfg());
        let alice = account(&mut t, "alice");
        t.join(alice, "#club");
        let bob = t.bin("bob");
        t.join(bob, "#club");
        let (r, _) = t.txt();
        t.line(r, "/nick root");
        t.line(r, "/register correct horse");
        t.lines(r);
        t.line(r, "/takeover #club");
        assert_eq!(t.lines(r), ["-- you took over #club: you are its founder"]);
        t.line(r, "/takeover #club");
        assert_eq!(t.lines(r), ["-- you are the founder of #club already"]);
        t.line(r, "/close #club moved to #new");
        assert_eq!(t.lines(r), ["-- you closed #club: its 2 members left it"]);
        assert!(!t.hub.is_member(&nick("bob"), &room("#club")));
    }

    /// A ban or mute that would hold a room's founder is refused, an admin's too (it may take
    /// the room over first), and so is one typed as the founder's account while the founder
    /// is away: no room's ban or mute holds its founder, and until the thirty-seventh session
    /// an admin's was set, said to the room and listed, and the founder stayed and spoke.
    #[test]
    fn a_ban_or_mute_of_the_founder_is_refused_an_admins_too() {
        let mut t = T::with(cfg());
        let (a, _) = t.txt();
        t.line(a, "/nick alice");
        t.line(a, "/register correct horse");
        t.line(a, "/join #club");
        t.line(a, "/register #club");
        let (b, _) = t.txt();
        t.line(b, "/nick bob");
        t.line(b, "/register correct horse");
        t.line(b, "/join #club");
        t.line(a, "/op bob");
        let (r, _) = t.txt();
        t.line(r, "/nick root");
        t.line(r, "/register correct horse");
        t.lines(a);
        t.lines(b);
        t.lines(r);
        for line in [
            "/ban #club alice spam",
            "/mute #club alice",
            "/ban #club account:alice",
            "/mute #club nick:ALICE 1h",
        ] {
            t.line(r, line);
            let got = t.lines(r);
            assert_eq!(
                got,
                ["ERROR: the founder of #club cannot be banned or muted: /takeover #club first"],
                "{line}"
            );
        }
        assert!(t.lines(a).is_empty(), "the room heard of no ban");
        // The founder away: an operator's ban of its account is refused all the same.
        t.line(a, "/quit");
        t.lines(b);
        for line in ["/ban account:alice", "/mute nick:alice"] {
            t.line(b, line);
            assert_eq!(
                t.lines(b),
                ["ERROR: the founder of #club cannot be banned or muted"],
                "{line}"
            );
        }
        t.line(b, "/bans");
        assert!(t.lines(b).iter().all(|l| !l.contains("alice")));
        // Taken over, the room's former founder is anyone's to ban.
        t.line(r, "/takeover #club");
        t.line(r, "/ban #club account:alice");
        assert!(
            t.lines(r).iter().any(|l| l.contains("+b account:alice")),
            "a ban once alice is founder no longer"
        );
    }

    /// A ban or mute naming a server admin is refused as one of the founder is: no room's ban
    /// or mute holds an admin (`banned`, `may_speak`), and an operator's was set, said to the
    /// room and listed, and the admin stayed and spoke (present or away, by nick or account).
    #[test]
    fn a_ban_or_mute_of_a_server_admin_is_refused() {
        let mut t = T::with(cfg());
        let (a, _) = t.txt();
        t.line(a, "/nick alice");
        t.line(a, "/register correct horse");
        t.line(a, "/join #club");
        t.line(a, "/register #club");
        let (b, _) = t.txt();
        t.line(b, "/nick bob");
        t.line(b, "/register correct horse");
        t.line(b, "/join #club");
        t.line(a, "/op bob");
        let (r, _) = t.txt();
        t.line(r, "/nick root");
        t.line(r, "/register correct horse");
        t.line(r, "/join #club");
        t.lines(a);
        t.lines(b);
        t.lines(r);
        let refused = "ERROR: root is a server admin: no room's ban or mute holds it";
        for line in ["/ban root spam", "/mute root", "/ban account:root"] {
            t.line(b, line);
            assert_eq!(t.lines(b), [refused], "{line}");
        }
        assert!(t.lines(a).is_empty(), "the room heard of no ban");
        assert!(t.hub.is_member(&nick("root"), &room("#club")));
        // Away, too.
        t.line(r, "/quit");
        t.lines(b);
        for line in ["/ban nick:ROOT", "/mute account:root 1h"] {
            t.line(b, line);
            assert_eq!(t.lines(b), [refused], "{line}");
        }
        t.line(b, "/bans");
        assert!(t.lines(b).iter().all(|l| !l.contains("root")));
    }
    /// A room nobody registered has operators when a server admin made some: one who is not
    /// is told so, not that the room has none and how to become its founder.
    #[test]
    fn a_room_an_admin_gave_operators_without_registering_it_says_it_has_some() {
        use crate::wire::ModAction;
        let mut t = T::with(cfg());
        let alice = account(&mut t, "alice");
        t.join(alice, "#den");
        let root = account(&mut t, "root");
        t.send(
            root,
            &ClientMsg::Moderate {
                room: room("#den"),
                action: ModAction::Op(nick("alice")),
            },
        );
        assert!(errors(&t.recv(root)).is_empty());
        let (b, _) = t.txt();
        t.line(b, "/join #den");
        t.lines(b);
        t.line(b, "/kick alice");
        assert_eq!(t.lines(b), ["ERROR: you are not an operator of #den"]);
    }

    #[test]
    fn admins_take_over_and_close_any_room() {
        use crate::wire::ModAction;
        let mut t = T::with(cfg());
        let alice = account(&mut t, "alice");
        t.join(alice, "#club");
        t.send(
            alice,
            &ClientMsg::Moderate {
                room: room("#club"),
                action: ModAction::Register,
            },
        );
        let bob = t.bin("bob");
        t.join(bob, "#club");
        let root = account(&mut t, "root");
        // Not an admin: refused, nothing changes.
        t.send(bob, &ClientMsg::Admin(AdminAction::TakeOver(room("#club"))));
        assert!(
            errors(&t.recv(bob))
                .iter()
                .any(|(k, _, _)| *k == ErrorKind::NotOperator)
        );
        // Taken over from outside the room: root is the founder, members see who did it.
        t.recv(alice);
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::TakeOver(room("#club"))),
        );
        let seen = t.recv(alice);
        assert!(
            events(&seen).iter().any(|e| e.from.as_str() == "root"
                && matches!(&e.kind, EventKind::Mode { change } if change.as_str() == "founder root")),
            "{seen:?}"
        );
        assert!(seen.iter().any(
            |m| matches!(m, ServerMsg::Policy { founder: Some(f), .. } if f.as_str() == "root")
        ));
        // alice is no founder any more: she cannot make operators.
        t.send(
            alice,
            &ClientMsg::Moderate {
                room: room("#club"),
                action: ModAction::Op(nick("bob")),
            },
        );
        assert!(
            errors(&t.recv(alice))
                .iter()
                .any(|(k, _, _)| *k == ErrorKind::NotOperator)
        );
        // #lobby cannot be closed; an unknown room is said so.
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Close {
                room: RoomName::lobby(),
                reason: None,
            }),
        );
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Close {
                room: room("#nowhere"),
                reason: None,
            }),
        );
        let kinds: Vec<ErrorKind> = errors(&t.recv(root)).iter().map(|e| e.0).collect();
        assert_eq!(kinds, vec![ErrorKind::Invalid, ErrorKind::NotInRoom]);
        // Closed: every member sees one event and leaves; the registration is gone.
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Close {
                room: room("#club"),
                reason: Some(text("moved to #new")),
            }),
        );
        for c in [alice, bob] {
            let got = t.recv(c);
            assert!(
                events(&got).iter().any(|e| matches!(&e.kind,
                    EventKind::Mode { change } if change.as_str() == "close: moved to #new")),
                "{got:?}"
            );
            assert!(
                got.iter()
                    .any(|m| matches!(m, ServerMsg::Parted { room: r } if r.as_str() == "#club")),
                "{got:?}"
            );
        }
        assert!(!t.hub.is_member(&nick("alice"), &room("#club")));
        assert!(!t.hub.is_member(&nick("bob"), &room("#club")));
        // Anyone may open it again, unregistered, and register it anew.
        t.join(bob, "#club");
        let got = t.join(alice, "#club");
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Joined { room: r, .. } if r.as_str() == "#club"))
        );
        t.send(
            alice,
            &ClientMsg::Moderate {
                room: room("#club"),
                action: ModAction::Register,
            },
        );
        let got = t.recv(alice);
        assert!(
            got.iter().any(
                |m| matches!(m, ServerMsg::Policy { founder: Some(f), .. } if f.as_str() == "alice")
            ),
            "{got:?}"
        );
    }

    /// A closed room's topic goes with its registration and settings (PROTOCOL.md, `Close`),
    /// with a store too, where the room itself stays (its seqs go on): opened again it has
    /// none, and the store is told (the close's event clears the topic it keeps), as a
    /// cluster forgets it.
    #[test]
    fn a_closed_rooms_topic_is_forgotten_with_a_store_too() {
        let mut t = T::with(Config {
            durable: true,
            ..cfg()
        });
        let alice = account(&mut t, "alice");
        t.join(alice, "#club");
        t.send(
            alice,
            &ClientMsg::Topic {
                room: room("#club"),
                topic: Some(text("old plans")),
            },
        );
        let root = account(&mut t, "root");
        t.recv(alice);
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Close {
                room: room("#club"),
                reason: None,
            }),
        );
        t.recv(alice);
        let got = t.join(alice, "#club");
        let topic = got.iter().find_map(|m| match m {
            ServerMsg::Joined { room: r, topic, .. } if r.as_str() == "#club" => Some(topic),
            _ => None,
        });
        assert_eq!(topic, Some(&None), "{got:?}");
        let close = t
            .batches
            .iter()
            .flat_map(|b| b.writes.iter())
            .find_map(|w| match w {
                crate::persist::Write::Event(ev) if ev.room.as_str() == "#club" => {
                    crate::persist::closes_room(&ev.kind).then_some(ev)
                }
                _ => None,
            });
        assert!(close.is_some(), "the store is told of the close");
    }

    fn dones(got: &[ServerMsg]) -> Vec<String> {
        got.iter()
            .filter_map(|m| match m {
                ServerMsg::Done(w) => Some(w.to_string()),
                _ => None,
            })
            .collect()
    }

    fn sign_in_bin(t: &mut T, c: ConnId, account: &str) -> Vec<ServerMsg> {
        t.send(
            c,
            &ClientMsg::SignIn {
                account: nick(account),
                proof: crate::wire::Proof::Password(Password("correct horse".into())),
                remember: false,
            },
        );
        let got = t.recv(c);
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::SignedIn { .. })),
            "{got:?}"
        );
        got
    }

    /// A binary connection of protocol `version` that says `Hello` as `want`.
    fn bin_of(t: &mut T, version: u16, want: &str) -> ConnId {
        let c = t.hub.accept(LOCAL, t.now).unwrap();
        t.feed(c, &MAGIC);
        t.send(
            c,
            &ClientMsg::Hello {
                version,
                nick: nick(want),
                resume: None,
            },
        );
        t.recv(c);
        c
    }

    fn away_words(lines: &[String]) -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.contains("while you were away"))
            .cloned()
            .collect()
    }

    /// An always-on member of a room an admin closes with nothing of it connected is told
    /// who closed it and why at its next sign-in, once, as a kick is told: until the
    /// thirty-ninth session it came back and the room was just gone.
    #[test]
    fn an_account_away_when_its_room_is_closed_is_told_at_its_next_sign_in() {
        let mut t = T::with(cfg());
        let root = account(&mut t, "root");
        let (b, _) = t.txt();
        t.line(b, "/nick bob");
        t.line(b, "/register correct horse");
        t.line(b, "/join #club");
        t.line(b, "/join #other");
        t.line(b, "/quit");
        assert!(t.hub.is_member(&nick("bob"), &room("#club")), "always-on");
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Close {
                room: room("#club"),
                reason: Some(text("moved to #new")),
            }),
        );
        t.recv(root);
        assert!(!t.hub.is_member(&nick("bob"), &room("#club")));
        let (b2, _) = t.txt();
        t.line(b2, "/login bob correct horse");
        let got = t.lines(b2);
        assert_eq!(
            away_words(&got),
            ["-- while you were away, root closed #club (moved to #new)"],
            "{got:#?}"
        );
        // Once.
        let (b3, _) = t.txt();
        t.line(b3, "/login bob correct horse");
        assert!(away_words(&t.lines(b3)).is_empty(), "told once");
        // A binary device is told as a `Done`; a close without a reason says none.
        t.line(b2, "/join #club");
        t.line(b2, "/quit");
        t.line(b3, "/quit");
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Close {
                room: room("#club"),
                reason: None,
            }),
        );
        t.recv(root);
        let c = t.bin("someone");
        let got = sign_in_bin(&mut t, c, "bob");
        assert_eq!(
            dones(&got),
            ["while you were away, root closed #club"],
            "{got:?}"
        );
        // A member connected when it is closed hears it live, and nothing at its next
        // sign-in.
        t.join(c, "#club");
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Close {
                room: room("#club"),
                reason: None,
            }),
        );
        t.recv(root);
        t.recv(c);
        let (b4, _) = t.txt();
        t.line(b4, "/login bob correct horse");
        assert!(away_words(&t.lines(b4)).is_empty(), "it was there");
    }

    /// A device waiting for its resume when its account was put out of a room (kicked, or
    /// the room closed), which never resumes, left the account's next sign-in to say why:
    /// until the thirty-ninth session nothing did (only a resume replayed it). A device that
    /// does resume hears the room's own event, and the sign-in after it nothing again.
    #[test]
    fn an_account_whose_device_waited_for_a_resume_is_told_at_a_fresh_sign_in() {
        use crate::wire::ModAction;
        let mut t = T::with(cfg());
        let root = account(&mut t, "root");
        t.join(root, "#r");
        t.join(root, "#s");
        let carl = account(&mut t, "carl");
        t.join(carl, "#r");
        t.join(carl, "#s");
        let token = t
            .hub
            .conns
            .get(&carl)
            .and_then(|c| c.device())
            .and_then(|d| t.hub.devices.get(&d))
            .map(|d| d.resume.is_some());
        assert_eq!(token, Some(true), "a binary device waits for a resume");
        t.hub.handle_close(carl, t.now);
        t.pump();
        t.recv(root);
        let kick = ModAction::Kick {
            nick: nick("carl"),
            reason: Some(text("rude")),
        };
        t.send(
            root,
            &ClientMsg::Moderate {
                room: room("#r"),
                action: kick,
            },
        );
        t.send(
            root,
            &ClientMsg::Admin(AdminAction::Close {
                room: room("#s"),
                reason: None,
            }),
        );
        t.recv(root);
        assert!(!t.hub.is_member(&nick("carl"), &room("#r")));
        // Its resume window ends; it never came back.
        t.advance(t.hub.config().resume_grace.0 + 1_000);
        let (c, _) = t.txt();
        t.line(c, "/login carl correct horse");
        let got = t.lines(c);
        assert_eq!(
            away_words(&got),
            [
                "-- while you were away, root put you out of #r (rude)",
                "-- while you were away, root closed #s",
            ],
            "{got:#?}"
        );
        t.line(c, "/join #r");
        t.line(c, "/quit");

        // A device that resumes: the replay of the kick tells it, and nothing is kept.
        let b = t.bin("carl");
        let got = sign_in_bin(&mut t, b, "carl");
        let token = got
            .iter()
            .find_map(|m| match m {
                ServerMsg::SignedIn { token, .. } => Some(token.clone()),
                _ => None,
            })
            .unwrap();
        t.send(b, &ClientMsg::Ping { token: 1 });
        let seen = t
            .join(b, "#r")
            .iter()
            .find_map(|m| match m {
                ServerMsg::Joined { room: r, seq, .. } if r.as_str() == "#r" => Some(*seq),
                _ => None,
            })
            .unwrap();
        t.hub.handle_close(b, t.now);
        t.pump();
        t.send(
            root,
            &ClientMsg::Moderate {
                room: room("#r"),
                action: ModAction::Kick {
                    nick: nick("carl"),
                    reason: None,
                },
            },
        );
        t.recv(root);
        let (_, got) = t.resume("carl", token, vec![(room("#r"), seen)]);
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::Event(RoomEvent {
                kind: EventKind::Kick { target, .. }, ..
            }) if target.as_str() == "carl")),
            "{got:?}"
        );
        assert!(dones(&got).is_empty(), "told by the kick itself: {got:?}");
        let (c2, _) = t.txt();
        t.line(c2, "/login carl correct horse");
        assert!(away_words(&t.lines(c2)).is_empty(), "told once");
    }

    /// A device that resumes without the room's event to replay (its client named not the
    /// room) is told the kept words after its replay, as a sign-in is, and only once.
    #[test]
    fn a_resume_that_replays_no_kick_is_told_the_kept_words() {
        use crate::wire::ModAction;
        let mut t = T::with(cfg());
        let root = account(&mut t, "root");
        t.join(root, "#r");
        let carl = account(&mut t, "carl");
        t.send(carl, &ClientMsg::Quit { reason: None });
        let b = t.bin("someone");
        let got = sign_in_bin(&mut t, b, "carl");
        let token = got
            .iter()
            .find_map(|m| match m {
                ServerMsg::SignedIn { token, .. } => Some(token.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{got:?}"));
        t.send(b, &ClientMsg::Ping { token: 1 });
        t.join(b, "#r");
        t.hub.handle_close(b, t.now);
        t.pump();
        t.send(
            root,
            &ClientMsg::Moderate {
                room: room("#r"),
                action: ModAction::Kick {
                    nick: nick("carl"),
                    reason: None,
                },
            },
        );
        t.recv(root);
        let (b2, got) = t.resume("carl", token, Vec::new());
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::Welcome { resumed: true, .. })),
            "{got:?}"
        );
        assert_eq!(
            dones(&got),
            ["while you were away, root put you out of #r"],
            "{got:?}"
        );
        t.send(b2, &ClientMsg::Quit { reason: None });
        let (c, _) = t.txt();
        t.line(c, "/login carl correct horse");
        assert!(away_words(&t.lines(c)).is_empty(), "told once");
    }

    /// A client that cannot show what put its account out while it was away (natter's
    /// before protocol version 10, which has no `Done`) leaves it for the next that can:
    /// until the thirty-ninth session it was used up there, unseen.
    #[test]
    fn an_old_client_leaves_the_away_note_for_one_that_shows_it() {
        use crate::wire::ModAction;
        let mut t = T::with(cfg());
        let root = account(&mut t, "root");
        t.join(root, "#r");
        let bob = account(&mut t, "bob");
        t.join(bob, "#r");
        t.send(bob, &ClientMsg::Quit { reason: None });
        t.send(
            root,
            &ClientMsg::Moderate {
                room: room("#r"),
                action: ModAction::Kick {
                    nick: nick("bob"),
                    reason: None,
                },
            },
        );
        t.recv(root);
        let old = bin_of(&mut t, crate::wire::DONE_VERSION - 1, "someone");
        let got = sign_in_bin(&mut t, old, "bob");
        assert!(dones(&got).is_empty(), "{got:?}");
        t.send(old, &ClientMsg::Quit { reason: None });
        let new = bin_of(&mut t, crate::wire::DONE_VERSION, "someone");
        let got = sign_in_bin(&mut t, new, "bob");
        assert_eq!(
            dones(&got),
            ["while you were away, root put you out of #r"],
            "{got:?}"
        );
    }
}

/// A room big enough to keep a list of its attached connections (`Room::attached`) still
/// delivers to exactly its attached members as they detach, resume, part and join.
#[test]
fn a_big_room_delivers_to_exactly_its_attached_members_as_they_change() {
    let mut t = T::new();
    let n = deliver::ATTACHED_LIST_MIN + 2;
    let mut members = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..n {
        let (c, _, token) = t.bin_from(LOCAL, &format!("m{i}"));
        t.join(c, "#big");
        members.push(c);
        tokens.push(token);
    }
    for &c in &members {
        t.recv(c);
    }
    let heard = |t: &mut T, c: ConnId| says(&t.recv(c));
    let (speaker, away, leaver) = (members[0], members[1], members[2]);
    t.say(speaker, "#big", 1, "all");
    for &c in &members {
        assert_eq!(heard(&mut t, c), vec!["all"], "{c}");
    }
    // One member parts; another's socket dies (detached, still a member).
    t.send(
        leaver,
        &ClientMsg::Part {
            room: room("#big"),
            reason: None,
        },
    );
    t.recv(leaver);
    t.say(speaker, "#big", 2, "parted");
    assert!(heard(&mut t, leaver).is_empty(), "parted");
    t.hub.handle_close(away, t.now);
    t.pump();
    t.say(speaker, "#big", 3, "fewer");
    assert!(heard(&mut t, leaver).is_empty(), "parted");
    for &c in members[3..].iter().chain([&speaker]) {
        assert_eq!(heard(&mut t, c), vec!["parted", "fewer"], "{c}");
    }
    // The detached one comes back on a new connection, then a newcomer joins.
    let (back, _) = t.resume("m1", tokens[1].clone(), vec![]);
    t.recv(back);
    t.say(speaker, "#big", 4, "back");
    assert_eq!(heard(&mut t, back), vec!["back"]);
    let newcomer = t.bin("late");
    t.join(newcomer, "#big");
    t.recv(newcomer);
    t.say(speaker, "#big", 5, "again");
    assert_eq!(heard(&mut t, back), vec!["again"]);
    assert_eq!(heard(&mut t, newcomer), vec!["again"]);
    assert!(heard(&mut t, leaver).is_empty());
    assert_eq!(heard(&mut t, speaker), vec!["back", "again"], "the echo");
}

/// Big rooms: joins, parts and quits summed up instead of announced to everyone (`crowd.rs`).
mod crowd {
    use super::*;
    use crate::limits::MAX_MEMBERS_LISTED;

    fn quiet_at(n: usize) -> T {
        let mut cfg = config();
        cfg.quiet_room_members = n;
        cfg.crowd_summary_every = Millis(1_000);
        T::with(cfg)
    }

    fn crowds(msgs: &[ServerMsg]) -> Vec<(u32, u32, u32)> {
        msgs.iter()
            .filter_map(|m| match m {
                ServerMsg::Crowd {
                    joined,
                    left,
                    members,
                    ..
                } => Some((*joined, *left, *members)),
                _ => None,
            })
            .collect()
    }

    fn membership_events(msgs: &[ServerMsg]) -> usize {
        msgs.iter()
            .filter(|m| {
                matches!(
                    m,
                    ServerMsg::Event(RoomEvent {
                        kind: EventKind::Join | EventKind::Part { .. } | EventKind::Quit { .. },
                        ..
                    })
                )
            })
            .count()
    }

    /// By default joins are announced one by one as long as every member fits in the list a
    /// joiner is given: a client that keeps its list from that list and the joins and parts
    /// after it (as IRC clients do from `NAMES`) has it whole. The member past that is counted.
    #[test]
    fn joins_are_announced_while_the_member_list_holds_everyone() {
        let mut t = T::new();
        assert_eq!(t.hub.config().quiet_room_members, MAX_MEMBERS_LISTED);
        let first = t.bin("m0");
        t.join(first, "#big");
        for i in 1..MAX_MEMBERS_LISTED {
            let c = t.bin(&format!("m{i}"));
            t.join(c, "#big");
        }
        let got = t.recv(first);
        assert_eq!(membership_events(&got), MAX_MEMBERS_LISTED - 1);
        assert!(crowds(&got).is_empty());
        let last = t.bin("late");
        let got = t.join(last, "#big");
        assert!(
            matches!(&got[0], ServerMsg::Joined { members, .. } if members.len() == MAX_MEMBERS_LISTED),
            "{got:?}"
        );
        assert!(
            membership_events(&t.recv(first)) == 0,
            "counted, not announced"
        );
    }

    /// With `quiet_room_members` above the member list (300), a room of 301 to that many is
    /// not quiet but its list is cut short: the joiner learns the room's size all the same,
    /// without being told that joins are summed up (they are not), as every dialect says it.
    #[test]
    fn a_joiner_of_a_room_past_the_member_list_learns_its_size_even_when_it_is_not_quiet() {
        let mut t = quiet_at(MAX_MEMBERS_LISTED + 100);
        let first = t.bin("m0");
        t.join(first, "#big");
        for k in 1..=MAX_MEMBERS_LISTED {
            let c = t.bin(&format!("m{k}"));
            t.join(c, "#big");
        }
        t.recv(first);
        let n = u32::try_from(MAX_MEMBERS_LISTED + 2).unwrap();
        let late = t.bin("late");
        let got = t.join(late, "#big");
        assert!(
            matches!(&got[0], ServerMsg::Joined { members, .. } if members.len() == MAX_MEMBERS_LISTED),
            "{got:?}"
        );
        assert_eq!(
            crowds(&got),
            [(0, 0, n)],
            "the joiner learns the room's size"
        );
        assert_eq!(membership_events(&t.recv(first)), 1, "not quiet: announced");
        let (p, _) = t.txt();
        t.line(p, "/join #big");
        let l = t.lines(p);
        let size = format!("-- #big has {} members: /who lists 300 of them", n + 1);
        assert!(l.contains(&size), "{l:?}");
        // The join's line named all 300 listed members (a screenful on nc): ten and `more`,
        // the size line following it.
        let you = l
            .iter()
            .find(|l| l.starts_with("-- you are in #big"))
            .expect("a join line");
        assert!(
            you.ends_with(" and more") && you.matches(", ").count() == 9,
            "{you}"
        );
        assert!(!l.iter().any(|l| l.contains("summed up")), "{l:?}");
        // A room its list holds says nothing of its size.
        let small = t.bin("small");
        assert!(crowds(&t.join(small, "#small")).is_empty());
    }

    #[test]
    fn past_the_size_joins_and_parts_are_summed_up_and_the_count_stays_right() {
        let mut t = quiet_at(3);
        let a = t.bin("a");
        let b = t.bin("b");
        let c = t.bin("c");
        for x in [a, b, c] {
            t.join(x, "#big");
        }
        // Up to the size, every join is announced as before.
        let got = t.recv(a);
        assert_eq!(membership_events(&got), 2, "{got:?}");
        assert!(crowds(&got).is_empty());
        t.recv(b);
        // The fourth member makes the room quiet: the others hear nothing of it now...
        let d = t.bin("d");
        let got_d = t.join(d, "#big");
        assert!(
            matches!(&got_d[0], ServerMsg::Joined { members, .. } if members.len() == 4),
            "{got_d:?}"
        );
        assert_eq!(
            crowds(&got_d),
            [(0, 0, 4)],
            "the joiner learns the room's size"
        );
        assert_eq!(membership_events(&t.recv(a)), 0);
        // ...and a fifth arrival and a departure are counted too.
        let e = t.bin("e");
        t.join(e, "#big");
        t.recv(e);
        t.send(
            b,
            &ClientMsg::Part {
                room: room("#big"),
                reason: None,
            },
        );
        let got_b = t.recv(b);
        assert!(
            got_b
                .iter()
                .any(|m| matches!(m, ServerMsg::Parted { room } if *room == crate::test_support::room("#big"))),
            "the parter is told as always: {got_b:?}"
        );
        assert_eq!(membership_events(&t.recv(a)), 0);
        // One summary per period, to every member, with the room's size now; a newcomer
        // (which had the size with its join) hears only who came and went after it.
        t.advance(1_000);
        for x in [a, c] {
            assert_eq!(crowds(&t.recv(x)), [(2, 1, 4)], "member {x}");
        }
        assert_eq!(crowds(&t.recv(d)), [(1, 1, 4)], "not its own join");
        assert_eq!(crowds(&t.recv(e)), [(0, 1, 4)], "nor those before it");
        assert!(crowds(&t.recv(b)).is_empty(), "not to who left");
        // Nothing came or went: no summary.
        t.advance(3_000);
        assert!(crowds(&t.recv(a)).is_empty());
        // A quit counts as leaving; at the size again, departures are announced one by one.
        t.send(c, &ClientMsg::Quit { reason: None });
        t.hub.handle_close(c, t.now);
        t.pump();
        assert_eq!(membership_events(&t.recv(a)), 0, "4 → 3: still counted");
        t.send(
            e,
            &ClientMsg::Part {
                room: room("#big"),
                reason: None,
            },
        );
        assert_eq!(membership_events(&t.recv(a)), 1, "3 → 2: announced");
        t.advance(1_000);
        assert_eq!(crowds(&t.recv(a)), [(0, 1, 2)]);
    }

    #[test]
    fn a_newcomer_hears_no_summary_of_its_own_arrival() {
        let mut t = quiet_at(2);
        let a = t.bin("a");
        let b = t.bin("b");
        t.join(a, "#big");
        t.join(b, "#big");
        t.recv(a);
        // c makes the room quiet and hears its size; d comes after it. Then nothing happens.
        let c = t.bin("c");
        let d = t.bin("d");
        assert_eq!(crowds(&t.join(c, "#big")), [(0, 0, 3)]);
        assert_eq!(crowds(&t.join(d, "#big")), [(0, 0, 4)]);
        t.advance(1_000);
        assert_eq!(crowds(&t.recv(a)), [(2, 0, 4)]);
        assert_eq!(crowds(&t.recv(c)), [(1, 0, 4)], "d came after c");
        assert!(
            crowds(&t.recv(d)).is_empty(),
            "nothing happened since d came: its size is right already"
        );
        // In the next period d is a member like any other.
        t.send(
            c,
            &ClientMsg::Part {
                room: room("#big"),
                reason: None,
            },
        );
        t.advance(1_000);
        assert_eq!(crowds(&t.recv(d)), [(0, 1, 3)]);
    }

    /// A resume in a big room: the refreshed list is cut short like a joiner's, and what came
    /// and went meanwhile was told to nobody on this connection: its size follows the list.
    #[test]
    fn a_resume_in_a_big_room_hears_its_size() {
        let mut t = quiet_at(2);
        let (a, _, token) = t.bin_from(LOCAL, "a");
        t.join(a, "#big");
        for n in ["b", "c"] {
            let c = t.bin(n);
            t.join(c, "#big");
        }
        let got = t.recv(a);
        let seen = events(&got).last().map_or(Seq(0), |e| e.seq);
        t.hub.handle_close(a, t.now);
        t.pump();
        let d = t.bin("d");
        t.join(d, "#big");
        let (_, got) = t.resume("a", token, vec![(room("#big"), seen)]);
        assert!(
            got.iter().any(|m| matches!(m, ServerMsg::Joined { .. })),
            "{got:?}"
        );
        assert_eq!(crowds(&got), [(0, 0, 4)]);
    }

    #[test]
    fn a_crowd_arriving_costs_linear_deliveries_not_quadratic() {
        let n = 600;
        let mut t = quiet_at(100);
        let first = t.bin("first");
        t.join(first, "#big");
        for i in 1..n {
            let c = t.bin(&format!("u{i}"));
            t.join(c, "#big");
        }
        let before_summary = t.hub.stats().deliveries;
        // Announced one by one, 600 joins are 600·599/2 ≈ 180,000 deliveries; the first 100
        // (announced) cost about 5,000, and the rest none.
        assert!(before_summary < 6_000, "{before_summary} deliveries");
        t.advance(1_000);
        let got = t.recv(first);
        assert_eq!(
            crowds(&got),
            [(n as u32 - 100, 0, n as u32)],
            "{:?}",
            crowds(&got)
        );
        assert_eq!(membership_events(&got), 99);
    }

    #[test]
    fn text_users_read_the_summary_and_the_size_as_lines() {
        let mut t = quiet_at(1);
        let (p, _) = t.txt();
        t.lines(p);
        // #lobby holds the text user; a binary client makes it quiet.
        let b = t.bin("b");
        let got = t.join(b, "#lobby");
        assert_eq!(crowds(&got), [(0, 0, 2)]);
        t.advance(1_000);
        let lines = t.lines(p);
        assert!(
            lines.iter().any(|l| l == "-- #lobby: 1 joined (2 members)"),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.contains("b joined")), "{lines:?}");
    }
}

/// nc users get the operator's message of the day under their welcome (a reload's new one from
/// then on); binary clients get it as `Motd` right after theirs, and a resume no second copy.
#[test]
fn nc_users_get_the_operators_motd_under_their_welcome() {
    let mut t = T::new();
    let (plain, _) = t.txt();
    assert!(t.lines(plain).iter().all(|l| !l.contains("Be kind")));
    let mut next = t.hub.config().clone();
    next.motd = Some(crate::hub::Motd::new("Be kind.\n\nRules: \x1b[2Jsee /help\n\n").unwrap());
    let changes = t.hub.reconfigure(next).unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].to_string(), "motd: (none) -> (3 lines)");
    let c = t.hub.accept(LOCAL, t.now).unwrap();
    t.advance(t.hub.config().text_detect_wait.0);
    let l = t.lines(c);
    assert!(l[0].starts_with("Welcome to natter"), "{l:?}");
    assert_eq!(l[1], "-- Be kind.");
    assert_eq!(l[2].trim_end(), "--");
    assert!(
        l[3].starts_with("-- Rules: ") && l[3].ends_with("see /help"),
        "{l:?}"
    );
    assert!(
        !l[3].contains('\x1b'),
        "control characters are cleaned out: {l:?}"
    );
    let (bc, got) = t.hello(LOCAL, "binny", None);
    let [ServerMsg::Welcome { token, .. }, ServerMsg::Motd { lines }] = &got[..] else {
        panic!("a welcome, then the MOTD: {got:?}");
    };
    let shown: Vec<Option<&str>> = lines
        .iter()
        .map(|l| l.as_ref().map(|t| t.as_str()))
        .collect();
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert_eq!(shown[0], Some("Be kind."));
    assert_eq!(shown[1], None, "an empty line stays one");
    assert!(
        shown[2].is_some_and(|l| l.starts_with("Rules: ") && !l.contains('\x1b')),
        "{shown:?}"
    );
    // What a client shows of it.
    let rendered = crate::render::reply_lines(&got[1], None, None);
    assert_eq!(rendered[0], "-- Be kind.");
    let token = token.clone();
    t.hub.handle_close(bc, t.now);
    let (_, again) = t.resume("binny", token, Vec::new());
    assert!(
        matches!(&again[..], [ServerMsg::Welcome { resumed: true, .. }]),
        "a resume gets no second copy: {again:?}"
    );
}

#[test]
fn a_motd_is_refused_when_empty_too_long_or_with_a_line_too_long() {
    use crate::hub::{MAX_MOTD_LINES, Motd};
    assert!(Motd::new("").is_err());
    assert!(Motd::new(" \n\n").is_err());
    assert!(Motd::new(&"line\n".repeat(MAX_MOTD_LINES + 1)).is_err());
    assert!(Motd::new(&"x".repeat(crate::limits::MAX_TEXT_BYTES + 1)).is_err());
    let ok = Motd::new(&"line\n".repeat(MAX_MOTD_LINES)).unwrap();
    assert_eq!(ok.lines().count(), MAX_MOTD_LINES);
}

#[test]
fn big_fan_outs_in_quick_succession_take_turns_and_a_close_never_waits() {
    // Twelve members make a big fan-out here (1,024 by default).
    let mut t = T::with(Config {
        paced_fanout: 10,
        fanout_pace: Millis(24),
        ..config()
    });
    let members: Vec<ConnId> = (0..12).map(|i| t.bin(&format!("m{i}"))).collect();
    for &m in &members {
        t.send(m, &ClientMsg::Join { room: room("#big") });
    }
    t.advance(1_000);
    for &m in &members {
        t.recv(m);
    }
    let got =
        |t: &mut T| -> Vec<Vec<String>> { members.iter().map(|&m| says(&t.recv(m))).collect() };

    // The first big fan-out after a quiet moment goes to everyone at once.
    t.say(members[0], "#big", 1, "one");
    assert!(got(&mut t).iter().all(|s| s == &["one"]), "nobody waits");

    // 4 ms later, a sixth of a 24 ms pace: two of the twelve take their turn now.
    t.now = t.now + Millis(4);
    t.say(members[1], "#big", 1, "two");
    let now = got(&mut t);
    assert_eq!(now.iter().filter(|s| !s.is_empty()).count(), 2, "{now:?}");
    assert_eq!(
        t.hub.poll_timeout(),
        Some(t.now + Millis(3)),
        "the next turns"
    );

    // A member told to close meanwhile gets its last words (and what waited) before the close.
    let bad = members[11];
    t.raw.clear();
    t.feed(bad, &[0, 0, 0, 3, 0xEE, 0xEE, 0xEE]);
    let last = t.recv(bad);
    assert!(t.closed(bad));
    assert_eq!(says(&last), ["two"], "{last:?}");
    assert!(
        matches!(last.last(), Some(ServerMsg::Bye { .. })),
        "{last:?}"
    );

    // Another line 2 ms later, then a pace: everyone else gets both lines, in order, and those
    // who had not had their turn yet get them in one write.
    t.now = t.now + Millis(2);
    t.raw.clear();
    t.say(members[2], "#big", 1, "three");
    t.advance(24);
    let all = got(&mut t);
    let mut both = 0;
    for (i, s) in all.iter().enumerate().take(11) {
        match s.as_slice() {
            [a, b] if a == "two" && b == "three" => both += 1,
            [a] if a == "three" => {}
            other => panic!("member {i}: {other:?}"),
        }
    }
    assert!(both >= 8, "most had both lines in their turn: {all:?}");
    for &m in &members[..11] {
        let writes = t.raw.iter().filter(|x| x.conn == m).count();
        assert_eq!(writes, 1, "one write each over the pace");
    }
    assert_eq!(
        t.hub.poll_timeout().filter(|&d| d <= t.now + Millis(3)),
        None
    );
}

#[test]
fn paced_turns_let_go_of_old_cycle_buffers() {
    let mut t = T::with(Config {
        paced_fanout: 10,
        fanout_pace: Millis(24),
        flood_refill: Millis::ZERO,
        ..config()
    });
    let members: Vec<ConnId> = (0..20).map(|i| t.bin(&format!("m{i}"))).collect();
    for &m in &members {
        t.send(m, &ClientMsg::Join { room: room("#big") });
    }
    t.advance(1_000);
    // A line every 2 ms for two seconds: the turns never catch up with everyone at once, so
    // the queues are never all polled together.
    let mut most = 0;
    for i in 0..1_000u64 {
        t.now = t.now + Millis(2);
        t.hub.handle_timeout(t.now);
        t.say(members[(i % 20) as usize], "#big", i + 10, "x");
        most = most.max(t.hub.out.frozen_len());
    }
    assert!(most <= 16, "cycle buffers kept: {most}");
    t.advance(100);
    for &m in &members {
        assert_eq!(says(&t.recv(m)).len(), 1_000);
    }
}

#[test]
fn tls_handshakes_count_as_connects_before_they_start_and_not_again_after() {
    let mut cfg = config();
    cfg.max_connects_per_window = 3;
    let mut t = T::with(cfg);
    let far = ip("203.0.113.9");
    for _ in 0..3 {
        assert_eq!(t.hub.may_handshake(far, t.now), Ok(()));
    }
    let why = t.hub.may_handshake(far, t.now).unwrap_err();
    assert!(why.contains("at most 3 per 10 seconds"), "{why}");
    // The three whose handshakes finished are in, not counted a second time.
    for n in 0..3 {
        let c = t.hub.accept_handshaken(Door::Natter, far, t.now).unwrap();
        t.pump();
        assert_eq!(t.limit(c, Limit::ConnectRate), 0, "handshake {n}");
        assert!(!t.closed(c));
    }
    // A plain connect in the same window is over the rate, as any fourth connect.
    let c = t.hub.accept(far, t.now).unwrap();
    t.pump();
    assert_eq!(t.limit(c, Limit::ConnectRate), 1);
    // The open count still holds for handshaken connections.
    let mut cfg = config();
    cfg.max_connections_per_ip = 1;
    let mut t2 = T::with(cfg);
    assert_eq!(t2.hub.may_handshake(far, t2.now), Ok(()));
    t2.hub.accept_handshaken(Door::Natter, far, t2.now).unwrap();
    assert_eq!(t2.hub.may_handshake(far, t2.now), Ok(()));
    let second = t2.hub.accept_handshaken(Door::Natter, far, t2.now).unwrap();
    t2.pump();
    assert_eq!(t2.limit(second, Limit::PerIp), 1);
    // After the window, handshakes go again; loopback is never counted.
    t.advance(10_000);
    assert_eq!(t.hub.may_handshake(far, t.now), Ok(()));
    for _ in 0..50 {
        assert_eq!(t.hub.may_handshake(LOCAL, t.now), Ok(()));
    }
}

/// A binary client that says it is back without being away hears `Done` ("you were not
/// away") from version 10 on; a version-9 one hears what it always did (`Away` of itself,
/// `None`), which it can decode. Nobody else hears anything either way.
#[test]
fn a_binary_back_when_not_away_is_done_from_version_10_and_away_before() {
    let mut t = T::new();
    let hello = |t: &mut T, version: u16, who: &str| {
        let c = t.hub.accept(LOCAL, t.now).unwrap();
        t.feed(c, &MAGIC);
        t.send(
            c,
            &ClientMsg::Hello {
                version,
                nick: nick(who),
                resume: None,
            },
        );
        t.recv(c);
        c
    };
    let new = hello(&mut t, PROTOCOL_VERSION, "newer");
    let old = hello(&mut t, 9, "older");
    t.recv(new);
    t.send(new, &ClientMsg::Away(None));
    assert_eq!(
        t.recv(new),
        [ServerMsg::Done(text("you were not away (nothing changed)"))]
    );
    assert!(t.recv(old).is_empty());
    t.send(old, &ClientMsg::Away(None));
    assert_eq!(
        t.recv(old),
        [ServerMsg::Away {
            nick: nick("older"),
            away: None
        }]
    );
    assert!(t.recv(new).is_empty());
    // Away and back again: `Away` of itself, as before.
    t.send(new, &ClientMsg::Away(Some(text("lunch"))));
    t.recv(new);
    t.send(new, &ClientMsg::Away(None));
    assert!(t.recv(new).contains(&ServerMsg::Away {
        nick: nick("newer"),
        away: None
    }));
}
