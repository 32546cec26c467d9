package client

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"filippo.io/nistec"
)

type issuanceVectors struct {
	Ext struct {
		GB64 string `json:"G_b64"`
		Good []struct {
			Name       string   `json:"name"`
			HB64       string   `json:"H_b64"`
			BlindedHex []string `json:"blinded_hex"`
			Signatures string   `json:"signatures"`
			Version    string   `json:"version"`
			PRNG       string   `json:"prng"`
		} `json:"good"`
		BadProof struct {
			HB64       string   `json:"H_b64"`
			BlindedHex []string `json:"blinded_hex"`
			Signatures string   `json:"signatures"`
		} `json:"bad_proof"`
	} `json:"extension_v2_0_6_issuance"`
}

// proofCase is one published issue response with what verifies it.
type proofCase struct {
	name    string
	G, H    *nistec.P256Point
	M       []*nistec.P256Point
	text    string
	version string
	prng    string
}

func (c proofCase) verify(resp *issueResponse) error {
	return verifyBatchProof(c.G, c.H, c.M, resp.sigs, resp.compressed, resp.prng, resp.proof)
}

func loadProofCases(t testing.TB) (good []proofCase, bad proofCase) {
	var v issuanceVectors
	loadJSON(t, issuanceFile, &v)
	G := point(t, unb64(t, v.Ext.GB64))
	if G.Equal(nistec.NewP256Point().SetGenerator()) != 1 {
		t.Fatal("the vectors' G is not the base point")
	}
	points := func(hexes []string) []*nistec.P256Point {
		out := make([]*nistec.P256Point, len(hexes))
		for i, h := range hexes {
			out[i] = point(t, unhex(t, h))
		}
		return out
	}
	for _, g := range v.Ext.Good {
		good = append(good, proofCase{g.Name, G, point(t, unb64(t, g.HB64)), points(g.BlindedHex), g.Signatures, g.Version, g.PRNG})
	}
	if len(good) != 4 {
		t.Fatalf("%d good responses in the vectors, want 4", len(good))
	}
	b := v.Ext.BadProof
	return good, proofCase{"bad proof", G, point(t, unb64(t, b.HB64)), points(b.BlindedHex), b.Signatures, "", prngShake}
}

// TestPublishedIssuanceVectors: the issue responses of the extension's own
// test suite (v2.0.6 jest/globals.js: the array format, the JSON format,
// "hkdf" with uncompressed and compressed points) parse with the version
// and generator they name and their proofs verify; respBadProof does not.
func TestPublishedIssuanceVectors(t *testing.T) {
	good, bad := loadProofCases(t)
	for _, c := range good {
		t.Run(c.name, func(t *testing.T) {
			resp, err := parseIssueResponse(c.text)
			if err != nil {
				t.Fatal(err)
			}
			if resp.prng != c.prng || resp.version != c.version || len(resp.sigs) != len(c.M) {
				t.Fatalf("parsed prng %q version %q %d points; want %q %q %d", resp.prng, resp.version, len(resp.sigs), c.prng, c.version, len(c.M))
			}
			if err := c.verify(resp); err != nil {
				t.Fatalf("the published proof does not verify: %v", err)
			}
		})
	}
	resp, err := parseIssueResponse(bad.text)
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.verify(resp); !errors.Is(err, errProof) {
		t.Errorf("respBadProof: %v, want errProof", err)
	}
}

// TestProofMutations: every change to a published response, its inputs or
// the generator it names makes the proof fail.
func TestProofMutations(t *testing.T) {
	good, _ := loadProofCases(t)
	for _, c := range good {
		resp, err := parseIssueResponse(c.text)
		if err != nil {
			t.Fatal(err)
		}
		other := good[(len(good)-1)-indexOf(good, c.name)] // another key's response
		flip := func(b []byte, i int) []byte {
			b = append([]byte(nil), b...)
			b[i] ^= 1
			return b
		}
		swapped := append([]*nistec.P256Point(nil), resp.sigs...)
		swapped[0], swapped[1] = swapped[1], swapped[0]
		doubled := nistec.NewP256Point().Add(resp.sigs[0], resp.sigs[0])
		otherPRNG := prngHKDF
		if c.prng == prngHKDF {
			otherPRNG = prngShake
		}
		for name, m := range map[string]func(r *issueResponse, c *proofCase){
			"C+1 in last byte": func(r *issueResponse, _ *proofCase) { r.proof.C = flip(r.proof.C, len(r.proof.C)-1) },
			"C first byte":     func(r *issueResponse, _ *proofCase) { r.proof.C = flip(r.proof.C, 0) },
			"R last byte":      func(r *issueResponse, _ *proofCase) { r.proof.R = flip(r.proof.R, len(r.proof.R)-1) },
			"R and C swapped":  func(r *issueResponse, _ *proofCase) { r.proof.R, r.proof.C = r.proof.C, r.proof.R },
			"signatures swapped": func(r *issueResponse, _ *proofCase) {
				r.sigs = swapped
			},
			"a signature doubled": func(r *issueResponse, _ *proofCase) {
				r.sigs = append([]*nistec.P256Point{doubled}, r.sigs[1:]...)
			},
			"blinded points swapped": func(_ *issueResponse, c *proofCase) {
				c.M = []*nistec.P256Point{c.M[1], c.M[0]}
			},
			"compression flag": func(r *issueResponse, _ *proofCase) { r.compressed = !r.compressed },
			"other generator":  func(r *issueResponse, _ *proofCase) { r.prng = otherPRNG },
			"other key's H":    func(_ *issueResponse, c *proofCase) { c.H = other.H },
			"H = G":            func(_ *issueResponse, c *proofCase) { c.H = c.G },
			"one token less": func(r *issueResponse, c *proofCase) {
				r.sigs, c.M = r.sigs[:1], c.M[:1]
			},
		} {
			if c.H.Equal(other.H) == 1 && name == "other key's H" {
				continue
			}
			r2, c2 := *resp, c
			m(&r2, &c2)
			if err := c2.verify(&r2); err == nil {
				t.Errorf("%s, %s: the mutated proof verifies", c.name, name)
			}
		}
	}
}

