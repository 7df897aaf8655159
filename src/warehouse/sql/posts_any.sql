SELECT EXISTS (SELECT 1 FROM blog_analysis.posts)
