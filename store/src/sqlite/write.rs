//! The writer: the one connection that writes, applying batches in transactions (one per batch,
//! or one for a group of batches: group commit) and deriving each room's metadata from its
//! events in the same transaction.

use super::codec::{self, int};
use super::held::{Held, HeldLine};
use super::schema;
use crate::config::{Config, LOCK_FILE, WAL_AUTOCHECKPOINT_PAGES};
use crate::{Batch, OpenError, Reader, SessionRecord, TokenHash, Write, WriteError};
use natter_core::wire::{EventKind, RoomEvent};
use natter_core::{Millis, RoomName};
use rusqlite::{Connection, ErrorCode, params};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tracing::info;

/// Events stored and not yet indexed for search past which the writer indexes them, when
/// search is deferred (see [`SqliteStore::defer_search`]): one index segment for this many
/// chat lines instead of one per commit.
pub const INDEX_BATCH: i64 = 4096;

/// How long a stored chat line waits at most to be indexed for search when fewer than
/// [`INDEX_BATCH`] are waiting (search deferred, and nobody searching meanwhile).
pub const INDEX_LAG: Duration = Duration::from_secs(1);

/// Indexes for search the chat lines with an event id in `?1 < id <= ?2`.
const INDEX_RANGE_SQL: &str = "INSERT INTO events_fts (rowid, text, room)
    SELECT id, text, room FROM events WHERE id > ?1 AND id <= ?2 AND kind IN (0, 1)";

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
    /// Every chat line with an event id up to this one is in the search index.
    pub(super) indexed: i64,
    /// Whether chat lines are indexed behind their commits (see [`SqliteStore::defer_search`]).
    defer_search: bool,
    /// When the oldest event not yet indexed was committed (search deferred).
    unindexed_since: Option<Instant>,
    /// No index step before this (one failed).
    index_after: Option<Instant>,
    /// Rows of `session_ids` not folded into `sessions` yet (see [`SqliteStore::fold_session_ids`]).
    unfolded_ids: u64,
    /// The chat lines stored and not indexed yet, for the next index step.
    pub(super) held: Held,
    pub(super) retention: super::retention::State,
    /// Held while open; the lock goes when the file is closed (or the process dies).
    _lock: DirLock,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `config.dir`. Fails, naming the path, if the
    /// directory cannot be used, another process has the store open, the file is not a natter
    /// store or is damaged, or it has a newer schema than this build; an older schema is
    /// upgraded.
    pub fn open(config: &Config) -> Result<SqliteStore, OpenError> {
        let dir = &config.dir;
        std::fs::create_dir_all(dir).map_err(|source| OpenError::DataDir {
            path: dir.clone(),
            source,
        })?;
        let lock = DirLock::take(&dir.join(LOCK_FILE))?;
        let path = config.db_path();
        let conn = schema::open_writer(&path)?;
        let setup = format!(
            "PRAGMA synchronous = {};
             PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};
             PRAGMA journal_size_limit = {};
             PRAGMA cache_size = -16384;
             PRAGMA temp_store = MEMORY;",
            config.synchronous.pragma(),
            64 * 1024 * 1024,
        );
        conn.execute_batch(&setup)
            .map_err(|e| schema::open_error(&path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| schema::open_error(&path, e))?;
        let next_id = conn
            .query_row("SELECT coalesce(max(id), 0) + 1 FROM events", [], |r| {
                r.get(0)
            })
            .map_err(|e| schema::open_error(&path, e))?;
        let indexed = conn
            .query_row("SELECT indexed FROM search_state", [], |r| r.get(0))
            .map_err(|e| schema::open_error(&path, e))?;
        let held = Held::install(&conn, indexed >= next_id - 1)
            .map_err(|e| schema::open_error(&path, e))?;
        let mut store = SqliteStore {
            conn,
            path,
            config: config.clone(),
            rooms: HashMap::new(),
            next_id,
            indexed,
            defer_search: false,
            unindexed_since: None,
            index_after: None,
            unfolded_ids: 1,
            held,
            retention: super::retention::State::default(),
            _lock: lock,
        };
        // What was stored and not indexed before the last stop (a crash, or a kill): a bounded
        // tail, at most about INDEX_BATCH events plus one group.
        let behind = store.search_lag();
        if behind > 0 {
            store.catch_up_search().map_err(|e| OpenError::Sqlite {
                path: store.path.clone(),
                detail: format!("indexing the {behind} newest events for search: {e}"),
            })?;
            info!(
                events = behind,
                "store: indexed for search what the last run had not"
            );
        }
        // Last ids the last run wrote and did not fold (it stopped, or crashed, in between).
        store.fold_session_ids().map_err(|e| OpenError::Sqlite {
            path: store.path.clone(),
            detail: format!("folding sessions' last message ids: {e}"),
        })?;
        info!(path = %store.path.display(), synchronous = ?config.synchronous, "store open");
        Ok(store)
    }

    /// With `on`, chat lines are indexed for search in transactions of their own, behind the
    /// commits that store them: when [`INDEX_BATCH`] events wait, when the oldest has waited
    /// [`INDEX_LAG`] ([`SqliteStore::index_due`]), and whenever
    /// [`SqliteStore::catch_up_search`] is called (before every search of
    /// [`crate::SqliteHandle`], before pruning, on close, and on the next open after a crash).
    /// One index segment then holds thousands of lines instead of one commit's, which costs
    /// far less per line; a commit writes only the events. Off (the default of a store opened
    /// alone), every commit indexes its own lines. [`crate::SqliteHandle`] turns it on.
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
        u64::try_from(self.next_id - 1 - self.indexed).unwrap_or(0)
    }

    /// Whether an index step is due: [`INDEX_BATCH`] events wait, or the oldest has waited
    /// [`INDEX_LAG`].
    pub fn index_due(&self) -> bool {
        self.index_wait() == Some(Duration::ZERO)
    }

    /// How long until an index step is due; `None` when nothing waits.
    pub(crate) fn index_wait(&self) -> Option<Duration> {
        if self.search_lag() == 0 {
            return None;
        }
        let now = Instant::now();
        let retry = self.index_after.map(|t| t.saturating_duration_since(now));
        if retry.is_some_and(|d| !d.is_zero()) {
            return retry;
        }
        if self.search_lag() >= INDEX_BATCH as u64 {
            return Some(Duration::ZERO);
        }
        let since = self.unindexed_since.unwrap_or(now);
        Some(INDEX_LAG.saturating_sub(now.saturating_duration_since(since)))
    }

    /// Every event stored is indexed now.
    pub(super) fn search_caught_up(&mut self) {
        self.held.caught_up();
        self.indexed = self.next_id - 1;
        self.unindexed_since = None;
        self.index_after = None;
    }

    /// Indexes for search every chat line stored and not indexed yet, in one transaction.
    /// Returns the events looked at. On failure nothing changes, and no index step is due for
    /// [`INDEX_LAG`] (searches still try).
    pub fn catch_up_search(&mut self) -> Result<u64, WriteError> {
        let behind = self.search_lag();
        if behind == 0 {
            return Ok(0);
        }
        let upto = self.next_id - 1;
        let indexed = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            index_range(&tx, &mut self.held, self.indexed, upto)?;
            tx.commit()
        })();
        match indexed {
            Ok(()) => {
                self.search_caught_up();
                Ok(behind)
            }
            Err(e) => {
                // What was held went into the failed statement: read back next time.
                self.held.forget();
                self.index_after = Some(Instant::now() + INDEX_LAG);
                Err(WriteError::from_sqlite(e))
            }
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
        let applied = self.apply_group(group);
        let applied = match applied {
            Ok(ids) => {
                self.unfolded_ids = match ids {
                    IdRows::Added(n) => self.unfolded_ids + n,
                    IdRows::FoldedThenAdded(n) => n,
                };
                Ok(())
            }
            Err(e) => Err(e),
        };
        if applied.is_err() {
            // Rooms created by the failed transaction do not exist: forget every id learnt.
            self.rooms.clear();
            // Lines held may have gone into its index step (search not deferred).
            self.held.forget();
            self.next_id = next_id;
        } else if !self.defer_search {
            self.indexed = self.next_id - 1;
        } else if self.next_id > next_id && self.unindexed_since.is_none() {
            self.unindexed_since = Some(Instant::now());
        }
        applied
    }

    fn apply_group(&mut self, group: &[Batch]) -> Result<IdRows, WriteError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(WriteError::from_sqlite)?;
        let mut meta = RoomMeta::default();
        // Consecutive room events are inserted together, a few rows per statement.
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
                apply(&tx, &mut self.rooms, &mut self.next_id, &mut meta, write)?;
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
        if !self.defer_search && self.next_id - 1 > self.indexed {
            // Last: FTS5 writes its pending words out as a new index segment whenever a
            // statement opens a savepoint while it is in the transaction, so interleaved with
            // the events it would write a segment per statement; last, one per transaction.
            self.held.extend(lines);
            index_range(&tx, &mut self.held, self.indexed, self.next_id - 1)
                .map_err(WriteError::from_sqlite)?;
            tx.commit().map_err(WriteError::from_sqlite)?;
        } else {
            tx.commit().map_err(WriteError::from_sqlite)?;
            self.held.extend(lines);
        }
        Ok(rows)
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
fn apply(
    tx: &Connection,
    rooms: &mut HashMap<RoomName, i64>,
    next_id: &mut i64,
    meta: &mut RoomMeta,
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
        other => {
            if !super::accounts::apply(tx, other)? && !super::policies::apply(tx, other)? {
                // A kind of write this version of the store does not know (a newer hub):
                // refused, so the batch fails loudly instead of losing it.
                return Err(WriteError::Storage(format!("unknown write {write:?}")));
            }
        }
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

/// Rows per multi-row `INSERT`, largest first: a statement's fixed cost (binding aside) is paid
/// once per chunk instead of once per event. What is left below the smallest goes one by one.
const CHUNKS: [usize; 2] = [32, 8];

/// `INSERT INTO {table} ({cols}) VALUES (?, …), …` for `rows` rows of `width` columns.
fn multi_insert(table_cols: &str, width: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    format!(
        "INSERT INTO {table_cols} VALUES {}",
        vec![row; rows].join(", ")
    )
}

/// The multi-row `events` inserts, made once.
fn multi_sql() -> &'static [String; CHUNKS.len()] {
    static SQL: std::sync::OnceLock<[String; CHUNKS.len()]> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        CHUNKS.map(|n| multi_insert("events (room, seq, id, at, nick, kind, msg_id, text)", 8, n))
    })
}

