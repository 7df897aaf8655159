//! `votewatch unload` and `reingest`, the warehouse's part: the ledger rows they act on, and
//! the one transaction that removes a file's votes, counts what later files had delivered for
//! the same Ids, optionally loads those again (first wins among what remains), and records the
//! unload.

use duckdb::arrow::record_batch::RecordBatch;
use duckdb::params;

use super::{lake, Result, Warehouse, CLEANUP_SQL, VOTES_DELETE_FILE_SQL};
use crate::model::{LedgerFile, UnloadCounts};

const UNLOAD_LEDGER_FILE_SQL: &str = include_str!("sql/unload_ledger_file.sql");
const UNLOAD_LATER_LOADED_SQL: &str = include_str!("sql/unload_later_loaded.sql");
const UNLOAD_VOTE_ID_RANGE_SQL: &str = include_str!("sql/unload_vote_id_range.sql");
const UNLOAD_LATER_VOTES_SQL: &str = include_str!("sql/unload_later_votes.sql");
const UNLOAD_KEEP_REMOVED_SQL: &str = include_str!("sql/unload_keep_removed.sql");
const UNLOAD_LATER_COUNTS_SQL: &str = include_str!("sql/unload_later_counts.sql");
const UNLOAD_RELOAD_LATER_SQL: &str = include_str!("sql/unload_reload_later.sql");
const UNLOAD_RECORD_SQL: &str = include_str!("sql/unload_record.sql");
const UNLOAD_CLEANUP_SQL: &str = include_str!("sql/unload_cleanup.sql");

impl LedgerFile {
    /// Where its bytes are now: the archive when the daemon moved it, else where it was read.
    pub fn stored_at(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(self.archived_to.as_deref().unwrap_or(&self.source_path))
    }
}

fn ledger_file(r: &duckdb::Row<'_>) -> duckdb::Result<LedgerFile> {
    Ok(LedgerFile {
        id: r.get(0)?,
        file_name: r.get(1)?,
        source_path: r.get(2)?,
        archived_to: r.get(3)?,
        sha256: r.get(4)?,
        status: r.get(5)?,
        unloaded: r.get(6)?,
        dataset: super::ledger::dataset_at(r, 7)?,
    })
}

impl Warehouse {
    pub fn ledger_file(&self, id: i64) -> Result<Option<LedgerFile>> {
        let run = || -> duckdb::Result<Option<LedgerFile>> {
            let mut stmt = self.conn.prepare(UNLOAD_LEDGER_FILE_SQL)?;
            let mut rows = stmt.query(params![id])?;
            rows.next()?.map(ledger_file).transpose()
        };
        run().map_err(|e| self.err("cannot read the ledger", e))
    }

    /// The loaded arrivals after `id` (still loaded), in ledger order, that can hold an Id in
    /// `lo..=hi` (their recorded Id range meets it, or none is recorded): the files whose
    /// votes may have met the Ids of `id`.
    pub fn later_loaded(&self, id: i64, (lo, hi): (i64, i64)) -> Result<Vec<LedgerFile>> {
        let run = || -> duckdb::Result<Vec<LedgerFile>> {
            let mut stmt = self.conn.prepare(UNLOAD_LATER_LOADED_SQL)?;
            let rows = stmt.query_map(params![id, lo, hi], ledger_file)?;
            rows.collect()
        };
        run().map_err(|e| self.err("cannot read the ledger", e))
    }

