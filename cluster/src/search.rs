//! Search in a cluster: every node keeps its own index of the words of the chat lines of the
//! rooms searched on it, filled lazily from the rooms' logs, and answers `/search` from it,
//! reading the lines found from their logs.
//!
//! - **What the index is.** One SQLite file with one contentless FTS5 table (`lines`: the
//!   words of each say and action, the same tokenizer as a single node's store, no copy of
//!   the text) whose rowid is the line's room (a number this index gives each room) and
//!   position in the room's log (`batch::position`: the stream sequence of its batch, and its
//!   index in the batch): `room << 40 | position`. Nothing else: no event row, no B-tree of its own. It lives in a
//!   directory of its own (`natter-search-*`) under [`crate::ClusterConfig::search_dir`]
//!   (natter-server: `<data dir>/cluster-search`; the OS's temporary directory with
//!   `--ephemeral`), with no `fsync` and its journal in memory: it is a cache, rebuilt from
//!   the logs as searches need it after every start, and removed when the node stops. One
//!   that a killed node left is removed by the next node to start there (no connection holds
//!   its lock any more).
//! - **Lazily: a room once someone here searched it.** A room nobody on this node has
//!   searched costs the index nothing: its reader ([`Feed::add`]) drops its lines after one
//!   atomic load. The first search naming a room (every room asked, for a search naming none)
//!   turns its feed on and *catches the room up*: a task reads the room's log from where the
//!   index stands for it (its first event, the first time) to the log's end as it is then,
//!   and hands the lines to the index's thread in chunks; the lines the reader hands over
//!   meanwhile are held aside and written with the last chunk (positions already held are
//!   skipped), so the room's lines in the index have no gap. The search runs once that is
//!   written (waiting at most [`CATCH_UP_WAIT`]; a longer catch-up goes on, and the next
//!   search waits for it again). From then on the room's reader hands every line over as it
//!   reads it, as long as the room is followed; a room no longer followed is caught up again
//!   from where it stands by the next search naming it.
//! - **How it is filled.** Lines go onto a queue: a push, no wake-up. The index's thread takes
//!   the queue every [`WRITE_EVERY`] (or when a search or a catch-up's chunk comes) and writes
//!   it in one transaction, sorted by rowid (FTS5 writes a segment whenever a rowid is not
//!   above the last one), skipping what it already holds (a room followed again is read again
//!   from its first event).
//! - **What a search does.** It goes through the same queue, so every line the hub had been
//!   handed before it asked is written before the search runs ("read your lines"). Per room
//!   asked, the index gives the seqs of the newest [`SEARCH_LOOKED_FOR`] lines holding every
//!   word (words taken literally, as a single node's store takes them; within the time
//!   budget, [`SEARCH_BUDGET`]); those lines are then read from the rooms' logs by seq, the
//!   rooms' lists merged newest first (by time) as they are read, so a search reads at most
//!   its 50 results and a few more from the logs. The logs are the truth: a line no longer in
//!   its log is not a result.

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use futures_util::future::join_all;
use natter_core::limits::{SEARCH_LOOKED_FOR, SEARCH_MAX_WORDS};
use natter_core::persist::SearchQuery;
use natter_core::wire::{EventKind, RoomEvent, decode_payload};
use natter_core::{RoomName, Seq};
use rusqlite::{Connection, OpenFlags, params};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

/// How often the index's thread writes the lines queued (a search writes them at once).
const WRITE_EVERY: Duration = Duration::from_millis(100);

/// How long a search may walk the index (past it, what was found, or an error if nothing).
const SEARCH_BUDGET: Duration = Duration::from_secs(2);

/// How long a search waits for its rooms to be caught up (their logs read into the index
/// from where it stands); past it the search is refused and the catch-up goes on.
const CATCH_UP_WAIT: Duration = Duration::from_secs(15);

/// Lines a catch-up hands the index's thread at a time (it reads the next chunk while the
/// thread writes this one).
const CATCH_UP_CHUNK: usize = 4096;

/// Bits of a rowid that hold the seq; the room's number is above them.
const SEQ_BITS: u32 = 40;

/// The seq's bits of a rowid.
const SEQ_MASK: i64 = (1 << SEQ_BITS) - 1;

/// What an index's directory is called (then random letters).
const PREFIX: &str = "natter-search-";

/// The index's file in its directory.
const FILE: &str = "index.db";

/// An index left by another node is removed only once it is this old: one a node starting
/// beside is making has not had its lock taken yet.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// What a search that ran past its budget with nothing found answers (as a single node's).
const TIMED_OUT: &str = "the search took too long and was stopped; try more specific words";

/// What a search whose rooms are not caught up in time answers.
const STILL_READING: &str =
    "this room's older lines are still being read for search; try again in a moment";

