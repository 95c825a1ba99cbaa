//! The client's state machine, shared by the CLI and the browser page: handshake, typed input
//! (through [`crate::command::parse`]), message ids and resend, last seq per room, resume, gap
//! refill, keepalive and the decision when to reconnect (backoff with seeded jitter).
//!
//! # Driving a `Session`
//! The driver loops: drain [`Session::poll_event`] (UI events, and the instructions
//! [`Event::Connect`] / [`Event::Close`]) and [`Session::poll_transmit`] (bytes to send), then
//! waits for input, bytes, or [`Session::poll_timeout`]. On `Connect` it opens a transport and
//! calls [`Session::handle_connected`] or [`Session::handle_disconnected`]; bytes read go to
//! [`Session::handle_bytes`] (TCP) or [`Session::handle_message`] (one WebSocket message, a batch of whole frames).
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

mod room;
mod timers;

pub use room::RoomState;

use crate::command::{self, Command, HELP, Input};
use crate::flood::Bucket;
use crate::limits::{
    CLIENT_PING_AFTER, CONNECT_TIMEOUT, FLOOD_BURST, FLOOD_REFILL, MAX_ANNOUNCED_BURST,
    MAX_ANNOUNCED_REFILL, MAX_DEFERRED, MAX_DETAIL_CHARS, MAX_FRAME, MAX_MEMBERS_LISTED,
    MAX_PACED_COMMANDS, MAX_QUEUED_EVENTS, MAX_QUEUED_TRANSMITS, MAX_ROOMS_LISTED,
    MAX_ROOMS_PER_USER, PING_TIMEOUT, RECONNECT_MAX, RECONNECT_MIN, SESSION_MAX_PENDING,
};
use crate::time::Millis;
use crate::types::{MsgId, Nick, ResumeToken, RoomName, Seq, Text, sanitize};
use crate::wire::{
    self, ClientMsg, DirectMsg, ErrorKind, EventKind, FrameDecoder, MAGIC, PROTOCOL_VERSION, Re,
    Resume, RoomEvent, RoomInfo, ServerMsg, WireError,
};
use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::VecDeque;
use timers::{Timer, Timers};

/// How the session's bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A byte stream (TCP): preamble, then length-prefixed frames.
    Stream,
    /// A message transport (WebSocket through natter-bridge). Each transmit is one frame payload
    /// with no prefix and no preamble (the bridge adds them). Each received message is a batch of
    /// one or more whole frames, each with its length prefix, exactly as the server wrote them
    /// (the bridge cuts the server's stream only at frame boundaries).
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
        /// The answer to a `/who` (show it); false for the session's own refresh after a
        /// reconnect (update the member list quietly).
        asked: bool,
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
    /// A message we typed (say, action or DM) has its id and is on its way: sent now, or after
    /// the next welcome. [`Event::Settled`] with the same id follows. UIs may show it as pending.
    Queued {
        /// Its id.
        id: MsgId,
        /// Where it goes.
        to: Target,
        /// An action (`/me`) rather than a plain message.
        act: bool,
        /// What it says.
        text: Text,
    },
    /// The message `id` is settled: the server acknowledged it (`delivered`), or it was refused
    /// or the session ended first (not delivered; an [`Event::Error`] or [`Event::Info`] says why).
    Settled {
        /// Its id.
        id: MsgId,
        /// Whether the server took it.
        delivered: bool,
    },
}

/// Where a typed message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A room.
    Room(RoomName),
    /// One user (a direct message).
    Nick(Nick),
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

/// The client's copy of the hub's flood control (the hub's default burst and refill unless
/// told otherwise): what the session sends never has to wait in the server's flood queue, let
/// alone be refused, even when hundreds of messages are resent after a reconnect or piped in at
/// once. A refill of zero turns pacing off.
#[derive(Debug, Clone)]
struct Pacing {
    burst: u32,
    refill: Millis,
    bucket: Bucket,
}

impl Pacing {
    fn new(burst: u32, refill: Millis, now: Millis) -> Pacing {
        Pacing {
            burst,
            refill,
            bucket: Bucket::new(burst, now),
        }
    }

    fn take(&mut self, now: Millis) -> bool {
        self.bucket.take(self.burst, self.refill, now)
    }

