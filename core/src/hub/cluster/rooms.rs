//! Room moderation in a cluster: a room's settings (founder, operators, voices, modes, bans,
//! mutes, invitations) are the cluster's, not a node's. Each change an operator makes here goes
//! out as [`ClusterOut::RoomEdit`] (natter-cluster merges it into the room's entry in a
//! key-value bucket, compare-and-swap on its revision, so two nodes' changes both land), and
//! every node hears the room as it is after any change ([`Hub::handle_room`]), this one too.
//! A node enforces the news on its own members: a ban that holds one of them puts it out with
//! a visible `Kick` through the room's log, as a single node would. A `Kick` from the log puts
//! its target out on the node it is on, whichever node's operator asked for it.

use super::super::deliver::Skip;
use super::super::dialect::Reply;
use super::super::room::Invite;
use super::super::{Hub, UserId};
use super::ClusterOut;
use crate::limits::INVITE_LIFETIME;
use crate::moderation::{Entry, MAX_BANS_PER_ROOM, Mask, PolicyEdit, RoomClose, SharedRoom};
use crate::time::Millis;
use crate::types::{Nick, RoomName, Text};
use crate::wire::{EventKind, ServerMsg};
use std::collections::BTreeMap;
use tracing::{debug, info};

/// How many of a closed room's last events are looked through for its close (who closed it
/// and why, for a member told at its next sign-in).
pub(super) const CLOSE_LOOKBACK: usize = 16;

/// How long a kick this node published is taken as on its way: a ban's news does not put the
/// same member out again meanwhile. A kick the log refused is tried again with the room's next
/// news after it.
const KICK_PATIENCE: Millis = Millis(10_000);

/// The hub's side of rooms' shared settings.
#[derive(Debug, Default)]
pub(crate) struct Rooms {
    /// Per room: this node's edits not yet answered, and the revision of the last answered one.
    /// News older than that is not applied (it would take back for a moment what this node
    /// did: a banned member could come back in between).
    own: BTreeMap<RoomName, (u32, u64)>,
    /// Kicks this node published and has not seen come back, by room and folded nick: when.
    kicking: BTreeMap<(RoomName, String), Millis>,
    /// The latest news of a room held back while this node's edits of it were unanswered
    /// (with its revision): applied once they are, if it is at least as recent as they. News
    /// may come before the answer to the edit it shows, merged with another node's edits.
    held: BTreeMap<RoomName, (Option<SharedRoom>, Option<RoomClose>, u64)>,
    /// Changes made here whose `Mode` event the log refused while their edit was on its way
    /// (the link was lost before this node knew it): announced again once an edit of the room
    /// is in the cluster, so members hear of what the cluster now holds.
    unannounced: BTreeMap<RoomName, Vec<(Nick, EventKind)>>,
}

/// Changes of one room kept to announce again (each a `Mode` event, a few words).
const MAX_UNANNOUNCED: usize = 16;

impl Hub {
    /// A change to `room`'s settings made here: in a cluster, merged into the cluster's
    /// settings of the room ([`ClusterOut::RoomEdit`]). Nothing without a cluster (the store
    /// gets the whole policy).
    pub(in crate::hub) fn cluster_room_edit(&mut self, room: &RoomName, edit: PolicyEdit) {
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        cl.out.push_back(ClusterOut::RoomEdit {
            room: room.clone(),
            edit,
        });
        cl.rooms.own.entry(room.clone()).or_default().0 += 1;
    }

    /// Cluster mode: this node's oldest [`ClusterOut::RoomEdit`] of `room` not yet answered is
    /// done: `Some(revision)`, the cluster's version of the room after it, or `None` if it
    /// could not be written (the room goes back to what the cluster says with its next news).
    pub fn handle_room_written(&mut self, room: &RoomName, revision: Option<u64>) {
        let Some(rooms) = self.cluster.as_mut().map(|cl| &mut cl.rooms) else {
            return;
        };
        let Some(own) = rooms.own.get_mut(room) else {
            return;
        };
        own.0 = own.0.saturating_sub(1);
        own.1 = own.1.max(revision.unwrap_or(0));
        let unanswered = own.0;
        let unannounced = rooms.unannounced.remove(room).unwrap_or_default();
        if revision.is_some() && self.rooms.contains_key(room) {
            let now = self.now;
            for (by, kind) in unannounced {
                debug!(%room, "a change the log refused is in the cluster now: announced");
                self.broadcast(room, by, kind, now, Skip::None, None);
            }
        }
        if unanswered > 0 {
            return;
        }
        let Some(rooms) = self.cluster.as_mut().map(|cl| &mut cl.rooms) else {
            return;
        };
        if let Some((shared, close, revision)) = rooms.held.remove(room) {
            let now = self.now;
            self.handle_room(room.clone(), shared, close, revision, now);
        }
    }

