//! What a session knows about one room: topic, members, unread count, and which seqs it has
//! emitted, so every room event reaches the UI once (above the last seen, or inside a gap being
//! refilled).

use crate::limits::MAX_MEMBERS_LISTED;
use crate::limits::MAX_OPEN_GAPS;
use crate::types::{Nick, RoomName, Seq, Text};

/// What the session knows about one room it is in. See [`Session::room_state`](super::Session::room_state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    /// Room.
    pub room: RoomName,
    /// Topic.
    pub topic: Option<Text>,
    /// Members as last listed and then updated by join/part/quit/nick events (at most
    /// [`MAX_MEMBERS_LISTED`]).
    pub members: Vec<Nick>,
    /// Chat lines (say/act by others) received while this was not the current room; cleared by
    /// [`Session::switch_room`](super::Session::switch_room).
    pub unread: u32,
    /// Highest seq seen, `None` before the first event.
    pub last_seq: Option<Seq>,
    /// Missed ranges whose refill is awaited; no seq in them was ever emitted.
    pub(super) gaps: Vec<OpenGap>,
    /// Rejoined after a failed resume, having seen up to this seq: the first event after the
    /// rejoin shows whether (and what) was missed meanwhile.
    pub(super) rejoined_after: Option<Seq>,
}

/// A missed range `next..=last` of one room, and where its last history request started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OpenGap {
    next: Seq,
    last: Seq,
    asked: Seq,
}

impl RoomState {
    pub(super) fn new(room: RoomName, topic: Option<Text>, members: Vec<Nick>) -> RoomState {
        RoomState {
            room,
            topic,
            members,
            unread: 0,
            last_seq: None,
            gaps: Vec::new(),
            rejoined_after: None,
        }
    }

    /// Decides whether an event with `seq` is new, and records it if so. Every seq is accepted
    /// at most once: above `last_seq`, or inside an open gap (whose seqs were never emitted, and
    /// whose refill comes in ascending order).
    pub(super) fn accept(&mut self, seq: Seq) -> bool {
        if self.last_seq.is_none_or(|last| seq > last) {
            self.last_seq = Some(seq);
            return true;
        }
        if let Some(i) = self
            .gaps
            .iter()
            .position(|g| g.next <= seq && seq <= g.last)
        {
            if seq >= self.gaps[i].last {
                self.gaps.remove(i);
            } else {
                self.gaps[i].next = seq.next();
            }
            return true;
        }
        false
    }

    /// Records a gap marker. Returns the part not seen before (to show), and from which seq to
    /// ask for history, if at all.
    ///
    /// A marker starting inside an open gap is the server saying a refill stopped there (what
    /// is gone from its history, or what did not fit in our queue): asked again only if the
    /// refill got further than the last request, so asking always makes progress and ends.
    pub(super) fn on_gap(&mut self, first: Seq, last: Seq) -> (Option<(Seq, Seq)>, Option<Seq>) {
        let mut ask = None;
        if let Some(g) = self
            .gaps
            .iter_mut()
            .find(|g| g.next <= first && first <= g.last)
        {
            if first > g.asked {
                g.asked = first;
                ask = Some(first);
            }
        }
        let first = match self.last_seq {
            // Nothing is above the highest possible seq (a hostile server may send it).
            Some(seen) => match seen.0.checked_add(1) {
                Some(after) => first.max(Seq(after)),
                None => return (None, ask),
            },
            None => first,
        };
        if first > last {
            return (None, ask);
        }
        if self.gaps.len() >= MAX_OPEN_GAPS {
            self.gaps.remove(0);
        }
        self.gaps.push(OpenGap {
            next: first,
            last,
            asked: first,
        });
        self.last_seq = Some(last);
        let ask = ask.map_or(first, |a| a.min(first));
        (Some((first, last)), Some(ask))
    }

    pub(super) fn add_member(&mut self, nick: &Nick) {
        let folded = nick.folded();
        if !self.members.iter().any(|m| m.folded() == folded)
            && self.members.len() < MAX_MEMBERS_LISTED
        {
            self.members.push(nick.clone());
        }
    }

    pub(super) fn remove_member(&mut self, nick: &Nick) {
        let folded = nick.folded();
        self.members.retain(|m| m.folded() != folded);
    }
}
