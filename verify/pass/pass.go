package pass

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
)

// Sizes of the pass.
const (
	// NonceLen is the length of token_nonce: 32 random bytes as lowercase hex.
	NonceLen = 64
	// TokenKeyIDLen is the length of a token-key-id (key_id in a pass).
	TokenKeyIDLen = 64
	// KeyIDLen is the length of a store key ID (Key.ID).
	KeyIDLen = 16
	// TokenInputLen is the length of the token input (TokenInput).
	TokenInputLen = 2 + 3*sha256.Size
	// MaxTokenLen bounds a privacy-pass-token string. A pass under a 4096-bit
	// key with a 255-byte issuer name is under 1.8 KB of base64url, and under
	// 4 KB even with every byte of the challenge JSON \u-escaped; longer
	// strings are refused before decoding.
	MaxTokenLen = 4096
)

// Signature sizes: the modulus lengths of the supported keys, and their
// base64url lengths.
const (
	minSigLen    = 2048 / 8
	maxSigLen    = 4096 / 8
	maxSigB64Len = (maxSigLen*4 + 2) / 3
)

// Pass is a parsed privacy-pass-token:
//
//	b64url({"token_nonce":"<nonce>","signature":"<b64url sig>","key_id":"<token-key-id>","challenge":<object>})
type Pass struct {
	Nonce     string     // token_nonce: 64 lowercase hex characters
	Signature []byte     // decoded signature: 256 or 512 bytes
	KeyID     string     // key_id: a token-key-id, 64 lowercase hex characters
	Challenge *Challenge // the challenge object, Raw verbatim
}

var passMembers = []string{"token_nonce", "signature", "key_id", "challenge"}

// ParsePass parses a privacy-pass-token strictly, before any cryptography:
//
//   - at most MaxTokenLen characters of canonical base64url without padding;
//   - a JSON object (valid UTF-8) with exactly the members token_nonce,
//     signature, key_id and challenge, each once, in any order;
//   - token_nonce and key_id strings of exactly 64 lowercase hex characters;
//   - signature a string of canonical base64url of 256 or 512 bytes (that it
//     is the length of the named key's modulus is checked by Issuer.Verify,
//     which knows the key);
//   - challenge an object as parseChallengeJSON describes.
//
// Every error is an *Error wrapping ErrMalformed. ParsePass checks form only:
// whether the values are as issued is Issuer.Verify's job.
func ParsePass(token string) (*Pass, error) {
	if len(token) > MaxTokenLen {
		return nil, malformed("privacy pass is too long")
	}
	data, ok := decodeB64URL(token, MaxTokenLen)
	if !ok {
		return nil, malformed("privacy pass must be canonical base64url without padding")
	}
	v, err := decodeObject(data, passMembers, "privacy pass", false)
	if err != nil {
		return nil, err
	}
	p := new(Pass)
	if p.Nonce, ok = jsonString(v[0]); !ok || !isLowerHex(p.Nonce, NonceLen) {
		return nil, malformed("token_nonce must be 64 lowercase hex characters")
	}
	sig, ok := jsonString(v[1])
	if !ok {
		return nil, malformed("signature must be a string")
	}
	if p.Signature, ok = decodeB64URL(sig, maxSigB64Len); !ok {
		return nil, malformed("signature must be canonical base64url without padding")
	}
	if n := len(p.Signature); n != minSigLen && n != maxSigLen {
		return nil, malformed("signature must be 256 or 512 bytes (the modulus length)")
	}
	if p.KeyID, ok = jsonString(v[2]); !ok || !isLowerHex(p.KeyID, TokenKeyIDLen) {
		return nil, malformed("key_id must be 64 lowercase hex characters")
	}
	if len(v[3]) == 0 || v[3][0] != '{' {
		return nil, malformed("challenge must be a JSON object")
	}
	if p.Challenge, err = parseChallengeJSON(v[3], true); err != nil {
		return nil, err
	}
	return p, nil
}

// TokenInput returns the token input of this pass (see TokenInput).
func (p *Pass) TokenInput() [TokenInputLen]byte {
	return TokenInput(p.Nonce, p.Challenge.MAC, p.KeyID)
}

// SpendID returns the pass's double-spend identity, SHA-256 of the nonce
// string: the same 32 bytes as in the token input.
func (p *Pass) SpendID() [sha256.Size]byte { return sha256.Sum256([]byte(p.Nonce)) }

// Encode returns the privacy-pass-token of p: base64url without padding of
// the compact JSON object with the members in the order of the package doc and
// the challenge's Raw verbatim. ParsePass(p.Encode()) gives p back. It
// returns "" for a pass without a challenge.
func (p *Pass) Encode() string {
	if p.Challenge == nil {
		return ""
	}
	b, err := json.Marshal(struct {
		Nonce     string          `json:"token_nonce"`
		Signature string          `json:"signature"`
		KeyID     string          `json:"key_id"`
		Challenge json.RawMessage `json:"challenge"`
	}{p.Nonce, base64.RawURLEncoding.EncodeToString(p.Signature), p.KeyID, p.Challenge.Raw})
	if err != nil {
		// Only an invalid Raw can fail; a parsed Raw is valid JSON.
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// TokenInput is the message a pass signature verifies over,
// TokenInputLen = 98 bytes:
//
//	0x00 0x02 || SHA256(nonce) || SHA256(mac) || SHA256(token_key_id)
//
// each hash over the UTF-8 bytes of the string as it appears in the pass
// (the 64 hex characters of the nonce, the 43 base64url characters of the
// challenge MAC, the 64 hex characters of the token-key-id). The first two
// bytes are token_type 2, big-endian, as in RFC 9578 §6.1; the rest departs
// from RFC 9578 on purpose (see the package doc).
func TokenInput(nonce, mac, tokenKeyID string) [TokenInputLen]byte {
	var out [TokenInputLen]byte
	out[0], out[1] = 0x00, TokenType
	n := sha256.Sum256([]byte(nonce))
	m := sha256.Sum256([]byte(mac))
	k := sha256.Sum256([]byte(tokenKeyID))
	copy(out[2:], n[:])
	copy(out[2+sha256.Size:], m[:])
	copy(out[2+2*sha256.Size:], k[:])
	return out
}

// NewNonce returns a fresh token_nonce: 32 bytes from crypto/rand as 64
// lowercase hex characters. It is for clients (the gateway and tests).
func NewNonce() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24 (it crashes the program instead)
	return hex.EncodeToString(b[:])
}
