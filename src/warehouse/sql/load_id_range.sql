INSERT INTO blog_analysis.file_id_ranges VALUES (?, ?, ?)
