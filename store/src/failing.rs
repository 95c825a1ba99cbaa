//! A failure that repeats while its cause lasts (a full disk, a read-only remount): the writer,
//! the checkpointer, the search index and retention try again and again, every second or
//! faster. The log says so once when a streak of failures starts (WARN) and once when it works
//! again (INFO); the tries in between go to DEBUG. Without this a full disk wrote ten WARN lines
//! a second to the log, which is often on the same disk.

use core::fmt::Display;
use tracing::{debug, info, warn};

/// Whether the last try of one kind of work failed.
#[derive(Debug, Default)]
pub(crate) struct Failing {
    failed: bool,
}

/// What one more try means for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Said {
    /// It failed, and worked before: news (WARN).
    Failed,
    /// It failed again (DEBUG).
    Again,
    /// It worked after failing: news (INFO).
    Back,
    /// It worked, as before: nothing to say.
    Quiet,
}

impl Failing {
    /// What a try that `worked` (or not) means, given the tries before.
    pub(crate) fn judge(&mut self, worked: bool) -> Said {
        match (core::mem::replace(&mut self.failed, !worked), worked) {
            (false, false) => Said::Failed,
            (true, false) => Said::Again,
            (true, true) => Said::Back,
            (false, true) => Said::Quiet,
        }
    }

    /// Logs the outcome `r` of one more try of `what` (e.g. "store: checkpoint") as
    /// [`Failing::judge`] says.
    pub(crate) fn note<T, E: Display>(&mut self, what: &str, r: &Result<T, E>) {
        match (self.judge(r.is_ok()), r) {
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
    fn a_streak_of_failures_is_news_once_and_its_end_once() {
        let mut f = Failing::default();
        assert_eq!(f.judge(true), Said::Quiet);
        assert_eq!(f.judge(false), Said::Failed);
        for _ in 0..100 {
            assert_eq!(f.judge(false), Said::Again);
        }
        assert_eq!(f.judge(true), Said::Back);
        assert_eq!(f.judge(true), Said::Quiet);
        assert_eq!(f.judge(false), Said::Failed);
    }
}
