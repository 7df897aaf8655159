-- Per-connection staging for the file being loaded. Rows whose Id is above every Id before
-- them (in the warehouse and earlier in the file) are new for sure and go straight into
-- votes; only the others land here to be resolved at the end of the file, exact repeats
-- folded into their first copy.
CREATE OR REPLACE TEMP TABLE vw_stage (
    pos           BIGINT NOT NULL, -- position of the record in the file
    id            BIGINT NOT NULL,
    post_id       BIGINT NOT NULL,
    vote_type_id  SMALLINT NOT NULL,
    user_id       BIGINT,
    bounty_amount INTEGER,
    creation_date TIMESTAMP NOT NULL,
    copies        BIGINT NOT NULL -- exact repeats of this row folded into it (itself included)
);
-- The ledger id of the file being loaded, and the highest vote Id before it, for the
-- statements below.
CREATE OR REPLACE TEMP TABLE vw_file (id BIGINT NOT NULL, max_id_before BIGINT NOT NULL);
