package main

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
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ppredeem/ppredeem/rpc/gateway/passclient"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
)

// The relay provider API through HTTP against the real server wiring (runServer), on both
// stores, with the independent client of rpc/gateway/passclient.

const (
	claimAge   = "age_over18_united_kingdom"
	claimOther = "age_over21_united_states"
	// Test-only RSA keys of verify/pass/testdata.
	relayKeyAge   = "../../verify/pass/testdata/openssl_rsa2048_pkcs1.pem"
	relayKeyOther = "../../verify/pass/testdata/openssl_rsa2048_pkcs8.pem"
	testAPIKey    = "ppk_test_billing_key_0123456789"
	testVerifier  = "ppv_test_verifier_key_0123456789"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// relayArgs are the settings of a relay provider on top of storeArgs.
func relayArgs(storeArgs []string, more ...string) []string {
	args := append([]string{}, storeArgs...)
	args = append(args,
		"--relay-keys", claimAge+"="+relayKeyAge+","+claimOther+"="+relayKeyOther,
		"--api-keys", "billing="+sha256Hex(testAPIKey),
		"--verifier-keys", "idv="+sha256Hex(testVerifier),
		"--relay-sandbox")
	return append(args, more...)
}

// testClock is a clock tests move forward.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }
func newRelayServer(t *testing.T, args ...string) (*testServer, *testClock) {
	t.Helper()
	clock := new(testClock)
	s := startServerClock(t, newConfig(t, args...), discardLogger(), clock.now)
	return s, clock
}

// answer is one HTTP answer of the provider API.
type answer struct {
	status int
	body   []byte
}

func (a answer) title() string {
	var e struct {
		Errors []struct{ Title, Details string }
	}
	if json.Unmarshal(a.body, &e) != nil || len(e.Errors) != 1 {
		return ""
	}
	return e.Errors[0].Title
}

func (a answer) member(t testing.TB, name string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d %s: %v", a.status, a.body, err)
	}
	return m[name]
}

func (a answer) str(t testing.TB, name string) string {
	t.Helper()
	s, _ := a.member(t, name).(string)
	return s
}

