//! Words for people: room events and server replies as the lines text-mode (`nc`) users receive and
//! the CLI prints in line mode. One place, so every human-facing surface reads the same.
//!
//! Text in these lines was cleaned of control characters when it was made (see
//! [`crate::types::Text`]); nicks and room names are plain ASCII. So a rendered line cannot carry
//! a terminal escape sequence.

use crate::types::{Nick, RoomName, Seq};
use crate::wire::{DirectMsg, EventKind, RoomEvent, ServerMsg};

/// Renders a room event. The room is named in front (`[#rust] `) unless it is `current`.
pub fn event_line(ev: &RoomEvent, current: Option<&RoomName>) -> String {
    let body = match &ev.kind {
        EventKind::Say { text, .. } => format!("<{}> {}", ev.from, text),
        EventKind::Act { text, .. } => format!("* {} {}", ev.from, text),
        EventKind::Join => format!("-- {} joined {}", ev.from, ev.room),
        EventKind::Part { reason } => match reason {
            Some(r) => format!("-- {} left {} ({})", ev.from, ev.room, r),
            None => format!("-- {} left {}", ev.from, ev.room),
        },
        EventKind::Quit { reason } => match reason {
            Some(r) => format!("-- {} quit ({})", ev.from, r),
            None => format!("-- {} quit", ev.from),
        },
        EventKind::Nick { new } => format!("-- {} is now known as {}", ev.from, new),
        EventKind::Topic { topic } => match topic {
            Some(t) => format!("-- {} set the topic of {}: {}", ev.from, ev.room, t),
            None => format!("-- {} cleared the topic of {}", ev.from, ev.room),
        },
    };
    with_room(&ev.room, current, body)
}

/// Renders a direct message as seen by `me`: `*alice* hi` when received, `-> *bob* hi` for one's
/// own (the server's acknowledgement).
pub fn direct_line(dm: &DirectMsg, me: &Nick) -> String {
    if dm.from.folded() == me.folded() {
        format!("-> *{}* {}", dm.to, dm.text)
    } else {
        format!("*{}* {}", dm.from, dm.text)
    }
}

/// Renders a gap marker.
pub fn gap_line(room: &RoomName, first: Seq, last: Seq, current: Option<&RoomName>) -> String {
    let n = last.0.saturating_sub(first.0).saturating_add(1);
    let what = if n == 1 { "message" } else { "messages" };
    with_room(
        room,
        current,
        format!("-- {n} {what} missed here ({room} #{first}..#{last})"),
    )
}

/// What a person sees for a server message, if anything (acks, pings and the like are for
/// programs): the lines a text-mode (`nc`) user receives. Lines without their `\r\n`.
pub fn reply_lines(msg: &ServerMsg, me: Option<&Nick>, current: Option<&RoomName>) -> Vec<String> {
    match msg {
        ServerMsg::Welcome { nick, .. } => vec![format!("-- you are {nick}")],
        ServerMsg::Joined {
            room,
            topic,
            members,
            ..
        } => {
            let others: Vec<&str> = members
                .iter()
                .filter(|n| me.is_none_or(|me| me.folded() != n.folded()))
                .map(Nick::as_str)
                .collect();
            let mut out = if others.is_empty() {
                vec![format!("-- you are in {room} (nobody else is here yet)")]
            } else {
                vec![format!("-- you are in {room} with: {}", others.join(", "))]
            };
            if let Some(t) = topic {
                out.push(format!("-- topic of {room}: {t}"));
            }
            out
        }
        ServerMsg::Parted { room } => vec![format!("-- you left {room}")],
        ServerMsg::Event(ev) => vec![event_line(ev, current)],
        ServerMsg::Direct(dm) => match me {
            Some(me) => vec![direct_line(dm, me)],
            None => Vec::new(),
        },
        ServerMsg::Gap { room, first, last } => {
            vec![gap_line(room, *first, *last, current)]
        }
        ServerMsg::Members { room, members } => {
            let names: Vec<&str> = members.iter().map(Nick::as_str).collect();
            vec![format!(
                "-- {room} ({}): {}",
                members.len(),
                names.join(", ")
            )]
        }
        ServerMsg::Rooms { rooms } => {
            if rooms.is_empty() {
                return vec!["-- no rooms".into()];
            }
            let list: Vec<String> = rooms
                .iter()
                .map(|r| format!("{} ({})", r.room, r.members))
                .collect();
            vec![format!("-- rooms: {}", list.join(", "))]
        }
        ServerMsg::Topic { room, topic } => match topic {
            Some(t) => vec![format!("-- topic of {room}: {t}")],
            None => vec![format!("-- {room} has no topic")],
        },
        ServerMsg::YourNick { nick } => vec![format!("-- you are now known as {nick}")],
        ServerMsg::Error { detail, .. } => vec![format!("ERROR: {detail}")],
        ServerMsg::Bye { reason } => vec![format!("-- {reason}")],
        ServerMsg::Past(ev) | ServerMsg::Found(ev) => vec![past_line(ev)],
        ServerMsg::PastEnd { room, at_start } => vec![if *at_start {
            format!("-- (the beginning of {room})")
        } else {
            format!("-- (/history {room} shows older lines)")
        }],
        ServerMsg::FoundEnd { count } => vec![match count {
            0 => "-- no results".to_string(),
            1 => "-- 1 result".to_string(),
            n => format!("-- {n} results"),
        }],
        ServerMsg::Ack { .. } | ServerMsg::Ping { .. } | ServerMsg::Pong { .. } => Vec::new(),
    }
}

