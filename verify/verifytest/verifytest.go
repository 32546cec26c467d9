// Package verifytest gives tests the legacy protocol's public test key and
// tokens minted under any key (verify/PROTOCOL.md §7-9), so that no test
// package keeps its own copy.
//
// Minting here is what a Privacy Pass client ends up holding after
// issuance, without the issuance: for a fresh random token t it computes
// N = k·H2C(t) with the private key and the tag over the bindings
// (verify.Key.Tag). It is test support: the test key is public and must
// never serve real tokens.
package verifytest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/ppredeem/ppredeem/verify"
)

// KeyPEM is the public test key (verify/PROTOCOL.md §8), SEC 1 PEM; the
// same key as cmd/ppredeem/testdata/test-key.pem, which the README and
// docker-compose.yml serve with.
const KeyPEM = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEICFuORLU0zslKLQI3tvnKps/ASi8xOR4NxKesIB7imqyoAoGCCqGSM49
AwEHoUQDQgAEpsffVeQl5sZVJPR+2RQlSlqU6Be072ms1uiMcuYu7r8r/kx3rZHn
ZTgLk6iEuagUrPEVzpvs8bOWSxq0IlJlsA==
-----END EC PRIVATE KEY-----
`

var testKey = sync.OnceValue(func() *verify.Key {
	keys, err := verify.ParseKeysPEM([]byte(KeyPEM))
	if err != nil || len(keys) != 1 {
		panic(fmt.Sprintf("verifytest: the test key does not parse: %v", err))
	}
	return keys[0]
})

// Key returns the public test key.
func Key() *verify.Key { return testKey() }

// NewKey returns a fresh random key.
func NewKey(t testing.TB) *verify.Key {
	t.Helper()
	k, err := verify.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// KeySet returns the key set of keys, in order.
func KeySet(t testing.TB, keys ...*verify.Key) *verify.KeySet {
	t.Helper()
	ks, err := verify.NewKeySet(keys)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// WriteKeyFile writes keys to a new PEM file in dir and returns its path.
func WriteKeyFile(t testing.TB, dir string, keys ...*verify.Key) string {
	t.Helper()
	var pemBytes []byte
	for _, k := range keys {
		pemBytes = append(pemBytes, k.MarshalPEM()...)
	}
	f, err := os.CreateTemp(dir, "key-*.pem")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(pemBytes); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// BrowserBindings returns what a browser binds a token to: the host and
// "METHOD /path" (verify/PROTOCOL.md §1).
func BrowserBindings() []string { return []string{"www.example.com", "GET /"} }

// Token is one redemption: a token, its tag and what the tag was made for.
type Token struct {
	Token, Tag []byte
	Bindings   []string
	Method     verify.Method
	Compressed bool
}

// NewToken mints a fresh random 32-byte token under key. It does not need
// a *testing.T, so goroutines use it and report the error themselves.
func NewToken(key *verify.Key, m verify.Method, compressed bool, bindings []string) (Token, error) {
	// Try-and-increment fails for about 2⁻²⁰ of tokens (verify/PROTOCOL.md
	// §4): take another.
	var err error
	for range 4 {
		tok := Token{Token: make([]byte, 32), Bindings: bindings, Method: m, Compressed: compressed}
		rand.Read(tok.Token)
		if tok.Tag, err = key.Tag(tok.Token, m, compressed, bindings); err == nil {
			return tok, nil
		}
	}
	return Token{}, fmt.Errorf("verifytest: minting a token: %w", err)
}

// Mint mints a fresh token under key for method m, uncompressed, bound to
// BrowserBindings.
func Mint(t testing.TB, key *verify.Key, m verify.Method) Token {
	t.Helper()
	return MintFor(t, key, m, false, BrowserBindings())
}

// MintFor mints a fresh token under key with the given settings and
// bindings.
func MintFor(t testing.TB, key *verify.Key, m verify.Method, compressed bool, bindings []string) Token {
	t.Helper()
	tok, err := NewToken(key, m, compressed, bindings)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Vector returns the first published redemption of the test key
// (verify/PROTOCOL.md §9): token 00 01 … 1f, increment, uncompressed,
// bound to BrowserBindings. It verifies under Key.
func Vector() Token {
	token, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	tag, _ := base64.StdEncoding.DecodeString("8toXDPdSF4sDOH4Jk3zfKJI85ziIGiAMjvgEsx05vEo=")
	return Token{Token: token, Tag: tag, Bindings: BrowserBindings(), Method: verify.Increment}
}

// Settings returns data[2] for the given curve settings: standard base64
// of {"curve":…,"hash":…,"method":…}.
func Settings(curve, hash, method string) string {
	return b64([]byte(fmt.Sprintf(`{"curve":%q,"hash":%q,"method":%q}`, curve, hash, method)))
}

// Params returns the params of tok's redeem request, ready for
// encoding/json: data [token, tag, settings], the bindings, and
// "compressed" when set.
func (tok Token) Params() map[string]any {
	p := map[string]any{
		"data":     []string{b64(tok.Token), b64(tok.Tag), Settings("p256", "sha256", tok.Method.String())},
		"bindings": tok.Bindings,
	}
	if tok.Compressed {
		p["compressed"] = true
	}
	return p
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
