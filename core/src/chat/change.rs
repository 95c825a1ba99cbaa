//! What changed in the chat model since a front end last looked, so it redraws in proportion
//! to the changes (a member joining is one inserted row, not a rebuilt list), and the alerts
//! (a mention, a direct message) a front end may ring or notify about. Both are bounded: a front
//! end that stops reading gets [`Change::All`] (redraw everything) instead of an endless log,
//! and loses the oldest alerts.

use super::conv::ConvId;
use super::line::LineId;
use crate::limits::{CHAT_MAX_ALERTS, CHAT_MAX_CHANGES};
use crate::types::{Nick, RoomName, Text};
use std::collections::VecDeque;

/// One change to the model, in the order they happened. Indexes are valid when the changes are
/// applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Anything may have changed (the log overflowed): redraw everything.
    All,
    /// The connection state.
    Conn,
    /// Our nick, or the account we are signed in to.
    Me,
    /// Conversations were added or removed (or renamed).
    List,
    /// Another conversation is open.
    Current,
    /// A conversation's unread or mention count.
    Counts(ConvId),
    /// A room's topic.
    Topic(ConvId),
    /// A room's settings ([`RoomPolicy`](super::RoomPolicy)): who is founder, operator or
    /// voiced (members' marks), modes, or its ban list. Whether *we* are an operator may also
    /// change with [`Change::Me`] (signing in or out).
    Policy(ConvId),
    /// A member was added to a room's list, at this index.
    MemberAdded {
        /// The room.
        conv: ConvId,
        /// Where in the sorted list.
        index: usize,
        /// Who.
        nick: Nick,
    },
    /// A member was removed from a room's list, from this index.
    MemberRemoved {
        /// The room.
        conv: ConvId,
        /// Where in the sorted list it was.
        index: usize,
    },
    /// A room's member list was replaced.
    Members(ConvId),
    /// The member at this index of a room's list went away or came back (or its away message
    /// changed): its mark ([`Conv::away`](super::Conv::away)).
    MemberAway {
        /// The room.
        conv: ConvId,
        /// Where in the sorted list.
        index: usize,
        /// Who.
        nick: Nick,
    },
    /// A line was appended to a conversation.
    LineAdded {
        /// The conversation.
        conv: ConvId,
        /// The line.
        id: LineId,
    },
    /// A line was put before the line after it ([`Conv::line_after`](super::Conv::line_after)
    /// finds that one), not at the end: an event a join replays is older than the notice of
    /// the join (`you are in #rust with: ...`), which came first, and goes above it. No scroll
    /// to it: it is history.
    LineInserted {
        /// The room.
        conv: ConvId,
        /// The line.
        id: LineId,
    },
    /// A conversation's oldest lines were dropped (it keeps at most
    /// [`crate::limits::CHAT_MAX_LINES`]).
    LinesTrimmed {
        /// The conversation.
        conv: ConvId,
        /// How many, from the start.
        n: usize,
    },
    /// The lines we typed and the server has not acknowledged changed in this conversation
    /// (one was added, settled, or now looks pending).
    Outgoing(ConvId),
    /// Older lines (scrollback) were put in front of a room's history: `n` lines, from the one
    /// with id `first` on (their ids are consecutive), right before the line that was the
    /// room's oldest event (in a room that started over since lines were kept, the first line
    /// below the notice that says so), or at the end when there was none;
    /// [`Conv::line_after`](super::Conv::line_after) finds it.
    LinesPrepended {
        /// The room.
        conv: ConvId,
        /// The first of them.
        first: LineId,
        /// How many.
        n: usize,
    },
    /// What a room says about its older lines changed ([`Conv::scrollback`](super::Conv::scrollback):
    /// loading, failed, at the beginning).
    Scrollback(ConvId),
    /// The search changed: asked, answered, failed or closed ([`Chat::search`](super::Chat::search)).
    Search,
}

/// Something addressed to us that a front end may ring or notify about: a live mention of our
/// nick or a direct message, from someone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Where it is.
    pub conv: ConvId,
    /// Who.
    pub from: Nick,
    /// The room it was said in (`None`: a direct message).
    pub room: Option<RoomName>,
    /// What.
    pub text: Text,
}

/// The bounded change log and alert queue.
#[derive(Debug, Default)]
pub(super) struct Log {
    changes: VecDeque<Change>,
    alerts: VecDeque<Alert>,
}

impl Log {
    pub(super) fn push(&mut self, change: Change) {
        let idempotent = !matches!(
            change,
            Change::LineAdded { .. }
                | Change::LineInserted { .. }
                | Change::LinesTrimmed { .. }
                | Change::LinesPrepended { .. }
                | Change::MemberAdded { .. }
                | Change::MemberRemoved { .. }
        );
        if idempotent && self.changes.back() == Some(&change) {
            // The same news twice in a row (two count bumps) is news once.
            return;
        }
        if self.changes.front() == Some(&Change::All) {
            return;
        }
        if self.changes.len() >= CHAT_MAX_CHANGES {
            self.changes.clear();
            self.changes.push_back(Change::All);
            return;
        }
        self.changes.push_back(change);
    }

    pub(super) fn pop(&mut self) -> Option<Change> {
        self.changes.pop_front()
    }

    pub(super) fn alert(&mut self, alert: Alert) {
        if self.alerts.len() >= CHAT_MAX_ALERTS {
            self.alerts.pop_front();
        }
        self.alerts.push_back(alert);
    }

    pub(super) fn pop_alert(&mut self) -> Option<Alert> {
        self.alerts.pop_front()
    }
}
