-- The warehouse contract. Every statement is idempotent: it runs each time votewatch opens
-- the warehouse.
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

-- One row per vote Id, ever. No index: DuckDB's zone maps serve range scans, and an ART
-- index would slow every bulk load.
CREATE TABLE IF NOT EXISTS blog_analysis.votes (
    id            BIGINT NOT NULL,
    post_id       BIGINT NOT NULL,
    vote_type_id  SMALLINT NOT NULL,
    user_id       BIGINT,
    bounty_amount INTEGER,
    creation_date TIMESTAMP NOT NULL,
    file_id       BIGINT NOT NULL
);

-- Records that are not votes, with where they came from and why.
CREATE TABLE IF NOT EXISTS blog_analysis.rejected_votes (
    file_id       BIGINT NOT NULL,
    line_number   BIGINT NOT NULL,
    element_index BIGINT,
    raw           VARCHAR NOT NULL,
    raw_truncated BOOLEAN NOT NULL,
    reason        VARCHAR NOT NULL
);

-- Unloads (votewatch unload): append-only. The ledger row of the arrival keeps what happened
-- when it arrived; a row here says its votes were removed later, when and why, and what that
-- meant for later deliveries of the same Ids.
CREATE TABLE IF NOT EXISTS blog_analysis.unloads (
    file_id           BIGINT NOT NULL,
    unloaded_at       TIMESTAMP NOT NULL,
    reason            VARCHAR,
    votes_removed     BIGINT NOT NULL,
    -- Votes of later files that had been counted as already in the warehouse, or conflicting,
    -- against the removed rows (read again from their archived files).
    later_already     BIGINT NOT NULL,
    later_conflicting BIGINT NOT NULL,
    -- Freed Ids loaded again from later files (--reload-later), first wins among them.
    reloaded          BIGINT NOT NULL,
    -- Later files whose archived bytes were gone or changed, so could not be read again.
    later_unreadable  BIGINT NOT NULL
);

-- Every arrival with its status now: the ledger's, or `unloaded` when its votes were removed
-- since. What `history`, `status`, duplicate detection and `unload`/`reingest` read.
CREATE OR REPLACE VIEW blog_analysis.arrivals AS
SELECT *,
       CASE WHEN id IN (SELECT file_id FROM blog_analysis.unloads) THEN 'unloaded' ELSE status END
           AS current_status
FROM blog_analysis.ingested_files;
