//! The writer: the one connection that writes, applying batches in transactions (one per batch,
//! or one for a group of batches: group commit) and deriving each room's metadata from its
//! events in the same transaction.

use super::codec::{self, int};
use super::held::HeldLine;
use super::index::{IndexCmd, Indexer, Progress};
use super::schema;
use crate::config::{Config, LOCK_FILE, WAL_AUTOCHECKPOINT_PAGES};
use crate::{Batch, OpenError, Reader, SessionRecord, TokenHash, Write, WriteError};
use natter_core::wire::{EventKind, RoomEvent};
use natter_core::{Millis, Nick, RoomName, Seq};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::time::Duration;
use tracing::{info, warn};

/// A store opened for writing, used synchronously: what the writer thread of
/// [`crate::SqliteHandle`] drives, and what tests drive directly. At most one is open per data
/// directory (a lock file says so to other processes).
pub struct SqliteStore {
    pub(crate) conn: Connection,
    pub(super) path: PathBuf,
    pub(crate) config: Config,
    /// Room ids by name, for rooms known to be committed.
    rooms: HashMap<RoomName, i64>,
    /// The id the next event gets (one more than the highest stored).
    pub(super) next_id: i64,
    /// The search index: written here, or by a thread of its own.
    index: Index,
    /// Whether chat lines are indexed behind their commits (see [`SqliteStore::defer_search`]).
    defer_search: bool,
    /// Rows of `session_ids` not folded into `sessions` yet (see [`SqliteStore::fold_session_ids`]).
    unfolded_ids: u64,
    pub(super) retention: super::retention::State,
    /// Each room's highest seq, kept beside `natter.db` (see `seqmarks.rs`).
    seq_marks: Option<super::seqmarks::SeqMarks>,
    /// The accounts whose writes in the last group committed were not applied, the operator
    /// having changed them since the server last held them (see [`SqliteStore::take_stale`]).
    stale: Vec<Nick>,
    /// Held while open; the lock goes when the file is closed (or the process dies).
    _lock: DirLock,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `config.dir`. Fails, naming the path, if the
    /// directory cannot be used, another process has the store open, the file is not a natter
    /// store or is damaged, or it has a newer schema than this build; an older schema is
    /// upgraded. The search index file beside it is opened (or rebuilt when it may be torn or
    /// wrong) and not caught up: what is stored past it is indexed by the next step.
    pub fn open_deferred(config: &Config) -> Result<SqliteStore, OpenError> {
        let store = SqliteStore::open_checked(config)
            .map_err(|e| schema::with_log(&config.db_path(), e))?;
        // Read as a natter store: its log is its own, folded in at a clean close.
        schema::fold_on_close(&store.conn, &store.path)?;
        Ok(store)
    }

    /// [`SqliteStore::open_deferred`], with the write-ahead log left as it is when it fails.
    fn open_checked(config: &Config) -> Result<SqliteStore, OpenError> {
        let dir = &config.dir;
        crate::config::create_data_dir(dir)?;
        let lock = DirLock::take(&dir.join(LOCK_FILE))?;
        let path = config.db_path();
        super::seqmarks::refuse_emptied(dir, &path)?;
        let conn = schema::open_writer(&path)?;
        let setup = format!(
            "PRAGMA synchronous = {};
             PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};
             PRAGMA journal_size_limit = {};
             PRAGMA cache_size = -16384;
             PRAGMA temp_store = MEMORY;",
            config.synchronous.pragma(),
            config.retention.wal_limit(),
        );
        conn.execute_batch(&setup)
            .map_err(|e| schema::open_error(&path, e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| schema::open_error(&path, e))?;
        let next_id = conn
            .query_row(NEXT_ID_SQL, [], |r| r.get(0))
            .map_err(|e| schema::open_error(&path, e))?;
        let store_id: Vec<u8> = conn
            .query_row("SELECT uid FROM store_identity", [], |r| r.get(0))
            .map_err(|e| schema::open_error(&path, e))?;
        let indexer = Indexer::open(&config.search_path(), &path, &store_id, next_id - 1)?;
        indexer
            .limit_log(config.retention.wal_limit())
            .map_err(|e| schema::open_error(&config.search_path(), e))?;
        let mut store = SqliteStore {
            conn,
            path,
            config: config.clone(),
            rooms: HashMap::new(),
            next_id,
            index: Index::Inline(Box::new(indexer)),
            defer_search: false,
            unfolded_ids: 1,
            retention: super::retention::State::default(),
            seq_marks: None,
            stale: Vec::new(),
            _lock: lock,
        };
        // Before anything is read: a restored backup's rooms go on after the seqs given out.
        let marks = super::seqmarks::SeqMarks::open(dir, &store.conn).map_err(|e| {
            // A full disk said as the disk's (see `open_error`).
            match schema::open_error(&store.path, e) {
                OpenError::Sqlite { path, detail } => OpenError::Sqlite {
                    path,
                    detail: format!("reading the rooms' seqs: {detail}"),
                },
                other => other,
            }
        })?;
        store.seq_marks = Some(marks);
        // Last ids the last run wrote and did not fold (it stopped, or crashed, in between):
        // folded now, or, on a full disk, by the writer later (a read applies them meanwhile).
        // Opening writes nothing it does not need: a server killed on a full disk starts
        // again, its reads work, and it refuses new messages until there is room, as it did
        // before it was killed.
        let rows: i64 = store
            .conn
            .query_row("SELECT count(*) FROM session_ids", [], |r| r.get(0))
            .map_err(|e| schema::open_error(&store.path, e))?;
        store.unfolded_ids = u64::try_from(rows).unwrap_or(1);
        match store.fold_session_ids() {
            Ok(()) => {}
            Err(WriteError::DiskFull) => {
                warn!(
                    path = %store.path.display(),
                    rows,
                    "store: the disk is full: sessions' last message ids are folded once there is room"
                );
            }
            Err(e) => {
                return Err(schema::write_error_at_open(
                    &store.path,
                    "folding sessions' last message ids",
                    e,
                ));
            }
        }
        // In the config file's words, so an operator can check what is in force.
        info!(
            path = %store.path.display(),
            synchronous = %config.synchronous,
            max_age_days = config.retention.max_age_days,
            max_bytes = config.retention.max_bytes,
            "store open"
        );
        Ok(store)
    }

