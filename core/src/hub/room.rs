//! A room: its members, topic, the next seq, and the bounded history ring of events, each kept
//! with its encoded frame so replays (join, resume, history) never re-encode.

use super::UserId;
use super::few::Few;
use crate::types::{RoomName, Seq, Text};
use std::collections::{BTreeSet, VecDeque};

/// One room event as stored: its seq and its frame (`ServerMsg::Event`, length-prefixed, in a
/// buffer of its own size). Binary members get a copy of the frame; other dialects render from
/// the frame decoded again, which is rare next to keeping every event twice.
///
/// The frame is a plain box, not a `Bytes`: a replay shared as a `Bytes` turned the buffer
/// into a shared one for good (a 24-byte header allocated beside it), and a `Bytes` takes 32
/// bytes of the ring slot where a box takes 16. 32-byte slots instead of 48 and one allocation
/// instead of two per event: about 50 bytes less per kept event, ~50 per idle connection of a
/// room of 100 (each member's join is kept, issue 22). A replay copies the frame instead.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) seq: Seq,
    pub(crate) frame: Box<[u8]>,
    /// The hub's number for the event while its batch may still fail (see `durable.rs`).
    pub(crate) no: u64,
}

impl Stored {
    /// Stores `frame` (the event with `seq`, numbered `no`) in a buffer of its own size.
    pub(crate) fn new(seq: Seq, frame: &[u8], no: u64) -> Stored {
        Stored {
            seq,
            frame: Box::from(frame),
            no,
        }
    }

    /// The event, decoded from the frame (`None` cannot happen: the hub encoded it).
    pub(crate) fn event(&self) -> Option<crate::wire::RoomEvent> {
        let payload = self.frame.get(crate::wire::LEN_PREFIX..)?;
        match crate::wire::decode_payload::<crate::wire::ServerMsg>(payload) {
            Ok(crate::wire::ServerMsg::Event(ev)) => Some(ev),
            _ => None,
        }
    }

    /// Bytes it holds, roughly: the frame and the fixed parts. What the history budget counts.
    pub(crate) fn cost(&self) -> usize {
        self.frame.len() + core::mem::size_of::<Stored>()
    }
}

/// A room.
#[derive(Debug)]
pub(crate) struct Room {
    pub(crate) topic: Option<Text>,
    /// Members, attached or detached (waiting for resume).
    pub(crate) members: Members,
    /// Seq of the latest event (0: none yet).
    pub(crate) last_seq: Seq,
    history: VecDeque<Stored>,
    /// Sum of the history's [`Stored::cost`].
    history_bytes: usize,
    /// Its founder, operators, modes, bans and mutes, once anything is set (boxed: most rooms
    /// have none).
    pub(crate) policy: Option<Box<crate::moderation::Policy>>,
    /// Folded nicks invited since they last joined (at most a hundred).
    pub(crate) invited: Vec<String>,
    /// Big rooms only: every attached connection of a member, as of `attached_gen` (the hub's
    /// `attach_gen` then; 0: not built). A broadcast then walks one dense list instead of
    /// member, user, device and connection tables: in a room of thousands, those lookups were
    /// most of the server's time (issue 22). Connections only (8 bytes a member, not 16 with
    /// the user): a broadcast that leaves a user out finds that user's connections first.
    pub(crate) attached: Vec<crate::types::ConnId>,
    pub(crate) attached_gen: u64,
}

impl Room {
    pub(crate) fn new() -> Room {
        Room {
            topic: None,
            members: Members::default(),
            last_seq: Seq(0),
            history: VecDeque::new(),
            history_bytes: 0,
            policy: None,
            invited: Vec::new(),
            attached: Vec::new(),
            attached_gen: 0,
        }
    }

    /// The next event's seq; the caller stores the event with [`Room::record`].
    pub(crate) fn next_seq(&mut self) -> Seq {
        self.last_seq = self.last_seq.next();
        self.last_seq
    }

    /// Appends to the ring, dropping the oldest past `cap` events; then, while the server-wide
    /// `total` is over `budget`, drops the oldest down to `min_kept`. Keeps `total` (the sum of
    /// every room's history bytes) up to date.
    pub(crate) fn record(
        &mut self,
        stored: Stored,
        cap: usize,
        budget: usize,
        min_kept: usize,
        total: &mut usize,
    ) {
        if cap == 0 {
            return;
        }
        let cost = stored.cost();
        self.history.push_back(stored);
        self.history_bytes += cost;
        *total += cost;
        while self.history.len() > cap
            || (*total > budget && self.history.len() > min_kept.clamp(1, cap))
        {
            let Some(old) = self.history.pop_front() else {
                break;
            };
            self.history_bytes -= old.cost();
            *total -= old.cost();
        }
    }

