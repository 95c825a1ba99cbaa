//! The search index: a derived cache of the chat lines in `events`, in a file of its own
//! (`search.db` beside `natter.db`), written by its own connection, behind the commits.
//!
//! - **Off the commit's path.** A commit writes only the events; the indexer is handed the chat
//!   lines it stored ([`Indexer::stored`]) and indexes them in steps of thousands (one FTS5
//!   segment per step), in transactions of the index file, which never wait for the events'
//!   commits nor they for it. [`crate::SqliteHandle`] runs it on a thread of its own.
//! - **Not durable, never wrong.** The index file runs with `synchronous = OFF`: it can be
//!   rebuilt from `events`, so it need not share their durability. Its `search_state` row says
//!   up to which event id it holds every line (`indexed`), which store it belongs to (the
//!   `store_identity` of `natter.db`), and whether it was closed cleanly and on which boot. At
//!   open it is thrown away and rebuilt (in steps, in the background) when it may be torn or
//!   wrong: not closed cleanly on an earlier boot of the machine (a power cut or an OS crash;
//!   a crash of the process alone leaves its write-ahead log consistent), of another store,
//!   ahead of the events stored (a backup restored, every event pruned), damaged or of
//!   another version. Otherwise it catches up on what was stored past `indexed`.
//! - **Few merges while busy, the rest when quiet.** FTS5 merges a level's segments once
//!   [`AUTOMERGE`] (8) are there, not its default 4, so a line is rewritten less
//!   often while lines keep coming fast; once no step was full ([`INDEX_BATCH`] lines) for
//!   [`MERGE_QUIET`], the thread folds what that left into few segments whenever it would
//!   otherwise wait, [`IDLE_MERGE_PAGES`] at a time ([`Indexer::merge_idle`]), so searches on a
//!   server that is quiet, or busy at a human pace, look into few.
//! - **Retention** reads the text of the lines it removes and hands them over
//!   ([`Indexer::removed`]): a contentless FTS5 index needs a line's text back to remove it.
//!   Lines removed before they were indexed are never indexed. A line the index still holds
//!   after its event is gone (the process died in between) is never a result: searches look
//!   only at the ids of stored events, and read every result back from `events`.

use super::held::{HELD_MAX, Held, HeldLine};
use crate::OpenError;
use rusqlite::{Connection, OpenFlags, params};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// The index file inside the data directory.
pub const SEARCH_FILE: &str = "search.db";

/// `PRAGMA application_id` of an index file: "NTS1" in ASCII.
const APPLICATION_ID: i32 = 0x4e54_5331;

/// The index file's schema version: another one is rebuilt, not migrated. 3: the text indexed
/// is [`natter_core::search::searchable`]'s, where each character of a script written without
/// spaces (Chinese, Japanese, Korean, Thai...) and each emoji is a word of its own. 4: a typed
/// private-use character that could be taken for an emoji's stand-in is escaped. Versions 1
/// and 2 took such a run for one word and dropped emoji, and 3 found a line with such a typed
/// character for the emoji, so they are rebuilt at the first start (in steps, in the
/// background: until it catches up, a search misses the older lines).
const VERSION: i32 = 4;

/// FTS5's `automerge`: a level's segments are merged once this many are there, while indexing
/// (FTS5's default is 4). Each merge rewrites every line it holds, so with 8 a line is
/// rewritten a third less often (log8 instead of log4 of the segments): 1.01 µs of CPU a line
/// against 1.11 at 4 and 0.93 at 16 (bench/README.md, "tenth pass"; in the server, the index
/// thread took 77–82 ticks at 8 against 66–72 at 16 for the same 800,000 lines). The price, more segments for a search to look into, is paid back when the thread
/// has nothing to index (see [`IDLE_MERGE_PAGES`]); until then, right after a flood of 10
/// million lines, a search's p99 on a cold file was 31 ms at 8 and 38–42 ms at 16 (against a
/// 50 ms target), hence 8.
const AUTOMERGE: i64 = 8;

