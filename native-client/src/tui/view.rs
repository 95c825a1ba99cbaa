//! What the TUI shows, as plain data: one buffer of lines per room (with its unread count,
//! member list, topic and scroll position), a server buffer for notices when no room is current,
//! the lines we typed that the server has not acknowledged yet, and the latest [`Status`].
//! [`View::apply`] folds driver updates into it; drawing reads it.

use crate::driver::{Status, Update};
use crate::format;
use natter_core::limits::{MAX_MEMBERS_LISTED, SESSION_MAX_PENDING};
use natter_core::render;
use natter_core::session::{ConnState, Event, Target};
use natter_core::wire::{EventKind, RoomEvent};
use natter_core::{Millis, MsgId, Nick, RoomName, Text};
use std::collections::{HashMap, VecDeque};

/// Lines kept per room (older ones are dropped from the screen's memory, not from the server).
pub const MAX_LINES: usize = 2000;

/// Members tracked per room: a `who` lists at most [`MAX_MEMBERS_LISTED`]; joins seen live may add
/// some more.
pub const MAX_MEMBERS: usize = 4 * MAX_MEMBERS_LISTED;

/// Typed lines shown as pending: the session itself keeps no more than this unacknowledged.
pub const MAX_PENDING: usize = SESSION_MAX_PENDING;

/// Characters of an undelivered line quoted in the error that says so.
const UNDELIVERED_PREVIEW: usize = 60;

/// What a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    /// `<nick> text`
    Say {
        /// Who.
        nick: Nick,
        /// What.
        text: String,
    },
    /// `* nick text`
    Act {
        /// Who.
        nick: Nick,
        /// What.
        text: String,
    },
    /// A direct message, in or out.
    Direct {
        /// The other party.
        peer: Nick,
        /// We sent it.
        outgoing: bool,
        /// What.
        text: String,
    },
    /// A notice (`-- ...`).
    Notice(String),
    /// An error in words.
    Error(String),
    /// A gap marker.
    Gap(String),
}

/// One line of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Server time of the event, or when a local notice was made.
    pub at: Millis,
    /// What.
    pub kind: LineKind,
}

/// A line we typed that the server has not acknowledged yet (it may be waiting for a reconnect).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    id: MsgId,
    to: Target,
    /// How it reads once sent: a [`LineKind::Say`], [`LineKind::Act`] or outgoing
    /// [`LineKind::Direct`], stamped when it was typed.
    line: Line,
}

/// One room's (or the server's) lines and side state.
#[derive(Debug, Default, Clone)]
pub struct Buffer {
    lines: VecDeque<Line>,
    /// Chat lines that arrived while another room was current.
    pub unread: usize,
    members: Vec<Nick>,
    /// The topic.
    pub topic: Option<String>,
    /// Rows scrolled up from the bottom (0 = following new lines).
    pub scroll: usize,
}

impl Buffer {
    /// The lines, oldest first.
    pub fn lines(&self) -> &VecDeque<Line> {
        &self.lines
    }

    /// Members, sorted case-insensitively.
    pub fn members(&self) -> &[Nick] {
        &self.members
    }

    fn push(&mut self, at: Millis, kind: LineKind) {
        // A notice repeated back to back (one per failed reconnect attempt) is shown once.
        if matches!(kind, LineKind::Notice(_) | LineKind::Error(_))
            && self.lines.back().is_some_and(|l| l.kind == kind)
        {
            return;
        }
        if self.lines.len() == MAX_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(Line { at, kind });
        if self.scroll > 0 {
            // Keep the view still while scrolled up.
            self.scroll = self.scroll.saturating_add(1);
        }
    }

    fn set_members(&mut self, members: &[Nick]) {
        self.members = members.iter().take(MAX_MEMBERS).cloned().collect();
        self.members.sort_by_key(Nick::folded);
        self.members.dedup_by_key(|n| n.folded());
    }

    fn add_member(&mut self, nick: &Nick) {
        let key = nick.folded();
        if let Err(at) = self.members.binary_search_by_key(&key, Nick::folded)
            && self.members.len() < MAX_MEMBERS
        {
            self.members.insert(at, nick.clone());
        }
    }

