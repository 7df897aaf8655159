//! The claim: a ready file is renamed out of landing/ into a folder of its own under work/,
//! keeping its name; from here on the path is votewatch's, and no later step uses a name the
//! supplier controls. The claim's folder also counts the loads a file cut short (a crash), so
//! that a file that keeps crashing the loader is set aside.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::files::{rename_noreplace, sync_dir};

/// The name, in a claim's folder, of the count of loads of the claimed file that began. A
/// hidden name: never a supplier's (hidden names are not taken from landing/).
pub(super) const ATTEMPTS: &str = ".attempts";

/// The name, in a claim's folder, of the error of the claimed file's last failed load.
pub(super) const LAST_ERROR: &str = ".last-error";

/// The most of an error kept for the reason a file is set aside.
const LAST_ERROR_MAX: usize = 2000;

/// Claims a file for loading: moves `src` (the entry itself, a symlink is not followed) into
/// a new folder of its own under `work_dir`, keeping its name, by an atomic rename that
/// cannot overwrite anything. From then on the file's path is one votewatch chose: a
/// supplier can send the same name again at once, and of two processes claiming one file
/// exactly one succeeds (the other gets `NotFound`). Returns the claimed path. Nothing is
/// synced here: [`sync_claims`] makes a batch's claims durable together.
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
        Ok(()) => Ok(claimed),
        Err(e) => {
            let _ = fs::remove_dir(&folder);
            Err(e)
        }
    }
}

/// Makes a batch's claims durable: each claim's folder (its new name), the new folders in
/// `work_dir` and the names gone from `landing` (before any of them is loaded). Synced after
/// all the renames, so that a journalling file system commits them once, not once a file.
pub fn sync_claims(claims: &[PathBuf], work_dir: &Path, landing: &Path) {
    for c in claims {
        if let Some(folder) = c.parent() {
            sync_dir(folder);
        }
    }
    sync_dir(work_dir);
    sync_dir(landing);
}

/// How many loads of a claimed file began before (0 for a fresh claim).
pub fn attempts(claimed: &Path) -> u32 {
    attempts_file(claimed).map_or(0, |f| read_attempts(&f))
}

/// The name, in work/, of the list of claim folders whose group load is under way: a crash
/// during it counts one load attempt for each of them at the next start (as
/// [`begin_attempt`] would have, once a file), and they are loaded alone then. A hidden name
/// beside the claim folders.
const GROUP: &str = ".group-in-flight";

/// Records, durably, that a group load of `claimed` begins: one file for the group.
pub fn begin_group(work_dir: &Path, claimed: &[PathBuf]) -> io::Result<()> {
    let mut list = String::new();
    for c in claimed {
        // The claim folder's name, votewatch's own (never the supplier's file name).
        let folder = c
            .parent()
            .and_then(Path::file_name)
            .ok_or_else(|| io::Error::other("no claim folder"))?;
        list.push_str(&folder.to_string_lossy());
        list.push('\n');
    }
    let tmp = work_dir.join(".group-in-flight.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(list.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, work_dir.join(GROUP))?;
    sync_dir(work_dir);
    Ok(())
}

/// The group load ended (committed, fallen back or stopped): its files' attempts count no
/// more than a file alone's would.
pub fn end_group(work_dir: &Path) {
    if fs::remove_file(work_dir.join(GROUP)).is_ok() {
        sync_dir(work_dir);
    }
}

/// At start: a group load that a crash cut short counts one attempt for each of its claims
/// still waiting.
pub fn count_crashed_group(work_dir: &Path) {
    let marker = work_dir.join(GROUP);
    let Ok(list) = fs::read_to_string(&marker) else {
        return;
    };
    for folder in list.lines().filter(|l| !l.is_empty() && !l.contains('/')) {
        let folder = work_dir.join(folder);
        if folder.is_dir() {
            let file = folder.join(ATTEMPTS);
            let _ = write_attempts(&file, read_attempts(&file) + 1);
        }
    }
    end_group(work_dir);
}

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

/// Keeps the error of a load that failed (durably enough: it only words the reason if the
/// file is set aside later).
pub fn note_error(claimed: &Path, error: &str) {
    if let Some(folder) = claimed.parent() {
        let cut = crate::text::truncate(error, LAST_ERROR_MAX);
        let _ = fs::write(folder.join(LAST_ERROR), cut);
    }
}

/// The error of the claimed file's last failed load, if one was noted.
pub fn last_error(claimed: &Path) -> Option<String> {
    let text = fs::read_to_string(claimed.parent()?.join(LAST_ERROR)).ok()?;
    Some(text).filter(|t| !t.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A group load cut short by a crash counts one attempt for each of its claims still
    /// waiting at the next start; one that ended (committed, fallen back, stopped) counts none.
    #[test]
    fn a_crashed_group_counts_one_attempt_per_claim() {
        let dir = tempfile::tempdir().unwrap();
        let (landing, work) = (dir.path().join("landing"), dir.path().join("work"));
        fs::create_dir_all(&landing).unwrap();
        let mut claims = Vec::new();
        for name in ["a.jsonl", "b\nc.jsonl", "d.jsonl"] {
            fs::write(landing.join(name), "x").unwrap();
            claims.push(claim(&landing.join(name), &work).unwrap());
        }
        sync_claims(&claims, &work, &landing);
        begin_group(&work, &claims).unwrap();
        end_group(&work);
        count_crashed_group(&work);
        assert!(claims.iter().all(|c| attempts(c) == 0));

        begin_group(&work, &claims).unwrap();
        // d.jsonl was archived before the crash: its folder is gone.
        fs::remove_dir_all(claims[2].parent().unwrap()).unwrap();
        count_crashed_group(&work);
        assert_eq!(attempts(&claims[0]), 1);
        assert_eq!(attempts(&claims[1]), 1);
        assert!(!claims[2].parent().unwrap().exists());
        // Counted once: the list is gone.
        count_crashed_group(&work);
        assert_eq!(attempts(&claims[0]), 1);
        assert_eq!(begin_attempt(&claims[0]).unwrap(), 1);
    }
}
