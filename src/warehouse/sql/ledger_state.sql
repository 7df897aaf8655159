SELECT coalesce(max(id), 0) + 1, coalesce(max(max_vote_id), 0),
       count(*) FILTER (WHERE {loaded_content}) > 0
FROM blog_analysis.ingested_files
