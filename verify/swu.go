package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/big"

	"filippo.io/nistec"
)

// swuLabel is the domain label of the extension's h2Base (verify/PROTOCOL.md §5).
const swuLabel = "H2C-P256-SHA256-SSWU-"

// P-256 constants for the SWU map (verify/PROTOCOL.md §3, §5). They are read-only
// after package initialisation.
var (
	swuP = fromHex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff")
	// swuC1 = -b/a mod p = b/3 mod p, since a = -3.
	swuC1 = func() *big.Int {
		b := fromHex("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b")
		inv3 := new(big.Int).ModInverse(big.NewInt(3), swuP)
		return b.Mul(b, inv3).Mod(b, swuP)
	}()
	// swuHalfP is (p-1)/2 as 32 big-endian bytes: a root y is "the smaller"
	// when y <= (p-1)/2.
	swuHalfP = [32]byte{
		0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	}
)

func fromHex(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("verify: bad constant " + s)
	}
	return v
}

// swuU is h2Base of the extension (challenge-bypass-extension v2.0.6
// src/ext/h2c.js; verify/PROTOCOL.md §5): SHA256("h2b" || label ||
// BE32(len(t)) || t) as a big-endian integer, reduced mod p.
func swuU(t []byte) *big.Int {
	var stack [3 + len(swuLabel) + 4 + 256]byte
	in := append(stack[:0], "h2b"...)
	in = append(in, swuLabel...)
	in = binary.BigEndian.AppendUint32(in, uint32(len(t)))
	in = append(in, t...)
	d := sha256.Sum256(in)
	u := new(big.Int).SetBytes(d[:])
	return u.Mod(u, swuP)
}

// hashSWU is the extension's simplified SWU map (computeSWUCoordinates in
// challenge-bypass-extension v2.0.6 src/ext/h2c.js, after
// draft-irtf-cfrg-hash-to-curve-03; verify/PROTOCOL.md §5):
//
//	t1 = -u²; t2 = t1²
//	x1 = (inv0(t2 + t1) + 1)·c1;  x2 = t1·x1
//	X  = x1 if g(x1) is a square, else x2;  Y = the root of g(X) that is <= (p-1)/2
//
// The field arithmetic uses math/big and is NOT constant time. That is
// acceptable because its only input is the token, which the client reveals in
// the request; no key material passes through here.
//
// The square test and the root are left to nistec: SetBytes(02||X) succeeds
// exactly when g(X) is a non-zero square. The extension tests
// g(x1)^((p-1)/2) == 1, which differs only when g(x1) = 0, and no point of
// P-256 has y = 0 (the group has odd prime order).
func hashSWU(T *nistec.P256Point, t []byte) error {
	p := swuP
	u := swuU(t)

	t1 := new(big.Int).Mul(u, u)
	t1.Neg(t1).Mod(t1, p) // t1 = -u²
	t2 := new(big.Int).Mul(t1, t1)
	t2.Mod(t2, p) // t2 = t1²

	x1 := t2.Add(t2, t1) // reuse t2: x1 = t2 + t1
	x1.Mod(x1, p)
	if x1.Sign() != 0 { // inv0(0) = 0
		x1.ModInverse(x1, p)
	}
	x1.Add(x1, big.NewInt(1))
	x1.Mul(x1, swuC1).Mod(x1, p)

	var enc [1 + 32]byte
	enc[0] = 2
	P := nistec.NewP256Point()
	x1.FillBytes(enc[1:])
	if _, err := P.SetBytes(enc[:]); err != nil {
		x2 := t1.Mul(t1, x1) // x2 = t1·x1
		x2.Mod(x2, p)
		x2.FillBytes(enc[1:])
		if _, err := P.SetBytes(enc[:]); err != nil {
			// Unreachable but for u = 0, which needs a SHA-256 preimage:
			// g(x2) = t1³·g(x1), and t1³ = -u⁶ is not a square because
			// -1 is not one mod p (p ≡ 3 mod 4).
			return errNoPoint
		}
	}

	// SetBytes chose the even root; the extension wants the smaller one.
	if y := P.Bytes()[33:65]; bytes.Compare(y, swuHalfP[:]) > 0 {
		P.Negate(P)
	}
	T.Set(P)
	return nil
}
