-- The changes of one transaction to the weekly counts, gathered before they are applied.
CREATE OR REPLACE TEMP TABLE vw_week_delta (year BIGINT, week INTEGER, n BIGINT);