/// What inserting events updates: room ids, the next event id, the rooms' metadata.
type EventCtx<'c> = (
    &'c mut HashMap<RoomName, i64>,
    &'c mut i64,
    &'c mut RoomMeta,
);

/// An event as its `events` row.
struct EventRow<'a> {
    ev: &'a RoomEvent,
    room: i64,
    id: i64,
    seq: i64,
    at: i64,
    kind: i64,
    msg_id: Option<i64>,
    text: Option<std::borrow::Cow<'a, str>>,
}

/// Inserts `events` (in this order, with the next ids); indexing them for search is the
/// caller's.
fn insert_events(
    tx: &Connection,
    (rooms, next_id, meta): EventCtx<'_>,
    events: &[&RoomEvent],
) -> Result<(), WriteError> {
    let mut rows = Vec::with_capacity(events.len());
    for ev in events {
        let room = room_id(tx, rooms, &ev.room)?;
        let (kind, msg_id, text) = codec::columns(&ev.kind);
        if let (codec::kind::SAY | codec::kind::ACT, Some(text)) = (kind, &text) {
            meta.lines.push(HeldLine {
                id: *next_id,
                room,
                text: text.to_string(),
            });
        }
        rows.push(EventRow {
            ev,
            room,
            id: *next_id,
            seq: int("seq", ev.seq.0)?,
            at: int("time", ev.at.0)?,
            kind,
            msg_id: msg_id.map(|id| int("message id", id.0)).transpose()?,
            text,
        });
        *next_id += 1;
        meta.saw(room, ev);
    }
    let sql = multi_sql();
    let mut rest = &rows[..];
    while !rest.is_empty() {
        let Some(at) = CHUNKS.iter().position(|&n| n <= rest.len()) else {
            for row in rest {
                insert_event(tx, row)?;
            }
            break;
        };
        let (chunk, tail) = rest.split_at(CHUNKS[at]);
        insert_chunk(tx, &sql[at], chunk)?;
        rest = tail;
    }
    Ok(())
}

