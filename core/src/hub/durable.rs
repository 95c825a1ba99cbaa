//! The hub's side of a durable store (when [`Config::durable`] is set): what must be persisted
//! is gathered into one [`Batch`] per hub batch and handed out by [`Hub::poll_store`]; output
//! that follows a write (the echo to a sender, the delivery to members, and anything after it on
//! the same connection) is held until the shell reports the batch durable
//! ([`Hub::handle_durable`]). A batch that fails ([`Hub::handle_store_failed`]) loses its room
//! events: they are dropped from history and from held output, and their senders are told.
//! A restarted hub takes back rooms, history and resume sessions with [`Hub::restore`].

use super::room::{Room, Stored};
use super::timers::Timer;
use super::{DeviceId, Hub, ResumeKey, User, UserId};
use crate::persist::{Batch, BatchId, Loaded, SessionRecord, TokenHash, Write};
use crate::time::Millis;
use crate::types::{ConnId, MsgId, Nick, RoomName, Seq};
use crate::wire::{ErrorKind, EventKind, Re, ServerMsg, encode_frame};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use tracing::debug;

/// A room event written in a batch, as the hub must know it if the batch fails.
#[derive(Debug)]
struct Written {
    /// The hub's number for the event (tags held output).
    no: u64,
    room: RoomName,
    seq: Seq,
    /// The connection it came from and its id, for a say or an action.
    sender: Option<(ConnId, MsgId)>,
    /// The device it came from (its connection may be gone by the time the batch fails).
    device: Option<DeviceId>,
}

/// A batch handed out and not yet reported.
#[derive(Debug)]
struct Flight {
    id: u64,
    events: Vec<Written>,
    /// Devices whose whole session record it writes: written again with the next batch if it
    /// fails, so a later [`Write::SessionLastId`] finds the record.
    sessions: Vec<DeviceId>,
    /// Devices whose last message id only it writes ([`Write::SessionLastId`]).
    ids: Vec<DeviceId>,
    /// Whose presence it writes (room, nick), and whether it starts the record again
    /// ([`Write::PresenceReset`]): written again, as they are then, if it fails.
    presence: Vec<(RoomName, Nick)>,
    reset: bool,
    /// The seqs given out to events that were not stored ([`Write::SeqsUsed`]) it writes:
    /// written again with the next batch if it fails too.
    used: Vec<(RoomName, Seq)>,
    /// The writes it holds that may be applied again later as they are (ended sessions,
    /// revoked keys: a token or key id is never given out again): repeated with the next
    /// batch if it fails.
    again: Vec<Write>,
    /// The accounts it writes about: written again, whole and as they are then, if it fails
    /// (else a registration, a read marker or a new key the client was told of was lost).
    accounts: Vec<Nick>,
    /// The accounts (folded names) whose record it writes or removes ([`Write::Account`],
    /// [`Write::DropAccount`]): see [`Durable::accounts_unsettled`].
    records: Vec<String>,
}

/// The durable store's state in the hub.
#[derive(Debug, Default)]
pub(crate) struct Durable {
    /// The writes of the batch being built.
    writes: Vec<Write>,
    /// Its room events.
    events: Vec<Written>,
    /// Devices whose session record must be written with this batch.
    dirty: BTreeSet<DeviceId>,
    /// Devices whose last message id only must be written with this batch.
    ids: BTreeSet<DeviceId>,
    /// Whose presence this batch writes, and whether it resets the record (see [`Flight`]).
    presence: Vec<(RoomName, Nick)>,
    reset: bool,
    /// Rooms' seqs given out to events whose batch failed, to write with the next batch
    /// ([`Write::SeqsUsed`]), the highest per room.
    used: Vec<(RoomName, Seq)>,
    /// The id the batch being built will have.
    next: u64,
    /// Batches handed out and not yet reported, oldest first.
    flights: VecDeque<Flight>,
    /// The last event number given out.
    last_event: u64,
    /// The last seq of each stored room freed to make space in a full room table
    /// (`reclaim_orphan_room`): made again, it goes on from there, as the store holds its
    /// events up to it.
    pub(super) freed: std::collections::HashMap<RoomName, Seq>,
    /// Batches failed in a row, and until when the next batch waits after the last of them
    /// (see [`crate::limits::STORE_RETRY_MIN`]).
    failures: u32,
    retry_at: Option<Millis>,
    /// Accounts (folded) whose writes the store reported not applied, for the next durable
    /// report ([`Hub::handle_stale_accounts`]).
    pub(super) stale: BTreeSet<String>,
    /// The store holds accounts otherwise than the hub: they are to be read again
    /// ([`Hub::poll_accounts_reload`]).
    pub(super) reload: bool,
}