/// A chat line waiting to be indexed.
struct Line {
    room: RoomName,
    seq: u64,
    text: String,
}

/// Per room asked, the seqs of its lines that hold the words, newest first.
type Found = Result<Vec<(RoomName, Vec<u64>)>, String>;

/// How a room's catch-up ended, for those waiting for it.
type CaughtUp = Result<(), String>;

/// A chunk of a room's catch-up (lines of its log in order, from where the index stood).
struct Chunk {
    room: RoomName,
    lines: Vec<Line>,
    /// Set on the last chunk: the catch-up is over (or failed: nothing more comes).
    end: Option<CaughtUp>,
    /// Answered once the chunk is written.
    written: Option<oneshot::Sender<()>>,
}

/// One room as the index knows it.
#[derive(Default)]
struct RoomState {
    /// Whether the room's readers hand their lines over (someone here searched it).
    on: Arc<AtomicBool>,
    /// The last position written (the room's lines up to it are all in the index).
    written: Arc<AtomicU64>,
    /// The room's readers that hand their lines over (0: the room is not followed).
    readers: usize,
    /// Those waiting for the room's catch-up, while one goes on.
    catching: Option<Vec<oneshot::Sender<CaughtUp>>>,
    /// Lines of the room in the index.
    lines: u64,
}

/// What waits for the index's thread, and the rooms it knows.
#[derive(Default)]
struct Queue {
    lines: Vec<Line>,
    searches: Vec<(SearchQuery, oneshot::Sender<Found>)>,
    chunks: Vec<Chunk>,
    rooms: HashMap<RoomName, RoomState>,
    closed: bool,
}

/// The queue and the thread's handle (to wake it for a search or to stop).
struct Shared {
    queue: Mutex<Queue>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Where the lines found are read: the rooms' logs.
#[derive(Debug, Clone)]
pub(crate) struct Logs {
    pub(crate) js: jetstream::Context,
    pub(crate) prefix: String,
    /// How long reading a search's lines may take (and each read of a catch-up).
    pub(crate) wait: Duration,
}

/// A node's search index (see the module's docs). Cheap to clone; the index, its thread and
/// its directory go when the last clone does.
#[derive(Clone)]
pub(crate) struct SearchIndex {
    inner: Arc<Inner>,
    logs: Logs,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SearchIndex({})", self.inner.dir.path().display())
    }
}

/// The thread and the directory, stopped and removed in that order.
struct Inner {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Inner {
    fn wake(&self) {
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }
}

/// A room reader's way into the index: it hands over the room's lines only once someone here
/// searched the room. Dropped when the reader stops handing the room's events to the hub.
pub(crate) struct Feed {
    room: RoomName,
    on: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Feed({}, {})",
            self.room,
            self.on.load(Ordering::Relaxed)
        )
    }
}

impl Feed {
    /// Queues `event` for the index if it is a chat line and the room is indexed: at
    /// `position`, where it is in its log (`batch::position`: its batch's stream sequence and
    /// its index there). A room nobody searched costs an atomic load.
    pub(crate) fn add(&self, event: &RoomEvent, position: u64) {
        if !self.on.load(Ordering::Acquire) || position <= self.written.load(Ordering::Acquire) {
            return;
        }
        let (EventKind::Say { text, .. }
        | EventKind::Act { text, .. }
        | EventKind::Notice { text, .. }) = &event.kind
        else {
            return;
        };
        let mut queue = self.shared.lock();
        // Turned off under the lock (a failed catch-up): nothing after that goes in.
        if !self.on.load(Ordering::Acquire) {
            return;
        }
        queue.lines.push(Line {
            room: self.room.clone(),
            seq: position,
            text: text.as_str().to_owned(),
        });
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(r) = self.shared.lock().rooms.get_mut(&self.room) {
            r.readers = r.readers.saturating_sub(1);
        }
    }
}

