-- The warehouse contract on DuckLake: the meta table and the ledger of schema.sql, column for
-- column, without what DuckLake does not have (PRIMARY KEY, CHECK, ON CONFLICT; one row per
-- ledger id and per vote Id is kept by the write lock and the ledger-id sequence instead), and
-- the fence; then schema_tables.sql (the tables both kinds share) and the views, created once.
-- Every statement is idempotent; it runs under the lake's write lock.
CREATE SCHEMA IF NOT EXISTS blog_analysis;

CREATE TABLE IF NOT EXISTS blog_analysis.votewatch_meta (
    key   VARCHAR NOT NULL,
    value VARCHAR NOT NULL
);
INSERT INTO blog_analysis.votewatch_meta
SELECT 'schema_version', '1'
WHERE NOT EXISTS (SELECT 1 FROM blog_analysis.votewatch_meta WHERE key = 'schema_version');

CREATE TABLE IF NOT EXISTS blog_analysis.ingested_files (
    id                   BIGINT NOT NULL,
    file_name            VARCHAR NOT NULL,
    source_path          VARCHAR NOT NULL,
    sha256               VARCHAR,
    size_bytes           BIGINT,
    status               VARCHAR NOT NULL,
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
    archived_to          VARCHAR,
    report_queued        BOOLEAN,
    host_id              VARCHAR,
    max_vote_id          BIGINT
);

-- One row that every write transaction updates: DuckLake refuses the commit of any write
-- that overlapped another, should the lock ever fail to keep them apart.
CREATE TABLE IF NOT EXISTS blog_analysis.load_fence (n BIGINT NOT NULL);
INSERT INTO blog_analysis.load_fence
SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM blog_analysis.load_fence);
