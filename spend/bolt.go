package spend

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
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

// InitBolt creates a new, empty store at path: the directory (created 0700 if missing) must
// be empty. It writes the store file with a new identity, then the marker. OpenBolt does the
// same on its own for a missing or empty directory unless BoltConfig.MustExist is set.
func InitBolt(path string) (Identity, error) {
	if path == "" {
		return Identity{}, errors.New("spend: bolt: empty path")
	}
	d, err := inspectDir(path)
	if err != nil {
		return Identity{}, err
	}
	if !d.empty() {
		return Identity{}, fmt.Errorf("spend: bolt: refusing to create a store in %s: the directory is not empty", d.dir)
	}
	return initBolt(path)
}

func initBolt(path string) (Identity, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Identity{}, fmt.Errorf("spend: bolt: create directory: %w", err)
	}
	db, err := openGuarded(path, bolt.Options{Timeout: boltLockTimeout}, true)
	if err != nil {
		return Identity{}, err
	}
	id := newIdentity()
	err = db.Update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucket(boltMetaBucket)
		if err != nil {
			return err
		}
		return putIdentity(m, id)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("spend: bolt: create store %s: %w", path, err)
	}
	if err := writeMarker(dir, id); err != nil {
		return Identity{}, err
	}
	return id, nil
}

func putIdentity(m *bolt.Bucket, id Identity) error {
	if err := m.Put(boltIDKey, []byte(id.ID)); err != nil {
		return err
	}
	if err := m.Put(boltCreatedKey, []byte(id.CreatedAt.UTC().Format(time.RFC3339Nano))); err != nil {
		return err
	}
	if _, err := m.CreateBucketIfNotExists(boltKeysBucket); err != nil {
		return err
	}
	_, err := m.CreateBucketIfNotExists(boltHoldersBucket)
	return err
}

// OpenBolt opens the store at cfg.Path, creating it only in a missing or empty directory (and
// never with MustExist). It refuses, with an error naming the file and what to do:
//
//   - a directory whose marker says a store was created there but whose file is missing, and
//     a store file of 0 bytes (ErrStoreLost);
//   - a store file whose identity differs from the marker's (ErrStoreLost: the file was
//     replaced by another store's);
//   - a non-empty directory with neither marker nor store file (ErrNoStore);
//   - a damaged file (ErrStoreDamaged), found before bbolt reads it (checkBoltFile), and any
//     panic of bbolt while opening it, recovered;
//   - a file locked by another process (ErrStoreInUse), after waiting a second.
//
// A store file without an identity and without a marker beside it (made before identities)
// is upgraded: identity and key registry are added from what it holds, and the marker
// written; with a marker beside it, it is refused (ErrStoreLost: not that store's file).
// Holds recorded in the file are dropped: the file lock proves their holders gone.
func OpenBolt(cfg BoltConfig) (*Bolt, error) {
	if cfg.Path == "" {
		return nil, errors.New("spend: bolt: empty path")
	}
	if cfg.BatchMax < 0 || cfg.SpendTimeout < 0 {
		return nil, errors.New("spend: bolt: negative BoltConfig value")
	}
	d, err := inspectDir(cfg.Path)
	if err != nil {
		return nil, err
	}
	if err := d.refusal(cfg.MustExist); err != nil {
		return nil, err
	}
	opened := BoltExisting
	if d.empty() {
		if _, err := initBolt(cfg.Path); err != nil {
			return nil, err
		}
		opened = BoltCreated
		if d, err = inspectDir(cfg.Path); err != nil {
			return nil, err
		}
	}
	if err := validateBoltFile(cfg.Path); err != nil {
		return nil, err
	}
	db, err := openGuarded(cfg.Path, bolt.Options{
		Timeout:      boltLockTimeout,
		FreelistType: bolt.FreelistMapType, // faster allocation in a large file
		// Do not write the freelist on every commit; it is rebuilt by scanning the file on
		// open. Commits stay fully durable (the data and meta pages are fsynced); opening a
		// large file after a crash is slower.
		NoFreelistSync: true,
	}, false)
	if err != nil {
		return nil, err
	}
	b := &Bolt{db: db, path: cfg.Path, opened: opened}
	b.terms = storageTerms{
		storage: func(id string) string { return fmt.Sprintf("bucket %s of %s", id, b.path) },
		restore: func(string) string { return b.path },
	}
	if err := b.reconcile(d); err != nil {
		db.Close()
		return nil, err
	}
	timeout := cmp.Or(cfg.SpendTimeout, defaultSpendTimeout)
	b.ready = newReadiness(b.probe, timeout)
	b.batch = newBatcher(1, cmp.Or(cfg.BatchMax, defaultBoltBatchMax), timeout, b.write, cfg.OnBatch, b.ready.wrote)
	return b, nil
}

