SELECT count(*) > 0 FROM blog_analysis.ingested_files WHERE {loaded_content}
