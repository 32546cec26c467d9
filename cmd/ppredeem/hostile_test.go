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

	"github.com/ppredeem/ppredeem/verify"
)

// TestSlowLoris: a client that trickles its headers, or never finishes its
// body, is cut off by the read timeouts and does not hold the server.
func TestSlowLoris(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile,
		"--read-header-timeout", "1s", "--read-timeout", "2s"))
	addr := strings.TrimPrefix(srv.base, "http://")

	// Headers trickled one byte at a time, never finished.
	headers, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer headers.Close()
	trickle := make(chan error, 1)
	go func() {
		msg := "POST /api/redeem HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 1000)
		for i := range len(msg) {
			if _, err := headers.Write([]byte{msg[i]}); err != nil {
				trickle <- err
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		trickle <- nil
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
	if _, r := post(t, srv.url, mint(t, testKey(t), verify.Increment).body(1)); r.code() != "success" {
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
	case err := <-trickle:
		if err == nil {
			t.Fatal("the server read 1000 header bytes trickled over 50s")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("header trickler still connected after 15s")
	}
}

func TestHeaderLimit(t *testing.T) {
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--max-header-bytes", "4096"))
	req, _ := http.NewRequest("POST", srv.url, strings.NewReader("{}"))
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := httpClient.Do(req)
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
	key := testKey(t)
	tok := mint(t, key, verify.Increment)
	cases := map[string]map[string]any{
		"64":  {"data": []string{b64(make([]byte, 65)), b64(tok.tag)}, "bindings": []string{}},
		"3":   {"data": []string{b64(tok.t), b64(tok.tag)}, "bindings": []string{"a", "b", "c", "d"}},
		"100": {"data": []string{b64(tok.t), b64(tok.tag)}, "bindings": []string{strings.Repeat("x", 101)}},
	}
	for limit, params := range cases {
		status, r := post(t, srv.url, request(1, "redeem", params))
		if status != 400 || r.code() != "-32602" || !strings.Contains(r.Error.Message, limit) {
			t.Errorf("limit %s: HTTP %d %+v", limit, status, r.Error)
		}
	}
}
