package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// Tests of the limits of the public listeners against hostile clients:
// the exact header limit, the answers net/http gives on its own, answers
// that reach a client still sending its body, and the body budget.

// exchange sends raw on a new connection to base (http://host:port) and
// reads one answer.
func exchange(t *testing.T, base, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%.60q: no answer: %v", raw, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%.60q: reading the answer: %v", raw, err)
	}
	return resp, string(body)
}

// headOf is a POST of the body {} whose request line and headers, through
// the blank line, are exactly n bytes.
func headOf(n int) string {
	head := "POST /api/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nX-Pad: "
	return head + strings.Repeat("a", n-len(head)-4) + "\r\n\r\n" + "{}"
}

// TestHeaderLimitIsExact: max_header_bytes is the real limit of the
// request line and headers, on both sides of the boundary (net/http alone
// would take 4096 bytes more: 20,000 bytes passed a limit of 16,384).
func TestHeaderLimitIsExact(t *testing.T) {
	for _, limit := range []int{8192, 16384} {
		srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--max-header-bytes", strconv.Itoa(limit)))
		for _, c := range []struct {
			size   int
			status int
		}{{limit, 400}, {limit + 1, 431}, {limit + 4096, 431}, {20000, 431}} {
			resp, body := exchange(t, srv.base, headOf(c.size))
			if resp.StatusCode != c.status {
				t.Errorf("limit %d, %d bytes of headers: HTTP %d %q, want %d", limit, c.size, resp.StatusCode, body, c.status)
			}
			if c.status == 400 && !strings.Contains(body, `"code":-32600`) {
				t.Errorf("limit %d, %d bytes of headers: not the JSON-RPC answer: %q", limit, c.size, body)
			}
		}
	}
}

// goAnswers are the answers net/http gives on its own, before any handler
// runs: plain text, not JSON-RPC. README "Limits" lists them; this table
// pins each, so a Go release that changes one fails here.
var goAnswers = []struct {
	name, raw, status, body string
}{
	{"headers over max_header_bytes", headOf(16385), "431 Request Header Fields Too Large", "431 Request Header Fields Too Large"},
	{"no Host (HTTP/1.1)", "POST /api/redeem HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
		"400 Bad Request: missing required Host header", "400 Bad Request: missing required Host header"},
	{"malformed Host", "POST /api/redeem HTTP/1.1\r\nHost: a b\r\nContent-Length: 2\r\n\r\n{}",
		"400 Bad Request: malformed Host header", "400 Bad Request: malformed Host header"},
	{"space before a header's colon", "POST /api/redeem HTTP/1.1\r\nHost: a\r\nX-Y : 1\r\nContent-Length: 2\r\n\r\n{}",
		"400 Bad Request: invalid header name", "400 Bad Request: invalid header name"},
	{"two Host headers", "POST /api/redeem HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 2\r\n\r\n{}", "400 Bad Request", "400 Bad Request"},
	{"a header name with a separator", "POST /api/redeem HTTP/1.1\r\nHost: a\r\nX(y): 1\r\nContent-Length: 2\r\n\r\n{}", "400 Bad Request", "400 Bad Request"},
	{"a control character in a header value", "POST /api/redeem HTTP/1.1\r\nHost: a\r\nX-Y: a\x01b\r\nContent-Length: 2\r\n\r\n{}", "400 Bad Request", "400 Bad Request"},
	{"two different Content-Lengths", "POST /api/redeem HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "400 Bad Request", "400 Bad Request"},
	{"a Content-Length that is not a number", "POST /api/redeem HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n{}", "400 Bad Request", "400 Bad Request"},
	{"a malformed request line", "GARBAGE\r\n\r\n", "400 Bad Request", "400 Bad Request"},
	{"a method with a separator", "PO(ST /api/redeem HTTP/1.1\r\nHost: a\r\n\r\n", "400 Bad Request", "400 Bad Request"},
	{"a URL that does not parse", "POST http://[::1 HTTP/1.1\r\nHost: a\r\n\r\n", "400 Bad Request", "400 Bad Request"},
	{"HTTP/0.9", "GET /\r\n\r\n", "400 Bad Request", "400 Bad Request"},
	{"Transfer-Encoding other than chunked", "POST /api/redeem HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"501 Not Implemented", "Unsupported transfer encoding"},
	{"HTTP/2.0 on the HTTP/1 listener", "POST /api/redeem HTTP/2.0\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}",
		"505 HTTP Version Not Supported: unsupported protocol version", "505 HTTP Version Not Supported: unsupported protocol version"},
	{"Expect other than 100-continue", "POST /api/redeem HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}", "417 Expectation Failed", ""},
}

// TestGoOwnAnswers pins net/http's own answers, and checks that the
// neighbouring cases it hands to the handler get JSON-RPC answers.
func TestGoOwnAnswers(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile))
	for _, c := range goAnswers {
		resp, body := exchange(t, srv.base, c.raw)
		if resp.Status != c.status || body != c.body || !resp.Close ||
			c.body != "" && resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%s: %q %q %v, want %q %q", c.name, resp.Status, body, resp.Header, c.status, c.body)
		}
	}
	for _, c := range []struct{ name, raw, code string }{
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "-32041"},
		{"PRI * (HTTP/2 preface)", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "-32041"},
		{"malformed chunking", "POST /api/redeem HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", "-32600"},
		{"the same Content-Length twice", "POST /api/redeem HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", "-32600"},
		{"HTTP/1.0 without Host", "POST /api/redeem HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", "-32600"},
	} {
		resp, body := exchange(t, srv.base, c.raw)
		r, err := rpctest.Decode([]byte(body))
		if err != nil || r.Code() != c.code || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: HTTP %d %q, want JSON-RPC %s", c.name, resp.StatusCode, body, c.code)
		}
	}
}