    /// Opens the store as [`SqliteStore::open_deferred`] does, then indexes for search what is
    /// stored and not indexed yet, before returning (a tail after a crash; the whole history
    /// when the index file is rebuilt, see `sqlite/index.rs`). Every commit then indexes its
    /// own lines, unless [`SqliteStore::defer_search`] says otherwise.
    pub fn open(config: &Config) -> Result<SqliteStore, OpenError> {
        let mut store = SqliteStore::open_deferred(config)?;
        let behind = store.search_lag();
        if behind > 0 {
            store.catch_up_search().map_err(|e| {
                let what = format!("indexing the {behind} newest events for search");
                schema::write_error_at_open(&store.config.search_path(), &what, e)
            })?;
            info!(
                events = behind,
                "store: indexed for search what the last run had not"
            );
        }
        Ok(store)
    }

    /// Bytes of the search index's file in use, as the index last said
    /// ([`Progress::used_bytes`]).
    pub(super) fn index_used_bytes(&self) -> u64 {
        let progress = match &self.index {
            Index::Inline(ix) => &ix.progress,
            Index::Thread { progress, .. } => progress,
        };
        progress.used_bytes.load(Ordering::Acquire)
    }

    /// Hands the search index to a thread of its own ([`super::index::run`]), which `index`
    /// feeds from now on: commits hand it their lines, retention the lines it removes.
    /// Returns the indexer to run, and how far it is.
    pub(crate) fn detach_index(
        &mut self,
        to: Sender<IndexCmd>,
    ) -> Option<(Indexer, Arc<Progress>)> {
        let progress = match &self.index {
            Index::Inline(ix) => Arc::clone(&ix.progress),
            Index::Thread { .. } => return None,
        };
        let thread = Index::Thread {
            to,
            progress: Arc::clone(&progress),
        };
        let Index::Inline(ix) = std::mem::replace(&mut self.index, thread) else {
            return None;
        };
        Some((*ix, progress))
    }

    /// With `on`, chat lines are indexed for search in transactions of their own, behind the
    /// commits that store them: when [`super::INDEX_BATCH`] events wait, when the oldest has
    /// waited [`super::INDEX_LAG`] ([`SqliteStore::index_due`]), and whenever
    /// [`SqliteStore::catch_up_search`] is called. One index segment then holds thousands of
    /// lines instead of one commit's, which costs far less per line; a commit writes only the
    /// events. Off (the default of a store opened alone), every commit indexes its own lines
    /// after it. (A [`crate::SqliteHandle`] runs the index on a thread of its own instead.)
    pub fn defer_search(&mut self, on: bool) -> Result<(), WriteError> {
        self.defer_search = on;
        if on {
            Ok(())
        } else {
            self.catch_up_search().map(|_| ())
        }
    }

    /// Events stored and not yet indexed for search (says and actions among them, and others
    /// the indexer passes over).
    pub fn search_lag(&self) -> u64 {
        match &self.index {
            Index::Inline(ix) => ix.lag(),
            Index::Thread { progress, .. } => {
                u64::try_from(self.next_id - 1 - progress.indexed()).unwrap_or(0)
            }
        }
    }

    /// Whether an index step is due: [`super::INDEX_BATCH`] events wait, or the oldest has
    /// waited [`super::INDEX_LAG`]. Never with the index on a thread of its own (it steps by
    /// itself).
    pub fn index_due(&self) -> bool {
        match &self.index {
            Index::Inline(ix) => ix.due(),
            Index::Thread { .. } => false,
        }
    }

    /// Indexes for search every chat line stored and not indexed yet (and removes from the
    /// index what retention removed). Returns the events looked at. On failure what was
    /// indexed stays, and no index step is due for [`super::INDEX_LAG`]. With the index on a
    /// thread of its own, asks it to and returns 0.
    pub fn catch_up_search(&mut self) -> Result<u64, WriteError> {
        match &mut self.index {
            Index::Inline(ix) => ix.catch_up().map_err(WriteError::from_sqlite),
            Index::Thread { to, .. } => {
                let _ = to.send(IndexCmd::Hurry);
                Ok(0)
            }
        }
    }

