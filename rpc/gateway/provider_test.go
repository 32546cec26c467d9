package gateway_test

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudflare/circl/blindsign/blindrsa"
)

// provider is a fake provider API written for these tests from the
// provider's contract (the relay API's section on the provider): relays,
// challenges, blind issuance with API keys and Idempotency-Keys, and claim
// release with the redeem checks in their order. It signs with circl's
// blindrsa signer and checks passes with crypto/rsa, independently of the
// gateway's client code.
type provider struct {
	t   testing.TB
	srv *httptest.Server

	sk     *rsa.PrivateKey
	der    []byte
	keyID  string
	macKey []byte

	mu      sync.Mutex
	apiKeys map[string]bool
	relays  map[string]*fakeRelay
	spent   map[string]string       // SHA-256(nonce) → relay token that spent it
	signed  map[string]signedAnswer // Idempotency-Key → first answer
	claims  map[string][]byte       // Idempotency-Key → first 200 answer
	seen    []seenRequest
	counts  map[string]int // requests per route

	// intercept, when set, may answer a request itself (returning true).
	// route is one of the route names below; n counts that route's
	// requests, 1 for the first.
	intercept func(w http.ResponseWriter, r *http.Request, route string, n int) bool
	// tamperChallenge may change the challenge answer.
	tamperChallenge func(map[string]string)
	// signWith, when set, signs with another key than the announced one.
	signWith *rsa.PrivateKey
}

// Route names of the fake, for intercept and count.
const (
	routeRelays    = "relays"
	routeChallenge = "challenge"
	routeSign      = "sign"
	routeClaim     = "claim"
	routeHealth    = "healthz"
)

type fakeRelay struct {
	secret    string
	claimType string
	encKey    *rsa.PublicKey
	result    string // "", "passed" or "failed"
	redeemed  string // SHA-256(nonce) of the pass that redeemed it
	payload   string
	expiresAt time.Time
}

type signedAnswer struct {
	body []byte
	sig  []byte
}

type seenRequest struct {
	route  string
	header http.Header
	body   []byte
}

const claimType = "age_over18_united_kingdom"

var (
	fakeKeyOnce sync.Once
	fakeKey     *rsa.PrivateKey
	otherKey    *rsa.PrivateKey
)

