-- Applies the transaction's per-post changes: each (week, post) touched gets its new count,
-- dropped when it has none left.
CREATE OR REPLACE TEMP TABLE vw_post_week_new AS
SELECT d.year, d.week, d.post_id, coalesce(w.vote_count, 0) + d.n AS vote_count
FROM (SELECT year, week, post_id, sum(n) AS n FROM temp.vw_post_week_delta GROUP BY ALL) d
LEFT JOIN blog_analysis.weekly_post_votes w
       ON w.year = d.year AND w.week = d.week AND w.post_id = d.post_id;
DELETE FROM blog_analysis.weekly_post_votes w
WHERE EXISTS (SELECT 1 FROM temp.vw_post_week_new n
              WHERE n.year = w.year AND n.week = w.week AND n.post_id = w.post_id);
INSERT INTO blog_analysis.weekly_post_votes
SELECT year, week, post_id, vote_count FROM temp.vw_post_week_new WHERE vote_count <> 0;
DROP TABLE temp.vw_post_week_new;
DROP TABLE temp.vw_post_week_delta;
