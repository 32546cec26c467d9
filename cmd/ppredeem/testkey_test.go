package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// TestTestKeyWarning: while serve's keys include the public test key it
// says so at WARN, at start and after a reload that brings the key in, and
// /readyz lists the warning (still 200); without the test key, neither.
func TestTestKeyWarning(t *testing.T) {
	own := verifytest.NewKey(t)
	keyFile := filepath.Join(t.TempDir(), "keys.pem")
	writeKeys := func(keys ...*verify.Key) {
		var pem []byte
		for _, k := range keys {
			pem = append(pem, k.MarshalPEM()...)
		}
		if err := os.WriteFile(keyFile, pem, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	testKeyPath, err := filepath.Abs(testKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	// SIGHUP re-reads the config file: the key list changes there.
	configFile := filepath.Join(t.TempDir(), "ppredeem.yaml")
	writeConfig := func(keys ...string) {
		if err := os.WriteFile(configFile, []byte("keys: ["+strings.Join(keys, ", ")+"]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(keyFile, testKeyPath)
	var logs rpctest.LogBuffer
	cfg := newConfig(t, "--data-dir", t.TempDir(), "--config", configFile, "--log-format", "json")
	logger, err := newLogger(cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	writeKeys(own)
	srv := startServerLogging(t, cfg, logger)
	wantWarnings(t, srv, &logs, 1, true)

	writeConfig(keyFile) // the test key leaves
	if err := srv.reload(t); err != nil {
		t.Fatal(err)
	}
	wantWarnings(t, srv, &logs, 1, false)

	writeKeys(own, verifytest.Key()) // and comes back in another file
	if err := srv.reload(t); err != nil {
		t.Fatal(err)
	}
	wantWarnings(t, srv, &logs, 2, true)
}

// wantWarnings checks that the log holds n test-key warnings so far and
// that /readyz answers 200 with the warning, or without any.
func wantWarnings(t *testing.T, srv *testServer, logs *rpctest.LogBuffer, n int, onReadyz bool) {
	t.Helper()
	var got int
	for line := range strings.Lines(logs.String()) {
		var rec struct {
			Level, Msg string
			KeyID      string `json:"key_id"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Msg == testKeyWarning {
			got++
			if rec.Level != "WARN" || rec.KeyID != verify.PublicTestKeyID {
				t.Errorf("warning logged as %+v", rec)
			}
		}
	}
	if got != n {
		t.Errorf("%d test-key warnings logged, want %d:\n%s", got, n, logs.String())
	}
	resp, err := rpctest.HTTPClient().Get(srv.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var body struct {
		Status   string
		Warnings []string
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("/readyz %s: %v", raw, err)
	}
	if resp.StatusCode != 200 || body.Status != "ready" || slices.Contains(body.Warnings, testKeyWarning) != onReadyz {
		t.Errorf("/readyz: HTTP %d %s (want the test-key warning: %v)", resp.StatusCode, raw, onReadyz)
	}
}
