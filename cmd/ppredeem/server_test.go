package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/spend/pgtest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// TestErrorTable sends one request per row of verify/PROTOCOL.md §2 (and
// success) through real HTTP to the real server wiring, for each store.
func TestErrorTable(t *testing.T) {
	key := verifytest.Key()
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		srv := startServer(t, newConfig(t, append(storeArgs, "--keys", testKeyFile)...))
		fresh := func() verifytest.Token { return verifytest.Mint(t, key, verify.Increment) }

		spent := fresh()
		if status, r := post(t, srv.url, rpctest.Redeem(1, spent)); status != 200 || r.Code() != "success" || string(r.ID) != "1" {
			t.Fatalf("first redemption: HTTP %d %+v", status, r)
		}

		badTag := fresh()
		badTag.Tag[0] ^= 1
		badCurve := fresh()
		wrongKey := verifytest.Mint(t, verifytest.NewKey(t), verify.Increment)

		rows := []struct {
			name, method, body string
			status             int
			code               string
			id                 string
		}{
			{"success", "POST", rpctest.Redeem("abc", fresh()), 200, "success", `"abc"`},
			{"-32020 bad tag", "POST", rpctest.Redeem(2, badTag), 403, "-32020", "2"},
			{"-32020 unknown key", "POST", rpctest.Redeem(3, wrongKey), 403, "-32020", "3"},
			{"-32021 already spent", "POST", rpctest.Redeem(4, spent), 403, "-32021", "4"},
			{"-32022 curve", "POST", rpctest.Request(5, "redeem", map[string]any{
				"data":     []string{b64(badCurve.Token), b64(badCurve.Tag), verifytest.Settings("p384", "sha256", "increment")},
				"bindings": badCurve.Bindings}), 400, "-32022", "5"},
			{"-32040 issue", "POST", rpctest.Request(6, "issue", map[string]any{"data": []string{}}), 400, "-32040", "6"},
			{"-32041 GET", "GET", "", 405, "-32041", "null"},
			{"-32041 PUT with body", "PUT", rpctest.Redeem(7, fresh()), 405, "-32041", "null"},
			{"-32600 notification", "POST", rpctest.Redeem(nil, fresh()), 400, "-32600", "null"},
			{"-32600 wrong version", "POST", `{"jsonrpc":"1.0","method":"redeem","id":8,"params":{}}`, 400, "-32600", "8"},
			{"-32600 not an object", "POST", `"hello"`, 400, "-32600", "null"},
			{"-32601 unknown method", "POST", rpctest.Request(9, "spend", map[string]any{}), 400, "-32601", "9"},
			{"-32602 bad base64", "POST", rpctest.Request(10, "redeem", map[string]any{
				"data": []string{"!!!", b64(make([]byte, 32))}, "bindings": []string{}}), 400, "-32602", "10"},
			{"-32700 not JSON", "POST", `{"jsonrpc":"2.0",`, 400, "-32700", "null"},
		}
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) {
				status, r := rpctest.Call(t, row.method, srv.url, row.body)
				if status != row.status || r.Code() != row.code || string(r.ID) != row.id {
					t.Fatalf("got HTTP %d code %s id %s (%+v); want HTTP %d code %s id %s",
						status, r.Code(), r.ID, r.Error, row.status, row.code, row.id)
				}
			})
		}

		// Failed checks spend nothing: the bad-tag and curve tokens,
		// sent right, still succeed; so does the notification's token.
		badTag.Tag[0] ^= 1
		for _, tok := range []verifytest.Token{badTag, badCurve} {
			if _, r := post(t, srv.url, rpctest.Redeem(11, tok)); r.Code() != "success" {
				t.Errorf("token of a failed request was spent: %+v", r.Error)
			}
		}
	})
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestNotificationNeverSpends(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile))
	tok := verifytest.Mint(t, verifytest.Key(), verify.Increment)
	for _, body := range []string{rpctest.Redeem(nil, tok), strings.Replace(rpctest.Redeem(1, tok), `"id":1`, `"id":null`, 1)} {
		if status, r := post(t, srv.url, body); status != 400 || r.Code() != "-32600" {
			t.Fatalf("notification: HTTP %d %+v", status, r)
		}
	}
	if _, r := post(t, srv.url, rpctest.Redeem(1, tok)); r.Code() != "success" {
		t.Fatalf("a notification spent the token: %+v", r.Error)
	}
}

