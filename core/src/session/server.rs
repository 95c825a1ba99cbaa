//! What a message from the server does to the session: the welcome (pacing by the server's
//! limits, resume or rejoin), joins and parts, room events once per seq, gaps and their
//! refill, scrollback and search answers, acknowledgements, and errors matched to the request
//! they answer.

use super::account::Refused;
use super::rooms::Entered;
use super::{About, ChatKind, ConnState, Event, Session, clean};
use crate::limits::{MAX_MEMBERS_LISTED, MAX_ROOMS_LISTED};
use crate::moderation::{MAX_BANS_PER_ROOM, MAX_OPS_PER_ROOM};
use crate::time::Millis;
use crate::types::{MsgId, Nick, ResumeToken, RoomName, Seq, Text};
use crate::wire::{
    ClientMsg, ErrorKind, EventKind, ModAction, NOTICE_VERSION, RE_ACCOUNT_VERSION, Re, RoomEvent,
    ServerMsg,
};

/// How many former nicks are kept while our lines wait for their echo (`Session::former_nicks`).
const MAX_FORMER_NICKS: usize = 4;

impl Session {
    pub(super) fn on_msg(&mut self, msg: ServerMsg, now: Millis) {
        match msg {
            ServerMsg::Welcome {
                version,
                nick,
                token,
                resumed,
                limits,
            } => {
                if !self.link.welcomed() {
                    tracing::debug!("second welcome ignored");
                    return;
                }
                // Pace by what this server enforces, not by compiled-in defaults.
                self.out.welcomed(&limits, now);
                self.handshake.limits = limits;
                self.handshake.version = Some(version);
                self.on_welcome(nick, token, resumed, now);
            }
            ServerMsg::Joined {
                room,
                topic,
                members,
                seq,
            } => self.on_joined(room, topic, members, seq),
            ServerMsg::Parted { room } => self.parted(room),
            ServerMsg::Event(ev) => self.on_room_event(ev),
            ServerMsg::Direct(dm) => {
                // Ours, or the account's from another of its devices (same nick, ids of its own).
                let mine = (dm.from.folded() == self.nick.folded()
                    && self.out.pending_is(dm.id, |m| {
                        matches!(m, ClientMsg::Msg { to, text, .. }
                            if to.folded() == dm.to.folded() && *text == dm.text)
                    }))
                .then_some(dm.id);
                self.event(Event::Direct(dm));
                if let Some(id) = mine {
                    self.settle(id, true);
                }
            }
            ServerMsg::DirectNotice(dm) => {
                // As a direct message: ours coming back is its acknowledgement.
                let mine = (dm.from.folded() == self.nick.folded()
                    && self.out.pending_is(dm.id, |m| {
                        matches!(m, ClientMsg::NoticeTo { to, text, .. }
                            if to.folded() == dm.to.folded() && *text == dm.text)
                    }))
                .then_some(dm.id);
                self.event(Event::DirectNotice(dm));
                if let Some(id) = mine {
                    self.settle(id, true);
                }
            }
            ServerMsg::Ack { id } => self.settle(id, true),
            ServerMsg::Gap { room, first, last } => {
                let Some(state) = self.rooms.get_mut(&room) else {
                    return;
                };
                // The first news of the room after a rejoin, like a first event: what lies
                // between what we saw before and it was missed too.
                if let Some((missed, ask)) = state.after_rejoin(first) {
                    self.gap_found(&room, missed, ask);
                }
                let Some(state) = self.rooms.get_mut(&room) else {
                    return;
                };
                let (missed, ask) = state.on_gap(first, last);
                self.gap_found(&room, missed, ask);
            }
            ServerMsg::Members { room, mut members } => {
                members.truncate(MAX_MEMBERS_LISTED);
                // The hub sends a member list only to answer a `who`: a typed one, or ours.
                let asked = !self.answers_quiet_who(&room);
                self.event(Event::Members {
                    room,
                    members,
                    asked,
                    as_of: None,
                });
            }
            ServerMsg::Rooms { mut rooms } => {
                rooms.truncate(MAX_ROOMS_LISTED);
                self.event(Event::Rooms(rooms));
            }
            ServerMsg::Topic { room, topic } => self.event(Event::Topic { room, topic }),
            ServerMsg::YourNick { nick } => self.set_nick(nick),
            ServerMsg::SignedIn {
                account,
                token,
                key,
            } => {
                if let Some(key) = key.clone().filter(|_| self.account.rekeys(&account)) {
                    // A password change's new key for this remembered device (the answer
                    // follows): kept, with the new resume token; nothing else changed.
                    self.handshake.token = Some(token);
                    self.account.rekeyed(key);
                    return;
                }
                // The session is the account's now: resume it, not the guest's.
                self.handshake.token = Some(token);
                self.handshake.signed_in_here = true;
                let held = self.account.holds_messages();
                let checked = self.account.signed_in_as(&account, key.as_ref());
                if checked {
                    self.info(format!(
                        "your registration of {account} went through before the connection \
                         dropped"
                    ));
                }
                self.event(Event::SignedIn { account, key });
                if held {
                    // The rooms asked for, then what was typed while the required sign-in was
                    // checked, go now, as the account.
                    for room in self.rooms.joining().to_vec() {
                        let msg = self.rooms.join_msg(room);
                        self.pace(msg);
                    }
                    for msg in self.out.resume(true, self.now) {
                        self.send(&msg);
                    }
                }
            }
            ServerMsg::ReadUpTo { room, seq } => {
                // An account's marker: shown only once we know we are signed in to it. One
                // before that reaches a resume the server had as the account's while we did
                // not hear so (its `SignedIn` lost with a connection): asking to sign in, the
                // answer is said again with every marker as it is then; asking nothing (signed
                // out meanwhile) or for another account, the marker is not ours to show.
                if self.account.signed_in().is_some() {
                    self.event(Event::ReadUpTo { room, seq });
                }
            }
            ServerMsg::Crowd {
                room,
                joined,
                left,
                members,
            } => {
                if self.rooms.get_mut(&room).is_none() {
                    tracing::debug!(%room, "a summary of a room we are not in");
                    return;
                }
                // People came or went uncounted by our list, and a list holds them all again.
                if (joined, left) != (0, 0)
                    && usize::try_from(members).is_ok_and(|m| m <= MAX_MEMBERS_LISTED)
                {
                    self.refresh_members(room.clone());
                }
                self.event(Event::Crowd {
                    room,
                    joined,
                    left,
                    members,
                });
            }
            ServerMsg::Motd { lines } => {
                let lines = lines
                    .iter()
                    .take(crate::hub::MAX_MOTD_LINES)
                    .map(|l| {
                        l.as_ref()
                            .map_or_else(String::new, |t| t.as_str().to_owned())
                    })
                    .collect();
                self.event(Event::Motd(lines));
            }
            ServerMsg::Wall { .. }
            | ServerMsg::ServerBans { .. }
            | ServerMsg::InviteSent { .. } => {
                // An admin's words, the answer to /gbans, an invitation sent: lines for people.
                for line in crate::render::reply_lines(&msg, Some(&self.nick), None) {
                    self.info(line.trim_start_matches("-- ").to_owned());
                }
            }
            ServerMsg::Done(words) => self.event(Event::Done(words.to_string())),
            ServerMsg::Whois { nick, user } => self.event(Event::Whois { nick, user }),
            ServerMsg::Devices { devices } => self.event(Event::Devices(devices)),
            // Someone's away: what member lists mark, and a line whose place a UI chooses
            // (beside the direct conversation with them, if any).
            ServerMsg::Away { nick, away } => self.event(Event::Away { nick, away }),
            ServerMsg::AwayHere { room, mut away } => {
                if self.rooms.get_mut(&room).is_none() {
                    tracing::debug!(%room, "who is away in a room we are not in");
                    return;
                }
                away.truncate(crate::limits::MAX_AWAY_PER_MSG);
                self.event(Event::AwayHere { room, away });
            }
            ServerMsg::Policy {
                room,
                founder,
                ops,
                voiced,
                modes,
            } => {
                let (mut ops, mut voiced) = (ops, voiced);
                ops.truncate(MAX_OPS_PER_ROOM);
                voiced.truncate(MAX_OPS_PER_ROOM);
                let asked = self.answers_typed(&room, &ModAction::Settings);
                self.event(Event::Policy {
                    room,
                    founder,
                    ops,
                    voiced,
                    modes: *modes,
                    asked,
                });
            }
            ServerMsg::BanList {
                room,
                mut bans,
                mut mutes,
            } => {
                bans.truncate(MAX_BANS_PER_ROOM);
                mutes.truncate(MAX_BANS_PER_ROOM);
                let asked = self.answers_typed(&room, &ModAction::Bans);
                self.event(Event::BanList {
                    room,
                    bans,
                    mutes,
                    asked,
                });
            }
            ServerMsg::Invited { room, by } => self.event(Event::Invited { room, by }),
            ServerMsg::PasswordChanged => {
                let remembered = self.account.password_changed();
                self.info(crate::render::password_changed_words(remembered));
            }
            ServerMsg::Error { kind, re, detail } => self.on_error(kind, re, &detail),
            ServerMsg::Ping { token } => self.send(&ClientMsg::Pong { token }),
            ServerMsg::Pong { token } => self.ponged(token),
            // Answers to scrollback and searches: gathered, handed on whole at their end.
            ServerMsg::Past(ev) => self.asks.past(ev),
            ServerMsg::PastEnd { room, at_start } => {
                let Some(events) = self.asks.past_end(&room) else {
                    tracing::debug!(%room, "the end of a page nobody asked for");
                    return;
                };
                let mut oldest = None;
                if let Some(state) = self.rooms.get_mut(&room) {
                    for ev in &events {
                        state.saw(ev.seq);
                    }
                    oldest = state.oldest;
                }
                self.event(Event::Past {
                    room,
                    events,
                    at_start,
                    oldest,
                });
            }
            ServerMsg::Found(ev) => self.asks.found(ev),
            ServerMsg::FoundEnd { count } => {
                let Some((query, hits)) = self.asks.found_end() else {
                    tracing::debug!("the end of a search nobody asked for");
                    return;
                };
                // A count past the hits sent: the server found more than it sends (it looks
                // one past its limit), so older matches were left out.
                let more = usize::try_from(count).is_ok_and(|n| n > hits.len());
                self.event(Event::Found {
                    room: query.room,
                    words: query.words,
                    hits,
                    more,
                });
                self.send_next_search();
            }
            // Before the welcome it is a refused attempt (a full server): said as why the
            // attempt failed, one line however many attempts it refuses.
            ServerMsg::Bye { reason } if !self.link.is_welcomed() => {
                self.lost(&clean(&reason), now)
            }
            // The close a sign-out asked for: `Event::SignedOut` said it; back as a guest now.
            ServerMsg::Bye { .. } if self.handshake.signed_out => {
                self.event(Event::Close);
                self.reconnect_as_asked(now);
            }
            ServerMsg::Bye { reason } => {
                // The server's words say why, in the one notice of the drop.
                self.info(crate::render::lost_words(&clean(&reason)));
                self.link.sent_away();
                self.lost("", now);
            }
        }
    }

