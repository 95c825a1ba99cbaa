//! The [`Store`] trait: what a shell (natter-server's hub task) needs of any store, so a second
//! backend (a cluster engine) can be added without touching the hub. Writes are batches handed
//! over without waiting; their outcomes come back, in order, as [`Report`]s. Reads are futures.
//!
//! Batches in flight are bounded: a batch takes a slot when submitted and gives it back when
//! its report has been received, so the queue, the reports not yet read and the memory they
//! hold never grow past [`crate::Config::max_in_flight`] batches.

use crate::{
    Batch, BatchId, HistoryPage, HistoryQuery, LoadOptions, Loaded, LoadedAccount, ReadError,
    SearchQuery, SubmitError, WriteError,
};
use natter_core::wire::RoomEvent;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc};

/// A boxed future, so [`Store`] can be used as `dyn Store`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A durable store of rooms, history and sessions.
///
/// A shell drives it like this (all in one `select!` loop):
/// - at startup, [`Store::load`] once, before anything else;
/// - for every batch the hub hands out, [`Store::try_submit`]; if it is full, keep the batch and
///   wait for [`Store::ready`] *in the same `select!` as [`Reports::recv`]* (the slots come back
///   as reports are received, so waiting for `ready` alone can wait for ever);
/// - every [`Report`] received goes back to the hub: what is durable may now be delivered,
///   what failed is refused to its senders;
/// - history and search requests are futures of their own, spawned or polled beside the rest;
///   they never wait for writes, and searches never wait for history pages.
pub trait Store: Send + Sync {
    /// Rooms, sessions and recent events, for a hub starting up (see [`LoadOptions`]).
    fn load(&self, opts: LoadOptions) -> StoreFuture<'static, Result<Loaded, ReadError>>;

    /// Every account as stored now, with its rooms, read markers and device keys: for a running
    /// server reloading its accounts (`natter-server account …` writes beside it).
    fn accounts(&self) -> StoreFuture<'static, Result<Vec<LoadedAccount>, ReadError>>;

    /// Queues `batch` for writing without waiting. Its outcome arrives later as a [`Report`].
    fn try_submit(&self, batch: Batch) -> Result<(), SubmitError>;

    /// Resolves when [`Store::try_submit`] would take a batch (or the store is closed, which
    /// `try_submit` then says). Cancel-safe: it holds nothing.
    fn ready(&self) -> StoreFuture<'_, ()>;

    /// A page of a room's history.
    fn history(&self, q: HistoryQuery) -> StoreFuture<'static, Result<HistoryPage, ReadError>>;

    /// Chat lines holding the words of `q`, newest first.
    fn search(&self, q: SearchQuery) -> StoreFuture<'static, Result<Vec<RoomEvent>, ReadError>>;

    /// Writes what is queued (its reports still arrive), then stops: later submits and reads
    /// fail with "closed". Resolves once the store is closed (its files released).
    fn close(&self) -> StoreFuture<'_, ()>;
}

/// The outcome of submitted batches, in the order they were submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Every batch submitted up to and including `upto`, and not reported [`Report::Failed`],
    /// is durable (see [`crate::Synchronous`] for against what).
    Durable {
        /// The last batch this report covers.
        upto: BatchId,
    },
    /// The server's writes of these accounts, in the batches the next [`Report::Durable`]
    /// covers, were not applied: the operator changed each since the server last held it
    /// (`natter-server account passwd`, `remove`, or `add` of a name the server registered
    /// meanwhile), and the operator's word stands. The server holds them otherwise than the
    /// store does (a registration among those writes was not made): it should read its
    /// accounts again. Comes before that report.
    Stale {
        /// The accounts, each once.
        accounts: Vec<natter_core::Nick>,
    },
    /// Nothing of this batch was stored; batches before and after it are not affected.
    Failed {
        /// The batch.
        batch: BatchId,
        /// Why.
        error: WriteError,
    },
}