impl Durable {
    /// Accounts (folded names) whose record or removal the hub has written and the store has
    /// not yet made durable: in the batch being built, in one handed out and not reported, or
    /// written again after a failed one. A reload of the accounts reads the store, so it does
    /// not see these yet; what it reads of them is older than the hub's own state, not the
    /// operator's change (until the fortieth session a registration waiting for its retry
    /// during a run of store failures was taken for an account the operator removed).
    pub(super) fn accounts_unsettled(&self) -> BTreeSet<String> {
        let building = self.writes.iter().filter_map(|w| match w {
            Write::Account(r) => Some(r.name.folded()),
            Write::DropAccount(name) => Some(name.folded()),
            _ => None,
        });
        let flying = self.flights.iter().flat_map(|f| f.records.iter().cloned());
        building.chain(flying).collect()
    }

    pub(crate) fn new() -> Durable {
        Durable {
            next: 1,
            ..Durable::default()
        }
    }
}

impl Durable {
    /// The batch room event number `no` is written in, while that batch is not durable yet
    /// (`None`: durable, dropped with a failed batch, or not an event). Events are numbered in
    /// the order they are written, and batches are stored in order.
    pub(super) fn batch_of(&self, no: u64) -> Option<u64> {
        if no == 0 {
            return None;
        }
        let has = |events: &[Written]| match (events.first(), events.last()) {
            (Some(a), Some(b)) => Some(a.no <= no && no <= b.no),
            _ => None,
        };
        for f in &self.flights {
            match has(&f.events) {
                Some(true) => return Some(f.id),
                // Older than the oldest event waiting: durable.
                Some(false) if no < f.events[0].no => return None,
                _ => {}
            }
        }
        has(&self.events).unwrap_or(false).then_some(self.next)
    }

    /// The batch `room`'s event `seq` is written in, while that batch is not durable yet.
    pub(super) fn batch_of_seq(&self, room: &RoomName, seq: Seq) -> Option<u64> {
        let is = |w: &Written| w.seq == seq && &w.room == room;
        if self.events.iter().any(is) {
            return Some(self.next);
        }
        self.flights
            .iter()
            .find(|f| f.events.iter().any(is))
            .map(|f| f.id)
    }
}

/// Adds `room`'s seq `upto` to the seqs given out and not stored (the highest per room).
fn note_used(used: &mut Vec<(RoomName, Seq)>, room: &RoomName, upto: Seq) {
    match used.iter_mut().find(|(r, _)| r == room) {
        Some((_, seq)) => *seq = (*seq).max(upto),
        None => used.push((room.clone(), upto)),
    }
}

/// The batch a replayed room event (numbered `no`) must wait for, given what output pushed now
/// waits for anyway (`held`): nobody is shown an event before it is durable, however it reaches
/// them (live, or replayed from the ring on a join, a resume or a refill).
pub(super) fn replay_hold(durable: Option<&Durable>, held: Option<u64>, no: u64) -> Option<u64> {
    held.max(durable.and_then(|d| d.batch_of(no)))
}

impl Hub {
    /// Adds a write to the batch being built; output from now on waits for it.
    pub(super) fn record(&mut self, write: Write) {
        let Some(d) = self.durable.as_mut() else {
            return;
        };
        d.writes.push(write);
        self.out.hold = Some(d.next);
    }

