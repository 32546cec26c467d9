package main

import (
	"net/http"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// (5) /readyz on a full data directory (embedded store): 503 while the
// store cannot write, and 200 with spends succeeding again once it can.
// The full disk is a file-size limit (RLIMIT_FSIZE) set on the running
// serve process with prlimit(2), below the store file's size: every write
// past it fails with EFBIG, as on a full disk, and nothing is mounted (the
// Go runtime ignores the SIGXFSZ that comes with it).
func TestReadyzOnFullDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	p := startProcess(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--spend-timeout", "1s")
	spent := verifytest.Mint(t, verifytest.Key(), verify.Increment)
	if code := p.redeem(t, spent); code != "success" {
		t.Fatalf("redemption: %s", code)
	}
	pid := p.cmd.Process.Pid
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
		t.Fatal(err)
	}
	setLimit := func(cur uint64) {
		t.Helper()
		if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: cur, Max: old.Max}, nil); err != nil {
			t.Fatal(err)
		}
	}
	setLimit(4096) // bbolt's first page: every commit writes past it
	waitFor(t, "/readyz 503 on a full disk", func() bool {
		return getStatus(t, p.base+"/readyz") == http.StatusServiceUnavailable
	})
	failed := verifytest.Mint(t, verifytest.Key(), verify.Increment)
	if code := p.redeem(t, failed); code != "-32603" {
		t.Fatalf("redemption on a full disk: %s, want -32603", code)
	}
	setLimit(old.Cur)
	waitFor(t, "/readyz 200 once the disk has room", func() bool { return getStatus(t, p.base+"/readyz") == http.StatusOK })
	if code := p.redeem(t, failed); code != "success" {
		t.Fatalf("the token that failed on a full disk: %s, want success (nothing was recorded)", code)
	}
	if code := p.redeem(t, spent); code != "-32021" {
		t.Fatalf("the token spent before: %s, want -32021", code)
	}
}
