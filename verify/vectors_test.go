package verify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"filippo.io/nistec"
)

// vectors mirrors testdata/vectors.json (verify/PROTOCOL.md §9).
type vectors struct {
	Published struct {
		V206 struct {
			TokenHex      string   `json:"token_hex"`
			NHex          string   `json:"unblinded_N_hex"`
			THex          string   `json:"T_increment_hex"`
			DerivedKeyHex string   `json:"derived_key_hex"`
			Bindings      []string `json:"bindings"`
			TagB64        string   `json:"tag_b64"`
			SignedZB64    string   `json:"signed_blinded_point_Z_b64"`
			BlindRHex     string   `json:"blind_r_hex"`
		} `json:"extension_v2_0_6_redemption"`
		V306 struct {
			TokenHex      string   `json:"token_hex"`
			BlindRHex     string   `json:"blind_r_hex"`
			TB64          string   `json:"T_b64"`
			MB64          string   `json:"M_b64"`
			ZB64          string   `json:"Z_b64"`
			NB64          string   `json:"N_b64"`
			DerivedKeyHex string   `json:"derived_key_hex"`
			Bindings      []string `json:"bindings"`
			TagHex        string   `json:"tag_hex"`
		} `json:"extension_v3_0_6_redemption"`
		SWU struct {
			Cases []struct {
				AlphaHex string `json:"alpha_hex"`
				UHex     string `json:"u_hex"`
				XHex     string `json:"x_hex"`
				YHex     string `json:"y_hex"`
			} `json:"cases"`
		} `json:"extension_swu_map"`
		Readme struct {
			Request struct {
				Params json.RawMessage `json:"params"`
			} `json:"request"`
		} `json:"api_redeem_readme_example"`
	} `json:"published"`
	TestKey struct {
		KHex          string `json:"k_hex"`
		CommitmentHex string `json:"commitment_H_hex"`
		PEM           string `json:"pem"`
		Tuples        []struct {
			TokenHex       string `json:"token_hex"`
			Method         string `json:"method"`
			Compressed     bool   `json:"compressed"`
			THex           string `json:"T_hex"`
			NHex           string `json:"N_hex"`
			NCompressedHex string `json:"N_compressed_hex"`
			DerivedKeyHex  string `json:"derived_key_hex"`
			TagsB64        []struct {
				Bindings []string `json:"bindings"`
				Tag      string   `json:"tag"`
			} `json:"tags_b64"`
		} `json:"tuples"`
		ReadyRequest struct {
			Params json.RawMessage `json:"params"`
		} `json:"ready_request"`
	} `json:"test_key"`
}

func loadVectors(tb testing.TB) *vectors {
	tb.Helper()
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var v vectors
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&v); err != nil {
		tb.Fatal(err)
	}
	return &v
}

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func unb64(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad base64 %q: %v", s, err)
	}
	return b
}

