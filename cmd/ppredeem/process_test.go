package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// Tests in this file run the real binary as a child process, to kill it
// (SIGKILL, SIGTERM) and to run two of them side by side.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binaryEnv names a prebuilt ppredeem binary the process tests run instead
// of building this tree's: to show that a test fails on an older build.
const binaryEnv = "PPREDEEM_TEST_BINARY"

// binary builds ppredeem once per test run (or takes $PPREDEEM_TEST_BINARY).
func binary(t testing.TB) string {
	t.Helper()
	if path := os.Getenv(binaryEnv); path != "" {
		return path
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ppredeem-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ppredeem")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type process struct {
	cmd  *exec.Cmd
	url  string
	base string
	done chan error
	logs rpctest.LogBuffer
	msgs chan string // the msg of every JSON log line
}

// startProcess runs `ppredeem serve` with args on a free port and waits for
// its "serving" log line.
func startProcess(t testing.TB, args ...string) *process {
	t.Helper()
	p := startBinary(t, "ppredeem serving", append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...))
	p.url = p.base + "/api/redeem"
	return p
}

// startBinary runs the ppredeem binary with args (which must ask for JSON
// logs) and extra environment, and waits for the log line whose msg is
// serving, which names the listen address.
func startBinary(t testing.TB, serving string, args []string, env ...string) *process {
	t.Helper()
	return startBinaryAt(t, binary(t), serving, args, env...)
}

// startBinaryAt is startBinary with the binary at path.
func startBinaryAt(t testing.TB, path, serving string, args []string, env ...string) *process {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(append(os.Environ(), "PPREDEEM_CONFIG="), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan error, 1), msgs: make(chan string, 1000)}
	listen := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			_, _ = p.logs.Write([]byte(line + "\n"))
			var rec struct {
				Msg    string `json:"msg"`
				Listen string `json:"listen"`
			}
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			if rec.Msg == serving {
				listen <- rec.Listen
			}
			select {
			case p.msgs <- rec.Msg:
			default: // nobody waits for that many lines
			}
		}
		p.done <- cmd.Wait()
	}()
	select {
	case addr := <-listen:
		p.base = "http://" + addr
	case err := <-p.done:
		t.Fatalf("%s exited before serving: %v\n%s", args[0], err, p.output())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s did not start within 60s\n%s", args[0], p.output())
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return p
}

func (p *process) output() string { return p.logs.String() }

// waitLog waits for a log line whose msg starts with prefix.
func (p *process) waitLog(t testing.TB, prefix string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case msg := <-p.msgs:
			if strings.HasPrefix(msg, prefix) {
				return
			}
		case <-deadline:
			t.Fatalf("no log line %q within 30s\n%s", prefix, p.output())
		}
	}
}

// exit waits for the process to end.
func (p *process) exit(t testing.TB, within time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(within):
		t.Fatalf("no exit within %s\n%s", within, p.output())
		return nil
	}
}

func (p *process) signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// TestCrashSafety redeems tokens concurrently while the server is killed
// with SIGKILL, several times; after each restart every token that was
// answered success answers -32021. For both stores.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes; skipped with -short")
	}
	key := verifytest.Key()
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		args := append(storeArgs, "--keys", testKeyFile)
		var mu sync.Mutex
		var succeeded []verifytest.Token
		for round := range 3 {
			p := startProcess(t, args...)
			ctx, cancel := context.WithCancel(context.Background())
			var roundSuccesses atomic.Int32
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for ctx.Err() == nil {
						tok, err := verifytest.NewToken(key, verify.Increment, false, verifytest.BrowserBindings())
						if err != nil {
							t.Error(err)
							return
						}
						_, r, err := rpctest.Do(ctx, "POST", p.url, rpctest.Redeem(1, tok))
						switch {
						case errors.Is(err, rpctest.ErrNotJSONRPC):
							t.Errorf("round %d: %v", round, err)
						case err != nil:
							return // the process is gone
						case r.Code() == "success":
							mu.Lock()
							succeeded = append(succeeded, tok)
							mu.Unlock()
							roundSuccesses.Add(1)
						case r.Code() != "-32603":
							t.Errorf("round %d: unexpected %s", round, r.Code())
						}
					}
				})
			}
			// Kill mid-flight, once this round has committed spends: the
			// other requests are in the air.
			waitFor(t, "50 successes in this round", func() bool { return roundSuccesses.Load() >= 50 })
			p.signal(t, syscall.SIGKILL)
			p.exit(t, 30*time.Second)
			cancel()
			wg.Wait()
		}
		p := startProcess(t, args...)
		for _, tok := range succeeded {
			if _, r := post(t, p.url, rpctest.Redeem(2, tok)); r.Code() != "-32021" {
				t.Fatalf("a token answered success before a crash now answers %s", r.Code())
			}
		}
		t.Logf("%d successes across 3 SIGKILLs, all remembered", len(succeeded))
	})
}

