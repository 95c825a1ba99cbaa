//! Room traffic: a broadcast (one event to every member, each rendering made once and shared),
//! replays of a room's history (after a join, after the seq a resuming client saw, and the
//! history refill a client asks for after a gap), with a gap for what is lost or does not fit.

use super::conn::{Out, Piece, Shared};
use super::dialect::{EventRef, Form, Joiner, Note, Reply};
use super::durable::replay_hold;
use super::room::Stored;
use super::{ConnKind, Hub, UserId};
use crate::limits::{FANOUT_EVENTS_MAX, HISTORY_MIN_KEPT};
use crate::time::Millis;
use crate::types::{ConnId, FoldedNick, Nick, RoomName, Seq};
use crate::wire::{EventKind, RoomEvent, ServerMsg, encode_frame};
use bytes::Bytes;
use rustc_hash::FxHashSet;
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::sync::Arc;

/// Rooms of at least this many members keep a list of their attached connections
/// ([`super::room::Room::attached`]); smaller ones walk their members' tables.
pub(super) const ATTACHED_LIST_MIN: usize = 16;

/// Who a broadcast leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Skip {
    /// Nobody.
    None,
    /// The connection it came from, whose dialect does not echo (people do not see their own
    /// line twice); the sender's other devices see it.
    Conn(ConnId),
    /// Every connection of this user (a joiner gets `Joined` instead).
    User(UserId),
    /// Everyone here: a cluster's event that only the other nodes need (they missed it), in
    /// the room's history all the same.
    All,
}

/// The renderings of one delivery made so far, one per dialect and form (a handful at most):
/// each event's, written into the cycle buffer one after the other, and all of them as one
/// run when every event has one.
#[derive(Default)]
struct Forms(Vec<((ConnKind, Form), Rendered)>);

struct Rendered {
    each: SmallVec<[Option<Shared>; 4]>,
    whole: Option<Shared>,
}

/// Room events of one read waiting to be delivered together ([`Hub::flush_fanout`]): says and
/// actions of one connection to one room, in order.
#[derive(Default)]
pub(super) struct Fanout {
    /// Their room and who they leave out; `None` while nothing waits.
    to: Option<(RoomName, Skip)>,
    events: Vec<Live>,
    /// While a user's nick change or quit goes out to each of its rooms
    /// ([`Hub::user_wide`]): the connections told of it already whose dialect shows it once
    /// ([`super::dialect::Dialect::user_events_once`]).
    told: Option<FxHashSet<ConnId>>,
    /// In a cluster, where each room's log brings back its own copy of a nick change or quit:
    /// such changes (by whom, what and when) of the last [`LOGGED_FOR`], [`LOGGED_USER_WIDE`]
    /// at most, with when the first copy came and who was told of each
    /// ([`Hub::user_wide_logged`]).
    logged: VecDeque<(LoggedKey, Millis, FxHashSet<ConnId>)>,
}

/// How many nick changes and quits from the cluster's room logs are remembered at most, with
/// who was told of them. A change's copies from a user's rooms come close together, but the
/// quits a reaper writes for the users of a node that is gone come room by room, each room's
/// all at once: a node of many users is many quits before the next room's copies.
const LOGGED_USER_WIDE: usize = 128;

/// How long a nick change or quit from the cluster's room logs is remembered: its copies from
/// the other rooms come within the time their logs take (a reaper's quits, within a listing of
/// the nodes' leases of each other).
const LOGGED_FOR: Millis = Millis(30_000);

/// A nick change or quit as it came from a room's log: the user's folded nick, the event, its
/// time (the same in each of its rooms: one change, one `now`).
pub(super) type LoggedKey = (FoldedNick, EventKind, Millis);

/// A room event as broadcast, not yet delivered.
struct Live {
    ev: RoomEvent,
    frame: Bytes,
    /// Its number in the store's batch (0: none).
    no: u64,
    signed_in: bool,
    /// A join's: what members learn of the joiner besides the join.
    joiner: Joiner,
    /// The connection a say or action came from.
    sender: Option<ConnId>,
    /// A say's client-only tags ([`super::dialect::Request::Tagged`]): live only.
    client_tags: Option<Arc<str>>,
}

