package spend

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The relay storage on bbolt: buckets inside the store's own bucket "ppredeem", each made
// on first use. Records are JSON; the expiry indexes are keyed by the big-endian Unix
// nanoseconds of the expiry followed by the record's key, so a purge walks them in order.
//
//	relays               relay ID (32 bytes)            → Relay (JSON)
//	relay_expiry         BE64(expires) || relay ID      → empty
//	idempotency          BE16(len scope) || scope || key → IdempotencyRecord (JSON)
//	idempotency_expiry   BE64(expires) || record key    → empty
//	relay_secrets        BE16(len purpose) || purpose || BE64(created) → secret
//	relay_issuing        key ID                          → BE64(last issuing)
var (
	boltRelaysBucket      = []byte("relays")
	boltRelayExpiryBucket = []byte("relay_expiry")
	boltIdemBucket        = []byte("idempotency")
	boltIdemExpiryBucket  = []byte("idempotency_expiry")
	boltSecretsBucket     = []byte("relay_secrets")
	boltIssuingBucket     = []byte("relay_issuing")
)

// relayBucket returns the named bucket of the store's own bucket, creating it in a write
// transaction; in a read transaction a missing bucket is nil.
func relayBucket(tx *bolt.Tx, name []byte) (*bolt.Bucket, error) {
	m := tx.Bucket(boltMetaBucket)
	if !tx.Writable() {
		return m.Bucket(name), nil
	}
	return m.CreateBucketIfNotExists(name)
}

func unixKey(t time.Time, rest []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(rest)), uint64(t.UnixNano())), rest...)
}

func lpKey(prefix string, rest []byte) []byte {
	k := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(prefix)+len(rest)), uint16(len(prefix)))
	return append(append(k, prefix...), rest...)
}

// update runs f in a write transaction, after checking ctx.
func (b *Bolt) update(ctx context.Context, what string, f func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.db.Update(f); err != nil {
		var se *storeError
		if errors.As(err, &se) || errors.Is(err, ErrRelayNotFound) || errors.Is(err, ErrClaimReported) {
			return err
		}
		return fmt.Errorf("spend: bolt: %s: %w", what, err)
	}
	return nil
}

// groupUpdate is update through bbolt's Batch (group commit of concurrent callers).
func (b *Bolt) groupUpdate(ctx context.Context, what string, f func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.db.Batch(f); err != nil {
		var se *storeError
		if errors.As(err, &se) || errors.Is(err, ErrUnknownKey) {
			return err
		}
		return fmt.Errorf("spend: bolt: %s: %w", what, err)
	}
	return nil
}

func (b *Bolt) view(ctx context.Context, what string, f func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.db.View(f); err != nil {
		var se *storeError
		if errors.As(err, &se) || errors.Is(err, ErrRelayNotFound) {
			return err
		}
		return fmt.Errorf("spend: bolt: %s: %w", what, err)
	}
	return nil
}

func getRelay(tx *bolt.Tx, id [32]byte) (*Relay, error) {
	bk, err := relayBucket(tx, boltRelaysBucket)
	if err != nil || bk == nil {
		return nil, err
	}
	v := bk.Get(id[:])
	if v == nil {
		return nil, nil
	}
	r := new(Relay)
	if err := json.Unmarshal(v, r); err != nil {
		return nil, newError(ErrStoreDamaged, "spend: a relay record is damaged: %v", err)
	}
	return r, nil
}

func putRelay(tx *bolt.Tx, r *Relay) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	bk, err := relayBucket(tx, boltRelaysBucket)
	if err != nil {
		return err
	}
	return bk.Put(r.ID[:], v)
}

// CreateRelay implements RelayStore.
func (b *Bolt) CreateRelay(ctx context.Context, r *Relay) error {
	if r.ClaimResult != "" {
		if err := checkClaimResult(r.ClaimResult); err != nil {
			return err
		}
	}
	return b.update(ctx, "create relay", func(tx *bolt.Tx) error {
		if have, err := getRelay(tx, r.ID); err != nil || have != nil {
			return cmpOrErr(err, errors.New("a relay with this ID exists"))
		}
		if err := putRelay(tx, r); err != nil {
			return err
		}
		exp, err := relayBucket(tx, boltRelayExpiryBucket)
		if err != nil {
			return err
		}
		return exp.Put(unixKey(r.ExpiresAt, r.ID[:]), []byte{})
	})
}