/// Pages of merge work per transaction when the thread has nothing to index: FTS5's `merge`
/// (with its default `usermerge` of 4) folds the segments [`AUTOMERGE`] left behind into few
/// large ones, a few milliseconds at a time, so a search or new lines wait for one such step
/// at most.
const IDLE_MERGE_PAGES: i64 = 256;

/// How long no step must have been full ([`INDEX_BATCH`] lines or more) before the thread
/// merges while it waits: a thread that caught up between two commits of a server flooded with
/// lines is not idle (on one core it catches up whenever the writer waits for its turn), and
/// merging there would spend what [`AUTOMERGE`] saves. A server whose lines come slower than a
/// full step per [`INDEX_LAG`] (a few thousand a second) merges between its steps, so its index
/// does not keep [`AUTOMERGE`] segments a level for ever.
const MERGE_QUIET: Duration = Duration::from_secs(1);

/// Events stored and not yet indexed past which a step is due: one index segment for this many
/// chat lines instead of one per commit.
pub const INDEX_BATCH: i64 = 4096;

/// How long a stored chat line waits at most to be indexed when fewer than [`INDEX_BATCH`]
/// events wait (and nobody searches meanwhile).
pub const INDEX_LAG: Duration = Duration::from_secs(1);

/// Event ids one step reads back from `events` at most (lines not handed over: a rebuild, a
/// catch-up after a crash), so a long catch-up goes in steps a search can wait for.
pub const READ_BACK_STEP: i64 = 1 << 16;

const SCHEMA_SQL: &str = "
CREATE VIRTUAL TABLE events_fts USING fts5 (
    text,
    room,
    content = '',
    columnsize = 0,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE search_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    indexed INTEGER NOT NULL,
    store   BLOB NOT NULL,
    clean   INTEGER NOT NULL,
    boot    TEXT NOT NULL
);";

/// The index's tables in the attached database `schema` (a reader's stand-in when no index
/// file was made yet).
pub(super) fn empty_schema_sql(schema: &str) -> String {
    SCHEMA_SQL
        .replace(
            "CREATE VIRTUAL TABLE events_fts",
            &format!("CREATE VIRTUAL TABLE {schema}.events_fts"),
        )
        .replace(
            "CREATE TABLE search_state",
            &format!("CREATE TABLE {schema}.search_state"),
        )
}

/// How a step's transaction begins: deferred, so it takes the write lock of the index file
/// only (`IMMEDIATE` would take `natter.db`'s too, attached here, and hold commits up).
pub(super) const STEP_BEGIN: rusqlite::TransactionBehavior =
    rusqlite::TransactionBehavior::Deferred;

/// Indexes the chat lines with an event id in `?1 < id <= ?2`, read back from `events`.
/// The rows holding them start after `?1 - ROW_EVENTS`; their events are picked out of them.
pub(super) const INDEX_RANGE_SQL: &str = "INSERT INTO events_fts (rowid, text, room)
    SELECT e.id + j.key, natter_searchable(j.value ->> 4), e.room FROM store.events e, json_each(e.frames) j
    WHERE e.id > ?1 - 256 AND e.id <= ?2 AND e.id + j.key > ?1 AND e.id + j.key <= ?2
      AND j.value ->> 2 IN (0, 1)";

