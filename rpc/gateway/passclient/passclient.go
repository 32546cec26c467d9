// Package passclient builds Privacy Passes on the client side: the steps of
// issuance that the holder of a pass performs (ppredeem gateway performs them
// for a platform). It is written from the pass format alone
// (rpc/relay/PROTOCOL.md §1), without any of the provider's code, so that
// tests can check a provider against an independent client.
//
// A pass is token type 2, Blind RSA (RFC 9474 RSABSSA-SHA384-PSS, salt
// length 48), with a variant of the RFC 9578 token input for publicly
// verifiable tokens:
//
//	token-key     base64url (no padding) of the DER SubjectPublicKeyInfo of
//	              an RSA key of 2048 or 4096 bits
//	token-key-id  lowercase hex of SHA-256(DER), 64 characters
//	challenge     base64url of a JSON object: {"token_type":2,
//	              "issuer_name":…,"origin_info":…,"expires_at":…,"mac":…};
//	              the client reads token_type and mac and keeps the rest
//	              as it is
//	nonce         32 random bytes as 64 lowercase hex characters
//	token input   0x00 0x02 || SHA-256(nonce) || SHA-256(mac) ||
//	              SHA-256(token-key-id), 98 bytes; each of the three is
//	              hashed as the UTF-8 bytes of its text. RFC 9578 puts the
//	              raw nonce, a digest of the whole challenge and the raw key
//	              ID there; this variant differs on purpose.
//	blinding      circl's blindrsa client for SHA384PSSRandomized, with
//	              Blind applied to the token input itself (no Prepare
//	              prefix), so the final signature verifies over the token
//	              input with RSASSA-PSS, SHA-384, salt length 48
//	pass          base64url of {"token_nonce":<nonce>,"signature":<base64url
//	              signature>,"key_id":<token-key-id>,"challenge":<the
//	              challenge's JSON object, byte for byte as decoded>}
//
// Issue checks what it is given before asking for a signature: the token
// key parses, is RSA of an allowed size and really has the given key ID;
// the challenge is base64url of a JSON object with token_type 2 and a
// non-empty mac. After the signer answers, it unblinds and verifies the
// signature over the token input, and refuses a pass that does not verify.
// It does not check expires_at or the mac: they are the provider's to judge.
//
// Limits: the challenge object is embedded verbatim and not re-encoded, so
// a provider that sends duplicate members or unusual whitespace gets them
// back exactly. Nothing here is constant time beyond what circl and
// crypto/rsa provide; none of the inputs is secret to the client.
package passclient

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cloudflare/circl/blindsign/blindrsa"
)

// TokenType is the token type of a Privacy Pass (Blind RSA).
const TokenType = 2

// TokenInputLen is the length of the token input: two bytes of token type
// and three SHA-256 digests.
const TokenInputLen = 2 + 3*sha256.Size

// Errors of Issue, for errors.Is. An error of the signer is returned
// wrapped, unchanged for errors.Is and errors.As.
var (
	// ErrTokenKey: the token key is not base64url of the DER of an RSA
	// public key of 2048 or 4096 bits.
	ErrTokenKey = errors.New("passclient: invalid token key")
	// ErrKeyIDMismatch: the token-key-id is not the SHA-256 of the token key.
	ErrKeyIDMismatch = errors.New("passclient: token-key-id is not the SHA-256 of the token key")
	// ErrChallenge: the challenge is not base64url of a JSON object with
	// token_type 2 and a non-empty mac.
	ErrChallenge = errors.New("passclient: invalid challenge")
	// ErrSignature: the blind signature does not unblind to a valid
	// signature over the token input.
	ErrSignature = errors.New("passclient: invalid blind signature")
)

// Issuance is what the provider's challenge endpoint answers: a challenge
// and the key that will sign, both as sent on the wire.
type Issuance struct {
	Challenge  string // base64url of the challenge's JSON object
	TokenKey   string // base64url of the DER SubjectPublicKeyInfo
	TokenKeyID string // lowercase hex SHA-256 of the DER
}

// Signer asks the provider for a blind signature of blindedToken (as long
// as the key's modulus) under the key keyID, and returns the blind
// signature's bytes.
type Signer func(ctx context.Context, blindedToken []byte, keyID string) (blindSig []byte, err error)

// Pass is an issued Privacy Pass and its parts.
type Pass struct {
	// Token is the privacy-pass-token: what a platform redeems.
	Token string
	// Nonce is the 64 lowercase hex characters of the token nonce.
	Nonce string
	// TokenInput is the 98-byte message the signature verifies over.
	TokenInput []byte
	// Signature is the unblinded RSA signature.
	Signature []byte
	// KeyID is the token-key-id of the signing key.
	KeyID string
}

