-- What the end of a posts file did (after posts_resolve.sql): new posts, replaced versions,
-- versions the warehouse had, older versions not kept, and the file's own repeats.
SELECT count(*) FILTER (WHERE verdict = 'new'),
       count(*) FILTER (WHERE verdict = 'newer'),
       count(*) FILTER (WHERE verdict = 'same'),
       count(*) FILTER (WHERE verdict = 'older'),
       (SELECT copies FROM temp.vw_posts_repeats),
       (SELECT others FROM temp.vw_posts_repeats)
FROM temp.vw_posts_cmp
