-- The store's identity: one row, made here and only here, so that a PostgreSQL spent-token
-- store exists because `ppredeem migrate up` created it on purpose. The servers and the check
-- command read it (spend.(*Postgres).Identity, CheckSchema): a database with the schema but
-- without this row was not made by migrate up, or lost the row, and is refused. probed_at is
-- written by the readiness probe (spend.(*Postgres).Ready) when no spend shows that writes
-- work: a real write and commit, at most once a second per server.
-- gen_random_uuid() is built in since PostgreSQL 13:
-- https://www.postgresql.org/docs/15/functions-uuid.html

-- +goose Up
CREATE TABLE spend_store (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    store_id   uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now(),
    probed_at  timestamptz
);
INSERT INTO spend_store DEFAULT VALUES;

-- +goose Down
DROP TABLE spend_store;
