(SELECT * FROM {direct} WHERE id > $1 AND id <= $2)
