//! Every deadline the hub keeps, in one table keyed by what it is for, so the next deadline is
//! one lookup ([`Timers::next`]) and a re-armed timer replaces its old deadline.

use super::DeviceId;
use crate::time::Millis;
use crate::types::ConnId;
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// A connection that has said nothing yet becomes a text connection.
    Detect(ConnId),
    /// A binary connection must have said hello by now.
    Hello(ConnId),
    /// Ping an idle binary connection, or drop it when the ping went unanswered.
    Keepalive(ConnId),
    /// A flood-control token refills for a connection with commands waiting.
    Flood(ConnId),
    /// A detached device's resume grace ends.
    Grace(DeviceId),
    /// A resume probe of a device's attached connection went unanswered: the newcomer takes
    /// over.
    Takeover(DeviceId),
    /// Forget per-IP connect counts that have aged out.
    PruneIps,
    /// Quiet rooms hear who came and went (see `crowd.rs`).
    Crowds,
}

/// Deadlines by time and by key.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    by_time: BTreeSet<(Millis, Timer)>,
    /// Keyed by hub-chosen ids only: a fast non-keyed hash is safe.
    by_key: FxHashMap<Timer, Millis>,
}

impl Timers {
    /// Arms `key` at `at`, replacing an earlier deadline for the same key.
    pub(crate) fn set(&mut self, key: Timer, at: Millis) {
        if let Some(old) = self.by_key.insert(key, at) {
            self.by_time.remove(&(old, key));
        }
        self.by_time.insert((at, key));
    }

    /// Disarms `key` (no-op if it is not armed).
    pub(crate) fn cancel(&mut self, key: Timer) {
        if let Some(old) = self.by_key.remove(&key) {
            self.by_time.remove(&(old, key));
        }
    }

    /// Whether `key` is armed.
    pub(crate) fn is_set(&self, key: Timer) -> bool {
        self.by_key.contains_key(&key)
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Millis> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns one timer due at `now`, earliest first.
    pub(crate) fn pop_due(&mut self, now: Millis) -> Option<Timer> {
        let (at, key) = *self.by_time.first()?;
        if at > now {
            return None;
        }
        self.by_time.remove(&(at, key));
        self.by_key.remove(&key);
        Some(key)
    }

    /// Disarms every timer of a connection.
    pub(crate) fn cancel_conn(&mut self, conn: ConnId) {
        for key in [
            Timer::Detect(conn),
            Timer::Hello(conn),
            Timer::Keepalive(conn),
            Timer::Flood(conn),
        ] {
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
}
