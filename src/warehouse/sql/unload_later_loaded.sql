-- The later votes arrivals (ledger ids above $1) whose votes are in the warehouse and that can
-- hold an Id in [$2, $3]: their recorded Id range meets it, or none is recorded (older
-- arrivals).
SELECT a.id, a.file_name, a.source_path, a.archived_to, a.sha256, a.status,
       a.current_status = 'unloaded', coalesce(a.dataset, 'votes')
FROM blog_analysis.arrivals a
LEFT JOIN blog_analysis.file_id_ranges r ON r.file_id = a.id
WHERE a.id > $1 AND a.current_status IN ('loaded', 'partial')
  AND coalesce(a.dataset, 'votes') = 'votes'
  AND (r.file_id IS NULL OR (r.min_id <= $3 AND r.max_id >= $2))
ORDER BY a.id
