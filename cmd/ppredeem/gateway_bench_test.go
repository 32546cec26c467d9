package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc/gateway"
)

// BenchmarkGatewayRedeem: redeems through `ppredeem gateway`'s wiring
// (runGateway) in front of the real provider (runServer), against the same
// generate-claim calls sent to the provider directly, in one run, over real
// HTTP (net/http client, keep-alive). Each redeem spends a fresh pass on its
// own sandbox relay, and the direct calls carry the Idempotency-Key the
// gateway would send, so the provider does the same work both ways. The
// two alternate in rounds (8, each round's order the reverse of the last)
// so that a shared machine's drift falls on both. Reported per way:
// redeems/s, and CPU µs per redeem of this process (load generator, gateway
// and provider share it; the difference is the gateway's own cost); and
// their ratio. c64 is throughput at concurrency 64, c1 one client at a time
// (its µs/redeem is the latency). b.N redeems each way, e.g.
//
//	go test ./cmd/ppredeem -run '^$' -bench BenchmarkGatewayRedeem -benchtime 4000x -count 3
func BenchmarkGatewayRedeem(b *testing.B) {
	for _, s := range []struct {
		name string
		args func(testing.TB) []string
	}{{"postgres", postgresStore}, {"embedded", embeddedStore}} {
		for _, workers := range []int{relayBenchConcurrency, 1} {
			b.Run(fmt.Sprintf("%s/c%d", s.name, workers), func(b *testing.B) {
				benchGatewayRedeem(b, s.args(b), workers)
			})
		}
	}
}

func benchGatewayRedeem(b *testing.B, storeArgs []string, workers int) {
	srv := startServer(b, newConfig(b, relayArgs(storeArgs)...))
	gw := startGatewayLogging(b, discardLogger(), "--upstream", srv.base)
	client := benchClient()
	n := b.N
	passes := mintPasses(b, srv.base, 2*n)
	relays := sandboxRelays(b, client, srv.base, 2*n)
	consumed := func(a answer, err error) error {
		switch {
		case err != nil:
			return err
		case a.status != 200 || !strings.Contains(string(a.body), `"token-consumed":true`):
			return benchError(fmt.Sprintf("redeem: %d %s", a.status, a.body))
		}
		return nil
	}
	// Jobs [0, n) go to the provider directly, [n, 2n) through the gateway.
	ways := [2]struct {
		name    string
		job     func(i int) error
		elapsed time.Duration
		cpu     time.Duration
	}{
		{name: "direct", job: func(i int) error {
			r, pass := relays[i], passes[i]
			return consumed(callWith(client, srv.base+"/api/privacy/v1/relays/"+r.token+"/generate-claim", "{}",
				"Persona-Relay-Secret", r.secret, "Authorization", "PrivateToken token="+pass,
				"Idempotency-Key", gateway.RedeemIdempotencyKey(r.token, pass)))
		}},
		{name: "gateway", job: func(i int) error {
			r, pass := relays[n+i], passes[n+i]
			return consumed(callWith(client, gw.base+"/relays/"+r.token+"/redeem", `{"privacy-pass-token":"`+pass+`"}`,
				"Persona-Relay-Secret", r.secret))
		}},
	}
	const rounds = 8
	b.ResetTimer()
	for round := range rounds {
		from, to := n*round/rounds, n*(round+1)/rounds
		for k := range ways {
			w := &ways[(k+round)%2]
			cpu := processCPU()
			elapsed, err := parallel(workers, to-from, func(i int) error { return w.job(from + i) })
			w.cpu += processCPU() - cpu
			w.elapsed += elapsed
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	for _, w := range ways {
		b.ReportMetric(float64(n)/w.elapsed.Seconds(), w.name+"-redeems/s")
		b.ReportMetric(float64(w.cpu.Microseconds())/float64(n), w.name+"-cpu-µs/redeem")
		if workers == 1 {
			b.ReportMetric(float64(w.elapsed.Microseconds())/float64(n), w.name+"-µs/redeem")
		}
	}
	b.ReportMetric(ways[0].elapsed.Seconds()/ways[1].elapsed.Seconds(), "gateway/direct")
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
