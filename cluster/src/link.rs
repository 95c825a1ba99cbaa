//! What a node's log says of its link to NATS: once when the link is lost, once when it is back
//! (how long it was away, how many attempts it took), not a line per reconnection attempt (the
//! NATS client retries every 100 ms to 1 s, and says "IO error" each time).

use async_nats::Event;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// What one event of the NATS client means for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Said {
    /// The link was up and is lost.
    Lost,
    /// The link is back after `away`, at the `attempts`th failed attempt plus one.
    Back { away: Duration, attempts: u32 },
    /// Connected, not after a loss (the first connection).
    Connected,
    /// Nothing new: another failed attempt while the link is down (logged at debug).
    Again,
    /// Anything else the client says (a server error, a slow consumer...), as it says it.
    Other,
}

/// The link's state as the log tells it.
#[derive(Debug, Default)]
pub(crate) struct LinkLog {
    state: Mutex<Down>,
}

#[derive(Debug, Default)]
struct Down {
    /// When the link was lost, while it is down.
    since: Option<Instant>,
    /// Failed attempts since.
    attempts: u32,
}

impl LinkLog {
    /// Logs `ev` as [`LinkLog::judge`] says.
    pub(crate) fn note(&self, ev: &Event) {
        match self.judge(ev, Instant::now()) {
            Said::Lost => warn!(
                "lost the connection to NATS: new messages, joins, nick claims and changes of \
                 rooms' settings are refused until it is back; reconnecting"
            ),
            Said::Back { away, attempts } => info!(
                away_ms = u64::try_from(away.as_millis()).unwrap_or(u64::MAX),
                attempts, "connected to NATS again"
            ),
            Said::Connected => info!("connected to NATS"),
            Said::Again => debug!(event = %ev, "NATS still unreachable"),
            Said::Other => info!(event = %ev, "NATS"),
        }
    }

    /// What `ev`, at `now`, means for the log.
    pub(crate) fn judge(&self, ev: &Event, now: Instant) -> Said {
        let mut down = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match ev {
            Event::Disconnected if down.since.is_none() => {
                down.since = Some(now);
                down.attempts = 0;
                Said::Lost
            }
            Event::Disconnected => Said::Again,
            Event::ClientError(_) if down.since.is_some() => {
                down.attempts = down.attempts.saturating_add(1);
                Said::Again
            }
            Event::Connected => match down.since.take() {
                Some(since) => Said::Back {
                    away: now.saturating_duration_since(since),
                    attempts: core::mem::take(&mut down.attempts).saturating_add(1),
                },
                None => Said::Connected,
            },
            _ => Said::Other,
        }
    }
}

/// A failure that repeats while NATS is away (a lease refresh, a listing): logged once when it
/// starts failing and once when it works again, not at every try.
#[derive(Debug, Default)]
pub(crate) struct Failing {
    failed: bool,
}

impl Failing {
    /// It failed (`why`); true if this is news (it worked before), to be logged.
    pub(crate) fn failed(&mut self) -> bool {
        !core::mem::replace(&mut self.failed, true)
    }

    /// It worked; true if it had failed before (worth saying it works again).
    pub(crate) fn worked(&mut self) -> bool {
        core::mem::take(&mut self.failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::ClientError;

    fn io_error() -> Event {
        Event::ClientError(ClientError::Other("nats: IO error".into()))
    }

    #[test]
    fn a_lost_link_is_said_once_and_its_return_once_whatever_the_attempts() {
        let log = LinkLog::default();
        let t0 = Instant::now();
        assert_eq!(log.judge(&Event::Connected, t0), Said::Connected);
        assert_eq!(log.judge(&Event::Disconnected, t0), Said::Lost);
        for _ in 0..30 {
            assert_eq!(log.judge(&io_error(), t0), Said::Again);
        }
        assert_eq!(log.judge(&Event::Disconnected, t0), Said::Again);
        let back = log.judge(&Event::Connected, t0 + Duration::from_secs(16));
        assert_eq!(
            back,
            Said::Back {
                away: Duration::from_secs(16),
                attempts: 31
            }
        );
        // A client error while connected is said as it is; a second loss is news again.
        assert_eq!(log.judge(&io_error(), t0), Said::Other);
        assert_eq!(log.judge(&Event::Disconnected, t0), Said::Lost);
    }

    #[test]
    fn a_repeated_failure_is_news_once_and_so_is_its_end() {
        let mut f = Failing::default();
        assert!(!f.worked());
        assert!(f.failed());
        assert!(!f.failed());
        assert!(!f.failed());
        assert!(f.worked());
        assert!(!f.worked());
        assert!(f.failed());
    }
}
