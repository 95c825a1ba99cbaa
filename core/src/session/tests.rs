use super::*;
use crate::command::HELP;
use crate::limits::*;
use crate::render;
use crate::test_support::{nick, room, text};
use crate::types::{DeviceKey, MsgId, Password, ResumeToken};
use crate::wire::{
    DirectMsg, ErrorKind, EventKind, FrameDecoder, LEN_PREFIX, Limits, MAGIC, Proof, Re, RoomEvent,
    RoomInfo,
};

/// A session plus a fake server end: scripted frames in, decoded client messages out.
struct T {
    s: Session,
    now: Millis,
    transport: Transport,
    /// Server-side view of what the session wrote (stream mode).
    dec: FrameDecoder,
    raw: Vec<u8>,
}

impl T {
    fn new(transport: Transport) -> T {
        T::with(transport, vec![RoomName::lobby()], 7)
    }

    fn with(transport: Transport, rooms: Vec<RoomName>, seed: u64) -> T {
        let now = Millis(1_000);
        let s = Session::new(
            SessionConfig {
                nick: nick("alice"),
                rooms,
                transport,
                seed,
            },
            now,
        );
        T {
            s,
            now,
            transport,
            dec: FrameDecoder::new(),
            raw: Vec::new(),
        }
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    /// Everything transmitted since the last call, decoded. Stream mode checks the preamble.
    fn sent(&mut self) -> Vec<ClientMsg> {
        let mut out = Vec::new();
        while let Some(b) = self.s.poll_transmit() {
            match self.transport {
                Transport::Stream => {
                    self.raw.extend_from_slice(&b);
                    if b[..] == MAGIC {
                        continue;
                    }
                    self.dec.extend(&b);
                    while let Some(p) = self.dec.next_frame().unwrap() {
                        out.push(wire::decode_payload::<ClientMsg>(&p).unwrap());
                    }
                }
                Transport::Messages => {
                    assert_ne!(b[..], MAGIC, "no preamble on a message transport");
                    out.push(wire::decode_payload::<ClientMsg>(&b).unwrap());
                }
            }
        }
        out
    }

    fn recv(&mut self, msg: ServerMsg) {
        match self.transport {
            Transport::Stream => {
                let f = wire::encode_frame(&msg).unwrap();
                self.s.handle_bytes(&f, self.now);
            }
            Transport::Messages => {
                // The bridge passes frames on whole, prefix included; here one per message.
                let f = wire::encode_frame(&msg).unwrap();
                self.s.handle_message(&f, self.now);
            }
        }
    }

    fn advance(&mut self, ms: u64) {
        self.now = self.now + Millis(ms);
        if self.s.poll_timeout().is_some_and(|t| t <= self.now) {
            self.s.handle_timeout(self.now);
        }
    }

    /// Lets the flood pacing send everything waiting; returns it all, in order.
    fn drain_paced(&mut self) -> Vec<ClientMsg> {
        let mut out = self.sent();
        for _ in 0..10_000 {
            if !self.s.out.is_pacing() {
                break;
            }
            self.advance(FLOOD_REFILL.0);
            out.extend(self.sent());
            // A live server is heard from meanwhile (it echoes what it gets).
            self.recv(ServerMsg::Pong { token: 0 });
        }
        assert!(!self.s.out.is_pacing());
        assert!(self.s.link.is_open(), "the connection lasted");
        out
    }

    /// The node of server 0 dies: the connection resets, the same address is refused, the
    /// next one (server 1) connects; returns what the session sent it (its hello).
    fn fail_over(&mut self) -> Vec<ClientMsg> {
        self.s.handle_disconnected("reset", self.now);
        self.run_to_deadline();
        self.s.handle_disconnected("refused", self.now);
        assert_eq!(self.s.server(), 1);
        self.run_to_deadline();
        self.events();
        self.raw.clear();
        self.dec = FrameDecoder::new();
        self.s.handle_connected(self.now);
        self.sent()
    }

    /// Runs the clock to the next deadline and handles it.
    fn run_to_deadline(&mut self) -> Millis {
        let t = self.s.poll_timeout().expect("a deadline");
        self.now = self.now.max(t);
        self.s.handle_timeout(self.now);
        t
    }

    fn welcome(&mut self, token: u8, resumed: bool) {
        self.welcome_at(PROTOCOL_VERSION, token, resumed);
    }

    /// A welcome from a server that speaks `version` (an older one, to test what a client
    /// keeps from it).
    fn welcome_at(&mut self, version: u16, token: u8, resumed: bool) {
        self.recv(ServerMsg::Welcome {
            version,
            nick: nick("alice"),
            token: ResumeToken([token; 32]),
            resumed,
            limits: Limits::default(),
        });
    }

    fn joined(&mut self, r: &str, seq: u64) {
        self.recv(ServerMsg::Joined {
            room: room(r),
            topic: None,
            members: vec![nick("alice"), nick("bob")],
            seq: Seq(seq),
        });
    }

    /// New session → connected, welcomed, in #lobby (seq 1 = our join), all drained.
    fn ready(transport: Transport) -> T {
        T::ready_at(transport, 1)
    }

    /// As [`T::ready`], joining a room whose history reaches seq `seq` (our join).
    fn ready_at(transport: Transport, seq: u64) -> T {
        let mut t = T::new(transport);
        t.s.handle_connected(t.now);
        t.welcome(1, false);
        t.joined("#lobby", seq);
        t.recv(ev("#lobby", seq, "alice", EventKind::Join));
        t.events();
        t.sent();
        t
    }
}

fn ev(r: &str, seq: u64, from: &str, kind: EventKind) -> ServerMsg {
    ServerMsg::Event(RoomEvent {
        room: room(r),
        seq: Seq(seq),
        at: Millis(0),
        from: nick(from),
        kind,
    })
}

fn say(r: &str, seq: u64, from: &str, id: u64, t: &str) -> ServerMsg {
    ev(
        r,
        seq,
        from,
        EventKind::Say {
            id: MsgId(id),
            text: text(t),
        },
    )
}

fn seqs(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Room(ev) => Some(ev.seq.0),
            _ => None,
        })
        .collect()
}

fn errors(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Error { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn stream_handshake_is_preamble_then_hello() {
    let mut t = T::new(Transport::Stream);
    assert_eq!(
        t.events(),
        vec![Event::State(ConnState::Connecting), Event::Connect]
    );
    assert_eq!(
        t.s.poll_transmit(),
        None,
        "nothing before the transport opens"
    );
    t.s.handle_connected(t.now);
    let sent = t.sent();
    assert_eq!(&t.raw[..4], &MAGIC);
    let len = u32::from_be_bytes([t.raw[4], t.raw[5], t.raw[6], t.raw[7]]) as usize;
    assert_eq!(t.raw.len(), MAGIC.len() + LEN_PREFIX + len);
    assert_eq!(
        sent,
        vec![ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: nick("alice"),
            resume: None
        }]
    );
    assert_eq!(t.s.state(), ConnState::Connecting);
    t.welcome(1, false);
    assert_eq!(t.s.state(), ConnState::Connected);
    assert_eq!(
        t.events(),
        vec![
            Event::State(ConnState::Connected),
            Event::Welcome {
                nick: nick("alice"),
                resumed: false,
                signing_in: None
            }
        ]
    );
    assert_eq!(
        t.sent(),
        vec![ClientMsg::Join {
            room: RoomName::lobby()
        }]
    );
    assert!(!t.s.is_settled(), "join unanswered");
}

#[test]
fn message_handshake_is_bare_hello_payload() {
    let mut t = T::new(Transport::Messages);
    t.events();
    t.s.handle_connected(t.now);
    let first = t.s.poll_transmit().unwrap();
    assert_ne!(first[..], MAGIC);
    assert_eq!(
        wire::decode_payload::<ClientMsg>(&first).unwrap(),
        ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: nick("alice"),
            resume: None
        }
    );
    assert_eq!(t.s.poll_transmit(), None);
    t.welcome(1, false);
    assert_eq!(
        t.sent(),
        vec![ClientMsg::Join {
            room: room("#lobby")
        }]
    );
}

#[test]
fn join_chat_and_the_echo_acknowledges() {
    for transport in [Transport::Stream, Transport::Messages] {
        let mut t = T::new(transport);
        t.s.handle_connected(t.now);
        t.welcome(1, false);
        t.events();
        t.sent();
        t.joined("#lobby", 4);
        assert_eq!(
            t.events(),
            vec![Event::Joined {
                room: room("#lobby"),
                topic: None,
                members: vec![nick("alice"), nick("bob")],
                seq: Seq(4),
            }],
            "a configured room is joined, not asked for: no focus"
        );
        assert_eq!(t.s.rooms(), vec![room("#lobby")]);
        assert!(t.s.is_settled());

        t.s.handle_input("hello there", t.now);
        assert_eq!(
            t.sent(),
            vec![ClientMsg::Say {
                room: room("#lobby"),
                id: MsgId(1),
                text: text("hello there")
            }]
        );
        assert!(!t.s.is_settled(), "awaiting the echo");
        assert_eq!(t.s.pending(), 1);
        // Someone else's message with the same id does not acknowledge ours.
        t.recv(say("#lobby", 5, "bob", 1, "hi"));
        assert!(!t.s.is_settled());
        t.recv(say("#lobby", 6, "alice", 1, "hello there"));
        assert!(t.s.is_settled());
        assert_eq!(seqs(&t.events()), vec![5, 6]);
        assert_eq!(t.s.last_seq(&room("#lobby")), Some(Seq(6)));

        t.s.handle_input("/me waves", t.now);
        let sent = t.sent();
        assert_eq!(
            sent,
            vec![ClientMsg::Act {
                room: room("#lobby"),
                id: MsgId(2),
                text: text("waves")
            }]
        );
        t.recv(ServerMsg::Ack { id: MsgId(2) });
        assert!(t.s.is_settled());
    }
}

#[test]
fn direct_messages() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_input("/msg bob psst", t.now);
    assert_eq!(
        t.sent(),
        vec![ClientMsg::Msg {
            to: nick("bob"),
            id: MsgId(1),
            text: text("psst")
        }]
    );
    assert!(!t.s.is_settled());
    let incoming = DirectMsg {
        from: nick("bob"),
        to: nick("alice"),
        id: MsgId(1),
        at: Millis(5),
        text: text("hey"),
    };
    t.recv(ServerMsg::Direct(incoming.clone()));
    assert!(!t.s.is_settled(), "bob's id 1 is not ours");
    let echo = DirectMsg {
        from: nick("alice"),
        to: nick("bob"),
        id: MsgId(1),
        at: Millis(6),
        text: text("psst"),
    };
    t.recv(ServerMsg::Direct(echo.clone()));
    assert!(t.s.is_settled());
    assert_eq!(
        t.events(),
        vec![
            Event::Queued {
                id: MsgId(1),
                to: Target::Nick(nick("bob")),
                kind: ChatKind::Say,
                text: text("psst")
            },
            Event::Direct(incoming),
            Event::Direct(echo),
            Event::Settled {
                id: MsgId(1),
                delivered: true
            },
        ]
    );
}

#[test]
fn every_command_sends_the_right_message() {
    let mut t = T::ready(Transport::Messages);
    let lobby = room("#lobby");
    let cases: Vec<(&str, ClientMsg)> = vec![
        (
            "/nick bobby",
            ClientMsg::Nick {
                nick: nick("bobby"),
            },
        ),
        (
            "/who",
            ClientMsg::Who {
                room: lobby.clone(),
            },
        ),
        (
            "/who #rust",
            ClientMsg::Who {
                room: room("#rust"),
            },
        ),
        ("/rooms", ClientMsg::Rooms),
        (
            "/topic",
            ClientMsg::Topic {
                room: lobby.clone(),
                topic: None,
            },
        ),
        (
            "/topic all about rust",
            ClientMsg::Topic {
                room: lobby.clone(),
                topic: Some(text("all about rust")),
            },
        ),
        (
            "/join #rust",
            ClientMsg::Join {
                room: room("#rust"),
            },
        ),
        (
            "/part #lobby see you",
            ClientMsg::Part {
                room: lobby.clone(),
                reason: Some(text("see you")),
            },
        ),
        (
            "/msg bob hi",
            ClientMsg::Msg {
                to: nick("bob"),
                id: MsgId(1),
                text: text("hi"),
            },
        ),
        (
            "/me waves",
            ClientMsg::Act {
                room: room("#rust"),
                id: MsgId(2),
                text: text("waves"),
            },
        ),
        (
            "//slash",
            ClientMsg::Say {
                room: room("#rust"),
                id: MsgId(3),
                text: text("/slash"),
            },
        ),
    ];
    // After `/join #rust`, chat goes to #rust even before the server answers the join.
    for (line, want) in cases {
        t.advance(FLOOD_REFILL.0);
        t.s.handle_input(line, t.now);
        assert_eq!(t.sent(), vec![want], "{line}");
        assert_eq!(errors(&t.events()), Vec::<String>::new(), "{line}");
    }
    t.s.handle_input("/help", t.now);
    let help = t.events();
    assert_eq!(help.len(), HELP.len());
    assert!(matches!(&help[0], Event::Info(l) if l.contains("/join #room")));
    assert!(t.sent().is_empty());

    t.s.handle_input("/quit bye", t.now);
    assert_eq!(
        t.sent(),
        vec![ClientMsg::Quit {
            reason: Some(text("bye"))
        }]
    );
}

#[test]
fn parser_errors_come_back_in_words() {
    let mut t = T::ready(Transport::Stream);
    for (line, words) in [
        ("/frob", "unknown command /frob"),
        ("/nick", "usage: /nick name"),
        ("/nick 9lives", "starts with a letter"),
        ("/join #bad!", "room name"),
        ("/msg bob", "usage: /msg nick|#room text"),
    ] {
        t.s.handle_input(line, t.now);
        let errs = errors(&t.events());
        assert_eq!(errs.len(), 1, "{line}");
        assert!(errs[0].contains(words), "{line}: {errs:?}");
        assert!(t.sent().is_empty(), "{line}");
    }
    t.s.handle_input("   ", t.now);
    assert!(t.events().is_empty());
}

#[test]
fn no_room_no_chat() {
    let mut t = T::with(Transport::Stream, vec![], 1);
    t.s.handle_connected(t.now);
    t.sent();
    t.welcome(1, false);
    t.events();
    assert!(t.sent().is_empty(), "no rooms configured, none joined");
    t.s.handle_input("anyone?", t.now);
    assert_eq!(errors(&t.events()), vec!["join a room first (/join #room)"]);
    assert!(t.sent().is_empty());
    t.s.handle_input("/part", t.now);
    assert_eq!(errors(&t.events()).len(), 1);
}

#[test]
fn chat_typed_right_after_join_goes_to_the_joined_room() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_input("/join #rust", t.now);
    t.s.handle_input("hello rust", t.now);
    let sent = t.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(
        sent[0],
        ClientMsg::Join {
            room: room("#rust")
        }
    );
    assert!(
        matches!(&sent[1], ClientMsg::Say { room: r, .. } if r == &room("#rust")),
        "{sent:?}"
    );
}

/// A script joins a private room and talks: when the server refuses the join (invite-only,
/// banned, a key), its lines must not land in the room it was in before (they were said in
/// `#lobby`, to everyone there). They are refused here, saying why, until a join goes through.
#[test]
fn lines_after_a_refused_join_are_not_said_in_another_room() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_input("/join #private", t.now);
    t.sent();
    t.recv(ServerMsg::Error {
        kind: ErrorKind::InviteOnly,
        re: Re::Room(room("#private")),
        detail: "#private is invite-only".into(),
    });
    t.events();
    t.s.handle_input("the secret plan", t.now);
    assert!(t.sent().is_empty(), "said nowhere");
    let evs = t.events();
    assert!(
        matches!(&evs[..], [Event::Error { about: About::Input, text, .. }] if text.contains("#private")),
        "{evs:?}"
    );
    // Joining a room again gives lines a home.
    t.s.handle_input("/join #lobby", t.now);
    t.s.handle_input("hi again", t.now);
    assert!(
        t.sent()
            .iter()
            .any(|m| matches!(m, ClientMsg::Say { room: r, .. } if *r == room("#lobby")))
    );
}

/// `/join #room KEY` is a join like any other: the room opens once joined and input that names
/// no room follows it (it went on to the room typed in before, as if the join had not been
/// asked for); a room we are in is just shown; a refusal (a wrong key) leaves that input
/// nowhere; and a rejoin after a failed resume gives the key again (a `+k` room refuses one
/// without it).
#[test]
fn a_join_with_a_key_is_a_join_like_any_other() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_input("/join #vault sesame", t.now);
    let keyed = ClientMsg::JoinKey {
        room: room("#vault"),
        key: text("sesame"),
    };
    assert_eq!(t.sent(), vec![keyed.clone()]);
    assert!(!t.s.is_settled(), "the join is waited for");
    t.joined("#vault", 5);
    let evs = t.events();
    assert!(
        matches!(&evs[..], [Event::Joined { room: r, .. }, Event::Focus(f)]
            if *r == room("#vault") && *f == room("#vault")),
        "{evs:?}"
    );
    t.s.handle_input("hi vault", t.now);
    assert!(
        matches!(&t.sent()[..], [ClientMsg::Say { room: r, .. }] if *r == room("#vault")),
        "chat follows the room joined"
    );
    // In it already: shown again, nothing asked of the server.
    t.s.handle_input("/join #lobby", t.now);
    t.events();
    t.s.handle_input("/join #vault sesame", t.now);
    assert!(t.sent().is_empty());
    let evs = t.events();
    assert!(
        matches!(&evs[..], [Event::Focus(f)] if *f == room("#vault")),
        "{evs:?}"
    );

    // The resume fails (a server that lost its sessions): the rooms are joined again, the
    // keyed one with its key.
    t.s.handle_disconnected("reset", t.now);
    t.run_to_deadline();
    t.s.handle_connected(t.now);
    t.sent();
    t.welcome(2, false);
    let sent = t.drain_paced();
    assert!(sent.contains(&keyed), "{sent:?}");
    assert!(sent.contains(&ClientMsg::Join {
        room: room("#lobby")
    }));
    t.joined("#lobby", 9);
    t.joined("#vault", 9);
    t.events();

    // A wrong key: refused, said as a join's refusal, and what is typed next goes nowhere.
    t.s.handle_input("/join #attic wrong", t.now);
    assert_eq!(
        t.sent(),
        vec![ClientMsg::JoinKey {
            room: room("#attic"),
            key: text("wrong"),
        }]
    );
    t.recv(ServerMsg::Error {
        kind: ErrorKind::BadKey,
        re: Re::Room(room("#attic")),
        detail: "#attic needs its key: /join #attic KEY".into(),
    });
    let evs = t.events();
    assert!(
        matches!(&evs[..], [Event::Error { about: About::Join(r), .. }] if *r == room("#attic")),
        "{evs:?}"
    );
    t.s.handle_input("the secret plan", t.now);
    assert!(t.sent().is_empty(), "said nowhere");
    // The right key later is a join of its own, not the refused key again.
    t.s.handle_input("/join #attic right", t.now);
    assert_eq!(
        t.sent(),
        vec![ClientMsg::JoinKey {
            room: room("#attic"),
            key: text("right"),
        }]
    );
}

/// Back in its rooms after a failed resume (or a sign-out), a room that will not have us now
/// (a key set meanwhile, invite-only, a ban) is left: the UI stops showing it as ours (its
/// member list stale, what is typed there refused as "not in #room"), and says why once, with
/// the refusal, not also "you left" as if we had.
#[test]
fn a_rejoin_refused_leaves_the_room() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_input("/join #club", t.now);
    t.sent();
    t.joined("#club", 4);
    t.events();
    t.s.handle_disconnected("reset", t.now);
    t.run_to_deadline();
    t.s.handle_connected(t.now);
    t.sent();
    t.welcome(2, false);
    t.drain_paced();
    t.joined("#lobby", 9);
    t.events();
    t.recv(ServerMsg::Error {
        kind: ErrorKind::BadKey,
        re: Re::Room(room("#club")),
        detail: "#club needs its key: /join #club KEY".into(),
    });
    let evs = t.events();
    assert!(
        matches!(&evs[..], [
            Event::Parted { room: p, kicked: true },
            Event::Error { about: About::Join(j), .. },
        ] if *p == room("#club") && *j == room("#club")),
        "{evs:?}"
    );
    assert_eq!(t.s.rooms(), vec![room("#lobby")]);
}

#[test]
fn a_join_asked_for_is_focused_and_input_naming_no_room_follows_it() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_input("/join #rust", t.now);
    assert_eq!(
        t.sent(),
        vec![ClientMsg::Join {
            room: room("#rust")
        }]
    );
    assert!(!t.s.is_settled());
    t.joined("#rust", 10);
    assert!(t.s.is_settled());
    let evs = t.events();
    assert!(
        matches!(&evs[..], [Event::Joined { room: r, seq: Seq(10), .. }, Event::Focus(f)]
            if *r == room("#rust") && *f == room("#rust")),
        "{evs:?}"
    );
    // Without a conversation named, chat goes to the room last joined on request.
    t.s.handle_input("hi rust", t.now);
    assert!(matches!(&t.sent()[..], [ClientMsg::Say { room: r, .. }] if *r == room("#rust")));
    // Typed in a conversation, it goes there, and so does a command that names no room.
    let lobby = Target::Room(room("#lobby"));
    t.s.handle_input_in("hi lobby", Some(&lobby), t.now);
    t.s.handle_input_in("/who", Some(&lobby), t.now);
    let sent = t.sent();
    assert!(
        matches!(&sent[..], [ClientMsg::Say { room: r, .. }, ClientMsg::Who { room: w }]
            if *r == room("#lobby") && *w == room("#lobby")),
        "{sent:?}"
    );
    // In a direct conversation, chat is a direct message; a room command needs a room.
    let bob = Target::Nick(nick("bob"));
    t.s.handle_input_in("psst", Some(&bob), t.now);
    t.s.handle_input_in("/topic", Some(&bob), t.now);
    t.s.handle_input_in("/topic tea at five", Some(&bob), t.now);
    t.s.handle_input_in("/topic -delete", Some(&bob), t.now);
    t.s.handle_input_in("/me waves", Some(&bob), t.now);
    t.s.handle_input_in("/part", Some(&bob), t.now);
    // `/me` there is a direct action: a direct message `* me action` (`DirectMsg::action`).
    let me = t.s.nick().clone();
    let sent = t.sent();
    assert!(
        matches!(&sent[..], [ClientMsg::Msg { to, .. }, ClientMsg::Msg { to: to2, text, .. }]
            if *to == nick("bob") && *to2 == nick("bob")
                && text.as_str() == format!("* {me} waves")),
        "{sent:?}"
    );
    // Each says what to type instead.
    let errors: Vec<String> = t
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Error {
                about: About::Input,
                text,
                ..
            } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(
        errors,
        [
            "this is a direct conversation with bob, not a room; to see a room's topic, name it: /topic #room",
            "this is a direct conversation with bob, not a room; only a room has a topic; to set one, name it: /topic #room text",
            "this is a direct conversation with bob, not a room; only a room has a topic; to clear one, name it: /topic #room -delete",
            "this is a direct conversation with bob, not a room; to leave a room, name it: /part #room",
        ]
    );
    for id in 1..=4 {
        t.recv(ServerMsg::Ack { id: MsgId(id) });
    }
    t.events();
    // /join of a room we are in asks to show it, without asking the server.
    t.s.handle_input("/join #lobby", t.now);
    assert!(t.sent().is_empty());
    assert_eq!(t.events(), vec![Event::Focus(room("#lobby"))]);
    t.s.handle_input("/part", t.now);
    assert_eq!(
        t.sent(),
        vec![ClientMsg::Part {
            room: room("#lobby"),
            reason: None
        }]
    );
    assert!(!t.s.is_settled());
    t.recv(ServerMsg::Parted {
        room: room("#lobby"),
    });
    assert!(t.s.is_settled());
    assert_eq!(
        t.events(),
        vec![Event::Parted {
            room: room("#lobby"),
            kicked: false,
        }]
    );
    assert_eq!(t.s.rooms(), vec![room("#rust")]);
    // The room asked for is gone: input naming no room goes to the first room we are in.
    t.s.handle_input("still here", t.now);
    assert!(matches!(&t.sent()[..], [ClientMsg::Say { room: r, .. }] if *r == room("#rust")));
}

#[test]
fn server_replies_become_events() {
    let mut t = T::ready(Transport::Messages);
    let rooms = vec![RoomInfo {
        room: room("#lobby"),
        members: 2,
    }];
    t.recv(ServerMsg::Rooms {
        rooms: rooms.clone(),
    });
    t.recv(ServerMsg::Members {
        room: room("#lobby"),
        members: vec![nick("alice")],
    });
    t.recv(ServerMsg::Topic {
        room: room("#lobby"),
        topic: Some(text("t")),
    });
    t.recv(ServerMsg::YourNick { nick: nick("al") });
    t.recv(ServerMsg::Ping { token: 42 });
    assert_eq!(t.sent(), vec![ClientMsg::Pong { token: 42 }]);
    assert_eq!(
        t.events(),
        vec![
            Event::Rooms(rooms),
            Event::Members {
                room: room("#lobby"),
                members: vec![nick("alice")],
                asked: true,
                as_of: None
            },
            Event::Topic {
                room: room("#lobby"),
                topic: Some(text("t"))
            },
            Event::Nick(nick("al")),
        ]
    );
    assert_eq!(t.s.nick(), &nick("al"));
}

/// The server tells a connection its nick by `YourNick` (and its welcome): a room's rename
/// event from the nick it has now is someone else's who had the nick before. With a store, room
/// events wait for their commit while `YourNick` does not (and a refill brings them later
/// still): signing in to an account whose name a guest held, the session heard `YourNick`
/// first, then the room's "cat is now guest4081" from its new nick, and took that for its own
/// rename (found by `store_properties`).
#[test]
fn a_rename_from_our_nick_after_we_were_told_it_is_someone_elses() {
    let mut t = T::ready(Transport::Messages);
    t.recv(ServerMsg::YourNick { nick: nick("cat") });
    assert_eq!(t.s.nick(), &nick("cat"));
    t.recv(ev(
        "#lobby",
        2,
        "cat",
        EventKind::Nick {
            new: nick("guest4081"),
        },
    ));
    t.recv(ev(
        "#lobby",
        3,
        "alice",
        EventKind::Nick { new: nick("cat") },
    ));
    assert_eq!(t.s.nick(), &nick("cat"), "the guest's rename is not ours");
    let nicks: Vec<Event> = t
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Nick(_)))
        .collect();
    assert_eq!(nicks, vec![Event::Nick(nick("cat"))]);
    // Our messages are still ours under the nick we were told.
    t.s.handle_input("hi", t.now);
    let sent = t.sent();
    assert!(matches!(&sent[..], [ClientMsg::Say { id, .. }] if *id == MsgId(1)));
    t.recv(say("#lobby", 4, "cat", 1, "hi"));
    assert!(t.s.is_settled());
}

/// A line we said, then our rename (`YourNick`) before the line's echo: the echo, from the
/// nick we had when we said it, is ours all the same, settled once. In a cluster our rename is
/// told at once when the cluster grants the nick, while the line comes back through the room's
/// log; a resume after a rename (a guest evicted meanwhile) replays it under the old nick. It
/// was taken for another's line with the same words: shown as such, and ours left waiting for
/// an acknowledgement that a connection never sends (until a resume sent it again).
#[test]
fn our_line_echoed_after_our_rename_is_ours() {
    let mut t = T::ready(Transport::Messages);
    t.s.handle_input("hi", t.now);
    let sent = t.sent();
    assert!(matches!(&sent[..], [ClientMsg::Say { id, .. }] if *id == MsgId(1)));
    t.recv(ServerMsg::YourNick { nick: nick("bob") });
    t.events();
    t.recv(say("#lobby", 2, "alice", 1, "hi"));
    let evs = t.events();
    assert!(
        evs.contains(&Event::Settled {
            id: MsgId(1),
            delivered: true
        }),
        "{evs:?}"
    );
    assert!(t.s.is_settled());
    // Nothing waits now: a line with the same id from the nick we had is another's (a device
    // of the account it is now, or whoever took it).
    t.s.handle_input("again", t.now);
    t.sent();
    t.recv(say("#lobby", 3, "alice", 2, "again"));
    assert!(!t.s.is_settled(), "not ours");
    t.recv(say("#lobby", 4, "bob", 2, "again"));
    assert!(t.s.is_settled());
}

#[test]
fn a_repeated_seq_is_emitted_once() {
    let mut t = T::ready(Transport::Stream);
    t.recv(say("#lobby", 2, "bob", 1, "one"));
    t.recv(say("#lobby", 2, "bob", 1, "one"));
    t.recv(say("#lobby", 1, "bob", 1, "old"));
    t.recv(say("#lobby", 3, "bob", 2, "two"));
    t.recv(say("#lobby", 3, "bob", 2, "two"));
    assert_eq!(seqs(&t.events()), vec![2, 3]);
}

#[test]
fn server_errors_are_shown_and_refuse_pending_messages() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_input("spam", t.now);
    t.sent();
    t.recv(ServerMsg::Error {
        kind: ErrorKind::Flood,
        re: Re::Msg(MsgId(1)),
        detail: "slow down\x1b[2J".into(),
    });
    assert_eq!(
        t.events(),
        vec![
            Event::Queued {
                id: MsgId(1),
                to: Target::Room(room("#lobby")),
                kind: ChatKind::Say,
                text: text("spam")
            },
            Event::Error {
                kind: Some(ErrorKind::Flood),
                about: About::Message(MsgId(1)),
                text: "slow down\u{FFFD}[2J".into()
            },
            Event::Settled {
                id: MsgId(1),
                delivered: false
            },
        ]
    );
    assert!(t.s.is_settled(), "refused, not to be resent");
    assert_eq!(t.s.pending(), 0);
}

