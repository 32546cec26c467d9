package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/spend/pgtest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// The reproductions of issue 8 ("Nothing an operator does may re-open a
// spent token"), each as an operator meets it: real serve processes, the
// real commands, real signals. Each failed on the binary before the issue
// (run them against an older build with PPREDEEM_TEST_BINARY).

// runBinary runs the ppredeem binary to completion and returns its output
// (stdout and stderr) and exit status. A command that is still running
// after 60s (a serve that should have refused to start) fails the test.
func runBinary(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = append(os.Environ(), "PPREDEEM_CONFIG=")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("ppredeem %s: still running after 60s\n%s", strings.Join(args, " "), out)
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	t.Fatalf("ppredeem %s: %v", strings.Join(args, " "), err)
	return "", 0
}

// wantRefusal runs a command that must fail (exit status 1) with output
// holding every one of want.
func wantRefusal(t *testing.T, args []string, want ...string) string {
	t.Helper()
	out, code := runBinary(t, args...)
	if code != 1 {
		t.Fatalf("ppredeem %s: exit status %d, want 1\n%s", strings.Join(args, " "), code, out)
	}
	// A JSON log line quotes its text: search the decoded messages too.
	text := out
	for line := range strings.Lines(out) {
		var rec struct{ Msg, Err string }
		if json.Unmarshal([]byte(line), &rec) == nil {
			text += "\n" + rec.Msg + "\n" + rec.Err
		}
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Fatalf("ppredeem %s: the refusal lacks %q:\n%s", strings.Join(args, " "), w, out)
		}
	}
	return out
}

// serveArgs is a serve command line on a free port with JSON logs.
func serveArgs(args ...string) []string {
	return append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...)
}

// absKeyFile is the test key file's absolute path, for config files.
func absKeyFile(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(testKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writeYAML writes a config file: each line as given.
func writeYAML(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// keysYAML is the keys: line naming files.
func keysYAML(files ...string) string {
	q := make([]string, len(files))
	for i, f := range files {
		q[i] = strconv.Quote(f)
	}
	return "keys: [" + strings.Join(q, ", ") + "]"
}

// redeem sends tok to p and returns the answer's code.
func (p *process) redeem(t *testing.T, tok verifytest.Token) string {
	t.Helper()
	_, r := post(t, p.url, rpctest.Redeem(1, tok))
	return r.Code()
}

// reload sends SIGHUP and waits for the outcome's log line: "configuration
// reloaded" or "reload failed".
func (p *process) reload(t *testing.T, outcome string) {
	t.Helper()
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, outcome)
}

// stopGracefully sends SIGTERM and waits for a clean exit.
func (p *process) stopGracefully(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	if err := p.exit(t, 30*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.output())
	}
}

// adminBase is the admin listener's base URL, from the "ppredeem serving"
// log line.
func (p *process) adminBase(t *testing.T) string {
	t.Helper()
	addr, _ := p.lastLog(t, "ppredeem serving")["admin_listen"].(string)
	if addr == "" {
		t.Fatalf("no admin listener logged:\n%s", p.output())
	}
	return "http://" + addr
}

// lastLog returns the last JSON log line of p whose msg is msg, decoded.
func (p *process) lastLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	var last map[string]any
	for line := range strings.Lines(p.output()) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			last = rec
		}
	}
	if last == nil {
		t.Fatalf("no log line %q:\n%s", msg, p.output())
	}
	return last
}

