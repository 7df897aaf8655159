INSERT INTO temp.vw_file VALUES (?, ?)
