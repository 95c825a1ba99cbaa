//! Requests answered by several messages: scrollback pages (`Older`, answered by `Past`* and
//! `PastEnd`) and searches (`Search`, answered by `Found`* and `FoundEnd`). At most one page per
//! room and one search are in flight; a search asked for meanwhile waits for the one in flight
//! (replacing any that already waits). What the answers bring is gathered, bounded by what was
//! asked, and handed on whole when the answer ends. Past events are never live events: they do
//! not touch the rooms' seq tracking. Asks in flight when the link drops are asked again after
//! the next welcome.

use crate::limits::{HISTORY_PAGE_MAX, SEARCH_MAX_RESULTS};
use crate::types::{RoomName, Seq, Text};
use crate::wire::{ClientMsg, RoomEvent};

/// A page of a room's older events, asked for and not yet answered.
#[derive(Debug, Clone)]
struct OlderAsk {
    room: RoomName,
    before: Seq,
    limit: u16,
    /// The answer so far, oldest first.
    got: Vec<RoomEvent>,
}

/// A search's words, and where (`None`: every room we are in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Query {
    pub(super) room: Option<RoomName>,
    pub(super) words: Text,
}

impl Query {
    fn msg(&self) -> ClientMsg {
        ClientMsg::Search {
            room: self.room.clone(),
            words: self.words.clone(),
        }
    }
}

/// A search in flight, and the hits so far (newest first).
#[derive(Debug, Clone)]
struct SearchAsk {
    query: Query,
    got: Vec<RoomEvent>,
}

/// What [`Asks::ask_search`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SearchStart {
    /// Nothing else is in flight: send it now.
    Now,
    /// Another search is in flight: this one goes when it is answered.
    Waits,
}

/// The session's multi-message requests. See the module docs.
#[derive(Debug, Default)]
pub(super) struct Asks {
    older: Vec<OlderAsk>,
    search: Option<SearchAsk>,
    next_search: Option<Query>,
}

impl Asks {
    /// A page of `room`'s events below `before` is wanted. False if one is already in flight
    /// (its answer serves).
    pub(super) fn ask_older(&mut self, room: RoomName, before: Seq, limit: u16) -> bool {
        if self.older_in_flight(&room) {
            return false;
        }
        let limit = limit.clamp(1, u16::try_from(HISTORY_PAGE_MAX).unwrap_or(u16::MAX));
        self.older.push(OlderAsk {
            room,
            before,
            limit,
            got: Vec::new(),
        });
        true
    }

    pub(super) fn older_in_flight(&self, room: &RoomName) -> bool {
        self.older.iter().any(|a| &a.room == room)
    }

    /// The request for `room`'s page in flight.
    pub(super) fn older_msg(&self, room: &RoomName) -> Option<ClientMsg> {
        self.older
            .iter()
            .find(|a| &a.room == room)
            .map(|a| ClientMsg::Older {
                room: a.room.clone(),
                before: a.before,
                limit: a.limit,
            })
    }

    /// A `Past` event: kept when a page of its room is in flight and it belongs there (below
    /// what was asked, after what came before it, within the limit). Anything else is dropped.
    pub(super) fn past(&mut self, ev: RoomEvent) {
        if ev.kind == crate::wire::EventKind::Moved {
            // A member's session moving to another server shows nothing, in history too.
            return;
        }
        let Some(a) = self.older.iter_mut().find(|a| a.room == ev.room) else {
            tracing::debug!(room = %ev.room, "a past event nobody asked for");
            return;
        };
        let fits = (a.before == Seq(0) || ev.seq < a.before)
            && a.got.last().is_none_or(|last| ev.seq > last.seq)
            && a.got.len() < usize::from(a.limit);
        if fits {
            a.got.push(ev);
        }
    }

    /// The end of `room`'s page: its events, oldest first, if one was in flight.
    pub(super) fn past_end(&mut self, room: &RoomName) -> Option<Vec<RoomEvent>> {
        let i = self.older.iter().position(|a| &a.room == room)?;
        Some(self.older.remove(i).got)
    }

    /// `room`'s page will not come (refused, or we left the room). False if none was in flight.
    pub(super) fn drop_older(&mut self, room: &RoomName) -> bool {
        let before = self.older.len();
        self.older.retain(|a| &a.room != room);
        self.older.len() < before
    }

    /// A search is wanted.
    pub(super) fn ask_search(&mut self, query: Query) -> SearchStart {
        if self.search.is_some() {
            self.next_search = Some(query);
            return SearchStart::Waits;
        }
        self.search = Some(SearchAsk {
            query,
            got: Vec::new(),
        });
        SearchStart::Now
    }

    /// The search in flight is for `room` (by name).
    pub(super) fn search_in(&self, room: &RoomName) -> bool {
        self.search
            .as_ref()
            .is_some_and(|s| s.query.room.as_ref() == Some(room))
    }

