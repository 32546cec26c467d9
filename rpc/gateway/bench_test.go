package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ppredeem/ppredeem/rpc/gateway"
)

// BenchmarkRedeem compares a redeem through the gateway with the same
// generate-claim call sent to the provider directly, both over real HTTP
// on loopback and both answered by the fake provider's idempotent replay
// (no RSA work upstream), so the difference is the gateway's overhead: one
// more HTTP hop, parsing and checks. Compare the two in one run:
//
//	go test -run '^$' -bench Redeem -benchtime 3s ./rpc/gateway/
func BenchmarkRedeem(b *testing.B) {
	e := newEnv(b, quiet)
	token, secret, _ := e.relay(b, `{"claim-type":"`+claimType+`"}`)
	e.p.report(token, "passed")
	pass := e.pass(b)
	if r := e.redeem(b, token, secret, pass); r.status != http.StatusOK {
		b.Fatalf("HTTP %d %s", r.status, r.body)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	send := func(b *testing.B, req func() *http.Request) {
		b.SetParallelism(8) // 16 clients on 2 cores: measure throughput, not one round trip
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Do(req())
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("HTTP %d", resp.StatusCode)
					return
				}
			}
		})
	}
	b.Run("gateway", func(b *testing.B) {
		body := `{"privacy-pass-token":"` + pass + `"}`
		send(b, func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, e.url+"/relays/"+token+"/redeem", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Persona-Relay-Secret", secret)
			return req
		})
	})
	b.Run("direct", func(b *testing.B) {
		key := gateway.RedeemIdempotencyKey(token, pass)
		send(b, func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, e.p.srv.URL+"/api/privacy/v1/relays/"+token+"/generate-claim", strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "PrivateToken token="+pass)
			req.Header.Set("Persona-Relay-Secret", secret)
			req.Header.Set("Idempotency-Key", key)
			return req
		})
	})
}

// BenchmarkIssue is a whole issuance through the gateway: challenge, blind,
// a 2048-bit blind signature by the fake provider, finalize, verify.
func BenchmarkIssue(b *testing.B) {
	e := newEnv(b, quiet)
	for b.Loop() {
		e.pass(b)
	}
}

// quiet drops the logs: a debug line per request into memory would weigh on
// the gateway's side only.
func quiet(_ *env, o *gateway.Options) { o.Logger = nil }
