package loadgen

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The fast path: a minimal HTTP/1.1 keep-alive client over one net.Conn per
// worker (see the package doc for why and for its limits). A request is a
// pre-built byte slice (request line, headers and body, see mint); the answer
// is parsed in place from a bufio.Reader and its body read into a reused
// buffer. Nothing on the path of a successful round trip allocates.

const (
	// h1ReadBuffer is the size of a connection's bufio.Reader; a status or
	// header line must fit in it.
	h1ReadBuffer = 4096
	// maxHeaderLines bounds the header lines of one answer (and the trailer
	// lines of a chunked one).
	maxHeaderLines = 128
	// dialTimeout bounds one dial (the request's Timeout bounds it too).
	dialTimeout = 5 * time.Second
	// Backoff before redialling after a failed dial: doubles from
	// minDialBackoff up to maxDialBackoff, reset by a successful dial.
	minDialBackoff = 5 * time.Millisecond
	maxDialBackoff = 200 * time.Millisecond
)

// idleCheckAfter: a connection unused for longer than this is probed before
// it is reused, so that a connection the server closed while idle is
// redialled instead of costing a request a transport failure. (A variable for
// tests.)
var idleCheckAfter = 500 * time.Millisecond

// Errors of the fast path. They are counted as "transport"; the first one of a
// run is quoted in the report's notes.
var (
	errAborted        = errors.New("loadgen: request aborted: the run was cancelled")
	errLineTooLong    = fmt.Errorf("loadgen: bad HTTP answer: a status or header line is longer than %d bytes", h1ReadBuffer)
	errTooManyHeaders = fmt.Errorf("loadgen: bad HTTP answer: more than %d header lines", maxHeaderLines)
	errHeaderLine     = errors.New("loadgen: bad HTTP answer: malformed header line")
	errContentLength  = errors.New("loadgen: bad HTTP answer: invalid or conflicting Content-Length")
	errBothLengths    = errors.New("loadgen: bad HTTP answer: both Transfer-Encoding and Content-Length")
	errTransferCoding = errors.New("loadgen: bad HTTP answer: unsupported Transfer-Encoding (only chunked is supported)")
	errChunk          = errors.New("loadgen: bad HTTP answer: malformed chunked body")
	errSwitching      = errors.New("loadgen: bad HTTP answer: 101 Switching Protocols")
	errNoAnswer       = errors.New("loadgen: the server closed the connection without answering")
	errCutShort       = errors.New("loadgen: the server closed the connection in the middle of an answer")
)

// aLongTimeAgo is a deadline in the past: it makes blocked I/O return at once.
var aLongTimeAgo = time.Unix(1, 0)

// h1Target is where the fast path connects and the fixed part of its
// requests.
type h1Target struct {
	addr string // host:port to dial
	head string // request line and headers up to the Content-Length value
}

// newH1Target prepares the fast path for an http:// URL.
func newH1Target(u *url.URL) h1Target {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	host := u.Host
	head := "POST " + u.RequestURI() + " HTTP/1.1\r\n" +
		"Host: " + host + "\r\n" +
		"Content-Type: application/json\r\n"
	if u.User != nil { // as net/http does for credentials in the URL
		pw, _ := u.User.Password()
		head += "Authorization: Basic " + basicAuth(u.User.Username(), pw) + "\r\n"
	}
	head += "Content-Length: "
	return h1Target{addr: net.JoinHostPort(u.Hostname(), port), head: head}
}

// h1Client is one worker's keep-alive connection, redialled after any error
// and after an answer with "Connection: close". It is used by one goroutine;
// only interrupt may be called from another.
type h1Client struct {
	addr    string
	timeout time.Duration
	ctx     context.Context

	mu      sync.Mutex // guards conn against interrupt (the owner reads it freely)
	conn    net.Conn
	aborted atomic.Bool // set by interrupt: the run's context is done

	br      *bufio.Reader
	body    []byte    // the last answer's body (reused)
	status  int       // the last answer's HTTP status
	lastUse time.Time // when the last request on conn started
	backoff time.Duration
	stopCtx func() bool
}

func newH1Client(ctx context.Context, addr string, timeout time.Duration) *h1Client {
	c := &h1Client{
		addr:    addr,
		timeout: timeout,
		ctx:     ctx,
		br:      bufio.NewReaderSize(nil, h1ReadBuffer),
		body:    make([]byte, 0, 1024),
	}
	c.stopCtx = context.AfterFunc(ctx, c.interrupt)
	return c
}

// interrupt aborts the request in flight, if any, and every later one: the
// run's context is done.
func (c *h1Client) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.aborted.Store(true)
	if c.conn != nil {
		c.conn.SetDeadline(aLongTimeAgo)
	}
}

