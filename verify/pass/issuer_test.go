package pass

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestExpiresAt(t *testing.T) {
	cases := []struct{ now, want string }{
		{"2026-03-14T15:00:00Z", "2026-03-14T16:00:00Z"},           // on the hour: exactly one hour
		{"2026-03-14T15:00:00.000000001Z", "2026-03-14T17:00:00Z"}, // just after: almost two
		{"2026-03-14T15:59:59.999999999Z", "2026-03-14T17:00:00Z"},
		{"2026-03-14T23:30:00Z", "2026-03-15T01:00:00Z"},
		{"2026-12-31T23:00:01Z", "2027-01-01T01:00:00Z"},
		{"2026-03-14T16:30:00+01:00", "2026-03-14T17:00:00Z"}, // 15:30 UTC
		{"2026-03-14T15:30:00+05:30", "2026-03-14T11:00:00Z"}, // 10:00 UTC, half-hour zone
	}
	for _, c := range cases {
		now, err := time.Parse(time.RFC3339Nano, c.now)
		if err != nil {
			t.Fatal(err)
		}
		got := expiresAt(now)
		if got.Format(ExpiresAtLayout) != c.want || got.Location() != time.UTC {
			t.Errorf("expiresAt(%s) = %s, want %s", c.now, got, c.want)
		}
		if d := got.Sub(now); d < time.Hour || d > 2*time.Hour {
			t.Errorf("expiresAt(%s): window %s outside [1h, 2h]", c.now, d)
		}
	}
}

