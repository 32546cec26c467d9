package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ppredeem/ppredeem/rpc/wire"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxAttempts = 3
	DefaultBackoff     = 50 * time.Millisecond
	// DefaultPath is used when the endpoint URL has an empty path.
	DefaultPath = wire.RedeemPath
	// DefaultIdleConnTimeout is how long the default HTTP client keeps an
	// idle connection: less than ppredeem's idle_timeout (60s by default)
	// and many load balancers' (often 60s), so that the client, not the
	// server, closes idle connections. A request sent on a connection the
	// server is closing at that moment fails in a way that cannot be told
	// from a server that crashed after spending: ErrAmbiguous.
	DefaultIdleConnTimeout = 30 * time.Second
)

const (
	// maxBackoff caps the wait between attempts (unless Backoff is larger).
	maxBackoff = 2 * time.Second
	// maxResponseBytes bounds the response body read; ppredeem's answers
	// are under 200 bytes.
	maxResponseBytes = 64 << 10
	// tagLen is the length of an HMAC-SHA256 tag (verify/PROTOCOL.md §1).
	tagLen = 32
)

// Options configures a Client. A nil *Options selects every default.
type Options struct {
	// HTTPClient sends the requests. Default: a client of its own with
	// dial (5s), TLS handshake (5s) and response-header (10s) timeouts, an
	// overall timeout of 15s, and keep-alive with up to 256 idle
	// connections to the server, closed after DefaultIdleConnTimeout.
	//
	// A supplied client must send through net/http's Transport (the retry
	// rules read its httptrace callbacks), must not retry by itself, and
	// should close idle connections before the server does (see
	// DefaultIdleConnTimeout). It is copied, and the copy never follows
	// redirects: a 3xx is not a JSON-RPC answer and counts as ambiguous.
	HTTPClient *http.Client
	// MaxAttempts bounds the HTTP requests of one redemption (default 3).
	// Only requests that provably never reached the server are repeated;
	// see the package documentation.
	MaxAttempts int
	// Backoff is the base wait between attempts (default 50ms). The n-th
	// retry waits a random duration in [d/2, d] with d = Backoff·2ⁿ⁻¹,
	// d capped at max(Backoff, 2s).
	Backoff time.Duration
}

// RedeemOptions are the per-redemption settings. A nil *RedeemOptions means
// method "increment", uncompressed.
type RedeemOptions struct {
	// Method is the hash-to-curve method the token was issued for:
	// "increment" (the default, what every shipped client uses) or "swu".
	// It goes in the "method" member of data[2].
	Method string
	// Compressed selects the compressed SEC1 encoding of N in the key
	// derivation (the "compressed" member of params).
	Compressed bool
}

// Client redeems tokens against one ppredeem endpoint. It is safe for
// concurrent use; create one per endpoint and reuse it.
type Client struct {
	endpoint    string
	http        *http.Client
	maxAttempts int
	backoff     time.Duration
	lastID      atomic.Uint64
}

// New returns a client for endpoint, the URL redemptions are POSTed to, e.g.
// "http://127.0.0.1:8080/api/redeem". An http or https URL with an empty
// path gets DefaultPath.
func New(endpoint string, opts *Options) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, errors.New("ppredeem client: the endpoint is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("ppredeem client: the endpoint must be an http or https URL")
	}
	if u.Host == "" {
		return nil, errors.New("ppredeem client: the endpoint has no host")
	}
	if u.Path == "" && u.RawPath == "" {
		u.Path = DefaultPath
	}
	u.Fragment, u.RawFragment = "", ""

	var o Options
	if opts != nil {
		o = *opts
	}
	switch {
	case o.MaxAttempts < 0:
		return nil, errors.New("ppredeem client: negative MaxAttempts")
	case o.MaxAttempts == 0:
		o.MaxAttempts = DefaultMaxAttempts
	}
	switch {
	case o.Backoff < 0:
		return nil, errors.New("ppredeem client: negative Backoff")
	case o.Backoff == 0:
		o.Backoff = DefaultBackoff
	}
	var hc *http.Client
	if o.HTTPClient != nil {
		cp := *o.HTTPClient
		hc = &cp
	} else {
		hc = defaultHTTPClient()
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	return &Client{
		endpoint:    u.String(),
		http:        hc,
		maxAttempts: o.MaxAttempts,
		backoff:     o.Backoff,
	}, nil
}

func defaultHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:   5 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       DefaultIdleConnTimeout,
			// A gateway sends many concurrent redemptions to one server;
			// the default of 2 idle connections per host would churn.
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
		},
	}
}

// Redeem asks the server to redeem token with its tag and bindings. It
// returns nil once the server answered success: the token is now spent and
// the gateway may serve the request. Otherwise it returns an *Error; see the
// package documentation for the classification and the retry rules.
//
// Redeem checks its arguments first (a non-empty token, a 32-byte tag,
// bindings of valid UTF-8, method "increment" or "swu") and refuses bad
// ones with ErrInvalidParams without touching the network.
func (c *Client) Redeem(ctx context.Context, token, tag []byte, bindings []string, opts *RedeemOptions) error {
	params, perr := encodeParams(token, tag, bindings, opts)
	if perr != nil {
		return perr
	}
	if err := ctx.Err(); err != nil {
		return &Error{
			Message: "the context ended before the request was sent",
			kinds:   []error{ErrNotSent, err},
		}
	}
	for attempt := 1; ; attempt++ {
		e, retryable := c.attempt(ctx, params)
		if e == nil {
			return nil
		}
		e.Attempts = attempt
		if !retryable || attempt >= c.maxAttempts {
			return e
		}
		if err := sleep(ctx, c.delay(attempt)); err != nil {
			e.kinds = append(e.kinds, err)
			e.Message += "; the context ended before the next attempt"
			return e
		}
	}
}

// Progress of one attempt, as reported by httptrace. The callbacks run on
// the transport's goroutines, hence the atomic.
const (
	stateNone        int32 = iota // no callback: nothing known
	stateGettingConn              // the transport is getting a connection
	stateConnected                // connection obtained, nothing written yet
	stateWriting                  // the transport began writing the request
	stateWriteFailed              // writing failed: the request is incomplete
	stateWritten                  // the whole request was written
)

// attempt makes one redemption request. It returns nil on success;
// otherwise the error and whether the request provably never reached the
// server whole, so that another attempt is safe.
func (c *Client) attempt(ctx context.Context, params []byte) (*Error, bool) {
	id := c.lastID.Add(1)
	header := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	// No Idempotency-Key header: it would let net/http replay the POST
	// after it was written.
	ans, e, retryable := c.send(ctx, http.MethodPost, c.endpoint, header, requestBody(id, params), maxResponseBytes)
	if e != nil {
		return e, retryable
	}
	return parseResponse(ans.status, ans.body, id), false
}

