-- On DuckLake, the file's rows that are new for sure collect here (the columns of votes) and
-- go into the lake with one INSERT at commit: one Parquet file per load, not one per flush.
CREATE OR REPLACE TEMP TABLE vw_direct AS SELECT * FROM blog_analysis.votes LIMIT 0;
