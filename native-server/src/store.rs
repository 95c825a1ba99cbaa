//! The hub task's side of the durable store (natter-store): the batches the hub hands out go to
//! the store without waiting, the store's reports go back to the hub (what was durable goes out,
//! what failed is refused to its senders), and reads (history pages, searches) run as tasks of
//! their own whose answers come back to the hub. The hub never waits for the disk.
//!
//! When the store has as many batches in flight as it takes, the batches wait here (in order)
//! and the hub task stops taking new input until the store has room: back-pressure reaches the
//! sockets instead of memory growing.

use crate::metrics::Health;
use natter_core::Millis;
use natter_core::hub::Hub;
use natter_core::persist::{
    Answer, Batch, BatchId, LoadedAccount, LoadedRoom, Query, QueryId, Write,
};
use natter_ops::AtomicHistogram;
use natter_store::{
    LoadOptions, ReadError, RecentRooms, Report, Reports, Store, StoreFuture, SubmitError,
};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::{debug, info};

/// The store, its reports, and the reads in flight.
pub(crate) struct StoreSide {
    store: Arc<dyn Store>,
    reports: Reports,
    /// Batches the store could not take yet, oldest first.
    waiting: VecDeque<Batch>,
    answers_tx: mpsc::UnboundedSender<(QueryId, Answer)>,
    answers_rx: mpsc::UnboundedReceiver<(QueryId, Answer)>,
    /// Batches submitted and not yet reported, oldest first, with when (bounded by the store's
    /// batches in flight).
    /// And whether it holds messages (room events): only a stored message shows, after a
    /// failure, that the store works again (see [`StoreSide::apply`]).
    submitted: VecDeque<(BatchId, Instant, bool)>,
    /// Where commit latencies go, with metrics on.
    commit_time: Option<AtomicHistogram>,
    /// Told whether the last write was durable, for `/readyz`.
    health: Arc<Health>,
}

/// What happened on the store's side, for the hub task's loop.
pub(crate) enum StoreEvent {
    Report(Report),
    Answer(QueryId, Answer),
    /// The store has room for the batches waiting here.
    Ready,
    /// The store is gone (its reports ended).
    Gone,
}

