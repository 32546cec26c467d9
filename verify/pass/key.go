package pass

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"

	"github.com/cloudflare/circl/blindsign/blindrsa"
)

// PEM block types accepted by ParseKeyPEM.
const (
	pemPKCS1 = "RSA PRIVATE KEY" // PKCS #1 (RFC 8017 §A.1.2)
	pemPKCS8 = "PRIVATE KEY"     // PKCS #8 (RFC 5208 §5)
)

// publicExponent is the only RSA public exponent accepted: F4, the one every
// common generator uses (crypto/rsa.GenerateKey, openssl genrsa/genpkey).
const publicExponent = 65537

// Key is one RSA issuer key: 2048 or 4096 bits, public
// exponent 65537, two primes. It is immutable and safe for concurrent use.
// The zero Key is not a key: make one with NewKey, GenerateKey or
// ParseKeyPEM.
//
// String, GoString and Format print only the key ID, never key material.
type Key struct {
	priv       *rsa.PrivateKey
	signer     blindrsa.Signer
	tokenKey   string // b64url of the DER SubjectPublicKeyInfo
	tokenKeyID string // lowercase hex SHA-256 of that DER, 64 characters
	id         string // tokenKeyID[:16], the spent-token store's key ID
}

// NewKey checks priv and returns it as a Key. priv must be a valid RSA key
// (rsa.PrivateKey.Validate) of exactly 2048 or 4096 bits with public exponent
// 65537 and two primes. NewKey takes priv over: the caller must not modify
// it afterwards. Errors name the rule broken, never key material.
func NewKey(priv *rsa.PrivateKey) (*Key, error) {
	if priv == nil || priv.N == nil || priv.D == nil {
		return nil, errors.New("pass: not an RSA private key")
	}
	if bits := priv.N.BitLen(); bits != 2048 && bits != 4096 {
		return nil, fmt.Errorf("pass: RSA key of %d bits; want 2048 or 4096", bits)
	}
	if priv.E != publicExponent {
		return nil, errors.New("pass: RSA public exponent must be 65537")
	}
	if len(priv.Primes) != 2 {
		return nil, errors.New("pass: multi-prime RSA keys are not supported")
	}
	if err := priv.Validate(); err != nil {
		// crypto/rsa's texts describe the inconsistency, not the values.
		return nil, fmt.Errorf("pass: inconsistent RSA key: %w", err)
	}
	priv.Precompute()
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("pass: encoding the public key: %w", err)
	}
	sum := sha256.Sum256(der)
	id := hex.EncodeToString(sum[:])
	return &Key{
		priv:       priv,
		signer:     blindrsa.NewSigner(priv),
		tokenKey:   base64.RawURLEncoding.EncodeToString(der),
		tokenKeyID: id,
		id:         id[:KeyIDLen],
	}, nil
}

// GenerateKey returns a new random key of 2048 or 4096 bits. Since Go 1.26,
// crypto/rsa always draws from a secure source (crypto/rand); 4096 bits take
// seconds.
func GenerateKey(bits int) (*Key, error) {
	if bits != 2048 && bits != 4096 {
		return nil, fmt.Errorf("pass: RSA key of %d bits; want 2048 or 4096", bits)
	}
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, fmt.Errorf("pass: generating RSA key: %w", err)
	}
	return NewKey(priv)
}

// ParseKeyPEM parses a PEM file holding exactly one RSA private key block:
// "RSA PRIVATE KEY" (PKCS #1, openssl genrsa -traditional) or "PRIVATE KEY"
// (PKCS #8, openssl genpkey, MarshalPEM). Whitespace around the block is
// fine; anything else is an error: text that is not PEM, a second block,
// encrypted keys ("ENCRYPTED PRIVATE KEY" or Proc-Type headers), public keys,
// keys that are not RSA, and every rule of NewKey. Error texts name the
// problem, never key material; the caller adds the file name.
func ParseKeyPEM(data []byte) (*Key, error) {
	rest := bytes.TrimLeft(data, " \t\r\n")
	// pem.Decode silently skips text before a block; refuse it.
	if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
		return nil, errors.New("pass: not a PEM file (no -----BEGIN line at the start)")
	}
	block, rest := pem.Decode(rest)
	if block == nil {
		return nil, errors.New("pass: malformed PEM")
	}
	defer clear(block.Bytes)
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("pass: more than one PEM block, or text after the key; want exactly one key per file")
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("pass: PEM %s block has headers: encrypted keys are not supported", block.Type)
	}
	var priv *rsa.PrivateKey
	switch block.Type {
	case pemPKCS1:
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("pass: RSA PRIVATE KEY block is not a valid PKCS #1 RSA private key")
		}
		priv = k
	case pemPKCS8:
		anyKey, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("pass: PRIVATE KEY block is not a valid PKCS #8 private key (RSA-PSS keys are not supported)")
		}
		k, ok := anyKey.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("pass: PRIVATE KEY block holds a %T key, not an RSA key", anyKey)
		}
		priv = k
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("pass: encrypted keys are not supported; decrypt it (openssl pkey)")
	case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
		return nil, fmt.Errorf("pass: PEM %s block: want the private key", block.Type)
	default:
		return nil, fmt.Errorf("pass: unsupported PEM block type %q; want RSA PRIVATE KEY or PRIVATE KEY", truncate(block.Type, 40))
	}
	return NewKey(priv)
}

