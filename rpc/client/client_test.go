package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/client"
	"github.com/ppredeem/ppredeem/rpc/httpbody"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/spend/pgtest"
	"github.com/ppredeem/ppredeem/verify"
)

var browserBindings = []string{"www.example.com", "GET /"}

func TestRedeemSuccess(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s.Endpoint, nil)
	token, tag := mint(t, s.Key, verify.Increment, false, browserBindings)
	if err := c.Redeem(context.Background(), token, tag, browserBindings, nil); err != nil {
		t.Fatalf("Redeem: %v", err)
	}
	n, err := s.Store.Count(context.Background(), s.Key.ID())
	if err != nil || n != 1 {
		t.Fatalf("store holds %d spent tokens (%v), want 1", n, err)
	}
	if got := s.Requests(); got != 1 {
		t.Errorf("server got %d requests, want 1", got)
	}
}

// TestPublishedVector redeems a published redemption tuple of the test key
// (verify/PROTOCOL.md §9): the client's encoding is the extension's.
func TestPublishedVector(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s.Endpoint, nil)
	token, tag := vectorToken()
	if err := c.Redeem(context.Background(), token, tag, browserBindings, &client.RedeemOptions{Method: "increment"}); err != nil {
		t.Fatalf("Redeem: %v", err)
	}
}

func TestRedeemMethods(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s.Endpoint, nil)
	for _, tc := range []struct {
		name       string
		method     verify.Method
		opt        string
		compressed bool
	}{
		{"default", verify.Increment, "", false},
		{"increment", verify.Increment, "increment", false},
		{"increment compressed", verify.Increment, "increment", true},
		{"swu", verify.SWU, "swu", false},
		{"swu compressed", verify.SWU, "swu", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bindings := []string{"api.example.net", "POST /v1/thing"}
			token, tag := mint(t, s.Key, tc.method, tc.compressed, bindings)
			opts := &client.RedeemOptions{Method: tc.opt, Compressed: tc.compressed}
			if err := c.Redeem(context.Background(), token, tag, bindings, opts); err != nil {
				t.Fatalf("Redeem: %v", err)
			}
			// The same token under the wrong method or compression is a bad tag.
			token2, tag2 := mint(t, s.Key, tc.method, tc.compressed, bindings)
			wrong := &client.RedeemOptions{Method: tc.opt, Compressed: !tc.compressed}
			err := c.Redeem(context.Background(), token2, tag2, bindings, wrong)
			wantKinds(t, err, "ErrBadTag")
		})
	}
}

func TestNoBindings(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s.Endpoint, nil)
	token, tag := mint(t, s.Key, verify.Increment, false, nil)
	if err := c.Redeem(context.Background(), token, tag, nil, nil); err != nil {
		t.Fatalf("Redeem with nil bindings: %v", err)
	}
	token, tag = mint(t, s.Key, verify.Increment, false, []string{})
	if err := c.Redeem(context.Background(), token, tag, []string{}, nil); err != nil {
		t.Fatalf("Redeem with empty bindings: %v", err)
	}
}

func TestAlreadySpent(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s.Endpoint, nil)
	token, tag := mint(t, s.Key, verify.Increment, false, browserBindings)
	if err := c.Redeem(context.Background(), token, tag, browserBindings, nil); err != nil {
		t.Fatalf("first Redeem: %v", err)
	}
	err := c.Redeem(context.Background(), token, tag, browserBindings, nil)
	wantKinds(t, err, "ErrAlreadySpent")
	e := asError(t, err)
	if e.Code != -32021 || e.HTTPStatus != 403 || e.Attempts != 1 {
		t.Errorf("got code %d, HTTP %d, %d attempts; want -32021, 403, 1", e.Code, e.HTTPStatus, e.Attempts)
	}
	if e.Message != "Redemption for token that has already been spent" {
		t.Errorf("Message = %q", e.Message)
	}
	if got := s.Requests(); got != 2 {
		t.Errorf("server got %d requests, want 2", got)
	}
}

