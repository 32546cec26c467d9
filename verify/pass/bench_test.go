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
// in interleaved blocks in one run: "x-baseline" from the thread's CPU time
// (Linux; elsewhere wall time), which a busy machine disturbs far less than
// wall time, and "x-baseline-wall". Its ns/op is the pair. Verify's garbage
// is collected partly on other threads, which the CPU-time ratio does not
// see; with 5 KB and about 50 allocations per call that is small.
func BenchmarkVerifyRatio(b *testing.B) {
	fx := newBenchFixture(b)
	opts := &rsa.PSSOptions{SaltLength: 48, Hash: crypto.SHA384}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, haveCPU := threadCPUTime()
	now := func() (wall, cpu time.Duration) {
		c, _ := threadCPUTime()
		return time.Duration(time.Now().UnixNano()), c
	}
	const block = 8
	var baseWall, baseCPU, verWall, verCPU time.Duration
	for b.Loop() {
		w0, c0 := now()
		for range block {
			if err := rsa.VerifyPSS(fx.pub, crypto.SHA384, fx.digest, fx.sig, opts); err != nil {
				b.Fatal(err)
			}
		}
		w1, c1 := now()
		for range block {
			if _, err := fx.is.Verify(fx.token, testNow); err != nil {
				b.Fatal(err)
			}
		}
		w2, c2 := now()
		baseWall += w1 - w0
		verWall += w2 - w1
		baseCPU += c1 - c0
		verCPU += c2 - c1
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(baseWall+verWall)/float64(b.N*block), "ns/pair")
	if baseWall > 0 {
		b.ReportMetric(float64(verWall)/float64(baseWall), "x-baseline-wall")
	}
	if !haveCPU {
		baseCPU, verCPU = baseWall, verWall
	}
	if baseCPU > 0 {
		b.ReportMetric(float64(verCPU)/float64(baseCPU), "x-baseline")
		b.ReportMetric(float64(verCPU)/float64(b.N*block), "verify-cpu-ns")
		b.ReportMetric(float64(baseCPU)/float64(b.N*block), "baseline-cpu-ns")
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
		c0, haveCPU := threadCPUTime()
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := is.BlindSign(key.TokenKeyID(), blinded); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signs/s")
		if c1, _ := threadCPUTime(); haveCPU {
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
	c0, haveCPU := threadCPUTime()
	for b.Loop() {
		if _, err := rsa.SignPSS(rand.Reader, key.priv, crypto.SHA384, d[:], opts); err != nil {
			b.Fatal(err)
		}
	}
	if c1, _ := threadCPUTime(); haveCPU {
		b.ReportMetric(float64(b.N)/(c1-c0).Seconds(), "signs/cpu-s")
	}
}
