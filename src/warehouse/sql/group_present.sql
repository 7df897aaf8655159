-- The warehouse's rows for the group's Ids that may be there (at or below its highest Id),
-- by an inner join whose build side is the group's few Ids: the scan of votes gets their
-- range as a filter, so zone maps skip the rest however large votes grows.
SELECT v.id, v.post_id, v.vote_type_id, v.user_id, v.bounty_amount, epoch_us(v.creation_date)
FROM temp.vw_group_ids g
JOIN blog_analysis.votes v ON v.id = g.id
