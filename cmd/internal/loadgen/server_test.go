package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/kind/voprf"
	"github.com/ppredeem/ppredeem/rpc/wire"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify"
)

// The servers the tests run against: the real redeem handler, optionally
// wrapped to hold or inspect requests, and a raw TCP server for answers the
// real one never gives (resets, garbage, silence).

func testKey(t *testing.T) *verify.Key {
	t.Helper()
	k, err := verify.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testServer is the real ppredeem handler (rpc.NewHandler) holding keys,
// over the embedded spent-token store in a temporary directory, behind
// httptest.
type testServer struct {
	*httptest.Server
	url   string // the redeem endpoint
	store *spend.Bolt
	keys  []*verify.Key
	conns atomic.Int64 // connections accepted
}

// newServer starts the real handler; wrap, if not nil, wraps it (to hold or
// inspect requests). useTLS selects httptest's TLS server.
func newServer(t *testing.T, keys []*verify.Key, wrap func(http.Handler) http.Handler, useTLS bool) *testServer {
	t.Helper()
	ks, err := verify.NewKeySet(keys)
	if err != nil {
		t.Fatal(err)
	}
	store, err := spend.OpenBolt(spend.BoltConfig{Path: filepath.Join(t.TempDir(), "spent.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID()
	}
	if err := store.PrepareKeys(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
	set := voprf.New(ks, verify.Limits{})
	h, err := rpc.NewHandler(rpc.Options{
		Kinds:   []rpc.Kind{{Method: wire.MethodRedeem, Keys: func() rpc.KeySet { return set }}},
		Spender: store,
		Ready:   store.Ping,
	})
	if err != nil {
		t.Fatal(err)
	}
	var handler http.Handler = h
	if wrap != nil {
		handler = wrap(h)
	}
	s := &testServer{Server: httptest.NewUnstartedServer(handler), store: store, keys: keys}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if useTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close) // before the store's Close
	s.url = s.URL + wire.RedeemPath
	return s
}

// start serves the real handler holding keys and returns its redeem URL.
func start(t *testing.T, keys ...*verify.Key) (string, *testServer) {
	t.Helper()
	s := newServer(t, keys, nil, false)
	return s.url, s
}

// spent is the number of tokens the store holds as spent, over all keys.
func (s *testServer) spent(t *testing.T) int64 {
	t.Helper()
	var n int64
	for _, k := range s.keys {
		c, err := s.store.Count(context.Background(), k.ID())
		if err != nil {
			t.Fatal(err)
		}
		n += c
	}
	return n
}

// holdUntil wraps a handler so that every request waits until release is
// closed (or its client gives up) before it is served.
func holdUntil(release <-chan struct{}) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			readBody(r)
			select {
			case <-release:
				h.ServeHTTP(w, r)
			case <-r.Context().Done():
			}
		})
	}
}

// readBody reads r's body ahead of the handler, which gets a copy: once the
// body is read, net/http watches the connection, and the request's context
// is done when the client hangs up. It returns the body.
func readBody(r *http.Request) []byte {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body
}

// lineWatch is a Progress writer that keeps what is written and closes
// seen the first time a complete line satisfies match.
type lineWatch struct {
	match func(line string) bool
	seen  chan struct{}

	mu      sync.Mutex
	all     strings.Builder
	partial string
	closed  bool
}

func newLineWatch(match func(line string) bool) *lineWatch {
	return &lineWatch{match: match, seen: make(chan struct{})}
}

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	lines := strings.Split(w.partial+string(p), "\n")
	w.partial = lines[len(lines)-1]
	for _, l := range lines[:len(lines)-1] {
		if !w.closed && w.match(l) {
			w.closed = true
			close(w.seen)
		}
	}
	return len(p), nil
}

func (w *lineWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// rawServer speaks just enough HTTP/1.1 to read requests; answer writes the
// answer to the n-th request (from 1, over all connections) on conn and
// returns false to end the connection (it is closed unless answer did).
type rawServer struct {
	ln     net.Listener
	answer func(conn net.Conn, n int64) bool

	conns  atomic.Int64  // accepted connections
	reqs   atomic.Int64  // requests read
	closed chan struct{} // a value each time a connection ends
	mu     sync.Mutex
	open   []net.Conn
}

func newRawServer(t *testing.T, answer func(conn net.Conn, n int64) bool) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, answer: answer, closed: make(chan struct{}, 1024)}
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
			wg.Go(func() {
				s.serve(conn)
				s.closed <- struct{}{}
			})
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

// write writes answer.
func write(answer string) func(net.Conn, int64) bool {
	return func(c net.Conn, _ int64) bool {
		_, err := io.WriteString(c, answer)
		return err == nil
	}
}
