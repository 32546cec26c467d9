package rpc_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/rpc/wire"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// These tests drive the real handler (rpctest.Server: the VOPRF kind over
// a real embedded store) through httptest recorders.

func serve(h http.Handler, method, body string) *httptest.ResponseRecorder {
	return servePath(h, method, rpc.RedeemPath, body)
}

func servePath(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/", strings.NewReader(body))
	req.Method, req.URL.Path = method, path
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decode(t testing.TB, rec *httptest.ResponseRecorder) rpctest.Response {
	t.Helper()
	r, err := rpctest.Decode(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("HTTP %d: %v", rec.Code, err)
	}
	return r
}

// wantAllSuccess checks that a batch of n redemptions all succeeded.
func wantAllSuccess(t *testing.T, rec *httptest.ResponseRecorder, n int) {
	t.Helper()
	rs, err := rpctest.DecodeBatch(rec.Body.Bytes())
	if err != nil || len(rs) != n {
		t.Fatalf("%d requests: %d answers, %v", n, len(rs), err)
	}
	for _, r := range rs {
		if r.Code() != "success" {
			t.Fatalf("%d distinct tokens: %+v", n, r.Error)
		}
	}
}

func mint(t testing.TB, key *verify.Key) verifytest.Token {
	t.Helper()
	return verifytest.MintFor(t, key, verify.Increment, false, []string{"gateway.example", "POST /login"})
}

func TestPlainMethodNameOnly(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{})
	tok := mint(t, s.Key)
	// Gorilla's own dotted names must not be reachable from the wire.
	for _, name := range []string{"Redeem.Redeem", "Discover.Discover", "Redeem", "REDEEM"} {
		rec := serve(s.Handler, "POST", rpctest.Request(1, name, tok.Params()))
		if r := decode(t, rec); r.Code() != "-32601" || r.Error.Message != "Method not found: the methods are redeem and rpc.discover" {
			t.Errorf("method %q: got %s %+v, want -32601", name, r.Code(), r.Error)
		}
	}
	if r := decode(t, serve(s.Handler, "POST", rpctest.Redeem(1, tok))); r.Code() != "success" {
		t.Fatalf("redeem: %+v", r.Error)
	}
}

// TestTwoElementData: data without the settings element is
// p256/sha256/increment.
func TestTwoElementData(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{})
	tok := mint(t, s.Key)
	enc := base64.StdEncoding.EncodeToString
	params := map[string]any{"data": []string{enc(tok.Token), enc(tok.Tag)}, "bindings": tok.Bindings}
	if r := decode(t, serve(s.Handler, "POST", rpctest.Request(1, "redeem", params))); r.Code() != "success" {
		t.Fatalf("two-element data: %+v", r.Error)
	}
}

func TestIDs(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{})
	cases := []struct {
		id     string
		echo   string
		code   string
		status int
	}{
		{`1`, `1`, "success", 200},
		{`"x-1"`, `"x-1"`, "success", 200},
		{`-7`, `-7`, "success", 200},
		{`1.5e3`, `1.5e3`, "success", 200},
		{`null`, `null`, "-32600", 400},
		{`true`, `null`, "-32600", 400},
		{`{"a":1}`, `null`, "-32600", 400},
		{`[1]`, `null`, "-32600", 400},
	}
	for _, c := range cases {
		params, _ := json.Marshal(mint(t, s.Key).Params())
		body := `{"jsonrpc":"2.0","method":"redeem","id":` + c.id + `,"params":` + string(params) + `}`
		rec := serve(s.Handler, "POST", body)
		r := decode(t, rec)
		if rec.Code != c.status || r.Code() != c.code || string(r.ID) != c.echo {
			t.Errorf("id %s: HTTP %d %s id %s, want HTTP %d %s id %s", c.id, rec.Code, r.Code(), r.ID, c.status, c.code, c.echo)
		}
	}
}

func TestContentTypeIgnored(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{})
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8"} {
		req := httptest.NewRequest("POST", rpc.RedeemPath, strings.NewReader(rpctest.Redeem(1, mint(t, s.Key))))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		s.Handler.ServeHTTP(rec, req)
		if r := decode(t, rec); r.Code() != "success" {
			t.Errorf("Content-Type %q: %+v", ct, r.Error)
		}
	}
}

