//! Resume: reattaching a user to a new connection, with the events it missed in each room, and a
//! new resume token (the one presented stops working).
//!
//! A resume for a session still attached to another connection first probes that connection:
//! if it answers within [`crate::hub::Config::takeover_probe`], the session stays where it is and
//! the newcomer gets a fresh one; if it does not (or closes), the newcomer takes over and the old
//! connection is told. So a client whose old connection died silently is back in seconds, and a
//! copied token cannot take a live session away from its owner.

use super::dialect::Hello;
use super::{Device, DeviceId, Hub, Probe, Timer};
use crate::time::Millis;
use crate::types::{ConnId, RoomName};
use crate::wire::{ErrorKind, Re};
use tracing::{debug, info};

/// What a refused resume is told, whatever the reason: a token that opens nothing (expired,
/// replaced, never issued) reads the same as one whose session is alive on another connection
/// (a copied token, or a duplicated tab), so the words tell someone holding a token nothing of
/// whether its session is alive. The operator's log says which it was.
pub(super) const RESUME_REFUSED: &str = "your earlier session cannot be resumed (it has expired, or is in use on another connection); starting a new one";

impl Hub {
    /// `conn` presented device `did`'s current token.
    pub(super) fn resume_request(
        &mut self,
        conn: ConnId,
        did: DeviceId,
        hello: Hello,
        now: Millis,
    ) {
        let attached = self
            .devices
            .get(&did)
            .and_then(|d| d.conn)
            .filter(|old| *old != conn && self.conns.get(old).is_some_and(|c| !c.closing()));
        let Some(old) = attached else {
            return self.resume(conn, did, &hello, now);
        };
        let Some(d) = self.devices.get_mut(&did) else {
            return;
        };
        if d.probe().is_some() {
            let reason = "the session is being resumed on another connection";
            return self.refuse_resume(conn, hello, reason, now);
        }
        debug!(conn = %conn, old = %old, device = did.0, "resume of an attached session: probing");
        // Marked as a probe, so a bridge holding the connection for a page that was left
        // tells it from a keepalive (see `wire::PROBE_TOKEN`).
        let token = crate::wire::PROBE_TOKEN | self.next_ping;
        self.next_ping += 1;
        d.set_probe(Probe {
            newcomer: conn,
            hello,
            ping: token,
            heard: false,
        });
        if let Some(c) = self.conns.get_mut(&conn) {
            c.probing = true;
        }
        self.timers
            .set(Timer::Takeover(did), now + self.config.takeover_probe);
        if let Some(c) = self.conns.get_mut(&old) {
            c.set_ping(Some(now));
        }
        self.reply(old, super::Reply::Ping(token));
    }

    /// The attached connection answered the probe: it is alive and keeps the session.
    pub(super) fn probe_answered(&mut self, did: DeviceId, now: Millis) {
        let Some(probe) = self.devices.get_mut(&did).and_then(|d| d.take_probe()) else {
            return;
        };
        self.timers.cancel(Timer::Takeover(did));
        if let Some(c) = self.conns.get_mut(&probe.newcomer) {
            c.probing = false;
        }
        debug!(conn = %probe.newcomer, device = did.0, "resume refused: the session is alive");
        let reason = "the session is alive on another connection";
        self.refuse_resume(probe.newcomer, probe.hello, reason, now);
    }

    /// The attached connection sent something while probed, not the probe's `Pong` (see
    /// [`Probe::heard`]).
    pub(super) fn probe_heard(&mut self, did: DeviceId) {
        if let Some(p) = self.devices.get_mut(&did).and_then(|d| d.probe_mut()) {
            p.heard = true;
        }
    }

    /// A `Pong` with `token` from `conn`: the answer to a takeover probe of its device, if it
    /// is that probe's.
    pub(super) fn pong_to(&mut self, conn: ConnId, token: u64, now: Millis) {
        let Some(did) = self.conns.get(&conn).and_then(|c| c.device()) else {
            return;
        };
        let probed = self
            .devices
            .get(&did)
            .and_then(|d| d.probe())
            .is_some_and(|p| p.ping == token);
        if probed {
            self.probe_answered(did, now);
        }
    }

    /// The probe's time is up, its `Pong` not come: the newcomer takes over, unless the
    /// attached connection sent something meanwhile and is still there (then it is alive).
    pub(super) fn takeover_probe_over(&mut self, did: DeviceId, now: Millis) {
        if self
            .devices
            .get(&did)
            .and_then(|d| d.probe())
            .is_some_and(|p| p.heard)
        {
            return self.probe_answered(did, now);
        }
        let Some(probe) = self.devices.get_mut(&did).and_then(|d| d.take_probe()) else {
            return;
        };
        let Some(c) = self.conns.get_mut(&probe.newcomer) else {
            return;
        };
        c.probing = false;
        if c.closing() {
            return;
        }
        self.resume(probe.newcomer, did, &probe.hello, now);
    }

    /// `conn` does not get the session it asked for (`reason`, for the log): it is told, and
    /// starts a fresh one.
    fn refuse_resume(&mut self, conn: ConnId, mut hello: Hello, reason: &str, now: Millis) {
        if self.conns.get(&conn).is_none_or(|c| c.closing()) {
            return;
        }
        self.stats.resumes_failed += 1;
        // Two connections holding the same session's token: a copy of it (a duplicated browser
        // tab, or a stolen token). The operator sees who presented it.
        if let Some(peer) = self.client_ip(conn) {
            info!(%conn, %peer, reason, "resume refused");
        }
        self.error(
            conn,
            ErrorKind::ResumeFailed,
            Re::Conn,
            RESUME_REFUSED.into(),
        );
        hello.resume = None;
        self.fresh_session(conn, hello, now);
    }

