//! Start-up recovery: a lost DuckDB warehouse rebuilt from the archive journal, claims left
//! in work/ by a stop or a crash (finished where the ledger says, or loaded first), leftovers
//! of older versions in landing/, and reports the ledger says are owed.

use std::path::PathBuf;
use std::time::Duration;

use tracing::{error, info, warn};

use super::archive::{archive_claimed, archive_plan, write_reason_if_not_loaded};
use super::loader::Loader;
use super::*;
use crate::config::Config;
use crate::model::{FileOutcome, Status};
use crate::report::BatchReport;
use crate::warehouse::Warehouse;

impl Loader {
    /// A DuckDB warehouse that does not exist, while the archive journal names files: rebuilt
    /// from them first (unless `daemon.rebuild_on_missing` is off), logged and reported.
    /// Returns false when a stop came during the rebuild.
    pub(super) fn rebuild_if_missing(&mut self, config: &Config) -> anyhow::Result<bool> {
        let journal = crate::journal::Journal::in_folder(&config.paths.processed);
        let wanted = config.warehouse.kind == crate::config::WarehouseKind::Duckdb
            && !config.warehouse.path.exists()
            && journal.has_entries();
        if !wanted {
            return Ok(true);
        }
        if !config.daemon.rebuild_on_missing {
            warn!(warehouse = %crate::text::path(&config.warehouse.path), journal = %crate::text::path(journal.path()), "the warehouse is missing and daemon.rebuild_on_missing is off: starting with an empty one (votewatch rebuild --into NEW rebuilds it beside)");
            return Ok(true);
        }
        warn!(warehouse = %crate::text::path(&config.warehouse.path), journal = %crate::text::path(journal.path()), "the warehouse is missing: rebuilding it from the archive journal");
        let mut opts = crate::pipeline::load::IngestOptions::new(config.ingest);
        opts.follow_symlinks = false;
        opts.interrupt = Some(self.interrupt.clone());
        let clock = std::time::Instant::now();
        let rebuilt = match crate::pipeline::rebuild::rebuild_into(
            &config.warehouse,
            &config.warehouse.path,
            &journal,
            &opts,
        ) {
            Ok(r) => r,
            Err(_) if self.interrupt.stop_requested() => return Ok(false),
            Err(e) => return Err(e),
        };
        info!(
            files = rebuilt.loaded.len(),
            not_loaded = rebuilt.not_loaded.len(),
            ms = clock.elapsed().as_millis() as u64,
            "warehouse rebuilt from the archive journal"
        );
        let subject = format!(
            "warehouse rebuilt from the archive — {}{}",
            crate::text::count(rebuilt.loaded.len() as u64, "file", "files"),
            match rebuilt.not_loaded.len() {
                0 => String::new(),
                n => format!(", {n} not loaded again (action needed)"),
            }
        );
        let preface = rebuilt.summary(&journal);
        let mut report = crate::report::BatchReport::new(rebuilt.loaded, None);
        report.preface = Some((subject, preface));
        self.postman.post(&config.report, &report);
        Ok(true)
    }

    /// Finishes what a stop or a crash left in work/: a claimed file whose load committed is
    /// moved to the destination its ledger row recorded; one whose load never committed is
    /// queued to be loaded first; an empty claim folder is removed.
    pub(super) fn recover_claims(
        &mut self,
        config: &Config,
        wh: &mut Warehouse,
    ) -> anyhow::Result<()> {
        super::claim::count_crashed_group(&config.paths.work);
        let Ok(folders) = std::fs::read_dir(&config.paths.work) else {
            return Ok(());
        };
        let mut folders: Vec<PathBuf> = folders.flatten().map(|e| e.path()).collect();
        folders.sort();
        for folder in folders.into_iter().filter(|f| f.is_dir()) {
            // The claimed file; hidden names are votewatch's own (the attempt count).
            let file = std::fs::read_dir(&folder).ok().and_then(|d| {
                d.flatten().map(|e| e.path()).find(|p| {
                    !p.file_name()
                        .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
                })
            });
            let Some(file) = file else {
                let _ = std::fs::remove_dir_all(&folder);
                continue;
            };
            match wh.find_claim(&crate::pipeline::load::recorded_path(&file))? {
                Some(row) => {
                    let (id, status) = (row.id, row.status);
                    info!(file = %crate::text::path(&file), ledger_id = id, status = %status, "committed before a restart; archiving without loading again");
                    let dest = row
                        .archived_to
                        .clone()
                        .map(PathBuf::from)
                        .unwrap_or_else(|| {
                            let name = file.file_name().unwrap_or_default().to_string_lossy();
                            archive_plan(config).destination(status.is_handled(), &name)
                        });
                    let entry = crate::journal::JournalEntry {
                        ledger_id: id,
                        dataset: row.dataset,
                        status,
                        file_name: row.file_name,
                        sha256: row.sha256,
                        forced: row.forced,
                        archived: absolute(&dest),
                    };
                    let journal = crate::journal::Journal::in_folder(&config.paths.processed);
                    archive_claimed(wh, &file, &entry, None, true, &journal, false);
                }
                None => self.claimed.push(file),
            }
        }
        Ok(())
    }

