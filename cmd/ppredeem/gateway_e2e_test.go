package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/spend/pgtest"
)

// `ppredeem gateway` in front of a real `ppredeem serve`, on both stores:
// the curl example request for request, repeated redeems through
// two gateway processes, and the provider down, slow, flapping, not ready
// and losing answers. Network faults between the two are made by
// upstreamTap (tap_test.go), a reverse proxy in front of the real
// provider; the provider itself is never faked here.

// testGateway is `ppredeem gateway`'s wiring (runGateway) run in-process on
// free ports, with its admin listener.
type testGateway struct {
	base, admin string
}

// startGateway runs runGateway with the gateway's flags args (the listeners
// are chosen here) and stops it gracefully when the test ends. Its logs go
// to stderr with -v, as startServer's do.
func startGateway(t testing.TB, args ...string) *testGateway {
	t.Helper()
	logger := discardLogger()
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return startGatewayLogging(t, logger, args...)
}

// startGatewayLogging is startGateway with the gateway's logger.
func startGatewayLogging(t testing.TB, logger *slog.Logger, args ...string) *testGateway {
	t.Helper()
	cfg := newGatewayConfig(t, append([]string{"--admin-listen", "127.0.0.1:0"}, args...)...)
	g := &testGateway{}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- runGateway(ctx, cfg, logger, lifecycle{listening: func(main, admin net.Addr) { addrs <- [2]net.Addr{main, admin} }})
	}()
	select {
	case a := <-addrs:
		g.base, g.admin = "http://"+a[0].String(), "http://"+a[1].String()
	case err := <-done:
		cancel()
		t.Fatalf("gateway did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("gateway did not start within 30s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway stopped with error: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("gateway did not stop within 30s")
		}
	})
	return g
}

// platform is a platform's server calling a gateway with the requests of
// the curl example, byte for byte: its JSON bodies (spaces
// included), Content-Type: application/json, the bearer API key and the
// relay secret header.
type platform struct {
	t       testing.TB
	gateway string
}

// relayBody is the body of the example's POST /relays, with members after
// claim-type (e.g. `, "encryption-key-pem": null`).
func relayBody(members string) string {
	return `{ "claim-type": "age_over18_united_kingdom"` + members + ` }`
}

// sandboxRelay is a relay the provider reports passed at once.
var sandboxRelay = relayBody(`, "sandbox": true`)

func (p platform) createRelay(body string) relaySession {
	p.t.Helper()
	a := call(p.t, p.gateway+"/relays", body)
	if a.status != 200 {
		p.t.Fatalf("POST /relays: %d %s", a.status, a.body)
	}
	r := relaySession{a.str(p.t, "relay-token"), a.str(p.t, "relay-secret"), a.str(p.t, "relay-session-access-token")}
	if r.token == "" || r.secret == "" || r.access == "" {
		p.t.Fatalf("POST /relays: %s", a.body)
	}
	return r
}

func (p platform) pass() string {
	p.t.Helper()
	a := call(p.t, p.gateway+"/relays/privacy-passes", `{ "claim-type": "age_over18_united_kingdom" }`, "Authorization", "Bearer "+testAPIKey)
	if a.status != 200 || a.str(p.t, "privacy-pass-token") == "" {
		p.t.Fatalf("POST /relays/privacy-passes: %d %s", a.status, a.body)
	}
	return a.str(p.t, "privacy-pass-token")
}

func redeemBody(pass string) string { return `{ "privacy-pass-token": "` + pass + `" }` }

func (p platform) redeem(r relaySession, pass string) answer {
	p.t.Helper()
	return call(p.t, p.gateway+"/relays/"+r.token+"/redeem", redeemBody(pass), "Persona-Relay-Secret", r.secret)
}

// platformKey is the platform's RSA key pair of bits bits: the private key
// and the public key as the PEM of encryption-key-pem.
func platformKey(t testing.TB, bits int) (*rsa.PrivateKey, string) {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return priv, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// sealedClaimOf decodes a 200 redeem answer whose payload is encrypted to
// priv: standard base64 of RSA-OAEP (SHA-256, MGF1-SHA-256, empty label).
func sealedClaimOf(t testing.TB, a answer, priv *rsa.PrivateKey) (payload map[string]any, consumed bool) {
	t.Helper()
	var c struct {
		Payload  string `json:"claim-payload"`
		Consumed *bool  `json:"token-consumed"`
	}
	if a.status != 200 || json.Unmarshal(a.body, &c) != nil || c.Consumed == nil {
		t.Fatalf("redeem: %d %s", a.status, a.body)
	}
	ct, err := base64.StdEncoding.Strict().DecodeString(c.Payload)
	if err != nil {
		t.Fatalf("claim-payload is not standard base64: %v", err)
	}
	plain, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ct, nil)
	if err != nil {
		t.Fatalf("decrypting the claim payload: %v", err)
	}
	if err := json.Unmarshal(plain, &payload); err != nil {
		t.Fatalf("decrypted payload %q: %v", plain, err)
	}
	return payload, *c.Consumed
}

