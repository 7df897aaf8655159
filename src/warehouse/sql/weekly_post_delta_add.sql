-- Adds the per-post weekly counts of {rows} (the same fixed relations as
-- weekly_delta_add.sql), times {sign}, for the votes on posts present in posts.
INSERT INTO temp.vw_post_week_delta
SELECT year(creation_date), CAST(strftime(creation_date, '%W') AS INTEGER), post_id,
       {sign} * count(*)
FROM {rows}
{and} post_id IN (SELECT id FROM blog_analysis.posts)
GROUP BY ALL;
