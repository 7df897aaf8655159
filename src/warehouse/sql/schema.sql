-- The warehouse contract: the meta table and the ledger (then schema_tables.sql, the tables
-- both kinds of warehouse share). Every statement is idempotent: it runs each time votewatch
-- opens the warehouse.
CREATE SCHEMA IF NOT EXISTS blog_analysis;

-- Format version of the tables below, for future migrations.
CREATE TABLE IF NOT EXISTS blog_analysis.votewatch_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
INSERT INTO blog_analysis.votewatch_meta VALUES ('schema_version', '1') ON CONFLICT DO NOTHING;

-- The ledger: one row per arrival of a file, whatever happened to it.
CREATE TABLE IF NOT EXISTS blog_analysis.ingested_files (
    id                   BIGINT PRIMARY KEY,
    file_name            VARCHAR NOT NULL,
    source_path          VARCHAR NOT NULL,
    sha256               VARCHAR,
    size_bytes           BIGINT,
    status               VARCHAR NOT NULL
        CHECK (status IN ('loaded', 'partial', 'duplicate_file', 'rejected', 'failed')),
    format               VARCHAR,
    forced               BOOLEAN NOT NULL,
    duplicate_of         BIGINT,
    lines_read           BIGINT NOT NULL,
    rows_inserted        BIGINT NOT NULL,
    duplicates_in_file   BIGINT NOT NULL,
    already_in_warehouse BIGINT NOT NULL,
    conflicting          BIGINT NOT NULL,
    rejected             BIGINT NOT NULL,
    blank_lines          BIGINT NOT NULL,
    unknown_fields       VARCHAR[] NOT NULL,
    started_at           TIMESTAMP NOT NULL,
    finished_at          TIMESTAMP NOT NULL,
    error                VARCHAR,
    -- Where the daemon moves the file, decided with the commit.
    archived_to          VARCHAR,
    -- The daemon's report of this arrival: false until it is in the outbox (NULL for
    -- loads without a report, and for rows older than this column).
    report_queued        BOOLEAN
);
-- Warehouses made before report_queued existed.
ALTER TABLE blog_analysis.ingested_files ADD COLUMN IF NOT EXISTS report_queued BOOLEAN;
-- The host that recorded the arrival (several hosts load one lake); warehouses made before it
-- existed have NULL.
ALTER TABLE blog_analysis.ingested_files ADD COLUMN IF NOT EXISTS host_id VARCHAR;
-- The highest vote Id in the warehouse after the load (NULL for arrivals that loaded nothing,
-- and for rows older than this column), so that the next load need not scan votes for it.
ALTER TABLE blog_analysis.ingested_files ADD COLUMN IF NOT EXISTS max_vote_id BIGINT;