var documentChecked = []map[string]string{{"method": "document", "result": "passed"}}

// TestGatewayDocExample: the curl example, request for request,
// through the gateway's wiring in front of the real provider, on both
// stores: with the verifier's report and with a sandbox relay, each with
// and without an encryption key (decrypted with the platform's private
// key); a pass issued before its relay exists; a failed claim, which
// refunds the pass. Each answer repeats for a repeated redeem, and each
// pass the gateway issued is billed once to the API key.
func TestGatewayDocExample(t *testing.T) {
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		s, _ := newRelayServer(t, relayArgs(storeArgs, "--admin-listen", "127.0.0.1:0")...)
		g := startGateway(t, "--upstream", s.base)
		priv, publicPEM := platformKey(t, 2048)
		keyJSON, _ := json.Marshal(publicPEM)
		issued := 0
		for _, c := range []struct {
			name      string
			members   string // of POST /relays, after claim-type
			sandbox   bool
			encrypted bool
			passFirst bool // the pass is issued before the relay exists
		}{
			{name: "verifier/encrypted", members: `, "encryption-key-pem": ` + string(keyJSON), encrypted: true},
			{name: "verifier/clear", members: `, "encryption-key-pem": null`, passFirst: true},
			{name: "sandbox/encrypted", members: `, "encryption-key-pem": ` + string(keyJSON) + `, "sandbox": true`, sandbox: true, encrypted: true},
			{name: "sandbox/clear", members: `, "sandbox": true`, sandbox: true},
		} {
			t.Run(c.name, func(t *testing.T) {
				pf := platform{t, g.base}
				var pass string
				if c.passFirst {
					pass = pf.pass()
				}
				r := pf.createRelay(relayBody(c.members))
				if !c.sandbox {
					// ---- the verifier checks the user on the frontend ----
					if a := (provider{t, s.base}).report(r, "passed", documentChecked); a.status != 200 {
						t.Fatalf("the verifier's report: %d %s", a.status, a.body)
					}
				}
				if !c.passFirst {
					pass = pf.pass()
				}
				issued++
				first := pf.redeem(r, pass)
				var payload map[string]any
				var consumed bool
				if c.encrypted {
					payload, consumed = sealedClaimOf(t, first, priv)
				} else {
					payload, consumed = claimOf(t, first)
				}
				if !consumed || payload["claim_type"] != claimAge || payload["claim_result"] != "passed" {
					t.Fatalf("claim %v, token-consumed %v", payload, consumed)
				}
				methodology, _ := json.Marshal(payload["methodology"])
				if want := map[bool]string{false: `[{"method":"document","result":"passed"}]`, true: "null"}[c.sandbox]; string(methodology) != want {
					t.Fatalf("methodology %s, want %s", methodology, want)
				}
				if again := pf.redeem(r, pass); again.status != 200 || !bytes.Equal(again.body, first.body) {
					t.Fatalf("the redeem repeated: %d %s, want %s", again.status, again.body, first.body)
				}
			})
		}
		t.Run("failed claim", func(t *testing.T) {
			pf := platform{t, g.base}
			r := pf.createRelay(relayBody(`, "encryption-key-pem": null`))
			if a := (provider{t, s.base}).report(r, "failed", []map[string]string{{"method": "document", "result": "failed"}}); a.status != 200 {
				t.Fatalf("the verifier's report: %d %s", a.status, a.body)
			}
			pass := pf.pass()
			issued++
			if payload, consumed := claimOf(t, pf.redeem(r, pass)); consumed || payload["claim_result"] != "failed" {
				t.Fatalf("failed claim %v, token-consumed %v", payload, consumed)
			}
			// Refunded: the same pass buys the next claim.
			if _, consumed := claimOf(t, pf.redeem(pf.createRelay(sandboxRelay), pass)); !consumed {
				t.Fatal("the pass of a failed claim was not refunded")
			}
		})
		wantStatus(t, "a wrong API key", call(t, g.base+"/relays/privacy-passes", `{ "claim-type": "age_over18_united_kingdom" }`,
			"Authorization", "Bearer wrong"), 401, "Unauthorized")
		if got := usage(t, s.admin)["apikey:billing "+claimAge]; got != int64(issued) {
			t.Fatalf("%d passes billed, the gateway issued %d", got, issued)
		}
	})
}

