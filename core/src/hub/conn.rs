//! One connection's state: where it is in its life (and, once known, its dialect), its outbound
//! backlog (bytes queued or handed to the shell and not yet written) with the per-room gaps
//! recorded while the backlog was over the limit, and its flood-control queue.

use super::dialect::{AnyDialect, Door, Limit, Request};
use super::{ConnKind, DeviceId, HubEvent, UserId};
use crate::flood::Bucket;
use crate::render::count;
use crate::time::Millis;
use crate::types::{ConnId, RoomName, Seq};
use bytes::{Bytes, BytesMut};
use core::net::IpAddr;
use smallvec::SmallVec;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Where a connection is in its life. Each state holds exactly what it needs: there is no
/// dialect before the first byte decides it, and no user before the handshake or after close.
#[derive(Debug)]
pub(crate) enum Life {
    /// From a trusted proxy: the connection may start with a PROXY header naming the client.
    Proxy,
    /// Nothing received yet on a door that tells dialects apart by the first byte.
    Detect,
    /// The dialect is known; its handshake is under way.
    Handshake(AnyDialect),
    /// Through the handshake: `user` talks through `dialect`, as its device `device`.
    Ready(AnyDialect, UserId, DeviceId),
    /// Told to close (a `Close` event was emitted, last words queued); input is ignored.
    Closing,
}

/// The shell's and the hub's outputs; connections write into it.
#[derive(Debug, Default)]
pub(crate) struct Out {
    /// Connections whose queue went from empty to not, in that order (an id may be stale: the
    /// connection was removed since), each with the cycle buffer current then: nothing in its
    /// queue is older, so buffers before the first one listed are no longer needed.
    pub(crate) ready: VecDeque<(ConnId, u64)>,
    /// Connections told to close (a [`HubEvent::Close`] below) whose queue may still hold bytes:
    /// handed out before any paced turn, so a close never overtakes its connection's last words.
    pub(crate) closing: Vec<ConnId>,
    events: VecDeque<HubEvent>,
    /// Broadcast frames since the last transmit, back to back, each written here once: a
    /// member's queue holds runs of it ([`Shared`]), so a broadcast costs no copy per member and
    /// a member's transmit is one slice of it however many broadcasts it holds.
    cycle: BytesMut,
    /// Which cycle buffer `cycle` is (each freeze starts the next).
    epoch: u64,
    /// The next buffer's number: above every number given so far, so buffers are numbered in
    /// the order they were started, and [`Out::frozen`] (kept in order) finds them by number.
    next_epoch: u64,
    /// While a replay writes into a buffer of its own ([`Out::begin_own`]): the cycle buffer
    /// and its number, put aside until [`Out::end_own`].
    parked: Option<(u64, BytesMut)>,
    /// Cycle buffers frozen for transmits, until every queue holding runs of them is polled.
    frozen: Vec<(u64, Bytes)>,
    /// The last runs copied out of their cycle buffers (see [`Out::resolve`]), until every
    /// queue is polled: members with the same run share its copy.
    copies: Vec<(Shared, Bytes)>,
    /// Every connection's backlog bytes, summed.
    backlog_total: usize,
    /// With a durable store: output pushed now is held until this batch is durable (set while
    /// the batch being built has writes), and the event being pushed, to drop it if its batch
    /// fails (0: not an event).
    pub(crate) hold: Option<u64>,
    pub(crate) tag: u64,
    /// Connections holding output, by the batch it waits for.
    pub(crate) held_by: BTreeMap<u64, Vec<ConnId>>,
    /// Held output of the batch being built refers to the cycle buffers (until it is sealed).
    pub(crate) unsealed: bool,
    /// Room events wait to be delivered together (`Hub::flush_fanout`): nothing else may be
    /// queued for anyone until they are, or a connection's output would change order.
    pub(crate) deferred: bool,
}

impl Out {
    /// Every connection's backlog bytes, summed.
    pub(crate) fn backlog_total(&self) -> usize {
        self.backlog_total
    }

    /// A connection with `n` backlog bytes is gone.
    pub(crate) fn unqueued(&mut self, n: usize) {
        self.backlog_total -= n;
    }

    /// Asks the shell to close `conn` once what was queued for it is written.
    pub(crate) fn close(&mut self, conn: ConnId, reason: String) {
        self.closing.push(conn);
        self.events.push_back(HubEvent::Close { conn, reason });
    }

    /// Any other event for the shell.
    pub(crate) fn event(&mut self, ev: HubEvent) {
        debug_assert!(
            !matches!(ev, HubEvent::Close { .. }),
            "closes go through `close`"
        );
        self.events.push_back(ev);
    }

    /// The next event for the shell.
    pub(crate) fn poll_event(&mut self) -> Option<HubEvent> {
        self.events.pop_front()
    }

    /// Cycle buffers kept for queues not yet polled.
    #[cfg(test)]
    pub(crate) fn frozen_len(&self) -> usize {
        self.frozen.len()
    }

    /// Some queues were polled, not all (output is paced): cycle buffers older than every queue
    /// still listed are let go, as [`Out::all_polled`] lets all of them go.
    pub(crate) fn some_polled(&mut self) {
        if self.unsealed {
            return;
        }
        // Listed in order, each with the buffer current then: the first is the oldest.
        let oldest = self.ready.front().map_or(self.cycle_epoch(), |&(_, e)| e);
        let keep = self.frozen.partition_point(|&(e, _)| e < oldest);
        self.frozen.drain(..keep);
    }

    /// Adds a broadcast frame to the cycle buffer, for every member to queue.
    pub(crate) fn share(&mut self, frame: &[u8]) -> Shared {
        let start = self.cycle.len();
        self.cycle.extend_from_slice(frame);
        Shared {
            epoch: self.epoch,
            start,
            end: self.cycle.len(),
        }
    }

    /// The bytes of a run, freezing the current cycle buffer if the run is in it.
    ///
    /// A slice keeps its whole cycle buffer alive until it is written, so a run that is a small
    /// part of its buffer (a quiet room's event in a cycle busy elsewhere) is copied instead: a
    /// connection's unwritten slices then hold at most [`SHARE_MIN_PART`] times its backlog,
    /// which the outbound limit bounds, however slowly it reads.
    fn resolve(&mut self, run: Shared) -> Bytes {
        debug_assert!(self.parked.is_none(), "nothing is polled during a replay");
        if run.epoch == self.epoch {
            self.freeze();
        }
        // In order of their epochs.
        let Ok(at) = self.frozen.binary_search_by_key(&run.epoch, |(e, _)| *e) else {
            return Bytes::new();
        };
        let buf = &self.frozen[at].1;
        let len = run.end - run.start;
        if len.saturating_mul(SHARE_MIN_PART) >= buf.len() {
            return buf.slice(run.start..run.end);
        }
        // Every member of a room polled in this cycle has the same run, nearly always (their
        // queues took the same broadcasts): one copy for all of them, not one each. A copy is
        // exactly the run, so each holder still pins only its own bytes.
        if let Some((_, copy)) = self.copies.iter().rev().find(|(r, _)| *r == run) {
            return copy.clone();
        }
        let copy = Bytes::copy_from_slice(&buf[run.start..run.end]);
        if self.copies.len() >= COPIES_KEPT {
            self.copies.remove(0);
        }
        self.copies.push((run, copy.clone()));
        copy
    }

    /// Every queue has been polled: no run refers to a frozen buffer any more, except held
    /// output of the batch being built (see [`Conn::seal_held`]), which keeps them until then.
    pub(crate) fn all_polled(&mut self) {
        self.copies.clear();
        if !self.unsealed {
            self.frozen.clear();
        }
    }

    /// The cycle buffer so far is frozen (if it holds anything): what is shared from now on
    /// goes into the next.
    fn freeze(&mut self) {
        if !self.cycle.is_empty() {
            let frozen = self.cycle.split().freeze();
            // After a replay's own buffer (numbered later, frozen earlier) the cycle buffer
            // goes before it.
            let at = self.frozen.partition_point(|&(e, _)| e < self.epoch);
            self.frozen.insert(at, (self.epoch, frozen));
            self.epoch = self.next_number();
        }
    }

