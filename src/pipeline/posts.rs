//! Reading a posts file into its open load: the records are split, validated and staged on
//! the caller's thread (posts files are small beside votes files; the staging table, not
//! memory, holds them), and resolved against the table at commit
//! (`warehouse::FileLoad::commit`).

use std::sync::atomic::AtomicBool;

use super::load::IngestOptions;
use super::route::{read_limits, Tally};
use crate::datasets::posts::{parse_post, Post};
use crate::datasets::{each_record, RecordTally};
use crate::pipeline::read::{Digest256, Layout, Source};
use crate::warehouse::{FileLoad, WarehouseError};

/// Reads, validates and stages every record of `source`. The outer error is the warehouse's;
/// the inner one a read error of the file.
pub(crate) fn read_posts(
    source: Source,
    opts: &IngestOptions,
    load: &mut FileLoad<'_>,
    tally: &mut Tally,
) -> Result<std::io::Result<(Layout, Digest256)>, WarehouseError> {
    let keep = AtomicBool::new(true);
    let max_stored = opts.limits.max_stored_rejects;
    let mut failure: Option<WarehouseError> = None;
    let mut parse_failure: Option<String> = None;
    let read = source.read_records(read_limits(opts), |chunk| {
        if let Some(i) = &opts.interrupt {
            if i.stop_requested() {
                return false;
            }
            i.beat();
        }
        let mut records = RecordTally::default();
        let mut posts: Vec<(u64, Post)> = Vec::new();
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if chunk.records.first().is_some_and(|r| r.pos == 0) {
                crate::testing::failpoint::panic_at("parse_panic");
            }
            each_record(
                &chunk,
                opts.limits.max_record_bytes,
                opts.limits.reject_keep_bytes,
                keep.load(std::sync::atomic::Ordering::Relaxed),
                &mut records,
                parse_post,
                |pos, post| posts.push((pos, post)),
            )
        }));
        if parsed.is_err() {
            parse_failure = Some(format!(
                "votewatch's parser failed on the records from line {}",
                chunk.records.first().map_or(0, |r| r.line)
            ));
            return false;
        }
        let store = tally.add(&mut records, max_stored, &keep);
        let ids: Vec<i64> = posts.iter().map(|(_, p)| p.id()).collect();
        tally.widen(&ids);
        let staged = load
            .append_rejects(&records.rejects[..store])
            .and_then(|()| load.append_posts(&posts));
        match staged {
            Ok(()) => true,
            Err(e) => {
                failure = Some(e);
                false
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(why) = parse_failure {
        return Ok(Err(std::io::Error::other(why)));
    }
    Ok(read)
}
