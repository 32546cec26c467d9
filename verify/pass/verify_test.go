package pass

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudflare/circl/blindsign/blindrsa"
)

func TestRoundTrip(t *testing.T) {
	is := newIssuer(t)
	for _, ct := range []string{claimAge, claimOther} {
		m := mint(t, is, ct, testNow)
		v, err := is.Verify(m.Token, testNow)
		if err != nil {
			t.Fatalf("%s: %v", ct, err)
		}
		key, _ := is.Keys().Active(ct)
		if v.ClaimType != ct || v.Key != key || v.KeyID != key.ID() {
			t.Errorf("%s: verdict claim %q key %v id %q", ct, v.ClaimType, v.Key, v.KeyID)
		}
		if v.KeyID != m.TokenKeyID[:16] {
			t.Errorf("store key ID %q is not the first 16 characters of %q", v.KeyID, m.TokenKeyID)
		}
		if v.SpendID != sha256.Sum256([]byte(m.Nonce)) {
			t.Error("SpendID is not SHA-256 of the nonce string")
		}
		wantExp := time.Date(2026, 3, 14, 17, 0, 0, 0, time.UTC)
		if !v.ExpiresAt.Equal(wantExp) || !v.NotAfter.Equal(wantExp.Add(DefaultLifetime)) {
			t.Errorf("expires %v not after %v", v.ExpiresAt, v.NotAfter)
		}
		if err := v.CheckClaimType(ct); err != nil {
			t.Error(err)
		}
	}
}

func TestRoundTrip4096(t *testing.T) {
	k := testKey4096(t)
	if k.Bits() != 4096 || k.Size() != 512 {
		t.Fatalf("bits %d size %d", k.Bits(), k.Size())
	}
	is := issuerWith(t, map[string][]*Key{claimAge: {k, loadKey(t, fixturePKCS8)}}, 0)
	m := mint(t, is, claimAge, testNow)
	if len(m.Signature) != 512 {
		t.Fatalf("signature of %d bytes", len(m.Signature))
	}
	if _, err := is.Verify(m.Token, testNow); err != nil {
		t.Fatal(err)
	}
	// A 512-byte signature naming the 2048-bit key is the wrong length for it.
	old := is.Keys().Keys(claimAge)[1]
	forged := editPass(t, m.Token, func(p map[string]json.RawMessage) { p["key_id"] = jsonText(t, old.TokenKeyID()) })
	expectErr(t, is, forged, testNow, ErrMalformed)
	// A short signature for the 4096-bit key.
	short := editPass(t, m.Token, func(p map[string]json.RawMessage) {
		p["signature"] = jsonText(t, base64.RawURLEncoding.EncodeToString(m.Signature[:256]))
	})
	expectErr(t, is, short, testNow, ErrMalformed)
}

func expectErr(t *testing.T, is *Issuer, token string, now time.Time, want error) {
	t.Helper()
	v, err := is.Verify(token, now)
	if !errors.Is(err, want) {
		t.Fatalf("Verify: %v, want %v", err, want)
	}
	if v != nil {
		t.Fatal("Verify returned a verdict with an error")
	}
	if want != ErrExpired {
		var e *Error
		if !errors.As(err, &e) || e.Reason == "" {
			t.Fatalf("%v is not an *Error with a reason", err)
		}
	}
}

