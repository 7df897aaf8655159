//! The only module that talks to DuckDB. `mod.rs` opens a warehouse (a DuckDB file, a scratch
//! one in memory, or DuckLake through `lake`) and runs short write transactions (`write`,
//! under the lake's lock and fence); `load` is one file's transaction; `ledger` the ledger's
//! rows and queries; `views` the analysts' view and the chart's numbers; `maintain` compaction
//! and checkpoints; `unload` taking a delivery back; `stream` the Parquet writer of large lake
//! loads; `error` what failed. Statements live in `sql/`, templates filled by [`render`] (the
//! few exceptions are listed in ARCHITECTURE.md's invariants). Owns the
//! connection; returns `model` types. Must not touch: files in landing/, work/ or the archive,
//! the outbox, the metrics.

mod console;
mod error;
mod group;
mod lake;
mod ledger;
mod load;
mod maintain;
mod posts;
mod stream;
mod unload;
mod views;
mod weekly;

pub use error::WarehouseError;
use error::{conflicted, message_error, scrub, Result};
pub use group::{GroupLoad, GroupRow};
/// The PostgreSQL advisory lock key every votewatch host takes to write to a lake.
pub use lake::LOCK_KEY as LAKE_LOCK_KEY;
use ledger::{insert_ledger, ledger_state};
pub use ledger::{ClaimRow, EarlierLoad};
pub use load::{FileLoad, Finish, Resolved};
pub(crate) use stream::{channel as batch_channel, BatchSender};
pub use weekly::WeekDifference;

use std::path::{Path, PathBuf};

use duckdb::arrow::record_batch::RecordBatch;

use crate::config::{WarehouseConfig, WarehouseKind};
use crate::model::{
    Counts, HistoryRow, LedgerEntry, LedgerFilter, LedgerRow, OutlierWeek, RecentLoads, RejectRow,
    Status,
};
use duckdb::{params, Appender, Connection};

const LAKE_CURRENT_SNAPSHOT_SQL: &str = include_str!("sql/lake_current_snapshot.sql");
const LEDGER_COUNT_SQL: &str = include_str!("sql/ledger_count.sql");
/// Every vote a file brought (a file rejected whole, an unload).
const VOTES_DELETE_FILE_SQL: &str = include_str!("sql/votes_delete_file.sql");
const LEDGER_EXISTS_SQL: &str = include_str!("sql/ledger_exists.sql");
const LEDGER_MAX_ID_SQL: &str = include_str!("sql/ledger_max_id.sql");

const SCHEMA_SQL: &str = include_str!("sql/schema.sql");
const SCHEMA_LAKE_SQL: &str = include_str!("sql/schema_lake.sql");
const SCHEMA_TABLES_SQL: &str = include_str!("sql/schema_tables.sql");
const SCHEMA_POSTS_SQL: &str = include_str!("sql/schema_posts.sql");
const SCHEMA_LEDGER_COLUMNS_SQL: &str = include_str!("sql/schema_ledger_columns.sql");
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
const LOADED_CONTENT_SQL: &str = include_str!("sql/loaded_content.sql");
const UNREPORTED_SQL: &str = include_str!("sql/unreported.sql");

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
    /// Beaten while waiting for the write lock, and seen for a stop.
    interrupt: crate::interrupt::Interrupt,
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

    /// Takes the write lock (see [`lake::lock`]); a stop while waiting is an error of its
    /// own (`LAKE_LOCK_STOPPED`), told by [`WarehouseError::is_stopped`].
    fn lock(&self) -> duckdb::Result<()> {
        lake::lock(&self.lock, self.lock_timeout_secs, &self.interrupt).map_err(|e| match e {
            lake::LockError::Stopped => message_error(LAKE_LOCK_STOPPED.to_string()),
            lake::LockError::Failed(e) => e,
        })
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
    conn.query_row(LAKE_CURRENT_SNAPSHOT_SQL, [], |r| r.get(0))
}

const LAKE_UNREACHABLE: &str = "cannot open the lake";
const LAKE_LOCK_TIMEOUT: &str = "cannot take the lake's write lock";
/// How long a read-only command waits for a DuckDB file another process holds (the daemon
/// holds it while a batch loads) before it gives up with DuckDB's lock error.
pub const READ_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
const LAKE_LOCK_STOPPED: &str = "stopped while waiting for the lake's write lock";

/// How often a short write (a ledger row, an update) is tried when DuckLake reports a
/// conflict with a concurrent transaction.
const CONFLICT_TRIES: usize = 5;

impl Warehouse {
    /// Opens the warehouse (creating it if needed) and brings its schema and view up to date.
    pub fn open(cfg: &WarehouseConfig) -> Result<Warehouse> {
        Warehouse::open_watched(cfg, &crate::interrupt::Interrupt::default())
    }

