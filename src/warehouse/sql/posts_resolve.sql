-- The end of a posts file. {file_id}: its ledger id; {same_in_file} and {same_as_current}:
-- "every column of the two versions alike", over (s, w) and (w, p).
-- The file's version of each Id: the latest LastActivityDate (none: the earliest), ties the
-- later record.
CREATE OR REPLACE TEMP TABLE vw_posts_win AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (
        PARTITION BY id ORDER BY last_activity_date DESC NULLS LAST, pos DESC
    ) AS rn
    FROM temp.vw_posts_stage
) WHERE rn = 1;
-- The other records of the same Ids: copies of the file's version, or versions it replaced.
CREATE OR REPLACE TEMP TABLE vw_posts_repeats AS
SELECT count(*) FILTER (WHERE {same_in_file}) AS copies,
       count(*) FILTER (WHERE NOT ({same_in_file})) AS others
FROM temp.vw_posts_stage s JOIN temp.vw_posts_win w ON s.id = w.id AND s.pos <> w.pos;
-- Each version against the warehouse's current one: new, the same, newer (or as new: the
-- later arrival wins a tie), or older (not kept).
CREATE OR REPLACE TEMP TABLE vw_posts_cmp AS
SELECT w.*,
       CASE WHEN p.id IS NULL THEN 'new'
            WHEN {same_as_current} THEN 'same'
            WHEN coalesce(w.last_activity_date, '-infinity'::TIMESTAMP)
                 >= coalesce(p.last_activity_date, '-infinity'::TIMESTAMP) THEN 'newer'
            ELSE 'older' END AS verdict,
       CASE WHEN p.id IS NULL THEN w.creation_date
            ELSE greatest(p.valid_from, coalesce(w.last_activity_date, w.creation_date)) END
           AS new_valid_from
FROM temp.vw_posts_win w LEFT JOIN blog_analysis.posts p ON p.id = w.id;
-- Replaced versions keep their place in posts_history, then the new ones become current.
INSERT INTO blog_analysis.posts_history
SELECT p.*, c.new_valid_from, {file_id}
FROM blog_analysis.posts p JOIN temp.vw_posts_cmp c ON c.id = p.id
WHERE c.verdict = 'newer';
DELETE FROM blog_analysis.posts
WHERE id IN (SELECT id FROM temp.vw_posts_cmp WHERE verdict = 'newer');
INSERT INTO blog_analysis.posts
SELECT * EXCLUDE (pos, verdict, new_valid_from), new_valid_from, {file_id}
FROM temp.vw_posts_cmp
WHERE verdict IN ('new', 'newer');
