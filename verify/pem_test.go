package verify

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"os"
	"strings"
	"testing"
)

// Files made at development time with OpenSSL 3.0:
//
//	openssl ecparam -name prime256v1 -genkey -out openssl_prime256v1.pem
//	openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out openssl_pkcs8_p256.pem
//	openssl ecparam -name secp384r1 -genkey -noout -out openssl_secp384r1.pem
//
// and their public keys with
//
//	openssl pkey -in FILE -pubout -outform DER | tail -c 65 | xxd -p
//
// They are test keys, used nowhere else.
const (
	opensslP256Commitment  = "04dc8793a1f7629942c48b27ac7788184582c71fe2aa586595db1b00769d261d0320ef026592dcfcfd11fc0d185bc3fa651707ff655d814b71895687c8964d08a1"
	opensslPKCS8Commitment = "04f55e6f328326d5bcb110530bc9057808abd7c19161f629f653cc63ecaf5fd7ed763967982710a4545a1756a1499a8dd2930ff221c50103c97e291e9c588ce188"
)

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParseKeysPEM(t *testing.T) {
	v := loadVectors(t).TestKey
	testPEM := []byte(v.PEM)
	opensslP256 := readFile(t, "openssl_prime256v1.pem")
	opensslPKCS8 := readFile(t, "openssl_pkcs8_p256.pem")

	// A P-256 key written by Go, as SEC 1 with an EC PARAMETERS block, and as
	// PKCS #8.
	gen, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	genSEC1, _ := x509.MarshalECPrivateKey(gen)
	genPKCS8, _ := x509.MarshalPKCS8PrivateKey(gen)
	genCommitment, _ := gen.PublicKey.Bytes()
	ecParamsP256 := pemBlock("EC PARAMETERS", p256ParametersDER)
	goSEC1 := append(bytes.Clone(ecParamsP256), pemBlock("EC PRIVATE KEY", genSEC1)...)
	goPKCS8 := pemBlock("PRIVATE KEY", genPKCS8)

	// SEC 1 without the optional public key (openssl ec -no_public).
	noPublic, err := asn1.Marshal(sec1ECPrivateKey{
		Version:       1,
		PrivateKey:    unhex(t, v.KHex),
		NamedCurveOID: asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7},
	})
	if err != nil {
		t.Fatal(err)
	}

	ok := []struct {
		name        string
		data        []byte
		commitments []string
	}{
		{"test key", testPEM, []string{v.CommitmentHex}},
		{"openssl ecparam -genkey", opensslP256, []string{opensslP256Commitment}},
		{"openssl pkcs8", opensslPKCS8, []string{opensslPKCS8Commitment}},
		{"go sec1 with parameters", goSEC1, []string{hex.EncodeToString(genCommitment)}},
		{"go pkcs8", goPKCS8, []string{hex.EncodeToString(genCommitment)}},
		{"several keys in order", bytes.Join([][]byte{opensslP256, testPEM, opensslPKCS8}, nil),
			[]string{opensslP256Commitment, v.CommitmentHex, opensslPKCS8Commitment}},
		{"surrounding whitespace", append(append([]byte("\n\n  \t"), testPEM...), "\r\n\n  "...), []string{v.CommitmentHex}},
		{"CRLF line endings", bytes.ReplaceAll(testPEM, []byte("\n"), []byte("\r\n")), []string{v.CommitmentHex}},
		{"MarshalPEM round trip", testKey(t).MarshalPEM(), []string{v.CommitmentHex}},
		{"SEC 1 without public key", pemBlock("EC PRIVATE KEY", noPublic), []string{v.CommitmentHex}},
	}
	for _, c := range ok {
		keys, err := ParseKeysPEM(c.data)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if len(keys) != len(c.commitments) {
			t.Errorf("%s: %d keys, want %d", c.name, len(keys), len(c.commitments))
			continue
		}
		for i, k := range keys {
			if got := hex.EncodeToString(k.Commitment()); got != c.commitments[i] {
				t.Errorf("%s: key %d has H = %s, want %s", c.name, i, got, c.commitments[i])
			}
		}
	}

	// Rejected.
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384SEC1, _ := x509.MarshalECPrivateKey(p384)
	p384PKCS8, _ := x509.MarshalPKCS8PrivateKey(p384)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edPKCS8, _ := x509.MarshalPKCS8PrivateKey(edKey)
	xKey, _ := ecdh.X25519().GenerateKey(rand.Reader)
	xPKCS8, _ := x509.MarshalPKCS8PrivateKey(xKey)
	p384Params := []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22} // OID secp384r1
	// genSEC1 is 30 77 | 02 01 01 | 04 20 <scalar: 7..38> | a0 0a <OID> | a1 44 03 42 00 <H: 56..120>.
	corruptH := bytes.Clone(genSEC1)
	corruptH[100] ^= 0x01
	corruptScalar := bytes.Clone(genSEC1)
	corruptScalar[20] ^= 0x01
	corruptDER := bytes.Clone(genSEC1)
	corruptDER[1] ^= 0xff
	corruptPKCS8 := bytes.Clone(genPKCS8)
	corruptPKCS8[len(corruptPKCS8)-10] ^= 0x01
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00000000000000000000000000000000"}, Bytes: genSEC1})

	bad := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"whitespace", []byte(" \n\t\r\n")},
		{"garbage", []byte("this is not a key")},
		{"binary garbage", []byte{0x30, 0x82, 0x01, 0x00, 0xff}},
		{"only EC PARAMETERS", ecParamsP256},
		{"openssl secp384r1", readFile(t, "openssl_secp384r1.pem")},
		{"P-384 SEC 1", pemBlock("EC PRIVATE KEY", p384SEC1)},
		{"P-384 PKCS #8", pemBlock("PRIVATE KEY", p384PKCS8)},
		{"P-256 key after P-384 parameters", append(pemBlock("EC PARAMETERS", p384Params), pemBlock("EC PRIVATE KEY", genSEC1)...)},
		{"Ed25519 PKCS #8", pemBlock("PRIVATE KEY", edPKCS8)},
		{"X25519 PKCS #8", pemBlock("PRIVATE KEY", xPKCS8)},
		{"SEC 1 in a PRIVATE KEY block", pemBlock("PRIVATE KEY", genSEC1)},
		{"PKCS #8 in an EC PRIVATE KEY block", pemBlock("EC PRIVATE KEY", genPKCS8)},
		{"corrupt DER", pemBlock("EC PRIVATE KEY", corruptDER)},
		{"SEC 1 public key mismatch", pemBlock("EC PRIVATE KEY", corruptH)},
		{"SEC 1 scalar mismatch", pemBlock("EC PRIVATE KEY", corruptScalar)},
		{"PKCS #8 public key mismatch", pemBlock("PRIVATE KEY", corruptPKCS8)},
		{"certificate block", pemBlock("CERTIFICATE", genSEC1)},
		{"RSA PRIVATE KEY block", pemBlock("RSA PRIVATE KEY", genSEC1)},
		{"public key block", pemBlock("PUBLIC KEY", genCommitment)},
		{"encrypted", encrypted},
		{"leading text", append([]byte("key:\n"), testPEM...)},
		{"trailing text", append(bytes.Clone(testPEM), "garbage"...)},
		{"text between keys", bytes.Join([][]byte{testPEM, []byte("# comment\n"), opensslPKCS8}, nil)},
		{"truncated", testPEM[:len(testPEM)-20]},
		{"missing END", bytes.Replace(testPEM, []byte("-----END EC PRIVATE KEY-----"), nil, 1)},
		{"good key then bad key", append(bytes.Clone(testPEM), pemBlock("EC PRIVATE KEY", p384SEC1)...)},
	}
	// Nothing secret may appear in an error: not the scalars, not the
	// base64 lines of the blocks.
	secrets := []string{v.KHex, hex.EncodeToString(mustBytes(gen))}
	for _, block := range [][]byte{testPEM, goSEC1, opensslP256} {
		for _, line := range strings.Split(string(block), "\n") {
			if len(line) > 16 && !strings.HasPrefix(line, "-----") {
				secrets = append(secrets, line[:16])
			}
		}
	}
	for _, c := range bad {
		keys, err := ParseKeysPEM(c.data)
		if err == nil || keys != nil {
			t.Errorf("%s: accepted (%d keys)", c.name, len(keys))
			continue
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q contains key material", c.name, err)
			}
		}
		t.Logf("%s: %v", c.name, err)
	}
}

func TestMarshalPEM(t *testing.T) {
	k := testKey(t)
	out := k.MarshalPEM()
	block, rest := pem.Decode(out)
	if block == nil || block.Type != "EC PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("MarshalPEM = %q", out)
	}
	priv, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := priv.Bytes(); !bytes.Equal(raw, k.scalar[:]) {
		t.Error("scalar changed")
	}
	var zero Key
	if zero.MarshalPEM() != nil {
		t.Error("zero Key marshals")
	}
}

// mustBytes is the raw scalar of k (ecdsa.PrivateKey.Bytes, Go 1.25+).
func mustBytes(k *ecdsa.PrivateKey) []byte {
	b, err := k.Bytes()
	if err != nil {
		panic(err)
	}
	return b
}
