//! What a typed line does to the session: parsed by [`crate::command::parse`], then a message
//! with an id, a paced command, or a command kept for the welcome. Where a line that names no
//! room goes is the caller's to say (the conversation it was typed in); without one, the
//! session's default room.

use super::asks::{Query, SearchStart};
use super::{About, ChatKind, Event, Session, Target};
use crate::command::{self, Command, Input};
use crate::limits::{HISTORY_LINES_DEFAULT, MAX_ROOMS_PER_USER};
use crate::render::count;
use crate::types::{DeviceLabel, MsgId, Nick, RoomName, Seq, Text};
use crate::wire::{
    AWAY_VERSION, ClientMsg, DEVICE_LABEL_VERSION, DEVICES_VERSION, DirectMsg, NOTICE_VERSION,
    Proof, TOPIC_CLEAR_VERSION, WHOIS_VERSION,
};

/// What a command that needs a room does in one, and what to type for it in a direct
/// conversation (where it would otherwise go to the room open there).
type InRoom = (&'static str, &'static str);
const TALK: InRoom = ("talk", "open a room to talk in it");
const LEAVE: InRoom = ("leave", "to leave a room, name it: /part #room");
// `/me` names no room (in a direct conversation it is a direct action).
const ACT: InRoom = ("act", "/me is for rooms: open one to act in it");
const WHO: InRoom = (
    "list members",
    "to list a room's members, name it: /who #room",
);
const TOPIC: InRoom = (
    "see the topic",
    "to see a room's topic, name it: /topic #room",
);
// Setting or clearing one says so (`/topic text` in a direct conversation was told how to see
// a topic until the thirty-first session).
const SET_TOPIC: InRoom = (
    "set the topic",
    "only a room has a topic; to set one, name it: /topic #room text",
);
const CLEAR_TOPIC: InRoom = (
    "clear the topic",
    "only a room has a topic; to clear one, name it: /topic #room -delete",
);
const HISTORY: InRoom = (
    "see its history",
    "to see a room's older lines, name it: /history #room",
);
const MODERATE: InRoom = (
    "moderate",
    "name the room after the command, as in /kick #room nick",
);

impl Session {
    /// A line typed by a client without a chat model (a script, a test): chat for the session's
    /// default room (the room last joined on request, else the first room it is in), or a
    /// `/command`. A UI uses [`Session::handle_input_in`].
    pub fn handle_input(&mut self, line: &str, now: crate::Millis) {
        self.handle_input_in(line, None, now);
    }

    /// A line typed in the conversation `to` (a room or a direct conversation, as the UI shows
    /// it; `None`: the session's default room): chat goes there, and a command that names no
    /// room means its room. Problems come back as [`Event::Error`] about [`About::Input`].
    pub fn handle_input_in(&mut self, line: &str, to: Option<&Target>, now: crate::Millis) {
        self.tick(now);
        if self.link.phase() == super::link::Phase::Closed {
            self.error(About::Input, "the session is closed");
            return;
        }
        self.unsettle_barrier();
        let input = match command::parse(line) {
            Ok(Some(input)) => input,
            Ok(None) => return,
            // The parser may quote what was typed: nothing a terminal acts on goes back.
            Err(e) => return self.error(About::Input, super::clean(&e.to_string())),
        };
        match input {
            Input::Say(text) if !self.text_fits(&text) => {}
            Input::Say(text) => match to {
                Some(Target::Nick(peer)) => {
                    let to = peer.clone();
                    self.queue_msg(|id| ClientMsg::Msg { to, id, text });
                }
                _ => {
                    if let Some(room) = self.room_named(None, to, TALK) {
                        self.queue_msg(|id| ClientMsg::Say { room, id, text });
                    }
                }
            },
            Input::Command(cmd) => {
                // Commands whose answer nothing else waits for: messages have their echo,
                // joins, parts, scrollback, searches and sign-ins their own tracking.
                self.commanded |= matches!(
                    cmd,
                    Command::Nick(_)
                        | Command::Who(_)
                        | Command::Whois(_)
                        | Command::Rooms
                        | Command::Topic { .. }
                        | Command::ClearTopic(_)
                        | Command::Away(_)
                        | Command::Logout
                        | Command::Devices
                        | Command::ForgetDevice(_)
                        | Command::NameDevice(..)
                        | Command::ChangePassword { .. }
                        | Command::Admin(_)
                        | Command::Moderate { .. }
                );
                self.command(cmd, to);
            }
        }
    }

