package rpc_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/nistec"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/attest"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// These tests drive POST /api/issue and GET /api/commitments through the
// real handler on a real embedded store (rpctest.Server) over HTTP. The
// answers are checked with verify.VerifyIssueResponse, the extension's
// checks, against the commitments the server serves, and the issued tokens
// are unblinded and redeemed by rpctest's client.

const (
	jsonType = "application/json"
	formType = "application/x-www-form-urlencoded"
)

// issueObserver records every ObserveIssue call.
type issueObserver struct {
	mu       sync.Mutex
	outcomes []rpc.Outcome
	tokens   map[string]int
}

func (o *issueObserver) ObserveIssue(outcome rpc.Outcome, attester string, tokens int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outcomes = append(o.outcomes, outcome)
	if o.tokens == nil {
		o.tokens = map[string]int{}
	}
	o.tokens[attester] += tokens
}

func (o *issueObserver) last() rpc.Outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.outcomes) == 0 {
		return ""
	}
	return o.outcomes[len(o.outcomes)-1]
}

func (o *issueObserver) issued(attester string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.tokens[attester]
}

// issueServer is an rpctest.Server that issues, with its gate and observer.
type issueServer struct {
	*rpctest.Server
	obs *issueObserver
}

func newIssueServer(t *testing.T, gate attest.Config, keys ...*verify.Key) *issueServer {
	t.Helper()
	g, err := attest.New(gate)
	if err != nil {
		t.Fatal(err)
	}
	obs := &issueObserver{}
	s := rpctest.NewServer(t, rpctest.Options{Keys: keys, Issue: &rpc.IssueOptions{Gate: constGate(g), Observer: obs, MaxTokens: 20}})
	return &issueServer{Server: s, obs: obs}
}

// constGate is an IssueOptions.Gate that is always g.
func constGate(g *attest.Gate) func() *attest.Gate { return func() *attest.Gate { return g } }

var alice = rpctest.AttesterKey("alice", "alice-secret-key")

// usage returns the store's usage counters as "subject item" → count.
func usage(t testing.TB, s *rpctest.Server) map[string]int64 {
	t.Helper()
	counts, err := s.Store.(interface {
		Usage(context.Context) ([]spend.UsageCount, error)
	}).Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, c := range counts {
		out[c.Subject+" "+c.Item] = c.Count
	}
	return out
}

