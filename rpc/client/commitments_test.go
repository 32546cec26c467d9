package client

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"filippo.io/nistec"
)

// testH is the commitment of the public test key (verify/PROTOCOL.md §8).
func testH(t testing.TB) string {
	var v struct {
		TestKey struct {
			H string `json:"commitment_H_hex"`
		} `json:"test_key"`
	}
	loadJSON(t, vectorsFile, &v)
	return base64.StdEncoding.EncodeToString(unhex(t, v.TestKey.H))
}

func TestParseCommitmentsShapes(t *testing.T) {
	H := testH(t)
	H2 := base64.StdEncoding.EncodeToString(nistec.NewP256Point().SetGenerator().Bytes()) // 1·G
	Hc := base64.StdEncoding.EncodeToString(point(t, unb64(t, H)).BytesCompressed())
	G := base64.StdEncoding.EncodeToString(nistec.NewP256Point().SetGenerator().Bytes())
	exp := "2030-01-02T03:04:05Z"
	type want struct {
		version string
		h       string
		expiry  string
	}
	for name, tc := range map[string]struct {
		doc  string
		want []want
	}{
		"one object": {
			fmt.Sprintf(`{"G":%q,"H":%q,"expiry":%q,"version":"1.0"}`, G, H, exp),
			[]want{{"1.0", H, exp}},
		},
		"H only":       {fmt.Sprintf(`{"H":%q}`, H), []want{{"", H, ""}}},
		"compressed H": {fmt.Sprintf(`{"H":%q}`, Hc), []want{{"", Hc, ""}}},
		"array": {
			fmt.Sprintf(`[{"H":%q,"version":"2"},{"H":%q,"version":"1","expiry":%q}]`, H, H2, exp),
			[]want{{"2", H, ""}, {"1", H2, exp}},
		},
		"keyed by version": {
			fmt.Sprintf(`{"1.0":{"G":%q,"H":%q},"1.01":{"H":%q,"expiry":%q,"sig":"ignored"}}`, G, H, H2, exp),
			[]want{{"1.0", H, ""}, {"1.01", H2, exp}},
		},
		"extension's file": {
			fmt.Sprintf(`{"CF":{"1.0":{"G":%q,"H":%q}},"HC":{"dev":{"H":%q}}}`, G, H, H2),
			[]want{{"1.0", H, ""}, {"dev", H2, ""}},
		},
		"wrapped array": {
			fmt.Sprintf(`{"commitments":[{"H":%q,"version":"v1"}],"note":"x"}`, H),
			[]want{{"v1", H, ""}},
		},
		"version member wins": {
			fmt.Sprintf(`{"k":{"H":%q,"version":"v"}}`, H),
			[]want{{"v", H, ""}},
		},
		"same version, same H": {
			fmt.Sprintf(`[{"H":%q,"version":"v"},{"H":%q,"version":"v"}]`, H, Hc),
			[]want{{"v", H, ""}, {"v", Hc, ""}},
		},
		"null members": {
			fmt.Sprintf(`{"H":%q,"G":null,"expiry":null,"version":null}`, H),
			[]want{{"", H, ""}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			cs, err := ParseCommitments([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != len(tc.want) {
				t.Fatalf("%d commitments, want %d: %+v", len(cs), len(tc.want), cs)
			}
			for i, w := range tc.want {
				c := cs[i]
				var e time.Time
				if w.expiry != "" {
					e, _ = time.Parse(time.RFC3339, w.expiry)
				}
				if c.Version != w.version || !bytes.Equal(c.H, unb64(t, w.h)) || !c.Expiry.Equal(e) {
					t.Errorf("commitment %d = %q %x %v; want %q %s %v", i, c.Version, c.H, c.Expiry, w.version, w.h, e)
				}
			}
		})
	}
}

func TestParseCommitmentsErrors(t *testing.T) {
	H := testH(t)
	H2 := base64.StdEncoding.EncodeToString(nistec.NewP256Point().SetGenerator().Bytes())
	notG := H // a point, not the base point
	offCurve := base64.StdEncoding.EncodeToString(append([]byte{4}, make([]byte, 64)...))
	for name, doc := range map[string]string{
		"not JSON":           `{"H":`,
		"trailing data":      fmt.Sprintf(`{"H":%q} {}`, H),
		"no H anywhere":      `{"CF":{"1.0":{"G":"x"}}}`,
		"a string":           `"x"`,
		"empty array":        `[]`,
		"H a number":         `{"H":1}`,
		"H not base64":       `{"H":"%%"}`,
		"H off the curve":    fmt.Sprintf(`{"H":%q}`, offCurve),
		"H the identity":     `{"H":"AA=="}`,
		"H empty":            `{"H":""}`,
		"G not the base":     fmt.Sprintf(`{"H":%q,"G":%q}`, H, notG),
		"G not base64":       fmt.Sprintf(`{"H":%q,"G":"%%"}`, H),
		"expiry not RFC3339": fmt.Sprintf(`{"H":%q,"expiry":"tomorrow"}`, H),
		"expiry a number":    fmt.Sprintf(`{"H":%q,"expiry":1}`, H),
		"version a number":   fmt.Sprintf(`{"H":%q,"version":1}`, H),
		"one version, two H": fmt.Sprintf(`[{"H":%q,"version":"v"},{"H":%q,"version":"v"}]`, H, H2),
		"too deep":           fmt.Sprintf(`{"a":{"b":{"c":{"d":{"H":%q}}}}}`, H),
	} {
		if cs, err := ParseCommitments([]byte(doc)); err == nil {
			t.Errorf("%s: parsed %+v", name, cs)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: multi-line error %q", name, err)
		}
	}
}

func TestCommitmentFor(t *testing.T) {
	H := unb64(t, testH(t))
	G := nistec.NewP256Point().SetGenerator().Bytes()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	later, earlier := now.Add(time.Hour), now.Add(-time.Hour)
	cs := []Commitment{{Version: "1.0", H: H, Expiry: later}, {Version: "2", H: G}}
	for _, tc := range []struct {
		name    string
		cs      []Commitment
		version string
		want    []byte // nil: an error
	}{
		{"exact", cs, "2", G},
		{"exact 1.0", cs, "1.0", H},
		{"no version is 1.0", cs, "", H},
		{"unknown", cs, "3", nil},
		{"sole unversioned, any version", []Commitment{{H: G}}, "key-7", G},
		{"sole unversioned, no version", []Commitment{{H: G}}, "", G},
		{"two unversioned", []Commitment{{H: G}, {Version: "x", H: H}}, "y", nil},
		{"expired", []Commitment{{Version: "1.0", H: H, Expiry: earlier}}, "1.0", nil},
		{"expires now", []Commitment{{Version: "1.0", H: H, Expiry: now}}, "1.0", nil},
		{"not a point", []Commitment{{Version: "1.0", H: []byte{4, 1}}}, "1.0", nil},
		{"none", nil, "", nil},
	} {
		got, err := commitmentFor(tc.cs, tc.version, now)
		switch {
		case tc.want == nil && err == nil:
			t.Errorf("%s: got %x, want an error", tc.name, got.Bytes())
		case tc.want != nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != nil && !bytes.Equal(got.Bytes(), canonicalPoint(tc.want)):
			t.Errorf("%s: got %x, want %x", tc.name, got.Bytes(), tc.want)
		}
	}
}
