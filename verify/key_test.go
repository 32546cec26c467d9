package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestKeyID(t *testing.T) {
	k := testKey(t)
	// First 8 bytes of SHA-256 of the test key's commitment H, computed with
	// sha256sum from commitment_H_hex in testdata/vectors.json.
	const want = "0b4ef6b6786ca08d"
	if k.ID() != want {
		t.Errorf("ID = %s, want %s", k.ID(), want)
	}
	if again := testKey(t); again.ID() != k.ID() {
		t.Error("ID is not stable")
	}
	if len(otherKey(t).ID()) != 16 || otherKey(t).ID() == want {
		t.Errorf("other key ID %q", otherKey(t).ID())
	}
}

func TestKeyNeverPrintsScalar(t *testing.T) {
	k := testKey(t)
	scalar := k.scalar[:]
	forbidden := []string{
		hex.EncodeToString(scalar), strings.ToUpper(hex.EncodeToString(scalar)),
		hex.EncodeToString(scalar[:8]), base64.StdEncoding.EncodeToString(scalar)[:12],
		fmt.Sprint(scalar[:8]),
	}
	type holder struct {
		K  *Key
		KV Key
		k  *Key
	}
	h := holder{K: k, KV: *k, k: k}
	hexVerb := "%x %X" // a variable: vet rightly says %x does not suit a struct
	outputs := []string{
		fmt.Sprintf(hexVerb, *k, *k), fmt.Sprintf(hexVerb, h, h),
		k.String(), k.GoString(),
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %x %X %q %d", k, k, k, k, k, k, k, k),
		fmt.Sprintf("%v", *k), fmt.Sprintf("%+v", *k), fmt.Sprintf("%#v", *k),
		fmt.Sprintf("%v %+v %#v", h, h, h),
		fmt.Sprint([]*Key{k}), fmt.Sprintf("%x", []*Key{k}),
	}
	for _, out := range outputs {
		for _, f := range forbidden {
			if strings.Contains(out, f) {
				t.Errorf("output %q contains the scalar", out)
			}
		}
	}
	if got := fmt.Sprint(k); got != "verify.Key(0b4ef6b6786ca08d)" {
		t.Errorf("String = %q", got)
	}
	var nilKey *Key
	if got := fmt.Sprint(nilKey); got != "verify.Key(nil)" {
		t.Errorf("nil String = %q", got)
	}
}

func TestNewKey(t *testing.T) {
	n := unhex(t, "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
	nMinus1 := bytes.Clone(n)
	nMinus1[31]--
	nPlus1 := bytes.Clone(n)
	nPlus1[31]++
	one := make([]byte, 32)
	one[31] = 1
	cases := []struct {
		name   string
		scalar []byte
		ok     bool
	}{
		{"one", one, true},
		{"n-1", nMinus1, true},
		{"test key", unhex(t, loadVectors(t).TestKey.KHex), true},
		{"high bytes below n", unhex(t, "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550"), true},
		{"zero", make([]byte, 32), false},
		{"n", n, false},
		{"n+1", nPlus1, false},
		{"all ones", bytes.Repeat([]byte{0xff}, 32), false},
		{"above n in a middle byte", unhex(t, "ffffffff00000001000000000000000000000000000000000000000000000000"), false},
		{"31 bytes", one[1:], false},
		{"33 bytes", append([]byte{0}, one...), false},
		{"nil", nil, false},
	}
	for _, c := range cases {
		k, err := NewKey(c.scalar)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v", c.name, err)
		}
		if c.ok && k == nil {
			t.Errorf("%s: nil key", c.name)
		}
	}

	// NewKey copies the scalar.
	s := unhex(t, loadVectors(t).TestKey.KHex)
	k, _ := NewKey(s)
	s[0] ^= 0xff
	if k.ID() != testKey(t).ID() {
		t.Error("NewKey aliases its input")
	}
	// Commitment returns a copy.
	c := k.Commitment()
	c[1] ^= 0xff
	if bytes.Equal(c, k.Commitment()) || len(k.Commitment()) != 65 {
		t.Error("Commitment aliases the key")
	}
	// H = k·G, and 1·G = G.
	g, _ := NewKey(one)
	if !bytes.Equal(g.Commitment(), BasePoint()) {
		t.Error("1·G != G")
	}
	if hex.EncodeToString(BasePoint()) != "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5" {
		t.Errorf("G = %x", BasePoint())
	}
}

// seqReader returns its chunks in order, then fails.
type seqReader struct{ chunks [][]byte }

func (r *seqReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	if len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey(nil)
	if err != nil || a.ID() == b.ID() {
		t.Fatalf("two random keys: %v %v, %v", a, b, err)
	}

	// The reader is really used: out-of-range candidates are skipped.
	tk := unhex(t, loadVectors(t).TestKey.KHex)
	r := &seqReader{chunks: [][]byte{make([]byte, 32), bytes.Repeat([]byte{0xff}, 32), tk}}
	k, err := GenerateKey(r)
	if err != nil || k.ID() != testKey(t).ID() {
		t.Fatalf("GenerateKey(seq) = %v, %v; want the test key", k, err)
	}
	if _, err := GenerateKey(&seqReader{}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("failing reader: %v", err)
	}
	if _, err := GenerateKey(bytes.NewReader(make([]byte, 32*maxGenerateTries+32))); err == nil {
		t.Error("all-zero reader accepted")
	}
}

func TestKeyTagErrors(t *testing.T) {
	k := testKey(t)
	if _, err := k.Tag([]byte("t"), 0, false, nil); !errors.Is(err, ErrUnsupportedCurve) {
		t.Errorf("method 0: %v", err)
	}
	if _, err := k.Tag([]byte("t"), 3, false, nil); !errors.Is(err, ErrUnsupportedCurve) {
		t.Errorf("method 3: %v", err)
	}
	var zero Key
	if _, err := zero.Tag([]byte("t"), Increment, false, nil); err == nil {
		t.Error("zero Key makes tags")
	}
	var nilKey *Key
	if _, err := nilKey.Tag([]byte("t"), Increment, false, nil); err == nil {
		t.Error("nil Key makes tags")
	}
	// Large inputs take the heap path of the transcript.
	big := bytes.Repeat([]byte{7}, 5000)
	tag, err := k.Tag(big, SWU, false, []string{string(big), "x"})
	if err != nil || !bytes.Equal(tag, refKeyTag(t, k.scalar[:], big, SWU, false, []string{string(big), "x"})) {
		t.Errorf("large inputs: %x, %v", tag, err)
	}
}
