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
//! # Dialects
//! Each connection speaks one dialect (binary frames, lines typed by a person, or IRC), decided
//! by its door and its first byte. The hub itself works in one vocabulary: a dialect turns bytes into
//! steps (a hello, requests), and words each reply and room event for its peer. Nothing outside
//! `hub/dialect/` branches on a connection's dialect; `hub/dialect/mod.rs` says how to add one.
//!
//! # Rooms and seqs
//! Every room event (join, part, quit, nick, topic, say, act) gets the room's next seq and goes
//! into the room's history ring with its encoded frame. A joiner gets `Joined{seq}` where `seq`
//! is the seq of its own `Join` event, then the last [`Config::history_on_join`] events up to and
//! including that `Join` (so its own join is the last event of the replay, never sent twice),
//! then live events (dialects that word `Joined` as "you are in" leave their own join out).
//! Joining a room one is already in answers `Joined{seq: latest}` with no replay (text: switches
//! the current room). Every request that gets an answer costs a flood-control token, pings and
//! history requests included. Binary senders get their own say/act events back as the
//! acknowledgement; text senders do not see their own lines.
//!
//! # Closing
//! The hub asks for a close with [`HubEvent::Close`] after queueing its last words (an `Error`
//! and `Bye` frame, or an `ERROR:` line); until the shell calls [`Hub::handle_close`] the
//! connection still counts in [`Hub::connections`] and its input is ignored. A user of a
//! resumable dialect (binary) whose connection closes without `Quit` is detached and may resume
//! within [`Config::resume_grace`]; a text or IRC user's close is a quit.

mod accounts;
mod admit;
mod cluster;
mod config;
mod conn;
mod crowd;
mod deliver;
mod dialect;
mod durable;
mod few;
mod handshake;
mod idmap;
#[cfg(test)]
mod irc_tests;
mod line;
mod lines;
mod moderate;
mod monitor;
mod ops;
mod pace;
mod past;
mod query;
mod reconfig;
mod relay;
mod reply;
mod resume;
mod room;
mod setname;
mod slab;
mod stats;
#[cfg(test)]
mod tests;
mod timers;
mod users;
mod whowas;

use crate::limits::DETECT_RECHECK;
use crate::time::Millis;
use crate::types::{ConnId, MsgId, Nick, ResumeToken, RoomName, Text};
use admit::IpTable;
use bytes::Bytes;
use conn::{Conn, Out};
use core::net::IpAddr;
use dialect::{Reply, Request, Step};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use room::{RoomSet, Rooms};
use thiserror::Error;
use timers::{Timer, Timers};
use tracing::debug;

pub use accounts::{AccountsConfig, Registration};
pub use admit::{ConnectRate, address_key};
pub use cluster::{ClusterOut, Presence, RoomTopic, mask_key, reaped_quit};
pub use config::{
    BridgeSecret, Config, ConfigError, DEFAULT_SERVER_NAME, MAX_MOTD_LINES, MAX_SERVER_NAME_LEN,
    Motd, ServerName, TEST_BRIDGE_SECRET,
};
pub use dialect::{Door, Limit};
pub use reconfig::{Change, ReconfigError};
pub use stats::{CENSUS_KINDS, Census, ConnState, MsgKind, RefusedWhy, Stats};
// The IRC line reader and parser, for `crate::fuzzing` only.
#[cfg(feature = "fuzzing")]
pub(crate) use dialect::fuzz_irc_lines;

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
    /// An IRC client on an IRC listener.
    Irc,
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
        /// Which limit.
        limit: Limit,
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

/// A user: a nick with rooms, present through one or more devices (a device per connection
/// that signed in as it; a guest has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct UserId(u64);

/// A device: one client's session of a user, attached to a connection or (resumable dialects
/// only) detached and waiting for a resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct DeviceId(u64);

#[derive(Debug)]
struct User {
    /// Its own id, its key in the hub's table ([`idmap`]).
    id: UserId,
    nick: Nick,
    rooms: RoomSet,
    /// Its devices, attached or waiting for a resume; a user with none is gone. Nearly every
    /// user has one, held inline.
    devices: few::Few<DeviceId>,
    /// Its away message and account, while it has either (boxed apart: 8 bytes in every user
    /// instead of 32, and a `User` of 96 bytes takes a glibc chunk of 112 where one of 120
    /// took 128, issue 22's idle memory).
    extra: Option<Box<UserExtra>>,
}

/// When a device signed on (its first connection: a resume keeps it) and when it last sent a
/// message (a line, action, notice or direct message; its sign-on until then), for WHOIS's
/// `317`. Seven bytes, in the padding after a `Device`'s address, so a `Device` stays 120 bytes
/// and a glibc chunk of 128 (issue 22's idle memory): the sign-on in Unix seconds plus one (0:
/// no connection yet, a session restored from the store or moved from another node until its
/// client resumes), then the last message as seconds after it in 24 bits (194 days: a device
/// connected longer is shown idle since then at most).
#[derive(Debug, Default, Clone, Copy)]
struct Seen([u8; 7]);

impl Seen {
    const MAX_AFTER: u32 = (1 << 24) - 1;

    fn secs(now: Millis) -> u32 {
        u32::try_from(now.0 / 1000).unwrap_or(u32::MAX - 1)
    }

