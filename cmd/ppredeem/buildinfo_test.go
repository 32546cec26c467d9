package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/ppredeem/ppredeem/rpc/rpctest"
)

// TestBuildInfoInLogAndMetrics: serve's and gateway's start-up log lines
// name the version and revision `ppredeem version` prints, and their
// admin listeners export ppredeem_build_info with the same labels.
func TestBuildInfoInLogAndMetrics(t *testing.T) {
	out, err := exec.Command(binary(t), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	var version, goVersion, revision string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "ppredeem "); ok {
			version = v
		}
		if v, ok := strings.CutPrefix(line, "go:"); ok {
			goVersion = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "revision:"); ok {
			revision = strings.TrimSuffix(strings.TrimSpace(v), " (modified)")
		}
	}
	if version == "" || goVersion == "" {
		t.Fatalf("ppredeem version printed\n%s", out)
	}
	want := fmt.Sprintf(`ppredeem_build_info{goversion=%q,revision=%q,version=%q} 1`, goVersion, revision, version)

	for _, c := range []struct {
		serving string
		args    []string
	}{
		{"ppredeem serving", []string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-format", "json",
			"--data-dir", t.TempDir(), "--keys", testKeyFile}},
		{"ppredeem gateway serving", []string{"gateway", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-format", "json"}},
	} {
		p := startBinary(t, c.serving, c.args)
		var rec struct {
			Msg, Version, Revision string
			AdminListen            string `json:"admin_listen"`
		}
		for line := range strings.Lines(p.output()) {
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == c.serving {
				break
			}
		}
		if rec.Version != version || rec.Revision != revision {
			t.Errorf("%s: the log line says version %q revision %q, ppredeem version %q %q", c.args[0], rec.Version, rec.Revision, version, revision)
		}
		resp, err := rpctest.HTTPClient().Get("http://" + rec.AdminListen + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(metrics), want) {
			t.Errorf("%s: /metrics lacks %s", c.args[0], want)
		}
	}
}
