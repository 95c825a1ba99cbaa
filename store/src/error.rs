//! The store's errors: why it could not be opened (naming the path), why a batch was not
//! stored, why a read failed. Their `Display` text is meant for an operator's log, and for
//! [`WriteError`] also for the user whose message was refused.

use natter_core::{RoomName, Seq};
use std::path::PathBuf;
use thiserror::Error;

/// Why the store could not be opened. Every variant names the path; none falls back to anything.
#[derive(Debug, Error)]
pub enum OpenError {
    /// No data directory was given and there is no home directory to put the default one in.
    #[error(
        "no data directory: there is no home directory for the default; pass --data-dir PATH or set NATTER_DATA_DIR"
    )]
    NoDataDir,
    /// The data directory could not be created or used.
    #[error("data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file of the store's in the data directory (its lock file, the search index's files)
    /// could not be created, locked or removed.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// One of the store's threads (writer, index, checkpoints) could not be started.
    #[error("cannot start the store's {name} thread: {source}")]
    Thread {
        /// The thread's name.
        name: &'static str,
        /// What the system said.
        source: std::io::Error,
    },
    /// Another process (another natter-server) has the store open.
    #[error("{} is in use by another process (another natter-server on the same data directory?)", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The database file cannot be opened or written (permissions, a directory in its place, a
    /// read-only file system).
    #[error("{} cannot be opened for writing: {detail}", path.display())]
    Unwritable {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// The file is not an SQLite database, or is damaged.
    #[error("{} is not a natter store or is damaged: {detail}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// The database file is not there, while the seq marks beside it say rooms had lines: SQLite
    /// would make a new, empty store in its place.
    #[error(
        "{} is not there, but {} beside it holds the seqs its rooms gave out: the store was moved or deleted (a restore that left the copy elsewhere?); put it, or a backup, in its place, or remove {} to start a new, empty store", path.display(), seqs.display(), seqs.display()
    )]
    Missing {
        /// The database file.
        path: PathBuf,
        /// The seq marks file beside it.
        seqs: PathBuf,
    },
    /// The database file could not be read with the write-ahead log beside it: damaged, or the
    /// log is another file's (a backup put in place as `natter.db` with the old file's
    /// `natter.db-wal` left beside it). Both are left as they were: SQLite would fold the log
    /// into the file when the connection closes.
    #[error(
        "{} is not a natter store or is damaged, read with the write-ahead log beside it, {} ({bytes} bytes): {detail}; both files are left as they were: if natter.db was put back from a backup with an old log beside it, move {} and natter.db-shm away and start again", path.display(), wal.display(), wal.display()
    )]
    StrangeLog {
        /// The database file.
        path: PathBuf,
        /// The write-ahead log beside it.
        wal: PathBuf,
        /// The log's size.
        bytes: u64,
        /// What gave it away (SQLite's words, or what the file held).
        detail: String,
    },
    /// The file is an SQLite database of some other program.
    #[error("{} is an SQLite database but not a natter store ({detail}); refusing to touch it", path.display())]
    Foreign {
        /// The database file.
        path: PathBuf,
        /// What gave it away.
        detail: String,
    },
    /// The store was written by a newer natter whose schema this build does not know.
    #[error("{} has schema version {found}, newer than this build knows ({known}): upgrade natter, or point it at another data directory", path.display())]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The file's schema version.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// Bringing the schema up to date failed (nothing of the failed step was applied).
    #[error("{}: upgrading the schema from version {from} failed: {detail}", path.display())]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The version the failed step started from.
        from: u32,
        /// What SQLite said.
        detail: String,
    },
    /// Anything else SQLite refused while opening.
    #[error("{}: {detail}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
}

/// Why a batch was not stored. Nothing of a failed batch is stored; what was committed before it
/// is untouched. Cheap to clone so a report can carry it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WriteError {
    /// The disk (or the store's size limit) is full. Reads keep working; writes work again once
    /// there is space.
    #[error("the server's disk is full: the message was not stored")]
    DiskFull,
    /// The event's (room, seq) is stored already (a bug in whoever assigned the seq).
    #[error("event {seq} of {room} is stored already")]
    Duplicate {
        /// The room.
        room: RoomName,
        /// The seq.
        seq: Seq,
    },
    /// A number does not fit the store (a seq, id or time above 2^63).
    #[error("{what} {value} is too large to store")]
    OutOfRange {
        /// Which field.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// The store has been closed.
    #[error("the store is closed")]
    Closed,
    /// An I/O or other database error.
    #[error("the server could not store the message: {0}")]
    Storage(String),
}

impl WriteError {
    pub(crate) fn from_sqlite(e: rusqlite::Error) -> WriteError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => WriteError::DiskFull,
            _ => WriteError::Storage(e.to_string()),
        }
    }
}

/// Why a read (load, history page, search) failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReadError {
    /// Too many reads are queued already; try again later.
    #[error("the store is busy: too many requests are waiting, try again")]
    Busy,
    /// A search ran past its time budget and was stopped.
    #[error("the search took too long and was stopped; try more specific words")]
    TimedOut,
    /// The store has been closed.
    #[error("the store is closed")]
    Closed,
    /// A stored row does not make a valid event (the file was damaged or edited by hand).
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// An I/O or other database error.
    #[error("reading the store failed: {0}")]
    Storage(String),
}

impl ReadError {
    pub(crate) fn from_sqlite(e: rusqlite::Error) -> ReadError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::OperationInterrupted) => ReadError::TimedOut,
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                ReadError::Corrupt(e.to_string())
            }
            _ => ReadError::Storage(e.to_string()),
        }
    }
}

/// Why [`crate::Store::try_submit`] did not take a batch. The batch is handed back.
#[derive(Debug, Error)]
pub enum SubmitError {
    /// As many batches as the store allows are in flight (queued, being written, or reported
    /// but the report not yet received); wait with [`crate::Store::ready`].
    #[error("the store's queue is full")]
    Full(crate::Batch),
    /// The store has been closed.
    #[error("the store is closed")]
    Closed(crate::Batch),
}