// TestGatewayRetriedRedeem: a platform repeats a redeem (same relay, same
// pass) through two `ppredeem gateway` processes in front of a real
// `ppredeem serve` process, on both stores, one after the other and 16 at
// once: every answer is the first claim byte for byte, token-consumed:true,
// never a double-spend error. Another pass on the redeemed relay, or the
// spent pass on another relay, gets the provider's 409. The gateways' debug
// logs hold no secret.
func TestGatewayRetriedRedeem(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		srv := startProcess(t, relayArgs(storeArgs)...)
		a := startGatewayProcess(t, []string{"--listen", "127.0.0.1:0", "--upstream", srv.base, "--log-level", "debug"})
		b := startGatewayProcess(t, []string{"--log-level", "debug"}, "PPREDEEM_GATEWAY_LISTEN=127.0.0.1:0", "PPREDEEM_GATEWAY_UPSTREAM="+srv.base)
		pa, pb := platform{t, a.base}, platform{t, b.base}

		r := pa.createRelay(relayBody(`, "encryption-key-pem": null`))
		if rep := (provider{t, srv.base}).report(r, "passed", documentChecked); rep.status != 200 {
			t.Fatalf("the verifier's report: %d %s", rep.status, rep.body)
		}
		pass := pb.pass()
		first := pa.redeem(r, pass)
		if _, consumed := claimOf(t, first); !consumed {
			t.Fatalf("first redeem: %s", first.body)
		}
		for i, p := range []platform{pb, pa, pb} {
			if again := p.redeem(r, pass); again.status != 200 || !bytes.Equal(again.body, first.body) {
				t.Fatalf("repeat %d: %d %s, want %s", i+1, again.status, again.body, first.body)
			}
		}

		// 16 at once, through both gateways, none answered before the others
		// were sent.
		r2 := pb.createRelay(sandboxRelay)
		pass2 := pa.pass()
		const n = 16
		answers := make([]answer, n)
		errs := make([]error, n)
		concurrently(n, func(i int) {
			gw := []string{a.base, b.base}[i%2]
			answers[i], errs[i] = callErr(context.Background(), gw+"/relays/"+r2.token+"/redeem", redeemBody(pass2), "Persona-Relay-Secret", r2.secret)
		})
		for i := range n {
			if errs[i] != nil || answers[i].status != 200 || !bytes.Equal(answers[i].body, answers[0].body) {
				t.Fatalf("redeem %d of %d at once: %v %d %s, want %s", i, n, errs[i], answers[i].status, answers[i].body, answers[0].body)
			}
		}
		if _, consumed := claimOf(t, answers[0]); !consumed {
			t.Fatalf("redeems at once: %s", answers[0].body)
		}

		wantStatus(t, "another pass on the redeemed relay", pa.redeem(r, pb.pass()), 409, "Relay already redeemed")
		wantStatus(t, "the spent pass on another relay", pb.redeem(pa.createRelay(sandboxRelay), pass), 409, "Privacy Pass already redeemed")

		var claim struct {
			Payload string `json:"claim-payload"`
		}
		_ = json.Unmarshal(first.body, &claim)
		logs := a.output() + b.output()
		if !strings.Contains(logs, `"msg":"gateway request"`) {
			t.Fatalf("no request was logged:\n%s", logs)
		}
		wantNoSecrets(t, logs, map[string]string{"pass": pass, "second pass": pass2, "relay secret": r.secret,
			"relay token": r.token, "access token": r.access, "API key": testAPIKey, "claim payload": claim.Payload})
	})
}

// wantNoSecrets fails the test when logs hold one of the secrets, named by
// what they are.
func wantNoSecrets(t testing.TB, logs string, secrets map[string]string) {
	t.Helper()
	for what, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("the gateway's logs hold the %s", what)
		}
	}
}

