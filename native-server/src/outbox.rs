//! A connection's outbound bytes on their way from the hub task to the connection task, without
//! a channel message or a wakeup per frame: the hub hands over one transmit per connection per
//! cycle (every message it queued for it, in a few pieces: consecutive broadcast frames are one
//! slice of a buffer all members share); the hub task appends the pieces here and wakes the
//! connection only when the outbox was empty; the connection takes all pieces at once and
//! writes them with vectored writes.
//!
//! The buffers are bounded by the hub, not here: bytes appended count against the connection's
//! outbound limit (`Config::outbound_max_bytes`) until the connection reports them written.

use bytes::Bytes;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// Shared by the hub task (appends, closes) and one connection task (takes).
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    bufs: Vec<Bytes>,
    closing: bool,
    /// The connection task, waiting for bytes or the close; woken when bytes arrive in an empty
    /// outbox, and on close.
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
        let waker = st.waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
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
}