    /// The cycle buffer's number, also while a replay's own buffer is current: a queue that
    /// starts now may get runs of the cycle buffer after the replay, so buffers from this one
    /// on are still needed.
    fn cycle_epoch(&self) -> u64 {
        self.parked.as_ref().map_or(self.epoch, |&(e, _)| e)
    }

    /// A number for the next buffer started.
    fn next_number(&mut self) -> u64 {
        self.next_epoch = self.next_epoch.max(self.epoch) + 1;
        self.next_epoch
    }

    /// What is shared from now on is for one connection alone (a replay, see
    /// `deliver::own_buffer`), in a buffer of its own of `cap` bytes: its run is then that
    /// whole buffer, handed out as a slice of it, and freed once written. Until
    /// [`Out::end_own`].
    ///
    /// The cycle buffer is put aside meanwhile, not frozen: the broadcasts before the replay
    /// and after it stay one run in every member's queue. Freezing it made each join in a burst
    /// start a new cycle buffer, so a member's queue held a piece per join, its vector grew
    /// (to kilobytes for a room filling up in one batch), and what those vectors left free in
    /// the allocator's arena stayed there once the burst was over (issue 22's idle memory).
    pub(crate) fn begin_own(&mut self, cap: usize) {
        debug_assert!(self.parked.is_none(), "replays do not nest");
        let own = self.next_number();
        let cycle = core::mem::replace(&mut self.cycle, BytesMut::with_capacity(cap));
        self.parked = Some((core::mem::replace(&mut self.epoch, own), cycle));
    }

    /// Back to the cycle buffer for broadcasts, as it was before [`Out::begin_own`].
    pub(crate) fn end_own(&mut self) {
        let Some((epoch, cycle)) = self.parked.take() else {
            debug_assert!(false, "end_own without begin_own");
            return;
        };
        if !self.cycle.is_empty() {
            // The newest number given: it goes last.
            let own = core::mem::replace(&mut self.cycle, cycle).freeze();
            self.frozen.push((self.epoch, own));
        } else {
            self.cycle = cycle;
        }
        self.epoch = epoch;
    }
}

/// Copied runs remembered for other members with the same run (see [`Out::resolve`]): members
/// of one room are polled one after the other, so a few suffice.
const COPIES_KEPT: usize = 8;

/// A run is shared (a slice of its cycle buffer) only if it is at least 1/`SHARE_MIN_PART` of
/// the buffer; a smaller one is copied (see [`Out::resolve`]).
const SHARE_MIN_PART: usize = 4;

/// A run of a cycle buffer: one or more broadcast frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shared {
    epoch: u64,
    start: usize,
    end: usize,
}

impl Shared {
    /// `self` followed at once by `next`, as one run (`None` if they are not back to back).
    pub(crate) fn then(self, next: Shared) -> Option<Shared> {
        (self.epoch == next.epoch && self.end == next.start).then_some(Shared {
            end: next.end,
            ..self
        })
    }
}

/// One message's bytes as queued: broadcast frames shared with other members, or bytes of its
/// own (a reply, a stored frame replayed, a line for a person).
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    Shared(Shared),
    Own(Bytes),
}

impl Piece {
    pub(crate) fn len(&self) -> usize {
        match self {
            Piece::Shared(r) => r.end - r.start,
            Piece::Own(b) => b.len(),
        }
    }
}

impl From<Shared> for Piece {
    fn from(r: Shared) -> Piece {
        Piece::Shared(r)
    }
}

impl From<Bytes> for Piece {
    fn from(b: Bytes) -> Piece {
        Piece::Own(b)
    }
}

impl From<Vec<u8>> for Piece {
    fn from(v: Vec<u8>) -> Piece {
        Piece::Own(Bytes::from(v))
    }
}

impl From<String> for Piece {
    fn from(s: String) -> Piece {
        Piece::Own(Bytes::from(s))
    }
}

/// Outbound limits in force (from the config).
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    pub(crate) max_msgs: usize,
    pub(crate) max_bytes: usize,
    pub(crate) hard_bytes: usize,
    /// All connections' backlogs together: past it, only connections whose own backlog is
    /// under `pressure_floor` take more room traffic.
    pub(crate) total_bytes: usize,
    pub(crate) pressure_floor: usize,
}

/// One connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) id: ConnId,
    /// The socket's address.
    pub(crate) socket_ip: IpAddr,
    /// Counted in the per-IP table under [`Conn::counted_ip`] (false: exempt, or refused). The
    /// address is the socket's unless a trusted proxy named another ([`Rare::client_ip`]): a
    /// flag here instead of an `Option<IpAddr>` of 17 bytes, so a `Conn` of 200 bytes takes a
    /// glibc chunk of 208 where one of 216 took 224 (issue 22).
    counted: bool,
    /// Where it came in.
    pub(crate) door: Door,
    /// It asked to resume a session attached elsewhere and waits for the probe's outcome.
    pub(crate) probing: bool,
    /// It came through a TLS handshake (the shell's TLS listener): WHOIS's `671`.
    pub(crate) secure: bool,
    /// Its rare part may hold gaps or refills ([`Rare::gaps`], [`Rare::refills`]): set when one
    /// is recorded, cleared once both are empty. Delivery and `written` look in `rare` only
    /// then: most connections that have a rare part (a scroll cursor, a flood queue) owe
    /// nothing, and for each member of a big room that saves a cache miss per broadcast.
    owes: bool,
    pub(crate) life: Life,
    /// Its output not yet written, while there is any (see [`Backlog`]).
    backlog: Option<Box<Backlog>>,
    pub(crate) bucket: Bucket,
    /// What few connections ever need (a refusal, a backlog's gaps, a flood queue, limits
    /// hit), allocated the first time one does: most connections never pay for it.
    rare: Option<Box<Rare>>,
    pub(crate) last_rx: Millis,
    /// A ping sent and not yet answered: when, plus one (its token is not kept: any input
    /// answers it). 8 bytes, not an `Option<Millis>`'s 16: a `Conn` of 216 bytes takes a glibc
    /// chunk of 224, one of 224 takes 240. See [`Conn::ping_sent`].
    ping: Option<core::num::NonZeroU64>,
    /// Output waiting for its batch to be durable (a durable store only), in order. Boxed: 8
    /// bytes in every connection instead of a deque's 32, as most hold nothing most of the time.
    #[allow(clippy::box_collection)]
    held: Option<Box<VecDeque<Held>>>,
    /// Per room, the oldest seq this connection was shown: where `Older` with no seq starts.
    /// Nearly every connection has one (a join shows recent history), so it is not in [`Rare`].
    pub(crate) scroll: Scroll,
}

/// What a connection pushed and has not yet seen written. Allocated by the first push after it
/// caught up and dropped when it catches up again (everything written, nothing held): an idle
/// connection holds 8 bytes for it instead of 80 (with [`Conn::ping_sent`] in 8 bytes, a `Conn`
/// of 216 bytes takes a glibc chunk of 224 instead of 304, issue 22). A busy connection keeps it, and its queue's and transmits'
/// allocations with it, from one transmit to the next.
///
/// A member of a busy room catches up after nearly every write, so its backlog comes and goes
/// once per transmit: the queue and the transmits in flight hold their usual one or two entries
/// inline, in the same allocation, instead of two vectors of their own (two allocations fewer
/// per member per transmit; the bytes are paid only while there is output, issue 22).
#[derive(Debug, Default)]
struct Backlog {
    /// Queued and not yet polled, in order; consecutive broadcast frames are one run.
    queue: SmallVec<[Piece; 2]>,
    /// Bytes pushed and not yet confirmed written (polled or not).
    bytes: usize,
    /// Messages pushed and not yet confirmed written: those in `queue` and in `polled`, and
    /// those held for a store commit.
    msgs: usize,
    /// Messages in `queue`.
    queue_msgs: usize,
    /// Transmits handed out and not wholly written, oldest first: bytes not yet written and
    /// messages in it. A transmit's messages count as queued until its last byte is written, so
    /// the count is exact at transmit boundaries and a little high in between; the bookkeeping
    /// is per transmit (a few per connection), not per message.
    polled: SmallVec<[(usize, usize); 2]>,
}

