//! `blog_analysis.weekly_votes`: the weekly vote counts that `outlier_weeks` and the reports
//! read, changed in the same transaction as every change to `votes` by the weeks that change
//! touches — never by a scan of all of `votes` (but for building it once on a warehouse of an
//! earlier version, and `maintain --verify`).

use super::*;

const WEEKLY_CREATE_SQL: &str = include_str!("sql/weekly_create.sql");
const WEEKLY_EXISTS_SQL: &str = include_str!("sql/weekly_exists.sql");
const WEEKLY_REBUILD_SQL: &str = include_str!("sql/weekly_rebuild.sql");
const WEEKLY_DELTA_BEGIN_SQL: &str = include_str!("sql/weekly_delta_begin.sql");
const WEEKLY_DELTA_ADD_SQL: &str = include_str!("sql/weekly_delta_add.sql");
const WEEKLY_DELTA_APPLY_SQL: &str = include_str!("sql/weekly_delta_apply.sql");
const WEEKLY_VERIFY_SQL: &str = include_str!("sql/weekly_verify.sql");
const WEEKLY_POST_DELTA_BEGIN_SQL: &str = include_str!("sql/weekly_post_delta_begin.sql");
const WEEKLY_POST_DELTA_ADD_SQL: &str = include_str!("sql/weekly_post_delta_add.sql");
const WEEKLY_POST_DELTA_APPLY_SQL: &str = include_str!("sql/weekly_post_delta_apply.sql");
const POSTS_ANY_SQL: &str = include_str!("sql/posts_any.sql");

/// The rows of one load: its own votes (parameter: the ledger id).
pub(super) const LOAD_ROWS: &str = "blog_analysis.votes WHERE file_id = ?";
/// The votes a load inserted at commit (its candidates the warehouse did not hold).
pub(super) const CANDIDATE_ROWS: &str =
    "temp.vw_candidates c WHERE NOT EXISTS (SELECT 1 FROM temp.vw_present p WHERE p.id = c.id)";
/// The new votes of a group of files, gathered before they go in.
pub(super) const GROUP_ROWS: &str = "temp.vw_group_votes";
/// The votes an unload removes (kept in `temp.vw_removed` before the delete).
pub(super) const REMOVED_ROWS: &str = "temp.vw_removed";
/// The votes an unload loaded again from later files: the removed Ids, now theirs.
pub(super) const RELOADED_ROWS: &str =
    "blog_analysis.votes WHERE id IN (SELECT id FROM temp.vw_removed)";
/// The votes on the posts a posts load added (new Ids, not new versions).
pub(super) const NEW_POSTS_VOTES: &str =
    "blog_analysis.votes WHERE post_id IN (SELECT id FROM temp.vw_posts_cmp WHERE verdict = 'new')";

/// Creates `weekly_votes` when the warehouse has none (a new one, or one of an earlier
/// version: then it is built from `votes` once), in the schema's transaction. A lake's view,
/// created once, is replaced then too, so that it reads the table.
pub(super) fn ensure(conn: &Connection, lake: bool) -> duckdb::Result<()> {
    let exists: i64 = conn.query_row(WEEKLY_EXISTS_SQL, [], |r| r.get(0))?;
    if exists > 0 {
        return Ok(());
    }
    conn.execute_batch(WEEKLY_CREATE_SQL)?;
    conn.execute_batch(WEEKLY_REBUILD_SQL)?;
    if lake {
        conn.execute_batch(OUTLIER_WEEKS_SQL)?;
    }
    Ok(())
}

/// The changes of one transaction to the weekly counts (`weekly_votes`, and
/// `weekly_post_votes` for the votes on posts present): gathered with [`Delta::add`], then
/// applied to the weeks they touch.
pub(super) struct Delta<'c> {
    conn: &'c Connection,
    /// The warehouse holds posts: votes changes touch the per-post counts too (with no posts,
    /// a votes load costs no join).
    posts: bool,
}

