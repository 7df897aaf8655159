-- The weeks where weekly_votes and a recomputation from votes differ: year, week, the kept
-- count and the recomputed one (0 when a side has no row).
WITH recomputed AS (
    SELECT year(creation_date) AS year, CAST(strftime(creation_date, '%W') AS INTEGER) AS week,
           count(*) AS n
    FROM blog_analysis.votes
    GROUP BY ALL
)
SELECT coalesce(k.year, r.year), coalesce(k.week, r.week), coalesce(k.vote_count, 0),
       coalesce(r.n, 0)
FROM blog_analysis.weekly_votes k
FULL OUTER JOIN recomputed r ON k.year = r.year AND k.week = r.week
WHERE coalesce(k.vote_count, 0) <> coalesce(r.n, 0)
ORDER BY 1, 2
