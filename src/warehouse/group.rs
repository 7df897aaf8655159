//! The shared transaction of a group of small files (group commit). The files were read and
//! judged before it began; here the group's ledger ids are drawn, the earlier loads of their
//! contents and the warehouse's rows for their Ids are looked up, and then everything the
//! group decided is written with a few statements and one commit. Which row goes in is
//! decided by `pipeline::group`, by the same rules as a file's own transaction.

use std::collections::HashMap;

use super::ledger::with_ledger_params;
use super::*;
use crate::datasets::votes::Vote;

const GROUP_STAGE_SQL: &str = include_str!("sql/group_stage.sql");
const GROUP_CLEANUP_SQL: &str = include_str!("sql/group_cleanup.sql");
const GROUP_PRESENT_SQL: &str = include_str!("sql/group_present.sql");
const GROUP_LOADED_CONTENTS_SQL: &str = include_str!("sql/group_loaded_contents.sql");
const GROUP_INSERT_SQL: &str = include_str!("sql/group_insert.sql");
pub(super) const LAKE_NEXT_LEDGER_IDS_SQL: &str = include_str!("sql/lake_next_ledger_ids.sql");

/// One ledger row the group writes: the entry, its ledger id and, for a file whose load ran
/// to the end, the highest vote Id after it.
pub struct GroupRow<'a> {
    pub file_id: i64,
    pub entry: &'a LedgerEntry,
    pub max_vote_id: Option<i64>,
}

/// The open transaction of a group. Dropping it without [`GroupLoad::commit`] rolls back.
pub struct GroupLoad<'w> {
    conn: &'w Connection,
    lake: Option<&'w Lake>,
    secret: Option<&'w str>,
    host_id: &'w str,
    path: &'w Path,
    /// The highest vote Id when the transaction began (on a lake: under the write lock).
    pub max_id: i64,
    /// On a DuckDB file: the next ledger id.
    next_file_id: i64,
    locked: bool,
    open: bool,
    committed: bool,
}

impl Warehouse {
    /// Begins a group's transaction: on a lake, the write lock first, so that the lookups
    /// that follow see every host's loads.
    pub fn begin_group(&mut self) -> Result<GroupLoad<'_>> {
        let mut group = GroupLoad {
            conn: &self.conn,
            lake: self.lake.as_ref(),
            secret: self.secret.as_deref(),
            host_id: &self.host_id,
            path: &self.path,
            max_id: 0,
            next_file_id: 0,
            locked: false,
            open: false,
            committed: false,
        };
        if let Some(lake) = group.lake {
            lake.lock().map_err(|e| group.err(LAKE_LOCK_TIMEOUT, e))?;
            group.locked = true;
        }
        let conn = group.conn;
        let lake = group.lake;
        let begin = || -> duckdb::Result<(i64, i64)> {
            conn.execute_batch("BEGIN TRANSACTION")?;
            conn.execute_batch(GROUP_STAGE_SQL)?;
            match lake {
                Some(l) => Ok((0, l.state(conn, None)?.0)),
                None => {
                    let st = ledger_state(conn, None)?;
                    Ok((st.next_file_id, st.max_vote_id))
                }
            }
        };
        group.open = true;
        match begin() {
            Ok((next, max)) => {
                group.next_file_id = next;
                group.max_id = max;
                Ok(group)
            }
            Err(e) => {
                let what = if lake.is_some() {
                    LAKE_UNREACHABLE
                } else {
                    "cannot begin the group's transaction"
                };
                Err(group.err(what, e))
            }
        }
    }
}

impl<'w> GroupLoad<'w> {
    fn err(&self, what: &'static str, source: duckdb::Error) -> WarehouseError {
        WarehouseError {
            path: self.path.to_path_buf(),
            what,
            source: scrub(source, self.secret),
        }
    }

