//! The votes as Arrow: the columns the parsers build, the staging table's and the table's,
//! and the parser of a chunk of records into a batch of votes and a list of rejects.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use duckdb::arrow::array::{
    Array, ArrayRef, Int16Array, Int16Builder, Int32Array, Int32Builder, Int64Array, Int64Builder,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use duckdb::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use duckdb::arrow::record_batch::RecordBatch;

use crate::config::IngestConfig;
use crate::datasets::votes::{parse_vote, Vote};
use crate::datasets::{each_record, RecordTally};
use crate::pipeline::split::Chunk;

/// A chunk after validation: its votes as one Arrow batch, plus what else its records were.
pub(crate) struct ParsedChunk {
    pub(crate) votes: Option<RecordBatch>,
    pub(crate) records: RecordTally,
}

/// The columns of `temp.vw_stage`: the parsed columns plus `copies`.
pub(crate) fn staged_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields: Vec<Field> = parsed_schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new("copies", DataType::Int64, false));
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

/// Arrow builders for the six vote columns, in the order of `votes`.
pub(crate) struct VoteBuilders {
    pub(crate) id: Int64Builder,
    pub(crate) post_id: Int64Builder,
    pub(crate) vote_type_id: Int16Builder,
    pub(crate) user_id: Int64Builder,
    pub(crate) bounty: Int32Builder,
    pub(crate) created: TimestampMicrosecondBuilder,
}

impl VoteBuilders {
    pub(crate) fn with_capacity(n: usize) -> Self {
        VoteBuilders {
            id: Int64Builder::with_capacity(n),
            post_id: Int64Builder::with_capacity(n),
            vote_type_id: Int16Builder::with_capacity(n),
            user_id: Int64Builder::with_capacity(n),
            bounty: Int32Builder::with_capacity(n),
            created: TimestampMicrosecondBuilder::with_capacity(n),
        }
    }

    pub(crate) fn append(&mut self, v: &Vote) {
        self.id.append_value(v.id);
        self.post_id.append_value(v.post_id);
        self.vote_type_id.append_value(v.vote_type_id);
        self.user_id.append_option(v.user_id);
        self.bounty.append_option(v.bounty_amount);
        self.created.append_value(v.creation_date);
    }

    pub(crate) fn len(&self) -> usize {
        self.id.values_slice().len()
    }

    pub(crate) fn finish(mut self) -> [ArrayRef; 6] {
        [
            Arc::new(self.id.finish()),
            Arc::new(self.post_id.finish()),
            Arc::new(self.vote_type_id.finish()),
            Arc::new(self.user_id.finish()),
            Arc::new(self.bounty.finish()),
            Arc::new(self.created.finish()),
        ]
    }
}

/// The columns of `blog_analysis.votes`: the parsed columns less `pos`, plus `file_id`.
fn votes_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields: Vec<Field> = parsed_schema()
            .fields()
            .iter()
            .skip(1)
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new("file_id", DataType::Int64, false));
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

/// A parsed batch as rows of `blog_analysis.votes`, all of ledger row `file_id`.
pub(crate) fn as_votes_batch(batch: &RecordBatch, file_id: i64) -> RecordBatch {
    let mut columns = batch.columns()[1..].to_vec();
    columns.push(Arc::new(Int64Array::from_value(file_id, batch.num_rows())));
    RecordBatch::try_new(votes_schema(), columns).expect("columns match the votes table")
}

/// Votes, each with its ledger row, as rows of `blog_analysis.votes`.
pub(crate) fn votes_batch(rows: &[(Vote, i64)]) -> RecordBatch {
    let mut b = VoteBuilders::with_capacity(rows.len());
    let mut file_ids = Int64Builder::with_capacity(rows.len());
    for (v, file_id) in rows {
        b.append(v);
        file_ids.append_value(*file_id);
    }
    let mut columns = b.finish().to_vec();
    columns.push(Arc::new(file_ids.finish()));
    RecordBatch::try_new(votes_schema(), columns).expect("columns match the votes table")
}

