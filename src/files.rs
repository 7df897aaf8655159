//! File-system steps that must not lose or overwrite anything, shared by the daemon's claim
//! and archive and by the report outbox: a rename that refuses to replace, a folder synced
//! after a rename, and the numbered name for a taken one.

use std::fs::File;
use std::io;
use std::path::Path;

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

/// Syncs a folder, so that a rename in it survives a crash (errors are ignored: the rename
/// itself happened).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
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
