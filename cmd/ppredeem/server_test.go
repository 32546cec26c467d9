package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/spend/pgtest"
	"github.com/ppredeem/ppredeem/verify"
)

// TestErrorTable sends one request per row of PROTOCOL.md §2 (and success)
// through real HTTP to the real server wiring, for each store.
func TestErrorTable(t *testing.T) {
	key := testKey(t)
	for name, args := range storeArgs(t) {
		t.Run(name, func(t *testing.T) {
			srv := startServer(t, newConfig(t, append(args, "--keys", testKeyFile)...))
			fresh := func() token { return mint(t, key, verify.Increment) }

			spent := fresh()
			if status, r := post(t, srv.url, spent.body(1)); status != 200 || r.code() != "success" || string(r.ID) != "1" {
				t.Fatalf("first redemption: HTTP %d %+v", status, r)
			}

			badTag := fresh()
			badTag.tag[0] ^= 1
			badCurve := fresh()
			wrongKey := mint(t, newKey(t), verify.Increment)

			rows := []struct {
				name, method, body string
				status             int
				code               string
				id                 string
			}{
				{"success", "POST", fresh().body("abc"), 200, "success", `"abc"`},
				{"-32020 bad tag", "POST", badTag.body(2), 403, "-32020", "2"},
				{"-32020 unknown key", "POST", wrongKey.body(3), 403, "-32020", "3"},
				{"-32021 already spent", "POST", spent.body(4), 403, "-32021", "4"},
				{"-32022 curve", "POST", request(5, "redeem", map[string]any{
					"data":     []string{b64(badCurve.t), b64(badCurve.tag), settings("p384", "sha256", "increment")},
					"bindings": badCurve.bindings}), 400, "-32022", "5"},
				{"-32040 issue", "POST", request(6, "issue", map[string]any{"data": []string{}}), 400, "-32040", "6"},
				{"-32041 GET", "GET", "", 405, "-32041", "null"},
				{"-32041 PUT with body", "PUT", fresh().body(7), 405, "-32041", "null"},
				{"-32600 notification", "POST", fresh().body(nil), 400, "-32600", "null"},
				{"-32600 wrong version", "POST", `{"jsonrpc":"1.0","method":"redeem","id":8,"params":{}}`, 400, "-32600", "8"},
				{"-32600 not an object", "POST", `"hello"`, 400, "-32600", "null"},
				{"-32601 unknown method", "POST", request(9, "spend", map[string]any{}), 400, "-32601", "9"},
				{"-32602 bad base64", "POST", request(10, "redeem", map[string]any{
					"data": []string{"!!!", b64(make([]byte, 32))}, "bindings": []string{}}), 400, "-32602", "10"},
				{"-32700 not JSON", "POST", `{"jsonrpc":"2.0",`, 400, "-32700", "null"},
			}
			for _, row := range rows {
				t.Run(row.name, func(t *testing.T) {
					status, r := call(t, row.method, srv.url, row.body)
					if status != row.status || r.code() != row.code || string(r.ID) != row.id {
						t.Fatalf("got HTTP %d code %s id %s (%+v); want HTTP %d code %s id %s",
							status, r.code(), r.ID, r.Error, row.status, row.code, row.id)
					}
				})
			}

			// Failed checks spend nothing: the bad-tag and curve tokens,
			// sent right, still succeed; so does the notification's token.
			badTag.tag[0] ^= 1
			for _, tok := range []token{badTag, badCurve} {
				if _, r := post(t, srv.url, tok.body(11)); r.code() != "success" {
					t.Errorf("token of a failed request was spent: %+v", r.Error)
				}
			}
		})
	}
}

func TestNotificationNeverSpends(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile))
	tok := mint(t, testKey(t), verify.Increment)
	for _, body := range []string{tok.body(nil), strings.Replace(tok.body(1), `"id":1`, `"id":null`, 1)} {
		if status, r := post(t, srv.url, body); status != 400 || r.code() != "-32600" {
			t.Fatalf("notification: HTTP %d %+v", status, r)
		}
	}
	if _, r := post(t, srv.url, tok.body(1)); r.code() != "success" {
		t.Fatalf("a notification spent the token: %+v", r.Error)
	}
}

