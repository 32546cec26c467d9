package pass

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"time"
)

// Fixed values of the challenge.
const (
	// TokenType is the token_type of every challenge and pass: 2, Blind RSA
	// (RFC 9578 §6).
	TokenType = 2
	// OriginInfo is the origin_info of every challenge: the relay API path.
	OriginInfo = "/api/privacy/v1/relays"
	// ExpiresAtLayout is the one accepted form of expires_at: RFC 3339 in
	// UTC with "Z", whole seconds, no fraction.
	ExpiresAtLayout = "2006-01-02T15:04:05Z"
)

// Size bounds of the challenge.
const (
	// MaxIssuerNameLen bounds issuer_name, in bytes of UTF-8.
	MaxIssuerNameLen = 255
	// maxOriginInfoLen bounds origin_info as parsed; only OriginInfo is valid.
	maxOriginInfoLen = 255
	// macLen is the HMAC-SHA256 output; macB64Len its base64url length.
	macLen    = sha256.Size
	macB64Len = 43
	// maxChallengeJSON bounds the challenge object: the fixed members are
	// about 150 bytes, the issuer name at most 255 bytes, or six times that
	// when every byte is written as a \u escape.
	maxChallengeJSON = 2048
	// MaxChallengeLen bounds the base64url challenge string.
	MaxChallengeLen = (maxChallengeJSON*4 + 2) / 3
)

// macLabel separates the challenge MAC from any other use of the MAC key.
const macLabel = "ppredeem relay challenge mac v1"

// Challenge is a parsed challenge, either as issued (the
// base64url string of Issuer.Challenge, read by ParseChallenge) or as embedded
// in a pass. Raw is the JSON object verbatim; the other fields are what the
// MAC is checked over.
type Challenge struct {
	TokenType  uint16    // must be TokenType to verify
	IssuerName string    // 1 to MaxIssuerNameLen bytes
	OriginInfo string    // must be OriginInfo to verify
	ExpiresAt  time.Time // UTC, whole seconds
	MAC        string    // base64url text of the 32-byte MAC, as in the JSON
	Raw        json.RawMessage

	mac     [macLen]byte // MAC decoded
	expText string       // expires_at as in the JSON (its only spelling)
}

var challengeMembers = []string{"token_type", "issuer_name", "origin_info", "expires_at", "mac"}

// ParseChallenge parses the base64url challenge string handed to clients
// (POST /api/privacy/v1/relays/challenge). It checks the form only (see parseChallengeJSON); whether
// the values are as issued is Issuer.Verify's job. Errors wrap ErrMalformed.
func ParseChallenge(challenge string) (*Challenge, error) {
	raw, ok := decodeB64URL(challenge, MaxChallengeLen)
	if !ok {
		return nil, malformed("challenge must be canonical base64url without padding")
	}
	return parseChallengeJSON(raw, false)
}

