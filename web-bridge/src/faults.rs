//! What peers get wrong before they are browsers on a WebSocket (a TLS handshake that fails, a
//! request head that is bad, or one not done in time, a TLS handshake over an address's rate; a
//! WebSocket refused for its Origin or its Host, a request on `/ws` that is no WebSocket
//! handshake), said in the log at `INFO` (`WARN`
//! for a refused Host) at most once per [`SAID_EVERY`] for each kind, with how many there were
//! since the kind's last line. Each one is counted in the metrics; a line per failure would let
//! any scanner, or any page in any browser (it chooses how often it asks for a WebSocket), write
//! the log, and none at all (they were `DEBUG` until the thirty-second session) left an operator
//! whose users' browsers failed the handshake (a certificate they do not trust, an old client)
//! nothing to read at the default level.

use natter_core::Millis;
use natter_core::time::SaidEvery;
use std::time::Duration;

/// How often, at most, one kind of fault is said in the log. The lines say "10 s".
pub(crate) const SAID_EVERY: Duration = Duration::from_secs(10);

/// A kind of fault, each said on its own schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// A TLS handshake failed (`refused_total{reason="tls_handshake"}`).
    TlsHandshake,
    /// A TLS handshake or a request head not done within the handshake budget
    /// (`refused_total{reason="timeout"}`).
    Timeout,
    /// A request head HTTP cannot read, answered 400 or 431
    /// (`refused_total{reason="bad_request"}`).
    BadRequest,
    /// A WebSocket request from a page whose Origin is not allowed, answered 403
    /// (`refused_total{reason="origin"}`).
    Origin,
    /// A WebSocket request under a Host name the bridge was not told it serves (the
    /// DNS-rebinding guard), answered 403 (`refused_total{reason="host"}`).
    Host,
    /// A request on `/ws` without `Upgrade: websocket`, answered 426 or 405 (what a reverse
    /// proxy that does not pass the Upgrade header sends for every browser;
    /// `refused_total{reason="handshake"}`).
    NotAnUpgrade,
    /// A connection from an address over `--max-tls-handshakes-per-ip`, closed before its
    /// handshake (`refused_total{reason="handshake_rate"}`).
    HandshakeRate,
}

/// When each kind was last said and how many of it came since (core's one gate for recurring
/// log lines, as the server says its refusals at admission).
#[derive(Debug)]
pub(crate) struct Faults {
    said: SaidEvery<Fault>,
}

impl Default for Faults {
    fn default() -> Faults {
        let every = u64::try_from(SAID_EVERY.as_millis()).unwrap_or(u64::MAX);
        Faults {
            said: SaidEvery::new(Millis(every)),
        }
    }
}

impl Faults {
    /// Notes one `fault` at `now_ms`: `Some(n)` when a line is due, `n` being how many of
    /// that kind came since its last line (this one included); `None` while the kind's last
    /// line is younger than [`SAID_EVERY`].
    pub(crate) fn note(&mut self, fault: Fault, now_ms: u64) -> Option<u64> {
        let unsaid = self.said.say(fault, Millis(now_ms))?;
        Some(u64::from(unsaid) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_said_at_once_then_at_most_every_10_s_with_the_count_since() {
        let mut f = Faults::default();
        // The first one is said, however soon after the start.
        assert_eq!(f.note(Fault::TlsHandshake, 0), Some(1));
        // Within 10 s: counted, not said.
        for t in [1, 500, 9_999] {
            assert_eq!(f.note(Fault::TlsHandshake, t), None);
        }
        // Another kind has its own schedule.
        assert_eq!(f.note(Fault::BadRequest, 9_999), Some(1));
        assert_eq!(f.note(Fault::Timeout, 9_999), Some(1));
        // 10 s after the last line: said, with the three held back and this one.
        assert_eq!(f.note(Fault::TlsHandshake, 10_000), Some(4));
        assert_eq!(f.note(Fault::TlsHandshake, 10_001), None);
        // A quiet minute later: one again.
        assert_eq!(f.note(Fault::TlsHandshake, 70_000), Some(2));
        assert_eq!(f.note(Fault::BadRequest, 70_000), Some(1));
    }

    #[test]
    fn refused_websockets_are_said_on_schedules_of_their_own() {
        let mut f = Faults::default();
        assert_eq!(f.note(Fault::BadRequest, 0), Some(1));
        // A page asking again and again with an Origin the bridge does not allow.
        assert_eq!(f.note(Fault::Origin, 0), Some(1));
        for t in 1..=500 {
            assert_eq!(f.note(Fault::Origin, t), None);
        }
        assert_eq!(f.note(Fault::Host, 500), Some(1));
        assert_eq!(f.note(Fault::NotAnUpgrade, 500), Some(1));
        assert_eq!(f.note(Fault::Host, 501), None);
        assert_eq!(f.note(Fault::Origin, 10_000), Some(501));
        assert_eq!(f.note(Fault::Host, 10_500), Some(2));
    }
}
