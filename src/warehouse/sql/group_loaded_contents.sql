-- For each of the group's content hashes, the first arrival of that content that counts as
-- loaded now (loaded or partial, and not unloaded since).
SELECT a.sha256, min(a.id)
FROM blog_analysis.arrivals a
WHERE a.sha256 IN (SELECT sha256 FROM temp.vw_group_shas)
  AND a.current_status IN ('loaded', 'partial')
GROUP BY a.sha256
