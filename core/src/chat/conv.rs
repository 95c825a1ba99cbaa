//! One conversation of the chat model: a room we are in, a direct conversation with one person,
//! or the server's notices when nothing else is open. Its lines (bounded), its members kept
//! sorted (so a change is one insert or remove, and says where), its topic and counts, and for
//! rooms how far back its lines go (scrollback).

use super::line::{Line, LineId, LineKind};
use super::past::Scrollback;
use super::policy::RoomPolicy;
use super::read::ReadMark;
use crate::limits::{CHAT_MAX_LINES, CHAT_MAX_MEMBERS};
use crate::session::Target;
use crate::time::Millis;
use crate::types::{Nick, RoomName, Seq, Text};
use crate::wire::RoomEvent;
use std::collections::{BTreeMap, VecDeque};

/// Which conversation: a room, a direct conversation, or the server's notices.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConvId {
    /// Notices shown when no other conversation is open (before the first join, after the
    /// last part).
    Server,
    /// A room we are in.
    Room(RoomName),
    /// A direct conversation with one person; the nick is folded (`Bob` and `bob` are one).
    Direct(Nick),
}

impl ConvId {
    /// The direct conversation with `peer`, whatever the case of its nick.
    pub fn direct(peer: &Nick) -> ConvId {
        // Folding keeps a valid nick valid: it only lowers ASCII letters.
        ConvId::Direct(Nick::new(&peer.folded()).unwrap_or_else(|_| peer.clone()))
    }

    /// Where input typed here goes (`None` for the server's notices).
    pub fn target(&self) -> Option<Target> {
        match self {
            ConvId::Server => None,
            ConvId::Room(room) => Some(Target::Room(room.clone())),
            ConvId::Direct(peer) => Some(Target::Nick(peer.clone())),
        }
    }

    /// A short stable key for front ends that index by string: `#room`, `@nick` (folded), or
    /// `*` for the server's notices. [`ConvId::from_key`] reads it back.
    pub fn key(&self) -> String {
        match self {
            ConvId::Server => "*".into(),
            ConvId::Room(room) => room.to_string(),
            ConvId::Direct(peer) => format!("@{peer}"),
        }
    }

    /// Reads a [`ConvId::key`] back; `None` if it is not one.
    pub fn from_key(key: &str) -> Option<ConvId> {
        if key == "*" {
            return Some(ConvId::Server);
        }
        if let Some(nick) = key.strip_prefix('@') {
            return Nick::new(nick).ok().map(|n| ConvId::direct(&n));
        }
        key.starts_with('#')
            .then(|| RoomName::new(key).ok().map(ConvId::Room))
            .flatten()
    }
}

/// A room's members, sorted case-insensitively, at most [`CHAT_MAX_MEMBERS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members(Vec<Nick>);

impl Members {
    /// The members, sorted.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Nick> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// None at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Where `nick` is (case-insensitively).
    pub fn position(&self, nick: &Nick) -> Option<usize> {
        self.search(nick).ok()
    }

    fn search(&self, nick: &Nick) -> Result<usize, usize> {
        let key = nick.folded();
        self.0.binary_search_by(|m| m.folded().cmp(&key))
    }

    pub(super) fn set(&mut self, members: &[Nick]) {
        self.0 = members.iter().take(CHAT_MAX_MEMBERS).cloned().collect();
        self.0.sort_by_key(Nick::folded);
        self.0.dedup_by_key(|n| n.folded());
    }

    /// Adds `nick`; where it went, if it was not there (and there was room).
    pub(super) fn add(&mut self, nick: &Nick) -> Option<usize> {
        let at = self.search(nick).err()?;
        if self.0.len() >= CHAT_MAX_MEMBERS {
            return None;
        }
        self.0.insert(at, nick.clone());
        Some(at)
    }

    /// Removes `nick`; where it was, if it was there.
    pub(super) fn remove(&mut self, nick: &Nick) -> Option<usize> {
        let at = self.search(nick).ok()?;
        self.0.remove(at);
        Some(at)
    }
}

/// Who among a room's members is away, each with its away message: from the server's
/// `AwayHere` after a member list, and from away changes. Only listed members are kept (so at
/// most [`CHAT_MAX_MEMBERS`]); one who leaves drops out, a rename carries it along.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwayMembers(BTreeMap<String, Text>);

