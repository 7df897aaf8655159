-- The group's new votes and its rejects, each with one statement.
INSERT INTO blog_analysis.votes SELECT * FROM temp.vw_group_votes;
INSERT INTO blog_analysis.rejected_votes SELECT * FROM temp.vw_group_rejects;
