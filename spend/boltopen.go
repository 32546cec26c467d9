package spend

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

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
	// bbolt's Batch (relay redemptions, relaybolt.go) waits at most this for company.
	db.MaxBatchDelay = boltMaxBatchDelay
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
