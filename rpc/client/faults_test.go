package client_test

// Failure modes the real server cannot produce on demand: small fakes that
// stand where ppredeem would, each counting what reached it.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc/client"
	"github.com/ppredeem/ppredeem/verify"
)

// anyToken is a well-formed redemption for fakes that do not verify.
func anyToken(testing.TB) (token, tag []byte) { return vectorToken() }

func secretForms(token, tag []byte, bindings []string) []string {
	forms := []string{
		base64.StdEncoding.EncodeToString(token), base64.RawURLEncoding.EncodeToString(token), hex.EncodeToString(token),
		base64.StdEncoding.EncodeToString(tag), base64.RawURLEncoding.EncodeToString(tag), hex.EncodeToString(tag),
		string(token), string(tag),
	}
	return append(forms, bindings...)
}

// closedEndpoint returns an endpoint on a port where nothing listens.
func closedEndpoint(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/api/redeem"
}

// countingDialer counts the TCP connections a client opens.
func countingClient(dials *atomic.Int64) *http.Client {
	d := &net.Dialer{Timeout: 2 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func TestConnectionRefusedIsRetried(t *testing.T) {
	var dials atomic.Int64
	c := newClient(t, closedEndpoint(t), &client.Options{
		HTTPClient: countingClient(&dials), MaxAttempts: 4, Backoff: time.Millisecond,
	})
	token, tag := anyToken(t)
	err := c.Redeem(context.Background(), token, tag, browserBindings, nil)
	wantKinds(t, err, "ErrNotSent")
	e := asError(t, err)
	if e.Attempts != 4 || e.Code != 0 || e.HTTPStatus != 0 {
		t.Errorf("got %d attempts, code %d, HTTP %d; want 4, 0, 0", e.Attempts, e.Code, e.HTTPStatus)
	}
	if got := dials.Load(); got != 4 {
		t.Errorf("%d dials, want 4", got)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("the error does not wrap the *net.OpError: %v", err)
	}
}

func TestConnectionRefusedDefaultAttempts(t *testing.T) {
	c := newClient(t, closedEndpoint(t), nil)
	token, tag := anyToken(t)
	start := time.Now()
	err := c.Redeem(context.Background(), token, tag, browserBindings, nil)
	wantKinds(t, err, "ErrNotSent")
	if e := asError(t, err); e.Attempts != client.DefaultMaxAttempts {
		t.Errorf("%d attempts, want %d", e.Attempts, client.DefaultMaxAttempts)
	}
	// Two waits: at least 25ms and 50ms (half of 50ms and 100ms).
	if d := time.Since(start); d < 75*time.Millisecond {
		t.Errorf("3 attempts took %v: no backoff?", d)
	}
}

func TestContextEndsDuringBackoff(t *testing.T) {
	c := newClient(t, closedEndpoint(t), &client.Options{MaxAttempts: 10, Backoff: 10 * time.Second})
	token, tag := anyToken(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Redeem(ctx, token, tag, browserBindings, nil)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Redeem returned after %v, not when the context ended", d)
	}
	wantKinds(t, err, "ErrNotSent")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error does not wrap context.DeadlineExceeded: %v", err)
	}
	if e := asError(t, err); e.Attempts != 1 {
		t.Errorf("%d attempts, want 1", e.Attempts)
	}
}

func TestContextDoneBeforeSend(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	c := newClient(t, srv.URL, nil)
	token, tag := anyToken(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.Redeem(ctx, token, tag, browserBindings, nil)
	wantKinds(t, err, "ErrNotSent")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error does not wrap context.Canceled: %v", err)
	}
	if hits.Load() != 0 {
		t.Errorf("the server got %d requests, want 0", hits.Load())
	}
}

// hangingServer reads every request whole and never answers before the
// test ends. It counts the requests that reach it (over HTTP/2 only when
// h2 is set; the server then speaks TLS with HTTP/2 enabled).
func hangingServer(t *testing.T, h2 bool) (*httptest.Server, *atomic.Int64) {
	hits := new(atomic.Int64)
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h2 || r.ProtoMajor == 2 {
			hits.Add(1)
		}
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	if h2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	return srv, hits
}

// TestHangAfterWrite: the server reads the whole request and never
// answers; the context deadline ends the wait. The outcome is unknown and
// the request is not repeated. Over HTTP/1.1 and HTTP/2.
func TestHangAfterWrite(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			srv, hits := hangingServer(t, h2)
			opts := &client.Options{MaxAttempts: 5, Backoff: time.Millisecond}
			endpoint := srv.URL + "/api/redeem"
			if h2 {
				opts.HTTPClient = srv.Client()
			}
			c := newClient(t, endpoint, opts)
			token, tag := anyToken(t)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := c.Redeem(ctx, token, tag, browserBindings, nil)
			wantKinds(t, err, "ErrAmbiguous")
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error does not wrap context.DeadlineExceeded: %v", err)
			}
			if e := asError(t, err); e.Attempts != 1 {
				t.Errorf("%d attempts, want 1", e.Attempts)
			}
			if got := hits.Load(); got != 1 {
				t.Errorf("the server got %d requests, want 1", got)
			}
		})
	}
}

