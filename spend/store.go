package spend

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Callers compare with errors.Is; every other error from a Store means
// "internal error": the spend is not known to be committed and must never be reported as a
// success (see the package documentation). The errors carry the whole story for an operator
// (which key, when, what to do); the sentinels only classify them.
var (
	// ErrAlreadySpent reports that the token was already recorded under the key.
	ErrAlreadySpent = errors.New("token already spent")
	// ErrUnknownKey reports that no spent-token storage exists for the key (never prepared,
	// or retired). It is an internal error for the server, never a success.
	ErrUnknownKey = errors.New("no spent-token storage prepared for key")
	// ErrSchemaBehind reports that the PostgreSQL schema is older than this binary.
	ErrSchemaBehind = errors.New("database schema is behind: run `ppredeem migrate up`")
	// ErrKeyRetired reports a key that was retired: its records are gone, so it must never
	// be used again (PrepareKeys, Hold), and retiring it again changes nothing.
	ErrKeyRetired = errors.New("key retired")
	// ErrKeyStorageLost reports a key the store has held before whose partition (bucket) is
	// gone: creating it again empty would make its spent tokens redeemable again.
	ErrKeyStorageLost = errors.New("spent records of key missing")
	// ErrKeyHeld reports that Retire was refused because a running server holds the key.
	ErrKeyHeld = errors.New("key held by a running server")
	// ErrNoStore reports that there is no store where one was expected, or a place that is
	// not a store: an embedded store's directory without a store in it, or a PostgreSQL
	// database without the store identity that `ppredeem migrate up` creates.
	ErrNoStore = errors.New("no spent-token store")
	// ErrStoreLost reports an embedded store whose file is missing or empty although the
	// directory's marker says a store was created there.
	ErrStoreLost = errors.New("spent-token store file missing")
	// ErrStoreDamaged reports a store that is damaged or inconsistent (OpenBolt, Check).
	ErrStoreDamaged = errors.New("spent-token store damaged")
	// ErrStoreInUse reports an embedded store file locked by another process.
	ErrStoreInUse = errors.New("spent-token store in use by another process")
)

// storeError is an error with a message of its own, classified by a sentinel.
type storeError struct {
	sentinel error
	msg      string
}

func (e *storeError) Error() string { return e.msg }
func (e *storeError) Unwrap() error { return e.sentinel }

func newError(sentinel error, format string, args ...any) error {
	return &storeError{sentinel: sentinel, msg: fmt.Sprintf(format, args...)}
}

// MaxTokenLen is the longest token a Store accepts, in bytes. It keeps every (key, token)
// entry well below PostgreSQL's B-tree entry limit (about 2700 bytes) and bbolt's key limit
// (32768 bytes). Real tokens are 32 bytes (package verify); the RPC layer should reject
// longer ones as malformed before verifying them.
const MaxTokenLen = 1024

// errTokenTooLong is returned by Spend for a token over MaxTokenLen; nothing is recorded.
var errTokenTooLong = fmt.Errorf("spend: token longer than %d bytes", MaxTokenLen)

// errClosed is returned by operations on a closed store.
var errClosed = errors.New("spend: store is closed")