/// Put out of a room, the session says so with its `Parted` (`kicked`), so that no front end
/// adds "you left" to the kick's own line; a later leave of our own is a plain one, and a kick
/// of someone else, or one in a join's history, is not ours.
#[test]
fn a_kick_naming_us_makes_the_part_that_follows_a_kick() {
    let mut t = T::ready(Transport::Stream);
    let kick = |seq, target: &str| {
        ev(
            "#lobby",
            seq,
            "op",
            EventKind::Kick {
                target: nick(target),
                reason: Some(text("spam")),
            },
        )
    };
    t.recv(kick(2, "bob"));
    t.recv(kick(3, "ALICE"));
    t.recv(ServerMsg::Parted {
        room: room("#lobby"),
    });
    let evs = t.events();
    assert_eq!(
        evs.last(),
        Some(&Event::Parted {
            room: room("#lobby"),
            kicked: true,
        })
    );
    // Line mode prints the kick, addressed to us (whatever the case of our nick in it), and
    // nothing for the part.
    let me = nick("alice");
    let lines: Vec<String> = evs
        .iter()
        .flat_map(|e| crate::render::session_lines(e, &me))
        .collect();
    assert_eq!(
        lines,
        [
            "[#lobby] -- op put bob out of #lobby (spam)",
            "[#lobby] -- op put you out of #lobby (spam)",
        ]
    );
    // Back in, with that kick in the join's history: leaving now is ours.
    t.s.handle_input("/join #lobby", t.now);
    t.sent();
    t.joined("#lobby", 4);
    t.recv(kick(3, "alice"));
    t.recv(ev("#lobby", 4, "alice", EventKind::Join));
    t.s.handle_input("/part", t.now);
    t.recv(ServerMsg::Parted {
        room: room("#lobby"),
    });
    let evs = t.events();
    assert_eq!(
        evs.last(),
        Some(&Event::Parted {
            room: room("#lobby"),
            kicked: false,
        })
    );
    let lines: Vec<String> = evs
        .iter()
        .flat_map(|e| crate::render::session_lines(e, &me))
        .collect();
    assert_eq!(lines.last().map(String::as_str), Some("-- you left #lobby"));
}

/// What an admin's action did (`Done`) is an event of its own, and its refusals, which name
/// no room, answer what was typed: a front end says each, however often the same words come.
#[test]
fn an_admins_answers_and_refusals_are_said_each_time() {
    let mut t = T::ready(Transport::Stream);
    t.recv(ServerMsg::Done(text(
        "203.0.113.0/24 is banned from the server",
    )));
    assert_eq!(
        t.events(),
        [Event::Done(
            "203.0.113.0/24 is banned from the server".into()
        )]
    );
    for kind in [
        ErrorKind::NotOperator,
        ErrorKind::Invalid,
        ErrorKind::NotInRoom,
        ErrorKind::NoSuchNick,
    ] {
        t.recv(error(kind, Re::Conn));
        assert_eq!(abouts(&t.events()), [About::Input], "{kind:?}");
    }
    // What the server says unasked stays the session's.
    t.recv(error(ErrorKind::Flood, Re::Conn));
    assert_eq!(abouts(&t.events()), [About::Session]);
    // The model says each answer, the same twice included.
    let mut chat = crate::chat::Chat::new(nick("alice"));
    for _ in 0..2 {
        chat.handle_event(&Event::Done("#r is closed".into()), t.now);
        chat.handle_event(
            &Event::Error {
                kind: Some(ErrorKind::NotOperator),
                about: About::Input,
                text: "that is for server admins".into(),
            },
            t.now,
        );
    }
    let said: Vec<String> = chat
        .current_conv()
        .lines()
        .iter()
        .map(|l| format!("{:?}", l.kind))
        .collect();
    assert_eq!(said.len(), 4, "{said:?}");
}

fn error(kind: ErrorKind, re: Re) -> ServerMsg {
    ServerMsg::Error {
        kind,
        re,
        detail: "no".into(),
    }
}

fn abouts(events: &[Event]) -> Vec<About> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Error { about, .. } => Some(about.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn told_we_may_not_speak_in_a_room_just_joined_is_about_the_room_only() {
    let mut t = T::ready(Transport::Stream);
    // A page of older lines on its way: the words are not its failure.
    t.s.older(room("#lobby"), Seq(1), 50, t.now);
    t.sent();
    t.events();
    t.recv(error(ErrorKind::Muted, Re::Room(room("#lobby"))));
    assert_eq!(abouts(&t.events()), vec![About::Room(room("#lobby"))]);
    t.recv(ServerMsg::PastEnd {
        room: room("#lobby"),
        at_start: true,
    });
    assert!(
        t.events().iter().any(|e| matches!(e, Event::Past { .. })),
        "the page still arrives"
    );
}

#[test]
fn errors_name_the_request_they_answer() {
    let mut t = T::ready(Transport::Stream);
    // Two messages in flight: the error names the second, which alone fails.
    t.s.handle_input("one", t.now);
    t.s.handle_input("two", t.now);
    t.events();
    t.recv(error(ErrorKind::Flood, Re::Msg(MsgId(2))));
    let evs = t.events();
    assert_eq!(abouts(&evs), vec![About::Message(MsgId(2))]);
    assert!(evs.contains(&Event::Settled {
        id: MsgId(2),
        delivered: false
    }));
    assert_eq!(t.s.pending(), 1, "the first still awaits its echo");

    // A refused join is a join, and no longer waited for; the room is not entered.
    t.s.handle_input("/join #full", t.now);
    t.recv(error(ErrorKind::TooManyRooms, Re::Room(room("#full"))));
    assert_eq!(abouts(&t.events()), vec![About::Join(room("#full"))]);
    assert!(!t.s.rooms().contains(&room("#full")));

    // A part the server says we are not there for: a part, and the room is gone.
    t.s.handle_input("/join #side", t.now);
    t.joined("#side", 3);
    t.events();
    t.s.handle_input("/part #side", t.now);
    t.recv(error(ErrorKind::NotInRoom, Re::Room(room("#side"))));
    let evs = t.events();
    assert_eq!(abouts(&evs), vec![About::Part(room("#side"))]);
    assert!(evs.contains(&Event::Parted {
        room: room("#side"),
        kicked: false,
    }));

    // A topic question about a room we are in and not leaving: about that room.
    t.s.handle_input("/topic #lobby", t.now);
    t.recv(error(ErrorKind::Invalid, Re::Room(room("#lobby"))));
    assert_eq!(abouts(&t.events()), vec![About::Room(room("#lobby"))]);
    assert!(t.s.rooms().contains(&room("#lobby")));

    // A nick change, and the connection as a whole.
    t.s.handle_input("/nick bob", t.now);
    t.recv(error(ErrorKind::NickTaken, Re::Nick(nick("bob"))));
    t.recv(error(ErrorKind::BadCommand, Re::Conn));
    assert_eq!(
        abouts(&t.events()),
        vec![About::Nick(nick("bob")), About::Session]
    );
    t.recv(say("#lobby", 2, "alice", 1, "one"));
    assert!(
        t.s.is_settled(),
        "nothing is left waiting after the refusals"
    );
}

/// The waits between attempts while the server stays away.
fn backoff_schedule(seed: u64, n: usize) -> Vec<(u32, u64)> {
    let mut t = T::with(Transport::Stream, vec![RoomName::lobby()], seed);
    t.events();
    let mut out = Vec::new();
    for _ in 0..n {
        t.s.handle_disconnected("refused", t.now);
        let evs = t.events();
        let Some(Event::State(
            state @ ConnState::Reconnecting {
                at,
                attempt,
                lost: false,
            },
        )) = evs
            .iter()
            .rev()
            .find(|e| matches!(e, Event::State(_)))
            .cloned()
        else {
            panic!("no reconnect scheduled: {evs:?}");
        };
        assert_eq!(t.s.state(), state);
        assert_eq!(t.s.poll_timeout(), Some(at));
        out.push((attempt, at.since(t.now).0));
        // Nothing happens before `at`.
        t.advance(at.since(t.now).0 - 1);
        assert!(t.events().is_empty());
        assert_eq!(t.run_to_deadline(), at);
        assert_eq!(
            t.events(),
            vec![Event::State(ConnState::Connecting), Event::Connect]
        );
    }
    out
}

#[test]
fn reconnect_backoff_doubles_is_capped_jittered_and_seeded() {
    let a = backoff_schedule(1, 10);
    for (i, &(attempt, wait)) in a.iter().enumerate() {
        assert_eq!(attempt as usize, i + 1);
        let base = (RECONNECT_MIN.0 << i).min(RECONNECT_MAX.0);
        assert!(
            base / 2 <= wait && wait <= base,
            "attempt {attempt}: {wait} not in {}..={base}",
            base / 2
        );
    }
    assert!(a.iter().all(|&(_, w)| w <= RECONNECT_MAX.0));
    assert_eq!(a, backoff_schedule(1, 10), "same seed, same schedule");
    assert_ne!(a, backoff_schedule(2, 10), "jitter depends on the seed");
}

/// Drops the connection and brings it back (transport open, hello sent), returning the hello.
fn reconnect(t: &mut T) -> ClientMsg {
    t.s.handle_disconnected("connection reset", t.now);
    t.run_to_deadline();
    let evs = t.events();
    assert!(evs.contains(&Event::Connect), "{evs:?}");
    t.raw.clear();
    t.dec = FrameDecoder::new();
    t.s.handle_connected(t.now);
    let mut sent = t.sent();
    assert_eq!(sent.len(), 1, "only the hello before the welcome: {sent:?}");
    if t.transport == Transport::Stream {
        assert_eq!(&t.raw[..4], &MAGIC, "a new stream starts with the preamble");
    }
    sent.remove(0)
}

#[test]
fn resume_sends_token_and_seqs_then_resends_pending_in_order() {
    for transport in [Transport::Stream, Transport::Messages] {
        let mut t = T::ready(transport);
        t.s.handle_input("/join #rust", t.now);
        t.joined("#rust", 7);
        t.recv(ev("#rust", 7, "alice", EventKind::Join));
        t.recv(say("#lobby", 2, "bob", 1, "hi"));
        t.s.handle_input("/join #lobby", t.now);
        t.s.handle_input("one", t.now);
        t.s.handle_input("two", t.now);
        t.sent();
        t.events();
        // The first is acknowledged; the second is lost with the connection.
        t.recv(say("#lobby", 3, "alice", 1, "one"));
        t.s.handle_disconnected("reset", t.now);
        // Typed while away: kept, sent after the welcome.
        t.s.handle_input("three", t.now);
        t.s.handle_input("/msg bob four", t.now);
        assert!(t.s.poll_transmit().is_none(), "no transport, no bytes");
        assert_eq!(t.s.pending(), 3);
        let hello = reconnect(&mut t);
        assert_eq!(
            hello,
            ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                nick: nick("alice"),
                resume: Some(Resume {
                    token: ResumeToken([1; 32]),
                    rooms: vec![(room("#lobby"), Seq(3)), (room("#rust"), Seq(7))],
                }),
            }
        );
        t.welcome(2, true);
        let evs = t.events();
        assert!(evs.contains(&Event::Welcome {
            nick: nick("alice"),
            resumed: true,
            signing_in: None
        }));
        assert!(!evs.iter().any(|e| matches!(e, Event::Info(_))));
        assert_eq!(t.s.state(), ConnState::Connected);
        assert_eq!(
            t.sent(),
            vec![
                ClientMsg::Say {
                    room: room("#lobby"),
                    id: MsgId(2),
                    text: text("two")
                },
                ClientMsg::Say {
                    room: room("#lobby"),
                    id: MsgId(3),
                    text: text("three")
                },
                ClientMsg::Msg {
                    to: nick("bob"),
                    id: MsgId(4),
                    text: text("four")
                },
            ],
            "no rejoin on resume; pending resent in order"
        );
        // Missed events come after the resume; already-seen ones are not shown again.
        t.recv(say("#lobby", 3, "alice", 1, "one"));
        t.recv(say("#lobby", 4, "alice", 2, "two"));
        t.recv(ServerMsg::Ack { id: MsgId(3) });
        t.recv(ServerMsg::Direct(DirectMsg {
            from: nick("alice"),
            to: nick("bob"),
            id: MsgId(4),
            at: Millis(0),
            text: text("four"),
        }));
        assert!(t.s.is_settled());
        assert_eq!(seqs(&t.events()), vec![4]);
        // The next resume carries the new token; ids keep increasing across reconnects.
        t.s.handle_input("five", t.now);
        let Some(ClientMsg::Hello {
            resume: Some(r), ..
        }) = Some(reconnect(&mut t))
        else {
            panic!("no resume");
        };
        assert_eq!(r.token, ResumeToken([2; 32]));
        t.welcome(3, true);
        assert_eq!(
            t.sent(),
            vec![ClientMsg::Say {
                room: room("#lobby"),
                id: MsgId(5),
                text: text("five")
            }]
        );
    }
}

/// The server's refusal of the resume and the session's own words after the welcome were
/// the same news twice, one of them shown as an error: said once, by the session.
#[test]
fn failed_resume_is_said_once() {
    let mut t = T::ready(Transport::Stream);
    t.events();
    reconnect(&mut t);
    t.recv(error(ErrorKind::ResumeFailed, Re::Conn));
    t.welcome(9, false);
    let evs = t.events();
    assert!(
        !evs.iter().any(|e| matches!(e, Event::Error { .. })),
        "{evs:?}"
    );
    let said: Vec<_> = evs
        .iter()
        .filter(|e| matches!(e, Event::Info(m) if m.contains("could not resume")))
        .collect();
    assert_eq!(said.len(), 1, "{evs:?}");
}

#[test]
fn failed_resume_says_so_and_rejoins() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_input("/join #rust", t.now);
    t.joined("#rust", 7);
    t.recv(say("#lobby", 5, "bob", 1, "hi"));
    t.s.handle_input("lost?", t.now);
    t.sent();
    t.events();
    let hello = reconnect(&mut t);
    assert!(matches!(
        hello,
        ClientMsg::Hello {
            resume: Some(_),
            ..
        }
    ));
    t.welcome(9, false);
    let evs = t.events();
    assert!(
        evs.iter()
            .any(|e| matches!(e, Event::Info(m) if m.contains("could not resume"))),
        "{evs:?}"
    );
    // What the last session sent and had no answer to may have been taken by it: not sent
    // again (never doubled), and said so.
    assert!(
        evs.iter().any(|e| matches!(e, Event::Error { kind: None, about: About::Message(MsgId(1)), text } if text.contains("may or may not"))),
        "{evs:?}"
    );
    assert!(
        evs.contains(&Event::Settled {
            id: MsgId(1),
            delivered: false
        }),
        "{evs:?}"
    );
    assert_eq!(
        t.sent(),
        vec![
            ClientMsg::Join {
                room: room("#lobby")
            },
            ClientMsg::Join {
                room: room("#rust")
            },
        ]
    );
    assert_eq!(t.s.pending(), 0);
    // Same room, seqs go on: the replayed history shows only what is new.
    t.joined("#lobby", 9);
    t.joined("#rust", 8);
    assert!(
        !t.events()
            .iter()
            .any(|e| matches!(e, Event::Joined { .. } | Event::Focus(_))),
        "rooms we are in are refreshed, not entered again"
    );
    for seq in 3..=9 {
        t.recv(say("#lobby", seq, "bob", seq, "x"));
    }
    // It had been taken: the replay shows it, as anyone's line.
    t.recv(say("#rust", 9, "alice", 1, "lost?"));
    assert!(t.s.is_settled());
    assert_eq!(seqs(&t.events()), vec![6, 7, 8, 9, 9]);
    assert_eq!(t.s.rooms(), vec![room("#lobby"), room("#rust")]);
}

#[test]
fn a_restarted_server_starts_seqs_again() {
    let mut t = T::ready(Transport::Stream);
    t.recv(say("#lobby", 40, "bob", 1, "hi"));
    reconnect(&mut t);
    t.welcome(2, false);
    t.sent();
    // The room is new: our join is seq 1, and the next events must not be taken as repeats.
    t.joined("#lobby", 1);
    t.events();
    t.recv(ev("#lobby", 1, "alice", EventKind::Join));
    t.recv(say("#lobby", 2, "bob", 2, "back"));
    assert_eq!(seqs(&t.events()), vec![1, 2]);
}

#[test]
fn gap_asks_for_history_and_the_refill_is_emitted_once() {
    for transport in [Transport::Stream, Transport::Messages] {
        let mut t = T::ready(transport);
        t.recv(say("#lobby", 2, "bob", 1, "a"));
        t.recv(ServerMsg::Gap {
            room: room("#lobby"),
            first: Seq(3),
            last: Seq(6),
        });
        assert_eq!(
            t.sent(),
            vec![ClientMsg::History {
                room: room("#lobby"),
                after: Seq(2)
            }]
        );
        t.recv(say("#lobby", 7, "bob", 6, "after the gap"));
        // The refill: everything after 2 the server still has (3 is gone), sent twice.
        for _ in 0..2 {
            for seq in 4..=7 {
                t.recv(say("#lobby", seq, "bob", seq, "refill"));
            }
        }
        let evs = t.events();
        assert_eq!(
            evs[1],
            Event::Gap {
                room: room("#lobby"),
                first: Seq(3),
                last: Seq(6)
            }
        );
        assert_eq!(seqs(&evs), vec![2, 7, 4, 5, 6]);
        assert_eq!(t.s.last_seq(&room("#lobby")), Some(Seq(7)));
        // A gap over what was already seen asks for nothing.
        t.recv(ServerMsg::Gap {
            room: room("#lobby"),
            first: Seq(5),
            last: Seq(7),
        });
        assert!(t.sent().is_empty());
        assert!(t.events().is_empty());
    }
}

#[test]
fn keepalive_pings_a_silent_server_and_gives_up_on_a_dead_one() {
    let mut t = T::ready(Transport::Stream);
    let start = t.now;
    assert_eq!(t.s.poll_timeout(), Some(start + CLIENT_PING_AFTER));
    t.advance(CLIENT_PING_AFTER.0 - 1);
    assert!(t.sent().is_empty());
    // Bytes from the server push the ping back.
    t.recv(ServerMsg::Pong { token: 0 });
    t.advance(CLIENT_PING_AFTER.0 - 1);
    assert!(t.sent().is_empty());
    t.advance(1);
    let sent = t.sent();
    assert!(matches!(sent[..], [ClientMsg::Ping { .. }]), "{sent:?}");
    assert_eq!(t.s.poll_timeout(), Some(t.now + PING_TIMEOUT));
    // Answered: keepalive starts over.
    let ClientMsg::Ping { token } = sent[0] else {
        unreachable!()
    };
    t.recv(ServerMsg::Pong { token });
    assert_eq!(t.s.poll_timeout(), Some(t.now + CLIENT_PING_AFTER));
    assert_eq!(t.s.state(), ConnState::Connected);
    // Unanswered: closed and rescheduled.
    t.advance(CLIENT_PING_AFTER.0);
    assert!(matches!(t.sent()[..], [ClientMsg::Ping { .. }]));
    t.events();
    t.advance(PING_TIMEOUT.0 - 1);
    assert_eq!(t.s.state(), ConnState::Connected);
    t.advance(1);
    let evs = t.events();
    assert!(evs.contains(&Event::Close), "{evs:?}");
    assert!(matches!(
        evs.last(),
        Some(Event::State(ConnState::Reconnecting { attempt: 1, .. }))
    ));
    assert!(t.sent().is_empty());
    // Its late bytes are ignored.
    t.recv(say("#lobby", 2, "bob", 1, "late"));
    assert!(t.events().is_empty());
}

/// A computer that slept (its monotonic clock, and every deadline on it, stopped meanwhile) may
/// wake to a dead connection that still looks open: checked at once (the page sees the wall
/// clock jump past the monotonic one), it pings now and gives up after [`WAKE_PING_TIMEOUT`],
/// not after the keepalive's silence first. A ping waiting for its answer is not doubled; waiting
/// to reconnect, it reconnects now.
#[test]
fn a_link_checked_after_a_sleep_pings_at_once_and_a_dead_one_is_given_up() {
    let mut t = T::ready(Transport::Stream);
    t.advance(1_000);
    assert!(t.sent().is_empty());
    t.s.check_link(t.now);
    assert!(matches!(t.sent()[..], [ClientMsg::Ping { .. }]));
    assert_eq!(t.s.poll_timeout(), Some(t.now + WAKE_PING_TIMEOUT));
    t.s.check_link(t.now);
    assert!(t.sent().is_empty(), "one ping at a time");
    t.events();
    t.advance(WAKE_PING_TIMEOUT.0 - 1);
    assert_eq!(t.s.state(), ConnState::Connected);
    t.advance(1);
    let evs = t.events();
    assert!(evs.contains(&Event::Close), "{evs:?}");
    assert!(matches!(t.s.state(), ConnState::Reconnecting { .. }));
    t.s.check_link(t.now);
    assert!(
        t.events().contains(&Event::Connect),
        "waiting to reconnect: now"
    );
}

/// Connection attempts in `secs` seconds of a server that refuses every one at once, with a
/// wake check every 2 s when `wakes` (a wall clock that jumps: each looks like a sleep).
fn attempts_while_refused(secs: u64, wakes: bool) -> usize {
    let mut t = T::new(Transport::Messages);
    t.events();
    t.s.handle_disconnected("refused", t.now);
    let end = t.now + Millis(secs * 1_000);
    let mut next_wake = t.now + Millis(2_000);
    let mut attempts = 0;
    for _ in 0..100_000 {
        let deadline = t.s.poll_timeout().expect("a deadline");
        let at = if wakes {
            deadline.min(next_wake)
        } else {
            deadline
        };
        if at > end {
            break;
        }
        t.now = t.now.max(at);
        if wakes && at == next_wake {
            next_wake = next_wake + Millis(2_000);
            t.s.check_link(t.now);
        } else {
            t.s.handle_timeout(t.now);
        }
        if t.events().contains(&Event::Connect) {
            attempts += 1;
            t.s.handle_disconnected("refused", t.now);
        }
    }
    attempts
}

/// A wake while waiting to reconnect tries at once (the wait was counted on a clock that
/// stopped in the sleep), but wakes one after another do not: each used to start an attempt at
/// once, so a wall clock jumping every 2 s tried every 2 s whatever the backoff said. The time
/// a wake skips is waited after the next failure, so wakes never bring more attempts than the
/// backoff's (one ahead at most); a real sleep still reconnects at once.
#[test]
fn repeated_wakes_while_waiting_keep_to_the_backoff() {
    let plain = attempts_while_refused(120, false);
    let woken = attempts_while_refused(120, true);
    assert!(plain > 5, "{plain}");
    assert!(
        woken <= plain + 1,
        "{woken} attempts with wakes, {plain} without"
    );
    // A wake after the backoff ran long: at once.
    let mut t = T::ready(Transport::Messages);
    t.s.handle_disconnected("network down", t.now);
    for _ in 0..6 {
        t.run_to_deadline();
        t.s.handle_disconnected("still down", t.now);
    }
    let ConnState::Reconnecting { at, .. } = t.s.state() else {
        panic!("{:?}", t.s.state());
    };
    assert!(at.since(t.now) >= Millis(RECONNECT_MAX.0 / 2));
    t.events();
    t.s.check_link(t.now);
    assert_eq!(
        t.events(),
        vec![Event::State(ConnState::Connecting), Event::Connect]
    );
}

/// On waking, the link is probed with a ping that has [`WAKE_PING_TIMEOUT`] to be answered: a
/// link that died in the sleep is found within seconds, not after the keepalive's
/// [`PING_TIMEOUT`]. A ping already waiting is given up as soon; a live link is kept.
#[test]
fn a_link_checked_on_waking_is_given_up_within_seconds() {
    assert!(WAKE_PING_TIMEOUT.0 <= 5_000 && WAKE_PING_TIMEOUT < PING_TIMEOUT);
    let mut t = T::ready(Transport::Stream);
    t.advance(1_000);
    t.s.check_link(t.now);
    let sent = t.sent();
    let [ClientMsg::Ping { token }] = sent[..] else {
        panic!("{sent:?}");
    };
    assert_eq!(t.s.poll_timeout(), Some(t.now + WAKE_PING_TIMEOUT));
    // Answered: alive, and the keepalive starts over as usual.
    t.recv(ServerMsg::Pong { token });
    assert_eq!(t.s.state(), ConnState::Connected);
    assert_eq!(t.s.poll_timeout(), Some(t.now + CLIENT_PING_AFTER));
    // The next keepalive ping has the usual time to be answered.
    t.advance(CLIENT_PING_AFTER.0);
    assert!(matches!(t.sent()[..], [ClientMsg::Ping { .. }]));
    assert_eq!(t.s.poll_timeout(), Some(t.now + PING_TIMEOUT));
    // A wake while that ping waits: given up within the wake's time, not the ping's.
    t.advance(1_000);
    t.s.check_link(t.now);
    assert!(t.sent().is_empty(), "one ping at a time");
    t.events();
    t.advance(WAKE_PING_TIMEOUT.0 - 1);
    assert_eq!(t.s.state(), ConnState::Connected);
    t.advance(1);
    let evs = t.events();
    assert!(evs.contains(&Event::Close), "{evs:?}");
    // Unanswered after a fresh wake: dead within the wake's time.
    let mut t = T::ready(Transport::Stream);
    t.s.check_link(t.now);
    assert!(matches!(t.sent()[..], [ClientMsg::Ping { .. }]));
    t.events();
    t.advance(WAKE_PING_TIMEOUT.0);
    assert!(t.events().contains(&Event::Close));
    assert!(matches!(t.s.state(), ConnState::Reconnecting { .. }));
}

#[test]
fn a_transport_that_never_opens_is_given_up_on() {
    let mut t = T::new(Transport::Messages);
    t.events();
    assert_eq!(t.s.poll_timeout(), Some(t.now + CONNECT_TIMEOUT));
    t.run_to_deadline();
    let evs = t.events();
    assert!(evs.contains(&Event::Close));
    assert!(matches!(
        evs.iter().rev().find(|e| matches!(e, Event::State(_))),
        Some(Event::State(ConnState::Reconnecting { attempt: 1, .. }))
    ));
}

#[test]
fn reconnect_now_skips_the_rest_of_the_backoff() {
    let mut t = T::ready(Transport::Messages);
    // Connected: nothing to do.
    t.s.reconnect_now(t.now);
    assert!(t.events().is_empty());
    t.s.handle_disconnected("network down", t.now);
    for _ in 0..3 {
        // Fail a few times so the backoff is long.
        t.advance(RECONNECT_MAX.0);
        t.s.handle_disconnected("still down", t.now);
    }
    let ConnState::Reconnecting { at, .. } = t.s.state() else {
        panic!("{:?}", t.s.state());
    };
    assert!(at > t.now);
    t.events();
    t.s.reconnect_now(t.now);
    assert_eq!(
        t.events(),
        vec![Event::State(ConnState::Connecting), Event::Connect]
    );
    assert_eq!(t.s.state(), ConnState::Connecting);
}

#[test]
fn welcome_resets_the_backoff() {
    let mut t = T::ready(Transport::Stream);
    // Connections that open but are never welcomed count as failed attempts.
    for _ in 0..3 {
        reconnect(&mut t);
    }
    t.s.handle_disconnected("again", t.now);
    assert!(matches!(
        t.s.state(),
        ConnState::Reconnecting { attempt: 4, .. }
    ));
    t.run_to_deadline();
    t.s.handle_connected(t.now);
    t.welcome(5, true);
    t.s.handle_disconnected("again", t.now);
    assert!(matches!(
        t.s.state(),
        ConnState::Reconnecting { attempt: 1, .. }
    ));
    // A disconnect report for a transport already given up on changes nothing.
    t.events();
    t.s.handle_disconnected("again", t.now);
    assert!(t.events().is_empty());
}

#[test]
fn quit_closes_for_good() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_input("/quit", t.now);
    assert_eq!(t.sent(), vec![ClientMsg::Quit { reason: None }]);
    assert_eq!(
        t.events(),
        vec![Event::Close, Event::State(ConnState::Closed)]
    );
    assert_eq!(t.s.state(), ConnState::Closed);
    assert_eq!(t.s.fatal(), None, "the user's own quit is not a failure");
    assert_eq!(t.s.poll_timeout(), None);
    t.s.handle_disconnected("eof", t.now);
    t.advance(RECONNECT_MAX.0 * 10);
    t.recv(say("#lobby", 2, "bob", 1, "hello?"));
    assert!(t.events().is_empty(), "no reconnect, nothing after close");
    assert!(t.sent().is_empty());
    t.s.handle_input("hi", t.now);
    assert_eq!(errors(&t.events()), vec!["the session is closed"]);
}

#[test]
fn quit_while_disconnected_still_closes() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_disconnected("eof", t.now);
    t.s.handle_input("unsent", t.now);
    t.events();
    t.s.handle_input("/quit", t.now);
    let evs = t.events();
    assert_eq!(evs[..2], [Event::Close, Event::State(ConnState::Closed)]);
    assert_eq!(
        evs[2],
        Event::Settled {
            id: MsgId(1),
            delivered: false
        }
    );
    assert!(matches!(&evs[3], Event::Info(m) if m.contains("1 unacknowledged")));
    assert_eq!(t.s.poll_timeout(), None);
}

