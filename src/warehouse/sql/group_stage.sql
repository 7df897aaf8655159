-- The shared transaction of a group of small files (group commit): what the files bring is
-- gathered here, then written with one statement per table. The group's Ids at or below the
-- warehouse's highest (to look up) and its content hashes (to find earlier loads) too.
CREATE OR REPLACE TEMP TABLE vw_group_votes AS SELECT * FROM blog_analysis.votes LIMIT 0;
CREATE OR REPLACE TEMP TABLE vw_group_rejects AS SELECT * FROM blog_analysis.rejected_votes LIMIT 0;
CREATE OR REPLACE TEMP TABLE vw_group_ids (id BIGINT NOT NULL);
CREATE OR REPLACE TEMP TABLE vw_group_shas (sha256 VARCHAR NOT NULL);
