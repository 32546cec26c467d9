package pass

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"
)

// decodeObject reads data as one JSON object whose members are exactly
// names: every name present once, matched case-sensitively, nothing else,
// nothing after the object but whitespace. It returns the raw value of each
// member in the order of names (sub-slices of data). encoding/json alone
// would match names case-insensitively, let a repeated member win, ignore
// unknown and missing members, and turn invalid UTF-8 into U+FFFD; each is
// refused here with a fixed reason.
//
// json.Valid checks the whole text first (RFC 8259 syntax); the walk below
// then only has to find where each member name and value ends, which in
// valid JSON is unambiguous. It does no further allocation than the result.
// Member names are compared after JSON unescaping, and members may come in
// any order with any whitespace: two texts that are the same JSON object are
// the same pass.
//
// checked says that data is a value inside a document that was already
// checked (UTF-8 and JSON syntax); the checks are not repeated.
func decodeObject(data []byte, names []string, what string, checked bool) ([]json.RawMessage, error) {
	if !checked && !utf8.Valid(data) {
		return nil, malformed(what + " is not valid UTF-8")
	}
	if !checked && !json.Valid(data) {
		return nil, malformed(what + " is not valid JSON")
	}
	i := skipSpace(data, 0)
	if data[i] != '{' { // valid JSON is never only whitespace
		return nil, malformed(what + " must be a JSON object")
	}
	vals := make([]json.RawMessage, len(names))
	i = skipSpace(data, i+1)
	for data[i] != '}' {
		end := stringEnd(data, i)
		name, ok := jsonString(data[i:end])
		if !ok {
			return nil, malformed(what + " is not valid JSON") // unreachable after json.Valid
		}
		k := indexOf(names, name)
		if k < 0 {
			return nil, malformed(what + " has an unknown member")
		}
		if vals[k] != nil {
			return nil, malformed(what + " has a repeated member")
		}
		i = skipSpace(data, end) // at ':'
		i = skipSpace(data, i+1) // at the value
		end = valueEnd(data, i)
		vals[k] = data[i:end:end]
		i = skipSpace(data, end) // at ',' or '}'
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	if skipSpace(data, i+1) != len(data) {
		return nil, malformed(what + " has data after the object")
	}
	for k := range vals {
		if vals[k] == nil {
			return nil, malformed(what + " lacks a member: " + names[k])
		}
	}
	return vals, nil
}

// The helpers below walk text that json.Valid accepted; they do not check
// syntax again.

// skipSpace returns the index of the first non-whitespace byte at or after
// i (RFC 8259 §2: space, tab, line feed, carriage return), or len(data).
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just past the string that starts at data[i]
// (a '"'). Inside a string only '\\' escapes and only '"' ends it.
func stringEnd(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(data)
}

// valueEnd returns the index just past the value that starts at data[i].
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = stringEnd(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(data)
	default: // number, true, false, null: up to a delimiter
		for i < len(data) {
			switch data[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return len(data)
	}
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
// §3.2): the URL alphabet only, no '=', and zero trailing bits (Strict mode).
// encoding/base64 still skips '\r' and '\n', even in Strict mode; the length
// check catches them: with every other character checked, the input is the
// one canonical encoding of the decoded bytes exactly when it is as long as
// that encoding (FuzzDecodeB64URL compares this with re-encoding and
// comparing). maxLen bounds the input before any work.
func decodeB64URL(s string, maxLen int) ([]byte, bool) {
	if len(s) > maxLen {
		return nil, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || base64.RawURLEncoding.EncodedLen(len(b)) != len(s) {
		return nil, false
	}
	return b, true
}