    /// Removes `nick`; true if it was there.
    fn remove_member(&mut self, nick: &Nick) -> bool {
        match self
            .members
            .binary_search_by_key(&nick.folded(), Nick::folded)
        {
            Ok(at) => {
                self.members.remove(at);
                true
            }
            Err(_) => false,
        }
    }
}

/// One entry of the room list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomEntry {
    /// Room.
    pub room: RoomName,
    /// Unread chat lines.
    pub unread: usize,
    /// It is the current room.
    pub current: bool,
}

/// Everything the TUI shows.
#[derive(Debug)]
pub struct View {
    rooms: HashMap<RoomName, Buffer>,
    server: Buffer,
    status: Option<Status>,
    me: Nick,
    /// Oldest first.
    pending: VecDeque<Pending>,
    /// The session ended for good: it says in words what was not delivered.
    closed: bool,
}

impl View {
    /// An empty view for a session with nick `me`.
    pub fn new(me: Nick) -> View {
        View {
            rooms: HashMap::new(),
            server: Buffer::default(),
            status: None,
            me,
            pending: VecDeque::new(),
            closed: false,
        }
    }

    /// The latest status, once the driver sent one.
    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    /// The current room, if we are in it.
    pub fn current(&self) -> Option<&RoomName> {
        self.status
            .as_ref()
            .and_then(|s| s.current.as_ref())
            .filter(|r| self.rooms.contains_key(*r))
    }

    /// The buffer on screen: the current room's, or the server buffer.
    pub fn shown(&self) -> &Buffer {
        self.current()
            .and_then(|r| self.rooms.get(r))
            .unwrap_or(&self.server)
    }

    fn shown_mut(&mut self) -> &mut Buffer {
        let current = self.current().cloned();
        match current.and_then(|r| self.rooms.get_mut(&r)) {
            Some(b) => b,
            None => &mut self.server,
        }
    }

    /// Lines typed and not yet acknowledged that belong under the shown buffer, oldest first:
    /// the current room's, and direct messages (which show wherever the user is).
    pub fn pending_shown(&self) -> impl DoubleEndedIterator<Item = &Line> {
        let current = self.current();
        self.pending
            .iter()
            .filter(move |p| match &p.to {
                Target::Room(r) => Some(r) == current,
                Target::Nick(_) => true,
            })
            .map(|p| &p.line)
    }

    /// A room's buffer.
    #[cfg(test)]
    pub fn buffer(&self, room: &RoomName) -> Option<&Buffer> {
        self.rooms.get(room)
    }

    /// Rooms in join order, with unread counts.
    pub fn room_list(&self) -> Vec<RoomEntry> {
        let Some(status) = &self.status else {
            return Vec::new();
        };
        let current = self.current();
        status
            .rooms
            .iter()
            .map(|r| RoomEntry {
                room: r.clone(),
                unread: self.rooms.get(r).map_or(0, |b| b.unread),
                current: Some(r) == current,
            })
            .collect()
    }

    /// The room `step` places after (or before, negative) the current one, wrapping around.
    pub fn room_after(&self, step: isize) -> Option<RoomName> {
        let rooms = &self.status.as_ref()?.rooms;
        if rooms.is_empty() {
            return None;
        }
        let n = rooms.len() as isize;
        let at = self
            .current()
            .and_then(|c| rooms.iter().position(|r| r == c))
            .map_or(0, |i| i as isize);
        let next = (at + step).rem_euclid(n);
        rooms.get(next as usize).cloned()
    }

    /// The `n`th room (1-based), for Alt+n.
    pub fn room_number(&self, n: usize) -> Option<RoomName> {
        self.status.as_ref()?.rooms.get(n.checked_sub(1)?).cloned()
    }

    /// Scrolls the shown buffer up by `rows` (bounded by its line count; drawing clamps further).
    pub fn scroll_up(&mut self, rows: usize) {
        let b = self.shown_mut();
        let limit = b.lines.len().saturating_mul(4);
        b.scroll = b.scroll.saturating_add(rows).min(limit);
    }

    /// Scrolls the shown buffer down by `rows`.
    pub fn scroll_down(&mut self, rows: usize) {
        let b = self.shown_mut();
        b.scroll = b.scroll.saturating_sub(rows);
    }