// TestRoutes: the probes answer GET and HEAD, the redeem endpoint POST;
// every other request is a JSON-RPC error, never ServeMux's plain text or
// a redirect.
func TestRoutes(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{})
	body := rpctest.Redeem(1, mint(t, s.Key))
	cases := []struct {
		method, path string
		status       int
		code         string // "" for the probes' own JSON
		message      string
	}{
		{"GET", "/healthz", 200, "", ""},
		{"HEAD", "/healthz", 200, "", ""},
		{"GET", "/readyz", 200, "", ""},
		{"HEAD", "/readyz", 200, "", ""},
		{"POST", "/api/redeem", 200, "success", ""},
		{"GET", "/api/redeem", 405, "-32041", "HTTP method GET is not allowed: use POST"},
		{"PUT", "/api/redeem", 405, "-32041", "HTTP method PUT is not allowed: use POST"},
		{"POST", "/healthz", 405, "-32041", "HTTP method POST is not allowed: use POST"},
		{"POST", "/readyz", 405, "-32041", "HTTP method POST is not allowed: use POST"},
		{"DELETE", "/readyz", 405, "-32041", "HTTP method DELETE is not allowed: use POST"},
		{"GET", "/", 405, "-32041", "HTTP method GET is not allowed: use POST"},
		{"OPTIONS", "/metrics", 405, "-32041", "HTTP method OPTIONS is not allowed: use POST"},
		{"CONNECT", "", 405, "-32041", "HTTP method CONNECT is not allowed: use POST"},
		{"POST", "/", 404, "-32600", "Invalid request: no such endpoint: POST to /api/redeem"},
		{"POST", "/api/redeem/", 404, "-32600", "Invalid request: no such endpoint: POST to /api/redeem"},
		{"POST", "/api//redeem", 404, "-32600", "Invalid request: no such endpoint: POST to /api/redeem"},
		{"POST", "/x/../api/redeem", 404, "-32600", "Invalid request: no such endpoint: POST to /api/redeem"},
		{"POST", "//api/redeem", 404, "-32600", "Invalid request: no such endpoint: POST to /api/redeem"},
		{"GET", "/./healthz", 405, "-32041", "HTTP method GET is not allowed: use POST"},
		{"GET", "/healthz/", 405, "-32041", "HTTP method GET is not allowed: use POST"},
	}
	for _, c := range cases {
		rec := servePath(s.Handler, c.method, c.path, body)
		if rec.Code != c.status || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Errorf("%s %q: HTTP %d %q (%s), want %d", c.method, c.path, rec.Code, rec.Body, rec.Header().Get("Content-Type"), c.status)
			continue
		}
		if rec.Header().Get(rpc.RequestIDHeader) == "" {
			t.Errorf("%s %q: no request ID", c.method, c.path)
		}
		if c.code == "" {
			continue
		}
		r := decode(t, rec)
		if r.Code() != c.code || string(r.ID) != "null" && c.code != "success" || r.Error != nil && r.Error.Message != c.message {
			t.Errorf("%s %q: %s id %s %+v, want %s %q", c.method, c.path, r.Code(), r.ID, r.Error, c.code, c.message)
		}
	}
}

// TestMessagesNeverLeak: no error message holds the token, tag, a binding,
// SQL or Go error text.
func TestMessagesNeverLeak(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{})
	tok := mint(t, s.Key)
	enc := base64.StdEncoding.EncodeToString
	secrets := []string{enc(tok.Token), enc(tok.Tag), tok.Bindings[0], tok.Bindings[1]}
	badTag := append([]byte{}, tok.Tag...)
	badTag[3] ^= 0x40
	bodies := []string{
		rpctest.Request(1, "redeem", map[string]any{"data": []string{enc(tok.Token), enc(badTag)}, "bindings": tok.Bindings}),
		rpctest.Request(1, "redeem", map[string]any{"data": []string{enc(tok.Token), enc(tok.Tag[:31])}, "bindings": tok.Bindings}),
		rpctest.Request(1, "redeem", map[string]any{"data": []string{enc(tok.Token) + "=", enc(tok.Tag)}, "bindings": tok.Bindings}),
		rpctest.Request(1, "redeem", map[string]any{"data": []string{enc(tok.Token), enc(tok.Tag), enc([]byte(tok.Bindings[0]))}, "bindings": tok.Bindings}),
		rpctest.Request(1, "redeem", map[string]any{"data": enc(tok.Token), "bindings": tok.Bindings}),
		rpctest.Request(1, "redeem", map[string]any{"data": []string{enc(tok.Token), enc(tok.Tag)}, "bindings": tok.Bindings[0]}),
		rpctest.Request(1, "redeem", []any{tok.Bindings[0]}),
		rpctest.Request(1, tok.Bindings[0], tok.Params()),
		`{"jsonrpc":"2.0","id":1,"method":"redeem","params":{"data":["` + enc(tok.Token) + `"` + tok.Bindings[0],
		`{"jsonrpc":"2.0","id":1,"method":"redeem","params":{"data":[1,2]},"bindings":["` + tok.Bindings[0] + `"]}`,
	}
	for _, body := range bodies {
		r := decode(t, serve(s.Handler, "POST", body))
		if r.Error == nil {
			t.Fatalf("no error for %q", body)
		}
		msg := strings.ToLower(r.Error.Message)
		for _, secret := range secrets {
			if strings.Contains(r.Error.Message, secret) {
				t.Errorf("message %q leaks %q", r.Error.Message, secret)
			}
		}
		for _, s := range []string{"json:", "sql", "pgx", "cannot unmarshal", "invalid character", "go value"} {
			if strings.Contains(msg, s) {
				t.Errorf("message %q leaks internals (%q)", r.Error.Message, s)
			}
		}
	}
}