// Store is what the server needs. Both stores implement it.
type Store interface {
	// Spend atomically records token as spent under keyID: nil if it was fresh and is now
	// durably recorded, ErrAlreadySpent if it was already recorded, any other error if the
	// outcome is not a committed spend.
	Spend(ctx context.Context, keyID string, token []byte) error
	// PrepareKeys creates the per-key storage (Postgres partition / bbolt bucket) for each key
	// ID and registers the key; idempotent, safe concurrently from several processes. It
	// refuses, creating nothing, a retired key (ErrKeyRetired) and a key the store has held
	// whose storage is gone (ErrKeyStorageLost).
	PrepareKeys(ctx context.Context, keyIDs []string) error
	// Hold records that holder serves exactly keyIDs until ttl from now (a renewal: the
	// holder's previous keys not in keyIDs are released). Each key must be prepared and not
	// retired. Retire refuses a key held by a live hold.
	Hold(ctx context.Context, holder string, keyIDs []string, ttl time.Duration) error
	// Release drops every hold of holder.
	Release(ctx context.Context, holder string) error
	// Retire drops every spent record of keyID in one step (DETACH + DROP partition / delete
	// bucket) and keeps a tombstone so the key can never be prepared again. It refuses a key
	// that a live hold holds (ErrKeyHeld), a retired key (ErrKeyRetired) and a key the store
	// has never seen (ErrUnknownKey).
	Retire(ctx context.Context, keyID string) error
	// Count returns how many tokens are recorded under keyID (ErrUnknownKey if not prepared).
	Count(ctx context.Context, keyID string) (int64, error)
	// KeyIDs lists the key IDs that have storage, sorted.
	KeyIDs(ctx context.Context) ([]string, error)
	// Keys lists every key the store has seen, live or retired, sorted by ID.
	Keys(ctx context.Context) ([]KeyInfo, error)
	// Identity returns the store's identity, made when the store was created.
	Identity(ctx context.Context) (Identity, error)
	// Ping reports whether the store can be reached.
	Ping(ctx context.Context) error
	// Ready reports whether the store accepts spends: an error while recent spends failed
	// with none succeeding since, or while a write probe fails. At most one probe per
	// ReadyCacheFor runs, whatever the number of callers; see the package documentation.
	Ready(ctx context.Context) error
	// Check verifies the store's consistency: nil, or every problem found (ErrStoreDamaged).
	// It reads everything: for the check command, not for a serving path.
	Check(ctx context.Context) error
	// Close stops accepting spends, finishes the queued ones and releases the storage.
	Close() error
}

// Identity names a store. It is made once, by an explicit step (`ppredeem migrate up` for
// PostgreSQL, InitBolt or a first start in an empty directory for bbolt), and never changes.
type Identity struct {
	ID        string    // a random UUID
	CreatedAt time.Time // UTC
}

// KeyInfo is what a store knows of one key.
type KeyInfo struct {
	ID string
	// PreparedAt is when the key was registered: its first PrepareKeys, or the upgrade that
	// found its storage (zero: storage without a registration, made by an older binary).
	PreparedAt time.Time
	RetiredAt  time.Time // zero while the key is live
	HasStorage bool      // its partition (bucket) exists
	Holds      []HoldInfo
}

// HoldInfo is one live hold on a key.
type HoldInfo struct {
	Holder  string
	Expires time.Time
}

var (
	_ Store = (*Postgres)(nil)
	_ Store = (*Bolt)(nil)
)

// keyIDLen is the length of a key ID: 8 bytes in lowercase hex.
const keyIDLen = 16

// ValidKeyID reports whether id is a key ID: exactly 16 lowercase hex characters. Only valid
// IDs are ever placed in an SQL identifier or literal or used as a bucket name.
func ValidKeyID(id string) bool {
	if len(id) != keyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// checkSpend validates Spend's arguments. An invalid key ID cannot have storage, so it is
// reported as ErrUnknownKey.
func checkSpend(keyID string, token []byte) error {
	if !ValidKeyID(keyID) {
		return fmt.Errorf("spend: malformed key ID: %w", ErrUnknownKey)
	}
	if len(token) > MaxTokenLen {
		return errTokenTooLong
	}
	return nil
}

// checkKeyIDs validates keyIDs and returns them without duplicates, in input order.
func checkKeyIDs(keyIDs []string) ([]string, error) {
	seen := make(map[string]bool, len(keyIDs))
	out := make([]string, 0, len(keyIDs))
	for _, id := range keyIDs {
		if !ValidKeyID(id) {
			return nil, fmt.Errorf("spend: malformed key ID %q: want 16 lowercase hex characters", id)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}
