SELECT coalesce(max(id), 0) FROM blog_analysis.ingested_files
