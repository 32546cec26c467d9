package pass

import (
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultLifetime is how long after its challenge's expires_at a pass stays
// redeemable unless Config.Lifetime says otherwise (90 days).
const DefaultLifetime = 90 * 24 * time.Hour

// maxLifetime bounds Config.Lifetime: ten years.
const maxLifetime = 10 * 365 * 24 * time.Hour

// MAC key sizes: at least the HMAC-SHA256 output (RFC 2104 §3), at most one
// SHA-256 block (longer keys would be hashed first).
const (
	MinMACKeyLen = 32
	MaxMACKeyLen = 64
)

// Config configures an Issuer.
type Config struct {
	// IssuerName is the issuer_name of every challenge: 1 to 255 bytes of
	// UTF-8 without control characters. Passes carry the name they were
	// issued under; the MAC, not a comparison with this value, decides
	// whether they are genuine, so renaming the issuer does not void
	// outstanding passes.
	IssuerName string
	// MACKeys are the secret challenge MAC keys, MinMACKeyLen to
	// MaxMACKeyLen bytes each: the first one MACs new challenges, every one
	// is accepted in verification, so the key can be rotated without voiding
	// outstanding passes (keep the old key for a pass lifetime plus two
	// hours). They are copied.
	MACKeys [][]byte
	// Keys are the RSA issuer keys per claim type.
	Keys *KeySet
	// Lifetime is how long after expires_at a pass can be redeemed; zero
	// means DefaultLifetime. At most ten years.
	Lifetime time.Duration
}

// Format prints the configuration without the MAC keys, for every verb.
func (c Config) Format(f fmt.State, verb rune) {
	_, _ = fmt.Fprintf(f, "pass.Config{IssuerName:%q MACKeys:%d Keys:%d claim types Lifetime:%s}",
		c.IssuerName, len(c.MACKeys), len(c.Keys.ClaimTypes()), c.Lifetime)
}

// Issuer issues challenges, blind-signs and verifies passes (see the
// package doc) with one configuration. It is immutable and safe for concurrent use; a
// reload builds a new Issuer. It does no I/O and never reads the clock: the
// caller passes the time in.
type Issuer struct {
	name     string
	macKeys  [][]byte
	keys     *KeySet
	lifetime time.Duration
}

// NewIssuer checks c and returns an Issuer.
func NewIssuer(c Config) (*Issuer, error) {
	if len(c.IssuerName) == 0 || len(c.IssuerName) > MaxIssuerNameLen {
		return nil, fmt.Errorf("pass: issuer name must be 1 to %d bytes", MaxIssuerNameLen)
	}
	if !utf8.ValidString(c.IssuerName) {
		return nil, errors.New("pass: issuer name must be valid UTF-8")
	}
	for _, r := range c.IssuerName {
		if unicode.IsControl(r) {
			return nil, errors.New("pass: issuer name must not contain control characters")
		}
	}
	if len(c.MACKeys) == 0 {
		return nil, errors.New("pass: at least one MAC key is needed")
	}
	macKeys := make([][]byte, len(c.MACKeys))
	for i, k := range c.MACKeys {
		if len(k) < MinMACKeyLen || len(k) > MaxMACKeyLen {
			return nil, fmt.Errorf("pass: MAC key %d is %d bytes; want %d to %d", i+1, len(k), MinMACKeyLen, MaxMACKeyLen)
		}
		macKeys[i] = append([]byte(nil), k...)
	}
	if c.Keys == nil {
		return nil, errors.New("pass: no issuer keys")
	}
	lifetime := c.Lifetime
	if lifetime == 0 {
		lifetime = DefaultLifetime
	}
	if lifetime < 0 || lifetime > maxLifetime {
		return nil, errors.New("pass: pass lifetime must be positive and at most ten years")
	}
	return &Issuer{name: c.IssuerName, macKeys: macKeys, keys: c.Keys, lifetime: lifetime}, nil
}

// Name returns the issuer name of the challenges.
func (is *Issuer) Name() string { return is.name }

// Keys returns the issuer's key set.
func (is *Issuer) Keys() *KeySet { return is.keys }

// Lifetime returns the pass lifetime after expires_at.
func (is *Issuer) Lifetime() time.Duration { return is.lifetime }

// PassNotAfter is the last instant a pass whose challenge was issued at
// issuedAt can be redeemed: its expires_at plus the lifetime. A key that
// stopped issuing at t (Issuer.BlindSign refuses keys that are not active,
// and a challenge names its key under the MAC) signed no pass redeemable
// after PassNotAfter(t): from then on the spent-token store may forget that
// key's records.
func (is *Issuer) PassNotAfter(issuedAt time.Time) time.Time {
	return expiresAt(issuedAt).Add(is.lifetime)
}

// String returns "pass.Issuer(<issuer name>)"; it never prints the MAC keys.
func (is *Issuer) String() string { return fmt.Sprintf("pass.Issuer(%q)", is.name) }

// GoString is String.
func (is *Issuer) GoString() string { return is.String() }

// Format prints String for every verb.
func (is *Issuer) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, is.String()) }