func call(t testing.TB, url string, body any, header ...string) answer {
	t.Helper()
	a, err := callErr(context.Background(), url, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func callErr(ctx context.Context, url string, body any, header ...string) (answer, error) {
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		raw, _ = json.Marshal(b)
	}
	return send(ctx, http.MethodPost, url, bytes.NewReader(raw), header...)
}

// provider is a test client of one server's provider API.
type provider struct {
	t    testing.TB
	base string
}

type relaySession struct{ token, secret, access string }

func (p provider) createRelay(body any) relaySession {
	p.t.Helper()
	a := call(p.t, p.base+"/api/privacy/v1/relays", body)
	if a.status != 200 {
		p.t.Fatalf("create relay: %d %s", a.status, a.body)
	}
	return relaySession{a.str(p.t, "relay-token"), a.str(p.t, "relay-secret"), a.str(p.t, "relay-session-access-token")}
}

func (p provider) relay(claimType string) relaySession {
	p.t.Helper()
	return p.createRelay(map[string]any{"claim-type": claimType, "encryption-key-pem": nil})
}

// issue builds a pass with passclient: challenge, blind, sign (billed), finalize.
func (p provider) issue(claimType string, idemKey string) (string, error) {
	a, err := callErr(context.Background(), p.base+"/api/privacy/v1/relays/challenge", map[string]string{"claimType": claimType})
	if err != nil {
		return "", err
	}
	if a.status != 200 {
		return "", fmt.Errorf("challenge: %d %s", a.status, a.body)
	}
	var ch struct {
		Challenge  string `json:"challenge"`
		TokenKey   string `json:"token-key"`
		TokenKeyID string `json:"token-key-id"`
	}
	if err := json.Unmarshal(a.body, &ch); err != nil {
		return "", err
	}
	sign := func(ctx context.Context, blinded []byte, keyID string) ([]byte, error) {
		header := []string{"Authorization", "Bearer " + testAPIKey}
		if idemKey != "" {
			header = append(header, "Idempotency-Key", idemKey)
		}
		a, err := callErr(ctx, p.base+"/api/v1/privacy-passes",
			map[string]string{"blinded-token": base64.RawURLEncoding.EncodeToString(blinded), "key-id": keyID}, header...)
		if err != nil {
			return nil, err
		}
		if a.status != 200 {
			return nil, fmt.Errorf("sign: %d %s", a.status, a.body)
		}
		var s struct {
			BlindSig string `json:"blind-sig"`
		}
		if err := json.Unmarshal(a.body, &s); err != nil {
			return nil, err
		}
		return base64.RawURLEncoding.DecodeString(s.BlindSig)
	}
	pass, err := passclient.Issue(context.Background(), rand.Reader,
		passclient.Issuance{Challenge: ch.Challenge, TokenKey: ch.TokenKey, TokenKeyID: ch.TokenKeyID}, sign)
	if err != nil {
		return "", err
	}
	return pass.Token, nil
}

func (p provider) pass(claimType string) string {
	p.t.Helper()
	tok, err := p.issue(claimType, "")
	if err != nil {
		p.t.Fatal(err)
	}
	return tok
}

func (p provider) claimURL(r relaySession) string {
	return p.base + "/api/privacy/v1/relays/" + r.token + "/generate-claim"
}

func (p provider) generateClaim(r relaySession, pass string, header ...string) answer {
	p.t.Helper()
	h := append([]string{"Persona-Relay-Secret", r.secret}, header...)
	if pass != "" {
		h = append(h, "Authorization", "PrivateToken token="+pass)
	}
	return call(p.t, p.claimURL(r), "{}", h...)
}

func (p provider) report(r relaySession, result string, methodology any) answer {
	p.t.Helper()
	body := map[string]any{"relaySessionAccessToken": r.access, "claimResult": result}
	if methodology != nil {
		body["methodology"] = methodology
	}
	return call(p.t, p.base+"/api/privacy/v1/relay-sessions/claim", body, "Authorization", "Bearer "+testVerifier)
}

func wantStatus(t testing.TB, what string, a answer, status int, title string) {
	t.Helper()
	if a.status != status || a.title() != title {
		t.Fatalf("%s: %d %s; want %d %q", what, a.status, a.body, status, title)
	}
}

// claimOf decodes a 200 generate-claim answer.
func claimOf(t testing.TB, a answer) (payload map[string]any, consumed bool) {
	t.Helper()
	if a.status != 200 {
		t.Fatalf("generate-claim: %d %s", a.status, a.body)
	}
	var c struct {
		Payload  string `json:"claim-payload"`
		Consumed *bool  `json:"token-consumed"`
	}
	if err := json.Unmarshal(a.body, &c); err != nil || c.Consumed == nil {
		t.Fatalf("generate-claim answer %s: %v", a.body, err)
	}
	if err := json.Unmarshal([]byte(c.Payload), &payload); err != nil {
		t.Fatalf("claim payload %q: %v", c.Payload, err)
	}
	return payload, *c.Consumed
}

// TestRelayFlow: create → challenge → blind → issue → finalize → not ready (403) →
// verifier reports → redeem → replay gives the same claim, byte for byte.
func TestRelayFlow(t *testing.T) {
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		s, _ := newRelayServer(t, relayArgs(storeArgs)...)
		p := provider{t, s.base}
		r := p.relay(claimAge)
		if !strings.HasPrefix(r.token, "relay_") || len(r.secret) != 36 || strings.Count(r.access, ".") != 2 {
			t.Fatalf("relay %+v", r)
		}
		pass := p.pass(claimAge)
		wantStatus(t, "before the report", p.generateClaim(r, pass), 403, "Claim not ready")
		if a := p.report(r, "passed", []map[string]string{{"method": "document", "result": "passed"}}); a.status != 200 || string(bytes.TrimSpace(a.body)) != "{}" {
			t.Fatalf("report: %d %s", a.status, a.body)
		}
		first := p.generateClaim(r, pass, "Idempotency-Key", "retry-1")
		payload, consumed := claimOf(t, first)
		if !consumed || payload["claim_type"] != claimAge || payload["claim_result"] != "passed" {
			t.Fatalf("claim %v consumed %v", payload, consumed)
		}
		if m, _ := json.Marshal(payload["methodology"]); string(m) != `[{"method":"document","result":"passed"}]` {
			t.Fatalf("methodology %s", m)
		}
		for _, h := range [][]string{nil, {"Idempotency-Key", "retry-1"}, {"Idempotency-Key", "another"}} {
			again := p.generateClaim(r, pass, h...)
			if again.status != 200 || !bytes.Equal(again.body, first.body) {
				t.Fatalf("replay %v: %d %s, want %s", h, again.status, again.body, first.body)
			}
		}
	})
}

