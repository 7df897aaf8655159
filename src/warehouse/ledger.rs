//! The ledger: recording an arrival, and every question the daemon, the reports and the
//! commands ask of it (history, claims, reports owed, recent loads, counts per status).

use super::*;

pub(super) const LEDGER_STATE_SQL: &str = include_str!("sql/ledger_state.sql");

const LEDGER_UNARCHIVED_SOURCES_SQL: &str = include_str!("sql/ledger_unarchived_sources.sql");
const LEDGER_FIND_UNARCHIVED_SQL: &str = include_str!("sql/ledger_find_unarchived.sql");
const LEDGER_FIND_CLAIM_SQL: &str = include_str!("sql/ledger_find_claim.sql");
const LEDGER_MARK_REPORTED_SQL: &str = include_str!("sql/ledger_mark_reported.sql");
const LEDGER_REPORTED_STAGE_SQL: &str = include_str!("sql/ledger_reported_stage.sql");
const LEDGER_SET_ARCHIVED_SQL: &str = include_str!("sql/ledger_set_archived.sql");
const LEDGER_LAST_LOAD_SQL: &str = include_str!("sql/ledger_last_load.sql");
const LEDGER_LOADS_SINCE_SQL: &str = include_str!("sql/ledger_loads_since.sql");
const LEDGER_STATUS_COUNTS_SQL: &str = include_str!("sql/ledger_status_counts.sql");
const VOTES_MAX_ID_ABOVE_SQL: &str = include_str!("sql/votes_max_id_above.sql");
const LEDGER_LOADED_SIZE_SQL: &str = include_str!("sql/ledger_loaded_size.sql");
const LEDGER_LOADED_ARRIVAL_SQL: &str = include_str!("sql/ledger_loaded_arrival.sql");
const LEDGER_NEXT_FILE_ID_SQL: &str = include_str!("sql/ledger_next_file_id.sql");

impl Warehouse {
    pub fn history(&self, limit: u64, filter: &LedgerFilter) -> Result<Vec<HistoryRow>> {
        let run = || -> duckdb::Result<Vec<HistoryRow>> {
            let mut stmt = self.conn.prepare(HISTORY_SQL)?;
            let f = filter;
            let rows = stmt.query_map(
                params![
                    limit as i64,
                    f.status,
                    f.since_micros,
                    f.file_name,
                    f.dataset
                ],
                |r| {
                    Ok(HistoryRow {
                        id: r.get(0)?,
                        file_name: r.get(1)?,
                        status: r.get(2)?,
                        counts: Counts {
                            updated: r.get::<_, i64>(15)? as u64,
                            ..counts_at(r, 3)?
                        },
                        started: r.get(10)?,
                        millis: r.get(11)?,
                        error: r.get(12)?,
                        duplicate_of: r.get(13)?,
                        dataset: dataset_at(r, 14)?,
                    })
                },
            )?;
            rows.collect()
        };
        run().map_err(|e| self.err("cannot read the ledger", e))
    }

    /// Paths under `folder` that have a ledger row whose file was never archived: the only
    /// files a restart may need to archive without loading.
    pub fn unarchived_sources(&self, folder: &str) -> Result<std::collections::HashSet<String>> {
        let run = || -> duckdb::Result<std::collections::HashSet<String>> {
            let mut stmt = self.conn.prepare(LEDGER_UNARCHIVED_SOURCES_SQL)?;
            let host = self.own_host();
            let rows = stmt.query_map(params![folder, host, host], |r| r.get(0))?;
            rows.collect()
        };
        run().map_err(|e| self.err("cannot read the ledger", e))
    }

    /// The latest ledger row for this path and content whose file was never archived: the
    /// daemon committed it, then stopped before moving the file.
    pub fn find_unarchived(
        &self,
        source_path: &str,
        sha256: &str,
    ) -> Result<Option<(i64, Status)>> {
        let run = || -> duckdb::Result<Option<(i64, String)>> {
            let mut stmt = self.conn.prepare(LEDGER_FIND_UNARCHIVED_SQL)?;
            let host = self.own_host();
            let mut rows = stmt.query(params![source_path, sha256, host, host])?;
            match rows.next()? {
                Some(r) => Ok(Some((r.get(0)?, r.get(1)?))),
                None => Ok(None),
            }
        };
        let row = run().map_err(|e| self.err("cannot read the ledger", e))?;
        Ok(row.and_then(|(id, s)| Status::parse(&s).map(|st| (id, st))))
    }

