//! What users do, for binary and text connections alike: flood control in front, then join,
//! part, say, act, DM, nick, topic, who, rooms, history and quit. Text lines are parsed with
//! [`crate::command::parse`] and turned into the same [`ClientMsg`]s binary clients send.

use super::conn::{Pending, Piece, Shared};
use super::room::{Room, Stored};
use super::text::wire_line;
use super::timers::Timer;
use super::{ConnKind, Hub, UserId, stored_bytes};
use crate::command::{self, Command, CommandError, Input};
use crate::limits::{HISTORY_MIN_KEPT, MAX_ROOMS, MAX_ROOMS_LISTED, MAX_ROOMS_PER_USER};
use crate::render;
use crate::time::Millis;
use crate::types::{ConnId, MsgId, Nick, RoomName, Seq, Text};
use crate::wire::{
    ClientMsg, DirectMsg, ErrorKind, EventKind, Re, RoomEvent, RoomInfo, ServerMsg, encode_frame,
};
use bytes::Bytes;
use tracing::debug;

/// What an error about a command answers: its message id, its room or its nick.
fn re_of(p: &Pending) -> Re {
    match p {
        Pending::Binary(
            ClientMsg::Say { id, .. } | ClientMsg::Act { id, .. } | ClientMsg::Msg { id, .. },
        ) => Re::Msg(*id),
        Pending::Binary(
            ClientMsg::Join { room }
            | ClientMsg::Part { room, .. }
            | ClientMsg::Topic { room, .. }
            | ClientMsg::Who { room }
            | ClientMsg::History { room, .. },
        ) => Re::Room(room.clone()),
        Pending::Binary(ClientMsg::Nick { nick }) => Re::Nick(nick.clone()),
        _ => Re::Conn,
    }
}

impl Hub {
    /// A command from a ready connection: run now if a flood token is free and nothing waits
    /// ahead of it, else queue it, else refuse it.
    pub(super) fn submit(&mut self, conn: ConnId, cmd: Pending, now: Millis) {
        let (burst, refill, qmax) = (
            self.config.flood_burst,
            self.config.flood_refill,
            self.config.flood_queue,
        );
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.pending_len() == 0 && c.bucket.take(burst, refill, now) {
            self.run(conn, cmd, now);
            return;
        }
        if c.pending_len() < qmax {
            c.rare_mut().pending.push_back(cmd);
            let at = c.bucket.next_token_at(refill);
            self.timers.set(Timer::Flood(conn), at.max(now));
            return;
        }
        let detail = format!(
            "you are sending too fast: {} commands are already waiting; this one was dropped",
            c.pending_len()
        );
        c.limit_hit(&mut self.out, "flood", detail.clone());
        let re = re_of(&cmd);
        self.error(conn, ErrorKind::Flood, re, detail);
    }

    /// Runs waiting commands as tokens allow.
    pub(super) fn run_pending(&mut self, conn: ConnId, now: Millis) {
        let (burst, refill) = (self.config.flood_burst, self.config.flood_refill);
        loop {
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
            let Some(cmd) = c.rare_mut().pending.pop_front() else {
                return;
            };
            self.run(conn, cmd, now);
        }
    }

    fn run(&mut self, conn: ConnId, cmd: Pending, now: Millis) {
        match cmd {
            Pending::Binary(msg) => self.exec(conn, msg, now),
            Pending::Text(input) => self.exec_text(conn, input, now),
        }
    }

    fn user_of(&self, conn: ConnId) -> Option<UserId> {
        self.conns.get(&conn)?.user
    }

