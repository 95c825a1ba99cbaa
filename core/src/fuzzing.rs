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
//!   arbitrary bytes and canned openers of every message and command (accounts, moderation,
//!   admins and SASL included), with a fake clock, slow readers, closes, password work done out
//!   of order, and a durable store that acknowledges, fails and answers queries;
//! - [`command`]: the slash-command parser, text cleaning, and the IRC line reader and parser;
//! - [`session`]: a client [`Session`] (and the chat model it feeds) given arbitrary server
//!   bytes on both transports, typed input and time.

use crate::accounts::{Outcome, PasswordError, PasswordHash, Work, WorkDone};
use crate::chat::Chat;
use crate::hub::{Config, ConnKind, Door, Hub, HubEvent, Registration, TEST_BRIDGE_SECRET};
use crate::limits::{
    IRC_MAX_LINE, IRC_MAX_TAGGED_LINE, MAX_FRAME, OUTBOUND_HARD_MAX_BYTES, OUTBOUND_MAX_BYTES,
    SESSION_MAX_PENDING,
};
use crate::moderation::{Entry, Mask, ModeChange, Policy};
use crate::persist::{
    AccountRecord, Answer, BatchId, HeldDirect, HistoryPage, KeyRecord, Loaded, LoadedAccount,
    LoadedRoom, Query, QueryId,
};
use crate::session::{Session, SessionConfig, Transport};
use crate::types::{DeviceKey, MsgId, Nick, Password, ResumeToken, RoomName, Seq, Text};
use crate::wire::{
    self, AdminAction, ClientMsg, DirectMsg, EventKind, FrameDecoder, Limits, ModAction, Proof, Re,
    Resume, RoomEvent, ServerMsg, WireError,
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

const NICKS: &[&str] = &["ann", "bob", "Ann", "carol_", "d[x]", "eve"];
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
            Command::Part { reason, .. } | Command::PartMany { reason, .. } => {
                reason.iter().collect()
            }
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
    /// Its input so far ends where a line or frame ends (only openers were sent): a credential
    /// sent now is read as a credential, not as the tail of something else.
    aligned: bool,
}

#[derive(Default)]
struct Output {
    kind: Option<ConnKind>,
    frames: FrameDecoder,
    /// The first bytes of a binary connection's stream, before frames.
    text: Vec<u8>,
}

/// What the driver learnt from the hub's output, to present again.
#[derive(Default)]
struct Learned {
    /// Resume tokens seen in welcomes.
    tokens: Vec<ResumeToken>,
    /// Device keys handed out with sign-ins.
    keys: Vec<DeviceKey>,
}

/// The passwords one run uses: two good ones (the first is the restored account `ann`'s), one
/// too short, one that is nobody's. A password is never echoed, relayed or stored (SECURITY.md,
/// *Accounts*): unless one was sent where it is not a password, none of them (nor the SASL
/// blobs carrying them) may appear in anything the hub sends or stores. They are made from a
/// hash of the whole input, so the fuzzer cannot type them as something else (it would change
/// them): an input that makes the hub say or keep one found a leak, not a coincidence.
struct Passwords([String; 4]);

impl Passwords {
    fn of(data: &[u8]) -> Passwords {
        let h = fnv(data);
        Passwords([
            format!("Pw-{h:016x}-a"),
            format!("Pw-{h:016x}-b"),
            format!("s{:06x}", h & 0xff_ffff),
            format!("Pw-{h:016x}-nobody"),
        ])
    }

