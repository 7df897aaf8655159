//! Moving a file out of landing/ once its transaction has ended: to processed/ (optionally
//! in a folder per day) or to failed/ with a reason file beside it. A name that exists
//! already gets a numbered suffix; nothing is ever overwritten.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// `votes.jsonl.gz` with `n` = 2 becomes `votes.2.jsonl.gz`; `n` = 0 keeps the name.
pub fn suffixed(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_string();
    }
    match name.find('.').filter(|&i| i > 0) {
        Some(i) => format!("{}.{n}{}", &name[..i], &name[i..]),
        None => format!("{name}.{n}"),
    }
}

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

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The name, in a claim's folder, of the count of loads of the claimed file that began. A
/// hidden name: never a supplier's (hidden names are not taken from landing/).
const ATTEMPTS: &str = ".attempts";

/// Counts one more load of a claimed file beginning (durably, before it begins) and returns
/// how many began before this one.
pub fn begin_attempt(claimed: &Path) -> io::Result<u32> {
    let file = attempts_file(claimed)?;
    let before = read_attempts(&file);
    write_attempts(&file, before + 1)?;
    Ok(before)
}

/// Takes back the count of a load that ended without a crash (a graceful stop), so that
/// restarts of the service never set a file aside.
pub fn end_attempt(claimed: &Path) {
    if let Ok(file) = attempts_file(claimed) {
        let _ = write_attempts(&file, read_attempts(&file).saturating_sub(1));
    }
}

fn attempts_file(claimed: &Path) -> io::Result<PathBuf> {
    Ok(claimed
        .parent()
        .ok_or_else(|| io::Error::other("no claim folder"))?
        .join(ATTEMPTS))
}

/// The count in the attempts file; 0 when there is none yet.
fn read_attempts(file: &Path) -> u32 {
    fs::read_to_string(file)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Replaces the count durably (temporary file, fsync, rename).
fn write_attempts(file: &Path, n: u32) -> io::Result<()> {
    let tmp = file.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(n.to_string().as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, file)
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
            .find(|p| fs::symlink_metadata(p).is_err())
            .expect("an unbounded range")
    }
}

/// Moves a claimed file to the destination the ledger recorded (creating its folder), never
/// replacing anything: when that name was taken meanwhile, the first free suffixed name.
/// Removes the claim's folder. Returns where the file went.
pub fn finish_claim(claimed: &Path, recorded: &Path) -> io::Result<PathBuf> {
    let dir = recorded.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = recorded
        .file_name()
        .ok_or_else(|| io::Error::other("no file name"))?
        .to_string_lossy()
        .into_owned();
    let placed = if rename_noreplace(claimed, recorded).is_ok() {
        recorded.to_path_buf()
    } else {
        at_free_name(
            |n| dir.join(suffixed(&name, n)),
            |target| rename_noreplace(claimed, target),
        )?
    };
    sync_dir(dir);
    if let Some(folder) = claimed.parent() {
        let _ = fs::remove_file(folder.join(ATTEMPTS));
        let _ = fs::remove_dir(folder);
        if let Some(work) = folder.parent() {
            sync_dir(work);
        }
    }
    Ok(placed)
}

/// Renames `src` to `dst` atomically, failing with `AlreadyExists` instead of replacing an
/// existing `dst` (`renameat2` with `RENAME_NOREPLACE`). Both must be on one file system.
pub fn rename_noreplace(src: &Path, dst: &Path) -> io::Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        src,
        rustix::fs::CWD,
        dst,
        rustix::fs::RenameFlags::NOREPLACE,
    )
    .map_err(io::Error::from)
}

/// Claims a file for loading: moves `src` (the entry itself, a symlink is not followed) into
/// a new folder of its own under `work_dir`, keeping its name, by an atomic rename that
/// cannot overwrite anything. From then on the file's path is one votewatch chose: a
/// supplier can send the same name again at once, and of two processes claiming one file
/// exactly one succeeds (the other gets `NotFound`). Returns the claimed path.
pub fn claim(src: &Path, work_dir: &Path) -> io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = src
        .file_name()
        .ok_or_else(|| io::Error::other("no file name"))?;
    fs::create_dir_all(work_dir)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f");
    let folder = loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let candidate = work_dir.join(format!("{stamp}-{}-{n}", std::process::id()));
        match fs::create_dir(&candidate) {
            Ok(()) => break candidate,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };
    let claimed = folder.join(name);
    match rename_noreplace(src, &claimed) {
        Ok(()) => {
            sync_dir(&folder);
            sync_dir(work_dir);
            if let Some(parent) = src.parent() {
                sync_dir(parent);
            }
            Ok(claimed)
        }
        Err(e) => {
            let _ = fs::remove_dir(&folder);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