/// The columns of `temp.vw_stage`, as the parsers build them.
pub(crate) fn parsed_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            // The record's position in the file: first occurrence wins by it.
            Field::new("pos", DataType::Int64, false),
            Field::new("id", DataType::Int64, false),
            Field::new("post_id", DataType::Int64, false),
            Field::new("vote_type_id", DataType::Int16, false),
            Field::new("user_id", DataType::Int64, true),
            Field::new("bounty_amount", DataType::Int32, true),
            Field::new(
                "creation_date",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
        ]))
    });
    SCHEMA.clone()
}

/// Validates a chunk. With `keep_rejects` false, rejects are only counted: the stage thread
/// clears it once the file has stored `max_stored_rejects` and sampled its first rejects, from
/// chunks before this one (chunks are staged in file order), so nothing that would be kept is
/// lost.
pub(crate) fn parse_chunk(
    chunk: &Chunk,
    limits: &IngestConfig,
    schema: &SchemaRef,
    keep_rejects: &AtomicBool,
) -> ParsedChunk {
    let n = chunk.records.len();
    let mut pos = Int64Builder::with_capacity(n);
    let mut votes = VoteBuilders::with_capacity(n);
    let mut tally = RecordTally::default();
    each_record(
        chunk,
        limits.max_record_bytes,
        limits.reject_keep_bytes,
        keep_rejects.load(Ordering::Relaxed),
        &mut tally,
        parse_vote,
        |p, v| {
            pos.append_value(p as i64);
            votes.append(&v);
        },
    );
    let mut out = ParsedChunk {
        votes: None,
        records: tally,
    };
    if votes.len() > 0 {
        let mut columns: Vec<ArrayRef> = vec![Arc::new(pos.finish())];
        columns.extend(votes.finish());
        out.votes = Some(
            RecordBatch::try_new(schema.clone(), columns).expect("columns match the stage schema"),
        );
    }
    out
}

/// The dedupe key of a parsed batch: the Id column, which the router compares and remembers.
pub fn key_column(batch: &RecordBatch) -> &Int64Array {
    batch
        .column(1)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("column 1 is the Id")
}

/// The creation dates of a parsed batch (microseconds since 1970), for the weekly counts.
pub fn created_column(batch: &RecordBatch) -> &[i64] {
    batch
        .column(6)
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .expect("column 6 is the creation date")
        .values()
}

/// The rows of a parsed batch as (position in the file, vote), for folding exact repeats.
pub fn staged_rows(batch: &RecordBatch) -> impl Iterator<Item = (i64, Vote)> + '_ {
    let col = |i: usize| batch.column(i).as_any();
    let int64 = |i: usize| col(i).downcast_ref::<Int64Array>().expect("Int64 column");
    let (pos, id, post_id, user_id) = (int64(0), int64(1), int64(2), int64(4));
    let vote_type_id = col(3).downcast_ref::<Int16Array>().expect("Int16 column");
    let bounty = col(5).downcast_ref::<Int32Array>().expect("Int32 column");
    let created = col(6)
        .downcast_ref::<TimestampMicrosecondArray>()
        .expect("timestamp column");
    (0..batch.num_rows()).map(move |i| {
        (
            pos.value(i),
            Vote {
                id: id.value(i),
                post_id: post_id.value(i),
                vote_type_id: vote_type_id.value(i),
                user_id: user_id.is_valid(i).then(|| user_id.value(i)),
                bounty_amount: bounty.is_valid(i).then(|| bounty.value(i)),
                creation_date: created.value(i),
            },
        )
    })
}

/// The staging table's batch of folded rows: (position of the first copy, the vote, how many
/// copies), columns as in `sql/stage.sql`.
pub fn staged_batch(rows: Vec<(i64, Vote, i64)>) -> RecordBatch {
    let n = rows.len();
    let mut pos = Int64Builder::with_capacity(n);
    let mut b = VoteBuilders::with_capacity(n);
    let mut copies = Int64Builder::with_capacity(n);
    for (p, vote, c) in rows {
        pos.append_value(p);
        b.append(&vote);
        copies.append_value(c);
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(pos.finish())];
    columns.extend(b.finish());
    columns.push(Arc::new(copies.finish()));
    RecordBatch::try_new(staged_schema(), columns).expect("columns match the stage table")
}
