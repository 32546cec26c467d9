package client

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"filippo.io/bigmod"
	"filippo.io/nistec"
)

// The published vectors live beside package verify (verify/PROTOCOL.md §9);
// this package's tests read them as data only, so that the client's math is
// checked against the extension's own numbers, not against the server's code.
const (
	vectorsFile  = "../../verify/testdata/vectors.json"
	issuanceFile = "../../verify/testdata/issuance.json"
)

type redemptionVectors struct {
	Published struct {
		V2 struct {
			TokenHex  string   `json:"token_hex"`
			ZB64      string   `json:"signed_blinded_point_Z_b64"`
			BlindHex  string   `json:"blind_r_hex"`
			NHex      string   `json:"unblinded_N_hex"`
			THex      string   `json:"T_increment_hex"`
			Bindings  []string `json:"bindings"`
			TagB64    string   `json:"tag_b64"`
			DerivedKe string   `json:"derived_key_hex"`
		} `json:"extension_v2_0_6_redemption"`
		V3 struct {
			TokenHex string   `json:"token_hex"`
			BlindHex string   `json:"blind_r_hex"`
			TB64     string   `json:"T_b64"`
			MB64     string   `json:"M_b64"`
			ZB64     string   `json:"Z_b64"`
			NB64     string   `json:"N_b64"`
			Bindings []string `json:"bindings"`
			TagHex   string   `json:"tag_hex"`
		} `json:"extension_v3_0_6_redemption"`
	} `json:"published"`
	TestKey struct {
		Tuples []struct {
			TokenHex   string `json:"token_hex"`
			Method     string `json:"method"`
			Compressed bool   `json:"compressed"`
			THex       string `json:"T_hex"`
			NHex       string `json:"N_hex"`
			NCompHex   string `json:"N_compressed_hex"`
			Tags       []struct {
				Bindings []string `json:"bindings"`
				Tag      string   `json:"tag"`
			} `json:"tags_b64"`
		} `json:"tuples"`
		ReadyRequest struct {
			Params struct {
				Data     []string `json:"data"`
				Bindings []string `json:"bindings"`
			} `json:"params"`
		} `json:"ready_request"`
	} `json:"test_key"`
}

func loadJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func point(t testing.TB, sec1 []byte) *nistec.P256Point {
	t.Helper()
	p, err := nistec.NewP256Point().SetBytes(sec1)
	if err != nil {
		t.Fatalf("%x: %v", sec1, err)
	}
	return p
}

