-- The key registry. spend_keys remembers every key that ever had a partition of spent_tokens:
-- when it was first prepared and when it was retired (a tombstone: the row stays). With it,
-- spend.PrepareKeys refuses a retired key, and refuses to create again, empty, the partition
-- of a key whose partition is gone (restored from an old backup, dropped by hand): either
-- would make tokens the key already accepted redeemable again.
--
-- spend_key_holders records which running servers hold which keys, until expires_at: a
-- server renews its hold every few seconds (spend.Holding), and spend.Retire refuses a key
-- with an unexpired hold. Retire, PrepareKeys and Hold all run under one transaction
-- advisory lock (spend/postgres.go, ddlLockKey), so a retire and a starting server cannot
-- both succeed for the same key.
--
-- The backfill registers the partitions that exist when this migration runs: their
-- prepared_at is the migration's time (the real one was never recorded). A database
-- migrated while a server of an older ppredeem runs may get more partitions afterwards; the
-- next PrepareKeys registers them too.

-- +goose Up
CREATE TABLE spend_keys (
    key_id      text        PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{16}$'),
    prepared_at timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz,
    CHECK (retired_at >= prepared_at)
);

INSERT INTO spend_keys (key_id)
SELECT substr(c.relname, length('spent_tokens_') + 1)
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'spent_tokens'::regclass
  AND c.relname ~ '^spent_tokens_[0-9a-f]{16}$';

CREATE TABLE spend_key_holders (
    key_id     text        NOT NULL REFERENCES spend_keys (key_id),
    holder_id  text        NOT NULL CHECK (length(holder_id) BETWEEN 1 AND 200),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (key_id, holder_id)
);

-- +goose Down
-- Forgetting the registry would let a retired key, or a key whose partition was lost, be
-- prepared again with an empty partition, making its spent tokens redeemable again: this
-- refuses while any key is registered. To start over on purpose, drop the tables by hand.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM spend_keys LIMIT 1) THEN
        RAISE EXCEPTION 'spend_keys records the keys this store has held and retired: rolling back would forget them, and their spent tokens could become redeemable again';
    END IF;
END
$$;
-- +goose StatementEnd
DROP TABLE spend_key_holders;
DROP TABLE spend_keys;