func issue(t testing.TB, url, contentType, key, body string) rpctest.IssueAnswer {
	t.Helper()
	a, err := rpctest.Issue(context.Background(), url, contentType, key, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func commitments(t testing.TB, s *rpctest.Server) []rpctest.Commitment {
	t.Helper()
	cs, err := rpctest.Commitments(context.Background(), s.CommitmentsURL)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestIssueAndRedeem: both request encodings, compressed and uncompressed
// points; every answer verifies against the served commitment of its
// version, and every token redeems once.
func TestIssueAndRedeem(t *testing.T) {
	s := newIssueServer(t, attest.Config{Keys: []attest.Key{alice}})
	cs := commitments(t, s.Server)
	if len(cs) != 1 || cs[0].Version != s.Key.ID() {
		t.Fatalf("commitments %+v, want one of version %s", cs, s.Key.ID())
	}
	bindings := verifytest.BrowserBindings()
	total := 0
	for _, c := range []struct {
		contentType  string
		n            int
		uncompressed bool
	}{{jsonType, 1, false}, {jsonType, 20, true}, {formType, 7, false}, {formType + "; charset=UTF-8", 3, true}} {
		toks := rpctest.NewBlindTokens(t, c.n)
		points := rpctest.Blinded(toks)
		if c.uncompressed {
			for i, p := range points {
				points[i] = uncompress(t, p)
			}
		}
		body := rpctest.IssueJSON(rpctest.IssueText(points))
		if strings.HasPrefix(c.contentType, formType) {
			body = rpctest.IssueForm(rpctest.IssueText(points))
		}
		a := issue(t, s.IssueURL, c.contentType, "alice-secret-key", body)
		if a.Status != http.StatusOK {
			t.Fatalf("%s: HTTP %d %s", c.contentType, a.Status, a.Body)
		}
		got, err := verify.VerifyIssueResponse(cs[0].G, cs[0].H, points, a.Signatures)
		if err != nil {
			t.Fatalf("%s: %v", c.contentType, err)
		}
		if got.Version != cs[0].Version || got.PRNG != "shake" || len(got.Signatures) != c.n {
			t.Fatalf("version %q prng %q, %d signatures", got.Version, got.PRNG, len(got.Signatures))
		}
		for i, Z := range got.Signatures {
			tok, err := toks[i].Unblind(Z, bindings)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"success", "-32021"} {
				if _, r := rpctest.Post(t, s.Endpoint, rpctest.Redeem(1, tok)); r.Code() != want {
					t.Fatalf("token %d: %s, want %s", i, r.Code(), want)
				}
			}
		}
		total += c.n
	}
	if got := usage(t, s.Server)[rpc.UsageSubjectPrefix+"alice "+s.Key.ID()]; got != int64(total) {
		t.Errorf("the store counted %d tokens for alice, want %d", got, total)
	}
	if got := s.obs.issued("alice"); got != total {
		t.Errorf("the observer saw %d tokens for alice, want %d", got, total)
	}
}

// TestIssueForm: the answer to a form request is the form body
// signatures=<text>, readable both without percent-decoding (the
// extension v2.0.6 parseSigString) and with it (v3.0.6 qs.parse).
func TestIssueForm(t *testing.T) {
	s := newIssueServer(t, attest.Config{Keys: []attest.Key{alice}})
	toks := rpctest.NewBlindTokens(t, 3)
	a := issue(t, s.IssueURL, formType, "alice-secret-key", "md=x&blinded-tokens="+rpctest.IssueText(rpctest.Blinded(toks))+"&captcha-bypass=true")
	if a.Status != http.StatusOK {
		t.Fatalf("HTTP %d %s", a.Status, a.Body)
	}
	raw, ok := strings.CutPrefix(string(a.Body), "signatures=")
	if !ok || raw != a.Signatures {
		t.Fatalf("body %q is not signatures=<text> with the text as it is", a.Body)
	}
	if _, err := verify.VerifyIssueResponse(verify.BasePoint(), s.Key.Commitment(), rpctest.Blinded(toks), raw); err != nil {
		t.Fatal(err)
	}
}

// TestIssueRefusals: every malformed request gets its code and status,
// and signs and counts nothing.
func TestIssueRefusals(t *testing.T) {
	s := newIssueServer(t, attest.Config{Keys: []attest.Key{alice}})
	good := rpctest.Blinded(rpctest.NewBlindTokens(t, 21))
	uncompressed := uncompress(t, good[0])
	offCurve := append([]byte(nil), uncompressed...)
	offCurve[64] ^= 1
	b64 := base64.StdEncoding.EncodeToString
	text := func(contents ...string) string {
		return rpctest.IssueJSON(b64([]byte(`{"type":"Issue","contents":[` + strings.Join(contents, ",") + `]}`)))
	}
	q := func(p []byte) string { return `"` + b64(p) + `"` }
	cases := []struct {
		name, contentType, body string
		status, code            int
		message                 string
	}{
		{"bad base64", jsonType, rpctest.IssueJSON("not base64!"), 400, -32030, "Invalid issue request: not canonical standard base64"},
		{"not an object", jsonType, rpctest.IssueJSON(b64([]byte(`["Issue"]`))), 400, -32030, "Invalid issue request: not base64 of a JSON object"},
		{"wrong type", jsonType, rpctest.IssueJSON(b64([]byte(`{"type":"Redeem","contents":["AA=="]}`))), 400, -32030, `Invalid issue request: type must be "Issue"`},
		{"empty", jsonType, text(), 400, -32030, "Invalid issue request: contents must not be empty"},
		{"point base64", jsonType, text(q(good[0]), `"@@@@"`), 400, -32031, "Invalid blinded point: not canonical standard base64 (contents[1])"},
		{"off the curve", jsonType, text(q(good[0]), q(offCurve)), 400, -32031, "Invalid blinded point: not a point on P-256 (contents[1])"},
		{"identity", jsonType, text(q([]byte{0})), 400, -32031, "Invalid blinded point: the point at infinity (contents[0])"},
		{"short point", jsonType, text(q(good[0][:32])), 400, -32031, "Invalid blinded point: not a 33- or 65-byte SEC 1 point encoding (contents[0])"},
		{"duplicate", jsonType, text(q(good[0]), q(good[1]), q(uncompressed)), 400, -32032, "Duplicate blinded point: the same point as an earlier element (contents[2])"},
		{"too many", jsonType, rpctest.IssueJSON(rpctest.IssueText(good)), 400, -32033, "Too many tokens in one issue request: at most 20 points"},
		{"form bad base64", formType, "blinded-tokens=%25%25", 400, -32030, "Invalid issue request: not canonical standard base64"},
		{"form without field", formType, "bl_sig_req=x", 400, -32030, "Invalid issue request: the form has no blinded-tokens field"},
		{"form field twice", formType, "blinded-tokens=a&blinded-tokens=b", 400, -32030, "Invalid issue request: the form has more than one blinded-tokens field"},
		{"form not a form", formType, "blinded-tokens=%zz", 400, -32600, "Invalid request: the body is not a valid application/x-www-form-urlencoded form"},
		{"not JSON", jsonType, `{"bl_sig_req":`, 400, -32700, "Parse error: the request body is not JSON"},
		{"JSON array", jsonType, `["x"]`, 400, -32030, "Invalid issue request: the body must be a JSON object with a bl_sig_req string"},
		{"no bl_sig_req", jsonType, `{"blinded-tokens":"x"}`, 400, -32030, "Invalid issue request: the body must be a JSON object with a bl_sig_req string"},
		{"bl_sig_req null", jsonType, `{"bl_sig_req":null}`, 400, -32030, "Invalid issue request: the body must be a JSON object with a bl_sig_req string"},
		{"text/plain", "text/plain", "blinded-tokens=x", 415, -32600, "Invalid request: the Content-Type must be application/json or application/x-www-form-urlencoded"},
		{"no Content-Type", "", "blinded-tokens=x", 415, -32600, "Invalid request: the Content-Type must be application/json or application/x-www-form-urlencoded"},
		{"too large", jsonType, rpctest.IssueJSON(strings.Repeat("A", rpc.DefaultMaxBodyBytes)), 413, -32600, "Invalid request: the request body is larger than the limit of 1048576 bytes"},
	}
	for _, c := range cases {
		a := issue(t, s.IssueURL, c.contentType, "alice-secret-key", c.body)
		if a.Status != c.status || a.Error == nil || a.Error.Code != c.code || a.Error.Message != c.message {
			t.Errorf("%s: HTTP %d %s, want %d %d %q", c.name, a.Status, a.Body, c.status, c.code, c.message)
		}
		if got := s.obs.last(); got == rpc.OutcomeSuccess || got == rpc.OutcomeInternal {
			t.Errorf("%s: observed as %s", c.name, got)
		}
	}
	if n := s.obs.issued("alice"); n != 0 {
		t.Errorf("%d tokens issued by refused requests", n)
	}
	if u := usage(t, s.Server); len(u) != 0 {
		t.Errorf("refused requests were counted: %v", u)
	}
}

// TestIssueAttestation: without a key, with a wrong or malformed one,
// and with each configured key; open issuance admits only requests
// without an Authorization header.
func TestIssueAttestation(t *testing.T) {
	bob := rpctest.AttesterKey("bob", "bob-secret-key")
	for _, open := range []bool{false, true} {
		t.Run(fmt.Sprintf("open=%v", open), func(t *testing.T) {
			s := newIssueServer(t, attest.Config{Keys: []attest.Key{alice, bob}, Open: open, Rate: 1, Burst: 100})
			body := func() string {
				return rpctest.IssueJSON(rpctest.IssueText(rpctest.Blinded(rpctest.NewBlindTokens(t, 2))))
			}
			for _, c := range []struct {
				name, header string
				status       int
				challenge    string
			}{
				{"no key", "", 401, `Bearer realm="ppredeem"`},
				{"wrong key", "Bearer alice-secret-kez", 401, `Bearer realm="ppredeem", error="invalid_token"`},
				{"hash as key", "Bearer " + fmt.Sprintf("%x", alice.Hash), 401, `Bearer realm="ppredeem", error="invalid_token"`},
				{"basic", "Basic YWxpY2U6eA==", 401, `Bearer realm="ppredeem", error="invalid_token"`},
				{"empty bearer", "Bearer ", 401, `Bearer realm="ppredeem", error="invalid_token"`},
				{"alice", "Bearer alice-secret-key", 200, ""},
				{"bob, scheme in lower case", "bearer bob-secret-key", 200, ""},
			} {
				req, err := http.NewRequest("POST", s.IssueURL, strings.NewReader(body()))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", jsonType)
				if c.header != "" {
					req.Header.Set("Authorization", c.header)
				}
				resp, err := rpctest.HTTPClient().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				status, challenge := c.status, c.challenge
				if open && c.name == "no key" {
					status, challenge = 200, ""
				}
				if resp.StatusCode != status || resp.Header.Get("WWW-Authenticate") != challenge {
					t.Errorf("%s: HTTP %d WWW-Authenticate %q, want %d %q", c.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), status, challenge)
				}
			}
			a := issue(t, s.IssueURL, jsonType, "", body())
			if !open && (a.Error == nil || a.Error.Code != -32034 || a.Error.Message != "Not attested: an attester key is required (Authorization: Bearer <key>)") {
				t.Errorf("no key: %s", a.Body)
			}
			a = issue(t, s.IssueURL, jsonType, "nope", body())
			if a.Error == nil || a.Error.Code != -32034 || a.Error.Message != "Not attested: the attester key is not valid" {
				t.Errorf("wrong key: %s", a.Body)
			}
			want := map[string]int64{rpc.UsageSubjectPrefix + "alice " + s.Key.ID(): 2, rpc.UsageSubjectPrefix + "bob " + s.Key.ID(): 2}
			if open {
				want[rpc.UsageSubjectPrefix+"open "+s.Key.ID()] = 4
			}
			if got := usage(t, s.Server); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("usage %v, want %v", got, want)
			}
		})
	}
}

