// Package rpctest is test support for the redemption API: JSON-RPC request
// builders, a strict decoder of answers, an HTTP caller, Server, the
// real handler (rpc.NewHandler with the VOPRF kind) over a real
// spent-token store behind httptest, and LogBuffer, a log sink for
// handlers on many goroutines. Nothing here fakes the server: tests
// that need a failure the real one cannot produce wrap its Spender.
package rpctest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc/wire"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// Request returns a JSON-RPC 2.0 request body; a nil id leaves the id out
// (a notification).
func Request(id any, method string, params any) string {
	m := map[string]any{"jsonrpc": "2.0", "method": method, "params": params}
	if id != nil {
		m["id"] = id
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(m); err != nil {
		panic(fmt.Sprintf("rpctest: request params do not encode: %v", err)) // a bug in the test
	}
	return buf.String()
}

// Redeem returns the redeem request of tok.
func Redeem(id any, tok verifytest.Token) string {
	return Request(id, wire.MethodRedeem, tok.Params())
}

// Batch returns a JSON-RPC batch of the given requests.
func Batch(requests ...string) string {
	trimmed := make([]string, len(requests))
	for i, r := range requests {
		trimmed[i] = strings.TrimSpace(r)
	}
	return "[" + strings.Join(trimmed, ",") + "]"
}

// Response is one JSON-RPC answer.
type Response struct {
	Version string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *Error          `json:"error"`
}

// Error is the error member of an answer.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Code is "success", the error code, or "malformed" (any other answer),
// for compact assertions.
func (r Response) Code() string {
	switch {
	case r.Error != nil:
		return fmt.Sprint(r.Error.Code)
	case string(r.Result) == `"success"`:
		return "success"
	}
	return "malformed"
}

// ErrNotJSONRPC is wrapped by Decode and Do for a body that is not one
// JSON-RPC 2.0 answer.
var ErrNotJSONRPC = errors.New("rpctest: not a JSON-RPC 2.0 answer")

// Decode decodes one JSON-RPC answer.
func Decode(raw []byte) (Response, error) {
	var r Response
	if err := json.Unmarshal(raw, &r); err != nil || r.Version != "2.0" {
		return r, fmt.Errorf("%w: %q", ErrNotJSONRPC, raw)
	}
	return r, nil
}

// DecodeBatch decodes the answer to a batch.
func DecodeBatch(raw []byte) ([]Response, error) {
	var rs []Response
	if err := json.Unmarshal(raw, &rs); err != nil {
		return nil, fmt.Errorf("%w: %q", ErrNotJSONRPC, raw)
	}
	return rs, nil
}

var client = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 128},
}

// HTTPClient returns the client Do uses: 30 s timeout, up to 128 idle
// connections per host.
func HTTPClient() *http.Client { return client }

// Do sends one HTTP request and decodes the JSON-RPC answer. A transport
// failure is returned as it is; an answer that is not a JSON-RPC body
// with Content-Type application/json wraps ErrNotJSONRPC. It needs no
// *testing.T, so goroutines use it and report errors themselves.
func Do(ctx context.Context, method, url, body string) (int, Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, Response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, Response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, Response{}, err
	}
	r, err := Decode(raw)
	if err != nil {
		return resp.StatusCode, r, fmt.Errorf("%s %s: HTTP %d: %w", method, url, resp.StatusCode, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return resp.StatusCode, r, fmt.Errorf("%s %s: %w: Content-Type %q", method, url, ErrNotJSONRPC, ct)
	}
	return resp.StatusCode, r, nil
}

// Call is Do that fails the test on any error; call it from the test's
// goroutine only.
func Call(t testing.TB, method, url, body string) (int, Response) {
	t.Helper()
	status, r, err := Do(context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, r
}

// Post is Call with POST.
func Post(t testing.TB, url, body string) (int, Response) {
	t.Helper()
	return Call(t, http.MethodPost, url, body)
}
