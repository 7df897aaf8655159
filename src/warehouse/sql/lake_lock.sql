-- One try at the lake's write lock: a transaction-level advisory lock on the catalog's server,
-- waited for at most {wait_ms} ms (the caller tries again until its own limit, beating and
-- seeing a stop between tries). {key}: votewatch's lock key.
CALL postgres_execute('vw_lock', 'SET LOCAL lock_timeout = ''{wait_ms}ms''');
CALL postgres_execute('vw_lock', 'SELECT pg_advisory_xact_lock({key})');