    fn on(self) -> u32 {
        u32::from_le_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    fn after(self) -> u32 {
        u32::from_le_bytes([self.0[4], self.0[5], self.0[6], 0])
    }

    fn new(on: u32, after: u32) -> Seen {
        let [a, b, c, d] = on.to_le_bytes();
        let [e, f, g, _] = after.min(Seen::MAX_AFTER).to_le_bytes();
        Seen([a, b, c, d, e, f, g])
    }

    /// A connection of the device's is ready at `now`: its sign-on, the first time.
    fn connected(&mut self, now: Millis) {
        if self.on() == 0 {
            *self = Seen::new(Seen::secs(now).saturating_add(1), 0);
        }
    }

    /// It sent a message at `now`.
    fn spoke(&mut self, now: Millis) {
        self.connected(now);
        let on = self.on();
        let after = Seen::secs(now).saturating_sub(on - 1);
        *self = Seen::new(on, after.max(self.after()));
    }

    /// Its sign-on (Unix seconds) and last message (Unix seconds), once it had a connection.
    fn times(self) -> Option<(u64, u64)> {
        let on = u64::from(self.on().checked_sub(1)?);
        Some((on, on + u64::from(self.after())))
    }
}

#[cfg(test)]
#[test]
fn a_devices_times_keep_its_sign_on_and_latest_message_in_seven_bytes() {
    let mut s = Seen::default();
    assert_eq!(s.times(), None);
    s.connected(Millis(1_714_564_800_500));
    s.connected(Millis(1_714_564_900_000));
    assert_eq!(s.times(), Some((1_714_564_800, 1_714_564_800)));
    s.spoke(Millis(1_714_564_830_000));
    s.spoke(Millis(1_714_564_820_000));
    assert_eq!(s.times(), Some((1_714_564_800, 1_714_564_830)));
    // 24 bits of seconds after the sign-on: past 194 days, the last message is taken then.
    s.spoke(Millis((1_714_564_800 + 400 * 86_400) * 1000));
    assert_eq!(
        s.times(),
        Some((1_714_564_800, 1_714_564_800 + (1 << 24) - 1))
    );
    assert_eq!(core::mem::size_of::<Seen>(), 7);
}

/// What only some users have.
#[derive(Debug, Default)]
struct UserExtra {
    /// The away message, while the user is away (see [`query`]).
    away: Option<Text>,
    /// The folded name of the account it is signed in to (its nick is the account's).
    account: Option<String>,
    /// An always-on account put out of rooms while nothing of it was connected (no device,
    /// or only devices waiting for a resume): each room, and who did it and why in words
    /// (kicked, banned, the room closed), for its next sign-in on a client that shows them, or
    /// the resume of a device that hears the room's own event instead (at most
    /// [`crate::limits::MAX_ROOMS_PER_USER`]; kept in the store, [`crate::persist::Write::AwayNotes`],
    /// except in a cluster).
    put_out_away: Vec<(RoomName, String)>,
}

impl idmap::Keyed for User {
    type Key = UserId;
    fn key(&self) -> &UserId {
        &self.id
    }
}

impl idmap::Keyed for Device {
    type Key = DeviceId;
    fn key(&self) -> &DeviceId {
        &self.id
    }
}

impl User {
    fn new(id: UserId, nick: Nick) -> User {
        User {
            id,
            nick,
            rooms: RoomSet::default(),
            devices: few::Few::default(),
            extra: None,
        }
    }

    /// The away message, while the user is away.
    fn away(&self) -> Option<&Text> {
        self.extra.as_ref()?.away.as_ref()
    }

    /// The folded name of the account it is signed in to.
    fn account(&self) -> Option<&str> {
        self.extra.as_ref()?.account.as_deref()
    }

    fn set_away(&mut self, away: Option<Text>) {
        self.extra_mut().away = away;
        self.drop_empty_extra();
    }

    fn set_account(&mut self, account: Option<String>) {
        self.extra_mut().account = account;
        self.drop_empty_extra();
    }