// close closes the connection and stops watching the context.
func (c *h1Client) close() {
	c.stopCtx()
	c.dropConn()
}

func (c *h1Client) dropConn() {
	c.mu.Lock()
	conn := c.conn
	c.conn = nil
	c.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// roundTrip sends req, a whole pre-built request, and returns the body of
// the answer (valid until the next call). now is the current time. Any error
// leaves the connection closed; the next call redials.
func (c *h1Client) roundTrip(req []byte, now time.Time) ([]byte, error) {
	if c.conn != nil && now.Sub(c.lastUse) > idleCheckAfter && !c.usable() {
		c.dropConn()
	}
	deadline := now.Add(c.timeout)
	if c.conn == nil {
		if err := c.dial(deadline); err != nil {
			return nil, err
		}
	}
	c.lastUse = now
	conn := c.conn
	if err := conn.SetDeadline(deadline); err != nil {
		c.dropConn()
		return nil, err
	}
	if c.aborted.Load() { // interrupt may have run before SetDeadline
		c.dropConn()
		return nil, errAborted
	}
	if _, err := conn.Write(req); err != nil {
		c.dropConn()
		return nil, err
	}
	body, keep, err := c.readResponse()
	if err != nil || !keep {
		c.dropConn()
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = errCutShort
	}
	return body, err
}

// dial connects, after a backoff if the previous dial failed.
func (c *h1Client) dial(deadline time.Time) error {
	if c.aborted.Load() {
		return errAborted
	}
	if c.backoff > 0 {
		t := time.NewTimer(c.backoff)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return errAborted
		case <-t.C:
		}
	}
	d := net.Dialer{Timeout: dialTimeout, Deadline: deadline, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(c.ctx, "tcp", c.addr)
	if err != nil {
		c.backoff = min(max(2*c.backoff, minDialBackoff), maxDialBackoff)
		return err
	}
	c.backoff = 0
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aborted.Load() {
		conn.Close()
		return errAborted
	}
	c.conn = conn
	c.br.Reset(conn)
	return nil
}

// readResponse reads one answer: status line, headers, body. keep is false
// if the connection cannot carry another request.
func (c *h1Client) readResponse() (body []byte, keep bool, err error) {
	for first := true; ; first = false {
		line, err := c.readLine()
		if err != nil {
			if first && err == io.EOF && c.br.Buffered() == 0 {
				err = errNoAnswer
			}
			return nil, false, err
		}
		status, minor, ok := parseStatusLine(line)
		if !ok {
			return nil, false, fmt.Errorf("loadgen: bad HTTP answer: status line %q", truncate(line))
		}
		contentLength := int64(-1)
		chunked := false
		closeConn := minor == 0 // HTTP/1.0: close unless keep-alive is asked for
		for n := 0; ; n++ {
			line, err := c.readLine()
			if err != nil {
				return nil, false, err
			}
			if len(line) == 0 {
				break
			}
			if n == maxHeaderLines {
				return nil, false, errTooManyHeaders
			}
			name, value, ok := splitHeader(line)
			if !ok {
				return nil, false, errHeaderLine
			}
			switch {
			case equalFoldASCII(name, "content-length"):
				v, ok := parseDecimal(value)
				if !ok || contentLength >= 0 && v != contentLength {
					return nil, false, errContentLength
				}
				contentLength = v
			case equalFoldASCII(name, "transfer-encoding"):
				switch {
				case equalFoldASCII(value, "chunked"):
					chunked = true
				case equalFoldASCII(value, "identity"):
				default:
					return nil, false, errTransferCoding
				}
			case equalFoldASCII(name, "connection"):
				if hasToken(value, "close") {
					closeConn = true
				} else if minor == 0 && hasToken(value, "keep-alive") {
					closeConn = false
				}
			}
		}
		if status >= 100 && status < 200 { // interim answer: the real one follows
			if status == 101 {
				return nil, false, errSwitching
			}
			continue
		}
		switch {
		case chunked && contentLength >= 0:
			return nil, false, errBothLengths
		case status == 204 || status == 304:
			body = c.body[:0]
		case chunked:
			body, err = c.readChunked()
		case contentLength >= 0:
			body, err = c.readN(contentLength)
		default: // no length: the body runs to the end of the connection
			body, err = c.readToEOF()
			closeConn = true
		}
		if err != nil {
			return nil, false, err
		}
		c.body, c.status = body, status
		return body, !closeConn, nil
	}
}

// readLine returns the next line without its line ending (LF or CRLF).
func (c *h1Client) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return nil, errLineTooLong
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// bodyBuf returns c.body emptied, with room for n bytes (at most maxResponse).
func (c *h1Client) bodyBuf(n int64) []byte {
	n = min(n, maxResponse)
	if int64(cap(c.body)) < n {
		c.body = make([]byte, 0, n)
	}
	return c.body[:0]
}

// readN reads a body of n bytes, keeping the first maxResponse.
func (c *h1Client) readN(n int64) ([]byte, error) {
	buf := c.bodyBuf(n)
	keep := min(n, maxResponse)
	buf = buf[:keep]
	if _, err := io.ReadFull(c.br, buf); err != nil {
		return nil, err
	}
	if err := c.discard(n - keep); err != nil {
		return nil, err
	}
	return buf, nil
}

// discard skips n bytes of the connection.
func (c *h1Client) discard(n int64) error {
	for n > 0 {
		k := int(min(n, 1<<30))
		if _, err := c.br.Discard(k); err != nil {
			return err
		}
		n -= int64(k)
	}
	return nil
}

// readChunked reads a chunked body (RFC 9112 §7.1), keeping the first
// maxResponse bytes; trailer fields are skipped.
func (c *h1Client) readChunked() ([]byte, error) {
	buf := c.body[:0]
	for {
		line, err := c.readLine()
		if err != nil {
			return nil, err
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return nil, errChunk
		}
		if size == 0 {
			break
		}
		keep := min(size, int64(maxResponse-len(buf)))
		if keep > 0 {
			buf = slices.Grow(buf, int(keep))
			if _, err := io.ReadFull(c.br, buf[len(buf):len(buf)+int(keep)]); err != nil {
				return nil, err
			}
			buf = buf[:len(buf)+int(keep)]
		}
		if err := c.discard(size - keep); err != nil {
			return nil, err
		}
		line, err = c.readLine() // the CRLF after the chunk data
		if err != nil {
			return nil, err
		}
		if len(line) != 0 {
			return nil, errChunk
		}
	}
	for n := 0; ; n++ { // trailer section
		line, err := c.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) == 0 {
			break
		}
		if n == maxHeaderLines {
			return nil, errTooManyHeaders
		}
	}
	return buf, nil
}