#[test]
fn version_mismatch_closes_without_retry() {
    let mut t = T::new(Transport::Stream);
    t.s.handle_connected(t.now);
    t.events();
    t.recv(ServerMsg::Error {
        kind: ErrorKind::Version,
        re: Re::Conn,
        detail: "this server speaks version 2".into(),
    });
    t.recv(ServerMsg::Bye {
        reason: "bye".into(),
    });
    assert_eq!(
        t.events(),
        vec![
            Event::Error {
                kind: Some(ErrorKind::Version),
                about: About::Session,
                text: "this server speaks version 2".into()
            },
            Event::Close,
            Event::State(ConnState::Closed),
        ]
    );
    assert_eq!(t.s.poll_timeout(), None);
    assert_eq!(t.s.fatal(), Some("this server speaks version 2"));
}

#[test]
fn bye_is_shown_then_reconnects() {
    let mut t = T::ready(Transport::Messages);
    t.recv(ServerMsg::Bye {
        reason: "server shutting down".into(),
    });
    let evs = t.events();
    // One notice of the drop, with the server's words, and nothing that words the state.
    assert_eq!(
        evs[0],
        Event::Info("connection lost: server shutting down; reconnecting".into())
    );
    assert_eq!(evs[1], Event::Close);
    assert_eq!(evs.len(), 3, "one notice: {evs:?}");
    assert!(
        evs.iter()
            .filter_map(|e| match e {
                Event::State(s) => crate::render::state_words(*s),
                _ => None,
            })
            .next()
            .is_none(),
        "{evs:?}"
    );
    assert!(matches!(
        t.s.state(),
        ConnState::Reconnecting { attempt: 1, .. }
    ));
}

#[test]
fn malformed_input_is_an_error_and_a_reconnect_never_a_panic() {
    let bad_frames: Vec<Vec<u8>> = vec![
        vec![0xff, 0xff, 0xff, 0xff],       // oversize prefix
        vec![0, 0, 0, 3, 0xfe, 0xfe, 0xfe], // garbage payload
        vec![0, 0, 0, 1, 0],                // welcome cut short
        [
            &wire::encode_frame(&ServerMsg::Ping { token: 1 }).unwrap()[..],
            &[0],
        ]
        .concat(),
    ];
    for (i, bytes) in bad_frames.iter().enumerate() {
        let mut t = T::ready(Transport::Stream);
        // A trailing byte makes the last case a frame with an extra byte in the payload.
        let mut bytes = bytes.clone();
        if i == 3 {
            let len = bytes.len() - LEN_PREFIX;
            bytes[..LEN_PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
        }
        t.s.handle_bytes(&bytes, t.now);
        let evs = t.events();
        assert_eq!(errors(&evs).len(), 1, "case {i}: {evs:?}");
        assert!(evs.contains(&Event::Close), "case {i}");
        assert!(
            matches!(t.s.state(), ConnState::Reconnecting { .. }),
            "case {i}"
        );
    }
    for payload in [&[][..], &[0xff][..], &[9, 9, 9][..]] {
        let mut t = T::ready(Transport::Messages);
        t.s.handle_message(payload, t.now);
        let evs = t.events();
        assert_eq!(errors(&evs).len(), 1, "{payload:?}: {evs:?}");
        assert!(evs.contains(&Event::Close));
    }
    let mut t = T::ready(Transport::Messages);
    t.s.handle_message(&vec![0; MAX_FRAME + 1], t.now);
    assert!(t.events().contains(&Event::Close));
}

#[test]
fn frames_split_anywhere_decode_the_same() {
    let mut t = T::ready(Transport::Stream);
    let mut bytes = Vec::new();
    for seq in 2..=6 {
        bytes.extend_from_slice(
            &wire::encode_frame(&say("#lobby", seq, "bob", seq, "hey")).unwrap(),
        );
    }
    for b in &bytes {
        t.s.handle_bytes(&[*b], t.now);
    }
    assert_eq!(seqs(&t.events()), vec![2, 3, 4, 5, 6]);
}

/// What the bridge might pass on in one message: chat, replies and a ping, back to back.
fn a_hub_cycle() -> Vec<ServerMsg> {
    vec![
        say("#lobby", 2, "bob", 1, "one"),
        say("#lobby", 3, "carol", 1, "two"),
        ServerMsg::Topic {
            room: room("#lobby"),
            topic: Some(text("news")),
        },
        ServerMsg::Ping { token: 77 },
        say("#lobby", 4, "bob", 2, "three"),
        ServerMsg::Members {
            room: room("#lobby"),
            members: vec![nick("alice"), nick("bob")],
        },
    ]
}

fn frames(msgs: &[ServerMsg]) -> Vec<u8> {
    msgs.iter()
        .flat_map(|m| wire::encode_frame(m).unwrap().to_vec())
        .collect()
}

#[test]
fn a_batch_of_frames_acts_like_its_frames_one_by_one() {
    let msgs = a_hub_cycle();
    let mut one_by_one = T::ready(Transport::Messages);
    for m in &msgs {
        one_by_one.recv(m.clone());
    }
    let mut batched = T::ready(Transport::Messages);
    batched.s.handle_message(&frames(&msgs), batched.now);
    let want = one_by_one.events();
    assert_eq!(seqs(&want), vec![2, 3, 4]);
    assert_eq!(batched.events(), want);
    let sent = batched.sent();
    assert!(sent.contains(&ClientMsg::Pong { token: 77 }), "{sent:?}");
    assert_eq!(sent, one_by_one.sent());
    assert_eq!(batched.s.state(), ConnState::Connected);
}

#[test]
fn a_batch_with_a_partial_trailing_frame_is_refused() {
    let whole = frames(&a_hub_cycle());
    let last = wire::encode_frame(&say("#lobby", 5, "bob", 3, "cut")).unwrap();
    // Cut inside the last frame's prefix, and inside its payload.
    for keep in [1, LEN_PREFIX, last.len() - 1] {
        let mut t = T::ready(Transport::Messages);
        let batch = [&whole[..], &last[..keep]].concat();
        t.s.handle_message(&batch, t.now);
        let evs = t.events();
        assert_eq!(errors(&evs).len(), 1, "keep {keep}: {evs:?}");
        assert!(errors(&evs)[0].contains("cut off"), "{evs:?}");
        assert!(seqs(&evs).is_empty(), "nothing of a bad batch is acted on");
        assert!(evs.contains(&Event::Close));
        assert!(matches!(t.s.state(), ConnState::Reconnecting { .. }));
        assert!(!t.sent().contains(&ClientMsg::Pong { token: 77 }));
    }
}

#[test]
fn a_batch_stops_at_a_frame_that_does_not_decode() {
    let mut t = T::ready(Transport::Messages);
    let mut batch = frames(&[say("#lobby", 2, "bob", 1, "fine")]);
    batch.extend_from_slice(&[0, 0, 0, 2, 0xfe, 0xfe]);
    batch.extend_from_slice(&frames(&[say("#lobby", 3, "bob", 2, "never")]));
    t.s.handle_message(&batch, t.now);
    let evs = t.events();
    assert_eq!(seqs(&evs), vec![2]);
    assert_eq!(errors(&evs).len(), 1, "{evs:?}");
    assert!(evs.contains(&Event::Close));
}

#[test]
fn pending_is_bounded_and_says_so() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_disconnected("gone", t.now);
    t.events();
    for i in 0..SESSION_MAX_PENDING {
        assert!(t.s.has_room(), "room for message {i}");
        t.s.handle_input(&format!("m{i}"), t.now);
    }
    assert!(errors(&t.events()).is_empty());
    // A front-end that can hold its input back (line mode) stops here.
    assert!(!t.s.has_room());
    t.s.handle_input("one too many", t.now);
    let errs = errors(&t.events());
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("waiting to be sent"), "{errs:?}");
    assert_eq!(t.s.pending(), SESSION_MAX_PENDING);
    t.run_to_deadline();
    t.s.handle_connected(t.now);
    t.welcome(2, true);
    let sent = t.drain_paced();
    assert_eq!(sent.len(), 1 + SESSION_MAX_PENDING);
    let ids: Vec<u64> = sent
        .iter()
        .filter_map(|m| match m {
            ClientMsg::Say { id, .. } => Some(id.0),
            _ => None,
        })
        .collect();
    assert_eq!(ids, (1..=SESSION_MAX_PENDING as u64).collect::<Vec<_>>());
}

#[test]
fn input_before_the_welcome_goes_out_after_it() {
    let mut t = T::new(Transport::Stream);
    t.s.handle_input("/join #rust", t.now);
    t.s.handle_input("hello rust", t.now);
    t.s.handle_input("/nick al", t.now);
    assert!(errors(&t.events()).is_empty());
    t.s.handle_connected(t.now);
    t.sent();
    assert!(!t.s.is_settled());
    t.welcome(1, false);
    assert_eq!(
        t.sent(),
        vec![
            ClientMsg::Join {
                room: room("#lobby")
            },
            ClientMsg::Join {
                room: room("#rust")
            },
            ClientMsg::Nick { nick: nick("al") },
            ClientMsg::Say {
                room: room("#rust"),
                id: MsgId(1),
                text: text("hello rust")
            },
        ]
    );
    t.joined("#lobby", 1);
    assert!(!t.events().contains(&Event::Focus(room("#lobby"))));
    t.joined("#rust", 1);
    assert!(
        t.events().contains(&Event::Focus(room("#rust"))),
        "/join asks to show it"
    );
    assert!(!t.s.is_settled(), "message not yet echoed");
    t.recv(ServerMsg::Ack { id: MsgId(1) });
    assert!(t.s.is_settled());
}

#[test]
fn settled_only_when_everything_is_answered() {
    let mut t = T::new(Transport::Stream);
    assert!(!t.s.is_settled(), "not connected");
    t.s.handle_connected(t.now);
    assert!(!t.s.is_settled(), "not welcomed");
    t.welcome(1, false);
    assert!(!t.s.is_settled(), "join unanswered");
    t.joined("#lobby", 1);
    assert!(t.s.is_settled());
    t.s.handle_input("/part", t.now);
    assert!(!t.s.is_settled(), "part unanswered");
    t.recv(ServerMsg::Parted {
        room: room("#lobby"),
    });
    assert!(t.s.is_settled());
    t.s.handle_input("/join #full", t.now);
    t.recv(ServerMsg::Error {
        kind: ErrorKind::TooManyRooms,
        re: Re::Room(room("#full")),
        detail: "too many rooms".into(),
    });
    assert!(t.s.is_settled(), "a refused join is answered");
    t.s.handle_disconnected("x", t.now);
    assert!(!t.s.is_settled());
}

#[test]
fn too_many_rooms_is_refused_locally() {
    let mut t = T::ready(Transport::Stream);
    for i in 1..MAX_ROOMS_PER_USER {
        t.s.handle_input(&format!("/join #r{i}"), t.now);
    }
    assert!(errors(&t.events()).is_empty());
    t.s.handle_input("/join #onemore", t.now);
    assert_eq!(errors(&t.events()).len(), 1);
    assert_eq!(t.drain_paced().len(), MAX_ROOMS_PER_USER - 1);
}

mod props {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn bounded(s: &Session) {
        assert!(s.events.queue.len() <= MAX_QUEUED_EVENTS);
        assert!(s.link.queued_transmits() <= MAX_QUEUED_TRANSMITS);
        assert!(s.pending() <= SESSION_MAX_PENDING);
        assert!(s.link.buffered() <= LEN_PREFIX + 2 * MAX_FRAME);
        assert!(s.rooms.all().len() <= MAX_ROOMS_PER_USER);
        assert!(s.rooms.all().iter().all(|r| r.gaps.len() <= MAX_OPEN_GAPS));
    }

    /// Things a server (or the network) may do to a joined session.
    #[derive(Debug, Clone)]
    enum Step {
        Say { room: bool, seq: u64, mine: bool },
        Gap { room: bool, first: u64, len: u64 },
        Ack(u64),
        Ping,
        Type,
        Reconnect,
        Tick(u64),
    }

    /// Mostly small seqs (so they collide), sometimes the extremes.
    fn seq() -> impl Strategy<Value = u64> {
        prop_oneof![20 => 1..60u64, 1 => Just(0), 1 => u64::MAX - 3..=u64::MAX]
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (any::<bool>(), seq(), any::<bool>())
                .prop_map(|(room, seq, mine)| Step::Say { room, seq, mine }),
            1 => (any::<bool>(), seq(), 0..10u64)
                .prop_map(|(room, first, len)| Step::Gap { room, first, len }),
            1 => (0..20u64).prop_map(Step::Ack),
            1 => Just(Step::Ping),
            2 => Just(Step::Type),
            1 => Just(Step::Reconnect),
            1 => (0..40_000u64).prop_map(Step::Tick),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_panic_and_stay_bounded(
            chunks in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..600),
                0..20,
            ),
            messages in any::<bool>(),
        ) {
            let transport = if messages { Transport::Messages } else { Transport::Stream };
            let mut t = T::ready(transport);
            for c in &chunks {
                if messages {
                    t.s.handle_message(c, t.now);
                } else {
                    t.s.handle_bytes(c, t.now);
                }
                bounded(&t.s);
                if t.s.state() != ConnState::Connected {
                    // Back to a fresh connection, so every chunk is read by someone.
                    t.events();
                    t.run_to_deadline();
                    t.s.handle_connected(t.now);
                    t.welcome(2, true);
                }
                t.events();
                t.sent();
            }
        }

        #[test]
        fn valid_frames_after_a_random_prefix_never_panic(
            prefix in proptest::collection::vec(any::<u8>(), 0..64),
            seq in 1..1000u64,
        ) {
            let mut t = T::ready(Transport::Stream);
            let mut bytes = prefix;
            let frame = wire::encode_frame(&say("#lobby", seq, "bob", 1, "x")).unwrap();
            bytes.extend_from_slice(&frame);
            t.s.handle_bytes(&bytes, t.now);
            bounded(&t.s);
        }

        #[test]
        fn no_seq_is_emitted_twice(steps in proptest::collection::vec(step(), 0..200)) {
            let mut t = T::ready(Transport::Messages);
            t.s.handle_input("/join #rust", t.now);
            t.joined("#rust", 1);
            t.events();
            t.sent();
            let mut seen: HashSet<(RoomName, Seq)> = HashSet::new();
            let mut last_id = 0;
            let mut ids = HashSet::new();
            for st in steps {
                match st {
                    Step::Say { room: r, seq, mine } => {
                        let r = if r { "#lobby" } else { "#rust" };
                        let from = if mine { "alice" } else { "bob" };
                        t.recv(say(r, seq, from, seq % 20, "x"));
                    }
                    Step::Gap { room: r, first, len } => {
                        let r = if r { "#lobby" } else { "#rust" };
                        t.recv(ServerMsg::Gap {
                            room: room(r),
                            first: Seq(first),
                            last: Seq(first.saturating_add(len)),
                        });
                    }
                    Step::Ack(id) => t.recv(ServerMsg::Ack { id: MsgId(id) }),
                    Step::Ping => t.recv(ServerMsg::Ping { token: 1 }),
                    Step::Type => t.s.handle_input("hi", t.now),
                    Step::Reconnect => {
                        t.s.handle_disconnected("drop", t.now);
                        t.run_to_deadline();
                        t.s.handle_connected(t.now);
                        t.welcome(3, true);
                    }
                    Step::Tick(ms) => t.advance(ms),
                }
                if matches!(t.s.state(), ConnState::Reconnecting { .. }) {
                    t.run_to_deadline();
                    t.s.handle_connected(t.now);
                    t.welcome(3, true);
                }
                bounded(&t.s);
                for e in t.events() {
                    if let Event::Room(ev) = e {
                        let new = seen.insert((ev.room.clone(), ev.seq));
                        prop_assert!(new, "{} #{} twice", ev.room, ev.seq);
                    }
                }
                for m in t.sent() {
                    if let ClientMsg::Say { id, .. } = m {
                        // Resends repeat an id; a new message always gets a higher one.
                        if ids.insert(id.0) {
                            prop_assert!(id.0 > last_id, "id {} after {}", id.0, last_id);
                            last_id = id.0;
                        }
                    }
                }
            }
            prop_assert!(last_id <= t.s.out.last_id());
        }
    }
}

#[test]
fn a_refill_cut_short_is_asked_again_and_what_is_gone_is_not() {
    let mut t = T::ready(Transport::Messages);
    t.recv(say("#lobby", 2, "bob", 1, "a"));
    t.recv(ServerMsg::Gap {
        room: room("#lobby"),
        first: Seq(3),
        last: Seq(10),
    });
    assert_eq!(
        t.sent(),
        vec![ClientMsg::History {
            room: room("#lobby"),
            after: Seq(2)
        }]
    );
    // The reply: 3 is gone, 4..=5 fit, the rest (up to the latest, 12) did not.
    t.recv(ServerMsg::Gap {
        room: room("#lobby"),
        first: Seq(3),
        last: Seq(3),
    });
    assert!(
        t.sent().is_empty(),
        "asking again for what is gone would loop"
    );
    t.recv(say("#lobby", 4, "bob", 4, "x"));
    t.recv(say("#lobby", 5, "bob", 5, "x"));
    t.recv(ServerMsg::Gap {
        room: room("#lobby"),
        first: Seq(6),
        last: Seq(12),
    });
    assert_eq!(
        t.sent(),
        vec![ClientMsg::History {
            room: room("#lobby"),
            after: Seq(5)
        }],
        "progress was made: ask for the rest"
    );
    let evs = t.events();
    assert_eq!(seqs(&evs), vec![2, 4, 5]);
    let gaps: Vec<&Event> = evs
        .iter()
        .filter(|e| matches!(e, Event::Gap { .. }))
        .collect();
    assert_eq!(
        gaps,
        vec![
            &Event::Gap {
                room: room("#lobby"),
                first: Seq(3),
                last: Seq(10)
            },
            &Event::Gap {
                room: room("#lobby"),
                first: Seq(11),
                last: Seq(12)
            },
        ],
        "only the part not already reported is shown"
    );
    // The same marker again (no progress) asks nothing.
    t.recv(ServerMsg::Gap {
        room: room("#lobby"),
        first: Seq(6),
        last: Seq(12),
    });
    assert!(t.sent().is_empty());
    for seq in 6..=12 {
        t.recv(say("#lobby", seq, "bob", seq, "x"));
    }
    t.recv(say("#lobby", 13, "bob", 13, "live"));
    assert_eq!(seqs(&t.events()), vec![6, 7, 8, 9, 10, 11, 12, 13]);
    assert!(t.s.rooms.get(&room("#lobby")).unwrap().gaps.is_empty());
}

#[test]
fn extreme_seqs_do_not_overflow() {
    let mut t = T::ready(Transport::Stream);
    t.recv(say("#lobby", u64::MAX, "bob", u64::MAX, "end of time"));
    for (first, last) in [(u64::MAX, u64::MAX), (0, u64::MAX), (u64::MAX - 1, 0)] {
        t.recv(ServerMsg::Gap {
            room: room("#lobby"),
            first: Seq(first),
            last: Seq(last),
        });
    }
    t.recv(say("#lobby", u64::MAX, "bob", 1, "again"));
    t.recv(say("#lobby", 0, "bob", 1, "zero"));
    let evs = t.events();
    assert_eq!(seqs(&evs), vec![u64::MAX]);
    assert!(!evs.iter().any(|e| matches!(e, Event::Gap { .. })));
    assert_eq!(t.s.state(), ConnState::Connected);

    let mut t = T::ready(Transport::Stream);
    t.recv(ServerMsg::Gap {
        room: room("#lobby"),
        first: Seq(u64::MAX - 1),
        last: Seq(u64::MAX),
    });
    t.recv(say("#lobby", u64::MAX - 1, "bob", 1, "refill"));
    t.recv(say("#lobby", u64::MAX, "bob", 1, "refill"));
    t.recv(say("#lobby", u64::MAX, "bob", 1, "refill"));
    assert_eq!(seqs(&t.events()), vec![u64::MAX - 1, u64::MAX]);
}

#[test]
fn a_rejoin_asks_for_what_its_replay_does_not_cover() {
    let mut t = T::ready(Transport::Stream);
    t.recv(say("#lobby", 5, "bob", 1, "before"));
    reconnect(&mut t);
    t.welcome(2, false);
    assert_eq!(
        t.sent(),
        vec![ClientMsg::Join {
            room: room("#lobby")
        }]
    );
    t.events();
    // Away long enough for 5..=70 to happen; the join replays only 60..=70 (our join).
    t.joined("#lobby", 70);
    for seq in 60..=70 {
        t.recv(say("#lobby", seq, "bob", seq, "recent"));
    }
    assert_eq!(
        t.sent(),
        vec![ClientMsg::History {
            room: room("#lobby"),
            after: Seq(5)
        }]
    );
    let evs = t.events();
    assert_eq!(
        evs.iter().find(|e| matches!(e, Event::Gap { .. })),
        Some(&Event::Gap {
            room: room("#lobby"),
            first: Seq(6),
            last: Seq(59)
        })
    );
    assert_eq!(seqs(&evs), (60..=70).collect::<Vec<_>>());
    // The refill: what the server still has after 5, once each.
    for seq in 40..=70 {
        t.recv(say("#lobby", seq, "bob", seq, "older"));
    }
    assert_eq!(seqs(&t.events()), (40..=59).collect::<Vec<_>>());
    // Live traffic goes on; no further history requests.
    t.recv(say("#lobby", 71, "bob", 71, "live"));
    assert_eq!(seqs(&t.events()), vec![71]);
    assert!(t.sent().is_empty());
}

#[test]
fn rejoining_a_room_being_left_really_joins() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_input("/part", t.now);
    t.s.handle_input("/join #lobby", t.now);
    assert_eq!(
        t.sent(),
        vec![
            ClientMsg::Part {
                room: room("#lobby"),
                reason: None
            },
            ClientMsg::Join {
                room: room("#lobby")
            },
        ]
    );
    t.recv(ServerMsg::Parted {
        room: room("#lobby"),
    });
    t.joined("#lobby", 3);
    assert!(t.s.is_settled());
    assert_eq!(t.s.rooms(), vec![room("#lobby")]);
    let evs = t.events();
    assert!(matches!(evs[0], Event::Parted { .. }));
    assert!(matches!(evs[1], Event::Joined { .. }));
}

/// The hub's flood rule, applied to what the session sent at which time: returns how many
/// commands would have had to wait (with the hub's defaults).
fn server_would_delay(sends: &[(Millis, ClientMsg)]) -> usize {
    let mut tokens = u64::from(FLOOD_BURST);
    let mut last = sends.first().map_or(Millis::ZERO, |s| s.0);
    let mut waited = 0;
    for (at, msg) in sends {
        if matches!(
            msg,
            ClientMsg::Hello { .. }
                | ClientMsg::Ping { .. }
                | ClientMsg::Pong { .. }
                | ClientMsg::History { .. }
        ) {
            continue;
        }
        let n = at.since(last).0 / FLOOD_REFILL.0;
        if n > 0 {
            tokens = (tokens + n).min(u64::from(FLOOD_BURST));
            last = if tokens == u64::from(FLOOD_BURST) {
                *at
            } else {
                last + Millis(n * FLOOD_REFILL.0)
            };
        }
        if tokens == 0 {
            waited += 1;
        } else {
            tokens -= 1;
        }
    }
    waited
}

#[test]
fn a_burst_is_paced_to_the_servers_flood_rate_in_order() {
    let mut t = T::ready(Transport::Stream);
    t.advance(FLOOD_REFILL.0 * u64::from(FLOOD_BURST)); // bucket full again
    for i in 0..40 {
        t.s.handle_input(&format!("line {i}"), t.now);
    }
    t.s.handle_input("/who", t.now);
    let mut sends: Vec<(Millis, ClientMsg)> = t.sent().into_iter().map(|m| (t.now, m)).collect();
    assert_eq!(sends.len(), FLOOD_BURST as usize, "a burst goes at once");
    assert!(!t.s.is_settled());
    let start = t.now;
    while t.s.out.is_pacing() {
        let due = t.s.poll_timeout().unwrap();
        assert!(due <= t.now + FLOOD_REFILL);
        t.now = due;
        t.s.handle_timeout(due);
        sends.extend(t.sent().into_iter().map(|m| (due, m)));
    }
    assert_eq!(sends.len(), 41);
    assert_eq!(
        t.now.since(start),
        Millis(FLOOD_REFILL.0 * 31),
        "then one per refill"
    );
    assert_eq!(server_would_delay(&sends), 0);
    let said: Vec<String> = sends
        .iter()
        .filter_map(|(_, m)| match m {
            ClientMsg::Say { text, .. } => Some(text.to_string()),
            _ => None,
        })
        .collect();
    let want: Vec<String> = (0..40).map(|i| format!("line {i}")).collect();
    assert_eq!(said, want);
    assert_eq!(
        sends[40].1,
        ClientMsg::Who {
            room: room("#lobby")
        }
    );
    // Keepalive and refill requests are free and never wait.
    t.recv(ServerMsg::Ping { token: 5 });
    assert_eq!(t.sent(), vec![ClientMsg::Pong { token: 5 }]);
}

#[test]
fn a_resume_resends_within_the_flood_rate_and_acked_ones_are_skipped() {
    let mut t = T::ready(Transport::Messages);
    t.s.handle_disconnected("gone", t.now);
    for i in 0..100 {
        t.s.handle_input(&format!("m{i}"), t.now);
    }
    t.s.handle_input("/nick al", t.now);
    t.run_to_deadline();
    t.s.handle_connected(t.now);
    t.sent();
    t.welcome(2, true);
    let first = t.sent();
    assert_eq!(first.len(), FLOOD_BURST as usize);
    assert_eq!(first[0], ClientMsg::Nick { nick: nick("al") });
    // Acknowledged while waiting (e.g. a duplicate the server already had): not sent.
    let waiting = t.s.out.waiting();
    t.recv(ServerMsg::Ack { id: MsgId(50) });
    assert_eq!(t.s.out.waiting(), waiting - 1);
    let rest = t.drain_paced();
    let ids: Vec<u64> = first
        .iter()
        .chain(&rest)
        .filter_map(|m| match m {
            ClientMsg::Say { id, .. } => Some(id.0),
            _ => None,
        })
        .collect();
    let want: Vec<u64> = (1..=100).filter(|&i| i != 50).collect();
    assert_eq!(ids, want);
}

#[test]
fn commands_waiting_for_tokens_survive_a_drop() {
    let mut t = T::ready(Transport::Stream);
    for _ in 0..FLOOD_BURST {
        t.s.handle_input("/rooms", t.now);
    }
    t.s.handle_input("/topic new topic", t.now);
    assert_eq!(t.sent().len(), FLOOD_BURST as usize - 1, "join took one");
    t.s.handle_disconnected("gone", t.now);
    t.run_to_deadline();
    t.s.handle_connected(t.now);
    t.sent();
    t.welcome(2, true);
    assert_eq!(
        t.sent(),
        vec![
            ClientMsg::Rooms,
            ClientMsg::Topic {
                room: room("#lobby"),
                topic: Some(text("new topic"))
            }
        ]
    );
}

#[test]
fn flood_pacing_follows_the_servers_settings() {
    let mut t = T::ready(Transport::Stream);
    t.s.set_flood_limits(3, Millis(1_000), t.now);
    for i in 0..5 {
        t.s.handle_input(&format!("x{i}"), t.now);
    }
    assert_eq!(t.sent().len(), 3);
    assert_eq!(t.s.poll_timeout(), Some(t.now + Millis(1_000)));
    t.advance(999);
    assert!(t.sent().is_empty());
    t.advance(1);
    assert_eq!(t.sent().len(), 1);
    // Off: everything waiting goes at the next timeout, and new input at once.
    t.s.set_flood_limits(0, Millis::ZERO, t.now);
    assert_eq!(t.s.poll_timeout(), Some(t.now));
    t.s.handle_timeout(t.now);
    assert_eq!(t.sent().len(), 1);
    for i in 0..50 {
        t.s.handle_input(&format!("y{i}"), t.now);
    }
    assert_eq!(t.sent().len(), 50);
}

fn welcome_with(t: &mut T, limits: Limits) {
    t.recv(ServerMsg::Welcome {
        version: PROTOCOL_VERSION,
        nick: nick("alice"),
        token: ResumeToken([1; 32]),
        resumed: false,
        limits,
    });
}

#[test]
fn pacing_follows_the_limits_the_welcome_announces() {
    let mut t = T::new(Transport::Stream);
    t.s.handle_connected(t.now);
    t.sent();
    let strict = Limits {
        flood_burst: 2,
        flood_refill: Millis(500),
        ..Limits::default()
    };
    welcome_with(&mut t, strict);
    assert_eq!(t.s.out.rates(), (2, Millis(500)));
    // The join of #lobby took one token.
    assert_eq!(t.sent().len(), 1);
    t.joined("#lobby", 1);
    for i in 0..4 {
        t.s.handle_input(&format!("x{i}"), t.now);
    }
    assert_eq!(t.sent().len(), 1, "the burst's second token");
    t.advance(499);
    assert!(t.sent().is_empty());
    t.advance(1);
    assert_eq!(t.sent().len(), 1, "one per announced refill");

    // A server announcing absurd limits is believed only within bounds.
    let mut t = T::new(Transport::Messages);
    t.s.handle_connected(t.now);
    welcome_with(
        &mut t,
        Limits {
            flood_burst: 0,
            flood_refill: Millis(u64::MAX),
            ..Limits::default()
        },
    );
    assert_eq!(t.s.out.rates(), (1, MAX_ANNOUNCED_REFILL));
    let mut t = T::new(Transport::Messages);
    t.s.handle_connected(t.now);
    welcome_with(
        &mut t,
        Limits {
            flood_burst: u32::MAX,
            flood_refill: Millis(1),
            ..Limits::default()
        },
    );
    assert_eq!(t.s.out.rates(), (MAX_ANNOUNCED_BURST, Millis(1)));
}