// parseChallengeJSON parses the challenge JSON object strictly:
//
//   - exactly the members token_type, issuer_name, origin_info, expires_at
//     and mac, each once, in any order;
//   - token_type a JSON integer from 0 to 65535, written without fraction or
//     exponent;
//   - issuer_name a string of 1 to MaxIssuerNameLen bytes, origin_info a
//     string of at most 255 bytes;
//   - expires_at a string in the form ExpiresAtLayout, exactly as Format
//     writes it (so one instant has one spelling);
//   - mac a string of canonical base64url of 32 bytes (43 characters).
//
// Raw keeps raw (not copied: the caller must not modify it). checked says
// raw is a value of a document decodeObject has checked already.
func parseChallengeJSON(raw []byte, checked bool) (*Challenge, error) {
	if len(raw) > maxChallengeJSON {
		return nil, malformed("challenge is too long")
	}
	v, err := decodeObject(raw, challengeMembers, "challenge", checked)
	if err != nil {
		return nil, err
	}
	c := &Challenge{Raw: raw}

	tt := string(v[0])
	if len(tt) == 0 || len(tt) > 5 || !isDigits(tt) {
		return nil, malformed("challenge token_type must be an integer from 0 to 65535")
	}
	n, err := strconv.ParseUint(tt, 10, 16)
	if err != nil {
		return nil, malformed("challenge token_type must be an integer from 0 to 65535")
	}
	c.TokenType = uint16(n)

	var ok bool
	if c.IssuerName, ok = jsonString(v[1]); !ok || len(c.IssuerName) == 0 || len(c.IssuerName) > MaxIssuerNameLen {
		return nil, malformed("challenge issuer_name must be a string of 1 to 255 bytes")
	}
	if c.OriginInfo, ok = jsonString(v[2]); !ok || len(c.OriginInfo) > maxOriginInfoLen {
		return nil, malformed("challenge origin_info must be a string of at most 255 bytes")
	}
	exp, ok := jsonString(v[3])
	if !ok {
		return nil, malformed("challenge expires_at must be a string")
	}
	c.expText = exp
	if c.ExpiresAt, ok = parseExpiresAt(exp); !ok {
		return nil, malformed(`challenge expires_at must be RFC 3339 UTC in the form 2006-01-02T15:04:05Z`)
	}
	if c.MAC, ok = jsonString(v[4]); !ok || len(c.MAC) != macB64Len {
		return nil, malformed("challenge mac must be base64url of 32 bytes")
	}
	m, ok := decodeB64URL(c.MAC, macB64Len)
	if !ok || len(m) != macLen {
		return nil, malformed("challenge mac must be base64url of 32 bytes")
	}
	copy(c.mac[:], m)
	return c, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseExpiresAt accepts exactly the strings that formatExpiresAt writes.
func parseExpiresAt(s string) (time.Time, bool) {
	if len(s) != len(ExpiresAtLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(ExpiresAtLayout, s)
	if err != nil || t.Format(ExpiresAtLayout) != s {
		return time.Time{}, false
	}
	return t, true
}

// expiresAt is the expires_at of a challenge issued at now: the first whole
// hour (UTC) at least one hour after now. Every challenge is thus valid for
// 1 to 2 hours, and all challenges of one hour share the value, so expires_at
// does not single out a client.
func expiresAt(now time.Time) time.Time {
	t := now.UTC().Add(time.Hour)
	r := t.Truncate(time.Hour) // Go time has no leap seconds: UTC hours align
	if r.Before(t) {
		r = r.Add(time.Hour)
	}
	return r
}

// challengeMAC computes the challenge MAC: HMAC-SHA256 (RFC 2104) under key
// over an unambiguous encoding of every other challenge field and the
// token-key-id of the key the challenge is for:
//
//	lp(label) || BE16(token_type) || lp(issuer_name) || lp(origin_info) ||
//	lp(expires_at) || lp(token_key_id)
//
// where lp(x) = BE32(len(x)) || x, label is "ppredeem relay challenge mac v1"
// and expires_at is its text in the form ExpiresAtLayout. The length
// prefixes make every field boundary explicit, so no two different field
// tuples give the same input.
func challengeMAC(out *[macLen]byte, key []byte, tokenType uint16, issuerName, originInfo, expiresAt, tokenKeyID string) {
	var stack [512]byte
	buf := stack[:0]
	buf = appendLP(buf, macLabel)
	buf = binary.BigEndian.AppendUint16(buf, tokenType)
	buf = appendLP(buf, issuerName)
	buf = appendLP(buf, originInfo)
	buf = appendLP(buf, expiresAt)
	buf = appendLP(buf, tokenKeyID)
	h := hmac.New(sha256.New, key)
	h.Write(buf)
	h.Sum(out[:0])
}

func appendLP(buf []byte, s string) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...)
}

// wireChallenge is the challenge object in the member order of the package doc.
type wireChallenge struct {
	TokenType  uint16 `json:"token_type"`
	IssuerName string `json:"issuer_name"`
	OriginInfo string `json:"origin_info"`
	ExpiresAt  string `json:"expires_at"`
	MAC        string `json:"mac"`
}

// marshalChallenge returns the challenge JSON object, compact, members in
// the order of the package doc, without HTML escaping.
func marshalChallenge(w wireChallenge) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// encodeMAC is the base64url text of a MAC.
func encodeMAC(m *[macLen]byte) string { return base64.RawURLEncoding.EncodeToString(m[:]) }
