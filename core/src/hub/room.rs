//! A room: its members, topic, the next seq, and the bounded history ring of events, each kept
//! with its encoded frame so replays (join, resume, history) never re-encode.

use super::UserId;
use super::few::Few;
use crate::types::{FoldedNick, Nick, RoomName, Seq, Text};
use crate::wire::{EventKind, RoomEvent};
use std::collections::BTreeSet;

/// How many events a join's replay of the last lines looks back for each line it replays
/// ([`Room::last_n_lines_after`]): past that, a room of comings and goings replays fewer lines
/// (none: nothing said for a long while) rather than a join decoding its whole ring. With the
/// defaults (50 lines, a ring of 256 events) it reaches the whole ring.
pub(crate) const LINES_LOOKBACK: usize = 8;

/// One room event as kept: its seq, its frame (`ServerMsg::Event`, length-prefixed) and the
/// hub's number for it while its batch may still fail (see `durable.rs`; 0 once stored). A view
/// into the room's [`Ring`]. Binary members get a copy of the frame; other dialects render from
/// the frame decoded again, which is rare next to keeping every event twice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stored<'a> {
    pub(crate) seq: Seq,
    pub(crate) frame: &'a [u8],
    pub(crate) no: u64,
}

impl<'a> Stored<'a> {
    /// The event with `seq`, numbered `no`, encoded as `frame`.
    pub(crate) fn new(seq: Seq, frame: &'a [u8], no: u64) -> Stored<'a> {
        Stored { seq, frame, no }
    }

    /// The event, decoded from the frame (`None` cannot happen: the hub encoded it).
    pub(crate) fn event(&self) -> Option<crate::wire::RoomEvent> {
        let payload = self.frame.get(crate::wire::LEN_PREFIX..)?;
        match crate::wire::decode_payload::<crate::wire::ServerMsg>(payload) {
            Ok(crate::wire::ServerMsg::Event(ev)) => Some(ev),
            _ => None,
        }
    }

    /// Bytes it counts for, roughly: the frame and a fixed part. What the history budget counts
    /// (the fixed part is what a ring slot of its own took before [`Ring`]; kept so the budget
    /// means what it meant).
    pub(crate) fn cost(&self) -> usize {
        self.frame.len() + Ring::FIXED_COST
    }
}

/// A room's kept events, oldest first, in one byte buffer: each one its seq, its number and its
/// frame's length as LEB128 varints, then the frame.
///
/// Before, each event was a frame in an allocation of its own (48 bytes for a 37-byte join)
/// and a 32-byte slot in a `VecDeque` (128 slots for a room of 100): ~89 bytes per idle member
/// of a room of 100, every member's join being kept (issue 22). Here a join takes its frame
/// and ~5 bytes of header. Replays walk the buffer from the front, which they mostly did
/// anyway (`between` and `last_n` scan the headers, not the frames).
#[derive(Debug, Default)]
pub(crate) struct Ring {
    buf: Vec<u8>,
    /// Where the oldest kept event starts (bytes before it are dropped ones, reclaimed once
    /// they are half the buffer).
    head: usize,
    len: usize,
}

impl Ring {
    /// The fixed part of [`Stored::cost`].
    const FIXED_COST: usize = 32;

    fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        buf.push(v as u8);
    }

    fn varint(buf: &[u8], at: &mut usize) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *buf.get(*at)?;
            *at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// The event starting at `at` and where the next one starts.
    fn at(&self, mut at: usize) -> Option<(Stored<'_>, usize)> {
        let seq = Seq(Self::varint(&self.buf, &mut at)?);
        let no = Self::varint(&self.buf, &mut at)?;
        let n = usize::try_from(Self::varint(&self.buf, &mut at)?).ok()?;
        let frame = self.buf.get(at..at.checked_add(n)?)?;
        Some((Stored { seq, frame, no }, at + n))
    }

    fn push_back(&mut self, s: Stored<'_>) {
        let need = s.frame.len() + 30;
        if self.buf.capacity() - self.buf.len() < need {
            // Grow by half, not double: the buffer is what an idle room holds.
            let more = need.max(self.buf.len() / 2).max(64);
            self.buf.reserve_exact(more);
        }
        Self::put_varint(&mut self.buf, s.seq.0);
        Self::put_varint(&mut self.buf, s.no);
        Self::put_varint(&mut self.buf, s.frame.len() as u64);
        self.buf.extend_from_slice(s.frame);
        self.len += 1;
    }

