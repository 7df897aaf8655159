//! The archive journal: one JSON line per archived arrival (its ledger id, dataset, status,
//! SHA-256, whether it was forced, where it was archived), kept beside the archive and
//! synced before the file is moved there, so that every file in `processed/` and `failed/`
//! has its line. `votewatch rebuild` loads the journal's files again, in arrival order, into
//! a warehouse that was lost.
//!
//! A line is appended after the load's commit and before the move; when the move lands on
//! another name (the recorded one was taken), a second line with the same ledger id says
//! where it went, and the last line of a ledger id is the one that counts. A crash between
//! the commit and the line leaves the claim in `work/`, and the restart writes the line
//! before it moves the file.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::datasets::Dataset;
use crate::model::Status;

/// The journal's file name in the processed folder (hidden, so never a supplier's name).
pub const FILE_NAME: &str = ".votewatch-journal.jsonl";

/// One archived arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub ledger_id: i64,
    pub dataset: Dataset,
    pub status: Status,
    pub file_name: String,
    pub sha256: Option<String>,
    pub forced: bool,
    /// Where the file was archived (absolute).
    pub archived: PathBuf,
}

/// A journal line as stored.
#[derive(Serialize, Deserialize)]
struct Line {
    ledger_id: i64,
    dataset: String,
    status: String,
    file_name: String,
    sha256: Option<String>,
    forced: bool,
    archived: String,
    /// When the line was written (UTC), for people reading the journal.
    at: String,
}

/// The journal of one archive.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

/// What reading a journal gave.
#[derive(Debug, Default)]
pub struct Read {
    /// One entry per ledger id (its last line), in arrival (ledger id) order.
    pub entries: Vec<JournalEntry>,
    /// Lines that could not be read (1-based line numbers), a torn last line included.
    pub unreadable: Vec<u64>,
}

impl Journal {
    /// The journal of the archive whose processed folder is `processed`.
    pub fn in_folder(processed: &Path) -> Journal {
        Journal {
            path: processed.join(FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entries`, one line each, and syncs the journal (and its folder when the
    /// journal was new) before returning.
    pub fn append(&self, entries: &[JournalEntry]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let new = !self.path.exists();
        let mut text = String::new();
        let at = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        for e in entries {
            let line = Line {
                ledger_id: e.ledger_id,
                dataset: e.dataset.name().to_string(),
                status: e.status.as_str().to_string(),
                file_name: e.file_name.clone(),
                sha256: e.sha256.clone(),
                forced: e.forced,
                archived: e.archived.display().to_string(),
                at: at.clone(),
            };
            text.push_str(&serde_json::to_string(&line).map_err(io::Error::other)?);
            text.push('\n');
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
        if new {
            crate::files::sync_dir(dir);
        }
        Ok(())
    }

    /// Whether the journal names at least one arrival.
    pub fn has_entries(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0)
    }

    /// Reads the journal: the last line of each ledger id, in ledger id order. A missing
    /// journal is an empty one.
    pub fn read(&self) -> io::Result<Read> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Read::default()),
            Err(e) => return Err(e),
        };
        let mut by_id: BTreeMap<i64, JournalEntry> = BTreeMap::new();
        let mut unreadable = Vec::new();
        for (n, line) in io::BufReader::new(f).split(b'\n').enumerate() {
            let line = line?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match parse(&line) {
                Some(e) => {
                    by_id.insert(e.ledger_id, e);
                }
                None => unreadable.push(n as u64 + 1),
            }
        }
        Ok(Read {
            entries: by_id.into_values().collect(),
            unreadable,
        })
    }
}

fn parse(line: &[u8]) -> Option<JournalEntry> {
    let l: Line = serde_json::from_slice(line).ok()?;
    Some(JournalEntry {
        ledger_id: l.ledger_id,
        dataset: Dataset::from_name(&l.dataset)?,
        status: Status::parse(&l.status)?,
        file_name: l.file_name,
        sha256: l.sha256,
        forced: l.forced,
        archived: PathBuf::from(l.archived),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, archived: &str) -> JournalEntry {
        JournalEntry {
            ledger_id: id,
            dataset: Dataset::Posts,
            status: Status::Partial,
            file_name: format!("f{id}.jsonl"),
            sha256: Some("ab".repeat(32)),
            forced: id == 2,
            archived: PathBuf::from(archived),
        }
    }

    #[test]
    fn the_last_line_of_a_ledger_id_counts_and_a_torn_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::in_folder(&dir.path().join("processed"));
        assert!(!j.has_entries());
        assert!(j.read().unwrap().entries.is_empty());
        j.append(&[entry(2, "/a/f2.jsonl"), entry(1, "/a/f1.jsonl")])
            .unwrap();
        j.append(&[entry(2, "/a/f2-1.jsonl")]).unwrap();
        let mut f = OpenOptions::new().append(true).open(j.path()).unwrap();
        f.write_all(b"{\"ledger_id\":3,\"data").unwrap();
        let read = j.read().unwrap();
        assert_eq!(
            read.entries,
            vec![entry(1, "/a/f1.jsonl"), entry(2, "/a/f2-1.jsonl")]
        );
        assert_eq!(read.unreadable, vec![4]);
        assert!(j.has_entries());
    }
}
