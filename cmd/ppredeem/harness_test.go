package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/spend/pgtest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// testKeyFile holds the public test key (verifytest.Key), the file the
// README and docker-compose.yml serve with.
const testKeyFile = "testdata/test-key.pem"

// The helpers bench_test.go calls, in the shape it calls them; they only
// delegate to verifytest and rpctest.

func testKey(testing.TB) *verify.Key { return verifytest.Key() }

func newKey(t testing.TB) *verify.Key { t.Helper(); return verifytest.NewKey(t) }

func writeKeyFile(t testing.TB, dir string, keys ...*verify.Key) string {
	t.Helper()
	return verifytest.WriteKeyFile(t, dir, keys...)
}

// minted is a token with its redeem request.
type minted struct{ verifytest.Token }

func (m minted) body(id any) string { return rpctest.Redeem(id, m.Token) }

func mint(t testing.TB, key *verify.Key, method verify.Method) minted {
	t.Helper()
	return minted{verifytest.Mint(t, key, method)}
}

// newConfig decodes serve's settings from args exactly as the command does.
func newConfig(t testing.TB, args ...string) *config.Config {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	loader := config.Bind(fs, serveSettings...)
	if err := fs.Parse(append([]string{"--listen", "127.0.0.1:0"}, args...)); err != nil {
		t.Fatal(err)
	}
	cfg, err := loader.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateServe(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// embeddedStore returns the flags that select a fresh embedded store.
func embeddedStore(t testing.TB) []string { return []string{"--data-dir", t.TempDir()} }

// postgresStore returns the flags that select a fresh migrated Postgres
// database. Without Postgres it skips the test (fails under CI=true).
func postgresStore(t testing.TB) []string {
	return []string{"--database-url", pgtest.NewMigratedDatabase(t, "cmd")}
}

// forEachStore runs test once per spent-token store, as subtests named
// after the store, with the flags that select a fresh one. Without
// Postgres only the postgres subtest skips.
func forEachStore(t *testing.T, test func(t *testing.T, storeArgs []string)) {
	for _, s := range []struct {
		name string
		args func(testing.TB) []string
	}{{"embedded", embeddedStore}, {"postgres", postgresStore}} {
		t.Run(s.name, func(t *testing.T) { test(t, s.args(t)) })
	}
}

type testServer struct {
	url      string // the redeem endpoint
	base     string // http://host:port
	admin    string // http://host:port of the admin listener, if any
	cancel   context.CancelFunc
	hup      chan os.Signal // stands for SIGHUP
	stopSig  chan os.Signal // stands for SIGTERM
	reloaded chan error     // one value per reload
	draining chan struct{}  // closed when shutdown begins
	signals  chan int       // the count of stop values, after each
	done     chan error
}

// startServer runs the real server wiring (runServer) in-process on a free
// port and stops it when the test ends.
func startServer(t testing.TB, cfg *config.Config) *testServer {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return startServerLogging(t, cfg, logger)
}

// startServerLogging is startServer with the server's logger.
func startServerLogging(t testing.TB, cfg *config.Config, logger *slog.Logger) *testServer {
	t.Helper()
	return startServerClock(t, cfg, logger, nil)
}

// startServerClock is startServerLogging with the server's clock (nil: time.Now).
func startServerClock(t testing.TB, cfg *config.Config, logger *slog.Logger, now func() time.Time) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{
		cancel: cancel, hup: make(chan os.Signal, 1), stopSig: make(chan os.Signal, 2),
		reloaded: make(chan error, 1), draining: make(chan struct{}), signals: make(chan int, 2), done: make(chan error, 1),
	}
	addrs := make(chan [2]net.Addr, 1)
	lc := lifecycle{
		hup:       s.hup,
		stop:      s.stopSig,
		listening: func(main, admin net.Addr) { addrs <- [2]net.Addr{main, admin} },
		reloaded:  func(err error) { s.reloaded <- err },
		draining:  func() { close(s.draining) },
		signalled: func(n int) { s.signals <- n },
		now:       now,
	}
	go func() { s.done <- runServer(ctx, cfg, logger, lc) }()
	select {
	case a := <-addrs:
		s.base = "http://" + a[0].String()
		s.url = s.base + "/api/redeem"
		if a[1] != nil {
			s.admin = "http://" + a[1].String()
		}
	case err := <-s.done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start within 30s")
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// reload stands for SIGHUP and waits until the reload is done; it returns
// the reload's error (nil: the new keys are in force).
func (s *testServer) reload(t testing.TB) error {
	t.Helper()
	s.hup <- os.Interrupt // any value: the channel stands for SIGHUP
	select {
	case err := <-s.reloaded:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("no reload within 30s of SIGHUP")
		return nil
	}
}

// stop shuts the server down gracefully and waits for it; safe to call twice.
func (s *testServer) stop(t testing.TB) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	if err := s.wait(30 * time.Second); err != nil {
		t.Errorf("server stopped with error: %v", err)
	}
}

// wait waits for runServer to return and gives its error.
func (s *testServer) wait(timeout time.Duration) error {
	select {
	case err := <-s.done:
		s.done <- err // for a second wait
		return err
	case <-time.After(timeout):
		return context.DeadlineExceeded
	}
}

func post(t testing.TB, url, body string) (int, rpctest.Response) {
	t.Helper()
	return rpctest.Post(t, url, body)
}

func getStatus(t testing.TB, url string) int {
	t.Helper()
	resp, err := rpctest.HTTPClient().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// metricsText is what the admin listener at admin serves on /metrics.
func metricsText(t testing.TB, admin string) string {
	t.Helper()
	resp, err := rpctest.HTTPClient().Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// metric is the value of the unlabelled metric name on the admin listener
// at admin; the test fails when /metrics has no such line.
func metric(t testing.TB, admin, name string) float64 {
	t.Helper()
	for line := range strings.Lines(metricsText(t, admin)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}
