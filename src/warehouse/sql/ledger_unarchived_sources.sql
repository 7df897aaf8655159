SELECT DISTINCT source_path FROM blog_analysis.ingested_files WHERE archived_to IS NULL AND starts_with(source_path, ?) AND (?::VARCHAR IS NULL OR host_id = ?)
