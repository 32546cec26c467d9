package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ppredeem/ppredeem/rpc/gateway"
	"github.com/ppredeem/ppredeem/rpc/httpbody"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
)

// env is a gateway in front of a fake provider.
type env struct {
	p     *provider
	h     *gateway.Handler
	url   string // the gateway's base URL
	reg   *prometheus.Registry
	logs  *rpctest.LogBuffer
	mu    sync.Mutex
	waits []time.Duration // backoff waits asked for, none taken
}

func (e *env) waited() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.waits)
}

// newEnv starts a fake provider and a gateway in front of it. Waits between
// retries are recorded and return at once; opts may change any option.
func newEnv(t testing.TB, opts ...func(*env, *gateway.Options)) *env {
	t.Helper()
	e := &env{p: newProvider(t), reg: prometheus.NewRegistry(), logs: &rpctest.LogBuffer{}}
	o := gateway.Options{
		Upstream:   e.p.srv.URL,
		Logger:     slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: e.reg,
		Sleep: func(ctx context.Context, d time.Duration) error {
			e.mu.Lock()
			e.waits = append(e.waits, d)
			e.mu.Unlock()
			return ctx.Err()
		},
	}
	for _, f := range opts {
		f(e, &o)
	}
	h, err := gateway.New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// members decodes a JSON object answer.
func (r response) members(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("HTTP %d, not a JSON object: %q", r.status, r.body)
	}
	return m
}

