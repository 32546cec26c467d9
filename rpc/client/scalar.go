package client

import (
	"errors"
	"io"

	"filippo.io/bigmod"
	"filippo.io/nistec"
)

// scalarLen is the length of a P-256 scalar, big-endian.
const scalarLen = 32

// orderBytes is n, the order of P-256's group (verify/PROTOCOL.md §3).
var orderBytes = []byte{
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
}

// order is n as a bigmod modulus; orderMinus2 the exponent of Fermat's
// inversion, x⁻¹ = x^(n-2) mod n.
var order, orderMinus2 = func() (*bigmod.Modulus, []byte) {
	m, err := bigmod.NewModulus(orderBytes)
	if err != nil {
		panic(err)
	}
	e := append([]byte(nil), orderBytes...)
	e[len(e)-1] -= 2 // n ends in 0x51: no borrow
	return m, e
}()

// maxScalarDraws bounds the rejection sampling of a scalar. A draw of 32
// random bytes is refused with probability about 2⁻³², so reaching the
// bound means the random source is broken.
const maxScalarDraws = 16

// randomScalar draws a scalar uniformly in [1, n-1] from rand by rejection
// sampling, 32 bytes at a time, in constant time but for the number of
// draws.
func randomScalar(rand io.Reader) (*bigmod.Nat, error) {
	var b [scalarLen]byte
	for range maxScalarDraws {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return nil, err
		}
		x, err := bigmod.NewNat().SetBytes(b[:], order)
		if err != nil { // ≥ n
			continue
		}
		if x.IsZero() == 1 {
			continue
		}
		return x, nil
	}
	return nil, errors.New("the random source gives no valid scalar")
}

// invertScalar returns x⁻¹ mod n for x ≠ 0, with bigmod's constant-time
// exponentiation (x is a secret blinding factor).
func invertScalar(x *bigmod.Nat) *bigmod.Nat {
	return bigmod.NewNat().Exp(x, orderMinus2, order)
}

// scalarMult returns k·p for a reduced scalar k.
func scalarMult(p *nistec.P256Point, k *bigmod.Nat) *nistec.P256Point {
	q, err := nistec.NewP256Point().ScalarMult(p, k.Bytes(order))
	if err != nil { // Bytes is always 32 bytes long
		panic(err)
	}
	return q
}

// publicScalar reads a big-endian number of at most 32 significant bytes
// (leading zero bytes are allowed, as the extension's SJCL numbers allow
// them) and returns it reduced mod n with its 32-byte big-endian form
// before the reduction. It is for public values: the proof's C and R.
func publicScalar(b []byte) (*bigmod.Nat, [scalarLen]byte, error) {
	var full [scalarLen]byte
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) > scalarLen {
		return nil, full, errors.New("longer than 32 bytes")
	}
	copy(full[scalarLen-len(b):], b)
	x, err := bigmod.NewNat().SetOverflowingBytes(full[:], order)
	if err != nil { // 32 bytes always fit under 2^256
		return nil, full, err
	}
	return x, full, nil
}
