SELECT coalesce(max(id), 0) + 1 FROM blog_analysis.ingested_files