func indexOf(cs []proofCase, name string) int {
	for i, c := range cs {
		if c.name == name {
			return i
		}
	}
	return -1
}

// TestShortChallengeAccepted: C is compared as a number. The vectors'
// C re-encoded with a leading zero byte, or R with one, still verifies;
// 33 significant bytes do not.
func TestShortChallengeAccepted(t *testing.T) {
	good, _ := loadProofCases(t)
	c := good[1]
	resp, err := parseIssueResponse(c.text)
	if err != nil {
		t.Fatal(err)
	}
	r2 := *resp
	r2.proof.C = append([]byte{0}, resp.proof.C...)
	r2.proof.R = append([]byte{0, 0}, resp.proof.R...)
	if err := c.verify(&r2); err != nil {
		t.Errorf("C and R with leading zero bytes: %v", err)
	}
	r2.proof.C = append([]byte{1}, resp.proof.C...)
	if err := c.verify(&r2); err == nil {
		t.Error("a 33-byte C verifies")
	}
}

// TestParseIssueResponseErrors: what the extension cannot read is refused
// with a reason, never a panic.
func TestParseIssueResponseErrors(t *testing.T) {
	good, _ := loadProofCases(t)
	raw, err := decodeBase64(good[1].text) // the JSON format
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(b)
	}
	with := func(k string, v any) string {
		m := map[string]any{}
		for kk, vv := range obj {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return enc(m)
	}
	sigs := obj["sigs"].([]any)
	proofB64 := obj["proof"].(string)
	uncompressed := sigs[0].(string)
	compressed := base64.StdEncoding.EncodeToString(point(t, unb64(t, uncompressed)).BytesCompressed())
	for name, text := range map[string]string{
		"not base64":             "@@@@",
		"base64 of text":         base64.StdEncoding.EncodeToString([]byte("signatures")),
		"JSON string":            enc("x"),
		"array of one":           enc([]string{proofB64}),
		"array of numbers":       enc([]int{1, 2}),
		"no sigs":                with("sigs", nil),
		"empty sigs":             with("sigs", []string{}),
		"sigs a string":          with("sigs", "x"),
		"no proof":               with("proof", nil),
		"proof a number":         with("proof", 1),
		"prng unknown":           with("prng", "sha1"),
		"prng a number":          with("prng", 1),
		"version a number":       with("version", 1),
		"sig not base64":         with("sigs", []string{"!!", uncompressed}),
		"sig not a point":        with("sigs", []string{base64.StdEncoding.EncodeToString(make([]byte, 65)), uncompressed}),
		"sig identity":           with("sigs", []string{"AA==", uncompressed}),
		"sig off the curve":      with("sigs", []string{base64.StdEncoding.EncodeToString(append([]byte{4}, make([]byte, 64)...)), uncompressed}),
		"mixed compression":      with("sigs", []string{uncompressed, compressed}),
		"proof not base64":       with("proof", "%%"),
		"proof not JSON":         with("proof", base64.StdEncoding.EncodeToString([]byte("batch-proof=P"))),
		"proof without P":        with("proof", base64.StdEncoding.EncodeToString([]byte(`{"Q":"x"}`))),
		"P not base64":           with("proof", base64.StdEncoding.EncodeToString([]byte(`{"P":"%"}`))),
		"P not JSON":             with("proof", base64.StdEncoding.EncodeToString([]byte(`{"P":"eA=="}`))),
		"P without C":            with("proof", base64.StdEncoding.EncodeToString([]byte(`{"P":"`+base64.StdEncoding.EncodeToString([]byte(`{"R":"AQ=="}`))+`"}`))),
		"P with C not base64":    with("proof", base64.StdEncoding.EncodeToString([]byte(`{"P":"`+base64.StdEncoding.EncodeToString([]byte(`{"R":"AQ==","C":"*"}`))+`"}`))),
		"P with C a number":      with("proof", base64.StdEncoding.EncodeToString([]byte(`{"P":"`+base64.StdEncoding.EncodeToString([]byte(`{"R":"AQ==","C":1}`))+`"}`))),
		"length 1 mod 4":         "eyJ",
		"padding inside":         good[1].text[:8] + "=" + good[1].text[8:],
		"three padding":          strings.TrimRight(good[1].text, "=") + "===",
		"empty":                  "",
		"whitespace only":        " \n\t",
		"null":                   enc(nil),
		"sigs of null elements":  with("sigs", []any{nil, nil}),
		"the redemption request": enc(map[string]any{"jsonrpc": "2.0"}),
	} {
		if resp, err := parseIssueResponse(text); err == nil {
			t.Errorf("%s: parsed: %d points, prng %q", name, len(resp.sigs), resp.prng)
		}
	}
	// Forgiving base64, as atob: line breaks and missing padding are fine.
	text := good[1].text
	for name, variant := range map[string]string{
		"line breaks":     text[:10] + "\n  " + text[10:40] + "\r\n" + text[40:],
		"without padding": strings.TrimRight(text, "="),
	} {
		if _, err := parseIssueResponse(variant); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A missing or empty prng is "shake"; a null version is none.
	for _, text := range []string{with("prng", nil), with("prng", ""), with("version", nil)} {
		resp, err := parseIssueResponse(text)
		if err != nil || resp.prng != prngShake || resp.version != "" {
			t.Errorf("got %+v, %v; want prng shake, no version", resp, err)
		}
	}
}
