//! Which rooms the session is in, joining or leaving, and per room which seqs it has emitted, so
//! every room event reaches the UI once (above the last seen, or inside a gap being refilled) and
//! a resume can say where it left off. Topics, members and unread counts are not kept here: they
//! are what a person sees, and live in the chat model ([`crate::chat`]).

use crate::limits::{MAX_OPEN_GAPS, MAX_ROOMS_PER_USER};
use crate::types::{RoomName, Seq, Text};
use crate::wire::ClientMsg;

/// The seqs of one room the session is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RoomSeqs {
    pub(super) room: RoomName,
    /// Highest seq seen, `None` before the first event.
    pub(super) last_seq: Option<Seq>,
    /// Lowest seq emitted, live or past: where `/history` goes on from.
    pub(super) oldest: Option<Seq>,
    /// Missed ranges whose refill is awaited; no seq in them was ever emitted.
    pub(super) gaps: Vec<OpenGap>,
    /// Rejoined after a failed resume, having seen up to this seq: the first event after the
    /// rejoin shows whether (and what) was missed meanwhile.
    pub(super) rejoined_after: Option<Seq>,
    /// The seq of our last join (or entry) as the server said it: events up to it are
    /// history, and a rename in them is not ours now, whoever had our nick then.
    pub(super) joined: Seq,
    /// Someone put us out (a live `Kick` naming us): the `Parted` that follows is that kick,
    /// which its event said already, not a leave of ours.
    pub(super) kicked: bool,
    /// A big room: its member list at our last join (or resume) was as long as a list gets
    /// ([`MAX_MEMBERS_LISTED`](crate::limits::MAX_MEMBERS_LISTED)). Its comings and goings come
    /// summed up (`Crowd`), so the joins, parts and quits up to `joined` are old news from
    /// when it was small, which the list holds already: they are not shown.
    pub(super) big: bool,
}

/// What a gap marker means to us: the part of it not seen before (to show), and from which seq
/// to ask for history, if at all.
pub(super) type GapFound = (Option<(Seq, Seq)>, Option<Seq>);

/// A missed range `next..=last` of one room, and where its last history request started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OpenGap {
    next: Seq,
    last: Seq,
    asked: Seq,
}

impl RoomSeqs {
    fn new(room: RoomName) -> RoomSeqs {
        RoomSeqs {
            room,
            last_seq: None,
            oldest: None,
            gaps: Vec::new(),
            rejoined_after: None,
            joined: Seq::default(),
            kicked: false,
            big: false,
        }
    }

    /// We are in the room again (a resume, or a rejoin after a failed one), at join seq `seq`.
    /// Its seqs go on, unless the room is new (a server without a store restarted), which
    /// shows as a join seq not above what we saw: a rejoin is announced, so its seq is new. (A
    /// big room's quiet join names the room's latest seq instead, which equals ours when
    /// nothing was missed: that case is taken for a new room too, and its replay shown again.)
    ///
    /// What counts is what we saw, not the end of a gap marker: a marker may name seqs the
    /// server had given out and never stored (its store failed, or it was killed before the
    /// commit), which it gives out again once restarted.
    ///
    /// `quiet`: we entered the room as an account's device (signed in since the welcome), and
    /// the account's user was in it already: the seq is the room's latest, not a new join's,
    /// and a room with accounts has a store, whose seqs go on. Equal to ours, nothing was
    /// missed; the room is not new.
    fn rejoined(&mut self, seq: Seq, resumed: bool, quiet: bool) {
        self.joined = seq;
        if let Some(last) = self.last_seq {
            let seen = self
                .gaps
                .iter()
                .find(|g| g.last == last)
                .map_or(last, |g| Seq(g.next.0.saturating_sub(1)));
            if seq < seen || (seq == seen && !resumed && !quiet) {
                self.last_seq = None;
                self.oldest = None;
                self.gaps.clear();
            } else if !resumed {
                self.rejoined_after = Some(last);
            }
        }
    }

    /// Decides whether an event with `seq` is new, and records it if so. Every seq is accepted
    /// at most once: above `last_seq`, or inside an open gap (whose seqs were never emitted, and
    /// whose refill comes in ascending order).
    pub(super) fn accept(&mut self, seq: Seq) -> bool {
        let new = self.is_new(seq);
        if new {
            self.saw(seq);
        }
        new
    }