// TestGatewayLostAnswers: once on each provider call, the provider does the
// work but its answer is lost on the way back (the connection drops), or
// the request never reaches it; the gateway's retries end as if nothing had
// been lost, on both stores. Every request goes on a new connection, so
// that every loss reaches the gateway's retries (see closeEachConnection).
// The lost signature is billed once (its retry
// carries the same Idempotency-Key); the lost claim is replayed with
// token-consumed:true, and the pass is spent exactly once.
func TestGatewayLostAnswers(t *testing.T) {
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		s, _ := newRelayServer(t, relayArgs(storeArgs, "--admin-listen", "127.0.0.1:0")...)
		tp := newUpstreamTap(t, s.base)
		tp.closeEachConnection()
		g := startGateway(t, "--upstream", tp.url)
		pf := platform{t, g.base}
		tp.setRule(func(call string, n int) tapFault {
			switch {
			case n > 1:
				return forward
			case call == "challenge":
				return hangUp
			case call == "create_relay" || call == "sign" || call == "generate_claim":
				return loseAnswer
			}
			return forward
		}, nil)
		r := pf.createRelay(sandboxRelay)
		pass := pf.pass()
		first := pf.redeem(r, pass)
		if _, consumed := claimOf(t, first); !consumed {
			t.Fatalf("redeem: %s", first.body)
		}
		for _, c := range []string{"create_relay", "challenge", "sign", "generate_claim"} {
			if got := tp.statuses(c); !slices.Equal(got, []int{0, 200}) {
				t.Errorf("%s: the gateway got %v, want a lost answer then 200", c, got)
			}
		}
		if got := usage(t, s.admin)["apikey:billing "+claimAge]; got != 1 {
			t.Fatalf("one pass, its signing answer lost once: billed %d times", got)
		}
		// The provider holds the claim the platform got, and the pass is spent.
		direct := provider{t, s.base}
		if payload, consumed := claimOf(t, direct.generateClaim(r, pass)); !consumed || payload["claim_result"] != "passed" {
			t.Fatalf("the provider's claim: %v %v", payload, consumed)
		}
		wantStatus(t, "the pass on another relay", direct.generateClaim(direct.createRelay(map[string]any{"claim-type": claimAge, "sandbox": true}), pass),
			409, "Privacy Pass already redeemed")
	})
}

// TestGatewayFlapping: each provider call fails its first attempts the ways
// a network and a load balancer fail (HTML 429, 502, 503 and 504, hung-up
// connections, a lost answer) and then succeeds, within the gateway's
// retries: the platform sees only the successes, and the pass is billed
// once. Both stores.
func TestGatewayFlapping(t *testing.T) {
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		s, _ := newRelayServer(t, relayArgs(storeArgs, "--admin-listen", "127.0.0.1:0")...)
		tp := newUpstreamTap(t, s.base)
		g := startGateway(t, "--upstream", tp.url)
		faults := map[string][]tapFault{
			"create_relay":   {proxyAnswer(503), hangUp},
			"challenge":      {proxyAnswer(429)},
			"sign":           {proxyAnswer(502), loseAnswer, proxyAnswer(504)},
			"generate_claim": {hangUp, proxyAnswer(503), loseAnswer},
		}
		tp.setRule(func(call string, n int) tapFault {
			if f := faults[call]; n <= len(f) {
				return f[n-1]
			}
			return forward
		}, nil)
		pf := platform{t, g.base}
		r := pf.createRelay(relayBody(`, "encryption-key-pem": null`))
		if a := (provider{t, s.base}).report(r, "passed", documentChecked); a.status != 200 {
			t.Fatalf("the verifier's report: %d %s", a.status, a.body)
		}
		pass := pf.pass()
		if payload, consumed := claimOf(t, pf.redeem(r, pass)); !consumed || payload["claim_result"] != "passed" {
			t.Fatalf("claim %v, token-consumed %v", payload, consumed)
		}
		for c, want := range map[string][]int{
			"create_relay":   {503, 0, 200},
			"challenge":      {429, 200},
			"sign":           {502, 0, 504, 200},
			"generate_claim": {0, 503, 0, 200},
		} {
			if got := tp.statuses(c); !slices.Equal(got, want) {
				t.Errorf("%s: the gateway got %v, want %v", c, got, want)
			}
		}
		if got := usage(t, s.admin)["apikey:billing "+claimAge]; got != 1 {
			t.Fatalf("one pass billed %d times", got)
		}
	})
}

