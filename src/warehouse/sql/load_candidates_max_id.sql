SELECT coalesce(max(id), 0) FROM temp.vw_candidates c WHERE NOT EXISTS (SELECT 1 FROM temp.vw_present p WHERE p.id = c.id)
