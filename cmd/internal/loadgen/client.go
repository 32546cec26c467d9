package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// The HTTP client of a run: one fasthttp.HostClient
// (https://github.com/valyala/fasthttp, client.go) for http:// and https://
// URLs alike. See the package doc for why this library and what it is told.

const (
	// ioBufferSize is the size of a connection's read and write buffers;
	// the status line and headers of an answer must fit in the read buffer.
	ioBufferSize = 4096
	// dialTimeout bounds one dial (the request's Timeout bounds it too).
	dialTimeout = 5 * time.Second
	// Backoff before the next request after a failed dial: doubles from
	// minDialBackoff up to maxDialBackoff, reset by a request that got a
	// connection.
	minDialBackoff = 5 * time.Millisecond
	maxDialBackoff = 200 * time.Millisecond
)

// errAborted is the error of a request that the run's cancellation stopped.
var errAborted = errors.New("loadgen: request aborted: the run was cancelled")

// httpClient sends the requests of one run to the URL's host over at most
// Concurrency keep-alive connections.
type httpClient struct {
	hc      *fasthttp.HostClient
	dialer  *dialer
	uri     string
	timeout time.Duration
}

// newHTTPClient prepares the client for c (validated by withDefaults).
// Cancelling ctx aborts the requests in flight and every later one.
func newHTTPClient(ctx context.Context, c Config) (*httpClient, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("loadgen: URL: %w", err)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	d := newDialer(ctx)
	hc := &fasthttp.HostClient{
		Addr:        net.JoinHostPort(u.Hostname(), port),
		IsTLS:       u.Scheme == "https",
		TLSConfig:   c.TLSConfig,
		DialTimeout: d.dial,
		// One connection per request in flight, and no more: a request
		// that finds them all busy (only while an idle one is being closed)
		// waits for one instead of failing.
		MaxConns:           c.Concurrency,
		MaxConnWaitTimeout: c.Timeout,
		ConnPoolStrategy:   fasthttp.LIFO,
		// A connection idle for longer is closed, not reused: see
		// Config.IdleConnTimeout.
		MaxIdleConnDuration: c.IdleConnTimeout,
		// Never retried: a redemption that may have reached the server is
		// never sent twice.
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		MaxResponseBodySize:       maxResponse,
		ReadBufferSize:            ioBufferSize,
		WriteBufferSize:           ioBufferSize,
		NoDefaultUserAgentHeader:  true,
		DisablePathNormalizing:    true, // send the path exactly as given
	}
	return &httpClient{hc: hc, dialer: d, uri: c.URL, timeout: c.Timeout}, nil
}

// close closes the idle connections and stops watching the context. Call it
// once no request is in flight.
func (c *httpClient) close() {
	c.dialer.stopWatching()
	c.hc.CloseIdleConnections()
}

// sender is one worker's side of the client: its request and response,
// reused for every request, and its dial backoff. It is used by one
// goroutine.
type sender struct {
	c       *httpClient
	ctx     context.Context
	req     fasthttp.Request
	resp    fasthttp.Response
	backoff time.Duration // wait before the next request: the last dial failed
}

func (c *httpClient) newSender(ctx context.Context) *sender {
	s := &sender{c: c, ctx: ctx}
	s.req.SetRequestURI(c.uri)
	s.req.Header.SetMethod(fasthttp.MethodPost)
	s.req.Header.SetContentType("application/json")
	return s
}

// send POSTs body and returns the answer's body (valid until the next call)
// and HTTP status. Any error is a transport failure; the connection it
// happened on is closed.
func (s *sender) send(body []byte) ([]byte, int, error) {
	if s.backoff > 0 {
		t := time.NewTimer(s.backoff)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return nil, 0, errAborted
		case <-t.C:
		}
	}
	s.req.SetBodyRaw(body)
	err := s.c.hc.DoTimeout(&s.req, &s.resp, s.c.timeout)
	if _, failed := errors.AsType[*dialError](err); failed {
		s.backoff = min(max(2*s.backoff, minDialBackoff), maxDialBackoff)
	} else {
		s.backoff = 0
	}
	if err != nil {
		return nil, 0, err
	}
	return s.resp.Body(), s.resp.StatusCode(), nil
}

// dialer opens the connections of a run and keeps track of them, so that
// cancelling the run's context can close them all: that aborts the requests
// in flight, which fasthttp, taking no context, cannot do otherwise. After
// that it dials nothing.
type dialer struct {
	ctx  context.Context
	stop func() bool // stops the context.AfterFunc

	mu      sync.Mutex
	conns   map[*trackedConn]struct{}
	aborted bool
}

func newDialer(ctx context.Context) *dialer {
	d := &dialer{ctx: ctx, conns: make(map[*trackedConn]struct{})}
	d.stop = context.AfterFunc(ctx, d.abort)
	return d
}

// dial is the HostClient's DialTimeout: timeout is what is left of the
// request's, or 0 for a connection dialled ahead of a waiting request.
func (d *dialer) dial(addr string, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 || timeout > dialTimeout {
		timeout = dialTimeout
	}
	if d.ctx.Err() != nil {
		return nil, errAborted
	}
	nd := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	conn, err := nd.DialContext(d.ctx, "tcp", addr)
	if err != nil {
		if d.ctx.Err() != nil {
			return nil, errAborted
		}
		return nil, &dialError{err}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.aborted {
		conn.Close()
		return nil, errAborted
	}
	tc := &trackedConn{Conn: conn, d: d}
	d.conns[tc] = struct{}{}
	return tc, nil
}

// abort closes every connection and refuses new ones.
func (d *dialer) abort() {
	d.mu.Lock()
	d.aborted = true
	conns := make([]net.Conn, 0, len(d.conns))
	for tc := range d.conns {
		conns = append(conns, tc.Conn)
	}
	clear(d.conns)
	d.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (d *dialer) stopWatching() { d.stop() }

// trackedConn is a connection the dialer knows about until it is closed.
type trackedConn struct {
	net.Conn
	d *dialer
}

func (c *trackedConn) Close() error {
	c.d.mu.Lock()
	delete(c.d.conns, c)
	c.d.mu.Unlock()
	return c.Conn.Close()
}

// dialError is a failure to connect; the worker backs off before its next
// request.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }
