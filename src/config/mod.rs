//! Configuration: the TOML file, its defaults, and validation done once at start.

use std::path::{Path, PathBuf};

use serde::Deserialize;

mod report;
mod warehouse;
pub use report::*;
pub use warehouse::*;

/// A secret (the SMTP or the catalog password) from where the configuration says: the
/// environment variable `env`, else the file `file`, else the systemd credential `credential`
/// (in `$CREDENTIALS_DIRECTORY`). `Ok(None)` when none of them is set or present; an error
/// when a named file cannot be read. Trailing newlines are dropped. Never logged.
pub fn read_secret(
    env: &str,
    file: Option<&Path>,
    credential: &str,
) -> Result<Option<String>, String> {
    if !env.is_empty() {
        if let Ok(p) = std::env::var(env) {
            return Ok(Some(p));
        }
    }
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map(|t| Some(t.trim_end_matches(['\r', '\n']).to_string()))
            .map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    if let Some(f) = file {
        return read(f);
    }
    if let (Some(dir), false) = (
        std::env::var_os("CREDENTIALS_DIRECTORY"),
        credential.is_empty(),
    ) {
        let p = Path::new(&dir).join(credential);
        if p.exists() {
            return read(&p);
        }
    }
    Ok(None)
}

/// Whether `listen` (`host:port`) names a loopback address: `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback(listen: &str) -> bool {
    let host = match listen.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => listen,
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Where the configuration is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/votewatch.toml";

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub warehouse: WarehouseConfig,
    pub ingest: IngestConfig,
    pub paths: PathsConfig,
    pub daemon: DaemonConfig,
    pub report: ReportConfig,
    pub expect: ExpectConfig,
    pub datasets: DatasetsConfig,
}

/// `[datasets.votes]` and `[datasets.posts]`: which files of landing/ each dataset takes.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetsConfig {
    pub votes: DatasetConfig,
    pub posts: DatasetConfig,
}

impl Default for DatasetsConfig {
    fn default() -> Self {
        DatasetsConfig {
            // Votes follow daemon.patterns unless set.
            votes: DatasetConfig::default(),
            posts: DatasetConfig {
                patterns: Some(DEFAULT_POSTS_PATTERNS.map(String::from).to_vec()),
            },
        }
    }
}

/// One dataset's settings.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetConfig {
    /// File names of this dataset (case-insensitive globs); unset: the dataset's default
    /// (for votes, `daemon.patterns`).
    pub patterns: Option<Vec<String>>,
}

/// The posts files' names when `[datasets.posts] patterns` is not set.
pub const DEFAULT_POSTS_PATTERNS: [&str; 4] = [
    "posts*.jsonl",
    "posts*.jsonl.gz",
    "posts*.jsonl.zst",
    "*Posts*.json*",
];

/// `[expect]`: what the supplier is expected to send; the daemon alerts (once, then at most
/// once a period) when it does not, and says when it does again. Zero turns a check off.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExpectConfig {
    /// A loaded file at least every this many hours.
    pub file_every_hours: f64,
    /// At least this many new votes in the last 24 hours.
    pub min_rows_per_day: u64,
}

/// How `votewatch run` watches landing/.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// How long a closed (or moved-in) file's size and mtime must stay the same.
    pub settle_ms: u64,
    /// Full listing of landing/ as a backstop for lost events.
    pub rescan_secs: u64,
    /// File names taken from landing/ (case-insensitive globs).
    pub patterns: Vec<String>,
    /// Names ending like this are in-progress uploads and left alone.
    pub ignore_suffixes: Vec<String>,
    /// Archive to processed/YYYY-MM-DD/ instead of processed/.
    pub processed_by_day: bool,
    /// Longest wait between attempts to open a busy warehouse.
    pub max_backoff_ms: u64,
    /// Once a file is ready, how long to wait for others already closed or moved in, so
    /// that files dropped together are loaded and reported as one batch.
    pub batch_window_ms: u64,
    /// A claimed file whose load was cut short by a crash this many times is set aside in
    /// failed/ instead of being loaded again.
    pub max_load_attempts: u32,
    /// The most files one batch claims and loads; more ready files wait for the next batch, so
    /// that a backlog (thousands of files after a long analyst lock) is taken in steps.
    pub max_batch_files: u64,
    /// Small files of a batch (up to 1 MiB stored) are loaded together in one transaction,
    /// each keeping its own ledger row and outcome (group commit): at most this many files
    /// per group (1: every file alone)...
    pub group_max_files: u64,
    /// ...holding at most this many records together (a file that would take more is
    /// loaded alone).
    pub group_max_records: u64,
    /// A file written but never closed (published with `ln`, some FTP servers) is taken once
    /// it had no event and no change for this long.
    pub quiet_secs: u64,
    /// Where `/metrics`, `/healthz` and `/status` are served; empty: nowhere.
    pub http_listen: String,
    /// A file holding the bearer token the console's API asks for (`Authorization: Bearer
    /// <token>`). Required when `http_listen` is not a loopback address.
    pub http_token_file: Option<PathBuf>,
    /// Started on a DuckDB warehouse that does not exist while the archive journal names
    /// files, the daemon first rebuilds it from them (as `votewatch rebuild`).
    pub rebuild_on_missing: bool,
}