impl AwayMembers {
    /// `nick`'s away message, if away.
    pub fn get(&self, nick: &Nick) -> Option<&Text> {
        self.0.get(&nick.folded())
    }

    /// How many are away.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Nobody is away.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets (`Some`) or clears `nick`'s away; whether that changed anything.
    pub(super) fn set(&mut self, nick: &Nick, away: Option<&Text>) -> bool {
        let key = nick.folded();
        match away {
            Some(a) if self.0.get(&key) == Some(a) => false,
            Some(a) => {
                self.0.insert(key, a.clone());
                true
            }
            None => self.0.remove(&key).is_some(),
        }
    }

    /// Nobody is away (a new member list).
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// `old` is `new` now: its away goes with it.
    pub(super) fn rename(&mut self, old: &Nick, new: &Nick) {
        if let Some(a) = self.0.remove(&old.folded()) {
            self.0.insert(new.folded(), a);
        }
    }
}

/// How many of a room's latest events held as no line a conversation keeps ([`Conv::unlined`]):
/// a visit's own join, and a part or a rename of ours, so a few visits' worth.
const UNLINED_KEPT: usize = 16;

/// One conversation. See the module docs.
#[derive(Debug, Clone)]
pub struct Conv {
    id: ConvId,
    /// How it is named: the room, the peer's nick as last seen, or `natter`.
    label: String,
    lines: VecDeque<Line>,
    pub(super) members: Members,
    /// Rooms: which members are away ([`AwayMembers`]).
    pub(super) away: AwayMembers,
    /// Rooms: how many members the server last counted, when it did (a big room's summary);
    /// the list may then hold fewer.
    pub(super) counted: Option<u32>,
    pub(super) topic: Option<Text>,
    pub(super) unread: u32,
    pub(super) mentions: u32,
    /// Rooms: events up to this seq were history when we joined (they raise no alerts).
    pub(super) live_after: Option<Seq>,
    /// Rooms: the seq the member list (and who of it is away) is as of: the join's, or the
    /// latest refresh's (a resume). Joins and parts up to it that follow are replayed history,
    /// which leaves who is away as the server said.
    pub(super) listed_at: Option<Seq>,
    /// Rooms: older lines being loaded, failed to load, or known not to exist ([`Scrollback`]
    /// without `Full`, which the line count says).
    pub(super) older: Scrollback,
    /// Rooms: older lines were asked for while `older` was [`Scrollback::Start`] (a typed
    /// `/history`); an empty answer leaves the room at its beginning.
    pub(super) asked_at_start: bool,
    /// Rooms: the oldest seq of the lines `/clear` took away, which older lines are asked
    /// below, as if they were still held.
    cleared_below: Option<Seq>,
    /// Rooms, signed in: the account's read position here.
    pub(super) read: ReadMark,
    /// Rooms: who is in charge, modes, bans ([`RoomPolicy`]).
    pub(super) policy: RoomPolicy,
    /// Rooms: a [`RoomPolicy`] came since we joined (the first one is shown as a line).
    pub(super) policy_seen: bool,
    /// Rooms: the words of the kick that put us out, when it is the room's latest event (the
    /// server's `Parted` follows it): said where we land, since the room's own lines go with it.
    pub(super) kicked: Option<String>,
    /// Direct conversations: the peer's away message as last said here, so that the server's
    /// answer to each message written to someone away (IRC's `301`) is said once per change,
    /// as IRC clients say it in a query window.
    pub(super) peer_away: Option<Text>,
    /// Rooms left and joined again, with their lines kept: the newest seq shown or said here
    /// before ([`Conv::seen`]). The join's replay up to it is there already; what comes after
    /// it first says what was missed in between, if anything.
    pub(super) rejoined_after: Option<Seq>,
    /// Rooms: the newest seq of the room's events that came here, shown as a line or said
    /// otherwise (our own join, which the notice of the join says), in any visit. A join again
    /// replays our parts and joins of the visits before: up to it, they were said.
    pub(super) seen: Option<Seq>,
    /// Rooms: the latest events that came here but are held as no line (our own joins, which
    /// the notice of each says; our own parts and renames said otherwise), by seq and time, at
    /// most [`UNLINED_KEPT`]: a replay after a join again finds by them, as by the lines, a
    /// room that started over ([`Conv::holds_other`]), where nothing else of that visit is
    /// held (we made the room and left it).
    unlined: VecDeque<(Seq, Millis)>,
    /// Rooms: the first line of the notice of this visit's join (`you are in #rust with:
    /// ...`), said when the join came and before its replay, until a live event comes: the
    /// replay's events are older than it, and go above it ([`Conv::insert_before`]).
    pub(super) join_mark: Option<LineId>,
    /// Rooms that started over since lines were kept ([`Conv::made_anew`]): the line that says
    /// so, below the old room's lines. The new room's older lines go right below it
    /// ([`Conv::prepend`]), never among the old room's, whose seqs were another numbering.
    pub(super) anew_mark: Option<LineId>,
    /// Bumped on every change to it, so a front end can tell cheaply whether to redraw it.
    pub(super) revision: u64,
    /// When it was last active (a model-wide counter): the stalest direct conversation goes
    /// first when there are too many.
    pub(super) active: u64,
}