impl SearchIndex {
    /// Makes an empty index in a new directory under `under` (made if missing; `None`: the
    /// OS's temporary directory) and starts its thread. Indexes killed nodes left there go.
    /// The lines a search finds are read from `logs`.
    pub(crate) fn open(under: Option<&Path>, logs: Logs) -> Result<SearchIndex, String> {
        let (index, dir) = Index::create(under)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
        });
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("natter-search".into())
            .spawn(move || index.run(&theirs))
            .map_err(|e| format!("the search index cannot start: {e}"))?;
        debug!(dir = %dir.path().display(), "search index open");
        Ok(SearchIndex {
            inner: Arc::new(Inner {
                shared,
                thread: Some(thread),
                dir,
            }),
            logs,
        })
    }

    /// What `room`'s reader hands its lines to while it hands the room's events to the hub.
    pub(crate) fn follow(&self, room: &RoomName) -> Feed {
        let mut queue = self.inner.shared.lock();
        let r = queue.rooms.entry(room.clone()).or_default();
        r.readers += 1;
        Feed {
            room: room.clone(),
            on: r.on.clone(),
            written: r.written.clone(),
            shared: self.inner.shared.clone(),
        }
    }

    /// The rooms the index holds lines of, and how many (rooms by name).
    pub(crate) fn indexed(&self) -> Vec<(RoomName, u64)> {
        let queue = self.inner.shared.lock();
        let mut rooms: Vec<(RoomName, u64)> = queue
            .rooms
            .iter()
            .filter(|(_, r)| r.on.load(Ordering::Acquire) || r.lines > 0)
            .map(|(name, r)| (name.clone(), r.lines))
            .collect();
        rooms.sort();
        rooms
    }

    /// Chat lines holding the words of `q`, newest first, once its rooms are caught up and
    /// every line added before is written: seqs from the index, the lines from their logs.
    pub(crate) async fn search(&self, q: SearchQuery) -> Result<Vec<RoomEvent>, String> {
        let limit = q.limit.min(SEARCH_LOOKED_FOR);
        if limit == 0 || phrases(&q.words).is_empty() {
            return Ok(Vec::new());
        }
        let waits = self.catch_up(&q.rooms);
        if !waits.is_empty() {
            let caught = tokio::time::timeout(CATCH_UP_WAIT, join_all(waits))
                .await
                .map_err(|_| STILL_READING.to_owned())?;
            for c in caught {
                c.map_err(|_| "the search index stopped".to_owned())??;
            }
        }
        let found = self.find(q).await?;
        let read = read_lines(&self.logs, found, limit);
        tokio::time::timeout(self.logs.wait, read)
            .await
            .map_err(|_| "the rooms' logs cannot be read (no answer in time)".to_owned())?
    }

    /// Turns on the index of `rooms` (every room the index knows if empty) and starts the
    /// catch-up of each that is not followed with its lines handed over already; what to wait
    /// for (those under way included).
    fn catch_up(&self, rooms: &[RoomName]) -> Vec<oneshot::Receiver<CaughtUp>> {
        let mut waits = Vec::new();
        let mut start = Vec::new();
        {
            let mut queue = self.inner.shared.lock();
            let names: Vec<RoomName> = if rooms.is_empty() {
                queue.rooms.keys().cloned().collect()
            } else {
                rooms.to_vec()
            };
            for name in names {
                let r = queue.rooms.entry(name.clone()).or_default();
                if let Some(waiting) = &mut r.catching {
                    let (tx, rx) = oneshot::channel();
                    waiting.push(tx);
                    waits.push(rx);
                    continue;
                }
                if r.on.load(Ordering::Acquire) && r.readers > 0 {
                    continue;
                }
                // From now on its reader hands its lines over (held aside until the log is
                // read up to where the reader is).
                r.on.store(true, Ordering::Release);
                let (tx, rx) = oneshot::channel();
                r.catching = Some(vec![tx]);
                waits.push(rx);
                start.push((name, r.written.load(Ordering::Acquire)));
            }
        }
        for (room, from) in start {
            let index = self.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let end = index.read_log(&room, from).await;
                match &end {
                    Ok(lines) => info!(
                        %room, lines, took_ms = started.elapsed().as_millis() as u64,
                        "room caught up for search"
                    ),
                    Err(why) => warn!(%room, %why, "room not caught up for search"),
                }
                index.push_chunk(Chunk {
                    room,
                    lines: Vec::new(),
                    end: Some(end.map(|_| ())),
                    written: None,
                });
            });
        }
        waits
    }

    fn push_chunk(&self, chunk: Chunk) {
        self.inner.shared.lock().chunks.push(chunk);
        self.inner.wake();
    }

    /// Hands the index's thread `room`'s lines after `from` (a position) up to its log's end
    /// as it is now, in chunks; the number of lines read.
    async fn read_log(&self, room: &RoomName, from: u64) -> Result<u64, String> {
        let cannot = |e: &dyn std::fmt::Display| format!("the room's log cannot be read ({e})");
        let name = crate::room_stream(&self.logs.prefix, room);
        let info = tokio::time::timeout(self.logs.wait, self.logs.js.get_stream(name))
            .await
            .map_err(|_| cannot(&"no answer in time"))?;
        let stream = match info {
            Ok(s) => s,
            Err(e)
                if matches!(
                    e.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(je)
                        if je.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                ) =>
            {
                // No log: nothing was ever said there.
                return Ok(0);
            }
            Err(e) => return Err(cannot(&e)),
        };
        let state = &stream.cached_info().state;
        let (first, last) = (state.first_sequence.max(1), state.last_sequence);
        // The batch of the last line held is read again (its lines held are skipped).
        let start = crate::batch::at(from).0.max(first);
        if last == 0 || start > last {
            return Ok(0);
        }
        let mut messages = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| cannot(&e))?
            .messages()
            .await
            .map_err(|e| cannot(&e))?;
        let mut lines = Vec::new();
        let mut count = 0u64;
        let mut written: Option<oneshot::Receiver<()>> = None;
        loop {
            let m = tokio::time::timeout(self.logs.wait, messages.next())
                .await
                .map_err(|_| cannot(&"no answer in time"))?
                .ok_or_else(|| cannot(&"the read ended"))?
                .map_err(|e| cannot(&e))?;
            let seq = m.info().map_err(|e| cannot(&e))?.stream_sequence;
            if let Some(batch) = crate::batch::decode(&m.payload) {
                for (i, (_, bytes)) in batch.events.iter().enumerate() {
                    let position = crate::batch::position(seq, i);
                    if position <= from {
                        continue;
                    }
                    let event = match decode_payload::<RoomEvent>(bytes) {
                        Ok(ev) => ev,
                        Err(e) => {
                            warn!(%room, seq, error = %e, "room event not understood; skipped");
                            continue;
                        }
                    };
                    if let EventKind::Say { text, .. }
                    | EventKind::Act { text, .. }
                    | EventKind::Notice { text, .. } = event.kind
                    {
                        lines.push(Line {
                            room: room.clone(),
                            seq: position,
                            text: text.as_str().to_owned(),
                        });
                    }
                }
            }
            let done = seq >= last;
            if lines.len() >= CATCH_UP_CHUNK || (done && !lines.is_empty()) {
                // One chunk written while the next is read.
                if let Some(w) = written.take() {
                    w.await.map_err(|_| "the search index stopped".to_owned())?;
                }
                let (tx, rx) = oneshot::channel();
                count += lines.len() as u64;
                self.push_chunk(Chunk {
                    room: room.clone(),
                    lines: std::mem::take(&mut lines),
                    end: None,
                    written: Some(tx),
                });
                written = Some(rx);
            }
            if done {
                break;
            }
        }
        Ok(count)
    }

    /// Per room asked, the seqs of the lines holding the words, newest first.
    async fn find(&self, q: SearchQuery) -> Found {
        let (reply, answer) = oneshot::channel();
        {
            let mut queue = self.inner.shared.lock();
            if queue.closed {
                return Err("the search index stopped".to_owned());
            }
            queue.searches.push((q, reply));
        }
        self.inner.wake();
        answer
            .await
            .map_err(|_| "the search index stopped".to_owned())?
    }
}

