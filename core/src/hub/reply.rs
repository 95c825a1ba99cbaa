//! What the hub says to one connection, and how connections end: the one place a reply is
//! queued under the outbound limits (past the hard limit the connection is closed as too slow),
//! and the one close path.

use super::dialect::{Limit, Note, QUIT_CLOSED, QUIT_PING_TIMEOUT, QUIT_TOO_SLOW, Reply};
use super::{Device, DeviceId, Hub, UserId};
use crate::render::count;
use crate::time::Millis;
use crate::types::{ConnId, RoomName, Text};
use crate::wire::{ErrorKind, EventKind, Re, ServerMsg};
use tracing::debug;

/// Why a connection ended without a quit of its own: what its rooms see as its quit reason
/// when its user leaves with it, in the words IRC servers use (irssi and WeeChat show them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Gone {
    /// The peer closed it, reading it failed, or the hub ended it for a reason of its own.
    Closed,
    /// It left a ping unanswered; it had last been heard this long before.
    PingTimeout(Millis),
    /// It read too slowly: its backlog passed the hard limit.
    TooSlow,
}

impl Gone {
    /// The quit reason its rooms see.
    pub(super) fn reason(self) -> Option<Text> {
        let words = match self {
            Gone::Closed => QUIT_CLOSED.to_owned(),
            Gone::PingTimeout(silent) => {
                format!("{QUIT_PING_TIMEOUT}{}", count(silent.0 / 1000, "second"))
            }
            Gone::TooSlow => QUIT_TOO_SLOW.to_owned(),
        };
        Text::new(&words).ok()
    }
}

impl Hub {
    /// Queues a reply (not room traffic) for `conn`, in its dialect's words. Past the hard
    /// backlog limit the connection is closed as too slow instead.
    pub(super) fn reply(&mut self, conn: ConnId, reply: Reply) {
        let hard = self.config.queue_limits().hard_bytes;
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let reply = match reply {
            Reply::Msg(
                m @ (ServerMsg::Joined { .. }
                | ServerMsg::Parted { .. }
                | ServerMsg::YourNick { .. }
                | ServerMsg::Members { .. }
                | ServerMsg::Topic { .. }),
            ) if c.kind() == Some(super::ConnKind::Irc) => {
                let marks = self.standings(&m);
                let topic_set = self.topic_set(&m);
                // The user's own JOIN, PART and NICK lines carry `time` (server-time) as
                // every other user's do.
                let at = matches!(
                    m,
                    ServerMsg::Joined { .. }
                        | ServerMsg::Parted { .. }
                        | ServerMsg::YourNick { .. }
                )
                .then_some(self.now);
                if marks.is_none() && topic_set.is_none() && at.is_none() {
                    Reply::Msg(m)
                } else {
                    Reply::Note(Note::Detailed {
                        msg: Box::new(m),
                        marks: marks.unwrap_or_default(),
                        topic_set,
                        created: None,
                        at,
                    })
                }
            }
            // nc's `/who` and join line mark operators (`@alice`), as NAMES does.
            Reply::Msg(m @ (ServerMsg::Joined { .. } | ServerMsg::Members { .. }))
                if c.kind() == Some(super::ConnKind::Text) =>
            {
                match self.marks(&m) {
                    None => Reply::Msg(m),
                    Some(marks) => Reply::Note(Note::Detailed {
                        msg: Box::new(m),
                        marks,
                        topic_set: None,
                        created: None,
                        at: None,
                    }),
                }
            }
            // `MODE #channel`'s `324`, followed by `329` when the server knows when it made
            // the room.
            Reply::Msg(m @ ServerMsg::Policy { .. }) if c.kind() == Some(super::ConnKind::Irc) => {
                let created = match &m {
                    ServerMsg::Policy { room, .. } => self.rooms.get(room).and_then(|r| r.created),
                    _ => None,
                };
                match created {
                    None => Reply::Msg(m),
                    created => Reply::Note(Note::Detailed {
                        msg: Box::new(m),
                        marks: Vec::new(),
                        topic_set: None,
                        created,
                        at: None,
                    }),
                }
            }
            reply => reply,
        };
        let Some(dialect) = c.dialect() else {
            return;
        };
        let kind = c.kind();
        let me = c.user().and_then(|u| self.users.get(&u)).map(|u| &u.nick);
        let Some(data) = dialect.render(&reply, me) else {
            return;
        };
        if c.backlog_bytes() + data.len() > hard {
            self.too_slow(conn);
            return;
        }
        self.stats.gaps += u64::from(matches!(
            reply,
            Reply::Msg(crate::wire::ServerMsg::Gap { .. })
        ));
        if let Some(c) = self.conns.get_mut(&conn) {
            c.push(&mut self.out, data);
        }
        // A member list is followed by who in it is away: binary clients of version 9 on keep
        // it for their lists, nc users read a line. IRC clients ask WHO; nc's rejoin shows no
        // list.
        let list = match &reply {
            Reply::Msg(m @ (ServerMsg::Joined { .. } | ServerMsg::Members { .. })) => Some(m),
            // nc's, marked.
            Reply::Note(Note::Detailed { msg, .. })
                if kind == Some(super::ConnKind::Text)
                    && matches!(**msg, ServerMsg::Joined { .. } | ServerMsg::Members { .. }) =>
            {
                Some(&**msg)
            }
            Reply::Rejoined(m) if kind == Some(super::ConnKind::Binary) => Some(m),
            _ => None,
        };
        if let Some(list) = list.filter(|_| kind != Some(super::ConnKind::Irc)) {
            for here in self.away_here(list) {
                self.reply(conn, Reply::Msg(here));
            }
        }
    }