// reconcile brings the file's identity, registry and holds and the directory's marker into
// agreement, or refuses a file that belongs to another store.
func (b *Bolt) reconcile(d *boltDir) error {
	var have *Identity
	err := b.db.View(func(tx *bolt.Tx) error {
		id, err := readIdentity(tx)
		have = id
		return err
	})
	if err != nil {
		return newError(ErrStoreDamaged, "spend: %s is damaged: %v. Restore it from a backup", b.path, err)
	}
	marker := filepath.Join(filepath.Dir(b.path), MarkerName)
	if have != nil && d.marker != nil && have.ID != d.marker.ID {
		return newError(ErrStoreLost, "spend: %s belongs to store %s (created at %s), but %s says this directory holds store %s "+
			"(created at %s): the file was replaced by another store's. Restore this directory's own store file from a backup",
			b.path, have.ID, timestamp(have.CreatedAt), marker, d.marker.ID, timestamp(d.marker.CreatedAt))
	}
	if have == nil && d.hasMarker() {
		return newError(ErrStoreLost, "spend: %s has no store identity, but %s says a store was created here: the file is not "+
			"that store's (another program's bbolt file, or a backup from before ppredeem kept identities). Restore the store's "+
			"own file from a backup; to adopt this file on purpose, remove %s and start again", b.path, marker, marker)
	}
	id := have
	if id == nil {
		b.opened = BoltUpgraded
		nid := newIdentity()
		id = &nid
	}
	now := time.Now()
	err = b.db.Update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists(boltMetaBucket)
		if err != nil {
			return err
		}
		if have == nil {
			if err := putIdentity(m, *id); err != nil {
				return err
			}
		}
		// Register every key bucket the registry lacks (a file from before the registry).
		keys := m.Bucket(boltKeysBucket)
		err = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if ValidKeyID(string(name)) && keys.Get(name) == nil {
				return keys.Put(name, encodeKeyRecord(now, time.Time{}))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := m.DeleteBucket(boltHoldersBucket); err != nil {
			return err
		}
		_, err = m.CreateBucket(boltHoldersBucket)
		return err
	})
	if err != nil {
		return fmt.Errorf("spend: bolt: %s: record identity and key registry: %w", b.path, err)
	}
	b.id = *id
	if d.marker == nil || d.marker.ID != id.ID {
		if err := writeMarker(filepath.Dir(b.path), *id); err != nil {
			return err
		}
		if b.opened == BoltExisting {
			b.opened = BoltMarkerRestored
		}
	}
	return nil
}

// readIdentity returns the file's identity, or nil for a file without one.
func readIdentity(tx *bolt.Tx) (*Identity, error) {
	m := tx.Bucket(boltMetaBucket)
	if m == nil {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(m.Get(boltCreatedKey)))
	id := string(m.Get(boltIDKey))
	if id == "" || err != nil || m.Bucket(boltKeysBucket) == nil || m.Bucket(boltHoldersBucket) == nil {
		return nil, errors.New("the store's own records (bucket ppredeem) are incomplete")
	}
	return &Identity{ID: id, CreatedAt: t.UTC()}, nil
}

