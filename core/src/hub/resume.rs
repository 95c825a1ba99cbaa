//! Resume: reattaching a user to a new connection, with the events it missed in each room.

use super::dialect::Reply;
use super::{Hub, Timer, UserId};
use crate::time::Millis;
use crate::types::{ConnId, RoomName, Seq};
use tracing::debug;

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
        self.make_ready(conn, uid, now);
        debug!(conn = %conn, %nick, rooms = rooms.len(), "resumed");
        self.welcome(conn, nick, token, true);
        for room in rooms {
            let Some(latest) = self.rooms.get(&room).map(|r| r.last_seq) else {
                continue;
            };
            if let Some(joined) = self.joined_msg(&room, latest) {
                self.reply(conn, Reply::Msg(joined));
            }
            match seen.iter().find(|(r, _)| *r == room) {
                Some((_, after)) => self.replay_since(conn, &room, *after),
                None => self.replay_recent(conn, &room, latest),
            }
        }
    }
}
