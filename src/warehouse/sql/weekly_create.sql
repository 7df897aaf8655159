-- The weekly vote counts, kept by every change to votes in the same transaction (loads,
-- unloads, reingests), so that the view and the reports read a few hundred rows, never all
-- of votes. A week is (year of creation_date, strftime %W), as in outlier_weeks.
CREATE TABLE IF NOT EXISTS blog_analysis.weekly_votes (
    year       BIGINT NOT NULL,
    week       INTEGER NOT NULL,
    vote_count BIGINT NOT NULL
);
