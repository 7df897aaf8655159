//! Reading a file into the open load: the reader thread and the parser threads, and the
//! caller's thread taking parsed chunks back in file order and routing each row — straight
//! into the table when it cannot repeat anything, else staged (repeats folded) for the
//! dedupe at commit. Generic in what it holds; the dataset gives the parser and the columns.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};

use duckdb::arrow::array::BooleanBuilder;
use duckdb::arrow::compute::{filter_record_batch, not};
use duckdb::arrow::record_batch::RecordBatch;

use super::load::{IngestOptions, CHUNK_BYTES, CHUNK_RECORDS, SAMPLE_REJECTS};
use crate::datasets::votes::arrow::{
    as_votes_batch, created_column, key_column, parse_chunk, parsed_schema, staged_batch,
    staged_rows, ParsedChunk,
};
use crate::datasets::votes::{UnknownFields, Vote};
use crate::datasets::RecordTally;
use crate::model::{Counts, RejectRow};
use crate::pipeline::read::{Layout, Limits, Source};
use crate::pipeline::split::Chunk;
use crate::warehouse::WarehouseError;

/// What a file's parsed chunks add up to, whatever becomes of its rows: the counts, the
/// unknown fields, the first rejects, how many rejects were stored, the Id range.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) counts: Counts,
    pub(crate) unknown: UnknownFields,
    pub(crate) samples: Vec<RejectRow>,
    /// Rejects written to `rejected_votes` so far (at most `max_stored_rejects`).
    pub(crate) stored_rejects: u64,
    /// The lowest and highest Id of the file's valid records so far.
    pub(crate) id_range: Option<(i64, i64)>,
}

impl Tally {
    /// Counts a parsed chunk in. Returns how many of its rejects, from the first, are to be
    /// stored (every reject is counted; only the first `max_stored` of a file are stored), and
    /// clears `keep_rejects` once nothing more would be kept.
    pub(crate) fn add(
        &mut self,
        parsed: &mut RecordTally,
        max_stored: usize,
        keep_rejects: &AtomicBool,
    ) -> usize {
        let c = &mut self.counts;
        c.lines += parsed.lines;
        c.blank += parsed.blank;
        c.rejected += parsed.rejects.len() as u64 + parsed.unkept_rejects;
        self.unknown.merge(std::mem::take(&mut parsed.unknown));
        let room = SAMPLE_REJECTS.saturating_sub(self.samples.len());
        self.samples
            .extend(parsed.rejects.iter().take(room).cloned());
        let store = (max_stored as u64).saturating_sub(self.stored_rejects) as usize;
        let store = store.min(parsed.rejects.len());
        self.stored_rejects += store as u64;
        if self.stored_rejects >= max_stored as u64 && self.samples.len() >= SAMPLE_REJECTS {
            keep_rejects.store(false, Ordering::Relaxed);
        }
        store
    }

    /// Widens the Id range by `ids`.
    pub(crate) fn widen(&mut self, ids: &[i64]) {
        let (mut lo, mut hi) = self.id_range.unwrap_or((i64::MAX, i64::MIN));
        for &id in ids {
            lo = lo.min(id);
            hi = hi.max(id);
        }
        if lo <= hi {
            self.id_range = Some((lo, hi));
        }
    }
}

/// What the stage step accumulates over the chunks of a file.
pub(crate) struct StageState {
    pub(crate) tally: Tally,
    /// Highest Id seen so far, starting from the warehouse's.
    pub(crate) max_id: i64,
    /// Staged rows not appended yet.
    pub(crate) fold: Fold,
    /// Ids the file has shown so far.
    pub(crate) seen: SeenIds,
    /// The highest Id of the rows that went straight in (from the warehouse's maximum).
    pub(crate) direct_max: i64,
    /// The rows that went straight in, by day of creation, when the load takes its weekly
    /// counts from here (a DuckDB file; a lake may drop direct rows at commit, and counts them
    /// there).
    pub(crate) direct_days: Option<DayCounts>,
    /// The last rows that went straight in, to resolve a repeat of one of them on the spot.
    pub(crate) recent: RecentDirect,
    /// The repeats resolved on the spot.
    pub(crate) resolved: crate::warehouse::Resolved,
}