#[test]
fn a_server_with_fewer_rooms_and_shorter_texts_is_respected_locally() {
    let mut t = T::new(Transport::Stream);
    t.s.handle_connected(t.now);
    t.sent();
    welcome_with(
        &mut t,
        Limits {
            max_rooms_per_user: 2,
            max_text_bytes: 10,
            ..Limits::default()
        },
    );
    t.joined("#lobby", 1);
    t.s.handle_input("/join #two", t.now);
    t.s.handle_input("/join #three", t.now);
    t.s.handle_input("short", t.now);
    t.s.handle_input("this is far too long", t.now);
    t.s.handle_input("/msg bob this is far too long", t.now);
    let sent = t.sent();
    assert_eq!(
        sent.len(),
        3,
        "the join of #lobby, #two and one message: {sent:?}"
    );
    let evs = t.events();
    assert_eq!(
        abouts(&evs),
        vec![About::Join(room("#three")), About::Input, About::Input],
        "{evs:?}"
    );
    assert!(errors(&evs)[0].contains("at most 2 rooms"));
    assert!(errors(&evs)[1].contains("at most 10"));
}

#[test]
fn a_bridge_that_cannot_reach_the_server_is_said_in_the_drivers_words() {
    let failed = |evs: &[Event]| -> Vec<String> {
        evs.iter()
            .filter_map(|e| match e {
                Event::ConnectFailed { why, .. } => Some(why.clone()),
                _ => None,
            })
            .collect()
    };
    // The WebSocket opens (the bridge took it), then closes with nothing from the server.
    let mut t = T::new(Transport::Messages);
    t.s.handle_connected(t.now);
    t.sent();
    t.events();
    t.s.handle_disconnected("cannot reach the chat server", t.now);
    assert_eq!(failed(&t.events()), ["cannot reach the chat server"]);
    // Once the server answered through it, a close before the welcome is the server's doing.
    t.run_to_deadline();
    t.s.handle_connected(t.now);
    t.sent();
    t.recv(ServerMsg::Ping { token: 1 });
    t.events();
    t.s.handle_disconnected("connection closed (code 1006)", t.now);
    assert_eq!(
        failed(&t.events()),
        ["the server did not welcome us: connection closed (code 1006)"]
    );
    // A stream transport that opened reached the server itself.
    let mut t = T::new(Transport::Stream);
    t.s.handle_connected(t.now);
    t.sent();
    t.events();
    t.s.handle_disconnected("reset", t.now);
    assert_eq!(
        failed(&t.events()),
        ["the server did not welcome us: reset"]
    );
}

#[test]
fn a_full_server_refusing_every_attempt_is_said_as_one_reason_per_attempt() {
    let mut t = T::new(Transport::Messages);
    t.events();
    for attempt in 1..=4u32 {
        t.s.handle_connected(t.now);
        t.sent();
        // What a full server sends (`Reply::Fatal`): an error, then its goodbye.
        t.recv(ServerMsg::Error {
            kind: ErrorKind::Full,
            re: Re::Conn,
            detail: "server full".into(),
        });
        t.recv(ServerMsg::Bye {
            reason: "server full".into(),
        });
        t.s.handle_disconnected("connection closed (code 1000)", t.now);
        let evs = t.events();
        let said: Vec<&Event> = evs
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::Error { .. } | Event::Info(_) | Event::ConnectFailed { .. }
                )
            })
            .collect();
        assert!(
            matches!(said[..], [Event::ConnectFailed { why, .. }] if why == "server full"),
            "attempt {attempt}: {evs:?}"
        );
        assert!(matches!(t.s.state(), ConnState::Reconnecting { attempt: a, .. } if a == attempt));
        t.run_to_deadline();
    }
    // Once welcomed, such an error is said as any other.
    t.s.handle_connected(t.now);
    t.welcome(1, false);
    t.events();
    t.recv(ServerMsg::Error {
        kind: ErrorKind::TooSlow,
        re: Re::Conn,
        detail: "you are reading too slowly".into(),
    });
    assert!(!errors(&t.events()).is_empty());
}

#[test]
fn a_server_that_never_welcomes_is_given_up_on() {
    let mut t = T::new(Transport::Stream);
    t.events();
    let deadline = t.now + CONNECT_TIMEOUT;
    t.advance(5_000);
    t.s.handle_connected(t.now);
    t.sent();
    // It sends something, but no welcome.
    t.recv(ServerMsg::Ping { token: 1 });
    assert_eq!(t.s.poll_timeout(), Some(deadline));
    t.advance(deadline.since(t.now).0);
    let evs = t.events();
    assert!(
        evs.iter().any(
            |e| matches!(e, Event::ConnectFailed { why, .. } if why.contains("did not welcome"))
        ),
        "{evs:?}"
    );
    assert!(evs.contains(&Event::Close));
    assert!(matches!(
        t.s.state(),
        ConnState::Reconnecting { attempt: 1, .. }
    ));
    // Welcomed in time: no such deadline afterwards.
    let mut t = T::ready(Transport::Stream);
    t.advance(CONNECT_TIMEOUT.0 * 3);
    t.recv(ServerMsg::Pong { token: 0 });
    assert_eq!(t.s.state(), ConnState::Connected);
}

// ---- scrollback and search ----

fn past(r: &str, seq: u64, t: &str) -> ServerMsg {
    match say(r, seq, "bob", seq, t) {
        ServerMsg::Event(ev) => ServerMsg::Past(ev),
        _ => unreachable!("say makes an event"),
    }
}

fn older(r: &str, before: u64, limit: u16) -> ClientMsg {
    ClientMsg::Older {
        room: room(r),
        before: Seq(before),
        limit,
    }
}

#[test]
fn history_refills_scrollback_and_searches_are_paced_like_commands() {
    let mut t = T::ready(Transport::Stream);
    t.s.set_flood_limits(2, Millis(1_000), t.now);
    t.recv(say("#lobby", 2, "bob", 1, "a"));
    // A gap (its refill), a page and a search, all at once: two tokens.
    t.recv(ServerMsg::Gap {
        room: room("#lobby"),
        first: Seq(3),
        last: Seq(4),
    });
    t.s.older(room("#lobby"), Seq(2), 50, t.now);
    t.s.handle_input("/search needle", t.now);
    let history = ClientMsg::History {
        room: room("#lobby"),
        after: Seq(2),
    };
    let search = ClientMsg::Search {
        room: None,
        words: text("needle"),
    };
    assert_eq!(t.sent(), vec![history, older("#lobby", 2, 50)]);
    assert_eq!(t.s.poll_timeout(), Some(t.now + Millis(1_000)));
    t.advance(999);
    assert!(t.sent().is_empty(), "no token yet");
    t.advance(1);
    assert_eq!(t.sent(), vec![search]);
}

#[test]
fn a_keepalive_ping_takes_a_token_but_is_never_held_back() {
    let mut t = T::ready(Transport::Stream);
    t.s.set_flood_limits(1, Millis(100_000), t.now);
    t.advance(CLIENT_PING_AFTER.0);
    assert!(matches!(t.sent()[..], [ClientMsg::Ping { .. }]));
    // The ping took the only token: the next command waits for a refill.
    t.s.handle_input("/rooms", t.now);
    assert!(t.sent().is_empty());
    assert!(t.s.out.is_pacing());
}

#[test]
fn a_page_of_the_past_is_handed_on_whole_and_leaves_seq_tracking_alone() {
    let mut t = T::ready_at(Transport::Stream, 20);
    for seq in 21..=22 {
        t.recv(say("#lobby", seq, "bob", seq, "live"));
    }
    t.events();
    t.s.older(room("#lobby"), Seq(20), 3, t.now);
    assert_eq!(t.sent(), vec![older("#lobby", 20, 3)]);
    assert_eq!(
        t.events(),
        vec![Event::Older {
            room: room("#lobby")
        }]
    );
    // Asking again while it is on its way does nothing.
    t.s.older(room("#lobby"), Seq(20), 3, t.now);
    assert!(t.sent().is_empty());
    assert!(t.events().is_empty());
    assert!(!t.s.is_settled(), "a page is awaited");
    // The answer, with junk a hostile server might add: an event not below 20, one too many.
    for (seq, text) in [
        (17, "p17"),
        (18, "p18"),
        (25, "p25"),
        (19, "p19"),
        (16, "p16"),
    ] {
        t.recv(past("#lobby", seq, text));
    }
    assert!(t.events().is_empty(), "nothing before the end of the page");
    t.recv(ServerMsg::PastEnd {
        room: room("#lobby"),
        at_start: false,
    });
    let evs = t.events();
    let [
        Event::Past {
            room: r,
            events,
            at_start: false,
            ..
        },
    ] = &evs[..]
    else {
        panic!("one page: {evs:?}");
    };
    assert_eq!(r, &room("#lobby"));
    let got: Vec<u64> = events.iter().map(|e| e.seq.0).collect();
    assert_eq!(got, [17, 18, 19]);
    assert!(t.s.is_settled());
    // Past events are not live: the last seq is still 22, nothing was asked to refill, and
    // live events go on from there, each once.
    assert_eq!(t.s.last_seq(&room("#lobby")), Some(Seq(22)));
    assert!(t.sent().is_empty(), "no gap, no history request");
    t.recv(say("#lobby", 19, "bob", 19, "replayed"));
    t.recv(say("#lobby", 23, "bob", 23, "next"));
    assert_eq!(seqs(&t.events()), vec![23]);
    // /history goes on below the oldest seen: 17.
    t.s.handle_input("/history 5", t.now);
    assert_eq!(t.sent(), vec![older("#lobby", 17, 5)]);
    t.recv(ServerMsg::PastEnd {
        room: room("#lobby"),
        at_start: true,
    });
    let evs = t.events();
    assert!(matches!(
        &evs[..],
        [Event::Older { .. }, Event::Past { events, at_start: true, .. }] if events.is_empty()
    ));
    // Line mode says what that empty page means: the room began before 17, which is not kept
    // (it said "the beginning of #lobby").
    assert_eq!(
        render::session_lines(&evs[1], &nick("me")),
        ["-- (older lines of #lobby are no longer kept)"]
    );
    // An answer nobody asked for is dropped.
    t.recv(past("#lobby", 3, "stray"));
    t.recv(ServerMsg::PastEnd {
        room: room("#lobby"),
        at_start: true,
    });
    assert!(t.events().is_empty());
}

#[test]
fn a_search_of_a_room_we_are_not_in_is_refused_as_a_search() {
    let mut t = T::ready(Transport::Messages);
    t.s.search(Some(room("#nowhere")), text("hello"), t.now);
    assert!(t.sent().is_empty());
    let evs = t.events();
    assert!(
        matches!(
            &evs[..],
            [
                Event::Search { room: Some(r), .. },
                Event::Error { about: About::Search, text, .. },
            ] if *r == room("#nowhere") && text == "you are not in #nowhere"
        ),
        "asked, then refused, so it shows where results go: {evs:?}"
    );
}

#[test]
fn a_count_past_the_hits_sent_says_older_matches_were_left_out() {
    // The server looks one past its 50 results: a `FoundEnd` counting more than the hits it
    // sent means older matches were left out (issue 16), which every client says.
    let mut t = T::ready(Transport::Messages);
    t.s.handle_input("/search hit", t.now);
    t.sent();
    t.events();
    let ServerMsg::Past(ev) = past("#lobby", 9, "hit") else {
        unreachable!()
    };
    t.recv(ServerMsg::Found(ev));
    t.recv(ServerMsg::FoundEnd { count: 2 });
    let evs = t.events();
    assert!(
        matches!(&evs[..], [Event::Found { hits, more: true, .. }] if hits.len() == 1),
        "{evs:?}"
    );
}

#[test]
fn searches_go_one_at_a_time_and_carry_their_words() {
    let mut t = T::ready(Transport::Messages);
    let hostile = r#""quoted" * -not NEAR(a b) col:on"#;
    t.s.handle_input(&format!("/search {hostile}"), t.now);
    t.s.search(Some(room("#lobby")), text("second"), t.now);
    assert_eq!(
        t.sent(),
        vec![ClientMsg::Search {
            room: None,
            words: text(hostile)
        }],
        "the words go as typed; the second search waits"
    );
    assert_eq!(
        t.events(),
        vec![
            Event::Search {
                room: None,
                words: text(hostile)
            },
            Event::Search {
                room: Some(room("#lobby")),
                words: text("second")
            }
        ]
    );
    assert!(!t.s.is_settled());
    for seq in [9, 4] {
        let ServerMsg::Past(ev) = past("#lobby", seq, "hit") else {
            unreachable!()
        };
        t.recv(ServerMsg::Found(ev));
    }
    t.recv(ServerMsg::FoundEnd { count: 2 });
    let evs = t.events();
    let [
        Event::Found {
            room: None,
            words,
            hits,
            more: false,
        },
    ] = &evs[..]
    else {
        panic!("the first search's hits: {evs:?}");
    };
    assert_eq!(words, &text(hostile));
    assert_eq!(hits.iter().map(|h| h.seq.0).collect::<Vec<_>>(), [9, 4]);
    // Now the second goes.
    assert_eq!(
        t.sent(),
        vec![ClientMsg::Search {
            room: Some(room("#lobby")),
            words: text("second")
        }]
    );
    // The server cannot answer now: a failed search, said so; the next one may work.
    t.recv(ServerMsg::Error {
        kind: ErrorKind::Unavailable,
        re: Re::Conn,
        detail: "the server is busy; try again in a moment".into(),
    });
    assert_eq!(
        t.events(),
        vec![Event::Error {
            kind: Some(ErrorKind::Unavailable),
            about: About::Search,
            text: "the server is busy; try again in a moment".into()
        }]
    );
    assert!(t.s.is_settled());
    t.s.search(None, text("again"), t.now);
    assert_eq!(t.sent().len(), 1, "asking again goes out");
}

#[test]
fn a_refused_page_is_said_for_its_room_and_may_be_asked_again() {
    let mut t = T::ready(Transport::Stream);
    t.recv(say("#lobby", 9, "bob", 9, "x"));
    t.events();
    t.s.older(room("#lobby"), Seq(9), 20, t.now);
    t.sent();
    t.events();
    t.recv(ServerMsg::Error {
        kind: ErrorKind::Unavailable,
        re: Re::Room(room("#lobby")),
        detail: "the server could not read its history: disk".into(),
    });
    assert_eq!(
        t.events(),
        vec![Event::Error {
            kind: Some(ErrorKind::Unavailable),
            about: About::Older(room("#lobby")),
            text: "the server could not read its history: disk".into()
        }]
    );
    t.s.older(room("#lobby"), Seq(9), 20, t.now);
    assert_eq!(t.sent(), vec![older("#lobby", 9, 20)], "a retry goes out");
    // Not in a room: said at once, nothing sent.
    t.s.older(room("#nowhere"), Seq(9), 20, t.now);
    assert!(t.sent().is_empty());
    assert!(matches!(
        &t.events()[..],
        [_, Event::Error { about: About::Older(r), .. }] if *r == room("#nowhere")
    ));
}

#[test]
fn pages_and_searches_in_flight_are_asked_again_after_a_reconnect() {
    let mut t = T::ready(Transport::Stream);
    t.recv(say("#lobby", 9, "bob", 9, "x"));
    t.s.older(room("#lobby"), Seq(9), 20, t.now);
    t.s.search(None, text("lost"), t.now);
    t.sent();
    // Half an answer, then the link drops: what came is dropped with it.
    t.recv(past("#lobby", 8, "half"));
    t.s.handle_disconnected("gone", t.now);
    t.run_to_deadline();
    t.s.handle_connected(t.now);
    t.welcome(2, true);
    let sent = t.drain_paced();
    assert!(sent.contains(&older("#lobby", 9, 20)), "{sent:?}");
    assert!(sent.contains(&ClientMsg::Search {
        room: None,
        words: text("lost")
    }));
    t.events();
    t.recv(past("#lobby", 7, "whole"));
    t.recv(ServerMsg::PastEnd {
        room: room("#lobby"),
        at_start: false,
    });
    let evs = t.events();
    assert!(
        matches!(&evs[..], [Event::Past { events, .. }] if events.len() == 1 && events[0].seq == Seq(7)),
        "{evs:?}"
    );
}

// ---- accounts ----

fn pw(s: &str) -> Password {
    Password(s.into())
}

fn signed_in(t: &mut T, account: &str, token: u8, key: Option<u8>) {
    t.recv(ServerMsg::SignedIn {
        account: nick(account),
        token: ResumeToken([token; 32]),
        key: key.map(|k| DeviceKey([k; 32])),
    });
}

fn sign_in_msg(account: &str, proof: Proof, remember: bool) -> ClientMsg {
    ClientMsg::SignIn {
        account: nick(account),
        proof,
        remember,
    }
}

/// A restart (a welcome that is not a resume, with `token`) whose key sign-in the server refuses:
/// the session falls back to the password `password`, the first thing it sends.
fn refused_key_falls_back_to(t: &mut T, token: u8, password: &str) {
    restarted(t, token);
    t.recv(error(ErrorKind::SignInFailed, Re::Conn));
    assert_eq!(
        t.drain_paced().first(),
        Some(&sign_in_msg("alice", Proof::Password(pw(password)), false))
    );
}

/// A welcome that is not a resume after a reconnect; returns what went out after it.
fn restarted(t: &mut T, token: u8) -> Vec<ClientMsg> {
    reconnect(t);
    t.welcome(token, false);
    t.drain_paced()
}

/// `/logout`, `/login alice pw`, then `/password wrong new` typed (or piped) before the sign-in
/// went out (it waits for the reconnect a sign-out makes): the change is not the sign-in's. It
/// used to put its new password in place of the one the `/login` was given, and take the
/// sign-in's place as the request asked, so the sign-in went out with the wrong password and
/// was refused ("wrong account name or password").
#[test]
fn a_password_change_typed_before_a_sign_in_went_out_does_not_change_its_password() {
    let mut t = T::new(Transport::Stream);
    t.s.handle_input("/login alice right-password", t.now);
    t.s.handle_input("/password wrong-old new-password", t.now);
    t.s.handle_connected(t.now);
    t.welcome(1, false);
    let sent = t.drain_paced();
    let signs_in: Vec<&ClientMsg> = sent
        .iter()
        .filter(|m| matches!(m, ClientMsg::SignIn { .. }))
        .collect();
    assert_eq!(
        signs_in,
        vec![&sign_in_msg(
            "alice",
            Proof::Password(pw("right-password")),
            false
        )],
        "{sent:?}"
    );
    signed_in(&mut t, "alice", 2, None);
    // The change itself went to the server, which answers it (here: the old one is wrong).
    assert!(
        sent.iter()
            .any(|m| matches!(m, ClientMsg::ChangePassword { .. })),
        "{sent:?}"
    );
    t.recv(ServerMsg::Error {
        kind: ErrorKind::SignInFailed,
        re: Re::Conn,
        detail: "the old password is wrong".into(),
    });
    t.events();
    // A restart later: signed in again with the password that works.
    let again = restarted(&mut t, 3);
    assert!(
        again.contains(&sign_in_msg(
            "alice",
            Proof::Password(pw("right-password")),
            false
        )),
        "{again:?}"
    );
}

/// The operator removed the account while we are signed in (`NotSignedIn`, `re: Conn`, asked
/// nothing): the session goes on as a guest, its credentials and key forgotten (`SignedOut`).
#[test]
fn an_account_removed_under_us_signs_us_out_and_we_stay() {
    let mut t = T::new(Transport::Stream);
    t.s.sign_in(
        nick("alice"),
        Proof::Password(pw("correct horse")),
        true,
        t.now,
    );
    t.s.handle_connected(t.now);
    t.welcome(1, false);
    t.drain_paced();
    signed_in(&mut t, "alice", 2, Some(9));
    t.events();
    t.recv(ServerMsg::Error {
        kind: ErrorKind::NotSignedIn,
        re: Re::Conn,
        detail: "the operator removed your account: you are a guest now".into(),
    });
    let ev = t.events();
    assert!(ev.contains(&Event::SignedOut), "{ev:?}");
    assert!(
        ev.iter().any(|e| matches!(e, Event::Error { about: About::Account, text, .. } if text.contains("removed"))),
        "{ev:?}"
    );
    assert_eq!(t.s.account(), None);
    assert_eq!(
        t.s.state(),
        ConnState::Connected,
        "it stays connected, as a guest"
    );
    // Asked while signed out, the same error is only an error.
    t.recv(ServerMsg::Error {
        kind: ErrorKind::NotSignedIn,
        re: Re::Conn,
        detail: "you are not signed in".into(),
    });
    assert!(!t.events().contains(&Event::SignedOut));
}

/// The same for `natter --login` (the account's only session): signed out by the server, it
/// ends with the reason and a quit, instead of going on under a guest's name.
#[test]
fn a_required_session_signed_out_by_the_server_ends() {
    let mut t = welcomed_signing_in("correct horse");
    signed_in(&mut t, "alice", 2, None);
    t.events();
    t.recv(ServerMsg::Error {
        kind: ErrorKind::NotSignedIn,
        re: Re::Conn,
        detail: "this device was forgotten from another".into(),
    });
    let ev = t.events();
    assert!(ev.contains(&Event::SignedOut), "{ev:?}");
    assert!(ev.contains(&Event::Close), "{ev:?}");
    assert_eq!(t.s.state(), ConnState::Closed);
    assert_eq!(
        t.s.fatal(),
        Some("signed out by the server: this device was forgotten from another")
    );
    assert!(
        t.sent().contains(&ClientMsg::Quit { reason: None }),
        "a quit, so the guest does not wait on the server for a resume"
    );
}

#[test]
fn a_sign_in_asked_before_the_welcome_goes_first_after_it() {
    let mut t = T::new(Transport::Stream);
    t.s.sign_in(
        nick("alice"),
        Proof::Password(pw("correct horse")),
        true,
        t.now,
    );
    t.s.handle_connected(t.now);
    assert!(matches!(&t.sent()[..], [ClientMsg::Hello { .. }]));
    t.welcome(1, false);
    let sent = t.drain_paced();
    assert_eq!(
        sent,
        vec![
            sign_in_msg("alice", Proof::Password(pw("correct horse")), true),
            ClientMsg::Join {
                room: RoomName::lobby()
            },
        ],
        "signed in before the rooms are asked for, and only once"
    );
    t.events();
    signed_in(&mut t, "alice", 9, Some(4));
    assert_eq!(
        t.events(),
        vec![Event::SignedIn {
            account: nick("alice"),
            key: Some(DeviceKey([4; 32]))
        }]
    );
    assert_eq!(t.s.account(), Some(&nick("alice")));
    assert_eq!(t.s.device_key(), Some(&DeviceKey([4; 32])));
    // The account's token is the one a reconnect presents.
    let hello = reconnect(&mut t);
    assert!(
        matches!(&hello, ClientMsg::Hello { resume: Some(r), .. } if r.token == ResumeToken([9; 32])),
        "{hello:?}"
    );
    // Resumed: still the account's, nothing to sign in again.
    t.welcome(10, true);
    assert!(
        !t.drain_paced()
            .iter()
            .any(|m| matches!(m, ClientMsg::SignIn { .. }))
    );
    assert_eq!(t.s.account(), Some(&nick("alice")));
}

#[test]
fn a_welcome_that_is_not_a_resume_signs_in_again_with_the_key_then_the_password() {
    let mut t = T::ready(Transport::Stream);
    t.s.sign_in(
        nick("alice"),
        Proof::Password(pw("correct horse")),
        true,
        t.now,
    );
    assert_eq!(
        t.drain_paced(),
        vec![sign_in_msg(
            "alice",
            Proof::Password(pw("correct horse")),
            true
        )]
    );
    signed_in(&mut t, "alice", 2, Some(5));
    t.events();
    // The server restarted past the resume window: a guest again, signed in with the key.
    let sent = restarted(&mut t, 3);
    assert_eq!(
        sent.first(),
        Some(&sign_in_msg("alice", Proof::Key(DeviceKey([5; 32])), false)),
        "{sent:?}"
    );
    assert_eq!(
        t.s.account(),
        None,
        "not signed in until the server says so"
    );
    // The key was revoked meanwhile: the password, once.
    t.events();
    t.recv(error(ErrorKind::SignInFailed, Re::Conn));
    let evs = t.events();
    assert!(
        evs.iter().any(|e| matches!(
            e,
            Event::Error {
                kind: Some(ErrorKind::SignInFailed),
                about: About::Account,
                ..
            }
        )),
        "{evs:?}"
    );
    assert_eq!(
        t.drain_paced(),
        vec![sign_in_msg(
            "alice",
            Proof::Password(pw("correct horse")),
            true
        )]
    );
    assert_eq!(t.s.device_key(), None);
    // The password is refused too (changed elsewhere): forgotten, never tried again.
    t.recv(error(ErrorKind::SignInFailed, Re::Conn));
    assert!(t.drain_paced().is_empty());
    let sent = restarted(&mut t, 4);
    assert!(
        !sent.iter().any(|m| matches!(m, ClientMsg::SignIn { .. })),
        "{sent:?}"
    );
}

/// A throttled sign-in kept its password and was sent again by itself at the next welcome
/// that was not a resume: it signed the person in behind their back, long after they were told
/// it failed. Said about the account, and forgotten: they ask again when they choose.
#[test]
fn throttled_is_said_about_the_account_and_not_asked_again_by_itself() {
    let mut t = T::ready(Transport::Messages);
    t.s.handle_input("/login alice correct horse", t.now);
    assert_eq!(
        t.drain_paced(),
        vec![sign_in_msg(
            "alice",
            Proof::Password(pw("correct horse")),
            false
        )]
    );
    t.events();
    t.recv(ServerMsg::Error {
        kind: ErrorKind::Throttled,
        re: Re::Nick(nick("alice")),
        detail: "too many failed sign-ins; try again in 30 s".into(),
    });
    let evs = t.events();
    assert_eq!(
        evs,
        vec![Event::Error {
            kind: Some(ErrorKind::Throttled),
            about: About::Account,
            text: "could not sign in: too many failed sign-ins; try again in 30 s".into()
        }]
    );
    assert!(!t.s.account_pending(), "answered");
    // Said as a sentence a person reads: what was refused, no category in front of it.
    assert_eq!(
        render::error_words(&About::Account, "could not sign in: no"),
        "could not sign in: no"
    );
    let sent = restarted(&mut t, 5);
    assert!(
        !sent.iter().any(|m| matches!(m, ClientMsg::SignIn { .. })),
        "{sent:?}"
    );
    assert_eq!(t.s.account(), None);
    // Asked again by the person, it goes out.
    t.s.handle_input("/login alice correct horse", t.now);
    assert_eq!(
        t.drain_paced(),
        vec![sign_in_msg(
            "alice",
            Proof::Password(pw("correct horse")),
            false
        )]
    );
}

/// Credentials that went through are the session's to sign in again with after a restart:
/// throttled then (someone else failing from the same address), they are kept for the next
/// welcome, as before.
#[test]
fn a_throttled_sign_in_again_after_a_restart_keeps_what_went_through() {
    let mut t = T::ready(Transport::Messages);
    t.s.sign_in(nick("alice"), Proof::Password(pw("pw")), false, t.now);
    t.drain_paced();
    signed_in(&mut t, "alice", 2, None);
    let sent = restarted(&mut t, 3);
    assert_eq!(
        sent.first(),
        Some(&sign_in_msg("alice", Proof::Password(pw("pw")), false))
    );
    t.recv(error(ErrorKind::Throttled, Re::Conn));
    let sent = restarted(&mut t, 4);
    assert_eq!(
        sent.first(),
        Some(&sign_in_msg("alice", Proof::Password(pw("pw")), false))
    );
}

/// A sign-in sent just before the link dropped kept the page's dialog busy until the server
/// was back, then went through by itself. The drop answers it now: said about the account
/// (the dialog stops waiting and says so), forgotten, and not sent at the next welcome,
/// fresh or resumed.
#[test]
fn a_sign_in_the_link_dropped_before_its_answer_is_given_up_and_said() {
    for resumed in [false, true] {
        let mut t = T::ready(Transport::Messages);
        t.s.sign_in(nick("alice"), Proof::Password(pw("pw")), true, t.now);
        assert_eq!(
            t.drain_paced(),
            vec![sign_in_msg("alice", Proof::Password(pw("pw")), true)]
        );
        assert!(t.s.account_pending());
        t.events();
        t.s.handle_disconnected("connection reset", t.now);
        let evs = t.events();
        let said = "could not sign in: the connection dropped before the server answered; \
                    try again once it is back";
        assert!(
            evs.contains(&Event::Error {
                kind: None,
                about: About::Account,
                text: said.into()
            }),
            "{evs:?}"
        );
        assert!(!t.s.account_pending(), "answered: the dialog stops waiting");
        assert!(
            matches!(t.s.state(), ConnState::Reconnecting { .. }),
            "the session goes on"
        );
        t.run_to_deadline();
        t.events();
        t.raw.clear();
        t.dec = FrameDecoder::new();
        t.s.handle_connected(t.now);
        t.sent();
        t.welcome(2, resumed);
        let sent = t.drain_paced();
        assert!(
            !sent.iter().any(|m| matches!(m, ClientMsg::SignIn { .. })),
            "resumed {resumed}: {sent:?}"
        );
        assert!(!t.s.account_pending());
        // Asked again once the server is back, it goes out.
        t.s.sign_in(nick("alice"), Proof::Password(pw("pw")), true, t.now);
        assert_eq!(
            t.drain_paced(),
            vec![sign_in_msg("alice", Proof::Password(pw("pw")), true)]
        );
    }
}