    /// Hands the lines of a commit (or of a prune step) to the index, and indexes them now if
    /// every commit indexes its own.
    fn hand_over(&mut self, cmd: IndexCmd) {
        match &mut self.index {
            Index::Inline(ix) => {
                match cmd {
                    IndexCmd::Stored { from, upto, lines } => ix.stored(from, upto, lines),
                    IndexCmd::Removed { upto, lines } => ix.removed(upto, lines),
                    IndexCmd::Hurry | IndexCmd::Wake | IndexCmd::Close(_) => {}
                }
                if !self.defer_search {
                    let caught_up = ix.catch_up();
                    ix.failing.note("search index: indexing", &caught_up);
                }
            }
            Index::Thread { to, progress } => {
                let cmd = match cmd {
                    IndexCmd::Stored { from, upto, lines } => {
                        progress.stored.fetch_max(upto, Ordering::AcqRel);
                        IndexCmd::Stored {
                            from,
                            upto,
                            lines: lines.filter(|l| progress.hand_over(l.len())),
                        }
                    }
                    other => other,
                };
                match cmd {
                    IndexCmd::Stored { .. } | IndexCmd::Removed { .. } => {
                        let behind = progress.stored.load(Ordering::Acquire) - progress.indexed();
                        if progress.post(cmd, behind >= super::INDEX_BATCH) {
                            let _ = to.send(IndexCmd::Wake);
                        }
                    }
                    other => {
                        let _ = to.send(other);
                    }
                }
            }
        }
    }

    /// Hands lines removed by retention to the index.
    pub(super) fn removed(&mut self, upto: i64, lines: Vec<HeldLine>) {
        self.hand_over(IndexCmd::Removed { upto, lines });
    }

    /// The search index's file.
    pub fn search_path(&self) -> PathBuf {
        self.config.search_path()
    }

    /// Runs SQL on the search index's connection (tests).
    #[cfg(test)]
    pub(crate) fn index_sql(&self, sql: &str) -> rusqlite::Result<()> {
        match &self.index {
            Index::Inline(ix) => ix.sql(sql),
            Index::Thread { .. } => Err(rusqlite::Error::InvalidQuery),
        }
    }

    /// One idle merge step of the inline index ([`Indexer::merge_idle`]; tests).
    #[cfg(test)]
    pub(crate) fn merge_search_idle(&mut self) -> rusqlite::Result<bool> {
        match &mut self.index {
            Index::Inline(ix) => ix.merge_idle(),
            Index::Thread { .. } => Err(rusqlite::Error::InvalidQuery),
        }
    }

    /// Leaves checkpoints of the log to a [`Checkpointer`] on another thread: this connection
    /// checkpoints only past [`CHECKPOINT_BEHIND_PAGES`] pages of log (that thread far behind).
    pub(crate) fn checkpoint_elsewhere(&mut self) -> Result<(), OpenError> {
        self.conn
            .pragma_update(None, "wal_autocheckpoint", CHECKPOINT_BEHIND_PAGES)
            .map_err(|e| schema::open_error(&self.path, e))
    }

    /// Drops the store as a crash of the process would leave it: the search index not caught
    /// up nor marked closed cleanly (tests).
    #[cfg(test)]
    pub(crate) fn crash(mut self) {
        let dummy = Index::Thread {
            to: std::sync::mpsc::channel().0,
            progress: Arc::default(),
        };
        drop(std::mem::replace(&mut self.index, dummy));
    }

    /// Whether the index holds every line stored past it (tests).
    #[cfg(test)]
    pub(crate) fn held_complete(&self) -> bool {
        match &self.index {
            Index::Inline(ix) => ix.held_complete(),
            Index::Thread { .. } => false,
        }
    }

    /// Every chat line with an event id up to this is in the search index.
    pub fn search_indexed(&self) -> i64 {
        match &self.index {
            Index::Inline(ix) => ix.indexed(),
            Index::Thread { progress, .. } => progress.indexed(),
        }
    }

    /// Whether enough last-id rows wait to be folded into `sessions` (at least
    /// [`FOLD_IDS_ROWS`]); a fold is cheap, and keeps what a reader applies at load short.
    pub fn fold_due(&self) -> bool {
        self.unfolded_ids >= FOLD_IDS_ROWS
    }

