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

/// The type of a DuckDB error, as DuckDB names it (its `ExceptionType`), or `None` for an
/// error of votewatch's own. duckdb-rs keeps only the message of a failed statement (its
/// numeric error type is lost on that path), and DuckDB begins every message with the type's
/// name and " Error: " — so the type is read there, and only there: text further on (a file
/// name, a quoted value) never decides how a failure is treated.
pub fn duckdb_error_type(e: &duckdb::Error) -> Option<&str> {
    let duckdb::Error::DuckDBFailure(_, Some(message)) = e else {
        return None;
    };
    let (kind, _) = message.split_once(" Error: ")?;
    // Type names are short words ("IO", "Out of Memory", "TransactionContext").
    let plausible = kind.len() <= 32
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '_');
    plausible.then_some(kind)
}

impl WarehouseError {
    fn error_type(&self) -> Option<&str> {
        duckdb_error_type(&self.source)
    }

    /// True when DuckDB could not stay within its memory limit for this work.
    pub fn is_out_of_memory(&self) -> bool {
        self.error_type() == Some("Out of Memory")
    }

    /// DuckLake refused the commit because another transaction overlapped it: nothing of it
    /// is kept, and the same work may simply be done again.
    pub fn is_conflict(&self) -> bool {
        conflicted(&self.source)
    }

    /// The lake could not be reached or locked (its catalog's server is down, or another
    /// host held the write lock past the timeout): worth waiting for, like a busy file.
    pub fn is_unavailable(&self) -> bool {
        !self.is_stopped() && (self.what == LAKE_UNREACHABLE || self.what == LAKE_LOCK_TIMEOUT)
    }

    /// Another host held the lake's write lock for all of `lock_timeout_secs`.
    pub fn is_lock_wait(&self) -> bool {
        self.what == LAKE_LOCK_TIMEOUT
            && matches!(&self.source, duckdb::Error::ToSqlConversionFailure(m) if m.to_string().starts_with(lake::LOCK_HELD))
    }

    /// A stop was requested while waiting for the lake's write lock: nothing was done.
    pub fn is_stopped(&self) -> bool {
        matches!(&self.source, duckdb::Error::ToSqlConversionFailure(m) if m.to_string() == LAKE_LOCK_STOPPED)
    }

    /// True when another process holds the DuckDB file (its lock), so a retry may succeed.
    pub fn is_locked(&self) -> bool {
        self.error_type() == Some("IO") && self.source.to_string().contains("Could not set lock")
    }

    /// The warehouse itself cannot be written, whatever the file: its disk (full, read-only,
    /// failing), its permissions, a database DuckDB closed after a fatal error, the network
    /// to a lake's catalog or storage. Waited out, never held against a file.
    pub fn is_environment(&self) -> bool {
        let failed_commit = || {
            // DuckDB reports a commit whose write-ahead log could not be written (a full or
            // read-only disk) as a TransactionContext error that failed the commit itself;
            // the other TransactionContext errors are conflicts, told apart above.
            self.error_type() == Some("TransactionContext")
                && !self.is_conflict()
                && self
                    .source
                    .to_string()
                    .starts_with("TransactionContext Error: Failed to commit")
        };
        self.is_unavailable()
            || (!self.is_locked()
                && matches!(
                    self.error_type(),
                    Some("IO" | "FATAL" | "Permission" | "Connection" | "Network" | "HTTP")
                ))
            || failed_commit()
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

impl WarehouseError {
    /// An error of votewatch's own about the warehouse at `path`.
    pub(crate) fn message(path: &std::path::Path, what: &'static str, message: &str) -> Self {
        WarehouseError {
            path: path.to_path_buf(),
            what,
            source: message_error(message.to_string()),
        }
    }
}

/// An error carrying a message of votewatch's own.
pub(super) fn message_error(message: String) -> duckdb::Error {
    duckdb::Error::ToSqlConversionFailure(Box::new(std::io::Error::other(message)))
}

pub(super) fn conflicted(e: &duckdb::Error) -> bool {
    duckdb_error_type(e) == Some("TransactionContext")
        && e.to_string().contains("Transaction conflict")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error as DuckDB reports a failed statement.
    fn error(what: &'static str, message: &str) -> WarehouseError {
        WarehouseError {
            path: PathBuf::from("warehouse.db"),
            what,
            source: duckdb::Error::DuckDBFailure(
                duckdb::ffi::Error::new(duckdb::ffi::DuckDBError),
                Some(message.to_string()),
            ),
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
        let disk_full = error(
            "cannot commit the file",
            "IO Error: Could not write file \"warehouse.db.wal\": No space left on device",
        );
        let wal_full = error(
            "cannot create the schema",
            "TransactionContext Error: Failed to commit: Could not write file \"warehouse.db.wal\": No space left on device",
        );
        let invalidated = error(
            "cannot stage votes",
            "FATAL Error: Failed: database has been invalidated because of a previous fatal error",
        );
        // The file's own problem: the type is not one of the environment's, whatever the
        // text after it says (here a quoted value naming other types).
        let the_files = error(
            "cannot commit the file",
            "Conversion Error: Could not convert string 'IO Error: Out of Memory Error: Transaction conflict' to INT64",
        );
        let stopped = WarehouseError {
            path: PathBuf::from("lake"),
            what: LAKE_LOCK_TIMEOUT,
            source: message_error(LAKE_LOCK_STOPPED.to_string()),
        };
        let kinds = |e: &WarehouseError| {
            [
                e.is_out_of_memory(),
                e.is_conflict(),
                e.is_locked(),
                e.is_unavailable(),
                e.is_environment(),
                e.is_stopped(),
            ]
        };
        let f = false;
        assert_eq!(kinds(&oom), [true, f, f, f, f, f]);
        assert_eq!(kinds(&conflict), [f, true, f, f, f, f]);
        assert_eq!(kinds(&busy), [f, f, true, f, f, f]);
        assert_eq!(kinds(&lake_down), [f, f, f, true, true, f]);
        assert_eq!(kinds(&lake_locked), [f, f, f, true, true, f]);
        assert_eq!(kinds(&disk_full), [f, f, f, f, true, f]);
        assert_eq!(kinds(&invalidated), [f, f, f, f, true, f]);
        assert_eq!(kinds(&wal_full), [f, f, f, f, true, f]);
        assert_eq!(kinds(&the_files), [f, f, f, f, f, f]);
        assert_eq!(kinds(&stopped), [f, f, f, f, f, true]);
    }

    /// The type is what DuckDB puts first, and nothing else.
    #[test]
    fn the_error_type_is_the_messages_prefix() {
        let typed = |m: &str| {
            duckdb_error_type(&duckdb::Error::DuckDBFailure(
                duckdb::ffi::Error::new(duckdb::ffi::DuckDBError),
                Some(m.to_string()),
            ))
            .map(str::to_string)
        };
        assert_eq!(
            typed("Out of Memory Error: x").as_deref(),
            Some("Out of Memory")
        );
        assert_eq!(typed("IO Error: x").as_deref(), Some("IO"));
        assert_eq!(typed("no type here: IO Error: x"), None);
        assert_eq!(typed("a, b Error: x"), None);
        assert_eq!(
            duckdb_error_type(&message_error("IO Error: ours".into())),
            None
        );
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
