//! The past: scrollback (`Older`), search, windows of a room's lines (IRC's CHATHISTORY), and
//! the history a refill or a resume needs from before the in-memory ring. With a durable store
//! (or, in a cluster, the rooms' logs and the node's index of them) these are [`Query`]s the shell answers later
//! ([`Hub::poll_query`], [`Hub::handle_answer`]); without one the ring is all there is.
//!
//! A resume that needs events older than the ring waits for them before it is welcomed, so the
//! client gets exactly what it missed, in order, with no gap marker for what the store holds (up
//! to one outbound queue of it; the rest is a gap the client refills).

use super::dialect::{Hello, Reply, Request};
use super::query::{HistoryFail, Info, Point, Window};
use super::room::Room;
use super::{DeviceId, Hub, UserId};
use crate::limits::{
    HISTORY_PAGE_MAX, HISTORY_WINDOW_MAX, MAX_QUERIES_IN_FLIGHT, SEARCH_LOOKED_FOR,
    SEARCH_MAX_RESULTS, SEARCH_MAX_WORDS,
};
use crate::persist::{Answer, HistoryPage, HistoryQuery, Query, QueryId, SearchQuery};
use crate::time::Millis;
use crate::types::{ConnId, RoomName, Seq, Text};
use crate::wire::{ClientMsg, ErrorKind, EventKind, Re, RoomEvent, ServerMsg, encode_frame};
use core::ops::Range;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, VecDeque};
use tracing::debug;
use unicode_normalization::UnicodeNormalization;

/// Who waits for a query's answer, and what for.
#[derive(Debug)]
enum Asker {
    /// Scrollback for `conn`.
    Older { conn: ConnId, room: RoomName },
    /// A search for `conn`.
    Search { conn: ConnId, user: UserId },
    /// A refill after a gap: events `after+1..=upto` for `conn`. `left`: its user left the
    /// room since it was asked (a part and a join back before the page came would otherwise
    /// replay the first visit's missed lines into the second).
    Refill {
        conn: ConnId,
        room: RoomName,
        after: Seq,
        upto: Seq,
        left: bool,
    },
    /// A page of what a resuming connection missed.
    Resume { conn: ConnId, room: RoomName },
    /// The part of a window older than the ring; `ring`: the page ends where the ring began
    /// (the ring's lines follow it), else the page is all there is.
    Window {
        conn: ConnId,
        room: RoomName,
        window: Window,
        limit: usize,
        ring: bool,
    },
}

impl Asker {
    /// The connection the answer is for.
    fn conn(&self) -> ConnId {
        match self {
            Asker::Older { conn, .. }
            | Asker::Search { conn, .. }
            | Asker::Refill { conn, .. }
            | Asker::Resume { conn, .. }
            | Asker::Window { conn, .. } => *conn,
        }
    }
}

/// A resume waiting for the store's pages.
#[derive(Debug)]
struct PendingResume {
    device: DeviceId,
    hello: Hello,
    waiting: usize,
    pages: BTreeMap<RoomName, BTreeMap<Seq, RoomEvent>>,
}

/// Queries out and their askers.
#[derive(Debug, Default)]
pub(crate) struct Queries {
    next: u64,
    outbox: VecDeque<(QueryId, Query)>,
    waiting: FxHashMap<QueryId, Asker>,
    resumes: FxHashMap<ConnId, PendingResume>,
    /// Connections whose quit waits for the answers to what they asked before it.
    quitting: Vec<ConnId>,
}

impl Queries {
    /// `conn` is gone: a resume it waited for will not happen (answers for it are dropped).
    pub(crate) fn forget(&mut self, conn: ConnId) {
        self.resumes.remove(&conn);
        self.quitting.retain(|c| *c != conn);
    }

    /// `conn`'s user left `room`: a refill of it still to come is for a visit that is over.
    pub(crate) fn left_room(&mut self, conn: ConnId, room: &RoomName) {
        for a in self.waiting.values_mut() {
            if let Asker::Refill {
                conn: c,
                room: r,
                left,
                ..
            } = a
                && *c == conn
                && r == room
            {
                *left = true;
            }
        }
    }

    /// Whether an answer for `conn` is still to come.
    fn owed(&self, conn: ConnId) -> bool {
        !self.waiting.is_empty() && self.waiting.values().any(|a| a.conn() == conn)
    }

    /// Whether `conn`'s requests wait, behind its quit, for the answers owed to it.
    pub(crate) fn quit_waits(&self, conn: ConnId) -> bool {
        !self.quitting.is_empty() && self.quitting.contains(&conn)
    }
}

impl Hub {
    /// Whether history older than the ring can be read, and searched: from a durable store, or
    /// from the cluster's room logs (searched in the node's index of them).
    fn reads_log(&self) -> bool {
        self.durable.is_some() || self.cluster.is_some()
    }

    fn ask(&mut self, query: Query, asker: Asker) -> bool {
        let q = &mut self.queries;
        if q.waiting.len() >= MAX_QUERIES_IN_FLIGHT {
            return false;
        }
        q.next += 1;
        let id = QueryId(q.next);
        q.outbox.push_back((id, query));
        q.waiting.insert(id, asker);
        true
    }

    /// The next store read to do; answer it with [`Hub::handle_answer`]. Only a hub with a
    /// durable store asks, or one in a cluster (read from the rooms' logs, searched in the
    /// node's index of them).
    pub fn poll_query(&mut self) -> Option<(QueryId, Query)> {
        self.queries.outbox.pop_front()
    }

