//! The only module that talks to DuckDB: the schema, the per-file load transaction (staging,
//! dedupe, insert, ledger, rejects, view), the ledger queries and the outlier view. Both kinds
//! of warehouse — a DuckDB file, or DuckLake (`lake`) — go through the same code; what differs
//! (the write lock and fence, the view created once, one insert per file, the ledger filtered
//! by host) is decided here, by `Warehouse::lake`.

mod lake;
/// The PostgreSQL advisory lock key every votewatch host takes to write to a lake.
pub use lake::LOCK_KEY as LAKE_LOCK_KEY;
mod stream;
mod unload;

pub use unload::{LedgerFile, UnloadCounts};

use std::path::{Path, PathBuf};

use duckdb::arrow::record_batch::RecordBatch;

use crate::config::{WarehouseConfig, WarehouseKind};
use duckdb::{params, Appender, Connection};

const SCHEMA_SQL: &str = include_str!("sql/schema.sql");
const SCHEMA_LAKE_SQL: &str = include_str!("sql/schema_lake.sql");
const SCHEMA_TABLES_SQL: &str = include_str!("sql/schema_tables.sql");
const STAGE_LAKE_SQL: &str = include_str!("sql/stage_lake.sql");
const OUTLIER_WEEKS_SQL: &str = include_str!("sql/outlier_weeks.sql");
const STAGE_SQL: &str = include_str!("sql/stage.sql");
const RESOLVE_SQL: &str = include_str!("sql/resolve.sql");
const REPEAT_COUNTS_SQL: &str = include_str!("sql/repeat_counts.sql");
const CLEANUP_SQL: &str = include_str!("sql/cleanup.sql");
const WAREHOUSE_COUNTS_SQL: &str = include_str!("sql/warehouse_counts.sql");
const INSERT_VOTES_SQL: &str = include_str!("sql/insert_votes.sql");
const INSERT_LEDGER_SQL: &str = include_str!("sql/insert_ledger.sql");
const HISTORY_SQL: &str = include_str!("sql/history.sql");
/// A ledger row of a loaded arrival of the content whose SHA-256 is the parameter: loaded or
/// partial when it arrived (whatever happened since: see `arrivals` for that).
const LOADED_CONTENT: &str = "sha256 = ? AND status IN ('loaded', 'partial')";
const UNREPORTED_SQL: &str = include_str!("sql/unreported.sql");

/// A failure of the warehouse itself (as opposed to a bad file): the caller cannot go on
/// with this file now.
#[derive(Debug, thiserror::Error)]
#[error("warehouse {path}: {what}: {source}")]
pub struct WarehouseError {
    pub path: PathBuf,
    pub what: &'static str,
    #[source]
    pub source: duckdb::Error,
}

impl WarehouseError {
    /// True when DuckDB could not stay within its memory limit for this work.
    pub fn is_out_of_memory(&self) -> bool {
        let text = self.source.to_string();
        [
            "Out of Memory Error",
            "could not allocate block",
            "failed to pin block",
        ]
        .iter()
        .any(|m| text.contains(m))
    }

    /// True when another process holds the DuckDB file (its lock), so a retry may succeed.
    /// DuckLake refused the commit because another transaction overlapped it: nothing of it
    /// is kept, and the same work may simply be done again.
    pub fn is_conflict(&self) -> bool {
        conflicted(&self.source)
    }

    /// The lake could not be reached or locked (its catalog's server is down, or another
    /// host held the write lock past the timeout): worth waiting for, like a busy file.
    pub fn is_unavailable(&self) -> bool {
        self.what == LAKE_UNREACHABLE || self.what == LAKE_LOCK_TIMEOUT
    }

    pub fn is_locked(&self) -> bool {
        let text = self.source.to_string();
        text.contains("Could not set lock") || text.contains("Conflicting lock")
    }
}

type Result<T> = std::result::Result<T, WarehouseError>;

/// The outcome of one arrival of a file, as the ledger stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Loaded,
    Partial,
    DuplicateFile,
    Rejected,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Loaded => "loaded",
            Status::Partial => "partial",
            Status::DuplicateFile => "duplicate_file",
            Status::Rejected => "rejected",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Loaded,
            Status::Partial,
            Status::DuplicateFile,
            Status::Rejected,
            Status::Failed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Loaded and partial files were handled; the others were not loaded at all.
    pub fn is_handled(self) -> bool {
        matches!(
            self,
            Status::Loaded | Status::Partial | Status::DuplicateFile
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-file counters. `lines` counts every record read, blank ones included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub lines: u64,
    pub inserted: u64,
    pub duplicates_in_file: u64,
    pub already_in_warehouse: u64,
    pub conflicting: u64,
    pub rejected: u64,
    pub blank: u64,
}

/// One ledger row.
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    pub file_name: String,
    pub source_path: String,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub status: Status,
    pub format: Option<String>,
    pub forced: bool,
    pub duplicate_of: Option<i64>,
    pub counts: Counts,
    pub unknown_fields: Vec<String>,
    /// Microseconds since the epoch, UTC.
    pub started_at: i64,
    pub finished_at: i64,
    pub error: Option<String>,
    /// Where the file is to be moved, decided before the commit and recorded with it (the
    /// daemon); `None` for the CLI, which leaves files where they are.
    pub archived_to: Option<String>,
    /// `Some(false)` when the daemon owes this arrival a report (set true once it is in the
    /// outbox); `None` when no report is due.
    pub report_queued: Option<bool>,
    /// The ledger id this arrival drew already (a load that began, then records the file
    /// without loading it); `None`: one is drawn when the row is written.
    pub ledger_id: Option<i64>,
}

/// A record that is not a vote.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectRow {
    pub line: u64,
    pub element: Option<u64>,
    pub raw: String,
    pub truncated: bool,
    pub reason: String,
}

/// One row of `blog_analysis.outlier_weeks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierWeek {
    pub year: i64,
    pub week: i32,
    pub votes: i64,
}

/// A ledger row as the daemon's report of it needs it.
#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub id: i64,
    pub file_name: String,
    pub status: String,
    pub counts: Counts,
    /// The unknown field names, as JSON text.
    pub unknown_fields: String,
    pub millis: i64,
    pub error: Option<String>,
    pub duplicate_of: Option<i64>,
    pub sha256: Option<String>,
    pub archived_to: Option<String>,
}

/// One row of `votewatch history`.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub id: i64,
    pub file_name: String,
    pub status: String,
    pub counts: Counts,
    pub started: String,
    pub millis: i64,
    pub error: String,
    pub duplicate_of: Option<i64>,
}

/// This host's recent loads, for the freshness check: when the last load finished, and each
/// load since a moment (finished, microseconds since the epoch; new votes).
#[derive(Debug, Clone, Default)]
pub struct RecentLoads {
    pub last_micros: Option<i64>,
    pub loads: Vec<(i64, u64)>,
}