impl Backlog {
    /// Nothing pushed is left unwritten.
    fn caught_up(&self) -> bool {
        self.msgs == 0 && self.bytes == 0 && self.queue.is_empty() && self.polled.is_empty()
    }
}

/// Per room, the oldest seq a connection was shown. A connection is in few rooms, most in one:
/// that one entry is held inline, more in a vector holding exactly its entries (a vector for
/// one entry cost an idle connection a 64-byte allocation; a map in the rare parts, the rare
/// parts and a tree node: about 450 bytes, issue 22).
#[derive(Debug, Default)]
pub(crate) enum Scroll {
    #[default]
    Empty,
    One(RoomName, Seq),
    Many(Vec<(RoomName, Seq)>),
}

impl Scroll {
    pub(crate) fn get(&self, room: &RoomName) -> Option<Seq> {
        match self {
            Scroll::Empty => None,
            Scroll::One(r, s) => (r == room).then_some(*s),
            Scroll::Many(v) => v.iter().find(|(r, _)| r == room).map(|(_, s)| *s),
        }
    }

    /// Sets `room`'s entry to `seq`.
    pub(crate) fn set(&mut self, room: &RoomName, seq: Seq) {
        match self {
            Scroll::Empty => *self = Scroll::One(room.clone(), seq),
            Scroll::One(r, s) if r == room => *s = seq,
            Scroll::One(..) => {
                if let Scroll::One(r, s) = core::mem::take(self) {
                    // Exactly two entries' room.
                    *self = Scroll::Many(vec![(r, s), (room.clone(), seq)]);
                }
            }
            Scroll::Many(v) => match v.iter_mut().find(|(r, _)| r == room) {
                Some(e) => e.1 = seq,
                None => {
                    v.reserve_exact(1);
                    v.push((room.clone(), seq));
                }
            },
        }
    }

    /// Lowers `room`'s entry to `seq` (sets it if there is none).
    pub(crate) fn lower(&mut self, room: &RoomName, seq: Seq) {
        let seq = self.get(room).map_or(seq, |s| s.min(seq));
        self.set(room, seq);
    }
}

/// A piece of output waiting for a batch of writes to be durable.
#[derive(Debug)]
struct Held {
    /// The batch it waits for.
    batch: u64,
    /// The room event it carries (0: none), dropped if the event's batch fails. A run of
    /// broadcast frames holds the events of one batch only, all of them dropped if it fails:
    /// this is the first.
    event: u64,
    /// Bytes of its own, or (until its batch is sealed) a run of the cycle buffer that grows
    /// with each broadcast frame of the batch, as a queue's runs do.
    data: Piece,
    /// Messages in it.
    msgs: usize,
}

/// The parts of a connection that most connections never use.
#[derive(Debug, Default)]
pub(crate) struct Rare {
    /// Refused at admission: told in its mode as soon as that is known, then closed.
    pub(crate) refused: Option<String>,
    /// Its refusal at admission was not said in the log ([`super::admit::RefusalLog`]): nor
    /// are its accept and close.
    pub(crate) refusal_unsaid: bool,
    /// Rooms whose traffic is being skipped: first..=last missed seq.
    pub(crate) gaps: BTreeMap<RoomName, (Seq, Seq)>,
    /// History refills that stopped because the backlog was full: room → continue after this
    /// seq once it drains (the client asked once; it is not made to ask again).
    pub(crate) refills: BTreeMap<RoomName, Seq>,
    /// Rooms whose missed lines are being replayed under a header (`Note::MissedStart`): the
    /// footer follows their last line, once every refill of the room is done.
    pub(crate) footers: BTreeSet<RoomName>,
    /// Requests waiting for a flood-control token.
    pub(crate) pending: VecDeque<Request>,
    /// Nick changes' own bucket ([`crate::limits::NICK_BURST`]), from the first change on
    /// (none yet: full).
    pub(crate) nick_bucket: Option<Bucket>,
    /// The start of a PROXY header from a trusted proxy, until it is whole.
    pub(crate) proxy_header: Vec<u8>,
    /// The client's address a trusted proxy named, while it is the one counted (see
    /// [`Conn::counted_ip`]).
    client_ip: Option<IpAddr>,
    /// Closed while output was held for a store commit: the `Close` event waits for it.
    pub(crate) close_when_released: Option<String>,
    limits_hit: BTreeSet<Limit>,
    /// Rooms this connection left (a part, a kick) whose windows its client keeps (IRC: WeeChat
    /// keeps a parted channel's buffer), oldest first, at most
    /// [`MAX_ROOMS_PER_USER`](crate::limits::MAX_ROOMS_PER_USER): a join of one again
    /// replays only what came after what it was sent (see [`Conn::left_seen`]).
    parted: Vec<Parted>,
    /// Rooms it is in where it was told lines were not delivered to it (a gap marker; IRC's
    /// `*** N message(s)` notice), by the first and the last seq told of, for a client that
    /// keeps its windows: a part records what it was sent from just before there, so that a
    /// join again replays the lines it never got (see [`Conn::left_seen`]), and counts as left
    /// out only those up to the last (it read what came after live). At most one per room it
    /// is in; taken at its part.
    told_gaps: BTreeMap<RoomName, (Seq, Seq)>,
}

/// What a connection had been sent of a room when it left it: the room's events up to `seen`,
/// in the room numbered `made` ([`Room::made`](super::room::Room::made): a memory-only server
/// drops a room nobody is in, and one made again counts its seqs from 1).
#[derive(Debug)]
struct Parted {
    room: RoomName,
    seen: Seq,
    made: u64,
    /// The last seq of the lines it was not delivered after `seen` (a slow read), if any: what
    /// came after those it was sent live.
    missed_upto: Option<Seq>,
}

impl super::idmap::Keyed for Conn {
    type Key = ConnId;
    fn key(&self) -> &ConnId {
        &self.id
    }
}

impl Conn {
    pub(crate) fn new(id: ConnId, ip: IpAddr, door: Door, burst: u32, now: Millis) -> Conn {
        Conn {
            id,
            socket_ip: ip,
            counted: false,
            door,
            probing: false,
            secure: false,
            owes: false,
            life: Life::Detect,
            backlog: None,
            bucket: Bucket::new(burst, now),
            rare: None,
            last_rx: now,
            ping: None,
            held: None,
            scroll: Scroll::default(),
        }
    }

    /// When the ping not yet answered was sent, if one was.
    pub(crate) fn ping_sent(&self) -> Option<Millis> {
        self.ping.map(|p| Millis(p.get() - 1))
    }

    /// A ping was sent at `at` (`None`: answered, or none outstanding).
    pub(crate) fn set_ping(&mut self, at: Option<Millis>) {
        self.ping = at.and_then(|t| core::num::NonZeroU64::new(t.0.saturating_add(1)));
    }

    pub(crate) fn closing(&self) -> bool {
        matches!(self.life, Life::Closing)
    }

    /// The dialect, once known (and until closing).
    pub(crate) fn dialect(&self) -> Option<&AnyDialect> {
        match &self.life {
            Life::Handshake(d) | Life::Ready(d, _, _) => Some(d),
            Life::Proxy | Life::Detect | Life::Closing => None,
        }
    }

    /// The dialect, to change.
    pub(crate) fn dialect_mut(&mut self) -> Option<&mut AnyDialect> {
        match &mut self.life {
            Life::Handshake(d) | Life::Ready(d, _, _) => Some(d),
            Life::Proxy | Life::Detect | Life::Closing => None,
        }
    }

    /// Its user, once through the handshake.
    pub(crate) fn user(&self) -> Option<UserId> {
        match self.life {
            Life::Ready(_, u, _) => Some(u),
            _ => None,
        }
    }

    /// Its user's device for this connection, once through the handshake.
    pub(crate) fn device(&self) -> Option<DeviceId> {
        match self.life {
            Life::Ready(_, _, d) => Some(d),
            _ => None,
        }
    }

