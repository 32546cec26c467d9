package rpc_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/rpc/wire"
)

// allowed is the error table (verify/PROTOCOL.md §2) with the HTTP
// statuses each code may come with, written out independently of
// rpc/table.go.
var allowed = map[int][]int{
	wire.CodeBadTag:            {403},
	wire.CodeAlreadySpent:      {403},
	wire.CodeUnsupportedCurve:  {400},
	wire.CodeIssueNotSupported: {400},
	wire.CodeHTTPMethod:        {405},
	wire.CodeBusy:              {503},
	wire.CodeInvalidRequest:    {400, 404, 413, 415},
	wire.CodeMethodNotFound:    {400},
	wire.CodeInvalidParams:     {400},
	wire.CodeInternal:          {500},
	wire.CodeParse:             {400},
	wire.CodeBadIssueRequest:   {400},
	wire.CodeBadPoint:          {400},
	wire.CodeDuplicatePoint:    {400},
	wire.CodeTooManyTokens:     {400},
	wire.CodeNotAttested:       {401},
	wire.CodeRateLimited:       {429},
}

// FuzzHandler drives the whole HTTP handler, not only the params parser:
// no input may panic, hang, or be answered outside the error table.
func FuzzHandler(f *testing.F) {
	s := rpctest.NewServer(f, rpctest.Options{})
	h := s.Handler
	tok := mint(f, s.Key)
	for _, seed := range []string{
		rpctest.Redeem(1, tok),
		rpctest.Redeem(nil, tok),
		rpctest.Request("a", "issue", nil),
		rpctest.Request(2, "rpc.discover", nil),
		rpctest.Batch(rpctest.Redeem(1, tok), rpctest.Redeem(2, tok)),
		`{"jsonrpc":"2.0","id":1,"method":"redeem","params":{"data":["AAAA","AAAA","AAAA"],"bindings":[],"compressed":null}}`,
		`[]`, `[[]]`, `{}`, `null`, `"`, `{"jsonrpc":"2.0","id":1e999,"method":"redeem"}`,
	} {
		f.Add("POST", seed)
	}
	f.Add("GET", "")
	f.Add("DELETE", "{}")
	f.Fuzz(func(t *testing.T, method, body string) {
		if method == "" || strings.ContainsAny(method, " \t\r\n()<>@,;:\\\"/[]?={}") {
			method = "POST"
		}
		req := httptest.NewRequest("POST", rpc.RedeemPath, strings.NewReader(body))
		req.Method = method
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { h.ServeHTTP(rec, req); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("handler hung on %q", body)
		}
		checkAnswer(t, rec.Code, rec.Body.Bytes(), body)
	})
}

func checkAnswer(t *testing.T, status int, raw []byte, body string) {
	t.Helper()
	if strings.HasPrefix(strings.TrimSpace(string(raw)), "[") {
		if status != http.StatusOK {
			t.Fatalf("batch answer with HTTP %d", status)
		}
		var rs []json.RawMessage
		if err := json.Unmarshal(raw, &rs); err != nil || len(rs) == 0 {
			t.Fatalf("bad batch answer %q to %q", raw, body)
		}
		for _, r := range rs {
			checkOne(t, 0, r, body)
		}
		return
	}
	checkOne(t, status, raw, body)
}

// checkOne checks one JSON-RPC answer; status 0 means "inside a batch".
func checkOne(t *testing.T, status int, raw []byte, body string) {
	t.Helper()
	r, err := rpctest.Decode(raw)
	if err != nil {
		t.Fatalf("answer to %q: %v", body, err)
	}
	if r.Error == nil {
		if status != 0 && status != 200 {
			t.Fatalf("result with HTTP %d", status)
		}
		return
	}
	statuses, ok := allowed[r.Error.Code]
	if !ok {
		t.Fatalf("code %d is outside the error table (answer to %q)", r.Error.Code, body)
	}
	if status == 0 {
		return
	}
	for _, s := range statuses {
		if s == status {
			return
		}
	}
	t.Fatalf("code %d with HTTP %d", r.Error.Code, status)
}

// FuzzRoutes drives the router with any method and path: every answer is
// JSON (a probe's status or a JSON-RPC answer from the error table), never
// ServeMux's plain-text 404/405 or a redirect.
func FuzzRoutes(f *testing.F) {
	s := rpctest.NewServer(f, rpctest.Options{})
	for _, seed := range [][2]string{
		{"GET", "/healthz"}, {"HEAD", "/readyz"}, {"POST", "/api/redeem"}, {"POST", "/api//redeem"},
		{"GET", "/./healthz"}, {"POST", "/x/../api/redeem"}, {"CONNECT", ""}, {"OPTIONS", "*"}, {"POST", "/api/redeem/"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		if method == "" || strings.ContainsAny(method, " \t\r\n()<>@,;:\\\"/[]?={}") {
			method = "GET"
		}
		req := httptest.NewRequest("POST", "/", strings.NewReader("{}"))
		req.Method, req.URL.Path = method, path
		rec := httptest.NewRecorder()
		s.Handler.ServeHTTP(rec, req)
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %q: HTTP %d, Content-Type %q: %q", method, path, rec.Code, ct, rec.Body)
		}
		if strings.HasPrefix(rec.Body.String(), `{"status":`) {
			if path != "/healthz" && path != "/readyz" {
				t.Fatalf("%s %q answered as a probe", method, path)
			}
			return
		}
		checkAnswer(t, rec.Code, rec.Body.Bytes(), method+" "+path)
	})
}