    /// Folds one driver update in. `now` stamps local notices.
    pub fn apply(&mut self, update: &Update, now: Millis) {
        match update {
            Update::Status(s) => self.apply_status(s),
            Update::Event(ev) => self.apply_event(ev, now),
        }
    }

    fn apply_status(&mut self, s: &Status) {
        self.me = s.nick.clone();
        let old = self.current().cloned();
        self.status = Some(s.clone());
        for room in &s.rooms {
            self.rooms.entry(room.clone()).or_default();
        }
        let new = self.current().cloned();
        if old != new
            && let Some(b) = new.and_then(|r| self.rooms.get_mut(&r))
        {
            b.unread = 0;
            b.scroll = 0;
        }
    }

    fn apply_event(&mut self, ev: &Event, now: Millis) {
        match ev {
            Event::Room(re) => self.apply_room_event(re),
            Event::Direct(dm) => {
                let outgoing = dm.from.folded() == self.me.folded();
                let peer = if outgoing { &dm.to } else { &dm.from };
                let line = LineKind::Direct {
                    peer: peer.clone(),
                    outgoing,
                    text: dm.text.to_string(),
                };
                self.shown_mut().push(dm.at, line);
            }
            Event::Gap { room, first, last } => {
                let text = render::gap_line(room, *first, *last, Some(room));
                self.room_mut(room).push(now, LineKind::Gap(text));
            }
            Event::Joined {
                room,
                topic,
                members,
            } => {
                let b = self.room_mut(room);
                b.set_members(members);
                b.topic = topic.as_ref().map(ToString::to_string);
                for l in format::notice_lines(ev) {
                    b.push(now, LineKind::Notice(strip_room(&l, room)));
                }
            }
            Event::Parted { room } => {
                self.rooms.remove(room);
                for l in format::notice_lines(ev) {
                    self.server.push(now, LineKind::Notice(l));
                }
            }
            Event::Members {
                room,
                members,
                asked,
            } => match self.rooms.get_mut(room) {
                // Our room: the member pane shows it (and a /who answer as a line too).
                Some(b) => {
                    b.set_members(members);
                    if *asked {
                        for l in format::notice_lines(ev) {
                            b.push(now, LineKind::Notice(strip_room(&l, room)));
                        }
                    }
                }
                None => self.notice(ev, now),
            },
            Event::Topic { room, topic } => match self.rooms.get_mut(room) {
                Some(b) => {
                    b.topic = topic.as_ref().map(ToString::to_string);
                    for l in format::notice_lines(ev) {
                        b.push(now, LineKind::Notice(strip_room(&l, room)));
                    }
                }
                None => self.notice(ev, now),
            },
            Event::Welcome { nick, .. } | Event::Nick(nick) => {
                self.me = nick.clone();
                self.notice(ev, now);
            }
            Event::Error { .. } => {
                for l in format::notice_lines(ev) {
                    let l = l.strip_prefix("error: ").unwrap_or(&l).to_owned();
                    self.shown_mut().push(now, LineKind::Error(l));
                }
            }
            Event::State(state) => {
                self.closed |= *state == ConnState::Closed;
                // The status line counts the attempts; the pane marks only where it began.
                let later_attempt =
                    matches!(state, ConnState::Reconnecting { attempt, .. } if *attempt > 1);
                if let Some(l) = format::state_line(*state).filter(|_| !later_attempt) {
                    self.shown_mut().push(now, LineKind::Notice(l));
                }
            }
            Event::Rooms(_) | Event::Info(_) => self.notice(ev, now),
            Event::Queued { id, to, act, text } => self.queued(*id, to, *act, text, now),
            Event::Settled { id, delivered } => self.settled(*id, *delivered, now),
            Event::Connect | Event::Close => {}
        }
    }

    /// Shows a typed line as pending until it settles.
    fn queued(&mut self, id: MsgId, to: &Target, act: bool, text: &Text, now: Millis) {
        let text = text.to_string();
        let kind = match to {
            Target::Room(_) if act => LineKind::Act {
                nick: self.me.clone(),
                text,
            },
            Target::Room(_) => LineKind::Say {
                nick: self.me.clone(),
                text,
            },
            Target::Nick(peer) => LineKind::Direct {
                peer: peer.clone(),
                outgoing: true,
                text,
            },
        };
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(Pending {
            id,
            to: to.clone(),
            line: Line { at: now, kind },
        });
    }

