package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// BenchmarkSlowUploads is the attack of issue 12 on a real `ppredeem
// serve` process (embedded store, default limits): N connections each
// send a body one byte short of max_body_bytes, all of it but the last
// byte at once, then the last byte slowHold later (inside read_timeout),
// read the answer and start again; meanwhile one legitimate client
// redeems fresh tokens one after another. It reports the legitimate
// client's latency percentiles and the server's peak RSS (VmHWM of
// /proc/<pid>/status), and what the attackers got.
//
//	go test -run '^$' -bench SlowUploads -benchtime 10s ./cmd/ppredeem/
//
// PPREDEEM_BENCH_BINARY runs another ppredeem binary (an older build, to
// compare in one sitting); PPREDEEM_BENCH_SERVE_ARGS adds flags to serve
// (space-separated, e.g. "--memory-limit-bytes 134217728").
func BenchmarkSlowUploads(b *testing.B) {
	for _, n := range []int{250, 500} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { slowUploads(b, n) })
	}
}

// slowHold is how long an attacker holds its last byte: well inside the
// default read_timeout (10s), so the server keeps waiting for it.
const slowHold = 5 * time.Second

func slowUploads(b *testing.B, attackers int) {
	bin := os.Getenv("PPREDEEM_BENCH_BINARY")
	if bin == "" {
		bin = binary(b)
	}
	args := []string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "info",
		"--data-dir", b.TempDir(), "--keys", testKeyFile}
	args = append(args, strings.Fields(os.Getenv("PPREDEEM_BENCH_SERVE_ARGS"))...)
	p := startBinaryAt(b, bin, "ppredeem serving", args)
	p.url = p.base + "/api/redeem"
	pid := p.cmd.Process.Pid
	idleRSS := procStatusKB(b, pid, "VmRSS")

	// The attack: a redeem request whose one binding fills the body to
	// max_body_bytes - 1 (the default, 1 MiB), so the server reads and
	// decodes all of it.
	const size = 1<<20 - 1
	head := `{"jsonrpc":"2.0","id":1,"method":"redeem","params":{"data":["AAAA","AAAA"],"bindings":["`
	tail := `"]}}`
	body := []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
	addr := strings.TrimPrefix(p.base, "http://")

	stop := make(chan struct{})
	var (
		mu       sync.Mutex
		outcomes = map[string]int{}
		started  sync.WaitGroup // each attacker's first body is out
		wg       sync.WaitGroup
	)
	note := func(o string) { mu.Lock(); outcomes[o]++; mu.Unlock() }
	started.Add(attackers)
	for range attackers {
		wg.Go(func() {
			first := true
			for {
				select {
				case <-stop:
					if first {
						started.Done()
					}
					return
				default:
				}
				note(slowUpload(addr, body, stop, func() {
					if first {
						first = false
						started.Done()
					}
				}))
			}
		})
	}
	started.Wait()

	// The legitimate client, timed alone.
	key := verifytest.Key()
	client := &http.Client{Timeout: 30 * time.Second}
	var latencies []time.Duration
	failures := 0
	for b.Loop() {
		tok, err := verifytest.NewToken(key, verify.Increment, false, verifytest.BrowserBindings())
		if err != nil {
			b.Fatal(err)
		}
		req, _ := http.NewRequest("POST", p.url, strings.NewReader(rpctest.Redeem(1, tok)))
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := client.Do(req)
		var r rpctest.Response
		if err == nil {
			var raw []byte
			raw, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				r, err = rpctest.Decode(raw)
			}
		}
		latencies = append(latencies, time.Since(start))
		if err != nil || r.Code() != "success" {
			failures++
			if failures <= 3 {
				b.Errorf("a legitimate redemption failed: %v %+v", err, r.Error)
			}
		}
	}
	close(stop)
	wg.Wait()

	peak := procStatusKB(b, pid, "VmHWM")
	slices.Sort(latencies)
	pct := func(q float64) float64 {
		return float64(latencies[min(len(latencies)-1, int(q*float64(len(latencies))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(latencies[len(latencies)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(peak)/1024, "VmHWM-MB")
	b.ReportMetric(float64(idleRSS)/1024, "idle-RSS-MB")
	mu.Lock()
	b.Logf("%d attackers, %d legitimate redemptions (%d failed); idle RSS %d MB, peak RSS %d MB; attack outcomes %v",
		attackers, len(latencies), failures, idleRSS/1024, peak/1024, outcomes)
	mu.Unlock()
}

// slowUpload sends one attack request and returns what became of it: the
// answer's HTTP status, or the step that failed. sent is called once the
// body but its last byte is out.
func slowUpload(addr string, body []byte, stop <-chan struct{}, sent func()) string {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		sent()
		return "dial error"
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(slowHold + 30*time.Second))
	fmt.Fprintf(c, "POST /api/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	_, err = c.Write(body[:len(body)-1])
	sent()
	if err != nil {
		return "reset while sending"
	}
	select {
	case <-time.After(slowHold):
	case <-stop:
	}
	// A server that refused and closed fails this write; its answer may
	// still be readable.
	_, _ = c.Write(body[len(body)-1:])
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "no answer"
	}
	resp.Body.Close()
	return strconv.Itoa(resp.StatusCode)
}

// procStatusKB reads a field of /proc/<pid>/status, in kB.
func procStatusKB(b *testing.B, pid int, field string) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}
