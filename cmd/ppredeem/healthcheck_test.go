package main

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadyURL(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:8080":  "http://127.0.0.1:8080/readyz",
		"0.0.0.0:8080":    "http://127.0.0.1:8080/readyz",
		":9000":           "http://127.0.0.1:9000/readyz",
		"[::]:8080":       "http://[::1]:8080/readyz",
		"[::1]:8080":      "http://[::1]:8080/readyz",
		"localhost:8080":  "http://localhost:8080/readyz",
		"10.1.2.3:8443":   "http://10.1.2.3:8443/readyz",
		"[fe80::1]:18080": "http://[fe80::1]:18080/readyz",
	} {
		got, err := readyURL(listen)
		if err != nil || got != want {
			t.Errorf("readyURL(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
	for _, listen := range []string{"", "8080", "127.0.0.1", "0.0.0.0:0", "127.0.0.1:"} {
		if got, err := readyURL(listen); err == nil {
			t.Errorf("readyURL(%q) = %q, want an error", listen, got)
		}
	}
}

// portOf returns the port of a server's base URL (http://host:port).
func portOf(t *testing.T, base string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestHealthcheckFollowsListen: without --url the probe goes to serve's
// listen setting, from the flag, the environment or the config file, with
// a wildcard host probed on loopback; it fails once the server is gone.
func TestHealthcheckFollowsListen(t *testing.T) {
	t.Setenv("PPREDEEM_CONFIG", "")
	t.Setenv("PPREDEEM_LISTEN", "")
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile))
	port := portOf(t, srv.base)
	wildcard := "0.0.0.0:" + port

	if out, err := run(t, "healthcheck", "--listen", wildcard); err != nil || !strings.Contains(out, "200 OK") {
		t.Errorf("healthcheck --listen %s: %v\n%s", wildcard, err, out)
	}
	configFile := filepath.Join(t.TempDir(), "ppredeem.yaml")
	if err := os.WriteFile(configFile, []byte("listen: "+wildcard+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "healthcheck", "--config", configFile); err != nil {
		t.Errorf("healthcheck --config (listen: %s): %v\n%s", wildcard, err, out)
	}
	t.Setenv("PPREDEEM_LISTEN", wildcard)
	if out, err := run(t, "healthcheck"); err != nil {
		t.Errorf("healthcheck with PPREDEEM_LISTEN=%s: %v\n%s", wildcard, err, out)
	}
	// Another port in the environment: the probe follows it and fails.
	closed := closedPort(t)
	t.Setenv("PPREDEEM_LISTEN", "0.0.0.0:"+closed)
	if _, err := run(t, "healthcheck"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:"+closed) {
		t.Errorf("healthcheck against a closed port: %v", err)
	}

	t.Setenv("PPREDEEM_LISTEN", wildcard)
	srv.stop(t)
	if _, err := run(t, "healthcheck"); err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Errorf("healthcheck after the server stopped: %v", err)
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// TestHealthcheckWhileDraining: a server that is shutting down answers
// /readyz 503, and the healthcheck fails repeating that answer.
func TestHealthcheckWhileDraining(t *testing.T) {
	t.Setenv("PPREDEEM_CONFIG", "")
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--drain-delay", "3s"))
	srv.cancel() // what SIGTERM does
	waitFor(t, "readyz 503 while draining", func() bool { return getStatus(t, srv.base+"/readyz") == http.StatusServiceUnavailable })
	_, err := run(t, "healthcheck", "--url", srv.base+"/readyz")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("healthcheck while draining: %v", err)
	}
	if err := <-srv.done; err != nil {
		t.Fatal(err)
	}
	srv.cancel = nil
}

func TestHealthcheckRefusals(t *testing.T) {
	t.Setenv("PPREDEEM_CONFIG", "")
	redirect := httptest.NewServer(http.RedirectHandler("/elsewhere", http.StatusFound))
	defer redirect.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", redirect.URL + "/readyz"}, "redirects are not followed"},
		{[]string{"--url", "ftp://127.0.0.1/readyz"}, "not an absolute http(s) URL"},
		{[]string{"--url", "127.0.0.1:8080/readyz"}, "--url"},
		{[]string{"--listen", "0.0.0.0:0"}, "no fixed port"},
		{[]string{"--listen", "8080"}, "not host:port"},
		{[]string{"--url", redirect.URL, "--timeout", "0s"}, "--timeout must be positive"},
	} {
		_, err := run(t, append([]string{"healthcheck"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("healthcheck %v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

// TestHealthcheckExitCodes runs the real binary the way Docker's
// HEALTHCHECK does: exit 0 when ready, exit 1 (never 2, which Docker
// reserves) when not.
func TestHealthcheckExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile))
	healthcheck := func(listen string, args ...string) (string, error) {
		cmd := exec.Command(binary(t), append([]string{"healthcheck"}, args...)...)
		cmd.Env = append(os.Environ(), "PPREDEEM_CONFIG=", "PPREDEEM_LISTEN="+listen)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := healthcheck("0.0.0.0:" + portOf(t, srv.base)); err != nil {
		t.Errorf("ready server: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{},                 // nothing listens on the configured port
		{"--no-such-flag"}, // a usage error is unhealthy too
	} {
		out, err := healthcheck("0.0.0.0:"+closedPort(t), args...)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("healthcheck %v: %v, want exit status 1\n%s", args, err, out)
		}
	}
}
