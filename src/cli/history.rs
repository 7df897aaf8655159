//! `votewatch history` and `votewatch status`: the ledger, filtered, as a table or JSON.

use super::*;
use crate::config::ReportConfig;
use crate::report::outbox::Outbox;
use crate::warehouse::{Warehouse, WarehouseError};
use std::io::Write;

/// Prints the ledger, newest first (as a table, or one JSON array).
pub fn history(
    wh: &Warehouse,
    limit: u64,
    filter: &crate::model::LedgerFilter,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, WarehouseError> {
    let history = wh.history(limit, filter)?;
    if json {
        let doc: Vec<serde_json::Value> = history
            .iter()
            .map(crate::model::HistoryRow::to_json)
            .collect();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
        return Ok(EXIT_OK);
    }
    let rows: Vec<Vec<String>> = history
        .into_iter()
        .map(|h| {
            let c = h.counts;
            let note = match h.duplicate_of {
                Some(d) if h.error.is_empty() => format!("same content as {d}"),
                _ => crate::text::escape(&h.error).into_owned(),
            };
            vec![
                h.id.to_string(),
                h.started,
                h.status,
                h.dataset.to_string(),
                crate::text::escape(&h.file_name).into_owned(),
                c.lines.to_string(),
                c.inserted.to_string(),
                c.duplicates_in_file.to_string(),
                c.already_in_warehouse.to_string(),
                c.conflicting.to_string(),
                c.rejected.to_string(),
                format!("{:.2}s", h.millis as f64 / 1000.0),
                note,
            ]
        })
        .collect();
    let _ = write!(
        out,
        "{}",
        table(
            &[
                "id",
                "started (UTC)",
                "status",
                "dataset",
                "file",
                "read",
                "inserted",
                "dups",
                "already",
                "conflicting",
                "rejected",
                "time",
                "note"
            ],
            &rows
        )
    );
    Ok(EXIT_OK)
}

/// The ledger by status, and the reports waiting in the outbox.
pub fn status(
    warehouse: &crate::config::WarehouseConfig,
    config: &str,
    cfg: &ReportConfig,
    filter: &crate::model::LedgerFilter,
    json: bool,
    out: &mut impl Write,
) -> u8 {
    let outbox = Outbox::new(&cfg.outbox);
    let waiting = outbox.len();
    if !json {
        let _ = writeln!(
            out,
            "reports waiting in the outbox ({}): {waiting}",
            outbox.dir().display()
        );
    }
    match Warehouse::open_read_only(warehouse, config) {
        Ok(wh) => match wh.status_counts(filter) {
            Ok(rows) if json => {
                let files: serde_json::Map<String, serde_json::Value> =
                    rows.into_iter().map(|(s, n)| (s, n.into())).collect();
                let doc = serde_json::json!({
                    "outbox": outbox.dir().display().to_string(),
                    "reports_waiting": waiting,
                    "files": files,
                });
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&doc).unwrap_or_default()
                );
                EXIT_OK
            }
            Ok(rows) => {
                for (status, n) in rows {
                    let _ = writeln!(out, "files {status}: {n}");
                }
                EXIT_OK
            }
            Err(e) => {
                let _ = writeln!(out, "{e}");
                EXIT_FATAL
            }
        },
        Err(e) => {
            let _ = writeln!(out, "{e}");
            EXIT_FATAL
        }
    }
}
