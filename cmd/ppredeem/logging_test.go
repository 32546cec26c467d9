package main

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// TestLogs: one JSON line per failed redemption, at the level of its class,
// with the request ID (echoed to the client) and a token hash; the token,
// tag and bindings never appear.
func TestLogs(t *testing.T) {
	var logs rpctest.LogBuffer
	cfg := newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--log-format", "json", "--log-level", "info")
	logger, err := newLogger(cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServerLogging(t, cfg, logger)
	key := verifytest.Key()

	bindings := []string{"secret-binding.example", "GET /private"}
	tok := verifytest.MintFor(t, key, verify.Increment, false, bindings)
	bad := verifytest.MintFor(t, key, verify.Increment, false, bindings)
	bad.Tag = append([]byte{}, tok.Tag...)
	bad.Tag[0] ^= 1

	send := func(body, requestID string) string {
		req, _ := http.NewRequest("POST", srv.url, strings.NewReader(body))
		if requestID != "" {
			req.Header.Set("X-Request-Id", requestID)
		}
		resp, err := rpctest.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("X-Request-Id")
	}
	if got := send(rpctest.Redeem(1, tok), "gw-123"); got != "gw-123" {
		t.Errorf("request ID not echoed: %q", got)
	}
	idSpent := send(rpctest.Redeem(2, tok), "")
	idBad := send(rpctest.Redeem(3, bad), "")
	if idSpent == "" || idBad == "" || idSpent == idBad {
		t.Fatalf("generated request IDs %q %q", idSpent, idBad)
	}
	srv.stop(t)

	secrets := []string{b64(tok.Token), hex.EncodeToString(tok.Token), b64(tok.Tag), b64(bad.Tag), "secret-binding", "GET /private"}
	levels := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log line leaks %q: %s", s, line)
			}
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON log line: %s", line)
		}
		if rec["msg"] != "redemption" {
			continue
		}
		id, _ := rec["request_id"].(string)
		levels[id] = rec["level"].(string) + " " + rec["outcome"].(string)
		if rec["token_hash"] == "" || rec["token_hash"] == nil {
			t.Errorf("no token hash: %s", line)
		}
	}
	if levels[idSpent] != "WARN already_spent" || levels[idBad] != "INFO bad_tag" {
		t.Errorf("redemption log lines: %v", levels)
	}
	if _, ok := levels["gw-123"]; ok {
		t.Errorf("a success was logged at info: %v", levels)
	}
}