func TestBodyLimit(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile))
	big := `{"jsonrpc":"2.0","id":1,"method":"redeem","params":{"bindings":["` + strings.Repeat("a", 2<<20) + `"]}}`
	status, r := post(t, srv.url, big)
	if status != http.StatusRequestEntityTooLarge || r.Code() != "-32600" || !strings.Contains(r.Error.Message, "1048576") {
		t.Fatalf("oversized body: HTTP %d %+v", status, r.Error)
	}
	if _, r := post(t, srv.url, rpctest.Redeem(2, verifytest.Mint(t, verifytest.Key(), verify.Increment))); r.Code() != "success" {
		t.Fatalf("server unusable after an oversized body: %+v", r.Error)
	}
}

// TestConcurrentDoubleSpend: one valid token from 64 goroutines at once
// gives exactly one success and 63 × -32021, for both H2C methods and both
// stores.
func TestConcurrentDoubleSpend(t *testing.T) {
	key := verifytest.Key()
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		srv := startServer(t, newConfig(t, append(storeArgs, "--keys", testKeyFile)...))
		for _, m := range []verify.Method{verify.Increment, verify.SWU} {
			t.Run(m.String(), func(t *testing.T) {
				body := rpctest.Redeem(1, verifytest.Mint(t, key, m))
				const n = 64
				codes := make(chan string, n)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for range n {
					wg.Go(func() {
						<-start
						status, r, err := rpctest.Do(context.Background(), "POST", srv.url, body)
						if err != nil {
							t.Error(err)
							return
						}
						codes <- fmt.Sprintf("%d %s", status, r.Code())
					})
				}
				close(start)
				wg.Wait()
				close(codes)
				count := map[string]int{}
				for c := range codes {
					count[c]++
				}
				if count["200 success"] != 1 || count["403 -32021"] != n-1 {
					t.Fatalf("want 1 success and %d already-spent, got %v", n-1, count)
				}
			})
		}
	})
}

// TestRestartRemembersSpends: redeem, stop the server, start it again on
// the same store, redeem again: -32021.
func TestRestartRemembersSpends(t *testing.T) {
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		cfg := newConfig(t, append(storeArgs, "--keys", testKeyFile)...)
		tok := verifytest.Mint(t, verifytest.Key(), verify.Increment)
		srv := startServer(t, cfg)
		if _, r := post(t, srv.url, rpctest.Redeem(1, tok)); r.Code() != "success" {
			t.Fatalf("first redemption: %+v", r.Error)
		}
		srv.stop(t)
		srv = startServer(t, cfg)
		if status, r := post(t, srv.url, rpctest.Redeem(1, tok)); status != 403 || r.Code() != "-32021" {
			t.Fatalf("after restart: HTTP %d %+v", status, r)
		}
	})
}

// TestDatabaseOutage cuts the server off from Postgres (every connection
// through a proxy is dropped and new ones are refused): redemptions get
// -32603/500 within seconds, and succeed again once the database is back,
// without restarting the server.
func TestDatabaseOutage(t *testing.T) {
	dsn := pgtest.NewMigratedDatabase(t, "cmd")
	proxy := newTCPProxy(t, dsn)
	srv := startServer(t, newConfig(t, "--database-url", proxy.dsn, "--keys", testKeyFile, "--spend-timeout", "2s"))
	key := verifytest.Key()
	if _, r := post(t, srv.url, rpctest.Redeem(1, verifytest.Mint(t, key, verify.Increment))); r.Code() != "success" {
		t.Fatalf("before the outage: %+v", r.Error)
	}

	proxy.setDown(true)
	down := verifytest.Mint(t, key, verify.Increment)
	start := time.Now()
	status, r := post(t, srv.url, rpctest.Redeem(2, down))
	elapsed := time.Since(start)
	if status != 500 || r.Code() != "-32603" || r.Error.Message != "Internal error" {
		t.Fatalf("during the outage: HTTP %d %+v", status, r)
	}
	if elapsed > 10*time.Second {
		t.Fatalf("internal error took %s: must come within seconds", elapsed)
	}
	if status := getStatus(t, srv.base+"/readyz"); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: HTTP %d, want 503", status)
	}

	proxy.setDown(false)
	waitFor(t, "a redemption succeeds once the database is back", func() bool {
		_, r := post(t, srv.url, rpctest.Redeem(3, verifytest.Mint(t, key, verify.Increment)))
		return r.Code() == "success"
	})
	// The token tried during the outage was not spent (its insert never
	// reached the database), so it redeems now.
	if _, r := post(t, srv.url, rpctest.Redeem(4, down)); r.Code() != "success" && r.Code() != "-32021" {
		t.Fatalf("token tried during the outage: %+v", r.Error)
	}
}