    /// Writes the sessions' last message ids waiting in `session_ids` into `sessions` (one
    /// `UPDATE` per session instead of one per session per commit), in a transaction of its
    /// own. Readers see the same sessions before and after.
    pub fn fold_session_ids(&mut self) -> Result<(), WriteError> {
        if self.unfolded_ids == 0 {
            return Ok(());
        }
        let folded = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(WriteError::from_sqlite)?;
            fold_ids(&tx)?;
            tx.commit().map_err(WriteError::from_sqlite)
        })();
        if folded.is_ok() {
            self.unfolded_ids = 0;
        }
        folded
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new reading connection to this store (each reader thread has its own).
    pub fn reader(&self) -> Result<Reader, OpenError> {
        Reader::open_path(&self.path, self.config.search_budget)
    }

    /// Stores `batch` in one transaction: all of it, or (on error) nothing.
    pub fn write(&mut self, batch: &Batch) -> Result<(), WriteError> {
        self.write_group(std::slice::from_ref(batch))
    }

    /// Stores every batch of `group` in one transaction (group commit): all of them, or (on
    /// error) none.
    pub fn write_group(&mut self, group: &[Batch]) -> Result<(), WriteError> {
        let next_id = self.next_id;
        self.stale.clear();
        let applied = match self.apply_group(group) {
            Ok((ids, lines)) => {
                self.unfolded_ids = match ids {
                    IdRows::Added(n) => self.unfolded_ids + n,
                    IdRows::FoldedThenAdded(n) => n,
                };
                if self.next_id > next_id {
                    self.hand_over(IndexCmd::Stored {
                        from: next_id,
                        upto: self.next_id - 1,
                        lines: Some(lines),
                    });
                }
                self.mark_seqs(group);
                Ok(())
            }
            Err(e) => Err(e),
        };
        if applied.is_err() {
            // Rooms created by the failed transaction do not exist: forget every id learnt.
            self.rooms.clear();
            self.next_id = next_id;
            self.stale.clear();
        }
        applied
    }

    /// The accounts whose writes in the batches last written ([`SqliteStore::write`],
    /// [`SqliteStore::write_group`], when it succeeded) were not applied: the operator changed
    /// them (`natter-server account passwd`, `remove`, `add` of a name the server registered
    /// meanwhile) since the server last held them. The server holds them otherwise than the
    /// store: a registration of such a name was not made, and the server should read its
    /// accounts again. Empty after a failed write (nothing of it was applied or refused).
    pub fn take_stale(&mut self) -> Vec<Nick> {
        std::mem::take(&mut self.stale)
    }

    /// Notes in the seq marks the highest seq of each room `group` (just committed) wrote.
    fn mark_seqs(&mut self, group: &[Batch]) {
        let Some(marks) = self.seq_marks.as_mut() else {
            return;
        };
        let mut top: Vec<(&RoomName, Seq)> = Vec::new();
        for write in group.iter().flat_map(|b| &b.writes) {
            let (room, seq) = match write {
                Write::Event(ev) => (&ev.room, ev.seq),
                Write::SeqsUsed { room, upto } => (room, *upto),
                _ => continue,
            };
            // A batch holds few rooms: a list beats a map here.
            match top.iter_mut().find(|(r, _)| *r == room) {
                Some((_, s)) => *s = (*s).max(seq),
                None => top.push((room, seq)),
            }
        }
        marks.committed(top);
        if marks.due() {
            marks.rewrite(&self.conn);
        }
    }

    fn apply_group(&mut self, group: &[Batch]) -> Result<(IdRows, Vec<HeldLine>), WriteError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(WriteError::from_sqlite)?;
        let mut meta = RoomMeta::default();
        // Consecutive room events are inserted together: one row per room and run of seqs.
        let mut events: Vec<&RoomEvent> = Vec::new();
        // The sessions' last ids of this group, one `session_ids` row for all of them.
        let mut ids: Vec<u8> = Vec::new();
        let mut rows = IdRows::Added(0);
        let last_ids = last_id_writes(group);
        for (b, batch) in group.iter().enumerate() {
            for (w, write) in batch.writes.iter().enumerate() {
                match write {
                    Write::Event(ev) => {
                        events.push(ev);
                        continue;
                    }
                    Write::SessionLastId { token, .. }
                        if last_ids
                            .as_ref()
                            .is_some_and(|l| l.get(token) != Some(&(b, w))) =>
                    {
                        // A later write of this session's last id in the group sets the same
                        // two columns (or finds the session gone): this one would change
                        // nothing.
                        continue;
                    }
                    Write::SessionLastId {
                        token,
                        last_id,
                        updated,
                    } => {
                        ids.extend_from_slice(&token.0);
                        ids.extend_from_slice(&int("message id", last_id.0)?.to_le_bytes());
                        ids.extend_from_slice(&int("time", updated.0)?.to_le_bytes());
                        continue;
                    }
                    Write::Presence { .. } | Write::PresenceReset => {
                        // Another table than the events': applied in place, the events
                        // gathered so far stay gathered (one row per room and run of seqs).
                        apply_presence(&tx, write)?;
                        continue;
                    }
                    Write::SeqsUsed { room, upto } => {
                        // The same: the rooms' rows.
                        seqs_used(&tx, room, *upto)?;
                        continue;
                    }
                    Write::Session(_) | Write::EndSession(_) | Write::EndSessionsBefore(_) => {
                        // Every last id written before this write goes into `sessions` first,
                        // so the two apply in the order they were written.
                        if !ids.is_empty() {
                            insert_ids(&tx, &ids)?;
                            ids.clear();
                            rows = rows.plus(1);
                        }
                        let waiting = match rows {
                            IdRows::Added(n) => self.unfolded_ids + n,
                            IdRows::FoldedThenAdded(n) => n,
                        };
                        if waiting > 0 {
                            fold_ids(&tx)?;
                            rows = IdRows::FoldedThenAdded(0);
                        }
                    }
                    _ => {}
                }
                if !events.is_empty() {
                    let ctx = (&mut self.rooms, &mut self.next_id, &mut meta);
                    insert_events(&tx, ctx, &events)?;
                    events.clear();
                }
                let ctx = (&mut self.rooms, &mut self.next_id, &mut meta);
                apply(&tx, ctx, &mut self.stale, write)?;
            }
        }
        if !events.is_empty() {
            let ctx = (&mut self.rooms, &mut self.next_id, &mut meta);
            insert_events(&tx, ctx, &events)?;
        }
        if !ids.is_empty() {
            insert_ids(&tx, &ids)?;
            rows = rows.plus(1);
        }
        let lines = std::mem::take(&mut meta.lines);
        meta.store(&tx)?;
        tx.commit().map_err(WriteError::from_sqlite)?;
        Ok((rows, lines))
    }

    /// Copies the store, as of now, to a new file `to` (which must not exist): a consistent,
    /// compacted snapshot, taken while the store stays in use (`VACUUM INTO`). Restoring is
    /// putting that file in place of `natter.db` (with no `-wal` or `-shm` beside it) while
    /// natter-server is stopped.
    pub fn backup(&self, to: &Path) -> Result<(), WriteError> {
        backup(&self.path, to)
    }
}