    /// `nick` entered (`here`) or left `room`: written with this batch, so that a restarted
    /// hub knows who was in the room when the server stopped (see [`super::room::Boot`]).
    /// Output does not wait for it: nobody is shown anything that depends on it. If the batch
    /// fails, the presence of that nick in that room is written again with the next one, as
    /// it is then ([`Hub::handle_store_failed`]).
    pub(super) fn record_presence(&mut self, room: &RoomName, nick: &Nick, here: bool) {
        if self.cluster.is_some() {
            // The user's record in the cluster names its rooms.
            return self.cluster_presence_changed(nick);
        }
        let Some(d) = self.durable.as_mut() else {
            return;
        };
        d.presence.push((room.clone(), nick.clone()));
        d.writes.push(Write::Presence {
            room: room.clone(),
            nick: nick.clone(),
            here,
        });
    }

    /// A room event is being broadcast: its write, and its number to tag its deliveries with
    /// (0 without a store).
    pub(super) fn record_event(
        &mut self,
        ev: &crate::wire::RoomEvent,
        sender: Option<ConnId>,
    ) -> u64 {
        let Some(d) = self.durable.as_mut() else {
            return 0;
        };
        d.last_event += 1;
        let no = d.last_event;
        let sender = match (&ev.kind, sender) {
            (
                EventKind::Say { id, .. }
                | EventKind::Act { id, .. }
                | EventKind::Notice { id, .. },
                Some(conn),
            ) => Some((conn, *id)),
            _ => None,
        };
        let device = sender.and_then(|(conn, _)| self.conns.get(&conn)?.device());
        d.events.push(Written {
            no,
            room: ev.room.clone(),
            seq: ev.seq,
            sender,
            device,
        });
        self.record(Write::Event(ev.clone()));
        no
    }

    /// `uid` changed (nick, rooms): the session records of its devices are written with this
    /// batch.
    pub(super) fn session_changed(&mut self, uid: UserId) {
        // Nothing is written without a store or a cluster: no copy of the device list then (a
        // small allocation per hello, left free between connections' records after a connect
        // burst, issue 22).
        if self.durable.is_some() || self.cluster.is_some() {
            for did in self.devices_of(uid) {
                self.device_changed(did);
            }
        }
        self.account_rooms_changed(uid);
    }

    /// Device `did`'s session changed (its token, its last message id): its record is written
    /// with this batch.
    pub(super) fn device_changed(&mut self, did: DeviceId) {
        self.cluster_session_changed(did);
        let Some(dur) = self.durable.as_mut() else {
            return;
        };
        if self.devices.get(&did).is_some_and(|d| d.resume.is_some()) {
            dur.dirty.insert(did);
            self.out.hold = Some(dur.next);
        }
    }

    /// Device `did` sent a message: its last message id is written with this batch, and its
    /// whole record if messages were refused since it was last written: a resend of one of
    /// them at or below the stored last id must be refused again after a restart, not
    /// acknowledged as had.
    pub(super) fn device_id_changed(&mut self, did: DeviceId) {
        let Some(dur) = self.durable.as_mut() else {
            return;
        };
        let Some(dev) = self.devices.get_mut(&did).filter(|d| d.resume.is_some()) else {
            return;
        };
        if dev.take_refused_unsaved() {
            dur.dirty.insert(did);
        } else {
            dur.ids.insert(did);
        }
        self.out.hold = Some(dur.next);
    }

    /// `key`'s session is over (quit, grace over, or its token replaced).
    pub(super) fn session_ended(&mut self, key: ResumeKey) {
        self.cluster_session_ended(key.id);
        self.record(Write::EndSession(TokenHash(key.hash)));
    }

    /// Device `did`'s resume session as the store and the cluster keep it (`None`: it has none).
    pub(super) fn session_record(&self, did: DeviceId) -> Option<SessionRecord> {
        let d = self.devices.get(&did)?;
        let key = d.resume?;
        let u = self.users.get(&d.user)?;
        Some(SessionRecord {
            token: TokenHash(key.hash),
            token_id: key.id,
            nick: u.nick.clone(),
            rooms: u.rooms.iter().cloned().collect(),
            last_id: d.last_id,
            took_zero: d.took_zero(),
            refused: d.refused().to_vec(),
            prev: d.prev_resume().map(|k| (k.id, TokenHash(k.hash))),
            put_out: d.put_out().to_vec(),
            device_key: d.key(),
            updated: self.now,
        })
    }