    /// Drops the oldest event; returns its cost.
    fn pop_front(&mut self) -> Option<usize> {
        let (s, next) = self.at(self.head)?;
        let cost = s.cost();
        self.len -= 1;
        if self.len == 0 {
            self.buf.clear();
            self.head = 0;
        } else {
            self.head = next;
            if self.head * 2 >= self.buf.len() {
                self.buf.drain(..self.head);
                self.head = 0;
            }
        }
        Some(cost)
    }

    fn front(&self) -> Option<Stored<'_>> {
        self.at(self.head).map(|(s, _)| s)
    }

    fn iter(&self) -> RingIter<'_> {
        RingIter {
            ring: self,
            at: self.head,
            left: self.len,
        }
    }

    /// Removes the event with `seq`; returns its cost.
    fn remove_seq(&mut self, seq: Seq) -> Option<usize> {
        let mut at = self.head;
        loop {
            let (s, next) = self.at(at)?;
            if s.seq == seq {
                let cost = s.cost();
                self.buf.drain(at..next);
                self.len -= 1;
                if self.len == 0 {
                    self.buf.clear();
                    self.head = 0;
                }
                return Some(cost);
            }
            at = next;
        }
    }
}

/// The events of a [`Ring`], oldest first.
pub(crate) struct RingIter<'a> {
    ring: &'a Ring,
    at: usize,
    left: usize,
}

impl<'a> Iterator for RingIter<'a> {
    type Item = Stored<'a>;

    fn next(&mut self) -> Option<Stored<'a>> {
        if self.left == 0 {
            return None;
        }
        let (s, next) = self.ring.at(self.at)?;
        self.at = next;
        self.left -= 1;
        Some(s)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// An invitation into a room, as IRC servers keep one: it is used by the invited user's join,
/// and lapses when that user quits (another user who takes the nick later is not invited) or
/// after [`INVITE_LIFETIME`](crate::limits::INVITE_LIFETIME).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invite {
    /// The folded nick invited.
    pub(crate) nick: String,
    /// The user that had the nick when it was invited, when it was on this node (a nick
    /// invited on another node of a cluster has none here: the nick is what counts).
    pub(crate) user: Option<UserId>,
    /// When it lapses.
    pub(crate) until: crate::time::Millis,
}

impl Invite {
    /// Whether this invitation lets `user` (now named `nick`, folded) in at `now`. An
    /// invitation follows its user through nick changes, as on IRC.
    pub(crate) fn admits(&self, user: UserId, nick: &str, now: crate::time::Millis) -> bool {
        now < self.until
            && match self.user {
                Some(u) => u == user,
                None => self.nick == nick,
            }
    }
}

/// A room.
#[derive(Debug)]
pub(crate) struct Room {
    /// Its topic: set with [`Room::set_topic`], which keeps `topic_set` with it.
    pub(crate) topic: Option<Text>,
    /// Who set the topic and when, if this server saw it set (IRC's `333`). Kept in memory
    /// only: the store keeps the topic, not this, so after a restart it is unknown (boxed:
    /// most rooms have no topic).
    pub(crate) topic_set: Option<Box<TopicSet>>,
    /// Members, attached or detached (waiting for resume).
    pub(crate) members: Members,
    /// Seq of the latest event (0: none yet).
    pub(crate) last_seq: Seq,
    history: Ring,
    /// Sum of the history's [`Stored::cost`].
    history_bytes: usize,
    /// Its founder, operators, modes, bans and mutes, once anything is set (boxed: most rooms
    /// have none).
    pub(crate) policy: Option<Box<crate::moderation::Policy>>,
    /// Who is invited and has not come yet, oldest first (at most
    /// [`MAX_INVITED`](crate::moderation::MAX_INVITED)).
    pub(crate) invited: Vec<Invite>,
    /// Big rooms only: every attached connection of a member, as of `attached_gen` (the hub's
    /// `attach_gen` then; 0: not built). A broadcast then walks one dense list instead of
    /// member, user, device and connection tables: in a room of thousands, those lookups were
    /// most of the server's time (issue 22). Connections only (8 bytes a member, not 16 with
    /// the user): a broadcast that leaves a user out finds that user's connections first.
    pub(crate) attached: Vec<crate::types::ConnId>,
    pub(crate) attached_gen: u64,
    /// Who was in the room when the server last stopped, as the store's record of who is in
    /// each room and the events it loaded tell (set by [`super::Hub::restore`]; boxed: only
    /// rooms a restart found members in have one).
    pub(crate) boot: Option<Box<Boot>>,
    /// When this server made the room new, with no history anywhere (IRC's `329
    /// RPL_CREATIONTIME`). `None` for a room loaded from the store or made again over kept
    /// history, and in a cluster (another node may have made it first): no time rather than a
    /// wrong one. Kept in memory only.
    pub(crate) created: Option<crate::time::Millis>,
    /// Which of the rooms a join made new this is (the hub counts them; 0: made otherwise,
    /// from the store, a cluster or settings): a memory-only server drops a room nobody is
    /// in, and one made again under its name counts its seqs from 1 again.
    pub(crate) made: u64,
}