    /// How it talks; `None` until known.
    pub(crate) fn kind(&self) -> Option<ConnKind> {
        self.dialect().map(AnyDialect::kind)
    }

    /// Closing: input is ignored from now on. Returns the user it had, if any.
    pub(crate) fn close(&mut self) -> Option<(UserId, DeviceId)> {
        let user = self.user().zip(self.device());
        self.life = Life::Closing;
        if let Some(rare) = self.rare.as_deref_mut() {
            rare.pending.clear();
            rare.gaps.clear();
            rare.refills.clear();
        }
        self.owes = false;
        self.scroll = Scroll::default();
        user
    }

    /// Through the handshake: `user` talks through this connection's dialect from now on, as
    /// its device `device`.
    pub(crate) fn make_ready(&mut self, user: UserId, device: DeviceId) {
        self.probing = false;
        self.life = match core::mem::replace(&mut self.life, Life::Closing) {
            Life::Handshake(d) | Life::Ready(d, _, _) => Life::Ready(d, user, device),
            other => {
                debug_assert!(false, "ready without a dialect: {other:?}");
                other
            }
        };
    }

    /// The address counted in the per-IP table (`None`: exempt, or refused).
    pub(crate) fn counted_ip(&self) -> Option<IpAddr> {
        if !self.counted {
            return None;
        }
        Some(
            self.rare()
                .and_then(|r| r.client_ip)
                .unwrap_or(self.socket_ip),
        )
    }

    /// The client's address: the one a trusted proxy named, else the socket's. What log lines
    /// about the client name (a proxy's own address would be the wrong one to ban).
    pub(crate) fn client_ip(&self) -> IpAddr {
        self.counted_ip().unwrap_or(self.socket_ip)
    }

    /// Counts it under `ip` (`None`: not counted).
    pub(crate) fn set_counted_ip(&mut self, ip: Option<IpAddr>) {
        self.counted = ip.is_some();
        let client = ip.filter(|ip| *ip != self.socket_ip);
        if client.is_some() {
            self.rare_mut().client_ip = client;
        } else if let Some(r) = self.rare_mut_if_any() {
            r.client_ip = None;
        }
    }

    /// The connection left `room`, whose events up to `seen` it had been sent (the room
    /// numbered `made`, see [`Parted`]; and, with `missed_upto`, those after that last seq of
    /// the lines it was not). The oldest record goes when there are too many: that room,
    /// joined again, replays its recent history in full, as before.
    pub(crate) fn left_seen(
        &mut self,
        room: &RoomName,
        seen: Seq,
        made: u64,
        missed_upto: Option<Seq>,
    ) {
        let parted = &mut self.rare_mut().parted;
        parted.retain(|p| p.room != *room);
        if parted.len() >= crate::limits::MAX_ROOMS_PER_USER {
            parted.remove(0);
        }
        parted.push(Parted {
            room: room.clone(),
            seen,
            made,
            missed_upto,
        });
    }

    /// The connection was told that `first` to `last` of `room` were not delivered to it (a gap
    /// marker): kept for its part, if its client keeps the window (see [`Rare::told_gaps`]).
    pub(crate) fn gap_told(&mut self, room: &RoomName, first: Seq, last: Seq) {
        if !self.dialect().is_some_and(|d| d.replays_since_own_quit()) {
            return;
        }
        self.rare_mut()
            .told_gaps
            .entry(room.clone())
            .and_modify(|(f, l)| {
                *f = (*f).min(first);
                *l = (*l).max(last);
            })
            .or_insert((first, last));
    }

    /// The first and the last seq of `room` it was told were not delivered to it, while in it
    /// (see [`Conn::gap_told`]), taken.
    pub(crate) fn take_gap_told(&mut self, room: &RoomName) -> Option<(Seq, Seq)> {
        self.rare_mut_if_any()?.told_gaps.remove(room)
    }

    /// The event `seq` of `room`, the one after what the connection was sent when it left
    /// (its own part), counts as sent too.
    pub(crate) fn left_seen_also(&mut self, room: &RoomName, seq: Seq) {
        let Some(rare) = self.rare_mut_if_any() else {
            return;
        };
        if let Some(p) = rare.parted.iter_mut().find(|p| p.room == *room)
            && p.seen.next() == seq
        {
            p.seen = seq;
        }
    }

    /// The connection is in `room` again: what it had been sent of it when it left, if that is
    /// known and the room is the one it left (numbered `made`, its latest seq `last` now),
    /// with the last seq of the lines after that it was not sent, if it read later ones live
    /// ([`Parted::missed_upto`]); `Seq(0)` otherwise. The record is used up.
    pub(crate) fn back_in(&mut self, room: &RoomName, made: u64, last: Seq) -> (Seq, Option<Seq>) {
        let Some(rare) = self.rare_mut_if_any() else {
            return (Seq(0), None);
        };
        let Some(at) = rare.parted.iter().position(|p| p.room == *room) else {
            return (Seq(0), None);
        };
        let p = rare.parted.remove(at);
        if p.made == made && p.seen <= last {
            (p.seen, p.missed_upto)
        } else {
            (Seq(0), None)
        }
    }

    /// The rare parts, if any were ever needed.
    pub(crate) fn rare(&self) -> Option<&Rare> {
        self.rare.as_deref()
    }

    /// The rare parts, allocated now if need be.
    pub(crate) fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// The rare parts, if any were ever needed, to change.
    pub(crate) fn rare_mut_if_any(&mut self) -> Option<&mut Rare> {
        self.rare.as_deref_mut()
    }

    /// A history refill that stopped because the backlog was full continues after `after` once
    /// it drains (see `Hub::handle_written`). One already owed for the room from further back
    /// is kept: a later request (the client's next gap) must not drop the rest of an earlier
    /// one, which the client would then wait for in vain (what is sent twice it ignores).
    pub(crate) fn refill_after(&mut self, room: RoomName, after: Seq) {
        self.rare_mut()
            .refills
            .entry(room)
            .and_modify(|a| *a = (*a).min(after))
            .or_insert(after);
        self.owes = true;
    }

    /// The gaps and refills owed once the backlog drains, taken (empty if none).
    pub(crate) fn take_owed(
        &mut self,
    ) -> (BTreeMap<RoomName, (Seq, Seq)>, BTreeMap<RoomName, Seq>) {
        self.owes = false;
        match self.rare.as_deref_mut() {
            Some(rare) => (
                core::mem::take(&mut rare.gaps),
                core::mem::take(&mut rare.refills),
            ),
            None => Default::default(),
        }
    }

    /// Whether gaps or refills may be owed (see [`Conn::take_owed`]).
    pub(crate) fn owes(&self) -> bool {
        self.owes
    }

    /// Why it was refused at admission, if it was.
    pub(crate) fn refused(&self) -> Option<&String> {
        self.rare()?.refused.as_ref()
    }

    /// Commands waiting for a flood-control token.
    pub(crate) fn pending_len(&self) -> usize {
        self.rare().map_or(0, |r| r.pending.len())
    }

    /// Bytes pushed and not yet written.
    pub(crate) fn backlog_bytes(&self) -> usize {
        self.backlog.as_ref().map_or(0, |b| b.bytes)
    }

    /// Messages pushed and not yet fully written.
    pub(crate) fn backlog_msgs(&self) -> usize {
        self.backlog.as_ref().map_or(0, |b| b.msgs)
    }

    /// The backlog, allocated now if the connection had caught up.
    fn backlog_mut(&mut self) -> &mut Backlog {
        self.backlog.get_or_insert_with(Box::default)
    }

    /// Drops the backlog's bookkeeping if everything was written.
    fn drop_backlog_if_caught_up(&mut self) {
        if self.backlog.as_deref().is_some_and(Backlog::caught_up) {
            self.backlog = None;
        }
    }

