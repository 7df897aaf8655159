SELECT
    count(*) FILTER (WHERE same)     AS duplicates,
    count(*) FILTER (WHERE NOT same) AS conflicting
FROM temp.vw_repeats;
