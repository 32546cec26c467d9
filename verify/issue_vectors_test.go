package verify

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// issuanceVectors mirrors testdata/issuance.json (verify/PROTOCOL.md §9).
type issuanceVectors struct {
	Extension struct {
		GB64 string         `json:"G_b64"`
		Good []issuanceCase `json:"good"`
		Bad  issuanceCase   `json:"bad_proof"`
	} `json:"extension_v2_0_6_issuance"`
	Reference struct {
		BlSigReq string `json:"bl_sig_req"`
	} `json:"reference_server_bl_sig_req"`
}

type issuanceCase struct {
	Name       string   `json:"name"`
	HB64       string   `json:"H_b64"`
	BlindedHex []string `json:"blinded_hex"`
	Signatures string   `json:"signatures"`
	Version    string   `json:"version"`
	PRNG       string   `json:"prng"`
}

func loadIssuanceVectors(tb testing.TB) *issuanceVectors {
	tb.Helper()
	data, err := os.ReadFile("testdata/issuance.json")
	if err != nil {
		tb.Fatal(err)
	}
	var v issuanceVectors
	if err := json.Unmarshal(data, &v); err != nil {
		tb.Fatal(err)
	}
	return &v
}

func (c *issuanceCase) blinded(tb testing.TB) [][]byte {
	var out [][]byte
	for _, h := range c.BlindedHex {
		out = append(out, unhex(tb, h))
	}
	return out
}

// TestVectorIssuanceExtension: the issue responses of the extension's test
// suite verify under VerifyIssueResponse, with their version and prng; the
// published bad proof does not.
func TestVectorIssuanceExtension(t *testing.T) {
	v := loadIssuanceVectors(t).Extension
	G := unb64(t, v.GB64)
	for _, c := range v.Good {
		got, err := VerifyIssueResponse(G, unb64(t, c.HB64), c.blinded(t), c.Signatures)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if got.Version != c.Version || got.PRNG != c.PRNG || len(got.Signatures) != len(c.BlindedHex) {
			t.Errorf("%s: version %q prng %q, %d signatures", c.Name, got.Version, got.PRNG, len(got.Signatures))
		}
	}
	bad := v.Bad
	if _, err := VerifyIssueResponse(G, unb64(t, bad.HB64), bad.blinded(t), bad.Signatures); !errors.Is(err, ErrBadIssueResponse) {
		t.Errorf("bad proof: %v", err)
	}
}

// TestVectorIssuanceNegative: each published response fails once anything
// it is checked against changes: the commitment, the order or the set of the
// blinded points, the prng.
func TestVectorIssuanceNegative(t *testing.T) {
	v := loadIssuanceVectors(t).Extension
	G := unb64(t, v.GB64)
	for _, c := range v.Good {
		H := unb64(t, c.HB64)
		bl := c.blinded(t)
		other := v.Good[0].HB64
		if c.HB64 == other {
			other = v.Good[2].HB64
		}
		swapped := [][]byte{bl[1], bl[0]}
		checks := map[string]func() error{
			"other H": func() error { _, err := VerifyIssueResponse(G, unb64(t, other), bl, c.Signatures); return err },
			"H as G":  func() error { _, err := VerifyIssueResponse(H, H, bl, c.Signatures); return err },
			"swapped": func() error { _, err := VerifyIssueResponse(G, H, swapped, c.Signatures); return err },
			"one":     func() error { _, err := VerifyIssueResponse(G, H, bl[:1], c.Signatures); return err },
			"prng":    func() error { _, err := VerifyIssueResponse(G, H, bl, switchPRNG(t, c.Signatures)); return err },
		}
		for name, check := range checks {
			if err := check(); !errors.Is(err, ErrBadIssueResponse) {
				t.Errorf("%s, %s: %v", c.Name, name, err)
			}
		}
	}
}

