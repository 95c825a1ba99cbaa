//! The client's state machine, shared by the CLI and the browser page: handshake, typed input
//! (through [`crate::command::parse`]), message ids and resend, last seq per room, resume, gap
//! refill, keepalive and the decision when to reconnect (backoff with seeded jitter).
//!
//! # Driving a `Session`
//! The driver loops: drain [`Session::poll_event`] (UI events, and the instructions
//! [`Event::Connect`] / [`Event::Close`]) and [`Session::poll_transmit`] (bytes to send), then
//! waits for input, bytes, or [`Session::poll_timeout`]. On `Connect` it opens a transport and
//! calls [`Session::handle_connected`] or [`Session::handle_disconnected`]; bytes read go to
//! [`Session::handle_bytes`] (TCP) or [`Session::handle_message`] (one WebSocket message).
//!
//! After [`Event::Close`] the driver writes what it polled (including what it polls right after
//! the event, such as a quit), drops that transport and does not report its end: the session has
//! already scheduled what comes next. Bytes are only queued while a transport is open; what was
//! typed meanwhile waits in the session (bounded) and is sent after the next welcome.
//!
//! # What the session decides
//! - Reconnect: after a loss (reported, keepalive timeout, bad bytes, `Bye`, or no welcome
//!   within [`CONNECT_TIMEOUT`]) it waits `RECONNECT_MIN·2^(n-1)` capped at `RECONNECT_MAX`,
//!   jittered into the upper half by a ChaCha RNG seeded from [`SessionConfig::seed`]. A welcome
//!   resets the count. `/quit` and a protocol version mismatch end the session for good.
//! - Pacing: commands and messages go out at the hub's flood rate (a burst of `FLOOD_BURST`,
//!   then one per `FLOOD_REFILL`; see [`Session::set_flood_limits`]), in the order typed, so
//!   the server never has to refuse any.
//! - Resume: the hello carries the last token and the last seq seen per room. Resumed: pending
//!   messages are resent in order (the server acknowledges ones it already had). Not resumed: the
//!   user is told, rooms are rejoined, and what the rejoin's replay does not cover is treated as a
//!   gap.
//! - Room events are emitted once per seq: above the last seen, or inside a gap being refilled
//!   ([`Event::Gap`], then a history request; asked again only while the refill makes progress).
//!
//! For UIs: [`Session::room_state`] (topic, members, unread, last seq), [`Session::members`],
//! [`Session::last_seq`], [`Session::pending`]. [`Event::Joined`] comes once per room we enter
//! (and again when `/join` names a room we are in, to make it current); after a reconnect the
//! rooms we were already in are refreshed with [`Event::Members`].

use crate::command::{self, Command, HELP, Input};
use crate::limits::{
    CLIENT_PING_AFTER, FLOOD_BURST, FLOOD_REFILL, MAX_FRAME, MAX_MEMBERS_LISTED, MAX_ROOMS_LISTED,
    MAX_ROOMS_PER_USER, PING_TIMEOUT, RECONNECT_MAX, RECONNECT_MIN, SESSION_MAX_PENDING,
};
use crate::time::Millis;
use crate::types::{MsgId, Nick, ResumeToken, RoomName, Seq, Text, sanitize};
use crate::wire::{
    self, ClientMsg, DirectMsg, ErrorKind, EventKind, FrameDecoder, MAGIC, PROTOCOL_VERSION,
    Resume, RoomEvent, RoomInfo, ServerMsg, WireError,
};
use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::VecDeque;

/// Events queued for the driver, at most. A driver drains after every call, so this is only
/// reached by one that stopped draining; then events are counted and dropped, and the UI is told.
pub const MAX_QUEUED_EVENTS: usize = 16_384;

/// Transmits queued for the driver, at most. Past it the transport is not keeping up: it is
/// closed and the session reconnects (unacknowledged messages are resent, nothing is lost).
pub const MAX_QUEUED_TRANSMITS: usize = 1024;

/// Commands other than messages (`/nick`, `/who`, ...) typed before the welcome, kept to send
/// after it.
const MAX_DEFERRED: usize = 32;

/// Commands (not messages: those wait in the pending list) held back by the session's own flood
/// pacing. Covers a welcome's rejoins and parts plus deferred commands, with room for typing.
const MAX_PACED_COMMANDS: usize = 2 * MAX_ROOMS_PER_USER + MAX_DEFERRED + 32;

/// Gaps per room whose refill is still awaited. Older ones are forgotten (their refill events
/// are then dropped as duplicates would be), which only costs the user a refill.
const MAX_OPEN_GAPS: usize = 16;

/// How long a connection attempt may take, from [`Event::Connect`] to the server's welcome,
/// before it counts as failed (a black-holed TCP connect can hang for minutes, and something
/// that is not a natter server may accept and never answer).
pub const CONNECT_TIMEOUT: Millis = CLIENT_PING_AFTER;

/// Longest server-sent detail or reason passed on to the UI, in characters.
const MAX_DETAIL_CHARS: usize = 500;

/// How the session's bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A byte stream (TCP): preamble, then length-prefixed frames.
    Stream,
    /// A message transport (WebSocket through natter-bridge): each transmit is one frame payload
    /// with no prefix and no preamble (the bridge adds them), each received message is one payload.
    Messages,
}

/// What a session starts with.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Wanted nick.
    pub nick: Nick,
    /// Rooms to join on the first connect (`#lobby` by default).
    pub rooms: Vec<RoomName>,
    /// How bytes travel.
    pub transport: Transport,
    /// Seed for reconnect jitter (any value; tests fix it).
    pub seed: u64,
}

/// Connection state, for the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Waiting for the transport or the welcome.
    Connecting,
    /// Welcomed; chatting.
    Connected,
    /// Lost; the next attempt is at `at`.
    Reconnecting {
        /// When the next attempt starts.
        at: Millis,
        /// Attempts so far since the last success.
        attempt: u32,
    },
    /// Ended (after `/quit`, or a fatal error such as a protocol version mismatch).
    Closed,
}

/// What the session has to say to its driver and UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Driver: open a transport now.
    Connect,
    /// Driver: close the transport once the bytes already polled are written.
    Close,
    /// The connection state changed.
    State(ConnState),
    /// The server welcomed us.
    Welcome {
        /// Our nick.
        nick: Nick,
        /// The earlier session was resumed (rooms and nick kept, missed events follow).
        resumed: bool,
    },
    /// We are in a room.
    Joined {
        /// Room.
        room: RoomName,
        /// Topic.
        topic: Option<Text>,
        /// Members.
        members: Vec<Nick>,
    },
    /// We left a room.
    Parted {
        /// Room.
        room: RoomName,
    },
    /// A room event, once each, in seq order per room (refills after a gap come after it).
    Room(RoomEvent),
    /// A direct message (ours come back as their acknowledgement).
    Direct(DirectMsg),
    /// Room events `first..=last` were missed; a refill of what the server still has was asked for.
    Gap {
        /// Room.
        room: RoomName,
        /// First missed seq.
        first: Seq,
        /// Last missed seq.
        last: Seq,
    },
    /// Members of a room (reply to `/who`, also after joins and parts).
    Members {
        /// Room.
        room: RoomName,
        /// Members.
        members: Vec<Nick>,
    },
    /// Rooms on the server.
    Rooms(Vec<RoomInfo>),
    /// A room's topic (reply to `/topic`).
    Topic {
        /// Room.
        room: RoomName,
        /// Topic.
        topic: Option<Text>,
    },
    /// Our nick changed.
    Nick(Nick),
    /// Something went wrong, in words (server errors, bad commands, refused input).
    Error {
        /// Kind, when the server sent it.
        kind: Option<ErrorKind>,
        /// Words for people.
        text: String,
    },
    /// Local information for the user (`/help`, "not resumed", ...).
    Info(String),
}

