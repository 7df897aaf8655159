//! Loading one file, exactly once: read and split (a reader thread), validate (parser
//! threads), stage and commit (the caller's thread, the only one that owns the connection).
//! The CLI and the daemon both call [`ingest_file`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use tracing::{info, warn};

use crate::config::IngestConfig;
use crate::datasets::names::{DatasetNames, Unrouted};
use crate::datasets::Dataset;
use crate::interrupt::Interrupt;
use crate::model::FileOutcome;
use crate::model::{Counts, LedgerEntry, RejectRow, Status};
use crate::pipeline::read::{Layout, Refused, Source};
use crate::pipeline::route::{flush_fold, read_and_stage, DayCounts, StageState, Tally};
use crate::warehouse::{Finish, Warehouse, WarehouseError};

/// How many rejects of a file are kept in memory for the report and the log.
pub const SAMPLE_REJECTS: usize = 5;

/// A chunk of records is handed to a parser once it holds this many bytes...
pub(crate) const CHUNK_BYTES: usize = 1 << 20;
/// ...or this many records, so that records of no bytes (blank lines, empty array elements)
/// cannot grow a chunk without bound.
pub(crate) const CHUNK_RECORDS: usize = 16 * 1024;

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
    pub archive: Option<crate::model::ArchivePlan>,
    /// The dataset every file is loaded as (`ingest --dataset`); `None`: by its name.
    pub dataset: Option<Dataset>,
    /// Which dataset a name belongs to (the configured patterns); `None`, or a name no
    /// pattern matches: votes.
    pub names: Option<std::sync::Arc<DatasetNames>>,
    /// A rebuild from the archive journal: the journal's ledger id of this arrival. The
    /// file is read where it was archived, and its ledger row says so (`archived_to`,
    /// `journal_id`).
    pub rebuild_of: Option<i64>,
}

/// Why a file has no outcome: nothing about it was recorded, and it should be tried again.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error("stopped before commit")]
    Stopped,
    /// The file changed while it was read: nothing was recorded, and it is read again.
    #[error("{0}")]
    Changed(String),
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
            dataset: None,
            names: None,
            rebuild_of: None,
        }
    }

    /// The dataset `path` is loaded as: the one given, else the one its name belongs to,
    /// else votes; a name two datasets' patterns match equally is an error.
    pub fn dataset_for(&self, path: &Path) -> Result<Dataset, String> {
        if let Some(d) = self.dataset {
            return Ok(d);
        }
        let name = file_name(path);
        match self.names.as_ref().map(|n| n.of(&name)) {
            Some(Ok(d)) => Ok(d),
            Some(Err(e @ Unrouted::Ambiguous(..))) => Err(format!(
                "{e}; load it with --dataset, or change datasets.*.patterns"
            )),
            Some(Err(Unrouted::NoPattern)) | None => Ok(Dataset::Votes),
        }
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(Interrupt::stop_requested)
    }
}

pub(crate) fn now_micros() -> i64 {
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
    recorded(wh, entry, path, opts, Instant::now())
}

/// How often a file is loaded again when its commit conflicts with another host's (DuckLake).
const MAX_CONFLICT_TRIES: usize = 10;

