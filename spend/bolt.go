package spend

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// BoltConfig configures OpenBolt. Zero values select the defaults.
type BoltConfig struct {
	Path     string // database file; its parent directory is created (0700)
	BatchMax int    // 0 → 1024: most tokens in one write transaction
	// SpendTimeout is each spend's own deadline, independent of the caller (0 → 5s).
	SpendTimeout time.Duration
	// OnBatch, if set, is told the number of spends in each write transaction (metrics).
	OnBatch func(size int)
}

const (
	defaultBoltBatchMax = 1024
	boltLockTimeout     = time.Second // waiting for another process's file lock
	// boltKeyPrefix precedes the token in each bucket key: bbolt refuses empty keys, and the
	// byte leaves room for a later change of layout.
	boltKeyPrefix byte = 0x01
)

// Bolt is the bbolt store: one file, one top-level bucket per key ID, one bucket key per spent
// token (the value is the spend time, Unix nanoseconds, big-endian). A single flush worker
// runs one write transaction — one fsync — per drained batch.
type Bolt struct {
	db    *bolt.DB
	batch *batcher
}

// OpenBolt opens (creating if needed) the database file. The file is locked: a second process
// opening it waits boltLockTimeout and fails.
func OpenBolt(cfg BoltConfig) (*Bolt, error) {
	if cfg.Path == "" {
		return nil, errors.New("spend: bolt: empty path")
	}
	if cfg.BatchMax < 0 {
		return nil, errors.New("spend: bolt: negative BatchMax")
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("spend: bolt: create directory: %w", err)
	}
	db, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{
		Timeout:      boltLockTimeout,
		FreelistType: bolt.FreelistMapType, // faster allocation in a large file
		// Do not write the freelist on every commit; it is rebuilt by scanning the file on
		// open. Commits stay fully durable (the data and meta pages are fsynced); opening a
		// large file after a crash is slower.
		NoFreelistSync: true,
	})
	if err != nil {
		return nil, fmt.Errorf("spend: bolt: open: %w", err)
	}
	b := &Bolt{db: db}
	b.batch = newBatcher(1, cmp.Or(cfg.BatchMax, defaultBoltBatchMax), cmp.Or(cfg.SpendTimeout, defaultSpendTimeout), b.write, cfg.OnBatch)
	return b, nil
}

func boltKey(token []byte) []byte {
	k := make([]byte, 1+len(token))
	k[0] = boltKeyPrefix
	copy(k[1:], token)
	return k
}

// Spend implements Store. ctx is not used: the spend runs under the store's own timeout
// whatever happens to the caller (see the package documentation).
func (b *Bolt) Spend(_ context.Context, keyID string, token []byte) error {
	if err := checkSpend(keyID, token); err != nil {
		return err
	}
	return b.batch.spend(keyID, token)
}

// write is the batcher's writeFunc: one bbolt write transaction for the whole batch.
// Insert-if-absent is Get then Put inside the transaction, which is atomic because bbolt
// admits one writer at a time. A missing bucket fails only that key's group; a failed commit
// fails every group (nothing was written).
func (b *Bolt) write(_ context.Context, groups []*keyGroup) {
	var spentAt [8]byte
	binary.BigEndian.PutUint64(spentAt[:], uint64(time.Now().UnixNano()))
	err := b.db.Update(func(tx *bolt.Tx) error {
		for _, g := range groups {
			g.fresh, g.err = nil, nil
			bk := tx.Bucket([]byte(g.keyID))
			if bk == nil {
				g.err = fmt.Errorf("spend: key %s: %w", g.keyID, ErrUnknownKey)
				continue
			}
			fresh := make([]bool, len(g.tokens))
			for i, t := range g.tokens {
				k := boltKey(t)
				if bk.Get(k) != nil {
					continue
				}
				if err := bk.Put(k, spentAt[:]); err != nil {
					return err
				}
				fresh[i] = true
			}
			g.fresh = fresh
		}
		return nil
	})
	if err != nil {
		for _, g := range groups {
			if g.err == nil {
				g.fresh, g.err = nil, fmt.Errorf("spend: bolt: record spent tokens: %w", err)
			}
		}
	}
}

// PrepareKeys implements Store: one bucket per key, created in one transaction. The file
// lock keeps other processes out, and bbolt serialises writers within this one.
func (b *Bolt) PrepareKeys(ctx context.Context, keyIDs []string) error {
	ids, err := checkKeyIDs(keyIDs)
	if err != nil || len(ids) == 0 {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err = b.db.Update(func(tx *bolt.Tx) error {
		for _, id := range ids {
			if _, err := tx.CreateBucketIfNotExists([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("spend: bolt: prepare key buckets: %w", err)
	}
	return nil
}

// Retire implements Store: the key's bucket is deleted in one transaction. bbolt frees the
// bucket's pages rather than deleting records one by one, so the cost grows with the pages
// of the bucket, not with a per-record write.
func (b *Bolt) Retire(ctx context.Context, keyID string) error {
	if !ValidKeyID(keyID) {
		return fmt.Errorf("spend: malformed key ID: %w", ErrUnknownKey)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		return tx.DeleteBucket([]byte(keyID))
	})
	if errors.Is(err, berrors.ErrBucketNotFound) {
		return fmt.Errorf("spend: key %s: %w", keyID, ErrUnknownKey)
	}
	if err != nil {
		return fmt.Errorf("spend: bolt: retire key %s: %w", keyID, err)
	}
	return nil
}

// Count implements Store. It walks the bucket: for operators and tests.
func (b *Bolt) Count(ctx context.Context, keyID string) (int64, error) {
	if !ValidKeyID(keyID) {
		return 0, fmt.Errorf("spend: malformed key ID: %w", ErrUnknownKey)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int64
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(keyID))
		if bk == nil {
			return fmt.Errorf("spend: key %s: %w", keyID, ErrUnknownKey)
		}
		n = int64(bk.Stats().KeyN)
		return nil
	})
	return n, err
}

// KeyIDs implements Store.
func (b *Bolt) KeyIDs(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var ids []string
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if id := string(name); ValidKeyID(id) {
				ids = append(ids, id)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("spend: bolt: list key buckets: %w", err)
	}
	slices.Sort(ids)
	return ids, nil
}

// Ping implements Store: it fails once the database is closed.
func (b *Bolt) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.db.View(func(*bolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("spend: bolt: %w", err)
	}
	return nil
}

// Close implements Store: queued spends are written first, then the file is closed.
func (b *Bolt) Close() error {
	b.batch.close()
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("spend: bolt: close: %w", err)
	}
	return nil
}