/// The nicks a restarted hub takes to have been in a room at the restart, and the room's last
/// seq then ("the boot seq"). IRC keeps no record of who was connected when the server stopped
/// (a kill -9 writes no quit, and a graceful stop's quit of an IRC user is counted, not an
/// event, in a big room; the stop keeps its presence record), so an IRC client that comes back
/// and joins again shows what came before the restart already; see `Hub::entered_on`.
///
/// Told by the store's record of who was in the room ([`crate::persist::Write::Presence`],
/// written with the events, so it is as of the last batch stored): every member, a lurker
/// silent for days and any member of a big room (whose joins are not events: `crowd.rs`)
/// alike. And, for a store older than that record, by the loaded events (the newest
/// [`crate::limits::HISTORY_ON_JOIN`] or so, the join's replay window): a nick was in the room
/// when its latest event there leaves it in (a join, a line, a topic, a nick change to it), not
/// when that is a part, a quit, a kick of it or a nick change away. The two are joined: in a
/// big room a part or quit is not in the history, so a member whose last line is among the
/// loaded events is taken to have stayed.
///
/// Bounded by the room's members at the restart (a room of 5,000 lurkers keeps 5,000 folded
/// nicks), each dropped as it joins again, and all of it once nobody is left or a join's replay
/// no longer reaches back to the restart (`Hub::forget_boot_presence`).
#[derive(Debug)]
pub(crate) struct Boot {
    /// The room's last seq when the hub was restored.
    pub(crate) seq: Seq,
    /// Folded nicks, sorted; each leaves once it joins again (`Boot::forget`).
    present: Vec<FoldedNick>,
}

impl Boot {
    /// Who was in the room whose last seq is `seq` when the server stopped: the nicks the
    /// store kept as `present`, and those `events` (oldest first) leave in it; `None` if
    /// nobody.
    pub(crate) fn at_restart(
        seq: Seq,
        events: &[RoomEvent],
        present: &[Nick],
    ) -> Option<Box<Boot>> {
        let mut seen: Vec<(FoldedNick, bool)> = Vec::new();
        let mut set = |nick: FoldedNick, here: bool| match seen.iter_mut().find(|(n, _)| *n == nick)
        {
            Some(slot) => slot.1 = here,
            None => seen.push((nick, here)),
        };
        for ev in events {
            let from = ev.from.folded_key();
            match &ev.kind {
                EventKind::Part { .. } | EventKind::Quit { .. } => set(from, false),
                EventKind::Nick { new } => {
                    set(from, false);
                    set(new.folded_key(), true);
                }
                EventKind::Kick { target, .. } => {
                    set(from, true);
                    set(target.folded_key(), false);
                }
                _ => set(from, true),
            }
        }
        let mut in_room: Vec<FoldedNick> = seen
            .into_iter()
            .filter_map(|(n, here)| here.then_some(n))
            .chain(present.iter().map(Nick::folded_key))
            .collect();
        if in_room.is_empty() {
            return None;
        }
        in_room.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        in_room.dedup();
        in_room.shrink_to_fit();
        Some(Box::new(Boot {
            seq,
            present: in_room,
        }))
    }

    /// Whether `nick` (folded) was in the room at the restart and has not joined since.
    pub(crate) fn was_in(&self, nick: &FoldedNick) -> bool {
        self.present
            .binary_search_by(|n| n.as_str().cmp(nick.as_str()))
            .is_ok()
    }

