package spend

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltConfig configures OpenBolt. Zero values select the defaults.
type BoltConfig struct {
	// Path is the store file, conventionally <data dir>/spent.db. Its directory belongs to
	// the store: it holds the file and its marker (MarkerName), and nothing else.
	Path string
	// MustExist refuses to create a store (ErrNoStore): for commands that read or change an
	// existing store. Without it, OpenBolt creates one when the directory is missing or
	// empty, as InitBolt does, and only then.
	MustExist bool
	BatchMax  int // 0 → 1024: most tokens in one write transaction
	// SpendTimeout is each spend's own deadline, independent of the caller (0 → 5s). It also
	// bounds Ready's write probe.
	SpendTimeout time.Duration
	// OnBatch, if set, is told the number of spends in each write transaction (metrics).
	OnBatch func(size int)
}

// BoltOpened tells what OpenBolt found, for the server's start-up log.
type BoltOpened int

const (
	// BoltExisting: an existing store, its marker and file in agreement.
	BoltExisting BoltOpened = iota
	// BoltCreated: a new store, created in a missing or empty directory.
	BoltCreated
	// BoltUpgraded: a store file from before identities and the key registry: identity,
	// registry and marker were added, every record kept.
	BoltUpgraded
	// BoltMarkerRestored: an existing store whose marker was missing or unreadable: it was
	// written again from the identity in the file.
	BoltMarkerRestored
)

func (o BoltOpened) String() string {
	switch o {
	case BoltCreated:
		return "created"
	case BoltUpgraded:
		return "upgraded"
	case BoltMarkerRestored:
		return "marker restored"
	}
	return "existing"
}

const (
	defaultBoltBatchMax = 1024
	boltLockTimeout     = time.Second // waiting for another process's file lock
	boltMaxBatchDelay   = 2 * time.Millisecond
	// boltKeyPrefix precedes the token in each bucket key: bbolt refuses empty keys, and the
	// byte leaves room for a later change of layout.
	boltKeyPrefix byte = 0x01
)

// The store's own records live in one top-level bucket beside the key buckets; its name is
// not a key ID, so it can never be mistaken for one.
var (
	boltMetaBucket    = []byte("ppredeem")
	boltKeysBucket    = []byte("keys")    // key ID → prepared at, retired at (Unix ns, big-endian; 0 = live)
	boltHoldersBucket = []byte("holders") // holder → expires (Unix ns, big-endian) + its key IDs
	boltIDKey         = []byte("id")
	boltCreatedKey    = []byte("created_at") // RFC 3339, UTC
	boltProbeKey      = []byte("ready_probe")
)

// errEmptyFile: a store file of 0 bytes, which bbolt would initialise as a new store.
var errEmptyFile = errors.New("empty file")

// Bolt is the bbolt store: one file, one top-level bucket per key ID, one bucket key per spent
// token (the value is the spend time, Unix nanoseconds, big-endian). A single flush worker
// runs one write transaction — one fsync — per drained batch.
type Bolt struct {
	db     *bolt.DB
	batch  *batcher
	ready  *readiness
	path   string
	id     Identity
	opened BoltOpened
	terms  storageTerms
}

// Opened tells whether OpenBolt found an existing store, created one or upgraded one.
func (b *Bolt) Opened() BoltOpened { return b.opened }

// Path returns the store file's path.
func (b *Bolt) Path() string { return b.path }

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

// Identity implements Store.
func (b *Bolt) Identity(context.Context) (Identity, error) { return b.id, nil }

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

// Ready implements Store. The write probe is a write transaction that rewrites one small
// record and commits (an fsync).
func (b *Bolt) Ready(ctx context.Context) error { return b.ready.ready(ctx) }

func (b *Bolt) probe(context.Context) error {
	var now [8]byte
	binary.BigEndian.PutUint64(now[:], uint64(time.Now().UnixNano()))
	return b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(boltMetaBucket).Put(boltProbeKey, now[:])
	})
}

// Backup writes a consistent copy of the store file to w, from one read transaction: spends
// go on meanwhile, and the copy holds every spend acknowledged before Backup began. Restoring
// the copy as the store file is enough: the identity is inside it, and OpenBolt rewrites a
// missing marker from it. Copying the file itself is only safe while no process has it open.
func (b *Bolt) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int64
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("spend: bolt: backup: %w", err)
	}
	return n, nil
}

// Check implements Store: bbolt's own consistency check (tx.Check: every page reachable once
// or free, key order, page types), the registry against the buckets, and the identity
// against the marker. It runs in a write transaction, rolled back, so spends wait while it
// runs.
func (b *Bolt) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	const maxReported = 20
	var problems []error
	tx, err := b.db.Begin(true)
	if err != nil {
		return fmt.Errorf("spend: bolt: check: %w", err)
	}
	defer tx.Rollback()
	n := 0
	for err := range tx.Check() {
		if n++; n <= maxReported {
			problems = append(problems, newError(ErrStoreDamaged, "bbolt: %v", err))
		}
	}
	if n > maxReported {
		problems = append(problems, newError(ErrStoreDamaged, "bbolt: %d more problems", n-maxReported))
	}
	states, err := b.keyStates(tx, time.Now())
	if err != nil {
		problems = append(problems, err)
	}
	problems = append(problems, checkRegistry(states, b.terms)...)
	err = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		if !ValidKeyID(string(name)) && !bytes.Equal(name, boltMetaBucket) {
			problems = append(problems, newError(ErrStoreDamaged, "unexpected top-level bucket %q", name))
		}
		return nil
	})
	if err != nil {
		problems = append(problems, err)
	}
	marker, err := readMarker(filepath.Join(filepath.Dir(b.path), MarkerName))
	switch {
	case err != nil:
		problems = append(problems, newError(ErrStoreDamaged, "%v", err))
	case marker.ID != b.id.ID:
		problems = append(problems, newError(ErrStoreDamaged, "the marker names store %s, the file store %s", marker.ID, b.id.ID))
	}
	return checkResult(b.path, problems)
}

// Close implements Store: queued spends are written first, then the file is closed.
func (b *Bolt) Close() error {
	b.batch.close()
	b.ready.close()
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("spend: bolt: close: %w", err)
	}
	return nil
}