// TestRelayClaimTable: each row of rpc/relay/PROTOCOL.md §3.4, and the refusals of the other
// endpoints.
func TestRelayClaimTable(t *testing.T) {
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		s, clock := newRelayServer(t, relayArgs(storeArgs, "--relay-pass-lifetime", "1m")...)
		p := provider{t, s.base}
		passed := func(ct string) relaySession {
			r := p.relay(ct)
			if a := p.report(r, "passed", nil); a.status != 200 {
				t.Fatalf("report: %d %s", a.status, a.body)
			}
			return r
		}
		r := passed(claimAge)
		pass := p.pass(claimAge)

		// 404: unknown relay, wrong secret: the same answer.
		unknown := relaySession{token: "relay_AAAAAAAAAAAAAAAAAAAAAA", secret: r.secret}
		wantStatus(t, "unknown relay", p.generateClaim(unknown, pass), 404, "Not found")
		wantStatus(t, "malformed relay token", p.generateClaim(relaySession{token: "nope", secret: r.secret}, pass), 404, "Not found")
		wrong := relaySession{token: r.token, secret: "00000000-0000-4000-8000-000000000000"}
		wantStatus(t, "wrong secret", p.generateClaim(wrong, pass), 404, "Not found")
		wantStatus(t, "no secret", call(t, p.claimURL(r), "{}", "Authorization", "PrivateToken token="+pass), 404, "Not found")

		// 400: no pass, another scheme, not decodable.
		wantStatus(t, "no Authorization", p.generateClaim(r, ""), 400, "Invalid Privacy Pass")
		wantStatus(t, "Bearer", p.generateClaim(r, "", "Authorization", "Bearer "+pass), 400, "Invalid Privacy Pass")
		wantStatus(t, "not base64url", p.generateClaim(r, "!!!"), 400, "Invalid Privacy Pass")

		// 401: a pass this issuer did not sign (key_id changed), a MAC changed.
		raw, _ := base64.RawURLEncoding.DecodeString(pass)
		var pj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &pj); err != nil {
			t.Fatal(err)
		}
		forged := func(member string, value json.RawMessage) string {
			m := map[string]json.RawMessage{}
			for k, v := range pj {
				m[k] = v
			}
			m[member] = value
			b, _ := json.Marshal(m)
			return base64.RawURLEncoding.EncodeToString(b)
		}
		wantStatus(t, "unknown key_id", p.generateClaim(r, forged("key_id", json.RawMessage(`"`+strings.Repeat("ab", 32)+`"`))), 401, "Invalid Privacy Pass")
		var ch map[string]json.RawMessage
		_ = json.Unmarshal(pj["challenge"], &ch)
		ch["expires_at"] = json.RawMessage(`"2099-01-01T00:00:00Z"`)
		chRaw, _ := json.Marshal(ch)
		wantStatus(t, "challenge changed", p.generateClaim(r, forged("challenge", chRaw)), 401, "Invalid Privacy Pass")
		// A quoted token parameter is accepted.
		quoted := p.generateClaim(r, "", "Authorization", `PrivateToken token="`+forged("key_id", json.RawMessage(`"`+strings.Repeat("ab", 32)+`"`))+`"`)
		wantStatus(t, "quoted", quoted, 401, "Invalid Privacy Pass")

		// 422: a pass of another claim type, not consumed: it then redeems its own kind.
		otherPass := p.pass(claimOther)
		wantStatus(t, "claim type mismatch", p.generateClaim(r, otherPass), 422, "Claim type mismatch")
		if _, consumed := claimOf(t, p.generateClaim(passed(claimOther), otherPass)); !consumed {
			t.Fatal("the mismatched pass did not redeem a relay of its claim type")
		}

		// 403: not reported.
		notReady := p.relay(claimAge)
		wantStatus(t, "not ready", p.generateClaim(notReady, pass), 403, "Claim not ready")

		// Failed: 200, not consumed; the pass then redeems another relay.
		failed := p.relay(claimAge)
		if a := p.report(failed, "failed", []map[string]string{{"method": "selfie", "result": "failed"}}); a.status != 200 {
			t.Fatalf("report failed: %d %s", a.status, a.body)
		}
		fa := p.generateClaim(failed, pass)
		if payload, consumed := claimOf(t, fa); consumed || payload["claim_result"] != "failed" {
			t.Fatalf("failed claim: %v consumed %v", payload, consumed)
		}
		if again := p.generateClaim(failed, pass); !bytes.Equal(again.body, fa.body) {
			t.Fatalf("failed claim again: %s, want %s", again.body, fa.body)
		}
		if _, consumed := claimOf(t, p.generateClaim(r, pass)); !consumed {
			t.Fatal("the refunded pass did not redeem")
		}

		// 409: the pass spent elsewhere; the relay redeemed by another pass.
		wantStatus(t, "pass spent elsewhere", p.generateClaim(passed(claimAge), pass), 409, "Privacy Pass already redeemed")
		wantStatus(t, "relay redeemed by another", p.generateClaim(r, p.pass(claimAge)), 409, "Relay already redeemed")

		// Encryption: RSA-OAEP SHA-256, empty label, standard base64.
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		enc := p.createRelay(map[string]any{"claimType": claimAge, "encryptionKeyPem": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))})
		if a := p.report(enc, "passed", []map[string]string{{"method": "document", "result": "passed"}}); a.status != 200 {
			t.Fatalf("report: %d %s", a.status, a.body)
		}
		ea := p.generateClaim(enc, p.pass(claimAge))
		ct, err := base64.StdEncoding.DecodeString(ea.str(t, "claim-payload"))
		if err != nil {
			t.Fatalf("encrypted payload %s: %v", ea.body, err)
		}
		plain, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ct, nil)
		if err != nil || !strings.Contains(string(plain), `"claim_result":"passed"`) {
			t.Fatalf("decrypted %q, %v", plain, err)
		}

		// Sandbox: passed without a verifier.
		sb := p.createRelay(map[string]any{"claim-type": claimOther, "sandbox": true})
		if payload, consumed := claimOf(t, p.generateClaim(sb, p.pass(claimOther))); !consumed || payload["claim_result"] != "passed" {
			t.Fatalf("sandbox claim %v", payload)
		}

		// Verifier: bad key, bad session, second report.
		wantStatus(t, "verifier key", call(t, s.base+"/api/privacy/v1/relay-sessions/claim",
			map[string]any{"relay-session-access-token": r.access, "claim-result": "passed"}, "Authorization", "Bearer nope"), 401, "Unauthorized")
		wantStatus(t, "bad session", p.report(relaySession{access: r.access + "x"}, "passed", nil), 401, "Invalid session")
		wantStatus(t, "second report", p.report(r, "failed", nil), 409, "Claim already reported")
		wantStatus(t, "sandbox report", p.report(sb, "passed", nil), 409, "Claim already reported")
		wantStatus(t, "bad result", p.report(notReady, "maybe", nil), 400, "Invalid claim")

		// Relay creation and challenges.
		wantStatus(t, "unknown claim type", call(t, s.base+"/api/privacy/v1/relays", map[string]any{"claim-type": "nope"}), 422, "Unknown claim type")
		wantStatus(t, "bad key", call(t, s.base+"/api/privacy/v1/relays", map[string]any{"claim-type": claimAge, "encryption-key-pem": "nope"}), 400, "Invalid encryption key")
		wantStatus(t, "challenge", call(t, s.base+"/api/privacy/v1/relays/challenge", map[string]any{"claim-type": "nope"}), 422, "Unknown claim type")
		wantStatus(t, "missing claim type", call(t, s.base+"/api/privacy/v1/relays", "{}"), 400, "Bad request")
		wantStatus(t, "GET", func() answer {
			resp, err := rpctest.HTTPClient().Get(s.base + "/api/privacy/v1/relays")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return answer{resp.StatusCode, b}
		}(), 405, "Method not allowed")

		// Issuance refusals.
		sign := s.base + "/api/v1/privacy-passes"
		body := map[string]string{"blinded-token": base64.RawURLEncoding.EncodeToString(make([]byte, 256)), "key-id": strings.Repeat("0", 64)}
		wantStatus(t, "no API key", call(t, sign, body), 401, "Unauthorized")
		wantStatus(t, "unknown API key", call(t, sign, body, "Authorization", "Bearer nope"), 401, "Unauthorized")
		wantStatus(t, "unknown key id", call(t, sign, body, "Authorization", "Bearer "+testAPIKey), 404, "Unknown key id")
		wantStatus(t, "malformed", call(t, sign, "[1]", "Authorization", "Bearer "+testAPIKey), 400, "Bad request")

		// Expired: the pass lifetime (1m) after its challenge's expires_at (at most 2h away);
		// the relay (24h) still lives.
		late := passed(claimAge)
		latePass := p.pass(claimAge)
		clock.advance(3 * time.Hour)
		wantStatus(t, "expired pass", p.generateClaim(late, latePass), 401, "Privacy Pass expired")
		// The relay expires after 24h: then it is unknown.
		clock.advance(24 * time.Hour)
		wantStatus(t, "expired relay", p.generateClaim(late, latePass), 404, "Not found")
	})
}