/// [`SqliteStore::backup`] on a connection of its own, so it can run on any thread.
pub(crate) fn backup(from: &Path, to: &Path) -> Result<(), WriteError> {
    let conn = schema::open_reader(from).map_err(|e| WriteError::Storage(e.to_string()))?;
    let to = to
        .to_str()
        .ok_or_else(|| WriteError::Storage(format!("{} is not UTF-8", to.display())))?;
    // `query_only` forbids VACUUM INTO; this connection does nothing else.
    conn.pragma_update(None, "query_only", false)
        .and_then(|()| conn.execute("VACUUM INTO ?1", [to]))
        .map(|_| ())
        .map_err(WriteError::from_sqlite)
}

/// The id the next event gets: one past the last of the newest row (one index lookup).
pub(super) const NEXT_ID_SQL: &str =
    "SELECT coalesce((SELECT id + n FROM events ORDER BY id DESC LIMIT 1), 1)";

/// Rows of `session_ids` past which the writer folds them into `sessions`.
pub const FOLD_IDS_ROWS: u64 = 256;

/// Bytes of one entry of a `session_ids` row: the token hash, the last id, the time.
pub(super) const ID_ENTRY: usize = 32 + 8 + 8;

/// What a committed group did to `session_ids`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdRows {
    /// Added this many rows.
    Added(u64),
    /// Folded every row into `sessions`, then added this many.
    FoldedThenAdded(u64),
}

impl IdRows {
    fn plus(self, n: u64) -> IdRows {
        match self {
            IdRows::Added(a) => IdRows::Added(a + n),
            IdRows::FoldedThenAdded(a) => IdRows::FoldedThenAdded(a + n),
        }
    }
}

/// Appends one `session_ids` row holding `ids` (entries of [`ID_ENTRY`] bytes).
fn insert_ids(tx: &Connection, ids: &[u8]) -> Result<(), WriteError> {
    tx.prepare_cached("INSERT INTO session_ids (ids) VALUES (?1)")
        .and_then(|mut st| st.execute([ids]))
        .map(|_| ())
        .map_err(WriteError::from_sqlite)
}

/// The last id and time of every session named in `session_ids`, the last written winning.
pub(super) fn unfolded_ids(
    conn: &Connection,
) -> rusqlite::Result<Option<HashMap<TokenHash, (i64, i64)>>> {
    let mut latest = HashMap::new();
    let mut st = conn.prepare_cached("SELECT ids FROM session_ids ORDER BY id")?;
    let mut rows = st.query([])?;
    while let Some(row) = rows.next()? {
        let blob = row.get_ref(0)?.as_blob()?;
        if blob.len() % ID_ENTRY != 0 {
            return Ok(None);
        }
        for e in blob.chunks_exact(ID_ENTRY) {
            let (token, rest) = e.split_at(32);
            let (last_id, updated) = rest.split_at(8);
            let (Some(token), Ok(last_id), Ok(updated)) = (
                token_hash(token),
                <[u8; 8]>::try_from(last_id),
                <[u8; 8]>::try_from(updated),
            ) else {
                return Ok(None);
            };
            latest.insert(
                token,
                (i64::from_le_bytes(last_id), i64::from_le_bytes(updated)),
            );
        }
    }
    Ok(Some(latest))
}

/// Writes the rows of `session_ids` into `sessions` and removes them, inside `tx`.
fn fold_ids(tx: &Connection) -> Result<(), WriteError> {
    let latest = unfolded_ids(tx)
        .map_err(WriteError::from_sqlite)?
        .ok_or_else(|| WriteError::Storage("a session_ids row is damaged".into()))?;
    let mut st = tx
        .prepare_cached("UPDATE sessions SET last_id = ?2, updated = ?3 WHERE token = ?1")
        .map_err(WriteError::from_sqlite)?;
    for (token, (last_id, updated)) in &latest {
        st.execute(params![&token.0[..], last_id, updated])
            .map_err(WriteError::from_sqlite)?;
    }
    tx.execute("DELETE FROM session_ids", [])
        .map_err(WriteError::from_sqlite)?;
    Ok(())
}

/// Where in `group` (batch, write) each session's last [`Write::SessionLastId`] is, when the
/// group has several batches (the hub writes a session's last id once per batch, so a group
/// of many batches from the same senders repeats them). `None` for one batch.
fn last_id_writes(group: &[Batch]) -> Option<HashMap<&TokenHash, (usize, usize)>> {
    if group.len() < 2 {
        return None;
    }
    let mut last = HashMap::new();
    for (b, batch) in group.iter().enumerate() {
        for (w, write) in batch.writes.iter().enumerate() {
            if let Write::SessionLastId { token, .. } = write {
                last.insert(token, (b, w));
            }
        }
    }
    Some(last)
}

