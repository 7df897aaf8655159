SELECT count(*) FROM blog_analysis.outlier_weeks
