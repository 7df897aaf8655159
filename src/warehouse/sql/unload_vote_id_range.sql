SELECT min(id), max(id) FROM blog_analysis.votes WHERE file_id = ?
