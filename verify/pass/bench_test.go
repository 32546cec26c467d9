package pass

// Reading the figures (go test -run x -bench . -benchmem ./verify/pass/):
//
// BenchmarkVerifyPSSBaseline is one bare rsa.VerifyPSS (RSA-2048, SHA-384,
// salt length 48) over a precomputed digest: the cryptography no verifier of
// the pass format can avoid. BenchmarkVerifyRatio runs blocks of it and blocks of
// Issuer.Verify (base64url, strict JSON, key lookup, HMAC, SHA-384, the same
// VerifyPSS) interleaved, so that a noisy neighbour on this shared machine
// hits both alike, and reports verify÷baseline as "x-baseline".
//
// BenchmarkBlindSign is the issuer's RSA private-key operation (circl's
// blindrsa.Signer, 2048 bits) on one core; its parallel variant uses every
// core (GOMAXPROCS) and reports "signs/s", the ceiling of issuance (POST
// /api/v1/privacy-passes) before HTTP, billing and the database.

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"testing"
	"time"

	"github.com/cloudflare/circl/blindsign/blindrsa"
)

type benchFixture struct {
	is     *Issuer
	token  string
	pub    *rsa.PublicKey
	digest []byte
	sig    []byte
}

func newBenchFixture(b *testing.B) benchFixture {
	is := newIssuer(b)
	m := mint(b, is, claimAge, testNow)
	key, _ := is.Keys().Active(claimAge)
	input := TokenInput(m.Nonce, m.MAC, m.TokenKeyID)
	d := sha512.Sum384(input[:])
	return benchFixture{is: is, token: m.Token, pub: key.PublicKey(), digest: d[:], sig: m.Signature}
}

func BenchmarkVerifyPSSBaseline(b *testing.B) {
	fx := newBenchFixture(b)
	opts := &rsa.PSSOptions{SaltLength: 48, Hash: crypto.SHA384}
	b.ReportAllocs()
	for b.Loop() {
		if err := rsa.VerifyPSS(fx.pub, crypto.SHA384, fx.digest, fx.sig, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	fx := newBenchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fx.is.Verify(fx.token, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePass(b *testing.B) {
	fx := newBenchFixture(b)
	b.SetBytes(int64(len(fx.token)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePass(fx.token); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRatio reports Issuer.Verify ÷ bare rsa.VerifyPSS, measured
// in interleaved blocks in one run ("x-baseline"). Its ns/op is the pair.
func BenchmarkVerifyRatio(b *testing.B) {
	fx := newBenchFixture(b)
	opts := &rsa.PSSOptions{SaltLength: 48, Hash: crypto.SHA384}
	const block = 8
	var base, ver time.Duration
	for b.Loop() {
		t0 := time.Now()
		for range block {
			if err := rsa.VerifyPSS(fx.pub, crypto.SHA384, fx.digest, fx.sig, opts); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for range block {
			if _, err := fx.is.Verify(fx.token, testNow); err != nil {
				b.Fatal(err)
			}
		}
		t2 := time.Now()
		base += t1.Sub(t0)
		ver += t2.Sub(t1)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(base+ver)/float64(b.N*block), "ns/pair")
	if base > 0 {
		b.ReportMetric(float64(ver)/float64(base), "x-baseline")
	}
}

func blindedInput(b *testing.B, key *Key) []byte {
	client, err := blindrsa.NewClient(blindrsa.SHA384PSSRandomized, key.PublicKey())
	if err != nil {
		b.Fatal(err)
	}
	input := TokenInput(NewNonce(), "mac", key.TokenKeyID())
	blinded, _, err := client.Blind(rand.Reader, input[:])
	if err != nil {
		b.Fatal(err)
	}
	return blinded
}

func BenchmarkBlindSign(b *testing.B) {
	is := newIssuer(b)
	key, _ := is.Keys().Active(claimAge)
	blinded := blindedInput(b, key)
	b.Run("rsa2048", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := is.BlindSign(key.TokenKeyID(), blinded); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signs/s")
	})
	b.Run("rsa2048-parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := is.BlindSign(key.TokenKeyID(), blinded); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signs/s")
	})
}

func BenchmarkChallenge(b *testing.B) {
	is := newIssuer(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := is.Challenge(claimAge, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
