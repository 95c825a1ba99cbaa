//! What one NATS message of a room's log holds: a batch of 1 to [`MAX_EVENTS`] events of the
//! room, with consecutive room seqs from the batch's first. nats-server's cost is per message
//! stored (its store's write, its scheduling, one delivery per node: ~8 µs, bench/README.md),
//! so a node sends the events its users said while its last batch was on the way in one
//! message (`node.rs`'s `Outbox`). The stream's sequence is then no longer the room's seq: the
//! batch says the room seq of its first event, and a node numbers the others.
//!
//! The payload (little-endian), all of it in the payload (no headers to parse on the way back):
//!
//! ```text
//! u8 version (1) | u64 first room seq | u64 batch number | u8 length, node id
//! | u16 count | count × (u8 length, node the event is about ("": the publishing node)
//!                        | u32 length, the event: natter_core::wire's RoomEvent)
//! ```
//!
//! The batch number is the publishing node's (one per attempt): a node tells its own batch
//! from another's by its id and that number.

use bytes::{BufMut, Bytes, BytesMut};

/// Events in one batch, at most (a search's position of a line keeps its index in 8 bits).
pub(crate) const MAX_EVENTS: usize = 64;
/// Bytes of events in one batch, at most (well under NATS's default `max_payload`, 1 MiB).
pub(crate) const MAX_BYTES: usize = 256 * 1024;

const VERSION: u8 = 1;

/// One event ready to go in a batch: its entry's bytes (see the module's docs).
pub(crate) fn entry(about: &str, event: &[u8]) -> Bytes {
    let about = &about.as_bytes()[..about.len().min(255)];
    let mut b = BytesMut::with_capacity(1 + about.len() + 4 + event.len());
    b.put_u8(about.len() as u8);
    b.put_slice(about);
    b.put_u32_le(u32::try_from(event.len()).unwrap_or(u32::MAX));
    b.put_slice(event);
    b.freeze()
}

/// A batch's payload: `entries` (from [`entry`]) numbered from `first`.
pub(crate) fn encode<'a>(
    first: u64,
    node: &str,
    number: u64,
    entries: impl ExactSizeIterator<Item = &'a Bytes>,
) -> Bytes {
    let node = &node.as_bytes()[..node.len().min(255)];
    let count = entries.len();
    let mut b = BytesMut::with_capacity(32 + node.len() + count * 64);
    b.put_u8(VERSION);
    b.put_u64_le(first);
    b.put_u64_le(number);
    b.put_u8(node.len() as u8);
    b.put_slice(node);
    b.put_u16_le(u16::try_from(count).unwrap_or(u16::MAX));
    for e in entries {
        b.put_slice(e);
    }
    b.freeze()
}

/// A batch read from a log.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Batch<'a> {
    /// The room seq of its first event.
    pub(crate) first: u64,
    /// The publishing node's number for it.
    pub(crate) number: u64,
    /// The publishing node.
    pub(crate) node: &'a str,
    /// Per event: the node it is about ("": the publishing node) and its bytes.
    pub(crate) events: Vec<(&'a str, &'a [u8])>,
}

impl Batch<'_> {
    /// The room seq of its last event (`first - 1` if it has none).
    pub(crate) fn last(&self) -> u64 {
        self.first + self.events.len() as u64 - 1
    }
}

/// Reads a batch's payload; `None` if it is not one (an old log's single event, or damage).
pub(crate) fn decode(p: &[u8]) -> Option<Batch<'_>> {
    let mut r = Reader(p);
    if r.u8()? != VERSION {
        return None;
    }
    let first = r.u64()?;
    let number = r.u64()?;
    let n = usize::from(r.u8()?);
    let node = std::str::from_utf8(r.take(n)?).ok()?;
    let count = usize::from(r.u16()?);
    if count == 0 || first == 0 {
        return None;
    }
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        let n = usize::from(r.u8()?);
        let about = std::str::from_utf8(r.take(n)?).ok()?;
        let n = r.u32()? as usize;
        events.push((about, r.take(n)?));
    }
    r.0.is_empty().then_some(Batch {
        first,
        number,
        node,
        events,
    })
}

/// Where a line is in a log, for the search index: its batch's stream sequence and its index
/// in the batch (below 2^32 and [`MAX_EVENTS`]: 40 bits).
pub(crate) fn position(stream_seq: u64, index: usize) -> u64 {
    (stream_seq << 8) | index as u64
}

/// The stream sequence and the index in its batch of a [`position`].
pub(crate) fn at(position: u64) -> (u64, usize) {
    (position >> 8, (position & 0xff) as usize)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = self.0.split_at_checked(n)?;
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reads_back_as_written_and_damage_is_refused() {
        let entries = [entry("", b"one"), entry("deadnode", b"two"), entry("", b"")];
        let p = encode(41, "n1", 7, entries.iter());
        let b = decode(&p).unwrap();
        assert_eq!(
            b,
            Batch {
                first: 41,
                number: 7,
                node: "n1",
                events: vec![("", &b"one"[..]), ("deadnode", b"two"), ("", b"")],
            }
        );
        assert_eq!(b.last(), 43);
        for cut in 0..p.len() {
            assert_eq!(decode(&p[..cut]), None, "cut at {cut}");
        }
        let mut longer = p.to_vec();
        longer.push(0);
        assert_eq!(decode(&longer), None);
        // No events, or no seq, is no batch.
        assert_eq!(decode(&encode(1, "n1", 1, [].iter())), None);
        assert_eq!(decode(&encode(0, "n1", 1, entries.iter())), None);
        assert_eq!(at(position(1 << 31, 63)), (1 << 31, 63));
    }
}
