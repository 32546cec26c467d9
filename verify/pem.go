package verify

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
)

// PEM block types accepted by ParseKeysPEM (verify/PROTOCOL.md §8).
const (
	pemECParameters = "EC PARAMETERS"  // openssl ecparam output; skipped
	pemECPrivateKey = "EC PRIVATE KEY" // SEC 1 (RFC 5915)
	pemPKCS8        = "PRIVATE KEY"    // PKCS #8 (RFC 5208)
)

// p256ParametersDER is the DER ECParameters of an "EC PARAMETERS" block naming
// P-256: the OID 1.2.840.10045.3.1.7 (prime256v1, secp256r1), RFC 5480 §2.1.1.
var p256ParametersDER = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

// ParseKeysPEM parses every key in a PEM file, in file order. The file may
// hold several blocks:
//
//   - "EC PARAMETERS": skipped, but it must name P-256 (openssl ecparam
//     -name prime256v1 -genkey writes one before the key);
//   - "EC PRIVATE KEY": SEC 1, must be a P-256 key;
//   - "PRIVATE KEY": PKCS #8, must be an ECDSA or ECDH P-256 key.
//
// Any other block type, encrypted (header-carrying) blocks, a key on another
// curve, text that is not PEM between or after the blocks (whitespace is
// fine), or a file without keys is an error. Error texts never contain key
// material; the caller adds the file name.
func ParseKeysPEM(data []byte) ([]*Key, error) {
	var keys []*Key
	rest := data
	for n := 1; ; n++ {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			break
		}
		// pem.Decode silently skips text before a block; refuse it.
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, fmt.Errorf("verify: PEM block %d: unexpected text that is not PEM", n)
		}
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("verify: PEM block %d: malformed PEM", n)
		}
		if len(block.Headers) != 0 {
			return nil, fmt.Errorf("verify: PEM block %d (%s): headers (encryption) are not supported", n, block.Type)
		}
		k, err := parsePEMBlock(block)
		clear(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("verify: PEM block %d (%s): %w", n, block.Type, err)
		}
		if k != nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("verify: no EC PRIVATE KEY or PRIVATE KEY block")
	}
	return keys, nil
}

// parsePEMBlock returns the key in block, or nil for a skipped block.
func parsePEMBlock(block *pem.Block) (*Key, error) {
	var scalar, embedded []byte
	switch block.Type {
	case pemECParameters:
		if !bytes.Equal(block.Bytes, p256ParametersDER) {
			return nil, errors.New("does not name P-256 (prime256v1)")
		}
		return nil, nil
	case pemECPrivateKey:
		priv, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("not a valid SEC 1 EC private key")
		}
		if scalar, err = ecdsaScalar(priv); err != nil {
			return nil, err
		}
		embedded = sec1PublicKey(block.Bytes)
	case pemPKCS8:
		anyKey, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("not a valid PKCS #8 private key")
		}
		switch priv := anyKey.(type) {
		case *ecdsa.PrivateKey:
			if scalar, err = ecdsaScalar(priv); err != nil {
				return nil, err
			}
			var p8 pkcs8
			if _, err := asn1.Unmarshal(block.Bytes, &p8); err == nil {
				embedded = sec1PublicKey(p8.PrivateKey)
				clear(p8.PrivateKey)
			}
		case *ecdh.PrivateKey:
			if priv.Curve() != ecdh.P256() {
				return nil, errors.New("not a P-256 key")
			}
			scalar = priv.Bytes()
		default:
			return nil, errors.New("not an EC key")
		}
	default:
		return nil, errors.New("unsupported PEM block type")
	}
	defer clear(scalar)
	k, err := NewKey(scalar)
	if err != nil {
		return nil, err
	}
	// x509 ignores the optional public key of the SEC 1 structure; a file
	// whose public key does not match its scalar is damaged.
	if embedded != nil && !bytes.Equal(embedded, k.commitment[:]) {
		return nil, errors.New("the public key in the block does not match the private key")
	}
	return k, nil
}

// sec1ECPrivateKey is ECPrivateKey of SEC 1 v2 §C.4 (RFC 5915 §3).
type sec1ECPrivateKey struct {
	Version       int
	PrivateKey    []byte
	NamedCurveOID asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	PublicKey     asn1.BitString        `asn1:"optional,explicit,tag:1"`
}

// pkcs8 is PrivateKeyInfo of RFC 5208 §5 (the fields we need).
type pkcs8 struct {
	Version    int
	Algo       pkix.AlgorithmIdentifier
	PrivateKey []byte
}

// sec1PublicKey returns the public key embedded in a SEC 1 ECPrivateKey, or
// nil if there is none (it is optional) or it cannot be read (x509 has
// already accepted the structure, so that does not happen).
func sec1PublicKey(der []byte) []byte {
	var k sec1ECPrivateKey
	if _, err := asn1.Unmarshal(der, &k); err != nil {
		return nil
	}
	clear(k.PrivateKey)
	if k.PublicKey.BitLength == 0 {
		return nil
	}
	return bytes.Clone(k.PublicKey.RightAlign()) // may alias der, which callers clear
}

func ecdsaScalar(priv *ecdsa.PrivateKey) ([]byte, error) {
	if priv.Curve != elliptic.P256() {
		return nil, errors.New("not a P-256 key")
	}
	return priv.Bytes()
}

// MarshalPEM returns the key as one "EC PRIVATE KEY" block (SEC 1, RFC 5915,
// as written by x509.MarshalECPrivateKey), the format ParseKeysPEM and openssl
// read. The result contains the secret scalar.
func (k *Key) MarshalPEM() []byte {
	if !k.valid() {
		return nil
	}
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), k.scalar[:])
	if err != nil {
		return nil // unreachable: NewKey checked the range
	}
	der, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		return nil // unreachable for a P-256 key
	}
	defer clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: pemECPrivateKey, Bytes: der})
}
