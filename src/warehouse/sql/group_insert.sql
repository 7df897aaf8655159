-- Everything the group brings, each table with one statement: its new votes, its rejects,
-- the Id ranges of its loaded files, its ledger rows.
INSERT INTO blog_analysis.votes SELECT * FROM temp.vw_group_votes;
INSERT INTO blog_analysis.rejected_votes SELECT * FROM temp.vw_group_rejects;
INSERT INTO blog_analysis.file_id_ranges SELECT * FROM temp.vw_group_ranges;
-- The ledger rows by column name (their order and names as insert_ledger.sql takes them), the
-- unknown fields and times converted as it converts them.
INSERT INTO blog_analysis.ingested_files BY NAME
SELECT * REPLACE (
    CAST(json(unknown_fields) AS VARCHAR[]) AS unknown_fields,
    make_timestamp(started_at) AS started_at,
    make_timestamp(finished_at) AS finished_at,
    make_timestamp(arrived_at) AS arrived_at,
    make_timestamp(claimed_at) AS claimed_at
)
FROM temp.vw_group_ledger
ORDER BY id;
