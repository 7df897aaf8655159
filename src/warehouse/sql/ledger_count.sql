SELECT count(*) FROM blog_analysis.ingested_files