    /// Drops a settled line's pending copy: delivered, the server's echo is the real line (it
    /// came just before); refused, an error line names it where it was shown (the session's
    /// error before it says why). When the session has ended, its own notice counts them.
    fn settled(&mut self, id: MsgId, delivered: bool, now: Millis) {
        let Some(at) = self.pending.iter().position(|p| p.id == id) else {
            return;
        };
        let Some(p) = self.pending.remove(at) else {
            return;
        };
        if delivered || self.closed {
            return;
        }
        let text = match &p.line.kind {
            LineKind::Say { text, .. } | LineKind::Act { text, .. } => text,
            LineKind::Direct { text, .. } => text,
            _ => return,
        };
        let mut preview: String = text.chars().take(UNDELIVERED_PREVIEW).collect();
        if preview.len() < text.len() {
            preview.push('…');
        }
        let (to, buffer) = match &p.to {
            Target::Room(r) => (r.to_string(), self.rooms.get_mut(r)),
            Target::Nick(n) => (n.to_string(), None),
        };
        let line = LineKind::Error(format!("not delivered to {to}: {preview}"));
        match buffer {
            Some(b) => b.push(now, line),
            None => self.shown_mut().push(now, line),
        }
    }

    fn notice(&mut self, ev: &Event, now: Millis) {
        for l in format::notice_lines(ev) {
            self.shown_mut().push(now, LineKind::Notice(l));
        }
    }

    fn room_mut(&mut self, room: &RoomName) -> &mut Buffer {
        self.rooms.entry(room.clone()).or_default()
    }

    fn apply_room_event(&mut self, re: &RoomEvent) {
        let current = self.current().cloned();
        let is_current = current.as_ref() == Some(&re.room);
        let b = self.room_mut(&re.room);
        let kind = match &re.kind {
            EventKind::Say { text, .. } => LineKind::Say {
                nick: re.from.clone(),
                text: text.to_string(),
            },
            EventKind::Act { text, .. } => LineKind::Act {
                nick: re.from.clone(),
                text: text.to_string(),
            },
            other => {
                // History replayed after a join runs up to the member list's snapshot, so
                // applying it in order leaves the list right.
                match other {
                    EventKind::Join => b.add_member(&re.from),
                    EventKind::Part { .. } | EventKind::Quit { .. } => {
                        b.remove_member(&re.from);
                    }
                    EventKind::Nick { new } => {
                        if b.remove_member(&re.from) {
                            b.add_member(new);
                        }
                    }
                    EventKind::Topic { topic } => b.topic = topic.as_ref().map(ToString::to_string),
                    EventKind::Say { .. } | EventKind::Act { .. } => {}
                }
                LineKind::Notice(render::event_line(re, Some(&re.room)))
            }
        };
        if !is_current && matches!(kind, LineKind::Say { .. } | LineKind::Act { .. }) {
            b.unread = b.unread.saturating_add(1);
        }
        b.push(re.at, kind);
    }
}

