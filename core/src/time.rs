//! Time as a value. Core never reads a clock: shells pass `now` in as milliseconds since any
//! fixed origin (the process start, the page load), and core hands deadlines back the same way.

use core::ops::{Add, Sub};
use serde::{Deserialize, Serialize};

/// A point in time, or a duration, in milliseconds. Which one is clear from the name it is bound to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Millis(pub u64);

impl Millis {
    /// Zero: the origin, or no time at all.
    pub const ZERO: Millis = Millis(0);

    /// `self - earlier`, or zero if `earlier` is later (clocks passed in may be coarse).
    pub fn since(self, earlier: Millis) -> Millis {
        Millis(self.0.saturating_sub(earlier.0))
    }
}

impl Millis {
    /// Unix milliseconds as an RFC 3339 UTC time to the second (`2026-12-03T04:46:07Z`).
    pub fn rfc3339(self) -> String {
        let secs = self.0 / 1000;
        let (days, rest) = (secs / 86_400, secs % 86_400);
        // Days since 1970-01-01 to a civil date (Howard Hinnant's `civil_from_days`).
        let z = (days as i64).saturating_add(719_468);
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        )
    }
}

/// A log line that recurs (a limit hit in a storm, a peer's failed handshake), said at most once
/// per `every` for each key `K`, with how many of that key went unsaid since its last line: the
/// first is said at once, and a storm writes one line per interval instead of one per event.
/// The hub's refusals at admission and the bridge's peer faults are said through it.
#[derive(Debug, Clone)]
pub struct SaidEvery<K> {
    every: Millis,
    /// Per key: when it was last said, and how many were not said since.
    said: Vec<(K, Millis, u32)>,
}

impl<K: PartialEq> SaidEvery<K> {
    /// Nothing said yet, each key at most once per `every`.
    pub const fn new(every: Millis) -> SaidEvery<K> {
        SaidEvery {
            every,
            said: Vec::new(),
        }
    }

    /// One more of `key` at `now`: `Some(n)` when it is to be said (`n` of that key went
    /// unsaid before it), `None` when it is not (and it is counted for the next line).
    pub fn say(&mut self, key: K, now: Millis) -> Option<u32> {
        match self.said.iter_mut().find(|(k, ..)| *k == key) {
            None => {
                self.said.push((key, now, 0));
                Some(0)
            }
            Some((_, at, unsaid)) if now.since(*at) >= self.every => {
                *at = now;
                Some(core::mem::take(unsaid))
            }
            Some((_, _, unsaid)) => {
                *unsaid = unsaid.saturating_add(1);
                None
            }
        }
    }
}

impl Add for Millis {
    type Output = Millis;
    fn add(self, rhs: Millis) -> Millis {
        Millis(self.0.saturating_add(rhs.0))
    }
}

impl Sub for Millis {
    type Output = Millis;
    fn sub(self, rhs: Millis) -> Millis {
        self.since(rhs)
    }
}

impl core::fmt::Display for Millis {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod said_every_tests {
    use super::{Millis, SaidEvery};

    #[test]
    fn each_key_is_said_at_once_then_at_most_once_per_interval_with_the_unsaid_count() {
        let mut g = SaidEvery::new(Millis(10_000));
        assert_eq!(g.say('a', Millis(5)), Some(0));
        assert_eq!(g.say('a', Millis(6)), None);
        assert_eq!(g.say('a', Millis(10_004)), None);
        // Its own schedule for another key.
        assert_eq!(g.say('b', Millis(10_004)), Some(0));
        assert_eq!(g.say('a', Millis(10_005)), Some(2));
        assert_eq!(g.say('a', Millis(10_006)), None);
        assert_eq!(g.say('a', Millis(90_000)), Some(1));
    }
}
