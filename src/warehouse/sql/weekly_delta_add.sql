-- Adds the weekly counts of {rows} (a fixed relation of votewatch's: the load's own votes,
-- the removed ones, the reloaded ones), times {sign} (1 or -1), to the transaction's changes.
INSERT INTO temp.vw_week_delta
SELECT year(creation_date), CAST(strftime(creation_date, '%W') AS INTEGER), {sign} * count(*)
FROM {rows}
GROUP BY ALL;