// answer is what the server sent back to one HTTP request.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// send makes one HTTP request and reads the answer's body, at most limit
// bytes. On failure it returns the error, classified by how far the
// request got as httptrace reports it (see the package documentation), and
// whether the request provably never reached the server whole.
func (c *Client) send(ctx context.Context, method, url string, header http.Header, body []byte, limit int64) (*answer, *Error, bool) {
	var state atomic.Int32
	trace := &httptrace.ClientTrace{
		// GetConn is net/http's first callback. Without it (a RoundTripper
		// that does not report), no failure can be proved harmless.
		GetConn: func(string) { state.Store(stateGettingConn) },
		// GotConn comes after the dial and the TLS handshake. The transport
		// may get several connections for one request (it replays a request
		// on a fresh connection when a reused one failed before any byte
		// was written): each GetConn and GotConn starts over.
		GotConn: func(httptrace.GotConnInfo) { state.Store(stateConnected) },
		// The first header written marks the start of the write: before
		// it, nothing of this request has reached the connection.
		WroteHeaderField: func(string, []string) { state.CompareAndSwap(stateConnected, stateWriting) },
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err != nil {
				state.Store(stateWriteFailed)
			} else {
				state.Store(stateWritten)
			}
		},
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, url, rd)
	if err != nil { // the URL was checked by New
		return nil, &Error{Message: "could not build the HTTP request", kinds: []error{ErrNotSent}, cause: err}, false
	}
	for k, v := range header {
		req.Header[k] = v
	}

	resp, err := c.http.Do(req)
	if err != nil {
		ctxErr := ctx.Err()
		switch st := state.Load(); st {
		case stateGettingConn, stateConnected, stateWriteFailed:
			msg := "no connection to the server"
			switch st {
			case stateConnected:
				msg = "the connection failed before the request was written"
			case stateWriteFailed:
				msg = "writing the request failed"
			}
			e := &Error{Message: msg, kinds: []error{ErrNotSent}, cause: err}
			if ctxErr != nil {
				e.kinds = append(e.kinds, ctxErr)
				return nil, e, false
			}
			return nil, e, true
		default:
			msg := "no answer after the request was sent"
			if st == stateNone {
				msg = "the HTTP transport failed without reporting its progress"
			}
			e := &Error{Message: msg, kinds: []error{ErrAmbiguous}, cause: err}
			if ctxErr != nil {
				e.kinds = append(e.kinds, ctxErr)
			}
			return nil, e, false
		}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		e := &Error{Message: "the response could not be read", HTTPStatus: resp.StatusCode, kinds: []error{ErrAmbiguous}, cause: err}
		if ctxErr := ctx.Err(); ctxErr != nil {
			e.kinds = append(e.kinds, ctxErr)
		}
		return nil, e, false
	}
	if int64(len(data)) > limit {
		return nil, &Error{Message: "the response is larger than " + strconv.FormatInt(limit>>10, 10) + " KiB", HTTPStatus: resp.StatusCode, kinds: []error{ErrAmbiguous}}, false
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: data}, nil, false
}

