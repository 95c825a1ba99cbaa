//! The client's protocol machine, shared by the CLI and the browser page: the link (handshake,
//! keepalive, reconnect with backoff, resume), message ids and resends, pacing by the limits the
//! server announced, and seq/gap tracking per room. What a person sees (rooms, members, topics,
//! unread counts, pending lines, words) is the chat model's ([`crate::chat::Chat`]), which folds
//! this machine's events.
//!
//! A `Session` delegates to small parts, each one idea:
//! - `link`: the transport's lifecycle, the frame decoder, bytes for the driver, keepalive and
//!   the reconnect backoff;
//! - `outgoing`: message ids, messages kept until acknowledged, commands waiting for the welcome,
//!   and the flood pacing;
//! - `rooms`: rooms we are in, joining or leaving, and which seqs of each were emitted;
//! - `asks`: requests answered by several messages (scrollback pages, searches), gathered and
//!   handed on whole;
//! - `account`: the account signed in to, the credentials kept to sign in again, and the
//!   account request waiting for its answer;
//! - `input` and `server`: what typed lines and server messages do to those parts.
//!
//! # Driving a `Session`
//! The driver loops: drain [`Session::poll_event`] (UI events, and the instructions
//! [`Event::Connect`] / [`Event::Close`]) and [`Session::poll_transmit`] (bytes to send), then
//! waits for input, bytes, or [`Session::poll_timeout`]. On `Connect` it opens a transport and
//! calls [`Session::handle_connected`] or [`Session::handle_disconnected`]; bytes read go to
//! [`Session::handle_bytes`] (TCP) or [`Session::handle_message`] (one WebSocket message, a batch
//! of whole frames). Typed lines go to [`Session::handle_input_in`] with the conversation they
//! were typed in (a UI asks its [`crate::chat::Chat`] which), or to [`Session::handle_input`].
//!
//! After [`Event::Close`] the driver writes what it polled (including what it polls right after
//! the event, such as a quit), drops that transport and does not report its end: the session has
//! already scheduled what comes next. Bytes are only queued while a transport is open; what was
//! typed meanwhile waits in the session (bounded) and is sent after the next welcome.
//!
//! # What the session decides
//! - Reconnect: after a loss (reported, keepalive timeout, bad bytes, `Bye`, or no welcome
//!   within [`CONNECT_TIMEOUT`](crate::limits::CONNECT_TIMEOUT)) it waits
//!   `RECONNECT_MIN·2^(n-1)` capped at `RECONNECT_MAX`, jittered into the upper half by a ChaCha
//!   RNG seeded from [`SessionConfig::seed`]. A welcome resets the count. `/quit` and a protocol
//!   version mismatch end the session for good. With several server addresses (a cluster's
//!   nodes, [`Session::set_servers`]) a failed attempt moves to the next address at once, and the
//!   backoff is waited only after every address failed in a row; a `Bye` after the welcome (the
//!   server sent us away: it shuts down, or a cluster moved our account's user to another node)
//!   tries the next address first, after the usual wait.
//! - Pacing: commands and messages go out at the flood rate the server announced in its welcome
//!   (its `Limits`; the hub's defaults until then), in the order typed, so the server never has
//!   to refuse any. Everything the server answers costs it a token: history refills, scrollback
//!   and searches are paced like commands, and a keepalive ping takes a token when one is there
//!   (it is never held back).
//! - Resume: the hello carries the last token and the last seq seen per room. Resumed: pending
//!   messages are resent in order (the server acknowledges ones it already had). Not resumed: the
//!   user is told, rooms are rejoined, and what the rejoin's replay does not cover is treated as a
//!   gap.
//! - Room events are emitted once per seq: above the last seen, or inside a gap being refilled
//!   ([`Event::Gap`], then a history request; asked again only while the refill makes progress).
//! - Scrollback ([`Session::older`], `/history`) and search ([`Session::search`], `/search`):
//!   one page per room and one search in flight, their answers handed on whole
//!   ([`Event::Past`], [`Event::Found`]); past events never count as live ones. What is in
//!   flight when the link drops is asked again after the next welcome.
//! - Accounts ([`Session::sign_in`], [`Session::register`], [`Session::sign_out`], and
//!   `/login`, `/register`, `/logout`, `/password`): the credentials are kept in memory. A
//!   welcome that is not a resume makes the connection a guest's, and the session signs in
//!   again by itself (the device key first, else the password) before rejoining rooms. A
//!   refused key falls back to the password once; refused credentials are forgotten. Read
//!   markers ([`Session::read`]) go out only while signed in.
//! - Errors: the server's `re` names the request an error answers; the session matches it to
//!   the message, join, part or nick change it sent and says which in [`Event::Error`]'s
//!   [`About`].

mod account;
mod asks;
mod event;
mod input;
mod link;
mod outgoing;
mod rooms;
mod server;
mod timers;

pub use event::{About, ChatKind, ConnState, Event, Target};

use crate::limits::{MAX_DETAIL_CHARS, MAX_FRAME, MAX_QUEUED_EVENTS};
use crate::time::Millis;
use crate::types::{
    DeviceKey, DeviceLabel, MsgId, Nick, Password, ResumeToken, RoomName, Seq, Text, sanitize,
};
use crate::wire::{
    self, ClientMsg, Limits, ModAction, PROTOCOL_VERSION, Proof, Resume, ServerMsg, WireError,
};
use account::Account;
use asks::Asks;
use bytes::Bytes;
use link::{FirstBytes, Link, Phase, SendError};
use outgoing::{Full, Outgoing};
use rooms::Rooms;
use std::collections::VecDeque;

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

/// What a new session needs to take a guest's session over where it stands, within the
/// server's resume window: a reloaded page keeps it for the tab ([`Session::resumable`],
/// [`Session::resume`]). The token is a secret: it opens the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumable {
    /// The nick the server gave the session.
    pub nick: Nick,
    /// The latest resume token.
    pub token: ResumeToken,
    /// The rooms it is in, each with the last seq it saw there.
    pub rooms: Vec<(RoomName, Seq)>,
    /// The id of the last message it numbered. The server takes a message whose id is not
    /// above the session's last for a resend of one it has (acknowledged, not said again), so
    /// the new session numbers its messages after this one.
    pub last_id: MsgId,
    /// The keys given for its rooms (`/join #room KEY`): should the resume fail (past the
    /// server's resume window), the new session joins those rooms again with them, as one that
    /// reconnects does, or a `+k` room would refuse it. Secrets, as the token is.
    pub keys: Vec<(RoomName, Text)>,
}