/// One room's part of a search: seqs still to read, lines read and not taken yet.
struct RoomLines {
    stream: jetstream::stream::Stream<()>,
    room: RoomName,
    seqs: VecDeque<u64>,
    read: VecDeque<RoomEvent>,
}

impl RoomLines {
    /// Reads the next `n` lines of `seqs` from the log (at once); a line gone from it is
    /// skipped.
    async fn read_more(&mut self, n: usize) -> Result<(), String> {
        let take: Vec<u64> = (0..n).map_while(|_| self.seqs.pop_front()).collect();
        let got = join_all(
            take.iter()
                .map(|&pos| self.stream.get_raw_message(crate::batch::at(pos).0)),
        )
        .await;
        for (seq, m) in take.into_iter().zip(got) {
            let m = match m {
                Ok(m) => m,
                Err(e)
                    if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
                {
                    continue;
                }
                Err(e) => return Err(format!("the room's log cannot be read ({e})")),
            };
            let (_, index) = crate::batch::at(seq);
            let Some(batch) = crate::batch::decode(&m.payload) else {
                warn!(room = %self.room, seq, "room log message not understood");
                continue;
            };
            let Some((_, bytes)) = batch.events.get(index) else {
                continue;
            };
            match decode_payload::<RoomEvent>(bytes) {
                Ok(mut event) => {
                    event.room = self.room.clone();
                    event.seq = Seq(batch.first + index as u64);
                    self.read.push_back(event);
                }
                Err(e) => warn!(room = %self.room, seq, error = %e, "room event not understood"),
            }
        }
        Ok(())
    }
}

