//! What goes into the store and what comes out, as plain data built on natter-core's types. A
//! write is a [`Batch`] of [`Write`]s; the answers are [`Loaded`], [`HistoryPage`] and search
//! hits (room events, newest first).

use natter_core::wire::RoomEvent;
use natter_core::{Millis, MsgId, Nick, ResumeToken, RoomName, Seq, Text};
use sha2::{Digest, Sha256};

/// The caller's number for a batch, reported back when the batch is durable or has failed.
/// The store does not interpret it beyond echoing it; the hub numbers its batches in the order
/// it submits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(pub u64);

impl core::fmt::Display for BatchId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "batch {}", self.0)
    }
}

/// Everything one hub batch needs persisted: committed in one transaction, all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Reported back in [`crate::Report`].
    pub id: BatchId,
    /// In the order they are applied.
    pub writes: Vec<Write>,
}

impl Batch {
    /// An empty batch.
    pub fn new(id: BatchId) -> Batch {
        Batch {
            id,
            writes: Vec::new(),
        }
    }

    /// Adds a write.
    pub fn push(&mut self, write: Write) {
        self.writes.push(write);
    }
}

/// One thing to persist. Non-exhaustive: accounts, read markers, bans and the audit log (issues
/// 17 and 20) become new variants, each applied in the same transaction as the rest of its
/// batch, without changing how batches travel or are reported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Write {
    /// A room event, kept exactly (room, seq, time, nick, kind with its id and text). The room's
    /// metadata is derived from it in the same transaction: its last seq becomes the highest
    /// stored, and a topic event sets its topic. Storing a (room, seq) that is already stored
    /// fails the batch ([`crate::WriteError::Duplicate`]).
    Event(RoomEvent),
    /// Creates or replaces the resume session with this token hash.
    Session(SessionRecord),
    /// Forgets one resume session (the user quit, or its grace ran out).
    EndSession(TokenHash),
    /// Forgets every resume session last written before this time.
    EndSessionsBefore(Millis),
}

/// SHA-256 of a resume token: the store keeps this, never the token, so a copy of the database
/// does not let anyone resume someone else's session. Tokens are 128 random bits, so a plain
/// hash cannot be reversed by guessing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// The hash of `token`.
    pub fn of(token: &ResumeToken) -> TokenHash {
        TokenHash(Sha256::digest(token.0).into())
    }
}

impl core::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "TokenHash({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// A user's resume session, as the hub needs it to take the user back after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Hash of the resume token (the key).
    pub token: TokenHash,
    /// The session's nick.
    pub nick: Nick,
    /// Rooms the user is in.
    pub rooms: Vec<RoomName>,
    /// The last message id accepted from this user: a message resent after a restart with an id
    /// at or below it is acknowledged, not delivered again.
    pub last_id: MsgId,
    /// When this record was written (Unix milliseconds); see [`Write::EndSessionsBefore`] and
    /// [`LoadOptions::sessions_since`].
    pub updated: Millis,
}

/// What [`crate::Store::load`] returns besides rooms and sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Events per room to return for refilling the hub's history ring (the newest this many).
    pub recent: usize,
    /// Which rooms get their recent events.
    pub recent_rooms: RecentRooms,
    /// Sessions written before this are not returned.
    pub sessions_since: Millis,
}

/// Which rooms [`crate::Store::load`] returns recent events for. Startup costs one indexed read
/// of at most [`LoadOptions::recent`] events per such room, whatever the size of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecentRooms {
    /// Every room ever stored.
    All,
    /// Only the rooms some returned session is in (the rooms that have members after a
    /// restart); others can be refilled later with a history request.
    OfSessions,
}

/// What a store holds, for a hub starting up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Every room ever stored, by name.
    pub rooms: Vec<LoadedRoom>,
    /// Resume sessions, as [`LoadOptions::sessions_since`] selects them.
    pub sessions: Vec<SessionRecord>,
}

/// One room as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedRoom {
    /// Its name.
    pub name: RoomName,
    /// Its topic.
    pub topic: Option<Text>,
    /// The highest seq ever stored for it, even if retention has removed that event since: the
    /// room's next event is `last_seq + 1`.
    pub last_seq: Seq,
    /// Its newest events, oldest first (empty for rooms [`LoadOptions::recent_rooms`] leaves
    /// out).
    pub recent: Vec<RoomEvent>,
}

/// A page of a room's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The room.
    pub room: RoomName,
    /// Events with a seq below this one (use the room's `last_seq + 1`, or `Seq(u64::MAX)`, for
    /// the newest).
    pub before: Seq,
    /// At most this many, capped at [`natter_core::limits::HISTORY_PAGE_MAX`].
    pub limit: usize,
}

/// The answer to a [`HistoryQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The events, oldest first (the newest `limit` before `before`).
    pub events: Vec<RoomEvent>,
    /// Nothing older is stored: the page starts at the room's beginning (or at what retention
    /// has kept of it).
    pub at_start: bool,
}

/// A search over stored chat lines (says and actions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The words, as a person typed them. Every word must occur (in any order); punctuation and
    /// search syntax (`"`, `*`, `-`, `:`, `NEAR`, `AND`, `OR`, `NOT`, parentheses) are taken
    /// literally, never as operators. Case and accents do not matter.
    pub words: String,
    /// Only this room, if given.
    pub room: Option<RoomName>,
    /// At most this many, capped at [`natter_core::limits::SEARCH_MAX_RESULTS`].
    pub limit: usize,
}
