package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gorpc "github.com/gorilla/rpc/v2"

	"github.com/ppredeem/ppredeem/rpc/httpbody"
	"github.com/ppredeem/ppredeem/rpc/wire"
)

// RedeemPath is where redemptions are POSTed (wire.RedeemPath).
const RedeemPath = wire.RedeemPath

// Defaults for Options fields left zero.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxBatch     = 100
	DefaultReadyTimeout = 2 * time.Second
)

// Options configures a Handler. Kinds and Spender are required.
type Options struct {
	// Kinds are the kinds of token redeemed, each under its own JSON-RPC
	// method; at least one.
	Kinds []Kind
	// Spender records spends.
	Spender Spender
	// Ready reports whether the spent-token store accepts spends (GET
	// /readyz). Its answer, good or bad, stands for a second: a flood of
	// /readyz runs it at most once a second, and a failing answer is
	// logged once per run, not once per request.
	Ready func(context.Context) error
	// ReadyTimeout bounds one run of Ready, whatever the client does
	// (default DefaultReadyTimeout). Give it more than the store's own
	// probe needs, or a slow probe is cut short and reported as a failure.
	ReadyTimeout time.Duration
	// Warnings, if set, lists what an operator should know about the
	// configuration (e.g. that it serves a public test key); /readyz shows
	// them beside its status and they never change its status code.
	Warnings func() []string
	// MaxBodyBytes bounds a request body (default 1 MiB).
	MaxBodyBytes int64
	// Bodies is the memory budget of request bodies, shared with every
	// other endpoint of the listener (default: one of its own, of
	// httpbody.DefaultLimit bytes). MaxBodyBytes must fit in it
	// (Bodies.Largest()).
	Bodies *httpbody.Budget
	// MaxBatch bounds the requests in one JSON-RPC batch (default 100).
	MaxBatch int
	// Logger receives one line per failed redemption (default: discard).
	Logger *slog.Logger
	// Observer receives every redemption's outcome (optional).
	Observer Observer
	// Issue, when set, mounts POST /api/issue and GET /api/commitments
	// (issue.go).
	Issue *IssueOptions
	// Routes are more endpoints of the main listener: ServeMux patterns with a method
	// (e.g. "POST /api/privacy/v1/relays") and their handlers, such as the relay provider
	// API (rpc/relay). A pattern that conflicts with the listener's own is an error.
	Routes map[string]http.Handler
}

// Spender records spent tokens; *spend.Postgres and *spend.Bolt satisfy it.
// Spend returns nil only once the spend is durably committed, and
// spend.ErrAlreadySpent for a token already recorded under keyID.
type Spender interface {
	Spend(ctx context.Context, keyID string, token []byte) error
}

// Observer is told the outcome of every redemption that reached a
// redemption method. keyID is empty when no key verified the token.
type Observer interface {
	ObserveRedemption(outcome Outcome, keyID string, elapsed time.Duration)
}

var errPanic = errors.New("rpc: panic while serving a batch element")

// Handler serves the main listener: POST /api/redeem, GET /healthz and
// GET /readyz.
type Handler struct {
	kinds    map[string]func() KeySet // by JSON-RPC method
	spender  Spender
	ready    func(context.Context) error
	warnings func() []string
	maxBody  int64
	bodies   *httpbody.Budget
	maxBatch int
	log      *slog.Logger
	observer Observer
	issue    *issuance // nil: no issuance endpoints
	rpc      *gorpc.Server
	mux      *http.ServeMux
	draining atomic.Bool
	extra    map[string]http.Handler

	readyMu      sync.Mutex // one store check at a time; others reuse its answer
	readyAt      time.Time
	readyError   error
	readyTimeout time.Duration
}

// readyCacheFor is how long a store check answers /readyz: the probe is on
// the public listener, and a flood of it must not take pooled connections
// from spends.
const readyCacheFor = time.Second

