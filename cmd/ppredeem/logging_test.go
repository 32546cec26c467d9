package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ppredeem/ppredeem/verify"
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLogs: one JSON line per failed redemption, at the level of its class,
// with the request ID (echoed to the client) and a token hash; the token,
// tag and bindings never appear.
func TestLogs(t *testing.T) {
	var logs syncBuffer
	cfg := newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--log-format", "json", "--log-level", "info")
	logger, err := newLogger(cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServerLogging(t, cfg, logger)
	key := testKey(t)

	tok := mint(t, key, verify.Increment)
	tok.bindings = []string{"secret-binding.example", "GET /private"}
	tag, _ := key.Tag(tok.t, verify.Increment, false, tok.bindings)
	tok.tag = tag
	bad := mint(t, key, verify.Increment)
	bad.bindings = tok.bindings
	bad.tag = append([]byte{}, tok.tag...)
	bad.tag[0] ^= 1

	send := func(body, requestID string) string {
		req, _ := http.NewRequest("POST", srv.url, strings.NewReader(body))
		if requestID != "" {
			req.Header.Set("X-Request-Id", requestID)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("X-Request-Id")
	}
	if got := send(tok.body(1), "gw-123"); got != "gw-123" {
		t.Errorf("request ID not echoed: %q", got)
	}
	idSpent := send(tok.body(2), "")
	idBad := send(bad.body(3), "")
	if idSpent == "" || idBad == "" || idSpent == idBad {
		t.Fatalf("generated request IDs %q %q", idSpent, idBad)
	}
	srv.stop(t)

	secrets := []string{b64(tok.t), hex.EncodeToString(tok.t), b64(tok.tag), b64(bad.tag), "secret-binding", "GET /private"}
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