    /// The store's answer to query `id`.
    pub fn handle_answer(&mut self, id: QueryId, answer: Answer, now: Millis) {
        self.now = self.now.max(now);
        let Some(asker) = self.queries.waiting.remove(&id) else {
            return;
        };
        let conn = asker.conn();
        self.answer(asker, answer, now);
        if self.queries.owed(conn) {
            return;
        }
        if self.queries.quit_waits(conn) {
            // Its last answer is out: the quit behind it runs, and whatever waited behind that.
            self.queries.quitting.retain(|c| *c != conn);
            self.run_pending(conn, now);
        } else if self.conns.get(&conn).is_some_and(|c| c.pending_len() > 0) {
            // What it sent after asking (nc: answers in the order asked) runs now.
            self.run_pending(conn, now);
        }
    }

    /// Whether `conn` reads its answers in the order it asked ([`Dialect::answers_in_order`],
    /// nc) and one is still to come from the store: what it sends next waits for it.
    ///
    /// [`Dialect::answers_in_order`]: super::dialect::Dialect::answers_in_order
    pub(super) fn answers_owed_first(&self, conn: ConnId) -> bool {
        !self.queries.waiting.is_empty()
            && self
                .conns
                .get(&conn)
                .and_then(|c| c.dialect())
                .is_some_and(|d| d.answers_in_order())
            && self.queries.owed(conn)
    }

    /// `conn` quits (its `/quit`, nc's end of input, IRC's `QUIT`) while answers to what it
    /// asked before are still to come from the store: the quit waits for them, first in its
    /// queue, so `printf '/search words\n' | nc -N host 8000` prints the results before its
    /// goodbye. Gives the quit back when nothing is owed: it runs now.
    pub(super) fn quit_after_answers(
        &mut self,
        conn: ConnId,
        quit: ClientMsg,
    ) -> Option<ClientMsg> {
        if !self.queries.owed(conn) {
            return Some(quit);
        }
        let c = self.conns.get_mut(&conn)?;
        c.rare_mut().pending.push_front(Request::Msg(quit));
        if !self.queries.quit_waits(conn) {
            self.queries.quitting.push(conn);
        }
        None
    }

    fn answer(&mut self, asker: Asker, answer: Answer, now: Millis) {
        match (asker, answer) {
            (Asker::Older { conn, room }, Answer::History(Ok(page))) => {
                self.send_past(conn, &room, page.events, page.at_start);
            }
            (Asker::Search { conn, user }, Answer::Search(Ok(hits))) => {
                self.send_found(conn, user, hits);
            }
            (
                Asker::Refill {
                    conn,
                    room,
                    after,
                    upto,
                    left,
                },
                Answer::History(Ok(page)),
            ) => self.refill_page(conn, room, (after, upto), left, page),
            (Asker::Resume { conn, room }, Answer::History(page)) => {
                // A page that could not be read is a gap, as if the store did not hold it.
                let events = page.map(|p| p.events).unwrap_or_default();
                self.resume_page(conn, room, events, now);
            }
            (
                Asker::Window {
                    conn,
                    room,
                    window,
                    limit,
                    ring,
                },
                answer,
            ) => {
                // Someone put out of the room while the store read gets nothing of it.
                let still_in = self
                    .user_of(conn)
                    .and_then(|u| self.users.get(&u))
                    .is_some_and(|u| u.rooms.contains(&room));
                let lines = match answer {
                    _ if !still_in => Err(HistoryFail::NotInRoom),
                    Answer::History(Ok(page)) => {
                        let mut events = page.events;
                        if ring && let Some(r) = self.rooms.get(&room) {
                            let last = events.last().map_or(Seq(0), |e| e.seq);
                            events.extend(r.events().filter(|e| e.seq > last));
                        }
                        Ok(self.window_lines(said(events), window, limit).0)
                    }
                    Answer::History(Err(e)) | Answer::Search(Err(e)) => {
                        Err(HistoryFail::Unavailable(e))
                    }
                    Answer::Search(Ok(_)) => Err(HistoryFail::Unavailable(
                        "the store answered something else".into(),
                    )),
                };
                self.reply(
                    conn,
                    Reply::Info(Info::History {
                        room,
                        window,
                        lines,
                    }),
                );
            }
            (asker, answer) => {
                if let Asker::Refill {
                    conn, room, after, ..
                } = &asker
                    && let Some(latest) = self.rooms.get(room).map(|r| r.last_seq)
                    && let Some(c) = self.conns.get_mut(conn)
                    && let Some((first, last)) = c.end_catch_up_wait(room, *after)
                {
                    // A catch-up stops here: what it did not bring (the live traffic held
                    // back too) is announced once the error is written, as a gap the client
                    // can ask to refill.
                    c.keep_owing(room.clone(), (first, last.max(latest)));
                }
                let (conn, re) = match asker {
                    Asker::Older { conn, room } | Asker::Refill { conn, room, .. } => {
                        (conn, Re::Room(room))
                    }
                    Asker::Search { conn, .. } => (conn, Re::Conn),
                    Asker::Resume { conn, .. } => (conn, Re::Conn),
                    // Every answer is handled above.
                    Asker::Window { conn, room, .. } => (conn, Re::Room(room)),
                };
                let why = match answer {
                    Answer::History(Err(e)) | Answer::Search(Err(e)) => e,
                    _ => "the store answered something else".into(),
                };
                debug!(conn = %conn, %why, "store read failed");
                let detail = format!("the server could not read its history: {why}");
                self.error(conn, ErrorKind::Unavailable, re, detail);
            }
        }
    }

    // ---- scrollback ----