func cmpOrErr(err, other error) error {
	if err != nil {
		return err
	}
	return other
}

// liveRelay returns the relay if it exists and has not expired at now.
func liveRelay(tx *bolt.Tx, id [32]byte, now time.Time) (*Relay, error) {
	r, err := getRelay(tx, id)
	if err != nil {
		return nil, err
	}
	if r == nil || !r.ExpiresAt.After(now) {
		return nil, ErrRelayNotFound
	}
	return r, nil
}

// Relay implements RelayStore.
func (b *Bolt) Relay(ctx context.Context, id [32]byte, now time.Time) (*Relay, error) {
	var r *Relay
	err := b.view(ctx, "read relay", func(tx *bolt.Tx) error {
		var err error
		r, err = liveRelay(tx, id, now)
		return err
	})
	return r, err
}

// ReportClaim implements RelayStore.
func (b *Bolt) ReportClaim(ctx context.Context, id [32]byte, result, methodology string, now time.Time) error {
	if err := checkClaimResult(result); err != nil {
		return err
	}
	return b.update(ctx, "report claim", func(tx *bolt.Tx) error {
		r, err := liveRelay(tx, id, now)
		if err != nil {
			return err
		}
		if r.ClaimResult != "" {
			return ErrClaimReported
		}
		r.ClaimResult, r.Methodology, r.ReportedAt = result, methodology, now
		return putRelay(tx, r)
	})
}

// AnswerClaim implements RelayStore.
func (b *Bolt) AnswerClaim(ctx context.Context, id [32]byte, payload string) (string, error) {
	var stored string
	err := b.update(ctx, "record claim payload", func(tx *bolt.Tx) error {
		r, err := getRelay(tx, id)
		if err != nil {
			return err
		}
		if r == nil {
			return ErrRelayNotFound
		}
		if r.ClaimPayload == "" {
			r.ClaimPayload = payload
			if err := putRelay(tx, r); err != nil {
				return err
			}
		}
		stored = r.ClaimPayload
		return nil
	})
	return stored, err
}

// RedeemRelay implements RelayStore: one write transaction reads the relay, inserts the
// spend into the key's bucket if absent, and marks the relay, so both are committed by one
// fsync or neither is.
func (b *Bolt) RedeemRelay(ctx context.Context, rd Redemption) (RedeemOutcome, string, error) {
	if err := checkRedemption(rd); err != nil {
		return 0, "", err
	}
	var outcome RedeemOutcome
	var payload string
	// Like Spend, the caller's cancellation does not decide the outcome. Concurrent
	// redemptions share write transactions (bbolt's Batch: one fsync for all, after at most
	// MaxBatchDelay); a function whose batch fails is run again alone, so it sets its
	// outcome afresh on every run and writes only through tx.
	err := b.groupUpdate(context.WithoutCancel(ctx), "redeem relay", func(tx *bolt.Tx) error {
		outcome, payload = 0, ""
		r, err := liveRelay(tx, rd.RelayID, rd.Now)
		if errors.Is(err, ErrRelayNotFound) {
			outcome = RelayGone
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case r.ClaimResult != ClaimPassed:
			outcome = NotPassed
			return nil
		case r.Redeemed() && r.RedeemedKeyID == rd.KeyID && bytes.Equal(r.RedeemedSpendID, rd.SpendID):
			outcome, payload = Replayed, r.ClaimPayload
			_, err := saveIdempotent(tx, rd.Idempotency, rd.Now)
			return err
		case r.Redeemed():
			outcome = RelayRedeemedByOther
			return nil
		}
		bk := tx.Bucket([]byte(rd.KeyID))
		if bk == nil {
			return fmt.Errorf("spend: key %s: %w", rd.KeyID, ErrUnknownKey)
		}
		k := boltKey(rd.SpendID)
		if bk.Get(k) != nil {
			outcome = PassSpent
			return nil
		}
		if err := bk.Put(k, binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))); err != nil {
			return err
		}
		r.RedeemedKeyID, r.RedeemedSpendID, r.RedeemedAt, r.ClaimPayload = rd.KeyID, rd.SpendID, rd.Now, rd.Payload
		if err := putRelay(tx, r); err != nil {
			return err
		}
		outcome, payload = Redeemed, rd.Payload
		_, err = saveIdempotent(tx, rd.Idempotency, rd.Now)
		return err
	})
	if err != nil {
		return 0, "", err
	}
	return outcome, payload, nil
}