func TestBadTag(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s.Endpoint, nil)
	token, tag := mint(t, s.Key, verify.Increment, false, browserBindings)

	bad := append([]byte(nil), tag...)
	bad[0] ^= 1
	err := c.Redeem(context.Background(), token, bad, browserBindings, nil)
	wantKinds(t, err, "ErrBadTag")
	if e := asError(t, err); e.Code != -32020 || e.HTTPStatus != 403 || e.Attempts != 1 {
		t.Errorf("got code %d, HTTP %d, %d attempts; want -32020, 403, 1", e.Code, e.HTTPStatus, e.Attempts)
	}

	// Other bindings than those the tag was made for: also a bad tag.
	err = c.Redeem(context.Background(), token, tag, []string{"evil.example", "GET /"}, nil)
	wantKinds(t, err, "ErrBadTag")

	// A failed tag spends nothing: the genuine redemption still succeeds.
	if err := c.Redeem(context.Background(), token, tag, browserBindings, nil); err != nil {
		t.Fatalf("genuine Redeem after bad tags: %v", err)
	}
}

// TestServerInvalidParams: params the client cannot judge (the server's
// limits) are refused by the server with -32602.
func TestServerInvalidParams(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{Limits: verify.Limits{MaxBindings: 3}})
	c := newClient(t, s.Endpoint, nil)
	bindings := []string{"a", "b", "c", "d"}
	token, tag := mint(t, s.Key, verify.Increment, false, bindings)
	err := c.Redeem(context.Background(), token, tag, bindings, nil)
	wantKinds(t, err, "ErrInvalidParams")
	if e := asError(t, err); e.Code != -32602 || e.HTTPStatus != 400 || e.Attempts != 1 {
		t.Errorf("got code %d, HTTP %d, %d attempts; want -32602, 400, 1", e.Code, e.HTTPStatus, e.Attempts)
	}
}

// TestServerBusy: a server without room for the body answers -32050; the
// client says nothing was spent and does not retry.
func TestServerBusy(t *testing.T) {
	bodies := httpbody.NewBudget(64 << 10)
	s := rpctest.NewServer(t, rpctest.Options{Configure: func(o *rpc.Options) { o.MaxBodyBytes, o.Bodies = 16<<10, bodies }})
	full, err := bodies.Read(httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat(" ", 64<<10))), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s.Endpoint, nil)
	token, tag := mint(t, s.Key, verify.Increment, false, browserBindings)
	err = c.Redeem(context.Background(), token, tag, browserBindings, nil)
	wantKinds(t, err, "ErrBusy")
	if e := asError(t, err); e.Code != -32050 || e.HTTPStatus != 503 || e.Attempts != 1 {
		t.Errorf("got code %d, HTTP %d, %d attempts; want -32050, 503, 1", e.Code, e.HTTPStatus, e.Attempts)
	}
	full.Release()
	if err := c.Redeem(context.Background(), token, tag, browserBindings, nil); err != nil {
		t.Fatalf("Redeem once there is room: %v", err)
	}
}

func TestLocalValidation(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s.Endpoint, nil)
	token, tag := mint(t, s.Key, verify.Increment, false, browserBindings)
	for _, tc := range []struct {
		name     string
		token    []byte
		tag      []byte
		bindings []string
		opts     *client.RedeemOptions
	}{
		{"nil token", nil, tag, browserBindings, nil},
		{"empty token", []byte{}, tag, browserBindings, nil},
		{"nil tag", token, nil, browserBindings, nil},
		{"short tag", token, tag[:31], browserBindings, nil},
		{"long tag", token, append(append([]byte(nil), tag...), 0), browserBindings, nil},
		{"unknown method", token, tag, browserBindings, &client.RedeemOptions{Method: "sswu"}},
		{"method case", token, tag, browserBindings, &client.RedeemOptions{Method: "Increment"}},
		{"binding not UTF-8", token, tag, []string{"www.example.com", "GET /\xff"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Redeem(context.Background(), tc.token, tc.tag, tc.bindings, tc.opts)
			wantKinds(t, err, "ErrInvalidParams")
			e := asError(t, err)
			if e.Code != -32602 || e.HTTPStatus != 0 || e.Attempts != 0 {
				t.Errorf("got code %d, HTTP %d, %d attempts; want -32602, 0, 0", e.Code, e.HTTPStatus, e.Attempts)
			}
		})
	}
	if got := s.Requests(); got != 0 {
		t.Errorf("server got %d requests, want 0", got)
	}
	// Nothing was spent.
	if err := c.Redeem(context.Background(), token, tag, browserBindings, nil); err != nil {
		t.Fatalf("Redeem: %v", err)
	}
}

// lostAck commits the spend in the real store and then fails, as when the
// database's acknowledgement of a commit is lost: the server answers
// -32603 although the token is spent.
type lostAck struct{ rpc.Spender }

