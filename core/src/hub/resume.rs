//! Resume and replay: reattaching a detached user to a new connection, and replaying a room's
//! history (after a join, or after the last seq a resuming client saw, with a gap for what the
//! ring no longer holds).

use super::*;

impl Hub {
    pub(super) fn resume(
        &mut self,
        conn: ConnId,
        uid: UserId,
        seen: &[(RoomName, Seq)],
        now: Millis,
    ) {
        let Some(u) = self.users.get_mut(&uid) else {
            return;
        };
        match u.conn {
            Some(old) if old != conn => {
                // The old socket is not yet known dead: the new connection takes over.
                self.bye(
                    old,
                    "your session continues on a new connection",
                    "taken over by a resumed connection",
                    now,
                );
            }
            Some(_) => {}
            None => {
                self.detached = self.detached.saturating_sub(1);
                self.timers.cancel(Timer::Grace(uid));
            }
        }
        let Some(u) = self.users.get_mut(&uid) else {
            return;
        };
        u.conn = Some(conn);
        let nick = u.nick.clone();
        let token = u.token.clone();
        let rooms: Vec<RoomName> = u.rooms.iter().cloned().collect();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.user = Some(uid);
        }
        self.make_ready(conn, now);
        debug!(conn = %conn, %nick, rooms = rooms.len(), "resumed");
        self.welcome(conn, nick, token, true);
        for room in rooms {
            let Some(latest) = self.rooms.get(&room).map(|r| r.last_seq) else {
                continue;
            };
            self.send_joined(conn, &room, latest);
            match seen.iter().find(|(r, _)| *r == room) {
                Some((_, after)) => self.replay_since(conn, &room, *after),
                None => self.replay_recent(conn, &room, latest),
            }
        }
    }

    pub(super) fn send_joined(&mut self, conn: ConnId, room: &RoomName, seq: Seq) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let members = self.member_nicks(r);
        let topic = r.topic.clone();
        self.send(
            conn,
            ServerMsg::Joined {
                room: room.clone(),
                topic,
                members,
                seq,
            },
        );
    }

    /// Replays the last `history_on_join` events up to `upto` as room traffic.
    pub(super) fn replay_recent(&mut self, conn: ConnId, room: &RoomName, upto: Seq) {
        let lim = self.queue_limits();
        let n = self.config.history_on_join;
        // A person reads the replay as live chat unless it is framed as the past.
        let framed = self.kind(conn) == Some(ConnKind::Text)
            && self
                .rooms
                .get(room)
                .is_some_and(|r| r.last_n(n, upto).next().is_some());
        if framed {
            self.send_line(conn, &format!("-- recent messages in {room}:"));
        }
        let (Some(r), Some(c)) = (self.rooms.get(room), self.conns.get_mut(&conn)) else {
            return;
        };
        for s in r.last_n(n, upto) {
            let data = stored_bytes(c, s);
            c.push_room(&mut self.out, room, s.seq, data, lim);
        }
        if framed {
            self.send_line(conn, "-- (end of recent messages)");
        }
    }

    /// Replays what came after `after` as room traffic: a gap first for what the ring lost.
    pub(super) fn replay_since(&mut self, conn: ConnId, room: &RoomName, after: Seq) {
        let Some(latest) = self.gap_for_lost(conn, room, after) else {
            return;
        };
        let lim = self.queue_limits();
        let (Some(r), Some(c)) = (self.rooms.get(room), self.conns.get_mut(&conn)) else {
            return;
        };
        for s in r.between(after, latest) {
            let data = stored_bytes(c, s);
            c.push_room(&mut self.out, room, s.seq, data, lim);
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
            let last = Seq(oldest.0 - 1).min(latest);
            self.send(
                conn,
                ServerMsg::Gap {
                    room: room.clone(),
                    first: after.next(),
                    last,
                },
            );
        }
        Some(latest)
    }
}