// (1) Retire while a server still holds the key. On Postgres: a retire
// run with a stale key list while two servers serve the key is refused
// with a message naming the fix, and the spent token stays spent on both;
// once both servers dropped the key from their config file (SIGHUP) the
// retire works and leaves a tombstone, and a server started with the key
// refuses to start.
func TestRetireRefusedWhileServersHoldTheKey(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	dsn := pgtest.NewMigratedDatabase(t, "cmd")
	dir := t.TempDir()
	other := verifytest.WriteKeyFile(t, dir, verifytest.NewKey(t))
	key := absKeyFile(t)
	id := verifytest.Key().ID()
	cfgA, cfgB := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	for _, c := range []string{cfgA, cfgB} {
		writeYAML(t, c, "database_url: "+strconv.Quote(dsn), keysYAML(key, other))
	}
	a, b := startProcess(t, "--config", cfgA), startProcess(t, "--config", cfgB)
	tok := verifytest.Mint(t, verifytest.Key(), verify.Increment)
	if code := a.redeem(t, tok); code != "success" {
		t.Fatalf("first redemption: %s", code)
	}

	// The operator's key list is stale: it lacks the key both servers serve.
	retire := []string{"keys", "retire", id, "--keys", other, "--database-url", dsn}
	wantRefusal(t, retire, "refusing to retire key "+id, "holds it", "reload it (SIGHUP), or stop it")
	for _, p := range []*process{a, b} {
		if code := p.redeem(t, tok); code != "-32021" {
			t.Fatalf("the spent token after a refused retire: %s, want -32021", code)
		}
	}

	// One server drops the key; the other still holds it.
	writeYAML(t, cfgA, "database_url: "+strconv.Quote(dsn), keysYAML(other))
	a.reload(t, "configuration reloaded")
	wantRefusal(t, retire, "holds it")
	writeYAML(t, cfgB, "database_url: "+strconv.Quote(dsn), keysYAML(other))
	b.reload(t, "configuration reloaded")
	out, code := runBinary(t, retire...)
	if code != 0 || !strings.Contains(out, "retired "+id) || !strings.Contains(out, "can never serve again") {
		t.Fatalf("retire once no server holds the key: exit %d\n%s", code, out)
	}

	// The retired key can never serve again, on start or on reload.
	wantRefusal(t, serveArgs("--database-url", dsn, "--keys", key), "key "+id+" was retired", "ppredeem keys generate")
	writeYAML(t, cfgB, "database_url: "+strconv.Quote(dsn), keysYAML(key, other))
	b.reload(t, "reload failed")
	if code := b.redeem(t, tok); code != "-32020" {
		t.Fatalf("the retired key's token after a refused reload: %s, want -32020 (no configured key)", code)
	}
}

// (1) on the embedded store: its running server locks the file, so retire
// says to stop it; after the stop the retire works, and a server started
// with the key refuses to start.
func TestRetireEmbeddedStoreInUse(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	dataDir := t.TempDir()
	id := verifytest.Key().ID()
	p := startProcess(t, "--data-dir", dataDir, "--keys", testKeyFile)
	if code := p.redeem(t, verifytest.Mint(t, verifytest.Key(), verify.Increment)); code != "success" {
		t.Fatalf("redemption: %s", code)
	}
	retire := []string{"keys", "retire", id, "--data-dir", dataDir}
	wantRefusal(t, retire, "keys retire cannot open the embedded store while a server runs on it", "stop that process first")
	p.stopGracefully(t)
	if out, code := runBinary(t, retire...); code != 0 || !strings.Contains(out, "dropped 1 spent records") {
		t.Fatalf("retire with the server stopped: exit %d\n%s", code, out)
	}
	wantRefusal(t, serveArgs("--data-dir", dataDir, "--keys", testKeyFile), "key "+id+" was retired", "must never serve again")
}

// (2) An empty or missing embedded store file: serve refuses, naming the
// file, instead of starting a fresh store; the restored file brings every
// spend back.
func TestEmptyOrMissingStoreFileRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	dataDir := t.TempDir()
	db := filepath.Join(dataDir, "spent.db")
	p := startProcess(t, "--data-dir", dataDir, "--keys", testKeyFile)
	var spent []verifytest.Token
	for range 20 {
		tok := verifytest.Mint(t, verifytest.Key(), verify.Increment)
		if code := p.redeem(t, tok); code != "success" {
			t.Fatalf("redemption: %s", code)
		}
		spent = append(spent, tok)
	}
	p.stopGracefully(t)
	saved, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	serve := serveArgs("--data-dir", dataDir, "--keys", testKeyFile)

	if err := os.Truncate(db, 0); err != nil {
		t.Fatal(err)
	}
	wantRefusal(t, serve, db+" is empty (0 bytes)", "refusing to start a fresh store", "Restore it from a backup")
	wantRefusal(t, []string{"check", "--data-dir", dataDir}, db+" is empty")
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	wantRefusal(t, serve, db, "missing", "Restore")

	if err := os.WriteFile(db, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runBinary(t, "check", "--data-dir", dataDir)
	if code != 0 || !regexp.MustCompile(`(?m)^check:\s+ok$`).MatchString(out) || !regexp.MustCompile(`live\s+\S+\s+-\s+20\s`).MatchString(out) {
		t.Fatalf("check of the restored store: exit %d\n%s", code, out)
	}
	p = startProcess(t, serve[1:]...)
	for _, tok := range spent {
		if code := p.redeem(t, tok); code != "-32021" {
			t.Fatalf("a token spent before the loss, after the restore: %s, want -32021", code)
		}
	}
}