    /// The ledger row of a claimed file (by the path votewatch read it from): its id, status,
    /// recorded destination and what its journal line says. `None` when its load never
    /// committed.
    pub fn find_claim(&self, source_path: &str) -> Result<Option<ClaimRow>> {
        let run = || -> duckdb::Result<Option<(i64, String, ClaimRow)>> {
            let mut stmt = self.conn.prepare(LEDGER_FIND_CLAIM_SQL)?;
            let host = self.own_host();
            let mut rows = stmt.query(params![source_path, host, host])?;
            match rows.next()? {
                Some(r) => Ok(Some((
                    r.get(0)?,
                    r.get(1)?,
                    ClaimRow {
                        id: r.get(0)?,
                        status: Status::Failed,
                        archived_to: r.get(2)?,
                        dataset: dataset_at(r, 3)?,
                        sha256: r.get(4)?,
                        forced: r.get(5)?,
                        file_name: r.get(6)?,
                    },
                ))),
                None => Ok(None),
            }
        };
        let row = run().map_err(|e| self.err("cannot read the ledger", e))?;
        Ok(row.and_then(|(_, s, row)| Status::parse(&s).map(|status| ClaimRow { status, ..row })))
    }

    /// Ledger rows whose report the daemon owes (committed, never queued), oldest first.
    pub fn unreported(&self) -> Result<Vec<LedgerRow>> {
        let run = || -> duckdb::Result<Vec<LedgerRow>> {
            let mut stmt = self.conn.prepare(UNREPORTED_SQL)?;
            let host = self.own_host();
            let rows = stmt.query_map(params![host, host], |r| {
                Ok(LedgerRow {
                    id: r.get(0)?,
                    file_name: r.get(1)?,
                    status: r.get(2)?,
                    counts: Counts {
                        updated: r.get::<_, i64>(17)? as u64,
                        ..counts_at(r, 3)?
                    },
                    dataset: dataset_at(r, 16)?,
                    unknown_fields: r.get(10)?,
                    millis: r.get(11)?,
                    error: r.get(12)?,
                    duplicate_of: r.get(13)?,
                    sha256: r.get(14)?,
                    archived_to: r.get(15)?,
                })
            })?;
            rows.collect()
        };
        run().map_err(|e| self.err("cannot read the ledger", e))
    }

    /// Records that the reports of these ledger rows are in the outbox.
    pub fn mark_reported(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        // One statement for the batch, whatever its size: on a lake every statement that
        // changes rows is costly. The ids go in through a temp table.
        self.write("cannot update the ledger", |c| {
            c.execute_batch(LEDGER_REPORTED_STAGE_SQL)?;
            fill_temp(c, "vw_reported", ids)?;
            let now = chrono::Utc::now().timestamp_micros().to_string();
            c.execute_batch(&render(LEDGER_MARK_REPORTED_SQL, &[("now", &now)]))
        })
    }

    /// Records where the daemon moved a file.
    pub fn set_archived(&self, file_id: i64, archived_to: &str) -> Result<()> {
        self.write("cannot update the ledger", |c| {
            c.execute(LEDGER_SET_ARCHIVED_SQL, params![archived_to, file_id])
                .map(|_| ())
        })
    }

