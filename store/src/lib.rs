//! natter-store: natter's durable store of rooms, history, search and resume sessions.
//!
//! natter-core stays sans-IO: its hub hands out what must be persisted as data ([`Batch`]es of
//! [`Write`]s built from core's own types), is told when a batch is durable ([`Report`]), and
//! asks for old history and search results as requests the shell answers later. This crate is
//! the shell's side of that conversation:
//!
//! - [`Store`]: the small trait a shell drives (load at startup, submit batches, receive
//!   reports, read history pages and search), so another backend can be added without touching
//!   the hub;
//! - [`SqliteHandle`]: the SQLite backend (bundled SQLite, WAL mode) on threads: one writer
//!   thread doing group commit and retention, and reader threads for history and search;
//! - [`SqliteStore`] and [`Reader`]: the same backend used synchronously (tests, tools);
//! - [`resolve_data_dir`]: where the store lives (`--data-dir`, `NATTER_DATA_DIR`, or
//!   `$XDG_DATA_HOME/natter`).
//!
//! What a crash or a power cut can lose depends on [`Synchronous`]; by default nothing reported
//! durable is lost when the process dies. The store's README (store/README.md) has the schema,
//! durability, backup and restore.
#![warn(missing_docs)]

mod backend;
mod config;
mod error;
mod failing;
mod handle;
pub mod sqlite;
mod types;

pub use backend::{Report, Reporter, Reports, Slots, Store, StoreFuture, in_flight};
pub use config::{
    Config, DATA_DIR_ENV, DB_FILE, LOCK_FILE, Retention, Synchronous, WAL_AUTOCHECKPOINT_PAGES,
    WAL_LIMIT_MAX, WAL_LIMIT_MIN, resolve_data_dir,
};
pub use error::{OpenError, ReadError, SubmitError, WriteError};
pub use handle::SqliteHandle;
pub use sqlite::{AccountStore, Reader, SqliteStore};
pub use types::{
    AccountRecord, Batch, BatchId, HistoryPage, HistoryQuery, KeyRecord, LoadOptions, Loaded,
    LoadedAccount, LoadedRoom, RecentRooms, SearchQuery, SessionRecord, TokenHash, Write,
};