// TestMutations changes one thing of a valid pass at a time; each must be
// refused with the expected sentinel.
func TestMutations(t *testing.T) {
	is := newIssuer(t)
	m := mint(t, is, claimAge, testNow)
	key, _ := is.Keys().Active(claimAge)
	otherKey, _ := is.Keys().Active(claimOther)
	sigB64 := base64.RawURLEncoding.EncodeToString(m.Signature)
	rawJSON, _ := base64.RawURLEncoding.DecodeString(m.Token)
	// spacedJSON is the same object with whitespace added so that its length
	// is 1 mod 3: its base64url has trailing bits and would need "==". It
	// is the same pass and must verify.
	spacedJSON := needingPadding(append([]byte(" "), rawJSON...))
	spaced := base64.RawURLEncoding.EncodeToString(spacedJSON)
	if _, err := is.Verify(spaced, testNow); err != nil {
		t.Fatal("whitespace around the object:", err)
	}

	setPass := func(name string, v any) string {
		return editPass(t, m.Token, func(p map[string]json.RawMessage) { p[name] = jsonText(t, v) })
	}
	setPassRaw := func(name, raw string) string {
		return editPass(t, m.Token, func(p map[string]json.RawMessage) { p[name] = json.RawMessage(raw) })
	}
	delPass := func(name string) string {
		return editPass(t, m.Token, func(p map[string]json.RawMessage) { delete(p, name) })
	}
	setChal := func(name string, v any) string {
		return editChallenge(t, m.Token, func(c map[string]json.RawMessage) { c[name] = jsonText(t, v) })
	}
	setChalRaw := func(name, raw string) string {
		return editChallenge(t, m.Token, func(c map[string]json.RawMessage) { c[name] = json.RawMessage(raw) })
	}
	delChal := func(name string) string {
		return editChallenge(t, m.Token, func(c map[string]json.RawMessage) { delete(c, name) })
	}
	flipHex := func(s string, i int) string {
		b := []byte(s)
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
		return string(b)
	}
	sigWith := func(f func(b []byte) []byte) string {
		b := f(append([]byte(nil), m.Signature...))
		return setPass("signature", base64.RawURLEncoding.EncodeToString(b))
	}
	modulus := key.PublicKey().N.FillBytes(make([]byte, 256))
	exp := time.Date(2026, 3, 14, 17, 0, 0, 0, time.UTC)

	cases := []struct {
		name  string
		token string
		want  error
	}{
		// The outer encoding.
		{"empty", "", ErrMalformed},
		{"one padding character", spaced + "=", ErrMalformed},
		{"padded encoding", base64.URLEncoding.EncodeToString(spacedJSON), ErrMalformed},
		{"standard alphabet character", m.Token[:10] + "+" + m.Token[11:], ErrMalformed},
		{"line break", m.Token[:40] + "\n" + m.Token[40:], ErrMalformed},
		{"carriage return", m.Token[:40] + "\r" + m.Token[40:], ErrMalformed},
		{"non-zero trailing bits", nonCanonicalTail(t, spaced), ErrMalformed},
		{"too long", strings.Repeat("A", MaxTokenLen+1), ErrMalformed},
		{"not JSON", base64.RawURLEncoding.EncodeToString([]byte("not json")), ErrMalformed},
		{"JSON array", base64.RawURLEncoding.EncodeToString([]byte(`[1,2]`)), ErrMalformed},
		{"trailing data", base64.RawURLEncoding.EncodeToString(append(append([]byte(nil), rawJSON...), []byte(` {}`)...)), ErrMalformed},
		{"invalid UTF-8", base64.RawURLEncoding.EncodeToString(append(append([]byte(nil), rawJSON[:len(rawJSON)-1]...), []byte(`,"x":"\xff"}`)...)), ErrMalformed},

		// Pass members.
		{"unknown member", setPass("extra", 1), ErrMalformed},
		{"member name case", editPass(t, m.Token, func(p map[string]json.RawMessage) { p["Key_id"] = p["key_id"]; delete(p, "key_id") }), ErrMalformed},
		{"repeated member", base64.RawURLEncoding.EncodeToString(append(append([]byte(nil), rawJSON[:len(rawJSON)-1]...), []byte(`,"key_id":"`+m.TokenKeyID+`"}`)...)), ErrMalformed},
		{"missing token_nonce", delPass("token_nonce"), ErrMalformed},
		{"missing signature", delPass("signature"), ErrMalformed},
		{"missing key_id", delPass("key_id"), ErrMalformed},
		{"missing challenge", delPass("challenge"), ErrMalformed},
		{"null nonce", setPassRaw("token_nonce", "null"), ErrMalformed},

		// Nonce.
		{"nonce changed", setPass("token_nonce", flipHex(m.Nonce, 10)), ErrInvalid},
		{"nonce upper-case hex", setPass("token_nonce", strings.ToUpper(m.Nonce)), ErrMalformed},
		{"nonce short", setPass("token_nonce", m.Nonce[:62]), ErrMalformed},
		{"nonce long", setPass("token_nonce", m.Nonce+"00"), ErrMalformed},
		{"nonce not hex", setPass("token_nonce", "g"+m.Nonce[1:]), ErrMalformed},
		{"nonce a number", setPassRaw("token_nonce", "1234"), ErrMalformed},

		// key_id.
		{"key_id unknown", setPass("key_id", flipHex(m.TokenKeyID, 0)), ErrInvalid},
		{"key_id of another claim type", setPass("key_id", otherKey.TokenKeyID()), ErrInvalid},
		{"key_id upper-case hex", setPass("key_id", strings.ToUpper(m.TokenKeyID)), ErrMalformed},
		{"key_id store ID only", setPass("key_id", key.ID()), ErrMalformed},

		// Signature.
		{"signature bit flipped", sigWith(func(b []byte) []byte { b[100] ^= 0x01; return b }), ErrInvalid},
		{"signature last bit flipped", sigWith(func(b []byte) []byte { b[255] ^= 0x01; return b }), ErrInvalid},
		{"signature short", sigWith(func(b []byte) []byte { return b[:255] }), ErrMalformed},
		{"signature long", sigWith(func(b []byte) []byte { return append(b, 0) }), ErrMalformed},
		{"signature leading zero", sigWith(func(b []byte) []byte { return append([]byte{0}, b...) }), ErrMalformed},
		{"signature = modulus", sigWith(func([]byte) []byte { return modulus }), ErrInvalid},
		{"signature all ones", sigWith(func(b []byte) []byte { return []byte(strings.Repeat("\xff", 256)) }), ErrInvalid},
		{"signature zero", sigWith(func(b []byte) []byte { return make([]byte, 256) }), ErrInvalid},
		{"signature padded", setPass("signature", base64.URLEncoding.EncodeToString(m.Signature)), ErrMalformed},
		{"signature standard alphabet character", setPass("signature", "/"+sigB64[1:]), ErrMalformed},
		{"signature non-canonical", setPass("signature", nonCanonicalTail(t, sigB64)), ErrMalformed},
		{"signature null", setPassRaw("signature", "null"), ErrMalformed},

		// Challenge members.
		{"challenge a string", setPass("challenge", "x"), ErrMalformed},
		{"challenge null", setPassRaw("challenge", "null"), ErrMalformed},
		{"challenge unknown member", setChal("extra", "x"), ErrMalformed},
		{"challenge missing mac", delChal("mac"), ErrMalformed},
		{"challenge missing token_type", delChal("token_type"), ErrMalformed},
		{"challenge missing issuer_name", delChal("issuer_name"), ErrMalformed},
		{"challenge missing origin_info", delChal("origin_info"), ErrMalformed},
		{"challenge missing expires_at", delChal("expires_at"), ErrMalformed},

		// token_type.
		{"token_type 1", setChalRaw("token_type", "1"), ErrInvalid},
		{"token_type 3", setChalRaw("token_type", "3"), ErrInvalid},
		{"token_type 0", setChalRaw("token_type", "0"), ErrInvalid},
		{"token_type 65535", setChalRaw("token_type", "65535"), ErrInvalid},
		{"token_type 65536", setChalRaw("token_type", "65536"), ErrMalformed},
		{"token_type string", setChalRaw("token_type", `"2"`), ErrMalformed},
		{"token_type 2.0", setChalRaw("token_type", "2.0"), ErrMalformed},
		{"token_type 2e0", setChalRaw("token_type", "2e0"), ErrMalformed},
		{"token_type -2", setChalRaw("token_type", "-2"), ErrMalformed},
		{"token_type null", setChalRaw("token_type", "null"), ErrMalformed},

		// issuer_name, origin_info.
		{"issuer_name changed", setChal("issuer_name", testIssuerName+"x"), ErrInvalid},
		{"issuer_name empty", setChal("issuer_name", ""), ErrMalformed},
		{"issuer_name too long", setChal("issuer_name", strings.Repeat("x", 256)), ErrMalformed},
		{"origin_info changed", setChal("origin_info", "/api/privacy/v1/relays/"), ErrInvalid},
		{"origin_info empty", setChal("origin_info", ""), ErrInvalid},
		{"origin_info a number", setChalRaw("origin_info", "1"), ErrMalformed},

		// expires_at.
		{"expires_at one hour later", setChal("expires_at", exp.Add(time.Hour).Format(ExpiresAtLayout)), ErrInvalid},
		{"expires_at one second earlier", setChal("expires_at", exp.Add(-time.Second).Format(ExpiresAtLayout)), ErrInvalid},
		{"expires_at with +00:00", setChal("expires_at", "2026-03-14T17:00:00+00:00"), ErrMalformed},
		{"expires_at lower-case z", setChal("expires_at", "2026-03-14T17:00:00z"), ErrMalformed},
		{"expires_at with fraction", setChal("expires_at", "2026-03-14T17:00:00.0Z"), ErrMalformed},
		{"expires_at with space", setChal("expires_at", "2026-03-14 17:00:00Z"), ErrMalformed},
		{"expires_at other zone", setChal("expires_at", "2026-03-14T18:00:00+01:00"), ErrMalformed},
		{"expires_at month 13", setChal("expires_at", "2026-13-14T17:00:00Z"), ErrMalformed},
		{"expires_at unix time", setChalRaw("expires_at", "1773507600"), ErrMalformed},

		// mac.
		{"mac changed", setChal("mac", flipB64(m.MAC)), ErrInvalid},
		{"mac of another key", setChal("mac", base64.RawURLEncoding.EncodeToString(make([]byte, 32))), ErrInvalid},
		{"mac padded", setChal("mac", m.MAC+"="), ErrMalformed},
		{"mac non-canonical", setChal("mac", nonCanonicalTail(t, m.MAC)), ErrMalformed},
		{"mac short", setChal("mac", m.MAC[:42]), ErrMalformed},
		{"mac hex", setChal("mac", hex.EncodeToString(make([]byte, 32))), ErrMalformed},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if seen[c.token] {
				t.Fatalf("mutation %q gives a token already tested", c.name)
			}
			seen[c.token] = true
			expectErr(t, is, c.token, testNow, c.want)
		})
	}
	// Sanity: the unmutated token still verifies (the mutations did not
	// alias its bytes).
	if _, err := is.Verify(m.Token, testNow); err != nil {
		t.Fatal(err)
	}
}