func idemKey(scope, key string) []byte { return lpKey(scope, []byte(key)) }

func getIdempotent(tx *bolt.Tx, scope, key string, now time.Time) (*IdempotencyRecord, error) {
	bk, err := relayBucket(tx, boltIdemBucket)
	if err != nil || bk == nil {
		return nil, err
	}
	v := bk.Get(idemKey(scope, key))
	if v == nil {
		return nil, nil
	}
	rec := new(IdempotencyRecord)
	if err := json.Unmarshal(v, rec); err != nil {
		return nil, newError(ErrStoreDamaged, "spend: an idempotency record is damaged: %v", err)
	}
	if !rec.ExpiresAt.After(now) {
		return nil, nil
	}
	return rec, nil
}

// saveIdempotent stores rec (nil: nothing) unless a live record holds its key, which it
// returns.
func saveIdempotent(tx *bolt.Tx, rec *IdempotencyRecord, now time.Time) (*IdempotencyRecord, error) {
	if rec == nil {
		return nil, nil
	}
	have, err := getIdempotent(tx, rec.Scope, rec.Key, now)
	if err != nil || have != nil {
		return have, err
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	bk, err := relayBucket(tx, boltIdemBucket)
	if err != nil {
		return nil, err
	}
	k := idemKey(rec.Scope, rec.Key)
	if err := bk.Put(k, v); err != nil {
		return nil, err
	}
	exp, err := relayBucket(tx, boltIdemExpiryBucket)
	if err != nil {
		return nil, err
	}
	return nil, exp.Put(unixKey(rec.ExpiresAt, k), []byte{})
}

// Idempotent implements RelayStore.
func (b *Bolt) Idempotent(ctx context.Context, scope, key string, now time.Time) (*IdempotencyRecord, error) {
	var rec *IdempotencyRecord
	err := b.view(ctx, "read idempotency record", func(tx *bolt.Tx) error {
		var err error
		rec, err = getIdempotent(tx, scope, key, now)
		return err
	})
	return rec, err
}

// SaveIdempotent implements RelayStore.
func (b *Bolt) SaveIdempotent(ctx context.Context, rec *IdempotencyRecord, now time.Time) (*IdempotencyRecord, error) {
	return b.AddUsageOnce(ctx, rec, "", "", 0, now)
}

// AddUsageOnce implements RelayStore: one write transaction.
func (b *Bolt) AddUsageOnce(ctx context.Context, rec *IdempotencyRecord, subject, item string, n int64, now time.Time) (*IdempotencyRecord, error) {
	counting, err := checkUsageOnce(rec, subject, item, n)
	if err != nil {
		return nil, err
	}
	var have *IdempotencyRecord
	err = b.update(ctx, "record idempotent answer", func(tx *bolt.Tx) error {
		var err error
		if have, err = saveIdempotent(tx, rec, now); err != nil || have != nil || !counting {
			return err
		}
		return addUsage(tx, subject, item, n)
	})
	return have, err
}

func secretPrefix(purpose string) []byte { return lpKey(purpose, nil) }

// RelaySecrets implements RelayStore.
func (b *Bolt) RelaySecrets(ctx context.Context, purpose string, initial []byte) ([]RelaySecret, error) {
	if err := checkSecret(purpose, initial); err != nil {
		return nil, err
	}
	var out []RelaySecret
	err := b.update(ctx, "relay secrets", func(tx *bolt.Tx) error {
		bk, err := relayBucket(tx, boltSecretsBucket)
		if err != nil {
			return err
		}
		prefix := secretPrefix(purpose)
		c := bk.Cursor()
		if k, _ := c.Seek(prefix); k == nil || !bytes.HasPrefix(k, prefix) {
			if err := bk.Put(append(prefix, unixKey(time.Now(), nil)...), initial); err != nil {
				return err
			}
		}
		out = nil
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) != len(prefix)+8 {
				return newError(ErrStoreDamaged, "spend: a relay secret record is damaged")
			}
			out = append(out, RelaySecret{Secret: bytes.Clone(v), CreatedAt: time.Unix(0, int64(binary.BigEndian.Uint64(k[len(prefix):]))).UTC()})
		}
		slices.Reverse(out) // newest first
		return nil
	})
	return out, err
}

