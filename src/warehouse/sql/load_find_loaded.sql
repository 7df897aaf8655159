SELECT min(id) FROM blog_analysis.arrivals WHERE sha256 = ? AND current_status IN ('loaded', 'partial')
