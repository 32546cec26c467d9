package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ppredeem/ppredeem/rpc/httpbody"
	"github.com/ppredeem/ppredeem/rpc/requestid"
)

// Headers of the gateway's API.
const (
	// RelaySecretHeader carries the relay secret on a redeem, and is
	// forwarded upstream.
	RelaySecretHeader = "Persona-Relay-Secret"
	// IdempotencyKeyHeader is sent upstream on issuance and redeem.
	IdempotencyKeyHeader = "Idempotency-Key"
	// RequestIDHeader carries the request ID (package requestid): the
	// caller's when it is a short printable token, generated otherwise;
	// echoed to the caller and forwarded upstream.
	RequestIDHeader = requestid.Header
)

// Defaults for Options fields left zero.
const (
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxBodyBytes   = 64 << 10
)

// readyCacheFor is how long one upstream check answers /readyz, so that a
// flood of probes costs the upstream one request a second.
const (
	readyCacheFor = time.Second
	readyTimeout  = 2 * time.Second
)

// Options configures a Handler. Upstream is required.
type Options struct {
	// Upstream is the provider API's base URL, e.g. http://127.0.0.1:8080.
	Upstream string
	// HTTPClient sends upstream requests. Default: a client with net/http's
	// default transport settings, up to 256 idle connections, and no
	// redirects followed. A supplied client must not retry on its own
	// (beyond net/http's resend of a replayable request whose reused
	// connection failed before any answer).
	HTTPClient *http.Client
	// RequestTimeout bounds one gateway request, retries included
	// (default 10s); the caller's connection bounds it too.
	RequestTimeout time.Duration
	// MaxBodyBytes bounds a request body (default 64 KiB).
	MaxBodyBytes int64
	// Bodies is the memory budget of request bodies of the listener
	// (default: one of httpbody.DefaultLimit bytes). MaxBodyBytes must fit
	// in it (Bodies.Largest()).
	Bodies *httpbody.Budget
	// Backoff holds the wait before each retry; its length is the number of
	// retries. Nil selects DefaultBackoff(); an empty slice disables retries.
	Backoff []time.Duration
	// Sleep waits between retries (default: a timer, or until ctx is done,
	// returning ctx.Err()). Tests inject it to observe waits without taking
	// them.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock (default time.Now): it decides whether a retry still
	// fits before the deadline, and how long a readiness check is reused.
	Now func() time.Time
	// Random supplies nonces, blinding and issuance idempotency keys
	// (default crypto/rand.Reader). It must be safe for concurrent use.
	Random io.Reader
	// Logger receives one line per request (default: discard). Lines never
	// hold API keys, relay secrets, passes, access tokens or claim payloads.
	Logger *slog.Logger
	// Registerer receives the gateway's metrics (default: not registered).
	Registerer prometheus.Registerer
}

// Handler serves the gateway's listener: the three relay endpoints, and
// GET /healthz and GET /readyz.
type Handler struct {
	mux      *http.ServeMux
	up       *upstream
	timeout  time.Duration
	maxBody  int64
	bodies   *httpbody.Budget
	random   io.Reader
	log      *slog.Logger
	metrics  *metrics
	now      func() time.Time
	draining atomic.Bool

	readyMu    sync.Mutex // one upstream check at a time; others reuse its answer
	readyAt    time.Time
	readyError error
}

