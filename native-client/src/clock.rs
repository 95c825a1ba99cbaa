//! The client's clocks. The Session and the chat model want `now` as [`Millis`] for their
//! deadlines: [`now`] is monotonic (Unix-epoch milliseconds as read once at start, advanced by the
//! monotonic clock), so a wall-clock step never moves a deadline. What is shown as a time is the
//! wall clock's: the server's stamps on its lines, and for the lines made here [`wall`], read with
//! each turn of the TUI and given to the chat model ([`natter_core::chat::Chat::set_wall_clock`]),
//! so a laptop's sleep or a clock step does not leave every later line's time behind.

use natter_core::Millis;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();

/// Milliseconds since the Unix epoch, monotonic within this process: for deadlines, not for
/// showing (it does not follow the wall clock after start; see [`wall`]).
pub fn now() -> Millis {
    let (start, epoch) = ANCHOR.get_or_init(|| (Instant::now(), wall().0));
    let elapsed = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    Millis(epoch.saturating_add(elapsed))
}

/// The wall clock now, in Unix milliseconds (zero before 1970): for stamping lines, which it
/// may move backwards (a clock step); never for deadlines.
pub fn wall() -> Millis {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    Millis(u64::try_from(wall).unwrap_or(u64::MAX))
}

/// The tokio instant at which [`now`] will read `deadline` (now, if it has passed).
pub fn instant_at(deadline: Millis) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_millis(deadline.since(now()).0)
}

/// The local time zone's offset from UTC in seconds now (for HH:MM stamps; read each turn, so a
/// change to or from summer time shows).
pub fn local_offset_secs() -> i32 {
    chrono::Local::now().offset().local_minus_utc()
}

/// `HH:MM` of a Unix-millisecond stamp, shifted by `offset_secs`.
pub fn hh_mm(at: Millis, offset_secs: i32) -> String {
    let secs = i64::try_from(at.0 / 1000).unwrap_or(i64::MAX);
    let local = secs.saturating_add(i64::from(offset_secs));
    let minute_of_day = local.rem_euclid(86_400) / 60;
    format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60)
}

/// `YYYY-MM-DD HH:MM` of a Unix-millisecond stamp, shifted by `offset_secs` (for lines from
/// long ago: search hits).
pub fn local_minute(at: Millis, offset_secs: i32) -> String {
    let shift = i64::from(offset_secs).saturating_mul(1000);
    let local = i64::try_from(at.0)
        .unwrap_or(i64::MAX)
        .saturating_add(shift);
    natter_core::render::utc_minute(Millis(u64::try_from(local).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_read_as_hours_and_minutes() {
        // 2023-11-14 22:13:20 UTC
        let at = Millis(1_700_000_000_000);
        assert_eq!(hh_mm(at, 0), "22:13");
        assert_eq!(hh_mm(at, 3600), "23:13");
        assert_eq!(hh_mm(at, 2 * 3600), "00:13");
        assert_eq!(hh_mm(at, -23 * 3600), "23:13");
        assert_eq!(hh_mm(Millis(0), 0), "00:00");
        assert_eq!(local_minute(at, 2 * 3600), "2023-11-15 00:13");
        assert_eq!(local_minute(Millis(0), -3600), "1970-01-01 00:00");
    }

    #[test]
    fn the_clock_does_not_run_backwards() {
        let a = now();
        let b = now();
        assert!(b >= a);
        // Sanity: after 2020.
        assert!(a.0 > 1_577_836_800_000);
    }
}
