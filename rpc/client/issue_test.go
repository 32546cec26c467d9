package client_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc/client"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// TestIssueRedeemEndToEnd is issue 14's test of the issuer from the
// client's side: the client issues batches of 1, 10 and 100 tokens
// (commitments fetched from /api/commitments, proof verified, tokens
// unblinded), redeems every token once at /api/redeem with success, and a
// second redemption of each is -32021.
func TestIssueRedeemEndToEnd(t *testing.T) {
	for _, n := range []int{1, 10, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			svc := serviceUnderTest(t)
			c := newClient(t, svc.URL+"/api/redeem", nil)
			ctx := context.Background()
			tokens, err := c.Issue(ctx, n, &client.IssueOptions{AttesterKey: testAttesterKey})
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			if len(tokens) != n {
				t.Fatalf("%d tokens, want %d", len(tokens), n)
			}
			seen := map[string]bool{}
			for _, tok := range tokens {
				if seen[string(tok.Input())] {
					t.Fatal("two tokens with one input")
				}
				seen[string(tok.Input())] = true
				if err := c.RedeemToken(ctx, tok, browserBindings, nil); err != nil {
					t.Fatalf("first redemption: %v", err)
				}
			}
			if spent, err := svc.Spent(ctx); err != nil || spent != int64(n) {
				t.Fatalf("the server holds %d spent tokens (%v), want %d", spent, err, n)
			}
			for _, tok := range tokens {
				err := c.RedeemToken(ctx, tok, browserBindings, nil)
				wantKinds(t, err, "ErrAlreadySpent")
				if e := asError(t, err); e.Code != -32021 || e.HTTPStatus != 403 {
					t.Fatalf("second redemption: code %d, HTTP %d; want -32021, 403", e.Code, e.HTTPStatus)
				}
			}
			if spent, err := svc.Spent(ctx); err != nil || spent != int64(n) {
				t.Fatalf("after the second redemptions the server holds %d spent tokens (%v), want %d", spent, err, n)
			}
		})
	}
}

// TestIssueRedeemEndToEndShapes: the form request and answer the extension
// uses, compressed and uncompressed blinded points, commitments given
// explicitly; tokens redeemed with the ready-made request of
// Token.RedeemRequest POSTed as is, and with the compressed key derivation.
func TestIssueRedeemEndToEndShapes(t *testing.T) {
	svc := serviceUnderTest(t)
	c := newClient(t, svc.URL+"/api/redeem", nil)
	ctx := context.Background()
	for _, form := range []bool{false, true} {
		for _, uncompressed := range []bool{false, true} {
			t.Run(fmt.Sprintf("form=%v uncompressed=%v", form, uncompressed), func(t *testing.T) {
				tokens, err := c.Issue(ctx, 3, &client.IssueOptions{
					AttesterKey:  testAttesterKey,
					Form:         form,
					Uncompressed: uncompressed,
					Commitments:  []client.Commitment{{H: svc.Key.Commitment()}},
				})
				if err != nil {
					t.Fatalf("Issue: %v", err)
				}
				body, err := tokens[0].RedeemRequest(browserBindings, nil)
				if err != nil {
					t.Fatal(err)
				}
				if status, resp := rpctest.Post(t, svc.URL+"/api/redeem", string(body)); status != 200 || resp.Error != nil {
					t.Fatalf("the ready-made request: HTTP %d, %+v", status, resp)
				}
				if err := c.RedeemToken(ctx, tokens[1], browserBindings, &client.RedeemOptions{Compressed: true}); err != nil {
					t.Fatalf("compressed redemption: %v", err)
				}
				other := []string{"api.example.net", "POST /v1/thing"}
				if err := c.RedeemToken(ctx, tokens[2], other, nil); err != nil {
					t.Fatalf("redemption for other bindings: %v", err)
				}
				wantKinds(t, c.RedeemToken(ctx, tokens[0], browserBindings, nil), "ErrAlreadySpent")
			})
		}
	}
}

// TestIssueSendsAttesterKey: the key goes as a Bearer token, and no
// Authorization header goes without one.
func TestIssueSendsAttesterKey(t *testing.T) {
	iss := &issuer{key: verifytest.Key(), version: keyVersion}
	base := startIssuer(t, iss)
	c := newClient(t, base+"/api/redeem", nil)
	for _, key := range []string{"k3y-Z~._+/=", ""} {
		if _, err := c.Issue(context.Background(), 1, &client.IssueOptions{AttesterKey: key}); err != nil {
			t.Fatalf("Issue: %v", err)
		}
	}
	_, auth := iss.stats()
	if len(auth) != 2 || auth[0] != "Bearer k3y-Z~._+/=" || auth[1] != "" {
		t.Errorf("Authorization headers %q", auth)
	}
}

