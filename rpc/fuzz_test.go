package rpc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// allowed is the error table (PROTOCOL.md §2) with the HTTP statuses each
// code may come with.
var allowed = map[int][]int{
	CodeBadTag:            {403},
	CodeAlreadySpent:      {403},
	CodeUnsupportedCurve:  {400},
	CodeIssueNotSupported: {400},
	CodeHTTPMethod:        {405},
	CodeInvalidRequest:    {400, 404, 413},
	CodeMethodNotFound:    {400},
	CodeInvalidParams:     {400},
	CodeInternal:          {500},
	CodeParse:             {400},
}

// FuzzHandler drives the whole HTTP handler, not only the params parser:
// no input may panic, hang, or be answered outside the error table.
func FuzzHandler(f *testing.F) {
	h, key := newTestHandler(f)
	tok := mintToken(f, key)
	for _, seed := range []string{
		reqJSON(1, "redeem", tok.params()),
		reqJSON(nil, "redeem", tok.params()),
		reqJSON("a", "issue", nil),
		reqJSON(2, "rpc.discover", nil),
		"[" + reqJSON(1, "redeem", tok.params()) + "," + reqJSON(2, "redeem", tok.params()) + "]",
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
		req := httptest.NewRequest("POST", RedeemPath, strings.NewReader(body))
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
	var r response
	if err := json.Unmarshal(raw, &r); err != nil || r.Version != "2.0" {
		t.Fatalf("answer %q to %q is not JSON-RPC", raw, body)
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

// BenchmarkCodec compares the two ways params reach the redeem method: json2
// decoding the envelope again (ReadRequest through json2) and the raw params
// the envelope decode already split out (what the codec does for redeem).
func BenchmarkCodec(b *testing.B) {
	_, key := newTestHandler(b)
	body := []byte(reqJSON(1, "redeem", mintToken(b, key).params()))
	c := newCodec()
	req := httptest.NewRequest("POST", RedeemPath, nil)
	b.Run("raw-params", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cr := c.newRequest(req, body)
			var args RedeemArgs
			if err := cr.ReadRequest(&args); err != nil || len(args.raw) == 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("json2", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cr := c.newRequest(req, body)
			inner := new(http.Request)
			*inner = *req
			inner.Body = bodyBytes{bytes.NewReader(body), body}
			var args RedeemArgs
			if err := c.inner.NewRequest(inner).ReadRequest(&args); err != nil || cr.err != nil {
				b.Fatal(err)
			}
		}
	})
}
