//! Which room the full-screen client opens after a sign-in made with no room open
//! (`natter --login`): the account's rooms come back one by one in the server's order (by
//! name), and the chat model opens the first to arrive, so `#aaa` always won over the room
//! the person talks in. The server says nothing of where the account was last; what it does
//! say is what each room holds that the account has not read (or, for a room never read, its
//! recent lines), with the time each line was said. The room whose newest chat line among
//! those is the most recent is the most recently active one the client can tell, and it is
//! opened; when no room brought a chat line, the first stays open.
//!
//! Only until the person picks something themselves (a key, a `/join`): then where they are is
//! theirs.

use natter_core::chat::{Chat, ConvId, LineKind};
use natter_core::session::Event;
use natter_core::types::Seq;
use natter_core::{Millis, RoomName};
use std::collections::HashMap;

/// Watches a sign-in's rooms come back, and says which to open ([`FirstRoom::pick`]).
#[derive(Debug, Default)]
pub struct FirstRoom {
    /// A sign-in with no room open was answered, and the person has not picked anything since.
    armed: bool,
    /// The rooms the sign-in (and the joins after it) brought, with the seq of the join: lines
    /// up to it are what the server replayed, later ones are live.
    joined: HashMap<RoomName, Seq>,
}

impl FirstRoom {
    /// Folds in one of the session's events; `current` is what the chat model has open
    /// before it is given the event.
    pub fn on_event(&mut self, ev: &Event, current: &ConvId) {
        match ev {
            Event::SignedIn { .. } => {
                self.armed = *current == ConvId::Server;
                self.joined.clear();
            }
            Event::Joined { room, seq, .. } if self.armed => {
                self.joined.insert(room.clone(), *seq);
            }
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
    /// choose (not armed, or no room brought a chat line).
    pub fn pick(&self, chat: &Chat) -> Option<ConvId> {
        if !self.armed {
            return None;
        }
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
            first.on_event(ev, chat.current());
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
        assert_eq!(first.pick(&chat), Some(rid("#work")));
        chat.open(&rid("#work"));
        assert_eq!(first.pick(&chat), None, "open already");
        // A live line later in another room does not take the person there.
        let live = say("#zzz", 8, 900);
        first.on_event(&live, chat.current());
        chat.handle_event(&live, T0);
        assert_eq!(first.pick(&chat), None);
        // Once the person picks, nothing more is chosen for them.
        first.chosen();
        chat.open(&rid("#aaa"));
        assert_eq!(first.pick(&chat), None);
    }

    #[test]
    fn comings_and_goings_are_not_activity_and_no_chat_keeps_the_first() {
        let (chat, first) = fed(&[
            joined("#aaa", 3),
            say("#aaa", 2, 100),
            joined("#bots", 9),
            said("#bots", 9, 500, EventKind::Join),
        ]);
        assert_eq!(first.pick(&chat), None, "#aaa is open and newest in chat");
        let (chat, first) = fed(&[joined("#aaa", 3), joined("#bbb", 5)]);
        assert_eq!(chat.current(), &rid("#aaa"));
        assert_eq!(first.pick(&chat), None, "nothing to tell them apart");
    }

    #[test]
    fn a_sign_in_with_a_room_open_or_a_room_asked_for_is_left_alone() {
        // A typed /login while reading a room: the model takes the person back there.
        let mut chat = Chat::new(nick("ann"));
        let mut first = FirstRoom::default();
        let mut feed = |ev: Event, chat: &mut Chat| {
            first.on_event(&ev, chat.current());
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
        assert_eq!(first.pick(&chat), None);

        // `natter --login --room '#zzz'`: a /join's focus is the person's choice.
        let (mut chat, mut first) = fed(&[joined("#aaa", 3), joined("#work", 5)]);
        for ev in [say("#work", 5, 100), Event::Focus(room("#aaa"))] {
            first.on_event(&ev, chat.current());
            chat.handle_event(&ev, T0);
        }
        assert_eq!(first.pick(&chat), None);
    }
}