    fn pick(&self, ops: &mut Ops) -> &str {
        &self.0[usize::from(ops.byte()) % self.0.len()]
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The device key the restored account `ann` has.
const ANN_KEY: [u8; 32] = [9; 32];

/// What a ban or mute names, as people type them (valid and not).
const MASKS: &[&str] = &[
    "account:ann",
    "account:bob",
    "nick:bob",
    "nick:eve",
    "bob",
    "Ann",
    "10.0.0.1",
    "10.0.0.0/8",
    "10.0.0.0/7",
    "127.0.0.1",
    "2001:db8::/48",
    "2001:db8::/8",
    "2001:db8:1::1",
    "account:",
    "*",
];

/// The same as IRC clients type them in `MODE +b`.
const IRC_MASKS: &[&str] = &[
    "bob!*@*",
    "*!*@10.0.0.2",
    "*!bob@natter",
    "*!*@natter",
    "*!*@*",
    "eve",
    "account:carol_",
    "10.0.0.0/8",
    "*!*@2001:db8::1",
];

const DURATIONS: &[&str] = &["", "30m", "1h", "7d", "400d", "0h", "5s", "1w"];

const KEYS: &[&str] = &["sesame", "k3y", "x"];

const CAPS: &[&str] = &[
    "sasl",
    "draft/chathistory",
    "message-tags",
    "server-time",
    "labeled-response",
    "batch",
    "echo-message",
    "away-notify",
    "account-notify",
    "account-tag",
    "extended-join",
    "multi-prefix",
    "cap-notify",
    "-sasl",
    "bogus",
];

/// What the driver's password work makes of a password: a stand-in for argon2 (which would
/// make every run slow), holding nothing of the password, so a stored hash shows none of it.
fn fake_hash(p: &str) -> PasswordHash {
    PasswordHash(format!("$fuzz${:016x}", fnv(p.as_bytes())))
}

/// The secrets no output may carry (the passwords, and the SASL blobs that carry them), each
/// with its searcher (they are looked for in everything sent).
struct Secrets(Vec<memchr::memmem::Finder<'static>>);

impl Secrets {
    fn new(passwords: &Passwords) -> Secrets {
        let mut all: Vec<String> = passwords.0.to_vec();
        for n in NICKS {
            for p in &passwords.0 {
                all.push(sasl_blob(n, p));
            }
        }
        Secrets(
            all.iter()
                .map(|s| memchr::memmem::Finder::new(s.as_bytes()).into_owned())
                .collect(),
        )
    }

    /// The first secret `hay` holds.
    fn in_(&self, hay: &[u8]) -> Option<String> {
        self.0
            .iter()
            .find(|f| f.find(hay).is_some())
            .map(|f| String::from_utf8_lossy(f.needle()).into_owned())
    }
}

fn sasl_blob(nick: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{nick}\0{password}"))
}

struct HubRig {
    hub: Hub,
    now: Millis,
    peers: Vec<Peer>,
    learned: Learned,
    /// Store batches not yet reported.
    batches: Vec<BatchId>,
    queries: Vec<(QueryId, Query)>,
    /// Password work handed out and not yet done.
    work: Vec<Work>,
    hard_bytes: usize,
    /// Rooms the hub may hold: `max_rooms`, `#lobby`, and rooms restored from the store.
    room_cap: usize,
    /// The hub was shut down (users then stay: the process exits, a durable store keeps them).
    shut: bool,
    /// See [`Passwords`].
    passwords: Passwords,
    secrets: Secrets,
    /// A password went where it is not a password (sent to the wrong dialect, glued to a
    /// partial line): from then on it may legitimately be relayed, and the secrecy check is off.
    leaky: bool,
}

/// Settings picked by the first byte: the defaults, or limits small enough to reach (few
/// connections, rooms and members, short queues and history), a durable store, a bridge secret,
/// server admins, registration closed, accounts that leave with their last device.
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
    accounts_config(&mut c, bits);
    c.secret_seed = [bits; 32];
    c.validate().expect("the fuzz settings are valid");
    c
}

/// The `[accounts]` part of [`hub_config`] (also what a reconfiguration flips).
fn accounts_config(c: &mut Config, bits: u8) {
    c.accounts.hash_cost = crate::accounts::HashCost::TEST;
    c.accounts.admins = if bits & 32 != 0 {
        vec![Nick::new("ann").expect("valid nick")]
    } else {
        Vec::new()
    };
    c.accounts.registration = if bits & 64 != 0 {
        Registration::Closed
    } else {
        Registration::Open
    };
    c.accounts.always_on = bits & 128 == 0;
}

/// What a store hands a restarted hub, picked by `bits`: the account `ann` (with a device key,
/// in `#a` or in no room), `#a` registered by her with `bob` an operator and `eve` banned, and
/// a server ban of `d[x]`.
fn loaded(bits: u8, passwords: &Passwords) -> Loaded {
    let n = |s: &str| Nick::new(s).expect("valid nick");
    let a = RoomName::new("#a").expect("valid room");
    let entry = |mask: Mask| Entry {
        mask,
        until: (bits & 16 != 0).then_some(Millis(50_000)),
        by: n("ann"),
        reason: None,
        at: Millis(1),
    };
    let mut policy = Policy {
        founder: Some(n("ann")),
        ops: vec![n("bob")],
        ..Policy::default()
    };
    if bits & 4 != 0 {
        policy.bans.push(entry(Mask::Nick(n("eve"))));
        policy.mutes.push(entry(Mask::Account(n("carol_"))));
    }
    policy.modes.invite_only = bits & 32 != 0;
    Loaded {
        rooms: vec![LoadedRoom {
            name: a.clone(),
            topic: None,
            last_seq: Seq(3),
            recent: Vec::new(),
            present: vec![n("ann")],
        }],
        sessions: Vec::new(),
        accounts: vec![LoadedAccount {
            record: AccountRecord {
                name: n("ann"),
                hash: fake_hash(&passwords.0[0]),
                created: Millis(1),
            },
            rooms: if bits & 2 != 0 {
                vec![a.clone()]
            } else {
                Vec::new()
            },
            read: vec![(a.clone(), Seq(2))],
            keys: vec![KeyRecord::of(&DeviceKey(ANN_KEY), Millis(1))],
            // A message kept for ann while she had nothing connected: delivered at her sign-in.
            held: if bits & 4 != 0 {
                vec![HeldDirect {
                    msg: DirectMsg {
                        from: n("bob"),
                        to: n("ann"),
                        id: MsgId(1),
                        at: Millis(1),
                        text: Text::new("kept for you").expect("text"),
                    },
                    notice: false,
                }]
            } else {
                Vec::new()
            },
        }],
        policies: vec![(a, policy)],
        server_bans: if bits & 8 != 0 {
            vec![entry(Mask::Nick(n("d[x]")))]
        } else {
            Vec::new()
        },
        device_labels: vec![(
            DeviceKey(ANN_KEY).id(),
            crate::types::DeviceLabel::new("ann's laptop").expect("a label"),
        )],
        away_notes: Vec::new(),
        known: Vec::new(),
    }
}

/// A device label: a usual one, or one at its longest.
fn device_label(ops: &mut Ops) -> crate::types::DeviceLabel {
    let s = match ops.byte() % 3 {
        0 => "natter on laptop".to_owned(),
        1 => "Chromium on Linux".to_owned(),
        _ => "\u{e9}".repeat(crate::limits::MAX_DEVICE_LABEL_BYTES / 2),
    };
    crate::types::DeviceLabel::new(&s).expect("a label within bounds")
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
/// arbitrary bytes and canned openers to a connection (every client message, `nc` command and
/// IRC command, with accounts, moderation and admins' words), time passing, slow readers
/// catching up, closes, store acknowledgements, failures and answers, password work done or
/// failed, reconfigurations, shutdown; sometimes a store to restore first (an account, a
/// registered room, bans). After every step, all output is polled and checked: transmits go to
/// open connections, a connection's unwritten bytes stay under its queue's hard limit, binary
/// connections get well-formed frames, IRC lines fit IRC's limits, people get text without
/// terminal controls, no password is echoed, relayed or stored, rooms stay within their limit,
/// and a deadline that has passed is gone once handled (no timer spins).
pub fn hub(data: &[u8]) {
    let passwords = Passwords::of(data);
    let mut ops = Ops(data);
    let bits = ops.byte();
    let config = hub_config(bits);
    let durable = config.durable;
    let always_on = config.accounts.always_on;
    let lim = (config.outbound_max_bytes, config.max_rooms);
    let mut rig = HubRig {
        hub: Hub::new(config),
        now: Millis(1_000),
        peers: Vec::new(),
        learned: Learned::default(),
        batches: Vec::new(),
        queries: Vec::new(),
        work: Vec::new(),
        hard_bytes: lim.0 + (OUTBOUND_HARD_MAX_BYTES - OUTBOUND_MAX_BYTES),
        room_cap: lim.1 + 1,
        shut: false,
        secrets: Secrets::new(&passwords),
        passwords,
        leaky: false,
    };
    // A restarted server takes back what its store kept.
    let boot = ops.byte();
    if durable && boot & 1 != 0 {
        rig.hub.restore(loaded(boot, &rig.passwords), rig.now);
        rig.room_cap += 1;
        rig.pump();
    }
    let mut steps = 0;
    while !ops.is_empty() && steps < 2_000 {
        steps += 1;
        rig.step(&mut ops);
        rig.pump();
    }
    // Everyone reads what is left and leaves, the store and the password work catch up, and
    // time runs past every wait: nothing of anyone is left behind (no user but accounts'
    // always-on ones, no detached session, no room but #lobby, stored and registered ones, no
    // queued byte).
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
        for w in core::mem::take(&mut rig.work) {
            let done = run_work(w, 1);
            rig.hub.handle_work(done, rig.now);
        }
        rig.pump();
        rig.advance(Millis(200_000));
    }
    assert_eq!(rig.hub.connections(), 0);
    assert_eq!(rig.hub.queued_bytes_total(), 0);
    assert_eq!(rig.hub.monitored(), 0, "MONITOR lists left behind");
    if !rig.shut {
        // Accounts' users stay in their rooms with no device (always-on), and nobody else.
        let kept_users = if always_on {
            rig.hub.account_count()
        } else {
            0
        };
        assert!(
            rig.hub.users() <= kept_users,
            "users left behind: {} (accounts {kept_users})",
            rig.hub.users()
        );
        assert_eq!(rig.hub.detached(), 0, "detached sessions left behind");
        if kept_users == 0 {
            assert_eq!(rig.hub.rooms_in_use(), 0, "members left behind");
        }
        // A durable store keeps an emptied room (its topic and seqs), within the room table;
        // so does a room with settings (its founder, operators, bans), store or not.
        let kept = if durable || kept_users > 0 {
            rig.room_cap
        } else {
            1 + rig.hub.rooms_with_settings()
        };
        assert!(
            rig.hub.rooms() <= kept,
            "{} rooms left behind",
            rig.hub.rooms()
        );
    }
}

/// What the shell's blocking threads would make of `w`: the stand-in hash, a check against it,
/// or (when `b` says so) a failure.
fn run_work(w: Work, b: u8) -> WorkDone {
    let id = w.id();
    let outcome = if b.is_multiple_of(8) {
        Outcome::Failed(PasswordError::Damaged)
    } else {
        match w {
            Work::Hash { password, .. } => Outcome::Hashed(fake_hash(&password.0)),
            Work::Verify { password, hash, .. } => {
                Outcome::Verified(fake_hash(&password.0) == hash)
            }
        }
    };
    WorkDone { id, outcome }
}

/// Whether bytes an opener made carry a password, and for which dialect they are one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Carries {
    Nothing,
    Credentials(ConnKind),
}

impl HubRig {
    fn peer(&mut self, b: u8) -> Option<crate::ConnId> {
        if self.peers.is_empty() {
            return None;
        }
        Some(self.peers[usize::from(b) % self.peers.len()].id)
    }

