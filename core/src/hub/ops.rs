//! What users do, in every dialect alike: flood control in front, then join, part, say, act,
//! DM, nick, topic, who, rooms, history and quit, as [`ClientMsg`]s. A person's typed input is
//! resolved into one by its dialect when it runs.

use super::accounts::REGISTERED;
use super::deliver::Skip;
use super::dialect::{Limit, Note, Reply, Request};
use super::query::Query;
use super::room::Room;
use super::timers::Timer;
use super::{Hub, UserId};
use crate::limits::{FLOOD_READ_GAP, MAX_ROOMS_LISTED, MAX_ROOMS_PER_USER};
use crate::render::count;
use crate::time::Millis;
use crate::types::{ConnId, FoldedNick, MsgId, Nick, RoomName, Seq, Text};
use crate::wire::{ClientMsg, DirectMsg, ErrorKind, EventKind, Re, RoomInfo, ServerMsg};
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::debug;

/// How the words of a refusal about a room that does not exist begin (`there is no room #a`):
/// dialects tell it from one about a room without you.
pub(super) const NO_ROOM: &str = "there is no room ";

/// How the words of a nick change refused by its own limit ([`crate::limits::NICK_BURST`])
/// begin, the seconds to wait following: IRC tells it from a flood refusal (`438`, not `263`).
pub(super) const NICK_TOO_FAST: &str = "you are changing nicks too fast: try again in ";

/// A message's id, and the client-only tags it was sent with ([`Request::Tagged`]).
struct Said {
    id: MsgId,
    tags: Option<Arc<str>>,
}

/// What an error about a request answers: its message id, its room or its nick.
/// What the sender of a direct message kept for an account with nothing connected is told, as
/// that account's away message (IRC's `301`).
pub(super) const KEPT_WORDS: &str = "not connected; your message waits for them";

pub(super) fn re_of(r: &Request) -> Re {
    match r {
        Request::Tagged { msg, .. } => re_of_msg(msg),
        Request::Msg(msg) => re_of_msg(msg),
        _ => Re::Conn,
    }
}

fn re_of_msg(m: &ClientMsg) -> Re {
    match m {
        ClientMsg::Say { id, .. }
        | ClientMsg::Act { id, .. }
        | ClientMsg::Msg { id, .. }
        | ClientMsg::Notice { id, .. }
        | ClientMsg::NoticeTo { id, .. } => Re::Msg(*id),
        ClientMsg::Join { room }
        | ClientMsg::Part { room, .. }
        | ClientMsg::Topic { room, .. }
        | ClientMsg::ClearTopic { room }
        | ClientMsg::Who { room }
        | ClientMsg::History { room, .. }
        | ClientMsg::Older { room, .. } => Re::Room(room.clone()),
        ClientMsg::Nick { nick } => Re::Nick(nick.clone()),
        // Said so (to a client of 14 on): another command refused while a sign-in waits is
        // not taken for the sign-in's answer.
        ClientMsg::SignIn { .. }
        | ClientMsg::Register { .. }
        | ClientMsg::ChangePassword { .. } => Re::Account,
        _ => Re::Conn,
    }
}

impl Hub {
    /// A request: run now if a flood token is free and nothing waits ahead of it, else queue
    /// it, else refuse it. While the connection's sign-in (or registration) is being checked,
    /// what it sends next waits for the answer: a line typed meanwhile is said by the account,
    /// and rooms joined meanwhile are the account's, never a guest's that quits a moment later.
    /// The request that ends a connection's input ([`Hub::handle_eof`]): as [`Hub::submit`],
    /// but never refused as a flood (it goes behind what waits, past the queue's limit by one:
    /// input ends once), so the connection always comes to its end.
    pub(super) fn submit_last(&mut self, conn: ConnId, req: Request, now: Millis) {
        let (burst, refill) = (self.config.flood_burst, self.config.flood_refill);
        let signing_in = self.held_up(conn);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !signing_in && c.pending_len() == 0 && c.bucket.take(burst, refill, now) {
            self.run(conn, req, now);
            return;
        }
        c.rare_mut().pending.push_back(req);
        if !signing_in {
            let at = c.bucket.next_token_at(refill);
            self.timers.set(Timer::Flood(conn), at.max(now));
        }
    }

