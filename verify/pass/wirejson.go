package pass

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"unicode/utf8"
)

// decodeObject reads data as one JSON object whose members are exactly
// names: every name present once, matched case-sensitively, nothing else,
// nothing after the object but whitespace. It returns the raw value of each
// member in the order of names. encoding/json alone would match names
// case-insensitively, let a repeated member win, ignore unknown members and
// missing ones, and turn invalid UTF-8 into U+FFFD; each is refused here
// with a fixed reason.
//
// Member names are compared after JSON unescaping, and members may come in
// any order with any whitespace: two texts that are the same JSON object are
// the same pass.
func decodeObject(data []byte, names []string, what string) ([]json.RawMessage, error) {
	if !utf8.Valid(data) {
		return nil, malformed(what + " is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, malformed(what + " must be a JSON object")
	}
	vals := make([]json.RawMessage, len(names))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(what + " is not valid JSON")
		}
		name, _ := tok.(string) // inside an object, dec.Token gives names as strings
		i := indexOf(names, name)
		if i < 0 {
			return nil, malformed(what + " has an unknown member")
		}
		if vals[i] != nil {
			return nil, malformed(what + " has a repeated member")
		}
		if err := dec.Decode(&vals[i]); err != nil {
			return nil, malformed(what + " is not valid JSON")
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, malformed(what + " is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed(what + " has data after the object")
	}
	for i := range vals {
		if vals[i] == nil {
			return nil, malformed(what + " lacks a member: " + names[i])
		}
	}
	return vals, nil
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	return -1
}

// jsonString decodes a raw JSON value that must be a string (never null).
// The whole document was checked for valid UTF-8 and JSON syntax already.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// isLowerHex reports whether s is exactly n characters of [0-9a-f].
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// decodeB64URL decodes canonical base64url without padding (RFC 4648 §5,
// §3.2): the URL alphabet, no '=', zero trailing bits (Strict), and no line
// breaks, which encoding/base64 skips even in Strict mode; re-encoding and
// comparing catches those and anything else that is not the one encoding of
// the decoded bytes. maxLen bounds the input before any work.
func decodeB64URL(s string, maxLen int) ([]byte, bool) {
	if len(s) > maxLen {
		return nil, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, false
	}
	// Public input: a plain comparison is fine.
	if base64.RawURLEncoding.EncodeToString(b) != s {
		return nil, false
	}
	return b, true
}