/// A sign-in given up at a drop may have reached the server, its answer lost: the resumed
/// session then has the account's nick, and the sign-in is asked again, for the server (which
/// has it signed in already) to say so; the session is not a guest while the server has it as
/// the account. Resumed with the guest's nick, nothing is asked.
#[test]
fn a_sign_in_given_up_that_the_server_took_is_asked_again_when_the_resume_says_so() {
    for (nick_now, asked) in [("rosa", true), ("alice", false)] {
        let mut t = T::ready(Transport::Messages);
        t.s.sign_in(nick("rosa"), Proof::Password(pw("pw")), false, t.now);
        t.drain_paced();
        reconnect(&mut t);
        t.recv(ServerMsg::Welcome {
            version: PROTOCOL_VERSION,
            nick: nick(nick_now),
            token: ResumeToken([2; 32]),
            resumed: true,
            limits: Limits::default(),
        });
        let sent = t.drain_paced();
        assert_eq!(
            sent.contains(&sign_in_msg("rosa", Proof::Password(pw("pw")), false)),
            asked,
            "resumed as {nick_now}: {sent:?}"
        );
        if asked {
            signed_in(&mut t, "rosa", 3, None);
            assert_eq!(t.s.account(), Some(&nick("rosa")));
        }
    }
}

/// A registration the server could not store (its disk is full: `Unavailable` naming the nick,
/// since the forty-second session's review) was not made: it is refused, said as the
/// registration's answer, and not asked again by itself (as a busy server's `Unavailable` is:
/// that would register whatever nick the connection had by then). Until the forty-third
/// session's review the session took it for an answer about the nick, not the registration,
/// which stayed asked for ever (`account_pending` true: the page's dialog waited on).
#[test]
fn a_registration_the_server_could_not_store_is_refused_not_asked_again() {
    let mut t = T::ready(Transport::Messages);
    t.s.register(pw("correct horse"), false, t.now);
    let sent = t.drain_paced();
    assert!(
        sent.iter().any(|m| matches!(m, ClientMsg::Register { .. })),
        "{sent:?}"
    );
    t.events();
    t.recv(error(ErrorKind::Unavailable, Re::Nick(nick("alice"))));
    let evs = t.events();
    assert!(
        evs.iter().any(
            |e| matches!(e, Event::Error { about: About::Account, text, .. }
            if text.starts_with("could not register"))
        ),
        "{evs:?}"
    );
    assert!(!t.s.account_pending(), "answered");
    let mut sent = Vec::new();
    for _ in 0..40 {
        t.advance(1_000);
        // A live server is heard from meanwhile.
        t.recv(ServerMsg::Pong { token: 0 });
        sent.extend(t.sent());
    }
    assert!(t.s.link.is_open(), "the connection lasted");
    assert!(
        !sent.iter().any(|m| matches!(m, ClientMsg::Register { .. })),
        "never registered behind the person's back: {sent:?}"
    );
    // The person may ask again.
    t.s.register(pw("correct horse"), false, t.now);
    let sent = t.drain_paced();
    assert!(
        sent.iter().any(|m| matches!(m, ClientMsg::Register { .. })),
        "{sent:?}"
    );
}

/// A registration waiting to ask a busy server again, and a sign-in, are given up at a drop;
/// a session for the account only ends with it, saying why (the page's first dialog shows that
/// and may ask again).
#[test]
fn a_registration_or_a_sign_in_waiting_for_a_busy_server_is_given_up_at_a_drop() {
    let mut t = T::ready(Transport::Messages);
    t.s.register(pw("correct horse"), false, t.now);
    t.drain_paced();
    t.recv(error(ErrorKind::Unavailable, Re::Conn));
    assert!(t.s.account_pending(), "to be asked again by itself");
    t.events();
    t.s.handle_disconnected("reset", t.now);
    let evs = t.events();
    assert!(
        evs.iter().any(
            |e| matches!(e, Event::Error { about: About::Account, text, .. }
            if text.starts_with("could not register: the connection dropped"))
        ),
        "{evs:?}"
    );
    assert!(!t.s.account_pending());
    let sent = restarted(&mut t, 2);
    assert!(
        !sent
            .iter()
            .any(|m| matches!(m, ClientMsg::Register { .. } | ClientMsg::SignIn { .. })),
        "{sent:?}"
    );

    let mut t = T::ready(Transport::Messages);
    t.s.sign_in(nick("alice"), Proof::Password(pw("pw")), false, t.now);
    t.s.require_sign_in();
    t.drain_paced();
    t.recv(error(ErrorKind::Unavailable, Re::Conn));
    assert!(t.s.account_pending(), "to be asked again by itself");
    t.events();
    t.s.handle_disconnected("reset", t.now);
    assert!(!t.s.account_pending());
    assert_eq!(
        t.s.state(),
        ConnState::Closed,
        "the account's only session ends"
    );
    assert!(
        t.s.fatal()
            .is_some_and(|f| f.starts_with("could not sign in: the connection dropped")),
        "{:?}",
        t.s.fatal()
    );
}

/// A sign-in the session keeps as its own from the start (`natter --login`, asked on the
/// command line: [`Session::keep_sign_in`]) is not given up at a drop before its answer: it
/// is sent again at the next welcome, resumed or not, and the session, which requires it,
/// goes on. It ended ("could not sign in: the connection dropped"), where IRC clients
/// authenticate again at every connection. A refused one still ends it; one typed later is
/// the person's, given up as ever.
#[test]
fn a_kept_sign_in_is_asked_again_after_a_drop_before_its_answer() {
    for resumed in [true, false] {
        let mut t = T::ready(Transport::Messages);
        t.s.sign_in(nick("alice"), Proof::Password(pw("pw")), false, t.now);
        t.s.require_sign_in();
        t.s.keep_sign_in();
        t.drain_paced();
        t.events();
        reconnect(&mut t);
        assert!(
            !t.events().iter().any(|e| matches!(
                e,
                Event::Error {
                    about: About::Account,
                    ..
                }
            )),
            "nothing given up"
        );
        assert_ne!(t.s.state(), ConnState::Closed, "the session goes on");
        t.welcome(2, resumed);
        assert_eq!(
            t.drain_paced().first(),
            Some(&sign_in_msg("alice", Proof::Password(pw("pw")), false)),
            "resumed {resumed}"
        );
        signed_in(&mut t, "alice", 3, None);
        assert_eq!(t.s.account(), Some(&nick("alice")));
    }
    // Refused after the drop, it ends the session as ever.
    let mut t = T::ready(Transport::Messages);
    t.s.sign_in(nick("alice"), Proof::Password(pw("pw")), false, t.now);
    t.s.require_sign_in();
    t.s.keep_sign_in();
    t.drain_paced();
    let sent = restarted(&mut t, 2);
    assert!(
        sent.iter().any(|m| matches!(m, ClientMsg::SignIn { .. })),
        "{sent:?}"
    );
    t.recv(error(ErrorKind::Throttled, Re::Conn));
    assert_eq!(t.s.state(), ConnState::Closed, "throttled: the client ends");
    // A `/login` typed afterwards is the person's: given up at a drop.
    let mut t = T::ready(Transport::Messages);
    t.s.sign_in(nick("alice"), Proof::Password(pw("pw")), false, t.now);
    t.s.keep_sign_in();
    t.drain_paced();
    t.recv(error(ErrorKind::SignInFailed, Re::Conn));
    t.s.handle_input("/login bob other", t.now);
    t.drain_paced();
    t.events();
    t.s.handle_disconnected("reset", t.now);
    assert!(t.events().iter().any(
        |e| matches!(e, Event::Error { about: About::Account, text, .. }
            if text.starts_with("could not sign in: the connection dropped"))
    ),);
}

/// What no one typed is not given up at a drop: a remembered sign-in (the device key) and
/// credentials that went through before are sent again at the next welcome.
#[test]
fn a_key_sign_in_or_one_that_went_through_before_survives_a_drop() {
    let mut t = T::ready(Transport::Messages);
    let key = DeviceKey([9; 32]);
    t.s.sign_in(nick("alice"), Proof::Key(key.clone()), false, t.now);
    t.drain_paced();
    t.events();
    let sent = restarted(&mut t, 2);
    assert_eq!(
        sent.first(),
        Some(&sign_in_msg("alice", Proof::Key(key.clone()), false))
    );
    assert!(!t.events().iter().any(|e| matches!(
        e,
        Event::Error {
            about: About::Account,
            ..
        }
    )));
    assert_eq!(t.s.device_key(), Some(&key), "kept");

    let mut t = T::ready(Transport::Messages);
    t.s.sign_in(nick("alice"), Proof::Password(pw("pw")), false, t.now);
    t.drain_paced();
    signed_in(&mut t, "alice", 2, None);
    // The server restarted: signing in again, and the link drops before that is answered.
    restarted(&mut t, 3);
    let sent = restarted(&mut t, 4);
    assert_eq!(
        sent.first(),
        Some(&sign_in_msg("alice", Proof::Password(pw("pw")), false))
    );
}

/// A sign-in refused as too fast (`Flood`) was not taken as its answer: the dialog stayed busy.
/// It is the answer now, said as one, and forgotten. A server of 14 on names it an account
/// request's (`Re::Account`); an older one names nothing (`Re::Conn`), and that is taken as the
/// answer while a sign-in waits, as before.
#[test]
fn a_sign_in_refused_as_too_fast_is_answered_and_forgotten() {
    for (version, re) in [(PROTOCOL_VERSION, Re::Account), (13, Re::Conn)] {
        let mut t = T::new(Transport::Messages);
        t.s.handle_connected(t.now);
        t.welcome_at(version, 1, false);
        t.events();
        t.sent();
        t.s.sign_in(nick("alice"), Proof::Password(pw("pw")), false, t.now);
        t.drain_paced();
        t.events();
        t.recv(ServerMsg::Error {
            kind: ErrorKind::Flood,
            re,
            detail: "you are sending too fast: 8 commands are already waiting; this one was \
                     dropped"
                .into(),
        });
        assert_eq!(
            t.events(),
            vec![Event::Error {
                kind: Some(ErrorKind::Flood),
                about: About::Account,
                text: "could not sign in: you are sending too fast: 8 commands are already \
                       waiting; this one was dropped; try again in a moment"
                    .into()
            }],
            "version {version}"
        );
        assert!(!t.s.account_pending());
        assert_eq!(t.s.state(), ConnState::Connected, "still the guest it was");
        // Nothing asked, a flood naming the connection is the session's, as ever.
        t.recv(error(ErrorKind::Flood, Re::Conn));
        assert!(!t.events().iter().any(|e| matches!(
            e,
            Event::Error {
                about: About::Account,
                ..
            }
        )));
    }
    let mut t = T::ready(Transport::Messages);
    t.s.sign_in(nick("alice"), Proof::Password(pw("pw")), false, t.now);
    t.drain_paced();
    t.recv(error(ErrorKind::Flood, Re::Account));
    let sent = restarted(&mut t, 2);
    assert!(
        !sent.iter().any(|m| matches!(m, ClientMsg::SignIn { .. })),
        "{sent:?}"
    );
}

/// The server's flood refusal did not say which request it dropped: another command refused
/// while a sign-in waited (`Re::Conn`) was taken for the sign-in's answer, which was said as
/// failed and its credentials forgotten; the real answer then found nothing asked. A server of
/// 14 on names an account request's refusal (`Re::Account`), so one naming nothing is not it.
#[test]
fn a_flood_refusal_of_another_command_is_not_the_sign_ins_answer() {
    let mut t = T::ready(Transport::Messages);
    t.s.sign_in(nick("alice"), Proof::Password(pw("pw")), false, t.now);
    t.drain_paced();
    t.events();
    t.recv(ServerMsg::Error {
        kind: ErrorKind::Flood,
        re: Re::Conn,
        detail: "you are sending too fast: 20 commands are already waiting; this one was dropped"
            .into(),
    });
    let evs = t.events();
    assert_eq!(abouts(&evs), [About::Session], "{evs:?}");
    assert!(
        t.s.account_pending(),
        "the sign-in still waits for its answer"
    );
    signed_in(&mut t, "alice", 2, None);
    assert_eq!(t.s.account(), Some(&nick("alice")));
    assert!(!t.s.account_pending());
}

#[test]
fn register_names_the_current_nick_and_a_refusal_forgets_it() {
    let mut t = T::ready(Transport::Stream);
    t.s.register(pw("correct horse"), false, t.now);
    assert_eq!(
        t.drain_paced(),
        vec![ClientMsg::Register {
            password: pw("correct horse"),
            remember: false
        }]
    );
    t.events();
    t.recv(error(ErrorKind::RegistrationClosed, Re::Conn));
    assert!(matches!(
        &t.events()[..],
        [Event::Error {
            about: About::Account,
            text,
            ..
        }] if text == "could not register: no"
    ));
    assert!(
        restarted(&mut t, 6)
            .iter()
            .all(|m| !matches!(m, ClientMsg::Register { .. } | ClientMsg::SignIn { .. }))
    );
    // Typed, then accepted: afterwards it signs in (not registers) again.
    t.s.handle_input("/register correct horse", t.now);
    assert!(matches!(&t.drain_paced()[..], [ClientMsg::Register { .. }]));
    signed_in(&mut t, "alice", 7, None);
    assert_eq!(
        restarted(&mut t, 8).first(),
        Some(&sign_in_msg(
            "alice",
            Proof::Password(pw("correct horse")),
            false
        ))
    );
}

#[test]
fn an_invalid_answer_is_about_the_account_only_while_one_is_asked() {
    let mut t = T::ready(Transport::Stream);
    // Nothing asked of the account: an answer to something typed (an admin's action).
    t.recv(error(ErrorKind::Invalid, Re::Conn));
    assert!(matches!(
        &t.events()[..],
        [Event::Error {
            about: About::Input,
            ..
        }]
    ));
    t.s.register(pw("short"), false, t.now);
    t.drain_paced();
    t.recv(error(ErrorKind::Invalid, Re::Conn));
    assert!(matches!(
        &t.events()[..],
        [Event::Error {
            about: About::Account,
            ..
        }]
    ));
}

#[test]
fn sign_out_forgets_everything_and_the_next_connection_is_a_guest() {
    let mut t = T::ready(Transport::Stream);
    t.s.sign_in(nick("alice"), Proof::Key(DeviceKey([3; 32])), false, t.now);
    t.drain_paced();
    signed_in(&mut t, "alice", 4, None);
    t.events();
    t.s.handle_input("/logout", t.now);
    assert_eq!(t.drain_paced(), vec![ClientMsg::SignOut]);
    assert_eq!(t.events(), vec![Event::SignedOut]);
    assert_eq!(t.s.account(), None);
    assert_eq!(t.s.device_key(), None);
    // The server closes the connection; the next hello resumes nothing.
    let hello = reconnect(&mut t);
    assert!(
        matches!(&hello, ClientMsg::Hello { resume: None, .. }),
        "{hello:?}"
    );
    t.welcome(5, false);
    let sent = t.drain_paced();
    assert!(
        !sent.iter().any(|m| matches!(m, ClientMsg::SignIn { .. })),
        "{sent:?}"
    );
    // A guest on purpose: not a resume that failed, and not told again that it signed out
    // (SignedOut said so).
    let infos = infos(&mut t);
    assert!(
        infos.contains(&"rejoining your rooms as a guest".to_owned()),
        "{infos:?}"
    );
    assert!(!infos.iter().any(|m| m.contains("signed out")), "{infos:?}");
    assert!(
        !infos.iter().any(|m| m.contains("could not resume")),
        "{infos:?}"
    );
}

#[test]
fn the_close_a_sign_out_asks_for_is_not_a_lost_connection() {
    for bye in [true, false] {
        let mut t = T::ready(Transport::Messages);
        t.s.sign_in(nick("alice"), Proof::Key(DeviceKey([3; 32])), false, t.now);
        t.drain_paced();
        signed_in(&mut t, "alice", 4, None);
        t.events();
        t.s.handle_input("/logout", t.now);
        t.drain_paced();
        assert_eq!(t.events(), vec![Event::SignedOut]);
        // The server says goodbye and closes (or just closes).
        if bye {
            t.recv(ServerMsg::Bye {
                reason: "signed out".into(),
            });
        } else {
            t.s.handle_disconnected("closed", t.now);
        }
        let evs = t.events();
        assert!(
            !evs.iter().any(|e| matches!(e, Event::Info(_))),
            "said once already, by SignedOut: {evs:?}"
        );
        assert!(
            matches!(
                t.s.state(),
                ConnState::Reconnecting {
                    lost: false,
                    at,
                    ..
                } if at == t.now
            ),
            "back at once, nothing lost: {:?}",
            t.s.state()
        );
        assert!(
            crate::render::state_words(t.s.state()).is_none(),
            "no \"connection lost\""
        );
        let hello = reconnect(&mut t);
        assert!(
            matches!(&hello, ClientMsg::Hello { resume: None, .. }),
            "{hello:?}"
        );
    }
}

#[test]
fn read_markers_go_out_only_while_signed_in() {
    let mut t = T::ready(Transport::Stream);
    t.s.read(room("#lobby"), Seq(3), t.now);
    assert!(t.drain_paced().is_empty(), "a guest's reads are its own");
    t.s.sign_in(
        nick("alice"),
        Proof::Password(pw("correct horse")),
        false,
        t.now,
    );
    t.drain_paced();
    t.s.read(room("#lobby"), Seq(3), t.now);
    assert!(t.drain_paced().is_empty(), "not until the server says so");
    signed_in(&mut t, "alice", 2, None);
    t.s.read(room("#lobby"), Seq(3), t.now);
    assert_eq!(
        t.drain_paced(),
        vec![ClientMsg::Read {
            room: room("#lobby"),
            seq: Seq(3)
        }]
    );
    t.recv(ServerMsg::ReadUpTo {
        room: room("#lobby"),
        seq: Seq(4),
    });
    assert!(t.events().contains(&Event::ReadUpTo {
        room: room("#lobby"),
        seq: Seq(4)
    }));
}

#[test]
fn an_accounts_marker_is_shown_only_signed_in() {
    let marker = |seq| ServerMsg::ReadUpTo {
        room: room("#lobby"),
        seq: Seq(seq),
    };
    let shown = |t: &mut T, seq| {
        t.events().contains(&Event::ReadUpTo {
            room: room("#lobby"),
            seq: Seq(seq),
        })
    };
    // A guest asking nothing (the server had it as the account's: a sign-in whose answer was
    // lost with a connection, the user signed out meanwhile) is not the account's.
    let mut t = T::ready(Transport::Stream);
    t.recv(marker(4));
    assert!(!shown(&mut t, 4));
    // Nor while it asks (maybe for another account): the answer comes with every marker.
    t.s.sign_in(
        nick("alice"),
        Proof::Password(pw("correct horse")),
        false,
        t.now,
    );
    t.drain_paced();
    t.recv(marker(5));
    assert!(!shown(&mut t, 5));
    signed_in(&mut t, "alice", 2, None);
    t.recv(marker(6));
    assert!(shown(&mut t, 6));
}

#[test]
fn a_front_end_that_shows_everything_reads_every_room_up_to_the_newest_event() {
    // `natter --login` in line mode printed every event but never moved the read marker, so
    // each run of a script brought every line since the account last read anywhere again.
    let mut t = T::ready_at(Transport::Stream, 4);
    t.recv(ev("#lobby", 5, "bob", EventKind::Join));
    t.s.read_everything(t.now);
    assert!(t.sent().is_empty(), "a guest's reads are its own");
    t.s.sign_in(
        nick("alice"),
        Proof::Password(pw("correct horse")),
        false,
        t.now,
    );
    t.drain_paced();
    signed_in(&mut t, "alice", 2, None);
    t.joined("#b", 9);
    t.recv(ev("#b", 9, "alice", EventKind::Join));
    t.recv(ev("#lobby", 6, "bob", EventKind::Join));
    t.drain_paced();
    t.s.read_everything(t.now);
    let mut sent = t.sent();
    sent.sort_by_key(|m| format!("{m:?}"));
    assert_eq!(
        sent,
        vec![
            ClientMsg::Read {
                room: room("#b"),
                seq: Seq(9)
            },
            ClientMsg::Read {
                room: room("#lobby"),
                seq: Seq(6)
            },
        ]
    );
}

#[test]
fn a_change_of_password_is_kept_unless_refused() {
    let mut t = T::ready(Transport::Stream);
    t.s.sign_in(
        nick("alice"),
        Proof::Password(pw("old password")),
        true,
        t.now,
    );
    t.drain_paced();
    signed_in(&mut t, "alice", 2, Some(8));
    t.s.handle_input("/password wrong-old new password", t.now);
    assert_eq!(
        t.drain_paced(),
        vec![ClientMsg::ChangePassword {
            old: pw("wrong-old"),
            new: pw("new password")
        }]
    );
    t.events();
    t.recv(error(ErrorKind::SignInFailed, Re::Conn));
    // Said as what was refused (the server's words alone read as a failed sign-in).
    assert_eq!(
        t.events(),
        vec![Event::Error {
            kind: Some(ErrorKind::SignInFailed),
            about: About::Account,
            text: "could not change your password: no".into()
        }]
    );
    // Refused: the key and the old password stay.
    assert_eq!(t.s.device_key(), Some(&DeviceKey([8; 32])));
    t.s.handle_input("/password old-password new password", t.now);
    t.drain_paced();
    t.events();
    t.recv(ServerMsg::PasswordChanged);
    assert!(matches!(&t.events()[..], [Event::Info(_)]));
    assert!(t.s.is_settled());
    assert_eq!(t.s.device_key(), None, "every key is revoked by a change");
    assert_eq!(
        restarted(&mut t, 3).first(),
        Some(&sign_in_msg(
            "alice",
            Proof::Password(pw("new password")),
            true
        ))
    );
}

#[test]
fn a_remembered_device_keeps_the_new_key_a_password_change_brings() {
    let mut t = T::ready(Transport::Stream);
    t.s.sign_in(
        nick("alice"),
        Proof::Password(pw("old password")),
        true,
        t.now,
    );
    t.drain_paced();
    signed_in(&mut t, "alice", 2, Some(8));
    t.s.handle_input("/password old-password new password", t.now);
    t.drain_paced();
    t.events();
    // The server revokes every key, and gives this device a new one before its answer.
    signed_in(&mut t, "alice", 3, Some(9));
    t.recv(ServerMsg::PasswordChanged);
    let evs = t.events();
    assert!(
        matches!(&evs[..], [Event::Info(words)] if words.contains("this device stays remembered")),
        "one line says so, no second sign-in: {evs:?}"
    );
    assert_eq!(t.s.device_key(), Some(&DeviceKey([9; 32])));
    // The new key, and the new token, are the ones used from now on.
    let hello = reconnect(&mut t);
    assert!(
        matches!(&hello, ClientMsg::Hello { resume: Some(r), .. } if r.token == ResumeToken([3; 32])),
        "resumed with the token that came with the key: {hello:?}"
    );
    t.welcome(4, false);
    assert_eq!(
        t.drain_paced().first(),
        Some(&sign_in_msg("alice", Proof::Key(DeviceKey([9; 32])), false))
    );
}

/// A remembered device's `/password` typed before its sign-in with the key went through (a page
/// loaded while its server was away): the server takes the change once the sign-in is through,
/// revokes every key and gives this device a new one before its answer. That key was taken for
/// a second sign-in ("you are signed in" again), then dropped by the answer with the revoked
/// one: the device was no longer remembered, and the page kept the revoked key, with which its
/// next load failed to sign in.
#[test]
fn a_password_change_typed_before_a_key_sign_in_keeps_the_new_key() {
    let mut t = T::new(Transport::Stream);
    t.s.sign_in(nick("alice"), Proof::Key(DeviceKey([8; 32])), false, t.now);
    t.s.handle_input("/password old-password new password", t.now);
    t.s.handle_connected(t.now);
    t.welcome(1, false);
    let sent = t.drain_paced();
    assert!(
        sent.contains(&sign_in_msg("alice", Proof::Key(DeviceKey([8; 32])), false)),
        "{sent:?}"
    );
    assert!(
        sent.iter()
            .any(|m| matches!(m, ClientMsg::ChangePassword { .. })),
        "{sent:?}"
    );
    signed_in(&mut t, "alice", 2, None);
    t.events();
    // The server revokes every key, and gives this device a new one before its answer.
    signed_in(&mut t, "alice", 3, Some(9));
    t.recv(ServerMsg::PasswordChanged);
    let evs = t.events();
    assert!(
        matches!(&evs[..], [Event::Info(words)] if words.contains("this device stays remembered")),
        "one line says so, no second sign-in: {evs:?}"
    );
    assert_eq!(t.s.device_key(), Some(&DeviceKey([9; 32])));
    assert_eq!(
        restarted(&mut t, 4).first(),
        Some(&sign_in_msg("alice", Proof::Key(DeviceKey([9; 32])), false))
    );
}

/// The same change, the link dropping after the server gave this device its new key but before
/// its answer, and the session not resumed (the server restarted): the key's coming says the
/// change went through (the server stores the new password before it issues the key), so the
/// next sign-in is with the new key. It used to be with the revoked one, refused, then the
/// password (the old one): the device was no longer remembered.
#[test]
fn a_password_changes_new_key_is_kept_when_the_drop_loses_its_answer() {
    let mut t = T::new(Transport::Stream);
    t.s.sign_in(nick("alice"), Proof::Key(DeviceKey([8; 32])), false, t.now);
    t.s.handle_input("/password old-password new password", t.now);
    t.s.handle_connected(t.now);
    t.welcome(1, false);
    t.drain_paced();
    signed_in(&mut t, "alice", 2, None);
    signed_in(&mut t, "alice", 3, Some(9));
    t.events();
    // The link drops before the answer; the server does not resume the session.
    assert_eq!(
        restarted(&mut t, 4).first(),
        Some(&sign_in_msg("alice", Proof::Key(DeviceKey([9; 32])), false)),
        "the new key first"
    );
    assert_eq!(t.s.device_key(), Some(&DeviceKey([9; 32])));
    signed_in(&mut t, "alice", 5, None);
    assert_eq!(
        t.s.device_key(),
        Some(&DeviceKey([9; 32])),
        "still remembered"
    );
    // Its password is the new one too: a later refusal of that key falls back to it.
    refused_key_falls_back_to(&mut t, 6, "new password");
}

/// The new key such a change brings before its answer is the device's at once, with the new
/// password: the key's coming says the change went through (the server stores the new password
/// before it issues the key, and answers right after). The page keeps `device_key()` in the
/// browser's storage: held back until the answer, a reload between a drop that lost the answer
/// and the next sign-in signed in with the revoked key (refused: no longer remembered).
#[test]
fn a_password_changes_new_key_is_the_devices_as_soon_as_it_comes() {
    let mut t = T::new(Transport::Stream);
    t.s.sign_in(nick("alice"), Proof::Key(DeviceKey([8; 32])), false, t.now);
    t.s.handle_input("/password old-password new password", t.now);
    t.s.handle_connected(t.now);
    t.welcome(1, false);
    t.drain_paced();
    signed_in(&mut t, "alice", 2, None);
    t.events();
    signed_in(&mut t, "alice", 3, Some(9));
    assert!(t.events().is_empty(), "no second sign-in said");
    assert_eq!(
        t.s.device_key(),
        Some(&DeviceKey([9; 32])),
        "the new key, before the answer"
    );
    t.recv(ServerMsg::PasswordChanged);
    let evs = t.events();
    assert!(
        matches!(&evs[..], [Event::Info(words)] if words.contains("this device stays remembered")),
        "{evs:?}"
    );
    assert_eq!(t.s.device_key(), Some(&DeviceKey([9; 32])));
    // A later refusal of that key falls back to the new password.
    refused_key_falls_back_to(&mut t, 4, "new password");
}

/// The same change for a device that was not remembered: no new key comes, and the session
/// keeps none (the one it signed in with, if any, is revoked).
#[test]
fn a_password_change_typed_before_the_sign_in_leaves_no_revoked_key() {
    let mut t = T::new(Transport::Stream);
    t.s.sign_in(nick("alice"), Proof::Key(DeviceKey([8; 32])), false, t.now);
    t.s.handle_input("/password old-password new password", t.now);
    t.s.handle_connected(t.now);
    t.welcome(1, false);
    t.drain_paced();
    signed_in(&mut t, "alice", 2, None);
    t.recv(ServerMsg::PasswordChanged);
    assert_eq!(t.s.device_key(), None, "every key is revoked by a change");
}

/// Two `/password`s typed before the sign-in was through (a page loaded while its server was
/// away): the second went out too, and the first change's new key came with the second's
/// password as the credentials. The second is refused while the first waits for its answer,
/// said as such; the first goes out alone and its key and password are the device's.
#[test]
fn a_second_password_change_waits_for_the_first_ones_answer() {
    let mut t = T::new(Transport::Stream);
    t.s.sign_in(nick("alice"), Proof::Key(DeviceKey([8; 32])), false, t.now);
    t.s.handle_input("/password old-password first-new", t.now);
    t.s.handle_input("/password first-new second-new", t.now);
    let evs = t.events();
    assert!(
        evs.iter().any(|e| matches!(
            e,
            Event::Error { about: About::Input, text, .. }
                if text.contains("a password change is already on its way")
        )),
        "{evs:?}"
    );
    t.s.handle_connected(t.now);
    t.welcome(1, false);
    let changes: Vec<ClientMsg> = t
        .drain_paced()
        .into_iter()
        .filter(|m| matches!(m, ClientMsg::ChangePassword { .. }))
        .collect();
    assert_eq!(
        changes,
        vec![ClientMsg::ChangePassword {
            old: pw("old-password"),
            new: pw("first-new")
        }]
    );
    signed_in(&mut t, "alice", 2, None);
    // Signed in, still unanswered: refused the same way.
    t.events();
    t.s.handle_input("/password first-new second-new", t.now);
    assert!(t.sent().is_empty());
    assert!(matches!(
        &t.events()[..],
        [Event::Error {
            about: About::Input,
            ..
        }]
    ));
    signed_in(&mut t, "alice", 3, Some(9));
    t.recv(ServerMsg::PasswordChanged);
    t.events();
    assert_eq!(t.s.device_key(), Some(&DeviceKey([9; 32])));
    refused_key_falls_back_to(&mut t, 4, "first-new");
    signed_in(&mut t, "alice", 5, None);
    // Answered: the next change goes out.
    t.s.handle_input("/password first-new second-new", t.now);
    assert_eq!(
        t.drain_paced(),
        vec![ClientMsg::ChangePassword {
            old: pw("first-new"),
            new: pw("second-new")
        }]
    );
}

