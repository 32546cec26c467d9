package rpc_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
)

// TestReadyzWarnings: /readyz shows the configuration's warnings beside
// its status, whatever the status, without changing the status code; with
// no warnings the body is the status alone.
func TestReadyzWarnings(t *testing.T) {
	var warnings atomic.Pointer[[]string]
	warnings.Store(&[]string{`serving the public test key "0b4ef6b6786ca08d"`})
	s := rpctest.NewServer(t, rpctest.Options{Configure: func(o *rpc.Options) {
		o.Warnings = func() []string { return *warnings.Load() }
		o.Ready = func(context.Context) error { return nil }
	}})
	status := func() string {
		rec := servePath(s.Handler, "GET", "/readyz", "")
		return fmt.Sprintf("%d %s", rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	if got, want := status(), `200 {"status":"ready","warnings":["serving the public test key \"0b4ef6b6786ca08d\""]}`; got != want {
		t.Errorf("ready with a warning:\n got %s\nwant %s", got, want)
	}
	warnings.Store(&[]string{})
	if got, want := status(), `200 {"status":"ready"}`; got != want {
		t.Errorf("ready without warnings:\n got %s\nwant %s", got, want)
	}
	warnings.Store(&[]string{"a", "b"})
	s.Handler.StartDraining()
	if got, want := status(), `503 {"status":"shutting down","warnings":["a","b"]}`; got != want {
		t.Errorf("draining with warnings:\n got %s\nwant %s", got, want)
	}
}
