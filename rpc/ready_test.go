package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
)

// TestReadyzCachesFailures: while the store check fails, a flood of
// /readyz (concurrent, as load balancers send it) runs the check about
// once a second and logs one warning per check, not one per request; the
// first good check after that is logged once.
func TestReadyzCachesFailures(t *testing.T) {
	var checks atomic.Int32
	var failing atomic.Bool
	failing.Store(true)
	var logs rpctest.LogBuffer
	s := rpctest.NewServer(t, rpctest.Options{Configure: func(o *rpc.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		o.Ready = func(context.Context) error {
			checks.Add(1)
			if failing.Load() {
				return errors.New("store down")
			}
			return nil
		}
	}})
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 250 {
				if rec := servePath(s.Handler, "GET", "/readyz", ""); rec.Code != 503 {
					t.Errorf("/readyz while the store fails: %d", rec.Code)
					return
				}
			}
		})
	}
	wg.Wait()
	// One check per started second at most, plus the first.
	limit := int32(time.Since(start)/time.Second) + 2
	if n := checks.Load(); n > limit {
		t.Fatalf("2000 /readyz ran the failing check %d times (at most %d)", n, limit)
	}
	if n := strings.Count(logs.String(), "readiness check failed"); int32(n) != checks.Load() {
		t.Fatalf("%d warnings for %d failing checks", n, checks.Load())
	}
	failing.Store(false)
	waitUntil(t, func() bool { return servePath(s.Handler, "GET", "/readyz", "").Code == 200 })
	servePath(s.Handler, "GET", "/readyz", "")
	if n := strings.Count(logs.String(), "readiness check passes again"); n != 1 {
		t.Fatalf("recovery logged %d times", n)
	}
}

// TestReadyzCheckOutlivesTheClient: the check runs under ReadyTimeout
// whatever the request's context does, so a client that hangs up does not
// leave a failure behind for everyone else.
func TestReadyzCheckOutlivesTheClient(t *testing.T) {
	deadline := make(chan time.Duration, 1)
	s := rpctest.NewServer(t, rpctest.Options{Configure: func(o *rpc.Options) {
		o.ReadyTimeout = 7 * time.Second
		o.Ready = func(ctx context.Context) error {
			d, _ := ctx.Deadline()
			deadline <- time.Until(d)
			return ctx.Err()
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", "/readyz", nil)
	rec := httptest.NewRecorder()
	s.Handler.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("/readyz from a client that hung up: %d (the check saw its cancellation)", rec.Code)
	}
	if d := <-deadline; d < 6*time.Second || d > 7*time.Second {
		t.Fatalf("the check's deadline is %s away, want ReadyTimeout (7s)", d)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

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