// TestHTTPClientTimeoutAfterWrite: the same with the http.Client's own
// timeout instead of the context's.
func TestHTTPClientTimeoutAfterWrite(t *testing.T) {
	srv, hits := hangingServer(t, false)
	c := newClient(t, srv.URL, &client.Options{HTTPClient: &http.Client{Timeout: 200 * time.Millisecond}, Backoff: time.Millisecond})
	token, tag := anyToken(t)
	err := c.Redeem(context.Background(), token, tag, browserBindings, nil)
	wantKinds(t, err, "ErrAmbiguous")
	if e := asError(t, err); e.Attempts != 1 {
		t.Errorf("%d attempts, want 1", e.Attempts)
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("the server got %d requests, want 1", got)
	}
}

// rawServer accepts TCP connections and hands each to serve.
func rawServer(t *testing.T, serve func(net.Conn)) (endpoint string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go serve(conn)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "http://" + ln.Addr().String() + "/api/redeem", accepted
}

// TestConnectionLostAfterWrite: the server reads the whole request, then
// drops the connection without answering.
func TestConnectionLostAfterWrite(t *testing.T) {
	var complete atomic.Int64
	endpoint, accepted := rawServer(t, func(conn net.Conn) {
		defer conn.Close()
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			return
		}
		if _, err := io.ReadAll(req.Body); err == nil {
			complete.Add(1)
		}
	})
	c := newClient(t, endpoint, &client.Options{MaxAttempts: 5, Backoff: time.Millisecond})
	token, tag := anyToken(t)
	err := c.Redeem(context.Background(), token, tag, browserBindings, nil)
	wantKinds(t, err, "ErrAmbiguous")
	if e := asError(t, err); e.Attempts != 1 {
		t.Errorf("%d attempts, want 1", e.Attempts)
	}
	if accepted.Load() != 1 || complete.Load() != 1 {
		t.Errorf("%d connections, %d complete requests; want 1, 1", accepted.Load(), complete.Load())
	}
}

// resettingClient has a small send buffer, so that a request far larger
// than it and the server's initial receive window cannot be written
// without the server reading it.
func resettingClient() *http.Client {
	d := &net.Dialer{Timeout: 2 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err == nil {
				err = conn.(*net.TCPConn).SetWriteBuffer(16 << 10)
			}
			return conn, err
		},
	}}
}

// reset closes conn with an RST.
func reset(conn net.Conn) {
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
}

// TestWriteFailureIsRetried: the server reads the request's headers, then
// resets the connection, so the client's write of the large body fails:
// an incomplete request cannot have been redeemed, and is tried again.
func TestWriteFailureIsRetried(t *testing.T) {
	var headers atomic.Int64
	endpoint, accepted := rawServer(t, func(conn net.Conn) {
		defer reset(conn)
		if _, err := http.ReadRequest(bufio.NewReader(conn)); err == nil {
			headers.Add(1)
		}
	})
	c := newClient(t, endpoint, &client.Options{HTTPClient: resettingClient(), MaxAttempts: 3, Backoff: time.Millisecond})
	token, tag := anyToken(t)
	big := []string{strings.Repeat("a", 1<<20)}
	err := c.Redeem(context.Background(), token, tag, big, nil)
	wantKinds(t, err, "ErrNotSent")
	e := asError(t, err)
	if e.Attempts != 3 {
		t.Errorf("%d attempts, want 3", e.Attempts)
	}
	if e.Message != "writing the request failed" {
		t.Errorf("Message %q: not the write-failure path", e.Message)
	}
	if got := accepted.Load(); got != 3 || headers.Load() != 3 {
		t.Errorf("%d connections, %d request headers read; want 3, 3", got, headers.Load())
	}
}

