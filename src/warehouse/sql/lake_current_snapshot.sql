SELECT id FROM lake.current_snapshot()