// TestChallengeWire checks the issued challenge byte by byte and its MAC
// against an independent computation of the documented MAC input.
func TestChallengeWire(t *testing.T) {
	is := newIssuer(t)
	key, _ := is.Keys().Active(claimAge)
	ch, err := is.Challenge(claimAge, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if ch.TokenKey != key.TokenKey() || ch.TokenKeyID != key.TokenKeyID() {
		t.Error("challenge is not for the active key")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(ch.Challenge)
	if err != nil {
		t.Fatal(err)
	}
	// The MAC input of the package doc, written out by hand.
	var in bytes.Buffer
	lp := func(s string) {
		_ = binary.Write(&in, binary.BigEndian, uint32(len(s)))
		in.WriteString(s)
	}
	lp("ppredeem relay challenge mac v1")
	in.Write([]byte{0x00, 0x02})
	lp(testIssuerName)
	lp("/api/privacy/v1/relays")
	lp("2026-03-14T17:00:00Z")
	lp(key.TokenKeyID())
	h := hmac.New(sha256.New, testMACKey)
	h.Write(in.Bytes())
	mac := base64.RawURLEncoding.EncodeToString(h.Sum(nil))

	want := `{"token_type":2,"issuer_name":"ppredeem test issuer","origin_info":"/api/privacy/v1/relays","expires_at":"2026-03-14T17:00:00Z","mac":"` + mac + `"}`
	if string(raw) != want {
		t.Errorf("challenge\n got %s\nwant %s", raw, want)
	}
	if !ch.ExpiresAt.Equal(time.Date(2026, 3, 14, 17, 0, 0, 0, time.UTC)) {
		t.Errorf("ExpiresAt %v", ch.ExpiresAt)
	}
	c, err := ParseChallenge(ch.Challenge)
	if err != nil {
		t.Fatal(err)
	}
	if c.TokenType != 2 || c.IssuerName != testIssuerName || c.OriginInfo != OriginInfo || !c.ExpiresAt.Equal(ch.ExpiresAt) || c.MAC != mac || string(c.Raw) != want {
		t.Errorf("ParseChallenge: %+v", c)
	}

	if _, err := is.Challenge("no_such_claim", testNow); err != ErrUnknownClaimType {
		t.Errorf("unknown claim type: %v", err)
	}
	if _, err := is.Challenge(claimAge, time.Date(9999, 12, 31, 23, 30, 0, 0, time.UTC)); err == nil {
		t.Error("a clock past year 9999 was accepted")
	}
}

func TestChallengeHTMLCharacters(t *testing.T) {
	ks, _ := NewKeySet(map[string][]*Key{claimAge: {loadKey(t, fixturePKCS1)}})
	name := `Acme <"relay"> & Co — ünïcode`
	is, err := NewIssuer(Config{IssuerName: name, MACKeys: [][]byte{testMACKey}, Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	m := mint(t, is, claimAge, testNow)
	if !bytes.Contains(m.Challenge, []byte(`"issuer_name":"Acme <\"relay\"> & Co — ünïcode"`)) {
		t.Errorf("issuer name not written plainly: %s", m.Challenge)
	}
	if _, err := is.Verify(m.Token, testNow); err != nil {
		t.Fatal(err)
	}
	// The same name with escapes is the same JSON string: still valid.
	esc := editChallenge(t, m.Token, func(c map[string]json.RawMessage) {
		c["issuer_name"] = json.RawMessage(`"Acme \u003c\"relay\"\u003e \u0026 Co \u2014 \u00fcn\u00efcode"`)
	})
	if _, err := is.Verify(esc, testNow); err != nil {
		t.Fatal("escaped issuer name:", err)
	}
}

func TestChallengeMemberOrderAndWhitespace(t *testing.T) {
	is := newIssuer(t)
	m := mint(t, is, claimAge, testNow)
	var c map[string]json.RawMessage
	if err := json.Unmarshal(m.Challenge, &c); err != nil {
		t.Fatal(err)
	}
	// Reversed member order, indented: the same object.
	reordered := fmt.Sprintf("{\n  \"mac\" : %s,\n  \"expires_at\": %s, \"origin_info\":%s,\t\"issuer_name\":%s , \"token_type\": %s\n}",
		c["mac"], c["expires_at"], c["origin_info"], c["issuer_name"], c["token_type"])
	// Built by hand: json.Marshal would compact a RawMessage.
	tok := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(
		`{"challenge": %s, "key_id":%q,"signature":%q,"token_nonce":%q}`,
		reordered, m.TokenKeyID, base64.RawURLEncoding.EncodeToString(m.Signature), m.Nonce)))
	if _, err := is.Verify(tok, testNow); err != nil {
		t.Fatal(err)
	}
	p, err := ParsePass(tok)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Challenge.Raw) != reordered {
		t.Error("the challenge object is not kept verbatim")
	}
}

func TestExpiry(t *testing.T) {
	for _, lifetime := range []time.Duration{0, time.Hour, 30 * 24 * time.Hour} {
		is := issuerWith(t, map[string][]*Key{claimAge: {loadKey(t, fixturePKCS1)}}, lifetime)
		m := mint(t, is, claimAge, testNow)
		want := lifetime
		if want == 0 {
			want = DefaultLifetime
		}
		if is.Lifetime() != want {
			t.Fatalf("Lifetime %v", is.Lifetime())
		}
		exp := time.Date(2026, 3, 14, 17, 0, 0, 0, time.UTC)
		notAfter := exp.Add(want)
		for _, c := range []struct {
			now  time.Time
			want error
		}{
			{testNow, nil},
			{exp, nil}, // expires_at itself: the pass outlives its challenge
			{notAfter.Add(-time.Nanosecond), nil},
			{notAfter, nil}, // the last instant
			{notAfter.Add(time.Nanosecond), ErrExpired},
			{notAfter.Add(365 * 24 * time.Hour), ErrExpired},
			{notAfter.In(time.FixedZone("x", -7*3600)), nil},   // zones do not matter
			{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), nil}, // a pass from the future is genuine: the MAC says so
		} {
			v, err := is.Verify(m.Token, c.now)
			if err != c.want {
				t.Errorf("lifetime %v, now %v: %v, want %v", lifetime, c.now, err, c.want)
			}
			if err == nil && !v.NotAfter.Equal(notAfter) {
				t.Errorf("NotAfter %v, want %v", v.NotAfter, notAfter)
			}
		}
		if got := is.PassNotAfter(testNow); !got.Equal(notAfter) {
			t.Errorf("PassNotAfter %v, want %v", got, notAfter)
		}
		// Invalid wins over expired: a forged pass is never "expired".
		forged := editPass(t, m.Token, func(p map[string]json.RawMessage) { p["token_nonce"] = jsonText(t, strings.Repeat("0", 64)) })
		expectErr(t, is, forged, notAfter.Add(time.Hour), ErrInvalid)
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey := loadKey(t, fixturePKCS1)
	newKey := loadKey(t, fixturePKCS8)
	before := issuerWith(t, map[string][]*Key{claimAge: {oldKey}}, 0)
	oldPass := mint(t, before, claimAge, testNow)

	after := issuerWith(t, map[string][]*Key{claimAge: {newKey, oldKey}}, 0)
	// The old key still redeems, and its passes keep their claim type.
	v, err := after.Verify(oldPass.Token, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if v.Key != oldKey || v.ClaimType != claimAge || v.KeyID != oldKey.ID() {
		t.Errorf("verdict %+v", v)
	}
	// The new key issues.
	ch, err := after.Challenge(claimAge, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if ch.TokenKeyID != newKey.TokenKeyID() {
		t.Error("the challenge is not for the new key")
	}
	newPass := mint(t, after, claimAge, testNow)
	if v, err := after.Verify(newPass.Token, testNow); err != nil || v.Key != newKey {
		t.Fatalf("new pass: %v", err)
	}
	// The old key no longer signs.
	blinded := make([]byte, 256)
	blinded[255] = 7
	if _, _, err := after.BlindSign(oldKey.TokenKeyID(), blinded); err != ErrUnknownKey {
		t.Errorf("BlindSign with a redeem-only key: %v", err)
	}
	// Once the old key is dropped, its passes are unknown.
	dropped := issuerWith(t, map[string][]*Key{claimAge: {newKey}}, 0)
	expectErr(t, dropped, oldPass.Token, testNow, ErrInvalid)
}

func TestMACKeyRotation(t *testing.T) {
	keys := map[string][]*Key{claimAge: {loadKey(t, fixturePKCS1)}}
	k1 := bytes.Repeat([]byte{1}, 32)
	k2 := bytes.Repeat([]byte{2}, 64)
	before := issuerWith(t, keys, 0, k1)
	m := mint(t, before, claimAge, testNow)
	after := issuerWith(t, keys, 0, k2, k1)
	if _, err := after.Verify(m.Token, testNow); err != nil {
		t.Fatal("a pass under the previous MAC key:", err)
	}
	m2 := mint(t, after, claimAge, testNow)
	if _, err := before.Verify(m2.Token, testNow); !errors.Is(err, ErrInvalid) {
		t.Fatal("the new MAC key is not used for new challenges:", err)
	}
	expectErr(t, issuerWith(t, keys, 0, k2), m.Token, testNow, ErrInvalid)
}

func TestClaimTypes(t *testing.T) {
	is := newIssuer(t)
	m := mint(t, is, claimOther, testNow)
	v, err := is.Verify(m.Token, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if v.ClaimType != claimOther {
		t.Errorf("claim type %q", v.ClaimType)
	}
	if err := v.CheckClaimType(claimAge); err != ErrClaimTypeMismatch {
		t.Errorf("CheckClaimType: %v", err)
	}
	if err := v.CheckClaimType(claimOther); err != nil {
		t.Error(err)
	}
}

func TestBlindSignChecks(t *testing.T) {
	is := newIssuer(t)
	key, _ := is.Keys().Active(claimAge)
	n := key.PublicKey().N.FillBytes(make([]byte, 256))
	one := make([]byte, 256)
	one[255] = 1
	for name, b := range map[string][]byte{
		"empty":     nil,
		"short":     one[1:],
		"long":      append([]byte{0}, one...),
		"zero":      make([]byte, 256),
		"modulus":   n,
		"all ones":  bytes.Repeat([]byte{0xff}, 256),
		"4096 size": make([]byte, 512),
	} {
		_, _, err := is.BlindSign(key.TokenKeyID(), b)
		var e *Error
		if !errors.As(err, &e) || e.Err != ErrBlindedToken {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := is.BlindSign(strings.Repeat("0", 64), one); err != ErrUnknownKey {
		t.Errorf("unknown key: %v", err)
	}
	if _, _, err := is.BlindSign(key.ID(), one); err != ErrUnknownKey {
		t.Errorf("store ID instead of token-key-id: %v", err)
	}
	sig, ct, err := is.BlindSign(key.TokenKeyID(), one)
	if err != nil || ct != claimAge || !bytes.Equal(sig, one) { // 1^d = 1
		t.Errorf("BlindSign(1) = %x, %q, %v", sig, ct, err)
	}
}

func TestNewIssuerChecks(t *testing.T) {
	ks, _ := NewKeySet(map[string][]*Key{claimAge: {loadKey(t, fixturePKCS1)}})
	good := Config{IssuerName: "x", MACKeys: [][]byte{testMACKey}, Keys: ks}
	if _, err := NewIssuer(good); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(c *Config){
		"no name":         func(c *Config) { c.IssuerName = "" },
		"long name":       func(c *Config) { c.IssuerName = strings.Repeat("x", 256) },
		"bad UTF-8 name":  func(c *Config) { c.IssuerName = "\xff" },
		"control in name": func(c *Config) { c.IssuerName = "a\nb" },
		"no MAC key":      func(c *Config) { c.MACKeys = nil },
		"short MAC key":   func(c *Config) { c.MACKeys = [][]byte{make([]byte, 31)} },
		"long MAC key":    func(c *Config) { c.MACKeys = [][]byte{testMACKey, make([]byte, 65)} },
		"no keys":         func(c *Config) { c.Keys = nil },
		"negative life":   func(c *Config) { c.Lifetime = -time.Hour },
		"eleven years":    func(c *Config) { c.Lifetime = 11 * 365 * 24 * time.Hour },
	} {
		c := good
		edit(&c)
		if _, err := NewIssuer(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The MAC keys are copied.
	mk := bytes.Clone(testMACKey)
	c := good
	c.MACKeys = [][]byte{mk}
	is, _ := NewIssuer(c)
	m := mint(t, is, claimAge, testNow)
	mk[0] ^= 1
	if _, err := is.Verify(m.Token, testNow); err != nil {
		t.Error("changing the caller's MAC key slice changed the issuer:", err)
	}
}

// TestNoSecretsPrinted checks that printing an issuer, its config or its
// keys never shows the MAC key or the private key.
func TestNoSecretsPrinted(t *testing.T) {
	key := loadKey(t, fixturePKCS1)
	ks, _ := NewKeySet(map[string][]*Key{claimAge: {key}})
	mac := []byte("0123456789abcdef0123456789ABCDEF")
	c := Config{IssuerName: "x", MACKeys: [][]byte{mac}, Keys: ks}
	is, err := NewIssuer(c)
	if err != nil {
		t.Fatal(err)
	}
	pemText, _ := key.MarshalPEM()
	secrets := []string{string(mac), fmt.Sprintf("%x", mac), fmt.Sprint(mac), key.priv.D.String(), key.priv.D.Text(16), key.priv.Primes[0].String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d"} {
		for _, v := range []any{is, c, &c, key, *key, ks, struct{ K *Key }{key}} {
			out := fmt.Sprintf(verb, v)
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("%s of %T prints a secret: %s", verb, v, out)
				}
			}
			if strings.Contains(out, string(pemText[40:80])) {
				t.Errorf("%s of %T prints PEM text", verb, v)
			}
		}
	}
}
