package spend_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/spend/pgtest"
)

// holderEnv tells a child process of this test binary to hold keyA: "postgres <dsn>" or
// "bolt <path>".
const holderEnv = "PPREDEEM_TEST_HOLDER"

// TestMain runs the holder child when asked, and the tests otherwise.
func TestMain(m *testing.M) {
	if spec := os.Getenv(holderEnv); spec != "" {
		os.Exit(holderChild(spec))
	}
	os.Exit(m.Run())
}

// holderChild is a stand-in server: it opens the store, holds keyA (TTL 2s, renewed every
// 200ms), says "holding <holder>" on stdout, and on SIGTERM stops holding and exits 0.
func holderChild(spec string) int {
	kind, target, _ := strings.Cut(spec, " ")
	ctx := context.Background()
	var s spend.Store
	var err error
	if kind == "postgres" {
		s, err = spend.OpenPostgres(ctx, spend.PostgresConfig{DSN: target})
	} else {
		s, err = spend.OpenBolt(spend.BoltConfig{Path: target, MustExist: true})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	h, err := spend.StartHolding(ctx, s, []string{keyA}, spend.HoldConfig{TTL: 2 * time.Second, Renew: 200 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("holding %s\n", h.Holder())
	<-term
	if err := h.Stop(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startHolder starts a holder child and waits until it holds keyA.
func startHolder(t *testing.T, spec string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holderEnv+"="+spec)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	holder, ok := strings.CutPrefix(strings.TrimSpace(line), "holding ")
	if err != nil || !ok {
		t.Fatalf("holder child said %q, %v", line, err)
	}
	return cmd, holder
}

// TestHoldOfAnotherProcess: a server process that holds a key stops a retire from another
// process; stopped with SIGTERM it releases the key at once; killed with SIGKILL its hold
// lapses after the TTL, and only then may the key be retired.
func TestHoldOfAnotherProcess(t *testing.T) {
	dsn := pgtest.NewMigratedDatabase(t, t.Name())
	ctx := ctxT(t)
	p := openPostgres(t, spend.PostgresConfig{DSN: dsn})
	prepare(t, p, keyA)

	child, holder := startHolder(t, "postgres "+dsn)
	err := p.Retire(ctx, keyA)
	if !errors.Is(err, spend.ErrKeyHeld) || !strings.Contains(err.Error(), holder) {
		t.Fatalf("Retire while another process holds the key = %v, want ErrKeyHeld naming %s", err, holder)
	}
	// The child keeps renewing: its hold outlives the first TTL.
	first := holdExpiry(t, p)
	waitFor(t, 10*time.Second, "a renewal", func() bool { return holdExpiry(t, p).After(first.Add(time.Second)) })
	if err := p.Retire(ctx, keyA); !errors.Is(err, spend.ErrKeyHeld) {
		t.Fatalf("Retire after renewals = %v, want ErrKeyHeld", err)
	}
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("holder after SIGTERM: %v", err)
	}
	if infos, err := p.Keys(ctx); err != nil || len(infos[0].Holds) != 0 {
		t.Fatalf("Keys after the holder stopped = %+v, %v; want no holds", infos, err)
	}

	// Killed: no release, the hold lapses.
	child, _ = startHolder(t, "postgres "+dsn)
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	if err := p.Retire(ctx, keyA); !errors.Is(err, spend.ErrKeyHeld) {
		t.Fatalf("Retire right after the holder was killed = %v, want ErrKeyHeld until the TTL passes", err)
	}
	waitFor(t, 10*time.Second, "the killed holder's hold to lapse", func() bool { return p.Retire(ctx, keyA) == nil })
}

func holdExpiry(t *testing.T, s spend.Store) time.Time {
	t.Helper()
	infos, err := s.Keys(ctxT(t))
	if err != nil || len(infos) == 0 || len(infos[0].Holds) != 1 {
		t.Fatalf("Keys = %+v, %v; want one hold on %s", infos, err, keyA)
	}
	return infos[0].Holds[0].Expires
}

// TestBoltHeldByAnotherProcess: the embedded store's file serves one process: while a server
// process has it, another process cannot open it to retire a key; once that server is
// killed, its holds are gone with it.
func TestBoltHeldByAnotherProcess(t *testing.T) {
	path, _ := newBoltStore(t, 10)
	child, _ := startHolder(t, "bolt "+path)
	wantOpenError(t, spend.BoltConfig{Path: path, MustExist: true}, spend.ErrStoreInUse, "stop that process first")
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	s := openBolt(t, path)
	if err := s.Retire(ctxT(t), keyA); err != nil {
		t.Fatalf("Retire after the holder process died: %v", err)
	}
}
