-- On DuckLake, the file's rows that are new for sure collect here (the columns of votes) and
-- go into the lake with one INSERT at commit: one Parquet file per load, not one per flush.
CREATE OR REPLACE TEMP TABLE vw_direct (
    id            BIGINT NOT NULL,
    post_id       BIGINT NOT NULL,
    vote_type_id  SMALLINT NOT NULL,
    user_id       BIGINT,
    bounty_amount INTEGER,
    creation_date TIMESTAMP NOT NULL,
    file_id       BIGINT NOT NULL
);
