package httpbody

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// refuseUnread answers 413 without reading the body, as a handler does for
// a Content-Length over its limit.
var refuseUnread = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	io.WriteString(w, `{"refused":true}`)
})

// lingerServer serves next behind Linger(lim) on a real TCP listener. The
// returned channel gets, for each request, the number of body bytes read
// through Linger (by next, then by Linger after next returned), once
// Linger is done; net/http's own reads are not counted.
func lingerServer(t *testing.T, lim LingerLimits, next http.Handler) (addr string, lingered <-chan int64) {
	t.Helper()
	done := make(chan int64, 16)
	linger := Linger(next, lim)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Count what Linger reads: its own r.Body is this counter.
		c := &countingBody{ReadCloser: r.Body}
		inner := r.WithContext(r.Context())
		inner.Body = c
		linger.ServeHTTP(w, inner)
		done <- c.n.Load()
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), done
}

type countingBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tc := c.(*net.TCPConn)
	// A small send buffer: a body that does not fit must be read by the
	// server before the client's writes complete.
	tc.SetWriteBuffer(32 << 10)
	return tc
}

func waitLingered(t *testing.T, lingered <-chan int64) int64 {
	t.Helper()
	select {
	case n := <-lingered:
		return n
	case <-time.After(20 * time.Second):
		t.Fatal("the handler did not return within 20s")
		return 0
	}
}

// TestLingerDeliversTheAnswer: a client that writes its whole body before
// it reads gets the answer given before the body was read.
func TestLingerDeliversTheAnswer(t *testing.T) {
	addr, lingered := lingerServer(t, DefaultLinger, refuseUnread)
	const size = 4 << 20
	c := dial(t, addr)
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
	chunk := make([]byte, 64<<10)
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			t.Fatalf("writing the body after %d bytes: %v", sent, err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 413 || string(body) != `{"refused":true}` {
		t.Fatalf("answer: HTTP %d %q %v", resp.StatusCode, body, err)
	}
	if n := waitLingered(t, lingered); n != size {
		t.Fatalf("lingered over %d bytes, want the whole body (%d)", n, size)
	}
}

// TestLingerBytes: no more than Bytes are read after the answer.
func TestLingerBytes(t *testing.T) {
	lim := LingerLimits{Bytes: 64 << 10, Total: time.Minute, Idle: time.Minute}
	addr, lingered := lingerServer(t, lim, refuseUnread)
	c := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	go func() { // an endless chunked body, until the server closes
		chunk := []byte(fmt.Sprintf("%x\r\n%s\r\n", 4096, strings.Repeat("z", 4096)))
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	if n := waitLingered(t, lingered); n != lim.Bytes {
		t.Fatalf("lingered over %d bytes, want %d", n, lim.Bytes)
	}
}

// TestLingerIdle: a client that stops sending is let go after Idle.
func TestLingerIdle(t *testing.T) {
	lim := LingerLimits{Bytes: 1 << 30, Total: time.Minute, Idle: 200 * time.Millisecond}
	addr, lingered := lingerServer(t, lim, refuseUnread)
	c := dial(t, addr)
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 10<<20)
	c.Write(make([]byte, 1<<20)) // then silence, the connection open
	if n := waitLingered(t, lingered); n != 1<<20 {
		t.Fatalf("lingered over %d bytes, want %d", n, 1<<20)
	}
	// The answer came before the lingering.
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 413 {
		t.Fatalf("answer: %v %v", resp, err)
	}
}

// TestLingerTotal: a client that keeps trickling is let go after Total.
func TestLingerTotal(t *testing.T) {
	lim := LingerLimits{Bytes: 1 << 30, Total: 300 * time.Millisecond, Idle: time.Minute}
	addr, lingered := lingerServer(t, lim, refuseUnread)
	c := dial(t, addr)
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 10<<20)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a byte every 5 ms: never idle, never done
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte{'t'}); err != nil {
					return
				}
			}
		}
	}()
	if n := waitLingered(t, lingered); n == 0 || n >= 10<<20 {
		t.Fatalf("lingered over %d bytes", n)
	}
}

// TestLingerSkips: nothing is read after the answer when the handler read
// the body whole, when the client waits for "100 Continue", or when more
// than Bytes are declared to be left.
func TestLingerSkips(t *testing.T) {
	lim := LingerLimits{Bytes: 1 << 20, Total: time.Minute, Idle: time.Minute}
	readAll := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d", len(b))
	})
	t.Run("read whole, keep-alive", func(t *testing.T) {
		addr, lingered := lingerServer(t, lim, readAll)
		c := dial(t, addr)
		br := bufio.NewReader(c)
		for range 2 { // the connection stays usable
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != "5" {
				t.Fatalf("answer %q", b)
			}
			if n := waitLingered(t, lingered); n != 5 { // the handler's 5
				t.Fatalf("read %d bytes, want the handler's 5", n)
			}
		}
	})
	t.Run("expect 100-continue", func(t *testing.T) {
		addr, lingered := lingerServer(t, lim, refuseUnread)
		c := dial(t, addr)
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 413 {
			t.Fatalf("answer: %v %v (want 413, never 100 Continue)", resp, err)
		}
		if n := waitLingered(t, lingered); n != 0 {
			t.Fatalf("lingered over %d bytes", n)
		}
	})
	t.Run("more than Bytes left", func(t *testing.T) {
		addr, lingered := lingerServer(t, lim, refuseUnread)
		c := dial(t, addr)
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", lim.Bytes+1)
		if n := waitLingered(t, lingered); n != 0 {
			t.Fatalf("lingered over %d bytes", n)
		}
	})
}
