//! What differs on DuckLake: opening (extensions, the catalog's password, the S3 secret,
//! ATTACH), and the write lock every write transaction holds — a PostgreSQL advisory lock on
//! the catalog's server, taken through DuckDB's postgres extension on a second connection of
//! the same DuckDB instance, so it uses the same libpq settings (TLS, passfile) as the lake.
//! The lock serializes loads of every host; the fence row (`load_fence`) makes DuckLake refuse
//! any commit that overlapped another anyway.

use std::time::{Duration, Instant};

use duckdb::Connection;

use super::render;
use crate::config::{DuckLakeConfig, WarehouseConfig};
use crate::interrupt::Interrupt;

pub(super) const LAKE_ATTACH_SQL: &str = include_str!("sql/lake_attach.sql");
const LAKE_ATTACH_LOCK_SQL: &str = include_str!("sql/lake_attach_lock.sql");
pub(super) const LAKE_LOCK_SQL: &str = include_str!("sql/lake_lock.sql");
pub(super) const LAKE_ENSURE_SEQUENCE_SQL: &str = include_str!("sql/lake_ensure_sequence.sql");
const LAKE_NEXT_LEDGER_ID_SQL: &str = include_str!("sql/lake_next_ledger_id.sql");

/// The advisory lock key of votewatch's lakes ("votewatc" in ASCII).
pub const LOCK_KEY: i64 = 0x766f_7465_7761_7463;

/// The extensions the lake needs (httpfs only for S3).
fn extensions(d: &DuckLakeConfig) -> Vec<&'static str> {
    let mut v = vec!["ducklake", "postgres", "parquet"];
    if is_s3(&d.data_path) {
        v.push("httpfs");
    }
    v
}

pub fn is_s3(data_path: &str) -> bool {
    data_path.starts_with("s3://")
}

/// A SQL string literal. Only for the few statements that take no parameters (ATTACH,
/// CREATE SECRET, SET); every value of a vote or a ledger row is a parameter.
pub fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A libpq connection-string value, quoted when it needs to be.
fn conninfo_value(s: &str) -> String {
    if !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
        return s.to_string();
    }
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The catalog's password, from where `[warehouse.ducklake]` says; `None` when none is
/// configured or present (libpq's passfile may still apply).
pub fn password(d: &DuckLakeConfig) -> Result<Option<String>, String> {
    crate::config::read_secret(
        &d.password_env,
        d.password_file.as_deref(),
        &d.password_credential,
    )
}

/// The catalog's connection string with the password added (never logged or shown).
fn conninfo(d: &DuckLakeConfig) -> Result<String, String> {
    let mut info = d.catalog.trim().to_string();
    match password(d) {
        Ok(Some(p)) => {
            info.push_str(" password=");
            info.push_str(&conninfo_value(&p));
        }
        Ok(None) => {}
        Err(e) => return Err(format!("cannot read the catalog password: {e}")),
    }
    Ok(info)
}

/// How the lake names itself in messages: its catalog without secrets, and its data path.
pub fn label(d: &DuckLakeConfig) -> String {
    let catalog: Vec<&str> = d
        .catalog
        .split_whitespace()
        .filter(|kv| !kv.to_ascii_lowercase().starts_with("password"))
        .collect();
    format!("ducklake:postgres:{} ({})", catalog.join(" "), d.data_path)
}

/// The DuckDB settings of a lake connection: no implicit downloads, the configured extension
/// directory and repository, bounded memory with a spill folder.
pub fn settings(cfg: &WarehouseConfig) -> duckdb::Result<duckdb::Config> {
    let d = &cfg.ducklake;
    let _ = std::fs::create_dir_all(&d.extension_directory);
    let _ = std::fs::create_dir_all(&d.temp_directory);
    let mut s = duckdb::Config::default()
        .with("autoinstall_known_extensions", "false")?
        .with(
            "extension_directory",
            d.extension_directory.display().to_string(),
        )?
        .with("temp_directory", d.temp_directory.display().to_string())?;
    if !d.extension_repository.is_empty() {
        s = s.with("custom_extension_repository", &d.extension_repository)?;
    }
    if !cfg.memory_limit.is_empty() {
        s = s.max_memory(&cfg.memory_limit)?;
    }
    Ok(s)
}

