-- Ranks every row of the file that shares an Id with a staged row, by its position in the
-- file (unique, so no two rows tie, even on one line of a compact JSON array). The file's rows
-- that went straight into votes always come first for their Id (nothing before them had it),
-- so they take position -1. Rank 1 is the first occurrence, which wins, and a later row is an exact
-- repeat (a duplicate) or carries other values (conflicting).
CREATE OR REPLACE TEMP TABLE vw_ranked AS
WITH file_rows AS (
    SELECT pos, id, post_id, vote_type_id, user_id, bounty_amount, creation_date,
           false AS in_votes
    FROM temp.vw_stage
    UNION ALL
    SELECT -1, v.id, v.post_id, v.vote_type_id, v.user_id, v.bounty_amount, v.creation_date,
           true
    FROM blog_analysis.votes v
    WHERE v.file_id = (SELECT id FROM temp.vw_file)
      -- Rows that went straight in are above the old maximum: zone maps skip the rest.
      AND v.id > (SELECT max_id_before FROM temp.vw_file)
      AND v.id IN (SELECT id FROM temp.vw_stage)
)
SELECT
    *,
    row_number() OVER w AS rn,
    row(post_id, vote_type_id, user_id, bounty_amount, creation_date)
        IS NOT DISTINCT FROM
        first_value(row(post_id, vote_type_id, user_id, bounty_amount, creation_date)) OVER w
        AS same_as_first
FROM file_rows
WINDOW w AS (PARTITION BY id ORDER BY pos);

-- First occurrences that still need the warehouse check. A table, not a view, so the
-- planner knows how few rows it has and builds its joins on this side.
CREATE OR REPLACE TEMP TABLE vw_candidates AS
SELECT pos, id, post_id, vote_type_id, user_id, bounty_amount, creation_date
FROM temp.vw_ranked
WHERE rn = 1 AND NOT in_votes;
