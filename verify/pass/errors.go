package pass

import "errors"

// The sentinels below are the verdicts of this package. The caller maps them
// to the provider API's statuses and titles, in one place; nothing here knows
// about the wire. Refusals of a pass (ErrMalformed, ErrInvalid) and of a
// blinded token (ErrBlindedToken) are *Error values wrapping the sentinel, so
// that errors.Is works and Reason says which rule broke; the other sentinels
// are returned as they are.
var (
	// ErrMalformed: the privacy-pass-token is not a pass in the format of
	// this package (bad base64url, not JSON, a missing, unknown, repeated or
	// mistyped member, wrong lengths, upper-case hex, a non-canonical
	// expires_at, a signature whose length is not the modulus length of the
	// key it names). generate-claim: 400 "Invalid Privacy Pass".
	ErrMalformed = errors.New("malformed privacy pass")
	// ErrInvalid: a well-formed pass that this issuer did not issue: unknown
	// key_id, token_type not 2, origin_info not the relay path, a wrong
	// challenge MAC, a signature that does not verify or is not below the
	// modulus. generate-claim: 401 "Invalid Privacy Pass".
	ErrInvalid = errors.New("invalid privacy pass")
	// ErrExpired: a valid pass past expires_at plus the pass lifetime.
	// generate-claim: 401 "Privacy Pass expired".
	ErrExpired = errors.New("privacy pass expired")
	// ErrClaimTypeMismatch: a valid pass signed by a key of another claim
	// type than the one asked for (Verdict.CheckClaimType). generate-claim:
	// 422 "Claim type mismatch"; the pass is not consumed.
	ErrClaimTypeMismatch = errors.New("claim type mismatch")

	// ErrUnknownClaimType: Issuer.Challenge for a claim type without keys.
	// The challenge endpoint (and relay creation): 422 "Unknown claim type".
	ErrUnknownClaimType = errors.New("unknown claim type")
	// ErrUnknownKey: Issuer.BlindSign for a token-key-id that is not the
	// active issuing key of any claim type. POST /api/v1/privacy-passes: 404.
	ErrUnknownKey = errors.New("unknown or inactive issuing key")
	// ErrBlindedToken: a blinded token whose length is not the modulus
	// length of the key, or whose value is 0 or not below the modulus.
	// POST /api/v1/privacy-passes: 400 (a malformed body).
	ErrBlindedToken = errors.New("invalid blinded token")
)

// Error says which rule a pass or a blinded token broke. Reason is a fixed
// human text (e.g. "token_nonce must be 64 lowercase hex characters") that
// never contains request data, key material or secrets: it may be logged and
// sent to the client as details. errors.Is(e, e.Err) is true.
type Error struct {
	Err    error // one of the sentinels of this package
	Reason string
}

// Error returns the sentinel's text, ": ", then Reason.
func (e *Error) Error() string { return e.Err.Error() + ": " + e.Reason }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func malformed(reason string) error { return &Error{Err: ErrMalformed, Reason: reason} }
func invalid(reason string) error   { return &Error{Err: ErrInvalid, Reason: reason} }
