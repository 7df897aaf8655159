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