    /// The lowest and highest vote Id ledger row `id` brought (`None`: it holds no votes).
    pub fn vote_id_range(&self, id: i64) -> Result<Option<(i64, i64)>> {
        let run = || -> duckdb::Result<Option<(i64, i64)>> {
            let (lo, hi): (Option<i64>, Option<i64>) =
                self.conn
                    .query_row(UNLOAD_VOTE_ID_RANGE_SQL, params![id], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
            Ok(lo.zip(hi))
        };
        run().map_err(|e| self.err("cannot read votes", e))
    }

    /// The votes of this (scratch) warehouse with Ids in `range` (inclusive) as Arrow batches
    /// in the columns of `votes`, each row's `file_id` set to `file_id`: what a later file
    /// delivered (first wins within the file) of the Ids an unloaded file held, for
    /// [`Warehouse::unload`]. Only that range is kept in memory, however large the file.
    pub fn votes_as(&self, file_id: i64, range: (i64, i64)) -> Result<Vec<RecordBatch>> {
        let run = || -> duckdb::Result<Vec<RecordBatch>> {
            let mut stmt = self.conn.prepare(UNLOAD_LATER_VOTES_SQL)?;
            let batches = stmt
                .query_arrow(params![file_id, range.0, range.1])?
                .collect();
            Ok(batches)
        };
        run().map_err(|e| self.err("cannot read votes", e))
    }

    /// Removes the votes of ledger row `id` in one transaction and records it in `unloads`.
    /// `later` holds what later files delivered (their votes, `file_id` = their ledger id);
    /// votes of theirs whose Id the removed rows held are counted as already there (same
    /// values) or conflicting, and with `reload` the first of them per freed Id (lowest ledger
    /// id) is loaded. `dry_run`: everything is computed, then rolled back.
    pub fn unload(
        &mut self,
        id: i64,
        reason: Option<&str>,
        later: Vec<RecordBatch>,
        later_unreadable: u64,
        reload: bool,
        dry_run: bool,
    ) -> Result<UnloadCounts> {
        if let Some(l) = &self.lake {
            l.lock()
                .map_err(|e| self.err(super::LAKE_LOCK_TIMEOUT, e))?;
        }
        let conn = &self.conn;
        let run = || -> duckdb::Result<UnloadCounts> {
            conn.execute_batch(
                "BEGIN TRANSACTION;
                 CREATE OR REPLACE TEMP TABLE vw_later AS SELECT * FROM blog_analysis.votes LIMIT 0;",
            )?;
            {
                let mut app = conn.appender_to_catalog_and_db("vw_later", "temp", "main")?;
                for b in later {
                    app.append_record_batch(b)?;
                }
            }
            conn.execute(UNLOAD_KEEP_REMOVED_SQL, params![id])?;
            let (already, conflicting): (i64, i64) =
                conn.query_row(UNLOAD_LATER_COUNTS_SQL, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let weeks = super::weekly::Delta::begin(conn)?;
            weeks.add(super::weekly::REMOVED_ROWS, -1, &[])?;
            let removed = conn.execute(VOTES_DELETE_FILE_SQL, params![id])? as u64;
            let reloaded = if reload {
                conn.execute(UNLOAD_RELOAD_LATER_SQL, [])? as u64
            } else {
                0
            };
            if reloaded > 0 {
                weeks.add(super::weekly::RELOADED_ROWS, 1, &[])?;
            }
            weeks.apply()?;
            let counts = UnloadCounts {
                votes_removed: removed,
                later_already: already as u64,
                later_conflicting: conflicting as u64,
                reloaded,
                later_unreadable,
            };
            conn.execute(
                UNLOAD_RECORD_SQL,
                params![
                    id,
                    chrono::Utc::now().timestamp_micros(),
                    reason,
                    counts.votes_removed as i64,
                    counts.later_already as i64,
                    counts.later_conflicting as i64,
                    counts.reloaded as i64,
                    counts.later_unreadable as i64
                ],
            )?;
            if self.lake.is_some() {
                conn.execute_batch(lake::FENCE_SQL)?;
            } else {
                conn.execute_batch(super::OUTLIER_WEEKS_SQL)?;
            }
            conn.execute_batch(if dry_run { "ROLLBACK" } else { "COMMIT" })?;
            Ok(counts)
        };
        let result = run();
        if result.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        let _ = conn.execute_batch(CLEANUP_SQL);
        let _ = conn.execute_batch(UNLOAD_CLEANUP_SQL);
        if let Some(l) = &self.lake {
            lake::unlock(&l.lock);
        }
        result.map_err(|e| self.err("cannot unload the file", e))
    }
}