impl<'c> Delta<'c> {
    pub(super) fn begin(conn: &'c Connection) -> duckdb::Result<Delta<'c>> {
        conn.execute_batch(WEEKLY_DELTA_BEGIN_SQL)?;
        let posts: bool = conn.query_row(POSTS_ANY_SQL, [], |r| r.get(0))?;
        if posts {
            conn.execute_batch(WEEKLY_POST_DELTA_BEGIN_SQL)?;
        }
        Ok(Delta { conn, posts })
    }

    /// The warehouse holds posts (then a votes change needs its rows for per-post counts).
    pub(super) fn has_posts(&self) -> bool {
        self.posts
    }

    /// Adds weekly counts counted outside DuckDB: (year, week, rows).
    pub(super) fn add_counts(&self, weeks: &[(i64, i32, i64)]) -> duckdb::Result<()> {
        let mut app = self
            .conn
            .appender_to_catalog_and_db("vw_week_delta", "temp", "main")?;
        for &(year, week, n) in weeks {
            app.append_row(params![year, week, n])?;
        }
        app.flush()
    }

    /// Adds the per-post weekly counts of the votes on posts a posts load added.
    pub(super) fn add_new_posts(&self) -> duckdb::Result<()> {
        if self.posts {
            self.conn.execute(&post_delta(NEW_POSTS_VOTES, "1"), [])?;
        }
        Ok(())
    }

    /// Adds (`sign` 1) or takes away (-1) the weekly counts of `rows`, one of this module's
    /// fixed relations, with its parameters.
    pub(super) fn add(
        &self,
        rows: &'static str,
        sign: i8,
        params: &[&dyn duckdb::ToSql],
    ) -> duckdb::Result<()> {
        let sign = if sign < 0 { "-1" } else { "1" };
        let sql = render(WEEKLY_DELTA_ADD_SQL, &[("rows", rows), ("sign", sign)]);
        match self.posts {
            // The relation is read once more only when there are posts.
            true => {
                self.conn.execute(&sql, params)?;
                self.conn.execute(&post_delta(rows, sign), params)?;
            }
            false => {
                self.conn.execute(&sql, params)?;
            }
        }
        Ok(())
    }

    pub(super) fn apply(self) -> duckdb::Result<()> {
        self.conn.execute_batch(WEEKLY_DELTA_APPLY_SQL)?;
        if self.posts {
            self.conn.execute_batch(WEEKLY_POST_DELTA_APPLY_SQL)?;
        }
        Ok(())
    }
}

/// The per-post delta statement of `rows` (a relation with or without its own WHERE).
fn post_delta(rows: &str, sign: &str) -> String {
    let and = if rows.contains(" WHERE ") {
        "AND"
    } else {
        "WHERE"
    };
    render(
        WEEKLY_POST_DELTA_ADD_SQL,
        &[("rows", rows), ("sign", sign), ("and", and)],
    )
}

/// A week where `weekly_votes` and a recomputation from `votes` differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekDifference {
    pub year: i64,
    pub week: i32,
    pub kept: i64,
    pub recomputed: i64,
}

impl Warehouse {
    /// Recomputes the weekly counts from `votes` and returns the weeks where `weekly_votes`
    /// differs; with `repair`, replaces the table by the recomputation in a write transaction
    /// when it does.
    pub fn verify_weekly(&self, repair: bool) -> Result<Vec<WeekDifference>> {
        let read = || -> duckdb::Result<Vec<WeekDifference>> {
            let mut stmt = self.conn.prepare(WEEKLY_VERIFY_SQL)?;
            let rows = stmt.query_map([], |r| {
                Ok(WeekDifference {
                    year: r.get(0)?,
                    week: r.get(1)?,
                    kept: r.get(2)?,
                    recomputed: r.get(3)?,
                })
            })?;
            rows.collect()
        };
        let differences = read().map_err(|e| self.err("cannot verify weekly_votes", e))?;
        if repair && !differences.is_empty() {
            self.write("cannot repair weekly_votes", |c| {
                c.execute_batch(WEEKLY_REBUILD_SQL)
            })?;
        }
        Ok(differences)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The weeks the loader counts outside DuckDB are the weeks of `weekly_delta_add.sql`
    /// for every day of years 1 to 9999, at the first and the last microsecond of the day.
    #[test]
    fn weeks_counted_while_routing_are_the_sql_weeks() {
        let conn = Connection::open_in_memory().unwrap();
        let (first, last) = (-719_162i64, 2_932_896i64);
        // The statement the loader's counts stand in for.
        let week = "year(creation_date), CAST(strftime(creation_date, '%W') AS INTEGER)";
        assert!(WEEKLY_DELTA_ADD_SQL.contains(week));
        conn.execute_batch(&format!(
            "CREATE TEMP TABLE days AS SELECT d, make_timestamp(d * 86400000000 + e) AS creation_date \
             FROM range({first}, {} ) r(d), (VALUES (0), (86399999999)) t(e)",
            last + 1
        ))
        .unwrap();
        let mut stmt = conn
            .prepare(&format!("SELECT d, {week} FROM temp.days"))
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i32>(2)?,
                ))
            })
            .unwrap();
        let mut n = 0;
        for row in rows {
            let (day, year, week) = row.unwrap();
            assert_eq!(
                crate::datasets::votes::week_of_day(day),
                (year, week),
                "day {day}"
            );
            n += 1;
        }
        assert_eq!(n, 2 * (last - first + 1));
    }

    #[test]
    fn the_delta_templates_fill_every_placeholder() {
        for rows in [LOAD_ROWS, REMOVED_ROWS, RELOADED_ROWS] {
            let sql = render(WEEKLY_DELTA_ADD_SQL, &[("rows", rows), ("sign", "-1")]);
            assert!(!sql.contains('{'), "{sql}");
            assert!(sql.contains("-1 * count(*)"), "{sql}");
        }
    }
}