    /// Hands `bytes` to `id`, keeping track of where passwords went. `opener`: the bytes are
    /// whole lines or frames (a canned opener's), so the connection is at a line's or frame's
    /// start after them.
    fn feed(&mut self, id: crate::ConnId, bytes: &[u8], carries: Carries, opener: bool) {
        let kind = self.hub.kind(id);
        let named = self.hub.nick(id).is_some();
        // A password is one only where the connection reads it as one: in its dialect, after
        // its hello (but IRC's SASL comes before), not glued to a partial line.
        if let Carries::Credentials(k) = carries {
            let aligned = self.peers.iter().any(|p| p.id == id && p.aligned);
            if !(kind == Some(k) && aligned && (named || k == ConnKind::Irc)) {
                self.leaky = true;
            }
        }
        self.hub.handle_bytes(id, bytes, self.now);
        // Lines end with a line end (unless a telnet IAC took it as its command byte, or left
        // an option or subnegotiation open); a binary connection is at a frame's start if the
        // opener made whole frames (after the preamble), not text lines.
        let aligned = opener
            && match self.hub.kind(id) {
                Some(ConnKind::Binary) => {
                    let frames = bytes.strip_prefix(&wire::MAGIC[..]).unwrap_or(bytes);
                    wire::whole_frames_len(frames) == Ok(frames.len())
                }
                _ => bytes.last() == Some(&b'\n') && !bytes.contains(&0xff),
            };
        if let Some(p) = self.peers.iter_mut().find(|p| p.id == id) {
            p.aligned = aligned;
        }
    }

