package verify

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"filippo.io/nistec"
)

// Key is one redemption key: a P-256 scalar 0 < k < n (PROTOCOL.md §8), with
// its public commitment H = k·G. A Key is immutable and safe for concurrent
// use. The zero Key is not a key: make one with NewKey, GenerateKey or
// ParseKeysPEM.
//
// The scalar sits behind a pointer so that even a reflective print of a Key
// value (a struct field printed with %+v) shows an address, never the scalar;
// String, GoString and Format print only the ID.
type Key struct {
	scalar     *[32]byte // big-endian, 0 < k < n
	commitment [65]byte  // SEC1 uncompressed H = k·G
	id         string
}

// p256Order is n, the order of the P-256 group (PROTOCOL.md §3), big-endian.
var p256Order = [32]byte{
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
}

var (
	errZeroKey      = errors.New("verify: key not made by NewKey, GenerateKey or ParseKeysPEM")
	errScalarLength = errors.New("verify: key scalar must be 32 bytes")
	errScalarRange  = errors.New("verify: key scalar must be in [1, n-1]")
)

// NewKey returns the key with the 32-byte big-endian scalar. The scalar must
// satisfy 0 < k < n. The bytes are copied.
func NewKey(scalar []byte) (*Key, error) {
	if len(scalar) != 32 {
		return nil, errScalarLength
	}
	s := new([32]byte)
	copy(s[:], scalar)
	if !scalarInRange(s) {
		clear(s[:])
		return nil, errScalarRange
	}
	H, err := nistec.NewP256Point().ScalarBaseMult(s[:])
	if err != nil {
		return nil, err // unreachable: the length is right
	}
	k := &Key{scalar: s}
	copy(k.commitment[:], H.Bytes())
	sum := sha256.Sum256(k.commitment[:])
	k.id = hex.EncodeToString(sum[:8])
	return k, nil
}

// valid reports whether k was made by NewKey (the zero Key is not a key).
func (k *Key) valid() bool { return k != nil && k.scalar != nil }

// scalarInRange reports whether 0 < s < n, in constant time.
func scalarInRange(s *[32]byte) bool {
	// Big-endian subtraction s - n, tracking the borrow from the least
	// significant byte up: s < n exactly when the final borrow is 1.
	var borrow, nonzero int
	for i := 31; i >= 0; i-- {
		d := int(s[i]) - int(p256Order[i]) - borrow
		borrow = (d >> 8) & 1
		nonzero |= int(s[i])
	}
	isZero := subtle.ConstantTimeByteEq(byte(nonzero), 0)
	return borrow&(isZero^1) == 1
}

// maxGenerateTries bounds rejection sampling in GenerateKey. A 32-byte string
// is out of range with probability about 2⁻³², so reaching it means the
// reader is broken.
const maxGenerateTries = 100

// GenerateKey returns a new random key, reading 32-byte candidates from rand
// (crypto/rand.Reader if nil) and rejecting those outside [1, n-1]. Unlike
// crypto/ecdh in Go 1.26, it really uses the given reader, so tests can pass
// a deterministic one.
func GenerateKey(rand io.Reader) (*Key, error) {
	if rand == nil {
		rand = defaultRand
	}
	var b [32]byte
	defer clear(b[:])
	for range maxGenerateTries {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return nil, fmt.Errorf("verify: generating key: %w", err)
		}
		if k, err := NewKey(b[:]); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("verify: generating key: random source returns out-of-range scalars")
}

var defaultRand = rand.Reader

// ID identifies the key in logs, metrics and the spend table: the lowercase
// hex of the first 8 bytes of SHA-256(SEC1 uncompressed H), 16 characters. It
// depends only on the public commitment.
func (k *Key) ID() string { return k.id }

// Commitment returns a copy of the SEC1 uncompressed commitment H = k·G
// (65 bytes), the public key clients check issuance proofs against.
func (k *Key) Commitment() []byte {
	c := k.commitment
	return c[:]
}

// Tag computes the tag a token holder would send for token under this key:
// T = H2C(token), N = k·T, then the derived key and binding HMAC of
// PROTOCOL.md §6. It is how tests and the load tool mint tokens without
// issuance (PROTOCOL.md §7). It fails for an unknown method, or for the
// about 2⁻²⁰ of tokens that try-and-increment cannot map.
func (k *Key) Tag(token []byte, m Method, compressed bool, bindings []string) ([]byte, error) {
	if !k.valid() {
		return nil, errZeroKey
	}
	T := nistec.NewP256Point()
	if err := hashToCurve(T, token, m); err != nil {
		return nil, err
	}
	var dstack [blockSize + 256 + 65]byte
	var bstack [blockSize + 512]byte
	tr := newTranscript(dstack[:], bstack[:], token, bindings)
	var out [32]byte
	if !tr.tag(&out, T, k.scalar, compressed) {
		return nil, errNoPoint
	}
	return out[:], nil
}

// String returns "verify.Key(<id>)". It never prints the scalar.
func (k *Key) String() string {
	if k == nil {
		return "verify.Key(nil)"
	}
	return "verify.Key(" + k.id + ")"
}

// GoString is String, so %#v does not print the scalar either.
func (k *Key) GoString() string { return k.String() }

// Format prints String for every verb, so that %x, %v, %+v, %#v and %s all
// print only the ID.
func (k *Key) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, k.String()) }

// BasePoint returns the SEC1 uncompressed encoding of the P-256 generator G
// (65 bytes), the G of the issuance proofs (PROTOCOL.md §7).
func BasePoint() []byte {
	return nistec.NewP256Point().SetGenerator().Bytes()
}
