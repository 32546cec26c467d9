-- Durable usage counters: how many of an item a subject has used, e.g. the Privacy Passes
-- issued to one API key per claim type (billing, rpc/relay) or the tokens issued under one
-- attester key. One row per (subject, item); spend.(*Postgres).AddUsage adds to it with one
-- INSERT ... ON CONFLICT DO UPDATE, a single autocommit statement, so a count is durable when
-- AddUsage returns and two concurrent additions never lose one another (the row lock taken
-- by the conflicting update serialises them).
-- INSERT ... ON CONFLICT: https://www.postgresql.org/docs/15/sql-insert.html#SQL-ON-CONFLICT

-- +goose Up
CREATE TABLE usage_counts (
    subject text   NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    item    text   NOT NULL CHECK (length(item) BETWEEN 1 AND 200),
    count   bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (subject, item)
);

-- +goose Down
-- The counts are what customers are billed by: refuse to forget them.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM usage_counts LIMIT 1) THEN
        RAISE EXCEPTION 'usage_counts holds usage counts (billing): rolling back would forget them; export them and delete the rows by hand first';
    END IF;
END
$$;
-- +goose StatementEnd
DROP TABLE usage_counts;