// readToEOF reads a body delimited by the end of the connection, keeping the
// first maxResponse bytes.
func (c *h1Client) readToEOF() ([]byte, error) {
	buf := c.body[:0]
	for {
		if len(buf) >= maxResponse {
			_, err := io.Copy(io.Discard, c.br)
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := c.br.Read(buf[len(buf):min(cap(buf), maxResponse)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// usable reports whether an idle connection can carry a request: the server
// has neither closed it nor sent anything since the last answer.
func (c *h1Client) usable() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	return connAlive(c.conn)
}

// parseStatusLine parses "HTTP/1.x SSS reason".
func parseStatusLine(line []byte) (status, minor int, ok bool) {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' ||
		len(line) > 12 && line[12] != ' ' {
		return 0, 0, false
	}
	if m := line[7]; m >= '0' && m <= '9' {
		minor = int(m - '0')
	} else {
		return 0, 0, false
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return 0, 0, false
		}
		status = status*10 + int(d-'0')
	}
	return status, minor, status >= 100
}

// splitHeader splits "Name: value" and trims the value's surrounding
// whitespace.
func splitHeader(line []byte) (name, value []byte, ok bool) {
	for i, b := range line {
		if b == ':' {
			if i == 0 {
				return nil, nil, false
			}
			return line[:i], trimOWS(line[i+1:]), true
		}
		if b == ' ' || b == '\t' || b < ' ' || b == 0x7f {
			return nil, nil, false // no whitespace in a name, no obsolete line folding
		}
	}
	return nil, nil, false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFoldASCII reports whether b equals lower (which is lower case),
// ignoring ASCII case.
func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token (lower
// case), ignoring case.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		if equalFoldASCII(trimOWS(v[:i]), token) {
			return true
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return false
}

// parseDecimal parses a Content-Length value: 1 to 18 digits.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

// parseChunkSize parses a chunk-size line: hex digits, optional whitespace
// and chunk extensions (ignored).
func parseChunkSize(line []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		v, ok := hexDigit(line[i])
		if !ok {
			break
		}
		if i == 15 { // more than 60 bits
			return 0, false
		}
		n = n<<4 | int64(v)
	}
	if i == 0 {
		return 0, false
	}
	if r := trimOWS(line[i:]); len(r) > 0 && r[0] != ';' {
		return 0, false
	}
	return n, true
}

func hexDigit(d byte) (byte, bool) {
	switch {
	case '0' <= d && d <= '9':
		return d - '0', true
	case 'a' <= d && d <= 'f':
		return d - 'a' + 10, true
	case 'A' <= d && d <= 'F':
		return d - 'A' + 10, true
	}
	return 0, false
}

// basicAuth is the credentials of an Authorization: Basic header.
func basicAuth(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// truncate shortens b for an error message.
func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
