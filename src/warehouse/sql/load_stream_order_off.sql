-- Before a segment (load_insert_stream.sql): rows need not keep the order they arrived in,
-- which lets DuckDB insert from several threads at once. Nothing votewatch reads depends on
-- the order of rows in votes.
SET preserve_insertion_order = false
