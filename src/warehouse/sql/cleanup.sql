-- Drops the per-file staging objects once the file's transaction has ended.
DROP VIEW IF EXISTS temp.vw_candidates;
DROP TABLE IF EXISTS temp.vw_repeats;
DROP TABLE IF EXISTS temp.vw_first_lines;
DROP TABLE IF EXISTS temp.vw_stage;
