//! The SQLite backend, used synchronously: [`SqliteStore`] writes (one per data directory),
//! [`Reader`]s read. [`crate::SqliteHandle`] runs them on threads behind [`crate::Store`].
//!
//! The file is `natter.db` in the data directory, in WAL mode: readers see the last commit
//! while the writer goes on. Schema: `rooms` (name, topic, last seq), `events` (one row per
//! room event, kept in room and seq order, with a unique index on the insertion id),
//! `events_fts` (an FTS5 index over says and actions by insertion id, holding no copy of the
//! text; `search_state` says up to which event it is filled), `sessions` (resume sessions by token hash;
//! `session_ids` holds the last message ids not folded into it yet), and `accounts` with `account_rooms`,
//! `read_markers` and `device_keys` (by folded account name), and `room_policies` (rooms'
//! settings); see `migrations/`.

mod accounts;
mod codec;
mod held;
mod policies;
mod read;
mod retention;
mod schema;
mod search;
mod write;

pub use accounts::AccountStore;
pub use read::Reader;
pub use retention::{PRUNE_CHECK_EVERY, PRUNE_STEP, Pruned};
pub use schema::{MIGRATIONS, SCHEMA_VERSION};
pub use write::{FOLD_IDS_ROWS, INDEX_BATCH, INDEX_LAG, SqliteStore};
pub(crate) use write::{backup, unix_now};

#[cfg(test)]
mod tests;
