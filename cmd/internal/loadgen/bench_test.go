package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/ppredeem/ppredeem/verify"
)

// Benchmarks of one request's client cost, against an in-process TCP server
// that answers every request with the same fixed answer without allocating
// (so allocs/op is the client's). ns/op is wall time per round trip and
// includes the server's share; cpu-ns/op (Linux and BSDs) is the process's
// user+system CPU time per request, the server goroutine included. The
// server's share alone is roughly BenchmarkRawRoundTrip, a client that only
// writes the request and reads a known number of bytes, so the client's own
// cost is the difference.
//
//	go test -run '^$' -bench RoundTrip -benchtime 3s ./cmd/internal/loadgen/

// newFixedServer starts a TCP server that reads HTTP/1.1 requests (headers
// and a Content-Length body) and answers each with answer; it returns its
// address.
func newFixedServer(tb testing.TB, answer []byte) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Go(func() { serveFixed(conn, answer) })
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

var contentLength = []byte("content-length:")

func serveFixed(conn net.Conn, answer []byte) {
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 8192)
	for {
		length := 0
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
			if len(line) > len(contentLength) && bytes.EqualFold(line[:len(contentLength)], contentLength) {
				n, err := strconv.Atoi(string(bytes.TrimSpace(line[len(contentLength):])))
				if err != nil {
					return
				}
				length = n
			}
		}
		if _, err := br.Discard(length); err != nil {
			return
		}
		if _, err := conn.Write(answer); err != nil {
			return
		}
	}
}

// benchBody is a request body the size of a real one (about 330 bytes).
func benchBody(tb testing.TB) []byte {
	bt, err := newBodyTemplate(verify.Increment)
	if err != nil {
		tb.Fatal(err)
	}
	var t, tag [tokenLen]byte
	return bt.appendBody(nil, 123456, t[:], tag[:])
}

// benchAnswer is what ppredeem answers to a successful redemption.
var benchAnswer = []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" +
	"Date: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: 43\r\n\r\n" + okBody)

// cpuBench runs the round trips of setup's step functions (one per
// connection) and reports cpu-ns/op besides ns/op and allocs/op.
func cpuBench(b *testing.B, parallel bool, setup func() func() error) {
	b.ReportAllocs()
	var cpu0 time.Duration
	if parallel {
		// 64 goroutines and connections on 2 cores, like the default bench.
		b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
		cpu0 = cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			step := setup()
			for pb.Next() {
				if err := step(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		step := setup()
		if err := step(); err != nil { // connect
			b.Fatal(err)
		}
		cpu0 = cpuTime()
		for b.Loop() {
			if err := step(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

var connsName = map[bool]string{false: "conns=1", true: "conns=64"}

// BenchmarkRoundTrip is what a request costs the generator: the fasthttp
// round trip and the decoding of the answer, as a worker does them.
func BenchmarkRoundTrip(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		b.Run(connsName[parallel], func(b *testing.B) {
			addr := newFixedServer(b, benchAnswer)
			body := benchBody(b)
			c, err := newHTTPClient(context.Background(), Config{URL: "http://" + addr + "/api/redeem",
				Concurrency: 64, Timeout: 10 * time.Second, IdleConnTimeout: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			defer c.close()
			cpuBench(b, parallel, func() func() error {
				s := c.newSender(context.Background())
				var p fastjson.Parser
				return func() error {
					answer, _, err := s.send(body)
					if err != nil {
						return err
					}
					if code, ok := parseOutcome(&p, answer); !ok || code != codeSuccess {
						return fmt.Errorf("answer %q", answer)
					}
					return nil
				}
			})
		})
	}
}

// BenchmarkRawRoundTrip is the floor: write a request of the same size,
// read the known answer length, nothing else.
func BenchmarkRawRoundTrip(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		b.Run(connsName[parallel], func(b *testing.B) {
			addr := newFixedServer(b, benchAnswer)
			body := benchBody(b)
			req := fmt.Appendf(nil, "POST /api/redeem HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body)
			var mu sync.Mutex
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			cpuBench(b, parallel, func() func() error {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					return func() error { return err }
				}
				mu.Lock()
				conns = append(conns, conn)
				mu.Unlock()
				buf := make([]byte, len(benchAnswer))
				return func() error {
					if _, err := conn.Write(req); err != nil {
						return err
					}
					_, err := io.ReadFull(conn, buf)
					return err
				}
			})
		})
	}
}

// BenchmarkParseOutcome is the decoding of an answer alone.
func BenchmarkParseOutcome(b *testing.B) {
	var p fastjson.Parser
	for _, tc := range []struct {
		answer string
		want   int
	}{{okBody, codeSuccess}, {`{"jsonrpc":"2.0","id":123456,"error":{"code":-32021,"message":"Redemption for token that has already been spent"}}`, -32021}} {
		body := []byte(tc.answer)
		b.Run(fmt.Sprintf("code=%d", tc.want), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if code, ok := parseOutcome(&p, body); !ok || code != tc.want {
					b.Fatal(code, ok)
				}
			}
		})
	}
}