impl Resumable {
    /// Whether a session kept when its front-end went at `kept_at` (a page's copy of it when
    /// its tab closed) is still worth resuming at `now`: within the server's resume window
    /// ([`RESUME_GRACE`](crate::limits::RESUME_GRACE)), counted either way (a clock set back
    /// since is as far off as one set forward). Past it the server has ended the session, and
    /// a front-end that another tab's copy would have taken over starts afresh instead.
    pub fn fresh(kept_at: Millis, now: Millis) -> bool {
        let apart = if now >= kept_at {
            now - kept_at
        } else {
            kept_at - now
        };
        apart < crate::limits::RESUME_GRACE
    }
}

/// The resume state the handshake carries from one connection to the next, and what the
/// server announced.
#[derive(Debug, Default)]
struct Handshake {
    /// From the last welcome; presented in the next hello.
    token: Option<ResumeToken>,
    /// A welcome has been seen at least once (so the configured rooms were asked for).
    ever_welcomed: bool,
    /// The last welcome resumed the earlier session.
    resumed: bool,
    /// Signed in since the last welcome: the account's rooms come as `Joined` naming each
    /// room's latest seq (the account's user did not join them again), so a room we were in
    /// with nothing new since is continued, not taken for a new one (whose replay we would
    /// show again).
    signed_in_here: bool,
    /// The token was dropped by a sign-out: the next welcome is a guest's on purpose, not a
    /// resume that failed.
    signed_out: bool,
    /// The limits the server announced in its welcome (the hub's defaults until then).
    limits: Limits,
    /// The protocol version the server said in its last welcome (`None` before one): what
    /// messages it knows (notices from [`wire::NOTICE_VERSION`] on).
    version: Option<u16>,
}

/// Typed asks for a room's settings or ban list remembered until answered: a person types a
/// few; more unanswered than this only makes the oldest answers quiet.
const TYPED_ASKS: usize = 16;

/// UI events, bounded: a driver that stops draining loses events, counted, and is told.
#[derive(Debug, Default)]
struct Events {
    queue: VecDeque<Event>,
    dropped: u64,
}

impl Events {
    fn push(&mut self, ev: Event) {
        if self.queue.len() >= MAX_QUEUED_EVENTS {
            self.dropped += 1;
            return;
        }
        self.queue.push_back(ev);
    }

    fn pop(&mut self) -> Option<Event> {
        if let Some(ev) = self.queue.pop_front() {
            return Some(ev);
        }
        if self.dropped > 0 {
            let n = std::mem::take(&mut self.dropped);
            return Some(Event::Error {
                kind: None,
                about: About::Session,
                text: format!("{n} events were dropped because the display fell behind"),
            });
        }
        None
    }
}

/// A client session. See the module docs for how to drive it.
#[derive(Debug)]
pub struct Session {
    /// Our nick (the wanted one until welcomed).
    nick: Nick,
    /// Nicks we had while lines we said waited for their echo, oldest first (a few): an echo
    /// from one of them is ours all the same (a cluster tells our rename before the room's log
    /// brings our line back; a resume after a rename replays it). Forgotten once nothing waits.
    former_nicks: Vec<Nick>,
    link: Link,
    handshake: Handshake,
    out: Outgoing,
    rooms: Rooms,
    asks: Asks,
    account: Account,
    events: Events,
    /// Why the session ended for good, when it was not `/quit`.
    fatal: Option<String>,
    /// The server's own words for the last refused account request ([`Session::refusal_detail`]).
    refusal_detail: Option<String>,
    /// Why the latest connection attempt came to nothing (see [`Session::last_failure`]).
    last_failure: Option<String>,
    /// Rooms whose settings or ban list were asked for by a typed command, oldest first:
    /// their answers are shown (`asked`). Capped at [`TYPED_ASKS`].
    typed_asks: VecDeque<(RoomName, ModAction)>,
    /// Rooms whose member list we asked for ourselves (a big room small again: see
    /// [`Session::refresh_members`]), oldest first: their answers refresh the list without a
    /// line. Forgotten when the link drops (a resume refreshes every list anyway).
    quiet_who: VecDeque<RoomName>,
    /// A ping that tells when everything sent before it was answered: see
    /// [`Session::all_answered`].
    barrier: Barrier,
    /// Barrier pings sent: each one's token differs, so a late pong answers only its own.
    barriers: u64,
    /// A typed command went out since the last barrier passed: its answer (a `/who`'s list, a
    /// refused `/kick`) has no acknowledgement to wait for. See [`Session::answered_in_turn`].
    commanded: bool,
    /// What this device is called ([`Session::set_device_label`]): said after each welcome
    /// of a server that takes it, so that a device key issued to it is labelled.
    device_label: Option<DeviceLabel>,
    /// A typed `/login` or `/register` asks for a device key ([`Session::set_remember`]).
    remember: bool,
    /// The latest `now` passed in (for decisions made deep inside a call).
    now: Millis,
}

/// Where [`Session::all_answered`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Barrier {
    /// Not asked since the last input (or connection).
    Unasked,
    /// A ping with this token is on its way.
    Waiting(u64),
    /// Its pong came: everything before it was answered.
    Passed,
}

/// Barrier pings' tokens: apart from keepalive pings', which count up from 1.
const BARRIER_TOKENS: u64 = 1 << 63;

impl Session {
    /// A new session; its first events are [`Event::State`]`(Connecting)` and [`Event::Connect`].
    pub fn new(config: SessionConfig, now: Millis) -> Session {
        let mut rooms = Rooms::default();
        for room in config.rooms {
            rooms.join_asked(room, false);
        }
        let mut s = Session {
            nick: config.nick,
            former_nicks: Vec::new(),
            link: Link::new(config.transport, config.seed),
            handshake: Handshake::default(),
            out: Outgoing::new(now),
            rooms,
            asks: Asks::default(),
            account: Account::default(),
            events: Events::default(),
            fatal: None,
            refusal_detail: None,
            last_failure: None,
            typed_asks: VecDeque::new(),
            quiet_who: VecDeque::new(),
            barrier: Barrier::Unasked,
            barriers: 0,
            commanded: false,
            device_label: None,
            remember: false,
            now,
        };
        s.start_connect(now);
        s
    }

