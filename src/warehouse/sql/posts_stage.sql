-- Per-connection staging for a posts file: every valid record with its position in the file
-- (the columns of posts before valid_from), resolved at the end of the file.
CREATE OR REPLACE TEMP TABLE vw_posts_stage AS
SELECT 0::BIGINT AS pos, * EXCLUDE (valid_from, file_id) FROM blog_analysis.posts LIMIT 0;