func TestServeRefusesSchemaBehind(t *testing.T) {
	dsn := pgtest.NewDatabase(t, "cmd")
	cfg := newConfig(t, "--database-url", dsn, "--keys", testKeyFile)
	err := runServer(context.Background(), cfg, discardLogger(), lifecycle{})
	if err == nil || !strings.Contains(err.Error(), "ppredeem migrate up") {
		t.Fatalf("want an error naming the fix, got %v", err)
	}
}

func TestServeRejectsBadKeyFiles(t *testing.T) {
	dir := t.TempDir()
	garbage := dir + "/garbage.pem"
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := dir + "/empty.pem"
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{garbage, empty, dir + "/missing.pem"} {
		cfg := newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile+","+bad)
		err := runServer(context.Background(), cfg, discardLogger(), lifecycle{})
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("key file %s: want an error naming it, got %v", bad, err)
		}
	}
}

// TestKeyReload: SIGHUP re-reads the key files. An added key serves at once;
// a removed key's tokens get -32020; a broken file keeps the old keys.
func TestKeyReload(t *testing.T) {
	dir := t.TempDir()
	a, b := verifytest.NewKey(t), verifytest.NewKey(t)
	keyFile := verifytest.WriteKeyFile(t, dir, a)
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", keyFile))
	reload := func(keys ...*verify.Key) error {
		t.Helper()
		var pemBytes []byte
		for _, k := range keys {
			pemBytes = append(pemBytes, k.MarshalPEM()...)
		}
		if len(keys) == 0 {
			pemBytes = []byte("garbage")
		}
		if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		return srv.reload(t)
	}
	expect := func(k *verify.Key, want string) {
		t.Helper()
		if _, r := post(t, srv.url, rpctest.Redeem(1, verifytest.Mint(t, k, verify.Increment))); r.Code() != want {
			t.Fatalf("key %s: got %s (%+v), want %s", k.ID(), r.Code(), r.Error, want)
		}
	}
	expect(a, "success")
	expect(b, "-32020")
	if err := reload(a, b); err != nil {
		t.Fatal(err)
	}
	expect(b, "success")
	if err := reload(b); err != nil {
		t.Fatal(err)
	}
	expect(a, "-32020")
	expect(b, "success")
	if err := reload(); err == nil || !strings.Contains(err.Error(), keyFile) { // broken file: keep b
		t.Fatalf("reload of a broken file: %v", err)
	}
	expect(b, "success")
}

func TestHealthAndReadiness(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile))
	for _, path := range []string{"/healthz", "/readyz"} {
		if status := getStatus(t, srv.base+path); status != 200 {
			t.Errorf("GET %s: HTTP %d", path, status)
		}
	}
	for _, path := range []string{"/", "/metrics", "/api/redeem", "/debug/pprof/"} {
		if status, r := rpctest.Call(t, "GET", srv.base+path, ""); status != 405 || r.Code() != "-32041" {
			t.Errorf("GET %s on the main listener: HTTP %d %+v", path, status, r)
		}
	}
}