    /// Forgets the event with `seq` (its batch was not stored). Returns the history bytes freed.
    pub(crate) fn forget(&mut self, seq: Seq) -> usize {
        let Some(at) = self.history.iter().position(|s| s.seq == seq) else {
            return 0;
        };
        let Some(s) = self.history.remove(at) else {
            return 0;
        };
        self.history_bytes -= s.cost();
        s.cost()
    }

    /// History bytes this room holds (subtract from the total when the room goes).
    pub(crate) fn history_bytes(&self) -> usize {
        self.history_bytes
    }

    /// Seq of the oldest event still kept, if any.
    pub(crate) fn oldest_kept(&self) -> Option<Seq> {
        self.history.front().map(|s| s.seq)
    }

    /// Events with seq in `after+1 ..= upto`, oldest first.
    pub(crate) fn between(&self, after: Seq, upto: Seq) -> impl Iterator<Item = &Stored> {
        // The ring is in seq order, so skip to the first wanted one by position.
        let start = match self.history.front() {
            Some(f) if after.0 >= f.seq.0 => {
                usize::try_from(after.0 - f.seq.0 + 1).unwrap_or(usize::MAX)
            }
            _ => 0,
        };
        self.history
            .iter()
            .skip(start)
            .take_while(move |s| s.seq <= upto)
    }

    /// The last `n` events with seq ≤ `upto`.
    pub(crate) fn last_n(&self, n: usize, upto: Seq) -> impl Iterator<Item = &Stored> {
        let kept_upto = self.history.iter().filter(|s| s.seq <= upto).count();
        let skip = kept_upto.saturating_sub(n);
        self.history.iter().take(kept_upto).skip(skip)
    }

    /// Every event kept, decoded, oldest first.
    pub(crate) fn events(&self) -> impl Iterator<Item = crate::wire::RoomEvent> + '_ {
        self.history.iter().filter_map(Stored::event)
    }

    /// Events kept.
    pub(crate) fn kept(&self) -> usize {
        self.history.len()
    }
}

/// A room's members, in order: a sorted vector up to [`Members::SMALL_MAX`], a B-tree past it.
///
/// In a room of 100 the B-tree's nodes, seven ids in a 104-byte leaf on average after joins in
/// order, took ~22 bytes per member; the vector takes 8 (10 with its spare capacity), issue
/// 22's idle memory. A join or part moves at most `SMALL_MAX` ids in the vector; past that the
/// B-tree keeps them O(log n), so a room of 50,000 does not move 400 KB per join.
#[derive(Debug)]
pub(crate) enum Members {
    Small(Vec<UserId>),
    Big(BTreeSet<UserId>),
}

impl Default for Members {
    fn default() -> Members {
        Members::Small(Vec::new())
    }
}

impl Members {
    /// The most members kept in the sorted vector.
    const SMALL_MAX: usize = 1024;

    pub(crate) fn contains(&self, uid: &UserId) -> bool {
        match self {
            Members::Small(v) => v.binary_search(uid).is_ok(),
            Members::Big(b) => b.contains(uid),
        }
    }

    /// False if it was a member already.
    pub(crate) fn insert(&mut self, uid: UserId) -> bool {
        match self {
            Members::Small(v) => match v.binary_search(&uid) {
                Ok(_) => false,
                Err(_) if v.len() >= Self::SMALL_MAX => {
                    let mut b: BTreeSet<UserId> = core::mem::take(v).into_iter().collect();
                    b.insert(uid);
                    *self = Members::Big(b);
                    true
                }
                Err(at) => {
                    v.insert(at, uid);
                    true
                }
            },
            Members::Big(b) => b.insert(uid),
        }
    }

    /// False if it was not a member.
    pub(crate) fn remove(&mut self, uid: &UserId) -> bool {
        let removed = match self {
            Members::Small(v) => match v.binary_search(uid) {
                Ok(at) => {
                    v.remove(at);
                    true
                }
                Err(_) => false,
            },
            Members::Big(b) => b.remove(uid),
        };
        if self.is_empty() {
            // An emptied room holds no allocation (a B-tree goes back to a vector).
            *self = Members::default();
        }
        removed
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Members::Small(v) => v.len(),
            Members::Big(b) => b.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// In order.
    pub(crate) fn iter(&self) -> MembersIter<'_> {
        match self {
            Members::Small(v) => MembersIter::Small(v.iter()),
            Members::Big(b) => MembersIter::Big(b.iter()),
        }
    }
}

