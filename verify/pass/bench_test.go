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
// blindrsa.Signer, 2048 bits) on one core ("signs/cpu-s" counts the thread's
// CPU time only: what one idle core sustains); its parallel variant uses
// every core (GOMAXPROCS) and reports "signs/s", the ceiling of issuance
// (POST /api/v1/privacy-passes) before HTTP, billing and the database.
// BenchmarkSignPSSStdlib is crypto/rsa's own PSS signature with the same key
// (CRT, constant time) for comparison: circl's Signer does not use CRT.

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"runtime"
	"testing"

	"github.com/cloudflare/circl/blindsign/blindrsa"

	"github.com/ppredeem/ppredeem/verify/internal/benchclock"
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
// in interleaved blocks in one run (package verify/internal/benchclock):
// "x-baseline" from the thread's CPU time (Linux; elsewhere wall time),
// which a busy machine disturbs far less than wall time, and
// "x-baseline-wall". Its ns/op is zero; ns/pair is the pair. Verify's
// garbage is collected partly on other threads, which the CPU-time ratio
// does not see; with 5 KB and about 50 allocations per call that is small.
func BenchmarkVerifyRatio(b *testing.B) {
	fx := newBenchFixture(b)
	opts := &rsa.PSSOptions{SaltLength: 48, Hash: crypto.SHA384}
	const block = 8
	s := benchclock.Interleave(b, func() {
		for range block {
			if err := rsa.VerifyPSS(fx.pub, crypto.SHA384, fx.digest, fx.sig, opts); err != nil {
				b.Fatal(err)
			}
		}
	}, func() {
		for range block {
			if _, err := fx.is.Verify(fx.token, testNow); err != nil {
				b.Fatal(err)
			}
		}
	})
	s.Report(b)
	ops := float64(s.Rounds * block)
	b.ReportMetric(float64(s.BaseWall+s.SubjectWall)/ops, "ns/pair")
	if s.BaseCPU > 0 {
		b.ReportMetric(float64(s.SubjectCPU)/ops, "verify-cpu-ns")
		b.ReportMetric(float64(s.BaseCPU)/ops, "baseline-cpu-ns")
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
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		c0, haveCPU := benchclock.ThreadCPU()
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := is.BlindSign(key.TokenKeyID(), blinded); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signs/s")
		if c1, _ := benchclock.ThreadCPU(); haveCPU {
			// CPU time per signature: what one core sustains on an idle machine.
			b.ReportMetric(float64(b.N)/(c1-c0).Seconds(), "signs/cpu-s")
		}
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

func BenchmarkSignPSSStdlib(b *testing.B) {
	key := loadKey(b, fixturePKCS1)
	d := sha512.Sum384([]byte("message"))
	opts := &rsa.PSSOptions{SaltLength: 48, Hash: crypto.SHA384}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, haveCPU := benchclock.ThreadCPU()
	for b.Loop() {
		if _, err := rsa.SignPSS(rand.Reader, key.priv, crypto.SHA384, d[:], opts); err != nil {
			b.Fatal(err)
		}
	}
	if c1, _ := benchclock.ThreadCPU(); haveCPU {
		b.ReportMetric(float64(b.N)/(c1-c0).Seconds(), "signs/cpu-s")
	}
}
