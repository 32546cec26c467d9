package rpc_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/httpbody"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// TestBodyBudget: a body the budget has no room for is refused at once
// with 503, -32050 and Retry-After, and spends nothing; small bodies still
// get in while large ones fill their half; once room is back the same
// request is served.
func TestBodyBudget(t *testing.T) {
	bodies := httpbody.NewBudget(256 << 10) // bodies over 64 KiB: 128 KiB in all
	s := rpctest.NewServer(t, rpctest.Options{Configure: func(o *rpc.Options) {
		o.MaxBodyBytes, o.Bodies = 128<<10, bodies
	}})
	// Slow uploads hold the large bodies' half.
	held, err := bodies.Read(httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat(" ", 128<<10))), 128<<10)
	if err != nil {
		t.Fatal(err)
	}
	tok := verifytest.Mint(t, s.Key, verify.Increment)
	large := rpctest.Redeem(1, tok) + strings.Repeat(" ", 100<<10) // JSON allows the trailing spaces
	rec := serve(s.Handler, "POST", large)
	r := decode(t, rec)
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "1" || r.Code() != "-32050" ||
		r.Error.Message != "Server busy: no room for the request body now; nothing was read or spent; retry after the Retry-After delay" {
		t.Fatalf("no room: HTTP %d Retry-After %q %+v", rec.Code, rec.Header().Get("Retry-After"), r.Error)
	}
	// A small body gets in, and the refused request spent nothing.
	if r := decode(t, serve(s.Handler, "POST", rpctest.Redeem(2, tok))); r.Code() != "success" {
		t.Fatalf("a small body while large ones fill their half: %+v", r.Error)
	}
	held.Release()
	if r := decode(t, serve(s.Handler, "POST", large)); r.Code() != "-32021" {
		t.Fatalf("the large request once there is room: %+v", r.Error)
	}
	if bodies.InUse() != 0 || bodies.Refused() != 1 {
		t.Fatalf("%d bytes in use, %d refused", bodies.InUse(), bodies.Refused())
	}
}

// TestBodyChunkedTooLarge: a body without a Content-Length is cut at the
// limit too.
func TestBodyChunkedTooLarge(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{Configure: func(o *rpc.Options) { o.MaxBodyBytes = 1000 }})
	req := httptest.NewRequest("POST", rpc.RedeemPath, strings.NewReader(strings.Repeat(" ", 1001)))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	s.Handler.ServeHTTP(rec, req)
	if r := decode(t, rec); rec.Code != 413 || r.Code() != "-32600" {
		t.Fatalf("chunked body over the limit: HTTP %d %+v", rec.Code, r.Error)
	}
}

// TestBodyLimitMustFitTheBudget: a MaxBodyBytes the budget could never
// take is refused when the handler is built, not on every request.
func TestBodyLimitMustFitTheBudget(t *testing.T) {
	_, err := rpc.NewHandler(rpc.Options{
		Kinds:        []rpc.Kind{{Method: "redeem", Keys: func() rpc.KeySet { return nil }}},
		Spender:      nopSpender{},
		MaxBodyBytes: 1 << 20,
		Bodies:       httpbody.NewBudget(1 << 20),
	})
	if err == nil || !strings.Contains(err.Error(), "does not fit in a body budget of 1048576 bytes (at most 524288)") {
		t.Fatalf("got %v", err)
	}
}

type nopSpender struct{}

func (nopSpender) Spend(context.Context, string, []byte) error { return errors.New("unused") }