// validateBoltFile checks the file with checkBoltFile under a shared lock (a read-only bbolt
// handle), so that no writer changes it meanwhile.
func validateBoltFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return mapOpenErr(path, err)
	}
	defer f.Close()
	// bbolt maps both meta pages at once: a file shorter than two pages would fault there.
	if err := checkTwoPages(f); err != nil {
		return newError(ErrStoreDamaged, "spend: %s is damaged: %v. Restore it from a backup", path, err)
	}
	ro, err := openGuarded(path, bolt.Options{ReadOnly: true, Timeout: boltLockTimeout}, false)
	if err != nil {
		return err
	}
	defer ro.Close()
	if err := checkBoltFile(f); err != nil {
		return newError(ErrStoreDamaged, "spend: %s is damaged: %v. Restore it from a backup", path, err)
	}
	return nil
}

// checkTwoPages reports a file shorter than its two meta pages.
func checkTwoPages(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		return errEmptyFile
	}
	var hdr [boltPageHeader + 12]byte
	pageSize := uint64(os.Getpagesize())
	if _, err := f.ReadAt(hdr[:], 0); err == nil && validPageSize(uint64(ne.Uint32(hdr[boltPageHeader+8:]))) {
		pageSize = uint64(ne.Uint32(hdr[boltPageHeader+8:]))
	} else if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if uint64(st.Size()) < 2*pageSize {
		return fmt.Errorf("the file is %d bytes, too short for bbolt's two meta pages of %d bytes", st.Size(), pageSize)
	}
	return nil
}

// openGuarded opens path with bbolt, never creating a file unless create (and then only a
// new one), refusing a 0-byte file, and turning a panic or memory fault inside bbolt's
// opening code into ErrStoreDamaged (closing the file bbolt had opened, which releases its
// lock).
func openGuarded(path string, opts bolt.Options, create bool) (db *bolt.DB, err error) {
	var file *os.File
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		if create {
			flag |= os.O_CREATE | os.O_EXCL
		} else {
			flag &^= os.O_CREATE
		}
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		if st, err := f.Stat(); err != nil || (!create && st.Size() == 0) {
			f.Close()
			return nil, cmp.Or(err, errEmptyFile)
		}
		file = f
		return f, nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				file.Close()
			}
			db, err = nil, newError(ErrStoreDamaged, "spend: %s is damaged: bbolt failed reading it (%v). Restore it from a backup", path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &opts)
	if err != nil {
		return nil, mapOpenErr(path, err)
	}
	return db, nil
}

func mapOpenErr(path string, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return newError(ErrStoreInUse, "spend: %s is locked by another process (a running ppredeem serve?): "+
			"a store file serves one process at a time; stop that process first", path)
	case errors.Is(err, errEmptyFile):
		return newError(ErrStoreLost, "spend: %s is empty (0 bytes): refusing to start a fresh store in its place; restore it from a backup", path)
	case errors.Is(err, os.ErrNotExist):
		return newError(ErrStoreLost, "spend: %s is missing: restore it from a backup", path)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return newError(ErrStoreDamaged, "spend: %s is damaged or not a bbolt file (%v). Restore it from a backup", path, err)
	}
	return fmt.Errorf("spend: bolt: open %s: %w", path, err)
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

// encodeKeyRecord encodes a registry value: prepared at, retired at (zero: live).
func encodeKeyRecord(prepared, retired time.Time) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, uint64(prepared.UnixNano()))
	if !retired.IsZero() {
		binary.BigEndian.PutUint64(v[8:], uint64(retired.UnixNano()))
	}
	return v
}