impl Conv {
    pub(super) fn new(id: ConvId, label: String) -> Conv {
        Conv {
            id,
            label,
            lines: VecDeque::new(),
            members: Members::default(),
            away: AwayMembers::default(),
            counted: None,
            topic: None,
            unread: 0,
            mentions: 0,
            live_after: None,
            listed_at: None,
            older: Scrollback::More,
            asked_at_start: false,
            cleared_below: None,
            read: ReadMark::default(),
            policy: RoomPolicy::default(),
            policy_seen: false,
            kicked: None,
            peer_away: None,
            rejoined_after: None,
            seen: None,
            unlined: VecDeque::new(),
            join_mark: None,
            anew_mark: None,
            revision: 0,
            active: 0,
        }
    }

    /// Which conversation this is.
    pub fn id(&self) -> &ConvId {
        &self.id
    }

    /// How it is named (`#lobby`, `Bob`, `natter`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Its lines, oldest first (at most [`CHAT_MAX_LINES`]).
    pub fn lines(&self) -> &VecDeque<Line> {
        &self.lines
    }

    /// The line with this id, if still kept (found from the newest end, where changes are).
    pub fn line(&self, id: LineId) -> Option<&Line> {
        self.lines.iter().rev().find(|l| l.id == id)
    }

    /// The line after the line with this id, if both are kept.
    pub fn line_after(&self, id: LineId) -> Option<&Line> {
        let at = self.lines.iter().position(|l| l.id == id)?;
        self.lines.get(at + 1)
    }

    /// Rooms: what is known of older lines (`None` for other conversations): more may be
    /// loaded, they are loading, loading failed, the room's beginning is here, or no more fit.
    pub fn scrollback(&self) -> Option<Scrollback> {
        if !matches!(self.id, ConvId::Room(_)) {
            return None;
        }
        Some(match &self.older {
            Scrollback::More | Scrollback::Failed(_) if self.lines.len() >= CHAT_MAX_LINES => {
                Scrollback::Full
            }
            state => state.clone(),
        })
    }

    /// The oldest seq its lines hold (events, and the first seq of a missed range), or held
    /// before a `/clear`, if any: what older lines are asked below.
    pub fn oldest_seq(&self) -> Option<Seq> {
        self.lines
            .iter()
            .filter_map(|l| match l.kind {
                LineKind::Gap { first, .. } => Some(first),
                _ => l.seq,
            })
            .chain(self.cleared_below)
            .min()
    }

    /// Its members (rooms; empty otherwise).
    pub fn members(&self) -> &Members {
        &self.members
    }

    /// Its members who are away, with their messages (rooms; empty for the others).
    pub fn away(&self) -> &AwayMembers {
        &self.away
    }

