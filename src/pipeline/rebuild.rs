//! `votewatch rebuild`, and the daemon started on a missing warehouse: the archive journal's
//! files loaded again, in arrival order, each as it was loaded the first time (its dataset,
//! `--force` if it was forced), from where it was archived. Loads are the ordinary ones, so
//! the warehouse comes back with the same rows, the same first writes and the same ledger
//! statuses and counts; its ledger ids are new, each row keeping its journal's id in
//! `journal_id`. A file that is missing, or whose bytes changed since (SHA-256), is not loaded
//! and is named in the result.

use std::path::PathBuf;

use crate::journal::{Journal, JournalEntry};
use crate::model::FileOutcome;
use crate::pipeline::load::{ingest_file, IngestError, IngestOptions};
use crate::warehouse::Warehouse;

/// What a rebuild did.
#[derive(Debug, Default)]
pub struct Rebuilt {
    /// Each file loaded again, in arrival order, with where it is.
    pub loaded: Vec<(FileOutcome, Option<PathBuf>)>,
    /// Files the journal names that could not be loaded again, with why.
    pub not_loaded: Vec<(JournalEntry, String)>,
    /// Journal lines that could not be read (1-based).
    pub unreadable_lines: Vec<u64>,
}

impl Rebuilt {
    /// The lines a report and the log give before the files: what was rebuilt and what was
    /// not.
    pub fn summary(&self, journal: &Journal) -> Vec<String> {
        let mut lines = vec![format!(
            "The warehouse was rebuilt from the archive journal {}: {} loaded again in arrival order.",
            journal.path().display(),
            crate::text::count(self.loaded.len() as u64, "file", "files")
        )];
        for (e, why) in &self.not_loaded {
            lines.push(format!(
                "Not loaded again: {} (ledger {} before the rebuild, {}): {why}",
                crate::report::one_line(&e.file_name),
                e.ledger_id,
                e.dataset
            ));
        }
        if !self.unreadable_lines.is_empty() {
            lines.push(format!(
                "Journal lines that could not be read: {:?}",
                self.unreadable_lines
            ));
        }
        lines
    }
}

/// Loads the journal's files into `wh` (a new warehouse) in arrival order.
pub fn rebuild(
    wh: &mut Warehouse,
    journal: &Journal,
    opts: &IngestOptions,
) -> Result<Rebuilt, IngestError> {
    let read = journal
        .read()
        .map_err(|e| IngestError::Changed(format!("cannot read the journal: {e}")))?;
    let mut out = Rebuilt {
        unreadable_lines: read.unreadable,
        ..Rebuilt::default()
    };
    for entry in read.entries {
        if opts.stop_requested() {
            return Err(IngestError::Stopped);
        }
        let path = entry.archived.clone();
        if let Some(why) = changed_since(&entry) {
            tracing::error!(file = %crate::text::path(&path), ledger_id = entry.ledger_id, reason = %why, "an archived file cannot be loaded again");
            out.not_loaded.push((entry, why));
            continue;
        }
        let mut o = opts.clone();
        o.dataset = Some(entry.dataset);
        o.force = entry.forced;
        o.rebuild_of = Some(entry.ledger_id);
        o.archive = None;
        let outcome = ingest_file(wh, &path, &o)?;
        out.loaded.push((outcome, Some(path)));
    }
    Ok(out)
}

/// Why an archived file cannot stand for what was loaded: gone, or other bytes.
fn changed_since(entry: &JournalEntry) -> Option<String> {
    let path = &entry.archived;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(format!("missing: {}", path.display()))
        }
        Err(e) => return Some(format!("cannot read {}: {e}", path.display())),
        Ok(_) => {}
    }
    let Some(want) = &entry.sha256 else {
        // The first load could not read it either: loading it again says the same.
        return None;
    };
    match crate::pipeline::read::hash_file(path) {
        Ok(d) if &d.sha256 == want => None,
        Ok(d) => Some(format!(
            "changed since it was archived: SHA-256 {} now, {} then",
            &d.sha256[..12],
            &want[..want.len().min(12)]
        )),
        Err(e) => Some(format!("cannot read {}: {e}", path.display())),
    }
}

/// Rebuilds into `target` (a DuckDB file that must not exist) with the settings of `cfg`: the
/// files load into `<target>.rebuilding`, which becomes `target` only once every file is
/// done, so a rebuild cut short leaves no warehouse that looks whole (the next one starts
/// again).
pub fn rebuild_into(
    cfg: &crate::config::WarehouseConfig,
    target: &std::path::Path,
    journal: &Journal,
    opts: &IngestOptions,
) -> anyhow::Result<Rebuilt> {
    if target.exists() {
        anyhow::bail!(
            "{} exists: a rebuild only creates a warehouse (delete it, or rebuild --into a new path)",
            target.display()
        );
    }
    let building = PathBuf::from(format!("{}.rebuilding", target.display()));
    for leftover in [
        building.clone(),
        PathBuf::from(format!("{}.wal", building.display())),
    ] {
        match std::fs::remove_file(&leftover) {
            Ok(()) => {
                tracing::info!(file = %crate::text::path(&leftover), "removed a rebuild that was cut short")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    let cfg = crate::config::WarehouseConfig {
        kind: crate::config::WarehouseKind::Duckdb,
        ..cfg.with_path(&building)
    };
    let mut wh = Warehouse::open(&cfg)?;
    let rebuilt = rebuild(&mut wh, journal, opts)?;
    wh.refresh_view()?;
    wh.maintain(0)?;
    drop(wh);
    std::fs::rename(&building, target)?;
    if let Some(dir) = target.parent() {
        crate::files::sync_dir(if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        });
    }
    Ok(rebuilt)
}