    /// Whether room traffic of `len` bytes may be queued now. An empty queue takes anything, so
    /// a limit set below one message still lets traffic (and the gap flush) make progress.
    /// Under pressure on the total, only a backlog under the pressure floor takes more.
    pub(crate) fn room_fits(&self, out: &Out, len: usize, lim: QueueLimits) -> bool {
        let (bytes, msgs) = (self.backlog_bytes(), self.backlog_msgs());
        let mine = bytes + len;
        msgs == 0
            || (msgs < lim.max_msgs
                && mine <= lim.max_bytes
                && (out.backlog_total + len <= lim.total_bytes || mine <= lim.pressure_floor))
    }

    /// Whether the backlog is low enough to send gap markers and resume delivery: half its own
    /// limits, and under the pressure floor while the total is over its limit.
    pub(crate) fn drained(&self, out: &Out, lim: QueueLimits) -> bool {
        let (bytes, msgs) = (self.backlog_bytes(), self.backlog_msgs());
        msgs <= lim.max_msgs / 2
            && bytes <= lim.max_bytes / 2
            && (out.backlog_total <= lim.total_bytes || bytes <= lim.pressure_floor)
    }

    /// Queues a message's bytes, whatever the backlog (callers check the limits).
    #[inline]
    pub(crate) fn push(&mut self, out: &mut Out, data: impl Into<Piece>) {
        self.push_msgs(out, data.into(), 1);
    }

    /// Queues `msgs` messages' bytes, back to back in `data` (a run of broadcast frames when
    /// more than one), whatever the backlog.
    fn push_msgs(&mut self, out: &mut Out, data: Piece, msgs: usize) {
        debug_assert!(
            !out.deferred,
            "output queued while room events wait for delivery (flush them first)"
        );
        let len = data.len();
        if self.closing() || len == 0 {
            return;
        }
        let waits_for = match (&self.held, out.hold) {
            (_, Some(batch)) => Some(batch),
            // Behind output already held: keeps its order.
            (Some(held), None) => held.back().map(|h| h.batch),
            (None, None) => None,
        };
        if let Some(batch) = waits_for {
            // A broadcast frame held for the batch being built stays a run of the cycle buffer
            // until the batch is sealed (`seal_held`), so a member's frames of one batch are one
            // slice, not one per event; anything else is resolved now.
            let data = match data {
                Piece::Shared(run) if out.hold == Some(batch) && out.tag != 0 => {
                    out.unsealed = true;
                    Piece::Shared(run)
                }
                Piece::Shared(run) => Piece::Own(out.resolve(run)),
                own @ Piece::Own(_) => own,
            };
            let held = self.held.get_or_insert_with(Default::default);
            if held.back().is_none_or(|h| h.batch != batch) {
                out.held_by.entry(batch).or_default().push(self.id);
            }
            match (held.back_mut(), data) {
                // The next frame of the cycle buffer, for the same batch: the run grows.
                (Some(h), Piece::Shared(next))
                    if h.batch == batch
                        && matches!(h.data, Piece::Shared(run)
                            if run.epoch == next.epoch && run.end == next.start) =>
                {
                    if let Piece::Shared(run) = &mut h.data {
                        run.end = next.end;
                    }
                    h.msgs += msgs;
                }
                (_, data) => held.push_back(Held {
                    batch,
                    event: out.tag,
                    data,
                    msgs,
                }),
            }
            let b = self.backlog_mut();
            b.bytes += len;
            b.msgs += msgs;
            out.backlog_total += len;
            return;
        }
        let id = self.id;
        let b = self.backlog_mut();
        if b.queue.is_empty() {
            out.ready.push_back((id, out.cycle_epoch()));
        }
        match (b.queue.last_mut(), data) {
            // The next frame of the cycle buffer: the run grows.
            (Some(Piece::Shared(run)), Piece::Shared(next))
                if run.epoch == next.epoch && run.end == next.start =>
            {
                run.end = next.end;
            }
            (_, data) => b.queue.push(data),
        }
        b.bytes += len;
        b.msgs += msgs;
        b.queue_msgs += msgs;
        out.backlog_total += len;
    }

    /// Output held for batches up to `upto` may go: it joins the queue, in order. With
    /// `failed`, the events of that batch are dropped instead (their batch was not stored).
    pub(crate) fn release(&mut self, out: &mut Out, upto: u64, failed: Option<&[u64]>) {
        let Some(held) = self.held.as_mut() else {
            return;
        };
        // Held output was counted in the backlog when it was pushed.
        let b = self.backlog.get_or_insert_with(Box::default);
        while held.front().is_some_and(|h| h.batch <= upto) {
            let Some(h) = held.pop_front() else {
                break;
            };
            let len = h.data.len();
            let msgs = h.msgs;
            if failed.is_some_and(|f| h.event != 0 && f.contains(&h.event)) {
                b.bytes -= len;
                out.backlog_total -= len;
                b.msgs -= msgs;
                continue;
            }
            if b.queue.is_empty() {
                out.ready.push_back((self.id, out.cycle_epoch()));
            }
            let data = match h.data {
                // Sealed already in a shell that seals before releasing; kept safe regardless.
                Piece::Shared(run) => out.resolve(run),
                Piece::Own(b) => b,
            };
            b.queue.push(Piece::Own(data));
            b.queue_msgs += msgs;
        }
        self.after_release(out);
    }

    /// A batch failed: the held pieces of its `failed` events that wait for a later batch
    /// (replayed to this connection behind output of that batch: see `durable::replay_hold`)
    /// are dropped too, never shown.
    pub(crate) fn drop_failed(&mut self, out: &mut Out, failed: &[u64]) {
        let Some(held) = self.held.as_mut() else {
            return;
        };
        let b = self.backlog.get_or_insert_with(Box::default);
        held.retain(|h| {
            let keep = h.event == 0 || !failed.contains(&h.event);
            if !keep {
                b.bytes -= h.data.len();
                out.backlog_total -= h.data.len();
                b.msgs -= h.msgs;
            }
            keep
        });
        self.after_release(out);
    }

    /// Held output was released or dropped: a backlog caught up goes, and so does an empty
    /// held queue, closing the connection if it was told to close once it was out.
    fn after_release(&mut self, out: &mut Out) {
        if self.backlog.as_ref().is_some_and(|b| b.caught_up()) {
            self.backlog = None;
        }
        if self.held.as_ref().is_some_and(|h| h.is_empty()) {
            self.held = None;
            if let Some(reason) = self
                .rare
                .as_mut()
                .and_then(|r| r.close_when_released.take())
            {
                out.close(self.id, reason);
            }
        }
    }

    /// Batch `batch` is sealed (handed to the store): its held runs of the cycle buffer become
    /// bytes of their own, so the cycle buffer can be reused before the batch is durable.
    pub(crate) fn seal_held(&mut self, out: &mut Out, batch: u64) {
        let Some(held) = self.held.as_mut() else {
            return;
        };
        for h in held.iter_mut().rev().take_while(|h| h.batch == batch) {
            if let Piece::Shared(run) = h.data {
                h.data = Piece::Own(out.resolve(run));
            }
        }
    }

    /// Whether output waits for a store commit.
    pub(crate) fn holds_output(&self) -> bool {
        self.held.is_some()
    }

    /// Hands out everything queued since the last time, in order (empty if nothing).
    pub(crate) fn take_queue(&mut self, out: &mut Out) -> Vec<Bytes> {
        let Some(b) = self.backlog.as_deref_mut().filter(|b| !b.queue.is_empty()) else {
            return Vec::new();
        };
        let mut bytes = 0;
        // The queue keeps its allocation until the connection catches up (the backlog goes).
        let data: Vec<Bytes> = b
            .queue
            .drain(..)
            .map(|p| match p {
                Piece::Shared(run) => out.resolve(run),
                Piece::Own(b) => b,
            })
            .inspect(|b| bytes += b.len())
            .collect();
        b.polled.push((bytes, b.queue_msgs));
        b.queue_msgs = 0;
        data
    }