    /// How many members it has (rooms): the server's count in a big room, whose joins and
    /// parts come summed up and whose list may be cut short; otherwise the list's length.
    pub fn member_count(&self) -> usize {
        self.counted
            .map_or(self.members.len(), |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            })
            .max(self.members.len())
    }

    /// Whether the member list holds fewer than [`Conv::member_count`] (a big room: `/who`
    /// lists them).
    pub fn members_partial(&self) -> bool {
        self.member_count() > self.members.len()
    }

    /// Its topic (rooms).
    pub fn topic(&self) -> Option<&Text> {
        self.topic.as_ref()
    }

    /// The newest seq its lines hold, if any.
    pub fn newest_seq(&self) -> Option<Seq> {
        self.lines.iter().rev().find_map(|l| l.seq)
    }

    /// Rooms, signed in: lines at or below this seq are read (the account's marker, or what
    /// was shown here since).
    pub fn read_upto(&self) -> Option<Seq> {
        self.read.upto()
    }

    /// Chat lines from others not yet read.
    pub fn unread(&self) -> u32 {
        self.unread
    }

    /// Of those, the ones for us: mentions of our nick, and direct messages.
    pub fn mentions(&self) -> u32 {
        self.mentions
    }

    /// Rooms: its settings (founder, operators, voiced, modes, bans once asked for).
    pub fn policy(&self) -> &RoomPolicy {
        &self.policy
    }

    /// Bumped on every change to it (lines, members, topic, counts, settings), so a front
    /// end can tell cheaply whether to redraw it.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Appends a line; returns how many old lines were dropped to stay within the bound (0 or 1).
    pub(super) fn push(&mut self, line: Line) -> usize {
        let dropped = self.make_room();
        self.lines.push_back(line);
        self.revision += 1;
        dropped
    }

    /// Puts a line right before the line with id `mark`; `None` (and nothing done) when that
    /// line is not kept. Otherwise how many old lines were dropped to stay within the bound.
    pub(super) fn insert_before(&mut self, mark: LineId, line: Line) -> Option<usize> {
        self.lines.iter().position(|l| l.id == mark)?;
        let dropped = self.make_room();
        let at = self.lines.iter().position(|l| l.id == mark)?;
        self.lines.insert(at, line);
        self.revision += 1;
        Some(dropped)
    }

    /// Drops the oldest line if the bound is reached, for one more; how many went (0 or 1).
    fn make_room(&mut self) -> usize {
        let mut dropped = 0;
        if self.lines.len() >= CHAT_MAX_LINES {
            self.lines.pop_front();
            dropped = 1;
            // What was cleared is older still: below the oldest held now is what is missing.
            self.cleared_below = None;
            // The first lines are gone: the beginning is no longer here.
            if matches!(self.older, Scrollback::Start | Scrollback::Gone) {
                self.older = Scrollback::More;
            }
        }
        dropped
    }

    /// Takes the answers and notices at its end newer than line `mark` (at most `max`, the
    /// newest): what was said to the person here, not the room's own lines.
    pub(super) fn take_said_since(&mut self, mark: LineId, max: usize) -> Vec<Line> {
        let mut said = Vec::new();
        while said.len() < max
            && let Some(last) = self.lines.back()
            && last.id > mark
            && last.seq.is_none()
            && matches!(
                last.kind,
                LineKind::Notice(_) | LineKind::Error(_) | LineKind::Rooms { .. }
            )
            && let Some(line) = self.lines.pop_back()
        {
            said.push(line);
        }
        said.reverse();
        said
    }

    /// Drops every line (`/clear`); returns how many. Older lines are still asked for below
    /// the oldest of them ([`Conv::oldest_seq`]), so scrolling up does not bring them back. What
    /// the top said (the room's beginning) is not said over the emptied view: scrolling up to it
    /// finds it again.
    pub(super) fn clear(&mut self) -> usize {
        let n = self.lines.len();
        self.cleared_below = self.oldest_seq();
        self.lines.clear();
        if matches!(
            self.older,
            Scrollback::Start | Scrollback::Gone | Scrollback::Failed(_)
        ) {
            self.older = Scrollback::More;
        }
        if n > 0 {
            self.revision += 1;
        }
        n
    }

    /// Puts older lines (oldest first) in front of everything the room holds: they are older
    /// than every line here, notices included (the notice of our joining marks where this
    /// visit began, which is after them). In a room that started over since lines were kept,
    /// in front of everything below the notice that says so ([`Conv::anew_mark`]): the old
    /// room's lines above it are another room's, older still, and not to be interleaved with.
    /// Only as many as fit under [`CHAT_MAX_LINES`], the newest of them. Returns how many went
    /// in.
    pub(super) fn prepend(&mut self, older: Vec<Line>) -> usize {
        let room = CHAT_MAX_LINES.saturating_sub(self.lines.len());
        let skip = older.len().saturating_sub(room);
        let n = older.len() - skip;
        let start = self
            .anew_mark
            .and_then(|mark| self.lines.iter().position(|l| l.id == mark))
            .map_or(0, |at| at + 1);
        for (i, line) in older.into_iter().skip(skip).enumerate() {
            self.lines.insert(start + i, line);
        }
        if n > 0 {
            self.revision += 1;
        }
        n
    }

    /// Counts chat lines from others above `upto` (unread, and of those mentions).
    pub(super) fn count_above(&self, upto: Option<Seq>) -> (u32, u32) {
        self.lines
            .iter()
            .filter(|l| {
                !l.mine
                    && matches!(
                        l.kind,
                        LineKind::Say { .. } | LineKind::Act { .. } | LineKind::UserNotice { .. }
                    )
                    && l.seq.is_some_and(|s| upto.is_none_or(|u| s > u))
            })
            .fold((0u32, 0u32), |(u, m), l| {
                (u.saturating_add(1), m.saturating_add(u32::from(l.mention)))
            })
    }

    pub(super) fn set_label(&mut self, label: String) {
        self.label = label;
    }

    /// A room left and now joined again: its lines stay; what the room knew of us (members,
    /// settings, a kick) is learned again.
    pub(super) fn rejoin(&mut self) {
        // Our join of the visit before (`live_after`) was said by the notice of it.
        self.rejoined_after = self
            .lines
            .iter()
            .filter_map(|l| l.seq)
            .max()
            .max(self.seen)
            .max(self.live_after);
        self.members = Members::default();
        self.away.clear();
        self.counted = None;
        self.policy = RoomPolicy::default();
        self.policy_seen = false;
        self.kicked = None;
        self.join_mark = None;
        self.revision += 1;
    }

    /// Whether a kept line, or an event that came here as no line ([`Conv::said_unlined`]),
    /// has `ev`'s seq but is another event (said at another time): the room's seqs started
    /// over since it was shown. The same event replayed keeps its time.
    pub(super) fn holds_other(&self, ev: &RoomEvent) -> bool {
        self.lines
            .iter()
            .map(|l| (l.seq, l.at))
            .chain(self.unlined.iter().map(|(seq, at)| (Some(*seq), *at)))
            .any(|(seq, at)| seq == Some(ev.seq) && at != ev.at)
    }

    /// `ev` came here and is held as no line (our own join, part or rename, said otherwise):
    /// kept by seq and time for [`Conv::holds_other`], the latest [`UNLINED_KEPT`].
    pub(super) fn said_unlined(&mut self, ev: &RoomEvent) {
        if self.unlined.len() >= UNLINED_KEPT {
            self.unlined.pop_front();
        }
        self.unlined.push_back((ev.seq, ev.at));
    }

    /// A room joined again whose seqs started over (a memory-only server drops a room nobody
    /// is in and counts a new one from 1; so does every room after its restart): the lines
    /// kept are the room before's, and their seqs say nothing of this one. Kept as lines said
    /// (a missed stretch as its words), with no seq: nothing of the join's replay is taken for
    /// them, older lines are asked below this room's own, and its read position is learned anew.
    pub(super) fn made_anew(&mut self) {
        for l in &mut self.lines {
            l.seq = None;
            if let LineKind::Gap { words, .. } = &l.kind {
                l.kind = LineKind::Notice(words.clone());
            }
        }
        self.rejoined_after = None;
        self.seen = None;
        self.unlined.clear();
        self.cleared_below = None;
        self.read = ReadMark::default();
        self.older = Scrollback::More;
        self.revision += 1;
    }

    /// A direct conversation whose peer was renamed: its id and label are the new nick's.
    pub(super) fn rename(&mut self, id: ConvId, label: String) {
        self.id = id;
        self.label = label;
    }

    pub(super) fn last(&self) -> Option<&Line> {
        self.lines.back()
    }
}
