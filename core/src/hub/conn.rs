//! One connection's state: how far its handshake got, its input decoder, its outbound backlog
//! (bytes queued or handed to the shell and not yet written) with the per-room gaps recorded
//! while the backlog was over the limit, and its flood-control queue.

use super::text::LineReader;
use super::{ConnKind, HubEvent, UserId};
use crate::command::Input;
use crate::flood::Bucket;
use crate::time::Millis;
use crate::types::{ConnId, RoomName, Seq};
use crate::wire::{ClientMsg, FrameDecoder};
use core::net::IpAddr;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// How far a connection has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Nothing received yet: the first byte decides the mode.
    Detect,
    /// First byte was 0x00; `n` bytes of the magic matched so far.
    Magic(usize),
    /// Binary, waiting for hello. `forwarded_ok`: a `Forwarded` may still come first.
    Hello { forwarded_ok: bool },
    /// Has a nick (binary after hello, text after the welcome).
    Ready,
    /// Told to close (a `Close` event was emitted); input is ignored.
    Closing,
}

/// Bytes reserved, at least, for a connection's first message since its last transmit.
const OUTBUF_MIN_CAPACITY: usize = 1024;

/// A command waiting for a flood-control token.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    Binary(ClientMsg),
    Text(Input),
}

/// The shell's and the hub's outputs; connections write into it.
#[derive(Debug, Default)]
pub(crate) struct Out {
    /// Connections whose `outbuf` went from empty to not, in that order (an id may be stale:
    /// the connection was removed since).
    pub(crate) ready: VecDeque<ConnId>,
    pub(crate) events: VecDeque<HubEvent>,
}

/// Outbound limits in force (from the config).
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    pub(crate) max_msgs: usize,
    pub(crate) max_bytes: usize,
    pub(crate) hard_bytes: usize,
}

/// One connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) id: ConnId,
    /// The socket's address.
    pub(crate) socket_ip: IpAddr,
    /// The address counted in the per-IP table (None: exempt, or refused).
    pub(crate) counted_ip: Option<IpAddr>,
    pub(crate) phase: Phase,
    pub(crate) kind: Option<ConnKind>,
    /// Refused at admission: told in its mode as soon as that is known, then closed.
    pub(crate) refused: Option<String>,
    pub(crate) decoder: FrameDecoder,
    pub(crate) lines: LineReader,
    pub(crate) user: Option<UserId>,
    /// Text mode: the room plain lines go to.
    pub(crate) current: Option<RoomName>,
    /// Bytes pushed and not yet polled: every message queued since the last
    /// [`super::Hub::poll_transmit`] for this connection, back to back, so a broadcast costs one
    /// copy into each member's buffer and the shell gets one buffer per connection per poll.
    outbuf: Vec<u8>,
    /// How long `outbuf` was when last polled (capped at the outbound limit).
    outbuf_last: usize,
    /// Bytes pushed and not yet confirmed written (polled or not).
    backlog_bytes: usize,
    /// Messages pushed and not yet confirmed written: those in `outbuf` and in `polled`.
    backlog_msgs: usize,
    /// Messages in `outbuf`.
    outbuf_msgs: usize,
    /// Transmits handed out and not wholly written, oldest first: bytes not yet written and
    /// messages in it. A transmit's messages count as queued until its last byte is written, so
    /// the count is exact at transmit boundaries and a little high in between; the bookkeeping
    /// is per transmit (a few per connection), not per message.
    polled: VecDeque<(usize, usize)>,
    /// Rooms whose traffic is being skipped: first..=last missed seq.
    pub(crate) gaps: BTreeMap<RoomName, (Seq, Seq)>,
    /// History refills that stopped because the backlog was full: room → continue after this
    /// seq once it drains (the client asked once; it is not made to ask again).
    pub(crate) refills: BTreeMap<RoomName, Seq>,
    pub(crate) bucket: Bucket,
    pub(crate) pending: VecDeque<Pending>,
    pub(crate) last_rx: Millis,
    /// A ping sent and not yet answered: its token and when.
    pub(crate) ping: Option<(u64, Millis)>,
    limits_hit: BTreeSet<&'static str>,
}

impl Conn {
    pub(crate) fn new(id: ConnId, ip: IpAddr, burst: u32, now: Millis) -> Conn {
        Conn {
            id,
            socket_ip: ip,
            counted_ip: None,
            phase: Phase::Detect,
            kind: None,
            refused: None,
            decoder: FrameDecoder::new(),
            lines: LineReader::default(),
            user: None,
            current: None,
            outbuf: Vec::new(),
            outbuf_last: 0,
            backlog_bytes: 0,
            backlog_msgs: 0,
            outbuf_msgs: 0,
            polled: VecDeque::new(),
            gaps: BTreeMap::new(),
            refills: BTreeMap::new(),
            bucket: Bucket::new(burst, now),
            pending: VecDeque::new(),
            last_rx: now,
            ping: None,
            limits_hit: BTreeSet::new(),
        }
    }

    pub(crate) fn closing(&self) -> bool {
        self.phase == Phase::Closing
    }

    /// Bytes pushed and not yet written.
    pub(crate) fn backlog_bytes(&self) -> usize {
        self.backlog_bytes
    }

    /// Messages pushed and not yet fully written.
    pub(crate) fn backlog_msgs(&self) -> usize {
        self.backlog_msgs
    }

