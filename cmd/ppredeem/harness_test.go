package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/spend/pgtest"
	"github.com/ppredeem/ppredeem/verify"
)

// The test key of PROTOCOL.md §8 (public; never for production).
const testKeyFile = "testdata/test-key.pem"

func testKey(t testing.TB) *verify.Key {
	t.Helper()
	data, err := os.ReadFile(testKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := verify.ParseKeysPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return keys[0]
}

// writeKeyFile writes keys to a new PEM file and returns its path.
func writeKeyFile(t testing.TB, dir string, keys ...*verify.Key) string {
	t.Helper()
	var pemBytes []byte
	for _, k := range keys {
		pemBytes = append(pemBytes, k.MarshalPEM()...)
	}
	f, err := os.CreateTemp(dir, "key-*.pem")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(pemBytes); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

func newKey(t testing.TB) *verify.Key {
	t.Helper()
	k, err := verify.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
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

// storeArgs returns, per spent-token store, the flags that select a fresh one.
func storeArgs(t *testing.T) map[string][]string {
	return map[string][]string{
		"postgres": {"--database-url", pgtest.NewMigratedDatabase(t, "cmd")},
		"embedded": {"--data-dir", t.TempDir()},
	}
}

type testServer struct {
	url    string // the redeem endpoint
	base   string // http://host:port
	admin  string // http://host:port of the admin listener, if any
	cancel context.CancelFunc
	hup    chan os.Signal
	done   chan error
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
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{cancel: cancel, hup: make(chan os.Signal, 1), done: make(chan error, 1)}
	addrs := make(chan [2]net.Addr, 1)
	go func() {
		s.done <- runServer(ctx, cfg, logger, s.hup, func(main, admin net.Addr) { addrs <- [2]net.Addr{main, admin} })
	}()
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

// stop shuts the server down gracefully and waits for it; safe to call twice.
func (s *testServer) stop(t testing.TB) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("server stopped with error: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("server did not stop within 30s")
	}
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type rpcResponse struct {
	Version string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  *string         `json:"result"`
	Error   *rpcError       `json:"error"`
}

// code is "success" or the error code, for compact assertions.
func (r rpcResponse) code() string {
	switch {
	case r.Error != nil:
		return fmt.Sprint(r.Error.Code)
	case r.Result != nil && *r.Result == "success":
		return "success"
	}
	return "malformed"
}

var httpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 128},
}

// call sends one HTTP request and decodes the JSON-RPC answer, failing the
// test if the answer is not a JSON-RPC 2.0 body.
func call(t testing.TB, method, url, body string) (int, rpcResponse) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r rpcResponse
	if err := json.Unmarshal(raw, &r); err != nil || r.Version != "2.0" {
		t.Fatalf("%s %s: HTTP %d, not a JSON-RPC body: %q", method, url, resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	return resp.StatusCode, r
}

func post(t testing.TB, url, body string) (int, rpcResponse) {
	t.Helper()
	return call(t, http.MethodPost, url, body)
}

// token is one minted redemption.
type token struct {
	t        []byte
	tag      []byte
	bindings []string
	method   verify.Method
}

func mint(t testing.TB, key *verify.Key, m verify.Method) token {
	t.Helper()
	tok := token{t: make([]byte, 32), bindings: []string{"www.example.com", "GET /"}, method: m}
	rand.Read(tok.t)
	tag, err := key.Tag(tok.t, m, false, tok.bindings)
	if err != nil {
		t.Fatal(err)
	}
	tok.tag = tag
	return tok
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func settings(curve, hash, method string) string {
	return b64([]byte(fmt.Sprintf(`{"curve":%q,"hash":%q,"method":%q}`, curve, hash, method)))
}

// body builds a redeem request for tok with the given JSON id.
func (tok token) body(id any) string {
	params := map[string]any{
		"data":     []string{b64(tok.t), b64(tok.tag), settings("p256", "sha256", tok.method.String())},
		"bindings": tok.bindings,
	}
	return request(id, "redeem", params)
}

func request(id any, method string, params any) string {
	var buf bytes.Buffer
	m := map[string]any{"jsonrpc": "2.0", "method": method, "params": params}
	if id != nil {
		m["id"] = id
	}
	if err := json.NewEncoder(&buf).Encode(m); err != nil {
		panic(err)
	}
	return buf.String()
}

// tryPost is post for requests that may legitimately fail in transport
// (the server is being killed): ok is false when no JSON-RPC answer came.
func tryPost(ctx context.Context, url, body string) (rpcResponse, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return rpcResponse{}, false
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return rpcResponse{}, false
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return rpcResponse{}, false
	}
	var r rpcResponse
	if json.Unmarshal(raw, &r) != nil {
		return rpcResponse{Result: new(string)}, true // counted as "malformed"
	}
	return r, true
}