    fn extra_mut(&mut self) -> &mut UserExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    fn drop_empty_extra(&mut self) {
        if self
            .extra
            .as_ref()
            .is_some_and(|e| e.away.is_none() && e.account.is_none() && e.put_out_away.is_empty())
        {
            self.extra = None;
        }
    }
}

#[derive(Debug)]
struct Device {
    /// Its own id, its key in the hub's table ([`idmap`]).
    id: DeviceId,
    user: UserId,
    conn: Option<ConnId>,
    /// Resumable dialects only: the device waits for a resume when its connection drops.
    resume: Option<ResumeKey>,
    /// Highest message id accepted from this device (people get hub-chosen ids).
    last_id: MsgId,
    /// The address it is counted under (that of the connection it came on; `None`: exempt),
    /// for the per-address counts of devices waiting for a resume and of rooms created.
    addr: Option<IpAddr>,
    /// What a device has only for a moment or only when signed in, while it has any (boxed
    /// apart: 8 bytes in every device instead of 32, and a `Device` of 112 bytes takes a glibc
    /// chunk of 128 where one of 136 took 144, issue 22's idle memory).
    rare: Option<Box<DeviceRare>>,
    /// When it signed on and last sent a message (WHOIS's `317`).
    seen: Seen,
}

/// The parts of a [`Device`] that most devices have not.
#[derive(Debug, Default)]
struct DeviceRare {
    /// The token before `resume`, while the client may not have received `resume` (its
    /// connection has sent nothing since the welcome that carried it): a connection lost in
    /// that moment leaves the client with only this one.
    prev_resume: Option<ResumeKey>,
    /// A resume that waits to see whether the attached connection is alive.
    probe: Option<Box<Probe>>,
    /// The id of the device key this device signed in with or was given: signing out revokes it.
    key: Option<u64>,
    /// Messages from this device that were refused (not in the room, muted, no such nick, not
    /// stored: the kind of each), oldest first, at most [`crate::limits::SESSION_MAX_PENDING`].
    /// A resend of one whose id is at or below `last_id` (a later message was taken, or its
    /// batch failed after it was) is refused again, not acknowledged as had: its client may
    /// not have heard the refusal (its connection dropped first, or with the bytes). Kept for
    /// the device's life: nothing tells when its client has heard. Stored with its session
    /// record, so a kill forgets none ([`crate::persist::SessionRecord::refused`]).
    refused: Vec<(MsgId, crate::wire::ErrorKind)>,
    /// Whether `refused` changed since the session record was last written: the record is
    /// written whole (not only its last id) when a later message is taken, in that message's
    /// batch. Until then a restart forgets nothing that matters: a resend above the stored last
    /// id is taken as new.
    refused_unsaved: bool,
    /// Its client's first message had id 0 and was taken: `last_id` (0 before anything was
    /// taken) cannot tell, so a resend of it is known by this. In the session record
    /// ([`crate::persist::SessionRecord::took_zero`], written whole when it is taken), so a
    /// resend after a restart is acknowledged, not taken again.
    took_zero: bool,
    /// Rooms its user left while this device's client may not have heard it: kicked, banned,
    /// the room closed, or parted by another device, while it was away (waiting for a resume)
    /// or on a connection still open that may be dead (its resume takes the session over, and
    /// the `Parted` sent there is lost). Only these may replay what put it out on its resume
    /// (`Hub::replay_until_out`): a client names the rooms it was in, and a room it never was
    /// in must tell it nothing, whatever nick was once put out there. At most
    /// [`crate::limits::MAX_ROOMS_PER_USER`] (a user is in no more at once; the oldest goes).
    /// In the session record, so a restart forgets none
    /// ([`crate::persist::SessionRecord::put_out`]).
    put_out: Vec<RoomName>,
    /// Whether the last word its client had of its user's own away was "away" (a sign-in
    /// into an away account, or an `Away` of its own nick): a resume after another device
    /// brought the user back says so (`Hub::tell_away_on_resume`).
    told_away: bool,
}

impl Device {
    fn prev_resume(&self) -> Option<&ResumeKey> {
        self.rare.as_ref()?.prev_resume.as_ref()
    }

    fn probe(&self) -> Option<&Probe> {
        self.rare.as_ref()?.probe.as_deref()
    }

    fn set_prev_resume(&mut self, key: ResumeKey) {
        self.rare.get_or_insert_with(Box::default).prev_resume = Some(key);
    }

    fn probe_mut(&mut self) -> Option<&mut Probe> {
        self.rare.as_mut()?.probe.as_deref_mut()
    }

    fn set_probe(&mut self, probe: Probe) {
        self.rare.get_or_insert_with(Box::default).probe = Some(Box::new(probe));
    }

    fn set_key(&mut self, key: Option<u64>) {
        if key.is_some() || self.rare.is_some() {
            self.rare.get_or_insert_with(Box::default).key = key;
            self.drop_empty_rare();
        }
    }

    fn take_prev_resume(&mut self) -> Option<ResumeKey> {
        let prev = self.rare.as_mut()?.prev_resume.take();
        self.drop_empty_rare();
        prev
    }

    fn take_probe(&mut self) -> Option<Box<Probe>> {
        let probe = self.rare.as_mut()?.probe.take();
        self.drop_empty_rare();
        probe
    }

    /// Message `id` was refused (`kind`): a resend of it is refused again (see
    /// [`DeviceRare::refused`]). `false` if it was refused before.
    fn refuse(&mut self, id: MsgId, kind: crate::wire::ErrorKind) -> bool {
        let kept = &mut self.rare.get_or_insert_with(Box::default).refused;
        if kept.iter().any(|(k, _)| *k == id) {
            return false;
        }
        if kept.len() >= crate::limits::SESSION_MAX_PENDING {
            kept.remove(0);
        }
        kept.push((id, kind));
        if let Some(r) = self.rare.as_mut() {
            r.refused_unsaved = true;
        }
        true
    }

    /// Whether refusals wait to be written with the session record (and clears it: they are
    /// being written).
    fn take_refused_unsaved(&mut self) -> bool {
        self.rare
            .as_mut()
            .is_some_and(|r| core::mem::take(&mut r.refused_unsaved))
    }

    /// The messages refused, oldest first (see [`DeviceRare::refused`]).
    fn refused(&self) -> &[(MsgId, crate::wire::ErrorKind)] {
        self.rare.as_ref().map_or(&[], |r| &r.refused)
    }

    /// Whether its client's first message, with id 0, was taken (see [`DeviceRare::took_zero`]).
    fn took_zero(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| r.took_zero)
    }

