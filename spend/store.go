package spend

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel errors. Callers compare with errors.Is; every other error from a Store means
// "internal error": the spend is not known to be committed and must never be reported as a
// success (see the package documentation).
var (
	// ErrAlreadySpent reports that the token was already recorded under the key.
	ErrAlreadySpent = errors.New("token already spent")
	// ErrUnknownKey reports that no spent-token storage exists for the key (never prepared,
	// or retired). It is an internal error for the server, never a success.
	ErrUnknownKey = errors.New("no spent-token storage prepared for key")
	// ErrSchemaBehind reports that the PostgreSQL schema is older than this binary.
	ErrSchemaBehind = errors.New("database schema is behind: run `ppredeem migrate up`")
)

// MaxTokenLen is the longest token a Store accepts, in bytes. It keeps every (key, token)
// entry well below PostgreSQL's B-tree entry limit (about 2700 bytes) and bbolt's key limit
// (32768 bytes). Real tokens are 32 bytes (PROTOCOL.md §1); the RPC layer should reject
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
	// ID; idempotent, safe concurrently from several processes.
	PrepareKeys(ctx context.Context, keyIDs []string) error
	// Retire drops every spent record of keyID in one step (DETACH + DROP partition / delete
	// bucket). A key without storage gives ErrUnknownKey.
	Retire(ctx context.Context, keyID string) error
	// Count returns how many tokens are recorded under keyID (ErrUnknownKey if not prepared).
	Count(ctx context.Context, keyID string) (int64, error)
	// KeyIDs lists the key IDs that have storage, sorted.
	KeyIDs(ctx context.Context) ([]string, error)
	// Ping reports whether the store can serve.
	Ping(ctx context.Context) error
	// Close stops accepting spends, finishes the queued ones and releases the storage.
	Close() error
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