// New checks o and builds the handler.
func New(o Options) (*Handler, error) {
	base, err := parseBase(o.Upstream)
	if err != nil {
		return nil, err
	}
	if o.RequestTimeout < 0 || o.MaxBodyBytes < 0 {
		return nil, errors.New("gateway: negative RequestTimeout or MaxBodyBytes")
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		mux:     http.NewServeMux(),
		timeout: o.RequestTimeout,
		maxBody: o.MaxBodyBytes,
		bodies:  o.Bodies,
		random:  o.Random,
		log:     o.Logger,
		metrics: m,
		now:     o.Now,
	}
	if h.timeout == 0 {
		h.timeout = DefaultRequestTimeout
	}
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.bodies == nil {
		h.bodies = httpbody.NewBudget(0)
	}
	if h.maxBody > h.bodies.Largest() {
		return nil, fmt.Errorf("gateway: MaxBodyBytes %d does not fit in a body budget of %d bytes (at most %d)",
			h.maxBody, h.bodies.Limit(), h.bodies.Largest())
	}
	if h.random == nil {
		h.random = rand.Reader
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.up = &upstream{
		base:      base,
		client:    o.HTTPClient,
		backoff:   o.Backoff,
		sleep:     o.Sleep,
		now:       h.now,
		metrics:   m,
		requestID: requestID,
	}
	if h.up.client == nil {
		h.up.client = newHTTPClient()
	}
	if h.up.backoff == nil {
		h.up.backoff = DefaultBackoff()
	}
	if h.up.sleep == nil {
		h.up.sleep = sleepContext
	}

	h.mux.Handle("POST /relays", h.endpoint("relays", h.createRelay))
	h.mux.Handle("POST /relays/privacy-passes", h.endpoint("privacy_passes", h.issuePass))
	h.mux.Handle("POST /relays/{relayToken}/redeem", h.endpoint("redeem", h.redeem))
	h.mux.Handle("GET /healthz", h.endpoint("healthz", h.healthz))
	h.mux.Handle("GET /readyz", h.endpoint("readyz", h.readyz))
	h.mux.Handle("/", h.endpoint("other", h.noRoute))
	return h, nil
}

// StartDraining makes /readyz fail so that load balancers stop sending new
// requests; call it when shutdown begins.
func (h *Handler) StartDraining() { h.draining.Store(true) }

// ServeHTTP routes the gateway's listener. Paths that are not clean (".."
// segments, doubled slashes) are answered 404 here: ServeMux would answer
// them with a redirect outside the errors shape.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p == "" || p[0] != '/' || path.Clean(p) != p {
		h.endpoint("other", h.noRoute).ServeHTTP(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// endpointFunc serves one endpoint: it writes a 200 answer and returns nil,
// or returns the error that answer() turns into the failure's answer.
type endpointFunc func(w http.ResponseWriter, r *http.Request) error

// endpoint wraps fn with what every request gets: a request ID, the
// request deadline, the error mapping, metrics and one log line.
func (h *Handler) endpoint(name string, fn endpointFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := h.now()
		tr := &trace{id: requestid.Take(w, r), deadline: start.Add(h.timeout)}
		ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), traceKey{}, tr), h.timeout)
		defer cancel()
		r = r.WithContext(ctx)

		status, title := http.StatusOK, ""
		err := fn(w, r)
		if err != nil {
			var body []byte
			status, title, body = answer(err)
			if status == http.StatusMethodNotAllowed {
				w.Header().Set("Allow", tr.allow)
			}
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", "Bearer")
			}
			if errors.Is(err, errBusy) {
				w.Header().Set("Retry-After", strconv.Itoa(int(httpbody.RetryAfter.Seconds())))
			}
			writeJSON(w, status, body)
		}
		elapsed := h.now().Sub(start)
		h.metrics.requests.WithLabelValues(name, strconv.Itoa(status)).Inc()
		h.metrics.requestTime.WithLabelValues(name).Observe(elapsed.Seconds())
		h.logRequest(ctx, name, status, title, err, tr, elapsed)
	})
}

// logRequest writes the request's line: successes at debug; refusals and
// upstream 4xx answers at info; upstream 5xx answers, network errors,
// timeouts and answers the provider API never gives at warn; the gateway's
// own faults at error. Only fixed texts, hashes, statuses and counts go in;
// the error text only at warn and error, where it is this package's or
// net/http's (without the URL), never request data.
func (h *Handler) logRequest(ctx context.Context, name string, status int, title string, err error, tr *trace, elapsed time.Duration) {
	var up *upstreamError
	level := slog.LevelInfo
	switch {
	case err == nil:
		level = slog.LevelDebug
	case errors.As(err, &up):
		if up.status >= 500 {
			level = slog.LevelWarn
		}
	case status == http.StatusInternalServerError:
		level = slog.LevelError
	case status >= 500:
		level = slog.LevelWarn
	}
	if name == "healthz" || name == "readyz" {
		level = min(level, slog.LevelDebug)
	}
	if !h.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", tr.id),
		slog.String("endpoint", name),
		slog.Int("status", status),
		slog.Duration("elapsed", elapsed),
	}
	if title != "" {
		attrs = append(attrs, slog.String("title", title))
	}
	if tr.attempts > 0 {
		attrs = append(attrs, slog.Int("upstream_attempts", tr.attempts))
	}
	if tr.relay != "" {
		attrs = append(attrs, slog.String("relay", tr.relay))
	}
	if level >= slog.LevelWarn && err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	h.log.LogAttrs(ctx, level, "gateway request", attrs...)
}

