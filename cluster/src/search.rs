//! Search in a cluster: every node keeps its own index of the chat lines of the rooms it
//! follows, filled as the rooms' readers read their logs, and answers `/search` from it.
//!
//! - **What the index is.** natter-store's SQLite store (the same FTS5 search as a single
//!   node's: words taken literally, newest first, at most 50, a time budget), opened in a
//!   directory of its own (`natter-search-*`) under [`crate::ClusterConfig::search_dir`]
//!   (natter-server: `<data dir>/cluster-search`; the OS's temporary directory with
//!   `--ephemeral`), with no `fsync` (`Synchronous::Off`): it is a cache, rebuilt from the
//!   logs at every start, and removed when the node stops. One that a killed node left is
//!   removed by the next node to start there (it is no longer locked). Only says and actions
//!   are written to it.
//! - **How it is filled.** A room's reader reads its log from the first event on when the node
//!   starts following the room (it does so anyway, for who is in the room), and hands every
//!   say and action to [`SearchIndex::add`] before the hub gets the event. One task writes them
//!   in batches, and skips what it already holds (a room followed again is read again from its
//!   first event).
//! - **Bounded work.** A search reads the index, never a log: its cost does not grow with the
//!   log beyond what an index search costs (see natter-store's search), and it runs on the
//!   store's search thread, off the hub's path.
//! - **Read your lines.** A search goes through the same queue as the lines, so every line the
//!   hub had been handed before it asked is written before the search runs (the store then
//!   indexes it first, waiting at most `SEARCH_CATCH_UP_WAIT`).

use natter_core::persist::{Batch, BatchId, SearchQuery, Write};
use natter_core::wire::{EventKind, RoomEvent};
use natter_core::{RoomName, Seq};
use natter_store::{Config, Report, Reports, SqliteHandle, Store, SubmitError, Synchronous};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// Lines written to the index in one batch at most.
const BATCH_MAX: usize = 4096;

/// What an index's directory is called (then random letters).
const PREFIX: &str = "natter-search-";

/// An index left by another node is removed only once it is this old: one a node starting
/// beside is making has not had its lock taken yet.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// What the index task is asked.
enum Cmd {
    Line(RoomEvent),
    Search(SearchQuery, oneshot::Sender<Result<Vec<RoomEvent>, String>>),
}

/// A node's search index (see the module's docs). Cheap to clone; the index and its directory
/// go when the last clone does.
#[derive(Debug, Clone)]
pub(crate) struct SearchIndex {
    tx: mpsc::UnboundedSender<Cmd>,
    /// Removed (with the index) when the last clone is dropped.
    _dir: Arc<tempfile::TempDir>,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cmd::Line(e) => write!(f, "Line({} {})", e.room, e.seq),
            Cmd::Search(q, _) => write!(f, "Search({q:?})"),
        }
    }
}

impl SearchIndex {
    /// Makes an empty index in a new directory under `under` (made if missing; `None`: the
    /// OS's temporary directory) and starts its task. Indexes killed nodes left there go.
    pub(crate) fn open(under: Option<&Path>) -> Result<SearchIndex, String> {
        let base = under.map_or_else(std::env::temp_dir, Path::to_path_buf);
        std::fs::create_dir_all(&base)
            .map_err(|e| format!("no directory for the search index: {}: {e}", base.display()))?;
        remove_stale(&base);
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(&base)
            .map_err(|e| format!("no directory for the search index: {}: {e}", base.display()))?;
        let mut config = Config::new(dir.path());
        config.synchronous = Synchronous::Off;
        let (store, reports) = SqliteHandle::open(&config)
            .map_err(|e| format!("the search index cannot be opened: {e}"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, reports, rx));
        debug!(dir = %dir.path().display(), "search index open");
        Ok(SearchIndex {
            tx,
            _dir: Arc::new(dir),
        })
    }

    /// Indexes `event` (with its log's seq) if it is a chat line.
    pub(crate) fn add(&self, event: &RoomEvent) {
        if matches!(event.kind, EventKind::Say { .. } | EventKind::Act { .. }) {
            let _ = self.tx.send(Cmd::Line(event.clone()));
        }
    }

    /// Chat lines holding the words of `q`, newest first, once every line added before is
    /// written.
    pub(crate) async fn search(&self, q: SearchQuery) -> Result<Vec<RoomEvent>, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Cmd::Search(q, reply))
            .map_err(|_| "the search index stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the search index stopped".to_owned())?
    }
}

/// Removes the indexes under `base` that no running node holds (their store's lock is free):
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
        if !ours || !old || !path.is_dir() {
            continue;
        }
        // Opening takes the lock, which a live node holds; a damaged one is a cache too.
        match natter_store::SqliteStore::open(&Config::new(&path)) {
            Err(natter_store::OpenError::Locked { .. }) => continue,
            Ok(store) => drop(store),
            Err(_) => {}
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => info!(dir = %path.display(), "removed a search index a stopped node left"),
            Err(e) => debug!(dir = %path.display(), error = %e, "stale search index kept"),
        }
    }
}