    fn is_text(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).and_then(|c| c.kind()) == Some(ConnKind::Text)
    }

    /// One text line: a command or chat for the current room.
    pub(super) fn text_line(&mut self, conn: ConnId, line: &str, now: Millis) {
        match command::parse(line) {
            Ok(None) => {}
            Ok(Some(Input::Command(Command::Help))) => self.help(conn),
            Ok(Some(input)) => self.submit(conn, Pending::Text(input), now),
            Err(e) => {
                let kind = match e {
                    CommandError::Invalid(_) => ErrorKind::Invalid,
                    _ => ErrorKind::BadCommand,
                };
                self.error(conn, kind, Re::Conn, e.to_string());
            }
        }
    }

    fn help(&mut self, conn: ConnId) {
        let mut s = String::from("-- commands:\r\n");
        for (usage, what) in command::HELP {
            s.push_str(&format!("--   {usage:<24} {what}\r\n"));
        }
        s.push_str("-- anything else you type is said in your current room\r\n");
        let lim = self.queue_limits();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.backlog_bytes() + s.len() > lim.hard_bytes {
            self.too_slow(conn);
            return;
        }
        c.push(&mut self.out, s);
    }

    /// A text user's input, as the message a binary client would have sent.
    fn exec_text(&mut self, conn: ConnId, input: Input, now: Millis) {
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        let current = self.conns.get(&conn).and_then(|c| c.current.clone());
        let next_id = self
            .users
            .get(&uid)
            .map_or(MsgId(1), |u| MsgId(u.last_id.0 + 1));
        let room = |r: Option<RoomName>| r.or_else(|| current.clone());
        let no_room = "you are in no room: /join #room first";
        let msg = match input {
            Input::Say(text) => match room(None) {
                Some(room) => ClientMsg::Say {
                    room,
                    id: next_id,
                    text,
                },
                None => return self.error(conn, ErrorKind::NotInRoom, Re::Conn, no_room.into()),
            },
            Input::Command(cmd) => match cmd {
                Command::Me(text) => match room(None) {
                    Some(room) => ClientMsg::Act {
                        room,
                        id: next_id,
                        text,
                    },
                    None => {
                        return self.error(conn, ErrorKind::NotInRoom, Re::Conn, no_room.into());
                    }
                },
                Command::Msg { to, text } => ClientMsg::Msg {
                    to,
                    id: next_id,
                    text,
                },
                Command::Join(room) => ClientMsg::Join { room },
                Command::Part { room: r, reason } => match room(r) {
                    Some(room) => ClientMsg::Part { room, reason },
                    None => {
                        return self.error(conn, ErrorKind::NotInRoom, Re::Conn, no_room.into());
                    }
                },
                Command::Who(r) => match room(r) {
                    Some(room) => ClientMsg::Who { room },
                    None => {
                        return self.error(conn, ErrorKind::NotInRoom, Re::Conn, no_room.into());
                    }
                },
                Command::Rooms => ClientMsg::Rooms,
                Command::Topic { room: r, topic } => match room(r) {
                    Some(room) => ClientMsg::Topic { room, topic },
                    None => {
                        return self.error(conn, ErrorKind::NotInRoom, Re::Conn, no_room.into());
                    }
                },
                Command::Nick(nick) => ClientMsg::Nick { nick },
                Command::Quit(reason) => ClientMsg::Quit { reason },
                Command::Help => return self.help(conn),
            },
        };
        self.exec(conn, msg, now);
    }

    /// Runs one command of a ready connection.
    pub(super) fn exec(&mut self, conn: ConnId, msg: ClientMsg, now: Millis) {
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        match msg {
            ClientMsg::Join { room } => self.join(conn, room, now),
            ClientMsg::Part { room, reason } => self.part(conn, uid, room, reason, now),
            ClientMsg::Say { room, id, text } => {
                self.say(conn, uid, room, id, EventKind::Say { id, text }, now)
            }
            ClientMsg::Act { room, id, text } => {
                self.say(conn, uid, room, id, EventKind::Act { id, text }, now)
            }
            ClientMsg::Msg { to, id, text } => self.direct(conn, uid, to, id, text, now),
            ClientMsg::Nick { nick } => self.change_nick(conn, uid, nick, now),
            ClientMsg::Topic { room, topic } => self.topic(conn, uid, room, topic, now),
            ClientMsg::Who { room } => self.who(conn, room),
            ClientMsg::Rooms => self.list_rooms(conn),
            ClientMsg::History { room, after } => self.history(conn, room, after),
            ClientMsg::Quit { reason } => {
                self.quit_user(uid, reason, now);
                self.bye(conn, "goodbye", "quit", now);
            }
            ClientMsg::Ping { token } => self.send(conn, ServerMsg::Pong { token }),
            ClientMsg::Pong { .. } => {}
            ClientMsg::Hello { .. } | ClientMsg::Forwarded { .. } => {}
        }
    }

    fn not_in_room(&mut self, conn: ConnId, room: &RoomName, id: Option<MsgId>) {
        let detail = format!("you are not in {room}");
        let re = id.map_or_else(|| Re::Room(room.clone()), Re::Msg);
        self.error(conn, ErrorKind::NotInRoom, re, detail);
    }

    fn member(&self, uid: UserId, room: &RoomName) -> bool {
        self.users.get(&uid).is_some_and(|u| u.rooms.contains(room))
    }

    /// Joins `conn`'s user to `room` (see the module docs of [`super`] for what the joiner gets).
    pub(super) fn join(&mut self, conn: ConnId, room: RoomName, now: Millis) {
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        let text = self.is_text(conn);
        let Some(u) = self.users.get_mut(&uid) else {
            return;
        };
        if u.rooms.contains(&room) {
            if text {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.current = Some(room.clone());
                }
                self.send_line(conn, &format!("-- you are now talking in {room}"));
            } else {
                let latest = self.rooms.get(&room).map_or(Seq(0), |r| r.last_seq);
                self.send_joined(conn, &room, latest);
            }
            return;
        }
        if u.rooms.len() >= MAX_ROOMS_PER_USER {
            let detail = format!(
                "you are in {MAX_ROOMS_PER_USER} rooms, the most one user can be in; /part one first"
            );
            if let Some(c) = self.conns.get_mut(&conn) {
                c.limit_hit(&mut self.out, "rooms-per-user", detail.clone());
            }
            self.error(
                conn,
                ErrorKind::TooManyRooms,
                Re::Room(room.clone()),
                detail,
            );
            return;
        }
        if !self.rooms.contains_key(&room) {
            if self.rooms.len() >= MAX_ROOMS {
                let detail = format!("the server has {MAX_ROOMS} rooms, the most it holds");
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.limit_hit(&mut self.out, "rooms", detail.clone());
                }
                self.error(
                    conn,
                    ErrorKind::TooManyRooms,
                    Re::Room(room.clone()),
                    detail,
                );
                return;
            }
            self.rooms.insert(room.clone(), Room::new());
        }
        u.rooms.insert(room.clone());
        let nick = u.nick.clone();
        if let Some(r) = self.rooms.get_mut(&room) {
            r.members.insert(uid);
        }
        if text {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.current = Some(room.clone());
            }
        }
        let seq = self.broadcast(&room, nick, EventKind::Join, now, Some(uid));
        self.send_joined(conn, &room, seq);
        // Text joiners were told "you are in"; their own join line would say it twice.
        let upto = if text {
            Seq(seq.0.saturating_sub(1))
        } else {
            seq
        };
        self.replay_recent(conn, &room, upto);
    }

    fn part(
        &mut self,
        conn: ConnId,
        uid: UserId,
        room: RoomName,
        reason: Option<Text>,
        now: Millis,
    ) {
        let Some(u) = self.users.get_mut(&uid) else {
            return;
        };
        if !u.rooms.remove(&room) {
            return self.not_in_room(conn, &room, None);
        }
        let nick = u.nick.clone();
        let next_current = u.rooms.iter().next_back().cloned();
        if let Some(r) = self.rooms.get_mut(&room) {
            r.members.remove(&uid);
        }
        let mut switched = None;
        if let Some(c) = self.conns.get_mut(&conn) {
            if let Some(rare) = c.rare_mut_if_any() {
                rare.gaps.remove(&room);
                rare.refills.remove(&room);
            }
            if c.current.as_ref() == Some(&room) {
                c.current = next_current;
                switched = c.current.clone();
            }
        }
        self.send(conn, ServerMsg::Parted { room: room.clone() });
        if let Some(cur) = switched {
            self.send_line(conn, &format!("-- you are now talking in {cur}"));
        }
        self.broadcast(&room, nick, EventKind::Part { reason }, now, None);
        self.drop_if_empty(&room);
    }

    /// Checks a message id: `false` (and an `Ack`) when it was already accepted.
    fn fresh_id(&mut self, conn: ConnId, uid: UserId, id: MsgId) -> bool {
        let Some(u) = self.users.get(&uid) else {
            return false;
        };
        if id <= u.last_id {
            debug!(conn = %conn, id = id.0, "resent message acknowledged, not delivered again");
            self.send(conn, ServerMsg::Ack { id });
            return false;
        }
        true
    }

    fn accept_id(&mut self, uid: UserId, id: MsgId) {
        if let Some(u) = self.users.get_mut(&uid) {
            u.last_id = id;
        }
    }

    fn say(
        &mut self,
        conn: ConnId,
        uid: UserId,
        room: RoomName,
        id: MsgId,
        kind: EventKind,
        now: Millis,
    ) {
        if !self.fresh_id(conn, uid, id) {
            return;
        }
        if !self.member(uid, &room) {
            return self.not_in_room(conn, &room, Some(id));
        }
        self.accept_id(uid, id);
        let Some(nick) = self.users.get(&uid).map(|u| u.nick.clone()) else {
            return;
        };
        // Binary senders get their own event back (the ack); people do not see their line twice.
        let skip = self.is_text(conn).then_some(uid);
        self.broadcast(&room, nick, kind, now, skip);
    }

    fn direct(&mut self, conn: ConnId, uid: UserId, to: Nick, id: MsgId, text: Text, now: Millis) {
        if !self.fresh_id(conn, uid, id) {
            return;
        }
        let target = self.nicks.get(&to.folded()).copied();
        let target = target.and_then(|t| self.users.get(&t).map(|u| (u.nick.clone(), u.conn)));
        let Some((to_nick, to_conn)) = target else {
            let detail = format!("nobody is called {to}");
            return self.error(conn, ErrorKind::NoSuchNick, Re::Msg(id), detail);
        };
        let Some(to_conn) = to_conn else {
            let detail = format!("{to_nick} is reconnecting right now; try again in a moment");
            return self.error(conn, ErrorKind::NoSuchNick, Re::Msg(id), detail);
        };
        let lim = self.queue_limits();
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
        if to_conn != conn {
            // The recipient's backlog decides: a DM must not push a slow reader over its limit.
            let fits = self.conns.get(&to_conn).is_some_and(|c| {
                // A DM is a few hundred bytes at most; the frame size is close enough.
                c.room_fits(&self.out, 256 + dm.text.as_str().len(), lim)
            });
            if !fits {
                let detail = format!("{to_nick} is not reading right now; message not delivered");
                return self.error(conn, ErrorKind::NoSuchNick, Re::Msg(id), detail);
            }
            self.send(to_conn, ServerMsg::Direct(dm.clone()));
        }
        self.accept_id(uid, id);
        self.send(conn, ServerMsg::Direct(dm));
    }

    fn change_nick(&mut self, conn: ConnId, uid: UserId, nick: Nick, now: Millis) {
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        let old = u.nick.clone();
        if old == nick {
            return self.send(conn, ServerMsg::YourNick { nick });
        }
        if old.folded() != nick.folded() && self.nicks.contains_key(&nick.folded()) {
            let detail = format!("the nick {nick} is taken");
            return self.error(conn, ErrorKind::NickTaken, Re::Nick(nick), detail);
        }
        self.nicks.remove(&old.folded());
        self.nicks.insert(nick.folded(), uid);
        let rooms: Vec<RoomName> = match self.users.get_mut(&uid) {
            Some(u) => {
                u.nick = nick.clone();
                u.rooms.iter().cloned().collect()
            }
            None => return,
        };
        let skip = self.is_text(conn).then_some(uid);
        for room in &rooms {
            let kind = EventKind::Nick { new: nick.clone() };
            self.broadcast(room, old.clone(), kind, now, skip);
        }
        self.send(conn, ServerMsg::YourNick { nick });
    }

    fn topic(
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
        let Some(topic) = topic else {
            let topic = self.rooms.get(&room).and_then(|r| r.topic.clone());
            return self.send(conn, ServerMsg::Topic { room, topic });
        };
        if let Some(r) = self.rooms.get_mut(&room) {
            r.topic = Some(topic.clone());
        }
        let Some(nick) = self.users.get(&uid).map(|u| u.nick.clone()) else {
            return;
        };
        let kind = EventKind::Topic { topic: Some(topic) };
        self.broadcast(&room, nick, kind, now, None);
    }

    fn who(&mut self, conn: ConnId, room: RoomName) {
        let Some(r) = self.rooms.get(&room) else {
            let detail = format!("there is no room {room}");
            return self.error(conn, ErrorKind::NotInRoom, Re::Room(room), detail);
        };
        let members = self.member_nicks(r);
        self.send(conn, ServerMsg::Members { room, members });
    }

    fn list_rooms(&mut self, conn: ConnId) {
        let rooms: Vec<RoomInfo> = self
            .rooms
            .iter()
            .filter(|(_, r)| !r.members.is_empty())
            .take(MAX_ROOMS_LISTED)
            .map(|(name, r)| RoomInfo {
                room: name.clone(),
                members: u32::try_from(r.members.len()).unwrap_or(u32::MAX),
            })
            .collect();
        self.send(conn, ServerMsg::Rooms { rooms });
    }

    /// Events after `after` still in the ring, as far as the backlog allows; a gap for what is
    /// gone or does not fit. Costs no flood token (a client asks after a gap marker).
    pub(super) fn history(&mut self, conn: ConnId, room: RoomName, after: Seq) {
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        if !self.member(uid, &room) {
            return self.not_in_room(conn, &room, None);
        }
        let Some(latest) = self.gap_for_lost(conn, &room, after) else {
            return;
        };
        let lim = self.queue_limits();
        let (Some(r), Some(c)) = (self.rooms.get(&room), self.conns.get_mut(&conn)) else {
            return;
        };
        let mut stopped = None;
        for s in r.between(after, latest) {
            let data = stored_bytes(c, s);
            if !c.room_fits(&self.out, data.len(), lim) {
                stopped = Some(s.seq);
                break;
            }
            c.push(&mut self.out, data);
        }
        if let Some(first) = stopped {
            // The rest follows when the backlog drains (see `Hub::handle_written`).
            c.rare_mut().refills.insert(room, Seq(first.0 - 1));
        }
    }

    /// Appends an event to `room` and sends it to every attached member but `skip`: one frame
    /// for all binary members, one line per "is this your current room" for text members.
    /// Returns its seq.
    pub(super) fn broadcast(
        &mut self,
        room: &RoomName,
        from: Nick,
        kind: EventKind,
        now: Millis,
        skip: Option<UserId>,
    ) -> Seq {
        let lim = self.queue_limits();
        let history_len = self.config.history_len;
        let budget = self.config.history_budget_bytes;
        let Hub {
            rooms,
            users,
            conns,
            out,
            history_bytes,
            ..
        } = self;
        let Some(r) = rooms.get_mut(room) else {
            return Seq(0);
        };
        let seq = r.next_seq();
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
        // Each form is made once, for the first member that needs it: the frame goes into the
        // cycle buffer every binary member's queue shares, a line is shared by text members.
        let mut shared: Option<Shared> = None;
        let mut here: Option<Bytes> = None;
        let mut elsewhere: Option<Bytes> = None;
        for uid in &r.members {
            if Some(*uid) == skip {
                continue;
            }
            let Some(cid) = users.get(uid).and_then(|u| u.conn) else {
                continue;
            };
            let Some(c) = conns.get_mut(&cid) else {
                continue;
            };
            let data: Piece = match c.kind() {
                Some(ConnKind::Text) if c.current.as_ref() == Some(room) => here
                    .get_or_insert_with(|| wire_line(&render::event_line(&ev, Some(room))).into())
                    .clone()
                    .into(),
                Some(ConnKind::Text) => elsewhere
                    .get_or_insert_with(|| wire_line(&render::event_line(&ev, None)).into())
                    .clone()
                    .into(),
                _ => (*shared.get_or_insert_with(|| out.share(&frame))).into(),
            };
            if !c.push_room(out, room, seq, data, lim) && c.kind() == Some(ConnKind::Binary) {
                // A sender whose echo is skipped still needs its acknowledgement: without it the
                // message would wait forever (or be resent) once the event leaves the history.
                let own = users.get(uid).is_some_and(|u| u.nick == ev.from);
                if let (true, EventKind::Say { id, .. } | EventKind::Act { id, .. }) =
                    (own, &ev.kind)
                    && let Ok(ack) = encode_frame(&ServerMsg::Ack { id: *id })
                    && c.backlog_bytes() + ack.len() <= lim.hard_bytes
                {
                    c.push(out, ack);
                }
            }
        }
        r.record(
            Stored::new(seq, &frame),
            history_len,
            budget,
            HISTORY_MIN_KEPT,
            history_bytes,
        );
        seq
    }
}
