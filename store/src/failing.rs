//! A failure that repeats while its cause lasts (a full disk, a read-only remount): the writer,
//! the checkpointer, the search index and retention try again and again, every second or
//! faster. The log says so once when a streak of failures starts (WARN) and once when it works
//! again (INFO: it has worked for [`SETTLE`] with no failure); the tries in between go to DEBUG. Without this a full disk wrote ten WARN lines
//! a second to the log, which is often on the same disk.

use core::fmt::Display;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// A new streak of failures within this time of the last one said is not said again (nor is
/// its end): a disk on the edge of full lets a small write through now and then, and each
/// such flap would otherwise be a WARN and an INFO.
pub(crate) const QUIET_FOR: Duration = Duration::from_secs(60);

/// A streak said is over once tries have worked for this long with no failure: a full disk
/// lets a small write through now and then, which is no sign that it has room again.
pub(crate) const SETTLE: Duration = Duration::from_secs(1);

/// Whether a streak of failures was said and is not over, and when a failure was last tried
/// and last said.
#[derive(Debug, Default)]
pub(crate) struct Failing {
    /// The current streak was said (its end will be too, once it has settled).
    said: bool,
    last_failed: Option<Instant>,
    last_said: Option<Instant>,
}

/// What one more try means for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Said {
    /// It failed, and no streak is being said: news (WARN).
    Failed,
    /// It failed again, or a streak began soon after the last one said (DEBUG).
    Again,
    /// It has worked for [`SETTLE`] after a streak that was said: news (INFO).
    Back,
    /// Nothing to say.
    Quiet,
}

impl Failing {
    /// What a try that `worked` (or not) at `now` means, given the tries before.
    pub(crate) fn judge(&mut self, worked: bool, now: Instant) -> Said {
        if !worked {
            self.last_failed = Some(now);
            if self.said {
                // The streak said goes on (a success between did not settle it).
                return Said::Again;
            }
            // A streak not said (it began soon after the last one said) is said once that one
            // is old enough: a failure that lasts is never left unsaid behind a "works again".
            let recent = self
                .last_said
                .is_some_and(|t| now.saturating_duration_since(t) < QUIET_FOR);
            if recent {
                return Said::Again;
            }
            self.said = true;
            self.last_said = Some(now);
            return Said::Failed;
        }
        let settled = self
            .last_failed
            .is_none_or(|t| now.saturating_duration_since(t) >= SETTLE);
        if self.said && settled {
            self.said = false;
            Said::Back
        } else {
            Said::Quiet
        }
    }

    /// Logs the outcome `r` of one more try of `what` (e.g. "store: checkpoint") as
    /// [`Failing::judge`] says.
    pub(crate) fn note<T, E: Display>(&mut self, what: &str, r: &Result<T, E>) {
        match (self.judge(r.is_ok(), Instant::now()), r) {
            (Said::Failed, Err(e)) => warn!(
                error = %e,
                "{what} failed; trying again (said once: next when it works again)"
            ),
            (_, Err(e)) => debug!(error = %e, "{what} failed again"),
            (Said::Back, Ok(_)) => info!("{what} works again"),
            (_, Ok(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_right_after_a_failure_is_not_yet_news() {
        // A full disk: the writer's group fails (WARN), then it writes the group's batches one
        // by one and a small one fits in a page still free. That success a millisecond later
        // said "works again" while every later message was refused for a minute, unsaid.
        let mut f = Failing::default();
        let t0 = Instant::now();
        assert_eq!(f.judge(false, t0), Said::Failed);
        let ms = Duration::from_millis(1);
        assert_eq!(f.judge(true, t0 + ms), Said::Quiet);
        assert_eq!(f.judge(false, t0 + 2 * ms), Said::Again);
        // Refused again past the quiet time: still the streak said, not news again.
        assert_eq!(f.judge(false, t0 + QUIET_FOR * 2), Said::Again);
        // It works, and goes on working: said once it has worked for SETTLE.
        let back = t0 + QUIET_FOR * 2 + ms;
        assert_eq!(f.judge(true, back), Said::Quiet);
        assert_eq!(f.judge(true, back + SETTLE), Said::Back);
        assert_eq!(f.judge(true, back + SETTLE * 2), Said::Quiet);
    }

    #[test]
    fn a_streak_of_failures_is_news_once_and_its_end_once() {
        let mut f = Failing::default();
        let t0 = Instant::now();
        assert_eq!(f.judge(true, t0), Said::Quiet);
        assert_eq!(f.judge(false, t0), Said::Failed);
        for _ in 0..100 {
            assert_eq!(f.judge(false, t0), Said::Again);
        }
        let back = t0 + SETTLE;
        assert_eq!(f.judge(true, back), Said::Back);
        assert_eq!(f.judge(true, back), Said::Quiet);
        // Flapping soon after: neither the new streak nor its end is said.
        let soon = t0 + QUIET_FOR / 2;
        assert_eq!(f.judge(false, soon), Said::Again);
        assert_eq!(f.judge(true, soon + SETTLE), Said::Quiet);
        // A flap that then lasts is said once the last one said is old enough.
        assert_eq!(f.judge(false, soon + SETTLE), Said::Again);
        let later = t0 + QUIET_FOR;
        assert_eq!(f.judge(false, later), Said::Failed);
        assert_eq!(f.judge(false, later), Said::Again);
        assert_eq!(f.judge(true, later + SETTLE), Said::Back);
        // Long after: a new streak is news at once.
        let much_later = later + QUIET_FOR + SETTLE;
        assert_eq!(f.judge(false, much_later), Said::Failed);
    }
}