    fn step(&mut self, ops: &mut Ops) {
        let op = ops.byte();
        match op % 12 {
            0 | 1 if self.peers.len() < MAX_PEERS => {
                let door = if op.is_multiple_of(12) {
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
                        aligned: true,
                    });
                }
            }
            2 => {
                let Some(id) = self.peer(ops.byte()) else {
                    return;
                };
                let bytes = ops.chunk();
                self.feed(id, bytes, Carries::Nothing, false);
            }
            3 => {
                let Some(id) = self.peer(ops.byte()) else {
                    return;
                };
                let (bytes, carries) = self.opener(ops);
                self.feed(id, &bytes, carries, true);
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
                // failed. (Every op reads its bytes whether or not it has anything to do, so
                // an input means the same once the hub is faster or slower to ask.)
                let how = ops.byte();
                if !self.batches.is_empty() {
                    let b = self.batches.remove(0);
                    if how.is_multiple_of(4) {
                        self.hub.handle_store_failed(b, "disk full", self.now);
                    } else {
                        self.hub.handle_durable(b, self.now);
                    }
                }
            }
            8 => {
                let at = usize::from(ops.byte());
                if !self.queries.is_empty() {
                    let (id, q) = self.queries.remove(at % self.queries.len());
                    let answer = self.answer(ops, &q);
                    self.hub.handle_answer(id, answer, self.now);
                }
            }
            10 => {
                // A blocking thread finishes a password hash or check (in any order).
                let (at, how) = (usize::from(ops.byte()), ops.byte());
                if !self.work.is_empty() {
                    let w = self.work.remove(at % self.work.len());
                    let done = run_work(w, how);
                    self.hub.handle_work(done, self.now);
                }
            }
            11 => match ops.byte() % 4 {
                // The operator reloads the configuration: admins, registration (always-on
                // may not change while running; the hub refuses that, keeping the old one).
                0 => {
                    let mut c = self.hub.config().clone();
                    accounts_config(&mut c, ops.byte());
                    let _ = self.hub.reconfigure(c);
                }
                // The shell's blocking threads are this busy.
                1 => self.hub.handle_load(u32::from(ops.byte() % 8), self.now),
                // Password work runs at once (as on an idle server).
                _ => {
                    for w in core::mem::take(&mut self.work) {
                        let done = run_work(w, 1);
                        self.hub.handle_work(done, self.now);
                        self.pump();
                    }
                }
            },
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
                    self.feed(id, &[b], Carries::Nothing, false);
                }
            }
        }
    }

    /// Input a real client would send, so the fuzzer starts from registered users in rooms and
    /// reaches every command with names, rooms, masks and numbers it picks.
    fn opener(&mut self, ops: &mut Ops) -> (Vec<u8>, Carries) {
        let n = nick(ops);
        let r = room(ops);
        let pick = ops.byte();
        let id = MsgId(u64::from(ops.byte()));
        let frame = |m: &ClientMsg| wire::encode_frame(m).expect("small frame").to_vec();
        let nothing = |b: Vec<u8>| (b, Carries::Nothing);
        match pick % 25 {
            0 | 1 => {
                let resume = if pick & 0x10 != 0 && !self.learned.tokens.is_empty() {
                    let t = self.learned.tokens
                        [usize::from(ops.byte()) % self.learned.tokens.len()]
                    .clone();
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
                nothing(out)
            }
            2 => nothing(frame(&ClientMsg::Join { room: r })),
            3 => nothing(frame(&ClientMsg::Say {
                room: r,
                id,
                text: text(ops),
            })),
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
                        room: ops.byte().is_multiple_of(2).then_some(r),
                        words: text(ops),
                    },
                    _ => ClientMsg::Act {
                        room: r,
                        id,
                        text: text(ops),
                    },
                };
                nothing(frame(&m))
            }
            5 => nothing(frame(&match ops.byte() % 7 {
                0 => ClientMsg::Who { room: r },
                5 => ClientMsg::Away(opt_text(ops)),
                6 => ClientMsg::ClearTopic { room: r },
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
            })),
            6 => nothing(format!("{n}\n").into_bytes()),
            7 => nothing(format!("/join {r}\n").into_bytes()),
            8 => {
                let mut line = ops.chunk().to_vec();
                line.push(b'\n');
                nothing(line)
            }
            9 => nothing(
                format!("/msg {n} hi\n/nick {n}\n/who\n/whois {n}\n/rooms\n/history\n").into_bytes(),
            ),
            10 => nothing(format!("NICK {n}\r\nUSER u 0 * :real\r\n").into_bytes()),
            11 => nothing(b"CAP LS 302\r\nCAP REQ :message-tags server-time labeled-response batch echo-message away-notify\r\nCAP END\r\n".to_vec()),
            12 => nothing(format!("JOIN {r}\r\n").into_bytes()),
            13 => nothing(
                format!("@label=x PRIVMSG {r} :hi there\r\nPRIVMSG {n} :\x01ACTION waves\x01\r\n")
                    .into_bytes(),
            ),
            14 => nothing(
                format!("TOPIC {r} :new\r\nTOPIC {r} :\r\nWHO {r}\r\nNAMES {r}\r\nPART {r} :bye\r\nNICK {n}\r\nAWAY :gone\r\nPING x\r\n")
                    .into_bytes(),
            ),
            15 => {
                let mut line = ops.chunk().to_vec();
                line.extend_from_slice(b"\r\n");
                nothing(line)
            }
            16 => self.account_frame(ops, n),
            17 => nothing(frame(&ClientMsg::Moderate {
                room: r,
                action: mod_action(ops, n),
            })),
            18 => nothing(frame(&other_msg(ops, n, r, id))),
            19 => nc_account_line(ops, n, &self.passwords),
            20 => nothing(nc_moderation_line(ops, &n, &r)),
            21 => irc_sasl(ops, &n, &self.passwords),
            22 => nothing(irc_chathistory(ops, &r, self.now)),
            23 => nothing(irc_moderation(ops, &n, &r)),
            _ => nothing(irc_queries(ops, &n, &r)),
        }
    }

    /// A binary client's account request: sign in (with a password or a device key), register,
    /// sign out, change the password, list or forget remembered devices.
    fn account_frame(&mut self, ops: &mut Ops, n: Nick) -> (Vec<u8>, Carries) {
        let pw = |ops: &mut Ops| Password(self.passwords.pick(ops).to_owned());
        let remember = ops.byte().is_multiple_of(2);
        let m = match ops.byte() % 10 {
            0 | 1 => ClientMsg::SignIn {
                account: n,
                proof: Proof::Password(pw(ops)),
                remember,
            },
            2 => ClientMsg::SignIn {
                account: n,
                proof: Proof::Key(match ops.byte() % 3 {
                    0 if !self.learned.keys.is_empty() => {
                        self.learned.keys[usize::from(ops.byte()) % self.learned.keys.len()].clone()
                    }
                    1 => DeviceKey(ANN_KEY),
                    _ => DeviceKey([ops.byte(); 32]),
                }),
                remember,
            },
            3 => ClientMsg::Register {
                password: pw(ops),
                remember,
            },
            4 => ClientMsg::SignOut,
            5 => ClientMsg::Devices,
            6 => ClientMsg::ForgetDevice {
                id: match ops.byte() % 2 {
                    0 if !self.learned.keys.is_empty() => wire::RememberedDevice::id_of(
                        self.learned.keys[usize::from(ops.byte()) % self.learned.keys.len()].id(),
                    ),
                    _ => u32::from_be_bytes([ops.byte(), ops.byte(), ops.byte(), ops.byte()]),
                },
            },
            7 => ClientMsg::ThisDevice {
                label: device_label(ops),
            },
            8 => ClientMsg::NameDevice {
                id: match ops.byte() % 2 {
                    0 if !self.learned.keys.is_empty() => wire::RememberedDevice::id_of(
                        self.learned.keys[usize::from(ops.byte()) % self.learned.keys.len()].id(),
                    ),
                    _ => u32::from_be_bytes([ops.byte(), ops.byte(), ops.byte(), ops.byte()]),
                },
                label: device_label(ops),
            },
            _ => ClientMsg::ChangePassword {
                old: pw(ops),
                new: pw(ops),
            },
        };
        let bytes = wire::encode_frame(&m).expect("small frame").to_vec();
        (bytes, Carries::Credentials(ConnKind::Binary))
    }

    fn answer(&self, ops: &mut Ops, q: &Query) -> Answer {
        let fail = ops.byte().is_multiple_of(4);
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
                    at_start: ops.byte().is_multiple_of(2),
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
                    if !self.leaky
                        && let Some(s) = self.secrets.in_(piece)
                    {
                        panic!(
                            "a password ({s}) sent to {}: {:?}",
                            t.conn,
                            String::from_utf8_lossy(piece)
                        );
                    }
                    check_output(&mut p.seen, piece, &mut self.learned);
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
                if !self.leaky {
                    let stored = format!("{b:?}");
                    if let Some(s) = self.secrets.in_(stored.as_bytes()) {
                        panic!("a password ({s}) stored: {stored}");
                    }
                }
                self.batches.push(b.id);
            }
            while let Some(q) = self.hub.poll_query() {
                any = true;
                self.queries.push(q);
            }
            while let Some(w) = self.hub.poll_work() {
                any = true;
                self.work.push(w);
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
            self.hub.rooms() <= self.room_cap,
            "rooms {}",
            self.hub.rooms()
        );
        assert!(self.hub.connections() <= self.peers.len());
    }
}