impl DaemonConfig {
    pub fn settle(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.settle_ms)
    }
    pub fn rescan_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.rescan_secs)
    }
    pub fn max_backoff(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.max_backoff_ms)
    }
    pub fn batch_window(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.batch_window_ms)
    }
    pub fn quiet(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.quiet_secs)
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        let kinds = ["jsonl", "ndjson", "json"];
        let mut patterns = Vec::new();
        for k in kinds {
            for c in ["", ".gz", ".zst"] {
                patterns.push(format!("*.{k}{c}"));
            }
        }
        DaemonConfig {
            settle_ms: 100,
            rescan_secs: 30,
            patterns,
            ignore_suffixes: [".tmp", ".part", ".partial", ".crdownload", ".filepart", "~"]
                .map(String::from)
                .to_vec(),
            processed_by_day: false,
            max_backoff_ms: 5000,
            batch_window_ms: 500,
            max_load_attempts: 3,
            max_batch_files: 500,
            group_max_files: 500,
            group_max_records: 100_000,
            quiet_secs: 300,
            http_listen: "127.0.0.1:9187".into(),
            http_token_file: None,
            rebuild_on_missing: true,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub max_reject_share: f64,
    pub max_record_bytes: usize,
    pub reject_keep_bytes: usize,
    /// Rejects stored in `rejected_votes` per file; the ledger counts all of them.
    pub max_stored_rejects: usize,
    /// A compressed file may decompress to at most this many bytes (0: no limit).
    pub max_decompressed_bytes: u64,
    /// A compressed file may decompress to at most this many times its size, checked once
    /// it has produced 64 MiB (0: no limit).
    pub max_expansion_ratio: u64,
    /// Stored rejects of arrivals older than this many days are deleted (daily by the daemon,
    /// and by `maintain`); the ledger keeps the counts. 0 keeps them forever.
    pub reject_retention_days: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    pub landing: PathBuf,
    /// Where the daemon claims each file before loading it: only votewatch writes here, and
    /// it must be on the same file system as `landing`.
    pub work: PathBuf,
    pub processed: PathBuf,
    pub failed: PathBuf,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_reject_share: 0.5,
            max_record_bytes: 1 << 20,
            reject_keep_bytes: 2048,
            max_stored_rejects: 10_000,
            reject_retention_days: 90,
            max_decompressed_bytes: 64 << 30,
            max_expansion_ratio: 200,
        }
    }
}

impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            landing: PathBuf::from("landing"),
            work: PathBuf::from("work"),
            processed: PathBuf::from("processed"),
            failed: PathBuf::from("failed"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Loads the configuration. With no explicit path, `config/votewatch.toml` is used when it
    /// exists and the built-in defaults (the same values) otherwise.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from(DEFAULT_CONFIG_PATH);
                if !p.exists() {
                    return Ok(Config::default());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid { path, message })
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Each dataset's file-name patterns, as configured or by default.
    pub fn dataset_patterns(&self) -> Vec<(crate::datasets::Dataset, Vec<String>)> {
        use crate::datasets::Dataset;
        let votes = self
            .datasets
            .votes
            .patterns
            .clone()
            .unwrap_or_else(|| self.daemon.patterns.clone());
        let posts = self
            .datasets
            .posts
            .patterns
            .clone()
            .unwrap_or_else(|| DEFAULT_POSTS_PATTERNS.map(String::from).to_vec());
        vec![(Dataset::Votes, votes), (Dataset::Posts, posts)]
    }

    /// Which dataset takes a file of which name.
    pub fn dataset_names(&self) -> crate::datasets::names::DatasetNames {
        // Validated when the configuration was loaded.
        crate::datasets::names::DatasetNames::new(&self.dataset_patterns())
            .expect("patterns validated with the configuration")
    }

    fn validate(&self) -> Result<(), String> {
        let e = &self.expect;
        if !(0.0..=24.0 * 366.0).contains(&e.file_every_hours) {
            return Err("expect.file_every_hours must be between 0 (off) and 8784 (a year)".into());
        }
        if self.warehouse.kind == WarehouseKind::Ducklake {
            let d = &self.warehouse.ducklake;
            if d.catalog.trim().is_empty() {
                return Err("warehouse.ducklake.catalog must name the PostgreSQL catalog (a libpq connection string) when warehouse.kind = \"ducklake\"".into());
            }
            if d.data_path.trim().is_empty() {
                return Err("warehouse.ducklake.data_path must name the lake's data folder or s3:// prefix when warehouse.kind = \"ducklake\"".into());
            }
            if d.host_id.trim().is_empty() {
                return Err("warehouse.ducklake.host_id must name this landing host, the same across restarts and redeployments (recovery and owed reports follow the ledger rows of this host_id; the machine's host name changes with a new container), when warehouse.kind = \"ducklake\"".into());
            }
            if !(1..=86_400).contains(&d.lock_timeout_secs) {
                return Err(
                    "warehouse.ducklake.lock_timeout_secs must be between 1 and 86400".into(),
                );
            }
            if !d.maintain_daily_at.is_empty() && d.maintain_time().is_none() {
                return Err(format!(
                    "warehouse.ducklake.maintain_daily_at must be a UTC time \"HH:MM\" or \"HH:MM:SS\", not {:?}",
                    d.maintain_daily_at
                ));
            }
            if !["path", "vhost"].contains(&d.s3.url_style.as_str()) {
                return Err("warehouse.ducklake.s3.url_style must be \"path\" or \"vhost\"".into());
            }
        }
        let i = &self.ingest;
        if !(0.0..=1.0).contains(&i.max_reject_share) {
            return Err(format!(
                "ingest.max_reject_share must be between 0 and 1, not {}",
                i.max_reject_share
            ));
        }
        if i.max_record_bytes < 64 {
            return Err("ingest.max_record_bytes must be at least 64".into());
        }
        if i.reject_keep_bytes == 0 || i.reject_keep_bytes > i.max_record_bytes {
            return Err("ingest.reject_keep_bytes must be between 1 and max_record_bytes".into());
        }
        if self.ingest.reject_retention_days > 36_500 {
            return Err(
                "ingest.reject_retention_days must be at most 36500 (0 keeps rejects forever)"
                    .into(),
            );
        }
        let d = &self.daemon;
        if d.patterns.is_empty() {
            return Err("daemon.patterns needs at least one pattern".into());
        }
        for p in &d.patterns {
            if p.trim().is_empty() {
                return Err("daemon.patterns: an empty pattern matches nothing".into());
            }
            globset::Glob::new(p).map_err(|e| format!("daemon.patterns: {e}"))?;
        }
        if let (Some(v), false) = (
            &self.datasets.votes.patterns,
            d.patterns == DaemonConfig::default().patterns,
        ) {
            if *v != d.patterns {
                return Err("daemon.patterns and datasets.votes.patterns are both set and differ; keep one (datasets.votes.patterns is the new name)".into());
            }
        }
        for (dataset, list) in self.dataset_patterns() {
            if list.is_empty() {
                return Err(format!(
                    "datasets.{dataset}.patterns needs at least one pattern"
                ));
            }
        }
        let names = crate::datasets::names::DatasetNames::new(&self.dataset_patterns())?;
        if let Some(first) = names.ambiguities().into_iter().next() {
            return Err(format!("datasets: {first}"));
        }
        if d.ignore_suffixes.iter().any(|s| s.is_empty()) {
            return Err("daemon.ignore_suffixes: an empty suffix would ignore every file".into());
        }
        for (key, value, min, max) in [
            ("daemon.rescan_secs", d.rescan_secs, 1, 86_400),
            ("daemon.settle_ms", d.settle_ms, 0, 3_600_000),
            ("daemon.max_backoff_ms", d.max_backoff_ms, 10, 3_600_000),
            ("daemon.batch_window_ms", d.batch_window_ms, 0, 600_000),
            ("daemon.quiet_secs", d.quiet_secs, 1, 86_400),
            ("daemon.max_batch_files", d.max_batch_files, 1, 100_000),
            ("daemon.group_max_files", d.group_max_files, 1, 100_000),
            (
                "daemon.group_max_records",
                d.group_max_records,
                1,
                10_000_000,
            ),
        ] {
            if !(min..=max).contains(&value) {
                return Err(format!(
                    "{key} must be between {min} and {max}, not {value}"
                ));
            }
        }
        if d.max_load_attempts == 0 {
            return Err("daemon.max_load_attempts must be at least 1".into());
        }
        if !d.http_listen.is_empty() && !is_loopback(&d.http_listen) && d.http_token_file.is_none()
        {
            return Err(format!(
                "daemon.http_listen = {:?} is not a loopback address: the console's API shows \
                 file names and rejected records, so set daemon.http_token_file (a file holding \
                 the bearer token it asks for)",
                d.http_listen
            ));
        }
        self.check_folders()?;
        let r = &self.report;
        for (what, addr) in
            std::iter::once(("report.from", &r.from)).chain(r.to.iter().map(|t| ("report.to", t)))
        {
            addr.parse::<lettre::message::Mailbox>()
                .map_err(|e| format!("{what}: {addr:?} is not an e-mail address: {e}"))?;
        }
        if r.to.is_empty() {
            return Err("report.to needs at least one address".into());
        }
        if r.retry_initial_ms == 0 || r.retry_max_ms < r.retry_initial_ms {
            return Err("report.retry_initial_ms must be > 0 and <= report.retry_max_ms".into());
        }
        if self.warehouse.path.as_os_str().is_empty() {
            return Err("warehouse.path must not be empty".into());
        }
        Ok(())
    }

    /// The daemon's folders must be distinct and none inside another (`processed = landing`
    /// would load every archived file again, an outbox inside landing/ would be ingested), and
    /// the warehouse must not sit in landing/. Compared as absolute paths, without following
    /// symlinks.
    fn check_folders(&self) -> Result<(), String> {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let folders = [
            ("paths.landing", abs(&self.paths.landing)),
            ("paths.work", abs(&self.paths.work)),
            ("paths.processed", abs(&self.paths.processed)),
            ("paths.failed", abs(&self.paths.failed)),
            ("report.outbox", abs(&self.report.outbox)),
        ];
        for (i, (a, pa)) in folders.iter().enumerate() {
            for (b, pb) in &folders[i + 1..] {
                if pa.starts_with(pb) || pb.starts_with(pa) {
                    return Err(format!(
                        "{a} ({}) and {b} ({}) must be separate folders, neither inside the other",
                        pa.display(),
                        pb.display()
                    ));
                }
            }
        }
        let landing = &folders[0].1;
        if abs(&self.warehouse.path).starts_with(landing) {
            return Err(format!(
                "warehouse.path must not be inside paths.landing ({})",
                landing.display()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The console's API shows file names and rejected records: a non-loopback address needs
    /// the token file.
    #[test]
    fn a_non_loopback_http_address_needs_a_token_file() {
        for loopback in [
            "127.0.0.1:9187",
            "localhost:80",
            "[::1]:9187",
            "127.1.2.3:1",
        ] {
            assert!(is_loopback(loopback), "{loopback}");
        }
        for other in ["0.0.0.0:9187", "10.0.0.5:80", "[::]:9187", "example.org:80"] {
            assert!(!is_loopback(other), "{other}");
        }
        let e = Config::parse("[daemon]\nhttp_listen = \"0.0.0.0:9187\"\n").unwrap_err();
        assert!(e.to_string().contains("daemon.http_token_file"), "{e}");
        let ok = "[daemon]\nhttp_listen = \"0.0.0.0:9187\"\nhttp_token_file = \"t\"\n";
        assert!(Config::parse(ok).is_ok());
        assert!(Config::parse("[daemon]\nhttp_listen = \"\"\n").is_ok());
    }

    #[test]
    fn shipped_config_is_valid_and_matches_defaults() {
        let text = include_str!("../../config/votewatch.toml");
        assert_eq!(Config::parse(text).unwrap(), Config::default());
    }

    #[test]
    fn overlapping_folders_out_of_range_durations_and_empty_patterns_are_refused() {
        let cases = [
            (
                "[paths]\nprocessed = \"landing\"\n",
                "paths.landing (",
                "paths.processed (",
            ),
            (
                "[paths]\nfailed = \"landing/failed\"\n",
                "paths.landing",
                "paths.failed",
            ),
            (
                "[report]\noutbox = \"landing/outbox\"\n",
                "paths.landing",
                "report.outbox",
            ),
            (
                "[warehouse]\npath = \"landing/w.db\"\n",
                "warehouse.path",
                "inside paths.landing",
            ),
            (
                "[daemon]\nrescan_secs = 9223372036854775807\n",
                "daemon.rescan_secs",
                "between 1 and 86400",
            ),
            (
                "[daemon]\nsettle_ms = 99999999999\n",
                "daemon.settle_ms",
                "between",
            ),
            (
                "[daemon]\nbatch_window_ms = 700000\n",
                "daemon.batch_window_ms",
                "between",
            ),
            (
                "[daemon]\nignore_suffixes = [\".tmp\", \"\"]\n",
                "daemon.ignore_suffixes",
                "every file",
            ),
            (
                "[daemon]\npatterns = [\"*.jsonl\", \" \"]\n",
                "daemon.patterns",
                "empty pattern",
            ),
            (
                "[daemon]\npatterns = []\n",
                "daemon.patterns",
                "at least one",
            ),
        ];
        for (text, key, what) in cases {
            let err = Config::parse(text).unwrap_err();
            assert!(err.contains(key) && err.contains(what), "{text}: {err}");
        }
        // Separate sibling folders with a common prefix in their names are fine.
        Config::parse("[paths]\nlanding = \"in\"\nprocessed = \"in-done\"\n").unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::parse("[ingest]\nmax_reject_share = 1.5\n").unwrap_err();
        assert!(err.contains("max_reject_share"), "{err}");
        let err = Config::parse("[ingest]\nmax_reject_shar = 0.5\n").unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
    }

    /// Issue 19: on a lake the landing host names itself; the machine's host name (a new one
    /// with every container) would orphan its claims and owed reports in the ledger.
    #[test]
    fn a_lake_needs_an_explicit_host_id() {
        let lake = "[warehouse]\nkind = \"ducklake\"\n[warehouse.ducklake]\n\
                    catalog = \"host=db\"\ndata_path = \"/lake/\"\n";
        let err = Config::parse(lake).unwrap_err();
        assert!(err.contains("warehouse.ducklake.host_id"), "{err}");
        let named = Config::parse(&format!("{lake}host_id = \"landing-1\"\n")).unwrap();
        assert_eq!(named.warehouse.ducklake.host_id, "landing-1");
        // A DuckDB file needs none.
        assert!(Config::parse("[warehouse]\npath = \"w.db\"\n").is_ok());
    }

    #[test]
    fn the_daily_maintenance_time_is_the_next_one_after_now() {
        use chrono::{NaiveTime, TimeZone, Utc};
        let at = NaiveTime::from_hms_opt(3, 0, 0).unwrap();
        let before = Utc.with_ymd_and_hms(2026, 11, 26, 2, 59, 59).unwrap();
        assert_eq!(
            next_daily(before, at),
            Utc.with_ymd_and_hms(2026, 11, 26, 3, 0, 0).unwrap()
        );
        let exactly = Utc.with_ymd_and_hms(2026, 11, 26, 3, 0, 0).unwrap();
        assert_eq!(
            next_daily(exactly, at),
            Utc.with_ymd_and_hms(2026, 11, 27, 3, 0, 0).unwrap()
        );
        let d = DuckLakeConfig {
            maintain_daily_at: "03:00".into(),
            ..DuckLakeConfig::default()
        };
        assert_eq!(d.maintain_time(), Some(at));
        let bad = DuckLakeConfig {
            maintain_daily_at: "3am".into(),
            ..DuckLakeConfig::default()
        };
        assert_eq!(bad.maintain_time(), None);
    }
}
