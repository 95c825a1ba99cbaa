//! The server's state machine: connections, nicks, rooms, history, flood control, keepalive,
//! slow-consumer gaps and resume. It owns no socket and reads no clock.
//!
//! # Driving a `Hub`
//! A shell (natter-server) calls, for each connection, [`Hub::accept`] when a socket is accepted,
//! [`Hub::handle_bytes`] with whatever the socket read, [`Hub::handle_written`] when bytes it was
//! given have been written to the socket, and [`Hub::handle_close`] when the socket is gone. After
//! any call (or batch of calls) it drains [`Hub::poll_transmit`] until it returns `None` (one
//! transmit per connection with everything queued for it, in order) and [`Hub::poll_event`]
//! (things to log, and connections to close once their bytes are written), then sleeps until the
//! next input or [`Hub::poll_timeout`], when it calls [`Hub::handle_timeout`]. Time is always the
//! caller's `now`. Transmits are `Bytes` pieces, most of them slices of one buffer that all
//! members of a broadcast share; the hub lets go of that buffer once every connection's transmit
//! has been polled, the shell once it has written them.
//!
//! Backlog: every byte handed out by `poll_transmit` counts against its connection's outbound
//! limit until the shell reports it written with `handle_written`, so a shell must call it. The
//! backlogs together have a limit too ([`Config::outbound_total_max_bytes`]): past it, members far
//! behind get gaps first.
//!
//! # Rooms and seqs
//! Every room event (join, part, quit, nick, topic, say, act) gets the room's next seq and goes
//! into the room's history ring with its encoded frame. A joiner gets `Joined{seq}` where `seq`
//! is the seq of its own `Join` event, then the last [`Config::history_on_join`] events up to and
//! including that `Join` (so its own join is the last event of the replay, never sent twice),
//! then live events. Text-mode joiners get a "you are in" line instead of their own join line.
//! Joining a room one is already in answers `Joined{seq: latest}` with no replay (text: switches
//! the current room). Binary senders get their own say/act events back as the acknowledgement;
//! text senders do not see their own lines.
//!
//! # Closing
//! The hub asks for a close with [`HubEvent::Close`] after queueing its last words (an `Error`
//! and `Bye` frame, or an `ERROR:` line); until the shell calls [`Hub::handle_close`] the
//! connection still counts in [`Hub::connections`] and its input is ignored. A binary user whose
//! connection closes without `Quit` is detached and may resume within
//! [`Config::resume_grace`]; a text user's close is a quit.

mod admit;
mod conn;
mod input;
mod ops;
mod resume;
mod room;
#[cfg(test)]
mod tests;
mod text;
mod timers;
mod users;

use crate::command::HELP_LINE;
use crate::limits::{
    INBOUND_MAX_BYTES, MAX_DETACHED, MAX_MEMBERS_LISTED, MAX_NICK_LEN, MAX_REFUSED_PENDING,
    OUTBOUND_HARD_MAX_BYTES, OUTBOUND_MAX_BYTES,
};
use crate::time::Millis;
use crate::types::{ConnId, MsgId, Nick, ResumeToken, RoomName, Seq, Text};
use crate::wire::{
    ClientMsg, ErrorKind, MAGIC, PROTOCOL_VERSION, Re, ServerMsg, decode_payload, encode_frame,
};
use admit::IpTable;
pub use admit::address_key;
use bytes::Bytes;
use conn::{Conn, Mode, Out, Pending, Phase, QueueLimits};
use core::net::IpAddr;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use room::{Room, RoomSet, Rooms, Stored};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use thiserror::Error;
use timers::{Timer, Timers};
use tracing::debug;