// concurrently runs f(i) for i in [0, n) from n goroutines released together.
func concurrently(n int, f func(i int)) {
	var start, done sync.WaitGroup
	start.Add(1)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			start.Wait()
			f(i)
		}()
	}
	start.Done()
	done.Wait()
}

// TestRelayRaces: one pass against 32 relays at once → exactly one consumed; 32 passes
// against one relay → exactly one.
func TestRelayRaces(t *testing.T) {
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		s, _ := newRelayServer(t, relayArgs(storeArgs)...)
		p := provider{t, s.base}
		const n = 32
		relays := make([]relaySession, n)
		passes := make([]string, n)
		for i := range n {
			relays[i] = p.createRelay(map[string]any{"claim-type": claimAge, "sandbox": true})
			passes[i] = p.pass(claimAge)
		}
		count := func(answers []answer) map[string]int {
			c := map[string]int{}
			for _, a := range answers {
				if a.status == 200 {
					_, consumed := claimOf(t, a)
					c[fmt.Sprint("200 consumed=", consumed)]++
				} else {
					c[fmt.Sprint(a.status, " ", a.title())]++
				}
			}
			return c
		}
		answers := make([]answer, n)
		concurrently(n, func(i int) { answers[i] = p.generateClaim(relays[i], passes[0]) })
		if c := count(answers); c["200 consumed=true"] != 1 || c["409 Privacy Pass already redeemed"] != n-1 {
			t.Fatalf("one pass against %d relays: %v", n, c)
		}
		target := p.createRelay(map[string]any{"claim-type": claimAge, "sandbox": true})
		concurrently(n, func(i int) { answers[i] = p.generateClaim(target, passes[i]) })
		c := count(answers)
		// The pass of the first race is spent: its request may lose either way.
		if c["200 consumed=true"] != 1 || c["409 Relay already redeemed"]+c["409 Privacy Pass already redeemed"] != n-1 {
			t.Fatalf("%d passes against one relay: %v", n, c)
		}
	})
}

