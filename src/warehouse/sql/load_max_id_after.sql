SELECT greatest(?, coalesce(max(id), 0)) FROM blog_analysis.votes WHERE file_id = ? AND id > ?
