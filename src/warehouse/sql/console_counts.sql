-- Arrivals and their new rows per status over the last day and the last week, for the
-- console's overview. $1, $2: the two cut-offs, in microseconds since the epoch (UTC).
SELECT current_status,
       count(*) FILTER (WHERE started_at >= make_timestamp($1::BIGINT)),
       coalesce(sum(rows_inserted) FILTER (WHERE started_at >= make_timestamp($1::BIGINT)), 0)::BIGINT,
       count(*),
       coalesce(sum(rows_inserted), 0)::BIGINT
FROM blog_analysis.arrivals
WHERE started_at >= make_timestamp($2::BIGINT)
GROUP BY current_status
ORDER BY current_status