    /// `Older`: the newest `limit` events of `room` before `before` (`Seq(0)`: before the
    /// oldest this connection was shown).
    pub(super) fn older(
        &mut self,
        conn: ConnId,
        uid: UserId,
        room: RoomName,
        before: Seq,
        limit: u16,
    ) {
        if !self
            .users
            .get(&uid)
            .is_some_and(|u| u.rooms.contains(&room))
        {
            let detail = format!("you are not in {room}");
            return self.error(conn, ErrorKind::NotInRoom, Re::Room(room), detail);
        }
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        let limit = usize::from(limit).clamp(1, HISTORY_PAGE_MAX);
        let before = if before == Seq(0) {
            self.conns
                .get(&conn)
                .and_then(|c| c.scroll.get(&room))
                .unwrap_or(r.last_seq.next())
        } else {
            before
        };
        let in_ring = r.before(before, limit);
        let ring_enough = in_ring.len() == limit || r.oldest_kept() == Some(Seq(1));
        if self.reads_log() && !ring_enough && before > Seq(1) {
            let q = Query::History(HistoryQuery {
                room: room.clone(),
                before,
                limit,
            });
            if !self.ask(
                q,
                Asker::Older {
                    conn,
                    room: room.clone(),
                },
            ) {
                let detail = "the server is busy; try again in a moment".to_string();
                self.error(conn, ErrorKind::Unavailable, Re::Room(room), detail);
            }
            return;
        }
        // The ring's oldest is the room's start only without a store to read older ones from
        // (after a restart the ring begins at it, the store holds what came before). Seqs
        // start at 1: before it there is nothing, wherever the ring begins.
        let at_start = before <= Seq(1)
            || (in_ring
                .first()
                .is_none_or(|s| Some(s.seq) == r.oldest_kept())
                && (!self.reads_log() || r.oldest_kept().is_none_or(|o| o <= Seq(1))));
        // Not an event that is not durable yet: it is told live once stored.
        let dur = self.durable.as_deref();
        let events: Vec<RoomEvent> = in_ring
            .iter()
            .filter(|s| dur.is_none_or(|d| d.batch_of(s.no).is_none()))
            .filter_map(|s| s.event())
            .collect();
        self.send_past(conn, &room, events, at_start);
    }

    /// Sends past events (oldest first) as far as the backlog allows, then the end marker.
    fn send_past(&mut self, conn: ConnId, room: &RoomName, events: Vec<RoomEvent>, at_start: bool) {
        let lim = self.config.queue_limits();
        // Newest first into the backlog's room: if it fills, the oldest are the ones left out,
        // and the client asks again from the oldest it got.
        let mut frames = Vec::with_capacity(events.len());
        let mut budget = lim.max_bytes / 2;
        for ev in events.into_iter().rev() {
            let seq = ev.seq;
            let msg = ServerMsg::Past(ev);
            let len = encode_frame(&msg).map_or(0, |f| f.len());
            if len > budget {
                break;
            }
            budget -= len;
            frames.push((seq, msg));
        }
        let complete = at_start && frames.len() == frames.capacity();
        let Some(oldest) = frames.last().map(|(s, _)| *s) else {
            // Nothing older at all. Seqs start at 1 and never restart: when this connection
            // was shown a later line as its oldest, the room's start is gone, not here (nc
            // asking /history again said "the beginning").
            let shown = self.conns.get(&conn).and_then(|c| c.scroll.get(room));
            if at_start && shown.is_some_and(|s| s > Seq(1)) {
                let note = super::dialect::Note::PastGone(room.clone());
                return self.reply(conn, Reply::Note(note));
            }
            self.reply(
                conn,
                Reply::Msg(ServerMsg::PastEnd {
                    room: room.clone(),
                    at_start,
                }),
            );
            return;
        };
        for (_, msg) in frames.into_iter().rev() {
            self.reply(conn, Reply::Msg(msg));
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.scroll.lower(room, oldest);
        }
        if complete && oldest > Seq(1) {
            // Seqs start at 1 and never restart: what is kept begins after the room did.
            let note = super::dialect::Note::PastGone(room.clone());
            return self.reply(conn, Reply::Note(note));
        }
        self.reply(
            conn,
            Reply::Msg(ServerMsg::PastEnd {
                room: room.clone(),
                at_start: complete,
            }),
        );
    }

