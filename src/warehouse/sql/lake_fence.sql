-- The fence: every write transaction on a lake updates the one row, so two that overlap
-- conflict.
UPDATE blog_analysis.load_fence SET n = n + 1
