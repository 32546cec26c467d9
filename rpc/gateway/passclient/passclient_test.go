package passclient_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	mathrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/cloudflare/circl/blindsign/blindrsa"

	"github.com/ppredeem/ppredeem/rpc/gateway/passclient"
)

var (
	key2048Once sync.Once
	key2048     *rsa.PrivateKey
)

func testKey2048(testing.TB) *rsa.PrivateKey {
	key2048Once.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		key2048 = k
	})
	return key2048
}

// testKey4096 is a fixed test key (generating one takes seconds).
func testKey4096(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	data, err := os.ReadFile("testdata/rsa4096.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// padded is base64url WITH padding of s, plus spaces if needed for padding.
func padded(s string) string {
	for len(s)%3 == 0 {
		s += " "
	}
	return base64.URLEncoding.EncodeToString([]byte(s))
}

// issuance is what a provider's challenge endpoint would send for sk.
func issuance(t *testing.T, pub any, challengeJSON string) passclient.Issuance {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return passclient.Issuance{
		Challenge:  b64([]byte(challengeJSON)),
		TokenKey:   b64(der),
		TokenKeyID: hex.EncodeToString(sum[:]),
	}
}

const challengeJSON = `{"token_type":2,"issuer_name":"ppredeem","origin_info":"/api/privacy/v1/relays","expires_at":"2030-01-01T10:00:00Z","mac":"bWFjLW9mLXRoZS1wcm92aWRlcg"}`

// signer signs like a provider, with circl's signer, and records its calls.
type signer struct {
	sk    *rsa.PrivateKey
	calls int
	keyID string
	size  int
}

func (s *signer) sign(_ context.Context, blinded []byte, keyID string) ([]byte, error) {
	s.calls++
	s.keyID, s.size = keyID, len(blinded)
	return blindrsa.NewSigner(s.sk).BlindSign(blinded)
}

type passJSON struct {
	Nonce     string          `json:"token_nonce"`
	Signature string          `json:"signature"`
	KeyID     string          `json:"key_id"`
	Challenge json.RawMessage `json:"challenge"`
}

func decodePass(t *testing.T, token string) (passJSON, map[string]json.RawMessage) {
	t.Helper()
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil {
		t.Fatalf("the pass is not base64url without padding: %v", err)
	}
	var p passJSON
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &members); err != nil {
		t.Fatal(err)
	}
	return p, members
}

// TestIssue checks every part of an issued pass against the format, and the
// signature with crypto/rsa rather than circl.
func TestIssue(t *testing.T) {
	for name, sk := range map[string]*rsa.PrivateKey{"2048": testKey2048(t), "4096": testKey4096(t)} {
		t.Run(name, func(t *testing.T) {
			iss := issuance(t, &sk.PublicKey, challengeJSON)
			s := &signer{sk: sk}
			pass, err := passclient.Issue(context.Background(), rand.Reader, iss, s.sign)
			if err != nil {
				t.Fatal(err)
			}
			if s.calls != 1 || s.keyID != iss.TokenKeyID || s.size != sk.Size() {
				t.Fatalf("signer called %d times with key %q and %d bytes", s.calls, s.keyID, s.size)
			}
			p, members := decodePass(t, pass.Token)
			if len(members) != 4 {
				t.Fatalf("the pass has members %v", members)
			}
			if len(p.Nonce) != 64 || strings.ToLower(p.Nonce) != p.Nonce || p.Nonce != pass.Nonce {
				t.Fatalf("nonce %q", p.Nonce)
			}
			if _, err := hex.DecodeString(p.Nonce); err != nil {
				t.Fatal(err)
			}
			if p.KeyID != iss.TokenKeyID || pass.KeyID != iss.TokenKeyID {
				t.Fatalf("key_id %q", p.KeyID)
			}
			if string(p.Challenge) != challengeJSON {
				t.Fatalf("challenge not embedded verbatim:\n%s", p.Challenge)
			}

			// The token input, rebuilt here from the format.
			h := func(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }
			want := append([]byte{0x00, 0x02}, h(p.Nonce)...)
			want = append(want, h("bWFjLW9mLXRoZS1wcm92aWRlcg")...)
			want = append(want, h(iss.TokenKeyID)...)
			if len(want) != 98 || string(pass.TokenInput) != string(want) {
				t.Fatalf("token input %x, want %x", pass.TokenInput, want)
			}

			sig, err := base64.RawURLEncoding.Strict().DecodeString(p.Signature)
			if err != nil || string(sig) != string(pass.Signature) {
				t.Fatalf("signature: %v", err)
			}
			digest := sha512.Sum384(want)
			if err := rsa.VerifyPSS(&sk.PublicKey, crypto.SHA384, digest[:], sig, &rsa.PSSOptions{SaltLength: 48}); err != nil {
				t.Fatalf("crypto/rsa does not verify the signature over the token input: %v", err)
			}
		})
	}
}

// TestIssueReproducible: a fixed random stream gives a fixed pass (for test
// vectors), and two streams give two unlinkable passes.
func TestIssueReproducible(t *testing.T) {
	sk := testKey2048(t)
	iss := issuance(t, &sk.PublicKey, challengeJSON)
	issue := func(seed byte) *passclient.Pass {
		t.Helper()
		var s [32]byte
		s[0] = seed
		pass, err := passclient.Issue(context.Background(), mathrand.NewChaCha8(s), iss, (&signer{sk: sk}).sign)
		if err != nil {
			t.Fatal(err)
		}
		return pass
	}
	a, b, c := issue(1), issue(1), issue(2)
	if a.Token != b.Token {
		t.Fatal("the same random stream gave two passes")
	}
	if a.Nonce == c.Nonce || string(a.Signature) == string(c.Signature) {
		t.Fatal("two random streams gave the same nonce or signature")
	}
}

// TestChallengeVerbatim: the challenge's bytes go into the pass unchanged,
// whitespace and member order included.
func TestChallengeVerbatim(t *testing.T) {
	sk := testKey2048(t)
	odd := " {\"mac\":\"m\",  \"token_type\" : 2,\n\"extra\":\"<&>\"} "
	pass, err := passclient.Issue(context.Background(), rand.Reader, issuance(t, &sk.PublicKey, odd), (&signer{sk: sk}).sign)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(pass.Token)
	if !strings.HasSuffix(string(raw), `"challenge":`+odd+`}`) {
		t.Fatalf("challenge re-encoded: %s", raw)
	}
	if !json.Valid(raw) {
		t.Fatalf("the pass is not JSON: %s", raw)
	}
}

func TestIssueRefusesBadInputsBeforeSigning(t *testing.T) {
	sk := testKey2048(t)
	good := issuance(t, &sk.PublicKey, challengeJSON)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func(*passclient.Issuance)) passclient.Issuance { i := good; f(&i); return i }
	challenge := func(j string) passclient.Issuance {
		return with(func(i *passclient.Issuance) { i.Challenge = b64([]byte(j)) })
	}
	cases := []struct {
		name string
		iss  passclient.Issuance
		want error
	}{
		{"key not base64url", with(func(i *passclient.Issuance) { i.TokenKey = "***" }), passclient.ErrTokenKey},
		{"key padded", with(func(i *passclient.Issuance) { i.TokenKey += "==" }), passclient.ErrTokenKey},
		{"key id of another key", with(func(i *passclient.Issuance) { i.TokenKeyID = issuance(t, &other.PublicKey, "").TokenKeyID }), passclient.ErrKeyIDMismatch},
		{"key id upper case", with(func(i *passclient.Issuance) { i.TokenKeyID = strings.ToUpper(i.TokenKeyID) }), passclient.ErrKeyIDMismatch},
		{"key id empty", with(func(i *passclient.Issuance) { i.TokenKeyID = "" }), passclient.ErrKeyIDMismatch},
		{"key of another key id", with(func(i *passclient.Issuance) { i.TokenKey = issuance(t, &other.PublicKey, "").TokenKey }), passclient.ErrKeyIDMismatch},
		{"1024-bit key", issuance(t, &small.PublicKey, challengeJSON), passclient.ErrTokenKey},
		{"EC key", issuance(t, &ec.PublicKey, challengeJSON), passclient.ErrTokenKey},
		{"DER garbage with its own id", func() passclient.Issuance {
			i := good
			i.TokenKey = b64([]byte("not DER"))
			sum := sha256.Sum256([]byte("not DER"))
			i.TokenKeyID = hex.EncodeToString(sum[:])
			return i
		}(), passclient.ErrTokenKey},
		{"challenge not base64url", with(func(i *passclient.Issuance) { i.Challenge = "%%%" }), passclient.ErrChallenge},
		{"challenge padded", with(func(i *passclient.Issuance) { i.Challenge = padded(challengeJSON) }), passclient.ErrChallenge},
		{"challenge not JSON", challenge("token_type=2"), passclient.ErrChallenge},
		{"challenge null", challenge("null"), passclient.ErrChallenge},
		{"challenge array", challenge(`[{"token_type":2,"mac":"m"}]`), passclient.ErrChallenge},
		{"challenge trailing data", challenge(`{"token_type":2,"mac":"m"} {}`), passclient.ErrChallenge},
		{"token_type 1", challenge(`{"token_type":1,"mac":"m"}`), passclient.ErrChallenge},
		{"token_type string", challenge(`{"token_type":"2","mac":"m"}`), passclient.ErrChallenge},
		{"no token_type", challenge(`{"mac":"m"}`), passclient.ErrChallenge},
		{"no mac", challenge(`{"token_type":2}`), passclient.ErrChallenge},
		{"empty mac", challenge(`{"token_type":2,"mac":""}`), passclient.ErrChallenge},
		{"null mac", challenge(`{"token_type":2,"mac":null}`), passclient.ErrChallenge},
		{"mac under another case", challenge(`{"token_type":2,"MAC":"m"}`), passclient.ErrChallenge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &signer{sk: sk}
			pass, err := passclient.Issue(context.Background(), rand.Reader, c.iss, s.sign)
			if !errors.Is(err, c.want) || pass != nil {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if s.calls != 0 {
				t.Fatal("the signer was asked to sign after a failed check")
			}
		})
	}
}

