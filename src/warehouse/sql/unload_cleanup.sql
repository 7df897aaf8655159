DROP TABLE IF EXISTS temp.vw_later; DROP TABLE IF EXISTS temp.vw_removed;
