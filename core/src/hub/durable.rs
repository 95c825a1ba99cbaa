//! The hub's side of a durable store (when [`Config::durable`] is set): what must be persisted
//! is gathered into one [`Batch`] per hub batch and handed out by [`Hub::poll_store`]; output
//! that follows a write (the echo to a sender, the delivery to members, and anything after it on
//! the same connection) is held until the shell reports the batch durable
//! ([`Hub::handle_durable`]). A batch that fails ([`Hub::handle_store_failed`]) loses its room
//! events: they are dropped from history and from held output, and their senders are told.
//! A restarted hub takes back rooms, history and resume sessions with [`Hub::restore`].

use super::room::{Room, Stored};
use super::{Hub, ResumeKey, Timer, User, UserId};
use crate::persist::{Batch, BatchId, Loaded, SessionRecord, TokenHash, Write};
use crate::time::Millis;
use crate::types::{MsgId, RoomName, Seq};
use crate::wire::{ErrorKind, EventKind, Re, ServerMsg, encode_frame};
use std::collections::{BTreeSet, VecDeque};
use tracing::{debug, warn};

/// A room event written in a batch, as the hub must know it if the batch fails.
#[derive(Debug)]
struct Written {
    /// The hub's number for the event (tags held output).
    no: u64,
    room: RoomName,
    seq: Seq,
    /// Who said it and with which id, for a say or an action.
    sender: Option<(UserId, MsgId)>,
}

/// A batch handed out and not yet reported.
#[derive(Debug)]
struct Flight {
    id: u64,
    events: Vec<Written>,
}

/// The durable store's state in the hub.
#[derive(Debug, Default)]
pub(crate) struct Durable {
    /// The writes of the batch being built.
    writes: Vec<Write>,
    /// Its room events.
    events: Vec<Written>,
    /// Users whose session record must be written with this batch.
    dirty: BTreeSet<UserId>,
    /// The id the batch being built will have.
    next: u64,
    /// Batches handed out and not yet reported, oldest first.
    flights: VecDeque<Flight>,
    /// The last event number given out.
    last_event: u64,
}

impl Durable {
    pub(crate) fn new() -> Durable {
        Durable {
            next: 1,
            ..Durable::default()
        }
    }
}

impl Hub {
    /// Adds a write to the batch being built; output from now on waits for it.
    fn record(&mut self, write: Write) {
        let Some(d) = self.durable.as_mut() else {
            return;
        };
        d.writes.push(write);
        self.out.hold = Some(d.next);
    }

    /// A room event is being broadcast: its write, and its number to tag its deliveries with
    /// (0 without a store).
    pub(super) fn record_event(&mut self, ev: &crate::wire::RoomEvent) -> u64 {
        let sender = self.nicks.get(&ev.from.folded()).copied();
        let Some(d) = self.durable.as_mut() else {
            return 0;
        };
        d.last_event += 1;
        let no = d.last_event;
        let sender = match (&ev.kind, sender) {
            (EventKind::Say { id, .. } | EventKind::Act { id, .. }, Some(uid)) => Some((uid, *id)),
            _ => None,
        };
        d.events.push(Written {
            no,
            room: ev.room.clone(),
            seq: ev.seq,
            sender,
        });
        self.record(Write::Event(ev.clone()));
        no
    }

    /// `uid`'s resume session changed (token, nick, rooms, last message id): its record is
    /// written with this batch.
    pub(super) fn session_changed(&mut self, uid: UserId) {
        let Some(d) = self.durable.as_mut() else {
            return;
        };
        if self.users.get(&uid).is_some_and(|u| u.resume.is_some()) {
            d.dirty.insert(uid);
            self.out.hold = Some(d.next);
        }
    }

    /// `key`'s session is over (quit, grace over, or its token replaced).
    pub(super) fn session_ended(&mut self, key: ResumeKey) {
        self.record(Write::EndSession(TokenHash(key.hash)));
    }

    /// The batch of writes gathered since the last call, to store in one transaction; `None`
    /// when there is nothing to write (or no store). Call it after each round of input, before
    /// or after draining [`Hub::poll_transmit`].
    pub fn poll_store(&mut self) -> Option<Batch> {
        let now = self.now;
        let d = self.durable.as_mut()?;
        let dirty = core::mem::take(&mut d.dirty);
        for uid in dirty {
            let Some(u) = self.users.get(&uid) else {
                continue;
            };
            let Some(key) = u.resume else {
                continue;
            };
            d.writes.push(Write::Session(SessionRecord {
                token: TokenHash(key.hash),
                token_id: key.id,
                nick: u.nick.clone(),
                rooms: u.rooms.iter().cloned().collect(),
                last_id: u.last_id,
                updated: now,
            }));
        }
        if d.writes.is_empty() {
            return None;
        }
        let id = d.next;
        d.next += 1;
        d.flights.push_back(Flight {
            id,
            events: core::mem::take(&mut d.events),
        });
        self.out.hold = None;
        Some(Batch {
            id: BatchId(id),
            writes: core::mem::take(&mut d.writes),
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
        self.release_held(upto.0, None);
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
        // Reports come in order: batches before this one were reported already.
        let flight = d.flights.remove(at).unwrap_or(Flight {
            id: batch.0,
            events: Vec::new(),
        });
        warn!(%batch, events = flight.events.len(), %why, "batch not stored");
        let failed: Vec<u64> = flight.events.iter().map(|w| w.no).collect();
        for w in &flight.events {
            if let Some(r) = self.rooms.get_mut(&w.room) {
                self.history_bytes -= r.forget(w.seq);
            }
        }
        self.release_held(batch.0, Some(&failed));
        for w in flight.events {
            let Some((uid, id)) = w.sender else {
                continue;
            };
            let Some(conn) = self.users.get(&uid).and_then(|u| u.conn) else {
                continue;
            };
            let detail = format!("{why}; your message was not delivered");
            self.error(conn, ErrorKind::NotStored, Re::Msg(id), detail);
        }
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
        for lr in loaded.rooms {
            let mut room = Room::new();
            room.topic = lr.topic;
            room.last_seq = lr.last_seq;
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
        for s in loaded.sessions {
            if self.nicks.contains_key(&s.nick.folded()) || self.tokens.contains_key(&s.token_id) {
                continue;
            }
            let uid = UserId(self.next_user);
            self.next_user += 1;
            let rooms: Vec<RoomName> = s
                .rooms
                .into_iter()
                .filter(|r| self.rooms.contains_key(r))
                .collect();
            let mut set = super::room::RoomSet::default();
            for r in &rooms {
                set.insert(r.clone());
                if let Some(room) = self.rooms.get_mut(r) {
                    room.members.insert(uid);
                }
            }
            self.nicks.insert(s.nick.folded(), uid);
            self.tokens.insert(s.token_id, uid);
            self.users.insert(
                uid,
                Box::new(User {
                    nick: s.nick,
                    conn: None,
                    rooms: set,
                    resume: Some(ResumeKey {
                        id: s.token_id,
                        hash: s.token.0,
                    }),
                    prev_resume: None,
                    probe: None,
                    last_id: s.last_id,
                    addr: None,
                    away: None,
                }),
            );
            self.detached += 1;
            self.timers
                .set(Timer::Grace(uid), now + self.config.resume_grace);
            restored += 1;
        }
        debug!(rooms = self.rooms.len(), sessions = restored, "restored");
    }
}