    /// Device `did`'s message `id` was refused (`kind`): kept, so that a resend is refused
    /// again, and written with the session record when a later message is taken (see
    /// [`Hub::device_id_changed`]), or at once if `now` (a batch in flight may store a last
    /// id past it: the message was taken, and its batch failed under a later one).
    pub(super) fn refused_message(&mut self, did: DeviceId, id: MsgId, kind: ErrorKind, now: bool) {
        let Some(dev) = self.devices.get_mut(&did) else {
            return;
        };
        if dev.resume.is_some() && dev.refuse(id, kind) && now {
            dev.take_refused_unsaved();
            self.device_changed(did);
        }
    }

    /// The batch of writes gathered since the last call, to store in one transaction; `None`
    /// when there is nothing to write (or no store). Call it after each round of input, before
    /// or after draining [`Hub::poll_transmit`].
    pub fn poll_store(&mut self) -> Option<Batch> {
        let now = self.now;
        let d = self.durable.as_mut()?;
        if d.retry_at.is_some_and(|at| now < at) && !self.shut {
            // After a failure: the deadline is in `poll_timeout`.
            return None;
        }
        d.retry_at = None;
        let dirty = core::mem::take(&mut d.dirty);
        let mut sessions = Vec::new();
        let mut records = Vec::new();
        for &did in &dirty {
            if let Some(record) = self.session_record(did) {
                records.push(Write::Session(record));
                sessions.push(did);
            }
        }
        let d = self.durable.as_mut()?;
        d.writes.extend(records);
        // A device whose whole record is written needs no last-id write besides.
        let mut ids = Vec::new();
        for did in core::mem::take(&mut d.ids) {
            let Some(dev) = self.devices.get(&did) else {
                continue;
            };
            let Some(key) = dev.resume else {
                continue;
            };
            if !dirty.contains(&did) {
                d.writes.push(Write::SessionLastId {
                    token: TokenHash(key.hash),
                    last_id: dev.last_id,
                    updated: now,
                });
                ids.push(did);
            }
        }
        let used = core::mem::take(&mut d.used);
        d.writes
            .extend(used.iter().map(|(room, upto)| Write::SeqsUsed {
                room: room.clone(),
                upto: *upto,
            }));
        if d.writes.is_empty() {
            return None;
        }
        let mut again = Vec::new();
        let mut accounts: Vec<Nick> = Vec::new();
        let mut records: Vec<String> = Vec::new();
        if self.cluster.is_none() {
            for w in &d.writes {
                let account = match w {
                    Write::EndSession(_)
                    | Write::EndSessionsBefore(_)
                    | Write::RevokeKey { .. } => {
                        again.push(w.clone());
                        continue;
                    }
                    Write::Account(r) => &r.name,
                    Write::DropAccount(account)
                    | Write::AccountRooms { account, .. }
                    | Write::ReadMarker { account, .. }
                    | Write::AddKey { account, .. }
                    | Write::RevokeKeys { account }
                    | Write::AwayNotes { account, .. }
                    | Write::HeldDirects { account, .. } => account,
                    _ => continue,
                };
                if matches!(w, Write::Account(_) | Write::DropAccount(_))
                    && !records.contains(&account.folded())
                {
                    records.push(account.folded());
                }
                if !accounts.iter().any(|a| a.folded() == account.folded()) {
                    accounts.push(account.clone());
                }
            }
        }
        let id = d.next;
        d.next += 1;
        d.flights.push_back(Flight {
            id,
            events: core::mem::take(&mut d.events),
            sessions,
            ids,
            presence: core::mem::take(&mut d.presence),
            reset: core::mem::take(&mut d.reset),
            used: used.clone(),
            again,
            accounts,
            records,
        });
        let writes = core::mem::take(&mut d.writes);
        self.seal_held(id);
        Some(Batch {
            id: BatchId(id),
            writes,
        })
    }

