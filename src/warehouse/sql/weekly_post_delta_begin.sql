-- The changes of one transaction to weekly_post_votes, gathered before they are applied.
CREATE OR REPLACE TEMP TABLE vw_post_week_delta (year BIGINT, week INTEGER, post_id BIGINT, n BIGINT);