// sendWholeBodyFirst sends a POST of size bytes to path, all of it before
// reading, as Python's urllib does, from a small send buffer so that the
// body cannot hide in socket buffers; then reads the answer.
func sendWholeBodyFirst(t *testing.T, base, path string, size int) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetWriteBuffer(32 << 10)
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, size)
	chunk := []byte(strings.Repeat(" ", 64<<10))
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := c.Write(chunk[:min(len(chunk), size-sent)]); err != nil {
			t.Fatalf("POST %s of %d bytes: writing failed after %d bytes: %v", path, size, sent, err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("POST %s of %d bytes: no answer: %v", path, size, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s of %d bytes: reading the answer: %v", path, size, err)
	}
	return resp, string(body)
}

// TestRefusalReachesAClientThatSendsFirst: an answer given before the body
// was read (over the limit, no such endpoint) reaches a client that sends
// its whole body before reading, instead of a reset.
func TestRefusalReachesAClientThatSendsFirst(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--max-body-bytes", "65536"))
	for _, c := range []struct {
		path   string
		size   int
		status int
		msg    string
	}{
		{"/api/redeem", 4 << 20, 413, "Invalid request: the request body is larger than the limit of 65536 bytes"},
		{"/nowhere", 1 << 20, 404, "Invalid request: no such endpoint: POST to /api/redeem"},
	} {
		resp, body := sendWholeBodyFirst(t, srv.base, c.path, c.size)
		r, err := rpctest.Decode([]byte(body))
		if resp.StatusCode != c.status || err != nil || r.Code() != "-32600" || r.Error.Message != c.msg {
			t.Errorf("POST %s of %d bytes: HTTP %d %q", c.path, c.size, resp.StatusCode, body)
		}
	}
	// The server is still serving.
	if _, r := post(t, srv.url, rpctest.Redeem(1, verifytest.Mint(t, verifytest.Key(), verify.Increment))); r.Code() != "success" {
		t.Fatalf("after the refusals: %+v", r.Error)
	}
}

// TestRefusalReachesPythonURLLib: the client of the issue, Python's
// urllib, reads the 413 of a body over the limit.
func TestRefusalReachesPythonURLLib(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--max-body-bytes", "65536"))
	const script = `
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], data=b" " * int(sys.argv[2]), headers={"Content-Type": "application/json"})
try:
    urllib.request.urlopen(req, timeout=30)
    print("no error")
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
`
	out, err := exec.Command(python, "-c", script, srv.url, strconv.Itoa(4<<20)).CombinedOutput()
	if err != nil {
		t.Fatalf("urllib: %v\n%s", err, out)
	}
	status, body, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	r, err := rpctest.Decode([]byte(body))
	if status != "413" || err != nil || r.Code() != "-32600" {
		t.Fatalf("urllib got %s", out)
	}
}

// TestBodyBudgetOnTheServer: slow uploads of large bodies fill their half
// of max_inflight_body_bytes; another large body is refused at once (503,
// -32050, Retry-After) and its client, still sending, reads that; small
// redemptions go on; the budget empties when the uploads end.
func TestBodyBudgetOnTheServer(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--admin-listen", "127.0.0.1:0",
		"--max-body-bytes", "1048576", "--max-inflight-body-bytes", "2097152"))
	// A slow upload of 1 MiB: its headers and a first kilobyte.
	slow, err := net.Dial("tcp", strings.TrimPrefix(srv.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /api/redeem HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 1<<20, strings.Repeat(" ", 1024))
	waitFor(t, "the slow upload charged to the budget", func() bool {
		return metric(t, srv.admin, "ppredeem_request_body_bytes_in_use") == 1<<20
	})
	if got := metric(t, srv.admin, "ppredeem_request_body_budget_bytes"); got != 2<<20 {
		t.Fatalf("ppredeem_request_body_budget_bytes %v", got)
	}

	resp, body := sendWholeBodyFirst(t, srv.base, "/api/redeem", 1<<20)
	r, err := rpctest.Decode([]byte(body))
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || err != nil || r.Code() != "-32050" {
		t.Fatalf("a second large body: HTTP %d Retry-After %q %q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if _, r := post(t, srv.url, rpctest.Redeem(1, verifytest.Mint(t, verifytest.Key(), verify.Increment))); r.Code() != "success" {
		t.Fatalf("a redemption during the slow upload: %+v", r.Error)
	}

	// The slow upload ends: its answer comes, and the budget empties.
	io.WriteString(slow, strings.Repeat(" ", 1<<20-1024))
	resp, err = http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, "the budget empty", func() bool { return metric(t, srv.admin, "ppredeem_request_body_bytes_in_use") == 0 })
	if got := metric(t, srv.admin, "ppredeem_request_body_busy_total"); got != 1 {
		t.Fatalf("ppredeem_request_body_busy_total %v, want 1", got)
	}
}

