package client

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"filippo.io/nistec"

	"github.com/ppredeem/ppredeem/rpc/wire"
)

// TokenLen is the length of the tokens Issue draws: 32 random bytes, as
// every known client (verify/PROTOCOL.md §1).
const TokenLen = 32

// The labels of the redemption MAC (verify/PROTOCOL.md §6; deriveKey and
// createRequestBinding in src/ext/redemption.js of
// privacypass/challenge-bypass-extension v2.0.6).
var (
	deriveKeyLabel      = []byte("hash_derive_key")
	requestBindingLabel = []byte("hash_request_binding")
)

// Token is an issued token, ready to redeem: the token t and the unblinded
// signature N = k·H2C(t), with H2C the method "increment". Whoever holds
// both can redeem the token once; keep them secret until then. fmt prints
// a Token as "client.Token{redacted}"; MarshalJSON is how to store one.
type Token struct {
	input []byte
	n     *nistec.P256Point
}

// NewToken rebuilds a token from its input t and the SEC1 encoding of its
// signed point N (as Input and SignedPoint return them).
func NewToken(input, signedPoint []byte) (*Token, error) {
	if len(input) == 0 {
		return nil, errors.New("ppredeem client: empty token")
	}
	n, err := nistec.NewP256Point().SetBytes(signedPoint)
	if err != nil || n.IsInfinity() == 1 {
		return nil, errors.New("ppredeem client: the signed point is not a point of P-256")
	}
	return &Token{input: append([]byte(nil), input...), n: n}, nil
}

// Input returns the token t (data[0] of a redemption), a copy.
func (t *Token) Input() []byte { return append([]byte(nil), t.input...) }

// SignedPoint returns N, SEC1 uncompressed (65 bytes).
func (t *Token) SignedPoint() []byte { return t.n.Bytes() }

// Tag returns the redemption tag of the token for bindings
// (verify/PROTOCOL.md §6):
//
//	dk  = HMAC-SHA256(key = "hash_derive_key", msg = t || SEC1(N))
//	tag = HMAC-SHA256(key = dk, msg = "hash_request_binding" || b1 || ... || bm)
//
// with SEC1(N) compressed when compressed is true (the "compressed" member
// of the redemption; every public client sends false).
func (t *Token) Tag(bindings []string, compressed bool) []byte {
	n := t.n.Bytes()
	if compressed {
		n = t.n.BytesCompressed()
	}
	mac := hmac.New(sha256.New, deriveKeyLabel)
	mac.Write(t.input)
	mac.Write(n)
	dk := mac.Sum(nil)

	mac = hmac.New(sha256.New, dk)
	mac.Write(requestBindingLabel)
	for _, b := range bindings {
		io.WriteString(mac, b)
	}
	return mac.Sum(nil)
}

// RedeemRequest returns the whole JSON-RPC request that redeems the token
// for bindings (verify/PROTOCOL.md §1), with id 1, ready to POST to
// /api/redeem: data is [t, tag, settings] and the method "increment". opts
// may set Compressed; a Method other than "increment" is refused, as are
// bindings that are not valid UTF-8 (ErrInvalidParams).
func (t *Token) RedeemRequest(bindings []string, opts *RedeemOptions) ([]byte, error) {
	params, err := t.params(bindings, opts)
	if err != nil {
		return nil, err
	}
	return requestBody(1, params), nil
}

// RedeemToken redeems an issued token for bindings: Redeem with the
// token's input and its tag, and the same outcomes. opts may set
// Compressed; a Method other than "increment" is refused with
// ErrInvalidParams.
func (c *Client) RedeemToken(ctx context.Context, t *Token, bindings []string, opts *RedeemOptions) error {
	o, err := tokenOptions(opts)
	if err != nil {
		return err
	}
	return c.Redeem(ctx, t.input, t.Tag(bindings, o.Compressed), bindings, o)
}

func (t *Token) params(bindings []string, opts *RedeemOptions) ([]byte, error) {
	o, err := tokenOptions(opts)
	if err != nil {
		return nil, err
	}
	p, perr := encodeParams(t.input, t.Tag(bindings, o.Compressed), bindings, o)
	if perr != nil {
		return nil, perr
	}
	return p, nil
}

// tokenOptions are opts for a token hashed with the method "increment".
func tokenOptions(opts *RedeemOptions) (*RedeemOptions, error) {
	var o RedeemOptions
	if opts != nil {
		o = *opts
	}
	switch o.Method {
	case "", "increment":
		o.Method = "increment"
		return &o, nil
	default:
		return nil, &Error{
			Code:    wire.CodeInvalidParams,
			Message: `issued tokens hash to the curve with the method "increment"`,
			kinds:   []error{ErrInvalidParams},
		}
	}
}

// tokenJSON is the stored form of a Token.
type tokenJSON struct {
	Token string `json:"token"` // standard base64 of t
	N     string `json:"N"`     // standard base64 of SEC1 uncompressed N
}

// MarshalJSON returns {"token":"<b64 t>","N":"<b64 SEC1 N>"}, standard
// base64: the token's secrets, for storing it until it is redeemed.
func (t *Token) MarshalJSON() ([]byte, error) {
	return json.Marshal(tokenJSON{
		Token: base64.StdEncoding.EncodeToString(t.input),
		N:     base64.StdEncoding.EncodeToString(t.n.Bytes()),
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (t *Token) UnmarshalJSON(b []byte) error {
	var j tokenJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return errors.New("ppredeem client: a token is a JSON object {\"token\",\"N\"}")
	}
	input, err1 := base64.StdEncoding.DecodeString(j.Token)
	n, err2 := base64.StdEncoding.DecodeString(j.N)
	if err1 != nil || err2 != nil {
		return errors.New("ppredeem client: a token's members are standard base64")
	}
	tok, err := NewToken(input, n)
	if err != nil {
		return err
	}
	*t = *tok
	return nil
}

// Format prints "client.Token{redacted}" for every verb: a token's
// secrets never reach a log by accident.
func (Token) Format(f fmt.State, _ rune) { io.WriteString(f, "client.Token{redacted}") }
