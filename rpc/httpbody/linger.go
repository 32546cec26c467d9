package httpbody

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// LingerLimits bound what Linger reads after an answer.
type LingerLimits struct {
	// Bytes is the most body bytes read and discarded.
	Bytes int64
	// Total is the most time spent (nginx's lingering_time).
	Total time.Duration
	// Idle is the longest wait for the next bytes (nginx's
	// lingering_timeout).
	Idle time.Duration
}

// DefaultLinger are the limits the ppredeem listeners use. nginx lingers
// up to 30 s, waiting up to 5 s between reads; ppredeem's clients are
// programs that send a body in one go, so a client silent for a second has
// stopped, and 5 s covers 8 MiB (eight times the largest default body
// limit) on an uplink of 15 Mbit/s. A lingering connection costs a
// goroutine and net/http's buffers, no body memory.
var DefaultLinger = LingerLimits{Bytes: 8 << 20, Total: 5 * time.Second, Idle: time.Second}

// Linger wraps next so that an answer given before the request body was
// read to its end reaches a client that is still sending it (see the
// package documentation). next sees the request with its body wrapped;
// it must not keep reading the body after it returns.
func Linger(next http.Handler, lim LingerLimits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ProtoMajor != 1 {
			next.ServeHTTP(w, r)
			return
		}
		t := &trackedBody{ReadCloser: r.Body}
		inner := r.WithContext(r.Context()) // a shallow copy
		inner.Body = t
		next.ServeHTTP(w, inner)
		switch {
		case t.eof:
			return // read whole: nothing is left to linger for
		case t.read == 0 && strings.EqualFold(r.Header.Get("Expect"), "100-continue"):
			return // the client waits for a 100 Continue it will not get
		case r.ContentLength > 0 && r.ContentLength-t.read > lim.Bytes:
			return // more than the bound is left: net/http closes at once
		}
		lim.discard(w, r.Body)
	})
}

// trackedBody notes how much of the body the handler read and whether it
// read to the end.
type trackedBody struct {
	io.ReadCloser
	read int64
	eof  bool
}

func (t *trackedBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	t.read += int64(n)
	if err == io.EOF {
		t.eof = true
	}
	return n, err
}

var discardBufs = sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}

// discard sends the answer, then reads and discards body within lim.
func (lim LingerLimits) discard(w http.ResponseWriter, body io.Reader) {
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	bufp := discardBufs.Get().(*[]byte)
	defer discardBufs.Put(bufp)
	buf := *bufp
	end := time.Now().Add(lim.Total)
	for left := lim.Bytes; left > 0; {
		deadline := time.Now().Add(lim.Idle)
		if deadline.After(end) {
			deadline = end
		}
		if rc.SetReadDeadline(deadline) != nil {
			return
		}
		n, err := body.Read(buf[:min(int64(len(buf)), left)])
		left -= int64(n)
		if err != nil {
			// io.EOF: the client sent all of it and reads the answer;
			// anything else (a deadline passed, the client left): done.
			return
		}
	}
}
