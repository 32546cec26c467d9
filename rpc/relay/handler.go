package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/httpbody"
	"github.com/ppredeem/ppredeem/rpc/keyhash"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify/pass"
)

// Paths of the provider API (rpc/relay/PROTOCOL.md §3).
const (
	PathRelays      = "/api/privacy/v1/relays"
	PathChallenge   = "/api/privacy/v1/relays/challenge"
	PathPasses      = "/api/v1/privacy-passes"
	PathClaimReport = "/api/privacy/v1/relay-sessions/claim"
	// PathGenerateClaim is the ServeMux pattern of generate-claim.
	PathGenerateClaim = "/api/privacy/v1/relays/{relayToken}/generate-claim"
)

// Defaults of Config and Options fields left zero.
const (
	DefaultRelayLifetime  = 24 * time.Hour
	DefaultIdempotencyTTL = 24 * time.Hour
	DefaultMaxBodyBytes   = 64 << 10
	// AccessTokenLifetime is how long a relay-session-access-token is valid (rpc/relay/PROTOCOL.md §3.1).
	AccessTokenLifetime = 30 * time.Minute
)

// Credential is one API key or verifier key as configured: a name (for billing and logs)
// and the SHA-256 of the key string. The key itself is never stored.
type Credential = keyhash.Key

// Config is what the provider API serves with at one moment; a reload (SIGHUP) builds a
// new one and SetConfig swaps it in whole.
type Config struct {
	// Issuer holds the Privacy Pass keys per claim type, the challenge MAC keys and the
	// pass lifetime.
	Issuer       *pass.Issuer
	APIKeys      []Credential
	VerifierKeys []Credential
	// AccessKeys are the HS256 keys of relay-session access tokens, newest first: the
	// first signs, all verify (rotation).
	AccessKeys [][]byte
	// Sandbox allows sandbox relays.
	Sandbox bool
	// RelayLifetime is how long after creation a relay can be redeemed (default 24 h).
	RelayLifetime time.Duration
	// IdempotencyTTL is how long a first complete answer is replayed (default 24 h).
	IdempotencyTTL time.Duration
}

// Options configures New. Store is required.
type Options struct {
	Store spend.RelayStore
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives one line per request (default: discard).
	Logger *slog.Logger
	// MaxBodyBytes bounds a request body (default 64 KiB).
	MaxBodyBytes int64
	// Bodies is the memory budget of request bodies, shared with every
	// endpoint of the listener (default: a budget of its own,
	// httpbody.DefaultLimit bytes).
	Bodies *httpbody.Budget
}

// Handler serves the provider API. It is safe for concurrent use.
type Handler struct {
	store   spend.RelayStore
	now     func() time.Time
	log     *slog.Logger
	maxBody int64
	bodies  *httpbody.Budget
	metrics *metrics
	cfg     atomic.Pointer[Config]
	relays  *relayCache
}

// New builds a Handler without a configuration: every endpoint answers 404 until
// SetConfig gives it one.
func New(o Options) (*Handler, error) {
	if o.Store == nil {
		return nil, errors.New("relay: Options.Store is required")
	}
	h := &Handler{store: o.Store, now: o.Now, log: o.Logger, maxBody: o.MaxBodyBytes, bodies: o.Bodies, relays: newRelayCache(relayCacheSize)}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.bodies == nil {
		h.bodies = httpbody.NewBudget(0)
	}
	if h.maxBody > h.bodies.Largest() {
		return nil, fmt.Errorf("relay: MaxBodyBytes %d does not fit the body budget (%d bytes for one body)", h.maxBody, h.bodies.Largest())
	}
	h.metrics = newMetrics()
	return h, nil
}

// Collectors returns the handler's metrics, for the server's registry.
func (h *Handler) Collectors() []prometheus.Collector { return h.metrics.collectors() }

