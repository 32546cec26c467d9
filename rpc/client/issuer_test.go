package client_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/attest"
	"github.com/ppredeem/ppredeem/rpc/client"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// service is a ppredeem server that issues and redeems under one key: POST
// /api/issue, GET /api/commitments and POST /api/redeem at URL.
type service struct {
	URL string
	Key *verify.Key
	// Spent counts the tokens the server holds as spent under Key.
	Spent func(context.Context) (int64, error)
}

// serviceUnderTest starts the server the end-to-end tests of issuance
// (TestIssueRedeemEndToEnd and friends) run against: the real handler,
// issuing under the attester key testAttesterKey and redeeming on a real
// embedded store, checked by this client written independently of it.
// The issuer type below (verify's signer behind a minimal HTTP layer)
// remains for the tests that need to forge answers.
var serviceUnderTest = realServer

func realServer(t testing.TB) *service {
	t.Helper()
	gate, err := attest.New(attest.Config{Keys: []attest.Key{{Name: "test", Hash: sha256.Sum256([]byte(testAttesterKey))}}})
	if err != nil {
		t.Fatal(err)
	}
	s := rpctest.NewServer(t, rpctest.Options{Issue: &rpc.IssueOptions{Gate: func() *attest.Gate { return gate }}})
	return &service{
		URL: s.URL,
		Key: s.Key,
		Spent: func(ctx context.Context) (int64, error) {
			return s.Store.Count(ctx, s.Key.ID())
		},
	}
}

// testAttesterKey is the attester key the end-to-end tests send.
const testAttesterKey = "test-attester"

// keyVersion is the version the stand-in names its key with.
const keyVersion = "1.0"

// issuer answers issue requests the way issue 14 asks of ppredeem: JSON
// {"bl_sig_req"} or form blinded-tokens in, {"signatures"} or
// signatures= out, JSON-RPC errors. It is test support, not a model of
// the real server's checks (attestation, limits, metrics).
type issuer struct {
	key     *verify.Key
	version string
	// tamper, when set, changes the decoded response JSON before it is
	// encoded again, to forge answers.
	tamper func(map[string]any)

	mu       sync.Mutex
	requests int
	auth     []string // the Authorization header of each request
}

func (s *issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.mu.Unlock()

	form := r.Header.Get("Content-Type") == "application/x-www-form-urlencoded"
	var text string
	if form {
		if err := r.ParseForm(); err != nil {
			rpcError(w, http.StatusBadRequest, -32602, "bad form")
			return
		}
		text = r.PostForm.Get("blinded-tokens")
	} else {
		var req struct {
			Req string `json:"bl_sig_req"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			rpcError(w, http.StatusBadRequest, -32700, "not JSON")
			return
		}
		text = req.Req
	}
	req, err := verify.ParseIssueRequest(text, 0)
	if err != nil {
		rpcError(w, http.StatusBadRequest, -32602, err.Error())
		return
	}
	resp, err := s.key.SignBatch(nil, req)
	if err != nil {
		rpcError(w, http.StatusInternalServerError, -32603, "Internal error")
		return
	}
	enc := resp.Encode(s.version)
	if s.tamper != nil {
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			panic(err)
		}
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil {
			panic(err)
		}
		s.tamper(obj)
		raw, _ = json.Marshal(obj)
		enc = base64.StdEncoding.EncodeToString(raw)
	}
	if form {
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		io.WriteString(w, "signatures="+url.QueryEscape(enc))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"signatures": enc})
}

func (s *issuer) serveCommitments(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode([]map[string]string{{
		"G":       base64.StdEncoding.EncodeToString(verify.BasePoint()),
		"H":       base64.StdEncoding.EncodeToString(s.key.Commitment()),
		"expiry":  time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"version": s.version,
	}})
}

func (s *issuer) stats() (requests int, auth []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, append([]string(nil), s.auth...)
}

func rpcError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"jsonrpc": "2.0", "id": nil,
		"error": map[string]any{"code": code, "message": msg},
	})
}

// startIssuer serves only s (issue and commitments), for the tests of the
// client's reactions to answers of every kind.
func startIssuer(t testing.TB, s *issuer) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("POST /api/issue", s)
	mux.HandleFunc("GET /api/commitments", s.serveCommitments)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// testKeyCommitment is the commitment of the public test key, given
// explicitly (no fetch).
func testKeyCommitment(version string) []client.Commitment {
	return []client.Commitment{{Version: version, H: verifytest.Key().Commitment()}}
}
