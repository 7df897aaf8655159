-- The lake's write lock: a transaction-level advisory lock on the catalog's server, waited
-- for at most {timeout_secs} seconds. {key}: votewatch's lock key.
CALL postgres_execute('vw_lock', 'SET LOCAL lock_timeout = ''{timeout_secs}s''');
CALL postgres_execute('vw_lock', 'SELECT pg_advisory_xact_lock({key})');