    /// Whether message `id` is a resend of one this device already had taken: at or below the
    /// highest taken, except a first message with id 0 (a session starts having taken none).
    fn had(&self, id: MsgId) -> bool {
        id < self.last_id || (id == self.last_id && (id != MsgId(0) || self.took_zero()))
    }

    /// How message `id` was refused, if it was (see [`DeviceRare::refused`]).
    fn refusal(&self, id: MsgId) -> Option<crate::wire::ErrorKind> {
        let kept = &self.rare.as_ref()?.refused;
        kept.iter().find(|(k, _)| *k == id).map(|(_, kind)| *kind)
    }

    /// Its user left `room`, and its client may not have heard (see [`DeviceRare::put_out`]).
    fn note_put_out(&mut self, room: &RoomName) {
        let kept = &mut self.rare.get_or_insert_with(Box::default).put_out;
        if kept.contains(room) {
            return;
        }
        if kept.len() >= crate::limits::MAX_ROOMS_PER_USER {
            kept.remove(0);
        }
        kept.push(room.clone());
    }

    /// The rooms it was put out of (see [`DeviceRare::put_out`]).
    fn put_out(&self) -> &[RoomName] {
        self.rare.as_ref().map_or(&[], |r| &r.put_out)
    }

    /// The rooms it was put out of, forgotten as they are taken (on its resume).
    fn take_put_out(&mut self) -> Vec<RoomName> {
        let taken = self
            .rare
            .as_mut()
            .map(|r| core::mem::take(&mut r.put_out))
            .unwrap_or_default();
        self.drop_empty_rare();
        taken
    }

    /// The id of the device key it signed in with or was given.
    fn key(&self) -> Option<u64> {
        self.rare.as_ref()?.key
    }

    fn take_key(&mut self) -> Option<u64> {
        let key = self.rare.as_mut()?.key.take();
        self.drop_empty_rare();
        key
    }

    /// Whether its client last heard its user is away (see [`DeviceRare::told_away`]).
    fn told_away(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| r.told_away)
    }

    fn set_told_away(&mut self, away: bool) {
        if away || self.rare.is_some() {
            self.rare.get_or_insert_with(Box::default).told_away = away;
            self.drop_empty_rare();
        }
    }

    fn drop_empty_rare(&mut self) {
        if self.rare.as_ref().is_some_and(|r| {
            r.prev_resume.is_none()
                && r.probe.is_none()
                && r.key.is_none()
                && r.refused.is_empty()
                && !r.took_zero
                && r.put_out.is_empty()
                && !r.told_away
        }) {
            self.rare = None;
        }
    }
}

/// What the hub keeps of a user's current resume token: its id and a hash of its secret, never
/// the secret itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ResumeKey {
    id: u64,
    hash: [u8; 32],
}

impl ResumeKey {
    fn of(token: &ResumeToken) -> ResumeKey {
        use sha2::Digest;
        ResumeKey {
            id: token.id(),
            hash: sha2::Sha256::digest(token.secret()).into(),
        }
    }

    /// Whether `token` is this key's, comparing the secret's hash in constant time.
    fn opens(&self, token: &ResumeToken) -> bool {
        use subtle::ConstantTimeEq;
        let other = ResumeKey::of(token);
        self.id == other.id && bool::from(self.hash.ct_eq(&other.hash))
    }
}

/// A resume waiting for the connection the session is attached to to answer a probe.
#[derive(Debug)]
struct Probe {
    /// The connection that asked to resume.
    newcomer: ConnId,
    /// Its hello.
    hello: dialect::Hello,
    /// The token of the `Ping` sent to the attached connection: its `Pong` answers at once.
    ping: u64,
    /// The attached connection sent something since the probe began (not its `Pong`): it may
    /// be alive, or those bytes were on their way before it went (a client that says a line,
    /// drops its connection and resumes at once). Decided when the probe's time is up (alive:
    /// the newcomer is refused) or the connection closes first (the newcomer takes over).
    heard: bool,
}

