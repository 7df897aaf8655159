-- The first arrival of the content whose SHA-256 is the parameter that counts as loaded now,
-- with what reading it found (the same bytes read the same way).
SELECT id, lines_read, format, to_json(unknown_fields)::VARCHAR
FROM blog_analysis.arrivals
WHERE sha256 = ? AND current_status IN ('loaded', 'partial')
ORDER BY id
LIMIT 1