impl Hub {
    /// Appends an event to `room` and sends it to every attached member but `skip`; `sender`
    /// is the connection a say or action came from (it gets an `Ack` if its echo is skipped). Members
    /// whose dialect and form match share one rendering, written once into the cycle buffer.
    /// Returns its seq.
    ///
    /// A say or action while a read's steps run (`Hub::deferring`) waits for the next ones of
    /// the read (up to [`FANOUT_EVENTS_MAX`]) and they are delivered together: one push per
    /// member for all of them instead of one per event, as a relay forwards a read. A member's
    /// record and backlog are far apart in memory and out of the near caches after the kernel's
    /// copies; touching them once per read instead of once per message is most of what a
    /// delivery costs the hub (issue 22's C=200 figure). Anything else queued flushes them
    /// first (`Out::deferred` checks it in debug builds), so no connection's output changes
    /// order.
    pub(super) fn broadcast(
        &mut self,
        room: &RoomName,
        from: Nick,
        kind: EventKind,
        now: Millis,
        skip: Skip,
        sender: Option<ConnId>,
    ) -> Seq {
        self.broadcast_said(room, from, kind, now, skip, sender, None)
    }

    /// [`Hub::broadcast`], of a say, action or notice sent with client-only tags
    /// (`client_tags`): members whose dialect carries them get them with it, live; the event
    /// itself, its history and its copy in the store hold none. In a cluster the event goes
    /// through the room's log, which holds the event only: the tags reach this node's members
    /// when it is back.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn broadcast_said(
        &mut self,
        room: &RoomName,
        from: Nick,
        kind: EventKind,
        now: Millis,
        skip: Skip,
        sender: Option<ConnId>,
        client_tags: Option<Arc<str>>,
    ) -> Seq {
        if self.divert(room, &from, &kind, now, skip, sender, client_tags.as_ref()) {
            return Seq(0);
        }
        let history_len = self.config.history_len;
        let budget = self.config.history_budget_bytes;
        let Some(r) = self.rooms.get_mut(room) else {
            return Seq(0);
        };
        let seq = r.next_seq();
        let may_wait = self.deferring
            && sender.is_some()
            && matches!(
                kind,
                EventKind::Say { .. } | EventKind::Act { .. } | EventKind::Notice { .. }
            );
        let msg = ServerMsg::Event(RoomEvent {
            room: room.clone(),
            seq,
            at: now,
            from,
            kind,
        });
        let frame = match encode_frame(&msg) {
            Ok(f) => f,
            Err(e) => {
                // Cannot happen: every field is bounded well inside a frame.
                tracing::warn!(%room, error = %e, "room event did not encode");
                Bytes::new()
            }
        };
        let ServerMsg::Event(ev) = msg else {
            return seq;
        };
        let no = self.record_event(&ev, sender);
        // Once per broadcast, not per member: IRC's account-tag shows who is signed in. (A nick
        // in lower case is its folded form: no allocation then.)
        let from = ev.from.as_str();
        let uid = if from.bytes().any(|b| b.is_ascii_uppercase()) {
            self.nicks.get(&self.users, ev.from.folded_key().as_str())
        } else {
            self.nicks.get(&self.users, from)
        };
        let signed_in = uid
            .and_then(|u| self.users.get(&u))
            .is_some_and(|u| u.account().is_some());
        // A join of an operator, a voiced member or someone away: IRC clients learn it from a
        // MODE or AWAY line after the JOIN.
        let joiner = if matches!(ev.kind, EventKind::Join) {
            let user = uid.and_then(|uid| self.users.get(&uid).map(|u| (uid, u)));
            Joiner {
                standing: self.standing(room, &ev.from),
                away: match user {
                    Some((_, u)) => u.away().cloned(),
                    None => self.remote_away(&ev.from),
                },
                realname: user.map(|(uid, u)| self.ident_of(uid, u).realname),
            }
        } else if let EventKind::Mode { change } = &ev.kind
            && let Some(founder) = change.as_str().strip_prefix("founder ")
        {
            // An admin's take-over: IRC's nick lists learn the new founder's `@` from a
            // `MODE +o`, which names a member only (IRC servers give nobody a `+o` of a nick
            // not in the channel): one not in it is opped when it joins, as any operator is.
            let here = Nick::new(founder).is_ok_and(|f| self.in_room(&f, room).is_ok());
            Joiner {
                standing: if here { "@" } else { "" },
                ..Joiner::default()
            }
        } else {
            Joiner::default()
        };
        if let Some(r) = self.rooms.get_mut(room) {
            r.record(
                Stored::new(seq, &frame, no),
                history_len,
                budget,
                HISTORY_MIN_KEPT,
                &mut self.history_bytes,
            );
        }
        if self
            .fanout
            .to
            .as_ref()
            .is_some_and(|(r, s)| r != room || *s != skip)
        {
            self.flush_fanout();
        }
        self.fanout.to.get_or_insert_with(|| (room.clone(), skip));
        self.fanout.events.push(Live {
            ev,
            frame,
            no,
            signed_in,
            joiner,
            sender,
            client_tags,
        });
        if may_wait && self.fanout.events.len() < FANOUT_EVENTS_MAX {
            self.out.deferred = true;
        } else {
            self.flush_fanout();
        }
        seq
    }

    /// Runs `f`, which broadcasts one user's nick change or quit to each of its `rooms`
    /// rooms, so that a connection whose dialect shows such an event once gets it from the
    /// first room only (nothing to remember for one room: nearly every user).
    pub(super) fn user_wide<R>(&mut self, rooms: usize, f: impl FnOnce(&mut Hub) -> R) -> R {
        if rooms < 2 {
            return f(self);
        }
        self.flush_fanout();
        self.fanout.told = Some(FxHashSet::default());
        let r = f(self);
        self.flush_fanout();
        self.fanout.told = None;
        r
    }

    /// Runs `f`, which delivers a room event that came back from its room's log in a cluster.
    /// `key`: the event is a nick change or quit ([`Hub::logged_key`]); then a connection whose
    /// dialect shows such an event once and that was told of it from another room's log is not
    /// told again.
    pub(super) fn user_wide_logged<R>(
        &mut self,
        key: Option<LoggedKey>,
        now: Millis,
        f: impl FnOnce(&mut Hub) -> R,
    ) -> R {
        let Some(key) = key else {
            return f(self);
        };
        self.flush_fanout();
        let logged = &mut self.fanout.logged;
        while logged
            .front()
            .is_some_and(|(_, first, _)| *first + LOGGED_FOR < now)
        {
            logged.pop_front();
        }
        let seen = logged.iter().position(|(k, _, _)| *k == key);
        let (first, told) = seen
            .and_then(|i| logged.remove(i))
            .map_or((now, FxHashSet::default()), |(_, first, told)| {
                (first, told)
            });
        self.fanout.told = Some(told);
        let r = f(self);
        self.flush_fanout();
        let told = self.fanout.told.take().unwrap_or_default();
        let logged = &mut self.fanout.logged;
        if logged.len() == LOGGED_USER_WIDE {
            logged.pop_front();
        }
        // Kept in the order first seen (`first`), so the oldest go first.
        let at = logged.partition_point(|(_, f, _)| *f <= first);
        logged.insert(at, (key, first, told));
        r
    }

    /// The key [`Hub::user_wide_logged`] remembers an event by (`from`'s `kind` at `at`), if it
    /// is a nick change or quit.
    pub(super) fn logged_key(from: &Nick, kind: &EventKind, at: Millis) -> Option<LoggedKey> {
        matches!(kind, EventKind::Nick { .. } | EventKind::Quit { .. })
            .then(|| (from.folded_key(), kind.clone(), at))
    }

    /// Delivers the room events waiting ([`Hub::broadcast`]) to every attached member of their
    /// room: each member's share in one push when they all fit, else one by one.
    pub(super) fn flush_fanout(&mut self) {
        let Some((room, skip)) = self.fanout.to.take() else {
            return;
        };
        self.out.deferred = false;
        let mut events = core::mem::take(&mut self.fanout.events);
        self.deliver(&room, skip, &mut events);
        // Its allocation is kept for the next read.
        self.fanout.events = events;
    }

    /// Sends `events` (drained) to every attached member of `room` but `skip`.
    fn deliver(&mut self, room: &RoomName, skip: Skip, events: &mut Vec<Live>) {
        let lim = self.config.queue_limits();
        let Hub {
            rooms,
            users,
            nicks,
            devices,
            conns,
            out,
            stats,
            attach_gen,
            fanout,
            ..
        } = self;
        // A nick change or quit while [`Hub::user_wide`] runs: shown once per connection
        // where the dialect says so.
        let mut told = fanout.told.as_mut().filter(|_| {
            events.len() == 1
                && matches!(
                    events[0].ev.kind,
                    EventKind::Nick { .. } | EventKind::Quit { .. }
                )
        });
        let meta: SmallVec<[(Seq, u64, Option<ConnId>); 4]> =
            events.iter().map(|l| (l.ev.seq, l.no, l.sender)).collect();
        let frames: SmallVec<[Bytes; 4]> = events.iter().map(|l| l.frame.clone()).collect();
        let evs: SmallVec<[EventRef<'_>; 4]> = events
            .drain(..)
            .zip(&frames)
            .map(|(l, frame)| {
                EventRef::new(l.ev, frame)
                    .signed_in(l.signed_in)
                    .joiner(l.joiner)
                    .client_tags(l.client_tags)
            })
            .collect();
        let Some(r) = rooms.get_mut(room) else {
            return;
        };
        let mut forms = Forms::default();
        // A single event (nearly every broadcast but a read's says) goes as before: tagged once.
        let many = evs.len() > 1;
        out.tag = meta.first().map_or(0, |m| m.1);
        let conns_of = |u: &UserId| {
            users
                .get(u)
                .into_iter()
                .flat_map(|u| u.devices.iter())
                .filter_map(|d| devices.get(d).and_then(|d| d.conn))
        };
        let walk = r.members.iter().flat_map(conns_of);
        // The connections `Skip::User` leaves out, found once (a joiner's: one, nearly always),
        // so the list of a big room keeps connections only, not their users too.
        let mut skip_conns = super::few::Few::default();
        if let Skip::User(u) = skip {
            for c in conns_of(&u) {
                skip_conns.push(c);
            }
        }
        // A kick's target's connections, whose dialect may address it (`Dialect::kicked_form`):
        // a kick goes alone (nothing else is said in its broadcast).
        let mut kicked_conns = super::few::Few::default();
        if let [ev] = &evs[..]
            && let Some(EventKind::Kick { target, .. }) = ev.event().map(|e| &e.kind)
            && let Some(uid) = nicks.get(users, target.folded_key().as_str())
        {
            for c in conns_of(&uid) {
                kicked_conns.push(c);
            }
        }
        let mut deliver = |cid: ConnId| {
            if skip == Skip::All || skip == Skip::Conn(cid) || skip_conns.as_slice().contains(&cid)
            {
                return;
            }
            let Some(c) = conns.get_mut(&cid) else {
                return;
            };
            let Some(dialect) = c.dialect() else {
                return;
            };
            if let Some(told) = told.as_deref_mut()
                && dialect.user_events_once()
                && !told.insert(cid)
            {
                return;
            }
            let kicked = kicked_conns
                .as_slice()
                .contains(&cid)
                .then(|| dialect.kicked_form(room))
                .flatten();
            let key = (
                dialect.kind(),
                kicked.unwrap_or_else(|| dialect.event_form(room)),
            );
            let at = match forms.0.iter().position(|(k, _)| *k == key) {
                Some(at) => at,
                None => {
                    let each: SmallVec<[Option<Shared>; 4]> = evs
                        .iter()
                        .map(|ev| dialect.render_event(ev, key.1).map(|b| out.share(&b)))
                        .collect();
                    let whole = each
                        .iter()
                        .try_fold(None, |run: Option<Shared>, next| {
                            let next = (*next)?;
                            Some(Some(match run {
                                Some(run) => run.then(next)?,
                                None => next,
                            }))
                        })
                        .flatten();
                    forms.0.push((key, Rendered { each, whole }));
                    forms.0.len() - 1
                }
            };
            let rendered = &forms.0[at].1;
            if !many {
                if let Some(shared) = rendered.each[0] {
                    let queued = c.push_room(out, room, meta[0].0, shared, lim);
                    stats.deliveries += u64::from(queued);
                    if !queued && Some(cid) == meta[0].2 {
                        ack_instead(c, out, &evs[0], lim);
                    }
                }
                return;
            }
            if let Some(whole) = rendered.whole
                && c.push_room_run(out, room, whole, evs.len(), lim)
            {
                stats.deliveries += evs.len() as u64;
                return;
            }
            for (i, shared) in rendered.each.iter().enumerate() {
                let Some(shared) = *shared else {
                    continue;
                };
                let (seq, no, sender) = meta[i];
                out.tag = no;
                let queued = c.push_room(out, room, seq, shared, lim);
                stats.deliveries += u64::from(queued);
                if !queued && Some(cid) == sender {
                    ack_instead(c, out, &evs[i], lim);
                }
            }
        };
        if r.members.len() >= ATTACHED_LIST_MIN {
            if r.attached_gen != *attach_gen {
                r.attached.clear();
                r.attached.extend(walk);
                r.attached.shrink_to_fit();
                r.attached_gen = *attach_gen;
            } else if cfg!(debug_assertions) {
                // Every change of a member or of a member's connections must bump `attach_gen`:
                // a list built before one would deliver to the wrong connections.
                let mut fresh: Vec<_> = walk.collect();
                let mut kept = r.attached.clone();
                fresh.sort_unstable();
                kept.sort_unstable();
                debug_assert_eq!(
                    kept, fresh,
                    "{room}'s list of attached connections is stale"
                );
            }
            for &cid in &r.attached {
                deliver(cid);
            }
        } else {
            if r.attached_gen != 0 {
                // Shrunk below the size that keeps a list.
                r.attached = Vec::new();
                r.attached_gen = 0;
            }
            for cid in walk {
                deliver(cid);
            }
        }
        out.tag = 0;
    }

    /// Tells `conn` it is in `room`: the room's state as of `seq`.
    pub(super) fn joined_msg(&self, room: &RoomName, seq: Seq) -> Option<ServerMsg> {
        let r = self.rooms.get(room)?;
        Some(ServerMsg::Joined {
            room: room.clone(),
            topic: r.topic.clone(),
            members: self.member_nicks(room, r),
            seq,
        })
    }

    /// The nicks of `room`'s members (`r`), as many as a member list shows: this node's, then,
    /// in a cluster, those on other nodes.
    pub(super) fn member_nicks(&self, room: &RoomName, r: &super::room::Room) -> Vec<Nick> {
        r.members
            .iter()
            .filter_map(|u| self.users.get(u).map(|u| u.nick.clone()))
            .chain(self.remote_members(room).cloned())
            .take(crate::limits::MAX_MEMBERS_LISTED)
            .collect()
    }

    /// Replays the last `history_on_join` events up to `upto` as room traffic, framed as the
    /// past for people.
    pub(super) fn replay_recent(&mut self, conn: ConnId, room: &RoomName, upto: Seq) {
        self.replay_recent_after(conn, room, Seq(0), None, upto);
    }

    /// [`Hub::replay_recent`], less the events up to `after` (what the connection's user saw).
    /// With `missed_upto`, what came after that seq it saw too (it read it live after lines it
    /// was not sent): not counted among the lines the replay leaves out.
    pub(super) fn replay_recent_after(
        &mut self,
        conn: ConnId,
        room: &RoomName,
        after: Seq,
        missed_upto: Option<Seq>,
        upto: Seq,
    ) {
        let n = self.config.history_on_join;
        let lines_only = self
            .conns
            .get(&conn)
            .and_then(|c| c.dialect())
            .is_some_and(|d| d.replays_lines_only());
        // A dialect that shows only the lines gets the last `n` of them (not the lines among
        // the last `n` events, which in a busy lobby are mostly comings and goings), and with
        // none opens nothing (an empty batch on IRC).
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let lines = lines_only.then(|| r.last_n_lines_after(n, after, upto));
        let Some(first) = recent(r, n, after, upto, lines.as_deref())
            .next()
            .map(|s| s.seq)
        else {
            if lines_only {
                // Nothing said yet among what the ring keeps: `/history` pages back from the
                // join, not from the newest event.
                self.scroll_from(conn, room, upto.next());
            }
            return;
        };
        // A client back after it left (`after`: its part, its quit, a restart, a slow read)
        // that missed more lines than the replay holds is told so before them.
        let skipped = match lines.as_deref() {
            Some(shown) if after.0 > 0 => {
                let before = missed_upto.map_or(first, |m| first.min(m.next()));
                unreplayed(r, n, after, before, room, shown.len())
            }
            _ => None,
        };
        if let Some(note) = skipped {
            self.reply(conn, Reply::Note(note));
        }
        self.reply(conn, Reply::Note(Note::RecentStart(room.clone())));
        self.scroll_from(conn, room, first);
        let lim = self.config.queue_limits();
        let (Some(r), Some(c)) = (self.rooms.get(room), self.conns.get_mut(&conn)) else {
            return;
        };
        let dur = self.durable.as_deref();
        let held = self.out.hold;
        let lines = lines.as_deref();
        let own = !pending_among(dur, recent(r, n, after, upto, lines))
            && own_buffer(c, &mut self.out, recent(r, n, after, upto, lines));
        for s in recent(r, n, after, upto, lines) {
            if let Some(data) = stored_piece(c, &mut self.out, own, room, &s) {
                self.out.tag = s.no;
                self.out.hold = replay_hold(dur, held, s.no);
                c.push_room(&mut self.out, room, s.seq, data, lim);
            }
        }
        if own {
            self.out.end_own();
        }
        self.out.tag = 0;
        self.out.hold = held;
        self.reply(conn, Reply::Note(Note::RecentEnd));
    }

    /// Replays what came after `after` as room traffic: a gap first for what the ring lost.
    pub(super) fn replay_since(&mut self, conn: ConnId, room: &RoomName, after: Seq) {
        let Some(latest) = self.gap_for_lost(conn, room, after) else {
            return;
        };
        let lim = self.config.queue_limits();
        let (Some(r), Some(c)) = (self.rooms.get(room), self.conns.get_mut(&conn)) else {
            return;
        };
        let dur = self.durable.as_deref();
        let held = self.out.hold;
        let own = !pending_among(dur, r.between(after, latest))
            && own_buffer(c, &mut self.out, r.between(after, latest));
        for s in r.between(after, latest) {
            if let Some(data) = stored_piece(c, &mut self.out, own, room, &s) {
                self.out.tag = s.no;
                self.out.hold = replay_hold(dur, held, s.no);
                c.push_room(&mut self.out, room, s.seq, data, lim);
            }
        }
        if own {
            self.out.end_own();
        }
        self.out.tag = 0;
        self.out.hold = held;
    }

    /// A resumed device's room that it was put out of while it was away (kicked or banned, the
    /// room closed, or parted by another device of its account): the room's events after
    /// `after` up to the last one that put `nick` out, so its client hears who and why before
    /// the `Parted` that follows, as a connected device did. Nothing when none did (the
    /// `Parted` alone says it is not in the room), or when the ring no longer holds them all
    /// (a gap for a room it is not in would have it ask for history it may not read); cut
    /// short where the backlog is full. Whether it told what put it out (all of it went).
    pub(super) fn replay_until_out(
        &mut self,
        conn: ConnId,
        room: &RoomName,
        after: Seq,
        nick: &Nick,
    ) -> bool {
        let lim = self.config.queue_limits();
        let (Some(r), Some(c)) = (self.rooms.get(room), self.conns.get_mut(&conn)) else {
            return false;
        };
        let latest = r.last_seq;
        if after >= latest || r.oldest_kept().is_none_or(|oldest| oldest > after.next()) {
            return false;
        }
        let key = nick.folded_key();
        let puts_out = |ev: &RoomEvent| match &ev.kind {
            EventKind::Kick { target, .. } => target.folded_key() == key,
            EventKind::Part { .. } => ev.from.folded_key() == key,
            EventKind::Mode { change } => {
                change.as_str() == "close" || change.as_str().starts_with("close: ")
            }
            _ => false,
        };
        let Some(upto) = r
            .between(after, latest)
            .filter(|s| s.event().is_some_and(|ev| puts_out(&ev)))
            .map(|s| s.seq)
            .last()
        else {
            return false;
        };
        let dur = self.durable.as_deref();
        push_while_fits(c, &mut self.out, dur, lim, room, r.between(after, upto)).is_none()
    }

    /// Events after `after` still in the ring, as far as the backlog allows; a gap for what is
    /// gone, and the rest once the backlog drains (the client asked once).
    pub(super) fn history(&mut self, conn: ConnId, room: RoomName, after: Seq) {
        // Behind a gap marker the connection owes for the room, as live traffic is: pushed
        // ahead of it, the client would take the marker's seqs for ones it had.
        if let Some(c) = self.conns.get_mut(&conn)
            && c.owes_gap(&room)
        {
            c.refill_after(room, after);
            return;
        }
        if self.refill_from_store(conn, &room, after) {
            // A replay of what an account missed (no gap the client knows of): live traffic
            // of the room waits until the page is in (see `Conn::catch_up_waits`).
            if let Some(c) = self.conns.get_mut(&conn)
                && c.rare().is_some_and(|r| r.footers.contains(&room))
            {
                c.catch_up_waits(&room, after);
            }
            return;
        }
        let Some(latest) = self.gap_for_lost(conn, &room, after) else {
            return self.missed_footer(conn, &room);
        };
        let lim = self.config.queue_limits();
        let (Some(r), Some(c)) = (self.rooms.get(&room), self.conns.get_mut(&conn)) else {
            return;
        };
        let dur = self.durable.as_deref();
        let stopped = push_while_fits(c, &mut self.out, dur, lim, &room, r.between(after, latest));
        match stopped {
            Some(first) => self.refill_stopped(conn, room, Seq(first.0 - 1)),
            None => self.missed_footer(conn, &room),
        }
    }

    /// A refill of `room` stopped after `after` because `conn`'s backlog is full: the rest
    /// follows when it drains (see `Hub::handle_written`). A refill the client asked for fills
    /// a gap it knows of; a replay of what an account missed since its read marker (under a
    /// `MissedStart` header, its footer owed) fills none: for that one a gap marker for the
    /// rest goes now, or live lines would reach the client first, and it would take the rest
    /// of the replay for seqs it had, and drop it. The marker waits for the batch of the last
    /// seq it names, as every marker does. Binary clients only: IRC clients and nc users keep
    /// no seqs, and read a gap as lines lost.
    pub(super) fn refill_stopped(&mut self, conn: ConnId, room: RoomName, after: Seq) {
        let Some(latest) = self.rooms.get(&room).map(|r| r.last_seq) else {
            return;
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.refill_after(room.clone(), after);
        let unannounced = c.rare().is_some_and(|r| r.footers.contains(&room));
        // Only a binary client keeps seqs: IRC and nc show a gap as lines lost ("not
        // delivered"), and nothing is lost here.
        let keeps_seqs = c.kind() == Some(ConnKind::Binary);
        if unannounced && !keeps_seqs {
            // The part sent so far is closed (IRC: its batch); the rest comes after, as
            // without a store.
            if let Some(end) = c.dialect_mut().and_then(|d| d.missed_done(&room)) {
                self.reply(conn, Reply::Own(end));
            }
            return;
        }
        if after >= latest || !unannounced || !keeps_seqs {
            return;
        }
        let held = self.out.hold;
        let pending = self
            .durable
            .as_ref()
            .and_then(|d| d.batch_of_seq(&room, latest));
        self.out.hold = held.max(pending);
        let gap = ServerMsg::Gap {
            room,
            first: after.next(),
            last: latest,
        };
        self.reply(conn, Reply::Msg(gap));
        self.out.hold = held;
    }

    /// All of `room`'s history owed to `conn` is out: the footer of its missed lines, if they
    /// came under a header ([`Note::MissedStart`]).
    pub(super) fn missed_footer(&mut self, conn: ConnId, room: &RoomName) {
        let done = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.dialect_mut())
            .and_then(|d| d.missed_done(room));
        if let Some(end) = done {
            self.reply(conn, Reply::Own(end));
        }
        let owed = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.rare_mut_if_any())
            .is_some_and(|r| r.footers.remove(room));
        if owed {
            self.reply(conn, Reply::Note(Note::MissedEnd));
        }
    }

    /// Before replaying what came after `after`: sends a `Gap` for the part the history ring no
    /// longer holds, and returns the room's latest seq (`None`: nothing came after `after`).
    pub(super) fn gap_for_lost(
        &mut self,
        conn: ConnId,
        room: &RoomName,
        after: Seq,
    ) -> Option<Seq> {
        let r = self.rooms.get(room)?;
        let latest = r.last_seq;
        if after >= latest {
            return None;
        }
        let oldest = r.oldest_kept().unwrap_or(latest.next());
        if oldest > after.next() {
            let (first, last) = (after.next(), Seq(oldest.0 - 1).min(latest));
            // Behind a marker the connection owes already (a resume's page from the store that
            // overflowed its queue), not ahead of it: markers and events stay in seq order.
            let owed = self
                .conns
                .get_mut(&conn)
                .is_some_and(|c| c.owe_gap(room, first, last));
            if !owed {
                let gap = ServerMsg::Gap {
                    room: room.clone(),
                    first,
                    last,
                };
                self.reply(conn, Reply::Msg(gap));
            }
        }
        Some(latest)
    }
}

