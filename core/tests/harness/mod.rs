//! An in-memory network for whole conversations: one `Hub`, several clients and raw text-mode
//! (`nc`) users, bytes moved between them by hand and a fake clock advanced explicitly. A client
//! is what the CLI and the page run: a `Session` and the `Chat` model folding its events, typed
//! lines going where the model says. No sockets, no threads, fully deterministic.
#![allow(dead_code)] // Each test file uses a different part of the harness.

use bytes::Bytes;
use core::net::{IpAddr, Ipv4Addr};
use natter_core::accounts::{Outcome, PasswordHash, Work, WorkDone};
use natter_core::chat::Chat;
use natter_core::hub::{Config, Hub, HubEvent};
use natter_core::persist::{
    Answer, Batch, HistoryPage, Loaded, LoadedAccount, LoadedRoom, Query, SessionRecord, Write,
};
use natter_core::session::{Event, Resumable, Session, SessionConfig, Transport};
use natter_core::wire::{EventKind, RoomEvent};
use natter_core::{ConnId, Millis, Nick, RoomName, Seq};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One participant.
pub struct Client {
    pub kind: Kind,
    /// The hub connection it currently has, if connected.
    pub conn: Option<ConnId>,
    /// Bytes the hub sent that this client has not read yet (a stalled reader lets them pile up,
    /// and the hub is not told they were written).
    pub inbox: VecDeque<Bytes>,
    /// A stalled client reads nothing.
    pub stalled: bool,
    /// A slow link: what the client sends on its current connection reaches the hub only at
    /// this time (the first connection only; a reconnect goes through at once).
    pub held: Option<(Millis, Vec<Bytes>)>,
}

pub enum Kind {
    /// A program: the CLI or the page.
    Session {
        session: Box<Session>,
        chat: Box<Chat>,
        events: Vec<Event>,
    },
    /// A person on nc: raw lines.
    Text {
        lines: Vec<String>,
        partial: Vec<u8>,
    },
}

pub struct Net {
    pub hub: Hub,
    pub now: Millis,
    pub clients: Vec<Client>,
    /// Hub events seen, for assertions on logging/limits.
    pub hub_events: Vec<HubEvent>,
    /// The durable store, when the hub's config has one (`Config::durable`).
    pub store: Option<FakeStore>,
    /// The hub's config, for a restarted hub ([`Net::crash`]).
    config: Config,
}

/// A durable store in memory, kept as natter-store keeps it: the batches the hub hands out wait
/// here until a test commits them ([`Net::commit`]) or fails them ([`Net::fail`]); committed
/// writes are applied in order, each batch whole; a crash loses only what waited.
#[derive(Debug, Default)]
pub struct FakeStore {
    /// Handed out and neither committed nor failed yet, oldest first.
    pub pending: VecDeque<Batch>,
    /// Committed room events by room and seq.
    pub events: BTreeMap<RoomName, BTreeMap<u64, RoomEvent>>,
    /// A room's highest seq ever committed.
    pub last_seq: BTreeMap<RoomName, Seq>,
    /// Room events committed at a (room, seq) that already held one: never allowed.
    pub written_twice: Vec<(RoomName, Seq)>,
    /// Resume sessions by the hash of their token.
    pub sessions: BTreeMap<[u8; 32], SessionRecord>,
    /// Who is in each room (folded nick to nick), as the presence writes tell.
    pub present: BTreeMap<RoomName, BTreeMap<String, Nick>>,
    /// Accounts by folded name, with their rooms, read markers and device keys.
    pub accounts: BTreeMap<String, LoadedAccount>,
    /// The id of the last batch handed out, and of the last committed.
    pub handed: u64,
    pub committed: u64,
}