    /// Where scrollback starts for a connection that has just been shown `room` from `seq` on.
    pub(super) fn scroll_from(&mut self, conn: ConnId, room: &RoomName, seq: Seq) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.scroll.set(room, seq);
        }
    }

    // ---- search ----

    /// `Search`: chat lines holding every word, newest first, in `room` or in every room the
    /// user is in.
    pub(super) fn search(
        &mut self,
        conn: ConnId,
        uid: UserId,
        room: Option<RoomName>,
        words: Text,
    ) {
        if let Some(r) = &room
            && !self.users.get(&uid).is_some_and(|u| u.rooms.contains(r))
        {
            let detail = format!("you are not in {r}");
            return self.error(conn, ErrorKind::NotInRoom, Re::Room(r.clone()), detail);
        }
        if self.reads_log() {
            // The store is asked for the user's rooms only, so that lines of rooms it may not
            // read never fill the results in place of its own rooms' lines.
            let rooms: Vec<RoomName> = match room {
                Some(r) => vec![r],
                None => self
                    .users
                    .get(&uid)
                    .map(|u| u.rooms.iter().cloned().collect())
                    .unwrap_or_default(),
            };
            if rooms.is_empty() {
                return self.send_found(conn, uid, Vec::new());
            }
            let q = Query::Search(SearchQuery {
                words: words.as_str().to_owned(),
                rooms,
                limit: SEARCH_LOOKED_FOR,
            });
            if !self.ask(q, Asker::Search { conn, user: uid }) {
                let detail = "the server is busy; try again in a moment".to_string();
                self.error(conn, ErrorKind::Unavailable, Re::Conn, detail);
            }
            return;
        }
        // No store and no cluster: the rooms' rings are all there is, searched for words as
        // the store's index takes them (a word, not a piece of one: `hi` does not find `this`).
        let wanted = search_phrases(words.as_str());
        if wanted.is_empty() {
            return self.send_found(conn, uid, Vec::new());
        }
        // Only the rings of the rooms asked about, which the user is in: the newest hits of
        // other rooms would fill the results in place of its own (and each search would read
        // the whole server's history).
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        let mut hits: Vec<RoomEvent> = Vec::new();
        for name in u.rooms.iter() {
            if room.as_ref().is_some_and(|want| want != name) {
                continue;
            }
            let Some(r) = self.rooms.get(name) else {
                continue;
            };
            hits.extend(r.events().filter(|ev| match &ev.kind {
                EventKind::Say { text, .. }
                | EventKind::Act { text, .. }
                | EventKind::Notice { text, .. } => holds_phrases(text.as_str(), &wanted),
                _ => false,
            }));
        }
        hits.sort_by(|a, b| b.at.cmp(&a.at).then(b.seq.cmp(&a.seq)));
        hits.truncate(SEARCH_LOOKED_FOR);
        self.send_found(conn, uid, hits);
    }

    /// Sends search hits from rooms the user is in (the newest [`SEARCH_MAX_RESULTS`]), then
    /// the count: the hits found, up to [`SEARCH_LOOKED_FOR`], so that a count past the hits
    /// sent says older matches were left out.
    fn send_found(&mut self, conn: ConnId, uid: UserId, hits: Vec<RoomEvent>) {
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        let mut hits: Vec<RoomEvent> = hits
            .into_iter()
            .filter(|ev| u.rooms.contains(&ev.room))
            .take(SEARCH_LOOKED_FOR)
            .collect();
        let count = u32::try_from(hits.len()).unwrap_or(u32::MAX);
        hits.truncate(SEARCH_MAX_RESULTS);
        for ev in hits {
            self.reply(conn, Reply::Msg(ServerMsg::Found(ev)));
        }
        self.reply(conn, Reply::Msg(ServerMsg::FoundEnd { count }));
    }

    // ---- refills after a gap ----

    /// Whether [`Hub::history`] of `room` after `after` to `conn` waits: behind a gap the
    /// connection owes, or for a store page (the ring no longer holds what came after `after`).
    pub(super) fn history_waits(&self, conn: ConnId, room: &RoomName, after: Seq) -> bool {
        let owes = self.conns.get(&conn).is_some_and(|c| c.owes_gap(room));
        let lost = self.reads_log()
            && self
                .rooms
                .get(room)
                .is_some_and(|r| after.next() < r.oldest_kept().unwrap_or(r.last_seq.next()));
        owes || lost
    }

    /// With a store: the part of a refill from `after` that is older than the ring is read from
    /// the store (a page at a time); `true` if that was asked and the rest follows the answer.
    pub(super) fn refill_from_store(&mut self, conn: ConnId, room: &RoomName, after: Seq) -> bool {
        if !self.reads_log() {
            return false;
        }
        let Some(r) = self.rooms.get(room) else {
            return false;
        };
        let first_kept = r.oldest_kept().unwrap_or(r.last_seq.next());
        if after.next() >= first_kept {
            return false;
        }
        let upto = Seq((first_kept.0 - 1).min(after.0 + HISTORY_PAGE_MAX as u64));
        let q = Query::History(HistoryQuery {
            room: room.clone(),
            before: upto.next(),
            limit: HISTORY_PAGE_MAX,
        });
        let asker = Asker::Refill {
            conn,
            room: room.clone(),
            after,
            upto,
            left: false,
        };
        // Busy: the client is told the usual way (a gap) and may ask again.
        self.ask(q, asker)
    }

    /// Whether a gap `conn` owes for `room` from `first` on is a catch-up's wait for its store
    /// page (see [`super::Conn::catch_up_waits`]), the page not in yet.
    pub(super) fn awaits_catch_up(&self, conn: ConnId, room: &RoomName, first: Seq) -> bool {
        self.queries.waiting.values().any(|a| {
            matches!(a, Asker::Refill { conn: c, room: r, after, .. }
                if *c == conn && r == room && after.next() == first)
        })
    }

    fn refill_page(
        &mut self,
        conn: ConnId,
        room: RoomName,
        (after, upto): (Seq, Seq),
        left: bool,
        page: HistoryPage,
    ) {
        let lim = self.config.queue_limits();
        // Live traffic held back meanwhile is replayed from here on, as far as the room's
        // latest seq (see `Conn::catch_up_waits`).
        if let Some(c) = self.conns.get_mut(&conn) {
            c.end_catch_up_wait(&room, after);
        }
        let in_room = self
            .conns
            .get(&conn)
            .and_then(|c| c.user())
            .and_then(|u| self.users.get(&u))
            .is_some_and(|u| u.rooms.contains(&room));
        if !in_room || left {
            // Left meanwhile (and maybe back since, with a history of its own): the replay is
            // over (what it opened is closed).
            return self.missed_footer(conn, &room);
        }
        // The page of what an account missed (its footer owed): what opens its replay.
        let opens = self
            .conns
            .get_mut(&conn)
            .filter(|c| c.rare().is_some_and(|r| r.footers.contains(&room)))
            .and_then(|c| c.dialect_mut())
            .and_then(|d| d.missed_page(&room));
        if let Some(start) = opens {
            self.reply(conn, Reply::Own(start));
        }
        let mut next = after.next();
        let mut last = after;
        for ev in page
            .events
            .into_iter()
            .filter(|e| e.seq > after && e.seq <= upto)
        {
            if ev.seq > next {
                // Not stored (retention, or a batch that failed): a gap says so.
                let gap = ServerMsg::Gap {
                    room: room.clone(),
                    first: next,
                    last: Seq(ev.seq.0 - 1),
                };
                self.reply(conn, Reply::Msg(gap));
            }
            let seq = ev.seq;
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let Some(data) = c
                .dialect()
                .and_then(|d| d.render(&Reply::Msg(ServerMsg::Event(ev)), None))
            else {
                // Stored, and nothing the client shows (IRC history is what was said): no gap.
                last = seq;
                next = seq.next();
                continue;
            };
            if !c.room_fits(&self.out, data.len(), lim) {
                // The rest follows when the backlog drains, announced if need be.
                return self.refill_stopped(conn, room, last);
            }
            c.push(&mut self.out, data);
            last = seq;
            next = seq.next();
        }
        if next <= upto {
            let gap = ServerMsg::Gap {
                room: room.clone(),
                first: next,
                last: upto,
            };
            self.reply(conn, Reply::Msg(gap));
        }
        self.history(conn, room, upto);
    }

    // ---- resume ----

    /// Before resuming `uid` on `conn`: with a store, asks for the events each room the client
    /// names lost from the ring since it saw them. `true` if it asked: the resume goes on when
    /// the pages are in.
    pub(super) fn resume_needs_store(
        &mut self,
        conn: ConnId,
        did: DeviceId,
        hello: &Hello,
    ) -> bool {
        if !self.reads_log() || self.queries.resumes.contains_key(&conn) {
            return false;
        }
        let Some(seen) = hello.resume.as_ref().map(|r| r.rooms.clone()) else {
            return false;
        };
        let Some(u) = self.devices.get(&did).and_then(|d| self.users.get(&d.user)) else {
            return false;
        };
        // At most one outbound queue's worth of messages: past that it would be a gap anyway.
        let cap = self.config.outbound_max_msgs as u64;
        let mut asks = Vec::new();
        for (room, after) in seen {
            let Some(r) = self.rooms.get(&room).filter(|_| u.rooms.contains(&room)) else {
                continue;
            };
            let first_kept = r.oldest_kept().unwrap_or(r.last_seq.next());
            let upto = Seq((first_kept.0.saturating_sub(1)).min(after.0.saturating_add(cap)));
            let mut from = after;
            while from < upto {
                let to = Seq((from.0 + HISTORY_PAGE_MAX as u64).min(upto.0));
                asks.push(HistoryQuery {
                    room: room.clone(),
                    before: to.next(),
                    limit: HISTORY_PAGE_MAX,
                });
                from = to;
            }
        }
        if asks.is_empty() || self.queries.waiting.len() + asks.len() > MAX_QUERIES_IN_FLIGHT {
            return false;
        }
        let waiting = asks.len();
        for q in asks {
            let room = q.room.clone();
            self.ask(Query::History(q), Asker::Resume { conn, room });
        }
        debug!(conn = %conn, device = did.0, pages = waiting, "resume waits for stored history");
        self.queries.resumes.insert(
            conn,
            PendingResume {
                device: did,
                hello: hello.clone(),
                waiting,
                pages: BTreeMap::new(),
            },
        );
        if let Some(c) = self.conns.get_mut(&conn) {
            c.probing = true;
        }
        true
    }

    fn resume_page(&mut self, conn: ConnId, room: RoomName, events: Vec<RoomEvent>, now: Millis) {
        let Some(p) = self.queries.resumes.get_mut(&conn) else {
            return;
        };
        let page = p.pages.entry(room).or_default();
        for ev in events {
            page.insert(ev.seq, ev);
        }
        p.waiting -= 1;
        if p.waiting > 0 {
            return;
        }
        let Some(p) = self.queries.resumes.remove(&conn) else {
            return;
        };
        if self.conns.get(&conn).is_none_or(|c| c.closing()) {
            return;
        }
        let pages = p
            .pages
            .into_iter()
            .map(|(room, events)| (room, events.into_values().collect()))
            .collect();
        self.resume_with(conn, p.device, &p.hello, pages, now);
    }

    /// Replays what came after `after` in `room` to a resuming `conn`: the store's `page` first,
    /// then a gap for what neither holds, then the ring.
    pub(super) fn replay_since_with(
        &mut self,
        conn: ConnId,
        room: &RoomName,
        after: Seq,
        page: Vec<RoomEvent>,
    ) {
        let lim = self.config.queue_limits();
        let mut seen = after;
        for ev in page.into_iter().filter(|e| e.seq > after) {
            let seq = ev.seq;
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if let Some(data) = c
                .dialect()
                .and_then(|d| d.render(&Reply::Msg(ServerMsg::Event(ev)), None))
            {
                c.push_room(&mut self.out, room, seq, data, lim);
            }
            seen = seen.max(seq);
        }
        self.replay_since(conn, room, seen);
    }
}