// usage reads the admin listener's usage counters.
func usage(t testing.TB, admin string) map[string]int64 {
	t.Helper()
	resp, err := rpctest.HTTPClient().Get(admin + UsagePath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body usageBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, u := range body.Usage {
		out[u.Subject+" "+u.Item] = u.Count
	}
	return out
}

// TestRelayBilling: N issuances count N; a retry with the same Idempotency-Key counts
// once and gets the same signature; the same key with another body is 422.
func TestRelayBilling(t *testing.T) {
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		s, _ := newRelayServer(t, relayArgs(storeArgs, "--admin-listen", "127.0.0.1:0")...)
		p := provider{t, s.base}
		const n = 5
		for range n {
			p.pass(claimAge)
		}
		p.pass(claimOther)
		want := map[string]int64{"apikey:billing " + claimAge: n, "apikey:billing " + claimOther: 1}
		if got := usage(t, s.admin); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("usage %v, want %v", got, want)
		}

		a := call(t, s.base+"/api/privacy/v1/relays/challenge", map[string]string{"claim-type": claimAge})
		keyID := a.str(t, "token-key-id")
		blinded := make([]byte, 256)
		blinded[0], blinded[255] = 0x01, 0x02
		body := map[string]string{"blinded-token": base64.RawURLEncoding.EncodeToString(blinded), "key-id": keyID}
		h := []string{"Authorization", "Bearer " + testAPIKey, "Idempotency-Key", "issue-1"}
		answers := make([]answer, 8)
		concurrently(len(answers), func(i int) { answers[i] = call(t, s.base+"/api/v1/privacy-passes", body, h...) })
		for _, a := range answers {
			if a.status != 200 || !bytes.Equal(a.body, answers[0].body) {
				t.Fatalf("retries with one Idempotency-Key: %d %s, want %s", a.status, a.body, answers[0].body)
			}
		}
		want["apikey:billing "+claimAge]++
		if got := usage(t, s.admin); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("usage after retries %v, want %v", got, want)
		}
		blinded[1] = 0x03
		body["blinded-token"] = base64.RawURLEncoding.EncodeToString(blinded)
		wantStatus(t, "the key with another body", call(t, s.base+"/api/v1/privacy-passes", body, h...), 422, "Idempotency-Key reused")
		if got := usage(t, s.admin); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("usage after a refused reuse %v, want %v", got, want)
		}
	})
}

