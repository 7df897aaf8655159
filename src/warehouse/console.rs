//! What the operator console shows, read in one go after each batch by the loader (which
//! owns the connection): the newest ledger rows, and the newest arrivals in full with their
//! first rejects and any unload. The HTTP surface serves it from memory and never touches
//! DuckDB.

use std::collections::HashMap;

use super::*;
use crate::model::{LoadDetail, StatusCount};

const CONSOLE_DETAILS_SQL: &str = include_str!("sql/console_details.sql");
const CONSOLE_REJECTS_SQL: &str = include_str!("sql/console_rejects.sql");
const CONSOLE_UNLOADS_SQL: &str = include_str!("sql/console_unloads.sql");
const CONSOLE_COUNTS_SQL: &str = include_str!("sql/console_counts.sql");

impl Warehouse {
    /// Arrivals and new rows per status since `day_ago` and since `week_ago` (microseconds
    /// since the epoch).
    pub fn status_windows(&self, day_ago: i64, week_ago: i64) -> Result<Vec<StatusCount>> {
        let run = || -> duckdb::Result<Vec<StatusCount>> {
            let mut stmt = self.conn.prepare(CONSOLE_COUNTS_SQL)?;
            let rows = stmt.query_map(params![day_ago, week_ago], |r| {
                Ok(StatusCount {
                    status: r.get(0)?,
                    files_day: r.get(1)?,
                    rows_day: r.get(2)?,
                    files_week: r.get(3)?,
                    rows_week: r.get(4)?,
                })
            })?;
            rows.collect()
        };
        run().map_err(|e| self.err("cannot read the ledger", e))
    }

    /// The newest `rows` ledger rows (as `history`), and the newest `details` arrivals in full
    /// with at most `rejects` of their first rejects each.
    pub fn console(
        &self,
        rows: u64,
        details: u64,
        rejects: u64,
    ) -> Result<(Vec<HistoryRow>, Vec<LoadDetail>)> {
        let history = self.history(rows, &LedgerFilter::default())?;
        let run = || -> duckdb::Result<Vec<LoadDetail>> {
            let mut stmt = self.conn.prepare(CONSOLE_DETAILS_SQL)?;
            let found = stmt.query_map(params![details as i64], |r| {
                let unknown: Option<String> = r.get(6)?;
                Ok(LoadDetail {
                    id: r.get(0)?,
                    sha256: r.get(1)?,
                    size: r.get(2)?,
                    format: r.get(3)?,
                    forced: r.get(4)?,
                    archived_to: r.get(5)?,
                    unknown_fields: unknown
                        .and_then(|u| serde_json::from_str(&u).ok())
                        .unwrap_or_default(),
                    report_queued: r.get(7)?,
                    host_id: r.get(8)?,
                    started: r.get(9)?,
                    finished: r.get(10)?,
                    arrived: r.get(11)?,
                    claimed: r.get(12)?,
                    archived: r.get(13)?,
                    rejects: Vec::new(),
                    unload: None,
                })
            })?;
            let mut found = found.collect::<duckdb::Result<Vec<LoadDetail>>>()?;
            let Some(lowest) = found.iter().map(|d| d.id).min() else {
                return Ok(found);
            };
            let at: HashMap<i64, usize> =
                found.iter().enumerate().map(|(k, d)| (d.id, k)).collect();
            let mut stmt = self.conn.prepare(CONSOLE_REJECTS_SQL)?;
            let mut rows = stmt.query(params![lowest, rejects as i64])?;
            while let Some(r) = rows.next()? {
                if let Some(&k) = at.get(&r.get::<_, i64>(0)?) {
                    found[k].rejects.push(RejectRow {
                        line: r.get::<_, i64>(1)? as u64,
                        element: r.get::<_, Option<i64>>(2)?.map(|e| e as u64),
                        raw: r.get(3)?,
                        truncated: r.get(4)?,
                        reason: r.get(5)?,
                    });
                }
            }
            let mut stmt = self.conn.prepare(CONSOLE_UNLOADS_SQL)?;
            let mut rows = stmt.query(params![lowest])?;
            while let Some(r) = rows.next()? {
                if let Some(&k) = at.get(&r.get::<_, i64>(0)?) {
                    found[k].unload = Some((r.get(1)?, r.get(2)?, r.get(3)?));
                }
            }
            Ok(found)
        };
        let found = run().map_err(|e| self.err("cannot read the ledger", e))?;
        Ok((history, found))
    }
}
