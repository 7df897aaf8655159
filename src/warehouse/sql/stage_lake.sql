-- On DuckLake a file is read and staged before the write lock is taken. The file's rows that
-- are new for sure collect here (the columns of votes, `file_id` a placeholder) and go into
-- the lake with one INSERT under the lock: one Parquet file per load, not one per flush.
CREATE OR REPLACE TEMP TABLE vw_direct AS SELECT * FROM blog_analysis.votes LIMIT 0;
-- Its rejects likewise (the columns of rejected_votes).
CREATE OR REPLACE TEMP TABLE vw_rejects AS SELECT * FROM blog_analysis.rejected_votes LIMIT 0;