// ---- windows (IRC's CHATHISTORY) ----

/// Only what people said (says and actions): what a window counts and shows.
fn said(events: impl IntoIterator<Item = RoomEvent>) -> Vec<RoomEvent> {
    events
        .into_iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::Say { .. } | EventKind::Act { .. } | EventKind::Notice { .. }
            )
        })
        .collect()
}

/// How many of `lines` (oldest first) come before `p`, and how many before or at it.
fn split_at(lines: &[RoomEvent], p: Point) -> (usize, usize) {
    match p {
        Point::Seq(s) => (
            lines.partition_point(|e| e.seq < s),
            lines.partition_point(|e| e.seq <= s),
        ),
        Point::Time(t) => (
            lines.partition_point(|e| e.at < t),
            lines.partition_point(|e| e.at <= t),
        ),
    }
}

/// The range of `lines` (oldest first) that `window` picks, at most `limit` long, and whether
/// it reaches back to the first of them while it would take older ones if there were any
/// (then older history, if it exists, belongs in the answer).
fn pick(lines: &[RoomEvent], window: Window, limit: usize) -> (Range<usize>, bool) {
    let newest = |end: usize| (end.saturating_sub(limit)..end, end < limit || end == 0);
    let oldest = |start: usize| {
        let end = (start + limit).min(lines.len());
        (start..end, start == 0)
    };
    match window {
        Window::Latest(None) => newest(lines.len()),
        Window::Latest(Some(p)) => {
            let from = split_at(lines, p).1;
            let (range, _) = newest(lines.len());
            (
                range.start.max(from)..range.end,
                from == 0 && lines.len() < limit,
            )
        }
        Window::Before(p) => newest(split_at(lines, p).0),
        Window::After(p) => oldest(split_at(lines, p).1),
        Window::Around(p) => {
            let (before, _) = split_at(lines, p);
            let start = before.saturating_sub(limit / 2);
            let end = (start + limit).min(lines.len());
            (start..end, start == 0)
        }
        Window::Between(a, b) => {
            let (a_lo, a_hi) = split_at(lines, a);
            let (b_lo, b_hi) = split_at(lines, b);
            let forward = match (a, b) {
                (Point::Seq(x), Point::Seq(y)) => x <= y,
                (Point::Time(x), Point::Time(y)) => x <= y,
                _ => a_lo <= b_lo,
            };
            if forward {
                let end = b_lo.max(a_hi);
                let (r, touch) = oldest(a_hi);
                (r.start..r.end.min(end), touch)
            } else {
                let start = b_hi.min(a_lo);
                let (r, touch) = newest(a_lo);
                (r.start.max(start)..r.end, touch && start == 0)
            }
        }
    }
}

