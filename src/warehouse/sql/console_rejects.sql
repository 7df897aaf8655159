-- The first rejects of each arrival from ledger id $1 on (the console's newest arrivals), at
-- most $2 per arrival, in file order.
SELECT file_id, line_number, element_index, raw, raw_truncated, reason
FROM (SELECT * FROM blog_analysis.rejected_votes UNION ALL
      SELECT * FROM blog_analysis.rejected_posts)
WHERE file_id >= $1
QUALIFY row_number() OVER (PARTITION BY file_id ORDER BY line_number, element_index) <= $2
ORDER BY file_id, line_number, element_index
