package verify

// An independent implementation of the issuer (verify/PROTOCOL.md §7), for
// cross-checking Key.SignBatch byte for byte: circl's group.P256 for the
// points, math/big for the scalars and circl's SHAKE256 (xof) for the
// coefficients, written from the extension's verifyProof and the reference
// issuer's NewBatchProof, with the 32-byte challenge rule of SignBatch.

import (
	"crypto/sha256"
	"io"
	"math/big"
	"testing"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/xof"
)

// refSignBatch signs the SEC 1 points blinded with the scalar k, taking
// 32-byte nonce candidates from nonces. It returns the uncompressed signed
// points and the proof (C, R).
func refSignBatch(tb testing.TB, k []byte, blinded [][]byte, nonces io.Reader) (sigs [][]byte, C, R []byte) {
	tb.Helper()
	g := group.P256
	n := orderN
	elem := func(b []byte) group.Element {
		e := g.NewElement()
		if err := e.UnmarshalBinary(b); err != nil {
			tb.Fatalf("circl rejects %x", b)
		}
		return e
	}
	enc := func(e group.Element) []byte {
		b, err := e.MarshalBinary()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	scalar := func(x *big.Int) group.Scalar { return g.NewScalar().SetBigInt(x) }
	kInt := new(big.Int).SetBytes(k)

	G := g.Generator()
	H := g.NewElement().Mul(G, scalar(kInt))
	var M, Z []group.Element
	seed := sha256.New()
	seed.Write(enc(G))
	seed.Write(enc(H))
	for _, b := range blinded {
		m := elem(b)
		z := g.NewElement().Mul(m, scalar(kInt))
		M, Z = append(M, m), append(Z, z)
		sigs = append(sigs, enc(z))
		seed.Write(enc(m))
		seed.Write(enc(z))
	}

	prng := xof.SHAKE256.New()
	prng.Write(seed.Sum(nil))
	compM, compZ := g.Identity(), g.Identity()
	for i := 0; i < len(M); {
		buf := make([]byte, 32)
		if _, err := io.ReadFull(prng, buf); err != nil {
			tb.Fatal(err)
		}
		c := new(big.Int).SetBytes(buf)
		if c.Cmp(n) >= 0 {
			continue
		}
		compM.Add(compM, g.NewElement().Mul(M[i], scalar(c)))
		compZ.Add(compZ, g.NewElement().Mul(Z[i], scalar(c)))
		i++
	}

	for {
		buf := make([]byte, 32)
		if _, err := io.ReadFull(nonces, buf); err != nil {
			tb.Fatal(err)
		}
		s := new(big.Int).SetBytes(buf)
		if s.Sign() == 0 || s.Cmp(n) >= 0 {
			continue
		}
		A := g.NewElement().Mul(G, scalar(s))
		B := g.NewElement().Mul(compM, scalar(s))
		h := sha256.New()
		for _, e := range []group.Element{G, H, compM, compZ, A, B} {
			h.Write(enc(e))
		}
		C = h.Sum(nil)
		c := new(big.Int).SetBytes(C)
		if C[0] == 0 || c.Cmp(n) >= 0 {
			continue
		}
		r := new(big.Int).Sub(s, new(big.Int).Mul(c, kInt))
		r.Mod(r, n)
		return sigs, C, r.FillBytes(make([]byte, 32))
	}
}