    /// As [`Warehouse::open`], for a process that watches its loads: waits for a lake's write
    /// lock (now and in every later write) beat `interrupt` and end at its stop.
    pub fn open_watched(
        cfg: &WarehouseConfig,
        interrupt: &crate::interrupt::Interrupt,
    ) -> Result<Warehouse> {
        match cfg.kind {
            WarehouseKind::Duckdb => Warehouse::open_file(cfg),
            WarehouseKind::Ducklake => Warehouse::open_lake(cfg, interrupt),
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
        let wh = Warehouse::on_file(conn, cfg);
        wh.create_file_schema()?;
        Ok(wh)
    }

    /// Opens the warehouse to read it, never creating or changing it (`history`, `status`,
    /// `outliers`): a DuckDB file read-only, and a missing one is an error naming the path
    /// looked at and `config` (the configuration that named it); one another process holds
    /// (the daemon, while a batch loads) is waited for, up to [`READ_LOCK_WAIT`]. A lake is
    /// opened as for a load (its schema exists once any host loaded).
    pub fn open_read_only(cfg: &WarehouseConfig, config: &str) -> Result<Warehouse> {
        if cfg.kind == WarehouseKind::Ducklake {
            return Warehouse::open(cfg);
        }
        let path = cfg.path.as_path();
        let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let fail = |what, source| WarehouseError {
            path: shown.clone(),
            what,
            source,
        };
        if !path.exists() {
            return Err(fail(
                "no warehouse here",
                message_error(format!(
                    "nothing was created; the warehouse is warehouse.path of {config} (relative paths resolve against the working directory); pass --config or --warehouse to read another"
                )),
            ));
        }
        // The daemon holds the file while it loads: wait for it (the daemon lets go after each
        // batch), up to READ_LOCK_WAIT, saying so once.
        let deadline = std::time::Instant::now() + READ_LOCK_WAIT;
        let mut waits = crate::retry::doubling(
            std::time::Duration::from_millis(50),
            std::time::Duration::from_secs(1),
        );
        let mut said = false;
        let conn = loop {
            let settings = duckdb::Config::default()
                .access_mode(duckdb::AccessMode::ReadOnly)
                .map_err(|e| fail("cannot open", e))?;
            let error = match Connection::open_with_flags(path, settings) {
                Ok(conn) => break conn,
                Err(e) => fail("cannot open", e),
            };
            if !error.is_locked() || std::time::Instant::now() >= deadline {
                return Err(error);
            }
            if !said {
                tracing::warn!(
                    warehouse = %shown.display(),
                    "waiting for the warehouse: another process (the daemon, while it loads) holds it"
                );
                said = true;
            }
            std::thread::sleep(waits.next().unwrap_or(std::time::Duration::from_secs(1)));
        };
        let n: i64 = conn
            .query_row(LEDGER_EXISTS_SQL, [], |r| r.get(0))
            .map_err(|e| fail("cannot open", e))?;
        if n == 0 {
            return Err(fail(
                "not a votewatch warehouse",
                message_error(format!(
                    "it has no blog_analysis.ingested_files (warehouse.path of {config})"
                )),
            ));
        }
        Ok(Warehouse::on_file(conn, cfg))
    }

    /// The warehouse of a DuckDB file opened as `conn`.
    fn on_file(conn: Connection, cfg: &WarehouseConfig) -> Warehouse {
        Warehouse {
            conn,
            path: cfg.path.clone(),
            host_id: host_id(cfg),
            lake: None,
            secret: None,
            _scratch: None,
        }
    }

    /// Whether the configured warehouse can be used, without changing it: a DuckDB file is
    /// opened read-only (a missing one is "to be created"); a lake is opened. Returns what was
    /// found, for `votewatch check-config`.
    pub fn probe(cfg: &WarehouseConfig) -> Result<String> {
        if cfg.kind == WarehouseKind::Ducklake {
            let wh = Warehouse::open(cfg)?;
            let n = wh.query_i64(LEDGER_COUNT_SQL)?;
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
            .query_row(LEDGER_EXISTS_SQL, [], |r| r.get(0))
            .map_err(fail)?;
        if n == 0 {
            return Ok("opens; no votewatch schema yet (the first load creates it)".into());
        }
        let rows: i64 = conn
            .query_row(LEDGER_COUNT_SQL, [], |r| r.get(0))
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
        wh.create_file_schema()?;
        Ok(wh)
    }

    /// A DuckDB warehouse's schema and view, brought up to date in one transaction (a crash
    /// leaves the whole schema or none of it).
    fn create_file_schema(&self) -> Result<()> {
        stream::register(&self.conn).map_err(|e| self.err("cannot register the load stream", e))?;
        self.write("cannot create the schema", |c| {
            c.execute_batch(&format!(
                "{SCHEMA_SQL}\n{SCHEMA_LEDGER_COLUMNS_SQL}\n{SCHEMA_TABLES_SQL}\n{SCHEMA_POSTS_SQL}"
            ))?;
            weekly::ensure(c, false)
        })?;
        self.refresh_view()
    }

    fn open_lake(
        cfg: &WarehouseConfig,
        interrupt: &crate::interrupt::Interrupt,
    ) -> Result<Warehouse> {
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
                interrupt: interrupt.clone(),
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
        let posts = once(SCHEMA_POSTS_SQL);
        stream::register(&wh.conn).map_err(|e| wh.err("cannot register the load stream", e))?;
        wh.write("cannot create the schema", |c| {
            c.execute_batch(SCHEMA_LAKE_SQL)?;
            c.execute_batch(SCHEMA_LEDGER_COLUMNS_SQL)?;
            c.execute_batch(&tables)?;
            c.execute_batch(&posts)?;
            weekly::ensure(c, true)?;
            c.execute_batch(&outlier_weeks)?;
            let max_id: i64 = c.query_row(LEDGER_MAX_ID_SQL, [], |r| r.get(0))?;
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
        crate::retry::at_once(
            CONFLICT_TRIES,
            || self.write_once(&mut f),
            conflicted,
            |e| tracing::warn!(error = %e, "lake write conflicted with another host's; trying again"),
        )
        .map_err(|e| self.err(what, e))
    }

    fn write_once<T>(
        &self,
        f: &mut impl FnMut(&Connection) -> duckdb::Result<T>,
    ) -> duckdb::Result<T> {
        if let Some(l) = &self.lake {
            l.lock()?;
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

/// The configured host id, or this host's name.
fn host_id(cfg: &WarehouseConfig) -> String {
    match cfg.ducklake.host_id.trim() {
        "" => lake::host_name(),
        id => id.to_string(),
    }
}

/// A statement of `sql/` with its `{name}` placeholders replaced. The values are fixed text of
/// votewatch's own (table names, a condition of `sql/`, literals made by `lake::sql_literal`),
/// never data from a file. The leading `--` comment lines of a template are dropped.
/// Appends `values` as the rows of the one-column temp table `table` (keys a statement then
/// joins on: the group's Ids and hashes, the reported ledger ids).
fn fill_temp<T: duckdb::ToSql>(conn: &Connection, table: &str, values: &[T]) -> duckdb::Result<()> {
    let mut app = conn.appender_to_catalog_and_db(table, "temp", "main")?;
    for v in values {
        app.append_row([v])?;
    }
    app.flush()
}

/// Appends one reject of ledger row `file_id` (the columns of `rejected_votes`).
fn append_reject(app: &mut Appender<'_>, file_id: i64, r: &RejectRow) -> duckdb::Result<()> {
    app.append_row(params![
        file_id,
        r.line as i64,
        r.element.map(|e| e as i64),
        r.raw,
        r.truncated,
        r.reason
    ])
}

pub(crate) fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut sql: String = template
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    for (name, value) in values {
        sql = sql.replace(&format!("{{{name}}}"), value);
    }
    sql.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::ledger::LEDGER_STATE_SQL;
    use super::*;

    /// Every template of `sql/` with placeholders renders with all of them filled: the values
    /// its caller passes leave no `{name}` behind, and comment lines are dropped.
    #[test]
    fn templates_render_with_every_placeholder_filled() {
        let cases: [(&str, &[(&str, &str)]); 7] = [
            (
                group::LAKE_NEXT_LEDGER_IDS_SQL,
                &[("sequence", "s"), ("n", "3")],
            ),
            (LEDGER_STATE_SQL, &[("loaded_content", "TRUE")]),
            (RESOLVE_SQL, &[("direct", "temp.vw_direct")]),
            (INSERT_VOTES_SQL, &[("target", "blog_analysis.votes")]),
            (WAREHOUSE_COUNTS_SQL, &[("rows", "temp.vw_candidates")]),
            (lake::LAKE_LOCK_SQL, &[("wait_ms", "250"), ("key", "42")]),
            (
                lake::LAKE_ENSURE_SEQUENCE_SQL,
                &[("sequence", "s"), ("max_id", "7")],
            ),
        ];
        for (template, values) in cases {
            let sql = render(template, values);
            assert!(!sql.contains('{') && !sql.contains('}'), "{sql}");
            assert!(
                !sql.lines().any(|l| l.trim_start().starts_with("--")),
                "{sql}"
            );
        }
        assert_eq!(
            render(lake::LAKE_LOCK_SQL, &[("wait_ms", "250"), ("key", "42")]),
            "CALL postgres_execute('vw_lock', 'SET LOCAL lock_timeout = ''250ms''');\n\
             CALL postgres_execute('vw_lock', 'SELECT pg_advisory_xact_lock(42)');"
        );
        assert_eq!(
            render(LOADED_CONTENT_SQL, &[]),
            "sha256 = ? AND status IN ('loaded', 'partial')"
        );
    }

    /// The lake's connection string is quoted as an SQL literal before it is put into ATTACH.
    #[test]
    fn attach_quotes_the_catalog_and_the_data_path() {
        let sql = render(
            lake::LAKE_ATTACH_SQL,
            &[
                (
                    "catalog",
                    &lake::sql_literal("ducklake:postgres:dbname=it's"),
                ),
                ("data_path", &lake::sql_literal("/lake/")),
            ],
        );
        assert_eq!(
            sql,
            "ATTACH 'ducklake:postgres:dbname=it''s' AS lake (DATA_PATH '/lake/');\nUSE lake;"
        );
    }
}
