//! votewatch loads Stack Exchange vote files into a DuckDB warehouse exactly once.
//!
//! Code map, in the order a file flows through it:
//! - [`config`]: the TOML configuration and its defaults.
//! - [`daemon`]: `votewatch run`: watch landing/, batch ready files, archive, report.
//! - [`settle`]: when a file in landing/ is complete enough to take.
//! - [`input`]: opening a file (compression, hash), splitting it into records.
//! - [`vote`]: the data contract: a record becomes a vote or a specific reject reason.
//! - [`ingest`]: one file, one transaction: reader thread, parser threads, staging, commit.
//! - [`warehouse`]: the only module that talks to DuckDB (schema, ledger, load, view).
//! - [`archive`]: moving a file to processed/ or failed/ without overwriting anything.
//! - [`chart`]: the report's weekly chart (PNG) and its table.
//! - [`report`]: the per-batch report as data, text and HTML.
//! - [`mail`]: the outbox and its delivery (SMTP or .eml files), with retries.
//! - [`freshness`]: whether the supplier sends what `[expect]` says (alerts).
//! - [`metrics`]: the daemon's Prometheus registry and `/status` document.
//! - [`http`]: `/metrics`, `/healthz` and `/status` on a local address.
//! - [`commands`]: the CLI commands' output (ingest lines, outlier and history tables,
//!   check reports).
//! - [`preflight`]: `votewatch check-config`: the configuration and what it points at.
//! - [`synth`]: deterministic test and benchmark data shaped like the real export.
//! - [`failpoint`]: crash points for the crash-safety tests.
//! - [`text`]: supplier text (file names, reasons) escaped for terminals and logs.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod datasets;
pub mod files;
pub mod interrupt;
pub mod model;
pub mod ops;
pub mod pipeline;
pub mod report;
pub mod retry;
pub mod testing;
pub mod text;
pub mod warehouse;