/// One multi-row insert of `chunk`; a duplicate is found and named by inserting the chunk
/// again one row at a time (the failed statement changed nothing).
fn insert_chunk(
    tx: &Connection,
    events_sql: &str,
    chunk: &[EventRow<'_>],
) -> Result<(), WriteError> {
    let inserted = tx.prepare_cached(events_sql).and_then(|mut st| {
        for (i, r) in chunk.iter().enumerate() {
            let b = i * 8;
            st.raw_bind_parameter(b + 1, r.room)?;
            st.raw_bind_parameter(b + 2, r.seq)?;
            st.raw_bind_parameter(b + 3, r.id)?;
            st.raw_bind_parameter(b + 4, r.at)?;
            st.raw_bind_parameter(b + 5, r.ev.from.as_str())?;
            st.raw_bind_parameter(b + 6, r.kind)?;
            st.raw_bind_parameter(b + 7, r.msg_id)?;
            st.raw_bind_parameter(b + 8, r.text.as_deref())?;
        }
        st.raw_execute()
    });
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
            for r in chunk {
                insert_event(tx, r)?;
            }
            Ok(())
        }
        Err(e) => Err(WriteError::from_sqlite(e)),
    }
}

/// Indexes for search the chat lines with an event id in `after < id <= upto` (every line
/// stored and not indexed), and says so in `search_state`, inside the open transaction `tx`:
/// from the lines `held` if it holds all of them, else read back from `events`. One
/// statement, so FTS5 writes one index segment for all of them (it writes its pending words
/// out whenever a statement opens a savepoint; `search_state` is updated first for that
/// reason). On failure the held lines may be gone: the caller forgets them
/// ([`Held::forget`]), and the next step reads back.
pub(super) fn index_range(
    tx: &Connection,
    held: &mut Held,
    after: i64,
    upto: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE search_state SET indexed = ?1")?
        .execute([upto])?;
    match held.index(tx) {
        Some(done) => done,
        None => tx
            .prepare_cached(INDEX_RANGE_SQL)?
            .execute(params![after, upto])
            .map(|_| ()),
    }
}

