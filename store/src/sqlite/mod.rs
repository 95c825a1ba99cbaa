//! The SQLite backend, used synchronously: [`SqliteStore`] writes (one per data directory),
//! [`Reader`]s read. [`crate::SqliteHandle`] runs them on threads behind [`crate::Store`].
//!
//! The file is `natter.db` in the data directory, in WAL mode: readers see the last commit
//! while the writer goes on. Schema: `rooms` (name, topic, last seq), `events` (one row per
//! room and commit, holding several events packed, kept in room and seq order, with a unique
//! index on its first event's insertion id: `migrations/009_event_rows.sql`),
//! `store_identity` (a random id the search index file names), `sessions` (resume sessions by token hash;
//! `session_ids` holds the last message ids not folded into it yet), and `accounts` with `account_rooms`,
//! `read_markers` and `device_keys` (by folded account name), and `room_policies` (rooms'
//! settings); see `migrations/`. The search index, `events_fts` (an FTS5 index over says and
//! actions by insertion id, holding no copy of the text), is a derived cache in a file of its
//! own, `search.db`, written behind the commits (see `index.rs`).

mod accounts;
mod codec;
mod held;
mod index;
mod policies;
mod read;
mod retention;
mod schema;
mod search;
mod seqmarks;
mod write;

pub use accounts::AccountStore;
pub use index::{INDEX_BATCH, INDEX_LAG, READ_BACK_STEP, SEARCH_FILE};
pub(crate) use index::{IndexCmd, Progress, run as run_index};
pub use read::Reader;
pub use retention::{PRUNE_CHECK_EVERY, PRUNE_STEP, Pruned};
pub use schema::{MIGRATIONS, SCHEMA_VERSION};
pub use seqmarks::{MAX_SEQ_MARKS_BYTES, SEQS_FILE, holds_marks};
pub(crate) use write::Checkpointer;
pub use write::{
    CHECKPOINT_BEHIND_PAGES, CHECKPOINT_EVERY, FOLD_IDS_ROWS, ROW_EVENTS, SqliteStore,
};
pub(crate) use write::{backup, unix_now};

#[cfg(test)]
mod tests;
