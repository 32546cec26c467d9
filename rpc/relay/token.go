package relay

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Relay tokens and secrets (rpc/relay/PROTOCOL.md §3.1).
const (
	relayTokenPrefix = "relay_"
	relayTokenChars  = 22 // base64url of 16 random bytes: 128 bits
)

// newRelayToken returns "relay_" and 128 random bits in base64url.
func newRelayToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return relayTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// newRelaySecret returns a random UUID (RFC 9562 §5.4, version 4): 122 random bits.
func newRelaySecret() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// relayID is what the store knows a relay by: SHA-256 of its token, so a copy of the
// database holds no usable token.
func relayID(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// shortHash names a relay in logs: 8 bytes of its ID in hex.
func shortHash(id [32]byte) string { return hex.EncodeToString(id[:8]) }

// accessAudience is the aud of every relay-session-access-token.
const accessAudience = "ppredeem-relay-session"

// keyID names an access-token key in the JWT header (kid): 8 bytes of its SHA-256, so a
// token names the key that signed it without revealing it.
func keyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// newAccessToken returns the relay-session-access-token of a relay: a JWT (RFC 7519) signed
// with HS256 under the newest access key, naming the relay by its ID (sub, base64url),
// valid until exp.
func newAccessToken(keys [][]byte, issuer string, id [32]byte, now, exp time.Time) (string, error) {
	if len(keys) == 0 {
		return "", errors.New("relay: no access-token key")
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer:    issuer,
		Subject:   base64.RawURLEncoding.EncodeToString(id[:]),
		Audience:  jwt.ClaimStrings{accessAudience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
	})
	t.Header["kid"] = keyID(keys[0])
	s, err := t.SignedString(keys[0])
	if err != nil {
		return "", fmt.Errorf("relay: signing the access token: %w", err)
	}
	return s, nil
}

// parseAccessToken checks an access token strictly (HS256 only, the kid of a configured key,
// exp required and not passed at now, iat not in the future, our audience) and returns the
// relay ID it names. Every failure is ErrInvalidSession.
func parseAccessToken(keys [][]byte, token string, now time.Time) ([32]byte, error) {
	var id [32]byte
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithAudience(accessAudience),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithStrictDecoding(),
	)
	var claims jwt.RegisteredClaims
	_, err := p.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		for _, k := range keys {
			if keyID(k) == kid {
				return k, nil
			}
		}
		return nil, errors.New("unknown kid")
	})
	if err != nil {
		return id, refuse(rowInvalidSession, "the access token is invalid or expired")
	}
	raw, ok := decodeB64URL(claims.Subject)
	if !ok || len(raw) != len(id) {
		return id, refuse(rowInvalidSession, "the access token names no relay")
	}
	copy(id[:], raw)
	return id, nil
}