// TestGatewayClaimNotReady: a redeem before the verifier's report gets the
// provider's 403 "Claim not ready", which the gateway retries. The
// verifier reports as the first 403 goes back to the gateway (the tap sees
// it: an event, not a timer), and the retry gets the claim. Never reported,
// the 403 passes through after the last retry and the pass is not
// consumed. Both stores.
func TestGatewayClaimNotReady(t *testing.T) {
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		s, _ := newRelayServer(t, relayArgs(storeArgs)...)
		tp := newUpstreamTap(t, s.base)
		g := startGateway(t, "--upstream", tp.url)
		pf := platform{t, g.base}
		pass := pf.pass()
		r := pf.createRelay(relayBody(`, "encryption-key-pem": null`))
		reported := make(chan string, 1)
		tp.setRule(nil, func(call string, n, status int) {
			if call != "generate_claim" || n != 1 {
				return
			}
			if status != 403 {
				reported <- fmt.Sprintf("the first generate-claim got HTTP %d, want 403", status)
				return
			}
			body := map[string]any{"relay-session-access-token": r.access, "claim-result": "passed", "methodology": documentChecked}
			a, err := callErr(context.Background(), s.base+"/api/privacy/v1/relay-sessions/claim", body, "Authorization", "Bearer "+testVerifier)
			switch {
			case err != nil:
				reported <- err.Error()
			case a.status != 200:
				reported <- "the verifier's report: " + string(a.body)
			default:
				reported <- ""
			}
		})
		a := pf.redeem(r, pass)
		if msg := <-reported; msg != "" {
			t.Fatal(msg)
		}
		if payload, consumed := claimOf(t, a); !consumed || payload["claim_result"] != "passed" {
			t.Fatalf("claim %v, token-consumed %v", payload, consumed)
		}
		if got := tp.statuses("generate_claim"); !slices.Equal(got, []int{403, 200}) {
			t.Fatalf("generate-claim answers %v, want 403 then 200", got)
		}

		tp.setRule(nil, nil)
		never := pf.createRelay(relayBody(`, "encryption-key-pem": null`))
		pass2 := pf.pass()
		wantStatus(t, "never reported", pf.redeem(never, pass2), 403, "Claim not ready")
		if got := tp.statuses("generate_claim")[2:]; !slices.Equal(got, []int{403, 403, 403, 403}) {
			t.Fatalf("generate-claim answers %v, want 4 × 403 (3 retries)", got)
		}
		if _, consumed := claimOf(t, pf.redeem(pf.createRelay(sandboxRelay), pass2)); !consumed {
			t.Fatal("the pass refused with 403 was consumed")
		}
	})
}

// TestGatewayUpstreamDown: with the provider's process killed (SIGKILL),
// every endpoint answers 502 "Network error" after its retries and /readyz
// fails; with the provider back on its address, /readyz recovers and the
// relay and pass made before the outage redeem. Both stores.
func TestGatewayUpstreamDown(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes; skipped with -short")
	}
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		addr := freeAddr(t)
		args := relayArgs(storeArgs, "--listen", addr)
		srv := startProcess(t, args...)
		gw := startGatewayProcess(t, []string{"--listen", "127.0.0.1:0", "--upstream", "http://" + addr})
		pf := platform{t, gw.base}
		r := pf.createRelay(sandboxRelay)
		pass := pf.pass()

		srv.signal(t, syscall.SIGKILL)
		srv.exit(t, 30*time.Second)
		for what, a := range map[string]answer{
			"POST /relays":                call(t, gw.base+"/relays", sandboxRelay),
			"POST /relays/privacy-passes": call(t, gw.base+"/relays/privacy-passes", `{ "claim-type": "age_over18_united_kingdom" }`, "Authorization", "Bearer "+testAPIKey),
			"POST /relays/<relay>/redeem": pf.redeem(r, pass),
		} {
			wantStatus(t, what+" with the provider down", a, 502, "Network error")
		}
		waitFor(t, "/readyz fails with the provider down", func() bool { return getStatus(t, gw.base+"/readyz") == 503 })
		// The network errors are logged (warn), without the redeem's URL.
		if !strings.Contains(gw.output(), `"title":"Network error"`) {
			t.Fatalf("no network error logged:\n%s", gw.output())
		}
		wantNoSecrets(t, gw.output(), map[string]string{"relay token": r.token, "relay secret": r.secret, "pass": pass, "API key": testAPIKey})

		startProcess(t, args...)
		waitFor(t, "/readyz recovers with the provider back", func() bool { return getStatus(t, gw.base+"/readyz") == 200 })
		if _, consumed := claimOf(t, pf.redeem(r, pass)); !consumed {
			t.Fatal("the pass made before the outage did not redeem")
		}
	})
}