    /// Queues one report for the arrivals the ledger says were committed but never reported
    /// (a crash or a warehouse error between the commit and the report, or an outbox that
    /// could not be written); they are marked only once the report is on disk.
    pub(super) fn report_unreported(
        &mut self,
        config: &Config,
        wh: &mut Warehouse,
    ) -> anyhow::Result<()> {
        let rows = wh.unreported()?;
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let outcomes: Vec<(FileOutcome, Option<PathBuf>)> =
            rows.into_iter().map(outcome_from_ledger).collect();
        let report = BatchReport::new(outcomes, wh.count_outlier_weeks().ok());
        info!(summary = %report.subject(), files = ids.len(), "reporting files committed before a restart");
        self.reports_owed = !self.postman.post(&config.report, &report);
        if self.reports_owed {
            warn!(
                files = ids.len(),
                "the owed report could not be stored in the outbox; the next batch tries again"
            );
        } else {
            wh.mark_reported(&ids)?;
        }
        Ok(())
    }
}

/// Files that an older version left in landing/ after their transaction committed (before
/// files were claimed into work/). Only files the ledger names are hashed, so a backlog
/// waiting in landing/ is not read an extra time at start-up.
pub(super) fn reconcile(
    config: &Config,
    wh: &mut Warehouse,
    stuck: &mut Vec<(PathBuf, Option<Stamp>)>,
) -> anyhow::Result<()> {
    let landing = config.paths.landing.display().to_string();
    let named = wh.unarchived_sources(&landing)?;
    if named.is_empty() {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(&config.paths.landing) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry_kind(&path) != Some(EntryKind::File)
            || !named.contains(&crate::pipeline::load::recorded_path(&path))
        {
            continue;
        }
        let Ok(digest) = crate::pipeline::read::hash_file(&path) else {
            continue;
        };
        if let Some((id, status)) =
            wh.find_unarchived(&crate::pipeline::load::recorded_path(&path), &digest.sha256)?
        {
            info!(file = %crate::text::path(&path), ledger_id = id, status = %status, "committed before a restart; archiving without loading again");
            crate::testing::failpoint::hit("before_archive");
            let dest = archive_plan(config).folder(status.is_handled());
            match archive::move_into(&path, &dest) {
                Ok(placed) => {
                    write_reason_if_not_loaded(&placed, id, status, None);
                    if let Err(e) = wh.set_archived(id, &placed.display().to_string()) {
                        warn!(ledger_id = id, error = %e, "cannot record where the file went");
                    }
                }
                Err(e) => {
                    error!(file = %crate::text::path(&path), error = %e, "cannot move the file out of landing; it will not be loaded again until it changes");
                    stuck.push((path.clone(), stamp(&path)));
                }
            }
        }
    }
    Ok(())
}

/// A committed arrival as the report shows it, rebuilt from its ledger row (its first rejects
/// are in `rejected_votes`, not repeated here).
pub(super) fn outcome_from_ledger(row: crate::model::LedgerRow) -> (FileOutcome, Option<PathBuf>) {
    let archived = row.archived_to.map(PathBuf::from);
    let outcome = FileOutcome {
        file_id: row.id,
        dataset: row.dataset,
        forced: false,
        path: archived
            .clone()
            .unwrap_or_else(|| PathBuf::from(&row.file_name)),
        name: row.file_name,
        status: Status::parse(&row.status).unwrap_or(Status::Failed),
        counts: row.counts,
        unknown_fields: serde_json::from_str(&row.unknown_fields).unwrap_or_default(),
        error: row.error,
        duplicate_of: row.duplicate_of,
        sha256: row.sha256,
        elapsed: Duration::from_millis(row.millis.max(0) as u64),
        sample_rejects: Vec::new(),
        archived_to: archived.clone(),
    };
    (outcome, archived)
}

/// `path` made absolute against the working directory (the journal names files absolutely).
pub(super) fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
