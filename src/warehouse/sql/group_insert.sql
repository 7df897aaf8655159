-- Everything the group brings, each table with one statement: its new votes, its rejects,
-- the Id ranges of its loaded files, its ledger rows.
INSERT INTO blog_analysis.votes SELECT * FROM temp.vw_group_votes;
INSERT INTO blog_analysis.rejected_votes SELECT * FROM temp.vw_group_rejects;
INSERT INTO blog_analysis.file_id_ranges SELECT * FROM temp.vw_group_ranges;
INSERT INTO blog_analysis.ingested_files (
    id, file_name, source_path, sha256, size_bytes, status, format, forced, duplicate_of,
    lines_read, rows_inserted, duplicates_in_file, already_in_warehouse, conflicting,
    rejected, blank_lines, unknown_fields, started_at, finished_at, error, archived_to,
    report_queued, host_id, max_vote_id, dataset, rows_updated, journal_id, arrived_at,
    claimed_at
)
SELECT id, file_name, source_path, sha256, size_bytes, status, format, forced, duplicate_of,
       lines_read, rows_inserted, duplicates_in_file, already_in_warehouse, conflicting,
       rejected, blank_lines, CAST(json(unknown_fields) AS VARCHAR[]),
       make_timestamp(started_at), make_timestamp(finished_at), error, archived_to,
       report_queued, host_id, max_vote_id, dataset, rows_updated, journal_id,
       make_timestamp(arrived_at), make_timestamp(claimed_at)
FROM temp.vw_group_ledger
ORDER BY id;