    /// Every batch up to `upto` is durable: what waited for them goes out.
    pub fn handle_durable(&mut self, upto: BatchId, now: Millis) {
        self.now = self.now.max(now);
        let Some(d) = self.durable.as_mut() else {
            return;
        };
        while d.flights.front().is_some_and(|f| f.id <= upto.0) {
            d.flights.pop_front();
        }
        d.failures = 0;
        let stale = core::mem::take(&mut d.stale);
        self.release_held(upto.0, None);
        self.registrations_settled(&stale, now);
    }

    /// Batch `batch` was not stored (`why`, in words for people): its room events are taken
    /// out of history and out of what waited for it, and their senders are told; the rest of
    /// what waited goes out.
    pub fn handle_store_failed(&mut self, batch: BatchId, why: &str, now: Millis) {
        self.now = self.now.max(now);
        let Some(d) = self.durable.as_mut() else {
            return;
        };
        let Some(at) = d.flights.iter().position(|f| f.id == batch.0) else {
            return;
        };
        // The batch after a failure goes at once (what it writes again is lost to a kill until
        // it is stored); after failures in a row it waits a moment, longer for each.
        d.failures = d.failures.saturating_add(1);
        if d.failures > 1 {
            let wait = crate::limits::STORE_RETRY_MIN
                .0
                .saturating_mul(1 << (d.failures - 2).min(16))
                .min(crate::limits::STORE_RETRY_MAX.0);
            let retry_at = self.now + Millis(wait);
            d.retry_at = Some(retry_at);
            self.timers.set(Timer::StoreRetry, retry_at);
        }
        let Some(d) = self.durable.as_mut() else {
            return;
        };
        // Reports come in order: batches before this one were reported already.
        let flight = d.flights.remove(at).unwrap_or(Flight {
            id: batch.0,
            events: Vec::new(),
            sessions: Vec::new(),
            ids: Vec::new(),
            presence: Vec::new(),
            reset: false,
            used: Vec::new(),
            again: Vec::new(),
            accounts: Vec::new(),
            records: Vec::new(),
        });
        for (room, upto) in &flight.used {
            note_used(&mut d.used, room, *upto);
        }
        // Whole session records not stored: written again with the next batch.
        d.dirty.extend(flight.sessions.iter().copied());
        // Sessions ended and keys revoked, again; accounts, as they are now.
        d.writes.extend(flight.again.iter().cloned());
        // Registrations in it were not made: their registrants are told now, as a message's
        // sender is, not left waiting (their input with them) for as long as the disk is full.
        self.registrations_failed(&flight.records, why, now);
        let accounts: Vec<Write> = flight
            .accounts
            .iter()
            .flat_map(|a| self.account_as_now(a))
            .collect();
        if let Some(d) = self.durable.as_mut() {
            d.writes.extend(accounts);
        }
        self.rewrite_presence(flight.reset, &flight.presence);
        // The shell logs a streak of failures once: a full disk fails every batch.
        debug!(%batch, events = flight.events.len(), %why, "batch not stored");
        let failed: Vec<u64> = flight.events.iter().map(|w| w.no).collect();
        for w in &flight.events {
            if let Some(r) = self.rooms.get_mut(&w.room) {
                self.history_bytes -= r.forget(w.seq);
            }
            // Their seqs stay given out: written with the next batch (a cluster's log keeps
            // its own account of seqs).
            if self.cluster.is_none()
                && let Some(d) = self.durable.as_mut()
            {
                note_used(&mut d.used, &w.room, w.seq);
            }
        }
        self.release_held(batch.0, Some(&failed));
        // Replays of its events held behind later batches' output.
        let later: Vec<ConnId> = self
            .out
            .held_by
            .range(batch.0 + 1..)
            .flat_map(|(_, conns)| conns.iter().copied())
            .collect();
        for id in later {
            if let Some(c) = self.conns.get_mut(&id) {
                c.drop_failed(&mut self.out, &failed);
            }
        }
        // Devices whose last id may be stored past the messages this batch lost: a batch in
        // flight after it writes that id, or a later message was taken since (its id waits
        // for the next batch). Their refusals are written at once.
        let mut later: BTreeSet<DeviceId> = self.durable.as_ref().map_or_else(BTreeSet::new, |d| {
            d.flights
                .iter()
                .flat_map(|f| f.sessions.iter().chain(&f.ids))
                .copied()
                .collect()
        });
        let mut upto: BTreeMap<DeviceId, MsgId> = BTreeMap::new();
        for w in &flight.events {
            if let (Some(did), Some((_, id))) = (w.device, w.sender) {
                let last = upto.entry(did).or_insert(id);
                *last = (*last).max(id);
            }
        }
        later.extend(
            upto.iter()
                .filter(|(did, id)| self.devices.get(did).is_some_and(|d| d.last_id > **id))
                .map(|(did, _)| *did),
        );
        for w in flight.events {
            let Some((conn, id)) = w.sender else {
                continue;
            };
            // Told now if its connection is there, and again if its client resends it.
            if let Some(did) = w.device {
                self.refused_message(did, id, ErrorKind::NotStored, later.contains(&did));
            }
            let detail = format!("{why}; your message was not delivered");
            self.error(conn, ErrorKind::NotStored, Re::Msg(id), detail);
        }
    }

