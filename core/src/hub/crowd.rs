//! Big rooms' comings and goings. Announcing each join, part and quit to every member costs
//! O(N) per arrival, O(N²) when a crowd arrives (5,000 joins into one room: 12.5 million
//! deliveries). In a room of more than [`Config::quiet_room_members`](super::Config) members
//! ("quiet") they are counted instead, and every
//! [`Config::crowd_summary_every`](super::Config) each quiet room where anyone came or went
//! hears one [`ServerMsg::Crowd`] ("12 joined, 3 left, 5,000 here"). The member list is asked
//! for on demand (`Who`). A joiner of a quiet room gets a `Crowd` with zeros right after its
//! `Joined`, so its member count is right even when the list is cut short.
//!
//! The joiner and the parter themselves hear what they always did (`Joined`, `Parted`); what is
//! left out is only the event in the room's history that told the others.
//!
//! A member who joined since the last summary already has the room's size from its own `Crowd`:
//! its next summary counts only who came and went after it (not itself, nor those before it),
//! and it gets none when nobody did.

use super::dialect::{Note, Reply};
use super::{Hub, Timer, UserId};
use crate::limits::MAX_MEMBERS_LISTED;
use crate::time::Millis;
use crate::types::{ConnId, RoomName};
use crate::wire::ServerMsg;
use std::collections::BTreeMap;
use tracing::debug;

/// Arrivals and departures in a quiet room since its last summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    joined: u32,
    left: u32,
}

impl Tally {
    /// What came and went since `then` (an earlier reading of the same tally).
    fn since(self, then: Tally) -> Tally {
        Tally {
            joined: self.joined.saturating_sub(then.joined),
            left: self.left.saturating_sub(then.left),
        }
    }
}

/// One quiet room's comings and goings since its last summary.
#[derive(Debug, Default)]
struct Pending {
    tally: Tally,
    /// Who joined since the last summary, with the tally right after their join (at most one
    /// per join counted in `tally`, so bounded by the joins of one period).
    newcomers: BTreeMap<UserId, Tally>,
}

/// The quiet rooms with something to sum up.
#[derive(Debug, Default)]
pub(super) struct Crowds(BTreeMap<RoomName, Pending>);

impl Hub {
    /// Whether a room of `members` members announces comings and goings one by one.
    pub(super) fn is_quiet(&self, members: usize) -> bool {
        members > self.config.quiet_room_members
    }

    /// Whether `room` (now of `members`) is quiet and `uid`'s join to it was counted, not
    /// announced.
    pub(super) fn crowd_joined(
        &mut self,
        room: &RoomName,
        uid: UserId,
        members: usize,
        now: Millis,
    ) -> bool {
        self.crowd_count(room, members, now, |p| {
            p.tally.joined = p.tally.joined.saturating_add(1);
            p.newcomers.insert(uid, p.tally);
        })
    }

    /// Whether `room` (of `members` before the leaver went) is quiet and a departure from it was
    /// counted, not announced.
    pub(super) fn crowd_left(&mut self, room: &RoomName, members: usize, now: Millis) -> bool {
        self.crowd_count(room, members, now, |p| {
            p.tally.left = p.tally.left.saturating_add(1)
        })
    }

    fn crowd_count(
        &mut self,
        room: &RoomName,
        members: usize,
        now: Millis,
        count: impl FnOnce(&mut Pending),
    ) -> bool {
        if !self.is_quiet(members) {
            return false;
        }
        count(self.crowds.0.entry(room.clone()).or_default());
        if !self.timers.is_set(Timer::Crowds) {
            self.timers
                .set(Timer::Crowds, now + self.config.crowd_summary_every);
        }
        true
    }

    /// `conn` just joined `room` (or got its `Joined` on a resume): its size, if its member
    /// list is cut short or its comings and goings are summed up (`quiet`). The list holds
    /// [`MAX_MEMBERS_LISTED`] whatever `quiet_room_members` says, so a room larger than that
    /// but not quiet needs it too.
    pub(super) fn size_to(&mut self, conn: ConnId, room: &RoomName, quiet: bool) {
        let Some(here) = self.rooms.get(room).map(|r| r.members.len()) else {
            return;
        };
        let members = here + self.remote_count(room);
        if !quiet && members <= MAX_MEMBERS_LISTED {
            return;
        }
        let note = Note::Size {
            room: room.clone(),
            members: u32::try_from(members).unwrap_or(u32::MAX),
            summed: quiet,
        };
        self.reply(conn, Reply::Note(note));
    }

    /// The summary timer: every quiet room where anyone came or went hears how many, and how
    /// many are there now; a newcomer hears only what happened after its join.
    pub(super) fn crowd_summaries(&mut self) {
        let pending = core::mem::take(&mut self.crowds.0);
        for (room, Pending { tally, newcomers }) in pending {
            let Some(r) = self.rooms.get(&room) else {
                continue;
            };
            let members: Vec<UserId> = r.members.iter().copied().collect();
            let size = members.len();
            let msg = crowd_msg(&room, tally, size);
            debug!(%room, joined = tally.joined, left = tally.left, members = size, "crowd summary");
            for uid in members {
                let msg = match newcomers.get(&uid) {
                    None => msg.clone(),
                    Some(&then) => {
                        let since = tally.since(then);
                        if since == Tally::default() {
                            continue;
                        }
                        crowd_msg(&room, since, size)
                    }
                };
                let conns: Vec<ConnId> = self.user_conns(uid).collect();
                for c in conns {
                    self.reply(c, super::Reply::Msg(msg.clone()));
                }
            }
        }
    }
}

fn crowd_msg(room: &RoomName, tally: Tally, members: usize) -> ServerMsg {
    ServerMsg::Crowd {
        room: room.clone(),
        joined: tally.joined,
        left: tally.left,
        members: u32::try_from(members).unwrap_or(u32::MAX),
    }
}
