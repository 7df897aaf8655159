CALL ducklake_add_data_files('lake', 'votes', ?, schema => 'blog_analysis')
