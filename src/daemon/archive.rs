//! Moving a file out of landing/ once its transaction has ended: to processed/ (optionally
//! in a folder per day) or to failed/ with a reason file beside it. A name that exists
//! already gets a numbered suffix; nothing is ever overwritten.

use crate::journal::{Journal, JournalEntry};
use tracing::{error, warn};

use super::claim::{ATTEMPTS, LAST_ERROR};
use crate::config::Config;
use crate::model::{FileOutcome, Status};
use crate::report::BatchReport;
use crate::warehouse::Warehouse;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::files::{rename_noreplace, suffixed, sync_dir};

/// Moves `src` into `dest_dir` under its own name or the first free suffixed one, and
/// returns where it went. The move is a hard link then an unlink, so an existing file is
/// never replaced, even by a concurrent writer; a symlink or FIFO is moved as the entry it
/// is, never followed. Across file systems a regular file is copied and synced first.
///
/// Linux refuses to hard-link another user's file that this process cannot both read and
/// write (`fs.protected_hardlinks`), as with a supplier's 0644 file. Such a file is renamed
/// to a name that was free a moment before; only votewatch writes the archive folders, so
/// nothing can take that name in between.
pub fn move_into(src: &Path, dest_dir: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(dest_dir)?;
    let name = src
        .file_name()
        .ok_or_else(|| io::Error::other("no file name"))?
        .to_string_lossy()
        .into_owned();
    match link_free_name(src, dest_dir, &name) {
        Ok(target) => {
            fs::remove_file(src)?;
            sync_dir(dest_dir);
            if let Some(parent) = src.parent() {
                sync_dir(parent);
            }
            Ok(target)
        }
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => copy_across(src, dest_dir, &name),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            let target = rename_to_free_name(src, dest_dir, &name)?;
            sync_dir(dest_dir);
            if let Some(parent) = src.parent() {
                sync_dir(parent);
            }
            Ok(target)
        }
        Err(e) => Err(e),
    }
}

fn rename_to_free_name(src: &Path, dest_dir: &Path, name: &str) -> io::Result<PathBuf> {
    at_free_name(
        |n| dest_dir.join(suffixed(name, n)),
        |target| {
            if fs::symlink_metadata(target).is_ok() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            fs::rename(src, target)
        },
    )
}

/// The cross-device case: copy to a hidden temporary name in the destination, sync it, link
/// it to a free name there, then remove the temporary copy and the source.
fn copy_across(src: &Path, dest_dir: &Path, name: &str) -> io::Result<PathBuf> {
    if !fs::symlink_metadata(src)?.file_type().is_file() {
        return Err(io::Error::other(
            "cannot move a non-regular file to another file system",
        ));
    }
    let tmp = dest_dir.join(format!(".{name}.votewatch-tmp"));
    let result = fs::copy(src, &tmp)
        .and_then(|_| File::open(&tmp)?.sync_all())
        .and_then(|()| link_free_name(&tmp, dest_dir, name))
        .and_then(|placed| {
            fs::remove_file(src)?;
            Ok(placed)
        });
    let _ = fs::remove_file(&tmp);
    result
}

fn link_free_name(src: &Path, dest_dir: &Path, name: &str) -> io::Result<PathBuf> {
    at_free_name(
        |n| dest_dir.join(suffixed(name, n)),
        |target| fs::hard_link(src, target),
    )
}

