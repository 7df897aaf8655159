//! `CreationDate`: ISO-8601 dates and date-times to microseconds since the epoch, UTC, with
//! the refusals the data contract names (a fraction of a minute, a leap second, a moment
//! outside 0001..9999 once in UTC). Pure, no I/O.

pub(crate) const MICROS_PER_SECOND: i64 = 1_000_000;
pub(crate) const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Parses an ISO-8601 date or date-time into microseconds since the epoch, UTC.
///
/// Accepted: `YYYY-MM-DD`, then optionally `T` (or a space) and `HH:MM`, `:SS`, a fraction of
/// a second of any length (cut to microseconds), and a zone: `Z`, `±HH`, `±HHMM` or
/// `±HH:MM`. No zone means UTC. Refused: a fraction of a minute (`HH:MM.f`), a leap second
/// (`:60`), and a moment outside 0001-01-01 to 9999-12-31 once converted to UTC.
pub fn parse_timestamp(s: &str) -> Result<i64, &'static str> {
    parse_timestamp_bytes(s.as_bytes())
}

/// 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z, in microseconds since the epoch.
pub(crate) const FIRST_MICROS: i64 = -719_162 * MICROS_PER_DAY;
pub(crate) const END_MICROS: i64 = 2_932_897 * MICROS_PER_DAY;

/// [`parse_timestamp`] on bytes (the fast path has checked they are ASCII).
pub(crate) fn parse_timestamp_bytes(b: &[u8]) -> Result<i64, &'static str> {
    let micros = parse_local_then_utc(b)?;
    if (FIRST_MICROS..END_MICROS).contains(&micros) {
        Ok(micros)
    } else {
        Err("outside the years 0001 to 9999 (in UTC)")
    }
}

pub(crate) fn parse_local_then_utc(b: &[u8]) -> Result<i64, &'static str> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err("expected YYYY-MM-DD");
    }
    let year = digits(&b[0..4]).ok_or("expected YYYY-MM-DD")?;
    let month = digits(&b[5..7]).ok_or("expected YYYY-MM-DD")?;
    let day = digits(&b[8..10]).ok_or("expected YYYY-MM-DD")?;
    let days = days_from_civil(i64::from(year), month, day).ok_or("no such calendar date")?;
    let mut micros = days * MICROS_PER_DAY;
    let mut rest = &b[10..];
    if rest.is_empty() {
        return Ok(micros);
    }
    if !matches!(rest[0], b'T' | b't' | b' ') {
        return Err("expected T between date and time");
    }
    rest = &rest[1..];
    if rest.len() < 5 || rest[2] != b':' {
        return Err("expected HH:MM after the date");
    }
    let hour = digits(&rest[0..2]).ok_or("expected HH:MM after the date")?;
    let minute = digits(&rest[3..5]).ok_or("expected HH:MM after the date")?;
    rest = &rest[5..];
    let mut second = 0;
    match rest.first() {
        Some(b':') => {
            second = rest
                .get(1..3)
                .and_then(digits)
                .ok_or("expected two-digit seconds")?;
            rest = &rest[3..];
        }
        // ISO 8601 reads HH:MM.5 as half a minute; votes never carry that, so it is refused
        // rather than guessed.
        Some(b'.' | b',') => return Err("a fraction of a minute (HH:MM.f); write HH:MM:SS.f"),
        _ => {}
    }
    if second == 60 && hour == 23 && minute == 59 {
        return Err("a leap second (23:59:60) cannot be stored");
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err("time of day out of range");
    }
    micros +=
        (i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)) * MICROS_PER_SECOND;
    if matches!(rest.first(), Some(b'.' | b',')) {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err("expected digits after the decimal sign");
        }
        // Digits beyond microseconds are cut.
        let frac = &rest[1..1 + n];
        let mut us = 0i64;
        for i in 0..6 {
            us = us * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
        }
        micros += us;
        rest = &rest[1 + n..];
    }
    match rest {
        [] | [b'Z' | b'z'] => Ok(micros),
        [sign @ (b'+' | b'-'), zone @ ..] => {
            let (h, m) = match zone {
                [h1, h2] => (digits(&[*h1, *h2]), Some(0)),
                [h1, h2, m1, m2] => (digits(&[*h1, *h2]), digits(&[*m1, *m2])),
                [h1, h2, b':', m1, m2] => (digits(&[*h1, *h2]), digits(&[*m1, *m2])),
                _ => (None, None),
            };
            let (h, m) = h.zip(m).ok_or("expected zone as Z, ±HH, ±HHMM or ±HH:MM")?;
            if h > 23 || m > 59 {
                return Err("zone offset out of range");
            }
            let offset = (i64::from(h) * 60 + i64::from(m)) * 60 * MICROS_PER_SECOND;
            // Local time = UTC + offset, so UTC = local - offset.
            Ok(if *sign == b'+' {
                micros - offset
            } else {
                micros + offset
            })
        }
        _ => Err("unexpected text after the time"),
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar, or `None` when the
/// date does not exist (2022-02-30, month 13, day 0).
pub(crate) fn days_from_civil(year: i64, month: u16, day: u16) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    // Count from 0000-03-01 so that the leap day ends a year (H. Hinnant's method).
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// The year of a day counted from 1970-01-01 (the inverse of [`days_from_civil`], by the
/// same eras of 400 years counted from March).
pub(crate) fn year_of_day(day: i64) -> i64 {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: 10 and 11 are January and February, of the next civil year.
    let month_from_march = (5 * day_of_year + 2) / 153;
    era * 400 + year_of_era + i64::from(month_from_march >= 10)
}

/// The week a day (counted from 1970-01-01) belongs to, as `outlier_weeks` counts weeks:
/// (year, the year's Monday-based week number, 0 before its first Monday), that is
/// `year(creation_date)` and `strftime(creation_date, '%W')`.
pub(crate) fn week_of_day(day: i64) -> (i64, i32) {
    let year = year_of_day(day);
    let jan_1 = days_from_civil(year, 1, 1).expect("January 1 exists");
    let day_of_year = day - jan_1;
    // 1970-01-01 was a Thursday: Monday is 0.
    let weekday = (day + 3).rem_euclid(7);
    (year, ((day_of_year + 7 - weekday) / 7) as i32)
}

pub(crate) fn digits(b: &[u8]) -> Option<u16> {
    b.iter().try_fold(0u16, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u16::from(c - b'0'))
    })
}