    /// The `Mode` event of a change made here was refused by the log: if the change's edit is
    /// still on its way, the event is announced again once it is written (else the change is
    /// in the cluster already, or was given up: nothing to say).
    pub(in crate::hub) fn unannounced(&mut self, room: &RoomName, mode: (Nick, EventKind)) {
        let Some(rooms) = self.cluster.as_mut().map(|cl| &mut cl.rooms) else {
            return;
        };
        if rooms.own.get(room).is_none_or(|o| o.0 == 0) {
            return;
        }
        let kept = rooms.unannounced.entry(room.clone()).or_default();
        if kept.len() < MAX_UNANNOUNCED {
            kept.push(mode);
        }
    }

    /// Cluster mode: `room`'s settings as the cluster holds them now, after a change made on
    /// any node (or read when this node starts); `None`: the room was closed, by whom and why
    /// in `close` (`None` from a node older than the forty-second session). `revision` is the
    /// cluster's version of the room (it grows with every change): news older than this node's
    /// own last change of the room, or while one is unanswered, is not applied.
    ///
    /// Members here hear the new settings; those a ban holds now leave with a `Kick` in the
    /// room's log (by the operator who set the ban); after a close every member here leaves.
    /// A member newly invited here is told.
    pub fn handle_room(
        &mut self,
        room: RoomName,
        shared: Option<SharedRoom>,
        close: Option<RoomClose>,
        revision: u64,
        now: Millis,
    ) {
        self.now = self.now.max(now);
        let Some(cl) = self.cluster.as_mut() else {
            return;
        };
        if let Some(&(unanswered, last)) = cl.rooms.own.get(&room) {
            if unanswered > 0 {
                debug!(%room, revision, "room news while our changes are on their way: held");
                cl.rooms.held.insert(room, (shared, close, revision));
                return;
            }
            if revision < last {
                debug!(%room, revision, "room news older than our changes");
                return;
            }
            cl.rooms.own.remove(&room);
        }
        let Some(shared) = shared else {
            self.room_closed(&room, close);
            return;
        };
        let SharedRoom { policy, invited } = shared;
        let r = self
            .rooms
            .entry(room.clone())
            .or_insert_with(super::super::room::Room::new);
        let changed = r.policy.as_deref() != Some(&policy);
        let key_before = r.policy.as_ref().and_then(|p| p.modes.key.clone());
        let key_set = policy.modes.key.is_some() && policy.modes.key != key_before;
        r.policy = Some(Box::new(policy));
        // The cluster keeps who is invited, not since when: an invitation lapses
        // [`INVITE_LIFETIME`] after this node first heard of it, and is the nick's (the user
        // that had it may be on any node).
        let before = core::mem::take(&mut r.invited);
        r.invited = invited
            .iter()
            .map(|(n, _)| {
                let nick = n.folded();
                let until = before
                    .iter()
                    .find(|i| i.nick == nick)
                    .map_or(now + INVITE_LIFETIME, |i| i.until);
                Invite {
                    nick,
                    user: None,
                    until,
                }
            })
            .collect();
        for (nick, by) in invited {
            if before.iter().any(|i| i.nick == nick.folded()) {
                continue;
            }
            let Some(uid) = self.nicks.get(&self.users, nick.folded_key().as_str()) else {
                continue;
            };
            let msg = ServerMsg::Invited {
                room: room.clone(),
                by,
            };
            let on: Vec<_> = self.user_conns(uid).collect();
            for c in on {
                self.reply(c, Reply::Msg(msg.clone()));
            }
        }
        if changed {
            self.policy_to_members(&room);
            // Set on another node: who set it is in the room's event, not here.
            if key_set {
                self.key_to_members(&room, None);
            }
            self.enforce_bans(&room, now);
        }
    }

    /// Members here that a ban of `room` holds now are put out [`crate::limits::BAN_KICK_WAIT`] later, as on
    /// the node a ban is typed on in IRC (unless a kick of theirs is on its way already, or
    /// comes meanwhile): an IRC operator's `/kickban` on another node sends its `KICK` with
    /// its reason after the ban, which is to be the one the room sees. Held, they say nothing
    /// meanwhile (see `Hub::may_speak`).
    fn enforce_bans(&mut self, room: &RoomName, now: Millis) {
        let members = self.members_here(room);
        for m in members {
            let Some(ban) = self.banned(m, room, now) else {
                continue;
            };
            let Some(nick) = self.users.get(&m).map(|u| u.nick.clone()) else {
                continue;
            };
            if self.kick_on_its_way(room, &nick, now) || self.ban_kick_waits(room, m) {
                continue;
            }
            info!(%room, target = %nick, by = %ban.by, "banned on another node: put out soon");
            self.hold_guest_address(room, m, &ban);
            self.ban_kick_later(room, ban.by.clone(), vec![m], ban.reason.clone(), now);
        }
    }

    /// A ban set on another node by a guest's nick holds its address too, as it would have
    /// had the guest been on the operator's node (which cannot know the address): this node
    /// adds it, as the operator, with the same term and reason.
    fn hold_guest_address(&mut self, room: &RoomName, uid: UserId, ban: &Entry) {
        if !matches!(ban.mask, Mask::Nick(_)) || self.account_of(uid).is_some() {
            return;
        }
        let masks = self.person_masks(uid);
        for mask in masks.into_iter().filter(|m| matches!(m, Mask::Net { .. })) {
            let p = self.policy_mut(room);
            if p.bans.iter().any(|b| b.mask == mask) || p.bans.len() >= MAX_BANS_PER_ROOM {
                continue;
            }
            let entry = Entry {
                mask,
                ..ban.clone()
            };
            p.bans.push(entry.clone());
            let words = format!("+b {}", entry.mask);
            let now = self.now;
            self.changed(room, ban.by.clone(), words, PolicyEdit::Ban(entry), now);
        }
    }

