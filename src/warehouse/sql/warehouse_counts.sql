-- Rows of {rows} (a file's candidates; on DuckLake also its new rows whose Ids another host
-- loaded while the file was read) whose Id the warehouse holds already, found by an inner
-- join: DuckDB passes the rows' Id range to the scan of votes as a filter, so zone maps (and
-- DuckLake's per-file min/max) skip everything outside it, however large votes grows.
-- `same`: the values agree.
CREATE OR REPLACE TEMP TABLE vw_present AS
SELECT
    c.id,
    row(c.post_id, c.vote_type_id, c.user_id, c.bounty_amount, c.creation_date)
        IS NOT DISTINCT FROM
        row(v.post_id, v.vote_type_id, v.user_id, v.bounty_amount, v.creation_date) AS same
FROM {rows} c
JOIN blog_analysis.votes v ON v.id = c.id;
