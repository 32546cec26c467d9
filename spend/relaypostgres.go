package spend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The relay storage on PostgreSQL: migrations/00005_relays.sql.

// CreateRelay implements RelayStore.
func (p *Postgres) CreateRelay(ctx context.Context, r *Relay) error {
	conn, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var result, methodology *string
	var reported *time.Time
	if r.ClaimResult != "" {
		if err := checkClaimResult(r.ClaimResult); err != nil {
			return err
		}
		result, reported = &r.ClaimResult, &r.ReportedAt
		if r.Methodology != "" {
			methodology = &r.Methodology
		}
	}
	_, err = conn.Exec(ctx, `INSERT INTO relays (id, secret_hash, claim_type, encryption_key, sandbox, created_at, expires_at,
		claim_result, methodology, reported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		r.ID[:], r.SecretHash[:], r.ClaimType, r.EncryptionKey, r.Sandbox, r.CreatedAt, r.ExpiresAt, result, methodology, reported)
	if err != nil {
		return fmt.Errorf("spend: create relay: %w", mapUndefinedTable(err))
	}
	return nil
}

const relayColumns = `secret_hash, claim_type, encryption_key, sandbox, created_at, expires_at, claim_result,
	methodology, reported_at, redeemed_key_id, redeemed_spend_id, redeemed_at, claim_payload`

// Relay implements RelayStore.
func (p *Postgres) Relay(ctx context.Context, id [32]byte, now time.Time) (*Relay, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	r := &Relay{ID: id}
	var secretHash []byte
	var result, methodology, keyID, payload *string
	var reported, redeemed *time.Time
	err = conn.QueryRow(ctx, `SELECT `+relayColumns+` FROM relays WHERE id = $1 AND expires_at > $2`, id[:], now).Scan(
		&secretHash, &r.ClaimType, &r.EncryptionKey, &r.Sandbox, &r.CreatedAt, &r.ExpiresAt, &result,
		&methodology, &reported, &keyID, &r.RedeemedSpendID, &redeemed, &payload)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrRelayNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("spend: read relay: %w", mapUndefinedTable(err))
	}
	copy(r.SecretHash[:], secretHash)
	r.ClaimResult, r.Methodology, r.RedeemedKeyID, r.ClaimPayload = deref(result), deref(methodology), deref(keyID), deref(payload)
	r.ReportedAt, r.RedeemedAt = derefTime(reported), derefTime(redeemed)
	r.CreatedAt, r.ExpiresAt = r.CreatedAt.UTC(), r.ExpiresAt.UTC()
	return r, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// ReportClaim implements RelayStore: one UPDATE whose WHERE admits only a live relay without
// a result, so of two reports exactly one wins (the second re-checks the WHERE after the
// first commits); a relay it did not update is then told apart by a read.
func (p *Postgres) ReportClaim(ctx context.Context, id [32]byte, result, methodology string, now time.Time) error {
	if err := checkClaimResult(result); err != nil {
		return err
	}
	conn, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var m *string
	if methodology != "" {
		m = &methodology
	}
	tag, err := conn.Exec(ctx, `UPDATE relays SET claim_result = $2, methodology = $3, reported_at = $4
		WHERE id = $1 AND expires_at > $4 AND claim_result IS NULL`, id[:], result, m, now)
	if err != nil {
		return fmt.Errorf("spend: report claim: %w", mapUndefinedTable(err))
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var live bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM relays WHERE id = $1 AND expires_at > $2)`, id[:], now).Scan(&live)
	switch {
	case err != nil:
		return fmt.Errorf("spend: report claim: %w", mapUndefinedTable(err))
	case live:
		return ErrClaimReported
	}
	return ErrRelayNotFound
}

// AnswerClaim implements RelayStore: the UPDATE stores the payload only where none is; when
// it stored nothing, a read (a new snapshot, after any concurrent writer committed) returns
// the stored one.
func (p *Postgres) AnswerClaim(ctx context.Context, id [32]byte, payload string) (string, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Release()
	tag, err := conn.Exec(ctx, `UPDATE relays SET claim_payload = $2 WHERE id = $1 AND claim_payload IS NULL`, id[:], payload)
	if err != nil {
		return "", fmt.Errorf("spend: record claim payload: %w", mapUndefinedTable(err))
	}
	if tag.RowsAffected() == 1 {
		return payload, nil
	}
	var stored *string
	err = conn.QueryRow(ctx, `SELECT claim_payload FROM relays WHERE id = $1`, id[:]).Scan(&stored)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", ErrRelayNotFound
	case err != nil:
		return "", fmt.Errorf("spend: record claim payload: %w", mapUndefinedTable(err))
	case stored == nil:
		return "", errors.New("spend: record claim payload: no payload stored")
	}
	return *stored, nil
}