/// An operator's action, with names, masks, durations and modes the fuzzer picks.
fn mod_action(ops: &mut Ops, n: Nick) -> ModAction {
    let duration = |ops: &mut Ops| {
        (!ops.byte().is_multiple_of(3))
            .then(|| Millis(u64::from(ops.u16()) * 1_000 * u64::from(ops.byte())))
    };
    match ops.byte() % 16 {
        0 => ModAction::Register,
        1 => ModAction::Op(n),
        2 => ModAction::Deop(n),
        3 => ModAction::Voice(n),
        4 => ModAction::Devoice(n),
        5 => ModAction::Kick {
            nick: n,
            reason: opt_text(ops),
        },
        6 | 7 => ModAction::Ban {
            target: ops.pick(MASKS).to_owned(),
            duration: duration(ops),
            reason: opt_text(ops),
        },
        8 => ModAction::Unban {
            target: ops.pick(MASKS).to_owned(),
        },
        9 => ModAction::Bans,
        10 => ModAction::Mute {
            target: ops.pick(MASKS).to_owned(),
            duration: duration(ops),
        },
        11 => ModAction::Unmute {
            target: ops.pick(MASKS).to_owned(),
        },
        12 => ModAction::Invite(n),
        13 => ModAction::Settings,
        _ => ModAction::Mode(match ops.byte() % 6 {
            0 => ModeChange::InviteOnly(ops.byte().is_multiple_of(2)),
            1 => ModeChange::Key(
                ops.byte()
                    .is_multiple_of(2)
                    .then(|| Text::new(ops.pick(KEYS)).expect("valid text")),
            ),
            2 => ModeChange::Moderated(ops.byte().is_multiple_of(2)),
            3 => ModeChange::TopicOps(ops.byte().is_multiple_of(2)),
            _ => ModeChange::Limit(
                ops.byte()
                    .is_multiple_of(2)
                    .then(|| u32::from(ops.byte() % 5)),
            ),
        }),
    }
}

