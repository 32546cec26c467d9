package verify

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The types below are the strict leaves of the params object. encoding/json on
// its own turns a JSON null into "" or false and replaces invalid UTF-8 with
// U+FFFD; these reject both instead. encoding/json has validated the whole
// document before any UnmarshalJSON runs, so b is always one complete, valid
// JSON value.

// dataString is one element of data.
type dataString string

func (s *dataString) UnmarshalJSON(b []byte) error {
	v, ok := jsonString(b)
	if !ok {
		return badParams(reasonDataString)
	}
	*s = dataString(v)
	return nil
}

// bindingString is one element of bindings.
type bindingString string

func (s *bindingString) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '"' {
		return badParams(reasonBindingsShape)
	}
	v, ok := jsonString(b)
	if !ok {
		return badParams(reasonBindingsUTF8)
	}
	*s = bindingString(v)
	return nil
}

// settingString is curve, hash or method in data[2]; set records presence.
type settingString struct {
	set bool
	s   string
}

func (s *settingString) UnmarshalJSON(b []byte) error {
	v, ok := jsonString(b)
	if !ok {
		return badParams(reasonSettingsStrings)
	}
	*s = settingString{set: true, s: v}
	return nil
}

// optionalBool is compressed: absent means false, null is refused.
type optionalBool struct{ v bool }

func (o *optionalBool) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		o.v = true
	case "false":
		o.v = false
	default:
		return badParams(reasonCompressed)
	}
	return nil
}

// jsonString decodes a JSON string literal that must be valid UTF-8. ok is
// false for any other JSON value. The common case, no escapes, costs one copy.
func jsonString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || !utf8.Valid(b) {
		return "", false
	}
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b[1 : len(b)-1]), true
	}
	return jsonUnescape(b)
}

// jsonUnescape lets encoding/json resolve escapes. An escaped lone surrogate
// becomes U+FFFD, as in every JSON decoder that produces UTF-8. (Separate so
// that s escapes to the heap only on this rare path.)
func jsonUnescape(b []byte) (string, bool) {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", false
	}
	return s, true
}
