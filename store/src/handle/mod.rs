//! [`SqliteHandle`]: the SQLite backend on threads, behind [`Store`]. One writer thread owns the
//! [`SqliteStore`]: it takes every batch queued (up to a bound) into one transaction, reports
//! the outcome, hands the chat lines it stored to the index thread, and between batches prunes.
//! The index thread indexes them for search in a file of its own, thousands at a time, behind
//! the commits (see `sqlite/index.rs`). Reads run on two small pools of reader threads,
//! one for startup and history pages and one for searches, so a slow search delays neither
//! writes nor scrollback.

use crate::backend::{Reporter, Slots, in_flight};
use crate::failing::Failing;
use crate::sqlite::{IndexCmd, PRUNE_CHECK_EVERY, Progress, Reader, SqliteStore, backup, unix_now};
use crate::{
    Batch, Config, HistoryPage, HistoryQuery, LoadOptions, Loaded, LoadedAccount, OpenError,
    ReadError, Reports, SearchQuery, Store, StoreFuture, SubmitError, WriteError,
};
use natter_core::wire::RoomEvent;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;
use tracing::{debug, error};

/// Batches the writer takes into one transaction at most.
const GROUP_MAX_BATCHES: usize = 256;

/// Writes the writer takes into one transaction at most (it stops adding batches past this),
/// so one commit, and the wait of the batches behind it, stays short.
const GROUP_MAX_WRITES: usize = 8192;

/// How long a search waits at most for the index thread to index the lines durable when it was
/// asked before it runs on what is indexed (an index held up by a slow disk, or rebuilding
/// after a crash of the machine, does not hold searches up for longer).
pub const SEARCH_CATCH_UP_WAIT: Duration = Duration::from_millis(250);

/// The SQLite store running on its own threads. Cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct SqliteHandle {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    slots: Slots,
    /// `None` once closed.
    writer: Mutex<Option<Sender<Cmd>>>,
    history: Mutex<Option<Lane>>,
    search: Mutex<Option<Lane>>,
    /// The index thread, and how far it is.
    index: Mutex<Option<Sender<IndexCmd>>>,
    /// The checkpoint thread: stops when this goes.
    checkpoints: Mutex<Option<Sender<()>>>,
    /// The reader and checkpoint threads, joined at close before the writer closes: each holds
    /// a connection to natter.db, and SQLite removes the write-ahead log and its shared-memory
    /// file only at the close of the last one. Left to end on their own, they were still open
    /// when the process exited after "store closed" (on a busy machine), and the files stayed.
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    progress: Arc<Progress>,
}

/// What the writer thread is asked to do.
enum Cmd {
    Batch(Batch),
    Close(oneshot::Sender<()>),
    /// Runs SQL on the writer's connection (tests: `PRAGMA max_page_count` fills the "disk").
    #[cfg(test)]
    Sql(String),
}