    fn on_welcome(&mut self, nick: Nick, token: ResumeToken, resumed: bool, now: Millis) {
        // Nothing to resume without an earlier welcome: whatever the server says, start fresh.
        let resumed = resumed && self.handshake.ever_welcomed;
        let signed_out = core::mem::take(&mut self.handshake.signed_out);
        self.handshake.token = Some(token);
        self.handshake.resumed = resumed;
        self.handshake.signed_in_here = false;
        let asked = core::mem::replace(&mut self.nick, nick.clone());
        self.keep_former_nick(asked.clone());
        // Not a resume: a guest again. Signed in first, so the rooms come back as the account's.
        let sign_in = self.account.welcomed(resumed, &asked, &nick);
        self.event(Event::State(ConnState::Connected));
        self.event(Event::Welcome {
            nick: nick.clone(),
            resumed,
            signing_in: sign_in.as_ref().and(self.account.asked_for().cloned()),
        });
        if let Some(msg) = sign_in {
            self.pace_account(msg);
        } else if !resumed && asked.folded() != nick.folded() {
            // The server gave another nick than the one asked (someone has it, or it is an
            // account's) and says nothing of it: say why, and how to have it.
            self.info(crate::render::other_nick_words(&asked, &nick));
        }
        // A required sign-in first: joins wait for it too (sent once signed in), so a refused
        // one leaves no guest's join and quit in the rooms and their history.
        let join_now = !self.account.holds_messages();
        if resumed {
            // Rooms are kept; what was asked and not answered is asked again.
            let (parts, joins) = self.rooms.resumed();
            for room in parts {
                self.pace(ClientMsg::Part { room, reason: None });
            }
            for room in joins.into_iter().filter(|_| join_now) {
                let msg = self.rooms.join_msg(room);
                self.pace(msg);
            }
        } else {
            if self.handshake.ever_welcomed {
                self.info(if signed_out {
                    // On purpose: nothing was lost. That it signed out was said when it did
                    // ([`Event::SignedOut`]).
                    "rejoining your rooms as a guest"
                } else {
                    "could not resume the session: rejoining rooms; \
                     messages sent meanwhile may have been missed"
                });
            }
            // What the last session sent and had no answer to may have been taken by it: not
            // sent again, so that nothing is ever doubled (the rejoin's replay shows whether it
            // was).
            if self.handshake.ever_welcomed {
                for id in self.out.sent_pending() {
                    self.event(Event::Error {
                        kind: None,
                        about: About::Message(id),
                        text: "the session could not be resumed: this message may or may not \
                               have been delivered, and is not sent again"
                            .to_owned(),
                    });
                    self.settle(id, false);
                }
            }
            let (parted, want) = self.rooms.restarted();
            for room in parted {
                self.asks.drop_older(&room);
                self.event(Event::Parted {
                    room,
                    kicked: false,
                });
            }
            for room in want.into_iter().filter(|_| join_now) {
                let msg = self.rooms.join_msg(room);
                self.pace(msg);
            }
        }
        // Scrollback and searches in flight when the last link dropped are asked again.
        for msg in self.asks.requests() {
            self.pace(msg);
        }
        self.handshake.ever_welcomed = true;
        self.withdraw_notices();
        // A required sign-in first: nothing is said under a guest's name meanwhile.
        let speak = !self.account.holds_messages();
        for msg in self.out.resume(speak, now) {
            self.send(&msg);
        }
    }