impl StageState {
    /// The state of a file loaded into a warehouse whose highest Id is `max_id`; with
    /// `count_days`, the rows that go straight in are counted by day.
    pub(crate) fn new(max_id: i64, count_days: bool) -> StageState {
        StageState {
            tally: Tally::default(),
            max_id,
            fold: Fold::default(),
            seen: SeenIds::new(),
            direct_max: max_id,
            direct_days: count_days.then(DayCounts::default),
            recent: RecentDirect::default(),
            resolved: Default::default(),
        }
    }
}

/// Rows that went straight in, at most [`RECENT_ROWS`] of the last ones, in batches whose Ids
/// ascend (found by binary search). A row that went straight in is the first valid
/// occurrence of its Id in the file, so it wins over every later row with that Id: a later
/// repeat found here is counted at once (a duplicate when its values are the same, else
/// conflicting) and never staged — what the resolve at commit would have counted, without
/// its join over the file's rows. Repeats of older rows are staged as before.
#[derive(Default)]
pub(crate) struct RecentDirect {
    batches: std::collections::VecDeque<RecordBatch>,
    rows: usize,
}

/// How many of the last rows that went straight in [`RecentDirect`] keeps (their parsed
/// chunks stay in memory: a few MiB).
pub(crate) const RECENT_ROWS: usize = 256 * 1024;

/// The shortest run of ascending Ids [`RecentDirect`] keeps.
const RECENT_RUN: usize = 64;

impl RecentDirect {
    /// Keeps the runs of ascending Ids of `batch` (zero-copy slices); runs shorter than
    /// [`RECENT_RUN`] are left out, so that a file out of order costs no long lookups.
    fn push(&mut self, batch: &RecordBatch) {
        let ids = key_column(batch).values();
        let mut start = 0;
        for end in 1..=ids.len() {
            if end == ids.len() || ids[end] <= ids[end - 1] {
                if end - start >= RECENT_RUN {
                    self.rows += end - start;
                    self.batches.push_back(batch.slice(start, end - start));
                }
                start = end;
            }
        }
        while self.rows > RECENT_ROWS {
            match self.batches.pop_front() {
                Some(old) => self.rows -= old.num_rows(),
                None => break,
            }
        }
    }

    /// The row that went straight in with this Id, when it is one of the last.
    fn find(&self, id: i64) -> Option<Vote> {
        self.batches.iter().rev().find_map(|b| {
            let ids = key_column(b).values();
            if id < ids[0] || id > ids[ids.len() - 1] {
                return None;
            }
            let i = ids.binary_search(&id).ok()?;
            staged_rows(&b.slice(i, 1)).next().map(|(_, v)| v)
        })
    }
}

/// Rows counted by day of creation: a file's rows come mostly in date order, so a run of one
/// day is counted without a lookup. Days, not weeks, so that the count per row is one
/// division; [`DayCounts::weeks`] turns the few distinct days into weeks.
#[derive(Default)]
pub(crate) struct DayCounts {
    run: Option<(i64, i64)>,
    days: HashMap<i64, i64>,
}

impl DayCounts {
    pub(crate) fn add(&mut self, created_micros: &[i64]) {
        use crate::datasets::votes::MICROS_PER_DAY;
        for &micros in created_micros {
            let day = micros.div_euclid(MICROS_PER_DAY);
            match &mut self.run {
                Some((d, n)) if *d == day => *n += 1,
                run => {
                    if let Some((d, n)) = run.replace((day, 1)) {
                        *self.days.entry(d).or_default() += n;
                    }
                }
            }
        }
    }

    /// (year, week, rows) of every week counted, as `weekly_votes` keys them.
    pub(crate) fn weeks(mut self) -> Vec<(i64, i32, i64)> {
        if let Some((d, n)) = self.run.take() {
            *self.days.entry(d).or_default() += n;
        }
        let mut weeks: BTreeMap<(i64, i32), i64> = BTreeMap::new();
        for (day, n) in self.days {
            *weeks
                .entry(crate::datasets::votes::week_of_day(day))
                .or_default() += n;
        }
        weeks.into_iter().map(|((y, w), n)| (y, w, n)).collect()
    }
}

