SELECT epoch_us(max(finished_at)) FROM blog_analysis.ingested_files WHERE status IN ('loaded', 'partial') AND (?::VARCHAR IS NULL OR host_id = ?)
