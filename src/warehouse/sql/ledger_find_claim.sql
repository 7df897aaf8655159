SELECT id, status, archived_to FROM blog_analysis.ingested_files WHERE source_path = ? AND (?::VARCHAR IS NULL OR host_id = ?) ORDER BY id DESC LIMIT 1
