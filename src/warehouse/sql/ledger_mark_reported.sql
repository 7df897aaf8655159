-- The batch's report is in the outbox: its arrivals (the ledger ids in temp.vw_reported) owe
-- none. One statement for the batch.
UPDATE blog_analysis.ingested_files SET report_queued = true
WHERE id IN (SELECT id FROM temp.vw_reported);
DROP TABLE temp.vw_reported;
