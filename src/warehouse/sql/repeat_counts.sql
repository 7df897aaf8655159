SELECT
    count(*) FILTER (WHERE same_as_first)     AS duplicates,
    count(*) FILTER (WHERE NOT same_as_first) AS conflicting
FROM temp.vw_ranked
WHERE rn > 1;