/// Applies one write inside the open transaction `tx`.
/// The accounts whose writes it did not apply go to `stale` (see [`SqliteStore::take_stale`]).
fn apply(
    tx: &Connection,
    (rooms, next_id, meta): (&mut HashMap<RoomName, i64>, &mut i64, &mut RoomMeta),
    stale: &mut Vec<Nick>,
    write: &Write,
) -> Result<(), WriteError> {
    let sql = WriteError::from_sqlite;
    match write {
        Write::Event(ev) => insert_events(tx, (rooms, next_id, meta), &[ev])?,
        Write::Session(s) => upsert_session(tx, s)?,
        Write::SessionLastId {
            token,
            last_id,
            updated,
        } => {
            // A group gathers these into a `session_ids` row; one alone is written in place.
            let (last_id, updated) = (int("message id", last_id.0)?, int("time", updated.0)?);
            tx.prepare_cached("UPDATE sessions SET last_id = ?2, updated = ?3 WHERE token = ?1")
                .and_then(|mut st| st.execute(params![&token.0[..], last_id, updated]))
                .map_err(sql)?;
        }
        Write::EndSession(token) => {
            tx.prepare_cached("DELETE FROM sessions WHERE token = ?1")
                .and_then(|mut st| st.execute([&token.0[..]]))
                .map_err(sql)?;
        }
        Write::EndSessionsBefore(t) => {
            let before = int("time", t.0)?;
            tx.prepare_cached("DELETE FROM sessions WHERE updated < ?1")
                .and_then(|mut st| st.execute([before]))
                .map_err(sql)?;
        }
        Write::Presence { .. } | Write::PresenceReset => apply_presence(tx, write)?,
        Write::SeqsUsed { room, upto } => seqs_used(tx, room, *upto)?,
        other => {
            if !super::accounts::apply(tx, other, super::accounts::By::Server, stale)?
                && !super::policies::apply(tx, other)?
            {
                // A kind of write this version of the store does not know (a newer hub):
                // refused, so the batch fails loudly instead of losing it.
                return Err(WriteError::Storage(format!("unknown write {write:?}")));
            }
        }
    }
    Ok(())
}

/// Applies a [`Write::SeqsUsed`]: the room's seq floor (`rooms.last_seq`, which a reader
/// takes with the highest stored seq) rises to `upto`.
fn seqs_used(tx: &Connection, room: &RoomName, upto: Seq) -> Result<(), WriteError> {
    let upto = int("seq", upto.0)?;
    tx.prepare_cached(
        "INSERT INTO rooms (name, topic, last_seq) VALUES (?1, NULL, ?2)
         ON CONFLICT (name) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
    )
    .and_then(|mut st| st.execute(params![room.as_str(), upto]))
    .map(|_| ())
    .map_err(WriteError::from_sqlite)
}

/// Applies a [`Write::Presence`] or [`Write::PresenceReset`] (see
/// `migrations/010_presence.sql`); any other write changes nothing.
fn apply_presence(tx: &Connection, write: &Write) -> Result<(), WriteError> {
    let sql = WriteError::from_sqlite;
    match write {
        Write::Presence {
            room,
            nick,
            here: true,
        } => {
            tx.prepare_cached(
                "INSERT INTO presence (room, nick_key, nick) VALUES (?1, ?2, ?3)
                 ON CONFLICT (room, nick_key) DO UPDATE SET nick = excluded.nick",
            )
            .and_then(|mut st| {
                st.execute(params![
                    room.as_str(),
                    nick.folded_key().as_str(),
                    nick.as_str()
                ])
            })
            .map_err(sql)?;
        }
        Write::Presence {
            room,
            nick,
            here: false,
        } => {
            tx.prepare_cached("DELETE FROM presence WHERE room = ?1 AND nick_key = ?2")
                .and_then(|mut st| st.execute(params![room.as_str(), nick.folded_key().as_str()]))
                .map_err(sql)?;
        }
        Write::PresenceReset => {
            tx.prepare_cached("DELETE FROM presence")
                .and_then(|mut st| st.execute([]))
                .map_err(sql)?;
        }
        _ => {}
    }
    Ok(())
}

/// The id of `room`, creating its row if it has none.
fn room_id(
    tx: &Connection,
    rooms: &mut HashMap<RoomName, i64>,
    room: &RoomName,
) -> Result<i64, WriteError> {
    if let Some(id) = rooms.get(room) {
        return Ok(*id);
    }
    let id = tx
        .prepare_cached("INSERT INTO rooms (name, topic, last_seq) VALUES (?1, NULL, 0) ON CONFLICT (name) DO NOTHING")
        .and_then(|mut st| st.execute([room.as_str()]))
        .and_then(|_| {
            tx.prepare_cached("SELECT id FROM rooms WHERE name = ?1")?
                .query_row([room.as_str()], |r| r.get(0))
        })
        .map_err(WriteError::from_sqlite)?;
    rooms.insert(room.clone(), id);
    Ok(id)
}

/// Events one `events` row holds at most (see `migrations/009_event_rows.sql`): what a search
/// result or a read-back unpacks to pick one event out of a row.
pub const ROW_EVENTS: usize = 256;

/// What inserting events updates: room ids, the next event id, the rooms' metadata.
type EventCtx<'c> = (
    &'c mut HashMap<RoomName, i64>,
    &'c mut i64,
    &'c mut RoomMeta,
);

/// Inserts `events` (in this order) as rows of several events: one per room and run of
/// consecutive seqs (at most [`ROW_EVENTS`]), numbered with the next ids row by row; indexing
/// their lines for search is the caller's (they are in `meta.lines`, by id).
fn insert_events(
    tx: &Connection,
    (rooms, next_id, meta): EventCtx<'_>,
    events: &[&RoomEvent],
) -> Result<(), WriteError> {
    // Rows in the order of their first event; a room's open row is the last of its rows.
    let mut rows: Vec<(i64, Vec<&RoomEvent>)> = Vec::new();
    let mut open: HashMap<i64, usize> = HashMap::new();
    for ev in events {
        let room = room_id(tx, rooms, &ev.room)?;
        meta.saw(room, ev);
        let follows = open.get(&room).is_some_and(|&i| {
            let row = &rows[i].1;
            row.len() < ROW_EVENTS
                && row
                    .last()
                    .is_some_and(|l| l.seq.0.checked_add(1) == Some(ev.seq.0))
        });
        if follows {
            if let Some(&i) = open.get(&room) {
                rows[i].1.push(ev);
            }
        } else {
            open.insert(room, rows.len());
            rows.push((room, vec![ev]));
        }
    }
    // About what a bench line takes (64 bytes of text): grown once at most, not by doubling.
    let mut frames = String::with_capacity(events.len().min(ROW_EVENTS) * 128);
    for (room, row) in rows {
        insert_row(tx, room, &row, next_id, meta, &mut frames)?;
    }
    Ok(())
}

