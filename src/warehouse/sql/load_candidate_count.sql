SELECT count(*) FROM temp.vw_candidates