// TestIssueForgedAnswers: an answer signed with another key than the
// committed one, or changed after signing, gives no token.
func TestIssueForgedAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		other  bool // sign with another key than the test key
		tamper func(map[string]any)
		kind   string
	}{
		{name: "another key", other: true, kind: "ErrBadProof"},
		{name: "signatures swapped", tamper: func(o map[string]any) {
			s := o["sigs"].([]any)
			s[0], s[1] = s[1], s[0]
		}, kind: "ErrBadProof"},
		{name: "a signature replaced", tamper: func(o map[string]any) {
			s := o["sigs"].([]any)
			s[0] = s[1]
		}, kind: "ErrBadProof"},
		{name: "prng relabelled", tamper: func(o map[string]any) { o["prng"] = "hkdf" }, kind: "ErrBadProof"},
		{name: "one signature less", tamper: func(o map[string]any) {
			o["sigs"] = o["sigs"].([]any)[1:]
		}, kind: "ErrBadIssueResponse"},
		{name: "no proof", tamper: func(o map[string]any) { delete(o, "proof") }, kind: "ErrBadIssueResponse"},
		{name: "unknown version", tamper: func(o map[string]any) { o["version"] = "2.0" }, kind: "ErrNoCommitment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := verifytest.Key()
			if tc.other {
				key = verifytest.NewKey(t)
			}
			iss := &issuer{key: key, version: keyVersion, tamper: tc.tamper}
			base := startIssuer(t, iss)
			c := newClient(t, base+"/api/redeem", &client.Options{MaxAttempts: 3, Backoff: time.Millisecond})
			tokens, err := c.Issue(context.Background(), 4, &client.IssueOptions{Commitments: testKeyCommitment(keyVersion)})
			if tokens != nil {
				t.Fatalf("%d tokens from a forged answer", len(tokens))
			}
			wantKinds(t, err, tc.kind)
			if e := asError(t, err); e.HTTPStatus != 200 || e.Attempts != 1 || e.Code != 0 {
				t.Errorf("HTTP %d, %d attempts, code %d; want 200, 1, 0", e.HTTPStatus, e.Attempts, e.Code)
			}
			if n, _ := iss.stats(); n != 1 {
				t.Errorf("the issuer got %d requests, want 1", n)
			}
		})
	}
}

// fixedAnswer serves status and body to every issue request and counts
// them; commitments are the test key's.
func fixedAnswer(t *testing.T, status int, contentType, body string) (base string, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/issue", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, hits
}

// TestIssueRefused: an issuer's error answer is ErrIssueRefused with its
// code and message when it sends a JSON-RPC error, its status alone
// otherwise; the body is never quoted and nothing is repeated.
func TestIssueRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		code   int
		msg    string
	}{
		{"not attested", 401, `{"jsonrpc":"2.0","id":null,"error":{"code":-32050,"message":"not attested"}}`, -32050, "not attested"},
		{"rate limited", 429, `{"jsonrpc":"2.0","id":null,"error":{"code":-32051,"message":"rate\nlimited"}}`, -32051, "rate limited"},
		{"bad points", 400, `{"error":{"code":-32602,"message":"bad point"}}`, -32602, "bad point"},
		{"error with 200", 200, `{"jsonrpc":"2.0","id":null,"error":{"code":-32050,"message":"not attested"}}`, -32050, "not attested"},
		{"HTML 502", 502, `<html>Bad Gateway</html>`, 0, "the issuer answered HTTP 502 without signatures"},
		{"error without code", 403, `{"error":{"message":"no"}}`, 0, "the issuer answered HTTP 403 without signatures"},
		{"empty 500", 500, ``, 0, "the issuer answered HTTP 500 without signatures"},
		{"redirect", 307, ``, 0, "the issuer answered HTTP 307 without signatures"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, hits := fixedAnswer(t, tc.status, "application/json", tc.body)
			c := newClient(t, base+"/api/redeem", &client.Options{MaxAttempts: 3, Backoff: time.Millisecond})
			_, err := c.Issue(context.Background(), 2, &client.IssueOptions{Commitments: testKeyCommitment(""), AttesterKey: "s3cret-attester"})
			wantKinds(t, err, "ErrIssueRefused")
			e := asError(t, err)
			if e.Code != tc.code || e.Message != tc.msg || e.HTTPStatus != tc.status || e.Attempts != 1 {
				t.Errorf("got code %d %q HTTP %d, %d attempts; want %d %q HTTP %d, 1", e.Code, e.Message, e.HTTPStatus, e.Attempts, tc.code, tc.msg, tc.status)
			}
			if s := err.Error(); strings.Contains(s, "Bad Gateway") || strings.Contains(s, "s3cret") {
				t.Errorf("the error quotes the body or the key: %s", s)
			}
			if hits.Load() != 1 {
				t.Errorf("%d requests, want 1", hits.Load())
			}
		})
	}
}

