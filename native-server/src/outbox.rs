//! A connection's outbound bytes on their way from the hub task to the connection task, without
//! a channel message or a wakeup per frame: the hub task appends each frame to one shared buffer
//! and wakes the connection only when that buffer was empty; the connection takes the whole
//! buffer at once (handing back the one it has written) and writes it as one contiguous chunk.
//!
//! The buffer is bounded by the hub, not here: bytes appended count against the connection's
//! outbound limit (`Config::outbound_max_bytes`) until the connection reports them written.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// Capacity reserved at the first append after an idle spell, so a burst of small frames does
/// not grow the buffer by many small reallocations.
const FIRST_CAPACITY: usize = 4096;

/// Shared by the hub task (appends, closes) and one connection task (takes).
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    buf: Vec<u8>,
    closing: bool,
    /// The connection task, waiting for bytes or the close; woken when bytes arrive in an empty
    /// buffer, and on close.
    waker: Option<Waker>,
}

impl Outbox {
    /// Appends one frame. Ignored once closing: nothing after a close is written.
    pub(crate) fn push(&self, data: &[u8]) {
        let mut st = self.lock();
        if st.closing || data.is_empty() {
            return;
        }
        let was_empty = st.buf.is_empty();
        if st.buf.capacity() == 0 {
            st.buf.reserve(FIRST_CAPACITY.max(data.len()));
        }
        st.buf.extend_from_slice(data);
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

    /// Swaps `out` (whose bytes have all been written) for what was appended since the last
    /// take, and says whether the connection is closing. When nothing was appended, the
    /// connection has caught up: both buffers are released, so an idle connection holds none.
    pub(crate) fn take(&self, out: &mut Vec<u8>) -> bool {
        out.clear();
        let mut st = self.lock();
        std::mem::swap(out, &mut st.buf);
        let closing = st.closing;
        let spare = out.is_empty().then(|| std::mem::take(&mut st.buf));
        drop(st);
        if spare.is_some() {
            *out = Vec::new();
        }
        closing
    }

    /// Ready when there are bytes to take or the outbox is closing; otherwise the task is woken
    /// when that changes. The check and the waker's registration share the lock with `push`
    /// and `close`, so no wakeup is lost.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.lock();
        if !st.buf.is_empty() || st.closing {
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

    #[test]
    fn take_hands_over_everything_in_order_and_releases_when_caught_up() {
        let ob = Outbox::default();
        ob.push(b"ab");
        ob.push(b"");
        ob.push(b"cde");
        let mut out = Vec::new();
        assert!(!ob.take(&mut out));
        assert_eq!(out, b"abcde");
        ob.push(b"f");
        assert!(!ob.take(&mut out));
        assert_eq!(out, b"f");
        assert!(out.capacity() >= FIRST_CAPACITY, "reused while busy");
        assert!(!ob.take(&mut out));
        assert!(out.is_empty());
        assert_eq!(out.capacity(), 0, "caught up: no buffer kept");
        assert_eq!(ob.lock().buf.capacity(), 0, "caught up: no buffer kept");
    }

    #[test]
    fn close_keeps_what_came_before_and_drops_what_comes_after() {
        let ob = Outbox::default();
        ob.push(b"last words");
        ob.close();
        ob.push(b"too late");
        let mut out = Vec::new();
        assert!(ob.take(&mut out));
        assert_eq!(out, b"last words");
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
                    if !out.is_empty() {
                        return out;
                    }
                    std::future::poll_fn(|cx| ob.poll_ready(cx)).await;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        ob.push(b"x");
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the taker was not woken")
            .expect("taker panicked");
        assert_eq!(got, b"x");
    }
}
