//! Search in a cluster: every node keeps its own index of the words of the chat lines of the
//! rooms it follows, filled as the rooms' readers read their logs, and answers `/search` from
//! it, reading the lines found from their logs.
//!
//! - **What the index is.** One SQLite file with one contentless FTS5 table (`lines`: the
//!   words of each say and action, the same tokenizer as a single node's store, no copy of
//!   the text) whose rowid is the line's room (a number this index gives each room) and
//!   position in the room's log (`batch::position`: the stream sequence of its batch, and its
//!   index in the batch): `room << 40 | position`. Nothing else: no event row, no B-tree of its own. It lives in a
//!   directory of its own (`natter-search-*`) under [`crate::ClusterConfig::search_dir`]
//!   (natter-server: `<data dir>/cluster-search`; the OS's temporary directory with
//!   `--ephemeral`), with no `fsync` and its journal in memory: it is a cache, rebuilt from
//!   the logs at every start, and removed when the node stops. One that a killed node left is
//!   removed by the next node to start there (no connection holds its lock any more).
//! - **How it is filled.** A room's reader reads its log from the first event on when the node
//!   starts following the room (it does so anyway, for who is in the room), and hands every
//!   say and action to [`SearchIndex::add`] before the hub gets the event: a push onto a
//!   queue, no wake-up. The index's thread takes the queue every [`WRITE_EVERY`] (or when a
//!   search comes) and writes it in one transaction, sorted by rowid (FTS5 writes a segment
//!   whenever a rowid is not above the last one), skipping what it already holds (a room
//!   followed again is read again from its first event).
//! - **What a search does.** It goes through the same queue, so every line the hub had been
//!   handed before it asked is written before the search runs ("read your lines"). Per room
//!   asked, the index gives the seqs of the newest [`SEARCH_MAX_RESULTS`] lines holding every
//!   word (words taken literally, as a single node's store takes them; within the time
//!   budget, [`SEARCH_BUDGET`]); those lines are then read from the rooms' logs by seq, the
//!   rooms' lists merged newest first (by time) as they are read, so a search reads at most
//!   its 50 results and a few more from the logs. The logs are the truth: a line no longer in
//!   its log is not a result.

use async_nats::jetstream;
use futures_util::future::join_all;
use natter_core::limits::{SEARCH_MAX_RESULTS, SEARCH_MAX_WORDS};
use natter_core::persist::SearchQuery;
use natter_core::wire::{EventKind, RoomEvent, decode_payload};
use natter_core::{RoomName, Seq};
use rusqlite::{Connection, OpenFlags, params};
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

/// How often the index's thread writes the lines queued (a search writes them at once).
const WRITE_EVERY: Duration = Duration::from_millis(100);

/// How long a search may walk the index (past it, what was found, or an error if nothing).
const SEARCH_BUDGET: Duration = Duration::from_secs(2);

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

/// A chat line waiting to be indexed.
struct Line {
    room: RoomName,
    seq: u64,
    text: String,
}

/// Per room asked, the seqs of its lines that hold the words, newest first.
type Found = Result<Vec<(RoomName, Vec<u64>)>, String>;

/// What waits for the index's thread.
#[derive(Default)]
struct Queue {
    lines: Vec<Line>,
    searches: Vec<(SearchQuery, oneshot::Sender<Found>)>,
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
    /// How long reading a search's lines may take.
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

    /// Queues `event` for the index if it is a chat line: at `position`, where it is in its
    /// log (`batch::position`: its batch's stream sequence and its index there).
    pub(crate) fn add(&self, event: &RoomEvent, position: u64) {
        let (EventKind::Say { text, .. } | EventKind::Act { text, .. }) = &event.kind else {
            return;
        };
        self.inner.shared.lock().lines.push(Line {
            room: event.room.clone(),
            seq: position,
            text: text.as_str().to_owned(),
        });
    }

    /// Chat lines holding the words of `q`, newest first, once every line added before is
    /// written: seqs from the index, the lines from their logs.
    pub(crate) async fn search(&self, q: SearchQuery) -> Result<Vec<RoomEvent>, String> {
        let limit = q.limit.min(SEARCH_MAX_RESULTS);
        let found = self.find(q).await?;
        let read = read_lines(&self.logs, found, limit);
        tokio::time::timeout(self.logs.wait, read)
            .await
            .map_err(|_| "the rooms' logs cannot be read (no answer in time)".to_owned())?
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
        })
    }

    /// The thread: writes the lines queued every [`WRITE_EVERY`], and runs the searches after
    /// the lines queued before them; until the index is dropped.
    fn run(mut self, shared: &Shared) {
        loop {
            let Queue {
                lines,
                searches,
                closed,
            } = std::mem::take(&mut *shared.lock());
            if closed {
                return;
            }
            if !lines.is_empty()
                && let Err(e) = self.write(lines)
            {
                warn!(error = %e, "lines not written to the search index");
            }
            for (q, reply) in searches {
                let _ = reply.send(self.find(&q));
            }
            let idle = {
                let q = shared.lock();
                q.searches.is_empty() && !q.closed
            };
            if idle {
                std::thread::park_timeout(WRITE_EVERY);
            }
        }
    }

    /// Writes `lines` in one transaction, in rowid order, skipping seqs held already.
    fn write(&mut self, lines: Vec<Line>) -> rusqlite::Result<()> {
        let mut keyed = Vec::with_capacity(lines.len());
        for line in lines {
            if line.seq >= 1 << SEQ_BITS {
                continue;
            }
            let last = &mut self.last;
            let room = *self.rooms.entry(line.room).or_insert_with(|| {
                last.push(0);
                last.len() as i64 - 1
            });
            keyed.push(((room << SEQ_BITS) | line.seq as i64, line.text));
        }
        keyed.sort_by_key(|k| k.0);
        // Taken once written.
        let mut last = self.last.clone();
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
            }
        }
        tx.commit()?;
        self.last = last;
        Ok(())
    }

    /// Per room of `q` (every room held when it names none), the seqs of the newest lines
    /// holding every word, at most the query's limit.
    fn find(&mut self, q: &SearchQuery) -> Found {
        let limit = q.limit.min(SEARCH_MAX_RESULTS);
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
        for seq in 1..=3 {
            index.add(&say("#a", seq, "queued words"), seq);
        }
        // A membership event is no line.
        let mut join = say("#a", 4, "queued");
        join.kind = EventKind::Join;
        index.add(&join, 4);
        // Found at once: the search writes what was queued before it first.
        let found = index.find(q("queued", &["#a"])).await.unwrap();
        assert_eq!(found, vec![(RoomName::new("#a").unwrap(), vec![3, 2, 1])]);
        // Nothing found reads no log; hits that cannot be read from theirs are an error.
        assert_eq!(index.search(q("absent", &[])).await, Ok(Vec::new()));
        assert!(index.search(q("queued", &[])).await.is_err());
        let other = index.clone();
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
