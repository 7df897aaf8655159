-- The posts dataset's tables and the analysts' views that read posts (after
-- schema_tables.sql, on both kinds of warehouse). Every statement is idempotent. On DuckLake
-- the views are created once (`CREATE VIEW IF NOT EXISTS`).

-- One row per post Id: its current version, the one with the latest LastActivityDate (ties:
-- the later arrival). valid_from: since when this version holds (the post's CreationDate for
-- its first version, else the LastActivityDate that replaced the one before); file_id: the
-- ledger row that brought it. Columns follow the Posts export, in snake_case.
CREATE TABLE IF NOT EXISTS blog_analysis.posts (
    id                   BIGINT NOT NULL,
    post_type_id         SMALLINT NOT NULL,
    creation_date        TIMESTAMP NOT NULL,
    parent_id            BIGINT,
    accepted_answer_id   BIGINT,
    score                INTEGER,
    view_count           INTEGER,
    body                 VARCHAR,
    owner_user_id        BIGINT,
    last_editor_user_id  BIGINT,
    last_edit_date       TIMESTAMP,
    last_activity_date   TIMESTAMP,
    title                VARCHAR,
    tags                 VARCHAR,
    answer_count         INTEGER,
    comment_count        INTEGER,
    favorite_count       INTEGER,
    closed_date          TIMESTAMP,
    community_owned_date TIMESTAMP,
    content_license      VARCHAR,
    valid_from           TIMESTAMP NOT NULL,
    file_id              BIGINT NOT NULL
);

-- The versions a later one replaced: the columns of posts, then until when the version held
-- (valid_to, the replacing version's valid_from) and the ledger row that replaced it.
CREATE TABLE IF NOT EXISTS blog_analysis.posts_history AS
SELECT *, CAST(NULL AS TIMESTAMP) AS valid_to, CAST(NULL AS BIGINT) AS replaced_by_file_id
FROM blog_analysis.posts LIMIT 0;

-- Records of posts files that are not posts: the columns of rejected_votes.
CREATE TABLE IF NOT EXISTS blog_analysis.rejected_posts AS
SELECT * FROM blog_analysis.rejected_votes LIMIT 0;

-- Votes per post per week (year of the vote's CreationDate, strftime %W), for the posts
-- present in posts only; kept by every change to votes and every new post in the same
-- transaction, so that the view below reads it and never joins all of votes.
CREATE TABLE IF NOT EXISTS blog_analysis.weekly_post_votes (
    year       BIGINT NOT NULL,
    week       INTEGER NOT NULL,
    post_id    BIGINT NOT NULL,
    vote_count BIGINT NOT NULL
);

-- Per week: the posts (present in posts) that had votes, their votes, and the mean.
CREATE OR REPLACE VIEW blog_analysis.mean_votes_per_post_per_week AS
SELECT year AS "Year", week AS "WeekNumber", count(*) AS "PostCount",
       sum(vote_count)::BIGINT AS "VoteCount",
       sum(vote_count)::DOUBLE / count(*) AS "MeanVotesPerPost"
FROM blog_analysis.weekly_post_votes
GROUP BY year, week
ORDER BY "Year", "WeekNumber";

-- Every version of every post with the interval it held: the current ones (valid_to NULL)
-- and the replaced ones. What a post looked like at time T: valid_from <= T and
-- (valid_to IS NULL OR T < valid_to).
CREATE OR REPLACE VIEW blog_analysis.post_versions AS
SELECT *, NULL::TIMESTAMP AS valid_to, NULL::BIGINT AS replaced_by_file_id
FROM blog_analysis.posts
UNION ALL
SELECT * FROM blog_analysis.posts_history;