    fn on_joined(&mut self, room: RoomName, topic: Option<Text>, mut members: Vec<Nick>, seq: Seq) {
        let big = members.len() >= MAX_MEMBERS_LISTED;
        members.truncate(MAX_MEMBERS_LISTED);
        let (resumed, quiet) = (self.handshake.resumed, self.handshake.signed_in_here);
        let entered = self.rooms.joined(&room, seq, resumed, quiet);
        if let Some(state) = self.rooms.get_mut(&room) {
            state.big = big;
        }
        match entered {
            // A resume or a rejoin: the member list is refreshed quietly.
            (Entered::Again, _) => self.event(Event::Members {
                room,
                members,
                asked: false,
                as_of: Some(seq),
            }),
            (Entered::New, asked) => {
                self.event(Event::Joined {
                    room: room.clone(),
                    topic,
                    members,
                    seq,
                });
                if asked {
                    self.event(Event::Focus(room));
                }
            }
            (Entered::Refused, _) => {
                tracing::warn!(%room, "joined more rooms than allowed; ignored");
            }
        }
    }

    fn on_room_event(&mut self, ev: RoomEvent) {
        let Some(state) = self.rooms.get_mut(&ev.room) else {
            tracing::debug!(room = %ev.room, "event for a room we are not in");
            return;
        };
        if let Some((missed, ask)) = state.after_rejoin(ev.seq) {
            self.gap_found(&ev.room, missed, ask);
        }
        let mine = self.said_as(&ev.from);
        let Some(state) = self.rooms.get_mut(&ev.room) else {
            return;
        };
        // Up to our join is history (a kick of someone who had our nick then is not ours).
        let live = ev.seq > state.joined;
        if !state.accept(ev.seq) || ev.kind == EventKind::Moved {
            // A member's session moving to another server takes its seq and shows nothing.
            return;
        }
        if !live
            && state.big
            && matches!(
                ev.kind,
                EventKind::Join | EventKind::Part { .. } | EventKind::Quit { .. }
            )
        {
            // A big room's comings and goings from when it was small (see `RoomSeqs::big`).
            return;
        }
        let said = match &ev.kind {
            EventKind::Say { id, text } => Some((ChatKind::Say, *id, text)),
            EventKind::Act { id, text } => Some((ChatKind::Act, *id, text)),
            EventKind::Notice { id, text } => Some((ChatKind::Notice, *id, text)),
            _ => None,
        };
        // Our echo, not the account's line from another of its devices (ids are per device).
        let acked = said
            .filter(|(kind, id, text)| {
                mine && self.out.pending_is(*id, |m| {
                    let (k, room, t) = match m {
                        ClientMsg::Say { room, text, .. } => (ChatKind::Say, room, text),
                        ClientMsg::Act { room, text, .. } => (ChatKind::Act, room, text),
                        ClientMsg::Notice { room, text, .. } => (ChatKind::Notice, room, text),
                        _ => return false,
                    };
                    k == *kind && *room == ev.room && t == *text
                })
            })
            .map(|(_, id, _)| id);
        if let EventKind::Kick { target, .. } = &ev.kind
            && live
            && target.folded() == self.nick.folded()
        {
            state.kicked = true;
        }
        // The line itself first, then the news that it settled (UIs swap a placeholder for it).
        self.event(Event::Room(ev));
        if let Some(id) = acked {
            self.settle(id, true);
        }
        // A rename event never changes our nick: the server tells each connection of a
        // renamed user its nick by `YourNick` (or its welcome). One from the nick we have may
        // be another's who had it before: with a store, room events wait for their commit
        // while `YourNick` does not, and a refill brings them later still, so a sign-in to an
        // account whose name a guest held hears its `YourNick` before "cat is now guest4081".
    }

    /// Shows a newly missed range and asks the server for what it still has.
    fn gap_found(&mut self, room: &RoomName, missed: Option<(Seq, Seq)>, ask: Option<Seq>) {
        if let Some((first, last)) = missed {
            self.event(Event::Gap {
                room: room.clone(),
                first,
                last,
            });
        }
        if let Some(from) = ask {
            // The server meters refills like commands: paced, so it never has to refuse one.
            self.pace(ClientMsg::History {
                room: room.clone(),
                after: Seq(from.0.saturating_sub(1)),
            });
        }
    }

    fn set_nick(&mut self, nick: Nick) {
        if nick != self.nick {
            let old = core::mem::replace(&mut self.nick, nick.clone());
            self.keep_former_nick(old);
            self.event(Event::Nick(nick));
        }
    }

    /// `old` was our nick until now: lines said under it may still come back
    /// (`Session::former_nicks`).
    fn keep_former_nick(&mut self, old: Nick) {
        if self.out.pending_count() == 0
            || old.folded() == self.nick.folded()
            || self.former_nicks.iter().any(|n| n.folded() == old.folded())
        {
            return;
        }
        if self.former_nicks.len() >= MAX_FORMER_NICKS {
            self.former_nicks.remove(0);
        }
        self.former_nicks.push(old);
    }

