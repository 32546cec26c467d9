package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/ppredeem/ppredeem/verify"
)

// Tests of the HTTP client at the generator's boundary: connections, what
// counts as an answer and what as a transport failure, timeouts,
// cancellation, https.

const okBody = `{"jsonrpc":"2.0","id":1,"result":"success"}`

// okAnswer is a well-formed keep-alive answer.
var okAnswer = answer("200 OK", okBody)

// answer is an HTTP/1.1 answer with body and its Content-Length.
func answer(status, body string) string {
	return "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func runRaw(t *testing.T, s *rawServer, cfg Config) *Report {
	t.Helper()
	cfg.URL, cfg.Keys = s.url(), []*verify.Key{testKey(t)}
	rep := run(t, cfg)
	checkConsistent(t, rep)
	return rep
}

// Connections are kept alive: one per request in flight at most, whatever
// the loop.
func TestKeepAlive(t *testing.T) {
	for _, rate := range []float64{0, 2000} {
		k := testKey(t)
		srv := newServer(t, []*verify.Key{k}, nil, false)
		rep := run(t, Config{URL: srv.url, Keys: []*verify.Key{k}, Concurrency: 4, Count: 400, Rate: rate})
		checkConsistent(t, rep)
		if rep.Codes["success"]+rep.Codes["late"] != 400 || rep.Unexpected != 0 {
			t.Errorf("rate %v: codes %v", rate, rep.Codes)
		}
		if n := srv.conns.Load(); n < 1 || n > 4 {
			t.Errorf("rate %v: %d connections for concurrency 4", rate, n)
		}
	}
}

// "Connection: close" answers: the client redials and carries on.
func TestConnectionClose(t *testing.T) {
	k := testKey(t)
	var n atomic.Int64
	srv := newServer(t, []*verify.Key{k}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1)%3 == 0 {
				w.Header().Set("Connection", "close")
			}
			h.ServeHTTP(w, r)
		})
	}, false)
	rep := run(t, Config{URL: srv.url, Keys: []*verify.Key{k}, Concurrency: 2, Count: 90})
	checkConsistent(t, rep)
	if rep.Codes["success"] != 90 || rep.Codes["transport"] != 0 {
		t.Errorf("codes %v", rep.Codes)
	}
	if n := srv.conns.Load(); n < 30 || n > 32 {
		t.Errorf("%d connections, want 2 and one per close but the last ones", n)
	}
}

// A server that resets the connection in the middle of an answer: that
// request is a transport failure, never retried; the run goes on over a new
// connection.
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
	if rep.Codes["transport"] != 20 || rep.Codes["success"] != 80 || s.reqs.Load() != 100 {
		t.Errorf("codes %v after %d requests, want 20 transport and 80 successes after 100", rep.Codes, s.reqs.Load())
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "20 transport failures, e.g.") {
		t.Errorf("notes %q", rep.Notes)
	}
	if n := s.conns.Load(); n < 20 || n > 22 {
		t.Errorf("%d connections, want 2 and one per reset but the last ones", n)
	}
}

