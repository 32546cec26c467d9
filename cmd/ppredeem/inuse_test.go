package main

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEmbeddedStoreInUse: a second serve on the data directory a running
// serve holds exits 1 with a message that says the store is in use by
// another process and names the file (not bbolt's "timeout").
func TestEmbeddedStoreInUse(t *testing.T) {
	dir := t.TempDir()
	startProcess(t, "--data-dir", dir, "--keys", testKeyFile)
	cmd := exec.Command(binary(t), "serve", "--listen", "127.0.0.1:0", "--data-dir", dir, "--keys", testKeyFile)
	cmd.Env = append(cmd.Environ(), "PPREDEEM_CONFIG=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if exit, ok := errors.AsType[*exec.ExitError](err); !ok || exit.ExitCode() != 1 {
		t.Fatalf("got %v, want exit status 1\n%s", err, stderr.String())
	}
	msg := stderr.String()
	for _, want := range []string{filepath.Join(dir, "spent.db"), "locked by another process", "stop that process first"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "timeout") {
		t.Errorf("the message speaks of a timeout:\n%s", msg)
	}
}
