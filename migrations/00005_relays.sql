-- The relay provider API (rpc/relay): relay sessions, idempotency records, the provider's
-- shared secrets and the issuing history of the Privacy Pass keys. Spent passes are not
-- here: they go into spent_tokens, in the partition of the RSA key's store ID, like legacy
-- tokens (spend/doc.go).
--
-- relays: one row per relay session, keyed by SHA-256 of the relay token (the token itself
-- is never stored, nor the relay secret: only its SHA-256). claim_result is set once by the
-- verifier (or at creation for a sandbox relay); redeemed_* once, by relay_redeem below, in
-- the same transaction as the pass's spend; claim_payload is the exact payload answered
-- first, so that a replay answers byte for byte the same. Expired rows are deleted by
-- spend.(*Postgres).PurgeRelays (an index on expires_at keeps that cheap); a relay is
-- written a few times in its life and lives a day by default, so row deletes suit it
-- better than partitions, which suit the append-only spent_tokens.
--
-- idempotency_records: the first complete answer of a request sent with an Idempotency-Key,
-- per scope (an API key's issuance, a relay's claims), kept until expires_at.
--
-- relay_secrets: the challenge MAC keys and the access-token signing keys, shared by every
-- server on the database; the newest per purpose signs, all are accepted.
--
-- relay_issuing_keys: when each Privacy Pass key was last seen issuing. A key that stopped
-- issuing at t signed no pass that lives past t + 2 h + the pass lifetime; after that its
-- partition of spent_tokens is retired (spend.Retire, which refuses while a server holds it).

-- +goose Up
CREATE TABLE relays (
    id                bytea       PRIMARY KEY CHECK (length(id) = 32),
    secret_hash       bytea       NOT NULL CHECK (length(secret_hash) = 32),
    claim_type        text        NOT NULL,
    encryption_key    bytea,
    sandbox           boolean     NOT NULL,
    created_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    claim_result      text        CHECK (claim_result IN ('passed', 'failed')),
    methodology       text,
    reported_at       timestamptz,
    redeemed_key_id   text,
    redeemed_spend_id bytea,
    redeemed_at       timestamptz,
    claim_payload     text,
    CHECK ((redeemed_key_id IS NULL) = (redeemed_spend_id IS NULL)),
    CHECK (redeemed_key_id IS NULL OR claim_result = 'passed'),
    CHECK ((claim_result IS NULL) = (reported_at IS NULL))
);
CREATE INDEX relays_expires_at ON relays (expires_at);

CREATE TABLE idempotency_records (
    scope        text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    status       integer     NOT NULL,
    body         bytea       NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_records_expires_at ON idempotency_records (expires_at);

CREATE TABLE relay_secrets (
    purpose    text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    secret     bytea       NOT NULL CHECK (length(secret) BETWEEN 32 AND 64),
    PRIMARY KEY (purpose, created_at)
);

CREATE TABLE relay_issuing_keys (
    key_id          text        PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{16}$'),
    last_issuing_at timestamptz NOT NULL
);

-- relay_redeem spends a pass and marks the relay redeemed by it, in the caller's one
-- transaction (one round trip: SELECT * FROM relay_redeem(...) as an autocommit statement).
-- The relay row is locked first (FOR UPDATE), so two passes racing for one relay take turns
-- and the second sees the first's mark; the spent_tokens primary key decides between two
-- relays racing for one pass (the second INSERT waits for the first's commit, then does
-- nothing). Outcomes:
--   relay_gone      no such relay, or expired at p_now: nothing written
--   not_passed      the claim is not reported passed: nothing written
--   replayed        the relay was redeemed by this very pass: its payload again
--   relay_redeemed  the relay was redeemed by another pass: nothing written
--   pass_spent      the pass is already spent (elsewhere): nothing written
--   redeemed        the pass is spent, the relay marked, the payload stored
-- With p_idem_key, the answer p_idem_body is recorded for redeemed and replayed (kept if a
-- record exists). A key without a partition raises SQLSTATE 23514 and rolls everything back.
-- +goose StatementBegin
CREATE FUNCTION relay_redeem(
    p_id bytea, p_key_id text, p_spend_id bytea, p_payload text, p_now timestamptz,
    p_idem_scope text, p_idem_key text, p_idem_hash bytea, p_idem_body bytea, p_idem_expires timestamptz)
RETURNS TABLE (o_outcome text, o_payload text)
LANGUAGE plpgsql AS $$
DECLARE
    r relays%ROWTYPE;
BEGIN
    SELECT * INTO r FROM relays WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR r.expires_at <= p_now THEN
        RETURN QUERY SELECT 'relay_gone'::text, NULL::text;
        RETURN;
    END IF;
    IF r.claim_result IS DISTINCT FROM 'passed' THEN
        RETURN QUERY SELECT 'not_passed'::text, NULL::text;
        RETURN;
    END IF;
    IF r.redeemed_key_id IS NOT NULL THEN
        IF r.redeemed_key_id = p_key_id AND r.redeemed_spend_id = p_spend_id THEN
            IF p_idem_key IS NOT NULL THEN
                INSERT INTO idempotency_records (scope, key, request_hash, status, body, expires_at)
                VALUES (p_idem_scope, p_idem_key, p_idem_hash, 200, p_idem_body, p_idem_expires)
                ON CONFLICT DO NOTHING;
            END IF;
            RETURN QUERY SELECT 'replayed'::text, r.claim_payload;
        ELSE
            RETURN QUERY SELECT 'relay_redeemed'::text, NULL::text;
        END IF;
        RETURN;
    END IF;
    INSERT INTO spent_tokens (key_id, token) VALUES (p_key_id, p_spend_id) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'pass_spent'::text, NULL::text;
        RETURN;
    END IF;
    UPDATE relays SET redeemed_key_id = p_key_id, redeemed_spend_id = p_spend_id, redeemed_at = p_now,
        claim_payload = p_payload
    WHERE id = p_id;
    IF p_idem_key IS NOT NULL THEN
        INSERT INTO idempotency_records (scope, key, request_hash, status, body, expires_at)
        VALUES (p_idem_scope, p_idem_key, p_idem_hash, 200, p_idem_body, p_idem_expires)
        ON CONFLICT (scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status,
            body = EXCLUDED.body, expires_at = EXCLUDED.expires_at
        WHERE idempotency_records.expires_at <= p_now;
    END IF;
    RETURN QUERY SELECT 'redeemed'::text, p_payload;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- A redeemed relay and its claim are what a platform paid for, and the secrets sign passes
-- still in circulation: refuse to forget them.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM relays LIMIT 1) OR EXISTS (SELECT 1 FROM relay_secrets LIMIT 1) THEN
        RAISE EXCEPTION 'relays or relay_secrets hold data: rolling back would forget relays and the keys of passes in circulation; delete the rows by hand first';
    END IF;
END
$$;
-- +goose StatementEnd
DROP FUNCTION relay_redeem(bytea, text, bytea, text, timestamptz, text, text, bytea, bytea, timestamptz);
DROP TABLE relay_issuing_keys;
DROP TABLE relay_secrets;
DROP TABLE idempotency_records;
DROP TABLE relays;
