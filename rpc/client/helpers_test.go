package client_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/client"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify"
)

// testKey is the public test key of PROTOCOL.md §8 (testdata/test_key.pem,
// copied from the shared vectors).
func testKey(t testing.TB) *verify.Key {
	t.Helper()
	pemBytes, err := os.ReadFile(filepath.Join("testdata", "test_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := verify.ParseKeysPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("test_key.pem holds %d keys, want 1", len(keys))
	}
	return keys[0]
}

// server is the real ppredeem handler (real key set, real durable store)
// behind httptest, with a count of the HTTP requests it received.
type server struct {
	*httptest.Server
	Key      *verify.Key
	Store    spend.Store
	Endpoint string
	requests atomic.Int64
}

func (s *server) Requests() int64 { return s.requests.Load() }

// newBoltStore opens a real bbolt store in a temporary directory.
func newBoltStore(t testing.TB) spend.Store {
	t.Helper()
	store, err := spend.OpenBolt(spend.BoltConfig{Path: filepath.Join(t.TempDir(), "spent.db")})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// startServer serves rpc.NewHandler over store with the test key. wrap, if
// not nil, wraps the store as the handler's Spender (to inject faults
// around the real store).
func startServer(t testing.TB, store spend.Store, wrap func(rpc.Spender) rpc.Spender) *server {
	t.Helper()
	key := testKey(t)
	ks, err := verify.NewKeySet([]*verify.Key{key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.PrepareKeys(context.Background(), []string{key.ID()}); err != nil {
		t.Fatal(err)
	}
	var spender rpc.Spender = store
	if wrap != nil {
		spender = wrap(store)
	}
	h, err := rpc.NewHandler(rpc.Options{
		Keys:    func() *verify.KeySet { return ks },
		Spender: spender,
		Ready:   store.Ping,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{Key: key, Store: store}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close) // runs before the store's Close
	s.Endpoint = s.URL + rpc.RedeemPath
	return s
}

// mint returns a fresh random token and its tag under key.
func mint(t testing.TB, key *verify.Key, m verify.Method, compressed bool, bindings []string) (token, tag []byte) {
	t.Helper()
	for range 4 { // try-and-increment fails for about 2⁻²⁰ of tokens
		token = make([]byte, 32)
		rand.Read(token)
		var err error
		tag, err = key.Tag(token, m, compressed, bindings)
		if err == nil {
			return token, tag
		}
	}
	t.Fatal("could not mint a token")
	return nil, nil
}

func newClient(t testing.TB, endpoint string, opts *client.Options) *client.Client {
	t.Helper()
	c, err := client.New(endpoint, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// asError returns err as *client.Error, failing the test otherwise.
func asError(t testing.TB, err error) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *client.Error", err, err)
	}
	return e
}

// sentinels lists every sentinel, for checking that an error wraps exactly
// the expected ones.
var sentinels = map[string]error{
	"ErrBadTag":           client.ErrBadTag,
	"ErrAlreadySpent":     client.ErrAlreadySpent,
	"ErrUnsupportedCurve": client.ErrUnsupportedCurve,
	"ErrInvalidParams":    client.ErrInvalidParams,
	"ErrInvalidRequest":   client.ErrInvalidRequest,
	"ErrInternal":         client.ErrInternal,
	"ErrAmbiguous":        client.ErrAmbiguous,
	"ErrNotSent":          client.ErrNotSent,
}

// wantKinds fails unless err wraps exactly the named sentinels.
func wantKinds(t testing.TB, err error, names ...string) {
	t.Helper()
	want := make(map[string]bool, len(names))
	for _, n := range names {
		if _, ok := sentinels[n]; !ok {
			t.Fatalf("unknown sentinel %s", n)
		}
		want[n] = true
	}
	for name, s := range sentinels {
		if got := errors.Is(err, s); got != want[name] {
			t.Errorf("errors.Is(err, %s) = %v, want %v (err: %v)", name, got, want[name], err)
		}
	}
}
