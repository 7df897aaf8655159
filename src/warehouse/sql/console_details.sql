-- The newest arrivals in full, for the operator console ($1: how many), newest first.
SELECT id, sha256, size_bytes, format, forced, archived_to,
       to_json(unknown_fields)::VARCHAR, report_queued, host_id,
       strftime(started_at, '%Y-%m-%d %H:%M:%S'), strftime(finished_at, '%Y-%m-%d %H:%M:%S'),
       strftime(arrived_at, '%Y-%m-%d %H:%M:%S'), strftime(claimed_at, '%Y-%m-%d %H:%M:%S'),
       strftime(archived_at, '%Y-%m-%d %H:%M:%S')
FROM blog_analysis.ingested_files
ORDER BY id DESC
LIMIT $1