    /// A reply worth nothing late (a typing notification, [`Note::Tagged`]): not queued at
    /// all when `conn` is behind already (its backlog with it past the pressure floor), so it
    /// never adds to what a slow reader owes nor closes it as too slow.
    pub(super) fn reply_fresh(&mut self, conn: ConnId, reply: &Reply) {
        let floor = self.config.queue_limits().pressure_floor;
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let Some(dialect) = c.dialect() else {
            return;
        };
        let me = c.user().and_then(|u| self.users.get(&u)).map(|u| &u.nick);
        let Some(data) = dialect.render(reply, me) else {
            return;
        };
        if c.backlog_bytes() + data.len() > floor {
            return;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.push(&mut self.out, data);
        }
    }

    /// Who set the topic a `Joined` or `Topic` gives, and when, if this server knows.
    fn topic_set(&self, msg: &ServerMsg) -> Option<super::room::TopicSet> {
        let (ServerMsg::Joined {
            room,
            topic: Some(_),
            ..
        }
        | ServerMsg::Topic {
            room,
            topic: Some(_),
        }) = msg
        else {
            return None;
        };
        if let Some(t) = self.remote_topic(room) {
            return Some(super::room::TopicSet {
                by: t.by.clone(),
                at: t.at,
            });
        }
        self.rooms.get(room)?.topic_set.as_deref().cloned()
    }

