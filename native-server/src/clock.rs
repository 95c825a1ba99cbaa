//! The server's clock: [`Millis`] as Unix epoch milliseconds, but advanced by a monotonic
//! `Instant`, so timestamps users see are real and the hub's timers never jump with the wall clock.

use natter_core::Millis;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Converts between tokio's `Instant` and the hub's `Millis`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    base: Instant,
    base_ms: u64,
}

impl Clock {
    /// Reads the wall clock once; from then on time is `base + elapsed`.
    pub(crate) fn new() -> Clock {
        let base_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Clock {
            base: Instant::now(),
            base_ms,
        }
    }

    /// Now.
    pub(crate) fn now(&self) -> Millis {
        let elapsed = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        Millis(self.base_ms.saturating_add(elapsed))
    }

    /// The `Instant` at which `at` is reached (the past maps to the base, which has passed).
    pub(crate) fn instant(&self, at: Millis) -> Instant {
        let after = Duration::from_millis(at.0.saturating_sub(self.base_ms));
        // `checked_add` fails only for deadlines centuries away: treat those as "far future".
        self.base
            .checked_add(after)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_epoch_and_round_trips_to_instants() {
        let c = Clock::new();
        let now = c.now();
        // After 2020-01-01: a real timestamp, not an uptime.
        assert!(now.0 > 1_577_836_800_000, "{now}");
        let later = Millis(now.0 + 1500);
        let at = c.instant(later);
        let d = at.duration_since(c.base);
        assert!(d >= Duration::from_millis(1500), "{d:?}");
        assert!(d < Duration::from_millis(1500 + 1000), "{d:?}");
        assert_eq!(c.instant(Millis(0)), c.base);
    }
}