/// Tunables. [`Config::default`] takes every value from [`crate::limits`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Seed for resume tokens and guest nicks. Must come from the OS's random source in a real
    /// server: resume tokens are credentials.
    pub secret_seed: [u8; 32],
    /// Addresses allowed to send [`crate::wire::ClientMsg::Forwarded`] (the bridge). They are
    /// exempt from the per-IP limits; the forwarded address is counted instead.
    pub trusted_proxies: Vec<IpAddr>,
    /// Loopback addresses are exempt from the per-IP limits.
    pub exempt_loopback: bool,
    /// See [`crate::limits::MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`crate::limits::MAX_CONNECTIONS_PER_IP`].
    pub max_connections_per_ip: usize,
    /// See [`crate::limits::MAX_CONNECTS_PER_WINDOW`].
    pub max_connects_per_window: u32,
    /// See [`crate::limits::CONNECT_WINDOW`].
    pub connect_window: Millis,
    /// See [`crate::limits::FLOOD_BURST`].
    pub flood_burst: u32,
    /// See [`crate::limits::FLOOD_REFILL`]. Zero turns flood control off (benchmarks).
    pub flood_refill: Millis,
    /// See [`crate::limits::FLOOD_QUEUE`].
    pub flood_queue: usize,
    /// See [`crate::limits::PING_AFTER`].
    pub ping_after: Millis,
    /// See [`crate::limits::PING_TIMEOUT`].
    pub ping_timeout: Millis,
    /// See [`crate::limits::HELLO_TIMEOUT`].
    pub hello_timeout: Millis,
    /// See [`crate::limits::TEXT_DETECT_WAIT`].
    pub text_detect_wait: Millis,
    /// See [`crate::limits::RESUME_GRACE`].
    pub resume_grace: Millis,
    /// See [`crate::limits::OUTBOUND_MAX_MSGS`].
    pub outbound_max_msgs: usize,
    /// See [`crate::limits::OUTBOUND_MAX_BYTES`].
    pub outbound_max_bytes: usize,
    /// See [`crate::limits::OUTBOUND_TOTAL_MAX_BYTES`]. Its pressure floor is
    /// `outbound_max_bytes / 16` ([`crate::limits::OUTBOUND_PRESSURE_FLOOR`] by default).
    pub outbound_total_max_bytes: usize,
    /// See [`crate::limits::HISTORY_LEN`].
    pub history_len: usize,
    /// See [`crate::limits::HISTORY_BUDGET_BYTES`].
    pub history_budget_bytes: usize,
    /// See [`crate::limits::HISTORY_ON_JOIN`].
    pub history_on_join: usize,
}

impl Default for Config {
    fn default() -> Config {
        use crate::limits::*;
        Config {
            secret_seed: [0; 32],
            trusted_proxies: Vec::new(),
            exempt_loopback: true,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_ip: MAX_CONNECTIONS_PER_IP,
            max_connects_per_window: MAX_CONNECTS_PER_WINDOW,
            connect_window: CONNECT_WINDOW,
            flood_burst: FLOOD_BURST,
            flood_refill: FLOOD_REFILL,
            flood_queue: FLOOD_QUEUE,
            ping_after: PING_AFTER,
            ping_timeout: PING_TIMEOUT,
            hello_timeout: HELLO_TIMEOUT,
            text_detect_wait: TEXT_DETECT_WAIT,
            resume_grace: RESUME_GRACE,
            outbound_max_msgs: OUTBOUND_MAX_MSGS,
            outbound_max_bytes: OUTBOUND_MAX_BYTES,
            outbound_total_max_bytes: OUTBOUND_TOTAL_MAX_BYTES,
            history_len: HISTORY_LEN,
            history_budget_bytes: HISTORY_BUDGET_BYTES,
            history_on_join: HISTORY_ON_JOIN,
        }
    }
}

impl Config {
    /// The limits a client must respect, as [`ServerMsg::Welcome`] announces them.
    pub fn announced_limits(&self) -> crate::wire::Limits {
        crate::wire::Limits {
            flood_burst: self.flood_burst,
            flood_refill: self.flood_refill,
            max_text_bytes: u32::try_from(crate::limits::MAX_TEXT_BYTES).unwrap_or(u32::MAX),
            max_rooms_per_user: u32::try_from(crate::limits::MAX_ROOMS_PER_USER)
                .unwrap_or(u32::MAX),
        }
    }
}

/// Why [`Hub::accept`] turned a connection away outright (the shell just closes the socket).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refused {
    /// Far past every limit (or shut down): not even worth telling.
    #[error("too many connections")]
    Overloaded,
}