// RedeemRelay implements RelayStore: one call of the SQL function relay_redeem
// (migrations/00005) in a transaction of its own or, under load, of a batch of calls
// committed together (relaybatch.go): the spend and the mark commit together or not at
// all, and the answer returns after COMMIT. Like Spend, it runs under the store's spend
// timeout, detached from the caller: a client hanging up does not decide the outcome.
func (p *Postgres) RedeemRelay(_ context.Context, r Redemption) (RedeemOutcome, string, error) {
	if err := checkRedemption(r); err != nil {
		return 0, "", err
	}
	return p.relayBatch().redeem(r)
}

// Idempotent implements RelayStore.
func (p *Postgres) Idempotent(ctx context.Context, scope, key string, now time.Time) (*IdempotencyRecord, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	return queryIdempotent(ctx, conn, scope, key, now)
}

func queryIdempotent(ctx context.Context, q querier, scope, key string, now time.Time) (*IdempotencyRecord, error) {
	rows, err := q.Query(ctx, `SELECT request_hash, status, body, expires_at FROM idempotency_records
		WHERE scope = $1 AND key = $2 AND expires_at > $3`, scope, key, now)
	if err != nil {
		return nil, fmt.Errorf("spend: read idempotency record: %w", mapUndefinedTable(err))
	}
	rec := &IdempotencyRecord{Scope: scope, Key: key}
	var hash []byte
	found := false
	_, err = pgx.ForEachRow(rows, []any{&hash, &rec.Status, &rec.Body, &rec.ExpiresAt}, func() error {
		found = true
		copy(rec.RequestHash[:], hash)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("spend: read idempotency record: %w", mapUndefinedTable(err))
	}
	if !found {
		return nil, nil
	}
	rec.ExpiresAt = rec.ExpiresAt.UTC()
	return rec, nil
}

// saveIdempotentSQL stores a record unless a live one holds its (scope, key); an expired one
// is replaced. RETURNING says whether this statement wrote it.
const saveIdempotentSQL = `INSERT INTO idempotency_records (scope, key, request_hash, status, body, expires_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status,
	body = EXCLUDED.body, expires_at = EXCLUDED.expires_at
WHERE idempotency_records.expires_at <= $7
RETURNING true`

// SaveIdempotent implements RelayStore.
func (p *Postgres) SaveIdempotent(ctx context.Context, rec *IdempotencyRecord, now time.Time) (*IdempotencyRecord, error) {
	return p.AddUsageOnce(ctx, rec, "", "", 0, now)
}

// AddUsageOnce implements RelayStore: one statement stores the record and, only if it did,
// adds to the counter (data-modifying WITH queries commit together); when a live record was
// there, a second statement reads it.
// WITH queries: https://www.postgresql.org/docs/15/queries-with.html#QUERIES-WITH-MODIFYING
func (p *Postgres) AddUsageOnce(ctx context.Context, rec *IdempotencyRecord, subject, item string, n int64, now time.Time) (*IdempotencyRecord, error) {
	counting, err := checkUsageOnce(rec, subject, item, n)
	if err != nil {
		return nil, err
	}
	conn, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	body := rec.Body
	if body == nil {
		body = []byte{}
	}
	args := []any{rec.Scope, rec.Key, rec.RequestHash[:], rec.Status, body, rec.ExpiresAt, now}
	q := saveIdempotentSQL
	if counting {
		q = `WITH ins AS (` + saveIdempotentSQL + `),
		used AS (INSERT INTO usage_counts (subject, item, count) SELECT $8, $9, $10 WHERE EXISTS (SELECT 1 FROM ins)
			ON CONFLICT (subject, item) DO UPDATE SET count = usage_counts.count + EXCLUDED.count RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM ins) AND EXISTS (SELECT 1 FROM used)`
		args = append(args, subject, item, n)
	}
	var stored bool
	err = conn.QueryRow(ctx, q, args...).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		stored = false
	} else if err != nil {
		return nil, fmt.Errorf("spend: record idempotent answer: %w", mapUsageErr(err))
	}
	if stored {
		return nil, nil
	}
	// A live record holds the key (its writer committed before our statement returned: the
	// conflicting insert waited for it). Read it; it cannot have expired in between unless
	// the clocks jump, in which case the caller retries.
	have, err := queryIdempotent(ctx, conn, rec.Scope, rec.Key, now)
	if err != nil {
		return nil, err
	}
	if have == nil {
		return nil, errors.New("spend: idempotency record vanished while being read; retry")
	}
	return have, nil
}

