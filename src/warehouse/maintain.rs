//! Maintenance: on DuckLake, merging small files, expiring snapshots and deleting files no
//! snapshot needs (under the write lock); on a DuckDB file, a checkpoint.

use super::*;

const MAINTAIN_LAKE_SQL: &str = include_str!("sql/maintain_lake.sql");

const MAINTAIN_LIVE_FILES_SQL: &str = include_str!("sql/maintain_live_files.sql");
const REJECTS_EXPIRE_SQL: &str = include_str!("sql/rejects_expire.sql");

impl Warehouse {
    /// Deletes the stored rejects of arrivals recorded more than `days` days before `now`
    /// (none when `days` is 0) and returns how many went; the ledger keeps the counts.
    pub fn expire_rejects(&self, days: u32, now: chrono::DateTime<chrono::Utc>) -> Result<u64> {
        if days == 0 {
            return Ok(0);
        }
        let cutoff = (now - chrono::Duration::days(i64::from(days))).timestamp_micros();
        self.write("cannot delete old rejects", |c| {
            let mut n = 0;
            for table in ["rejected_votes", "rejected_posts"] {
                let sql = render(REJECTS_EXPIRE_SQL, &[("rejects", table)]);
                n += c.execute(&sql, params![cutoff])?;
            }
            Ok(n)
        })
        .map(|n| n as u64)
    }

    /// Tidies the warehouse: on a lake, under the write lock, merges small adjacent Parquet
    /// files, expires snapshots older than `retention_days`, and deletes the data files no
    /// remaining snapshot needs and orphans of interrupted loads older than that; on a DuckDB
    /// file, a checkpoint. Returns the lake's live data files before and after.
    pub fn maintain(&self, retention_days: u32) -> Result<(i64, i64)> {
        let Some(l) = &self.lake else {
            self.conn
                .execute_batch("CHECKPOINT")
                .map_err(|e| self.err("cannot checkpoint", e))?;
            return Ok((0, 0));
        };
        let files = || self.query_i64(MAINTAIN_LIVE_FILES_SQL);
        l.lock().map_err(|e| self.err(LAKE_LOCK_TIMEOUT, e))?;
        let run = || -> Result<(i64, i64)> {
            let before = files()?;
            // The functions commit by themselves (CALL, never inside a SELECT).
            // The cut-off as a literal of our own clock (TIMESTAMPTZ arithmetic in SQL would
            // need the icu extension).
            let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(retention_days));
            let older = format!(
                "older_than => '{}'::TIMESTAMPTZ",
                cutoff.format("%Y-%m-%d %H:%M:%S%.6f+00")
            );
            self.conn
                .execute_batch(&render(MAINTAIN_LAKE_SQL, &[("older", &older)]))
                .map_err(|e| self.err("maintenance failed", e))?;
            Ok((before, files()?))
        };
        let result = run();
        lake::unlock(&l.lock);
        result
    }
}
