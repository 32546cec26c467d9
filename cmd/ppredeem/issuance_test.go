package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// The wiring of issuance in `serve`: settings, the first key signing,
// rotation by SIGHUP, attestation, the counts in the metrics and the
// store, for each store.

const aliceKey = "alice-attester-key"

func aliceEntry() string { return fmt.Sprintf("alice=%x", sha256.Sum256([]byte(aliceKey))) }

// issueTokens asks srv for n tokens as the attester key (form or JSON) and
// checks the answer against the served commitment of its version; it
// returns the blinded tokens and the verified answer.
func issueTokens(t *testing.T, srv *testServer, key string, n int, form bool) ([]rpctest.BlindToken, *verify.VerifiedIssue) {
	t.Helper()
	toks := rpctest.NewBlindTokens(t, n)
	text := rpctest.IssueText(rpctest.Blinded(toks))
	contentType, body := "application/json", rpctest.IssueJSON(text)
	if form {
		contentType, body = "application/x-www-form-urlencoded", rpctest.IssueForm(text)
	}
	a, err := rpctest.Issue(context.Background(), srv.base+"/api/issue", contentType, key, body)
	if err != nil || a.Status != 200 {
		t.Fatalf("issue %d: %v HTTP %d %s", n, err, a.Status, a.Body)
	}
	cs, err := rpctest.Commitments(context.Background(), srv.base+"/api/commitments")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		got, err := verify.VerifyIssueResponse(c.G, c.H, rpctest.Blinded(toks), a.Signatures)
		if err == nil && got.Version == c.Version {
			return toks, got
		}
	}
	t.Fatalf("the answer verifies under no served commitment of its version (%d commitments)", len(cs))
	return nil, nil
}

// storeUsage reads the usage counters of a stopped server's store.
func storeUsage(t *testing.T, storeArgs []string) map[string]int64 {
	t.Helper()
	cfg := newConfig(t, append(storeArgs, "--keys", testKeyFile)...)
	store, err := openExistingStore(context.Background(), cfg, "the test")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	counts, err := store.(spend.UsageCounter).Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, c := range counts {
		out[c.Subject+" "+c.Item] = c.Count
	}
	return out
}