func TestBodyLimit(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile))
	big := `{"jsonrpc":"2.0","id":1,"method":"redeem","params":{"bindings":["` + strings.Repeat("a", 2<<20) + `"]}}`
	status, r := post(t, srv.url, big)
	if status != http.StatusRequestEntityTooLarge || r.code() != "-32600" || !strings.Contains(r.Error.Message, "1048576") {
		t.Fatalf("oversized body: HTTP %d %+v", status, r.Error)
	}
	if _, r := post(t, srv.url, mint(t, testKey(t), verify.Increment).body(2)); r.code() != "success" {
		t.Fatalf("server unusable after an oversized body: %+v", r.Error)
	}
}

// TestConcurrentDoubleSpend: one valid token from 64 goroutines at once
// gives exactly one success and 63 × -32021, for both H2C methods and both
// stores.
func TestConcurrentDoubleSpend(t *testing.T) {
	key := testKey(t)
	for name, args := range storeArgs(t) {
		t.Run(name, func(t *testing.T) {
			srv := startServer(t, newConfig(t, append(args, "--keys", testKeyFile)...))
			for _, m := range []verify.Method{verify.Increment, verify.SWU} {
				t.Run(m.String(), func(t *testing.T) {
					body := mint(t, key, m).body(1)
					const n = 64
					codes := make(chan string, n)
					start := make(chan struct{})
					var wg sync.WaitGroup
					for range n {
						wg.Add(1)
						go func() {
							defer wg.Done()
							<-start
							status, r := post(t, srv.url, body)
							codes <- fmt.Sprintf("%d %s", status, r.code())
						}()
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
}

// TestRestartRemembersSpends: redeem, stop the server, start it again on
// the same store, redeem again: -32021.
func TestRestartRemembersSpends(t *testing.T) {
	key := testKey(t)
	for name, args := range storeArgs(t) {
		t.Run(name, func(t *testing.T) {
			cfg := newConfig(t, append(args, "--keys", testKeyFile)...)
			tok := mint(t, key, verify.Increment)
			srv := startServer(t, cfg)
			if _, r := post(t, srv.url, tok.body(1)); r.code() != "success" {
				t.Fatalf("first redemption: %+v", r.Error)
			}
			srv.stop(t)
			srv = startServer(t, cfg)
			if status, r := post(t, srv.url, tok.body(1)); status != 403 || r.code() != "-32021" {
				t.Fatalf("after restart: HTTP %d %+v", status, r)
			}
		})
	}
}

// TestDatabaseOutage cuts the server off from Postgres (every connection
// through a proxy is dropped and new ones are refused): redemptions get
// -32603/500 within seconds, and succeed again once the database is back,
// without restarting the server.
func TestDatabaseOutage(t *testing.T) {
	dsn := pgtest.NewMigratedDatabase(t, "cmd")
	proxy := newTCPProxy(t, dsn)
	srv := startServer(t, newConfig(t, "--database-url", proxy.dsn, "--keys", testKeyFile, "--spend-timeout", "2s"))
	key := testKey(t)
	if _, r := post(t, srv.url, mint(t, key, verify.Increment).body(1)); r.code() != "success" {
		t.Fatalf("before the outage: %+v", r.Error)
	}

	proxy.setDown(true)
	down := mint(t, key, verify.Increment)
	start := time.Now()
	status, r := post(t, srv.url, down.body(2))
	elapsed := time.Since(start)
	if status != 500 || r.code() != "-32603" || r.Error.Message != "Internal error" {
		t.Fatalf("during the outage: HTTP %d %+v", status, r)
	}
	if elapsed > 10*time.Second {
		t.Fatalf("internal error took %s: must come within seconds", elapsed)
	}
	if status := getStatus(t, srv.base+"/readyz"); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: HTTP %d, want 503", status)
	}

	proxy.setDown(false)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, r := post(t, srv.url, mint(t, key, verify.Increment).body(3))
		if r.code() == "success" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery within 20s of the database coming back: %+v", r.Error)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The token tried during the outage was not spent (its insert never
	// reached the database), so it redeems now.
	if _, r := post(t, srv.url, down.body(4)); r.code() != "success" && r.code() != "-32021" {
		t.Fatalf("token tried during the outage: %+v", r.Error)
	}
}

func TestServeRefusesSchemaBehind(t *testing.T) {
	dsn := pgtest.NewDatabase(t, "cmd")
	cfg := newConfig(t, "--database-url", dsn, "--keys", testKeyFile)
	err := runServer(context.Background(), cfg, discardLogger(), nil, nil)
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
		err := runServer(context.Background(), cfg, discardLogger(), nil, nil)
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("key file %s: want an error naming it, got %v", bad, err)
		}
	}
}

// TestKeyReload: SIGHUP re-reads the key files. An added key serves at once;
// a removed key's tokens get -32020; a broken file keeps the old keys.
func TestKeyReload(t *testing.T) {
	dir := t.TempDir()
	a, b := newKey(t), newKey(t)
	keyFile := writeKeyFile(t, dir, a)
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", keyFile))
	reload := func(keys ...*verify.Key) {
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
		srv.hup <- os.Interrupt // any value: the channel stands for SIGHUP
		waitFor(t, func() bool { return len(srv.hup) == 0 })
		time.Sleep(100 * time.Millisecond) // the reload runs after the receive
	}
	expect := func(k *verify.Key, want string) {
		t.Helper()
		if _, r := post(t, srv.url, mint(t, k, verify.Increment).body(1)); r.code() != want {
			t.Fatalf("key %s: got %s (%+v), want %s", k.ID(), r.code(), r.Error, want)
		}
	}
	expect(a, "success")
	expect(b, "-32020")
	reload(a, b)
	expect(b, "success")
	reload(b)
	expect(a, "-32020")
	expect(b, "success")
	reload() // broken file: keep b
	expect(b, "success")
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile))
	for _, path := range []string{"/healthz", "/readyz"} {
		if status := getStatus(t, srv.base+path); status != 200 {
			t.Errorf("GET %s: HTTP %d", path, status)
		}
	}
	for _, path := range []string{"/", "/metrics", "/api/redeem", "/debug/pprof/"} {
		if status, r := call(t, "GET", srv.base+path, ""); status != 405 || r.code() != "-32041" {
			t.Errorf("GET %s on the main listener: HTTP %d %+v", path, status, r)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func getStatus(t testing.TB, url string) int {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestPostgresOutageUnderLoad: the database goes away under load and comes
// back. While it is away requests fail with -32603; no success is ever sent
// for a spend that did not commit (every success is found recorded
// afterwards); serving resumes without a restart.
func TestPostgresOutageUnderLoad(t *testing.T) {
	dsn := pgtest.NewMigratedDatabase(t, "cmd")
	proxy := newTCPProxy(t, dsn)
	srv := startServer(t, newConfig(t, "--database-url", proxy.dsn, "--keys", testKeyFile, "--spend-timeout", "1s"))
	key := testKey(t)

	type result struct {
		tok   token
		code  string
		phase int
	}
	var phase atomic.Int32 // 0 before, 1 down, 2 back up
	results := make(chan result, 100000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok := mint(t, key, verify.Increment)
				r, ok := tryPost(context.Background(), srv.url, tok.body(1))
				code := "transport"
				if ok {
					code = r.code()
				}
				results <- result{tok, code, int(phase.Load())}
			}
		}()
	}
	time.Sleep(time.Second)
	phase.Store(1)
	proxy.setDown(true)
	time.Sleep(2 * time.Second)
	proxy.setDown(false)
	phase.Store(2)
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	close(results)

	count := map[string]int{}
	var succeeded []token
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
	t.Logf("answers by phase: %v", count)
	if count["1:-32603"] == 0 {
		t.Error("no internal error while the database was away")
	}
	if count["2:success"] == 0 {
		t.Error("no success after the database came back: serving did not resume")
	}
	// Every success was committed: spending it again, straight to the
	// database, finds it already there.
	store, err := spend.OpenPostgres(context.Background(), spend.PostgresConfig{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, tok := range succeeded {
		if err := store.Spend(context.Background(), key.ID(), tok.t); !errors.Is(err, spend.ErrAlreadySpent) {
			t.Fatalf("a token answered success is not recorded: %v", err)
		}
	}
}

// TestDrainDelay: once shutdown begins, /readyz fails while redemptions are
// still served, for drain_delay; then the server stops.
func TestDrainDelay(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--drain-delay", "2s"))
	srv.cancel() // what SIGTERM does
	time.Sleep(300 * time.Millisecond)
	if status := getStatus(t, srv.base+"/readyz"); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: HTTP %d, want 503", status)
	}
	if _, r := post(t, srv.url, mint(t, testKey(t), verify.Increment).body(1)); r.code() != "success" {
		t.Errorf("redemption while draining: %+v", r.Error)
	}
	select {
	case err := <-srv.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop after the drain delay")
	}
	srv.cancel = nil
}