    fn is_new(&mut self, seq: Seq) -> bool {
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

    /// An event with `seq` was emitted (live, or from the past): the oldest one is where
    /// scrollback goes on from.
    pub(super) fn saw(&mut self, seq: Seq) {
        self.oldest = Some(self.oldest.map_or(seq, |o| o.min(seq)));
    }

    /// Records a gap marker. Returns the part not seen before (to show), and from which seq to
    /// ask for history, if at all.
    ///
    /// A marker starting inside an open gap is the server saying a refill stopped there (what
    /// is gone from its history, or what did not fit in our queue): asked again only if the
    /// refill got further than the last request, so asking always makes progress and ends.
    pub(super) fn on_gap(&mut self, first: Seq, last: Seq) -> GapFound {
        let mut ask = None;
        if let Some(g) = self
            .gaps
            .iter_mut()
            .find(|g| g.next <= first && first <= g.last)
            && first > g.asked
        {
            g.asked = first;
            ask = Some(first);
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

    /// The first event after a rejoin: the missed range between what we saw before and it, if
    /// any (shown and asked for like a gap marker).
    pub(super) fn after_rejoin(&mut self, seq: Seq) -> Option<GapFound> {
        let seen = self.rejoined_after.take()?;
        // The rejoin replays only recent history: what lies between is asked for.
        (seq.0 > seen.0.saturating_add(1)).then(|| self.on_gap(Seq(seen.0 + 1), Seq(seq.0 - 1)))
    }
}

/// What [`Rooms::joined`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entered {
    /// A room we were not in.
    New,
    /// A room we were already in (a resume or a rejoin).
    Again,
    /// One room too many; ignored.
    Refused,
}

/// The rooms of a session. See the module docs.
#[derive(Debug, Default)]
pub(super) struct Rooms {
    /// Rooms we are in, in join order.
    list: Vec<RoomSeqs>,
    /// Joins sent (or to send at the welcome) and not yet answered.
    joining: Vec<RoomName>,
    /// Parts sent and not yet answered.
    parting: Vec<RoomName>,
    /// The room the user last asked to join: where input that names no room goes for a client
    /// without a chat model, and the room a UI is told to show once its join is answered.
    chosen: Option<RoomName>,
    /// The first room the session was configured to join (`natter --room`): where input that
    /// names no room goes when none was chosen, also when an account's own rooms came first.
    configured: Option<RoomName>,
    /// The room last asked for, when the server would not let us in: input that names no room
    /// goes nowhere until the next join is asked for, rather than to another room in its
    /// place (a script's `/join #private` and its lines must not end up in `#lobby`).
    refused: Option<RoomName>,
    /// Rooms an earlier session (a reloaded page's) was in, each with the last seq it saw,
    /// named in the resuming hello until the server says we are in each (`Joined`: a room new
    /// to us, its seqs going on from there) or not. A fresh session joins them instead.
    restored: Vec<(RoomName, Seq)>,
    /// The key given for a room (`/join #room KEY`) while we join it or are in it: every join
    /// of it (after a sign-in that held it, or a failed resume) gives it again, or a `+k` room
    /// would refuse the rejoin. At most one per room joined or joining.
    keys: Vec<(RoomName, Text)>,
}

impl Rooms {
    pub(super) fn names(&self) -> impl Iterator<Item = &RoomName> {
        self.list.iter().map(|r| &r.room)
    }

    pub(super) fn get(&self, room: &RoomName) -> Option<&RoomSeqs> {
        self.list.iter().find(|r| &r.room == room)
    }

    pub(super) fn get_mut(&mut self, room: &RoomName) -> Option<&mut RoomSeqs> {
        self.list.iter_mut().find(|r| &r.room == room)
    }

    pub(super) fn is_in(&self, room: &RoomName) -> bool {
        self.get(room).is_some()
    }

    /// Joins sent (or waiting to be sent) and not yet answered, in the order asked.
    pub(super) fn joining(&self) -> &[RoomName] {
        &self.joining
    }

    pub(super) fn is_joining(&self, room: &RoomName) -> bool {
        self.joining.contains(room)
    }

    pub(super) fn is_parting(&self, room: &RoomName) -> bool {
        self.parting.contains(room)
    }

    /// Joins and parts sent and not answered.
    pub(super) fn in_flight(&self) -> bool {
        !self.joining.is_empty() || !self.parting.is_empty()
    }

    /// Where a line that names no room goes without a chat model: the room last asked for (if
    /// we are in it or joining it), else the first configured room (the same), else the first
    /// room we are in, else the first being joined.
    pub(super) fn default_room(&self) -> Option<&RoomName> {
        if self.refused.is_some() {
            return None;
        }
        let here = |r: &&RoomName| self.is_in(r) || self.is_joining(r);
        self.chosen
            .as_ref()
            .filter(here)
            .or_else(|| self.configured.as_ref().filter(here))
            .or_else(|| self.list.first().map(|r| &r.room))
            .or_else(|| self.joining.first())
    }

    /// Whether one more room may be joined under a limit of `max`, counting joins in flight. A
    /// room being left counts as gone when `leaving` is that room.
    pub(super) fn room_for(&self, max: usize, leaving: bool) -> bool {
        self.list.len() + self.joining.len() < max + usize::from(leaving)
    }

    /// A join is asked for (now, or at the welcome); `chosen` when the user asked for it.
    pub(super) fn join_asked(&mut self, room: RoomName, chosen: bool) {
        if chosen {
            self.refused = None;
            self.chosen = Some(room.clone());
        } else if self.configured.is_none() {
            self.configured = Some(room.clone());
        }
        if !self.joining.contains(&room) {
            self.joining.push(room);
        }
    }

    /// The rooms an earlier session was in and the last seq it saw in each, to resume: at most
    /// [`MAX_ROOMS_PER_USER`], each once.
    pub(super) fn restore(&mut self, rooms: Vec<(RoomName, Seq)>) {
        for (room, seq) in rooms {
            if self.restored.len() >= MAX_ROOMS_PER_USER {
                break;
            }
            if !self.restored.iter().any(|(r, _)| *r == room) {
                self.restored.push((room, seq));
            }
        }
    }

    /// The user asked for a room we are in (a `/join` of it).
    pub(super) fn choose(&mut self, room: &RoomName) {
        self.refused = None;
        self.chosen = Some(room.clone());
    }

    /// The server refused a join of `room`: no longer waited for, and if it was the room the
    /// user asked for last, input that names no room has nowhere to go until the next join.
    pub(super) fn join_refused(&mut self, room: &RoomName) {
        self.join_dropped(room);
        if self.chosen.as_ref() == Some(room) {
            self.refused = Some(room.clone());
        }
    }

    /// The room whose refused join leaves input that names no room nowhere to go.
    pub(super) fn refused(&self) -> Option<&RoomName> {
        self.refused.as_ref()
    }

    /// A join is not going to happen (refused by the server, or dropped before it was sent).
    pub(super) fn join_dropped(&mut self, room: &RoomName) {
        self.joining.retain(|r| r != room);
        if !self.is_in(room) {
            self.keys.retain(|(r, _)| r != room);
        }
    }

    /// The key to join `room` with from now on (the last one given wins).
    pub(super) fn set_key(&mut self, room: &RoomName, key: Text) {
        self.keys.retain(|(r, _)| r != room);
        self.keys.push((room.clone(), key));
    }

    /// The key of an earlier session's room ([`Session::resume`](super::Session::resume)),
    /// for a room it was in (so at most one per room restored): kept like one given here.
    pub(super) fn keep_key(&mut self, room: &RoomName, key: Text) {
        if self.is_in(room) || self.restored.iter().any(|(r, _)| r == room) {
            self.set_key(room, key);
        }
    }

    /// The keys given for rooms we are in or joining, each with its room.
    pub(super) fn keys(&self) -> &[(RoomName, Text)] {
        &self.keys
    }

    /// What asks to join `room`: with its key, if one was given for it.
    pub(super) fn join_msg(&self, room: RoomName) -> ClientMsg {
        match self.keys.iter().find(|(r, _)| *r == room) {
            Some((_, key)) => ClientMsg::JoinKey {
                room,
                key: key.clone(),
            },
            None => ClientMsg::Join { room },
        }
    }

    pub(super) fn part_asked(&mut self, room: RoomName) {
        if !self.parting.contains(&room) {
            self.parting.push(room);
        }
    }

    /// A part was refused by the server for another reason than our not being there: we stay.
    pub(super) fn part_dropped(&mut self, room: &RoomName) {
        self.parting.retain(|r| r != room);
    }

    /// The server says we are in `room` at join seq `seq`. Returns what that is to us, and
    /// whether the user asked for this join (a UI then shows the room).
    /// `quiet`: see [`RoomSeqs::rejoined`].
    pub(super) fn joined(
        &mut self,
        room: &RoomName,
        seq: Seq,
        resumed: bool,
        quiet: bool,
    ) -> (Entered, bool) {
        let asked = self.joining.contains(room) && self.chosen.as_ref() == Some(room);
        self.joining.retain(|r| r != room);
        if let Some(state) = self.get_mut(room) {
            state.rejoined(seq, resumed, quiet);
            return (Entered::Again, false);
        }
        if self.list.len() >= MAX_ROOMS_PER_USER {
            return (Entered::Refused, false);
        }
        let mut state = RoomSeqs::new(room.clone());
        state.joined = seq;
        // An earlier session's room, resumed: new to us (and to the UI), but what that session
        // saw is not shown again; the server sends what came after it.
        if let Some(i) = self.restored.iter().position(|(r, _)| r == room) {
            let (_, seen) = self.restored.remove(i);
            if resumed && seen > Seq(0) {
                state.last_seq = Some(seen);
            }
        }
        self.list.push(state);
        (Entered::New, asked)
    }

    /// We left `room` (or learned we are not in it): `Some(kicked)` (someone put us out, see
    /// [`RoomSeqs::kicked`]), `None` if we were not in it.
    pub(super) fn parted(&mut self, room: &RoomName) -> Option<bool> {
        self.parting.retain(|r| r != room);
        self.restored.retain(|(r, _)| r != room);
        if !self.joining.contains(room) {
            self.keys.retain(|(r, _)| r != room);
        }
        let i = self.list.iter().position(|r| &r.room == room)?;
        Some(self.list.remove(i).kicked)
    }

    /// A welcome that resumed: joins and parts in flight are asked again. Returns them.
    pub(super) fn resumed(&self) -> (Vec<RoomName>, Vec<RoomName>) {
        (self.parting.clone(), self.joining.clone())
    }

    /// A fresh session after a failed resume: parts in flight are done (the new session is in no
    /// room), every room we were in and every join in flight is asked for (at most
    /// [`MAX_ROOMS_PER_USER`]). Returns the rooms parted meanwhile and the rooms to join.
    pub(super) fn restarted(&mut self) -> (Vec<RoomName>, Vec<RoomName>) {
        let mut parted = Vec::new();
        for room in std::mem::take(&mut self.parting) {
            if self.parted(&room).is_some() {
                parted.push(room);
            }
        }
        let mut want: Vec<RoomName> = self.names().cloned().collect();
        let restored = std::mem::take(&mut self.restored)
            .into_iter()
            .map(|(r, _)| r);
        for room in restored.chain(std::mem::take(&mut self.joining)) {
            if !want.contains(&room) {
                want.push(room);
            }
        }
        want.truncate(MAX_ROOMS_PER_USER);
        self.joining = want.clone();
        (parted, want)
    }

    /// Rooms and the last seq seen in each, for a resuming hello (an earlier session's, when
    /// restored, until the server answers for them).
    pub(super) fn resume_point(&self) -> Vec<(RoomName, Seq)> {
        self.list
            .iter()
            .map(|r| (r.room.clone(), r.last_seq.unwrap_or_default()))
            .chain(self.restored.iter().cloned())
            .take(MAX_ROOMS_PER_USER)
            .collect()
    }

    #[cfg(test)]
    pub(super) fn all(&self) -> &[RoomSeqs] {
        &self.list
    }
}