/// `[#room] -- x` → `-- x` (inside the room's own buffer the room is implied).
fn strip_room(line: &str, room: &RoomName) -> String {
    let prefix = format!("[{room}] ");
    line.strip_prefix(&prefix).unwrap_or(line).to_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use natter_core::{MsgId, Seq, Text};

    pub fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }
    pub fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }
    pub fn status(current: &str, rooms: &[&str]) -> Update {
        Update::Status(Status {
            state: ConnState::Connected,
            nick: nick("me"),
            current: Some(room(current)),
            rooms: rooms.iter().map(|r| room(r)).collect(),
            settled: true,
        })
    }
    pub fn room_ev(r: &str, from: &str, kind: EventKind) -> Update {
        Update::Event(Event::Room(RoomEvent {
            room: room(r),
            seq: Seq(1),
            at: Millis(1_700_000_000_000),
            from: nick(from),
            kind,
        }))
    }
    pub fn say(r: &str, from: &str, text: &str) -> Update {
        room_ev(
            r,
            from,
            EventKind::Say {
                id: MsgId(1),
                text: Text::new(text).unwrap(),
            },
        )
    }
    pub fn joined(r: &str, members: &[&str]) -> Update {
        Update::Event(Event::Joined {
            room: room(r),
            topic: None,
            members: members.iter().map(|n| nick(n)).collect(),
        })
    }

    pub fn queued(id: u64, to: Target, act: bool, text: &str) -> Update {
        Update::Event(Event::Queued {
            id: MsgId(id),
            to,
            act,
            text: Text::new(text).unwrap(),
        })
    }
    pub fn settled(id: u64, delivered: bool) -> Update {
        Update::Event(Event::Settled {
            id: MsgId(id),
            delivered,
        })
    }
    fn to_room(r: &str) -> Target {
        Target::Room(room(r))
    }
    /// `me`'s view after a status: `current` shown, in `rooms`.
    fn viewing(current: &str, rooms: &[&str]) -> View {
        let mut v = View::new(nick("me"));
        v.apply(&status(current, rooms), Millis(0));
        v
    }

    fn pending(v: &View) -> Vec<LineKind> {
        v.pending_shown().map(|l| l.kind.clone()).collect()
    }
    fn says(from: &str, text: &str) -> LineKind {
        LineKind::Say {
            nick: nick(from),
            text: text.into(),
        }
    }

    #[test]
    fn unread_counts_only_other_rooms_and_reset_on_switch() {
        let mut v = View::new(nick("me"));
        let now = Millis(0);
        v.apply(&status("#a", &["#a", "#b"]), now);
        v.apply(&say("#a", "x", "seen"), now);
        v.apply(&say("#b", "x", "one"), now);
        v.apply(&say("#b", "y", "two"), now);
        v.apply(&room_ev("#b", "z", EventKind::Join), now);
        let list = v.room_list();
        assert_eq!(
            list.iter()
                .map(|e| (e.room.as_str(), e.unread, e.current))
                .collect::<Vec<_>>(),
            [("#a", 0, true), ("#b", 2, false)]
        );
        v.apply(&status("#b", &["#a", "#b"]), now);
        assert_eq!(v.room_list()[1].unread, 0);
        assert!(v.room_list()[1].current);
        assert_eq!(v.shown().lines().len(), 3);
    }

    #[test]
    fn member_lists_follow_joins_parts_and_renames() {
        let mut v = View::new(nick("me"));
        let now = Millis(0);
        v.apply(&status("#a", &["#a"]), now);
        v.apply(&joined("#a", &["me", "Bob", "carol"]), now);
        let names = |v: &View| {
            v.buffer(&room("#a"))
                .unwrap()
                .members()
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&v), ["Bob", "carol", "me"]);
        v.apply(&room_ev("#a", "alice", EventKind::Join), now);
        v.apply(
            &room_ev("#a", "carol", EventKind::Part { reason: None }),
            now,
        );
        v.apply(
            &room_ev("#a", "bob", EventKind::Nick { new: nick("rob") }),
            now,
        );
        assert_eq!(names(&v), ["alice", "me", "rob"]);
        // A rename of someone not listed does not invent them.
        v.apply(
            &room_ev("#a", "ghost", EventKind::Nick { new: nick("boo") }),
            now,
        );
        assert_eq!(names(&v), ["alice", "me", "rob"]);
        v.apply(
            &Update::Event(Event::Members {
                room: room("#a"),
                members: vec![nick("zed")],
                asked: false,
            }),
            now,
        );
        assert_eq!(names(&v), ["zed"]);
    }

    #[test]
    fn notices_go_to_the_shown_buffer_and_parting_drops_the_room() {
        let mut v = View::new(nick("me"));
        let now = Millis(5);
        v.apply(&Update::Event(Event::Info("hello".into())), now);
        assert_eq!(v.shown().lines().len(), 1);
        v.apply(&status("#a", &["#a"]), now);
        v.apply(
            &Update::Event(Event::Error {
                kind: None,
                text: "nick taken".into(),
            }),
            now,
        );
        assert_eq!(
            v.shown().lines().back().unwrap().kind,
            LineKind::Error("nick taken".into())
        );
        v.apply(&Update::Event(Event::Parted { room: room("#a") }), now);
        assert!(v.buffer(&room("#a")).is_none());
        assert!(v.current().is_none());
        assert_eq!(
            v.shown().lines().back().unwrap().kind,
            LineKind::Notice("[#a] -- you left #a".into())
        );
    }

    #[test]
    fn repeated_notices_show_once() {
        let mut v = View::new(nick("me"));
        let refused = Update::Event(Event::Info("disconnected: connection refused".into()));
        for attempt in 1..=5 {
            v.apply(&refused, Millis(0));
            let lost = Update::Event(Event::State(ConnState::Reconnecting {
                at: Millis(9),
                attempt,
            }));
            v.apply(&lost, Millis(0));
        }
        let shown: Vec<_> = v.shown().lines().iter().map(|l| l.kind.clone()).collect();
        assert_eq!(
            shown,
            [
                LineKind::Notice("-- disconnected: connection refused".into()),
                LineKind::Notice("-- connection lost; reconnecting (attempt 1)".into()),
                LineKind::Notice("-- disconnected: connection refused".into()),
            ]
        );
    }

    #[test]
    fn buffers_are_bounded() {
        let mut v = viewing("#a", &["#a"]);
        for i in 0..MAX_LINES + 10 {
            v.apply(&say("#a", "x", &i.to_string()), Millis(0));
        }
        let lines = v.shown().lines();
        assert_eq!(lines.len(), MAX_LINES);
        assert_eq!(
            lines.front().unwrap().kind,
            LineKind::Say {
                nick: nick("x"),
                text: "10".into()
            }
        );
    }

    #[test]
    fn room_navigation_wraps() {
        let mut v = viewing("#b", &["#a", "#b", "#c"]);
        assert_eq!(v.room_after(1), Some(room("#c")));
        assert_eq!(v.room_after(-1), Some(room("#a")));
        v.apply(&status("#c", &["#a", "#b", "#c"]), Millis(0));
        assert_eq!(v.room_after(1), Some(room("#a")));
        assert_eq!(v.room_number(2), Some(room("#b")));
        assert_eq!(v.room_number(0), None);
        assert_eq!(v.room_number(4), None);
    }

    #[test]
    fn a_queued_line_is_pending_in_its_own_room_only() {
        let mut v = viewing("#a", &["#a", "#b"]);
        v.apply(&say("#a", "bob", "earlier"), Millis(0));
        v.apply(&queued(1, to_room("#a"), false, "offline words"), Millis(7));
        v.apply(&queued(2, to_room("#b"), false, "for b"), Millis(7));
        assert_eq!(pending(&v), [says("me", "offline words")]);
        assert_eq!(v.pending_shown().next().unwrap().at, Millis(7));
        // Pending lines are not buffer lines (and count as nobody's unread chat).
        assert_eq!(v.shown().lines().len(), 1);
        assert_eq!(v.room_list()[1].unread, 0);
        v.apply(&status("#b", &["#a", "#b"]), Millis(0));
        assert_eq!(pending(&v), [says("me", "for b")]);
        // No room current: room lines wait for their room.
        v.apply(
            &Update::Event(Event::Parted { room: room("#b") }),
            Millis(0),
        );
        v.apply(&status("#b", &["#a"]), Millis(0));
        assert!(v.current().is_none());
        assert_eq!(pending(&v), []);
    }

    #[test]
    fn a_delivered_line_leaves_only_the_servers_echo() {
        let mut v = viewing("#a", &["#a"]);
        v.apply(&queued(1, to_room("#a"), false, "hello"), Millis(0));
        v.apply(&queued(2, to_room("#a"), false, "again"), Millis(0));
        // The echo comes first, then the settlement.
        v.apply(&say("#a", "me", "hello"), Millis(0));
        v.apply(&settled(1, true), Millis(0));
        assert_eq!(pending(&v), [says("me", "again")]);
        let lines: Vec<_> = v.shown().lines().iter().map(|l| l.kind.clone()).collect();
        assert_eq!(lines, [says("me", "hello")]);
        // Settling an unknown (or already settled) id changes nothing.
        v.apply(&settled(1, true), Millis(0));
        v.apply(&settled(9, false), Millis(0));
        assert_eq!(pending(&v), [says("me", "again")]);
        assert_eq!(v.shown().lines().len(), 1);
    }

    #[test]
    fn a_refused_line_goes_and_one_error_names_it() {
        let mut v = viewing("#a", &["#a", "#b"]);
        v.apply(&queued(1, to_room("#b"), false, "too fast"), Millis(0));
        v.apply(
            &Update::Event(Event::Error {
                kind: Some(natter_core::wire::ErrorKind::Flood),
                text: "slow down".into(),
            }),
            Millis(0),
        );
        v.apply(&settled(1, false), Millis(0));
        // The reason shows where the user is; which line failed shows where it was pending.
        let shown: Vec<_> = v.shown().lines().iter().map(|l| l.kind.clone()).collect();
        assert_eq!(shown, [LineKind::Error("slow down".into())]);
        let b: Vec<_> = v
            .buffer(&room("#b"))
            .unwrap()
            .lines()
            .iter()
            .map(|l| l.kind.clone())
            .collect();
        assert_eq!(b, [LineKind::Error("not delivered to #b: too fast".into())]);
        v.apply(&status("#b", &["#a", "#b"]), Millis(0));
        assert_eq!(pending(&v), []);

        // A long line is quoted short.
        let long = "x".repeat(300);
        v.apply(&queued(2, to_room("#b"), false, &long), Millis(0));
        v.apply(&settled(2, false), Millis(0));
        let LineKind::Error(e) = &v.shown().lines().back().unwrap().kind else {
            panic!("an error line");
        };
        assert!(e.ends_with('…') && e.chars().count() < 100, "{e}");
    }

    #[test]
    fn lines_lost_when_the_session_ends_are_counted_by_its_notice_only() {
        let mut v = viewing("#a", &["#a"]);
        v.apply(&queued(1, to_room("#a"), false, "one"), Millis(0));
        v.apply(&queued(2, to_room("#a"), true, "two"), Millis(0));
        // What the session emits on `/quit` with messages pending.
        for ev in [
            Event::State(ConnState::Closed),
            Event::Settled {
                id: MsgId(1),
                delivered: false,
            },
            Event::Settled {
                id: MsgId(2),
                delivered: false,
            },
            Event::Info("2 unacknowledged messages were not delivered".into()),
        ] {
            v.apply(&Update::Event(ev), Millis(0));
        }
        assert_eq!(pending(&v), []);
        let lines: Vec<_> = v.shown().lines().iter().map(|l| l.kind.clone()).collect();
        assert_eq!(
            lines,
            [
                LineKind::Notice("-- disconnected".into()),
                LineKind::Notice("-- 2 unacknowledged messages were not delivered".into())
            ]
        );
    }

    #[test]
    fn pending_actions_and_direct_messages_look_like_sent_ones() {
        let mut v = viewing("#a", &["#a", "#b"]);
        v.apply(&queued(1, to_room("#a"), true, "waves"), Millis(0));
        v.apply(
            &queued(2, Target::Nick(nick("bob")), false, "psst"),
            Millis(0),
        );
        let dm = LineKind::Direct {
            peer: nick("bob"),
            outgoing: true,
            text: "psst".into(),
        };
        let act = LineKind::Act {
            nick: nick("me"),
            text: "waves".into(),
        };
        assert_eq!(pending(&v), [act, dm.clone()]);
        // DMs show wherever the user is, as their echo does.
        v.apply(&status("#b", &["#a", "#b"]), Millis(0));
        assert_eq!(pending(&v), std::slice::from_ref(&dm));
        // A refused DM is named where the user is.
        v.apply(&settled(2, false), Millis(0));
        assert_eq!(pending(&v), []);
        assert_eq!(
            v.shown().lines().back().unwrap().kind,
            LineKind::Error("not delivered to bob: psst".into())
        );
        // The nick is ours at the time it was typed.
        v.apply(&Update::Event(Event::Nick(nick("me2"))), Millis(0));
        v.apply(&queued(3, to_room("#b"), false, "renamed"), Millis(0));
        assert_eq!(pending(&v), [says("me2", "renamed")]);
    }

    #[test]
    fn pending_lines_are_bounded() {
        let mut v = viewing("#a", &["#a"]);
        for i in 0..MAX_PENDING + 5 {
            v.apply(
                &queued(i as u64, to_room("#a"), false, &i.to_string()),
                Millis(0),
            );
        }
        let p = pending(&v);
        assert_eq!(p.len(), MAX_PENDING);
        assert_eq!(p[0], says("me", "5"));
    }
}