    /// `nick` joined again: from now on its own events tell what it saw. False once nobody is
    /// left.
    pub(crate) fn forget(&mut self, nick: &FoldedNick) -> bool {
        if let Ok(at) = self
            .present
            .binary_search_by(|n| n.as_str().cmp(nick.as_str()))
        {
            self.present.remove(at);
        }
        !self.present.is_empty()
    }
}

/// Who set a room's topic, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicSet {
    pub(crate) by: Nick,
    pub(crate) at: crate::time::Millis,
}

impl Room {
    /// The topic is now `topic`, set by `by` (who and when, if known).
    pub(crate) fn set_topic(&mut self, topic: Option<Text>, by: Option<TopicSet>) {
        self.topic_set = by.filter(|_| topic.is_some()).map(Box::new);
        self.topic = topic;
    }

    pub(crate) fn new() -> Room {
        Room {
            topic: None,
            topic_set: None,
            members: Members::default(),
            last_seq: Seq(0),
            history: Ring::default(),
            history_bytes: 0,
            policy: None,
            invited: Vec::new(),
            attached: Vec::new(),
            attached_gen: 0,
            boot: None,
            created: None,
            made: 0,
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
        stored: Stored<'_>,
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
        while self.history.len > cap
            || (*total > budget && self.history.len > min_kept.clamp(1, cap))
        {
            let Some(old) = self.history.pop_front() else {
                break;
            };
            self.history_bytes -= old;
            *total -= old;
        }
    }

    /// Forgets the event with `seq` (its batch was not stored). Returns the history bytes freed.
    pub(crate) fn forget(&mut self, seq: Seq) -> usize {
        let Some(cost) = self.history.remove_seq(seq) else {
            return 0;
        };
        self.history_bytes -= cost;
        cost
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
    pub(crate) fn between(&self, after: Seq, upto: Seq) -> impl Iterator<Item = Stored<'_>> {
        self.history
            .iter()
            .skip_while(move |s| s.seq <= after)
            .take_while(move |s| s.seq <= upto)
    }

    /// The last `n` events with seq ≤ `upto`.
    pub(crate) fn last_n(&self, n: usize, upto: Seq) -> impl Iterator<Item = Stored<'_>> {
        let kept_upto = self.history.iter().filter(|s| s.seq <= upto).count();
        let skip = kept_upto.saturating_sub(n);
        self.history.iter().take(kept_upto).skip(skip)
    }