// TestTwoServersOneDatabase: two serve processes on one Postgres database,
// the same token sent to both at once: exactly one success.
func TestTwoServersOneDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	args := append(postgresStore(t), "--keys", testKeyFile)
	a, b := startProcess(t, args...), startProcess(t, args...)
	key := verifytest.Key()
	for i := range 50 {
		body := rpctest.Redeem(i, verifytest.Mint(t, key, verify.Increment))
		codes := make(chan string, 8)
		var wg sync.WaitGroup
		for j := range 8 {
			wg.Go(func() {
				url := a.url
				if j%2 == 1 {
					url = b.url
				}
				_, r, err := rpctest.Do(context.Background(), "POST", url, body)
				if err != nil {
					t.Error(err)
					return
				}
				codes <- r.Code()
			})
		}
		wg.Wait()
		close(codes)
		count := map[string]int{}
		for c := range codes {
			count[c]++
		}
		if count["success"] != 1 || count["-32021"] != 7 {
			t.Fatalf("token %d: %v", i, count)
		}
	}
}

// halfSent is a redemption whose headers and first half of the body are on
// the wire, on a connection of its own.
type halfSent struct {
	conn net.Conn
	rd   *bufio.Reader
	rest string
}

// sendHalf sends the headers of a redemption with "Expect: 100-continue"
// and waits for the server's "100 Continue": the handler is running and
// reading the body. Then it sends the first half of the body.
func sendHalf(t testing.TB, addr, body string) halfSent {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /api/redeem HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(body))
	rd := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	status, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 100 ") {
		t.Fatalf("want 100 Continue, got %q (%v)", status, err)
	}
	if blank, err := rd.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("after 100 Continue: %q (%v)", blank, err)
	}
	half := len(body) / 2
	if _, err := io.WriteString(c, body[:half]); err != nil {
		t.Fatal(err)
	}
	return halfSent{c, rd, body[half:]}
}

// TestSIGTERMFinishesInFlight: SIGTERM while redemptions are in flight
// (their handlers reading half-sent bodies); every one of them gets its
// full answer, new connections are refused, and the process exits 0.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	p := startProcess(t, append(postgresStore(t), "--keys", testKeyFile)...)
	addr := strings.TrimPrefix(p.base, "http://")
	key := verifytest.Key()
	const n = 20
	inFlight := make([]halfSent, n)
	for i := range inFlight {
		inFlight[i] = sendHalf(t, addr, rpctest.Redeem(i, verifytest.Mint(t, key, verify.Increment)))
	}
	p.signal(t, syscall.SIGTERM)
	p.waitLog(t, "shutting down: draining in-flight requests")
	waitFor(t, "new connections are refused", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	for i, h := range inFlight {
		if _, err := io.WriteString(h.conn, h.rest); err != nil {
			t.Fatalf("request %d: finishing the body: %v", i, err)
		}
		h.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(h.rd, nil)
		if err != nil {
			t.Fatalf("request %d in flight at SIGTERM got no answer: %v", i, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(raw), `"result":"success"`) {
			t.Fatalf("request %d in flight at SIGTERM: HTTP %d %s", i, resp.StatusCode, raw)
		}
	}
	if err := p.exit(t, 30*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.output())
	}
	if !strings.Contains(p.output(), `"msg":"stopped"`) {
		t.Errorf("no clean stop logged:\n%s", p.output())
	}
}

// TestSecondSignalExitsAtOnce: SIGTERM starts a long drain delay (the
// process keeps serving, /readyz fails); a second SIGTERM ends it at once,
// and so does SIGINT after SIGINT.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := startProcess(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--drain-delay", "10m")
			p.signal(t, sig)
			p.waitLog(t, "shutting down: /readyz now fails")
			if status := getStatus(t, p.base+"/readyz"); status != http.StatusServiceUnavailable {
				t.Errorf("/readyz while draining: HTTP %d, want 503", status)
			}
			if _, r := post(t, p.url, rpctest.Redeem(1, verifytest.Mint(t, verifytest.Key(), verify.Increment))); r.Code() != "success" {
				t.Errorf("redemption while draining: %+v", r.Error)
			}
			p.signal(t, sig)
			err := p.exit(t, 30*time.Second)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit after the second signal: %v\n%s", err, p.output())
			}
			if !strings.Contains(p.output(), "second signal during the drain delay") {
				t.Errorf("the early stop is not logged:\n%s", p.output())
			}
		})
	}
}
