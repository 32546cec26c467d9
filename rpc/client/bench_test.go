package client

import (
	"crypto/rand"
	"fmt"
	"testing"

	"filippo.io/nistec"

	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// BenchmarkIssueClient measures the client's share of one issuance, per
// token, for batches of 1, 10 and 100:
//
//   - blind: NewIssueBatch (32 random bytes, H2C, a random scalar, one
//     multiplication);
//   - finish: Finish on the issuer's answer (parsing, the batch proof: two
//     multiplications per token and four more, then the unblinding: one
//     inversion and one multiplication per token).
//
// BenchmarkScalarMult, one nistec multiplication by a variable point, is
// the unit to compare them with, measured in the same run:
//
//	go test -run '^$' -bench 'IssueClient|ScalarMult' -count 5 ./rpc/client
func BenchmarkIssueClient(b *testing.B) {
	cs := []Commitment{{H: verifytest.Key().Commitment()}}
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("blind/batch=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := NewIssueBatch(rand.Reader, n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
		})
		b.Run(fmt.Sprintf("finish/batch=%d", n), func(b *testing.B) {
			batch, err := NewIssueBatch(nil, n)
			if err != nil {
				b.Fatal(err)
			}
			answer := signed(b, batch, "1.0")
			for b.Loop() {
				if _, err := batch.Finish(answer, cs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
		})
	}
}

func BenchmarkScalarMult(b *testing.B) {
	k, err := randomScalar(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	p := scalarMult(nistec.NewP256Point().SetGenerator(), k)
	for b.Loop() {
		p = scalarMult(p, k)
	}
}
