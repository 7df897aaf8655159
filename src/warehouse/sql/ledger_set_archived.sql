UPDATE blog_analysis.ingested_files SET archived_to = ? WHERE id = ?
