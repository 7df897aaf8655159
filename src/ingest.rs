//! Loading one file, exactly once: read and split (a reader thread), validate (parser
//! threads), stage and commit (the caller's thread, the only one that owns the connection).
//! The CLI and the daemon both call [`ingest_file`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use duckdb::arrow::array::{
    Array, ArrayRef, BooleanBuilder, Int16Array, Int16Builder, Int32Array, Int32Builder,
    Int64Array, Int64Builder, TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use duckdb::arrow::compute::{filter_record_batch, not};
use duckdb::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use duckdb::arrow::record_batch::RecordBatch;
use tracing::{info, warn};

use crate::config::IngestConfig;
use crate::input::{Chunk, Layout, Limits, Refused, Source};
use crate::vote::{parse_vote, RejectReason, UnknownFields, Vote};
use crate::warehouse::{Counts, Finish, LedgerEntry, RejectRow, Status, Warehouse, WarehouseError};

/// How many rejects of a file are kept in memory for the report and the log.
pub const SAMPLE_REJECTS: usize = 5;

/// A chunk of records is handed to a parser once it holds this many bytes...
const CHUNK_BYTES: usize = 1 << 20;
/// ...or this many records, so that records of no bytes (blank lines, empty array elements)
/// cannot grow a chunk without bound.
const CHUNK_RECORDS: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub limits: IngestConfig,
    /// Load content whose SHA-256 was loaded before (rows are still deduplicated by Id).
    pub force: bool,
    /// Parser threads; 0 means one per available core.
    pub parsers: usize,
    /// Read a symlink's target (the CLI, where the user names the file) or refuse it (the
    /// daemon, which must never read outside landing/).
    pub follow_symlinks: bool,
    /// Lets another thread stop a load before it commits (the daemon's SIGTERM), and shows
    /// that a long load is making progress (the daemon's watchdog).
    pub interrupt: Option<Interrupt>,
    /// Where the file will be archived (the daemon): decided before the commit and recorded
    /// in the ledger row with it.
    pub archive: Option<crate::archive::ArchivePlan>,
}

/// Shared between the daemon's threads: a stop request, and the time of the last sign of
/// progress.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    stop: Arc<AtomicBool>,
    /// Milliseconds since an arbitrary start, set on every chunk and loop turn.
    beat_ms: Arc<AtomicU64>,
}

impl Interrupt {
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn beat(&self) {
        self.beat_ms.store(clock_ms(), Ordering::Relaxed);
    }

    /// True when a beat came within `period`.
    pub fn alive_within(&self, period: Duration) -> bool {
        clock_ms().saturating_sub(self.beat_ms.load(Ordering::Relaxed)) <= period.as_millis() as u64
    }
}

fn clock_ms() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    START.elapsed().as_millis() as u64
}

/// Why a file has no outcome: nothing about it was recorded, and it should be tried again.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error("stopped before commit")]
    Stopped,
}

impl IngestOptions {
    pub fn new(limits: IngestConfig) -> Self {
        IngestOptions {
            limits,
            force: false,
            parsers: 0,
            follow_symlinks: true,
            interrupt: None,
            archive: None,
        }
    }

    fn stop_requested(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(Interrupt::stop_requested)
    }
}

