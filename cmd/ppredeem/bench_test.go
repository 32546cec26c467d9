package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/ppredeem/ppredeem/verify"
)

// TestBenchCommand drives the real server with `ppredeem bench` exactly as
// scripts call it and checks the JSON contract and the counts, for both
// hash-to-curve methods and a mix of double spends and bad tags.
func TestBenchCommand(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile))
	for _, method := range []string{"increment", "swu"} {
		out, err := run(t, "bench", "--url", srv.url, "--keys", testKeyFile, "--method", method,
			"--concurrency", "4", "--count", "200", "--double-spend", "0.1", "--bad-tag", "0.05", "--json")
		if err != nil {
			t.Fatalf("bench --method %s: %v\n%s", method, err, out)
		}
		// Progress lines share the writer in this test; the report is the
		// JSON object on its own line.
		var report map[string]any
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "{") {
				if err := json.Unmarshal([]byte(line), &report); err != nil {
					t.Fatalf("bench --json: %v\n%s", err, line)
				}
			}
		}
		for _, key := range []string{"redemptions_per_second", "p50_ms", "p90_ms", "p99_ms", "max_ms", "codes"} {
			if _, ok := report[key]; !ok {
				t.Fatalf("bench --json lacks %q: %v", key, report)
			}
		}
		codes := report["codes"].(map[string]any)
		if codes["success"] != 170.0 || codes["-32021"] != 20.0 || codes["-32020"] != 10.0 || report["unexpected"] != 0.0 {
			t.Fatalf("bench --method %s codes: %v (unexpected %v)", method, codes, report["unexpected"])
		}
	}
	if _, err := run(t, "bench", "--url", srv.url); err == nil || !strings.Contains(err.Error(), "--keys") {
		t.Fatalf("bench without keys: %v", err)
	}
}

// TestKeysListEmbedded: counts come from the embedded store too, and a
// key without a bucket yet shows none spent.
func TestKeysListEmbedded(t *testing.T) {
	dataDir := t.TempDir()
	unused := writeKeyFile(t, t.TempDir(), newKey(t))
	srv := startServer(t, newConfig(t, "--data-dir", dataDir, "--keys", testKeyFile))
	for range 2 {
		post(t, srv.url, mint(t, testKey(t), verify.Increment).body(1))
	}
	srv.stop(t) // the embedded store's file takes one process
	out, err := run(t, "keys", "list", "--keys", testKeyFile+","+unused, "--data-dir", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, testKey(t).ID()) || !regexp.MustCompile(testKey(t).ID()+`\s+\S+\s+2\s+live`).MatchString(out) || !strings.Contains(out, "0 (no storage yet)") {
		t.Fatalf("keys list on the embedded store:\n%s", out)
	}
}

// TestBenchExitStatus: bench fails (after writing its report) when a request
// got an unexpected answer or a transport failure, and only then; the
// binary exits with status 1.
func TestBenchExitStatus(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile))
	unknown := writeKeyFile(t, t.TempDir(), newKey(t)) // the server does not hold it
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return "http://" + ln.Addr().String() + "/api/redeem"
	}()

	mix := []string{"--double-spend", "0.2", "--bad-tag", "0.2"}
	for _, tc := range []struct {
		name, url, keys string
		mix             []string
		want            string // in the error; "" for none
	}{
		{"expected answers", srv.url, testKeyFile, mix, ""},
		// The bad tags are what they ask for; the 16 others are not.
		{"unexpected answers", srv.url, unknown, mix, "16 unexpected answers and 0 transport failures"},
		{"transport failures", closed, testKeyFile, nil, "0 unexpected answers and 20 transport failures"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, append([]string{"bench", "--url", tc.url, "--keys", tc.keys, "--concurrency", "2", "--count", "20",
				"--json"}, tc.mix...)...)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q\n%s", err, tc.want, out)
			}
			if !strings.Contains(out, `"redemptions_per_second"`) {
				t.Fatalf("no report before the error:\n%s", out)
			}
		})
	}

	// The binary: status 1 with the report on stdout and the reason on stderr.
	for _, tc := range []struct {
		keys   string
		status int
	}{{testKeyFile, 0}, {unknown, 1}} {
		cmd := exec.Command(binary(t), "bench", "--url", srv.url, "--keys", tc.keys, "--concurrency", "2", "--count", "20", "--json")
		cmd.Env = append(os.Environ(), "PPREDEEM_CONFIG=")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		status := 0
		if exit, ok := errors.AsType[*exec.ExitError](err); ok {
			status = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		var report struct{ Unexpected int }
		if status != tc.status || json.Unmarshal(stdout.Bytes(), &report) != nil ||
			status == 1 && (report.Unexpected != 20 || !strings.Contains(stderr.String(), "ppredeem: loadgen: 20 unexpected answers")) {
			t.Fatalf("keys %s: status %d, want %d\nstdout: %s\nstderr: %s", tc.keys, status, tc.status, stdout.String(), stderr.String())
		}
	}
}
