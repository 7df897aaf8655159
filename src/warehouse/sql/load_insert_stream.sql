-- A segment of a load's new rows into votes: {source} is the stream's table function call
-- (`vw_batches_parallel(<token>)`, a number votewatch drew), scanned by every DuckDB thread
-- while the router sends the rows. Run between load_stream_order_off.sql and
-- load_stream_order_on.sql: without insertion order, each thread writes row groups of its own.
INSERT INTO blog_analysis.votes SELECT * FROM {source}