    /// A session that resumes an earlier one (`from`, see [`Session::resumable`]) instead of
    /// starting a new one: its hello names `from`'s token and rooms, so the server, within its
    /// resume window, gives the same nick, the same rooms (each a `Joined`, new to this
    /// session and its UI) and exactly the events `from` did not see. Past the window (or with
    /// a token the server no longer takes) it starts fresh, as `from.nick`, joining `from`'s
    /// rooms, and says so. `config`'s nick and rooms are not used: `from` has them.
    pub fn resume(config: SessionConfig, from: Resumable, now: Millis) -> Session {
        let config = SessionConfig {
            nick: from.nick,
            rooms: Vec::new(),
            ..config
        };
        let mut s = Session::new(config, now);
        s.handshake.token = Some(from.token);
        s.handshake.ever_welcomed = true;
        s.rooms.restore(from.rooms);
        for (room, key) in from.keys {
            s.rooms.keep_key(&room, key);
        }
        s.out.number_after(from.last_id);
        s
    }

    /// What a new session needs to resume this one ([`Session::resume`]): a guest's session
    /// that the server welcomed and that has not ended. `None` for one signed in to an account
    /// (a resume would not bring back what the session knows of it: signing in again does),
    /// or once it has ended (`/quit`, or for good).
    pub fn resumable(&self) -> Option<Resumable> {
        if self.link.phase() == Phase::Closed
            || !self.handshake.ever_welcomed
            || self.account.signed_in().is_some()
            || self.account.is_asking()
        {
            return None;
        }
        Some(Resumable {
            nick: self.nick.clone(),
            token: self.handshake.token.clone()?,
            rooms: self.rooms.resume_point(),
            last_id: self.out.last_numbered(),
            keys: self.rooms.keys().to_vec(),
        })
    }

