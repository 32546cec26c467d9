package spend_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ppredeem/ppredeem/spend"
)

func openBolt(t testing.TB, path string) *spend.Bolt {
	t.Helper()
	b, err := spend.OpenBolt(spend.BoltConfig{Path: path})
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func boltStorage(t *testing.T) kit {
	// A directory that does not exist yet: OpenBolt creates it.
	path := filepath.Join(t.TempDir(), "data", "spent.db")
	return kit{
		open: func(t *testing.T) spend.Store { return openBolt(t, path) },
		loseKey: func(t *testing.T, keyID string) {
			rawBolt(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte(keyID)) })
		},
	}
}

// rawBolt changes the file with bbolt itself, behind the store's back.
func rawBolt(t *testing.T, path string, f func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(f); err != nil {
		t.Fatal(err)
	}
}

func TestBoltConformance(t *testing.T) {
	runConformance(t, boltStorage)
}

// TestBoltFileLocked: a second store on the same file (another process, in production) is
// refused instead of writing alongside the first.
func TestBoltFileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spent.db")
	openBolt(t, path)
	start := time.Now()
	wantOpenError(t, spend.BoltConfig{Path: path}, spend.ErrStoreInUse, path, "another process")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second OpenBolt took %v", d)
	}
	if _, err := spend.OpenBolt(spend.BoltConfig{}); err == nil {
		t.Fatal("OpenBolt with an empty path succeeded")
	}
}

// newBoltStore creates a store in a new directory with n tokens under keyA and keyB (enough
// for branch and leaf pages), closes it, and returns its path and the tokens.
func newBoltStore(t *testing.T, n int) (string, [][]byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "spent.db")
	s, err := spend.OpenBolt(spend.BoltConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	prepare(t, s, keyA, keyB)
	toks := make([][]byte, n)
	for i := range toks {
		toks[i] = randToken(t)
	}
	errs := spendAll(n, func(i int) error { return s.Spend(context.Background(), []string{keyA, keyB}[i%2], toks[i]) })
	if _, _, other := tally(errs); len(other) != 0 {
		t.Fatal(other[0])
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, toks
}

// copyDir copies the store directory of path into a new one and returns the copy's path.
func copyDir(t *testing.T, path string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "data")
	if err := os.CopyFS(dst, os.DirFS(filepath.Dir(path))); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dst, filepath.Base(path))
}

// wantSpent opens path and checks every token is already spent.
func wantSpent(t *testing.T, path string, toks [][]byte) {
	t.Helper()
	s := openBolt(t, path)
	for i, tok := range toks {
		wantSpend(t, s, []string{keyA, keyB}[i%2], tok, spend.ErrAlreadySpent)
	}
	s.Close()
}

func wantOpenError(t *testing.T, cfg spend.BoltConfig, sentinel error, parts ...string) {
	t.Helper()
	s, err := spend.OpenBolt(cfg)
	if err == nil {
		s.Close()
		t.Fatalf("OpenBolt succeeded, want %v", sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("OpenBolt = %v, want %v", err, sentinel)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("OpenBolt = %v, want it to mention %q", err, p)
		}
	}
}

func readMarkerID(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, spend.MarkerName))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^id: (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("marker without an id:\n%s", b)
	}
	return string(m[1])
}