    /// The room a command means: the one it names, else the one it was typed in, else the
    /// default room. `None` (and the user told) when there is none. `what` is what the command
    /// does in a room, `instead` what to type for it in a direct conversation.
    fn room_named(
        &mut self,
        named: Option<RoomName>,
        to: Option<&Target>,
        (what, instead): (&str, &str),
    ) -> Option<RoomName> {
        let room = match (named, to) {
            (Some(room), _) => Some(room),
            (None, Some(Target::Room(room))) => Some(room.clone()),
            (None, Some(Target::Nick(peer))) => {
                self.error(
                    About::Input,
                    format!("this is a direct conversation with {peer}, not a room; {instead}"),
                );
                return None;
            }
            (None, None) => self.rooms.default_room().cloned(),
        };
        if room.is_none() {
            let words = match self.rooms.refused() {
                Some(r) => format!("not done: you could not join {r}; /join a room to {what} in"),
                None => "join a room first (/join #room)".to_owned(),
            };
            self.error(About::Input, words);
        }
        room
    }

    fn command(&mut self, cmd: Command, to: Option<&Target>) {
        match cmd {
            Command::Nick(nick) => self.send_or_defer(ClientMsg::Nick { nick }),
            Command::Join(room) => self.join(room),
            Command::JoinMany(rooms) => {
                for room in rooms {
                    self.join(room);
                }
            }
            Command::Part { room, reason } => {
                if let Some(room) = self.room_named(room, to, LEAVE) {
                    self.part(room, reason);
                }
            }
            Command::PartMany { rooms, reason } => {
                for room in rooms {
                    self.part(room, reason.clone());
                }
            }
            Command::Msg { to, text } => {
                if self.text_fits(&text) {
                    self.queue_msg(|id| ClientMsg::Msg { to, id, text });
                }
            }
            Command::SayIn { room, text } => {
                if self.text_fits(&text) {
                    self.queue_msg(|id| ClientMsg::Say { room, id, text });
                }
            }
            Command::Notice { .. } | Command::NoticeTo { .. } if !self.server_takes_notices() => {}
            Command::Notice { text, .. } | Command::NoticeTo { text, .. }
                if !self.text_fits(&text) => {}
            Command::Notice { room, text } => {
                self.queue_msg(|id| ClientMsg::Notice { room, id, text });
            }
            Command::NoticeTo { to, text } => {
                self.queue_msg(|id| ClientMsg::NoticeTo { to, id, text });
            }
            Command::Me(text) if !self.text_fits(&text) => {}
            // In a direct conversation: a direct action, which the protocol carries as a direct
            // message `* me action` (`DirectMsg::action`).
            Command::Me(text) if matches!(to, Some(Target::Nick(_))) => {
                let Some(Target::Nick(peer)) = to else {
                    return;
                };
                let Ok(text) =
                    Text::new(&DirectMsg::action_text(self.nick.as_str(), text.as_str()))
                else {
                    return;
                };
                if self.text_fits(&text) {
                    let to = peer.clone();
                    self.queue_msg(|id| ClientMsg::Msg { to, id, text });
                }
            }
            Command::Me(text) => {
                if let Some(room) = self.room_named(None, to, ACT) {
                    self.queue_msg(|id| ClientMsg::Act { room, id, text });
                }
            }
            Command::Who(room) => {
                if let Some(room) = self.room_named(room, to, WHO) {
                    self.send_or_defer(ClientMsg::Who { room });
                }
            }
            Command::Whois(nick) => self.whois(nick),
            Command::Devices => self.devices(ClientMsg::Devices),
            Command::ForgetDevice(id) => self.devices(ClientMsg::ForgetDevice { id }),
            Command::NameDevice(id, label) => self.name_device(id, label),
            Command::Rooms => self.send_or_defer(ClientMsg::Rooms),
            Command::Topic { room, topic } => {
                let about = if topic.is_some() { SET_TOPIC } else { TOPIC };
                if let Some(room) = self.room_named(room, to, about) {
                    self.send_or_defer(ClientMsg::Topic { room, topic });
                }
            }
            Command::ClearTopic(room) => {
                if let Some(room) = self.room_named(room, to, CLEAR_TOPIC) {
                    self.clear_topic(room);
                }
            }
            Command::Away(away) => self.away(away),
            Command::Quit(reason) => {
                self.send(&ClientMsg::Quit { reason });
                self.close_for_good(None);
            }
            Command::History { room, count } => {
                if let Some(room) = self.room_named(room, to, HISTORY) {
                    // Below the oldest event shown so far (the server's own idea of that when
                    // nothing was shown yet).
                    let before = self
                        .rooms
                        .get(&room)
                        .and_then(|r| r.oldest)
                        .unwrap_or(Seq(0));
                    let limit = count.unwrap_or(HISTORY_LINES_DEFAULT);
                    self.ask_older(room, before, limit);
                }
            }
            Command::Search { room, words } => self.ask_search(room, words),
            // Typed credentials are kept like given ones, to sign in again after a restart.
            Command::Register(password) => {
                let msg = self
                    .account
                    .register(self.nick.clone(), password, self.remember);
                self.send_account(msg);
            }
            Command::Login { account, password } => {
                let msg = self
                    .account
                    .sign_in(account, Proof::Password(password), self.remember);
                self.send_account(msg);
            }
            Command::Logout => self.sign_out(self.now),
            // One change at a time: a second typed before the first's answer (before the
            // sign-in was through, or while signed in) got the first change's key with the
            // second's password, or its answer taken for the first's. The person types it
            // again once the first is answered (said, either way).
            Command::ChangePassword { .. } if self.account.change_in_flight() => {
                self.error(
                    About::Input,
                    "a password change is already on its way: wait for the server's answer to \
                     it, then change it again",
                );
            }
            Command::ChangePassword { old, new } => {
                self.account.change_password(&new);
                self.send_or_defer(ClientMsg::ChangePassword { old, new });
            }
            Command::JoinKey { room, key } => self.join_keyed(room, Some(key)),
            Command::Admin(action) => self.send_or_defer(ClientMsg::Admin(action)),
            Command::Moderate { room, action } => {
                if let Some(room) = self.room_named(room, to, MODERATE) {
                    self.typed_ask(&room, &action);
                    self.send_or_defer(ClientMsg::Moderate { room, action });
                }
            }
            Command::Help(only) => {
                for line in command::help_lines(only) {
                    self.info(line);
                }
            }
        }
    }