    /// Loads (loaded or partial arrivals) that finished at or after `since_micros`, as
    /// (finished, microseconds since the epoch; new votes), and when the last load of all
    /// finished: what the freshness check starts from.
    pub fn loads_since(&self, since_micros: i64) -> Result<RecentLoads> {
        let run = || -> duckdb::Result<RecentLoads> {
            let last: Option<i64> = self.conn.query_row(
                LEDGER_LAST_LOAD_SQL,
                params![self.own_host(), self.own_host()],
                |r| r.get(0),
            )?;
            let mut stmt = self.conn.prepare(LEDGER_LOADS_SINCE_SQL)?;
            let rows = stmt.query_map(
                params![since_micros, self.own_host(), self.own_host()],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64)),
            )?;
            Ok(RecentLoads {
                last_micros: last,
                loads: rows.collect::<duckdb::Result<_>>()?,
            })
        };
        run().map_err(|e| self.err("cannot read the ledger", e))
    }

    /// Whether an arrival of exactly `size` bytes counts as loaded now.
    pub fn loaded_size_seen(&self, size: u64) -> Result<bool> {
        self.conn
            .query_row(LEDGER_LOADED_SIZE_SQL, params![size as i64], |r| r.get(0))
            .map_err(|e| self.err("cannot read the ledger", e))
    }

    /// The first arrival of the content `sha256` that counts as loaded now, with what reading
    /// it found.
    pub fn loaded_arrival(&self, sha256: &str) -> Result<Option<EarlierLoad>> {
        let run = || -> duckdb::Result<Option<EarlierLoad>> {
            let mut stmt = self.conn.prepare(LEDGER_LOADED_ARRIVAL_SQL)?;
            let mut rows = stmt.query_map(params![sha256], |r| {
                let unknown: Option<String> = r.get(3)?;
                Ok(EarlierLoad {
                    id: r.get(0)?,
                    lines: r.get::<_, i64>(1)? as u64,
                    format: r.get(2)?,
                    unknown_fields: unknown
                        .and_then(|u| serde_json::from_str(&u).ok())
                        .unwrap_or_default(),
                })
            })?;
            rows.next().transpose()
        };
        run().map_err(|e| self.err("cannot read the ledger", e))
    }

    /// Ledger rows per status, most frequent first.
    pub fn status_counts(&self, filter: &LedgerFilter) -> Result<Vec<(String, i64)>> {
        let run = || -> duckdb::Result<Vec<(String, i64)>> {
            let mut stmt = self.conn.prepare(LEDGER_STATUS_COUNTS_SQL)?;
            let f = filter;
            let rows = stmt.query_map(
                params![f.status, f.since_micros, f.file_name, f.dataset],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            rows.collect()
        };
        run().map_err(|e| self.err("cannot read the ledger", e))
    }

    /// Records an arrival that loads nothing (a failed read, a duplicate file) in a
    /// transaction of its own. Returns the ledger id.
    pub fn record_only(&mut self, entry: &LedgerEntry) -> Result<i64> {
        let host = self.host_id.clone();
        let lake = self.lake.is_some();
        self.write("cannot record the file in the ledger", |c| {
            let id = match (entry.ledger_id, lake) {
                (Some(id), _) => id,
                (None, true) => lake::next_ledger_id(c)?,
                (None, false) => next_file_id(c)?,
            };
            insert_ledger(c, id, entry, &host, None)?;
            Ok(id)
        })
    }
}

/// An earlier arrival of some content that counts as loaded, and what reading it found: the
/// same bytes are read the same way, so a re-sent copy is recorded with these.
/// A claimed file's committed ledger row, as recovery needs it.
#[derive(Debug, Clone)]
pub struct ClaimRow {
    pub id: i64,
    pub status: Status,
    pub archived_to: Option<String>,
    pub dataset: crate::datasets::Dataset,
    pub sha256: Option<String>,
    pub forced: bool,
    pub file_name: String,
}

#[derive(Debug, Clone)]
pub struct EarlierLoad {
    pub id: i64,
    pub lines: u64,
    pub format: Option<String>,
    pub unknown_fields: Vec<String>,
}

/// The dataset named in column `i` (a name this version does not know reads as votes).
pub(super) fn dataset_at(
    r: &duckdb::Row<'_>,
    i: usize,
) -> duckdb::Result<crate::datasets::Dataset> {
    let name: String = r.get(i)?;
    Ok(crate::datasets::Dataset::from_name(&name).unwrap_or_default())
}

