package verify

// An independent implementation of the protocol math, for cross-checking:
// curve arithmetic and point decompression from github.com/cloudflare/circl
// (group.P256, math/big based), try-and-increment written in the extension's
// streaming style, the extension's SWU with its own Euler test and
// exponentiation square root, and the HMACs from crypto/hmac.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	mrand "math/rand/v2"
	"strconv"
	"testing"

	"filippo.io/nistec"
	"github.com/cloudflare/circl/group"
)

// refSeed is H2C_SEED as the extension spells it, in hex
// (challenge-bypass-extension src/ext/h2c.js).
var refSeed, _ = hex.DecodeString("312e322e3834302e31303034352e332e312e3720706f696e742067656e65726174696f6e2073656564")

// refIncrement is hashAndInc of the extension with circl's decompression.
func refIncrement(tok []byte) ([]byte, bool) {
	h := sha256.New()
	h.Write(refSeed)
	seed := tok
	for i := 0; i < 20; i++ {
		var ctr [4]byte
		binary.LittleEndian.PutUint32(ctr[:], uint32(i))
		h.Write(seed)
		h.Write(ctr[:])
		d := h.Sum(nil)
		e := group.P256.NewElement()
		if e.UnmarshalBinary(append([]byte{2}, d...)) == nil {
			b, err := e.MarshalBinary()
			return b, err == nil
		}
		seed = d
		h.Reset()
	}
	return nil, false
}

// refSWU is computeSWUCoordinates of the extension, with math/big only.
func refSWU(tok []byte) []byte {
	p := fromHex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff")
	a := new(big.Int).Sub(p, big.NewInt(3))
	b := fromHex("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b")
	mod := func(x *big.Int) *big.Int { return x.Mod(x, p) }
	mul := func(x, y *big.Int) *big.Int { return mod(new(big.Int).Mul(x, y)) }
	add := func(x, y *big.Int) *big.Int { return mod(new(big.Int).Add(x, y)) }
	c1 := mul(mod(new(big.Int).Neg(b)), new(big.Int).ModInverse(a, p))
	c2 := new(big.Int).Rsh(new(big.Int).Sub(p, big.NewInt(1)), 1)
	sqrtExp := new(big.Int).Rsh(new(big.Int).Add(p, big.NewInt(1)), 2)

	h := sha256.New()
	h.Write([]byte("h2b"))
	h.Write([]byte("H2C-P256-SHA256-SSWU-"))
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(tok)))
	h.Write(l[:])
	h.Write(tok)
	u := mod(new(big.Int).SetBytes(h.Sum(nil)))

	t1 := mod(new(big.Int).Neg(mul(u, u)))
	t2 := mul(t1, t1)
	x1 := add(t2, t1)
	if x1.Sign() != 0 {
		x1.ModInverse(x1, p)
	}
	x1 = mul(add(x1, big.NewInt(1)), c1)
	g := func(x *big.Int) *big.Int { return add(mul(add(mul(x, x), a), x), b) }
	gx1 := g(x1)
	x2 := mul(t1, x1)
	gx2 := g(x2)
	X, gx := x1, gx1
	if new(big.Int).Exp(gx1, c2, p).Cmp(big.NewInt(1)) != 0 {
		X, gx = x2, gx2
	}
	Y := new(big.Int).Exp(gx, sqrtExp, p)
	if Y.Cmp(c2) > 0 {
		Y.Sub(p, Y)
	}
	out := []byte{4}
	out = append(out, X.FillBytes(make([]byte, 32))...)
	return append(out, Y.FillBytes(make([]byte, 32))...)
}