// IssuedChallenge is the answer of POST /api/privacy/v1/relays/challenge.
type IssuedChallenge struct {
	Challenge  string    // challenge: base64url of the challenge JSON
	TokenKey   string    // token-key of the active key
	TokenKeyID string    // token-key-id of the active key
	ExpiresAt  time.Time // expires_at of the challenge
}

// Challenge returns a challenge for the active key of claimType, issued at
// now (see the package doc): token_type 2, the issuer name, origin_info OriginInfo,
// expires_at the first whole hour (UTC) at least one hour after now, and the
// MAC under the first MAC key. An unknown claim type is ErrUnknownClaimType.
func (is *Issuer) Challenge(claimType string, now time.Time) (*IssuedChallenge, error) {
	key, ok := is.keys.Active(claimType)
	if !ok {
		return nil, ErrUnknownClaimType
	}
	exp := expiresAt(now)
	if exp.Year() < 1970 || exp.Year() > 9999 {
		return nil, errors.New("pass: the clock is outside years 1970 to 9999")
	}
	w := wireChallenge{
		TokenType:  TokenType,
		IssuerName: is.name,
		OriginInfo: OriginInfo,
		ExpiresAt:  exp.Format(ExpiresAtLayout),
	}
	var mac [macLen]byte
	challengeMAC(&mac, is.macKeys[0], w.TokenType, w.IssuerName, w.OriginInfo, w.ExpiresAt, key.TokenKeyID())
	w.MAC = encodeMAC(&mac)
	raw, err := marshalChallenge(w)
	if err != nil {
		return nil, fmt.Errorf("pass: encoding the challenge: %w", err) // unreachable: strings only
	}
	return &IssuedChallenge{
		Challenge:  base64.RawURLEncoding.EncodeToString(raw),
		TokenKey:   key.TokenKey(),
		TokenKeyID: key.TokenKeyID(),
		ExpiresAt:  exp,
	}, nil
}

// BlindSign signs a blinded token (POST /api/v1/privacy-passes) with the
// key named by tokenKeyID, which must be the active issuing key of its claim
// type (else ErrUnknownKey; a key that only redeems does not sign). The
// blinded token must be exactly the key's modulus length and in [1, n-1],
// else an *Error wrapping ErrBlindedToken. It returns the claim type of the
// key with the blind signature, for billing. The result depends only on the
// key and the blinded token (an RSA signature is unique), so a retried
// request gets the same signature.
func (is *Issuer) BlindSign(tokenKeyID string, blinded []byte) (blindSig []byte, claimType string, err error) {
	key, claimType, ok := is.keys.activeKey(tokenKeyID)
	if !ok {
		return nil, "", ErrUnknownKey
	}
	sig, err := key.BlindSign(blinded)
	if err != nil {
		return nil, "", err
	}
	return sig, claimType, nil
}

