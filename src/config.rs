//! Configuration: the TOML file, its defaults, and validation done once at start.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the configuration is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/votewatch.toml";

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub warehouse: WarehouseConfig,
    pub ingest: IngestConfig,
    pub paths: PathsConfig,
    pub daemon: DaemonConfig,
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
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WarehouseConfig {
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub max_reject_share: f64,
    pub max_record_bytes: usize,
    pub reject_keep_bytes: usize,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    pub landing: PathBuf,
    pub processed: PathBuf,
    pub failed: PathBuf,
}

impl Default for WarehouseConfig {
    fn default() -> Self {
        WarehouseConfig {
            path: PathBuf::from("warehouse.db"),
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_reject_share: 0.5,
            max_record_bytes: 1 << 20,
            reject_keep_bytes: 2048,
        }
    }
}

impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            landing: PathBuf::from("landing"),
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

    fn validate(&self) -> Result<(), String> {
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
        for p in &self.daemon.patterns {
            globset::Glob::new(p).map_err(|e| format!("daemon.patterns: {e}"))?;
        }
        if self.daemon.rescan_secs == 0 {
            return Err("daemon.rescan_secs must be at least 1".into());
        }
        if self.daemon.max_backoff_ms < 10 {
            return Err("daemon.max_backoff_ms must be at least 10".into());
        }
        if self.warehouse.path.as_os_str().is_empty() {
            return Err("warehouse.path must not be empty".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_is_valid_and_matches_defaults() {
        let text = include_str!("../config/votewatch.toml");
        assert_eq!(Config::parse(text).unwrap(), Config::default());
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::parse("[ingest]\nmax_reject_share = 1.5\n").unwrap_err();
        assert!(err.contains("max_reject_share"), "{err}");
        let err = Config::parse("[ingest]\nmax_reject_shar = 0.5\n").unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
    }
}