// Answers in the forms the client must understand, and broken ones it must
// count as transport failures.
func TestAnswerForms(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string
		ok     bool
		close  bool // the server closes the connection after answering
		framed bool // not JSON-RPC, but a well-framed answer: the connection is kept
	}{
		{name: "content-length", answer: okAnswer, ok: true},
		{name: "chunked", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n" + okBody[:5] + "\r\n26\r\n" + okBody[5:] + "\r\n0\r\n\r\n", ok: true},
		{name: "error code", answer: answer("403 Forbidden", `{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"x"}}`), ok: true},
		{name: "HTTP/1.0 keep-alive", answer: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 43\r\n\r\n" + okBody, ok: true},

		{name: "not JSON-RPC", answer: answer("502 Bad Gateway", "bad gateway"), framed: true},
		{name: "no content", answer: "HTTP/1.1 204 No Content\r\n\r\n", framed: true},
		{name: "too large", answer: answer("200 OK", okBody+strings.Repeat(" ", maxResponse))},
		{name: "not HTTP", answer: "hello\r\n\r\n"},
		{name: "bad length", answer: "HTTP/1.1 200 OK\r\nContent-Length: 4x\r\n\r\n" + okBody},
		{name: "short body", answer: okAnswer[:len(okAnswer)-5], close: true},
		{name: "no answer", answer: "", close: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newRawServer(t, func(c net.Conn, n int64) bool {
				return write(tc.answer)(c, n) && !tc.close
			})
			rep := runRaw(t, s, Config{Concurrency: 1, Count: 3, Timeout: 5 * time.Second})
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
		"close token": "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 43\r\n\r\n" + okBody,
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

// Dialling a closed port fails at once; the worker backs off (5ms doubling
// to 200ms) instead of burning the token pool.
func TestDialBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/api/redeem"
	ln.Close()
	k := testKey(t)
	rep := run(t, Config{URL: url, Keys: []*verify.Key{k}, Concurrency: 1, Count: 8})
	checkConsistent(t, rep)
	if rep.Codes["transport"] != 8 {
		t.Errorf("codes %v, want 8 transport failures", rep.Codes)
	}
	// Before requests 2 to 8: 5+10+20+40+80+160+200 ms.
	if rep.DurationSeconds < 0.515 {
		t.Errorf("8 failed dials in %.3fs, want ≥ 0.515s of backoff", rep.DurationSeconds)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "refused") {
		t.Errorf("notes %q", rep.Notes)
	}
}

// A keep-alive connection idle for longer than IdleConnTimeout is closed by
// the client, not reused: the next request dials a new one.
func TestIdleConnection(t *testing.T) {
	s := newRawServer(t, write(okAnswer))
	c, err := newHTTPClient(context.Background(), Config{URL: s.url(), Concurrency: 1, Timeout: 5 * time.Second,
		IdleConnTimeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	snd := c.newSender(context.Background())
	for i := range 3 {
		if body, _, err := snd.send([]byte("{}")); err != nil || string(body) != okBody {
			t.Fatalf("request %d: %q %v", i, body, err)
		}
		<-s.closed // the client closed the idle connection
	}
	if n := s.conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

// Cancelling the context aborts a request in flight at once, and every
// later one.
func TestInterrupt(t *testing.T) {
	inFlight := make(chan struct{})
	s := newRawServer(t, func(c net.Conn, n int64) bool {
		close(inFlight)
		io.Copy(io.Discard, c) // until the client hangs up
		return false
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := newHTTPClient(ctx, Config{URL: s.url(), Concurrency: 1, Timeout: time.Hour, IdleConnTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	go func() {
		<-inFlight
		cancel()
	}()
	snd := c.newSender(ctx)
	if _, _, err := snd.send([]byte("{}")); err == nil {
		t.Fatal("a cancelled request succeeded")
	}
	if _, _, err := snd.send([]byte("{}")); !errors.Is(err, errAborted) {
		t.Errorf("after cancel: %v, want errAborted", err)
	}
}

// https:// URLs use the same client over TLS.
func TestHTTPS(t *testing.T) {
	k := testKey(t)
	srv := newServer(t, []*verify.Key{k}, nil, true)
	tlsConfig := srv.Client().Transport.(*http.Transport).TLSClientConfig
	rep := run(t, Config{URL: srv.url, Keys: []*verify.Key{k}, Concurrency: 4, Count: 100,
		DoubleSpend: 0.2, BadTag: 0.1, TLSConfig: tlsConfig})
	checkConsistent(t, rep)
	if rep.Redemptions != 100 || rep.Unexpected != 0 || rep.Codes["transport"] != 0 {
		t.Errorf("https: codes %v unexpected %d", rep.Codes, rep.Unexpected)
	}
	// Without the test CA the server is not trusted.
	rep = run(t, Config{URL: srv.url, Keys: []*verify.Key{k}, Concurrency: 1, Count: 2, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}})
	if rep.Codes["transport"] != 2 || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "certificate") {
		t.Errorf("untrusted server: codes %v notes %q", rep.Codes, rep.Notes)
	}
}

// The requests are what the server expects: POST to the URL's path and
// query exactly, JSON, the minted body, credentials from the URL.
func TestRequestForm(t *testing.T) {
	k := testKey(t)
	var (
		mu   sync.Mutex
		seen []string
	)
	srv := newServer(t, []*verify.Key{k}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, pw, _ := r.BasicAuth()
			n := int64(len(readBody(r)))
			mu.Lock()
			seen = append(seen, strings.Join([]string{r.Method, r.RequestURI, r.Host, r.Header.Get("Content-Type"),
				user, pw, strconv.FormatBool(n > 0 && n == r.ContentLength)}, " "))
			mu.Unlock()
			r.URL.Path = "/api/redeem" // the handler serves only that path
			h.ServeHTTP(w, r)
		})
	}, false)
	host := strings.TrimPrefix(srv.URL, "http://")
	rep := run(t, Config{URL: "http://user:pw@" + host + "/api//redeem?x=1", Keys: []*verify.Key{k}, Concurrency: 1, Count: 3})
	if rep.Codes["success"] != 3 {
		t.Errorf("codes %v", rep.Codes)
	}
	want := "POST /api//redeem?x=1 " + host + " application/json user pw true"
	if len(seen) != 3 || seen[0] != want {
		t.Errorf("requests %q, want 3 of %q", seen, want)
	}
}

// A round trip allocates nothing, answer decoding included.
func TestRoundTripAllocs(t *testing.T) {
	addr := newFixedServer(t, []byte(okAnswer))
	c, err := newHTTPClient(context.Background(), Config{URL: "http://" + addr + "/", Concurrency: 1, Timeout: time.Minute, IdleConnTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	snd := c.newSender(context.Background())
	var p fastjson.Parser
	req := []byte("{}")
	step := func() {
		body, _, err := snd.send(req)
		if err != nil {
			t.Fatal(err)
		}
		if code, ok := parseOutcome(&p, body); !ok || code != codeSuccess {
			t.Fatalf("%q", body)
		}
	}
	step() // dial
	allocs := testing.AllocsPerRun(200, step)
	if raceEnabled { // the race detector makes sync.Pool drop what it holds
		t.Logf("%v allocations per round trip under the race detector", allocs)
		return
	}
	if allocs != 0 {
		t.Errorf("%v allocations per round trip", allocs)
	}
}