/// How far the index is, for those waiting for it (searches): shared with the thread running
/// the indexer.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Every line with an event id up to this is indexed.
    indexed: Mutex<i64>,
    changed: Condvar,
    /// The newest event id durable in `events` (the writer's last commit).
    pub(crate) stored: AtomicI64,
    /// Chat lines handed to the index thread and not taken off its queue yet: the writer hands
    /// over no more than [`HELD_MAX`] (a thread far behind reads the others back from `events`),
    /// so a starved index thread never makes the queue grow without bound.
    pub(crate) queued: AtomicUsize,
    /// Bytes of the index file in use (its pages less the free ones), as of the index's last
    /// transaction: what retention counts of it. The file does not shrink, and merges and
    /// removed lines leave free pages in it that later steps reuse; counting its length would
    /// have retention remove events for space the index holds free, again at every check.
    pub(crate) used_bytes: AtomicU64,
    /// The queue itself: what commits and prune steps hand over, in order. The writer adds to
    /// it without waking the thread, and wakes it ([`IndexCmd::Wake`] on its channel) only when
    /// it sleeps with nothing to do or a step is due: a wake-up per commit cost the server about
    /// 3 % of its CPU at C=50, where a commit holds ~100 lines (bench/README.md, "eighth
    /// session").
    inbox: Mutex<Inbox>,
}

/// See [`Progress::post`].
#[derive(Debug, Default)]
struct Inbox {
    cmds: Vec<IndexCmd>,
    /// The thread sleeps with nothing to do: the next post wakes it.
    idle: bool,
    /// The thread was woken for a step due and has not taken the queue since.
    rung: bool,
}

impl Progress {
    fn set(&self, indexed: i64) {
        *self.indexed.lock().unwrap_or_else(PoisonError::into_inner) = indexed;
        self.changed.notify_all();
    }

