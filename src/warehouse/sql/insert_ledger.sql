INSERT INTO blog_analysis.ingested_files (
    id, file_name, source_path, sha256, size_bytes, status, format, forced, duplicate_of,
    lines_read, rows_inserted, duplicates_in_file, already_in_warehouse, conflicting,
    rejected, blank_lines, unknown_fields, started_at, finished_at, error, archived_to,
    report_queued, host_id, max_vote_id, dataset, rows_updated, journal_id, arrived_at,
    claimed_at
) VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8, $9,
    $10, $11, $12, $13, $14,
    $15, $16, CAST(json($17) AS VARCHAR[]), make_timestamp($18::BIGINT), make_timestamp($19::BIGINT), $20,
    $21, $22, $23, $24, $25, $26, $27, make_timestamp($28::BIGINT), make_timestamp($29::BIGINT)
);