    pub(super) fn submit(&mut self, conn: ConnId, req: Request, now: Millis) {
        let (burst, refill, qmax) = (
            self.config.flood_burst,
            self.config.flood_refill,
            self.config.flood_queue,
        );
        let signing_in = self.held_up(conn);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if signing_in && c.pending_len() < qmax {
            c.rare_mut().pending.push_back(req);
            return;
        }
        if !signing_in && c.pending_len() == 0 && c.bucket.take(burst, refill, now) {
            self.run(conn, req, now);
            return;
        }
        if c.pending_len() < qmax {
            self.stats.flood_delayed += 1;
            c.rare_mut().pending.push_back(req);
            let at = c.bucket.next_token_at(refill);
            self.timers.set(Timer::Flood(conn), at.max(now));
            return;
        }
        let detail = format!(
            "you are sending too fast: {} commands are already waiting; this one was dropped",
            c.pending_len()
        );
        let re = re_of(&req);
        let device = c.device().is_some();
        // A program's resend of a message already taken (or refused) after a resume, with the
        // rest of what it sent meanwhile: answered as when it runs (acknowledged, or refused
        // again), never refused as a flood, which would tell the client the room does not
        // have a line it has. It costs no more than a refusal.
        if let Re::Msg(id) = re
            && device
            && !self.fresh_id(conn, id)
        {
            return;
        }
        self.stats.flood_refused += 1;
        self.flush_fanout();
        // A line the dialect reads when it runs (IRC) is refused as that line: its command
        // and label name the refusal (a NOTICE gets none), and its end closes the answer.
        let line = match &req {
            Request::Line(line) => self
                .conns
                .get_mut(&conn)
                .and_then(|c| c.dialect_mut())
                .is_some_and(|d| d.refusing(line)),
            _ => false,
        };
        let before = self.conns.get(&conn).map(|c| c.backlog_bytes());
        self.limit(conn, Limit::Flood, ErrorKind::Flood, re, detail);
        if !line {
            return;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let answered = before.is_some_and(|b| c.backlog_bytes() > b);
        if let Some(end) = c.dialect_mut().and_then(|d| d.read_done(answered, false)) {
            self.reply(conn, Reply::Own(end));
        }
    }

    /// When the shell should next read `conn`'s socket: `None` at once; `Some(t)` while its
    /// flood queue is full: its next token, or [`FLOOD_READ_GAP`] from now if that is sooner.
    /// Input read meanwhile could only be refused, each message decoded and answered with an
    /// error; left in the socket it costs the server nothing and TCP pushes back on the sender,
    /// so a flooder costs a bounded number of reads a second. What was read is still answered
    /// (every refused message named, as ever).
    pub fn read_after(&self, conn: ConnId) -> Option<Millis> {
        let c = self.conns.get(&conn)?;
        let (refill, qmax) = (self.config.flood_refill, self.config.flood_queue);
        let full = c.pending_len() > 0 && c.pending_len() >= qmax;
        if refill == Millis::ZERO || c.closing() || !full {
            return None;
        }
        Some(
            c.bucket
                .next_token_at(refill)
                .min(self.now + FLOOD_READ_GAP),
        )
    }

    /// Runs waiting requests as tokens allow.
    pub(super) fn run_pending(&mut self, conn: ConnId, now: Millis) {
        let (burst, refill) = (self.config.flood_burst, self.config.flood_refill);
        // In a cluster, what waited for a join or a nick claim came first (its tokens paid);
        // it may have stopped at account work answered now.
        if self.cluster.is_some() {
            self.run_deferred(conn, now);
        }
        loop {
            if self.held_up(conn) {
                // Taken up again when the account request (or the store's last answer before
                // a quit) is answered.
                return;
            }
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.closing() || c.pending_len() == 0 {
                return;
            }
            if !c.bucket.take(burst, refill, now) {
                let at = c.bucket.next_token_at(refill);
                self.timers.set(Timer::Flood(conn), at.max(now));
                return;
            }
            let Some(req) = c.rare_mut().pending.pop_front() else {
                return;
            };
            self.run(conn, req, now);
        }
    }

    pub(super) fn run(&mut self, conn: ConnId, req: Request, now: Millis) {
        let Some(req) = self.cluster_defer(conn, req) else {
            return;
        };
        match req {
            Request::Msg(msg) => self.exec(conn, msg, None, now),
            Request::Tagged { msg, tags } => self.exec(conn, msg, Some(tags), now),
            Request::Answer(reply) => self.reply(conn, reply),
            Request::Typed(input) => {
                if self.user_of(conn).is_none() {
                    return;
                }
                let next_id = self.next_id(conn);
                let Some(d) = self.conns.get_mut(&conn).and_then(|c| c.dialect_mut()) else {
                    return;
                };
                match d.resolve(input, next_id) {
                    Ok(msg) => self.exec(conn, msg, None, now),
                    Err(reply) => self.reply(conn, reply),
                }
            }
            Request::Line(line) => self.run_line(conn, &line, now),
            Request::Query(q) => self.query(conn, q, now),
            Request::Relay(r) => self.relay(conn, r, now),
            Request::Oper { name, password } => self.oper(conn, name, password, now),
            Request::Monitor(op) => self.monitor(conn, op),
            Request::SetName(realname) => self.set_realname(conn, realname),
            Request::Wallops(text) => self.wallops(conn, text, now),
            Request::AdminsOnly(reply) => match self.user_of(conn) {
                Some(uid) if self.is_admin_user(uid) => self.reply(conn, reply),
                Some(_) => {
                    let detail = "that is for server admins".to_owned();
                    self.error(conn, ErrorKind::NotOperator, Re::Conn, detail);
                }
                None => {}
            },
            Request::Deoper => {
                if let Some(uid) = self.user_of(conn) {
                    self.accounts.opers.remove(&uid);
                }
            }
        }
    }

    /// Whether `conn`'s requests wait for an answer: its sign-in or registration being checked
    /// (what it sends next is the account's), the store's answers to what it asked before
    /// its quit ([`Hub::quit_after_answers`]), or, for a dialect that reads answers in the
    /// order asked (nc), any store answer still owed to it.
    pub(super) fn held_up(&self, conn: ConnId) -> bool {
        self.account_busy(conn) || self.queries.quit_waits(conn) || self.answers_owed_first(conn)
    }

    pub(super) fn user_of(&self, conn: ConnId) -> Option<UserId> {
        self.conns.get(&conn)?.user()
    }

    /// Leaves out `conn` when its dialect does not want its own events back.
    pub(super) fn skip_own(&self, conn: ConnId) -> Skip {
        let echoes = self
            .conns
            .get(&conn)
            .and_then(|c| c.dialect())
            .is_some_and(|d| d.echoes_own());
        if echoes { Skip::None } else { Skip::Conn(conn) }
    }

    /// Runs one request of a connection; `tags`: a message's client-only tags, which go with
    /// it ([`Request::Tagged`]).
    fn exec(&mut self, conn: ConnId, msg: ClientMsg, tags: Option<Arc<str>>, now: Millis) {
        self.stats.message_in(&msg);
        if let ClientMsg::Ping { token } = msg {
            return self.reply(conn, Reply::Msg(ServerMsg::Pong { token }));
        }
        // IRC's SASL signs in before registration, when there is no user yet.
        if let ClientMsg::SignIn {
            account,
            proof,
            remember,
        } = msg
        {
            return self.sign_in(conn, account, proof, remember, now);
        }
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        if let ClientMsg::Say { .. }
        | ClientMsg::Act { .. }
        | ClientMsg::Msg { .. }
        | ClientMsg::Notice { .. }
        | ClientMsg::NoticeTo { .. } = msg
            && let Some(d) = self
                .conns
                .get(&conn)
                .and_then(|c| c.device())
                .and_then(|d| self.devices.get_mut(&d))
        {
            // WHOIS's idle time counts from a user's last message, as IRC servers count it.
            d.seen.spoke(now);
        }
        let msg = match msg {
            quit @ ClientMsg::Quit { .. } => match self.quit_after_answers(conn, quit) {
                Some(quit) => quit,
                None => return,
            },
            msg => msg,
        };
        match msg {
            ClientMsg::Join { room } => self.join(conn, room, now),
            ClientMsg::Part { room, reason } => self.part(conn, uid, room, reason, now),
            ClientMsg::Say { room, id, text } => {
                let said = Said { id, tags };
                self.say(conn, uid, room, said, EventKind::Say { id, text }, now)
            }
            ClientMsg::Act { room, id, text } => {
                let said = Said { id, tags };
                self.say(conn, uid, room, said, EventKind::Act { id, text }, now)
            }
            ClientMsg::Notice { room, id, text } => {
                let said = Said { id, tags };
                self.say(conn, uid, room, said, EventKind::Notice { id, text }, now)
            }
            ClientMsg::Msg { to, id, text } => {
                self.direct(conn, uid, to.clone(), Said { id, tags }, text, false, now);
                // As IRC's 301, for every dialect: the writer learns that nobody may read it
                // soon. Never after a notice (nothing answers a notice automatically). In a
                // cluster a message that waits for another node is answered so after its echo.
                if !self.cluster_direct_pending(conn, id) {
                    self.query(conn, Query::AwayOf(to), now);
                }
            }
            ClientMsg::NoticeTo { to, id, text } => {
                self.direct(conn, uid, to, Said { id, tags }, text, true, now)
            }
            ClientMsg::Nick { nick } => self.change_nick(conn, uid, nick, now),
            ClientMsg::Topic { room, topic } => self.topic(conn, uid, room, topic, now),
            ClientMsg::ClearTopic { room } => self.set_topic(conn, uid, room, None, now),
            ClientMsg::Who { room } => self.who(conn, room),
            ClientMsg::Whois { nick } => self.whois(conn, uid, nick, now),
            ClientMsg::Rooms => self.list_rooms(conn),
            ClientMsg::History { room, after } => {
                if !self.member(uid, &room) {
                    return self.not_in_room(conn, &room, None);
                }
                self.history(conn, room, after);
            }
            ClientMsg::Older {
                room,
                before,
                limit,
            } => self.older(conn, uid, room, before, limit),
            ClientMsg::Search { room, words } => self.search(conn, uid, room, words),
            ClientMsg::Quit { reason } => {
                self.read_on_leaving(conn);
                self.remember_irc_user(conn);
                let did = self.conns.get(&conn).and_then(|c| c.device());
                // Its last words first, as IRC servers close a link before they tell anyone
                // of the quit: nothing the quit makes (its own nick gone, for a client that
                // monitors it) is said to the quitter after its `ERROR`.
                self.bye(conn, "goodbye", "quit");
                // This device leaves; the user quits with its last one.
                if let Some(did) = did {
                    self.leave_device(did, super::dialect::users_quit_words(reason), now);
                }
            }
            ClientMsg::SignIn {
                account,
                proof,
                remember,
            } => self.sign_in(conn, account, proof, remember, now),
            ClientMsg::Register { password, remember } => {
                self.register(conn, password, remember, now)
            }
            ClientMsg::SignOut => self.sign_out(conn, now),
            ClientMsg::Devices => self.list_devices(conn),
            ClientMsg::ForgetDevice { id } => self.forget_remembered(conn, id, now),
            ClientMsg::ThisDevice { label } => self.this_device(conn, label),
            ClientMsg::NameDevice { id, label } => self.name_device(conn, id, label),
            ClientMsg::ChangePassword { old, new } => self.change_password(conn, old, new, now),
            ClientMsg::Read { room, seq } => self.read_marker(conn, room, seq),
            ClientMsg::JoinKey { room, key } => self.join_keyed(conn, room, Some(&key), now),
            ClientMsg::Moderate { room, action } => self.moderate(conn, uid, room, action, now),
            ClientMsg::Admin(action) => self.administer(conn, uid, action, now),
            ClientMsg::Away(away) => self.query(conn, Query::Away(away), now),
            // Handshake messages never reach here (see `Hub::step`); pings were answered above.
            ClientMsg::Ping { .. }
            | ClientMsg::Pong { .. }
            | ClientMsg::Hello { .. }
            | ClientMsg::Forwarded { .. } => {}
        }
    }

    /// `conn`'s user is not in `room`; the words say whether the room exists at all (IRC
    /// answers `403` for a channel that does not, `442` for one without you).
    pub(super) fn not_in_room(&mut self, conn: ConnId, room: &RoomName, id: Option<MsgId>) {
        let detail = if self.rooms.contains_key(room) || self.remote_count(room) > 0 {
            format!("you are not in {room}")
        } else {
            format!("{NO_ROOM}{room}")
        };
        let re = id.map_or_else(|| Re::Room(room.clone()), Re::Msg);
        self.error(conn, ErrorKind::NotInRoom, re, detail);
    }

    pub(super) fn member(&self, uid: UserId, room: &RoomName) -> bool {
        self.users.get(&uid).is_some_and(|u| u.rooms.contains(room))
    }

    /// Joins `conn`'s user to `room` (see the module docs of [`super`] for what the joiner gets).
    pub(super) fn join(&mut self, conn: ConnId, room: RoomName, now: Millis) {
        self.join_keyed(conn, room, None, now);
    }

    /// [`Hub::join`], with the room's key if the joiner gave one.
    pub(super) fn join_keyed(
        &mut self,
        conn: ConnId,
        room: RoomName,
        key: Option<&Text>,
        now: Millis,
    ) {
        self.enter(conn, room, key, false, now);
    }

    /// [`Hub::join`] of a room `conn`'s user is in by right: the account taking the place of
    /// the guest `conn` signed in from, which was in it a moment ago, or coming onto this node
    /// in a room it is in on another. A `+k` or `+i` room takes it too (the key or the
    /// invitation was had); a ban of the account or the room's limit still keep it out.
    pub(super) fn join_as_member(&mut self, conn: ConnId, room: RoomName, now: Millis) {
        self.enter(conn, room, None, true, now);
    }

    /// [`Hub::join_keyed`]; `was_member`: see [`Hub::join_as_member`].
    fn enter(
        &mut self,
        conn: ConnId,
        room: RoomName,
        key: Option<&Text>,
        was_member: bool,
        now: Millis,
    ) {
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        let addr = self.conns.get(&conn).and_then(|c| c.counted_ip());
        if u.rooms.contains(&room) {
            let latest = self.rooms.get(&room).map_or(Seq(0), |r| r.last_seq);
            if let Some(d) = self.conns.get_mut(&conn).and_then(|c| c.dialect_mut()) {
                d.entered(&room);
            }
            if let Some(joined) = self.joined_msg(&room, latest) {
                self.reply(conn, Reply::Rejoined(joined));
            }
            return;
        }
        if u.rooms.len() >= MAX_ROOMS_PER_USER {
            let detail = format!(
                "you are in {MAX_ROOMS_PER_USER} rooms, the most one user can be in; /part one first"
            );
            let re = Re::Room(room);
            return self.limit(
                conn,
                Limit::RoomsPerUser,
                ErrorKind::TooManyRooms,
                re,
                detail,
            );
        }
        match self.rooms.get(&room) {
            None => {
                let max = self.config.max_rooms;
                if self.rooms.len() >= max && !self.reclaim_orphan_room() {
                    let detail = format!(
                        "the server has {}, the most it holds",
                        count(max as u64, "room")
                    );
                    let re = Re::Room(room);
                    return self.limit(conn, Limit::Rooms, ErrorKind::TooManyRooms, re, detail);
                }
                if let Some(ip) = addr
                    && let Err(r) = self.ips.create_room(&self.config, ip, now)
                {
                    let re = Re::Room(room);
                    return self.limit(conn, r.limit, ErrorKind::TooManyRooms, re, r.detail);
                }
                let mut made = Room::new();
                if let Some(seq) = self.durable.as_mut().and_then(|d| d.freed.remove(&room)) {
                    made.last_seq = seq;
                }
                if made.last_seq == Seq(0) && self.cluster.is_none() {
                    made.created = Some(now);
                }
                self.rooms_made += 1;
                made.made = self.rooms_made;
                self.rooms.insert(room.clone(), made);
            }
            Some(r) if r.members.len() >= self.config.max_room_members => {
                let detail = format!(
                    "{room} is full ({}, the most a room holds)",
                    count(r.members.len() as u64, "member")
                );
                let re = Re::Room(room);
                return self.limit(conn, Limit::RoomMembers, ErrorKind::RoomFull, re, detail);
            }
            Some(_) => {}
        }
        if let Err((kind, detail)) = self.may_enter(uid, &room, key, was_member, now) {
            return self.error(conn, kind, Re::Room(room), detail);
        }
        if self.cluster_join(conn, uid, &room, now) {
            return;
        }
        let Some(u) = self.users.get_mut(&uid) else {
            return;
        };
        u.rooms.insert(room.clone());
        let nick = u.nick.clone();
        let folded = nick.folded_key();
        let mut members = 0;
        if let Some(r) = self.rooms.get_mut(&room) {
            self.attach_gen += 1;
            r.members.insert(uid);
            members = r.members.len();
        }
        self.record_presence(&room, &nick, true);
        self.session_changed(uid);
        // In a big room the join is counted for the next summary, not announced (`crowd.rs`).
        let quiet = self.crowd_joined(&room, uid, members, now);
        let seq = if quiet {
            self.rooms.get(&room).map_or(Seq(0), |r| r.last_seq)
        } else {
            self.broadcast(&room, nick, EventKind::Join, now, Skip::User(uid), None)
        };
        // Joining on one device joins on all: this connection first.
        let mut on: Vec<ConnId> = self.user_conns(uid).filter(|c| *c != conn).collect();
        on.insert(0, conn);
        for c in on {
            // Another device runs no JOIN of its own: its dialect takes this one as if it did,
            // so that the history replayed with it is worded as history (IRC: in a chathistory
            // batch with server-time, else not at all), as a clustered join's is.
            let other = c != conn;
            if other && let Some(d) = self.conns.get_mut(&c).and_then(|c| c.dialect_mut()) {
                d.late_join(&room);
            }
            self.entered_on(c, &room, seq, !quiet);
            self.size_to(c, &room, quiet);
            if other && let Some(d) = self.conns.get_mut(&c).and_then(|c| c.dialect_mut()) {
                d.late_done(false);
            }
        }
        // Back after a restart: what it sees from now on, its own events tell.
        self.forget_boot_presence(&room, &folded);
        self.tell_standing(uid, &room, now);
    }

    /// A user who just joined `room` is told its standing there, on each of its connections:
    /// the room's settings, when it has any (who is its founder and operators, its modes: a
    /// page marks them and offers an operator its actions from the start, not from the next
    /// change), and, when it may not speak there (moderated without a voice, or muted), why,
    /// now rather than at its first line. IRC clients get neither: they learn both from the
    /// channel's modes and their own prefix (and nc drops the settings: `/mode` asks them).
    pub(super) fn tell_standing(&mut self, uid: UserId, room: &RoomName, now: Millis) {
        let on: Vec<ConnId> = self.user_conns(uid).collect();
        for c in on {
            self.tell_standing_on(c, uid, room, now);
        }
    }

    /// [`Hub::tell_standing`] for one connection of `uid`: one that comes into its account's
    /// rooms at a sign-in is told its standing in each, as a join would tell it.
    pub(super) fn tell_standing_on(
        &mut self,
        conn: ConnId,
        uid: UserId,
        room: &RoomName,
        now: Millis,
    ) {
        let irc = self
            .conns
            .get(&conn)
            .is_none_or(|c| c.kind() == Some(super::ConnKind::Irc));
        if irc {
            return;
        }
        self.settings_to(conn, uid, room);
        let Err(why) = self.may_speak(uid, room, now) else {
            return;
        };
        let why = format!("{why}; you can read {room} but not speak there");
        let note = Note::Voiceless {
            room: room.clone(),
            why,
        };
        self.reply(conn, Reply::Note(note));
    }

    /// `conn` is in `room` now, whose latest event is `seq` (the join, when `announced`): the
    /// room's state, then its recent history. A client that keeps its windows
    /// ([`Dialect::replays_since_own_quit`](super::dialect)) is spared what its nick saw: up to
    /// its own latest quit, and up to the server's restart if it was in the room then.
    pub(super) fn entered_on(&mut self, conn: ConnId, room: &RoomName, seq: Seq, announced: bool) {
        let mut own_join = true;
        let mut since_quit = false;
        if let Some(d) = self.conns.get_mut(&conn).and_then(|c| c.dialect_mut()) {
            d.entered(room);
            own_join = d.replays_own_join();
            since_quit = d.replays_since_own_quit();
        }
        if let Some(joined) = self.joined_msg(room, seq) {
            self.reply(conn, Reply::Msg(joined));
        }
        let upto = if own_join || !announced {
            seq
        } else {
            Seq(seq.0.saturating_sub(1))
        };
        let (after, missed_upto) = if since_quit {
            let (parted, missed_upto) = self.own_part_before(conn, room);
            let after = self
                .own_quit_before(conn, room, upto)
                .max(self.in_at_restart(conn, room, upto))
                .max(parted);
            // What it read live after the lines it missed is not among those left out.
            (after, missed_upto.filter(|_| after == parted))
        } else {
            (Seq(0), None)
        };
        self.replay_recent_after(conn, room, after, missed_upto, upto);
    }

    /// The room's seq at the restart ("boot seq") if `conn`'s nick was in `room` then and has
    /// not joined since (see [`Boot`](super::room::Boot)), and what a join would replay up to
    /// `upto` reaches back to it; else `Seq(0)`. Its client kept the room's window through the
    /// restart (a kill -9 wrote no quit; a graceful stop's quit of it, if any, is before the
    /// boot seq), so everything up to the restart is in it already.
    ///
    /// Not in a cluster: there a node's restart is not the room's (the others kept it going,
    /// and quit the node's users for it), and a clustered hub restores no rooms anyway.
    fn in_at_restart(&self, conn: ConnId, room: &RoomName, upto: Seq) -> Seq {
        if self.cluster.is_some() {
            return Seq(0);
        }
        let (Some(r), Some(u)) = (
            self.rooms.get(room),
            self.user_of(conn).and_then(|uid| self.users.get(&uid)),
        ) else {
            return Seq(0);
        };
        let Some(boot) = r.boot.as_deref() else {
            return Seq(0);
        };
        let reaches = r
            .replay_reach(self.config.history_on_join, upto, self.lines_only(conn))
            .is_some_and(|s| s <= boot.seq);
        if reaches && boot.was_in(&u.nick.folded_key()) {
            boot.seq
        } else {
            Seq(0)
        }
    }

    /// `nick` joined `room`: it is no longer taken to be a client back from the restart (it
    /// may part and join again, and then gets the recent history like anyone). The room's
    /// record of the restart goes once nobody is left in it, or once a join's replay no longer
    /// reaches back to the restart.
    fn forget_boot_presence(&mut self, room: &RoomName, nick: &FoldedNick) {
        let n = self.config.history_on_join;
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(boot) = r.boot.as_deref_mut() else {
            return;
        };
        let boot_seq = boot.seq;
        let left = boot.forget(nick);
        // The record serves clients that keep their windows, whose replay is the last lines:
        // as far back as any join's replay reaches.
        let reaches = r
            .replay_reach(n, r.last_seq, true)
            .is_some_and(|s| s <= boot_seq);
        if !left || !reaches {
            r.boot = None;
        }
    }

    /// What `conn` had been sent of `room` when it last left it, this connection (its client
    /// kept the window, see [`Conn::left_seen`](super::conn::Conn::left_seen)), and the last
    /// seq of the lines after that it was not sent if it read later ones; `Seq(0)` if it did
    /// not leave it, or the room it left is gone.
    fn own_part_before(&mut self, conn: ConnId, room: &RoomName) -> (Seq, Option<Seq>) {
        let (made, last) = self
            .rooms
            .get(room)
            .map_or((0, Seq(0)), |r| (r.made, r.last_seq));
        self.conns
            .get_mut(&conn)
            .map_or((Seq(0), None), |c| c.back_in(room, made, last))
    }

    /// Whether `conn`'s dialect replays only the lines of a room's recent history.
    fn lines_only(&self, conn: ConnId) -> bool {
        self.conns
            .get(&conn)
            .and_then(|c| c.dialect())
            .is_some_and(|d| d.replays_lines_only())
    }

    /// The seq of the latest quit of `conn`'s nick among the events a join would replay up to
    /// `upto` (`Seq(0)` if there is none): what came before it, that nick saw.
    fn own_quit_before(&self, conn: ConnId, room: &RoomName, upto: Seq) -> Seq {
        let (Some(r), Some(u)) = (
            self.rooms.get(room),
            self.user_of(conn).and_then(|uid| self.users.get(&uid)),
        ) else {
            return Seq(0);
        };
        let me = u.nick.folded_key();
        let Some(reach) = r.replay_reach(self.config.history_on_join, upto, self.lines_only(conn))
        else {
            return Seq(0);
        };
        r.between(Seq(reach.0.saturating_sub(1)), upto)
            .filter(|s| {
                s.event().is_some_and(|ev| {
                    matches!(ev.kind, crate::wire::EventKind::Quit { .. })
                        && ev.from.folded_key() == me
                })
            })
            .last()
            .map_or(Seq(0), |s| s.seq)
    }

    /// The room table is full: frees a room whose members are all waiting for a resume (none is
    /// there to talk), so rooms held only by departed users never keep others out. Looks at a
    /// bounded number of rooms per call, going round the table. False if it found none.
    fn reclaim_orphan_room(&mut self) -> bool {
        const LOOK_AT: usize = 256;
        let start = self.reclaim_cursor.take();
        let after = |name: &&RoomName| start.as_ref().is_none_or(|s| *name > s);
        let candidates: Vec<RoomName> = self
            .rooms
            .keys()
            .filter(after)
            .chain(self.rooms.keys().filter(|n| !after(n)))
            .take(LOOK_AT)
            .cloned()
            .collect();
        for name in candidates {
            self.reclaim_cursor = Some(name.clone());
            let Some(r) = self.rooms.get(&name) else {
                continue;
            };
            let orphan = name != RoomName::lobby()
                && !self.registered_room(&name)
                && r.members
                    .iter()
                    .all(|u| !self.online(*u) && !self.stays_offline(*u));
            if !orphan {
                continue;
            }
            let Some(r) = self.rooms.remove(&name) else {
                continue;
            };
            self.history_bytes -= r.history_bytes();
            if let Some(d) = self.durable.as_mut() {
                d.freed.insert(name.clone(), r.last_seq);
            }
            for uid in &r.members {
                if let Some(u) = self.users.get_mut(uid) {
                    u.rooms.remove(&name);
                    let nick = u.nick.clone();
                    self.record_presence(&name, &nick, false);
                }
                self.session_changed(*uid);
            }
            debug!(room = %name, members = r.members.len(), "room of departed users freed");
            return true;
        }
        false
    }

    fn part(
        &mut self,
        conn: ConnId,
        uid: UserId,
        room: RoomName,
        reason: Option<Text>,
        now: Millis,
    ) {
        let Some(nick) = self.users.get(&uid).map(|u| u.nick.clone()) else {
            return;
        };
        // Who may not speak in the room does not speak through its part reason (IRC servers
        // drop it too): a muted member parted with its words and joined again, over and over.
        let reason = reason.filter(|_| self.may_speak(uid, &room, now).is_ok());
        let before = self.rooms.get(&room).map_or(0, |r| r.members.len());
        if !self.leave_room_from(uid, &room, Some(conn)) {
            return self.not_in_room(conn, &room, None);
        }
        // In a big room the part is counted for the next summary, not announced (`crowd.rs`);
        // the parter heard `Parted`.
        if !self.crowd_left(&room, before, now) {
            let part = EventKind::Part { reason };
            let seq = self.broadcast(&room, nick, part, now, Skip::None, None);
            // Its own part it knows of too (a join again replays nothing for it).
            let on: Vec<ConnId> = self.user_conns(uid).collect();
            for c in on {
                if let Some(c) = self.conns.get_mut(&c) {
                    c.left_seen_also(&room, seq);
                }
            }
        }
        self.drop_if_empty(&room);
    }

    /// `uid` leaves `room` on every device (`first` first), quietly: each connection is told,
    /// nobody else. False if it was not in it.
    pub(super) fn leave_room(&mut self, uid: UserId, room: &RoomName) -> bool {
        self.leave_room_from(uid, room, None)
    }

    /// `uid` is put out of `room` (its `Kick` event was sent): it leaves on every device, whose
    /// dialects know why (IRC's `KICK` said it all: no `PART` follows).
    pub(super) fn leave_kicked(&mut self, uid: UserId, room: &RoomName) {
        let on: Vec<ConnId> = self.user_conns(uid).collect();
        for c in on {
            if let Some(d) = self.conns.get_mut(&c).and_then(|c| c.dialect_mut()) {
                d.kicked(room);
            }
        }
        self.leave_room(uid, room);
    }

    /// `uid` leaves `room`, which a server admin (`by`, when known) closed with `reason` (its
    /// event was sent): it leaves on every device, whose dialects may say why (IRC's `PART`
    /// gives it as its reason).
    pub(super) fn leave_closed(
        &mut self,
        uid: UserId,
        room: &RoomName,
        by: Option<&Nick>,
        reason: Option<&str>,
    ) {
        let on: Vec<ConnId> = self.user_conns(uid).collect();
        for c in on {
            if let Some(d) = self.conns.get_mut(&c).and_then(|c| c.dialect_mut()) {
                d.closed(room, by, reason);
            }
        }
        self.leave_room(uid, room);
    }

    fn leave_room_from(&mut self, uid: UserId, room: &RoomName, first: Option<ConnId>) -> bool {
        let room = room.clone();
        let Some(u) = self.users.get_mut(&uid) else {
            return false;
        };
        if !u.rooms.remove(&room) {
            return false;
        }
        let next = u.rooms.iter().next_back().cloned();
        let nick = u.nick.clone();
        // A device that may resume hears what put it out when it comes back, and only for a
        // room its user was in: one away (waiting for a resume), and one whose connection is
        // still open but may be dead (a resume takes it over, and `Parted` sent to it now
        // may never arrive). Not the device that asked: its client knows it left.
        let asker = first.and_then(|c| self.conns.get(&c)?.device());
        for did in u.devices.iter().filter(|d| Some(**d) != asker) {
            if let Some(d) = self.devices.get_mut(did)
                && d.resume.is_some()
            {
                d.note_put_out(&room);
            }
        }
        if let Some(r) = self.rooms.get_mut(&room) {
            self.attach_gen += 1;
            r.members.remove(&uid);
        }
        self.record_presence(&room, &nick, false);
        self.session_changed(uid);
        // Leaving on one device leaves on all: the asking connection first.
        let mut on: Vec<ConnId> = self.user_conns(uid).filter(|c| Some(*c) != first).collect();
        if let Some(c) = first {
            on.insert(0, c);
        }
        let (last, made) = self
            .rooms
            .get(&room)
            .map_or((Seq(0), 0), |r| (r.last_seq, r.made));
        for c in on {
            let mut note = None;
            self.queries.left_room(c, &room);
            if let Some(c) = self.conns.get_mut(&c) {
                let mut gap = None;
                if let Some(rare) = c.rare_mut_if_any() {
                    gap = rare.gaps.remove(&room);
                    rare.refills.remove(&room);
                }
                // A client that keeps the window (WeeChat keeps a parted channel's buffer)
                // has what it was sent: up to the room's latest event, or to the first it
                // missed (it read too slowly; the gap's notice said so, or is still owed).
                let told = c.take_gap_told(&room);
                if c.dialect().is_some_and(|d| d.replays_since_own_quit()) {
                    let missed = gap.into_iter().chain(told);
                    let missed = missed.reduce(|(f, l), (f2, l2)| (f.min(f2), l.max(l2)));
                    let seen = missed.map_or(last, |(first, _)| Seq(first.0.saturating_sub(1)));
                    c.left_seen(&room, seen, made, missed.map(|(_, upto)| upto));
                }
                note = c.dialect_mut().and_then(|d| d.left(&room, next.as_ref()));
            }
            self.reply(c, Reply::Msg(ServerMsg::Parted { room: room.clone() }));
            if let Some(note) = note {
                self.reply(c, Reply::Note(note));
            }
        }
        true
    }

    /// Checks a message id against the ones `conn`'s device sent: `false` (and an `Ack`) when
    /// it was already accepted.
    fn fresh_id(&mut self, conn: ConnId, id: MsgId) -> bool {
        let Some(d) = self
            .conns
            .get(&conn)
            .and_then(|c| c.device())
            .and_then(|d| self.devices.get(&d))
        else {
            return false;
        };
        if id <= d.last_id
            && let Some(kind) = d.refusal(id)
        {
            // Refused once (or taken, then not stored), and resent after a resume: the
            // refusal may not have reached the client. Refused again, never acknowledged.
            debug!(conn = %conn, id = id.0, ?kind, "resent message refused again");
            self.flush_fanout();
            let detail = "this message was refused when it was first sent; it was not delivered";
            self.error(conn, kind, Re::Msg(id), detail.to_owned());
            return false;
        }
        if d.had(id) {
            debug!(conn = %conn, id = id.0, "resent message acknowledged, not delivered again");
            self.flush_fanout();
            self.reply(conn, Reply::Msg(ServerMsg::Ack { id }));
            return false;
        }
        true
    }

    pub(super) fn accept_id(&mut self, conn: ConnId, id: MsgId) {
        let Some(did) = self.conns.get(&conn).and_then(|c| c.device()) else {
            return;
        };
        let Some(d) = self.devices.get_mut(&did) else {
            return;
        };
        d.last_id = id;
        if id == MsgId(0) {
            // A last-id write cannot say that id 0 was taken (0 is also "none yet"): the whole
            // record says it, in this message's batch.
            d.rare.get_or_insert_with(Box::default).took_zero = true;
            d.take_refused_unsaved();
            self.device_changed(did);
        } else {
            self.device_id_changed(did);
        }
    }

    fn say(
        &mut self,
        conn: ConnId,
        uid: UserId,
        room: RoomName,
        said: Said,
        kind: EventKind,
        now: Millis,
    ) {
        let Said { id, tags } = said;
        // What this says to `conn` comes after the events of the read before it (see
        // `Hub::broadcast`).
        if !self.fresh_id(conn, id) {
            return;
        }
        if !self.member(uid, &room) {
            self.flush_fanout();
            return self.not_in_room(conn, &room, Some(id));
        }
        if let Err(detail) = self.may_speak(uid, &room, now) {
            self.flush_fanout();
            return self.error(conn, ErrorKind::Muted, Re::Msg(id), detail);
        }
        self.accept_id(conn, id);
        let Some(nick) = self.users.get(&uid).map(|u| u.nick.clone()) else {
            return;
        };
        // A big room carries no client-only tags, as it relays no TAGMSG: each member would be
        // written up to IRC_MAX_CLIENT_TAGS more bytes per line.
        let members = self.rooms.get(&room).map_or(0, |r| r.members.len());
        let tags = tags.filter(|_| !self.is_quiet(members + self.remote_count(&room)));
        // Programs get their own event back (the ack); people do not see their line twice.
        let skip = self.skip_own(conn);
        self.broadcast_said(&room, nick, kind, now, skip, Some(conn), tags);
    }

    /// A direct message, or a direct notice (`notice`: [`ServerMsg::DirectNotice`]).
    #[allow(clippy::too_many_arguments)]
    fn direct(
        &mut self,
        conn: ConnId,
        uid: UserId,
        to: Nick,
        said: Said,
        text: Text,
        notice: bool,
        now: Millis,
    ) {
        let Said { id, tags } = said;
        if !self.fresh_id(conn, id) {
            return;
        }
        // Whoever might hold a service's nick (nobody should), what IRC clients send there
        // (`IDENTIFY` and a password) reaches nobody.
        if to.is_service() {
            // An IRC client has no `/login`: its way in is its SASL setting.
            let words = if self.speaks_irc(conn) {
                format!(
                    "{to} is reserved: natter runs no {to}; sign in with SASL PLAIN (your \
                     client's SASL account and password)"
                )
            } else {
                service(&to)
            };
            return self.error(conn, ErrorKind::NoSuchNick, Re::Msg(id), words);
        }
        let target = self.nicks.get(&self.users, to.folded_key().as_str());
        let Some((to_uid, to_nick)) =
            target.and_then(|t| self.users.get(&t).map(|u| (t, u.nick.clone())))
        else {
            if self.cluster_direct(conn, uid, &to, id, &text, notice, tags.clone(), now) {
                return;
            }
            // A registered account with no user here (not always-on, or in no room): kept.
            if let Some(name) = self.account_name(&to.folded()) {
                let said = Said { id, tags };
                return self.keep_direct(conn, uid, name, said, text, notice, now);
            }
            let detail = format!("nobody is called {to}");
            return self.error(conn, ErrorKind::NoSuchNick, Re::Msg(id), detail);
        };
        let to_conns: Vec<ConnId> = self.user_conns(to_uid).filter(|c| *c != conn).collect();
        if to_conns.is_empty() && to_uid != uid {
            // An always-on account with no device at all stays in its rooms for hours, and one
            // whose device waits for its resume may be back in a moment or not at all: the
            // message is kept for the account, delivered when its device resumes or it next
            // signs in. A guest's device waiting for its resume has nowhere to keep it. A
            // cluster keeps it where every node reads it: its device may resume on any node.
            let no_device = self.devices_of(to_uid).is_empty();
            if self.account_of(to_uid).is_some() {
                let said = Said { id, tags };
                return self.keep_direct(conn, uid, to_nick, said, text, notice, now);
            }
            let detail = if no_device {
                format!("{to_nick} is not connected; direct messages are not kept")
            } else {
                format!("{to_nick} is reconnecting right now; try again in a moment")
            };
            return self.error(conn, ErrorKind::NoSuchNick, Re::Msg(id), detail);
        }
        let lim = self.config.queue_limits();
        let dm = DirectMsg {
            from: self
                .users
                .get(&uid)
                .map_or(to_nick.clone(), |u| u.nick.clone()),
            to: to_nick.clone(),
            id,
            at: now,
            text,
        };
        // The recipient's backlog decides: a DM must not push a slow reader over its limit (one
        // of its devices reading is enough).
        // A DM is a few hundred bytes at most; the frame size is close enough.
        let size = 256 + dm.text.as_str().len();
        let readers: Vec<ConnId> = to_conns
            .into_iter()
            .filter(|c| {
                self.conns
                    .get(c)
                    .is_some_and(|c| c.room_fits(&self.out, size, lim))
            })
            .collect();
        if readers.is_empty() && to_uid != uid {
            let detail = format!("{to_nick} is not reading right now; message not delivered");
            return self.error(conn, ErrorKind::NoSuchNick, Re::Msg(id), detail);
        }
        self.accept_id(conn, id);
        self.send_direct(conn, uid, readers, dm, notice, tags);
    }

    /// A direct message (or notice) from `uid` sent on `conn` goes out: to `readers` (the
    /// recipient's connections), a copy to the sender's other connections (what it sent from
    /// here), and its echo to `conn`, last. Client-only tags go with it to the clients that
    /// carry them, and IRC clients with account-tag learn whether the sender is signed in.
    fn send_direct(
        &mut self,
        conn: ConnId,
        uid: UserId,
        readers: Vec<ConnId>,
        dm: DirectMsg,
        notice: bool,
        tags: Option<Arc<str>>,
    ) {
        let copies: Vec<ConnId> = self.user_conns(uid).filter(|c| *c != conn).collect();
        let signed_in = self.users.get(&uid).is_some_and(|u| u.account().is_some());
        let msg = if notice {
            ServerMsg::DirectNotice(dm)
        } else {
            ServerMsg::Direct(dm)
        };
        for c in readers.into_iter().chain(copies).chain([conn]) {
            let reply = Reply::Direct {
                msg: msg.clone(),
                tags: tags.clone(),
                signed_in,
            };
            self.reply(c, reply);
        }
    }

    /// A direct message (or notice) to the account `to`, which has nothing connected: kept for
    /// it ([`Hub::hold_direct`]) and delivered when it next signs in. The sender gets its echo,
    /// as for a delivered message, once the store has it (the write comes first, and output
    /// after a write waits for it), and its other connections their copy; a message (not a
    /// notice) is answered as one to someone away, saying it waits for them
    /// ([`KEPT_WORDS`]).
    #[allow(clippy::too_many_arguments)]
    fn keep_direct(
        &mut self,
        conn: ConnId,
        uid: UserId,
        to: Nick,
        said: Said,
        text: Text,
        notice: bool,
        now: Millis,
    ) {
        let Said { id, tags } = said;
        let Some(from) = self.users.get(&uid).map(|u| u.nick.clone()) else {
            return;
        };
        let dm = DirectMsg {
            from,
            to: to.clone(),
            id,
            at: now,
            text,
        };
        if self.cluster.is_some() {
            if self.config.accounts.kept_bytes == 0 {
                let detail = format!("{to} is not connected; direct messages are not kept");
                return self.error(conn, ErrorKind::NoSuchNick, Re::Msg(id), detail);
            }
            // Kept where every node reads it; the sender hears once it is.
            let resuming = self
                .nicks
                .get(&self.users, to.folded_key().as_str())
                .is_some_and(|u| !self.devices_of(u).is_empty());
            return self.cluster_hold(conn, dm, notice, tags, resuming);
        }
        let held = crate::persist::HeldDirect {
            msg: dm.clone(),
            notice,
        };
        if let Err(detail) = self.hold_direct(&to.folded(), held) {
            return self.error(conn, ErrorKind::NoSuchNick, Re::Msg(id), detail);
        }
        self.accept_id(conn, id);
        self.send_direct(conn, uid, Vec::new(), dm, notice, tags);
        // A message (not a notice) is then answered as one to someone away (`Query::AwayOf`,
        // after this): an account with a user here is shown away while nothing is connected;
        // one with no user here (not always-on) is answered the same words now.
        let has_user = self
            .nicks
            .get(&self.users, to.folded_key().as_str())
            .is_some();
        if !notice && !has_user {
            self.tell_kept(conn, to);
        }
    }

    /// `conn` is told that `to`, to whom it wrote, is not connected and that its message
    /// waits for them ([`KEPT_WORDS`]), as if `to` were away with those words.
    pub(super) fn tell_kept(&mut self, conn: ConnId, to: Nick) {
        let away = Text::new(KEPT_WORDS).ok();
        let p = super::query::Present {
            ident: super::query::Ident::gone(&to),
            account: None,
            nick: to,
            away,
            mark: "",
            oper: false,
        };
        self.reply(conn, Reply::Info(super::query::Info::IsAway(p)));
    }

    pub(super) fn change_nick(&mut self, conn: ConnId, uid: UserId, nick: Nick, now: Millis) {
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        let old = u.nick.clone();
        if old == nick {
            return self.reply(conn, Reply::Note(super::dialect::Note::SameNick(nick)));
        }
        if let Some(account) = u.account()
            && old.folded() != nick.folded()
        {
            let detail = format!("you are signed in as {account}: your nick is your account's");
            return self.error(conn, ErrorKind::Invalid, Re::Nick(nick), detail);
        }
        if nick.is_service() {
            return self.error(
                conn,
                ErrorKind::NickTaken,
                Re::Nick(nick.clone()),
                service(&nick),
            );
        }
        if old.folded() != nick.folded()
            && let Some(detail) = self.nick_ban_words(uid, &nick, now)
        {
            return self.error(conn, ErrorKind::NickTaken, Re::Nick(nick), detail);
        }
        if old.folded() != nick.folded() && self.accounts.registered(&nick) {
            let detail = format!("{nick}{REGISTERED}: sign in with /login {nick} PASSWORD");
            return self.error(conn, ErrorKind::NickTaken, Re::Nick(nick), detail);
        }
        if old.folded() != nick.folded()
            && self
                .nicks
                .contains_key(&self.users, nick.folded_key().as_str())
        {
            let detail = format!("the nick {nick} is taken");
            return self.error(conn, ErrorKind::NickTaken, Re::Nick(nick), detail);
        }
        // Every refusal above costs the user only its flood token; a change made is an event
        // in each of its rooms, and has its own, slower bucket. In a cluster the token was
        // taken before the nick was claimed ([`Hub::cluster_nick`]): a change the cluster
        // granted is not charged twice (and one it refused gets it back).
        if !self.cluster_granted(conn, &nick)
            && let Err(secs) = self.take_nick_token(conn, now)
        {
            let detail = format!("{NICK_TOO_FAST}{secs} s");
            let re = Re::Nick(nick);
            self.stats.flood_nick_refused += 1;
            return self.limit(conn, Limit::NickRate, ErrorKind::Flood, re, detail);
        }
        if old.folded() != nick.folded() {
            if self.cluster_nick(conn, uid, &nick) {
                return;
            }
            self.cluster_release(&old);
        }
        if old.folded() != nick.folded()
            && let Some(u) = self.users.get(&uid)
        {
            let ident = self.ident_of(uid, u);
            let signed_in = u.account().is_some();
            self.whowas.record(uid, &old, ident, signed_in, now);
        }
        self.nicks.remove(old.folded_key().as_str(), uid);
        self.nicks.insert(&self.users, nick.folded_key(), uid);
        let rooms: Vec<RoomName> = match self.users.get_mut(&uid) {
            Some(u) => {
                u.nick = nick.clone();
                u.rooms.iter().cloned().collect()
            }
            None => return,
        };
        self.monitored_rename(&old, &nick);
        self.session_changed(uid);
        let skip = self.skip_own(conn);
        self.announce_rename(uid, &rooms, &old, &nick, skip, now);
    }

    /// Gives back the nick-change token `conn` spent on a change the cluster then refused or
    /// could not decide: on one node such a refusal (a taken nick) costs none.
    pub(super) fn give_back_nick_token(&mut self, conn: ConnId) {
        let burst = self.config.nick_burst;
        if let Some(b) = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.rare_mut().nick_bucket.as_mut())
        {
            b.give_back(burst);
        }
    }

