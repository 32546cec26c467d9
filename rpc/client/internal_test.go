package client

import (
	"net/http"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc/wire"
)

func TestDelay(t *testing.T) {
	c := &Client{backoff: 50 * time.Millisecond}
	for n, want := range map[int]time.Duration{
		1:  50 * time.Millisecond,
		2:  100 * time.Millisecond,
		3:  200 * time.Millisecond,
		6:  1600 * time.Millisecond,
		7:  maxBackoff,
		60: maxBackoff,
	} {
		for range 100 {
			if d := c.delay(n); d < want/2 || d > want {
				t.Fatalf("delay(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
	big := &Client{backoff: 5 * time.Second}
	if d := big.delay(10); d < 2500*time.Millisecond || d > 5*time.Second {
		t.Errorf("with Backoff 5s, delay(10) = %v, want in [2.5s, 5s]", d)
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Code: wire.CodeAlreadySpent, Message: "Redemption for token that has already been spent", HTTPStatus: 403, Attempts: 1, kinds: kindsOf(wire.CodeAlreadySpent)}
	if got, want := e.Error(), "ppredeem client: Redemption for token that has already been spent (code -32021, HTTP 403, attempts 1)"; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	e = &Error{Code: wire.CodeInternal, Message: "Internal error", HTTPStatus: 500, Attempts: 1, kinds: kindsOf(wire.CodeInternal)}
	if got, want := e.Error(), "ppredeem client: Internal error (code -32603, HTTP 500, attempts 1): outcome unknown, the token may have been spent"; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	e = &Error{Message: "no connection to the server", Attempts: 3, kinds: []error{ErrNotSent}}
	if got, want := e.Error(), "ppredeem client: no connection to the server (attempts 3): the request was not delivered, the token was not spent"; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestDefaultHTTPClient(t *testing.T) {
	c, err := New("http://127.0.0.1:8080", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.endpoint != "http://127.0.0.1:8080/api/redeem" || c.maxAttempts != DefaultMaxAttempts || c.backoff != DefaultBackoff {
		t.Errorf("endpoint %q, %d attempts, backoff %v", c.endpoint, c.maxAttempts, c.backoff)
	}
	tr, ok := c.http.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("default transport is %T", c.http.Transport)
	}
	// Below ppredeem's default idle_timeout (config: 60s).
	if tr.IdleConnTimeout <= 0 || tr.IdleConnTimeout >= 60*time.Second {
		t.Errorf("IdleConnTimeout %v: the server would close idle connections first", tr.IdleConnTimeout)
	}
	if c.http.Timeout <= 0 || tr.ResponseHeaderTimeout <= 0 || tr.TLSHandshakeTimeout <= 0 || tr.MaxIdleConnsPerHost < 64 {
		t.Errorf("default client lacks timeouts or idle connections: %+v", tr)
	}
	if c.http.CheckRedirect == nil {
		t.Error("redirects are followed")
	}

	// A caller's client is copied, not modified.
	mine := &http.Client{Timeout: time.Second}
	c, err = New("https://redeem.example/api/redeem", &Options{HTTPClient: mine})
	if err != nil {
		t.Fatal(err)
	}
	if mine.CheckRedirect != nil || c.http == mine || c.http.Timeout != time.Second {
		t.Error("the caller's client was not copied")
	}
}
