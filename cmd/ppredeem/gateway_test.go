package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/rpc/gateway"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
)

// claimUpstream is a provider stand-in that answers generate-claim the way
// the provider API replays a redeemed relay, and records the requests it
// gets. hold, when set, makes a request wait until it is closed, after
// reporting the request on arrived.
type claimUpstream struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    []string // Idempotency-Key of each generate-claim request
	hold    chan struct{}
	arrived chan struct{}
}

const upstreamClaim = `{"claim-payload":"{\"claim_type\":\"age_over18_united_kingdom\",\"claim_result\":\"passed\"}","token-consumed":true}`

func newClaimUpstream(t *testing.T) *claimUpstream {
	u := &claimUpstream{arrived: make(chan struct{}, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"status":"ok"}`) })
	mux.HandleFunc("POST /api/privacy/v1/relays/{token}/generate-claim", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Persona-Relay-Secret") != "relay-secret-1" || !strings.HasPrefix(r.Header.Get("Authorization"), "PrivateToken token=") {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"errors":[{"title":"Not found"}]}`)
			return
		}
		u.mu.Lock()
		u.keys = append(u.keys, r.Header.Get("Idempotency-Key"))
		hold := u.hold
		u.mu.Unlock()
		if hold != nil {
			u.arrived <- struct{}{}
			<-hold
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, upstreamClaim)
	})
	u.srv = httptest.NewServer(mux)
	t.Cleanup(u.srv.Close)
	return u
}

func (u *claimUpstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.keys...)
}

// startGatewayProcess runs `ppredeem gateway` with args and extra
// environment, and waits for its "serving" log line.
func startGatewayProcess(t *testing.T, args []string, env ...string) *process {
	t.Helper()
	return startBinary(t, "ppredeem gateway serving", append([]string{"gateway", "--log-format", "json"}, args...), env...)
}

func redeemThrough(t *testing.T, base, relayToken, pass string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/relays/"+relayToken+"/redeem", strings.NewReader(`{"privacy-pass-token":"`+pass+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Persona-Relay-Secret", "relay-secret-1")
	resp, err := rpctest.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("redeem through %s: %v", base, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// TestGatewayTwoProcesses: the same redeem through two gateway processes
// (one configured by flags, one by environment variables) reaches the
// provider with the same Idempotency-Key; SIGTERM lets an in-flight redeem
// finish and exits 0.
func TestGatewayTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	up := newClaimUpstream(t)
	a := startGatewayProcess(t, []string{"--listen", "127.0.0.1:0", "--upstream", up.srv.URL})
	b := startGatewayProcess(t, nil, "PPREDEEM_GATEWAY_LISTEN=127.0.0.1:0", "PPREDEEM_GATEWAY_UPSTREAM="+up.srv.URL)
	for _, p := range []*process{a, b} {
		if status := getStatus(t, p.base+"/readyz"); status != http.StatusOK {
			t.Fatalf("/readyz: HTTP %d\n%s", status, p.output())
		}
	}

	const relayToken, pass = "relay_0123456789abcdefABCDEF", "eyJ0b2tlbl9ub25jZSI6Im4ifQ"
	for _, p := range []*process{a, b, a} {
		status, body := redeemThrough(t, p.base, relayToken, pass)
		if status != http.StatusOK {
			t.Fatalf("HTTP %d %s", status, body)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil || got["token-consumed"] != true || !strings.Contains(got["claim-payload"].(string), "passed") {
			t.Fatalf("answer %s", body)
		}
	}
	keys := up.seen()
	want := gateway.RedeemIdempotencyKey(relayToken, pass)
	if len(keys) != 3 || keys[0] != want || keys[1] != want || keys[2] != want {
		t.Fatalf("Idempotency-Keys upstream %q, want 3 × %s", keys, want)
	}

	// SIGTERM with a redeem in flight: it gets its answer, then the
	// process exits 0.
	up.mu.Lock()
	up.hold = make(chan struct{})
	up.mu.Unlock()
	answered := make(chan int, 1)
	go func() {
		status, _ := redeemThrough(t, a.base, relayToken, pass)
		answered <- status
	}()
	<-up.arrived
	a.signal(t, syscall.SIGTERM)
	a.waitLog(t, "shutting down: draining in-flight requests")
	close(up.hold)
	if status := <-answered; status != http.StatusOK {
		t.Fatalf("the redeem in flight at SIGTERM got HTTP %d", status)
	}
	if err := a.exit(t, 30*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, a.output())
	}
	if !strings.Contains(a.output(), `"msg":"stopped"`) {
		t.Errorf("no clean stop logged:\n%s", a.output())
	}
	if strings.Contains(a.output()+b.output(), pass) || strings.Contains(a.output()+b.output(), "relay-secret-1") {
		t.Errorf("a pass or relay secret in the logs:\n%s%s", a.output(), b.output())
	}
}

// newGatewayConfig decodes the gateway's settings from args as the command
// does.
func newGatewayConfig(t testing.TB, args ...string) *config.Config {
	t.Helper()
	fs := pflag.NewFlagSet("gateway", pflag.ContinueOnError)
	loader := config.BindRenamed(fs, gatewayFlags, gatewaySettings...)
	if err := fs.Parse(append([]string{"--listen", "127.0.0.1:0"}, args...)); err != nil {
		t.Fatal(err)
	}
	cfg, err := loader.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateGateway(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestGatewayAdminListener: the gateway's metrics are on its admin
// listener, and runGateway returns nil after a graceful stop (startGateway's
// cleanup checks it).
func TestGatewayAdminListener(t *testing.T) {
	up := newClaimUpstream(t)
	g := startGateway(t, "--upstream", up.srv.URL)
	if status, body := redeemThrough(t, g.base, "relay_1", "cGFzcw"); status != http.StatusOK {
		t.Fatalf("HTTP %d %s", status, body)
	}
	text := metricsText(t, g.admin)
	for _, want := range []string{
		`ppredeem_gateway_requests_total{code="200",endpoint="redeem"} 1`,
		`ppredeem_gateway_upstream_requests_total{call="generate_claim",result="200"} 1`,
		`ppredeem_gateway_request_duration_seconds_bucket{endpoint="redeem",le="10"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if getStatus(t, g.base+"/metrics") != http.StatusNotFound {
		t.Error("metrics must not be on the public listener")
	}
}

// TestGatewayCommandRefusesBadSettings: validation stops the command
// before it listens, naming the setting.
func TestGatewayCommandRefusesBadSettings(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--upstream", "ftp://provider"}, "gateway_upstream"},
		{[]string{"--listen", "nowhere"}, "gateway_listen"},
		{[]string{"--request-timeout", "20s"}, "shorter than write_timeout"},
	} {
		root := newRootCommand()
		root.SetArgs(append([]string{"gateway"}, c.args...))
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error naming %s", c.args, err, c.want)
		}
	}
}
