CREATE OR REPLACE TEMP TABLE vw_removed AS SELECT * FROM blog_analysis.votes WHERE file_id = ?
