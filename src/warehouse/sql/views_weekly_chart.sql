-- The report's chart: the last 52 weeks present, with the outlier rule of outlier_weeks, and
-- whether the batch's ledger rows (the JSON list $3, between $1 and $2, so the scan of votes
-- is pruned to their row groups) brought votes to the week.
WITH mean AS (SELECT avg(vote_count) AS m FROM blog_analysis.weekly_votes),
batch AS (
    SELECT DISTINCT year(creation_date) AS year,
           CAST(strftime(creation_date, '%W') AS INTEGER) AS week
    FROM blog_analysis.votes
    WHERE file_id BETWEEN $1 AND $2 AND list_contains(CAST(json($3) AS BIGINT[]), file_id)
)
SELECT w.year, w.week, w.vote_count, abs(1 - w.vote_count / mean.m) > 0.2,
       b.year IS NOT NULL, mean.m
FROM blog_analysis.weekly_votes w
CROSS JOIN mean
LEFT JOIN batch b ON b.year = w.year AND b.week = w.week
ORDER BY w.year DESC, w.week DESC
LIMIT 52