/// Bytes to write to one connection: every message queued for it since its last transmit, in
/// pieces to be written back to back (vectored). Consecutive broadcast frames are one piece,
/// a slice of a buffer every member's transmit shares: a broadcast is encoded once and never
/// copied per member. A connection's transmits are polled in the order they must be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub conn: ConnId,
    /// What, in order; none empty, and at least one.
    pub data: Vec<Bytes>,
}

impl Transmit {
    /// Bytes in all.
    pub fn len(&self) -> usize {
        self.data.iter().map(Bytes::len).sum()
    }

    /// Never: a transmit has bytes.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// All pieces in one buffer.
    pub fn concat(&self) -> Vec<u8> {
        self.data.concat()
    }
}

/// How a connection talks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnKind {
    /// A program speaking the binary protocol.
    Binary,
    /// A person on `nc`/`telnet`.
    Text,
}

/// Things the shell logs or acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// A connection identified itself and has a nick.
    Ready {
        /// Connection.
        conn: ConnId,
        /// How it talks.
        kind: ConnKind,
        /// Its nick.
        nick: Nick,
        /// It resumed an earlier session.
        resumed: bool,
    },
    /// A limit was hit (logged once per connection and limit). The client was told.
    LimitHit {
        /// Connection.
        conn: ConnId,
        /// Which limit, as a short stable word (`flood`, `line`, `frame`, `queue`, `per-ip`, ...).
        limit: &'static str,
        /// Words for the log.
        detail: String,
    },
    /// Close this connection once the transmits already polled for it are written.
    Close {
        /// Connection.
        conn: ConnId,
        /// Words for the log.
        reason: String,
    },
}

/// A user: a nick with rooms, attached to a connection or (binary only) detached and waiting
/// for a resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct UserId(u64);

#[derive(Debug)]
struct User {
    nick: Nick,
    kind: ConnKind,
    conn: Option<ConnId>,
    rooms: RoomSet,
    /// Binary users only.
    token: Option<ResumeToken>,
    /// Highest message id accepted from this user (text users get hub-chosen ids).
    last_id: MsgId,
}

/// The chat server's state. See the module docs for how to drive it.
pub struct Hub {
    config: Config,
    rng: ChaCha20Rng,
    next_conn: u64,
    next_user: u64,
    next_ping: u64,
    // Keys the hub hands out itself (no peer chooses them), so a fast non-keyed hash is safe;
    // these maps are touched once per member per broadcast.
    /// Boxed: the table has up to twice as many slots as connections, and a slot is a pointer.
    conns: FxHashMap<ConnId, Box<Conn>>,
    /// Boxed, like `conns`: a table slot is a pointer.
    users: FxHashMap<UserId, Box<User>>,
    /// Folded nick → user.
    nicks: HashMap<String, UserId>,
    tokens: HashMap<ResumeToken, UserId>,
    rooms: Rooms,
    /// History bytes held across all rooms (see [`Config::history_budget_bytes`]).
    history_bytes: usize,
    out: Out,
    timers: Timers,
    ips: IpTable,
    refused_pending: usize,
    detached: usize,
    shut: bool,
    /// The latest `now` passed in, for the few places deep in a call that need the time.
    now: Millis,
}

