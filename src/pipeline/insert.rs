//! A votes file into a DuckDB file warehouse on every core. The routing of `route` runs on a
//! thread of its own (the router); the caller's thread, which owns the load's transaction,
//! runs what the router asks for, in order:
//!
//! - a segment: `INSERT INTO votes SELECT * FROM vw_batches(..)` reading the rows that are
//!   new for sure as the router sends them, on every DuckDB thread
//!   ([`crate::warehouse::FileLoad::insert_stream`]), until the router ends the segment;
//! - staged rows and rejects, appended between segments (one connection runs one statement
//!   at a time, so the router ends the segment first).
//!
//! A file of new Ids is one segment. Staged rows come in folds of up to `route::FOLD_ROWS`
//! distinct rows and rejects are held back up to [`REJECTS_HELD`], so a file with repeats or
//! rejects ends a segment only every so many of them. Memory stays bounded: the channels are.

use crossbeam_channel::{bounded, Receiver, Sender};
use duckdb::arrow::record_batch::RecordBatch;

use super::load::IngestOptions;
use super::read::Source;
use super::route::{flush_fold, read_and_stage, ReadResult, RowSink, StageState};
use crate::model::RejectRow;
use crate::warehouse::{BatchSender, FileLoad, WarehouseError};

/// Rejects held back by the router before it ends a segment to have them appended.
pub(crate) const REJECTS_HELD: usize = 4096;

/// What the router asks the transaction's thread to do, in order.
enum Step {
    /// Insert the stream of new rows until its sender is dropped.
    Segment(Receiver<RecordBatch>),
    Staged(RecordBatch),
    Rejects(Vec<RejectRow>),
}

/// The router's end: new rows to the open segment, the rest as steps.
struct Router {
    steps: Sender<Step>,
    segment: Option<BatchSender>,
    rejects: Vec<RejectRow>,
    max_id_before: i64,
    file_id: i64,
    path: std::path::PathBuf,
}

impl Router {
    /// The transaction's thread has stopped (its own error is the one reported).
    fn stopped(&self) -> WarehouseError {
        WarehouseError::message(&self.path, "cannot append votes", "the load stopped")
    }

    fn step(&mut self, step: Step) -> Result<(), WarehouseError> {
        self.segment = None;
        self.steps.send(step).map_err(|_| self.stopped())
    }

    /// Ends the open segment and has the held-back rejects appended.
    fn finish(&mut self) -> Result<(), WarehouseError> {
        self.segment = None;
        if !self.rejects.is_empty() {
            let rows = std::mem::take(&mut self.rejects);
            self.step(Step::Rejects(rows))?;
        }
        Ok(())
    }
}

impl RowSink for Router {
    fn max_id_before(&self) -> i64 {
        self.max_id_before
    }
    fn file_id(&self) -> i64 {
        self.file_id
    }
    fn append_new_votes(&mut self, batch: RecordBatch) -> Result<(), WarehouseError> {
        if self.segment.is_none() {
            let (tx, rx) = crate::warehouse::batch_channel();
            self.steps
                .send(Step::Segment(rx))
                .map_err(|_| self.stopped())?;
            self.segment = Some(tx);
        }
        let sent = self.segment.as_ref().is_some_and(|s| s.send(&batch));
        if sent {
            Ok(())
        } else {
            Err(self.stopped())
        }
    }
    fn append_staged(&mut self, batch: RecordBatch) -> Result<(), WarehouseError> {
        self.step(Step::Staged(batch))
    }
    fn append_rejects(&mut self, rows: &[RejectRow]) -> Result<(), WarehouseError> {
        self.rejects.extend_from_slice(rows);
        if self.rejects.len() >= REJECTS_HELD {
            let rows = std::mem::take(&mut self.rejects);
            self.step(Step::Rejects(rows))?;
        }
        Ok(())
    }
}

/// Reads, routes and writes a votes file into the open load of a DuckDB file (not a lake:
/// there, [`read_and_stage`] writes through the load's Parquet stream). The outer error is
/// the warehouse's; the inner one a read error of the file. The staged rows are all
/// appended when it returns.
pub(crate) fn read_and_insert(
    source: Source,
    opts: &IngestOptions,
    load: &mut FileLoad<'_>,
    state: &mut StageState,
) -> Result<ReadResult, WarehouseError> {
    // One step waits while one runs: the router parses ahead by at most one staged fold.
    let (steps, step_rx) = bounded::<Step>(1);
    let mut router = Router {
        steps,
        segment: None,
        rejects: Vec::new(),
        max_id_before: load.max_id_before,
        file_id: load.file_id,
        path: load.warehouse_path().to_path_buf(),
    };
    std::thread::scope(|scope| {
        let routed = std::thread::Builder::new()
            .name("votewatch-router".into())
            .spawn_scoped(scope, move || {
                read_and_stage(source, opts, &mut router, state).and_then(|read| {
                    if read.is_ok() {
                        flush_fold(&mut router, state)?;
                        router.finish()?;
                    }
                    Ok(read)
                })
            });
        let routed = match routed {
            Ok(handle) => handle,
            Err(e) => {
                return Err(WarehouseError::message(
                    load.warehouse_path(),
                    "cannot append votes",
                    &format!("cannot start the router thread: {e}"),
                ))
            }
        };
        let mut failure = None;
        for step in &step_rx {
            let done = match step {
                Step::Segment(rx) => load.insert_stream(rx),
                Step::Staged(batch) => load.append_staged(batch),
                Step::Rejects(rows) => load.append_rejects(&rows),
            };
            if let Err(e) = done {
                failure = Some(e);
                break;
            }
        }
        // Steps not taken are dropped with their streams: the router's next send fails.
        drop(step_rx);
        let joined = routed.join();
        if let Some(e) = failure {
            return Err(e);
        }
        joined.map_err(|_| {
            WarehouseError::message(
                load.warehouse_path(),
                "cannot append votes",
                "votewatch's router thread failed",
            )
        })?
    })
}
