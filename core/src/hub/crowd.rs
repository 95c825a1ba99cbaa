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

use super::{Hub, Timer, UserId};
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

/// The quiet rooms with something to sum up.
#[derive(Debug, Default)]
pub(super) struct Crowds(BTreeMap<RoomName, Tally>);

impl Hub {
    /// Whether a room of `members` members announces comings and goings one by one.
    pub(super) fn is_quiet(&self, members: usize) -> bool {
        members > self.config.quiet_room_members
    }

    /// Whether `room` (now of `members`) is quiet and a join to it was counted, not announced.
    pub(super) fn crowd_joined(&mut self, room: &RoomName, members: usize, now: Millis) -> bool {
        self.crowd_count(room, members, now, |t| {
            t.joined = t.joined.saturating_add(1)
        })
    }

    /// Whether `room` (of `members` before the leaver went) is quiet and a departure from it was
    /// counted, not announced.
    pub(super) fn crowd_left(&mut self, room: &RoomName, members: usize, now: Millis) -> bool {
        self.crowd_count(room, members, now, |t| t.left = t.left.saturating_add(1))
    }

    fn crowd_count(
        &mut self,
        room: &RoomName,
        members: usize,
        now: Millis,
        count: impl FnOnce(&mut Tally),
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

    /// `conn` just joined the quiet `room`: its size, since its member list may be cut short.
    pub(super) fn crowd_size_to(&mut self, conn: ConnId, room: &RoomName) {
        let Some(members) = self.rooms.get(room).map(|r| r.members.len()) else {
            return;
        };
        let msg = crowd_msg(room, Tally::default(), members);
        self.reply(conn, super::Reply::Msg(msg));
    }

    /// The summary timer: every quiet room where anyone came or went hears how many, and how
    /// many are there now.
    pub(super) fn crowd_summaries(&mut self) {
        let pending = core::mem::take(&mut self.crowds.0);
        for (room, tally) in pending {
            let Some(r) = self.rooms.get(&room) else {
                continue;
            };
            let members: Vec<UserId> = r.members.iter().copied().collect();
            let msg = crowd_msg(&room, tally, members.len());
            debug!(%room, joined = tally.joined, left = tally.left, members = members.len(), "crowd summary");
            for uid in members {
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
