SELECT id, post_id, vote_type_id, user_id, bounty_amount, creation_date, ?::BIGINT AS file_id FROM blog_analysis.votes WHERE id BETWEEN ? AND ?