/// Where a store page for `window` should end (exclusive), given that the ring starts at
/// `ring`: just before the ring, or sooner when the window's point is a seq older than it.
fn page_end(window: Window, ring: Seq) -> Seq {
    let after = |s: Seq| Seq(s.0.saturating_add(1 + HISTORY_PAGE_MAX as u64));
    let end = match window {
        Window::Before(Point::Seq(s)) => s,
        Window::Around(Point::Seq(s)) => Seq(s.0.saturating_add(HISTORY_PAGE_MAX as u64 / 2)),
        Window::Latest(Some(Point::Seq(s))) | Window::After(Point::Seq(s)) => after(s),
        Window::Between(Point::Seq(a), Point::Seq(b)) if a <= b => after(a),
        Window::Between(Point::Seq(a), Point::Seq(_)) => a,
        _ => ring,
    };
    end.min(ring)
}

impl Hub {
    /// `Query::History`: the lines of `room` in `window`, from the ring, or with a store page
    /// when the window reaches back past the ring.
    pub(super) fn history_window(
        &mut self,
        conn: ConnId,
        uid: UserId,
        room: RoomName,
        window: Window,
        limit: usize,
    ) {
        // The draft asks for "up to `limit`" lines: a limit of 0 is none (an empty batch).
        let limit = limit.min(HISTORY_WINDOW_MAX);
        let member = self
            .users
            .get(&uid)
            .is_some_and(|u| u.rooms.contains(&room));
        let Some(r) = self.rooms.get(&room).filter(|_| member) else {
            let lines = Err(HistoryFail::NotInRoom);
            return self.reply(
                conn,
                Reply::Info(Info::History {
                    room,
                    window,
                    lines,
                }),
            );
        };
        if limit == 0 {
            let lines = Ok(Vec::new());
            return self.reply(
                conn,
                Reply::Info(Info::History {
                    room,
                    window,
                    lines,
                }),
            );
        }
        let ring_start = r.oldest_kept().unwrap_or(r.last_seq.next());
        let lines = said(r.durable_events(self.durable.as_deref()));
        let (lines, touches) = self.window_lines(lines, window, limit);
        let older_exists = ring_start > Seq(1);
        if touches && older_exists && self.reads_log() {
            let end = page_end(window, ring_start);
            let q = Query::History(HistoryQuery {
                room: room.clone(),
                before: end,
                limit: HISTORY_PAGE_MAX,
            });
            let asker = Asker::Window {
                conn,
                room: room.clone(),
                window,
                limit,
                ring: end == ring_start,
            };
            if !self.ask(q, asker) {
                let why = "the server is busy; try again in a moment".to_owned();
                let lines = Err(HistoryFail::Unavailable(why));
                self.reply(
                    conn,
                    Reply::Info(Info::History {
                        room,
                        window,
                        lines,
                    }),
                );
            }
            return;
        }
        self.reply(
            conn,
            Reply::Info(Info::History {
                room,
                window,
                lines: Ok(lines),
            }),
        );
    }

    /// The lines `window` picks from `lines`, as many as fit half an outbound queue (the far
    /// end from the window's point is left out first), and whether it reached their start.
    fn window_lines(
        &self,
        mut lines: Vec<RoomEvent>,
        window: Window,
        limit: usize,
    ) -> (Vec<RoomEvent>, bool) {
        let (range, touches) = pick(&lines, window, limit);
        lines.truncate(range.end);
        lines.drain(..range.start);
        let mut budget = self.config.queue_limits().max_bytes / 2;
        let cost = |e: &RoomEvent| match &e.kind {
            // The text, and room for the line's tags and prefix.
            EventKind::Say { text, .. }
            | EventKind::Act { text, .. }
            | EventKind::Notice { text, .. } => text.as_str().len() + 200,
            _ => 200,
        };
        let newest_first = matches!(window, Window::Latest(_) | Window::Before(_));
        let keep = if newest_first {
            lines
                .iter()
                .rev()
                .take_while(|e| {
                    let c = cost(e);
                    budget.checked_sub(c).map(|b| budget = b).is_some()
                })
                .count()
        } else {
            lines
                .iter()
                .take_while(|e| {
                    let c = cost(e);
                    budget.checked_sub(c).map(|b| budget = b).is_some()
                })
                .count()
        };
        if newest_first {
            lines.drain(..lines.len() - keep);
        } else {
            lines.truncate(keep);
        }
        (lines, touches)
    }

    /// `Query::Targets`: the rooms `uid` is in whose latest line (in the ring) was said between
    /// `from` and `to`, in the order of those times.
    pub(super) fn targets(&self, uid: UserId, from: Millis, to: Millis, limit: usize) -> Info {
        let (lo, hi) = (from.min(to), from.max(to));
        let Some(u) = self.users.get(&uid) else {
            return Info::Targets(Vec::new());
        };
        let mut found: Vec<(RoomName, Millis)> = u
            .rooms
            .iter()
            .filter_map(|name| {
                let r = self.rooms.get(name)?;
                let last = said(r.events()).pop()?;
                (last.at >= lo && last.at <= hi).then(|| (name.clone(), last.at))
            })
            .collect();
        found.sort_by_key(|(_, at)| *at);
        if from > to {
            found.reverse();
        }
        // As many as asked (none for 0: see `history_window`), at most the window's most.
        found.truncate(limit.min(HISTORY_WINDOW_MAX));
        Info::Targets(found)
    }
}