    /// A batch that wrote presence failed: the store's record of who is in each room is
    /// written again where it touched, as it is now (batches after it that are in flight
    /// wrote no later state than now, so this is never overtaken by an older one). A failed
    /// reset (the first batch of a restarted hub) is done again with everyone in a room.
    fn rewrite_presence(&mut self, reset: bool, presence: &[(RoomName, Nick)]) {
        let writes: Vec<(RoomName, Nick, bool)> = if reset {
            (&self.users)
                .into_iter()
                .flat_map(|(_, u)| u.rooms.iter().map(|r| (r.clone(), u.nick.clone(), true)))
                .collect()
        } else {
            let mut seen = BTreeSet::new();
            presence
                .iter()
                .filter(|(r, n)| seen.insert((r.clone(), n.folded_key().as_str().to_owned())))
                .map(|(r, n)| (r.clone(), n.clone(), self.is_member(n, r)))
                .collect()
        };
        let Some(d) = self.durable.as_mut() else {
            return;
        };
        if reset {
            d.reset = true;
            d.writes.push(Write::PresenceReset);
        }
        for (room, nick, here) in writes {
            d.presence.push((room.clone(), nick.clone()));
            d.writes.push(Write::Presence { room, nick, here });
        }
    }

    /// Batch `batch` is handed out: output held for it no longer refers to the cycle buffers.
    fn seal_held(&mut self, batch: u64) {
        self.out.hold = None;
        if !core::mem::take(&mut self.out.unsealed) {
            return;
        }
        let Hub { out, conns, .. } = self;
        let Some(ids) = out.held_by.remove(&batch) else {
            return;
        };
        for id in &ids {
            if let Some(c) = conns.get_mut(id) {
                c.seal_held(out, batch);
            }
        }
        out.held_by.insert(batch, ids);
    }