/// One event's row alone (its search row is the caller's).
fn insert_event(tx: &Connection, r: &EventRow<'_>) -> Result<(), WriteError> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO events (room, seq, id, at, nick, kind, msg_id, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut st| {
            st.execute(params![
                r.room,
                r.seq,
                r.id,
                r.at,
                r.ev.from.as_str(),
                r.kind,
                r.msg_id,
                r.text
            ])
        });
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
            Err(WriteError::Duplicate {
                room: r.ev.room.clone(),
                seq: r.ev.seq,
            })
        }
        Err(e) => Err(WriteError::from_sqlite(e)),
    }
}

fn upsert_session(tx: &Connection, s: &SessionRecord) -> Result<(), WriteError> {
    let rooms = s
        .rooms
        .iter()
        .map(RoomName::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    let (last_id, updated) = (int("message id", s.last_id.0)?, int("time", s.updated.0)?);
    tx.prepare_cached(
        "INSERT OR REPLACE INTO sessions (token, token_id, nick, rooms, last_id, updated) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut st| {
        st.execute(params![
            &s.token.0[..],
            // All 64 bits, kept as SQLite's signed integer.
            i64::from_ne_bytes(s.token_id.to_ne_bytes()),
            s.nick.as_str(),
            rooms,
            last_id,
            updated
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

/// An exclusive lock on a file in the data directory, so a second process opening the same
/// store is refused rather than interleaving its writes (SQLite alone would let it).
pub(super) struct DirLock {
    #[cfg(unix)]
    _held: nix::fcntl::Flock<File>,
}

impl DirLock {
    pub(super) fn take(path: &Path) -> Result<DirLock, OpenError> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| OpenError::DataDir {
                path: path.to_path_buf(),
                source,
            })?;
        #[cfg(unix)]
        {
            use nix::fcntl::{Flock, FlockArg};
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(held) => Ok(DirLock { _held: held }),
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(OpenError::Locked {
                    path: path.to_path_buf(),
                }),
                Err((_, errno)) => Err(OpenError::DataDir {
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