// Verdict is what Issuer.Verify learns from a valid pass.
type Verdict struct {
	ClaimType string    // the claim type of the signing key
	Key       *Key      // the signing key
	KeyID     string    // Key.ID(): the key ID of the spent-token store
	SpendID   [32]byte  // SHA-256 of the nonce: the double-spend identity under KeyID
	ExpiresAt time.Time // the challenge's expires_at
	NotAfter  time.Time // the last instant the pass can be redeemed: ExpiresAt + lifetime
}

// CheckClaimType returns nil if the pass was signed by a key of claimType,
// else ErrClaimTypeMismatch.
func (v *Verdict) CheckClaimType(claimType string) error {
	if v.ClaimType != claimType {
		return ErrClaimTypeMismatch
	}
	return nil
}

// pssOptions are the RSABSSA-SHA384-PSS parameters (RFC 9474 §5): SHA-384,
// MGF1-SHA-384, salt length 48.
var pssOptions = rsa.PSSOptions{SaltLength: sha512.Size384, Hash: crypto.SHA384}

// Verify checks a privacy-pass-token against the issuer at time now, in this
// order; the first failing check decides:
//
//  1. ParsePass: form and sizes (ErrMalformed);
//  2. key_id names a configured key, active or not (else ErrInvalid);
//  3. the signature is exactly that key's modulus length (else ErrMalformed);
//  4. token_type is 2 and origin_info is OriginInfo (else ErrInvalid);
//  5. the challenge MAC, recomputed over the parsed fields and key_id under
//     each MAC key, equals mac (hmac.Equal; else ErrInvalid);
//  6. the signature is below the modulus and verifies over the token input
//     with RSASSA-PSS, SHA-384, salt length 48 (else ErrInvalid);
//  7. now is not after expires_at + lifetime (else ErrExpired).
//
// Errors are *Error values with a fixed Reason, except ErrExpired. Verify
// does not check the claim type (Verdict.CheckClaimType) and does not record
// the spend: both are the caller's job, in that order (the generate-claim endpoint checks them after the pass).
func (is *Issuer) Verify(token string, now time.Time) (*Verdict, error) {
	p, err := ParsePass(token)
	if err != nil {
		return nil, err
	}
	key, claimType, ok := is.keys.Lookup(p.KeyID)
	if !ok {
		return nil, invalid("unknown key_id")
	}
	if len(p.Signature) != key.Size() {
		return nil, malformed("signature length is not the modulus length of the key")
	}
	c := p.Challenge
	if c.TokenType != TokenType {
		return nil, invalid("token_type is not 2")
	}
	if c.OriginInfo != OriginInfo {
		return nil, invalid("origin_info is not " + OriginInfo)
	}
	if !is.macValid(c, p.KeyID) {
		return nil, invalid("challenge mac does not verify")
	}
	if new(big.Int).SetBytes(p.Signature).Cmp(key.priv.N) >= 0 {
		return nil, invalid("signature is not below the modulus")
	}
	input := p.TokenInput()
	digest := sha512.Sum384(input[:])
	if err := rsa.VerifyPSS(&key.priv.PublicKey, crypto.SHA384, digest[:], p.Signature, &pssOptions); err != nil {
		return nil, invalid("signature does not verify")
	}
	notAfter := c.ExpiresAt.Add(is.lifetime)
	if now.After(notAfter) {
		return nil, ErrExpired
	}
	return &Verdict{
		ClaimType: claimType,
		Key:       key,
		KeyID:     key.ID(),
		SpendID:   p.SpendID(),
		ExpiresAt: c.ExpiresAt,
		NotAfter:  notAfter,
	}, nil
}

// macValid recomputes the challenge MAC under every MAC key and compares each
// in constant time. It tries all keys, so its time does not say which one
// matched.
func (is *Issuer) macValid(c *Challenge, tokenKeyID string) bool {
	ok := false
	var want [macLen]byte
	for _, k := range is.macKeys {
		challengeMAC(&want, k, c.TokenType, c.IssuerName, c.OriginInfo, c.expText, tokenKeyID)
		if hmac.Equal(want[:], c.mac[:]) {
			ok = true
		}
	}
	return ok
}