func testKey(tb testing.TB) *Key {
	tb.Helper()
	k, err := NewKey(unhex(tb, loadVectors(tb).TestKey.KHex))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func methodOf(tb testing.TB, s string) Method {
	switch s {
	case "increment":
		return Increment
	case "swu":
		return SWU
	}
	tb.Fatalf("unknown method %q", s)
	return 0
}

// refDeriveKey and refTag are verify/PROTOCOL.md §6 written out directly
// with crypto/hmac, a check of the message layout of the package's
// transcript.
func refDeriveKey(t, n []byte) []byte {
	m := hmac.New(sha256.New, []byte("hash_derive_key"))
	m.Write(t)
	m.Write(n)
	return m.Sum(nil)
}

func refTag(dk []byte, bindings []string) []byte {
	m := hmac.New(sha256.New, dk)
	m.Write([]byte("hash_request_binding"))
	for _, b := range bindings {
		m.Write([]byte(b))
	}
	return m.Sum(nil)
}

// derive runs the package's own §6 code on a given N (encoded as SEC1).
func derive(t, n []byte, bindings []string) (dk, tag []byte) {
	tr := newTranscript(t, bindings)
	defer tr.release()
	tr.tagOf(n)
	return bytes.Clone(tr.dk[:]), bytes.Clone(tr.out[:])
}

func mustPoint(tb testing.TB, sec1 []byte) *nistec.P256Point {
	tb.Helper()
	p, err := nistec.NewP256Point().SetBytes(sec1)
	if err != nil {
		tb.Fatalf("not a point: %x", sec1)
	}
	return p
}

func TestVectorExtensionV206(t *testing.T) {
	v := loadVectors(t).Published.V206
	tok := unhex(t, v.TokenHex)

	T := nistec.NewP256Point()
	err := hashToCurve(T, tok, Increment)
	if err != nil {
		t.Fatal(err)
	}
	if got := T.Bytes(); !bytes.Equal(got, unhex(t, v.THex)) {
		t.Errorf("T = %x, want %s", got, v.THex)
	}

	// N is published; check that it is the unblinding of Z by r: N = r⁻¹·Z.
	N := unhex(t, v.NHex)
	mustPoint(t, N)
	checkUnblind(t, unb64(t, v.SignedZB64), unhex(t, v.BlindRHex), N)

	dk, tag := derive(tok, N, v.Bindings)
	if want := unhex(t, v.DerivedKeyHex); !bytes.Equal(dk, want) {
		t.Errorf("derived key = %x, want %x", dk, want)
	}
	if want := unb64(t, v.TagB64); !bytes.Equal(tag, want) {
		t.Errorf("tag = %x, want %x", tag, want)
	}
	if !bytes.Equal(dk, refDeriveKey(tok, N)) || !bytes.Equal(tag, refTag(dk, v.Bindings)) {
		t.Error("the transcript disagrees with the HMACs written out")
	}
}

func TestVectorExtensionV306(t *testing.T) {
	v := loadVectors(t).Published.V306
	tok := unhex(t, v.TokenHex)

	T := nistec.NewP256Point()
	err := hashToCurve(T, tok, Increment)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := T.Bytes(), unb64(t, v.TB64); !bytes.Equal(got, want) {
		t.Errorf("T = %x, want %x", got, want)
	}
	// M = r·T, and N = r⁻¹·Z.
	r := unhex(t, v.BlindRHex)
	M, err := nistec.NewP256Point().ScalarMult(T, r)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := M.Bytes(), unb64(t, v.MB64); !bytes.Equal(got, want) {
		t.Errorf("M = %x, want %x", got, want)
	}
	N := unb64(t, v.NB64)
	checkUnblind(t, unb64(t, v.ZB64), r, N)

	dk, tag := derive(tok, N, v.Bindings)
	if want := unhex(t, v.DerivedKeyHex); !bytes.Equal(dk, want) {
		t.Errorf("derived key = %x, want %x", dk, want)
	}
	if want := unhex(t, v.TagHex); !bytes.Equal(tag, want) {
		t.Errorf("tag = %x, want %x", tag, want)
	}
}

func TestVectorSWUMap(t *testing.T) {
	for _, c := range loadVectors(t).Published.SWU.Cases {
		alpha := unhex(t, c.AlphaHex)
		if got := swuU(alpha); got.Cmp(fromHex(c.UHex)) != 0 {
			t.Errorf("alpha %s: u = %x, want %s", c.AlphaHex, got, c.UHex)
		}
		T := nistec.NewP256Point()
		err := hashToCurve(T, alpha, SWU)
		if err != nil {
			t.Fatalf("alpha %s: %v", c.AlphaHex, err)
		}
		want := append(append([]byte{4}, unhex(t, c.XHex)...), unhex(t, c.YHex)...)
		if got := T.Bytes(); !bytes.Equal(got, want) {
			t.Errorf("alpha %s: T = %x, want %x", c.AlphaHex, got, want)
		}
	}
}

func TestVectorTestKey(t *testing.T) {
	v := loadVectors(t).TestKey
	k := testKey(t)
	if got := hex.EncodeToString(k.Commitment()); got != v.CommitmentHex {
		t.Errorf("H = %s, want %s", got, v.CommitmentHex)
	}
	ks, err := NewKeySet([]*Key{k})
	if err != nil {
		t.Fatal(err)
	}
	for i, tu := range v.Tuples {
		tok := unhex(t, tu.TokenHex)
		m := methodOf(t, tu.Method)
		T := nistec.NewP256Point()
		err := hashToCurve(T, tok, m)
		if err != nil {
			t.Fatalf("tuple %d: %v", i, err)
		}
		N, err := nistec.NewP256Point().ScalarMult(T, k.scalar[:])
		if err != nil {
			t.Fatal(err)
		}
		var nEnc []byte
		if tu.Compressed {
			nEnc = N.BytesCompressed()
			if want := unhex(t, tu.NCompressedHex); !bytes.Equal(nEnc, want) {
				t.Errorf("tuple %d: N = %x, want %x", i, nEnc, want)
			}
		} else {
			if want := unhex(t, tu.THex); !bytes.Equal(T.Bytes(), want) {
				t.Errorf("tuple %d: T = %x, want %x", i, T.Bytes(), want)
			}
			nEnc = N.Bytes()
			if want := unhex(t, tu.NHex); !bytes.Equal(nEnc, want) {
				t.Errorf("tuple %d: N = %x, want %x", i, nEnc, want)
			}
		}
		if len(tu.TagsB64) == 0 {
			t.Fatalf("tuple %d: no tags", i)
		}
		for _, tg := range tu.TagsB64 {
			want := unb64(t, tg.Tag)
			dk, tag := derive(tok, nEnc, tg.Bindings)
			if wantDK := unhex(t, tu.DerivedKeyHex); !bytes.Equal(dk, wantDK) {
				t.Errorf("tuple %d: dk = %x, want %x", i, dk, wantDK)
			}
			if !bytes.Equal(tag, want) {
				t.Errorf("tuple %d %q: derive tag = %x, want %x", i, tg.Bindings, tag, want)
			}
			got, err := k.Tag(tok, m, tu.Compressed, tg.Bindings)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("tuple %d %q: Key.Tag = %x, %v; want %x", i, tg.Bindings, got, err, want)
			}
			r := &Redemption{Token: tok, Tag: want, Bindings: tg.Bindings, Method: m, Compressed: tu.Compressed}
			if got, err := ks.Verify(r); err != nil || got != k {
				t.Errorf("tuple %d %q: Verify = %v, %v", i, tg.Bindings, got, err)
			}
		}
	}
}

