-- A ledger row of a loaded arrival of the content whose SHA-256 is the parameter: loaded or
-- partial when it arrived (whatever happened since: see `arrivals` for that). A condition,
-- put into ledger_state.sql and ledger_content_seen.sql as {loaded_content}.
sha256 = ? AND status IN ('loaded', 'partial')