// (3) A missing Postgres partition of a key the store knows: serve refuses
// to start, naming the partition and the fix, and check reports it.
func TestMissingPartitionRefusesStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	dsn := pgtest.NewMigratedDatabase(t, "cmd")
	serve := serveArgs("--database-url", dsn, "--keys", testKeyFile)
	p := startProcess(t, serve[1:]...)
	tok := verifytest.Mint(t, verifytest.Key(), verify.Increment)
	if code := p.redeem(t, tok); code != "success" {
		t.Fatalf("redemption: %s", code)
	}
	p.stopGracefully(t)
	partition := "spent_tokens_" + verifytest.Key().ID()
	pgtest.Connect(t, dsn).Exec(t, "ALTER TABLE spent_tokens DETACH PARTITION "+partition, "DROP TABLE "+partition)

	wantRefusal(t, serve, "partition "+partition+" is gone", "refusing to create it again empty", "Restore table "+partition)
	out := wantRefusal(t, []string{"check", "--database-url", dsn, "--json"}, partition)
	var report checkReport
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &report); err != nil {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
	if report.OK || len(report.Keys) != 1 || report.Keys[0].State != "records_missing" {
		t.Fatalf("check --json: %+v", report)
	}
}

// (4) SIGHUP re-reads the config file: an added key serves, a removed one
// stops, each logged; a broken file keeps the previous state; a setting
// that needs a restart is reported and keeps its value; the reload gauges
// move. For both stores.
func TestSIGHUPReloadsTheConfigFile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		dir := t.TempDir()
		a, b := verifytest.NewKey(t), verifytest.NewKey(t)
		fileA, fileB := verifytest.WriteKeyFile(t, dir, a), verifytest.WriteKeyFile(t, dir, b)
		cfg := filepath.Join(dir, "ppredeem.yaml")
		writeYAML(t, cfg, keysYAML(fileA))
		p := startProcess(t, append(storeArgs, "--config", cfg, "--admin-listen", "127.0.0.1:0")...)
		admin := p.adminBase(t)
		const ok, at = "ppredeem_config_last_reload_successful", "ppredeem_config_last_reload_success_timestamp_seconds"
		if metric(t, admin, ok) != 1 || metric(t, admin, at) <= 0 {
			t.Fatalf("gauges at start: %v %v", metric(t, admin, ok), metric(t, admin, at))
		}
		expect := func(k *verify.Key, want string) {
			t.Helper()
			if code := p.redeem(t, verifytest.Mint(t, k, verify.Increment)); code != want {
				t.Fatalf("key %s: %s, want %s", k.ID(), code, want)
			}
		}
		expect(a, "success")
		expect(b, "-32020")

		writeYAML(t, cfg, keysYAML(fileA, fileB))
		p.reload(t, "configuration reloaded")
		expect(b, "success")
		if rec := p.lastLog(t, "configuration reloaded"); fmt.Sprint(rec["added"]) != "["+b.ID()+"]" || fmt.Sprint(rec["removed"]) != "[]" {
			t.Fatalf("reload log: %v", rec)
		}

		writeYAML(t, cfg, keysYAML(fileB))
		p.reload(t, "configuration reloaded")
		expect(a, "-32020")
		if rec := p.lastLog(t, "configuration reloaded"); fmt.Sprint(rec["added"]) != "[]" || fmt.Sprint(rec["removed"]) != "["+a.ID()+"]" {
			t.Fatalf("reload log: %v", rec)
		}
		good := metric(t, admin, at)

		writeYAML(t, cfg, "keys: ["+strconv.Quote(fileA)) // broken YAML
		p.reload(t, "reload failed")
		expect(b, "success")
		expect(a, "-32020")
		if metric(t, admin, ok) != 0 || metric(t, admin, at) != good {
			t.Fatalf("gauges after a failed reload: %v %v (last success %v)", metric(t, admin, ok), metric(t, admin, at), good)
		}
		writeYAML(t, cfg, keysYAML(fileA, filepath.Join(dir, "missing.pem"))) // a key file that is not there
		p.reload(t, "reload failed")
		expect(a, "-32020")

		// max_body_bytes needs a restart: reported, and the old limit stays.
		writeYAML(t, cfg, keysYAML(fileA, fileB), "max_body_bytes: 100")
		p.signal(t, syscall.SIGHUP)
		p.waitLog(t, "settings changed in the configuration need a restart")
		p.waitLog(t, "configuration reloaded")
		if rec := p.lastLog(t, "settings changed in the configuration need a restart; their values at start stay in force"); fmt.Sprint(rec["settings"]) != "[max_body_bytes]" {
			t.Fatalf("restart warning: %v", rec)
		}
		expect(a, "success") // its request is over 100 bytes: the start-up limit holds
		if metric(t, admin, ok) != 1 || metric(t, admin, at) <= good {
			t.Fatalf("gauges after a good reload: %v %v (before %v)", metric(t, admin, ok), metric(t, admin, at), good)
		}
	})
}

