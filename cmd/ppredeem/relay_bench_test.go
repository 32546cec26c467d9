package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc/gateway/passclient"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// Benchmarks of the relay provider API through real HTTP against the real server wiring,
// the load generator (these goroutines) beside it on the same machine. Run with a fixed
// count, e.g.
//
//	go test ./cmd/ppredeem -run '^$' -bench 'BenchmarkRelay' -benchtime 6000x

const relayBenchConcurrency = 64

// benchClient is an HTTP client with a connection per worker.
func benchClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 256
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// mintPasses makes n passes for the server's active key of claimAge directly: a challenge
// from the server, then a plain RSASSA-PSS signature over the token input with the private
// key (what the blind signature unblinds to; crypto/rsa's CRT makes it 3x cheaper than
// issuing through the API, which is benchmarked apart).
func mintPasses(b *testing.B, base string, n int) []string {
	b.Helper()
	data, err := os.ReadFile(relayKeyAge)
	if err != nil {
		b.Fatal(err)
	}
	block, _ := pem.Decode(data)
	priv, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		b.Fatal(err)
	}
	a := call(b, base+"/api/privacy/v1/relays/challenge", map[string]string{"claim-type": claimAge})
	challenge, keyID := a.str(b, "challenge"), a.str(b, "token-key-id")
	chRaw, _ := base64.RawURLEncoding.DecodeString(challenge)
	var ch struct {
		MAC string `json:"mac"`
	}
	if err := json.Unmarshal(chRaw, &ch); err != nil {
		b.Fatal(err)
	}
	passes := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				nonce := make([]byte, 32)
				rand.Read(nonce)
				nonceHex := hex.EncodeToString(nonce)
				input := passclient.TokenInput(nonceHex, ch.MAC, keyID)
				digest := sha512.Sum384(input)
				sig, err := rsa.SignPSS(rand.Reader, priv, crypto.SHA384, digest[:], &rsa.PSSOptions{SaltLength: 48})
				if err != nil {
					b.Error(err)
					return
				}
				passes[i] = base64.RawURLEncoding.EncodeToString([]byte(`{"token_nonce":"` + nonceHex + `","signature":"` +
					base64.RawURLEncoding.EncodeToString(sig) + `","key_id":"` + keyID + `","challenge":` + string(chRaw) + `}`))
			}
		})
	}
	wg.Wait()
	return passes
}

// sandboxRelays creates n sandbox relays of claimAge on the provider at
// base, 16 at a time.
func sandboxRelays(b *testing.B, client *http.Client, base string, n int) []relaySession {
	b.Helper()
	relays := make([]relaySession, n)
	if _, err := parallel(16, n, func(i int) error {
		a, err := callWith(client, base+"/api/privacy/v1/relays", `{"claim-type":"`+claimAge+`","sandbox":true}`)
		if err != nil || a.status != 200 {
			return benchError("create relay failed")
		}
		var r struct {
			Token  string `json:"relay-token"`
			Secret string `json:"relay-secret"`
		}
		if err := json.Unmarshal(a.body, &r); err != nil {
			return err
		}
		relays[i] = relaySession{token: r.Token, secret: r.Secret}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	return relays
}

// parallel runs n jobs on workers goroutines and returns the elapsed time.
func parallel(workers, n int, job func(i int) error) (time.Duration, error) {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := job(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return elapsed, err
	}
	return elapsed, nil
}

type benchError string

func (e benchError) Error() string { return string(e) }

// BenchmarkRelayGenerateClaim: passed claims redeemed through generate-claim at
// concurrency 64 (durable: PostgreSQL with synchronous_commit as the server has it, bbolt
// with its fsync), each on its own sandbox relay. The figure is redeems/s over the timed
// part. In "postgres" the redeeming server created the relays, so it knows their
// immutable facts (rpc/relay's cache) and each redemption is one store round trip; in
// "postgres-other-server" a second server on the same database created them, so each
// redemption first reads its relay: two round trips.
func BenchmarkRelayGenerateClaim(b *testing.B) {
	for _, s := range []struct {
		name        string
		args        func(testing.TB) []string
		otherServer bool
	}{{"postgres", postgresStore, false}, {"postgres-other-server", postgresStore, true}, {"embedded", embeddedStore, false}} {
		b.Run(s.name, func(b *testing.B) {
			args := relayArgs(s.args(b))
			srv := startServer(b, newConfig(b, args...))
			creator := srv
			if s.otherServer {
				creator = startServer(b, newConfig(b, args...))
			}
			client := benchClient()
			n := b.N
			passes := mintPasses(b, srv.base, n)
			relays := sandboxRelays(b, client, creator.base, n)
			b.ResetTimer()
			elapsed, err := parallel(relayBenchConcurrency, n, func(i int) error {
				a, err := callWith(client, srv.base+"/api/privacy/v1/relays/"+relays[i].token+"/generate-claim", "{}",
					"Persona-Relay-Secret", relays[i].secret, "Authorization", "PrivateToken token="+passes[i])
				if err != nil {
					return err
				}
				if a.status != 200 || !strings.Contains(string(a.body), `"token-consumed":true`) {
					return benchError("generate-claim: " + string(a.body))
				}
				return nil
			})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n)/elapsed.Seconds(), "redeems/s")
		})
	}
}

// BenchmarkLegacyRedeemHTTP is the baseline of BenchmarkRelayGenerateClaim: legacy
// redemptions (POST /api/redeem, spends batched by the store) through the same client at
// the same concurrency, on the same kind of store. Run both in one go to compare them on a
// shared machine.
func BenchmarkLegacyRedeemHTTP(b *testing.B) {
	for _, s := range []struct {
		name string
		args func(testing.TB) []string
	}{{"postgres", postgresStore}, {"embedded", embeddedStore}} {
		b.Run(s.name, func(b *testing.B) {
			srv := startServer(b, newConfig(b, append(s.args(b), "--keys", testKeyFile)...))
			client := benchClient()
			n := b.N
			bodies := make([]string, n)
			key := testKey(b)
			for i := range n {
				bodies[i] = rpctest.Redeem(i, verifytest.Mint(b, key, verify.Increment))
			}
			b.ResetTimer()
			elapsed, err := parallel(relayBenchConcurrency, n, func(i int) error {
				a, err := callWith(client, srv.url, bodies[i])
				if err != nil {
					return err
				}
				if a.status != 200 || !strings.Contains(string(a.body), `"result":"success"`) {
					return benchError("redeem: " + string(a.body))
				}
				return nil
			})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n)/elapsed.Seconds(), "redeems/s")
		})
	}
}

// BenchmarkRelayIssue: passes issued through the API (challenge, then a billed blind
// signature with a 2048-bit key), the client side (passclient) in the same process.
func BenchmarkRelayIssue(b *testing.B) {
	srv := startServer(b, newConfig(b, relayArgs(postgresStore(b))...))
	p := provider{b, srv.base}
	b.ResetTimer()
	elapsed, err := parallel(8, b.N, func(int) error {
		_, err := p.issue(claimAge, "")
		return err
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "passes/s")
}

func callWith(client *http.Client, url, body string, header ...string) (answer, error) {
	return sendWith(context.Background(), client, http.MethodPost, url, strings.NewReader(body), header...)
}