    pub(super) fn searching(&self) -> bool {
        self.search.is_some()
    }

    /// A `Found` hit: kept while a search is in flight, within its room and the bound.
    pub(super) fn found(&mut self, ev: RoomEvent) {
        let Some(s) = self.search.as_mut() else {
            tracing::debug!("a search hit nobody asked for");
            return;
        };
        let in_room = s.query.room.as_ref().is_none_or(|r| *r == ev.room);
        if in_room && s.got.len() < SEARCH_MAX_RESULTS {
            s.got.push(ev);
        }
    }

    /// The end of the search in flight: its query and hits, if one was in flight. The search
    /// waiting, if any, is now in flight: send [`Asks::search_msg`].
    pub(super) fn found_end(&mut self) -> Option<(Query, Vec<RoomEvent>)> {
        let done = self.search.take()?;
        self.start_next();
        Some((done.query, done.got))
    }

    /// The search in flight will not be answered (refused). Its query, if one was in flight;
    /// the waiting one, if any, is now in flight.
    pub(super) fn search_failed(&mut self) -> Option<Query> {
        let failed = self.search.take()?;
        self.start_next();
        Some(failed.query)
    }

    fn start_next(&mut self) {
        self.search = self.next_search.take().map(|query| SearchAsk {
            query,
            got: Vec::new(),
        });
    }

    /// The request for the search in flight.
    pub(super) fn search_msg(&self) -> Option<ClientMsg> {
        self.search.as_ref().map(|s| s.query.msg())
    }

    /// The link dropped: answers in progress are lost with it (they are asked again).
    pub(super) fn link_lost(&mut self) {
        for a in &mut self.older {
            a.got.clear();
        }
        if let Some(s) = self.search.as_mut() {
            s.got.clear();
        }
    }

    /// Everything in flight, to ask again on a new link: pages, then the search.
    pub(super) fn requests(&self) -> Vec<ClientMsg> {
        let mut out: Vec<ClientMsg> = self
            .older
            .iter()
            .filter_map(|a| self.older_msg(&a.room))
            .collect();
        out.extend(self.search_msg());
        out
    }

    /// Forgets everything (the session ended).
    pub(super) fn clear(&mut self) {
        *self = Asks::default();
    }

    /// Nothing is in flight.
    pub(super) fn is_empty(&self) -> bool {
        self.older.is_empty() && self.search.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{nick, room, text};
    use crate::time::Millis;
    use crate::types::MsgId;
    use crate::wire::EventKind;

    fn ev(r: &str, seq: u64) -> RoomEvent {
        RoomEvent {
            room: room(r),
            seq: Seq(seq),
            at: Millis(0),
            from: nick("bob"),
            kind: EventKind::Say {
                id: MsgId(seq),
                text: text("x"),
            },
        }
    }

    #[test]
    fn a_page_keeps_only_what_was_asked_for() {
        let mut a = Asks::default();
        assert!(a.ask_older(room("#a"), Seq(10), 3));
        assert!(!a.ask_older(room("#a"), Seq(5), 3), "one page per room");
        for seq in [6, 5, 7, 12, 8, 9] {
            a.past(ev("#a", seq));
        }
        a.past(ev("#b", 1));
        let got: Vec<u64> = a
            .past_end(&room("#a"))
            .unwrap()
            .iter()
            .map(|e| e.seq.0)
            .collect();
        assert_eq!(got, [6, 7, 8], "below 10, ascending, at most 3");
        assert!(a.past_end(&room("#a")).is_none());
        assert!(a.is_empty());
    }

    #[test]
    fn searches_go_one_at_a_time_and_the_latest_waits() {
        let mut a = Asks::default();
        let q = |w: &str| Query {
            room: None,
            words: text(w),
        };
        assert_eq!(a.ask_search(q("one")), SearchStart::Now);
        assert_eq!(a.ask_search(q("two")), SearchStart::Waits);
        assert_eq!(a.ask_search(q("three")), SearchStart::Waits);
        for seq in 0..(SEARCH_MAX_RESULTS as u64 + 5) {
            a.found(ev("#a", seq));
        }
        let (done, hits) = a.found_end().unwrap();
        assert_eq!(done, q("one"));
        assert_eq!(hits.len(), SEARCH_MAX_RESULTS);
        assert_eq!(
            a.search_msg(),
            Some(q("three").msg()),
            "the latest waiting one goes next"
        );
        a.found(ev("#a", 1));
        a.link_lost();
        assert_eq!(a.requests(), vec![q("three").msg()]);
        let (_, hits) = a.found_end().unwrap();
        assert!(hits.is_empty(), "what came before the drop is asked again");
        assert!(a.found_end().is_none());
    }
}