    /// Attaches device `did` to `conn` (taking it over from a connection it is still on), with
    /// a new resume token and what each room had since the seq the client last saw.
    pub(super) fn resume(&mut self, conn: ConnId, did: DeviceId, hello: &Hello, now: Millis) {
        if self.resume_needs_store(conn, did, hello) {
            return;
        }
        self.resume_with(conn, did, hello, Vec::new(), now);
    }

    /// [`Hub::resume`], with the pages the store gave of what the ring lost.
    pub(super) fn resume_with(
        &mut self,
        conn: ConnId,
        did: DeviceId,
        hello: &Hello,
        mut pages: Vec<(RoomName, Vec<crate::wire::RoomEvent>)>,
        now: Millis,
    ) {
        self.cluster_note_page_echoes(did, &pages);
        let Some(d) = self.devices.get_mut(&did) else {
            return;
        };
        // Whether it comes from a connection that may be dead: what was sent there since may
        // never have arrived.
        let took_over = matches!(d.conn, Some(old) if old != conn);
        match d.conn.take() {
            Some(old) if old != conn => {
                // The connection it was on did not answer the probe: the session moves.
                if let (Some(peer), Some(was)) = (self.client_ip(conn), self.client_ip(old)) {
                    info!(%conn, %peer, %old, old_peer = %was, "session taken over from a connection that did not answer");
                }
                self.bye(
                    old,
                    "your session continues on a new connection",
                    "taken over by a resumed connection",
                );
            }
            Some(_) => {}
            None => {
                if self.timers.is_set(Timer::Grace(did)) {
                    self.undetach(did, now);
                }
            }
        }
        let Some(d) = self.devices.get_mut(&did) else {
            return;
        };
        self.attach_gen += 1;
        d.conn = Some(conn);
        // From now on it is counted under the address it came back from.
        d.addr = self.conns.get(&conn).and_then(|c| c.counted_ip());
        let uid = d.user;
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        let nick = u.nick.clone();
        let rooms: Vec<RoomName> = u.rooms.iter().cloned().collect();
        let put_out = self
            .devices
            .get_mut(&did)
            .map(Device::take_put_out)
            .unwrap_or_default();
        self.make_ready(conn, uid, did, now);
        self.stats.resumes_ok += 1;
        if let Some(id) = self.devices.get(&did).and_then(Device::key) {
            self.key_used(conn, id, now);
        }
        let token = self.issue_token(did);
        debug!(conn = %conn, %nick, rooms = rooms.len(), "resumed");
        self.welcome(conn, nick.clone(), token, true);
        let seen = hello.resume.as_ref().map_or(&[][..], |r| &r.rooms[..]);
        // Rooms the client thinks it is in but its user is not (freed while it was away, or put
        // out: then what put it out first). Only a room its user left while the device was away
        // replays anything: the client names the rooms, and one it never was in, or left
        // before it went, must tell it nothing (a guest taking a nick that once parted a room
        // read that room's history up to the part).
        for (room, after) in seen {
            if !rooms.contains(room) {
                if put_out.contains(room) && self.replay_until_out(conn, room, *after, &nick) {
                    // Its client heard who and why: not again from the words kept for a
                    // sign-in.
                    self.forget_put_out_away(uid, room);
                }
                let parted = crate::wire::ServerMsg::Parted { room: room.clone() };
                self.reply(conn, super::Reply::Msg(parted));
            }
        }
        for room in rooms {
            let Some(latest) = self.rooms.get(&room).map(|r| r.last_seq) else {
                continue;
            };
            if let Some(joined) = self.joined_msg(&room, latest) {
                self.reply(conn, super::Reply::Msg(joined));
            }
            // A big room's list is cut short, and its comings and goings while the client was
            // away went to nobody: its size now, as a joiner hears it.
            let quiet = self
                .rooms
                .get(&room)
                .is_some_and(|r| self.is_quiet(r.members.len()));
            self.size_to(conn, &room, quiet);
            let page = pages
                .iter()
                .position(|(r, _)| *r == room)
                .map(|at| pages.swap_remove(at).1);
            let seen_here = seen.iter().find(|(r, _)| *r == room);
            if let Some((_, after)) = seen_here {
                // What this connection is shown (or told it missed, as a `Gap`) starts after
                // what the client saw: an `Older` from 0 pages back from there, not from the
                // room's newest, which the replay has just shown it.
                self.scroll_from(conn, &room, (*after).min(latest).next());
            }
            match (seen_here, page) {
                (Some((_, after)), Some(page)) => {
                    self.replay_since_with(conn, &room, *after, page);
                }
                (Some((_, after)), None) => self.replay_since(conn, &room, *after),
                (None, _) => self.replay_recent(conn, &room, latest),
            }
        }
        // Its own away, as a sign-in says it: another device may have set or cleared it.
        self.tell_away_on_resume(conn, uid, did, took_over);
        // Rooms its account was put out of while nothing of it was connected that the replay
        // did not tell: as a sign-in tells them.
        self.tell_put_out_away(conn, uid);
        // Direct messages kept for its account while it was away, after what its rooms had.
        self.deliver_held(uid);
    }
}