/// Where the routed rows of a file go: the open load ([`crate::warehouse::FileLoad`]), or
/// nowhere ([`read_only`], the limit a load is measured against).
pub(crate) trait RowSink {
    /// The highest Id in the warehouse when the file began.
    fn max_id_before(&self) -> i64;
    /// The file's ledger id, the lineage of its rows.
    fn file_id(&self) -> i64;
    /// Rows that are new for sure.
    fn append_new_votes(&mut self, batch: RecordBatch) -> Result<(), WarehouseError>;
    /// Rows to resolve at the end of the file.
    fn append_staged(&mut self, batch: RecordBatch) -> Result<(), WarehouseError>;
    /// Rejects to store.
    fn append_rejects(&mut self, rows: &[RejectRow]) -> Result<(), WarehouseError>;
}

impl RowSink for crate::warehouse::FileLoad<'_> {
    fn max_id_before(&self) -> i64 {
        self.max_id_before
    }
    fn file_id(&self) -> i64 {
        self.file_id
    }
    fn append_new_votes(&mut self, batch: RecordBatch) -> Result<(), WarehouseError> {
        crate::warehouse::FileLoad::append_new_votes(self, batch)
    }
    fn append_staged(&mut self, batch: RecordBatch) -> Result<(), WarehouseError> {
        crate::warehouse::FileLoad::append_staged(self, batch)
    }
    fn append_rejects(&mut self, rows: &[RejectRow]) -> Result<(), WarehouseError> {
        crate::warehouse::FileLoad::append_rejects(self, rows)
    }
}

/// Counts what it is given and keeps nothing.
#[derive(Default)]
struct Discard {
    rows: u64,
}

impl RowSink for Discard {
    fn max_id_before(&self) -> i64 {
        0
    }
    fn file_id(&self) -> i64 {
        0
    }
    fn append_new_votes(&mut self, batch: RecordBatch) -> Result<(), WarehouseError> {
        self.rows += batch.num_rows() as u64;
        Ok(())
    }
    fn append_staged(&mut self, batch: RecordBatch) -> Result<(), WarehouseError> {
        self.rows += batch.num_rows() as u64;
        Ok(())
    }
    fn append_rejects(&mut self, _: &[RejectRow]) -> Result<(), WarehouseError> {
        Ok(())
    }
}

/// Everything a load does but write: open, decompress, hash, split, parse and route the file
/// with the load's own threads, the rows thrown away. The rate a load is measured against
/// (`votewatch-bench --limit`): what is left is the cost of writing. Returns the counts and
/// how many rows reached the sink (new and staged; exact repeats among the staged folded).
pub fn read_only(path: &std::path::Path, opts: &IngestOptions) -> std::io::Result<(Counts, u64)> {
    let source = Source::open(path, opts.follow_symlinks)?;
    let mut sink = Discard::default();
    let mut state = StageState::new(0, false);
    let read =
        read_and_stage(source, opts, &mut sink, &mut state).map_err(std::io::Error::other)?;
    read?;
    flush_fold(&mut sink, &mut state).map_err(std::io::Error::other)?;
    Ok((state.tally.counts, sink.rows))
}

/// What reading the file gave: its layout and digest, or the read error.
pub(crate) type ReadResult = std::io::Result<(Layout, crate::pipeline::read::Digest256)>;

/// The reader's limits for a load with these options.
pub(crate) fn read_limits(opts: &IngestOptions) -> Limits {
    Limits {
        max_record_bytes: opts.limits.max_record_bytes,
        keep_bytes: opts.limits.reject_keep_bytes,
        chunk_bytes: CHUNK_BYTES,
        chunk_records: CHUNK_RECORDS,
        max_decompressed_bytes: opts.limits.max_decompressed_bytes,
        max_expansion_ratio: opts.limits.max_expansion_ratio,
    }
}