/// The chat server's state. See the module docs for how to drive it.
pub struct Hub {
    config: Config,
    rng: ChaCha20Rng,
    next_conn: u64,
    next_user: u64,
    next_device: u64,
    next_ping: u64,
    /// The most users there were at once: on this node, and in all (a cluster's, as seen by
    /// this node's `LUSERS`).
    users_peak: (usize, usize),
    /// Nicks given up lately, for IRC's WHOWAS.
    whowas: whowas::Whowas,
    /// IRC connections' `MONITOR` lists.
    monitors: monitor::Monitors,
    /// Store reads out, and who waits for them.
    queries: past::Queries,
    /// The durable store's state, when there is one.
    durable: Option<Box<durable::Durable>>,
    /// Where the last look for a room of departed users stopped (see `reclaim_orphan_room`).
    reclaim_cursor: Option<RoomName>,
    /// Rooms a join made new so far: each one's [`room::Room::made`].
    rooms_made: u64,
    /// Steps decoded from one read, reused between reads.
    steps: Vec<Step>,
    /// A say or action of one of those steps runs: its room event may wait for the next ones
    /// of the read, to be delivered with them (see [`Hub::broadcast`]).
    deferring: bool,
    /// Room events waiting to be delivered together.
    fanout: deliver::Fanout,
    /// Client-only tags relayed so far ([`relay`]): each relay's number, for its msgid.
    relayed: u64,
    /// By slot: a `ConnId` names its slot ([`slab`]); touched once per member per broadcast.
    conns: slab::ConnSlab,
    // Keys the hub hands out itself (no peer chooses them), so a fast non-keyed hash is safe.
    /// Boxed: the table has up to twice as many slots as users, and a slot is a pointer.
    users: idmap::IdMap<User>,
    /// Boxed, like `users`.
    devices: idmap::IdMap<Device>,
    /// Bumped whenever a room's membership, a user's devices or a device's connection changes:
    /// a big room's list of attached connections ([`room::Room::attached`]) is current while
    /// it was built at this generation.
    attach_gen: u64,
    /// Folded nick → user.
    nicks: users::Nicks,
    /// Resume token id → device.
    tokens: users::Tokens,
    /// Registered accounts, their keys and markers, and password work out.
    accounts: Box<accounts::Accounts>,
    /// Server-wide bans (see `moderate.rs`).
    server_bans: Vec<crate::moderation::Entry>,
    rooms: Rooms,
    /// History bytes held across all rooms (see [`Config::history_budget_bytes`]).
    history_bytes: usize,
    /// A room an admin acts in from outside it (see `Hub::moderate`): kept while it is empty
    /// until the admin is told what was done, from the room's own events.
    told_outside: Option<RoomName>,
    /// Bans whose members leave at their moment ([`Timer::BanKicks`]), if a `KICK` has not put
    /// them out first: typed on IRC here, or come from another node (see `moderate.rs`). In
    /// the order they came, each gone at its moment.
    ban_kicks: Vec<moderate::BanKick>,
    out: Out,
    timers: Timers,
    ips: IpTable,
    /// Which refusals at admission the log hears of.
    refusals_said: admit::RefusalLog,
    refused_pending: usize,
    detached: usize,
    shut: bool,
    /// What the hub counted, for an operator's metrics.
    stats: Stats,
    /// The latest `now` passed in, for the few places deep in a call that need the time.
    now: Millis,
    /// The shell holds input not given to the hub yet (see [`Hub::input_waiting`]).
    input_waiting: bool,
    /// This node's side of a cluster, when it is one (see `cluster.rs`).
    cluster: Option<Box<cluster::Cluster>>,
    /// Quiet rooms' comings and goings since their last summary (see `crowd.rs`).
    crowds: crowd::Crowds,
    /// Big fan-outs in quick succession take turns (see `pace.rs`).
    pace: pace::Pace,
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
        let durable = config.durable.then(|| Box::new(durable::Durable::new()));
        Hub {
            config,
            rng,
            next_conn: 1,
            next_user: 1,
            users_peak: (0, 0),
            whowas: whowas::Whowas::default(),
            monitors: monitor::Monitors::default(),
            next_device: 1,
            next_ping: 1,
            steps: Vec::new(),
            deferring: false,
            fanout: deliver::Fanout::default(),
            relayed: 0,
            reclaim_cursor: None,
            rooms_made: 0,
            queries: past::Queries::default(),
            durable,
            conns: slab::ConnSlab::default(),
            users: idmap::IdMap::default(),
            devices: idmap::IdMap::default(),
            attach_gen: 1,
            nicks: users::Nicks::default(),
            tokens: users::Tokens::default(),
            accounts: Box::default(),
            server_bans: Vec::new(),
            rooms: Rooms::new(),
            history_bytes: 0,
            told_outside: None,
            ban_kicks: Vec::new(),
            out: Out::default(),
            timers: Timers::default(),
            ips: IpTable::default(),
            refusals_said: admit::RefusalLog::new(admit::REFUSALS_SAID_EVERY),
            refused_pending: 0,
            detached: 0,
            shut: false,
            stats: Stats::default(),
            now: Millis::ZERO,
            input_waiting: false,
            cluster: None,
            crowds: crowd::Crowds::default(),
            pace: pace::Pace::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A socket from `peer` was accepted on natter's own port ([`Door::Natter`]). See
    /// [`Hub::accept_on`].
    pub fn accept(&mut self, peer: IpAddr, now: Millis) -> Result<ConnId, Refused> {
        self.accept_on(Door::Natter, peer, now)
    }

    /// A socket from `peer` was accepted on `door`. Soft limits (per-IP, connect rate, server
    /// full) are answered in the client's own dialect once it is known, then closed; `Err` only
    /// when even that is too much (or after [`Hub::shutdown`]).
    pub fn accept_on(&mut self, door: Door, peer: IpAddr, now: Millis) -> Result<ConnId, Refused> {
        self.now = self.now.max(now);
        self.admit(door, peer, now, false)
    }

    /// A TLS handshake from `peer` is about to start. A full handshake costs the server far more
    /// than a plain connect, so it counts as `peer`'s connect in the connect-rate window
    /// ([`Config::max_connects_per_window`]) before it starts, and past the limit it is refused
    /// (`Err` with words for the log; the shell closes the socket, as no TLS is up to say it in).
    /// A connection whose handshake then finishes is accepted with
    /// [`Hub::accept_handshaken`], which does not count it again. Loopback (when exempt) and
    /// trusted proxies are not counted, as at accept.
    pub fn may_handshake(&mut self, peer: IpAddr, now: Millis) -> Result<(), String> {
        self.now = self.now.max(now);
        let peer = peer.to_canonical();
        if admit::IpTable::exempt(&self.config, peer) || self.config.trusted_proxies.contains(&peer)
        {
            return Ok(());
        }
        let counted = self.ips.attempt(&self.config, peer, now);
        if self.ips.len() > 0 && !self.timers.is_set(Timer::PruneIps) {
            self.timers
                .set(Timer::PruneIps, now + self.config.connect_window);
        }
        counted.map_err(|r| {
            self.stats.refused(Some(r.limit));
            r.detail
        })
    }

    /// As [`Hub::accept_on`], for a connection whose TLS handshake [`Hub::may_handshake`]
    /// counted already.
    pub fn accept_handshaken(
        &mut self,
        door: Door,
        peer: IpAddr,
        now: Millis,
    ) -> Result<ConnId, Refused> {
        self.now = self.now.max(now);
        self.admit(door, peer, now, true)
    }

    /// Bytes read from `conn`'s socket.
    pub fn handle_bytes(&mut self, conn: ConnId, data: &[u8], now: Millis) {
        self.now = self.now.max(now);
        self.stats.bytes_in += data.len() as u64;
        self.feed(conn, data, now);
    }

    /// `n` bytes of what was polled for `conn` have been written to its socket.
    pub fn handle_written(&mut self, conn: ConnId, n: usize, now: Millis) {
        self.now = self.now.max(now);
        self.stats.bytes_out += n as u64;
        let lim = self.config.queue_limits();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.written(&mut self.out, n);
        if !c.owes() || !c.drained(&self.out, lim) {
            return;
        }
        let (gaps, refills) = c.take_owed();
        if gaps.is_empty() && refills.is_empty() {
            return;
        }
        debug!(conn = %conn, rooms = gaps.len(), refills = refills.len(), "backlog drained");
        let held = self.out.hold;
        for (room, (first, last)) in gaps {
            if first > last || self.awaits_catch_up(conn, &room, first) {
                // A catch-up's store page is awaited: the live traffic held back meanwhile
                // comes with the replay that goes on from the page, no marker needed (an nc
                // or IRC user would be told of lines missed that it then gets).
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.keep_owing(room, (first, last));
                }
                continue;
            }
            // A refill owed for the room from before the gap comes after this marker: the
            // marker starts where the refill does, or the client would take the refill's
            // older seqs for ones it had, and drop them (it keeps only the part of a marker
            // above what it saw).
            let first = match refills.get(&room) {
                Some(after) if *after < first => after.next(),
                _ => first,
            };
            // A marker names seqs: not before they are durable (a restarted server would give
            // seqs lost with it out again, and the client would take them for these).
            let pending = self
                .durable
                .as_ref()
                .and_then(|d| d.batch_of_seq(&room, last));
            self.out.hold = held.max(pending);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.gap_told(&room, first, last);
            }
            let gap = crate::wire::ServerMsg::Gap { room, first, last };
            self.reply(conn, Reply::Msg(gap));
        }
        self.out.hold = held;
        for (room, after) in refills {
            self.history(conn, room, after);
        }
    }

    /// The peer shut its side of `conn` (a read returned end of file): it sends nothing more,
    /// though it may still read. A person on nc (`nc -N`, `nc -q 1`, `ncat`, a script's
    /// `printf '/who\n' | nc ...`) is answered what it typed and then quits, as if its last
    /// line were `/quit`: true, and the shell keeps writing until the hub closes the connection
    /// (then calls [`Hub::handle_close`] as ever). False for any other connection, which this
    /// left as it was: the shell closes it (stops, and calls [`Hub::handle_close`]).
    pub fn handle_eof(&mut self, conn: ConnId, now: Millis) -> bool {
        self.now = self.now.max(now);
        self.eof(conn, now)
    }

    /// `conn`'s socket is gone (peer closed, error, or the shell closed it after `Close`).
    pub fn handle_close(&mut self, conn: ConnId, now: Millis) {
        self.now = self.now.max(now);
        self.read_on_leaving(conn);
        // A `Quit` still waiting for a flood token when the peer hung up (a client that quits
        // and closes at once, like the CLI at the end of its input) is a quit all the same: the
        // user leaves now, its nick free, rather than waiting out the resume window as if its
        // line had dropped. What waited ahead of it is dropped with the connection, as before.
        let quit = self
            .conns
            .get(&conn)
            .filter(|c| !c.closing())
            .and_then(|c| c.rare())
            .and_then(|r| {
                r.pending.iter().find_map(|req| match req {
                    Request::Msg(crate::wire::ClientMsg::Quit { reason }) => Some(reason.clone()),
                    _ => None,
                })
            });
        if let Some(reason) = quit
            && let Some(did) = self.conns.get(&conn).and_then(|c| c.device())
        {
            self.leave_device(did, dialect::users_quit_words(reason), now);
        }
        if let Some((_, did)) = self.begin_close(conn, None) {
            self.release_device(did, reply::Gone::Closed, now);
        }
        self.queries.forget(conn);
        self.forget_account_work(conn);
        self.forget_monitors(conn);
        self.attach_gen += 1;
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.out.unqueued(c.backlog_bytes());
        if let Some(ip) = c.counted_ip() {
            self.ips.release(&self.config, ip, now);
        }
        if c.refused().is_some() {
            self.refused_pending = self.refused_pending.saturating_sub(1);
        }
        debug!(conn = %conn, "closed");
    }

    /// Whether the shell holds input it has not handed to the hub yet (its queue of reads is not
    /// empty), said before [`Hub::handle_timeout`]. A busy server reads a connection's first
    /// bytes in time but hands them over later, behind other connections' input: while input
    /// waits, a detection wait that ends does not greet the connection as a person yet (it is
    /// looked at again [`DETECT_RECHECK`] later, and greeted at the hello timeout at the latest).
    pub fn input_waiting(&mut self, waiting: bool) {
        self.input_waiting = waiting;
    }

    /// A detached device's resume grace has ended: its user leaves as one whose connection
    /// was lost.
    fn grace_over(&mut self, d: DeviceId, now: Millis) {
        if self.devices.get(&d).is_some_and(|d| d.conn.is_none()) {
            debug!(device = d.0, "resume grace over");
            self.undetach(d, now);
            let why = Text::new(dialect::QUIT_CONNECTION_LOST).ok();
            self.leave_device(d, why, now);
        }
    }

    /// A deadline from [`Hub::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.now = self.now.max(now);
        while let Some(t) = self.timers.pop_due(now) {
            match t {
                // Its first bytes may be among the input the shell holds: looked at again
                // once that is in (the hello timeout still greets it in the end).
                Timer::Detect(c) if self.input_waiting => {
                    self.timers.set(Timer::Detect(c), now + DETECT_RECHECK);
                }
                Timer::Detect(c) => self.detect_wait_over(c, now),
                Timer::Hello(c) => self.hello_timeout(c, now),
                Timer::Keepalive => self.keepalive_sweep(now),
                Timer::Flood(c) => self.run_pending(c, now),
                Timer::Takeover(d) => self.takeover_probe_over(d, now),
                Timer::Grace(d) => self.grace_over(d, now),
                Timer::Crowds => self.crowd_summaries(),
                Timer::BanKicks => self.ban_kicks_due(now),
                Timer::ClusterRedo => self.redo_membership(now),
                // `poll_store` hands out the next batch from now on.
                Timer::StoreRetry => {}
                Timer::PruneIps => {
                    self.ips.prune(&self.config, now, usize::MAX);
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
        let reason = dialect::QUIT_SHUTDOWN;
        // Users who will not be back: every device of theirs is an nc or IRC connection (they
        // cannot resume) and no always-on account keeps them in their rooms. Their rooms hear
        // them quit now, and keep it in history, so that natter's clients resuming after the
        // restart (and those who join later) read that they went. (Not on a node of a cluster:
        // the other nodes see its users go with its lease.)
        let mut gone: Vec<UserId> = self
            .users
            .keys()
            .copied()
            .filter(|uid| {
                self.users.get(uid).is_some_and(|u| {
                    !u.devices.is_empty()
                        && u.devices
                            .iter()
                            .all(|d| self.devices.get(d).is_some_and(|d| d.resume.is_none()))
                })
            })
            .filter(|uid| self.cluster.is_none() && !self.stays_offline(*uid))
            .collect();
        gone.sort();
        for uid in gone {
            let Some(u) = self.users.get(&uid) else {
                continue;
            };
            let (nick, rooms) = (u.nick.clone(), u.rooms.iter().cloned().collect::<Vec<_>>());
            self.quit_user(uid, Text::new(reason).ok(), now);
            // The store's record of who was in each room stays as it was: it tells the
            // restarted hub whom not to replay what they saw when their IRC clients come back
            // (`Room::boot`), which the quit does not in a big room (counted, not an event).
            for room in &rooms {
                self.record_presence(room, &nick, true);
            }
        }
        for id in ids {
            let bye = crate::wire::ServerMsg::Bye {
                reason: reason.into(),
            };
            self.reply(id, Reply::Msg(bye));
            // An nc or IRC connection of an account read its rooms up to now, as when it
            // closes any other way (it is detached from its user below, so not later).
            self.read_on_leaving(id);
            // No quit notices for the others: they resume, or are kept always-on.
            if let Some((_, did)) = self.begin_close(id, Some(reason.into()))
                && let Some(d) = self.devices.get_mut(&did)
            {
                self.attach_gen += 1;
                d.conn = None;
            }
        }
    }

    /// Next bytes to write: all that is queued for one connection. Connections come in the order
    /// their first queued byte was; bytes for a connection already gone were dropped with it.
    ///
    /// While big fan-outs follow each other within [`Config::fanout_pace`], connections take
    /// turns (see [`crate::limits::FANOUT_PACE`]): `None` then means "no more turns now", with
    /// output still queued, and [`Hub::poll_timeout`] says when the next turns are due. The
    /// last words of a connection told to close ([`HubEvent::Close`]) never wait for a turn: a
    /// shell that polls transmits before events writes them before it closes.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        while let Some(conn) = self.out.closing.pop() {
            if let Some(t) = self.take_transmit(conn) {
                return Some(t);
            }
        }
        let (big, every) = self.pace_by();
        while !self.out.ready.is_empty() {
            if !self.pace.take(self.out.ready.len(), self.now, big, every) {
                self.out.some_polled();
                return None;
            }
            let Some((conn, _)) = self.out.ready.pop_front() else {
                break;
            };
            if let Some(t) = self.take_transmit(conn) {
                return Some(t);
            }
        }
        self.out.all_polled();
        None
    }

    /// What counts as a big fan-out now, and the pace for it: on a node of a cluster, fan-outs
    /// smaller than a big one are paced too, more briskly (see
    /// [`crate::limits::CLUSTER_PACED_FANOUT`]).
    fn pace_by(&self) -> (usize, Millis) {
        let (big, every) = (self.config.paced_fanout, self.config.fanout_pace);
        if self.cluster.is_some() && self.out.ready.len() < big {
            return (
                big.min(crate::limits::CLUSTER_PACED_FANOUT),
                every.min(crate::limits::CLUSTER_FANOUT_PACE),
            );
        }
        (big, every)
    }

    /// The server used `busy` thousandths of the CPU it may use (all its cores, all the time:
    /// 1,000) over the interval since the last report. While a busy big room's members take
    /// turns, a server over [`crate::limits::PACE_LOAD_HIGH`] stretches the pace (see there);
    /// reports are optional, and without them the pace is exactly [`Config::fanout_pace`].
    pub fn handle_load(&mut self, busy: u32, now: Millis) {
        self.now = self.now.max(now);
        self.pace.observe_load(busy);
    }

    /// All that is queued for `conn`, if anything.
    fn take_transmit(&mut self, conn: ConnId) -> Option<Transmit> {
        let c = self.conns.get_mut(&conn)?;
        let data = c.take_queue(&mut self.out);
        (!data.is_empty()).then_some(Transmit { conn, data })
    }

    /// Next event to log or act on.
    pub fn poll_event(&mut self) -> Option<HubEvent> {
        self.out.poll_event()
    }

    /// When [`Hub::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let turns = self.pace.next(self.out.ready.len(), self.pace_by().1);
        match (self.timers.next(), turns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
        let uid = self.conns.get(&conn)?.user()?;
        self.users.get(&uid).map(|u| &u.nick)
    }

    /// How `conn` talks, once known.
    pub fn kind(&self, conn: ConnId) -> Option<ConnKind> {
        self.conns.get(&conn)?.kind()
    }

    /// Whether `conn` is open here: accepted, and [`Hub::handle_close`] not yet called for it.
    /// A shell that keeps its own table by [`ConnId::slot`] asks this rather than keep the
    /// whole id beside each entry.
    pub fn has_conn(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some()
    }

    /// The address `conn`'s socket came from (a trusted proxy's, not the client it names), for
    /// the shell's log lines; `None` for an unknown connection.
    pub fn peer_ip(&self, conn: ConnId) -> Option<IpAddr> {
        self.conns.get(&conn).map(|c| c.socket_ip)
    }

    /// The address of the client behind `conn`: the one a trusted proxy's PROXY header or the
    /// bridge's `Forwarded` named, else the socket's. What the per-address limits count and
    /// the `sign-in failed` line says; `None` for an unknown connection.
    pub fn client_ip(&self, conn: ConnId) -> Option<IpAddr> {
        self.conns.get(&conn).map(conn::Conn::client_ip)
    }

    /// Whether `conn` was refused at admission and the log was not told (at most one line per
    /// limit per ten seconds says such refusals, with how many went unsaid): its accept and
    /// close are then not worth a line either. Every refusal is counted in the metrics.
    pub fn refusal_unsaid(&self, conn: ConnId) -> bool {
        self.conns
            .get(&conn)
            .and_then(|c| c.rare())
            .is_some_and(|r| r.refusal_unsaid)
    }

    /// Whether the user with `nick` (attached or detached) is in `room`.
    pub fn is_member(&self, nick: &Nick, room: &RoomName) -> bool {
        self.nicks
            .get(&self.users, nick.folded_key().as_str())
            .and_then(|u| self.users.get(&u))
            .is_some_and(|u| u.rooms.contains(room))
    }

    /// Rooms that exist.
    pub fn rooms(&self) -> usize {
        self.rooms.len()
    }

    /// Rooms somebody is in (on this node).
    pub fn rooms_in_use(&self) -> usize {
        self.rooms
            .values()
            .filter(|r| !r.members.is_empty())
            .count()
    }

    /// Rooms registered to a founder: they outlive their last member, store or not.
    pub fn registered_rooms(&self) -> usize {
        self.rooms
            .values()
            .filter(|r| r.policy.as_ref().is_some_and(|p| p.founder.is_some()))
            .count()
    }

    /// Rooms with settings (registered ones, and those whose founder's account was removed):
    /// they outlive their last member, store or not.
    pub fn rooms_with_settings(&self) -> usize {
        self.rooms.values().filter(|r| r.policy.is_some()).count()
    }

    /// Users known (attached or waiting for resume).
    pub fn users(&self) -> usize {
        self.users.len()
    }

    /// Users detached and waiting for resume.
    pub fn detached(&self) -> usize {
        self.detached
    }

    /// Nicks IRC connections `MONITOR`, over all of them (none once they are all gone).
    pub fn monitored(&self) -> usize {
        self.monitors.watched()
    }

    /// Events kept in `room`'s history.
    pub fn history_kept(&self, room: &RoomName) -> Option<usize> {
        self.rooms.get(room).map(room::Room::kept)
    }
}