func TestVectorReadyRequest(t *testing.T) {
	v := loadVectors(t)
	r, err := ParseParams(v.TestKey.ReadyRequest.Params, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != Increment || r.Compressed || len(r.Bindings) != 2 {
		t.Errorf("parsed %+v", r)
	}
	ks, _ := NewKeySet([]*Key{testKey(t)})
	if k, err := ks.Verify(r); err != nil || k.ID() != testKey(t).ID() {
		t.Errorf("Verify = %v, %v; want the test key", k, err)
	}
}

func TestVectorAPIRedeemReadme(t *testing.T) {
	v := loadVectors(t)
	r, err := ParseParams(v.Published.Readme.Request.Params, Limits{})
	if err != nil {
		t.Fatalf("README request does not parse: %v", err)
	}
	if r.Method != Increment || r.Compressed || len(r.Token) != 32 || len(r.Bindings) != 2 {
		t.Errorf("parsed %+v", r)
	}
	// The README's key is not public: under the test key the tag must fail
	// as a tag, not as anything else.
	ks, _ := NewKeySet([]*Key{testKey(t)})
	if k, err := ks.Verify(r); !errors.Is(err, ErrBadTag) || k != nil {
		t.Errorf("Verify = %v, %v; want ErrBadTag", k, err)
	}
}

// checkUnblind checks N = r⁻¹·Z (verify/PROTOCOL.md §7), with r⁻¹ mod n by
// Fermat.
func checkUnblind(t *testing.T, Z, r, N []byte) {
	t.Helper()
	rInv := scalarInverse(r)
	got, err := nistec.NewP256Point().ScalarMult(mustPoint(t, Z), rInv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), N) {
		t.Errorf("r⁻¹·Z = %x, want N = %x", got.Bytes(), N)
	}
}
