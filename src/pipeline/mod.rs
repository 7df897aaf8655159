//! The pipeline: a file's way from bytes to a committed load, for any dataset.
//! - `read`: open (regular files only), decode gzip/zstd (bomb guards), hash, check encoding.
//! - `split`: records out of the decoded bytes (JSON lines, or one JSON array), in bounded chunks.
//! - `route`: the reader and parser threads, and the caller's thread routing each parsed row
//!   straight in or to staging, in file order.
//! - `insert`: on a DuckDB file, the routing on a thread of its own and the new rows streamed
//!   into `votes` by one `INSERT … SELECT` per segment, on every DuckDB thread.
//! - `load`: one file, one transaction: the outcome, the status rules, the ledger row.
//! - `group`: small files read whole, then loaded in one shared transaction (group commit),
//!   each with the outcome its own transaction would have had.
//!
//! Owns no state between files. Must not touch: the daemon's folders (it never moves a file;
//! the destination it records is decided by `model::ArchivePlan`), the mail, the metrics.
//! DuckDB only through `warehouse`.
pub mod group;
pub mod insert;
pub mod load;
pub mod posts;
pub mod read;
pub mod rebuild;
pub mod route;
pub mod split;