/// Locks a mutex whose holder cannot have panicked while changing it (it only swaps options).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SqliteHandle {
    /// Opens the store in `config.dir` (see [`SqliteStore::open`] for what refuses it) and
    /// starts its threads. Reports of submitted batches arrive on the returned [`Reports`].
    pub fn open(config: &Config) -> Result<(SqliteHandle, Reports), OpenError> {
        let store = SqliteStore::open_deferred(config)?;
        SqliteHandle::start(store)
    }

    /// Starts the threads around an opened store.
    fn start(mut store: SqliteStore) -> Result<(SqliteHandle, Reports), OpenError> {
        let config = store.config.clone();
        let readers = |n: usize| {
            (0..n.max(1))
                .map(|_| store.reader())
                .collect::<Result<Vec<_>, _>>()
        };
        let mut threads = Vec::new();
        let history = Lane::start(
            "history",
            readers(config.history_threads)?,
            &config,
            &mut threads,
        );
        let search = Lane::start(
            "search",
            readers(config.search_threads)?,
            &config,
            &mut threads,
        );
        let (slots, reporter, reports) = in_flight(config.max_in_flight);
        let (tx, rx) = std::sync::mpsc::channel();
        let path = store.path().to_path_buf();
        let (index_tx, index_rx) = std::sync::mpsc::channel();
        let (indexer, progress) = store
            .detach_index(index_tx.clone())
            .expect("a store opened here writes its own index");
        // What is stored past the index (a tail after a crash, everything after a rebuild) is
        // indexed there, in the background: startup does not wait for it. (At the usual
        // priority: at nice 19 it lagged by tens of thousands of lines on a saturated core
        // and the open loop's p99 showed no gain; bench/README.md, "seventh session".)
        std::thread::Builder::new()
            .name("natter-store-index".into())
            .spawn(move || crate::sqlite::run_index(indexer, &index_rx))
            .map_err(|source| OpenError::Thread {
                name: "search index",
                source,
            })?;
        // Checkpoints run on a thread of their own, so a commit does not copy the log into the
        // database and wait for its fsync; the writer checkpoints only if that thread falls far
        // behind.
        let (checkpoints, stop) = std::sync::mpsc::channel::<()>();
        let checkpointer = crate::sqlite::Checkpointer::open(&store)?;
        store.checkpoint_elsewhere()?;
        let checkpoint = std::thread::Builder::new()
            .name("natter-store-checkpoint".into())
            .spawn(move || checkpointer.run(&stop))
            .map_err(|source| OpenError::Thread {
                name: "checkpoint",
                source,
            })?;
        threads.push(checkpoint);
        std::thread::Builder::new()
            .name("natter-store-writer".into())
            .spawn(move || write_loop(store, &rx, &reporter))
            .map_err(|source| OpenError::Thread {
                name: "writer",
                source,
            })?;
        let inner = Inner {
            path,
            slots,
            writer: Mutex::new(Some(tx)),
            history: Mutex::new(Some(history)),
            search: Mutex::new(Some(search)),
            index: Mutex::new(Some(index_tx)),
            checkpoints: Mutex::new(Some(checkpoints)),
            threads: Mutex::new(threads),
            progress,
        };
        Ok((
            SqliteHandle {
                inner: Arc::new(inner),
            },
            reports,
        ))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Writes a consistent copy of the store to `to` (a new file) while it stays in use; see
    /// [`SqliteStore::backup`].
    pub fn backup(&self, to: PathBuf) -> StoreFuture<'static, Result<(), WriteError>> {
        let from = self.inner.path.clone();
        let (tx, rx) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("natter-store-backup".into())
            .spawn(move || {
                let _ = tx.send(backup(&from, &to));
            });
        Box::pin(async move {
            if let Err(e) = spawned {
                return Err(WriteError::Storage(e.to_string()));
            }
            rx.await.unwrap_or(Err(WriteError::Closed))
        })
    }

    #[cfg(test)]
    pub(crate) fn writer_sql(&self, sql: &str) {
        if let Some(tx) = lock(&self.inner.writer).as_ref() {
            let _ = tx.send(Cmd::Sql(sql.to_owned()));
        }
    }

    fn read<T: Send + 'static>(
        lane: &Mutex<Option<Lane>>,
        job: impl FnOnce(&mut Reader) -> Result<T, ReadError> + Send + 'static,
    ) -> StoreFuture<'static, Result<T, ReadError>> {
        let queued = match lock(lane).as_ref() {
            Some(lane) => lane.queue(job),
            None => Err(ReadError::Closed),
        };
        Box::pin(async move {
            match queued {
                Ok(rx) => rx.await.unwrap_or(Err(ReadError::Closed)),
                Err(e) => Err(e),
            }
        })
    }
}

