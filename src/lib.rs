//! votewatch loads Stack Exchange vote files into a DuckDB warehouse exactly once.
//!
//! Code map, in the order a file flows through it:
//! - [`config`]: the TOML configuration and its defaults.
//! - [`input`]: opening a file (compression, hash), splitting it into records.
//! - [`vote`]: the data contract: a record becomes a vote or a specific reject reason.
//! - [`ingest`]: one file, one transaction: reader thread, parser threads, staging, commit.
//! - [`warehouse`]: the only module that talks to DuckDB (schema, ledger, load, view).
//! - [`commands`]: the CLI commands' output (ingest lines, outlier and history tables).
//! - [`synth`]: deterministic test and benchmark data shaped like the real export.
//! - [`failpoint`]: crash points for the crash-safety tests.

pub mod commands;
pub mod config;
pub mod failpoint;
pub mod ingest;
pub mod synth;
pub mod input;
pub mod vote;
pub mod warehouse;