/// Tries `place` on the candidate paths `name_for(0)`, `name_for(1)`, ... until one does not
/// exist already; returns the path it succeeded with.
fn at_free_name(
    name_for: impl Fn(u32) -> PathBuf,
    mut place: impl FnMut(&Path) -> io::Result<()>,
) -> io::Result<PathBuf> {
    for n in 0..10_000 {
        let target = name_for(n);
        match place(&target) {
            Ok(()) => return Ok(target),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free name in the destination"))
}

/// Writes `text` beside an archived file as `<name>.reason.txt` (suffixed if taken).
pub fn write_reason(archived: &Path, text: &str) -> io::Result<PathBuf> {
    let dir = archived.parent().unwrap_or(Path::new("."));
    let base = format!(
        "{}.reason.txt",
        archived
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    at_free_name(
        |n| match n {
            0 => dir.join(&base),
            n => dir.join(format!("{base}.{n}")),
        },
        |path| {
            let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()
        },
    )
}

/// Moves a claimed file to the destination the ledger recorded (creating its folder), never
/// replacing anything: when that name was taken meanwhile, the first free suffixed name. On
/// another file system the file is copied and synced before the claim is removed. Removes the
/// claim's folder. With `sync`, the destination and work/ are synced; without, the caller
/// syncs them ([`sync_archived`]) once for several files. Returns where the file went.
pub fn finish_claim(claimed: &Path, recorded: &Path, sync: bool) -> io::Result<PathBuf> {
    let dir = recorded.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = recorded
        .file_name()
        .ok_or_else(|| io::Error::other("no file name"))?
        .to_string_lossy()
        .into_owned();
    let placed = match rename_noreplace(claimed, recorded) {
        Ok(()) => recorded.to_path_buf(),
        // processed/ or failed/ on another file system: copied, synced, linked to a free name
        // there, and only then removed from work/.
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => copy_across(claimed, dir, &name)?,
        Err(_) => at_free_name(
            |n| dir.join(suffixed(&name, n)),
            |target| rename_noreplace(claimed, target),
        )?,
    };
    if let Some(folder) = claimed.parent() {
        let _ = fs::remove_file(folder.join(ATTEMPTS));
        let _ = fs::remove_file(folder.join(LAST_ERROR));
        let _ = fs::remove_dir(folder);
    }
    if sync {
        sync_archived(std::slice::from_ref(&placed), claimed);
    }
    Ok(placed)
}

/// Makes archive moves durable: each distinct destination folder, then work/ (the folder
/// holding `a_claim`'s folder), once for all the files moved.
pub fn sync_archived(placed: &[PathBuf], a_claim: &Path) {
    let mut dirs: Vec<&Path> = placed.iter().filter_map(|p| p.parent()).collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        sync_dir(d);
    }
    if let Some(work) = a_claim.parent().and_then(Path::parent) {
        sync_dir(work);
    }
}

/// Where this configuration archives files.
pub(super) fn archive_plan(config: &Config) -> crate::model::ArchivePlan {
    crate::model::ArchivePlan {
        processed: config.paths.processed.clone(),
        failed: config.paths.failed.clone(),
        by_day: config.daemon.processed_by_day,
    }
}

/// Moves a claimed file whose outcome is committed to the destination its ledger row
/// recorded (a reason file beside it in failed/). If that fails, the file stays in work/
/// and the next start finishes the move. Returns where it went.
#[allow(clippy::too_many_arguments)]
pub(super) fn archive_claimed(
    wh: &mut Warehouse,
    claimed: &Path,
    entry: &JournalEntry,
    outcome: Option<&FileOutcome>,
    sync: bool,
    journal: &Journal,
    journaled: bool,
) -> Option<PathBuf> {
    let (file_id, status, dest) = (entry.ledger_id, entry.status, entry.archived.as_path());
    // The journal line is durable before the file reaches the archive (unless the caller
    // wrote the lines of several files at once).
    if !journaled {
        if let Err(e) = journal.append(std::slice::from_ref(entry)) {
            error!(file = %crate::text::path(claimed), journal = %crate::text::path(journal.path()), error = %e, "cannot write the archive journal; the file stays in work/ and the next start archives it");
            return None;
        }
    }
    crate::testing::failpoint::hit("before_archive");
    match finish_claim(claimed, dest, sync) {
        Ok(placed) => {
            if placed != dest {
                let moved = JournalEntry {
                    archived: placed.clone(),
                    ..entry.clone()
                };
                if let Err(e) = journal.append(&[moved]) {
                    warn!(ledger_id = file_id, error = %e, "cannot record where the file went in the archive journal");
                }
                if let Err(e) = wh.set_archived(file_id, &placed.display().to_string()) {
                    warn!(ledger_id = file_id, error = %e, "cannot record where the file went");
                }
            }
            write_reason_if_not_loaded(&placed, file_id, status, outcome);
            Some(placed)
        }
        Err(e) => {
            error!(file = %crate::text::path(claimed), to = %crate::text::path(dest), error = %e, "cannot archive the claimed file; it stays in work/ and the next start moves it");
            None
        }
    }
}

/// Beside a file archived in failed/, the reason file (a handled file gets none).
pub(super) fn write_reason_if_not_loaded(
    placed: &Path,
    file_id: i64,
    status: Status,
    outcome: Option<&FileOutcome>,
) {
    if status.is_handled() {
        return;
    }
    let text = reason_text(file_id, status, outcome);
    if let Err(e) = write_reason(placed, &text) {
        warn!(file = %crate::text::path(placed), error = %e, "cannot write the reason file");
    }
}

/// The reason file's text: status and ledger id, then the file's part of the report (the
/// reason, the first rejects and the query for the rest).
fn reason_text(file_id: i64, status: Status, outcome: Option<&FileOutcome>) -> String {
    let mut text = format!("status: {status}\nledger id: {file_id}\n");
    match outcome {
        Some(o) => text.push_str(&BatchReport::new(vec![(o.clone(), None)], None).to_text()),
        None => text.push_str("recorded in the ledger before a restart\n"),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::claim::claim;
    use crate::files::{rename_noreplace, suffixed};

    #[test]
    fn suffixes_go_before_the_extensions() {
        assert_eq!(suffixed("votes.jsonl.gz", 0), "votes.jsonl.gz");
        assert_eq!(suffixed("votes.jsonl.gz", 2), "votes.2.jsonl.gz");
        assert_eq!(suffixed("votes", 1), "votes.1");
    }

    #[test]
    fn a_taken_name_gets_a_suffix_and_nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let landing = dir.path().join("landing");
        let processed = dir.path().join("processed");
        fs::create_dir_all(&landing).unwrap();
        fs::create_dir_all(&processed).unwrap();
        fs::write(processed.join("a.jsonl"), "old").unwrap();
        fs::write(landing.join("a.jsonl"), "new").unwrap();
        let placed = move_into(&landing.join("a.jsonl"), &processed).unwrap();
        assert_eq!(placed, processed.join("a.1.jsonl"));
        assert_eq!(
            fs::read_to_string(processed.join("a.jsonl")).unwrap(),
            "old"
        );
        assert_eq!(fs::read_to_string(&placed).unwrap(), "new");
        assert!(!landing.join("a.jsonl").exists());
        let reason = write_reason(&placed, "rejected").unwrap();
        assert_eq!(reason, processed.join("a.1.jsonl.reason.txt"));
    }

    #[test]
    fn a_symlink_moves_as_a_link_and_its_target_stays() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("secret.txt");
        fs::write(&outside, "keep").unwrap();
        let landing = dir.path().join("landing");
        fs::create_dir_all(&landing).unwrap();
        std::os::unix::fs::symlink(&outside, landing.join("x.jsonl")).unwrap();
        let placed = move_into(&landing.join("x.jsonl"), &dir.path().join("failed")).unwrap();
        assert!(fs::symlink_metadata(&placed)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
    }

    #[test]
    fn a_claim_moves_the_entry_into_a_folder_of_its_own_keeping_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let landing = dir.path().join("landing");
        let work = dir.path().join("work");
        fs::create_dir(&landing).unwrap();
        fs::write(landing.join("daily.jsonl"), "first").unwrap();
        let first = claim(&landing.join("daily.jsonl"), &work).unwrap();
        assert_eq!(first.file_name().unwrap(), "daily.jsonl");
        assert_eq!(first.parent().unwrap().parent().unwrap(), work);
        // The supplier can send the same name again at once; it is a claim of its own.
        fs::write(landing.join("daily.jsonl"), "second").unwrap();
        let second = claim(&landing.join("daily.jsonl"), &work).unwrap();
        assert_ne!(first, second);
        assert_eq!(fs::read_to_string(&first).unwrap(), "first");
        assert_eq!(fs::read_to_string(&second).unwrap(), "second");
        assert!(fs::read_dir(&landing).unwrap().next().is_none());
        // A file that is gone cannot be claimed, and leaves no folder behind.
        let e = claim(&landing.join("daily.jsonl"), &work).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(fs::read_dir(&work).unwrap().count(), 2);
    }

    #[test]
    fn a_claim_moves_a_symlink_itself_never_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("secret.jsonl");
        fs::write(&outside, "keep").unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let claimed = claim(&link, &dir.path().join("work")).unwrap();
        assert!(fs::symlink_metadata(&claimed)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
    }

    #[test]
    fn rename_noreplace_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, "a").unwrap();
        fs::write(&b, "b").unwrap();
        let e = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&a).unwrap(), "a");
        assert_eq!(fs::read_to_string(&b).unwrap(), "b");
    }

    /// Of many threads claiming the same file at once, exactly one gets it.
    #[test]
    fn of_concurrent_claims_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        for round in 0..20 {
            let src = dir.path().join(format!("f{round}.jsonl"));
            fs::write(&src, "x").unwrap();
            let wins: usize = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| claim(&src, &work).is_ok()))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| usize::from(h.join().unwrap()))
                    .sum()
            });
            assert_eq!(wins, 1, "round {round}");
        }
        // Losers leave no empty folders.
        assert_eq!(fs::read_dir(&work).unwrap().count(), 20);
    }
}
