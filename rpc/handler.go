package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	gorpc "github.com/gorilla/rpc/v2"

	"github.com/ppredeem/ppredeem/verify"
)

// RedeemPath is where redemptions are POSTed.
const RedeemPath = "/api/redeem"

// Defaults for Options fields left zero.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxBatch     = 100
	readyTimeout        = 2 * time.Second
)

// Options configures a Handler. Keys and Spender are required.
type Options struct {
	// Keys returns the key set in force; it is called once per redemption,
	// so a reload (SIGHUP) takes effect for the next request.
	Keys func() *verify.KeySet
	// Spender records spends.
	Spender Spender
	// Ready reports whether the spent-token store is reachable (GET /readyz).
	Ready func(context.Context) error
	// Limits bounds the params of one redemption.
	Limits verify.Limits
	// MaxBodyBytes bounds a request body (default 1 MiB).
	MaxBodyBytes int64
	// MaxBatch bounds the requests in one JSON-RPC batch (default 100).
	MaxBatch int
	// Logger receives one line per failed redemption (default: discard).
	Logger *slog.Logger
	// Observer receives every redemption's outcome (optional).
	Observer Observer
}

// Observer is told the outcome of every redemption that reached the redeem
// method. keyID is empty when no key verified the tag.
type Observer interface {
	ObserveRedemption(outcome Outcome, keyID string, elapsed time.Duration)
}

var errPanic = errors.New("rpc: panic while serving a batch element")

// Handler serves the main listener: POST /api/redeem, GET /healthz and
// GET /readyz.
type Handler struct {
	keys     func() *verify.KeySet
	spender  Spender
	ready    func(context.Context) error
	limits   verify.Limits
	maxBody  int64
	maxBatch int
	log      *slog.Logger
	observer Observer
	server   *gorpc.Server
	draining atomic.Bool
	bufs     sync.Pool

	readyMu    sync.Mutex // one store check at a time; others reuse its answer
	readyAt    time.Time
	readyError error
}

// readyCacheFor is how long a store check answers /readyz: the probe is on
// the public listener, and a flood of it must not take pooled connections
// from spends.
const readyCacheFor = time.Second

func (h *Handler) storeReady(ctx context.Context) error {
	h.readyMu.Lock()
	defer h.readyMu.Unlock()
	if time.Since(h.readyAt) < readyCacheFor {
		return h.readyError
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	h.readyError = h.ready(ctx)
	h.readyAt = time.Now()
	return h.readyError
}

// NewHandler checks o and builds the handler.
func NewHandler(o Options) (*Handler, error) {
	if o.Keys == nil || o.Spender == nil {
		return nil, errors.New("rpc: Options.Keys and Options.Spender are required")
	}
	h := &Handler{
		keys:     o.Keys,
		spender:  o.Spender,
		ready:    o.Ready,
		limits:   o.Limits,
		maxBody:  o.MaxBodyBytes,
		maxBatch: o.MaxBatch,
		log:      o.Logger,
		observer: o.Observer,
		server:   gorpc.NewServer(),
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.maxBatch <= 0 {
		h.maxBatch = DefaultMaxBatch
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.server.RegisterCodec(newCodec(), "application/json")
	if err := h.server.RegisterService(&redeemService{h: h}, "Redeem"); err != nil {
		return nil, fmt.Errorf("rpc: register redeem: %w", err)
	}
	if err := h.server.RegisterService(&discoverService{}, "Discover"); err != nil {
		return nil, fmt.Errorf("rpc: register rpc.discover: %w", err)
	}
	return h, nil
}

// StartDraining makes /readyz fail so load balancers stop sending new
// requests; call it when shutdown begins.
func (h *Handler) StartDraining() { h.draining.Store(true) }

// ServeHTTP routes the main listener.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = withRequestID(w, r)
	switch r.URL.Path {
	case "/healthz":
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
			return
		}
	case "/readyz":
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.serveReady(w, r)
			return
		}
	case RedeemPath:
		if r.Method == http.MethodPost {
			h.serveRPC(w, r)
			return
		}
	default:
		if r.Method == http.MethodPost {
			writeError(w, nullID, &invalidRequestError{reason: "no such endpoint: POST to " + RedeemPath, status: http.StatusNotFound})
			return
		}
	}
	writeError(w, nullID, &httpMethodError{method: r.Method})
}

func (h *Handler) serveReady(w http.ResponseWriter, r *http.Request) {
	status := func(code int, s string) {
		writeJSON(w, code, []byte(`{"status":"`+s+`"}`+"\n"))
	}
	switch {
	case h.draining.Load():
		status(http.StatusServiceUnavailable, "shutting down")
		return
	case h.keys() == nil:
		status(http.StatusServiceUnavailable, "no keys loaded")
		return
	}
	if h.ready != nil {
		if err := h.storeReady(r.Context()); err != nil {
			loggerFrom(r.Context(), h.log).Warn("readiness check failed", "err", err)
			status(http.StatusServiceUnavailable, "spent-token store unreachable")
			return
		}
	}
	status(http.StatusOK, "ready")
}

func (h *Handler) serveRPC(w http.ResponseWriter, r *http.Request) {
	buf, _ := h.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer func() {
		if buf.Cap() <= 64<<10 {
			buf.Reset()
			h.bufs.Put(buf)
		}
	}()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, nullID, &invalidRequestError{
				reason: fmt.Sprintf("the request body is larger than the limit of %d bytes", h.maxBody),
				status: http.StatusRequestEntityTooLarge,
			})
			return
		}
		writeError(w, nullID, &invalidRequestError{reason: "could not read the request body"})
		return
	}
	body := buf.Bytes()
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		h.serveBatch(w, r, trimmed)
		return
	}
	h.serveOne(w, r, body)
}

// serveOne runs one JSON-RPC request through gorilla.
func (h *Handler) serveOne(w http.ResponseWriter, r *http.Request, body []byte) {
	one := new(http.Request)
	*one = *r
	one.Body = bodyBytes{bytes.NewReader(body), body}
	one.Header = contentTypeJSON // the codec decides, whatever the client sent
	h.server.ServeHTTP(w, one)
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
		writeError(w, nullID, &invalidRequestError{reason: "empty batch"})
		return
	case len(elems) > h.maxBatch:
		writeError(w, nullID, &invalidRequestError{reason: fmt.Sprintf("a batch holds at most %d requests", h.maxBatch)})
		return
	}
	// One goroutine per element (at most maxBatch): verify is CPU work the
	// scheduler spreads over the cores, and the spends all wait on the store
	// at once, so they share its round trips instead of queueing behind a
	// semaphore past write_timeout.
	answers := make([][]byte, len(elems))
	var wg sync.WaitGroup
	for i, elem := range elems {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				// net/http recovers panics only on the handler's own
				// goroutine; one here would take the process down.
				if p := recover(); p != nil {
					loggerFrom(r.Context(), h.log).Error("panic in a batch element", "panic", fmt.Sprint(p))
					answers[i] = bytes.TrimRight(errorBody(nullID, wireError(errPanic)), "\n")
				}
			}()
			rec := &bufferedResponse{header: make(http.Header)}
			h.serveOne(rec, r, elem)
			if !isNotification(elem) {
				answers[i] = bytes.TrimRight(rec.body.Bytes(), "\n")
			}
		}()
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
		writeError(w, nullID, &invalidRequestError{reason: "notifications are not supported: every request needs an id"})
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
