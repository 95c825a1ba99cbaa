//! The bench payload: exactly [`PAYLOAD_LEN`] ASCII bytes of chat text carrying the sender's
//! index, its per-sender sequence number and the send time, so every receiver can check order,
//! loss and duplication and measure latency without any state shared with the sender.

/// Bytes of chat text per message, as the issue specifies.
pub const PAYLOAD_LEN: usize = 64;

/// First bytes of every bench payload: a frame that ends in anything else is not a delivery.
const MARK: &[u8; 2] = b"NB";

/// Marker, 8 hex digits of sender, 8 of seq, 16 of nanoseconds; the rest is padding.
const USED: usize = 2 + 8 + 8 + 16;

/// What a payload says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the sending client.
    pub sender: u32,
    /// The sender's sequence number, from 0.
    pub seq: u32,
    /// Send time, nanoseconds since the generator's origin.
    pub sent_ns: u64,
}

impl Stamp {
    /// The payload text (ASCII, [`PAYLOAD_LEN`] bytes).
    pub fn text(&self) -> String {
        let mut s = format!("NB{:08x}{:08x}{:016x}", self.sender, self.seq, self.sent_ns);
        s.extend(std::iter::repeat_n('.', PAYLOAD_LEN - USED));
        s
    }

    /// Reads a payload; `None` if `text` is not one.
    pub fn parse(text: &[u8]) -> Option<Stamp> {
        if text.len() != PAYLOAD_LEN || &text[..2] != MARK {
            return None;
        }
        let sender = u32::try_from(hex(&text[2..10])?).ok()?;
        let seq = u32::try_from(hex(&text[10..18])?).ok()?;
        let sent_ns = hex(&text[18..34])?;
        Some(Stamp {
            sender,
            seq,
            sent_ns,
        })
    }
}

fn hex(digits: &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for &d in digits {
        let x = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(x);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_text() {
        let s = Stamp {
            sender: 999,
            seq: 0xdead_beef,
            sent_ns: u64::MAX - 5,
        };
        let t = s.text();
        assert_eq!(t.len(), PAYLOAD_LEN);
        assert_eq!(Stamp::parse(t.as_bytes()), Some(s));
        assert_eq!(Stamp::parse(&t.as_bytes()[1..]), None);
        let mut bad = t.into_bytes();
        bad[5] = b'g';
        assert_eq!(Stamp::parse(&bad), None);
        assert_eq!(Stamp::parse(&[b'.'; PAYLOAD_LEN]), None);
    }
}
