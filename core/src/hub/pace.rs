//! Pacing of big fan-outs (see [`crate::limits::FANOUT_PACE`]).
//!
//! A message to a room of 3,000 is 3,000 writes. When the next one comes 4 ms later, a server that
//! writes each at once spends its core on writes of one message each (on loopback a write costs
//! a few microseconds, more than a member's whole share of the hub's work), and the members at
//! the end of each fan-out wait for the whole of it. Paced, the connections with output take
//! turns: each is handed out at most once per pace, oldest output first, at an even rate, so a
//! member gets all that came for it since its last turn in one write, and no member waits longer
//! than the pace. The first big fan-out after a quiet pace goes out at once, and output for fewer
//! than [`crate::limits::PACED_FANOUT`] connections is never held: an idle server, or one without
//! big fan-outs, adds no latency.

use crate::limits::{PACE_LOAD_HIGH, PACE_LOAD_LOW, PACE_STRETCH_MAX};
use crate::time::Millis;

/// The configured pace, in thousandths of itself.
const UNSTRETCHED: u32 = 1_000;

/// How the pace stands. The hub asks it, each time its clock moved, how many transmits may go.
#[derive(Debug, Default)]
pub(crate) struct Pace {
    /// Taking turns: big fan-outs came within a pace of each other.
    pacing: bool,
    /// When output for a big fan-out last went out (whole, or a turn of it).
    last_big: Option<Millis>,
    /// When `credit` was last counted.
    counted: Millis,
    /// Turns earned and not yet taken, in connection-milliseconds (a connection's turn costs
    /// one pace).
    credit: u64,
    /// Transmits that may still go at `at`.
    budget: usize,
    /// When `budget` was granted (the hub's clock then).
    at: Option<Millis>,
    /// How far the pace is stretched while the server is busy, in thousandths of the configured
    /// pace (0 or 1,000: not at all; see [`Pace::observe_load`]).
    stretch: u32,
}

impl Pace {
    /// Whether one more transmit may go at `now`, with `ready` connections holding output; it
    /// counts as gone if so. `big` and `every` come from the hub's configuration.
    pub(crate) fn take(&mut self, ready: usize, now: Millis, big: usize, every: Millis) -> bool {
        let every = self.stretched(every);
        if self.at != Some(now) {
            self.budget = self.grant(ready, now, big, every);
            self.at = Some(now);
        }
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        true
    }

    /// How many of `ready` connections' transmits may go at `now`.
    fn grant(&mut self, ready: usize, now: Millis, big: usize, every: Millis) -> usize {
        if every == Millis::ZERO || ready < big {
            // Small output never waits; the tail of a busy moment goes at once.
            if self.pacing {
                self.pacing = false;
                self.last_big = Some(now);
            }
            return usize::MAX;
        }
        if !self.pacing {
            match self.last_big {
                Some(last) if now < last + every => {
                    // A big fan-out a moment after the last: take turns, as if since that one.
                    self.pacing = true;
                    self.counted = last;
                    self.credit = 0;
                }
                _ => {
                    self.last_big = Some(now);
                    return usize::MAX;
                }
            }
        }
        self.last_big = Some(now);
        let ready = ready as u64;
        let elapsed = now.since(self.counted).0.min(every.0);
        self.counted = now;
        // At most one whole turn of everyone banked: a late wake-up does not become a burst.
        self.credit = (self.credit + ready * elapsed).min(ready * every.0);
        let turns = self.credit / every.0;
        self.credit -= turns * every.0;
        usize::try_from(turns).unwrap_or(usize::MAX)
    }

    /// When the next turns are due, while connections wait for theirs.
    pub(crate) fn next(&self, ready: usize, every: Millis) -> Option<Millis> {
        (self.pacing && ready > 0).then(|| self.counted + tick(self.stretched(every)))
    }

    /// The server used `busy` thousandths of the CPU it may use over the last interval. While
    /// connections take turns, a server over [`PACE_LOAD_HIGH`] stretches the pace by a quarter
    /// (up to [`PACE_STRETCH_MAX`] times), and one under [`PACE_LOAD_LOW`] shrinks it back by a
    /// tenth; between busy spells it goes back to the configured pace the same way.
    pub(crate) fn observe_load(&mut self, busy: u32) {
        let s = self.stretch.max(UNSTRETCHED);
        self.stretch = if self.pacing && busy > PACE_LOAD_HIGH {
            (s * 5 / 4).min(PACE_STRETCH_MAX * UNSTRETCHED)
        } else if !self.pacing || busy < PACE_LOAD_LOW {
            (s * 9 / 10).max(UNSTRETCHED)
        } else {
            s
        };
    }

    /// The pace as stretched now.
    fn stretched(&self, every: Millis) -> Millis {
        Millis(every.0 * u64::from(self.stretch.max(UNSTRETCHED)) / u64::from(UNSTRETCHED))
    }
}

