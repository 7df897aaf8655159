//! `votewatch outliers` and `votewatch maintain`.

use super::*;
use crate::warehouse::{Warehouse, WarehouseError};
use std::io::Write;

/// Recreates the view and prints it.
pub fn outliers(wh: &Warehouse, out: &mut impl Write) -> Result<u8, WarehouseError> {
    let rows: Vec<Vec<String>> = wh
        .outlier_weeks()?
        .iter()
        .map(|w| vec![w.year.to_string(), w.week.to_string(), w.votes.to_string()])
        .collect();
    let _ = write!(
        out,
        "{}",
        table(&["Year", "WeekNumber", "VoteCount"], &rows)
    );
    let _ = writeln!(out, "({} rows)", rows.len());
    Ok(EXIT_OK)
}

/// `votewatch maintain`: tidies the warehouse and says what changed; with `verify`, first
/// checks `weekly_votes` against `votes` and repairs it (exit status 1 when it differed).
pub fn maintain(
    wh: &Warehouse,
    retention_days: u32,
    reject_retention_days: u32,
    verify: bool,
    out: &mut impl Write,
) -> Result<u8, WarehouseError> {
    let mut status = EXIT_OK;
    if reject_retention_days > 0 {
        let n = wh.expire_rejects(reject_retention_days, chrono::Utc::now())?;
        let _ = writeln!(
            out,
            "rejects older than {reject_retention_days} days deleted: {n} (the ledger keeps their counts)"
        );
    }
    if verify {
        let differences = wh.verify_weekly(true)?;
        if differences.is_empty() {
            let _ = writeln!(
                out,
                "weekly_votes verified: equal to a recomputation from votes"
            );
        } else {
            status = EXIT_PROBLEM;
            let rows: Vec<Vec<String>> = differences
                .iter()
                .map(|d| {
                    vec![
                        d.year.to_string(),
                        d.week.to_string(),
                        d.kept.to_string(),
                        d.recomputed.to_string(),
                    ]
                })
                .collect();
            let _ = writeln!(
                out,
                "weekly_votes differed from votes in {} weeks; repaired:",
                rows.len()
            );
            let _ = write!(
                out,
                "{}",
                table(&["year", "week", "kept", "recomputed"], &rows)
            );
        }
    }
    let (before, after) = wh.maintain(retention_days)?;
    let line = if wh.is_lake() {
        format!(
            "lake maintained: {before} data files before, {after} after; snapshots and unreferenced files older than {retention_days} days removed"
        )
    } else {
        "warehouse checkpointed (a DuckDB file needs nothing else)".to_string()
    };
    let _ = writeln!(out, "{line}");
    Ok(status)
}