/// What the session knows about one room it is in. See [`Session::room_state`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    /// Room.
    pub room: RoomName,
    /// Topic.
    pub topic: Option<Text>,
    /// Members as last listed and then updated by join/part/quit/nick events (at most
    /// [`MAX_MEMBERS_LISTED`]).
    pub members: Vec<Nick>,
    /// Chat lines (say/act by others) received while this was not the current room; cleared by
    /// [`Session::switch_room`].
    pub unread: u32,
    /// Highest seq seen, `None` before the first event.
    pub last_seq: Option<Seq>,
    /// Missed ranges whose refill is awaited; no seq in them was ever emitted.
    gaps: Vec<OpenGap>,
    /// Rejoined after a failed resume, having seen up to this seq: the first event after the
    /// rejoin shows whether (and what) was missed meanwhile.
    rejoined_after: Option<Seq>,
}

/// A missed range `next..=last` of one room, and where its last history request started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpenGap {
    next: Seq,
    last: Seq,
    asked: Seq,
}

impl RoomState {
    fn new(room: RoomName, topic: Option<Text>, members: Vec<Nick>) -> RoomState {
        RoomState {
            room,
            topic,
            members,
            unread: 0,
            last_seq: None,
            gaps: Vec::new(),
            rejoined_after: None,
        }
    }

    /// Decides whether an event with `seq` is new, and records it if so. Every seq is accepted
    /// at most once: above `last_seq`, or inside an open gap (whose seqs were never emitted, and
    /// whose refill comes in ascending order).
    fn accept(&mut self, seq: Seq) -> bool {
        if self.last_seq.is_none_or(|last| seq > last) {
            self.last_seq = Some(seq);
            return true;
        }
        if let Some(i) = self
            .gaps
            .iter()
            .position(|g| g.next <= seq && seq <= g.last)
        {
            if seq >= self.gaps[i].last {
                self.gaps.remove(i);
            } else {
                self.gaps[i].next = seq.next();
            }
            return true;
        }
        false
    }

    /// Records a gap marker. Returns the part not seen before (to show), and from which seq to
    /// ask for history, if at all.
    ///
    /// A marker starting inside an open gap is the server saying a refill stopped there (what
    /// is gone from its history, or what did not fit in our queue): asked again only if the
    /// refill got further than the last request, so asking always makes progress and ends.
    fn on_gap(&mut self, first: Seq, last: Seq) -> (Option<(Seq, Seq)>, Option<Seq>) {
        let mut ask = None;
        if let Some(g) = self
            .gaps
            .iter_mut()
            .find(|g| g.next <= first && first <= g.last)
        {
            if first > g.asked {
                g.asked = first;
                ask = Some(first);
            }
        }
        let first = match self.last_seq {
            // Nothing is above the highest possible seq (a hostile server may send it).
            Some(seen) => match seen.0.checked_add(1) {
                Some(after) => first.max(Seq(after)),
                None => return (None, ask),
            },
            None => first,
        };
        if first > last {
            return (None, ask);
        }
        if self.gaps.len() >= MAX_OPEN_GAPS {
            self.gaps.remove(0);
        }
        self.gaps.push(OpenGap {
            next: first,
            last,
            asked: first,
        });
        self.last_seq = Some(last);
        let ask = ask.map_or(first, |a| a.min(first));
        (Some((first, last)), Some(ask))
    }

    fn add_member(&mut self, nick: &Nick) {
        let folded = nick.folded();
        if !self.members.iter().any(|m| m.folded() == folded)
            && self.members.len() < MAX_MEMBERS_LISTED
        {
            self.members.push(nick.clone());
        }
    }

    fn remove_member(&mut self, nick: &Nick) {
        let folded = nick.folded();
        self.members.retain(|m| m.folded() != folded);
    }
}

/// Where the session is with its transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// [`Event::Connect`] was emitted; waiting for [`Session::handle_connected`].
    Opening,
    /// The transport is open and the hello sent; `welcomed` once the server answered.
    Open { welcomed: bool },
    /// Waiting to reconnect.
    Waiting { at: Millis, attempt: u32 },
    /// Done for good.
    Closed,
}

/// The session's deadlines, one slot each, so the next one is a single `min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// The transport must open by then.
    Connect = 0,
    /// Time for the next connection attempt.
    Reconnect = 1,
    /// The server has been silent: ping it.
    Ping = 2,
    /// The ping went unanswered: the connection is dead.
    PingTimeout = 3,
    /// A flood token is there for the next waiting command.
    Flood = 4,
}

#[derive(Debug, Default)]
struct Timers([Option<Millis>; 5]);

impl Timers {
    fn set(&mut self, t: Timer, at: Millis) {
        self.0[t as usize] = Some(at);
    }
    fn stop(&mut self, t: Timer) {
        self.0[t as usize] = None;
    }
    fn stop_all(&mut self) {
        self.0 = [None; 5];
    }
    /// Clears and returns whether `t` is due at `now`.
    fn take_expired(&mut self, t: Timer, now: Millis) -> bool {
        match self.0[t as usize] {
            Some(at) if at <= now => {
                self.0[t as usize] = None;
                true
            }
            _ => false,
        }
    }
    fn next(&self) -> Option<Millis> {
        self.0.iter().flatten().min().copied()
    }
}

/// The client's copy of the hub's flood control (a token bucket, by default with the hub's
/// default burst and refill): what the session sends never has to wait in the server's flood
/// queue, let alone be refused, even when hundreds of messages are resent after a reconnect or
/// piped in at once. A refill of zero turns pacing off.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    burst: u32,
    refill: Millis,
    tokens: u32,
    /// When the last token was credited (or the bucket was last seen full).
    last: Millis,
}

impl Bucket {
    fn new(burst: u32, refill: Millis, now: Millis) -> Bucket {
        Bucket {
            burst,
            refill,
            tokens: burst,
            last: now,
        }
    }