// title is the first error title of an errors-shaped answer, checking the
// shape.
func (r response) title(t testing.TB) string {
	t.Helper()
	var doc struct {
		Errors []struct {
			Title   string `json:"title"`
			Details string `json:"details"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil || len(doc.Errors) != 1 || doc.Errors[0].Title == "" {
		t.Fatalf("HTTP %d, not in the errors shape: %q", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return doc.Errors[0].Title
}

func do(t testing.TB, method, url string, header map[string]string, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	setHeaders(req, header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// setHeaders sets Content-Type: application/json, then header: an empty
// value removes the header.
func setHeaders(req *http.Request, header map[string]string) {
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
}

func (e *env) post(t testing.TB, path string, header map[string]string, body string) response {
	t.Helper()
	return do(t, http.MethodPost, e.url+path, header, body)
}

func bearer(key string) map[string]string { return map[string]string{"Authorization": "Bearer " + key} }

func secretHeader(s string) map[string]string { return map[string]string{"Persona-Relay-Secret": s} }

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// relay creates a relay through the gateway and returns its three members.
func (e *env) relay(t testing.TB, body string) (token, secret, access string) {
	t.Helper()
	r := e.post(t, "/relays", nil, body)
	if r.status != http.StatusOK {
		t.Fatalf("POST /relays: HTTP %d %s", r.status, r.body)
	}
	m := r.members(t)
	if len(m) != 3 {
		t.Fatalf("POST /relays answered members %v", m)
	}
	token, _ = m["relay-token"].(string)
	secret, _ = m["relay-secret"].(string)
	access, _ = m["relay-session-access-token"].(string)
	if token == "" || secret == "" || access == "" {
		t.Fatalf("POST /relays: %s", r.body)
	}
	return token, secret, access
}

// pass issues a pass through the gateway.
func (e *env) pass(t testing.TB) string {
	t.Helper()
	r := e.post(t, "/relays/privacy-passes", bearer(testAPIKey), `{"claim-type":"`+claimType+`"}`)
	if r.status != http.StatusOK {
		t.Fatalf("POST /relays/privacy-passes: HTTP %d %s", r.status, r.body)
	}
	m := r.members(t)
	pass, _ := m["privacy-pass-token"].(string)
	if len(m) != 1 || pass == "" {
		t.Fatalf("POST /relays/privacy-passes: %s", r.body)
	}
	return pass
}

func (e *env) redeem(t testing.TB, token, secret, pass string) response {
	t.Helper()
	return e.post(t, "/relays/"+token+"/redeem", secretHeader(secret), jsonText(map[string]string{"privacy-pass-token": pass}))
}

func encryptionKey(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	sk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&sk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return sk, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// TestDocExample runs the documentation's three calls, with and without an
// encryption key, and checks what the provider received.
func TestDocExample(t *testing.T) {
	encSK, encPEM := encryptionKey(t)
	for _, encrypted := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "encrypted"}[encrypted]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			keyMember := "null"
			if encrypted {
				keyMember = jsonText(encPEM)
			}
			token, secret, _ := e.relay(t, `{ "claim-type": "age_over18_united_kingdom", "encryption-key-pem": `+keyMember+` }`)
			e.p.report(token, "passed") // the verifier checks the user
			pass := e.pass(t)
			r := e.redeem(t, token, secret, pass)
			if r.status != http.StatusOK {
				t.Fatalf("redeem: HTTP %d %s", r.status, r.body)
			}
			m := r.members(t)
			payload, _ := m["claim-payload"].(string)
			if len(m) != 2 || m["token-consumed"] != true || payload == "" {
				t.Fatalf("redeem answered %s", r.body)
			}
			if encrypted {
				ct, err := base64.StdEncoding.DecodeString(payload)
				if err != nil {
					t.Fatal(err)
				}
				plain, err := rsa.DecryptOAEP(sha256.New(), nil, encSK, ct, nil)
				if err != nil {
					t.Fatalf("the claim does not decrypt with the platform's key: %v", err)
				}
				payload = string(plain)
			}
			var claim map[string]any
			if err := json.Unmarshal([]byte(payload), &claim); err != nil || claim["claim_result"] != "passed" || claim["claim_type"] != claimType {
				t.Fatalf("claim payload %q", payload)
			}

			// What the provider saw.
			relays := e.p.requests(routeRelays)
			var sent map[string]any
			if err := json.Unmarshal(relays[0].body, &sent); err != nil {
				t.Fatal(err)
			}
			if sent["claim-type"] != claimType || (encrypted && sent["encryption-key-pem"] != encPEM) ||
				(!encrypted && sent["encryption-key-pem"] != nil) || len(sent) != 2 {
				t.Fatalf("relay creation forwarded %s", relays[0].body)
			}
			signs := e.p.requests(routeSign)
			if len(signs) != 1 || signs[0].header.Get("Authorization") != "Bearer "+testAPIKey ||
				len(signs[0].header.Get("Idempotency-Key")) != 32 {
				t.Fatalf("sign requests: %+v", signs)
			}
			claims := e.p.requests(routeClaim)
			if len(claims) != 1 {
				t.Fatalf("%d generate-claim requests", len(claims))
			}
			h := claims[0].header
			if h.Get("Authorization") != "PrivateToken token="+pass || h.Get("Persona-Relay-Secret") != secret ||
				h.Get("Idempotency-Key") != gateway.RedeemIdempotencyKey(token, pass) || string(claims[0].body) != "{}" {
				t.Fatalf("generate-claim headers %v body %q", h, claims[0].body)
			}
			if h.Get("X-Request-Id") == "" {
				t.Error("the request ID is not forwarded upstream")
			}
			if w := e.waited(); len(w) != 0 {
				t.Errorf("retries on a clean run: %v", w)
			}
		})
	}
}

// TestCamelCase: the published SDK's camelCase members work on every
// endpoint; answers stay kebab-case.
func TestCamelCase(t *testing.T) {
	e := newEnv(t)
	_, encPEM := encryptionKey(t)
	token, secret, _ := e.relay(t, jsonText(map[string]any{"claimType": claimType, "encryptionKeyPem": encPEM, "sandbox": true}))
	var sent map[string]any
	json.Unmarshal(e.p.requests(routeRelays)[0].body, &sent)
	if sent["claim-type"] != claimType || sent["encryption-key-pem"] != encPEM || sent["sandbox"] != true {
		t.Fatalf("forwarded %v", sent)
	}
	r := e.post(t, "/relays/privacy-passes", bearer(testAPIKey), `{"claimType":"`+claimType+`"}`)
	if r.status != http.StatusOK {
		t.Fatalf("HTTP %d %s", r.status, r.body)
	}
	pass := r.members(t)["privacy-pass-token"].(string)
	r = e.post(t, "/relays/"+token+"/redeem", secretHeader(secret), `{"privacyPassToken":"`+pass+`"}`)
	if r.status != http.StatusOK || r.members(t)["token-consumed"] != true {
		t.Fatalf("HTTP %d %s", r.status, r.body)
	}
	// Both spellings with one value are fine.
	r = e.post(t, "/relays", nil, `{"claimType":"`+claimType+`","claim-type":"`+claimType+`"}`)
	if r.status != http.StatusOK {
		t.Fatalf("HTTP %d %s", r.status, r.body)
	}
}

// TestRetriedRedeem: a platform that repeats a successful redeem gets the
// same claim, and the provider sees the same Idempotency-Key, from this
// gateway and from another instance.
func TestRetriedRedeem(t *testing.T) {
	e := newEnv(t)
	token, secret, _ := e.relay(t, `{"claim-type":"`+claimType+`"}`)
	e.p.report(token, "passed")
	pass := e.pass(t)
	first := e.redeem(t, token, secret, pass)
	again := e.redeem(t, token, secret, pass)
	other, err := gateway.New(gateway.Options{Upstream: e.p.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	otherSrv := httptest.NewServer(other)
	defer otherSrv.Close()
	third := do(t, http.MethodPost, otherSrv.URL+"/relays/"+token+"/redeem", secretHeader(secret), `{"privacy-pass-token":"`+pass+`"}`)
	for _, r := range []response{first, again, third} {
		if r.status != http.StatusOK || string(r.body) != string(first.body) || r.members(t)["token-consumed"] != true {
			t.Fatalf("HTTP %d %s, first answer %s", r.status, r.body, first.body)
		}
	}
	claims := e.p.requests(routeClaim)
	if len(claims) != 3 {
		t.Fatalf("%d generate-claim requests", len(claims))
	}
	for _, c := range claims {
		if c.header.Get("Idempotency-Key") != gateway.RedeemIdempotencyKey(token, pass) {
			t.Fatalf("Idempotency-Keys differ: %q", c.header.Get("Idempotency-Key"))
		}
	}
}

// withoutKeepAlive makes every upstream attempt use a new connection. On a
// reused keep-alive connection that fails, net/http's Transport replays a
// request that carries an Idempotency-Key by itself, before the gateway's
// retry rules see a failure; tests of those rules turn that off.
func withoutKeepAlive(_ *env, o *gateway.Options) {
	o.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

// TestRedeemRetriedAfterLostAnswer: the provider releases the claim but the
// connection drops before the answer; the gateway's retry carries the same
// key and gets the same claim.
func TestRedeemRetriedAfterLostAnswer(t *testing.T) {
	e := newEnv(t, withoutKeepAlive)
	e.p.intercept = func(w http.ResponseWriter, r *http.Request, route string, n int) bool {
		if route != routeClaim || n != 1 {
			return false
		}
		rec := httptest.NewRecorder()
		e.p.generateClaim(rec, r, nil) // the claim is released and the pass spent...
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return true
		}
		conn.Close() // ...and the answer is lost
		return true
	}
	token, secret, _ := e.relay(t, `{"claim-type":"`+claimType+`"}`)
	e.p.report(token, "passed")
	pass := e.pass(t)
	r := e.redeem(t, token, secret, pass)
	if r.status != http.StatusOK || r.members(t)["token-consumed"] != true {
		t.Fatalf("HTTP %d %s", r.status, r.body)
	}
	claims := e.p.requests(routeClaim)
	if len(claims) != 2 || claims[0].header.Get("Idempotency-Key") != claims[1].header.Get("Idempotency-Key") {
		t.Fatalf("%d generate-claim requests, keys must be equal", len(claims))
	}
	if w := e.waited(); !slices.Equal(w, []time.Duration{100 * time.Millisecond}) {
		t.Fatalf("waits %v", w)
	}
}

// TestRedeemIdempotencyKey pins the derivation: it is a contract between
// gateway versions (two versions behind one load balancer must agree).
func TestRedeemIdempotencyKey(t *testing.T) {
	k := gateway.RedeemIdempotencyKey("relay_abc", "cGFzcw")
	if k != "3c38f3913efdb79640898d457f978337d9cbca46355255c78c855cea64686dc6" {
		// Recompute by hand before changing the pinned value.
		t.Fatalf("derivation changed: %s", k)
	}
	if gateway.RedeemIdempotencyKey("ab", "c") == gateway.RedeemIdempotencyKey("a", "bc") {
		t.Fatal("the encoding of the pair is ambiguous")
	}
	if gateway.RedeemIdempotencyKey("relay_abc", "cGFzcw") != k {
		t.Fatal("not deterministic")
	}
}

func TestUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	e := newEnv(t, func(_ *env, o *gateway.Options) { o.Upstream = closed })
	for _, c := range []struct {
		path, body string
		header     map[string]string
	}{
		{"/relays", `{"claim-type":"x"}`, nil},
		{"/relays/privacy-passes", `{"claim-type":"x"}`, bearer("k")},
		{"/relays/relay_x/redeem", `{"privacy-pass-token":"cGFzcw"}`, secretHeader("s")},
	} {
		before := len(e.waited())
		r := e.post(t, c.path, c.header, c.body)
		if r.status != http.StatusBadGateway || r.title(t) != gateway.TitleNetworkError {
			t.Fatalf("%s: HTTP %d %s", c.path, r.status, r.body)
		}
		if w := e.waited()[before:]; !slices.Equal(w, gateway.DefaultBackoff()) {
			t.Fatalf("%s: waits %v, want three retries", c.path, w)
		}
	}
	if got := counter(t, e.reg, "ppredeem_gateway_upstream_retries_total", "call", "generate_claim", "reason", "network_error"); got != 3 {
		t.Fatalf("retries counted %v", got)
	}
	r := do(t, http.MethodGet, e.url+"/readyz", nil, "")
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the upstream down: HTTP %d", r.status)
	}
}

// TestUpstreamSlow: an upstream that never answers ends in 504 at the
// request deadline, and the upstream request is cancelled.
func TestUpstreamSlow(t *testing.T) {
	cancelled := make(chan struct{}, 16)
	e := newEnv(t, func(e *env, o *gateway.Options) { o.RequestTimeout = 300 * time.Millisecond })
	e.p.intercept = func(_ http.ResponseWriter, r *http.Request, _ string, _ int) bool {
		<-r.Context().Done()
		cancelled <- struct{}{}
		return true
	}
	start := time.Now()
	r := e.post(t, "/relays", nil, `{"claim-type":"`+claimType+`"}`)
	if r.status != http.StatusGatewayTimeout || r.title(t) != gateway.TitleTimeout {
		t.Fatalf("HTTP %d %s", r.status, r.body)
	}
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
		t.Fatalf("answered before the deadline: %s", elapsed)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
	if e.p.count(routeRelays) != 1 || len(e.waited()) != 0 {
		t.Fatalf("a timed-out attempt must not be retried: %d attempts", e.p.count(routeRelays))
	}
}

// TestCallerDeadline: when the platform gives up, the upstream call is
// cancelled at once.
func TestCallerDeadline(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	arrived := make(chan struct{}, 1)
	e := newEnv(t)
	e.p.intercept = func(_ http.ResponseWriter, r *http.Request, _ string, _ int) bool {
		arrived <- struct{}{}
		<-r.Context().Done()
		cancelled <- struct{}{}
		return true
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/relays", strings.NewReader(`{"claim-type":"x"}`))
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-arrived
	cancel()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request outlived the caller")
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v", err)
	}
}

// TestRetryStopsAtDeadline: a retry whose wait would end past the deadline
// is not made; the last answer stands. The clock is the injected one: each
// wait moves it on by its length.
func TestRetryStopsAtDeadline(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	e := newEnv(t, func(e *env, o *gateway.Options) {
		o.RequestTimeout = 10 * time.Second
		o.Backoff = []time.Duration{5 * time.Second, 20 * time.Second}
		o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		o.Sleep = func(_ context.Context, d time.Duration) error {
			mu.Lock()
			now = now.Add(d)
			mu.Unlock()
			e.mu.Lock()
			e.waits = append(e.waits, d)
			e.mu.Unlock()
			return nil
		}
	})
	e.p.intercept = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) bool {
		fail(w, http.StatusServiceUnavailable, "Service unavailable")
		return true
	}
	r := e.post(t, "/relays", nil, `{"claim-type":"x"}`)
	if r.status != http.StatusServiceUnavailable || r.title(t) != "Service unavailable" || e.p.count(routeRelays) != 2 {
		t.Fatalf("HTTP %d %s after %d attempts", r.status, r.body, e.p.count(routeRelays))
	}
	if w := e.waited(); !slices.Equal(w, []time.Duration{5 * time.Second}) {
		t.Fatalf("waits %v: the 20s wait ends past the 10s deadline", w)
	}
}

// TestFlapping: transient failures on every call are retried with the
// backoff of the contract, and the request succeeds.
func TestFlapping(t *testing.T) {
	e := newEnv(t, withoutKeepAlive)
	flaps := map[string][]int{
		routeRelays:    {http.StatusServiceUnavailable, http.StatusBadGateway},
		routeChallenge: {http.StatusTooManyRequests},
		routeSign:      {http.StatusInternalServerError, http.StatusGatewayTimeout, 0},
		routeClaim:     {http.StatusServiceUnavailable},
	}
	e.p.intercept = func(w http.ResponseWriter, _ *http.Request, route string, n int) bool {
		f := flaps[route]
		if n > len(f) {
			return false
		}
		if f[n-1] == 0 { // a connection that drops without an answer
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
			return true
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(f[n-1])
		w.Write([]byte("<html>proxy error</html>"))
		return true
	}
	token, secret, _ := e.relay(t, `{"claim-type":"`+claimType+`"}`)
	e.p.report(token, "passed")
	pass := e.pass(t)
	if r := e.redeem(t, token, secret, pass); r.status != http.StatusOK {
		t.Fatalf("HTTP %d %s", r.status, r.body)
	}
	ms := func(d ...int) []time.Duration {
		var out []time.Duration
		for _, x := range d {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	want := slices.Concat(ms(100, 200), ms(100), ms(100, 200, 400), ms(100))
	if w := e.waited(); !slices.Equal(w, want) {
		t.Fatalf("waits %v, want %v", w, want)
	}
	signs := e.p.requests(routeSign)
	for _, s := range signs {
		if s.header.Get("Idempotency-Key") != signs[0].header.Get("Idempotency-Key") || string(s.body) != string(signs[0].body) {
			t.Fatal("a retried signing request must repeat its Idempotency-Key and body")
		}
	}
}

// TestClaimNotReady: on redeem, 403 "Claim not ready" is retried, and
// becomes success once the verifier reports.
func TestClaimNotReady(t *testing.T) {
	var token string
	e := newEnv(t, func(e *env, o *gateway.Options) {
		o.Sleep = func(ctx context.Context, d time.Duration) error {
			e.mu.Lock()
			e.waits = append(e.waits, d)
			n := len(e.waits)
			e.mu.Unlock()
			if n == 2 {
				e.p.report(token, "passed") // the verifier reports during the second wait
			}
			return nil
		}
	})
	var secret string
	token, secret, _ = e.relay(t, `{"claim-type":"`+claimType+`"}`)
	pass := e.pass(t)
	r := e.redeem(t, token, secret, pass)
	if r.status != http.StatusOK || r.members(t)["token-consumed"] != true {
		t.Fatalf("HTTP %d %s", r.status, r.body)
	}
	if e.p.count(routeClaim) != 3 {
		t.Fatalf("%d attempts, want 3 (403, 403, 200)", e.p.count(routeClaim))
	}

	// Never reported: after three retries the 403 passes through.
	token2, secret2, _ := e.relay(t, `{"claim-type":"`+claimType+`"}`)
	r = e.redeem(t, token2, secret2, e.pass(t))
	if r.status != http.StatusForbidden || r.title(t) != "Claim not ready" {
		t.Fatalf("HTTP %d %s", r.status, r.body)
	}
	if e.p.count(routeClaim) != 3+4 {
		t.Fatalf("%d attempts in all", e.p.count(routeClaim))
	}
}

// TestNoRetry: definite answers are passed through at once, and 403 is only
// retried on redeem.
func TestNoRetry(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 409, 422} {
		e := newEnv(t)
		e.p.intercept = func(w http.ResponseWriter, _ *http.Request, route string, _ int) bool {
			if route != routeSign {
				return false
			}
			fail(w, status, "Refused "+http.StatusText(status))
			return true
		}
		r := e.post(t, "/relays/privacy-passes", bearer(testAPIKey), `{"claim-type":"`+claimType+`"}`)
		if r.status != status || r.title(t) != "Refused "+http.StatusText(status) {
			t.Fatalf("HTTP %d %s", r.status, r.body)
		}
		if e.p.count(routeSign) != 1 || len(e.waited()) != 0 {
			t.Fatalf("%d: %d attempts", status, e.p.count(routeSign))
		}
	}
}

// TestUpstreamErrorsPassThrough: errors-shaped answers keep their status
// and body; anything else becomes 502 "Bad gateway" without upstream text.
func TestUpstreamErrorsPassThrough(t *testing.T) {
	e := newEnv(t)
	r := e.post(t, "/relays", nil, `{"claim-type":"no_such_claim"}`)
	if r.status != http.StatusUnprocessableEntity || r.title(t) != "Unknown claim type" {
		t.Fatalf("HTTP %d %s", r.status, r.body)
	}
	r = e.post(t, "/relays/privacy-passes", bearer("pk_unknown"), `{"claim-type":"`+claimType+`"}`)
	if r.status != http.StatusUnauthorized || r.title(t) != "Unauthorized" {
		t.Fatalf("HTTP %d %s", r.status, r.body)
	}
	token, _, _ := e.relay(t, `{"claim-type":"`+claimType+`"}`)
	r = e.redeem(t, token, "wrong-secret", "cGFzcw")
	if r.status != http.StatusNotFound || r.title(t) != "Not found" {
		t.Fatalf("HTTP %d %s", r.status, r.body)
	}
	// The body goes through byte for byte, details and extra members too.
	verbatim := `{"errors":[{"title":"Claim type mismatch","details":"d","code":7}],"x":1}`
	cases := []struct {
		name   string
		answer func(w http.ResponseWriter)
		status int
		title  string
	}{
		{"errors shape", func(w http.ResponseWriter) { w.WriteHeader(422); w.Write([]byte(verbatim)) }, 422, "Claim type mismatch"},
		{"html error", func(w http.ResponseWriter) { w.WriteHeader(500); w.Write([]byte("<h1>secret stack trace</h1>")) }, 502, gateway.TitleBadGateway},
		{"empty errors", func(w http.ResponseWriter) { w.WriteHeader(400); w.Write([]byte(`{"errors":[]}`)) }, 502, gateway.TitleBadGateway},
		{"title not a string", func(w http.ResponseWriter) { w.WriteHeader(400); w.Write([]byte(`{"errors":[{"title":1}]}`)) }, 502, gateway.TitleBadGateway},
		{"redirect", func(w http.ResponseWriter) { w.Header().Set("Location", "/elsewhere"); w.WriteHeader(302) }, 502, gateway.TitleBadGateway},
		{"200 not JSON", func(w http.ResponseWriter) { w.Write([]byte("ok")) }, 502, gateway.TitleBadGateway},
		{"200 missing member", func(w http.ResponseWriter) { w.Write([]byte(`{"claim-payload":"p"}`)) }, 502, gateway.TitleBadGateway},
		{"200 wrong type", func(w http.ResponseWriter) { w.Write([]byte(`{"claim-payload":1,"token-consumed":true}`)) }, 502, gateway.TitleBadGateway},
		{"200 too large", func(w http.ResponseWriter) { w.Write(bytes.Repeat([]byte(" "), 1<<20+1)) }, 502, gateway.TitleBadGateway},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(_ *env, o *gateway.Options) { o.Backoff = []time.Duration{} })
			e.p.intercept = func(w http.ResponseWriter, _ *http.Request, route string, _ int) bool {
				if route != routeClaim {
					return false
				}
				c.answer(w)
				return true
			}
			r := e.redeem(t, "relay_x", "s", "cGFzcw")
			if r.status != c.status || r.title(t) != c.title {
				t.Fatalf("HTTP %d %s", r.status, r.body)
			}
			if c.name == "errors shape" && string(r.body) != verbatim {
				t.Fatalf("body changed: %s", r.body)
			}
			if strings.Contains(string(r.body), "secret stack") || strings.Contains(string(r.body), "proxy") {
				t.Fatalf("upstream text passed on: %s", r.body)
			}
		})
	}
}

// TestIssuanceRefusesBadProvider: a token-key-id that is not the SHA-256 of
// the token-key is refused before any signature is asked for (nothing is
// billed); a signature that does not verify is refused.
func TestIssuanceRefusesBadProvider(t *testing.T) {
	cases := []struct {
		name  string
		setup func(p *provider)
		title string
		signs int
	}{
		{"token-key-id of another key", func(p *provider) {
			p.tamperChallenge = func(a map[string]string) {
				der, _ := x509.MarshalPKIXPublicKey(&otherKey.PublicKey)
				sum := sha256.Sum256(der)
				a["token-key-id"] = hex.EncodeToString(sum[:])
			}
		}, gateway.TitleTokenKeyMismatch, 0},
		{"token-key of another key", func(p *provider) {
			p.tamperChallenge = func(a map[string]string) {
				der, _ := x509.MarshalPKIXPublicKey(&otherKey.PublicKey)
				a["token-key"] = base64.RawURLEncoding.EncodeToString(der)
			}
		}, gateway.TitleTokenKeyMismatch, 0},
		{"token-key not base64url", func(p *provider) {
			p.tamperChallenge = func(a map[string]string) { a["token-key"] = "not base64!" }
		}, gateway.TitleInvalidTokenKey, 0},
		{"challenge of another token type", func(p *provider) {
			p.tamperChallenge = func(a map[string]string) {
				a["challenge"] = base64.RawURLEncoding.EncodeToString([]byte(`{"token_type":1,"mac":"m"}`))
			}
		}, gateway.TitleInvalidChallenge, 0},
		{"challenge missing", func(p *provider) {
			p.tamperChallenge = func(a map[string]string) { delete(a, "challenge") }
		}, gateway.TitleBadGateway, 0},
		{"signed with another key", func(p *provider) { p.signWith = otherKey }, gateway.TitleInvalidBlindSignature, 1},
		{"blind-sig not base64url", func(p *provider) {
			p.intercept = func(w http.ResponseWriter, _ *http.Request, route string, _ int) bool {
				if route != routeSign {
					return false
				}
				reply(w, map[string]string{"blind-sig": "!!"})
				return true
			}
		}, gateway.TitleBadGateway, 1},
		{"blind-sig truncated", func(p *provider) {
			p.intercept = func(w http.ResponseWriter, _ *http.Request, route string, _ int) bool {
				if route != routeSign {
					return false
				}
				reply(w, map[string]string{"blind-sig": base64.RawURLEncoding.EncodeToString(make([]byte, 100))})
				return true
			}
		}, gateway.TitleInvalidBlindSignature, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			c.setup(e.p)
			r := e.post(t, "/relays/privacy-passes", bearer(testAPIKey), `{"claim-type":"`+claimType+`"}`)
			if r.status != http.StatusBadGateway || r.title(t) != c.title {
				t.Fatalf("HTTP %d %s", r.status, r.body)
			}
			if e.p.count(routeSign) != c.signs {
				t.Fatalf("%d signing requests, want %d", e.p.count(routeSign), c.signs)
			}
		})
	}
}

// TestMalformedInput: every refusal of the gateway's own, with its status
// and title, and no upstream call.
func TestMalformedInput(t *testing.T) {
	e := newEnv(t, func(_ *env, o *gateway.Options) { o.MaxBodyBytes = 1024 })
	relay := func(body string) (string, string, map[string]string) { return "/relays", body, nil }
	issue := func(body string) (string, string, map[string]string) {
		return "/relays/privacy-passes", body, bearer(testAPIKey)
	}
	redeem := func(body string) (string, string, map[string]string) {
		return "/relays/relay_x/redeem", body, secretHeader("s")
	}
	type req = func(string) (string, string, map[string]string)
	cases := []struct {
		name   string
		req    req
		body   string
		header map[string]string // added to the request's own
		method string
		path   string // replaces the request's path
		status int
		title  string
	}{
		{name: "relays: empty body", req: relay, body: "", status: 400, title: gateway.TitleMalformedBody},
		{name: "relays: not JSON", req: relay, body: "{", status: 400, title: gateway.TitleMalformedBody},
		{name: "relays: array", req: relay, body: `[{"claim-type":"x"}]`, status: 400, title: gateway.TitleMalformedBody},
		{name: "relays: null", req: relay, body: `null`, status: 400, title: gateway.TitleMalformedBody},
		{name: "relays: string", req: relay, body: `"x"`, status: 400, title: gateway.TitleMalformedBody},
		{name: "relays: trailing data", req: relay, body: `{"claim-type":"x"} {}`, status: 400, title: gateway.TitleMalformedBody},
		{name: "relays: no claim type", req: relay, body: `{}`, status: 400, title: gateway.TitleMissingClaimType},
		{name: "relays: empty claim type", req: relay, body: `{"claim-type":""}`, status: 400, title: gateway.TitleMissingClaimType},
		{name: "relays: null claim type", req: relay, body: `{"claim-type":null}`, status: 400, title: gateway.TitleMissingClaimType},
		{name: "relays: claim type number", req: relay, body: `{"claim-type":1}`, status: 400, title: gateway.TitleMalformedBody},
		{name: "relays: spellings differ", req: relay, body: `{"claim-type":"a","claimType":"b"}`, status: 400, title: gateway.TitleMalformedBody},
		{name: "relays: key not a string", req: relay, body: `{"claim-type":"x","encryption-key-pem":7}`, status: 400, title: gateway.TitleMalformedBody},
		{name: "relays: sandbox not a bool", req: relay, body: `{"claim-type":"x","sandbox":"yes"}`, status: 400, title: gateway.TitleMalformedBody},
		{name: "relays: text/plain", req: relay, body: `{"claim-type":"x"}`, header: map[string]string{"Content-Type": "text/plain"}, status: 400, title: gateway.TitleUnsupportedContentType},
		{name: "relays: form", req: relay, body: `{"claim-type":"x"}`, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, status: 400, title: gateway.TitleUnsupportedContentType},
		{name: "relays: bad media type", req: relay, body: `{"claim-type":"x"}`, header: map[string]string{"Content-Type": "application/json; ="}, status: 400, title: gateway.TitleUnsupportedContentType},
		{name: "relays: too large", req: relay, body: `{"claim-type":"x","pad":"` + strings.Repeat("a", 1024) + `"}`, status: 400, title: gateway.TitleBodyTooLarge},
		{name: "issue: no Authorization", req: issue, body: `{"claim-type":"x"}`, header: map[string]string{"Authorization": ""}, status: 401, title: gateway.TitleUnauthorized},
		{name: "issue: Basic", req: issue, body: `{"claim-type":"x"}`, header: map[string]string{"Authorization": "Basic dXNlcjpwdw=="}, status: 401, title: gateway.TitleUnauthorized},
		{name: "issue: empty key", req: issue, body: `{"claim-type":"x"}`, header: map[string]string{"Authorization": "Bearer "}, status: 401, title: gateway.TitleUnauthorized},
		{name: "issue: key too long", req: issue, body: `{"claim-type":"x"}`, header: map[string]string{"Authorization": "Bearer " + strings.Repeat("k", 513)}, status: 401, title: gateway.TitleUnauthorized},
		{name: "issue: no claim type", req: issue, body: `{"claimType":""}`, status: 400, title: gateway.TitleMissingClaimType},
		{name: "issue: not JSON", req: issue, body: `claim-type=x`, status: 400, title: gateway.TitleMalformedBody},
		{name: "issue: too large", req: issue, body: strings.Repeat(" ", 1025) + `{"claim-type":"x"}`, status: 400, title: gateway.TitleBodyTooLarge},
		{name: "issue: Bearer without a space", req: issue, body: `{"claim-type":"x"}`, header: map[string]string{"Authorization": "Bearer"}, status: 401, title: gateway.TitleUnauthorized},
		{name: "issue: key with a control character", req: issue, body: `{"claim-type":"x"}`, header: map[string]string{"Authorization": "Bearer a\x01b"}, status: 401, title: gateway.TitleUnauthorized},
		{name: "issue: key not ASCII", req: issue, body: `{"claim-type":"x"}`, header: map[string]string{"Authorization": "Bearer clé"}, status: 401, title: gateway.TitleUnauthorized},
		{name: "issue: text/plain", req: issue, body: `{"claim-type":"x"}`, header: map[string]string{"Content-Type": "text/plain"}, status: 400, title: gateway.TitleUnsupportedContentType},
		{name: "issue: spellings differ", req: issue, body: `{"claim-type":"a","claimType":"b"}`, status: 400, title: gateway.TitleMalformedBody},
		{name: "issue: claim type a number", req: issue, body: `{"claim-type":18}`, status: 400, title: gateway.TitleMalformedBody},
		{name: "issue: array", req: issue, body: `[]`, status: 400, title: gateway.TitleMalformedBody},
		{name: "redeem: no secret", req: redeem, body: `{"privacy-pass-token":"cGFzcw"}`, header: map[string]string{"Persona-Relay-Secret": ""}, status: 400, title: gateway.TitleMissingRelaySecret},
		{name: "redeem: secret with a space", req: redeem, body: `{"privacy-pass-token":"cGFzcw"}`, header: map[string]string{"Persona-Relay-Secret": "a b"}, status: 400, title: gateway.TitleInvalidRelaySecret},
		{name: "redeem: secret too long", req: redeem, body: `{"privacy-pass-token":"cGFzcw"}`, header: map[string]string{"Persona-Relay-Secret": strings.Repeat("s", 257)}, status: 400, title: gateway.TitleInvalidRelaySecret},
		{name: "redeem: no pass", req: redeem, body: `{}`, status: 400, title: gateway.TitleMissingPass},
		{name: "redeem: empty pass", req: redeem, body: `{"privacy-pass-token":""}`, status: 400, title: gateway.TitleMissingPass},
		{name: "redeem: pass not a string", req: redeem, body: `{"privacy-pass-token":["a"]}`, status: 400, title: gateway.TitleMalformedBody},
		{name: "redeem: pass std base64", req: redeem, body: `{"privacy-pass-token":"a+b/"}`, status: 400, title: gateway.TitleInvalidPass},
		{name: "redeem: pass padded", req: redeem, body: `{"privacy-pass-token":"cGFzcw=="}`, status: 400, title: gateway.TitleInvalidPass},
		{name: "redeem: pass with a header break", req: redeem, body: `{"privacy-pass-token":"a\r\nX-Evil: 1"}`, status: 400, title: gateway.TitleInvalidPass},
		{name: "redeem: pass with a dot", req: redeem, body: `{"privacy-pass-token":"a.b"}`, status: 400, title: gateway.TitleInvalidPass},
		{name: "redeem: pass spellings differ", req: redeem, body: `{"privacy-pass-token":"cGFzcw","privacyPassToken":"b3RoZXI"}`, status: 400, title: gateway.TitleMalformedBody},
		{name: "redeem: null pass", req: redeem, body: `{"privacy-pass-token":null}`, status: 400, title: gateway.TitleMissingPass},
		{name: "redeem: not JSON", req: redeem, body: `privacy-pass-token=cGFzcw`, status: 400, title: gateway.TitleMalformedBody},
		{name: "redeem: empty body", req: redeem, body: ``, status: 400, title: gateway.TitleMalformedBody},
		{name: "redeem: text/plain", req: redeem, body: `{"privacy-pass-token":"cGFzcw"}`, header: map[string]string{"Content-Type": "text/plain"}, status: 400, title: gateway.TitleUnsupportedContentType},
		{name: "redeem: too large", req: redeem, body: `{"privacy-pass-token":"cGFzcw","pad":"` + strings.Repeat("a", 1024) + `"}`, status: 400, title: gateway.TitleBodyTooLarge},
		{name: "redeem: secret not ASCII", req: redeem, body: `{"privacy-pass-token":"cGFzcw"}`, header: map[string]string{"Persona-Relay-Secret": "sécret"}, status: 400, title: gateway.TitleInvalidRelaySecret},
		{name: "redeem: secret with a control character", req: redeem, body: `{"privacy-pass-token":"cGFzcw"}`, header: map[string]string{"Persona-Relay-Secret": "a\x7fb"}, status: 400, title: gateway.TitleInvalidRelaySecret},
		{name: "redeem: relay token not ASCII", req: redeem, path: "/relays/relay_%C3%A9/redeem", body: `{"privacy-pass-token":"cGFzcw"}`, status: 400, title: gateway.TitleInvalidRelayToken},
		{name: "redeem: below redeem", req: redeem, path: "/relays/relay_x/redeem/x", body: `{"privacy-pass-token":"cGFzcw"}`, status: 404, title: gateway.TitleNotFound},
		{name: "redeem: relay token with a dot", req: redeem, path: "/relays/relay.x/redeem", body: `{"privacy-pass-token":"cGFzcw"}`, status: 400, title: gateway.TitleInvalidRelayToken},
		{name: "redeem: relay token with an escaped slash", req: redeem, path: "/relays/a%2Fb/redeem", body: `{"privacy-pass-token":"cGFzcw"}`, status: 400, title: gateway.TitleInvalidRelayToken},
		{name: "redeem: relay token with a query", req: redeem, path: "/relays/a%3Fb/redeem", body: `{"privacy-pass-token":"cGFzcw"}`, status: 400, title: gateway.TitleInvalidRelayToken},
		{name: "redeem: relay token too long", req: redeem, path: "/relays/" + strings.Repeat("r", 257) + "/redeem", body: `{"privacy-pass-token":"cGFzcw"}`, status: 400, title: gateway.TitleInvalidRelayToken},
		{name: "redeem: empty relay token", req: redeem, path: "/relays//redeem", body: `{}`, status: 404, title: gateway.TitleNotFound},
		{name: "redeem: dot segments", req: redeem, path: "/relays/../relays/x/redeem", body: `{}`, status: 404, title: gateway.TitleNotFound},
		{name: "unknown path", req: relay, path: "/api/privacy/v1/relays", body: `{}`, status: 404, title: gateway.TitleNotFound},
		{name: "trailing slash", req: relay, path: "/relays/", body: `{}`, status: 404, title: gateway.TitleNotFound},
		{name: "GET /relays", req: relay, method: http.MethodGet, status: 405, title: gateway.TitleMethodNotAllowed},
		{name: "PUT redeem", req: redeem, method: http.MethodPut, status: 405, title: gateway.TitleMethodNotAllowed},
		{name: "POST /healthz", req: relay, path: "/healthz", status: 405, title: gateway.TitleMethodNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, body, header := c.req(c.body)
			if c.path != "" {
				path = c.path
			}
			method := http.MethodPost
			if c.method != "" {
				method = c.method
			}
			h := map[string]string{}
			for k, v := range header {
				h[k] = v
			}
			for k, v := range c.header {
				h[k] = v
			}
			before := e.p.total()
			r := serveDirect(e.h, method, path, h, body)
			if r.status != c.status || r.title(t) != c.title {
				t.Fatalf("HTTP %d %s, want %d %q", r.status, r.body, c.status, c.title)
			}
			if e.p.total() != before {
				t.Fatal("a refused request reached the upstream")
			}
			switch r.status {
			case 401:
				if r.header.Get("WWW-Authenticate") != "Bearer" {
					t.Error("401 without WWW-Authenticate: Bearer")
				}
			case 405:
				if r.header.Get("Allow") == "" {
					t.Error("405 without Allow")
				}
			}
		})
	}
}

// serveDirect runs one request through the handler without a network, so
// that headers net/http's client refuses to send can be tested too.
func serveDirect(h http.Handler, method, path string, header map[string]string, body string) response {
	req := httptest.NewRequest(method, "http://gateway.test/", strings.NewReader(body))
	req.URL.RawPath = ""
	if p, err := urlPathUnescape(path); err == nil {
		req.URL.Path = p
		if p != path {
			req.URL.RawPath = path
		}
	}
	req.RequestURI = path
	setHeaders(req, header)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

func urlPathUnescape(p string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://x"+p, nil)
	if err != nil {
		return "", err
	}
	return req.URL.Path, nil
}

// TestNoSecretsInLogs runs successes and failures at debug level and looks
// for every secret in the logs.
func TestNoSecretsInLogs(t *testing.T) {
	e := newEnv(t)
	token, secret, access := e.relay(t, `{"claim-type":"`+claimType+`"}`)
	e.p.report(token, "passed")
	pass := e.pass(t)
	r := e.redeem(t, token, secret, pass)
	payload, _ := r.members(t)["claim-payload"].(string)
	e.redeem(t, token, "wrong-"+secret, pass)                           // upstream 404
	e.post(t, "/relays/privacy-passes", bearer("pk_unknown_key"), `{}`) // refused
	e.post(t, "/relays/privacy-passes", bearer("pk_unknown_key"), `{"claim-type":"`+claimType+`"}`)
	e.p.signWith = otherKey
	e.pass2(t)
	e.p.intercept = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) bool {
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
		return true
	}
	e.redeem(t, token, secret, pass) // network errors, logged at warn with their text

	logs := e.logs.String()
	if strings.Count(logs, `"msg":"gateway request"`) < 7 || !strings.Contains(logs, `"level":"WARN"`) {
		t.Fatalf("expected a line per request, warnings included:\n%s", logs)
	}
	for name, s := range map[string]string{
		"API key": testAPIKey, "unknown API key": "pk_unknown_key", "relay secret": secret, "pass": pass,
		"access token": access, "claim payload": payload, "relay token": token,
	} {
		if s == "" {
			t.Fatalf("%s is empty", name)
		}
		if strings.Contains(logs, s) {
			t.Errorf("the logs hold the %s:\n%s", name, logs)
		}
	}
}

// pass2 asks for a pass that the provider signs badly (logged at warn).
func (e *env) pass2(t *testing.T) {
	t.Helper()
	r := e.post(t, "/relays/privacy-passes", bearer(testAPIKey), `{"claim-type":"`+claimType+`"}`)
	if r.status != http.StatusBadGateway {
		t.Fatalf("HTTP %d %s", r.status, r.body)
	}
}

func TestProbes(t *testing.T) {
	var now time.Time
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	now = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	e := newEnv(t, func(_ *env, o *gateway.Options) { o.Now = clock })
	get := func(path string) response { return do(t, http.MethodGet, e.url+path, nil, "") }
	if r := get("/healthz"); r.status != 200 || string(r.body) != `{"status":"ok"}`+"\n" {
		t.Fatalf("/healthz: %d %s", r.status, r.body)
	}
	if r := do(t, http.MethodHead, e.url+"/readyz", nil, ""); r.status != 200 {
		t.Fatalf("HEAD /readyz: %d", r.status)
	}
	for range 5 {
		if r := get("/readyz"); r.status != 200 || string(r.body) != `{"status":"ready"}`+"\n" {
			t.Fatalf("/readyz: %d %s", r.status, r.body)
		}
	}
	if n := e.p.count(routeHealth); n != 1 {
		t.Fatalf("%d upstream checks within a second, want 1", n)
	}
	e.p.intercept = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	}
	if r := get("/readyz"); r.status != 200 {
		t.Fatal("the cached answer must stand for a second")
	}
	advance(time.Second)
	if r := get("/readyz"); r.status != 503 || string(r.body) != `{"status":"upstream unreachable"}`+"\n" {
		t.Fatalf("/readyz with the upstream failing: %d %s", r.status, r.body)
	}
	e.p.intercept = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) bool {
		w.WriteHeader(http.StatusNotFound) // a provider without /healthz still answers
		return true
	}
	advance(time.Second)
	if r := get("/readyz"); r.status != 200 {
		t.Fatalf("/readyz: %d", r.status)
	}
	e.h.StartDraining()
	if r := get("/readyz"); r.status != 503 || string(r.body) != `{"status":"shutting down"}`+"\n" {
		t.Fatalf("/readyz while draining: %d %s", r.status, r.body)
	}
	if r := get("/healthz"); r.status != 200 {
		t.Fatal("/healthz must stay up while draining")
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.p.intercept = func(w http.ResponseWriter, _ *http.Request, route string, n int) bool {
		if route == routeChallenge && n == 1 {
			fail(w, http.StatusServiceUnavailable, "Service unavailable")
			return true
		}
		return false
	}
	token, secret, _ := e.relay(t, `{"claim-type":"`+claimType+`"}`)
	e.p.report(token, "passed")
	e.redeem(t, token, secret, e.pass(t))
	e.post(t, "/relays", nil, `{}`)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"ppredeem_gateway_requests_total", []string{"endpoint", "relays", "code", "200"}, 1},
		{"ppredeem_gateway_requests_total", []string{"endpoint", "relays", "code", "400"}, 1},
		{"ppredeem_gateway_requests_total", []string{"endpoint", "privacy_passes", "code", "200"}, 1},
		{"ppredeem_gateway_requests_total", []string{"endpoint", "redeem", "code", "200"}, 1},
		{"ppredeem_gateway_upstream_requests_total", []string{"call", "challenge", "result", "503"}, 1},
		{"ppredeem_gateway_upstream_requests_total", []string{"call", "challenge", "result", "200"}, 1},
		{"ppredeem_gateway_upstream_retries_total", []string{"call", "challenge", "reason", "503"}, 1},
	} {
		if got := counter(t, e.reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	observed := map[string]uint64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			observed[f.GetName()] += m.GetHistogram().GetSampleCount()
		}
	}
	// 4 requests; relay creation, challenge (twice), sign, generate-claim.
	if observed["ppredeem_gateway_request_duration_seconds"] != 4 || observed["ppredeem_gateway_upstream_request_duration_seconds"] != 5 {
		t.Fatalf("latency histograms observed %v", observed)
	}
}

// counter is the value of one labelled counter series in reg (0 if absent).
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestNewRefusesBadOptions(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "http://u:p@host", "http://host/?q=1", "http://host/#f"} {
		if _, err := gateway.New(gateway.Options{Upstream: u}); err == nil {
			t.Errorf("upstream %q accepted", u)
		}
	}
	if _, err := gateway.New(gateway.Options{Upstream: "http://h", MaxBodyBytes: -1}); err == nil {
		t.Error("negative MaxBodyBytes accepted")
	}
	reg := prometheus.NewRegistry()
	if _, err := gateway.New(gateway.Options{Upstream: "http://h", Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := gateway.New(gateway.Options{Upstream: "http://h", Registerer: reg}); err == nil {
		t.Error("registering the metrics twice must fail")
	}
}

// TestUpstreamBasePath: a base URL with a path (and a trailing slash)
// prefixes every upstream path.
func TestUpstreamBasePath(t *testing.T) {
	p := newProvider(t)
	prefixed := httptest.NewServer(http.StripPrefix("/provider", p.srv.Config.Handler))
	defer prefixed.Close()
	h, err := gateway.New(gateway.Options{Upstream: prefixed.URL + "/provider/"})
	if err != nil {
		t.Fatal(err)
	}
	r := serveDirect(h, http.MethodPost, "/relays", nil, `{"claim-type":"`+claimType+`"}`)
	if r.status != http.StatusOK || p.count(routeRelays) != 1 {
		t.Fatalf("HTTP %d %s", r.status, r.body)
	}
}

// TestBodyBudget: with no room for the body in the listener's budget, a
// request is refused at once with 503 "Service unavailable" and
// Retry-After, without reading it or calling the upstream; once room is
// back the same request goes through.
func TestBodyBudget(t *testing.T) {
	bodies := httpbody.NewBudget(64 << 10)
	e := newEnv(t, func(_ *env, o *gateway.Options) { o.MaxBodyBytes, o.Bodies = 1024, bodies })
	full, err := bodies.Read(httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat(" ", 64<<10))), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	r := serveDirect(e.h, http.MethodPost, "/relays", nil, `{"claim-type":"`+claimType+`"}`)
	if r.status != 503 || r.title(t) != gateway.TitleServiceUnavailable || r.header.Get("Retry-After") != "1" || e.p.total() != 0 {
		t.Fatalf("no room: HTTP %d %s Retry-After %q, %d upstream calls", r.status, r.body, r.header.Get("Retry-After"), e.p.total())
	}
	full.Release()
	if r := serveDirect(e.h, http.MethodPost, "/relays", nil, `{"claim-type":"`+claimType+`"}`); r.status != 200 {
		t.Fatalf("once there is room: HTTP %d %s", r.status, r.body)
	}
	if bodies.InUse() != 0 {
		t.Fatalf("%d bytes still charged", bodies.InUse())
	}
	// A body limit the budget could never take is refused at once.
	if _, err := gateway.New(gateway.Options{Upstream: "http://h", MaxBodyBytes: 1 << 20, Bodies: httpbody.NewBudget(1 << 20)}); err == nil {
		t.Fatal("MaxBodyBytes over Bodies.Largest() accepted")
	}
}
