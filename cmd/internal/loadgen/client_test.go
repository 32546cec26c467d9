package loadgen

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/verify"
)

// Tests of the hand-written HTTP/1.1 client (the fast path).

const okBody = `{"jsonrpc":"2.0","id":1,"result":"success"}`

// okAnswer is a well-formed keep-alive answer.
var okAnswer = answer("200 OK", okBody)

// answer is an HTTP/1.1 answer with body and its Content-Length.
func answer(status, body string) string {
	return "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// chunked is a chunked answer made of pieces; the second chunk has an
// extension, and there is a trailer.
func chunked(pieces ...string) string {
	s := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	for i, p := range pieces {
		s += strconv.FormatInt(int64(len(p)), 16)
		if i == 1 {
			s += " ;ext=1"
		}
		s += "\r\n" + p + "\r\n"
	}
	return s + "0\r\nTrailer: x\r\n\r\n"
}

// rawServer speaks just enough HTTP/1.1 to read requests; answer writes the
// answer to the n-th request (from 1, over all connections) on conn and
// returns false to end the connection (it is closed unless answer did).
type rawServer struct {
	t      *testing.T
	ln     net.Listener
	answer func(conn net.Conn, n int64) bool

	conns atomic.Int64 // accepted connections
	reqs  atomic.Int64 // requests read
	mu    sync.Mutex
	open  []net.Conn
}

func newRawServer(t *testing.T, answer func(conn net.Conn, n int64) bool) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{t: t, ln: ln, answer: answer}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.mu.Lock()
			s.open = append(s.open, conn)
			s.mu.Unlock()
			wg.Go(func() { s.serve(conn) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() + "/api/redeem" }

func (s *rawServer) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		if !s.answer(conn, s.reqs.Add(1)) {
			return
		}
	}
}

// write writes answer; for the table below.
func write(answer string) func(net.Conn, int64) bool {
	return func(c net.Conn, _ int64) bool {
		_, err := io.WriteString(c, answer)
		return err == nil
	}
}

func runRaw(t *testing.T, s *rawServer, cfg Config) *Report {
	t.Helper()
	k := testKey(t)
	cfg.URL, cfg.Keys = s.url(), []*verify.Key{k}
	rep := run(t, cfg)
	checkConsistent(t, rep)
	return rep
}

// countConns wraps an httptest server's listener to count connections.
func countConns(srv *httptest.Server) *atomic.Int64 {
	var n atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

// Connections are kept alive: one per worker at most, whatever the loop.
func TestKeepAlive(t *testing.T) {
	for _, rate := range []float64{0, 2000} {
		k := testKey(t)
		srv := httptest.NewUnstartedServer(newFake(t, k))
		conns := countConns(srv)
		srv.Start()
		t.Cleanup(srv.Close)
		rep := run(t, Config{URL: srv.URL + "/api/redeem", Keys: []*verify.Key{k}, Concurrency: 4, Count: 400, Rate: rate})
		checkConsistent(t, rep)
		if rep.Codes["success"]+rep.Codes["late"] != 400 || rep.Unexpected != 0 {
			t.Errorf("rate %v: codes %v", rate, rep.Codes)
		}
		if n := conns.Load(); n < 1 || n > 4 {
			t.Errorf("rate %v: %d connections for concurrency 4", rate, n)
		}
	}
}

// "Connection: close" answers: the client redials and carries on.
func TestConnectionClose(t *testing.T) {
	k := testKey(t)
	f := newFake(t, k)
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			w.Header().Set("Connection", "close")
		}
		f.ServeHTTP(w, r)
	}))
	conns := countConns(srv)
	srv.Start()
	t.Cleanup(srv.Close)
	rep := run(t, Config{URL: srv.URL + "/api/redeem", Keys: []*verify.Key{k}, Concurrency: 2, Count: 90})
	checkConsistent(t, rep)
	if rep.Codes["success"] != 90 || rep.Codes["transport"] != 0 {
		t.Errorf("codes %v", rep.Codes)
	}
	if n := conns.Load(); n < 30 || n > 32 {
		t.Errorf("%d connections, want 2 and one per close but the last ones", n)
	}
}

