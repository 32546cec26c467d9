package client_test

import (
	"errors"
	"testing"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/client"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// newServer starts the real ppredeem handler (rpctest.Server: the test key,
// a real durable embedded store) and counts the HTTP requests it receives.
func newServer(t testing.TB) *rpctest.Server { return rpctest.NewServer(t, rpctest.Options{}) }

// wrapSpender starts the real server with wrap around its store, to inject
// faults around the real store.
func wrapSpender(t testing.TB, wrap func(rpc.Spender) rpc.Spender) *rpctest.Server {
	return rpctest.NewServer(t, rpctest.Options{Configure: func(o *rpc.Options) { o.Spender = wrap(o.Spender) }})
}

// mint returns a fresh random token and its tag under key.
func mint(t testing.TB, key *verify.Key, m verify.Method, compressed bool, bindings []string) (token, tag []byte) {
	t.Helper()
	tok := verifytest.MintFor(t, key, m, compressed, bindings)
	return tok.Token, tok.Tag
}

// vectorToken is the first published redemption tuple of the test key
// (verifytest.Vector), for bindings ["www.example.com", "GET /"].
func vectorToken() (token, tag []byte) {
	v := verifytest.Vector()
	return v.Token, v.Tag
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
	"ErrBusy":             client.ErrBusy,
	"ErrInternal":         client.ErrInternal,
	"ErrAmbiguous":        client.ErrAmbiguous,
	"ErrNotSent":          client.ErrNotSent,
	"ErrIssueRefused":     client.ErrIssueRefused,
	"ErrBadIssueResponse": client.ErrBadIssueResponse,
	"ErrBadProof":         client.ErrBadProof,
	"ErrNoCommitment":     client.ErrNoCommitment,
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