/// The newest `limit` of the lines `found` (by time), read from their logs: each room's lines
/// are read a few at a time, newest first, and the rooms' next lines merged.
async fn read_lines(
    logs: &Logs,
    found: Vec<(RoomName, Vec<u64>)>,
    limit: usize,
) -> Result<Vec<RoomEvent>, String> {
    let mut rooms = Vec::new();
    for (room, seqs) in found {
        if seqs.is_empty() {
            continue;
        }
        let name = crate::room_stream(&logs.prefix, &room);
        let stream = logs
            .js
            .get_stream_no_info(name)
            .await
            .map_err(|e| format!("the room's log cannot be read ({e})"))?;
        rooms.push(RoomLines {
            stream,
            room,
            seqs: seqs.into(),
            read: VecDeque::new(),
        });
    }
    if rooms.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    // Enough of each room's lines at once that, rooms being alike, one read each will do.
    let chunk = (limit / rooms.len()).clamp(1, limit);
    let mut hits = Vec::with_capacity(limit);
    while hits.len() < limit {
        let empty = rooms
            .iter_mut()
            .filter(|r| r.read.is_empty() && !r.seqs.is_empty());
        for done in join_all(empty.map(|r| r.read_more(chunk))).await {
            done?;
        }
        let newest = rooms
            .iter_mut()
            .filter(|r| !r.read.is_empty())
            .max_by_key(|r| r.read.front().map(|e| (e.at, e.seq)));
        let Some(line) = newest.and_then(|r| r.read.pop_front()) else {
            break;
        };
        hits.push(line);
    }
    hits.sort_by(|a, b| b.at.cmp(&a.at).then(b.seq.cmp(&a.seq)));
    Ok(hits)
}

/// The index itself, driven by its thread.
struct Index {
    conn: Connection,
    /// Each room's number (in rowids).
    rooms: HashMap<RoomName, i64>,
    /// By room number, the highest seq held.
    last: Vec<u64>,
    /// By room number, its name.
    names: Vec<RoomName>,
    /// Lines of rooms being caught up that their readers handed over meanwhile: written
    /// with the catch-up's last chunk.
    held: HashMap<RoomName, Vec<Line>>,
}

impl Index {
    /// A new index in a new directory under `under` (see [`SearchIndex::open`]).
    fn create(under: Option<&Path>) -> Result<(Index, tempfile::TempDir), String> {
        let base = under.map_or_else(std::env::temp_dir, Path::to_path_buf);
        std::fs::create_dir_all(&base)
            .map_err(|e| format!("no directory for the search index: {}: {e}", base.display()))?;
        remove_stale(&base);
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(&base)
            .map_err(|e| format!("no directory for the search index: {}: {e}", base.display()))?;
        let index = Index::open(&dir.path().join(FILE))
            .map_err(|e| format!("the search index cannot be opened: {e}"))?;
        Ok((index, dir))
    }

    /// Opens (makes) the index file at `path`. Its lock is taken here and held while open
    /// (exclusive locking): another node tells a live index from a dead one by it.
    fn open(path: &Path) -> rusqlite::Result<Index> {
        let conn = Connection::open(path)?;
        // `journal_mode` answers with a row.
        let _: String = conn.query_row("PRAGMA journal_mode = MEMORY", [], |r| r.get(0))?;
        conn.execute_batch(
            "PRAGMA synchronous = OFF;
             PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -8192;
             CREATE VIRTUAL TABLE IF NOT EXISTS lines USING fts5 (
                 text,
                 content = '',
                 columnsize = 0,
                 tokenize = 'unicode61 remove_diacritics 2'
             );",
        )?;
        Ok(Index {
            conn,
            rooms: HashMap::new(),
            last: Vec::new(),
            names: Vec::new(),
            held: HashMap::new(),
        })
    }

