-- The ledger, newest first. $1: how many rows; $2: only this status; $3: only arrivals started
-- at or after this many microseconds since the epoch (UTC); $4: only this file name. NULL: no
-- filter; $5: only this dataset. A row whose votes were removed since (votewatch unload)
-- shows as `unloaded`. Rows older than datasets are votes.
SELECT
    id, file_name, current_status AS status, lines_read, rows_inserted, duplicates_in_file,
    already_in_warehouse, conflicting, rejected, blank_lines,
    strftime(started_at, '%Y-%m-%d %H:%M:%S') AS started,
    epoch_ms(finished_at) - epoch_ms(started_at) AS millis,
    coalesce(error, '') AS error,
    duplicate_of,
    coalesce(dataset, 'votes') AS dataset,
    coalesce(rows_updated, 0) AS rows_updated
FROM blog_analysis.arrivals
WHERE ($2::VARCHAR IS NULL OR current_status = $2)
  AND ($3::BIGINT IS NULL OR started_at >= make_timestamp($3::BIGINT))
  AND ($4::VARCHAR IS NULL OR file_name = $4)
  AND ($5::VARCHAR IS NULL OR coalesce(dataset, 'votes') = $5)
ORDER BY id DESC
LIMIT $1;