/// A sender whose echo did not go (skipped, or no room in its queue) still needs its
/// acknowledgement: without it the message would wait forever (or be resent) once the event
/// leaves the history.
#[cold]
fn ack_instead(
    c: &mut super::Conn,
    out: &mut Out,
    ev: &EventRef<'_>,
    lim: super::conn::QueueLimits,
) {
    let Some(ev) = ev.event() else {
        return;
    };
    if let EventKind::Say { id, .. } | EventKind::Act { id, .. } | EventKind::Notice { id, .. } =
        &ev.kind
        && let Some(ack) = c
            .dialect()
            .and_then(|d| d.render(&Reply::Msg(ServerMsg::Ack { id: *id }), None))
        && c.backlog_bytes() + ack.len() <= lim.hard_bytes
    {
        c.push(out, ack);
    }
}

/// The lines of `r` (`room`) after `after` and before `first`, the oldest of the `shown` a
/// join replays (or, sooner, the first the client read live after those it missed):
/// [`Note::Unreplayed`] when there are any. Looks back at most
/// [`LINES_LOOKBACK`](super::room::LINES_LOOKBACK) events a replayed line, as the replay does
/// (a join's cost stays bounded by `n`); past that, or where the ring no longer reaches
/// `after`, the count is a lower bound (`more`).
fn unreplayed(
    r: &super::room::Room,
    n: usize,
    after: Seq,
    first: Seq,
    room: &RoomName,
    shown: usize,
) -> Option<Note> {
    let before = Seq(first.0.checked_sub(1)?);
    let limit = n.saturating_mul(super::room::LINES_LOOKBACK);
    let mut reached = first;
    let mut count = 0;
    for s in r.last_n_after(limit, after, before) {
        reached = reached.min(s.seq);
        if s.event().is_some_and(|ev| ev.kind.is_line()) {
            count += 1;
        }
    }
    if count == 0 {
        return None;
    }
    Some(Note::Unreplayed {
        room: room.clone(),
        count,
        more: reached.0 > after.0.saturating_add(1),
        shown,
    })
}

