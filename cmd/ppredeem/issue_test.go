package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/verify"
)

// issuingServer serves POST /api/issue and GET /api/commitments with
// verify's signer under signer while committing to the test key, and
// everything else with the real redemption handler of the test key: an
// issuer whose proofs do not verify, which the real server never is. It
// records the Authorization headers. (TestIssueCommand runs against the
// real server.)
func issuingServer(t *testing.T, signer *verify.Key) (base string, auth *authLog) {
	t.Helper()
	redeem := rpctest.NewServer(t, rpctest.Options{})
	auth = new(authLog)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/issue", func(w http.ResponseWriter, r *http.Request) {
		auth.add(r.Header.Get("Authorization"))
		form := r.Header.Get("Content-Type") == "application/x-www-form-urlencoded"
		var text string
		if form {
			r.ParseForm()
			text = r.PostForm.Get("blinded-tokens")
		} else {
			var req struct {
				Req string `json:"bl_sig_req"`
			}
			json.NewDecoder(r.Body).Decode(&req)
			text = req.Req
		}
		req, err := verify.ParseIssueRequest(text, 0)
		if err != nil {
			http.Error(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"bad request"}}`, http.StatusBadRequest)
			return
		}
		resp, err := signer.SignBatch(nil, req)
		if err != nil {
			t.Error(err)
			return
		}
		if form {
			io.WriteString(w, "signatures="+url.QueryEscape(resp.Encode(testKey(t).ID())))
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"signatures": resp.Encode(testKey(t).ID())})
	})
	mux.HandleFunc("GET /api/commitments", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, commitmentsDoc(testKey(t)))
	})
	mux.Handle("/", redeem.Handler)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, auth
}

// authLog records the Authorization header of each issue request.
type authLog struct {
	mu  sync.Mutex
	all []string
}

func (a *authLog) add(h string) { a.mu.Lock(); a.all = append(a.all, h); a.mu.Unlock() }

// last returns the number of requests and the last request's header.
func (a *authLog) last() (int, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.all) == 0 {
		return 0, ""
	}
	return len(a.all), a.all[len(a.all)-1]
}

func commitmentsDoc(k *verify.Key) string {
	return `{"` + k.ID() + `":{"G":"` + base64.StdEncoding.EncodeToString(verify.BasePoint()) +
		`","H":"` + base64.StdEncoding.EncodeToString(k.Commitment()) + `"}}`
}

// runOut runs the command and returns its stdout alone.
func runOut(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestIssueCommand runs the command against the real `serve`: open
// issuance, and two attester keys, so that a key the command failed to send
// would be refused (401) rather than pass unnoticed.
func TestIssueCommand(t *testing.T) {
	hash := func(key string) string { sum := sha256.Sum256([]byte(key)); return hex.EncodeToString(sum[:]) }
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--issue-open",
		"--issue-keys", "filekey="+hash("s3cret-key")+",argkey="+hash("k")))
	base := srv.base
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "attester")
	if err := os.WriteFile(keyFile, []byte("  s3cret-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmtFile := filepath.Join(dir, "commitments.json")
	if err := os.WriteFile(cmtFile, []byte(commitmentsDoc(testKey(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"defaults", []string{"--url", base, "--count", "3"}},
		{"key file, commitments file, form", []string{"--url", base + "/api/issue", "--count", "2", "--attester-key-file", keyFile, "--commitments", cmtFile, "--form"}},
		{"key, commitments URL", []string{"--url", base, "--attester-key", "k", "--commitments", base + "/api/commitments"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bindings := []string{"www.example.com", "GET /a,b"}
			out, err := runOut(t, append(append([]string{"issue"}, tc.args...), "--bindings", bindings[0], "--bindings", bindings[1])...)
			if err != nil {
				t.Fatalf("issue: %v", err)
			}
			var lines []issuedLine
			sc := bufio.NewScanner(strings.NewReader(out))
			for sc.Scan() {
				var l issuedLine
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					t.Fatalf("line %q: %v", sc.Text(), err)
				}
				lines = append(lines, l)
			}
			want := 1
			for i, a := range tc.args {
				if a == "--count" {
					want = int(tc.args[i+1][0] - '0')
				}
			}
			if len(lines) != want {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), want, out)
			}
			for _, l := range lines {
				if len(l.Bindings) != 2 || l.Bindings[1] != bindings[1] {
					t.Errorf("bindings %q", l.Bindings)
				}
				if tok, err := base64.StdEncoding.DecodeString(l.Token); err != nil || len(tok) != 32 {
					t.Errorf("token %q", l.Token)
				}
				if status, resp := post(t, base+"/api/redeem", string(l.Redeem)); status != 200 || resp.Error != nil {
					t.Fatalf("redeem: HTTP %d %+v", status, resp)
				}
				if _, resp := post(t, base+"/api/redeem", string(l.Redeem)); resp.Error == nil || resp.Error.Code != -32021 {
					t.Fatalf("second redemption: %+v, want -32021", resp)
				}
			}
		})
	}
}

func TestIssueCommandErrors(t *testing.T) {
	base, auth := issuingServer(t, newKey(t)) // not the committed key
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	notJSON := filepath.Join(dir, "c.json")
	os.WriteFile(notJSON, []byte("{"), 0o600)
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"count 0":          {[]string{"--url", base, "--count", "0"}, "--count 0"},
		"timeout 0":        {[]string{"--url", base, "--timeout", "0s"}, "--timeout"},
		"url not http":     {[]string{"--url", "ftp://x"}, "--url"},
		"both keys":        {[]string{"--url", base, "--attester-key", "a", "--attester-key-file", empty}, "exclude"},
		"key file missing": {[]string{"--url", base, "--attester-key-file", filepath.Join(dir, "none")}, "--attester-key-file"},
		"key file empty":   {[]string{"--url", base, "--attester-key-file", empty}, "empty"},
		"key with space":   {[]string{"--url", base, "--attester-key", "a b"}, "attester key"},
		"commitments file": {[]string{"--url", base, "--commitments", notJSON}, "--commitments"},
		"no such file":     {[]string{"--url", base, "--commitments", filepath.Join(dir, "none")}, "--commitments"},
		"wrong key":        {[]string{"--url", base}, "proof does not verify"},
		"bad binding":      {[]string{"--url", base, "--bindings", "\xff"}, "UTF-8"},
	} {
		before, _ := auth.last()
		out, err := runOut(t, append([]string{"issue"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
		if out != "" {
			t.Errorf("%s: printed %q", name, out)
		}
		if after, _ := auth.last(); name != "wrong key" && after != before {
			t.Errorf("%s: the issuer was called", name)
		}
	}
}

func TestIssueEndpoints(t *testing.T) {
	for raw, want := range map[string][2]string{
		"http://127.0.0.1:8080":               {"http://127.0.0.1:8080/api/issue", "http://127.0.0.1:8080/api/redeem"},
		"http://127.0.0.1:8080/":              {"http://127.0.0.1:8080/api/issue", "http://127.0.0.1:8080/api/redeem"},
		"https://pp.example/api/issue":        {"https://pp.example/api/issue", "https://pp.example/api/redeem"},
		"https://pp.example/v2/issue?x=1#top": {"https://pp.example/v2/issue?x=1#top", "https://pp.example/api/redeem"},
	} {
		issue, redeem, err := issueEndpoints(raw)
		if err != nil || issue != want[0] || redeem != want[1] {
			t.Errorf("issueEndpoints(%q) = %q, %q, %v; want %q", raw, issue, redeem, err, want)
		}
	}
	for _, raw := range []string{"", "127.0.0.1:8080", "/api/issue", "ftp://x/"} {
		if _, _, err := issueEndpoints(raw); err == nil {
			t.Errorf("issueEndpoints(%q) accepted", raw)
		}
	}
}
