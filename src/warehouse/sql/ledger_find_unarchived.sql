SELECT id, status FROM blog_analysis.ingested_files WHERE source_path = ? AND sha256 = ? AND archived_to IS NULL AND (?::VARCHAR IS NULL OR host_id = ?) ORDER BY id DESC LIMIT 1