// boltKeyState reads what the file knows of id: registry entry, bucket, live holds.
func (b *Bolt) keyState(tx *bolt.Tx, id string, now time.Time) (keyState, error) {
	k := keyState{id: id, hasStorage: tx.Bucket([]byte(id)) != nil}
	m := tx.Bucket(boltMetaBucket)
	if v := m.Bucket(boltKeysBucket).Get([]byte(id)); v != nil {
		if len(v) != 16 {
			return k, newError(ErrStoreDamaged, "spend: %s: the registry entry of key %s is damaged", b.path, id)
		}
		k.registered = true
		k.preparedAt = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
		if r := binary.BigEndian.Uint64(v[8:]); r != 0 {
			k.retiredAt = time.Unix(0, int64(r)).UTC()
		}
	}
	err := m.Bucket(boltHoldersBucket).ForEach(func(holder, v []byte) error {
		expires, ids, err := decodeHold(v)
		if err != nil {
			return newError(ErrStoreDamaged, "spend: %s: the hold of %q is damaged", b.path, holder)
		}
		if expires.After(now) && slices.Contains(ids, id) {
			k.holds = append(k.holds, HoldInfo{Holder: string(holder), Expires: expires})
		}
		return nil
	})
	return k, err
}

func encodeHold(expires time.Time, ids []string) []byte {
	v := binary.BigEndian.AppendUint64(nil, uint64(expires.UnixNano()))
	for _, id := range ids {
		v = append(v, id...)
	}
	return v
}