    /// `n` new ledger ids, in order: the next ones on a DuckDB file, the catalog's sequence's
    /// on a lake.
    pub fn ledger_ids(&mut self, n: usize) -> Result<Vec<i64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        match self.lake {
            None => {
                let first = self.next_file_id;
                self.next_file_id += n as i64;
                Ok((first..first + n as i64).collect())
            }
            Some(_) => {
                let sql = render(
                    LAKE_NEXT_LEDGER_IDS_SQL,
                    &[("sequence", lake::LEDGER_SEQUENCE), ("n", &n.to_string())],
                );
                let run = || -> duckdb::Result<Vec<i64>> {
                    let mut stmt = self.conn.prepare(&sql)?;
                    let ids = stmt.query_map([], |r| r.get::<_, i64>(0))?;
                    let mut ids = ids.collect::<duckdb::Result<Vec<i64>>>()?;
                    ids.sort_unstable();
                    Ok(ids)
                };
                run().map_err(|e| self.err(LAKE_UNREACHABLE, e))
            }
        }
    }

    /// For each content hash that has an arrival counting as loaded now, the first such
    /// arrival's ledger id.
    pub fn loaded_contents(&self, hashes: &[&str]) -> Result<HashMap<String, i64>> {
        let run = || -> duckdb::Result<HashMap<String, i64>> {
            if hashes.is_empty() {
                return Ok(HashMap::new());
            }
            fill_temp(self.conn, "vw_group_shas", hashes)?;
            let mut stmt = self.conn.prepare(GROUP_LOADED_CONTENTS_SQL)?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            rows.collect()
        };
        run().map_err(|e| self.err("cannot read the ledger", e))
    }

    /// The warehouse's rows for `ids` (distinct), by Id.
    pub fn present(&self, ids: &[i64]) -> Result<HashMap<i64, Vote>> {
        let run = || -> duckdb::Result<HashMap<i64, Vote>> {
            if ids.is_empty() {
                return Ok(HashMap::new());
            }
            fill_temp(self.conn, "vw_group_ids", ids)?;
            let mut stmt = self.conn.prepare(GROUP_PRESENT_SQL)?;
            let rows = stmt.query_map([], |r| {
                Ok(Vote {
                    id: r.get(0)?,
                    post_id: r.get(1)?,
                    vote_type_id: r.get(2)?,
                    user_id: r.get(3)?,
                    bounty_amount: r.get(4)?,
                    creation_date: r.get(5)?,
                })
            })?;
            rows.map(|v| v.map(|v| (v.id, v))).collect()
        };
        run().map_err(|e| self.err("cannot look up the group's votes", e))
    }

    /// Writes the group and commits: the new votes (each with its file's ledger id), the
    /// stored rejects, every ledger row and Id range, the weekly counts, the view (on a lake
    /// the fence). `max_after`: the highest vote Id after the group.
    pub fn commit(
        mut self,
        ledger: &[GroupRow<'_>],
        votes: &[(Vote, i64)],
        rejects: &[(i64, &RejectRow)],
        max_after: i64,
    ) -> Result<()> {
        if ledger
            .iter()
            .any(|r| crate::testing::failpoint::fails_for("commit_error", &r.entry.file_name))
        {
            return Err(self.err(
                "cannot commit the group",
                duckdb::Error::DuckDBFailure(
                    duckdb::ffi::Error::new(duckdb::ffi::DuckDBError),
                    Some("Constraint Error: injected by the commit_error failpoint".into()),
                ),
            ));
        }
        let conn = self.conn;
        let lake = self.lake.is_some();
        let host_id = self.host_id;
        let run = || -> duckdb::Result<()> {
            if !votes.is_empty() {
                let mut app = conn.appender_to_catalog_and_db("vw_group_votes", "temp", "main")?;
                app.append_record_batch(crate::datasets::votes::arrow::votes_batch(votes))?;
                app.flush()?;
            }
            if !rejects.is_empty() {
                let mut app =
                    conn.appender_to_catalog_and_db("vw_group_rejects", "temp", "main")?;
                for (file_id, r) in rejects {
                    append_reject(&mut app, *file_id, r)?;
                }
                app.flush()?;
            }
            {
                let mut ranges =
                    conn.appender_to_catalog_and_db("vw_group_ranges", "temp", "main")?;
                let mut rows =
                    conn.appender_to_catalog_and_db("vw_group_ledger", "temp", "main")?;
                for row in ledger {
                    // As a file's own load: the Id range of every file whose rows were loaded.
                    if let Some((lo, hi)) = row.entry.id_range {
                        if matches!(row.entry.status, Status::Loaded | Status::Partial) {
                            ranges.append_row(params![row.file_id, lo, hi])?;
                        }
                    }
                    with_ledger_params(row.file_id, row.entry, host_id, row.max_vote_id, |p| {
                        rows.append_row(p)
                    })?;
                }
                ranges.flush()?;
                rows.flush()?;
            }
            conn.execute_batch(GROUP_INSERT_SQL)?;
            if !votes.is_empty() {
                let weeks = weekly::Delta::begin(conn)?;
                weeks.add(weekly::GROUP_ROWS, 1, &[])?;
                weeks.apply()?;
            }
            if lake {
                conn.execute_batch(lake::FENCE_SQL)?;
                crate::testing::failpoint::stall("fenced");
            } else {
                conn.execute_batch(OUTLIER_WEEKS_SQL)?;
            }
            crate::testing::failpoint::hit("before_commit");
            crate::testing::failpoint::busy_io("slow_commit");
            conn.execute_batch("COMMIT")
        };
        match run() {
            Ok(()) => {
                self.open = false;
                self.committed = true;
                if let Some(l) = self.lake {
                    l.committed(conn, max_after);
                }
                Ok(())
            }
            Err(e) => Err(self.err("cannot commit the group", e)),
        }
    }
}

impl Drop for GroupLoad<'_> {
    fn drop(&mut self) {
        if self.open && !self.committed {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        let _ = self.conn.execute_batch(GROUP_CLEANUP_SQL);
        if let (Some(l), true) = (self.lake, self.locked) {
            lake::unlock(&l.lock);
            self.locked = false;
        }
    }
}
