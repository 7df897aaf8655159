-- Candidates whose Id the warehouse holds already: same values, or conflicting ones.
SELECT
    count(*) FILTER (WHERE same)     AS already,
    count(*) FILTER (WHERE NOT same) AS conflicting
FROM (
    SELECT
        row(c.post_id, c.vote_type_id, c.user_id, c.bounty_amount, c.creation_date)
            IS NOT DISTINCT FROM
            row(v.post_id, v.vote_type_id, v.user_id, v.bounty_amount, v.creation_date) AS same
    FROM temp.vw_candidates c
    JOIN blog_analysis.votes v ON v.id = c.id
);