func decodeHold(v []byte) (time.Time, []string, error) {
	if len(v) < 8 || (len(v)-8)%keyIDLen != 0 {
		return time.Time{}, nil, errors.New("bad hold record")
	}
	var ids []string
	for rest := v[8:]; len(rest) > 0; rest = rest[keyIDLen:] {
		ids = append(ids, string(rest[:keyIDLen]))
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(), ids, nil
}

// PrepareKeys implements Store: for each key, its bucket and registry entry, in one
// transaction; a refused key (retired, storage lost) leaves everything unchanged. The file
// lock keeps other processes out, and bbolt serialises writers within this one.
func (b *Bolt) PrepareKeys(ctx context.Context, keyIDs []string) error {
	ids, err := checkKeyIDs(keyIDs)
	if err != nil || len(ids) == 0 {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var refused error
	err = b.db.Update(func(tx *bolt.Tx) error {
		now := time.Now()
		keys := tx.Bucket(boltMetaBucket).Bucket(boltKeysBucket)
		var errs []error
		type step struct {
			id               string
			create, register bool
		}
		var steps []step
		for _, id := range ids {
			k, err := b.keyState(tx, id, now)
			if err != nil {
				return err
			}
			create, register, err := k.prepare(b.terms)
			if err != nil {
				errs = append(errs, err)
			}
			steps = append(steps, step{id, create, register})
		}
		if refused = errors.Join(errs...); refused != nil {
			return refused
		}
		for _, s := range steps {
			if s.create {
				if _, err := tx.CreateBucket([]byte(s.id)); err != nil {
					return err
				}
			}
			if s.register {
				if err := keys.Put([]byte(s.id), encodeKeyRecord(now, time.Time{})); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil && refused == nil {
		return fmt.Errorf("spend: bolt: prepare key buckets: %w", err)
	}
	return err
}

// Hold implements Store. Within one process the file lock already excludes every other
// server; holds still apply to Retire through this handle, and OpenBolt drops the holds a
// previous process left behind.
func (b *Bolt) Hold(ctx context.Context, holder string, keyIDs []string, ttl time.Duration) error {
	ids, err := checkHoldArgs(holder, keyIDs, ttl)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	slices.Sort(ids)
	var refused error
	err = b.db.Update(func(tx *bolt.Tx) error {
		now := time.Now()
		var errs []error
		for _, id := range ids {
			k, err := b.keyState(tx, id, now)
			if err != nil {
				return err
			}
			if err := k.holdable(b.terms); err != nil {
				errs = append(errs, err)
			}
		}
		if refused = errors.Join(errs...); refused != nil {
			return refused
		}
		holders := tx.Bucket(boltMetaBucket).Bucket(boltHoldersBucket)
		if err := dropExpiredHolds(holders, now); err != nil {
			return err
		}
		if len(ids) == 0 {
			return holders.Delete([]byte(holder))
		}
		return holders.Put([]byte(holder), encodeHold(now.Add(ttl), ids))
	})
	if err != nil && refused == nil {
		return fmt.Errorf("spend: bolt: hold keys: %w", err)
	}
	return err
}

func dropExpiredHolds(holders *bolt.Bucket, now time.Time) error {
	var expired [][]byte
	err := holders.ForEach(func(k, v []byte) error {
		if exp, _, err := decodeHold(v); err != nil || !exp.After(now) {
			expired = append(expired, bytes.Clone(k))
		}
		return nil
	})
	for _, k := range expired {
		if err == nil {
			err = holders.Delete(k)
		}
	}
	return err
}

// Release implements Store.
func (b *Bolt) Release(ctx context.Context, holder string) error {
	if err := validHolder(holder); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(boltMetaBucket).Bucket(boltHoldersBucket).Delete([]byte(holder))
	})
	if err != nil {
		return fmt.Errorf("spend: bolt: release holds: %w", err)
	}
	return nil
}

// Retire implements Store: the key's bucket is deleted and its registry entry marked retired,
// in one transaction. bbolt frees the bucket's pages rather than deleting records one by
// one, so the cost grows with the pages of the bucket, not with a per-record write.
func (b *Bolt) Retire(ctx context.Context, keyID string) error {
	if !ValidKeyID(keyID) {
		return fmt.Errorf("spend: malformed key ID: %w", ErrUnknownKey)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var refused error
	err := b.db.Update(func(tx *bolt.Tx) error {
		now := time.Now()
		k, err := b.keyState(tx, keyID, now)
		if err != nil {
			return err
		}
		if refused = k.retirable(now); refused != nil {
			return refused
		}
		prepared := k.preparedAt
		if !k.registered {
			prepared = now
		}
		if err := tx.Bucket(boltMetaBucket).Bucket(boltKeysBucket).Put([]byte(keyID), encodeKeyRecord(prepared, now)); err != nil {
			return err
		}
		if k.hasStorage {
			return tx.DeleteBucket([]byte(keyID))
		}
		return nil
	})
	if err != nil && refused == nil {
		return fmt.Errorf("spend: bolt: retire key %s: %w", keyID, err)
	}
	return err
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

// Keys implements Store.
func (b *Bolt) Keys(ctx context.Context) ([]KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var states []keyState
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		states, err = b.keyStates(tx, time.Now())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("spend: bolt: list keys: %w", err)
	}
	return keyInfos(states), nil
}

// keyStates returns the state of every key in the registry or with a bucket, sorted.
func (b *Bolt) keyStates(tx *bolt.Tx, now time.Time) ([]keyState, error) {
	var ids []string
	err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		if ValidKeyID(string(name)) {
			ids = append(ids, string(name))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.Bucket(boltMetaBucket).Bucket(boltKeysBucket).ForEach(func(k, _ []byte) error {
		ids = append(ids, string(k))
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	states := make([]keyState, 0, len(ids))
	for _, id := range ids {
		k, err := b.keyState(tx, id, now)
		if err != nil {
			return nil, err
		}
		states = append(states, k)
	}
	return states, nil
}

func keyInfos(states []keyState) []KeyInfo {
	out := make([]KeyInfo, len(states))
	for i, k := range states {
		out[i] = KeyInfo{ID: k.id, PreparedAt: k.preparedAt, RetiredAt: k.retiredAt, HasStorage: k.hasStorage, Holds: k.holds}
	}
	return out
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

// checkResult sums up Check's problems.
func checkResult(what string, problems []error) error {
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("spend: %s: %d problem(s) found:\n%w", what, len(problems), errors.Join(problems...))
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
