-- The first occurrence of an Id in the file wins. Only suspect rows can repeat an earlier
-- line, so only their Ids are looked at: a suspect row with an earlier line of the same Id is
-- a repeat, either exact (a duplicate) or with other values (conflicting).
CREATE OR REPLACE TEMP TABLE vw_first_lines AS
SELECT id, min(line) AS first_line
FROM temp.vw_stage
WHERE id IN (SELECT id FROM temp.vw_stage WHERE suspect)
GROUP BY id;

CREATE OR REPLACE TEMP TABLE vw_repeats AS
SELECT
    s.line,
    row(s.post_id, s.vote_type_id, s.user_id, s.bounty_amount, s.creation_date)
        IS NOT DISTINCT FROM
        row(f.post_id, f.vote_type_id, f.user_id, f.bounty_amount, f.creation_date) AS same
FROM temp.vw_stage s
JOIN temp.vw_first_lines fl ON s.id = fl.id AND s.line > fl.first_line
JOIN temp.vw_stage f ON f.id = fl.id AND f.line = fl.first_line
WHERE s.suspect;

-- The rows that may become votes: one per Id of the file.
CREATE OR REPLACE TEMP VIEW vw_candidates AS
SELECT s.*
FROM temp.vw_stage s
WHERE NOT EXISTS (SELECT 1 FROM temp.vw_repeats r WHERE r.line = s.line);