/// One `events` row: `row` (consecutive seqs of `room`) with the ids from `next_id` on.
/// Refuses it, naming the first seq already stored, if it overlaps a row stored (a room's
/// rows never overlap, so the one starting last at or below its last seq tells).
fn insert_row(
    tx: &Connection,
    room: i64,
    row: &[&RoomEvent],
    next_id: &mut i64,
    meta: &mut RoomMeta,
    frames: &mut String,
) -> Result<(), WriteError> {
    let sql = WriteError::from_sqlite;
    let (Some(first), Some(last)) = (row.first(), row.last()) else {
        return Ok(());
    };
    let (seq, last_seq) = (int("seq", first.seq.0)?, int("seq", last.seq.0)?);
    let below: Option<(i64, i64)> = tx
        .prepare_cached(ROW_AT_OR_BELOW_SQL)
        .and_then(|mut st| {
            st.query_row(params![room, last_seq], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql)?;
    if let Some((s, n)) = below
        && s + n > seq
    {
        return Err(duplicate(tx, room, first, seq));
    }
    frames.clear();
    frames.push('[');
    // Where each frame ends in `frames`, for readers picking one out (`codec::frame_places`).
    let mut ends: Vec<u8> = Vec::with_capacity(row.len() * 4);
    let mut at = 0;
    for (i, ev) in row.iter().enumerate() {
        if i > 0 {
            frames.push(',');
        }
        codec::frame(frames, ev)?;
        let end = u32::try_from(frames.len()).map_err(|_| WriteError::OutOfRange {
            what: "a row of events' bytes",
            value: frames.len() as u64,
        })?;
        ends.extend_from_slice(&end.to_le_bytes());
        at = at.max(int("time", ev.at.0)?);
        if let EventKind::Say { text, .. }
        | EventKind::Act { text, .. }
        | EventKind::Notice { text, .. } = &ev.kind
        {
            meta.lines.push(HeldLine {
                id: *next_id + i as i64,
                room,
                text: text.as_str().to_owned(),
            });
        }
    }
    frames.push(']');
    let n = row.len() as i64;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO events (room, seq, n, id, at, frames, ends) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut st| st.execute(params![room, seq, n, *next_id, at, frames.as_str(), ends]));
    match inserted {
        Ok(_) => {
            *next_id += n;
            Ok(())
        }
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
            Err(duplicate(tx, room, first, seq))
        }
        Err(e) => Err(sql(e)),
    }
}

/// A room's row starting last at or below a seq: `?1` room, `?2` seq.
pub(super) const ROW_AT_OR_BELOW_SQL: &str =
    "SELECT seq, n FROM events WHERE room = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1";

