//! Streams of Arrow batches into DuckDB statements, through a table function
//! (`vw_batches(token)`) that hands DuckDB the batches sent on a bounded channel.
//!
//! - On a DuckDB file, a load's new rows reach `votes` through
//!   `INSERT INTO blog_analysis.votes SELECT * FROM vw_batches(token)` on the connection that
//!   owns the load's transaction ([`insert_source`]): the function may be scanned by every
//!   DuckDB thread at once, so DuckDB compresses and writes row groups on every core while
//!   the parsers work.
//! - For DuckLake, a second connection of the same DuckDB instance runs
//!   `COPY (SELECT * FROM vw_batches(token)) TO '<file>.parquet'` on a thread of its own
//!   ([`ParquetStream`]); under the write lock the file is then added to the lake
//!   (`ducklake_add_data_files`).
//!
//! The sender ([`BatchSender`]) cuts every batch into slices of at most one DuckDB vector, so
//! that each call of the function, on whichever thread, takes one slice from the channel and
//! emits it whole: the function keeps no position between calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::core::{DataChunkHandle, LogicalTypeHandle, LogicalTypeId};
use duckdb::vtab::{
    record_batch_to_duckdb_data_chunk, BindInfo, InitInfo, TableFunctionInfo, VTab,
};
use duckdb::Connection;

/// The table function's name.
const FUNCTION: &str = "vw_batches";

/// Slices in flight between the sender and DuckDB: bounded, so a slow writer holds the
/// reader back instead of letting memory grow (a slice holds its parsed chunk alive).
const IN_FLIGHT: usize = 64;

/// The columns of `blog_analysis.votes`, in order: what every batch carries.
const COLUMNS: [(&str, LogicalTypeId); 7] = [
    ("id", LogicalTypeId::Bigint),
    ("post_id", LogicalTypeId::Bigint),
    ("vote_type_id", LogicalTypeId::Smallint),
    ("user_id", LogicalTypeId::Bigint),
    ("bounty_amount", LogicalTypeId::Integer),
    ("creation_date", LogicalTypeId::Timestamp),
    ("file_id", LogicalTypeId::Bigint),
];

/// Receivers waiting for their statement to start, by token.
fn waiting() -> &'static Mutex<HashMap<i64, Receiver<RecordBatch>>> {
    static WAITING: OnceLock<Mutex<HashMap<i64, Receiver<RecordBatch>>>> = OnceLock::new();
    WAITING.get_or_init(|| Mutex::new(HashMap::new()))
}

fn next_token() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The same function, scanned by every DuckDB thread at once.
const PARALLEL_FUNCTION: &str = "vw_batches_parallel";

/// Makes `vw_batches` and `vw_batches_parallel` known to the DuckDB instance of `conn` (once
/// per instance).
pub fn register(conn: &Connection) -> duckdb::Result<()> {
    conn.register_table_function::<Batches<false>>(FUNCTION)?;
    conn.register_table_function::<Batches<true>>(PARALLEL_FUNCTION)
}

/// The sending end of a stream of votes batches.
#[derive(Clone)]
pub struct BatchSender(Sender<RecordBatch>);

impl BatchSender {
    /// Sends `batch` as slices of at most one vector (zero-copy); false when the statement
    /// reading the stream has stopped.
    pub fn send(&self, batch: &RecordBatch) -> bool {
        let mut at = 0;
        while at < batch.num_rows() {
            let n = (batch.num_rows() - at).min(VECTOR_SIZE);
            if self.0.send(batch.slice(at, n)).is_err() {
                return false;
            }
            at += n;
        }
        true
    }
}

/// A new stream: the sender, and the receiver to hand to [`Registered::new`].
pub fn channel() -> (BatchSender, Receiver<RecordBatch>) {
    let (tx, rx) = bounded(IN_FLIGHT);
    (BatchSender(tx), rx)
}

/// A receiver readable as `vw_batches(token)` until the statement starts reading it, or the
/// guard is dropped (then a sender blocked on the full channel is released).
pub struct Registered {
    token: i64,
    parallel: bool,
}

