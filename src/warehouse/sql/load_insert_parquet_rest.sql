-- The rows of a load's written Parquet file ({parquet}: read_parquet of it) that the lake
-- does not hold yet.
INSERT INTO blog_analysis.votes SELECT * FROM {parquet}
WHERE id NOT IN (SELECT id FROM temp.vw_present)
