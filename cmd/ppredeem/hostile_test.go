package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// TestSlowLoris: a client that trickles its headers, or never finishes its
// body, is cut off by the read timeouts and does not hold the server.
func TestSlowLoris(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile,
		"--read-header-timeout", "1s", "--read-timeout", "2s"))
	addr := strings.TrimPrefix(srv.base, "http://")

	// Headers trickled one byte every 50 ms (1000 bytes would take 50 s),
	// never finished. The ticker only paces the input; what the test waits
	// for is the server closing the connection, seen by a read returning.
	headers, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer headers.Close()
	closed := make(chan error, 1) // nil: closed cleanly (EOF), else reset
	go func() {
		// The server may say 400 first; ReadAll returns when it closes.
		_, err := io.ReadAll(headers)
		closed <- err
	}()
	go func() {
		msg := "POST /api/redeem HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 1000)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := range len(msg) {
			if _, err := headers.Write([]byte{msg[i]}); err != nil {
				return // closed by the server, or by the test at its end
			}
			<-tick.C
		}
	}()

	// Headers complete, body promised and never sent.
	body, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	fmt.Fprintf(body, "POST /api/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"jsonrpc\":")
	start := time.Now()

	// Meanwhile the server keeps serving others.
	if _, r := post(t, srv.url, rpctest.Redeem(1, verifytest.Mint(t, verifytest.Key(), verify.Increment))); r.Code() != "success" {
		t.Fatalf("server blocked by slow clients: %+v", r.Error)
	}

	// The body-less client gets cut off (an error answer or a closed
	// connection) within the read timeout, not held forever.
	body.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(body), nil)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("a request with an unfinished body got HTTP 200")
		}
	}
	if waited := time.Since(start); waited > 6*time.Second {
		t.Fatalf("unfinished body held the connection for %s", waited)
	}

	// The header trickler's connection is closed by the server.
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("header trickler still connected after 15s: the server reads headers trickled over 50s")
	}
}

func TestHeaderLimit(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--max-header-bytes", "8192"))
	req, _ := http.NewRequest("POST", srv.url, strings.NewReader("{}"))
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := rpctest.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB of headers: HTTP %d, want 431", resp.StatusCode)
	}
}

// TestParamLimits: each limit answers -32602 with a message naming it.
func TestParamLimits(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile,
		"--max-token-bytes", "64", "--max-bindings", "3", "--max-bindings-bytes", "100"))
	tok := verifytest.Mint(t, verifytest.Key(), verify.Increment)
	cases := map[string]map[string]any{
		"64":  {"data": []string{b64(make([]byte, 65)), b64(tok.Tag)}, "bindings": []string{}},
		"3":   {"data": []string{b64(tok.Token), b64(tok.Tag)}, "bindings": []string{"a", "b", "c", "d"}},
		"100": {"data": []string{b64(tok.Token), b64(tok.Tag)}, "bindings": []string{strings.Repeat("x", 101)}},
	}
	for limit, params := range cases {
		status, r := post(t, srv.url, rpctest.Request(1, "redeem", params))
		if status != 400 || r.Code() != "-32602" || !strings.Contains(r.Error.Message, limit) {
			t.Errorf("limit %s: HTTP %d %+v", limit, status, r.Error)
		}
	}
}