// switchPRNG rewrites the prng member of a JSON-form response: shake for
// hkdf and back (adding it when absent).
func switchPRNG(t *testing.T, signatures string) string {
	raw, ok := atob(signatures)
	if !ok {
		t.Fatal("vector is not base64")
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		// The array form has no prng member: make it an object.
		var arr []string
		if err := json.Unmarshal(raw, &arr); err != nil {
			t.Fatal(err)
		}
		m = map[string]any{"sigs": arr[:len(arr)-1], "proof": arr[len(arr)-1]}
	}
	if m["prng"] == "hkdf" {
		m["prng"] = "shake"
	} else {
		m["prng"] = "hkdf"
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(out)
}

// TestVerifyIssueResponseRejects: a good response of SignBatch with one
// thing broken at a time.
func TestVerifyIssueResponseRejects(t *testing.T) {
	k := testKey(t)
	enc, req := batch(t, newPointWalk(t, 11), 3, true)
	resp, err := k.SignBatch(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	G, H := BasePoint(), k.Commitment()
	if _, err := VerifyIssueResponse(G, H, enc, resp.Encode("1")); err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(r *IssueResponse)) string {
		r := *resp
		r.Signatures = append([][]byte(nil), resp.Signatures...)
		f(&r)
		return r.Encode("1")
	}
	b64 := base64.StdEncoding.EncodeToString
	obj := func(s string) string { return b64([]byte(s)) }
	goodSigs := `["` + b64(resp.Signatures[0]) + `","` + b64(resp.Signatures[1]) + `","` + b64(resp.Signatures[2]) + `"]`
	proof := func(inner string) string { return b64([]byte("batch-proof=" + `{"P":"` + b64([]byte(inner)) + `"}`)) }
	rc := `"R":"` + b64(resp.R[:]) + `","C":"` + b64(resp.C[:]) + `"`
	cases := map[string]string{
		"C flipped":          mutate(func(r *IssueResponse) { r.C[31] ^= 1 }),
		"R flipped":          mutate(func(r *IssueResponse) { r.R[31] ^= 1 }),
		"signature swapped":  mutate(func(r *IssueResponse) { r.Signatures[0], r.Signatures[1] = r.Signatures[1], r.Signatures[0] }),
		"signature replaced": mutate(func(r *IssueResponse) { r.Signatures[2] = H }),
		"signature dropped":  mutate(func(r *IssueResponse) { r.Signatures = r.Signatures[:2] }),
		"signature compressed": mutate(func(r *IssueResponse) {
			r.Signatures[1] = mustPoint(t, r.Signatures[1]).BytesCompressed()
		}),
		"all compressed, proof over uncompressed": mutate(func(r *IssueResponse) {
			for i := range r.Signatures {
				r.Signatures[i] = mustPoint(t, r.Signatures[i]).BytesCompressed()
			}
		}),
		"signature off the curve": mutate(func(r *IssueResponse) { r.Signatures[0] = append([]byte{4}, make([]byte, 64)...) }),
		"signature bad prefix":    mutate(func(r *IssueResponse) { r.Signatures[0] = append([]byte{5}, r.Signatures[0][1:]...) }),
		"signature empty":         mutate(func(r *IssueResponse) { r.Signatures[0] = nil }),
		"no signatures":           mutate(func(r *IssueResponse) { r.Signatures = nil }),
		"not base64":              "%%%%",
		"not JSON":                obj("sigs"),
		"JSON string":             obj(`"x"`),
		"one-element array":       obj(`["x"]`),
		"no proof":                obj(`{"sigs":` + goodSigs + `}`),
		"prng unknown":            obj(`{"sigs":` + goodSigs + `,"proof":"` + proof(`{`+rc+`}`) + `","prng":"sha"}`),
		"prng hkdf":               obj(`{"sigs":` + goodSigs + `,"proof":"` + proof(`{`+rc+`}`) + `","prng":"hkdf"}`),
		"proof not base64":        obj(`{"sigs":` + goodSigs + `,"proof":"@@"}`),
		"proof not JSON":          obj(`{"sigs":` + goodSigs + `,"proof":"` + b64([]byte("batch-proof=x")) + `"}`),
		"P not base64":            obj(`{"sigs":` + goodSigs + `,"proof":"` + b64([]byte(`{"P":"@@"}`)) + `"}`),
		"P not JSON":              obj(`{"sigs":` + goodSigs + `,"proof":"` + proof(`R,C`) + `"}`),
		"no C":                    obj(`{"sigs":` + goodSigs + `,"proof":"` + proof(`{"R":"`+b64(resp.R[:])+`"}`) + `"}`),
		"C short":                 obj(`{"sigs":` + goodSigs + `,"proof":"` + proof(`{"R":"`+b64(resp.R[:])+`","C":"`+b64(resp.C[1:])+`"}`) + `"}`),
		"R 33 bytes":              obj(`{"sigs":` + goodSigs + `,"proof":"` + proof(`{"R":"`+b64(append([]byte{1}, resp.R[:]...))+`","C":"`+b64(resp.C[:])+`"}`) + `"}`),
	}
	for name, text := range cases {
		if _, err := VerifyIssueResponse(G, H, enc, text); !errors.Is(err, ErrBadIssueResponse) {
			t.Errorf("%s: %v", name, err)
		}
	}

	// The same proof, written the other ways the extension reads: without
	// the prefix, prng absent, the array form, R with leading zeros
	// dropped or added, a C with a leading zero byte more, whitespace.
	same := map[string]string{
		"no prefix":   obj(`{"sigs":` + goodSigs + `,"proof":"` + b64([]byte(`{"P":"`+b64([]byte(`{`+rc+`}`))+`"}`)) + `"}`),
		"no prng":     obj(`{"sigs":` + goodSigs + `,"proof":"` + proof(`{`+rc+`}`) + `"}`),
		"array form":  obj(strings.TrimSuffix(goodSigs, "]") + `,"` + proof(`{`+rc+`}`) + `"]`),
		"R padded":    obj(`{"sigs":` + goodSigs + `,"proof":"` + proof(`{"R":"`+b64(append([]byte{0, 0}, resp.R[:]...))+`","C":"`+b64(resp.C[:])+`"}`) + `"}`),
		"C padded":    obj(`{"sigs":` + goodSigs + `,"proof":"` + proof(`{"R":"`+b64(resp.R[:])+`","C":"`+b64(append([]byte{0}, resp.C[:]...))+`"}`) + `"}`),
		"white space": " " + resp.Encode("1")[:10] + "\n\t" + resp.Encode("1")[10:] + " ",
	}
	for name, text := range same {
		if _, err := VerifyIssueResponse(G, H, enc, text); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	// Commitment and blinded points that are not points.
	if _, err := VerifyIssueResponse(G, H[:64], enc, resp.Encode("1")); !errors.Is(err, ErrBadIssueResponse) {
		t.Errorf("bad H: %v", err)
	}
	if _, err := VerifyIssueResponse(G, H, [][]byte{enc[0], enc[1], {0}}, resp.Encode("1")); !errors.Is(err, ErrBadIssueResponse) {
		t.Errorf("blinded point at infinity: %v", err)
	}
}