// TestIssuance: the first key signs and SIGHUP rotates it; every issued
// token redeems once; tokens are counted per attester in the metrics and
// the store.
func TestIssuance(t *testing.T) {
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		oldKey, newKey := verifytest.NewKey(t), verifytest.NewKey(t)
		keyFile := verifytest.WriteKeyFile(t, t.TempDir(), oldKey)
		srv := startServer(t, newConfig(t, append(storeArgs, "--keys", keyFile, "--issue-keys", aliceEntry(),
			"--max-issue-tokens", "10", "--admin-listen", "127.0.0.1:0")...))

		toks, got := issueTokens(t, srv, aliceKey, 3, false)
		if got.Version != oldKey.ID() {
			t.Fatalf("signed by version %s, want the only key %s", got.Version, oldKey.ID())
		}
		oldTok, err := toks[0].Unblind(got.Signatures[0], verifytest.BrowserBindings())
		if err != nil {
			t.Fatal(err)
		}

		// Rotation: the new key first, the old one after it.
		if err := os.WriteFile(keyFile, append(newKey.MarshalPEM(), oldKey.MarshalPEM()...), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := srv.reload(t); err != nil {
			t.Fatal(err)
		}
		cs, err := rpctest.Commitments(context.Background(), srv.base+"/api/commitments")
		if err != nil || len(cs) != 2 || cs[0].Version != newKey.ID() || cs[1].Version != oldKey.ID() {
			t.Fatalf("commitments after the rotation: %+v %v", cs, err)
		}
		toks, got = issueTokens(t, srv, aliceKey, 10, true)
		if got.Version != newKey.ID() {
			t.Fatalf("signed by version %s after the rotation, want %s", got.Version, newKey.ID())
		}
		newTok, err := toks[9].Unblind(got.Signatures[9], verifytest.BrowserBindings())
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range []verifytest.Token{oldTok, newTok} {
			for _, want := range []string{"success", "-32021"} {
				if _, r := post(t, srv.url, rpctest.Redeem(1, tok)); r.Code() != want {
					t.Fatalf("an issued token: %s, want %s", r.Code(), want)
				}
			}
		}

		// Refusals sign and count nothing.
		a, err := rpctest.Issue(context.Background(), srv.base+"/api/issue", "application/json", aliceKey,
			rpctest.IssueJSON(rpctest.IssueText(rpctest.Blinded(rpctest.NewBlindTokens(t, 11)))))
		if err != nil || a.Status != 400 || a.Error == nil || a.Error.Code != -32033 {
			t.Fatalf("11 tokens: %v %s", err, a.Body)
		}
		a, err = rpctest.Issue(context.Background(), srv.base+"/api/issue", "application/json", "",
			rpctest.IssueJSON(rpctest.IssueText(rpctest.Blinded(rpctest.NewBlindTokens(t, 1)))))
		if err != nil || a.Status != 401 || a.Error == nil || a.Error.Code != -32034 {
			t.Fatalf("without a key: %v %s", err, a.Body)
		}

		metrics := metricsText(t, srv.admin)
		for _, w := range []string{
			`ppredeem_issued_tokens_total{attester="alice"} 13`,
			`ppredeem_issue_requests_total{outcome="success"} 2`,
			`ppredeem_issue_requests_total{outcome="too_many_tokens"} 1`,
			`ppredeem_issue_requests_total{outcome="not_attested"} 1`,
			`ppredeem_issue_duration_seconds_bucket{outcome="success",le="1"} 2`,
		} {
			if !strings.Contains(metrics, w) {
				t.Errorf("/metrics lacks %s", w)
			}
		}
		if strings.Contains(metrics, `attester="open"`) {
			t.Error("/metrics counts open issuance, which is off")
		}
		srv.stop(t)
		want := map[string]int64{
			rpc.UsageSubjectPrefix + "alice " + oldKey.ID(): 3,
			rpc.UsageSubjectPrefix + "alice " + newKey.ID(): 10,
		}
		if got := storeUsage(t, storeArgs); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("the store counted %v, want %v", got, want)
		}
	})
}

// TestOpenIssuance: --issue-open admits clients without a key, limited
// by issue_open_per_hour and issue_open_burst, counted as "open".
func TestOpenIssuance(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--issue-open",
		"--issue-open-per-hour", "2", "--issue-open-burst", "12", "--max-issue-tokens", "12", "--admin-listen", "127.0.0.1:0"))
	issueTokens(t, srv, "", 12, false)
	a, err := rpctest.Issue(context.Background(), srv.base+"/api/issue", "application/x-www-form-urlencoded", "",
		rpctest.IssueForm(rpctest.IssueText(rpctest.Blinded(rpctest.NewBlindTokens(t, 1)))))
	if err != nil || a.Status != 429 || a.Error == nil || a.Error.Code != -32035 || a.Header.Get("Retry-After") != "1800" {
		t.Fatalf("past the burst: %v HTTP %d Retry-After %q %s", err, a.Status, a.Header.Get("Retry-After"), a.Body)
	}
	if m := metricsText(t, srv.admin); !strings.Contains(m, `ppredeem_issued_tokens_total{attester="open"} 12`) ||
		!strings.Contains(m, `ppredeem_issue_requests_total{outcome="rate_limited"} 1`) {
		t.Errorf("/metrics lacks the open issuance counts")
	}
}