    /// Takes one of `conn`'s nick-change tokens ([`crate::limits::NICK_BURST`]), or says in
    /// whole seconds (at least 1) when the next one comes.
    fn take_nick_token(&mut self, conn: ConnId, now: Millis) -> Result<(), u64> {
        let (burst, refill) = (self.config.nick_burst, self.config.nick_refill);
        if refill == Millis::ZERO {
            return Ok(());
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        let bucket = c
            .rare_mut()
            .nick_bucket
            .get_or_insert_with(|| crate::flood::Bucket::new(burst, now));
        if bucket.take(burst, refill, now) {
            return Ok(());
        }
        let at = bucket.next_token_at(refill);
        Err(at.since(now).0.div_ceil(1000).max(1))
    }

    /// `uid` is called `nick` now, not `old`: a nick event in each of its `rooms` (but to
    /// `skip`), its presence there written anew, and `YourNick` on each of its connections.
    pub(super) fn announce_rename(
        &mut self,
        uid: UserId,
        rooms: &[RoomName],
        old: &Nick,
        nick: &Nick,
        skip: super::deliver::Skip,
        now: Millis,
    ) {
        self.user_wide(rooms.len(), |hub| {
            for room in rooms {
                hub.record_presence(room, old, false);
                hub.record_presence(room, nick, true);
                let kind = EventKind::Nick { new: nick.clone() };
                hub.broadcast(room, old.clone(), kind, now, skip, None);
            }
        });
        self.carry_voice(rooms, old, nick);
        let on: Vec<ConnId> = self.user_conns(uid).collect();
        for c in on {
            self.reply(c, Reply::Msg(ServerMsg::YourNick { nick: nick.clone() }));
        }
    }

    fn topic(
        &mut self,
        conn: ConnId,
        uid: UserId,
        room: RoomName,
        topic: Option<Text>,
        now: Millis,
    ) {
        // Anyone may ask a room's topic (natter has no secret rooms); setting it needs being in it.
        match topic {
            Some(topic) => self.set_topic(conn, uid, room, Some(topic), now),
            // In a cluster, a room only other nodes' users are in has the cluster's topic.
            None => match self.remote_topic(&room).map(|t| t.topic.clone()) {
                Some(topic) => self.reply(conn, Reply::Msg(ServerMsg::Topic { room, topic })),
                None => match self.rooms.get(&room).map(|r| r.topic.clone()) {
                    Some(topic) => self.reply(conn, Reply::Msg(ServerMsg::Topic { room, topic })),
                    // Other nodes' users are in it, and it has had no topic the cluster knows.
                    None if self.remote_only_rooms().contains_key(&room) => {
                        let topic = None;
                        self.reply(conn, Reply::Msg(ServerMsg::Topic { room, topic }));
                    }
                    None => self.not_in_room(conn, &room, None),
                },
            },
        }
    }

    /// Sets (`Some`) or clears (`None`) a room's topic for a member allowed to. Clearing a
    /// room with no topic changes nothing: the asker is told there is none, nobody else hears.
    fn set_topic(
        &mut self,
        conn: ConnId,
        uid: UserId,
        room: RoomName,
        topic: Option<Text>,
        now: Millis,
    ) {
        if !self.member(uid, &room) {
            return self.not_in_room(conn, &room, None);
        }
        if !self.may_set_topic(uid, &room) {
            let detail = format!("only operators set the topic of {room} (+t)");
            return self.error(conn, ErrorKind::NotOperator, Re::Room(room), detail);
        }
        // A member who may not speak in the room (muted, or `+m` without a voice) may not
        // say something to all of it in its topic either: a muted troll kept the topic.
        if let Err(why) = self.may_speak(uid, &room, now) {
            let detail = format!("{why}; you cannot set its topic");
            return self.error(conn, ErrorKind::NotOperator, Re::Room(room), detail);
        }
        if let Some(detail) = self.cluster_away(&room) {
            return self.error(conn, ErrorKind::Unavailable, Re::Room(room), detail);
        }
        let Some(nick) = self.users.get(&uid).map(|u| u.nick.clone()) else {
            return;
        };
        if topic.is_none() && self.rooms.get(&room).is_some_and(|r| r.topic.is_none()) {
            return self.reply(conn, Reply::Msg(ServerMsg::Topic { room, topic: None }));
        }
        if let Some(r) = self.rooms.get_mut(&room) {
            let by = super::room::TopicSet {
                by: nick.clone(),
                at: now,
            };
            r.set_topic(topic.clone(), Some(by));
        }
        let kind = EventKind::Topic { topic };
        self.broadcast(&room, nick, kind, now, Skip::None, None);
    }

    fn who(&mut self, conn: ConnId, room: RoomName) {
        let elsewhere: Vec<Nick> = self
            .remote_only_members(&room)
            .into_iter()
            .map(|p| p.nick.clone())
            .collect();
        if !elsewhere.is_empty() {
            let members = elsewhere;
            return self.reply(conn, Reply::Msg(ServerMsg::Members { room, members }));
        }
        let Some(r) = self.rooms.get(&room) else {
            let detail = format!("{NO_ROOM}{room}");
            return self.error(conn, ErrorKind::NotInRoom, Re::Room(room), detail);
        };
        let members = self.member_nicks(&room, r);
        self.reply(conn, Reply::Msg(ServerMsg::Members { room, members }));
    }

    fn list_rooms(&mut self, conn: ConnId) {
        let rooms: Vec<RoomInfo> = self
            .listed_rooms(&[])
            .into_iter()
            .take(MAX_ROOMS_LISTED)
            .map(|(room, members, _)| RoomInfo {
                room,
                members: u32::try_from(members).unwrap_or(u32::MAX),
            })
            .collect();
        self.reply(conn, Reply::Msg(ServerMsg::Rooms { rooms }));
    }

    /// The rooms anyone is in (only those `named`, if any), by name, with how many members
    /// each has and its topic: in a cluster also the rooms only other nodes' users are in, as
    /// their records say, with the topic the cluster keeps of each.
    pub(super) fn listed_rooms(&self, named: &[RoomName]) -> Vec<(RoomName, usize, Option<Text>)> {
        let wanted = |name: &RoomName| named.is_empty() || named.contains(name);
        let mut rooms: BTreeMap<RoomName, (usize, Option<Text>)> = self
            .rooms
            .iter()
            .filter(|(name, r)| !r.members.is_empty() && wanted(name))
            .map(|(name, r)| {
                let members = r.members.len() + self.remote_count(name);
                (name.clone(), (members, r.topic.clone()))
            })
            .collect();
        for (name, members) in self.remote_only_rooms() {
            if wanted(&name) {
                let topic = self.remote_topic(&name).and_then(|t| t.topic.clone());
                rooms.entry(name).or_insert((members, topic));
            }
        }
        rooms
            .into_iter()
            .map(|(name, (n, topic))| (name, n, topic))
            .collect()
    }
}

/// Why nobody is (or may be) called `nick`, a service's name: natter has none, and signs in
/// its own way.
pub(super) fn service(nick: &Nick) -> String {
    format!(
        "{nick} is reserved: natter runs no {nick}; sign in with /login nick password, or SASL \
         PLAIN on IRC"
    )
}