/// Installs (when missing) and loads the extensions, sets the S3 secret, and attaches the lake
/// as `lake` (the default catalog from then on). Returns the lock connection.
pub fn attach(conn: &Connection, d: &DuckLakeConfig) -> Result<Connection, String> {
    let sql = |conn: &Connection, what: &str, stmt: &str| {
        conn.execute_batch(stmt).map_err(|e| format!("{what}: {e}"))
    };
    for ext in extensions(d) {
        sql(
            conn,
            &format!("cannot install the DuckDB extension {ext}"),
            &format!("INSTALL {ext}; LOAD {ext};"),
        )?;
    }
    if is_s3(&d.data_path) {
        let s3 = &d.s3;
        let env = |name: &str| std::env::var(name).unwrap_or_default();
        let mut secret = format!(
            "CREATE OR REPLACE SECRET vw_s3 (TYPE s3, KEY_ID {}, SECRET {}, REGION {}, URL_STYLE {}, USE_SSL {}",
            sql_literal(&env(&s3.key_id_env)),
            sql_literal(&env(&s3.secret_env)),
            sql_literal(&s3.region),
            sql_literal(&s3.url_style),
            s3.use_ssl
        );
        if !s3.endpoint.is_empty() {
            secret.push_str(&format!(", ENDPOINT {}", sql_literal(&s3.endpoint)));
        }
        secret.push(')');
        sql(conn, "cannot set the S3 secret", &secret)?;
    }
    let info = conninfo(d)?;
    sql(
        conn,
        "cannot attach the lake",
        &render(
            LAKE_ATTACH_SQL,
            &[
                (
                    "catalog",
                    &sql_literal(&format!("ducklake:postgres:{info}")),
                ),
                ("data_path", &sql_literal(&d.data_path)),
            ],
        ),
    )?;
    let lock = conn
        .try_clone()
        .map_err(|e| format!("cannot open the lock connection: {e}"))?;
    sql(
        &lock,
        "cannot connect to the catalog for the write lock",
        &render(LAKE_ATTACH_LOCK_SQL, &[("catalog", &sql_literal(&info))]),
    )?;
    Ok(lock)
}

/// Why the lake's write lock was not taken.
pub enum LockError {
    /// A stop was requested while waiting.
    Stopped,
    /// The catalog failed, or the wait passed its limit (the message says which).
    Failed(duckdb::Error),
}

/// How long one try at the write lock waits on the catalog's server: short enough that the
/// waiter beats and sees a stop several times a second, long enough that a lock freed during
/// the try is taken at once (the server wakes the waiter).
const LOCK_TRY: Duration = Duration::from_millis(100);

/// Takes the lake's write lock on `lock`: a transaction on the catalog's server holding
/// `pg_advisory_xact_lock`, until [`unlock`]. A process that dies holding it loses it with its
/// PostgreSQL session. While another host holds it, tries again every [`LOCK_TRY`] for at
/// most `timeout_secs`, beating `interrupt` (a wait is not a hang) and saying on it what it
/// waits for; a stop requested meanwhile ends the wait at once.
pub fn lock(lock: &Connection, timeout_secs: u64, interrupt: &Interrupt) -> Result<(), LockError> {
    let started = Instant::now();
    let limit = Duration::from_secs(timeout_secs);
    let result = loop {
        interrupt.beat();
        let wait = LOCK_TRY
            .min(limit.saturating_sub(started.elapsed()))
            .max(Duration::from_millis(1));
        match try_lock(lock, wait) {
            Ok(()) => break Ok(()),
            Err(e) if e.to_string().contains("lock timeout") => {
                if started.elapsed() >= limit {
                    break Err(LockError::Failed(super::message_error(format!(
                        "{LOCK_HELD} (a load or maintenance on another host); gave up after \
                         {timeout_secs} s (warehouse.ducklake.lock_timeout_secs)"
                    ))));
                }
                // A stop ends a wait, never a write that can go on at once (the last
                // batch's ledger updates after a SIGTERM).
                if interrupt.stop_requested() {
                    break Err(LockError::Stopped);
                }
                interrupt.wait_for(WAITING_FOR_LOCK, true);
            }
            Err(e) => break Err(LockError::Failed(e)),
        }
    };
    interrupt.done_waiting();
    result
}