    /// The transport is open: the preamble (stream) and hello, with resume data if any, are queued.
    pub fn handle_connected(&mut self, now: Millis) {
        self.tick(now);
        if !self.link.opened(now) {
            tracing::debug!(phase = ?self.link.phase(), "handle_connected ignored");
            return;
        }
        self.out.link_opened(now);
        let resume = self.handshake.token.clone().map(|token| Resume {
            token,
            rooms: self.rooms.resume_point(),
        });
        self.send(&ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            nick: self.nick.clone(),
            resume,
        });
    }

    /// The transport failed to open, or was lost. A reconnect is scheduled (unless closed).
    /// `reason` is said to the user: for a transport that never opened, the whole story
    /// (`could not connect to HOST:PORT: Connection refused`), followed by when the next attempt
    /// is; for one that was open, what happened to it (`the server closed the connection`).
    pub fn handle_disconnected(&mut self, reason: &str, now: Millis) {
        self.tick(now);
        match self.link.phase() {
            Phase::Opening => self.failed(&clean(reason), now),
            // Through a bridge, a WebSocket that brought nothing before it closed never reached
            // the server: the driver's reason (the bridge's close) is the whole story.
            Phase::Open { welcomed: false } if self.link.bridge_unanswered() => {
                self.failed(&clean(reason), now)
            }
            Phase::Open { welcomed: false } => {
                self.failed(
                    &format!("the server did not welcome us: {}", clean(reason)),
                    now,
                );
            }
            // The close a sign-out asked for: said already (`Event::SignedOut`).
            Phase::Open { welcomed: true } if self.handshake.signed_out => {
                self.reconnect_as_asked(now);
            }
            Phase::Open { welcomed: true } => {
                self.info(crate::render::lost_words(&clean(reason)));
                self.schedule_reconnect(now);
            }
            Phase::Waiting { .. } | Phase::Closed => {}
        }
    }

    /// Bytes read from a stream transport.
    pub fn handle_bytes(&mut self, data: &[u8], now: Millis) {
        self.tick(now);
        if !self.link.is_open() || data.is_empty() {
            return;
        }
        self.link.heard(now);
        let first = self.link.first_bytes(data);
        if first == FirstBytes::NotNatter {
            // An IRC listener, a web server...: the wrong port, not a late preamble. Said with
            // what it said, and tried again with the usual backoff (it may be natter's port
            // after a restart or a fix).
            let why = if matches!(data.first(), Some(0x15 | 0x16)) {
                "this port speaks TLS: connect with natters://HOST:PORT (or --tls)".to_owned()
            } else {
                let line = data.split(|b| *b == b'\n').next().unwrap_or_default();
                let line = &line[..line.len().min(80)];
                let said = clean(String::from_utf8_lossy(line).trim_end());
                format!(
                    "this port does not speak natter's protocol (an IRC or web port?); \
                     it said \"{said}\""
                )
            };
            tracing::info!(%why, "the server does not speak natter's protocol");
            self.event(Event::Close);
            self.failed(&why, now);
            return;
        }
        if first == FirstBytes::TookUsForText {
            // Greeted as a person on `nc` (our preamble came after the server's detection
            // wait): the server closes that session when the preamble arrives; a new connection
            // whose preamble comes in time is all it takes, so no backoff.
            tracing::info!("the server took us for a text client (our preamble came late)");
            let line = data.split(|b| *b == b'\n').next().unwrap_or_default();
            let line = &line[..line.len().min(80)];
            let said = clean(String::from_utf8_lossy(line).trim_end());
            self.last_failure = Some(format!(
                "the server took us for a text client (our preamble came late); it said \"{said}\""
            ));
            self.info(
                "the server took us for a text client (our preamble came late); reconnecting",
            );
            self.event(Event::Close);
            self.reconnect_after_loss(now, true);
            return;
        }
        // Fed a frame's worth at a time, so the decoder holds at most one frame plus one chunk
        // however much the driver passes in.
        for chunk in data.chunks(MAX_FRAME) {
            self.link.decoder().extend(chunk);
            loop {
                let payload = match self.link.decoder().next_frame() {
                    Ok(Some(p)) => p,
                    Ok(None) => break,
                    Err(e) => return self.bad_input(&e, now),
                };
                match wire::decode_payload::<ServerMsg>(&payload) {
                    Ok(msg) => self.on_msg(msg, now),
                    Err(e) => return self.bad_input(&e, now),
                }
                if !self.link.is_open() {
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
        self.tick(now);
        if !self.link.is_open() {
            return;
        }
        self.link.heard(now);
        self.link.heard_message();
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
            if !self.link.is_open() {
                return;
            }
        }
    }

    /// A deadline from [`Session::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.tick(now);
        let due = self.link.expired(now);
        if let Some(opened) = due.connect {
            let why = if opened {
                "the server did not welcome us"
            } else {
                "could not connect: timed out"
            };
            self.lost(why, now);
        }
        if due.dead {
            self.lost("the server stopped answering", now);
        }
        if let Some(token) = due.ping {
            // The server meters pings like commands: count it, but never hold it back.
            self.out.charge(now);
            self.send(&ClientMsg::Ping { token });
        }
        if self.out.next_deadline().is_some_and(|t| t <= now) {
            self.run_outbox(now);
        }
        if due.reconnect {
            self.start_connect(now);
        }
        if self.link.is_welcomed()
            && let Some(msg) = self.account.retry_due(now)
        {
            self.pace(msg);
        }
    }

    /// Next bytes (stream) or message (message transport) to send.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.link.poll_transmit()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// When [`Session::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let welcomed = self.link.is_welcomed();
        let flood = self.out.next_deadline().filter(|_| welcomed);
        let retry = self.account.retry_at().filter(|_| welcomed);
        [self.link.next_deadline(), flood, retry]
            .into_iter()
            .flatten()
            .min()
    }

    /// Our nick (the wanted one until welcomed).
    pub fn nick(&self) -> &Nick {
        &self.nick
    }

    /// Rooms we are in, in join order.
    pub fn rooms(&self) -> Vec<RoomName> {
        self.rooms.names().cloned().collect()
    }

    /// Rooms whose join is asked for (sent, or to send at the welcome) and not yet answered,
    /// in the order asked: the rooms given to join at the start, before the first welcome.
    pub fn joining(&self) -> &[RoomName] {
        self.rooms.joining()
    }

    /// Connection state.
    pub fn state(&self) -> ConnState {
        match self.link.phase() {
            Phase::Opening | Phase::Open { welcomed: false } => ConnState::Connecting,
            Phase::Open { welcomed: true } => ConnState::Connected,
            Phase::Waiting { at, attempt, lost } => ConnState::Reconnecting { at, attempt, lost },
            Phase::Closed => ConnState::Closed,
        }
    }

    /// True when connected and nothing we sent awaits the server's answer (messages acknowledged,
    /// joins answered, scrollback and searches answered, a sign-in answered): a line-mode client
    /// may exit.
    pub fn is_settled(&self) -> bool {
        self.link.is_welcomed()
            && self.out.is_idle()
            && !self.account.is_asking()
            && self.account.retry_at().is_none()
            && !self.rooms.in_flight()
            && self.asks.is_empty()
    }

    /// Whether everything sent so far was answered, including what has no acknowledgement:
    /// questions (`/who`, `/rooms`, `/bans`, `/mode`) and moderation that may be refused. Once
    /// [`Session::is_settled`], the first call sends a ping; the server answers a connection's
    /// requests in order, so its pong comes after every answer before it, and then this is
    /// true (until more input). Line mode waits for it before it quits, so a script's last
    /// question is answered before the client leaves.
    pub fn all_answered(&mut self, now: Millis) -> bool {
        self.tick(now);
        if !self.is_settled() {
            return false;
        }
        match self.barrier {
            Barrier::Passed => true,
            Barrier::Waiting(_) => false,
            Barrier::Unasked => {
                self.barriers = self.barriers.wrapping_add(1);
                let token = BARRIER_TOKENS | (self.barriers & !BARRIER_TOKENS);
                // The server meters pings like commands: count it, as a keepalive is.
                self.out.charge(now);
                self.send(&ClientMsg::Ping { token });
                self.barrier = Barrier::Waiting(token);
                false
            }
        }
    }

    /// Whether the next line may be typed in turn (line mode's lockstep): everything before
    /// is [settled](Session::is_settled), and after a typed command (`/who`, `/bans`, `/kick`,
    /// `/register`) also [answered](Session::all_answered), so that its answer, or the
    /// server's refusal, is printed before anything the next line brings (a usage error the
    /// session says at once came before the refusal of the `/kick` typed above it). Chat lines
    /// cost no ping: their echo is their answer.
    pub fn answered_in_turn(&mut self, now: Millis) -> bool {
        if self.commanded {
            self.all_answered(now)
        } else {
            self.is_settled()
        }
    }

    /// Line mode's lockstep: whether the next typed line may be read now. Either everything
    /// before it is [answered in turn](Session::answered_in_turn), or there is no connection to
    /// wait for: reconnecting with [room](Session::has_room) to keep the line for after the
    /// reconnect, or closed for good (the line is then refused in words). While connecting it
    /// waits: the connect timeout bounds that, the keepalive a silent connection, and the
    /// front-end's own patience a reconnect with no room left ([`Session::holds_input_back`]),
    /// so a front-end that waits on this cannot wait for ever.
    pub fn takes_next_line(&mut self, now: Millis) -> bool {
        self.answered_in_turn(now)
            || match self.state() {
                ConnState::Reconnecting { .. } => self.has_room(),
                ConnState::Closed => true,
                ConnState::Connecting | ConnState::Connected => false,
            }
    }

    /// Line mode's lockstep, reconnecting with as many lines kept for the reconnect as the
    /// Session keeps: the next line waits in the input (a pipe holds it back from its writer)
    /// instead of being refused, until the reconnect or the end of the front-end's patience
    /// (natter's `--wait`).
    pub fn holds_input_back(&self) -> bool {
        matches!(self.state(), ConnState::Reconnecting { .. }) && !self.has_room()
    }

    /// A pong came: the barrier's, if it carries its token.
    pub(super) fn ponged(&mut self, token: u64) {
        if self.barrier == Barrier::Waiting(token) {
            self.barrier = Barrier::Passed;
            self.commanded = false;
        }
    }

    /// Input was typed: its answers are still to come.
    pub(super) fn unsettle_barrier(&mut self) {
        self.barrier = Barrier::Unasked;
    }

    /// Asks for the newest `limit` (at most
    /// [`HISTORY_PAGE_MAX`](crate::limits::HISTORY_PAGE_MAX)) events of `room` older than
    /// `before` (scrollback; a UI passes the oldest seq it holds, which its
    /// [`crate::chat::Chat::want_older`] says). [`Event::Older`] says it was asked,
    /// [`Event::Past`] brings the events; an [`Event::Error`] about [`About::Older`] says why
    /// not. One page per room at a time: asking again while one is on its way does nothing.
    /// Paced like every command; before the welcome it waits for it.
    pub fn older(&mut self, room: RoomName, before: Seq, limit: u16, now: Millis) {
        self.tick(now);
        self.ask_older(room, before, limit);
    }

    /// Searches the stored chat lines of `room` (`None`: every room we are in) for every word
    /// of `words`, taken literally. [`Event::Search`] says it was asked, [`Event::Found`] brings
    /// the hits; an [`Event::Error`] about [`About::Search`] says why not. One search at a
    /// time: one asked meanwhile goes when the one in flight is answered.
    pub fn search(&mut self, room: Option<RoomName>, words: Text, now: Millis) {
        self.tick(now);
        self.ask_search(room, words);
    }

    /// Signs in to `account` with its password or a device key from an earlier sign-in;
    /// `remember` asks the server for a device key ([`Event::SignedIn`] brings it). Sent now if
    /// welcomed, else at the welcome. The credentials are kept (in memory) to sign in again
    /// after a welcome that is not a resume; [`Event::Error`] about [`About::Account`] says why
    /// not (wrong credentials are then forgotten).
    pub fn sign_in(&mut self, account: Nick, proof: Proof, remember: bool, now: Millis) {
        self.tick(now);
        if self.closed_for(About::Account) {
            return;
        }
        let msg = self.account.sign_in(account, proof, remember);
        self.send_account(msg);
    }

    /// Signs in to `account` with a device key kept from an earlier remembered sign-in (a
    /// terminal client's key file), with `password` to fall back to once if the server refuses
    /// the key (forgotten with `/devices forget`, revoked by a password change); `remember`
    /// asks for a new key with that password. Without a password a refused key is the end of
    /// it ([`Event::Error`] about [`About::Account`]; with [`Session::require_sign_in`], the
    /// session's). [`Session::device_key`] is `None` once the key is refused.
    pub fn sign_in_with_key(
        &mut self,
        account: Nick,
        key: DeviceKey,
        password: Option<Password>,
        remember: bool,
        now: Millis,
    ) {
        self.tick(now);
        if self.closed_for(About::Account) {
            return;
        }
        let msg = self
            .account
            .sign_in_with_key(account, key, password, remember);
        self.send_account(msg);
    }

    /// Whether a typed `/login` or `/register` asks the server for a device key (`natter
    /// --remember`); false by default (a page asks with its own checkbox through
    /// [`Session::sign_in`] and [`Session::register`]).
    pub fn set_remember(&mut self, remember: bool) {
        self.remember = remember;
    }

    /// Registers our current nick as an account with `password`, and signs in (as
    /// [`Session::sign_in`], whose credentials it keeps).
    pub fn register(&mut self, password: Password, remember: bool, now: Millis) {
        self.tick(now);
        if self.closed_for(About::Account) {
            return;
        }
        let msg = self.account.register(self.nick.clone(), password, remember);
        self.send_account(msg);
    }

    /// A sign-in or registration is waiting for the server's answer, or for a busy server to
    /// be asked again ([`Session::sign_in`], [`Session::register`]): a UI that asked shows it
    /// as under way until this is false (signed in, or refused: [`Event::Error`] about
    /// [`About::Account`] said why).
    pub fn account_pending(&self) -> bool {
        self.account.is_asking() || self.account.retry_at().is_some()
    }

    /// The nick a registration whose answer a drop lost is being checked for: from that drop
    /// until the check's answer (a sign-in with the same name and password at the next
    /// welcome). An account [`Event::Error`] made meanwhile is the check's: a UI that words
    /// refusals its own way (the page's sign-in dialog) tells them by this, not by core's words.
    pub fn checking_registration(&self) -> Option<&Nick> {
        self.account.lost_registration()
    }

    /// Makes the session the account's only (`natter --login`): if the sign-in asked with
    /// [`Session::sign_in`] is refused (wrong credentials, throttled), here or when signing in
    /// again after a welcome that is not a resume, the session ends ([`Session::fatal`] says
    /// why) instead of going on as a guest. Signing out lifts it; the server signing this
    /// device out (the account removed, this device forgotten from another) ends the session.
    pub fn require_sign_in(&mut self) {
        self.account.require();
    }

    /// Makes the credentials given ([`Session::sign_in`], [`Session::sign_in_with_key`]) the
    /// session's own, as a configured client's are (`natter --login`): a link lost before the
    /// server answers signs in with them again once it is back, as IRC clients authenticate
    /// again at every connection, instead of giving the sign-in up and saying so (what a person
    /// waiting on a dialog is told). Refused or throttled, they end a session that requires
    /// them all the same. A sign-in asked later (a typed `/login`) is the person's again.
    pub fn keep_sign_in(&mut self) {
        self.account.keep();
    }

    /// Signs out on this device: the server revokes its device key and closes the connection,
    /// and the session comes back as a guest. The kept credentials are forgotten at once
    /// ([`Event::SignedOut`]).
    pub fn sign_out(&mut self, now: Millis) {
        self.tick(now);
        if self.closed_for(About::Account) {
            return;
        }
        let was_signed_in = self.account.signed_in().is_some();
        self.account.sign_out();
        if self.link.is_welcomed() {
            self.pace(ClientMsg::SignOut);
            if was_signed_in {
                // The token is the account's: the next connection starts as a guest.
                self.handshake.token = None;
                self.handshake.signed_out = true;
            }
        } else if let Err(why) = self.out.defer(ClientMsg::SignOut) {
            // Resumed as the account at the next welcome, and signed out then.
            self.queue_full(why);
        }
        self.event(Event::SignedOut);
    }

    /// The account has read `room` up to `seq` (a UI's chat model says when: see
    /// [`crate::chat::Chat::poll_read`]). Sent only while signed in and connected; a guest's
    /// reads are its own.
    pub fn read(&mut self, room: RoomName, seq: Seq, now: Millis) {
        self.tick(now);
        if self.account.signed_in().is_some() && self.link.is_welcomed() {
            self.pace(ClientMsg::Read { room, seq });
        }
    }

    /// The account has read every room up to the newest event the session was given: for a
    /// front-end that shows everything as it comes (line mode prints each event), told before
    /// it quits, so that the next sign-in does not bring the same lines again as missed (nc
    /// and IRC connections are read up to their close by the hub itself). Nothing for a guest.
    pub fn read_everything(&mut self, now: Millis) {
        self.tick(now);
        if self.account.signed_in().is_none() || !self.link.is_welcomed() {
            return;
        }
        // Not paced: a quit follows at once, unpaced too, and the server runs both in order.
        for (room, seq) in self.rooms.resume_point() {
            if seq > Seq::default() {
                self.send(&ClientMsg::Read { room, seq });
            }
        }
    }

    /// A founder's or operator's action in `room` ([`ModAction`]): kick, ban, mute, op, a mode
    /// change, or asking for the room's settings or ban list. Sent now if welcomed, else at the
    /// welcome (paced like every command). Done, it comes back as a room event (`Kick`,
    /// `Mode`) and fresh [`Event::Policy`]; refused, as an [`Event::Error`] about
    /// [`About::Room`] (not an operator, ...). The same as the typed `/kick`, `/ban`, `/mode`....
    pub fn moderate(&mut self, room: RoomName, action: ModAction, now: Millis) {
        self.tick(now);
        self.send_or_defer(ClientMsg::Moderate { room, action });
    }

    /// A typed `/mode #room` or `/bans`: its answer is shown.
    pub(super) fn typed_ask(&mut self, room: &RoomName, action: &ModAction) {
        if matches!(action, ModAction::Settings | ModAction::Bans) {
            if self.typed_asks.len() >= TYPED_ASKS {
                self.typed_asks.pop_front();
            }
            self.typed_asks.push_back((room.clone(), action.clone()));
        }
    }

    /// Asks for `room`'s member list for the model's own use: a big room's summary said it is
    /// small enough again for a list to hold every member, while the list we have still names
    /// those who left and lacks those who came while their joins and parts were only counted.
    /// The answer refreshes the list quietly (no line, as a typed `/who` gets).
    pub(super) fn refresh_members(&mut self, room: RoomName) {
        if self.quiet_who.contains(&room) {
            return;
        }
        if self.quiet_who.len() >= TYPED_ASKS {
            self.quiet_who.pop_front();
        }
        self.quiet_who.push_back(room.clone());
        self.send_or_defer(ClientMsg::Who { room });
    }

    /// Whether a member list answers our own ask ([`Session::refresh_members`]; forgets it).
    pub(super) fn answers_quiet_who(&mut self, room: &RoomName) -> bool {
        match self.quiet_who.iter().position(|r| r == room) {
            Some(i) => {
                self.quiet_who.remove(i);
                true
            }
            None => false,
        }
    }

    /// Whether a room's settings or ban list (`what`) answer a typed ask (and forgets it).
    pub(super) fn answers_typed(&mut self, room: &RoomName, what: &ModAction) -> bool {
        match self
            .typed_asks
            .iter()
            .position(|(r, a)| r == room && a == what)
        {
            Some(i) => {
                self.typed_asks.remove(i);
                true
            }
            None => false,
        }
    }

    /// The account this connection is signed in to, if any.
    pub fn account(&self) -> Option<&Nick> {
        self.account.signed_in()
    }

    /// The device key kept for signing in again, if the server issued or was given one.
    pub fn device_key(&self) -> Option<&DeviceKey> {
        self.account.key()
    }

    /// The highest seq seen in a room, `None` if none yet (or not in it).
    pub fn last_seq(&self, room: &RoomName) -> Option<Seq> {
        self.rooms.get(room).and_then(|r| r.last_seq)
    }

    /// Messages typed and not yet acknowledged by the server (sent or waiting to be).
    pub fn pending(&self) -> usize {
        self.out.pending_count()
    }

    /// Whether one more typed line can be kept while the Session waits for a connection,
    /// whether it turns out a message or a command (as many messages as
    /// [`crate::limits::SESSION_MAX_PENDING`] are kept for the reconnect; past that a line is
    /// refused). A front-end that can hold its input back (line mode reading a pipe) stops
    /// reading while this is false, so that nothing it was given is refused for want of room.
    pub fn has_room(&self) -> bool {
        self.out.has_room()
    }

    /// Paces sending at most `burst` commands at once, then one per `refill` (zero: no pacing),
    /// whatever the server announced. For tests and tools; a session paces by the server's
    /// welcome by itself. The next welcome's announcement replaces this.
    pub fn set_flood_limits(&mut self, burst: u32, refill: Millis, now: Millis) {
        self.tick(now);
        self.out.set_pacing(burst, refill, now);
    }

    /// The network is probably back (the browser's `online` event, a user's "retry" key): if
    /// waiting to reconnect, try now instead of at the end of the backoff. Otherwise nothing.
    pub fn reconnect_now(&mut self, now: Millis) {
        self.tick(now);
        if let Phase::Waiting { .. } = self.link.phase() {
            self.start_connect(now);
        }
    }

    /// The computer may have slept (the page saw its wall clock move far more than its
    /// monotonic one, which stops in a sleep, as every deadline on it does), or its network
    /// came back: a connection that looks open may be dead, and the keepalive would find out
    /// only after its silence counted on that stopped clock. Pings now, and gives a dead link up
    /// within [`WAKE_PING_TIMEOUT`] (so does a ping waiting for its answer already), not after
    /// the keepalive's [`PING_TIMEOUT`]. Waiting to reconnect, reconnects now, except right
    /// after a wake did: wakes one after another (a wall clock that jumps) never try more often
    /// than the backoff does, one attempt ahead at most. The network coming back, or a person
    /// asking, is [`Session::reconnect_now`], which always does.
    ///
    /// [`PING_TIMEOUT`]: crate::limits::PING_TIMEOUT
    /// [`WAKE_PING_TIMEOUT`]: crate::limits::WAKE_PING_TIMEOUT
    pub fn check_link(&mut self, now: Millis) {
        self.tick(now);
        if let Phase::Waiting { .. } = self.link.phase() {
            if self.link.woke(now) {
                self.start_connect(now);
            }
        } else if self.link.ping_now(now) {
            self.handle_timeout(now);
        }
    }

    /// Asks for the account's remembered devices (`/devices`): [`Event::Devices`] brings them;
    /// an [`Event::Error`] about [`About::Input`] says why not (not connected, a server too old).
    pub fn list_devices(&mut self, now: Millis) {
        self.tick(now);
        self.devices(ClientMsg::Devices);
    }

    /// Forgets the account's remembered device `id` (`/devices forget ID`): answered with a
    /// line of what it did ([`Event::Done`]), or an error.
    pub fn forget_device(&mut self, id: u32, now: Millis) {
        self.tick(now);
        self.devices(ClientMsg::ForgetDevice { id });
    }

    /// What this device is called (`natter on laptop`, `Chromium on Linux`): a device key the
    /// server issues to it (a sign-in or registration with `remember`) gets this label, which
    /// `/devices` shows on the account's devices. Said just before each sign-in or registration
    /// that asks for a key, to a server of [`wire::DEVICE_LABEL_VERSION`] or later (an older one
    /// keeps no labels and could not decode it); a key held already keeps its own label
    /// (`/devices name` changes it). `None` (the default) says nothing.
    pub fn set_device_label(&mut self, label: Option<DeviceLabel>) {
        self.device_label = label;
    }

    /// The driver holds `count` addresses of equivalent servers (nodes of one cluster), in the
    /// order to try them; the default is one. Read [`Session::server`] at each
    /// [`Event::Connect`]. The session moves to the next address when an attempt fails (no
    /// connection, or no welcome), at once while some address has not failed since the last
    /// welcome, and waits the backoff only when all of them have failed in a row. A connection
    /// lost after a welcome is tried again at the same address first (where a resume works).
    /// Set it before the first connect completes (right after [`Session::new`]).
    pub fn set_servers(&mut self, count: usize) {
        self.link.set_servers(count);
    }

    /// Which of the driver's addresses (0-based, below the count given to
    /// [`Session::set_servers`]) the current or next connection is to use: the driver reads it
    /// when it gets [`Event::Connect`].
    pub fn server(&self) -> usize {
        self.link.server()
    }

    /// Why the session ended for good when that was not the user's `/quit` (e.g. the server
    /// speaks another protocol version): a line-mode client exits non-zero on it.
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// The server's own words for the last account request it refused (a sign-in, a
    /// registration, a password change: `too many failed sign-ins from your address: try again
    /// in 30 s`), cleaned of control characters. The [`Event::Error`] about [`About::Account`]
    /// that said the refusal says them within core's words; a UI that words refusals its own
    /// way (the page's sign-in dialog) takes what it needs from here, such as a throttled
    /// request's exact wait.
    pub fn refusal_detail(&self) -> Option<&str> {
        self.refusal_detail.as_deref()
    }

    /// Why the latest connection attempt came to nothing, in words (`could not connect to
    /// HOST:PORT: Connection refused`, `this port does not speak natter's protocol …`, `the
    /// server took us for a text client …; it said "…"`): what a client that gives up says.
    /// Always the latest: an earlier attempt's reason (a refused connect before the server was
    /// up) is not the reason a later one failed.
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    // ---- connection lifecycle ----

    /// True (and `about` told) when the session has ended.
    fn closed_for(&mut self, about: About) -> bool {
        if self.link.phase() == Phase::Closed {
            self.error(about, "the session is closed");
            return true;
        }
        false
    }

    /// Sends an account request now if welcomed; otherwise the welcome sends it.
    fn send_account(&mut self, msg: Option<ClientMsg>) {
        if let Some(msg) = msg
            && self.link.is_welcomed()
        {
            self.pace_account(msg);
        }
    }

    /// Sends a sign-in or registration; one that asks for a key is preceded by the device's
    /// label ([`Session::set_device_label`]) to a server of [`wire::DEVICE_LABEL_VERSION`] or
    /// later, so that the key gets it. Only then: the server keeps a connection's label while it
    /// lasts, and one that asks for no key (the terminal client's sign-ins) would hold it for
    /// nothing.
    fn pace_account(&mut self, msg: ClientMsg) {
        let asks_key = matches!(
            msg,
            ClientMsg::SignIn { remember: true, .. } | ClientMsg::Register { remember: true, .. }
        );
        let label = self.device_label.clone().filter(|_| {
            asks_key
                && self
                    .handshake
                    .version
                    .is_some_and(|v| v >= wire::DEVICE_LABEL_VERSION)
        });
        if let Some(label) = label {
            self.pace(ClientMsg::ThisDevice { label });
        }
        self.pace(msg);
    }

    fn tick(&mut self, now: Millis) {
        self.now = self.now.max(now);
    }

    fn start_connect(&mut self, now: Millis) {
        // A barrier ping's pong does not come over another connection.
        if matches!(self.barrier, Barrier::Waiting(_)) {
            self.barrier = Barrier::Unasked;
        }
        self.link.start_connect(now);
        self.event(Event::State(ConnState::Connecting));
        self.event(Event::Connect);
    }

    /// The session itself gives up on the transport: tell the driver to close it, and retry.
    fn lost(&mut self, why: &str, now: Millis) {
        if !self.link.is_active() {
            return;
        }
        if !self.link.is_welcomed() {
            self.event(Event::Close);
            self.failed(why, now);
            return;
        }
        // One notice per drop, with why (the server's `Bye` said its words already).
        if !why.is_empty() {
            self.info(crate::render::lost_words(why));
        }
        self.event(Event::Close);
        self.schedule_reconnect(now);
    }

    /// A connection attempt failed (no transport, or no welcome on it): nothing was lost, so
    /// the state is [`ConnState::Reconnecting`] with `lost: false`, and
    /// [`Event::ConnectFailed`] says why and when the next attempt is (line mode:
    /// `could not connect to HOST:PORT: Connection refused; retrying in 0.2s`).
    fn failed(&mut self, why: &str, now: Millis) {
        self.last_failure = Some(why.to_owned());
        let before = self.link.server();
        self.schedule_reconnect(now);
        let wait = match self.link.phase() {
            Phase::Waiting { at, .. } => at.since(now),
            _ => Millis(0),
        };
        self.event(Event::ConnectFailed {
            why: why.to_owned(),
            wait,
            next_address: wait == Millis(0) && self.link.server() != before,
        });
    }

    fn bad_input(&mut self, e: &WireError, now: Millis) {
        tracing::warn!(error = %e, "bad data from the server");
        self.error(About::Session, format!("the server sent bad data ({e})"));
        self.lost("bad data", now);
    }

    fn schedule_reconnect(&mut self, now: Millis) {
        self.reconnect_after_loss(now, false);
    }

    /// The server closed the link as asked (a sign-out ends the account's connection): back at
    /// once as a guest, and nothing was lost, so no "connection lost" and no backoff.
    pub(super) fn reconnect_as_asked(&mut self, now: Millis) {
        self.reconnect_link(now, true, false);
    }

    /// The link is lost: what was in flight waits for the next welcome, and the next attempt is
    /// scheduled (at once when `quick`, see [`Link::reconnect`]).
    fn reconnect_after_loss(&mut self, now: Millis, quick: bool) {
        self.reconnect_link(now, quick, true);
    }

    /// See [`Session::reconnect_after_loss`]; `lost: false` when the link closed as asked.
    fn reconnect_link(&mut self, now: Millis, quick: bool, lost: bool) {
        let was_welcomed = self.link.is_welcomed();
        // Commands not sent yet wait for the next welcome; joins and parts are asked again
        // from the rooms' own tracking, messages from the pending list, scrollback and searches
        // from the asks.
        self.out.link_lost(|msg| {
            matches!(
                msg,
                ClientMsg::Nick { .. }
                    | ClientMsg::SignOut
                    | ClientMsg::ChangePassword { .. }
                    | ClientMsg::Who { .. }
                    | ClientMsg::Rooms
                    | ClientMsg::Topic { .. }
                    | ClientMsg::ClearTopic { .. }
                    | ClientMsg::History { .. }
            )
        });
        // A password change sent on this link is not answered on the next one.
        if !self
            .out
            .defers(|m| matches!(m, ClientMsg::ChangePassword { .. }))
        {
            self.account.change_lost();
        }
        self.asks.link_lost();
        self.quiet_who.clear();
        self.link.reconnect(now, quick);
        if !lost {
            self.link.closed_as_asked();
        }
        self.event(Event::State(self.state()));
        if lost && was_welcomed {
            self.give_up_unanswered_account();
        }
    }

    /// The link was lost before the server answered a sign-in or registration the person
    /// asked for ([`account::Account::drop_unanswered`]): said as its answer (an
    /// [`Event::Error`] about [`About::Account`]), so that a UI waiting for it stops waiting;
    /// they ask again once the server is back. A session for the account only
    /// ([`Session::require_sign_in`]) ends with it, as when refused.
    fn give_up_unanswered_account(&mut self) {
        // A registration may have gone through: the next welcome signs in to find out, never
        // registering again.
        if let Some(nick) = self.account.check_lost_registration() {
            self.info(format!(
                "the connection dropped before the server answered your registration of {nick}; \
                 once it is back, signing in as {nick} tells whether it went through"
            ));
            return;
        }
        // The sign-in that was to find that out lost too: asked again, never said as a
        // sign-in that failed (the person asked to register, and it may have gone through).
        match self.account.keep_lost_check() {
            Some(account::LostCheck::Kept(nick)) => {
                self.info(format!(
                    "the connection dropped again before the server said whether your \
                     registration of {nick} went through; once it is back, signing in as {nick} \
                     tells whether it did"
                ));
                return;
            }
            // Asked often enough: the person finds out, when they choose.
            Some(account::LostCheck::GivenUp(nick)) => {
                let text = format!(
                    "could not find out whether your registration of {nick} went through: the \
                     connection dropped each time before the server answered; signing in as \
                     {nick} (/login {nick} PASSWORD) tells whether it did"
                );
                self.account_given_up(text);
                return;
            }
            None => {}
        }
        let Some(what) = self.account.drop_unanswered() else {
            return;
        };
        let text = format!(
            "could not {what}: the connection dropped before the server answered; \
             try again once it is back"
        );
        self.account_given_up(text);
    }

    /// Says `text` as the answer to an account request given up (an [`Event::Error`] about
    /// [`About::Account`]), and ends a session for the account only
    /// ([`Session::require_sign_in`]) with it, as when refused.
    fn account_given_up(&mut self, text: String) {
        self.event(Event::Error {
            kind: None,
            about: About::Account,
            text: text.clone(),
        });
        if self.account.required_and_refused() {
            self.close_for_good(Some(text));
        }
    }

    /// Ends the session: `fatal` says why when it was not the user's `/quit`.
    fn close_for_good(&mut self, fatal: Option<String>) {
        if self.link.phase() == Phase::Closed {
            return;
        }
        self.fatal = fatal;
        self.event(Event::Close);
        self.link.close();
        self.asks.clear();
        self.event(Event::State(ConnState::Closed));
        let abandoned = self.out.abandon();
        if !abandoned.is_empty() {
            let n = abandoned.len();
            for id in abandoned {
                self.event(Event::Settled {
                    id,
                    delivered: false,
                });
            }
            self.info(format!("{n} unacknowledged messages were not delivered"));
        }
    }

    // ---- output ----

    fn event(&mut self, ev: Event) {
        self.events.push(ev);
    }

    fn info(&mut self, text: impl Into<String>) {
        self.event(Event::Info(text.into()));
    }

    fn error(&mut self, about: About, text: impl Into<String>) {
        self.event(Event::Error {
            kind: None,
            about,
            text: text.into(),
        });
    }

    /// Queues `msg` for the open transport. A transport so slow that the queue fills is given up
    /// on (keepalive traffic is just skipped).
    fn send(&mut self, msg: &ClientMsg) {
        match self.link.send(msg) {
            Ok(()) | Err(SendError::NotOpen) => {}
            Err(SendError::Backlog) => {
                if !matches!(msg, ClientMsg::Ping { .. } | ClientMsg::Pong { .. }) {
                    tracing::warn!("transmit queue full; reconnecting");
                    self.lost("sending is not keeping up", self.now);
                }
            }
            // Types bound every field, so this is a bug, not input: say so and carry on.
            Err(SendError::Encode(e)) => {
                tracing::error!(error = %e, "could not encode a message");
                self.error(About::Session, format!("could not send: {e}"));
            }
        }
    }

    /// Sends a command when a flood token allows, keeping order with what already waits. Only
    /// while welcomed: joins, parts and asks are asked again at the welcome anyway. False (and
    /// the user told) if too many commands already wait.
    fn pace(&mut self, msg: ClientMsg) -> bool {
        if !self.link.is_welcomed() {
            return true;
        }
        match self.out.pace_command(msg, self.now) {
            Ok(Some(msg)) => self.send(&msg),
            Ok(None) => {}
            Err(refused) => {
                self.queue_full(refused);
                return false;
            }
        }
        true
    }

    fn run_outbox(&mut self, now: Millis) {
        while self.link.is_welcomed() {
            let Some(msg) = self.out.next_due(now) else {
                return;
            };
            self.send(&msg);
        }
    }

    fn queue_full(&mut self, why: Full) {
        use crate::limits::SESSION_MAX_PENDING;
        let text = match why {
            Full::Pending => format!(
                "{SESSION_MAX_PENDING} messages are still waiting to be sent; \
                 wait for the connection to catch up"
            ),
            Full::Paced => "too many commands are waiting to be sent; slow down".into(),
            Full::Deferred => {
                "not connected, and too many commands are waiting; try again later".into()
            }
        };
        self.error(About::Input, text);
    }
}

/// Server-sent words made safe to show: no control characters, bounded length.
fn clean(s: &str) -> String {
    sanitize(&s.chars().take(MAX_DETAIL_CHARS).collect::<String>())
}

#[cfg(test)]
mod tests;