/// What happened to one file.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    pub file_id: i64,
    pub path: PathBuf,
    pub name: String,
    pub status: Status,
    pub counts: Counts,
    pub unknown_fields: Vec<String>,
    pub error: Option<String>,
    pub duplicate_of: Option<i64>,
    pub sha256: Option<String>,
    pub elapsed: Duration,
    /// The first few rejects, for the log and the report; all are in `rejected_votes`.
    pub sample_rejects: Vec<RejectRow>,
    /// Where the daemon is to move the file (recorded in the ledger with the outcome).
    pub archived_to: Option<PathBuf>,
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Records `path` as `failed` with `reason` without reading it (the daemon's poison-file
/// guard), in a transaction of its own.
pub fn record_failed(
    wh: &mut Warehouse,
    path: &Path,
    opts: &IngestOptions,
    reason: String,
) -> Result<FileOutcome, IngestError> {
    let entry = LedgerEntry {
        error: Some(reason),
        ..new_entry(path, opts)
    };
    Ok(record_without_load(
        wh,
        entry,
        path,
        opts,
        Instant::now(),
        Vec::new(),
    )?)
}

/// How often a file is loaded again when its commit conflicts with another host's (DuckLake).
const MAX_CONFLICT_TRIES: u32 = 10;

/// Loads `path` in one transaction. A bad file is an `Ok` outcome with its status; `Err` means
/// the warehouse failed or a stop was requested, and nothing about this file was recorded.
pub fn ingest_file(
    wh: &mut Warehouse,
    path: &Path,
    opts: &IngestOptions,
) -> Result<FileOutcome, IngestError> {
    let clock = Instant::now();
    let entry = new_entry(path, opts);
    let mut tries = 0;
    let loaded = loop {
        tries += 1;
        match load_file(wh, path, opts, clock, entry.clone()) {
            // On a lake, another host's load overlapped this one and won: nothing of this
            // one was kept, and loading it again sees the winner's rows.
            Err(IngestError::Warehouse(e)) if e.is_conflict() && tries < MAX_CONFLICT_TRIES => {
                tracing::warn!(file = %crate::text::path(path), error = %e, "the load conflicted with another host's; loading the file again");
            }
            other => break other,
        }
    };
    match loaded {
        // A file that needs more memory than DuckDB may use is this file's outcome, not a
        // failure of the warehouse: recorded, and the next file goes on.
        Err(IngestError::Warehouse(e)) if e.is_out_of_memory() => {
            let first_line = e.source.to_string();
            let first_line = first_line.lines().next().unwrap_or_default().to_string();
            let entry = LedgerEntry {
                error: Some(format!(
                    "the load needs more memory than warehouse.memory_limit allows; raise it \
                     and send the file again ({first_line})"
                )),
                ..entry
            };
            Ok(record_without_load(
                wh,
                entry,
                path,
                opts,
                clock,
                Vec::new(),
            )?)
        }
        other => other,
    }
}

/// How the ledger names a file: its folder made absolute, its own name kept, so a symlink is
/// recorded as the link itself, never as wherever it points.
pub fn recorded_path(path: &Path) -> String {
    let absolute = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            std::fs::canonicalize(dir).map(|d| d.join(name))
        }
        _ => std::fs::canonicalize(path),
    };
    absolute
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// The ledger row of a file before anything is known about it (`failed`, no counts).
fn new_entry(path: &Path, opts: &IngestOptions) -> LedgerEntry {
    let started_at = now_micros();
    let source_path = recorded_path(path);
    LedgerEntry {
        file_name: file_name(path),
        source_path,
        sha256: None,
        size: None,
        status: Status::Failed,
        format: None,
        forced: opts.force,
        duplicate_of: None,
        counts: Counts::default(),
        unknown_fields: Vec::new(),
        started_at,
        finished_at: started_at,
        error: None,
        archived_to: None,
        report_queued: None,
        ledger_id: None,
    }
}