impl Store for SqliteHandle {
    fn load(&self, opts: LoadOptions) -> StoreFuture<'static, Result<Loaded, ReadError>> {
        SqliteHandle::read(&self.inner.history, move |r| r.load(&opts))
    }

    fn accounts(&self) -> StoreFuture<'static, Result<Vec<LoadedAccount>, ReadError>> {
        SqliteHandle::read(&self.inner.history, Reader::accounts)
    }

    fn try_submit(&self, batch: Batch) -> Result<(), SubmitError> {
        let writer = lock(&self.inner.writer);
        let Some(tx) = writer.as_ref() else {
            return Err(SubmitError::Closed(batch));
        };
        if !self.inner.slots.try_take() {
            return Err(SubmitError::Full(batch));
        }
        match tx.send(Cmd::Batch(batch)) {
            Ok(()) => Ok(()),
            Err(std::sync::mpsc::SendError(cmd)) => {
                self.inner.slots.give_back();
                match cmd {
                    Cmd::Batch(batch) => Err(SubmitError::Closed(batch)),
                    _ => unreachable!("the command sent was a batch"),
                }
            }
        }
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.inner.slots.ready())
    }

    fn history(&self, q: HistoryQuery) -> StoreFuture<'static, Result<HistoryPage, ReadError>> {
        SqliteHandle::read(&self.inner.history, move |r| r.history(&q))
    }

    fn search(&self, q: SearchQuery) -> StoreFuture<'static, Result<Vec<RoomEvent>, ReadError>> {
        let index = lock(&self.inner.index).clone();
        let progress = Arc::clone(&self.inner.progress);
        SqliteHandle::read(&self.inner.search, move |r| {
            // The lines durable now may not be indexed yet: the index thread indexes them
            // first (or, if it is held up, the search runs on what is indexed).
            let upto = progress.stored.load(std::sync::atomic::Ordering::Acquire);
            if progress.indexed() < upto
                && let Some(index) = index
                && index.send(IndexCmd::Hurry).is_ok()
            {
                progress.wait_for(upto, SEARCH_CATCH_UP_WAIT);
            }
            r.search(&q)
        })
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        let writer = lock(&self.inner.writer).take();
        lock(&self.inner.history).take();
        lock(&self.inner.search).take();
        lock(&self.inner.index).take();
        lock(&self.inner.checkpoints).take();
        let threads = std::mem::take(&mut *lock(&self.inner.threads));
        self.inner.slots.close();
        Box::pin(async move {
            let Some(writer) = writer else {
                return;
            };
            // Their channels gone, the readers finish the reads queued and end, and the
            // checkpoint thread ends: their connections close before the writer's, the last.
            let (joined, all_joined) = oneshot::channel();
            let joiner = std::thread::Builder::new()
                .name("natter-store-close".into())
                .spawn(move || {
                    for t in threads {
                        let _ = t.join();
                    }
                    let _ = joined.send(());
                });
            if joiner.is_ok() {
                let _ = all_joined.await;
            }
            let (tx, rx) = oneshot::channel();
            if writer.send(Cmd::Close(tx)).is_ok() {
                let _ = rx.await;
            }
        })
    }
}

