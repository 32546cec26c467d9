package pass

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"strings"
	"testing"
)

func TestParseKeyPEMFixtures(t *testing.T) {
	for _, path := range []string{fixturePKCS1, fixturePKCS8} {
		k := loadKey(t, path)
		if k.Bits() != 2048 || k.Size() != 256 {
			t.Errorf("%s: %d bits, %d bytes", path, k.Bits(), k.Size())
		}
		// token-key and token-key-id recomputed from the file by
		// crypto/x509 alone.
		data, _ := os.ReadFile(path)
		block, _ := pem.Decode(data)
		var pub *rsa.PublicKey
		if block.Type == "RSA PRIVATE KEY" {
			priv, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			pub = &priv.PublicKey
		} else {
			priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			pub = &priv.(*rsa.PrivateKey).PublicKey
		}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(der)
		if k.TokenKey() != base64.RawURLEncoding.EncodeToString(der) {
			t.Errorf("%s: token-key", path)
		}
		if k.TokenKeyID() != hex.EncodeToString(sum[:]) || len(k.TokenKeyID()) != 64 {
			t.Errorf("%s: token-key-id %s", path, k.TokenKeyID())
		}
		if k.ID() != hex.EncodeToString(sum[:8]) {
			t.Errorf("%s: ID %s", path, k.ID())
		}
		if !k.PublicKey().Equal(pub) {
			t.Errorf("%s: PublicKey", path)
		}
		// MarshalPEM writes PKCS #8 that parses back to the same key.
		out, err := k.MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(out, []byte("-----BEGIN PRIVATE KEY-----\n")) {
			t.Errorf("%s: MarshalPEM is not PKCS #8: %.30s", path, out)
		}
		back, err := ParseKeyPEM(out)
		if err != nil || back.TokenKeyID() != k.TokenKeyID() || !back.priv.Equal(k.priv) {
			t.Errorf("%s: MarshalPEM round trip: %v", path, err)
		}
	}
}

func TestParseKeyPEMRefusals(t *testing.T) {
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pkcs1 := read(fixturePKCS1)
	pkcs8 := read(fixturePKCS8)
	cases := []struct {
		name string
		data []byte
		want string // a word the error must contain
	}{
		{"empty", nil, "not a PEM file"},
		{"text before", append([]byte("my key:\n"), pkcs1...), "not a PEM file"},
		{"two keys", append(append([]byte(nil), pkcs1...), pkcs8...), "exactly one key"},
		{"text after", append(append([]byte(nil), pkcs1...), "trailer\n"...), "exactly one key"},
		{"truncated", pkcs1[:len(pkcs1)/2], "malformed PEM"},
		{"1024 bits", read("testdata/openssl_rsa1024_pkcs1.pem"), "1024 bits; want 2048 or 4096"},
		{"3072 bits", read("testdata/openssl_rsa3072_pkcs8.pem"), "3072 bits; want 2048 or 4096"},
		{"exponent 3", read("testdata/openssl_rsa2048_e3_pkcs8.pem"), "exponent must be 65537"},
		{"RSA-PSS key", read("testdata/openssl_rsapss2048_pkcs8.pem"), "RSA-PSS keys are not supported"},
		{"Ed25519", read("testdata/openssl_ed25519_pkcs8.pem"), "not an RSA key"},
		{"P-256", read("testdata/openssl_p256_pkcs8.pem"), "not an RSA key"},
		{"public key", read("testdata/openssl_rsa2048_public.pem"), "want the private key"},
		{"encrypted PKCS #8", read("testdata/openssl_rsa2048_encrypted.pem"), "encrypted keys are not supported"},
		{"encrypted PKCS #1", read("testdata/openssl_rsa2048_pkcs1_encrypted.pem"), "encrypted keys are not supported"},
		{"PKCS #8 in an RSA PRIVATE KEY block", relabel(t, pkcs8, "RSA PRIVATE KEY"), "not a valid PKCS #1"},
		{"PKCS #1 in a PRIVATE KEY block", relabel(t, pkcs1, "PRIVATE KEY"), "not a valid PKCS #8"},
		{"EC PRIVATE KEY", relabel(t, pkcs1, "EC PRIVATE KEY"), "unsupported PEM block type"},
	}
	for _, c := range cases {
		_, err := ParseKeyPEM(c.data)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %q does not say %q", c.name, err, c.want)
		}
	}
	// Surrounding whitespace is fine.
	if _, err := ParseKeyPEM(append(append([]byte("\n\n  "), pkcs1...), "\n\n"...)); err != nil {
		t.Error(err)
	}
}

func relabel(t *testing.T, data []byte, typ string) []byte {
	t.Helper()
	block, _ := pem.Decode(data)
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: block.Bytes})
}

func TestNewKeyChecks(t *testing.T) {
	base := loadKey(t, fixturePKCS8).priv
	cp := func() *rsa.PrivateKey {
		c := *base
		c.Primes = append(c.Primes[:0:0], base.Primes...)
		return &c
	}
	if _, err := NewKey(nil); err == nil {
		t.Error("nil key accepted")
	}
	e3 := cp()
	e3.E = 3
	if _, err := NewKey(e3); err == nil || !strings.Contains(err.Error(), "65537") {
		t.Errorf("e = 3: %v", err)
	}
	bad := cp()
	bad.D = new(big.Int).Add(bad.D, big.NewInt(1))
	bad.Precomputed = rsa.PrecomputedValues{}
	if _, err := NewKey(bad); err == nil || !strings.Contains(err.Error(), "inconsistent") {
		t.Errorf("wrong D: %v", err)
	}
	three := cp()
	three.Primes = append(three.Primes, big.NewInt(1))
	if _, err := NewKey(three); err == nil || !strings.Contains(err.Error(), "multi-prime") {
		t.Errorf("three primes: %v", err)
	}
	for _, bits := range []int{0, 1024, 3072, 8192} {
		if _, err := GenerateKey(bits); err == nil {
			t.Errorf("GenerateKey(%d) accepted", bits)
		}
	}
	var zero Key
	if _, err := zero.MarshalPEM(); err == nil {
		t.Error("zero Key marshalled")
	}
	if _, err := zero.BlindSign(make([]byte, 256)); err == nil {
		t.Error("zero Key signed")
	}
	if _, err := NewKeySet(map[string][]*Key{"a": {&zero}}); err == nil {
		t.Error("zero Key in a key set")
	}
}

func TestGenerateKey2048(t *testing.T) {
	k, err := GenerateKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	if k.Bits() != 2048 || k.priv.E != 65537 {
		t.Fatalf("bits %d e %d", k.Bits(), k.priv.E)
	}
	out, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseKeyPEM(out)
	if err != nil || back.TokenKeyID() != k.TokenKeyID() {
		t.Fatal(err)
	}
}