// TestResetOnAcceptIsRetried: the server resets every connection at once;
// depending on timing the client sees the reset while connecting, before
// writing, or while writing. None delivered a request: all are retried.
func TestResetOnAcceptIsRetried(t *testing.T) {
	endpoint, accepted := rawServer(t, reset)
	c := newClient(t, endpoint, &client.Options{HTTPClient: resettingClient(), MaxAttempts: 3, Backoff: time.Millisecond})
	token, tag := anyToken(t)
	for range 3 {
		before := accepted.Load()
		err := c.Redeem(context.Background(), token, tag, []string{strings.Repeat("a", 1<<20)}, nil)
		wantKinds(t, err, "ErrNotSent")
		if e := asError(t, err); e.Attempts != 3 {
			t.Errorf("%d attempts, want 3", e.Attempts)
		}
		if got := accepted.Load() - before; got > 3 {
			t.Errorf("%d connections, want at most 3", got)
		}
	}
}

// fakeAnswer serves a fixed answer to every request, with the request's id
// substituted for ID, and counts the requests.
func fakeAnswer(t *testing.T, status int, body string) (endpoint string, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		var req struct {
			ID json.RawMessage `json:"id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Errorf("fake: request is not JSON: %v", err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, strings.ReplaceAll(body, "ID", string(req.ID)))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/api/redeem", hits
}

// TestUnreadableAnswers: whatever the server answered that is not a strict
// JSON-RPC 2.0 response is ambiguous (the request reached it), and is not
// repeated.
func TestUnreadableAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"not JSON", 200, "success"},
		{"truncated", 200, `{"jsonrpc":"2.0","id":ID,"result":"succ`},
		{"trailing garbage", 200, `{"jsonrpc":"2.0","id":ID,"result":"success"} x`},
		{"empty 200", 200, ""},
		{"empty 500", 500, ""},
		{"HTML 502", 502, "<html><body>Bad Gateway</body></html>"},
		{"text 503", 503, "upstream unavailable"},
		{"JSON array", 200, `[{"jsonrpc":"2.0","id":ID,"result":"success"}]`},
		{"JSON string", 200, `"success"`},
		{"jsonrpc missing", 200, `{"id":ID,"result":"success"}`},
		{"jsonrpc 1.0", 200, `{"jsonrpc":"1.0","id":ID,"result":"success"}`},
		{"jsonrpc number", 200, `{"jsonrpc":2.0,"id":ID,"result":"success"}`},
		{"jsonrpc null", 200, `{"jsonrpc":null,"id":ID,"result":"success"}`},
		{"id missing", 200, `{"jsonrpc":"2.0","result":"success"}`},
		{"id other", 200, `{"jsonrpc":"2.0","id":999999,"result":"success"}`},
		{"id string", 200, `{"jsonrpc":"2.0","id":"ID","result":"success"}`},
		{"id null with result", 200, `{"jsonrpc":"2.0","id":null,"result":"success"}`},
		{"neither result nor error", 200, `{"jsonrpc":"2.0","id":ID}`},
		{"result and error", 200, `{"jsonrpc":"2.0","id":ID,"result":"success","error":{"code":-32021,"message":"m"}}`},
		{"result and null error", 200, `{"jsonrpc":"2.0","id":ID,"result":"success","error":null}`},
		{"result null", 200, `{"jsonrpc":"2.0","id":ID,"result":null}`},
		{"result true", 200, `{"jsonrpc":"2.0","id":ID,"result":true}`},
		{"result other", 200, `{"jsonrpc":"2.0","id":ID,"result":"ok"}`},
		{"success with 500", 500, `{"jsonrpc":"2.0","id":ID,"result":"success"}`},
		{"error null", 200, `{"jsonrpc":"2.0","id":ID,"error":null}`},
		{"error string", 403, `{"jsonrpc":"2.0","id":ID,"error":"already spent"}`},
		{"code missing", 403, `{"jsonrpc":"2.0","id":ID,"error":{"message":"m"}}`},
		{"code null", 403, `{"jsonrpc":"2.0","id":ID,"error":{"code":null,"message":"m"}}`},
		{"code string", 403, `{"jsonrpc":"2.0","id":ID,"error":{"code":"-32021","message":"m"}}`},
		{"code fraction", 403, `{"jsonrpc":"2.0","id":ID,"error":{"code":-32021.5,"message":"m"}}`},
		{"message missing", 403, `{"jsonrpc":"2.0","id":ID,"error":{"code":-32021}}`},
		{"message null", 403, `{"jsonrpc":"2.0","id":ID,"error":{"code":-32021,"message":null}}`},
		{"too large", 200, `{"jsonrpc":"2.0","id":ID,"result":"success","pad":"` + strings.Repeat("x", 70<<10) + `"}`},
		{"redirect", 307, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint, hits := fakeAnswer(t, tc.status, tc.body)
			c := newClient(t, endpoint, &client.Options{MaxAttempts: 5, Backoff: time.Millisecond})
			token, tag := anyToken(t)
			err := c.Redeem(context.Background(), token, tag, browserBindings, nil)
			wantKinds(t, err, "ErrAmbiguous")
			e := asError(t, err)
			if e.Attempts != 1 || e.HTTPStatus != tc.status {
				t.Errorf("got %d attempts, HTTP %d; want 1, %d", e.Attempts, e.HTTPStatus, tc.status)
			}
			if hits.Load() != 1 {
				t.Errorf("the server got %d requests, want 1", hits.Load())
			}
			if strings.Contains(err.Error(), "Bad Gateway") || strings.Contains(err.Error(), "upstream") {
				t.Errorf("the error quotes the body: %v", err)
			}
		})
	}
}

