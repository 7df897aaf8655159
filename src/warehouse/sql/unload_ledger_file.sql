SELECT id, file_name, source_path, archived_to, sha256, status, current_status = 'unloaded',
       coalesce(dataset, 'votes') FROM blog_analysis.arrivals
WHERE id = ?