/// Where a shell receives [`Report`]s. Receiving one gives its batches' slots back.
pub struct Reports {
    rx: mpsc::UnboundedReceiver<(Report, usize)>,
    slots: Arc<Semaphore>,
}

impl Reports {
    /// The next report; `None` once the store is closed and every report has been received.
    /// Cancel-safe.
    pub async fn recv(&mut self) -> Option<Report> {
        let (report, batches) = self.rx.recv().await?;
        self.slots.add_permits(batches);
        Some(report)
    }

    /// The next report if one is there.
    pub fn try_recv(&mut self) -> Option<Report> {
        let (report, batches) = self.rx.try_recv().ok()?;
        self.slots.add_permits(batches);
        Some(report)
    }
}

/// A backend's sending half of [`Reports`].
#[derive(Clone)]
pub struct Reporter {
    tx: mpsc::UnboundedSender<(Report, usize)>,
}

impl Reporter {
    /// Reports `batches` batches, the last of which is `upto`, durable.
    pub fn durable(&self, upto: BatchId, batches: usize) {
        // A shell that dropped its `Reports` no longer wants them.
        let _ = self.tx.send((Report::Durable { upto }, batches));
    }

    /// Reports that the server's writes of `accounts` in the batches reported durable next were
    /// not applied ([`Report::Stale`]); nothing if there are none.
    pub fn stale(&self, accounts: Vec<natter_core::Nick>) {
        if !accounts.is_empty() {
            let _ = self.tx.send((Report::Stale { accounts }, 0));
        }
    }

    /// Reports `batch` failed.
    pub fn failed(&self, batch: BatchId, error: WriteError) {
        let _ = self.tx.send((Report::Failed { batch, error }, 1));
    }
}

/// A backend's count of batches in flight: [`Slots::try_take`] on submit; the slot comes back
/// when the batch's report is received from [`Reports`].
#[derive(Clone)]
pub struct Slots {
    sem: Arc<Semaphore>,
}

impl Slots {
    /// Takes a slot for one batch, if one is free.
    pub fn try_take(&self) -> bool {
        match self.sem.try_acquire() {
            Ok(permit) => {
                // Given back by `Reports` when the batch's report is received.
                permit.forget();
                true
            }
            Err(_) => false,
        }
    }

    /// Gives back a slot taken for a batch that was not submitted after all.
    pub fn give_back(&self) {
        self.sem.add_permits(1);
    }

    /// Resolves when a slot is free or the slots are closed.
    pub async fn ready(&self) {
        // The permit is dropped at once: this only waits.
        let _ = self.sem.acquire().await;
    }

    /// Wakes every waiter of [`Slots::ready`] for good.
    pub fn close(&self) {
        self.sem.close();
    }
}

/// The slots and report channel of a backend allowing `max` batches in flight.
pub fn in_flight(max: usize) -> (Slots, Reporter, Reports) {
    let sem = Arc::new(Semaphore::new(max.max(1)));
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Slots { sem: sem.clone() },
        Reporter { tx },
        Reports { rx, slots: sem },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_come_back_when_reports_are_received() {
        let (slots, reporter, mut reports) = in_flight(2);
        assert!(slots.try_take());
        assert!(slots.try_take());
        assert!(!slots.try_take(), "two batches in flight at most");
        reporter.durable(BatchId(2), 2);
        assert!(
            !slots.try_take(),
            "a report not yet received still holds its slots"
        );
        assert_eq!(
            reports.try_recv(),
            Some(Report::Durable { upto: BatchId(2) })
        );
        assert!(slots.try_take());
        assert!(slots.try_take());
        assert!(!slots.try_take());
        reporter.failed(BatchId(3), WriteError::DiskFull);
        assert!(reports.try_recv().is_some());
        assert!(slots.try_take());
        assert_eq!(reports.try_recv(), None);
    }
}