func TestBatch(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{})
	a, b := mint(t, s.Key), mint(t, s.Key)
	notified := mint(t, s.Key)
	batch := rpctest.Batch(
		rpctest.Redeem(1, a),
		rpctest.Redeem(2, a),
		rpctest.Redeem(3, b),
		rpctest.Redeem(nil, notified),
		rpctest.Request(4, "nope", nil),
		`17`,
	)
	rec := serve(s.Handler, "POST", batch)
	if rec.Code != 200 {
		t.Fatalf("batch: HTTP %d %s", rec.Code, rec.Body)
	}
	rs, err := rpctest.DecodeBatch(rec.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 5 {
		t.Fatalf("want 5 answers (the notification gets none), got %d: %s", len(rs), rec.Body)
	}
	got := map[string]string{}
	for _, r := range rs {
		got[string(r.ID)] += r.Code() + " "
	}
	// The same token twice in one batch: one success, one -32021.
	if pair := got["1"] + got["2"]; pair != "success -32021 " && pair != "-32021 success " {
		t.Errorf("same token twice: %q", pair)
	}
	if got["3"] != "success " || got["4"] != "-32601 " || got["null"] != "-32600 " {
		t.Errorf("batch answers: %v", got)
	}
	// The notification was refused and spent nothing.
	if r := decode(t, serve(s.Handler, "POST", rpctest.Redeem(9, notified))); r.Code() != "success" {
		t.Errorf("notification in a batch spent its token: %+v", r.Error)
	}
}

func TestBatchLimits(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{})
	if r := decode(t, serve(s.Handler, "POST", "[]")); r.Code() != "-32600" {
		t.Errorf("empty batch: %s", r.Code())
	}
	var elems []string
	for i := range rpc.DefaultMaxBatch + 1 {
		elems = append(elems, rpctest.Redeem(i, mint(t, s.Key)))
	}
	rec := serve(s.Handler, "POST", rpctest.Batch(elems...))
	r := decode(t, rec)
	if rec.Code != 400 || r.Code() != "-32600" || !strings.Contains(r.Error.Message, "100") {
		t.Errorf("101 requests: HTTP %d %+v", rec.Code, r.Error)
	}
	wantAllSuccess(t, serve(s.Handler, "POST", rpctest.Batch(elems[:rpc.DefaultMaxBatch]...)), rpc.DefaultMaxBatch)
	if r := decode(t, serve(s.Handler, "POST", "[1,")); r.Code() != "-32700" {
		t.Errorf("broken batch: %s", r.Code())
	}
	if r := decode(t, serve(s.Handler, "POST", rpctest.Batch(rpctest.Redeem(nil, mint(t, s.Key))))); r.Code() != "-32600" {
		t.Errorf("batch of notifications only: %s", r.Code())
	}
}

func TestBodyTooLarge(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{Configure: func(o *rpc.Options) { o.MaxBodyBytes = 1000 }})
	rec := serve(s.Handler, "POST", `{"jsonrpc":"2.0","id":1,"method":"redeem","params":{"bindings":["`+strings.Repeat("a", 1000)+`"]}}`)
	r := decode(t, rec)
	if rec.Code != 413 || r.Code() != "-32600" || r.Error.Message != "Invalid request: the request body is larger than the limit of 1000 bytes" {
		t.Fatalf("oversized body: HTTP %d %+v", rec.Code, r.Error)
	}
}

func TestDiscover(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{})
	r := decode(t, serve(s.Handler, "POST", rpctest.Request(1, "rpc.discover", nil)))
	if r.Error != nil {
		t.Fatalf("rpc.discover: %+v", r.Error)
	}
	committed, err := os.ReadFile("openrpc.json")
	if err != nil {
		t.Fatal(err)
	}
	var served, file any
	if err := json.Unmarshal(r.Result, &served); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(committed, &file); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(served)
	b, _ := json.Marshal(file)
	if !bytes.Equal(a, b) {
		t.Fatal("rpc.discover differs from rpc/openrpc.json")
	}
	// Every code of the error table is documented.
	for _, code := range []int{wire.CodeBadTag, wire.CodeAlreadySpent, wire.CodeUnsupportedCurve, wire.CodeIssueNotSupported, wire.CodeHTTPMethod,
		wire.CodeBusy, wire.CodeInvalidRequest, wire.CodeMethodNotFound, wire.CodeInvalidParams, wire.CodeInternal, wire.CodeParse} {
		if !bytes.Contains(committed, []byte(fmt.Sprintf(`"code": %d`, code))) {
			t.Errorf("openrpc.json does not document %d", code)
		}
	}
}

