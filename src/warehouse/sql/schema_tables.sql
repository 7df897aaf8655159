-- The tables both kinds of warehouse hold alike (`schema.sql` and `schema_lake.sql` run this
-- after the ledger): votes, rejects, unloads, and the arrivals view. Every statement is
-- idempotent. On DuckLake the view is created once (`CREATE VIEW IF NOT EXISTS`).

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

-- The lowest and highest Id of each loaded arrival's valid records (those that went in and
-- those that did not), so that an unload reads again only the later files that can hold the
-- Ids it frees. Arrivals older than this table have no row and are always read.
CREATE TABLE IF NOT EXISTS blog_analysis.file_id_ranges (
    file_id BIGINT NOT NULL,
    min_id  BIGINT NOT NULL,
    max_id  BIGINT NOT NULL
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
