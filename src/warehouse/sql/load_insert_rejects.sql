INSERT INTO blog_analysis.{rejects} SELECT * FROM temp.vw_rejects