    /// Scrollback: see [`Session::older`].
    pub(super) fn ask_older(&mut self, room: RoomName, before: Seq, limit: u16) {
        if self.link.phase() == super::link::Phase::Closed {
            self.error(About::Older(room), "the session is closed");
            return;
        }
        if !self.rooms.is_in(&room) {
            let text = format!("you are not in {room}");
            self.error(About::Older(room), text);
            return;
        }
        if !self.asks.ask_older(room.clone(), before, limit) {
            // One page per room: the one on its way serves.
            return;
        }
        self.event(Event::Older { room: room.clone() });
        if let Some(msg) = self.asks.older_msg(&room)
            && !self.pace(msg)
        {
            self.asks.drop_older(&room);
            self.error(About::Older(room), "too much is waiting to be sent");
        }
    }

    /// A search: see [`Session::search`].
    pub(super) fn ask_search(&mut self, room: Option<RoomName>, words: Text) {
        if self.link.phase() == super::link::Phase::Closed {
            self.error(About::Search, "the session is closed");
            return;
        }
        let query = Query { room, words };
        // Said as asked first, so that a refusal (here or below) is shown where the results
        // would have been (the page's search panel, the TUI's results), not only in the
        // conversation behind them.
        self.event(Event::Search {
            room: query.room.clone(),
            words: query.words.clone(),
        });
        if let Some(r) = query.room.as_ref().filter(|r| !self.rooms.is_in(r)) {
            let text = format!("you are not in {r}");
            self.error(About::Search, text);
            return;
        }
        if self.asks.ask_search(query) == SearchStart::Now
            && let Some(msg) = self.asks.search_msg()
            && !self.pace(msg)
        {
            self.asks.search_failed();
            self.error(About::Search, "too much is waiting to be sent");
        }
    }