impl Registered {
    /// With `parallel`, the stream is read by every DuckDB thread at once (rows in no
    /// particular order), else by one.
    pub fn new(rx: Receiver<RecordBatch>, parallel: bool) -> Registered {
        let token = next_token();
        waiting()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token, rx);
        Registered { token, parallel }
    }

    /// The table function call that reads this stream, for a statement's FROM.
    pub fn source(&self) -> String {
        let function = if self.parallel {
            PARALLEL_FUNCTION
        } else {
            FUNCTION
        };
        format!("{function}({})", self.token)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        waiting()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.token);
    }
}

/// The table function; `PARALLEL`: scanned by every DuckDB thread at once.
struct Batches<const PARALLEL: bool>;

struct BindData {
    token: i64,
}

/// Rows per output chunk: DuckDB's vector size (`STANDARD_VECTOR_SIZE` of the bundled build).
const VECTOR_SIZE: usize = 2048;

struct InitData {
    /// The stream's receiver, taken from the registry at the first call (on whichever
    /// thread); every scanning thread takes its next slice from it.
    rx: OnceLock<Option<Receiver<RecordBatch>>>,
    /// Slices emitted (for the `stream_error` failpoint).
    slices: std::sync::atomic::AtomicU64,
}

impl<const PARALLEL: bool> VTab for Batches<PARALLEL> {
    type BindData = BindData;
    type InitData = InitData;

    fn bind(bind: &BindInfo) -> Result<BindData, Box<dyn std::error::Error>> {
        for (name, ty) in COLUMNS {
            bind.add_result_column(name, LogicalTypeHandle::from(ty));
        }
        Ok(BindData {
            token: bind.get_parameter(0).to_int64(),
        })
    }

    fn init(init: &InitInfo) -> Result<InitData, Box<dyn std::error::Error>> {
        if PARALLEL {
            // DuckDB caps this at its `threads`.
            init.set_max_threads(u64::from(u16::MAX));
        }
        Ok(InitData {
            rx: OnceLock::new(),
            slices: Default::default(),
        })
    }

    fn func(
        func: &TableFunctionInfo<Self>,
        output: &mut DataChunkHandle,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let token = func.get_bind_data().token;
        let init = func.get_init_data();
        if crate::testing::failpoint::fails("stream_error")
            && init.slices.fetch_add(1, Ordering::Relaxed) >= 16
        {
            return Err("injected by the stream_error failpoint".into());
        }
        let rx = init.rx.get_or_init(|| {
            waiting()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&token)
        });
        let rx = rx.as_ref().ok_or("no stream of batches for this token")?;
        match rx.recv() {
            // Slices are at most one vector: the sender cut them so.
            Ok(slice) => record_batch_to_duckdb_data_chunk(&slice, output),
            // The sender is gone: the stream's rows are all here.
            Err(_) => {
                output.set_len(0);
                Ok(())
            }
        }
    }

    fn parameters() -> Option<Vec<LogicalTypeHandle>> {
        Some(vec![LogicalTypeHandle::from(LogicalTypeId::Bigint)])
    }
}

/// One Parquet file being written from batches of votes.
pub struct ParquetStream {
    tx: Option<BatchSender>,
    writer: Option<JoinHandle<duckdb::Result<()>>>,
}

impl ParquetStream {
    /// Starts writing `path` (a SQL literal, quoted by the caller) on a new connection of the
    /// DuckDB instance of `conn`.
    pub fn start(conn: &Connection, path_literal: &str) -> duckdb::Result<ParquetStream> {
        ParquetStream::start_as(conn, path_literal, "parquet")
    }