// delay is the wait before retry n (n ≥ 1): uniform in [d/2, d] with
// d = backoff·2ⁿ⁻¹ capped.
func (c *Client) delay(n int) time.Duration {
	limit := max(c.backoff, maxBackoff)
	d := c.backoff
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// data[2] for each method: base64 of the curve settings (verify/PROTOCOL.md §1).
var settings = map[string]string{
	"increment": base64.StdEncoding.EncodeToString([]byte(`{"curve":"p256","hash":"sha256","method":"increment"}`)),
	"swu":       base64.StdEncoding.EncodeToString([]byte(`{"curve":"p256","hash":"sha256","method":"swu"}`)),
}

type wireParams struct {
	Data       [3]string `json:"data"`
	Bindings   []string  `json:"bindings"`
	Compressed bool      `json:"compressed"`
}

// encodeParams checks the arguments and returns the JSON of params. Its
// errors never hold the arguments.
func encodeParams(token, tag []byte, bindings []string, opts *RedeemOptions) ([]byte, *Error) {
	var o RedeemOptions
	if opts != nil {
		o = *opts
	}
	if o.Method == "" {
		o.Method = "increment"
	}
	invalid := func(msg string) *Error {
		return &Error{Code: wire.CodeInvalidParams, Message: msg, kinds: []error{ErrInvalidParams}}
	}
	set, ok := settings[o.Method]
	switch {
	case len(token) == 0:
		return nil, invalid("the token must not be empty")
	case len(tag) != tagLen:
		return nil, invalid("the tag must be 32 bytes")
	case !ok:
		return nil, invalid(`the method must be "increment" or "swu"`)
	}
	for _, b := range bindings {
		// encoding/json would silently replace invalid bytes, and the tag
		// would then not verify.
		if !utf8.ValidString(b) {
			return nil, invalid("the bindings must be valid UTF-8")
		}
	}
	if bindings == nil {
		bindings = []string{} // the server requires the member
	}
	p, err := json.Marshal(wireParams{
		Data: [3]string{
			base64.StdEncoding.EncodeToString(token),
			base64.StdEncoding.EncodeToString(tag),
			set,
		},
		Bindings:   bindings,
		Compressed: o.Compressed,
	})
	if err != nil { // strings and a bool always marshal
		return nil, invalid("the params could not be encoded")
	}
	return p, nil
}

// requestBody is the JSON-RPC request. Its last byte is the closing brace
// of the object (no trailing newline), so a request whose write failed
// cannot have been parsed by the server, even by a streaming parser.
func requestBody(id uint64, params []byte) []byte {
	b := make([]byte, 0, 64+len(params))
	b = append(b, `{"jsonrpc":"2.0","method":"`+wire.MethodRedeem+`","id":`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `,"params":`...)
	b = append(b, params...)
	b = append(b, '}')
	return b
}

// The JSON-RPC 2.0 response object. RawMessage members tell a missing member
// (nil) from an explicit null ("null").
type wireResponse struct {
	JSONRPC json.RawMessage `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`
}

type wireError struct {
	Code    json.RawMessage `json:"code"`
	Message json.RawMessage `json:"message"`
}

// parseResponse reads a JSON-RPC 2.0 answer strictly. It returns nil for
// "success", the error the server answered, or ErrAmbiguous for anything it
// cannot read: the request did reach the server, which may have spent the
// token before answering something unreadable. Messages are fixed strings:
// the body is never quoted.
func parseResponse(status int, body []byte, id uint64) *Error {
	ambiguous := func(msg string) *Error {
		return &Error{Message: msg, HTTPStatus: status, kinds: []error{ErrAmbiguous}}
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return ambiguous("the response body is empty")
	}
	if trimmed[0] != '{' || !json.Valid(body) {
		return ambiguous("the response is not a JSON-RPC object")
	}
	var r wireResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return ambiguous("the response is not a JSON-RPC object")
	}
	var version string
	if !startsWith(r.JSONRPC, '"') || json.Unmarshal(r.JSONRPC, &version) != nil || version != "2.0" {
		return ambiguous(`the response's jsonrpc member is not "2.0"`)
	}
	switch {
	case r.Result == nil && r.Error == nil:
		return ambiguous("the response has neither result nor error")
	case r.Result != nil && r.Error != nil:
		return ambiguous("the response has both result and error")
	}
	// JSON-RPC 2.0 §5: the id is the request's, or null in an error answer
	// when the server could not read the request's id.
	idOK := r.Error != nil && string(r.ID) == "null"
	if n, err := strconv.ParseUint(string(r.ID), 10, 64); err == nil && n == id {
		idOK = true
	}
	if !idOK {
		return ambiguous("the response's id is not the request's")
	}

	if r.Result != nil {
		var result string
		if !startsWith(r.Result, '"') || json.Unmarshal(r.Result, &result) != nil || result != "success" {
			return ambiguous(`the response's result is not "success"`)
		}
		if status < 200 || status > 299 {
			return ambiguous("a success result came with a non-2xx HTTP status")
		}
		return nil
	}

	var (
		we   wireError
		code int
		msg  string
	)
	// json.Unmarshal accepts null for any type, leaving the zero value:
	// check the first byte of every member.
	if !startsWith(r.Error, '{') || json.Unmarshal(r.Error, &we) != nil {
		return ambiguous("the response's error member is not an object")
	}
	if !startsWith(we.Code, '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9') || json.Unmarshal(we.Code, &code) != nil {
		return ambiguous("the response's error code is not an integer")
	}
	if !startsWith(we.Message, '"') || json.Unmarshal(we.Message, &msg) != nil {
		return ambiguous("the response's error message is not a string")
	}
	return &Error{Code: code, Message: serverMessage(msg), HTTPStatus: status, kinds: kindsOf(code)}
}

// startsWith reports whether the JSON value raw begins with one of first.
// encoding/json hands RawMessage members over without leading whitespace.
func startsWith(raw json.RawMessage, first ...byte) bool {
	return len(raw) > 0 && bytes.IndexByte(first, raw[0]) >= 0
}