// TestIssueUnreadableAnswers: a 2xx answer that is not an issue response
// is ErrBadIssueResponse.
func TestIssueUnreadableAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		form bool
		body string
	}{
		{"text", false, "signatures"},
		{"JSON array", false, `["x"]`},
		{"no member", false, `{"sigs":[]}`},
		{"member a number", false, `{"signatures":1}`},
		{"member empty", false, `{"signatures":""}`},
		{"not base64", false, `{"signatures":"%%%"}`},
		{"form without field", true, "sigs=x"},
		{"form twice", true, "signatures=eA&signatures=eA"},
		{"form bad escape", true, "signatures=%zz"},
		{"form of JSON", true, `{"signatures":"eA=="}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, _ := fixedAnswer(t, 200, "application/json", tc.body)
			c := newClient(t, base+"/api/redeem", nil)
			_, err := c.Issue(context.Background(), 1, &client.IssueOptions{Commitments: testKeyCommitment(""), Form: tc.form})
			wantKinds(t, err, "ErrBadIssueResponse")
		})
	}
}

// TestIssueCommitments: without commitments nothing is issued; an expired
// one, or one of another version, refuses the answer.
func TestIssueCommitments(t *testing.T) {
	ctx := context.Background()
	t.Run("fetch fails", func(t *testing.T) {
		iss := &issuer{key: verifytest.Key(), version: keyVersion}
		base := startIssuer(t, iss)
		c := newClient(t, base+"/api/redeem", nil)
		_, err := c.Issue(ctx, 1, &client.IssueOptions{CommitmentsURL: base + "/nowhere"})
		wantKinds(t, err, "ErrNoCommitment")
		if e := asError(t, err); e.HTTPStatus != 404 || e.Message != "the commitments URL answered HTTP 404" {
			t.Errorf("HTTP %d %q", e.HTTPStatus, e.Message)
		}
		if n, _ := iss.stats(); n != 0 {
			t.Errorf("the issuer got %d requests, want 0", n)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		c := newClient(t, closedEndpoint(t), &client.Options{MaxAttempts: 2, Backoff: time.Millisecond})
		_, err := c.Issue(ctx, 1, nil)
		wantKinds(t, err, "ErrNoCommitment")
		if e := asError(t, err); e.Attempts != 2 {
			t.Errorf("%d attempts, want 2", e.Attempts)
		}
	})
	t.Run("not commitments", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, `{"keys":["x"]}`)
		}))
		t.Cleanup(srv.Close)
		c := newClient(t, srv.URL+"/api/redeem", nil)
		_, err := c.Issue(ctx, 1, nil)
		wantKinds(t, err, "ErrNoCommitment")
	})
	t.Run("expired", func(t *testing.T) {
		iss := &issuer{key: verifytest.Key(), version: keyVersion}
		c := newClient(t, startIssuer(t, iss)+"/api/redeem", nil)
		cs := testKeyCommitment(keyVersion)
		cs[0].Expiry = time.Now().Add(-time.Second)
		_, err := c.Issue(ctx, 1, &client.IssueOptions{Commitments: cs})
		wantKinds(t, err, "ErrNoCommitment")
		if e := asError(t, err); !strings.Contains(e.Message, "expired") {
			t.Errorf("Message %q", e.Message)
		}
	})
	t.Run("other version", func(t *testing.T) {
		iss := &issuer{key: verifytest.Key(), version: keyVersion}
		c := newClient(t, startIssuer(t, iss)+"/api/redeem", nil)
		_, err := c.Issue(ctx, 1, &client.IssueOptions{Commitments: testKeyCommitment("0.9")})
		wantKinds(t, err, "ErrNoCommitment")
	})
	t.Run("empty list fetches", func(t *testing.T) {
		iss := &issuer{key: verifytest.Key(), version: keyVersion}
		c := newClient(t, startIssuer(t, iss)+"/api/redeem", nil)
		if _, err := c.Issue(ctx, 1, &client.IssueOptions{Commitments: []client.Commitment{}}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Commitments", func(t *testing.T) {
		iss := &issuer{key: verifytest.Key(), version: keyVersion}
		c := newClient(t, startIssuer(t, iss)+"/api/redeem", nil)
		cs, err := c.Commitments(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].Version != keyVersion || !bytes.Equal(cs[0].H, verifytest.Key().Commitment()) || cs[0].Expiry.IsZero() {
			t.Errorf("commitments %+v", cs)
		}
	})
}

// TestIssueNotDelivered: an issuer that cannot be reached is tried
// MaxAttempts times and issues nothing.
func TestIssueNotDelivered(t *testing.T) {
	c := newClient(t, closedEndpoint(t), &client.Options{MaxAttempts: 3, Backoff: time.Millisecond})
	_, err := c.Issue(context.Background(), 1, &client.IssueOptions{Commitments: testKeyCommitment("")})
	wantKinds(t, err, "ErrNotSent")
	if e := asError(t, err); e.Attempts != 3 {
		t.Errorf("%d attempts, want 3", e.Attempts)
	}
	if !strings.Contains(err.Error(), "nothing was issued") {
		t.Errorf("error %q does not say nothing was issued", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Issue(ctx, 1, &client.IssueOptions{Commitments: testKeyCommitment("")})
	wantKinds(t, err, "ErrNotSent")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
}

// TestIssueArguments: bad arguments are refused before any network use.
func TestIssueArguments(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL+"/api/redeem", nil)
	for name, tc := range map[string]struct {
		n    int
		opts client.IssueOptions
	}{
		"no token":            {0, client.IssueOptions{}},
		"negative":            {-1, client.IssueOptions{}},
		"too many":            {client.MaxIssueTokens + 1, client.IssueOptions{}},
		"key with a space":    {1, client.IssueOptions{AttesterKey: "a b"}},
		"key with a newline":  {1, client.IssueOptions{AttesterKey: "a\r\nX-Injected: 1"}},
		"key not ASCII":       {1, client.IssueOptions{AttesterKey: "clé"}},
		"endpoint not http":   {1, client.IssueOptions{Endpoint: "ftp://example.com/api/issue"}},
		"endpoint relative":   {1, client.IssueOptions{Endpoint: "/api/issue"}},
		"commitments not URL": {1, client.IssueOptions{CommitmentsURL: "commitments.json"}},
	} {
		_, err := c.Issue(context.Background(), tc.n, &tc.opts)
		var e *client.Error
		if err == nil || errors.As(err, &e) {
			t.Errorf("%s: %v, want a plain error", name, err)
		}
		if strings.Contains(fmt.Sprint(err), "X-Injected") {
			t.Errorf("%s: the error quotes the key: %v", name, err)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("the server got %d requests, want 0", hits.Load())
	}
}

// TestTokenStorage: a token survives MarshalJSON and UnmarshalJSON, and
// fmt never prints its secrets.
func TestTokenStorage(t *testing.T) {
	svc := serviceUnderTest(t)
	c := newClient(t, svc.URL+"/api/redeem", nil)
	tokens, err := c.Issue(context.Background(), 1, &client.IssueOptions{AttesterKey: testAttesterKey})
	if err != nil {
		t.Fatal(err)
	}
	tok := tokens[0]
	stored, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	var back client.Token
	if err := json.Unmarshal(stored, &back); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Input(), tok.Input()) || !bytes.Equal(back.SignedPoint(), tok.SignedPoint()) {
		t.Fatal("the token changed in JSON")
	}
	if err := c.RedeemToken(context.Background(), &back, browserBindings, nil); err != nil {
		t.Fatalf("redeeming the stored token: %v", err)
	}

	printed := fmt.Sprintf("%v %+v %#v %s %v %+v", tok, tok, tok, tok, *tok, struct{ T client.Token }{*tok})
	for _, secret := range [][]byte{tok.Input(), tok.SignedPoint()} {
		for _, form := range []string{hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret), fmt.Sprint(secret)} {
			if strings.Contains(printed, form) {
				t.Fatalf("fmt prints a secret of the token: %s", printed)
			}
		}
	}

	for _, bad := range []string{`[]`, `{"token":"","N":""}`, `{"token":"AA==","N":"AA=="}`, `{"token":"AA==","N":"%"}`} {
		var tk client.Token
		if err := json.Unmarshal([]byte(bad), &tk); err == nil {
			t.Errorf("%s: read as a token", bad)
		}
	}
	if _, err := tok.RedeemRequest(browserBindings, &client.RedeemOptions{Method: "swu"}); !errors.Is(err, client.ErrInvalidParams) {
		t.Errorf("RedeemRequest with swu: %v", err)
	}
	if err := c.RedeemToken(context.Background(), tok, []string{"\xff"}, nil); !errors.Is(err, client.ErrInvalidParams) {
		t.Errorf("RedeemToken with a binding not UTF-8: %v", err)
	}
}