    /// Whether room traffic of `len` bytes may be queued now. An empty queue takes anything, so
    /// a limit set below one message still lets traffic (and the gap flush) make progress.
    pub(crate) fn room_fits(&self, len: usize, lim: QueueLimits) -> bool {
        self.backlog_msgs == 0
            || (self.backlog_msgs < lim.max_msgs && self.backlog_bytes + len <= lim.max_bytes)
    }

    /// Whether the backlog is low enough to send gap markers and resume delivery.
    pub(crate) fn drained(&self, lim: QueueLimits) -> bool {
        self.backlog_msgs <= lim.max_msgs / 2 && self.backlog_bytes <= lim.max_bytes / 2
    }

    /// Queues a message's bytes, whatever the backlog (callers check the limits).
    pub(crate) fn push(&mut self, out: &mut Out, data: &[u8]) {
        if self.closing() || data.is_empty() {
            return;
        }
        if self.outbuf.is_empty() {
            out.ready.push_back(self.id);
            // Room for as much as last time, so a busy connection's buffer is not grown step by
            // step (and copied each step) again for every transmit.
            self.outbuf
                .reserve(self.outbuf_last.max(OUTBUF_MIN_CAPACITY).max(data.len()));
        }
        self.outbuf.extend_from_slice(data);
        self.backlog_bytes += data.len();
        self.backlog_msgs += 1;
        self.outbuf_msgs += 1;
    }

    /// Hands out everything queued since the last time, as one buffer (empty if nothing).
    pub(crate) fn take_outbuf(&mut self, max_bytes: usize) -> Vec<u8> {
        if self.outbuf.is_empty() {
            return Vec::new();
        }
        self.outbuf_last = self.outbuf.len().min(max_bytes);
        self.polled.push_back((self.outbuf.len(), self.outbuf_msgs));
        self.outbuf_msgs = 0;
        core::mem::take(&mut self.outbuf)
    }

    /// Room traffic: queued when it fits and the room is not in a gap; otherwise the seq joins
    /// the room's gap (so order holds: nothing of the room goes out until the gap marker).
    /// True if queued.
    pub(crate) fn push_room(
        &mut self,
        out: &mut Out,
        room: &RoomName,
        seq: Seq,
        data: &[u8],
        lim: QueueLimits,
    ) -> bool {
        if self.closing() {
            return false;
        }
        if let Some(gap) = self.gaps.get_mut(room) {
            gap.0 = gap.0.min(seq);
            gap.1 = gap.1.max(seq);
            return false;
        }
        if self.room_fits(data.len(), lim) {
            self.push(out, data);
            return true;
        }
        tracing::debug!(conn = %self.id, %room, %seq, "backlog full, room traffic skipped");
        self.gaps.insert(room.clone(), (seq, seq));
        let detail = format!(
            "outbound queue full ({} messages, {} bytes): room traffic skipped",
            self.backlog_msgs, self.backlog_bytes
        );
        self.limit_hit(out, "queue", detail);
        false
    }

    /// `n` more bytes of what was handed out were written to the socket.
    pub(crate) fn written(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.polled.front_mut() else {
                break;
            };
            let (left, msgs) = *front;
            let step = n.min(left);
            self.backlog_bytes -= step;
            n -= step;
            if step == left {
                self.backlog_msgs -= msgs;
                self.polled.pop_front();
            } else {
                front.0 -= step;
            }
        }
    }

    /// Emits `LimitHit` the first time this connection hits `limit`.
    pub(crate) fn limit_hit(&mut self, out: &mut Out, limit: &'static str, detail: String) {
        if self.limits_hit.insert(limit) {
            tracing::debug!(conn = %self.id, limit, %detail, "limit hit");
            out.events.push_back(HubEvent::LimitHit {
                conn: self.id,
                limit,
                detail,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn backlog_counts_messages_until_their_transmit_is_written() {
        let mut out = Out::default();
        let mut c = Conn::new(ConnId(1), IpAddr::V4(Ipv4Addr::LOCALHOST), 10, Millis(0));
        for m in [&b"aaaa"[..], b"bb", b"c"] {
            c.push(&mut out, m);
        }
        assert_eq!(
            out.ready,
            [ConnId(1)],
            "listed once, when its buffer was empty"
        );
        assert_eq!((c.backlog_msgs(), c.backlog_bytes()), (3, 7));
        let first = c.take_outbuf(usize::MAX);
        assert_eq!(first, b"aaaabbc");
        c.push(&mut out, b"dddd");
        assert_eq!((c.backlog_msgs(), c.backlog_bytes()), (4, 11));
        assert!(c.take_outbuf(usize::MAX) == b"dddd" && c.take_outbuf(usize::MAX).is_empty());
        // Partly written: the bytes count down at once, the messages when the transmit is done.
        c.written(5);
        assert_eq!((c.backlog_msgs(), c.backlog_bytes()), (4, 6));
        c.written(2);
        assert_eq!((c.backlog_msgs(), c.backlog_bytes()), (1, 4));
        // More than was handed out: only what was handed out counts.
        c.push(&mut out, b"e");
        c.written(100);
        assert_eq!(
            (c.backlog_msgs(), c.backlog_bytes()),
            (1, 1),
            "the unpolled message stays"
        );
    }
}
