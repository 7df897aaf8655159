INSERT INTO blog_analysis.rejected_votes SELECT * FROM temp.vw_rejects