    /// Those of the last `n` events with seq ≤ `upto` that came after `after`.
    pub(crate) fn last_n_after(
        &self,
        n: usize,
        after: Seq,
        upto: Seq,
    ) -> impl Iterator<Item = Stored<'_>> {
        self.last_n(n, upto).skip_while(move |s| s.seq <= after)
    }

    /// The seqs of the last `n` chat lines (says, actions, notices) with `after` < seq ≤
    /// `upto`, oldest first: what a join replays to a dialect that shows only the lines, so
    /// that a room where many came and went still shows its last `n` lines, not the few among
    /// its last `n` events.
    /// Decodes from the newest back only as far as the `n`th line (the ring walks forward, so
    /// its headers are gathered first: no frame is decoded for that).
    /// Looks back at most [`LINES_LOOKBACK`] events a line: a join's cost stays bounded by
    /// `n`, not by the ring's length (a room of only comings and goings has every event of a
    /// ring decoded on every join, and `history_len` may be large).
    pub(crate) fn last_n_lines_after(&self, n: usize, after: Seq, upto: Seq) -> Vec<Seq> {
        let kept: Vec<Stored<'_>> = self
            .last_n_after(n.saturating_mul(LINES_LOOKBACK), after, upto)
            .collect();
        let mut lines: Vec<Seq> = kept
            .iter()
            .rev()
            .filter(|s| s.event().is_some_and(|ev| ev.kind.is_line()))
            .map(|s| s.seq)
            .take(n)
            .collect();
        lines.reverse();
        lines
    }

    /// The seq of the oldest event a join's replay up to `upto` may show: the first of the
    /// last `n` events, or, for a dialect that shows only the lines (`lines_only`), of the last
    /// `n` lines ([`Room::last_n_lines_after`]), the oldest kept while there are fewer. What
    /// the replay is spared of (its nick's own quit, the restart) is looked for back to there:
    /// the last `n` lines reach further back than the last `n` events where many came and went.
    pub(crate) fn replay_reach(&self, n: usize, upto: Seq, lines_only: bool) -> Option<Seq> {
        if lines_only {
            let lines = self.last_n_lines_after(n, Seq(0), upto);
            if lines.len() >= n
                && let Some(&first) = lines.first()
            {
                return Some(first);
            }
            return self
                .last_n(n.saturating_mul(LINES_LOOKBACK), upto)
                .next()
                .map(|s| s.seq);
        }
        self.last_n(n, upto).next().map(|s| s.seq)
    }

    /// Every event kept, decoded, oldest first.
    pub(crate) fn events(&self) -> impl Iterator<Item = crate::wire::RoomEvent> + '_ {
        self.history.iter().filter_map(|s| s.event())
    }

    /// [`Room::events`] that are durable (all of them without a store): what is read as history
    /// never shows an event its batch may still fail to store.
    pub(crate) fn durable_events<'a>(
        &'a self,
        durable: Option<&'a super::durable::Durable>,
    ) -> impl Iterator<Item = crate::wire::RoomEvent> + 'a {
        self.history
            .iter()
            .filter(move |s| durable.is_none_or(|d| d.batch_of(s.no).is_none()))
            .filter_map(|s| s.event())
    }

    /// Events kept.
    pub(crate) fn kept(&self) -> usize {
        self.history.len
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

    /// The byte ring gives back what went in, in order, through drops from the front, removals
    /// from the middle, the buffer's compaction and large numbers in the headers; and the
    /// history budget's total stays the sum of what is kept.
    #[test]
    fn the_history_ring_keeps_events_as_recorded() {
        let mut room = Room::new();
        let mut total = 0;
        let mut model: std::collections::VecDeque<(u64, Vec<u8>, u64)> = Default::default();
        let cap = 50;
        for i in 1..=400u64 {
            let seq = room.next_seq();
            let frame: Vec<u8> = (0..(i % 37 + (i % 5) * 60)).map(|b| b as u8).collect();
            let no = if i % 3 == 0 { 0 } else { u64::MAX - i };
            room.record(Stored::new(seq, &frame, no), cap, usize::MAX, 1, &mut total);
            model.push_back((seq.0, frame, no));
            if model.len() > cap {
                model.pop_front();
            }
            if i % 7 == 0 {
                let gone = model.remove(model.len() / 2).unwrap();
                let freed = room.forget(Seq(gone.0));
                assert_eq!(freed, gone.1.len() + Ring::FIXED_COST);
                total -= freed;
            }
            assert_eq!(room.forget(Seq(10_000)), 0);
            let kept: Vec<(u64, Vec<u8>, u64)> = room
                .between(Seq(0), Seq(u64::MAX))
                .map(|s| (s.seq.0, s.frame.to_vec(), s.no))
                .collect();
            assert_eq!(kept, Vec::from(model.clone()));
            assert_eq!(room.kept(), model.len());
            assert_eq!(room.oldest_kept().map(|s| s.0), model.front().map(|m| m.0));
            let cost: usize = model.iter().map(|m| m.1.len() + Ring::FIXED_COST).sum();
            assert_eq!((room.history_bytes(), total), (cost, cost));
        }
        // Windows by seq, through the holes `forget` left.
        let seqs =
            |it: &mut dyn Iterator<Item = Stored<'_>>| it.map(|s| s.seq.0).collect::<Vec<_>>();
        let all: Vec<u64> = model.iter().map(|m| m.0).collect();
        let (lo, hi) = (all[3], all[all.len() - 4]);
        let want: Vec<u64> = all.iter().copied().filter(|&s| s > lo && s <= hi).collect();
        assert_eq!(seqs(&mut room.between(Seq(lo), Seq(hi))), want);
        let want: Vec<u64> = all.iter().copied().filter(|&s| s <= hi).collect();
        assert_eq!(seqs(&mut room.last_n(5, Seq(hi))), want[want.len() - 5..]);
        // A budget drops from the front down to the minimum.
        let mut total = room.history_bytes();
        let seq = room.next_seq();
        room.record(Stored::new(seq, b"x", 1), cap, 0, 3, &mut total);
        assert_eq!(room.kept(), 3);
        assert_eq!(total, room.history_bytes());
    }

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