    /// Whether a line from `from` may be our own: our nick, or one we had while lines we said
    /// wait for their echo. (Its id, room and words must still be a pending line's.)
    fn said_as(&self, from: &Nick) -> bool {
        from.folded() == self.nick.folded()
            || self
                .former_nicks
                .iter()
                .any(|n| n.folded() == from.folded())
    }

    /// Forgets pending message `id`: acknowledged, or refused (not to be resent either).
    fn settle(&mut self, id: MsgId, delivered: bool) {
        if self.out.settle(id) {
            if self.out.pending_count() == 0 {
                self.former_nicks.clear();
            }
            self.event(Event::Settled { id, delivered });
        }
    }

    /// A server older than [`NOTICE_VERSION`] does not know notices: the ones typed before its
    /// welcome (or kept from a newer server's connection) are not sent but settled as refused,
    /// each with the reason.
    fn withdraw_notices(&mut self) {
        let Some(version) = self.handshake.version.filter(|v| *v < NOTICE_VERSION) else {
            return;
        };
        let notice =
            |m: &ClientMsg| matches!(m, ClientMsg::Notice { .. } | ClientMsg::NoticeTo { .. });
        for id in self.out.pending_where(notice) {
            self.event(Event::Error {
                kind: None,
                about: About::Message(id),
                text: super::input::too_old_for_notices(version),
            });
            self.settle(id, false);
        }
    }

