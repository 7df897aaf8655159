-- Per-connection staging for the file being loaded; validated rows land here first.
-- suspect: the Id is not above every Id on earlier lines of the file, so the row may repeat
-- one of them. In a file sorted by Id no row is suspect.
CREATE OR REPLACE TEMP TABLE vw_stage (
    line          BIGINT NOT NULL,
    id            BIGINT NOT NULL,
    post_id       BIGINT NOT NULL,
    vote_type_id  SMALLINT NOT NULL,
    user_id       BIGINT,
    bounty_amount INTEGER,
    creation_date TIMESTAMP NOT NULL,
    suspect       BOOLEAN NOT NULL
);
