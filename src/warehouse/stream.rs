//! Writing a load's new rows to one Parquet file while the file is still being read, for
//! DuckLake: a table function (`vw_batches(token)`) hands DuckDB the Arrow batches sent on a
//! bounded channel, and a second connection of the same DuckDB instance runs
//! `COPY (SELECT * FROM vw_batches(token)) TO '<file>.parquet'` on a thread of its own. The
//! rows never wait in a temporary table, and DuckDB encodes Parquet while the parsers work.
//! Under the write lock the file is then added to the lake (`ducklake_add_data_files`).

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

/// Batches in flight between the router and DuckDB: bounded, so a slow writer holds the
/// reader back instead of letting memory grow.
const IN_FLIGHT: usize = 4;

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

/// Receivers waiting for their COPY to start, by token.
fn waiting() -> &'static Mutex<HashMap<i64, Receiver<RecordBatch>>> {
    static WAITING: OnceLock<Mutex<HashMap<i64, Receiver<RecordBatch>>>> = OnceLock::new();
    WAITING.get_or_init(|| Mutex::new(HashMap::new()))
}

fn next_token() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Makes `vw_batches` known to the DuckDB instance of `conn` (once per instance).
pub fn register(conn: &Connection) -> duckdb::Result<()> {
    conn.register_table_function::<Batches>(FUNCTION)
}

struct Batches;

struct BindData {
    token: i64,
}

/// Rows per output chunk: DuckDB's vector size (`STANDARD_VECTOR_SIZE` of the bundled build).
const VECTOR_SIZE: usize = 2048;

#[derive(Default)]
struct State {
    /// The stream's receiver, taken from the registry at the first call.
    rx: Option<Receiver<RecordBatch>>,
    /// The batch being emitted and how many of its rows were emitted.
    current: Option<(RecordBatch, usize)>,
}

struct InitData {
    state: Mutex<State>,
}

impl VTab for Batches {
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

    fn init(_: &InitInfo) -> Result<InitData, Box<dyn std::error::Error>> {
        Ok(InitData {
            state: Mutex::new(State::default()),
        })
    }

    fn func(
        func: &TableFunctionInfo<Self>,
        output: &mut DataChunkHandle,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let mut state = func
            .get_init_data()
            .state
            .lock()
            .map_err(|_| "stream state poisoned")?;
        if state.rx.is_none() {
            let token = func.get_bind_data().token;
            let rx = waiting()
                .lock()
                .map_err(|_| "stream registry poisoned")?
                .remove(&token)
                .ok_or("no stream of batches for this token")?;
            state.rx = Some(rx);
        }
        loop {
            if let Some((batch, done)) = state.current.as_mut() {
                if *done < batch.num_rows() {
                    let n = (batch.num_rows() - *done).min(VECTOR_SIZE);
                    record_batch_to_duckdb_data_chunk(&batch.slice(*done, n), output)?;
                    *done += n;
                    return Ok(());
                }
            }
            let next = state.rx.as_ref().map(|rx| rx.recv());
            match next {
                Some(Ok(batch)) => state.current = Some((batch, 0)),
                // The sender is gone: the load's rows are all here.
                _ => {
                    output.set_len(0);
                    return Ok(());
                }
            }
        }
    }

    fn parameters() -> Option<Vec<LogicalTypeHandle>> {
        Some(vec![LogicalTypeHandle::from(LogicalTypeId::Bigint)])
    }
}

/// One Parquet file being written from batches of votes.
pub struct ParquetStream {
    tx: Option<Sender<RecordBatch>>,
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
        let (tx, rx) = bounded(IN_FLIGHT);
        let token = next_token();
        waiting()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token, rx);
        let sql =
            format!("COPY (SELECT * FROM {FUNCTION}({token})) TO {path_literal} (FORMAT {format})");
        let handle = std::thread::Builder::new()
            .name("votewatch-parquet".into())
            .spawn(move || {
                let copied = writer.execute_batch(&sql);
                // A COPY that failed before it read the stream (the file cannot be created)
                // leaves the receiver here: dropping it makes the sender's next send fail
                // instead of waiting forever on a full channel.
                waiting()
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&token);
                copied
            })
            .map_err(|e| {
                waiting()
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&token);
                super::message_error(format!("cannot start the Parquet writer: {e}"))
            })?;
        Ok(ParquetStream {
            tx: Some(tx),
            writer: Some(handle),
        })
    }

    /// Hands a batch to the writer; false when the writer has stopped (its error comes from
    /// [`ParquetStream::finish`]).
    pub fn send(&self, batch: RecordBatch) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok())
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
