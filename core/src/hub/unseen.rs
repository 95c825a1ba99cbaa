//! Users greeted before they sent anything ("unseen"). A connection silent through the
//! detection wait is greeted as a person and put in `#lobby`, but it may be a natter client
//! whose preamble is late: its first byte (NUL) then closes it, and it reconnects. In a
//! connection storm hundreds do (issue 22), and each cost everyone in `#lobby` a join and a quit.
//!
//! So an unseen user's joins are not announced, nor is it listed or counted in its rooms: the user
//! itself sees what anyone does on joining (nothing it reads waits), the others hear of it once it
//! types (any line that does something) or after [`UNSEEN_GRACE`], and if it goes before that,
//! its quit is not announced either. Not in a cluster, where a join goes through the room's log.

use super::deliver::Skip;
use super::room::Room;
use super::{Hub, Timer, UserId};
use crate::limits::UNSEEN_GRACE;
use crate::time::Millis;
use crate::types::{ConnId, RoomName};
use crate::wire::EventKind;
use rustc_hash::FxHashSet;

/// The users greeted before they sent anything, not yet announced (bounded by the users).
/// Keyed by hub-chosen ids only: a fast non-keyed hash is safe.
#[derive(Debug, Default)]
pub(super) struct Unseen(FxHashSet<UserId>);

impl Hub {
    /// `uid` was just greeted before it sent anything: it stays unseen for a while.
    pub(super) fn greeted_unseen(&mut self, uid: UserId, now: Millis) {
        if self.cluster.is_some() {
            return;
        }
        self.unseen.0.insert(uid);
        self.timers.set(Timer::Unseen(uid), now + UNSEEN_GRACE);
    }

    /// Whether `uid`'s joins and quit are, for now, not announced.
    pub(super) fn is_unseen(&self, uid: UserId) -> bool {
        !self.unseen.0.is_empty() && self.unseen.0.contains(&uid)
    }

    /// How many members of `r` the others know of (a room's count says what its member list
    /// shows): all but the unseen, who are few.
    pub(super) fn known_members(&self, r: &Room) -> usize {
        let unseen = self
            .unseen
            .0
            .iter()
            .filter(|u| r.members.contains(u))
            .count();
        r.members.len() - unseen
    }

    /// `conn` sent something that does not close it: if its user was unseen, it is a person.
    pub(super) fn seen_on(&mut self, conn: ConnId, now: Millis) {
        if self.unseen.0.is_empty() {
            return;
        }
        if let Some(uid) = self.user_of(conn) {
            self.seen(uid, now);
        }
    }

    /// `uid` is a person (it typed, or the grace ran out): the rooms it was put in hear of its
    /// join now, as they would have then.
    pub(super) fn seen(&mut self, uid: UserId, now: Millis) {
        if !self.unseen.0.remove(&uid) {
            return;
        }
        self.timers.cancel(Timer::Unseen(uid));
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        let nick = u.nick.clone();
        let rooms: Vec<RoomName> = u.rooms.iter().cloned().collect();
        for room in rooms {
            let members = self.rooms.get(&room).map_or(0, |r| r.members.len());
            // In a big room the join is counted for the next summary (`crowd.rs`).
            if !self.crowd_joined(&room, uid, members, now) {
                let skip = Skip::User(uid);
                self.broadcast(&room, nick.clone(), EventKind::Join, now, skip, None);
            }
        }
    }

    /// `uid` quits: whether it was unseen (then nobody is told).
    pub(super) fn unseen_gone(&mut self, uid: UserId) -> bool {
        if !self.unseen.0.remove(&uid) {
            return false;
        }
        self.timers.cancel(Timer::Unseen(uid));
        true
    }
}
