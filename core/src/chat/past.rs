//! History beyond what arrived live: older lines put in front of a room's (scrollback), and the
//! results of a search. The model decides what to ask for ([`Chat::want_older`]: below the
//! oldest seq it holds, one page per room at a time, not past the room's beginning), the
//! session asks, and the answers come back as its events. Past lines are history: they raise no
//! unread counts or alerts and change no member list.

use super::Chat;
use super::change::Change;
use super::conv::ConvId;
use super::line::{Line, LineId};
use crate::limits::{HISTORY_LINES_DEFAULT, SEARCH_MAX_RESULTS};
use crate::render;
use crate::time::Millis;
use crate::types::{RoomName, Seq, Text};
use crate::wire::RoomEvent;

/// What a room knows of its older lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scrollback {
    /// Older lines may be on the server: scrolling to the top loads them.
    More,
    /// Older lines were asked for and are on their way.
    Loading,
    /// Loading older lines failed, and why; asking again may work.
    Failed(String),
    /// The room's first event is here: nothing is older.
    Start,
    /// The server keeps nothing older than the lines here, though the room's first event is
    /// not among them: older lines were dropped (a memory-only server's bounded history, or
    /// the store's retention).
    Gone,
    /// The room holds as many lines as the model keeps
    /// ([`CHAT_MAX_LINES`](crate::limits::CHAT_MAX_LINES)): no older ones fit.
    Full,
}

/// How a search is going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchState {
    /// Asked; no answer yet.
    Searching,
    /// Answered: its hits are in.
    Done,
    /// It failed, and why; searching again may work.
    Failed(String),
}

/// One search hit: a line of a room's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The room it was said in.
    pub room: RoomName,
    /// The line (its time, seq, who and what; mentions of us marked).
    pub line: Line,
    /// The whole hit in words, for plain text: `[#rust 2026-12-02 14:03] <alice> hi`
    /// ([`render::past_line`]; times in UTC).
    pub words: String,
}

/// The search the person asked for last, and its results. See [`Chat::search`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    room: Option<RoomName>,
    words: Text,
    state: SearchState,
    hits: Vec<Hit>,
    /// Older matches were left out (the server sent its newest [`SEARCH_MAX_RESULTS`]).
    more: bool,
}

impl Search {
    /// The room searched (`None`: every room we are in).
    pub fn room(&self) -> Option<&RoomName> {
        self.room.as_ref()
    }

    /// The words searched for.
    pub fn words(&self) -> &Text {
        &self.words
    }

    /// How it is going.
    pub fn state(&self) -> &SearchState {
        &self.state
    }

    /// Its hits, newest first (at most [`SEARCH_MAX_RESULTS`]).
    pub fn hits(&self) -> &[Hit] {
        &self.hits
    }

    /// Whether older matches were left out: the server found more than it sent.
    pub fn more(&self) -> bool {
        self.more
    }

    /// What it is and how it went, in words: `3 results for "borrow" in #rust`, followed by
    /// `; showing the newest 50 matches; ...` when older matches were left out.
    pub fn title(&self) -> String {
        match &self.state {
            SearchState::Searching => render::search_words(self.room(), &self.words, None),
            SearchState::Done if self.more => format!(
                "{}; {}",
                render::search_words(self.room(), &self.words, Some(self.hits.len())),
                render::search_cut_words()
            ),
            SearchState::Done => {
                render::search_words(self.room(), &self.words, Some(self.hits.len()))
            }
            SearchState::Failed(why) => render::error_words(&crate::session::About::Search, why),
        }
    }
}

impl Chat {
    /// Whether older lines of `id` can be asked for now, and below which seq: `Some((room,
    /// before))` for a room whose beginning is not here, with no page on its way and room for
    /// more lines. Pass them to [`Session::older`](crate::session::Session::older); the
    /// session's [`Event::Older`](crate::session::Event::Older) then marks the room loading.
    /// A room holding seq 1 is at its beginning: that is noted, and nothing is asked.
    pub fn want_older(&mut self, id: &ConvId) -> Option<(RoomName, Seq)> {
        let ConvId::Room(room) = id else {
            return None;
        };
        let conv = self.conv(id)?;
        if !matches!(
            conv.scrollback(),
            Some(Scrollback::More | Scrollback::Failed(_))
        ) {
            return None;
        }
        let oldest = conv.oldest_seq();
        if oldest == Some(Seq(1)) {
            self.set_scrollback(id, Scrollback::Start);
            return None;
        }
        Some((room.clone(), oldest.unwrap_or(Seq(0))))
    }

    /// A typed `/history [#room] [N]` for a room the model holds: the room, the seq to ask
    /// below and how many ([`HISTORY_LINES_DEFAULT`] unless told), to pass to
    /// [`Session::older`](crate::session::Session::older) instead of the line. Below the oldest
    /// line the model holds ([`Chat::want_older`], as scrolling up asks), not the session's
    /// oldest since the room's last join: a room joined again keeps its lines, which the session
    /// does not know, so it asked for lines held already and nothing moved. `None` for anything
    /// else, and for a room with nothing older to ask for now: the line is the session's.
    pub fn history_typed(&mut self, line: &str) -> Option<(RoomName, Seq, u16)> {
        use crate::command::{self, Command, Input};
        let Ok(Some(Input::Command(Command::History { room, count }))) = command::parse(line)
        else {
            return None;
        };
        let id = match room {
            Some(room) => ConvId::Room(room),
            None => self.current().clone(),
        };
        let (room, before) = self.want_older(&id)?;
        Some((room, before, count.unwrap_or(HISTORY_LINES_DEFAULT)))
    }

