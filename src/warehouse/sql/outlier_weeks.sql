-- Weeks whose vote count is more than 20% away from the mean weekly count.
-- A week is (year of CreationDate, strftime %W): weeks start on Monday, and the days before
-- the year's first Monday are week 0. The mean is over the weeks present in votes, whose
-- counts weekly_votes keeps.
CREATE OR REPLACE VIEW blog_analysis.outlier_weeks AS
WITH mean AS (
    SELECT avg(vote_count) AS mean_count FROM blog_analysis.weekly_votes
)
SELECT year AS "Year", week AS "WeekNumber", vote_count AS "VoteCount"
FROM blog_analysis.weekly_votes, mean
WHERE abs(1 - vote_count / mean_count) > 0.2
ORDER BY "Year", "WeekNumber";
