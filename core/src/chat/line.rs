//! A line of a conversation, and a line we typed that the server has not acknowledged yet.

use super::conv::ConvId;
use crate::time::Millis;
use crate::types::{MsgId, Nick, Seq, Text};
use crate::wire::RoomInfo;

/// A line's identity in the model: unique for the model's life, increasing as lines are made.
/// Front ends key what they drew by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LineId(pub u64);

/// What a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    /// `<nick> text` (in a direct conversation too).
    Say {
        /// Who.
        from: Nick,
        /// What.
        text: Text,
    },
    /// `* nick text`
    Act {
        /// Who.
        from: Nick,
        /// What.
        text: Text,
    },
    /// `-nick- text`: a notice, a chat line that asks for no answer (IRC's `NOTICE`; in a
    /// direct conversation too).
    UserNotice {
        /// Who.
        from: Nick,
        /// What.
        text: Text,
    },
    /// A room event other than chat, in words (`bob joined #lobby`).
    Event {
        /// Who it is about.
        who: Nick,
        /// The words, as we read them ([`crate::render::event_words_to`]).
        words: String,
    },
    /// News from the session or the server, in words (`you are in #rust with: bob`).
    Notice(String),
    /// Something refused or gone wrong, in words.
    Error(String),
    /// Events that were missed here.
    Gap {
        /// First missed seq.
        first: Seq,
        /// Last missed seq.
        last: Seq,
        /// The words ([`crate::render::gap_words`]).
        words: String,
    },
    /// The server's rooms (an answer to `/rooms`); front ends may offer to join them.
    Rooms {
        /// The rooms.
        rooms: Vec<RoomInfo>,
        /// The words ([`crate::render::rooms_words`]).
        words: String,
    },
}

impl LineKind {
    /// The words of a line that is not chat (`None` for say and act).
    pub fn words(&self) -> Option<&str> {
        match self {
            LineKind::Say { .. } | LineKind::Act { .. } | LineKind::UserNotice { .. } => None,
            LineKind::Event { words, .. }
            | LineKind::Notice(words)
            | LineKind::Error(words)
            | LineKind::Gap { words, .. }
            | LineKind::Rooms { words, .. } => Some(words),
        }
    }
}

/// One line of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its identity.
    pub id: LineId,
    /// Server time of the event (Unix milliseconds), or when a local line was made.
    pub at: Millis,
    /// The room event's seq, for lines that are one.
    pub seq: Option<Seq>,
    /// What it is.
    pub kind: LineKind,
    /// Our own chat line.
    pub mine: bool,
    /// A chat line from someone else that mentions our nick (or a direct message to us).
    pub mention: bool,
    /// A line we typed that was not delivered, and why.
    pub failed: Option<String>,
}

/// A line we typed that the server has not acknowledged yet (it may be waiting for a
/// reconnect). Shown after its conversation's lines until its echo replaces it, or it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The session's id for it.
    pub id: MsgId,
    /// Where it goes.
    pub conv: ConvId,
    /// How it reads once sent (a [`LineKind::Say`], [`LineKind::Act`] or
    /// [`LineKind::UserNotice`] of ours), stamped when it was typed.
    pub line: Line,
    /// When it was typed.
    pub since: Millis,
    /// Whether it looks pending: the model decides (while disconnected, or once it has waited
    /// [`crate::limits::PENDING_LOOK_AFTER`] for the server), so every front end agrees.
    pub looks_pending: bool,
    /// The server refused it, and why (it becomes a failed line when it settles).
    pub(super) refused: Option<String>,
}