    fn take(&mut self, now: Millis) -> bool {
        if self.refill == Millis::ZERO {
            return true;
        }
        if self.tokens >= self.burst {
            self.last = now;
        } else {
            let n = now.since(self.last).0 / self.refill.0;
            let room = u64::from(self.burst - self.tokens);
            if n >= room {
                self.tokens = self.burst;
                self.last = now;
            } else if n > 0 {
                // n < room <= burst, a u32, so the cast is exact.
                self.tokens += n as u32;
                self.last = Millis(self.last.0 + n * self.refill.0);
            }
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    fn next_token_at(&self) -> Millis {
        self.last + self.refill
    }
}

/// Something waiting for a flood token, in the order it is to be sent.
#[derive(Debug, Clone)]
enum Out {
    /// A command.
    Cmd(ClientMsg),
    /// The pending message with this id (skipped if acknowledged meanwhile).
    Msg(MsgId),
}

/// A message with an id, kept until the server acknowledges it (echo, `Ack`, or an error naming
/// it) and resent after a reconnect.
#[derive(Debug, Clone)]
struct Pending {
    id: MsgId,
    msg: ClientMsg,
}

/// A client session. See the module docs for how to drive it.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    nick: Nick,
    phase: Phase,
    timers: Timers,
    rng: ChaCha8Rng,
    /// Failed connections since the last welcome.
    attempt: u32,
    /// From the last welcome; presented in the next hello.
    token: Option<ResumeToken>,
    /// A welcome has been seen at least once (so `config.rooms` were asked for).
    ever_welcomed: bool,
    /// The last welcome resumed the earlier session.
    resumed: bool,
    decoder: FrameDecoder,
    /// Rooms we are in, in join order.
    rooms: Vec<RoomState>,
    current: Option<RoomName>,
    /// A `/join`ed room that becomes current when its `Joined` arrives.
    make_current: Option<RoomName>,
    /// Joins sent (or to send at the welcome) and not yet answered.
    joining: Vec<RoomName>,
    /// Parts sent and not yet answered.
    parting: Vec<RoomName>,
    /// The last id handed out; ids strictly increase for the life of the session.
    last_id: u64,
    pending: VecDeque<Pending>,
    deferred: VecDeque<ClientMsg>,
    /// Waiting for flood tokens (only while welcomed).
    outbox: VecDeque<Out>,
    bucket: Bucket,
    ping_token: u64,
    /// The latest `now` passed in (for decisions made deep inside a call).
    now: Millis,
    transmits: VecDeque<Bytes>,
    events: VecDeque<Event>,
    dropped_events: u64,
}

impl Session {
    /// A new session; its first events are [`Event::State`]`(Connecting)` and [`Event::Connect`].
    pub fn new(config: SessionConfig, now: Millis) -> Session {
        let mut s = Session {
            nick: config.nick.clone(),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            phase: Phase::Closed,
            timers: Timers::default(),
            attempt: 0,
            token: None,
            ever_welcomed: false,
            resumed: false,
            decoder: FrameDecoder::new(),
            rooms: Vec::new(),
            current: None,
            make_current: None,
            joining: Vec::new(),
            parting: Vec::new(),
            last_id: 0,
            pending: VecDeque::new(),
            deferred: VecDeque::new(),
            outbox: VecDeque::new(),
            bucket: Bucket::new(FLOOD_BURST, FLOOD_REFILL, now),
            ping_token: 0,
            now,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            dropped_events: 0,
        };
        s.start_connect(now);
        s
    }

    /// The transport is open: the preamble (stream) and hello, with resume data if any, are queued.
    pub fn handle_connected(&mut self, now: Millis) {
        self.now = self.now.max(now);
        if self.phase != Phase::Opening {
            tracing::debug!(phase = ?self.phase, "handle_connected ignored");
            return;
        }
        self.phase = Phase::Open { welcomed: false };
        self.decoder = FrameDecoder::new();
        self.transmits.clear();
        // The server's bucket for this connection starts full too.
        self.bucket = Bucket::new(self.bucket.burst, self.bucket.refill, now);
        self.outbox.clear();
        // The connect deadline keeps running until the welcome.
        self.heard(now);
        if self.config.transport == Transport::Stream {
            self.transmits.push_back(Bytes::from_static(&MAGIC));
        }
        let resume = self.token.clone().map(|token| Resume {
            token,
            rooms: self
                .rooms
                .iter()
                .take(MAX_ROOMS_PER_USER)
                .map(|r| (r.room.clone(), r.last_seq.unwrap_or_default()))
                .collect(),
        });
        self.send(&ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: self.nick.clone(),
            resume,
        });
    }

    /// The transport failed to open, or was lost. A reconnect is scheduled (unless closed).
    pub fn handle_disconnected(&mut self, reason: &str, now: Millis) {
        self.now = self.now.max(now);
        if matches!(self.phase, Phase::Opening | Phase::Open { .. }) {
            self.info(format!("disconnected: {}", clean(reason)));
            self.schedule_reconnect(now);
        }
    }

    /// Bytes read from a stream transport.
    pub fn handle_bytes(&mut self, data: &[u8], now: Millis) {
        self.now = self.now.max(now);
        if !self.is_open() || data.is_empty() {
            return;
        }
        self.heard(now);
        // Fed a frame's worth at a time, so the decoder holds at most one frame plus one chunk
        // however much the driver passes in.
        for chunk in data.chunks(MAX_FRAME) {
            self.decoder.extend(chunk);
            loop {
                let payload = match self.decoder.next_frame() {
                    Ok(Some(p)) => p,
                    Ok(None) => break,
                    Err(e) => return self.bad_input(&e, now),
                };
                match wire::decode_payload::<ServerMsg>(&payload) {
                    Ok(msg) => self.on_msg(msg, now),
                    Err(e) => return self.bad_input(&e, now),
                }
                if !self.is_open() {
                    return;
                }
            }
        }
    }

    /// One message read from a message transport (one frame payload).
    pub fn handle_message(&mut self, payload: &[u8], now: Millis) {
        self.now = self.now.max(now);
        if !self.is_open() {
            return;
        }
        self.heard(now);
        match wire::decode_payload::<ServerMsg>(payload) {
            Ok(msg) => self.on_msg(msg, now),
            Err(e) => self.bad_input(&e, now),
        }
    }

    /// A line the user typed: chat for the current room, or a `/command`.
    pub fn handle_input(&mut self, line: &str, now: Millis) {
        self.now = self.now.max(now);
        if self.phase == Phase::Closed {
            self.error("the session is closed");
            return;
        }
        let input = match command::parse(line) {
            Ok(Some(input)) => input,
            Ok(None) => return,
            Err(e) => return self.error(e.to_string()),
        };
        match input {
            Input::Say(text) => {
                if let Some(room) = self.chat_room() {
                    self.queue_msg(|id| ClientMsg::Say { room, id, text });
                }
            }
            Input::Command(cmd) => self.command(cmd),
        }
    }

    /// Makes `room` (which we are in) the room typed chat goes to. False if we are not in it.
    pub fn switch_room(&mut self, room: &RoomName) -> bool {
        let Some(state) = self.rooms.iter_mut().find(|r| &r.room == room) else {
            return false;
        };
        state.unread = 0;
        self.current = Some(room.clone());
        true
    }