    /// The thread: writes the lines queued every [`WRITE_EVERY`] (a room's being caught up
    /// held aside until its catch-up's last chunk), and runs the searches after the lines
    /// queued before them; until the index is dropped.
    fn run(mut self, shared: &Shared) {
        loop {
            let (lines, searches, chunks, catching, ends) = {
                let mut q = shared.lock();
                if q.closed {
                    return;
                }
                let lines = std::mem::take(&mut q.lines);
                let searches = std::mem::take(&mut q.searches);
                let chunks = std::mem::take(&mut q.chunks);
                // Catch-ups that ended: their rooms' lines go in from now on, or (failed) no
                // more come until the next search catches the room up from where it stands.
                let mut ends = Vec::new();
                for c in &chunks {
                    if let Some(end) = &c.end {
                        let r = q.rooms.entry(c.room.clone()).or_default();
                        let waiting = r.catching.take().unwrap_or_default();
                        if end.is_err() {
                            r.on.store(false, Ordering::Release);
                        }
                        ends.push((c.room.clone(), end.clone(), waiting));
                    }
                }
                let catching: HashSet<RoomName> = q
                    .rooms
                    .iter()
                    .filter(|(_, r)| r.catching.is_some())
                    .map(|(name, _)| name.clone())
                    .collect();
                (lines, searches, chunks, catching, ends)
            };
            let failed: HashSet<&RoomName> = ends
                .iter()
                .filter(|(_, end, _)| end.is_err())
                .map(|(room, _, _)| room)
                .collect();
            let mut out = Vec::with_capacity(lines.len());
            for line in lines {
                if failed.contains(&line.room) {
                    continue;
                }
                if catching.contains(&line.room) {
                    self.held.entry(line.room.clone()).or_default().push(line);
                    continue;
                }
                out.push(line);
            }
            let mut acks = Vec::new();
            for c in chunks {
                match &c.end {
                    Some(Ok(())) => out.extend(self.held.remove(&c.room).unwrap_or_default()),
                    Some(Err(_)) => drop(self.held.remove(&c.room)),
                    None => {}
                }
                out.extend(c.lines);
                acks.extend(c.written);
            }
            let mut error = None;
            if !out.is_empty() {
                match self.write(out) {
                    Ok(counts) => {
                        let mut q = shared.lock();
                        for (n, count) in counts {
                            if let Some(r) = q.rooms.get_mut(&self.names[n]) {
                                r.lines += count;
                                r.written.store(self.last[n], Ordering::Release);
                            }
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "lines not written to the search index");
                        error = Some(format!("the search index cannot be written ({e})"));
                    }
                }
            }
            for a in acks {
                let _ = a.send(());
            }
            for (_, end, waiting) in ends {
                let end = match &error {
                    Some(e) => Err(e.clone()),
                    None => end,
                };
                for w in waiting {
                    let _ = w.send(end.clone());
                }
            }
            for (q, reply) in searches {
                let _ = reply.send(self.find(&q));
            }
            let idle = {
                let q = shared.lock();
                q.searches.is_empty() && q.chunks.is_empty() && !q.closed
            };
            if idle {
                std::thread::park_timeout(WRITE_EVERY);
            }
        }
    }

    /// Writes `lines` in one transaction, in rowid order, skipping seqs held already; how
    /// many lines went in, by room number.
    fn write(&mut self, lines: Vec<Line>) -> rusqlite::Result<Vec<(usize, u64)>> {
        let mut keyed = Vec::with_capacity(lines.len());
        for line in lines {
            if line.seq >= 1 << SEQ_BITS {
                continue;
            }
            let (last, names) = (&mut self.last, &mut self.names);
            let room = *self.rooms.entry(line.room).or_insert_with_key(|name| {
                last.push(0);
                names.push(name.clone());
                last.len() as i64 - 1
            });
            keyed.push(((room << SEQ_BITS) | line.seq as i64, line.text));
        }
        keyed.sort_by_key(|k| k.0);
        // Taken once written.
        let mut last = self.last.clone();
        let mut counts: Vec<(usize, u64)> = Vec::new();
        let tx = self.conn.transaction()?;
        {
            let mut insert =
                tx.prepare_cached("INSERT INTO lines (rowid, text) VALUES (?1, ?2)")?;
            for (key, text) in keyed {
                let (room, seq) = ((key >> SEQ_BITS) as usize, (key & SEQ_MASK) as u64);
                if seq <= last[room] {
                    continue;
                }
                last[room] = seq;
                insert.execute(params![key, text])?;
                match counts.last_mut() {
                    Some((r, n)) if *r == room => *n += 1,
                    _ => counts.push((room, 1)),
                }
            }
        }
        tx.commit()?;
        self.last = last;
        Ok(counts)
    }

    /// Per room of `q` (every room held when it names none), the seqs of the newest lines
    /// holding every word, at most the query's limit.
    fn find(&mut self, q: &SearchQuery) -> Found {
        let limit = q.limit.min(SEARCH_LOOKED_FOR);
        let phrases = phrases(&q.words);
        if limit == 0 || phrases.is_empty() {
            return Ok(Vec::new());
        }
        let words = phrases.join(" AND ");
        let rooms: Vec<(RoomName, i64)> = if q.rooms.is_empty() {
            self.rooms
                .iter()
                .map(|(name, n)| (name.clone(), *n))
                .collect()
        } else {
            q.rooms
                .iter()
                .filter_map(|name| self.rooms.get(name).map(|n| (name.clone(), *n)))
                .collect()
        };
        let deadline = Instant::now() + SEARCH_BUDGET;
        let budget = self
            .conn
            .progress_handler(1_000, Some(move || Instant::now() > deadline));
        if let Err(e) = budget {
            warn!(error = %e, "a search without its time budget");
        }
        let mut found = Vec::with_capacity(rooms.len());
        let mut stopped = false;
        let mut failed = None;
        for (room, n) in rooms {
            if stopped {
                break;
            }
            let mut seqs = Vec::new();
            let walked = (|| {
                let mut st = self.conn.prepare_cached(
                    "SELECT rowid FROM lines WHERE lines MATCH ?1 AND rowid >= ?2
                     AND rowid < ?3 ORDER BY rowid DESC LIMIT ?4",
                )?;
                let rows = st.query_map(
                    params![words, n << SEQ_BITS, (n + 1) << SEQ_BITS, limit as i64],
                    |r| r.get::<_, i64>(0),
                )?;
                for key in rows {
                    seqs.push((key? & SEQ_MASK) as u64);
                }
                Ok::<(), rusqlite::Error>(())
            })();
            match walked {
                Ok(()) => {}
                Err(e)
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) =>
                {
                    stopped = true;
                }
                Err(e) => {
                    failed = Some(e.to_string());
                    stopped = true;
                }
            }
            found.push((room, seqs));
        }
        let _ = self.conn.progress_handler(0, None::<fn() -> bool>);
        if let Some(e) = failed {
            return Err(format!("the search index cannot be read ({e})"));
        }
        if stopped && found.iter().all(|(_, s)| s.is_empty()) {
            return Err(TIMED_OUT.to_owned());
        }
        Ok(found)
    }
}