/// What a join replays of `r`: its last `n` events with `after` < seq ≤ `upto`, or, for a
/// dialect that shows only the lines, those of `lines` ([`super::room::Room::last_n_lines_after`]).
fn recent<'a>(
    r: &'a super::room::Room,
    n: usize,
    after: Seq,
    upto: Seq,
    lines: Option<&'a [Seq]>,
) -> impl Iterator<Item = Stored<'a>> + 'a {
    r.last_n_after(if lines.is_some() { usize::MAX } else { n }, after, upto)
        .filter(move |s| lines.is_none_or(|l| l.binary_search(&s.seq).is_ok()))
}

/// Whether any of `events` waits for its batch to be stored: a replay of it is held (see
/// [`replay_hold`]), so it takes no buffer of its own.
fn pending_among<'a>(
    durable: Option<&super::durable::Durable>,
    mut events: impl Iterator<Item = Stored<'a>>,
) -> bool {
    durable.is_some_and(|d| events.any(|s| d.batch_of(s.no).is_some()))
}

/// Before a replay to `c` of `events`: unless `c`'s output waits for a store commit, starts a
/// buffer of their size for it alone ([`Out::begin_own`]) and returns true; the replayed
/// events then go into it ([`stored_piece`]) and are one run of the connection's queue, handed
/// out as one slice of that buffer. Before, each event was an allocation of its own and a
/// queue slot (a join's replay of 50 events: 50 small chunks, a 2 KB queue and a 1.6 KB
/// transmit vector, freed once written), which a burst of joins left as free chunks between
/// the connections' records in the allocator's arena (issue 22's idle memory). Held output
/// keeps bytes of its own per event, so a failed batch drops exactly its events.
fn own_buffer<'a>(
    c: &super::Conn,
    out: &mut Out,
    events: impl Iterator<Item = Stored<'a>>,
) -> bool {
    if out.hold.is_some() || c.holds_output() || c.dialect().is_none() {
        return false;
    }
    // The frames' size: exact for a binary client, about right for people's lines.
    out.begin_own(events.map(|s| s.frame.len()).sum());
    true
}