    /// A deadline from [`Session::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.now = self.now.max(now);
        if self.timers.take_expired(Timer::Connect, now) {
            let why = if self.is_open() {
                "the server did not welcome us"
            } else {
                "could not connect: timed out"
            };
            self.lost(why, now);
        }
        if self.timers.take_expired(Timer::PingTimeout, now) {
            self.lost("the server stopped answering", now);
        }
        if self.timers.take_expired(Timer::Ping, now) {
            self.ping_token = self.ping_token.wrapping_add(1);
            self.send(&ClientMsg::Ping {
                token: self.ping_token,
            });
            self.timers.set(Timer::PingTimeout, now + PING_TIMEOUT);
        }
        if self.timers.take_expired(Timer::Flood, now) {
            self.run_outbox(now);
        }
        if self.timers.take_expired(Timer::Reconnect, now) {
            self.start_connect(now);
        }
    }

    /// Next bytes (stream) or message (message transport) to send.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(ev) = self.events.pop_front() {
            return Some(ev);
        }
        if self.dropped_events > 0 {
            let n = std::mem::take(&mut self.dropped_events);
            return Some(Event::Error {
                kind: None,
                text: format!("{n} events were dropped because the display fell behind"),
            });
        }
        None
    }

    /// When [`Session::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.timers.next()
    }

    /// Our nick (the wanted one until welcomed).
    pub fn nick(&self) -> &Nick {
        &self.nick
    }

    /// The room typed chat goes to.
    pub fn current_room(&self) -> Option<&RoomName> {
        self.current.as_ref()
    }

    /// Rooms we are in, in join order.
    pub fn rooms(&self) -> Vec<RoomName> {
        self.rooms.iter().map(|r| r.room.clone()).collect()
    }

    /// Connection state.
    pub fn state(&self) -> ConnState {
        match self.phase {
            Phase::Opening | Phase::Open { welcomed: false } => ConnState::Connecting,
            Phase::Open { welcomed: true } => ConnState::Connected,
            Phase::Waiting { at, attempt } => ConnState::Reconnecting { at, attempt },
            Phase::Closed => ConnState::Closed,
        }
    }

    /// True when connected and nothing we sent awaits the server's answer (messages acknowledged,
    /// joins answered): a line-mode client may exit.
    pub fn is_settled(&self) -> bool {
        self.phase == (Phase::Open { welcomed: true })
            && self.pending.is_empty()
            && self.deferred.is_empty()
            && self.outbox.is_empty()
            && self.joining.is_empty()
            && self.parting.is_empty()
    }

    /// Paces sending to a server whose flood control is configured differently from
    /// [`crate::limits::FLOOD_BURST`] / [`crate::limits::FLOOD_REFILL`] (the default): at most
    /// `burst` commands at once, then one per `refill`. A `refill` of zero turns pacing off.
    /// Keepalive and history requests are never paced (the hub does not count them).
    pub fn set_flood_limits(&mut self, burst: u32, refill: Millis, now: Millis) {
        self.now = self.now.max(now);
        self.bucket = Bucket::new(burst.max(1), refill, now);
        if !self.outbox.is_empty() {
            self.timers.set(Timer::Flood, now);
        }
    }

    /// What we know about a room we are in: topic, members, unread count, last seq.
    pub fn room_state(&self, room: &RoomName) -> Option<&RoomState> {
        self.rooms.iter().find(|r| &r.room == room)
    }

    /// Members of a room we are in (empty if we are not in it).
    pub fn members(&self, room: &RoomName) -> &[Nick] {
        self.room_state(room).map_or(&[], |r| &r.members)
    }

    /// The highest seq seen in a room, `None` if none yet (or not in it).
    pub fn last_seq(&self, room: &RoomName) -> Option<Seq> {
        self.room_state(room).and_then(|r| r.last_seq)
    }

    /// Messages typed and not yet acknowledged by the server (sent or waiting to be).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    // ---- connection lifecycle ----

    fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    fn is_welcomed(&self) -> bool {
        self.phase == (Phase::Open { welcomed: true })
    }

    fn start_connect(&mut self, now: Millis) {
        self.phase = Phase::Opening;
        self.timers.stop_all();
        self.timers.set(Timer::Connect, now + CONNECT_TIMEOUT);
        self.event(Event::State(ConnState::Connecting));
        self.event(Event::Connect);
    }

    /// Something was heard from the server: it is alive, restart the keepalive.
    fn heard(&mut self, now: Millis) {
        self.timers.stop(Timer::PingTimeout);
        self.timers.set(Timer::Ping, now + CLIENT_PING_AFTER);
    }

    /// The session itself gives up on the transport: tell the driver to close it, and retry.
    fn lost(&mut self, why: &str, now: Millis) {
        if !matches!(self.phase, Phase::Opening | Phase::Open { .. }) {
            return;
        }
        if !why.is_empty() {
            self.info(format!("connection lost: {why}"));
        }
        self.event(Event::Close);
        self.schedule_reconnect(now);
    }

    fn bad_input(&mut self, e: &WireError, now: Millis) {
        tracing::warn!(error = %e, "bad data from the server");
        self.error(format!("the server sent bad data ({e})"));
        self.lost("bad data", now);
    }

    fn schedule_reconnect(&mut self, now: Millis) {
        self.salvage_outbox();
        self.transmits.clear();
        self.decoder = FrameDecoder::new();
        self.timers.stop_all();
        self.attempt = self.attempt.saturating_add(1);
        let at = now + self.backoff(self.attempt);
        self.phase = Phase::Waiting {
            at,
            attempt: self.attempt,
        };
        self.timers.set(Timer::Reconnect, at);
        self.event(Event::State(self.state()));
    }

    /// Wait before attempt `attempt` (1-based): `RECONNECT_MIN·2^(attempt-1)` capped at
    /// `RECONNECT_MAX`, then a random point in its upper half, so clients that lost the same
    /// server do not all come back in the same millisecond.
    fn backoff(&mut self, attempt: u32) -> Millis {
        let exp = attempt.saturating_sub(1).min(32);
        let base = RECONNECT_MIN
            .0
            .saturating_mul(1u64 << exp)
            .min(RECONNECT_MAX.0);
        let half = base / 2;
        Millis(half + self.rng.next_u64() % (base - half + 1))
    }

    fn close_for_good(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        self.event(Event::Close);
        self.phase = Phase::Closed;
        self.outbox.clear();
        self.timers.stop_all();
        self.decoder = FrameDecoder::new();
        self.event(Event::State(ConnState::Closed));
        if !self.pending.is_empty() {
            let n = self.pending.len();
            self.pending.clear();
            self.info(format!("{n} unacknowledged messages were not delivered"));
        }
        self.deferred.clear();
    }

    // ---- output ----

    fn event(&mut self, ev: Event) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.dropped_events += 1;
            return;
        }
        self.events.push_back(ev);
    }

    fn info(&mut self, text: impl Into<String>) {
        self.event(Event::Info(text.into()));
    }

    fn error(&mut self, text: impl Into<String>) {
        self.event(Event::Error {
            kind: None,
            text: text.into(),
        });
    }

    /// Queues `msg` for the open transport. A transport so slow that the queue fills is given up
    /// on (keepalive traffic is just skipped).
    fn send(&mut self, msg: &ClientMsg) {
        if !self.is_open() {
            return;
        }
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            if !matches!(msg, ClientMsg::Ping { .. } | ClientMsg::Pong { .. }) {
                tracing::warn!("transmit queue full; reconnecting");
                self.lost("sending is not keeping up", self.now);
            }
            return;
        }
        let encoded = match self.config.transport {
            Transport::Stream => wire::encode_frame(msg),
            Transport::Messages => wire::encode_payload(msg),
        };
        match encoded {
            Ok(b) => self.transmits.push_back(b),
            // Types bound every field, so this is a bug, not input: say so and carry on.
            Err(e) => {
                tracing::error!(error = %e, "could not encode a message");
                self.error(format!("could not send: {e}"));
            }
        }
    }

    /// Sends `out` when a flood token allows, keeping order with what already waits.
    fn pace(&mut self, out: Out) {
        if !self.is_welcomed() {
            return;
        }
        if self.outbox.is_empty() && self.bucket.take(self.now) {
            return self.send_out(out);
        }
        if let Out::Cmd(_) = out {
            let commands = self
                .outbox
                .iter()
                .filter(|o| matches!(o, Out::Cmd(_)))
                .count();
            if commands >= MAX_PACED_COMMANDS {
                self.error("too many commands are waiting to be sent; slow down");
                return;
            }
        }
        self.outbox.push_back(out);
        self.timers.set(Timer::Flood, self.bucket.next_token_at());
    }

    fn run_outbox(&mut self, now: Millis) {
        while !self.outbox.is_empty() && self.is_welcomed() {
            if !self.bucket.take(now) {
                self.timers.set(Timer::Flood, self.bucket.next_token_at());
                return;
            }
            if let Some(out) = self.outbox.pop_front() {
                self.send_out(out);
            }
        }
    }

    fn send_out(&mut self, out: Out) {
        match out {
            Out::Cmd(msg) => self.send(&msg),
            Out::Msg(id) => {
                let msg = self
                    .pending
                    .iter()
                    .find(|p| p.id == id)
                    .map(|p| p.msg.clone());
                if let Some(msg) = msg {
                    self.send(&msg);
                }
            }
        }
    }

    /// The link is gone: messages stay pending and joins/parts are tracked (all go again after
    /// the welcome); other commands not yet sent go back to waiting for it.
    fn salvage_outbox(&mut self) {
        for out in std::mem::take(&mut self.outbox) {
            if let Out::Cmd(
                msg @ (ClientMsg::Nick { .. }
                | ClientMsg::Who { .. }
                | ClientMsg::Rooms
                | ClientMsg::Topic { .. }),
            ) = out
            {
                if self.deferred.len() < MAX_DEFERRED {
                    self.deferred.push_back(msg);
                }
            }
        }
    }

    // ---- input from the user ----

    /// Where typed chat goes: the current room, else the room being joined.
    fn chat_room(&mut self) -> Option<RoomName> {
        let room = self
            .current
            .clone()
            .or_else(|| self.make_current.clone())
            .or_else(|| self.joining.first().cloned())
            .or_else(|| {
                (!self.ever_welcomed)
                    .then(|| self.config.rooms.first().cloned())
                    .flatten()
            });
        if room.is_none() {
            self.error("join a room first (/join #room)");
        }
        room
    }

    /// Gives a message the next id and keeps it until acknowledged; sends it now if welcomed.
    fn queue_msg(&mut self, make: impl FnOnce(MsgId) -> ClientMsg) {
        if self.pending.len() >= SESSION_MAX_PENDING {
            self.error(format!(
                "{SESSION_MAX_PENDING} messages are still waiting to be sent; \
                 wait for the connection to catch up"
            ));
            return;
        }
        self.last_id += 1;
        let id = MsgId(self.last_id);
        let msg = make(id);
        self.pending.push_back(Pending { id, msg });
        self.pace(Out::Msg(id));
    }

    /// Sends a command now if welcomed, else keeps it for the welcome.
    fn send_or_defer(&mut self, msg: ClientMsg) {
        if self.is_welcomed() {
            self.pace(Out::Cmd(msg));
        } else if self.deferred.len() >= MAX_DEFERRED {
            self.error("not connected, and too many commands are waiting; try again later");
        } else {
            self.deferred.push_back(msg);
        }
    }

    /// The room a command names, or the current one.
    fn room_or_current(&mut self, room: Option<RoomName>) -> Option<RoomName> {
        let room = room.or_else(|| self.current.clone());
        if room.is_none() {
            self.error("join a room first (/join #room)");
        }
        room
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Nick(nick) => self.send_or_defer(ClientMsg::Nick { nick }),
            Command::Join(room) => self.join(room),
            Command::Part { room, reason } => {
                let Some(room) = self.room_or_current(room) else {
                    return;
                };
                if self.room_state(&room).is_none() {
                    if self.joining.contains(&room) && !self.is_welcomed() {
                        // Not asked yet: just don't.
                        self.joining.retain(|r| r != &room);
                        if self.make_current.as_ref() == Some(&room) {
                            self.make_current = None;
                        }
                    } else {
                        self.error(format!("you are not in {room}"));
                    }
                    return;
                }
                if !self.is_welcomed() {
                    self.error(format!("not connected; /part {room} again once connected"));
                    return;
                }
                if !self.parting.contains(&room) {
                    self.parting.push(room.clone());
                }
                self.pace(Out::Cmd(ClientMsg::Part { room, reason }));
            }
            Command::Msg { to, text } => self.queue_msg(|id| ClientMsg::Msg { to, id, text }),
            Command::Me(text) => {
                if let Some(room) = self.chat_room() {
                    self.queue_msg(|id| ClientMsg::Act { room, id, text });
                }
            }
            Command::Who(room) => {
                if let Some(room) = self.room_or_current(room) {
                    self.send_or_defer(ClientMsg::Who { room });
                }
            }
            Command::Rooms => self.send_or_defer(ClientMsg::Rooms),
            Command::Topic { room, topic } => {
                if let Some(room) = self.room_or_current(room) {
                    self.send_or_defer(ClientMsg::Topic { room, topic });
                }
            }
            Command::Quit(reason) => {
                self.send(&ClientMsg::Quit { reason });
                self.close_for_good();
            }
            Command::Help => {
                for (usage, what) in HELP {
                    self.info(format!("{usage:<24} {what}"));
                }
            }
        }
    }

    fn join(&mut self, room: RoomName) {
        let leaving = self.parting.contains(&room);
        if let Some(state) = self.room_state(&room).cloned().filter(|_| !leaving) {
            // Already in it: `/join` just makes it current.
            self.switch_room(&room);
            self.event(Event::Joined {
                room,
                topic: state.topic,
                members: state.members,
            });
            return;
        }
        if self.joining.contains(&room) {
            self.make_current = Some(room);
            return;
        }
        if self.rooms.len() + self.joining.len() >= MAX_ROOMS_PER_USER + usize::from(leaving) {
            self.error(format!(
                "you can be in at most {MAX_ROOMS_PER_USER} rooms; /part one first"
            ));
            return;
        }
        self.joining.push(room.clone());
        self.make_current = Some(room.clone());
        // Before the welcome, the join is sent with the others when it comes.
        self.pace(Out::Cmd(ClientMsg::Join { room }));
    }

    // ---- input from the server ----

    fn on_msg(&mut self, msg: ServerMsg, now: Millis) {
        match msg {
            ServerMsg::Welcome {
                version: _,
                nick,
                token,
                resumed,
            } => self.on_welcome(nick, token, resumed),
            ServerMsg::Joined {
                room,
                topic,
                members,
                seq,
            } => self.on_joined(room, topic, members, seq),
            ServerMsg::Parted { room } => self.on_parted(&room),
            ServerMsg::Event(ev) => self.on_room_event(ev),
            ServerMsg::Direct(dm) => {
                if dm.from.folded() == self.nick.folded() {
                    self.ack(dm.id);
                }
                self.event(Event::Direct(dm));
            }
            ServerMsg::Ack { id } => self.ack(id),
            ServerMsg::Gap { room, first, last } => {
                let Some(state) = self.rooms.iter_mut().find(|r| r.room == room) else {
                    return;
                };
                let (missed, ask) = state.on_gap(first, last);
                self.gap_found(&room, missed, ask);
            }
            ServerMsg::Members { room, mut members } => {
                members.truncate(MAX_MEMBERS_LISTED);
                if let Some(state) = self.rooms.iter_mut().find(|r| r.room == room) {
                    state.members = members.clone();
                }
                self.event(Event::Members { room, members });
            }
            ServerMsg::Rooms { mut rooms } => {
                rooms.truncate(MAX_ROOMS_LISTED);
                self.event(Event::Rooms(rooms));
            }
            ServerMsg::Topic { room, topic } => {
                if let Some(state) = self.rooms.iter_mut().find(|r| r.room == room) {
                    state.topic = topic.clone();
                }
                self.event(Event::Topic { room, topic });
            }
            ServerMsg::YourNick { nick } => self.set_nick(nick),
            ServerMsg::Error { kind, id, detail } => self.on_error(kind, id, &detail),
            ServerMsg::Ping { token } => self.send(&ClientMsg::Pong { token }),
            ServerMsg::Pong { .. } => {}
            ServerMsg::Bye { reason } => {
                // The server's words say why; no second notice.
                self.info(clean(&reason));
                self.lost("", now);
            }
        }
    }

    fn on_welcome(&mut self, nick: Nick, token: ResumeToken, resumed: bool) {
        if self.phase != (Phase::Open { welcomed: false }) {
            tracing::debug!("second welcome ignored");
            return;
        }
        // Nothing to resume without an earlier welcome: whatever the server says, start fresh.
        let resumed = resumed && self.ever_welcomed;
        self.timers.stop(Timer::Connect);
        self.phase = Phase::Open { welcomed: true };
        self.attempt = 0;
        self.token = Some(token);
        self.nick = nick.clone();
        self.resumed = resumed;
        self.event(Event::State(ConnState::Connected));
        self.event(Event::Welcome { nick, resumed });
        if resumed {
            // Rooms are kept; what was asked and not answered is asked again.
            for room in self.parting.clone() {
                self.pace(Out::Cmd(ClientMsg::Part { room, reason: None }));
            }
            for room in self.joining.clone() {
                self.pace(Out::Cmd(ClientMsg::Join { room }));
            }
        } else {
            let mut want: Vec<RoomName> = if self.ever_welcomed {
                self.info(
                    "could not resume the session: rejoining rooms; \
                     messages sent meanwhile may have been missed",
                );
                // Parts in flight are done: the new session is in no room.
                for room in std::mem::take(&mut self.parting) {
                    self.on_parted(&room);
                }
                self.rooms.iter().map(|r| r.room.clone()).collect()
            } else {
                self.config.rooms.clone()
            };
            for room in std::mem::take(&mut self.joining) {
                if !want.contains(&room) {
                    want.push(room);
                }
            }
            want.truncate(MAX_ROOMS_PER_USER);
            for room in want {
                self.pace(Out::Cmd(ClientMsg::Join { room: room.clone() }));
                self.joining.push(room);
            }
        }
        self.ever_welcomed = true;
        for msg in std::mem::take(&mut self.deferred) {
            self.pace(Out::Cmd(msg));
        }
        let resend: Vec<MsgId> = self.pending.iter().map(|p| p.id).collect();
        for id in resend {
            self.pace(Out::Msg(id));
        }
    }

    fn on_joined(&mut self, room: RoomName, topic: Option<Text>, mut members: Vec<Nick>, seq: Seq) {
        self.joining.retain(|r| r != &room);
        members.truncate(MAX_MEMBERS_LISTED);
        let resumed = self.resumed;
        if let Some(state) = self.rooms.iter_mut().find(|r| r.room == room) {
            // Known room: a resume or a rejoin. Its seqs go on, unless the room is new (the
            // server restarted), which shows as a join seq not above what we saw.
            if let Some(last) = state.last_seq {
                if seq < last || (seq == last && !resumed) {
                    state.last_seq = None;
                    state.gaps.clear();
                } else if !resumed {
                    state.rejoined_after = Some(last);
                }
            }
            state.topic = topic;
            state.members = members.clone();
            self.event(Event::Members {
                room: room.clone(),
                members,
            });
        } else {
            if self.rooms.len() >= MAX_ROOMS_PER_USER {
                tracing::warn!(%room, "joined more rooms than allowed; ignored");
                return;
            }
            self.rooms
                .push(RoomState::new(room.clone(), topic.clone(), members.clone()));
            self.event(Event::Joined {
                room: room.clone(),
                topic,
                members,
            });
        }
        if self.current.is_none() || self.make_current.as_ref() == Some(&room) {
            if self.make_current.as_ref() == Some(&room) {
                self.make_current = None;
            }
            self.switch_room(&room);
        }
    }

    fn on_parted(&mut self, room: &RoomName) {
        self.parting.retain(|r| r != room);
        let Some(i) = self.rooms.iter().position(|r| &r.room == room) else {
            return;
        };
        self.rooms.remove(i);
        if self.current.as_ref() == Some(room) {
            self.current = self.rooms.first().map(|r| r.room.clone());
            if let Some(state) = self.rooms.first_mut() {
                state.unread = 0;
            }
        }
        self.event(Event::Parted { room: room.clone() });
    }

    fn on_room_event(&mut self, ev: RoomEvent) {
        let me = self.nick.folded();
        let is_current = self.current.as_ref() == Some(&ev.room);
        let Some(state) = self.rooms.iter_mut().find(|r| r.room == ev.room) else {
            tracing::debug!(room = %ev.room, "event for a room we are not in");
            return;
        };
        if let Some(seen) = state.rejoined_after.take() {
            // The rejoin replays only recent history: what lies between is asked for.
            if ev.seq.0 > seen.0.saturating_add(1) {
                let (missed, ask) = state.on_gap(Seq(seen.0 + 1), Seq(ev.seq.0 - 1));
                self.gap_found(&ev.room, missed, ask);
            }
        }
        let Some(state) = self.rooms.iter_mut().find(|r| r.room == ev.room) else {
            return;
        };
        if !state.accept(ev.seq) {
            return;
        }
        let mine = ev.from.folded() == me;
        let mut acked = None;
        let mut new_nick = None;
        match &ev.kind {
            EventKind::Say { id, .. } | EventKind::Act { id, .. } => {
                if mine {
                    acked = Some(*id);
                } else if !is_current {
                    state.unread = state.unread.saturating_add(1);
                }
            }
            EventKind::Join => state.add_member(&ev.from),
            EventKind::Part { .. } | EventKind::Quit { .. } => state.remove_member(&ev.from),
            EventKind::Nick { new } => {
                state.remove_member(&ev.from);
                state.add_member(new);
                if mine {
                    new_nick = Some(new.clone());
                }
            }
            EventKind::Topic { topic } => state.topic = topic.clone(),
        }
        if let Some(id) = acked {
            self.ack(id);
        }
        self.event(Event::Room(ev));
        if let Some(nick) = new_nick {
            self.set_nick(nick);
        }
    }

    /// Shows a newly missed range and asks the server for what it still has.
    fn gap_found(&mut self, room: &RoomName, missed: Option<(Seq, Seq)>, ask: Option<Seq>) {
        if let Some((first, last)) = missed {
            self.event(Event::Gap {
                room: room.clone(),
                first,
                last,
            });
        }
        if let Some(from) = ask {
            self.send(&ClientMsg::History {
                room: room.clone(),
                after: Seq(from.0.saturating_sub(1)),
            });
        }
    }

    fn set_nick(&mut self, nick: Nick) {
        if nick != self.nick {
            self.nick = nick.clone();
            self.event(Event::Nick(nick));
        }
    }

    fn ack(&mut self, id: MsgId) {
        if let Some(i) = self.pending.iter().position(|p| p.id == id) {
            self.pending.remove(i);
            // Not yet (re)sent: no need to any more.
            self.outbox
                .retain(|o| !matches!(o, Out::Msg(m) if *m == id));
        }
    }

    fn on_error(&mut self, kind: ErrorKind, id: Option<MsgId>, detail: &str) {
        if let Some(id) = id {
            // Refused: it will not be delivered, so it is not resent either.
            self.ack(id);
        }
        // Errors name no room; these kinds only answer a join or a part, oldest first.
        match kind {
            ErrorKind::TooManyRooms if !self.joining.is_empty() => {
                let room = self.joining.remove(0);
                if self.make_current.as_ref() == Some(&room) {
                    self.make_current = None;
                }
            }
            ErrorKind::NotInRoom if id.is_none() && !self.parting.is_empty() => {
                let room = self.parting.remove(0);
                self.on_parted_quietly(&room);
            }
            _ => {}
        }
        self.event(Event::Error {
            kind: Some(kind),
            text: clean(detail),
        });
        if kind == ErrorKind::Version {
            self.close_for_good();
        }
    }

    /// The server says we are not in a room we were parting: forget it.
    fn on_parted_quietly(&mut self, room: &RoomName) {
        if self.room_state(room).is_some() {
            self.on_parted(room);
        }
    }
}

