//! `[warehouse]`: a DuckDB file, or a DuckLake (its catalog, data path, S3, lock and
//! maintenance).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the warehouse lives.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WarehouseKind {
    /// One DuckDB file (`warehouse.path`).
    #[default]
    Duckdb,
    /// DuckLake: catalog in PostgreSQL, data as Parquet in a folder or on S3
    /// (`[warehouse.ducklake]`); several daemons may load at once.
    Ducklake,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WarehouseConfig {
    pub kind: WarehouseKind,
    pub path: PathBuf,
    /// DuckDB's `memory_limit` for votewatch's own connection (DuckDB's size syntax); DuckDB
    /// spills to disk beyond it. Empty: DuckDB's default (80% of the machine's memory).
    pub memory_limit: String,
    pub ducklake: DuckLakeConfig,
}

/// `[warehouse.ducklake]`: the lake votewatch writes when `warehouse.kind = "ducklake"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DuckLakeConfig {
    /// The PostgreSQL catalog as a libpq connection string ("host=... dbname=... user=...");
    /// no password in it.
    pub catalog: String,
    /// Where the catalog's password comes from: this environment variable, else the file,
    /// else the systemd credential of this name. None set or found: no password (libpq's
    /// own `PGPASSFILE` / `.pgpass` still apply).
    pub password_env: String,
    pub password_file: Option<PathBuf>,
    pub password_credential: String,
    /// The lake's data: a folder (shared by every host) or `s3://bucket/prefix/`.
    pub data_path: String,
    /// This landing host's name in the ledger (`host_id`); required on a lake.
    pub host_id: String,
    /// How long a load waits for the lake's write lock before it gives up (and is retried).
    pub lock_timeout_secs: u64,
    /// Where DuckDB keeps the extensions it installs (ducklake, postgres, parquet, httpfs).
    pub extension_directory: PathBuf,
    /// An offline extension repository (`REPO/v1.5.5/linux_amd64/*.duckdb_extension`, see
    /// `scripts/duckdb-extensions.sh`); empty: DuckDB's own repository (needs the network).
    pub extension_repository: String,
    /// Where loads spill beyond `memory_limit`.
    pub temp_directory: PathBuf,
    /// Snapshots and unreferenced files older than this are removed by `votewatch maintain`.
    pub retention_days: u32,
    /// When the daemon runs `votewatch maintain` each day ("HH:MM" or "HH:MM:SS", UTC);
    /// empty: never (run it from a timer instead).
    pub maintain_daily_at: String,
    pub s3: S3Config,
}

/// `[warehouse.ducklake.s3]`: the object store when `data_path` is `s3://...`. Keys come from
/// the environment, never from this file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// host:port of an S3-compatible endpoint; empty: AWS.
    pub endpoint: String,
    pub region: String,
    /// "path" or "vhost".
    pub url_style: String,
    pub use_ssl: bool,
    pub key_id_env: String,
    pub secret_env: String,
}

impl DuckLakeConfig {
    /// The daily maintenance time, when one is configured and valid.
    pub fn maintain_time(&self) -> Option<chrono::NaiveTime> {
        let t = self.maintain_daily_at.trim();
        chrono::NaiveTime::parse_from_str(t, "%H:%M:%S")
            .or_else(|_| chrono::NaiveTime::parse_from_str(t, "%H:%M"))
            .ok()
    }
}

/// The first moment at `at` (UTC, daily) strictly after `after`.
pub fn next_daily(
    after: chrono::DateTime<chrono::Utc>,
    at: chrono::NaiveTime,
) -> chrono::DateTime<chrono::Utc> {
    let today = after.date_naive().and_time(at).and_utc();
    if today > after {
        today
    } else {
        today + chrono::Duration::days(1)
    }
}

impl Default for DuckLakeConfig {
    fn default() -> Self {
        DuckLakeConfig {
            catalog: String::new(),
            password_env: "VOTEWATCH_CATALOG_PASSWORD".into(),
            password_file: None,
            password_credential: "catalog-password".into(),
            data_path: String::new(),
            host_id: String::new(),
            lock_timeout_secs: 600,
            extension_directory: PathBuf::from("duckdb-extensions"),
            extension_repository: String::new(),
            temp_directory: PathBuf::from("lake.tmp"),
            retention_days: 7,
            maintain_daily_at: String::new(),
            s3: S3Config::default(),
        }
    }
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: String::new(),
            region: "us-east-1".into(),
            url_style: "vhost".into(),
            use_ssl: true,
            key_id_env: "AWS_ACCESS_KEY_ID".into(),
            secret_env: "AWS_SECRET_ACCESS_KEY".into(),
        }
    }
}

impl WarehouseConfig {
    /// The same settings for another DuckDB file (the CLI's `--warehouse`).
    pub fn with_path(&self, path: &Path) -> WarehouseConfig {
        WarehouseConfig {
            path: path.to_path_buf(),
            ..self.clone()
        }
    }
}

impl Default for WarehouseConfig {
    fn default() -> Self {
        WarehouseConfig {
            kind: WarehouseKind::Duckdb,
            path: PathBuf::from("warehouse.db"),
            memory_limit: "128MB".into(),
            ducklake: DuckLakeConfig::default(),
        }
    }
}
