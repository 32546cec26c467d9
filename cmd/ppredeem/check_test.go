package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// TestCheckCommand: check reports the store's identity, its keys with
// their spends and holds, and exits 1 on a problem; for both stores. On
// Postgres it runs beside the server and sees its hold; on the embedded
// store the running server's lock is a clear refusal, and after the stop
// the check passes.
func TestCheckCommand(t *testing.T) {
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		srv := startServer(t, newConfig(t, append(storeArgs, "--keys", testKeyFile)...))
		tok := verifytest.Mint(t, verifytest.Key(), verify.Increment)
		if _, r := post(t, srv.url, rpctest.Redeem(1, tok)); r.Code() != "success" {
			t.Fatalf("redemption: %+v", r.Error)
		}
		args := append([]string{"check", "--json", "--keys", testKeyFile}, storeArgs...)
		out, err := run(t, args...)
		embedded := storeArgs[0] == "--data-dir"
		if embedded {
			if !errors.Is(err, spend.ErrStoreInUse) && (err == nil || !strings.Contains(out, "stop that process first")) {
				t.Fatalf("check of a running embedded store: %v\n%s", err, out)
			}
			srv.stop(t)
			out, err = run(t, args...)
		}
		if err != nil {
			t.Fatalf("check: %v\n%s", err, out)
		}
		var r checkReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("check --json: %v\n%s", err, out)
		}
		if !r.OK || r.Identity == nil || r.Identity.ID == "" || len(r.Keys) != 1 {
			t.Fatalf("check --json: %s", out)
		}
		k := r.Keys[0]
		if k.ID != verifytest.Key().ID() || k.State != "live" || k.Spent == nil || *k.Spent != 1 || !k.Configured {
			t.Fatalf("key: %+v", k)
		}
		if held := len(k.Holds) == 1; held == embedded {
			t.Fatalf("holds %+v: want the running server's on Postgres, none once the embedded server stopped", k.Holds)
		}
	})
}

// TestCheckFindsNoStore: check never creates a store; an empty data
// directory is a problem, and so is an unreachable database.
func TestCheckFindsNoStore(t *testing.T) {
	dir := t.TempDir()
	out, err := run(t, "check", "--data-dir", dir)
	if err == nil || !strings.Contains(out, "no embedded store in "+dir) {
		t.Fatalf("check of an empty directory: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("check created files: %v", entries)
	}
	if _, err := run(t, "check", "--database-url", "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"); err == nil {
		t.Fatal("check of an unreachable database passed")
	}
}

// TestKeysListFailsWithoutTheStore: keys list exits non-zero when the
// store cannot be read, and never creates one; a data directory without a
// store yet is fine (nothing spent).
func TestKeysListFailsWithoutTheStore(t *testing.T) {
	if _, err := run(t, "keys", "list", "--keys", testKeyFile, "--database-url", "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"); err == nil {
		t.Fatal("keys list with an unreachable database succeeded")
	}
	dir := t.TempDir()
	out, err := run(t, "keys", "list", "--keys", testKeyFile, "--data-dir", dir)
	if err != nil || !strings.Contains(out, "nothing spent") {
		t.Fatalf("keys list before the first start: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "spent.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "keys", "list", "--keys", testKeyFile, "--data-dir", dir); !errors.Is(err, spend.ErrStoreLost) {
		t.Fatalf("keys list of a 0-byte store file: %v", err)
	}
}

// TestBackupAndRestore: backup writes a copy that, put in place of a lost
// store, brings every spend back; it refuses to overwrite a file and to
// back up Postgres.
func TestBackupAndRestore(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, newConfig(t, "--data-dir", dataDir, "--keys", testKeyFile))
	tok := verifytest.Mint(t, verifytest.Key(), verify.Increment)
	if _, r := post(t, srv.url, rpctest.Redeem(1, tok)); r.Code() != "success" {
		t.Fatalf("redemption: %+v", r.Error)
	}
	copyPath := filepath.Join(t.TempDir(), "spent-backup.db")
	if _, err := run(t, "backup", "--out", copyPath, "--data-dir", dataDir); !errors.Is(err, spend.ErrStoreInUse) {
		t.Fatalf("backup beside the running server: %v", err)
	}
	srv.stop(t)
	out, err := run(t, "backup", "--out", copyPath, "--data-dir", dataDir)
	if err != nil || !strings.Contains(out, "wrote "+copyPath) {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if _, err := run(t, "backup", "--out", copyPath, "--data-dir", dataDir); err == nil {
		t.Fatal("backup overwrote an existing file")
	}
	if _, err := run(t, "backup", "--out", copyPath+"2", "--database-url", "postgres://x/y"); err == nil || !strings.Contains(err.Error(), "pg_dump") {
		t.Fatalf("backup of Postgres: %v", err)
	}
	// The store is lost; the copy goes in its place.
	raw, err := os.ReadFile(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "spent.db"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dataDir, spend.MarkerName)); err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, newConfig(t, "--data-dir", dataDir, "--keys", testKeyFile))
	if _, r := post(t, srv.url, rpctest.Redeem(2, tok)); r.Code() != "-32021" {
		t.Fatalf("a token spent before the backup, after the restore: %s", r.Code())
	}
}