// TestGatewayUpstreamSlow: a provider answer that does not come in time
// (the tap holds it) ends the gateway's request with 504 "Request timed
// out" at --request-timeout, not later, the upstream request cancelled and
// not retried. The provider did redeem meanwhile: the platform's retry
// gets that claim (token-consumed:true), not a double-spend error. A
// platform that gives up first (its own deadline) makes the gateway cancel
// its upstream call at once. Both stores.
func TestGatewayUpstreamSlow(t *testing.T) {
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		s, _ := newRelayServer(t, relayArgs(storeArgs)...)
		tp := newUpstreamTap(t, s.base)
		const timeout = 2 * time.Second
		g := startGateway(t, "--upstream", tp.url, "--request-timeout", timeout.String())
		pf := platform{t, g.base}
		r := pf.createRelay(sandboxRelay)
		pass := pf.pass()

		tp.setRule(func(call string, _ int) tapFault {
			if call == "generate_claim" {
				return holdAnswer
			}
			return forward
		}, nil)
		start := time.Now()
		a := pf.redeem(r, pass)
		elapsed := time.Since(start)
		wantStatus(t, "a held answer", a, 504, "Request timed out")
		if elapsed < timeout || elapsed > timeout+5*time.Second {
			t.Fatalf("504 after %s, want it at the %s deadline", elapsed, timeout)
		}
		waitGaveUp(t, tp, "generate_claim")
		if got := tp.count("generate_claim"); got != 1 {
			t.Fatalf("%d generate-claim requests: a timed-out attempt must not be retried", got)
		}
		tp.setRule(nil, nil)
		if _, consumed := claimOf(t, pf.redeem(r, pass)); !consumed {
			t.Fatal("the platform's retry after a 504 did not get the claim")
		}

		// The platform's own deadline comes first.
		tp.setRule(func(call string, _ int) tapFault {
			if call == "create_relay" {
				return holdAnswer
			}
			return forward
		}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := callErr(ctx, g.base+"/relays", sandboxRelay)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the platform's request: %v, want its deadline", err)
		}
		waitGaveUp(t, tp, "create_relay")
		waitFor(t, "the request the platform gave up on counted as 499", func() bool {
			return strings.Contains(metricsText(t, g.admin), `ppredeem_gateway_requests_total{code="499",endpoint="relays"} 1`)
		})
	})
}