    fn join(&mut self, room: RoomName) {
        self.join_keyed(room, None);
    }

    /// A join asked for, with the room's key if one was typed (`/join #room KEY`): the same
    /// join as any other (the room opens once joined, input that names no room follows it, a
    /// refusal leaves that input nowhere), the key given again whenever the room is rejoined.
    fn join_keyed(&mut self, room: RoomName, key: Option<Text>) {
        let leaving = self.rooms.is_parting(&room);
        if self.rooms.is_in(&room) && !leaving {
            // Already in it: `/join` just asks to show it.
            self.rooms.choose(&room);
            self.event(Event::Focus(room));
            return;
        }
        if self.rooms.is_joining(&room) {
            if let Some(key) = key {
                self.rooms.set_key(&room, key);
            }
            self.rooms.join_asked(room, true);
            return;
        }
        let max = self.max_rooms();
        if !self.rooms.room_for(max, leaving) {
            self.error(
                About::Join(room),
                format!(
                    "you can be in at most {}; /part one first",
                    count(max as u64, "room")
                ),
            );
            return;
        }
        if let Some(key) = key {
            self.rooms.set_key(&room, key);
        }
        self.rooms.join_asked(room.clone(), true);
        if self.account.holds_messages() && self.link.is_welcomed() {
            // Sent with the others once the required sign-in is done (never as a guest).
            return;
        }
        // Before the welcome, the join is sent with the others when it comes.
        let msg = self.rooms.join_msg(room);
        self.pace(msg);
    }

    fn part(&mut self, room: RoomName, reason: Option<Text>) {
        if !self.rooms.is_in(&room) {
            if self.rooms.is_joining(&room) && !self.link.is_welcomed() {
                // Not asked yet: just don't.
                self.rooms.join_dropped(&room);
            } else {
                self.error(About::Part(room.clone()), format!("you are not in {room}"));
            }
            return;
        }
        if !self.link.is_welcomed() {
            self.error(
                About::Part(room.clone()),
                format!("not connected; /part {room} again once connected"),
            );
            return;
        }
        self.rooms.part_asked(room.clone());
        self.pace(ClientMsg::Part { room, reason });
    }

    /// Rooms the server lets one user be in: what it announced, within our own bound.
    fn max_rooms(&self) -> usize {
        let announced =
            usize::try_from(self.handshake.limits.max_rooms_per_user).unwrap_or(usize::MAX);
        announced.clamp(1, MAX_ROOMS_PER_USER)
    }

    /// Whether the server takes a text this long (what it announced; our own `Text` bound
    /// applies anyway). Says so when not.
    fn text_fits(&mut self, text: &Text) -> bool {
        let max = usize::try_from(self.handshake.limits.max_text_bytes).unwrap_or(usize::MAX);
        if text.as_str().len() <= max.max(1) {
            return true;
        }
        self.error(
            About::Input,
            format!(
                "that message is {} bytes long; this server takes at most {max}",
                text.as_str().len()
            ),
        );
        false
    }

    /// Whether the server takes notices: it said a version that knows them in its last welcome
    /// (none yet: the notice waits, and the welcome checks it). Says so when not.
    fn server_takes_notices(&mut self) -> bool {
        match self.handshake.version {
            Some(v) if v < NOTICE_VERSION => {
                self.error(About::Input, too_old_for_notices(v));
                false
            }
            _ => true,
        }
    }

    /// `/away [text]`, `/back`: its answer ([`crate::wire::ServerMsg::Away`]) is the
    /// confirmation. Not kept for a welcome: the server's version is not known before it.
    fn away(&mut self, away: Option<Text>) {
        self.versioned(ClientMsg::Away(away), AWAY_VERSION, "/away", "for /away");
    }

    /// `/topic -delete`.
    fn clear_topic(&mut self, room: RoomName) {
        let msg = ClientMsg::ClearTopic { room };
        let too_old = "to clear a topic";
        self.versioned_as(
            msg,
            TOPIC_CLEAR_VERSION,
            "/topic -delete",
            too_old,
            "clearing",
        );
    }

    /// `/devices` and `/devices forget ID`.
    pub(super) fn devices(&mut self, msg: ClientMsg) {
        self.versioned(msg, DEVICES_VERSION, "/devices", "for /devices");
    }