// AddRelaySecret implements RelayStore.
func (b *Bolt) AddRelaySecret(ctx context.Context, purpose string, secret []byte) error {
	if err := checkSecret(purpose, secret); err != nil {
		return err
	}
	return b.update(ctx, "add relay secret", func(tx *bolt.Tx) error {
		bk, err := relayBucket(tx, boltSecretsBucket)
		if err != nil {
			return err
		}
		return bk.Put(append(secretPrefix(purpose), unixKey(time.Now(), nil)...), secret)
	})
}

// MarkIssuing implements RelayStore.
func (b *Bolt) MarkIssuing(ctx context.Context, keyIDs []string, now time.Time) error {
	ids, err := checkKeyIDs(keyIDs)
	if err != nil || len(ids) == 0 {
		return err
	}
	return b.update(ctx, "mark issuing keys", func(tx *bolt.Tx) error {
		bk, err := relayBucket(tx, boltIssuingBucket)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if v := bk.Get([]byte(id)); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) >= now.UnixNano() {
				continue
			}
			if err := bk.Put([]byte(id), binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano()))); err != nil {
				return err
			}
		}
		return nil
	})
}

// IssuingKeys implements RelayStore.
func (b *Bolt) IssuingKeys(ctx context.Context) ([]IssuingKey, error) {
	var out []IssuingKey
	err := b.view(ctx, "issuing keys", func(tx *bolt.Tx) error {
		bk, err := relayBucket(tx, boltIssuingBucket)
		if err != nil || bk == nil {
			return err
		}
		return bk.ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return newError(ErrStoreDamaged, "spend: the issuing record of key %s is damaged", k)
			}
			out = append(out, IssuingKey{KeyID: string(k), LastIssuingAt: time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()})
			return nil
		})
	})
	slices.SortFunc(out, func(a, b IssuingKey) int { return strings.Compare(a.KeyID, b.KeyID) })
	return out, err
}

// PurgeRelays implements RelayStore: it walks the expiry indexes from the oldest entry,
// purgeBatch entries per write transaction.
func (b *Bolt) PurgeRelays(ctx context.Context, now time.Time) (Purged, error) {
	var out Purged
	for _, t := range []struct {
		index, records []byte
		n              *int64
		key            func(k []byte) []byte // the record's key from an index key
	}{
		{boltRelayExpiryBucket, boltRelaysBucket, &out.Relays, func(k []byte) []byte { return k[8:] }},
		{boltIdemExpiryBucket, boltIdemBucket, &out.IdempotencyRecords, func(k []byte) []byte { return k[8:] }},
	} {
		for {
			var n int
			err := b.update(ctx, "purge", func(tx *bolt.Tx) error {
				n = 0
				index, err := relayBucket(tx, t.index)
				if err != nil {
					return err
				}
				records, err := relayBucket(tx, t.records)
				if err != nil {
					return err
				}
				limit := unixKey(now, nil)
				c := index.Cursor()
				for k, _ := c.First(); k != nil && n < purgeBatch && len(k) >= 8 && bytes.Compare(k[:8], limit) <= 0; k, _ = c.First() {
					rk := bytes.Clone(t.key(k))
					// The record may have been replaced by a newer one (an idempotency key
					// reused after expiry) whose own index entry is later: keep it.
					if v := records.Get(rk); v != nil && stillLive(v, now) {
						// nothing: only the stale index entry goes
					} else if err := records.Delete(rk); err != nil {
						return err
					} else {
						n++
					}
					if err := c.Delete(); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return out, err
			}
			*t.n += int64(n)
			if n < purgeBatch {
				break
			}
		}
	}
	return out, nil
}

// stillLive reports whether a stored record (a Relay or an IdempotencyRecord: both have
// ExpiresAt) expires after now.
func stillLive(v []byte, now time.Time) bool {
	var rec struct{ ExpiresAt time.Time }
	return json.Unmarshal(v, &rec) == nil && rec.ExpiresAt.After(now)
}
