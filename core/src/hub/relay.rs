//! Client-only message tags (IRCv3 `TAGMSG`: typing notifications, reactions) relayed live to
//! a room's members or to a user, for the connections whose dialect carries them (IRC clients
//! that enabled `message-tags`; natter's own clients have no such notion). They are no room
//! event: no seq, no history, no store, and in a cluster they reach a room's members on this
//! node only; to a user on another node they go to that node, as a direct message does, but
//! unanswered ([`ClusterOut::Relay`](super::cluster::ClusterOut::Relay)). What they may cost
//! is bounded: a line's tags are at most
//! [`IRC_MAX_CLIENT_TAGS`](crate::limits::IRC_MAX_CLIENT_TAGS) bytes and cost a flood token,
//! a big room ([`Hub::is_quiet`]) relays none, and a reader already behind is sent none.

use super::dialect::{Note, Reply};
use super::{Hub, UserId};
use crate::time::Millis;
use crate::types::{ConnId, Nick, RoomName};
use crate::wire::{ErrorKind, Re};
use std::sync::Arc;

/// Tags to relay ([`super::dialect::Request::Relay`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relay {
    pub(crate) to: RelayTo,
    /// `+key=value;...` as the client sent them (escaped), at most
    /// [`IRC_MAX_CLIENT_TAGS`](crate::limits::IRC_MAX_CLIENT_TAGS) bytes; never empty.
    pub(crate) tags: Arc<str>,
}

/// Where relayed tags go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RelayTo {
    /// A room's members (the sender's own connection only if it asks for its own lines back).
    Room(RoomName),
    /// A user, on every connection.
    Nick(Nick),
}

impl Hub {
    /// Relays `relay` from `conn`'s user. A room the user is not in is refused as a message
    /// would be; a member who may not speak there (muted, a ban, `+m`) is not relayed, without
    /// a word (clients send typing notifications as they type: one refusal per key would be
    /// noise).
    pub(super) fn relay(&mut self, conn: ConnId, relay: Relay, now: Millis) {
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        let Some(from) = self.users.get(&uid).map(|u| u.nick.clone()) else {
            return;
        };
        let targets = match &relay.to {
            RelayTo::Room(room) => match self.relay_room(conn, uid, room, now) {
                Some(t) => t,
                None => return,
            },
            RelayTo::Nick(nick) => match self.nicks.get(&self.users, nick.folded_key().as_str()) {
                Some(t) => {
                    let mut to: Vec<ConnId> = self.user_conns(t).collect();
                    if self.echoes(conn) && !to.contains(&conn) {
                        to.push(conn);
                    }
                    to
                }
                // In a cluster, someone on another node: to its node, unanswered (typing is
                // worth nothing late); the sender's echo here, as for someone here.
                None if self.remote_presence(nick).is_some() => {
                    let signed_in = self.account_of(uid).is_some();
                    self.cluster_relay(from.clone(), nick.clone(), relay.tags.clone(), signed_in);
                    if self.echoes(conn) {
                        vec![conn]
                    } else {
                        return;
                    }
                }
                None => {
                    let detail = format!("nobody is called {nick}");
                    return self.error(conn, ErrorKind::NoSuchNick, Re::Conn, detail);
                }
            },
        };
        let account = self.account_of(uid).and_then(|a| self.account_name(&a));
        self.relayed += 1;
        let note = Reply::Note(Note::Tagged {
            no: self.relayed,
            from,
            account,
            to: relay.to,
            tags: relay.tags,
            at: now,
        });
        // Typing notifications are worth nothing late: a reader behind gets none.
        for c in targets {
            self.reply_fresh(c, &note);
        }
    }

    /// Client-only tags from `from`, a user on another node, for `to` here
    /// ([`ClusterOut::Relay`](super::cluster::ClusterOut::Relay)): to its connections that
    /// are reading, as from a user here (`signed_in`: with `from` as its account). Dropped
    /// without a word when nobody here is called `to`.
    pub fn handle_remote_relay(
        &mut self,
        from: Nick,
        to: Nick,
        tags: Arc<str>,
        signed_in: bool,
        now: Millis,
    ) {
        self.now = self.now.max(now);
        // Another node's words: held to what a client here may send, and to one line.
        let bad = tags.is_empty()
            || tags.len() > crate::limits::IRC_MAX_CLIENT_TAGS
            || tags.contains(['\r', '\n', '\0', ' ']);
        if self.cluster.is_none() || bad {
            return;
        }
        let Some(uid) = self.nicks.get(&self.users, to.folded_key().as_str()) else {
            return;
        };
        let targets: Vec<ConnId> = self.user_conns(uid).collect();
        self.relayed += 1;
        let note = Reply::Note(Note::Tagged {
            no: self.relayed,
            account: signed_in.then(|| from.clone()),
            from,
            to: RelayTo::Nick(to),
            tags,
            at: now,
        });
        for c in targets {
            self.reply_fresh(c, &note);
        }
    }

    /// Whether `conn` asks for its own lines back (IRC's echo-message).
    fn echoes(&self, conn: ConnId) -> bool {
        self.conns
            .get(&conn)
            .and_then(|c| c.dialect())
            .is_some_and(|d| d.echoes_own())
    }

    /// The connections tags relayed to `room` by `uid` (on `conn`) go to; `None` when they go
    /// to nobody (refused, or not carried).
    fn relay_room(
        &mut self,
        conn: ConnId,
        uid: UserId,
        room: &RoomName,
        now: Millis,
    ) -> Option<Vec<ConnId>> {
        if !self.member(uid, room) {
            self.not_in_room(conn, room, None);
            return None;
        }
        if self.may_speak(uid, room, now).is_err() {
            return None;
        }
        let members = self.members_here(room);
        if self.is_quiet(members.len() + self.remote_count(room)) {
            return None;
        }
        let echo = self.echoes(conn);
        Some(
            members
                .into_iter()
                .flat_map(|m| self.user_conns(m).collect::<Vec<_>>())
                .filter(|c| echo || *c != conn)
                .collect(),
        )
    }
}
