-- The shared transaction of a group of small files (group commit): what the files bring is
-- gathered here, then written with one statement per table. The group's Ids at or below the
-- warehouse's highest (to look up) and its content hashes (to find earlier loads) too.
CREATE OR REPLACE TEMP TABLE vw_group_votes AS SELECT * FROM blog_analysis.votes LIMIT 0;
CREATE OR REPLACE TEMP TABLE vw_group_rejects AS SELECT * FROM blog_analysis.rejected_votes LIMIT 0;
CREATE OR REPLACE TEMP TABLE vw_group_ids (id BIGINT NOT NULL);
CREATE OR REPLACE TEMP TABLE vw_group_shas (sha256 VARCHAR NOT NULL);
-- The group's ledger rows, as `insert_ledger.sql` takes them (unknown fields as JSON, times
-- in microseconds), and the Id ranges of its loaded files.
CREATE OR REPLACE TEMP TABLE vw_group_ledger (
    id BIGINT, file_name VARCHAR, source_path VARCHAR, sha256 VARCHAR, size_bytes BIGINT,
    status VARCHAR, format VARCHAR, forced BOOLEAN, duplicate_of BIGINT, lines_read BIGINT,
    rows_inserted BIGINT, duplicates_in_file BIGINT, already_in_warehouse BIGINT,
    conflicting BIGINT, rejected BIGINT, blank_lines BIGINT, unknown_fields VARCHAR,
    started_at BIGINT, finished_at BIGINT, error VARCHAR, archived_to VARCHAR,
    report_queued BOOLEAN, host_id VARCHAR, max_vote_id BIGINT, dataset VARCHAR,
    rows_updated BIGINT, journal_id BIGINT, arrived_at BIGINT, claimed_at BIGINT
);
CREATE OR REPLACE TEMP TABLE vw_group_ranges AS SELECT * FROM blog_analysis.file_id_ranges LIMIT 0;