    /// The search asked for last and its results, until [`Chat::close_search`].
    pub fn search(&self) -> Option<&Search> {
        self.search.as_ref()
    }

    /// The person is done with the search's results.
    pub fn close_search(&mut self) {
        if self.search.take().is_some() {
            self.log.push(Change::Search);
        }
    }

    // ---- what the session says ----

    /// Older lines were asked for: the room is loading (the page scrolls up to its top when
    /// that ends). A room at its beginning is remembered as such: a typed `/history` goes to
    /// the session, which asks below what it saw, and nothing older can come.
    pub(super) fn on_older(&mut self, room: &RoomName) {
        let id = ConvId::Room(room.clone());
        if let Some(c) = self.conv_mut(&id) {
            c.asked_at_start = c.older == Scrollback::Start;
        }
        self.set_scrollback(&id, Scrollback::Loading);
    }

    /// A page of older events: the ones older than every line held go in front of the room's
    /// history, as many as fit.
    pub(super) fn on_past(&mut self, room: &RoomName, events: &[RoomEvent], at_start: bool) {
        let id = ConvId::Room(room.clone());
        let Some(conv) = self.conv(&id) else {
            return;
        };
        let oldest = conv.oldest_seq();
        let older: Vec<&RoomEvent> = events
            .iter()
            .filter(|e| oldest.is_none_or(|o| e.seq < o))
            .collect();
        let lines: Vec<Line> = older.iter().map(|e| self.line_of(e)).collect();
        let wanted = lines.len();
        let first = lines.first().map(|l| l.id);
        let n = self.conv_mut(&id).map_or(0, |c| c.prepend(lines));
        if let Some(first) = first.filter(|_| n > 0) {
            // Only the newest `n` went in; their ids are consecutive from the first of them.
            let first = LineId(first.0 + (wanted - n) as u64);
            self.log.push(Change::LinesPrepended {
                conv: id.clone(),
                first,
                n,
            });
        }
        let asked_at_start = self
            .conv_mut(&id)
            .is_some_and(|c| std::mem::take(&mut c.asked_at_start));
        let state = if n == 0 && asked_at_start {
            // The room's first event is here (held as no line when our own join made the
            // room, so the oldest line is not seq 1): nothing came, and the beginning stays.
            Scrollback::Start
        } else if at_start && n == wanted {
            // Seqs start at 1 and never restart: a beginning above 1 is one the server forgot.
            match self.conv(&id).and_then(|c| c.oldest_seq()) {
                Some(s) if s > Seq(1) => Scrollback::Gone,
                _ => Scrollback::Start,
            }
        } else {
            Scrollback::More
        };
        self.set_scrollback(&id, state);
    }

    pub(super) fn on_older_failed(&mut self, room: &RoomName, why: &str) {
        let id = ConvId::Room(room.clone());
        if let Some(c) = self.conv_mut(&id) {
            c.asked_at_start = false;
        }
        self.set_scrollback(&id, Scrollback::Failed(why.to_owned()));
    }

    pub(super) fn on_search(&mut self, room: Option<&RoomName>, words: &Text) {
        self.search = Some(Search {
            room: room.cloned(),
            words: words.clone(),
            state: SearchState::Searching,
            hits: Vec::new(),
            more: false,
        });
        self.log.push(Change::Search);
    }

    /// A search's hits: shown if it is the search asked for last (a later one replaced it
    /// otherwise, or the person closed it).
    pub(super) fn on_found(
        &mut self,
        room: Option<&RoomName>,
        words: &Text,
        hits: &[RoomEvent],
        more: bool,
    ) {
        let more = more || hits.len() > SEARCH_MAX_RESULTS;
        let asked = self
            .search
            .as_ref()
            .is_some_and(|s| s.room.as_ref() == room && &s.words == words);
        if !asked {
            return;
        }
        let hits: Vec<Hit> = hits
            .iter()
            .take(SEARCH_MAX_RESULTS)
            .map(|ev| Hit {
                room: ev.room.clone(),
                line: self.line_of(ev),
                words: render::past_line(ev),
            })
            .collect();
        if let Some(s) = self.search.as_mut() {
            s.hits = hits;
            s.more = more;
            s.state = SearchState::Done;
            self.log.push(Change::Search);
        }
    }

    /// A search failed: shown in its results when it is the one on its way, else as an error
    /// line where the person is.
    pub(super) fn on_search_failed(&mut self, why: &str, now: Millis) {
        match self.search.as_mut() {
            Some(s) if s.state == SearchState::Searching => {
                s.state = SearchState::Failed(why.to_owned());
                self.log.push(Change::Search);
            }
            _ => {
                let words = render::error_words(&crate::session::About::Search, why);
                self.note_error(words, now);
            }
        }
    }

    pub(super) fn set_scrollback(&mut self, id: &ConvId, state: Scrollback) {
        if let Some(c) = self.conv_mut(id)
            && c.older != state
        {
            c.older = state;
            c.revision += 1;
            self.log.push(Change::Scrollback(id.clone()));
        }
    }
}