// NewHandler checks o and builds the handler.
func NewHandler(o Options) (*Handler, error) {
	if len(o.Kinds) == 0 || o.Spender == nil {
		return nil, errors.New("rpc: Options.Kinds and Options.Spender are required")
	}
	h := &Handler{
		kinds:    make(map[string]func() KeySet, len(o.Kinds)),
		spender:  o.Spender,
		ready:    o.Ready,
		warnings: o.Warnings,
		maxBody:  o.MaxBodyBytes,
		bodies:   o.Bodies,
		maxBatch: o.MaxBatch,
		log:      o.Logger,
		observer: o.Observer,
		rpc:      gorpc.NewServer(),
		extra:    o.Routes,
	}
	h.readyTimeout = o.ReadyTimeout
	methods := make([]string, 0, len(o.Kinds)+1)
	for _, k := range o.Kinds {
		switch _, dup := h.kinds[k.Method]; {
		case k.Method == "" || k.Keys == nil:
			return nil, errors.New("rpc: a Kind needs a Method and Keys")
		case dup || k.Method == methodDiscover || k.Method == methodIssue:
			return nil, fmt.Errorf("rpc: method %q is taken", k.Method)
		}
		h.kinds[k.Method] = k.Keys
		methods = append(methods, k.Method)
	}
	methods = append(methods, methodDiscover)
	if err := h.setIssue(o.Issue); err != nil {
		return nil, err
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.bodies == nil {
		h.bodies = httpbody.NewBudget(0)
	}
	if h.maxBody > h.bodies.Largest() {
		return nil, fmt.Errorf("rpc: MaxBodyBytes %d does not fit in a body budget of %d bytes (at most %d)",
			h.maxBody, h.bodies.Limit(), h.bodies.Largest())
	}
	if h.maxBatch <= 0 {
		h.maxBatch = DefaultMaxBatch
	}
	if h.readyTimeout <= 0 {
		h.readyTimeout = DefaultReadyTimeout
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.rpc.RegisterCodec(newCodec(h.kinds, methodList(methods)), "application/json")
	if err := h.rpc.RegisterService(&redeemService{h: h}, "Redeem"); err != nil {
		return nil, fmt.Errorf("rpc: register redeem: %w", err)
	}
	if err := h.rpc.RegisterService(&discoverService{}, "Discover"); err != nil {
		return nil, fmt.Errorf("rpc: register rpc.discover: %w", err)
	}
	var err error
	if h.mux, err = h.routesChecked(); err != nil {
		return nil, err
	}
	return h, nil
}

// routes is the main listener's routing table; an endpoint is one line.
// ServeMux answers on its own only with plain-text 404s and 405s and with
// redirects to cleaned paths; the two catch-all patterns at the end and
// ServeHTTP's path check keep all three from ever reaching a client.
func (h *Handler) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+RedeemPath, h.serveRPC)
	mux.HandleFunc("GET /healthz", serveHealth) // GET patterns take HEAD too
	mux.HandleFunc("GET /readyz", h.serveReady)
	h.issueRoutes(mux) // POST /api/issue, GET /api/commitments
	// The probes take GET and HEAD only; a POST there is a wrong HTTP
	// method, not an unknown endpoint.
	mux.HandleFunc("POST /healthz", serveNotPOST)
	mux.HandleFunc("POST /readyz", serveNotPOST)
	mux.HandleFunc("POST /", serveNoSuchEndpoint)
	mux.HandleFunc("/", serveNotPOST)
	for pattern, handler := range h.extra {
		mux.Handle(pattern, handler)
	}
	return mux
}

// routesChecked is routes, with ServeMux's panic on a conflicting extra pattern turned
// into an error.
func (h *Handler) routesChecked() (mux *http.ServeMux, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("rpc: Options.Routes: %v", p)
		}
	}()
	return h.routes(), nil
}

// StartDraining makes /readyz fail so load balancers stop sending new
// requests; call it when shutdown begins.
func (h *Handler) StartDraining() { h.draining.Store(true) }

// ServeHTTP gives the request its ID and routes it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = withRequestID(w, r)
	if !canonicalPath(r.URL.Path) {
		// ServeMux would redirect to the cleaned path; no endpoint lives
		// at a path that is not already clean.
		fallback(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// canonicalPath reports whether ServeMux routes p as it is, without
// redirecting to a cleaned form (net/http's cleanPath: path.Clean keeping
// a trailing slash).
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean == p
}

// fallback answers a request no endpoint takes: a POST is at the wrong
// path, anything else has the wrong HTTP method.
func fallback(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		serveNoSuchEndpoint(w, r)
		return
	}
	serveNotPOST(w, r)
}

func serveNoSuchEndpoint(w http.ResponseWriter, _ *http.Request) {
	writeError(w, nullID, refuse(outcomeNoSuchEndpoint, ""))
}

func serveNotPOST(w http.ResponseWriter, r *http.Request) {
	writeError(w, nullID, refuse(outcomeHTTPMethod, sanitizeToken(r.Method)))
}

func serveHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
}

func (h *Handler) serveReady(w http.ResponseWriter, r *http.Request) {
	status := func(code int, s string) {
		writeJSON(w, code, readyBody(s, h.warnings))
	}
	if h.draining.Load() {
		status(http.StatusServiceUnavailable, "shutting down")
		return
	}
	for _, keys := range h.kinds {
		if keys() == nil {
			status(http.StatusServiceUnavailable, "no keys loaded")
			return
		}
	}
	if h.ready != nil {
		if err := h.storeReady(r.Context()); err != nil {
			status(http.StatusServiceUnavailable, "spent-token store unreachable")
			return
		}
	}
	status(http.StatusOK, "ready")
}

