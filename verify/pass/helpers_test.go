package pass

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cloudflare/circl/blindsign/blindrsa"
)

// The test keys: openssl-generated 2048-bit keys in testdata (fast to load),
// and one 4096-bit key generated once per test binary (it takes seconds).
const (
	fixturePKCS1 = "testdata/openssl_rsa2048_pkcs1.pem"
	fixturePKCS8 = "testdata/openssl_rsa2048_pkcs8.pem"
)

func loadKey(tb testing.TB, path string) *Key {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := ParseKeyPEM(data)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return k
}

var key4096 = sync.OnceValues(func() (*Key, error) { return GenerateKey(4096) })

func testKey4096(tb testing.TB) *Key {
	tb.Helper()
	k, err := key4096()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// testMACKey is the MAC key of the test issuers.
var testMACKey = bytes.Repeat([]byte{0x5a}, 32)

const (
	testIssuerName = "ppredeem test issuer"
	claimAge       = "age_over18_united_kingdom"
	claimOther     = "age_over21_united_states"
)

// testNow is a fixed clock, a little after a whole hour.
var testNow = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

// newIssuer returns an issuer with claim types claimAge (keys: PKCS #1
// fixture, active) and claimOther (keys: PKCS #8 fixture).
func newIssuer(tb testing.TB) *Issuer {
	tb.Helper()
	return issuerWith(tb, map[string][]*Key{
		claimAge:   {loadKey(tb, fixturePKCS1)},
		claimOther: {loadKey(tb, fixturePKCS8)},
	}, 0)
}

func issuerWith(tb testing.TB, keys map[string][]*Key, lifetime time.Duration, macKeys ...[]byte) *Issuer {
	tb.Helper()
	ks, err := NewKeySet(keys)
	if err != nil {
		tb.Fatal(err)
	}
	if len(macKeys) == 0 {
		macKeys = [][]byte{testMACKey}
	}
	is, err := NewIssuer(Config{IssuerName: testIssuerName, MACKeys: macKeys, Keys: ks, Lifetime: lifetime})
	if err != nil {
		tb.Fatal(err)
	}
	return is
}

// minted is a pass made by the test client, with its parts.
type minted struct {
	Token      string
	Nonce      string
	MAC        string
	TokenKeyID string
	Challenge  json.RawMessage
	Signature  []byte
}

// mint is the client side of the pass format (what the gateway does to
// issue a pass), written from the format's description, not from the
// package's own helpers: get a challenge, check the
// token-key-id, build the nonce and token input, blind with circl's client
// (RSABSSA-SHA384-PSS-Randomized, no Prepare prefix), have the issuer sign,
// finalize, check the signature, assemble the pass.
func mint(tb testing.TB, is *Issuer, claimType string, now time.Time) minted {
	tb.Helper()
	m, err := tryMint(is, claimType, now)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// tryMint is mint returning its error, for use off the test goroutine.
func tryMint(is *Issuer, claimType string, now time.Time) (minted, error) {
	var no minted
	ch, err := is.Challenge(claimType, now)
	if err != nil {
		return no, err
	}
	challengeJSON, err := base64.RawURLEncoding.DecodeString(ch.Challenge)
	if err != nil {
		return no, err
	}
	var fields struct {
		MAC string `json:"mac"`
	}
	if err := json.Unmarshal(challengeJSON, &fields); err != nil {
		return no, err
	}
	der, err := base64.RawURLEncoding.DecodeString(ch.TokenKey)
	if err != nil {
		return no, err
	}
	if sum := sha256.Sum256(der); hex.EncodeToString(sum[:]) != ch.TokenKeyID {
		return no, errors.New("token-key-id is not SHA-256 of the token-key")
	}
	pubAny, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return no, err
	}
	pub, ok := pubAny.(*rsa.PublicKey)
	if !ok {
		return no, fmt.Errorf("token-key is a %T, not RSA", pubAny)
	}
	var nb [32]byte
	rand.Read(nb[:])
	nonce := hex.EncodeToString(nb[:])

	input := []byte{0x00, 0x02}
	for _, s := range []string{nonce, fields.MAC, ch.TokenKeyID} {
		h := sha256.Sum256([]byte(s))
		input = append(input, h[:]...)
	}

	client, err := blindrsa.NewClient(blindrsa.SHA384PSSRandomized, pub)
	if err != nil {
		return no, err
	}
	blinded, state, err := client.Blind(rand.Reader, input)
	if err != nil {
		return no, err
	}
	blindSig, ct, err := is.BlindSign(ch.TokenKeyID, blinded)
	if err != nil {
		return no, err
	}
	if ct != claimType {
		return no, fmt.Errorf("BlindSign claim type %q, want %q", ct, claimType)
	}
	sig, err := client.Finalize(state, blindSig)
	if err != nil {
		return no, err
	}
	verifier, err := blindrsa.NewVerifier(blindrsa.SHA384PSSRandomized, pub)
	if err != nil {
		return no, err
	}
	if err := verifier.Verify(input, sig); err != nil {
		return no, fmt.Errorf("circl does not verify the finalized signature: %w", err)
	}
	b, err := json.Marshal(map[string]any{
		"token_nonce": nonce,
		"signature":   base64.RawURLEncoding.EncodeToString(sig),
		"key_id":      ch.TokenKeyID,
		"challenge":   json.RawMessage(challengeJSON),
	})
	if err != nil {
		return no, err
	}
	return minted{
		Token: base64.RawURLEncoding.EncodeToString(b), Nonce: nonce, MAC: fields.MAC,
		TokenKeyID: ch.TokenKeyID, Challenge: challengeJSON, Signature: sig,
	}, nil
}

// assemble is b64url(JSON(members)).
func assemble(tb testing.TB, members any) string {
	tb.Helper()
	b, err := json.Marshal(members)
	if err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// members decodes a token's JSON object into raw members.
func members(tb testing.TB, token string) map[string]json.RawMessage {
	tb.Helper()
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// editPass returns token with its JSON members changed by edit.
func editPass(tb testing.TB, token string, edit func(m map[string]json.RawMessage)) string {
	tb.Helper()
	m := members(tb, token)
	edit(m)
	return assemble(tb, m)
}

// editChallenge returns token with its challenge's members changed by edit.
func editChallenge(tb testing.TB, token string, edit func(c map[string]json.RawMessage)) string {
	tb.Helper()
	return editPass(tb, token, func(m map[string]json.RawMessage) {
		var c map[string]json.RawMessage
		if err := json.Unmarshal(m["challenge"], &c); err != nil {
			tb.Fatal(err)
		}
		edit(c)
		b, err := json.Marshal(c)
		if err != nil {
			tb.Fatal(err)
		}
		m["challenge"] = b
	})
}

func jsonText(tb testing.TB, v any) json.RawMessage {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
