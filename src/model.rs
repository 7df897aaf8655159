//! The words every part of votewatch shares: an arrival's status and counts, its ledger row,
//! a reject, a file's outcome, where a file is archived, and what the ledger queries return.
//! Plain data: no DuckDB, no files, no I/O (except `ArchivePlan`, which looks for a free
//! name), so the pipeline, the reports, the metrics and the commands use them without
//! importing the warehouse.

use std::path::PathBuf;
use std::time::Duration;

use crate::files::suffixed;

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
    /// The lowest and highest Id of the file's valid records (`None` when it had none), so
    /// that an unload reads again only the later files that can hold its Ids.
    pub id_range: Option<(i64, i64)>,
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

/// A ledger row as `unload` and `reingest` need it.
#[derive(Debug, Clone)]
pub struct LedgerFile {
    pub id: i64,
    pub file_name: String,
    pub source_path: String,
    pub archived_to: Option<String>,
    pub sha256: Option<String>,
    pub status: String,
    /// Its votes were removed by an unload.
    pub unloaded: bool,
}

/// What an unload did (or, dry, would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnloadCounts {
    pub votes_removed: u64,
    pub later_already: u64,
    pub later_conflicting: u64,
    pub reloaded: u64,
    pub later_unreadable: u64,
}

/// Where the daemon archives files: decided per file before its commit, so that the ledger
/// records the destination in the same transaction as the outcome.
#[derive(Debug, Clone)]
pub struct ArchivePlan {
    pub processed: PathBuf,
    pub failed: PathBuf,
    /// `processed/YYYY-MM-DD/` instead of `processed/`.
    pub by_day: bool,
}

impl ArchivePlan {
    /// The folder for this outcome: failed/, or processed/ (today's folder in it when
    /// archiving by day).
    pub fn folder(&self, handled: bool) -> PathBuf {
        if !handled {
            self.failed.clone()
        } else if self.by_day {
            self.processed
                .join(chrono::Utc::now().format("%Y-%m-%d").to_string())
        } else {
            self.processed.clone()
        }
    }

    /// A path free now for `name` in the folder for this outcome (numbered suffix when
    /// taken). Only votewatch writes these folders and it archives one file at a time, so
    /// the name stays free until the move.
    pub fn destination(&self, handled: bool, name: &str) -> PathBuf {
        let dir = self.folder(handled);
        (0..)
            .map(|n| dir.join(suffixed(name, n)))
            .find(|p| std::fs::symlink_metadata(p).is_err())
            .expect("an unbounded range")
    }
}
