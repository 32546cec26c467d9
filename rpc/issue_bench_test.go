package rpc_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/nistec"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/attest"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
)

// noCount counts nothing: BenchmarkIssueHTTP/count=none measures HTTP,
// attestation, parsing and signing without the store's durable count.
type noCount struct{}

func (noCount) AddUsage(context.Context, string, string, int64) error { return nil }

// BenchmarkIssueHTTP: POST /api/issue through the real handler over
// loopback HTTP, one request at a time, for batches of 1, 10 and 100
// tokens: tokens/s, ns/token, and the cost per token against one bare
// P-256 scalar multiplication (nistec, the same code that signs) timed in
// the same loop (x-baseline). With count=embedded every issuance is first
// counted durably in the embedded store (a bbolt write transaction and its
// fsync); count=none skips the count. Compare with verify's
// BenchmarkSignBatch and BenchmarkSignBatchRatio (signing alone):
//
//	go test ./rpc -run XXX -bench IssueHTTP -benchtime 2s
func BenchmarkIssueHTTP(b *testing.B) {
	k := make([]byte, 32)
	k[31] = 7
	P := nistec.NewP256Point().SetGenerator()
	Q := nistec.NewP256Point()
	for _, count := range []string{"embedded", "none"} {
		for _, m := range []int{1, 10, 100} {
			b.Run("count="+count+"/"+strconv.Itoa(m), func(b *testing.B) {
				g, err := attest.New(attest.Config{Keys: []attest.Key{alice}})
				if err != nil {
					b.Fatal(err)
				}
				opts := &rpc.IssueOptions{Gate: constGate(g)}
				if count == "none" {
					opts.Usage = noCount{}
				}
				s := rpctest.NewServer(b, rpctest.Options{Issue: opts})
				body := rpctest.IssueJSON(rpctest.IssueText(rpctest.Blinded(rpctest.NewBlindTokens(b, m))))
				client := rpctest.HTTPClient()
				var issue, base time.Duration
				for b.Loop() {
					t0 := time.Now()
					for range m {
						if _, err := Q.ScalarMult(P, k); err != nil {
							b.Fatal(err)
						}
					}
					t1 := time.Now()
					req, err := http.NewRequest("POST", s.IssueURL, strings.NewReader(body))
					if err != nil {
						b.Fatal(err)
					}
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", "Bearer alice-secret-key")
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Fatalf("HTTP %d", resp.StatusCode)
					}
					issue += time.Since(t1)
					base += t1.Sub(t0)
				}
				tokens := float64(m) * float64(b.N)
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(tokens/issue.Seconds(), "tokens/s")
				b.ReportMetric(float64(issue.Nanoseconds())/tokens, "ns/token")
				if base > 0 {
					b.ReportMetric(float64(issue)/float64(base), "x-baseline")
				}
			})
		}
	}
}