// truncate bounds a PEM type quoted in an error: it is not secret, but it is
// file content.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// MarshalPEM returns the key as one PKCS #8 "PRIVATE KEY" block, which
// ParseKeyPEM and openssl read. The result contains the private key.
func (k *Key) MarshalPEM() ([]byte, error) {
	if !k.valid() {
		return nil, errZeroKey
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("pass: encoding the private key: %w", err)
	}
	defer clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: der}), nil
}

var errZeroKey = errors.New("pass: key not made by NewKey, GenerateKey or ParseKeyPEM")

func (k *Key) valid() bool { return k != nil && k.priv != nil }

// TokenKey is the token-key of a challenge answer: base64url without padding of the
// DER SubjectPublicKeyInfo (x509.MarshalPKIXPublicKey).
func (k *Key) TokenKey() string { return k.tokenKey }

// TokenKeyID is the token-key-id: the lowercase hex SHA-256
// of the DER SubjectPublicKeyInfo, 64 characters. Passes name their key by it.
func (k *Key) TokenKeyID() string { return k.tokenKeyID }

// ID is the key's name in the spent-token store, logs and metrics: the first
// 8 bytes of the token-key-id, i.e. its first 16 hex characters. It has the
// length of the legacy VOPRF key IDs (package verify), which hash another
// kind of public key, so the two cannot collide by construction other than
// by a 64-bit hash collision.
func (k *Key) ID() string { return k.id }

// Bits is the modulus size in bits: 2048 or 4096.
func (k *Key) Bits() int { return k.priv.N.BitLen() }

// Size is the modulus length in bytes (256 or 512): the length of blinded
// tokens, blind signatures and signatures.
func (k *Key) Size() int { return k.priv.Size() }

// PublicKey returns a copy of the public key.
func (k *Key) PublicKey() *rsa.PublicKey {
	return &rsa.PublicKey{N: new(big.Int).Set(k.priv.N), E: k.priv.E}
}

// BlindSign is the issuer's step of RFC 9474 §4.3 (BlindSign) with this key,
// by circl's blindrsa.Signer: it returns blinded^d mod n, Size() bytes.
// blinded must be exactly Size() bytes and its value in [1, n-1], else the
// error is an *Error wrapping ErrBlindedToken. The signer checks its own
// result (s^e = blinded) against fault attacks.
//
// It is not constant time in the private exponent: circl computes it with
// math/big, after blinding the input with a fresh random factor (see the
// package doc, "Constant time").
func (k *Key) BlindSign(blinded []byte) ([]byte, error) {
	if !k.valid() {
		return nil, errZeroKey
	}
	if len(blinded) != k.Size() {
		return nil, &Error{Err: ErrBlindedToken, Reason: "blinded token must be " + strconv.Itoa(k.Size()) + " bytes (the modulus length)"}
	}
	m := new(big.Int).SetBytes(blinded)
	if m.Sign() == 0 || m.Cmp(k.priv.N) >= 0 {
		return nil, &Error{Err: ErrBlindedToken, Reason: "blinded token must be in [1, n-1]"}
	}
	sig, err := k.signer.BlindSign(blinded)
	if err != nil {
		return nil, fmt.Errorf("pass: blind signing: %w", err)
	}
	return sig, nil
}

// String returns "pass.Key(<ID>)". It never prints key material.
func (k *Key) String() string {
	if k == nil {
		return "pass.Key(nil)"
	}
	return "pass.Key(" + k.id + ")"
}

// GoString is String, so %#v does not print the key either.
func (k *Key) GoString() string { return k.String() }

// Format prints String for every verb.
func (k *Key) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, k.String()) }