/// How the error of a lock wait that passed its limit begins.
pub const LOCK_HELD: &str = "the lake's write lock is held by another votewatch";

/// What `/healthz`, `/status` and the log say while another host holds the write lock.
pub const WAITING_FOR_LOCK: &str = "waiting for the lake's write lock";

/// One try: begins the lock connection's transaction and waits at most `wait` for the lock;
/// on failure the transaction is rolled back.
fn try_lock(lock: &Connection, wait: Duration) -> duckdb::Result<()> {
    lock.execute_batch("BEGIN TRANSACTION")?;
    let taken = lock.execute_batch(&render(
        LAKE_LOCK_SQL,
        &[
            ("wait_ms", &wait.as_millis().to_string()),
            ("key", &LOCK_KEY.to_string()),
        ],
    ));
    if taken.is_err() {
        let _ = lock.execute_batch("ROLLBACK");
    }
    taken
}

pub fn unlock(lock: &Connection) {
    let _ = lock.execute_batch("ROLLBACK");
}

/// The catalog's sequence of ledger ids: a load takes its id before it reads its file, without
/// the write lock, so ids are drawn from one sequence on the catalog's server that every host
/// shares (never `max(id) + 1`, which two hosts reading at once would both take).
pub(super) const LEDGER_SEQUENCE: &str = "votewatch_ledger_id";

/// Creates the ledger-id sequence when missing and moves it past `max_id` (a lake whose ledger
/// began before the sequence). Runs under the write lock, in the schema's transaction.
pub fn ensure_ledger_sequence(conn: &Connection, max_id: i64) -> duckdb::Result<()> {
    conn.execute_batch(&render(
        LAKE_ENSURE_SEQUENCE_SQL,
        &[
            ("sequence", LEDGER_SEQUENCE),
            ("max_id", &max_id.to_string()),
        ],
    ))
}

/// The next ledger id (outside any transaction: a sequence never goes back).
pub fn next_ledger_id(conn: &Connection) -> duckdb::Result<i64> {
    conn.query_row(
        &render(LAKE_NEXT_LEDGER_ID_SQL, &[("sequence", LEDGER_SEQUENCE)]),
        [],
        |r| r.get(0),
    )
}

/// Where a load's Parquet file of new votes is written before it is added to the lake: the
/// folder DuckLake keeps `blog_analysis.votes` in, named by the ledger id (unique across
/// hosts, never reused), so that maintenance treats it as any other file of the table and an
/// interrupted load's file is an orphan that `maintain` deletes.
pub fn votes_file(d: &DuckLakeConfig, file_id: i64) -> String {
    let mut path = d.data_path.clone();
    if !path.ends_with('/') {
        path.push('/');
    }
    format!("{path}blog_analysis/votes/votewatch-{file_id}.parquet")
}

/// The fence: every write transaction updates the one row, so two that overlap conflict.
pub const FENCE_SQL: &str = include_str!("sql/lake_fence.sql");

/// This host's name (`/proc/sys/kernel/hostname`), for the ledger's `host_id`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_conninfo_values_are_quoted() {
        assert_eq!(sql_literal("it's"), "'it''s'");
        assert_eq!(conninfo_value("plain"), "plain");
        assert_eq!(conninfo_value("a b'c\\"), "'a b\\'c\\\\'");
        assert_eq!(conninfo_value(""), "''");
    }

    #[test]
    fn the_label_never_shows_a_password() {
        let d = DuckLakeConfig {
            catalog: "host=db password=secret dbname=lake".into(),
            data_path: "/lake/".into(),
            ..DuckLakeConfig::default()
        };
        let l = label(&d);
        assert!(!l.contains("secret"), "{l}");
        assert!(l.contains("host=db dbname=lake"), "{l}");
    }
}
