//! One file's transaction: begin (the highest Id, the ledger id), the appenders for new,
//! staged and rejected rows (on a lake: a temp table or a streamed Parquet file), the write
//! lock on a lake, and the commit that resolves repeats, inserts, records the ledger row and
//! the view, or rolls all of it back.

use super::*;
use crate::datasets::posts::Post;
use crate::datasets::Dataset;

const LEDGER_CONTENT_SEEN_SQL: &str = include_str!("sql/ledger_content_seen.sql");
const LOAD_DIRECT_RANGE_SQL: &str = include_str!("sql/load_direct_range.sql");
const LOAD_INSERT_PARQUET_REST_SQL: &str = include_str!("sql/load_insert_parquet_rest.sql");

const LOAD_FILE_ROW_SQL: &str = include_str!("sql/load_file_row.sql");
const LOAD_FIND_LOADED_SQL: &str = include_str!("sql/load_find_loaded.sql");
const LOAD_PRESENT_COUNTS_SQL: &str = include_str!("sql/load_present_counts.sql");
const LOAD_CANDIDATE_COUNT_SQL: &str = include_str!("sql/load_candidate_count.sql");
const LOAD_CANDIDATES_MAX_ID_SQL: &str = include_str!("sql/load_candidates_max_id.sql");
const LOAD_DROP_PRESENT_DIRECT_SQL: &str = include_str!("sql/load_drop_present_direct.sql");
const LOAD_ADD_PARQUET_SQL: &str = include_str!("sql/load_add_parquet.sql");
const LOAD_INSERT_DIRECT_SQL: &str = include_str!("sql/load_insert_direct.sql");
const LOAD_INSERT_REJECTS_SQL: &str = include_str!("sql/load_insert_rejects.sql");
const LOAD_ID_RANGE_SQL: &str = include_str!("sql/load_id_range.sql");
const LOAD_INSERT_STREAM_SQL: &str = include_str!("sql/load_insert_stream.sql");
const LOAD_STREAM_ORDER_OFF_SQL: &str = include_str!("sql/load_stream_order_off.sql");
const LOAD_STREAM_ORDER_ON_SQL: &str = include_str!("sql/load_stream_order_on.sql");
const POSTS_STAGE_SQL: &str = include_str!("sql/posts_stage.sql");

impl Warehouse {
    /// Begins the transaction that loads one votes file.
    pub fn begin_file(&mut self) -> Result<FileLoad<'_>> {
        self.begin_file_of(Dataset::Votes)
    }

    /// Begins the transaction that loads one file of `dataset`.
    pub fn begin_file_of(&mut self, dataset: Dataset) -> Result<FileLoad<'_>> {
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
            conn.execute(LOAD_FILE_ROW_SQL, params![file_id, max_id_before])?;
            // On a lake, new rows and rejects collect in temp tables and go in with one
            // INSERT each, under the lock. On a DuckDB file new rows are streamed
            // (`insert_stream`) and rejects appended straight into their table.
            let (votes, rejects) = match lake {
                Some(_) => {
                    conn.execute_batch(STAGE_LAKE_SQL)?;
                    (
                        Some(conn.appender_to_catalog_and_db("vw_direct", "temp", "main")?),
                        conn.appender_to_catalog_and_db("vw_rejects", "temp", "main")?,
                    )
                }
                None => (
                    None,
                    conn.appender_to_db(rejects_table(dataset), "blog_analysis")?,
                ),
            };
            let posts = match dataset {
                Dataset::Posts => {
                    conn.execute_batch(POSTS_STAGE_SQL)?;
                    Some(conn.appender_to_catalog_and_db("vw_posts_stage", "temp", "main")?)
                }
                Dataset::Votes => None,
            };
            Ok(FileLoad {
                conn,
                dataset,
                posts,
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
                direct_weeks: None,
                resolved: Resolved::default(),
                staged_rows: 0,
                reject_rows: 0,
                votes,
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
}

/// How the staged rows are turned into votes at the end of a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Insert the first occurrence of each Id that the warehouse does not hold yet.
    Insert,
    /// Record the ledger row and the rejects only (the file is rejected whole).
    RecordOnly,
}

