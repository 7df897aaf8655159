INSERT INTO blog_analysis.votes SELECT * FROM temp.vw_direct
