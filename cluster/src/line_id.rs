//! The JetStream message id (`Nats-Msg-Id`) of a chat line, so that JetStream stores a line
//! once when two copies of it are published within the stream's duplicate window (two minutes,
//! JetStream's default): the copy a node's NATS client sends late, after a reconnection, of a
//! line its user sent again meanwhile through another node (its session resumed there).
//!
//! A line is its user's nick (folded), its kind, the id the user's client gave it and its text:
//! what the hub already takes for "the same line" when it recognises a resend (`echoes` in
//! core's `cluster.rs`). Its time is not in it: each node stamps its own copy. The id is a
//! 64-bit FNV-1a hash of those, in hex: the same on every node and every build.

use natter_core::wire::{EventKind, RoomEvent};

/// The message id of `event` if it is a chat line (say, action or notice); other events have none.
pub(crate) fn line_id(event: &RoomEvent) -> Option<String> {
    let (tag, id, text) = match &event.kind {
        EventKind::Say { id, text } => (b's', id, text),
        EventKind::Act { id, text } => (b'a', id, text),
        EventKind::Notice { id, text } => (b'n', id, text),
        _ => return None,
    };
    let mut h = Fnv::default();
    h.write(event.from.folded().as_bytes());
    h.write(&[0, tag]);
    h.write(&id.0.to_le_bytes());
    h.write(text.as_str().as_bytes());
    Some(format!("{:016x}", h.0))
}

/// FNV-1a, 64 bits: stable (unlike std's hasher, whose output may change between releases).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::{Millis, MsgId, Nick, RoomName, Seq, Text};

    fn ev(nick: &str, kind: EventKind, at: u64) -> RoomEvent {
        RoomEvent {
            room: RoomName::new("#r").unwrap(),
            seq: Seq(0),
            at: Millis(at),
            from: Nick::new(nick).unwrap(),
            kind,
        }
    }

    fn say(id: u64, text: &str) -> EventKind {
        EventKind::Say {
            id: MsgId(id),
            text: Text::new(text).unwrap(),
        }
    }

    #[test]
    fn one_line_has_one_id_whatever_node_stamps_it() {
        let a = line_id(&ev("Alice", say(7, "hi"), 1)).unwrap();
        assert_eq!(a.len(), 16);
        // Another node's copy: another time, the nick as folded.
        assert_eq!(line_id(&ev("alice", say(7, "hi"), 99)), Some(a.clone()));
        // Fixed across builds (FNV-1a).
        assert_eq!(a, line_id(&ev("ALICE", say(7, "hi"), 5)).unwrap());
        for other in [
            ev("alice", say(8, "hi"), 1),
            ev("alice", say(7, "hi!"), 1),
            ev("bob", say(7, "hi"), 1),
            ev(
                "alice",
                EventKind::Act {
                    id: MsgId(7),
                    text: Text::new("hi").unwrap(),
                },
                1,
            ),
        ] {
            assert_ne!(line_id(&other), Some(a.clone()), "{other:?}");
        }
        assert_eq!(line_id(&ev("alice", EventKind::Join, 1)), None);
    }
}