    /// The room was closed (on any node), by whom and why in `close`: every member here leaves
    /// it, told so as on the closing node, and it is forgotten unless someone is still in it.
    fn room_closed(&mut self, room: &RoomName, close: Option<RoomClose>) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let registered = r.policy.take().is_some();
        r.invited.clear();
        let members: Vec<UserId> = r.members.iter().copied().collect();
        if registered {
            info!(%room, members = members.len(), "room closed in the cluster");
        }
        // Who closed it and why, from the news; from a node that did not say (older than the
        // forty-second session), from the close's event if it came here first (the room's last
        // few events). A close with a join after it is an earlier one: the room was opened
        // again since, and every member here joined after it (until the fortieth session an
        // always-on member of a room closed twice was told the first close's who and why).
        let said = close.map(|c| (c.by, c.reason.map(|r| r.as_str().to_owned())));
        let close = said.or_else(|| {
            r.last_n(CLOSE_LOOKBACK, r.last_seq)
                .filter_map(|s| s.event())
                .fold(None, |found, ev| match &ev.kind {
                    EventKind::Mode { change } if crate::persist::closes_room(&ev.kind) => {
                        let reason = change.as_str().strip_prefix("close: ").map(str::to_owned);
                        Some((ev.from.clone(), reason))
                    }
                    EventKind::Join => None,
                    _ => found,
                })
        });
        let (by, reason) = close.unzip();
        let reason = reason.flatten();
        let words = Self::closed_words(room, by.as_ref(), reason.as_deref());
        for m in members {
            self.keep_away_note(m, room, words.clone());
            self.leave_closed(m, room, by.as_ref(), reason.as_deref());
        }
        self.drop_if_empty(room);
    }

    /// Cluster mode: a kick of `nick` from `room` was published here; the member leaves when
    /// it comes back through the log (so it sees its kick, as on a single node). True in a
    /// cluster.
    pub(in crate::hub) fn cluster_kick_sent(
        &mut self,
        room: &RoomName,
        nick: &Nick,
        now: Millis,
    ) -> bool {
        let Some(cl) = self.cluster.as_mut() else {
            return false;
        };
        cl.rooms.kicking.insert((room.clone(), nick.folded()), now);
        true
    }

    pub(in crate::hub) fn kick_on_its_way(
        &mut self,
        room: &RoomName,
        nick: &Nick,
        now: Millis,
    ) -> bool {
        let Some(cl) = self.cluster.as_mut() else {
            return false;
        };
        cl.rooms
            .kicking
            .retain(|_, at| now.0.saturating_sub(at.0) < KICK_PATIENCE.0);
        cl.rooms
            .kicking
            .contains_key(&(room.clone(), nick.folded()))
    }

    /// A `Kick` of `target` by `by` came back from `room`'s log (delivered to the members
    /// here): if the target is a member here, it leaves now, on every device (an account with
    /// nothing connected is told at its next sign-in).
    pub(in crate::hub) fn cluster_kicked(
        &mut self,
        room: &RoomName,
        target: &Nick,
        by: &Nick,
        reason: Option<&Text>,
    ) {
        if let Some(cl) = self.cluster.as_mut() {
            cl.rooms.kicking.remove(&(room.clone(), target.folded()));
        }
        let Some(uid) = self.member_here(room, target) else {
            return;
        };
        debug!(%room, %target, "kicked through the log");
        self.keep_put_out_away(uid, room, by, reason);
        self.leave_kicked(uid, room);
        self.drop_if_empty(room);
    }

    /// Cluster mode: the member of `room` called `nick` on another node, as the room's log
    /// says (`None` if a user here has the nick, or the log knows no such member).
    pub(in crate::hub) fn remote_member(&self, room: &RoomName, nick: &Nick) -> Option<Nick> {
        if self
            .nicks
            .contains_key(&self.users, nick.folded_key().as_str())
        {
            return None;
        }
        self.remote_members(room)
            .find(|n| n.folded() == nick.folded())
            .cloned()
    }

    /// Cluster mode: an operator here puts out `target`, a member of `room` on another node:
    /// the `Kick` goes into the room's log, and the target's node puts it out when it comes.
    pub(in crate::hub) fn kick_remote(
        &mut self,
        room: &RoomName,
        by: &Nick,
        target: Nick,
        reason: Option<Text>,
        now: Millis,
    ) {
        self.audit_kick(room, by, &target, reason.as_ref(), now);
        self.cluster_kick_sent(room, &target, now);
        let kind = EventKind::Kick { target, reason };
        self.broadcast(room, by.clone(), kind, now, Skip::None, None);
    }
}
