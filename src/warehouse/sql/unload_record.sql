INSERT INTO blog_analysis.unloads VALUES (?, make_timestamp(?::BIGINT), ?, ?, ?, ?, ?, ?)
