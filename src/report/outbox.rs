//! The outbox: reports not yet delivered, one owner-only JSON file each, written whole
//! (temporary name, fsync, rename), named by the time they were queued; taken by a rename
//! before sending, so two senders never deliver one report twice.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use lettre::address::Envelope;
use lettre::Message;
use serde::{Deserialize, Serialize};
use tracing::info;

use super::message::*;

/// One stored report: the exact bytes to send and their envelope.
#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    pub(crate) version: u32,
    pub(crate) message_id: String,
    pub(crate) subject: String,
    pub(crate) envelope_from: String,
    pub(crate) envelope_to: Vec<String>,
    pub(crate) created_at: String,
    pub(crate) raw: String,
}

/// The folder of reports not yet delivered. Each is one JSON file, written to a temporary
/// name, synced, then renamed, so a crash leaves a whole report or none.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub(crate) dir: PathBuf,
}

impl Outbox {
    pub fn new(dir: &Path) -> Outbox {
        Outbox {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores a message; returns its path in the outbox.
    pub fn put(&self, msg: &Message, subject: &str) -> Result<PathBuf, MailError> {
        let envelope = msg.envelope();
        let message_id = msg
            .headers()
            .get_raw("Message-ID")
            .unwrap_or_default()
            .to_string();
        self.put_entry(Entry {
            version: 1,
            message_id,
            subject: subject.to_string(),
            envelope_from: envelope.from().map(|a| a.to_string()).unwrap_or_default(),
            envelope_to: envelope.to().iter().map(|a| a.to_string()).collect(),
            created_at: chrono::Utc::now().to_rfc3339(),
            raw: String::from_utf8_lossy(&msg.formatted()).into_owned(),
        })
    }

    /// Stores a webhook document (no envelope) under its id; returns its path.
    pub fn put_document(&self, id: &str, subject: &str, body: &str) -> Result<PathBuf, MailError> {
        self.put_entry(Entry {
            version: 1,
            message_id: id.to_string(),
            subject: subject.to_string(),
            envelope_from: String::new(),
            envelope_to: Vec::new(),
            created_at: chrono::Utc::now().to_rfc3339(),
            raw: body.to_string(),
        })
    }

    /// Stores an entry, once: an entry of the same message still queued is kept instead.
    fn put_entry(&self, entry: Entry) -> Result<PathBuf, MailError> {
        let err = |e| MailError::Outbox(self.dir.clone(), e);
        fs::create_dir_all(&self.dir).map_err(err)?;
        let message_id = entry.message_id.clone();
        let json = serde_json::to_vec_pretty(&entry).expect("an outbox entry serialises");
        let stamp = queue_stamp().format("%Y%m%dT%H%M%S%.6fZ");
        let tag: String = message_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .take(60)
            .collect();
        if let Some(queued) = self.find(&tag) {
            info!(report = %queued.display(), "this report is queued already");
            return Ok(queued);
        }
        let name = format!("{stamp}-{tag}.json");
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(&name);
        let write = || -> io::Result<()> {
            // Owner-only: the sender refuses entries anyone else could have written.
            let mut f = {
                use std::os::unix::fs::OpenOptionsExt;
                fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?
            };
            f.write_all(&json)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(err)?;
        Ok(path)
    }

    /// The entry (waiting, or being sent) of the message whose tag is `tag`, if any.
    pub(crate) fn find(&self, tag: &str) -> Option<PathBuf> {
        let suffix = format!("-{tag}.json");
        fs::read_dir(&self.dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(&suffix))
            })
    }

    /// Reports waiting, oldest first.
    pub fn pending(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.extension().is_some_and(|x| x == "json")
                            && !p
                                .file_name()
                                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn len(&self) -> usize {
        self.pending().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// When the entry at `path` was queued, from its name (`<time>-<tag>.json`).
pub fn queued_at(path: &Path) -> Option<chrono::DateTime<chrono::Utc>> {
    let name = path.file_name()?.to_string_lossy();
    let stamp = name.split('-').next()?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.6fZ")
        .ok()
        .map(|t| t.and_utc())
}

/// The time an entry is queued, to the microsecond, strictly later than the last one this
/// process queued (even when the clock steps back), so that the outbox's name order is the
/// order reports were queued.
pub(crate) fn queue_stamp() -> chrono::DateTime<chrono::Utc> {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = chrono::Utc::now().timestamp_micros();
    let prev = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(now.max(last.saturating_add(1)))
        })
        .unwrap_or(now);
    let stamp = now.max(prev.saturating_add(1));
    chrono::DateTime::from_timestamp_micros(stamp).unwrap_or_else(chrono::Utc::now)
}

/// Refuses an outbox entry that votewatch did not write: another owner, or writable by
/// anyone but its owner (whoever can write the outbox must not mail through our transport).
pub(crate) fn check_own_entry(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(path)?;
    let me = rustix::process::geteuid().as_raw();
    if !m.file_type().is_file() || m.uid() != me || m.mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "not written by votewatch (owner uid {}, mode {:o}; expected uid {me}, not \
                 writable by group or others)",
                m.uid(),
                m.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// An outbox entry taken for sending: renamed to a hidden name (`.sending-<pid>-NAME`) while
/// this sender holds an exclusive `flock` on it, taken before the rename. The lock, not the
/// pid in the name, says that a sender is at work on it: the kernel drops it when the sender
/// ends however it ends, whatever pid comes next (a pid reused, a daemon that is PID 1 in a
/// container).
pub(crate) struct Claim {
    pub(crate) path: PathBuf,
    _lock: File,
}

/// Claims an outbox entry for sending, so that another sender (a second process) cannot
/// deliver it too. `None` when someone else took it.
pub(crate) fn claim_entry(path: &Path) -> Option<Claim> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let lock = File::open(path).ok()?;
    lock.try_lock().ok()?;
    let claimed = path.with_file_name(format!(".sending-{}-{name}", std::process::id()));
    crate::files::rename_noreplace(path, &claimed).ok()?;
    Some(Claim {
        path: claimed,
        _lock: lock,
    })
}

/// Puts back entries whose sender ended while holding them (a `.sending-*` entry that no one
/// holds the lock of), so that they are sent.
pub(crate) fn release_orphans(outbox: &Outbox) {
    let Ok(dir) = fs::read_dir(outbox.dir()) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(".sending-") else {
            continue;
        };
        let Some((_pid, original)) = rest.split_once('-') else {
            continue;
        };
        let Ok(held) = File::open(e.path()) else {
            continue;
        };
        // Free: its sender is gone. Put back while holding the lock, so that no other
        // release or claim acts on it at the same time.
        if held.try_lock().is_ok() {
            let _ = crate::files::rename_noreplace(&e.path(), &outbox.dir().join(original));
        }
    }
}

/// Reads an entry of the outbox: the sender's own file, whole.
pub(crate) fn read_entry(path: &Path) -> io::Result<Entry> {
    check_own_entry(path)?;
    serde_json::from_slice(&fs::read(path)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A mail entry's envelope.
pub(crate) fn envelope_of(entry: &Entry) -> io::Result<Envelope> {
    let parse = |a: &str| {
        a.parse::<lettre::Address>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    };
    let from = Some(parse(&entry.envelope_from)?);
    let to = entry
        .envelope_to
        .iter()
        .map(|a| parse(a))
        .collect::<io::Result<Vec<_>>>()?;
    Envelope::new(from, to).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