/// The newer client messages besides accounts and moderation: admins' actions, notices, read
/// markers, keyed joins, a late `Forwarded`.
fn other_msg(ops: &mut Ops, n: Nick, r: RoomName, id: MsgId) -> ClientMsg {
    match ops.byte() % 12 {
        0 => ClientMsg::Admin(AdminAction::Kill {
            nick: n,
            reason: opt_text(ops),
        }),
        1 => ClientMsg::Admin(AdminAction::Wall(text(ops))),
        2 => ClientMsg::Admin(AdminAction::Ban {
            target: ops.pick(MASKS).to_owned(),
            duration: ops
                .byte()
                .is_multiple_of(2)
                .then(|| Millis(u64::from(ops.u16()) * 1_000)),
            reason: opt_text(ops),
        }),
        3 => ClientMsg::Admin(AdminAction::Unban {
            target: ops.pick(MASKS).to_owned(),
        }),
        4 => ClientMsg::Admin(AdminAction::Bans),
        5 => ClientMsg::Admin(AdminAction::TakeOver(r)),
        6 => ClientMsg::Admin(AdminAction::Close {
            room: r,
            reason: opt_text(ops),
        }),
        7 => ClientMsg::Notice {
            room: r,
            id,
            text: text(ops),
        },
        8 => ClientMsg::NoticeTo {
            to: n,
            id,
            text: text(ops),
        },
        9 => ClientMsg::Read {
            room: r,
            seq: Seq(u64::from(ops.u16())),
        },
        10 => ClientMsg::JoinKey {
            room: r,
            key: Text::new(ops.pick(KEYS)).expect("valid text"),
        },
        _ => ClientMsg::Forwarded {
            peer: "192.0.2.9".into(),
            secret: TEST_BRIDGE_SECRET.into(),
        },
    }
}

/// An `nc` user's account command (`/register`, `/login`, `/logout`, `/password`).
fn nc_account_line(ops: &mut Ops, n: Nick, passwords: &Passwords) -> (Vec<u8>, Carries) {
    let p = passwords.pick(ops);
    let line = match ops.byte() % 5 {
        0 => format!("/register {p}\n"),
        1 | 2 => format!("/login {n} {p}\n"),
        3 => "/logout\n".to_owned(),
        _ => format!("/password {p} {}\n", passwords.pick(ops)),
    };
    (line.into_bytes(), Carries::Credentials(ConnKind::Text))
}

/// An `nc` user's operator or admin command, or one of the newer everyday ones.
fn nc_moderation_line(ops: &mut Ops, n: &Nick, r: &RoomName) -> Vec<u8> {
    let at = if ops.byte().is_multiple_of(2) {
        format!("{r} ")
    } else {
        String::new()
    };
    let mask = ops.pick(MASKS);
    let dur = ops.pick(DURATIONS);
    let line = match ops.byte() % 28 {
        0 => format!("/register {r}"),
        1 => format!("/op {at}{n}"),
        2 => format!("/deop {at}{n}"),
        3 => format!("/voice {at}{n}"),
        4 => format!("/devoice {at}{n}"),
        5 => format!("/kick {at}{n} go away"),
        6 => format!("/ban {at}{mask} {dur} spam"),
        7 => format!("/unban {at}{mask}"),
        8 => format!("/bans {at}"),
        9 => format!("/mute {at}{mask} {dur}"),
        10 => format!("/unmute {at}{mask}"),
        11 => format!("/invite {n} {r}"),
        12 => format!(
            "/mode {at}{}",
            ops.pick(&[
                "+i",
                "-i",
                "+m",
                "-m",
                "+t",
                "-t",
                "+k sesame",
                "-k",
                "+l 2",
                "-l",
                "+x",
                ""
            ])
        ),
        13 => format!("/gban {mask} {dur} abuse"),
        14 => format!("/gunban {mask}"),
        15 => "/gbans".to_owned(),
        16 => format!("/kill {n} bye"),
        17 => "/wall maintenance soon".to_owned(),
        18 => format!("/takeover {r}"),
        19 => format!("/close {r} closed"),
        20 => format!("/search {at}hi"),
        21 => format!("/history {at}{}", ops.byte() % 4),
        22 => format!("/notice {r} heads up"),
        23 => format!("/notice {n} psst"),
        24 => "/me waves".to_owned(),
        25 => format!("/join {r} {}", ops.pick(KEYS)),
        26 => format!("/topic {at}new topic"),
        _ => "/help".to_owned(),
    };
    format!("{line}\n").into_bytes()
}