// circlMul returns k·P with circl's group.P256, SEC1 uncompressed.
func circlMul(tb testing.TB, P, k []byte) []byte {
	tb.Helper()
	e := group.P256.NewElement()
	if err := e.UnmarshalBinary(P); err != nil {
		tb.Fatalf("circl rejects %x", P)
	}
	s := group.P256.NewScalar().SetBigInt(new(big.Int).SetBytes(k))
	out, err := group.P256.NewElement().Mul(e, s).MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func nistecMul(tb testing.TB, P, k []byte) []byte {
	tb.Helper()
	N, err := nistec.NewP256Point().ScalarMult(mustPoint(tb, P), k)
	if err != nil {
		tb.Fatal(err)
	}
	return N.Bytes()
}

// refKeyTag is Key.Tag done by the reference pieces.
func refKeyTag(tb testing.TB, k, tok []byte, m Method, compressed bool, bindings []string) []byte {
	tb.Helper()
	var T []byte
	switch m {
	case Increment:
		var ok bool
		if T, ok = refIncrement(tok); !ok {
			tb.Fatalf("reference increment fails for %x", tok)
		}
	case SWU:
		T = refSWU(tok)
	}
	N := circlMul(tb, T, k)
	if compressed {
		e := group.P256.NewElement()
		if err := e.UnmarshalBinary(N); err != nil {
			tb.Fatal(err)
		}
		N, _ = e.MarshalBinaryCompress()
	}
	return refTag(refDeriveKey(tok, N), bindings)
}

func TestCirclScalarMultVectors(t *testing.T) {
	v := loadVectors(t)
	k := unhex(t, v.TestKey.KHex)
	for i, tu := range v.TestKey.Tuples {
		if tu.THex == "" {
			continue
		}
		T := unhex(t, tu.THex)
		want := unhex(t, tu.NHex)
		if got := circlMul(t, T, k); !bytes.Equal(got, want) {
			t.Errorf("tuple %d: circl N = %x, want %x", i, got, want)
		}
		if got := nistecMul(t, T, k); !bytes.Equal(got, want) {
			t.Errorf("tuple %d: nistec N = %x, want %x", i, got, want)
		}
	}
	// H = k·G.
	if got := circlMul(t, BasePoint(), k); hex.EncodeToString(got) != v.TestKey.CommitmentHex {
		t.Errorf("circl H = %x", got)
	}
	// The published v3.0.6 blinding: M = r·T.
	v3 := v.Published.V306
	if got := circlMul(t, unb64(t, v3.TB64), unhex(t, v3.BlindRHex)); !bytes.Equal(got, unb64(t, v3.MB64)) {
		t.Errorf("circl M = %x", got)
	}
}

func TestCirclCrossCheckRandom(t *testing.T) {
	// Deterministic, so a failure can be replayed.
	rng := mrand.New(mrand.NewPCG(1, 2))
	keyRand := mrand.NewChaCha8([32]byte{'p', 'p', 'r', 'e', 'd', 'e', 'e', 'm'})
	n := 200
	if testing.Short() {
		n = 40
	}
	for i := range n {
		key, err := GenerateKey(keyRand)
		if err != nil {
			t.Fatal(err)
		}
		tok := make([]byte, 1+rng.IntN(64))
		for j := range tok {
			tok[j] = byte(rng.Uint32())
		}
		m := Method(1 + i%2)
		compressed := i%3 == 0
		bindings := []string{"host" + strconv.Itoa(i), "GET /" + strconv.Itoa(rng.IntN(1000))}[:rng.IntN(3)]

		// H2C against the reference maps.
		T := nistec.NewP256Point()
		err = hashToCurve(T, tok, m)
		if m == Increment {
			refT, ok := refIncrement(tok)
			if ok != (err == nil) || (ok && !bytes.Equal(T.Bytes(), refT)) {
				t.Fatalf("increment(%x): %v vs reference %v", tok, err, ok)
			}
			if !ok {
				continue
			}
		} else if err != nil || !bytes.Equal(T.Bytes(), refSWU(tok)) {
			t.Fatalf("swu(%x) = %v, want %x", tok, err, refSWU(tok))
		}

		// N = k·T: nistec against circl.
		if a, b := nistecMul(t, T.Bytes(), key.scalar[:]), circlMul(t, T.Bytes(), key.scalar[:]); !bytes.Equal(a, b) {
			t.Fatalf("k·T: nistec %x, circl %x", a, b)
		}

		// The whole tag.
		got, err := key.Tag(tok, m, compressed, bindings)
		want := refKeyTag(t, key.scalar[:], tok, m, compressed, bindings)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Tag(%x, %v, %v, %q) = %x, %v; reference %x", tok, m, compressed, bindings, got, err, want)
		}
	}
}

func TestIncrementFailure(t *testing.T) {
	// Found by search: all 20 try-and-increment rounds fail for this token
	// (probability about 2⁻²⁰). Both implementations must agree.
	tok := unhex(t, "000000000000000000000000000000000000000000000000000000000009edb1")
	if _, ok := refIncrement(tok); ok {
		t.Fatal("reference maps the token; vector is wrong")
	}
	if err := hashToCurve(nistec.NewP256Point(), tok, Increment); err != errNoPoint {
		t.Fatalf("hashToCurve = %v, want errNoPoint", err)
	}
	k := testKey(t)
	if _, err := k.Tag(tok, Increment, false, nil); err != errNoPoint {
		t.Errorf("Key.Tag = %v, want errNoPoint", err)
	}
	ks, _ := NewKeySet([]*Key{k})
	r := &Redemption{Token: tok, Tag: make([]byte, 32), Method: Increment}
	if got, err := ks.Verify(r); err != ErrBadTag || got != nil {
		t.Errorf("Verify = %v, %v; want ErrBadTag", got, err)
	}
	// The same token maps fine with SWU.
	if _, err := k.Tag(tok, SWU, false, nil); err != nil {
		t.Errorf("SWU: %v", err)
	}
}