// TestRedirectNotFollowed: a redirect would replay the redemption to
// another URL: it is not followed.
func TestRedirectNotFollowed(t *testing.T) {
	var targetHits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		targetHits.Add(1)
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"success"}`)
	}))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/api/redeem", http.StatusPermanentRedirect)
	}))
	defer srv.Close()
	// Even with a caller's client that would follow redirects.
	c := newClient(t, srv.URL+"/api/redeem", &client.Options{HTTPClient: &http.Client{}})
	token, tag := anyToken(t)
	err := c.Redeem(context.Background(), token, tag, browserBindings, nil)
	wantKinds(t, err, "ErrAmbiguous")
	if e := asError(t, err); e.HTTPStatus != http.StatusPermanentRedirect {
		t.Errorf("HTTP %d, want 308", e.HTTPStatus)
	}
	if targetHits.Load() != 0 {
		t.Error("the redirect was followed")
	}
}

// TestReadableAnswers: strict is not picky: whitespace, member order, extra
// members of the error object, a null id on an error (JSON-RPC 2.0 §5) and
// codes outside the table.
func TestReadableAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		kinds   []string
		code    int
		message string
	}{
		{"success spaced", 200, " {\n \"result\" : \"success\" ,\t\"id\" : ID , \"jsonrpc\" : \"2.0\" }\n", nil, 0, ""},
		{"spent", 403, `{"jsonrpc":"2.0","id":ID,"error":{"code":-32021,"message":"Redemption for token that has already been spent"}}`,
			[]string{"ErrAlreadySpent"}, -32021, "Redemption for token that has already been spent"},
		{"error data", 403, `{"jsonrpc":"2.0","id":ID,"error":{"code":-32020,"message":"bad","data":{"x":1}}}`,
			[]string{"ErrBadTag"}, -32020, "bad"},
		{"curve", 400, `{"jsonrpc":"2.0","id":ID,"error":{"code":-32022,"message":"curve"}}`,
			[]string{"ErrUnsupportedCurve"}, -32022, "curve"},
		{"parse error null id", 400, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`,
			[]string{"ErrInvalidRequest"}, -32700, "Parse error"},
		{"invalid request", 400, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request"}}`,
			[]string{"ErrInvalidRequest"}, -32600, "Invalid request"},
		{"method not found", 400, `{"jsonrpc":"2.0","id":ID,"error":{"code":-32601,"message":"nope"}}`,
			[]string{"ErrInvalidRequest"}, -32601, "nope"},
		{"issue", 400, `{"jsonrpc":"2.0","id":ID,"error":{"code":-32040,"message":"nope"}}`,
			[]string{"ErrInvalidRequest"}, -32040, "nope"},
		{"HTTP method", 405, `{"jsonrpc":"2.0","id":null,"error":{"code":-32041,"message":"nope"}}`,
			[]string{"ErrInvalidRequest"}, -32041, "nope"},
		{"internal", 500, `{"jsonrpc":"2.0","id":ID,"error":{"code":-32603,"message":"Internal error"}}`,
			[]string{"ErrInternal", "ErrAmbiguous"}, -32603, "Internal error"},
		{"unknown code", 500, `{"jsonrpc":"2.0","id":ID,"error":{"code":-32000,"message":"Server error"}}`,
			[]string{"ErrAmbiguous"}, -32000, "Server error"},
		{"message control chars", 403, `{"jsonrpc":"2.0","id":ID,"error":{"code":-32021,"message":"a\nb\u0000c"}}`,
			[]string{"ErrAlreadySpent"}, -32021, "a b c"},
		{"long message", 403, `{"jsonrpc":"2.0","id":ID,"error":{"code":-32021,"message":"` + strings.Repeat("é", 300) + `"}}`,
			[]string{"ErrAlreadySpent"}, -32021, strings.Repeat("é", 128)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint, hits := fakeAnswer(t, tc.status, tc.body)
			c := newClient(t, endpoint, nil)
			token, tag := anyToken(t)
			err := c.Redeem(context.Background(), token, tag, browserBindings, nil)
			if tc.kinds == nil {
				if err != nil {
					t.Fatalf("Redeem: %v", err)
				}
				return
			}
			wantKinds(t, err, tc.kinds...)
			e := asError(t, err)
			if e.Code != tc.code || e.Message != tc.message || e.HTTPStatus != tc.status || e.Attempts != 1 {
				t.Errorf("got code %d, message %q, HTTP %d, %d attempts; want %d, %q, %d, 1",
					e.Code, e.Message, e.HTTPStatus, e.Attempts, tc.code, tc.message, tc.status)
			}
			if hits.Load() != 1 {
				t.Errorf("the server got %d requests, want 1", hits.Load())
			}
		})
	}
}

