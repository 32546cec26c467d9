package relay

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
)

// Claim payloads (rpc/relay/PROTOCOL.md §3.4): the JSON text
//
//	{"claim_type":"…","claim_result":"passed"|"failed","methodology":[{"method":"…","result":"…"}]}
//
// (methodology left out when the verifier gave none), in clear, or encrypted to the relay's
// RSA key with RSA-OAEP (RFC 8017 §7.1), SHA-256, MGF1-SHA-256, empty label, as standard
// base64 with padding.

type claimPayload struct {
	ClaimType   string          `json:"claim_type"`
	ClaimResult string          `json:"claim_result"`
	Methodology json.RawMessage `json:"methodology,omitempty"`
}

// method is one entry of a verifier's methodology.
type method struct {
	Method string `json:"method"`
	Result string `json:"result"`
}

// payloadText is the claim payload in clear.
func payloadText(claimType, result, methodology string) []byte {
	p := claimPayload{ClaimType: claimType, ClaimResult: result}
	if methodology != "" {
		p.Methodology = json.RawMessage(methodology)
	}
	b, _ := json.Marshal(p) // strings and stored JSON only
	return b
}

// parseEncryptionKey reads the platform's key: PEM "PUBLIC KEY" (SubjectPublicKeyInfo) or
// "RSA PUBLIC KEY" (PKCS #1), RSA of 2048 to 4096 bits, and returns its DER
// SubjectPublicKeyInfo.
func parseEncryptionKey(text string) ([]byte, error) {
	bad := func(detail string) ([]byte, error) { return nil, refuse(rowInvalidKey, detail) }
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		return bad("not a PEM block")
	}
	if len(trimSpace(rest)) != 0 {
		return bad("more than one PEM block")
	}
	var pub *rsa.PublicKey
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return bad("not a valid PUBLIC KEY")
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return bad("not an RSA key")
		}
		pub = rk
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return bad("not a valid RSA PUBLIC KEY")
		}
		pub = k
	default:
		return bad("want a PEM PUBLIC KEY or RSA PUBLIC KEY block")
	}
	if bits := pub.N.BitLen(); bits < 2048 || bits > 4096 {
		return bad("the RSA key must have 2048 to 4096 bits")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return bad("cannot encode the key")
	}
	return der, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// oaepCapacity is the longest message RSA-OAEP with SHA-256 encrypts under a key of size
// bytes (RFC 8017 §7.1.1: k - 2hLen - 2).
func oaepCapacity(size int) int { return size - 2*sha256.Size - 2 }

// encryptionKey parses a stored DER SubjectPublicKeyInfo.
func encryptionKey(der []byte) (*rsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("relay: stored encryption key: %w", err)
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("relay: stored encryption key is %T", k)
	}
	return rk, nil
}

// sealPayload returns the claim-payload member for a relay: text in clear, or encrypted to
// der.
func sealPayload(der []byte, text []byte) (string, error) {
	if der == nil {
		return string(text), nil
	}
	pub, err := encryptionKey(der)
	if err != nil {
		return "", err
	}
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, text, nil)
	if err != nil {
		return "", fmt.Errorf("relay: encrypting the claim payload: %w", err)
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}
