-- Resolves the staged rows of a file: which row of each staged Id comes first in the file
-- (it wins), and which are later repeats. Aggregates with fixed-size state and joins whose
-- build side holds only Ids that repeat, never a window or a join over every staged row, so
-- that DuckDB can spill to disk under its memory limit whatever the file's order.

-- The first staged row of each staged Id (positions are unique: nothing ties), how many
-- distinct staged rows carry the Id, and how many copies they stand for.
CREATE OR REPLACE TEMP TABLE vw_first AS
SELECT
    id,
    min(pos)                           AS pos,
    arg_min(post_id, pos)              AS post_id,
    arg_min(vote_type_id, pos)         AS vote_type_id,
    arg_min_null(user_id, pos)         AS user_id,
    arg_min_null(bounty_amount, pos)   AS bounty_amount,
    arg_min(creation_date, pos)        AS creation_date,
    count(*)                           AS staged_rows,
    sum(copies)::BIGINT                AS copies
FROM temp.vw_stage
GROUP BY id;

-- The winner of each staged Id: the file's row that went straight into votes ({direct}: the
-- votes table, or on DuckLake the file's temp table of new rows) when there is one (it
-- always comes first: no row before it had its Id; position -1)...
CREATE OR REPLACE TEMP TABLE vw_winner AS
SELECT -1 AS pos, v.id, v.post_id, v.vote_type_id, v.user_id, v.bounty_amount,
       v.creation_date, true AS in_votes, 0::BIGINT AS staged_rows, 0::BIGINT AS copies
FROM {direct} v
WHERE v.file_id = (SELECT id FROM temp.vw_file)
  -- Rows that went straight in are above the old maximum: zone maps skip the rest.
  AND v.id > (SELECT max_id_before FROM temp.vw_file)
  AND v.id IN (SELECT id FROM temp.vw_first);

-- ...else the first staged row.
DELETE FROM temp.vw_first WHERE id IN (SELECT id FROM temp.vw_winner);
INSERT INTO temp.vw_winner
SELECT pos, id, post_id, vote_type_id, user_id, bounty_amount, creation_date, false,
       staged_rows, copies
FROM temp.vw_first;

-- First occurrences that still need the warehouse check. A table, not a view, so the
-- planner knows how few rows it has and builds its joins on this side.
CREATE OR REPLACE TEMP TABLE vw_candidates AS
SELECT pos, id, post_id, vote_type_id, user_id, bounty_amount, creation_date
FROM temp.vw_winner
WHERE NOT in_votes;
