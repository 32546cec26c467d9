package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// upstreamTap is an HTTP reverse proxy (net/http/httputil) between a
// gateway and the real provider API, for the network faults a real
// provider does not make on demand. Its rule decides, for the nth request
// of each provider call, what the tap does with it: pass it on, hang up
// before the provider sees it, answer as a failing load balancer would,
// hang up after the provider answered (the provider did the work, the
// answer is lost), or hold the provider's answer until release() or until
// the gateway gives up on it. It records what the gateway got for every
// request, and onAnswer sees every provider answer before the gateway does.
type upstreamTap struct {
	url   string
	srv   *httptest.Server
	proxy *httputil.ReverseProxy

	mu       sync.Mutex
	rule     func(call string, n int) tapFault
	onAnswer func(call string, n, status int)
	counts   map[string]int
	got      map[string][]int // per call, what the gateway got: a status, or 0 (hung up)

	release chan struct{} // closed by release()
	held    chan string   // a call whose answer is held, as the hold begins
	gaveUp  chan string   // a held call whose gateway request ended first
}

// tapFault is what the tap does with one request.
type tapFault struct {
	kind   tapKind
	status int // for tapAnswer
}

type tapKind int

const (
	tapForward    tapKind = iota
	tapHangUp             // close the connection without passing the request on
	tapAnswer             // answer status in HTML, as a load balancer does, without passing the request on
	tapLoseAnswer         // pass the request on, then close the connection instead of answering
	tapHold               // pass the request on, hold the answer until release() or the gateway gives up
)

var (
	forward    = tapFault{}
	hangUp     = tapFault{kind: tapHangUp}
	loseAnswer = tapFault{kind: tapLoseAnswer}
	holdAnswer = tapFault{kind: tapHold}
)

func proxyAnswer(status int) tapFault { return tapFault{kind: tapAnswer, status: status} }

type tapRequestKey struct{}

type tapRequest struct {
	call  string
	n     int
	fault tapFault
}

var (
	errTapLost   = errors.New("tap: answer lost on purpose")
	errTapGaveUp = errors.New("tap: the gateway gave up on a held answer")
)

// newUpstreamTap starts a tap in front of the provider at base.
func newUpstreamTap(t testing.TB, base string) *upstreamTap {
	t.Helper()
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	tp := &upstreamTap{
		counts:  map[string]int{},
		got:     map[string][]int{},
		release: make(chan struct{}),
		held:    make(chan string, 16),
		gaveUp:  make(chan string, 16),
	}
	tp.proxy = &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		ModifyResponse: tp.answered,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			tr := r.Context().Value(tapRequestKey{}).(tapRequest)
			if !errors.Is(err, errTapGaveUp) {
				tp.record(tr.call, 0) // lost on purpose, or the provider is unreachable
			}
			hangUpOn(w)
		},
	}
	tp.srv = httptest.NewServer(tp)
	tp.url = tp.srv.URL
	t.Cleanup(func() {
		tp.releaseHeld()
		tp.srv.Close()
	})
	return tp
}

// closeEachConnection makes the tap close every connection after one
// answer, so that every request of the gateway goes on a new connection.
// net/http's client resends a request carrying an Idempotency-Key by itself
// when a reused connection fails before any answer; on new connections
// every failure reaches the gateway's own retries.
func (tp *upstreamTap) closeEachConnection() { tp.srv.Config.SetKeepAlivesEnabled(false) }

// setRule replaces the rule (nil: forward everything) and the answer hook.
func (tp *upstreamTap) setRule(rule func(call string, n int) tapFault, onAnswer func(call string, n, status int)) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.rule, tp.onAnswer = rule, onAnswer
}

// releaseHeld lets every held answer, and every later one, go on.
func (tp *upstreamTap) releaseHeld() {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	select {
	case <-tp.release:
	default:
		close(tp.release)
	}
}

func (tp *upstreamTap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call := tapCall(r.URL.Path)
	tp.mu.Lock()
	tp.counts[call]++
	tr := tapRequest{call: call, n: tp.counts[call]}
	if tp.rule != nil {
		tr.fault = tp.rule(call, tr.n)
	}
	tp.mu.Unlock()
	switch tr.fault.kind {
	case tapHangUp:
		tp.record(call, 0)
		hangUpOn(w)
		return
	case tapAnswer:
		tp.record(call, tr.fault.status)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(tr.fault.status)
		io.WriteString(w, "<html><body><h1>"+http.StatusText(tr.fault.status)+"</h1></body></html>\n")
		return
	}
	tp.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tapRequestKey{}, tr)))
}

// answered sees the provider's answer before it goes on.
func (tp *upstreamTap) answered(resp *http.Response) error {
	tr := resp.Request.Context().Value(tapRequestKey{}).(tapRequest)
	tp.mu.Lock()
	onAnswer := tp.onAnswer
	tp.mu.Unlock()
	if onAnswer != nil {
		onAnswer(tr.call, tr.n, resp.StatusCode)
	}
	switch tr.fault.kind {
	case tapLoseAnswer:
		return errTapLost
	case tapHold:
		notify(tp.held, tr.call)
		select {
		case <-tp.release:
		case <-resp.Request.Context().Done():
			notify(tp.gaveUp, tr.call)
			return errTapGaveUp
		}
	}
	tp.record(tr.call, resp.StatusCode)
	return nil
}

func (tp *upstreamTap) record(call string, status int) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.got[call] = append(tp.got[call], status)
}

// statuses is what the gateway got for each request of call so far (0: the
// connection was closed).
func (tp *upstreamTap) statuses(call string) []int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]int(nil), tp.got[call]...)
}

// count is the number of requests of call that reached the tap.
func (tp *upstreamTap) count(call string) int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.counts[call]
}

// requests counts the requests that reached the tap, /healthz left out.
func (tp *upstreamTap) requests() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	n := 0
	for call, c := range tp.counts {
		if call != "healthz" {
			n += c
		}
	}
	return n
}

// tapCall names a provider call as the gateway's metrics do.
func tapCall(path string) string {
	switch {
	case path == "/healthz":
		return "healthz"
	case path == "/api/privacy/v1/relays":
		return "create_relay"
	case path == "/api/privacy/v1/relays/challenge":
		return "challenge"
	case path == "/api/v1/privacy-passes":
		return "sign"
	case strings.HasPrefix(path, "/api/privacy/v1/relays/") && strings.HasSuffix(path, "/generate-claim"):
		return "generate_claim"
	}
	return "other"
}

// notify sends call on ch unless its buffer is full (nobody waits for that
// many).
func notify(ch chan string, call string) {
	select {
	case ch <- call:
	default:
	}
}

// hangUpOn closes the connection of w without an answer.
func hangUpOn(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
	}
}