// Issue builds a pass: it checks iss, draws a nonce, builds and blinds the
// token input, has sign sign it, unblinds, verifies and assembles the pass.
// random supplies the nonce, the PSS salt and the blinding factor, read in
// that order (crypto/rand.Reader in production; a fixed stream gives
// reproducible test vectors). sign is called at most once, and only when
// iss passed every check.
func Issue(ctx context.Context, random io.Reader, iss Issuance, sign Signer) (*Pass, error) {
	pk, err := ParseTokenKey(iss.TokenKey, iss.TokenKeyID)
	if err != nil {
		return nil, err
	}
	challenge, mac, err := parseChallenge(iss.Challenge)
	if err != nil {
		return nil, err
	}
	var n [32]byte
	if _, err := io.ReadFull(random, n[:]); err != nil {
		return nil, fmt.Errorf("passclient: reading the nonce: %w", err)
	}
	nonce := hex.EncodeToString(n[:])
	input := TokenInput(nonce, mac, iss.TokenKeyID)

	client, err := blindrsa.NewClient(blindrsa.SHA384PSSRandomized, pk)
	if err != nil {
		return nil, fmt.Errorf("passclient: %w", err)
	}
	blinded, state, err := client.Blind(random, input)
	if err != nil {
		return nil, fmt.Errorf("passclient: blinding: %w", err)
	}
	blindSig, err := sign(ctx, blinded, iss.TokenKeyID)
	if err != nil {
		return nil, fmt.Errorf("passclient: blind signature: %w", err)
	}
	// Finalize checks the length, unblinds and checks the result against the
	// encoded message; Verify then checks the signature the way a redeemer
	// will, over the token input (and refuses a signature ≥ the modulus).
	sig, err := client.Finalize(state, blindSig)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	if err := Verify(pk, input, sig); err != nil {
		return nil, err
	}
	return &Pass{
		Token:      assemble(nonce, sig, iss.TokenKeyID, challenge),
		Nonce:      nonce,
		TokenInput: input,
		Signature:  sig,
		KeyID:      iss.TokenKeyID,
	}, nil
}

// TokenInput is the message a pass's signature covers:
// 0x00 0x02 || SHA-256(nonce) || SHA-256(mac) || SHA-256(keyID), each
// hashed as the bytes of its text.
func TokenInput(nonce, mac, keyID string) []byte {
	in := make([]byte, 0, TokenInputLen)
	in = append(in, 0x00, TokenType)
	for _, s := range []string{nonce, mac, keyID} {
		sum := sha256.Sum256([]byte(s))
		in = append(in, sum[:]...)
	}
	return in
}

// KeyID is the token-key-id of a DER SubjectPublicKeyInfo: its SHA-256 in
// lowercase hex.
func KeyID(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// ParseTokenKey decodes a token-key and checks that keyID is its
// token-key-id. Errors wrap ErrTokenKey or ErrKeyIDMismatch.
func ParseTokenKey(tokenKey, keyID string) (*rsa.PublicKey, error) {
	der, err := decodeB64URL(tokenKey)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url without padding", ErrTokenKey)
	}
	// Both IDs are public: a plain comparison leaks nothing.
	if KeyID(der) != keyID {
		return nil, ErrKeyIDMismatch
	}
	parsed, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTokenKey, err)
	}
	pk, ok := parsed.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: not an RSA key", ErrTokenKey)
	}
	if bits := pk.N.BitLen(); bits != 2048 && bits != 4096 {
		return nil, fmt.Errorf("%w: %d-bit modulus, want 2048 or 4096", ErrTokenKey, bits)
	}
	return pk, nil
}

// Verify checks sig as a redeemer does: RSASSA-PSS with SHA-384 and a
// 48-byte salt over the token input. The error wraps ErrSignature.
func Verify(pk *rsa.PublicKey, tokenInput, sig []byte) error {
	v, err := blindrsa.NewVerifier(blindrsa.SHA384PSSRandomized, pk)
	if err != nil {
		return fmt.Errorf("passclient: %w", err)
	}
	if err := v.Verify(tokenInput, sig); err != nil {
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return nil
}

// parseChallenge decodes a challenge and returns its JSON object's bytes
// and its mac.
func parseChallenge(challenge string) (object []byte, mac string, err error) {
	raw, err := decodeB64URL(challenge)
	if err != nil {
		return nil, "", fmt.Errorf("%w: not base64url without padding", ErrChallenge)
	}
	// Members are looked up by their exact names (encoding/json matches
	// struct fields case-insensitively); null and non-objects are refused.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return nil, "", fmt.Errorf("%w: not a JSON object", ErrChallenge)
	}
	var tokenType int
	if json.Unmarshal(members["token_type"], &tokenType) != nil || tokenType != TokenType {
		return nil, "", fmt.Errorf("%w: token_type is not %d", ErrChallenge, TokenType)
	}
	if json.Unmarshal(members["mac"], &mac) != nil || mac == "" {
		return nil, "", fmt.Errorf("%w: no mac string", ErrChallenge)
	}
	return raw, mac, nil
}

// assemble writes the pass's JSON by hand so that the challenge object goes
// in byte for byte (encoding/json would re-encode it); the other members
// are hex and base64url, which need no escaping.
func assemble(nonce string, sig []byte, keyID string, challenge []byte) string {
	var b strings.Builder
	b.WriteString(`{"token_nonce":"`)
	b.WriteString(nonce)
	b.WriteString(`","signature":"`)
	b.WriteString(base64.RawURLEncoding.EncodeToString(sig))
	b.WriteString(`","key_id":"`)
	b.WriteString(keyID)
	b.WriteString(`","challenge":`)
	b.Write(challenge)
	b.WriteString(`}`)
	return base64.RawURLEncoding.EncodeToString([]byte(b.String()))
}

// decodeB64URL decodes base64url without padding, strictly: no padding, no
// line breaks, and no stray bits in the last character.
func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.Strict().DecodeString(s)
}
