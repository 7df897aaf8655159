-- weekly_votes recomputed from votes (a warehouse of an earlier version, `maintain --verify`).
DELETE FROM blog_analysis.weekly_votes;
INSERT INTO blog_analysis.weekly_votes
SELECT year(creation_date), CAST(strftime(creation_date, '%W') AS INTEGER), count(*)
FROM blog_analysis.votes
GROUP BY ALL;