fn load_file(
    wh: &mut Warehouse,
    path: &Path,
    opts: &IngestOptions,
    clock: Instant,
    mut entry: LedgerEntry,
) -> Result<FileOutcome, IngestError> {
    let name = entry.file_name.clone();
    let source = match Source::open(path, opts.follow_symlinks) {
        Ok(s) => s,
        Err(e) => {
            entry.error = Some(format!("cannot read {name}: {e}"));
            return Ok(record_without_load(
                wh,
                entry,
                path,
                opts,
                clock,
                Vec::new(),
            )?);
        }
    };
    let compression = source.compression;

    let mut load = wh.begin_file()?;
    let mut staged = StageState {
        counts: Counts::default(),
        unknown: UnknownFields::default(),
        samples: Vec::new(),
        stored_rejects: 0,
        max_id: load.max_id_before,
        fold: Fold::default(),
        seen: SeenIds::new(),
    };
    let read = read_and_stage(source, opts, &mut load, &mut staged).and_then(|read| {
        if read.is_ok() {
            flush_fold(&mut load, &mut staged)?;
        }
        Ok(read)
    });
    let staged_in = clock.elapsed();
    let (layout, digest) = match read {
        Ok(Ok(v)) => v,
        Ok(Err(_)) if opts.stop_requested() => {
            load.rollback();
            return Err(IngestError::Stopped);
        }
        Ok(Err(read_error)) => {
            entry.ledger_id = Some(load.file_id);
            load.rollback();
            entry.error = Some(if Refused::is(&read_error) {
                entry.status = Status::Rejected;
                format!("{read_error} (after {} records)", staged.counts.lines)
            } else {
                format!(
                    "cannot read {name} after {} records: {read_error}",
                    staged.counts.lines
                )
            });
            entry.counts = staged.counts;
            if let Ok(d) = crate::input::hash_file(path) {
                entry.sha256 = Some(d.sha256);
                entry.size = Some(d.size);
            }
            return Ok(record_without_load(
                wh,
                entry,
                path,
                opts,
                clock,
                staged.samples,
            )?);
        }
        Err(warehouse_error) => return Err(warehouse_error.into()),
    };
    entry.sha256 = Some(digest.sha256.clone());
    entry.size = Some(digest.size);
    entry.format = Some(format_name(layout, compression));
    entry.unknown_fields = staged.unknown.names();
    if staged.unknown.overflowed {
        entry.unknown_fields.push("…".into());
    }
    entry.counts = staged.counts;

    // On a lake: the write lock, so that the checks below see every host's loads.
    load.lock(Some(&digest.sha256))?;
    if !opts.force {
        if let Some(earlier) = load.find_loaded(&digest.sha256)? {
            entry.ledger_id = Some(load.file_id);
            drop(load);
            entry.status = Status::DuplicateFile;
            entry.duplicate_of = Some(earlier);
            entry.counts = Counts {
                lines: staged.counts.lines,
                ..Counts::default()
            };
            entry.error = Some(format!(
                "same content (SHA-256 {}) was loaded before as ledger row {earlier}",
                &digest.sha256[..12]
            ));
            return Ok(record_without_load(
                wh,
                entry,
                path,
                opts,
                clock,
                Vec::new(),
            )?);
        }
    }
    if opts.stop_requested() {
        load.rollback();
        return Err(IngestError::Stopped);
    }

    let c = staged.counts;
    let first_reject = staged
        .samples
        .first()
        .map(|r| format!("; first: {}", describe_reject(r)))
        .unwrap_or_default();
    let rejected_whole = judge(&c, digest.size, opts.limits.max_reject_share, &first_reject);
    let finish = match &rejected_whole {
        Some(reason) => {
            entry.status = Status::Rejected;
            entry.error = Some(reason.clone());
            Finish::RecordOnly
        }
        None => {
            entry.status = if c.rejected > 0 {
                Status::Partial
            } else {
                Status::Loaded
            };
            if c.rejected > 0 {
                entry.error = Some(format!(
                    "{} rejected{first_reject}",
                    crate::text::count(c.rejected, "record", "records")
                ));
            }
            Finish::Insert
        }
    };
    entry.finished_at = now_micros();
    plan_archive(&mut entry, opts);
    let file_id = load.file_id;
    let commit_clock = Instant::now();
    let counts = load.commit(entry.clone(), finish)?;
    tracing::debug!(file = %crate::text::escape(&name), stage_ms = staged_in.as_millis() as u64, commit_ms = commit_clock.elapsed().as_millis() as u64, "load phases");
    let outcome = FileOutcome {
        file_id,
        path: path.to_path_buf(),
        name,
        status: entry.status,
        counts,
        unknown_fields: entry.unknown_fields,
        error: entry.error,
        duplicate_of: None,
        sha256: entry.sha256,
        elapsed: clock.elapsed(),
        sample_rejects: staged.samples,
        archived_to: entry.archived_to.map(PathBuf::from),
    };
    log_outcome(&outcome);
    Ok(outcome)
}

/// Why a file that was read must be rejected whole, or `None` when it is loaded. The reject
/// share is strict: exactly the limit is still loaded.
fn judge(c: &Counts, size: u64, max_reject_share: f64, first_reject: &str) -> Option<String> {
    let non_blank = c.lines - c.blank;
    if size == 0 {
        Some("empty file (0 bytes)".to_string())
    } else if non_blank == 0 {
        Some("no records: the file holds only blank lines or an empty array".to_string())
    } else if c.rejected as f64 > max_reject_share * non_blank as f64 {
        Some(format!(
            "{} of {} rejected ({}%), over the limit of {}%{}",
            c.rejected,
            crate::text::count(non_blank, "record", "records"),
            percent_over(c.rejected as f64 / non_blank as f64, max_reject_share),
            max_reject_share * 100.0,
            first_reject
        ))
    } else if non_blank == c.rejected {
        Some(format!("no valid votes{first_reject}"))
    } else {
        None
    }
}