// TestBoltCreatedOnPurpose: a store is created only in a missing or empty directory, and
// carries the same identity in its file and in the marker beside it.
func TestBoltCreatedOnPurpose(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "new", "spent.db")
	wantOpenError(t, spend.BoltConfig{Path: path, MustExist: true}, spend.ErrNoStore, "no embedded store in "+filepath.Dir(path))
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenBolt with MustExist created the directory: %v", err)
	}
	s := openBolt(t, path)
	id, _ := s.Identity(ctx)
	if s.Opened() != spend.BoltCreated || readMarkerID(t, filepath.Dir(path)) != id.ID {
		t.Fatalf("new store: opened %v, marker id %s, store id %s", s.Opened(), readMarkerID(t, filepath.Dir(path)), id.ID)
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("data directory: %v, %v; want mode 0700", st.Mode(), err)
	}
	s.Close()
	s, err := spend.OpenBolt(spend.BoltConfig{Path: path, MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := s.Identity(ctx)
	if s.Opened() != spend.BoltExisting || again != id {
		t.Fatalf("reopened: %v %+v, want existing %+v", s.Opened(), again, id)
	}
	s.Close()

	// A new volume's lost+found does not make a directory non-empty.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	if s := openBolt(t, filepath.Join(dir, "spent.db")); s.Opened() != spend.BoltCreated {
		t.Fatalf("directory with lost+found: %v, want created", s.Opened())
	}

	// InitBolt is the same step, explicit; it never touches a directory that is not empty.
	path = filepath.Join(t.TempDir(), "init", "spent.db")
	made, err := spend.InitBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spend.InitBolt(path); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("InitBolt over a store = %v", err)
	}
	s, err = spend.OpenBolt(spend.BoltConfig{Path: path, MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Identity(ctx); got != made || s.Opened() != spend.BoltExisting {
		t.Fatalf("store made by InitBolt opened as %v %+v, want %+v", s.Opened(), got, made)
	}
	s.Close()
}

// TestBoltLostFileIsRefused: a store file emptied (an empty backup restored, a new volume)
// or deleted is a startup error naming the file, never a fresh store; once restored, every
// spend is still there.
func TestBoltLostFileIsRefused(t *testing.T) {
	path, toks := newBoltStore(t, 200)
	backup := copyDir(t, path)
	for name, lose := range map[string]func() error{
		"emptied": func() error { return os.Truncate(path, 0) },
		"deleted": func() error { return os.Remove(path) },
	} {
		if err := lose(); err != nil {
			t.Fatal(err)
		}
		for _, mustExist := range []bool{false, true} {
			wantOpenError(t, spend.BoltConfig{Path: path, MustExist: mustExist}, spend.ErrStoreLost, path, "backup")
		}
		if st, err := os.Stat(path); name == "deleted" && err == nil || name == "emptied" && (err != nil || st.Size() != 0) {
			t.Fatalf("%s: the refused open changed the file: %v %v", name, st, err)
		}
		b, err := os.ReadFile(backup)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		wantSpent(t, path, toks)
	}

	// An empty file with no marker beside it is refused too.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "spent.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	wantOpenError(t, spend.BoltConfig{Path: filepath.Join(dir, "spent.db")}, spend.ErrStoreLost, "0 bytes")
}

// TestBoltForeignDirectoryIsRefused: a non-empty directory without a store (data_dir set to
// the wrong place) is not turned into one.
func TestBoltForeignDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantOpenError(t, spend.BoltConfig{Path: filepath.Join(dir, "spent.db")}, spend.ErrNoStore, dir, "notes.txt", "not empty")
	if _, err := os.Stat(filepath.Join(dir, "spent.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a store file was created: %v", err)
	}
	if _, err := spend.InitBolt(filepath.Join(dir, "spent.db")); err == nil {
		t.Fatal("InitBolt in a non-empty directory succeeded")
	}
}

