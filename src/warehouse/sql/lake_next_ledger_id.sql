SELECT * FROM postgres_query('vw_lock', 'SELECT nextval(''{sequence}'')')