    /// Whether `n` more lines may be queued for the index thread ([`HELD_MAX`] at most in all);
    /// if so, they are counted as queued.
    pub(crate) fn hand_over(&self, n: usize) -> bool {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q + n <= HELD_MAX).then_some(q + n)
            })
            .is_ok()
    }

    /// Hands a commit's or a prune step's lines ([`IndexCmd::Stored`], [`IndexCmd::Removed`])
    /// to the index thread. True when the thread must be woken: it sleeps with nothing to do,
    /// or `due` (a step is due) and it was not woken for that yet.
    pub(crate) fn post(&self, cmd: IndexCmd, due: bool) -> bool {
        let mut ib = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
        ib.cmds.push(cmd);
        let wake = ib.idle || (due && !ib.rung);
        if wake {
            ib.idle = false;
            ib.rung = true;
        }
        wake
    }

    /// Everything posted so far, in order.
    pub(crate) fn take_posted(&self) -> Vec<IndexCmd> {
        let mut ib = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
        ib.idle = false;
        ib.rung = false;
        std::mem::take(&mut ib.cmds)
    }

    /// The thread is about to sleep with nothing to do: whether it may (nothing was posted
    /// meanwhile). If so, the next post wakes it.
    fn sleep_idle(&self) -> bool {
        let mut ib = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
        ib.idle = ib.cmds.is_empty();
        ib.idle
    }

    /// The event id up to which every line is indexed.
    pub(crate) fn indexed(&self) -> i64 {
        *self.indexed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until every line up to event id `upto` is indexed, at most `wait`. Whether it is.
    pub(crate) fn wait_for(&self, upto: i64, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut indexed = self.indexed.lock().unwrap_or_else(PoisonError::into_inner);
        while *indexed < upto {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            indexed = self
                .changed
                .wait_timeout(indexed, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// The search index's writer: its own connection to the index file, with `natter.db` attached
/// as `store` (read only, to read lines back).
pub(crate) struct Indexer {
    conn: Connection,
    /// Every chat line with an event id up to this is indexed.
    indexed: i64,
    /// The newest event id stored, as far as this indexer was told.
    stored: i64,
    /// The lines stored past `indexed`, if all of them were handed over.
    held: Held,
    /// Lines removed from `events` that the index holds: removed from it at the next step.
    unindex: Vec<HeldLine>,
    /// When the oldest event not yet indexed was handed over.
    unindexed_since: Option<Instant>,
    /// No step before this (one failed).
    retry_after: Option<Instant>,
    pub(crate) progress: std::sync::Arc<Progress>,
    /// Whether the last step failed: a streak of failures is logged once.
    pub(crate) failing: crate::failing::Failing,
    /// Segments may be left to merge: lines were indexed or removed since the last merge step
    /// that found nothing to do (see [`Indexer::merge_idle`]).
    merge_due: bool,
    /// When a step last indexed [`INDEX_BATCH`] lines or more: lines come faster than one
    /// step's worth per [`INDEX_LAG`], and merging now would spend what [`AUTOMERGE`] saves.
    last_busy: Option<Instant>,
}

/// The identity of this boot of the machine (Linux); empty where unknown, which counts as
/// another boot.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Whether `e` says the index file cannot be written now (the disk, the rights), rather than
/// that it is not an index this build can use.
fn cannot_write(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode;
    matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
                | ErrorCode::PermissionDenied
        )
    )
}

/// What `search_state` says.
struct State {
    indexed: i64,
    store: Vec<u8>,
    clean: bool,
    boot: String,
}

impl Indexer {
    /// Opens (creating, or rebuilding when it may be torn or wrong: see the module's docs) the
    /// index file `path` of the store `db` (open, migrated), whose identity is `store_id` and
    /// newest event id `stored`. Never indexes here: the caller steps.
    pub(crate) fn open(
        path: &Path,
        db: &Path,
        store_id: &[u8],
        stored: i64,
    ) -> Result<Indexer, OpenError> {
        let boot = boot_id();
        let state = match Indexer::connect(path, db)
            .and_then(|conn| Ok(read_state(&conn)?.map(|s| (conn, s))))
        {
            Ok(state) => state,
            // A file this process cannot write to now (a full disk, no rights) is not a reason
            // to rebuild it: removing it would free the very room whose lack is the error, and
            // the rebuild, failing as well, would be said as a plain "disk I/O error".
            Err(e) if cannot_write(&e) => return Err(super::schema::open_error(path, e)),
            Err(_) => None,
        };
        let reason = match &state {
            None => Some("no index file, or not one this build can use"),
            Some((_, s)) if s.store != store_id => Some("the index is of another store"),
            Some((_, s)) if s.indexed > stored => {
                Some("the index is ahead of the events stored (a backup restored?)")
            }
            Some((_, s)) if !s.clean && (s.boot.is_empty() || s.boot != boot) => {
                Some("the index was not closed cleanly before the machine restarted")
            }
            Some(_) => None,
        };
        let (conn, indexed) = match (state, reason) {
            (Some((conn, s)), None) => (conn, s.indexed),
            (state, Some(reason)) => {
                drop(state);
                if stored > 0 {
                    info!(path = %path.display(), reason, "search index: rebuilding it from the events, in the background");
                }
                (Indexer::create(path, db, store_id)?, 0)
            }
            (None, None) => unreachable!("no state is a reason"),
        };
        let fail = |e: rusqlite::Error| super::schema::open_error(path, e);
        conn.execute(
            "UPDATE search_state SET clean = 0, boot = ?1",
            params![boot],
        )
        .map_err(fail)?;
        let held = Held::install(&conn, indexed >= stored).map_err(fail)?;
        let progress = std::sync::Arc::new(Progress::default());
        progress.set(indexed);
        progress.stored.store(stored, Ordering::Release);
        let ix = Indexer {
            conn,
            indexed,
            stored,
            held,
            unindex: Vec::new(),
            unindexed_since: (stored > indexed).then(Instant::now),
            retry_after: None,
            progress,
            failing: crate::failing::Failing::default(),
            merge_due: true,
            last_busy: None,
        };
        ix.note_used();
        Ok(ix)
    }

    /// Tells [`Progress::used_bytes`] how much of the index file is in use now (kept as it
    /// was if the file cannot say).
    /// Keeps the index's write-ahead log near `bytes` (see [`crate::Retention::wal_limit`]):
    /// checkpointed once it holds that much (SQLite's 1000 pages at most, its default), and
    /// cut back to it at the next write. Nothing else checkpoints the index: without this a
    /// store limited to a few MiB kept a log of up to 1000 pages (4 MiB) beside its index.
    pub(crate) fn limit_log(&self, bytes: u64) -> rusqlite::Result<()> {
        let page: i64 = self
            .conn
            .query_row("PRAGMA main.page_size", [], |r| r.get(0))?;
        let pages = (bytes / u64::try_from(page.max(512)).unwrap_or(4096)).clamp(16, 1000);
        self.conn.execute_batch(&format!(
            "PRAGMA main.journal_size_limit = {bytes};
             PRAGMA main.wal_autocheckpoint = {pages};"
        ))
    }

    fn note_used(&self) {
        if let Ok(bytes) = super::retention::used_bytes(&self.conn) {
            self.progress.used_bytes.store(bytes, Ordering::Release);
        }
    }

    fn connect(path: &Path, db: &Path) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        super::schema::sqlite_memory();
        // Readable by the server's user only, as the store (its words are the rooms' lines).
        super::schema::private_file(path);
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let db = db
            .to_str()
            .ok_or_else(|| rusqlite::Error::InvalidPath(db.to_path_buf()))?;
        conn.execute("ATTACH DATABASE ?1 AS store", [db])?;
        // A derived cache: a crash of the process keeps the write-ahead log consistent; a cut
        // of the machine's power may tear the file, which the next open detects and rebuilds.
        let mode: String = conn.query_row("PRAGMA main.journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(rusqlite::Error::InvalidQuery);
        }
        conn.execute_batch(
            "PRAGMA main.synchronous = OFF;
             PRAGMA main.cache_size = -16384;
             PRAGMA main.journal_size_limit = 67108864;",
        )?;
        Ok(conn)
    }

    /// Removes whatever is at `path` and makes a new, empty index.
    fn create(path: &Path, db: &Path, store_id: &[u8]) -> Result<Connection, OpenError> {
        for p in [path.to_path_buf(), wal(path, "-wal"), wal(path, "-shm")] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(OpenError::File { path: p, source }),
            }
        }
        // As any write refused at open, a full disk said as the disk's (see `open_error`).
        let fail = |e: rusqlite::Error| match super::schema::open_error(path, e) {
            OpenError::Sqlite { path, detail } => OpenError::Unwritable { path, detail },
            other => other,
        };
        let conn = Indexer::connect(path, db).map_err(fail)?;
        conn.execute_batch(&format!(
            "BEGIN; {SCHEMA_SQL}
             INSERT INTO events_fts (events_fts, rank) VALUES ('automerge', {AUTOMERGE});
             PRAGMA main.application_id = {APPLICATION_ID};
             PRAGMA main.user_version = {VERSION};"
        ))
        .and_then(|()| {
            conn.execute(
                "INSERT INTO search_state (id, indexed, store, clean, boot) VALUES (1, 0, ?1, 0, '')",
                [store_id],
            )
        })
        .and_then(|_| conn.execute_batch("COMMIT"))
        .map_err(fail)?;
        Ok(conn)
    }

    /// Events stored and not yet indexed.
    pub(crate) fn lag(&self) -> u64 {
        u64::try_from(self.stored - self.indexed).unwrap_or(0)
    }

    /// Every line with an event id up to this is indexed.
    pub(crate) fn indexed(&self) -> i64 {
        self.indexed
    }

    /// A commit stored the events `from..=upto` (ids), of which `lines` are the chat lines
    /// (`None`: not handed over, read back from `events` at the next step).
    pub(crate) fn stored(&mut self, from: i64, upto: i64, lines: Option<Vec<HeldLine>>) {
        if upto < from {
            return;
        }
        if from != self.stored + 1 {
            // Not every line since the last step was handed over (cannot happen with one
            // writer handing over each commit; read back to be sure).
            self.held.forget();
        }
        self.held.extend(lines);
        self.stored = self.stored.max(upto);
        self.progress.stored.fetch_max(upto, Ordering::AcqRel);
        if self.unindexed_since.is_none() {
            self.unindexed_since = Some(Instant::now());
        }
    }

    /// Takes what was posted to the thread (see [`Progress::post`]).
    fn take_posted(&mut self) {
        for cmd in self.progress.take_posted() {
            self.apply(cmd);
        }
    }

    /// Takes lines handed over ([`IndexCmd::Stored`], [`IndexCmd::Removed`]; the rest are the
    /// thread's to act on).
    fn apply(&mut self, cmd: IndexCmd) {
        match cmd {
            IndexCmd::Stored { from, upto, lines } => {
                if let Some(lines) = &lines {
                    self.progress
                        .queued
                        .fetch_sub(lines.len(), Ordering::AcqRel);
                }
                self.stored(from, upto, lines);
            }
            IndexCmd::Removed { upto, lines } => self.removed(upto, lines),
            IndexCmd::Hurry | IndexCmd::Wake | IndexCmd::Close(_) => {}
        }
    }

    /// Retention removed the events up to id `upto`, of which `lines` are the chat lines.
    pub(crate) fn removed(&mut self, upto: i64, lines: Vec<HeldLine>) {
        self.held.drop_upto(upto);
        let indexed = self.indexed;
        self.unindex
            .extend(lines.into_iter().filter(|l| l.id <= indexed));
        if upto > self.indexed {
            // Lines not indexed yet are gone from `events`: what a read-back finds is right,
            // and so is what is held (without them).
            if self.unindexed_since.is_none() {
                self.unindexed_since = Some(Instant::now());
            }
        }
    }

    /// How long until a step is due; `None` when nothing waits.
    pub(crate) fn wait(&self) -> Option<Duration> {
        if self.lag() == 0 && self.unindex.is_empty() {
            return None;
        }
        let now = Instant::now();
        if let Some(t) = self.retry_after {
            let d = t.saturating_duration_since(now);
            if !d.is_zero() {
                return Some(d);
            }
        }
        if self.lag() >= INDEX_BATCH as u64 || !self.held.is_complete() {
            return Some(Duration::ZERO);
        }
        let since = self.unindexed_since.unwrap_or(now);
        Some(INDEX_LAG.saturating_sub(now.saturating_duration_since(since)))
    }

    /// Whether a step is due now.
    pub(crate) fn due(&self) -> bool {
        self.wait() == Some(Duration::ZERO)
    }

    /// Indexes what waits, in one transaction of the index file: every line handed over, or
    /// (when some were not) up to [`READ_BACK_STEP`] events read back from `events`; removes
    /// the lines retention removed. Returns the events looked at. On failure nothing changes,
    /// and no step is due for [`INDEX_LAG`] (searches still try).
    pub(crate) fn step(&mut self) -> rusqlite::Result<u64> {
        if self.lag() == 0 && self.unindex.is_empty() {
            return Ok(0);
        }
        let complete = self.held.is_complete();
        let upto = if complete {
            self.stored
        } else {
            self.stored.min(self.indexed.saturating_add(READ_BACK_STEP))
        };
        let after = self.indexed;
        let unindex = std::mem::take(&mut self.unindex);
        let kept = unindex.clone();
        let done = (|| {
            // Deferred, not immediate: `BEGIN IMMEDIATE` would take the write lock of every
            // attached database, `natter.db` too, and hold the writer's commits up for the
            // step. Deferred, the step writes the index file only and reads `events`.
            let tx = self.conn.transaction_with_behavior(STEP_BEGIN)?;
            // First: FTS5 writes its pending words out whenever a statement opens a savepoint,
            // so the lines go in last, in one statement (one segment for all of them).
            tx.prepare_cached("UPDATE search_state SET indexed = ?1")?
                .execute([upto])?;
            self.held.unindex(&tx, unindex)?;
            if upto > after {
                match self.held.index(&tx) {
                    Some(done) => done?,
                    None => {
                        tx.prepare_cached(INDEX_RANGE_SQL)?
                            .execute(params![after, upto])?;
                    }
                }
            }
            tx.commit()
        })();
        match done {
            Ok(()) => {
                self.indexed = upto;
                if upto == self.stored {
                    self.held.caught_up();
                    self.unindexed_since = None;
                }
                self.retry_after = None;
                self.merge_due = true;
                if upto - after >= INDEX_BATCH {
                    self.last_busy = Some(Instant::now());
                }
                self.progress.set(upto);
                self.note_used();
                Ok(u64::try_from(upto - after).unwrap_or(0))
            }
            Err(e) => {
                // What was held went into the failed statement: read back next time. The
                // lines to remove are kept for the next step.
                self.held.forget();
                self.unindex = kept;
                self.retry_after = Some(Instant::now() + INDEX_LAG);
                Err(e)
            }
        }
    }

    /// How long until a merge step is due ([`Indexer::merge_idle`]): [`MERGE_QUIET`] after
    /// the last full step, when segments may be left to merge; `None` when none may be.
    pub(crate) fn merge_wait(&self) -> Option<Duration> {
        self.merge_due.then(|| {
            MERGE_QUIET.saturating_sub(self.last_busy.map_or(MERGE_QUIET, |t| t.elapsed()))
        })
    }

    /// One step of merge work ([`IDLE_MERGE_PAGES`] pages) in a transaction of the index file,
    /// for a thread with nothing to index: the segments that indexing under load left behind
    /// ([`AUTOMERGE`] per level) become few, so searches look into few. Once a step finds
    /// nothing to merge (FTS5 changes fewer than 2 rows), none is due until lines are indexed
    /// again; a step that fails ends the merging too (the next one after more indexing tries
    /// again). Whether more merge work may be left.
    pub(crate) fn merge_idle(&mut self) -> rusqlite::Result<bool> {
        let merged = (|| {
            let tx = self.conn.transaction_with_behavior(STEP_BEGIN)?;
            let before = tx.total_changes();
            tx.prepare_cached("INSERT INTO events_fts (events_fts, rank) VALUES ('merge', ?1)")?
                .execute([IDLE_MERGE_PAGES])?;
            let changed = tx.total_changes() - before;
            tx.commit()?;
            Ok(changed >= 2)
        })();
        self.merge_due = matches!(merged, Ok(true));
        self.note_used();
        merged
    }

    /// Steps until every line stored is indexed (or a step fails).
    pub(crate) fn catch_up(&mut self) -> rusqlite::Result<u64> {
        let mut looked = 0;
        while self.lag() > 0 || !self.unindex.is_empty() {
            looked += self.step()?;
        }
        Ok(looked)
    }

    /// Catches up and marks the file as closed cleanly, written through to the disk.
    pub(crate) fn close(mut self) {
        if let Err(e) = self.catch_up() {
            warn!(error = %e, "search index: indexing before closing failed; the next start catches up");
        }
        let closed = self.conn.execute_batch(
            "PRAGMA main.synchronous = FULL;
             UPDATE search_state SET clean = 1;
             PRAGMA main.wal_checkpoint(TRUNCATE);",
        );
        if let Err(e) = closed {
            warn!(error = %e, "search index: closing it cleanly failed; the next start may rebuild it");
        }
    }

    /// Whether every line stored past the index is held (tests).
    #[cfg(test)]
    pub(crate) fn held_complete(&self) -> bool {
        self.held.is_complete()
    }

    /// Runs SQL on the index's connection (tests).
    #[cfg(test)]
    pub(crate) fn sql(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.execute_batch(sql)
    }
}

