//! A posts file's part of its load: the staged versions as rows, and the commit that resolves
//! them against the file and the table (`posts_resolve.sql`: new, the same, newer →
//! `posts_history`, older).

use super::*;
use crate::datasets::posts::Post;

const POSTS_RESOLVE_SQL: &str = include_str!("sql/posts_resolve.sql");
const POSTS_COUNTS_SQL: &str = include_str!("sql/posts_counts.sql");

/// A staged post as the row of `temp.vw_posts_stage`: its position, then its fields.
pub(super) fn post_values(pos: u64, post: &Post) -> Vec<duckdb::types::Value> {
    use crate::datasets::posts::{Kind, Value as V, FIELDS};
    use duckdb::types::{TimeUnit, Value};
    let mut row = Vec::with_capacity(FIELDS.len() + 1);
    row.push(Value::BigInt(pos as i64));
    for (f, v) in FIELDS.iter().zip(&post.values) {
        row.push(match (v, f.kind) {
            (None, _) => Value::Null,
            (Some(V::Text(s)), _) => Value::Text(s.clone()),
            (Some(V::Int(t)), Kind::Date) => Value::Timestamp(TimeUnit::Microsecond, *t),
            (Some(V::Int(n)), Kind::Type) => Value::SmallInt(*n as i16),
            (Some(V::Int(n)), Kind::Signed | Kind::Count) => Value::Int(*n as i32),
            (Some(V::Int(n)), _) => Value::BigInt(*n),
        });
    }
    row
}

/// The end of a posts file that is loaded: each Id's version resolved against the file and
/// the table (new, the same, newer, older), replaced versions kept in `posts_history`, the
/// per-post weekly counts given the votes of the new posts. Returns the counts.
pub(super) fn commit_posts(
    conn: &Connection,
    file_id: i64,
    mut counts: Counts,
) -> duckdb::Result<Counts> {
    use crate::datasets::posts::FIELDS;
    let same = |a: &str, b: &str| {
        FIELDS
            .iter()
            .map(|f| format!("{a}.{c} IS NOT DISTINCT FROM {b}.{c}", c = f.column))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let file = file_id.to_string();
    conn.execute_batch(&render(
        POSTS_RESOLVE_SQL,
        &[
            ("file_id", &file),
            ("same_in_file", &same("s", "w")),
            ("same_as_current", &same("w", "p")),
        ],
    ))?;
    let (new, updated, same_rows, older, copies, others): (i64, i64, i64, i64, i64, i64) = conn
        .query_row(POSTS_COUNTS_SQL, [], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
    counts.inserted = new as u64;
    counts.updated = updated as u64;
    counts.already_in_warehouse = same_rows as u64;
    counts.conflicting = (older + others) as u64;
    counts.duplicates_in_file = copies as u64;
    if new > 0 {
        let weeks = weekly::Delta::begin(conn)?;
        weeks.add_new_posts()?;
        weeks.apply()?;
    }
    Ok(counts)
}