// (5) A bare number for a duration in the config file: serve refuses to
// start, naming the key and the expected form.
func TestBareDurationInConfigFileRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	cfg := filepath.Join(t.TempDir(), "ppredeem.yaml")
	writeYAML(t, cfg, "spend_timeout: 5", keysYAML(absKeyFile(t)), "data_dir: "+strconv.Quote(t.TempDir()))
	wantRefusal(t, serveArgs("--config", cfg), "spend_timeout", `"5s"`, "bare number")
}

// (5) /readyz while a lock on spent_tokens outlasts spend_timeout: 503,
// and 200 once the lock is gone.
func TestReadyzDuringTableLock(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	dsn := pgtest.NewMigratedDatabase(t, "cmd")
	p := startProcess(t, "--database-url", dsn, "--keys", testKeyFile, "--spend-timeout", "1s")
	waitFor(t, "/readyz 200", func() bool { return getStatus(t, p.base+"/readyz") == http.StatusOK })
	lock := pgtest.Connect(t, dsn)
	lock.Exec(t, "BEGIN", "LOCK TABLE spent_tokens IN ACCESS EXCLUSIVE MODE")
	waitFor(t, "/readyz 503 while the table is locked", func() bool {
		return getStatus(t, p.base+"/readyz") == http.StatusServiceUnavailable
	})
	lock.Exec(t, "COMMIT")
	waitFor(t, "/readyz 200 once the lock is gone", func() bool { return getStatus(t, p.base+"/readyz") == http.StatusOK })
}

// (5) While Postgres is down, a flood of /readyz (2,000 calls from 8
// clients) answers 503 and costs about one connection attempt and one log
// line a second, not one per call.
func TestReadyzFloodWhilePostgresDown(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	proxy := newTCPProxy(t, pgtest.NewMigratedDatabase(t, "cmd"))
	p := startProcess(t, "--database-url", proxy.dsn, "--keys", testKeyFile)
	waitFor(t, "/readyz 200", func() bool { return getStatus(t, p.base+"/readyz") == http.StatusOK })
	proxy.setDown(true)
	waitFor(t, "/readyz 503 once Postgres is down", func() bool {
		return getStatus(t, p.base+"/readyz") == http.StatusServiceUnavailable
	})
	const failed = `"msg":"readiness check failed"`
	attempts, lines := proxy.refused.Load(), strings.Count(p.output(), failed)
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 250 {
				if status := getStatus(t, p.base+"/readyz"); status != http.StatusServiceUnavailable {
					t.Errorf("/readyz while Postgres is down: %d", status)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	attempts = proxy.refused.Load() - attempts
	lines = strings.Count(p.output(), failed) - lines
	// One check per started second, the first included; a hold renewal
	// (every 10s) may add an attempt.
	limit := int64(elapsed/time.Second) + 2
	t.Logf("2000 /readyz in %s: %d connection attempts, %d log lines", elapsed.Round(time.Millisecond), attempts, lines)
	if attempts > limit+1 || int64(lines) > limit {
		t.Fatalf("2000 /readyz in %s made %d connection attempts and %d log lines (at most %d)", elapsed, attempts, lines, limit)
	}
}
