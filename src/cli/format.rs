//! What the commands share in print: the one-line outcome of a file, tables, and the
//! `--since` argument.

use crate::model::FileOutcome;

/// `STATUS  NAME  read N  inserted N  duplicates N  already N  conflicting N  rejected N
/// blank N  0.12s`, then the reason when there is one.
pub fn outcome_line(o: &FileOutcome) -> String {
    let c = &o.counts;
    let mut line = format!(
        "{:<14} {}  read {}  inserted {}  duplicates {}  already {}  conflicting {}  rejected {}  blank {}  {:.2}s  (ledger {})",
        o.status.as_str(),
        crate::text::path(&o.path),
        c.lines,
        c.inserted,
        c.duplicates_in_file,
        c.already_in_warehouse,
        c.conflicting,
        c.rejected,
        c.blank,
        o.elapsed.as_secs_f64(),
        o.file_id,
    );
    if let Some(error) = &o.error {
        line.push_str(&format!(
            "\n    {}: {}",
            crate::text::path(&o.path),
            crate::text::escape(error)
        ));
    }
    if !o.unknown_fields.is_empty() {
        line.push_str(&format!(
            "\n    unknown fields: {}",
            crate::text::escape(&o.unknown_fields.join(", "))
        ));
    }
    line
}

/// Parses `--since`: a UTC date (`2026-11-01`), date and time (`2026-11-01T10:00:00`, `Z` or
/// an offset allowed), or an age as `humantime` reads it (`36h`, `7d`, `90m`, `1h 30m`).
/// Returns microseconds since the epoch.
pub fn parse_since(text: &str, now: chrono::DateTime<chrono::Utc>) -> Result<i64, String> {
    let t = text.trim();
    let parsed = if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_micros())
    } else if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        Some(d.timestamp_micros())
    } else if let Ok(d) = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S") {
        Some(d.and_utc().timestamp_micros())
    } else {
        humantime::parse_duration(t)
            .ok()
            .and_then(|age| i64::try_from(age.as_micros()).ok())
            .map(|age| now.timestamp_micros().saturating_sub(age))
    };
    parsed.ok_or_else(|| {
        format!("--since {text:?}: expected a date (2026-11-01), a UTC date and time (2026-11-01T10:00:00) or an age (36h, 7d, 90m)")
    })
}

/// Left-aligned text columns, numbers right-aligned.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // A number, or a duration such as "0.12s".
    let is_number = |cell: &str| {
        cell.strip_suffix('s')
            .unwrap_or(cell)
            .parse::<f64>()
            .is_ok()
    };
    let numeric: Vec<bool> = (0..header.len())
        .map(|i| !rows.is_empty() && rows.iter().all(|r| is_number(&r[i])))
        .collect();
    let render = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(&numeric)
            .map(|((cell, w), num)| {
                if *num {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let mut s = render(header.to_vec());
    s += &render(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    );
    for row in rows {
        s += &render(row.iter().map(String::as_str).collect());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_date_a_date_and_time_or_an_age() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_micros()
        };
        assert_eq!(
            parse_since("2026-11-01", now),
            Ok(at("2026-11-01T00:00:00Z"))
        );
        assert_eq!(
            parse_since("2026-11-01T10:00:00", now),
            Ok(at("2026-11-01T10:00:00Z"))
        );
        assert_eq!(
            parse_since("2026-11-01T10:00:00+01:00", now),
            Ok(at("2026-11-01T09:00:00Z"))
        );
        assert_eq!(parse_since("36h", now), Ok(at("2026-12-04T00:00:00Z")));
        assert_eq!(parse_since("7d", now), Ok(at("2026-11-28T12:00:00Z")));
        assert_eq!(parse_since("90m", now), Ok(at("2026-12-05T10:30:00Z")));
        assert_eq!(parse_since(" 1h 30m ", now), Ok(at("2026-12-05T10:30:00Z")));
        for bad in ["yesterday", "7", "-3d", "2026-13-01", ""] {
            let e = parse_since(bad, now).unwrap_err();
            assert!(e.contains("expected a date"), "{bad}: {e}");
        }
    }

    #[test]
    fn table_aligns_numbers_right() {
        let t = table(
            &["Year", "Name"],
            &[
                vec!["2017".into(), "a".into()],
                vec!["9".into(), "bcd".into()],
            ],
        );
        assert_eq!(t, "Year  Name\n----  ----\n2017  a\n   9  bcd\n");
    }
}
