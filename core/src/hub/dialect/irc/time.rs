//! Unix milliseconds as IRC wants them: `2024-05-01T12:00:00.000Z` for the server-time tag (and
//! read back from CHATHISTORY's `timestamp=`), and a date people read for `TIME`. Pure
//! arithmetic (core reads no clock).

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

/// Days since 1970-01-01 of a date (Howard Hinnant's `days_from_civil`).
fn days(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2024-05-01T12:00:00.000Z` (the milliseconds optional, up to three digits) as Unix
/// milliseconds; `None` for anything else or a time before 1970.
pub(super) fn parse_iso(s: &str) -> Option<Millis> {
    let s = s.strip_suffix('Z')?;
    let (date, clock) = s.split_once('T')?;
    let num = |t: &str, len: usize| -> Option<u32> {
        (t.len() == len && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let mut d = date.split('-');
    let (year, month, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut t = hms.split(':');
    let (h, m, sec) = (num(t.next()?, 2)?, num(t.next()?, 2)?, num(t.next()?, 2)?);
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    let valid =
        (1..=12).contains(&month) && (1..=31).contains(&day) && h < 24 && m < 60 && sec < 61;
    let milli = match frac.len() {
        0 => 0,
        1..=3 => num(frac, frac.len())? * 10u32.pow(3 - frac.len() as u32),
        _ => return None,
    };
    let secs = days(i64::from(year), month, day) * 86_400
        + i64::from(h) * 3600
        + i64::from(m) * 60
        + i64::from(sec);
    let ms = u64::try_from(secs).ok()?.checked_mul(1000)? + u64::from(milli);
    valid.then_some(Millis(ms))
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

    #[test]
    fn iso_times_read_back() {
        for ms in [0, 951_782_400_000, 1_714_564_800_123, 4_102_444_799_999] {
            assert_eq!(parse_iso(&iso(Millis(ms))), Some(Millis(ms)));
        }
        assert_eq!(
            parse_iso("2024-05-01T12:00:00Z"),
            Some(Millis(1_714_564_800_000))
        );
        assert_eq!(
            parse_iso("2024-05-01T12:00:00.5Z"),
            Some(Millis(1_714_564_800_500))
        );
        for bad in [
            "",
            "2024-05-01T12:00:00.000",
            "2024-05-01 12:00:00Z",
            "2024-13-01T12:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:00.0000Z",
            "1969-12-31T23:59:59Z",
            "24-05-01T12:00:00Z",
            "2024-05-01T12:00:00:00Z",
            "+024-05-01T12:00:00Z",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
    }
}
