//! Fuzz drivers (feature `fuzzing`; not part of the API): the code that turns a fuzzer's bytes
//! into a sequence of calls on core's state machines, and the invariants checked after each
//! call. The libFuzzer targets in `fuzz/` (nightly, `cargo xtask fuzz`) call these, and so does
//! `core/tests/fuzz_regressions.rs`, which replays every kept input on stable in the regular
//! test run: an input that once crashed a target crashes the same driver in both places.
//!
//! Every driver takes any bytes. A failure is a panic (an assertion here, or one in core).
//!
//! - [`wire`]: the frame decoder, the bridge's frame helpers, payload decoding and the PROXY
//!   header parser;
//! - [`hub`]: a [`Hub`] with several connections on both doors (binary, text and IRC), fed
//!   arbitrary bytes and canned openers, with a fake clock, slow readers, closes, and a durable
//!   store that acknowledges, fails and answers queries;
//! - [`command`]: the slash-command parser, text cleaning, and the IRC line reader and parser;
//! - [`session`]: a client [`Session`] (and the chat model it feeds) given arbitrary server
//!   bytes on both transports, typed input and time.

use crate::chat::Chat;
use crate::hub::{Config, ConnKind, Door, Hub, HubEvent, TEST_BRIDGE_SECRET};
use crate::limits::{
    IRC_MAX_LINE, IRC_MAX_TAGGED_LINE, MAX_FRAME, OUTBOUND_HARD_MAX_BYTES, OUTBOUND_MAX_BYTES,
    SESSION_MAX_PENDING,
};
use crate::persist::{Answer, BatchId, HistoryPage, Query, QueryId};
use crate::session::{Session, SessionConfig, Transport};
use crate::types::{MsgId, Nick, ResumeToken, RoomName, Seq, Text};
use crate::wire::{
    self, ClientMsg, DirectMsg, EventKind, FrameDecoder, Limits, Re, Resume, RoomEvent, ServerMsg,
    WireError,
};
use crate::{Millis, command, proxy};
use bytes::Bytes;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A driver: any bytes in; a failure is a panic.
pub type Driver = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/regressions/<name>/` name
/// them.
pub const TARGETS: &[(&str, Driver)] = &[
    ("wire", wire),
    ("hub", hub),
    ("command", command),
    ("session", session),
];

/// The fuzzer's bytes, read front to back; past the end every read is zero or empty.
struct Ops<'a>(&'a [u8]);

impl<'a> Ops<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// A length byte, then that many bytes (fewer at the end).
    fn chunk(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte()).min(self.0.len());
        let (chunk, rest) = self.0.split_at(n);
        self.0 = rest;
        chunk
    }

    fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.0)
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::from(self.byte()) % from.len()]
    }
}

const NICKS: &[&str] = &["ann", "bob", "Ann", "carol_", "d[x]"];
const ROOMS: &[&str] = &["#lobby", "#a", "#B", "#c-d"];

fn nick(ops: &mut Ops) -> Nick {
    Nick::new(ops.pick(NICKS)).expect("valid nick")
}

fn room(ops: &mut Ops) -> RoomName {
    RoomName::new(ops.pick(ROOMS)).expect("valid room")
}

fn text(ops: &mut Ops) -> Text {
    let raw = String::from_utf8_lossy(ops.chunk()).into_owned();
    Text::new(&raw).unwrap_or_else(|_| Text::new("hi").expect("valid text"))
}

fn opt_text(ops: &mut Ops) -> Option<Text> {
    (ops.byte() % 2 == 1).then(|| text(ops))
}

// ---------------------------------------------------------------------------------------------
// wire

/// The frame decoder fed the bytes in reads of a size the first byte picks, against the same
/// bytes in one read, the bridge's helpers, payload decoding (what decodes re-encodes to the
/// same message) and the PROXY header parser.
pub fn wire(data: &[u8]) {
    let mut ops = Ops(data);
    let step = usize::from(ops.byte()) + 1;
    let data = ops.rest();

    let (whole, whole_end) = frames(data, data.len().max(1));
    let (chunked, chunked_end) = frames(data, step);
    assert_eq!(
        whole, chunked,
        "frames do not depend on how reads cut the bytes"
    );
    assert_eq!(whole_end, chunked_end);

    match wire::whole_frames_len(data) {
        Ok(n) => {
            let buffered = whole_end.expect("the decoder agrees the stream is good");
            assert_eq!(n, data.len() - buffered);
            assert_eq!(n, whole.iter().map(|p| p.len() + 4).sum::<usize>());
            let payloads: Vec<&[u8]> = wire::frame_payloads(&data[..n])
                .map(|p| p.expect("whole frames"))
                .collect();
            assert_eq!(payloads.len(), whole.len());
            assert!(payloads.iter().zip(&whole).all(|(a, b)| *a == &b[..]));
        }
        Err(e) => {
            assert!(matches!(e, WireError::FrameTooLarge(_)));
            assert!(whole_end.is_err(), "the decoder agrees the stream is bad");
        }
    }
    if let Some(Err(e)) = wire::frame_payloads(data).last() {
        assert!(matches!(
            e,
            WireError::FrameTooLarge(_) | WireError::PartialFrame(_)
        ));
    }

    for p in whole.iter().map(|b| &b[..]).chain([data]) {
        roundtrip::<ClientMsg>(p);
        roundtrip::<ServerMsg>(p);
        if let Ok(framed) = wire::frame_payload(p) {
            assert_eq!(wire::frame_payloads(&framed).next(), Some(Ok(p)));
        }
    }

    proxy_header(data);
}

/// Frames read from `data` in reads of `step` bytes, and then what the decoder buffers, or its
/// error.
fn frames(data: &[u8], step: usize) -> (Vec<Bytes>, Result<usize, WireError>) {
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    for piece in data.chunks(step) {
        d.extend(piece);
        loop {
            match d.next_frame() {
                Ok(Some(p)) => {
                    assert!(p.len() <= MAX_FRAME);
                    out.push(p);
                }
                Ok(None) => break,
                Err(e) => return (out, Err(e)),
            }
        }
        assert!(
            d.buffered() < 4 + MAX_FRAME,
            "at most one partial frame held"
        );
    }
    (out, Ok(d.buffered()))
}

fn roundtrip<M>(payload: &[u8])
where
    M: serde::Serialize + serde::de::DeserializeOwned + PartialEq + core::fmt::Debug,
{
    let Ok(msg) = wire::decode_payload::<M>(payload) else {
        return;
    };
    let again = wire::encode_payload(&msg).expect("a message that decoded encodes");
    let back = wire::decode_payload::<M>(&again).expect("what was encoded decodes");
    assert_eq!(back, msg);
}

/// A header is recognised the same however the reads cut it: every shorter prefix of one is
/// `Partial`.
fn proxy_header(data: &[u8]) {
    let data = &data[..data.len().min(proxy::MAX_HEADER + 8)];
    match proxy::parse(data) {
        Ok(proxy::Parsed::Header { len, .. }) => {
            assert!(len <= data.len() && len <= proxy::MAX_HEADER);
            for k in 1..len {
                assert_eq!(
                    proxy::parse(&data[..k]),
                    Ok(proxy::Parsed::Partial),
                    "prefix of {k} bytes"
                );
            }
            assert_eq!(
                proxy::parse(&data[..len]).ok(),
                proxy::parse(data).ok(),
                "the bytes after a header change nothing"
            );
        }
        Ok(proxy::Parsed::Partial) => assert!(data.len() < proxy::MAX_HEADER + 8),
        Ok(proxy::Parsed::NotProxy) | Err(_) => {}
    }
}

// ---------------------------------------------------------------------------------------------
// command

/// The slash-command parser (each line, as the text dialect and the session call it), text
/// cleaning, and the IRC line reader and parser.
pub fn command(data: &[u8]) {
    let mut ops = Ops(data);
    let split = usize::from(ops.byte()) + 1;
    let data = ops.rest();
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        let parsed = command::parse(line);
        assert_eq!(
            parsed,
            command::parse(&format!("{line}\r\n")),
            "line ends ignored"
        );
        if let Ok(Some(input)) = parsed {
            check_input(&input);
        }
        if let Ok(t) = Text::new(line) {
            clean(t.as_str());
            assert_eq!(
                Text::new(t.as_str()).as_ref(),
                Ok(&t),
                "cleaning is idempotent"
            );
        }
    }
    crate::hub::fuzz_irc_lines(data, split);
}

fn clean(s: &str) {
    assert!(!s.chars().any(char::is_control), "{s:?}");
    assert!(!s.trim().is_empty());
    assert!(s.len() <= crate::limits::MAX_TEXT_BYTES);
}

fn check_input(input: &command::Input) {
    use command::{Command, Input};
    let texts: Vec<&Text> = match input {
        Input::Say(t) => vec![t],
        Input::Command(c) => match c {
            Command::Part { reason, .. } => reason.iter().collect(),
            Command::Msg { text, .. } => vec![text],
            Command::Notice { text, .. } | Command::NoticeTo { text, .. } => vec![text],
            Command::Me(t) => vec![t],
            Command::Topic { topic, .. } => topic.iter().collect(),
            Command::Quit(t) => t.iter().collect(),
            Command::Search { words, .. } => vec![words],
            _ => Vec::new(),
        },
    };
    for t in texts {
        clean(t.as_str());
    }
}

// ---------------------------------------------------------------------------------------------
// hub

/// A connection the driver holds.
struct Peer {
    id: crate::ConnId,
    /// Bytes polled and not yet reported written.
    unwritten: usize,
    /// Reads everything at once (or only when an op says so).
    fast: bool,
    /// What it was sent, to check per dialect.
    seen: Output,
}

#[derive(Default)]
struct Output {
    kind: Option<ConnKind>,
    frames: FrameDecoder,
    /// The first bytes of a binary connection's stream, before frames.
    text: Vec<u8>,
}

struct HubRig {
    hub: Hub,
    now: Millis,
    peers: Vec<Peer>,
    /// Resume tokens seen in welcomes.
    tokens: Vec<ResumeToken>,
    /// Store batches not yet reported.
    batches: Vec<BatchId>,
    queries: Vec<(QueryId, Query)>,
    hard_bytes: usize,
    max_rooms: usize,
    /// The hub was shut down (users then stay: the process exits, a durable store keeps them).
    shut: bool,
}

/// Settings picked by the first byte: the defaults, or limits small enough to reach (few
/// connections, rooms and members, short queues and history), a durable store, a bridge secret.
fn hub_config(bits: u8) -> Config {
    let mut c = Config::default();
    if bits & 1 != 0 {
        c.max_connections = 6;
        c.max_connections_per_ip = 3;
        c.max_connects_per_window = 8;
        c.max_detached_per_ip = 2;
        c.max_room_creates_per_window = 3;
        c.max_room_members = 3;
        c.max_rooms = 4;
        c.flood_burst = 3;
        c.flood_queue = 4;
        c.outbound_max_msgs = 8;
        c.outbound_max_bytes = 2048;
        c.outbound_total_max_bytes = 8192;
        c.history_len = 6;
        c.history_budget_bytes = 2048;
        c.history_on_join = 4;
        c.resume_grace = Millis(5_000);
    }
    c.durable = bits & 2 != 0;
    if bits & 4 != 0 {
        c.bridge_secret = Some(crate::hub::BridgeSecret::new(TEST_BRIDGE_SECRET).expect("secret"));
    }
    c.exempt_loopback = bits & 8 != 0;
    if bits & 16 != 0 {
        // Fan-outs to two or more connections take turns (see `limits::FANOUT_PACE`).
        c.paced_fanout = 2;
        c.fanout_pace = Millis(24);
    }
    c.secret_seed = [bits; 32];
    c.validate().expect("the fuzz settings are valid");
    c
}

fn peer_addr(b: u8) -> IpAddr {
    match b % 5 {
        0 => IpAddr::V4(Ipv4Addr::LOCALHOST),
        1 => IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        2 => IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        3 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(b))),
        _ => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1)),
    }
}

/// Connections the driver opens at most (more would only repeat).
const MAX_PEERS: usize = 8;

/// A [`Hub`] with up to 8 connections on both doors, driven by the bytes: accepts,
/// arbitrary bytes and canned openers to a connection, time passing, slow readers catching up,
/// closes, store acknowledgements, failures and answers, shutdown. After every step, all output
/// is polled and checked: transmits go to open connections, a connection's unwritten bytes stay
/// under its queue's hard limit, binary connections get well-formed frames, IRC lines fit IRC's
/// limits, people get text without terminal controls, rooms stay within their limit, and a
/// deadline that has passed is gone once handled (no timer spins).
pub fn hub(data: &[u8]) {
    let mut ops = Ops(data);
    let config = hub_config(ops.byte());
    let durable = config.durable;
    let lim = (config.outbound_max_bytes, config.max_rooms);
    let mut rig = HubRig {
        hub: Hub::new(config),
        now: Millis(1_000),
        peers: Vec::new(),
        tokens: Vec::new(),
        batches: Vec::new(),
        queries: Vec::new(),
        hard_bytes: lim.0 + (OUTBOUND_HARD_MAX_BYTES - OUTBOUND_MAX_BYTES),
        max_rooms: lim.1,
        shut: false,
    };
    let mut steps = 0;
    while !ops.is_empty() && steps < 2_000 {
        steps += 1;
        rig.step(&mut ops);
        rig.pump();
    }
    // Everyone reads what is left and leaves, the store catches up, and time runs past every
    // wait: nothing of anyone is left behind (no user, no detached session, no room but
    // #lobby, no queued byte).
    for p in &mut rig.peers {
        p.fast = true;
    }
    rig.pump();
    let ids: Vec<_> = rig.peers.iter().map(|p| p.id).collect();
    for id in ids {
        rig.close(id);
    }
    rig.pump();
    for _ in 0..8 {
        if let Some(&last) = rig.batches.last() {
            rig.batches.clear();
            rig.hub.handle_durable(last, rig.now);
        }
        for (id, _) in core::mem::take(&mut rig.queries) {
            rig.hub
                .handle_answer(id, Answer::Search(Err("gone".into())), rig.now);
        }
        rig.advance(Millis(200_000));
    }
    assert_eq!(rig.hub.connections(), 0);
    assert_eq!(rig.hub.queued_bytes_total(), 0);
    if !rig.shut {
        assert_eq!(rig.hub.users(), 0, "users left behind");
        assert_eq!(rig.hub.detached(), 0, "detached sessions left behind");
        // A durable store keeps an emptied room (its topic and seqs), within the room table.
        assert_eq!(rig.hub.rooms_in_use(), 0, "members left behind");
        let kept = if durable { rig.max_rooms + 1 } else { 1 };
        assert!(
            rig.hub.rooms() <= kept,
            "{} rooms left behind",
            rig.hub.rooms()
        );
    }
}

impl HubRig {
    fn peer(&mut self, b: u8) -> Option<crate::ConnId> {
        if self.peers.is_empty() {
            return None;
        }
        Some(self.peers[usize::from(b) % self.peers.len()].id)
    }

    fn step(&mut self, ops: &mut Ops) {
        let op = ops.byte();
        match op % 10 {
            0 | 1 if self.peers.len() < MAX_PEERS => {
                let door = if op % 10 == 0 {
                    Door::Natter
                } else {
                    Door::Irc
                };
                let how = ops.byte();
                if let Ok(id) = self.hub.accept_on(door, peer_addr(how), self.now) {
                    assert!(self.peers.iter().all(|p| p.id != id), "ids are not reused");
                    self.peers.push(Peer {
                        id,
                        unwritten: 0,
                        fast: how & 0x80 == 0,
                        seen: Output::default(),
                    });
                }
            }
            2 => {
                let Some(id) = self.peer(ops.byte()) else {
                    return;
                };
                let bytes = ops.chunk();
                self.hub.handle_bytes(id, bytes, self.now);
            }
            3 => {
                let Some(id) = self.peer(ops.byte()) else {
                    return;
                };
                let bytes = self.opener(ops);
                self.hub.handle_bytes(id, &bytes, self.now);
            }
            4 => {
                let ms = u64::from(ops.u16()) * if op & 0x80 != 0 { 100 } else { 1 };
                self.advance(Millis(ms));
            }
            5 => {
                let Some(id) = self.peer(ops.byte()) else {
                    return;
                };
                let n = usize::from(ops.u16());
                self.write(id, n);
            }
            6 => {
                let Some(id) = self.peer(ops.byte()) else {
                    return;
                };
                self.close(id);
            }
            7 => {
                // The store reports on its oldest batch: done (with everything before it), or
                // failed.
                if !self.batches.is_empty() {
                    let b = self.batches.remove(0);
                    if ops.byte() % 4 == 0 {
                        self.hub.handle_store_failed(b, "disk full", self.now);
                    } else {
                        self.hub.handle_durable(b, self.now);
                    }
                }
            }
            8 => {
                if !self.queries.is_empty() {
                    let at = usize::from(ops.byte()) % self.queries.len();
                    let (id, q) = self.queries.remove(at);
                    let answer = self.answer(ops, &q);
                    self.hub.handle_answer(id, answer, self.now);
                }
            }
            _ => {
                // A byte to every connection at once (a broadcast of junk), or (rarely) the
                // server shuts down.
                let b = ops.byte();
                if b == 0xff && op == 0xf9 {
                    self.shut = true;
                    self.hub.shutdown(self.now);
                    return;
                }
                let ids: Vec<_> = self.peers.iter().map(|p| p.id).collect();
                for id in ids {
                    self.hub.handle_bytes(id, &[b], self.now);
                }
            }
        }
    }

    /// Input a real client would send, so the fuzzer starts from registered users in rooms.
    fn opener(&mut self, ops: &mut Ops) -> Vec<u8> {
        let n = nick(ops);
        let r = room(ops);
        let pick = ops.byte();
        let id = MsgId(u64::from(ops.byte()));
        let frame = |m: &ClientMsg| wire::encode_frame(m).expect("small frame").to_vec();
        match pick % 16 {
            0 | 1 => {
                let resume = if pick & 0x10 != 0 && !self.tokens.is_empty() {
                    let t = self.tokens[usize::from(ops.byte()) % self.tokens.len()].clone();
                    Some(Resume {
                        token: t,
                        rooms: vec![(r.clone(), Seq(u64::from(ops.byte())))],
                    })
                } else {
                    None
                };
                let mut out = wire::MAGIC.to_vec();
                if pick & 0x20 != 0 {
                    let secret = if pick & 0x40 != 0 { TEST_BRIDGE_SECRET } else { "nope" };
                    out = wire::bridge_preamble("192.0.2.7", secret).to_vec();
                }
                out.extend(frame(&ClientMsg::Hello {
                    version: wire::PROTOCOL_VERSION,
                    nick: n,
                    resume,
                }));
                out
            }
            2 => frame(&ClientMsg::Join { room: r }),
            3 => frame(&ClientMsg::Say {
                room: r,
                id,
                text: text(ops),
            }),
            4 => {
                let m = match ops.byte() % 8 {
                    0 => ClientMsg::Part {
                        room: r,
                        reason: opt_text(ops),
                    },
                    1 => ClientMsg::Msg {
                        to: n,
                        id,
                        text: text(ops),
                    },
                    2 => ClientMsg::Nick { nick: n },
                    3 => ClientMsg::Topic {
                        room: r,
                        topic: opt_text(ops),
                    },
                    4 => ClientMsg::History {
                        room: r,
                        after: Seq(u64::from(ops.byte())),
                    },
                    5 => ClientMsg::Older {
                        room: r,
                        before: Seq(u64::from(ops.u16())),
                        limit: ops.u16(),
                    },
                    6 => ClientMsg::Search {
                        room: (ops.byte() % 2 == 0).then_some(r),
                        words: text(ops),
                    },
                    _ => ClientMsg::Act {
                        room: r,
                        id,
                        text: text(ops),
                    },
                };
                frame(&m)
            }
            5 => frame(&match ops.byte() % 5 {
                0 => ClientMsg::Who { room: r },
                1 => ClientMsg::Rooms,
                2 => ClientMsg::Ping {
                    token: u64::from(ops.byte()),
                },
                3 => ClientMsg::Pong {
                    token: u64::from(ops.byte()),
                },
                _ => ClientMsg::Quit {
                    reason: opt_text(ops),
                },
            }),
            6 => format!("{n}\n").into_bytes(),
            7 => format!("/join {r}\n").into_bytes(),
            8 => {
                let mut line = ops.chunk().to_vec();
                line.push(b'\n');
                line
            }
            9 => format!("/msg {n} hi\n/nick {n}\n/who\n/rooms\n/history\n").into_bytes(),
            10 => format!("NICK {n}\r\nUSER u 0 * :real\r\n").into_bytes(),
            11 => b"CAP LS 302\r\nCAP REQ :message-tags server-time labeled-response batch echo-message away-notify\r\nCAP END\r\n".to_vec(),
            12 => format!("JOIN {r}\r\n").into_bytes(),
            13 => format!("@label=x PRIVMSG {r} :hi there\r\nPRIVMSG {n} :\x01ACTION waves\x01\r\n")
                .into_bytes(),
            14 => format!("TOPIC {r} :new\r\nWHO {r}\r\nNAMES {r}\r\nPART {r} :bye\r\nNICK {n}\r\nAWAY :gone\r\nPING x\r\n")
                .into_bytes(),
            _ => {
                let mut line = ops.chunk().to_vec();
                line.extend_from_slice(b"\r\n");
                line
            }
        }
    }

    fn answer(&self, ops: &mut Ops, q: &Query) -> Answer {
        let fail = ops.byte() % 4 == 0;
        let ev = |room: &RoomName, seq: u64, ops: &mut Ops| RoomEvent {
            room: room.clone(),
            seq: Seq(seq),
            at: Millis(1),
            from: nick(ops),
            kind: EventKind::Say {
                id: MsgId(seq),
                text: text(ops),
            },
        };
        match q {
            Query::History(h) => Answer::History(if fail {
                Err("store busy".into())
            } else {
                let n = usize::from(ops.byte() % 4).min(h.limit);
                let top = h.before.0;
                let events = (0..n as u64)
                    .filter_map(|i| top.checked_sub(n as u64 - i))
                    .map(|s| ev(&h.room, s, ops))
                    .collect();
                Ok(HistoryPage {
                    events,
                    at_start: ops.byte() % 2 == 0,
                })
            }),
            Query::Search(s) => Answer::Search(if fail {
                Err("store busy".into())
            } else {
                let r = s.rooms.first().cloned().unwrap_or_else(RoomName::lobby);
                let n = u64::from(ops.byte() % 3);
                Ok((0..n).map(|i| ev(&r, 10 - i, ops)).collect())
            }),
        }
    }

    fn advance(&mut self, by: Millis) {
        self.now = self.now + by;
        // A deadline that passed is handled and gone: a handler that leaves it due would make
        // the shell spin.
        for _ in 0..4 {
            match self.hub.poll_timeout() {
                Some(t) if t <= self.now => {
                    self.hub.handle_timeout(self.now);
                    self.pump();
                }
                _ => return,
            }
        }
        let t = self.hub.poll_timeout();
        assert!(
            t.is_none_or(|t| t > self.now),
            "a timer stays due after being handled: {t:?} at {:?}",
            self.now
        );
    }

    fn write(&mut self, id: crate::ConnId, n: usize) {
        let Some(p) = self.peers.iter_mut().find(|p| p.id == id) else {
            return;
        };
        let n = n.min(p.unwritten);
        p.unwritten -= n;
        if n > 0 {
            self.hub.handle_written(id, n, self.now);
        }
    }

    fn close(&mut self, id: crate::ConnId) {
        self.peers.retain(|p| p.id != id);
        self.hub.handle_close(id, self.now);
    }

    /// Polls everything out of the hub and checks it, until it has nothing more to say.
    fn pump(&mut self) {
        for _ in 0..64 {
            let mut any = false;
            while let Some(t) = self.hub.poll_transmit() {
                any = true;
                assert!(!t.data.is_empty() && t.data.iter().all(|p| !p.is_empty()));
                let kind = self.hub.kind(t.conn);
                let Some(p) = self.peers.iter_mut().find(|p| p.id == t.conn) else {
                    panic!("a transmit for {}, which is closed", t.conn);
                };
                p.unwritten += t.len();
                assert!(
                    p.unwritten <= self.hard_bytes,
                    "{} unwritten bytes for {} (hard limit {})",
                    p.unwritten,
                    t.conn,
                    self.hard_bytes
                );
                p.seen.kind = p.seen.kind.or(kind);
                for piece in &t.data {
                    check_output(&mut p.seen, piece, &mut self.tokens);
                }
            }
            let fast: Vec<_> = self
                .peers
                .iter()
                .filter(|p| p.fast && p.unwritten > 0)
                .map(|p| (p.id, p.unwritten))
                .collect();
            for (id, n) in fast {
                any = true;
                self.write(id, n);
            }
            while let Some(ev) = self.hub.poll_event() {
                any = true;
                if let HubEvent::Close { conn, .. } = ev {
                    // The shell writes what was polled, then closes.
                    let n = self
                        .peers
                        .iter()
                        .find(|p| p.id == conn)
                        .map_or(0, |p| p.unwritten);
                    self.write(conn, n);
                    self.close(conn);
                }
            }
            while let Some(b) = self.hub.poll_store() {
                any = true;
                assert!(self.batches.last().is_none_or(|last| last.0 < b.id.0));
                self.batches.push(b.id);
            }
            while let Some(q) = self.hub.poll_query() {
                any = true;
                self.queries.push(q);
            }
            if self.batches.len() > 64 {
                let b = self.batches.remove(0);
                self.hub.handle_durable(b, self.now);
            }
            if !any {
                break;
            }
        }
        assert!(
            self.hub.rooms() <= self.max_rooms + 1,
            "rooms {}",
            self.hub.rooms()
        );
        assert!(self.hub.connections() <= self.peers.len());
    }
}

/// What a connection was sent is well formed for its dialect.
fn check_output(seen: &mut Output, piece: &[u8], tokens: &mut Vec<ResumeToken>) {
    match seen.kind {
        Some(ConnKind::Binary) => {
            seen.frames.extend(piece);
            loop {
                match seen.frames.next_frame() {
                    Ok(Some(p)) => {
                        let msg = wire::decode_payload::<ServerMsg>(&p)
                            .expect("the hub sends binary clients valid frames");
                        if let ServerMsg::Welcome { token, .. } = msg
                            && tokens.len() < 16
                        {
                            tokens.push(token);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => panic!("the hub sent a bad frame: {e}"),
                }
            }
        }
        Some(ConnKind::Text) => {
            seen.text.extend_from_slice(piece);
            let upto = seen
                .text
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let lines: Vec<u8> = seen.text.drain(..upto).collect();
            let s = String::from_utf8_lossy(&lines);
            assert!(
                !s.chars()
                    .any(|c| c.is_control() && !matches!(c, '\r' | '\n')),
                "a terminal control sent to a person: {s:?}"
            );
            assert!(seen.text.len() <= 64 * 1024);
        }
        Some(ConnKind::Irc) => {
            seen.text.extend_from_slice(piece);
            while let Some(end) = seen.text.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = seen.text.drain(..end + 2).collect();
                let body = if line.first() == Some(&b'@') {
                    let sp = line.iter().position(|&b| b == b' ').unwrap_or(0);
                    assert!(sp <= IRC_MAX_TAGGED_LINE, "tags too long: {line:?}");
                    &line[sp + 1..]
                } else {
                    &line[..]
                };
                assert!(
                    body.len() <= IRC_MAX_LINE,
                    "an IRC line over {IRC_MAX_LINE} bytes: {:?}",
                    String::from_utf8_lossy(&line)
                );
                let inner = &line[..line.len() - 2];
                assert!(
                    !inner.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n'),
                    "NUL, CR or LF inside an IRC line: {:?}",
                    String::from_utf8_lossy(&line)
                );
                assert!(core::str::from_utf8(&line).is_ok(), "IRC lines are UTF-8");
            }
            assert!(seen.text.len() <= IRC_MAX_TAGGED_LINE + IRC_MAX_LINE);
        }
        // Said before the dialect was known (a refusal at accept): nothing to check.
        None => {}
    }
}

// ---------------------------------------------------------------------------------------------
// session

const ME: &str = "fuzz";

/// A client [`Session`] and the [`Chat`] model it feeds, given arbitrary server bytes (on the
/// stream transport, or as bridge messages), well-formed server messages, typed lines and time.
/// What it sends is checked: well-formed frames of client messages within the frame limit, and
/// at most [`SESSION_MAX_PENDING`] messages waiting; a deadline that passed is gone once handled;
/// whatever the server said, the chat model's lines carry no terminal controls.
pub fn session(data: &[u8]) {
    let mut ops = Ops(data);
    let transport = if ops.byte() % 2 == 0 {
        Transport::Stream
    } else {
        Transport::Messages
    };
    let config = SessionConfig {
        nick: Nick::new(ME).expect("valid nick"),
        rooms: vec![RoomName::lobby()],
        transport,
        seed: 7,
    };
    let mut now = Millis(1_000);
    let mut chat = Chat::new(config.nick.clone());
    let mut s = Session::new(config, now);
    s.handle_connected(now);
    let mut sent = FrameDecoder::new();
    let mut steps = 0;
    while !ops.is_empty() && steps < 2_000 {
        steps += 1;
        let op = ops.byte();
        match op % 8 {
            0 | 1 => {
                let bytes = ops.chunk();
                match transport {
                    Transport::Stream => s.handle_bytes(bytes, now),
                    Transport::Messages => s.handle_message(bytes, now),
                }
            }
            2 | 3 => {
                let mut frames = Vec::new();
                for _ in 0..=(op >> 5) {
                    let msg = server_msg(&mut ops);
                    frames.extend_from_slice(&wire::encode_frame(&msg).expect("small frame"));
                }
                match transport {
                    Transport::Stream => s.handle_bytes(&frames, now),
                    Transport::Messages => s.handle_message(&frames, now),
                }
            }
            4 => {
                let line = String::from_utf8_lossy(ops.chunk()).into_owned();
                s.handle_input_in(&line, chat.target().as_ref(), now);
            }
            5 => {
                let ms = u64::from(ops.u16()) * if op & 0x80 != 0 { 100 } else { 1 };
                now = now + Millis(ms);
                for _ in 0..4 {
                    if s.poll_timeout().is_some_and(|t| t <= now) {
                        s.handle_timeout(now);
                    }
                    if chat.poll_timeout().is_some_and(|t| t <= now) {
                        chat.handle_timeout(now);
                    }
                }
                assert!(
                    s.poll_timeout().is_none_or(|t| t > now),
                    "session timer spins"
                );
                assert!(
                    chat.poll_timeout().is_none_or(|t| t > now),
                    "chat timer spins"
                );
            }
            6 => match ops.byte() % 4 {
                0 => {
                    s.handle_disconnected("reset", now);
                }
                1 => s.handle_connected(now),
                2 => s.reconnect_now(now),
                _ => s.set_flood_limits(u32::from(ops.byte()), Millis(u64::from(ops.u16())), now),
            },
            _ => {
                let r = (ops.byte() % 2 == 0).then(|| room(&mut ops));
                if ops.byte() % 2 == 0 {
                    s.older(
                        r.unwrap_or_else(RoomName::lobby),
                        Seq(u64::from(ops.u16())),
                        ops.u16(),
                        now,
                    );
                } else {
                    s.search(r, text(&mut ops), now);
                }
            }
        }
        while let Some(b) = s.poll_transmit() {
            match transport {
                Transport::Stream => {
                    // A connection's stream starts with the preamble, sent alone.
                    if b[..] == wire::MAGIC {
                        sent = FrameDecoder::new();
                        continue;
                    }
                    sent.extend(&b);
                    while let Some(p) = sent.next_frame().expect("the session sends good frames") {
                        wire::decode_payload::<ClientMsg>(&p).expect("a client message");
                    }
                }
                Transport::Messages => {
                    assert!(b.len() <= MAX_FRAME);
                    wire::decode_payload::<ClientMsg>(&b).expect("a client message");
                }
            }
        }
        assert!(s.pending() <= SESSION_MAX_PENDING);
        while let Some(ev) = s.poll_event() {
            chat.handle_event(&ev, now);
        }
        while chat.poll_change().is_some() {}
        while chat.poll_alert().is_some() {}
    }
    // Whatever the server sent, the model's words carry nothing a terminal would act on.
    for conv in chat.conversations().chain([chat.current_conv()]) {
        for line in conv.lines() {
            if let Some(words) = line.kind.words() {
                assert!(!words.chars().any(char::is_control), "{words:?}");
            }
        }
    }
}

/// A well-formed server message, built from the bytes (random bytes seldom make one).
fn server_msg(ops: &mut Ops) -> ServerMsg {
    let r = room(ops);
    let seq = Seq(u64::from(ops.u16()));
    let at = Millis(u64::from(ops.u16()));
    let from = if ops.byte() % 3 == 0 {
        Nick::new(ME).expect("valid nick")
    } else {
        nick(ops)
    };
    let id = MsgId(u64::from(ops.byte()));
    let event = |ops: &mut Ops, r: RoomName, from: Nick| RoomEvent {
        room: r,
        seq,
        at,
        from,
        kind: match ops.byte() % 7 {
            0 => EventKind::Say {
                id,
                text: text(ops),
            },
            1 => EventKind::Act {
                id,
                text: text(ops),
            },
            2 => EventKind::Join,
            3 => EventKind::Part {
                reason: opt_text(ops),
            },
            4 => EventKind::Quit {
                reason: opt_text(ops),
            },
            5 => EventKind::Nick { new: nick(ops) },
            _ => EventKind::Topic {
                topic: opt_text(ops),
            },
        },
    };
    match ops.byte() % 18 {
        0 | 1 => {
            let mut token = [0u8; 32];
            token[0] = ops.byte();
            ServerMsg::Welcome {
                version: wire::PROTOCOL_VERSION,
                nick: if ops.byte() % 4 == 0 {
                    nick(ops)
                } else {
                    Nick::new(ME).expect("valid nick")
                },
                token: ResumeToken(token),
                resumed: ops.byte() % 2 == 0,
                limits: Limits {
                    flood_burst: u32::from(ops.byte()),
                    flood_refill: Millis(u64::from(ops.u16())),
                    max_text_bytes: u32::from(ops.u16()),
                    max_rooms_per_user: u32::from(ops.byte()),
                },
            }
        }
        2 => ServerMsg::Joined {
            room: r,
            topic: opt_text(ops),
            members: (0..ops.byte() % 4).map(|_| nick(ops)).collect(),
            seq,
        },
        3 => ServerMsg::Parted { room: r },
        4 | 5 => ServerMsg::Event(event(ops, r, from)),
        6 => ServerMsg::Direct(DirectMsg {
            from,
            to: nick(ops),
            id,
            at,
            text: text(ops),
        }),
        7 => ServerMsg::Ack { id },
        8 => ServerMsg::Gap {
            room: r,
            first: seq,
            last: Seq(u64::from(ops.u16())),
        },
        9 => ServerMsg::Members {
            room: r,
            members: (0..ops.byte() % 4).map(|_| nick(ops)).collect(),
        },
        10 => ServerMsg::Topic {
            room: r,
            topic: opt_text(ops),
        },
        11 => ServerMsg::YourNick { nick: nick(ops) },
        12 => ServerMsg::Error {
            kind: ops.pick(&[
                wire::ErrorKind::NickTaken,
                wire::ErrorKind::Flood,
                wire::ErrorKind::NotInRoom,
                wire::ErrorKind::NoSuchNick,
                wire::ErrorKind::ResumeFailed,
                wire::ErrorKind::Protocol,
            ]),
            re: match ops.byte() % 4 {
                0 => Re::Conn,
                1 => Re::Msg(id),
                2 => Re::Room(r),
                _ => Re::Nick(from),
            },
            detail: String::from_utf8_lossy(ops.chunk()).into_owned(),
        },
        13 => ServerMsg::Ping {
            token: u64::from(ops.byte()),
        },
        14 => ServerMsg::Bye {
            reason: String::from_utf8_lossy(ops.chunk()).into_owned(),
        },
        15 => ServerMsg::Past(event(ops, r, from)),
        16 => ServerMsg::PastEnd {
            room: r,
            at_start: ops.byte() % 2 == 0,
        },
        _ => {
            if ops.byte() % 2 == 0 {
                ServerMsg::Found(event(ops, r, from))
            } else {
                ServerMsg::FoundEnd {
                    count: u32::from(ops.byte()),
                }
            }
        }
    }
}