func scalar(t testing.TB, b []byte) *bigmod.Nat {
	t.Helper()
	x, err := bigmod.NewNat().SetBytes(b, order)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestHashToCurveVectors: the extension's try-and-increment points of the
// published tokens.
func TestHashToCurveVectors(t *testing.T) {
	var v redemptionVectors
	loadJSON(t, vectorsFile, &v)
	cases := map[string][2][]byte{
		"extension v2.0.6": {unhex(t, v.Published.V2.TokenHex), unhex(t, v.Published.V2.THex)},
		"extension v3.0.6": {unhex(t, v.Published.V3.TokenHex), unb64(t, v.Published.V3.TB64)},
	}
	for i, tu := range v.TestKey.Tuples {
		if tu.Method == "increment" && tu.THex != "" {
			cases["test key tuple "+string(rune('0'+i))] = [2][]byte{unhex(t, tu.TokenHex), unhex(t, tu.THex)}
		}
	}
	if len(cases) < 3 {
		t.Fatalf("only %d cases in the vectors", len(cases))
	}
	for name, c := range cases {
		T, err := hashToCurve(c[0])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(T.Bytes(), c[1]) {
			t.Errorf("%s: T = %x\nwant %x", name, T.Bytes(), c[1])
		}
	}
}

// TestTagVectors: the tags of the published tuples, from t and N.
func TestTagVectors(t *testing.T) {
	var v redemptionVectors
	loadJSON(t, vectorsFile, &v)
	type tc struct {
		name       string
		token, n   []byte
		compressed bool
		bindings   []string
		tag        []byte
	}
	p2, p3 := v.Published.V2, v.Published.V3
	cases := []tc{
		{"extension v2.0.6", unhex(t, p2.TokenHex), unhex(t, p2.NHex), false, p2.Bindings, unb64(t, p2.TagB64)},
		{"extension v3.0.6", unhex(t, p3.TokenHex), unb64(t, p3.NB64), false, p3.Bindings, unhex(t, p3.TagHex)},
	}
	for _, tu := range v.TestKey.Tuples {
		if tu.Method != "increment" {
			continue
		}
		n := tu.NHex
		if tu.Compressed {
			n = tu.NCompHex
		}
		for _, tg := range tu.Tags {
			cases = append(cases, tc{"test key", unhex(t, tu.TokenHex), unhex(t, n), tu.Compressed, tg.Bindings, unb64(t, tg.Tag)})
		}
	}
	if len(cases) < 6 {
		t.Fatalf("only %d cases in the vectors", len(cases))
	}
	for _, c := range cases {
		tok, err := NewToken(c.token, c.n)
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Tag(c.bindings, c.compressed); !bytes.Equal(got, c.tag) {
			t.Errorf("%s %q compressed=%v: tag %x, want %x", c.name, c.bindings, c.compressed, got, c.tag)
		}
	}

	// The ready-made request of the test key: same data and bindings.
	tu := v.TestKey.Tuples[0]
	tok, err := NewToken(unhex(t, tu.TokenHex), unhex(t, tu.NHex))
	if err != nil {
		t.Fatal(err)
	}
	want := v.TestKey.ReadyRequest.Params
	body, err := tok.RedeemRequest(want.Bindings, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		ID      int    `json:"id"`
		Params  struct {
			Data       []string `json:"data"`
			Bindings   []string `json:"bindings"`
			Compressed bool     `json:"compressed"`
		} `json:"params"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("RedeemRequest is not JSON: %v", err)
	}
	if got.JSONRPC != "2.0" || got.Method != "redeem" || got.ID != 1 || got.Params.Compressed ||
		len(got.Params.Data) != 3 || len(want.Data) != 3 || got.Params.Data[0] != want.Data[0] || got.Params.Data[1] != want.Data[1] {
		t.Errorf("RedeemRequest = %s\nwant the data of %+v", body, want)
	}
	var settings map[string]string
	if err := json.Unmarshal(unb64(t, got.Params.Data[2]), &settings); err != nil || settings["curve"] != "p256" || settings["hash"] != "sha256" || settings["method"] != "increment" {
		t.Errorf("settings %q: %v", got.Params.Data[2], err)
	}
}

// TestBlindingVectors: M = r·T and N = r⁻¹·Z with the extension's own
// blinding scalars.
func TestBlindingVectors(t *testing.T) {
	var v redemptionVectors
	loadJSON(t, vectorsFile, &v)
	p2, p3 := v.Published.V2, v.Published.V3

	r := scalar(t, unhex(t, p2.BlindHex))
	if N := scalarMult(point(t, unb64(t, p2.ZB64)), invertScalar(r)); !bytes.Equal(N.Bytes(), unhex(t, p2.NHex)) {
		t.Errorf("v2.0.6: N = %x, want %s", N.Bytes(), p2.NHex)
	}

	r = scalar(t, unhex(t, p3.BlindHex))
	T, err := hashToCurve(unhex(t, p3.TokenHex))
	if err != nil {
		t.Fatal(err)
	}
	if M := scalarMult(T, r); !bytes.Equal(M.Bytes(), unb64(t, p3.MB64)) {
		t.Errorf("v3.0.6: M = %x, want %x", M.Bytes(), unb64(t, p3.MB64))
	}
	if N := scalarMult(point(t, unb64(t, p3.ZB64)), invertScalar(r)); !bytes.Equal(N.Bytes(), unb64(t, p3.NB64)) {
		t.Errorf("v3.0.6: N = %x, want %x", N.Bytes(), unb64(t, p3.NB64))
	}
	// r·r⁻¹ = 1.
	if one := bigmod.NewNat().ExpandFor(order).Mod(r, order).Mul(invertScalar(r), order); one.IsOne() != 1 {
		t.Error("r·r⁻¹ ≠ 1")
	}
}