func newProvider(t testing.TB) *provider {
	t.Helper()
	fakeKeyOnce.Do(func() {
		var err error
		if fakeKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if otherKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	der, err := x509.MarshalPKIXPublicKey(&fakeKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	p := &provider{
		t:       t,
		sk:      fakeKey,
		der:     der,
		keyID:   hex.EncodeToString(sum[:]),
		macKey:  []byte("fake provider mac key"),
		apiKeys: map[string]bool{testAPIKey: true},
		relays:  map[string]*fakeRelay{},
		spent:   map[string]string{},
		signed:  map[string]signedAnswer{},
		claims:  map[string][]byte{},
		counts:  map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/privacy/v1/relays", p.route(routeRelays, p.createRelay))
	mux.HandleFunc("POST /api/privacy/v1/relays/challenge", p.route(routeChallenge, p.challenge))
	mux.HandleFunc("POST /api/v1/privacy-passes", p.route(routeSign, p.sign))
	mux.HandleFunc("POST /api/privacy/v1/relays/{token}/generate-claim", p.route(routeClaim, p.generateClaim))
	mux.HandleFunc("GET /healthz", p.route(routeHealth, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Write([]byte(`{"status":"ok"}`))
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the gateway called an unknown upstream path: %s %s", r.Method, r.URL.Path)
		fail(w, http.StatusNotFound, "Not found")
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

const testAPIKey = "pk_test_0123456789abcdef"

func (p *provider) route(name string, h func(http.ResponseWriter, *http.Request, []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.counts[name]++
		n := p.counts[name]
		p.seen = append(p.seen, seenRequest{route: name, header: r.Header.Clone(), body: body})
		intercept := p.intercept
		p.mu.Unlock()
		if intercept != nil && intercept(w, r, name, n) {
			return
		}
		h(w, r, body)
	}
}

// count is how many requests reached route.
func (p *provider) count(route string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[route]
}

// total is how many requests reached the fake at all.
func (p *provider) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen)
}

// requests returns the requests that reached route, in order.
func (p *provider) requests(route string) []seenRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []seenRequest
	for _, s := range p.seen {
		if s.route == route {
			out = append(out, s)
		}
	}
	return out
}

// report records the verifier's result for the relay, as the verifier's
// own endpoint would.
func (p *provider) report(relayToken, result string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.relays[relayToken]
	if !ok {
		p.t.Errorf("report: unknown relay")
		return
	}
	r.result = result
}

func fail(w http.ResponseWriter, status int, title string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"title": title}}})
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// member reads a member in kebab-case or camelCase, as the provider must.
func member(m map[string]json.RawMessage, kebab, camel string, v any) bool {
	raw, ok := m[kebab]
	if !ok {
		raw, ok = m[camel]
	}
	return ok && json.Unmarshal(raw, v) == nil
}

func randomText(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (p *provider) createRelay(w http.ResponseWriter, _ *http.Request, body []byte) {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		fail(w, http.StatusBadRequest, "Bad request")
		return
	}
	var ct string
	if !member(m, "claim-type", "claimType", &ct) || ct != claimType {
		fail(w, http.StatusUnprocessableEntity, "Unknown claim type")
		return
	}
	r := &fakeRelay{claimType: ct, secret: randomText(16), expiresAt: time.Now().Add(24 * time.Hour)}
	var keyPEM *string
	if member(m, "encryption-key-pem", "encryptionKeyPem", &keyPEM) && keyPEM != nil {
		block, _ := pem.Decode([]byte(*keyPEM))
		if block == nil || block.Type != "PUBLIC KEY" {
			fail(w, http.StatusBadRequest, "Invalid encryption key")
			return
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		pk, ok := k.(*rsa.PublicKey)
		if err != nil || !ok {
			fail(w, http.StatusBadRequest, "Invalid encryption key")
			return
		}
		r.encKey = pk
	}
	var sandbox bool
	if member(m, "sandbox", "sandbox", &sandbox) && sandbox {
		r.result = "passed"
	}
	token := "relay_" + randomText(16)
	p.mu.Lock()
	p.relays[token] = r
	p.mu.Unlock()
	reply(w, map[string]string{
		"relay-token":                token,
		"relay-secret":               r.secret,
		"relay-session-access-token": "eyJ." + randomText(24) + ".sig",
	})
}

func (p *provider) mac(fields map[string]any, keyID string) string {
	h := hmac.New(sha256.New, p.macKey)
	for _, k := range []string{"token_type", "issuer_name", "origin_info", "expires_at"} {
		b, _ := json.Marshal(fields[k])
		h.Write(b)
		h.Write([]byte{'\n'})
	}
	h.Write([]byte(keyID))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func (p *provider) challenge(w http.ResponseWriter, _ *http.Request, body []byte) {
	var m map[string]json.RawMessage
	var ct string
	if json.Unmarshal(body, &m) != nil || !member(m, "claim-type", "claimType", &ct) || ct != claimType {
		fail(w, http.StatusUnprocessableEntity, "Unknown claim type")
		return
	}
	fields := map[string]any{
		"token_type":  2,
		"issuer_name": "fake-provider",
		"origin_info": "/api/privacy/v1/relays",
		"expires_at":  time.Now().UTC().Truncate(time.Hour).Add(time.Hour).Format(time.RFC3339),
	}
	fields["mac"] = p.mac(fields, p.keyID)
	raw, _ := json.Marshal(fields)
	answer := map[string]string{
		"challenge":    base64.RawURLEncoding.EncodeToString(raw),
		"token-key":    base64.RawURLEncoding.EncodeToString(p.der),
		"token-key-id": p.keyID,
	}
	if p.tamperChallenge != nil {
		p.tamperChallenge(answer)
	}
	reply(w, answer)
}

func (p *provider) sign(w http.ResponseWriter, r *http.Request, body []byte) {
	scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	p.mu.Lock()
	known := scheme == "Bearer" && p.apiKeys[key]
	p.mu.Unlock()
	if !known {
		fail(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	var m map[string]json.RawMessage
	var blindedText, keyID string
	if json.Unmarshal(body, &m) != nil || !member(m, "blinded-token", "blindedToken", &blindedText) || !member(m, "key-id", "keyId", &keyID) {
		fail(w, http.StatusBadRequest, "Bad request")
		return
	}
	if keyID != p.keyID {
		fail(w, http.StatusNotFound, "Not found")
		return
	}
	blinded, err := base64.RawURLEncoding.Strict().DecodeString(blindedText)
	if err != nil || len(blinded) != p.sk.Size() {
		fail(w, http.StatusBadRequest, "Bad request")
		return
	}
	idem := r.Header.Get("Idempotency-Key")
	p.mu.Lock()
	prev, replay := p.signed[idem]
	p.mu.Unlock()
	if idem != "" && replay {
		if string(prev.body) != string(body) {
			fail(w, http.StatusUnprocessableEntity, "Idempotency-Key reused")
			return
		}
		reply(w, map[string]string{"blind-sig": base64.RawURLEncoding.EncodeToString(prev.sig)})
		return
	}
	sig, err := blindrsa.NewSigner(p.sk).BlindSign(blinded)
	if p.signWith != nil {
		// A raw RSA operation under the wrong key (circl's signer would
		// refuse a message above that key's modulus).
		m := new(big.Int).SetBytes(blinded)
		m.Exp(m.Mod(m, p.signWith.N), p.signWith.D, p.signWith.N)
		sig = m.FillBytes(make([]byte, p.sk.Size()))
	}
	if err != nil {
		fail(w, http.StatusBadRequest, "Bad request")
		return
	}
	if idem != "" {
		p.mu.Lock()
		p.signed[idem] = signedAnswer{body: body, sig: sig}
		p.mu.Unlock()
	}
	reply(w, map[string]string{"blind-sig": base64.RawURLEncoding.EncodeToString(sig)})
}

// checkPass verifies a pass the way the provider must, and returns the
// double-spend identity SHA-256(nonce) in hex, or a failure title.
func (p *provider) checkPass(pass string) (spendID, title string, status int) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(pass)
	if err != nil {
		return "", "Invalid Privacy Pass", http.StatusBadRequest
	}
	var pj struct {
		Nonce     string                     `json:"token_nonce"`
		Signature string                     `json:"signature"`
		KeyID     string                     `json:"key_id"`
		Challenge map[string]json.RawMessage `json:"challenge"`
	}
	if json.Unmarshal(raw, &pj) != nil {
		return "", "Invalid Privacy Pass", http.StatusBadRequest
	}
	bad := func() (string, string, int) { return "", "Invalid Privacy Pass", http.StatusUnauthorized }
	if pj.KeyID != p.keyID {
		return bad()
	}
	fields := map[string]any{}
	for _, k := range []string{"token_type", "issuer_name", "origin_info", "expires_at"} {
		var v any
		if json.Unmarshal(pj.Challenge[k], &v) != nil {
			return bad()
		}
		if k == "token_type" {
			if f, ok := v.(float64); !ok || f != 2 {
				return bad()
			}
			v = 2
		}
		fields[k] = v
	}
	var mac string
	if json.Unmarshal(pj.Challenge["mac"], &mac) != nil || !hmac.Equal([]byte(mac), []byte(p.mac(fields, p.keyID))) {
		return bad()
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(pj.Signature)
	if err != nil {
		return bad()
	}
	h := func(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }
	input := append([]byte{0, 2}, h(pj.Nonce)...)
	input = append(input, h(mac)...)
	input = append(input, h(pj.KeyID)...)
	digest := sha512.Sum384(input)
	if rsa.VerifyPSS(&p.sk.PublicKey, crypto.SHA384, digest[:], sig, &rsa.PSSOptions{SaltLength: 48}) != nil {
		return bad()
	}
	return hex.EncodeToString(h(pj.Nonce)), "", 0
}

func (p *provider) generateClaim(w http.ResponseWriter, r *http.Request, _ []byte) {
	idem := r.Header.Get("Idempotency-Key")
	p.mu.Lock()
	rel, ok := p.relays[r.PathValue("token")]
	p.mu.Unlock()
	secret := r.Header.Get("Persona-Relay-Secret")
	if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(rel.secret)) != 1 {
		fail(w, http.StatusNotFound, "Not found")
		return
	}
	p.mu.Lock()
	cached, replay := p.claims[idem]
	p.mu.Unlock()
	if idem != "" && replay {
		w.Header().Set("Content-Type", "application/json")
		w.Write(cached)
		return
	}
	pass, ok := strings.CutPrefix(r.Header.Get("Authorization"), "PrivateToken token=")
	if !ok {
		fail(w, http.StatusBadRequest, "Invalid Privacy Pass")
		return
	}
	pass = strings.Trim(pass, `"`)
	spendID, title, status := p.checkPass(pass)
	if title != "" {
		fail(w, status, title)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case rel.result == "":
		fail(w, http.StatusForbidden, "Claim not ready")
		return
	case rel.redeemed == spendID:
		// The same pass on the same relay: the same claim again.
	case rel.redeemed != "":
		fail(w, http.StatusConflict, "Relay already redeemed")
		return
	case p.spent[spendID] != "":
		fail(w, http.StatusConflict, "Privacy Pass already redeemed")
		return
	default:
		payload, _ := json.Marshal(map[string]any{"claim_type": rel.claimType, "claim_result": rel.result,
			"methodology": []map[string]string{{"method": "document", "result": rel.result}}})
		rel.payload = string(payload)
		if rel.encKey != nil {
			ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, rel.encKey, payload, nil)
			if err != nil {
				p.t.Errorf("encrypting the claim: %v", err)
			}
			rel.payload = base64.StdEncoding.EncodeToString(ct)
		}
		if rel.result == "passed" {
			rel.redeemed = spendID
			p.spent[spendID] = r.PathValue("token")
		}
	}
	answer, _ := json.Marshal(map[string]any{"claim-payload": rel.payload, "token-consumed": rel.result == "passed"})
	if idem != "" && rel.result == "passed" {
		p.claims[idem] = answer
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(answer)
}
