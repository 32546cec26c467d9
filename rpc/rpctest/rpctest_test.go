package rpctest

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

func TestDecode(t *testing.T) {
	for raw, want := range map[string]string{
		`{"jsonrpc":"2.0","id":1,"result":"success"}`:                       "success",
		`{"jsonrpc":"2.0","id":1,"result":"other"}`:                         "malformed",
		`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"x"}}`: "-32600",
	} {
		r, err := Decode([]byte(raw))
		if err != nil || r.Code() != want {
			t.Errorf("%s: %s, %v", raw, r.Code(), err)
		}
	}
	for _, raw := range []string{``, `404 page not found`, `{"jsonrpc":"1.0","result":"success"}`, `[]`} {
		if _, err := Decode([]byte(raw)); !errors.Is(err, ErrNotJSONRPC) {
			t.Errorf("%q decoded: %v", raw, err)
		}
	}
}

func TestServer(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok := verifytest.Mint(t, s.Key, verify.Increment)
	for _, want := range []string{"success", "-32021"} {
		if _, r, err := Do(context.Background(), "POST", s.Endpoint, Redeem(1, tok)); err != nil || r.Code() != want {
			t.Fatalf("got %s (%v), want %s", r.Code(), err, want)
		}
	}
	if s.Requests() != 2 {
		t.Errorf("%d requests counted, want 2", s.Requests())
	}
	if _, r, err := Do(context.Background(), "POST", s.Endpoint, Batch(Redeem(1, tok), Request(2, "nope", nil))); !errors.Is(err, ErrNotJSONRPC) {
		t.Errorf("a batch answer decoded as one answer: %+v, %v", r, err)
	}
	s.Close()
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Errorf("the store's directory is left behind: %v", err)
	}
}