// TestRequestFormat checks the request against verify/PROTOCOL.md §1, as the
// server receives it.
func TestRequestFormat(t *testing.T) {
	type request struct {
		JSONRPC string          `json:"jsonrpc"`
		Method  string          `json:"method"`
		ID      json.RawMessage `json:"id"`
		Params  struct {
			Data       []string        `json:"data"`
			Bindings   json.RawMessage `json:"bindings"`
			Compressed *bool           `json:"compressed"`
		} `json:"params"`
	}
	var got []request
	var headers []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req request
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			t.Errorf("request %s: %v", body, err)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/api/redeem" {
			t.Errorf("%s %s, want POST /api/redeem", r.Method, r.URL.Path)
		}
		if body[len(body)-1] != '}' {
			t.Errorf("the body does not end with the object's closing brace")
		}
		got = append(got, req)
		headers = append(headers, r.Header.Clone())
		io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(req.ID)+`,"result":"success"}`)
	}))
	defer srv.Close()

	c := newClient(t, srv.URL+"/api/redeem", nil)
	token := []byte{0xfb, 0xff, 0xfe, 0x01} // "+//+AQ==": standard alphabet, padded
	tag := make([]byte, 32)
	tag[0] = 0xfa
	bindings := []string{"www.example.com", "GET /<a&b>", "ünïcode"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Redeem(context.Background(), token, tag, bindings, nil))
	must(c.Redeem(context.Background(), token, tag, nil, &client.RedeemOptions{Method: "swu", Compressed: true}))
	if len(got) != 2 {
		t.Fatalf("%d requests", len(got))
	}

	for i, r := range got {
		if r.JSONRPC != "2.0" || r.Method != "redeem" {
			t.Errorf("request %d: jsonrpc %q, method %q", i, r.JSONRPC, r.Method)
		}
		if ct := headers[i].Get("Content-Type"); ct != "application/json" {
			t.Errorf("request %d: Content-Type %q", i, ct)
		}
		if len(r.Params.Data) != 3 {
			t.Fatalf("request %d: %d data elements", i, len(r.Params.Data))
		}
		if r.Params.Data[0] != "+//+AQ==" {
			t.Errorf("request %d: data[0] = %q, want standard padded base64", i, r.Params.Data[0])
		}
		if r.Params.Data[1] != base64.StdEncoding.EncodeToString(tag) {
			t.Errorf("request %d: data[1] = %q", i, r.Params.Data[1])
		}
		if r.Params.Compressed == nil {
			t.Errorf("request %d: no compressed member", i)
		}
	}
	id0, err0 := strconv.ParseUint(string(got[0].ID), 10, 64)
	id1, err1 := strconv.ParseUint(string(got[1].ID), 10, 64)
	if err0 != nil || err1 != nil || id1 <= id0 {
		t.Errorf("ids %s then %s: want increasing numbers", got[0].ID, got[1].ID)
	}

	settings := func(r request) map[string]any {
		raw, err := base64.StdEncoding.Strict().DecodeString(r.Params.Data[2])
		if err != nil {
			t.Fatalf("data[2] %q: %v", r.Params.Data[2], err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("data[2] %s: %v", raw, err)
		}
		return m
	}
	wantSettings := func(m map[string]any, method string) {
		t.Helper()
		if len(m) != 3 || m["curve"] != "p256" || m["hash"] != "sha256" || m["method"] != method {
			t.Errorf("data[2] = %v, want p256/sha256/%s", m, method)
		}
	}
	wantSettings(settings(got[0]), "increment")
	wantSettings(settings(got[1]), "swu")

	var b0 []string
	if err := json.Unmarshal(got[0].Params.Bindings, &b0); err != nil || len(b0) != 3 ||
		b0[0] != bindings[0] || b0[1] != bindings[1] || b0[2] != bindings[2] {
		t.Errorf("bindings %s (%v), want %q", got[0].Params.Bindings, err, bindings)
	}
	if string(got[1].Params.Bindings) != "[]" {
		t.Errorf("nil bindings sent as %s, want []", got[1].Params.Bindings)
	}
	if *got[0].Params.Compressed || !*got[1].Params.Compressed {
		t.Errorf("compressed %v, %v; want false, true", *got[0].Params.Compressed, *got[1].Params.Compressed)
	}
}