/// A change whose answer a drop lost is no longer on its way: the next `/password` goes out.
#[test]
fn a_password_change_lost_in_a_drop_does_not_hold_back_the_next() {
    for signed in [false, true] {
        let mut t = T::ready(Transport::Stream);
        t.s.sign_in(nick("alice"), Proof::Key(DeviceKey([8; 32])), false, t.now);
        if signed {
            signed_in(&mut t, "alice", 2, None);
        }
        t.s.handle_input("/password old-password first-new", t.now);
        assert!(
            t.drain_paced()
                .iter()
                .any(|m| matches!(m, ClientMsg::ChangePassword { .. })),
            "signed in: {signed}"
        );
        reconnect(&mut t);
        t.welcome(3, true);
        t.drain_paced();
        t.events();
        t.s.handle_input("/password old-password first-new", t.now);
        assert!(
            t.drain_paced()
                .iter()
                .any(|m| matches!(m, ClientMsg::ChangePassword { .. })),
            "signed in: {signed}: {:?}",
            t.events()
        );
    }
}

#[test]
fn a_line_of_the_account_from_another_device_does_not_settle_ours() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_input("from here", t.now);
    t.s.handle_input("/msg bob psst here", t.now);
    t.sent();
    t.events();
    // Another device of the account, whose ids are its own: same nick, same ids.
    t.recv(say("#lobby", 2, "alice", 1, "from the other device"));
    t.recv(ServerMsg::Direct(DirectMsg {
        from: nick("alice"),
        to: nick("bob"),
        id: MsgId(2),
        at: t.now,
        text: text("psst there"),
    }));
    let evs = t.events();
    assert!(
        !evs.iter().any(|e| matches!(e, Event::Settled { .. })),
        "{evs:?}"
    );
    assert!(evs.iter().any(|e| matches!(e, Event::Room(_))), "shown");
    assert_eq!(t.s.pending(), 2);
    // Our own echoes settle them.
    t.recv(say("#lobby", 3, "alice", 1, "from here"));
    t.recv(ServerMsg::Direct(DirectMsg {
        from: nick("alice"),
        to: nick("bob"),
        id: MsgId(2),
        at: t.now,
        text: text("psst here"),
    }));
    let settled: Vec<_> = t
        .events()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::Settled {
                    delivered: true,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(settled.len(), 2, "{settled:?}");
    assert_eq!(t.s.pending(), 0);
}

#[test]
fn a_guest_signing_out_keeps_its_session() {
    let mut t = T::ready(Transport::Stream);
    t.s.sign_out(t.now);
    assert_eq!(t.drain_paced(), vec![ClientMsg::SignOut]);
    t.recv(error(ErrorKind::NotSignedIn, Re::Conn));
    assert!(t.events().iter().any(|e| matches!(
        e,
        Event::Error {
            about: About::Account,
            ..
        }
    )));
    let hello = reconnect(&mut t);
    assert!(
        matches!(
            &hello,
            ClientMsg::Hello {
                resume: Some(_),
                ..
            }
        ),
        "{hello:?}"
    );
}

/// `natter --login` as alice with `password`: welcomed, the sign-in sent, not answered yet.
fn welcomed_signing_in(password: &str) -> T {
    let mut t = T::new(Transport::Stream);
    t.s.sign_in(nick("alice"), Proof::Password(pw(password)), false, t.now);
    t.s.require_sign_in();
    t.s.handle_connected(t.now);
    t.welcome(1, false);
    t.drain_paced();
    t
}

#[test]
fn a_required_sign_in_refused_ends_the_session() {
    let mut t = welcomed_signing_in("wrong horse");
    // Line mode types nothing until the session is settled.
    assert!(!t.s.is_settled(), "waiting for the sign-in's answer");
    t.recv(ServerMsg::Error {
        kind: ErrorKind::SignInFailed,
        re: Re::Conn,
        detail: "wrong account name or password".into(),
    });
    assert_eq!(t.s.state(), ConnState::Closed);
    assert_eq!(
        t.s.fatal(),
        Some("could not sign in: wrong account name or password")
    );
    // It quits: the guest it was is not kept by the server for a resume that never comes
    // (others saw it in #lobby for two minutes).
    assert!(
        t.sent().contains(&ClientMsg::Quit { reason: None }),
        "a quit before the close"
    );
    t.s.handle_input("not as a guest", t.now);
    assert!(t.sent().is_empty(), "nothing said as a guest");
}

#[test]
fn with_a_required_sign_in_rooms_are_joined_only_as_the_account() {
    // `natter --login --room '#ci'` with a wrong password showed "alice_2 joined #ci" and
    // "alice_2 quit" to everyone there (and kept them in history): the joins went at the
    // welcome, and the hub ran them as the guest once the sign-in was refused.
    let joins = |sent: &[ClientMsg]| -> Vec<RoomName> {
        sent.iter()
            .filter_map(|m| match m {
                ClientMsg::Join { room } => Some(room.clone()),
                _ => None,
            })
            .collect()
    };
    for refused in [false, true] {
        let mut t = T::new(Transport::Stream);
        t.s.sign_in(
            nick("alice"),
            Proof::Password(pw("pass word")),
            false,
            t.now,
        );
        t.s.require_sign_in();
        t.s.handle_connected(t.now);
        t.welcome(1, false);
        let sent = t.drain_paced();
        assert!(
            joins(&sent).is_empty(),
            "no join before the answer: {sent:?}"
        );
        t.s.handle_input("/join #typed", t.now);
        assert!(t.drain_paced().is_empty(), "a typed join waits too");
        if refused {
            t.recv(ServerMsg::Error {
                kind: ErrorKind::SignInFailed,
                re: Re::Conn,
                detail: "wrong account name or password".into(),
            });
            assert_eq!(t.s.state(), ConnState::Closed);
            assert!(joins(&t.sent()).is_empty(), "never joined as a guest");
        } else {
            signed_in(&mut t, "alice", 2, None);
            assert_eq!(
                joins(&t.drain_paced()),
                vec![room("#lobby"), room("#typed")],
                "joined once signed in, in the order asked"
            );
        }
    }
}

#[test]
fn with_a_required_sign_in_a_line_typed_before_the_answer_is_the_accounts() {
    for refused in [false, true] {
        let mut t = welcomed_signing_in("correct horse");
        t.s.handle_input("typed at once", t.now);
        let says = |sent: &[ClientMsg]| {
            sent.iter()
                .filter(|m| matches!(m, ClientMsg::Say { .. }))
                .count()
        };
        assert_eq!(says(&t.drain_paced()), 0, "not as a guest");
        if refused {
            t.recv(ServerMsg::Error {
                kind: ErrorKind::SignInFailed,
                re: Re::Conn,
                detail: "wrong account name or password".into(),
            });
            assert_eq!(t.s.state(), ConnState::Closed);
            assert_eq!(says(&t.sent()), 0, "never said at all");
        } else {
            signed_in(&mut t, "alice", 2, None);
            assert_eq!(says(&t.drain_paced()), 1, "said once, as alice");
        }
    }
}

#[test]
fn a_busy_server_is_asked_again_later_and_a_required_sign_in_waits_for_it() {
    let mut t = welcomed_signing_in("correct horse");
    let busy = || ServerMsg::Error {
        kind: ErrorKind::Unavailable,
        re: Re::Conn,
        detail: "the server is busy checking passwords; try again shortly".into(),
    };
    let again = sign_in_msg("alice", Proof::Password(pw("correct horse")), false);
    // Each busy answer waits longer: 1 s, then 2 s.
    for wait in [1_000, 2_000] {
        t.recv(busy());
        assert_eq!(t.s.state(), ConnState::Connected, "not given up on");
        assert!(!t.s.is_settled(), "the sign-in is still to come");
        t.advance(wait - 1);
        assert!(t.drain_paced().is_empty(), "not before {wait} ms");
        t.advance(1);
        assert_eq!(t.drain_paced(), vec![again.clone()]);
    }
    signed_in(&mut t, "alice", 2, None);
    assert_eq!(t.s.account(), Some(&nick("alice")));
}

/// A busy server's answer to a sign-in is not said as a refusal ("could not sign in: ...")
/// while the session says it asks again: the sign-in was not refused, it waits.
#[test]
fn a_busy_server_is_not_said_as_a_sign_in_that_could_not_be_done() {
    let mut t = welcomed_signing_in("correct horse");
    t.events();
    t.recv(ServerMsg::Error {
        kind: ErrorKind::Unavailable,
        re: Re::Conn,
        detail: "the server is busy checking passwords; try again shortly".into(),
    });
    assert_eq!(
        t.events(),
        vec![
            Event::Error {
                kind: Some(ErrorKind::Unavailable),
                about: About::Account,
                text: "the server is busy checking passwords; try again shortly".into()
            },
            Event::Info("the server is busy: asking again in 1 s".into())
        ]
    );
}

#[test]
fn moderation_is_an_api_call_and_its_answers_are_events() {
    use crate::moderation::{Entry, Mask, ModeChange, Modes};
    use crate::wire::ModAction;
    let mut t = T::ready(Transport::Stream);
    let kick = ModAction::Kick {
        nick: nick("bob"),
        reason: Some(text("spam")),
    };
    t.s.moderate(room("#lobby"), kick.clone(), t.now);
    t.s.moderate(
        room("#lobby"),
        ModAction::Mode(ModeChange::Moderated(true)),
        t.now,
    );
    assert_eq!(
        t.drain_paced(),
        vec![
            ClientMsg::Moderate {
                room: room("#lobby"),
                action: kick
            },
            ClientMsg::Moderate {
                room: room("#lobby"),
                action: ModAction::Mode(ModeChange::Moderated(true))
            }
        ]
    );

    let modes = Modes {
        moderated: true,
        ..Modes::default()
    };
    t.recv(ServerMsg::Policy {
        room: room("#lobby"),
        founder: Some(nick("alice")),
        ops: vec![nick("carol")],
        voiced: vec![],
        modes: Box::new(modes.clone()),
    });
    let ban = Entry {
        mask: Mask::Account(nick("bob")),
        until: None,
        by: nick("alice"),
        reason: None,
        at: crate::time::Millis(0),
    };
    t.recv(ServerMsg::BanList {
        room: room("#lobby"),
        bans: vec![ban.clone()],
        mutes: vec![],
    });
    t.recv(ServerMsg::Invited {
        room: room("#club"),
        by: nick("carol"),
    });
    let policy = Event::Policy {
        room: room("#lobby"),
        founder: Some(nick("alice")),
        ops: vec![nick("carol")],
        voiced: vec![],
        modes: modes.clone(),
        asked: false,
    };
    let bans = Event::BanList {
        room: room("#lobby"),
        bans: vec![ban],
        mutes: vec![],
        asked: false,
    };
    let invited = Event::Invited {
        room: room("#club"),
        by: nick("carol"),
    };
    assert_eq!(
        t.events(),
        vec![policy.clone(), bans.clone(), invited.clone()]
    );
    // The CLI's line mode reads them as words when they were typed for (`/mode`, `/bans`);
    // the settings every change (and every join) brings are not said again after the
    // change's own line, as nc does not say them.
    let me = nick("alice");
    assert!(render::session_lines(&policy, &me).is_empty());
    assert!(render::session_lines(&bans, &me).is_empty());
    let asked = |ev: &Event| match ev.clone() {
        Event::Policy {
            room,
            founder,
            ops,
            voiced,
            modes,
            ..
        } => Event::Policy {
            room,
            founder,
            ops,
            voiced,
            modes,
            asked: true,
        },
        Event::BanList {
            room, bans, mutes, ..
        } => Event::BanList {
            room,
            bans,
            mutes,
            asked: true,
        },
        other => other,
    };
    assert_eq!(
        render::session_lines(&asked(&policy), &me),
        vec!["-- #lobby is registered to alice; operators: carol; modes +m"]
    );
    assert_eq!(
        render::session_lines(&asked(&bans), &me).len(),
        1,
        "one line per ban"
    );
    assert!(render::session_lines(&asked(&bans), &me)[0].contains("account:bob"));
    assert_eq!(
        render::session_lines(&invited, &me),
        vec!["-- carol invites you to #club (/join #club)"]
    );

    // A typed `/mode #lobby` or `/bans` is answered with something to show; the API's are not.
    t.s.handle_input("/mode #lobby", t.now);
    t.s.handle_input("/bans", t.now);
    t.drain_paced();
    for _ in 0..2 {
        t.recv(ServerMsg::Policy {
            room: room("#lobby"),
            founder: None,
            ops: vec![],
            voiced: vec![],
            modes: Box::new(Modes::default()),
        });
        t.recv(ServerMsg::BanList {
            room: room("#lobby"),
            bans: vec![],
            mutes: vec![],
        });
    }
    let asked: Vec<bool> = t
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Policy { asked, .. } | Event::BanList { asked, .. } => Some(*asked),
            _ => None,
        })
        .collect();
    assert_eq!(
        asked,
        vec![true, true, false, false],
        "each typed ask is answered once; later news is quiet"
    );
}

#[test]
fn greeted_as_a_text_client_it_reconnects_at_once_and_gets_in() {
    // The preamble reached the server after its detection wait: it greets us as a person.
    let mut t = T::new(Transport::Stream);
    t.events();
    t.s.handle_connected(t.now);
    t.sent();
    t.s.handle_bytes(
        b"Welcome to natter, guest4821! Type /help for commands.\r\n",
        t.now,
    );
    let evs = t.events();
    assert!(evs.contains(&Event::Close), "{evs:?}");
    assert!(
        evs.iter()
            .any(|e| matches!(e, Event::Info(s) if s.contains("text client"))),
        "{evs:?}"
    );
    assert!(errors(&evs).is_empty(), "not bad data: {evs:?}");
    assert_eq!(t.s.poll_timeout(), Some(t.now), "no backoff");
    t.s.handle_timeout(t.now);
    assert!(t.events().contains(&Event::Connect));
    // The next connection's preamble comes in time: a welcome, and the join asked again.
    t.s.handle_connected(t.now);
    assert!(matches!(t.sent().as_slice(), [ClientMsg::Hello { .. }]));
    t.welcome(1, false);
    assert_eq!(t.s.state(), ConnState::Connected);
    assert_eq!(
        t.sent(),
        vec![ClientMsg::Join {
            room: RoomName::lobby()
        }]
    );
}

#[test]
fn a_server_that_always_greets_as_text_gets_the_backoff_after_a_few_quick_tries() {
    let mut t = T::new(Transport::Stream);
    let mut waits = Vec::new();
    for _ in 0..5 {
        t.s.handle_connected(t.now);
        t.sent();
        t.s.handle_bytes(b"hello stranger\r\n", t.now);
        let at = t.s.poll_timeout().expect("a reconnect is scheduled");
        waits.push(at.0 - t.now.0);
        t.now = at;
        t.s.handle_timeout(t.now);
        t.events();
    }
    assert_eq!(&waits[..3], &[0, 0, 0], "{waits:?}");
    assert!(waits[3] > 0 && waits[4] > 0, "{waits:?}");
    // Frames are never taken for text: a welcome's length prefix starts with 0.
    let mut t = T::new(Transport::Stream);
    t.s.handle_connected(t.now);
    t.welcome(1, false);
    assert_eq!(t.s.state(), ConnState::Connected);
}

/// The address the session schedules next and how long it waits, after an attempt fails.
fn fail_attempt(t: &mut T) -> (usize, u64) {
    t.s.handle_disconnected("refused", t.now);
    let at = t.s.poll_timeout().expect("a reconnect is scheduled");
    let wait = at.since(t.now).0;
    t.run_to_deadline();
    assert!(t.events().contains(&Event::Connect));
    (t.s.server(), wait)
}

#[test]
fn several_servers_are_tried_in_turn_at_once_then_after_the_backoff() {
    let mut t = T::new(Transport::Stream);
    t.s.set_servers(3);
    assert_eq!(t.s.server(), 0, "the first address first");
    t.events();
    // Nobody answers: the next address at once, until all three failed; then the backoff.
    let mut tries = Vec::new();
    for _ in 0..7 {
        tries.push(fail_attempt(&mut t));
    }
    let servers: Vec<usize> = tries.iter().map(|&(s, _)| s).collect();
    assert_eq!(servers, vec![1, 2, 0, 1, 2, 0, 1]);
    let waits: Vec<u64> = tries.iter().map(|&(_, w)| w).collect();
    assert_eq!(&waits[..2], &[0, 0], "{waits:?}");
    assert!(waits[2] >= RECONNECT_MIN.0 / 2, "a round failed: {waits:?}");
    assert_eq!(&waits[3..5], &[0, 0], "{waits:?}");
    assert!(
        waits[5] > waits[2] / 2 && waits[5] >= RECONNECT_MIN.0,
        "{waits:?}"
    );
    // The UI's attempt counts every attempt.
    t.s.handle_disconnected("refused", t.now);
    assert!(matches!(
        t.s.state(),
        ConnState::Reconnecting { attempt: 8, .. }
    ));
    t.run_to_deadline();
    // Server 2 welcomes us: it is kept.
    assert_eq!(t.s.server(), 2);
    t.s.handle_connected(t.now);
    t.welcome(1, false);
    assert_eq!(t.s.server(), 2);
    // Lost after a welcome: the same server again first (a resume works there), after the
    // backoff's first step; if it is gone, the next at once.
    t.s.handle_disconnected("reset", t.now);
    let at = t.s.poll_timeout().unwrap();
    assert!(at > t.now && at.since(t.now) <= RECONNECT_MIN, "first step");
    t.run_to_deadline();
    assert_eq!(t.s.server(), 2);
    assert_eq!(fail_attempt(&mut t), (0, 0));
    // An attempt that opens but gets no welcome counts as failed too.
    t.s.handle_connected(t.now);
    t.sent();
    t.advance(CONNECT_TIMEOUT.0);
    assert!(t.events().contains(&Event::Close));
    assert_eq!(t.s.poll_timeout(), Some(t.now), "the next at once");
    assert_eq!(t.s.server(), 1);
}

/// Sent away after the welcome (a `Bye`), the session tries the next address first: two
/// devices of one account on two nodes of a cluster each signed in again where they were and
/// took the account back from the other, 46 times each in 20 seconds (the thirty-first
/// session's cluster pass), every move a join line in the account's rooms. The one sent away
/// now goes to the next node, where the other is, and they stay there together.
#[test]
fn sent_away_after_the_welcome_the_next_address_is_tried_first() {
    let mut t = T::ready(Transport::Stream);
    t.s.set_servers(2);
    assert_eq!(t.s.server(), 0);
    t.events();
    t.recv(ServerMsg::Bye {
        reason: "your session continues on another server".into(),
    });
    let ev = t.events();
    assert!(ev.contains(&Event::Close), "{ev:?}");
    // After the usual first wait, not at once (no storm of reconnects).
    let at = t.s.poll_timeout().unwrap();
    assert!(at > t.now, "a wait first");
    t.run_to_deadline();
    assert!(t.events().contains(&Event::Connect));
    assert_eq!(t.s.server(), 1, "the next address");
    // With one address it is that one again.
    let mut one = T::ready(Transport::Stream);
    one.events();
    one.recv(ServerMsg::Bye {
        reason: "server shutting down".into(),
    });
    one.run_to_deadline();
    assert!(one.events().contains(&Event::Connect));
    assert_eq!(one.s.server(), 0);
}

#[test]
fn one_server_address_changes_nothing() {
    let mut t = T::new(Transport::Stream);
    t.events();
    for _ in 0..4 {
        let (server, wait) = fail_attempt(&mut t);
        assert_eq!(server, 0);
        assert!(wait >= RECONNECT_MIN.0 / 2);
    }
}

/// A node of a cluster died: the next node refuses the resume (tokens were that node's) and
/// gives a fresh session, whose rooms' seqs are the same (they come from the shared log).
#[test]
fn after_a_refused_resume_on_another_node_exactly_what_was_missed_is_shown() {
    for transport in [Transport::Stream, Transport::Messages] {
        let mut t = T::ready(transport);
        t.s.set_servers(2);
        for seq in 2..=10 {
            t.recv(say("#lobby", seq, "bob", seq, "before"));
        }
        t.s.handle_input("mine, acknowledged", t.now);
        t.recv(say("#lobby", 11, "alice", 1, "mine, acknowledged"));
        assert!(t.s.is_settled());
        t.events();
        t.sent();
        // The node dies: the same address is refused, the next takes us.
        let hello = t.fail_over();
        assert!(
            matches!(&hello[..], [ClientMsg::Hello { resume: Some(r), .. }]
                if r.rooms == vec![(room("#lobby"), Seq(11))]),
            "{hello:?}"
        );
        t.recv(error(ErrorKind::ResumeFailed, Re::Conn));
        // The dead node still holds the nick until its lease runs out.
        t.recv(ServerMsg::Welcome {
            version: PROTOCOL_VERSION,
            nick: nick("alice_2"),
            token: ResumeToken([2; 32]),
            resumed: false,
            limits: Limits::default(),
        });
        assert_eq!(
            t.sent(),
            vec![ClientMsg::Join {
                room: room("#lobby")
            }]
        );
        t.events();
        // Meanwhile 12..=30 happened; our join is 31; the join replays the last 10 (22..=31).
        t.joined("#lobby", 31);
        t.recv(say("#lobby", 22, "bob", 22, "recent"));
        // What the replay does not reach is asked for, from the last seq seen.
        assert_eq!(
            t.sent(),
            vec![ClientMsg::History {
                room: room("#lobby"),
                after: Seq(11)
            }]
        );
        for seq in 23..=30 {
            t.recv(say("#lobby", seq, "bob", seq, "recent"));
        }
        t.recv(ev("#lobby", 31, "alice_2", EventKind::Join));
        // The refill: everything after 11 (the replayed part again, too).
        for seq in 12..=30 {
            t.recv(say("#lobby", seq, "bob", seq, "refill"));
        }
        t.recv(ev("#lobby", 31, "alice_2", EventKind::Join));
        t.recv(say("#lobby", 32, "bob", 32, "live"));
        let evs = t.events();
        let mut expect: Vec<u64> = (22..=31).collect();
        expect.extend(12..=21);
        expect.push(32);
        assert_eq!(
            seqs(&evs),
            expect,
            "each missed event once, nothing seen twice"
        );
        assert!(evs.iter().any(|e| matches!(
            e,
            Event::Gap {
                first: Seq(12),
                last: Seq(21),
                ..
            }
        )));
        assert!(t.s.is_settled());
        assert_eq!(t.s.nick(), &nick("alice_2"));
    }
}

#[test]
fn a_rejoin_whose_replay_reaches_back_shows_only_what_is_new() {
    let mut t = T::ready(Transport::Stream);
    for seq in 2..=5 {
        t.recv(say("#lobby", seq, "bob", seq, "before"));
    }
    reconnect(&mut t);
    t.welcome(2, false);
    t.sent();
    t.events();
    t.joined("#lobby", 8);
    for seq in 1..=7 {
        t.recv(say("#lobby", seq, "bob", seq, "replayed"));
    }
    t.recv(ev("#lobby", 8, "alice", EventKind::Join));
    assert!(t.sent().is_empty(), "nothing to ask for");
    assert_eq!(seqs(&t.events()), vec![6, 7, 8]);
}

#[test]
fn a_line_in_flight_when_its_node_died_is_shown_once_after_a_resume_on_another_node() {
    for transport in [Transport::Stream, Transport::Messages] {
        let mut t = T::ready_at(transport, 5);
        t.s.set_servers(2);
        t.s.handle_input("in flight", t.now);
        assert_eq!(t.s.pending(), 1);
        t.sent();
        t.events();
        // The node stored it in the room's log and died before echoing it.
        let hello = t.fail_over();
        assert!(
            matches!(&hello[..], [ClientMsg::Hello { resume: Some(r), .. }]
                if r.token == ResumeToken([1; 32]) && r.rooms == vec![(room("#lobby"), Seq(5))]),
            "{hello:?}"
        );
        // The other node resumes the session: the line goes again, with its id (what the
        // node recognises it by).
        t.welcome(2, true);
        assert_eq!(
            t.sent(),
            vec![ClientMsg::Say {
                room: room("#lobby"),
                id: MsgId(1),
                text: text("in flight")
            }]
        );
        // The replay holds the stored copy: the node's silent move of the session (seq 7),
        // then the acknowledgement of the resend.
        t.recv(say("#lobby", 6, "alice", 1, "in flight"));
        t.recv(ev("#lobby", 7, "alice", EventKind::Moved));
        t.recv(ServerMsg::Ack { id: MsgId(1) });
        t.recv(say("#lobby", 8, "bob", 1, "after"));
        let evs = t.events();
        assert_eq!(
            seqs(&evs),
            vec![6, 8],
            "the line once; the move shows nothing"
        );
        assert!(
            !evs.iter().any(|e| matches!(e, Event::Gap { .. })),
            "{evs:?}"
        );
        let settled: Vec<_> = evs
            .iter()
            .filter(|e| matches!(e, Event::Settled { .. }))
            .collect();
        assert_eq!(settled.len(), 1, "{evs:?}");
        assert!(t.s.is_settled());
        assert!(t.sent().is_empty(), "nothing asked again");
    }
}

/// The operator's message of the day comes right after the welcome: one event with its lines,
/// in order, an empty line kept, and never more than the server may send.
#[test]
fn the_motd_is_one_event_with_its_lines() {
    let mut t = T::ready(Transport::Messages);
    let mut lines = vec![Some(text("Be kind.")), None, Some(text("Rules: see /help"))];
    lines.extend((0..30).map(|i| Some(text(&format!("extra {i}")))));
    t.recv(ServerMsg::Motd { lines });
    let evs = t.events();
    let [Event::Motd(shown)] = &evs[..] else {
        panic!("one Motd event: {evs:?}");
    };
    assert_eq!(shown.len(), crate::hub::MAX_MOTD_LINES, "{shown:?}");
    assert_eq!(&shown[..3], ["Be kind.", "", "Rules: see /help"]);
    // Line mode prints each as a notice.
    let printed = render::session_lines(&evs[0], &nick("alice"));
    assert_eq!(&printed[..3], ["-- Be kind.", "-- ", "-- Rules: see /help"]);
}

/// Line mode reads its next line once the one before is answered in turn: `/kick bob` then
/// `/ban` (a usage error the session says at once) printed the usage error first and the
/// server's refusal of the kick after it. After a command the next line waits for the
/// barrier's pong; after a chat line, only for its echo (no ping).
#[test]
fn a_commands_answer_comes_before_the_next_line_is_taken() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_input("/kick bob", t.now);
    t.drain_paced();
    assert!(t.s.is_settled(), "nothing acknowledges a /kick");
    assert!(!t.s.answered_in_turn(t.now));
    let token = match t.sent().as_slice() {
        [ClientMsg::Ping { token }] => *token,
        other => panic!("one barrier ping: {other:?}"),
    };
    t.recv(ServerMsg::Error {
        kind: ErrorKind::NotOperator,
        re: Re::Room(room("#lobby")),
        detail: "you are not an operator of #lobby".into(),
    });
    assert!(!t.s.answered_in_turn(t.now));
    t.recv(ServerMsg::Pong { token });
    assert!(t.s.answered_in_turn(t.now));
    // A chat line: its echo is its answer, and no ping goes out for it.
    t.s.handle_input("hello", t.now);
    t.drain_paced();
    assert!(!t.s.answered_in_turn(t.now));
    t.recv(say("#lobby", 2, "alice", 1, "hello"));
    assert!(t.s.answered_in_turn(t.now));
    assert!(t.sent().is_empty(), "no ping after a chat line");
}

/// A page's copy of a session kept when its tab closed is offered to the next tab within the
/// server's resume window only (the page's JavaScript kept its own copy of the window's length
/// until the thirty-first session); a clock that moved back is as far off as one that moved on.
#[test]
fn a_kept_session_is_fresh_within_the_resume_window_either_way() {
    use crate::limits::RESUME_GRACE;
    let at = Millis(1_000_000);
    assert!(Resumable::fresh(at, at));
    assert!(Resumable::fresh(at, at + Millis(RESUME_GRACE.0 - 1)));
    assert!(!Resumable::fresh(at, at + RESUME_GRACE));
    assert!(Resumable::fresh(at, Millis(at.0 - (RESUME_GRACE.0 - 1))));
    assert!(!Resumable::fresh(at, Millis(at.0 - RESUME_GRACE.0)));
    assert!(!Resumable::fresh(Millis(0), Millis(u64::MAX)));
    assert!(!Resumable::fresh(Millis(u64::MAX), Millis(0)));
}