/// How often turns are handed out while pacing: an eighth of the pace (at least 2 ms), so a
/// connection waits at most about the pace, and the hub wakes a few hundred times a second.
fn tick(every: Millis) -> Millis {
    Millis((every.0 / 8).max(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIG: usize = 1000;
    const EVERY: Millis = Millis(24);

    /// Transmits that go at `now` with `ready` waiting (at most `ready`).
    fn go(p: &mut Pace, ready: usize, now: u64) -> usize {
        let mut n = 0;
        while n < ready && p.take(ready, Millis(now), BIG, EVERY) {
            n += 1;
        }
        n
    }

    #[test]
    fn small_output_and_the_first_big_fan_out_go_at_once() {
        let mut p = Pace::default();
        assert_eq!(go(&mut p, 5, 0), 5);
        assert_eq!(go(&mut p, 999, 1), 999, "under the threshold nothing waits");
        assert_eq!(
            go(&mut p, 3000, 2),
            3000,
            "the first big fan-out goes whole"
        );
        assert_eq!(p.next(3000, EVERY), None);
        assert_eq!(
            go(&mut p, 3000, 2 + 24),
            3000,
            "a pace later it goes whole again"
        );
        assert_eq!(go(&mut p, 3000, 100), 3000, "and after a quiet moment");
        assert_eq!(
            go(&mut p, 50, 101),
            50,
            "small output right after a big fan-out too"
        );
    }

    #[test]
    fn big_fan_outs_in_quick_succession_take_turns_at_one_turn_per_pace() {
        let mut p = Pace::default();
        assert_eq!(go(&mut p, 3000, 0), 3000);
        // 4 ms later, a sixth of a pace: a sixth of the connections.
        assert_eq!(go(&mut p, 3000, 4), 500);
        assert_eq!(p.next(2500, EVERY), Some(Millis(4 + 3)));
        // The same moment again grants nothing more.
        assert_eq!(go(&mut p, 2500, 4), 0);
        // Over a whole pace of ticks, everyone waiting gets a turn, and no more.
        let mut handed = 0;
        for t in (7..=28).step_by(3) {
            handed += go(&mut p, 3000, t);
        }
        assert_eq!(handed, 3000, "one turn each per pace");
        // Fractions carry: 1 ms at a time still adds up to the rate.
        let mut handed = 0;
        for t in 29..=52 {
            handed += go(&mut p, 3000, t);
        }
        assert_eq!(handed, 3000);
    }

    #[test]
    fn a_late_wake_up_is_at_most_one_turn_and_the_tail_goes_at_once() {
        let mut p = Pace::default();
        go(&mut p, 3000, 0);
        assert_eq!(go(&mut p, 3000, 1), 125);
        // A second late: one turn for everyone at most, not forty.
        assert_eq!(go(&mut p, 3000, 1001), 3000);
        assert_eq!(go(&mut p, 3000, 1002), 125);
        // Fewer than the threshold waiting: the rest goes now, and pacing stops.
        assert_eq!(go(&mut p, 700, 1003), 700);
        assert_eq!(p.next(10, EVERY), None);
        // A big fan-out within a pace of that one takes turns again.
        assert_eq!(go(&mut p, 3000, 1010), 875);
    }

    #[test]
    fn a_busy_server_stretches_the_pace_and_a_calm_one_shrinks_it_back() {
        let mut p = Pace::default();
        go(&mut p, 3000, 0);
        assert_eq!(
            go(&mut p, 3000, 4),
            500,
            "taking turns at the configured pace"
        );
        // Busy: a quarter longer per report, at most four times.
        p.observe_load(900);
        assert_eq!(p.stretched(EVERY), Millis(30));
        for _ in 0..20 {
            p.observe_load(900);
        }
        assert_eq!(p.stretched(EVERY), Millis(96));
        assert_eq!(
            p.next(3000, EVERY),
            Some(Millis(4 + 12)),
            "ticks stretch too"
        );
        // Turns come at the stretched rate: a quarter of the usual.
        assert_eq!(go(&mut p, 3000, 16), 375);
        // In the band nothing moves; under it the pace comes back, to the configured one.
        p.observe_load(600);
        assert_eq!(p.stretched(EVERY), Millis(96));
        for _ in 0..40 {
            p.observe_load(100);
        }
        assert_eq!(p.stretched(EVERY), EVERY);
        // Busy but not taking turns (no big room): nothing stretches.
        let mut q = Pace::default();
        for _ in 0..10 {
            q.observe_load(1000);
        }
        assert_eq!(q.stretched(EVERY), EVERY);
    }

    #[test]
    fn a_pace_of_zero_holds_nothing() {
        let mut p = Pace::default();
        for t in 0..5 {
            let mut n = 0;
            while n < 3000 && p.take(3000, Millis(t), BIG, Millis::ZERO) {
                n += 1;
            }
            assert_eq!(n, 3000);
        }
        assert_eq!(p.next(3000, Millis::ZERO), None);
    }
}