// RelaySecrets implements RelayStore: the first secret is inserted only while none of its
// purpose exists, under a transaction advisory lock per purpose, so servers starting together
// agree on one.
func (p *Postgres) RelaySecrets(ctx context.Context, purpose string, initial []byte) ([]RelaySecret, error) {
	if err := checkSecret(purpose, initial); err != nil {
		return nil, err
	}
	conn, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	var out []RelaySecret
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('ppredeem relay secret ' || $1, 0))`, purpose); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO relay_secrets (purpose, secret) SELECT $1, $2
			WHERE NOT EXISTS (SELECT 1 FROM relay_secrets WHERE purpose = $1)`, purpose, initial); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT secret, created_at FROM relay_secrets WHERE purpose = $1 ORDER BY created_at DESC`, purpose)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[RelaySecret])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("spend: relay secrets: %w", mapUndefinedTable(err))
	}
	return out, nil
}

// AddRelaySecret implements RelayStore.
func (p *Postgres) AddRelaySecret(ctx context.Context, purpose string, secret []byte) error {
	if err := checkSecret(purpose, secret); err != nil {
		return err
	}
	conn, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `INSERT INTO relay_secrets (purpose, secret) VALUES ($1, $2)`, purpose, secret); err != nil {
		return fmt.Errorf("spend: add relay secret: %w", mapUndefinedTable(err))
	}
	return nil
}

// MarkIssuing implements RelayStore.
func (p *Postgres) MarkIssuing(ctx context.Context, keyIDs []string, now time.Time) error {
	ids, err := checkKeyIDs(keyIDs)
	if err != nil || len(ids) == 0 {
		return err
	}
	conn, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	_, err = conn.Exec(ctx, `INSERT INTO relay_issuing_keys (key_id, last_issuing_at) SELECT unnest($1::text[]), $2
		ON CONFLICT (key_id) DO UPDATE SET last_issuing_at = greatest(relay_issuing_keys.last_issuing_at, EXCLUDED.last_issuing_at)`, ids, now)
	if err != nil {
		return fmt.Errorf("spend: mark issuing keys: %w", mapUndefinedTable(err))
	}
	return nil
}

// IssuingKeys implements RelayStore.
func (p *Postgres) IssuingKeys(ctx context.Context) ([]IssuingKey, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	rows, err := conn.Query(ctx, `SELECT key_id, last_issuing_at FROM relay_issuing_keys ORDER BY key_id`)
	if err != nil {
		return nil, fmt.Errorf("spend: issuing keys: %w", mapUndefinedTable(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[IssuingKey])
	if err != nil {
		return nil, fmt.Errorf("spend: issuing keys: %w", mapUndefinedTable(err))
	}
	for i := range out {
		out[i].LastIssuingAt = out[i].LastIssuingAt.UTC()
	}
	return out, nil
}

// purgeBatch bounds one DELETE of PurgeRelays, so that a large backlog is dropped in short
// transactions that never hold many row locks.
const purgeBatch = 10000

// PurgeRelays implements RelayStore: expired relays and idempotency records, by their
// expires_at index, purgeBatch rows per statement.
func (p *Postgres) PurgeRelays(ctx context.Context, now time.Time) (Purged, error) {
	var out Purged
	for _, t := range []struct {
		table string
		n     *int64
	}{{"relays", &out.Relays}, {"idempotency_records", &out.IdempotencyRecords}} {
		for {
			conn, err := p.acquire(ctx)
			if err != nil {
				return out, err
			}
			// The table name is one of two constants.
			tag, err := conn.Exec(ctx, `DELETE FROM `+t.table+` WHERE ctid = ANY (ARRAY(
				SELECT ctid FROM `+t.table+` WHERE expires_at <= $1 LIMIT $2))`, now, purgeBatch)
			conn.Release()
			if err != nil {
				return out, fmt.Errorf("spend: purge %s: %w", t.table, mapUndefinedTable(err))
			}
			*t.n += tag.RowsAffected()
			if tag.RowsAffected() < purgeBatch {
				break
			}
		}
	}
	return out, nil
}