/// [`Members::iter`].
pub(crate) enum MembersIter<'a> {
    Small(core::slice::Iter<'a, UserId>),
    Big(std::collections::btree_set::Iter<'a, UserId>),
}

impl<'a> Iterator for MembersIter<'a> {
    type Item = &'a UserId;

    fn next(&mut self) -> Option<&'a UserId> {
        match self {
            MembersIter::Small(i) => i.next(),
            MembersIter::Big(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            MembersIter::Small(i) => i.size_hint(),
            MembersIter::Big(i) => i.size_hint(),
        }
    }
}

impl<'a> IntoIterator for &'a Members {
    type Item = &'a UserId;
    type IntoIter = MembersIter<'a>;

    fn into_iter(self) -> MembersIter<'a> {
        self.iter()
    }
}

/// A room's name with its state, as the hub keeps rooms in a map keyed by name.
pub(crate) type Rooms = std::collections::BTreeMap<RoomName, Room>;

/// The rooms one user is in, sorted: a few at most ([`crate::limits::MAX_ROOMS_PER_USER`]), so
/// a small list grown one at a time, not a B-tree whose first node holds eleven names. An idle
/// user in one room holds that name inline, with no allocation ([`Few`]).
#[derive(Debug, Default, Clone)]
pub(crate) struct RoomSet(Few<RoomName>);

impl RoomSet {
    pub(crate) fn contains(&self, room: &RoomName) -> bool {
        self.0.as_slice().binary_search(room).is_ok()
    }

    /// False if it was there already.
    pub(crate) fn insert(&mut self, room: RoomName) -> bool {
        match self.0.as_slice().binary_search(&room) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, room);
                true
            }
        }
    }

    /// False if it was not there.
    pub(crate) fn remove(&mut self, room: &RoomName) -> bool {
        match self.0.as_slice().binary_search(room) {
            Ok(at) => self.0.remove(at).is_some(),
            Err(_) => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// In order.
    pub(crate) fn iter(&self) -> core::slice::Iter<'_, RoomName> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a RoomSet {
    type Item = &'a RoomName;
    type IntoIter = core::slice::Iter<'a, RoomName>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_set_is_a_sorted_set() {
        let r = |s: &str| RoomName::new(s).unwrap();
        let mut set = RoomSet::default();
        assert!(set.insert(r("#b")) && set.insert(r("#a")) && set.insert(r("#c")));
        assert!(!set.insert(r("#a")));
        assert_eq!(set.len(), 3);
        let names: Vec<&str> = set.iter().map(RoomName::as_str).collect();
        assert_eq!(names, ["#a", "#b", "#c"]);
        assert!(set.remove(&r("#b")) && !set.remove(&r("#b")));
        assert!(set.contains(&r("#c")) && !set.contains(&r("#b")));
        assert_eq!(set.iter().next_back(), Some(&r("#c")));
    }

    #[test]
    fn members_stay_a_sorted_set_past_the_vector() {
        let mut m = Members::default();
        let n = Members::SMALL_MAX as u64 + 10;
        // Out of order, then each again.
        for i in (0..n).rev() {
            assert!(m.insert(UserId(i)));
        }
        for i in 0..n {
            assert!(!m.insert(UserId(i)));
        }
        assert_eq!(m.len(), n as usize);
        assert!(matches!(m, Members::Big(_)));
        let ids: Vec<u64> = m.iter().map(|u| u.0).collect();
        assert_eq!(ids, (0..n).collect::<Vec<_>>());
        assert!(m.contains(&UserId(5)) && !m.contains(&UserId(n)));
        assert!(m.remove(&UserId(5)) && !m.remove(&UserId(5)) && !m.contains(&UserId(5)));
        for i in 0..n {
            m.remove(&UserId(i));
        }
        assert!(m.is_empty() && matches!(&m, Members::Small(v) if v.capacity() == 0));
        // Small: sorted, no duplicates.
        for i in [5, 1, 3, 1, 5] {
            m.insert(UserId(i));
        }
        assert_eq!(m.iter().map(|u| u.0).collect::<Vec<_>>(), [1, 3, 5]);
        assert!(matches!(m, Members::Small(_)));
    }
}
