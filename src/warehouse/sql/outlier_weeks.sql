-- Weeks whose vote count is more than 20% away from the mean weekly count.
-- A week is (year of CreationDate, strftime %W): weeks start on Monday, and the days before
-- the year's first Monday are week 0. The mean is over the weeks present in votes.
CREATE OR REPLACE VIEW blog_analysis.outlier_weeks AS
WITH weekly AS (
    SELECT
        year(creation_date)                            AS "Year",
        CAST(strftime(creation_date, '%W') AS INTEGER) AS "WeekNumber",
        count(*)                                       AS "VoteCount"
    FROM blog_analysis.votes
    GROUP BY ALL
),
mean AS (
    SELECT avg("VoteCount") AS mean_count FROM weekly
)
SELECT "Year", "WeekNumber", "VoteCount"
FROM weekly, mean
WHERE abs(1 - "VoteCount" / mean_count) > 0.2
ORDER BY "Year", "WeekNumber";