/// Which ledger rows `history` and `status` show; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct LedgerFilter {
    pub status: Option<String>,
    /// Arrivals started at or after this many microseconds since the epoch (UTC).
    pub since_micros: Option<i64>,
    pub file_name: Option<String>,
}

/// An open warehouse: one DuckDB connection with a single owner.
pub struct Warehouse {
    conn: Connection,
    /// The DuckDB file, or a label naming the lake (for messages).
    path: PathBuf,
    /// This host's name, recorded in every ledger row.
    host_id: String,
    /// On DuckLake: the connection that holds the write lock, and how long to wait for it.
    lake: Option<Lake>,
    /// The catalog's password, masked in every error.
    secret: Option<String>,
    /// A scratch warehouse's spill folder, removed with it.
    _scratch: Option<tempfile::TempDir>,
}

struct Lake {
    lock: Connection,
    lock_timeout_secs: u64,
    config: crate::config::DuckLakeConfig,
    /// The next ledger id and the highest vote Id as of one snapshot of the lake, so that a
    /// load whose snapshot is still that one (nothing committed since: every change to a
    /// lake is a new snapshot) need not read them again.
    known: std::cell::Cell<Option<Known>>,
}

#[derive(Debug, Clone, Copy)]
struct Known {
    snapshot: i64,
    max_vote_id: i64,
}

impl Lake {
    /// The highest vote Id in the lake now: read again only when the lake's snapshot is not
    /// the one it is known for. The snapshot id is read first, so a value read after it is
    /// that snapshot's whenever it is still the current one. `sha256`: a content hash to look
    /// up in the ledger while it is read (`seen`: `None` when nothing was read).
    fn state(
        &self,
        conn: &Connection,
        sha256: Option<&str>,
    ) -> duckdb::Result<(i64, Option<bool>)> {
        let snapshot = current_snapshot(conn)?;
        if let Some(k) = self.known.get().filter(|k| k.snapshot == snapshot) {
            return Ok((k.max_vote_id, None));
        }
        let state = ledger_state(conn, sha256)?;
        self.known.set(Some(Known {
            snapshot,
            max_vote_id: state.max_vote_id,
        }));
        Ok((state.max_vote_id, state.seen))
    }

    /// After this host's commit, still under the write lock: the new snapshot's highest Id is
    /// known without reading it.
    fn committed(&self, conn: &Connection, max_vote_id: i64) {
        self.known
            .set(current_snapshot(conn).ok().map(|snapshot| Known {
                snapshot,
                max_vote_id,
            }));
    }
}

/// The id of the lake's latest snapshot.
fn current_snapshot(conn: &Connection) -> duckdb::Result<i64> {
    conn.query_row("SELECT id FROM lake.current_snapshot()", [], |r| r.get(0))
}

const LAKE_UNREACHABLE: &str = "cannot open the lake";
const LAKE_LOCK_TIMEOUT: &str = "cannot take the lake's write lock";

/// How often a short write (a ledger row, an update) is tried when DuckLake reports a
/// conflict with a concurrent transaction.
const CONFLICT_TRIES: u32 = 5;

impl Warehouse {
    /// Opens the warehouse (creating it if needed) and brings its schema and view up to date.
    pub fn open(cfg: &WarehouseConfig) -> Result<Warehouse> {
        match cfg.kind {
            WarehouseKind::Duckdb => Warehouse::open_file(cfg),
            WarehouseKind::Ducklake => Warehouse::open_lake(cfg),
        }
    }

