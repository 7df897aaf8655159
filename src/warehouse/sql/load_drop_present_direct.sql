DELETE FROM temp.vw_direct WHERE id IN (SELECT id FROM temp.vw_present)