/// The error for a row of events from `first` (seq `seq`) on that overlaps one stored: names
/// the first of its seqs stored already.
fn duplicate(tx: &Connection, room: i64, first: &RoomEvent, seq: i64) -> WriteError {
    // The row holding `seq`, else the first row after it.
    let holding: Option<(i64, i64)> = tx
        .query_row(ROW_AT_OR_BELOW_SQL, params![room, seq], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .ok()
        .flatten();
    let stored = match holding {
        Some((s, n)) if s + n > seq => seq,
        _ => tx
            .query_row(
                "SELECT seq FROM events WHERE room = ?1 AND seq > ?2 ORDER BY seq LIMIT 1",
                params![room, seq],
                |r| r.get(0),
            )
            .unwrap_or(seq),
    };
    WriteError::Duplicate {
        room: first.room.clone(),
        seq: natter_core::Seq(u64::try_from(stored).unwrap_or(first.seq.0)),
    }
}

fn upsert_session(tx: &Connection, s: &SessionRecord) -> Result<(), WriteError> {
    let list = |rooms: &[RoomName]| {
        rooms
            .iter()
            .map(RoomName::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (rooms, put_out) = (list(&s.rooms), list(&s.put_out));
    let (last_id, updated) = (int("message id", s.last_id.0)?, int("time", s.updated.0)?);
    let refused = super::codec::refused_blob(&s.refused)?;
    let (prev_id, prev_token) = match &s.prev {
        Some((id, hash)) => (
            Some(i64::from_ne_bytes(id.to_ne_bytes())),
            Some(&hash.0[..]),
        ),
        None => (None, None),
    };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO sessions \
         (token, token_id, nick, rooms, last_id, updated, refused, prev_id, prev_token, \
          took_zero, put_out, device_key) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .and_then(|mut st| {
        st.execute(params![
            &s.token.0[..],
            // All 64 bits, kept as SQLite's signed integer.
            i64::from_ne_bytes(s.token_id.to_ne_bytes()),
            s.nick.as_str(),
            rooms,
            last_id,
            updated,
            refused,
            prev_id,
            prev_token,
            s.took_zero,
            put_out,
            s.device_key.map(|k| i64::from_ne_bytes(k.to_ne_bytes()))
        ])
    })
    .map(|_| ())
    .map_err(WriteError::from_sqlite)
}

/// What a transaction's events change in their rooms' rows: the last topic set. (A room's last
/// seq is not written per commit: `rooms.last_seq` is a floor, raised only when retention
/// removes events, and a reader takes the larger of it and the room's highest stored seq.)
#[derive(Default)]
struct RoomMeta {
    topics: HashMap<i64, Option<String>>,
    /// The chat lines stored, for the index (see `held.rs`).
    lines: Vec<HeldLine>,
}

impl RoomMeta {
    fn saw(&mut self, room: i64, ev: &RoomEvent) {
        if let EventKind::Topic { topic } = &ev.kind {
            self.topics
                .insert(room, topic.as_ref().map(|t| t.as_str().to_owned()));
        } else if natter_core::persist::closes_room(&ev.kind) {
            // A closed room's topic goes with its settings.
            self.topics.insert(room, None);
        }
    }

    fn store(self, tx: &Connection) -> Result<(), WriteError> {
        if self.topics.is_empty() {
            return Ok(());
        }
        let mut topic = tx
            .prepare_cached("UPDATE rooms SET topic = ?2 WHERE id = ?1")
            .map_err(WriteError::from_sqlite)?;
        for (room, t) in self.topics {
            topic
                .execute(params![room, t])
                .map_err(WriteError::from_sqlite)?;
        }
        Ok(())
    }
}

/// Pages of log past which the writer checkpoints by itself when a thread of its own does it
/// (which checkpoints every [`CHECKPOINT_EVERY`]): a backstop, if that thread falls behind.
pub const CHECKPOINT_BEHIND_PAGES: u32 = 4 * WAL_AUTOCHECKPOINT_PAGES;

/// How often the checkpoint thread of a [`crate::SqliteHandle`] copies the log into the database file.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Checkpoints the store's write-ahead log on a connection (and thread) of its own, so that a
/// commit never copies pages into the database file nor waits for that copy's `fsync`.
/// `PASSIVE`: it never blocks the writer nor readers; it copies what no reader still needs.
pub(crate) struct Checkpointer {
    conn: Connection,
}

impl Checkpointer {
    pub(crate) fn open(store: &SqliteStore) -> Result<Checkpointer, OpenError> {
        let conn = schema::open_beside(&store.path)?;
        // The same durability as the writer's: under `normal`, a checkpoint syncs the log
        // before it copies it, and the database after.
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {};",
            store.config.synchronous.pragma()
        ))
        .map_err(|e| schema::open_error(&store.path, e))?;
        Ok(Checkpointer { conn })
    }

    /// Checkpoints every [`CHECKPOINT_EVERY`] until `stop` is dropped.
    pub(crate) fn run(self, stop: &std::sync::mpsc::Receiver<()>) {
        use std::sync::mpsc::RecvTimeoutError;
        let mut failing = crate::failing::Failing::default();
        loop {
            match stop.recv_timeout(CHECKPOINT_EVERY) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            let done = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
            failing.note("store: checkpoint", &done);
        }
    }
}

/// Where the search index is written: by the writer, after its commits, or by a thread of
/// its own that the writer hands lines to.
enum Index {
    Inline(Box<Indexer>),
    Thread {
        to: Sender<IndexCmd>,
        progress: Arc<Progress>,
    },
}

impl Drop for SqliteStore {
    /// Closes the search index cleanly (caught up, and marked so): here, or by telling its
    /// thread and waiting for it.
    fn drop(&mut self) {
        match std::mem::replace(
            &mut self.index,
            Index::Thread {
                to: std::sync::mpsc::channel().0,
                progress: Arc::default(),
            },
        ) {
            Index::Inline(ix) => ix.close(),
            Index::Thread { to, .. } => {
                let (done, closed) = std::sync::mpsc::channel();
                if to.send(IndexCmd::Close(done)).is_ok() {
                    let _ = closed.recv();
                }
            }
        }
    }
}

/// An exclusive lock on a file in the data directory, so a second process opening the same
/// store is refused rather than interleaving its writes (SQLite alone would let it).
pub(super) struct DirLock {
    #[cfg(unix)]
    _held: nix::fcntl::Flock<File>,
}

impl DirLock {
    pub(super) fn take(path: &Path) -> Result<DirLock, OpenError> {
        let mut options = File::options();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(|source| OpenError::File {
            path: path.to_path_buf(),
            source,
        })?;
        // One made 0644 by an older natter is narrowed as the database files are.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if file
                .metadata()
                .is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
            {
                let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
            }
        }
        #[cfg(unix)]
        {
            use nix::fcntl::{Flock, FlockArg};
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(held) => Ok(DirLock { _held: held }),
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(OpenError::Locked {
                    path: path.to_path_buf(),
                }),
                Err((_, errno)) => Err(OpenError::File {
                    path: path.to_path_buf(),
                    source: std::io::Error::from(errno),
                }),
            }
        }
        #[cfg(not(unix))]
        {
            // No advisory lock here: one server per data directory is up to the operator.
            drop(file);
            Ok(DirLock {})
        }
    }
}

/// The hash of a resume token as stored, from a blob read back.
pub(crate) fn token_hash(blob: &[u8]) -> Option<TokenHash> {
    <[u8; 32]>::try_from(blob).ok().map(TokenHash)
}

/// Now, in Unix milliseconds, for retention (the writer thread's clock; core never reads one).
pub(crate) fn unix_now() -> Millis {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}