/// Server-sent words made safe to show: no control characters, bounded length.
fn clean(s: &str) -> String {
    sanitize(&s.chars().take(MAX_DETAIL_CHARS).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::LEN_PREFIX;

    fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }
    fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }
    fn text(s: &str) -> Text {
        Text::new(s).unwrap()
    }

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
                    let p = wire::encode_payload(&msg).unwrap();
                    self.s.handle_message(&p, self.now);
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
                if self.s.outbox.is_empty() {
                    break;
                }
                self.advance(FLOOD_REFILL.0);
                out.extend(self.sent());
                // A live server is heard from meanwhile (it echoes what it gets).
                self.recv(ServerMsg::Pong { token: 0 });
            }
            assert!(self.s.outbox.is_empty());
            assert!(self.s.is_open(), "the connection lasted");
            out
        }

        /// Runs the clock to the next deadline and handles it.
        fn run_to_deadline(&mut self) -> Millis {
            let t = self.s.poll_timeout().expect("a deadline");
            self.now = self.now.max(t);
            self.s.handle_timeout(self.now);
            t
        }

        fn welcome(&mut self, token: u8, resumed: bool) {
            self.recv(ServerMsg::Welcome {
                version: PROTOCOL_VERSION,
                nick: nick("alice"),
                token: ResumeToken([token; 16]),
                resumed,
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
            let mut t = T::new(transport);
            t.s.handle_connected(t.now);
            t.welcome(1, false);
            t.joined("#lobby", 1);
            t.recv(ev("#lobby", 1, "alice", EventKind::Join));
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
                    resumed: false
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
                    members: vec![nick("alice"), nick("bob")]
                }]
            );
            assert_eq!(t.s.current_room(), Some(&room("#lobby")));
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
            vec![Event::Direct(incoming), Event::Direct(echo)]
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
                    room: lobby.clone(),
                    id: MsgId(2),
                    text: text("waves"),
                },
            ),
            (
                "//slash",
                ClientMsg::Say {
                    room: lobby.clone(),
                    id: MsgId(3),
                    text: text("/slash"),
                },
            ),
        ];
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
            ("/msg bob", "usage: /msg nick text"),
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
    fn join_makes_the_room_current_and_tracks_state() {
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
        assert_eq!(t.s.current_room(), Some(&room("#rust")));
        // Events in the other room count as unread until switched to.
        t.recv(say("#lobby", 2, "bob", 1, "psst"));
        t.recv(ev("#lobby", 3, "carol", EventKind::Join));
        t.recv(ev(
            "#lobby",
            4,
            "bob",
            EventKind::Nick {
                new: nick("robert"),
            },
        ));
        t.recv(ev(
            "#lobby",
            5,
            "carol",
            EventKind::Topic {
                topic: Some(text("hi")),
            },
        ));
        let lobby = t.s.room_state(&room("#lobby")).unwrap().clone();
        assert_eq!(lobby.unread, 1);
        assert_eq!(
            lobby.members,
            vec![nick("alice"), nick("carol"), nick("robert")]
        );
        assert_eq!(lobby.topic, Some(text("hi")));
        t.recv(ev("#lobby", 6, "carol", EventKind::Quit { reason: None }));
        assert_eq!(
            t.s.members(&room("#lobby")),
            &[nick("alice"), nick("robert")]
        );
        assert!(t.s.switch_room(&room("#lobby")));
        assert_eq!(t.s.room_state(&room("#lobby")).unwrap().unread, 0);
        assert!(!t.s.switch_room(&room("#nowhere")));
        // /join of a room we are in switches without asking the server.
        t.s.handle_input("/join #rust", t.now);
        assert!(t.sent().is_empty());
        assert_eq!(t.s.current_room(), Some(&room("#rust")));
        t.events();
        // /part: current falls back to the remaining room.
        t.s.handle_input("/part", t.now);
        assert_eq!(
            t.sent(),
            vec![ClientMsg::Part {
                room: room("#rust"),
                reason: None
            }]
        );
        assert!(!t.s.is_settled());
        t.recv(ServerMsg::Parted {
            room: room("#rust"),
        });
        assert!(t.s.is_settled());
        assert_eq!(
            t.events(),
            vec![Event::Parted {
                room: room("#rust")
            }]
        );
        assert_eq!(t.s.current_room(), Some(&room("#lobby")));
        assert_eq!(t.s.rooms(), vec![room("#lobby")]);
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
                    members: vec![nick("alice")]
                },
                Event::Topic {
                    room: room("#lobby"),
                    topic: Some(text("t"))
                },
                Event::Nick(nick("al")),
            ]
        );
        assert_eq!(t.s.nick(), &nick("al"));
        assert_eq!(t.s.members(&room("#lobby")), &[nick("alice")]);
        assert_eq!(
            t.s.room_state(&room("#lobby")).unwrap().topic,
            Some(text("t"))
        );
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
            id: Some(MsgId(1)),
            detail: "slow down\x1b[2J".into(),
        });
        assert_eq!(
            t.events(),
            vec![Event::Error {
                kind: Some(ErrorKind::Flood),
                text: "slow down\u{FFFD}[2J".into()
            }]
        );
        assert!(t.s.is_settled(), "refused, not to be resent");
        assert_eq!(t.s.pending(), 0);
    }

    /// The waits between attempts while the server stays away.
    fn backoff_schedule(seed: u64, n: usize) -> Vec<(u32, u64)> {
        let mut t = T::with(Transport::Stream, vec![RoomName::lobby()], seed);
        t.events();
        let mut out = Vec::new();
        for _ in 0..n {
            t.s.handle_disconnected("refused", t.now);
            let evs = t.events();
            let Some(Event::State(ConnState::Reconnecting { at, attempt })) = evs.last().cloned()
            else {
                panic!("no reconnect scheduled: {evs:?}");
            };
            assert_eq!(t.s.state(), ConnState::Reconnecting { at, attempt });
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
                        token: ResumeToken([1; 16]),
                        rooms: vec![(room("#lobby"), Seq(3)), (room("#rust"), Seq(7))],
                    }),
                }
            );
            t.welcome(2, true);
            let evs = t.events();
            assert!(evs.contains(&Event::Welcome {
                nick: nick("alice"),
                resumed: true
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
            assert_eq!(r.token, ResumeToken([2; 16]));
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
        assert_eq!(
            t.sent(),
            vec![
                ClientMsg::Join {
                    room: room("#lobby")
                },
                ClientMsg::Join {
                    room: room("#rust")
                },
                ClientMsg::Say {
                    room: room("#rust"),
                    id: MsgId(1),
                    text: text("lost?")
                },
            ]
        );
        assert!(!t.s.is_settled());
        // Same room, seqs go on: the replayed history shows only what is new.
        t.joined("#lobby", 9);
        t.joined("#rust", 8);
        assert_eq!(t.s.current_room(), Some(&room("#rust")), "current kept");
        for seq in 3..=9 {
            t.recv(say("#lobby", seq, "bob", seq, "x"));
        }
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

    #[test]
    fn a_transport_that_never_opens_is_given_up_on() {
        let mut t = T::new(Transport::Messages);
        t.events();
        assert_eq!(t.s.poll_timeout(), Some(t.now + CONNECT_TIMEOUT));
        t.run_to_deadline();
        let evs = t.events();
        assert!(evs.contains(&Event::Close));
        assert!(matches!(
            evs.last(),
            Some(Event::State(ConnState::Reconnecting { attempt: 1, .. }))
        ));
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
        assert!(matches!(&evs[2], Event::Info(m) if m.contains("1 unacknowledged")));
        assert_eq!(t.s.poll_timeout(), None);
    }

    #[test]
    fn version_mismatch_closes_without_retry() {
        let mut t = T::new(Transport::Stream);
        t.s.handle_connected(t.now);
        t.events();
        t.recv(ServerMsg::Error {
            kind: ErrorKind::Version,
            id: None,
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
                    text: "this server speaks version 2".into()
                },
                Event::Close,
                Event::State(ConnState::Closed),
            ]
        );
        assert_eq!(t.s.poll_timeout(), None);
    }

    #[test]
    fn bye_is_shown_then_reconnects() {
        let mut t = T::ready(Transport::Messages);
        t.recv(ServerMsg::Bye {
            reason: "server shutting down".into(),
        });
        let evs = t.events();
        assert_eq!(evs[0], Event::Info("server shutting down".into()));
        assert_eq!(evs[1], Event::Close);
        assert_eq!(evs.len(), 3, "one notice: {evs:?}");
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

    #[test]
    fn pending_is_bounded_and_says_so() {
        let mut t = T::ready(Transport::Stream);
        t.s.handle_disconnected("gone", t.now);
        t.events();
        for i in 0..SESSION_MAX_PENDING {
            t.s.handle_input(&format!("m{i}"), t.now);
        }
        assert!(errors(&t.events()).is_empty());
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
        assert_eq!(t.s.current_room(), Some(&room("#lobby")));
        t.joined("#rust", 1);
        assert_eq!(
            t.s.current_room(),
            Some(&room("#rust")),
            "/join made it current"
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
            id: None,
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
            assert!(s.events.len() <= MAX_QUEUED_EVENTS);
            assert!(s.transmits.len() <= MAX_QUEUED_TRANSMITS);
            assert!(s.pending.len() <= SESSION_MAX_PENDING);
            assert!(s.decoder.buffered() <= LEN_PREFIX + 2 * MAX_FRAME);
            assert!(s.rooms.len() <= MAX_ROOMS_PER_USER);
            assert!(s.rooms.iter().all(|r| r.gaps.len() <= MAX_OPEN_GAPS));
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
                prop_assert!(last_id <= t.s.last_id);
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
        assert!(t.s.room_state(&room("#lobby")).unwrap().gaps.is_empty());
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
        assert_eq!(t.s.current_room(), Some(&room("#lobby")));
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
        let mut sends: Vec<(Millis, ClientMsg)> =
            t.sent().into_iter().map(|m| (t.now, m)).collect();
        assert_eq!(sends.len(), FLOOD_BURST as usize, "a burst goes at once");
        assert!(!t.s.is_settled());
        let start = t.now;
        while !t.s.outbox.is_empty() {
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
        let waiting = t.s.outbox.len();
        t.recv(ServerMsg::Ack { id: MsgId(50) });
        assert_eq!(t.s.outbox.len(), waiting - 1);
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
            evs.iter()
                .any(|e| matches!(e, Event::Info(m) if m.contains("did not welcome"))),
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
}