    fn open_file(cfg: &WarehouseConfig) -> Result<Warehouse> {
        let path = cfg.path.as_path();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            // A missing parent shows up as DuckDB's own open error below.
            let _ = std::fs::create_dir_all(parent);
        }
        let open_err = |source| WarehouseError {
            path: path.to_path_buf(),
            what: "cannot open",
            source,
        };
        // DuckDB's buffers are bounded so that a file of any shape loads in bounded memory:
        // beyond the limit, DuckDB spills to `<warehouse>.tmp/`. Empty: DuckDB's default.
        let mut settings = duckdb::Config::default();
        if !cfg.memory_limit.is_empty() {
            settings = settings.max_memory(&cfg.memory_limit).map_err(open_err)?;
        }
        let conn = Connection::open_with_flags(path, settings).map_err(open_err)?;
        let wh = Warehouse {
            conn,
            path: path.to_path_buf(),
            host_id: host_id(cfg),
            lake: None,
            secret: None,
            _scratch: None,
        };
        // One transaction, so a crash leaves the whole schema or none of it.
        wh.conn
            .execute_batch(&format!(
                "BEGIN TRANSACTION;\n{SCHEMA_SQL}\n{SCHEMA_TABLES_SQL}\nCOMMIT;"
            ))
            .map_err(|e| {
                let _ = wh.conn.execute_batch("ROLLBACK");
                wh.err("cannot create the schema", e)
            })?;
        wh.refresh_view()?;
        Ok(wh)
    }

    /// Whether the configured warehouse can be used, without changing it: a DuckDB file is
    /// opened read-only (a missing one is "to be created"); a lake is opened. Returns what was
    /// found, for `votewatch check-config`.
    pub fn probe(cfg: &WarehouseConfig) -> Result<String> {
        if cfg.kind == WarehouseKind::Ducklake {
            let wh = Warehouse::open(cfg)?;
            let n = wh.query_i64("SELECT count(*) FROM blog_analysis.ingested_files")?;
            return Ok(format!("the lake opens; {n} ledger rows"));
        }
        let path = cfg.path.as_path();
        if !path.exists() {
            return Ok("does not exist yet; the first load creates it".into());
        }
        let fail = |source| WarehouseError {
            path: path.to_path_buf(),
            what: "cannot open",
            source,
        };
        let settings = duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .map_err(fail)?;
        let conn = Connection::open_with_flags(path, settings).map_err(fail)?;
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM duckdb_tables() \
                 WHERE schema_name = 'blog_analysis' AND table_name = 'ingested_files'",
                [],
                |r| r.get(0),
            )
            .map_err(fail)?;
        if n == 0 {
            return Ok("opens; no votewatch schema yet (the first load creates it)".into());
        }
        let rows: i64 = conn
            .query_row(
                "SELECT count(*) FROM blog_analysis.ingested_files",
                [],
                |r| r.get(0),
            )
            .map_err(fail)?;
        Ok(format!("opens; {rows} ledger rows"))
    }

    /// A throwaway warehouse in memory (spilling to a temporary folder beyond
    /// `memory_limit`), with the schema: `votewatch check` loads a file into one to report what
    /// a load would, without opening the real warehouse.
    pub fn open_scratch(cfg: &WarehouseConfig) -> Result<Warehouse> {
        let label = PathBuf::from("(check: a scratch warehouse in memory)");
        let fail = |source| WarehouseError {
            path: label.clone(),
            what: "cannot open",
            source,
        };
        let spill = tempfile::tempdir()
            .map_err(|e| fail(message_error(format!("cannot make a spill folder: {e}"))))?;
        let mut settings = duckdb::Config::default()
            .with("temp_directory", spill.path().display().to_string())
            .map_err(fail)?;
        if !cfg.memory_limit.is_empty() {
            settings = settings.max_memory(&cfg.memory_limit).map_err(fail)?;
        }
        let conn = Connection::open_in_memory_with_flags(settings).map_err(fail)?;
        let wh = Warehouse {
            conn,
            path: label.clone(),
            host_id: host_id(cfg),
            lake: None,
            secret: None,
            _scratch: Some(spill),
        };
        wh.conn
            .execute_batch(&format!("{SCHEMA_SQL}\n{SCHEMA_TABLES_SQL}"))
            .map_err(|e| wh.err("cannot create the schema", e))?;
        wh.refresh_view()?;
        Ok(wh)
    }

    fn open_lake(cfg: &WarehouseConfig) -> Result<Warehouse> {
        let d = &cfg.ducklake;
        let label = PathBuf::from(lake::label(d));
        let secret = lake::password(d).ok().flatten();
        let fail = |what: &'static str, message: String| WarehouseError {
            path: label.clone(),
            what,
            source: scrub(message_error(message), secret.as_deref()),
        };
        let settings =
            lake::settings(cfg).map_err(|e| fail("cannot configure DuckDB", e.to_string()))?;
        let conn = Connection::open_in_memory_with_flags(settings)
            .map_err(|e| fail("cannot open DuckDB", e.to_string()))?;
        let lock = lake::attach(&conn, d).map_err(|m| fail(LAKE_UNREACHABLE, m))?;
        let wh = Warehouse {
            conn,
            path: label.clone(),
            host_id: host_id(cfg),
            lake: Some(Lake {
                lock,
                lock_timeout_secs: d.lock_timeout_secs,
                known: std::cell::Cell::new(None),
                config: d.clone(),
            }),
            secret,
            _scratch: None,
        };
        // The views are created once, with the schema: replacing them in every load would make
        // concurrent loads conflict (and add a catalog row per load).
        let once = |sql: &str| sql.replace("CREATE OR REPLACE VIEW", "CREATE VIEW IF NOT EXISTS");
        let (tables, outlier_weeks) = (once(SCHEMA_TABLES_SQL), once(OUTLIER_WEEKS_SQL));
        stream::register(&wh.conn).map_err(|e| wh.err("cannot register the Parquet stream", e))?;
        wh.write("cannot create the schema", |c| {
            c.execute_batch(SCHEMA_LAKE_SQL)?;
            c.execute_batch(&tables)?;
            c.execute_batch(&outlier_weeks)?;
            let max_id: i64 = c.query_row(
                "SELECT coalesce(max(id), 0) FROM blog_analysis.ingested_files",
                [],
                |r| r.get(0),
            )?;
            lake::ensure_ledger_sequence(c, max_id)
        })?;
        // What the first load needs to know of the lake, read now (see `Lake::state`).
        if let Some(l) = &wh.lake {
            l.state(&wh.conn, None)
                .map_err(|e| wh.err(LAKE_UNREACHABLE, e))?;
        }
        Ok(wh)
    }

    /// True on DuckLake.
    pub fn is_lake(&self) -> bool {
        self.lake.is_some()
    }

    /// The host filter of the ledger queries that concern this host's own folders: on a lake
    /// several hosts record arrivals, and two may have the same paths.
    fn own_host(&self) -> Option<&str> {
        self.lake.as_ref().map(|_| self.host_id.as_str())
    }

    /// Runs `f` in a write transaction of its own: on DuckLake under the write lock, with the
    /// fence, and again when DuckLake reports a conflict.
    fn write<T>(
        &self,
        what: &'static str,
        mut f: impl FnMut(&Connection) -> duckdb::Result<T>,
    ) -> Result<T> {
        let mut tries = 0;
        loop {
            tries += 1;
            let result = self.write_once(&mut f);
            match result {
                Err(e) if tries < CONFLICT_TRIES && conflicted(&e) => {
                    tracing::warn!(error = %e, "lake write conflicted with another host's; trying again");
                }
                other => return other.map_err(|e| self.err(what, e)),
            }
        }
    }

    fn write_once<T>(
        &self,
        f: &mut impl FnMut(&Connection) -> duckdb::Result<T>,
    ) -> duckdb::Result<T> {
        if let Some(l) = &self.lake {
            lake::lock(&l.lock, l.lock_timeout_secs)?;
        }
        let mut run = || -> duckdb::Result<T> {
            self.conn.execute_batch("BEGIN TRANSACTION")?;
            let value = f(&self.conn)?;
            if self.lake.is_some() {
                self.conn.execute_batch(lake::FENCE_SQL)?;
            }
            self.conn.execute_batch("COMMIT")?;
            Ok(value)
        };
        let result = run();
        if result.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        if let Some(l) = &self.lake {
            lake::unlock(&l.lock);
        }
        result
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, what: &'static str, source: duckdb::Error) -> WarehouseError {
        WarehouseError {
            path: self.path.clone(),
            what,
            source: scrub(source, self.secret.as_deref()),
        }
    }

    /// Recreates `blog_analysis.outlier_weeks`.
    pub fn refresh_view(&self) -> Result<()> {
        if self.is_lake() {
            return Ok(());
        }
        self.conn
            .execute_batch(OUTLIER_WEEKS_SQL)
            .map_err(|e| self.err("cannot create the outlier_weeks view", e))
    }

    pub fn outlier_weeks(&self) -> Result<Vec<OutlierWeek>> {
        let run = || -> duckdb::Result<Vec<OutlierWeek>> {
            let mut stmt = self.conn.prepare(
                r#"SELECT "Year", "WeekNumber", "VoteCount" FROM blog_analysis.outlier_weeks"#,
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(OutlierWeek {
                    year: r.get(0)?,
                    week: r.get(1)?,
                    votes: r.get(2)?,
                })
            })?;
            rows.collect()
        };
        run().map_err(|e| self.err("cannot read outlier_weeks", e))
    }

    pub fn history(&self, limit: u64, filter: &LedgerFilter) -> Result<Vec<HistoryRow>> {
        let run = || -> duckdb::Result<Vec<HistoryRow>> {
            let mut stmt = self.conn.prepare(HISTORY_SQL)?;
            let f = filter;
            let rows = stmt.query_map(
                params![limit as i64, f.status, f.since_micros, f.file_name],
                |r| {
                    Ok(HistoryRow {
                        id: r.get(0)?,
                        file_name: r.get(1)?,
                        status: r.get(2)?,
                        counts: counts_at(r, 3)?,
                        started: r.get(10)?,
                        millis: r.get(11)?,
                        error: r.get(12)?,
                        duplicate_of: r.get(13)?,
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
            let mut stmt = self.conn.prepare(
                "SELECT DISTINCT source_path FROM blog_analysis.ingested_files \
                 WHERE archived_to IS NULL AND starts_with(source_path, ?) \
                 AND (?::VARCHAR IS NULL OR host_id = ?)",
            )?;
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
            let mut stmt = self.conn.prepare(
                "SELECT id, status FROM blog_analysis.ingested_files \
                 WHERE source_path = ? AND sha256 = ? AND archived_to IS NULL \
                 AND (?::VARCHAR IS NULL OR host_id = ?) \
                 ORDER BY id DESC LIMIT 1",
            )?;
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

    /// The ledger row of a claimed file (by the path votewatch read it from): its id, status
    /// and recorded destination. `None` when its load never committed.
    pub fn find_claim(&self, source_path: &str) -> Result<Option<(i64, Status, Option<String>)>> {
        let run = || -> duckdb::Result<Option<(i64, String, Option<String>)>> {
            let mut stmt = self.conn.prepare(
                "SELECT id, status, archived_to FROM blog_analysis.ingested_files \
                 WHERE source_path = ? AND (?::VARCHAR IS NULL OR host_id = ?) \
                 ORDER BY id DESC LIMIT 1",
            )?;
            let host = self.own_host();
            let mut rows = stmt.query(params![source_path, host, host])?;
            match rows.next()? {
                Some(r) => Ok(Some((r.get(0)?, r.get(1)?, r.get(2)?))),
                None => Ok(None),
            }
        };
        let row = run().map_err(|e| self.err("cannot read the ledger", e))?;
        Ok(row.and_then(|(id, s, to)| Status::parse(&s).map(|st| (id, st, to))))
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
                    counts: counts_at(r, 3)?,
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
        self.write("cannot update the ledger", |c| {
            let mut stmt = c.prepare(
                "UPDATE blog_analysis.ingested_files SET report_queued = true WHERE id = ?",
            )?;
            for id in ids {
                stmt.execute(params![id])?;
            }
            Ok(())
        })
    }

    /// Records where the daemon moved a file.
    pub fn set_archived(&self, file_id: i64, archived_to: &str) -> Result<()> {
        self.write("cannot update the ledger", |c| {
            c.execute(
                "UPDATE blog_analysis.ingested_files SET archived_to = ? WHERE id = ?",
                params![archived_to, file_id],
            )
            .map(|_| ())
        })
    }

    /// Loads (loaded or partial arrivals) that finished at or after `since_micros`, as
    /// (finished, microseconds since the epoch; new votes), and when the last load of all
    /// finished: what the freshness check starts from.
    pub fn loads_since(&self, since_micros: i64) -> Result<RecentLoads> {
        let run = || -> duckdb::Result<RecentLoads> {
            let last: Option<i64> = self.conn.query_row(
                "SELECT epoch_us(max(finished_at)) FROM blog_analysis.ingested_files \
                 WHERE status IN ('loaded', 'partial') AND (?::VARCHAR IS NULL OR host_id = ?)",
                params![self.own_host(), self.own_host()],
                |r| r.get(0),
            )?;
            let mut stmt = self.conn.prepare(
                "SELECT epoch_us(finished_at), rows_inserted FROM blog_analysis.ingested_files \
                 WHERE status IN ('loaded', 'partial') AND finished_at >= make_timestamp(?::BIGINT) \
                   AND (?::VARCHAR IS NULL OR host_id = ?) ORDER BY finished_at",
            )?;
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

    /// Ledger rows per status, most frequent first.
    pub fn status_counts(&self, filter: &LedgerFilter) -> Result<Vec<(String, i64)>> {
        let run = || -> duckdb::Result<Vec<(String, i64)>> {
            let mut stmt = self.conn.prepare(
                "SELECT current_status AS status, count(*) AS n FROM blog_analysis.arrivals \
                 WHERE ($1::VARCHAR IS NULL OR current_status = $1) \
                   AND ($2::BIGINT IS NULL OR started_at >= make_timestamp($2::BIGINT)) \
                   AND ($3::VARCHAR IS NULL OR file_name = $3) \
                 GROUP BY current_status ORDER BY n DESC, current_status",
            )?;
            let f = filter;
            let rows = stmt.query_map(params![f.status, f.since_micros, f.file_name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect()
        };
        run().map_err(|e| self.err("cannot read the ledger", e))
    }

    /// The report's chart: weekly counts of the last 52 weeks present (with the view's week,
    /// mean and outlier rule), the weeks the ledger rows `batch` brought votes to marked.
    pub fn weekly_chart(&self, batch: &[i64]) -> Result<crate::chart::WeeklyChart> {
        let run = || -> duckdb::Result<crate::chart::WeeklyChart> {
            let ids = serde_json::to_string(batch).unwrap_or_else(|_| "[]".into());
            let mut stmt = self.conn.prepare(
                "WITH weekly AS ( \
                   SELECT year(creation_date) AS y, \
                          CAST(strftime(creation_date, '%W') AS INTEGER) AS w, \
                          count(*) AS n, \
                          bool_or(list_contains(CAST(json(?) AS BIGINT[]), file_id)) AS in_batch \
                   FROM blog_analysis.votes GROUP BY ALL), \
                 mean AS (SELECT avg(n) AS m FROM weekly) \
                 SELECT y, w, n, abs(1 - n / m) > 0.2, in_batch, m \
                 FROM weekly, mean ORDER BY y DESC, w DESC LIMIT 52",
            )?;
            let mut mean = 0.0;
            let rows = stmt.query_map(params![ids], |r| {
                Ok((
                    crate::chart::Week {
                        year: r.get(0)?,
                        week: r.get(1)?,
                        votes: r.get(2)?,
                        outlier: r.get(3)?,
                        in_batch: r.get(4)?,
                    },
                    r.get::<_, f64>(5)?,
                ))
            })?;
            let mut weeks = Vec::new();
            for row in rows {
                let (w, m) = row?;
                mean = m;
                weeks.push(w);
            }
            weeks.reverse();
            Ok(crate::chart::WeeklyChart { weeks, mean })
        };
        run().map_err(|e| self.err("cannot count the weekly votes", e))
    }

    pub fn count_outlier_weeks(&self) -> Result<i64> {
        self.query_i64("SELECT count(*) FROM blog_analysis.outlier_weeks")
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

    /// Begins the transaction that loads one file.
    pub fn begin_file(&mut self) -> Result<FileLoad<'_>> {
        let conn = &self.conn;
        let path = &self.path;
        let secret = self.secret.as_deref();
        let err = |what, source| WarehouseError {
            path: path.clone(),
            what,
            source: scrub(source, secret),
        };
        let lake = self.lake.as_ref();
        // On a DuckDB file the transaction begins now. On a lake the file is read and staged
        // in temp tables first, without the write lock, so that several hosts read and parse
        // at once; `FileLoad::lock` takes the lock and begins the transaction before commit.
        if lake.is_none() {
            conn.execute_batch("BEGIN TRANSACTION")
                .map_err(|e| err("cannot begin a transaction", e))?;
        }
        let setup = || -> duckdb::Result<FileLoad<'_>> {
            conn.execute_batch(STAGE_SQL)?;
            // On a lake the ledger id comes from the catalog's sequence (no lock needed).
            let (file_id, max_id_before) = match lake {
                Some(l) => (lake::next_ledger_id(conn)?, l.state(conn, None)?.0),
                None => {
                    let st = ledger_state(conn, None)?;
                    (st.next_file_id, st.max_vote_id)
                }
            };
            conn.execute(
                "INSERT INTO temp.vw_file VALUES (?, ?)",
                params![file_id, max_id_before],
            )?;
            // On a lake, new rows and rejects collect in temp tables and go in with one
            // INSERT each, under the lock.
            let (votes, rejects) = match lake {
                Some(_) => {
                    conn.execute_batch(STAGE_LAKE_SQL)?;
                    (
                        conn.appender_to_catalog_and_db("vw_direct", "temp", "main")?,
                        conn.appender_to_catalog_and_db("vw_rejects", "temp", "main")?,
                    )
                }
                None => (
                    conn.appender_to_db("votes", "blog_analysis")?,
                    conn.appender_to_db("rejected_votes", "blog_analysis")?,
                ),
            };
            Ok(FileLoad {
                conn,
                lake,
                secret,
                host_id: &self.host_id,
                path,
                file_id,
                max_id_before,
                max_id_locked: max_id_before,
                direct_max: max_id_before,
                pending: Vec::new(),
                pending_rows: 0,
                stream: None,
                stream_file: None,
                file_added: false,
                direct_rows: 0,
                staged_rows: 0,
                reject_rows: 0,
                votes: Some(votes),
                stage: Some(conn.appender_to_catalog_and_db("vw_stage", "temp", "main")?),
                rejects: Some(rejects),
                open: lake.is_none(),
                locked: false,
                content_seen: None,
                committed: false,
            })
        };
        setup().map_err(|e| {
            if lake.is_none() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            let _ = conn.execute_batch(CLEANUP_SQL);
            // On a lake the only statements that reach the catalog here are the ledger id and
            // reads of tables that exist since `open`: a failure means the lake cannot be
            // reached.
            let what = if lake.is_some() {
                LAKE_UNREACHABLE
            } else {
                "cannot prepare the load"
            };
            err(what, e)
        })
    }

    /// Tidies the warehouse: on a lake, under the write lock, merges small adjacent Parquet
    /// files, expires snapshots older than `retention_days`, and deletes the data files no
    /// remaining snapshot needs and orphans of interrupted loads older than that; on a DuckDB
    /// file, a checkpoint. Returns the lake's live data files before and after.
    pub fn maintain(&self, retention_days: u32) -> Result<(i64, i64)> {
        let Some(l) = &self.lake else {
            self.conn
                .execute_batch("CHECKPOINT")
                .map_err(|e| self.err("cannot checkpoint", e))?;
            return Ok((0, 0));
        };
        let files = || {
            self.query_i64(
                "SELECT count(*) FROM __ducklake_metadata_lake.ducklake_data_file \
                 WHERE end_snapshot IS NULL",
            )
        };
        lake::lock(&l.lock, l.lock_timeout_secs).map_err(|e| self.err(LAKE_LOCK_TIMEOUT, e))?;
        let run = || -> Result<(i64, i64)> {
            let before = files()?;
            // The functions commit by themselves (CALL, never inside a SELECT).
            // The cut-off as a literal of our own clock (TIMESTAMPTZ arithmetic in SQL would
            // need the icu extension).
            let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(retention_days));
            let older = format!(
                "older_than => '{}'::TIMESTAMPTZ",
                cutoff.format("%Y-%m-%d %H:%M:%S%.6f+00")
            );
            self.conn
                .execute_batch(&format!(
                    "CALL ducklake_merge_adjacent_files('lake');
                     CALL ducklake_expire_snapshots('lake', {older});
                     CALL ducklake_cleanup_old_files('lake', {older});
                     CALL ducklake_delete_orphaned_files('lake', {older});"
                ))
                .map_err(|e| self.err("maintenance failed", e))?;
            Ok((before, files()?))
        };
        let result = run();
        lake::unlock(&l.lock);
        result
    }

    /// Runs a read-only query and returns the first column of the first row; for tests and
    /// the benchmark.
    pub fn query_i64(&self, sql: &str) -> Result<i64> {
        self.conn
            .query_row(sql, [], |r| r.get(0))
            .map_err(|e| self.err("query failed", e))
    }

    /// Runs a read-only query and returns the first column of the first row as text.
    pub fn query_string(&self, sql: &str) -> Result<String> {
        self.conn
            .query_row(sql, [], |r| r.get(0))
            .map_err(|e| self.err("query failed", e))
    }

    /// Runs SQL statements; for the benchmark's baseline.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        self.conn
            .execute_batch(sql)
            .map_err(|e| self.err("statement failed", e))
    }
}

/// `e` with every occurrence of `secret` (the catalog's password) masked: an error of the
/// postgres extension may quote the connection string.
fn scrub(e: duckdb::Error, secret: Option<&str>) -> duckdb::Error {
    match secret {
        Some(p) if !p.is_empty() && e.to_string().contains(p) => {
            message_error(e.to_string().replace(p, "***"))
        }
        _ => e,
    }
}

/// An error carrying a message of votewatch's own.
fn message_error(message: String) -> duckdb::Error {
    duckdb::Error::ToSqlConversionFailure(Box::new(std::io::Error::other(message)))
}

fn conflicted(e: &duckdb::Error) -> bool {
    e.to_string().contains("Transaction conflict")
}

/// The configured host id, or this host's name.
fn host_id(cfg: &WarehouseConfig) -> String {
    match cfg.ducklake.host_id.trim() {
        "" => lake::host_name(),
        id => id.to_string(),
    }
}

/// The seven ledger counters, in the column order of `ingested_files`, from column `first`.
fn counts_at(r: &duckdb::Row<'_>, first: usize) -> duckdb::Result<Counts> {
    let n = |i: usize| -> duckdb::Result<u64> { Ok(r.get::<_, i64>(first + i)? as u64) };
    Ok(Counts {
        lines: n(0)?,
        inserted: n(1)?,
        duplicates_in_file: n(2)?,
        already_in_warehouse: n(3)?,
        conflicting: n(4)?,
        rejected: n(5)?,
        blank: n(6)?,
    })
}

/// What a load needs to know before its rows go in: the next ledger id, the highest vote Id,
/// and, given a content hash, whether the ledger has an arrival of that content whose status
/// was loaded or partial (one scan of the ledger for all three).
#[derive(Debug, Clone, Copy)]
struct LedgerState {
    next_file_id: i64,
    max_vote_id: i64,
    seen: Option<bool>,
}

/// Reads the [`LedgerState`]. The highest vote Id: the ledger records the highest Id after
/// each load (`max_vote_id`); only rows above that are looked at in `votes` (zone maps and
/// DuckLake's file statistics skip the rest), so the answer is exact even when something else
/// wrote to `votes`, and costs nothing that grows with the warehouse when nothing did.
fn ledger_state(conn: &Connection, sha256: Option<&str>) -> duckdb::Result<LedgerState> {
    let (next_file_id, recorded, seen): (i64, i64, bool) = conn.query_row(
        &format!(
            "SELECT coalesce(max(id), 0) + 1, coalesce(max(max_vote_id), 0), \
             count(*) FILTER (WHERE {LOADED_CONTENT}) > 0 FROM blog_analysis.ingested_files"
        ),
        params![sha256],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let max_vote_id = conn.query_row(
        "SELECT greatest(?, coalesce(max(id), 0)) FROM blog_analysis.votes WHERE id > ?",
        params![recorded, recorded],
        |r| r.get(0),
    )?;
    Ok(LedgerState {
        next_file_id,
        max_vote_id,
        seen: sha256.map(|_| seen),
    })
}

fn next_file_id(conn: &Connection) -> duckdb::Result<i64> {
    conn.query_row(
        "SELECT coalesce(max(id), 0) + 1 FROM blog_analysis.ingested_files",
        [],
        |r| r.get(0),
    )
}

fn insert_ledger(
    conn: &Connection,
    id: i64,
    e: &LedgerEntry,
    host_id: &str,
    max_vote_id: Option<i64>,
) -> duckdb::Result<()> {
    let c = &e.counts;
    let unknown = serde_json::to_string(&e.unknown_fields).unwrap_or_else(|_| "[]".into());
    conn.execute(
        INSERT_LEDGER_SQL,
        params![
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
        ],
    )?;
    Ok(())
}

/// How the staged rows are turned into votes at the end of a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Insert the first occurrence of each Id that the warehouse does not hold yet.
    Insert,
    /// Record the ledger row and the rejects only (the file is rejected whole).
    RecordOnly,
}

/// The open transaction of one file. Dropping it without [`FileLoad::commit`] rolls back.
pub struct FileLoad<'w> {
    conn: &'w Connection,
    /// On a lake: the lock connection and timeout; the lock is held from [`FileLoad::lock`]
    /// until the file ends.
    lake: Option<&'w Lake>,
    /// The catalog's password, masked in errors.
    secret: Option<&'w str>,
    host_id: &'w str,
    path: &'w Path,
    /// The file's ledger id.
    pub file_id: i64,
    /// The highest Id in the warehouse when the file began. A row whose Id is above it and
    /// above every Id before it in the file is new for sure.
    pub max_id_before: i64,
    /// The highest Id when the transaction began: on a lake, other hosts may have loaded Ids
    /// above `max_id_before` while this file was read, and rows between the two are checked
    /// again under the lock.
    max_id_locked: i64,
    /// The highest Id of the rows that went straight in.
    direct_max: i64,
    /// On a lake: new rows held back until there are enough of them for a Parquet file of
    /// their own (fewer go in through the temp table, so that DuckLake may keep them in the
    /// catalog); then the stream writing that file, and its path.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    stream: Option<stream::ParquetStream>,
    stream_file: Option<String>,
    /// The stream's file was added to the lake by the commit (else it is deleted).
    file_added: bool,
    /// Rows appended straight to `votes` (or on a lake, its temp table or Parquet file): the
    /// file's inserts that need no resolving.
    direct_rows: u64,
    /// Rows appended to the staging table.
    staged_rows: u64,
    reject_rows: u64,
    /// Appends rows that are new for sure straight into `votes`, inside the transaction.
    votes: Option<Appender<'w>>,
    /// Appends the other rows to the per-connection staging table.
    stage: Option<Appender<'w>>,
    /// Appends rejects straight into `rejected_votes`, inside the transaction (on a lake,
    /// into a temp table).
    rejects: Option<Appender<'w>>,
    /// The transaction is open.
    open: bool,
    /// On a lake: this load holds the write lock.
    locked: bool,
    /// A content hash and whether the ledger had a loaded arrival of it, when [`FileLoad::lock`]
    /// read the ledger.
    content_seen: Option<(String, bool)>,
    committed: bool,
}

/// On a lake, a load with more new rows than this writes them as a Parquet file while it
/// reads (one parser chunk is held back in memory until then).
const STREAM_AFTER_ROWS: usize = 16 * 1024;

impl<'w> FileLoad<'w> {
    fn err(&self, what: &'static str, source: duckdb::Error) -> WarehouseError {
        WarehouseError {
            path: self.path.to_path_buf(),
            what,
            source: scrub(source, self.secret),
        }
    }

    /// The ledger id of an earlier arrival of the same content that was loaded.
    pub fn find_loaded(&self, sha256: &str) -> Result<Option<i64>> {
        // Most files are new: a loaded arrival's ledger status is loaded or partial whatever
        // happened since, so when the ledger has no such row (known from `lock`, or one look at
        // the ledger alone) there is none. Only then does `arrivals` say whether it still counts
        // (it was not unloaded).
        if let Some((h, false)) = &self.content_seen {
            if h == sha256 {
                return Ok(None);
            }
        }
        let run = || -> duckdb::Result<Option<i64>> {
            let seen: bool = self.conn.query_row(
                &format!(
                    "SELECT count(*) > 0 FROM blog_analysis.ingested_files WHERE {LOADED_CONTENT}"
                ),
                params![sha256],
                |r| r.get(0),
            )?;
            if !seen {
                return Ok(None);
            }
            self.conn.query_row(
                "SELECT min(id) FROM blog_analysis.arrivals \
                 WHERE sha256 = ? AND current_status IN ('loaded', 'partial')",
                params![sha256],
                |r| r.get(0),
            )
        };
        run().map_err(|e| self.err("cannot read the ledger", e))
    }

    /// Appends rows that are new for sure to `votes` (its columns, `file_id` last).
    pub fn append_new_votes(&mut self, batch: RecordBatch) -> Result<()> {
        self.direct_rows += batch.num_rows() as u64;
        if let Some(ids) = batch
            .column(0)
            .as_any()
            .downcast_ref::<duckdb::arrow::array::Int64Array>()
        {
            if let Some(m) = duckdb::arrow::compute::max(ids) {
                self.direct_max = self.direct_max.max(m);
            }
        }
        if let Some(lake) = self.lake {
            return self.append_to_lake(lake, batch);
        }
        let votes = self
            .votes
            .as_mut()
            .expect("votes appender open until commit");
        votes
            .append_record_batch(batch)
            .map_err(|e| self.err("cannot append votes", e))
    }

    /// On a lake: holds new rows back until there are more than [`STREAM_AFTER_ROWS`], then
    /// streams them (those held back first) into the load's Parquet file.
    fn append_to_lake(&mut self, lake: &Lake, batch: RecordBatch) -> Result<()> {
        if self.stream.is_none() {
            self.pending_rows += batch.num_rows();
            self.pending.push(batch);
            if self.pending_rows <= STREAM_AFTER_ROWS {
                return Ok(());
            }
            let path = lake::votes_file(&lake.config, self.file_id);
            if !lake::is_s3(&path) {
                if let Some(dir) = Path::new(&path).parent() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        self.err(
                            "cannot write the load's Parquet file",
                            message_error(format!("cannot create {}: {e}", dir.display())),
                        )
                    })?;
                }
            }
            let started = stream::ParquetStream::start(self.conn, &lake::sql_literal(&path))
                .map_err(|e| self.err("cannot write the load's Parquet file", e))?;
            self.stream = Some(started);
            self.stream_file = Some(path);
            for b in std::mem::take(&mut self.pending) {
                self.send_to_stream(b)?;
            }
            return Ok(());
        }
        self.send_to_stream(batch)
    }

    fn send_to_stream(&mut self, batch: RecordBatch) -> Result<()> {
        let sent = self.stream.as_ref().is_some_and(|s| s.send(batch));
        if sent {
            return Ok(());
        }
        // The writer stopped: its error says why.
        let error = match self.stream.take().map(|s| s.finish()) {
            Some(Err(e)) => e,
            _ => message_error("the Parquet writer stopped".into()),
        };
        Err(self.err("cannot write the load's Parquet file", error))
    }

    /// Stages rows to resolve at the end of the file (columns as in `sql/stage.sql`).
    pub fn append_staged(&mut self, batch: RecordBatch) -> Result<()> {
        self.staged_rows += batch.num_rows() as u64;
        let stage = self
            .stage
            .as_mut()
            .expect("stage appender open until commit");
        stage
            .append_record_batch(batch)
            .map_err(|e| self.err("cannot stage votes", e))
    }

    pub fn append_rejects(&mut self, rows: &[RejectRow]) -> Result<()> {
        let file_id = self.file_id;
        self.reject_rows += rows.len() as u64;
        let app = self
            .rejects
            .as_mut()
            .expect("reject appender open until commit");
        let mut run = || -> duckdb::Result<()> {
            for r in rows {
                app.append_row(params![
                    file_id,
                    r.line as i64,
                    r.element.map(|e| e as i64),
                    r.raw,
                    r.truncated,
                    r.reason
                ])?;
            }
            Ok(())
        };
        run().map_err(|e| self.err("cannot record rejects", e))
    }

    /// On a lake: flushes the staged rows, takes the write lock (waiting at most the lock
    /// timeout), begins the transaction and reads the ledger id and the highest Id as every
    /// host's committed loads left them. What follows (the duplicate-content check, the
    /// commit) sees every earlier load. On a DuckDB file, whose transaction began with the
    /// file, nothing. [`FileLoad::commit`] calls it when the caller has not. `sha256`: the
    /// file's content hash, looked up in the ledger when the ledger is read anyway (for
    /// [`FileLoad::find_loaded`]).
    pub fn lock(&mut self, sha256: Option<&str>) -> Result<()> {
        let Some(lake) = self.lake else {
            return Ok(());
        };
        if self.locked {
            return Ok(());
        }
        if let Some(s) = self.stream.take() {
            s.finish()
                .map_err(|e| self.err("cannot write the load's Parquet file", e))?;
        }
        // Too few new rows for a file of their own: they go in through the temp table.
        let pending = std::mem::take(&mut self.pending);
        if let Some(votes) = self.votes.as_mut() {
            let staged = pending
                .into_iter()
                .try_for_each(|b| votes.append_record_batch(b));
            staged.map_err(|e| self.err("cannot stage votes", e))?;
        }
        for mut a in [self.votes.take(), self.stage.take(), self.rejects.take()]
            .into_iter()
            .flatten()
        {
            a.flush().map_err(|e| self.err("cannot stage votes", e))?;
        }
        lake::lock(&lake.lock, lake.lock_timeout_secs)
            .map_err(|e| self.err(LAKE_LOCK_TIMEOUT, e))?;
        self.locked = true;
        let conn = self.conn;
        let begin = || -> duckdb::Result<(i64, Option<bool>)> {
            conn.execute_batch("BEGIN TRANSACTION")?;
            lake.state(conn, sha256)
        };
        match begin() {
            Ok((max_now, seen)) => {
                self.open = true;
                self.max_id_locked = max_now.max(self.max_id_before);
                self.content_seen = sha256.zip(seen).map(|(h, seen)| (h.to_string(), seen));
                Ok(())
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                self.release();
                Err(self.err(LAKE_UNREACHABLE, e))
            }
        }
    }

    /// Finishes the file in one transaction: dedupe, insert, counts, ledger row, view.
    /// `entry.counts` brings the reader's counts (lines, rejected, blank); the others are
    /// filled in here and returned.
    pub fn commit(mut self, mut entry: LedgerEntry, finish: Finish) -> Result<Counts> {
        self.lock(None)?;
        let votes = self.votes.take();
        let stage = self.stage.take();
        let rejects = self.rejects.take();
        let conn = self.conn;
        let file_id = self.file_id;
        let (direct_rows, staged_rows) = (self.direct_rows, self.staged_rows);
        let (max_id_before, max_id_locked) = (self.max_id_before, self.max_id_locked);
        let direct_max = self.direct_max;
        let lake = self.lake.is_some();
        let reject_rows = self.reject_rows;
        let host_id = self.host_id;
        // On a lake, the new rows are in the load's Parquet file (read back with read_parquet
        // only where a query needs them) or, for a small load, in the temp table.
        let parquet = self
            .stream_file
            .as_deref()
            .map(|p| format!("read_parquet({})", lake::sql_literal(p)));
        let run = || -> duckdb::Result<(Counts, i64, bool)> {
            // Appenders flush when dropped; flush explicitly to see errors.
            for mut a in [votes, stage, rejects].into_iter().flatten() {
                a.flush()?;
            }
            let mut counts = entry.counts;
            // Where this file's new rows are: votes itself, or on a lake the Parquet file or
            // the temp table that goes into the lake with one INSERT below.
            let direct = match (&parquet, lake) {
                (Some(p), _) => p.as_str(),
                (None, true) => "temp.vw_direct",
                (None, false) => "blog_analysis.votes",
            };
            // Where resolved rows go: with the direct ones, unless those are a written file.
            let target = match parquet {
                Some(_) => "blog_analysis.votes",
                None => direct,
            };
            // Which of `rows` the warehouse holds already (`vw_present`): how many with the
            // same values, how many with others.
            let present = |rows: &str, bounds: &[i64]| -> duckdb::Result<(i64, i64)> {
                conn.execute(
                    &WAREHOUSE_COUNTS_SQL.replace("{rows}", rows),
                    duckdb::params_from_iter(bounds),
                )?;
                conn.query_row(
                    "SELECT count(*) FILTER (WHERE same), count(*) FILTER (WHERE NOT same) \
                     FROM temp.vw_present",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            };
            let mut candidates_max = 0;
            let mut add_file = parquet.is_some();
            if finish == Finish::Insert {
                counts.inserted = direct_rows;
                if staged_rows > 0 {
                    conn.execute_batch(&RESOLVE_SQL.replace("{direct}", direct))?;
                    let (dups, conflicting): (i64, i64) =
                        conn.query_row(REPEAT_COUNTS_SQL, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    counts.duplicates_in_file = dups as u64;
                    counts.conflicting = conflicting as u64;
                    let candidates: i64 =
                        conn.query_row("SELECT count(*) FROM temp.vw_candidates", [], |r| {
                            r.get(0)
                        })?;
                    if candidates > 0 {
                        let (already, conflicting) = present("temp.vw_candidates", &[])?;
                        counts.already_in_warehouse = already as u64;
                        counts.conflicting += conflicting as u64;
                        counts.inserted += conn.execute(
                            &INSERT_VOTES_SQL.replace("{target}", target),
                            params![file_id],
                        )? as u64;
                        candidates_max = conn.query_row(
                            "SELECT coalesce(max(id), 0) FROM temp.vw_candidates c \
                             WHERE NOT EXISTS (SELECT 1 FROM temp.vw_present p WHERE p.id = c.id)",
                            [],
                            |r| r.get(0),
                        )?;
                    }
                }
                if max_id_locked > max_id_before {
                    // Another host loaded Ids above the old maximum while this file was read:
                    // rows that went straight in with Ids up to the new maximum may be held
                    // already (the first committed wins).
                    let (already, conflicting) = present(
                        &format!("(SELECT * FROM {direct} WHERE id > $1 AND id <= $2)"),
                        &[max_id_before, max_id_locked],
                    )?;
                    counts.already_in_warehouse += already as u64;
                    counts.conflicting += conflicting as u64;
                    counts.inserted -= (already + conflicting) as u64;
                    if already + conflicting > 0 {
                        match &parquet {
                            // The written file holds rows the lake must not get twice: its
                            // other rows go in by INSERT instead (rare: hosts loading the
                            // same Ids at once).
                            Some(p) => {
                                add_file = false;
                                conn.execute_batch(&format!(
                                    "INSERT INTO blog_analysis.votes SELECT * FROM {p} \
                                     WHERE id NOT IN (SELECT id FROM temp.vw_present)"
                                ))?;
                            }
                            None => conn.execute_batch(
                                "DELETE FROM temp.vw_direct \
                                 WHERE id IN (SELECT id FROM temp.vw_present)",
                            )?,
                        }
                    }
                }
                if add_file {
                    if let Some(path) = &self.stream_file {
                        conn.execute(
                            "CALL ducklake_add_data_files('lake', 'votes', ?, \
                             schema => 'blog_analysis')",
                            params![path],
                        )?;
                    }
                } else if lake && parquet.is_none() {
                    conn.execute_batch(
                        "INSERT INTO blog_analysis.votes SELECT * FROM temp.vw_direct",
                    )?;
                }
            } else {
                // Rejected whole: nothing of the file's votes may stay (the rejects do). On a
                // lake they never left the temp table or the unadded file.
                add_file = false;
                if !lake {
                    conn.execute(
                        "DELETE FROM blog_analysis.votes WHERE file_id = ?",
                        params![file_id],
                    )?;
                }
            }
            if lake && reject_rows > 0 {
                conn.execute_batch(
                    "INSERT INTO blog_analysis.rejected_votes SELECT * FROM temp.vw_rejects",
                )?;
            }
            entry.counts = counts;
            // The highest Id after this load (rows at or below the old maximum cannot raise it;
            // a file rejected whole added none). On a lake it is known without a scan: rows a
            // late check removed are at or below the new maximum.
            let max_after: i64 = match finish {
                Finish::Insert if lake => max_id_locked.max(direct_max).max(candidates_max),
                Finish::Insert => conn.query_row(
                    "SELECT greatest(?, coalesce(max(id), 0)) FROM blog_analysis.votes \
                     WHERE file_id = ? AND id > ?",
                    params![max_id_locked, file_id, max_id_locked],
                    |r| r.get(0),
                )?,
                Finish::RecordOnly => max_id_locked,
            };
            insert_ledger(conn, file_id, &entry, host_id, Some(max_after))?;
            if lake {
                // The view is the lake's, created once; the fence row makes an overlapping
                // load of another host conflict.
                conn.execute_batch(lake::FENCE_SQL)?;
                crate::failpoint::stall("fenced");
            } else {
                conn.execute_batch(OUTLIER_WEEKS_SQL)?;
            }
            crate::failpoint::hit("before_commit");
            crate::failpoint::busy_io("slow_commit");
            conn.execute_batch("COMMIT")?;
            Ok((counts, max_after, add_file))
        };
        let result = run();
        match result {
            Ok((counts, max_after, added)) => {
                self.open = false;
                self.committed = true;
                self.file_added = added;
                if let Some(l) = self.lake {
                    l.committed(conn, max_after);
                }
                let _ = conn.execute_batch(CLEANUP_SQL);
                self.release();
                self.remove_unadded_file();
                Ok(counts)
            }
            Err(e) => Err(self.err("cannot commit the file", e)),
        }
    }

    /// Deletes the load's Parquet file when the lake did not take it (a rollback, a file
    /// rejected whole, rows another host loaded meanwhile). On S3 it stays an orphan until
    /// `maintain` deletes it.
    fn remove_unadded_file(&mut self) {
        if self.file_added {
            return;
        }
        if let Some(path) = self.stream_file.take() {
            if !lake::is_s3(&path) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// Rolls the file back: nothing of it stays.
    pub fn rollback(self) {
        drop(self);
    }

    /// Releases the lake's write lock, when this load holds it.
    fn release(&mut self) {
        if let (Some(l), true) = (self.lake, self.locked) {
            lake::unlock(&l.lock);
            self.locked = false;
        }
    }
}

impl Drop for FileLoad<'_> {
    fn drop(&mut self) {
        // Appenders must go before the rollback; their rows are discarded with it.
        self.votes.take();
        self.stage.take();
        self.rejects.take();
        if !self.committed {
            if self.open {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            let _ = self.conn.execute_batch(CLEANUP_SQL);
            self.release();
            // The writer ends before its file is deleted.
            drop(self.stream.take());
            self.remove_unadded_file();
        }
    }
}
