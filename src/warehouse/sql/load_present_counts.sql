SELECT count(*) FILTER (WHERE same), count(*) FILTER (WHERE NOT same) FROM temp.vw_present