/// Loads `path` in one transaction. A bad file is an `Ok` outcome with its status; `Err` means
/// the warehouse failed or a stop was requested, and nothing about this file was recorded.
pub fn ingest_file(
    wh: &mut Warehouse,
    path: &Path,
    opts: &IngestOptions,
) -> Result<FileOutcome, IngestError> {
    let clock = Instant::now();
    let mut entry = new_entry(path, opts);
    match opts.dataset_for(path) {
        Ok(d) => entry.dataset = d,
        Err(why) => {
            entry.error = Some(why);
            return recorded(wh, entry, path, opts, clock);
        }
    }
    // On a lake, another host's load overlapped this one and won: nothing of this one was
    // kept, and loading it again sees the winner's rows.
    let loaded = crate::retry::at_once(
        MAX_CONFLICT_TRIES,
        || load_file(wh, path, opts, clock, entry.clone()),
        |e| matches!(e, IngestError::Warehouse(w) if w.is_conflict()),
        |e| tracing::warn!(file = %crate::text::path(path), error = %e, "the load conflicted with another host's; loading the file again"),
    );
    match loaded {
        // A stop that came while waiting for a lake's write lock is a stop like any other.
        Err(IngestError::Warehouse(e)) if e.is_stopped() => Err(IngestError::Stopped),
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
            recorded(wh, entry, path, opts, clock)
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
pub(crate) fn new_entry(path: &Path, opts: &IngestOptions) -> LedgerEntry {
    let started_at = now_micros();
    let source_path = recorded_path(path);
    LedgerEntry {
        dataset: Dataset::Votes,
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
        id_range: None,
        journal_id: opts.rebuild_of,
        arrived_at: modified_micros(path, opts.follow_symlinks),
        // A daemon's claim: work/<claim>/NAME, the claim folder made when it was taken.
        claimed_at: opts
            .archive
            .as_ref()
            .and_then(|_| path.parent())
            .and_then(|dir| modified_micros(dir, true)),
    }
}

/// When `path` was last modified, in microseconds since the epoch.
fn modified_micros(path: &Path, follow_symlinks: bool) -> Option<i64> {
    let meta = match follow_symlinks {
        true => std::fs::metadata(path),
        false => std::fs::symlink_metadata(path),
    };
    let t = meta.ok()?.modified().ok()?;
    Some(chrono::DateTime::<chrono::Utc>::from(t).timestamp_micros())
}

fn load_file(
    wh: &mut Warehouse,
    path: &Path,
    opts: &IngestOptions,
    clock: Instant,
    mut entry: LedgerEntry,
) -> Result<FileOutcome, IngestError> {
    let name = entry.file_name.clone();
    if let Some(copy) = early_duplicate(wh, path, opts, &entry)? {
        return recorded(wh, copy, path, opts, clock);
    }
    let source = match Source::open(path, opts.follow_symlinks) {
        Ok(s) => s,
        Err(e) => {
            entry.error = Some(format!("cannot read {name}: {e}"));
            return recorded(wh, entry, path, opts, clock);
        }
    };
    let compression = source.compression;

    let mut load = wh.begin_file_of(entry.dataset)?;
    let (read, tally) = match entry.dataset {
        Dataset::Votes => {
            let mut staged = StageState::new(load.max_id_before, !load.on_lake());
            let read = if load.on_lake() {
                read_and_stage(source, opts, &mut load, &mut staged).and_then(|read| {
                    if read.is_ok() {
                        flush_fold(&mut load, &mut staged)?;
                    }
                    Ok(read)
                })
            } else {
                crate::pipeline::insert::read_and_insert(source, opts, &mut load, &mut staged)
            };
            let weeks = staged.direct_days.take().map(DayCounts::weeks);
            load.set_routed(staged.direct_max, weeks, staged.resolved);
            (read, staged.tally)
        }
        Dataset::Posts => {
            let mut tally = Tally::default();
            let read = crate::pipeline::posts::read_posts(source, opts, &mut load, &mut tally);
            (read, tally)
        }
    };
    let staged_in = clock.elapsed();
    let (layout, digest) = match read {
        Ok(Ok(v)) => v,
        Ok(Err(_)) if opts.stop_requested() => {
            load.rollback();
            return Err(IngestError::Stopped);
        }
        Ok(Err(e)) if crate::pipeline::read::Changed::is(&e) => {
            load.rollback();
            return Err(IngestError::Changed(e.to_string()));
        }
        Ok(Err(read_error)) => {
            entry.ledger_id = Some(load.file_id);
            load.rollback();
            let entry = unreadable(entry, path, &read_error, tally.counts);
            return Ok(record_without_load(
                wh,
                entry,
                path,
                opts,
                clock,
                tally.samples,
            )?);
        }
        Err(warehouse_error) => return Err(warehouse_error.into()),
    };
    read_into(&mut entry, &digest, layout, compression, &tally);

    // On a lake: the write lock, so that the checks below see every host's loads.
    load.lock(Some(&digest.sha256))?;
    // The last look before the commit: a writer that wrote after the read (while the rows
    // were staged, or the lock awaited) makes what was read not the file.
    if let Err(e) = digest.still_matches(path, opts.follow_symlinks) {
        load.rollback();
        return Err(IngestError::Changed(e.to_string()));
    }
    if !opts.force {
        if let Some(earlier) = load.find_loaded(&digest.sha256)? {
            entry.ledger_id = Some(load.file_id);
            drop(load);
            duplicate(&mut entry, &digest.sha256, earlier);
            return recorded(wh, entry, path, opts, clock);
        }
    }
    if opts.stop_requested() {
        load.rollback();
        return Err(IngestError::Stopped);
    }

    let finish = judged(&mut entry, digest.size, &opts.limits, &tally.samples);
    entry.finished_at = now_micros();
    plan_archive(&mut entry, opts);
    let file_id = load.file_id;
    let commit_clock = Instant::now();
    let counts = load.commit(entry.clone(), finish)?;
    tracing::debug!(file = %crate::text::escape(&name), stage_ms = staged_in.as_millis() as u64, commit_ms = commit_clock.elapsed().as_millis() as u64, "load phases");
    entry.counts = counts;
    let outcome = outcome_of(entry, file_id, path, tally.samples, clock);
    log_outcome(&outcome);
    Ok(outcome)
}

/// The ledger row of a file whose reading failed: `rejected` when votewatch refused it (its
/// encoding, a decompression bomb), else `failed`, with the counts so far and, when the bytes
/// can still be read, their SHA-256.
pub(crate) fn unreadable(
    mut entry: LedgerEntry,
    path: &Path,
    read_error: &std::io::Error,
    counts: Counts,
) -> LedgerEntry {
    let name = &entry.file_name;
    entry.error = Some(if Refused::is(read_error) {
        entry.status = Status::Rejected;
        format!("{read_error} (after {} records)", counts.lines)
    } else {
        format!(
            "cannot read {name} after {} records: {read_error}",
            counts.lines
        )
    });
    entry.counts = counts;
    if let Ok(d) = crate::pipeline::read::hash_file(path) {
        entry.sha256 = Some(d.sha256);
        entry.size = Some(d.size);
    }
    entry
}

/// What reading the whole file told about it, into its ledger row.
pub(crate) fn read_into(
    entry: &mut LedgerEntry,
    digest: &crate::pipeline::read::Digest256,
    layout: Layout,
    compression: crate::pipeline::read::Compression,
    tally: &Tally,
) {
    entry.sha256 = Some(digest.sha256.clone());
    entry.size = Some(digest.size);
    entry.format = Some(format_name(layout, compression));
    entry.unknown_fields = tally.unknown.names();
    if tally.unknown.overflowed {
        entry.unknown_fields.push("…".into());
    }
    entry.counts = tally.counts;
    entry.id_range = tally.id_range;
}

/// Judges a file that was read whole (its counts in `entry`): rejected whole, or loaded
/// (`partial` with rejects). Sets the status and the error, and says how the load ends.
pub(crate) fn judged(
    entry: &mut LedgerEntry,
    size: u64,
    limits: &IngestConfig,
    samples: &[RejectRow],
) -> Finish {
    let c = entry.counts;
    let first_reject = samples
        .first()
        .map(|r| format!("; first: {}", describe_reject(r)))
        .unwrap_or_default();
    match judge(&c, size, limits.max_reject_share, &first_reject) {
        Some(reason) => {
            entry.status = Status::Rejected;
            entry.error = Some(reason);
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
    }
}

/// A file's outcome, from its ledger row as recorded.
pub(crate) fn outcome_of(
    entry: LedgerEntry,
    file_id: i64,
    path: &Path,
    samples: Vec<RejectRow>,
    clock: Instant,
) -> FileOutcome {
    FileOutcome {
        file_id,
        dataset: entry.dataset,
        forced: entry.forced,
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
    }
}

/// Makes `entry` (its counts as read) the ledger row of a re-sent copy of the content
/// `sha256`, first loaded as ledger row `earlier`: only the records read count.
pub(crate) fn duplicate(entry: &mut LedgerEntry, sha256: &str, earlier: i64) {
    entry.status = Status::DuplicateFile;
    entry.duplicate_of = Some(earlier);
    entry.counts = Counts {
        lines: entry.counts.lines,
        ..Counts::default()
    };
    entry.error = Some(format!(
        "same content (SHA-256 {}) was loaded before as ledger row {earlier}",
        &sha256[..12]
    ));
}

/// Files at least this large are first looked up in the ledger by their size: when an
/// arrival of the same size counts as loaded, the file is hashed before anything else, and a
/// re-sent copy is recorded as a duplicate without being parsed or staged.
const EARLY_CHECK_BYTES: u64 = 16 << 20;

/// The ledger row of a large file that is a re-sent copy of loaded content, found by hashing
/// it before it is read (see [`EARLY_CHECK_BYTES`]); `None` when it is not one, or cannot be
/// told without reading it (the full load decides then).
fn early_duplicate(
    wh: &mut Warehouse,
    path: &Path,
    opts: &IngestOptions,
    entry: &LedgerEntry,
) -> Result<Option<LedgerEntry>, IngestError> {
    let meta = match opts.follow_symlinks {
        true => std::fs::metadata(path),
        false => std::fs::symlink_metadata(path),
    };
    match meta {
        Ok(m) if m.is_file() && m.len() >= EARLY_CHECK_BYTES && !opts.force => {
            if !wh.loaded_size_seen(m.len())? {
                return Ok(None);
            }
        }
        _ => return Ok(None),
    }
    let digest = crate::pipeline::read::hash_file_with(path, opts.follow_symlinks, || {
        if let Some(i) = &opts.interrupt {
            i.beat();
        }
        !opts.stop_requested()
    });
    let digest = match digest {
        Ok(d) => d,
        Err(_) if opts.stop_requested() => return Err(IngestError::Stopped),
        Err(_) => return Ok(None),
    };
    let Some(earlier) = wh.loaded_arrival(&digest.sha256)? else {
        return Ok(None);
    };
    // What reading the same bytes found before: the records, the layout, the unknown fields.
    let mut e = entry.clone();
    e.sha256 = Some(digest.sha256.clone());
    e.size = Some(digest.size);
    e.format = earlier.format;
    e.unknown_fields = earlier.unknown_fields;
    e.counts.lines = earlier.lines;
    duplicate(&mut e, &digest.sha256, earlier.id);
    tracing::info!(file = %crate::text::escape(&e.file_name), earlier = earlier.id, "a re-sent copy, recognised by its SHA-256 before reading");
    Ok(Some(e))
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
pub(crate) fn plan_archive(entry: &mut LedgerEntry, opts: &IngestOptions) {
    if opts.rebuild_of.is_some() {
        // Loaded again from the archive: it stays where it is, and no report is owed.
        entry.archived_to = Some(entry.source_path.clone());
        entry.report_queued = None;
        return;
    }
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

/// [`record_without_load`] for an arrival with no rejects to keep, as the load's outcome.
fn recorded(
    wh: &mut Warehouse,
    entry: LedgerEntry,
    path: &Path,
    opts: &IngestOptions,
    clock: Instant,
) -> Result<FileOutcome, IngestError> {
    Ok(record_without_load(
        wh,
        entry,
        path,
        opts,
        clock,
        Vec::new(),
    )?)
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
    let outcome = outcome_of(entry, file_id, path, samples, clock);
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

pub(crate) fn log_outcome(o: &FileOutcome) {
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

fn format_name(layout: Layout, compression: crate::pipeline::read::Compression) -> String {
    let base = match layout {
        Layout::Lines => "jsonl",
        Layout::Array => "json-array",
    };
    match compression {
        crate::pipeline::read::Compression::None => base.to_string(),
        crate::pipeline::read::Compression::Gzip => format!("{base}+gzip"),
        crate::pipeline::read::Compression::Zstd => format!("{base}+zstd"),
    }
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
