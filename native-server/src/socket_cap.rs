//! The file-descriptor backstop: sockets open at once, at most. It follows `max_connections`,
//! also when a reload changes that while connections are open, so its size is kept with the
//! places not yet taken back: a shrink takes the free places now and each one in use as its
//! socket closes, and a later growth first forgives what is still owed.
//!
//! A bare `Semaphore` cannot do that: `forget_permits` takes only the free permits, and the ones
//! in use came back when their sockets closed, so a shrink under load never reached its size,
//! and a growth after it added on top of those (the cap drifted up at each such reload).

use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// The cap, shared by the accept loops and the [`Place`]s they hand out.
#[derive(Debug)]
pub(crate) struct SocketCap {
    free: Semaphore,
    sizes: Mutex<Sizes>,
}

/// The cap's size, and the places in use still to be taken back when they are given back (a
/// shrink's remainder).
#[derive(Debug)]
struct Sizes {
    size: usize,
    owed: usize,
}

/// One socket's place under the cap, given back when dropped.
#[derive(Debug)]
pub(crate) struct Place(Arc<SocketCap>);

impl SocketCap {
    pub(crate) fn new(size: usize) -> Arc<SocketCap> {
        let size = size.min(Semaphore::MAX_PERMITS);
        Arc::new(SocketCap {
            free: Semaphore::new(size),
            sizes: Mutex::new(Sizes { size, owed: 0 }),
        })
    }

    /// Waits for a free place.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Place {
        self.free
            .acquire()
            .await
            // The semaphore is never closed: nothing calls `close` on it.
            .expect("the socket cap's semaphore is never closed")
            .forget();
        Place(Arc::clone(self))
    }

    /// Makes the cap `size` places: open sockets stay, new ones wait until fewer than `size`
    /// are open.
    pub(crate) fn resize(&self, size: usize) {
        let size = size.min(Semaphore::MAX_PERMITS);
        let mut s = self.sizes();
        if size >= s.size {
            let grow = size - s.size;
            let forgiven = grow.min(s.owed);
            s.owed -= forgiven;
            self.free.add_permits(grow - forgiven);
        } else {
            let shrink = s.size - size;
            let taken = self.free.forget_permits(shrink);
            s.owed += shrink - taken;
        }
        s.size = size;
    }

    fn give_back(&self) {
        let mut s = self.sizes();
        if s.owed > 0 {
            s.owed -= 1;
        } else {
            self.free.add_permits(1);
        }
    }

    fn sizes(&self) -> std::sync::MutexGuard<'_, Sizes> {
        // Only integer updates happen under the lock: a poisoned one holds whole values.
        self.sizes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Places free now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.free.available_permits()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.0.give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shrink_while_sockets_are_open_reaches_its_size_and_a_growth_does_not_overshoot() {
        let cap = SocketCap::new(10);
        let mut open: Vec<Place> = Vec::new();
        for _ in 0..6 {
            open.push(cap.acquire().await);
        }
        assert_eq!(cap.available(), 4);
        // A reload lowers the cap below what is open: no new socket until enough have closed.
        cap.resize(3);
        assert_eq!(cap.available(), 0);
        open.truncate(3);
        assert_eq!(cap.available(), 0, "the places given back were owed");
        open.pop();
        assert_eq!(cap.available(), 1, "2 open under a cap of 3");
        // Back to 10 with 2 open: 8 free, not more.
        cap.resize(10);
        assert_eq!(cap.available(), 8);
        open.clear();
        assert_eq!(cap.available(), 10);

        // A growth while places are still owed forgives them first.
        for _ in 0..6 {
            open.push(cap.acquire().await);
        }
        cap.resize(2);
        assert_eq!(cap.available(), 0);
        cap.resize(5);
        assert_eq!(cap.available(), 0, "6 open under a cap of 5");
        open.pop();
        open.pop();
        assert_eq!(cap.available(), 1, "4 open under a cap of 5");
        open.clear();
        assert_eq!(cap.available(), 5);
    }
}
