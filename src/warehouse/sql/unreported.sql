-- Arrivals whose report the daemon owes: committed, never queued in the outbox.
SELECT
    id, file_name, status, lines_read, rows_inserted, duplicates_in_file,
    already_in_warehouse, conflicting, rejected, blank_lines,
    to_json(unknown_fields)::VARCHAR AS unknown_fields,
    epoch_ms(finished_at) - epoch_ms(started_at) AS millis,
    error, duplicate_of, sha256, archived_to,
    coalesce(dataset, 'votes') AS dataset, coalesce(rows_updated, 0) AS rows_updated
FROM blog_analysis.ingested_files
WHERE report_queued = false
  -- On a lake, this host's arrivals only ($1: the host, or NULL for a DuckDB file).
  AND ($1::VARCHAR IS NULL OR host_id = $2)
ORDER BY id;
