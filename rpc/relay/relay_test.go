package relay

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ppredeem/ppredeem/rpc/keyhash"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify/pass"
)

// Unit tests of the parts that need no store; the endpoints are tested through the real
// server in cmd/ppredeem (relay_test.go), on both stores.

var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func TestAccessTokenStrict(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	other := []byte("fedcba9876543210fedcba9876543210")
	var id [32]byte
	id[0] = 7
	tok, err := newAccessToken([][]byte{key}, "ppredeem", id, testNow, testNow.Add(AccessTokenLifetime))
	if err != nil {
		t.Fatal(err)
	}
	// Verified under the key list holding the signer, in any position (rotation).
	if got, err := parseAccessToken([][]byte{other, key}, tok, testNow.Add(time.Minute)); err != nil || got != id {
		t.Fatalf("parse = %x, %v", got[:1], err)
	}
	sign := func(m jwt.SigningMethod, k any, claims jwt.RegisteredClaims, kid string) string {
		tt := jwt.NewWithClaims(m, claims)
		tt.Header["kid"] = kid
		s, err := tt.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := jwt.RegisteredClaims{Subject: base64.RawURLEncoding.EncodeToString(id[:]), Audience: jwt.ClaimStrings{accessAudience},
		IssuedAt: jwt.NewNumericDate(testNow), ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Hour))}
	noExp := good
	noExp.ExpiresAt = nil
	wrongAud := good
	wrongAud.Audience = jwt.ClaimStrings{"other"}
	future := good
	future.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Hour))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, good).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for name, bad := range map[string]string{
		"expired":           tok,
		"other key":         sign(jwt.SigningMethodHS256, other, good, keyID(other)),
		"kid of our key":    sign(jwt.SigningMethodHS256, other, good, keyID(key)),
		"HS512":             sign(jwt.SigningMethodHS512, key, good, keyID(key)),
		"alg none":          none,
		"no exp":            sign(jwt.SigningMethodHS256, key, noExp, keyID(key)),
		"another audience":  sign(jwt.SigningMethodHS256, key, wrongAud, keyID(key)),
		"issued in future":  sign(jwt.SigningMethodHS256, key, future, keyID(key)),
		"signature changed": tok[:len(tok)-2] + "AA",
		"empty":             "",
	} {
		at := testNow.Add(time.Minute)
		if name == "expired" {
			at = testNow.Add(AccessTokenLifetime + time.Second)
		}
		_, err := parseAccessToken([][]byte{key}, bad, at)
		if r, _ := classify(err); r != rowInvalidSession {
			t.Errorf("%s: %v, want Invalid session", name, err)
		}
	}
}

func TestMatch(t *testing.T) {
	creds := []Credential{{Name: "a", Hash: sha256.Sum256([]byte("key-a"))}, {Name: "b", Hash: sha256.Sum256([]byte("key-b"))}}
	if c, ok := keyhash.Match(creds, "key-b"); !ok || c.Name != "b" {
		t.Fatalf("match key-b = %v %v", c, ok)
	}
	for _, k := range []string{"", "key-c", "key-", "KEY-A"} {
		if _, ok := keyhash.Match(creds, k); ok {
			t.Errorf("%q matched", k)
		}
	}
}

func TestObjectMembers(t *testing.T) {
	o, err := parseObject([]byte(`{"claim-type":"a","claimType":"a","sandbox":true,"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := o.required("claim-type", "claimType"); err != nil || s != "a" {
		t.Fatalf("claim-type = %q, %v", s, err)
	}
	if b, err := o.boolean("sandbox", "sandbox"); err != nil || !b {
		t.Fatalf("sandbox = %v, %v", b, err)
	}
	for _, body := range []string{`{"claim-type":"a","claimType":"b"}`, `{"claimType":1}`, `[]`, `null`, `{"claim-type":""}`} {
		o, err := parseObject([]byte(body))
		if err == nil {
			_, err = o.required("claim-type", "claimType")
		}
		if r, _ := classify(err); r != rowBadRequest {
			t.Errorf("%s: %v, want Bad request", body, err)
		}
	}
}

func TestPrivateToken(t *testing.T) {
	for h, want := range map[string]string{
		"PrivateToken token=abc":     "abc",
		`PrivateToken token="abc"`:   "abc",
		"privatetoken  token = abc ": "abc",
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Authorization", h)
		if got, err := privateToken(r); err != nil || got != want {
			t.Errorf("%q: %q, %v", h, got, err)
		}
	}
	for _, h := range []string{"", "Bearer abc", "PrivateToken abc", "PrivateToken token=", `PrivateToken nonce=abc`} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Authorization", h)
		if _, err := privateToken(r); err == nil {
			t.Errorf("%q accepted", h)
		} else if row, _ := classify(err); row != rowMalformedPass {
			t.Errorf("%q: %v", h, err)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		want row
	}{
		{pass.ErrExpired, rowPassExpired},
		{&pass.Error{Err: pass.ErrMalformed, Reason: "r"}, rowMalformedPass},
		{&pass.Error{Err: pass.ErrInvalid, Reason: "r"}, rowInvalidPass},
		{pass.ErrClaimTypeMismatch, rowClaimTypeMismatch},
		{pass.ErrUnknownKey, rowUnknownKey},
		{stored(spend.ErrRelayNotFound), rowNotFound},
		{stored(spend.ErrClaimReported), rowClaimReported},
		{stored(errors.New("connection refused")), rowUnavailable},
		{stored(spend.ErrUnknownKey), rowInternal},
		{errors.New("bug"), rowInternal},
	} {
		if got, _ := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	// An internal error's text is never sent.
	rec := httptest.NewRecorder()
	writeError(rec, errors.New("secret internals"))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret") {
		t.Fatalf("internal error answer: %d %s", rec.Code, rec.Body)
	}
}

func TestRelayTokens(t *testing.T) {
	tok, secret := newRelayToken(), newRelaySecret()
	if !validRelayToken(tok) || validRelayToken(tok+"A") || validRelayToken("relay_"+strings.Repeat("!", relayTokenChars)) {
		t.Fatal("relay token shape")
	}
	if len(secret) != 36 || secret[14] != '4' || !strings.ContainsRune("89ab", rune(secret[19])) {
		t.Fatalf("secret %q is not a version 4 UUID", secret)
	}
}

func TestEncryptionKey(t *testing.T) {
	for _, bad := range []string{"", "nope", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"} {
		if _, err := parseEncryptionKey(bad); err == nil {
			t.Errorf("%q accepted", bad)
		} else if r, _ := classify(err); r != rowInvalidKey {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
