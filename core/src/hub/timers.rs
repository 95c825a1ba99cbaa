//! Every deadline the hub keeps, in one table keyed by what it is for, so the next deadline is
//! one lookup ([`Timers::next`]) and a re-armed timer replaces its old deadline.

use super::DeviceId;
use crate::time::Millis;
use crate::types::ConnId;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// A connection that has said nothing yet becomes a text connection.
    Detect(ConnId),
    /// A binary connection must have said hello by now.
    Hello(ConnId),
    /// The keepalive sweep: ping every idle connection whose dialect wants it, drop those whose
    /// ping went unanswered. One timer for all of them, not one per connection (issue 22).
    Keepalive,
    /// A flood-control token refills for a connection with commands waiting.
    Flood(ConnId),
    /// A detached device's resume grace ends.
    Grace(DeviceId),
    /// A resume probe of a device's attached connection went unanswered: the newcomer takes
    /// over.
    Takeover(DeviceId),
    /// The members the bans whose moment came hold leave now, those a `KICK` did not put out
    /// already (see [`crate::limits::BAN_KICK_WAIT`]); armed for the earliest ban waiting.
    BanKicks,
    /// Forget per-IP connect counts that have aged out.
    PruneIps,
    /// Quiet rooms hear who came and went (see `crowd.rs`).
    Crowds,
    /// Cluster mode: the parts, quits and nick changes the room logs refused are told again,
    /// as they stand now (`Hub::redo_membership`).
    ClusterRedo,
    /// The store may be given the next batch after a failed one (see
    /// [`crate::limits::STORE_RETRY_MIN`]).
    StoreRetry,
}

/// Deadlines by time and by key.
///
/// By time, a binary heap with lazy deletion: a re-armed or cancelled timer's old entry stays in
/// the heap until it comes to the top, where it is dropped because `by_key` no longer holds
/// that deadline. The top is kept valid after every change, so [`Timers::next`] is a peek, and
/// the heap is rebuilt from `by_key` once stale entries outnumber live ones. A dense heap costs
/// an idle connection's keepalive 24–48 bytes where a B-tree's half-full nodes cost ~60
/// (issue 22).
#[derive(Debug, Default)]
pub(crate) struct Timers {
    by_time: BinaryHeap<Reverse<(Millis, Timer)>>,
    /// Keyed by hub-chosen ids only: a fast non-keyed hash is safe.
    by_key: FxHashMap<Timer, Millis>,
}

impl Timers {
    /// Arms `key` at `at`, replacing an earlier deadline for the same key.
    pub(crate) fn set(&mut self, key: Timer, at: Millis) {
        if self.by_key.insert(key, at) == Some(at) {
            // Armed at that very deadline already: its entry is in the heap.
            return;
        }
        self.by_time.push(Reverse((at, key)));
        self.tidy();
    }

    /// Disarms `key` (no-op if it is not armed).
    pub(crate) fn cancel(&mut self, key: Timer) {
        if self.by_key.remove(&key).is_some() {
            self.tidy();
        }
    }

    /// Whether `key` is armed.
    pub(crate) fn is_set(&self, key: Timer) -> bool {
        self.by_key.contains_key(&key)
    }

    /// When `key` is due, if it is armed.
    pub(crate) fn at(&self, key: Timer) -> Option<Millis> {
        self.by_key.get(&key).copied()
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Millis> {
        self.by_time.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns one timer due at `now`, earliest first.
    pub(crate) fn pop_due(&mut self, now: Millis) -> Option<Timer> {
        let Reverse((at, key)) = *self.by_time.peek()?;
        if at > now {
            return None;
        }
        self.by_time.pop();
        self.by_key.remove(&key);
        self.tidy();
        Some(key)
    }

    /// Whether a heap entry is a timer's current deadline.
    fn live(&self, at: Millis, key: Timer) -> bool {
        self.by_key.get(&key) == Some(&at)
    }

    /// Drops stale entries from the top (so the top is a live deadline), and rebuilds the heap
    /// when stale entries outnumber live ones (amortised O(1) per change).
    fn tidy(&mut self) {
        if self.by_time.len() > 2 * self.by_key.len() + 64 {
            let live: Vec<_> = self
                .by_key
                .iter()
                .map(|(k, at)| Reverse((*at, *k)))
                .collect();
            self.by_time = BinaryHeap::from(live);
            return;
        }
        while let Some(Reverse((at, key))) = self.by_time.peek().copied() {
            if self.live(at, key) {
                break;
            }
            self.by_time.pop();
        }
    }

    /// Disarms every timer of a connection.
    pub(crate) fn cancel_conn(&mut self, conn: ConnId) {
        for key in [Timer::Detect(conn), Timer::Hello(conn), Timer::Flood(conn)] {
            self.cancel(key);
        }
    }

    /// Timers armed (for tests and stats).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_rearm_replaces() {
        let mut t = Timers::default();
        t.set(Timer::Hello(ConnId(1)), Millis(50));
        t.set(Timer::Detect(ConnId(1)), Millis(10));
        t.set(Timer::Hello(ConnId(1)), Millis(5));
        assert_eq!(t.next(), Some(Millis(5)));
        assert_eq!(t.len(), 2);
        assert_eq!(t.pop_due(Millis(4)), None);
        assert_eq!(t.pop_due(Millis(20)), Some(Timer::Hello(ConnId(1))));
        assert_eq!(t.pop_due(Millis(20)), Some(Timer::Detect(ConnId(1))));
        assert_eq!(t.pop_due(Millis(20)), None);
        t.set(Timer::Flood(ConnId(2)), Millis(1));
        t.cancel_conn(ConnId(2));
        assert_eq!(t.next(), None);
    }

    #[test]
    fn stale_entries_never_fire_and_are_dropped() {
        let mut t = Timers::default();
        // Re-armed later, re-armed at the same time, cancelled and armed again.
        t.set(Timer::Detect(ConnId(1)), Millis(10));
        t.set(Timer::Detect(ConnId(1)), Millis(30));
        t.set(Timer::Detect(ConnId(1)), Millis(30));
        t.set(Timer::Hello(ConnId(2)), Millis(20));
        t.cancel(Timer::Hello(ConnId(2)));
        t.set(Timer::Hello(ConnId(2)), Millis(25));
        assert_eq!(t.next(), Some(Millis(25)));
        assert_eq!(t.pop_due(Millis(100)), Some(Timer::Hello(ConnId(2))));
        assert_eq!(t.pop_due(Millis(100)), Some(Timer::Detect(ConnId(1))));
        assert_eq!(t.pop_due(Millis(100)), None);
        assert_eq!(t.next(), None);
        // Many cancels behind a live top: the heap is rebuilt instead of growing without bound.
        t.set(Timer::Detect(ConnId(99_999)), Millis(1));
        for i in 0..10_000 {
            t.set(Timer::Flood(ConnId(i)), Millis(1_000 + i));
            t.cancel(Timer::Flood(ConnId(i)));
        }
        t.set(Timer::Flood(ConnId(7)), Millis(5_000));
        assert!(
            t.by_time.len() <= 2 * t.by_key.len() + 65,
            "{}",
            t.by_time.len()
        );
        assert_eq!(t.next(), Some(Millis(1)));
        assert_eq!(t.pop_due(Millis(1)), Some(Timer::Detect(ConnId(99_999))));
        assert_eq!(t.next(), Some(Millis(5_000)));
        assert_eq!(t.pop_due(Millis(4_999)), None);
        assert_eq!(t.pop_due(Millis(5_000)), Some(Timer::Flood(ConnId(7))));
        assert_eq!(t.next(), None);
    }
}
