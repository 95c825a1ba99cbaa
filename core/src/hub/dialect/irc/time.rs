//! Unix milliseconds as IRC wants them: `2024-05-01T12:00:00.000Z` for the server-time tag, and
//! a date people read for `TIME`. Pure arithmetic (core reads no clock).

use crate::time::Millis;

/// Year, month (1–12), day (1–31) of `days` since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`), and the weekday (0 = Sunday).
fn civil(days: i64) -> (i64, u32, u32, usize) {
    let weekday = (days + 4).rem_euclid(7) as usize;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, weekday)
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    weekday: usize,
    hour: u64,
    minute: u64,
    second: u64,
    milli: u64,
}

fn parts(at: Millis) -> Parts {
    let secs = at.0 / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let (year, month, day, weekday) = civil(days);
    let of_day = secs % 86_400;
    Parts {
        year,
        month,
        day,
        weekday,
        hour: of_day / 3600,
        minute: of_day / 60 % 60,
        second: of_day % 60,
        milli: at.0 % 1000,
    }
}

/// `2024-05-01T12:00:00.000Z`.
pub(super) fn iso(at: Millis) -> String {
    let p = parts(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second, p.milli
    )
}

/// `Wednesday May 1 2024 -- 12:00:00 +00:00`.
pub(super) fn human(at: Millis) -> String {
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let p = parts(at);
    let month = MONTHS[(p.month as usize).clamp(1, 12) - 1];
    format!(
        "{} {month} {} {} -- {:02}:{:02}:{:02} +00:00",
        DAYS[p.weekday], p.day, p.year, p.hour, p.minute, p.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(iso(Millis(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(Millis(951_782_400_000)), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso(Millis(1_714_564_800_123)), "2024-05-01T12:00:00.123Z");
        assert_eq!(iso(Millis(4_102_444_799_999)), "2099-12-31T23:59:59.999Z");
        assert_eq!(
            human(Millis(1_714_564_800_123)),
            "Wednesday May 1 2024 -- 12:00:00 +00:00"
        );
        assert_eq!(
            human(Millis(0)),
            "Thursday January 1 1970 -- 00:00:00 +00:00"
        );
        // The largest time does not panic.
        assert!(iso(Millis(u64::MAX)).ends_with('Z'));
    }
}