/// Runs the reader and the parsers and stages their output in order. The outer error is the
/// warehouse's; the inner one a read error of the file.
pub(crate) fn read_and_stage(
    source: Source,
    opts: &IngestOptions,
    load: &mut impl RowSink,
    state: &mut StageState,
) -> Result<ReadResult, WarehouseError> {
    let parsers = match opts.parsers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let limits = read_limits(opts);
    let ingest_limits = opts.limits;
    let max_stored = opts.limits.max_stored_rejects;
    let keep_rejects = AtomicBool::new(true);
    let schema = parsed_schema();
    std::thread::scope(|scope| {
        let (chunk_tx, chunk_rx) = crossbeam_channel::bounded::<(u64, Chunk)>(parsers * 2);
        let (parsed_tx, parsed_rx) =
            crossbeam_channel::bounded::<(u64, Result<ParsedChunk, String>)>(parsers * 2);
        // Permits for chunks between the reader and their staging: the reader takes one per
        // chunk and the stager gives it back once the chunk is staged, so however slowly one
        // chunk is parsed, at most `in_flight` chunks wait to be put in order.
        let in_flight = parsers * 4;
        let (permit_tx, permit_rx) = crossbeam_channel::bounded::<()>(in_flight);
        for _ in 0..in_flight {
            let _ = permit_tx.send(());
        }
        let interrupt = opts.interrupt.clone();
        let reader = scope.spawn(move || {
            let mut seq = 0u64;
            source.read_records(limits, |chunk| {
                if let Some(i) = &interrupt {
                    if i.stop_requested() {
                        return false;
                    }
                    i.beat();
                }
                // No permit when the stager gave up (its end of the permits is gone).
                if permit_rx.recv().is_err() {
                    return false;
                }
                seq += 1;
                chunk_tx.send((seq - 1, chunk)).is_ok()
            })
        });
        for _ in 0..parsers {
            let rx = chunk_rx.clone();
            let tx = parsed_tx.clone();
            let schema = schema.clone();
            let keep = &keep_rejects;
            scope.spawn(move || {
                for (seq, chunk) in rx {
                    let parsed = parse_guarded(&chunk, &ingest_limits, &schema, keep);
                    if tx.send((seq, parsed)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(chunk_rx);
        drop(parsed_tx);

        // Stage chunks in file order; parsers may finish out of order.
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        let mut failure = None;
        let mut parse_failure = None;
        for (seq, parsed) in &parsed_rx {
            pending.insert(seq, parsed);
            while let Some(parsed) = pending.remove(&next) {
                next += 1;
                let _ = permit_tx.try_send(());
                match parsed {
                    Ok(parsed) => {
                        if let Err(e) = stage_chunk(load, state, parsed, max_stored, &keep_rejects)
                        {
                            failure = Some(e);
                        }
                    }
                    Err(why) => parse_failure = Some(std::io::Error::other(why)),
                }
                if failure.is_some() || parse_failure.is_some() {
                    break;
                }
            }
            if failure.is_some() || parse_failure.is_some() {
                break;
            }
        }
        // Stop the reader: without the receivers and the permits its next chunk fails.
        drop(parsed_rx);
        drop(permit_tx);
        drop(pending);
        let read = reader.join().expect("reader thread panicked");
        match (failure, parse_failure) {
            (Some(e), _) => Err(e),
            (None, Some(why)) => Ok(Err(why)),
            (None, None) => Ok(read),
        }
    })
}

/// Parses a chunk; a parser that panics still answers for its chunk (with the failure), so
/// the chunks after it never wait for one that cannot come, and the file is `failed`.
pub(crate) fn parse_guarded(
    chunk: &Chunk,
    limits: &crate::config::IngestConfig,
    schema: &duckdb::arrow::datatypes::SchemaRef,
    keep: &AtomicBool,
) -> Result<ParsedChunk, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if chunk.records.first().is_some_and(|r| r.pos == 0) {
            crate::testing::failpoint::panic_at("parse_panic");
        }
        parse_chunk(chunk, limits, schema, keep)
    }))
    .map_err(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        format!(
            "votewatch's parser failed on the records from line {}: {what}",
            chunk.records.first().map_or(0, |r| r.line)
        )
    })
}

pub(crate) fn stage_chunk(
    load: &mut impl RowSink,
    state: &mut StageState,
    mut parsed: ParsedChunk,
    max_stored: usize,
    keep_rejects: &AtomicBool,
) -> Result<(), WarehouseError> {
    let store = state
        .tally
        .add(&mut parsed.records, max_stored, keep_rejects);
    if store > 0 {
        load.append_rejects(&parsed.records.rejects[..store])?;
    }
    if let Some(batch) = parsed.votes {
        route_batch(load, state, batch)?;
    }
    crate::testing::failpoint::stall("mid_load");
    Ok(())
}