// TestBoltMarkerAndFileMustAgree: a lost marker is rewritten from the file; a file swapped
// for another store's is refused.
func TestBoltMarkerAndFileMustAgree(t *testing.T) {
	ctx := ctxT(t)
	path, toks := newBoltStore(t, 20)
	want := readMarkerID(t, filepath.Dir(path))
	if err := os.Remove(filepath.Join(filepath.Dir(path), spend.MarkerName)); err != nil {
		t.Fatal(err)
	}
	s := openBolt(t, path)
	if id, _ := s.Identity(ctx); id.ID != want || s.Opened() != spend.BoltMarkerRestored || readMarkerID(t, filepath.Dir(path)) != want {
		t.Fatalf("after losing the marker: opened %v, identity %s, marker %s; want %s", s.Opened(), id.ID, readMarkerID(t, filepath.Dir(path)), want)
	}
	s.Close()
	wantSpent(t, path, toks)
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), spend.MarkerName), []byte("garbled"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openBolt(t, path)
	if s.Opened() != spend.BoltMarkerRestored || readMarkerID(t, filepath.Dir(path)) != want {
		t.Fatalf("after garbling the marker: opened %v", s.Opened())
	}
	s.Close()

	other, _ := newBoltStore(t, 1)
	b, err := os.ReadFile(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	wantOpenError(t, spend.BoltConfig{Path: path}, spend.ErrStoreLost, "belongs to store", want, "replaced")
}

// TestBoltUpgradesOlderFile: a store file from before identities and the registry (made
// here with bbolt directly, as the previous version wrote it) opens with every spend, its
// keys registered, an identity and a marker.
func TestBoltUpgradesOlderFile(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "data", "spent.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	toks := [][]byte{randToken(t), randToken(t)}
	rawBolt(t, path, func(tx *bolt.Tx) error {
		for i, key := range []string{keyA, keyB} {
			b, err := tx.CreateBucket([]byte(key))
			if err != nil {
				return err
			}
			if err := b.Put(append([]byte{0x01}, toks[i]...), make([]byte, 8)); err != nil {
				return err
			}
		}
		return nil
	})
	// Beside another store's marker, the file is not adopted.
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), spend.MarkerName), []byte("id: x\ncreated_at: 2025-01-02T15:04:05Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantOpenError(t, spend.BoltConfig{Path: path}, spend.ErrStoreLost, "no store identity", "remove "+filepath.Join(filepath.Dir(path), spend.MarkerName))
	if err := os.Remove(filepath.Join(filepath.Dir(path), spend.MarkerName)); err != nil {
		t.Fatal(err)
	}
	s := openBolt(t, path)
	if s.Opened() != spend.BoltUpgraded {
		t.Fatalf("older file opened as %v, want upgraded", s.Opened())
	}
	wantSpend(t, s, keyA, toks[0], spend.ErrAlreadySpent)
	wantSpend(t, s, keyB, toks[1], spend.ErrAlreadySpent)
	infos, err := s.Keys(ctx)
	if err != nil || len(infos) != 2 || infos[0].PreparedAt.IsZero() || infos[1].PreparedAt.IsZero() {
		t.Fatalf("Keys after the upgrade = %+v, %v", infos, err)
	}
	id, _ := s.Identity(ctx)
	if readMarkerID(t, filepath.Dir(path)) != id.ID {
		t.Fatal("marker and identity differ after the upgrade")
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check after the upgrade: %v", err)
	}
	s.Close()
	s = openBolt(t, path)
	if s.Opened() != spend.BoltExisting {
		t.Fatalf("second open after the upgrade: %v", s.Opened())
	}
	// The registry now protects the older keys too.
	s.Close()
	rawBolt(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte(keyB)) })
	s = openBolt(t, path)
	if err := s.PrepareKeys(ctx, []string{keyB}); !errors.Is(err, spend.ErrKeyStorageLost) {
		t.Fatalf("PrepareKeys of an upgraded key whose bucket is gone = %v, want ErrKeyStorageLost", err)
	}
}

// bucketPages returns the root page of key's bucket (a branch page, for a bucket of more
// than one page), the first leaf below it, and the page size.
func bucketPages(t *testing.T, path, key string) (branch, leaf, pageSize int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pageSize = db.Info().PageSize
	err = db.View(func(tx *bolt.Tx) error {
		branch = int(tx.Bucket([]byte(key)).Root())
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The first element of a branch page: 16-byte page header, then pos u32, ksize u32,
	// pgid u64 (bbolt internal/common/page.go).
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, pageSize)
	if _, err := f.ReadAt(page, int64(branch*pageSize)); err != nil {
		t.Fatal(err)
	}
	if flags := binary.NativeEndian.Uint16(page[8:]); flags != 0x01 {
		t.Fatalf("root page %d of bucket %s has flags %#x, want a branch", branch, key, flags)
	}
	return branch, int(binary.NativeEndian.Uint64(page[16+8:])), pageSize
}

// pageOf returns the first page of the given bbolt type ("branch", "leaf", "freelist") in
// the file, and the file's page size.
func pageOf(t *testing.T, path, typ string) (id, pageSize int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for i := 2; i < int(tx.Size())/db.Info().PageSize; i++ {
			p, err := tx.Page(i)
			if err != nil {
				return err
			}
			if p != nil && p.Type == typ {
				id = i
				return nil
			}
		}
		return fmt.Errorf("no %s page in %s", typ, path)
	})
	if err != nil {
		t.Fatal(err)
	}
	return id, db.Info().PageSize
}

