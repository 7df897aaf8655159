-- {n} ledger ids from the catalog's sequence, in one round trip (a group of files).
SELECT * FROM postgres_query('vw_lock', 'SELECT nextval(''{sequence}'') FROM generate_series(1, {n})')
