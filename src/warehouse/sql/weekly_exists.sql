SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'blog_analysis' AND table_name = 'weekly_votes'