/// Repeats of a row that went straight in, found while the file was routed: counted, never
/// staged (the row that went in is the first of its Id in the file, so it wins).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resolved {
    pub duplicates: u64,
    pub conflicting: u64,
}

/// The open transaction of one file. Dropping it without [`FileLoad::commit`] rolls back.
pub struct FileLoad<'w> {
    conn: &'w Connection,
    dataset: Dataset,
    /// A posts file: appends its valid records to `temp.vw_posts_stage`.
    posts: Option<Appender<'w>>,
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
    /// The rows that went straight in, counted by week (year, week, rows) while they were
    /// routed (on a DuckDB file): the weekly counts take them from here, not from a scan.
    direct_weeks: Option<Vec<(i64, i32, i64)>>,
    /// Repeats of rows that went straight in, resolved while the file was routed.
    resolved: Resolved,
    /// Rows appended to the staging table.
    staged_rows: u64,
    reject_rows: u64,
    /// On a lake: appends a small load's new rows to `temp.vw_direct`.
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
pub(super) const STREAM_AFTER_ROWS: usize = 16 * 1024;

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
                &render(
                    LEDGER_CONTENT_SEEN_SQL,
                    &[("loaded_content", &render(LOADED_CONTENT_SQL, &[]))],
                ),
                params![sha256],
                |r| r.get(0),
            )?;
            if !seen {
                return Ok(None);
            }
            self.conn
                .query_row(LOAD_FIND_LOADED_SQL, params![sha256], |r| r.get(0))
        };
        run().map_err(|e| self.err("cannot read the ledger", e))
    }

    /// On a lake: takes rows that are new for sure (the columns of `votes`, `file_id` last)
    /// for the lake's temp table or the load's Parquet file. A DuckDB file's new rows are
    /// streamed instead ([`FileLoad::insert_stream`]).
    pub fn append_new_votes(&mut self, batch: RecordBatch) -> Result<()> {
        self.direct_rows += batch.num_rows() as u64;
        match self.lake {
            Some(lake) => self.append_to_lake(lake, batch),
            None => Err(self.err(
                "cannot append votes",
                message_error("a DuckDB file's new rows are streamed, not appended".into()),
            )),
        }
    }

    /// On a DuckDB file: inserts the stream `rx` of rows that are new for sure (as
    /// [`FileLoad::append_new_votes`] takes them) into `votes` with one `INSERT … SELECT`
    /// on every DuckDB thread, until the stream's sender is dropped. Insertion order is not
    /// kept within the statement (that is what lets each thread write row groups of its
    /// own); nothing votewatch reads depends on it.
    pub fn insert_stream(&mut self, rx: crossbeam_channel::Receiver<RecordBatch>) -> Result<()> {
        let stream = stream::Registered::new(rx, true);
        let run = || -> duckdb::Result<usize> {
            self.conn.execute_batch(LOAD_STREAM_ORDER_OFF_SQL)?;
            let inserted = self.conn.execute(
                &render(LOAD_INSERT_STREAM_SQL, &[("source", &stream.source())]),
                [],
            );
            let reset = self.conn.execute_batch(LOAD_STREAM_ORDER_ON_SQL);
            let inserted = inserted?;
            reset?;
            Ok(inserted)
        };
        let inserted = run().map_err(|e| self.err("cannot append votes", e))?;
        drop(stream);
        self.direct_rows += inserted as u64;
        Ok(())
    }

    /// The warehouse's path (for errors).
    pub fn warehouse_path(&self) -> &Path {
        self.path
    }

    /// The load writes to a lake.
    pub fn on_lake(&self) -> bool {
        self.lake.is_some()
    }

    /// What the routing learned about the rows that went straight in: the highest Id among
    /// them, their weekly counts (when it counted them), and the repeats of them it resolved.
    pub fn set_routed(
        &mut self,
        direct_max: i64,
        weeks: Option<Vec<(i64, i32, i64)>>,
        resolved: Resolved,
    ) {
        self.direct_max = self.direct_max.max(direct_max);
        self.direct_weeks = weeks;
        self.resolved = resolved;
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

    /// Stages a posts file's valid records, each with its position in the file.
    pub fn append_posts(&mut self, rows: &[(u64, Post)]) -> Result<()> {
        let Some(app) = self.posts.as_mut() else {
            return Ok(());
        };
        let mut run = || -> duckdb::Result<()> {
            for (pos, post) in rows {
                app.append_row(duckdb::appender_params_from_iter(posts::post_values(
                    *pos, post,
                )))?;
            }
            Ok(())
        };
        run().map_err(|e| self.err("cannot stage posts", e))
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
                append_reject(app, file_id, r)?;
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
        for mut a in [
            self.votes.take(),
            self.stage.take(),
            self.rejects.take(),
            self.posts.take(),
        ]
        .into_iter()
        .flatten()
        {
            a.flush().map_err(|e| self.err("cannot stage votes", e))?;
        }
        lake.lock().map_err(|e| self.err(LAKE_LOCK_TIMEOUT, e))?;
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
        if crate::testing::failpoint::fails_for("commit_error", &entry.file_name) {
            return Err(self.err(
                "cannot commit the file",
                duckdb::Error::DuckDBFailure(
                    duckdb::ffi::Error::new(duckdb::ffi::DuckDBError),
                    Some("Constraint Error: injected by the commit_error failpoint".into()),
                ),
            ));
        }
        self.lock(None)?;
        let votes = self.votes.take();
        let stage = self.stage.take();
        let rejects = self.rejects.take();
        let posts = self.posts.take();
        let dataset = self.dataset;
        let conn = self.conn;
        let file_id = self.file_id;
        let (direct_rows, staged_rows) = (self.direct_rows, self.staged_rows);
        let (max_id_before, max_id_locked) = (self.max_id_before, self.max_id_locked);
        let direct_max = self.direct_max;
        let direct_weeks = self.direct_weeks.take();
        let resolved = self.resolved;
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
            for mut a in [votes, stage, rejects, posts].into_iter().flatten() {
                a.flush()?;
            }
            let mut counts = entry.counts;
            // On a lake the rejects waited in a temp table: one INSERT into the dataset's table.
            let insert_lake_rejects = || -> duckdb::Result<()> {
                if lake && reject_rows > 0 {
                    conn.execute_batch(&render(
                        LOAD_INSERT_REJECTS_SQL,
                        &[("rejects", rejects_table(dataset))],
                    ))?;
                }
                Ok(())
            };
            if dataset == Dataset::Posts {
                if finish == Finish::Insert {
                    counts = posts::commit_posts(conn, file_id, counts)?;
                }
                insert_lake_rejects()?;
                entry.counts = counts;
                insert_ledger(conn, file_id, &entry, host_id, Some(max_id_locked))?;
                if lake {
                    conn.execute_batch(lake::FENCE_SQL)?;
                }
                crate::testing::failpoint::hit("before_commit");
                conn.execute_batch("COMMIT")?;
                return Ok((counts, max_id_locked, false));
            }
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
                    &render(WAREHOUSE_COUNTS_SQL, &[("rows", rows)]),
                    duckdb::params_from_iter(bounds),
                )?;
                conn.query_row(LOAD_PRESENT_COUNTS_SQL, [], |r| Ok((r.get(0)?, r.get(1)?)))
            };
            let mut candidates_max = 0;
            let mut candidates_inserted = 0;
            let mut add_file = parquet.is_some();
            if finish == Finish::Insert {
                counts.inserted = direct_rows;
                // The repeats the router resolved on the spot, then those staged.
                counts.duplicates_in_file = resolved.duplicates;
                counts.conflicting = resolved.conflicting;
                if staged_rows > 0 {
                    conn.execute_batch(&render(RESOLVE_SQL, &[("direct", direct)]))?;
                    let (dups, conflicting): (i64, i64) =
                        conn.query_row(REPEAT_COUNTS_SQL, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    counts.duplicates_in_file += dups as u64;
                    counts.conflicting += conflicting as u64;
                    let candidates: i64 =
                        conn.query_row(LOAD_CANDIDATE_COUNT_SQL, [], |r| r.get(0))?;
                    if candidates > 0 {
                        let (already, conflicting) = present("temp.vw_candidates", &[])?;
                        counts.already_in_warehouse = already as u64;
                        counts.conflicting += conflicting as u64;
                        candidates_inserted = conn.execute(
                            &render(INSERT_VOTES_SQL, &[("target", target)]),
                            params![file_id],
                        )?;
                        counts.inserted += candidates_inserted as u64;
                        candidates_max =
                            conn.query_row(LOAD_CANDIDATES_MAX_ID_SQL, [], |r| r.get(0))?;
                    }
                }
                if max_id_locked > max_id_before {
                    // Another host loaded Ids above the old maximum while this file was read:
                    // rows that went straight in with Ids up to the new maximum may be held
                    // already (the first committed wins).
                    let (already, conflicting) = present(
                        &render(LOAD_DIRECT_RANGE_SQL, &[("direct", direct)]),
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
                                conn.execute_batch(&render(
                                    LOAD_INSERT_PARQUET_REST_SQL,
                                    &[("parquet", p)],
                                ))?;
                            }
                            None => conn.execute_batch(LOAD_DROP_PRESENT_DIRECT_SQL)?,
                        }
                    }
                }
                if add_file {
                    if let Some(path) = &self.stream_file {
                        conn.execute(LOAD_ADD_PARQUET_SQL, params![path])?;
                    }
                } else if lake && parquet.is_none() {
                    conn.execute_batch(LOAD_INSERT_DIRECT_SQL)?;
                }
            } else {
                // Rejected whole: nothing of the file's votes may stay (the rejects do). On a
                // lake they never left the temp table or the unadded file.
                add_file = false;
                if !lake {
                    conn.execute(VOTES_DELETE_FILE_SQL, params![file_id])?;
                }
            }
            insert_lake_rejects()?;
            entry.counts = counts;
            // The highest Id after this load (rows at or below the old maximum cannot raise it;
            // a file rejected whole added none). On a lake it is known without a scan: rows a
            // late check removed are at or below the new maximum.
            // a file rejected whole added none). It is known without a scan: rows a late
            // check on a lake removed are at or below the new maximum.
            let max_after: i64 = match finish {
                Finish::Insert => max_id_locked.max(direct_max).max(candidates_max),
                Finish::RecordOnly => max_id_locked,
            };
            if let (Finish::Insert, Some((lo, hi))) = (finish, entry.id_range) {
                conn.execute(LOAD_ID_RANGE_SQL, params![file_id, lo, hi])?;
            }
            if finish == Finish::Insert && counts.inserted > 0 {
                let weeks = weekly::Delta::begin(conn)?;
                match direct_weeks {
                    // On a DuckDB file without posts: the direct rows as counted while they
                    // were routed, and the few inserted at commit (no scan of the load's rows;
                    // the per-post counts need the posts, so a warehouse with posts scans).
                    Some(direct) if !weeks.has_posts() => {
                        weeks.add_counts(&direct)?;
                        if candidates_inserted > 0 {
                            weeks.add(weekly::CANDIDATE_ROWS, 1, &[])?;
                        }
                    }
                    _ => weeks.add(weekly::LOAD_ROWS, 1, params![file_id])?,
                }
                weeks.apply()?;
            }
            insert_ledger(conn, file_id, &entry, host_id, Some(max_after))?;
            if lake {
                // The view is the lake's, created once; the fence row makes an overlapping
                // load of another host conflict.
                conn.execute_batch(lake::FENCE_SQL)?;
                crate::testing::failpoint::stall("fenced");
            } else {
                conn.execute_batch(OUTLIER_WEEKS_SQL)?;
            }
            crate::testing::failpoint::hit("before_commit");
            crate::testing::failpoint::busy_io("slow_commit");
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
        self.posts.take();
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

/// The table a dataset's rejects are stored in.
fn rejects_table(dataset: Dataset) -> &'static str {
    match dataset {
        Dataset::Votes => "rejected_votes",
        Dataset::Posts => "rejected_posts",
    }
}
