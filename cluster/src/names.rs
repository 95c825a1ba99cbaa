//! What things are called in NATS. Room names and nicks hold characters NATS names and KV keys
//! do not allow (`#`, `[`, `|`...), so they are written in hex.

use natter_core::{Nick, RoomName};

pub(crate) fn hex(s: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut h = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        h.push(char::from(DIGITS[usize::from(b >> 4)]));
        h.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    h
}

/// The text a [`hex`] key holds (`None` if it is not one).
pub(crate) fn unhex(key: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..key.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(key.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The stream holding `room`'s events.
pub fn room_stream(prefix: &str, room: &RoomName) -> String {
    format!("{}_ROOM_{}", prefix.to_uppercase(), hex(room.as_str()))
}

/// The subject `room`'s events are published on.
pub fn room_subject(prefix: &str, room: &RoomName) -> String {
    format!("{prefix}.room.{}", hex(room.as_str()))
}

/// The KV key of `nick`'s owner (its folded form: `Sam` and `sam` are one nick).
pub fn nick_key(nick: &Nick) -> String {
    hex(&nick.folded())
}

/// The KV key of `room`'s settings.
pub fn room_key(room: &RoomName) -> String {
    hex(room.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_nats_allows() {
        // `#` and `.` are not allowed in NATS names (a `.` separates a subject's tokens).
        let room = RoomName::new("#a.b").unwrap();
        assert_eq!(room_stream("natter", &room), "NATTER_ROOM_23612e62");
        assert_eq!(room_subject("natter", &room), "natter.room.23612e62");
        let a = Nick::new("Sam|away").unwrap();
        let b = Nick::new("sam|AWAY").unwrap();
        assert_eq!(nick_key(&a), nick_key(&b));
        assert!(nick_key(&a).bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