/// Decides where the daemon will move the file, once its status is known, so that the
/// ledger row records it (and that its report is owed) in the same transaction.
fn plan_archive(entry: &mut LedgerEntry, opts: &IngestOptions) {
    entry.archived_to = opts.archive.as_ref().map(|plan| {
        plan.destination(entry.status.is_handled(), &entry.file_name)
            .display()
            .to_string()
    });
    // The daemon owes every arrival it archives a report; the ledger says until it is queued.
    entry.report_queued = opts.archive.is_some().then_some(false);
}

/// `share` as a percentage with as many decimals as it takes not to print the same figure as
/// `limit`, so "over the limit" never reads as equal to it.
fn percent_over(share: f64, limit: f64) -> String {
    (1..=9)
        .map(|d| {
            (
                format!("{:.*}", d, share * 100.0),
                format!("{:.*}", d, limit * 100.0),
            )
        })
        .find(|(s, l)| s != l)
        .map_or_else(|| (share * 100.0).to_string(), |(s, _)| s)
}

fn record_without_load(
    wh: &mut Warehouse,
    mut entry: LedgerEntry,
    path: &Path,
    opts: &IngestOptions,
    clock: Instant,
    samples: Vec<RejectRow>,
) -> Result<FileOutcome, WarehouseError> {
    entry.finished_at = now_micros();
    plan_archive(&mut entry, opts);
    let file_id = wh.record_only(&entry)?;
    let outcome = FileOutcome {
        file_id,
        path: path.to_path_buf(),
        name: entry.file_name,
        status: entry.status,
        counts: entry.counts,
        unknown_fields: entry.unknown_fields,
        error: entry.error,
        duplicate_of: entry.duplicate_of,
        sha256: entry.sha256,
        elapsed: clock.elapsed(),
        sample_rejects: samples,
        archived_to: entry.archived_to.map(PathBuf::from),
    };
    log_outcome(&outcome);
    Ok(outcome)
}

/// This process's peak resident set size so far (VmHWM), in KiB; 0 where the kernel does
/// not say. Logged with each file, so memory use under hostile input can be watched.
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn log_outcome(o: &FileOutcome) {
    let c = &o.counts;
    let peak_rss_mb = peak_rss_kb() / 1024;
    let name = crate::text::escape(&o.name);
    let error = crate::text::escape(o.error.as_deref().unwrap_or(""));
    for r in &o.sample_rejects {
        warn!(file = %name, line = r.line, element = r.element, reason = %crate::text::escape(&r.reason), "record rejected");
    }
    if o.status.is_handled() {
        info!(
            file = %name, ledger_id = o.file_id, status = %o.status, lines = c.lines,
            inserted = c.inserted, duplicates = c.duplicates_in_file,
            already = c.already_in_warehouse, conflicting = c.conflicting,
            rejected = c.rejected, blank = c.blank, ms = o.elapsed.as_millis() as u64,
            peak_rss_mb, error = %error, "file done"
        );
    } else {
        warn!(
            file = %name, ledger_id = o.file_id, status = %o.status, lines = c.lines,
            rejected = c.rejected, peak_rss_mb, error = %error, "file not loaded"
        );
    }
}

pub fn describe_reject(r: &RejectRow) -> String {
    match r.element {
        Some(e) => format!("element {e} (line {}): {}", r.line, r.reason),
        None => format!("line {}: {}", r.line, r.reason),
    }
}

fn format_name(layout: Layout, compression: crate::input::Compression) -> String {
    let base = match layout {
        Layout::Lines => "jsonl",
        Layout::Array => "json-array",
    };
    match compression {
        crate::input::Compression::None => base.to_string(),
        crate::input::Compression::Gzip => format!("{base}+gzip"),
        crate::input::Compression::Zstd => format!("{base}+zstd"),
    }
}

/// What the stage step accumulates over the chunks of a file.
struct StageState {
    counts: Counts,
    unknown: UnknownFields,
    samples: Vec<RejectRow>,
    /// Rejects written to `rejected_votes` so far (at most `max_stored_rejects`).
    stored_rejects: u64,
    /// Highest Id seen so far, starting from the warehouse's.
    max_id: i64,
    /// Staged rows not appended yet.
    fold: Fold,
    /// Ids the file has shown so far.
    seen: SeenIds,
}