// TestRelayOff: without relay keys the provider API answers 404 in the errors shape.
func TestRelayOff(t *testing.T) {
	s := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile))
	for _, path := range []string{"/api/privacy/v1/relays", "/api/privacy/v1/relays/challenge", "/api/v1/privacy-passes",
		"/api/privacy/v1/relays/relay_AAAAAAAAAAAAAAAAAAAAAA/generate-claim", "/api/privacy/v1/relay-sessions/claim", "/api/privacy/v1/other"} {
		wantStatus(t, path, call(t, s.base+path, map[string]string{"claim-type": claimAge}), 404, "Not found")
	}
}

// TestRelayCommands: keys generate --rsa, apikeys generate (plain and --json), and
// apikeys usage from the admin listener and from the store.
func TestRelayCommands(t *testing.T) {
	dir := t.TempDir()
	keyFile := dir + "/pass.pem"
	out, err := run(t, "keys", "generate", "--rsa", "--out", keyFile)
	if err != nil || !strings.Contains(out, "token-key-id: ") {
		t.Fatalf("keys generate --rsa: %v %s", err, out)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	if _, err := run(t, "keys", "generate", "--rsa", "--out", keyFile); err == nil {
		t.Fatal("keys generate overwrote a key")
	}
	if _, err := run(t, "keys", "generate", "--rsa", "--bits", "3072", "--out", dir+"/x.pem"); err == nil {
		t.Fatal("a 3072-bit key was generated")
	}

	out, err = run(t, "apikeys", "generate", "--name", "acme", "--json")
	var gen struct{ Name, Key, Hash string }
	if err != nil || json.Unmarshal([]byte(out), &gen) != nil || gen.Name != "acme" || sha256Hex(gen.Key) != gen.Hash {
		t.Fatalf("apikeys generate --json: %v %s", err, out)
	}
	out, err = run(t, "apikeys", "generate", "--name", "acme")
	if err != nil || !strings.Contains(out, "entry: acme=") {
		t.Fatalf("apikeys generate: %v %s", err, out)
	}
	if _, err := run(t, "apikeys", "generate", "--name", "no spaces"); err == nil {
		t.Fatal("a bad name was accepted")
	}
	if _, err := run(t, "apikeys", "generate"); err == nil || !strings.Contains(err.Error(), "--name is required") {
		t.Fatalf("no name: %v", err)
	}

	data := t.TempDir()
	args := append(relayArgs([]string{"--data-dir", data}, "--admin-listen", "127.0.0.1:0"), "--relay-keys", "acme_claim="+keyFile,
		"--api-keys", "acme="+gen.Hash)
	s := startServer(t, newConfig(t, args...))
	p := provider{t, s.base}
	a := call(t, s.base+"/api/privacy/v1/relays/challenge", map[string]string{"claim-type": "acme_claim"})
	if a.status != 200 {
		t.Fatalf("challenge: %d %s", a.status, a.body)
	}
	p.pass(claimAge) // billed to "billing"
	out, err = run(t, "apikeys", "usage", "--admin", s.admin)
	if err != nil || !strings.Contains(out, "billing  "+claimAge+"  1") {
		t.Fatalf("apikeys usage --admin: %v\n%s", err, out)
	}
	if _, err := run(t, "apikeys", "usage", "--data-dir", data); err == nil || !strings.Contains(err.Error(), "--admin") {
		t.Fatalf("apikeys usage on a held embedded store: %v", err)
	}
	s.stop(t)
	out, err = run(t, "apikeys", "usage", "--data-dir", data)
	if err != nil || !strings.Contains(out, "billing  "+claimAge+"  1") {
		t.Fatalf("apikeys usage --data-dir: %v\n%s", err, out)
	}
}

// TestRelayReload: SIGHUP reloads the relay key files (a rotation: the new key first, the
// old one after it, so passes of the old key still redeem), and a broken reload keeps the
// previous state.
func TestRelayReload(t *testing.T) {
	dir := t.TempDir()
	first, second := dir+"/first.pem", dir+"/second.pem"
	copyFile := func(from, to string) {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(relayKeyAge, first)
	copyFile(relayKeyOther, second)
	data := t.TempDir()
	s, _ := newRelayServer(t, "--data-dir", data, "--relay-keys", claimAge+"="+first,
		"--api-keys", "billing="+sha256Hex(testAPIKey), "--verifier-keys", "idv="+sha256Hex(testVerifier), "--relay-sandbox")
	p := provider{t, s.base}
	keyID := func() string {
		return call(t, s.base+"/api/privacy/v1/relays/challenge", map[string]string{"claim-type": claimAge}).str(t, "token-key-id")
	}
	before := keyID()
	oldPass := p.pass(claimAge)

	// A broken key file: the reload fails, the previous key stays in force.
	if err := os.WriteFile(first, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.reload(t); err == nil {
		t.Fatal("a reload with a broken key file succeeded")
	}
	if keyID() != before {
		t.Fatal("a failed reload changed the issuing key")
	}

	// Rotation: the new key first, the old one after it.
	copyFile(relayKeyOther, first)
	copyFile(relayKeyAge, second)
	// The list of files is a setting: a restart on the same store takes the new one (SIGHUP
	// re-reads the files named).
	s.stop(t)
	s2, _ := newRelayServer(t, "--data-dir", data, "--relay-keys", claimAge+"="+first+","+claimAge+"="+second,
		"--api-keys", "billing="+sha256Hex(testAPIKey), "--relay-sandbox")
	p2 := provider{t, s2.base}
	if after := call(t, s2.base+"/api/privacy/v1/relays/challenge", map[string]string{"claim-type": claimAge}).str(t, "token-key-id"); after == before {
		t.Fatal("the issuing key did not change")
	}
	r := p2.createRelay(map[string]any{"claim-type": claimAge, "sandbox": true})
	if _, consumed := claimOf(t, p2.generateClaim(r, oldPass)); !consumed {
		t.Fatal("a pass of the previous key did not redeem after the rotation")
	}
	// SIGHUP after the first file changed back: the old key issues again.
	copyFile(relayKeyAge, first)
	copyFile(relayKeyOther, second)
	if err := s2.reload(t); err != nil {
		t.Fatal(err)
	}
	if got := call(t, s2.base+"/api/privacy/v1/relays/challenge", map[string]string{"claim-type": claimAge}).str(t, "token-key-id"); got != before {
		t.Fatal("SIGHUP did not put the rewritten key file in force")
	}
}

// TestRelayLogsHoldNoSecrets: at debug level, through a whole flow and its refusals, no
// log line holds a relay token or secret, an API or verifier key, a pass, an access token
// or a claim payload.
func TestRelayLogsHoldNoSecrets(t *testing.T) {
	var logs rpctest.LogBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := startServerLogging(t, newConfig(t, relayArgs([]string{"--data-dir", t.TempDir()})...), logger)
	p := provider{t, s.base}
	r := p.relay(claimAge)
	pass := p.pass(claimAge)
	p.generateClaim(r, pass)
	p.report(r, "passed", []map[string]string{{"method": "document", "result": "passed"}})
	a := p.generateClaim(r, pass)
	payload := a.str(t, "claim-payload")
	p.generateClaim(relaySession{token: r.token, secret: "wrong"}, pass)
	call(t, s.base+"/api/v1/privacy-passes", "{}", "Authorization", "Bearer "+testAPIKey+"x")
	p.report(relaySession{access: r.access}, "passed", nil)
	s.stop(t)
	out := logs.String()
	if !strings.Contains(out, `"msg":"relay request"`) {
		t.Fatalf("no relay request was logged:\n%s", out)
	}
	for what, secret := range map[string]string{"relay token": r.token, "relay secret": r.secret, "access token": r.access,
		"API key": testAPIKey, "verifier key": testVerifier, "pass": pass[:40], "claim payload": payload} {
		if strings.Contains(out, secret) {
			t.Errorf("the logs hold the %s", what)
		}
	}
}

// TestRelayPurge: a server drops expired relays, and retires the pass key that no server
// issues with any more once its last pass lifetime has passed (its partition goes; the
// registry keeps the tombstone).
func TestRelayPurge(t *testing.T) {
	dsn := postgresStore(t)[1]
	first, _ := newRelayServer(t, "--database-url", dsn, "--relay-keys", claimAge+"="+relayKeyAge,
		"--relay-sandbox", "--relay-pass-lifetime", "1m")
	provider{t, first.base}.createRelay(map[string]any{"claim-type": claimAge, "sandbox": true})
	first.stop(t)

	second, clock := newRelayServer(t, "--database-url", dsn, "--relay-keys", claimAge+"="+relayKeyOther,
		"--relay-pass-lifetime", "1m", "--relay-purge-interval", "1s")
	clock.advance(25 * time.Hour) // past the relay's 24 h and the first key's last pass (2 h + 1 m)
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var firstKey string
	if err := conn.QueryRow(context.Background(), `SELECT key_id FROM relay_issuing_keys ORDER BY last_issuing_at LIMIT 1`).Scan(&firstKey); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the expired relay is purged and the old key retired", func() bool {
		var relays int
		var retired bool
		err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM relays),
			(SELECT retired_at IS NOT NULL FROM spend_keys WHERE key_id = $1)`, firstKey).Scan(&relays, &retired)
		return err == nil && relays == 0 && retired
	})
	// The key that still issues is kept.
	var live bool
	if err := conn.QueryRow(context.Background(), `SELECT bool_and(retired_at IS NULL) FROM spend_keys WHERE key_id <> $1`, firstKey).Scan(&live); err != nil || !live {
		t.Fatalf("a configured key was retired: %v", err)
	}
	second.stop(t)
}

// TestRelaySecretRotation: a new challenge MAC key signs after a reload, and passes made
// under the old one still redeem.
func TestRelaySecretRotation(t *testing.T) {
	data := t.TempDir()
	args := relayArgs([]string{"--data-dir", data})
	s := startServer(t, newConfig(t, args...))
	p := provider{t, s.base}
	challenge := func(base string) string {
		return call(t, base+"/api/privacy/v1/relays/challenge", map[string]string{"claim-type": claimAge}).str(t, "challenge")
	}
	before := challenge(s.base)
	oldPass := p.pass(claimAge)
	s.stop(t)
	if out, err := run(t, "keys", "rotate-relay-secret", "challenge-mac", "--data-dir", data); err != nil {
		t.Fatalf("rotate: %v %s", err, out)
	}
	if _, err := run(t, "keys", "rotate-relay-secret", "sideways", "--data-dir", data); err == nil {
		t.Fatal("an unknown secret was rotated")
	}
	s2 := startServer(t, newConfig(t, args...))
	p2 := provider{t, s2.base}
	if challenge(s2.base) == before {
		t.Fatal("the challenge MAC did not change after the rotation")
	}
	r := p2.createRelay(map[string]any{"claim-type": claimAge, "sandbox": true})
	if _, consumed := claimOf(t, p2.generateClaim(r, oldPass)); !consumed {
		t.Fatal("a pass made under the previous MAC key did not redeem")
	}
}
