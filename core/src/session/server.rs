//! What a message from the server does to the session: the welcome (pacing by the server's
//! limits, resume or rejoin), joins and parts, room events once per seq, gaps and their
//! refill, acknowledgements, and errors matched to the request they answer.

use super::rooms::Entered;
use super::{About, ConnState, Event, Session, clean};
use crate::limits::{MAX_MEMBERS_LISTED, MAX_ROOMS_LISTED};
use crate::time::Millis;
use crate::types::{MsgId, Nick, ResumeToken, RoomName, Seq, Text};
use crate::wire::{ClientMsg, ErrorKind, EventKind, Re, RoomEvent, ServerMsg};

impl Session {
    pub(super) fn on_msg(&mut self, msg: ServerMsg, now: Millis) {
        match msg {
            ServerMsg::Welcome {
                version: _,
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
                self.on_welcome(nick, token, resumed, now);
            }
            ServerMsg::Joined {
                room,
                topic,
                members,
                seq,
            } => self.on_joined(room, topic, members, seq),
            ServerMsg::Parted { room } => {
                if self.rooms.parted(&room) {
                    self.event(Event::Parted { room });
                }
            }
            ServerMsg::Event(ev) => self.on_room_event(ev),
            ServerMsg::Direct(dm) => {
                let mine = (dm.from.folded() == self.nick.folded()).then_some(dm.id);
                self.event(Event::Direct(dm));
                if let Some(id) = mine {
                    self.settle(id, true);
                }
            }
            ServerMsg::Ack { id } => self.settle(id, true),
            ServerMsg::Gap { room, first, last } => {
                let Some(state) = self.rooms.get_mut(&room) else {
                    return;
                };
                let (missed, ask) = state.on_gap(first, last);
                self.gap_found(&room, missed, ask);
            }
            ServerMsg::Members { room, mut members } => {
                members.truncate(MAX_MEMBERS_LISTED);
                // The hub sends a member list only to answer a `who`.
                self.event(Event::Members {
                    room,
                    members,
                    asked: true,
                });
            }
            ServerMsg::Rooms { mut rooms } => {
                rooms.truncate(MAX_ROOMS_LISTED);
                self.event(Event::Rooms(rooms));
            }
            ServerMsg::Topic { room, topic } => self.event(Event::Topic { room, topic }),
            ServerMsg::YourNick { nick } => self.set_nick(nick),
            ServerMsg::Error { kind, re, detail } => self.on_error(kind, re, &detail),
            ServerMsg::Ping { token } => self.send(&ClientMsg::Pong { token }),
            ServerMsg::Pong { .. } => {}
            // Scrollback and search answers, shown as words until the chat model has lines for
            // them.
            msg @ (ServerMsg::Past(_)
            | ServerMsg::PastEnd { .. }
            | ServerMsg::Found(_)
            | ServerMsg::FoundEnd { .. }) => {
                for line in crate::render::reply_lines(&msg, Some(&self.nick), None) {
                    self.info(line);
                }
            }
            ServerMsg::Bye { reason } => {
                // The server's words say why; no second notice.
                self.info(clean(&reason));
                self.lost("", now);
            }
        }
    }

    fn on_welcome(&mut self, nick: Nick, token: ResumeToken, resumed: bool, now: Millis) {
        // Nothing to resume without an earlier welcome: whatever the server says, start fresh.
        let resumed = resumed && self.handshake.ever_welcomed;
        self.handshake.token = Some(token);
        self.handshake.resumed = resumed;
        self.nick = nick.clone();
        self.event(Event::State(ConnState::Connected));
        self.event(Event::Welcome { nick, resumed });
        if resumed {
            // Rooms are kept; what was asked and not answered is asked again.
            let (parts, joins) = self.rooms.resumed();
            for room in parts {
                self.pace(ClientMsg::Part { room, reason: None });
            }
            for room in joins {
                self.pace(ClientMsg::Join { room });
            }
        } else {
            if self.handshake.ever_welcomed {
                self.info(
                    "could not resume the session: rejoining rooms; \
                     messages sent meanwhile may have been missed",
                );
            }
            let (parted, want) = self.rooms.restarted();
            for room in parted {
                self.event(Event::Parted { room });
            }
            for room in want {
                self.pace(ClientMsg::Join { room });
            }
        }
        self.handshake.ever_welcomed = true;
        for msg in self.out.resume(now) {
            self.send(&msg);
        }
    }

    fn on_joined(&mut self, room: RoomName, topic: Option<Text>, mut members: Vec<Nick>, seq: Seq) {
        members.truncate(MAX_MEMBERS_LISTED);
        match self.rooms.joined(&room, seq, self.handshake.resumed) {
            // A resume or a rejoin: the member list is refreshed quietly.
            (Entered::Again, _) => self.event(Event::Members {
                room,
                members,
                asked: false,
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
        let Some(state) = self.rooms.get_mut(&ev.room) else {
            return;
        };
        if !state.accept(ev.seq) {
            return;
        }
        let mine = ev.from.folded() == self.nick.folded();
        let (acked, new_nick) = match &ev.kind {
            EventKind::Say { id, .. } | EventKind::Act { id, .. } if mine => (Some(*id), None),
            EventKind::Nick { new } if mine => (None, Some(new.clone())),
            _ => (None, None),
        };
        // The line itself first, then the news that it settled (UIs swap a placeholder for it).
        self.event(Event::Room(ev));
        if let Some(id) = acked {
            self.settle(id, true);
        }
        if let Some(nick) = new_nick {
            self.set_nick(nick);
        }
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
            self.send(&ClientMsg::History {
                room: room.clone(),
                after: Seq(from.0.saturating_sub(1)),
            });
        }
    }

    fn set_nick(&mut self, nick: Nick) {
        if nick != self.nick {
            self.nick = nick.clone();
            self.event(Event::Nick(nick));
        }
    }

    /// Forgets pending message `id`: acknowledged, or refused (not to be resent either).
    fn settle(&mut self, id: MsgId, delivered: bool) {
        if self.out.settle(id) {
            self.event(Event::Settled { id, delivered });
        }
    }

    fn on_error(&mut self, kind: ErrorKind, re: Re, detail: &str) {
        let about = match re {
            Re::Conn => About::Session,
            Re::Msg(id) => About::Message(id),
            Re::Room(room) => self.room_refusal(kind, room),
            Re::Nick(nick) => About::Nick(nick),
        };
        self.event(Event::Error {
            kind: Some(kind),
            about: about.clone(),
            text: clean(detail),
        });
        if let About::Message(id) = about {
            // Refused: it will not be delivered, so it is not resent either.
            self.settle(id, false);
        }
        if kind == ErrorKind::Version {
            self.close_for_good(Some(clean(detail)));
        }
    }

    /// Which request about `room` an error answers, from what is in flight for it: a part the
    /// server says we are not there for, a refused join, a refused part, or something else
    /// (topic, who). The join or part is no longer waited for.
    fn room_refusal(&mut self, kind: ErrorKind, room: RoomName) -> About {
        let parting = self.rooms.is_parting(&room);
        if kind == ErrorKind::NotInRoom && parting {
            // Not there: as good as parted.
            if self.rooms.parted(&room) {
                self.event(Event::Parted { room: room.clone() });
            }
            About::Part(room)
        } else if kind != ErrorKind::NotInRoom && self.rooms.is_joining(&room) {
            self.rooms.join_dropped(&room);
            About::Join(room)
        } else if parting {
            self.rooms.part_dropped(&room);
            About::Part(room)
        } else {
            About::Room(room)
        }
    }
}
