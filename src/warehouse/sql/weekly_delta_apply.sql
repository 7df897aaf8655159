-- Applies the transaction's changes: each week touched gets its new count (a week left with
-- no votes is dropped). Only the touched weeks are read and written.
CREATE OR REPLACE TEMP TABLE vw_week_new AS
SELECT d.year, d.week, coalesce(w.vote_count, 0) + d.n AS vote_count
FROM (SELECT year, week, sum(n) AS n FROM temp.vw_week_delta GROUP BY ALL) d
LEFT JOIN blog_analysis.weekly_votes w ON w.year = d.year AND w.week = d.week;
DELETE FROM blog_analysis.weekly_votes
WHERE year * 100 + week IN (SELECT year * 100 + week FROM temp.vw_week_new);
INSERT INTO blog_analysis.weekly_votes
SELECT year, week, vote_count FROM temp.vw_week_new WHERE vote_count <> 0;
DROP TABLE temp.vw_week_new;
DROP TABLE temp.vw_week_delta;
