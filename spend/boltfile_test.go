package spend

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkBoltOpen measures what opening an embedded store costs, and Check, on a store of
// $PPREDEEM_BENCH_TOKENS random 32-byte tokens under one key (default 100000), built once:
//
//	PPREDEEM_BENCH_TOKENS=1000000 go test -run '^$' -bench BoltOpen -benchtime 5x ./spend/
//
// The sub-benchmarks:
//
//   - bbolt: bolt.Open and Close with the store's options (bbolt's own open-time scan);
//   - checkfile: checkBoltFile, the plain-read check OpenBolt runs before bbolt;
//   - OpenBolt: the whole open (directory, lock, checkfile, bbolt, identity) and Close;
//   - Check: Bolt.Check (bbolt's tx.Check, registry, marker) on an open store.
func BenchmarkBoltOpen(b *testing.B) {
	n := 100000
	if s := os.Getenv("PPREDEEM_BENCH_TOKENS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 0 {
			b.Fatalf("PPREDEEM_BENCH_TOKENS=%q: want a token count", s)
		}
	}
	path := filepath.Join(b.TempDir(), "data", "spent.db")
	const key = "0123456789abcdef"
	s, err := OpenBolt(BoltConfig{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.PrepareKeys(context.Background(), []string{key}); err != nil {
		b.Fatal(err)
	}
	for done := 0; done < n; {
		err := s.db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket([]byte(key))
			for i := 0; i < 10000 && done < n; i, done = i+1, done+1 {
				tok := make([]byte, 32)
				rand.Read(tok)
				if err := bk.Put(boltKey(tok), make([]byte, 8)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d tokens, %d MB", n, st.Size()>>20)

	b.Run("bbolt", func(b *testing.B) {
		for b.Loop() {
			db, err := bolt.Open(path, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
			if err != nil {
				b.Fatal(err)
			}
			db.Close()
		}
	})
	b.Run("checkfile", func(b *testing.B) {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		for b.Loop() {
			if err := checkBoltFile(f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("OpenBolt", func(b *testing.B) {
		for b.Loop() {
			s, err := OpenBolt(BoltConfig{Path: path, MustExist: true})
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
	b.Run("Check", func(b *testing.B) {
		s, err := OpenBolt(BoltConfig{Path: path, MustExist: true})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		for b.Loop() {
			if err := s.Check(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