// storeReady answers from the last store check while it is fresh, good or
// bad; otherwise it runs one (the others wait for it) and logs a failing
// one, and the first good one after failures, once.
func (h *Handler) storeReady(ctx context.Context) error {
	h.readyMu.Lock()
	defer h.readyMu.Unlock()
	if !h.readyAt.IsZero() && time.Since(h.readyAt) < readyCacheFor {
		return h.readyError
	}
	// A client that hangs up must not cut the check short: its answer
	// stands for every caller.
	checkCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.readyTimeout)
	defer cancel()
	was := h.readyError
	h.readyError = h.ready(checkCtx)
	h.readyAt = time.Now()
	switch log := loggerFrom(ctx, h.log); {
	case h.readyError != nil:
		log.Warn("readiness check failed", "err", h.readyError)
	case was != nil:
		log.Info("readiness check passes again")
	}
	return h.readyError
}

func (h *Handler) serveRPC(w http.ResponseWriter, r *http.Request) {
	body, err := h.bodies.Read(r, h.maxBody)
	if err != nil {
		writeError(w, nullID, bodyRefusal(err, h.maxBody))
		return
	}
	defer body.Release()
	if trimmed := bytes.TrimLeft(body.Bytes(), " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		h.serveBatch(w, r, trimmed)
		return
	}
	h.serveOne(w, r, body.Bytes())
}

// serveOne runs one JSON-RPC request through gorilla.
func (h *Handler) serveOne(w http.ResponseWriter, r *http.Request, body []byte) {
	one := new(http.Request)
	*one = *r
	one.Body = bodyBytes{bytes.NewReader(body), body}
	one.Header = contentTypeJSON // the codec decides, whatever the client sent
	h.rpc.ServeHTTP(w, one)
}

var contentTypeJSON = http.Header{"Content-Type": {"application/json"}}

// serveBatch answers a JSON-RPC batch: each element goes through serveOne
// on its own, so redemptions in one batch are independent; their spends
// still share database round trips through the store's batching.
func (h *Handler) serveBatch(w http.ResponseWriter, r *http.Request, body []byte) {
	var elems []json.RawMessage
	if err := json.Unmarshal(body, &elems); err != nil {
		writeError(w, nullID, errParse)
		return
	}
	switch {
	case len(elems) == 0:
		writeError(w, nullID, refuse(outcomeInvalidRequest, "empty batch"))
		return
	case len(elems) > h.maxBatch:
		writeError(w, nullID, refuse(outcomeInvalidRequest, fmt.Sprintf("a batch holds at most %d requests", h.maxBatch)))
		return
	}
	// One goroutine per element (at most maxBatch): verify is CPU work the
	// scheduler spreads over the cores, and the spends all wait on the store
	// at once, so they share its round trips instead of queueing behind a
	// semaphore past write_timeout.
	answers := make([][]byte, len(elems))
	var wg sync.WaitGroup
	for i, elem := range elems {
		wg.Go(func() {
			defer func() {
				// net/http recovers panics only on the handler's own
				// goroutine; one here would take the process down.
				if p := recover(); p != nil {
					loggerFrom(r.Context(), h.log).Error("panic in a batch element", "panic", fmt.Sprint(p))
					r, msg := classify(errPanic)
					answers[i] = bytes.TrimRight(errorBody(nullID, r.code, msg), "\n")
				}
			}()
			rec := &bufferedResponse{header: make(http.Header)}
			h.serveOne(rec, r, elem)
			if !isNotification(elem) {
				answers[i] = bytes.TrimRight(rec.body.Bytes(), "\n")
			}
		})
	}
	wg.Wait()
	out := make([]byte, 0, 128*len(elems))
	out = append(out, '[')
	for _, a := range answers {
		if a == nil {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, a...)
	}
	if len(out) == 1 {
		// Only notifications: they were refused and spent nothing; say so
		// once rather than answer with nothing.
		writeError(w, nullID, refuse(outcomeInvalidRequest, "notifications are not supported: every request needs an id"))
		return
	}
	out = append(out, "]\n"...)
	writeJSON(w, http.StatusOK, out)
}

// isNotification reports whether a batch element is an object without an
// id member. Such elements get no answer in a batch (JSON-RPC 2.0 §6) and,
// as everywhere, never reach the redeem method.
func isNotification(elem json.RawMessage) bool {
	var probe struct {
		ID json.RawMessage `json:"id"`
	}
	t := bytes.TrimLeft(elem, " \t\r\n")
	if len(t) == 0 || t[0] != '{' || json.Unmarshal(elem, &probe) != nil {
		return false
	}
	return probe.ID == nil
}

// bufferedResponse collects one batch element's answer.
type bufferedResponse struct {
	header http.Header
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) WriteHeader(int)             {}