    fn next_token_at(&self) -> Millis {
        self.bucket.next_token_at(self.refill)
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
    /// Why the session ended for good, when it was not `/quit`.
    fatal: Option<String>,
    deferred: VecDeque<ClientMsg>,
    /// Waiting for flood tokens (only while welcomed).
    outbox: VecDeque<Out>,
    bucket: Pacing,
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
            fatal: None,
            deferred: VecDeque::new(),
            outbox: VecDeque::new(),
            bucket: Pacing::new(FLOOD_BURST, FLOOD_REFILL, now),
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
        self.bucket = Pacing::new(self.bucket.burst, self.bucket.refill, now);
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

    /// One message read from a message transport: one or more whole frames, each with its
    /// length prefix. A message that is empty, ends inside a frame or announces an oversize
    /// frame is refused before any of it is acted on; the frames are then handled in order, as
    /// [`Session::handle_bytes`] would, until one fails to decode.
    pub fn handle_message(&mut self, batch: &[u8], now: Millis) {
        self.now = self.now.max(now);
        if !self.is_open() {
            return;
        }
        self.heard(now);
        let whole = match wire::whole_frames_len(batch) {
            Ok(0) if batch.is_empty() => Err(WireError::EmptyBatch),
            Ok(n) if n < batch.len() => Err(WireError::PartialFrame(batch.len() - n)),
            Ok(n) => Ok(n),
            Err(e) => Err(e),
        };
        if let Err(e) = whole {
            return self.bad_input(&e, now);
        }
        for payload in wire::frame_payloads(batch) {
            let msg = payload.and_then(wire::decode_payload::<ServerMsg>);
            match msg {
                Ok(msg) => self.on_msg(msg, now),
                Err(e) => return self.bad_input(&e, now),
            }
            if !self.is_open() {
                return;
            }
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
        if !self.set_current(room) {
            return false;
        }
        // The user chose where to talk: a join still in flight no longer claims typed chat.
        self.make_current = None;
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
        self.bucket = Pacing::new(burst.max(1), refill, now);
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

    /// The network is probably back (the browser's `online` event, a user's "retry" key): if
    /// waiting to reconnect, try now instead of at the end of the backoff. Otherwise nothing.
    pub fn reconnect_now(&mut self, now: Millis) {
        self.now = self.now.max(now);
        if let Phase::Waiting { .. } = self.phase {
            self.start_connect(now);
        }
    }

    /// Why the session ended for good when that was not the user's `/quit` (e.g. the server
    /// speaks another protocol version): a line-mode client exits non-zero on it.
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// Makes `room` (which we are in) current and clears its unread count.
    fn set_current(&mut self, room: &RoomName) -> bool {
        let Some(state) = self.rooms.iter_mut().find(|r| &r.room == room) else {
            return false;
        };
        state.unread = 0;
        self.current = Some(room.clone());
        true
    }

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

    /// Ends the session: `fatal` says why when it was not the user's `/quit`.
    fn close_for_good(&mut self, fatal: Option<String>) {
        if self.phase == Phase::Closed {
            return;
        }
        self.fatal = fatal;
        self.event(Event::Close);
        self.phase = Phase::Closed;
        self.outbox.clear();
        self.timers.stop_all();
        self.decoder = FrameDecoder::new();
        self.event(Event::State(ConnState::Closed));
        if !self.pending.is_empty() {
            let n = self.pending.len();
            for p in core::mem::take(&mut self.pending) {
                self.event(Event::Settled {
                    id: p.id,
                    delivered: false,
                });
            }
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
        // A room being joined on the user's word comes first: what is typed right after `/join`
        // is meant for it, and pacing keeps the join ahead of the message on the wire.
        let room = self
            .make_current
            .clone()
            .or_else(|| self.current.clone())
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
        let queued = match &msg {
            ClientMsg::Say { room, text, .. } => Some((Target::Room(room.clone()), false, text)),
            ClientMsg::Act { room, text, .. } => Some((Target::Room(room.clone()), true, text)),
            ClientMsg::Msg { to, text, .. } => Some((Target::Nick(to.clone()), false, text)),
            _ => None,
        };
        if let Some((to, act, text)) = queued {
            let text = text.clone();
            self.event(Event::Queued { id, to, act, text });
        }
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
                self.close_for_good(None);
            }
            Command::History { room, count } => {
                if let Some(room) = self.room_or_current(room) {
                    let limit = count.unwrap_or(crate::limits::HISTORY_LINES_DEFAULT);
                    let before = Seq(0);
                    self.send_or_defer(ClientMsg::Older {
                        room,
                        before,
                        limit,
                    });
                }
            }
            Command::Search { room, words } => {
                self.send_or_defer(ClientMsg::Search { room, words });
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
            self.set_current(&room);
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
                limits,
            } => {
                // Pace by what this server enforces, not by compiled-in defaults; a server that
                // announces absurd pacing cannot stall the session for longer than a few seconds.
                let burst = limits.flood_burst.clamp(1, MAX_ANNOUNCED_BURST);
                let refill = limits.flood_refill.min(MAX_ANNOUNCED_REFILL);
                if burst != self.bucket.burst || refill != self.bucket.refill {
                    self.set_flood_limits(burst, refill, now);
                }
                self.on_welcome(nick, token, resumed)
            }
            ServerMsg::Joined {
                room,
                topic,
                members,
                seq,
            } => self.on_joined(room, topic, members, seq),
            ServerMsg::Parted { room } => self.on_parted(&room),
            ServerMsg::Event(ev) => self.on_room_event(ev),
            ServerMsg::Direct(dm) => {
                let mine = (dm.from.folded() == self.nick.folded()).then_some(dm.id);
                self.event(Event::Direct(dm));
                if let Some(id) = mine {
                    self.ack(id);
                }
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
                // The hub sends a member list only to answer a `who`.
                self.event(Event::Members {
                    room,
                    members,
                    asked: true,
                });
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
            ServerMsg::Error { kind, re, detail } => self.on_error(kind, re, &detail),
            ServerMsg::Ping { token } => self.send(&ClientMsg::Pong { token }),
            ServerMsg::Pong { .. } => {}
            msg @ (ServerMsg::Past(_)
            | ServerMsg::PastEnd { .. }
            | ServerMsg::Found(_)
            | ServerMsg::FoundEnd { .. }) => {
                for line in crate::render::reply_lines(&msg, Some(&self.nick), None) {
                    self.info(line);
                }
            }
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
                asked: false,
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
            self.set_current(&room);
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
        // The line itself first, then the news that it settled (UIs swap a placeholder for it).
        self.event(Event::Room(ev));
        if let Some(id) = acked {
            self.ack(id);
        }
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
        self.settle(id, true);
    }

    /// Forgets pending message `id`: acknowledged, or refused (not to be resent either).
    fn settle(&mut self, id: MsgId, delivered: bool) {
        if let Some(i) = self.pending.iter().position(|p| p.id == id) {
            self.pending.remove(i);
            // Not yet (re)sent: no need to any more.
            self.outbox
                .retain(|o| !matches!(o, Out::Msg(m) if *m == id));
            self.event(Event::Settled { id, delivered });
        }
    }

    fn on_error(&mut self, kind: ErrorKind, re: Re, detail: &str) {
        let mut id = None;
        match re {
            Re::Msg(m) => id = Some(m),
            Re::Room(room) => {
                // A refused join is not waited for; a refused part means we are not there.
                if let Some(i) = self.joining.iter().position(|r| *r == room) {
                    self.joining.remove(i);
                    if self.make_current.as_ref() == Some(&room) {
                        self.make_current = None;
                    }
                }
                if kind == ErrorKind::NotInRoom
                    && let Some(i) = self.parting.iter().position(|r| *r == room)
                {
                    self.parting.remove(i);
                    self.on_parted_quietly(&room);
                }
            }
            Re::Conn | Re::Nick(_) => {}
        }
        self.event(Event::Error {
            kind: Some(kind),
            text: clean(detail),
        });
        if let Some(id) = id {
            // Refused: it will not be delivered, so it is not resent either.
            self.settle(id, false);
        }
        if kind == ErrorKind::Version {
            self.close_for_good(Some(clean(detail)));
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
mod tests;
