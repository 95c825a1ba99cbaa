//! Which room the full-screen client opens after a sign-in made with no room open
//! (`natter --login`): the account's rooms come back one by one in the server's order (by
//! name), and the chat model opens the first to arrive, so `#aaa` always won over the room
//! the person talks in. The server says nothing of where the account was last; what it does
//! say is what each room holds that the account has not read (or, for a room never read, its
//! recent lines), with the time each line was said. The room whose newest chat line among
//! those is the most recent is the most recently active one the client can tell, and it is
//! opened; when no room brought a chat line, the first stays open.
//!
//! Only while the sign-in's rooms come in: once they are all known (the server sends the
//! account's read markers after every room's join, so the first `ReadUpTo` says so), or
//! [`SETTLE`] after the sign-in's answer at the latest (an account with no marker sends none),
//! the choice is made for good: a room another of the account's devices joins later, with its
//! newer lines, never takes the person there. And only until the person picks something
//! themselves (a key, a `/join`): then where they are is theirs.

use natter_core::chat::{Chat, ConvId, LineKind};
use natter_core::session::Event;
use natter_core::types::Seq;
use natter_core::{Millis, RoomName};
use std::collections::HashMap;

/// How long after the sign-in's answer its rooms may still come in and count: the server
/// sends them right behind it, so this bounds a choice the read markers did not settle.
pub const SETTLE: Millis = Millis(3_000);

/// Watches a sign-in's rooms come back, and says which to open ([`FirstRoom::pick`]).
#[derive(Debug, Default)]
pub struct FirstRoom {
    /// A sign-in with no room open was answered, and the person has not picked anything since.
    armed: bool,
    /// The rooms the sign-in brought, with the seq of the join: lines up to it are what the
    /// server replayed, later ones are live.
    joined: HashMap<RoomName, Seq>,
    /// The sign-in's rooms are all in (its first read marker came), or it is [`SETTLE`]
    /// past the answer: rooms joined now are not the sign-in's, and the next
    /// [`FirstRoom::pick`] is the last.
    settled: bool,
    /// When the sign-in's rooms stop counting at the latest.
    until: Millis,
}

impl FirstRoom {
    /// Folds in one of the session's events, at `now`; `current` is what the chat model has
    /// open before it is given the event.
    pub fn on_event(&mut self, ev: &Event, current: &ConvId, now: Millis) {
        if self.armed && now >= self.until {
            self.settled = true;
        }
        match ev {
            Event::SignedIn { .. } => {
                self.armed = *current == ConvId::Server;
                self.settled = false;
                self.until = now + SETTLE;
                self.joined.clear();
            }
            Event::Joined { room, seq, .. } if self.armed && !self.settled => {
                self.joined.insert(room.clone(), *seq);
            }
            // Sent after every room of the sign-in: they are all known.
            Event::ReadUpTo { .. } if self.armed => self.settled = true,
            // A room the person asked for (`/join`), or a new session: not ours to choose.
            Event::Focus(_) | Event::SignedOut | Event::Welcome { .. } => self.chosen(),
            _ => {}
        }
    }

    /// The person picked something (a key pressed): the open room is theirs from now on.
    pub fn chosen(&mut self) {
        self.armed = false;
        self.joined.clear();
    }

    /// The room to open now, if it is not the one open: the room whose newest replayed chat
    /// line is the most recent (the first such room on a tie). `None` when there is nothing to
    /// choose (not armed, or no room brought a chat line). Once the sign-in's rooms are
    /// settled (or it is `now` [`SETTLE`] past its answer) this is the last choice made.
    pub fn pick(&mut self, chat: &Chat, now: Millis) -> Option<ConvId> {
        if !self.armed {
            return None;
        }
        let choice = self.best(chat);
        if self.settled || now >= self.until {
            self.chosen();
        }
        choice
    }

