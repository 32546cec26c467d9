package pass

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"
)

// knownReasons is every Reason a pass can be refused with. A reason outside
// this set could be carrying request data.
func knownReasons() map[string]bool {
	m := map[string]bool{}
	for _, what := range []string{"privacy pass", "challenge"} {
		for _, tail := range []string{
			" has a repeated member", " has an unknown member", " has data after the object",
			" is not valid JSON", " is not valid UTF-8", " must be a JSON object",
		} {
			m[what+tail] = true
		}
		for _, name := range append(append([]string(nil), passMembers...), challengeMembers...) {
			m[what+" lacks a member: "+name] = true
		}
	}
	for _, r := range []string{
		"challenge mac does not verify", "origin_info is not " + OriginInfo, "signature does not verify",
		"signature is not below the modulus", "token_type is not 2", "unknown key_id",
		"challenge expires_at must be a string", "challenge is too long",
		"challenge issuer_name must be a string of 1 to 255 bytes", "challenge mac must be base64url of 32 bytes",
		"challenge must be a JSON object", "challenge must be canonical base64url without padding",
		"challenge origin_info must be a string of at most 255 bytes",
		"challenge token_type must be an integer from 0 to 65535", "key_id must be 64 lowercase hex characters",
		"privacy pass is too long", "privacy pass must be canonical base64url without padding",
		"signature length is not the modulus length of the key",
		"signature must be 256 or 512 bytes (the modulus length)", "signature must be a string",
		"signature must be canonical base64url without padding", "token_nonce must be 64 lowercase hex characters",
		"challenge expires_at must be RFC 3339 UTC in the form 2006-01-02T15:04:05Z",
	} {
		m[r] = true
	}
	return m
}

// checkPassError fails unless err is an *Error with a known reason (or
// ErrExpired).
func checkPassError(t *testing.T, err error, reasons map[string]bool) {
	t.Helper()
	if errors.Is(err, ErrExpired) {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if e.Err != ErrMalformed && e.Err != ErrInvalid {
		t.Fatalf("error %v wraps %v", err, e.Err)
	}
	if !reasons[e.Reason] {
		t.Fatalf("unknown reason %q", e.Reason)
	}
}

// seedTokens are the passes of the vector files and a fresh one.
func seedTokens(f *testing.F, is *Issuer) []string {
	seeds := []string{mint(f, is, claimAge, testNow).Token}
	files, _ := filepath.Glob("testdata/passes*.json")
	for _, path := range files {
		var vf vectorFile
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		if err := jsonUnmarshal(data, &vf); err != nil {
			f.Fatal(err)
		}
		for _, v := range vf.Vectors {
			seeds = append(seeds, v.Token)
			for _, m := range v.Mutations {
				seeds = append(seeds, m.Token)
			}
		}
	}
	return seeds
}

// FuzzParsePass checks that ParsePass never panics, refuses with known
// reasons and returns nothing on error, and that what it accepts encodes
// back (Encode) to a token that parses to the same pass.
func FuzzParsePass(f *testing.F) {
	is := newIssuer(f)
	for _, s := range seedTokens(f, is) {
		f.Add(s)
	}
	reasons := knownReasons()
	f.Fuzz(func(t *testing.T, token string) {
		p, err := ParsePass(token)
		if err != nil {
			if p != nil {
				t.Fatal("a pass with an error")
			}
			checkPassError(t, err, reasons)
			return
		}
		back, err := ParsePass(p.Encode())
		if err != nil {
			t.Fatalf("Encode of an accepted pass does not parse: %v", err)
		}
		if back.Nonce != p.Nonce || back.KeyID != p.KeyID || !bytes.Equal(back.Signature, p.Signature) ||
			!sameChallenge(back.Challenge, p.Challenge) {
			t.Fatal("Encode/ParsePass round trip changed the pass")
		}
		// Verify must agree with ParsePass on form, and never panic.
		if _, err := is.Verify(token, testNow); err != nil {
			checkPassError(t, err, reasons)
		}
	})
}

func sameChallenge(a, b *Challenge) bool {
	return a.TokenType == b.TokenType && a.IssuerName == b.IssuerName && a.OriginInfo == b.OriginInfo &&
		a.ExpiresAt.Equal(b.ExpiresAt) && a.MAC == b.MAC && a.mac == b.mac && bytes.Equal(a.Raw, b.Raw)
}

// FuzzParseChallenge checks ParseChallenge the same way: no panic, known
// reasons, and an accepted challenge re-encoded (compact JSON in the issued
// member order) parses to the same fields.
func FuzzParseChallenge(f *testing.F) {
	is := newIssuer(f)
	for _, ct := range []string{claimAge, claimOther} {
		ch, err := is.Challenge(ct, testNow)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ch.Challenge)
	}
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"token_type":2,"issuer_name":"a","origin_info":"","expires_at":"0000-01-01T00:00:00Z","mac":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`)))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"token_type":2,"token_type":2}`)))
	reasons := knownReasons()
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseChallenge(s)
		if err != nil {
			if c != nil {
				t.Fatal("a challenge with an error")
			}
			checkPassError(t, err, reasons)
			return
		}
		raw, err := marshalChallenge(wireChallenge{c.TokenType, c.IssuerName, c.OriginInfo, c.ExpiresAt.Format(ExpiresAtLayout), c.MAC})
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseChallenge(base64.RawURLEncoding.EncodeToString(raw))
		if err != nil {
			t.Fatalf("re-encoded challenge does not parse: %v", err)
		}
		back.Raw = c.Raw
		if !sameChallenge(back, c) {
			t.Fatal("round trip changed the challenge")
		}
	})
}

