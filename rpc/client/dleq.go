package client

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/subtle"
	"errors"
	"fmt"

	"filippo.io/bigmod"
	"filippo.io/nistec"
)

// The coefficient generators an issuer may name in the "prng" member of its
// response (verifyProof and recomputeComposites in src/crypto/local.js of
// privacypass/challenge-bypass-extension v2.0.6, src/background/voprf.js in
// v3.0.6). The extension takes a missing or empty member for "shake".
const (
	prngShake = "shake"
	prngHKDF  = "hkdf"
)

// hkdfInfo is the HKDF info of the "hkdf" coefficient generator.
const hkdfInfo = "DLEQ_PROOF"

// maxExtraDraws bounds the draws of the composite coefficients beyond one
// per token: a draw is refused (≥ n) with probability about 2⁻³², so a
// batch of n tokens needs n draws, and n+64 are never reached but by a
// broken generator.
const maxExtraDraws = 64

// batchProof is the batch DLEQ proof of an issue response: the challenge C
// and the response R, as the issuer sent them (big-endian, any length up to
// 32 significant bytes).
type batchProof struct {
	C, R []byte
}

// errProof is the one verdict of a proof that does not hold; the details
// stay out of it (a failing proof means a wrong commitment or a cheating
// issuer, and the caller's reaction is the same).
var errProof = errors.New("the batch DLEQ proof does not verify")

// encodePoint is the SEC1 encoding of p that the proof hashes: the
// signatures' own compression decides it for every point (computeSeed and
// verifyProof in src/crypto/local.js, v2.0.6).
func encodePoint(p *nistec.P256Point, compressed bool) []byte {
	if compressed {
		return p.BytesCompressed()
	}
	return p.Bytes()
}

// verifyBatchProof checks that one scalar k gives both H = k·G and
// Z_i = k·M_i for every i, as the extension does it (verifyProof in
// src/crypto/local.js, v2.0.6; verify/PROTOCOL.md §7):
//
//	seed = SHA256(G || H || M_1 || Z_1 || ... || M_n || Z_n)
//	c_i  = coefficients drawn from seed with prng ("shake" or "hkdf")
//	M    = Σ c_i·M_i,  Z = Σ c_i·Z_i
//	A    = C·H + R·G,  B = C·Z + R·M
//	valid if C = SHA256(G || H || M || Z || A || B)
//
// with every point encoded in SEC1, compressed when the signatures came
// compressed. C is compared as a number, so a challenge below 2²⁴⁸ is
// accepted (the extension compares SJCL's shortest encoding of it with the
// 32-byte digest and refuses such proofs, one in 256). Everything here is
// public: the arithmetic need not be constant-time, and is anyway.
func verifyBatchProof(G, H *nistec.P256Point, M, Z []*nistec.P256Point, compressed bool, prng string, proof batchProof) error {
	if len(M) == 0 || len(M) != len(Z) {
		return fmt.Errorf("%d blinded points for %d signatures", len(M), len(Z))
	}
	c, cFull, err := publicScalar(proof.C)
	if err != nil {
		return fmt.Errorf("the proof's C is %w", err)
	}
	r, _, err := publicScalar(proof.R)
	if err != nil {
		return fmt.Errorf("the proof's R is %w", err)
	}

	seed := sha256.New()
	seed.Write(encodePoint(G, compressed))
	seed.Write(encodePoint(H, compressed))
	for i := range M {
		seed.Write(encodePoint(M[i], compressed))
		seed.Write(encodePoint(Z[i], compressed))
	}
	next, err := coefficients(prng, seed.Sum(nil))
	if err != nil {
		return err
	}

	compM, compZ := nistec.NewP256Point(), nistec.NewP256Point() // the identity
	draws := 0
	for i := 0; i < len(M); {
		if draws++; draws > len(M)+maxExtraDraws {
			return errors.New("the coefficient generator gives no valid scalar")
		}
		ci, err := next()
		if err != nil {
			return err
		}
		// The extension masks the first byte with MASK[bitlen mod 8],
		// 0xff for P-256: nothing to do. A value ≥ n is skipped and the
		// next one drawn, for the same i.
		x, err := bigmod.NewNat().SetBytes(ci, order)
		if err != nil {
			continue
		}
		compM.Add(compM, scalarMult(M[i], x))
		compZ.Add(compZ, scalarMult(Z[i], x))
		i++
	}
	if compM.IsInfinity() == 1 || compZ.IsInfinity() == 1 {
		return errProof
	}

	A := nistec.NewP256Point().Add(scalarMult(H, c), scalarMult(G, r))
	B := nistec.NewP256Point().Add(scalarMult(compZ, c), scalarMult(compM, r))
	if A.IsInfinity() == 1 || B.IsInfinity() == 1 {
		return errProof
	}
	h := sha256.New()
	for _, p := range []*nistec.P256Point{G, H, compM, compZ, A, B} {
		h.Write(encodePoint(p, compressed))
	}
	if subtle.ConstantTimeCompare(h.Sum(nil), cFull[:]) != 1 {
		return errProof
	}
	return nil
}

// coefficients returns the generator of the composite coefficients c_i,
// 32 bytes per draw:
//
//   - "shake": one SHAKE256 stream over the seed, squeezed 32 bytes at a
//     time (the npm package keccak's squeeze, as the extension calls it);
//   - "hkdf": draw j (counting refused draws too) is HKDF-SHA256 with the
//     seed as secret, j's shortest big-endian bytes as salt (SJCL's
//     bn.toBits; HMAC pads any key with zeros, so 0 needs no byte), info
//     "DLEQ_PROOF", 32 bytes (evaluateHkdf in src/crypto/local.js, v2.0.6).
func coefficients(prng string, seed []byte) (func() ([]byte, error), error) {
	switch prng {
	case prngShake:
		xof := sha3.NewSHAKE256()
		xof.Write(seed)
		return func() ([]byte, error) {
			out := make([]byte, scalarLen)
			xof.Read(out)
			return out, nil
		}, nil
	case prngHKDF:
		var j uint64
		return func() ([]byte, error) {
			out, err := hkdf.Key(sha256.New, seed, shortestBytes(j), hkdfInfo, scalarLen)
			j++
			return out, err
		}, nil
	default:
		return nil, fmt.Errorf("the issuer's coefficient generator %.32q is neither %q nor %q", prng, prngShake, prngHKDF)
	}
}

// shortestBytes is j big-endian without leading zero bytes (empty for 0).
func shortestBytes(j uint64) []byte {
	var b []byte
	for ; j > 0; j >>= 8 {
		b = append([]byte{byte(j)}, b...)
	}
	return b
}