    /// Room traffic: queued when it fits and the room is not in a gap; otherwise the seq joins
    /// the room's gap (so order holds: nothing of the room goes out until the gap marker).
    /// True if queued.
    pub(crate) fn push_room(
        &mut self,
        out: &mut Out,
        room: &RoomName,
        seq: Seq,
        data: impl Into<Piece>,
        lim: QueueLimits,
    ) -> bool {
        let data = data.into();
        if self.closing() {
            return false;
        }
        if self.owes
            && let Some(gap) = self.rare.as_mut().and_then(|r| r.gaps.get_mut(room))
        {
            gap.0 = gap.0.min(seq);
            gap.1 = gap.1.max(seq);
            return false;
        }
        if self.room_fits(out, data.len(), lim) {
            self.push(out, data);
            return true;
        }
        tracing::debug!(conn = %self.id, %room, %seq, "backlog full, room traffic skipped");
        self.rare_mut().gaps.insert(room.clone(), (seq, seq));
        self.owes = true;
        let detail = format!(
            "outbound queue full ({}, {}): room traffic skipped",
            count(self.backlog_msgs() as u64, "message"),
            count(self.backlog_bytes() as u64, "byte")
        );
        self.limit_hit(out, Limit::Queue, detail);
        false
    }

    /// Whether it owes a gap marker for `room` (its queue overflowed): room traffic of it
    /// waits behind the marker.
    pub(crate) fn owes_gap(&self, room: &RoomName) -> bool {
        self.owes && self.rare().is_some_and(|r| r.gaps.contains_key(room))
    }

    /// A gap marker for `first..=last` of `room`, if this connection already owes one for the
    /// room (its queue overflowed, see [`Conn::push_room`]): the owed one grows to cover it,
    /// so the markers go out in order, once the backlog drains. False if none is owed.
    pub(crate) fn owe_gap(&mut self, room: &RoomName, first: Seq, last: Seq) -> bool {
        if !self.owes {
            return false;
        }
        let Some(gap) = self.rare.as_mut().and_then(|r| r.gaps.get_mut(room)) else {
            return false;
        };
        gap.0 = gap.0.min(first);
        gap.1 = gap.1.max(last);
        true
    }

    /// A replay of what an account missed in `room` since its read marker (under a
    /// [`Note::MissedStart`](crate::wire::Note) header) waits for a store page of the seqs after
    /// `after`: the room's live traffic waits too, folded into a gap owed from `after.next()`
    /// on (empty, first above last, until some comes). Sent ahead of the replay, a live seq
    /// would put the client past the replay's, and it would drop them as seen. See
    /// [`Conn::end_catch_up_wait`].
    pub(crate) fn catch_up_waits(&mut self, room: &RoomName, after: Seq) {
        self.rare_mut()
            .gaps
            .entry(room.clone())
            .or_insert((after.next(), after));
        self.owes = true;
    }

    /// The store page of [`Conn::catch_up_waits`] is in (or could not be read): the gap owed
    /// for `room` since, if it is that one (it starts after `after`), is taken. The replay
    /// that goes on from the page reaches the room's latest seq, so it covers every live seq
    /// folded into the gap.
    pub(crate) fn end_catch_up_wait(&mut self, room: &RoomName, after: Seq) -> Option<(Seq, Seq)> {
        let gaps = &mut self.rare_mut_if_any()?.gaps;
        if gaps.get(room)?.0 != after.next() {
            return None;
        }
        gaps.remove(room)
    }

    /// A gap for `room` owed again: one of [`Conn::catch_up_waits`] found when the backlog
    /// drained (nothing to announce while the page is awaited), or what a catch-up whose page
    /// could not be read did not bring.
    pub(crate) fn keep_owing(&mut self, room: RoomName, gap: (Seq, Seq)) {
        self.rare_mut().gaps.insert(room, gap);
        self.owes = true;
    }

    /// Room traffic of one read: `msgs` events of `room`, `first..=last`, back to back in
    /// `run`, queued as one piece if all of them would be (see [`Conn::push_room`]): not in a
    /// gap, and the last one fits with the others before it.
    /// False if they were not queued: the caller then pushes them one by one, which finds
    /// exactly which fit, records the gap, and acknowledges a sender whose echo did not go.
    /// With a store the run is held for the batch being built like any broadcast frame: one
    /// held piece for all of them (a batch that fails drops every event of it, so the piece
    /// needs no event of its own but one to say it is room traffic: `out.tag`).
    pub(crate) fn push_room_run(
        &mut self,
        out: &mut Out,
        room: &RoomName,
        run: Shared,
        msgs: usize,
        lim: QueueLimits,
    ) -> bool {
        if self.closing() || (self.owes && self.rare().is_some_and(|r| r.gaps.contains_key(room))) {
            return false;
        }
        let (bytes, queued) = (self.backlog_bytes(), self.backlog_msgs());
        let len = run.end - run.start;
        let mine = bytes + len;
        // One at a time, each fits if the last does (the counts only grow), except that an
        // empty queue takes its first whatever its size: that case goes one by one.
        let fits = (queued == 0 && msgs == 1)
            || (queued + msgs - 1 < lim.max_msgs
                && mine <= lim.max_bytes
                && (out.backlog_total + len <= lim.total_bytes || mine <= lim.pressure_floor));
        if fits {
            self.push_msgs(out, Piece::Shared(run), msgs);
        }
        fits
    }

    /// `n` more bytes of what was handed out were written to the socket.
    pub(crate) fn written(&mut self, out: &mut Out, mut n: usize) {
        let Some(b) = self.backlog.as_deref_mut() else {
            return;
        };
        while n > 0 {
            let Some(front) = b.polled.first_mut() else {
                break;
            };
            let (left, msgs) = *front;
            let step = n.min(left);
            b.bytes -= step;
            out.backlog_total -= step;
            n -= step;
            if step == left {
                b.msgs -= msgs;
                b.polled.remove(0);
            } else {
                front.0 -= step;
            }
        }
        // Caught up: an idle connection keeps no bookkeeping allocated.
        self.drop_backlog_if_caught_up();
    }

    /// Refused at admission for `limit`: `LimitHit` if the log is to hear of it (`said`:
    /// how many such refusals it did not hear of before this one), else only noted, so that
    /// neither it nor the connection's accept and close are logged.
    pub(crate) fn refused_at_admission(
        &mut self,
        out: &mut Out,
        limit: Limit,
        detail: String,
        said: Option<u32>,
    ) {
        match said {
            Some(0) => self.limit_hit(out, limit, detail.clone()),
            Some(unsaid) => self.limit_hit(
                out,
                limit,
                format!("{detail} ({unsaid} more refused for this limit since the last such line)"),
            ),
            None => {
                let rare = self.rare_mut();
                rare.limits_hit.insert(limit);
                rare.refusal_unsaid = true;
            }
        }
        self.rare_mut().refused = Some(detail);
    }

