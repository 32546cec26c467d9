package spend_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ppredeem/ppredeem/spend"
)

// fullDiskEnv names the store a child process of TestBoltReadyOnFullDisk works on.
const fullDiskEnv = "PPREDEEM_TEST_FULL_DISK_STORE"

// TestBoltReadyOnFullDisk: when the store file cannot grow (a full disk), spends fail and
// Ready fails with them; once the file can grow again, the next spend succeeds and Ready
// with it. The full disk is a file-size limit (RLIMIT_FSIZE) on a child process, which
// works on any Linux machine without mounting anything: writes past the limit fail with
// EFBIG (Go ignores the SIGXFSZ that comes with them).
func TestBoltReadyOnFullDisk(t *testing.T) {
	if path := os.Getenv(fullDiskEnv); path != "" {
		fullDiskChild(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "data", "spent.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestBoltReadyOnFullDisk$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), fullDiskEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestBoltReadyOnFullDisk") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
	// The spends acknowledged before and after the outage are all there.
	s := openBolt(t, path)
	if n, err := s.Count(ctxT(t), keyA); err != nil || n < 2 {
		t.Fatalf("Count after the child = %d, %v", n, err)
	}
}

func fullDiskChild(t *testing.T, path string) {
	ctx := ctxT(t)
	s := openBolt(t, path)
	prepare(t, s, keyA)
	first := randToken(t)
	wantSpend(t, s, keyA, first, nil)
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("Ready before the limit: %v", err)
	}

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: uint64(st.Size()), Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	var failed []byte
	var spendErr error
	for i := 0; i < 100000 && failed == nil; i++ {
		tok := randToken(t)
		if spendErr = s.Spend(ctx, keyA, tok); spendErr != nil {
			failed = tok
		}
	}
	if failed == nil {
		t.Fatalf("100000 spends succeeded with the file limited to %d bytes", st.Size())
	}
	if errors.Is(spendErr, spend.ErrAlreadySpent) || !strings.Contains(spendErr.Error(), "file too large") {
		t.Fatalf("Spend on a full disk = %v, want the write error", spendErr)
	}
	readyErr := s.Ready(ctx)
	if readyErr == nil || !strings.Contains(readyErr.Error(), "spends are failing") {
		t.Fatalf("Ready while spends fail = %v, want an error", readyErr)
	}
	t.Logf("full: Spend: %v; Ready: %v", spendErr, readyErr)

	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	wantSpend(t, s, keyA, failed, nil) // the failed spend recorded nothing
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("Ready after a spend succeeded again: %v", err)
	}
	wantSpend(t, s, keyA, first, spend.ErrAlreadySpent)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
