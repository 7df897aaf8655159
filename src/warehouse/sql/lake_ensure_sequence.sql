-- The ledger-id sequence ({sequence}), created when missing and moved past {max_id}.
CALL postgres_execute('vw_lock', 'CREATE SEQUENCE IF NOT EXISTS {sequence}');
CALL postgres_execute('vw_lock', 'SELECT setval(''{sequence}'', {max_id}) FROM {sequence} WHERE {max_id} >= last_value');
