-- Ledger columns added since the first version, on both kinds of warehouse (after schema.sql
-- or schema_lake.sql). Every statement is idempotent.
-- The dataset the arrival was loaded as (votes, posts); NULL in rows older than datasets, all
-- of them votes.
ALTER TABLE blog_analysis.ingested_files ADD COLUMN IF NOT EXISTS dataset VARCHAR;
-- Rows of the table whose current version the arrival replaced (posts); 0 for votes.
ALTER TABLE blog_analysis.ingested_files ADD COLUMN IF NOT EXISTS rows_updated BIGINT;
-- Rows a rebuild from the archive journal wrote: the arrival's ledger id in the journal (the
-- warehouse that was lost).
ALTER TABLE blog_analysis.ingested_files ADD COLUMN IF NOT EXISTS journal_id BIGINT;
-- When the file arrived (its modification time: when its writer finished it), when the daemon
-- claimed it into work/, and when the daemon had archived it (its batch's moves done).
ALTER TABLE blog_analysis.ingested_files ADD COLUMN IF NOT EXISTS arrived_at TIMESTAMP;
ALTER TABLE blog_analysis.ingested_files ADD COLUMN IF NOT EXISTS claimed_at TIMESTAMP;
ALTER TABLE blog_analysis.ingested_files ADD COLUMN IF NOT EXISTS archived_at TIMESTAMP;