/// What a stored room event looks like on `c`, in the form its dialect needs there: written
/// into the replay's own buffer if `own` (see [`own_buffer`]), else bytes of its own.
/// Pushes `events` of `room` to `c` one piece each, each held for its batch's commit, until
/// the backlog has no room: the seq of the first event that did not fit, if one did not.
fn push_while_fits<'a>(
    c: &mut super::Conn,
    out: &mut Out,
    dur: Option<&super::durable::Durable>,
    lim: super::conn::QueueLimits,
    room: &RoomName,
    events: impl Iterator<Item = Stored<'a>>,
) -> Option<Seq> {
    let held = out.hold;
    let mut stopped = None;
    for s in events {
        let Some(data) = stored_piece(c, out, false, room, &s) else {
            continue;
        };
        if !c.room_fits(out, data.len(), lim) {
            stopped = Some(s.seq);
            break;
        }
        out.tag = s.no;
        out.hold = replay_hold(dur, held, s.no);
        c.push(out, data);
    }
    out.tag = 0;
    out.hold = held;
    stopped
}

fn stored_piece(
    c: &super::Conn,
    out: &mut Out,
    own: bool,
    room: &RoomName,
    s: &Stored<'_>,
) -> Option<Piece> {
    let d = c.dialect()?;
    if own && d.kind() == ConnKind::Binary && d.event_form(room) == Form(0) {
        // A binary client gets the stored frame itself (`Binary::render_event`).
        return Some(out.share(s.frame).into());
    }
    let ev = EventRef::stored(s.frame);
    let data = d.render_event(&ev, d.event_form(room))?;
    Some(if own {
        out.share(&data).into()
    } else {
        data.into()
    })
}