/// The writer thread: commits groups of batches, reports them, prunes when nothing waits (and
/// after a commit when pruning is due, so a store that is never idle is still pruned).
fn write_loop(mut store: SqliteStore, rx: &Receiver<Cmd>, reporter: &Reporter) {
    let mut next: Option<Cmd> = None;
    let mut streaks = Streaks::default();
    let closed = loop {
        let cmd = match next.take() {
            Some(cmd) => cmd,
            None => match wait(&mut store, rx, &mut streaks) {
                Some(cmd) => cmd,
                None => break None,
            },
        };
        match cmd {
            Cmd::Batch(first) => {
                // Lets a busy hub hand over the batches it is making before this one commits
                // alone: the thread sharing this core with the hub runs on, and the group
                // (and its one commit) grows. With a core to spare, it returns at once.
                std::thread::yield_now();
                let mut writes = first.writes.len();
                let mut group = vec![first];
                while group.len() < GROUP_MAX_BATCHES && writes < GROUP_MAX_WRITES {
                    match rx.try_recv() {
                        Ok(Cmd::Batch(b)) => {
                            writes += b.writes.len();
                            group.push(b);
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit(&mut store, group, reporter, &mut streaks.commit);
                if store.fold_due() {
                    fold(&mut store, &mut streaks);
                }
                if store.prune_due() {
                    prune(&mut store, &mut streaks);
                }
            }
            Cmd::Close(done) => break Some(done),
            #[cfg(test)]
            Cmd::Sql(sql) => {
                if let Err(e) = store.conn.execute_batch(&sql) {
                    error!(%sql, error = %e, "test SQL failed");
                }
            }
        }
    };
    // A clean stop leaves the last ids folded (else the next open does it); dropping the store
    // closes the search index cleanly (its thread catches up first).
    fold(&mut store, &mut streaks);
    // The store (and its lock) go before anyone is told it is closed.
    drop(store);
    if let Some(done) = closed {
        let _ = done.send(());
    }
}

/// The next command; prunes while none comes and pruning is due. `None` when every handle is
/// gone.
fn wait(store: &mut SqliteStore, rx: &Receiver<Cmd>, streaks: &mut Streaks) -> Option<Cmd> {
    loop {
        if store.prune_due() {
            match rx.try_recv() {
                Ok(cmd) => return Some(cmd),
                Err(TryRecvError::Empty) => {
                    prune(store, streaks);
                    continue;
                }
                Err(TryRecvError::Disconnected) => return None,
            }
        }
        match rx.recv_timeout(PRUNE_CHECK_EVERY) {
            Ok(cmd) => return Some(cmd),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// The writer thread's work that fails again and again while its cause lasts (a full disk):
/// each streak is logged once ([`Failing`]).
#[derive(Debug, Default)]
struct Streaks {
    commit: Failing,
    fold: Failing,
    prune: Failing,
}

fn fold(store: &mut SqliteStore, streaks: &mut Streaks) {
    let folded = store.fold_session_ids();
    streaks
        .fold
        .note("store: folding sessions' last ids", &folded);
}

fn prune(store: &mut SqliteStore, streaks: &mut Streaks) {
    let pruned = store.prune_step(unix_now());
    streaks.prune.note("retention: pruning", &pruned);
}

/// Writes `group` in one transaction; if that fails, each batch alone, so only the batches
/// that cannot be written fail. Reports in submission order.
fn commit(store: &mut SqliteStore, group: Vec<Batch>, reporter: &Reporter, streak: &mut Failing) {
    const WHAT: &str = "store: writing messages";
    let Some(last) = group.last().map(|b| b.id) else {
        return;
    };
    let n = group.len();
    let err = match store.write_group(&group) {
        Ok(()) => {
            streak.note::<_, WriteError>(WHAT, &Ok(()));
            reporter.stale(store.take_stale());
            return reporter.durable(last, n);
        }
        Err(e) => e,
    };
    if n == 1 {
        debug!(batch = last.0, error = %err, "store: batch not written");
        streak.note::<(), _>(WHAT, &Err(&err));
        return reporter.failed(last, err);
    }
    // Consecutive durable batches are reported together.
    let mut durable: Option<(crate::BatchId, usize)> = None;
    for batch in &group {
        let written = store.write(batch);
        streak.note(WHAT, &written);
        match written {
            Ok(()) => {
                // Said before the durable report that covers this batch.
                reporter.stale(store.take_stale());
                let count = durable.map_or(0, |(_, c)| c);
                durable = Some((batch.id, count + 1));
            }
            Err(e) => {
                if let Some((upto, count)) = durable.take() {
                    reporter.durable(upto, count);
                }
                debug!(batch = batch.id.0, error = %e, "store: batch not written");
                reporter.failed(batch.id, e);
            }
        }
    }
    if let Some((upto, count)) = durable {
        reporter.durable(upto, count);
    }
}

type Job = Box<dyn FnOnce(&mut Reader) + Send>;

/// A pool of reader threads sharing one bounded queue of jobs.
struct Lane {
    tx: SyncSender<Job>,
}

impl Lane {
    /// Starts a thread per reader; their handles go in `threads`.
    fn start(
        name: &str,
        readers: Vec<Reader>,
        config: &Config,
        threads: &mut Vec<std::thread::JoinHandle<()>>,
    ) -> Lane {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(config.max_queued_reads.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for (i, mut reader) in readers.into_iter().enumerate() {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("natter-store-{name}-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = lock(&rx).recv();
                        match job {
                            Ok(job) => job(&mut reader),
                            Err(_) => break,
                        }
                    }
                });
            match spawned {
                Ok(t) => threads.push(t),
                // The lane works with the threads it has; with none, its reads fail as closed.
                Err(e) => error!(lane = name, error = %e, "could not start a reader thread"),
            }
        }
        Lane { tx }
    }

    /// Queues `job`; the receiver gets its result.
    fn queue<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Reader) -> Result<T, ReadError> + Send + 'static,
    ) -> Result<oneshot::Receiver<Result<T, ReadError>>, ReadError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |reader| {
            let _ = tx.send(job(reader));
        });
        match self.tx.try_send(job) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(ReadError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(ReadError::Closed),
        }
    }
}

#[cfg(test)]
mod tests;
