-- The ledger ids whose report was just queued (ledger_mark_reported.sql).
CREATE OR REPLACE TEMP TABLE vw_reported (id BIGINT NOT NULL);