// TestKeepAlive: consecutive redemptions reuse the connection.
func TestKeepAlive(t *testing.T) {
	s := newServer(t)
	var dials atomic.Int64
	c := newClient(t, s.Endpoint, &client.Options{HTTPClient: countingClient(&dials)})
	for range 5 {
		token, tag := mint(t, s.Key, verify.Increment, false, browserBindings)
		if err := c.Redeem(context.Background(), token, tag, browserBindings, nil); err != nil {
			t.Fatal(err)
		}
		c.Redeem(context.Background(), token, tag, browserBindings, nil) // already spent
	}
	if got := dials.Load(); got != 1 {
		t.Errorf("%d connections for 10 sequential redemptions, want 1", got)
	}
}

// silentTransport fails every request without any trace callback, as a
// RoundTripper other than net/http's would.
type silentTransport struct{ calls atomic.Int64 }

func (s *silentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.calls.Add(1)
	if r.Body != nil {
		r.Body.Close()
	}
	return nil, errors.New("silent transport failure")
}

// TestUntracedTransportIsAmbiguous: without net/http's trace callbacks
// nothing proves the request was not sent: no retry.
func TestUntracedTransportIsAmbiguous(t *testing.T) {
	rt := new(silentTransport)
	c := newClient(t, "http://127.0.0.1:1/api/redeem", &client.Options{HTTPClient: &http.Client{Transport: rt}, Backoff: time.Millisecond})
	token, tag := anyToken(t)
	err := c.Redeem(context.Background(), token, tag, browserBindings, nil)
	wantKinds(t, err, "ErrAmbiguous")
	if e := asError(t, err); e.Attempts != 1 || rt.calls.Load() != 1 {
		t.Errorf("%d attempts, %d round trips; want 1, 1", e.Attempts, rt.calls.Load())
	}
}