/// Splits a parsed batch in file order. A row cannot repeat anything when its Id is above
/// every Id seen so far (the warehouse's maximum when the file began, then the file's own), or
/// when it is above the warehouse's maximum and the file has certainly not shown it before
/// ([`SeenIds`]); such a row goes straight into `votes`. Any other row is staged and resolved
/// at commit. A file of new Ids stages only its repeats, in whatever order it comes.
pub(crate) fn route_batch(
    load: &mut impl RowSink,
    state: &mut StageState,
    batch: RecordBatch,
) -> Result<(), WarehouseError> {
    let ids = key_column(&batch);
    let mut direct = BooleanBuilder::with_capacity(ids.len());
    let mut all_direct = true;
    state.tally.widen(ids.values());
    for &id in ids.values() {
        let seen_maybe = state.seen.insert(id);
        let new = id > state.max_id || (id > load.max_id_before() && !seen_maybe);
        all_direct &= new;
        if new {
            state.direct_max = state.direct_max.max(id);
        }
        direct.append_value(new);
        state.max_id = state.max_id.max(id);
    }
    let direct = direct.finish();
    let (new_rows, staged) = if all_direct {
        (batch, None)
    } else {
        let staged = filter_record_batch(&batch, &not(&direct).expect("same length"))
            .expect("mask matches the batch");
        (
            filter_record_batch(&batch, &direct).expect("mask matches the batch"),
            Some(staged),
        )
    };
    if new_rows.num_rows() > 0 {
        if let Some(days) = &mut state.direct_days {
            days.add(created_column(&new_rows));
        }
        state.recent.push(&new_rows);
        let file_id = load.file_id();
        load.append_new_votes(as_votes_batch(&new_rows, file_id))?;
    }
    if let Some(staged) = staged.filter(|b| b.num_rows() > 0) {
        fold_staged(load, state, &staged)?;
    }
    Ok(())
}

/// The Ids a file has shown so far, as one bit per Id modulo 2^28 (32 MiB, allocated zeroed
/// so that only the pages of the Ids seen are ever touched). Exact for a file whose Ids span
/// fewer than 2^28 values, as real exports do; beyond that, two Ids may share a bit, which
/// only costs a staged row. Consecutive Ids touch consecutive bits, so a sorted file stays in
/// cache.
pub(crate) struct SeenIds {
    pub(crate) words: Vec<u64>,
}

impl SeenIds {
    const WORDS: usize = 1 << 22;

    pub(crate) fn new() -> Self {
        SeenIds {
            words: vec![0; Self::WORDS],
        }
    }

    /// Marks `id` as seen; returns whether it (or an Id sharing its bit) was seen before.
    pub(crate) fn insert(&mut self, id: i64) -> bool {
        let bit = id as u64;
        let word = &mut self.words[(bit >> 6) as usize & (Self::WORDS - 1)];
        let mask = 1u64 << (bit & 63);
        let seen = *word & mask != 0;
        *word |= mask;
        seen
    }
}

/// Staged rows held back before they are appended, at most this many distinct ones.
pub(crate) const FOLD_ROWS: usize = 64 * 1024;

/// Staged rows waiting to be appended, exact repeats folded into their first copy: a file of
/// one row repeated millions of times stages one row with a count, not millions of rows.
#[derive(Default)]
pub(crate) struct Fold {
    /// Where each distinct row is in `rows`.
    pub(crate) index: HashMap<Vote, usize>,
    /// (position of the first copy, the row, how many copies).
    pub(crate) rows: Vec<(i64, Vote, i64)>,
}

pub(crate) fn fold_staged(
    load: &mut impl RowSink,
    state: &mut StageState,
    staged: &RecordBatch,
) -> Result<(), WarehouseError> {
    let max_id_before = load.max_id_before();
    for (pos, vote) in staged_rows(staged) {
        if vote.id > max_id_before {
            if let Some(winner) = state.recent.find(vote.id) {
                let r = &mut state.resolved;
                match winner == vote {
                    true => r.duplicates += 1,
                    false => r.conflicting += 1,
                }
                continue;
            }
        }
        let fold = &mut state.fold;
        match fold.index.get(&vote) {
            Some(&k) => fold.rows[k].2 += 1,
            None => {
                fold.index.insert(vote, fold.rows.len());
                fold.rows.push((pos, vote, 1));
                if fold.rows.len() >= FOLD_ROWS {
                    flush_fold(load, state)?;
                }
            }
        }
    }
    Ok(())
}