// waitGaveUp waits until the gateway has given up on a held answer of call.
func waitGaveUp(t *testing.T, tp *upstreamTap, call string) {
	t.Helper()
	select {
	case c := <-tp.gaveUp:
		if c != call {
			t.Fatalf("the gateway gave up on %s, want %s", c, call)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the gateway's request for %s to the provider was not cancelled within 30s", call)
	}
}

// TestGatewayProviderStoreOutage: while the provider's Postgres is cut off,
// a redeem gets the provider's 503 "Service unavailable" through the
// gateway after its retries; nothing is half-done, so once the database is
// back the same redeem gets the claim, token-consumed:true.
func TestGatewayProviderStoreOutage(t *testing.T) {
	db := newTCPProxy(t, pgtest.NewMigratedDatabase(t, "cmd"))
	s, _ := newRelayServer(t, relayArgs([]string{"--database-url", db.dsn})...)
	tp := newUpstreamTap(t, s.base)
	g := startGateway(t, "--upstream", tp.url)
	pf := platform{t, g.base}
	r := pf.createRelay(sandboxRelay)
	pass := pf.pass()

	db.setDown(true)
	wantStatus(t, "during the outage", pf.redeem(r, pass), 503, "Service unavailable")
	if got := tp.statuses("generate_claim"); !slices.Equal(got, []int{503, 503, 503, 503}) {
		t.Fatalf("generate-claim answers %v, want 4 × 503 (3 retries)", got)
	}
	db.setDown(false)
	var a answer
	waitFor(t, "the redeem succeeds with the database back", func() bool {
		a = pf.redeem(r, pass)
		return a.status == 200
	})
	if _, consumed := claimOf(t, a); !consumed {
		t.Fatalf("after the outage: %s", a.body)
	}
}

// TestGatewayRefusalsStayLocal: every request the gateway refuses on its
// own (malformed bodies, wrong content types, bodies over the limit with a
// length or chunked, missing or unusable credentials, bad relay tokens and
// passes, other methods and paths) gets its 4xx over a real connection to a
// `ppredeem gateway` process, and none reaches the provider.
func TestGatewayRefusalsStayLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	s, _ := newRelayServer(t, relayArgs(embeddedStore(t))...)
	tp := newUpstreamTap(t, s.base)
	gw := startGatewayProcess(t, []string{"--listen", "127.0.0.1:0", "--upstream", tp.url, "--max-body-bytes", "1024"})
	bearer := []string{"Authorization", "Bearer " + testAPIKey}
	secret := []string{"Persona-Relay-Secret", "00000000-0000-4000-8000-000000000000"}
	redeem := "/relays/relay_AAAAAAAAAAAAAAAAAAAAAA/redeem"
	big := `{ "claim-type": "age_over18_united_kingdom", "pad": "` + strings.Repeat("a", 1024) + `" }`
	for _, c := range []struct {
		name         string
		method, path string
		body         io.Reader
		header       []string
		status       int
		title        string
	}{
		{"relays: text/plain", "POST", "/relays", strings.NewReader(sandboxRelay), []string{"Content-Type", "text/plain"}, 400, "Unsupported content type"},
		{"relays: not JSON", "POST", "/relays", strings.NewReader(`{`), nil, 400, "Malformed request body"},
		{"relays: an array", "POST", "/relays", strings.NewReader(`[{"claim-type":"age_over18_united_kingdom"}]`), nil, 400, "Malformed request body"},
		{"relays: no claim type", "POST", "/relays", strings.NewReader(`{ "encryption-key-pem": null }`), nil, 400, "Missing claim type"},
		{"relays: claim type a number", "POST", "/relays", strings.NewReader(`{ "claim-type": 18 }`), nil, 400, "Malformed request body"},
		{"relays: two spellings differ", "POST", "/relays", strings.NewReader(`{ "claim-type": "a", "claimType": "b" }`), nil, 400, "Malformed request body"},
		{"relays: sandbox a string", "POST", "/relays", strings.NewReader(relayBody(`, "sandbox": "yes"`)), nil, 400, "Malformed request body"},
		{"relays: key a number", "POST", "/relays", strings.NewReader(relayBody(`, "encryption-key-pem": 7`)), nil, 400, "Malformed request body"},
		{"relays: over the limit", "POST", "/relays", strings.NewReader(big), nil, 400, "Request body too large"},
		{"relays: over the limit, chunked", "POST", "/relays", io.MultiReader(strings.NewReader(big)), nil, 400, "Request body too large"},
		{"passes: no Authorization", "POST", "/relays/privacy-passes", strings.NewReader(`{ "claim-type": "age_over18_united_kingdom" }`), nil, 401, "Unauthorized"},
		{"passes: Basic", "POST", "/relays/privacy-passes", strings.NewReader(`{ "claim-type": "age_over18_united_kingdom" }`), []string{"Authorization", "Basic YTpi"}, 401, "Unauthorized"},
		{"passes: Bearer without a key", "POST", "/relays/privacy-passes", strings.NewReader(`{ "claim-type": "age_over18_united_kingdom" }`), []string{"Authorization", "Bearer"}, 401, "Unauthorized"},
		{"passes: no claim type", "POST", "/relays/privacy-passes", strings.NewReader(`{}`), bearer, 400, "Missing claim type"},
		{"passes: text/plain", "POST", "/relays/privacy-passes", strings.NewReader(`{ "claim-type": "age_over18_united_kingdom" }`), append([]string{"Content-Type", "text/plain"}, bearer...), 400, "Unsupported content type"},
		{"passes: over the limit", "POST", "/relays/privacy-passes", strings.NewReader(big), bearer, 400, "Request body too large"},
		{"redeem: no relay secret", "POST", redeem, strings.NewReader(redeemBody("cGFzcw")), nil, 400, "Missing relay secret"},
		{"redeem: relay secret with a space", "POST", redeem, strings.NewReader(redeemBody("cGFzcw")), []string{"Persona-Relay-Secret", "a b"}, 400, "Invalid relay secret"},
		{"redeem: relay secret not ASCII", "POST", redeem, strings.NewReader(redeemBody("cGFzcw")), []string{"Persona-Relay-Secret", "sécret"}, 400, "Invalid relay secret"},
		{"redeem: no pass", "POST", redeem, strings.NewReader(`{}`), secret, 400, "Missing Privacy Pass"},
		{"redeem: pass padded", "POST", redeem, strings.NewReader(redeemBody("cGFzcw==")), secret, 400, "Invalid Privacy Pass"},
		{"redeem: pass with a dot", "POST", redeem, strings.NewReader(redeemBody("a.b")), secret, 400, "Invalid Privacy Pass"},
		{"redeem: not JSON", "POST", redeem, strings.NewReader(`privacy-pass-token=cGFzcw`), secret, 400, "Malformed request body"},
		{"redeem: over the limit", "POST", redeem, strings.NewReader(big), secret, 400, "Request body too large"},
		{"redeem: relay token with a dot", "POST", "/relays/relay.x/redeem", strings.NewReader(redeemBody("cGFzcw")), secret, 400, "Invalid relay token"},
		{"redeem: relay token with an escaped slash", "POST", "/relays/a%2Fb/redeem", strings.NewReader(redeemBody("cGFzcw")), secret, 400, "Invalid relay token"},
		{"GET /relays", "GET", "/relays", nil, nil, 405, "Method not allowed"},
		{"PUT redeem", "PUT", redeem, strings.NewReader(redeemBody("cGFzcw")), secret, 405, "Method not allowed"},
		{"a provider path", "POST", "/api/privacy/v1/relays", strings.NewReader(sandboxRelay), nil, 404, "Not found"},
		{"below redeem", "POST", redeem + "/x", strings.NewReader(redeemBody("cGFzcw")), secret, 404, "Not found"},
	} {
		a, err := send(context.Background(), c.method, gw.base+c.path, c.body, c.header...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if a.status != c.status || a.title() != c.title {
			t.Errorf("%s: %d %s, want %d %q", c.name, a.status, a.body, c.status, c.title)
		}
		if n := tp.requests(); n != 0 {
			t.Fatalf("%s: %d requests reached the provider", c.name, n)
		}
	}
}

// send makes one HTTP request with rpctest's client; see sendWith.
func send(ctx context.Context, method, url string, body io.Reader, header ...string) (answer, error) {
	return sendWith(ctx, rpctest.HTTPClient(), method, url, body, header...)
}

// sendWith makes one HTTP request with a JSON Content-Type (which header
// can replace) and the headers given as name, value pairs, and reads the
// answer.
func sendWith(ctx context.Context, client *http.Client, method, url string, body io.Reader, header ...string) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, raw}, err
}