    /// We left `room` (or learned we are not in it): its scrollback is not coming either.
    pub(super) fn parted(&mut self, room: RoomName) {
        self.asks.drop_older(&room);
        if let Some(kicked) = self.rooms.parted(&room) {
            self.event(Event::Parted { room, kicked });
        }
    }

    /// Sends the search that waited for the last one's answer, if any.
    fn send_next_search(&mut self) {
        if let Some(msg) = self.asks.search_msg() {
            self.pace(msg);
        }
    }

    fn on_error(&mut self, kind: ErrorKind, re: Re, detail: &str) {
        let re_conn = re == Re::Conn;
        // Naming a nick: a registration of it refused (`Unavailable`: not stored), not a busy
        // server (which names the connection).
        let named = matches!(re, Re::Nick(_));
        // Refused before the welcome (full, too slow, ...): the Bye that follows at once, with
        // the same words, ends the attempt and says why. Said here too, the two would alternate
        // in the conversation at every attempt instead of standing once.
        if re == Re::Conn
            && !self.link.is_welcomed()
            && matches!(
                kind,
                ErrorKind::Full | ErrorKind::Protocol | ErrorKind::Timeout | ErrorKind::TooSlow
            )
        {
            tracing::debug!(?kind, detail, "refused before the welcome");
            return;
        }
        // The server's own words for a resume it could not do: the welcome that follows says
        // it in the session's words ("could not resume the session: rejoining rooms; ..."),
        // which also say what happens next. Both shown, the person read the same news twice.
        if re_conn && kind == ErrorKind::ResumeFailed && self.handshake.ever_welcomed {
            tracing::debug!(detail, "resume refused; the welcome says so");
            return;
        }
        // Not signed in while we are, asked nothing: the operator removed the account, or
        // another device forgot this one. The session goes on as the guest the server now has
        // (its credentials and key are no longer any use), as after a sign-out; unless it is
        // the account's only ([`Session::require_sign_in`]): then it ends, as a refused
        // sign-in ends it, so that nothing is said under a guest's name.
        if re_conn
            && kind == ErrorKind::NotSignedIn
            && self.account.signed_in().is_some()
            && !self.account.is_asking()
        {
            let required = self.account.is_required();
            self.account.sign_out();
            self.event(Event::Error {
                kind: Some(kind),
                about: About::Account,
                text: clean(detail),
            });
            self.event(Event::SignedOut);
            if required {
                self.send(&ClientMsg::Quit { reason: None });
                self.close_for_good(Some(format!("signed out by the server: {}", clean(detail))));
            }
            return;
        }
        let about = match re {
            // A search is the one request naming no room that the server may be unable to
            // answer now, or refuse as too fast (we pace, so it should not).
            Re::Conn
                if matches!(kind, ErrorKind::Unavailable | ErrorKind::Flood)
                    && self.asks.searching() =>
            {
                About::Search
            }
            // An account request refused as too fast, said so (version 14 on).
            Re::Account => About::Account,
            // Account requests name nothing, or the account (a sign-in refused or throttled).
            // A flood refusal naming nothing, from a server that names an account request's
            // (version 14 on), refused another command: not the sign-in's answer, which is
            // still to come.
            Re::Conn
                if self.account.answers(kind)
                    && !(kind == ErrorKind::Flood
                        && self
                            .handshake
                            .version
                            .is_some_and(|v| v >= RE_ACCOUNT_VERSION)) =>
            {
                About::Account
            }
            // A server admin's action names no room: its refusal answers something typed
            // (said each time, not once while it stays the same).
            Re::Conn
                if matches!(
                    kind,
                    ErrorKind::NotOperator
                        | ErrorKind::Invalid
                        | ErrorKind::NoSuchNick
                        | ErrorKind::NotInRoom
                ) =>
            {
                About::Input
            }
            Re::Nick(ref nick) if self.account.answers_about(kind, nick) => About::Account,
            Re::Conn => About::Session,
            Re::Msg(id) => About::Message(id),
            Re::Room(room) => self.room_refusal(kind, room),
            Re::Nick(nick) => About::Nick(nick),
        };
        // A refused account request is said as what it refused (`could not sign in: wrong
        // account name or password`): the server's words alone do not say which request they
        // answer, and the category ("account") is not words a person reads.
        // A busy server's answer is not a refusal: the request is asked again by itself
        // (said next), so it is not said as one that could not be done.
        let what = (about == About::Account).then(|| self.account_request_words());
        let checking = self
            .account
            .checking_registration()
            .filter(|_| about == About::Account)
            .cloned();
        let checked = checking.clone().filter(|_| kind == ErrorKind::SignInFailed);
        // The check refused as throttled or too fast: no verdict on the registration, and
        // given up as any password sign-in so refused (not sent again behind the person's
        // back). Not "could not sign in" to someone who asked to register: what is not known,
        // and how to find out.
        let unchecked = checking
            .filter(|_| matches!(kind, ErrorKind::Throttled | ErrorKind::Flood))
            .map(|nick| {
                let then = match kind {
                    ErrorKind::Flood => "in a moment",
                    _ => "after the wait",
                };
                format!(
                    "could not find out whether your registration of {nick} went through: the \
                     connection dropped before the server answered it, and the server refused \
                     the sign-in that checks it ({}); {then}, signing in as {nick} \
                     (/login {nick} PASSWORD) tells whether it did",
                    clean(detail)
                )
            });
        let refused =
            (about == About::Account).then(|| self.account.refused(kind, named, self.now));
        if about == About::Account {
            self.refusal_detail = Some(clean(detail));
        }
        let text = match (what, &refused) {
            // The sign-in that checked a registration whose answer a drop lost: not made.
            _ if let Some(nick) = &checked => format!(
                "your registration of {nick} did not go through: the connection dropped \
                 before the server answered, and the server has no account {nick} with that \
                 password (/register again)"
            ),
            (_, Some(Refused::Later)) => clean(detail),
            _ if let Some(text) = &unchecked => text.clone(),
            // Too fast: not a verdict on the request, which may be asked again at once.
            (Some(Some(what)), _) if kind == ErrorKind::Flood => {
                format!("could not {what}: {}; try again in a moment", clean(detail))
            }
            (Some(Some(what)), _) => format!("could not {what}: {}", clean(detail)),
            _ => clean(detail),
        };
        self.event(Event::Error {
            kind: Some(kind),
            about: about.clone(),
            text: text.clone(),
        });
        match about {
            // Refused: it will not be delivered, so it is not resent either.
            About::Message(id) => self.settle(id, false),
            About::Search => {
                self.asks.search_failed();
                self.send_next_search();
            }
            About::Account => {
                let refused = refused.unwrap_or(Refused::Done);
                if let Refused::Retry(msg) = refused {
                    self.info("the device key was refused; signing in with the password");
                    // Perhaps asking for a new key: with the device's label first.
                    self.pace_account(msg);
                } else if let Refused::Later = refused {
                    if let Some(at) = self.account.retry_at() {
                        let secs = (at - self.now).0.div_ceil(1000);
                        self.info(format!("the server is busy: asking again in {secs} s"));
                    }
                } else if self.account.required_and_refused() {
                    // Not to go on under another name than the one asked for; a quit, so the
                    // guest it was does not wait on the server for a resume.
                    self.send(&ClientMsg::Quit { reason: None });
                    let why = match what.flatten() {
                        Some(_) => text,
                        None => format!("could not sign in: {}", clean(detail)),
                    };
                    self.close_for_good(Some(why));
                }
            }
            _ => {}
        }
        // Banned from the server (at the hello, at a sign-in, or put out by an admin): every
        // attempt would be refused the same way, so the session ends with the reason instead
        // of saying it again at each retry, for ever.
        if kind == ErrorKind::Version || (kind == ErrorKind::Banned && re_conn) {
            self.close_for_good(Some(clean(detail)));
        }
    }