// TestBoltDamagedFileIsAnError damages copies of a real store file the ways disks and
// careless copies do, and checks that opening each is a clear error naming the file, never
// a panic, a crash or a silently older store. Several of these crash bbolt itself, in a
// goroutine of its own where no recover reaches: the store must refuse before bbolt reads.
func TestBoltDamagedFileIsAnError(t *testing.T) {
	path, toks := newBoltStore(t, 3000)
	branch, leaf, pageSize := bucketPages(t, path, keyA)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, pageSize)
	rand.Read(garbage)
	zeros := make([]byte, pageSize)
	at := func(page int) int64 { return int64(page * pageSize) }
	type damage struct {
		data []byte
		off  int64
	}
	for name, d := range map[string]damage{
		// bbolt falls back to the other meta page: the last commit's spends would be forgotten.
		"newest meta page zeroed": {zeros, -1},
		"meta page 0 garbage":     {garbage, 0},
		"meta page 1 zeroed":      {zeros, at(1)},
		"branch page zeroed":      {zeros, at(branch)},
		"branch page garbage":     {garbage, at(branch)},
		"branch elements zeroed":  {zeros[:pageSize-16], at(branch) + 16}, // header intact
		"leaf page garbage":       {garbage, at(leaf)},
		"leaf page zeroed":        {zeros, at(leaf)},
		"leaf elements zeroed":    {zeros[:pageSize-16], at(leaf) + 16}, // header intact: keys out of order
		"leaf elements garbage":   {garbage[:pageSize-16], at(leaf) + 16},
	} {
		t.Run(name, func(t *testing.T) {
			p := copyDir(t, path)
			off := d.off
			if off < 0 { // the meta page of the last transaction
				off = newestMeta(t, p, pageSize)
			}
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(d.data, off); err != nil {
				t.Fatal(err)
			}
			f.Close()
			wantOpenError(t, spend.BoltConfig{Path: p}, spend.ErrStoreDamaged, p, "damaged", "backup")
		})
	}
	for name, size := range map[string]int64{
		"truncated to half":     st.Size() / 2,
		"truncated to one page": int64(pageSize),
		"truncated to 100 B":    100,
	} {
		t.Run(name, func(t *testing.T) {
			p := copyDir(t, path)
			if err := os.Truncate(p, size); err != nil {
				t.Fatal(err)
			}
			wantOpenError(t, spend.BoltConfig{Path: p}, spend.ErrStoreDamaged, p, "damaged")
		})
	}
	wantSpent(t, path, toks) // the original is intact
}

// newestMeta returns the offset of the meta page bbolt would use (the higher transaction
// ID; bbolt writes transaction n's meta to page n%2).
func newestMeta(t *testing.T, path string, pageSize int) int64 {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	return int64(tx.ID()%2) * int64(pageSize)
}

// TestBoltDamagedFreelist: a file whose freelist is on disk (bbolt's default, which older
// tools may leave) with that page zeroed is refused instead of crashing bbolt.
func TestBoltDamagedFreelist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "spent.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: false})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // a few commits, so the freelist has pages
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte(keyA))
			if err != nil {
				return err
			}
			for range 200 {
				if err := b.Put(append([]byte{0x01}, randToken(t)...), make([]byte, 8)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	good := copyDir(t, path)
	free, pageSize := pageOf(t, path, "freelist")
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, pageSize), int64(free*pageSize)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	wantOpenError(t, spend.BoltConfig{Path: path}, spend.ErrStoreDamaged, "freelist", path)
	if s := openBolt(t, good); s.Opened() != spend.BoltUpgraded {
		t.Fatalf("the undamaged copy opened as %v", s.Opened())
	}
}

// TestBoltCheck: Check passes a healthy store and reports a bucket deleted behind its back
// and a foreign bucket.
func TestBoltCheck(t *testing.T) {
	path, _ := newBoltStore(t, 500)
	s := openBolt(t, path)
	if err := s.Check(ctxT(t)); err != nil {
		t.Fatalf("Check: %v", err)
	}
	s.Close()
	rawBolt(t, path, func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("stray"))
		return err
	})
	s = openBolt(t, path)
	if err := s.Check(ctxT(t)); !errors.Is(err, spend.ErrStoreDamaged) || !strings.Contains(err.Error(), `unexpected top-level bucket "stray"`) {
		t.Fatalf("Check with a stray bucket = %v", err)
	}
}

// TestBoltBackup: a backup taken while spends go on holds every spend acknowledged before it
// began, and the copy alone restores the store in a new directory.
func TestBoltBackup(t *testing.T) {
	ctx := ctxT(t)
	path, toks := newBoltStore(t, 500)
	s := openBolt(t, path)
	id, _ := s.Identity(ctx)
	stop := make(chan struct{})
	spending := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				spending <- nil
				return
			default:
			}
			if err := s.Spend(ctx, keyA, randToken(t)); err != nil {
				spending <- err
				return
			}
		}
	}()
	restored := filepath.Join(t.TempDir(), "restored", "spent.db")
	if err := os.MkdirAll(filepath.Dir(restored), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(restored)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if err := <-spending; err != nil {
		t.Fatal(err)
	}
	wantSpent(t, restored, toks)
	r := openBolt(t, restored)
	if got, _ := r.Identity(ctx); got != id || readMarkerID(t, filepath.Dir(restored)) != id.ID {
		t.Fatalf("restored store has identity %+v, want %+v", got, id)
	}
	if err := r.Check(ctx); err != nil {
		t.Fatalf("Check of the restored store: %v", err)
	}
}
