-- Spent tokens, one row per (key, token). The primary key is the double-spend check: the
-- redemption path inserts with ON CONFLICT DO NOTHING and the unique index decides which of
-- two concurrent spends wins (see spend/doc.go).
--
-- The table is partitioned by key ID (LIST). Partitions are created at run time by
-- spend.PrepareKeys as spent_tokens_<keyid> and removed by spend.Retire with
-- DETACH PARTITION + DROP TABLE, so retiring a key costs O(1) instead of a DELETE of every
-- row. A row whose key has no partition is rejected (SQLSTATE 23514), which the store reports
-- as spend.ErrUnknownKey: an unprepared key can never be "spent" by accident.
-- PostgreSQL partitioning: https://www.postgresql.org/docs/15/ddl-partitioning.html

-- +goose Up
CREATE TABLE spent_tokens (
    key_id   text        NOT NULL,
    token    bytea       NOT NULL,
    spent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key_id, token)
) PARTITION BY LIST (key_id);

-- +goose Down
-- Dropping recorded spends would make every past token redeemable again, so
-- this refuses while any is recorded. To start over on purpose, retire the
-- keys first (ppredeem keys retire) or drop the table by hand.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM spent_tokens LIMIT 1) THEN
        RAISE EXCEPTION 'spent_tokens holds spent tokens: rolling back would make them redeemable again; retire the keys first (ppredeem keys retire)';
    END IF;
END
$$;
-- +goose StatementEnd
DROP TABLE spent_tokens;