fn read_state(conn: &Connection) -> rusqlite::Result<Option<State>> {
    let app: i32 = conn.pragma_query_value(Some("main"), "application_id", |r| r.get(0))?;
    let version: i32 = conn.pragma_query_value(Some("main"), "user_version", |r| r.get(0))?;
    if app != APPLICATION_ID || version != VERSION {
        return Ok(None);
    }
    conn.query_row(
        "SELECT indexed, store, clean, boot FROM main.search_state",
        [],
        |r| {
            Ok(State {
                indexed: r.get(0)?,
                store: r.get(1)?,
                clean: r.get::<_, i64>(2)? != 0,
                boot: r.get(3)?,
            })
        },
    )
    .map(Some)
}

/// `path` with `suffix` appended to its file name (SQLite's `-wal` and `-shm` files).
fn wal(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// What the thread running an [`Indexer`] is told (see [`run`]): [`IndexCmd::Stored`] and
/// [`IndexCmd::Removed`] through [`Progress::post`], the others on its channel.
#[derive(Debug)]
pub(crate) enum IndexCmd {
    /// A commit stored the events `from..=upto`, of which `lines` are the chat lines (`None`:
    /// not handed over, the thread being too far behind; read back from `events`).
    Stored {
        from: i64,
        upto: i64,
        lines: Option<Vec<HeldLine>>,
    },
    /// Retention removed the events up to `upto`, of which `lines` are the chat lines.
    Removed { upto: i64, lines: Vec<HeldLine> },
    /// A search waits: index what is stored now.
    Hurry,
    /// Lines were posted (see [`Progress::post`]).
    Wake,
    /// Catch up, close cleanly, then say so.
    Close(std::sync::mpsc::Sender<()>),
}

/// The index thread: takes everything handed over, steps when a step is due or a search waits,
/// and closes cleanly when told to (or when every sender is gone).
pub(crate) fn run(mut ix: Indexer, rx: &std::sync::mpsc::Receiver<IndexCmd>) {
    use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
    let mut closed = None;
    'run: loop {
        ix.take_posted();
        let wait = ix.wait();
        let first = if wait == Some(Duration::ZERO) {
            match rx.try_recv() {
                Ok(cmd) => Some(cmd),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => break,
            }
        } else if wait.is_none() && !ix.progress.sleep_idle() {
            // Lines were posted since they were taken: take them first.
            continue;
        } else if ix.merge_wait() == Some(Duration::ZERO) {
            // No step due (with nothing to index, the next post wakes the thread), and no full
            // step for [`MERGE_QUIET`]: merge what indexing left, a step at a time, with what
            // comes meanwhile taken between steps.
            match rx.try_recv() {
                Ok(cmd) => Some(cmd),
                Err(TryRecvError::Empty) => {
                    if let Err(e) = ix.merge_idle() {
                        debug!(error = %e, "search index: merging segments failed; tried again after the next step");
                    }
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
            }
        } else {
            // Sleep until a step or a merge is due, or something comes.
            let sleep = [wait, ix.merge_wait()].into_iter().flatten().min();
            match rx.recv_timeout(sleep.unwrap_or(Duration::from_secs(3600))) {
                Ok(cmd) => Some(cmd),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        };
        // Everything posted goes into the next step: steps as large as the backlog (and a
        // search's step holds every line durable when it asked).
        ix.take_posted();
        let mut hurry = false;
        let mut next = first;
        while let Some(cmd) = next {
            match cmd {
                IndexCmd::Hurry => hurry = true,
                IndexCmd::Close(done) => {
                    closed = Some(done);
                    break 'run;
                }
                other => ix.apply(other),
            }
            next = rx.try_recv().ok();
        }
        if hurry || ix.due() {
            let stepped = ix.step();
            if stepped.is_err() {
                debug!(lag = ix.lag(), "search index: events not indexed yet");
            }
            ix.failing.note("search index: indexing", &stepped);
        }
    }
    ix.take_posted();
    ix.close();
    if let Some(done) = closed {
        let _ = done.send(());
    }
}