/// IRC's registration with capabilities and SASL PLAIN (with credentials of the driver's
/// accounts, right and wrong), or pieces of it.
fn irc_sasl(ops: &mut Ops, n: &Nick, passwords: &Passwords) -> (Vec<u8>, Carries) {
    let caps: Vec<&str> = (0..=ops.byte() % 4).map(|_| ops.pick(CAPS)).collect();
    let caps = caps.join(" ");
    let p = passwords.pick(ops);
    let account = nick(ops);
    let blob = sasl_blob(account.as_str(), p);
    let lines = match ops.byte() % 9 {
        0 | 1 => format!(
            "CAP LS 302\r\nCAP REQ :sasl {caps}\r\nAUTHENTICATE PLAIN\r\nAUTHENTICATE {blob}\r\nNICK {n}\r\nUSER u 0 * :real\r\nCAP END\r\n"
        ),
        // An admin account's powers by its password (the admin, when there is one, is ann).
        8 => format!("OPER {} :{p}\r\n", ops.pick(&["ann", account.as_str()])),
        2 => format!("CAP REQ :{caps}\r\n"),
        3 => format!("AUTHENTICATE PLAIN\r\nAUTHENTICATE {blob}\r\n"),
        4 => "AUTHENTICATE PLAIN\r\nAUTHENTICATE *\r\nAUTHENTICATE EXTERNAL\r\n".to_owned(),
        // authzid other than the account, and a blob without a password.
        5 => {
            use base64::Engine;
            let other =
                base64::engine::general_purpose::STANDARD.encode(format!("bob\0{account}\0{p}"));
            format!("AUTHENTICATE PLAIN\r\nAUTHENTICATE {other}\r\n")
        }
        6 => format!("CAP END\r\nCAP LIST\r\nNICK {n}\r\nUSER u 0 * :real\r\n"),
        // IRC clients send passwords to services natter does not run: refused, never relayed.
        _ => format!("PRIVMSG NickServ :IDENTIFY {account} {p}\r\nPASS {p}\r\n"),
    };
    (lines.into_bytes(), Carries::Credentials(ConnKind::Irc))
}

/// `CHATHISTORY` of every kind, with message ids and times near the hub's clock.
fn irc_chathistory(ops: &mut Ops, r: &RoomName, now: Millis) -> Vec<u8> {
    let point = |ops: &mut Ops| match ops.byte() % 3 {
        0 => format!(
            "msgid={}/{}",
            r.as_str().trim_start_matches('#'),
            ops.byte() % 16
        ),
        1 => {
            let at = now.0.saturating_sub(u64::from(ops.u16()) * 100);
            format!(
                "timestamp=1970-01-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                at / 86_400_000 + 1,
                at / 3_600_000 % 24,
                at / 60_000 % 60,
                at / 1000 % 60,
                at % 1000
            )
        }
        _ => "*".to_owned(),
    };
    let limit = ops.pick(&["0", "1", "5", "100", "99999", "x"]);
    let (a, b) = (point(ops), point(ops));
    let line = match ops.byte() % 7 {
        0 => format!("CHATHISTORY LATEST {r} {a} {limit}"),
        1 => format!("CHATHISTORY BEFORE {r} {a} {limit}"),
        2 => format!("CHATHISTORY AFTER {r} {a} {limit}"),
        3 => format!("CHATHISTORY AROUND {r} {a} {limit}"),
        4 => format!("CHATHISTORY BETWEEN {r} {a} {b} {limit}"),
        5 => format!("CHATHISTORY TARGETS {a} {b} {limit}"),
        _ => format!("CHATHISTORY LATEST bob {a} {limit}"),
    };
    format!("{line}\r\n").into_bytes()
}

/// Channel operators' IRC commands: `MODE` with every letter and masks, `KICK`, `INVITE`,
/// `KILL`, `WALLOPS`.
fn irc_moderation(ops: &mut Ops, n: &Nick, r: &RoomName) -> Vec<u8> {
    let mask = ops.pick(IRC_MASKS);
    let line = match ops.byte() % 20 {
        0 => format!("MODE {r} +b {mask}"),
        1 => format!("MODE {r} -b {mask}"),
        2 => format!("MODE {r} +o {n}"),
        3 => format!("MODE {r} -o {n}"),
        4 => format!("MODE {r} +v {n}"),
        5 => format!("MODE {r} -v {n}"),
        6 => format!("MODE {r} +k {}", ops.pick(KEYS)),
        7 => format!("MODE {r} -k x"),
        8 => format!(
            "MODE {r} +l {}",
            ops.pick(&["0", "2", "-1", "x", "99999999999"])
        ),
        9 => format!(
            "MODE {r} {}",
            ops.pick(&[
                "+i", "-i", "+m", "-m", "+t", "-t", "+r", "-l", "+n", "+z", "b", "+q"
            ])
        ),
        10 => format!("MODE {r} +q {mask}"),
        11 => format!("MODE {r} +ovb {n} {n} {mask}"),
        12 => format!("MODE {r}"),
        13 => format!("MODE {n} {}", ops.pick(&["+i", "-o", "+o", "-i+w"])),
        14 => format!("KICK {r} {n} :out"),
        15 => format!("KICK {r} {n},bob,eve"),
        16 => format!("INVITE {n} {r}"),
        17 => format!("KILL {n} :bye"),
        18 => "WALLOPS :hear ye".to_owned(),
        _ => format!("JOIN {r} {}", ops.pick(KEYS)),
    };
    format!("{line}\r\n").into_bytes()
}