// SetConfig puts c in force from the next request on; nil turns the API off (404).
func (h *Handler) SetConfig(c *Config) {
	if c != nil {
		cc := *c
		if cc.RelayLifetime <= 0 {
			cc.RelayLifetime = DefaultRelayLifetime
		}
		if cc.IdempotencyTTL <= 0 {
			cc.IdempotencyTTL = DefaultIdempotencyTTL
		}
		c = &cc
	}
	h.cfg.Store(c)
}

// Routes returns the provider API's ServeMux patterns and their handlers, for the main
// listener (rpc.Options.Routes). Besides the five endpoints, other methods on their paths
// answer 405 and other POSTs below /api/privacy/ 404, both in the errors shape.
func (h *Handler) Routes() map[string]http.Handler {
	routes := map[string]http.Handler{
		"POST " + PathRelays:        h.endpoint("create_relay", h.createRelay),
		"POST " + PathChallenge:     h.endpoint("challenge", h.challenge),
		"POST " + PathPasses:        h.endpoint("issue", h.issue),
		"POST " + PathGenerateClaim: h.endpoint("generate_claim", h.generateClaim),
		"POST " + PathClaimReport:   h.endpoint("report_claim", h.reportClaim),
		"POST /api/privacy/":        http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeError(w, refuse(rowNotFound, "")) }),
	}
	notPOST := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeError(w, refuse(rowMethod, "use POST")) })
	for _, p := range []string{PathRelays, PathChallenge, PathPasses, PathGenerateClaim, PathClaimReport} {
		// ServeMux patterns with a method cannot overlap the main listener's catch-alls;
		// the methods a client may plausibly send are listed (GET also serves HEAD).
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			routes[m+" "+p] = notPOST
		}
	}
	return routes
}

// result is what an endpoint learned, for its metric and log line.
type result struct {
	claimType string
	outcome   string // generate-claim's outcome, "" elsewhere
	keyID     string
	relay     string // short hash of the relay ID
}

type endpointFunc func(w http.ResponseWriter, r *http.Request, c *Config, res *result) ([]byte, error)

// endpoint runs f with the configuration in force and answers: 200 with f's body, or the
// error's row of the table. It observes the latency, counts the outcome and logs one line
// without secrets.
func (h *Handler) endpoint(name string, f endpointFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var res result
		c := h.cfg.Load()
		var body []byte
		var err error
		if c == nil {
			err = refuse(rowNotFound, "the relay provider API is not configured on this server")
		} else {
			body, err = f(w, r, c, &res)
		}
		status := http.StatusOK
		title := ""
		if err != nil {
			rw := writeError(w, err)
			status, title = rw.status, string(rw.title)
			if res.outcome == "" {
				res.outcome = rw.outcome
			}
		} else {
			writeJSON(w, http.StatusOK, body)
		}
		elapsed := time.Since(start)
		h.metrics.requestTime.WithLabelValues(name, strconv.Itoa(status)).Observe(elapsed.Seconds())
		if name == "generate_claim" && res.outcome != "" {
			h.metrics.claims.WithLabelValues(res.outcome).Inc()
		}
		level := slog.LevelDebug
		switch {
		case status >= 500:
			level = slog.LevelError
		case status >= 400:
			level = slog.LevelInfo
		}
		if !h.log.Enabled(r.Context(), level) {
			return
		}
		attrs := []slog.Attr{
			slog.String("request_id", rpc.RequestID(r.Context())),
			slog.String("endpoint", name),
			slog.Int("status", status),
			slog.Duration("elapsed", elapsed),
		}
		if title != "" {
			attrs = append(attrs, slog.String("title", title))
		}
		for _, a := range []struct{ k, v string }{{"outcome", res.outcome}, {"claim_type", res.claimType}, {"key_id", res.keyID}, {"relay", res.relay}} {
			if a.v != "" {
				attrs = append(attrs, slog.String(a.k, a.v))
			}
		}
		if status >= 500 {
			// Internal texts may name the store's trouble; never a secret: no request
			// header or body value reaches an error's text.
			attrs = append(attrs, slog.String("err", err.Error()))
		}
		h.log.LogAttrs(r.Context(), level, "relay request", attrs...)
	})
}
