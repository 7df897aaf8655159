-- Drops the per-file staging objects once the file's transaction has ended.
DROP TABLE IF EXISTS temp.vw_candidates;
DROP TABLE IF EXISTS temp.vw_winner;
DROP TABLE IF EXISTS temp.vw_first;
DROP TABLE IF EXISTS temp.vw_stage;
DROP TABLE IF EXISTS temp.vw_file;
DROP TABLE IF EXISTS temp.vw_present;
DROP TABLE IF EXISTS temp.vw_direct;
DROP TABLE IF EXISTS temp.vw_rejects;
-- A posts file's.
DROP TABLE IF EXISTS temp.vw_posts_stage;
DROP TABLE IF EXISTS temp.vw_posts_win;
DROP TABLE IF EXISTS temp.vw_posts_repeats;
DROP TABLE IF EXISTS temp.vw_posts_cmp;
