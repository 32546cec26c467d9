package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestFatalErrorsGoThroughTheLogger: an error that stops serve or gateway
// is one log record in the configured format (JSON lines with
// --log-format json or PPREDEEM_LOG_FORMAT=json, text otherwise), and the
// process exits with status 1.
func TestFatalErrorsGoThroughTheLogger(t *testing.T) {
	dataDir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		json bool
		err  string // in the record's err
	}{
		{"missing key file, json flag", []string{"serve", "--log-format", "json", "--data-dir", dataDir, "--keys", "missing.pem"}, nil, true, "missing.pem"},
		{"invalid settings, json from the environment", []string{"serve", "--listen", "nowhere"}, []string{"PPREDEEM_LOG_FORMAT=json"}, true, `listen: \"nowhere\" is not host:port`},
		{"gateway, json", []string{"gateway", "--log-format", "json", "--upstream", "ftp://example.com"}, nil, true, "upstream"},
		{"text", []string{"serve", "--data-dir", dataDir, "--keys", "missing.pem"}, nil, false, "missing.pem"},
		{"invalid format: text", []string{"serve", "--log-format", "yaml", "--keys", "k.pem"}, nil, false, `log_format: \"yaml\" is not text or json`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary(t), tc.args...)
			cmd.Env = append(cmd.Environ(), append([]string{"PPREDEEM_CONFIG=", "PPREDEEM_LOG_FORMAT="}, tc.env...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if exit, ok := errors.AsType[*exec.ExitError](err); !ok || exit.ExitCode() != 1 {
				t.Fatalf("got %v, want exit status 1\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if tc.json {
				for _, line := range lines {
					if !json.Valid([]byte(line)) {
						t.Errorf("not a JSON line: %s", line)
					}
				}
				var rec struct{ Level, Msg, Err string }
				if err := json.Unmarshal([]byte(last), &rec); err != nil {
					t.Fatal(err)
				}
				if rec.Level != "ERROR" || rec.Msg != "ppredeem "+tc.args[0]+" failed" || !strings.Contains(rec.Err, strings.ReplaceAll(tc.err, `\"`, `"`)) {
					t.Errorf("last record %+v, want level ERROR, msg %q, err with %q", rec, "ppredeem "+tc.args[0]+" failed", tc.err)
				}
				return
			}
			for _, want := range []string{"level=ERROR", `msg="ppredeem ` + tc.args[0] + ` failed"`, tc.err} {
				if !strings.Contains(last, want) {
					t.Errorf("last line lacks %s: %s", want, last)
				}
			}
		})
	}
}