impl Room {
    /// The newest `limit` events kept with a seq below `before`, oldest first.
    pub(crate) fn before(&self, before: Seq, limit: usize) -> Vec<super::room::Stored<'_>> {
        let upto = Seq(before.0.saturating_sub(1));
        self.last_n(limit, upto).collect()
    }
}

/// The words of `s` as the store's search index splits them (SQLite's `unicode61` with
/// `remove_diacritics 2`, over [`crate::search::searchable`]): runs of letters and digits, in
/// lower case, their accents taken off (`Café` is `cafe`), each character of a script written
/// without spaces and each emoji a word of its own; everything else separates them.
fn search_tokens(s: &str) -> Vec<String> {
    crate::search::searchable(s)
        .split(|c: char| !crate::search::word_char(c))
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.nfd()
                .filter(|&c| !unicode_normalization::char::is_combining_mark(c))
                .flat_map(char::to_lowercase)
                .collect()
        })
        .collect()
}

/// What a search for `typed` asks for, as the store reads it: each of its first
/// [`SEARCH_MAX_WORDS`] whitespace-separated words that holds something to find (a letter, a
/// digit, an emoji), as the phrase of its tokens (`don't` is `don` next to `t`, `テキスト` is
/// `テ` `キ` `ス` `ト`). Empty when none holds one: nothing matches.
fn search_phrases(typed: &str) -> Vec<Vec<String>> {
    typed
        .split_whitespace()
        .filter(|w| crate::search::findable(w))
        .take(SEARCH_MAX_WORDS)
        .map(search_tokens)
        .collect()
}

