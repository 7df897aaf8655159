-- On DuckLake, a file is read while other hosts may load. Its rows that went straight into
-- the temp table of new rows had Ids above the maximum when the file began ($1); under the
-- lock the maximum is $2. Rows between the two may now be held by the lake: found by an inner
-- join whose Id range prunes the lake's files. `same`: the values agree.
CREATE OR REPLACE TEMP TABLE vw_late AS
SELECT
    d.id,
    row(d.post_id, d.vote_type_id, d.user_id, d.bounty_amount, d.creation_date)
        IS NOT DISTINCT FROM
        row(v.post_id, v.vote_type_id, v.user_id, v.bounty_amount, v.creation_date) AS same
FROM {direct} d
JOIN blog_analysis.votes v ON v.id = d.id
WHERE d.id > $1 AND d.id <= $2 AND v.id > $1 AND v.id <= $2;
