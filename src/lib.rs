//! votewatch loads Stack Exchange vote files into a DuckDB warehouse exactly once.
//!
//! Code map, in the order a file flows through it (ARCHITECTURE.md has the whole map):
//! - [`config`]: the TOML configuration and its defaults.
//! - [`daemon`]: `votewatch run`: watch landing/, settle, claim, load, archive, recover,
//!   report; signals and systemd.
//! - [`pipeline`]: one file, one transaction: read, split, route, load.
//! - [`datasets`]: what a record is (the votes data contract, its Arrow columns).
//! - [`warehouse`]: the only module that talks to DuckDB (ledger, load, views, lake).
//! - [`report`]: what a batch did: the report, its chart, the outbox and its delivery.
//! - [`cli`]: the on-demand commands.
//! - [`ops`]: metrics, the HTTP surface, freshness alerts, `check-config`.
//! - [`model`]: the types every part shares; [`interrupt`], [`files`], [`retry`], [`text`]:
//!   the small shared pieces.
//! - [`testing`]: failpoints and synthetic data for the tests and the benchmark.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod datasets;
pub mod files;
pub mod interrupt;
pub mod journal;
pub mod model;
pub mod ops;
pub mod pipeline;
pub mod report;
pub mod retry;
pub mod testing;
pub mod text;
pub mod warehouse;