/// Appends the held-back staged rows (columns as in `sql/stage.sql`).
pub(crate) fn flush_fold(
    load: &mut impl RowSink,
    state: &mut StageState,
) -> Result<(), WarehouseError> {
    let fold = std::mem::take(&mut state.fold);
    if fold.rows.is_empty() {
        return Ok(());
    }
    load.append_staged(staged_batch(fold.rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote_line(id: i64, post: i64) -> String {
        format!(
            r#"{{"Id":"{id}","PostId":"{post}","VoteTypeId":"2","CreationDate":"2022-01-03T00:00:00"}}"#
        )
    }

    /// Routes `lines` as a load into an empty warehouse would, keeping nothing; returns what
    /// the routing learned.
    fn route_lines(lines: &[String]) -> (StageState, Discard) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.jsonl");
        std::fs::write(&path, lines.join("\n")).unwrap();
        let opts = IngestOptions::new(crate::config::IngestConfig::default());
        let mut sink = Discard::default();
        let mut state = StageState::new(0, false);
        let source = Source::open(&path, false).unwrap();
        read_and_stage(source, &opts, &mut sink, &mut state)
            .unwrap()
            .unwrap();
        (state, sink)
    }

    /// A repeat of one of the last rows that went straight in is counted on the spot (a
    /// duplicate when equal, else conflicting) and never staged; a repeat of an older row,
    /// is staged for the commit.
    #[test]
    fn repeats_of_recent_direct_rows_are_resolved_while_routing() {
        let n = RECENT_ROWS as i64 + 50_000;
        let mut lines: Vec<String> = (1..=n).map(|id| vote_line(1_000 + id, id)).collect();
        lines.push(vote_line(1_000 + n - 3, n - 3)); // recent, the same: a duplicate
        lines.push(vote_line(1_000 + n - 2, 7)); // recent, other values: conflicting
        lines.push(vote_line(1_000 + n - 2, n - 2)); // recent, the same as the winner
        lines.push(vote_line(1_001, 1)); // the first row: long gone from the recent ones
        lines.push(vote_line(500, 1)); // a new Id out of order: straight in
        lines.push(vote_line(1_000 + n - 1, n - 1)); // after it, still found
        let (state, sink) = route_lines(&lines);
        assert_eq!(
            state.resolved,
            crate::warehouse::Resolved {
                duplicates: 3,
                conflicting: 1
            }
        );
        let staged: Vec<i64> = state.fold.rows.iter().map(|(_, v, _)| v.id).collect();
        assert_eq!(staged, vec![1_001]);
        // The n rows and Id 500 went straight in; the far repeat waits in the fold.
        assert_eq!(sink.rows, n as u64 + 1);
        assert_eq!(state.tally.counts.lines, n as u64 + 6);
    }

    #[test]
    fn days_become_the_weeks_of_weekly_votes() {
        let day = crate::datasets::votes::MICROS_PER_DAY;
        // 2024-01-01 was a Monday (week 1); 2023-12-31 a Sunday (week 52 of 2023).
        let jan_1 = 19_723 * day;
        let mut days = DayCounts::default();
        days.add(&[
            jan_1,
            jan_1 + 5,
            jan_1 - 1,
            jan_1 + 6 * day,
            jan_1,
            jan_1 + 7 * day,
        ]);
        assert_eq!(
            days.weeks(),
            vec![(2023, 52, 1), (2024, 1, 4), (2024, 2, 1)]
        );
    }

    /// The limit reads, validates and routes like a load, keeping nothing: every record
    /// counted, every valid row routed (straight in, or staged when its Id was seen before).
    #[test]
    fn read_only_counts_and_routes_like_a_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.jsonl");
        let vote = |id: u32| {
            format!(
                r#"{{"Id":"{id}","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-03T00:00:00"}}"#
            )
        };
        let body = [
            vote(3),
            vote(1),
            "not json".into(),
            vote(1),
            String::new(),
            vote(2),
        ];
        std::fs::write(&path, body.join("\n")).unwrap();
        let opts = IngestOptions::new(crate::config::IngestConfig::default());
        let (counts, rows) = read_only(&path, &opts).unwrap();
        assert_eq!((counts.lines, counts.blank, counts.rejected), (6, 1, 1));
        // Ids 3, 1 and 2 go straight in; the second 1 is staged for the dedupe.
        assert_eq!(rows, 4);
    }
}
