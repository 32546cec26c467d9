package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/verify"
)

// Tests in this file run the real binary as a child process, to kill it
// (SIGKILL, SIGTERM) and to run two of them side by side.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds ppredeem once per test run.
func binary(t testing.TB) string {
	t.Helper()
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
	logs *strings.Builder
	mu   *sync.Mutex
}

// startProcess runs `ppredeem serve` with args on a free port and waits for
// its "serving" log line.
func startProcess(t testing.TB, args ...string) *process {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Env = append(os.Environ(), "PPREDEEM_CONFIG=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan error, 1), logs: &strings.Builder{}, mu: &sync.Mutex{}}
	listen := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			var rec struct {
				Msg    string `json:"msg"`
				Listen string `json:"listen"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "ppredeem serving" {
				listen <- rec.Listen
			}
		}
		p.done <- cmd.Wait()
	}()
	select {
	case addr := <-listen:
		p.base = "http://" + addr
		p.url = p.base + "/api/redeem"
	case err := <-p.done:
		t.Fatalf("ppredeem exited before serving: %v\n%s", err, p.output())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("ppredeem did not start within 60s\n%s", p.output())
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return p
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p *process) kill(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("process survived SIGKILL")
	}
}

// TestCrashSafety redeems tokens concurrently while the server is killed
// with SIGKILL, several times; after each restart every token that was
// answered success answers -32021. For both stores.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes; skipped with -short")
	}
	key := testKey(t)
	for name, args := range storeArgs(t) {
		t.Run(name, func(t *testing.T) {
			args := append(args, "--keys", testKeyFile)
			var succeeded []token
			for round := range 3 {
				p := startProcess(t, args...)
				ctx, cancel := context.WithCancel(context.Background())
				var mu sync.Mutex
				var wg sync.WaitGroup
				for range 16 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for ctx.Err() == nil {
							tok := mint(t, key, verify.Increment)
							r, ok := tryPost(ctx, p.url, tok.body(1))
							if !ok {
								return
							}
							if r.code() == "success" {
								mu.Lock()
								succeeded = append(succeeded, tok)
								mu.Unlock()
							} else if r.code() != "-32603" {
								t.Errorf("round %d: unexpected %s", round, r.code())
							}
						}
					}()
				}
				time.Sleep(700 * time.Millisecond)
				p.kill(t) // mid-flight: requests are in the air
				cancel()
				wg.Wait()
			}
			if len(succeeded) == 0 {
				t.Fatal("no redemption succeeded: the test proved nothing")
			}
			p := startProcess(t, args...)
			for _, tok := range succeeded {
				if _, r := post(t, p.url, tok.body(2)); r.code() != "-32021" {
					t.Fatalf("a token answered success before a crash now answers %s", r.code())
				}
			}
			t.Logf("%d successes across 3 SIGKILLs, all remembered", len(succeeded))
		})
	}
}

// TestTwoServersOneDatabase: two serve processes on one Postgres database,
// the same token sent to both at once: exactly one success.
func TestTwoServersOneDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	args := []string{"--database-url", storeArgs(t)["postgres"][1], "--keys", testKeyFile}
	a, b := startProcess(t, args...), startProcess(t, args...)
	key := testKey(t)
	for i := range 50 {
		body := mint(t, key, verify.Increment).body(i)
		codes := make(chan string, 8)
		var wg sync.WaitGroup
		for j := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				url := a.url
				if j%2 == 1 {
					url = b.url
				}
				_, r := post(t, url, body)
				codes <- r.code()
			}()
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

// TestSIGTERMFinishesInFlight: SIGTERM while redemptions are in flight
// (their bodies half sent); every one of them gets its full answer, new
// connections are refused, and the process exits 0.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes; skipped with -short")
	}
	args := []string{"--database-url", storeArgs(t)["postgres"][1], "--keys", testKeyFile}
	p := startProcess(t, args...)
	addr := strings.TrimPrefix(p.base, "http://")
	key := testKey(t)
	const n = 20
	conns := make([]net.Conn, n)
	rests := make([]string, n)
	for i := range conns {
		body := mint(t, key, verify.Increment).body(i)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		half := len(body) / 2
		fmt.Fprintf(c, "POST /api/redeem HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:half])
		conns[i], rests[i] = c, body[half:]
	}
	time.Sleep(300 * time.Millisecond) // the server is now reading every request
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("a new connection was accepted after SIGTERM")
	}
	for i, c := range conns {
		if _, err := c.Write([]byte(rests[i])); err != nil {
			t.Fatalf("request %d: finishing the body: %v", i, err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("request %d in flight at SIGTERM got no answer: %v", i, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(raw), `"result":"success"`) {
			t.Fatalf("request %d in flight at SIGTERM: HTTP %d %s", i, resp.StatusCode, raw)
		}
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.output())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30s of SIGTERM")
	}
	if !strings.Contains(p.output(), `"msg":"stopped"`) {
		t.Errorf("no clean stop logged:\n%s", p.output())
	}
}
