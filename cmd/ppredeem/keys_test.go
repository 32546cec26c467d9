package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// run executes the ppredeem command line in-process.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestKeysGenerate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.pem")
	out, err := run(t, "keys", "generate", "--out", path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("BEGIN EC PRIVATE KEY")) {
		t.Fatalf("not a SEC1 PEM: %s", raw)
	}
	keys, err := verify.ParseKeysPEM(raw)
	if err != nil || len(keys) != 1 {
		t.Fatalf("generated key does not load: %v", err)
	}
	k := keys[0]
	for _, want := range []string{
		"id: " + k.ID(),
		"H:  " + base64.StdEncoding.EncodeToString(k.Commitment()),
		"G:  " + base64.StdEncoding.EncodeToString(verify.BasePoint()),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", info.Mode().Perm())
	}
	if _, err := run(t, "keys", "generate", "--out", path); err == nil {
		t.Fatal("generate overwrote an existing key file")
	}
}

// TestKeyLifecycle walks the operator's path on Postgres: serve with two
// keys, list counts, refuse to retire a configured key, drop one key from
// the configuration, retire it (its partition goes), and re-adding it
// starts from nothing.
func TestKeyLifecycle(t *testing.T) {
	dsn := postgresStore(t)[1]
	dir := t.TempDir()
	a, b := verifytest.NewKey(t), verifytest.NewKey(t)
	fileA, fileB := verifytest.WriteKeyFile(t, dir, a), verifytest.WriteKeyFile(t, dir, b)

	srv := startServer(t, newConfig(t, "--database-url", dsn, "--keys", fileA+","+fileB))
	for range 3 {
		post(t, srv.url, rpctest.Redeem(1, verifytest.Mint(t, a, verify.Increment)))
	}
	post(t, srv.url, rpctest.Redeem(1, verifytest.Mint(t, b, verify.Increment)))
	srv.stop(t)

	out, err := run(t, "keys", "list", "--keys", fileA+","+fileB, "--database-url", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(a.ID()+`\s+\S+\s+3\n`).MatchString(out) || !regexp.MustCompile(b.ID()+`\s+\S+\s+1\n`).MatchString(out) {
		t.Fatalf("keys list counts wrong:\n%s", out)
	}

	if _, err := run(t, "keys", "retire", a.ID(), "--keys", fileA+","+fileB, "--database-url", dsn); err == nil ||
		!strings.Contains(err.Error(), "still holds") {
		t.Fatalf("retiring a configured key: %v", err)
	}
	out, err = run(t, "keys", "retire", a.ID(), "--keys", fileB, "--database-url", dsn)
	if err != nil || !strings.Contains(out, "dropped 3 spent records") {
		t.Fatalf("retire: %v\n%s", err, out)
	}
	if _, err := run(t, "keys", "retire", a.ID(), "--keys", fileB, "--database-url", dsn); err == nil {
		t.Fatal("retiring twice must say the key has no storage")
	}

	store, err := spend.OpenPostgres(context.Background(), spend.PostgresConfig{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ids, err := store.KeyIDs(context.Background())
	if err != nil || len(ids) != 1 || ids[0] != b.ID() {
		t.Fatalf("after retire, key IDs with storage: %v %v", ids, err)
	}
}

// TestMissingPartitionIsInternal: a redemption under a configured key whose
// partition vanished (dropped behind the server's back) is an internal
// error, never a silent success.
func TestMissingPartitionIsInternal(t *testing.T) {
	dsn := postgresStore(t)[1]
	srv := startServer(t, newConfig(t, "--database-url", dsn, "--keys", testKeyFile))
	store, err := spend.OpenPostgres(context.Background(), spend.PostgresConfig{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Retire(context.Background(), verifytest.Key().ID()); err != nil {
		t.Fatal(err)
	}
	status, r := post(t, srv.url, rpctest.Redeem(1, verifytest.Mint(t, verifytest.Key(), verify.Increment)))
	if status != 500 || r.Code() != "-32603" {
		t.Fatalf("spend without a partition: HTTP %d %+v", status, r)
	}
}

func TestMigrateCommand(t *testing.T) {
	dsn := postgresStore(t)[1] // already migrated: up is a no-op
	if out, err := run(t, "migrate", "up", "--database-url", dsn); err != nil || !strings.Contains(out, "up to date") {
		t.Fatalf("migrate up twice: %v %s", err, out)
	}
	out, err := run(t, "migrate", "status", "--database-url", dsn)
	if err != nil || !strings.Contains(out, "00001_spent_tokens.sql") {
		t.Fatalf("migrate status: %v %s", err, out)
	}
	if _, err := run(t, "migrate", "sideways", "--database-url", dsn); err == nil {
		t.Fatal("unknown migrate action accepted")
	}
	t.Setenv("PPREDEEM_DATABASE_URL", "")
	if _, err := run(t, "migrate", "up"); err == nil || !strings.Contains(err.Error(), "database_url") {
		t.Fatalf("migrate without a database: %v", err)
	}
}

// TestMigrateDownRefusesToForgetSpends: rolling the schema back while spends
// are recorded would make those tokens redeemable again; it is refused.
func TestMigrateDownRefusesToForgetSpends(t *testing.T) {
	dsn := postgresStore(t)[1]
	srv := startServer(t, newConfig(t, "--database-url", dsn, "--keys", testKeyFile))
	post(t, srv.url, rpctest.Redeem(1, verifytest.Mint(t, verifytest.Key(), verify.Increment)))
	srv.stop(t)
	// The migrations above the key registry (00004 usage, 00005 relays) hold nothing here
	// and roll back; the registry's down then refuses.
	var err error
	for range 3 {
		if _, err = run(t, "migrate", "down", "--database-url", dsn); err != nil {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "redeemable again") {
		t.Fatalf("migrate down with spends recorded: %v", err)
	}
	out, err := run(t, "migrate", "status", "--database-url", dsn)
	if err != nil || strings.Contains(out, "Pending") && !strings.Contains(out, "Applied") {
		t.Fatalf("schema changed by a refused down: %v %s", err, out)
	}
}

func TestTokenLimitFitsTheStores(t *testing.T) {
	if config.MaxTokenBytesLimit != spend.MaxTokenLen {
		t.Fatalf("config allows tokens up to %d bytes, the stores %d", config.MaxTokenBytesLimit, spend.MaxTokenLen)
	}
}
