//! What the analysts and the reports read: the `outlier_weeks` view, its rows, and the
//! weekly chart's numbers.

use super::*;

const VIEWS_OUTLIER_WEEKS_SQL: &str = include_str!("sql/views_outlier_weeks.sql");
const VIEWS_WEEKLY_CHART_SQL: &str = include_str!("sql/views_weekly_chart.sql");
const VIEWS_COUNT_OUTLIER_WEEKS_SQL: &str = include_str!("sql/views_count_outlier_weeks.sql");

impl Warehouse {
    /// Recreates `blog_analysis.outlier_weeks`.
    pub fn refresh_view(&self) -> Result<()> {
        if self.is_lake() {
            return Ok(());
        }
        self.conn
            .execute_batch(OUTLIER_WEEKS_SQL)
            .map_err(|e| self.err("cannot create the outlier_weeks view", e))
    }

    pub fn outlier_weeks(&self) -> Result<Vec<OutlierWeek>> {
        let run = || -> duckdb::Result<Vec<OutlierWeek>> {
            let mut stmt = self.conn.prepare(VIEWS_OUTLIER_WEEKS_SQL)?;
            let rows = stmt.query_map([], |r| {
                Ok(OutlierWeek {
                    year: r.get(0)?,
                    week: r.get(1)?,
                    votes: r.get(2)?,
                })
            })?;
            rows.collect()
        };
        run().map_err(|e| self.err("cannot read outlier_weeks", e))
    }

    /// The report's chart: weekly counts of the last 52 weeks present (with the view's week,
    /// mean and outlier rule), the weeks the ledger rows `batch` brought votes to marked.
    pub fn weekly_chart(&self, batch: &[i64]) -> Result<crate::report::chart::WeeklyChart> {
        let run = || -> duckdb::Result<crate::report::chart::WeeklyChart> {
            let ids = serde_json::to_string(batch).unwrap_or_else(|_| "[]".into());
            let (low, high) = (
                batch.iter().copied().min().unwrap_or(0),
                batch.iter().copied().max().unwrap_or(-1),
            );
            let mut stmt = self.conn.prepare(VIEWS_WEEKLY_CHART_SQL)?;
            let mut mean = 0.0;
            let rows = stmt.query_map(params![low, high, ids], |r| {
                Ok((
                    crate::report::chart::Week {
                        year: r.get(0)?,
                        week: r.get(1)?,
                        votes: r.get(2)?,
                        outlier: r.get(3)?,
                        in_batch: r.get(4)?,
                    },
                    r.get::<_, f64>(5)?,
                ))
            })?;
            let mut weeks = Vec::new();
            for row in rows {
                let (w, m) = row?;
                mean = m;
                weeks.push(w);
            }
            weeks.reverse();
            Ok(crate::report::chart::WeeklyChart { weeks, mean })
        };
        run().map_err(|e| self.err("cannot count the weekly votes", e))
    }

    pub fn count_outlier_weeks(&self) -> Result<i64> {
        self.query_i64(VIEWS_COUNT_OUTLIER_WEEKS_SQL)
    }
}