    /// The same in another `COPY` format (the unit tests use CSV: it needs no extension).
    fn start_as(
        conn: &Connection,
        path_literal: &str,
        format: &str,
    ) -> duckdb::Result<ParquetStream> {
        let writer = conn.try_clone()?;
        let (tx, rx) = channel();
        // One scanning thread: a parallel scan measured no faster into one Parquet file.
        let stream = Registered::new(rx, false);
        let sql = format!(
            "COPY (SELECT * FROM {}) TO {path_literal} (FORMAT {format})",
            stream.source()
        );
        let handle = std::thread::Builder::new()
            .name("votewatch-parquet".into())
            .spawn(move || {
                // A COPY that failed before it read the stream (the file cannot be created)
                // leaves the receiver registered: dropping the guard makes the sender's next
                // send fail instead of waiting forever on a full channel.
                let _stream = stream;
                writer.execute_batch(&sql)
            })
            .map_err(|e| super::message_error(format!("cannot start the Parquet writer: {e}")))?;
        Ok(ParquetStream {
            tx: Some(tx),
            writer: Some(handle),
        })
    }

    /// Hands a batch to the writer; false when the writer has stopped (its error comes from
    /// [`ParquetStream::finish`]).
    pub fn send(&self, batch: RecordBatch) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(&batch))
    }

    /// Ends the stream and waits until the file is written.
    pub fn finish(mut self) -> duckdb::Result<()> {
        self.end()
    }

    fn end(&mut self) -> duckdb::Result<()> {
        self.tx.take();
        match self.writer.take() {
            Some(h) => h.join().unwrap_or_else(|_| {
                Err(super::message_error("the Parquet writer panicked".into()))
            }),
            None => Ok(()),
        }
    }
}

impl Drop for ParquetStream {
    fn drop(&mut self) {
        let _ = self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duckdb::arrow::array::{ArrayRef, Int64Array};
    use std::sync::Arc;

    /// `n` votes from Id `first`, every third without a user, as the loader hands them over
    /// (the dataset's own builders and table columns, file id 9).
    fn batch(first: i64, n: usize) -> RecordBatch {
        use crate::datasets::votes::arrow::{as_votes_batch, parsed_schema, VoteBuilders};
        use crate::datasets::votes::Vote;
        let mut votes = VoteBuilders::with_capacity(n);
        for id in first..first + n as i64 {
            votes.append(&Vote {
                id,
                post_id: id % 7,
                vote_type_id: 2,
                user_id: (id % 3 != 0).then_some(id * 10),
                bounty_amount: None,
                creation_date: 1_600_000_000_000_000 + id * 1_000_000,
            });
        }
        let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(
            (0..n as i64).map(|i| first + i),
        ))];
        columns.extend(votes.finish());
        as_votes_batch(&RecordBatch::try_new(parsed_schema(), columns).unwrap(), 9)
    }

    #[test]
    fn every_row_of_every_batch_reaches_the_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        let literal = format!("'{}'", path.display());
        let stream = ParquetStream::start_as(&conn, &literal, "csv").unwrap();
        // Batches larger and smaller than a vector, and an empty one.
        for (first, n) in [(1, 5000), (5001, 7), (5008, 0), (5008, 2048)] {
            assert!(stream.send(batch(first, n)));
        }
        stream.finish().unwrap();
        let (rows, distinct, sum, users, files): (i64, i64, i64, i64, i64) = conn
            .query_row(
                &format!(
                    "SELECT count(*), count(DISTINCT id), sum(id), count(user_id), \
                     count(DISTINCT file_id) FROM read_csv({literal})"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        let n = 5000 + 7 + 2048;
        assert_eq!((rows, distinct), (n, n));
        assert_eq!(sum, n * (n + 1) / 2);
        assert_eq!(users, (1..=n).filter(|i| i % 3 != 0).count() as i64);
        assert_eq!(files, 1);
    }

    #[test]
    fn a_writer_that_cannot_write_stops_the_sender_with_its_error() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        let stream =
            ParquetStream::start_as(&conn, "'/nonexistent-folder/out.csv'", "csv").unwrap();
        // The writer fails; sends fail once it has (within the channel's capacity).
        let sent = (0..=IN_FLIGHT * 4).all(|k| stream.send(batch(k as i64 * 10 + 1, 10)));
        assert!(!sent, "every batch was taken by a writer that cannot write");
        let error = stream.finish().unwrap_err().to_string();
        assert!(error.contains("nonexistent-folder"), "{error}");
    }
}
