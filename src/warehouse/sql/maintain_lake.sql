-- {older}: older_than => the retention cut-off, a TIMESTAMPTZ literal of votewatch's clock.
CALL ducklake_merge_adjacent_files('lake');
CALL ducklake_expire_snapshots('lake', {older});
CALL ducklake_cleanup_old_files('lake', {older});
CALL ducklake_delete_orphaned_files('lake', {older});