    fn best(&self, chat: &Chat) -> Option<ConvId> {
        let newest = chat.conversations().filter_map(|conv| {
            let ConvId::Room(room) = conv.id() else {
                return None;
            };
            let joined = *self.joined.get(room)?;
            let at = conv
                .lines()
                .iter()
                .filter(|l| l.seq.is_some_and(|s| s <= joined))
                .filter(|l| {
                    matches!(
                        l.kind,
                        LineKind::Say { .. } | LineKind::Act { .. } | LineKind::UserNotice { .. }
                    )
                })
                .map(|l| l.at)
                .max()?;
            Some((at, conv.id()))
        });
        let mut best: Option<(Millis, &ConvId)> = None;
        for (at, id) in newest {
            if best.is_none_or(|(b, _)| at > b) {
                best = Some((at, id));
            }
        }
        best.map(|(_, id)| id.clone())
            .filter(|id| id != chat.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::session::ConnState;
    use natter_core::types::MsgId;
    use natter_core::wire::{EventKind, RoomEvent};
    use natter_core::{Nick, Text};

    const T0: Millis = Millis(1_700_000_000_000);

    fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }

    fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }

    fn said(r: &str, seq: u64, at: u64, kind: EventKind) -> Event {
        Event::Room(RoomEvent {
            room: room(r),
            seq: Seq(seq),
            at: Millis(T0.0 + at),
            from: nick("bob"),
            kind,
        })
    }

    fn say(r: &str, seq: u64, at: u64) -> Event {
        said(
            r,
            seq,
            at,
            EventKind::Say {
                id: MsgId(seq),
                text: Text::new("hi").unwrap(),
            },
        )
    }

    fn joined(r: &str, seq: u64) -> Event {
        Event::Joined {
            room: room(r),
            topic: None,
            members: vec![nick("ann"), nick("bob")],
            seq: Seq(seq),
        }
    }

    /// A chat model and the watcher, fed `events` as the TUI feeds them.
    fn fed(events: &[Event]) -> (Chat, FirstRoom) {
        let mut chat = Chat::new(nick("ann"));
        let mut first = FirstRoom::default();
        let start = [
            Event::State(ConnState::Connected),
            Event::Welcome {
                nick: nick("ann"),
                resumed: false,
                signing_in: Some(nick("ann")),
            },
            Event::SignedIn {
                account: nick("ann"),
                key: None,
            },
        ];
        for ev in start.iter().chain(events) {
            first.on_event(ev, chat.current(), T0);
            chat.handle_event(ev, T0);
        }
        (chat, first)
    }

    fn rid(r: &str) -> ConvId {
        ConvId::Room(room(r))
    }

    #[test]
    fn the_room_with_the_newest_line_is_opened_not_the_first_by_name() {
        let (mut chat, mut first) = fed(&[
            joined("#aaa", 10),
            say("#aaa", 9, 100),
            joined("#work", 50),
            say("#work", 49, 300),
            say("#work", 50, 400),
            joined("#zzz", 7),
            say("#zzz", 7, 200),
        ]);
        assert_eq!(chat.current(), &rid("#aaa"), "the model opens the first");
        assert_eq!(first.pick(&chat, T0), Some(rid("#work")));
        chat.open(&rid("#work"));
        assert_eq!(first.pick(&chat, T0), None, "open already");
        // A live line later in another room does not take the person there.
        let live = say("#zzz", 8, 900);
        first.on_event(&live, chat.current(), T0);
        chat.handle_event(&live, T0);
        assert_eq!(first.pick(&chat, T0), None);
        // Once the person picks, nothing more is chosen for them.
        first.chosen();
        chat.open(&rid("#aaa"));
        assert_eq!(first.pick(&chat, T0), None);
    }

