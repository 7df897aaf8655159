-- Drops the group's staging tables once its transaction has ended.
DROP TABLE IF EXISTS temp.vw_group_votes;
DROP TABLE IF EXISTS temp.vw_group_rejects;
DROP TABLE IF EXISTS temp.vw_group_ids;
DROP TABLE IF EXISTS temp.vw_group_shas;
DROP TABLE IF EXISTS temp.vw_group_ledger;
DROP TABLE IF EXISTS temp.vw_group_ranges;
