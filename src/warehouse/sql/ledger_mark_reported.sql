-- The batch's report is in the outbox: its arrivals (the ledger ids in temp.vw_reported) owe
-- none, and their files were archived before it was written (the first time only: a report
-- queued again after a restart keeps the first time; {now}: votewatch's clock, microseconds
-- since the epoch, UTC). One statement for the batch.
UPDATE blog_analysis.ingested_files
SET report_queued = true, archived_at = coalesce(archived_at, make_timestamp({now}::BIGINT))
WHERE id IN (SELECT id FROM temp.vw_reported);
DROP TABLE temp.vw_reported;