// TestPostgresOutageUnderLoad: the database goes away under load and comes
// back. While it is away requests fail with -32603; no success is ever sent
// for a spend that did not commit (every success is found recorded
// afterwards); serving resumes without a restart. The phases end on what
// the clients saw, not on a clock.
func TestPostgresOutageUnderLoad(t *testing.T) {
	dsn := pgtest.NewMigratedDatabase(t, "cmd")
	proxy := newTCPProxy(t, dsn)
	srv := startServer(t, newConfig(t, "--database-url", proxy.dsn, "--keys", testKeyFile, "--spend-timeout", "1s"))
	key := verifytest.Key()

	type result struct {
		tok   verifytest.Token
		code  string
		phase int32
	}
	var phase atomic.Int32 // 0 before, 1 down, 2 back up
	var seen [3]struct{ success, internal atomic.Int32 }
	results := make(chan result, 100000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok, err := verifytest.NewToken(key, verify.Increment, false, verifytest.BrowserBindings())
				if err != nil {
					t.Error(err)
					return
				}
				p := phase.Load()
				code := "transport"
				if _, r, err := rpctest.Do(context.Background(), "POST", srv.url, rpctest.Redeem(1, tok)); err == nil {
					code = r.Code()
				}
				switch code {
				case "success":
					seen[p].success.Add(1)
				case "-32603":
					seen[p].internal.Add(1)
				}
				results <- result{tok, code, p}
			}
		})
	}
	waitFor(t, "20 successes before the outage", func() bool { return seen[0].success.Load() >= 20 })
	proxy.setDown(true)
	phase.Store(1)
	waitFor(t, "20 internal errors while the database is away", func() bool { return seen[1].internal.Load() >= 20 })
	proxy.setDown(false)
	phase.Store(2)
	waitFor(t, "20 successes after the database came back", func() bool { return seen[2].success.Load() >= 20 })
	close(stop)
	wg.Wait()
	close(results)

	count := map[string]int{}
	var succeeded []verifytest.Token
	for r := range results {
		count[fmt.Sprintf("%d:%s", r.phase, r.code)]++
		switch r.code {
		case "success":
			succeeded = append(succeeded, r.tok)
		case "-32603":
		default:
			t.Errorf("phase %d: unexpected answer %s", r.phase, r.code)
		}
	}
	t.Logf("answers by phase (the phase when the request was sent): %v", count)
	// Every success was committed: spending it again, straight to the
	// database, finds it already there.
	store, err := spend.OpenPostgres(context.Background(), spend.PostgresConfig{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, tok := range succeeded {
		if err := store.Spend(context.Background(), key.ID(), tok.Token); !errors.Is(err, spend.ErrAlreadySpent) {
			t.Fatalf("a token answered success is not recorded: %v", err)
		}
	}
}

// TestDrainDelay: once shutdown begins, /readyz fails while redemptions are
// still served, for drain_delay; a second stop signal ends the drain at
// once. Cancelling the context stands for the first signal as main does
// it (which also lands on the stop channel), so a stop value after it
// counts as the first and the next one as the second.
func TestDrainDelay(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--drain-delay", "10m"))
	srv.cancel() // main, at the first SIGTERM
	srv.cancel = nil
	<-srv.draining
	if status := getStatus(t, srv.base+"/readyz"); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: HTTP %d, want 503", status)
	}
	if _, r := post(t, srv.url, rpctest.Redeem(1, verifytest.Mint(t, verifytest.Key(), verify.Increment))); r.Code() != "success" {
		t.Errorf("redemption while draining: %+v", r.Error)
	}
	srv.stopSig <- os.Interrupt // the first SIGTERM, reaching the stop channel late
	if n := <-srv.signals; n != 1 {
		t.Fatalf("the first signal counted as signal %d", n)
	}
	if status := getStatus(t, srv.base+"/readyz"); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz after the first signal: HTTP %d, want 503 (still draining)", status)
	}
	srv.stopSig <- os.Interrupt // the second SIGTERM
	if err := srv.wait(30 * time.Second); !errors.Is(err, errStoppedAtOnce) {
		t.Fatalf("second signal during a 10-minute drain: %v", err)
	}
}

// TestDrainDelayEnds: without a second signal the drain delay runs out and
// the server stops cleanly.
func TestDrainDelayEnds(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--drain-delay", "200ms"))
	srv.stopSig <- os.Interrupt // the first SIGTERM
	<-srv.draining
	if err := srv.wait(30 * time.Second); err != nil {
		t.Fatalf("after the drain delay: %v", err)
	}
}