/// Line mode's lockstep as a whole: when the next line may be read, and when the input is
/// held back rather than refused. natter's driver asked these questions itself until the
/// thirty-first session (`ready_for_input`, `held_up`), where only a test over a socket could
/// reach them.
#[test]
fn line_mode_takes_the_next_line_in_turn_or_while_there_is_room_to_keep_it() {
    let mut t = T::ready(Transport::Stream);
    assert!(t.s.takes_next_line(t.now), "nothing is waited for");
    t.s.handle_input("hello", t.now);
    t.drain_paced();
    assert!(!t.s.takes_next_line(t.now), "its echo first");
    assert!(!t.s.holds_input_back());
    t.s.handle_disconnected("gone", t.now);
    t.events();
    // Reconnecting: lines are kept for after the reconnect while there is room.
    for i in 1..SESSION_MAX_PENDING {
        assert!(t.s.takes_next_line(t.now), "room for line {i}");
        assert!(!t.s.holds_input_back());
        t.s.handle_input(&format!("m{i}"), t.now);
    }
    assert_eq!(t.s.pending(), SESSION_MAX_PENDING);
    assert!(!t.s.takes_next_line(t.now), "no room left");
    assert!(
        t.s.holds_input_back(),
        "the input waits instead of a refusal"
    );
    // Connecting again: nothing is held back (the connect timeout bounds the wait), and the
    // next line waits for what was kept to be answered.
    t.run_to_deadline();
    t.s.handle_connected(t.now);
    assert_eq!(t.s.state(), ConnState::Connecting);
    assert!(!t.s.takes_next_line(t.now));
    assert!(!t.s.holds_input_back());
    // Closed for good: lines are read, to be refused in words.
    t.s.handle_input("/quit", t.now);
    assert_eq!(t.s.state(), ConnState::Closed);
    assert!(t.s.takes_next_line(t.now));
    assert!(!t.s.holds_input_back());
}

#[test]
fn all_answered_waits_for_a_ping_sent_after_the_last_question() {
    let mut t = T::ready(Transport::Stream);
    // `/who` has no acknowledgement: settled at once, yet its answer is still to come.
    t.s.handle_input("/who", t.now);
    assert_eq!(
        t.drain_paced(),
        vec![ClientMsg::Who {
            room: room("#lobby")
        }]
    );
    assert!(t.s.is_settled());
    assert!(!t.s.all_answered(t.now));
    let token = match t.sent().as_slice() {
        [ClientMsg::Ping { token }] => *token,
        other => panic!("one barrier ping: {other:?}"),
    };
    // Asking again sends nothing more.
    assert!(!t.s.all_answered(t.now));
    assert!(t.sent().is_empty());
    // The answer, then another pong (a keepalive's), then the barrier's.
    t.recv(ServerMsg::Members {
        room: room("#lobby"),
        members: vec![nick("alice")],
    });
    t.recv(ServerMsg::Pong { token: 1 });
    assert!(!t.s.all_answered(t.now));
    t.recv(ServerMsg::Pong { token });
    assert!(t.s.all_answered(t.now));
    // More input: answered again only after another round trip.
    t.s.handle_input("/rooms", t.now);
    t.drain_paced();
    assert!(!t.s.all_answered(t.now));
    let next = match t.sent().as_slice() {
        [ClientMsg::Ping { token: next }] => *next,
        other => panic!("another barrier ping: {other:?}"),
    };
    assert_ne!(next, token);
    // The first ping's pong, late, does not answer the second.
    t.recv(ServerMsg::Pong { token });
    assert!(!t.s.all_answered(t.now));
    t.recv(ServerMsg::Pong { token: next });
    assert!(t.s.all_answered(t.now));
}

#[test]
fn input_naming_no_room_goes_to_the_configured_room_even_after_an_accounts_rooms() {
    // `natter --room '#ci'` signed in to an account already in #alpha: the server's joins of
    // the account's rooms come first, yet "build finished" belongs in #ci.
    let mut t = T::with(Transport::Stream, vec![room("#ci")], 7);
    t.s.handle_connected(t.now);
    t.welcome(1, false);
    t.joined("#alpha", 3);
    t.joined("#ci", 1);
    t.events();
    t.drain_paced();
    t.s.handle_input("build finished", t.now);
    assert!(
        matches!(
            t.drain_paced().as_slice(),
            [ClientMsg::Say { room: r, .. }] if r.as_str() == "#ci"
        ),
        "chat goes to the configured room"
    );
}

/// What line mode prints for `evs` (render's words), as seen by alice.
fn printed(evs: &[Event]) -> Vec<String> {
    evs.iter()
        .flat_map(|e| render::session_lines(e, &nick("alice")))
        .collect()
}

#[test]
fn a_first_connect_that_fails_says_why_and_when_it_retries_not_that_something_was_lost() {
    let mut t = T::new(Transport::Stream);
    t.events();
    // The driver could not connect: nothing was ever connected, so nothing was lost.
    t.s.handle_disconnected(
        "could not connect to 127.0.0.1:1: Connection refused (os error 111)",
        t.now,
    );
    let evs = t.events();
    let ConnState::Reconnecting { at, attempt, lost } = t.s.state() else {
        panic!("{:?}", t.s.state());
    };
    assert_eq!((attempt, lost), (1, false));
    let wait = render::wait_words(at.since(t.now));
    assert_eq!(
        printed(&evs),
        [format!(
            "-- could not connect to 127.0.0.1:1: Connection refused (os error 111); retrying in {wait}"
        )],
        "{evs:?}"
    );
    // The next attempt fails the same way: the same one line, with the longer wait.
    t.run_to_deadline();
    t.events();
    t.s.handle_disconnected("could not connect to 127.0.0.1:1: refused", t.now);
    let lines = printed(&t.events());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("-- could not connect to 127.0.0.1:1: refused; retrying in "),
        "{lines:?}"
    );

    // A transport that opens but is closed before the welcome was not lost either.
    t.run_to_deadline();
    t.events();
    t.s.handle_connected(t.now);
    t.s.handle_disconnected("the server closed the connection", t.now);
    let lines = printed(&t.events());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "-- the server did not welcome us: the server closed the connection; retrying in "
        ),
        "{lines:?}"
    );

    // Connected, then lost: that is a loss, said as before.
    t.run_to_deadline();
    t.s.handle_connected(t.now);
    t.welcome(1, false);
    t.events();
    t.s.handle_disconnected("the server closed the connection", t.now);
    assert!(matches!(
        t.s.state(),
        ConnState::Reconnecting {
            attempt: 1,
            lost: true,
            ..
        }
    ));
    // Said once, with why (it was two notices: `disconnected: ...`, then `connection lost;
    // reconnecting (attempt 1)`).
    assert_eq!(
        printed(&t.events()),
        ["-- connection lost: the server closed the connection; reconnecting"]
    );
    // While the server stays away, each failed attempt says why and when the next one is.
    t.run_to_deadline();
    t.events();
    t.s.handle_disconnected("could not connect to 127.0.0.1:1: refused", t.now);
    let lines = printed(&t.events());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("-- could not connect to 127.0.0.1:1: refused; retrying in "),
        "{lines:?}"
    );
    assert!(matches!(
        t.s.state(),
        ConnState::Reconnecting {
            attempt: 2,
            lost: false,
            ..
        }
    ));
}

#[test]
fn a_failed_attempt_with_more_addresses_says_it_tries_the_next() {
    let mut t = T::new(Transport::Stream);
    t.s.set_servers(2);
    t.events();
    t.s.handle_disconnected("could not connect to a:8000: refused", t.now);
    assert_eq!(
        printed(&t.events()),
        ["-- could not connect to a:8000: refused; trying the next server address"]
    );
    assert_eq!(t.s.server(), 1);
    t.run_to_deadline();
    t.events();
    // The whole round failed: the backoff comes first.
    t.s.handle_disconnected("could not connect to b:8000: refused", t.now);
    let lines = printed(&t.events());
    assert!(
        lines.len() == 1
            && lines[0].starts_with("-- could not connect to b:8000: refused; retrying in "),
        "{lines:?}"
    );
}

#[test]
fn connect_deadlines_say_what_failed_without_calling_it_a_loss() {
    // The transport never opens within the session's own deadline.
    let mut t = T::new(Transport::Messages);
    t.events();
    t.run_to_deadline();
    let evs = t.events();
    assert!(evs.contains(&Event::Close), "{evs:?}");
    let lines = printed(&evs);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("-- could not connect: timed out; retrying in "),
        "{lines:?}"
    );
    // It opens but no welcome comes.
    t.run_to_deadline();
    t.events();
    t.s.handle_connected(t.now);
    t.run_to_deadline();
    let lines = printed(&t.events());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("-- the server did not welcome us; retrying in "),
        "{lines:?}"
    );
}

#[test]
fn waits_read_as_people_say_them() {
    let w = |ms| render::wait_words(Millis(ms));
    assert_eq!(w(1), "0.1s");
    assert_eq!(w(180), "0.2s");
    assert_eq!(w(1_000), "1s");
    assert_eq!(w(1_450), "1.5s");
    assert_eq!(w(9_999), "10s");
    assert_eq!(w(12_300), "13s");
    assert_eq!(w(125_000), "2m 5s");
}

/// Welcomed under another nick than the one asked (someone has it, or an account owns it):
/// the session says why and how to have it, rather than a bare "connected as alice_2"; not
/// when a sign-in follows, which brings the account's nick.
#[test]
fn a_welcome_under_another_nick_says_why_unless_signing_in() {
    let mut t = T::new(Transport::Stream);
    t.s.handle_connected(t.now);
    t.events();
    t.recv(ServerMsg::Welcome {
        version: PROTOCOL_VERSION,
        nick: nick("alice_2"),
        token: ResumeToken([1; 32]),
        resumed: false,
        limits: Limits::default(),
    });
    let infos = infos(&mut t);
    assert_eq!(
        infos,
        [
            "alice is taken or a registered account here, so you are alice_2 (if alice is your \
             account, /login alice PASSWORD signs in to it)"
        ]
    );
    let mut t = T::new(Transport::Stream);
    t.s.sign_in(
        nick("alice"),
        Proof::Password(pw("correct horse")),
        false,
        t.now,
    );
    t.s.handle_connected(t.now);
    t.events();
    t.recv(ServerMsg::Welcome {
        version: PROTOCOL_VERSION,
        nick: nick("alice_2"),
        token: ResumeToken([1; 32]),
        resumed: false,
        limits: Limits::default(),
    });
    let events = t.events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Info(_))),
        "a sign-in follows"
    );
    // Nor is the guest nick said: line mode, the TUI and the page say what is under way.
    let welcome = events
        .iter()
        .find(|e| matches!(e, Event::Welcome { .. }))
        .expect("a welcome");
    assert_eq!(
        welcome,
        &Event::Welcome {
            nick: nick("alice_2"),
            resumed: false,
            signing_in: Some(nick("alice")),
        }
    );
    assert_eq!(
        crate::render::session_lines(welcome, &nick("alice_2")),
        ["-- connected; signing in as alice"]
    );
}

/// Banned from the server, at the hello or later: every attempt would be refused the same
/// way, so the session ends with the reason rather than retrying (and saying it) for ever.
#[test]
fn a_server_ban_ends_the_session_with_its_reason() {
    for welcomed_first in [false, true] {
        let mut t = T::new(Transport::Stream);
        t.s.handle_connected(t.now);
        if welcomed_first {
            t.welcome(1, false);
        }
        t.events();
        t.recv(ServerMsg::Error {
            kind: ErrorKind::Banned,
            re: Re::Conn,
            detail: "you are banned from this server: spam".into(),
        });
        t.recv(ServerMsg::Bye {
            reason: "you are banned from this server: spam".into(),
        });
        assert_eq!(
            t.s.state(),
            ConnState::Closed,
            "welcomed first: {welcomed_first}"
        );
        assert_eq!(t.s.fatal(), Some("you are banned from this server: spam"));
        t.s.handle_disconnected("closed by the server", t.now);
        assert_eq!(t.s.state(), ConnState::Closed, "no retry");
    }
}

/// The info lines among the events so far.
fn infos(t: &mut T) -> Vec<String> {
    t.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Info(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// A big room (its member list as long as a list gets): the joins, parts and quits its join
/// replays are from when it was small, and its live ones come summed up (`Crowd`). Line mode
/// printed the fifty replayed joins as `-- m250 joined #big`, the same line as a live join, and
/// the TUI filled its pane with them. They are history the member list holds already: not
/// shown, on a join nor on a resume. What was said, and live comings and goings, still are.
#[test]
fn a_big_rooms_replayed_joins_and_parts_are_not_shown_as_news() {
    use crate::limits::MAX_MEMBERS_LISTED;
    let crowd: Vec<Nick> = (0..MAX_MEMBERS_LISTED)
        .map(|i| nick(&format!("m{i}")))
        .collect();
    let mut t = T::ready(Transport::Stream);
    t.s.handle_input("/join #big", t.now);
    t.sent();
    t.recv(ServerMsg::Joined {
        room: room("#big"),
        topic: None,
        members: crowd.clone(),
        seq: Seq(60),
    });
    t.recv(ev("#big", 55, "m250", EventKind::Join));
    t.recv(say("#big", 56, "m250", 1, "hello all"));
    t.recv(ev("#big", 57, "m9", EventKind::Part { reason: None }));
    t.recv(ev("#big", 58, "m8", EventKind::Quit { reason: None }));
    t.recv(ev("#big", 59, "m251", EventKind::Join));
    t.recv(ev("#big", 60, "alice", EventKind::Join));
    // Live: said as ever.
    t.recv(ev("#big", 61, "late", EventKind::Join));
    let shown = seqs(&t.events());
    assert_eq!(
        shown,
        vec![56, 61],
        "history's comings and goings are not news"
    );
    // A small room's replay is shown whole, as before.
    t.s.handle_input("/join #small", t.now);
    t.sent();
    t.joined("#small", 3);
    t.recv(ev("#small", 2, "bob", EventKind::Join));
    t.recv(ev("#small", 3, "alice", EventKind::Join));
    assert_eq!(seqs(&t.events()), vec![2, 3]);
    // A resume: what it replays of the big room is history as well.
    let _ = reconnect(&mut t);
    t.welcome(2, true);
    t.sent();
    t.recv(ServerMsg::Joined {
        room: room("#big"),
        topic: None,
        members: crowd,
        seq: Seq(64),
    });
    t.recv(ev("#big", 62, "m7", EventKind::Part { reason: None }));
    t.recv(say("#big", 63, "m250", 2, "still here"));
    t.recv(ev("#big", 64, "m252", EventKind::Join));
    assert_eq!(seqs(&t.events()), vec![63]);
}

/// `natter --wait 10 HOST:PORT` that never got in says why at the end: the latest attempt's
/// reason. Before, a client whose later attempts were greeted as text (a full server's text
/// refusal, a text door) exited naming an earlier attempt's failure (a refused connect, or no
/// reason at all), which sent people looking at the wrong thing.
#[test]
fn the_last_failure_is_the_latest_attempts_reason() {
    let mut t = T::new(Transport::Stream);
    assert_eq!(t.s.last_failure(), None);
    t.s.handle_disconnected(
        "could not connect to 127.0.0.1:8000: Connection refused",
        t.now,
    );
    assert_eq!(
        t.s.last_failure(),
        Some("could not connect to 127.0.0.1:8000: Connection refused")
    );
    // The next attempt connects, and is greeted as a person on nc.
    t.now = t.now + Millis(60_000);
    t.s.handle_timeout(t.now);
    t.events();
    t.s.handle_connected(t.now);
    t.sent();
    t.s.handle_bytes(b"ERROR: the server is full, try again later\r\n", t.now);
    assert_eq!(
        t.s.last_failure(),
        Some(
            "the server took us for a text client (our preamble came late); it said \"ERROR: \
             the server is full, try again later\""
        )
    );
    // And the one after reaches a port of another service.
    t.now = t.now + Millis(60_000);
    t.s.handle_timeout(t.now);
    t.events();
    t.s.handle_connected(t.now);
    t.sent();
    t.s.handle_bytes(b"SSH-2.0-OpenSSH_9.2\r\n", t.now);
    assert!(
        t.s.last_failure()
            .is_some_and(|w| w.starts_with("this port does not speak natter's protocol")),
        "{:?}",
        t.s.last_failure()
    );
}

/// What a stream connection's first bytes make of it: (the words said, whether it closed, the
/// wait before the next attempt).
fn first_heard(bytes: &[u8]) -> (Vec<String>, bool, Option<Millis>) {
    let mut t = T::new(Transport::Stream);
    t.s.handle_connected(t.now);
    t.sent();
    t.events();
    t.s.handle_bytes(bytes, t.now);
    let evs = t.events();
    let mut said = Vec::new();
    let mut wait = None;
    for e in &evs {
        match e {
            Event::ConnectFailed { why, wait: w, .. } => {
                said.push(why.clone());
                wait = Some(*w);
            }
            Event::Info(s) => said.push(s.clone()),
            _ => {}
        }
    }
    (said, evs.contains(&Event::Close), wait)
}

#[test]
fn a_port_that_is_not_natter_is_named_and_tried_again_with_backoff() {
    // `natter 127.0.0.1:6667` (the IRC listener) used to say "the server took us for a text
    // client (our preamble came late); reconnecting" every ten seconds.
    for (bytes, heard) in [
        (
            &b"ERROR :no hello within 10 seconds\r\n"[..],
            "ERROR :no hello within 10 seconds",
        ),
        (
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 400 Bad Request",
        ),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "SSH-2.0-OpenSSH_9.2"),
        (
            b":irc.example.org NOTICE * :*** Looking up your hostname\r\n",
            ":irc.example.org NOTICE * :*** Looking up your hostname",
        ),
    ] {
        let (said, closed, wait) = first_heard(bytes);
        assert!(closed, "{said:?}");
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0]
                == format!(
                    "this port does not speak natter's protocol (an IRC or web port?); \
                     it said \"{heard}\""
                ),
            "{said:?}"
        );
        assert!(wait.is_some_and(|w| w > Millis(0)), "backoff: {wait:?}");
    }
    // A TLS port reached without TLS answers with an alert.
    let (said, closed, wait) = first_heard(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]);
    assert!(closed && wait.is_some(), "{said:?}");
    assert_eq!(
        said,
        ["this port speaks TLS: connect with natters://HOST:PORT (or --tls)"]
    );
    // A natter server that greeted us as a person on nc (in one read or a part of it), or
    // refused us as one: the quick reconnect, as before.
    for bytes in [
        &b"Welcome to natter, guest1234! Type to talk."[..],
        b"Welc",
        b"ERROR: the server is full, try again later\r\n",
        b"hello stranger\r\n",
    ] {
        let (said, closed, wait) = first_heard(bytes);
        assert!(closed);
        assert_eq!(wait, None, "{said:?}");
        assert!(
            said.iter().any(|s| s.contains("took us for a text client")),
            "{said:?}"
        );
    }
}

fn notice(r: &str, seq: u64, from: &str, id: u64, t: &str) -> ServerMsg {
    ev(
        r,
        seq,
        from,
        EventKind::Notice {
            id: MsgId(id),
            text: text(t),
        },
    )
}

#[test]
fn notices_go_to_a_room_or_a_nick_and_their_echoes_settle_them() {
    for transport in [Transport::Stream, Transport::Messages] {
        let mut t = T::ready(transport);
        t.s.handle_input("/notice #lobby build is green", t.now);
        assert_eq!(
            t.sent(),
            vec![ClientMsg::Notice {
                room: room("#lobby"),
                id: MsgId(1),
                text: text("build is green")
            }]
        );
        assert_eq!(
            t.events(),
            vec![Event::Queued {
                id: MsgId(1),
                to: Target::Room(room("#lobby")),
                kind: ChatKind::Notice,
                text: text("build is green")
            }]
        );
        // A say with our id and words is not the echo of a notice.
        t.recv(say("#lobby", 2, "alice", 1, "build is green"));
        assert!(!t.s.is_settled());
        t.recv(notice("#lobby", 3, "alice", 1, "build is green"));
        assert!(t.s.is_settled());
        let events = t.events();
        assert!(
            matches!(
                &events[..],
                [
                    Event::Room(_),
                    Event::Room(RoomEvent {
                        kind: EventKind::Notice { .. },
                        ..
                    }),
                    Event::Settled {
                        id: MsgId(1),
                        delivered: true
                    }
                ]
            ),
            "{events:?}"
        );

        t.advance(FLOOD_REFILL.0);
        t.s.handle_input("/notice bob ping", t.now);
        assert_eq!(
            t.sent(),
            vec![ClientMsg::NoticeTo {
                to: nick("bob"),
                id: MsgId(2),
                text: text("ping")
            }]
        );
        assert!(matches!(
            &t.events()[..],
            [Event::Queued { to: Target::Nick(n), kind: ChatKind::Notice, .. }] if *n == nick("bob")
        ));
        let echo = DirectMsg {
            from: nick("alice"),
            to: nick("bob"),
            id: MsgId(2),
            at: Millis(7),
            text: text("ping"),
        };
        // A direct message with the same id and words is not its echo either.
        t.recv(ServerMsg::Direct(echo.clone()));
        assert!(!t.s.is_settled());
        t.recv(ServerMsg::DirectNotice(echo.clone()));
        assert!(t.s.is_settled());
        let events = t.events();
        assert_eq!(
            events[1..],
            [
                Event::DirectNotice(echo.clone()),
                Event::Settled {
                    id: MsgId(2),
                    delivered: true
                }
            ]
        );
        // Line mode shows the sender its own notice as it went.
        assert_eq!(
            render::session_lines(&events[1], &nick("alice")),
            ["-> -bob- ping"]
        );
    }
}

#[test]
fn a_received_notice_shows_as_a_notice_and_settles_nothing_of_ours() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_input("/notice #lobby mine", t.now);
    t.sent();
    t.events();
    // Someone else's notice, with the same id as ours: shown, ours still waits.
    t.recv(notice("#lobby", 2, "bob", 1, "mine"));
    let theirs = DirectMsg {
        from: nick("bob"),
        to: nick("alice"),
        id: MsgId(1),
        at: Millis(8),
        text: text("psst"),
    };
    t.recv(ServerMsg::DirectNotice(theirs.clone()));
    assert!(!t.s.is_settled());
    let events = t.events();
    assert!(matches!(
        &events[..],
        [Event::Room(RoomEvent { kind: EventKind::Notice { .. }, from, .. }), Event::DirectNotice(d)]
            if *from == nick("bob") && *d == theirs
    ));
    let lines: Vec<String> = events
        .iter()
        .flat_map(|e| render::session_lines(e, &nick("alice")))
        .collect();
    assert_eq!(lines, ["[#lobby] -bob- mine", "-bob- psst"]);
}

#[test]
fn a_refused_notice_is_settled_undelivered_with_the_reason() {
    let mut t = T::ready(Transport::Stream);
    t.s.handle_input("/notice nobody hello?", t.now);
    assert!(matches!(
        &t.sent()[..],
        [ClientMsg::NoticeTo { id: MsgId(1), .. }]
    ));
    t.events();
    t.recv(ServerMsg::Error {
        kind: ErrorKind::NoSuchNick,
        re: Re::Msg(MsgId(1)),
        detail: "nobody is called nobody".into(),
    });
    assert!(t.s.is_settled());
    assert_eq!(
        t.events(),
        vec![
            Event::Error {
                kind: Some(ErrorKind::NoSuchNick),
                about: About::Message(MsgId(1)),
                text: "nobody is called nobody".into()
            },
            Event::Settled {
                id: MsgId(1),
                delivered: false
            },
        ]
    );
    // Typed wrong, it never leaves: the usage comes back in words.
    t.s.handle_input("/notice #lobby", t.now);
    assert_eq!(errors(&t.events()), vec!["usage: /notice #room|nick text"]);
    assert!(t.sent().is_empty());
}

#[test]
fn a_server_older_than_notices_is_sent_none_and_the_user_is_told() {
    let old = wire::NOTICE_VERSION - 1;
    let mut t = T::new(Transport::Stream);
    t.events();
    // Typed before any welcome: it waits, and the welcome of an old server refuses it.
    t.s.handle_input("hello", t.now);
    t.s.handle_input("/notice #lobby early", t.now);
    t.s.handle_input("/notice bob early too", t.now);
    t.s.handle_connected(t.now);
    t.welcome_at(old, 1, false);
    let sent = t.drain_paced();
    assert!(
        !sent
            .iter()
            .any(|m| matches!(m, ClientMsg::Notice { .. } | ClientMsg::NoticeTo { .. })),
        "{sent:?}"
    );
    assert!(
        sent.iter()
            .any(|m| matches!(m, ClientMsg::Say { text: t, .. } if t.as_str() == "hello")),
        "what the server knows still goes: {sent:?}"
    );
    let events = t.events();
    let too_old = format!("it speaks natter protocol version {old}");
    for id in [MsgId(2), MsgId(3)] {
        assert!(
            events.iter().any(
                |e| matches!(e, Event::Error { about: About::Message(i), text, .. }
                if *i == id && text.contains("too old") && text.contains(&too_old))
            ),
            "{id:?}: {events:?}"
        );
        assert!(events.contains(&Event::Settled {
            id,
            delivered: false
        }));
    }
    // Typed while welcomed by it: refused at once, nothing queued or sent.
    t.joined("#lobby", 1);
    t.events();
    t.s.handle_input("/notice #lobby now", t.now);
    let errs = errors(&t.events());
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("too old") && errs[0].contains("/notice needs version 7"));
    assert!(t.drain_paced().is_empty());
    assert_eq!(t.s.pending(), 1, "only the say waits for its echo");

    // Another server, one that knows notices: they go again.
    t.s.handle_disconnected("reset", t.now);
    t.run_to_deadline();
    t.events();
    t.s.handle_connected(t.now);
    t.sent();
    t.welcome_at(PROTOCOL_VERSION, 2, false);
    t.joined("#lobby", 3);
    t.drain_paced();
    t.events();
    t.s.handle_input("/notice #lobby later", t.now);
    assert!(errors(&t.events()).is_empty());
    assert!(
        t.drain_paced()
            .iter()
            .any(|m| matches!(m, ClientMsg::Notice { text: t, .. } if t.as_str() == "later"))
    );
}

/// `/away text` and `/back` go to a server of version 8 as `Away`; its answers (our own away,
/// a co-member's, a user written to) are lines for people. Not connected, or to an older
/// server, it is refused in words and nothing is sent.
#[test]
fn away_is_sent_to_a_server_that_knows_it_and_its_news_are_lines() {
    let mut t = T::new(Transport::Stream);
    t.events();
    t.s.handle_input("/away early", t.now);
    let errs = errors(&t.events());
    assert_eq!(errs, ["not connected; /away again once connected"]);
    t.s.handle_connected(t.now);
    t.welcome_at(7, 1, false);
    t.joined("#lobby", 1);
    t.drain_paced();
    t.events();
    t.s.handle_input("/away lunch", t.now);
    let errs = errors(&t.events());
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("too old") && errs[0].contains("/away needs version 8"));
    assert!(t.drain_paced().is_empty());

    t.s.handle_disconnected("reset", t.now);
    t.run_to_deadline();
    t.events();
    t.s.handle_connected(t.now);
    t.sent();
    t.welcome_at(PROTOCOL_VERSION, 2, false);
    t.joined("#lobby", 3);
    t.drain_paced();
    t.events();
    t.s.handle_input("/away at lunch", t.now);
    t.s.handle_input("/back", t.now);
    assert_eq!(
        t.drain_paced(),
        [
            ClientMsg::Away(Some(text("at lunch"))),
            ClientMsg::Away(None)
        ]
    );
    assert!(errors(&t.events()).is_empty());
    for (who, away) in [
        ("alice", Some("at lunch")),
        ("bob", Some("brb")),
        ("bob", None),
        ("alice", None),
    ] {
        t.recv(ServerMsg::Away {
            nick: nick(who),
            away: away.map(text),
        });
    }
    let me = nick("alice");
    let said: Vec<String> = t
        .events()
        .iter()
        .flat_map(|e| render::session_lines(e, &me))
        .map(|l| l.trim_start_matches("-- ").to_owned())
        .collect();
    assert_eq!(
        said,
        [
            "you are away: at lunch (/back when you are back)",
            "bob is away: brb",
            "bob is back",
            "you are back (no longer away)"
        ]
    );
}

/// Who in a room is away (`AwayHere`) is handed on as state for member lists, with no line and
/// no error; for a room we are not in it is dropped. Away news is one event: its line is the
/// front end's to place.
#[test]
fn who_is_away_is_state_for_member_lists_not_a_line() {
    let mut t = T::new(Transport::Stream);
    t.s.handle_connected(t.now);
    t.recv(ServerMsg::Welcome {
        version: PROTOCOL_VERSION,
        nick: nick("alice"),
        token: ResumeToken([3; 32]),
        resumed: false,
        limits: Limits::default(),
    });
    t.joined("#lobby", 1);
    t.events();
    let here = |r: &str| ServerMsg::AwayHere {
        room: room(r),
        away: vec![(nick("bob"), text("lunch"))],
    };
    t.recv(here("#lobby"));
    t.recv(here("#elsewhere"));
    assert_eq!(
        t.events(),
        [Event::AwayHere {
            room: room("#lobby"),
            away: vec![(nick("bob"), text("lunch"))],
        }]
    );
    t.recv(ServerMsg::Away {
        nick: nick("bob"),
        away: None,
    });
    assert_eq!(
        t.events(),
        [Event::Away {
            nick: nick("bob"),
            away: None
        }]
    );
}