    /// Emits `LimitHit` the first time this connection hits `limit`.
    pub(crate) fn limit_hit(&mut self, out: &mut Out, limit: Limit, detail: String) {
        if self.rare_mut().limits_hit.insert(limit) {
            tracing::debug!(conn = %self.id, %limit, %detail, "limit hit");
            out.event(HubEvent::LimitHit {
                conn: self.id,
                limit,
                detail,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn conn(id: u64) -> Conn {
        Conn::new(
            ConnId(id),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            Door::Natter,
            10,
            Millis(0),
        )
    }

    #[test]
    fn scroll_keeps_one_exact_entry_per_room() {
        let mut c = conn(1);
        let (a, b) = (RoomName::new("#a").unwrap(), RoomName::new("#b").unwrap());
        assert_eq!(c.scroll.get(&a), None);
        c.scroll.set(&a, Seq(10));
        assert!(
            matches!(c.scroll, Scroll::One(..)),
            "one room: no allocation"
        );
        c.scroll.lower(&a, Seq(12));
        assert_eq!(c.scroll.get(&a), Some(Seq(10)), "lower never raises");
        c.scroll.lower(&a, Seq(4));
        c.scroll.lower(&b, Seq(9));
        assert_eq!(
            (c.scroll.get(&a), c.scroll.get(&b)),
            (Some(Seq(4)), Some(Seq(9)))
        );
        assert!(
            matches!(&c.scroll, Scroll::Many(v) if v.capacity() == 2),
            "no room reserved for more"
        );
        c.scroll.set(&b, Seq(20));
        assert_eq!(c.scroll.get(&b), Some(Seq(20)));
        let c3 = RoomName::new("#c").unwrap();
        c.scroll.set(&c3, Seq(30));
        assert_eq!(
            (c.scroll.get(&a), c.scroll.get(&b), c.scroll.get(&c3)),
            (Some(Seq(4)), Some(Seq(20)), Some(Seq(30)))
        );
        assert!(c.rare().is_none(), "no rare parts for a scroll cursor");
        c.close();
        assert_eq!(c.scroll.get(&a), None);
    }

    #[test]
    fn a_refill_owed_from_further_back_is_kept_when_another_stops() {
        let mut c = conn(1);
        let (a, b) = (RoomName::new("#a").unwrap(), RoomName::new("#b").unwrap());
        c.refill_after(a.clone(), Seq(55));
        c.refill_after(a.clone(), Seq(377));
        c.refill_after(b.clone(), Seq(9));
        c.refill_after(b.clone(), Seq(4));
        let (_, refills) = c.take_owed();
        assert_eq!(refills.get(&a), Some(&Seq(55)));
        assert_eq!(refills.get(&b), Some(&Seq(4)));
    }

    #[test]
    fn output_bookkeeping_is_allocated_only_while_output_is_pending() {
        let mut out = Out::default();
        let mut c = conn(1);
        assert!(c.backlog.is_none(), "a new connection holds none");
        c.push(&mut out, b"abc".to_vec());
        c.push(&mut out, b"de".to_vec());
        assert!(c.backlog.is_some());
        assert_eq!(c.take_queue(&mut out).concat(), b"abcde");
        c.written(&mut out, 4);
        assert!(c.backlog.is_some(), "one byte still unwritten");
        assert_eq!((c.backlog_msgs(), c.backlog_bytes()), (2, 1));
        c.written(&mut out, 1);
        assert!(c.backlog.is_none(), "caught up: dropped");
        assert_eq!((c.backlog_msgs(), c.backlog_bytes()), (0, 0));
        assert!(c.take_queue(&mut out).is_empty());
        c.written(&mut out, 10);
        assert_eq!(out.backlog_total(), 0);
        // Output held for a store commit counts, so the bookkeeping stays until it is written.
        out.hold = Some(1);
        c.push(&mut out, b"held".to_vec());
        out.hold = Some(2);
        c.push(&mut out, b"lost".to_vec());
        out.hold = None;
        assert_eq!((c.backlog_msgs(), c.backlog_bytes()), (2, 8));
        assert!(
            c.take_queue(&mut out).is_empty(),
            "nothing queued while held"
        );
        c.release(&mut out, 1, None);
        assert_eq!(c.take_queue(&mut out).concat(), b"held");
        c.written(&mut out, 4);
        assert!(c.backlog.is_some(), "batch 2 still held");
        assert_eq!((c.backlog_msgs(), c.backlog_bytes()), (1, 4));
        // Batch 2 stored too (no event of it failed): released, written, caught up.
        c.release(&mut out, 2, Some(&[]));
        assert_eq!(c.take_queue(&mut out).concat(), b"lost");
        c.written(&mut out, 4);
        assert!(c.backlog.is_none() && !c.holds_output());
        assert_eq!(out.backlog_total(), 0);
    }

    #[test]
    fn a_failed_batchs_held_event_leaves_no_bookkeeping() {
        let mut out = Out::default();
        let mut c = conn(1);
        out.hold = Some(3);
        out.tag = 7;
        c.push(&mut out, b"event".to_vec());
        out.hold = None;
        out.tag = 0;
        assert!(c.backlog.is_some());
        c.release(&mut out, 3, Some(&[7]));
        assert!(c.take_queue(&mut out).is_empty(), "the event was dropped");
        assert!(
            c.backlog.is_none(),
            "nothing left to write: dropped at once"
        );
        assert_eq!(out.backlog_total(), 0);
    }

    #[test]
    fn a_run_of_room_events_is_queued_whole_or_not_at_all() {
        let mut out = Out::default();
        let lim = QueueLimits {
            max_msgs: 4,
            max_bytes: 1000,
            hard_bytes: 2000,
            total_bytes: 1 << 20,
            pressure_floor: 100,
        };
        let r = RoomName::new("#r").unwrap();
        let mut c = conn(1);
        let run = |out: &mut Out, n: usize| {
            let mut run: Option<Shared> = None;
            for i in 0..n {
                let next = out.share(format!("e{i}").as_bytes());
                run = Some(run.map_or(next, |r| r.then(next).unwrap()));
            }
            run.unwrap()
        };
        let three = run(&mut out, 3);
        assert!(c.push_room_run(&mut out, &r, three, 3, lim));
        assert_eq!((c.backlog_msgs(), c.backlog_bytes()), (3, 6));
        // One more fits (4 messages), two more would not: nothing of them is queued.
        let two = run(&mut out, 2);
        assert!(!c.push_room_run(&mut out, &r, two, 2, lim));
        assert_eq!((c.backlog_msgs(), c.backlog_bytes()), (3, 6));
        assert_eq!(c.take_queue(&mut out).concat(), b"e0e1e2");
        // In a gap for the room: left to the one-by-one path, which extends the gap.
        let mut d = conn(2);
        d.rare_mut().gaps.insert(r.clone(), (Seq(5), Seq(5)));
        d.owes = true;
        let one = run(&mut out, 2);
        assert!(!d.push_room_run(&mut out, &r, one, 2, lim));
        assert_eq!(d.backlog_msgs(), 0);
    }

    #[test]
    fn a_ping_sent_at_any_time_is_remembered() {
        let mut c = conn(1);
        assert_eq!(c.ping_sent(), None);
        for t in [0, 1, 30_000, u64::MAX - 1] {
            c.set_ping(Some(Millis(t)));
            assert_eq!(c.ping_sent(), Some(Millis(t)));
        }
        c.set_ping(None);
        assert_eq!(c.ping_sent(), None);
    }

    #[test]
    fn backlog_counts_messages_until_their_transmit_is_written() {
        let mut out = Out::default();
        let mut c = conn(1);
        for m in [&b"aaaa"[..], b"bb", b"c"] {
            c.push(&mut out, Bytes::copy_from_slice(m));
        }
        assert_eq!(
            out.ready.iter().map(|&(c, _)| c).collect::<Vec<_>>(),
            [ConnId(1)],
            "listed once, when its queue was empty"
        );
        assert_eq!((c.backlog_msgs(), c.backlog_bytes()), (3, 7));
        assert_eq!(c.take_queue(&mut out).concat(), b"aaaabbc");
        c.push(&mut out, b"dddd".to_vec());
        assert_eq!((c.backlog_msgs(), c.backlog_bytes()), (4, 11));
        assert_eq!(c.take_queue(&mut out).concat(), b"dddd");
        assert!(c.take_queue(&mut out).is_empty());
        // Partly written: the bytes count down at once, the messages when the transmit is done.
        c.written(&mut out, 5);
        assert_eq!((c.backlog_msgs(), c.backlog_bytes()), (4, 6));
        assert_eq!(out.backlog_total(), 6, "the total follows");
        c.written(&mut out, 2);
        assert_eq!((c.backlog_msgs(), c.backlog_bytes()), (1, 4));
        // More than was handed out: only what was handed out counts.
        c.push(&mut out, b"e".to_vec());
        c.written(&mut out, 100);
        assert_eq!(
            (c.backlog_msgs(), c.backlog_bytes()),
            (1, 1),
            "the unpolled message stays"
        );
        assert_eq!(out.backlog_total(), 1);
    }

    #[test]
    fn broadcast_frames_are_one_shared_run_per_member() {
        let mut out = Out::default();
        let (mut a, mut b) = (conn(1), conn(2));
        for frame in [&b"one|"[..], b"two|", b"three|"] {
            let run = out.share(frame);
            a.push(&mut out, run);
            b.push(&mut out, run);
        }
        b.push(&mut out, b"own|".to_vec());
        let run = out.share(b"four|");
        a.push(&mut out, run);
        b.push(&mut out, run);
        let ta = a.take_queue(&mut out);
        let tb = b.take_queue(&mut out);
        assert_eq!(ta.len(), 1, "four frames, one piece");
        assert_eq!(ta[0], &b"one|two|three|four|"[..]);
        assert_eq!(tb.len(), 3);
        assert_eq!(tb.concat(), b"one|two|three|own|four|");
        assert_eq!(ta[0].as_ptr(), tb[0].as_ptr(), "the same bytes, not a copy");
        assert_eq!((a.backlog_msgs(), b.backlog_msgs()), (4, 5));
        out.all_polled();
        // A new cycle starts at the beginning of a new buffer.
        let run = out.share(b"five|");
        a.push(&mut out, run);
        assert_eq!(a.take_queue(&mut out).concat(), b"five|");
    }

    #[test]
    fn a_small_run_of_a_big_cycle_is_copied_not_pinned() {
        // A quiet room's member gets one small event of a cycle that is busy elsewhere: its
        // transmit must not keep the whole cycle buffer alive.
        let mut out = Out::default();
        let (mut busy, mut quiet) = (conn(1), conn(2));
        for _ in 0..100 {
            let run = out.share(&[b'x'; 100]);
            busy.push(&mut out, run);
        }
        let run = out.share(b"quiet room event");
        quiet.push(&mut out, run);
        busy.push(&mut out, run);
        let tb = busy.take_queue(&mut out);
        let tq = quiet.take_queue(&mut out);
        assert_eq!(tq.concat(), b"quiet room event");
        assert_eq!(
            tb.len(),
            1,
            "the busy member's run is the whole cycle, shared"
        );
        let cycle = tb[0].as_ptr_range();
        assert!(
            !cycle.contains(&tq[0].as_ptr()),
            "the quiet member's run is a copy"
        );
    }

    /// A replay's own buffer leaves the cycle buffer as it was: the broadcasts before and after
    /// it are one run in a member's queue (one piece, one slice), the replay its own whole
    /// buffer, and every buffer is found again until all are polled, in any order.
    #[test]
    fn a_replay_between_broadcasts_leaves_their_run_whole() {
        let mut out = Out::default();
        let (mut member, mut joiner) = (conn(1), conn(2));
        for round in 0..3u8 {
            let before = out.share(&[b'a' + round; 10]);
            member.push(&mut out, before);
            // The joiner's replay, in a buffer of its own, while the room's broadcasts go on.
            out.begin_own(4);
            let own = out.share(b"past");
            joiner.push(&mut out, own);
            out.end_own();
            let after = out.share(&[b'A' + round; 10]);
            member.push(&mut out, after);
            assert_eq!(before.then(after).map(|r| r.end - r.start), Some(20));
            assert!(before.then(own).is_none() && own.then(after).is_none());
        }
        let b = member.backlog.as_deref().expect("queued");
        assert_eq!(
            b.queue.len(),
            1,
            "one run for six broadcasts: {:?}",
            b.queue
        );
        assert!(!b.queue.spilled());
        let j = joiner.backlog.as_deref().expect("queued");
        assert_eq!(j.queue.len(), 3, "three replays, three buffers");
        // The joiner is polled first: the own buffers are frozen, the cycle buffer not yet.
        let replays = joiner.take_queue(&mut out);
        assert_eq!(replays.concat(), b"pastpastpast");
        assert!(replays.iter().all(|r| r.len() == 4), "each a whole buffer");
        let member_bytes = member.take_queue(&mut out);
        assert_eq!(member_bytes.len(), 1);
        assert_eq!(
            member_bytes[0],
            &b"aaaaaaaaaaAAAAAAAAAAbbbbbbbbbbBBBBBBBBBBccccccccccCCCCCCCCCC"[..]
        );
        let numbers: Vec<u64> = out.frozen.iter().map(|(e, _)| *e).collect();
        assert!(numbers.is_sorted(), "{numbers:?}");
        assert_eq!(numbers.len(), 4, "three replays and the cycle buffer");
        out.all_polled();
        assert_eq!(out.frozen_len(), 0);
    }

    #[test]
    fn members_with_the_same_small_run_share_one_copy() {
        let mut out = Out::default();
        let (mut busy, mut q1, mut q2) = (conn(1), conn(2), conn(3));
        for _ in 0..100 {
            let run = out.share(&[b'x'; 100]);
            busy.push(&mut out, run);
        }
        let run = out.share(b"quiet room event");
        q1.push(&mut out, run);
        q2.push(&mut out, run);
        let other = out.share(b"another room");
        q2.push(&mut out, other);
        let t1 = q1.take_queue(&mut out);
        let t2 = q2.take_queue(&mut out);
        assert_eq!(t1.concat(), b"quiet room event");
        assert_eq!(t2.concat(), b"quiet room eventanother room");
        assert_ne!(
            t1[0].as_ptr(),
            t2[0].as_ptr(),
            "different runs, different copies"
        );
        let mut q3 = conn(4);
        q3.push(&mut out, run);
        let t3 = q3.take_queue(&mut out);
        assert_eq!(
            t3[0].as_ptr(),
            t1[0].as_ptr(),
            "the same run, the same copy"
        );
        assert_eq!(t3[0].len(), b"quiet room event".len(), "exactly the run");
        busy.take_queue(&mut out);
        out.all_polled();
        assert!(
            out.copies.is_empty(),
            "copies are let go once all is polled"
        );
    }

    #[test]
    fn a_run_polled_between_broadcasts_stays_valid() {
        // A shell may poll one connection, feed the hub more, and poll the next later.
        let mut out = Out::default();
        let (mut a, mut b) = (conn(1), conn(2));
        let run = out.share(b"first|");
        a.push(&mut out, run);
        b.push(&mut out, run);
        assert_eq!(a.take_queue(&mut out).concat(), b"first|");
        let run = out.share(b"second|");
        a.push(&mut out, run);
        b.push(&mut out, run);
        let tb = b.take_queue(&mut out);
        assert_eq!(tb.concat(), b"first|second|");
        assert_eq!(tb.len(), 2, "the runs are in two cycle buffers");
        assert_eq!(a.take_queue(&mut out).concat(), b"second|");
    }
}

/// What an idle connection's hub records cost (issue 22's idle memory): their sizes, so a field
/// added without thought shows up here. glibc rounds an allocation plus 8 bytes up to 16: a
/// boxed `Conn` of 216 bytes takes 224 (with its one scroll entry inline, which saves a
/// 64-byte allocation beside it, and its output bookkeeping boxed apart while it has any), one
/// of 224 would take 240.
#[cfg(test)]
mod sizes {
    use core::mem::size_of;

    #[test]
    fn an_idle_connections_records_stay_small() {
        let conn = size_of::<super::Conn>();
        assert!(conn <= 200, "{conn}");
        let scroll = size_of::<super::Scroll>();
        assert!(scroll <= 48, "{scroll}");
        let life = size_of::<super::Life>();
        assert!(life <= 64, "{life}");
        // With their own ids (their keys in `idmap`): still glibc chunks of 128 and 112.
        let device = size_of::<super::super::Device>();
        assert!(device <= 120, "{device}");
        let user = size_of::<super::super::User>();
        assert!(user <= 104, "{user}");
        // A token table slot: the device id alone, the key read through the device
        // (`users::Tokens`).
        let token_slot = size_of::<u64>();
        assert!(token_slot <= 8, "{token_slot}");
        // A nick table slot: the user id alone, the key read through the user (`users::Nicks`).
        let nick_slot = size_of::<super::super::UserId>();
        assert!(nick_slot <= 8, "{nick_slot}");
        // Names are held inline, not behind a pointer to an allocation of their own.
        assert!(size_of::<crate::types::RoomName>() <= crate::limits::MAX_ROOM_LEN + 1);
        assert!(size_of::<crate::types::Nick>() <= crate::limits::MAX_NICK_LEN + 1);
    }
}
