//! The link's deadlines: one slot per kind of timer, so the next deadline is a single `min`.

use crate::time::Millis;

/// The link's deadlines, one slot each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// The transport must open, and the server welcome us, by then.
    Connect = 0,
    /// Time for the next connection attempt.
    Reconnect = 1,
    /// The server has been silent: ping it.
    Ping = 2,
    /// The ping went unanswered: the connection is dead.
    PingTimeout = 3,
}

const SLOTS: usize = 4;

#[derive(Debug, Default)]
pub(super) struct Timers([Option<Millis>; SLOTS]);

impl Timers {
    pub(super) fn set(&mut self, t: Timer, at: Millis) {
        self.0[t as usize] = Some(at);
    }
    pub(super) fn at(&self, t: Timer) -> Option<Millis> {
        self.0[t as usize]
    }
    pub(super) fn stop(&mut self, t: Timer) {
        self.0[t as usize] = None;
    }
    pub(super) fn stop_all(&mut self) {
        self.0 = [None; SLOTS];
    }
    /// Clears and returns whether `t` is due at `now`.
    pub(super) fn take_expired(&mut self, t: Timer, now: Millis) -> bool {
        match self.0[t as usize] {
            Some(at) if at <= now => {
                self.0[t as usize] = None;
                true
            }
            _ => false,
        }
    }
    pub(super) fn next(&self) -> Option<Millis> {
        self.0.iter().flatten().min().copied()
    }
}