    #[test]
    fn comings_and_goings_are_not_activity_and_no_chat_keeps_the_first() {
        let (chat, mut first) = fed(&[
            joined("#aaa", 3),
            say("#aaa", 2, 100),
            joined("#bots", 9),
            said("#bots", 9, 500, EventKind::Join),
        ]);
        assert_eq!(
            first.pick(&chat, T0),
            None,
            "#aaa is open and newest in chat"
        );
        let (chat, mut first) = fed(&[joined("#aaa", 3), joined("#bbb", 5)]);
        assert_eq!(chat.current(), &rid("#aaa"));
        assert_eq!(first.pick(&chat, T0), None, "nothing to tell them apart");
    }

    #[test]
    fn a_sign_in_with_a_room_open_or_a_room_asked_for_is_left_alone() {
        // A typed /login while reading a room: the model takes the person back there.
        let mut chat = Chat::new(nick("ann"));
        let mut first = FirstRoom::default();
        let mut feed = |ev: Event, chat: &mut Chat| {
            first.on_event(&ev, chat.current(), T0);
            chat.handle_event(&ev, T0);
        };
        feed(Event::State(ConnState::Connected), &mut chat);
        feed(
            Event::Welcome {
                nick: nick("ann"),
                resumed: false,
                signing_in: None,
            },
            &mut chat,
        );
        feed(joined("#lobby", 1), &mut chat);
        feed(
            Event::SignedIn {
                account: nick("ann"),
                key: None,
            },
            &mut chat,
        );
        feed(joined("#work", 5), &mut chat);
        feed(say("#work", 5, 100), &mut chat);
        assert_eq!(first.pick(&chat, T0), None);

        // `natter --login --room '#zzz'`: a /join's focus is the person's choice.
        let (mut chat, mut first) = fed(&[joined("#aaa", 3), joined("#work", 5)]);
        for ev in [say("#work", 5, 100), Event::Focus(room("#aaa"))] {
            first.on_event(&ev, chat.current(), T0);
            chat.handle_event(&ev, T0);
        }
        assert_eq!(first.pick(&chat, T0), None);
    }

    /// Another device of the account joins a room long after the sign-in, and the room's
    /// replay brings newer lines than any other: the choice stayed armed until a key was
    /// pressed, and took the person there, away from what they were reading. The choice is
    /// made for good once the sign-in's rooms are known (its first read marker), or
    /// [`SETTLE`] after its answer.
    #[test]
    fn a_room_joined_after_the_sign_in_settled_does_not_take_the_person_there() {
        let late = |first: &mut FirstRoom, chat: &mut Chat, now: Millis| {
            for ev in [joined("#later", 90), say("#later", 90, 5_000)] {
                first.on_event(&ev, chat.current(), now);
                chat.handle_event(&ev, now);
            }
            first.pick(chat, now)
        };
        // Settled by the read marker that follows the sign-in's rooms.
        let (mut chat, mut first) = fed(&[
            joined("#aaa", 3),
            say("#aaa", 3, 100),
            joined("#work", 5),
            say("#work", 5, 300),
            Event::ReadUpTo {
                room: room("#aaa"),
                seq: Seq(3),
            },
        ]);
        let id = first.pick(&chat, T0).expect("the newest of the sign-in's");
        assert_eq!(id, rid("#work"));
        chat.open(&id);
        assert_eq!(late(&mut first, &mut chat, T0), None);
        assert_eq!(chat.current(), &rid("#work"));
        // No marker (no room ever read): settled by the bound.
        let (mut chat, mut first) = fed(&[joined("#aaa", 3), say("#aaa", 3, 100)]);
        assert_eq!(first.pick(&chat, T0), None, "#aaa is open");
        let later = Millis(T0.0 + SETTLE.0);
        assert_eq!(late(&mut first, &mut chat, later), None);
        // Within the bound and before any marker, a room is still the sign-in's.
        let (mut chat, mut first) = fed(&[joined("#aaa", 3), say("#aaa", 3, 100)]);
        let soon = Millis(T0.0 + SETTLE.0 - 1);
        assert_eq!(late(&mut first, &mut chat, soon), Some(rid("#later")));
    }
}
