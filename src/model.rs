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
    /// Rows whose current version the file replaced (posts; always 0 for votes).
    pub updated: u64,
}

/// One ledger row.
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    pub dataset: crate::datasets::Dataset,
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
    /// Loaded again by a rebuild: the arrival's ledger id in the archive journal.
    pub journal_id: Option<i64>,
    /// When the file arrived (its modification time) and when the daemon claimed it
    /// (its claim folder's), microseconds since the epoch; `None` when not known.
    pub arrived_at: Option<i64>,
    pub claimed_at: Option<i64>,
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
    pub dataset: crate::datasets::Dataset,
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
    pub dataset: crate::datasets::Dataset,
    pub file_name: String,
    pub status: String,
    pub counts: Counts,
    pub started: String,
    pub millis: i64,
    pub error: String,
    pub duplicate_of: Option<i64>,
}

impl HistoryRow {
    /// The row as `history --format json` prints it (and the console's API answers it).
    pub fn to_json(&self) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "id": self.id,
            "started_utc": self.started,
            "status": self.status,
            "file": self.file_name,
            "dataset": self.dataset.name(),
            "millis": self.millis,
            "error": (!self.error.is_empty()).then_some(&self.error),
            "duplicate_of": self.duplicate_of,
        });
        self.counts.add_to(&mut doc);
        doc
    }
}

impl Counts {
    /// Adds the counters to a JSON object, under the names `history --format json`, the API
    /// and the webhook documents share.
    pub fn add_to(&self, doc: &mut serde_json::Value) {
        let Some(obj) = doc.as_object_mut() else {
            return;
        };
        for (k, v) in [
            ("read", self.lines),
            ("inserted", self.inserted),
            ("updated", self.updated),
            ("duplicates_in_file", self.duplicates_in_file),
            ("already_in_warehouse", self.already_in_warehouse),
            ("conflicting", self.conflicting),
            ("rejected", self.rejected),
            ("blank", self.blank),
        ] {
            obj.insert(k.into(), v.into());
        }
    }
}

/// What the ledger holds about one arrival beyond its history row, for the operator console.
#[derive(Debug, Clone, Default)]
pub struct LoadDetail {
    pub id: i64,
    pub sha256: Option<String>,
    pub size: Option<i64>,
    pub format: Option<String>,
    pub forced: bool,
    pub archived_to: Option<String>,
    pub unknown_fields: Vec<String>,
    /// `Some(false)`: its report is owed; `Some(true)`: queued; `None`: none is due (the CLI).
    pub report_queued: Option<bool>,
    pub host_id: Option<String>,
    /// UTC, `%Y-%m-%d %H:%M:%S`: when its load began and ended.
    pub started: String,
    pub finished: String,
    /// UTC, as above: when the file arrived (its modification time), when the daemon claimed
    /// it, and when its batch had archived it; `None` when not recorded (the CLI, older rows).
    pub arrived: Option<String>,
    pub claimed: Option<String>,
    pub archived: Option<String>,
    /// Its first stored rejects, in file order.
    pub rejects: Vec<RejectRow>,
    /// When its votes were removed, why, and how many.
    pub unload: Option<(String, Option<String>, i64)>,
}

/// Arrivals and their new rows of one status over the last day and the last week.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusCount {
    pub status: String,
    pub files_day: i64,
    pub rows_day: i64,
    pub files_week: i64,
    pub rows_week: i64,
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
    /// Only arrivals of this dataset (its name).
    pub dataset: Option<String>,
}

/// Parses `--since`: a UTC date (`2026-11-01`), date and time (`2026-11-01T10:00:00`, `Z` or
/// an offset allowed), or an age as `humantime` reads it (`36h`, `7d`, `90m`, `1h 30m`).
/// Returns microseconds since the epoch.
pub fn parse_since(text: &str, now: chrono::DateTime<chrono::Utc>) -> Result<i64, String> {
    let t = text.trim();
    let parsed = if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_micros())
    } else if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        Some(d.timestamp_micros())
    } else if let Ok(d) = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S") {
        Some(d.and_utc().timestamp_micros())
    } else {
        humantime::parse_duration(t)
            .ok()
            .and_then(|age| i64::try_from(age.as_micros()).ok())
            .map(|age| now.timestamp_micros().saturating_sub(age))
    };
    parsed.ok_or_else(|| {
        format!("--since {text:?}: expected a date (2026-11-01), a UTC date and time (2026-11-01T10:00:00) or an age (36h, 7d, 90m)")
    })
}

/// What happened to one file.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    pub file_id: i64,
    pub dataset: crate::datasets::Dataset,
    /// Loaded with `--force` (content loaded before taken again).
    pub forced: bool,
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
    pub dataset: crate::datasets::Dataset,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_date_a_date_and_time_or_an_age() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_micros()
        };
        assert_eq!(
            parse_since("2026-11-01", now),
            Ok(at("2026-11-01T00:00:00Z"))
        );
        assert_eq!(
            parse_since("2026-11-01T10:00:00", now),
            Ok(at("2026-11-01T10:00:00Z"))
        );
        assert_eq!(
            parse_since("2026-11-01T10:00:00+01:00", now),
            Ok(at("2026-11-01T09:00:00Z"))
        );
        assert_eq!(parse_since("36h", now), Ok(at("2026-12-04T00:00:00Z")));
        assert_eq!(parse_since("7d", now), Ok(at("2026-11-28T12:00:00Z")));
        assert_eq!(parse_since("90m", now), Ok(at("2026-12-05T10:30:00Z")));
        assert_eq!(parse_since(" 1h 30m ", now), Ok(at("2026-12-05T10:30:00Z")));
        for bad in ["yesterday", "7", "-3d", "2026-13-01", ""] {
            let e = parse_since(bad, now).unwrap_err();
            assert!(e.contains("expected a date"), "{bad}: {e}");
        }
    }
}