/// What reading the file gave: its layout and digest, or the read error.
type ReadResult = std::io::Result<(Layout, crate::input::Digest256)>;

/// A chunk after validation: its votes as one Arrow batch, plus its rejects.
struct ParsedChunk {
    votes: Option<RecordBatch>,
    rejects: Vec<RejectRow>,
    /// Rejects counted but not kept: the file has stored and sampled all it needs.
    unkept_rejects: u64,
    lines: u64,
    blank: u64,
    unknown: UnknownFields,
}

/// Runs the reader and the parsers and stages their output in order. The outer error is the
/// warehouse's; the inner one a read error of the file.
fn read_and_stage(
    source: Source,
    opts: &IngestOptions,
    load: &mut crate::warehouse::FileLoad<'_>,
    state: &mut StageState,
) -> Result<ReadResult, WarehouseError> {
    let parsers = match opts.parsers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let limits = Limits {
        max_record_bytes: opts.limits.max_record_bytes,
        keep_bytes: opts.limits.reject_keep_bytes,
        chunk_bytes: CHUNK_BYTES,
        chunk_records: CHUNK_RECORDS,
        max_decompressed_bytes: opts.limits.max_decompressed_bytes,
        max_expansion_ratio: opts.limits.max_expansion_ratio,
    };
    let ingest_limits = opts.limits;
    let max_stored = opts.limits.max_stored_rejects;
    let keep_rejects = AtomicBool::new(true);
    let schema = parsed_schema();
    std::thread::scope(|scope| {
        let (chunk_tx, chunk_rx) = crossbeam_channel::bounded::<(u64, Chunk)>(parsers * 2);
        let (parsed_tx, parsed_rx) = crossbeam_channel::bounded::<(u64, ParsedChunk)>(parsers * 2);
        let interrupt = opts.interrupt.clone();
        let reader = scope.spawn(move || {
            let mut seq = 0u64;
            source.read_records(limits, |chunk| {
                if let Some(i) = &interrupt {
                    if i.stop_requested() {
                        return false;
                    }
                    i.beat();
                }
                seq += 1;
                chunk_tx.send((seq - 1, chunk)).is_ok()
            })
        });
        for _ in 0..parsers {
            let rx = chunk_rx.clone();
            let tx = parsed_tx.clone();
            let schema = schema.clone();
            let keep = &keep_rejects;
            scope.spawn(move || {
                for (seq, chunk) in rx {
                    if tx
                        .send((seq, parse_chunk(&chunk, &ingest_limits, &schema, keep)))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(chunk_rx);
        drop(parsed_tx);

        // Stage chunks in file order; parsers may finish out of order.
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        let mut failure = None;
        for (seq, parsed) in &parsed_rx {
            pending.insert(seq, parsed);
            while let Some(parsed) = pending.remove(&next) {
                next += 1;
                if failure.is_none() {
                    if let Err(e) = stage_chunk(load, state, parsed, max_stored, &keep_rejects) {
                        failure = Some(e);
                    }
                }
            }
            if failure.is_some() {
                // Stop the reader: dropping the receiver makes its sends fail.
                break;
            }
        }
        drop(parsed_rx);
        let read = reader.join().expect("reader thread panicked");
        match failure {
            Some(e) => Err(e),
            None => Ok(read),
        }
    })
}

fn stage_chunk(
    load: &mut crate::warehouse::FileLoad<'_>,
    state: &mut StageState,
    parsed: ParsedChunk,
    max_stored: usize,
    keep_rejects: &AtomicBool,
) -> Result<(), WarehouseError> {
    let c = &mut state.counts;
    c.lines += parsed.lines;
    c.blank += parsed.blank;
    c.rejected += parsed.rejects.len() as u64 + parsed.unkept_rejects;
    state.unknown.merge(parsed.unknown);
    let room = SAMPLE_REJECTS.saturating_sub(state.samples.len());
    state
        .samples
        .extend(parsed.rejects.iter().take(room).cloned());
    // Every reject is counted; only the first `max_stored_rejects` are stored.
    let store = (max_stored as u64).saturating_sub(state.stored_rejects) as usize;
    let store = &parsed.rejects[..store.min(parsed.rejects.len())];
    if !store.is_empty() {
        load.append_rejects(store)?;
        state.stored_rejects += store.len() as u64;
    }
    if state.stored_rejects >= max_stored as u64 && state.samples.len() >= SAMPLE_REJECTS {
        keep_rejects.store(false, Ordering::Relaxed);
    }
    if let Some(batch) = parsed.votes {
        route_batch(load, state, batch)?;
    }
    crate::failpoint::stall("mid_load");
    Ok(())
}

/// Splits a parsed batch in file order. A row cannot repeat anything when its Id is above
/// every Id seen so far (the warehouse's maximum when the file began, then the file's own), or
/// when it is above the warehouse's maximum and the file has certainly not shown it before
/// ([`SeenIds`]); such a row goes straight into `votes`. Any other row is staged and resolved
/// at commit. A file of new Ids stages only its repeats, in whatever order it comes.
fn route_batch(
    load: &mut crate::warehouse::FileLoad<'_>,
    state: &mut StageState,
    batch: RecordBatch,
) -> Result<(), WarehouseError> {
    let ids = batch
        .column(1)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("column 1 is the Id");
    let mut direct = BooleanBuilder::with_capacity(ids.len());
    let mut all_direct = true;
    for &id in ids.values() {
        let seen_maybe = state.seen.insert(id);
        let new = id > state.max_id || (id > load.max_id_before && !seen_maybe);
        all_direct &= new;
        direct.append_value(new);
        state.max_id = state.max_id.max(id);
    }
    let direct = direct.finish();
    let (new_rows, staged) = if all_direct {
        (batch, None)
    } else {
        let staged = filter_record_batch(&batch, &not(&direct).expect("same length"))
            .expect("mask matches the batch");
        (
            filter_record_batch(&batch, &direct).expect("mask matches the batch"),
            Some(staged),
        )
    };
    if new_rows.num_rows() > 0 {
        load.append_new_votes(as_votes_batch(&new_rows, load.file_id))?;
    }
    if let Some(staged) = staged.filter(|b| b.num_rows() > 0) {
        fold_staged(load, state, &staged)?;
    }
    Ok(())
}

/// The Ids a file has shown so far, as one bit per Id modulo 2^28 (32 MiB, allocated zeroed
/// so that only the pages of the Ids seen are ever touched). Exact for a file whose Ids span
/// fewer than 2^28 values, as real exports do; beyond that, two Ids may share a bit, which
/// only costs a staged row. Consecutive Ids touch consecutive bits, so a sorted file stays in
/// cache.
struct SeenIds {
    words: Vec<u64>,
}

impl SeenIds {
    const WORDS: usize = 1 << 22;

    fn new() -> Self {
        SeenIds {
            words: vec![0; Self::WORDS],
        }
    }

    /// Marks `id` as seen; returns whether it (or an Id sharing its bit) was seen before.
    fn insert(&mut self, id: i64) -> bool {
        let bit = id as u64;
        let word = &mut self.words[(bit >> 6) as usize & (Self::WORDS - 1)];
        let mask = 1u64 << (bit & 63);
        let seen = *word & mask != 0;
        *word |= mask;
        seen
    }
}

/// Staged rows held back before they are appended, at most this many distinct ones.
const FOLD_ROWS: usize = 64 * 1024;

/// Staged rows waiting to be appended, exact repeats folded into their first copy: a file of
/// one row repeated millions of times stages one row with a count, not millions of rows.
#[derive(Default)]
struct Fold {
    /// Where each distinct row is in `rows`.
    index: HashMap<Vote, usize>,
    /// (position of the first copy, the row, how many copies).
    rows: Vec<(i64, Vote, i64)>,
}

fn fold_staged(
    load: &mut crate::warehouse::FileLoad<'_>,
    state: &mut StageState,
    staged: &RecordBatch,
) -> Result<(), WarehouseError> {
    let col = |i: usize| staged.column(i).as_any();
    let int64 = |i: usize| col(i).downcast_ref::<Int64Array>().expect("Int64 column");
    let (pos, id, post_id, user_id) = (int64(0), int64(1), int64(2), int64(4));
    let vote_type_id = col(3).downcast_ref::<Int16Array>().expect("Int16 column");
    let bounty = col(5).downcast_ref::<Int32Array>().expect("Int32 column");
    let created = col(6)
        .downcast_ref::<TimestampMicrosecondArray>()
        .expect("timestamp column");
    for i in 0..staged.num_rows() {
        let vote = Vote {
            id: id.value(i),
            post_id: post_id.value(i),
            vote_type_id: vote_type_id.value(i),
            user_id: user_id.is_valid(i).then(|| user_id.value(i)),
            bounty_amount: bounty.is_valid(i).then(|| bounty.value(i)),
            creation_date: created.value(i),
        };
        let fold = &mut state.fold;
        match fold.index.get(&vote) {
            Some(&k) => fold.rows[k].2 += 1,
            None => {
                fold.index.insert(vote, fold.rows.len());
                fold.rows.push((pos.value(i), vote, 1));
                if fold.rows.len() >= FOLD_ROWS {
                    flush_fold(load, state)?;
                }
            }
        }
    }
    Ok(())
}

/// Appends the held-back staged rows (columns as in `sql/stage.sql`).
fn flush_fold(
    load: &mut crate::warehouse::FileLoad<'_>,
    state: &mut StageState,
) -> Result<(), WarehouseError> {
    let fold = std::mem::take(&mut state.fold);
    if fold.rows.is_empty() {
        return Ok(());
    }
    let n = fold.rows.len();
    let mut pos = Int64Builder::with_capacity(n);
    let mut b = VoteBuilders::with_capacity(n);
    let mut copies = Int64Builder::with_capacity(n);
    for (p, vote, c) in fold.rows {
        pos.append_value(p);
        b.append(&vote);
        copies.append_value(c);
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(pos.finish())];
    columns.extend(b.finish());
    columns.push(Arc::new(copies.finish()));
    load.append_staged(
        RecordBatch::try_new(staged_schema(), columns).expect("columns match the stage table"),
    )
}

/// The columns of `temp.vw_stage`: the parsed columns plus `copies`.
fn staged_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields: Vec<Field> = parsed_schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new("copies", DataType::Int64, false));
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

/// Arrow builders for the six vote columns, in the order of `votes`.
struct VoteBuilders {
    id: Int64Builder,
    post_id: Int64Builder,
    vote_type_id: Int16Builder,
    user_id: Int64Builder,
    bounty: Int32Builder,
    created: TimestampMicrosecondBuilder,
}

impl VoteBuilders {
    fn with_capacity(n: usize) -> Self {
        VoteBuilders {
            id: Int64Builder::with_capacity(n),
            post_id: Int64Builder::with_capacity(n),
            vote_type_id: Int16Builder::with_capacity(n),
            user_id: Int64Builder::with_capacity(n),
            bounty: Int32Builder::with_capacity(n),
            created: TimestampMicrosecondBuilder::with_capacity(n),
        }
    }

    fn append(&mut self, v: &Vote) {
        self.id.append_value(v.id);
        self.post_id.append_value(v.post_id);
        self.vote_type_id.append_value(v.vote_type_id);
        self.user_id.append_option(v.user_id);
        self.bounty.append_option(v.bounty_amount);
        self.created.append_value(v.creation_date);
    }

    fn len(&self) -> usize {
        self.id.values_slice().len()
    }

    fn finish(mut self) -> [ArrayRef; 6] {
        [
            Arc::new(self.id.finish()),
            Arc::new(self.post_id.finish()),
            Arc::new(self.vote_type_id.finish()),
            Arc::new(self.user_id.finish()),
            Arc::new(self.bounty.finish()),
            Arc::new(self.created.finish()),
        ]
    }
}

/// The columns of `blog_analysis.votes`: the parsed columns less `pos`, plus `file_id`.
fn as_votes_batch(batch: &RecordBatch, file_id: i64) -> RecordBatch {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields: Vec<Field> = parsed_schema()
            .fields()
            .iter()
            .skip(1)
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new("file_id", DataType::Int64, false));
        Arc::new(Schema::new(fields))
    });
    let mut columns = batch.columns()[1..].to_vec();
    columns.push(Arc::new(Int64Array::from_value(file_id, batch.num_rows())));
    RecordBatch::try_new(SCHEMA.clone(), columns).expect("columns match the votes table")
}