func (l lostAck) Spend(ctx context.Context, keyID string, token []byte) error {
	if err := l.Spender.Spend(ctx, keyID, token); err != nil {
		return err
	}
	return errors.New("commit acknowledgement lost")
}

func TestInternalErrorIsAmbiguous(t *testing.T) {
	s := wrapSpender(t, func(sp rpc.Spender) rpc.Spender { return lostAck{sp} })
	c := newClient(t, s.Endpoint, &client.Options{MaxAttempts: 5, Backoff: time.Millisecond})
	token, tag := mint(t, s.Key, verify.Increment, false, browserBindings)

	err := c.Redeem(context.Background(), token, tag, browserBindings, nil)
	wantKinds(t, err, "ErrInternal", "ErrAmbiguous")
	e := asError(t, err)
	if e.Code != -32603 || e.HTTPStatus != 500 || e.Attempts != 1 {
		t.Errorf("got code %d, HTTP %d, %d attempts; want -32603, 500, 1", e.Code, e.HTTPStatus, e.Attempts)
	}
	if got := s.Requests(); got != 1 {
		t.Errorf("server got %d requests, want 1 (no retry after -32603)", got)
	}
	// Why it must not be retried: the token was in fact spent.
	err = c.Redeem(context.Background(), token, tag, browserBindings, nil)
	wantKinds(t, err, "ErrAlreadySpent")
}

// TestStoreDown: a closed store makes the real server answer -32603 before
// anything is spent; the client cannot know that and says ambiguous.
func TestStoreDown(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s.Endpoint, nil)
	token, tag := mint(t, s.Key, verify.Increment, false, browserBindings)
	if err := s.Store.Close(); err != nil {
		t.Fatal(err)
	}
	err := c.Redeem(context.Background(), token, tag, browserBindings, nil)
	wantKinds(t, err, "ErrInternal", "ErrAmbiguous")
	if got := s.Requests(); got != 1 {
		t.Errorf("server got %d requests, want 1", got)
	}
}

func TestEndpointWithoutPath(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s.URL, nil) // no path: DefaultPath
	token, tag := mint(t, s.Key, verify.Increment, false, browserBindings)
	if err := c.Redeem(context.Background(), token, tag, browserBindings, nil); err != nil {
		t.Fatalf("Redeem: %v", err)
	}
}

// TestWrongEndpoint: the real server refuses a POST elsewhere than
// /api/redeem with a JSON-RPC error (null id): a definite refusal.
func TestWrongEndpoint(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s.URL+"/api/redeem/", nil)
	token, tag := mint(t, s.Key, verify.Increment, false, browserBindings)
	err := c.Redeem(context.Background(), token, tag, browserBindings, nil)
	wantKinds(t, err, "ErrInvalidRequest")
	if e := asError(t, err); e.Code != -32600 || e.HTTPStatus != 404 || e.Attempts != 1 {
		t.Errorf("got code %d, HTTP %d, %d attempts; want -32600, 404, 1", e.Code, e.HTTPStatus, e.Attempts)
	}
}

func TestConcurrentSameToken(t *testing.T) {
	s := newServer(t)
	concurrentSameToken(t, s)
}

func TestConcurrentSameTokenPostgres(t *testing.T) {
	dsn := pgtest.NewMigratedDatabase(t, "client")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := spend.OpenPostgres(ctx, spend.PostgresConfig{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	concurrentSameToken(t, rpctest.NewServer(t, rpctest.Options{Store: store}))
}

func concurrentSameToken(t *testing.T, s *rpctest.Server) {
	const n = 16
	c := newClient(t, s.Endpoint, nil)
	for round := range 5 {
		token, tag := mint(t, s.Key, verify.Increment, false, browserBindings)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = c.Redeem(context.Background(), token, tag, browserBindings, nil)
			})
		}
		close(start)
		wg.Wait()
		ok, spent := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, client.ErrAlreadySpent):
				spent++
			default:
				t.Errorf("round %d: unexpected error %v", round, err)
			}
		}
		if ok != 1 || spent != n-1 {
			t.Fatalf("round %d: %d successes and %d already spent, want 1 and %d", round, ok, spent, n-1)
		}
	}
	if got, want := s.Requests(), int64(5*n); got != want {
		t.Errorf("server got %d requests, want %d (one per redemption)", got, want)
	}
}

