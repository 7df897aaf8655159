-- Retention of rejects: those of arrivals recorded before the cut-off (microseconds since the
-- epoch, UTC) are deleted from {rejects} (each dataset's table in turn); the ledger keeps
-- their counts.
DELETE FROM blog_analysis.{rejects}
WHERE file_id IN (
    SELECT id FROM blog_analysis.ingested_files WHERE finished_at < make_timestamp(?::BIGINT)
)
