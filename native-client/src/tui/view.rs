//! What the TUI shows, as plain data: one buffer of lines per room (with its unread count,
//! member list, topic and scroll position), a server buffer for notices when no room is current,
//! and the latest [`Status`]. [`View::apply`] folds driver updates into it; drawing reads it.

use crate::driver::{Status, Update};
use crate::format;
use natter_core::limits::MAX_MEMBERS_LISTED;
use natter_core::render;
use natter_core::session::{ConnState, Event};
use natter_core::wire::{EventKind, RoomEvent};
use natter_core::{Millis, Nick, RoomName};
use std::collections::{HashMap, VecDeque};

/// Lines kept per room (older ones are dropped from the screen's memory, not from the server).
pub const MAX_LINES: usize = 2000;

/// Members tracked per room: a `who` lists at most [`MAX_MEMBERS_LISTED`]; joins seen live may add
/// some more.
pub const MAX_MEMBERS: usize = 4 * MAX_MEMBERS_LISTED;

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
}

impl View {
    /// An empty view for a session with nick `me`.
    pub fn new(me: Nick) -> View {
        View {
            rooms: HashMap::new(),
            server: Buffer::default(),
            status: None,
            me,
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
                // The status line counts the attempts; the pane marks only where it began.
                let later_attempt =
                    matches!(state, ConnState::Reconnecting { attempt, .. } if *attempt > 1);
                if let Some(l) = format::state_line(*state).filter(|_| !later_attempt) {
                    self.shown_mut().push(now, LineKind::Notice(l));
                }
            }
            Event::Rooms(_) | Event::Info(_) => self.notice(ev, now),
            // Our own lines show when the server echoes them; a refusal comes with an error.
            Event::Connect | Event::Close | Event::Queued { .. } | Event::Settled { .. } => {}
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
        let mut v = View::new(nick("me"));
        v.apply(&status("#a", &["#a"]), Millis(0));
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
        let mut v = View::new(nick("me"));
        v.apply(&status("#b", &["#a", "#b", "#c"]), Millis(0));
        assert_eq!(v.room_after(1), Some(room("#c")));
        assert_eq!(v.room_after(-1), Some(room("#a")));
        v.apply(&status("#c", &["#a", "#b", "#c"]), Millis(0));
        assert_eq!(v.room_after(1), Some(room("#a")));
        assert_eq!(v.room_number(2), Some(room("#b")));
        assert_eq!(v.room_number(0), None);
        assert_eq!(v.room_number(4), None);
    }
}