// nonCanonicalTail changes the last character of a base64url string so that
// it decodes to the same bytes with non-zero trailing bits (Strict refuses
// it). The length must not be a multiple of 4.
func nonCanonicalTail(tb testing.TB, s string) string {
	tb.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(s)%4 == 0 {
		tb.Fatalf("base64 of length %d has no trailing bits", len(s))
	}
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last|1])
}

// flipB64 changes the first character of a base64url string (a change of
// the first 6 bits, still canonical).
func flipB64(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// TestSignatureNotBelowModulus checks that a signature ≥ n is refused by its
// own rule, not only because it fails to verify.
func TestSignatureNotBelowModulus(t *testing.T) {
	is := newIssuer(t)
	m := mint(t, is, claimAge, testNow)
	key, _ := is.Keys().Active(claimAge)
	n := key.PublicKey().N
	for _, s := range []*big.Int{n, new(big.Int).Add(n, big.NewInt(1)), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 2048), big.NewInt(1))} {
		tok := editPass(t, m.Token, func(p map[string]json.RawMessage) {
			p["signature"] = jsonText(t, base64.RawURLEncoding.EncodeToString(s.FillBytes(make([]byte, 256))))
		})
		_, err := is.Verify(tok, testNow)
		var e *Error
		if !errors.As(err, &e) || e.Err != ErrInvalid || e.Reason != "signature is not below the modulus" {
			t.Errorf("signature ≥ n: %v", err)
		}
	}
	nm1 := new(big.Int).Sub(n, big.NewInt(1))
	tok := editPass(t, m.Token, func(p map[string]json.RawMessage) {
		p["signature"] = jsonText(t, base64.RawURLEncoding.EncodeToString(nm1.FillBytes(make([]byte, 256))))
	})
	_, err := is.Verify(tok, testNow)
	var e *Error
	if !errors.As(err, &e) || e.Err != ErrInvalid || e.Reason != "signature does not verify" {
		t.Errorf("signature n-1: %v", err)
	}
}