    fn release_held(&mut self, upto: u64, failed: Option<&[u64]>) {
        let waiting: Vec<u64> = self.out.held_by.range(..=upto).map(|(b, _)| *b).collect();
        for b in waiting {
            let Some(conns) = self.out.held_by.remove(&b) else {
                continue;
            };
            for id in conns {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.release(&mut self.out, upto, failed);
                }
            }
        }
    }

    /// A restarted hub takes back what was stored: rooms with their topic, next seq and recent
    /// history, and resume sessions as users waiting for a resume (their nicks and rooms kept
    /// for the resume grace). Call it once, before the first `accept`.
    pub fn restore(&mut self, loaded: Loaded, now: Millis) {
        self.now = self.now.max(now);
        let cap = self.config.history_len;
        // The store's record of who is in each room starts again: who was there at the stop is
        // in `Boot` now, and whom this hub takes back into its rooms (resume sessions,
        // always-on accounts) is written below as it does.
        if self.cluster.is_none()
            && let Some(d) = self.durable.as_mut()
        {
            d.reset = true;
            d.writes.push(Write::PresenceReset);
        }
        for lr in loaded.rooms {
            let mut room = Room::new();
            // Who set the topic and when (IRC's `333`), if its event is among the recent ones
            // (the store keeps the topic alone).
            let set = lr
                .recent
                .iter()
                .rev()
                .find(|ev| matches!(ev.kind, EventKind::Topic { .. }))
                .filter(|ev| matches!(&ev.kind, EventKind::Topic { topic } if *topic == lr.topic))
                .map(|ev| super::room::TopicSet {
                    by: ev.from.clone(),
                    at: ev.at,
                });
            room.set_topic(lr.topic, set);
            room.last_seq = lr.last_seq;
            if self.cluster.is_none() {
                // Who was there when the server stopped (IRC clients come back with the
                // room's window still open: see `Hub::entered_on`).
                room.boot = super::room::Boot::at_restart(lr.last_seq, &lr.recent, &lr.present);
            }
            for ev in lr.recent {
                let seq = ev.seq;
                match encode_frame(&ServerMsg::Event(ev)) {
                    Ok(frame) => room.record(
                        Stored::new(seq, &frame, 0),
                        cap,
                        self.config.history_budget_bytes,
                        crate::limits::HISTORY_MIN_KEPT,
                        &mut self.history_bytes,
                    ),
                    Err(e) => debug!(error = %e, "stored event did not encode"),
                }
            }
            self.rooms.insert(lr.name, room);
        }
        let mut restored = 0;
        let away_notes = loaded.away_notes;
        self.load_policies(loaded.policies);
        self.server_bans = loaded.server_bans;
        // Accounts before sessions: an always-on account's user is there for its devices.
        let known = loaded
            .known
            .into_iter()
            .map(|r| (r.name.folded(), r))
            .collect();
        let (again, passwd) = self.take_up_accounts(loaded.accounts, Some(&known));
        self.load_device_labels(loaded.device_labels);
        for s in loaded.sessions {
            if self.tokens.contains_key(&self.devices, s.token_id) {
                continue;
            }
            // A session of an account the operator removed while the server was stopped,
            // whose name was added again since: the old account's device, nothing of the new
            // one's. It ends (a resume of it is refused; its device signs in again).
            if again.contains(&s.nick.folded()) {
                self.record(Write::EndSession(s.token));
                continue;
            }
            // Sessions of one nick are devices of one user.
            let uid = match self.nicks.get(&self.users, s.nick.folded_key().as_str()) {
                Some(uid) => uid,
                None => {
                    let uid = UserId(self.next_user);
                    self.next_user += 1;
                    let mut set = super::room::RoomSet::default();
                    for r in &s.rooms {
                        if let Some(room) = self.rooms.get_mut(r) {
                            self.attach_gen += 1;
                            room.members.insert(uid);
                            set.insert(r.clone());
                            self.record_presence(r, &s.nick, true);
                        }
                    }
                    self.nicks.insert(&self.users, s.nick.folded_key(), uid);
                    self.attach_gen += 1;
                    self.users.insert(
                        uid,
                        Box::new(User {
                            rooms: set,
                            ..User::new(uid, s.nick.clone())
                        }),
                    );
                    self.restored_account_user(uid);
                    uid
                }
            };
            self.restored_device(uid, &s, now);
            restored += 1;
        }
        // On the accounts' users, always-on or restored above.
        self.restore_away_notes(away_notes);
        // Passwords the operator set while the server was stopped: the sessions restored above
        // end, as at the reload that reads such a password in a running server.
        for account in passwd {
            self.operator_set_password(&account);
        }
        // Accounts removed while the server was down: their rooms' rights go now.
        self.rights_of_accounts_gone(now);
        self.voices_of_guests_gone();
        debug!(rooms = self.rooms.len(), sessions = restored, "restored");
    }
}