    /// `/devices name ID LABEL`.
    fn name_device(&mut self, id: u32, label: DeviceLabel) {
        let msg = ClientMsg::NameDevice { id, label };
        let too_old = "to name devices";
        self.versioned_as(
            msg,
            DEVICE_LABEL_VERSION,
            "/devices",
            too_old,
            "/devices name",
        );
    }

    /// `/whois nick`.
    fn whois(&mut self, nick: Nick) {
        self.versioned(
            ClientMsg::Whois { nick },
            WHOIS_VERSION,
            "/whois",
            "for /whois",
        );
    }

    /// Sends `msg`, which a server decodes from protocol `needs` on (an older one would close
    /// the connection on it): refused in words to an older server, and while not connected (the
    /// server's version is not known yet). `typed` is the command as the user types it (`/away`),
    /// `too_old` what an older server is too old for (`for /away`).
    fn versioned(&mut self, msg: ClientMsg, needs: u16, typed: &str, too_old: &str) {
        self.versioned_as(msg, needs, typed, too_old, typed);
    }

    /// [`Self::versioned`], the refusal naming `what` as what needs the version (`clearing`).
    fn versioned_as(&mut self, msg: ClientMsg, needs: u16, typed: &str, too_old: &str, what: &str) {
        if !self.link.is_welcomed() {
            return self.error(
                About::Input,
                format!("not connected; {typed} again once connected"),
            );
        }
        match self.handshake.version {
            Some(v) if v < needs => self.error(
                About::Input,
                format!(
                    "this server is too old {too_old}: it speaks natter protocol version {v}, \
                     and {what} needs version {needs}"
                ),
            ),
            _ => {
                self.pace(msg);
            }
        }
    }

    /// Gives a message the next id and keeps it until acknowledged; sends it now if welcomed.
    fn queue_msg(&mut self, make: impl FnOnce(MsgId) -> ClientMsg) {
        let (id, queued) = match self.out.add_message(make) {
            Ok((id, msg)) => {
                let queued = match msg {
                    ClientMsg::Say { room, text, .. } => {
                        Some((Target::Room(room.clone()), ChatKind::Say, text.clone()))
                    }
                    ClientMsg::Act { room, text, .. } => {
                        Some((Target::Room(room.clone()), ChatKind::Act, text.clone()))
                    }
                    ClientMsg::Notice { room, text, .. } => {
                        Some((Target::Room(room.clone()), ChatKind::Notice, text.clone()))
                    }
                    ClientMsg::Msg { to, text, .. } => {
                        // A direct action waits as the action it is.
                        let act = DirectMsg::action_in(&self.nick, text.as_str())
                            .and_then(|r| Text::new(r).ok());
                        match act {
                            Some(act) => Some((Target::Nick(to.clone()), ChatKind::Act, act)),
                            None => Some((Target::Nick(to.clone()), ChatKind::Say, text.clone())),
                        }
                    }
                    ClientMsg::NoticeTo { to, text, .. } => {
                        Some((Target::Nick(to.clone()), ChatKind::Notice, text.clone()))
                    }
                    _ => None,
                };
                (id, queued)
            }
            Err(why) => return self.queue_full(why),
        };
        if let Some((to, kind, text)) = queued {
            self.event(Event::Queued { id, to, kind, text });
        }
        if self.link.is_welcomed()
            && !self.account.holds_messages()
            && let Some(msg) = self.out.pace_message(id, self.now)
        {
            self.send(&msg);
        }
    }

    /// Sends a command now if welcomed, else keeps it for the welcome.
    pub(super) fn send_or_defer(&mut self, msg: ClientMsg) {
        if self.link.is_welcomed() {
            self.pace(msg);
        } else if let Err(why) = self.out.defer(msg) {
            self.queue_full(why);
        }
    }
}

/// Why a notice is not sent to a server that said protocol `version` (older than
/// [`NOTICE_VERSION`]): it would not know the message, and close the connection.
pub(super) fn too_old_for_notices(version: u16) -> String {
    format!(
        "this server is too old for notices: it speaks natter protocol version {version}, \
         and /notice needs version {NOTICE_VERSION}"
    )
}