// clock is a settable clock for the rate limits.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestOpenIssuanceRateLimit: tokens, not requests, are limited per client
// address; a refused request takes nothing from the bucket; a trusted
// proxy's X-Forwarded-For names the client.
func TestOpenIssuanceRateLimit(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	s := newIssueServer(t, attest.Config{
		Open: true, Rate: 1, Burst: 10, Now: clk.Now,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	ask := func(n int, forwardedFor string) rpctest.IssueAnswer {
		t.Helper()
		req, err := http.NewRequest("POST", s.IssueURL, strings.NewReader(rpctest.IssueJSON(rpctest.IssueText(rpctest.Blinded(rpctest.NewBlindTokens(t, n))))))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", jsonType)
		if forwardedFor != "" {
			req.Header.Set("X-Forwarded-For", forwardedFor)
		}
		resp, err := rpctest.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return rpctest.IssueAnswer{Status: resp.StatusCode, Header: resp.Header}
	}
	const client = "198.51.100.7"
	if a := ask(6, client); a.Status != 200 {
		t.Fatalf("6 of 10: HTTP %d", a.Status)
	}
	a := ask(5, client)
	if a.Status != 429 || a.Header.Get("Retry-After") != "1" {
		t.Fatalf("5 more of the 4 left: HTTP %d Retry-After %q, want 429 1", a.Status, a.Header.Get("Retry-After"))
	}
	if a := ask(4, client); a.Status != 200 {
		t.Fatalf("the 4 left after a refusal: HTTP %d (the refusal took tokens)", a.Status)
	}
	if a := ask(3, client); a.Status != 429 || a.Header.Get("Retry-After") != "3" {
		t.Fatalf("3 of 0 left: HTTP %d Retry-After %q, want 429 3", a.Status, a.Header.Get("Retry-After"))
	}
	for _, other := range []string{"198.51.100.8", client + ", 203.0.113.9", "2001:db8::1", "2001:db9::1"} {
		if a := ask(10, other); a.Status != 200 {
			t.Fatalf("client %q shares a bucket: HTTP %d", other, a.Status)
		}
	}
	if a := ask(1, "2001:db8::2"); a.Status != 429 {
		t.Fatalf("another address of one /64 has its own bucket: HTTP %d", a.Status)
	}
	if a := ask(1, client+", 127.0.0.5"); a.Status != 429 {
		t.Fatalf("a trusted hop hid the client: HTTP %d", a.Status)
	}
	if a := ask(1, ""); a.Status != 200 {
		t.Fatalf("the proxy's own address: HTTP %d", a.Status)
	}
	clk.add(3 * time.Second)
	if a := ask(3, client); a.Status != 200 {
		t.Fatalf("after 3 s at 1 token/s: HTTP %d", a.Status)
	}
	if a := ask(11, "192.0.2.1"); a.Status != 429 || a.Header.Get("Retry-After") != "" {
		t.Fatalf("more than the burst: HTTP %d Retry-After %q, want 429 without Retry-After", a.Status, a.Header.Get("Retry-After"))
	}
	if got := usage(t, s.Server)[rpc.UsageSubjectPrefix+"open "+s.Key.ID()]; got != 6+4+40+1+3 {
		t.Errorf("open issuance counted %d tokens, want 54", got)
	}
}

// TestIssueUncounted: an issuance the store cannot count is not answered
// (-32603, 500), and open issuance gets its tokens back.
func TestIssueUncounted(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	g, err := attest.New(attest.Config{Open: true, Rate: 1, Burst: 5, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	obs := &issueObserver{}
	s := rpctest.NewServer(t, rpctest.Options{Issue: &rpc.IssueOptions{Gate: constGate(g), Observer: obs}})
	if err := s.Store.Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		a := issue(t, s.IssueURL, jsonType, "", rpctest.IssueJSON(rpctest.IssueText(rpctest.Blinded(rpctest.NewBlindTokens(t, 5)))))
		if a.Status != 500 || a.Error == nil || a.Error.Code != -32603 || a.Error.Message != "Internal error" || a.Signatures != "" {
			t.Fatalf("uncounted issuance: HTTP %d %s", a.Status, a.Body)
		}
		if obs.last() != rpc.OutcomeInternal {
			t.Fatalf("observed as %s", obs.last())
		}
	}
	if obs.issued(attest.OpenAttester) != 0 {
		t.Error("uncounted tokens observed as issued")
	}
}

// TestCommitmentsAndRotation: the first key signs, every key verifies
// redemptions, and /api/commitments lists every key, the signing key
// first, with its version, G, H and the expiry.
func TestCommitmentsAndRotation(t *testing.T) {
	newKey, oldKey := verifytest.NewKey(t), verifytest.Key()
	now := time.Date(2026, 3, 1, 12, 0, 0, 500_000_000, time.UTC)
	g, err := attest.New(attest.Config{Keys: []attest.Key{alice}})
	if err != nil {
		t.Fatal(err)
	}
	s := rpctest.NewServer(t, rpctest.Options{Keys: []*verify.Key{newKey, oldKey}, Issue: &rpc.IssueOptions{
		Gate: constGate(g), CommitmentExpiry: 48 * time.Hour, Now: func() time.Time { return now },
	}})
	cs := commitments(t, s)
	if len(cs) != 2 {
		t.Fatalf("%d commitments, want 2", len(cs))
	}
	for i, k := range []*verify.Key{newKey, oldKey} {
		c := cs[i]
		if c.Version != k.ID() || string(c.G) != string(verify.BasePoint()) || string(c.H) != string(k.Commitment()) || c.Expiry != "2026-03-03T12:00:00Z" {
			t.Errorf("commitment %d: %+v, want version %s, H of the key, expiry 2026-03-03T12:00:00Z", i, c, k.ID())
		}
	}
	toks := rpctest.NewBlindTokens(t, 4)
	a := issue(t, s.IssueURL, jsonType, "alice-secret-key", rpctest.IssueJSON(rpctest.IssueText(rpctest.Blinded(toks))))
	if a.Status != 200 {
		t.Fatalf("HTTP %d %s", a.Status, a.Body)
	}
	if _, err := verify.VerifyIssueResponse(cs[1].G, cs[1].H, rpctest.Blinded(toks), a.Signatures); err == nil {
		t.Fatal("the proof verifies under the old key")
	}
	got, err := verify.VerifyIssueResponse(cs[0].G, cs[0].H, rpctest.Blinded(toks), a.Signatures)
	if err != nil || got.Version != newKey.ID() {
		t.Fatalf("the proof does not verify under the new key: %v", err)
	}
	issuedTok, err := toks[0].Unblind(got.Signatures[0], verifytest.BrowserBindings())
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]verifytest.Token{"issued under the new key": issuedTok, "of the old key": verifytest.Mint(t, oldKey, verify.Increment)} {
		if _, r := rpctest.Post(t, s.Endpoint, rpctest.Redeem(1, tok)); r.Code() != "success" {
			t.Errorf("a token %s: %s", name, r.Code())
		}
	}
	// The wrong HTTP methods, in the JSON-RPC error shape.
	for _, c := range []struct{ method, url, message string }{
		{"POST", s.CommitmentsURL, "HTTP method POST is not allowed: use GET"},
		{"DELETE", s.CommitmentsURL, "HTTP method DELETE is not allowed: use GET"},
		{"GET", s.IssueURL, "HTTP method GET is not allowed: use POST"},
	} {
		status, r := rpctest.Call(t, c.method, c.url, "")
		if status != 405 || r.Error == nil || r.Error.Code != -32041 || r.Error.Message != c.message {
			t.Errorf("%s %s: HTTP %d %+v", c.method, c.url, status, r.Error)
		}
	}
	resp, err := rpctest.HTTPClient().Head(s.CommitmentsURL)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestManyIssuancesOverHTTP: issuances of 1 to 10 tokens, every answer's
// proof verified as the extension does. verify's TestSignBatchManyIssuances
// runs 10,000 without HTTP.
func TestManyIssuancesOverHTTP(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	s := newIssueServer(t, attest.Config{Keys: []attest.Key{alice}})
	G, H := verify.BasePoint(), s.Key.Commitment()
	points := rpctest.Blinded(rpctest.NewBlindTokens(t, 10))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				batch := points[:1+i%10]
				a, err := rpctest.Issue(context.Background(), s.IssueURL, jsonType, "alice-secret-key", rpctest.IssueJSON(rpctest.IssueText(batch)))
				if err == nil && a.Status != 200 {
					err = fmt.Errorf("HTTP %d %s", a.Status, a.Body)
				}
				if err == nil {
					_, err = verify.VerifyIssueResponse(G, H, batch, a.Signatures)
				}
				if err != nil {
					errs <- fmt.Errorf("issuance %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// uncompress re-encodes a SEC 1 point uncompressed.
func uncompress(t testing.TB, p []byte) []byte {
	t.Helper()
	P, err := nistec.NewP256Point().SetBytes(p)
	if err != nil {
		t.Fatal(err)
	}
	return P.Bytes()
}

// FuzzIssue drives POST /api/issue with any Content-Type, Authorization
// and body: no input may panic, hang, fail internally or be answered
// outside the error table, and every success is a verifying issue response
// in the request's encoding.
func FuzzIssue(f *testing.F) {
	g, err := attest.New(attest.Config{Keys: []attest.Key{alice}, Open: true, Rate: 1e6, Burst: 1e6})
	if err != nil {
		f.Fatal(err)
	}
	s := rpctest.NewServer(f, rpctest.Options{Issue: &rpc.IssueOptions{Gate: constGate(g), MaxTokens: 5}})
	points := rpctest.Blinded(rpctest.NewBlindTokens(f, 3))
	text := rpctest.IssueText(points)
	for _, seed := range [][3]string{
		{jsonType, "Bearer alice-secret-key", rpctest.IssueJSON(text)},
		{formType, "", rpctest.IssueForm(text)},
		{formType, "", "blinded-tokens=" + text},
		{jsonType, "", rpctest.IssueJSON(rpctest.IssueText(append(points, points[0])))},
		{jsonType, "Bearer x", `{"bl_sig_req":1}`},
		{"text/plain", "", "{}"},
		{formType + "; charset=utf-8", "Basic x", "a=b&&c"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, contentType, auth, body string) {
		req := httptest.NewRequest("POST", rpc.IssuePath, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { s.Handler.ServeHTTP(rec, req); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("handler hung on %q", body)
		}
		if rec.Code != http.StatusOK {
			if rec.Code == http.StatusInternalServerError {
				t.Fatalf("internal error on %q %q %q: %s", contentType, auth, body, rec.Body)
			}
			checkOne(t, rec.Code, rec.Body.Bytes(), body)
			return
		}
		answer := rec.Body.String()
		var sigs string
		if rec.Header().Get("Content-Type") == formType {
			var ok bool
			if sigs, ok = strings.CutPrefix(answer, "signatures="); !ok {
				t.Fatalf("form answer %q", answer)
			}
		} else {
			a, err := rpctest.Decode([]byte(`{"jsonrpc":"2.0","result":` + answer + `}`))
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]string
			if err := json.Unmarshal(a.Result, &m); err != nil || len(m) != 1 {
				t.Fatalf("JSON answer %q", answer)
			}
			sigs = m["signatures"]
		}
		// The blinded points are somewhere in the fuzzed body; without them
		// the answer must still decode up to the count of signed points.
		got, err := verify.VerifyIssueResponse(verify.BasePoint(), s.Key.Commitment(), nil, sigs)
		if err == nil || !strings.Contains(err.Error(), "number of signed points") {
			t.Fatalf("the answer does not decode to signed points: %v (got %+v)", err, got)
		}
	})
}