/// An event from history or a search, with its room and time: `[#rust 2026-12-02 14:03] <alice> hi`.
pub fn past_line(ev: &RoomEvent) -> String {
    let body = event_line(ev, Some(&ev.room));
    format!("[{} {}] {body}", ev.room, utc_minute(ev.at))
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM` (UTC), without a calendar library (the proleptic
/// Gregorian calendar, as `date -u` prints it).
pub fn utc_minute(at: crate::time::Millis) -> String {
    let secs = at.0 / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn with_room(room: &RoomName, current: Option<&RoomName>, body: String) -> String {
    if current == Some(room) {
        body
    } else {
        format!("[{room}] {body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Millis;
    use crate::types::{MsgId, Text};

    fn ev(kind: EventKind) -> RoomEvent {
        RoomEvent {
            room: RoomName::lobby(),
            seq: Seq(1),
            at: Millis(0),
            from: Nick::new("alice").unwrap(),
            kind,
        }
    }

    #[test]
    fn past_lines_carry_room_and_utc_time() {
        let mut e = ev(EventKind::Say {
            id: MsgId(1),
            text: Text::new("hi").unwrap(),
        });
        e.at = Millis(1_764_684_180_000); // 2025-12-02 14:03:00 UTC
        assert_eq!(past_line(&e), "[#lobby 2025-12-02 14:03] <alice> hi");
        assert_eq!(utc_minute(Millis(0)), "1970-01-01 00:00");
        assert_eq!(utc_minute(Millis(951_782_400_000)), "2000-02-29 00:00");
    }

    #[test]
    fn lines_read_like_chat() {
        let lobby = RoomName::lobby();
        let cur = Some(&lobby);
        let t = |s| Some(Text::new(s).unwrap());
        let say = EventKind::Say {
            id: MsgId(1),
            text: Text::new("hello").unwrap(),
        };
        assert_eq!(event_line(&ev(say.clone()), cur), "<alice> hello");
        assert_eq!(event_line(&ev(say), None), "[#lobby] <alice> hello");
        let act = EventKind::Act {
            id: MsgId(2),
            text: Text::new("waves").unwrap(),
        };
        assert_eq!(event_line(&ev(act), cur), "* alice waves");
        assert_eq!(
            event_line(&ev(EventKind::Join), cur),
            "-- alice joined #lobby"
        );
        assert_eq!(
            event_line(&ev(EventKind::Part { reason: t("bye") }), cur),
            "-- alice left #lobby (bye)"
        );
        assert_eq!(
            event_line(&ev(EventKind::Quit { reason: None }), cur),
            "-- alice quit"
        );
        assert_eq!(
            event_line(
                &ev(EventKind::Nick {
                    new: Nick::new("al").unwrap()
                }),
                cur
            ),
            "-- alice is now known as al"
        );
        assert_eq!(
            event_line(&ev(EventKind::Topic { topic: t("rust") }), cur),
            "-- alice set the topic of #lobby: rust"
        );
        assert_eq!(
            gap_line(&lobby, Seq(3), Seq(7), cur),
            "-- 5 messages missed here (#lobby #3..#7)"
        );
    }

    #[test]
    fn direct_lines_depend_on_who_reads() {
        let dm = DirectMsg {
            from: Nick::new("alice").unwrap(),
            to: Nick::new("bob").unwrap(),
            id: MsgId(1),
            at: Millis(0),
            text: Text::new("psst").unwrap(),
        };
        assert_eq!(direct_line(&dm, &Nick::new("Bob").unwrap()), "*alice* psst");
        assert_eq!(
            direct_line(&dm, &Nick::new("alice").unwrap()),
            "-> *bob* psst"
        );
    }
}