/// Whether `text` holds every phrase (and there is one): each phrase's tokens next to each
/// other, in order.
fn holds_phrases(text: &str, phrases: &[Vec<String>]) -> bool {
    let tokens = search_tokens(text);
    !phrases.is_empty()
        && phrases.iter().all(|p| {
            !p.is_empty()
                && tokens
                    .windows(p.len())
                    .any(|w| w.iter().zip(p).all(|(a, b)| a == b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{nick, room, text};
    use crate::types::MsgId;

    #[test]
    fn search_words_are_whole_words_as_the_store_reads_them() {
        let find = |typed: &str, line: &str| holds_phrases(line, &search_phrases(typed));
        assert!(find("hi", "Hi, all"));
        assert!(
            !find("hi", "this is thirty"),
            "a piece of a word is no word"
        );
        assert!(!find("thirt", "this is thirty"));
        assert!(find("THIRTY this", "this is thirty"));
        assert!(!find("thirty nope", "this is thirty"), "every word");
        assert!(
            find("cafe", "Café au lait"),
            "accents are taken off the line"
        );
        assert!(find("CAFÉ", "a cafe"), "and off what is typed");
        assert!(find("Ångström", "angstrom units"));
        assert!(!find("cafe", "caf"), "still whole words");
        assert!(find("wörd", "Ünïcode WÖRD here"));
        assert!(find("don't", "I don't know"), "a phrase of its tokens");
        assert!(!find("don't", "t don"));
        assert!(find("5", "line 5"));
        assert!(!find("5", "line 15"));
        assert!(!find("!!", "wow !!"), "no letter or digit: nothing matches");
    }

    #[test]
    fn unspaced_scripts_and_emoji_are_found_as_the_store_finds_them() {
        let find = |typed: &str, line: &str| holds_phrases(line, &search_phrases(typed));
        assert!(
            find("テキスト", "日本語テキストです"),
            "a piece of a Japanese line"
        );
        assert!(find("本語", "日本語テキスト"));
        assert!(!find("本日", "日本語テキスト"), "its characters in order");
        assert!(
            find("한국어", "한국어를 배워요"),
            "a Korean word with its particle"
        );
        assert!(find("🎉", "great🎉party"));
        assert!(
            find("great", "great🎉party"),
            "the word beside it still found"
        );
        assert!(find("👍", "ok 👍🏽"), "a thumb with its skin tone");
        assert!(!find("🎈", "great🎉party"));
        let icon = crate::search::searchable("🎉").trim().to_owned();
        assert!(
            find(&icon, &format!("my {icon} icon")),
            "a typed icon is found"
        );
        assert!(
            !find("🎉", &format!("my {icon} icon")),
            "but not for the emoji"
        );
        assert!(!find(&icon, "great🎉party"), "nor the emoji for it");
        assert!(find("𠀁", "rare 𠀀𠀁𠀂 ideographs"), "CJK extension B");
    }

    /// Lines with seqs 10, 12, 14, ... (others' events between them), said at seq × 1000 ms.
    fn lines(n: u64) -> Vec<RoomEvent> {
        (0..n)
            .map(|i| RoomEvent {
                room: room("#w"),
                seq: Seq(10 + 2 * i),
                at: Millis((10 + 2 * i) * 1000),
                from: nick("a"),
                kind: EventKind::Say {
                    id: MsgId(i + 1),
                    text: text("x"),
                },
            })
            .collect()
    }

    #[test]
    fn windows_pick_their_lines_and_say_when_older_ones_may_belong() {
        let l = lines(10); // seqs 10..=28
        let s = |n| Point::Seq(Seq(n));
        assert_eq!(pick(&l, Window::Latest(None), 3), (7..10, false));
        assert_eq!(pick(&l, Window::Latest(None), 30), (0..10, true));
        assert_eq!(pick(&l, Window::Latest(Some(s(23))), 30), (7..10, false));
        assert_eq!(pick(&l, Window::Latest(Some(s(5))), 30), (0..10, true));
        assert_eq!(pick(&l, Window::Latest(Some(s(5))), 4), (6..10, false));
        assert_eq!(pick(&l, Window::Before(s(16)), 2), (1..3, false));
        assert_eq!(pick(&l, Window::Before(s(16)), 5), (0..3, true));
        assert_eq!(pick(&l, Window::After(s(16)), 2), (4..6, false));
        assert_eq!(pick(&l, Window::After(s(3)), 2), (0..2, true));
        assert_eq!(pick(&l, Window::After(s(28)), 2), (10..10, false));
        // A point between lines (an event that was not said) works the same.
        assert_eq!(pick(&l, Window::After(s(15)), 1), (3..4, false));
        assert_eq!(pick(&l, Window::Around(s(20)), 4), (3..7, false));
        assert_eq!(pick(&l, Window::Around(s(12)), 4), (0..4, true));
        assert_eq!(pick(&l, Window::Between(s(12), s(20)), 10), (2..5, false));
        assert_eq!(pick(&l, Window::Between(s(20), s(12)), 2), (3..5, false));
        assert_eq!(pick(&l, Window::Between(s(20), s(1)), 9), (0..5, true));
        // Times are exclusive too, and may be mixed with seqs.
        let t = |ms| Point::Time(Millis(ms));
        assert_eq!(pick(&l, Window::After(t(14_000)), 2), (3..5, false));
        assert_eq!(pick(&l, Window::Before(t(14_000)), 9), (0..2, true));
        assert_eq!(
            pick(&l, Window::Between(t(14_000), s(20)), 9),
            (3..5, false)
        );
        assert_eq!(pick(&[], Window::Latest(None), 5), (0..0, true));
        // Where a store page should end.
        assert_eq!(page_end(Window::Before(s(5)), Seq(10)), Seq(5));
        assert_eq!(page_end(Window::Before(s(50)), Seq(10)), Seq(10));
        assert_eq!(page_end(Window::After(s(5)), Seq(1000)), Seq(206));
        assert_eq!(page_end(Window::Latest(None), Seq(10)), Seq(10));
        assert_eq!(page_end(Window::Between(s(9), s(2)), Seq(100)), Seq(9));
        assert_eq!(page_end(Window::Around(t(1)), Seq(10)), Seq(10));
    }

    /// What a window means, written the slow way: filters over every line.
    fn model(l: &[RoomEvent], window: Window, limit: usize) -> Vec<Seq> {
        use core::cmp::Ordering;
        let cmp = |e: &RoomEvent, p: Point| match p {
            Point::Seq(s) => e.seq.cmp(&s),
            Point::Time(t) => e.at.cmp(&t),
        };
        let seqs = |it: Vec<&RoomEvent>| it.into_iter().map(|e| e.seq).collect::<Vec<_>>();
        let last = |v: Vec<&RoomEvent>, n: usize| seqs(v[v.len().saturating_sub(n)..].to_vec());
        let first = |v: Vec<&RoomEvent>, n: usize| seqs(v.into_iter().take(n).collect());
        let before = |p| {
            l.iter()
                .filter(|e| cmp(e, p) == Ordering::Less)
                .collect::<Vec<_>>()
        };
        let after = |p| {
            l.iter()
                .filter(|e| cmp(e, p) == Ordering::Greater)
                .collect::<Vec<_>>()
        };
        match window {
            Window::Latest(None) => last(l.iter().collect(), limit),
            Window::Latest(Some(p)) => last(after(p), limit),
            Window::Before(p) => last(before(p), limit),
            Window::After(p) => first(after(p), limit),
            Window::Around(p) => {
                let mut out = last(before(p), limit / 2);
                let from: Vec<&RoomEvent> =
                    l.iter().filter(|e| cmp(e, p) != Ordering::Less).collect();
                out.extend(first(from, limit - out.len()));
                out
            }
            Window::Between(a, b) => {
                let forward = match (a, b) {
                    (Point::Seq(x), Point::Seq(y)) => x <= y,
                    (Point::Time(x), Point::Time(y)) => x <= y,
                    _ => before(a).len() <= before(b).len(),
                };
                if forward {
                    let both = after(a).into_iter().filter(|e| cmp(e, b) == Ordering::Less);
                    first(both.collect(), limit)
                } else {
                    let both = before(a)
                        .into_iter()
                        .filter(|e| cmp(e, b) == Ordering::Greater);
                    last(both.collect(), limit)
                }
            }
        }
    }

    fn point() -> impl proptest::strategy::Strategy<Value = Point> {
        use proptest::prelude::*;
        prop_oneof![
            (0u64..80).prop_map(|s| Point::Seq(Seq(s))),
            (0u64..80).prop_map(|t| Point::Time(Millis(t))),
        ]
    }

    proptest::proptest! {
        #[test]
        fn pick_is_what_the_window_means(
            steps in proptest::collection::vec((1u64..4, 0u64..3), 0..30),
            kind in 0u8..6,
            a in point(),
            b in point(),
            limit in 1usize..12,
        ) {
            // Seqs rise; times never fall (several lines may share a millisecond).
            let (mut seq, mut at) = (0, 0);
            let l: Vec<RoomEvent> = steps
                .iter()
                .map(|(ds, dt)| {
                    seq += ds;
                    at += dt;
                    let mut e = lines(1).remove(0);
                    e.seq = Seq(seq);
                    e.at = Millis(at);
                    e
                })
                .collect();
            let window = match kind {
                0 => Window::Latest(None),
                1 => Window::Latest(Some(a)),
                2 => Window::Before(a),
                3 => Window::After(a),
                4 => Window::Around(a),
                _ => Window::Between(a, b),
            };
            let (range, _) = pick(&l, window, limit);
            let got: Vec<Seq> = l[range].iter().map(|e| e.seq).collect();
            proptest::prop_assert_eq!(got, model(&l, window, limit));
        }
    }
}