/// The columns of `temp.vw_stage`, as the parsers build them.
fn parsed_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            // The record's position in the file: first occurrence wins by it.
            Field::new("pos", DataType::Int64, false),
            Field::new("id", DataType::Int64, false),
            Field::new("post_id", DataType::Int64, false),
            Field::new("vote_type_id", DataType::Int16, false),
            Field::new("user_id", DataType::Int64, true),
            Field::new("bounty_amount", DataType::Int32, true),
            Field::new(
                "creation_date",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
        ]))
    });
    SCHEMA.clone()
}

/// Validates a chunk. With `keep_rejects` false, rejects are only counted: the stage thread
/// clears it once the file has stored `max_stored_rejects` and sampled its first rejects, from
/// chunks before this one (chunks are staged in file order), so nothing that would be kept is
/// lost.
fn parse_chunk(
    chunk: &Chunk,
    limits: &IngestConfig,
    schema: &SchemaRef,
    keep_rejects: &AtomicBool,
) -> ParsedChunk {
    let keep = limits.reject_keep_bytes;
    let keep_rejects = keep_rejects.load(Ordering::Relaxed);
    let n = chunk.records.len();
    let mut pos = Int64Builder::with_capacity(n);
    let mut votes = VoteBuilders::with_capacity(n);
    let mut out = ParsedChunk {
        votes: None,
        rejects: Vec::new(),
        unkept_rejects: 0,
        lines: n as u64,
        blank: 0,
        unknown: UnknownFields::default(),
    };
    for r in &chunk.records {
        let bytes = &chunk.data[r.start..r.end];
        if let Some(what) = r.structure {
            if !keep_rejects {
                out.unkept_rejects += 1;
                continue;
            }
            out.rejects.push(RejectRow {
                line: r.line,
                element: r.element,
                raw: String::new(),
                truncated: false,
                reason: what.to_string(),
            });
            continue;
        }
        let result = if let Some(bytes_total) = r.oversize {
            Err(RejectReason::TooLong {
                bytes: bytes_total,
                limit: limits.max_record_bytes as u64,
            })
        } else if bytes.iter().all(u8::is_ascii_whitespace) {
            if r.element.is_none() {
                out.blank += 1;
                continue;
            }
            Err(RejectReason::NotJson("empty array element".into()))
        } else {
            parse_vote(bytes, &mut out.unknown)
        };
        match result {
            Ok(v) => {
                pos.append_value(r.pos as i64);
                votes.append(&v);
            }
            Err(_) if !keep_rejects => out.unkept_rejects += 1,
            Err(reason) => {
                let cut = bytes.len().min(keep);
                out.rejects.push(RejectRow {
                    line: r.line,
                    element: r.element,
                    raw: String::from_utf8_lossy(&bytes[..cut]).into_owned(),
                    truncated: r.oversize.is_some() || cut < bytes.len(),
                    reason: reason.to_string(),
                });
            }
        }
    }
    if votes.len() > 0 {
        let mut columns: Vec<ArrayRef> = vec![Arc::new(pos.finish())];
        columns.extend(votes.finish());
        out.votes = Some(
            RecordBatch::try_new(schema.clone(), columns).expect("columns match the stage schema"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(lines: u64, blank: u64, rejected: u64) -> Counts {
        Counts {
            lines,
            blank,
            rejected,
            ..Counts::default()
        }
    }

    #[test]
    fn a_file_is_judged_by_its_records() {
        let cases: [(Counts, u64, f64, Option<&str>); 8] = [
            (counts(0, 0, 0), 0, 0.5, Some("empty file (0 bytes)")),
            (
                counts(3, 3, 0),
                3,
                0.5,
                Some("no records: the file holds only blank lines or an empty array"),
            ),
            (counts(10, 0, 5), 900, 0.5, None),
            (
                counts(10, 0, 6),
                900,
                0.5,
                Some("6 of 10 records rejected (60.0%), over the limit of 50%"),
            ),
            (counts(12, 2, 5), 900, 0.5, None),
            (counts(4, 0, 4), 900, 1.0, Some("no valid votes")),
            (
                counts(10, 0, 1),
                900,
                0.0,
                Some("1 of 10 records rejected (10.0%), over the limit of 0%"),
            ),
            // Just over the limit: enough digits that it does not read as equal to it.
            (
                counts(120_001, 0, 60_001),
                900,
                0.5,
                Some("60001 of 120001 records rejected (50.0004%), over the limit of 50%"),
            ),
        ];
        for (c, size, share, want) in cases {
            assert_eq!(judge(&c, size, share, "").as_deref(), want, "{c:?} {share}");
        }
    }
}