/// The FTS5 phrases for `typed`, as a single node's store makes them: its first
/// [`SEARCH_MAX_WORDS`] words that hold a letter or digit, each quoted (with `"` doubled), so
/// FTS5 sees no operator, column filter, prefix star or parenthesis. Empty when no word holds
/// anything the index stores (then nothing can match). A word is split again by the tokenizer
/// inside its quotes (`don't` is the phrase `don t`).
fn phrases(typed: &str) -> Vec<String> {
    natter_core::types::sanitize(typed)
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .take(SEARCH_MAX_WORDS)
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect()
}

/// Removes the indexes under `base` that no running node holds (their file's lock is free):
/// those of nodes killed before they could remove their own.
fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry.file_name().to_string_lossy().starts_with(PREFIX);
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_AFTER);
        if !ours || !old || !path.is_dir() || held(&path.join(FILE)) {
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => info!(dir = %path.display(), "removed a search index a stopped node left"),
            Err(e) => debug!(dir = %path.display(), error = %e, "stale search index kept"),
        }
    }
}

/// Whether a live index holds the file at `path` (its connection keeps an exclusive lock: a
/// read here is refused at once). A file missing or damaged is held by nobody.
fn held(path: &Path) -> bool {
    let Ok(conn) = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return false;
    };
    let read = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    });
    matches!(
        read.map_err(|e| e.sqlite_error_code()),
        Err(Some(
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
        ))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(r: &str, seq: u64, text: &str) -> Line {
        Line {
            room: RoomName::new(r).unwrap(),
            seq,
            text: text.into(),
        }
    }

    fn q(words: &str, rooms: &[&str]) -> SearchQuery {
        SearchQuery {
            words: words.into(),
            rooms: rooms.iter().map(|r| RoomName::new(r).unwrap()).collect(),
            limit: 50,
        }
    }

    /// `found` as (room, seqs), rooms by name.
    fn sorted(found: Found) -> Vec<(String, Vec<u64>)> {
        let mut v: Vec<_> = found
            .unwrap()
            .into_iter()
            .map(|(r, s)| (r.to_string(), s))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn lines_are_indexed_once_by_room_and_seq_newest_first() {
        let (mut index, _dir) = Index::create(None).unwrap();
        // Rooms interleaved, a line twice (a room read again), one out of order.
        index
            .write(vec![
                line("#a", 1, "old words"),
                line("#b", 1, "words elsewhere"),
                line("#a", 3, "newest WORDS, Café"),
                line("#a", 2, "new words"),
                line("#a", 1, "old words"),
            ])
            .unwrap();
        // A room read again from its start: nothing twice, what follows is new.
        index
            .write(vec![
                line("#a", 1, "old words"),
                line("#a", 4, "more words"),
            ])
            .unwrap();
        assert_eq!(
            sorted(index.find(&q("words", &["#a"]))),
            vec![("#a".into(), vec![4, 3, 2, 1])]
        );
        assert_eq!(
            sorted(index.find(&q("words", &[]))),
            vec![("#a".into(), vec![4, 3, 2, 1]), ("#b".into(), vec![1])]
        );
        // Every word; case and accents folded; a room not held has nothing.
        assert_eq!(
            sorted(index.find(&q("cafe newest", &["#a", "#none"]))),
            vec![("#a".into(), vec![3])]
        );
        assert_eq!(
            sorted(index.find(&q("old elsewhere", &[]))),
            vec![("#a".into(), vec![]), ("#b".into(), vec![])]
        );
        // Syntax is words; nothing searchable is nothing.
        assert!(index.find(&q("NEAR( \"old\" -x *", &["#a"])).is_ok());
        assert!(index.find(&q(" * - ", &[])).unwrap().is_empty());
        let mut few = q("words", &["#a"]);
        few.limit = 2;
        assert_eq!(sorted(index.find(&few)), vec![("#a".into(), vec![4, 3])]);
    }

    fn say(r: &str, seq: u64, text: &str) -> RoomEvent {
        use natter_core::{Millis, MsgId, Nick, Text};
        RoomEvent {
            room: RoomName::new(r).unwrap(),
            seq: Seq(seq),
            at: Millis(seq),
            from: Nick::new("alice").unwrap(),
            kind: EventKind::Say {
                id: MsgId(seq),
                text: Text::new(text).unwrap(),
            },
        }
    }

    #[tokio::test]
    async fn a_search_finds_the_lines_queued_before_it_and_the_directory_goes_with_the_index() {
        // No NATS: only a search with hits reads the logs.
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect("nats://127.0.0.1:1")
            .await
            .unwrap();
        let logs = Logs {
            js: jetstream::new(client),
            prefix: "test".into(),
            wait: Duration::from_millis(300),
        };
        let index = SearchIndex::open(None, logs).unwrap();
        let dir = index.inner.dir.path().to_path_buf();
        assert!(dir.join(FILE).is_file());
        let feed = index.follow(&RoomName::new("#a").unwrap());
        // Nobody searched the room: its lines are not taken.
        feed.add(&say("#a", 1, "unsearched"), 1);
        assert!(index.inner.shared.lock().lines.is_empty());
        assert!(index.indexed().is_empty());
        // As a search's catch-up leaves it: the room's lines are taken from now on.
        feed.on.store(true, Ordering::Release);
        for seq in 1..=3 {
            feed.add(&say("#a", seq, "queued words"), seq);
        }
        // A membership event is no line.
        let mut join = say("#a", 4, "queued");
        join.kind = EventKind::Join;
        feed.add(&join, 4);
        // Found at once: the search writes what was queued before it first.
        let found = index.find(q("queued", &["#a"])).await.unwrap();
        assert_eq!(found, vec![(RoomName::new("#a").unwrap(), vec![3, 2, 1])]);
        assert_eq!(index.indexed(), vec![(RoomName::new("#a").unwrap(), 3)]);
        // Positions held are not taken again (a room read again from its start).
        feed.add(&say("#a", 2, "queued words"), 2);
        assert!(index.inner.shared.lock().lines.is_empty());
        // Nothing found reads no log; hits that cannot be read from theirs are an error.
        assert_eq!(index.search(q("absent", &[])).await, Ok(Vec::new()));
        assert!(index.search(q("queued", &[])).await.is_err());
        let other = index.clone();
        drop(feed);
        drop(index);
        assert!(dir.is_dir(), "a clone holds it");
        drop(other);
        assert!(!dir.exists(), "{} is left", dir.display());
    }

    #[test]
    fn words_are_quoted_phrases_and_capped() {
        assert_eq!(
            phrases(r#"say "hi" NEAR(a b) -z *"#).join(" "),
            r#""say" """hi""" "NEAR(a" "b)" "-z""#
        );
        assert_eq!(
            phrases(&"w ".repeat(SEARCH_MAX_WORDS + 5)).len(),
            SEARCH_MAX_WORDS
        );
    }
}

#[cfg(test)]
mod stale_tests {
    use super::*;

    /// Sets `dir`'s modification time `secs` seconds back.
    fn age(dir: &Path, secs: u64) {
        let t = std::time::SystemTime::now() - Duration::from_secs(secs);
        std::fs::File::open(dir).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn a_killed_nodes_index_goes_and_a_live_or_young_one_stays() {
        let base = tempfile::tempdir().unwrap();
        // A live node's index, however old its directory.
        let (live, live_dir) = Index::create(Some(base.path())).unwrap();
        age(live_dir.path(), 600);
        // Left by a killed node: its file, no lock held.
        let dead = base.path().join(format!("{PREFIX}dead"));
        std::fs::create_dir(&dead).unwrap();
        drop(Index::open(&dead.join(FILE)).unwrap());
        age(&dead, 600);
        // Being made by a node starting now: young, kept.
        let young = base.path().join(format!("{PREFIX}young"));
        std::fs::create_dir(&young).unwrap();
        // Someone else's.
        let other = base.path().join("other");
        std::fs::create_dir(&other).unwrap();
        age(&other, 600);

        let (_next, next_dir) = Index::create(Some(base.path())).unwrap();
        assert!(!dead.exists());
        for kept in [live_dir.path(), &young, &other, next_dir.path()] {
            assert!(kept.is_dir(), "{} is gone", kept.display());
        }
        drop(live);
    }
}
