DELETE FROM blog_analysis.votes WHERE file_id = ?