impl FakeStore {
    /// Applies one committed write.
    fn apply(&mut self, w: &Write) {
        match w {
            Write::Event(ev) => {
                let room = self.events.entry(ev.room.clone()).or_default();
                if room.insert(ev.seq.0, ev.clone()).is_some() {
                    self.written_twice.push((ev.room.clone(), ev.seq));
                }
                let last = self.last_seq.entry(ev.room.clone()).or_insert(Seq(0));
                *last = (*last).max(ev.seq);
            }
            Write::Session(r) => {
                self.sessions.insert(r.token.0, r.clone());
            }
            Write::SessionLastId {
                token,
                last_id,
                updated,
            } => {
                if let Some(r) = self.sessions.get_mut(&token.0) {
                    r.last_id = *last_id;
                    r.updated = *updated;
                }
            }
            Write::EndSession(h) => {
                self.sessions.remove(&h.0);
            }
            Write::EndSessionsBefore(t) => self.sessions.retain(|_, r| r.updated >= *t),
            Write::SeqsUsed { room, upto } => {
                let last = self.last_seq.entry(room.clone()).or_insert(Seq(0));
                *last = (*last).max(*upto);
            }
            Write::PresenceReset => self.present.clear(),
            Write::Presence { room, nick, here } => {
                let folded = nick.folded_key().as_str().to_owned();
                let members = self.present.entry(room.clone()).or_default();
                if *here {
                    members.insert(folded, nick.clone());
                } else {
                    members.remove(&folded);
                }
            }
            // Accounts as natter-store keeps them: a record per folded name, the rest keyed
            // by it (writes about an account that is not there change nothing).
            Write::Account(r) => match self.accounts.get_mut(&r.name.folded()) {
                Some(a) => {
                    a.apply(w);
                }
                None => {
                    let a = LoadedAccount {
                        record: r.clone(),
                        rooms: Vec::new(),
                        read: Vec::new(),
                        keys: Vec::new(),
                        held: Vec::new(),
                    };
                    self.accounts.insert(r.name.folded(), a);
                }
            },
            Write::DropAccount(name) => {
                self.accounts.remove(&name.folded());
            }
            Write::AccountRooms { account, .. }
            | Write::ReadMarker { account, .. }
            | Write::AddKey { account, .. }
            | Write::KeyUsed { account, .. }
            | Write::HeldDirects { account, .. }
            | Write::RevokeKeys { account } => {
                if let Some(a) = self.accounts.get_mut(&account.folded()) {
                    a.apply(w);
                }
            }
            Write::RevokeKey { .. } => {
                for a in self.accounts.values_mut() {
                    a.apply(w);
                }
            }
            // Settings and the audit log: these tests make none.
            _ => {}
        }
    }

    /// What a restarted hub is handed: every room with its newest `recent` events, every
    /// session, who was in each room.
    pub fn loaded(&self, recent: usize) -> Loaded {
        let rooms = self
            .last_seq
            .iter()
            .map(|(name, last)| {
                let events = self.events.get(name);
                let mut newest: Vec<RoomEvent> = events
                    .into_iter()
                    .flat_map(|e| e.values().rev().take(recent))
                    .cloned()
                    .collect();
                newest.reverse();
                let topic = events
                    .and_then(|e| {
                        e.values().rev().find_map(|ev| match &ev.kind {
                            EventKind::Topic { topic } => Some(topic.clone()),
                            _ => None,
                        })
                    })
                    .flatten();
                LoadedRoom {
                    name: name.clone(),
                    topic,
                    last_seq: *last,
                    recent: newest,
                    present: self
                        .present
                        .get(name)
                        .map(|m| m.values().cloned().collect())
                        .unwrap_or_default(),
                }
            })
            .collect();
        Loaded {
            rooms,
            sessions: self.sessions.values().cloned().collect(),
            accounts: self.accounts.values().cloned().collect(),
            ..Loaded::default()
        }
    }

    /// Answers a query from what is committed.
    fn answer(&self, q: &Query) -> Answer {
        match q {
            Query::History(h) => {
                let mut events: Vec<RoomEvent> = self
                    .events
                    .get(&h.room)
                    .into_iter()
                    .flat_map(|e| e.range(..h.before.0).rev().take(h.limit))
                    .map(|(_, ev)| ev.clone())
                    .collect();
                events.reverse();
                let at_start = events.len() < h.limit;
                Answer::History(Ok(HistoryPage { events, at_start }))
            }
            Query::Search(_) => Answer::Search(Ok(Vec::new())),
        }
    }
}

/// A hub whose queues overflow at once when a reader stalls (8 messages, 2 KiB), with a short
/// history and a flood bucket generous enough that chat goes through.
pub fn small_queues() -> Config {
    Config {
        outbound_max_msgs: 8,
        outbound_max_bytes: 2048,
        flood_burst: 1_000,
        flood_refill: Millis(1),
        history_len: 16,
        ..Config::default()
    }
}

