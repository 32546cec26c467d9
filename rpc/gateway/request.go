package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/ppredeem/ppredeem/rpc/httpbody"
)

// Bounds of the values the gateway copies into upstream requests. They are
// far above what the provider issues, and keep a hostile value short.
const (
	maxRelayTokenLen  = 256
	maxRelaySecretLen = 256
	maxAPIKeyLen      = 512
)

// readObject reads the request body, after checking its content type
// (application/json, with any parameters, or none given), and decodes it
// as a JSON object. The body is read whole under the listener's body
// budget, at most h.maxBody bytes, and given back once decoded: the
// object's members are copies.
func (h *Handler) readObject(r *http.Request) (object, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, refuse(http.StatusBadRequest, TitleUnsupportedContentType, "the body must be application/json")
		}
	}
	body, err := h.bodies.Read(r, h.maxBody)
	if err != nil {
		var tooBig *httpbody.TooLargeError
		switch {
		case errors.Is(err, httpbody.ErrBusy):
			return nil, errBusy
		case errors.As(err, &tooBig):
			return nil, refuse(http.StatusBadRequest, TitleBodyTooLarge, fmt.Sprintf("the body is larger than the limit of %d bytes", h.maxBody))
		default:
			return nil, refuse(http.StatusBadRequest, TitleMalformedBody, "the body could not be read")
		}
	}
	defer body.Release()
	o, err := parseObject(body.Bytes(), "the body")
	if err != nil {
		return nil, malformed(err)
	}
	return o, nil
}

// object is the members of a JSON object, under their exact names.
type object map[string]json.RawMessage

// parseObject decodes a JSON object. Unknown members are kept and ignored
// by the callers.
func parseObject(body []byte, what string) (object, error) {
	var o object
	if err := json.Unmarshal(body, &o); err != nil || o == nil {
		return nil, fmt.Errorf("%s is not a JSON object", what)
	}
	return o, nil
}

// lookup returns the member spelled kebab or camel (both are accepted; the
// spellings are identical for one-word names). Giving both with different
// values is an error. A null member counts as absent.
func (o object) lookup(kebab, camel string) (json.RawMessage, error) {
	k, kok := o[kebab]
	c, cok := o[camel]
	switch {
	case kok && cok && kebab != camel && !sameJSON(k, c):
		return nil, fmt.Errorf("%s and %s are both given, with different values", kebab, camel)
	case !kok:
		k = c
	}
	if string(bytes.TrimSpace(k)) == "null" {
		return nil, nil
	}
	return k, nil
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(a, b json.RawMessage) bool {
	var va, vb any
	return json.Unmarshal(a, &va) == nil && json.Unmarshal(b, &vb) == nil && reflect.DeepEqual(va, vb)
}

// str returns a string member; ok is false when it is absent or null.
func (o object) str(kebab, camel string) (s string, ok bool, err error) {
	raw, err := o.lookup(kebab, camel)
	if err != nil || raw == nil {
		return "", false, err
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, fmt.Errorf("%s is not a string", kebab)
	}
	return s, true, nil
}

// boolean returns a boolean member; ok is false when it is absent or null.
func (o object) boolean(kebab, camel string) (b, ok bool, err error) {
	raw, err := o.lookup(kebab, camel)
	if err != nil || raw == nil {
		return false, false, err
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, false, fmt.Errorf("%s is not a boolean", kebab)
	}
	return b, true, nil
}

// malformed is the refusal of a request body that is not what the endpoint
// takes. Its details name the member, never its value.
func malformed(err error) error {
	return refuse(http.StatusBadRequest, TitleMalformedBody, err.Error())
}

// bearerKey returns the API key of "Authorization: Bearer <key>". The key
// must be visible ASCII: it is copied into the upstream request's header.
func bearerKey(r *http.Request) (string, error) {
	unauthorized := refuse(http.StatusUnauthorized, TitleUnauthorized, "an API key is required: Authorization: Bearer <api key>")
	scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", unauthorized
	}
	key = strings.TrimSpace(key)
	if key == "" || len(key) > maxAPIKeyLen || !visibleASCII(key) {
		return "", unauthorized
	}
	return key, nil
}

// relaySecret returns the Persona-Relay-Secret header.
func relaySecret(r *http.Request) (string, error) {
	s := strings.TrimSpace(r.Header.Get(RelaySecretHeader))
	switch {
	case s == "":
		return "", refuse(http.StatusBadRequest, TitleMissingRelaySecret, "the "+RelaySecretHeader+" header is required")
	case len(s) > maxRelaySecretLen || !visibleASCII(s):
		return "", refuse(http.StatusBadRequest, TitleInvalidRelaySecret, "the "+RelaySecretHeader+" header is not a relay secret")
	}
	return s, nil
}

// validRelayToken accepts what a relay token can be: URL-safe characters
// (letters, digits, '-' and '_'), so it goes into the upstream path as it
// is, with nothing to escape and no way to change the path's meaning.
func validRelayToken(s string) bool {
	if s == "" || len(s) > maxRelayTokenLen {
		return false
	}
	return isBase64URL(s)
}

// isBase64URL reports whether s uses only the base64url alphabet (no
// padding). Passes are base64url: this keeps one safe to put in a header.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