/// IRC's questions and the rest: `WHOIS`, `WHO`, `ISON`, `NAMES`, `LIST`, `NOTICE`, `TAGMSG`,
/// `MONITOR` (adding, taking off, listing and clearing watched nicks).
fn irc_queries(ops: &mut Ops, n: &Nick, r: &RoomName) -> Vec<u8> {
    let line = match ops.byte() % 20 {
        0 => format!("WHOIS {n}"),
        1 => format!("WHOIS natter {n},bob"),
        2 => format!("WHO {n}"),
        3 => format!("WHO {r}"),
        4 => format!("ISON {n} bob eve"),
        5 => format!("USERHOST {n}"),
        6 => format!("NAMES {r}"),
        7 => "LIST".to_owned(),
        8 => format!("LIST {r},#a"),
        9 => format!("NOTICE {r} :hey"),
        10 => format!("NOTICE {n} :hey"),
        11 => format!("@+typing=active TAGMSG {r}"),
        12 => format!("MONITOR + {n}"),
        13 => format!("WHOWAS {n}"),
        14 => "MOTD\r\nLUSERS\r\nTIME\r\nVERSION".to_owned(),
        15 => "JOIN 0".to_owned(),
        16 => format!("PRIVMSG {r},{n} :\x01ACTION waves\x01"),
        17 => format!("MONITOR - {n},bob\r\nMONITOR L\r\nMONITOR S"),
        18 => "MONITOR C".to_owned(),
        _ => format!("@label=q PRIVMSG {n} :\x01VERSION\x01"),
    };
    format!("{line}\r\n").into_bytes()
}

/// What a connection was sent is well formed for its dialect.
fn check_output(seen: &mut Output, piece: &[u8], learned: &mut Learned) {
    match seen.kind {
        Some(ConnKind::Binary) => {
            seen.frames.extend(piece);
            loop {
                match seen.frames.next_frame() {
                    Ok(Some(p)) => {
                        let msg = wire::decode_payload::<ServerMsg>(&p)
                            .expect("the hub sends binary clients valid frames");
                        match msg {
                            ServerMsg::Welcome { token, .. } if learned.tokens.len() < 16 => {
                                learned.tokens.push(token);
                            }
                            ServerMsg::SignedIn {
                                token,
                                key: Some(key),
                                ..
                            } if learned.keys.len() < 8 => {
                                learned.keys.push(key);
                                if learned.tokens.len() < 16 {
                                    learned.tokens.push(token);
                                }
                            }
                            _ => {}
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
                // A text an IRC client could have sent in one line is relayed in one line
                // with its sender's prefix, as Ergo does (`Lines::text` in the IRC dialect):
                // such a line may pass 512 bytes by its prefix and the colon before a text a
                // client could send as one word without it; nothing else does.
                let prefix = match body.first() {
                    Some(b':') => body.iter().position(|&b| b == b' ').map_or(0, |p| p + 1),
                    _ => 0,
                };
                let relayed = [&b"PRIVMSG "[..], b"NOTICE "]
                    .iter()
                    .any(|c| body[prefix..].starts_with(c));
                let allowed = if relayed {
                    IRC_MAX_LINE + prefix + 1
                } else {
                    IRC_MAX_LINE
                };
                assert!(
                    body.len() <= allowed,
                    "an IRC line over {IRC_MAX_LINE} bytes ({} with a {prefix}-byte prefix): {:?}",
                    body.len(),
                    String::from_utf8_lossy(&line)
                );
                let inner = &line[..line.len() - 2];
                assert!(
                    !inner.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n'),
                    "NUL, CR or LF inside an IRC line: {:?}",
                    String::from_utf8_lossy(&line)
                );
                let Ok(inner) = core::str::from_utf8(inner) else {
                    panic!("IRC lines are UTF-8: {line:?}");
                };
                // CTCP's \x01 (ACTION) is the one control character an IRC client is sent.
                assert!(
                    !inner.chars().any(|c| c.is_control() && c != '\x01'),
                    "a control character in an IRC line: {inner:?}"
                );
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
    let from = if ops.byte().is_multiple_of(3) {
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
                nick: if ops.byte().is_multiple_of(4) {
                    nick(ops)
                } else {
                    Nick::new(ME).expect("valid nick")
                },
                token: ResumeToken(token),
                resumed: ops.byte().is_multiple_of(2),
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
            at_start: ops.byte().is_multiple_of(2),
        },
        _ => match ops.byte() % 4 {
            0 => ServerMsg::Found(event(ops, r, from)),
            1 => ServerMsg::FoundEnd {
                count: u32::from(ops.byte()),
            },
            // Away news, and who in a room is away (names the session may not know).
            2 => ServerMsg::Away {
                nick: from,
                away: opt_text(ops),
            },
            _ => ServerMsg::AwayHere {
                room: r,
                away: (0..ops.byte() % 4)
                    .map(|_| (nick(ops), text(ops)))
                    .collect(),
            },
        },
    }
}