// TestMemoryLimit: memory_limit_bytes sets the runtime's soft memory
// limit; without it GOMEMLIMIT is kept. Seen from the runtime itself
// (go_gc_gomemlimit_bytes) of real processes, serve and gateway.
func TestMemoryLimit(t *testing.T) {
	up := newClaimUpstream(t)
	serve := func(args []string, env ...string) *process {
		return startBinary(t, "ppredeem serving", append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json",
			"--data-dir", t.TempDir(), "--keys", testKeyFile}, args...), env...)
	}
	gateway := func(args []string, env ...string) *process {
		return startGatewayProcess(t, append([]string{"--upstream", up.srv.URL, "--listen", "127.0.0.1:0"}, args...), env...)
	}
	for _, c := range []struct {
		name, serving string
		start         func(args []string, env ...string) *process
		args, env     []string
		limit         float64
		from          string
	}{
		{"serve, memory_limit_bytes over GOMEMLIMIT", "ppredeem serving", serve,
			[]string{"--memory-limit-bytes", "268435456"}, []string{"GOMEMLIMIT=300MiB"}, 268435456, "memory_limit_bytes"},
		{"serve, GOMEMLIMIT", "ppredeem serving", serve, nil, []string{"GOMEMLIMIT=300MiB"}, 300 << 20, "GOMEMLIMIT"},
		{"gateway, memory_limit_bytes", "ppredeem gateway serving", gateway,
			[]string{"--memory-limit-bytes", "134217728"}, nil, 134217728, "memory_limit_bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := c.start(append(c.args, "--admin-listen", "127.0.0.1:0"), c.env...)
			if got := p.lastLog(t, "memory limit set")["from"]; got != c.from {
				t.Errorf("memory limit from %v, want %s", got, c.from)
			}
			admin := "http://" + p.lastLog(t, c.serving)["admin_listen"].(string)
			if got := metric(t, admin, "go_gc_gomemlimit_bytes"); got != c.limit {
				t.Errorf("go_gc_gomemlimit_bytes %v, want %v", got, c.limit)
			}
		})
	}
}

// TestGatewayLimits: the gateway's listener has the same exact header
// limit and lingers after refusing a body the same way (a real process).
func TestGatewayLimits(t *testing.T) {
	up := newClaimUpstream(t)
	p := startGatewayProcess(t, []string{"--upstream", up.srv.URL, "--listen", "127.0.0.1:0", "--max-body-bytes", "1024"})
	for size, status := range map[int]int{16384: 404, 16385: 431} {
		if resp, body := exchange(t, p.base, headOf(size)); resp.StatusCode != status {
			t.Errorf("%d bytes of headers: HTTP %d %q, want %d", size, resp.StatusCode, body, status)
		}
	}
	resp, body := sendWholeBodyFirst(t, p.base, "/relays", 4<<20)
	if resp.StatusCode != 400 || !strings.Contains(body, `"title":"Request body too large"`) {
		t.Fatalf("a body over the limit, sent whole before reading: HTTP %d %q", resp.StatusCode, body)
	}
}