func TestIssueRefusesBadSignatures(t *testing.T) {
	sk := testKey2048(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := issuance(t, &sk.PublicKey, challengeJSON)
	errUpstream := errors.New("upstream said no")
	cases := map[string]struct {
		sign passclient.Signer
		want error
	}{
		"another key's signature": {func(_ context.Context, b []byte, _ string) ([]byte, error) {
			// Raw RSA under the other key: circl's signer refuses a
			// message above that key's modulus, half of the time.
			m := new(big.Int).SetBytes(b)
			m.Exp(m.Mod(m, other.N), other.D, other.N)
			return m.FillBytes(make([]byte, len(b))), nil
		}, passclient.ErrSignature},
		"random bytes": {func(_ context.Context, b []byte, _ string) ([]byte, error) {
			r := make([]byte, len(b))
			rand.Read(r)
			r[0] = 0 // below the modulus, so only the signature check can refuse it
			return r, nil
		}, passclient.ErrSignature},
		"the blinded message back": {func(_ context.Context, b []byte, _ string) ([]byte, error) {
			return b, nil
		}, passclient.ErrSignature},
		"too short": {func(_ context.Context, b []byte, _ string) ([]byte, error) {
			s, err := blindrsa.NewSigner(sk).BlindSign(b)
			return s[1:], err
		}, passclient.ErrSignature},
		"too long": {func(_ context.Context, b []byte, _ string) ([]byte, error) {
			s, err := blindrsa.NewSigner(sk).BlindSign(b)
			return append([]byte{0}, s...), err
		}, passclient.ErrSignature},
		"empty":        {func(context.Context, []byte, string) ([]byte, error) { return nil, nil }, passclient.ErrSignature},
		"signer error": {func(context.Context, []byte, string) ([]byte, error) { return nil, errUpstream }, errUpstream},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			pass, err := passclient.Issue(context.Background(), rand.Reader, iss, c.sign)
			if !errors.Is(err, c.want) || pass != nil {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestVerifyRefusesSignatureNotBelowModulus(t *testing.T) {
	sk := testKey2048(t)
	input := passclient.TokenInput(strings.Repeat("ab", 32), "m", strings.Repeat("cd", 32))
	n := sk.N.FillBytes(make([]byte, sk.Size()))
	if err := passclient.Verify(&sk.PublicKey, input, n); !errors.Is(err, passclient.ErrSignature) {
		t.Fatalf("a signature equal to the modulus: %v", err)
	}
}

func TestIssueRandomnessFailure(t *testing.T) {
	sk := testKey2048(t)
	iss := issuance(t, &sk.PublicKey, challengeJSON)
	s := &signer{sk: sk}
	if _, err := passclient.Issue(context.Background(), strings.NewReader("short"), iss, s.sign); err == nil || s.calls != 0 {
		t.Fatalf("a failing random source must stop issuance before signing: %v", err)
	}
}

// BenchmarkIssue is the client's share of issuance plus one blind signature
// (BenchmarkBlindSign): subtract to get the client's cost.
//
//	go test -run '^$' -bench . ./rpc/gateway/passclient/
func BenchmarkIssue(b *testing.B) {
	sk := testKey2048(nil)
	iss := issuanceB(b, &sk.PublicKey)
	sign := (&signer{sk: sk}).sign
	for b.Loop() {
		if _, err := passclient.Issue(context.Background(), rand.Reader, iss, sign); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBlindSign is the signer's share alone (circl's blindrsa signer,
// 2048-bit key).
func BenchmarkBlindSign(b *testing.B) {
	sk := testKey2048(nil)
	blinded := make([]byte, sk.Size())
	rand.Read(blinded)
	blinded[0] = 0
	s := blindrsa.NewSigner(sk)
	for b.Loop() {
		if _, err := s.BlindSign(blinded); err != nil {
			b.Fatal(err)
		}
	}
}

func issuanceB(b *testing.B, pk *rsa.PublicKey) passclient.Issuance {
	der, err := x509.MarshalPKIXPublicKey(pk)
	if err != nil {
		b.Fatal(err)
	}
	return passclient.Issuance{Challenge: b64([]byte(challengeJSON)), TokenKey: b64(der), TokenKeyID: passclient.KeyID(der)}
}

// FuzzChallenge: whatever challenge the provider sends, Issue either
// refuses it with ErrChallenge (before any signing) or returns a pass that
// is JSON and embeds the challenge byte for byte.
func FuzzChallenge(f *testing.F) {
	for _, seed := range []string{challengeJSON, `{"token_type":2,"mac":"m"}`, " {\"mac\":\"\\u006d\",\"token_type\":2} ", `null`, `[]`, `{"token_type":2.0,"mac":"m"}`, "{\"token_type\":2,\"mac\":\"\xff\"}"} {
		f.Add([]byte(seed))
	}
	sk := testKey2048(nil)
	der, err := x509.MarshalPKIXPublicKey(&sk.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, challenge []byte) {
		iss := passclient.Issuance{Challenge: b64(challenge), TokenKey: b64(der), TokenKeyID: passclient.KeyID(der)}
		s := &signer{sk: sk}
		pass, err := passclient.Issue(context.Background(), rand.Reader, iss, s.sign)
		if err != nil {
			if !errors.Is(err, passclient.ErrChallenge) || pass != nil || s.calls != 0 {
				t.Fatalf("err %v, pass %v, %d signatures", err, pass, s.calls)
			}
			return
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(pass.Token)
		if err != nil || !json.Valid(raw) || !strings.HasSuffix(string(raw), `"challenge":`+string(challenge)+`}`) {
			t.Fatalf("pass %q for challenge %q", raw, challenge)
		}
	})
}
