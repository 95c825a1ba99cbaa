//! A connection's outbound bytes on their way from the hub task to the connection task, without
//! a channel message or a wakeup per frame: the hub hands over one transmit per connection per
//! cycle (every message it queued for it, in a few pieces: consecutive broadcast frames are one
//! slice of a buffer all members share); the hub task appends the pieces here and wakes the
//! connection only when the outbox was empty; the connection takes all pieces at once and
//! writes them with vectored writes.
//!
//! The buffers are bounded by the hub, not here: bytes appended count against the connection's
//! outbound limit (`Config::outbound_max_bytes`) until the connection reports them written.
//!
//! The other way, it holds the connection's read turn: a connection has at most one read in the
//! hub's queue (which all connections share) at a time, and reads again once the hub has taken
//! it ([`Outbox::read_sent`], [`Outbox::read_handled`], [`Outbox::poll_read_turn`]). A client
//! that sends faster than the hub takes its input then waits in its own socket, where TCP pushes
//! back on it, instead of filling the queue ahead of everyone else: each hub cycle takes at most
//! one read from each connection, round robin.

use bytes::Bytes;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// Shared by the hub task (appends, closes) and one connection task (takes and reads: the same
/// task waits for bytes and for its read turn, so one waker serves both).
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    bufs: Vec<Bytes>,
    closing: bool,
    /// A read of this connection is in the hub's queue.
    read_queued: bool,
    /// The connection task, waiting for bytes, the close or its read turn; woken when bytes
    /// arrive in an empty outbox, when the hub has taken the read, and on close. One waker for
    /// both waits: they are the same task's (16 bytes less per idle connection, issue 22).
    waker: Option<Waker>,
}