// refDecodeObject is decodeObject written the slow, obvious way with
// json.Decoder: the reference FuzzDecodeObject compares the walker against.
func refDecodeObject(data []byte, names []string) ([]json.RawMessage, bool) {
	if !utf8.Valid(data) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	vals := make([]json.RawMessage, len(names))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		k := slices.Index(names, tok.(string))
		if k < 0 || vals[k] != nil {
			return nil, false
		}
		if err := dec.Decode(&vals[k]); err != nil {
			return nil, false
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	for _, v := range vals {
		if v == nil {
			return nil, false
		}
	}
	return vals, true
}

func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":"x"}`, ` { "b" : {"a":[1,{"}":"]"}]} , "a":null } `, `{"a":1,"a":2,"b":3}`,
		`{"a":"\"}","b":"\\"}`, `{"\u0061":1,"b":2}`, `{"A":1,"b":2}`, `{"a":1,"b":2}x`, `{"a":1,"b":2}{}`,
		`{"a":1}`, `{"a":1,"b":2,}`, `[{"a":1,"b":2}]`, `{"a":-1.5e3,"b":true}`, "{\"a\":1,\"b\":\"\xff\"}", ``, ` `,
	} {
		f.Add([]byte(s))
	}
	names := []string{"a", "b"}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeObject(data, names, "x", false)
		want, ok := refDecodeObject(data, names)
		if (err == nil) != ok {
			t.Fatalf("decodeObject error %v, reference ok %v", err, ok)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("member %s: %q, reference %q", names[i], got[i], want[i])
			}
		}
	})
}

// FuzzDecodeB64URL checks decodeB64URL's length test against the obvious
// rule: strict decoding, then re-encoding must give the input back.
func FuzzDecodeB64URL(f *testing.F) {
	for _, s := range []string{"", "AA", "AB", "AAA", "AAAA", "A", "AA==", "A\nA", "AA\r\n", "-_", "+/", "QUJD", "QUJDRA", "QUJDRB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := decodeB64URL(s, 1<<20)
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		want := err == nil && base64.RawURLEncoding.EncodeToString(b) == s
		if ok != want {
			t.Fatalf("decodeB64URL(%q) ok=%v, re-encoding says %v", s, ok, want)
		}
		if ok && !bytes.Equal(got, b) {
			t.Fatal("different bytes")
		}
	})
}