// TestGatewayLargeKeys: the whole flow with 4096-bit keys, the largest of
// the contract, on both stores: an issuer key from `ppredeem keys generate
// --rsa --bits 4096` (a longer blinded token, signature and pass) and a
// 4096-bit platform encryption key (a longer PEM and payload).
func TestGatewayLargeKeys(t *testing.T) {
	issuerKey := t.TempDir() + "/pass-4096.pem"
	if out, err := run(t, "keys", "generate", "--rsa", "--bits", "4096", "--out", issuerKey); err != nil {
		t.Fatalf("keys generate: %v %s", err, out)
	}
	priv, publicPEM := platformKey(t, 4096)
	keyJSON, _ := json.Marshal(publicPEM)
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		s, _ := newRelayServer(t, append(storeArgs, "--relay-keys", claimAge+"="+issuerKey, "--relay-sandbox",
			"--api-keys", "billing="+sha256Hex(testAPIKey))...)
		pf := platform{t, startGateway(t, "--upstream", s.base).base}
		r := pf.createRelay(relayBody(`, "encryption-key-pem": ` + string(keyJSON) + `, "sandbox": true`))
		pass := pf.pass()
		raw, err := base64.RawURLEncoding.DecodeString(pass)
		var p struct {
			Signature string `json:"signature"`
		}
		if err != nil || json.Unmarshal(raw, &p) != nil || len(p.Signature) != base64.RawURLEncoding.EncodedLen(512) {
			t.Fatalf("pass %s: not signed by a 4096-bit key", raw)
		}
		first := pf.redeem(r, pass)
		if payload, consumed := sealedClaimOf(t, first, priv); !consumed || payload["claim_result"] != "passed" {
			t.Fatalf("claim %v, token-consumed %v", payload, consumed)
		}
		if again := pf.redeem(r, pass); !bytes.Equal(again.body, first.body) {
			t.Fatalf("the redeem repeated: %d %s", again.status, again.body)
		}
	})
}

// TestGatewayLogsCorrelate: a platform's X-Request-Id goes through the
// gateway to the provider, so the provider's log line of a redeem carries
// the platform's request ID and names the relay by the same short hash as
// the gateway's line does.
func TestGatewayLogsCorrelate(t *testing.T) {
	var serveLogs, gatewayLogs rpctest.LogBuffer
	debugJSON := func(w io.Writer) *slog.Logger {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s := startServerLogging(t, newConfig(t, relayArgs(embeddedStore(t))...), debugJSON(&serveLogs))
	g := startGatewayLogging(t, debugJSON(&gatewayLogs), "--upstream", s.base)
	pf := platform{t, g.base}
	r := pf.createRelay(sandboxRelay)
	pass := pf.pass()
	a, err := send(context.Background(), http.MethodPost, g.base+"/relays/"+r.token+"/redeem", strings.NewReader(redeemBody(pass)),
		"Persona-Relay-Secret", r.secret, "X-Request-Id", "platform-request-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, consumed := claimOf(t, a); !consumed {
		t.Fatalf("redeem: %s", a.body)
	}
	relayLabel := func(logs, msg, endpoint string) string {
		t.Helper()
		for line := range strings.Lines(logs) {
			var rec struct {
				Msg       string `json:"msg"`
				Endpoint  string `json:"endpoint"`
				Relay     string `json:"relay"`
				RequestID string `json:"request_id"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == msg && rec.Endpoint == endpoint && rec.RequestID == "platform-request-1" {
				return rec.Relay
			}
		}
		t.Fatalf("no %q line for %s with the platform's request ID:\n%s", msg, endpoint, logs)
		return ""
	}
	gw := relayLabel(gatewayLogs.String(), "gateway request", "redeem")
	provider := relayLabel(serveLogs.String(), "relay request", "generate_claim")
	if gw == "" || gw != provider {
		t.Fatalf("the gateway names the relay %q, the provider %q", gw, provider)
	}
}
