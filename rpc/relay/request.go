package relay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ppredeem/ppredeem/rpc/httpbody"
)

// readBody reads a request body of at most max bytes. An empty body is an empty object.
func (h *Handler) readBody(r *http.Request) ([]byte, error) {
	read, err := h.bodies.Read(r, h.maxBody)
	if err != nil {
		var tooBig *httpbody.TooLargeError
		switch {
		case errors.Is(err, httpbody.ErrBusy):
			return nil, refuse(rowUnavailable, "the server is busy reading other request bodies; nothing was done, a retry is safe")
		case errors.As(err, &tooBig):
			return nil, refuse(rowBodyTooLarge, fmt.Sprintf("the body is larger than %d bytes", h.maxBody))
		default:
			return nil, refuse(rowBadRequest, "could not read the request body")
		}
	}
	defer read.Release()
	if len(bytes.TrimSpace(read.Bytes())) == 0 {
		return []byte("{}"), nil
	}
	// The budget's buffer goes back at Release; bodies here are small
	// (at most MaxBodyBytes), so the callers get a copy.
	return bytes.Clone(read.Bytes()), nil
}

// object is a request body's members, by name. Both spellings of a member are accepted
// (claim-type and claimType: the published SDK sends camelCase); unknown members are
// ignored.
type object map[string]json.RawMessage

// readObject reads the request body (readBody) as an object.
func (h *Handler) readObject(r *http.Request) (object, error) {
	body, err := h.readBody(r)
	if err != nil {
		return nil, err
	}
	return parseObject(body)
}

func parseObject(body []byte) (object, error) {
	var o object
	if err := json.Unmarshal(body, &o); err != nil || o == nil {
		return nil, refuse(rowBadRequest, "the body must be a JSON object")
	}
	return o, nil
}

// member returns the raw value of a member under either spelling; both spellings with
// different values are refused.
func (o object) member(kebab, camel string) (json.RawMessage, bool, error) {
	a, okA := o[kebab]
	b, okB := o[camel]
	switch {
	case okA && okB && !bytes.Equal(bytes.TrimSpace(a), bytes.TrimSpace(b)):
		return nil, false, refuse(rowBadRequest, kebab+" and "+camel+" are both given, with different values")
	case okA:
		return a, true, nil
	case okB:
		return b, true, nil
	}
	return nil, false, nil
}

// str returns a string member; null counts as absent.
func (o object) str(kebab, camel string) (string, bool, error) {
	raw, ok, err := o.member(kebab, camel)
	if err != nil || !ok || string(bytes.TrimSpace(raw)) == "null" {
		return "", false, err
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false, refuse(rowBadRequest, kebab+" must be a string")
	}
	return s, true, nil
}

// required returns a string member that must be present and not empty.
func (o object) required(kebab, camel string) (string, error) {
	s, ok, err := o.str(kebab, camel)
	if err != nil {
		return "", err
	}
	if !ok || s == "" {
		return "", refuse(rowBadRequest, kebab+" is required")
	}
	return s, nil
}

// boolean returns a boolean member; null counts as absent.
func (o object) boolean(kebab, camel string) (bool, error) {
	raw, ok, err := o.member(kebab, camel)
	if err != nil || !ok || string(bytes.TrimSpace(raw)) == "null" {
		return false, err
	}
	var b bool
	if json.Unmarshal(raw, &b) != nil {
		return false, refuse(rowBadRequest, kebab+" must be true or false")
	}
	return b, nil
}

// bearer returns the credential of "Authorization: Bearer <credential>", or "".
func bearer(r *http.Request) string {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(cred)
}

// privateToken returns the pass of "Authorization: PrivateToken token=<pass>", the value
// possibly quoted (RFC 9577 §2.2 uses an auth-param, which HTTP allows as a token or a
// quoted string).
func privateToken(r *http.Request) (string, error) {
	bad := func(detail string) (string, error) { return "", refuse(rowMalformedPass, detail) }
	h := r.Header.Get("Authorization")
	if h == "" {
		return bad("the Authorization header is missing")
	}
	scheme, params, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "PrivateToken") {
		return bad("the Authorization scheme is not PrivateToken")
	}
	name, value, ok := strings.Cut(strings.TrimSpace(params), "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(name), "token") {
		return bad("the PrivateToken credentials have no token parameter")
	}
	value = strings.TrimSpace(value)
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	if value == "" {
		return bad("the token parameter is empty")
	}
	return value, nil
}

// maxIdempotencyKeyLen bounds an Idempotency-Key.
const maxIdempotencyKeyLen = 255

// idempotencyKey returns the Idempotency-Key header ("" without one): 1 to 255 visible
// ASCII characters.
func idempotencyKey(r *http.Request) (string, error) {
	k := r.Header.Get("Idempotency-Key")
	if k == "" {
		return "", nil
	}
	if len(k) > maxIdempotencyKeyLen {
		return "", refuse(rowBadRequest, "the Idempotency-Key is longer than 255 characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return "", refuse(rowBadRequest, "the Idempotency-Key must be visible ASCII")
		}
	}
	return k, nil
}

// decodeB64URL decodes base64url without padding, strictly.
func decodeB64URL(s string) ([]byte, bool) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return b, err == nil
}

// validRelayToken reports whether s has the shape of a relay token: "relay_" and 22
// base64url characters (128 random bits). Anything else cannot name a relay.
func validRelayToken(s string) bool {
	rest, ok := strings.CutPrefix(s, relayTokenPrefix)
	if !ok || len(rest) != relayTokenChars {
		return false
	}
	_, ok = decodeB64URL(rest)
	return ok
}