// TestPreparedClientRefused: a client that runs circl's Prepare (the 32-byte
// random prefix of the Randomized variant) signs prefix || token input, not
// the token input; its pass must not verify.
func TestPreparedClientRefused(t *testing.T) {
	is := newIssuer(t)
	ch, err := is.Challenge(claimAge, testNow)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseChallenge(ch.Challenge)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := is.Keys().Active(claimAge)
	client, err := blindrsa.NewClient(blindrsa.SHA384PSSRandomized, key.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	nonce := NewNonce()
	input := TokenInput(nonce, c.MAC, ch.TokenKeyID)
	prepared, err := client.Prepare(rand.Reader, input[:])
	if err != nil {
		t.Fatal(err)
	}
	blinded, state, err := client.Blind(rand.Reader, prepared)
	if err != nil {
		t.Fatal(err)
	}
	blindSig, _, err := is.BlindSign(ch.TokenKeyID, blinded)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := client.Finalize(state, blindSig)
	if err != nil {
		t.Fatal(err)
	}
	p := &Pass{Nonce: nonce, Signature: sig, KeyID: ch.TokenKeyID, Challenge: c}
	expectErr(t, is, p.Encode(), testNow, ErrInvalid)
}

// TestConcurrentUse mints and verifies from several goroutines at once (run
// with -race).
func TestConcurrentUse(t *testing.T) {
	is := newIssuer(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			ct := claimAge
			if i%2 == 1 {
				ct = claimOther
			}
			m, err := tryMint(is, ct, testNow)
			if err != nil {
				errs <- err
				return
			}
			v, err := is.Verify(m.Token, testNow)
			if err == nil && v.ClaimType != ct {
				err = errors.New("wrong claim type")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestEncodeRoundTrip: Encode of a parsed pass parses to the same pass and
// verifies.
func TestEncodeRoundTrip(t *testing.T) {
	is := newIssuer(t)
	m := mint(t, is, claimAge, testNow)
	p, err := ParsePass(m.Token)
	if err != nil {
		t.Fatal(err)
	}
	if p.Nonce != m.Nonce || p.KeyID != m.TokenKeyID || !bytes.Equal(p.Signature, m.Signature) || string(p.Challenge.Raw) != string(m.Challenge) {
		t.Fatal("ParsePass fields")
	}
	if in := p.TokenInput(); in != TokenInput(m.Nonce, m.MAC, m.TokenKeyID) || len(in) != 98 || in[0] != 0 || in[1] != 2 {
		t.Fatal("TokenInput")
	}
	if _, err := is.Verify(p.Encode(), testNow); err != nil {
		t.Fatal(err)
	}
	if (&Pass{}).Encode() != "" {
		t.Error("Encode of a pass without challenge")
	}
	if n := NewNonce(); !isLowerHex(n, 64) || n == NewNonce() {
		t.Error("NewNonce")
	}
}
