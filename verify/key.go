package verify

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"filippo.io/nistec"
)

// Key is one redemption key: a P-256 scalar 0 < k < n (verify/PROTOCOL.md §8),
// with its public commitment H = k·G. A Key is immutable and safe for
// concurrent use. The zero Key is not a key: make one with NewKey, GenerateKey
// or ParseKeysPEM.
//
// The scalar sits behind a pointer so that even a reflective print of a Key
// value (a struct field printed with %+v) shows an address, never the scalar;
// String, GoString and Format print only the ID.
type Key struct {
	scalar     *[32]byte // big-endian, 0 < k < n
	commitment [65]byte  // SEC1 uncompressed H = k·G
	id         string
}

var (
	errZeroKey      = errors.New("verify: key not made by NewKey, GenerateKey or ParseKeysPEM")
	errScalarLength = errors.New("verify: key scalar must be 32 bytes")
	errScalarRange  = errors.New("verify: key scalar must be in [1, n-1]")
)

// NewKey returns the key with the 32-byte big-endian scalar. The scalar must
// satisfy 0 < k < n. The bytes are copied.
//
// The range check and the commitment are crypto/ecdh's: NewPrivateKey
// refuses zero and every value >= n in constant time, and its public key is
// H = k·G in SEC 1 uncompressed form.
func NewKey(scalar []byte) (*Key, error) {
	if len(scalar) != 32 {
		return nil, errScalarLength
	}
	priv, err := ecdh.P256().NewPrivateKey(scalar)
	if err != nil {
		return nil, errScalarRange
	}
	s := new([32]byte)
	copy(s[:], scalar)
	k := &Key{scalar: s}
	copy(k.commitment[:], priv.PublicKey().Bytes())
	sum := sha256.Sum256(k.commitment[:])
	k.id = hex.EncodeToString(sum[:8])
	return k, nil
}

// valid reports whether k was made by NewKey (the zero Key is not a key).
func (k *Key) valid() bool { return k != nil && k.scalar != nil }

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

// Tag computes the tag a token holder would send for token under this key: T =
// H2C(token), N = k·T, then the derived key and binding HMAC of
// verify/PROTOCOL.md §6. It is how tests and the load tool mint tokens without
// issuance (verify/PROTOCOL.md §7.6). It fails for an unknown method, or for
// the about 2⁻²⁰ of tokens that try-and-increment cannot map.
func (k *Key) Tag(token []byte, m Method, compressed bool, bindings []string) ([]byte, error) {
	if !k.valid() {
		return nil, errZeroKey
	}
	T := nistec.NewP256Point()
	if err := hashToCurve(T, token, m); err != nil {
		return nil, err
	}
	tr := newTranscript(token, bindings)
	defer tr.release()
	if !tr.tag(T, k.scalar, compressed) {
		return nil, errNoPoint
	}
	return append([]byte(nil), tr.out[:]...), nil
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
// (65 bytes), the G of the issuance proofs (verify/PROTOCOL.md §7).
func BasePoint() []byte {
	return nistec.NewP256Point().SetGenerator().Bytes()
}