func TestNewValidation(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		opts     *client.Options
	}{
		{"127.0.0.1:8080/api/redeem", nil},
		{"ftp://127.0.0.1/api/redeem", nil},
		{"http:///api/redeem", nil},
		{"http://[::1", nil},
		{"http://127.0.0.1:8080/api/redeem", &client.Options{MaxAttempts: -1}},
		{"http://127.0.0.1:8080/api/redeem", &client.Options{Backoff: -time.Second}},
	} {
		if _, err := client.New(tc.endpoint, tc.opts); err == nil {
			t.Errorf("New(%q, %+v) succeeded", tc.endpoint, tc.opts)
		}
	}
	if _, err := client.New("https://redeem.example/api/redeem", &client.Options{}); err != nil {
		t.Errorf("New with zero Options: %v", err)
	}
}

// TestErrorsHoldNoSecrets: no error text holds the token, the tag or the
// bindings, in any encoding the client uses.
func TestErrorsHoldNoSecrets(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s.Endpoint, &client.Options{Backoff: time.Millisecond})
	bindings := []string{"secret-binding-host.example", "GET /secret-path"}
	token, tag := mint(t, s.Key, verify.Increment, false, bindings)
	bad := append([]byte(nil), tag...)
	bad[5] ^= 0x80
	closed := newClient(t, closedEndpoint(t), &client.Options{Backoff: time.Millisecond})

	var errs []error
	errs = append(errs, c.Redeem(context.Background(), token, bad, bindings, nil))
	errs = append(errs, c.Redeem(context.Background(), token, tag[:20], bindings, nil))
	errs = append(errs, c.Redeem(context.Background(), token, tag, bindings, &client.RedeemOptions{Method: "x"}))
	errs = append(errs, closed.Redeem(context.Background(), token, tag, bindings, nil))
	if err := c.Redeem(context.Background(), token, tag, bindings, nil); err != nil {
		t.Fatal(err)
	}
	errs = append(errs, c.Redeem(context.Background(), token, tag, bindings, nil))

	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		text := err.Error() + fmt.Sprintf(" %+v %#v", err, err)
		for _, secret := range secretForms(token, tag, bindings) {
			if strings.Contains(text, secret) {
				t.Errorf("error %q contains a secret (%q)", err, secret)
			}
		}
	}
}

// startTLSServer is newServer over TLS with HTTP/2 enabled; it returns
// the server and a client that trusts its certificate.
func startTLSServer(t *testing.T) (*rpctest.Server, *http.Client, *atomic.Int64) {
	t.Helper()
	s := newServer(t)
	h2 := new(atomic.Int64)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			h2.Add(1)
		}
		s.Config.Handler.ServeHTTP(w, r)
	}))
	ts.EnableHTTP2 = true
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake failures
	ts.StartTLS()
	t.Cleanup(ts.Close)
	s.Endpoint = ts.URL + rpc.RedeemPath
	return s, ts.Client(), h2
}

func TestHTTP2(t *testing.T) {
	s, hc, h2 := startTLSServer(t)
	c := newClient(t, s.Endpoint, &client.Options{HTTPClient: hc})
	token, tag := mint(t, s.Key, verify.Increment, false, browserBindings)
	if err := c.Redeem(context.Background(), token, tag, browserBindings, nil); err != nil {
		t.Fatalf("Redeem: %v", err)
	}
	err := c.Redeem(context.Background(), token, tag, browserBindings, nil)
	wantKinds(t, err, "ErrAlreadySpent")
	if h2.Load() != 2 {
		t.Errorf("%d HTTP/2 requests, want 2", h2.Load())
	}
}

// TestTLSHandshakeFailureIsRetried: the server's certificate is not
// trusted; the handshake fails before anything is sent.
func TestTLSHandshakeFailureIsRetried(t *testing.T) {
	s, _, _ := startTLSServer(t)
	c := newClient(t, s.Endpoint, &client.Options{Backoff: time.Millisecond}) // default client: no trust
	token, tag := mint(t, s.Key, verify.Increment, false, browserBindings)
	err := c.Redeem(context.Background(), token, tag, browserBindings, nil)
	wantKinds(t, err, "ErrNotSent")
	if e := asError(t, err); e.Attempts != client.DefaultMaxAttempts {
		t.Errorf("%d attempts, want %d", e.Attempts, client.DefaultMaxAttempts)
	}
	var certErr *tls.CertificateVerificationError
	if !errors.As(err, &certErr) {
		t.Errorf("the error does not wrap the certificate error: %v", err)
	}
	if got := s.Requests(); got != 0 {
		t.Errorf("the handler got %d requests, want 0", got)
	}
}