// TestServeRefusesBadIssueSettings: a bad issuance setting stops serve
// before it listens.
func TestServeRefusesBadIssueSettings(t *testing.T) {
	for _, args := range [][]string{
		{"--issue-keys", "alice"},
		{"--issue-keys", "open=" + strings.Repeat("0", 64)},
		{"--issue-open", "--issue-open-burst", "5"},
		{"--trusted-proxies", "proxy.example"},
	} {
		cmd := newServeCommand()
		cmd.SetArgs(append([]string{"--keys", testKeyFile, "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, args...))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "invalid configuration") {
			t.Errorf("%q: %v", args, err)
		}
	}
}

// TestIssueSettingsReload: SIGHUP puts new attester keys, open issuance,
// its rate and burst and trusted proxies in force; open issuance's
// buckets survive a reload; a reloaded burst below max_issue_tokens (a
// setting that needs a restart) is refused and changes nothing.
func TestIssueSettingsReload(t *testing.T) {
	const bobKey = "bob-attester-key"
	bobEntry := fmt.Sprintf("bob=%x", sha256.Sum256([]byte(bobKey)))
	keyFile, err := filepath.Abs(testKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	file := writeConfig(t, "keys: ["+keyFile+"]\nmax_issue_tokens: 6\nissue_keys: ["+aliceEntry()+"]\n")
	srv := startServer(t, newConfig(t, "--config", file, "--data-dir", t.TempDir(), "--admin-listen", "127.0.0.1:0"))
	issue := func(key string, n, want int) {
		t.Helper()
		a, err := rpctest.Issue(context.Background(), srv.base+"/api/issue", "application/json", key,
			rpctest.IssueJSON(rpctest.IssueText(rpctest.Blinded(rpctest.NewBlindTokens(t, n)))))
		if err != nil || a.Status != want {
			t.Fatalf("%d tokens as %q: %v HTTP %d %s, want %d", n, key, err, a.Status, a.Body, want)
		}
	}
	rewrite := func(body string) {
		t.Helper()
		if err := os.WriteFile(file, []byte("keys: ["+keyFile+"]\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	issue(aliceKey, 1, 200)
	issue("", 1, 401)

	rewrite("max_issue_tokens: 6\nissue_keys: [" + bobEntry + "]\nissue_open: true\nissue_open_per_hour: 1\nissue_open_burst: 6\n")
	if err := srv.reload(t); err != nil {
		t.Fatal(err)
	}
	if m := metricsText(t, srv.admin); !strings.Contains(m, `ppredeem_issued_tokens_total{attester="bob"} 0`) ||
		!strings.Contains(m, `ppredeem_issued_tokens_total{attester="open"} 0`) {
		t.Errorf("/metrics lacks the new attesters at zero")
	}
	issue(aliceKey, 1, 401)
	issue(bobKey, 1, 200)
	issue("", 6, 200)
	issue("", 1, 429)

	// The same client's bucket stays empty across a reload that changes
	// the proxies; a larger burst lets it hold more, not start full.
	rewrite("max_issue_tokens: 6\nissue_keys: [" + bobEntry + "]\nissue_open: true\nissue_open_per_hour: 1\nissue_open_burst: 12\ntrusted_proxies: [10.0.0.0/8]\n")
	if err := srv.reload(t); err != nil {
		t.Fatal(err)
	}
	issue("", 1, 429)

	rewrite("max_issue_tokens: 3\nissue_open: true\nissue_open_burst: 3\n") // valid alone, not with max_issue_tokens 6 in force
	if err := srv.reload(t); err == nil || !strings.Contains(err.Error(), "issue_open_burst (3) must be at least max_issue_tokens (6)") {
		t.Fatalf("a burst below the max_issue_tokens in force: %v", err)
	}
	issue(bobKey, 1, 200)
	if m := metricsText(t, srv.admin); !strings.Contains(m, `ppredeem_issued_tokens_total{attester="bob"} 2`) ||
		!strings.Contains(m, `ppredeem_issued_tokens_total{attester="open"} 6`) {
		t.Errorf("/metrics lacks the counts after the reloads")
	}
}