pub fn nick(s: &str) -> Nick {
    Nick::new(s).unwrap()
}

pub fn room(s: &str) -> RoomName {
    RoomName::new(s).unwrap()
}

fn ip(i: usize) -> IpAddr {
    // Distinct non-loopback addresses would hit per-IP limits only if a test wants that.
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % 200) as u8))
}

impl Net {
    pub fn new(config: Config) -> Net {
        Net {
            hub: Hub::new(config.clone()),
            now: Millis(1_700_000_000_000),
            clients: Vec::new(),
            hub_events: Vec::new(),
            store: config.durable.then(FakeStore::default),
            config,
        }
    }

    /// The store commits the oldest `n` batches waiting (all of them, if fewer wait), and the
    /// hub is told.
    pub fn commit(&mut self, n: usize) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let mut upto = None;
        for _ in 0..n {
            let Some(b) = store.pending.pop_front() else {
                break;
            };
            for w in &b.writes {
                store.apply(w);
            }
            store.committed = b.id.0;
            upto = Some(b.id);
        }
        if let Some(id) = upto {
            self.hub.handle_durable(id, self.now);
            self.pump();
        }
    }

    /// The store fails the oldest batch waiting (a full disk), and the hub is told.
    pub fn fail(&mut self) {
        let Some(b) = self.store.as_mut().and_then(|s| s.pending.pop_front()) else {
            return;
        };
        self.hub
            .handle_store_failed(b.id, "the disk is full", self.now);
        self.pump();
    }

    /// `kill -9` of the server: what the store had not committed is lost, every connection
    /// drops (people on nc are gone for good; programs reconnect by themselves), and a new hub
    /// starts from what was committed.
    pub fn crash(&mut self) {
        let now = self.now;
        let loaded = match self.store.as_mut() {
            Some(store) => {
                store.pending.clear();
                store.loaded(self.config.history_len)
            }
            None => Loaded::default(),
        };
        // A real server seeds each start from the OS: a restarted hub's tokens are new ones.
        let seed = &mut self.config.secret_seed;
        let starts = u64::from_le_bytes(seed[..8].try_into().expect("8 bytes")) + 1;
        seed[..8].copy_from_slice(&starts.to_le_bytes());
        self.hub = Hub::new(self.config.clone());
        self.hub.restore(loaded, now);
        for c in &mut self.clients {
            c.inbox.clear();
            c.held = None;
            if c.conn.take().is_some()
                && let Kind::Session { session, .. } = &mut c.kind
            {
                session.handle_disconnected("the server went away", now);
            }
        }
        self.pump();
    }

    /// A binary client that joins `rooms` once connected. Returns its index.
    pub fn add_session(&mut self, name: &str, rooms: &[&str]) -> usize {
        let config = SessionConfig {
            nick: nick(name),
            rooms: rooms.iter().map(|r| room(r)).collect(),
            transport: Transport::Stream,
            seed: self.clients.len() as u64 + 1,
        };
        let chat = Box::new(Chat::new(config.nick.clone()));
        let session = Box::new(Session::new(config, self.now));
        self.push_session(session, chat)
    }

    /// A binary client that resumes an earlier one's session (`from`, its
    /// [`Session::resumable`]), as a reloaded page does. Returns its index.
    pub fn add_resumed_session(&mut self, from: Resumable) -> usize {
        let config = SessionConfig {
            nick: from.nick.clone(),
            rooms: Vec::new(),
            transport: Transport::Stream,
            seed: self.clients.len() as u64 + 1,
        };
        let chat = Box::new(Chat::new(from.nick.clone()));
        let session = Box::new(Session::resume(config, from, self.now));
        self.push_session(session, chat)
    }

    /// Adds a client driving `session` and its chat model; returns its index.
    fn push_session(&mut self, session: Box<Session>, chat: Box<Chat>) -> usize {
        self.clients.push(Client {
            kind: Kind::Session {
                session,
                chat,
                events: Vec::new(),
            },
            conn: None,
            inbox: VecDeque::new(),
            stalled: false,
            held: None,
        });
        let i = self.clients.len() - 1;
        self.pump();
        i
    }

    /// Client `i` is gone, as a closed or reloaded page is: its connection closes with no quit,
    /// and it does nothing more (an idle text client without a connection from now on).
    pub fn gone(&mut self, i: usize) {
        let now = self.now;
        if let Some(conn) = self.clients[i].conn.take() {
            self.hub.handle_close(conn, now);
        }
        let c = &mut self.clients[i];
        c.inbox.clear();
        c.held = None;
        c.kind = Kind::Text {
            lines: Vec::new(),
            partial: Vec::new(),
        };
        self.pump();
    }

    /// A binary client on a slow link: its first connection's bytes reach the hub `delay`
    /// after it connects (past the detection wait, say). Returns its index.
    pub fn add_session_delayed(&mut self, name: &str, rooms: &[&str], delay: Millis) -> usize {
        let config = SessionConfig {
            nick: nick(name),
            rooms: rooms.iter().map(|r| room(r)).collect(),
            transport: Transport::Stream,
            seed: self.clients.len() as u64 + 1,
        };
        let chat = Box::new(Chat::new(config.nick.clone()));
        let session = Box::new(Session::new(config, self.now));
        self.clients.push(Client {
            kind: Kind::Session {
                session,
                chat,
                events: Vec::new(),
            },
            conn: None,
            inbox: VecDeque::new(),
            stalled: false,
            held: Some((self.now + delay, Vec::new())),
        });
        let i = self.clients.len() - 1;
        self.pump();
        i
    }

    /// A person on nc: connects and waits to be greeted. Returns its index.
    pub fn add_text(&mut self) -> usize {
        let conn = self
            .hub
            .accept(ip(self.clients.len()), self.now)
            .expect("accepted");
        self.clients.push(Client {
            kind: Kind::Text {
                lines: Vec::new(),
                partial: Vec::new(),
            },
            conn: Some(conn),
            inbox: VecDeque::new(),
            stalled: false,
            held: None,
        });
        let i = self.clients.len() - 1;
        // Silence makes it a text connection.
        self.advance(Millis(1_000));
        i
    }

    pub fn session(&mut self, i: usize) -> &mut Session {
        match &mut self.clients[i].kind {
            Kind::Session { session, .. } => session,
            Kind::Text { .. } => panic!("client {i} is a text client"),
        }
    }

    /// The client's chat model.
    pub fn chat(&mut self, i: usize) -> &mut Chat {
        match &mut self.clients[i].kind {
            Kind::Session { chat, .. } => chat,
            Kind::Text { .. } => panic!("client {i} is a text client"),
        }
    }

    pub fn events(&self, i: usize) -> &[Event] {
        match &self.clients[i].kind {
            Kind::Session { events, .. } => events,
            Kind::Text { .. } => panic!("client {i} is a text client"),
        }
    }

    pub fn lines(&self, i: usize) -> &[String] {
        match &self.clients[i].kind {
            Kind::Text { lines, .. } => lines,
            Kind::Session { .. } => panic!("client {i} is a session"),
        }
    }

    /// The client types a line (chat or /command) in the conversation its chat model has open.
    pub fn type_line(&mut self, i: usize, line: &str) {
        let now = self.now;
        match &mut self.clients[i].kind {
            Kind::Session { session, chat, .. } => {
                session.handle_input_in(line, chat.target().as_ref(), now)
            }
            Kind::Text { .. } => {
                let conn = self.clients[i].conn.expect("connected");
                let bytes = format!("{line}\r\n");
                self.hub.handle_bytes(conn, bytes.as_bytes(), now);
            }
        }
        self.pump();
    }

    /// Raw bytes from a client's socket (text clients: anything, including garbage).
    pub fn send_raw(&mut self, i: usize, bytes: &[u8]) {
        let conn = self.clients[i].conn.expect("connected");
        self.hub.handle_bytes(conn, bytes, self.now);
        self.pump();
    }

    /// The client's connection drops (both ends notice).
    pub fn cut(&mut self, i: usize) {
        let now = self.now;
        if let Some(conn) = self.clients[i].conn.take() {
            self.hub.handle_close(conn, now);
        }
        self.clients[i].inbox.clear();
        if let Kind::Session { session, .. } = &mut self.clients[i].kind {
            session.handle_disconnected("connection cut by the test", now);
        }
        self.pump();
    }

    pub fn set_stalled(&mut self, i: usize, stalled: bool) {
        self.clients[i].stalled = stalled;
        self.pump();
    }

    /// Advances the fake clock by `d`, firing every deadline on the way in order.
    pub fn advance(&mut self, d: Millis) {
        let end = self.now + d;
        for _ in 0..100_000 {
            let next = self.next_deadline();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.fire_timeouts();
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = end;
        self.fire_timeouts();
        self.pump();
    }

    fn next_deadline(&self) -> Option<Millis> {
        let mut next = self.hub.poll_timeout();
        for c in &self.clients {
            if let Some((t, _)) = &c.held {
                next = Some(next.map_or(*t, |n| n.min(*t)));
            }
            if let Kind::Session { session, chat, .. } = &c.kind {
                for t in [session.poll_timeout(), chat.poll_timeout()]
                    .into_iter()
                    .flatten()
                {
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
        }
        next
    }

    fn fire_timeouts(&mut self) {
        let now = self.now;
        if self.hub.poll_timeout().is_some_and(|t| t <= now) {
            self.hub.handle_timeout(now);
        }
        for c in &mut self.clients {
            if let Kind::Session { session, chat, .. } = &mut c.kind {
                if session.poll_timeout().is_some_and(|t| t <= now) {
                    session.handle_timeout(now);
                }
                if chat.poll_timeout().is_some_and(|t| t <= now) {
                    chat.handle_timeout(now);
                }
            }
        }
    }

    /// Moves bytes and events until nothing moves.
    pub fn pump(&mut self) {
        for _round in 0..10_000 {
            let mut moved = false;
            let now = self.now;

            // Sessions: events (connect/close instructions) and bytes to the hub.
            for i in 0..self.clients.len() {
                let mut connect = false;
                let mut close = false;
                let mut out = Vec::new();
                if let Kind::Session {
                    session,
                    chat,
                    events,
                } = &mut self.clients[i].kind
                {
                    while let Some(ev) = session.poll_event() {
                        moved = true;
                        match ev {
                            Event::Connect => connect = true,
                            Event::Close => close = true,
                            _ => {}
                        }
                        chat.handle_event(&ev, now);
                        events.push(ev);
                    }
                    // What the person read, as a UI tells it (signed in only).
                    while let Some((room, seq)) = chat.poll_read(now) {
                        session.read(room, seq, now);
                    }
                    while let Some(b) = session.poll_transmit() {
                        out.push(b);
                    }
                }
                if connect {
                    let conn = self.hub.accept(ip(i), now).expect("accepted");
                    self.clients[i].conn = Some(conn);
                    if let Kind::Session { session, .. } = &mut self.clients[i].kind {
                        session.handle_connected(now);
                    }
                    moved = true;
                }
                if let Some((until, held)) = &mut self.clients[i].held {
                    // A slow link: held until its time, then passed on in order.
                    held.append(&mut out);
                    if now >= *until {
                        out = std::mem::take(held);
                        self.clients[i].held = None;
                    }
                }
                if let Some(conn) = self.clients[i].conn {
                    for b in out {
                        moved = true;
                        self.hub.handle_bytes(conn, &b, now);
                    }
                }
                if close && let Some(conn) = self.clients[i].conn.take() {
                    // What the slow link still held dies with the connection.
                    self.clients[i].held = None;
                    self.hub.handle_close(conn, now);
                    self.clients[i].inbox.clear();
                    if let Kind::Session { session, .. } = &mut self.clients[i].kind {
                        session.handle_disconnected("closed by the session", now);
                    }
                }
            }

            // Password work, done at once and cheaply: a "hash" that is the password marked
            // (argon2, even at its test cost, would make property runs slow).
            while let Some(w) = self.hub.poll_work() {
                moved = true;
                let done = match w {
                    Work::Hash { id, password, .. } => WorkDone {
                        id,
                        outcome: Outcome::Hashed(PasswordHash(format!("fake:{}", password.0))),
                    },
                    Work::Verify { id, password, hash } => WorkDone {
                        id,
                        outcome: Outcome::Verified(hash.0 == format!("fake:{}", password.0)),
                    },
                };
                self.hub.handle_work(done, now);
            }

            // The store: batches wait for the test; queries are answered at once.
            if let Some(store) = self.store.as_mut() {
                while let Some(b) = self.hub.poll_store() {
                    moved = true;
                    store.handed = store.handed.max(b.id.0);
                    store.pending.push_back(b);
                }
                while let Some((id, q)) = self.hub.poll_query() {
                    moved = true;
                    let answer = store.answer(&q);
                    self.hub.handle_answer(id, answer, now);
                }
            }

            // Hub: bytes to clients' inboxes, events.
            while let Some(t) = self.hub.poll_transmit() {
                moved = true;
                if let Some(c) = self.clients.iter_mut().find(|c| c.conn == Some(t.conn)) {
                    c.inbox.push_back(t.concat().into());
                }
            }
            while let Some(ev) = self.hub.poll_event() {
                moved = true;
                if let HubEvent::Close { conn, .. } = &ev {
                    let conn = *conn;
                    if let Some(i) = self.clients.iter().position(|c| c.conn == Some(conn)) {
                        // Deliver what was already sent, then the socket closes.
                        self.deliver(i, usize::MAX);
                        self.clients[i].conn = None;
                        if let Kind::Session { session, .. } = &mut self.clients[i].kind {
                            session.handle_disconnected("closed by the server", now);
                        }
                    }
                    self.hub.handle_close(conn, now);
                }
                self.hub_events.push(ev);
            }

            // Clients read what they were sent, unless stalled.
            for i in 0..self.clients.len() {
                if !self.clients[i].stalled && !self.clients[i].inbox.is_empty() {
                    moved = true;
                    self.deliver(i, usize::MAX);
                }
            }

            if !moved {
                return;
            }
        }
        panic!("the network did not settle");
    }

    fn deliver(&mut self, i: usize, max: usize) {
        let now = self.now;
        let c = &mut self.clients[i];
        let mut n = 0;
        while let Some(b) = c.inbox.pop_front() {
            if n >= max {
                c.inbox.push_front(b);
                break;
            }
            n += 1;
            match &mut c.kind {
                Kind::Session { session, .. } => session.handle_bytes(&b, now),
                Kind::Text { lines, partial } => {
                    partial.extend_from_slice(&b);
                    while let Some(pos) = partial.iter().position(|&x| x == b'\n') {
                        let line: Vec<u8> = partial.drain(..=pos).collect();
                        let s = String::from_utf8(line).expect("the hub sends UTF-8 lines");
                        lines.push(s.trim_end_matches(['\r', '\n']).to_owned());
                    }
                }
            }
            if let Some(conn) = c.conn {
                self.hub.handle_written(conn, b.len(), now);
            }
        }
    }
}

/// Program `i` was shown each room event once, and, for each stay in a room (a part ends one),
/// every seq that `exists` names between the first and the last it saw there is one it saw or
/// one inside a gap marker it got. `exists(room, lo, hi)`: the seqs from `lo` to `hi` that name
/// an event (a seq of a failed batch names none).
pub fn seen_once_or_in_a_gap(
    net: &Net,
    i: usize,
    exists: impl Fn(&RoomName, u64, u64) -> Vec<u64>,
) -> Result<(), String> {
    type Stay = (BTreeSet<u64>, Vec<(u64, u64)>);
    let mut open: BTreeMap<RoomName, Stay> = BTreeMap::new();
    let mut stays: Vec<(RoomName, Stay)> = Vec::new();
    for e in net.events(i) {
        match e {
            Event::Room(ev) => {
                let (seen, _) = open.entry(ev.room.clone()).or_default();
                if !seen.insert(ev.seq.0) {
                    return Err(format!("client {i} got {} #{} twice", ev.room, ev.seq));
                }
            }
            Event::Gap { room, first, last } => {
                open.entry(room.clone())
                    .or_default()
                    .1
                    .push((first.0, last.0));
            }
            Event::Parted { room, .. } => {
                if let Some(stay) = open.remove(room) {
                    stays.push((room.clone(), stay));
                }
            }
            _ => {}
        }
    }
    stays.extend(open);
    for (room, (seen, gaps)) in &stays {
        let (Some(&lo), Some(&hi)) = (seen.first(), seen.last()) else {
            continue;
        };
        for q in exists(room, lo, hi) {
            if !seen.contains(&q) && !gaps.iter().any(|(f, l)| (*f..=*l).contains(&q)) {
                return Err(format!(
                    "client {i} missed {room} #{q} without a gap marker"
                ));
            }
        }
    }
    Ok(())
}