/// The seven ledger counters, in the column order of `ingested_files`, from column `first`.
pub(super) fn counts_at(r: &duckdb::Row<'_>, first: usize) -> duckdb::Result<Counts> {
    let n = |i: usize| -> duckdb::Result<u64> { Ok(r.get::<_, i64>(first + i)? as u64) };
    Ok(Counts {
        lines: n(0)?,
        inserted: n(1)?,
        duplicates_in_file: n(2)?,
        already_in_warehouse: n(3)?,
        conflicting: n(4)?,
        rejected: n(5)?,
        blank: n(6)?,
        updated: 0,
    })
}

/// What a load needs to know before its rows go in: the next ledger id, the highest vote Id,
/// and, given a content hash, whether the ledger has an arrival of that content whose status
/// was loaded or partial (one scan of the ledger for all three).
#[derive(Debug, Clone, Copy)]
pub(super) struct LedgerState {
    pub(super) next_file_id: i64,
    pub(super) max_vote_id: i64,
    pub(super) seen: Option<bool>,
}

/// Reads the [`LedgerState`]. The highest vote Id: the ledger records the highest Id after
/// each load (`max_vote_id`); only rows above that are looked at in `votes` (zone maps and
/// DuckLake's file statistics skip the rest), so the answer is exact even when something else
/// wrote to `votes`, and costs nothing that grows with the warehouse when nothing did.
pub(super) fn ledger_state(conn: &Connection, sha256: Option<&str>) -> duckdb::Result<LedgerState> {
    let (next_file_id, recorded, seen): (i64, i64, bool) = conn.query_row(
        &render(
            LEDGER_STATE_SQL,
            &[("loaded_content", &render(LOADED_CONTENT_SQL, &[]))],
        ),
        params![sha256],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let max_vote_id = conn.query_row(VOTES_MAX_ID_ABOVE_SQL, params![recorded, recorded], |r| {
        r.get(0)
    })?;
    Ok(LedgerState {
        next_file_id,
        max_vote_id,
        seen: sha256.map(|_| seen),
    })
}

pub(super) fn next_file_id(conn: &Connection) -> duckdb::Result<i64> {
    conn.query_row(LEDGER_NEXT_FILE_ID_SQL, [], |r| r.get(0))
}

pub(super) fn insert_ledger(
    conn: &Connection,
    id: i64,
    e: &LedgerEntry,
    host_id: &str,
    max_vote_id: Option<i64>,
) -> duckdb::Result<()> {
    with_ledger_params(id, e, host_id, max_vote_id, |p| {
        conn.execute(INSERT_LEDGER_SQL, p).map(|_| ())
    })
}

/// Calls `f` with the values of a ledger row, in the order of `insert_ledger.sql` (and of
/// `temp.vw_group_ledger`): the unknown fields as JSON, the times as microseconds.
pub(super) fn with_ledger_params<T>(
    id: i64,
    e: &LedgerEntry,
    host_id: &str,
    max_vote_id: Option<i64>,
    f: impl FnOnce(&[&dyn duckdb::ToSql]) -> duckdb::Result<T>,
) -> duckdb::Result<T> {
    let c = &e.counts;
    let unknown = serde_json::to_string(&e.unknown_fields).unwrap_or_else(|_| "[]".into());
    f(params![
        id,
        e.file_name,
        e.source_path,
        e.sha256,
        e.size.map(|s| s as i64),
        e.status.as_str(),
        e.format,
        e.forced,
        e.duplicate_of,
        c.lines as i64,
        c.inserted as i64,
        c.duplicates_in_file as i64,
        c.already_in_warehouse as i64,
        c.conflicting as i64,
        c.rejected as i64,
        c.blank as i64,
        unknown,
        e.started_at,
        e.finished_at,
        e.error,
        e.archived_to,
        e.report_queued,
        host_id,
        max_vote_id,
        e.dataset.name(),
        c.updated as i64,
        e.journal_id,
        e.arrived_at,
        e.claimed_at,
    ])
}
