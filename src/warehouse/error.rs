//! The warehouse's own failures (as opposed to a bad file), told apart: out of memory, a
//! conflict with another host, a lake out of reach or its lock held, a file locked by another
//! process.

use super::*;

/// A failure of the warehouse itself (as opposed to a bad file): the caller cannot go on
/// with this file now.
#[derive(Debug, thiserror::Error)]
#[error("warehouse {path}: {what}: {source}")]
pub struct WarehouseError {
    pub path: PathBuf,
    pub what: &'static str,
    #[source]
    pub source: duckdb::Error,
}

impl WarehouseError {
    /// True when DuckDB could not stay within its memory limit for this work.
    pub fn is_out_of_memory(&self) -> bool {
        let text = self.source.to_string();
        [
            "Out of Memory Error",
            "could not allocate block",
            "failed to pin block",
        ]
        .iter()
        .any(|m| text.contains(m))
    }

    /// DuckLake refused the commit because another transaction overlapped it: nothing of it
    /// is kept, and the same work may simply be done again.
    pub fn is_conflict(&self) -> bool {
        conflicted(&self.source)
    }

    /// The lake could not be reached or locked (its catalog's server is down, or another
    /// host held the write lock past the timeout): worth waiting for, like a busy file.
    pub fn is_unavailable(&self) -> bool {
        self.what == LAKE_UNREACHABLE || self.what == LAKE_LOCK_TIMEOUT
    }

    /// True when another process holds the DuckDB file (its lock), so a retry may succeed.
    pub fn is_locked(&self) -> bool {
        let text = self.source.to_string();
        text.contains("Could not set lock") || text.contains("Conflicting lock")
    }
}

pub(super) type Result<T> = std::result::Result<T, WarehouseError>;

/// `e` with every occurrence of `secret` (the catalog's password) masked: an error of the
/// postgres extension may quote the connection string.
pub(super) fn scrub(e: duckdb::Error, secret: Option<&str>) -> duckdb::Error {
    match secret {
        Some(p) if !p.is_empty() && e.to_string().contains(p) => {
            message_error(e.to_string().replace(p, "***"))
        }
        _ => e,
    }
}

/// An error carrying a message of votewatch's own.
pub(super) fn message_error(message: String) -> duckdb::Error {
    duckdb::Error::ToSqlConversionFailure(Box::new(std::io::Error::other(message)))
}

pub(super) fn conflicted(e: &duckdb::Error) -> bool {
    e.to_string().contains("Transaction conflict")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(what: &'static str, message: &str) -> WarehouseError {
        WarehouseError {
            path: PathBuf::from("warehouse.db"),
            what,
            source: message_error(message.to_string()),
        }
    }

    /// Each kind of failure is told by what DuckDB (or the lake) said, and only that kind.
    #[test]
    fn failures_are_classified_by_what_was_said() {
        let oom = error(
            "cannot commit the file",
            "Out of Memory Error: failed to pin block",
        );
        let conflict = error(
            "cannot commit the file",
            "TransactionContext Error: Transaction conflict: cannot update a row",
        );
        let busy = error(
            "cannot open",
            "IO Error: Could not set lock on file \"warehouse.db\": Conflicting lock is held",
        );
        let lake_down = error(LAKE_UNREACHABLE, "connection refused");
        let lake_locked = error(LAKE_LOCK_TIMEOUT, "the lake's write lock is held");
        let other = error(
            "cannot commit the file",
            "IO Error: No space left on device",
        );
        let kinds = |e: &WarehouseError| {
            [
                e.is_out_of_memory(),
                e.is_conflict(),
                e.is_locked(),
                e.is_unavailable(),
            ]
        };
        assert_eq!(kinds(&oom), [true, false, false, false]);
        assert_eq!(kinds(&conflict), [false, true, false, false]);
        assert_eq!(kinds(&busy), [false, false, true, false]);
        assert_eq!(kinds(&lake_down), [false, false, false, true]);
        assert_eq!(kinds(&lake_locked), [false, false, false, true]);
        assert_eq!(kinds(&other), [false, false, false, false]);
    }

    #[test]
    fn a_password_in_an_error_is_masked() {
        let e = message_error("could not connect: password=s3cret host=db".into());
        let masked = scrub(e, Some("s3cret")).to_string();
        assert!(!masked.contains("s3cret"), "{masked}");
        assert!(masked.contains("password=*** host=db"), "{masked}");
        let kept = scrub(message_error("no secret here".into()), Some("s3cret"));
        assert_eq!(kept.to_string(), "no secret here");
    }
}