    /// The room and members a `Joined` or `Members` lists, with the room's settings, when
    /// someone in the room has a role (a founder, operators or voiced members); `None` for any
    /// other message, or a room without one.
    fn listed_with_roles<'m>(
        &self,
        msg: &'m ServerMsg,
    ) -> Option<(
        &'m RoomName,
        &'m [crate::types::Nick],
        &crate::moderation::Policy,
    )> {
        let (ServerMsg::Joined { room, members, .. } | ServerMsg::Members { room, members }) = msg
        else {
            return None;
        };
        let p = self.rooms.get(room)?.policy.as_deref()?;
        if p.founder.is_none() && p.ops.is_empty() && p.voiced.is_empty() {
            return None;
        }
        Some((room, members, p))
    }

    /// The standing of each member a `Joined` or `Members` lists, for IRC's `NAMES` (`@`
    /// the founder or an operator, `+` voiced); `None` in a room nobody has any.
    fn standings(&self, msg: &ServerMsg) -> Option<Vec<&'static str>> {
        let (room, members, _) = self.listed_with_roles(msg)?;
        Some(members.iter().map(|n| self.standing(room, n)).collect())
    }

    /// The account the member `nick` is signed in to (folded), if any; for a member on another
    /// node, the account its node says.
    fn member_account(&self, nick: &crate::types::Nick) -> Option<String> {
        match self.nicks.get(&self.users, nick.folded_key().as_str()) {
            Some(u) => self.account_of(u),
            None => self.remote_account(nick).map(|a| a.folded()),
        }
    }

    /// The marks of the members a `Joined` or `Members` lists as natter's own lists show them
    /// (nc's `/who` and join line): `~` the founder, `@` an operator, `+` voiced, the highest
    /// only ([`crate::chat::Role::mark`]); `None` in a room nobody has any.
    fn marks(&self, msg: &ServerMsg) -> Option<Vec<&'static str>> {
        let (_, members, p) = self.listed_with_roles(msg)?;
        let marks = members.iter().map(|nick| {
            let account = self.member_account(nick);
            let is = |n: &crate::types::Nick| account.as_deref() == Some(n.folded().as_str());
            let role = if p.founder.as_ref().is_some_and(is) {
                crate::chat::Role::Founder
            } else if p.ops.iter().any(is) {
                crate::chat::Role::Operator
            } else if p
                .voiced
                .iter()
                .any(|v| is(v) || v.folded() == nick.folded())
            {
                crate::chat::Role::Voiced
            } else {
                crate::chat::Role::Member
            };
            role.mark()
        });
        Some(marks.collect())
    }

    /// The standing of the member `nick` in `room`: `@` the founder or an operator, `+`
    /// voiced, `@+` both, empty otherwise.
    pub(super) fn standing(&self, room: &RoomName, nick: &crate::types::Nick) -> &'static str {
        let Some(p) = self.rooms.get(room).and_then(|r| r.policy.as_ref()) else {
            return "";
        };
        let account = self.member_account(nick);
        let op = p.is_op(account.as_deref());
        let voiced = p.voiced.iter().any(|v| {
            v.folded() == nick.folded() || account.as_deref() == Some(v.folded().as_str())
        });
        match (op, voiced) {
            (true, true) => "@+",
            (true, false) => "@",
            (false, true) => "+",
            (false, false) => "",
        }
    }

    /// An error reply about `re`.
    pub(super) fn error(&mut self, conn: ConnId, kind: ErrorKind, re: Re, detail: String) {
        debug!(conn = %conn, ?kind, %detail, "error reply");
        // A refused message: a resend of it is refused again (see `DeviceRare::refused`). (A
        // resend of one already taken is answered as had, even past a full flood queue: see
        // `Hub::submit`.)
        if let Re::Msg(id) = re
            && let Some(did) = self.conns.get(&conn).and_then(|c| c.device())
        {
            self.refused_message(did, id, kind, false);
        }
        self.reply(conn, Reply::error(kind, re, detail));
    }

    /// A limit was hit: logged once per connection and limit, and the peer told.
    pub(super) fn limit(
        &mut self,
        conn: ConnId,
        limit: Limit,
        kind: ErrorKind,
        re: Re,
        detail: String,
    ) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.limit_hit(&mut self.out, limit, detail.clone());
        }
        self.error(conn, kind, re, detail);
    }

    /// An error that ends the connection: its last words, then close.
    pub(super) fn fatal(&mut self, conn: ConnId, kind: ErrorKind, detail: String, now: Millis) {
        self.fatal_as(conn, kind, detail, Gone::Closed, now);
    }

    /// [`Hub::fatal`], saying `gone` to the rooms of a user that leaves with the connection.
    pub(super) fn fatal_as(
        &mut self,
        conn: ConnId,
        kind: ErrorKind,
        detail: String,
        gone: Gone,
        now: Millis,
    ) {
        debug!(conn = %conn, ?kind, %detail, "fatal");
        self.reply(
            conn,
            Reply::Fatal {
                kind,
                detail: detail.clone(),
            },
        );
        self.close_conn(conn, detail, gone, now);
    }

    /// The backlog went past the hard limit: one last error (a few bytes over), then close.
    pub(super) fn too_slow(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing() {
            return;
        }
        let detail = "you are reading too slowly; closing the connection".to_string();
        let last = Reply::Fatal {
            kind: ErrorKind::TooSlow,
            detail: detail.clone(),
        };
        if let Some(data) = c.dialect().and_then(|d| d.render(&last, None)) {
            c.push(&mut self.out, data);
        }
        c.limit_hit(&mut self.out, Limit::QueueHard, detail.clone());
        let now = self.now;
        self.close_conn(conn, detail, Gone::TooSlow, now);
    }

    /// `conn`'s session continues elsewhere (or ended): says `Bye` with `words` and closes it,
    /// leaving its user as it is.
    pub(super) fn bye(&mut self, conn: ConnId, words: &str, log: &str) {
        let bye = crate::wire::ServerMsg::Bye {
            reason: words.into(),
        };
        self.reply(conn, Reply::Msg(bye));
        self.begin_close(conn, Some(log.into()));
    }

    /// Marks `conn` closing and tells the shell, then detaches (resumable dialects) or quits its
    /// user, saying `gone`.
    pub(super) fn close_conn(&mut self, conn: ConnId, reason: String, gone: Gone, now: Millis) {
        if let Some((_, did)) = self.begin_close(conn, Some(reason)) {
            self.release_device(did, gone, now);
        }
    }

    /// The one close transition: input is ignored from now on, timers stop, and (with a
    /// `reason`) the shell is told to close once what was polled is written. Returns the user
    /// the connection had, for the caller to decide its fate. Closing twice does nothing.
    pub(super) fn begin_close(
        &mut self,
        conn: ConnId,
        reason: Option<String>,
    ) -> Option<(UserId, DeviceId)> {
        self.remember_irc_user(conn);
        let c = self.conns.get_mut(&conn)?;
        if c.closing() {
            return None;
        }
        let user = c.close();
        self.timers.cancel_conn(conn);
        // Its `MONITOR` list goes now: a closing connection hears nothing after its last
        // words (its own nick going offline, as it quits).
        self.monitors.clear(conn);
        if let Some(reason) = reason {
            debug!(conn = %conn, %reason, "closing");
            if c.holds_output() {
                // Its last words wait for a store commit: the shell closes it after them.
                c.rare_mut().close_when_released = Some(reason);
            } else {
                self.out.close(conn, reason);
            }
        }
        user
    }

    /// An IRC connection with a user is closing: its nick, `USER` name and real name go to
    /// the WHOWAS memory now, while its dialect still knows them (IRC has no resume: its user
    /// quits, unless an account keeps it).
    pub(super) fn remember_irc_user(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get(&conn).filter(|c| !c.closing()) else {
            return;
        };
        let Some(uid) = c.user() else {
            return;
        };
        if c.kind() != Some(super::ConnKind::Irc) {
            return;
        }
        if let Some(u) = self.users.get(&uid) {
            let ident = self.ident_of(uid, u);
            let nick = u.nick.clone();
            let signed_in = u.account().is_some();
            self.whowas.record(uid, &nick, ident, signed_in, self.now);
        }
    }

    /// A device's connection is gone (`gone` says why): devices of resumable dialects wait for a
    /// resume, others leave.
    pub(super) fn release_device(&mut self, did: DeviceId, gone: Gone, now: Millis) {
        let Some(d) = self.devices.get_mut(&did) else {
            return;
        };
        self.attach_gen += 1;
        d.conn = None;
        if let Some(probe) = d.take_probe() {
            // A newcomer was waiting to see whether this connection is alive: it is not.
            self.timers.cancel(super::Timer::Takeover(did));
            // (Fuzzing found: a newcomer that left while it waited must not get the session, or
            // the device is attached to no connection and never released.)
            if self
                .conns
                .get(&probe.newcomer)
                .is_some_and(|c| !c.closing())
            {
                self.resume(probe.newcomer, did, &probe.hello, now);
                return;
            }
        }
        let Some(d) = self.devices.get(&did) else {
            return;
        };
        let addr = d.addr;
        let may_wait = d.resume.is_some()
            && self.detached < crate::limits::MAX_DETACHED
            && addr.is_none_or(|ip| self.ips.detach(&self.config, ip, now));
        if may_wait {
            self.detached += 1;
            self.timers
                .set(super::Timer::Grace(did), now + self.config.resume_grace);
            debug!(device = did.0, "detached, waiting for resume");
        } else {
            self.leave_device(did, gone.reason(), now);
        }
    }

    /// A device waiting for a resume stops waiting (it resumed, or its grace ran out).
    pub(super) fn undetach(&mut self, did: DeviceId, now: Millis) {
        self.detached = self.detached.saturating_sub(1);
        self.timers.cancel(super::Timer::Grace(did));
        if let Some(ip) = self.devices.get(&did).and_then(|d| d.addr) {
            self.ips.reattach(ip, now);
        }
    }

    /// A device is gone for good (quit, or its grace ran out): its token stops working, and a
    /// user left with no device quits.
    pub(super) fn leave_device(&mut self, did: DeviceId, reason: Option<Text>, now: Millis) {
        let Some(d) = self.forget_device(did) else {
            return;
        };
        let uid = d.user;
        if self.users.get(&uid).is_some_and(|u| u.devices.is_empty()) {
            if self.stays_offline(uid) {
                self.account_presence_changed(uid, true);
            } else {
                self.quit_user(uid, reason, now);
            }
        }
    }

    /// Removes a device: its timers, its tokens and its place in its user.
    pub(super) fn forget_device(&mut self, did: DeviceId) -> Option<Box<Device>> {
        self.attach_gen += 1;
        let d = self.devices.remove(&did)?;
        self.timers.cancel(super::Timer::Grace(did));
        self.timers.cancel(super::Timer::Takeover(did));
        if let Some(key) = d.resume {
            self.tokens
                .remove(key.id, did, super::users::Which::Current);
            self.session_ended(key);
        }
        if let Some(prev) = d.prev_resume() {
            self.tokens.remove(prev.id, did, super::users::Which::Prev);
        }
        if let Some(u) = self.users.get_mut(&d.user) {
            self.attach_gen += 1;
            u.devices.retain(|x| *x != did);
        }
        Some(d)
    }

    /// The user leaves for good: a quit event in each of its rooms, nick and devices freed.
    pub(super) fn quit_user(&mut self, uid: UserId, reason: Option<Text>, now: Millis) {
        let devices = self.devices_of(uid);
        for did in devices {
            if self.devices.get(&did).is_some_and(|d| d.conn.is_none())
                && self.timers.is_set(super::Timer::Grace(did))
            {
                self.undetach(did, now);
            }
            self.forget_device(did);
        }
        self.attach_gen += 1;
        let Some(u) = self.users.remove(&uid) else {
            return;
        };
        self.accounts.opers.remove(&uid);
        // (An IRC user was remembered as it quit or its connection closed, with its `USER`:
        // that record stands.)
        let gone = super::query::Ident::gone(&u.nick);
        self.whowas
            .record(uid, &u.nick, gone, u.account().is_some(), now);
        self.user_gone(u.account());
        self.nicks.remove(u.nick.folded_key().as_str(), u.id);
        self.cluster_release(&u.nick);
        self.monitored_off(&u.nick);
        self.user_wide(u.rooms.len(), |hub| {
            for room in &u.rooms {
                let mut before = 0;
                if let Some(r) = hub.rooms.get_mut(room) {
                    hub.attach_gen += 1;
                    before = r.members.len();
                    r.members.remove(&uid);
                }
                hub.record_presence(room, &u.nick, false);
                if u.account().is_none() {
                    hub.guest_voice_gone(room, &u.nick);
                }
                // In a big room the quit is counted for the next summary (`crowd.rs`).
                if !hub.crowd_left(room, before, now) {
                    let quit = EventKind::Quit {
                        reason: reason.clone(),
                    };
                    let skip = super::deliver::Skip::None;
                    hub.broadcast(room, u.nick.clone(), quit, now, skip, None);
                }
                hub.drop_if_empty(room);
            }
        });
    }

    /// Forgets a room nobody is in (but `#lobby`, which always exists). With a durable store
    /// the room stays, as a restart would bring it back: its seqs go on from the stored ones
    /// (a room made anew would start again at 1, and the store refuses those seqs) and its
    /// topic is kept. Such rooms count towards `max_rooms` and are freed as orphans when the
    /// table is full (`reclaim_orphan_room`).
    pub(super) fn drop_if_empty(&mut self, room: &RoomName) {
        if *room == RoomName::lobby()
            || self.registered_room(room)
            || self.durable.is_some()
            || self.told_outside.as_ref() == Some(room)
        {
            return;
        }
        if self.rooms.get(room).is_some_and(|r| r.members.is_empty())
            && !self.cluster_keeps(room)
            && let Some(r) = self.rooms.remove(room)
        {
            self.history_bytes -= r.history_bytes();
        }
    }
}