/// `/topic [#room] -delete` goes to a server of version 9 as `ClearTopic` for the current room
/// (or the one named); to an older server (which could not decode it) or while not connected
/// it is refused in words and nothing is sent.
#[test]
fn clearing_a_topic_is_sent_to_a_server_that_knows_it() {
    let mut t = T::new(Transport::Stream);
    t.events();
    t.s.handle_connected(t.now);
    t.welcome_at(8, 1, false);
    t.joined("#lobby", 1);
    t.drain_paced();
    t.events();
    t.s.handle_input("/topic -delete", t.now);
    let errs = errors(&t.events());
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("too old") && errs[0].contains("needs version 9"));
    assert!(t.drain_paced().is_empty());

    t.s.handle_disconnected("reset", t.now);
    t.events();
    t.s.handle_input("/topic -delete", t.now);
    let errs = errors(&t.events());
    assert!(
        errs.iter().any(|e| e.starts_with("not connected")),
        "{errs:?}"
    );
    t.run_to_deadline();
    t.events();
    t.s.handle_connected(t.now);
    t.sent();
    t.welcome_at(PROTOCOL_VERSION, 2, false);
    t.joined("#lobby", 3);
    t.drain_paced();
    t.events();
    t.s.handle_input("/topic -delete", t.now);
    t.s.handle_input("/topic #other -delete", t.now);
    assert_eq!(
        t.drain_paced(),
        [
            ClientMsg::ClearTopic {
                room: room("#lobby")
            },
            ClientMsg::ClearTopic {
                room: room("#other")
            }
        ]
    );
    assert!(errors(&t.events()).is_empty());
}

/// `/whois nick` goes to a server of version 11 as `Whois`, and its answer comes back as an
/// event; to an older server (which could not decode it) it is refused in words and nothing
/// is sent.
#[test]
fn whois_is_asked_of_a_server_that_knows_it() {
    let mut t = T::new(Transport::Stream);
    t.events();
    t.s.handle_connected(t.now);
    t.welcome_at(10, 1, false);
    t.joined("#lobby", 1);
    t.drain_paced();
    t.events();
    t.s.handle_input("/whois bob", t.now);
    let errs = errors(&t.events());
    assert!(
        errs.len() == 1 && errs[0].contains("too old") && errs[0].contains("needs version 11"),
        "{errs:?}"
    );
    assert!(t.drain_paced().is_empty());

    let mut t = T::ready(Transport::Stream);
    t.drain_paced();
    t.events();
    t.s.handle_input("/whois bob", t.now);
    assert_eq!(t.drain_paced(), [ClientMsg::Whois { nick: nick("bob") }]);
    t.recv(ServerMsg::Whois {
        nick: nick("bob"),
        user: None,
    });
    assert_eq!(
        t.events(),
        [Event::Whois {
            nick: nick("bob"),
            user: None
        }]
    );
}

/// `/join #a #b` and `/join #c,#d` ask the server for each room, in order.
#[test]
fn joining_several_rooms_asks_for_each() {
    let mut t = T::ready(Transport::Stream);
    t.drain_paced();
    t.events();
    t.s.handle_input("/join #a #b", t.now);
    t.s.handle_input("/join #c,#d", t.now);
    let joins: Vec<ClientMsg> = t
        .drain_paced()
        .into_iter()
        .filter(|m| matches!(m, ClientMsg::Join { .. }))
        .collect();
    assert_eq!(
        joins,
        ["#a", "#b", "#c", "#d"].map(|r| ClientMsg::Join { room: room(r) })
    );
    assert!(errors(&t.events()).is_empty());
    t.joined("#a", 1);
    t.joined("#b", 1);
    t.events();
    t.s.handle_input("/part #a,#b see you", t.now);
    let parts: Vec<ClientMsg> = t
        .drain_paced()
        .into_iter()
        .filter(|m| matches!(m, ClientMsg::Part { .. }))
        .collect();
    assert_eq!(
        parts,
        ["#a", "#b"].map(|r| ClientMsg::Part {
            room: room(r),
            reason: Some(text("see you"))
        })
    );
}

/// The answer to `/invite` (version 8) is a line saying it is done, where nothing was shown.
#[test]
fn an_invitation_sent_is_said() {
    let mut t = T::ready(Transport::Stream);
    t.events();
    t.recv(ServerMsg::InviteSent {
        room: room("#lobby"),
        nick: nick("bob"),
    });
    assert_eq!(infos(&mut t), ["you invited bob to #lobby"]);
}

/// A big room small again: its summary says so, and the member list (which still names those
/// who left while joins and parts were only counted, and lacks those who came) is asked for
/// and refreshed without a line. A summary of a room still too big for a list asks nothing,
/// and a typed `/who` is answered with its line as before.
#[test]
fn a_big_room_small_again_refreshes_its_member_list_quietly() {
    let mut t = T::ready(Transport::Stream);
    let crowd = |joined, left, members| ServerMsg::Crowd {
        room: room("#lobby"),
        joined,
        left,
        members,
    };
    t.recv(crowd(0, 0, 320));
    t.recv(crowd(4, 0, 324));
    assert!(t.drain_paced().is_empty(), "still too big for one list");
    t.events();
    t.recv(crowd(1, 30, 295));
    assert_eq!(
        t.drain_paced(),
        [ClientMsg::Who {
            room: room("#lobby")
        }]
    );
    t.events();
    let list = ServerMsg::Members {
        room: room("#lobby"),
        members: vec![nick("alice"), nick("carol")],
    };
    t.recv(list.clone());
    let evs = t.events();
    assert!(
        matches!(&evs[..], [Event::Members { asked: false, members, .. }] if members.len() == 2),
        "{evs:?}"
    );
    // Typed: shown.
    t.s.handle_input("/who", t.now);
    t.drain_paced();
    t.recv(list);
    let evs = t.events();
    assert!(
        matches!(&evs[..], [Event::Members { asked: true, .. }]),
        "{evs:?}"
    );
}

/// `/devices` and `/devices forget ID` go to a server of version 12 as `Devices` and
/// `ForgetDevice`, and the list comes back as an event; to an older server (which could not
/// decode them) they are refused in words and nothing is sent.
#[test]
fn devices_are_asked_of_a_server_that_knows_them() {
    let mut t = T::new(Transport::Stream);
    t.events();
    t.s.handle_connected(t.now);
    t.welcome_at(11, 1, false);
    t.joined("#lobby", 1);
    t.drain_paced();
    t.events();
    for line in ["/devices", "/devices forget 0a0b0c0d"] {
        t.s.handle_input(line, t.now);
        let errs = errors(&t.events());
        assert!(
            errs.len() == 1 && errs[0].contains("too old") && errs[0].contains("needs version 12"),
            "{errs:?}"
        );
    }
    assert!(t.drain_paced().is_empty());

    let mut t = T::ready(Transport::Stream);
    t.drain_paced();
    t.events();
    t.s.handle_input("/devices", t.now);
    t.s.handle_input("/devices forget 0A0B0C0D", t.now);
    assert_eq!(
        t.drain_paced(),
        [
            ClientMsg::Devices,
            ClientMsg::ForgetDevice { id: 0x0a0b_0c0d }
        ]
    );
    let devices = vec![crate::wire::RememberedDevice {
        id: 0x0a0b_0c0d,
        remembered: crate::time::Millis(0),
        used: None,
        this: true,
        label: None,
    }];
    t.recv(ServerMsg::Devices {
        devices: devices.clone(),
    });
    assert_eq!(t.events(), [Event::Devices(devices.clone())]);
    let lines = crate::render::session_lines(&Event::Devices(devices), &nick("alice"));
    assert_eq!(
        lines,
        [
            "-- 1 remembered device (/devices name ID label names one, /devices forget ID signs one out for good):",
            "-- 0a0b0c0d (this device): remembered 1970-01-01 00:00 UTC, last sign-in not recorded"
        ]
    );
}

/// A session given a device label says it after each welcome of a server of 13 or later,
/// before the sign-in that may ask for a key, and never to an older server (which could not
/// decode it); `/devices name` goes to a server of 13 only, and the labels come back in the
/// list's lines.
#[test]
fn a_device_label_is_said_before_the_sign_in_to_a_server_that_keeps_it() {
    use crate::types::DeviceLabel;
    let label = DeviceLabel::new("natter on laptop").unwrap();
    for (version, says) in [(12, false), (13, true)] {
        let mut t = T::new(Transport::Stream);
        t.s.set_device_label(Some(label.clone()));
        t.s.sign_in(nick("alice"), Proof::Password(pw("secret")), true, t.now);
        t.events();
        t.s.handle_connected(t.now);
        t.welcome_at(version, 1, false);
        let sent = t.drain_paced();
        let this = ClientMsg::ThisDevice {
            label: label.clone(),
        };
        let first_sign_in = sent
            .iter()
            .position(|m| matches!(m, ClientMsg::SignIn { remember: true, .. }))
            .expect("a sign-in");
        match sent.iter().position(|m| *m == this) {
            Some(i) => assert!(says && i < first_sign_in, "version {version}: {sent:?}"),
            None => assert!(!says, "version {version}: {sent:?}"),
        }
        t.joined("#lobby", 1);
        t.drain_paced();
        t.events();
        t.s.handle_input("/devices name 0a0b0c0d work  laptop", t.now);
        if says {
            assert_eq!(
                t.drain_paced(),
                [ClientMsg::NameDevice {
                    id: 0x0a0b_0c0d,
                    label: DeviceLabel::new("work laptop").unwrap(),
                }]
            );
        } else {
            let errs = errors(&t.events());
            assert!(
                errs.len() == 1 && errs[0].contains("needs version 13"),
                "{errs:?}"
            );
            assert!(t.drain_paced().is_empty());
        }
    }
    // A front-end's panel asks without typing: the same messages as `/devices`.
    let mut t = T::ready(Transport::Stream);
    t.drain_paced();
    t.s.list_devices(t.now);
    t.s.forget_device(0x0a0b_0c0d, t.now);
    assert_eq!(
        t.drain_paced(),
        [
            ClientMsg::Devices,
            ClientMsg::ForgetDevice { id: 0x0a0b_0c0d }
        ]
    );
    // Only a sign-in that asks for a key says it (the server keeps a connection's label while
    // it lasts): not one with a password alone (the terminal client's), not a resume.
    let mut t = T::ready(Transport::Stream);
    t.s.set_device_label(Some(label.clone()));
    t.drain_paced();
    t.s.sign_in(nick("alice"), Proof::Password(pw("secret")), false, t.now);
    let sent = t.drain_paced();
    assert!(
        matches!(
            sent[..],
            [ClientMsg::SignIn {
                remember: false,
                ..
            }]
        ),
        "{sent:?}"
    );
    t.s.handle_disconnected("gone", t.now);
    t.run_to_deadline();
    t.s.handle_connected(t.now);
    t.welcome_at(13, 2, true);
    assert!(
        !t.drain_paced()
            .iter()
            .any(|m| matches!(m, ClientMsg::ThisDevice { .. })),
        "a resume asks for no key"
    );
    let devices = vec![crate::wire::RememberedDevice {
        id: 0x0a0b_0c0d,
        remembered: Millis(0),
        used: None,
        this: false,
        label: Some(label),
    }];
    let lines = crate::render::session_lines(&Event::Devices(devices), &nick("alice"));
    assert_eq!(
        lines[1],
        "-- 0a0b0c0d \"natter on laptop\": remembered 1970-01-01 00:00 UTC, last sign-in not recorded"
    );
}

/// A remembered device forgotten from another device (`NotSignedIn`, then `Bye`) lets go of
/// its key and password: it comes back as a guest and does not sign in again by itself.
#[test]
fn a_forgotten_device_lets_go_of_its_credentials() {
    let mut t = T::ready(Transport::Stream);
    t.s.sign_in(
        nick("alice"),
        Proof::Password(pw("correct horse")),
        true,
        t.now,
    );
    t.drain_paced();
    signed_in(&mut t, "alice", 2, Some(5));
    assert_eq!(t.s.device_key(), Some(&DeviceKey([5; 32])));
    t.events();
    t.recv(ServerMsg::Error {
        kind: ErrorKind::NotSignedIn,
        re: Re::Conn,
        detail: "this device was forgotten by another of your devices".into(),
    });
    t.recv(ServerMsg::Bye {
        reason: "this device was forgotten by another of your devices".into(),
    });
    let evs = t.events();
    assert!(evs.contains(&Event::SignedOut), "{evs:?}");
    assert_eq!((t.s.account(), t.s.device_key()), (None, None));
    let sent = restarted(&mut t, 3);
    assert!(
        !sent.iter().any(|m| matches!(m, ClientMsg::SignIn { .. })),
        "{sent:?}"
    );
}

/// `natter --login` with a key file: the key first, without asking for another; refused (the
/// device was forgotten), the password it was given once, asking for a new key (labelled) when
/// the terminal client remembers; the new key is the one held.
#[test]
fn a_kept_key_signs_in_and_a_refused_one_falls_back_to_the_password_once() {
    use crate::types::DeviceLabel;
    let label = DeviceLabel::new("natter on box").unwrap();
    let mut t = T::ready(Transport::Stream);
    t.s.set_device_label(Some(label.clone()));
    t.s.sign_in_with_key(
        nick("alice"),
        DeviceKey([3; 32]),
        Some(pw("secret")),
        true,
        t.now,
    );
    assert_eq!(t.s.device_key(), Some(&DeviceKey([3; 32])));
    assert_eq!(
        t.drain_paced(),
        [sign_in_msg("alice", Proof::Key(DeviceKey([3; 32])), false)],
        "the key is the remembering: no label, no new key asked for"
    );
    t.events();
    t.recv(error(ErrorKind::SignInFailed, Re::Conn));
    assert_eq!(t.s.device_key(), None, "a refused key is let go");
    assert_eq!(
        t.drain_paced(),
        [
            ClientMsg::ThisDevice { label },
            sign_in_msg("alice", Proof::Password(pw("secret")), true)
        ]
    );
    signed_in(&mut t, "alice", 4, Some(8));
    assert_eq!(t.s.device_key(), Some(&DeviceKey([8; 32])));
    assert_eq!(t.s.account(), Some(&nick("alice")));
}

/// A kept key with no password to fall back to: refused, the session holds no key, and a
/// session that must be the account's ends saying why (the terminal client exits 1).
#[test]
fn a_refused_key_without_a_password_ends_a_session_that_must_sign_in() {
    let mut t = T::ready(Transport::Stream);
    t.s.sign_in_with_key(nick("alice"), DeviceKey([3; 32]), None, false, t.now);
    t.s.require_sign_in();
    t.drain_paced();
    t.events();
    t.recv(error(ErrorKind::SignInFailed, Re::Conn));
    assert_eq!(t.s.device_key(), None);
    assert_eq!(t.s.state(), ConnState::Closed);
    assert!(
        t.s.fatal()
            .is_some_and(|f| f.starts_with("could not sign in with this device's key: ")),
        "{:?}",
        t.s.fatal()
    );
    assert!(
        !t.sent()
            .iter()
            .any(|m| matches!(m, ClientMsg::SignIn { .. })),
        "nothing else is tried"
    );
}

/// `natter --remember`: a typed `/login` or `/register` asks for a device key; by default
/// (and on the page, which asks with its own checkbox) they do not.
#[test]
fn a_remembering_session_asks_for_a_key_with_typed_sign_ins() {
    for remember in [false, true] {
        let mut t = T::ready(Transport::Stream);
        t.s.set_remember(remember);
        t.drain_paced();
        t.s.handle_input("/login alice secret-pw", t.now);
        assert_eq!(
            t.drain_paced(),
            [sign_in_msg(
                "alice",
                Proof::Password(pw("secret-pw")),
                remember
            )]
        );
        t.recv(error(ErrorKind::SignInFailed, Re::Conn));
        t.s.handle_input("/register secret-pw", t.now);
        let sent = t.drain_paced();
        assert!(
            matches!(&sent[..], [ClientMsg::Register { remember: r, .. }] if *r == remember),
            "{sent:?}"
        );
    }
}

/// A guest's page asks to sign in where it stands and shows the dialog busy until
/// [`Session::account_pending`] is false: through a busy server's answer (asked again by
/// itself), until the refusal; the guest then goes on as it was (the sign-in was not
/// required).
#[test]
fn an_account_request_is_pending_until_answered_and_through_a_busy_server() {
    let mut t = T::new(Transport::Stream);
    t.s.handle_connected(t.now);
    t.welcome(1, false);
    t.drain_paced();
    assert!(!t.s.account_pending(), "nothing asked");
    t.s.sign_in(
        nick("alice"),
        Proof::Password(pw("wrong horse")),
        false,
        t.now,
    );
    assert!(t.s.account_pending(), "asked, not answered");
    assert_eq!(
        t.drain_paced(),
        vec![sign_in_msg(
            "alice",
            Proof::Password(pw("wrong horse")),
            false
        )]
    );
    t.recv(ServerMsg::Error {
        kind: ErrorKind::Unavailable,
        re: Re::Conn,
        detail: "the server is busy checking passwords; try again shortly".into(),
    });
    assert!(t.s.account_pending(), "to be asked again by itself");
    t.advance(1_000);
    assert_eq!(
        t.drain_paced(),
        vec![sign_in_msg(
            "alice",
            Proof::Password(pw("wrong horse")),
            false
        )]
    );
    assert!(t.s.account_pending(), "asked again");
    t.recv(ServerMsg::Error {
        kind: ErrorKind::SignInFailed,
        re: Re::Conn,
        detail: "wrong account name or password".into(),
    });
    assert!(!t.s.account_pending(), "refused");
    assert_eq!(t.s.state(), ConnState::Connected, "still the guest it was");
    assert_eq!(t.s.account(), None);
    // Registered where it stands: pending until signed in.
    t.s.register(pw("correct horse"), false, t.now);
    assert!(t.s.account_pending());
    signed_in(&mut t, "guest", 2, None);
    assert!(!t.s.account_pending(), "signed in");
}

/// A registration refused as throttled is forgotten, as one refused for good is. Kept, it was
/// asked again by itself at the next welcome, for the nick the connection had then: the page
/// renames a guest back when its registration under another nick is refused, so that was a
/// nick never asked for, registered without the person asking again.
#[test]
fn a_throttled_registration_is_not_asked_again_by_itself() {
    let mut t = T::ready(Transport::Stream);
    t.s.register(pw("correct horse"), false, t.now);
    assert_eq!(
        t.drain_paced(),
        vec![ClientMsg::Register {
            password: pw("correct horse"),
            remember: false
        }]
    );
    t.recv(ServerMsg::Error {
        kind: ErrorKind::Throttled,
        re: Re::Conn,
        detail: "too many registrations from your address: try again in 1 min".into(),
    });
    assert!(!t.s.account_pending(), "answered");
    let sent = restarted(&mut t, 2);
    assert!(
        !sent.iter().any(|m| matches!(m, ClientMsg::Register { .. })),
        "{sent:?}"
    );
}

/// A registration whose answer a drop lost left the client a guest though the server may have
/// made the account. The next welcome signs in with the name and password just registered
/// (never registering again) and says what happened: it went through (here, resumed, the
/// server had it signed in already), or it did not (a restart: the server has no such account).
#[test]
fn a_registration_whose_answer_a_drop_lost_is_found_out_by_signing_in() {
    for made in [true, false] {
        let mut t = T::ready(Transport::Messages);
        t.s.register(pw("correct horse"), false, t.now);
        assert!(matches!(&t.drain_paced()[..], [ClientMsg::Register { .. }]));
        t.events();
        t.s.handle_disconnected("reset", t.now);
        let evs = t.events();
        assert!(
            !evs.iter().any(|e| matches!(e, Event::Error { .. })),
            "not said as failed: it may have gone through: {evs:?}"
        );
        assert!(
            evs.iter().any(|e| matches!(e, Event::Info(text)
                if text.contains("before the server answered your registration of alice"))),
            "{evs:?}"
        );
        reconnect(&mut t);
        t.welcome(2, made);
        let sent = t.drain_paced();
        assert_eq!(
            sent.first(),
            Some(&sign_in_msg(
                "alice",
                Proof::Password(pw("correct horse")),
                false
            )),
            "made {made}: {sent:?}"
        );
        assert!(
            !sent.iter().any(|m| matches!(m, ClientMsg::Register { .. })),
            "never registered twice: {sent:?}"
        );
        t.events();
        if made {
            signed_in(&mut t, "alice", 3, None);
            let evs = t.events();
            assert!(
                evs.iter().any(|e| matches!(e, Event::Info(text)
                    if text == "your registration of alice went through before the connection dropped")),
                "{evs:?}"
            );
            assert_eq!(t.s.account(), Some(&nick("alice")));
        } else {
            t.recv(ServerMsg::Error {
                kind: ErrorKind::SignInFailed,
                re: Re::Conn,
                detail: "wrong account name or password".into(),
            });
            let evs = t.events();
            assert!(
                evs.iter().any(
                    |e| matches!(e, Event::Error { about: About::Account, text, .. }
                    if text.starts_with("your registration of alice did not go through"))
                ),
                "{evs:?}"
            );
            assert_eq!(t.s.account(), None);
            assert!(!t.s.account_pending());
            // Nothing is asked again behind the person's back.
            let sent = restarted(&mut t, 4);
            assert!(
                !sent
                    .iter()
                    .any(|m| matches!(m, ClientMsg::Register { .. } | ClientMsg::SignIn { .. })),
                "{sent:?}"
            );
        }
    }
}

/// The sign-in that checks a registration whose answer a drop lost was itself lost in a second
/// drop (sent, or waiting to ask a busy server again): the person, who asked to register, was
/// told `could not sign in` and the check was given up, the account perhaps made. It is kept
/// and asked again at the next welcome, until the server answers, and the answer says what
/// became of the registration.
#[test]
fn a_lost_registrations_check_lost_in_a_drop_again_is_asked_again() {
    let check = sign_in_msg("alice", Proof::Password(pw("correct horse")), false);
    let told_again = |evs: &[Event]| {
        assert!(
            !evs.iter().any(|e| matches!(e, Event::Error { .. })),
            "not said as failed: {evs:?}"
        );
        assert!(
            evs.iter().any(|e| matches!(e, Event::Info(text)
                if text.starts_with("the connection dropped again before the server said \
                                     whether your registration of alice went through"))),
            "{evs:?}"
        );
    };
    for made in [true, false] {
        let mut t = T::ready(Transport::Messages);
        t.s.register(pw("correct horse"), false, t.now);
        assert!(matches!(&t.drain_paced()[..], [ClientMsg::Register { .. }]));
        t.s.handle_disconnected("reset", t.now);
        t.events();
        reconnect(&mut t);
        t.welcome(2, false);
        assert_eq!(t.drain_paced().first(), Some(&check), "made {made}");
        t.events();

        // The check's answer lost: asked again at the next welcome.
        t.s.handle_disconnected("reset again", t.now);
        told_again(&t.events());
        reconnect(&mut t);
        t.welcome(3, false);
        let sent = t.drain_paced();
        assert_eq!(sent.first(), Some(&check), "made {made}: {sent:?}");
        assert!(
            !sent.iter().any(|m| matches!(m, ClientMsg::Register { .. })),
            "never registered twice: {sent:?}"
        );

        // A busy server, then a drop while waiting to ask it again: the same.
        t.recv(ServerMsg::Error {
            kind: ErrorKind::Unavailable,
            re: Re::Conn,
            detail: "the server is busy".into(),
        });
        assert!(t.s.account_pending(), "asked again later");
        t.events();
        t.s.handle_disconnected("reset a third time", t.now);
        told_again(&t.events());
        reconnect(&mut t);
        t.welcome(4, false);
        assert_eq!(t.drain_paced().first(), Some(&check), "made {made}");
        t.events();

        if made {
            signed_in(&mut t, "alice", 5, None);
            let evs = t.events();
            assert!(
                evs.iter().any(|e| matches!(e, Event::Info(text)
                    if text == "your registration of alice went through before the connection dropped")),
                "{evs:?}"
            );
            assert_eq!(t.s.account(), Some(&nick("alice")));
        } else {
            t.recv(ServerMsg::Error {
                kind: ErrorKind::SignInFailed,
                re: Re::Conn,
                detail: "wrong account name or password".into(),
            });
            let evs = t.events();
            assert!(
                evs.iter().any(
                    |e| matches!(e, Event::Error { about: About::Account, text, .. }
                    if text.starts_with("your registration of alice did not go through"))
                ),
                "{evs:?}"
            );
            assert_eq!(t.s.account(), None);
            let sent = restarted(&mut t, 6);
            assert!(
                !sent
                    .iter()
                    .any(|m| matches!(m, ClientMsg::Register { .. } | ClientMsg::SignIn { .. })),
                "nothing asked again behind the person's back: {sent:?}"
            );
        }
    }
}

/// The check of a registration whose answer a drop lost was asked again after every drop, with
/// no end: a link that drops each time it is sent (a proxy, a server that fails on it) sent
/// the password at every welcome for as long as the program ran. Asked
/// [`LOST_REGISTRATION_CHECKS`](crate::limits::LOST_REGISTRATION_CHECKS) times at most, then
/// given up in words that say what is not known and how to find out, and nothing more is sent.
#[test]
fn a_lost_registrations_check_is_asked_again_a_bounded_number_of_times() {
    use crate::limits::LOST_REGISTRATION_CHECKS;
    let check = sign_in_msg("alice", Proof::Password(pw("correct horse")), false);
    let mut t = T::ready(Transport::Messages);
    t.s.register(pw("correct horse"), false, t.now);
    assert!(matches!(&t.drain_paced()[..], [ClientMsg::Register { .. }]));
    t.s.handle_disconnected("reset", t.now);
    t.events();
    let mut token = 2;
    for asked in 1..=LOST_REGISTRATION_CHECKS {
        reconnect(&mut t);
        t.welcome(token, false);
        token += 1;
        assert_eq!(t.drain_paced().first(), Some(&check), "check {asked}");
        t.events();
        t.s.handle_disconnected("reset again", t.now);
        let evs = t.events();
        let given_up = evs.iter().any(|e| {
            matches!(e, Event::Error { about: About::Account, text, .. }
                if text == "could not find out whether your registration of alice went \
                            through: the connection dropped each time before the server \
                            answered; signing in as alice (/login alice PASSWORD) tells \
                            whether it did")
        });
        assert_eq!(
            given_up,
            asked == LOST_REGISTRATION_CHECKS,
            "check {asked}: {evs:?}"
        );
    }
    let sent = restarted(&mut t, token);
    assert!(
        !sent
            .iter()
            .any(|m| matches!(m, ClientMsg::Register { .. } | ClientMsg::SignIn { .. })),
        "nothing asked again behind the person's back: {sent:?}"
    );
}

/// The sign-in that checks a registration whose answer a drop lost, refused as throttled (too
/// many failed sign-ins from the address) or as too fast: it said "could not sign in" to
/// someone who asked to register, and nothing of what became of the registration or what to
/// do. It says the registration's fate is not known, why, and how to find out; the check is
/// given up (nothing is sent again behind the person's back).
#[test]
fn a_lost_registrations_check_refused_as_throttled_or_too_fast_says_what_to_do() {
    let check = sign_in_msg("alice", Proof::Password(pw("correct horse")), false);
    let throttled = "too many failed sign-ins from your address: try again in 30 s";
    let flood = "you are sending too fast: 8 commands are already waiting; this one was dropped";
    for (kind, re, detail, then) in [
        (ErrorKind::Throttled, Re::Conn, throttled, "after the wait"),
        (ErrorKind::Flood, Re::Account, flood, "in a moment"),
        (ErrorKind::Flood, Re::Conn, flood, ""),
    ] {
        let mut t = T::ready(Transport::Messages);
        t.s.register(pw("correct horse"), false, t.now);
        assert!(matches!(&t.drain_paced()[..], [ClientMsg::Register { .. }]));
        t.s.handle_disconnected("reset", t.now);
        t.events();
        reconnect(&mut t);
        t.welcome(2, false);
        assert_eq!(t.drain_paced().first(), Some(&check), "{kind:?}");
        t.events();
        t.recv(ServerMsg::Error {
            kind,
            re: re.clone(),
            detail: detail.into(),
        });
        let evs = t.events();
        if then.is_empty() {
            // A server of 14 on names an account request's flood refusal: one naming nothing
            // refused something else, and the check still waits for its answer.
            assert!(t.s.account_pending(), "{evs:?}");
            continue;
        }
        let want = format!(
            "could not find out whether your registration of alice went through: the \
             connection dropped before the server answered it, and the server refused the \
             sign-in that checks it ({detail}); {then}, signing in as alice \
             (/login alice PASSWORD) tells whether it did"
        );
        assert_eq!(
            evs,
            vec![Event::Error {
                kind: Some(kind),
                about: About::Account,
                text: want,
            }],
            "{kind:?}"
        );
        assert!(!t.s.account_pending(), "{kind:?}");
        assert_eq!(t.s.account(), None);
        let sent = restarted(&mut t, 3);
        assert!(
            !sent
                .iter()
                .any(|m| matches!(m, ClientMsg::Register { .. } | ClientMsg::SignIn { .. })),
            "nothing asked again behind the person's back: {kind:?} {sent:?}"
        );
    }
}

/// A change whose answer a drop lost may not have reached the server: the device's key, still
/// good if it did not, is tried first on the next sign-in, then the new password (which is
/// good if it did). Giving the key up left only the new password, refused when the change was
/// lost before it arrived: the device was signed out of an account whose key still worked.
#[test]
fn a_password_change_lost_in_a_drop_keeps_the_devices_key_to_try() {
    let mut t = T::ready(Transport::Stream);
    t.s.sign_in(
        nick("alice"),
        Proof::Password(pw("old-password")),
        true,
        t.now,
    );
    t.drain_paced();
    signed_in(&mut t, "alice", 2, Some(8));
    t.events();
    t.s.handle_input("/password old-password first-new", t.now);
    t.drain_paced();
    let sent = restarted(&mut t, 3);
    assert_eq!(
        sent.first(),
        Some(&sign_in_msg("alice", Proof::Key(DeviceKey([8; 32])), false)),
        "{sent:?}"
    );
    // The key was revoked: the change went through, and its password is tried.
    t.recv(error(ErrorKind::SignInFailed, Re::Conn));
    assert_eq!(
        t.drain_paced().first(),
        Some(&sign_in_msg(
            "alice",
            Proof::Password(pw("first-new")),
            true
        ))
    );
}
