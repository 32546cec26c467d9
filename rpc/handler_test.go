package rpc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify"
)

// newTestHandler builds the handler over a real key set and a real
// (embedded, durable) spent-token store.
func newTestHandler(t testing.TB) (*Handler, *verify.Key) {
	t.Helper()
	key, err := verify.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := verify.NewKeySet([]*verify.Key{key})
	if err != nil {
		t.Fatal(err)
	}
	store, err := spend.OpenBolt(spend.BoltConfig{Path: filepath.Join(t.TempDir(), "spent.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.PrepareKeys(context.Background(), []string{key.ID()}); err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(Options{Keys: func() *verify.KeySet { return keys }, Spender: store, Ready: store.Ping})
	if err != nil {
		t.Fatal(err)
	}
	return h, key
}

type response struct {
	Version string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (r response) code() string {
	if r.Error != nil {
		return fmt.Sprint(r.Error.Code)
	}
	if string(r.Result) == `"success"` {
		return "success"
	}
	return "result"
}

func serve(h http.Handler, method, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, RedeemPath, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decode(t testing.TB, rec *httptest.ResponseRecorder) response {
	t.Helper()
	var r response
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || r.Version != "2.0" {
		t.Fatalf("HTTP %d: not a JSON-RPC response: %q", rec.Code, rec.Body.String())
	}
	return r
}

type minted struct {
	token, tag []byte
	bindings   []string
}

func mintToken(t testing.TB, key *verify.Key) minted {
	t.Helper()
	m := minted{token: make([]byte, 32), bindings: []string{"gateway.example", "POST /login"}}
	rand.Read(m.token)
	tag, err := key.Tag(m.token, verify.Increment, false, m.bindings)
	if err != nil {
		t.Fatal(err)
	}
	m.tag = tag
	return m
}

func (m minted) params() map[string]any {
	enc := base64.StdEncoding.EncodeToString
	return map[string]any{"data": []string{enc(m.token), enc(m.tag)}, "bindings": m.bindings}
}

func reqJSON(id any, method string, params any) string {
	m := map[string]any{"jsonrpc": "2.0", "method": method, "params": params}
	if id != nil {
		m["id"] = id
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestPlainMethodNameOnly(t *testing.T) {
	h, key := newTestHandler(t)
	tok := mintToken(t, key)
	// Gorilla's own dotted names must not be reachable from the wire.
	for _, name := range []string{"Redeem.Redeem", "Discover.Discover", "Redeem", "REDEEM"} {
		r := decode(t, serve(h, "POST", reqJSON(1, name, tok.params())))
		if r.code() != "-32601" {
			t.Errorf("method %q: got %s, want -32601", name, r.code())
		}
	}
	if r := decode(t, serve(h, "POST", reqJSON(1, "redeem", tok.params()))); r.code() != "success" {
		t.Fatalf("redeem: %+v", r.Error)
	}
}

func TestIDs(t *testing.T) {
	h, key := newTestHandler(t)
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
		tok := mintToken(t, key)
		params, _ := json.Marshal(tok.params())
		body := `{"jsonrpc":"2.0","method":"redeem","id":` + c.id + `,"params":` + string(params) + `}`
		rec := serve(h, "POST", body)
		r := decode(t, rec)
		if rec.Code != c.status || r.code() != c.code || string(r.ID) != c.echo {
			t.Errorf("id %s: HTTP %d %s id %s, want HTTP %d %s id %s", c.id, rec.Code, r.code(), r.ID, c.status, c.code, c.echo)
		}
	}
}

func TestContentTypeIgnored(t *testing.T) {
	h, key := newTestHandler(t)
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8"} {
		req := httptest.NewRequest("POST", RedeemPath, strings.NewReader(reqJSON(1, "redeem", mintToken(t, key).params())))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if r := decode(t, rec); r.code() != "success" {
			t.Errorf("Content-Type %q: %+v", ct, r.Error)
		}
	}
}

// TestMessagesNeverLeak: no error message holds the token, tag, a binding,
// SQL or Go error text.
func TestMessagesNeverLeak(t *testing.T) {
	h, key := newTestHandler(t)
	tok := mintToken(t, key)
	enc := base64.StdEncoding.EncodeToString
	secrets := []string{enc(tok.token), enc(tok.tag), tok.bindings[0], tok.bindings[1]}
	badTag := append([]byte{}, tok.tag...)
	badTag[3] ^= 0x40
	bodies := []string{
		reqJSON(1, "redeem", map[string]any{"data": []string{enc(tok.token), enc(badTag)}, "bindings": tok.bindings}),
		reqJSON(1, "redeem", map[string]any{"data": []string{enc(tok.token), enc(tok.tag[:31])}, "bindings": tok.bindings}),
		reqJSON(1, "redeem", map[string]any{"data": []string{enc(tok.token) + "=", enc(tok.tag)}, "bindings": tok.bindings}),
		reqJSON(1, "redeem", map[string]any{"data": []string{enc(tok.token), enc(tok.tag), enc([]byte(tok.bindings[0]))}, "bindings": tok.bindings}),
		reqJSON(1, "redeem", map[string]any{"data": enc(tok.token), "bindings": tok.bindings}),
		reqJSON(1, "redeem", map[string]any{"data": []string{enc(tok.token), enc(tok.tag)}, "bindings": tok.bindings[0]}),
		reqJSON(1, "redeem", []any{tok.bindings[0]}),
		reqJSON(1, tok.bindings[0], tok.params()),
		`{"jsonrpc":"2.0","id":1,"method":"redeem","params":{"data":["` + enc(tok.token) + `"` + tok.bindings[0],
		`{"jsonrpc":"2.0","id":1,"method":"redeem","params":{"data":[1,2]},"bindings":["` + tok.bindings[0] + `"]}`,
	}
	for _, body := range bodies {
		r := decode(t, serve(h, "POST", body))
		if r.Error == nil {
			t.Fatalf("no error for %q", body)
		}
		msg := strings.ToLower(r.Error.Message)
		for _, s := range secrets {
			if strings.Contains(r.Error.Message, s) {
				t.Errorf("message %q leaks %q", r.Error.Message, s)
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
	h, key := newTestHandler(t)
	a, b := mintToken(t, key), mintToken(t, key)
	notified := mintToken(t, key)
	batch := "[" + strings.Join([]string{
		reqJSON(1, "redeem", a.params()),
		reqJSON(2, "redeem", a.params()),
		reqJSON(3, "redeem", b.params()),
		reqJSON(nil, "redeem", notified.params()),
		reqJSON(4, "nope", nil),
		`17`,
	}, ",") + "]"
	rec := serve(h, "POST", batch)
	if rec.Code != 200 {
		t.Fatalf("batch: HTTP %d %s", rec.Code, rec.Body)
	}
	var rs []response
	if err := json.Unmarshal(rec.Body.Bytes(), &rs); err != nil {
		t.Fatalf("batch answer is not an array: %s", rec.Body)
	}
	if len(rs) != 5 {
		t.Fatalf("want 5 answers (the notification gets none), got %d: %s", len(rs), rec.Body)
	}
	got := map[string]string{}
	for _, r := range rs {
		got[string(r.ID)] += r.code() + " "
	}
	// The same token twice in one batch: one success, one -32021.
	if pair := got["1"] + got["2"]; pair != "success -32021 " && pair != "-32021 success " {
		t.Errorf("same token twice: %q", pair)
	}
	if got["3"] != "success " || got["4"] != "-32601 " || got["null"] != "-32600 " {
		t.Errorf("batch answers: %v", got)
	}
	// The notification was refused and spent nothing.
	if r := decode(t, serve(h, "POST", reqJSON(9, "redeem", notified.params()))); r.code() != "success" {
		t.Errorf("notification in a batch spent its token: %+v", r.Error)
	}
}

func TestBatchLimits(t *testing.T) {
	h, key := newTestHandler(t)
	if r := decode(t, serve(h, "POST", "[]")); r.code() != "-32600" {
		t.Errorf("empty batch: %s", r.code())
	}
	var elems []string
	for i := range DefaultMaxBatch + 1 {
		elems = append(elems, reqJSON(i, "redeem", mintToken(t, key).params()))
	}
	rec := serve(h, "POST", "["+strings.Join(elems, ",")+"]")
	r := decode(t, rec)
	if rec.Code != 400 || r.code() != "-32600" || !strings.Contains(r.Error.Message, "100") {
		t.Errorf("101 requests: HTTP %d %+v", rec.Code, r.Error)
	}
	rec = serve(h, "POST", "["+strings.Join(elems[:DefaultMaxBatch], ",")+"]")
	var rs []response
	if err := json.Unmarshal(rec.Body.Bytes(), &rs); err != nil || len(rs) != DefaultMaxBatch {
		t.Fatalf("100 requests: %d answers, %v", len(rs), err)
	}
	for _, r := range rs {
		if r.code() != "success" {
			t.Fatalf("100 distinct tokens: %+v", r.Error)
		}
	}
	if r := decode(t, serve(h, "POST", "[1,")); r.code() != "-32700" {
		t.Errorf("broken batch: %s", r.code())
	}
	if r := decode(t, serve(h, "POST", "["+reqJSON(nil, "redeem", mintToken(t, key).params())+"]")); r.code() != "-32600" {
		t.Errorf("batch of notifications only: %s", r.code())
	}
}

func TestDiscover(t *testing.T) {
	h, _ := newTestHandler(t)
	r := decode(t, serve(h, "POST", reqJSON(1, "rpc.discover", nil)))
	if r.Error != nil {
		t.Fatalf("rpc.discover: %+v", r.Error)
	}
	committed, err := os.ReadFile("../openrpc.json")
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
		t.Fatal("rpc.discover differs from the committed openrpc.json")
	}
	// Every code of the error table is documented.
	for _, code := range []int{CodeBadTag, CodeAlreadySpent, CodeUnsupportedCurve, CodeIssueNotSupported, CodeHTTPMethod,
		CodeInvalidRequest, CodeMethodNotFound, CodeInvalidParams, CodeInternal, CodeParse} {
		if !bytes.Contains(committed, []byte(fmt.Sprintf(`"code": %d`, code))) {
			t.Errorf("openrpc.json does not document %d", code)
		}
	}
}

func TestWireErrorTable(t *testing.T) {
	cases := []struct {
		err    error
		code   int
		status int
	}{
		{verify.ErrBadTag, -32020, 403},
		{fmt.Errorf("wrapped: %w", spend.ErrAlreadySpent), -32021, 403},
		{verify.ErrUnsupportedCurve, -32022, 400},
		{errIssue, -32040, 400},
		{&httpMethodError{"GET"}, -32041, 405},
		{&invalidRequestError{reason: "x"}, -32600, 400},
		{errMethodNotFound, -32601, 400},
		{&verify.ParamsError{Reason: "tag must be 32 bytes"}, -32602, 400},
		{spend.ErrUnknownKey, -32603, 500},
		{fmt.Errorf("pgx: SELECT secret FROM x: %w", context.DeadlineExceeded), -32603, 500},
		{errParse, -32700, 400},
	}
	for _, c := range cases {
		we := wireError(c.err)
		if we.code != c.code || we.status != c.status {
			t.Errorf("%v: got %d/%d want %d/%d", c.err, we.code, we.status, c.code, c.status)
		}
		if we.code == CodeInternal && we.message != "Internal error" {
			t.Errorf("internal error message %q", we.message)
		}
	}
	if we := wireError(spend.ErrAlreadySpent); we.message != "Redemption for token that has already been spent" {
		t.Errorf("-32021 message %q", we.message)
	}
}

// slowSpender delays every spend of a real store, as a slow database would.
type slowSpender struct {
	Spender
	delay time.Duration
}

func (s slowSpender) Spend(ctx context.Context, keyID string, token []byte) error {
	time.Sleep(s.delay)
	return s.Spender.Spend(ctx, keyID, token)
}

// TestBatchSpendsWaitTogether: the spends of a batch wait on the store at
// the same time, so a slow store costs a batch one delay, not one per
// element.
func TestBatchSpendsWaitTogether(t *testing.T) {
	h, key := newTestHandler(t)
	h.spender = slowSpender{h.spender, 300 * time.Millisecond}
	var elems []string
	for i := range DefaultMaxBatch {
		elems = append(elems, reqJSON(i, "redeem", mintToken(t, key).params()))
	}
	start := time.Now()
	rec := serve(h, "POST", "["+strings.Join(elems, ",")+"]")
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a batch of %d with a 300ms store took %s: spends were serialized", DefaultMaxBatch, took)
	}
	var rs []response
	if err := json.Unmarshal(rec.Body.Bytes(), &rs); err != nil || len(rs) != DefaultMaxBatch {
		t.Fatalf("answers: %d, %v", len(rs), err)
	}
	for _, r := range rs {
		if r.code() != "success" {
			t.Fatalf("%+v", r.Error)
		}
	}
}

// TestReadyzIsCached: a flood of /readyz checks the store about once a
// second, not once per probe.
func TestReadyzIsCached(t *testing.T) {
	h, _ := newTestHandler(t)
	var checks atomic.Int32
	h.ready = func(context.Context) error { checks.Add(1); return nil }
	for range 200 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if rec.Code != 200 {
			t.Fatalf("/readyz: %d", rec.Code)
		}
	}
	if n := checks.Load(); n > 2 {
		t.Fatalf("200 probes checked the store %d times", n)
	}
}