    /// The account request waiting for its answer, as what it does (`sign in`), if one is.
    fn account_request_words(&self) -> Option<&'static str> {
        if !self.account.is_asking() {
            None
        } else if self.account.is_registering() {
            Some("register")
        } else if self.account.is_signing_in_with_key() {
            // The server says "wrong account name or password" to a key it does not take: not
            // what a person who typed no password should read alone.
            Some("sign in with this device's key")
        } else if self.account.is_changing_password() {
            Some("change your password")
        } else {
            Some("sign in")
        }
    }

    /// Which request about `room` an error answers, from what is in flight for it: a part the
    /// server says we are not there for, a refused join, a refused part, or something else
    /// (topic, who). The join or part is no longer waited for.
    fn room_refusal(&mut self, kind: ErrorKind, room: RoomName) -> About {
        if kind == ErrorKind::Muted && self.rooms.is_in(&room) {
            // Not a refusal: the server telling a joiner it may not speak there.
            return About::Room(room);
        }
        let parting = self.rooms.is_parting(&room);
        // "Cannot answer now" is never about a join or a part.
        let history = kind == ErrorKind::Unavailable;
        if kind == ErrorKind::NotInRoom && parting {
            // Not there: as good as parted.
            self.parted(room.clone());
            About::Part(room)
        } else if !history && kind != ErrorKind::NotInRoom && self.rooms.is_joining(&room) {
            self.rooms.join_refused(&room);
            if self.rooms.is_in(&room) {
                // A rejoin (after a failed resume, or a sign-out) the room refused: we are not
                // in it any more. Not of our accord: the refusal says why, no "you left".
                self.asks.drop_older(&room);
                self.rooms.parted(&room);
                self.event(Event::Parted {
                    room: room.clone(),
                    kicked: true,
                });
            }
            About::Join(room)
        } else if !history && parting {
            self.rooms.part_dropped(&room);
            About::Part(room)
        } else if self.asks.drop_older(&room) {
            About::Older(room)
        } else if self.asks.search_in(&room) {
            About::Search
        } else {
            About::Room(room)
        }
    }
}
