SELECT
    id, file_name, status, lines_read, rows_inserted, duplicates_in_file,
    already_in_warehouse, conflicting, rejected, blank_lines,
    strftime(started_at, '%Y-%m-%d %H:%M:%S') AS started,
    epoch_ms(finished_at) - epoch_ms(started_at) AS millis,
    coalesce(error, '') AS error,
    duplicate_of
FROM blog_analysis.ingested_files
ORDER BY id DESC
LIMIT $1;
