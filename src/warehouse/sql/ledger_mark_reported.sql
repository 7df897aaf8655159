UPDATE blog_analysis.ingested_files SET report_queued = true WHERE id = ?
