-- Unloads of the arrivals from ledger id $1 on (the console's newest arrivals).
SELECT file_id, strftime(unloaded_at, '%Y-%m-%d %H:%M:%S'), reason, votes_removed
FROM blog_analysis.unloads
WHERE file_id >= $1
ORDER BY unloaded_at