impl core::fmt::Debug for Hub {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Not derived: the RNG state would reveal resume tokens.
        f.debug_struct("Hub")
            .field("connections", &self.conns.len())
            .field("users", &self.users.len())
            .field("rooms", &self.rooms.len())
            .field("detached", &self.detached)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub with no connections.
    pub fn new(config: Config) -> Hub {
        let rng = ChaCha20Rng::from_seed(config.secret_seed);
        Hub {
            config,
            rng,
            next_conn: 1,
            next_user: 1,
            next_ping: 1,
            conns: FxHashMap::default(),
            users: FxHashMap::default(),
            nicks: HashMap::new(),
            tokens: HashMap::new(),
            rooms: Rooms::new(),
            history_bytes: 0,
            out: Out::default(),
            timers: Timers::default(),
            ips: IpTable::default(),
            refused_pending: 0,
            detached: 0,
            shut: false,
            now: Millis::ZERO,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A socket from `peer` was accepted. Soft limits (per-IP, connect rate, server full) are
    /// answered in the client's own mode (text line or error frame) once it is known, then closed;
    /// `Err` only when even that is too much (or after [`Hub::shutdown`]).
    pub fn accept(&mut self, peer: IpAddr, now: Millis) -> Result<ConnId, Refused> {
        self.now = self.now.max(now);
        if self.shut
            || self.refused_pending >= MAX_REFUSED_PENDING
            || self.conns.len() >= self.config.max_connections + MAX_REFUSED_PENDING
        {
            return Err(Refused::Overloaded);
        }
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        let peer = peer.to_canonical();
        let mut conn = Conn::new(id, peer, self.config.flood_burst, now);
        let admitted = self.conns.len() - self.refused_pending;
        let verdict = if admitted >= self.config.max_connections {
            Err(admit::Refusal {
                limit: "connections",
                detail: "the server is full, try again later".into(),
            })
        } else if IpTable::exempt(&self.config, peer) || self.config.trusted_proxies.contains(&peer)
        {
            // A bridge carries many people: they are counted by their own address once it
            // sends `Forwarded`, not against the bridge's.
            Ok(None)
        } else {
            self.ips.admit(&self.config, peer, now).map(|()| Some(peer))
        };
        match verdict {
            Ok(counted) => conn.counted_ip = counted,
            Err(r) => {
                debug!(conn = %id, %peer, limit = r.limit, "refused at accept");
                self.refused_pending += 1;
                conn.limit_hit(&mut self.out, r.limit, r.detail.clone());
                conn.rare_mut().refused = Some(r.detail);
            }
        }
        debug!(conn = %id, %peer, "accepted");
        self.conns.insert(id, Box::new(conn));
        self.timers
            .set(Timer::Detect(id), now + self.config.text_detect_wait);
        self.timers
            .set(Timer::Hello(id), now + self.config.hello_timeout);
        if self.ips.len() > 0 && !self.timers.is_set(Timer::PruneIps) {
            self.timers
                .set(Timer::PruneIps, now + self.config.connect_window);
        }
        Ok(id)
    }

    /// Bytes read from `conn`'s socket.
    pub fn handle_bytes(&mut self, conn: ConnId, data: &[u8], now: Millis) {
        self.now = self.now.max(now);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing() || data.is_empty() {
            return;
        }
        c.last_rx = now;
        c.ping = None;
        if c.phase == Phase::Detect {
            if data[0] == MAGIC[0] {
                c.set_kind(ConnKind::Binary);
                c.phase = Phase::Magic(0);
                self.timers.cancel(Timer::Detect(conn));
                if let Some(detail) = c.refused().cloned() {
                    self.refuse_binary(conn, detail);
                    return;
                }
            } else {
                self.become_text(conn, now);
            }
        }
        match self.conns.get(&conn).and_then(|c| c.kind()) {
            Some(ConnKind::Binary) => self.binary_bytes(conn, data, now),
            Some(ConnKind::Text) => self.text_bytes(conn, data, now),
            None => {}
        }
    }

    /// `n` bytes of what was polled for `conn` have been written to its socket.
    pub fn handle_written(&mut self, conn: ConnId, n: usize, now: Millis) {
        self.now = self.now.max(now);
        let lim = self.queue_limits();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.written(&mut self.out, n);
        let drained = c.drained(&self.out, lim);
        let Some(rare) = c.rare_mut_if_any() else {
            return;
        };
        if (rare.gaps.is_empty() && rare.refills.is_empty()) || !drained {
            return;
        }
        let gaps = core::mem::take(&mut rare.gaps);
        let refills = core::mem::take(&mut rare.refills);
        debug!(conn = %conn, rooms = gaps.len(), refills = refills.len(), "backlog drained");
        for (room, (first, last)) in gaps {
            self.send(conn, ServerMsg::Gap { room, first, last });
        }
        for (room, after) in refills {
            self.history(conn, room, after);
        }
    }

    /// `conn`'s socket is gone (peer closed, error, or the shell closed it after `Close`).
    pub fn handle_close(&mut self, conn: ConnId, now: Millis) {
        self.now = self.now.max(now);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.closing() {
            c.phase = Phase::Closing;
            let user = c.user.take();
            self.timers.cancel_conn(conn);
            if let Some(uid) = user {
                self.release_user(uid, now);
            }
        }
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.out.unqueued(c.backlog_bytes());
        if let Some(ip) = c.counted_ip {
            self.ips.release(ip);
        }
        if c.refused().is_some() {
            self.refused_pending = self.refused_pending.saturating_sub(1);
        }
        debug!(conn = %conn, "closed");
    }

    /// A deadline from [`Hub::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.now = self.now.max(now);
        while let Some(t) = self.timers.pop_due(now) {
            match t {
                Timer::Detect(c) => {
                    if self.conns.get(&c).is_some_and(|c| c.phase == Phase::Detect) {
                        self.become_text(c, now);
                    }
                }
                Timer::Hello(c) => self.hello_timeout(c, now),
                Timer::Keepalive(c) => self.keepalive(c, now),
                Timer::Flood(c) => self.run_pending(c, now),
                Timer::Grace(u) => {
                    if self.users.get(&u).is_some_and(|u| u.conn.is_none()) {
                        debug!(user = u.0, "resume grace over");
                        self.detached = self.detached.saturating_sub(1);
                        self.quit_user(u, Text::new("connection lost").ok(), now);
                    }
                }
                Timer::PruneIps => {
                    self.ips.prune(&self.config, now);
                    if self.ips.len() > 0 {
                        self.timers
                            .set(Timer::PruneIps, now + self.config.connect_window);
                    }
                }
            }
        }
    }

    /// The server is going away: every connection is told and then closed (`Close` events).
    /// Later `accept`s are refused.
    pub fn shutdown(&mut self, now: Millis) {
        self.now = self.now.max(now);
        self.shut = true;
        let mut ids: Vec<ConnId> = self.conns.keys().copied().collect();
        ids.sort();
        let reason = "server shutting down";
        for id in ids {
            let Some(c) = self.conns.get(&id) else {
                continue;
            };
            if c.closing() {
                continue;
            }
            match c.kind() {
                Some(ConnKind::Binary) => self.send(
                    id,
                    ServerMsg::Bye {
                        reason: reason.into(),
                    },
                ),
                Some(ConnKind::Text) => self.send_line(id, &format!("-- {reason}")),
                None => {}
            }
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            c.phase = Phase::Closing;
            // No quit notices: everyone is leaving at once.
            if let Some(uid) = c.user.take() {
                if let Some(u) = self.users.get_mut(&uid) {
                    u.conn = None;
                }
            }
            self.timers.cancel_conn(id);
            self.out.events.push_back(HubEvent::Close {
                conn: id,
                reason: reason.into(),
            });
        }
    }

    /// Next bytes to write: all that is queued for one connection. Connections come in the order
    /// their first queued byte was; bytes for a connection already gone were dropped with it.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        while let Some(conn) = self.out.ready.pop_front() {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            let data = c.take_queue(&mut self.out);
            if !data.is_empty() {
                return Some(Transmit { conn, data });
            }
        }
        self.out.all_polled();
        None
    }

    /// Next event to log or act on.
    pub fn poll_event(&mut self) -> Option<HubEvent> {
        self.out.events.pop_front()
    }

    /// When [`Hub::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.timers.next()
    }

    /// History bytes held across all rooms (bounded by [`Config::history_budget_bytes`] plus
    /// [`crate::limits::HISTORY_MIN_KEPT`] events per room).
    pub fn history_bytes(&self) -> usize {
        self.history_bytes
    }

    /// Connections open.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Bytes queued for `conn` or handed out and not yet reported written.
    pub fn queued_bytes(&self, conn: ConnId) -> Option<usize> {
        self.conns.get(&conn).map(|c| c.backlog_bytes())
    }

    /// Bytes queued for all connections together (handed out or not, not yet written).
    pub fn queued_bytes_total(&self) -> usize {
        self.out.backlog_total()
    }

    /// Messages queued for `conn` or handed out and not yet fully written.
    pub fn queued_msgs(&self, conn: ConnId) -> Option<usize> {
        self.conns.get(&conn).map(|c| c.backlog_msgs())
    }

    /// The nick of the user on `conn`, once it has one.
    pub fn nick(&self, conn: ConnId) -> Option<&Nick> {
        let uid = self.conns.get(&conn)?.user?;
        self.users.get(&uid).map(|u| &u.nick)
    }

    /// How `conn` talks, once known.
    pub fn kind(&self, conn: ConnId) -> Option<ConnKind> {
        self.conns.get(&conn)?.kind()
    }

    /// Whether the user with `nick` (attached or detached) is in `room`.
    pub fn is_member(&self, nick: &Nick, room: &RoomName) -> bool {
        self.nicks
            .get(&nick.folded())
            .and_then(|u| self.users.get(u))
            .is_some_and(|u| u.rooms.contains(room))
    }

    /// Rooms that exist.
    pub fn rooms(&self) -> usize {
        self.rooms.len()
    }

    /// Users known (attached or waiting for resume).
    pub fn users(&self) -> usize {
        self.users.len()
    }

    /// Users detached and waiting for resume.
    pub fn detached(&self) -> usize {
        self.detached
    }

    /// Events kept in `room`'s history.
    pub fn history_kept(&self, room: &RoomName) -> Option<usize> {
        self.rooms.get(room).map(Room::kept)
    }

    // ---- internals shared by the submodules ----

    fn queue_limits(&self) -> QueueLimits {
        QueueLimits {
            max_msgs: self.config.outbound_max_msgs,
            max_bytes: self.config.outbound_max_bytes,
            hard_bytes: self
                .config
                .outbound_max_bytes
                .saturating_add(OUTBOUND_HARD_MAX_BYTES - OUTBOUND_MAX_BYTES),
            total_bytes: self.config.outbound_total_max_bytes,
            pressure_floor: self.config.outbound_max_bytes / 16,
        }
    }

    /// The nicks of `r`'s members, as many as a member list shows.
    fn member_nicks(&self, r: &Room) -> Vec<Nick> {
        r.members
            .iter()
            .filter_map(|u| self.users.get(u).map(|u| u.nick.clone()))
            .take(MAX_MEMBERS_LISTED)
            .collect()
    }

    /// Sends a reply (not room traffic) to `conn` in its mode. Past the hard backlog limit the
    /// connection is closed as too slow.
    fn send(&mut self, conn: ConnId, msg: ServerMsg) {
        let lim = self.queue_limits();
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.closing() {
            return;
        }
        let me = c.user.and_then(|u| self.users.get(&u)).map(|u| &u.nick);
        let data = match c.kind() {
            Some(ConnKind::Text) => {
                let lines = crate::render::reply_lines(&msg, me, c.current.as_ref());
                if lines.is_empty() {
                    return;
                }
                let mut s = lines.join("\r\n");
                s.push_str("\r\n");
                Bytes::from(s)
            }
            _ => match encode_frame(&msg) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(conn = %conn, error = %e, "reply did not encode");
                    return;
                }
            },
        };
        if c.backlog_bytes() + data.len() > lim.hard_bytes {
            self.too_slow(conn);
            return;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.push(&mut self.out, data);
        }
    }

    /// Sends one info line to a text connection.
    fn send_line(&mut self, conn: ConnId, line: &str) {
        let lim = self.queue_limits();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let data = text::wire_line(line);
        if c.backlog_bytes() + data.len() > lim.hard_bytes {
            self.too_slow(conn);
            return;
        }
        c.push(&mut self.out, data);
    }

    fn error(&mut self, conn: ConnId, kind: ErrorKind, re: Re, detail: String) {
        debug!(conn = %conn, ?kind, %detail, "error reply");
        self.send(conn, ServerMsg::Error { kind, re, detail });
    }

    /// An error that ends the connection: the error, then (binary) `Bye`, then `Close`.
    fn fatal(&mut self, conn: ConnId, kind: ErrorKind, detail: String, now: Millis) {
        self.error(conn, kind, Re::Conn, detail.clone());
        if self.conns.get(&conn).and_then(|c| c.kind()) == Some(ConnKind::Binary) {
            self.send(
                conn,
                ServerMsg::Bye {
                    reason: detail.clone(),
                },
            );
        }
        self.close_conn(conn, detail, now);
    }

    /// The backlog went past the hard limit: one last error (a few bytes over), then close.
    fn too_slow(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing() {
            return;
        }
        let detail = "you are reading too slowly; closing the connection".to_string();
        let msg = ServerMsg::Error {
            kind: ErrorKind::TooSlow,
            re: Re::Conn,
            detail: detail.clone(),
        };
        let data = match c.kind() {
            Some(ConnKind::Text) => Some(text::wire_line(&format!("ERROR: {detail}"))),
            _ => encode_frame(&msg).ok().map(Vec::from),
        };
        if let Some(d) = data {
            c.push(&mut self.out, d);
        }
        c.limit_hit(&mut self.out, "queue-hard", detail.clone());
        let now = self.now;
        self.close_conn(conn, detail, now);
    }

    /// Takes `conn` off its user (who lives on: quit already, or resumed elsewhere), says `Bye`
    /// with `words` and closes it.
    fn bye(&mut self, conn: ConnId, words: &str, log: &str, now: Millis) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.user = None;
        }
        self.send(
            conn,
            ServerMsg::Bye {
                reason: words.into(),
            },
        );
        self.close_conn(conn, log.into(), now);
    }

    /// Marks `conn` closing, tells the shell, and detaches (binary) or quits (text) its user.
    fn close_conn(&mut self, conn: ConnId, reason: String, now: Millis) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing() {
            return;
        }
        debug!(conn = %conn, %reason, "closing");
        c.phase = Phase::Closing;
        if let Some(rare) = c.rare_mut_if_any() {
            rare.pending.clear();
            rare.gaps.clear();
            rare.refills.clear();
        }
        let user = c.user.take();
        self.timers.cancel_conn(conn);
        self.out.events.push_back(HubEvent::Close { conn, reason });
        if let Some(uid) = user {
            self.release_user(uid, now);
        }
    }

    /// A user's connection is gone: binary users wait for a resume, text users quit.
    fn release_user(&mut self, uid: UserId, now: Millis) {
        let Some(u) = self.users.get_mut(&uid) else {
            return;
        };
        u.conn = None;
        if u.kind == ConnKind::Binary && u.token.is_some() && self.detached < MAX_DETACHED {
            self.detached += 1;
            self.timers
                .set(Timer::Grace(uid), now + self.config.resume_grace);
            debug!(user = uid.0, "detached, waiting for resume");
        } else {
            self.quit_user(uid, None, now);
        }
    }

    /// The user leaves for good: a quit event in each of its rooms, nick and token freed.
    fn quit_user(&mut self, uid: UserId, reason: Option<Text>, now: Millis) {
        let Some(u) = self.users.remove(&uid) else {
            return;
        };
        self.timers.cancel(Timer::Grace(uid));
        self.nicks.remove(&u.nick.folded());
        if let Some(t) = &u.token {
            self.tokens.remove(t);
        }
        for room in &u.rooms {
            if let Some(r) = self.rooms.get_mut(room) {
                r.members.remove(&uid);
            }
            self.broadcast(
                room,
                u.nick.clone(),
                crate::wire::EventKind::Quit {
                    reason: reason.clone(),
                },
                now,
                None,
            );
            self.drop_if_empty(room);
        }
    }

    fn drop_if_empty(&mut self, room: &RoomName) {
        if *room == RoomName::lobby() {
            return;
        }
        if self.rooms.get(room).is_some_and(|r| r.members.is_empty())
            && let Some(r) = self.rooms.remove(room)
        {
            self.history_bytes -= r.history_bytes();
        }
    }
}

/// What a stored room event looks like on `c`: the stored frame, or a line for people (empty
/// if the frame does not decode, which cannot happen: the hub encoded it).
fn stored_bytes(c: &Conn, s: &Stored) -> Bytes {
    match c.kind() {
        Some(ConnKind::Text) => s.event().map_or_else(Bytes::new, |ev| {
            Bytes::from(text::wire_line(&crate::render::event_line(
                &ev,
                c.current.as_ref(),
            )))
        }),
        _ => s.frame.clone(),
    }
}