// A server that resets the connection in the middle of an answer: that
// request is a transport failure, the run goes on over a new connection.
func TestResetMidAnswer(t *testing.T) {
	s := newRawServer(t, func(c net.Conn, n int64) bool {
		if n%5 == 0 {
			io.WriteString(c, okAnswer[:60])
			c.(*net.TCPConn).SetLinger(0) // RST
			return false
		}
		return write(okAnswer)(c, n)
	})
	rep := runRaw(t, s, Config{Concurrency: 2, Count: 100})
	if rep.Codes["transport"] != 20 || rep.Codes["success"] != 80 {
		t.Errorf("codes %v, want 20 transport and 80 successes", rep.Codes)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "20 transport failures, e.g.") {
		t.Errorf("notes %q", rep.Notes)
	}
	if n := s.conns.Load(); n < 20 || n > 22 {
		t.Errorf("%d connections, want 2 and one per reset but the last ones", n)
	}
}

// Well-formed answers in the forms the client must understand, and
// malformed ones it must count as transport failures.
func TestAnswerForms(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string
		ok     bool
		close  bool // the server closes the connection after answering
		framed bool // not JSON-RPC, but a well-framed answer: the connection is kept
	}{
		{name: "content-length", answer: okAnswer, ok: true},
		{name: "lower-case headers, LF only", answer: "HTTP/1.1 200 OK\ncontent-length:  43 \n\n" + okBody, ok: true},
		{name: "chunked", answer: chunked(okBody[:5], okBody[5:30], okBody[30:]), ok: true},
		{name: "chunked, large", answer: chunked(okBody[:10], okBody[10:], strings.Repeat(" ", 2*maxResponse)), ok: true}, // kept: the first maxResponse bytes
		{name: "large body", answer: answer("200 OK", okBody+strings.Repeat(" ", 2*maxResponse)), ok: true},
		{name: "interim 100", answer: "HTTP/1.1 100 Continue\r\n\r\n" + okAnswer, ok: true},
		{name: "error code", answer: answer("403 Forbidden", `{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"x"}}`), ok: true},
		{name: "no content", answer: "HTTP/1.1 204 No Content\r\n\r\n", framed: true},
		{name: "HTTP/1.0 keep-alive", answer: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 43\r\n\r\n" + okBody, ok: true},

		{name: "chunked, bad size", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + okBody + "\r\n0\r\n\r\n"},
		{name: "chunked, no CRLF after data", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2b\r\n" + okBody + "XX0\r\n\r\n"},
		{name: "chunked, truncated", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2b\r\n" + okBody + "\r\n", close: true},
		{name: "chunked and length", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 43\r\n\r\n2b\r\n" + okBody + "\r\n0\r\n\r\n"},
		{name: "gzip coding", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 43\r\n\r\n" + okBody},
		{name: "two lengths", answer: "HTTP/1.1 200 OK\r\nContent-Length: 43\r\nContent-Length: 44\r\n\r\n" + okBody},
		{name: "bad length", answer: "HTTP/1.1 200 OK\r\nContent-Length: 4x\r\n\r\n" + okBody},
		{name: "bad status line", answer: "HTTP/2 200 OK\r\nContent-Length: 43\r\n\r\n" + okBody},
		{name: "not HTTP", answer: "hello\r\n\r\n"},
		{name: "header without colon", answer: "HTTP/1.1 200 OK\r\nContent-Length 43\r\n\r\n" + okBody},
		{name: "folded header", answer: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 43\r\n\r\n" + okBody},
		{name: "long header", answer: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", h1ReadBuffer) + "\r\nContent-Length: 43\r\n\r\n" + okBody},
		{name: "too many headers", answer: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: a\r\n", maxHeaderLines+1) + "Content-Length: 43\r\n\r\n" + okBody},
		{name: "switching protocols", answer: "HTTP/1.1 101 Switching Protocols\r\n\r\n"},
		{name: "short body", answer: answer("200 OK", okBody)[:len(okAnswer)-5], close: true},
		{name: "not JSON-RPC", answer: answer("502 Bad Gateway", "bad gateway"), framed: true},
		{name: "no answer", answer: "", close: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newRawServer(t, func(c net.Conn, n int64) bool {
				return write(tc.answer)(c, n) && !tc.close
			})
			rep := runRaw(t, s, Config{Concurrency: 1, Count: 3, Timeout: 2 * time.Second})
			if tc.ok && (rep.Redemptions != 3 || rep.Codes["transport"] != 0) {
				t.Errorf("codes %v, want 3 answers", rep.Codes)
			}
			if !tc.ok && rep.Codes["transport"] != 3 {
				t.Errorf("codes %v, want 3 transport failures", rep.Codes)
			}
			// A well-framed answer keeps the connection; a broken one
			// drops it.
			want := int64(3)
			if tc.ok || tc.framed {
				want = 1
			}
			if n := s.conns.Load(); n != want {
				t.Errorf("%d connections, want %d", n, want)
			}
			if !tc.ok {
				t.Logf("notes: %q", rep.Notes)
			}
		})
	}
}

// Answers that end the connection: HTTP/1.0 without keep-alive, and a body
// delimited by the end of the connection. Every request gets its answer.
func TestAnswerEndsConnection(t *testing.T) {
	for name, answer := range map[string]string{
		"HTTP/1.0":    "HTTP/1.0 200 OK\r\nContent-Length: 43\r\n\r\n" + okBody,
		"no length":   "HTTP/1.1 200 OK\r\n\r\n" + okBody,
		"close token": "HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 43\r\n\r\n" + okBody,
	} {
		t.Run(name, func(t *testing.T) {
			s := newRawServer(t, func(c net.Conn, n int64) bool {
				write(answer)(c, n)
				return false
			})
			rep := runRaw(t, s, Config{Concurrency: 2, Count: 10})
			if rep.Codes["success"] != 10 || s.conns.Load() != 10 {
				t.Errorf("codes %v over %d connections, want 10 successes over 10", rep.Codes, s.conns.Load())
			}
		})
	}
}

// Large answers, one after the other on one client: the kept prefix never
// exceeds maxResponse and the rest is skipped, whatever the framing.
func TestLargeAnswers(t *testing.T) {
	pad := strings.Repeat(" ", 2*maxResponse+3)
	answers := []string{
		// 40kB, then growing past maxResponse: the buffer's capacity
		// overshoots it.
		answer("200 OK", okBody+strings.Repeat(" ", 40000)),
		chunked(okBody[:10], okBody[10:], pad),
		"HTTP/1.1 200 OK\r\n\r\n" + okBody + pad, // to the end of the connection
		answer("200 OK", okBody+pad),
		chunked(okBody, pad, pad),
		"HTTP/1.1 200 OK\r\n\r\n" + okBody + pad,
	}
	s := newRawServer(t, func(c net.Conn, n int64) bool {
		a := answers[(n-1)%int64(len(answers))]
		return write(a)(c, n) && !strings.HasPrefix(a, "HTTP/1.1 200 OK\r\n\r\n")
	})
	c := newH1Client(context.Background(), s.ln.Addr().String(), 5*time.Second)
	defer c.close()
	req := []byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	for i := range 2 * len(answers) {
		body, err := c.roundTrip(req, time.Now())
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if len(body) > maxResponse || !strings.HasPrefix(string(body), okBody) {
			t.Fatalf("answer %d: %d bytes, %.50q", i, len(body), body)
		}
	}
}

// A server that never answers: every request times out, promptly.
func TestTimeoutFastPath(t *testing.T) {
	s := newRawServer(t, func(c net.Conn, n int64) bool {
		io.Copy(io.Discard, c) // until the client gives up
		return false
	})
	t0 := time.Now()
	rep := runRaw(t, s, Config{Concurrency: 2, Count: 4, Timeout: 50 * time.Millisecond})
	if rep.Codes["transport"] != 4 || time.Since(t0) > 1500*time.Millisecond {
		t.Errorf("codes %v in %v", rep.Codes, time.Since(t0))
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "timeout") {
		t.Errorf("notes %q", rep.Notes)
	}
}

// Dialling a closed port fails at once; the client backs off instead of
// burning the token pool.
func TestDialBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String() + "/api/redeem"
	ln.Close()
	k := testKey(t)
	rep := run(t, Config{URL: addr, Keys: []*verify.Key{k}, Concurrency: 2, Duration: 300 * time.Millisecond})
	checkConsistent(t, rep)
	// Per worker: 5+10+20+40+80+160 ms of backoff fill 300ms: about 7 tries.
	if n := rep.Codes["transport"]; n < 2 || n > 30 {
		t.Errorf("%d transport failures in 300ms, want a handful", n)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "refused") {
		t.Errorf("notes %q", rep.Notes)
	}
}

// A keep-alive connection the server closed while it was idle is noticed
// and redialled before it is used, so the request does not fail.
func TestIdleConnectionClosed(t *testing.T) {
	old := idleCheckAfter
	idleCheckAfter = 10 * time.Millisecond
	defer func() { idleCheckAfter = old }()
	s := newRawServer(t, func(c net.Conn, n int64) bool {
		write(okAnswer)(c, n)
		return false // close without saying so, as an idle timeout does
	})
	c := newH1Client(context.Background(), s.ln.Addr().String(), time.Second)
	defer c.close()
	req := []byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	for i := range 3 {
		time.Sleep(50 * time.Millisecond) // the server's close arrives
		body, err := c.roundTrip(req, time.Now())
		if err != nil || string(body) != okBody {
			t.Fatalf("request %d: %q %v", i, body, err)
		}
	}
	if n := s.conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

// Cancelling the context aborts a request in flight on the fast path at
// once, and the aborted request is not an error.
func TestInterrupt(t *testing.T) {
	s := newRawServer(t, func(c net.Conn, n int64) bool {
		io.Copy(io.Discard, c) // until the client gives up
		return false
	})
	ctx, cancel := context.WithCancel(context.Background())
	c := newH1Client(ctx, s.ln.Addr().String(), 10*time.Second)
	defer c.close()
	time.AfterFunc(50*time.Millisecond, cancel)
	t0 := time.Now()
	_, err := c.roundTrip([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"), t0)
	if err == nil || time.Since(t0) > 2*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(t0))
	}
	if _, err := c.roundTrip(nil, time.Now()); !errors.Is(err, errAborted) {
		t.Errorf("after cancel: %v, want errAborted", err)
	}
}

// The net/http path (https:// URLs) still works, over TLS too.
func TestNetHTTPPath(t *testing.T) {
	k := testKey(t)
	f := newFake(t, k)
	rep, err := runWith(context.Background(), Config{URL: start(t, f), Keys: []*verify.Key{k}, Concurrency: 4, Count: 100,
		DoubleSpend: 0.2, BadTag: 0.1}, options{netHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, rep)
	if rep.Redemptions != 100 || rep.Unexpected != 0 || rep.Codes["transport"] != 0 {
		t.Errorf("net/http path: codes %v unexpected %d", rep.Codes, rep.Unexpected)
	}

	srv := httptest.NewTLSServer(newFake(t, k))
	t.Cleanup(srv.Close)
	tlsConfig := srv.Client().Transport.(*http.Transport).TLSClientConfig
	rep, err = runWith(context.Background(), Config{URL: srv.URL + "/api/redeem", Keys: []*verify.Key{k}, Concurrency: 4, Count: 50},
		options{tlsConfig: tlsConfig})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, rep)
	if rep.Codes["success"] != 50 {
		t.Errorf("https: codes %v", rep.Codes)
	}
}

// The pre-built requests are valid HTTP/1.1 requests whose bodies are the
// minted bodies.
func TestMintRequests(t *testing.T) {
	k := testKey(t)
	u, _ := url.Parse("http://user:pw@127.0.0.1:8080/api/redeem?x=1")
	target := newH1Target(u)
	if target.addr != "127.0.0.1:8080" {
		t.Errorf("addr %q", target.addr)
	}
	tok, err := mintRequests(context.Background(), []*verify.Key{k}, verify.SWU, 30, 5, target.head, nil)
	if err != nil {
		t.Fatal(err)
	}
	reqs := append(append([][]byte{}, tok.validReq...), tok.badReq...)
	bodies := append(append([][]byte{}, tok.valid...), tok.bad...)
	if len(reqs) != 35 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i, raw := range reqs {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(string(raw))))
		if err != nil {
			t.Fatalf("request %d: %v\n%s", i, err, raw)
		}
		body, _ := io.ReadAll(req.Body)
		user, pw, _ := req.BasicAuth()
		if req.Method != "POST" || req.RequestURI != "/api/redeem?x=1" || req.Host != "127.0.0.1:8080" ||
			req.Header.Get("Content-Type") != "application/json" || req.ContentLength != int64(len(bodies[i])) ||
			string(body) != string(bodies[i]) || user != "user" || pw != "pw" {
			t.Fatalf("request %d: %+v body %q", i, req, body)
		}
		if !strings.HasSuffix(string(raw), "\r\n\r\n"+string(bodies[i])) {
			t.Fatalf("request %d does not end in its body", i)
		}
	}
	if u, _ := url.Parse("http://[::1]/p"); newH1Target(u).addr != "[::1]:80" {
		t.Errorf("default port: %q", newH1Target(u).addr)
	}
}

func TestParsers(t *testing.T) {
	for line, want := range map[string][2]int{
		"HTTP/1.1 200 OK": {200, 1}, "HTTP/1.0 404": {404, 0}, "HTTP/1.1 503 ": {503, 1},
	} {
		if s, m, ok := parseStatusLine([]byte(line)); !ok || s != want[0] || m != want[1] {
			t.Errorf("%q: %d %d %v", line, s, m, ok)
		}
	}
	for _, line := range []string{"", "HTTP/1.1 20 OK", "HTTP/1.1 2000 OK", "HTTP/2.0 200 OK", "HTTP/1.1 099 x", "http/1.1 200 OK", "HTTP/1.x 200 OK"} {
		if _, _, ok := parseStatusLine([]byte(line)); ok {
			t.Errorf("%q parsed", line)
		}
	}
	for line, want := range map[string]int64{"0": 0, "1a": 26, "FF ; x=y": 255, "10;": 16, "fffffffffffffff": 1<<60 - 1} {
		if n, ok := parseChunkSize([]byte(line)); !ok || n != want {
			t.Errorf("chunk %q: %d %v", line, n, ok)
		}
	}
	for _, line := range []string{"", ";", "x", "1 2", "1000000000000000", "-1"} {
		if _, ok := parseChunkSize([]byte(line)); ok {
			t.Errorf("chunk %q parsed", line)
		}
	}
	if !hasToken([]byte("keep-alive, CLOSE"), "close") || hasToken([]byte("closed"), "close") || !hasToken([]byte(" close "), "close") {
		t.Error("hasToken")
	}
}

// The fast path allocates nothing per request.
func TestRoundTripAllocs(t *testing.T) {
	s := newFixedServer(t, []byte(okAnswer))
	c := newH1Client(context.Background(), s, time.Second)
	defer c.close()
	req := []byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	if _, err := c.roundTrip(req, time.Now()); err != nil { // dial
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		body, err := c.roundTrip(req, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if code, ok := parseOutcomeScan(body); !ok || code != codeSuccess {
			t.Fatalf("%q", body)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round trip", allocs)
	}
}
