-- Whether an arrival of exactly this many bytes counts as loaded now: a cheap look before a
-- large file is hashed to see whether it was sent before.
SELECT count(*) > 0
FROM blog_analysis.arrivals
WHERE size_bytes = ? AND current_status IN ('loaded', 'partial')
