-- New Ids only: the candidates the warehouse does not hold (`vw_present`, small, found by
-- warehouse_counts.sql). {target} is the votes table, or on DuckLake the file's temp table of
-- new rows, inserted into the lake once. $1 is the ledger id of the file (lineage).
INSERT INTO {target}
SELECT c.id, c.post_id, c.vote_type_id, c.user_id, c.bounty_amount, c.creation_date, $1
FROM temp.vw_candidates c
WHERE NOT EXISTS (SELECT 1 FROM temp.vw_present p WHERE p.id = c.id);
