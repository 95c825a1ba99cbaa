//! Session events as plain lines: the line-mode output format (a stable interface for scripts)
//! and the notices the TUI shows for everything that is not a chat line.
//!
//! Line-mode format, one event per line:
//! - room events: `[#room] <nick> text`, `[#room] * nick action`, `[#room] -- nick joined #room`
//!   (always with the room, from [`natter_core::render::event_line`]);
//! - direct messages: `*alice* text` received, `-> *bob* text` sent (acknowledged);
//! - gaps: `[#room] -- N messages missed here (#room #first..#last)`;
//! - errors: `error: words`;
//! - everything else (welcome, joins, members, topics, room lists, help, reconnects): `-- words`,
//!   with `[#room] ` in front when it concerns one room.

use natter_core::render;
use natter_core::session::{ConnState, Event};
use natter_core::types::sanitize;
use natter_core::wire::RoomInfo;
use natter_core::{Nick, RoomName, Text};

/// The lines `ev` prints in line mode, as seen by `me`. Driver instructions print nothing.
pub fn event_lines(ev: &Event, me: &Nick) -> Vec<String> {
    match ev {
        Event::Connect | Event::Close => Vec::new(),
        Event::State(state) => state_line(*state).into_iter().collect(),
        Event::Room(ev) => vec![render::event_line(ev, None)],
        Event::Direct(dm) => vec![render::direct_line(dm, me)],
        Event::Gap { room, first, last } => vec![render::gap_line(room, *first, *last, None)],
        other => notice_lines(other),
    }
}

/// The notice lines for events that are neither chat, gaps nor state: what both front-ends show
/// as `-- ...` (or `error: ...`) lines.
pub fn notice_lines(ev: &Event) -> Vec<String> {
    match ev {
        Event::Welcome { nick, resumed } => vec![if *resumed {
            format!("-- reconnected as {nick}; session resumed")
        } else {
            format!("-- connected as {nick}")
        }],
        Event::Joined {
            room,
            topic,
            members,
        } => {
            let mut out = vec![members_line(room, members)];
            if let Some(t) = topic {
                out.push(topic_line(room, Some(t)));
            }
            out
        }
        Event::Parted { room } => vec![format!("[{room}] -- you left {room}")],
        Event::Members {
            room,
            members,
            asked: true,
        } => vec![members_line(room, members)],
        // The session's own refresh after a reconnect: nothing to say.
        Event::Members { asked: false, .. } => Vec::new(),
        Event::Rooms(rooms) => vec![rooms_line(rooms)],
        Event::Topic { room, topic } => vec![topic_line(room, topic.as_ref())],
        Event::Nick(n) => vec![format!("-- you are now known as {n}")],
        Event::Error { text, .. } => clean_lines(text).map(|l| format!("error: {l}")).collect(),
        Event::Info(text) => clean_lines(text).map(|l| format!("-- {l}")).collect(),
        Event::Connect
        | Event::Close
        | Event::State(_)
        | Event::Room(_)
        | Event::Direct(_)
        | Event::Gap { .. }
        // Our own messages print when the server echoes them.
        | Event::Queued { .. }
        | Event::Settled { .. } => Vec::new(),
    }
}

/// A connection state as a notice, for the states worth announcing.
pub fn state_line(state: ConnState) -> Option<String> {
    match state {
        ConnState::Reconnecting { attempt, .. } => Some(format!(
            "-- connection lost; reconnecting (attempt {attempt})"
        )),
        ConnState::Closed => Some("-- disconnected".to_owned()),
        ConnState::Connecting | ConnState::Connected => None,
    }
}

fn members_line(room: &RoomName, members: &[Nick]) -> String {
    let names: Vec<&str> = members.iter().map(Nick::as_str).collect();
    let n = members.len();
    let what = if n == 1 { "member" } else { "members" };
    format!("[{room}] -- {n} {what}: {}", names.join(", "))
}

fn topic_line(room: &RoomName, topic: Option<&Text>) -> String {
    match topic {
        Some(t) => format!("[{room}] -- topic: {t}"),
        None => format!("[{room}] -- no topic"),
    }
}

fn rooms_line(rooms: &[RoomInfo]) -> String {
    if rooms.is_empty() {
        return "-- no rooms".to_owned();
    }
    let list: Vec<String> = rooms
        .iter()
        .map(|r| format!("{} ({})", r.room, r.members))
        .collect();
    format!("-- rooms: {}", list.join(", "))
}

/// Splits free text (server error details are plain strings, not [`Text`]) into lines with
/// anything a terminal would act on replaced.
fn clean_lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines().filter(|l| !l.trim().is_empty()).map(sanitize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::wire::{DirectMsg, EventKind, RoomEvent};
    use natter_core::{Millis, MsgId, Seq};

    fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }
    fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }

    #[test]
    fn chat_always_names_the_room() {
        let ev = Event::Room(RoomEvent {
            room: room("#rust"),
            seq: Seq(3),
            at: Millis(0),
            from: nick("bob"),
            kind: EventKind::Say {
                id: MsgId(1),
                text: Text::new("hello").unwrap(),
            },
        });
        assert_eq!(event_lines(&ev, &nick("alice")), ["[#rust] <bob> hello"]);
    }

    #[test]
    fn direct_messages_depend_on_the_reader() {
        let dm = Event::Direct(DirectMsg {
            from: nick("alice"),
            to: nick("bob"),
            id: MsgId(1),
            at: Millis(0),
            text: Text::new("psst").unwrap(),
        });
        assert_eq!(event_lines(&dm, &nick("bob")), ["*alice* psst"]);
        assert_eq!(event_lines(&dm, &nick("alice")), ["-> *bob* psst"]);
    }

    #[test]
    fn notices_and_errors_are_prefixed_and_clean() {
        let me = nick("me");
        let err = Event::Error {
            kind: None,
            text: "nick taken\x1b[2J\nsecond line".into(),
        };
        let lines = event_lines(&err, &me);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("error: nick taken"));
        assert!(!lines[0].contains('\x1b'));
        assert_eq!(lines[1], "error: second line");
        let joined = Event::Joined {
            room: room("#rust"),
            topic: Some(Text::new("crabs").unwrap()),
            members: vec![nick("a"), nick("b")],
        };
        assert_eq!(
            event_lines(&joined, &me),
            ["[#rust] -- 2 members: a, b", "[#rust] -- topic: crabs"]
        );
        let info = Event::Info("one\ntwo".into());
        assert_eq!(event_lines(&info, &me), ["-- one", "-- two"]);
        assert!(event_lines(&Event::Connect, &me).is_empty());
        let gap = Event::Gap {
            room: room("#x"),
            first: Seq(2),
            last: Seq(2),
        };
        assert_eq!(
            event_lines(&gap, &me),
            ["[#x] -- 1 message missed here (#x #2..#2)"]
        );
        let rooms = Event::Rooms(vec![RoomInfo {
            room: room("#a"),
            members: 4,
        }]);
        assert_eq!(event_lines(&rooms, &me), ["-- rooms: #a (4)"]);
    }
}
