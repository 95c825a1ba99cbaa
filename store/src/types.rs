//! What goes into the store and what comes out. The data types are natter-core's own
//! ([`natter_core::persist`]: the hub builds batches and queries of them, sans-IO); this crate
//! adds only what a shell decides at startup ([`LoadOptions`]).

use natter_core::Millis;

pub use natter_core::persist::{
    AccountRecord, Batch, BatchId, HistoryPage, HistoryQuery, KeyRecord, Loaded, LoadedAccount,
    LoadedRoom, SearchQuery, SessionRecord, TokenHash, Write,
};

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
