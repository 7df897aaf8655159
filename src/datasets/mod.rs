//! The datasets votewatch loads, one module each: its data contract (fields, types, rules,
//! the parsers), its rows and its table. Pure: no I/O, no DuckDB. What they share —
//! the reasons a record is refused, the unknown fields, the walk over a chunk's records — is
//! in [`contract`] and here; the pipeline, ledger, daemon and reports name no dataset's
//! columns.
pub mod contract;
pub mod names;
pub mod posts;
pub mod votes;

use std::fmt;

use contract::{RejectReason, UnknownFields};

use crate::model::RejectRow;
use crate::pipeline::split::Chunk;

/// A kind of file votewatch loads: where its rows go and how they are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Dataset {
    /// Stack Exchange votes: `blog_analysis.votes`, first write wins per Id.
    #[default]
    Votes,
    /// Stack Exchange posts: `blog_analysis.posts`, the latest version per Id current, the
    /// versions it replaced in `posts_history`.
    Posts,
}

impl Dataset {
    pub const ALL: [Dataset; 2] = [Dataset::Votes, Dataset::Posts];

    /// The name the configuration, the ledger, the reports and `--dataset` use.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Votes => "votes",
            Dataset::Posts => "posts",
        }
    }

    pub fn from_name(name: &str) -> Option<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.name() == name)
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the walk over a chunk's records found besides the valid records.
#[derive(Debug, Default)]
pub(crate) struct RecordTally {
    pub(crate) rejects: Vec<RejectRow>,
    /// Rejects counted but not kept: the file has stored and sampled all it needs.
    pub(crate) unkept_rejects: u64,
    pub(crate) lines: u64,
    pub(crate) blank: u64,
    pub(crate) unknown: UnknownFields,
}

/// Validates each record of `chunk` with `parse`, in order, handing each valid one to `ok`
/// with its position in the file. A flagged structural error, an oversize record, an empty
/// array element or a record `parse` refuses is a reject (kept when `keep_rejects`, its raw
/// text cut at `keep_bytes`); a blank line is counted as blank.
pub(crate) fn each_record<T>(
    chunk: &Chunk,
    max_record_bytes: usize,
    keep_bytes: usize,
    keep_rejects: bool,
    out: &mut RecordTally,
    mut parse: impl FnMut(&[u8], &mut UnknownFields) -> Result<T, RejectReason>,
    mut ok: impl FnMut(u64, T),
) {
    out.lines += chunk.records.len() as u64;
    for r in &chunk.records {
        let bytes = &chunk.data[r.start..r.end];
        if let Some(what) = r.structure {
            if !keep_rejects {
                out.unkept_rejects += 1;
                continue;
            }
            out.rejects.push(RejectRow {
                line: r.line,
                element: r.element,
                raw: String::new(),
                truncated: false,
                reason: what.to_string(),
            });
            continue;
        }
        let result = if let Some(bytes_total) = r.oversize {
            Err(RejectReason::TooLong {
                bytes: bytes_total,
                limit: max_record_bytes as u64,
            })
        } else if bytes.iter().all(u8::is_ascii_whitespace) {
            if r.element.is_none() {
                out.blank += 1;
                continue;
            }
            Err(RejectReason::NotJson("empty array element".into()))
        } else {
            parse(bytes, &mut out.unknown)
        };
        match result {
            Ok(v) => ok(r.pos, v),
            Err(_) if !keep_rejects => out.unkept_rejects += 1,
            Err(reason) => {
                let cut = bytes.len().min(keep_bytes);
                out.rejects.push(RejectRow {
                    line: r.line,
                    element: r.element,
                    raw: String::from_utf8_lossy(&bytes[..cut]).into_owned(),
                    truncated: r.oversize.is_some() || cut < bytes.len(),
                    reason: reason.to_string(),
                });
            }
        }
    }
}
