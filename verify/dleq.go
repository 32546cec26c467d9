package verify

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha3"
	"errors"

	"filippo.io/bigmod"
	"filippo.io/nistec"
)

// The batch DLEQ proof of issuance (verify/PROTOCOL.md §7.3), as the
// extension verifies it: challenge-bypass-extension v2.0.6
// src/crypto/local.js (verifyProof, recomputeComposites, computePRNGScalar,
// computeSeed) and v3.0.6 src/background/voprf.js (the same functions). The
// proof shows that the signed points Z_i = k·M_i use the same k as the
// commitment H = k·G:
//
//	seed = SHA256(G || H || M_1 || Z_1 || … || M_m || Z_m)
//	c_i  = the i-th scalar below n drawn from seed (prng "shake" or "hkdf")
//	M    = Σ c_i·M_i,  Z = Σ c_i·Z_i
//	prover:   A = s·G,  B = s·M,
//	          C = SHA256(G || H || M || Z || A || B),  R = s - C·k mod n
//	verifier: A = R·G + C·H,  B = R·M + C·Z,
//	          accept if C = SHA256(G || H || M || Z || A || B)
//
// Every point in the hashes is SEC 1, all compressed or all uncompressed as
// the signed points Z_i travel.

// p256Order is n, the order of the P-256 group (verify/PROTOCOL.md §3),
// big-endian.
var p256Order = [32]byte{
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
}

// scalarField is n as a bigmod modulus: constant-time arithmetic on the
// scalars of the proof, R = s - C·k mod n in particular, where k is secret.
// Read-only after package initialisation.
var scalarField = func() *bigmod.Modulus {
	m, err := bigmod.NewModulus(p256Order[:])
	if err != nil {
		panic("verify: P-256 order: " + err.Error())
	}
	return m
}()

// belowOrder reports whether the 32-byte big-endian s is below n. Not
// constant time: it is only applied to public values (coefficients,
// challenges).
func belowOrder(s *[32]byte) bool { return bytes.Compare(s[:], p256Order[:]) < 0 }

// proofPRNG is how the coefficients c_i are drawn from the seed: the "prng"
// member of the issue response.
type proofPRNG uint8

const (
	// prngShake: SHAKE256(seed) read 32 bytes at a time (FIPS 202). What
	// SignBatch uses, and what the extension assumes when "prng" is absent.
	prngShake proofPRNG = iota + 1
	// prngHKDF: HKDF-SHA256 (RFC 5869) with the seed as input keying
	// material, info "DLEQ_PROOF" and the draw counter as salt, 32 bytes per
	// draw. Accepted by VerifyIssueResponse only.
	prngHKDF
)

// maxRejections bounds the draws rejected for being >= n while drawing
// coefficients. A draw is rejected with probability about 2⁻³².
const maxRejections = 64

var errPRNGExhausted = errors.New("verify: coefficient generator keeps drawing scalars >= n")

// coefficients draws m scalars c_i < n from seed with the named generator,
// as the extension's recomputeComposites and computePRNGScalar do: a draw
// >= n is dropped and the next one taken, so a rejected draw uses up a
// SHAKE256 output block or an HKDF counter value. (The extension masks the
// first byte to the bit length of n, a no-op for P-256.)
func coefficients(seed *[32]byte, m int, prng proofPRNG) ([][32]byte, error) {
	cs := make([][32]byte, 0, m)
	var shake *sha3.SHAKE
	if prng == prngShake {
		shake = sha3.NewSHAKE256()
		shake.Write(seed[:])
	}
	rejected := 0
	for iter := 0; len(cs) < m; iter++ {
		var c [32]byte
		switch prng {
		case prngShake:
			shake.Read(c[:])
		case prngHKDF:
			out, err := hkdf.Key(sha256.New, seed[:], hkdfSalt(iter), "DLEQ_PROOF", 32)
			if err != nil {
				return nil, err
			}
			copy(c[:], out)
		default:
			return nil, errors.New("verify: unknown coefficient generator")
		}
		if !belowOrder(&c) {
			if rejected++; rejected > maxRejections {
				return nil, errPRNGExhausted
			}
			continue
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// hkdfSalt is the salt of the iter-th HKDF draw: the extension passes
// new sjcl.bn(iter).toBits(), the minimal big-endian bytes of iter, which
// sjcl renders as three zero bytes for 0.
func hkdfSalt(iter int) []byte {
	if iter == 0 {
		return []byte{0, 0, 0}
	}
	var b []byte
	for v := iter; v > 0; v >>= 8 {
		b = append([]byte{byte(v)}, b...)
	}
	return b
}

// encodePoint is SEC 1: 65 bytes uncompressed, or 33 bytes compressed.
func encodePoint(p *nistec.P256Point, compressed bool) []byte {
	if compressed {
		return p.BytesCompressed()
	}
	return p.Bytes()
}

// batchSeed is computeSeed of the extension:
// SHA256(G || H || M_1 || Z_1 || … || M_m || Z_m), from the SEC 1 encodings
// of the points.
func batchSeed(encG, encH []byte, encM, encZ [][]byte) [32]byte {
	h := sha256.New()
	h.Write(encG)
	h.Write(encH)
	for i := range encM {
		h.Write(encM[i])
		h.Write(encZ[i])
	}
	var seed [32]byte
	h.Sum(seed[:0])
	return seed
}

// encodePoints encodes every point of P.
func encodePoints(P []*nistec.P256Point, compressed bool) [][]byte {
	out := make([][]byte, len(P))
	for i, p := range P {
		out[i] = encodePoint(p, compressed)
	}
	return out
}

// challengeHash is C of the proof: SHA256(G || H || M || Z || A || B).
func challengeHash(compressed bool, G, H, M, Z, A, B *nistec.P256Point) [32]byte {
	h := sha256.New()
	for _, p := range []*nistec.P256Point{G, H, M, Z, A, B} {
		h.Write(encodePoint(p, compressed))
	}
	var c [32]byte
	h.Sum(c[:0])
	return c
}

// composite returns Σ c_i·P_i. The scalars are public.
func composite(cs [][32]byte, P []*nistec.P256Point) (*nistec.P256Point, error) {
	sum := nistec.NewP256Point()
	term := nistec.NewP256Point()
	for i := range P {
		if _, err := term.ScalarMult(P[i], cs[i][:]); err != nil {
			return nil, err
		}
		sum.Add(sum, term)
	}
	return sum, nil
}

// errDegenerate: a composite or a proof point is the point at infinity, which
// the extension cannot encode. For points that pass ParseIssueRequest this
// needs a coefficient sum that vanishes, probability about 2⁻²⁵⁶.
var errDegenerate = errors.New("verify: degenerate batch (a composite point is the point at infinity)")

// reduceScalar returns b mod n as 32 big-endian bytes, for b of at most 32
// bytes. ok is false for longer b.
func reduceScalar(b []byte) (s [32]byte, ok bool) {
	b = bytes.TrimLeft(b, "\x00")
	if len(b) > 32 {
		return s, false
	}
	x, err := bigmod.NewNat().SetOverflowingBytes(b, scalarField)
	if err != nil {
		return s, false
	}
	copy(s[:], x.Bytes(scalarField))
	return s, true
}
