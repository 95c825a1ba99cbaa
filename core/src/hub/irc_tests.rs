//! The IRC dialect driven in memory, beside binary and text users: registration, every command
//! and its numerics, capabilities and tags, and whole conversations. No sockets.

use super::*;
use crate::test_support::{nick, room, text};
use crate::types::Seq;
use crate::wire::{
    ClientMsg, EventKind, FrameDecoder, MAGIC, PROTOCOL_VERSION, RoomEvent, ServerMsg,
    decode_payload, encode_frame,
};
use std::collections::HashMap;

const LOCAL: IpAddr = IpAddr::V4(core::net::Ipv4Addr::LOCALHOST);

/// A hub, what it sent to each connection, and a clock.
struct Net {
    hub: Hub,
    now: Millis,
    inbox: HashMap<ConnId, Vec<u8>>,
    decoders: HashMap<ConnId, FrameDecoder>,
    events: Vec<HubEvent>,
    /// A durable hub's store: the events written (committed at once).
    stored: Vec<RoomEvent>,
    /// ... and who is in each room, by room and folded nick.
    present: std::collections::BTreeMap<(RoomName, String), Nick>,
    /// ... and the read markers written, by account and room.
    markers: Vec<(Nick, RoomName, Seq)>,
    /// The store's history reads asked so far.
    reads: usize,
    /// The store fails every read.
    store_fails: bool,
    /// The store fails every write (a full disk).
    writes_fail: bool,
    /// Reads wait here (unanswered) while this is on; `answer_held` answers them.
    hold_reads: bool,
    held: Vec<(crate::persist::QueryId, crate::persist::HistoryQuery)>,
    /// Connections that read nothing meanwhile: the bytes polled for them, not yet written
    /// (`unstall` writes them).
    stalled: HashMap<ConnId, usize>,
}

impl Net {
    fn new() -> Net {
        Net::with(Config {
            secret_seed: [3; 32],
            accounts: AccountsConfig {
                hash_cost: crate::accounts::HashCost::TEST,
                ..AccountsConfig::default()
            },
            ..Config::default()
        })
    }

    fn with(config: Config) -> Net {
        Net {
            hub: Hub::new(config),
            now: Millis(1_714_564_800_000),
            inbox: HashMap::new(),
            decoders: HashMap::new(),
            events: Vec::new(),
            stored: Vec::new(),
            present: Default::default(),
            markers: Vec::new(),
            reads: 0,
            store_fails: false,
            writes_fail: false,
            hold_reads: false,
            held: Vec::new(),
            stalled: HashMap::new(),
        }
    }

    /// `c` reads nothing until [`Net::unstall`]: its output backs up in the hub.
    fn stall(&mut self, c: ConnId) {
        self.stalled.insert(c, 0);
    }

    /// `c` reads again: what was polled for it is written, and the hub goes on.
    fn unstall(&mut self, c: ConnId) {
        if let Some(n) = self.stalled.remove(&c) {
            self.hub.handle_written(c, n, self.now);
            self.pump();
        }
    }

    fn pump(&mut self) {
        while let Some(w) = self.hub.poll_work() {
            self.hub.handle_work(w.run(), self.now);
        }
        // A durable hub's store: writes commit at once, history reads are answered at once.
        while let Some(b) = self.hub.poll_store() {
            if self.writes_fail {
                let why = "the server's disk is full: the message was not stored";
                self.hub.handle_store_failed(b.id, why, self.now);
                continue;
            }
            for w in &b.writes {
                match w {
                    crate::persist::Write::Event(ev) => self.stored.push(ev.clone()),
                    crate::persist::Write::Presence { room, nick, here } => {
                        let key = (room.clone(), nick.folded_key().as_str().to_owned());
                        if *here {
                            self.present.insert(key, nick.clone());
                        } else {
                            self.present.remove(&key);
                        }
                    }
                    crate::persist::Write::PresenceReset => self.present.clear(),
                    crate::persist::Write::ReadMarker { account, room, seq } => {
                        self.markers.push((account.clone(), room.clone(), *seq));
                    }
                    _ => {}
                }
            }
            self.hub.handle_durable(b.id, self.now);
        }
        while let Some((id, q)) = self.hub.poll_query() {
            let crate::persist::Query::History(h) = q else {
                continue;
            };
            self.reads += 1;
            if self.hold_reads {
                self.held.push((id, h));
            } else {
                let answer = self.read(&h);
                self.hub.handle_answer(id, answer, self.now);
            }
        }
        while let Some(t) = self.hub.poll_transmit() {
            self.inbox
                .entry(t.conn)
                .or_default()
                .extend_from_slice(&t.concat());
            match self.stalled.get_mut(&t.conn) {
                Some(n) => *n += t.len(),
                None => self.hub.handle_written(t.conn, t.len(), self.now),
            }
        }
        while let Some(e) = self.hub.poll_event() {
            self.events.push(e);
        }
    }

    /// The fake store's answer to a history read.
    fn read(&self, h: &crate::persist::HistoryQuery) -> crate::persist::Answer {
        use crate::persist::{Answer, HistoryPage};
        if self.store_fails {
            return Answer::History(Err("disk on fire".into()));
        }
        let mut events: Vec<RoomEvent> = self
            .stored
            .iter()
            .filter(|e| e.room == h.room && e.seq < h.before)
            .cloned()
            .collect();
        let at_start = events.len() <= h.limit;
        events.drain(..events.len().saturating_sub(h.limit));
        Answer::History(Ok(HistoryPage { events, at_start }))
    }

    /// Answers every read held so far.
    fn answer_held(&mut self) {
        for (id, h) in core::mem::take(&mut self.held) {
            let answer = self.read(&h);
            self.hub.handle_answer(id, answer, self.now);
        }
        self.pump();
    }

    /// Moves the clock on by `ms`, firing every deadline on the way.
    fn advance(&mut self, ms: u64) {
        let target = self.now + Millis(ms);
        while let Some(t) = self.hub.poll_timeout().filter(|t| *t <= target) {
            self.now = self.now.max(t);
            self.hub.handle_timeout(self.now);
            self.pump();
        }
        self.now = target;
        self.pump();
    }

    fn feed(&mut self, c: ConnId, bytes: &[u8]) {
        self.hub.handle_bytes(c, bytes, self.now);
        self.pump();
    }

    /// A new connection on the IRC door.
    fn irc(&mut self) -> ConnId {
        let c = self.hub.accept_on(Door::Irc, LOCAL, self.now).unwrap();
        self.pump();
        c
    }

    /// Sends IRC lines (each given without its CR LF) in one read.
    fn send(&mut self, c: ConnId, lines: &[&str]) {
        let mut bytes = Vec::new();
        for l in lines {
            bytes.extend_from_slice(l.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        self.feed(c, &bytes);
    }

    /// Everything sent to `c` since the last call, as lines without CR LF.
    fn lines(&mut self, c: ConnId) -> Vec<String> {
        let bytes = self.inbox.remove(&c).unwrap_or_default();
        let s = String::from_utf8(bytes).unwrap();
        assert!(s.is_empty() || s.ends_with("\r\n"), "{s:?}");
        s.split_terminator("\r\n").map(str::to_owned).collect()
    }

    /// `lines`, and each is at most 512 bytes (CR LF included) without its tags.
    fn said(&mut self, c: ConnId) -> Vec<String> {
        let lines = self.lines(c);
        for l in &lines {
            let body = if l.starts_with('@') {
                l.split_once(' ').unwrap().1
            } else {
                l.as_str()
            };
            assert!(body.len() + 2 <= 512, "over 512 bytes: {l}");
        }
        lines
    }

    /// An IRC client registered as `want` with `caps` (none: no CAP negotiation at all).
    fn client(&mut self, want: &str, caps: &[&str]) -> ConnId {
        let c = self.irc();
        if caps.is_empty() {
            self.send(c, &[&format!("NICK {want}"), "USER u 0 * :Real Name"]);
        } else {
            let req = format!("CAP REQ :{}", caps.join(" "));
            self.send(
                c,
                &[
                    "CAP LS 302",
                    &format!("NICK {want}"),
                    "USER u 0 * :Real Name",
                    &req,
                    "CAP END",
                ],
            );
        }
        let l = self.lines(c);
        assert!(
            l.iter().any(|l| l.contains(&format!(" 001 {want} "))),
            "{want} not welcomed: {l:?}"
        );
        // Flood control: registration took a few tokens.
        self.advance(3_000);
        self.lines(c);
        c
    }

    /// A binary client said hello as `want`; its welcome is consumed.
    fn bin(&mut self, want: &str) -> ConnId {
        let c = self.hub.accept(LOCAL, self.now).unwrap();
        self.feed(c, &MAGIC);
        self.send_bin(
            c,
            &ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                nick: nick(want),
                resume: None,
            },
        );
        assert!(matches!(self.recv(c)[..], [ServerMsg::Welcome { .. }]));
        c
    }

    fn send_bin(&mut self, c: ConnId, msg: &ClientMsg) {
        let f = encode_frame(msg).unwrap();
        self.feed(c, &f);
    }

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

    /// An nc user, greeted and in #lobby.
    fn nc(&mut self) -> (ConnId, String) {
        let c = self.hub.accept(LOCAL, self.now).unwrap();
        self.advance(self.hub.config().text_detect_wait.0);
        let n = self.hub.nick(c).unwrap().to_string();
        self.lines(c);
        (c, n)
    }

    fn closed(&self, c: ConnId) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, HubEvent::Close { conn, .. } if *conn == c))
    }

    /// A binary client said hello as `want` and joined #lobby; what it got is consumed.
    fn bin_in_lobby(&mut self, want: &str) -> ConnId {
        let c = self.bin(want);
        self.send_bin(
            c,
            &ClientMsg::Join {
                room: room("#lobby"),
            },
        );
        self.recv(c);
        c
    }

    /// An IRC client (no capabilities) registered as `want` and in #lobby.
    fn irc_in_lobby(&mut self, want: &str) -> ConnId {
        let c = self.client(want, &[]);
        self.send(c, &["JOIN #lobby"]);
        c
    }

    /// Flood tokens back, and everything said so far to `conns` read and forgotten.
    fn settle(&mut self, conns: &[ConnId]) {
        self.advance(5_000);
        for c in conns {
            self.inbox.remove(c);
            self.decoders.remove(c);
        }
    }
}

/// The numeric of a server line (`:natter.irc 433 * bob :...` → `433`), if it is one.
fn numeric(line: &str) -> Option<&str> {
    let body = if line.starts_with('@') {
        line.split_once(' ')?.1
    } else {
        line
    };
    let mut words = body.split(' ');
    (words.next()? == ":natter.irc").then_some(())?;
    words
        .next()
        .filter(|w| w.len() == 3 && w.bytes().all(|b| b.is_ascii_digit()))
}

fn numerics(lines: &[String]) -> Vec<&str> {
    lines.iter().filter_map(|l| numeric(l)).collect()
}

/// The line in `lines` that contains `needle`, for a closer look.
fn find<'a>(lines: &'a [String], needle: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in {lines:?}"))
}

/// A summary that has only arrivals, or only departures, does not count the other side as "0":
/// the words natter's own clients read (`render::crowd_words`). Until issue 22's QA an IRC client
/// read `*** 0 joined, 120 left (294 members)` when a crowd left a big room.
#[test]
fn a_big_rooms_summary_on_irc_names_only_what_happened() {
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        quiet_room_members: 2,
        crowd_summary_every: Millis(1_000),
        ..Config::default()
    });
    let a = n.bin("anna");
    n.send_bin(a, &ClientMsg::Join { room: room("#big") });
    let b = n.bin("bert");
    n.send_bin(b, &ClientMsg::Join { room: room("#big") });
    let i = n.client("ivy", &[]);
    n.send(i, &["JOIN #big"]);
    let _ = n.said(i);
    let c = n.bin("cleo");
    n.send_bin(c, &ClientMsg::Join { room: room("#big") });
    n.advance(1_000);
    assert_eq!(
        n.said(i),
        [":natter.irc NOTICE #big :*** 1 joined (4 members)"]
    );
    n.send_bin(a, &ClientMsg::Quit { reason: None });
    n.send_bin(
        b,
        &ClientMsg::Part {
            room: room("#big"),
            reason: None,
        },
    );
    n.advance(1_000);
    assert_eq!(
        n.said(i),
        [":natter.irc NOTICE #big :*** 2 left (2 members)"]
    );
}

#[test]
fn in_a_big_room_an_irc_client_sees_its_own_join_and_part_and_a_summary_of_the_rest() {
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        quiet_room_members: 2,
        crowd_summary_every: Millis(1_000),
        ..Config::default()
    });
    let a = n.bin("anna");
    n.send_bin(a, &ClientMsg::Join { room: room("#big") });
    let b = n.bin("bert");
    n.send_bin(b, &ClientMsg::Join { room: room("#big") });
    let i = n.client("ivy", &[]);
    n.send(i, &["JOIN #big"]);
    let l = n.said(i);
    assert!(l[0].starts_with(":ivy!ivy@natter JOIN #big"), "{l:?}");
    assert!(l.iter().any(|l| l.contains(" 353 ivy = #big :")), "{l:?}");
    assert!(
        l.iter()
            .any(|l| l.contains("NOTICE #big :*** 3 members here")),
        "{l:?}"
    );
    // Others come and go: no JOIN or QUIT lines, a notice that sums them up (only those after
    // ivy: her own arrival was the "3 members here" notice).
    let c = n.bin("cleo");
    n.send_bin(c, &ClientMsg::Join { room: room("#big") });
    n.send_bin(a, &ClientMsg::Quit { reason: None });
    let l = n.said(i);
    assert!(
        !l.iter()
            .any(|l| l.contains(" JOIN ") || l.contains(" QUIT ")),
        "{l:?}"
    );
    n.advance(1_000);
    let l = n.said(i);
    assert_eq!(
        l,
        [":natter.irc NOTICE #big :*** 1 joined, 1 left (3 members)"],
        "{l:?}"
    );
    // NAMES answers who is in; its own PART still comes.
    n.send(i, &["NAMES #big"]);
    let l = n.said(i);
    assert!(
        l.iter().any(|l| l.contains("#big :")
            && l.contains("bert")
            && l.contains("cleo")
            && !l.contains("anna")),
        "{l:?}"
    );
    n.send(i, &["PART #big"]);
    let l = n.said(i);
    assert!(
        l.iter().any(|l| l.starts_with(":ivy!ivy@natter PART #big")),
        "{l:?}"
    );
}

/// A channel past the member list that is not quiet (`quiet_room_members` above 300): the joiner
/// is told its size and that `NAMES` lists 300, not that JOINs are summed up.
#[test]
fn a_channel_past_the_member_list_that_is_not_quiet_tells_its_size() {
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        quiet_room_members: 1_000,
        ..Config::default()
    });
    for k in 0..=crate::limits::MAX_MEMBERS_LISTED {
        let c = n.bin(&format!("m{k}"));
        n.send_bin(c, &ClientMsg::Join { room: room("#big") });
    }
    let late = n.client("late", &[]);
    n.send(late, &["JOIN #big"]);
    let l = n.said(late);
    let notice = find(&l, "NOTICE #big :*** 302 members here");
    assert!(notice.ends_with("; NAMES lists 300 of them"), "{notice}");
    assert!(!notice.contains("summed up"), "{notice}");
}

#[test]
fn in_a_room_past_the_member_list_names_and_who_say_the_list_is_cut_short() {
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        quiet_room_members: 2,
        crowd_summary_every: Millis(1_000),
        ..Config::default()
    });
    let i = n.client("ivy", &[]);
    n.send(i, &["JOIN #big"]);
    n.said(i);
    for k in 0..crate::limits::MAX_MEMBERS_LISTED {
        let c = n.bin(&format!("m{k}"));
        n.send_bin(c, &ClientMsg::Join { room: room("#big") });
    }
    let late = n.client("late", &[]);
    n.send(late, &["JOIN #big"]);
    let l = n.said(late);
    let notice = find(&l, "NOTICE #big :*** 302 members here");
    assert!(notice.ends_with("NAMES lists 300 of them"), "{notice}");
    let end = find(&l, " 366 late #big ");
    assert!(end.ends_with("(at most 300 names are listed)"), "{end}");
    n.send(late, &["NAMES #big", "WHO #big"]);
    let l = n.said(late);
    let names: usize = l
        .iter()
        .filter(|l| l.contains(" 353 late = #big :"))
        .map(|l| l.rsplit(':').next().unwrap_or("").split(' ').count())
        .sum();
    assert_eq!(names, 300);
    let end = find(&l, " 366 late #big ");
    assert!(end.ends_with("(at most 300 names are listed)"), "{end}");
    let end = find(&l, " 315 late #big ");
    assert!(end.ends_with("(at most 300 members are listed)"), "{end}");
    // A room whose list is whole says nothing more.
    n.send(late, &["JOIN #small", "NAMES #small", "WHO #small"]);
    let l = n.said(late);
    assert!(
        l.iter()
            .filter(|l| l.contains(" 366 ") || l.contains(" 315 "))
            .all(|l| l.ends_with(":End of /NAMES list") || l.ends_with(":End of WHO list")),
        "{l:?}"
    );
}

#[test]
fn registration_without_caps_gets_the_welcome_burst() {
    let mut n = Net::new();
    let c = n.irc();
    n.send(
        c,
        &["PASS whatever", "NICK Alice", "USER alice 0 * :Alice A"],
    );
    let l = n.said(c);
    assert_eq!(
        numerics(&l),
        [
            "001", "002", "003", "004", "005", "005", "251", "252", "254", "255", "265", "266",
            "375", "372", "372", "372", "376"
        ]
    );
    assert_eq!(
        l[0],
        ":natter.irc 001 Alice :Welcome to the natter IRC network, Alice!Alice@natter"
    );
    let isupport = l[4..6].join(" ");
    for token in [
        "CASEMAPPING=ascii",
        "CHANTYPES=#",
        "NICKLEN=16",
        "CHANNELLEN=32",
        "TOPICLEN=",
        "PREFIX=(ov)@+",
        "CHANMODES=",
        "LINELEN=512",
        // What one MODE line makes (until the thirty-first session, 8 unsaid).
        "MODES=8",
        "NAMES:20,LIST:20,KICK:4,WHOIS:1 ",
        "NETWORK=natter",
        "UTF8ONLY",
        "WHOX",
    ] {
        assert!(isupport.contains(token), "{token} missing from {isupport}");
    }
    assert_eq!(n.hub.nick(c).map(Nick::as_str), Some("Alice"));
    assert_eq!(n.hub.kind(c), Some(ConnKind::Irc));
    assert!(n.events.iter().any(|e| matches!(
        e,
        HubEvent::Ready {
            kind: ConnKind::Irc,
            ..
        }
    )));
}

#[test]
fn cap_negotiation_holds_registration_until_cap_end() {
    let mut n = Net::new();
    let c = n.irc();
    n.send(c, &["CAP LS 302", "NICK bob", "USER bob 0 * :Bob"]);
    let l = n.lines(c);
    assert_eq!(
        l,
        [
            ":natter.irc CAP * LS :account-notify account-tag away-notify batch cap-notify chghost draft/chathistory echo-message extended-join extended-monitor invite-notify labeled-response message-tags multi-prefix server-time setname sasl=PLAIN userhost-in-names"
        ]
    );
    assert_eq!(n.hub.nick(c), None, "registration waits for CAP END");
    // From here on the nick given is the target, as solanum names it.
    n.send(
        c,
        &[
            "CAP REQ :server-time echo-message",
            "CAP REQ :frobnicate server-time",
            "CAP LIST",
        ],
    );
    assert_eq!(
        n.lines(c),
        [
            ":natter.irc CAP bob ACK :server-time echo-message",
            ":natter.irc CAP bob NAK :frobnicate server-time",
            ":natter.irc CAP bob LIST :echo-message server-time",
        ]
    );
    n.send(c, &["CAP BOGUS", "CAP"]);
    assert_eq!(numerics(&n.lines(c)), ["410", "461"]);
    n.send(c, &["CAP END"]);
    assert_eq!(numerics(&n.lines(c))[0], "001");
    n.advance(5_000);
    // After registration a CAP REQ changes the set; CAP END does nothing.
    n.send(c, &["CAP REQ :-echo-message", "CAP LIST", "CAP END"]);
    assert_eq!(
        n.lines(c),
        [
            ":natter.irc CAP bob ACK :-echo-message",
            ":natter.irc CAP bob LIST :server-time"
        ]
    );
}

#[test]
fn a_taken_nick_is_433_and_the_client_stays_unregistered_until_another() {
    let mut n = Net::new();
    let _alice = n.bin("alice");
    let c = n.irc();
    n.send(
        c,
        &[
            "NICK ALICE",
            "USER a 0 * :A",
            "PRIVMSG #lobby :too early",
            "JOIN #lobby",
        ],
    );
    let l = n.lines(c);
    assert_eq!(l[0], ":natter.irc 433 * ALICE :Nickname is already in use");
    assert_eq!(numerics(&l), ["433", "451", "451"]);
    assert_eq!(n.hub.nick(c), None);
    assert!(!n.closed(c));
    n.send(c, &["NICK alice2", "JOIN #lobby"]);
    let l = n.lines(c);
    assert!(l[0].contains(" 001 alice2 "), "{l:?}");
    assert!(
        l.iter().any(|l| l == ":alice2!alice2@natter JOIN #lobby"),
        "{l:?}"
    );
    // NICK to the nick one has: IRC servers say nothing.
    n.send(c, &["NICK alice2"]);
    assert_eq!(n.lines(c), Vec::<String>::new());
    // The binary dialect, by contrast, is given a free nick like it.
    let b = n.bin("alice2");
    assert_ne!(n.hub.nick(b).map(Nick::as_str), Some("alice2"));
}

/// IRC clients send passwords to NickServ (`/msg NickServ IDENTIFY ...`, irssi's and WeeChat's
/// auto-identify): natter runs no services, so nobody may be called NickServ, and what is sent
/// there is answered by the server, never relayed.
#[test]
fn nobody_may_be_nickserv_and_what_is_sent_there_reaches_nobody() {
    let mut n = Net::new();
    let (nc, _) = n.nc();
    n.send(nc, &["/nick NickServ"]);
    let l = n.lines(nc);
    assert!(
        l.iter().any(|l| l.contains("NickServ is reserved")),
        "{l:?}"
    );
    assert_ne!(n.hub.nick(nc).map(|x| x.as_str()), Some("NickServ"));
    n.send(nc, &["/nick chanserv"]);
    assert!(n.lines(nc).iter().any(|l| l.contains("is reserved")));
    // A binary client asking for it gets another nick.
    let b = n.bin("NickServ");
    assert_ne!(n.hub.nick(b).map(|x| x.folded()), Some("nickserv".into()));
    // An IRC client: 433 at registration, and at NICK later.
    let c = n.irc();
    n.send(c, &["NICK NickServ", "USER a 0 * :A"]);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["433"], "{l:?}");
    // Said as what it is: nobody has it ("already in use" would have the user wait for them).
    assert!(
        l[0].ends_with(" 433 * NickServ :Nickname is reserved: natter runs no services"),
        "{l:?}"
    );
    assert_eq!(n.hub.nick(c), None);
    let irc = n.client("carol", &[]);
    n.send(irc, &["NICK OperServ"]);
    let l = n.lines(irc);
    assert_eq!(numerics(&l), ["433"]);
    assert!(l[0].contains(":Nickname is reserved"), "{l:?}");
    // An identify is refused with the way to sign in, and said to nobody.
    n.send(irc, &["PRIVMSG NickServ :IDENTIFY carol hunter22hunter"]);
    let l = n.lines(irc);
    assert_eq!(numerics(&l), ["401"], "{l:?}");
    assert!(l[0].contains("SASL"), "{l:?}");
    // In IRC's words: an IRC client has no /login to type.
    assert!(!l[0].contains("/login"), "{l:?}");
    n.send(nc, &["/msg nickserv identify hunter22hunter"]);
    let l = n.lines(nc);
    assert!(l.iter().any(|l| l.contains("/login")), "{l:?}");
    for c in [nc, b] {
        assert!(
            !n.inbox
                .get(&c)
                .is_some_and(|b| { String::from_utf8_lossy(b).contains("hunter22") })
        );
    }
}

#[test]
fn registration_refusals_have_their_numerics() {
    let mut n = Net::new();
    let c = n.irc();
    n.send(
        c,
        &[
            "NICK",
            "NICK 9lives",
            "NICK back\\slash",
            "NICK abcdefghijklmnopq",
            "USER onlyone",
            "JOIN #a",
            "PING",
            "PING :tok en",
        ],
    );
    let l = n.lines(c);
    assert_eq!(
        numerics(&l),
        ["431", "432", "432", "432", "461", "451", "409"]
    );
    assert!(find(&l, " 432 * abcdefghijklmnopq ").contains("at most 16"));
    assert_eq!(l.last().unwrap(), ":natter.irc PONG natter.irc :tok en");
    n.send(c, &["QUIT :bye"]);
    assert_eq!(n.lines(c), ["ERROR :Closing Link: natter (Quit: bye)"]);
    assert!(n.closed(c));
}

/// Before registration, numerics name the nick the client gave (`451 x`), as InspIRCd and ergo
/// answer, not `*`: `*` is for a client that has given none, or whose nick was refused.
#[test]
fn numerics_before_registration_name_the_nick_given() {
    let mut n = Net::new();
    let c = n.irc();
    n.send(c, &["JOIN #a", "NICK x", "JOIN #a", "CAP LS", "PING :t"]);
    let l = n.lines(c);
    assert_eq!(l[0], ":natter.irc 451 * :You have not registered");
    assert_eq!(l[1], ":natter.irc 451 x :You have not registered");
    assert!(l[2].starts_with(":natter.irc CAP x LS "), "{l:?}");
    // A later NICK is the one named; a refused one leaves the last good one.
    n.send(c, &["NICK y", "NICK 9bad", "WHO y"]);
    let l = n.lines(c);
    assert_eq!(l.len(), 2, "{l:?}");
    assert!(l[0].starts_with(":natter.irc 432 y 9bad :"), "{l:?}");
    assert_eq!(l[1], ":natter.irc 451 y :You have not registered");
    // The hub's answers too: a failed SASL exchange.
    n.send(
        c,
        &[
            "CAP REQ sasl",
            "AUTHENTICATE PLAIN",
            "AUTHENTICATE AGJvYgBub3Bl",
        ],
    );
    n.advance(1_000);
    let l = n.lines(c);
    assert!(
        l.iter().any(|l| l.starts_with(":natter.irc 904 y :")),
        "{l:?}"
    );
    // A nick refused at registration (taken): the 433 and what follows say `*`, as before.
    let _bob = n.bin("bob");
    let d = n.irc();
    n.send(d, &["NICK bob", "USER b 0 * :B", "JOIN #a"]);
    let l = n.lines(d);
    assert_eq!(
        l,
        [
            ":natter.irc 433 * bob :Nickname is already in use",
            ":natter.irc 451 * :You have not registered",
        ]
    );
}

#[test]
fn a_registration_pipelined_with_commands_in_one_read_works() {
    let mut n = Net::new();
    let b = n.bin("bob");
    n.send_bin(b, &ClientMsg::Join { room: room("#ci") });
    n.recv(b);
    let c = n.irc();
    n.send(
        c,
        &[
            "NICK bot",
            "USER bot 0 * :bot",
            "JOIN #ci",
            "PRIVMSG #ci :build green",
            "QUIT",
        ],
    );
    let l = n.lines(c);
    assert!(l.iter().any(|l| l == ":bot!bot@natter JOIN #ci"), "{l:?}");
    assert_eq!(
        l.last().unwrap(),
        "ERROR :Closing Link: natter (Client Quit)"
    );
    let got = n.recv(b);
    let said: Vec<_> = got
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Event(RoomEvent {
                kind: EventKind::Say { text, .. },
                from,
                ..
            }) => Some((from.to_string(), text.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(said, [("bot".to_owned(), "build green".to_owned())]);
}

/// `ADMIN`, `LINKS` and `STATS` (irssi's `/admin`, `/links`, `/stats u`; RFC 2812 3.4.9, 3.4.5,
/// 3.4.4) were `421 Unknown command`: they are answered as a one-server network answers them,
/// `ADMIN` with `256`-`259` (natter keeps no contact details: the lines say so), `LINKS` with
/// the server alone (`364`, `365`), `STATS` with its end (`219`: natter keeps none of IRC's
/// statistics), and a letter missing is `461`.
#[test]
fn admin_links_and_stats_are_answered_not_421() {
    let mut n = Net::new();
    let c = n.irc_in_lobby("al");
    n.settle(&[c]);
    n.lines(c);
    for asked in ["ADMIN", "ADMIN natter.irc", "admin al"] {
        n.send(c, &[asked]);
        let l = n.said(c);
        assert_eq!(numerics(&l), ["256", "257", "258", "259"], "{asked}: {l:?}");
        assert_eq!(
            l[0], ":natter.irc 256 al natter.irc :Administrative info",
            "{asked}"
        );
        assert!(l[1].starts_with(":natter.irc 257 al :"), "{l:?}");
        assert!(l[3].starts_with(":natter.irc 259 al :"), "{l:?}");
    }
    n.send(c, &["LINKS"]);
    assert_eq!(
        n.said(c),
        [
            ":natter.irc 364 al natter.irc natter.irc :0 natter",
            ":natter.irc 365 al * :End of /LINKS list",
        ]
    );
    n.send(c, &["LINKS *.irc"]);
    assert_eq!(
        n.said(c),
        [
            ":natter.irc 364 al natter.irc natter.irc :0 natter",
            ":natter.irc 365 al *.irc :End of /LINKS list",
        ]
    );
    // A mask the server's name does not match lists nothing.
    n.send(c, &["LINKS *.example.org"]);
    assert_eq!(
        n.said(c),
        [":natter.irc 365 al *.example.org :End of /LINKS list"]
    );
    n.send(c, &["STATS u", "STATS"]);
    assert_eq!(
        n.said(c),
        [
            ":natter.irc 219 al u :End of /STATS report",
            ":natter.irc 461 al STATS :Not enough parameters",
        ]
    );
    // HELP names them too.
    n.send(c, &["HELP LINKS"]);
    assert_eq!(numerics(&n.said(c)), ["704", "705", "706"]);
}

/// `ADMIN`, `LINKS` and `STATS` took any target for this server: one that names another server
/// is `402 ERR_NOSUCHSERVER`, as servers answer (and `TIME`, `MOTD`, `VERSION` alike). This
/// server's name in any case, a mask it matches, or a nick (on this server: natter is a network
/// of one) is answered as before.
#[test]
fn a_server_target_that_is_not_this_server_is_402() {
    let mut n = Net::new();
    let c = n.irc_in_lobby("al");
    n.settle(&[c]);
    n.lines(c);
    for asked in [
        "ADMIN irc.example.org",
        "ADMIN *.example.org",
        "LINKS irc.example.org *",
        "STATS u irc.example.org",
        "TIME irc.example.org",
        "MOTD irc.example.org",
        "VERSION irc.example.org",
    ] {
        n.send(c, &[asked]);
        n.advance(1_000);
        let l = n.said(c);
        assert_eq!(
            l,
            [
                ":natter.irc 402 al irc.example.org :No such server".replace(
                    "irc.example.org",
                    asked.split(' ').find(|w| w.contains('.')).unwrap()
                )
            ],
            "{asked}"
        );
    }
    for (asked, want) in [
        ("ADMIN NATTER.IRC", "256"),
        ("ADMIN *.irc", "256"),
        ("ADMIN natter.*", "256"),
        ("ADMIN al", "256"),
        ("LINKS natter.irc *", "364"),
        ("STATS u natter.irc", "219"),
        ("TIME natter.irc", "391"),
        ("VERSION *", "351"),
    ] {
        n.send(c, &[asked]);
        n.advance(1_000);
        let l = n.said(c);
        assert_eq!(numerics(&l).first().copied(), Some(want), "{asked}: {l:?}");
    }
    // A mask alone is LINKS's mask, not a server: it lists nothing, no 402.
    n.send(c, &["LINKS *.example.org"]);
    assert_eq!(numerics(&n.said(c)), ["365"]);
}

/// A parameter a client gave as the last one (after `:`) may hold spaces; echoed as a middle
/// parameter of a numeric (`LINKS :a b`'s `365`) it split into two, and the client read the
/// rest of the line wrong. An echo stops at its first space.
#[test]
fn an_echoed_parameter_with_a_space_stays_one_parameter() {
    let mut n = Net::new();
    let c = n.irc_in_lobby("al");
    n.settle(&[c]);
    n.lines(c);
    n.send(
        c,
        &["LINKS :*.irc and more", "STATS : u", "KICK #lobby :no body"],
    );
    let l = n.said(c);
    assert_eq!(
        l,
        [
            ":natter.irc 364 al natter.irc natter.irc :0 natter",
            ":natter.irc 365 al *.irc :End of /LINKS list",
            ":natter.irc 219 al * :End of /STATS report",
            ":natter.irc 401 al no :No such nick/channel",
        ]
    );
}

/// `HELP` (`/quote HELP`, WeeChat's `/quote help`) was `421 Unknown command`: it is answered
/// as ergo and InspIRCd answer it, `704`, `705`s and `706`, with the commands natter takes;
/// `HELP command` with a line for it, `524` for one natter does not take.
#[test]
fn help_lists_the_irc_commands_and_says_one() {
    let mut n = Net::new();
    let c = n.irc_in_lobby("al");
    n.settle(&[c]);
    n.lines(c);
    n.send(c, &["HELP"]);
    let l = n.said(c);
    let codes = numerics(&l);
    assert_eq!(codes.first(), Some(&"704"), "{l:?}");
    assert_eq!(codes.last(), Some(&"706"), "{l:?}");
    assert!(
        codes[1..codes.len() - 1].iter().all(|c| *c == "705"),
        "{l:?}"
    );
    assert!(l[0].starts_with(":natter.irc 704 al * :"), "{l:?}");
    let all = l.join("\n");
    for cmd in [
        "JOIN",
        "PRIVMSG",
        "CHATHISTORY",
        "SEARCH",
        "MONITOR",
        "QUIT",
        "HELP",
    ] {
        assert!(
            l[1..]
                .iter()
                .any(|line| line.split([' ', ':']).any(|w| w == cmd)),
            "{cmd} not listed: {all}"
        );
    }
    assert!(l.iter().all(|line| line.len() <= 512), "{l:?}");

    // One command, any case, with or without its slash.
    for asked in ["HELP join", "HELPOP JOIN", "HELP /Join"] {
        n.send(c, &[asked]);
        let l = n.said(c);
        assert_eq!(numerics(&l), ["704", "705", "706"], "{asked}: {l:?}");
        assert!(
            l[0].starts_with(":natter.irc 704 al JOIN :JOIN #channel"),
            "{asked}: {l:?}"
        );
        assert!(l[1].contains("join channels"), "{l:?}");
    }
    n.send(c, &["HELP FROBNICATE"]);
    assert_eq!(
        n.said(c),
        [":natter.irc 524 al FROBNICATE :No help available on this topic"]
    );
    // A labeled HELP comes in one batch.
    let b = n.client("bo", &["batch", "labeled-response"]);
    n.send(b, &["@label=h1 HELP motd"]);
    let l = n.lines(b);
    assert_eq!(l.len(), 5, "{l:?}");
    assert!(l[0].starts_with("@label=h1 :natter.irc BATCH +"), "{l:?}");
    assert!(
        l[2].ends_with(" 705 bo MOTD :the message of the day"),
        "{l:?}"
    );
}

#[test]
fn an_irc_client_searches_history_with_natters_search_answered_as_notices() {
    // Until the thirty-third session `SEARCH` was `421 Unknown command`: IRC users had no way
    // to the history search every other door has. natter's own command (`/quote SEARCH ...`
    // in irssi and WeeChat), answered in the words nc users read, as server NOTICEs.
    let mut n = Net::new();
    let c = n.irc_in_lobby("al");
    n.send(
        c,
        &[
            "PRIVMSG #lobby :the borrow checker",
            "PRIVMSG #lobby :lunch?",
        ],
    );
    n.settle(&[c]);
    n.send(c, &["SEARCH #lobby :Borrow"]);
    let l = n.said(c);
    assert_eq!(l.len(), 2, "{l:?}");
    assert!(
        l[0].starts_with(":natter.irc NOTICE al :[#lobby ")
            && l[0].ends_with("] <al> the borrow checker"),
        "{l:?}"
    );
    assert_eq!(l[1], ":natter.irc NOTICE al :1 result");
    // Words as separate parameters, every room.
    n.send(c, &["SEARCH lunch nothing"]);
    assert_eq!(n.said(c), [":natter.irc NOTICE al :no results"]);
    n.send(c, &["SEARCH"]);
    assert_eq!(numerics(&n.said(c)), ["461"]);
    n.send(c, &["SEARCH #c++ x"]);
    assert_eq!(numerics(&n.said(c)), ["479"]);
    n.send(c, &["SEARCH #elsewhere x"]);
    assert_eq!(numerics(&n.said(c)), ["442"]);
    // Words, but none to search for once their formatting and invisible characters are gone:
    // said so in words, not `461 Not enough parameters` (the client gave some).
    for line in ["SEARCH #lobby :\x02\x0f", "SEARCH \u{200b}"] {
        n.send(c, &[line]);
        let l = n.said(c);
        assert_eq!(l.len(), 1, "{l:?}");
        assert!(
            l[0].starts_with(":natter.irc NOTICE al :no results: those words are only"),
            "{line:?}: {l:?}"
        );
    }
    n.send(c, &["SEARCH #lobby"]);
    assert_eq!(numerics(&n.said(c)), ["461"]);
    // More words than a search reads: the first 32, as on every door.
    let many = format!("SEARCH #lobby borrow {}", "checker ".repeat(40));
    n.send(c, &[&many]);
    assert_eq!(
        n.said(c).last().map(String::as_str),
        Some(":natter.irc NOTICE al :1 result")
    );
}

#[test]
fn every_refusal_after_registration_is_a_numeric() {
    let mut n = Net::new();
    let bob = n.bin("bob");
    // #x exists (bob is in it) and al is not in it; #nowhere does not exist.
    n.send_bin(bob, &ClientMsg::Join { room: room("#x") });
    let c = n.client("al", &[]);
    let cases: &[(&str, &[&str])] = &[
        ("FROBNICATE x", &["421"]),
        ("USER a 0 * :a", &["462"]),
        ("PASS x", &["462"]),
        ("JOIN", &["461"]),
        ("JOIN #c++", &["479"]),
        ("JOIN &local", &["403"]),
        ("JOIN #aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &["479"]),
        ("PART #nowhere", &["403"]),
        ("PART #x", &["442"]),
        ("PART", &["461"]),
        ("PRIVMSG", &["411"]),
        ("PRIVMSG #x", &["412"]),
        ("PRIVMSG #x :\x02\x02", &["412"]),
        ("PRIVMSG nobody :hi", &["401"]),
        ("PRIVMSG #x :hi", &["404"]),
        ("PRIVMSG #nowhere :hi", &["403"]),
        // No error reply to a NOTICE (RFC 2812, 3.3.2), from servers either.
        ("NOTICE #x :hi", &[]),
        ("NOTICE #nowhere :hi", &[]),
        ("PRIVMSG #nowhere,#x :hi", &["403", "404"]),
        ("PRIVMSG #c++ :hi", &["403"]),
        (
            "PRIVMSG a,b,c,d,e :hi",
            &["401", "401", "401", "401", "407"],
        ),
        ("NOTICE nobody :hi", &[]),
        // Commas and no target: 411 (until the thirty-first session, nothing at all).
        ("PRIVMSG ,, :hi", &["411"]),
        ("NOTICE , :hi", &[]),
        // A target named twice is one target: four others still fit.
        (
            "PRIVMSG a,A,b,c,d,e :hi",
            &["401", "401", "401", "401", "407"],
        ),
        ("NICK", &["431"]),
        ("NICK 1x", &["432"]),
        ("NICK bob", &["433"]),
        ("TOPIC", &["461"]),
        ("TOPIC #nowhere", &["403"]),
        ("TOPIC #x :mine", &["442"]),
        ("TOPIC #c++", &["479"]),
        ("MODE", &["461"]),
        ("MODE #x +o bob", &["442"]),
        ("MODE #nowhere +o bob", &["403"]),
        ("MODE bob +i", &["502"]),
        // Modern IRC: a nick nobody has is 401, not 502 (until the thirtieth session).
        ("MODE nobody", &["401"]),
        ("MODE nobody +i", &["401"]),
        ("MODE 9bad +i", &["401"]),
        ("MODE bob", &["502"]),
        ("MODE al +z", &["501"]),
        ("KICK #x bob", &["442"]),
        // Four nicks at most, as TARGMAX says (until the thirty-first session the fifth was
        // left out without a word).
        ("KICK #x a,b,c,d,e", &["442", "442", "442", "442", "407"]),
        ("KICK #nowhere bob", &["403"]),
        ("KICK #x", &["461"]),
        ("WHOIS", &["431"]),
        ("WHOIS nobody", &["401", "318"]),
        ("WHOIS 9bad", &["401", "318"]),
        ("WHOWAS ghost", &["406", "369"]),
        ("ISON", &["461"]),
        ("USERHOST", &["461"]),
        ("INVITE bob #x", &["442"]),
        ("MODE #x +z", &["472"]),
    ];
    for (line, want) in cases {
        n.send(c, &[line]);
        n.advance(1_000);
        let l = n.said(c);
        assert_eq!(numerics(&l), *want, "{line}: {l:?}");
    }
    assert!(!n.closed(c));
}

#[test]
fn a_line_too_long_is_417_and_non_utf8_is_fail() {
    let mut n = Net::new();
    let c = n.client("al", &[]);
    let long = format!("PRIVMSG #x :{}", "y".repeat(600));
    n.send(c, &[&long, "PING :still here"]);
    let l = n.lines(c);
    assert_eq!(l[0], ":natter.irc 417 al :Input line was too long");
    assert_eq!(l[1], ":natter.irc PONG natter.irc :still here");
    n.feed(c, b"PRIVMSG #x :caf\xe9\r\n\x00\x01\x02junk\r\n");
    let l = n.lines(c);
    assert_eq!(
        l[0],
        ":natter.irc FAIL PRIVMSG INVALID_UTF8 :Message rejected: natter takes UTF-8 only"
    );
    assert_eq!(numerics(&l[1..]), ["421"]);
    assert!(!n.closed(c));
    assert!(n.events.iter().any(|e| matches!(
        e,
        HubEvent::LimitHit {
            limit: Limit::Line,
            ..
        }
    )));
}

#[test]
fn a_conversation_between_irc_binary_and_nc_users() {
    let mut n = Net::new();
    let (nc, ncn) = n.nc();
    let b = n.bin("bin");
    n.send_bin(
        b,
        &ClientMsg::Join {
            room: RoomName::lobby(),
        },
    );
    n.recv(b);
    n.lines(nc);
    let i = n.client("irc", &[]);

    // IRC joins: its own JOIN, the names, and everyone else sees it.
    n.send(i, &["JOIN #Lobby"]);
    let l = n.lines(i);
    assert_eq!(l[0], ":irc!irc@natter JOIN #lobby");
    let names = find(&l, " 353 irc = #lobby :");
    for who in [ncn.as_str(), "bin", "irc"] {
        assert!(
            names.split(' ').any(|w| w.trim_start_matches(':') == who),
            "{names}"
        );
    }
    assert!(l.last().unwrap().contains(" 366 irc #lobby "));
    assert_eq!(n.lines(nc), ["-- irc joined #lobby"]);
    assert!(matches!(
        &n.recv(b)[..],
        [ServerMsg::Event(RoomEvent {
            kind: EventKind::Join,
            ..
        })]
    ));

    // IRC speaks and acts; the others read it; IRC does not get its own line back.
    n.send(
        i,
        &[
            "PRIVMSG #lobby :hello all",
            "PRIVMSG #LOBBY :\x01ACTION waves\x01",
        ],
    );
    assert_eq!(n.lines(nc), ["<irc> hello all", "* irc waves"]);
    let kinds: Vec<_> = n
        .recv(b)
        .into_iter()
        .filter_map(|m| match m {
            ServerMsg::Event(ev) => Some(ev.kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::Say {
                id: crate::types::MsgId(1),
                text: text("hello all")
            },
            EventKind::Act {
                id: crate::types::MsgId(2),
                text: text("waves")
            },
        ]
    );
    assert!(n.lines(i).is_empty());

    // The others speak; IRC reads PRIVMSGs from nick!nick@natter.
    n.feed(nc, b"hi irc\n/me smiles\n");
    n.send_bin(
        b,
        &ClientMsg::Say {
            room: RoomName::lobby(),
            id: crate::types::MsgId(1),
            text: text("from the client"),
        },
    );
    n.lines(nc);
    n.recv(b);
    assert_eq!(
        n.lines(i),
        [
            format!(":{ncn}!{ncn}@natter PRIVMSG #lobby :hi irc"),
            format!(":{ncn}!{ncn}@natter PRIVMSG #lobby :\x01ACTION smiles\x01"),
            ":bin!bin@natter PRIVMSG #lobby :from the client".to_owned(),
        ]
    );

    // Topics both ways.
    n.send(i, &["TOPIC #lobby :irc talk"]);
    assert_eq!(n.lines(i), [":irc!irc@natter TOPIC #lobby :irc talk"]);
    assert_eq!(n.lines(nc), ["-- irc set the topic of #lobby: irc talk"]);
    n.feed(nc, b"/topic #lobby nc talk\n");
    assert_eq!(
        n.lines(i),
        [format!(":{ncn}!{ncn}@natter TOPIC #lobby :nc talk")]
    );
    n.lines(nc);
    n.send(i, &["TOPIC #lobby"]);
    assert_eq!(
        n.lines(i),
        [
            ":natter.irc 332 irc #lobby :nc talk".to_owned(),
            format!(
                ":natter.irc 333 irc #lobby {ncn}!{ncn}@natter {}",
                n.now.0 / 1000
            )
        ]
    );

    // Nick changes both ways.
    n.send(i, &["NICK Irky"]);
    assert_eq!(n.lines(i), [":irc!irc@natter NICK :Irky"]);
    assert_eq!(n.lines(nc), ["-- irc is now known as Irky"]);
    n.send_bin(
        b,
        &ClientMsg::Nick {
            nick: nick("binny"),
        },
    );
    assert_eq!(n.lines(i), [":bin!bin@natter NICK :binny"]);
    n.advance(1_000);
    n.recv(b);
    n.lines(nc);

    // Direct messages both ways, and an nc user's /msg.
    n.send(i, &["PRIVMSG binny :psst"]);
    let dm = n.recv(b);
    assert!(
        matches!(&dm[..], [ServerMsg::Direct(d)] if d.from.as_str() == "Irky" && d.text.as_str() == "psst")
    );
    n.feed(nc, b"/msg irky back at you\n");
    assert_eq!(
        n.lines(i),
        [format!(":{ncn}!{ncn}@natter PRIVMSG Irky :back at you")]
    );
    assert_eq!(n.lines(nc), ["-> *Irky* back at you"]);

    // Parts and quits.
    n.send(i, &["PART #lobby :lunch"]);
    assert_eq!(n.lines(i), [":Irky!Irky@natter PART #lobby :lunch"]);
    assert_eq!(n.lines(nc), ["-- Irky left #lobby (lunch)"]);
    n.send(i, &["JOIN #lobby"]);
    n.lines(i);
    n.feed(nc, b"/quit gone\n");
    assert_eq!(n.lines(i), [format!(":{ncn}!{ncn}@natter QUIT :gone")]);
    n.send(i, &["QUIT :bye now"]);
    assert_eq!(n.lines(i), ["ERROR :Closing Link: natter (Quit: bye now)"]);
    assert!(n.closed(i));
    let quit = n.recv(b);
    assert!(quit.iter().any(|m| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Quit { reason: Some(r) }, .. }) if r.as_str() == "bye now")));
}

#[test]
fn a_nick_change_or_quit_seen_in_several_rooms_is_one_line_on_irc_and_nc() {
    let mut n = Net::new();
    let rooms = ["#lobby", "#a", "#b"];
    let watcher = n.client("watcher", &[]);
    let echoer = n.client("echoer", &["echo-message"]);
    let (nc, _) = n.nc();
    let seen = n.bin("seen");
    let mover = n.bin("mover");
    n.send(watcher, &["JOIN #lobby,#a,#b"]);
    n.send(echoer, &["JOIN #lobby,#a,#b"]);
    for r in ["#a", "#b"] {
        n.feed(nc, format!("/join {r}\n").as_bytes());
    }
    for c in [seen, mover] {
        for r in rooms {
            n.send_bin(c, &ClientMsg::Join { room: room(r) });
        }
    }
    n.settle(&[watcher, echoer, nc, seen, mover]);

    // Another user's nick change: one NICK, one line; a binary client hears it in each room.
    n.send_bin(
        mover,
        &ClientMsg::Nick {
            nick: nick("moved"),
        },
    );
    assert_eq!(n.lines(watcher), [":mover!mover@natter NICK :moved"]);
    assert_eq!(n.lines(echoer), [":mover!mover@natter NICK :moved"]);
    assert_eq!(n.lines(nc), ["-- mover is now known as moved"]);
    let mut nicks: Vec<String> = n
        .recv(seen)
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Event(RoomEvent {
                room,
                kind: EventKind::Nick { .. },
                ..
            }) => Some(room.to_string()),
            _ => None,
        })
        .collect();
    nicks.sort();
    assert_eq!(nicks, ["#a", "#b", "#lobby"]);

    // An echo-message client's own change in three channels: one NICK back.
    n.send(echoer, &["NICK echoed"]);
    assert_eq!(n.lines(echoer), [":echoer!echoer@natter NICK :echoed"]);
    assert_eq!(n.lines(watcher), [":echoer!echoer@natter NICK :echoed"]);
    n.settle(&[watcher, echoer, nc, seen, mover]);

    // A quit: one QUIT, one line, and each room's event to the binary client.
    n.send_bin(
        mover,
        &ClientMsg::Quit {
            reason: Some(text("off")),
        },
    );
    assert_eq!(n.lines(watcher), [":moved!moved@natter QUIT :off"]);
    assert_eq!(n.lines(echoer), [":moved!moved@natter QUIT :off"]);
    assert_eq!(n.lines(nc), ["-- moved quit (off)"]);
    let quits = n
        .recv(seen)
        .iter()
        .filter(|m| {
            matches!(
                m,
                ServerMsg::Event(RoomEvent {
                    kind: EventKind::Quit { .. },
                    ..
                })
            )
        })
        .count();
    assert_eq!(quits, rooms.len());

    // The next quit is told again: what was told is not remembered past its change.
    n.feed(nc, b"/quit\n");
    assert_eq!(n.lines(watcher).len(), 1);
    assert_eq!(n.lines(echoer).len(), 1);
}

/// A part's reason from a natter client may be as long as a message (2,000 bytes): an IRC
/// member's `PART` line is cut to fit IRC's 512 bytes (as a quit's and a kick's reason are),
/// not sent whole.
#[test]
fn a_long_part_reason_fits_an_irc_line() {
    let mut n = Net::new();
    let i = n.client("reader", &[]);
    n.send(i, &["JOIN #long"]);
    n.lines(i);
    let b = n.bin("writer");
    let r = room("#long");
    n.send_bin(b, &ClientMsg::Join { room: r.clone() });
    n.lines(i);
    let reason = "gone ".repeat(390);
    assert!(reason.len() <= crate::limits::MAX_TEXT_BYTES);
    n.send_bin(
        b,
        &ClientMsg::Part {
            room: r,
            reason: Some(text(&reason)),
        },
    );
    let l = n.lines(i);
    let part = l.iter().find(|l| l.contains(" PART ")).expect("the PART");
    assert!(part.len() + 2 <= 512, "{} bytes: {part}", part.len());
    assert!(part.contains(" :gone gone "), "{part}");
}

#[test]
fn a_long_natter_text_reaches_irc_in_several_lines_with_nothing_lost() {
    let mut n = Net::new();
    let i = n.client("reader", &["server-time", "message-tags"]);
    n.send(i, &["JOIN #long"]);
    n.lines(i);
    let b = n.bin("writer");
    n.send_bin(
        b,
        &ClientMsg::Join {
            room: room("#long"),
        },
    );
    n.lines(i);
    let said = format!("{}é{}", "word ".repeat(300), "ü".repeat(200));
    assert!(said.len() <= crate::limits::MAX_TEXT_BYTES);
    n.send_bin(
        b,
        &ClientMsg::Say {
            room: room("#long"),
            id: crate::types::MsgId(1),
            text: text(&said),
        },
    );
    n.send_bin(
        b,
        &ClientMsg::Act {
            room: room("#long"),
            id: crate::types::MsgId(2),
            text: text(&said),
        },
    );
    let l = n.said(i);
    let says: Vec<&String> = l.iter().filter(|l| !l.contains("\x01ACTION")).collect();
    let acts: Vec<&String> = l.iter().filter(|l| l.contains("\x01ACTION")).collect();
    assert!(says.len() >= 4 && acts.len() >= 4, "{l:?}");
    let text_of = |l: &str| l.split_once(" :").unwrap().1.to_owned();
    let joined: String = says
        .iter()
        .map(|l| text_of(l.split_once(' ').unwrap().1))
        .collect();
    assert_eq!(joined, said);
    let joined: String = acts
        .iter()
        .map(|l| {
            let t = text_of(l.split_once(' ').unwrap().1);
            t.strip_prefix("\x01ACTION ")
                .unwrap()
                .strip_suffix('\x01')
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(joined, said);
    // Each part has its own msgid, the first the event's.
    assert!(
        says[0].starts_with("@time=") && says[0].contains(";msgid=long/3 "),
        "{}",
        says[0]
    );
    assert!(says[1].contains(";msgid=long/3.2 "), "{}", says[1]);
}

#[test]
fn echo_message_server_time_msgid_and_labels() {
    let mut n = Net::new();
    let caps = [
        "echo-message",
        "server-time",
        "message-tags",
        "batch",
        "labeled-response",
    ];
    let i = n.client("tagged", &caps);
    let p = n.client("plain", &[]);
    n.send(p, &["JOIN #t"]);
    n.send(i, &["@label=j1 JOIN #t"]);
    let l = n.lines(i);
    let id = l[0]
        .strip_prefix("@label=j1 :natter.irc BATCH +")
        .and_then(|r| r.strip_suffix(" labeled-response"))
        .unwrap_or_else(|| panic!("{l:?}"));
    assert_eq!(
        l[1],
        format!("@batch={id};time=2024-05-01T12:00:06.000Z :tagged!tagged@natter JOIN #t")
    );
    assert!(
        l[2..l.len() - 1]
            .iter()
            .all(|l| l.starts_with(&format!("@batch={id} "))),
        "{l:?}"
    );
    assert_eq!(l.last().unwrap(), &format!(":natter.irc BATCH -{id}"));
    n.lines(p);

    // A labeled PRIVMSG: the echo is the answer and carries the label.
    n.send(i, &["@label=m1 PRIVMSG #t :hello"]);
    let l = n.lines(i);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with("@label=m1;time=2024-05-01T12:00:0"),
        "{}",
        l[0]
    );
    assert!(
        l[0].contains(";msgid=t/3 :tagged!tagged@natter PRIVMSG #t :hello"),
        "{}",
        l[0]
    );
    // The plain client gets it untagged.
    assert_eq!(n.lines(p), [":tagged!tagged@natter PRIVMSG #t :hello"]);

    // A labeled line with no answer gets an ACK; an unlabeled PRIVMSG is echoed with tags.
    n.send(i, &["@label=a1 TAGMSG #t", "PRIVMSG #t :again"]);
    let l = n.lines(i);
    assert_eq!(l[0], "@label=a1 :natter.irc ACK");
    assert!(
        l[1].starts_with("@time=") && l[1].ends_with("PRIVMSG #t :again"),
        "{l:?}"
    );
    n.lines(p);

    // A labeled refusal carries the label.
    n.send(i, &["@label=e1 PRIVMSG nobody :x"]);
    let l = n.lines(i);
    assert!(
        l[0].starts_with("@label=e1 :natter.irc 401 tagged nobody "),
        "{l:?}"
    );
    assert_eq!(l.len(), 1);

    // A labeled WHOIS is a batch.
    n.send(i, &["@label=w1 WHOIS plain"]);
    let l = n.lines(i);
    assert!(l[0].starts_with("@label=w1 :natter.irc BATCH +L"), "{l:?}");
    assert!(l[1..l.len() - 1].iter().all(|l| l.starts_with("@batch=L")));
    assert_eq!(numerics(&l), ["311", "319", "312", "317", "318"]);

    // Without labeled-response (or without batch) a label is ignored.
    n.send(p, &["@label=x PING :p"]);
    assert_eq!(n.lines(p), [":natter.irc PONG natter.irc :p"]);
    // A DM with echo-message comes back to its sender, tagged.
    n.send(i, &["PRIVMSG plain :psst"]);
    let l = n.lines(i);
    assert!(
        l[0].contains(";msgid=@tagged/")
            && l[0].ends_with(" :tagged!tagged@natter PRIVMSG plain :psst"),
        "{l:?}"
    );
    assert_eq!(n.lines(p), [":tagged!tagged@natter PRIVMSG plain :psst"]);
}

#[test]
fn history_comes_with_a_join_in_a_chathistory_batch_only_for_clients_that_can_tell() {
    let mut n = Net::new();
    let b = n.bin("old");
    n.send_bin(b, &ClientMsg::Join { room: room("#h") });
    n.send_bin(
        b,
        &ClientMsg::Say {
            room: room("#h"),
            id: crate::types::MsgId(1),
            text: text("before you came"),
        },
    );
    n.send_bin(
        b,
        &ClientMsg::Act {
            room: room("#h"),
            id: crate::types::MsgId(2),
            text: text("yawns"),
        },
    );
    let t = n.client("timed", &["server-time", "batch"]);
    n.send(t, &["JOIN #h"]);
    let l = n.lines(t);
    let at = l
        .iter()
        .position(|l| l.contains("BATCH +h"))
        .expect("a history batch");
    let id = l[at]
        .strip_prefix(":natter.irc BATCH +")
        .and_then(|r| r.strip_suffix(" chathistory #h"))
        .unwrap_or_else(|| panic!("{l:?}"));
    assert!(
        l[at + 1].starts_with(&format!("@batch={id};time=2024-")),
        "{l:?}"
    );
    assert!(l[at + 1].ends_with("PRIVMSG #h :before you came"));
    assert!(l[at + 2].ends_with("PRIVMSG #h :\x01ACTION yawns\x01"));
    assert_eq!(
        l[at + 3],
        format!(":natter.irc BATCH -{id}"),
        "old joins are left out: {l:?}"
    );
    // A client without server-time gets no history (it would read as new).
    let p = n.client("plain", &[]);
    n.send(p, &["JOIN #h"]);
    let l = n.lines(p);
    assert!(!l.iter().any(|l| l.contains("PRIVMSG")), "{l:?}");
    // With server-time but no batch: the lines, timed.
    let s = n.client("stamped", &["server-time"]);
    n.send(s, &["JOIN #h"]);
    let l = n.lines(s);
    assert!(find(&l, "before you came").starts_with("@time="));
}

/// A join's replay is the room's last `history_on_join` lines, not the lines among its last
/// `history_on_join` events: in a room where people came and went after the talk, those
/// events were all joins and parts, and the replay was empty.
#[test]
fn a_joins_replay_is_the_last_lines_however_many_came_and_went_after_them() {
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        history_on_join: 3,
        ..Config::default()
    });
    let b = n.bin("old");
    n.send_bin(b, &ClientMsg::Join { room: room("#h") });
    said_lines(&mut n, b, "#h", 4);
    for i in 0..4 {
        let g = n.bin(&format!("passer{i}"));
        n.send_bin(g, &ClientMsg::Join { room: room("#h") });
        n.send_bin(
            g,
            &ClientMsg::Part {
                room: room("#h"),
                reason: None,
            },
        );
    }
    let t = n.client("timed", &["server-time", "batch"]);
    n.send(t, &["JOIN #h"]);
    let l = n.lines(t);
    assert_eq!(privmsg_texts(&l), ["line 2", "line 3", "line 4"], "{l:?}");
}

/// A client back after its quit is spared the lines before the quit however many came and went
/// after it: the join's replay is the last lines, further back than the last events, and the
/// quit was looked for among the last events only (its window got them twice).
#[test]
fn a_client_back_after_quitting_while_many_came_and_went_is_replayed_only_what_it_missed() {
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        history_on_join: 3,
        ..Config::default()
    });
    let b = n.bin("old");
    n.send_bin(b, &ClientMsg::Join { room: room("#h") });
    let caps = ["server-time", "batch", "message-tags"];
    let l1 = n.client("lounge", &caps);
    n.send(l1, &["JOIN #h"]);
    said_lines(&mut n, b, "#h", 2);
    assert_eq!(privmsg_texts(&n.lines(l1)), ["line 1", "line 2"]);
    n.send(l1, &["QUIT :brb"]);
    assert!(n.closed(l1));
    for i in 0..3 {
        let g = n.bin(&format!("passer{i}"));
        n.send_bin(g, &ClientMsg::Join { room: room("#h") });
        n.send_bin(
            g,
            &ClientMsg::Part {
                room: room("#h"),
                reason: None,
            },
        );
    }
    n.send_bin(
        b,
        &ClientMsg::Say {
            room: room("#h"),
            id: crate::types::MsgId(9),
            text: text("missed while away"),
        },
    );
    let l2 = n.client("lounge", &caps);
    n.send(l2, &["JOIN #h"]);
    let l = n.lines(l2);
    assert_eq!(privmsg_texts(&l), ["missed while away"], "{l:?}");
}

#[test]
fn a_client_back_after_quitting_is_replayed_only_what_it_missed() {
    // The Lounge (and irssi, WeeChat) keeps its channel windows when it reconnects: the room's
    // history up to its quit is in them already, and must not come again.
    let mut n = Net::new();
    let b = n.bin("old");
    n.send_bin(b, &ClientMsg::Join { room: room("#h") });
    let say = |n: &mut Net, id: u64, words: &str| {
        n.send_bin(
            b,
            &ClientMsg::Say {
                room: room("#h"),
                id: crate::types::MsgId(id),
                text: text(words),
            },
        );
    };
    say(&mut n, 1, "seen by lounge");
    let caps = ["server-time", "batch", "message-tags"];
    let l1 = n.client("lounge", &caps);
    n.send(l1, &["JOIN #h"]);
    assert!(find(&n.lines(l1), "seen by lounge").contains("PRIVMSG #h"));
    say(&mut n, 2, "said to lounge live");
    n.send(l1, &["QUIT :brb"]);
    assert!(n.closed(l1));
    say(&mut n, 3, "missed while away");
    // Back with the same nick (any case): only what came after its quit.
    let l2 = n.client("Lounge", &caps);
    n.send(l2, &["JOIN #h"]);
    let l = n.lines(l2);
    let history: Vec<&String> = l.iter().filter(|l| l.contains(" PRIVMSG #h ")).collect();
    assert_eq!(history.len(), 1, "{l:?}");
    assert!(history[0].ends_with(":missed while away"), "{l:?}");
    assert!(l.iter().any(|l| l.contains("BATCH +h")), "{l:?}");
    // A dropped connection is a quit too; nothing said since: no history at all.
    n.hub.handle_close(l2, n.now);
    n.pump();
    let l3 = n.client("lounge", &caps);
    n.send(l3, &["JOIN #h"]);
    let l = n.lines(l3);
    assert!(
        !l.iter()
            .any(|l| l.contains("PRIVMSG") || l.contains("BATCH")),
        "{l:?}"
    );
    // Someone else gets the room's recent history.
    let other = n.client("other", &caps);
    n.send(other, &["JOIN #h"]);
    let l = n.lines(other);
    for said in ["seen by lounge", "said to lounge live", "missed while away"] {
        assert!(find(&l, said).contains("PRIVMSG #h"), "{l:?}");
    }
}

#[test]
fn lines_a_slow_reader_was_told_it_missed_come_when_it_parts_and_joins_again() {
    // A connection that read too slowly was told `*** N message(s) here were not delivered`;
    // a part and a join again is how an IRC user gets the room's recent lines: those it missed
    // come then, though the notice was sent before the part (the ircx merge replayed only
    // what came after the part, and they were never seen).
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        outbound_max_msgs: 40,
        flood_burst: 1000,
        ..Config::default()
    });
    let caps = ["server-time", "batch", "message-tags"];
    let talker = n.client("talker", &caps);
    n.send(talker, &["JOIN #h"]);
    let wee = n.client("wee", &caps);
    n.send(wee, &["JOIN #h"]);
    n.lines(wee);
    n.stall(wee);
    for i in 0..50 {
        n.send(talker, &[&format!("PRIVMSG #h :line {i}")]);
    }
    n.unstall(wee);
    let l = n.lines(wee);
    assert!(find(&l, "not delivered").contains("NOTICE #h"), "{l:?}");
    let live = privmsg_texts(&l);
    assert!(live.len() < 50, "{l:?}");
    n.send(wee, &["PART #h", "JOIN #h"]);
    let again = privmsg_texts(&n.lines(wee));
    for i in 0..50 {
        let line = format!("line {i}");
        assert!(
            live.contains(&line) || again.contains(&line),
            "{line} never seen: live {live:?}, again {again:?}"
        );
    }
}

/// A client back in a channel (after its part, its quit, a slow read) that missed more lines
/// than a join replays is told so before them, and how to ask for the rest: the replay of the
/// last 50 read as all there was, and a slow reader that parted and came back to catch up lost
/// the rest unknowing.
#[test]
fn a_client_back_that_missed_more_than_a_replay_holds_is_told_so() {
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        history_on_join: 3,
        flood_burst: 1000,
        ..Config::default()
    });
    let caps = ["server-time", "batch", "message-tags"];
    let talker = n.client("talker", &caps);
    n.send(talker, &["JOIN #h"]);
    let wee = n.client("wee", &caps);
    let plain = n.client("plain", &[]);
    n.send(wee, &["JOIN #h", "PART #h"]);
    n.send(plain, &["JOIN #h", "PART #h"]);
    for i in 1..=5 {
        n.send(talker, &[&format!("PRIVMSG #h :line {i}")]);
    }
    n.send(wee, &["JOIN #h"]);
    let l = n.lines(wee);
    assert_eq!(privmsg_texts(&l), ["line 3", "line 4", "line 5"], "{l:?}");
    let notice = l
        .iter()
        .position(|l| l.contains(" NOTICE #h :*** "))
        .unwrap_or_else(|| panic!("{l:?}"));
    assert!(
        l[notice].ends_with(
            ":natter.irc NOTICE #h :*** 2 earlier message(s) said since you were last here are \
             not replayed, only the last 3: CHATHISTORY BEFORE asks for them"
        ),
        "{l:?}"
    );
    let batch = l.iter().position(|l| l.contains("BATCH +")).unwrap();
    assert!(notice < batch, "before the replay: {l:?}");
    // A client without server-time is replayed nothing, and told nothing of it.
    n.send(plain, &["JOIN #h"]);
    let l = n.lines(plain);
    assert!(!l.iter().any(|l| l.contains("NOTICE #h")), "{l:?}");
    // All it missed fits: no notice; nothing said: none either.
    n.send(wee, &["PART #h"]);
    n.send(talker, &["PRIVMSG #h :line 6", "PRIVMSG #h :line 7"]);
    n.send(wee, &["JOIN #h"]);
    let l = n.lines(wee);
    assert_eq!(privmsg_texts(&l), ["line 6", "line 7"], "{l:?}");
    assert!(!l.iter().any(|l| l.contains("NOTICE #h")), "{l:?}");
    n.send(wee, &["PART #h", "JOIN #h"]);
    let l = n.lines(wee);
    assert!(!l.iter().any(|l| l.contains("NOTICE #h")), "{l:?}");
    // A newcomer is not back from anywhere: the last 3 and no notice.
    let new = n.client("new", &caps);
    n.send(new, &["JOIN #h"]);
    let l = n.lines(new);
    assert_eq!(privmsg_texts(&l), ["line 5", "line 6", "line 7"], "{l:?}");
    assert!(!l.iter().any(|l| l.contains("NOTICE #h")), "{l:?}");
    // A slow reader told it missed lines, that parts and joins again to catch up, is told
    // that more were missed than come.
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        outbound_max_msgs: 40,
        flood_burst: 1000,
        history_on_join: 5,
        ..Config::default()
    });
    let talker = n.client("talker", &caps);
    n.send(talker, &["JOIN #h"]);
    let wee = n.client("wee", &caps);
    n.send(wee, &["JOIN #h"]);
    n.lines(wee);
    n.stall(wee);
    for i in 0..50 {
        n.send(talker, &[&format!("PRIVMSG #h :line {i}")]);
    }
    n.unstall(wee);
    let l = n.lines(wee);
    assert!(find(&l, "not delivered").contains("NOTICE #h"), "{l:?}");
    let live = privmsg_texts(&l).len();
    n.send(wee, &["PART #h", "JOIN #h"]);
    let l = n.lines(wee);
    assert_eq!(privmsg_texts(&l).len(), 5, "{l:?}");
    let missed = 50 - live - 5;
    assert!(
        find(&l, "earlier message(s)").contains(&format!(
            "NOTICE #h :*** {missed} earlier message(s) said since you were last here"
        )),
        "{l:?}"
    );
}

/// The count of lines a slow reader back in its channel is told were left out is of those it
/// never got: lines it read live after the lines it missed, which the join replays again (its
/// client keeps the window from before its part), are not among them. Before, it was told it
/// missed every line after its gap but the ones replayed, those it had read too.
#[test]
fn a_slow_reader_back_is_not_told_it_missed_lines_it_read_after_its_gap() {
    let caps = ["server-time", "batch", "message-tags"];
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        outbound_max_msgs: 40,
        flood_burst: 1000,
        history_on_join: 5,
        ..Config::default()
    });
    let talker = n.client("talker", &caps);
    n.send(talker, &["JOIN #h"]);
    let wee = n.client("wee", &caps);
    n.send(wee, &["JOIN #h"]);
    n.lines(wee);
    n.stall(wee);
    for i in 0..50 {
        n.send(talker, &[&format!("PRIVMSG #h :line {i}")]);
    }
    n.unstall(wee);
    let l = n.lines(wee);
    assert!(find(&l, "not delivered").contains("NOTICE #h"), "{l:?}");
    let missed = 50 - privmsg_texts(&l).len();
    for i in 0..8 {
        n.send(talker, &[&format!("PRIVMSG #h :after {i}")]);
    }
    let l = n.lines(wee);
    assert_eq!(privmsg_texts(&l).len(), 8, "read live: {l:?}");
    n.send(wee, &["PART #h", "JOIN #h"]);
    let l = n.lines(wee);
    assert_eq!(
        privmsg_texts(&l),
        ["after 3", "after 4", "after 5", "after 6", "after 7"],
        "{l:?}"
    );
    assert!(
        find(&l, "earlier message(s)").contains(&format!(
            "NOTICE #h :*** {missed} earlier message(s) said since you were last here"
        )),
        "{l:?}"
    );
}

/// natter's own quit reasons are lowercase sentences (`-- bob quit (connection lost)` on nc);
/// IRC users read them as IRC servers word theirs: capitalised, and a member lost with its
/// cluster node as a netsplit. A user's own words stay as they are.
#[test]
fn natters_own_quit_reasons_read_as_irc_servers_word_them() {
    use super::dialect::{
        QUIT_ACCOUNT_REMOVED, QUIT_BANNED, QUIT_CONNECTION_LOST, QUIT_REAPED, QUIT_SHUTDOWN,
        QUIT_SIGNED_IN, irc_quit_reason,
    };
    let banned = format!("{QUIT_BANNED}root: spam");
    for (ours, irc) in [
        (QUIT_CONNECTION_LOST, "Connection lost"),
        (QUIT_SHUTDOWN, "Server shutting down"),
        (QUIT_SIGNED_IN, "Signed in"),
        (QUIT_ACCOUNT_REMOVED, "Account removed"),
        (QUIT_REAPED, "*.net *.split"),
        (banned.as_str(), "Banned from this server by root: spam"),
        ("off to bed", "off to bed"),
        ("connection lost, brb", "connection lost, brb"),
        ("Ping timeout: 15 seconds", "Ping timeout: 15 seconds"),
    ] {
        assert_eq!(irc_quit_reason(ours), irc, "{ours}");
    }
    // A natter client that dropped and did not come back in time: IRC and nc members.
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        resume_grace: Millis(2_000),
        ..Config::default()
    });
    let i = n.client("watcher", &[]);
    n.send(i, &["JOIN #q"]);
    let (t, _) = n.nc();
    n.feed(t, b"/join #q\r\n");
    let d = n.bin("dropper");
    n.send_bin(d, &ClientMsg::Join { room: room("#q") });
    n.lines(i);
    n.lines(t);
    n.hub.handle_close(d, n.now);
    n.advance(3_000);
    let l = n.lines(i);
    assert_eq!(
        l.iter()
            .filter(|l| l.contains(" QUIT "))
            .collect::<Vec<_>>(),
        [":dropper!dropper@natter QUIT :Connection lost"],
        "{l:?}"
    );
    let l = n.lines(t);
    assert!(
        l.iter().any(|l| l == "-- dropper quit (connection lost)"),
        "{l:?}"
    );
}

/// A user's own quit words are never read as the server's: an nc user typing `/quit lost with
/// their server` was shown to IRC as a netsplit (`*.net *.split`, which irssi prints as one),
/// `/quit connection lost` as the server's `Connection lost`; an IRC user's `QUIT :*.net
/// *.split` faked a netsplit as IRC servers prevent by saying a user's words as `Quit: ...`;
/// `/quit Ping timeout: 120 seconds` or `Killed (root (spam))` read as the server's own.
/// Such words are said that way; any others stay as they are.
#[test]
fn a_users_own_quit_words_are_never_read_as_the_servers() {
    use super::dialect::{QUIT_BANNED, QUIT_CONNECTION_LOST, QUIT_REAPED};
    let mut n = Net::new();
    let i = n.client("watcher", &[]);
    n.send(i, &["JOIN #q"]);
    let banned = format!("{QUIT_BANNED}root: spam");
    for (typed, irc) in [
        (QUIT_REAPED, "Quit: lost with their server"),
        (QUIT_CONNECTION_LOST, "Quit: connection lost"),
        (
            banned.as_str(),
            "Quit: banned from this server by root: spam",
        ),
        ("off to bed", "off to bed"),
        // The IRC servers' words natter gives for a ping timeout, a slow reader and a kill
        // (not `Connection closed`: nc's end of input quits with it).
        (
            "Ping timeout: 120 seconds",
            "Quit: Ping timeout: 120 seconds",
        ),
        ("ping timeout:240 seconds", "Quit: ping timeout:240 seconds"),
        ("SendQ exceeded", "Quit: SendQ exceeded"),
        ("Killed (root (spam))", "Quit: Killed (root (spam))"),
        ("Ping me later", "Ping me later"),
    ] {
        let (t, _) = n.nc();
        n.feed(t, b"/join #q\r\n");
        n.lines(i);
        n.feed(t, format!("/quit {typed}\r\n").as_bytes());
        let l = n.lines(i);
        let quit = find(&l, " QUIT ");
        assert!(quit.ends_with(&format!(" QUIT :{irc}")), "{typed}: {l:?}");
    }
    for (typed, irc) in [
        ("*.net *.split", "Quit: *.net *.split"),
        (
            "irc.example.net hub.example.org",
            "Quit: irc.example.net hub.example.org",
        ),
        ("see you. later", "see you. later"),
    ] {
        let c = n.client("quitter", &[]);
        n.send(c, &["JOIN #q"]);
        n.lines(i);
        n.send(c, &[&format!("QUIT :{typed}")]);
        let l = n.lines(i);
        let quit = find(&l, " QUIT ");
        assert!(quit.ends_with(&format!(" QUIT :{irc}")), "{typed}: {l:?}");
    }
}

/// Quit words that only look like the server's: a no-break or thin space between the words,
/// an invisible joiner inside one (the text cleaning keeps those), a Cyrillic `і` for the
/// Latin `i`. They reached every IRC client as natter's own `Ping timeout: ...`, `SendQ
/// exceeded` or `Killed (...`, matched as typed only in ASCII; each is said as `Quit: ...`.
/// Words that merely share letters with them, or are in another script, stay as they are.
#[test]
fn a_users_quit_words_that_only_look_like_the_servers_are_not_read_as_them() {
    let mut n = Net::new();
    let i = n.client("watcher", &[]);
    n.send(i, &["JOIN #q"]);
    for (typed, prefixed) in [
        ("Ping\u{a0}timeout: 120 seconds", true),
        ("P\u{200c}ing timeout: 120 seconds", true),
        ("P\u{0456}ng timeout: 120 seconds", true),
        ("SendQ\u{2009}exceeded", true),
        ("SendQ \u{3000}exceeded", true),
        ("Ki\u{0301}lled (root (spam))", true),
        ("K\u{0456}lled \u{ff08}root (spam))", true),
        ("connection\u{a0}lost", true),
        ("Ping me later", false),
        ("caf\u{e9} time", false),
        (
            "\u{041f}\u{043e}\u{043a}\u{0430} \u{0432}\u{0441}\u{0435}\u{043c}",
            false,
        ),
        (
            "\u{6211}\u{4eca}\u{5929}\u{5f88}\u{7d2f}\u{4e86}\u{8981}\u{53bb}\u{7761}\u{89c9}\u{4e86}\u{660e}\u{5929}\u{89c1}",
            false,
        ),
    ] {
        let (t, _) = n.nc();
        n.feed(t, b"/join #q\r\n");
        n.lines(i);
        n.feed(t, format!("/quit {typed}\r\n").as_bytes());
        let l = n.lines(i);
        let quit = find(&l, " QUIT ");
        let irc = if prefixed {
            format!("Quit: {typed}")
        } else {
            typed.to_owned()
        };
        assert!(quit.ends_with(&format!(" QUIT :{irc}")), "{typed:?}: {l:?}");
    }
}

#[test]
fn a_connection_back_after_parting_is_replayed_only_what_came_after_its_part() {
    // WeeChat keeps a parted channel's buffer: what it was sent there is on screen, and came
    // twice when a join again replayed the room's recent lines. irssi closes the window: its
    // user still learns what was said while it was out.
    let mut n = Net::new();
    let caps = ["server-time", "batch", "message-tags"];
    let talker = n.client("talker", &caps);
    n.send(talker, &["JOIN #h", "PRIVMSG #h :before the part"]);
    let wee = n.client("wee", &caps);
    n.send(wee, &["JOIN #h"]);
    assert_eq!(privmsg_texts(&n.lines(wee)), ["before the part"]);
    n.send(talker, &["PRIVMSG #h :seen live"]);
    assert_eq!(privmsg_texts(&n.lines(wee)), ["seen live"]);
    n.send(wee, &["PART #h :brb"]);
    n.send(talker, &["PRIVMSG #h :said while out"]);
    n.send(wee, &["JOIN #h"]);
    let l = n.lines(wee);
    assert_eq!(privmsg_texts(&l), ["said while out"], "{l:?}");
    assert!(
        l.iter().any(|l| l.contains("BATCH +")),
        "in its batch: {l:?}"
    );
    // Out and in again with nothing said meanwhile (someone came, which a replay does not
    // show): nothing replayed at all, not even an empty batch.
    n.send(wee, &["PART #h"]);
    let comer = n.client("comer", &caps);
    n.send(comer, &["JOIN #h"]);
    n.send(wee, &["JOIN #h"]);
    let l = n.lines(wee);
    assert!(
        !l.iter()
            .any(|l| l.contains("PRIVMSG") || l.contains("BATCH")),
        "{l:?}"
    );
    // Nor for a newcomer to a room where nobody said anything yet.
    n.send(comer, &["JOIN #quiet"]);
    n.send(wee, &["JOIN #quiet"]);
    let l = n.lines(wee);
    assert!(find(&l, " 366 ").contains("#quiet"), "{l:?}");
    assert!(!l.iter().any(|l| l.contains("BATCH")), "{l:?}");
    n.send(wee, &["PART #quiet"]);
    // Kicked, the window stays too: what came after the kick.
    let boss = registered(&mut n, "boss");
    n.send_bin(boss, &ClientMsg::Join { room: room("#h") });
    n.send_bin(
        boss,
        &ClientMsg::Moderate {
            room: room("#h"),
            action: crate::wire::ModAction::Register,
        },
    );
    n.lines(wee);
    n.send(talker, &["PRIVMSG #h :before the kick"]);
    n.send_bin(
        boss,
        &ClientMsg::Moderate {
            room: room("#h"),
            action: crate::wire::ModAction::Kick {
                nick: nick("wee"),
                reason: None,
            },
        },
    );
    let l = n.lines(wee);
    assert!(find(&l, " KICK #h wee").starts_with("@time="), "{l:?}");
    n.send(talker, &["PRIVMSG #h :said after the kick"]);
    n.send(wee, &["JOIN #h"]);
    assert_eq!(privmsg_texts(&n.lines(wee)), ["said after the kick"]);
    // Another connection (a client that starts afresh) gets the recent history in full.
    let fresh = n.client("fresh", &caps);
    n.send(fresh, &["JOIN #h"]);
    assert_eq!(privmsg_texts(&n.lines(fresh)).len(), 5);
    // A room nobody was left in went (memory only) and was made again, counting from seq 1:
    // what the connection saw of the old one says nothing about the new one.
    n.send(
        wee,
        &["JOIN #gone", "PRIVMSG #gone :one", "PRIVMSG #gone :two"],
    );
    n.send(wee, &["PART #gone"]);
    n.lines(wee);
    n.send(talker, &["JOIN #gone"]);
    for line in ["new one", "new two", "new three", "new four"] {
        n.send(talker, &[&format!("PRIVMSG #gone :{line}")]);
    }
    n.send(wee, &["JOIN #gone"]);
    assert_eq!(
        privmsg_texts(&n.lines(wee)),
        ["new one", "new two", "new three", "new four"]
    );
}

#[test]
fn queries_whois_ison_userhost_who_names_list_lusers_time_version_motd() {
    let mut n = Net::new();
    let b = n.bin("binny");
    n.send_bin(b, &ClientMsg::Join { room: room("#q") });
    n.send_bin(
        b,
        &ClientMsg::Topic {
            room: room("#q"),
            topic: Some(text("the topic")),
        },
    );
    let i = n.client("asker", &[]);
    n.send(i, &["JOIN #q"]);
    n.lines(i);
    n.advance(2_000);

    n.send(i, &["WHOIS BINNY"]);
    let l = n.lines(i);
    // `317` for natter's client's users too (before the thirtieth session, IRC's only).
    assert_eq!(numerics(&l), ["311", "319", "312", "317", "318"]);
    assert_eq!(
        l[0],
        ":natter.irc 311 asker binny binny natter * :natter user on the natter client or a web page"
    );
    assert_eq!(l[1], ":natter.irc 319 asker binny :#q");
    n.send(i, &["WHOIS natter.irc asker"]);
    assert!(find(&n.lines(i), " 311 ").ends_with(" 311 asker asker asker natter * :Real Name"));

    n.send(i, &["ISON binny nobody ASKER", "USERHOST binny asker"]);
    assert_eq!(
        n.lines(i),
        [
            ":natter.irc 303 asker :binny asker",
            ":natter.irc 302 asker :binny=+binny@natter asker=+asker@natter",
        ]
    );
    n.send(
        i,
        &[
            "WHO #q",
            "WHO binny",
            "NAMES #q",
            "NAMES #nothing-here",
            "NAMES",
        ],
    );
    let l = n.lines(i);
    assert_eq!(
        numerics(&l),
        [
            "352", "352", "315", "352", "315", "353", "366", "366", "366"
        ]
    );
    assert_eq!(
        l[0],
        ":natter.irc 352 asker #q binny natter natter.irc binny H :0 natter user on the natter client or a web page"
    );
    n.advance(2_000);
    n.send(i, &["LIST", "LUSERS", "TIME", "VERSION", "MOTD"]);
    let l = n.lines(i);
    assert_eq!(find(&l, " 322 "), ":natter.irc 322 asker #q 2 :the topic");
    assert!(find(&l, " 251 ").contains("There are 2 users"));
    assert_eq!(
        find(&l, " 391 "),
        ":natter.irc 391 asker natter.irc :Wednesday May 1 2024 -- 12:00:07 +00:00"
    );
    assert!(find(&l, " 351 ").contains("natter-"));
    assert!(l.last().unwrap().contains(" 376 "));
    n.send(i, &["INFO"]);
    let l = n.lines(i);
    assert!(l[0].starts_with(":natter.irc 371 asker :natter "), "{l:?}");
    assert_eq!(
        numerics(&l).split_last(),
        Some((&"374", &["371"; 3][..])),
        "{l:?}"
    );
    n.advance(2_000);
    n.send(
        i,
        &[
            "MODE #q",
            "MODE #q b",
            "MODE asker",
            "MODE asker +iw-w",
            "MODE asker",
        ],
    );
    assert_eq!(
        n.lines(i),
        [
            ":natter.irc 324 asker #q +n",
            ":natter.irc 329 asker #q 1714564800",
            ":natter.irc 368 asker #q :End of channel ban list",
            ":natter.irc 221 asker +",
            ":asker!asker@natter MODE asker :+iw-w",
            ":natter.irc 221 asker +i",
        ]
    );
}

#[test]
fn away_is_reported_in_whois_and_to_writers_and_notified_to_those_who_asked() {
    let mut n = Net::new();
    let w = n.client("watcher", &["away-notify"]);
    let q = n.client("quiet", &[]);
    let a = n.client("sleepy", &[]);
    for c in [w, q, a] {
        n.send(c, &["JOIN #z"]);
    }
    n.advance(1_000);
    for c in [w, q, a] {
        n.lines(c);
    }
    n.send(a, &["AWAY :gone fishing"]);
    assert_eq!(
        n.lines(a),
        [":natter.irc 306 sleepy :You have been marked as being away"]
    );
    assert_eq!(n.lines(w), [":sleepy!sleepy@natter AWAY :gone fishing"]);
    assert!(n.lines(q).is_empty(), "only away-notify clients are told");
    n.send(
        q,
        &[
            "PRIVMSG sleepy :you there?",
            "WHOIS sleepy",
            "USERHOST sleepy",
            "WHO #z",
        ],
    );
    let l = n.lines(q);
    assert_eq!(l[0], ":natter.irc 301 quiet sleepy :gone fishing");
    assert!(l.contains(&":natter.irc 301 quiet sleepy :gone fishing".to_owned()));
    assert!(find(&l, " 302 ").ends_with("sleepy=-sleepy@natter"));
    assert!(find(&l, " natter.irc sleepy G :0").contains(" 352 quiet #z sleepy "));
    n.lines(a);
    n.send(a, &["AWAY"]);
    assert_eq!(
        n.lines(a),
        [":natter.irc 305 sleepy :You are no longer marked as being away"]
    );
    assert_eq!(n.lines(w), [":sleepy!sleepy@natter AWAY"]);
    // Not away, AWAY again: 305 all the same (as other servers), and nobody is told.
    n.send(a, &["AWAY"]);
    assert_eq!(
        n.lines(a),
        [":natter.irc 305 sleepy :You are no longer marked as being away"]
    );
    assert!(n.lines(w).is_empty());
    // A long away message is cut to AWAYLEN.
    n.send(a, &[&format!("AWAY :{}", "z".repeat(400))]);
    n.lines(a);
    let l = n.lines(w);
    assert_eq!(
        l[0].len(),
        ":sleepy!sleepy@natter AWAY :".len() + crate::limits::MAX_AWAY_BYTES
    );
}

#[test]
fn join_several_then_join_0_parts_them_all() {
    let mut n = Net::new();
    let i = n.client("hopper", &[]);
    n.send(i, &["JOIN #a,#b,#c++,#c"]);
    let l = n.lines(i);
    let joins: Vec<&String> = l.iter().filter(|l| l.contains(" JOIN ")).collect();
    assert_eq!(joins.len(), 3);
    assert_eq!(numerics(&l).iter().filter(|n| **n == "479").count(), 1);
    for r in ["#a", "#b", "#c"] {
        assert!(n.hub.is_member(&nick("hopper"), &room(r)));
    }
    n.send(i, &["JOIN 0"]);
    let l = n.lines(i);
    assert_eq!(
        l,
        [
            ":hopper!hopper@natter PART #a",
            ":hopper!hopper@natter PART #b",
            ":hopper!hopper@natter PART #c"
        ]
    );
    assert!(!n.hub.is_member(&nick("hopper"), &room("#a")));
}

#[test]
fn a_target_named_twice_in_one_privmsg_gets_the_text_once() {
    let mut n = Net::new();
    let a = n.client("twice", &["echo-message"]);
    let b = n.client("reader", &[]);
    n.send(a, &["JOIN #d"]);
    n.send(b, &["JOIN #d"]);
    n.lines(a);
    n.lines(b);
    // One line, one flood-control token: the room (and a nick) hears it once, however the
    // name is written (until the thirty-first session, once per time it was named).
    n.send(a, &["PRIVMSG #d,#D,#d,reader,READER :once"]);
    assert_eq!(
        n.lines(b),
        [
            ":twice!twice@natter PRIVMSG #d :once",
            ":twice!twice@natter PRIVMSG reader :once",
        ]
    );
    assert_eq!(n.lines(a).len(), 2);
    n.send(a, &["NOTICE #d,#d :note"]);
    assert_eq!(n.lines(b), [":twice!twice@natter NOTICE #d :note"]);
}

#[test]
fn a_channel_nobody_registered_says_how_it_gets_operators_in_irc_words() {
    let mut n = Net::new();
    let c = n.client("al", &[]);
    let d = n.client("di", &[]);
    n.send(c, &["JOIN #new"]);
    n.send(d, &["JOIN #new"]);
    n.advance(1_000);
    n.lines(c);
    n.send(c, &["KICK #new di"]);
    assert_eq!(
        n.lines(c),
        [
            ":natter.irc 482 al #new :#new is not registered, so it has no operators: sign in \
          to an account (SASL), then /mode #new +r to become its founder"
        ]
    );
    // Registering it: the refusal names SASL, not nc's /login.
    n.send(c, &["MODE #new +r"]);
    let l = n.lines(c);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].ends_with(":a room is registered to an account: sign in to an account (SASL) first"),
        "{l:?}"
    );
}

#[test]
fn a_mode_line_makes_at_most_the_modes_005_says() {
    let mut n = Net::new();
    let bob = n.bin("bob");
    n.send_bin(bob, &ClientMsg::Join { room: room("#x") });
    let c = n.client("al", &[]);
    n.send(c, &["JOIN #x"]);
    n.lines(c);
    // Ten changes: the first MODES=8 are asked (and refused, al being no operator), the
    // rest left out.
    n.send(c, &["MODE #x +tttttttttt"]);
    let l = n.lines(c);
    assert_eq!(
        numerics(&l),
        vec!["482"; crate::limits::IRC_MAX_MODES],
        "{l:?}"
    );
}

#[test]
fn an_action_in_a_notice_to_a_nick_is_an_action_as_in_a_channel() {
    let mut n = Net::new();
    let a = n.client("actor", &[]);
    let b = n.client("watcher", &[]);
    n.send(a, &["JOIN #n"]);
    n.send(b, &["JOIN #n"]);
    n.lines(a);
    n.lines(b);
    n.send(
        a,
        &[
            "NOTICE #n :\x01ACTION bows\x01",
            "NOTICE watcher :\x01ACTION waves\x01",
        ],
    );
    assert_eq!(
        n.lines(b),
        [
            ":actor!actor@natter PRIVMSG #n :\x01ACTION bows\x01",
            ":actor!actor@natter PRIVMSG watcher :\x01ACTION waves\x01",
        ]
    );
    // A plain notice stays a notice.
    n.send(a, &["NOTICE watcher :plain"]);
    assert_eq!(n.lines(b), [":actor!actor@natter NOTICE watcher :plain"]);
}

#[test]
fn names_of_several_channels_answers_each() {
    let mut n = Net::new();
    let a = n.client("namer", &[]);
    let b = n.client("other", &[]);
    n.send(a, &["JOIN #n1,#n2"]);
    n.send(b, &["JOIN #n2"]);
    n.lines(a);
    n.lines(b);
    // Each channel named, in turn; a bad name and a room nobody is in get their `366` alone
    // (until the thirty-first session only the first channel was answered, the rest dropped).
    n.send(b, &["NAMES #n1,#c++,#n2,#none"]);
    assert_eq!(
        n.lines(b),
        [
            ":natter.irc 353 other = #n1 :namer",
            ":natter.irc 366 other #n1 :End of /NAMES list",
            ":natter.irc 366 other #c++ :End of /NAMES list",
            ":natter.irc 353 other = #n2 :namer other",
            ":natter.irc 366 other #n2 :End of /NAMES list",
            ":natter.irc 366 other #none :End of /NAMES list",
        ]
    );
    // As many as a JOIN takes (TARGMAX NAMES:20); past that, 407 for the first left out.
    let many: Vec<String> = (0..21).map(|i| format!("#m{i}")).collect();
    n.send(b, &[format!("NAMES {}", many.join(",")).as_str()]);
    let l = n.lines(b);
    assert_eq!(numerics(&l).iter().filter(|n| **n == "366").count(), 20);
    assert_eq!(
        l.last().map(String::as_str),
        Some(":natter.irc 407 other #m20 :Too many channels in one NAMES")
    );
}

#[test]
fn a_topic_from_irc_is_cut_to_topiclen() {
    let mut n = Net::new();
    let a = n.client("setter", &[]);
    let b = n.client("reader", &[]);
    n.send(a, &["JOIN #t"]);
    n.send(b, &["JOIN #t"]);
    n.lines(a);
    n.lines(b);
    // 005 says TOPICLEN=390: a longer topic is cut there, at a character boundary (`é` is two
    // bytes: 389 + 2 would pass it), as solanum and ergo cut it; until the thirty-first
    // session it was kept whole.
    let long = format!("{}é{}", "x".repeat(389), "y".repeat(80));
    n.send(a, &[format!("TOPIC #t :{long}").as_str()]);
    let want = format!(":setter!setter@natter TOPIC #t :{}", "x".repeat(389));
    assert_eq!(n.lines(b), [want]);
    n.send(b, &["TOPIC #t"]);
    assert_eq!(
        n.lines(b)[0],
        format!(":natter.irc 332 reader #t :{}", "x".repeat(389))
    );
    // A topic of formatting codes alone is refused, as a PRIVMSG of them is, and the topic
    // stays (it was cleared until the thirty-first session's QA); an empty one clears it.
    n.lines(a);
    n.lines(b);
    n.send(a, &["TOPIC #t :\x02\x03\x0f"]);
    assert_eq!(
        n.lines(a),
        [
            ":natter.irc FAIL TOPIC INVALID_TEXT #t :Nothing is left of that topic without its \
          formatting codes (TOPIC #t : clears it)"
        ]
    );
    assert!(n.lines(b).is_empty(), "nobody saw the topic change");
    n.send(b, &["TOPIC #t"]);
    assert_eq!(
        n.lines(b)[0],
        format!(":natter.irc 332 reader #t :{}", "x".repeat(389))
    );
    // One that fits is kept whole, and `TOPIC #t :` still clears it.
    n.send(a, &[format!("TOPIC #t :{}", "z".repeat(390)).as_str()]);
    assert_eq!(
        n.lines(b),
        [format!(
            ":setter!setter@natter TOPIC #t :{}",
            "z".repeat(390)
        )]
    );
    n.send(a, &["TOPIC #t :"]);
    assert_eq!(n.lines(b), [":setter!setter@natter TOPIC #t :"]);
}

#[test]
fn keepalive_pings_irc_clients_and_drops_the_silent() {
    let mut n = Net::new();
    let i = n.client("idle", &[]);
    let after = n.hub.config().ping_after.0;
    n.advance(after);
    let l = n.lines(i);
    assert_eq!(l.len(), 1);
    assert!(l[0].starts_with("PING :"), "{l:?}");
    n.send(i, &["PONG :whatever"]);
    n.advance(n.hub.config().ping_timeout.0 + 1);
    assert!(!n.closed(i), "a PONG keeps it");
    n.lines(i);
    n.advance(after + n.hub.config().ping_timeout.0 + 1);
    let l = n.lines(i);
    assert!(l[0].starts_with("PING :"));
    assert_eq!(
        l.last().unwrap(),
        "ERROR :Closing Link: natter (no answer to ping)"
    );
    assert!(n.closed(i));
}

#[test]
fn a_dropped_irc_user_quits_at_once() {
    let mut n = Net::new();
    let b = n.bin("stay");
    n.send_bin(b, &ClientMsg::Join { room: room("#d") });
    let i = n.client("dropper", &[]);
    n.send(i, &["JOIN #d"]);
    n.recv(b);
    n.hub.handle_close(i, n.now);
    n.pump();
    let got = n.recv(b);
    assert!(got.iter().any(|m| matches!(m, ServerMsg::Event(RoomEvent { kind: EventKind::Quit { .. }, from, .. }) if from.as_str() == "dropper")));
    assert_eq!(n.hub.detached(), 0);
}

#[test]
fn an_unregistered_client_is_timed_out_with_error() {
    let mut n = Net::new();
    let c = n.irc();
    n.send(c, &["NICK slow"]);
    n.advance(n.hub.config().hello_timeout.0);
    // In IRC's words, as solanum and InspIRCd close it (until the thirty-third session
    // natter's own: "no hello within 10 seconds").
    assert_eq!(
        n.lines(c),
        [
            "ERROR :Closing Link: natter (Registration timed out: no NICK and USER within 10 seconds)"
        ]
    );
    assert!(n.closed(c));
}

#[test]
fn an_http_request_or_an_untrusted_proxy_header_on_the_irc_door_registers_nobody() {
    // A web page can make its visitors' browsers POST a form to an IRC port: the body's lines
    // registered a nick and said the page's words in a channel (the text door already refused
    // it). A PROXY header from an address not trusted as a proxy was answered 451 and ignored,
    // so a proxy the operator forgot to trust went unnoticed.
    let mut n = Net::new();
    let watcher = n.irc_in_lobby("watcher");
    n.lines(watcher);
    let body = "NICK spammer\r\nUSER s 0 * :s\r\nJOIN #lobby\r\nPRIVMSG #lobby :buy now\r\n";
    for (opening, words) in [
        (
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:6667\r\n\r\n",
            "not HTTP",
        ),
        ("Host: 127.0.0.1:6667\r\n\r\n", "not HTTP"),
        ("CAP LS 302\r\nGET /x HTTP/1.0\r\n\r\n", "not HTTP"),
        (
            "PROXY TCP4 203.0.113.7 127.0.0.1 5555 6667\r\n",
            "trusted proxy",
        ),
    ] {
        let c = n.irc();
        n.feed(c, format!("{opening}{body}").as_bytes());
        assert!(n.closed(c), "{opening:?}");
        let l = n.lines(c);
        let last = l.last().map_or("", String::as_str);
        assert!(
            last.starts_with("ERROR :") && last.contains(words),
            "{opening:?}: {l:?}"
        );
        assert!(!l.iter().any(|l| numeric(l) == Some("001")), "{l:?}");
        n.hub.handle_close(c, n.now);
    }
    n.advance(1_000);
    assert!(n.lines(watcher).is_empty(), "nothing said, nobody joined");
    // A registered user typing such a line is only told the command is unknown.
    let i = n.client("typist", &[]);
    n.lines(i);
    n.send(i, &["GET / HTTP/1.1", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2"]);
    assert_eq!(numerics(&n.lines(i)), ["421", "421"]);
    assert!(!n.closed(i));
}

#[test]
fn a_tls_client_on_the_plain_irc_door_is_closed_at_its_first_byte() {
    // An IRC client with TLS on, pointed at 6667: its hello was cut into lines answered with
    // FAIL and 451, and the connection held until the registration timeout.
    let mut n = Net::new();
    let c = n.irc();
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    hello.extend_from_slice(b"\x8f\x12 NICK x\r\nUSER x 0 * :x\r\n");
    n.feed(c, &hello);
    assert!(n.closed(c));
    let l = n.lines(c);
    assert!(
        l.len() == 1 && l[0].starts_with("ERROR :") && l[0].contains("not TLS"),
        "{l:?}"
    );
    // Only the first byte tells: a registered client may later send anything.
    let i = n.client("later", &[]);
    n.lines(i);
    n.feed(i, b"\x16junk\r\n");
    assert!(!n.closed(i));
}

#[test]
fn one_flood_token_per_line_and_a_full_queue_is_263() {
    let mut n = Net::new();
    let i = n.client("fast", &[]);
    let lines: Vec<String> = (0..40).map(|k| format!("PING :{k}")).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    n.send(i, &refs);
    let l = n.lines(i);
    let pongs = l.iter().filter(|l| l.contains(" PONG ")).count();
    let refused = numerics(&l).iter().filter(|n| **n == "263").count();
    // A burst of 10, 20 waiting, the rest refused.
    assert_eq!((pongs, refused), (10, 10), "{l:?}");
    n.advance(10_000);
    let l = n.lines(i);
    assert_eq!(l.iter().filter(|l| l.contains(" PONG ")).count(), 20);
}

/// A nick change past the server's rate is `438 ERR_NICKTOOFAST` with the wait, as hybrid,
/// charybdis and UnrealIRCd answer, and the client keeps its nick.
#[test]
fn nick_changes_too_fast_are_438() {
    use crate::limits::NICK_BURST;
    let mut n = Net::new();
    let i = n.client("quick", &[]);
    n.send(i, &["JOIN #a"]);
    n.lines(i);
    for k in 0..NICK_BURST {
        n.send(i, &[&format!("NICK quick{k}")]);
    }
    let l = n.lines(i);
    assert_eq!(
        l.iter().filter(|l| l.contains(" NICK ")).count(),
        NICK_BURST as usize,
        "{l:?}"
    );
    n.send(i, &["NICK slower"]);
    let l = n.lines(i);
    let me = format!("quick{}", NICK_BURST - 1);
    assert_eq!(
        l,
        [format!(
            ":natter.irc 438 {me} slower :Nick change too fast. Please wait 10 seconds."
        )]
    );
}

#[test]
fn a_line_refused_as_a_flood_is_answered_as_itself() {
    let mut n = Net::new();
    let i = n.client("fast", &["labeled-response", "batch"]);
    let b = n.client("bot", &[]);
    n.send(i, &["JOIN #f"]);
    n.send(b, &["JOIN #f"]);
    n.lines(i);
    n.lines(b);
    n.advance(15_000);
    // 10 at once, 20 waiting: the last 10 are refused before their turn. The 263 names the
    // refused line's command, as RFC 2812 words it (until the thirty-first session `*`).
    let lines: Vec<String> = (0..40).map(|k| format!("PING :{k}")).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    n.send(i, &refs);
    let l = n.lines(i);
    let refused: Vec<&String> = l.iter().filter(|l| numeric(l) == Some("263")).collect();
    assert_eq!(refused.len(), 10, "{l:?}");
    assert!(
        refused[0].starts_with(":natter.irc 263 fast PING :"),
        "{l:?}"
    );
    n.advance(15_000);
    n.lines(i);
    // A refused NOTICE is answered nothing (no error reply to a notice, RFC 2812 and
    // PROTOCOL.md; until the thirty-first session it got its 263 all the same).
    let notices: Vec<String> = (0..40).map(|k| format!("NOTICE #f :n{k}")).collect();
    let refs: Vec<&str> = notices.iter().map(String::as_str).collect();
    n.send(b, &refs);
    assert_eq!(n.lines(b), Vec::<String>::new());
    n.advance(15_000);
    n.lines(b);
    // A labeled line refused: its 263 carries its label; a labeled NOTICE gets its ACK
    // (labeled-response: every labeled line is answered).
    let mut burst: Vec<String> = (0..30).map(|k| format!("PING :{k}")).collect();
    burst.push("@label=p1 PRIVMSG #f,#g :hi".into());
    burst.push("@label=n1 NOTICE #f :hi".into());
    let refs: Vec<&str> = burst.iter().map(String::as_str).collect();
    n.send(i, &refs);
    let l = n.lines(i);
    assert!(
        l.iter()
            .any(|l| l.starts_with("@label=p1 :natter.irc 263 fast PRIVMSG :")),
        "{l:?}"
    );
    assert!(l.iter().any(|l| l == "@label=n1 :natter.irc ACK"), "{l:?}");
    assert!(!l.iter().any(|l| l.contains(" 263 fast NOTICE ")), "{l:?}");
}

/// Every link the server closes ends with `ERROR :Closing Link: <host> (<reason>)`, as ircds
/// word it and clients show it (irssi: "Closing Link: ..."), whatever closed it: a QUIT (with
/// its reason, `Client Quit` without one, as solanum says), before registration or after, the
/// server stopping, a ping unanswered, a server ban, a line no IRC client sends. Until this
/// review only a registration timeout and a kill did: the rest was `ERROR :goodbye` and the like.
#[test]
fn every_close_is_error_closing_link() {
    fn last(n: &mut Net, c: ConnId) -> String {
        assert!(n.closed(c));
        n.lines(c).pop().unwrap_or_default()
    }
    let mut n = with_admin_alice();
    let q = n.client("quitter", &[]);
    n.send(q, &["QUIT :off to lunch"]);
    assert_eq!(
        last(&mut n, q),
        "ERROR :Closing Link: natter (Quit: off to lunch)"
    );
    let q = n.client("quiet", &[]);
    n.send(q, &["QUIT"]);
    assert_eq!(last(&mut n, q), "ERROR :Closing Link: natter (Client Quit)");
    let q = n.irc();
    n.send(q, &["NICK early", "QUIT :never mind"]);
    assert_eq!(
        last(&mut n, q),
        "ERROR :Closing Link: natter (Quit: never mind)"
    );
    let q = n.irc();
    n.send(q, &["GET / HTTP/1.1"]);
    assert_eq!(
        last(&mut n, q),
        "ERROR :Closing Link: natter (this port speaks IRC, not HTTP)"
    );
    // A ping unanswered.
    let p = n.client("sleepy", &[]);
    n.advance(n.hub.config().ping_after.0 + n.hub.config().ping_timeout.0 + 1);
    assert_eq!(
        last(&mut n, p),
        "ERROR :Closing Link: natter (no answer to ping)"
    );
    // A server ban: 465, then the link closes.
    let a = registered(&mut n, "alice");
    let s = n.client("spammer", &[]);
    n.send_bin(
        a,
        &ClientMsg::Admin(crate::wire::AdminAction::Ban {
            target: "spammer".into(),
            duration: None,
            reason: Some(text("spam")),
        }),
    );
    let l = n.lines(s);
    assert_eq!(numerics(&l), ["465"], "{l:?}");
    let why = l[0].rsplit_once(" :").map(|(_, w)| w.to_owned()).unwrap();
    assert_eq!(l[1], format!("ERROR :Closing Link: natter ({why})"));
    let b = n.client("bob", &[]);
    // The server stopping.
    n.hub.shutdown(n.now);
    n.pump();
    assert_eq!(
        last(&mut n, b),
        "ERROR :Closing Link: natter (server shutting down)"
    );
}

#[test]
fn the_server_shutting_down_says_error() {
    let mut n = Net::new();
    let i = n.client("x", &[]);
    n.hub.shutdown(n.now);
    n.pump();
    assert_eq!(
        n.lines(i),
        ["ERROR :Closing Link: natter (server shutting down)"]
    );
    assert!(n.closed(i));
}

proptest::proptest! {
    /// Whatever an IRC client sends, the hub answers in lines and never panics.
    #[test]
    fn arbitrary_lines_never_break_the_hub(
        chunks in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), 0..8),
        words in proptest::collection::vec(proptest::sample::select(vec![
            "NICK a", "USER u 0 * :r", "CAP LS 302", "CAP REQ :batch labeled-response", "CAP END",
            "JOIN #x", "PRIVMSG #x :hi", "@label=q WHOIS a", "PART #x", "AWAY :z", "MODE a +i",
            "JOIN 0", "TOPIC #x :t", "QUIT", "LIST", "NAMES #x", "NICK b",
        ]), 0..12),
    ) {
        let mut n = Net::new();
        let c = n.irc();
        let mut script = String::new();
        for w in words {
            script.push_str(w);
            script.push_str("\r\n");
        }
        n.feed(c, script.as_bytes());
        for chunk in chunks {
            n.feed(c, &chunk);
        }
        n.advance(20_000);
        let out = n.inbox.remove(&c).unwrap_or_default();
        proptest::prop_assert!(String::from_utf8(out.clone()).is_ok());
        proptest::prop_assert!(out.is_empty() || out.ends_with(b"\r\n"));
    }
}

/// `LIST` names at most `MAX_LIST_ROOMS` channels and its end says how many there are.
#[test]
fn list_stops_at_its_limit_and_says_how_many_there_are() {
    use crate::limits::{MAX_LIST_ROOMS, MAX_ROOMS_PER_USER};
    let mut n = Net::new();
    let mut made = 0;
    let mut u = 0;
    while made <= MAX_LIST_ROOMS {
        let b = n.bin(&format!("lister{u}"));
        for _ in 0..MAX_ROOMS_PER_USER {
            n.send_bin(
                b,
                &ClientMsg::Join {
                    room: room(&format!("#l{made}")),
                },
            );
            made += 1;
        }
        u += 1;
    }
    let i = n.client("asker", &[]);
    n.send(i, &["LIST"]);
    let l = n.said(i);
    let listed = l.iter().filter(|x| x.contains(" 322 ")).count();
    assert_eq!(listed, MAX_LIST_ROOMS);
    let end = l
        .iter()
        .find(|x| x.contains(" 323 "))
        .expect("an end of list");
    assert!(
        end.contains(&format!("the first {MAX_LIST_ROOMS} of {made} channels")),
        "{end}"
    );
}

#[test]
fn long_lists_take_several_lines_and_nothing_is_cut() {
    let mut n = Net::new();
    let b = n.bin("member");
    let rooms: Vec<String> = (0..crate::limits::MAX_ROOMS_PER_USER)
        .map(|k| format!("#room-with-a-long-name-{k:02}"))
        .collect();
    for r in &rooms {
        n.send_bin(b, &ClientMsg::Join { room: room(r) });
    }
    let i = n.client("asker", &[]);
    n.send(i, &["WHOIS member"]);
    let l = n.said(i);
    let channels: Vec<&str> = l
        .iter()
        .filter(|l| numeric(l) == Some("319"))
        .flat_map(|l| l.split_once(" :").unwrap().1.split(' '))
        .collect();
    assert!(
        l.iter().filter(|l| numeric(l) == Some("319")).count() >= 2,
        "{l:?}"
    );
    assert_eq!(
        channels,
        rooms.iter().map(String::as_str).collect::<Vec<_>>()
    );
    // ISON's answer, likewise.
    let many: Vec<String> = (0..40).map(|k| format!("user-nick-{k:02}")).collect();
    let mut cs = Vec::new();
    for nick_ in &many {
        cs.push(n.bin(nick_));
    }
    n.advance(2_000);
    n.send(i, &[&format!("ISON {}", many[..28].join(" "))]);
    let l = n.said(i);
    let on: Vec<&str> = l
        .iter()
        .flat_map(|l| l.split_once(" :").unwrap().1.split(' '))
        .collect();
    assert_eq!(
        on,
        many[..28].iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[test]
fn sasl_plain_signs_in_before_registration_and_the_account_is_one_user_with_its_rooms() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut n = Net::new();
    // alice registers on the binary protocol and is in #x.
    let a = n.bin("alice");
    n.send_bin(
        a,
        &ClientMsg::Register {
            password: crate::types::Password("correct horse".into()),
            remember: false,
        },
    );
    n.send_bin(a, &ClientMsg::Join { room: room("#x") });
    n.recv(a);
    // The same account over IRC, with SASL.
    let c = n.irc();
    n.send(
        c,
        &[
            "CAP LS 302",
            "NICK someone",
            "USER u 0 * :U",
            "CAP REQ :sasl",
        ],
    );
    let l = n.lines(c);
    assert!(l.iter().any(|l| l.contains(" sasl=PLAIN")), "{l:?}");
    n.send(c, &["AUTHENTICATE PLAIN"]);
    assert_eq!(n.lines(c), [":natter.irc AUTHENTICATE +"]);
    n.send(
        c,
        &[&format!("AUTHENTICATE {}", b64("\0alice\0wrong horse"))],
    );
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["904"], "{l:?}");
    // Alice's password with another authzid: it asked to be bob, it is not signed in as alice
    // (it was, silently).
    n.send(c, &["AUTHENTICATE PLAIN"]);
    n.lines(c);
    n.send(
        c,
        &[&format!(
            "AUTHENTICATE {}",
            b64("bob\0alice\0correct horse")
        )],
    );
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["904"], "{l:?}");
    assert!(l[0].contains("authzid"), "{l:?}");
    n.send(c, &["AUTHENTICATE PLAIN"]);
    n.lines(c);
    n.send(
        c,
        &[&format!(
            "AUTHENTICATE {}",
            b64("ALICE\0alice\0correct horse")
        )],
    );
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["900", "903"], "{l:?}");
    assert!(l[0].contains("alice!alice@") && l[0].ends_with("You are now logged in as alice"));
    // Flood control: the lines so far took the burst.
    n.advance(2_000);
    n.send(c, &["CAP END"]);
    let l = n.lines(c);
    assert!(find(&l, " 001 ").contains(" 001 alice "), "{l:?}");
    let join = l
        .iter()
        .position(|l| l.starts_with(":alice!") && l.contains("JOIN #x"));
    let end_of_motd = l.iter().position(|l| l.contains(" 376 alice "));
    let lusers = l.iter().position(|l| l.contains(" 251 alice "));
    assert!(
        join.is_some(),
        "the account's rooms come with the welcome: {l:?}"
    );
    // In IRC's order: 001–005, LUSERS, the MOTD, then the JOINs (as servers and bouncers
    // send an always-on user's channels).
    assert!(
        lusers.is_some() && end_of_motd.is_some() && lusers < end_of_motd && end_of_motd < join,
        "{l:?}"
    );
    n.advance(3_000);
    n.lines(c);
    // One alice: a line from IRC reaches the binary connection as alice's.
    n.send(c, &["PRIVMSG #x :from irc"]);
    let got = n.recv(a);
    assert!(
        got.iter().any(|m| matches!(m, ServerMsg::Event(RoomEvent { from, kind: EventKind::Say { text, .. }, .. }) if from.as_str() == "alice" && text.as_str() == "from irc")),
        "{got:?}"
    );
    // After registration AUTHENTICATE is refused; without the cap it fails; mechanisms other
    // than PLAIN are listed.
    n.send(c, &["AUTHENTICATE PLAIN"]);
    assert_eq!(numerics(&n.lines(c)), ["907"]);
    let d = n.irc();
    n.send(d, &["AUTHENTICATE PLAIN"]);
    assert_eq!(numerics(&n.lines(d)), ["904"]);
    n.send(d, &["CAP REQ :sasl", "AUTHENTICATE SCRAM-SHA-256"]);
    n.lines(d);
    n.send(d, &["AUTHENTICATE EXTERNAL"]);
    assert_eq!(numerics(&n.lines(d)), ["908", "904"]);
    n.send(d, &["AUTHENTICATE PLAIN", "AUTHENTICATE *"]);
    let l = n.lines(d);
    assert_eq!(l[0], ":natter.irc AUTHENTICATE +");
    assert_eq!(numerics(&l[1..]), ["906"]);
}

#[test]
fn moderation_reaches_irc_as_kick_mode_and_the_usual_numerics() {
    use crate::wire::ModAction;
    let mut n = Net::new();
    let a = n.bin("alice");
    n.send_bin(
        a,
        &ClientMsg::Register {
            password: crate::types::Password("correct horse".into()),
            remember: false,
        },
    );
    n.send_bin(a, &ClientMsg::Join { room: room("#r") });
    n.send_bin(
        a,
        &ClientMsg::Moderate {
            room: room("#r"),
            action: ModAction::Register,
        },
    );
    n.recv(a);
    let b = n.client("bob", &[]);
    n.send(b, &["JOIN #r"]);
    n.advance(1_000);
    n.lines(b);
    // bob is no operator.
    n.send(b, &["MODE #r +m", "KICK #r alice :out"]);
    n.advance(1_000);
    assert_eq!(numerics(&n.lines(b)), ["482", "482"]);
    n.send_bin(
        a,
        &ClientMsg::Moderate {
            room: room("#r"),
            action: ModAction::Mode(crate::moderation::ModeChange::Moderated(true)),
        },
    );
    let l = n.lines(b);
    assert!(
        l.iter().any(|l| l == ":alice!alice@natter MODE #r +m"),
        "{l:?}"
    );
    n.send(b, &["MODE #r", "PRIVMSG #r :may I"]);
    n.advance(1_000);
    let l = n.lines(b);
    assert!(l.iter().any(|l| l.contains(" 324 bob #r +nmr")), "{l:?}");
    assert!(l.iter().any(|l| l.contains(" 404 bob #r ")), "{l:?}");
    n.send_bin(
        a,
        &ClientMsg::Moderate {
            room: room("#r"),
            action: ModAction::Kick {
                nick: nick("bob"),
                reason: Some(text("be quiet")),
            },
        },
    );
    let l = n.lines(b);
    assert!(
        l.iter()
            .any(|l| l == ":alice!alice@natter KICK #r bob :be quiet"),
        "{l:?}"
    );
    n.send_bin(
        a,
        &ClientMsg::Moderate {
            room: room("#r"),
            action: ModAction::Ban {
                target: "nick:bob".into(),
                duration: None,
                reason: None,
            },
        },
    );
    n.send(b, &["JOIN #r"]);
    n.advance(1_000);
    assert_eq!(numerics(&n.lines(b)), ["474"]);
    n.send(b, &["MODE #r +b"]);
    n.advance(1_000);
    let l = n.lines(b);
    assert_eq!(numerics(&l), ["367", "368"], "{l:?}");
    assert!(l[0].contains(" #r bob!*@* alice "), "{l:?}");
}

/// A binary client named `want`, registered as an account (signed in).
fn registered(n: &mut Net, want: &str) -> ConnId {
    let c = n.bin(want);
    n.send_bin(
        c,
        &ClientMsg::Register {
            password: crate::types::Password("correct horse".into()),
            remember: false,
        },
    );
    assert!(
        n.recv(c)
            .iter()
            .any(|m| matches!(m, ServerMsg::SignedIn { .. })),
        "{want} registered"
    );
    c
}

#[test]
fn account_tag_extended_join_and_account_notify_tell_signed_in_users_from_guests() {
    let mut n = Net::new();
    let w = n.client(
        "watcher",
        &["account-tag", "extended-join", "account-notify"],
    );
    let p = n.client("plain", &[]);
    n.send(w, &["JOIN #x"]);
    n.send(p, &["JOIN #x"]);
    n.advance(2_000);
    n.lines(w);
    n.lines(p);
    // alice is signed in; bob is a guest.
    let a = registered(&mut n, "alice");
    let b = n.bin("bob");
    n.send_bin(a, &ClientMsg::Join { room: room("#x") });
    n.send_bin(b, &ClientMsg::Join { room: room("#x") });
    let l = n.lines(w);
    // extended-join's real name is what WHO shows: natter's clients say how they are on.
    assert_eq!(
        l,
        [
            "@account=alice :alice!alice@natter JOIN #x alice :natter user on the natter client or a web page",
            ":bob!bob@natter JOIN #x * :natter user on the natter client or a web page"
        ]
    );
    // An IRC user's is its USER's, in its own JOIN's echo too.
    let c = with_user(&mut n, "cara", "cu", "Cara Real");
    n.send(c, &["CAP REQ extended-join", "JOIN #x"]);
    n.advance(2_000);
    assert!(
        n.lines(w)
            .contains(&":cara!cara@natter JOIN #x * :Cara Real".to_owned()),
        "the JOIN others see"
    );
    assert!(
        n.lines(c)
            .contains(&":cara!cara@natter JOIN #x * :Cara Real".to_owned()),
        "its own"
    );
    assert_eq!(
        n.lines(p),
        [
            ":alice!alice@natter JOIN #x",
            ":bob!bob@natter JOIN #x",
            ":cara!cara@natter JOIN #x"
        ]
    );
    let say = |n: &mut Net, c: ConnId, id: u64, t: &str| {
        n.send_bin(
            c,
            &ClientMsg::Say {
                room: room("#x"),
                id: crate::types::MsgId(id),
                text: text(t),
            },
        );
    };
    say(&mut n, a, 1, "signed in");
    say(&mut n, b, 1, "a guest");
    assert_eq!(
        n.lines(w),
        [
            "@account=alice :alice!alice@natter PRIVMSG #x :signed in",
            ":bob!bob@natter PRIVMSG #x :a guest"
        ]
    );
    assert!(
        n.lines(p).iter().all(|l| !l.contains("account=")),
        "no tag without the capability"
    );
    // bob registers: those who asked are told, and his lines carry the tag from then on.
    n.send_bin(
        b,
        &ClientMsg::Register {
            password: crate::types::Password("battery staple".into()),
            remember: false,
        },
    );
    let l = n.lines(w);
    assert!(
        l.contains(&":bob!bob@natter ACCOUNT bob".to_owned()),
        "{l:?}"
    );
    assert!(!n.lines(p).iter().any(|l| l.contains("ACCOUNT")));
    say(&mut n, b, 2, "now with an account");
    assert_eq!(
        n.lines(w),
        ["@account=bob :bob!bob@natter PRIVMSG #x :now with an account"]
    );
    // A nick with capitals is found as well.
    let cap = registered(&mut n, "Carol");
    n.send_bin(cap, &ClientMsg::Join { room: room("#x") });
    n.lines(w);
    say(&mut n, cap, 1, "capital");
    assert_eq!(
        n.lines(w),
        ["@account=Carol :Carol!Carol@natter PRIVMSG #x :capital"]
    );
    // An IRC user signed in with SASL sees its own JOIN with its account.
    use base64::Engine;
    let plain = base64::engine::general_purpose::STANDARD.encode("\0alice\0correct horse");
    let s = n.irc();
    n.send(
        s,
        &[
            "CAP LS 302",
            "CAP REQ :sasl extended-join account-tag",
            "NICK whoever",
            "USER u 0 * :U",
            "AUTHENTICATE PLAIN",
            &format!("AUTHENTICATE {plain}"),
        ],
    );
    n.advance(3_000);
    n.send(s, &["CAP END"]);
    let l = n.lines(s);
    assert!(
        l.iter()
            .any(|l| l == ":alice!alice@natter JOIN #x alice :U"),
        "{l:?}"
    );
    // Its lines reach the watcher tagged.
    n.advance(3_000);
    n.lines(w);
    n.send(s, &["PRIVMSG #x :from irc"]);
    assert_eq!(
        n.lines(w),
        ["@account=alice :alice!alice@natter PRIVMSG #x :from irc"]
    );
}

/// The text of each PRIVMSG in `lines`, in order (actions as `* text`).
fn privmsg_texts(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.split_once(" PRIVMSG ")?.1.split_once(" :"))
        .map(|(_, t)| t)
        .map(|t| match t.strip_prefix("\x01ACTION ") {
            Some(a) => format!("* {}", a.trim_end_matches('\x01')),
            None => t.to_owned(),
        })
        .collect()
}

/// The value of tag `name` on `line`.
fn tag<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let tags = line.strip_prefix('@')?.split_once(' ')?.0;
    tags.split(';')
        .find_map(|t| t.strip_prefix(name)?.strip_prefix('='))
}

/// `old` (binary) says `line 1` ... `line n` in `room`, a second apart.
fn said_lines(n: &mut Net, old: ConnId, r: &str, count: u64) {
    for i in 1..=count {
        n.advance(1_000);
        n.send_bin(
            old,
            &ClientMsg::Say {
                room: room(r),
                id: crate::types::MsgId(i),
                text: text(&format!("line {i}")),
            },
        );
    }
    n.recv(old);
}

const HISTORY_CAPS: [&str; 4] = ["draft/chathistory", "batch", "server-time", "message-tags"];

#[test]
fn chathistory_answers_every_subcommand_from_the_ring_in_a_batch() {
    let mut n = Net::new();
    let old = n.bin("old");
    n.send_bin(old, &ClientMsg::Join { room: room("#h") });
    said_lines(&mut n, old, "#h", 10);
    let c = n.irc();
    let req = format!("CAP REQ :{} labeled-response", HISTORY_CAPS.join(" "));
    n.send(
        c,
        &["CAP LS 302", "NICK hist", "USER u 0 * :U", &req, "CAP END"],
    );
    let l = n.lines(c);
    assert!(
        l.iter()
            .any(|l| numeric(l) == Some("005") && l.contains(" CHATHISTORY=100 ")),
        "{l:?}"
    );
    n.advance(3_000);
    n.send(c, &["JOIN #h"]);
    let l = n.lines(c);
    assert!(
        privmsg_texts(&l).is_empty(),
        "with draft/chathistory a JOIN brings no history: {l:?}"
    );
    let mut ask = |line: &str| {
        n.advance(1_000);
        n.send(c, &[line]);
        n.lines(c)
    };

    // LATEST *: the newest, oldest first, in a chathistory batch with time and msgid.
    let l = ask("CHATHISTORY LATEST #h * 3");
    assert_eq!(l.len(), 5, "{l:?}");
    let id = l[0]
        .strip_prefix(":natter.irc BATCH +")
        .and_then(|r| r.strip_suffix(" chathistory #h"))
        .unwrap_or_else(|| panic!("{l:?}"))
        .to_owned();
    assert_eq!(l[4], format!(":natter.irc BATCH -{id}"));
    assert_eq!(privmsg_texts(&l), ["line 8", "line 9", "line 10"]);
    for line in &l[1..4] {
        assert_eq!(tag(line, "batch"), Some(id.as_str()));
        assert!(
            tag(line, "time").is_some_and(|t| t.starts_with("2024-")),
            "{line}"
        );
        assert!(line.contains(" :old!old@natter PRIVMSG #h :"), "{line}");
    }
    // old's join is seq 1: line i is seq i+1, and its msgid says so.
    assert_eq!(tag(&l[1], "msgid"), Some("h/9"));
    let t3 = tag(&ask("CHATHISTORY AROUND #h msgid=h/4 1")[1], "time")
        .unwrap()
        .to_owned();

    let texts = |l: Vec<String>| privmsg_texts(&l);
    assert_eq!(
        texts(ask("CHATHISTORY BEFORE #h msgid=h/9 2")),
        ["line 6", "line 7"]
    );
    assert_eq!(
        texts(ask("CHATHISTORY AFTER #h msgid=h/3 3")),
        ["line 3", "line 4", "line 5"]
    );
    assert_eq!(
        texts(ask("CHATHISTORY AROUND #h msgid=h/6 4")),
        ["line 3", "line 4", "line 5", "line 6"]
    );
    assert_eq!(
        texts(ask("CHATHISTORY BETWEEN #h msgid=h/3 msgid=h/7 10")),
        ["line 3", "line 4", "line 5"]
    );
    assert_eq!(
        texts(ask("CHATHISTORY BETWEEN #h msgid=h/7 msgid=h/3 2")),
        ["line 4", "line 5"],
        "backwards: the nearest the first point"
    );
    assert_eq!(
        texts(ask("CHATHISTORY LATEST #h msgid=h/9 10")),
        ["line 9", "line 10"]
    );
    // Times: line 3 was said at t3; points are exclusive.
    assert_eq!(
        texts(ask(&format!("CHATHISTORY AFTER #h timestamp={t3} 2"))),
        ["line 4", "line 5"]
    );
    assert_eq!(
        texts(ask(&format!("CHATHISTORY BEFORE #h timestamp={t3} 10"))),
        ["line 1", "line 2"]
    );
    assert_eq!(
        texts(ask(&format!(
            "CHATHISTORY BETWEEN #h timestamp={t3} msgid=h/6 10"
        ))),
        ["line 4"]
    );
    // A later part of a long line names the same message; lowercase subcommands are fine.
    assert_eq!(
        texts(ask("chathistory before #h msgid=h/3.2 5")),
        ["line 1"]
    );
    // A limit past CHATHISTORY= is cut to it; nothing there is an empty batch.
    let l = ask("CHATHISTORY LATEST #h * 5000");
    assert_eq!(privmsg_texts(&l).len(), 10);
    // So is one past what 64 bits hold: a number however long, not a bad parameter.
    let l = ask("CHATHISTORY LATEST #h * 99999999999999999999999");
    assert_eq!(privmsg_texts(&l).len(), 10, "{l:?}");
    let l = ask("CHATHISTORY AFTER #h msgid=h/11 5");
    assert_eq!(l.len(), 2, "an empty batch: {l:?}");
    assert!(l[0].contains(" BATCH +") && l[1].contains(" BATCH -"));

    // TARGETS: the channels with lines between two times.
    let l =
        ask("CHATHISTORY TARGETS timestamp=2024-01-01T00:00:00Z timestamp=2030-01-01T00:00:00Z 10");
    assert_eq!(l.len(), 3, "{l:?}");
    assert!(l[0].ends_with(" draft/chathistory-targets"), "{l:?}");
    // The time bare, as the draft's example and ergo give it (and as irctest reads it).
    assert!(
        l[1].ends_with(" :natter.irc CHATHISTORY TARGETS #h 2024-05-01T12:00:10.000Z"),
        "{l:?}"
    );
    let l =
        ask("CHATHISTORY TARGETS timestamp=2030-01-01T00:00:00Z timestamp=2031-01-01T00:00:00Z 10");
    assert_eq!(l.len(), 2, "none then: {l:?}");

    // A labeled CHATHISTORY: its batch is inside the labeled-response batch.
    let l = ask("@label=x1 CHATHISTORY LATEST #h * 1");
    assert_eq!(l.len(), 5, "{l:?}");
    let outer = l[0]
        .strip_prefix("@label=x1 :natter.irc BATCH +")
        .and_then(|r| r.strip_suffix(" labeled-response"))
        .unwrap_or_else(|| panic!("{l:?}"));
    assert!(l[1].starts_with(&format!("@batch={outer} :natter.irc BATCH +")));
    assert_eq!(privmsg_texts(&l), ["line 10"], "{l:?}");
    assert_eq!(l[4], format!(":natter.irc BATCH -{outer}"));
}

/// The draft asks for "up to `limit`" lines: a limit of 0 is none, an empty batch, for every
/// subcommand and `TARGETS` (it was read as 1, and `LATEST #h * 0` gave the newest line).
#[test]
fn a_chathistory_limit_of_zero_is_an_empty_batch() {
    let mut n = Net::new();
    let old = n.bin("old");
    n.send_bin(old, &ClientMsg::Join { room: room("#h") });
    said_lines(&mut n, old, "#h", 5);
    let c = n.client("hist", &HISTORY_CAPS);
    n.send(c, &["JOIN #h"]);
    n.advance(3_000);
    n.lines(c);
    for line in [
        "CHATHISTORY LATEST #h * 0",
        "CHATHISTORY LATEST #h msgid=h/2 0",
        "CHATHISTORY BEFORE #h msgid=h/5 0",
        "CHATHISTORY AFTER #h msgid=h/2 0",
        "CHATHISTORY AROUND #h msgid=h/3 0",
        "CHATHISTORY BETWEEN #h msgid=h/1 msgid=h/6 0",
        "CHATHISTORY TARGETS timestamp=2024-01-01T00:00:00Z timestamp=2030-01-01T00:00:00Z 0",
        "CHATHISTORY LATEST #h * 000",
    ] {
        n.advance(1_000);
        n.send(c, &[line]);
        let l = n.lines(c);
        assert_eq!(l.len(), 2, "{line}: an empty batch: {l:?}");
        assert!(
            l[0].contains(" BATCH +") && l[1].contains(" BATCH -"),
            "{line}: {l:?}"
        );
    }
    // One is one, the newest.
    n.advance(1_000);
    n.send(c, &["CHATHISTORY LATEST #h * 1"]);
    assert_eq!(privmsg_texts(&n.lines(c)), ["line 5"]);
}

#[test]
fn chathistory_refusals_are_fail_lines_and_each_costs_a_flood_token() {
    let mut n = Net::new();
    let old = n.bin("old");
    n.send_bin(old, &ClientMsg::Join { room: room("#h") });
    n.send_bin(
        old,
        &ClientMsg::Join {
            room: room("#private"),
        },
    );
    said_lines(&mut n, old, "#h", 2);
    let c = n.client("hist", &HISTORY_CAPS);
    n.send(c, &["JOIN #h"]);
    n.advance(3_000);
    n.lines(c);
    let mut ask = |line: &str| {
        n.advance(1_000);
        n.send(c, &[line]);
        n.lines(c)
    };
    let cases = [
        ("CHATHISTORY", "FAIL CHATHISTORY INVALID_PARAMS * :"),
        (
            "CHATHISTORY FROB #h * 5",
            "FAIL CHATHISTORY UNKNOWN_COMMAND FROB :",
        ),
        (
            "CHATHISTORY LATEST",
            "FAIL CHATHISTORY INVALID_PARAMS LATEST :",
        ),
        (
            "CHATHISTORY LATEST #h",
            "FAIL CHATHISTORY INVALID_PARAMS LATEST #h :",
        ),
        (
            "CHATHISTORY LATEST #h * lots",
            "FAIL CHATHISTORY INVALID_PARAMS LATEST #h :",
        ),
        (
            "CHATHISTORY BEFORE #h * 5",
            "FAIL CHATHISTORY INVALID_PARAMS BEFORE #h :",
        ),
        (
            "CHATHISTORY BEFORE #h msgid=other/2 5",
            "FAIL CHATHISTORY INVALID_PARAMS BEFORE #h :",
        ),
        (
            "CHATHISTORY AFTER #h timestamp=yesterday 5",
            "FAIL CHATHISTORY INVALID_PARAMS AFTER #h :",
        ),
        (
            "CHATHISTORY BETWEEN #h msgid=h/2 5",
            "FAIL CHATHISTORY INVALID_PARAMS BETWEEN #h :",
        ),
        (
            "CHATHISTORY TARGETS * * 5",
            "FAIL CHATHISTORY INVALID_PARAMS TARGETS :",
        ),
        (
            "CHATHISTORY LATEST #private * 5",
            "FAIL CHATHISTORY INVALID_TARGET LATEST #private :You are not in that channel",
        ),
        (
            "CHATHISTORY LATEST #nowhere * 5",
            "FAIL CHATHISTORY INVALID_TARGET LATEST #nowhere :",
        ),
        (
            "CHATHISTORY LATEST #c++ * 5",
            "FAIL CHATHISTORY INVALID_TARGET LATEST #c++ :",
        ),
        (
            "CHATHISTORY LATEST :#a b * 5",
            "FAIL CHATHISTORY INVALID_TARGET LATEST #ab*5 :",
        ),
        (
            "CHATHISTORY LATEST old * 5",
            "FAIL CHATHISTORY INVALID_TARGET LATEST old :natter keeps no history of direct messages",
        ),
    ];
    for (line, want) in cases {
        let l = ask(line);
        assert_eq!(l.len(), 1, "{line}: {l:?}");
        assert!(
            l[0].starts_with(&format!(":natter.irc {want}")),
            "{line}: {l:?}"
        );
    }
    // Flood control meters CHATHISTORY like any line: a burst past the bucket waits, and past
    // the queue it is refused.
    let burst: Vec<String> = (0..40)
        .map(|_| "CHATHISTORY LATEST #h * 1".to_owned())
        .collect();
    let burst: Vec<&str> = burst.iter().map(String::as_str).collect();
    n.send(c, &burst);
    let l = n.lines(c);
    let answered = l.iter().filter(|l| l.contains(" BATCH +")).count();
    assert!(
        answered <= 10,
        "at most a burst answered at once: {answered}"
    );
    assert!(
        l.iter().any(|l| numeric(l) == Some("263")),
        "past the queue: {l:?}"
    );
}

#[test]
fn a_labeled_privmsg_the_store_could_not_write_is_answered_with_its_label() {
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        durable: true,
        ..Config::default()
    });
    let caps = ["echo-message", "message-tags", "batch", "labeled-response"];
    let i = n.client("tagged", &caps);
    let no_echo = n.client("quiet", &["message-tags", "batch", "labeled-response"]);
    n.send(i, &["JOIN #d"]);
    n.send(no_echo, &["JOIN #d"]);
    n.advance(3_000);
    n.lines(i);
    n.lines(no_echo);

    // The disk is full: the echo that would have answered the line is dropped with the
    // message, so the refusal is the answer, and carries the label (a client waiting for
    // it showed the line as being sent for ever).
    n.writes_fail = true;
    n.send(i, &["@label=f1 PRIVMSG #d :lost"]);
    n.advance(2_000);
    let l = n.lines(i);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with("@label=f1 :natter.irc 400 tagged PRIVMSG :")
            && l[0].contains("disk is full"),
        "{l:?}"
    );
    // Without echo-message the line's answer is its ACK: the refusal after it is not a
    // second answer with the same label.
    n.send(no_echo, &["@label=f2 PRIVMSG #d :lost too"]);
    n.advance(2_000);
    let l = n.lines(no_echo);
    assert_eq!(
        l.iter().filter(|l| l.contains("label=f2")).count(),
        1,
        "{l:?}"
    );
    assert!(
        l.iter()
            .any(|l| l.starts_with(":natter.irc 400 quiet PRIVMSG :")),
        "{l:?}"
    );

    // A paste of a dozen labeled lines in one read (past the flood burst): each refusal
    // names its command and carries its own label.
    n.advance(3_000);
    let paste: Vec<String> = (1..=12)
        .map(|k| format!("@label=p{k} PRIVMSG #d :line {k}"))
        .collect();
    let paste: Vec<&str> = paste.iter().map(String::as_str).collect();
    n.send(i, &paste);
    n.advance(3_000);
    let l = n.lines(i);
    let want: Vec<String> = (1..=12)
        .map(|k| format!("@label=p{k} :natter.irc 400 tagged PRIVMSG :"))
        .collect();
    assert_eq!(l.len(), 12, "{l:?}");
    for (line, want) in l.iter().zip(&want) {
        assert!(line.starts_with(want.as_str()), "{line} is not {want}...");
    }

    // Room again: the echo is the answer, as ever.
    n.writes_fail = false;
    n.advance(2_000);
    n.send(i, &["@label=f3 PRIVMSG #d :kept"]);
    n.advance(2_000);
    let l = n.lines(i);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with("@label=f3;msgid=") && l[0].ends_with("PRIVMSG #d :kept"),
        "{l:?}"
    );
}

#[test]
fn chathistory_reaches_past_the_ring_into_the_store() {
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        durable: true,
        history_len: 10,
        history_on_join: 5,
        ..Config::default()
    });
    let old = n.bin("old");
    n.send_bin(old, &ClientMsg::Join { room: room("#s") });
    said_lines(&mut n, old, "#s", 30);
    assert!(n.stored.len() >= 31, "every event is written");
    let c = n.client("hist", &HISTORY_CAPS);
    n.send(c, &["JOIN #s"]);
    n.advance(3_000);
    n.lines(c);
    let ask = |n: &mut Net, line: &str| {
        n.advance(1_000);
        n.send(c, &[line]);
        n.lines(c)
    };
    // The newest few are in the ring: no store read.
    let l = ask(&mut n, "CHATHISTORY LATEST #s * 3");
    assert_eq!(privmsg_texts(&l), ["line 28", "line 29", "line 30"]);
    assert_eq!(n.reads, 0);
    // Older ones come from the store (line i is seq i+1).
    let l = ask(&mut n, "CHATHISTORY BEFORE #s msgid=s/11 3");
    assert_eq!(privmsg_texts(&l), ["line 7", "line 8", "line 9"]);
    assert_eq!(n.reads, 1);
    let l = ask(&mut n, "CHATHISTORY AFTER #s msgid=s/4 4");
    assert_eq!(privmsg_texts(&l), ["line 4", "line 5", "line 6", "line 7"]);
    // More than the ring holds: the store's page and the ring, once each, in order.
    let l = ask(&mut n, "CHATHISTORY LATEST #s * 100");
    let want: Vec<String> = (1..=30).map(|i| format!("line {i}")).collect();
    assert_eq!(privmsg_texts(&l), want);
    assert!(l[0].contains(" BATCH +") && l.last().unwrap().contains(" BATCH -"));
    // Parted while the store was read: nothing of the room comes.
    n.hold_reads = true;
    let l = ask(&mut n, "CHATHISTORY BEFORE #s msgid=s/6 2");
    assert!(l.is_empty(), "waits for the store: {l:?}");
    n.send(c, &["PART #s"]);
    n.lines(c);
    n.hold_reads = false;
    n.answer_held();
    let l = n.lines(c);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with(":natter.irc FAIL CHATHISTORY INVALID_TARGET BEFORE #s :"),
        "{l:?}"
    );
    n.send(c, &["JOIN #s"]);
    n.advance(1_000);
    n.lines(c);
    // A store that cannot be read: MESSAGE_ERROR.
    n.store_fails = true;
    let l = ask(&mut n, "CHATHISTORY BEFORE #s msgid=s/5 3");
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with(
            ":natter.irc FAIL CHATHISTORY MESSAGE_ERROR BEFORE #s :Messages could not be retrieved: disk on fire"
        ),
        "{l:?}"
    );
}

/// IRC's SASL shares the sign-in's throttling (SECURITY.md, *Accounts*): from a lab's address
/// in the waits its neighbours' typos started, a name never proved there is refused unchecked,
/// and alice, who signed in from there before, still gets in at once.
#[test]
fn sasl_from_a_known_address_is_not_held_by_its_neighbours_typos() {
    use base64::Engine;
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        flood_burst: 100,
        accounts: AccountsConfig {
            hash_cost: crate::accounts::HashCost::TEST,
            ..AccountsConfig::default()
        },
        ..Config::default()
    });
    registered(&mut n, "alice");
    registered(&mut n, "bob");
    let lab = IpAddr::from([203, 0, 113, 9]);
    let connect = |n: &mut Net| {
        let c = n.hub.accept_on(Door::Irc, lab, n.now).unwrap();
        n.pump();
        n.send(
            c,
            &[
                "CAP LS 302",
                "NICK someone",
                "USER u 0 * :U",
                "CAP REQ :sasl",
            ],
        );
        n.lines(c);
        c
    };
    let sasl = |n: &mut Net, c: ConnId, who: &str, password: &str| {
        n.send(c, &["AUTHENTICATE PLAIN"]);
        n.lines(c);
        let plain = format!("\0{who}\0{password}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(plain);
        n.send(c, &[&format!("AUTHENTICATE {b64}")]);
        n.lines(c)
    };
    let a = connect(&mut n);
    let l = sasl(&mut n, a, "alice", "correct horse");
    assert_eq!(numerics(&l), ["900", "903"], "{l:?}");
    n.hub.handle_close(a, n.now);
    n.pump();
    let s = connect(&mut n);
    for i in 0..11 {
        let l = sasl(&mut n, s, &format!("student{i}"), "typo typo");
        assert_eq!(numerics(&l), ["904"], "{i}: {l:?}");
    }
    let b = connect(&mut n);
    let l = sasl(&mut n, b, "bob", "correct horse");
    assert!(l.iter().any(|l| l.contains("from your address")), "{l:?}");
    let l = sasl(&mut n, b, "alice", "correct horse");
    assert_eq!(numerics(&l), ["900", "903"], "{l:?}");
}

/// An IRC client of `caps` that signs in to `account` with SASL PLAIN (password "correct
/// horse") and registers; the lines of its welcome.
fn sasl_client(n: &mut Net, account: &str, caps: &str) -> (ConnId, Vec<String>) {
    use base64::Engine;
    let c = n.irc();
    let plain = format!("\0{account}\0correct horse");
    let b64 = base64::engine::general_purpose::STANDARD.encode(plain);
    n.send(
        c,
        &[
            "CAP LS 302",
            "NICK someone",
            "USER u 0 * :U",
            &format!("CAP REQ :sasl {caps}"),
            "AUTHENTICATE PLAIN",
        ],
    );
    n.lines(c);
    n.send(c, &[&format!("AUTHENTICATE {b64}")]);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["900", "903"], "{l:?}");
    n.send(c, &["CAP END"]);
    let l = n.lines(c);
    n.advance(3_000);
    (c, l)
}

#[test]
fn what_an_account_missed_comes_with_a_sasl_welcome_as_history_not_as_live_lines() {
    let mut n = Net::new();
    let a = registered(&mut n, "alice");
    n.send_bin(a, &ClientMsg::Join { room: room("#x") });
    let b = n.bin("bob");
    n.send_bin(b, &ClientMsg::Join { room: room("#x") });
    n.send_bin(
        b,
        &ClientMsg::Say {
            room: room("#x"),
            id: crate::types::MsgId(1),
            text: text("said before"),
        },
    );
    n.send_bin(
        b,
        &ClientMsg::Part {
            room: room("#x"),
            reason: None,
        },
    );
    n.recv(a);
    // Without server-time an IRC client cannot tell old lines from new: bob's join, line and
    // part, long over, would read as happening now (and bob is not in #x).
    let (_, l) = sasl_client(&mut n, "alice", "");
    assert!(
        l.iter().any(|l| l == ":alice!alice@natter JOIN #x"),
        "{l:?}"
    );
    assert!(
        !l.iter()
            .any(|l| l.starts_with(":bob!") || l.contains(" JOIN #x * ")),
        "history came as live lines: {l:?}"
    );
    // With server-time the lines said come, with their time; joins and parts do not.
    let (_, l) = sasl_client(&mut n, "alice", "server-time");
    let from_bob: Vec<&String> = l.iter().filter(|l| l.contains(":bob!")).collect();
    assert_eq!(from_bob.len(), 1, "{l:?}");
    assert!(
        from_bob[0].starts_with("@time=") && from_bob[0].ends_with("PRIVMSG #x :said before"),
        "{l:?}"
    );
}

/// The lines of `l` from `BATCH +id chathistory <room>` to its `BATCH -id`, each checked to
/// carry `batch=id`; panics when there is no such batch, or it does not end.
fn history_batch<'a>(l: &'a [String], room: &str) -> Vec<&'a str> {
    let open = format!(" chathistory {room}");
    let at = l
        .iter()
        .position(|x| x.contains(" BATCH +") && x.ends_with(&open))
        .unwrap_or_else(|| panic!("no chathistory batch for {room}: {l:?}"));
    let id = l[at]
        .split(" BATCH +")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap();
    let close = format!(" BATCH -{id}");
    let end = l[at..]
        .iter()
        .position(|x| x.ends_with(&close))
        .unwrap_or_else(|| panic!("batch {id} never ends: {l:?}"));
    let inside: Vec<&str> = l[at + 1..at + end].iter().map(String::as_str).collect();
    for x in &inside {
        assert!(
            x.starts_with(&format!("@batch={id};")),
            "outside {id}: {x} in {l:?}"
        );
    }
    inside
}

#[test]
fn what_an_account_missed_comes_with_a_sasl_welcome_in_a_chathistory_batch() {
    // A client that asks for batch (The Lounge, gamja, senpai) takes lines outside a
    // chathistory batch for live ones: old lines would notify and highlight as if said now.
    // A JOIN's history comes in one; the welcome's, of an account's rooms, must too.
    let mut n = Net::new();
    let a = registered(&mut n, "alice");
    n.send_bin(a, &ClientMsg::Join { room: room("#x") });
    n.send_bin(a, &ClientMsg::Join { room: room("#y") });
    let b = n.bin("bob");
    for (id, r) in [(1, "#x"), (2, "#y")] {
        n.send_bin(b, &ClientMsg::Join { room: room(r) });
        n.send_bin(
            b,
            &ClientMsg::Say {
                room: room(r),
                id: crate::types::MsgId(id),
                text: text(&format!("said in {r}")),
            },
        );
    }
    n.recv(a);
    let caps = "server-time batch message-tags";
    let (c, l) = sasl_client(&mut n, "alice", caps);
    for r in ["#x", "#y"] {
        let inside = history_batch(&l, r);
        assert_eq!(inside.len(), 1, "{l:?}");
        assert!(
            inside[0].ends_with(&format!("PRIVMSG {r} :said in {r}")),
            "{l:?}"
        );
    }
    // What it missed after the IRC connection left (the account's read marker): in a
    // batch as well.
    n.send(c, &["QUIT :bye"]);
    n.lines(c);
    n.advance(1_000);
    n.send_bin(
        b,
        &ClientMsg::Say {
            room: room("#x"),
            id: crate::types::MsgId(3),
            text: text("said while away"),
        },
    );
    n.advance(1_000);
    let (_, l) = sasl_client(&mut n, "alice", caps);
    let inside = history_batch(&l, "#x");
    assert!(
        inside
            .last()
            .is_some_and(|x| x.ends_with("PRIVMSG #x :said while away")),
        "{l:?}"
    );
    assert!(
        !l.iter()
            .any(|x| x.contains("said while away") && !x.contains("batch=")),
        "{l:?}"
    );
}

/// Every `BATCH +id` of `l` has its `BATCH -id` after it.
fn batches_balanced(l: &[String]) {
    let mut open: Vec<&str> = Vec::new();
    for x in l {
        if let Some(id) = x.split(" BATCH +").nth(1) {
            open.push(id.split(' ').next().unwrap());
        } else if let Some(id) = x.split(" BATCH -").nth(1) {
            let at = open.iter().rposition(|o| *o == id);
            assert!(at.is_some(), "{id} closed, never opened: {l:?}");
            open.remove(at.unwrap());
        }
    }
    assert!(open.is_empty(), "left open: {open:?} in {l:?}");
}

#[test]
fn what_an_account_missed_past_the_ring_comes_from_the_store_as_history() {
    // The store's page comes after the welcome's turn: its lines are history all the same
    // (IRC rendered none of them, and each was told as a line not delivered), and a batch
    // opened at the welcome would never be closed.
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        durable: true,
        history_len: 10,
        history_on_join: 5,
        accounts: AccountsConfig {
            hash_cost: crate::accounts::HashCost::TEST,
            ..AccountsConfig::default()
        },
        ..Config::default()
    });
    let a = registered(&mut n, "alice");
    n.send_bin(a, &ClientMsg::Join { room: room("#x") });
    let caps = "server-time batch message-tags";
    let (c, _) = sasl_client(&mut n, "alice", caps);
    n.send(c, &["QUIT :bye"]);
    n.lines(c);
    n.advance(1_000);
    let b = n.bin("bob");
    n.send_bin(b, &ClientMsg::Join { room: room("#x") });
    said_lines(&mut n, b, "#x", 30);
    n.advance(1_000);
    n.hold_reads = true;
    let (c, mut l) = sasl_client(&mut n, "alice", caps);
    n.hold_reads = false;
    n.answer_held();
    n.advance(1_000);
    l.extend(n.lines(c));
    // Every line said, once, in order, as history (timed); no join of bob's; and no notice
    // that lines were not delivered: nothing was lost.
    let want: Vec<String> = (1..=30).map(|i| format!("line {i}")).collect();
    assert_eq!(privmsg_texts(&l), want, "{l:?}");
    assert!(
        l.iter()
            .filter(|x| x.contains("PRIVMSG #x"))
            .all(|x| x.starts_with("@") && x.contains("time=")),
        "{l:?}"
    );
    assert!(!l.iter().any(|x| x.contains(" JOIN #x ")), "{l:?}");
    assert!(!l.iter().any(|x| x.contains("not delivered")), "{l:?}");
    batches_balanced(&l);
}

/// A store to read from, a ring of 10 events, 5 replayed on a join: what an account missed
/// past the ring comes from the store.
fn store_net() -> Net {
    Net::with(Config {
        secret_seed: [3; 32],
        durable: true,
        history_len: 10,
        history_on_join: 5,
        accounts: AccountsConfig {
            hash_cost: crate::accounts::HashCost::TEST,
            ..AccountsConfig::default()
        },
        ..Config::default()
    })
}

/// What alice's welcome (SASL, with `caps`) brings of 31 lines she missed in `#x`, 21 of them
/// in the store only, with carol's join and part among the last ones (in the ring); the
/// store's page comes after the welcome's turn.
fn missed_past_the_ring(caps: &str) -> Vec<String> {
    let mut n = store_net();
    let a = registered(&mut n, "alice");
    n.send_bin(a, &ClientMsg::Join { room: room("#x") });
    let (c, _) = sasl_client(&mut n, "alice", caps);
    n.send(c, &["QUIT :bye"]);
    n.lines(c);
    n.advance(1_000);
    let b = n.bin("bob");
    n.send_bin(b, &ClientMsg::Join { room: room("#x") });
    said_lines(&mut n, b, "#x", 30);
    let carol = n.bin("carol");
    n.send_bin(carol, &ClientMsg::Join { room: room("#x") });
    n.send_bin(
        carol,
        &ClientMsg::Part {
            room: room("#x"),
            reason: None,
        },
    );
    n.send_bin(
        b,
        &ClientMsg::Say {
            room: room("#x"),
            id: crate::types::MsgId(31),
            text: text("line 31"),
        },
    );
    n.advance(1_000);
    n.hold_reads = true;
    let (c, mut l) = sasl_client(&mut n, "alice", caps);
    n.hold_reads = false;
    n.answer_held();
    n.advance(1_000);
    l.extend(n.lines(c));
    l
}

#[test]
fn what_an_account_missed_from_the_store_and_the_ring_comes_in_one_chathistory_batch() {
    // As without a store (the tests above): The Lounge and gamja take lines outside a
    // chathistory batch for live ones, and a join or part of the ring's would change their
    // member lists as if it happened now.
    let want: Vec<String> = (1..=31).map(|i| format!("line {i}")).collect();
    let l = missed_past_the_ring("server-time batch message-tags");
    assert_eq!(privmsg_texts(&l), want, "{l:?}");
    assert!(!l.iter().any(|x| x.contains(":carol!")), "{l:?}");
    let inside: Vec<String> = history_batch(&l, "#x")
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(privmsg_texts(&inside), want, "{l:?}");
    batches_balanced(&l);
    // With server-time only: the same lines, timed, no batch, no live join or part.
    let l = missed_past_the_ring("server-time");
    assert_eq!(privmsg_texts(&l), want, "{l:?}");
    assert!(!l.iter().any(|x| x.contains(":carol!")), "{l:?}");
    assert!(!l.iter().any(|x| x.contains("BATCH")), "{l:?}");
    // Without it no history at all, as without a store.
    let l = missed_past_the_ring("");
    assert!(privmsg_texts(&l).is_empty(), "{l:?}");
    assert!(!l.iter().any(|x| x.contains(":carol!")), "{l:?}");
}

#[test]
fn a_part_while_the_store_page_is_read_is_told_and_opens_no_batch() {
    let mut n = store_net();
    let a = registered(&mut n, "alice");
    n.send_bin(a, &ClientMsg::Join { room: room("#x") });
    let caps = "server-time batch message-tags";
    let (c, _) = sasl_client(&mut n, "alice", caps);
    n.send(c, &["QUIT :bye"]);
    n.lines(c);
    n.advance(1_000);
    let b = n.bin("bob");
    n.send_bin(b, &ClientMsg::Join { room: room("#x") });
    said_lines(&mut n, b, "#x", 30);
    n.advance(1_000);
    n.hold_reads = true;
    let (c, mut l) = sasl_client(&mut n, "alice", caps);
    n.send(c, &["PART #x :gone"]);
    l.extend(n.lines(c));
    // Back in before the page is read: what the room sends now is live.
    n.advance(1_000);
    n.send(c, &["JOIN #x"]);
    l.extend(n.lines(c));
    let carol = n.bin("carol");
    n.send_bin(carol, &ClientMsg::Join { room: room("#x") });
    n.hold_reads = false;
    n.answer_held();
    n.advance(1_000);
    l.extend(n.lines(c));
    assert!(l.iter().any(|x| x.ends_with("PART #x :gone")), "{l:?}");
    assert!(
        l.iter().any(|x| x.contains(":carol!carol@natter JOIN #x")),
        "a live join: {l:?}"
    );
    assert!(
        !l.iter().any(|x| x.ends_with(":line 1")),
        "the page read for the visit she left is not replayed into the next one: {l:?}"
    );
    batches_balanced(&l);
    n.send_bin(
        b,
        &ClientMsg::Say {
            room: room("#x"),
            id: crate::types::MsgId(99),
            text: text("live now"),
        },
    );
    let l = n.lines(c);
    let live = find(&l, "live now");
    assert!(!live.contains("batch="), "{l:?}");
}

#[test]
fn what_an_account_missed_from_the_store_past_its_backlog_closes_its_batch_and_comes_after() {
    // The store's page fills the connection's backlog: the batch closes with the part sent
    // and the rest follows once it drains, as without a store (the test below).
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        durable: true,
        history_len: 10,
        history_on_join: 5,
        outbound_max_bytes: 4_096,
        accounts: AccountsConfig {
            hash_cost: crate::accounts::HashCost::TEST,
            ..AccountsConfig::default()
        },
        ..Config::default()
    });
    let a = registered(&mut n, "alice");
    n.send_bin(a, &ClientMsg::Join { room: room("#x") });
    let caps = "server-time batch message-tags";
    let (c, _) = sasl_client(&mut n, "alice", caps);
    n.send(c, &["QUIT :bye"]);
    n.lines(c);
    n.advance(1_000);
    let b = n.bin("bob");
    n.send_bin(b, &ClientMsg::Join { room: room("#x") });
    said_lines(&mut n, b, "#x", 60);
    n.advance(1_000);
    n.hold_reads = true;
    let (c, mut l) = sasl_client(&mut n, "alice", caps);
    n.hold_reads = false;
    n.answer_held();
    n.advance(1_000);
    l.extend(n.lines(c));
    batches_balanced(&l);
    let want: Vec<String> = (1..=60).map(|i| format!("line {i}")).collect();
    assert_eq!(privmsg_texts(&l), want, "{l:?}");
    assert!(!l.iter().any(|x| x.contains("not delivered")), "{l:?}");
    let inside = history_batch(&l, "#x");
    assert!(!inside.is_empty() && inside.len() < 60, "{l:?}");
}

#[test]
fn what_an_account_missed_past_its_backlog_closes_its_batch_and_comes_after() {
    // The welcome fills the connection's backlog: the replay stops half-way and the rest
    // follows once it drains, after the welcome's turn. The batch closes with the part sent.
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        outbound_max_bytes: 4_096,
        accounts: AccountsConfig {
            hash_cost: crate::accounts::HashCost::TEST,
            ..AccountsConfig::default()
        },
        ..Config::default()
    });
    let a = registered(&mut n, "alice");
    n.send_bin(a, &ClientMsg::Join { room: room("#x") });
    let caps = "server-time batch message-tags";
    let (c, _) = sasl_client(&mut n, "alice", caps);
    n.send(c, &["QUIT :bye"]);
    n.lines(c);
    n.advance(1_000);
    let b = n.bin("bob");
    n.send_bin(b, &ClientMsg::Join { room: room("#x") });
    said_lines(&mut n, b, "#x", 60);
    n.advance(1_000);
    let (c, mut l) = sasl_client(&mut n, "alice", caps);
    l.extend(n.lines(c));
    batches_balanced(&l);
    // Every line, once, in order; and no word of lines not delivered: the rest came.
    let want: Vec<String> = (1..=60).map(|i| format!("line {i}")).collect();
    assert_eq!(privmsg_texts(&l), want, "{l:?}");
    assert!(!l.iter().any(|x| x.contains("not delivered")), "{l:?}");
    let cut = l.iter().position(|x| x.contains(" BATCH -")).unwrap();
    assert!(
        l[cut + 1..].iter().any(|x| x.ends_with(":line 60")),
        "the part sent was cut: {l:?}"
    );
}

#[test]
fn an_irc_operator_gets_341_for_an_invite_401_naming_the_nick_and_mode_lines_without_324() {
    use crate::wire::ModAction;
    let mut n = Net::new();
    let a = registered(&mut n, "alice");
    n.send_bin(a, &ClientMsg::Join { room: room("#r") });
    n.send_bin(
        a,
        &ClientMsg::Moderate {
            room: room("#r"),
            action: ModAction::Register,
        },
    );
    let (c, welcome) = sasl_client(&mut n, "alice", "");
    assert!(
        welcome
            .iter()
            .any(|l| l.contains(" CHANMODES=bq,k,l,imnrt ")),
        "bans, mutes, key and limit take parameters: {welcome:?}"
    );
    n.lines(c);
    let b = n.client("bob", &[]);
    n.send(b, &["JOIN #r"]);
    n.advance(1_000);
    // The founder (an operator) is marked in NAMES, as PREFIX=(ov)@+ says.
    let l = n.lines(b);
    let names = find(&l, " 353 ");
    assert!(names.contains("@alice") && !names.contains("@bob"), "{l:?}");
    n.lines(c);
    n.send_bin(
        a,
        &ClientMsg::Moderate {
            room: room("#r"),
            action: ModAction::Voice(nick("bob")),
        },
    );
    n.lines(b);
    n.lines(c);
    n.send(b, &["NAMES #r"]);
    let l = n.lines(b);
    let names = find(&l, " 353 ");
    assert!(names.contains("@alice") && names.contains("+bob"), "{l:?}");
    n.send(b, &["WHO #r"]);
    let l = n.lines(b);
    assert!(
        find(&l, " natter.irc alice ").contains(" alice H@ :0 "),
        "{l:?}"
    );
    assert!(
        find(&l, " natter.irc bob ").contains(" bob H+ :0 "),
        "{l:?}"
    );
    // A change is its MODE line; only asking gets 324.
    n.send(c, &["MODE #r +m"]);
    let l = n.lines(c);
    assert_eq!(l, [":alice!alice@natter MODE #r +m"]);
    assert_eq!(n.lines(b), [":alice!alice@natter MODE #r +m"]);
    n.send(c, &["MODE #r"]);
    assert_eq!(numerics(&n.lines(c)), ["324", "329"]);
    n.advance(1_000);
    n.send(c, &["KICK #r nobody :x", "INVITE nobody #r"]);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["401", "401"], "{l:?}");
    assert!(l.iter().all(|l| l.contains(" 401 alice nobody :")), "{l:?}");
    // The kicked member reads the KICK, and no PART after it.
    n.advance(1_000);
    n.send(c, &["KICK #r bob :out"]);
    assert_eq!(n.lines(b), [":alice!alice@natter KICK #r bob :out"]);
    n.lines(c);
    n.send(c, &["INVITE bob #R"]);
    assert_eq!(n.lines(c), [":natter.irc 341 alice bob #r"]);
    assert_eq!(n.lines(b), [":alice!alice@natter INVITE bob #r"]);
    n.send(b, &["JOIN #r", "PART #r"]);
    let l = n.lines(b);
    assert!(l.iter().any(|l| l == ":bob!bob@natter PART #r"), "{l:?}");
    // WHOIS tells a signed-in user's account (330), and a guest's none.
    n.advance(1_000);
    n.send(b, &["WHOIS alice", "WHOIS bob"]);
    let l = n.lines(b);
    assert!(
        l.iter()
            .any(|l| l == ":natter.irc 330 bob alice alice :is logged in as"),
        "{l:?}"
    );
    assert_eq!(
        numerics(&l).iter().filter(|n| **n == "330").count(),
        1,
        "{l:?}"
    );
}

/// A server whose accounts' admin is `alice` (not registered yet).
fn with_admin_alice() -> Net {
    Net::with(Config {
        secret_seed: [3; 32],
        accounts: AccountsConfig {
            hash_cost: crate::accounts::HashCost::TEST,
            admins: vec![nick("alice")],
            ..AccountsConfig::default()
        },
        ..Config::default()
    })
}

#[test]
fn an_admins_take_over_and_close_are_notices_and_a_server_ban_is_465_then_error() {
    use crate::wire::AdminAction;
    let mut n = with_admin_alice();
    let a = registered(&mut n, "alice");
    let b = n.client("bob", &[]);
    n.send(b, &["JOIN #v"]);
    n.send_bin(a, &ClientMsg::Join { room: room("#v") });
    n.advance(1_000);
    n.lines(b);
    n.send_bin(a, &ClientMsg::Admin(AdminAction::TakeOver(room("#v"))));
    // Not `MODE #v founder alice`, which a client reads as the letters f, o, u...
    assert_eq!(
        n.lines(b),
        [
            ":natter.irc NOTICE #v :*** alice set #v founder alice",
            ":natter.irc MODE #v +o alice",
        ]
    );
    n.send_bin(
        a,
        &ClientMsg::Admin(AdminAction::Close {
            room: room("#v"),
            reason: Some(text("closing time")),
        }),
    );
    let l = n.lines(b);
    assert_eq!(
        l,
        [
            ":natter.irc NOTICE #v :*** alice set #v close: closing time",
            ":bob!bob@natter PART #v :Channel closed by alice: closing time",
        ]
    );
    n.send_bin(
        a,
        &ClientMsg::Admin(AdminAction::Ban {
            target: "bob".into(),
            duration: None,
            reason: Some(text("spam")),
        }),
    );
    let l = n.lines(b);
    assert_eq!(numerics(&l), ["465"], "{l:?}");
    assert!(l.last().unwrap().starts_with("ERROR :"), "{l:?}");
    assert!(n.closed(b));
    // Coming back under the banned nick: refused at registration the same way, 465 then
    // ERROR, as IRC servers close a banned client's link.
    let again = n.irc();
    n.send(again, &["NICK bob", "USER bob 0 * :Bob"]);
    n.advance(1_000);
    let l = n.lines(again);
    assert_eq!(numerics(&l), ["465"], "{l:?}");
    assert!(l.last().unwrap().starts_with("ERROR :"), "{l:?}");
    assert!(n.closed(again));
}

/// An always-on account away when an admin closes its room hears who closed it and why as a
/// server `NOTICE` after its SASL welcome, once, as a kick while it was away is told.
#[test]
fn an_account_away_when_its_room_is_closed_hears_a_notice_after_sasl() {
    use crate::wire::AdminAction;
    let mut n = with_admin_alice();
    let a = registered(&mut n, "alice");
    let b = registered(&mut n, "bob");
    n.send_bin(b, &ClientMsg::Join { room: room("#v") });
    n.send_bin(b, &ClientMsg::Quit { reason: None });
    n.send_bin(
        a,
        &ClientMsg::Admin(AdminAction::Close {
            room: room("#v"),
            reason: Some(text("closing time")),
        }),
    );
    n.advance(1_000);
    let (c, l) = sasl_client(&mut n, "bob", "");
    let welcome = l.iter().position(|l| l.contains(" 001 ")).expect("001");
    let told = l
        .iter()
        .position(|l| {
            l == ":natter.irc NOTICE bob :while you were away, alice closed #v (closing time)"
        })
        .unwrap_or_else(|| panic!("told: {l:?}"));
    assert!(welcome < told, "{l:?}");
    assert!(!l.iter().any(|l| l.contains(" JOIN #v")), "{l:?}");
    n.send(c, &["QUIT"]);
    n.advance(1_000);
    let (_, l) = sasl_client(&mut n, "bob", "");
    assert!(
        !l.iter().any(|l| l.contains("while you were away")),
        "told once: {l:?}"
    );
}

/// `TAKEOVER` that changes nothing is answered (a server `NOTICE` saying so, as the other
/// dialects say it), not silence; one of a room that does not exist is `403`, not a plain `400`.
#[test]
fn a_takeover_that_changes_nothing_says_so_and_of_no_room_is_403() {
    let mut n = with_admin_alice();
    registered(&mut n, "alice");
    let (a, _) = sasl_client(&mut n, "alice", "");
    n.send(a, &["JOIN #club"]);
    n.advance(1_000);
    n.lines(a);
    n.send(a, &["TAKEOVER #club"]);
    n.advance(1_000);
    n.lines(a);
    n.send(a, &["TAKEOVER #club", "TAKEOVER #nowhere"]);
    n.advance(1_000);
    assert_eq!(
        n.lines(a),
        [
            ":natter.irc NOTICE alice :you are the founder of #club already",
            ":natter.irc 403 alice #nowhere :No such channel",
        ]
    );
}

/// IRC's way to close a room, as the other dialects' `/close`: natter's own `CLOSE #room
/// [:reason]` (sent raw, `/quote CLOSE #room :reason`), a server admin's only (481 for anyone
/// else, whatever the parameters); everyone leaves, the admin is told how many.
#[test]
fn an_admin_closes_a_room_with_close() {
    let mut n = with_admin_alice();
    registered(&mut n, "alice");
    let (a, _) = sasl_client(&mut n, "alice", "");
    let b = n.client("bob", &[]);
    n.send(b, &["JOIN #v"]);
    n.advance(1_000);
    n.settle(&[a, b]);
    n.send(b, &["CLOSE #v :mine now", "CLOSE"]);
    n.advance(1_000);
    assert_eq!(numerics(&n.lines(b)), ["481", "481"]);
    assert!(n.hub.rooms.contains_key(&room("#v")));
    n.send(a, &["CLOSE", "CLOSE #nowhere", "CLOSE #v :closing time"]);
    n.advance(1_000);
    assert_eq!(
        n.lines(a),
        [
            ":natter.irc 461 alice CLOSE :Not enough parameters",
            ":natter.irc 403 alice #nowhere :No such channel",
            ":natter.irc NOTICE alice :you closed #v: its 1 member left it",
        ]
    );
    assert_eq!(
        n.lines(b),
        [
            ":natter.irc NOTICE #v :*** alice set #v close: closing time",
            ":bob!bob@natter PART #v :Channel closed by alice: closing time",
        ]
    );
    assert!(!n.hub.rooms.contains_key(&room("#v")));
    // `#lobby` is never closed; without a reason is a close all the same.
    n.send(b, &["JOIN #w"]);
    n.send(a, &["CLOSE #lobby", "CLOSE #w"]);
    n.advance(1_000);
    let l = n.lines(a);
    assert_eq!(l.len(), 2, "{l:?}");
    assert!(l[0].contains("#lobby cannot be closed"), "{l:?}");
    assert_eq!(
        l[1],
        ":natter.irc NOTICE alice :you closed #w: its 1 member left it"
    );
    // Each member's PART says why (irssi and WeeChat show a PART's reason), also when the
    // close gave none. Until the forty-first session it gave none, the NOTICE alone saying why.
    let l = n.lines(b);
    assert_eq!(
        l[l.len().saturating_sub(2)..],
        [
            ":natter.irc NOTICE #w :*** alice set #w close",
            ":bob!bob@natter PART #w :Channel closed by alice",
        ],
        "{l:?}"
    );
    // The next PART of the user's own is its own again.
    n.send(b, &["JOIN #x", "PART #x :bye"]);
    n.advance(1_000);
    let l = n.lines(b);
    assert_eq!(
        l.last().map(String::as_str),
        Some(":bob!bob@natter PART #x :bye"),
        "{l:?}"
    );
}

/// What a client whose `OPER` powers ended is told (the admin account removed, no longer an
/// admin, or its password changed): a server `NOTICE` saying so and `MODE nick -o`, so its view
/// of its user modes is right. Until this review it went on showing `+o`.
fn oper_ended(nick: &str) -> [String; 2] {
    [
        format!(
            ":natter.irc NOTICE {nick} :*** You are no longer an IRC operator: the admin account \
             you named was removed, is no admin any more, or its password changed"
        ),
        format!(":{nick}!{nick}@natter MODE {nick} -o"),
    ]
}

/// An admin removed from `[accounts] admins` by a configuration reload takes the powers an
/// `OPER` with its account gave with it, and the client is told.
#[test]
fn an_oper_ends_when_its_account_is_no_admin_after_a_reload() {
    let mut n = with_admin_alice();
    registered(&mut n, "alice");
    let c = n.client("carol", &[]);
    n.send(c, &["OPER alice :correct horse", "MODE carol +i"]);
    n.advance(1_000);
    assert_eq!(numerics(&n.lines(c))[0], "381");
    let mut config = n.hub.config().clone();
    config.accounts.admins = Vec::new();
    n.hub.reconfigure(config).expect("reloads");
    n.pump();
    assert_eq!(n.lines(c), oper_ended("carol"));
    n.send(c, &["MODE carol", "KILL alice"]);
    n.advance(1_000);
    let l = n.lines(c);
    assert_eq!(l[0], ":natter.irc 221 carol +i");
    assert_eq!(numerics(&l), ["221", "481"], "{l:?}");
}

/// An admin account the operator removes takes the powers an `OPER` with its password gave
/// with it: the user is answered 481 after, and a `TAKEOVER` changes nothing. Until this
/// review the powers stayed (`KILL`, `WALLOPS`, every room's admin standing), and a
/// `TAKEOVER`, finding no account of that name, made the user's own nick the room's founder.
#[test]
fn an_oper_ends_with_the_admin_account_it_named() {
    let mut n = with_admin_alice();
    registered(&mut n, "alice");
    let bob = n.client("bob", &[]);
    n.send(bob, &["JOIN #club"]);
    let c = n.client("carol", &[]);
    n.send(c, &["OPER alice :correct horse"]);
    n.advance(1_000);
    assert_eq!(numerics(&n.lines(c))[0], "381");
    n.lines(bob);
    n.hub.load_accounts(Vec::new());
    n.pump();
    // The client is told its `+o` is gone, and `MODE carol` no longer shows it.
    assert_eq!(n.lines(c), oper_ended("carol"));
    n.send(c, &["MODE carol"]);
    assert_eq!(n.lines(c), [":natter.irc 221 carol +"]);
    n.send(c, &["TAKEOVER #club", "KILL bob :out"]);
    n.advance(1_000);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["481", "481"], "{l:?}");
    let held = n
        .hub
        .rooms
        .get(&room("#club"))
        .and_then(|r| r.policy.as_ref());
    assert_eq!(held.and_then(|p| p.founder.clone()), None);
    assert!(n.lines(bob).is_empty());
}

/// A password changed because the old one got out ends the powers an `OPER` with the old
/// one gave, as it ends the account's sessions: until this review whoever had `OPER`ed with
/// a leaked admin password stayed an admin after the admin changed it.
#[test]
fn an_oper_ends_when_the_admin_accounts_password_changes() {
    let mut n = with_admin_alice();
    let a = registered(&mut n, "alice");
    let bob = n.client("bob", &[]);
    n.send(bob, &["JOIN #club"]);
    let c = n.client("carol", &[]);
    n.send(c, &["OPER alice :correct horse"]);
    n.advance(1_000);
    assert_eq!(numerics(&n.lines(c))[0], "381");
    n.lines(bob);
    n.send_bin(
        a,
        &ClientMsg::ChangePassword {
            old: crate::types::Password("correct horse".into()),
            new: crate::types::Password("battery staple".into()),
        },
    );
    n.advance(1_000);
    n.recv(a);
    assert_eq!(n.lines(c), oper_ended("carol"));
    n.send(c, &["MODE carol"]);
    assert_eq!(n.lines(c), [":natter.irc 221 carol +"]);
    n.send(c, &["KILL bob :out", "TAKEOVER #club"]);
    n.advance(1_000);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["481", "481"], "{l:?}");
    assert!(n.lines(bob).is_empty());
}

/// An always-on account's note of a close (or kick) while it was away, with a reason as long
/// as natter's clients may give (2,000 bytes), is one IRC line of at most 512 bytes, cut at
/// a character's boundary, as the `KICK` and `PART` lines cut theirs: until this review it
/// was a `NOTICE` of over 2,000 bytes, past what IRC clients and proxies read as one line.
#[test]
fn an_away_note_with_a_long_reason_fits_one_irc_line() {
    use crate::wire::AdminAction;
    let mut n = with_admin_alice();
    let a = registered(&mut n, "alice");
    let b = registered(&mut n, "bob");
    n.send_bin(b, &ClientMsg::Join { room: room("#v") });
    n.send_bin(b, &ClientMsg::Quit { reason: None });
    let long = "é".repeat(999);
    n.send_bin(
        a,
        &ClientMsg::Admin(AdminAction::Close {
            room: room("#v"),
            reason: Some(text(&long)),
        }),
    );
    n.advance(1_000);
    let (_, l) = sasl_client(&mut n, "bob", "");
    let told = find(&l, "while you were away, alice closed #v (");
    assert!(told.len() + 2 <= 512, "{} bytes: {told}", told.len() + 2);
    assert!(told.starts_with(":natter.irc NOTICE bob :"), "{told}");
    assert!(told.ends_with("é…"), "{told}");
}

#[test]
fn list_naming_channels_lists_those_only() {
    let mut n = Net::new();
    let a = n.client("alice", &[]);
    n.send(a, &["JOIN #a,#b,#c"]);
    n.advance(3_000);
    n.lines(a);
    n.send(a, &["LIST #b,#C"]);
    let l = n.lines(a);
    assert_eq!(numerics(&l), ["321", "322", "322", "323"], "{l:?}");
    assert!(
        l[1].contains(" 322 alice #b 1 ") && l[2].contains(" 322 alice #c 1 "),
        "{l:?}"
    );
    n.send(a, &["LIST #nope", "LIST #c++"]);
    assert_eq!(numerics(&n.lines(a)), ["321", "323", "321", "323"]);
    n.advance(1_000);
    n.send(a, &["LIST"]);
    assert_eq!(numerics(&n.lines(a)).len(), 5, "every channel");
}

#[test]
fn registering_a_room_makes_its_founder_an_operator_in_irc_nick_lists() {
    use crate::wire::ModAction;
    let mut n = Net::new();
    let a = registered(&mut n, "alice");
    let b = n.client("bob", &[]);
    n.send(b, &["JOIN #q"]);
    n.send_bin(a, &ClientMsg::Join { room: room("#q") });
    n.advance(1_000);
    n.lines(b);
    n.send_bin(
        a,
        &ClientMsg::Moderate {
            room: room("#q"),
            action: ModAction::Register,
        },
    );
    assert_eq!(
        n.lines(b),
        [
            ":alice!alice@natter MODE #q +r",
            ":natter.irc MODE #q +o alice"
        ]
    );
}

#[test]
fn whois_of_an_account_with_nothing_connected_says_it_stays_in_its_rooms() {
    // An always-on account stays in its rooms with no connection at all: WHOIS said it was
    // "reconnecting" and "between connections and may resume", as of a dropped guest.
    let mut n = Net::new();
    let a = registered(&mut n, "alice");
    n.send_bin(a, &ClientMsg::Join { room: room("#a") });
    n.send_bin(a, &ClientMsg::Quit { reason: None });
    n.hub.handle_close(a, n.now);
    n.advance(1_000);
    let i = n.client("asker", &[]);
    n.send(i, &["WHOIS alice"]);
    let l = n.lines(i);
    assert!(
        find(&l, " 319 ").contains("#a"),
        "still in its rooms: {l:?}"
    );
    assert!(
        find(&l, " 311 ").ends_with(":natter user with nothing connected"),
        "{l:?}"
    );
    assert!(
        find(&l, " 320 ").ends_with(":is signed in nowhere now; an account stays in its rooms"),
        "{l:?}"
    );
    // A guest that dropped is still between connections.
    let g = n.bin("dropper");
    n.hub.handle_close(g, n.now);
    n.send(i, &["WHOIS dropper"]);
    let l = n.lines(i);
    assert!(
        find(&l, " 311 ").ends_with(":natter user reconnecting"),
        "{l:?}"
    );
    assert!(
        find(&l, " 320 ").ends_with(":is between connections and may resume"),
        "{l:?}"
    );
}

#[test]
fn a_registered_nick_is_433_saying_it_is_an_accounts() {
    // Its 433 said "Nickname is already in use" even when nobody used it: the person could not
    // tell that the nick is owned and that SASL signs in to it.
    let mut n = Net::new();
    let a = registered(&mut n, "alice");
    n.send_bin(a, &ClientMsg::SignOut);
    n.hub.handle_close(a, n.now);
    let c = n.irc();
    n.send(c, &["NICK alice", "USER a 0 * :A"]);
    let l = n.lines(c);
    assert_eq!(
        l[0],
        ":natter.irc 433 * alice :Nickname is registered to an account: sign in to it with SASL"
    );
    n.send(c, &["NICK bob"]);
    assert!(n.lines(c)[0].contains(" 001 bob "));
    n.send(c, &["NICK Alice"]);
    assert_eq!(
        n.lines(c),
        [
            ":natter.irc 433 bob Alice :Nickname is registered to an account: sign in to it with SASL"
        ]
    );
    // A nick someone holds is still just in use.
    let _carol = n.bin("carol");
    n.send(c, &["NICK carol"]);
    assert_eq!(
        n.lines(c),
        [":natter.irc 433 bob carol :Nickname is already in use"]
    );
}

/// The operator's message of the day replaces natter's own words, at registration and when
/// asked, and a reload's new one is what the next asker gets.
#[test]
fn the_operators_motd_is_sent_at_registration_and_on_motd() {
    let mut n = Net::new();
    let mut cfg = n.hub.config().clone();
    cfg.motd = Some(crate::hub::Motd::new("Be kind.\n\nRules: see /help").unwrap());
    n.hub.reconfigure(cfg).unwrap();
    let i = n.irc();
    n.send(i, &["NICK reader", "USER u 0 * :Real Name"]);
    let l = n.lines(i);
    let motd: Vec<&str> = l
        .iter()
        .filter(|l| l.contains(" 372 "))
        .map(String::as_str)
        .collect();
    assert_eq!(
        motd,
        [
            ":natter.irc 372 reader :- Be kind.",
            ":natter.irc 372 reader :- ",
            ":natter.irc 372 reader :- Rules: see /help",
        ]
    );
    assert!(
        numerics(&l).ends_with(&["375", "372", "372", "372", "376"]),
        "{l:?}"
    );
    let mut cfg = n.hub.config().clone();
    cfg.motd = Some(crate::hub::Motd::new("New rules").unwrap());
    n.hub.reconfigure(cfg).unwrap();
    n.send(i, &["MOTD"]);
    let l = n.lines(i);
    assert_eq!(numerics(&l), ["375", "372", "376"]);
    assert_eq!(l[1], ":natter.irc 372 reader :- New rules");
}

#[test]
fn an_irc_founder_registers_with_mode_r_and_bans_the_masks_irssi_and_weechat_make() {
    let mut n = Net::new();
    registered(&mut n, "alice");
    let (c, _) = sasl_client(&mut n, "alice", "");
    // USER names that are not their nicks, and one that is another's nick: the masks the
    // clients make come from what WHOX shows (irssi runs it at every join).
    let b = with_user(&mut n, "bob", "dan", "Bob");
    let d = with_user(&mut n, "dan", "root", "Dan");
    n.send(c, &["JOIN #m"]);
    n.send(b, &["JOIN #m"]);
    n.send(d, &["JOIN #m"]);
    n.advance(1_000);
    n.lines(c);
    n.lines(b);
    n.lines(d);
    // `+r` is in CHANMODES: it registers the room, and the founder is an operator.
    n.send(c, &["MODE #m +r"]);
    n.advance(1_000);
    let l = n.lines(b);
    assert!(
        l.iter().any(|l| l == ":alice!alice@natter MODE #m +r"),
        "{l:?}"
    );
    assert!(
        l.iter().any(|l| l == ":natter.irc MODE #m +o alice"),
        "{l:?}"
    );
    // KICK of someone on the server but not in the channel: 441 naming both; of nobody: 401.
    n.send(d, &["PART #m"]);
    n.advance(1_000);
    n.lines(c);
    n.send(c, &["KICK #m dan :x", "KICK #m ghost :x"]);
    n.advance(1_000);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["441", "401"], "{l:?}");
    assert!(l[0].contains(" 441 alice dan #m :"), "{l:?}");
    n.send(d, &["JOIN #m"]);
    n.advance(1_000);
    n.lines(c);
    n.lines(b);
    n.lines(d);
    // A guest cannot register.
    n.send(b, &["MODE #m +r"]);
    n.advance(1_000);
    let l = n.lines(b);
    assert!(!l.iter().any(|l| l.contains(" MODE #m +r")), "{l:?}");
    assert!(!numerics(&l).is_empty(), "a refusal: {l:?}");
    n.advance(1_000);
    n.lines(c);
    n.send(c, &["WHO #m %tcuhnar,743"]);
    let l = n.lines(c);
    let user_of = |nick: &str| -> String {
        let w = l
            .iter()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .find(|w| w[1] == "354" && w[7] == nick)
            .unwrap_or_else(|| panic!("{nick} in {l:?}"));
        w[5].to_owned()
    };
    let (bob_user, dan_user) = (user_of("bob"), user_of("dan"));
    // WeeChat's `/ban bob` sends `*!bob@natter` (ident and host): that is bob, not everyone on
    // the pseudo-host nor a nick named `natter`.
    n.send(c, &[&format!("MODE #m +b *!{bob_user}@natter")]);
    n.advance(3_000);
    n.lines(c);
    n.send(b, &["JOIN #m"]);
    // irssi's `*!*dan@natter` is dan.
    n.send(c, &[&format!("MODE #m +b *!*{dan_user}@natter")]);
    n.advance(3_000);
    let l = n.lines(b);
    assert!(l.iter().any(|l| l.contains(" KICK #m bob ")), "{l:?}");
    assert_eq!(numerics(&l), ["474"], "{l:?}");
    n.send(d, &["JOIN #m"]);
    n.advance(1_000);
    let l = n.lines(d);
    assert!(l.iter().any(|l| l.contains(" KICK #m dan ")), "{l:?}");
    assert_eq!(numerics(&l), ["474"], "{l:?}");
    n.send(c, &["MODE #m b"]);
    n.advance(1_000);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["367", "367", "368"], "{l:?}");
    assert!(l.iter().any(|l| l.contains(" #m bob!*@* ")), "{l:?}");
    assert!(l.iter().any(|l| l.contains(" #m dan!*@* ")), "{l:?}");
    // A mask of everyone on the pseudo-host is refused, not read as a nick: `696` naming the
    // channel, the mode and the mask, as for any mode's bad parameter.
    n.send(c, &["MODE #m +b *!*@natter"]);
    n.advance(1_000);
    let l = n.lines(c);
    assert!(!l.iter().any(|l| l.contains(" MODE #m +b")), "{l:?}");
    assert_eq!(numerics(&l), ["696"], "{l:?}");
    assert!(l[0].contains(" 696 alice #m b *!*@natter :"), "{l:?}");
    // HexChat's default `/ban dan` (`*!*@natter`) is told why and what to send instead.
    assert!(l[0].contains("so that mask is everyone"), "{l:?}");
    assert!(l[0].contains("/ban bob 3"), "{l:?}");
    // So is a wildcard host natter cannot match, on +q and -b too.
    n.send(
        c,
        &[
            "MODE #m +q *!*@*.example.com",
            "MODE #m -b *!*@*.example.com",
        ],
    );
    n.advance(1_000);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["696", "696"], "{l:?}");
    assert!(
        l[0].contains(" 696 alice #m q *!*@*.example.com :"),
        "{l:?}"
    );
}

#[test]
fn an_irc_admin_kills_wallops_and_walls_and_anyone_else_gets_481() {
    let mut n = with_admin_alice();
    registered(&mut n, "alice");
    let (a, _) = sasl_client(&mut n, "alice", "");
    n.lines(a);
    let b = n.client("bob", &[]);
    let d = n.client("dan", &[]);
    // Not an admin: 481, and nothing happens.
    // (A NOTICE's refusal is silent, as every NOTICE's is.)
    n.send(
        b,
        &[
            "KILL dan :bye",
            "WALLOPS :hear me",
            "PRIVMSG $* :hear me",
            "NOTICE $* :hear me",
        ],
    );
    n.advance(1_000);
    let l = n.lines(b);
    assert_eq!(numerics(&l), ["481", "481", "481"], "{l:?}");
    assert!(!n.closed(d));
    assert_eq!(n.lines(d), Vec::<String>::new());
    // Before its parameters are looked at, as solanum answers (461 until the thirtieth
    // session told a non-admin how to word a command it may not give).
    n.send(b, &["KILL", "KILL 9bad", "WALLOPS", "WALLOPS :"]);
    n.advance(1_000);
    let l = n.lines(b);
    assert_eq!(numerics(&l), ["481", "481", "481", "481"], "{l:?}");
    assert!(
        l[0].starts_with(":natter.irc 481 bob :Permission Denied"),
        "{l:?}"
    );
    // An admin is told what is missing.
    n.send(a, &["KILL", "KILL 9bad", "WALLOPS"]);
    n.advance(1_000);
    let l = n.lines(a);
    assert_eq!(numerics(&l), ["461", "401", "461"], "{l:?}");
    assert!(l[0].contains(" 461 alice KILL :"), "{l:?}");
    assert!(l[2].contains(" 461 alice WALLOPS :"), "{l:?}");
    // The admin's WALLOPS: to user mode `w` (irctest's `testWallops`), and its own echo.
    n.send(b, &["MODE bob +w"]);
    n.advance(1_000);
    n.lines(b);
    n.send(a, &["WALLOPS :ops, look at #k"]);
    n.advance(1_000);
    assert_eq!(n.lines(b), [":alice!alice@natter WALLOPS :ops, look at #k"]);
    assert_eq!(n.lines(a), [":alice!alice@natter WALLOPS :ops, look at #k"]);
    assert_eq!(n.lines(d), Vec::<String>::new(), "dan is not +w");
    // The admin's global notice (`$*`): everyone hears the wall.
    n.send(a, &["NOTICE $* :maintenance at noon"]);
    n.advance(1_000);
    for c in [b, d] {
        let l = n.lines(c);
        assert!(
            l.iter()
                .any(|l| l.contains(" NOTICE ") && l.contains("maintenance at noon")),
            "{l:?}"
        );
    }
    // A killed user is gone; an unknown nick is 401.
    n.lines(a);
    n.send(a, &["KILL nobody :x"]);
    n.advance(1_000);
    let l = n.lines(a);
    assert_eq!(numerics(&l), ["401"], "{l:?}");
    assert!(l[0].contains(" 401 alice nobody "), "{l:?}");
    // dan and bob share a channel: bob sees dan quit the way IRC servers word a kill, and
    // dan gets no server-ban numeric (465), only the link closing with who and why.
    n.send(b, &["JOIN #k"]);
    n.send(d, &["JOIN #k"]);
    n.advance(1_000);
    n.lines(b);
    n.lines(d);
    n.send(a, &["KILL dan :spam"]);
    n.advance(1_000);
    let l = n.lines(d);
    assert!(numerics(&l).is_empty(), "{l:?}");
    assert_eq!(
        l.last().map(String::as_str),
        Some("ERROR :Closing Link: natter (Killed (alice (spam)))"),
        "{l:?}"
    );
    assert!(n.closed(d));
    let l = n.lines(b);
    assert!(
        l.iter()
            .any(|l| l.starts_with(":dan!") && l.ends_with(" QUIT :Killed (alice (spam))")),
        "{l:?}"
    );
}

/// 004's last word, the channel modes that take a parameter, names every one that does:
/// CHANMODES's lists A to C (`q`, a mute, as `b`) and PREFIX's modes. It left out `q`, so a
/// client reading 004 took `MODE #a +q nick` for a flag and the nick for the next mode's.
#[test]
fn myinfo_names_every_channel_mode_that_takes_a_parameter() {
    let mut n = Net::new();
    let c = n.irc();
    n.send(c, &["NICK foo", "USER foo * * :foo"]);
    let l = n.lines(c);
    let myinfo: Vec<&str> = find(&l, " 004 ").split(' ').collect();
    let with_param: std::collections::BTreeSet<char> = myinfo[7].chars().collect();
    let isupport = l
        .iter()
        .filter(|l| l.contains(" 005 "))
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let chanmodes = isupport
        .split(' ')
        .find_map(|t| t.strip_prefix("CHANMODES="))
        .unwrap_or_default();
    let prefix = isupport
        .split(' ')
        .find_map(|t| t.strip_prefix("PREFIX=("))
        .and_then(|t| t.split(')').next())
        .unwrap_or_default();
    let wanted: std::collections::BTreeSet<char> = chanmodes
        .split(',')
        .take(3)
        .flat_map(str::chars)
        .chain(prefix.chars())
        .collect();
    assert_eq!(with_param, wanted, "{myinfo:?} {isupport}");
    let all: std::collections::BTreeSet<char> = myinfo[6].chars().collect();
    assert!(wanted.is_subset(&all), "{myinfo:?}");
}

/// An IRC admin's `+b`/`+q` of a room's founder is refused with 482, as an operator's is, and
/// the room hears nothing: no room's ban holds its founder (it was set, said and listed, and
/// held nobody, until the thirty-seventh session). The words name the way round an IRC user
/// can type: natter's own `TAKEOVER` verb, sent raw (`/quote`); until the thirty-ninth session
/// they named none. Taken over, the room's founder is the admin and the ban goes through.
#[test]
fn an_irc_admins_ban_of_a_rooms_founder_is_482_and_no_mode_line() {
    let mut n = with_admin_alice();
    registered(&mut n, "alice");
    let bob = registered(&mut n, "bob");
    n.send_bin(
        bob,
        &ClientMsg::Join {
            room: room("#club"),
        },
    );
    n.send_bin(
        bob,
        &ClientMsg::Moderate {
            room: room("#club"),
            action: crate::wire::ModAction::Register,
        },
    );
    let (a, _) = sasl_client(&mut n, "alice", "");
    n.send(a, &["JOIN #club"]);
    n.advance(1_000);
    n.lines(a);
    n.recv(bob);
    n.send(a, &["MODE #club +b bob", "MODE #club +q account:bob"]);
    n.advance(1_000);
    let l = n.lines(a);
    assert_eq!(
        l,
        [
            ":natter.irc 482 alice #club :the founder of #club cannot be banned or muted: \
             /quote TAKEOVER #club first",
            ":natter.irc 482 alice #club :the founder of #club cannot be banned or muted: \
             /quote TAKEOVER #club first",
        ]
    );
    let got = n.recv(bob);
    assert!(
        !got.iter().any(|m| matches!(m, ServerMsg::Event(_))),
        "{got:?}"
    );
    // The way round, as it says.
    n.send(a, &["TAKEOVER #club"]);
    n.advance(1_000);
    let l = n.lines(a);
    assert!(
        l.contains(
            &":natter.irc NOTICE alice :you took over #club: you are its founder".to_owned()
        ),
        "{l:?}"
    );
    n.recv(bob);
    n.send(a, &["MODE #club +b bob"]);
    n.advance(3_000);
    let l = n.lines(a);
    assert!(l.iter().any(|l| l.contains(" MODE #club +b ")), "{l:?}");
    assert!(
        n.recv(bob)
            .iter()
            .any(|m| matches!(m, ServerMsg::Parted { .. }))
    );
}

/// `TAKEOVER` is a server admin's: anyone else is answered 481 and nothing changes; without a
/// channel it is 461 (to an admin; 481 to anyone else, as `KILL`); an admin given its powers
/// by `OPER`, not signed in, takes the room over for the admin account it named; a room
/// that does not exist is said in words.
#[test]
fn takeover_is_a_server_admins_on_irc_too() {
    let mut n = with_admin_alice();
    registered(&mut n, "alice");
    let bob = registered(&mut n, "bob");
    n.send_bin(
        bob,
        &ClientMsg::Join {
            room: room("#club"),
        },
    );
    n.send_bin(
        bob,
        &ClientMsg::Moderate {
            room: room("#club"),
            action: crate::wire::ModAction::Register,
        },
    );
    let c = n.client("carol", &[]);
    n.send(c, &["TAKEOVER #club", "TAKEOVER"]);
    n.advance(1_000);
    assert_eq!(numerics(&n.lines(c)), ["481", "481"]);
    n.send(c, &["OPER alice :correct horse"]);
    n.advance(1_000);
    assert_eq!(numerics(&n.lines(c))[0], "381");
    n.send(c, &["TAKEOVER", "TAKEOVER #club"]);
    n.advance(1_000);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["461"], "{l:?}");
    assert!(
        l.contains(
            &":natter.irc NOTICE carol :you took over #club for alice: alice is its founder"
                .to_owned()
        ),
        "{l:?}"
    );
    let got = n.recv(bob);
    assert!(
        got.iter().any(|m| matches!(m, ServerMsg::Event(RoomEvent {
            kind: EventKind::Mode { change }, ..
        }) if change.as_str() == "founder alice")),
        "{got:?}"
    );
    n.send(c, &["TAKEOVER #nowhere"]);
    n.advance(1_000);
    let l = n.lines(c);
    assert_eq!(l, [":natter.irc 403 carol #nowhere :No such channel"]);
}

/// A user signed in to an account that is no admin, given an admin's powers by `OPER`, takes
/// a room over for the admin account it named, not for its own: its own account stays no
/// room's founder once it gives the powers up (`MODE me -o`) or the admin account stops
/// being one. Until this review, `TAKEOVER` made its own account the founder.
#[test]
fn an_opered_signed_in_users_takeover_makes_the_admin_account_founder_not_its_own() {
    let mut n = with_admin_alice();
    registered(&mut n, "alice");
    let bob = registered(&mut n, "bob");
    let eve = registered(&mut n, "eve");
    n.send_bin(eve, &ClientMsg::Quit { reason: None });
    n.send_bin(
        bob,
        &ClientMsg::Join {
            room: room("#club"),
        },
    );
    n.send_bin(
        bob,
        &ClientMsg::Moderate {
            room: room("#club"),
            action: crate::wire::ModAction::Register,
        },
    );
    let (c, _) = sasl_client(&mut n, "eve", "");
    n.send(c, &["OPER alice :correct horse"]);
    n.advance(1_000);
    assert_eq!(numerics(&n.lines(c))[0], "381");
    n.recv(bob);
    n.send(c, &["TAKEOVER #club"]);
    n.advance(1_000);
    // It is told whose the room is: not its own account's.
    assert_eq!(
        n.lines(c),
        [":natter.irc NOTICE eve :you took over #club for alice: alice is its founder"]
    );
    let got = n.recv(bob);
    let founder: Vec<&str> = got
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Event(RoomEvent {
                kind: EventKind::Mode { change },
                ..
            }) if change.as_str().starts_with("founder ") => Some(change.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(founder, ["founder alice"], "{got:?}");
    let held = n
        .hub
        .rooms
        .get(&room("#club"))
        .and_then(|r| r.policy.as_ref());
    let held = held.and_then(|p| p.founder.clone());
    assert_eq!(held, Some(nick("alice")));
}

/// The server's `MODE +o` after a room's registration (`MODE #m +r`) or an admin's take-over
/// carries no msgid: the event's msgid names the event's own line (IRCv3 message-ids: one
/// message each), and clients that drop a msgid they have seen dropped the `+o`. Until the
/// forty-first session both lines carried it.
#[test]
fn the_servers_plus_o_after_a_registration_or_takeover_repeats_no_msgid() {
    let mut n = with_admin_alice();
    let a = registered(&mut n, "alice");
    let (c, _) = sasl_client(&mut n, "alice", "");
    let b = n.client("bob", &["message-tags"]);
    n.send(c, &["JOIN #m"]);
    n.send(b, &["JOIN #m"]);
    n.advance(1_000);
    n.lines(b);
    n.send(c, &["MODE #m +r"]);
    n.advance(1_000);
    let l = n.lines(b);
    assert_eq!(l.len(), 2, "{l:?}");
    assert!(
        l[0].contains("msgid=m/") && l[0].ends_with(" :alice!alice@natter MODE #m +r"),
        "{l:?}"
    );
    assert!(!l[1].contains("msgid="), "{l:?}");
    assert_eq!(l[1], ":natter.irc MODE #m +o alice");
    // A take-over of a room alice is in: the NOTICE is the event's line, the `+o` added.
    n.send(c, &["JOIN #t"]);
    n.send(b, &["JOIN #t"]);
    n.advance(1_000);
    n.lines(b);
    n.send_bin(
        a,
        &ClientMsg::Admin(crate::wire::AdminAction::TakeOver(room("#t"))),
    );
    n.advance(1_000);
    let l = n.lines(b);
    assert_eq!(l.len(), 2, "{l:?}");
    assert!(
        l[0].contains("msgid=t/") && l[0].ends_with(" NOTICE #t :*** alice set #t founder alice"),
        "{l:?}"
    );
    assert!(!l[1].contains("msgid="), "{l:?}");
    assert_eq!(l[1], ":natter.irc MODE #t +o alice");
}

/// A `TAKEOVER` (here through `OPER`) for an admin account that is not in the channel: the
/// members are told who the founder is (the server's `NOTICE`), and nobody is given a
/// `MODE #club +o alice`, which named someone not there (IRC servers refuse a `+o` of a nick
/// not in the channel, `441`, and send no such line). The founder is opped when it joins, as
/// any operator is. Until the forty-first session the `+o` came all the same.
#[test]
fn a_takeover_for_a_founder_not_in_the_channel_gives_no_plus_o() {
    let mut n = with_admin_alice();
    let a = registered(&mut n, "alice");
    let bob = n.client("bob", &[]);
    n.send(bob, &["JOIN #club"]);
    let c = n.client("carol", &[]);
    n.send(c, &["OPER alice :correct horse"]);
    n.advance(1_000);
    assert_eq!(numerics(&n.lines(c))[0], "381");
    n.lines(bob);
    n.send(c, &["TAKEOVER #club"]);
    n.advance(1_000);
    assert_eq!(
        n.lines(c),
        [":natter.irc NOTICE carol :you took over #club for alice: alice is its founder"]
    );
    assert_eq!(
        n.lines(bob),
        [":natter.irc NOTICE #club :*** carol set #club founder alice"]
    );
    // In the channel, the founder has its `@` from the join on.
    n.send_bin(
        a,
        &ClientMsg::Join {
            room: room("#club"),
        },
    );
    n.advance(1_000);
    assert_eq!(
        n.lines(bob),
        [
            ":alice!alice@natter JOIN #club",
            ":natter.irc MODE #club +o alice"
        ]
    );
    // An admin signed in to its account, taking over a room it is not in, is no member either.
    n.send(bob, &["JOIN #den"]);
    n.advance(1_000);
    n.lines(bob);
    n.send_bin(
        a,
        &ClientMsg::Admin(crate::wire::AdminAction::TakeOver(room("#den"))),
    );
    n.advance(1_000);
    assert_eq!(
        n.lines(bob),
        [":natter.irc NOTICE #den :*** alice set #den founder alice"]
    );
}

/// `MODE #r +bb bob carol` (irssi's `/ban bob carol`) bans two guests in one instant, each by
/// nick and address. Both gone, `MODE #r -b bob` tells that bob's address still holds, and
/// not carol's: the address a nick's ban added is the one set with it, not every address
/// the same operator banned in that instant (the notice named carol's address as bob's, so
/// an operator lifting "bob's" address let carol back in). In the masks IRC clients are
/// shown, lifted with `/mode`: irssi's `/unban 198.51.100.20/32` sends nothing, as its ban
/// list holds `*!*@198.51.100.20`.
#[test]
fn an_unban_of_one_of_two_nicks_banned_in_one_mode_line_names_only_its_address() {
    let mut n = Net::new();
    registered(&mut n, "alice");
    let (a, _) = sasl_client(&mut n, "alice", "");
    n.send(a, &["JOIN #r", "MODE #r +r"]);
    let mut guest = |want: &str, from: &str| {
        let c = n.hub.accept(from.parse().unwrap(), n.now).unwrap();
        n.feed(c, &MAGIC);
        n.send_bin(
            c,
            &ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                nick: nick(want),
                resume: None,
            },
        );
        n.send_bin(c, &ClientMsg::Join { room: room("#r") });
        assert!(
            n.recv(c)
                .iter()
                .any(|m| matches!(m, ServerMsg::Joined { .. })),
            "{want} joined"
        );
        c
    };
    let b = guest("bob", "198.51.100.20");
    let c = guest("carol", "203.0.113.7");
    n.advance(1_000);
    n.lines(a);
    n.send(a, &["MODE #r +bb bob carol"]);
    let l = n.lines(a);
    for set in [
        "+b bob!*@*",
        "+b *!*@198.51.100.20",
        "+b carol!*@*",
        "+b *!*@203.0.113.7",
    ] {
        assert!(l.iter().any(|l| l.ends_with(set)), "{set}: {l:?}");
    }
    for g in [b, c] {
        n.send_bin(g, &ClientMsg::Quit { reason: None });
    }
    n.advance(1_000);
    n.lines(a);
    n.send(a, &["MODE #r -b bob"]);
    let notices: Vec<String> = n
        .lines(a)
        .into_iter()
        .filter(|l| l.contains(" NOTICE "))
        .collect();
    assert_eq!(
        notices,
        [
            ":natter.irc NOTICE alice :*!*@198.51.100.20, banned with bob!*@*, still holds: \
          /mode #r -b *!*@198.51.100.20 lifts it"
        ],
    );
}

/// `OPER name password` gives an IRC user an admin account's powers, as an operator block
/// does on other servers: the nick stays (no sign-in), `381` and `MODE nick +o` say so, and
/// KILL works. A name that is no admin account is `491` with nothing checked; a wrong password
/// is `464` and counts as a failed sign-in of that account (throttled like one). The powers
/// go when the account is no longer an admin.
#[test]
fn oper_with_an_admin_accounts_password_gives_its_powers_and_nothing_else_does() {
    let mut n = with_admin_alice();
    registered(&mut n, "alice");
    let b = n.client("bob", &[]);
    let d = n.client("dan", &[]);
    n.send(
        b,
        &["OPER carol correct horse", "OPER alice wrong", "OPER alice"],
    );
    n.advance(1_000);
    let l = n.lines(b);
    assert_eq!(numerics(&l), ["491", "464", "461"], "{l:?}");
    assert!(l[0].contains(" 491 bob :"), "{l:?}");
    n.send(b, &["KILL dan :bye"]);
    n.advance(1_000);
    assert_eq!(numerics(&n.lines(b)), ["481"], "still no powers");
    n.send(b, &["OPER alice :correct horse"]);
    n.advance(1_000);
    let l = n.lines(b);
    assert_eq!(
        l,
        [
            ":natter.irc 381 bob :You are now an IRC operator",
            ":bob!bob@natter MODE bob +o",
        ]
    );
    n.send(b, &["MODE bob"]);
    n.advance(1_000);
    assert_eq!(n.lines(b), [":natter.irc 221 bob +o"]);
    // Others see it as IRC servers show an operator: WHO's `*`, WHOIS's 313, USERHOST's `*`.
    n.send(d, &["WHO bob", "WHOIS bob", "USERHOST bob"]);
    n.advance(1_000);
    let l = n.lines(d);
    assert!(
        l.iter()
            .any(|l| l.contains(" 352 dan * ") && l.contains(" bob H* :")),
        "{l:?}"
    );
    assert!(
        l.iter()
            .any(|l| l.ends_with(" 313 dan bob :is an IRC operator")),
        "{l:?}"
    );
    assert!(
        l.iter().any(|l| l.ends_with(" 302 dan :bob*=+bob@natter")),
        "{l:?}"
    );
    // LUSERS counts him (252), beside alice, signed in to the admin account.
    n.send(d, &["LUSERS"]);
    n.advance(1_000);
    let l = n.lines(d);
    assert!(
        l.iter()
            .any(|l| l.ends_with(" 252 dan 2 :operator(s) online")),
        "{l:?}"
    );
    n.send(b, &["WHOIS dan"]);
    n.advance(1_000);
    assert!(
        !n.lines(b).iter().any(|l| l.contains(" 313 ")),
        "dan is no operator"
    );
    n.send(b, &["KILL dan :bye"]);
    n.advance(1_000);
    assert!(n.closed(d), "bob's KILL works");
    // `MODE bob -o` gives the powers up; `+o` does not take them back.
    let f = n.client("fay", &[]);
    n.lines(b);
    n.send(
        b,
        &["MODE bob -o", "MODE bob +o", "MODE bob", "KILL fay :bye"],
    );
    n.advance(1_000);
    assert_eq!(
        n.lines(b),
        [
            ":bob!bob@natter MODE bob :-o",
            ":natter.irc 221 bob +",
            ":natter.irc 481 bob :Permission Denied (that is for server admins)",
        ]
    );
    assert!(!n.closed(f));
    n.send(b, &["OPER alice :correct horse"]);
    n.advance(1_000);
    assert_eq!(numerics(&n.lines(b)), ["381"]);
    // alice is no admin any more (a reload of the config): bob's powers went with hers.
    let mut config = n.hub.config().clone();
    config.accounts.admins.clear();
    n.hub.reconfigure(config).expect("a valid config");
    let e = n.client("eve", &[]);
    n.lines(b);
    n.send(b, &["KILL eve :bye"]);
    n.advance(1_000);
    assert_eq!(numerics(&n.lines(b)), ["481"]);
    assert!(!n.closed(e));
}

/// Wrong `OPER` passwords are failed sign-ins of the account: past the free ones the account
/// is throttled, for `OPER` and sign-ins alike.
#[test]
fn wrong_oper_passwords_throttle_the_account_as_failed_sign_ins_do() {
    let mut n = with_admin_alice();
    registered(&mut n, "alice");
    let b = n.client("bob", &[]);
    let mut wrong = 0;
    let mut all = Vec::new();
    for i in 0..12 {
        n.send(b, &[&format!("OPER alice wrong{i}")]);
        n.advance(2_000);
        let l = n.lines(b);
        wrong += numerics(&l).iter().filter(|r| **r == "464").count();
        all.extend(l);
    }
    assert!(
        (1..12).contains(&wrong),
        "some checked, then throttled: {all:?}"
    );
    n.send(b, &["OPER alice :correct horse"]);
    n.advance(2_000);
    let l = n.lines(b);
    assert!(!numerics(&l).contains(&"381"), "throttled: {l:?}");
}

/// alice's registered room `#r` (she founded it with her binary client `a`), her IRC client
/// `c` and the guest bob's `b` in it; everything so far read.
fn founder_and_guest(n: &mut Net) -> (ConnId, ConnId, ConnId) {
    use crate::wire::ModAction;
    let a = registered(n, "alice");
    n.send_bin(a, &ClientMsg::Join { room: room("#r") });
    n.send_bin(
        a,
        &ClientMsg::Moderate {
            room: room("#r"),
            action: ModAction::Register,
        },
    );
    let (c, _) = sasl_client(n, "alice", "");
    let b = n.client("bob", &[]);
    n.send(b, &["JOIN #r"]);
    n.advance(1_000);
    n.lines(b);
    n.lines(c);
    n.recv(a);
    (a, c, b)
}

/// irssi's, WeeChat's and HexChat's `/kickban bob reason` send `MODE #r +b mask` and then
/// `KICK #r bob :reason`. natter's ban put bob out at once with the reason "banned", so the
/// KICK found him gone: until the forty-second session the operator was told `441 They aren't on
/// that channel`, and after it the kick's reason still reached nobody. A ban typed on IRC puts
/// out whom it holds a moment later, and the KICK that comes meanwhile does it with its reason,
/// for IRC, natter's and nc's users alike; the held member says nothing meanwhile. A KICK of
/// someone the ban already put out says nothing (no `441`); someone out of the channel and not
/// banned is still `441`.
/// The kicks among `msgs`, each as "target reason".
fn kicks(msgs: &[crate::wire::ServerMsg]) -> Vec<String> {
    use crate::wire::{EventKind, ServerMsg};
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Event(e) => match &e.kind {
                EventKind::Kick { target, reason } => Some(format!(
                    "{target} {}",
                    reason.as_ref().map_or("", |r| r.as_str())
                )),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn a_kickban_puts_the_user_out_with_the_kicks_reason_and_no_441() {
    let mut n = Net::new();
    let (a, c, b) = founder_and_guest(&mut n);
    let d = n.client("dan", &[]);
    n.lines(d);
    n.advance(1_000);
    // irssi: both lines at once.
    n.send(c, &["MODE #r +b *!*bob@natter", "KICK #r bob :go away"]);
    let l = n.lines(c);
    assert_eq!(l[0], ":alice!alice@natter MODE #r +b bob!*@*", "{l:?}");
    assert_eq!(
        l.last().map(String::as_str),
        Some(":alice!alice@natter KICK #r bob :go away"),
        "{l:?}"
    );
    // (Between them only the notice that the ban holds a nick alone: no 441.)
    assert!(
        l[1..l.len() - 1]
            .iter()
            .all(|l| l.contains(" NOTICE alice :")),
        "{l:?}"
    );
    let l = n.lines(b);
    assert!(
        l.contains(&":alice!alice@natter KICK #r bob :go away".to_owned()),
        "{l:?}"
    );
    assert_eq!(kicks(&n.recv(a)), ["bob go away"]);
    // The ban's own moment passes: nobody is put out twice.
    n.advance(5_000);
    assert!(!n.lines(c).iter().any(|l| l.contains(" KICK ")));
    assert!(kicks(&n.recv(a)).is_empty());

    // WeeChat: the KICK two seconds after the ban, bob silent meanwhile.
    n.send(c, &["MODE #r -b *!*bob@natter"]);
    n.send(b, &["JOIN #r"]);
    n.advance(1_000);
    n.lines(b);
    n.lines(c);
    n.recv(a);
    n.send(c, &["MODE #r +b *!*bob@natter"]);
    n.advance(100);
    n.send(b, &["PRIVMSG #r :still here"]);
    assert_eq!(numerics(&n.lines(b)), ["404"]);
    n.advance(1_900);
    n.send(c, &["KICK #r bob :spam"]);
    assert_eq!(kicks(&n.recv(a)), ["bob spam"]);
    n.advance(5_000);
    assert!(kicks(&n.recv(a)).is_empty());

    // A ban alone (irssi's /ban) puts bob out a moment later, as "banned".
    n.send(c, &["MODE #r -b *!*bob@natter"]);
    n.send(b, &["JOIN #r"]);
    n.advance(1_000);
    n.lines(b);
    n.recv(a);
    n.send(c, &["MODE #r +b *!*bob@natter"]);
    n.advance(1_000);
    assert!(n.hub.is_member(&nick("bob"), &room("#r")));
    n.advance(2_500);
    assert!(!n.hub.is_member(&nick("bob"), &room("#r")));
    assert_eq!(kicks(&n.recv(a)), ["bob banned"]);
    assert!(
        n.lines(b)
            .contains(&":alice!alice@natter KICK #r bob :banned".to_owned())
    );
    // Now the ban put him out: a KICK says nothing.
    n.lines(c);
    n.send(c, &["KICK #r bob :late"]);
    assert!(numerics(&n.lines(c)).is_empty());

    // Not banned and not in the channel: refused as before.
    n.advance(1_000);
    n.send(c, &["KICK #r dan :x"]);
    assert_eq!(numerics(&n.lines(c)), ["441"]);
}

/// An operator kickbanning two users one after the other with WeeChat (each KICK two seconds
/// after its ban): the second ban, typed 2.5 s after the first, joined the first's wait and put
/// bob out as "banned" half a second later, before its KICK came with the operator's reason.
/// Each ban waits its own `BAN_KICK_WAIT`.
#[test]
fn each_ban_waits_its_own_moment_for_its_kick() {
    let mut n = Net::new();
    let (a, c, _b) = founder_and_guest(&mut n);
    let d = n.client("dan", &[]);
    n.send(d, &["JOIN #r"]);
    n.advance(1_000);
    n.lines(c);
    n.recv(a);
    n.send(c, &["MODE #r +b dan!*@*"]);
    n.advance(2_000);
    n.send(c, &["KICK #r dan :spam"]);
    n.advance(500);
    n.send(c, &["MODE #r +b bob!*@*"]);
    n.advance(2_000);
    n.send(c, &["KICK #r bob :more spam"]);
    n.advance(5_000);
    assert_eq!(kicks(&n.recv(a)), ["dan spam", "bob more spam"]);
}

/// A ban of bob's nick typed on IRC waits `BAN_KICK_WAIT` for its KICK: bob renaming to
/// robert meanwhile left the ban holding nobody in the room at its moment, so he stayed, and
/// spoke again, a kickban dodged by a quick `/nick` (IRC servers refuse the rename of a banned
/// member, `435`/`437`). Whom the ban held leaves at its moment under any nick, unless `-b`
/// lifted it.
#[test]
fn a_rename_while_a_ban_waits_does_not_dodge_it() {
    let mut n = Net::new();
    let (_a, c, b) = founder_and_guest(&mut n);
    n.advance(1_000);
    n.send(c, &["MODE #r +b bob!*@*"]);
    n.advance(500);
    n.send(b, &["NICK robert"]);
    n.advance(500);
    n.lines(b);
    n.send(b, &["PRIVMSG #r :hello again"]);
    assert_eq!(numerics(&n.lines(b)), ["404"], "still held");
    n.advance(3_000);
    assert!(!n.hub.is_member(&nick("robert"), &room("#r")));
    assert!(
        n.lines(b)
            .contains(&":alice!alice@natter KICK #r robert :banned".to_owned())
    );
}

/// The check for a mask glued to its letter (`MODE #r +e*!*bob@natter`) named its first
/// unknown letter from a list written beside the loop that knows the letters: both read one
/// list now. For every ASCII letter, the glued form names the letter exactly when the letter
/// alone is unknown (and its `*` otherwise).
#[test]
fn a_glued_mask_and_a_mode_letter_alone_agree_on_which_letters_are_unknown() {
    let mut n = Net::new();
    let c = n.irc_in_lobby("al");
    n.send(c, &["JOIN #g"]);
    n.settle(&[c]);
    n.lines(c);
    let mut unknown = 0;
    for letter in ('a'..='z').chain('A'..='Z') {
        let unknown_472 = format!(" 472 al {letter} ");
        n.send(c, &[&format!("MODE #g +{letter}")]);
        n.advance(1_000);
        let alone = n.lines(c).iter().any(|l| l.contains(&unknown_472));
        n.send(c, &[&format!("MODE #g +{letter}*!*bob@natter")]);
        n.advance(1_000);
        let l = n.lines(c);
        let named = if alone { letter } else { '*' };
        assert_eq!(
            l,
            [format!(
                ":natter.irc 472 al {named} :is an unknown mode char to me"
            )],
            "{letter}"
        );
        unknown += usize::from(alone);
    }
    // `o v r b q i m t k l n` are known.
    assert_eq!(unknown, 52 - 11);
}

/// irssi's `/mode #r +e mask` (natter keeps no exceptions) was answered with a `472` for each
/// unknown letter and a `461` for each `o`/`v` without a nick, however often the line repeated
/// them: one `MODE` line gets one `472` per unknown letter and one `461`, as solanum and
/// InspIRCd answer, and the known letters around them still act.
#[test]
fn a_mode_line_gets_one_472_per_unknown_letter_and_one_461() {
    let mut n = Net::new();
    let (_a, c, _b) = founder_and_guest(&mut n);
    n.advance(1_000);
    let cases: &[(&str, &[&str])] = &[
        ("MODE #r +e *!*bob@natter", &["472"]),
        ("MODE #r +eeee-ee a b c", &["472"]),
        ("MODE #r +e-e+I *!*@x", &["472", "472"]),
        ("MODE #r +ooo", &["461"]),
        ("MODE #r +eoxeov", &["472", "461", "472"]),
        // irssi's `/mode #r +e *!*bob@natter`: the mask glued to the letter.
        ("MODE #r +e*!*bob@natter", &["472"]),
    ];
    for (line, want) in cases {
        n.send(c, &[line]);
        n.advance(1_000);
        let l = n.lines(c);
        assert_eq!(numerics(&l), *want, "{line}: {l:?}");
    }
    // That line acted on nothing (its `t` set +t, its `r` registered, its `b` listed).
    n.send(c, &["MODE #r +e*!*bob@natter", "MODE #r"]);
    n.advance(1_000);
    let l = n.lines(c);
    assert_eq!(
        l[0],
        ":natter.irc 472 alice e :is an unknown mode char to me"
    );
    assert!(l[1].starts_with(":natter.irc 324 alice #r +n"), "{l:?}");
    let modes = l[1].split(" #r ").nth(1).unwrap_or_default();
    assert!(!modes.contains('t'), "{l:?}");
    // The known letters of a line with unknown ones still act.
    n.send(c, &["MODE #r +emz"]);
    n.advance(1_000);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["472", "472"], "{l:?}");
    assert!(l.iter().any(|l| l.ends_with(" MODE #r +m")), "{l:?}");
}

#[test]
fn a_channel_key_is_in_mode_lines_and_324_for_operators_and_starred_for_the_rest() {
    let mut n = Net::new();
    let (a, c, b) = founder_and_guest(&mut n);
    // The founder's MODE line carries the key (as on InspIRCd or ergo), a member who may not
    // see it gets `*` in its place: `k` always takes a parameter, so no line goes without one.
    n.send(c, &["MODE #r +k sesame"]);
    assert_eq!(n.lines(c), [":alice!alice@natter MODE #r +k sesame"]);
    assert_eq!(n.lines(b), [":alice!alice@natter MODE #r +k *"]);
    // The binary client of the founder gets the event (without the key) and the settings
    // (with it), as before.
    let got = n.recv(a);
    assert!(
        got.iter().any(|m| matches!(m, ServerMsg::Policy { modes, .. } if modes.key.as_ref().is_some_and(|k| k.as_str() == "sesame"))),
        "{got:?}"
    );
    n.send(c, &["MODE #r"]);
    let l = n.lines(c);
    assert!(find(&l, " 324 ").ends_with(" #r +nkr sesame"), "{l:?}");
    n.send(b, &["MODE #r"]);
    let l = n.lines(b);
    assert!(find(&l, " 324 ").ends_with(" #r +nkr *"), "{l:?}");
    // Someone outside the room learns there is a key, not what it is.
    let d = n.client("dan", &[]);
    n.lines(d);
    n.send(d, &["MODE #r"]);
    let l = n.lines(d);
    assert!(find(&l, " 324 ").ends_with(" #r +nkr *"), "{l:?}");
    n.advance(1_000);
    n.send(c, &["MODE #r -k"]);
    assert_eq!(n.lines(c), [":alice!alice@natter MODE #r -k *"]);
    assert_eq!(n.lines(b), [":alice!alice@natter MODE #r -k *"]);
}

#[test]
fn a_limit_past_the_largest_room_is_capped_and_a_bad_one_is_696_naming_letter_and_value() {
    let mut n = Net::new();
    let (_, c, b) = founder_and_guest(&mut n);
    let most = Config::default().max_room_members;
    n.send(c, &["MODE #r +l 99999999999"]);
    let capped = format!(":alice!alice@natter MODE #r +l {most}");
    assert_eq!(n.lines(c), [capped.as_str()]);
    assert_eq!(n.lines(b), [capped.as_str()]);
    n.advance(1_000);
    n.send(c, &["MODE #r +l 0", "MODE #r +l many"]);
    let l = n.lines(c);
    assert_eq!(
        l,
        [
            ":natter.irc 696 alice #r l 0 :+l needs a whole number of members above 0",
            ":natter.irc 696 alice #r l many :+l needs a whole number of members above 0",
        ]
    );
    n.send(c, &["MODE #r +l 40"]);
    assert_eq!(n.lines(c), [":alice!alice@natter MODE #r +l 40"]);
}

#[test]
fn the_ban_list_says_who_set_each_ban_and_when_not_when_it_runs_out() {
    use crate::wire::ModAction;
    let mut n = Net::new();
    let (a, c, _) = founder_and_guest(&mut n);
    let set_at = n.now.0 / 1000;
    // An hour's ban: 367's last parameter is when it was set, not when it ends.
    n.send_bin(
        a,
        &ClientMsg::Moderate {
            room: room("#r"),
            action: ModAction::Ban {
                target: "nick:eve".into(),
                duration: Some(Millis(3_600_000)),
                reason: None,
            },
        },
    );
    n.advance(5_000);
    n.lines(c);
    n.send(c, &["MODE #r b"]);
    let l = n.lines(c);
    assert_eq!(
        l,
        [
            format!(":natter.irc 367 alice #r eve!*@* alice {set_at}"),
            ":natter.irc 368 alice #r :End of channel ban list".to_owned(),
        ]
    );
}

// ---- notices: an IRC NOTICE stays a notice, on every door ----

/// A binary client of an older protocol version (one that cannot decode notices).
fn old_bin(n: &mut Net, want: &str, version: u16) -> ConnId {
    let c = n.hub.accept(LOCAL, n.now).unwrap();
    n.feed(c, &MAGIC);
    n.send_bin(
        c,
        &ClientMsg::Hello {
            version,
            nick: nick(want),
            resume: None,
        },
    );
    assert!(matches!(n.recv(c)[..], [ServerMsg::Welcome { .. }]));
    c
}

/// The room events' kinds in `msgs`.
fn kinds(msgs: &[ServerMsg]) -> Vec<EventKind> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Event(ev) => Some(ev.kind.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_notice_to_a_channel_stays_a_notice_on_every_door() {
    let mut n = Net::new();
    let alice = n.client("alice", &["echo-message", "labeled-response", "batch"]);
    let bob = n.client("bob", &[]);
    let carl = n.bin("carl");
    let olga = old_bin(&mut n, "olga", 6);
    let (t, _) = n.nc();
    for c in [alice, bob] {
        n.send(c, &["JOIN #lobby"]);
    }
    for c in [carl, olga] {
        n.send_bin(
            c,
            &ClientMsg::Join {
                room: room("#lobby"),
            },
        );
    }
    n.advance(3_000);
    for c in [alice, bob, t] {
        n.lines(c);
    }
    for c in [carl, olga] {
        n.recv(c);
    }

    n.send(alice, &["@label=n1 NOTICE #lobby :bots, do not answer"]);
    let want = ":alice!alice@natter NOTICE #lobby :bots, do not answer";
    assert_eq!(n.lines(bob), [want]);
    // The echo (echo-message) is a NOTICE too, with its label.
    let echo = n.lines(alice);
    assert_eq!(echo.len(), 1, "{echo:?}");
    assert!(echo[0].starts_with("@label=n1"), "{echo:?}");
    assert!(echo[0].ends_with(want), "{echo:?}");
    assert!(
        matches!(&kinds(&n.recv(carl))[..], [EventKind::Notice { text: w, .. }] if w.as_str() == "bots, do not answer"),
        "a version-7 client gets the notice"
    );
    let old = kinds(&n.recv(olga));
    assert!(
        matches!(&old[..], [EventKind::Say { text: w, .. }] if w.as_str() == "bots, do not answer"),
        "a version-6 client gets a say it can decode: {old:?}"
    );
    let l = n.lines(t);
    assert_eq!(l, ["-alice- bots, do not answer"]);

    // A PRIVMSG is unchanged.
    n.advance(1_000);
    n.send(alice, &["PRIVMSG #lobby :hello people"]);
    assert_eq!(
        n.lines(bob),
        [":alice!alice@natter PRIVMSG #lobby :hello people"]
    );
    assert!(matches!(&kinds(&n.recv(carl))[..], [EventKind::Say { .. }]));
    assert_eq!(n.lines(t), ["<alice> hello people"]);

    // A binary client's notice reaches IRC as a NOTICE.
    n.send_bin(
        carl,
        &ClientMsg::Notice {
            room: room("#lobby"),
            id: crate::types::MsgId(1),
            text: text("from a program"),
        },
    );
    assert_eq!(
        n.lines(bob),
        [":carl!carl@natter NOTICE #lobby :from a program"]
    );
    assert!(
        matches!(&kinds(&n.recv(carl))[..], [EventKind::Notice { .. }]),
        "its echo, the acknowledgement"
    );
}

#[test]
fn a_notice_to_a_nick_stays_a_notice_on_every_door() {
    let mut n = Net::new();
    let alice = n.client("alice", &["echo-message"]);
    let bob = n.client("bob", &[]);
    let carl = n.bin("carl");
    let olga = old_bin(&mut n, "olga", 6);
    let (t, tn) = n.nc();
    n.lines(t);

    n.send(alice, &[&format!("NOTICE bob,carl,olga,{tn} :psst")]);
    assert_eq!(n.lines(bob), [":alice!alice@natter NOTICE bob :psst"]);
    assert!(
        matches!(&n.recv(carl)[..], [ServerMsg::DirectNotice(d)] if d.text.as_str() == "psst" && d.from.as_str() == "alice"),
    );
    assert!(
        matches!(&n.recv(olga)[..], [ServerMsg::Direct(d)] if d.text.as_str() == "psst"),
        "a version-6 client gets a direct message"
    );
    assert_eq!(n.lines(t), ["-alice- psst"]);
    // Echoes (echo-message) are NOTICEs, one per target.
    let echo = n.lines(alice);
    assert_eq!(echo.len(), 4, "{echo:?}");
    assert!(
        echo[0].ends_with(":alice!alice@natter NOTICE bob :psst"),
        "{echo:?}"
    );
    assert!(echo.iter().all(|l| l.contains(" NOTICE ")), "{echo:?}");

    // A PRIVMSG to a nick is unchanged.
    n.advance(2_000);
    n.send(alice, &["PRIVMSG bob :hi"]);
    assert_eq!(n.lines(bob), [":alice!alice@natter PRIVMSG bob :hi"]);

    // A binary client's direct notice reaches IRC as a NOTICE; its acknowledgement is one too.
    n.send_bin(
        carl,
        &ClientMsg::NoticeTo {
            to: nick("bob"),
            id: crate::types::MsgId(1),
            text: text("beep"),
        },
    );
    assert_eq!(n.lines(bob), [":carl!carl@natter NOTICE bob :beep"]);
    assert!(matches!(&n.recv(carl)[..], [ServerMsg::DirectNotice(d)] if d.to.as_str() == "bob"));
}

#[test]
fn a_notice_replays_as_a_notice() {
    let mut n = Net::new();
    let alice = n.client("alice", &[]);
    n.send(
        alice,
        &["JOIN #h", "NOTICE #h :heads up", "PRIVMSG #h :plain"],
    );
    n.lines(alice);
    n.advance(3_000);

    // A late IRC joiner's replay.
    let late = n.client("late", &["server-time", "batch"]);
    n.send(late, &["JOIN #h"]);
    let l = n.lines(late);
    assert!(
        l.iter()
            .any(|l| l.ends_with(":alice!alice@natter NOTICE #h :heads up")),
        "{l:?}"
    );
    assert!(
        l.iter()
            .any(|l| l.ends_with(":alice!alice@natter PRIVMSG #h :plain")),
        "{l:?}"
    );

    // CHATHISTORY.
    let h = n.client("hist", &HISTORY_CAPS);
    n.send(h, &["JOIN #h"]);
    n.lines(h);
    n.advance(1_000);
    n.send(h, &["CHATHISTORY LATEST #h * 10"]);
    let l = n.lines(h);
    let chat: Vec<&String> = l
        .iter()
        .filter(|l| l.contains(" NOTICE #h ") || l.contains(" PRIVMSG #h "))
        .collect();
    assert_eq!(chat.len(), 2, "{l:?}");
    assert!(
        chat[0].ends_with(":alice!alice@natter NOTICE #h :heads up"),
        "{l:?}"
    );
    assert!(chat[0].contains("msgid=h/"), "{l:?}");
    assert!(chat[1].ends_with("PRIVMSG #h :plain"), "{l:?}");

    // Binary joiners' replays: the notice, or a say for a version-6 client.
    let carl = n.bin("carl");
    n.send_bin(carl, &ClientMsg::Join { room: room("#h") });
    let k = kinds(&n.recv(carl));
    assert!(
        k.iter().any(|k| matches!(k, EventKind::Notice { .. })),
        "{k:?}"
    );
    let olga = old_bin(&mut n, "olga", 6);
    n.send_bin(olga, &ClientMsg::Join { room: room("#h") });
    let k = kinds(&n.recv(olga));
    assert!(
        !k.iter().any(|k| matches!(k, EventKind::Notice { .. })),
        "{k:?}"
    );
    assert!(
        k.iter()
            .any(|k| matches!(k, EventKind::Say { text, .. } if text.as_str() == "heads up")),
        "{k:?}"
    );
}

#[test]
fn a_ctcp_request_is_answered_and_a_ctcp_reply_in_a_notice_is_not() {
    let mut n = Net::new();
    let alice = n.client("alice", &["labeled-response", "batch"]);
    let bob = n.client("bob", &[]);
    n.send(alice, &["PRIVMSG bob :\x01VERSION\x01"]);
    assert_eq!(
        n.lines(alice),
        [":natter.irc NOTICE alice :natter does not carry CTCP VERSION"]
    );
    n.send(alice, &["NOTICE bob :\x01VERSION irssi 1.4\x01"]);
    assert_eq!(
        n.lines(alice),
        Vec::<String>::new(),
        "no answer to a NOTICE"
    );
    n.send(alice, &["@label=c1 NOTICE bob :\x01PING 123\x01"]);
    assert_eq!(n.lines(alice), ["@label=c1 :natter.irc ACK"]);
    assert_eq!(n.lines(bob), Vec::<String>::new(), "natter carries no CTCP");
}

/// What a durable hub wrote, as the store gives it back to a restarted hub (natter-server loads
/// each room's last seq, its newest `history_on_join` events and who was in it).
fn loaded_from(
    stored: &[RoomEvent],
    present: &std::collections::BTreeMap<(RoomName, String), Nick>,
    recent: usize,
) -> crate::persist::Loaded {
    let mut rooms: std::collections::BTreeMap<RoomName, crate::persist::LoadedRoom> =
        Default::default();
    for ev in stored {
        let r = rooms
            .entry(ev.room.clone())
            .or_insert_with(|| crate::persist::LoadedRoom {
                name: ev.room.clone(),
                topic: None,
                last_seq: Seq(0),
                recent: Vec::new(),
                present: Vec::new(),
            });
        r.last_seq = r.last_seq.max(ev.seq);
        r.recent.push(ev.clone());
    }
    for ((room, _), nick) in present {
        if let Some(r) = rooms.get_mut(room) {
            r.present.push(nick.clone());
        }
    }
    for r in rooms.values_mut() {
        r.recent.drain(..r.recent.len().saturating_sub(recent));
    }
    crate::persist::Loaded {
        rooms: rooms.into_values().collect(),
        sessions: Vec::new(),
        accounts: Vec::new(),
        policies: Vec::new(),
        server_bans: Vec::new(),
        device_labels: Vec::new(),
        away_notes: Vec::new(),
        known: Vec::new(),
    }
}

/// `n`'s hub stops as a kill -9 stops it (nothing more is written: no quit for who is
/// connected) and a new one starts from what it stored.
/// A client connected at a restart is spared what came before it however many came and went
/// after it: the join's replay is the last lines, reaching further back than the last events,
/// and whether it reached the restart was judged by the last events (its window got the lines
/// before the restart twice).
#[test]
fn irc_clients_back_after_a_restart_while_many_came_and_went_get_only_what_came_after_it() {
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        durable: true,
        history_on_join: 3,
        ..Config::default()
    });
    let b = n.bin("old");
    n.send_bin(b, &ClientMsg::Join { room: room("#h") });
    let caps = ["server-time", "batch", "message-tags"];
    let stay = n.client("stay", &caps);
    n.send(stay, &["JOIN #h"]);
    said_lines(&mut n, b, "#h", 2);
    assert_eq!(privmsg_texts(&n.lines(stay)), ["line 1", "line 2"]);

    let mut n = restarted(n);
    for i in 0..3 {
        let g = n.bin(&format!("passer{i}"));
        n.send_bin(g, &ClientMsg::Join { room: room("#h") });
        n.send_bin(
            g,
            &ClientMsg::Part {
                room: room("#h"),
                reason: None,
            },
        );
    }
    let b = n.bin("old");
    n.send_bin(b, &ClientMsg::Join { room: room("#h") });
    n.advance(1_000);
    n.send_bin(
        b,
        &ClientMsg::Say {
            room: room("#h"),
            id: crate::types::MsgId(9),
            text: text("after the restart"),
        },
    );
    n.recv(b);
    let stay = n.client("stay", &caps);
    n.send(stay, &["JOIN #h"]);
    let l = n.lines(stay);
    assert_eq!(privmsg_texts(&l), ["after the restart"], "{l:?}");
}

fn restarted(n: Net) -> Net {
    let config = n.hub.config().clone();
    let recent = config.history_on_join;
    let mut again = Net::with(config);
    again.now = n.now + Millis(5_000);
    again
        .hub
        .restore(loaded_from(&n.stored, &n.present, recent), again.now);
    again.stored = n.stored;
    again.present = n.present;
    again.pump();
    again
}

/// `MODE #c` is `324` then `329 RPL_CREATIONTIME`, when this server made the room, as irssi
/// and WeeChat ask on joining and show; a room loaded from the store after a restart (made
/// before it, when is not kept) gets no `329` rather than a wrong time.
#[test]
fn a_mode_query_tells_when_the_room_was_made_if_this_server_made_it() {
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        durable: true,
        ..Config::default()
    });
    let c = n.client("ann", &[]);
    let made = n.now.0 / 1000;
    n.send(c, &["JOIN #c"]);
    n.lines(c);
    n.advance(5_000);
    n.send(c, &["MODE #c"]);
    let want = [
        ":natter.irc 324 ann #c +n".to_owned(),
        format!(":natter.irc 329 ann #c {made}"),
    ];
    assert_eq!(n.lines(c), want);
    let mut n = restarted(n);
    let c = n.client("ann", &[]);
    n.send(c, &["JOIN #c"]);
    n.lines(c);
    n.send(c, &["MODE #c"]);
    assert_eq!(n.lines(c), [":natter.irc 324 ann #c +n"]);
}

#[test]
fn irc_clients_back_after_a_restart_are_replayed_only_what_came_after_it() {
    // The Lounge keeps its windows while natter restarts. It was in #h when the server stopped,
    // so everything up to then is in its window: only what came after is news to it.
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        durable: true,
        ..Config::default()
    });
    let b = n.bin("old");
    n.send_bin(b, &ClientMsg::Join { room: room("#h") });
    let say = |n: &mut Net, b: ConnId, id: u64, words: &str| {
        n.advance(1_000);
        n.send_bin(
            b,
            &ClientMsg::Say {
                room: room("#h"),
                id: crate::types::MsgId(id),
                text: text(words),
            },
        );
        n.recv(b);
    };
    say(&mut n, b, 1, "before anyone");
    let caps = ["server-time", "batch", "message-tags"];
    let gone = n.client("gone", &caps);
    n.send(gone, &["JOIN #h"]);
    say(&mut n, b, 2, "seen by gone");
    n.send(gone, &["QUIT :off"]);
    assert!(n.closed(gone));
    say(&mut n, b, 3, "missed by gone");
    let stay = n.client("stay", &caps);
    n.send(stay, &["JOIN #h"]);
    let l = n.lines(stay);
    assert_eq!(
        privmsg_texts(&l),
        ["before anyone", "seen by gone", "missed by gone"]
    );
    say(&mut n, b, 4, "seen by stay");
    assert_eq!(privmsg_texts(&n.lines(stay)), ["seen by stay"]);

    let mut n = restarted(n);
    let b = n.bin("old");
    n.send_bin(b, &ClientMsg::Join { room: room("#h") });
    // A binary client that does not resume starts afresh: the recent history, as before.
    let got = n.recv(b);
    let texts: Vec<&str> = got
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Event(RoomEvent {
                kind: EventKind::Say { text, .. },
                ..
            }) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        [
            "before anyone",
            "seen by gone",
            "missed by gone",
            "seen by stay"
        ]
    );
    say(&mut n, b, 5, "after the restart");

    // Connected at the restart (any case): only what came after it.
    let stay = n.client("Stay", &caps);
    n.send(stay, &["JOIN #h"]);
    let l = n.lines(stay);
    assert_eq!(privmsg_texts(&l), ["after the restart"], "{l:?}");
    assert!(l.iter().any(|l| l.contains("BATCH +h")), "{l:?}");
    // Quit before the restart: what came after its quit, the restart or not.
    let gone = n.client("gone", &caps);
    n.send(gone, &["JOIN #h"]);
    let l = n.lines(gone);
    assert_eq!(
        privmsg_texts(&l),
        ["missed by gone", "seen by stay", "after the restart"],
        "{l:?}"
    );
    // New to the room: its recent history.
    let new = n.client("new", &caps);
    n.send(new, &["JOIN #h"]);
    let l = n.lines(new);
    assert_eq!(
        privmsg_texts(&l),
        [
            "before anyone",
            "seen by gone",
            "missed by gone",
            "seen by stay",
            "after the restart"
        ],
        "{l:?}"
    );
    // Back from the restart, it is like anyone else: parted and in again on this connection,
    // nothing it was sent here (WeeChat keeps the buffer); a quit, what came after it.
    n.send(stay, &["PART #h", "JOIN #h"]);
    assert_eq!(privmsg_texts(&n.lines(stay)), Vec::<String>::new());
    n.send(stay, &["QUIT :again"]);
    say(&mut n, b, 6, "after its quit");
    let stay = n.client("stay", &caps);
    n.send(stay, &["JOIN #h"]);
    assert_eq!(privmsg_texts(&n.lines(stay)), ["after its quit"]);
}

#[test]
fn who_was_in_a_room_at_a_restart_is_told_by_each_nicks_latest_event() {
    use super::room::Boot;
    let ev = |seq: u64, from: &str, kind: EventKind| RoomEvent {
        room: room("#h"),
        seq: Seq(seq),
        at: Millis(0),
        from: nick(from),
        kind,
    };
    let line = |id: u64| EventKind::Say {
        id: crate::types::MsgId(id),
        text: text("hi"),
    };
    let events = [
        ev(1, "joined", EventKind::Join),
        ev(2, "talked", line(1)),
        ev(3, "parted", EventKind::Join),
        ev(4, "parted", EventKind::Part { reason: None }),
        ev(5, "quit", line(2)),
        ev(6, "quit", EventKind::Quit { reason: None }),
        ev(7, "renamed", EventKind::Join),
        ev(
            8,
            "renamed",
            EventKind::Nick {
                new: nick("Newname"),
            },
        ),
        ev(
            9,
            "talked",
            EventKind::Kick {
                target: nick("kicked"),
                reason: None,
            },
        ),
        ev(10, "back", EventKind::Quit { reason: None }),
        ev(11, "back", EventKind::Join),
    ];
    let boot = Boot::at_restart(Seq(11), &events, &[]).expect("some were there");
    assert_eq!(boot.seq, Seq(11));
    let was_in = |n: &str| boot.was_in(&nick(n).folded_key());
    for n in ["joined", "talked", "newname", "back"] {
        assert!(was_in(n), "{n}");
    }
    for n in ["parted", "quit", "renamed", "kicked", "stranger"] {
        assert!(!was_in(n), "{n}");
    }
    let mut boot = boot;
    assert!(boot.forget(&nick("JOINED").folded_key()));
    assert!(!boot.was_in(&nick("joined").folded_key()));
    for n in ["talked", "newname"] {
        assert!(boot.forget(&nick(n).folded_key()));
    }
    assert!(!boot.forget(&nick("back").folded_key()), "nobody left");
    assert!(Boot::at_restart(Seq(6), &events[3..6], &[]).is_none());
    // The store's record of who was in the room, joined with what the events tell.
    let boot = Boot::at_restart(Seq(6), &events[3..6], &[nick("Lurker"), nick("talked")])
        .expect("the store's record");
    for n in ["lurker", "talked"] {
        assert!(boot.was_in(&nick(n).folded_key()), "{n}");
    }
    for n in ["parted", "quit"] {
        assert!(!boot.was_in(&nick(n).folded_key()), "{n}");
    }
}

/// `b` (a binary client in `room`) says `words` a second after the last thing it did.
fn said_by(n: &mut Net, b: ConnId, room_name: &str, id: u64, words: &str) {
    n.advance(1_000);
    n.send_bin(
        b,
        &ClientMsg::Say {
            room: room(room_name),
            id: crate::types::MsgId(id),
            text: text(words),
        },
    );
    n.recv(b);
}

#[test]
fn irc_lurkers_back_after_a_restart_are_replayed_only_what_came_after_it() {
    // The lurker joined long ago and said nothing since: a restart loads the room's newest 50
    // events, none of them its own. The store's record of who is in the room says it was there.
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        durable: true,
        ..Config::default()
    });
    let caps = ["server-time", "batch", "message-tags"];
    let lurker = n.client("Lurker", &caps);
    n.send(lurker, &["JOIN #h"]);
    let parted = n.client("parted", &caps);
    n.send(parted, &["JOIN #h"]);
    let renamed = n.client("oldname", &caps);
    n.send(renamed, &["JOIN #h"]);
    let gone = n.client("gone", &caps);
    n.send(gone, &["JOIN #h"]);
    let b = n.bin("talker");
    n.send_bin(b, &ClientMsg::Join { room: room("#h") });
    n.recv(b);
    n.advance(1_000);
    // Long before the restart: a part, a nick change, a quit (none among the events loaded).
    n.send(parted, &["PART #h"]);
    n.send(renamed, &["NICK newname"]);
    n.send(gone, &["QUIT :off"]);
    let history = n.hub.config().history_on_join;
    let lines = history as u64 + 10;
    let mut seen = 0;
    for i in 1..=lines {
        said_by(&mut n, b, "#h", i, &format!("line {i}"));
        // Connected all along: its client answers the server's pings.
        for c in [lurker, parted, renamed] {
            n.send(c, &["PONG :natter.irc"]);
        }
        seen += privmsg_texts(&n.lines(lurker)).len();
    }
    assert_eq!(seen, lines as usize);
    assert!(!n.closed(lurker) && !n.closed(renamed));

    let mut n = restarted(n);
    let b = n.bin("talker");
    n.send_bin(b, &ClientMsg::Join { room: room("#h") });
    n.recv(b);
    said_by(&mut n, b, "#h", lines + 1, "after the restart");

    // In the room at the restart (any case): only what came after it.
    for was_in in ["lurker", "newname"] {
        let c = n.client(was_in, &caps);
        n.send(c, &["JOIN #h"]);
        let l = n.lines(c);
        assert_eq!(privmsg_texts(&l), ["after the restart"], "{was_in}: {l:?}");
    }
    // Out of it by then (parted, renamed away, quit): the recent history, as a newcomer.
    for was_out in ["parted", "oldname", "gone"] {
        let c = n.client(was_out, &caps);
        n.send(c, &["JOIN #h"]);
        let l = n.lines(c);
        let texts = privmsg_texts(&l);
        // The room's newest events (its joins among them): most are lines.
        assert!(texts.len() > history - 10, "{was_out}: {l:?}");
        assert!(
            texts.ends_with(&[format!("line {lines}"), "after the restart".into()]),
            "{was_out}: {l:?}"
        );
    }
}

#[test]
fn irc_members_of_a_big_room_back_after_a_restart_are_replayed_only_what_came_after_it() {
    // In a big room joins are not events (`crowd.rs`): nothing in the history says who is in.
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        durable: true,
        quiet_room_members: 2,
        ..Config::default()
    });
    let caps = ["server-time", "batch", "message-tags"];
    let b = n.bin("talker");
    n.send_bin(b, &ClientMsg::Join { room: room("#big") });
    n.recv(b);
    let members: Vec<ConnId> = ["m1", "m2", "m3", "m4"]
        .iter()
        .map(|m| {
            let c = n.client(m, &caps);
            n.send(c, &["JOIN #big"]);
            c
        })
        .collect();
    // m4 leaves quietly, as big rooms do.
    n.send(members[3], &["PART #big"]);
    said_by(&mut n, b, "#big", 1, "before the restart");
    let joins = n
        .stored
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Join))
        .count();
    assert!(joins < 4, "some joins were quiet: {joins}");

    let mut n = restarted(n);
    let b = n.bin("talker");
    n.send_bin(b, &ClientMsg::Join { room: room("#big") });
    n.recv(b);
    said_by(&mut n, b, "#big", 2, "after the restart");
    for m in ["m1", "m2", "m3"] {
        let c = n.client(m, &caps);
        n.send(c, &["JOIN #big"]);
        let l = n.lines(c);
        assert_eq!(privmsg_texts(&l), ["after the restart"], "{m}: {l:?}");
    }
    let c = n.client("m4", &caps);
    n.send(c, &["JOIN #big"]);
    let l = n.lines(c);
    assert_eq!(
        privmsg_texts(&l),
        ["before the restart", "after the restart"],
        "{l:?}"
    );
}

#[test]
fn the_store_is_told_who_enters_and_leaves_and_a_restart_starts_its_record_again() {
    // The store's record of who is in each room starts again with each start: who was there
    // at the stop is the hub's to remember (`Boot`), not the store's, or a nick that never
    // came back would be taken to be in the room at every restart to come.
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        durable: true,
        ..Config::default()
    });
    let caps = ["server-time", "batch", "message-tags"];
    let c = n.client("lurker", &caps);
    n.send(c, &["JOIN #h", "JOIN #i"]);
    let b = n.bin("talker");
    n.send_bin(b, &ClientMsg::Join { room: room("#h") });
    let at = |n: &Net| -> Vec<(String, String)> {
        n.present
            .iter()
            .map(|((r, k), _)| (r.as_str().to_owned(), k.clone()))
            .collect()
    };
    let s = |r: &str, k: &str| (r.to_owned(), k.to_owned());
    assert_eq!(
        at(&n),
        [s("#h", "lurker"), s("#h", "talker"), s("#i", "lurker")]
    );
    n.send(c, &["PART #i"]);
    assert_eq!(at(&n), [s("#h", "lurker"), s("#h", "talker")]);
    let n = restarted(n);
    assert_eq!(at(&n), Vec::<(String, String)>::new());
}

// ---- `/notice` typed by a person on nc: the text dialect makes it the same notice an IRC
// `NOTICE` is, so binary members get a notice event (or a direct notice), IRC members a
// `NOTICE`, and other nc users `-nick- text`.

#[test]
fn an_nc_users_notice_to_a_room_is_a_notice_on_every_door() {
    let mut n = Net::new();
    let carl = n.bin_in_lobby("carl");
    let irky = n.irc_in_lobby("irky");
    let (t, tn) = n.nc();
    let (other, _) = n.nc();
    n.settle(&[carl, irky, t, other]);

    n.send(t, &["/notice #lobby build is green"]);
    let got = n.recv(carl);
    assert!(
        matches!(&got[..], [ServerMsg::Event(ev)]
            if ev.from.as_str() == tn
                && matches!(&ev.kind, EventKind::Notice { text, .. } if text.as_str() == "build is green")),
        "{got:?}"
    );
    assert_eq!(
        n.lines(irky),
        [format!(":{tn}!{tn}@natter NOTICE #lobby :build is green")]
    );
    assert_eq!(n.lines(other), [format!("-{tn}- build is green")]);
    // A person does not get their own line back, nor an error.
    assert_eq!(n.lines(t), Vec::<String>::new());

    // A plain line from the same person is still a say.
    n.send(t, &["and hello"]);
    assert!(matches!(
        &n.recv(carl)[..],
        [ServerMsg::Event(ev)] if matches!(ev.kind, EventKind::Say { .. })
    ));
}

#[test]
fn an_nc_users_notice_to_a_nick_is_a_direct_notice_on_every_door() {
    let mut n = Net::new();
    let carl = n.bin_in_lobby("carl");
    let irky = n.irc_in_lobby("irky");
    let (t, tn) = n.nc();
    let (other, on) = n.nc();
    n.settle(&[carl, irky, t, other]);

    n.send(
        t,
        &[
            "/notice carl psst",
            "/notice irky pssst",
            &format!("/notice {on} hi"),
        ],
    );
    assert!(matches!(&n.recv(carl)[..], [ServerMsg::DirectNotice(d)]
            if d.from.as_str() == tn && d.to.as_str() == "carl" && d.text.as_str() == "psst"),);
    assert_eq!(
        n.lines(irky),
        [format!(":{tn}!{tn}@natter NOTICE irky :pssst")]
    );
    assert_eq!(n.lines(other), [format!("-{tn}- hi")]);
    // The sender sees each as it went.
    assert_eq!(
        n.lines(t),
        [
            "-> -carl- psst",
            "-> -irky- pssst",
            &format!("-> -{on}- hi")
        ]
    );
}

#[test]
fn an_nc_users_bad_notice_is_refused_in_words() {
    let mut n = Net::new();
    let carl = n.bin_in_lobby("carl");
    let (t, _) = n.nc();
    n.settle(&[carl, t]);

    for (line, words) in [
        ("/notice", "usage: /notice #room|nick text"),
        ("/notice #lobby", "usage: /notice #room|nick text"),
        ("/notice 9lives hi", "starts with a letter"),
        ("/notice nobody hi", "nobody is called nobody"),
        ("/notice #elsewhere hi", "#elsewhere"),
    ] {
        n.send(t, &[line]);
        let l = n.lines(t);
        assert!(
            l.len() == 1 && l[0].contains(words),
            "{line}: {l:?} (wanted {words:?})"
        );
        n.advance(2_000);
    }
    assert!(n.recv(carl).is_empty(), "nothing reached anyone");
}

/// Found by the hub fuzzer: numerics echo the channel or nick a client typed, and an IRC line
/// may hold NUL and control characters (only CR and LF end it). `403 ann #a^C\0...` went out
/// with the NUL, a line no IRC client may be sent (and an ESC would reach a terminal client).
#[test]
fn refused_names_are_echoed_without_control_characters() {
    let mut net = Net::new();
    let c = net.client("ann", &[]);
    for cmd in [
        "JOIN #a\u{3}\0\u{1b}",
        "PART #a\u{3}\0\u{1b}",
        "TOPIC #a\u{3}\0 :x",
        "NAMES #a\u{3}\0",
        "MODE #a\u{3}\0 +i",
        "KICK #a\u{3}\0 bob",
        "INVITE bob #a\u{3}\0",
        "PRIVMSG #a\u{3}\0\u{1b} :hi",
        "WHO #a\u{3}\0",
        "PRIVMSG b\u{3}\0b :hi",
        "WHOIS b\u{3}\0b",
        "KILL b\u{3}\0b",
        "NICK b\u{3}\0b",
        "WHOWAS \0\0",
    ] {
        net.send(c, &[cmd]);
        net.advance(3_000);
        let lines = net.said(c);
        assert!(!lines.is_empty(), "{cmd:?} is answered");
        for l in lines {
            assert!(!l.contains(char::is_control), "{cmd:?} -> {l:?}");
        }
    }
}

#[test]
fn a_join_on_another_device_reaches_an_irc_client_with_history_worded_as_history() {
    let mut n = Net::new();
    let a = registered(&mut n, "alice");
    let b = n.bin("bob");
    n.send_bin(b, &ClientMsg::Join { room: room("#x") });
    n.send_bin(
        b,
        &ClientMsg::Say {
            room: room("#x"),
            id: crate::types::MsgId(1),
            text: text("said before"),
        },
    );
    let (plain, _) = sasl_client(&mut n, "alice", "");
    let (timed, _) = sasl_client(&mut n, "alice", "server-time batch");
    n.settle(&[a, b, plain, timed]);
    // alice joins #x on her natter client: her IRC devices join too.
    n.send_bin(a, &ClientMsg::Join { room: room("#x") });
    // Without server-time an IRC client cannot tell old lines from new: bob's join and line,
    // long over, would read as happening now.
    let l = n.lines(plain);
    assert!(
        l.iter().any(|l| l == ":alice!alice@natter JOIN #x"),
        "{l:?}"
    );
    assert!(
        !l.iter().any(|l| l.starts_with(":bob!")),
        "history came as live lines: {l:?}"
    );
    // With server-time the line said comes in a chathistory batch; bob's join does not.
    let l = n.lines(timed);
    let from_bob: Vec<&String> = l.iter().filter(|l| l.contains(":bob!")).collect();
    assert_eq!(from_bob.len(), 1, "{l:?}");
    assert!(
        from_bob[0].starts_with("@batch=") && from_bob[0].ends_with("PRIVMSG #x :said before"),
        "{l:?}"
    );
    assert!(
        l.iter()
            .any(|l| l.contains(" BATCH +") && l.ends_with("chathistory #x")),
        "{l:?}"
    );
    // What comes next is live again.
    n.send_bin(
        b,
        &ClientMsg::Say {
            room: room("#x"),
            id: crate::types::MsgId(2),
            text: text("said now"),
        },
    );
    assert_eq!(n.lines(plain), [":bob!bob@natter PRIVMSG #x :said now"]);
}

#[test]
fn an_operator_or_voiced_member_joining_is_followed_by_its_mode_for_irc_nick_lists() {
    use crate::wire::ModAction;
    let mut n = Net::new();
    let a = registered(&mut n, "alice");
    let c = registered(&mut n, "carol");
    let d = n.bin("dave");
    for x in [a, c, d] {
        n.send_bin(x, &ClientMsg::Join { room: room("#q") });
    }
    n.send_bin(
        a,
        &ClientMsg::Moderate {
            room: room("#q"),
            action: ModAction::Register,
        },
    );
    for action in [
        ModAction::Op(nick("carol")),
        ModAction::Voice(nick("carol")),
        ModAction::Voice(nick("dave")),
    ] {
        n.send_bin(
            a,
            &ClientMsg::Moderate {
                room: room("#q"),
                action,
            },
        );
    }
    for x in [c, d] {
        n.send_bin(
            x,
            &ClientMsg::Part {
                room: room("#q"),
                reason: None,
            },
        );
    }
    let b = n.client("bob", &[]);
    let t = n.client("tom", &["message-tags", "server-time"]);
    n.send(b, &["JOIN #q"]);
    n.send(t, &["JOIN #q"]);
    n.settle(&[a, c, d, b, t]);
    // carol (an operator, voiced) and dave (voiced) come back: IRC clients add them to their
    // nick lists as what they are, not as plain members (NAMES would say `@carol`, `+dave`).
    n.send_bin(c, &ClientMsg::Join { room: room("#q") });
    n.send_bin(d, &ClientMsg::Join { room: room("#q") });
    assert_eq!(
        n.lines(b),
        [
            ":carol!carol@natter JOIN #q",
            ":natter.irc MODE #q +ov carol carol",
            ":dave!dave@natter JOIN #q",
            ":natter.irc MODE #q +v dave",
        ]
    );
    // The MODE line is the server's, not the event: it has its time but not the JOIN's msgid.
    let l = n.lines(t);
    assert_eq!(l.len(), 4, "{l:?}");
    assert!(
        l[0].contains("msgid=q/") && l[0].ends_with(":carol!carol@natter JOIN #q"),
        "{l:?}"
    );
    assert!(
        l[1].starts_with("@time=")
            && !l[1].contains("msgid")
            && l[1].ends_with(" MODE #q +ov carol carol"),
        "{l:?}"
    );
    // A plain member's join is a JOIN alone.
    let e = n.bin("eve");
    n.send_bin(e, &ClientMsg::Join { room: room("#q") });
    assert_eq!(n.lines(b), [":eve!eve@natter JOIN #q"]);
}

#[test]
fn a_kick_or_mode_naming_several_nicks_refuses_each_by_its_own_nick() {
    let mut n = Net::new();
    let (_, c, b) = founder_and_guest(&mut n);
    // Both are here, neither is in #r.
    n.client("kim", &[]);
    n.client("lou", &[]);
    n.send(c, &["KICK #r kim,lou :go"]);
    assert_eq!(
        n.lines(c),
        [
            ":natter.irc 441 alice kim #r :They aren't on that channel",
            ":natter.irc 441 alice lou #r :They aren't on that channel",
        ]
    );
    n.advance(2_000);
    // Nobody is called either.
    n.send(c, &["MODE #r +oo kit lux"]);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["401", "401"], "{l:?}");
    assert!(l[0].starts_with(":natter.irc 401 alice kit :"), "{l:?}");
    assert!(l[1].starts_with(":natter.irc 401 alice lux :"), "{l:?}");
    n.lines(b);
}

#[test]
fn a_voiced_guest_keeps_its_voice_through_a_nick_change_as_on_irc() {
    use crate::wire::ModAction;
    let mut n = Net::new();
    let (a, c, b) = founder_and_guest(&mut n);
    for action in [
        ModAction::Voice(nick("bob")),
        ModAction::Mode(crate::moderation::ModeChange::Moderated(true)),
    ] {
        n.send_bin(
            a,
            &ClientMsg::Moderate {
                room: room("#r"),
                action,
            },
        );
    }
    n.settle(&[a, b, c]);
    // IRC clients carry bob's `+` over to bob2 when they see the NICK: so does the room.
    n.send(b, &["NICK bob2", "PRIVMSG #r :still voiced"]);
    assert_eq!(
        n.lines(c),
        [
            ":bob!bob@natter NICK :bob2",
            ":bob2!bob2@natter PRIVMSG #r :still voiced"
        ]
    );
    let policy = n.recv(a).into_iter().rev().find_map(|m| match m {
        ServerMsg::Policy { voiced, .. } => Some(voiced),
        _ => None,
    });
    assert_eq!(
        policy,
        Some(vec![nick("bob2")]),
        "natter clients learn it too"
    );
    n.send(c, &["NAMES #r"]);
    let l = n.lines(c);
    assert!(find(&l, " 353 ").ends_with(" :@alice +bob2"), "{l:?}");
    // The nick it left gives whoever takes it no voice.
    let d = n.client("bob", &[]);
    n.send(d, &["JOIN #r", "PRIVMSG #r :me too?"]);
    let l = n.lines(d);
    assert!(find(&l, " 353 ").ends_with(" :@alice +bob2 bob"), "{l:?}");
    assert_eq!(numerics(&l).last(), Some(&"404"), "{l:?}");
}

#[test]
fn whois_marks_the_channels_where_the_user_is_an_operator_or_voiced() {
    use crate::wire::ModAction;
    let mut n = Net::new();
    let (a, c, b) = founder_and_guest(&mut n);
    n.send(b, &["JOIN #plain"]);
    n.send_bin(
        a,
        &ClientMsg::Moderate {
            room: room("#r"),
            action: ModAction::Voice(nick("bob")),
        },
    );
    n.settle(&[a, b, c]);
    // RFC 2812's 319: `@` or `+` before each channel, as NAMES marks the nick there.
    n.send(c, &["WHOIS alice", "WHOIS bob"]);
    let l = n.lines(c);
    assert!(
        l.iter().any(|l| l == ":natter.irc 319 alice alice :@#r"),
        "{l:?}"
    );
    let bobs = find(&l, " 319 alice bob ");
    assert!(
        bobs.ends_with(" :+#r #plain") || bobs.ends_with(" :#plain +#r"),
        "{l:?}"
    );
}

#[test]
fn an_irc_account_has_read_its_rooms_when_the_server_shuts_down() {
    // An IRC connection was shown its rooms live and cannot say what it read: when it closes,
    // its account has read them up to then. A shutdown closes it too: else, signed in again
    // after the restart, the client got those lines again as what it missed.
    let mut n = Net::with(Config {
        durable: true,
        ..Net::new().hub.config().clone()
    });
    let a = registered(&mut n, "alice");
    n.send_bin(a, &ClientMsg::Join { room: room("#x") });
    let (c, _) = sasl_client(&mut n, "alice", "server-time");
    n.send_bin(a, &ClientMsg::SignOut);
    let b = n.bin("bob");
    n.send_bin(b, &ClientMsg::Join { room: room("#x") });
    n.send_bin(
        b,
        &ClientMsg::Say {
            room: room("#x"),
            id: crate::types::MsgId(1),
            text: text("seen live"),
        },
    );
    let l = n.lines(c);
    assert!(
        l.iter().any(|l| l.ends_with("PRIVMSG #x :seen live")),
        "{l:?}"
    );
    let latest = n.stored.iter().map(|e| e.seq).max().unwrap();
    n.markers.clear();
    n.hub.shutdown(n.now);
    n.pump();
    // The server closes each connection it was told to.
    for conn in [a, b, c] {
        n.hub.handle_close(conn, n.now);
    }
    n.pump();
    assert!(
        n.markers
            .iter()
            .any(|(who, r, seq)| who.as_str() == "alice" && r == &room("#x") && *seq == latest),
        "{:?}",
        n.markers
    );
}

#[test]
fn an_away_user_joining_is_followed_by_its_away_for_away_notify() {
    // IRCv3 away-notify: clients are sent an AWAY "when a user joins and has an away message
    // set" (and none for one who has not).
    let mut n = Net::new();
    let w = n.client("watcher", &["away-notify"]);
    let p = n.client("plain", &[]);
    n.send(w, &["JOIN #a"]);
    n.send(p, &["JOIN #a"]);
    let g = n.client("gone", &[]);
    n.send(g, &["AWAY :out to lunch"]);
    n.settle(&[w, p, g]);
    n.send(g, &["JOIN #a"]);
    assert_eq!(
        n.lines(w),
        [
            ":gone!gone@natter JOIN #a",
            ":gone!gone@natter AWAY :out to lunch"
        ]
    );
    assert_eq!(n.lines(p), [":gone!gone@natter JOIN #a"]);
    let here = n.client("here", &[]);
    n.send(here, &["JOIN #a"]);
    assert_eq!(n.lines(w), [":here!here@natter JOIN #a"]);
}

#[test]
fn multi_prefix_marks_an_operator_who_is_voiced_too_in_names_and_who() {
    use crate::wire::ModAction;
    let mut n = Net::new();
    let (a, c, b) = founder_and_guest(&mut n);
    n.send_bin(
        a,
        &ClientMsg::Moderate {
            room: room("#r"),
            action: ModAction::Voice(nick("alice")),
        },
    );
    let m = n.client("multi", &["multi-prefix"]);
    n.send(m, &["JOIN #r"]);
    n.settle(&[a, b, c, m]);
    // IRCv3 multi-prefix: every prefix, in NAMES and in WHO's flags.
    n.send(m, &["NAMES #r", "WHO #r"]);
    let l = n.lines(m);
    assert!(find(&l, " 353 ").contains("@+alice"), "{l:?}");
    assert!(
        find(&l, " natter.irc alice ").contains(" alice H@+ :0 "),
        "{l:?}"
    );
    // Without it, the highest only.
    n.send(b, &["WHO #r"]);
    let l = n.lines(b);
    assert!(
        find(&l, " natter.irc alice ").contains(" alice H@ :0 "),
        "{l:?}"
    );
}

#[test]
fn inviting_someone_already_in_the_channel_is_443() {
    let mut n = Net::new();
    let (_, c, b) = founder_and_guest(&mut n);
    // RFC 2812 and the Modern docs: a server MUST refuse it with ERR_USERONCHANNEL.
    n.send(c, &["INVITE bob #r"]);
    assert_eq!(
        n.lines(c),
        [":natter.irc 443 alice bob #r :is already on channel"]
    );
    assert_eq!(n.lines(b), Vec::<String>::new());
}

#[test]
fn a_labeled_pong_is_acknowledged() {
    // labeled-response: "Servers MUST respond with a labeled ACK message when a client sends
    // a labeled command that normally produces no response", the spec's example a PONG.
    let mut n = Net::new();
    let c = n.client("lab", &["labeled-response", "batch"]);
    n.send(c, &["@label=abc PONG :foobar"]);
    assert_eq!(n.lines(c), ["@label=abc :natter.irc ACK"]);
    // Unlabeled, or from a client without the capability, it is answered by nothing.
    n.send(c, &["PONG :foobar"]);
    assert_eq!(n.lines(c), Vec::<String>::new());
    let p = n.client("plain", &[]);
    n.send(p, &["@label=abc PONG :foobar"]);
    assert_eq!(n.lines(p), Vec::<String>::new());
}

#[test]
fn a_message_to_an_account_with_nothing_connected_is_kept_and_comes_with_its_sasl_welcome() {
    // An account stays in its rooms with nothing connected: a message to it is kept, and the
    // sender is told so as IRC tells of someone away (`301`). The account's next client gets
    // it after its welcome, with the time it was sent (server-time).
    let mut n = Net::new();
    let a = registered(&mut n, "alice");
    n.send_bin(a, &ClientMsg::Join { room: room("#x") });
    n.send_bin(a, &ClientMsg::Quit { reason: None });
    let b = n.client("bob", &[]);
    n.send(b, &["PRIVMSG alice :are you there?", "NOTICE alice :psst"]);
    let l = n.lines(b);
    assert_eq!(
        l,
        [format!(
            ":natter.irc 301 bob alice :{}",
            super::ops::KEPT_WORDS
        )],
        "kept, and no answer to the notice"
    );
    // Shown away while nothing is connected, as ergo's always-on clients are: WHO's `G`,
    // WHOIS's `301`.
    n.send(b, &["WHO alice", "WHOIS alice"]);
    let l = n.lines(b);
    assert!(
        l.iter()
            .any(|l| l.contains(" 352 bob ") && l.contains(" alice G ")),
        "{l:?}"
    );
    assert!(
        l.iter()
            .any(|l| l.contains(" 301 bob alice :not connected")),
        "{l:?}"
    );
    n.advance(1_000);
    let (_, l) = sasl_client(&mut n, "alice", "server-time");
    let welcome = l.iter().position(|l| l.contains(" 001 ")).expect("001");
    let dm = l
        .iter()
        .position(|l| l.ends_with("PRIVMSG alice :are you there?"))
        .unwrap_or_else(|| panic!("the kept message: {l:?}"));
    let notice = l
        .iter()
        .position(|l| l.ends_with("NOTICE alice :psst"))
        .unwrap_or_else(|| panic!("the kept notice: {l:?}"));
    assert!(welcome < dm && dm < notice, "{l:?}");
    assert!(
        l[dm].starts_with("@time="),
        "sent while alice was away: {l:?}"
    );
    assert!(l[dm].contains(" :bob!bob@natter PRIVMSG"), "{l:?}");
}

#[test]
fn mode_q_without_a_mask_lists_the_mutes_as_a_quiet_list() {
    // `q` is a list mode (CHANMODES=bq,...): with no parameter it lists, as `b` does, in the
    // quiet list numerics irssi and WeeChat know (728, 729).
    let mut n = Net::new();
    let (_, c, b) = founder_and_guest(&mut n);
    n.send(c, &["MODE #r +q bob"]);
    n.advance(2_000);
    n.lines(c);
    n.lines(b);
    n.send(c, &["MODE #r q"]);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["728", "729"], "{l:?}");
    assert!(
        l[0].starts_with(":natter.irc 728 alice #r q bob!*@* alice "),
        "{l:?}"
    );
    assert_eq!(
        l[1],
        ":natter.irc 729 alice #r q :End of Channel Quiet List"
    );
    // The ban list is still the bans only.
    n.send(c, &["MODE #r b"]);
    assert_eq!(numerics(&n.lines(c)), ["368"]);
}

/// Bans and mutes are shown to IRC clients as IRC masks (`bob!*@*`, `*!*@203.0.113.0/24`), in
/// the `MODE` line, `367` and `728`, and what a client sends back of what it was shown (irssi's
/// `/unban 1` or `/unban bob!*@*`, WeeChat's `/unban 1`: `MODE #r -b bob!*@*`) lifts it.
#[test]
fn bans_and_mutes_are_shown_as_irc_masks_and_lifted_by_what_was_shown() {
    use crate::wire::ModAction;
    let mut n = Net::new();
    let (a, c, b) = founder_and_guest(&mut n);
    // irssi's `/ban bob` (`*!*bob@natter`): everyone is told it as `bob!*@*`.
    n.send(c, &["MODE #r +b *!*bob@natter"]);
    n.advance(1_000);
    let l = n.lines(c);
    assert!(
        l.iter()
            .any(|l| l == ":alice!alice@natter MODE #r +b bob!*@*"),
        "{l:?}"
    );
    assert!(
        n.lines(b)
            .iter()
            .any(|l| l == ":alice!alice@natter MODE #r +b bob!*@*")
    );
    n.send_bin(
        a,
        &ClientMsg::Moderate {
            room: room("#r"),
            action: ModAction::Ban {
                target: "203.0.113.0/24".into(),
                duration: None,
                reason: None,
            },
        },
    );
    n.advance(1_000);
    let l = n.lines(c);
    assert!(
        l.iter()
            .any(|l| l == ":alice!alice@natter MODE #r +b *!*@203.0.113.0/24"),
        "{l:?}"
    );
    n.send(c, &["MODE #r b"]);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["367", "367", "368"], "{l:?}");
    assert!(l[0].contains(" 367 alice #r bob!*@* alice "), "{l:?}");
    assert!(
        l[1].contains(" 367 alice #r *!*@203.0.113.0/24 alice "),
        "{l:?}"
    );
    // Each entry as shown lifts its ban.
    n.send(c, &["MODE #r -b bob!*@*", "MODE #r -b *!*@203.0.113.0/24"]);
    n.advance(1_000);
    let l = n.lines(c);
    assert!(
        l.iter()
            .any(|l| l == ":alice!alice@natter MODE #r -b bob!*@*"),
        "{l:?}"
    );
    assert!(
        l.iter()
            .any(|l| l == ":alice!alice@natter MODE #r -b *!*@203.0.113.0/24"),
        "{l:?}"
    );
    assert!(numerics(&l).is_empty(), "{l:?}");
    n.send(c, &["MODE #r b"]);
    assert_eq!(numerics(&n.lines(c)), ["368"]);
    // Mutes alike: the MODE line, 728, and -q of what 728 said.
    n.send(b, &["JOIN #r"]);
    n.advance(1_000);
    n.lines(b);
    n.send(c, &["MODE #r +q bob"]);
    n.advance(1_000);
    let l = n.lines(c);
    assert!(
        l.iter()
            .any(|l| l == ":alice!alice@natter MODE #r +q bob!*@*"),
        "{l:?}"
    );
    n.send(c, &["MODE #r q"]);
    let l = n.lines(c);
    assert!(
        l[0].starts_with(":natter.irc 728 alice #r q bob!*@* alice "),
        "{l:?}"
    );
    n.send(c, &["MODE #r -q bob!*@*"]);
    n.advance(1_000);
    let l = n.lines(c);
    assert_eq!(l, [":alice!alice@natter MODE #r -q bob!*@*"]);
    n.send(b, &["PRIVMSG #r :free again"]);
    n.advance(1_000);
    assert!(numerics(&n.lines(b)).is_empty());
    n.lines(c);
    // Lifting what the list does not hold: 698 ERR_LISTMODENOTSET, as InspIRCd and ergo say.
    n.send(c, &["MODE #r -b *!*bob@natter", "MODE #r -q bob!*@*"]);
    n.advance(1_000);
    assert_eq!(
        n.lines(c),
        [
            ":natter.irc 698 alice #r bob!*@* b :Channel #r list does not contain bob!*@*",
            ":natter.irc 698 alice #r bob!*@* q :Channel #r list does not contain bob!*@*",
        ]
    );
}

/// `PART` or `TOPIC` of a channel that does not exist is `403 ERR_NOSUCHCHANNEL`, as IRC
/// servers answer; `442 ERR_NOTONCHANNEL` is for a channel that exists without you.
#[test]
fn part_or_topic_of_no_channel_is_403_and_of_someone_elses_is_442() {
    let mut n = Net::new();
    let i = n.client("ann", &[]);
    let other = n.client("bob", &[]);
    n.send(other, &["JOIN #theirs"]);
    n.lines(other);
    n.send(i, &["PART #nosuch", "TOPIC #nosuch", "TOPIC #nosuch :new"]);
    assert_eq!(
        n.lines(i),
        [
            ":natter.irc 403 ann #nosuch :No such channel",
            ":natter.irc 403 ann #nosuch :No such channel",
            ":natter.irc 403 ann #nosuch :No such channel",
        ]
    );
    n.send(i, &["PART #theirs", "TOPIC #theirs :new"]);
    assert_eq!(
        n.lines(i),
        [
            ":natter.irc 442 ann #theirs :You're not on that channel",
            ":natter.irc 442 ann #theirs :You're not on that channel",
        ]
    );
}

/// Anyone may ask the topic of a channel (natter has no secret ones), as RFC 2812 and modern
/// IRC let them; setting it still needs being in it.
#[test]
fn anyone_may_ask_a_channels_topic_and_only_members_set_it() {
    let mut n = Net::new();
    let bob = n.client("bob", &[]);
    n.send(bob, &["JOIN #theirs", "JOIN #bare", "TOPIC #theirs :plans"]);
    let set_at = n.now.0 / 1000;
    n.lines(bob);
    let i = n.client("ann", &[]);
    n.send(i, &["TOPIC #theirs", "TOPIC #bare"]);
    assert_eq!(
        n.lines(i),
        [
            ":natter.irc 332 ann #theirs :plans".to_owned(),
            format!(":natter.irc 333 ann #theirs bob!bob@natter {set_at}"),
            ":natter.irc 331 ann #bare :No topic is set".to_owned(),
        ]
    );
    n.send(i, &["TOPIC #theirs :mine"]);
    assert_eq!(
        n.lines(i),
        [":natter.irc 442 ann #theirs :You're not on that channel"]
    );
    assert!(n.lines(bob).is_empty());
}

/// A connection that drops without a `QUIT` reaches the others with the reason, as IRC servers
/// say it: `Connection closed` when the peer hung up, `Ping timeout: N seconds` when it went
/// silent; the same words reach nc (and the natter clients, as the quit event's reason).
#[test]
fn a_connection_that_drops_without_quit_quits_with_the_reason() {
    let mut n = Net::new();
    let (nc, _) = n.nc();
    let watch = n.irc_in_lobby("watch");
    let gone = n.irc_in_lobby("gone");
    n.lines(watch);
    n.lines(nc);
    n.hub.handle_close(gone, n.now);
    n.pump();
    assert_eq!(
        n.lines(watch),
        [":gone!gone@natter QUIT :Connection closed"]
    );
    assert_eq!(n.lines(nc), ["-- gone quit (Connection closed)"]);

    // Silent: pinged, and dropped when the ping goes unanswered.
    n.hub.handle_close(watch, n.now);
    n.pump();
    n.lines(nc);
    let idle = n.irc_in_lobby("idle");
    let (after, timeout) = (n.hub.config().ping_after.0, n.hub.config().ping_timeout.0);
    n.advance(after + timeout + 2 * n.hub.keepalive_every().0);
    assert!(n.closed(idle));
    let l = n.lines(nc);
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(l[0], "-- idle joined #lobby");
    let secs: u64 = l[1]
        .strip_prefix("-- idle quit (Ping timeout: ")
        .and_then(|s| s.strip_suffix(" seconds)"))
        .unwrap_or_else(|| panic!("{l:?}"))
        .parse()
        .unwrap();
    assert!(secs >= (after + timeout) / 1000, "{secs}");
}

/// An explicit `QUIT` keeps its own reason (or none), not the words of a drop.
#[test]
fn an_explicit_quit_keeps_its_own_reason() {
    let mut n = Net::new();
    let watch = n.irc_in_lobby("watch");
    let a = n.irc_in_lobby("asked");
    let b = n.irc_in_lobby("plain");
    n.lines(watch);
    n.send(a, &["QUIT :off to bed"]);
    n.send(b, &["QUIT"]);
    n.hub.handle_close(a, n.now);
    n.hub.handle_close(b, n.now);
    n.pump();
    assert_eq!(
        n.lines(watch),
        [
            ":asked!asked@natter QUIT :off to bed",
            ":plain!plain@natter QUIT :Quit"
        ]
    );
}

/// After a topic's `332` (a JOIN's, or a TOPIC query's) comes `333 RPL_TOPICWHOTIME`: who set
/// it and when, in Unix seconds, which irssi and WeeChat show as "Topic set by".
#[test]
fn a_topic_comes_with_who_set_it_and_when() {
    let mut n = Net::new();
    let bob = n.client("bob", &[]);
    n.send(bob, &["JOIN #t", "TOPIC #t :plans"]);
    let set_at = n.now.0 / 1000;
    n.lines(bob);
    let ann = n.client("ann", &[]);
    n.send(ann, &["TOPIC #t", "JOIN #t"]);
    assert_eq!(
        n.lines(ann),
        [
            ":natter.irc 332 ann #t :plans".to_owned(),
            format!(":natter.irc 333 ann #t bob!bob@natter {set_at}"),
            ":ann!ann@natter JOIN #t".to_owned(),
            ":natter.irc 332 ann #t :plans".to_owned(),
            format!(":natter.irc 333 ann #t bob!bob@natter {set_at}"),
            ":natter.irc 353 ann = #t :bob ann".to_owned(),
            ":natter.irc 366 ann #t :End of /NAMES list".to_owned(),
        ]
    );
}

/// After a restart the topic still says who set it and when (`333`), when its event is among
/// the recent ones loaded (irssi and WeeChat showed the topic without its setter).
#[test]
fn a_topic_says_who_set_it_after_a_restart() {
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        durable: true,
        ..Config::default()
    });
    let bob = n.client("bob", &[]);
    n.send(bob, &["JOIN #t", "TOPIC #t :plans"]);
    let set_at = n.now.0 / 1000;
    n.lines(bob);
    let config = n.hub.config().clone();
    let mut loaded = loaded_from(&n.stored, &n.present, config.history_on_join);
    for r in &mut loaded.rooms {
        r.topic = Some(text("plans"));
    }
    let mut again = Net::with(config);
    again.now = n.now + Millis(5_000);
    again.hub.restore(loaded, again.now);
    again.pump();
    let ann = again.client("ann", &[]);
    again.send(ann, &["TOPIC #t"]);
    assert_eq!(
        again.lines(ann),
        [
            ":natter.irc 332 ann #t :plans".to_owned(),
            format!(":natter.irc 333 ann #t bob!bob@natter {set_at}"),
        ]
    );
}

/// `TOPIC #c :` (an empty topic: irssi's and WeeChat's `/topic -delete`) clears the topic, as
/// every IRC server does: the members see `TOPIC #c :` (nc users "cleared the topic"), a later
/// query is `331`. Clearing a channel with no topic is `331` to the asker alone.
#[test]
fn an_empty_topic_clears_it_for_every_door() {
    let mut n = Net::new();
    let bob = n.client("bob", &[]);
    let ann = n.client("ann", &[]);
    n.send(bob, &["JOIN #t", "TOPIC #t :plans"]);
    n.send(ann, &["JOIN #t"]);
    let (nc, _) = n.nc();
    n.send(nc, &["/join #t"]);
    n.lines(bob);
    n.lines(ann);
    n.lines(nc);
    n.send(bob, &["TOPIC #t :"]);
    for c in [bob, ann] {
        assert_eq!(n.lines(c), [":bob!bob@natter TOPIC #t :"]);
    }
    assert_eq!(n.lines(nc), ["-- bob cleared the topic of #t"]);
    n.send(ann, &["TOPIC #t", "TOPIC #t :"]);
    assert_eq!(
        n.lines(ann),
        [
            ":natter.irc 331 ann #t :No topic is set",
            ":natter.irc 331 ann #t :No topic is set"
        ]
    );
    assert!(n.lines(bob).is_empty() && n.lines(nc).is_empty());
    // From nc: `/topic -delete`, the clients' word.
    n.send(ann, &["TOPIC #t :again"]);
    n.lines(bob);
    n.lines(nc);
    n.send(nc, &["/topic -delete"]);
    assert_eq!(
        n.lines(bob),
        [format!(
            ":{0}!{0}@natter TOPIC #t :",
            n.hub.nick(nc).unwrap()
        )]
    );
    n.send(bob, &["TOPIC #t"]);
    assert_eq!(n.lines(bob), [":natter.irc 331 bob #t :No topic is set"]);
}

// ---- moderation as IRC servers do it (the QA pass with irssi and WeeChat) ----

/// `MODE #c +v/-v/+o/-o nick` of a nick nobody uses is `401 ERR_NOSUCHNICK`, of someone on the
/// server but not in the channel `441 ERR_USERNOTINCHANNEL`, as IRC servers answer: nothing
/// changes and nobody is told. A nick the list holds is still lifted when it is away.
#[test]
fn voicing_or_opping_a_nick_not_here_is_401_and_one_not_in_the_channel_441() {
    let mut n = Net::new();
    let (a, c, b) = founder_and_guest(&mut n);
    let k = n.client("kim", &[]);
    n.lines(k);
    for mode in ["+v", "-v", "+o", "-o"] {
        n.send(c, &[&format!("MODE #r {mode} nosuch")]);
        n.send(c, &[&format!("MODE #r {mode} kim")]);
        n.advance(2_000);
        assert_eq!(
            n.lines(c),
            [
                ":natter.irc 401 alice nosuch :nobody is called nosuch".to_owned(),
                ":natter.irc 441 alice kim #r :They aren't on that channel".to_owned(),
            ],
            "{mode}"
        );
        assert_eq!(n.lines(b), Vec::<String>::new(), "{mode}: nobody is told");
    }
    assert!(
        !n.recv(a)
            .iter()
            .any(|m| matches!(m, ServerMsg::Policy { .. })),
        "the settings did not change"
    );
    n.send(c, &["NAMES #r"]);
    assert!(find(&n.lines(c), " 353 ").ends_with(" :@alice bob"));
    // bob, voiced, leaves: the voice the list holds is lifted by name all the same.
    n.send(c, &["MODE #r +v bob"]);
    n.send(b, &["PART #r"]);
    n.advance(2_000);
    n.lines(c);
    n.send(c, &["MODE #r -v bob"]);
    assert_eq!(n.lines(c), [":alice!alice@natter MODE #r -v bob"]);
}

/// A `+b` or `+q` of a mask the list holds already is no change, as on IRC servers: no
/// `MODE` line, and a timed ban stays timed. natter's own ban with a new duration re-times it.
#[test]
fn banning_or_muting_again_is_no_change_and_leaves_a_timed_ban_timed() {
    use crate::wire::ModAction;
    let mut n = Net::new();
    let (a, c, b) = founder_and_guest(&mut n);
    let ban = |duration| ClientMsg::Moderate {
        room: room("#r"),
        action: ModAction::Ban {
            target: "nick:eve".into(),
            duration,
            reason: None,
        },
    };
    let set_at = n.now;
    n.send_bin(a, &ban(Some(Millis(3_600_000))));
    n.send(c, &["MODE #r +q dan"]);
    n.settle(&[a, b, c]);
    for again in [
        "MODE #r +b eve",
        "MODE #r +b eve!*@*",
        "MODE #r +b EVE",
        "MODE #r +q dan",
        "MODE #r +q Dan",
    ] {
        n.send(c, &[again]);
        n.advance(1_000);
        assert_eq!(n.lines(c), Vec::<String>::new(), "{again}");
        assert_eq!(n.lines(b), Vec::<String>::new(), "{again}: nobody is told");
    }
    assert!(n.recv(a).is_empty(), "no event, no new settings");
    // natter's own ban of it again without a duration changes nothing either.
    n.send_bin(a, &ban(None));
    n.advance(1_000);
    assert_eq!(n.lines(b), Vec::<String>::new());
    let until = |n: &Net| {
        let p = n.hub.rooms[&room("#r")].policy.as_ref().unwrap();
        p.bans.iter().map(|e| e.until).collect::<Vec<_>>()
    };
    assert_eq!(
        until(&n),
        [Some(Millis(set_at.0 + 3_600_000))],
        "still an hour's"
    );
    // A ban given a new duration through natter's own command is re-timed, and told.
    n.send_bin(a, &ban(Some(Millis(7_200_000))));
    assert_eq!(n.lines(b), [":alice!alice@natter MODE #r +b eve!*@*"]);
    assert_eq!(until(&n), [Some(Millis(n.now.0 + 7_200_000))]);
}

/// `+b dora` of a signed-in dora bans its account (`account:dora`): `-b dora`, and `-b dora!*@*` (the
/// form a nick is shown in), lift it, as they lift what `+b dora` set; they lift nothing else.
/// Mutes alike.
#[test]
fn unbanning_a_nick_lifts_the_account_ban_its_ban_became_and_nothing_else() {
    let mut n = Net::new();
    let (a, c, g) = founder_and_guest(&mut n);
    let b = registered(&mut n, "dora");
    n.send_bin(b, &ClientMsg::Join { room: room("#r") });
    n.settle(&[a, b, c, g]);
    n.send(
        c,
        &[
            "MODE #r +b dora",
            "MODE #r +b dorian",
            "MODE #r +b account:carol",
        ],
    );
    n.advance(3_000);
    let l = n.lines(c);
    assert!(
        l.contains(&":alice!alice@natter MODE #r +b account:dora".to_owned()),
        "{l:?}"
    );
    for unban in ["MODE #r -b dora", "MODE #r -b dora!*@*"] {
        n.send(c, &[unban]);
        n.advance(2_000);
        assert_eq!(
            n.lines(c),
            [":alice!alice@natter MODE #r -b account:dora"],
            "{unban}"
        );
        n.send(c, &["MODE #r +b DORA"]);
        n.advance(2_000);
        n.lines(c);
    }
    // dora gone from the server: its nick still names its account.
    n.send_bin(b, &ClientMsg::Quit { reason: None });
    n.advance(2_000);
    n.send(c, &["MODE #r -b Dora"]);
    n.advance(2_000);
    assert_eq!(n.lines(c), [":alice!alice@natter MODE #r -b account:dora"]);
    n.send(c, &["MODE #r b"]);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["367", "367", "368"], "{l:?}");
    assert!(
        l[0].contains(" dorian!*@* ") && l[1].contains(" account:carol "),
        "{l:?}"
    );
    // Mutes: `-q dora` lifts the account mute `+q dora` set while dora was here.
    let b = registered(&mut n, "dora");
    n.send_bin(b, &ClientMsg::Join { room: room("#r") });
    n.settle(&[b, c, g]);
    n.send(c, &["MODE #r +q dora"]);
    n.send_bin(b, &ClientMsg::Quit { reason: None });
    n.advance(2_000);
    n.lines(c);
    n.send(c, &["MODE #r -q dora!*@*"]);
    n.advance(2_000);
    assert_eq!(n.lines(c), [":alice!alice@natter MODE #r -q account:dora"]);
}

/// `MODE #c +o guest`: operators are accounts, so a guest cannot be one. The refusal is
/// `696 ERR_INVALIDMODEPARAM <channel> o <nick>`, the numeric for a mode's parameter the
/// server will not take, in words that say why (not a `400`).
#[test]
fn opping_a_guest_is_696_saying_operators_are_accounts() {
    let mut n = Net::new();
    let (_, c, b) = founder_and_guest(&mut n);
    n.send(c, &["MODE #r +o bob"]);
    assert_eq!(
        n.lines(c),
        [
            ":natter.irc 696 alice #r o bob :bob is not signed in to an account: only accounts \
          can be operators (+v voices a guest)"
        ]
    );
    assert_eq!(n.lines(b), Vec::<String>::new());
}

/// TAGMSG `lines`, each with its `msgid` (`~<from>/<time>/<n>`) checked and taken out.
fn relayed_lines(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| {
            let (tags, rest) = l.split_once(' ').expect("tagged");
            let kept: Vec<&str> = tags
                .trim_start_matches('@')
                .split(';')
                .filter(|t| !t.starts_with("msgid=~"))
                .collect();
            assert_eq!(kept.len() + 1, tags.split(';').count(), "one msgid: {l}");
            format!("@{} {rest}", kept.join(";"))
        })
        .collect()
}

/// `TAGMSG` (IRCv3 message-tags): its client-only tags (`+typing=active`) go to the channel's
/// other members with message-tags (and back to the sender with echo-message), never to those
/// without; other tags stay behind. Tag data over 4094 bytes is `417`; a muted member's TAGMSG
/// goes nowhere, without a word; one to a channel the sender is not in is `404`.
#[test]
fn tagmsg_relays_client_only_tags_to_members_with_message_tags() {
    let mut n = Net::new();
    let tia = n.client("tia", &["message-tags", "echo-message"]);
    let tom = n.client("tom", &["message-tags", "server-time"]);
    let pat = n.client("pat", &[]);
    for c in [tia, tom, pat] {
        n.send(c, &["JOIN #t"]);
    }
    n.settle(&[tia, tom, pat]);
    n.send(
        tia,
        &["@+typing=active;foo=bar;+example.com/x=a\\sb TAGMSG #t"],
    );
    let relayed = ":tia!tia@natter TAGMSG #t";
    assert_eq!(
        relayed_lines(n.lines(tia)),
        [format!("@+typing=active;+example.com/x=a\\sb {relayed}")]
    );
    let l = n.lines(tom);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with("@+typing=active;+example.com/x=a\\sb;time=") && l[0].ends_with(relayed),
        "{l:?}"
    );
    assert_eq!(
        n.lines(pat),
        Vec::<String>::new(),
        "no message-tags, no TAGMSG"
    );
    // To a nick: that user's connections, those with message-tags.
    n.send(
        tom,
        &["@+typing=paused TAGMSG tia", "@+typing=paused TAGMSG pat"],
    );
    assert_eq!(
        relayed_lines(n.lines(tia)),
        ["@+typing=paused :tom!tom@natter TAGMSG tia"]
    );
    assert_eq!(n.lines(pat), Vec::<String>::new());
    assert_eq!(n.lines(tom), Vec::<String>::new());
    n.advance(2_000);
    // At most 4094 bytes of tag data (between the `@` and the space).
    let most = format!("@+typing={} TAGMSG #t", "a".repeat(4094 - "+typing=".len()));
    let over = format!("@+typing={} TAGMSG #t", "a".repeat(4095 - "+typing=".len()));
    n.send(tia, &[&most]);
    assert_eq!(n.lines(tom).len(), 1);
    n.lines(tia);
    n.send(tia, &[&over]);
    assert_eq!(
        n.lines(tia),
        [":natter.irc 417 tia :Input line was too long (message tags over 4094 bytes)"]
    );
    assert_eq!(n.lines(tom), Vec::<String>::new());
    // Not in the channel: refused as a message is. No client-only tag: nothing to carry.
    n.send(
        pat,
        &["@+typing=active TAGMSG #elsewhere", "@foo=bar TAGMSG #t"],
    );
    let l = n.lines(pat);
    assert_eq!(numerics(&l), ["403"], "{l:?}");
    n.send(tia, &["JOIN #u"]);
    n.send(pat, &["@+typing=active TAGMSG #u"]);
    assert_eq!(numerics(&n.lines(pat)), ["404"]);
    assert_eq!(n.lines(tom), Vec::<String>::new());
}

#[test]
fn a_muted_members_tagmsg_goes_nowhere_without_a_word() {
    let mut n = Net::new();
    let (a, c, b) = founder_and_guest(&mut n);
    let (seer, _) = sasl_client(&mut n, "alice", "message-tags");
    let gus = n.client("gus", &["message-tags"]);
    n.send(gus, &["JOIN #r"]);
    n.send(c, &["MODE #r +q gus"]);
    n.settle(&[a, b, c, seer, gus]);
    n.send(gus, &["@+typing=active TAGMSG #r"]);
    assert_eq!(n.lines(gus), Vec::<String>::new());
    assert_eq!(n.lines(seer), Vec::<String>::new());
    n.send(c, &["MODE #r -q gus"]);
    n.settle(&[a, b, c, seer, gus]);
    n.send(gus, &["@+typing=active TAGMSG #r"]);
    assert_eq!(
        relayed_lines(n.lines(seer)),
        ["@+typing=active :gus!gus@natter TAGMSG #r"]
    );
}

#[test]
fn a_labeled_tagmsg_is_acknowledged_or_its_echo_carries_the_label() {
    let mut n = Net::new();
    let caps = ["message-tags", "labeled-response", "batch"];
    let quiet = n.client("quiet", &caps);
    let echo = n.client("echo", &[&caps[..], &["echo-message"]].concat());
    for c in [quiet, echo] {
        n.send(c, &["JOIN #t"]);
    }
    n.settle(&[quiet, echo]);
    n.send(quiet, &["@label=q1;+typing=active TAGMSG #t"]);
    assert_eq!(n.lines(quiet), ["@label=q1 :natter.irc ACK"]);
    assert_eq!(
        relayed_lines(n.lines(echo)),
        ["@+typing=active :quiet!quiet@natter TAGMSG #t"]
    );
    n.send(echo, &["@label=e1;+typing=done TAGMSG #t"]);
    assert_eq!(
        relayed_lines(n.lines(echo)),
        ["@+typing=done;label=e1 :echo!echo@natter TAGMSG #t"]
    );
    assert_eq!(
        relayed_lines(n.lines(quiet)),
        ["@+typing=done :echo!echo@natter TAGMSG #t"]
    );
}

/// In a big room (past `quiet_room_members`) typing notifications are not relayed, nor a
/// message's client-only tags: each would be written once per member.
#[test]
fn tagmsg_is_not_relayed_in_a_big_room() {
    let mut n = Net::with(Config {
        quiet_room_members: 2,
        ..Config::default()
    });
    let caps = ["message-tags"];
    let a = n.client("ann", &caps);
    let b = n.client("ben", &caps);
    for c in [a, b] {
        n.send(c, &["JOIN #t"]);
    }
    n.settle(&[a, b]);
    n.send(a, &["@+typing=active TAGMSG #t"]);
    assert_eq!(
        relayed_lines(n.lines(b)),
        ["@+typing=active :ann!ann@natter TAGMSG #t"]
    );
    let c = n.client("cat", &caps);
    n.send(c, &["JOIN #t"]);
    n.settle(&[a, b, c]);
    n.send(a, &["@+typing=active TAGMSG #t"]);
    assert_eq!(n.lines(b), Vec::<String>::new());
    assert_eq!(n.lines(c), Vec::<String>::new());
    // Nor a message's client-only tags: the message goes, without them.
    n.send(a, &["@+draft/reply=t/1 PRIVMSG #t :hi"]);
    let l = n.lines(b);
    assert!(
        l.len() == 1 && !l[0].contains("+draft") && l[0].ends_with(" PRIVMSG #t :hi"),
        "{l:?}"
    );
}

/// The tags of `line` without `time` and `msgid` (which differ from run to run), as sent.
fn client_tags_of(line: &str) -> Vec<&str> {
    let Some(tags) = line.strip_prefix('@').and_then(|l| l.split_once(' ')) else {
        return Vec::new();
    };
    tags.0
        .split(';')
        .filter(|t| !t.starts_with("time=") && !t.starts_with("msgid="))
        .collect()
}

/// IRCv3 message-tags, as irctest's `testBasic` checks it: a `PRIVMSG`'s client-only tags go
/// with it to the members with message-tags and back in the echo, with one msgid for all;
/// other tags stay behind; a member without message-tags gets the line untagged, one with
/// server-time only gets its `time` and nothing else.
#[test]
fn a_privmsgs_client_only_tags_reach_members_with_message_tags_and_the_echo() {
    let mut n = Net::new();
    let alice = n.client("alice", &["message-tags"]);
    let bob = n.client("bob", &["message-tags", "echo-message"]);
    let carol = n.client("carol", &[]);
    let dave = n.client("dave", &["server-time"]);
    for c in [alice, bob, carol, dave] {
        n.send(c, &["JOIN #test"]);
    }
    n.settle(&[alice, bob, carol, dave]);
    n.send(alice, &["@+baz=bat;fizz=buzz PRIVMSG #test hi"]);
    assert_eq!(n.lines(alice), Vec::<String>::new());
    let b = n.lines(bob);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(client_tags_of(&b[0]), ["+baz=bat"], "{b:?}");
    assert!(tag(&b[0], "msgid").is_some(), "{b:?}");
    assert!(b[0].ends_with(" :alice!alice@natter PRIVMSG #test :hi"));
    assert_eq!(n.lines(carol), [":alice!alice@natter PRIVMSG #test :hi"]);
    let d = n.lines(dave);
    assert!(
        d[0].starts_with("@time=") && !d[0].contains("+baz"),
        "{d:?}"
    );

    n.send(bob, &["@+bat=baz;+fizz=buzz PRIVMSG #test :hi yourself"]);
    let (b, a) = (n.lines(bob), n.lines(alice));
    for l in [&b, &a] {
        assert_eq!(l.len(), 1, "{l:?}");
        assert_eq!(client_tags_of(&l[0]), ["+bat=baz", "+fizz=buzz"], "{l:?}");
        assert!(l[0].ends_with(" :bob!bob@natter PRIVMSG #test :hi yourself"));
    }
    assert_eq!(tag(&a[0], "msgid"), tag(&b[0], "msgid"));
    assert_eq!(
        n.lines(carol),
        [":bob!bob@natter PRIVMSG #test :hi yourself"]
    );
    // An action and a NOTICE carry them too.
    n.send(
        alice,
        &[
            "@+draft/react=x PRIVMSG #test :\x01ACTION waves\x01",
            "@+example.com/n=1 NOTICE #test :note",
        ],
    );
    let b = n.lines(bob);
    assert_eq!(b.len(), 2, "{b:?}");
    assert_eq!(client_tags_of(&b[0]), ["+draft/react=x"], "{b:?}");
    assert_eq!(client_tags_of(&b[1]), ["+example.com/n=1"], "{b:?}");
    assert!(b[1].ends_with(" NOTICE #test :note"), "{b:?}");
}

/// irctest's `testRecipientCapability`: a direct message's client-only tags (a reply naming
/// the msgid it answers) reach the recipient only once it has message-tags, and come back in
/// the sender's echo.
#[test]
fn a_direct_messages_client_only_tags_reach_a_recipient_with_message_tags() {
    let mut n = Net::new();
    let alice = n.client("alice", &["message-tags", "echo-message"]);
    let bob = n.client("bob", &[]);
    n.settle(&[alice, bob]);
    n.send(bob, &["PRIVMSG alice :hey"]);
    let l = n.lines(alice);
    let id = tag(&l[0], "msgid").expect("msgid").to_owned();
    n.send(
        alice,
        &[&format!("@+draft/reply={id} PRIVMSG bob :hey yourself")],
    );
    let a = n.lines(alice);
    assert_eq!(tag(&a[0], "+draft/reply"), Some(id.as_str()), "{a:?}");
    assert!(a[0].ends_with(" :alice!alice@natter PRIVMSG bob :hey yourself"));
    assert_eq!(
        n.lines(bob),
        [":alice!alice@natter PRIVMSG bob :hey yourself"]
    );
    n.send(bob, &["CAP REQ :message-tags server-time"]);
    n.lines(bob);
    n.send(
        alice,
        &[&format!("@+draft/reply={id} NOTICE bob :hey again")],
    );
    n.lines(alice);
    let b = n.lines(bob);
    assert_eq!(tag(&b[0], "+draft/reply"), Some(id.as_str()), "{b:?}");
    assert!(
        b[0].ends_with(" :alice!alice@natter NOTICE bob :hey again"),
        "{b:?}"
    );
}

/// Client-only tags are no part of the room event: natter's own clients and nc get the text,
/// and history (CHATHISTORY) has the text without them.
#[test]
fn client_only_tags_are_not_kept_in_history_nor_shown_to_natters_own_clients() {
    let mut n = Net::new();
    let bin = n.bin_in_lobby("binny");
    let (nc, _) = n.nc();
    let irc = n.client("ira", &HISTORY_CAPS);
    n.send(irc, &["JOIN #lobby"]);
    n.settle(&[irc, nc]);
    n.recv(bin);
    n.send(irc, &["@+draft/reply=x PRIVMSG #lobby :tagged"]);
    let got = n.recv(bin);
    assert!(
        matches!(&got[..], [ServerMsg::Event(e)] if matches!(&e.kind, EventKind::Say { text, .. } if text.as_str() == "tagged")),
        "{got:?}"
    );
    let l = n.lines(nc);
    assert!(
        l.len() == 1 && l[0].contains("tagged") && !l[0].contains("draft"),
        "{l:?}"
    );
    n.advance(2_000);
    n.send(irc, &["CHATHISTORY LATEST #lobby * 10"]);
    let l = n.lines(irc);
    let said: Vec<&String> = l.iter().filter(|l| l.contains("PRIVMSG")).collect();
    assert_eq!(said.len(), 1, "{l:?}");
    assert!(!said[0].contains("+draft/reply"), "{l:?}");
}

/// A relayed `TAGMSG` carries a `msgid`, as a `PRIVMSG` does, the same for its echo and for
/// every member (irctest's `testBasic` and `testLengthLimits`).
#[test]
fn a_relayed_tagmsg_has_one_msgid_for_its_echo_and_its_members() {
    let mut n = Net::new();
    let alice = n.client("alice", &["message-tags"]);
    let bob = n.client("bob", &["message-tags", "echo-message"]);
    for c in [alice, bob] {
        n.send(c, &["JOIN #test"]);
    }
    n.settle(&[alice, bob]);
    n.send(
        bob,
        &["@+buzz=fizz\\:buzz;cat=dog;+steel=wootz TAGMSG #test"],
    );
    let (b, a) = (n.lines(bob), n.lines(alice));
    for l in [&a, &b] {
        assert_eq!(l.len(), 1, "{l:?}");
        assert_eq!(client_tags_of(&l[0]), ["+buzz=fizz\\:buzz", "+steel=wootz"]);
        assert!(tag(&l[0], "msgid").is_some_and(|m| !m.is_empty()), "{l:?}");
    }
    assert_eq!(tag(&a[0], "msgid"), tag(&b[0], "msgid"));
    n.send(bob, &["@+typing=active TAGMSG #test"]);
    let a2 = n.lines(alice);
    assert_ne!(tag(&a2[0], "msgid"), tag(&a[0], "msgid"), "{a2:?}");
}

/// A labeled line whose answer is one line gets the label on that line, not a batch around it
/// (IRCv3 labeled-response; irctest's `testLabeledNick` and `testUnknownCommand`): a
/// registered client's `NICK`, and a command natter does not know.
#[test]
fn a_labeled_nick_or_unknown_command_is_answered_by_one_labeled_line() {
    let mut n = Net::new();
    let c = n.client("alice", &["batch", "labeled-response"]);
    n.send(c, &["@label=abc NICK alice2"]);
    assert_eq!(n.lines(c), ["@label=abc :alice!alice@natter NICK :alice2"]);
    n.send(c, &["@label=deadbeef NONEXISTENT_COMMAND"]);
    assert_eq!(
        n.lines(c),
        ["@label=deadbeef :natter.irc 421 alice2 NONEXISTENT_COMMAND :Unknown command"]
    );
    // A refused nick is one line too.
    let _bob = n.client("bob", &[]);
    n.send(c, &["@label=n2 NICK bob"]);
    let l = n.lines(c);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with("@label=n2 :natter.irc 433 alice2 bob "),
        "{l:?}"
    );
    // Several lines stay a batch.
    n.send(c, &["@label=w1 WHOIS bob"]);
    let l = n.lines(c);
    assert!(l[0].starts_with("@label=w1 :natter.irc BATCH +"), "{l:?}");
}

/// A message to oneself with echo-message comes twice on the connection that sent it: the
/// echo, labeled, and the message as it arrives (irctest's
/// `testLabeledPrivmsgResponsesToSelf`); without echo-message, once.
#[test]
fn a_message_to_oneself_with_echo_message_is_the_echo_and_the_message() {
    let mut n = Net::new();
    let c = n.client("foo", &["echo-message", "batch", "labeled-response"]);
    n.send(c, &["@label=12345 PRIVMSG foo :hi"]);
    assert_eq!(
        n.lines(c),
        [
            "@label=12345 :foo!foo@natter PRIVMSG foo :hi",
            ":foo!foo@natter PRIVMSG foo :hi"
        ]
    );
    n.send(c, &["NOTICE foo :note"]);
    assert_eq!(
        n.lines(c),
        [
            ":foo!foo@natter NOTICE foo :note",
            ":foo!foo@natter NOTICE foo :note"
        ]
    );
    let plain = n.client("bar", &[]);
    n.send(plain, &["PRIVMSG bar :me"]);
    assert_eq!(n.lines(plain), [":bar!bar@natter PRIVMSG bar :me"]);
}

/// No error reply to a `NOTICE`, whatever refused it (RFC 2812, 3.3.2; irctest's
/// `testNoticeNonexistentChannel`); a labeled one is acknowledged, as any line without answer.
#[test]
fn a_notice_gets_no_error_reply() {
    let mut n = Net::new();
    let c = n.client("foo", &["batch", "labeled-response"]);
    for line in [
        "NOTICE #nonexistent :hello there",
        "NOTICE nobody :hello",
        "NOTICE 9bad :x",
        "NOTICE #Bad!Name :x",
        "NOTICE a,b,c,d,e :x",
    ] {
        n.send(c, &[line]);
        assert_eq!(n.lines(c), Vec::<String>::new(), "{line}");
    }
    n.send(c, &["@label=n1 NOTICE #nonexistent :x"]);
    assert_eq!(n.lines(c), ["@label=n1 :natter.irc ACK"]);
    // A PRIVMSG is still refused in words.
    n.send(c, &["PRIVMSG #nonexistent :x"]);
    assert_eq!(numerics(&n.lines(c)), ["403"]);
}

/// `LUSERS`: connections still registering are `253` (and not clients), and the maximum is
/// the most users there were at once (irctest's `lusers` cases).
#[test]
fn lusers_counts_unregistered_connections_and_keeps_the_maximum() {
    let mut n = Net::new();
    let bar = n.client("bar", &[]);
    let half = n.irc();
    n.send(half, &["NICK qux"]);
    n.send(bar, &["LUSERS"]);
    let l = n.lines(bar);
    assert!(find(&l, " 251 ").contains("There are 1 users"), "{l:?}");
    assert!(
        find(&l, " 253 ").starts_with(":natter.irc 253 bar 1 :"),
        "{l:?}"
    );
    assert!(find(&l, " 255 ").contains("I have 1 clients"), "{l:?}");
    n.send(half, &["USER u 0 * :Q"]);
    n.lines(half);
    n.send(bar, &["LUSERS"]);
    let l = n.lines(bar);
    assert!(!l.iter().any(|l| l.contains(" 253 ")), "{l:?}");
    assert!(
        find(&l, " 266 ").contains(" 2 2 :Current global users 2, max 2"),
        "{l:?}"
    );
    n.send(half, &["QUIT"]);
    n.send(bar, &["LUSERS"]);
    let l = n.lines(bar);
    assert!(
        find(&l, " 265 ").contains(" 1 2 :Current local users 1, max 2"),
        "{l:?}"
    );
    assert!(
        find(&l, " 266 ").contains(" 1 2 :Current global users 1, max 2"),
        "{l:?}"
    );
}

/// `266`'s maximum is the most users at once whether or not anyone asked `LUSERS` then: it
/// was kept only when `LUSERS` was answered, so a crowd that came and went between two
/// `LUSERS` showed in `265` (`max 29`) but not in `266` (`max 17`), a global maximum below the
/// local one on a server that is the whole network.
#[test]
fn lusers_global_maximum_counts_a_peak_nobody_asked_about() {
    let mut n = Net::new();
    let bar = n.client("bar", &[]);
    // Two users of other doors, which no LUSERS counts as they come.
    let a = n.bin("a1");
    let (b, _) = n.nc();
    n.send_bin(a, &ClientMsg::Quit { reason: None });
    n.feed(b, b"/quit\n");
    n.lines(bar);
    n.send(bar, &["LUSERS"]);
    let l = n.lines(bar);
    assert!(
        find(&l, " 265 ").contains(" 1 3 :Current local users 1, max 3"),
        "{l:?}"
    );
    assert!(
        find(&l, " 266 ").contains(" 1 3 :Current global users 1, max 3"),
        "{l:?}"
    );
}

/// A long part reason reads the same on the parter's own `PART` line as on the others': cut at
/// 300 bytes with `…` (PROTOCOL.md's *What others do*). The parter's echo was built from its
/// line, whole, so its client showed 400 bytes where the channel read 300.
#[test]
fn a_long_part_reason_is_cut_alike_for_the_parter_and_the_others() {
    let mut n = Net::new();
    let a = n.client("parter", &[]);
    let b = n.client("stayer", &[]);
    n.send(a, &["JOIN #cut"]);
    n.send(b, &["JOIN #cut"]);
    n.lines(a);
    n.lines(b);
    n.send(a, &[&format!("PART #cut :{}", "r".repeat(400))]);
    let mine = n.lines(a);
    let theirs = n.lines(b);
    let reason = |l: &[String]| -> String {
        let line = find(l, " PART #cut :");
        line.split_once(" PART #cut :").unwrap().1.to_owned()
    };
    let cut = format!("{}…", "r".repeat(300 - '…'.len_utf8()));
    assert_eq!(reason(&theirs), cut, "{theirs:?}");
    assert_eq!(reason(&mine), cut, "{mine:?}");
}

/// WHOIS as IRC servers answer it: `330` for an account, `671` for a user whose every
/// connection came through TLS, `301` while away, and `317` (seconds since its last message,
/// and when it signed on) for a user on IRC, in ergo's and solanum's order.
#[test]
fn whois_tells_account_tls_away_and_idle_time() {
    use base64::Engine;
    let mut n = Net::new();
    let a = registered(&mut n, "alice");
    n.hub.handle_close(a, n.now);
    n.pump();
    // alice on the IRC TLS door, signed in.
    let c = n.hub.accept_handshaken(Door::Irc, LOCAL, n.now).unwrap();
    let plain = base64::engine::general_purpose::STANDARD.encode("\0alice\0correct horse");
    n.send(
        c,
        &[
            "CAP LS 302",
            "NICK alice",
            "USER u 0 * :Alice A",
            "CAP REQ :sasl",
        ],
    );
    n.send(c, &["AUTHENTICATE PLAIN"]);
    n.send(c, &[&format!("AUTHENTICATE {plain}"), "CAP END"]);
    assert!(numerics(&n.lines(c)).contains(&"903"));
    n.send(c, &["JOIN #x"]);
    let b = n.client("bob", &[]);
    n.advance(20_000);
    n.lines(c);
    n.send(b, &["WHOIS alice"]);
    let l = n.lines(b);
    assert_eq!(
        numerics(&l),
        ["311", "319", "312", "671", "330", "317", "318"],
        "{l:?}"
    );
    assert_eq!(
        find(&l, " 671 "),
        ":natter.irc 671 bob alice :is using a secure connection"
    );
    let idle: Vec<String> = find(&l, " 317 ").split(' ').map(str::to_owned).collect();
    let (secs, signon) = (idle[4].parse::<u64>().unwrap(), idle[5].clone());
    assert!((20..30).contains(&secs) && signon != "0", "{l:?}");
    // A message makes it not idle; signing on stays when it was.
    n.send(c, &["PRIVMSG #x :hi", "AWAY :lunch"]);
    n.advance(2_000);
    n.lines(c);
    n.send(b, &["WHOIS alice"]);
    let l = n.lines(b);
    assert_eq!(
        numerics(&l),
        ["311", "319", "312", "671", "330", "301", "317", "318"],
        "{l:?}"
    );
    assert_eq!(
        find(&l, " 317 "),
        format!(":natter.irc 317 bob alice 2 {signon} :seconds idle, signon time")
    );
    // bob came in clear: no 671, no account.
    n.send(c, &["WHOIS bob"]);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["311", "312", "317", "318"], "{l:?}");
}

/// `LUSERS` counts users, not connections: an account on two connections is one user, one
/// client (`255`) and one local and global user (`265`/`266`), as ergo counts a user with
/// several sessions.
#[test]
fn lusers_counts_an_account_on_several_connections_once() {
    let mut n = Net::new();
    let a = registered(&mut n, "alice");
    let (c, _) = sasl_client(&mut n, "alice", "");
    let (d, _) = sasl_client(&mut n, "alice", "");
    n.lines(d);
    n.send(c, &["LUSERS"]);
    let l = n.lines(c);
    assert!(
        find(&l, " 251 ").ends_with(":There are 1 users and 0 invisible on 1 servers"),
        "{l:?}"
    );
    assert!(
        find(&l, " 255 ").ends_with(":I have 1 clients and 0 servers"),
        "{l:?}"
    );
    assert!(find(&l, " 265 ").contains(" 1 1 :"), "{l:?}");
    assert!(find(&l, " 266 ").contains(" 1 1 :"), "{l:?}");
    n.recv(a);
}

/// `LUSERS`' `251` counts the users with mode `i` apart, as IRC servers do (irssi sets `+i` on
/// every connect: "0 invisible" was wrong as soon as one was on).
#[test]
fn lusers_counts_invisible_users_apart() {
    let mut n = Net::new();
    let a = n.client("ann", &[]);
    let b = n.client("ben", &[]);
    let c = n.bin("cat");
    n.send(b, &["MODE ben +i"]);
    n.lines(b);
    n.send(a, &["LUSERS"]);
    let l = n.lines(a);
    assert!(
        find(&l, " 251 ").ends_with(":There are 2 users and 1 invisible on 1 servers"),
        "{l:?}"
    );
    assert!(find(&l, " 266 ").contains(" 3 3 :"), "{l:?}");
    n.send(b, &["MODE ben -i"]);
    n.lines(b);
    n.send(a, &["LUSERS"]);
    let l = n.lines(a);
    assert!(
        find(&l, " 251 ").ends_with(":There are 3 users and 0 invisible on 1 servers"),
        "{l:?}"
    );
    n.recv(c);
}

/// `USER` with an empty user name or real name is `461` (irctest's `testEmptyRealname`).
#[test]
fn user_with_an_empty_real_name_is_461() {
    let mut n = Net::new();
    let c = n.irc();
    n.send(c, &["NICK foo", "USER username * * :"]);
    assert_eq!(numerics(&n.lines(c)), ["461"]);
    n.send(c, &["USER username * * :Real"]);
    assert!(numerics(&n.lines(c)).contains(&"001"));
}

/// A text an IRC client sent in one line is relayed in one line, even past 512 bytes with the
/// sender's prefix (irctest's `buffering` cases: intact, not cut in two); a longer text from
/// natter's own clients is cut into lines of at most 512 bytes.
#[test]
fn a_full_irc_line_is_relayed_whole_and_a_longer_text_is_cut() {
    let mut n = Net::new();
    let a = n.client("nick1", &[]);
    let b = n.client("nick2", &[]);
    // The most a client can send: one word needs no colon.
    let full = "a".repeat(512 - "PRIVMSG nick2 ".len() - 2);
    n.send(a, &[&format!("PRIVMSG nick2 {full}")]);
    assert_eq!(
        n.lines(b),
        [format!(":nick1!nick1@natter PRIVMSG nick2 :{full}")]
    );
    // In a channel too, as an action.
    n.send(a, &["JOIN #c"]);
    n.send(b, &["JOIN #c"]);
    n.settle(&[a, b]);
    let act = "b".repeat(512 - "PRIVMSG #c :\x01ACTION \x01".len() - 2);
    n.send(a, &[&format!("PRIVMSG #c :\x01ACTION {act}\x01")]);
    assert_eq!(
        n.lines(b),
        [format!(
            ":nick1!nick1@natter PRIVMSG #c :\x01ACTION {act}\x01"
        )]
    );
    // natter's own client may say 2000 bytes: cut for IRC.
    let bin = n.bin_in_lobby("carol");
    n.send(b, &["JOIN #lobby"]);
    n.settle(&[b]);
    let long = "word ".repeat(300);
    n.send_bin(
        bin,
        &ClientMsg::Say {
            room: room("#lobby"),
            id: crate::types::MsgId(1),
            text: text(long.trim_end()),
        },
    );
    let l = n.said(b);
    assert!(l.len() >= 3, "{l:?}");
    let joined: String = l
        .iter()
        .map(|l| l.split_once(" :").unwrap().1)
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(joined.split_whitespace().count(), 300, "{l:?}");
}

/// natter's user name is the nick (`bob!bob@natter`), so a NICK changes it too, and a client
/// that keeps the user name it knew builds a `/ban bobby` from it, `*!*bob@natter`, which
/// natter reads as the nick bob (whoever has it next, not bobby). With IRCv3 `chghost`
/// (irssi and WeeChat ask for it) the NICK is followed by a `CHGHOST` with the new one.
#[test]
fn a_nick_change_is_followed_by_chghost_for_those_that_asked() {
    let mut n = Net::new();
    let w = n.client("watcher", &["chghost"]);
    let o = n.client("plain", &[]);
    let b = n.client("bob", &[]);
    for c in [w, o, b] {
        n.send(c, &["JOIN #x"]);
    }
    n.advance(1_000);
    for c in [w, o, b] {
        n.lines(c);
    }
    n.send(b, &["NICK bobby"]);
    n.advance(1_000);
    let nick = ":bob!bob@natter NICK :bobby";
    let chghost = ":bobby!bob@natter CHGHOST bobby natter";
    assert_eq!(n.said(w), [nick, chghost]);
    assert_eq!(n.said(o), [nick]);
}

/// `userhost-in-names`: the names after a JOIN and a NAMES list `nick!user@host` (irctest's
/// `CapTestCase` asks for it beside `multi-prefix`).
#[test]
fn userhost_in_names_lists_full_masks() {
    let mut n = Net::new();
    let c = n.client("foo", &["multi-prefix", "userhost-in-names"]);
    let _bar = n.irc_in_lobby("bar");
    n.send(c, &["JOIN #lobby"]);
    let l = n.lines(c);
    let names = find(&l, " 353 ");
    assert!(
        names.contains("bar!bar@natter") && names.contains("foo!foo@natter"),
        "{l:?}"
    );
    n.send(c, &["NAMES #lobby"]);
    assert!(find(&n.lines(c), " 353 ").contains("bar!bar@natter"));
}

/// A direct message or an invitation from a signed-in user carries `account=` for a recipient
/// with account-tag, as a channel message does (irctest's `AccountTagTestCase.testPrivmsg`);
/// a guest's none.
#[test]
fn account_tag_on_direct_messages_and_invitations_from_signed_in_users() {
    let mut n = Net::new();
    let w = n.client("watcher", &["account-tag"]);
    let p = n.client("plain", &[]);
    let a = registered(&mut n, "alice");
    let b = n.bin("bob");
    for (c, to, id) in [(a, "watcher", 7), (b, "watcher", 7), (a, "plain", 8)] {
        n.send_bin(
            c,
            &ClientMsg::Msg {
                to: nick(to),
                id: crate::types::MsgId(id),
                text: text("hi"),
            },
        );
    }
    assert_eq!(
        n.lines(w),
        [
            "@account=alice :alice!alice@natter PRIVMSG watcher :hi",
            ":bob!bob@natter PRIVMSG watcher :hi"
        ]
    );
    assert_eq!(n.lines(p), [":alice!alice@natter PRIVMSG plain :hi"]);

    // An invitation is a message from its sender too (irctest's `AccountTagTestCase.testInvite`).
    for c in [a, b] {
        n.send_bin(c, &ClientMsg::Join { room: room("#inv") });
        n.recv(c);
    }
    for c in [a, b] {
        n.send_bin(
            c,
            &ClientMsg::Moderate {
                room: room("#inv"),
                action: crate::wire::ModAction::Invite(nick("watcher")),
            },
        );
    }
    assert_eq!(
        n.lines(w),
        [
            "@account=alice :alice!alice@natter INVITE watcher #inv",
            ":bob!bob@natter INVITE watcher #inv"
        ]
    );
}

/// SASL credentials sent in full-size pieces that never end fail the exchange (`904`); one
/// piece over 400 bytes is `905` (irctest's `testPlainInfiniteMessages`, `testSaslTooLong`).
#[test]
fn sasl_credentials_that_never_end_fail_and_a_long_piece_is_905() {
    let mut n = Net::new();
    let c = n.irc();
    n.send(
        c,
        &["CAP LS 302", "NICK foo", "USER u 0 * :F", "CAP REQ :sasl"],
    );
    n.lines(c);
    n.send(c, &["AUTHENTICATE PLAIN"]);
    assert_eq!(n.lines(c), [":natter.irc AUTHENTICATE +"]);
    let piece = "A".repeat(400);
    let mut got = Vec::new();
    for _ in 0..40 {
        n.send(c, &[&format!("AUTHENTICATE {piece}")]);
        n.advance(1_000);
        got.extend(n.lines(c));
        if !got.is_empty() {
            break;
        }
    }
    assert_eq!(numerics(&got), ["904"], "{got:?}");
    n.send(c, &["AUTHENTICATE PLAIN"]);
    n.lines(c);
    n.send(c, &[&format!("AUTHENTICATE {}", "A".repeat(401))]);
    assert_eq!(numerics(&n.lines(c)), ["905"]);
}

/// A name that cannot be an account (`b@d nick`) was answered "not authzid NUL authcid NUL
/// password", which says the client sent the wrong shape: it sent the right one, with a name
/// that is no nick. Said as nc's `/login` says it.
#[test]
fn a_sasl_name_that_is_no_nick_is_said_to_be_one() {
    use base64::Engine;
    let mut n = Net::new();
    let c = n.irc();
    n.send(
        c,
        &["CAP LS 302", "NICK foo", "USER u 0 * :F", "CAP REQ :sasl"],
    );
    n.lines(c);
    let blob = |plain: &[u8]| base64::engine::general_purpose::STANDARD.encode(plain);
    n.send(c, &["AUTHENTICATE PLAIN"]);
    n.lines(c);
    n.send(
        c,
        &[&format!("AUTHENTICATE {}", blob(b"\0b@d nick\0pass words"))],
    );
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["904"], "{l:?}");
    assert!(l[0].contains("a nick starts with a letter"), "{l:?}");
    assert!(l[0].contains("b@d nick"), "{l:?}");
    // A blob of another shape is still said to be one.
    n.send(c, &["AUTHENTICATE PLAIN"]);
    n.lines(c);
    n.send(c, &[&format!("AUTHENTICATE {}", blob(b"no nuls here"))]);
    let l = n.lines(c);
    assert!(l[0].contains("authzid NUL authcid NUL password"), "{l:?}");
}

/// A guest holding a nick whose owner signs in is renamed: it was told so twice, once as its
/// own rename (`YourNick`) and once as a room event about itself, which IRC renders as a second
/// `:hank!hank@natter NICK :guest1234` when the client is guest1234 already (the source names
/// nobody it knows), and nc as `hank is now known as guest1234` after `you are now known as`.
#[test]
fn a_guest_renamed_for_the_owner_of_its_nick_is_told_once() {
    let mut n = Net::new();
    let irc = n.irc_in_lobby("hank");
    n.send(irc, &["JOIN #b"]);
    let (nc, _) = n.nc();
    n.send(nc, &["/nick ivy"]);
    n.lines(irc);
    n.lines(nc);
    let account = |name: &str| crate::persist::LoadedAccount {
        record: crate::persist::AccountRecord {
            name: nick(name),
            hash: crate::accounts::hash_password(
                &crate::types::Password("correct horse".into()),
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
    };
    n.hub.load_accounts(vec![account("hank"), account("ivy")]);
    let (owner, _) = n.nc();
    n.send(owner, &["/login hank correct horse"]);
    let l = n.lines(irc);
    // The reload renamed both guests (ivy's rename is seen in #lobby too).
    let nicks: Vec<&String> = l
        .iter()
        .filter(|l| l.contains(" NICK ") && !l.starts_with(":ivy!"))
        .collect();
    assert_eq!(nicks.len(), 2, "its own rename, then the owner's: {l:?}");
    assert!(
        nicks[0].starts_with(":hank!hank@natter NICK :guest"),
        "{l:?}"
    );
    assert!(nicks[1].ends_with(" NICK :hank"), "{l:?}");
    assert_eq!(numerics(&l), ["433"], "{l:?}");
    let (owner2, _) = n.nc();
    n.send(owner2, &["/login ivy correct horse"]);
    let l = n.lines(nc);
    assert!(
        l.iter()
            .any(|l| l.starts_with("-- you are now known as guest")),
        "{l:?}"
    );
    assert!(
        !l.iter().any(|l| l.starts_with("-- ivy is now known as")),
        "said twice: {l:?}"
    );
}

/// A labeled TAGMSG to oneself with echo-message is the echo (labeled) and the TAGMSG as it
/// arrives (irctest's `testLabeledTagMsgResponsesToSelf`), as a PRIVMSG to oneself is.
#[test]
fn a_tagmsg_to_oneself_with_echo_message_is_the_echo_and_the_tagmsg() {
    let mut n = Net::new();
    let c = n.client(
        "foo",
        &["echo-message", "batch", "labeled-response", "message-tags"],
    );
    n.send(c, &["@label=1234;+draft/reaction=l TAGMSG foo"]);
    let l = n.lines(c);
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(
        l.iter().filter(|l| l.contains("label=1234")).count(),
        1,
        "{l:?}"
    );
    assert!(
        l.iter().all(|l| l.ends_with(":foo!foo@natter TAGMSG foo")),
        "{l:?}"
    );
}

/// Away is one hub state for every door: a natter client (version 8) and an nc user go away
/// and come back; IRC co-members see AWAY (away-notify), 301 in WHOIS and `G` in WHO; natter's
/// clients and nc users hear a co-member's change, and a direct message to someone away is
/// answered with their away message (not a notice). A version-7 client is sent none of it.
#[test]
fn natter_clients_and_nc_users_go_away_and_every_door_sees_it() {
    let mut n = Net::new();
    let w = n.client("watcher", &["away-notify"]);
    n.send(w, &["JOIN #lobby"]);
    let natty = n.bin_in_lobby("natty");
    let old = n.hub.accept(LOCAL, n.now).unwrap();
    n.feed(old, &MAGIC);
    n.send_bin(
        old,
        &ClientMsg::Hello {
            version: 7,
            nick: nick("oldie"),
            resume: None,
        },
    );
    n.send_bin(
        old,
        &ClientMsg::Join {
            room: room("#lobby"),
        },
    );
    let (nc, nc_nick) = n.nc();
    n.settle(&[w, natty, old, nc]);
    n.lines(w);

    n.send_bin(natty, &ClientMsg::Away(Some(text("at lunch"))));
    let away = |who: &str, a: Option<&str>| ServerMsg::Away {
        nick: nick(who),
        away: a.map(text),
    };
    assert_eq!(n.recv(natty), [away("natty", Some("at lunch"))]);
    assert_eq!(n.lines(w), [":natty!natty@natter AWAY :at lunch"]);
    assert_eq!(n.lines(nc), ["-- natty is away: at lunch"]);
    assert!(n.recv(old).is_empty(), "version 7 cannot decode it");
    assert!(!n.closed(old));

    n.send(w, &["WHOIS natty", "WHO #lobby", "PRIVMSG natty :there?"]);
    let l = n.lines(w);
    assert!(
        l.contains(&":natter.irc 301 watcher natty :at lunch".to_owned()),
        "{l:?}"
    );
    assert!(
        find(&l, " natter.irc natty G :0").contains(" 352 watcher #lobby "),
        "{l:?}"
    );

    // A direct message to someone away tells the writer, on every door; a notice does not.
    n.send(nc, &["/msg natty you there?"]);
    let l = n.lines(nc);
    assert_eq!(
        l.last().map(String::as_str),
        Some("-- natty is away: at lunch"),
        "{l:?}"
    );
    n.settle(&[natty]);

    // nc goes away, in words.
    n.send(nc, &["/away brb"]);
    assert_eq!(
        n.lines(nc),
        ["-- you are away: brb (/back when you are back)"]
    );
    assert_eq!(n.recv(natty), [away(&nc_nick, Some("brb"))]);
    assert_eq!(
        n.lines(w),
        [format!(":{nc_nick}!{nc_nick}@natter AWAY :brb")]
    );
    let to_nc = ClientMsg::Msg {
        to: nick(&nc_nick),
        id: MsgId(1),
        text: text("ping"),
    };
    n.send_bin(natty, &to_nc);
    let got = n.recv(natty);
    assert!(matches!(got[0], ServerMsg::Direct(_)), "{got:?}");
    assert_eq!(got[1..], [away(&nc_nick, Some("brb"))]);
    n.send_bin(
        natty,
        &ClientMsg::NoticeTo {
            to: nick(&nc_nick),
            id: MsgId(2),
            text: text("fyi"),
        },
    );
    let got = n.recv(natty);
    assert!(matches!(got[..], [ServerMsg::DirectNotice(_)]), "{got:?}");
    assert_eq!(n.lines(nc), ["*natty* ping", "-natty- fyi"]);
    n.send(nc, &["/back"]);
    assert_eq!(n.lines(nc), ["-- you are back (no longer away)"]);
    n.lines(w);
    n.recv(natty);

    // Back, and a long away message is cut to AWAYLEN.
    n.send_bin(natty, &ClientMsg::Away(None));
    assert_eq!(n.recv(natty), [away("natty", None)]);
    assert_eq!(n.lines(w), [":natty!natty@natter AWAY"]);
    assert_eq!(n.lines(nc), ["-- natty is back"]);
    n.send_bin(natty, &ClientMsg::Away(Some(text(&"z".repeat(400)))));
    let long = "z".repeat(crate::limits::MAX_AWAY_BYTES);
    assert_eq!(n.recv(natty), [away("natty", Some(&long))]);
    assert!(n.recv(old).is_empty());
    assert!(!n.closed(old));
}

/// Who in a room is away follows its member list: a natter client of version 9 gets
/// `AwayHere` right after its `Joined` (and after `Members`, and after the live join of someone
/// away), one of version 8 gets none of it, an nc user reads one line after the list, and IRC
/// clients see what they always did. When nobody is away nothing follows.
#[test]
fn who_is_away_follows_member_lists_for_version_9_clients_and_nc_users() {
    let mut n = Net::new();
    let w = n.client("watcher", &["away-notify"]);
    n.send(w, &["JOIN #lobby", "JOIN #two"]);
    let natty = n.bin_in_lobby("natty");
    let carol = n.bin_in_lobby("carol");
    n.send_bin(carol, &ClientMsg::Away(Some(text("brb"))));
    let old = n.hub.accept(LOCAL, n.now).unwrap();
    n.feed(old, &MAGIC);
    n.send_bin(
        old,
        &ClientMsg::Hello {
            version: 8,
            nick: nick("oldie"),
            resume: None,
        },
    );
    let (nc, _) = n.nc();
    n.settle(&[w, natty, carol, old, nc]);
    let here = |r: &str, who: &[(&str, &str)]| ServerMsg::AwayHere {
        room: room(r),
        away: who.iter().map(|(n, a)| (nick(n), text(a))).collect(),
    };

    // A joiner of version 9: right after its `Joined`.
    let newbie = n.bin("newbie");
    let join = |n: &mut Net, c, r: &str| {
        n.send_bin(c, &ClientMsg::Join { room: room(r) });
        n.recv(c)
    };
    let got = join(&mut n, newbie, "#lobby");
    let at = got
        .iter()
        .position(|m| matches!(m, ServerMsg::Joined { .. }))
        .expect("joined");
    assert_eq!(got[at + 1], here("#lobby", &[("carol", "brb")]), "{got:?}");
    assert_eq!(
        got.iter()
            .filter(|m| matches!(m, ServerMsg::AwayHere { .. }))
            .count(),
        1
    );
    // And after a member list asked for.
    n.send_bin(
        newbie,
        &ClientMsg::Who {
            room: room("#lobby"),
        },
    );
    let got = n.recv(newbie);
    assert!(matches!(got[0], ServerMsg::Members { .. }), "{got:?}");
    assert_eq!(got[1..], [here("#lobby", &[("carol", "brb")])]);
    // Version 8: none of it, and still connected.
    let got = join(&mut n, old, "#lobby");
    assert!(
        got.iter().any(|m| matches!(m, ServerMsg::Joined { .. }))
            && !got.iter().any(|m| matches!(m, ServerMsg::AwayHere { .. })),
        "{got:?}"
    );
    assert!(!n.closed(old));

    // nc: one line after the list, on a join and after /who.
    n.send_bin(carol, &ClientMsg::Join { room: room("#two") });
    n.settle(&[w, carol]);
    n.send(nc, &["/join #two"]);
    let l = n.lines(nc);
    let at = l
        .iter()
        .position(|l| l.starts_with("-- you are in #two with: "))
        .expect("joined");
    assert_eq!(l[at + 1], "-- away here: carol (brb)", "{l:?}");
    n.send(nc, &["/who #two"]);
    let l = n.lines(nc);
    assert_eq!(l.len(), 2, "{l:?}");
    assert!(l[0].starts_with("-- #two ("), "{l:?}");
    assert_eq!(l[1], "-- away here: carol (brb)");

    // Someone away joins: members of version 9 are told after the join, version 8 not.
    n.send_bin(
        natty,
        &ClientMsg::Join {
            room: room("#three"),
        },
    );
    n.send_bin(
        old,
        &ClientMsg::Join {
            room: room("#three"),
        },
    );
    n.settle(&[natty, old]);
    join(&mut n, carol, "#three");
    let got = n.recv(natty);
    assert!(
        matches!(&got[0], ServerMsg::Event(e) if e.kind == EventKind::Join),
        "{got:?}"
    );
    assert_eq!(got[1..], [here("#three", &[("carol", "brb")])]);
    let got = n.recv(old);
    assert!(
        matches!(&got[..], [ServerMsg::Event(e)] if e.kind == EventKind::Join),
        "{got:?}"
    );
    // IRC clients: what they always saw (their AWAY after the JOIN), nothing more.
    n.send(w, &["JOIN #three"]);
    let l = n.lines(w);
    assert!(l.iter().all(|l| !l.contains("away here")), "{l:?}");

    // Nobody away: nothing follows the list.
    n.send_bin(carol, &ClientMsg::Away(None));
    n.settle(&[natty, carol, old, nc, newbie]);
    let late = n.bin("late");
    let got = join(&mut n, late, "#lobby");
    assert!(
        got.iter().any(|m| matches!(m, ServerMsg::Joined { .. }))
            && !got.iter().any(|m| matches!(m, ServerMsg::AwayHere { .. })),
        "{got:?}"
    );
    n.lines(nc);
    n.send(nc, &["/who #two"]);
    let l = n.lines(nc);
    assert_eq!(l.len(), 1, "{l:?}");
}

/// Someone already away joins a room: each door says so right after the join, in its own
/// words. An nc user reads `-- carol is away: brb` after the join line (in its current room
/// or another, named in front), an IRC client with away-notify an `AWAY` after the `JOIN` (as
/// ergo does), one without it the `JOIN` alone, a natter client of version 9 an `AwayHere`.
/// Someone not away joining brings no such line.
#[test]
fn an_away_joiner_is_said_away_after_its_join_on_every_door() {
    let mut n = Net::new();
    let notify = n.client("notify", &["away-notify"]);
    let plain = n.client("plain", &[]);
    n.send(notify, &["JOIN #three"]);
    n.send(plain, &["JOIN #three"]);
    let natty = n.bin("natty");
    n.send_bin(
        natty,
        &ClientMsg::Join {
            room: room("#three"),
        },
    );
    let (nc, nc_nick) = n.nc();
    n.send(nc, &["/join #three", "/join #four"]);
    let carol = n.bin("carol");
    n.send_bin(carol, &ClientMsg::Away(Some(text("brb"))));
    n.settle(&[notify, plain, natty, nc, carol]);

    n.send_bin(
        carol,
        &ClientMsg::Join {
            room: room("#three"),
        },
    );
    // nc's current room is #four: the join is named with its room; the away line is carol's.
    assert_eq!(
        n.lines(nc),
        ["[#three] -- carol joined #three", "-- carol is away: brb"],
        "{nc_nick}"
    );
    let l = n.lines(notify);
    assert!(l[0].contains(" JOIN #three"), "{l:?}");
    assert!(
        l[1].starts_with(":carol!") && l[1].ends_with(" AWAY :brb"),
        "{l:?}"
    );
    assert_eq!(l.len(), 2, "{l:?}");
    let l = n.lines(plain);
    assert!(l.len() == 1 && l[0].contains(" JOIN #three"), "{l:?}");
    let got = n.recv(natty);
    assert!(
        matches!(&got[..], [ServerMsg::Event(e), ServerMsg::AwayHere { .. }] if e.kind == EventKind::Join),
        "{got:?}"
    );

    // In nc's current room, the join line without the room; someone not away: the join alone.
    n.send_bin(
        carol,
        &ClientMsg::Join {
            room: room("#four"),
        },
    );
    assert_eq!(
        n.lines(nc),
        ["-- carol joined #four", "-- carol is away: brb"]
    );
    n.send_bin(carol, &ClientMsg::Away(None));
    n.send_bin(
        carol,
        &ClientMsg::Part {
            room: room("#four"),
            reason: None,
        },
    );
    n.settle(&[nc]);
    n.send_bin(
        carol,
        &ClientMsg::Join {
            room: room("#four"),
        },
    );
    assert_eq!(n.lines(nc), ["-- carol joined #four"]);
}

// ---- who people are: USER, WHO masks, WHOWAS, the server's name ----

/// An IRC client registered as `want` with `USER user 0 * :real`.
fn with_user(n: &mut Net, want: &str, user: &str, real: &str) -> ConnId {
    let c = n.irc();
    n.send(
        c,
        &[&format!("NICK {want}"), &format!("USER {user} 0 * :{real}")],
    );
    let l = n.lines(c);
    assert!(l.iter().any(|l| l.contains(" 001 ")), "{l:?}");
    n.advance(3_000);
    n.lines(c);
    c
}

#[test]
fn user_gives_the_user_name_and_real_name_that_who_and_whois_show() {
    let mut n = Net::new();
    let cool = with_user(
        &mut n,
        "coolNick",
        "myusernam",
        "My \x02Unique\x02Real Name",
    );
    n.send(cool, &["JOIN #chan"]);
    let other = n.client("other", &[]);
    n.send(other, &["JOIN #chan"]);
    let bin = n.bin("binny");
    n.send_bin(
        bin,
        &ClientMsg::Join {
            room: room("#chan"),
        },
    );
    n.advance(3_000);
    n.lines(other);

    n.send(other, &["WHOIS coolnick", "WHO coolNick", "WHO #chan"]);
    let l = n.lines(other);
    assert_eq!(
        find(&l, " 311 "),
        ":natter.irc 311 other coolNick coolNick natter * :My UniqueReal Name"
    );
    // `WHO nick` names the channel they share (`*` before the thirtieth session).
    assert_eq!(
        l[5],
        ":natter.irc 352 other #chan coolNick natter natter.irc coolNick H :0 My UniqueReal Name"
    );
    assert!(l.contains(
        &":natter.irc 352 other #chan coolNick natter natter.irc coolNick H :0 My UniqueReal Name"
            .to_owned()
    ));
    // natter's own users: the nick as the user name, how they are connected as the real name.
    assert!(
        l.contains(
            &":natter.irc 352 other #chan binny natter natter.irc binny H :0 natter user on the \
          natter client or a web page"
                .to_owned()
        )
    );
    // The prefix of what people say stays nick!nick@natter (see PROTOCOL.md).
    n.send(cool, &["PRIVMSG #chan :hi"]);
    assert!(
        n.lines(other)
            .contains(&":coolNick!coolNick@natter PRIVMSG #chan :hi".to_owned())
    );
}

/// WHO, WHOX, WHOIS and WHOWAS show as the user name what the prefixes show (the nick, as
/// natter reads a mask's user name), not the `USER` name: irssi takes hosts from the WHOX it
/// runs at a join, and its `/ban alice` of an alice registered with `USER root` made
/// `*!*root@natter`, which banned whoever held the nick `root`.
#[test]
fn every_user_name_shown_is_the_prefixes_so_a_mask_made_from_it_bans_that_user() {
    let mut n = Net::new();
    registered(&mut n, "asker");
    let (asker, _) = sasl_client(&mut n, "asker", "");
    n.send(asker, &["JOIN #a", "MODE #a +r"]);
    let alice = with_user(&mut n, "alice", "root", "Alice");
    let root = n.client("root", &[]);
    for c in [alice, root] {
        n.send(c, &["JOIN #a"]);
    }
    n.advance(2_000);
    for c in [alice, root, asker] {
        n.lines(c);
    }
    n.send(alice, &["PRIVMSG #a :hi"]);
    let l = n.lines(asker);
    let prefix = find(&l, " PRIVMSG ");
    let prefix_user = prefix[1..]
        .split(' ')
        .next()
        .and_then(|p| p.split_once('!'))
        .and_then(|(_, uh)| uh.split_once('@'))
        .map(|(u, _)| u.to_owned())
        .unwrap();
    assert_eq!(prefix_user, "alice", "{prefix}");
    n.advance(2_000);
    n.send(asker, &["WHO #a %tcuhnar,743", "WHO alice", "WHOIS alice"]);
    let l = n.lines(asker);
    let shown: Vec<(&str, &str)> = l
        .iter()
        .filter(|l| l.contains(" alice ") || l.ends_with(" alice"))
        .filter_map(|l| {
            let w: Vec<&str> = l.split(' ').collect();
            match w[1] {
                "354" => Some(("354", w[5])),
                "352" | "311" => Some((w[1], w[4])),
                _ => None,
            }
        })
        .collect();
    assert_eq!(
        shown,
        [("354", "alice"), ("352", "alice"), ("311", "alice")],
        "{l:?}"
    );
    n.send(alice, &["NICK alice2"]);
    n.advance(2_000);
    n.send(asker, &["WHOWAS alice"]);
    let l = n.lines(asker);
    assert!(
        find(&l, " 314 ").starts_with(":natter.irc 314 asker alice alice natter * :"),
        "{l:?}"
    );
    n.send(alice, &["NICK alice"]);
    n.advance(2_000);
    n.lines(alice);
    n.lines(root);
    // The mask irssi's `/ban alice` makes of what WHOX showed bans alice, not root.
    n.lines(asker);
    let whox_user = shown[0].1.to_owned();
    n.send(asker, &[&format!("MODE #a +b *!*{whox_user}@natter")]);
    n.advance(3_000);
    let l = n.lines(root);
    assert!(
        l.iter().any(|l| l.contains(" MODE #a +b alice!*@*")),
        "{l:?}"
    );
    assert!(l.iter().any(|l| l.contains(" KICK #a alice ")), "{l:?}");
}

#[test]
fn a_bad_user_name_or_real_name_is_refused_with_a_numeric_and_long_ones_are_cut() {
    let mut n = Net::new();
    let c = n.irc();
    n.send(c, &["NICK foo", "USER 😊😊 * * :realname"]);
    let l = n.lines(c);
    assert!(find(&l, " 468 ").contains("username is not valid"), "{l:?}");
    assert!(!l.iter().any(|l| l.contains(" 001 ")));
    n.send(c, &["USER u@host * * :realname"]);
    assert_eq!(numerics(&n.lines(c)), ["468"]);
    // Only formatting is no real name.
    n.send(c, &["USER ok * * :\x02\x03\x0f"]);
    assert_eq!(numerics(&n.lines(c)), ["461"]);
    // Long ones are cut (as IRC servers cut them), and registration goes on.
    let long_user = "u".repeat(40);
    let long_real = "é".repeat(100);
    n.send(c, &[&format!("USER {long_user} * * :{long_real}")]);
    assert!(n.lines(c).iter().any(|l| l.contains(" 001 ")));
    n.advance(3_000);
    n.send(c, &["WHOIS foo"]);
    let l = n.lines(c);
    let whois = find(&l, " 311 ");
    assert!(whois.contains(" 311 foo foo foo natter "), "{whois}");
    let real = whois.rsplit_once(" :").unwrap().1;
    assert_eq!(real, "é".repeat(crate::limits::IRC_MAX_REALNAME / 2));
}

#[test]
fn who_with_a_mask_matches_nick_user_host_and_real_name_and_hides_the_invisible() {
    let mut n = Net::new();
    let cool = with_user(&mut n, "coolNick", "myusernam", "My UniqueReal Name");
    let evan = with_user(&mut n, "evan", "ev", "Evan");
    n.send(evan, &["MODE evan +i"]);
    let asker = with_user(&mut n, "asker", "ask", "Asker");
    let _bin = n.bin("binny");
    for c in [cool, evan, asker] {
        n.lines(c);
    }
    let who = |n: &mut Net, mask: &str| -> Vec<String> {
        // Flood control: a token per line.
        n.advance(2_000);
        n.send(asker, &[&format!("WHO {mask}")]);
        let l = n.lines(asker);
        assert_eq!(
            l.last().unwrap(),
            &format!(":natter.irc 315 asker {mask} :End of WHO list"),
            "{l:?}"
        );
        let mut nicks: Vec<String> = l
            .iter()
            .filter(|l| l.contains(" 352 "))
            .map(|l| l.split(' ').nth(7).unwrap().to_owned())
            .collect();
        nicks.sort();
        nicks
    };
    // Everyone but the invisible.
    assert_eq!(who(&mut n, "*"), ["asker", "binny", "coolNick"]);
    assert_eq!(who(&mut n, "0"), ["asker", "binny", "coolNick"]);
    assert_eq!(who(&mut n, "coolni*"), ["coolNick"]);
    assert_eq!(who(&mut n, "COOL?ICK"), ["coolNick"]);
    // The user name is the nick (as in prefixes): the `USER` name is shown nowhere, and so
    // matches nothing.
    assert!(who(&mut n, "*myuser*").is_empty());
    assert_eq!(who(&mut n, "*uniquereal*"), ["coolNick"]);
    assert_eq!(who(&mut n, "natt?r*"), ["asker", "binny", "coolNick"]);
    assert!(who(&mut n, "nobody*").is_empty());
    // The invisible: not to a mask, but to its exact nick, or to whoever shares a room.
    assert!(who(&mut n, "eva*").is_empty());
    assert_eq!(who(&mut n, "evan"), ["evan"]);
    n.send(evan, &["JOIN #test"]);
    n.send(asker, &["JOIN #test"]);
    n.lines(asker);
    assert_eq!(who(&mut n, "eva*"), ["evan"]);
    // `o`: server admins only (there are none here).
    n.advance(2_000);
    n.send(asker, &["WHO * o"]);
    assert_eq!(n.lines(asker), [":natter.irc 315 asker * :End of WHO list"]);
    // A nick nobody has: the end alone; and so for a mask longer than anything it could match.
    assert!(who(&mut n, "idontexist").is_empty());
    n.advance(2_000);
    let long = format!("{}x", "*".repeat(crate::limits::IRC_MAX_WHO_MASK));
    n.send(asker, &[&format!("WHO {long}")]);
    let l = n.lines(asker);
    assert_eq!(numerics(&l), ["315"]);
    assert!(l[0].contains(" at most 80 bytes"), "{l:?}");
}

/// `WHO mask` as modern.ircdocs and solanum read it: a nick exactly is that user alone, else
/// the mask is a glob over the nick, user name, host, server and real name (a nick nobody has
/// too: `WHO natter` is everyone on the host); WHOX's match flags before the `%` narrow the
/// fields (`n`, `u`, `h`, `s`, `r`, `a` for the account).
#[test]
fn who_with_a_mask_matches_the_server_and_the_fields_its_flags_name() {
    let mut n = Net::new();
    let a = registered(&mut n, "alice");
    let cool = with_user(&mut n, "coolNick", "myusernam", "alice in wonderland");
    let asker = with_user(&mut n, "asker", "ask", "Asker");
    n.lines(cool);
    let who = |n: &mut Net, args: &str| -> Vec<String> {
        n.advance(2_000);
        n.send(asker, &[&format!("WHO {args}")]);
        let l = n.lines(asker);
        let mask = args.split(' ').next().unwrap();
        assert_eq!(
            l.last().unwrap(),
            &format!(":natter.irc 315 asker {mask} :End of WHO list"),
            "{l:?}"
        );
        let mut nicks: Vec<String> = l
            .iter()
            .filter(|l| l.contains(" 352 ") || l.contains(" 354 "))
            .map(|l| {
                let at = if l.contains(" 352 ") { 7 } else { 3 };
                l.split(' ')
                    .nth(at)
                    .unwrap()
                    .trim_start_matches(':')
                    .to_owned()
            })
            .collect();
        nicks.sort();
        nicks
    };
    let all = ["alice", "asker", "coolNick"];
    assert_eq!(who(&mut n, "*.irc"), all, "the server's name");
    assert_eq!(who(&mut n, "natter"), all, "no such nick: the host");
    // alice exactly, not the real name that holds her nick.
    assert_eq!(who(&mut n, "alice"), ["alice"]);
    assert_eq!(who(&mut n, "alice*"), ["alice", "coolNick"]);
    assert_eq!(who(&mut n, "alice* n"), ["alice"]);
    assert_eq!(who(&mut n, "alice* r%n"), ["coolNick"]);
    assert_eq!(who(&mut n, "as* u"), ["asker"]);
    assert!(who(&mut n, "~as* u").is_empty(), "no user name is ~USER");
    assert!(who(&mut n, "*.irc n").is_empty());
    assert_eq!(who(&mut n, "*.irc s"), all);
    assert_eq!(who(&mut n, "al?ce a%na"), ["alice"], "the account");
    assert!(who(&mut n, "*.irc o").is_empty(), "no server admin here");
    n.recv(a);
}

#[test]
fn who_star_on_a_big_server_lists_a_bounded_number_and_says_so() {
    let mut n = Net::new();
    let asker = n.client("asker", &[]);
    for i in 0..crate::limits::IRC_MAX_WHO_MATCHES + 5 {
        n.bin(&format!("u{i}"));
    }
    n.lines(asker);
    n.send(asker, &["WHO *"]);
    let l = n.lines(asker);
    assert_eq!(
        l.iter().filter(|l| l.contains(" 352 ")).count(),
        crate::limits::IRC_MAX_WHO_MATCHES
    );
    assert!(
        l.last()
            .unwrap()
            .contains(" 315 asker * :End of WHO list (at most 200 users"),
        "{:?}",
        l.last()
    );
}

#[test]
fn whowas_remembers_quits_and_nick_changes_newest_first_with_a_count() {
    let mut n = Net::new();
    let asker = n.client("asker", &[]);
    n.send(asker, &["WHOWAS nick2"]);
    assert_eq!(
        n.lines(asker),
        [
            ":natter.irc 406 asker nick2 :There was no such nickname",
            ":natter.irc 369 asker nick2 :End of WHOWAS",
        ]
    );
    let two = with_user(&mut n, "nick2", "ident2", "Realname");
    n.send(two, &["QUIT :bye"]);
    let three = with_user(&mut n, "nick2", "ident3", "Realname");
    n.send(three, &["NICK other"]);
    // A binary user's quit is remembered too, with its nick as the user name.
    let bin = n.bin("nick2");
    n.send_bin(bin, &ClientMsg::Quit { reason: None });
    n.lines(asker);

    n.send(asker, &["WHOWAS nick2"]);
    let l = n.lines(asker);
    assert_eq!(
        numerics(&l),
        ["314", "312", "314", "312", "314", "312", "369"],
        "{l:?}"
    );
    assert_eq!(
        l[0],
        ":natter.irc 314 asker nick2 nick2 natter * :natter user"
    );
    assert_eq!(l[2], ":natter.irc 314 asker nick2 nick2 natter * :Realname");
    assert_eq!(l[4], ":natter.irc 314 asker nick2 nick2 natter * :Realname");
    assert!(
        l[1].starts_with(":natter.irc 312 asker nick2 natter.irc :"),
        "{}",
        l[1]
    );
    for (count, want) in [("1", 1), ("2", 2), ("0", 3), ("-1", 3), ("x", 3)] {
        n.send(asker, &[&format!("WHOWAS NICK2 {count}")]);
        let l = n.lines(asker);
        assert_eq!(
            l.iter().filter(|l| l.contains(" 314 ")).count(),
            want,
            "{count}"
        );
        assert_eq!(
            l.last().unwrap(),
            ":natter.irc 369 asker NICK2 :End of WHOWAS"
        );
    }
    n.send(asker, &["WHOWAS", "WHOWAS 9bad"]);
    assert_eq!(numerics(&n.lines(asker)), ["431", "406", "369"]);
}

/// WHOWAS of a user that was signed in says its account (`330 ... :was logged in as`), as
/// solanum's does.
#[test]
fn whowas_says_the_account_a_user_was_signed_in_to() {
    let mut n = Net::new();
    let asker = n.client("asker", &[]);
    let a = registered(&mut n, "alice");
    let (c, _) = sasl_client(&mut n, "alice", "");
    n.send(c, &["QUIT :bye"]);
    n.recv(a);
    n.advance(2_000);
    n.lines(asker);
    n.send(asker, &["WHOWAS alice"]);
    let l = n.lines(asker);
    assert_eq!(numerics(&l), ["314", "330", "312", "369"], "{l:?}");
    assert_eq!(l[1], ":natter.irc 330 asker alice alice :was logged in as");
    // A guest's record has none.
    let g = n.client("guest", &[]);
    n.send(g, &["QUIT"]);
    n.advance(2_000);
    n.send(asker, &["WHOWAS guest"]);
    assert_eq!(numerics(&n.lines(asker)), ["314", "312", "369"]);
}

#[test]
fn the_server_name_is_the_configured_one_everywhere() {
    let mut n = Net::with(Config {
        secret_seed: [3; 32],
        irc_server_name: crate::hub::ServerName::new("My.Little.Server").unwrap(),
        ..Config::default()
    });
    let c = n.irc();
    n.send(c, &["NICK foo", "USER foo * * :foo"]);
    let l = n.lines(c);
    assert!(
        l.iter()
            .all(|l| l.starts_with(":My.Little.Server ") || l.starts_with(":foo!")),
        "{l:?}"
    );
    assert!(find(&l, " 004 ").starts_with(":My.Little.Server 004 foo My.Little.Server "));
    assert!(find(&l, " 375 ").contains("- My.Little.Server Message of the day -"));
    n.advance(3_000);
    n.send(c, &["PING abc", "TIME", "WHOIS foo", "VERSION"]);
    let l = n.lines(c);
    assert_eq!(l[0], ":My.Little.Server PONG My.Little.Server :abc");
    assert!(find(&l, " 391 ").starts_with(":My.Little.Server 391 foo My.Little.Server :"));
    assert!(find(&l, " 312 ").starts_with(":My.Little.Server 312 foo foo My.Little.Server :"));
    assert!(find(&l, " 351 ").contains(" My.Little.Server :"));
    // A name that is no hostname is refused with words naming the key.
    for bad in ["", "has space", "-x.y", "a..b", "ünï.code", &"a".repeat(64)] {
        let e = crate::hub::ServerName::new(bad).unwrap_err();
        assert!(e.to_string().starts_with("[irc] server_name = "), "{e}");
    }
    assert_eq!(crate::hub::ServerName::default().as_str(), "natter.irc");
}

#[test]
fn the_user_name_is_kept_in_the_irc_state_only() {
    use crate::hub::dialect::AnyDialect;
    // Every connection holds an `AnyDialect`: an IRC client's `USER` lives behind its box, so a
    // binary or nc connection does not grow (issue 22's idle memory).
    assert_eq!(core::mem::size_of::<crate::hub::dialect::Irc>(), 16);
    assert!(core::mem::size_of::<AnyDialect>() <= 48);
}

#[test]
fn whox_answers_the_fields_asked_in_whox_order_with_the_token_and_account() {
    let mut n = Net::new();
    let cool = with_user(&mut n, "coolNick", "myusernam", "My UniqueReal Name");
    n.send(cool, &["JOIN #chan"]);
    let alice = registered(&mut n, "alice");
    n.send_bin(
        alice,
        &ClientMsg::Join {
            room: room("#chan"),
        },
    );
    let other = n.client("other", &[]);
    n.send(other, &["JOIN #chan"]);
    n.advance(3_000);
    n.lines(other);

    for fields in ["%tcuihsnfdlaor,123", "%roaldfnshiuct,123"] {
        n.advance(2_000);
        n.send(other, &[&format!("WHO coolNick {fields}")]);
        assert_eq!(
            n.lines(other),
            [
                ":natter.irc 354 other 123 #chan coolNick 255.255.255.255 natter natter.irc \
                 coolNick H 0 0 0 n/a :My UniqueReal Name",
                ":natter.irc 315 other coolNick :End of WHO list",
            ]
        );
    }
    n.advance(2_000);
    n.send(
        other,
        &[
            "WHO coolNick %tn,321",
            "WHO coolNick %n,bad",
            "WHO #chan %cna",
        ],
    );
    let l = n.lines(other);
    assert_eq!(l[0], ":natter.irc 354 other 321 :coolNick");
    // A token that is not 1-3 digits is none; not asked for, it is not shown.
    assert_eq!(l[2], ":natter.irc 354 other :coolNick");
    // A signed-in user's account; `0` for none.
    assert!(
        l.contains(&":natter.irc 354 other #chan alice :alice".to_owned()),
        "{l:?}"
    );
    assert!(
        l.contains(&":natter.irc 354 other #chan coolNick :0".to_owned()),
        "{l:?}"
    );
    // Flags before the fields: `o`, server admins only.
    n.advance(2_000);
    n.send(other, &["WHO * o%n"]);
    assert_eq!(n.lines(other), [":natter.irc 315 other * :End of WHO list"]);
}

/// `INVITE` from a member of a channel nobody runs works as on IRC servers (`341`, and the
/// invited reads `INVITE`; irctest's `testInvite[False]`), and `443` for someone in it already.
/// (An invite-only room's invitations are its operators': `hub::tests::moderation`.)
#[test]
fn a_member_invites_to_an_open_channel_and_443_for_one_in_it_already() {
    let mut n = Net::new();
    let a = n.client("amy", &[]);
    let b = n.client("ben", &[]);
    n.send(a, &["JOIN #open"]);
    n.lines(a);
    n.lines(b);
    n.send(a, &["INVITE ben #open"]);
    assert_eq!(n.lines(a), [":natter.irc 341 amy ben #open"]);
    assert_eq!(n.lines(b), [":amy!amy@natter INVITE ben #open"]);
    // In a channel ben is in already: 443.
    n.send(b, &["JOIN #open"]);
    n.lines(b);
    n.lines(a);
    n.send(a, &["INVITE ben #open"]);
    assert_eq!(numerics(&n.lines(a)), ["443"]);
}

/// IRCv3 `invite-notify` was not offered: an invitation reached the invited alone. It is now,
/// and another member's `INVITE` reaches the members with the capability who may invite
/// themselves: every member of a channel that is not `+i`, its operators when it is. Not the
/// inviter (who has its `341`), not a member without the capability; `account-tag` as on the
/// inviter's other lines.
#[test]
fn invite_notify_tells_the_members_who_may_invite_themselves() {
    let mut n = Net::new();
    let amy = n.client("amy", &["invite-notify"]);
    let ben = n.client("ben", &["invite-notify"]);
    let cid = n.client("cid", &[]);
    let eve = n.client("eve", &[]);
    for c in [amy, ben, cid] {
        n.send(c, &["JOIN #open"]);
    }
    n.advance(1_000);
    for c in [amy, ben, cid, eve] {
        n.lines(c);
    }
    n.send(amy, &["INVITE eve #open"]);
    assert_eq!(n.lines(amy), [":natter.irc 341 amy eve #open"]);
    assert_eq!(n.lines(ben), [":amy!amy@natter INVITE eve #open"]);
    assert_eq!(n.lines(cid), Vec::<String>::new());
    assert_eq!(n.lines(eve), [":amy!amy@natter INVITE eve #open"]);

    // An invite-only channel: its operators hear of it, not ben.
    let (_a, c, _b) = founder_and_guest(&mut n);
    registered(&mut n, "pat");
    let (pat, _) = sasl_client(&mut n, "pat", "invite-notify account-tag");
    n.send(pat, &["JOIN #r"]);
    n.send(ben, &["JOIN #r"]);
    n.advance(1_000);
    n.send(c, &["MODE #r +o pat", "MODE #r +i"]);
    n.advance(1_000);
    for x in [c, pat, ben, eve] {
        n.lines(x);
    }
    n.send(c, &["INVITE eve #r"]);
    assert_eq!(numerics(&n.lines(c)), ["341"]);
    // From a signed-in inviter, with `account-tag`: its account, as on its other lines.
    assert_eq!(
        n.lines(pat),
        ["@account=alice :alice!alice@natter INVITE eve #r"]
    );
    assert_eq!(n.lines(ben), Vec::<String>::new());
    assert_eq!(n.lines(eve), [":alice!alice@natter INVITE eve #r"]);
}

/// A client that monitors its own nick (irssi's and WeeChat's nick-recovery scripts do) and
/// quits gets its `ERROR` and nothing after or about itself: the hub closes its link first, as
/// IRC servers do, and then tells the others. Until this review it read `731` of its own nick
/// just before its `ERROR`. The same for a killed one.
#[test]
fn a_quitter_that_monitors_itself_gets_its_error_and_nothing_about_itself() {
    let mut n = with_admin_alice();
    registered(&mut n, "alice");
    let (a, _) = sasl_client(&mut n, "alice", "");
    let amy = n.client("amy", &[]);
    let bob = n.client("bob", &[]);
    n.send(amy, &["MONITOR + amy,bob", "JOIN #m"]);
    n.send(bob, &["MONITOR + amy", "JOIN #m"]);
    n.advance(1_000);
    n.settle(&[amy, bob, a]);
    n.send(amy, &["QUIT :bye"]);
    let l = n.lines(amy);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(l[0].starts_with("ERROR :"), "{l:?}");
    assert!(n.closed(amy));
    let l = n.lines(bob);
    assert!(l.contains(&":natter.irc 731 bob :amy".to_owned()), "{l:?}");
    assert!(
        l.iter().any(|l| l.starts_with(":amy!amy@natter QUIT ")),
        "{l:?}"
    );
    // A killed user that monitors itself: its ERROR is its last line, and no 731 of itself.
    let cat = n.client("cat", &[]);
    n.send(cat, &["MONITOR + cat,bob"]);
    n.advance(1_000);
    n.settle(&[cat, bob]);
    n.send(a, &["KILL cat :spam"]);
    n.advance(1_000);
    let l = n.lines(cat);
    assert!(!l.iter().any(|l| l.contains(" 731 ")), "{l:?}");
    assert!(l.last().is_some_and(|l| l.starts_with("ERROR :")), "{l:?}");
    assert_eq!(n.lines(bob), Vec::<String>::new());
    // And its list went with it: bob's next quit reaches nobody's MONITOR.
    n.send(bob, &["QUIT"]);
    assert!(n.hub.monitors.is_empty());
}

/// IRCv3 `MONITOR`: `730`/`731` for the nicks asked about, then as they come and go (a
/// connection, a nick change, a quit; not a change of case), `L`, `-`, `C`, `S`, a full list
/// (`734`), and a connection's list goes with it.
#[test]
fn monitor_tells_of_watched_nicks_as_they_come_and_go() {
    let mut n = Net::new();
    let a = n.irc();
    n.send(a, &["NICK amy", "USER a 0 * :Amy"]);
    let l = n.lines(a);
    assert!(find(&l, " 005 ").contains(" MONITOR=100 "), "{l:?}");
    let b = n.client("bob", &[]);
    n.lines(a);
    // A mask is no nick: left out.
    n.send(a, &["MONITOR + bob,Cat,*!x@y"]);
    assert_eq!(
        n.lines(a),
        [
            ":natter.irc 730 amy :bob!bob@natter",
            ":natter.irc 731 amy :Cat"
        ]
    );
    // Someone takes the nick (here a binary client): told, as its user has it.
    let c = n.bin("cat");
    assert_eq!(n.lines(a), [":natter.irc 730 amy :cat!cat@natter"]);
    // A change of case is the same nick: nothing. A change of nick: gone.
    n.send(b, &["NICK Bob"]);
    n.lines(b);
    assert_eq!(n.lines(a), Vec::<String>::new());
    n.send_bin(
        c,
        &ClientMsg::Nick {
            nick: Nick::new("dog").unwrap(),
        },
    );
    // Given up: as its user had it (irctest's `testNickChange`).
    assert_eq!(n.lines(a), [":natter.irc 731 amy :cat"]);
    n.send(b, &["QUIT :bye"]);
    assert_eq!(n.lines(a), [":natter.irc 731 amy :Bob"]);

    n.send(a, &["MONITOR L", "MONITOR - BOB", "MONITOR L", "MONITOR S"]);
    assert_eq!(
        n.lines(a),
        [
            ":natter.irc 732 amy :bob,Cat",
            ":natter.irc 733 amy :End of MONITOR list",
            ":natter.irc 732 amy :Cat",
            ":natter.irc 733 amy :End of MONITOR list",
            ":natter.irc 731 amy :Cat",
        ]
    );
    n.send(a, &["MONITOR C", "MONITOR L", "MONITOR", "MONITOR x"]);
    assert_eq!(
        n.lines(a),
        [
            ":natter.irc 733 amy :End of MONITOR list",
            ":natter.irc 461 amy MONITOR :Not enough parameters",
            ":natter.irc 461 amy MONITOR :Not enough parameters",
        ]
    );
    assert_eq!(n.hub.monitors.watched(), 0);

    // Full: what fits is told, the rest is 734.
    let many: Vec<String> = (0..102).map(|i| format!("n{i}")).collect();
    n.advance(10_000);
    n.send(a, &[&format!("MONITOR + {}", many[..60].join(","))]);
    let l = n.lines(a);
    assert_eq!(numerics(&l), ["731"], "{l:?}");
    n.advance(10_000);
    n.send(a, &[&format!("MONITOR + {}", many[60..].join(","))]);
    let l = n.lines(a);
    assert_eq!(numerics(&l), ["731", "734"], "{l:?}");
    assert!(
        l[1].ends_with(" 734 amy 100 n100,n101 :Monitor list is full."),
        "{l:?}"
    );
    assert_eq!(n.hub.monitors.watched(), 100);
    // The connection's end takes its list.
    n.hub.handle_close(a, n.now);
    n.pump();
    assert_eq!(n.hub.monitors.watched(), 0);
}

/// A direct CTCP ACTION (irssi's `/me` in a query) reaches an IRC user as the ACTION it was
/// and natter's clients as the direct action `* nick action` (`DirectMsg::action`), which
/// they show as an action; natter's own `/me` in a direct conversation reaches IRC as ACTION.
#[test]
fn a_direct_action_is_an_action_on_irc_both_ways() {
    let mut n = Net::new();
    let a = n.client("amy", &[]);
    let i = n.client("ida", &[]);
    let b = n.bin("bob");
    n.send(a, &["PRIVMSG ida,bob :\x01ACTION waves\x01"]);
    assert_eq!(
        n.lines(i),
        [":amy!amy@natter PRIVMSG ida :\x01ACTION waves\x01"]
    );
    let got = n.recv(b);
    assert!(
        got.iter().any(|m| matches!(m, ServerMsg::Direct(dm)
            if dm.text.as_str() == "* amy waves" && dm.action() == Some("waves"))),
        "{got:?}"
    );
    n.send_bin(
        b,
        &ClientMsg::Msg {
            to: Nick::new("amy").unwrap(),
            id: crate::types::MsgId(1),
            text: text("* bob waves back"),
        },
    );
    assert_eq!(
        n.lines(a),
        [":bob!bob@natter PRIVMSG amy :\x01ACTION waves back\x01"]
    );
}

/// An account the operator removes while its user is on IRC: `901` (logged out), and the user
/// stays under its nick as a guest.
#[test]
fn an_irc_user_whose_account_the_operator_removes_is_logged_out() {
    let mut n = Net::new();
    registered(&mut n, "alice");
    let (a, _) = sasl_client(&mut n, "alice", "");
    n.lines(a);
    n.hub.load_accounts(Vec::new());
    n.pump();
    assert_eq!(
        n.lines(a),
        [":natter.irc 901 alice alice!alice@natter :You are now logged out"]
    );
    n.send(a, &["PING x"]);
    assert_eq!(n.lines(a), [":natter.irc PONG natter.irc :x"]);
}

/// The `MODE -rov` the server adds after a founder's account removal carries no msgid: the
/// event's names its `NOTICE` alone (as after `+r` and a take-over; see
/// `the_servers_plus_o_after_a_registration_or_takeover_repeats_no_msgid`).
#[test]
fn the_servers_minus_ov_after_an_account_removal_repeats_no_msgid() {
    let mut n = Net::new();
    registered(&mut n, "alice");
    let (a, _) = sasl_client(&mut n, "alice", "");
    n.send(a, &["JOIN #r", "MODE #r +r"]);
    let b = n.client("bob", &["message-tags"]);
    n.send(b, &["JOIN #r"]);
    n.lines(a);
    n.lines(b);
    n.hub.load_accounts(Vec::new());
    n.pump();
    let l = n.lines(b);
    assert_eq!(l.len(), 2, "{l:?}");
    assert!(
        l[0].contains("msgid=") && l[0].contains(" NOTICE #r :*** the account alice was removed"),
        "{l:?}"
    );
    assert_eq!(l[1], ":natter.irc MODE #r -rov alice alice", "{l:?}");
}

/// The founder's account removed by the operator: the channel's IRC members are told in
/// words from the server, and nick lists lose its `@` (and `+`); the channel stays, with no
/// founder, and the name registered anew is no operator of it.
#[test]
fn a_removed_founder_is_told_to_irc_members_and_loses_its_at() {
    let mut n = Net::new();
    let first = registered(&mut n, "alice");
    let (a, _) = sasl_client(&mut n, "alice", "");
    n.send(a, &["JOIN #r", "MODE #r +r"]);
    let b = n.client("bob", &[]);
    n.send(b, &["JOIN #r"]);
    n.lines(a);
    n.lines(b);
    n.hub.load_accounts(Vec::new());
    n.pump();
    assert_eq!(
        n.lines(b),
        [
            ":natter.irc NOTICE #r :*** the account alice was removed: #r has no founder now",
            // `-r`: the channel is registered no longer, as `MODE #r` now answers.
            ":natter.irc MODE #r -rov alice alice",
        ]
    );
    n.send(b, &["MODE #r"]);
    let l = n.lines(b);
    assert!(
        l.iter().any(|x| x.contains(" 324 ")
            && x.split(' ')
                .nth(4)
                .is_some_and(|m| m.starts_with('+') && !m.contains('r'))),
        "{l:?}"
    );
    // alice's devices go (guests now); a newcomer registers the name.
    n.send(a, &["QUIT"]);
    n.send_bin(first, &ClientMsg::Quit { reason: None });
    n.pump();
    n.lines(b);
    registered(&mut n, "alice");
    let (c, _) = sasl_client(&mut n, "alice", "");
    n.send(c, &["JOIN #r"]);
    n.lines(c);
    n.send(c, &["MODE #r +o alice", "NAMES #r"]);
    let l = n.lines(c);
    assert!(l[0].contains(" 482 "), "{l:?}");
    assert!(
        l.iter().any(|x| x.contains(" 353 ")) && !l.iter().any(|x| x.contains("@alice")),
        "alice is no operator: {l:?}"
    );
}

/// `WHO nick` names a channel of the user's the asker may see, as solanum, ergo and InspIRCd
/// answer: one they share first, else any (natter has no secret channels) unless the user is
/// `+i`; `*` when there is none. Its flags carry the user's standing there.
#[test]
fn who_of_a_nick_names_a_channel_the_asker_can_see() {
    let mut n = Net::new();
    let a = n.client("asker", &[]);
    let b = n.client("bob", &[]);
    n.send(a, &["WHO bob"]);
    assert_eq!(
        n.lines(a)[0],
        ":natter.irc 352 asker * bob natter natter.irc bob H :0 Real Name"
    );
    // In a channel the asker is not in: that one (it is no secret).
    n.send(b, &["JOIN #zeta"]);
    n.send(a, &["WHO bob", "WHO bob %tcn,7"]);
    let l = n.lines(a);
    assert_eq!(
        l[0],
        ":natter.irc 352 asker #zeta bob natter natter.irc bob H :0 Real Name"
    );
    assert_eq!(l[2], ":natter.irc 354 asker 7 #zeta :bob");
    // One they share comes first.
    n.send(b, &["JOIN #alpha,#mid"]);
    n.send(a, &["JOIN #mid"]);
    n.lines(a);
    n.send(a, &["WHO bob"]);
    assert!(n.lines(a)[0].contains(" 352 asker #mid bob "));
    // An invisible user shows only a channel shared with the asker, else `*`.
    n.send(b, &["MODE bob +i"]);
    n.send(a, &["PART #mid", "WHO bob"]);
    let l = n.lines(a);
    assert!(l.iter().any(|l| l.contains(" 352 asker * bob ")), "{l:?}");
    // The asker itself: its own channel.
    n.send(a, &["JOIN #mid", "WHO asker"]);
    let l = n.lines(a);
    assert!(
        l.iter()
            .any(|l| l.contains(" 352 asker #mid asker natter natter.irc asker H ")),
        "{l:?}"
    );
}

/// WHOIS's `317` (idle seconds, sign-on) for every door's users, not IRC's alone: a user of
/// natter's client and an nc user get it, counted from their last message.
#[test]
fn whois_tells_idle_time_of_users_on_every_door() {
    let mut n = Net::new();
    let w = n.client("watcher", &[]);
    let b = n.bin_in_lobby("binuser");
    let (_t, tn) = n.nc();
    n.advance(10_000);
    n.send(w, &["WHOIS binuser"]);
    let l = n.lines(w);
    assert_eq!(numerics(&l), ["311", "319", "312", "317", "318"], "{l:?}");
    let idle: Vec<String> = find(&l, " 317 ").split(' ').map(str::to_owned).collect();
    let (secs, signon) = (idle[4].parse::<u64>().unwrap(), idle[5].clone());
    assert!((10..20).contains(&secs), "{l:?}");
    n.send_bin(
        b,
        &ClientMsg::Say {
            room: room("#lobby"),
            id: crate::types::MsgId(1),
            text: text("hi"),
        },
    );
    n.advance(1_000);
    n.send(w, &["WHOIS binuser", &format!("WHOIS {tn}")]);
    let l = n.lines(w);
    assert_eq!(
        find(&l, " 317 watcher binuser "),
        format!(":natter.irc 317 watcher binuser 1 {signon} :seconds idle, signon time")
    );
    assert!(
        find(&l, &format!(" 317 watcher {tn} ")).contains(":seconds idle"),
        "{l:?}"
    );
}

/// IRCv3 `setname`: offered, `SETNAME` changes the real name WHO and WHOIS show, the change
/// comes back to the sender and to co-members that asked for `setname` (not to others), and a
/// real name of nothing is `FAIL SETNAME INVALID_REALNAME`.
#[test]
fn setname_changes_the_real_name_and_tells_who_asked() {
    let mut n = Net::new();
    let c = n.irc();
    n.send(c, &["CAP LS 302"]);
    let ls = n.lines(c).concat();
    assert!(
        ls.contains(" setname ") && ls.contains(" extended-monitor "),
        "{ls}"
    );
    n.send(
        c,
        &[
            "NICK alice",
            "USER u 0 * :Old Name",
            "CAP REQ :setname",
            "CAP END",
        ],
    );
    n.advance(3_000);
    n.lines(c);
    let s = n.client("seer", &["setname"]);
    let p = n.client("plain", &[]);
    let far = n.client("far", &["setname"]);
    for x in [c, s, p] {
        n.send(x, &["JOIN #x"]);
    }
    n.settle(&[c, s, p, far]);
    n.send(c, &["SETNAME :New \x02Name\x02"]);
    let line = ":alice!alice@natter SETNAME :New Name";
    assert_eq!(n.lines(c), [line]);
    assert_eq!(n.lines(s), [line]);
    assert!(n.lines(p).is_empty());
    assert!(n.lines(far).is_empty(), "shares no channel");
    n.send(p, &["WHOIS alice", "WHO alice"]);
    let l = n.lines(p);
    assert!(find(&l, " 311 ").ends_with(" * :New Name"), "{l:?}");
    assert!(find(&l, " 352 ").ends_with(" :0 New Name"), "{l:?}");
    n.send(c, &["SETNAME :", "SETNAME :\x02\x02"]);
    let fail = ":natter.irc FAIL SETNAME INVALID_REALNAME :Realname is not valid";
    assert_eq!(n.lines(c), [fail, fail]);
    // Without the capability: changed silently.
    n.send(p, &["SETNAME :Plain Person"]);
    assert!(n.lines(p).is_empty());
    assert_eq!(n.lines(s), [":plain!plain@natter SETNAME :Plain Person"]);
}

/// natter's chat model has no real names (its member lists, `/whois` and nc's lines show
/// none), so an IRC co-member's `SETNAME` is nothing its own clients or nc users could show:
/// they hear nothing of it, as IRC clients without `setname` do (decided in the thirty-second
/// session's audit; PROTOCOL.md's `SETNAME` row). A co-member's message after it comes through
/// as usual.
#[test]
fn setname_is_not_told_to_natters_own_clients_or_nc() {
    let mut n = Net::new();
    let c = n.irc_in_lobby("ircer");
    let b = n.bin_in_lobby("binary");
    let (t, _) = n.nc();
    n.settle(&[c, b, t]);
    n.recv(b);
    n.send(c, &["SETNAME :A New Name", "PRIVMSG #lobby :after"]);
    let got = n.recv(b);
    assert!(
        matches!(&got[..], [ServerMsg::Event(e)] if matches!(&e.kind, EventKind::Say { text, .. } if text.as_str() == "after")),
        "{got:?}"
    );
    let l = n.lines(t);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].contains("after") && !l[0].contains("New Name"),
        "{l:?}"
    );
}

/// IRCv3 `extended-monitor`: a monitored nick the watcher shares no channel with still tells
/// it its `AWAY` (with away-notify), `SETNAME` (with setname) and `ACCOUNT` changes; a watcher
/// without extended-monitor hears only `730`/`731`.
#[test]
fn extended_monitor_tells_away_and_setname_of_monitored_nicks() {
    let mut n = Net::new();
    let x = n.client("ext", &["extended-monitor", "away-notify", "setname"]);
    let m = n.client("mon", &["away-notify", "setname"]);
    let t = n.client("target", &["setname"]);
    n.send(x, &["MONITOR + target"]);
    n.send(m, &["MONITOR + target"]);
    n.lines(x);
    n.lines(m);
    n.send(t, &["AWAY :lunch", "SETNAME :T Name", "AWAY"]);
    assert_eq!(
        n.lines(x),
        [
            ":target!target@natter AWAY :lunch",
            ":target!target@natter SETNAME :T Name",
            ":target!target@natter AWAY",
        ]
    );
    assert!(n.lines(m).is_empty());
    // Sharing a channel: told once, not twice.
    n.send(x, &["JOIN #c"]);
    n.send(t, &["JOIN #c"]);
    n.settle(&[x, t]);
    n.send(t, &["AWAY :again"]);
    assert_eq!(n.lines(x), [":target!target@natter AWAY :again"]);
}

/// A page user through a bridge that reaches the server over TLS (`--server-tls`) is not said
/// to be on a secure connection (`671`): the browser's side of the bridge is not known. A
/// natter client over TLS is.
#[test]
fn whois_says_tls_only_of_what_the_server_knows() {
    let mut n = Net::with(Config {
        bridge_secret: Some(crate::hub::config::BridgeSecret::new(TEST_BRIDGE_SECRET).unwrap()),
        ..Config::default()
    });
    let w = n.client("watcher", &[]);
    for (bridged, want) in [(true, "paged"), (false, "tlsbin")] {
        let c = n.hub.accept_handshaken(Door::Natter, LOCAL, n.now).unwrap();
        n.feed(c, &MAGIC);
        if bridged {
            n.send_bin(
                c,
                &ClientMsg::Forwarded {
                    peer: "198.51.100.7".into(),
                    secret: TEST_BRIDGE_SECRET.into(),
                },
            );
        }
        n.send_bin(
            c,
            &ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                nick: nick(want),
                resume: None,
            },
        );
        assert!(matches!(n.recv(c)[..], [ServerMsg::Welcome { .. }]));
    }
    n.send(w, &["WHOIS paged"]);
    assert_eq!(numerics(&n.lines(w)), ["311", "312", "317", "318"]);
    n.send(w, &["WHOIS tlsbin"]);
    assert_eq!(numerics(&n.lines(w)), ["311", "312", "671", "317", "318"]);
}

/// QA: in irssi against a server with a store, a line typed right after `/join` showed above
/// its JOIN. irssi prints its own lines itself (it asks no echo-message) in the window it opens
/// at `/join`, before the server's JOIN comes: the server's order was right. Held here: while
/// the store's page of what an account missed is read, a JOIN and a PRIVMSG sent in one write
/// are answered in order: the new room's JOIN at once, the echo of the line after the missed
/// lines it follows, and the other member hears the line once, live.
#[test]
fn a_join_and_a_line_sent_while_the_store_page_is_read_come_back_in_order() {
    let mut n = store_net();
    let a = registered(&mut n, "alice");
    n.send_bin(a, &ClientMsg::Join { room: room("#x") });
    let caps = "server-time batch message-tags echo-message";
    let (c, _) = sasl_client(&mut n, "alice", caps);
    n.send(c, &["QUIT :bye"]);
    n.lines(c);
    n.advance(1_000);
    let b = n.bin("bob");
    n.send_bin(b, &ClientMsg::Join { room: room("#x") });
    said_lines(&mut n, b, "#x", 30);
    n.advance(1_000);
    n.hold_reads = true;
    let (c, mut l) = sasl_client(&mut n, "alice", caps);
    n.recv(b);
    n.send(c, &["JOIN #y", "PRIVMSG #x :hello from irssi"]);
    l.extend(n.lines(c));
    assert!(
        !l.iter().any(|x| x.contains("hello from irssi")),
        "the echo waits behind the missed lines: {l:?}"
    );
    n.hold_reads = false;
    n.answer_held();
    n.advance(1_000);
    l.extend(n.lines(c));
    let join_y = l
        .iter()
        .position(|x| x.contains(" JOIN #y"))
        .expect("JOIN #y");
    let echo = l
        .iter()
        .position(|x| x.contains("PRIVMSG #x :hello from irssi"))
        .expect("the echo");
    let last_missed = l
        .iter()
        .rposition(|x| x.contains("PRIVMSG #x :line 30"))
        .expect("the missed lines");
    assert!(join_y < echo && last_missed < echo, "{l:?}");
    let mut want: Vec<String> = (1..=30).map(|i| format!("line {i}")).collect();
    want.push("hello from irssi".into());
    assert_eq!(privmsg_texts(&l), want, "{l:?}");
    batches_balanced(&l);
    let heard = format!("{:?}", n.recv(b));
    assert_eq!(heard.matches("hello from irssi").count(), 1, "{heard}");
}

/// `INVITE` with no parameters lists the invitations the user holds and has not used, one
/// `336` a channel, then `337` (modern.ircdocs.horse); it was `461` before.
#[test]
fn invite_alone_lists_the_users_unused_invitations() {
    let mut n = Net::new();
    let a = n.client("alice", &[]);
    let b = n.client("bob", &[]);
    n.send(b, &["INVITE"]);
    assert_eq!(
        n.lines(b),
        [":natter.irc 337 bob :End of /INVITE list"],
        "none yet"
    );
    n.send(a, &["JOIN #secret", "JOIN #open", "MODE #secret +i"]);
    n.advance(1_000);
    n.send(a, &["INVITE bob #secret", "INVITE bob #open"]);
    n.advance(1_000);
    n.lines(a);
    n.lines(b);
    n.send(b, &["INVITE"]);
    assert_eq!(
        n.lines(b),
        [
            ":natter.irc 336 bob :#open",
            ":natter.irc 336 bob :#secret",
            ":natter.irc 337 bob :End of /INVITE list",
        ]
    );
    // Used by the join: no longer listed; nobody else holds bob's.
    n.send(b, &["JOIN #secret"]);
    n.advance(1_000);
    n.lines(a);
    n.lines(b);
    n.send(b, &["INVITE"]);
    assert_eq!(
        n.lines(b),
        [
            ":natter.irc 336 bob :#open",
            ":natter.irc 337 bob :End of /INVITE list",
        ]
    );
    n.send(a, &["INVITE"]);
    assert_eq!(n.lines(a), [":natter.irc 337 alice :End of /INVITE list"]);
    // A nick and no channel is still too few.
    n.send(b, &["INVITE alice"]);
    assert_eq!(numerics(&n.lines(b)), ["461"]);
}

/// An account on an IRC client and on natter's client is one person, away on both: the IRC
/// connection signing in while the account is away is told `306`, `/back` on the natter
/// client is `305` there, and the IRC client's `AWAY` is the natter client's `Away` of its own
/// nick. Only the connection that asked was told: the other door showed its user as here.
#[test]
fn away_is_said_on_every_door_of_an_account() {
    let mut n = Net::new();
    let a = registered(&mut n, "alice");
    n.send_bin(a, &ClientMsg::Away(Some(text("lunch"))));
    n.recv(a);
    let (c, l) = sasl_client(&mut n, "alice", "");
    assert!(
        l.iter().any(|l| l.starts_with(":natter.irc 306 alice ")),
        "{l:?}"
    );
    n.send_bin(a, &ClientMsg::Away(None));
    let l = n.lines(c);
    assert!(
        l.iter().any(|l| l.starts_with(":natter.irc 305 alice ")),
        "{l:?}"
    );
    n.send(c, &["AWAY :on the phone"]);
    let got = n.recv(a);
    assert!(
        got.iter().any(|m| matches!(m,
            ServerMsg::Away { nick, away: Some(t) }
                if nick.as_str() == "alice" && t.as_str() == "on the phone")),
        "{got:?}"
    );
}

/// A numeric that echoes a name the client gave (a refused nick, an unknown channel or target)
/// fits its 512-byte line however long the name was, and shows none of the characters
/// `sanitize` would change; so do `PONG` and `CAP NAK`. Found by the thirty-first session's
/// attack pass: `NICK` with 490 letters was answered with a 568-byte `432` (and `JOIN`,
/// `WHOIS`, `PRIVMSG` likewise, up to 571 bytes; a long `PING` with a 529-byte `PONG`: lines IRC
/// clients may refuse), and `NICK \u{202e}q` echoed the bidi override raw.
#[test]
fn numerics_echo_what_a_client_named_within_the_line_and_without_invisible_characters() {
    let mut n = Net::new();
    let c = n.irc();
    let long = "n".repeat(490);
    n.feed(c, format!("NICK {long}\r\n").as_bytes());
    let l = n.said(c);
    assert!(l.iter().any(|l| numeric(l) == Some("432")), "{l:?}");
    n.feed(c, "NICK \u{202e}q\u{200b}\u{2028}r\r\n".as_bytes());
    let l = n.said(c);
    let shown = l.iter().find(|l| numeric(l) == Some("432")).unwrap();
    assert!(shown.starts_with(":natter.irc 432 * qr :"), "{shown:?}");
    n.feed(c, b"NICK ann\r\nUSER a 0 * :Ann\r\n");
    n.said(c);
    let channel = format!("#{}", "c".repeat(490));
    let target = "q".repeat(480);
    for line in [
        format!("JOIN {channel}"),
        format!("MODE {channel}"),
        format!("TOPIC {channel}"),
        format!("WHOIS {target}"),
        format!("PRIVMSG {target} :hi"),
        format!("KICK #{} {} :x", "a".repeat(240), "b".repeat(240)),
        format!("INVITE {} #{}", "a".repeat(250), "b".repeat(240)),
        // Not numerics, but echoes too (529 and 515 bytes before).
        format!("PING :{}", "p".repeat(500)),
        format!("CAP REQ :{}", "x".repeat(490)),
    ] {
        n.feed(c, format!("{line}\r\n").as_bytes());
        n.advance(1_000); // out of flood control's way
        let l = n.said(c);
        assert!(!l.is_empty(), "{line:.20}: no answer");
        assert!(
            l.iter().all(|l| !l.contains('\u{202e}')),
            "{line:.20}: {l:?}"
        );
    }
    assert!(!n.closed(c));
}

/// With server-time, the user's own `JOIN`, `PART` and `NICK` lines carry `time`, as everyone
/// else's (and its own PRIVMSG echo) do; without it, they carry none.
#[test]
fn own_join_part_and_nick_carry_time_with_server_time() {
    let mut n = Net::new();
    let t = n.client("timed", &["server-time"]);
    let p = n.client("plain", &[]);
    n.send(t, &["JOIN #t"]);
    let l = n.lines(t);
    assert!(
        l[0].starts_with("@time=2024-") && l[0].ends_with(" :timed!timed@natter JOIN #t"),
        "{l:?}"
    );
    n.send(p, &["JOIN #t"]);
    assert_eq!(n.lines(p)[0], ":plain!plain@natter JOIN #t");
    let l = n.lines(t);
    assert!(l[0].starts_with("@time=2024-"), "another's join: {l:?}");
    n.send(t, &["PART #t :bye"]);
    let l = n.lines(t);
    assert!(
        l[0].starts_with("@time=2024-") && l[0].ends_with(" :timed!timed@natter PART #t :bye"),
        "{l:?}"
    );
    assert_eq!(n.lines(p), [":timed!timed@natter PART #t :bye"]);
    n.send(p, &["PART #t"]);
    assert_eq!(n.lines(p), [":plain!plain@natter PART #t"]);
    // Its own nick change (without echo-message: the answer to its NICK) too.
    n.send(t, &["NICK timed2"]);
    let l = n.lines(t);
    assert!(
        l[0].starts_with("@time=2024-") && l[0].ends_with(" :timed!timed@natter NICK :timed2"),
        "{l:?}"
    );
    n.send(p, &["NICK plain2"]);
    assert_eq!(n.lines(p), [":plain!plain@natter NICK :plain2"]);
}

/// A labeled JOIN's batch holds the JOIN with both its batch and its time.
#[test]
fn a_labeled_own_join_carries_its_batch_and_time() {
    let mut n = Net::new();
    let c = n.client("lab", &["server-time", "batch", "labeled-response"]);
    n.send(c, &["@label=j1 JOIN #lab"]);
    let l = n.lines(c);
    assert!(l[0].starts_with("@label=j1 :natter.irc BATCH +"), "{l:?}");
    assert!(
        l[1].starts_with("@batch=") && l[1].contains(";time=2024-"),
        "{l:?}"
    );
    assert!(l[1].ends_with(" :lab!lab@natter JOIN #lab"), "{l:?}");
}

/// A `NOTICE` that is not UTF-8 gets no error (no reply to a notice, from servers either:
/// RFC 2812 3.3.2, the Modern IRC document), a labeled one its `ACK`; a labeled PRIVMSG's
/// `FAIL` carries its label.
#[test]
fn a_non_utf8_notice_gets_no_fail_and_a_labeled_fail_carries_its_label() {
    let mut n = Net::new();
    let c = n.client("u8", &["batch", "labeled-response"]);
    n.send(c, &["JOIN #u"]);
    n.lines(c);
    n.feed(c, b"NOTICE #u :caf\xe9\r\nNOTICE u8 :caf\xe9\r\n");
    assert_eq!(n.lines(c), Vec::<String>::new());
    n.feed(c, b"@label=n1 NOTICE #u :caf\xe9\r\n");
    assert_eq!(n.lines(c), ["@label=n1 :natter.irc ACK"]);
    n.feed(c, b"@label=p1 PRIVMSG #u :caf\xe9\r\n");
    assert_eq!(
        n.lines(c),
        [
            "@label=p1 :natter.irc FAIL PRIVMSG INVALID_UTF8 :Message rejected: natter takes UTF-8 \
          only"
        ]
    );
    // A client without labeled-response gets no label.
    let d = n.client("plain", &[]);
    n.feed(d, b"@label=p2 PRIVMSG #u :caf\xe9\r\n");
    assert_eq!(
        n.lines(d),
        [":natter.irc FAIL PRIVMSG INVALID_UTF8 :Message rejected: natter takes UTF-8 only"]
    );
    assert!(!n.closed(c) && !n.closed(d));
}

/// `LIST`'s ELIST conditions (`ELIST=MNU` in ISUPPORT): `>N` and `<N` members, name globs and
/// their negations, several at once and with channel names.
#[test]
fn list_filters_by_member_count_and_name_globs() {
    let mut n = Net::new();
    let a = n.client("alice", &[]);
    let b = n.client("bob", &[]);
    let c = n.client("carol", &[]);
    n.send(a, &["JOIN #rust,#rust-beginners,#test,#big"]);
    n.send(b, &["JOIN #rust,#big"]);
    n.send(c, &["JOIN #big"]);
    n.advance(3_000);
    for x in [a, b, c] {
        n.lines(x);
    }
    let listed = |n: &mut Net, line: &str| -> Vec<String> {
        n.send(a, &[line]);
        n.advance(1_000);
        let l = n.lines(a);
        assert_eq!(l.first().map(|x| x.contains(" 321 ")), Some(true), "{l:?}");
        assert_eq!(l.last().map(|x| x.contains(" 323 ")), Some(true), "{l:?}");
        l.iter()
            .filter(|x| x.contains(" 322 "))
            .map(|x| {
                let w: Vec<&str> = x.split(' ').collect();
                format!("{}={}", w[3], w[4])
            })
            .collect()
    };
    assert_eq!(listed(&mut n, "LIST >1"), ["#big=3", "#rust=2"]);
    assert_eq!(listed(&mut n, "LIST <2"), ["#rust-beginners=1", "#test=1"]);
    assert_eq!(listed(&mut n, "LIST >1,<3"), ["#rust=2"]);
    assert_eq!(
        listed(&mut n, "LIST #RUST*"),
        ["#rust=2", "#rust-beginners=1"]
    );
    assert_eq!(listed(&mut n, "LIST !#rust*"), ["#big=3", "#test=1"]);
    assert_eq!(listed(&mut n, "LIST #rust* <2"), ["#rust-beginners=1"]);
    assert_eq!(listed(&mut n, "LIST #big,#test >2"), ["#big=3"]);
    assert_eq!(listed(&mut n, "LIST *es?"), ["#test=1"]);
    assert_eq!(listed(&mut n, "LIST >9"), Vec::<String>::new());
    // Unknown conditions (creation and topic times, junk) are ignored.
    assert_eq!(listed(&mut n, "LIST C>5,T<3,junk").len(), 4);
    // At most 4 globs are kept (each costs a walk over every room): a fifth is not read.
    assert_eq!(
        listed(&mut n, "LIST !#a*,!#c*,!#d*,!#e*,!#big"),
        ["#big=3", "#rust=2", "#rust-beginners=1", "#test=1"]
    );
    // VERSION's answer ends with the ISUPPORT tokens (Modern IRC), which offer the filters.
    n.send(a, &["VERSION"]);
    n.advance(1_000);
    let l = n.lines(a);
    assert_eq!(numerics(&l)[0], "351", "{l:?}");
    assert!(l.iter().any(|x| x.contains(" ELIST=MNU ")), "{l:?}");
}

/// `CHANLIMIT=#:20` and `TARGMAX` `JOIN:20` hold: a JOIN past the 20th channel named is `407`,
/// a join past the 20 channels one may be in is `405`, naming the channel each time.
#[test]
fn a_join_past_the_channel_limit_is_405_and_past_the_targets_407() {
    use crate::limits::MAX_ROOMS_PER_USER;
    let mut n = Net::new();
    let c = n.client("many", &[]);
    let names: Vec<String> = (0..=MAX_ROOMS_PER_USER).map(|i| format!("#m{i}")).collect();
    n.send(c, &[&format!("JOIN {}", names.join(","))]);
    n.advance(5_000);
    let l = n.lines(c);
    let joins = l.iter().filter(|x| x.contains(" JOIN #m")).count();
    assert_eq!(joins, MAX_ROOMS_PER_USER, "{l:?}");
    let last = &names[MAX_ROOMS_PER_USER];
    assert!(
        l.iter()
            .any(|x| x.starts_with(&format!(":natter.irc 407 many {last} :"))),
        "{l:?}"
    );
    n.send(c, &["JOIN #extra"]);
    n.advance(1_000);
    let l = n.lines(c);
    assert_eq!(numerics(&l), ["405"], "{l:?}");
    assert!(l[0].starts_with(":natter.irc 405 many #extra :"), "{l:?}");
    assert!(!n.closed(c));
}

/// QA saw `There are 2 users` and `1 channels formed` at the welcome of the only client on a
/// new server: an account that had signed in and left was kept always-on (its user stays, in
/// its rooms, and `NAMES` shows it), and `LUSERS` counts it and the room it holds, as ergo
/// counts an always-on client. Without always-on it is gone, and so are the counts.
#[test]
fn lusers_counts_an_always_on_account_with_nothing_connected() {
    for always_on in [true, false] {
        let mut n = Net::with(Config {
            secret_seed: [3; 32],
            accounts: AccountsConfig {
                hash_cost: crate::accounts::HashCost::TEST,
                always_on,
                ..AccountsConfig::default()
            },
            ..Config::default()
        });
        let a = registered(&mut n, "root");
        n.send_bin(a, &ClientMsg::Join { room: room("#x") });
        n.send_bin(a, &ClientMsg::Quit { reason: None });
        n.advance(1_000);
        let c = n.irc();
        n.send(c, &["NICK solo", "USER u 0 * :Solo"]);
        let l = n.lines(c);
        let (users, rooms) = if always_on { (2, 1) } else { (1, 0) };
        assert!(
            find(&l, " 251 ").ends_with(&format!(
                ":There are {users} users and 0 invisible on 1 servers"
            )),
            "{always_on}: {l:?}"
        );
        assert!(
            find(&l, " 254 ").contains(&format!(" {rooms} :channels formed")),
            "{always_on}: {l:?}"
        );
        n.send(c, &["NAMES #x"]);
        let l = n.lines(c);
        let named = l
            .iter()
            .any(|l| l.contains(" 353 ") && l.ends_with(":root"));
        assert_eq!(named, always_on, "{l:?}");
    }
}

/// A connection that is closing (its last words going out, or waiting on a store commit) is no
/// connection still registering: `253` counted it, as its user is gone, so a `LUSERS` right
/// after someone quit said `1 unknown connection(s)` on a server where nobody was registering.
#[test]
fn lusers_does_not_count_a_closing_connection_as_unknown() {
    let mut n = Net::new();
    let solo = n.client("solo", &[]);
    let bob = n.client("bob", &[]);
    n.send(bob, &["QUIT :bye"]);
    assert!(n.closed(bob));
    n.send(solo, &["LUSERS"]);
    let l = n.lines(solo);
    assert!(!l.iter().any(|l| l.contains(" 253 ")), "{l:?}");
    assert!(find(&l, " 251 ").contains("There are 1 users"), "{l:?}");
}