/// The index's writer side: lines in, batches out, searches run after the lines before them.
async fn run(store: SqliteHandle, mut reports: Reports, mut rx: mpsc::UnboundedReceiver<Cmd>) {
    let mut held = Held::default();
    loop {
        tokio::select! {
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                held.take(cmd, &store);
                // Whatever else waits goes into the same batch.
                while held.writes.len() < BATCH_MAX
                    && let Ok(cmd) = rx.try_recv()
                {
                    held.take(cmd, &store);
                }
            }
            Some(report) = reports.recv() => {
                if let Report::Failed { batch, error } = report {
                    warn!(%batch, %error, "lines not written to the search index");
                }
            }
            () = store.ready(), if !held.writes.is_empty() => {}
        }
        held.submit(&store);
    }
    store.close().await;
}

/// Lines read and not yet handed to the store, and what the index holds of each room.
#[derive(Default)]
struct Held {
    writes: Vec<Write>,
    /// The highest seq taken of each room: a line at or below it is held already.
    last: HashMap<RoomName, Seq>,
    batches: u64,
}

impl Held {
    fn take(&mut self, cmd: Cmd, store: &SqliteHandle) {
        match cmd {
            Cmd::Line(event) => {
                let last = self.last.entry(event.room.clone()).or_insert(Seq(0));
                if event.seq > *last {
                    *last = event.seq;
                    self.writes.push(Write::Event(event));
                }
            }
            Cmd::Search(q, reply) => {
                // The lines before it go first (if the store takes them now; else it searches
                // what it has).
                self.submit(store);
                let search = store.search(q);
                tokio::spawn(async move {
                    let mut found = search.await.map_err(|e| e.to_string());
                    if let Ok(hits) = &mut found {
                        // The index numbers lines in the order it read them, room after room:
                        // newest first is by time.
                        hits.sort_by(|a, b| b.at.cmp(&a.at).then(b.seq.cmp(&a.seq)));
                    }
                    let _ = reply.send(found);
                });
            }
        }
    }

    /// Hands what is held to the store, a batch at a time, while it takes them.
    fn submit(&mut self, store: &SqliteHandle) {
        while !self.writes.is_empty() {
            let rest = self.writes.split_off(self.writes.len().min(BATCH_MAX));
            self.batches += 1;
            let batch = Batch {
                id: BatchId(self.batches),
                writes: std::mem::replace(&mut self.writes, rest),
            };
            match store.try_submit(batch) {
                Ok(()) => {}
                Err(SubmitError::Full(mut batch)) => {
                    // Back in front; `run` waits for room.
                    batch.writes.append(&mut self.writes);
                    self.writes = batch.writes;
                    return;
                }
                Err(SubmitError::Closed(_)) => {
                    self.writes.clear();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::wire::EventKind;
    use natter_core::{Millis, MsgId, Nick, Text};

    fn say(r: &str, seq: u64, text: &str) -> RoomEvent {
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
    async fn lines_are_indexed_once_and_the_directory_goes_with_the_index() {
        let index = SearchIndex::open(None).unwrap();
        let dir = index._dir.path().to_path_buf();
        assert!(dir.is_dir());
        for (seq, text) in [(1, "old words"), (2, "new words"), (1, "old words")] {
            index.add(&say("#a", seq, text));
        }
        // A membership event is no line.
        let mut join = say("#a", 3, "x");
        join.kind = EventKind::Join;
        index.add(&join);
        index.add(&say("#b", 1, "words elsewhere"));
        let q = |room: Option<&str>| SearchQuery {
            words: "words".into(),
            rooms: room
                .map(|r| RoomName::new(r).unwrap())
                .into_iter()
                .collect(),
            limit: 50,
        };
        let seqs = |hits: Vec<RoomEvent>| -> Vec<(String, u64)> {
            hits.into_iter()
                .map(|e| (e.room.to_string(), e.seq.0))
                .collect()
        };
        assert_eq!(
            seqs(index.search(q(Some("#a"))).await.unwrap()),
            vec![("#a".into(), 2), ("#a".into(), 1)]
        );
        assert_eq!(index.search(q(None)).await.unwrap().len(), 3);
        drop(index);
        assert!(!dir.exists(), "{} is left", dir.display());
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

    #[tokio::test]
    async fn a_killed_nodes_index_goes_and_a_live_or_young_one_stays() {
        let base = tempfile::tempdir().unwrap();
        // A live node's index, however old its directory.
        let live = SearchIndex::open(Some(base.path())).unwrap();
        let live_dir = live._dir.path().to_path_buf();
        age(&live_dir, 600);
        // Left by a killed node: its store, no lock held.
        let dead = base.path().join(format!("{PREFIX}dead"));
        drop(natter_store::SqliteStore::open(&Config::new(&dead)).unwrap());
        age(&dead, 600);
        // Being made by a node starting now: young, kept.
        let young = base.path().join(format!("{PREFIX}young"));
        std::fs::create_dir(&young).unwrap();
        // Someone else's.
        let other = base.path().join("other");
        std::fs::create_dir(&other).unwrap();
        age(&other, 600);

        let next = SearchIndex::open(Some(base.path())).unwrap();
        assert!(!dead.exists());
        for kept in [&live_dir, &young, &other, &next._dir.path().to_path_buf()] {
            assert!(kept.is_dir(), "{} is gone", kept.display());
        }
        drop(live);
    }
}