impl StoreSide {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        reports: Reports,
        commit_time: Option<AtomicHistogram>,
        health: Arc<Health>,
    ) -> StoreSide {
        // Unbounded, but the hub bounds the reads it has out (MAX_QUERIES_IN_FLIGHT).
        let (answers_tx, answers_rx) = mpsc::unbounded_channel();
        StoreSide {
            store,
            reports,
            waiting: VecDeque::new(),
            answers_tx,
            answers_rx,
            submitted: VecDeque::new(),
            commit_time,
            health,
        }
    }

    /// Batches handed to the store or waiting for it, not yet reported.
    pub(crate) fn queue_depth(&self) -> usize {
        self.waiting.len() + self.submitted.len()
    }

    /// Batches are waiting for room in the store: take no new input.
    pub(crate) fn backed_up(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Every account as stored now, with its rooms, read markers and device keys, including
    /// what `natter-server account …` wrote since the server started: for reloading accounts on
    /// SIGHUP. The future borrows nothing, so it can be spawned or selected on beside the
    /// store's events; it reads on the store's reader threads, never on the hub's.
    pub(crate) fn load_accounts(
        &self,
    ) -> StoreFuture<'static, Result<Vec<LoadedAccount>, ReadError>> {
        self.store.accounts()
    }

    /// Hands the hub's batches to the store, and starts the hub's reads.
    pub(crate) fn pump(&mut self, hub: &mut Hub, now: Millis) {
        while let Some(b) = hub.poll_store() {
            self.waiting.push_back(b);
        }
        self.submit_waiting(hub, now);
        while let Some((id, q)) = hub.poll_query() {
            let store = self.store.clone();
            let tx = self.answers_tx.clone();
            tokio::spawn(async move {
                let answer = match q {
                    Query::History(h) => {
                        Answer::History(store.history(h).await.map_err(|e| e.to_string()))
                    }
                    Query::Search(s) => {
                        Answer::Search(store.search(s).await.map_err(|e| e.to_string()))
                    }
                };
                // The hub task is gone when this fails: nobody waits for the answer.
                let _ = tx.send((id, answer));
            });
        }
    }

    fn submit_waiting(&mut self, hub: &mut Hub, now: Millis) {
        while let Some(b) = self.waiting.pop_front() {
            let id = b.id;
            let events = b.writes.iter().any(|w| matches!(w, Write::Event(_)));
            match self.store.try_submit(b) {
                Ok(()) => self.submitted.push_back((id, Instant::now(), events)),
                Err(SubmitError::Full(b)) => {
                    self.waiting.push_front(b);
                    return;
                }
                Err(SubmitError::Closed(b)) => {
                    hub.handle_store_failed(b.id, "the server's store is closed", now);
                }
            }
        }
    }

    /// The next thing the store has to say; pends for ever if nothing will come.
    pub(crate) async fn next(&mut self) -> StoreEvent {
        let backed_up = !self.waiting.is_empty();
        tokio::select! {
            r = self.reports.recv() => match r {
                Some(r) => StoreEvent::Report(r),
                None => StoreEvent::Gone,
            },
            Some((id, a)) = self.answers_rx.recv() => StoreEvent::Answer(id, a),
            () = self.store.ready(), if backed_up => StoreEvent::Ready,
        }
    }

    /// Applies a store event to the hub.
    pub(crate) fn apply(&mut self, ev: StoreEvent, hub: &mut Hub, now: Millis) -> bool {
        match ev {
            StoreEvent::Report(Report::Durable { upto }) => {
                let mut messages = false;
                while let Some(&(id, at, events)) = self.submitted.front()
                    && id <= upto
                {
                    self.submitted.pop_front();
                    messages |= events;
                    if let Some(h) = &self.commit_time {
                        h.observe(at.elapsed());
                    }
                }
                // After a failure, only stored messages make the store ready again: a small
                // batch without any (what a failed one held, written again at once) may get
                // through a disk that still refuses every line (`/readyz` probes a full
                // disk's room meanwhile).
                if messages {
                    self.health.store_ok.store(true, Ordering::Relaxed);
                    self.health.disk_full.store(false, Ordering::Relaxed);
                }
                hub.handle_durable(upto, now);
            }
            StoreEvent::Report(Report::Stale { accounts }) => {
                // Before the durable report of the same batches, as the hub wants it.
                hub.handle_stale_accounts(&accounts, now);
            }
            StoreEvent::Report(Report::Failed { batch, error }) => {
                self.submitted.retain(|(id, ..)| *id != batch);
                self.health.store_ok.store(false, Ordering::Relaxed);
                let full = matches!(error, natter_store::WriteError::DiskFull);
                self.health.disk_full.store(full, Ordering::Relaxed);
                // The store logs a streak of failures once (a full disk fails every batch).
                debug!(%batch, %error, "a batch was not stored");
                hub.handle_store_failed(batch, &error.to_string(), now);
            }
            StoreEvent::Answer(id, a) => hub.handle_answer(id, a, now),
            StoreEvent::Ready => self.submit_waiting(hub, now),
            StoreEvent::Gone => {
                self.health.store_ok.store(false, Ordering::Relaxed);
                self.health.disk_full.store(false, Ordering::Relaxed);
                return false;
            }
        }
        true
    }

    /// Writes what is waiting and closes the store (its files are released).
    pub(crate) async fn close(mut self, hub: &mut Hub, now: Millis) {
        while let Some(b) = hub.poll_store() {
            self.waiting.push_back(b);
        }
        while !self.waiting.is_empty() {
            self.submit_waiting(hub, now);
            if self.waiting.is_empty() {
                break;
            }
            tokio::select! {
                () = self.store.ready() => {}
                r = self.reports.recv() => if r.is_none() { break },
            }
        }
        self.store.close().await;
        info!("store closed");
    }
}

/// What a hub needs at startup: every room (its recent events as far as the join replay shows
/// them) and every resume session kept. The hub ends a session's record when its user quits or
/// its grace runs out, so those kept are of users who were connected when the server stopped
/// (or dropped within their grace): each may resume for the grace again, counted from now. A
/// record's time is when it last changed, not when its user was last connected: someone who
/// reads without writing for longer than the grace was connected all the same.
pub(crate) fn load_options(history_on_join: usize) -> LoadOptions {
    LoadOptions {
        recent: history_on_join,
        recent_rooms: RecentRooms::All,
        sessions_since: Millis(0),
    }
}

/// Rooms and sessions loaded, for the log.
pub(crate) fn describe(rooms: &[LoadedRoom], sessions: usize) -> String {
    let events: usize = rooms.iter().map(|r| r.recent.len()).sum();
    format!(
        "{} rooms ({events} recent events), {sessions} sessions",
        rooms.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::Nick;
    use natter_core::accounts::PasswordHash;
    use natter_core::persist::{AccountRecord, BatchId, Write};
    use natter_store::{AccountStore, Config, SqliteHandle};

    #[tokio::test]
    async fn load_accounts_sees_what_the_operator_wrote_after_startup() {
        let dir = tempfile::tempdir().unwrap();
        let (handle, reports) = SqliteHandle::open(&Config::new(dir.path())).unwrap();
        let side = StoreSide::new(
            Arc::new(handle),
            reports,
            None,
            Arc::new(crate::metrics::Health::new(None)),
        );
        assert!(side.load_accounts().await.unwrap().is_empty());
        let mut admin = AccountStore::open(&Config::new(dir.path())).unwrap();
        let record = AccountRecord {
            name: Nick::new("frank").unwrap(),
            hash: PasswordHash("$argon2id$f".into()),
            created: Millis(2),
        };
        admin
            .write(&Batch {
                id: BatchId(0),
                writes: vec![Write::Account(record.clone())],
            })
            .unwrap();
        let got = side.load_accounts().await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].record, record);
    }
}