// barrierSpender holds every spend until n spends are waiting at once,
// then lets them all through to the real store. Spends that the handler
// ran one after another would never get there: the first would wait alone
// until the barrier gives up.
type barrierSpender struct {
	rpc.Spender
	n       int
	mu      sync.Mutex
	waiting int
	all     chan struct{}
}

func (b *barrierSpender) Spend(ctx context.Context, keyID string, token []byte) error {
	b.mu.Lock()
	if b.waiting++; b.waiting == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return b.Spender.Spend(ctx, keyID, token)
	case <-time.After(30 * time.Second):
		return errors.New("barrierSpender: the other spends of the batch never came")
	}
}

// TestBatchSpendsWaitTogether: the spends of a batch wait on the store at
// the same time, so a slow store costs a batch one wait, not one per
// element.
func TestBatchSpendsWaitTogether(t *testing.T) {
	barrier := &barrierSpender{n: rpc.DefaultMaxBatch, all: make(chan struct{})}
	s := rpctest.NewServer(t, rpctest.Options{Configure: func(o *rpc.Options) {
		barrier.Spender = o.Spender
		o.Spender = barrier
	}})
	var elems []string
	for i := range rpc.DefaultMaxBatch {
		elems = append(elems, rpctest.Redeem(i, mint(t, s.Key)))
	}
	wantAllSuccess(t, serve(s.Handler, "POST", rpctest.Batch(elems...)), rpc.DefaultMaxBatch)
}

// TestReadyzIsCached: a flood of /readyz checks the store about once a
// second, not once per probe.
func TestReadyzIsCached(t *testing.T) {
	var checks atomic.Int32
	s := rpctest.NewServer(t, rpctest.Options{Configure: func(o *rpc.Options) {
		o.Ready = func(context.Context) error { checks.Add(1); return nil }
	}})
	for range 200 {
		if rec := servePath(s.Handler, "GET", "/readyz", ""); rec.Code != 200 {
			t.Fatalf("/readyz: %d", rec.Code)
		}
	}
	if n := checks.Load(); n > 2 {
		t.Fatalf("200 probes checked the store %d times", n)
	}
}

func TestReadyzStates(t *testing.T) {
	storeDown := errors.New("store down")
	var ready atomic.Pointer[error]
	ready.Store(&storeDown)
	var keys atomic.Bool
	s := rpctest.NewServer(t, rpctest.Options{Configure: func(o *rpc.Options) {
		o.Ready = func(context.Context) error { return *ready.Load() }
		inner := o.Kinds[0].Keys
		o.Kinds[0].Keys = func() rpc.KeySet {
			if !keys.Load() {
				return nil
			}
			return inner()
		}
	}})
	status := func() string {
		rec := servePath(s.Handler, "GET", "/readyz", "")
		return fmt.Sprintf("%d %s", rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	if got := status(); got != `503 {"status":"no keys loaded"}` {
		t.Errorf("without keys: %s", got)
	}
	if r := decode(t, serve(s.Handler, "POST", rpctest.Redeem(1, mint(t, s.Key)))); r.Code() != "-32603" {
		t.Errorf("redemption without keys: %s", r.Code())
	}
	keys.Store(true)
	if got := status(); got != `503 {"status":"spent-token store unreachable"}` {
		t.Errorf("store down: %s", got)
	}
	s.Handler.StartDraining()
	if got := status(); got != `503 {"status":"shutting down"}` {
		t.Errorf("draining: %s", got)
	}
}

func TestNewHandlerChecksKinds(t *testing.T) {
	keys := func() rpc.KeySet { return nil }
	s := rpctest.NewServer(t, rpctest.Options{})
	for name, kinds := range map[string][]rpc.Kind{
		"none":         nil,
		"no method":    {{Keys: keys}},
		"no keys":      {{Method: "redeem"}},
		"twice":        {{Method: "redeem", Keys: keys}, {Method: "redeem", Keys: keys}},
		"rpc.discover": {{Method: "rpc.discover", Keys: keys}},
		"issue":        {{Method: "issue", Keys: keys}},
	} {
		if _, err := rpc.NewHandler(rpc.Options{Kinds: kinds, Spender: s.Store}); err == nil {
			t.Errorf("%s: NewHandler accepted the kinds", name)
		}
	}
}
