-- Every staged copy that is not its Id's winner: an exact repeat of the winner (a duplicate)
-- or other values (conflicting). A staged row stands for `copies` identical rows.
WITH
-- A staged winner that is its Id's only distinct staged row: its other copies are exact
-- repeats of it. No join needed (this covers a file of one row repeated).
alone AS (
    SELECT coalesce(sum(copies - 1), 0) AS duplicates
    FROM temp.vw_winner
    WHERE NOT in_votes AND staged_rows = 1
),
-- Otherwise each staged row is compared with the winner; the join builds on these Ids only.
mixed AS (
    SELECT
        row(s.post_id, s.vote_type_id, s.user_id, s.bounty_amount, s.creation_date)
            IS NOT DISTINCT FROM
            row(w.post_id, w.vote_type_id, w.user_id, w.bounty_amount, w.creation_date) AS same,
        s.copies - CASE WHEN s.pos = w.pos THEN 1 ELSE 0 END AS n
    FROM temp.vw_stage s
    JOIN (SELECT * FROM temp.vw_winner WHERE in_votes OR staged_rows > 1) w ON s.id = w.id
)
SELECT
    ((SELECT duplicates FROM alone) + coalesce(sum(n) FILTER (WHERE same), 0))::BIGINT
        AS duplicates,
    coalesce(sum(n) FILTER (WHERE NOT same), 0)::BIGINT AS conflicting
FROM mixed;
