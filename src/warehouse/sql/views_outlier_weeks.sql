SELECT "Year", "WeekNumber", "VoteCount" FROM blog_analysis.outlier_weeks
