-- New Ids only; $1 is the ledger id of the file (lineage).
INSERT INTO blog_analysis.votes
SELECT c.id, c.post_id, c.vote_type_id, c.user_id, c.bounty_amount, c.creation_date, $1
FROM temp.vw_candidates c
WHERE NOT EXISTS (SELECT 1 FROM blog_analysis.votes v WHERE v.id = c.id);
