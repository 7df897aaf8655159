//! The per-batch status report as data, and its plain-text form. Pure: rendering is tested
//! without a warehouse or a mail server.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use crate::config::Config;
use crate::ingest::{describe_reject, FileOutcome};

/// One batch: what happened to each file, and the outlier-week count after it.
#[derive(Debug, Clone)]
pub struct BatchReport {
    pub files: Vec<(FileOutcome, Option<PathBuf>)>,
    pub outlier_weeks: Option<i64>,
}

impl BatchReport {
    pub fn new(files: Vec<(FileOutcome, Option<PathBuf>)>, outlier_weeks: Option<i64>) -> Self {
        BatchReport {
            files,
            outlier_weeks,
        }
    }

    /// `votewatch: 3 files — 2 loaded, 1 failed`
    pub fn subject(&self) -> String {
        let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
        for (o, _) in &self.files {
            *by_status.entry(o.status.as_str()).or_default() += 1;
        }
        let parts: Vec<String> = by_status
            .iter()
            .map(|(s, n)| format!("{n} {}", s.replace('_', " ")))
            .collect();
        let n = self.files.len();
        format!(
            "votewatch: {n} file{} — {}",
            if n == 1 { "" } else { "s" },
            parts.join(", ")
        )
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (o, placed) in &self.files {
            let c = &o.counts;
            let _ = writeln!(
                s,
                "{}: {} (ledger {}) read {}, inserted {}, duplicates {}, already {}, conflicting {}, rejected {}, {:.2}s",
                o.name,
                o.status,
                o.file_id,
                c.lines,
                c.inserted,
                c.duplicates_in_file,
                c.already_in_warehouse,
                c.conflicting,
                c.rejected,
                o.elapsed.as_secs_f64()
            );
            if let Some(e) = &o.error {
                let _ = writeln!(s, "  {e}");
            }
            for r in &o.sample_rejects {
                let _ = writeln!(s, "  {}", describe_reject(r));
            }
            if !o.unknown_fields.is_empty() {
                let _ = writeln!(s, "  unknown fields: {}", o.unknown_fields.join(", "));
            }
            if let Some(p) = placed {
                let _ = writeln!(s, "  moved to {}", p.display());
            }
        }
        if let Some(n) = self.outlier_weeks {
            let _ = writeln!(s, "outlier weeks after this batch: {n}");
        }
        s
    }
}

/// Hands the report on. Until e-mail delivery exists, the report goes to the log.
pub fn deliver(_config: &Config, report: &BatchReport) {
    tracing::info!(subject = %report.subject(), report = %report.to_text(), "batch report");
}