impl Outbox {
    /// Appends a transmit's pieces (whole messages). Ignored once closing: nothing after a
    /// close is written.
    pub(crate) fn push(&self, data: Vec<Bytes>) {
        let mut st = self.lock();
        if st.closing || data.is_empty() {
            return;
        }
        let was_empty = st.bufs.is_empty();
        if was_empty {
            st.bufs = data;
        } else {
            st.bufs.extend(data);
        }
        let waker = if was_empty { st.waker.take() } else { None };
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The connection is to finish writing what was appended so far, then close.
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.closing = true;
        // Nothing read from now on goes to the hub: the read turn no longer matters.
        st.read_queued = false;
        let waker = st.waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The connection task has put a read in the hub's queue: its next read waits for
    /// [`Outbox::read_handled`].
    pub(crate) fn read_sent(&self) {
        let mut st = self.lock();
        if !st.closing {
            st.read_queued = true;
        }
    }

    /// The hub task has taken the connection's read from its queue: the connection may read
    /// again.
    pub(crate) fn read_handled(&self) {
        let mut st = self.lock();
        st.read_queued = false;
        let waker = st.waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Ready when the connection may read (no read of its own waits in the hub's queue);
    /// otherwise the task is woken when it may.
    pub(crate) fn poll_read_turn(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.lock();
        if !st.read_queued {
            return Poll::Ready(());
        }
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Whether the hub has closed it.
    pub(crate) fn is_closing(&self) -> bool {
        self.lock().closing
    }

    /// Replaces `out` (whose bytes have all been written) with the pieces appended since the
    /// last take, in order, and says whether the connection is closing. A connection that has
    /// caught up holds no buffer.
    pub(crate) fn take(&self, out: &mut Vec<Bytes>) -> bool {
        let mut st = self.lock();
        let next = std::mem::take(&mut st.bufs);
        let closing = st.closing;
        drop(st);
        *out = next;
        closing
    }

    /// Ready when there are bytes to take or the outbox is closing; otherwise the task is woken
    /// when that changes. The check and the waker's registration share the lock with `push`
    /// and `close`, so no wakeup is lost.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.lock();
        if !st.bufs.is_empty() || st.closing {
            return Poll::Ready(());
        }
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Never panics: a panic while holding the lock leaves a valid `Vec` and `bool`.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pieces(p: &[&'static str]) -> Vec<Bytes> {
        p.iter().map(|s| Bytes::from_static(s.as_bytes())).collect()
    }

    #[test]
    fn take_hands_over_everything_in_order_and_releases_when_caught_up() {
        let ob = Outbox::default();
        ob.push(pieces(&["ab", "c"]));
        ob.push(Vec::new());
        ob.push(pieces(&["de"]));
        let mut out = Vec::new();
        assert!(!ob.take(&mut out));
        assert_eq!(out, pieces(&["ab", "c", "de"]));
        ob.push(pieces(&["f"]));
        assert!(!ob.take(&mut out));
        assert_eq!(out, pieces(&["f"]));
        assert!(!ob.take(&mut out));
        assert!(out.is_empty());
        assert_eq!(out.capacity(), 0, "caught up: no buffer kept");
        assert_eq!(ob.lock().bufs.capacity(), 0, "caught up: no buffer kept");
    }

    #[test]
    fn close_keeps_what_came_before_and_drops_what_comes_after() {
        let ob = Outbox::default();
        ob.push(pieces(&["last words"]));
        ob.close();
        ob.push(pieces(&["too late"]));
        let mut out = Vec::new();
        assert!(ob.take(&mut out));
        assert_eq!(out, pieces(&["last words"]));
        assert!(ob.take(&mut out));
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn one_read_in_the_hub_at_a_time() {
        let ob = std::sync::Arc::new(Outbox::default());
        let turn = |ob: &Outbox| {
            let mut cx = Context::from_waker(Waker::noop());
            ob.poll_read_turn(&mut cx).is_ready()
        };
        assert!(turn(&ob), "nothing queued: may read");
        ob.read_sent();
        assert!(!turn(&ob), "a read waits in the hub's queue");
        // A task waiting for its turn is woken when the hub takes the read.
        let waiter = tokio::spawn({
            let ob = ob.clone();
            async move { std::future::poll_fn(|cx| ob.poll_read_turn(cx)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        ob.read_handled();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the reader was not woken")
            .expect("reader panicked");
        assert!(turn(&ob));
        // Closing gives the turn back for good: nothing read after it goes to the hub.
        ob.read_sent();
        ob.close();
        assert!(turn(&ob));
        ob.read_sent();
        assert!(turn(&ob));
    }

    #[tokio::test]
    async fn an_append_to_an_empty_buffer_wakes_the_taker() {
        let ob = std::sync::Arc::new(Outbox::default());
        let waiter = tokio::spawn({
            let ob = ob.clone();
            async move {
                let mut out = Vec::new();
                loop {
                    ob.take(&mut out);
                    if let Some(first) = out.pop() {
                        return first;
                    }
                    std::future::poll_fn(|cx| ob.poll_ready(cx)).await;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        ob.push(pieces(&["x"]));
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the taker was not woken")
            .expect("taker panicked");
        assert_eq!(got, &b"x"[..]);
    }

    /// One task waits for bytes and for its read turn at once (as the connection task does),
    /// with one waker slot: either event wakes it.
    #[tokio::test]
    async fn one_waker_serves_both_waits() {
        for bytes_first in [true, false] {
            let ob = std::sync::Arc::new(Outbox::default());
            ob.read_sent();
            let waiter = tokio::spawn({
                let ob = ob.clone();
                async move {
                    std::future::poll_fn(|cx| {
                        let turn = ob.poll_read_turn(cx).is_ready();
                        let bytes = ob.poll_ready(cx).is_ready();
                        if turn || bytes {
                            Poll::Ready((turn, bytes))
                        } else {
                            Poll::Pending
                        }
                    })
                    .await
                }
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!waiter.is_finished());
            if bytes_first {
                ob.push(pieces(&["x"]));
            } else {
                ob.read_handled();
            }
            let (turn, bytes) = tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("the task was not woken")
                .expect("task panicked");
            assert_eq!((turn, bytes), (!bytes_first, bytes_first));
        }
    }
}
