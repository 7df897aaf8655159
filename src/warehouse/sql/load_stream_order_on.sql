-- After a segment, failed or not: DuckDB's default again, for every other statement.
RESET preserve_insertion_order