// healthz answers while the process serves.
func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
	return nil
}

// readyz answers 200 while the upstream is reachable and the gateway is not
// shutting down. Reachable means GET <upstream>/healthz got an answer below
// 500 within 2s (any provider that answers HTTP counts, even without a
// /healthz); one check answers for a second.
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) error {
	status := func(code int, s string) {
		writeJSON(w, code, []byte(`{"status":"`+s+`"}`+"\n"))
	}
	if h.draining.Load() {
		status(http.StatusServiceUnavailable, "shutting down")
		return nil
	}
	if err := h.upstreamReady(r.Context()); err != nil {
		h.log.Warn("readiness check failed", "request_id", requestID(r.Context()), "err", err)
		status(http.StatusServiceUnavailable, "upstream unreachable")
		return nil
	}
	status(http.StatusOK, "ready")
	return nil
}

func (h *Handler) upstreamReady(ctx context.Context) error {
	h.readyMu.Lock()
	defer h.readyMu.Unlock()
	if !h.readyAt.IsZero() && h.now().Sub(h.readyAt) < readyCacheFor {
		return h.readyError
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	h.readyError = h.checkUpstream(ctx)
	h.readyAt = h.now()
	return h.readyError
}

func (h *Handler) checkUpstream(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.up.base+pathHealth, nil)
	if err != nil {
		return err
	}
	resp, err := h.up.client.Do(req)
	if err != nil {
		return withoutURL(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode >= 500 {
		return errors.New("upstream /healthz answered HTTP " + strconv.Itoa(resp.StatusCode))
	}
	return nil
}

// noRoute answers 405 on the gateway's paths with another HTTP method, 404
// elsewhere.
func (h *Handler) noRoute(_ http.ResponseWriter, r *http.Request) error {
	allow := ""
	p := r.URL.Path
	switch {
	case p == "/relays" || p == "/relays/privacy-passes":
		allow = "POST"
	case strings.HasPrefix(p, "/relays/") && strings.HasSuffix(p, "/redeem") && strings.Count(p, "/") == 3:
		allow = "POST"
	case p == "/healthz" || p == "/readyz":
		allow = "GET, HEAD"
	}
	if allow == "" || path.Clean(p) != p {
		return refuse(http.StatusNotFound, TitleNotFound, "no such endpoint")
	}
	traceFrom(r.Context()).allow = allow
	return refuse(http.StatusMethodNotAllowed, TitleMethodNotAllowed, "use "+allow)
}

// trace collects, for the log line, what happened while serving a request.
type trace struct {
	id       string
	deadline time.Time // on the Options.Now clock; ctx carries the real one
	attempts int       // upstream attempts, retries included
	relay    string    // relayHash of the relay token, on redeem
	allow    string    // the Allow header of a 405
}

type traceKey struct{}

func traceFrom(ctx context.Context) *trace {
	t, _ := ctx.Value(traceKey{}).(*trace)
	return t
}

// requestID returns the request ID of ctx, or "".
func requestID(ctx context.Context) string {
	if t := traceFrom(ctx); t != nil {
		return t.id
	}
	return ""
}

// relayHash is how logs name a relay: the first 8 bytes of the SHA-256 of
// its token, in hex. Enough to follow one relay through the logs.
func relayHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only strings, booleans and slices of them are marshalled here.
		panic("gateway: " + err.Error())
	}
	return append(b, '\n')
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // a client that left cannot be answered
}
